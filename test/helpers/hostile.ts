/**
 * TypeScript side of the hostile/runtime test helpers: typed calls of test/helpers/ops-hostile.mjs
 * in a worker, BPF neighbours and object ids through test/helpers/hostile-bpf.py, raw frames
 * through test/helpers/hostile-send.py.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { run, spawnFirstLine } from './exec.js'
import { nsExec } from './netns.js'
import type { NsWorker } from './worker.js'

const HOSTILE_BPF = path.resolve(__dirname, 'hostile-bpf.py')
const HOSTILE_SEND = path.resolve(__dirname, 'hostile-send.py')

/** Open fds of a worker by kind and the BPF object ids they hold (ops-hostile.mjs). */
export interface Resources {
  fds: number
  kinds: Record<string, number>
  ids: { prog: number[]; map: number[]; link: number[]; btf: number[] }
  rss: number
  heapUsed: number
}

/** Loads ops-hostile.mjs into the worker (idempotent in effect: ops are replaced). */
export async function loadHostileOps(w: NsWorker): Promise<void> {
  await w.call('worker.load', './ops-hostile.mjs')
}

export function resources(w: NsWorker): Promise<Resources> {
  return w.call('hostile.resources')
}

/** What a resource snapshot says in one line, for the report. */
export function describeResources(r: Resources): string {
  const k = (name: string): number => r.kinds[name] ?? 0
  return `fds ${r.fds} (bpf-prog ${k('bpf-prog')}, bpf-map ${k('bpf-map')}, bpf_link ${k('bpf_link')}, btf ${k('btf')}), rss ${(r.rss / 2 ** 20).toFixed(1)} MiB, heap ${(r.heapUsed / 2 ** 20).toFixed(1)} MiB`
}

/** Every BPF object id in the kernel. */
export async function bpfObjectIds(): Promise<{ progs: number[]; maps: number[]; links: number[] }> {
  const { stdout } = await run(['python3', HOSTILE_BPF, 'ids'], { timeoutMs: 30_000 })
  return JSON.parse(stdout) as { progs: number[]; maps: number[]; links: number[] }
}

/** A counting program another party put on the interface (hostile-bpf.py). */
export interface CounterProg {
  progId: number
  mapId: number
  /** The process holding a tcx link (tcx counters only). */
  child?: ChildProcess
}

/** Attaches a counting program to tcx ingress of `dev` in `ns`, held by a child process. */
export async function holdTcxCounter(ns: string, dev: string, ret = -1): Promise<CounterProg> {
  const { line, child } = await spawnFirstLine(['nsenter', `--net=/run/netns/${ns}`, 'python3', HOSTILE_BPF, 'tcx-counter', dev, '--ret', String(ret)], 'tcx-counter')
  const { prog_id: progId, map_id: mapId } = JSON.parse(line) as { prog_id: number; map_id: number }
  return { progId, mapId, child }
}

/** Adds a counting cls_bpf filter (direct action) at clsact ingress of `dev`; the qdisc must exist. */
export async function addClsactCounter(ns: string, dev: string, prio: number, handle: number, ret = -1): Promise<CounterProg> {
  const { stdout } = await run([
    'nsenter', `--net=/run/netns/${ns}`, 'python3', HOSTILE_BPF, 'clsact-counter', dev,
    '--prio', String(prio), '--handle', String(handle), '--ret', String(ret),
  ])
  const { prog_id: progId, map_id: mapId } = JSON.parse(stdout) as { prog_id: number; map_id: number }
  return { progId, mapId }
}

/** The counter of a {@link CounterProg}. */
export async function readCounter(c: CounterProg): Promise<number> {
  const { stdout } = await run(['python3', HOSTILE_BPF, 'read-counter', String(c.mapId)])
  return (JSON.parse(stdout) as { count: number }).count
}

/** Sends frames out of `dev` in `ns` and returns the frames `dev` received meanwhile. */
export async function sendFrames(
  ns: string,
  dev: string,
  frames: readonly Uint8Array[],
  opts: { listenMs?: number; gapMs?: number; maxFrames?: number } = {},
): Promise<Buffer[]> {
  const input = frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n'
  const argv = [
    'ip', 'netns', 'exec', ns, 'python3', HOSTILE_SEND, '--dev', dev,
    '--listen-ms', String(opts.listenMs ?? 300), '--gap-ms', String(opts.gapMs ?? 0), '--max-frames', String(opts.maxFrames ?? 1000),
  ]
  const stdout = await new Promise<string>((resolve, reject) => {
    const [file, ...args] = argv
    const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`hostile-send.py exited with ${String(code)}: ${err}`))
    })
    child.stdin.end(input)
  })
  return (JSON.parse(stdout) as { received: string[] }).received.map((h) => Buffer.from(h, 'hex'))
}

/** `tc qdisc show dev DEV` in `ns`. */
export async function qdiscs(ns: string, dev: string): Promise<string> {
  return (await nsExec(ns, ['tc', 'qdisc', 'show', 'dev', dev])).stdout.trim()
}

/** The value at key 0 of an array map, by id (per-CPU: every CPU's copy). */
export async function readMapById(mapId: number): Promise<Buffer> {
  const { stdout } = await run(['python3', HOSTILE_BPF, 'read-map', String(mapId)])
  return Buffer.from((JSON.parse(stdout) as { hex: string }).hex, 'hex')
}
