// Namespace-worker ops for `npm run bench:flood` (loaded with worker.load into
// test/helpers/nsworker.mjs): the listener in the server namespace and the
// legitimate client in the client namespace.
//
// A legitimate connection: connect, send 16 bytes, get 16 bytes back, then
// the client closes first (so TIME_WAIT stays on the client, where
// tcp_tw_reuse lets the port be used again). It succeeds if the reply is in
// within the timeout, measured from connect().
import { once } from 'node:events'
import net from 'node:net'
import { performance } from 'node:perf_hooks'

const MESSAGE = Buffer.from('syncookie-bench!') // 16 bytes

export function register({ ops }) {
  ops['flood.listen'] = listen
  ops['flood.unlisten'] = unlisten
  ops['flood.legit'] = legit
}

const servers = new Map()

async function listen({ host, port, backlog }) {
  const server = net.createServer({ noDelay: true }, (s) => {
    let got = 0
    s.on('data', (d) => {
      got += d.length
      if (got >= MESSAGE.length) s.write(MESSAGE)
    })
    s.on('end', () => s.end())
    s.on('error', () => s.destroy())
  })
  server.listen({ host, port, backlog })
  await once(server, 'listening')
  servers.set(port, server)
  return { port }
}

async function unlisten({ port }) {
  const server = servers.get(port)
  servers.delete(port)
  if (server) await new Promise((resolve) => server.close(() => resolve()))
}

function connectOnce(host, port, timeoutMs) {
  const t0 = performance.now()
  return new Promise((resolve) => {
    let connectMs = -1
    let got = 0
    let done = false
    const s = net.connect({ host, port, noDelay: true })
    const finish = (ok, code) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (ok) s.end()
      else s.destroy()
      resolve({ ok, code, connectMs, totalMs: performance.now() - t0 })
    }
    const timer = setTimeout(() => finish(false, connectMs < 0 ? 'TIMEOUT_CONNECT' : 'TIMEOUT_REPLY'), timeoutMs)
    s.on('connect', () => {
      connectMs = performance.now() - t0
      s.write(MESSAGE)
    })
    s.on('data', (d) => {
      got += d.length
      if (got >= MESSAGE.length) finish(true)
    })
    s.on('error', (err) => finish(false, err.code ?? 'ERROR'))
    s.on('close', () => finish(got >= MESSAGE.length, 'CLOSED'))
  })
}

/**
 * Lanes of connects for durationMs; each lane has one connection in flight
 * at a time and waits its group's pauseMs between two. Returns, per lane group, the attempts, the
 * successes, error codes, and every attempt's time (connect time of a
 * success; the timeout for a failure) for percentiles on the caller's side.
 */
async function legit({ host, port, durationMs, timeoutMs, lanes }) {
  const end = performance.now() + durationMs
  const groups = {}
  const run = async (group) => {
    const g = (groups[group.name] ??= { attempts: 0, ok: 0, errors: {}, times: [], totalTimes: [] })
    while (performance.now() < end) {
      const r = await connectOnce(host, port, timeoutMs)
      g.attempts++
      if (r.ok) {
        g.ok++
        g.times.push(r.connectMs)
        g.totalTimes.push(r.totalMs)
      } else {
        g.errors[r.code] = (g.errors[r.code] ?? 0) + 1
        g.times.push(timeoutMs)
      }
      if (group.pauseMs) await new Promise((resolve) => setTimeout(resolve, group.pauseMs))
    }
  }
  await Promise.all(lanes.flatMap((group) => Array.from({ length: group.concurrency }, () => run(group))))
  return groups
}
