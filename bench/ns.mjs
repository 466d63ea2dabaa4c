// Namespaces and namespace workers for the benchmarks. Every name starts with
// a benchmark prefix (scbench-, scflood-) and the pid of the process that made
// it; what a crashed run left behind is removed by the next run of the same
// prefix. Nothing outside these namespaces is created or changed.
import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const NSWORKER = path.join(root, 'test/helpers/nsworker.mjs')

/** Runs argv, returns stdout; throws with stderr on failure. */
export function sh(argv, opts = {}) {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000, ...opts })
}

export function nsExec(ns, argv, opts) {
  return sh(['ip', 'netns', 'exec', ns, ...argv], opts)
}

export function listNamespaces() {
  const out = sh(['ip', '-j', 'netns', 'list']).trim()
  return out ? JSON.parse(out).map((n) => n.name) : []
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Deletes a namespace of ours, first killing (by pid) what still runs in it. */
export function deleteNamespace(ns) {
  try {
    for (const pid of sh(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) {
      if (pid > 1 && pid !== process.pid) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
    }
  } catch {
    // already gone
  }
  try {
    sh(['ip', 'netns', 'del', ns])
  } catch {
    // already gone
  }
}

/** Removes `${prefix}-<pid>-*` namespaces whose process is dead. */
export function removeLeftovers(prefix) {
  const re = new RegExp(`^${prefix}-(\\d+)-[a-z0-9]+$`)
  for (const ns of listNamespaces()) {
    const m = re.exec(ns)
    if (m && (Number(m[1]) === process.pid || !alive(Number(m[1])))) deleteNamespace(ns)
  }
}

/** Creates namespace `${prefix}-${pid}-${role}` with lo up; registered for {@link destroyAll}. */
const made = new Set()
export function createNamespace(prefix, role) {
  const ns = `${prefix}-${process.pid}-${role}`
  sh(['ip', 'netns', 'add', ns])
  made.add(ns)
  sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  return ns
}

export function destroyAll() {
  for (const ns of made) deleteNamespace(ns)
  made.clear()
}

// Whatever happens, the namespaces go: normal exit, an exception, Ctrl-C, SIGTERM.
process.on('exit', destroyAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    destroyAll()
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
  })
}

/**
 * A test/helpers/nsworker.mjs process in `ns` (optionally pinned with taskset
 * to `cpu`), driven over IPC. call(op, args, timeoutMs) rejects on the
 * worker's error, on a timeout, or when the worker dies.
 */
export async function startWorker(ns, { cpu, env } = {}) {
  const argv = [`--net=/run/netns/${ns}`]
  if (cpu !== undefined) argv.push('taskset', '-c', String(cpu))
  argv.push(process.execPath, NSWORKER)
  const child = spawn('nsenter', argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } })
  let id = 0
  let dead = null
  const pending = new Map()
  const failAll = (msg) => {
    dead = msg
    for (const p of pending.values()) p.reject(new Error(msg))
    pending.clear()
  }
  child.on('exit', (code, signal) => failAll(`worker in ${ns} exited (${code ?? signal})`))
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker in ${ns} not ready after 10 s`)), 10_000)
    child.on('message', (m) => {
      if (m.ready) {
        clearTimeout(timer)
        return resolve()
      }
      const p = pending.get(m.id)
      if (!p) return
      pending.delete(m.id)
      clearTimeout(p.timer)
      if (m.ok) p.resolve(m.result)
      else p.reject(Object.assign(new Error(`${m.error.message} (in ${ns})`), m.error))
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(dead))
    })
  })
  return {
    pid: child.pid,
    call(op, args, timeoutMs = 30_000) {
      if (dead) return Promise.reject(new Error(dead))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(myId)
          reject(new Error(`worker in ${ns}: ${op} did not answer within ${timeoutMs} ms`))
        }, timeoutMs)
        const myId = ++id
        pending.set(myId, { resolve, reject, timer })
        child.send({ id: myId, op, args })
      })
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child)
      child.kill('SIGKILL')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))])
    },
  }
}

function once(child) {
  return new Promise((resolve) => child.once('exit', resolve))
}
