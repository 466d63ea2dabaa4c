/**
 * The parent side of test/helpers/nsworker.mjs: a typed RPC client for a process that lives in
 * one network namespace (the agent must run in the namespace whose interfaces it attaches to).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

const WORKER_PATH = path.resolve(__dirname, 'nsworker.mjs')

/** Where the worker loads the agent from. */
export const DIST_INDEX = path.resolve(__dirname, '../../dist/index.js')

/** An error thrown inside the worker, rebuilt with the same name, message, code and errno. */
export class RemoteError extends Error {
  /** Every primitive own property of the original error (code, errno, op, hint, ...). */
  readonly props: Record<string, string | number | boolean>
  readonly code?: string
  readonly errno?: number
  constructor(e: SerializedError, op: string) {
    super(e.message)
    this.name = e.name
    this.props = e
    if (typeof e.code === 'string') this.code = e.code
    if (typeof e.errno === 'number') this.errno = e.errno
    this.stack = `${e.name}: ${e.message}\n    (in nsworker, op ${op})\n${String(e.stack ?? '')}`
  }
}

interface SerializedError extends Record<string, string | number | boolean> {
  name: string
  message: string
}

interface Reply {
  id: number
  ok: boolean
  result?: unknown
  error?: SerializedError
}

/** Agent counters, one bigint per SC_STATS name (bpf/syncookie.h). */
export type AgentStats = Record<string, bigint>

/** Options of the worker process itself. */
export interface NsWorkerOptions {
  /** Run as this uid/gid with no capabilities at all (setpriv). */
  unprivileged?: { uid: number; gid: number }
  /** How long to wait for the worker to say it is ready (default 10 s). */
  startTimeoutMs?: number
}

/** Result of tcp.connect. */
export interface ConnectResult {
  ok: boolean
  ms: number
  error?: string
  code?: string
  localAddress?: string
  localPort?: number
}

/** Result of tcp.connectMany. */
export interface ConnectManyResult {
  ok: number
  failed: number
  /** error code → count */
  errors: Record<string, number>
  firstErrors: string[]
  p50: number
  p99: number
  totalMs: number
}

/** Arguments of tcp.connect (`bytes` each way, verified by content). */
export interface ConnectArgs {
  host: string
  port: number
  localPort?: number
  localAddress?: string
  bytes?: number
  timeoutMs?: number
  /** Keep the connection open after the exchange (until tcp.closeAll): for `ss` checks. */
  hold?: boolean
}

/** What a listener saw. */
export interface ListenerInfo {
  accepted: number
  open: number
  verifyErrors: number
  errors: Record<string, number>
  remotes: { addr: string; port: number }[]
}

/**
 * Key argument for agent.rotateSecret: a hex string (→ Uint8Array), `{ length }` (a Uint8Array
 * of that many bytes) or `{ raw }` (passed to the agent as is, to test bad types).
 */
export type KeyArg = string | { length: number } | { raw: unknown }

const live = new Set<NsWorker>()

/** A process in network namespace `ns` answering RPC requests. */
export class NsWorker {
  private nextId = 1
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >()
  private exited: string | undefined

  private constructor(
    readonly ns: string,
    private readonly child: ChildProcess,
  ) {
    live.add(this)
    child.on('message', (msg: Reply) => this.onReply(msg))
    child.on('exit', (code, signal) => {
      this.exited = `worker in ${ns} exited (code ${String(code)}, signal ${String(signal)})`
      live.delete(this)
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer)
        p.reject(new Error(this.exited))
        this.pending.delete(id)
      }
    })
  }

  /** Starts a worker inside /run/netns/`ns` and waits until it is ready. */
  static async start(ns: string, opts: NsWorkerOptions = {}): Promise<NsWorker> {
    const argv = [`--net=/run/netns/${ns}`]
    if (opts.unprivileged) {
      const { uid, gid } = opts.unprivileged
      argv.push(
        'setpriv',
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--ambient-caps=-all',
        '--bounding-set=-all',
      )
    }
    argv.push(process.execPath, WORKER_PATH)
    const child = spawn('nsenter', argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const worker = new NsWorker(ns, child)
    const timeoutMs = opts.startTimeoutMs ?? 10_000
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.kill()
        reject(new Error(`worker in ${ns} not ready after ${timeoutMs} ms`))
      }, timeoutMs)
      const onMsg = (m: { ready?: boolean }): void => {
        if (m.ready === true) {
          clearTimeout(timer)
          child.off('message', onMsg)
          resolve()
        }
      }
      child.on('message', onMsg)
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`worker in ${ns} exited before ready (code ${String(code)}, signal ${String(signal)})`))
      })
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
    return worker
  }

  /** Process id of the worker (nsenter execs, so this is the node process). */
  get pid(): number | undefined {
    return this.child.pid
  }

  private onReply(msg: Reply): void {
    if (typeof msg.id !== 'number') return
    const p = this.pending.get(msg.id)
    if (p === undefined) return
    this.pending.delete(msg.id)
    clearTimeout(p.timer)
    if (msg.ok) p.resolve(msg.result)
    else p.reject(new RemoteError(msg.error ?? { name: 'Error', message: 'no error body' }, String(msg.id)))
  }

  /** Runs `op` in the worker; rejects with a {@link RemoteError} if it threw there. */
  call<T = unknown>(op: string, args?: unknown, timeoutMs = 30_000): Promise<T> {
    if (this.exited !== undefined) return Promise.reject(new Error(this.exited))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`nsworker ${this.ns}: ${op} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => resolve(v as T),
        reject: (e) => {
          if (e instanceof RemoteError) e.stack = e.stack?.replace(`op ${String(id)}`, `op ${op}`)
          reject(e)
        },
        timer,
      })
      this.child.send({ id, op, args })
    })
  }

  // ---- agent -------------------------------------------------------------------------------

  /** `new SynCookieAgent(opts)` in the worker. */
  async createAgent(opts: unknown): Promise<void> {
    await this.call('agent.create', opts)
  }

  attach(ifname: string, options?: { mode?: 'auto' | 'tcx' | 'clsact' }): Promise<void> {
    return this.call('agent.attach', options ? { ifname, options } : ifname, 20_000)
  }

  detach(ifname: string): Promise<void> {
    return this.call('agent.detach', ifname)
  }

  rotateSecret(key?: KeyArg): Promise<void> {
    return this.call('agent.rotateSecret', key)
  }

  async stats(): Promise<AgentStats> {
    const raw = await this.call<Record<string, string>>('agent.stats')
    const out: AgentStats = {}
    for (const [k, v] of Object.entries(raw)) out[k] = BigInt(v)
    return out
  }

  closeAgent(): Promise<void> {
    return this.call('agent.close')
  }

  // ---- tcp ---------------------------------------------------------------------------------

  async listen(args: { host: string; port: number; backlog?: number; mode?: 'echo-bulk' | 'hold' }): Promise<number> {
    return (await this.call<{ port: number }>('tcp.listen', args)).port
  }

  listenerInfo(host: string, port: number): Promise<ListenerInfo> {
    return this.call('tcp.listenerInfo', { host, port })
  }

  connect(args: ConnectArgs): Promise<ConnectResult> {
    return this.call('tcp.connect', args, (args.timeoutMs ?? 10_000) + 5_000)
  }

  connectMany(
    args: { host: string; port: number; count: number; concurrency?: number; timeoutMs?: number; bytes?: number },
    rpcTimeoutMs: number,
  ): Promise<ConnectManyResult> {
    return this.call('tcp.connectMany', args, rpcTimeoutMs)
  }

  closeAll(): Promise<void> {
    return this.call('tcp.closeAll')
  }

  /** SIGKILLs the worker (by pid). */
  kill(): void {
    if (this.exited === undefined && this.child.exitCode === null) this.child.kill('SIGKILL')
    live.delete(this)
  }

  /** Kills the worker and waits until it has exited (bounded). */
  async killAndWait(timeoutMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.kill()
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, timeoutMs))])
  }
}

/** Kills every worker this process started. */
export function killAllWorkers(): void {
  for (const w of [...live]) w.kill()
}

process.on('exit', killAllWorkers)
