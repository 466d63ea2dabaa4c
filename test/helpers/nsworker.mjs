// A process that lives in one network namespace and runs requests for a kernel test.
//
// Started by test/helpers/worker.ts as
//   nsenter --net=/run/netns/NAME [setpriv ...] node test/helpers/nsworker.mjs
// with an IPC channel. Requests are {id, op, args}; replies {id, ok: true, result} or
// {id, ok: false, error: {name, message, code, errno, ...}}. The agent lives here because tcx
// attach and if_nametoindex resolve in the caller's network namespace.
//
// TCP protocol between tcp.connect and tcp.listen: the client sends an 8-byte header
// (u32 length N, u32 seed, big-endian) and N pattern bytes; the server checks every byte, then
// sends N pattern bytes of its own (seed ^ 0xa5a5a5a5). In 'echo-bulk' mode the server then
// closes first, so the server holds TIME_WAIT; in 'hold' mode both ends stay open until
// tcp.closeAll.

import { createRequire } from 'node:module'
import { readlinkSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const distPath = process.env.SCA_DIST_INDEX ?? path.resolve(here, '../../dist/index.js')
const require = createRequire(import.meta.url)

// ------------------------------------------------------------------------------------------
// Deterministic payload: byte i of stream `seed` is TABLE[(seed + i) % PRIME]. A prime period
// that matches no segment size catches reordering, duplication and offset errors.

const PRIME = 65521
const TABLE = (() => {
  const t = Buffer.alloc(PRIME)
  let x = 0x9e3779b9
  for (let i = 0; i < PRIME; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    t[i] = x & 0xff
  }
  return t
})()
const REPLY_XOR = 0xa5a5a5a5

function pattern(seed, offset, length) {
  const out = Buffer.allocUnsafe(length)
  let pos = (seed + offset) % PRIME
  let i = 0
  while (i < length) {
    const n = Math.min(length - i, PRIME - pos)
    TABLE.copy(out, i, pos, pos + n)
    i += n
    pos = 0
  }
  return out
}

function matches(chunk, seed, offset) {
  let pos = (seed + offset) % PRIME
  let i = 0
  while (i < chunk.length) {
    const n = Math.min(chunk.length - i, PRIME - pos)
    if (chunk.compare(TABLE, pos, pos + n, i, i + n) !== 0) return false
    i += n
    pos = 0
  }
  return true
}

function header(length, seed) {
  const h = Buffer.alloc(8)
  h.writeUInt32BE(length, 0)
  h.writeUInt32BE(seed, 4)
  return h
}

// ------------------------------------------------------------------------------------------
// Agent

let agentModule
let agent

function loadAgentModule() {
  if (agentModule === undefined) {
    try {
      agentModule = require(distPath)
    } catch (err) {
      const e = new Error(`cannot load the agent from ${distPath} (run npm run build): ${err.message}`)
      e.code = 'ERR_NO_DIST'
      throw e
    }
  }
  return agentModule
}

function needAgent() {
  if (agent === undefined) throw new Error('no agent in this worker: call agent.create first')
  return agent
}

function keyArg(key) {
  // string: hex bytes → Uint8Array; {length}: that many random-ish bytes; {raw}: passed as is.
  if (key === undefined || key === null) return undefined
  if (typeof key === 'string') return Uint8Array.from(Buffer.from(key, 'hex'))
  if (typeof key === 'object' && 'length' in key && typeof key.length === 'number') {
    return Uint8Array.from({ length: key.length }, (_, i) => (i * 37 + 11) & 0xff)
  }
  if (typeof key === 'object' && 'raw' in key) return key.raw
  throw new TypeError(`nsworker: bad key argument ${JSON.stringify(key)}`)
}

function statsToStrings(stats) {
  const out = {}
  for (const [k, v] of Object.entries(stats)) out[k] = typeof v === 'bigint' ? v.toString() : v
  return out
}

// ------------------------------------------------------------------------------------------
// TCP

const listeners = new Map() // `${host}|${port}` → listener
const clientSockets = new Set()

function listenerKey(host, port) {
  return `${host}|${port}`
}

function serveConnection(l, socket) {
  l.accepted++
  l.open++
  l.sockets.add(socket)
  if (l.remotes.length < 1000) l.remotes.push({ addr: socket.remoteAddress, port: socket.remotePort })
  socket.setNoDelay(true)
  let head = Buffer.alloc(0)
  let need = -1
  let seed = 0
  let got = 0
  const reply = () => {
    if (need > 0) socket.write(pattern((seed ^ REPLY_XOR) >>> 0, 0, need))
    if (l.mode === 'echo-bulk') socket.end()
  }
  socket.on('data', (chunk) => {
    if (need < 0) {
      head = Buffer.concat([head, chunk])
      if (head.length < 8) return
      need = head.readUInt32BE(0)
      seed = head.readUInt32BE(4)
      chunk = head.subarray(8)
      if (need === 0 && chunk.length === 0) return reply()
    }
    if (chunk.length === 0) return
    if (got + chunk.length > need || !matches(chunk, seed, got)) {
      l.verifyErrors++
      socket.destroy()
      return
    }
    got += chunk.length
    if (got === need) reply()
  })
  socket.on('error', (err) => {
    l.errors[err.code ?? err.message] = (l.errors[err.code ?? err.message] ?? 0) + 1
  })
  socket.on('close', () => {
    l.open--
    l.sockets.delete(socket)
  })
}

async function tcpListen({ host, port, backlog = 1024, mode = 'echo-bulk' }) {
  if (mode !== 'echo-bulk' && mode !== 'hold') throw new RangeError(`tcp.listen: unknown mode ${mode}`)
  const key = listenerKey(host, port)
  if (listeners.has(key)) throw new Error(`tcp.listen: already listening on ${key}`)
  const l = { mode, accepted: 0, open: 0, verifyErrors: 0, errors: {}, remotes: [], sockets: new Set() }
  l.server = net.createServer({ noDelay: true }, (socket) => serveConnection(l, socket))
  await new Promise((resolve, reject) => {
    l.server.once('error', reject)
    l.server.listen({ host, port, backlog, ipv6Only: host.includes(':') }, () => {
      l.server.off('error', reject)
      resolve()
    })
  })
  const actual = l.server.address().port
  listeners.set(listenerKey(host, actual), l)
  return { port: actual }
}

function tcpListenerInfo({ host, port }) {
  const l = listeners.get(listenerKey(host, port))
  if (l === undefined) throw new Error(`tcp.listenerInfo: no listener on ${host}|${port}`)
  return { accepted: l.accepted, open: l.open, verifyErrors: l.verifyErrors, errors: l.errors, remotes: l.remotes }
}

let seedCounter = 1

function connectOnce({ host, port, localPort, localAddress, bytes = 0, timeoutMs = 10_000, hold = false }) {
  const seed = (Math.imul(seedCounter++, 2654435761) ^ process.pid) >>> 0
  const t0 = performance.now()
  return new Promise((resolve) => {
    let done = false
    let got = 0
    let local = {}
    const socket = net.connect({ host, port, localPort, localAddress, noDelay: true })
    const finish = (error, code) => {
      if (done) return
      done = true
      clearTimeout(timer)
      const ms = performance.now() - t0
      if (error !== undefined) {
        socket.destroy()
        resolve({ ok: false, ms, error, code: code ?? 'ERROR', ...local })
      } else {
        if (hold) clientSockets.add(socket)
        resolve({ ok: true, ms, ...local })
      }
    }
    const timer = setTimeout(
      () => finish(`timed out after ${timeoutMs} ms (received ${got}/${bytes} bytes)`, 'TEST_TIMEOUT'),
      timeoutMs,
    )
    socket.on('connect', () => {
      local = { localAddress: socket.localAddress, localPort: socket.localPort }
      socket.write(header(bytes, seed))
      if (bytes > 0) socket.write(pattern(seed, 0, bytes))
      if (bytes === 0 && hold) finish()
    })
    socket.on('data', (chunk) => {
      if (got + chunk.length > bytes) return finish(`received more than ${bytes} bytes`, 'TOO_MUCH')
      if (!matches(chunk, (seed ^ REPLY_XOR) >>> 0, got)) return finish(`payload mismatch at byte ${got}`, 'MISMATCH')
      got += chunk.length
      if (got === bytes && hold) finish()
    })
    socket.on('end', () => {
      if (got !== bytes) finish(`server closed after ${got}/${bytes} bytes`, 'SHORT')
    })
    socket.on('error', (err) => finish(err.message, err.code))
    socket.on('close', () => {
      if (got === bytes) finish()
      else finish(`closed after ${got}/${bytes} bytes`, 'SHORT')
    })
  })
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

async function connectMany({ host, port, count, concurrency = 1, timeoutMs = 10_000, bytes = 16 }) {
  if (!Number.isInteger(count) || count < 0 || count > 1_000_000) throw new RangeError('connectMany: count')
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 4096) {
    throw new RangeError('connectMany: concurrency')
  }
  const t0 = performance.now()
  const times = []
  const errors = {}
  const firstErrors = []
  let next = 0
  let ok = 0
  let failed = 0
  const lane = async () => {
    while (next < count) {
      next++
      const r = await connectOnce({ host, port, bytes, timeoutMs })
      times.push(r.ms)
      if (r.ok) ok++
      else {
        failed++
        errors[r.code] = (errors[r.code] ?? 0) + 1
        if (firstErrors.length < 5) firstErrors.push(`${r.code}: ${r.error}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, lane))
  times.sort((a, b) => a - b)
  return {
    ok,
    failed,
    errors,
    firstErrors,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    totalMs: performance.now() - t0,
  }
}

async function closeAll() {
  for (const s of clientSockets) s.destroy()
  clientSockets.clear()
  const closing = []
  for (const l of listeners.values()) {
    for (const s of l.sockets) s.destroy()
    closing.push(new Promise((resolve) => l.server.close(() => resolve())))
  }
  listeners.clear()
  await Promise.all(closing)
  return { closed: closing.length }
}

// ------------------------------------------------------------------------------------------
// RPC

const ops = {
  ping: () => ({ pid: process.pid, uid: process.getuid(), netns: readlinkSync('/proc/self/ns/net') }),
  'module.exports': () => Object.keys(loadAgentModule()).sort(),
  'module.esmExports': async () => {
    const esm = await import(pathToFileURL(distPath.replace(/\.js$/, '.mjs')).href)
    return Object.keys(esm).filter((k) => k !== 'default').sort()
  },
  'agent.create': (opts) => {
    const { SynCookieAgent } = loadAgentModule()
    agent = new SynCookieAgent(opts)
    return { created: true }
  },
  // args: the interface name, or { ifname, options } (options as in SynCookieAgent.attach)
  'agent.attach': (a) => (typeof a === 'string' ? needAgent().attach(a) : needAgent().attach(a.ifname, a.options)),
  'agent.detach': (ifname) => needAgent().detach(ifname),
  'agent.rotateSecret': (key) => {
    const k = keyArg(key)
    return k === undefined && key === undefined ? needAgent().rotateSecret() : needAgent().rotateSecret(k)
  },
  'agent.stats': async () => statsToStrings(await needAgent().stats()),
  'agent.close': () => needAgent().close(),
  'tcp.listen': tcpListen,
  'tcp.listenerInfo': tcpListenerInfo,
  'tcp.connect': connectOnce,
  'tcp.connectMany': connectMany,
  'tcp.closeAll': closeAll,
  // Extension modules (test/helpers/ops-*.mjs) add ops of their own: they export
  // `register({ ops, needAgent, loadAgentModule })`.
  'worker.load': async (modPath) => {
    const m = await import(pathToFileURL(path.resolve(here, modPath)).href)
    m.register({ ops, needAgent, loadAgentModule })
    return Object.keys(ops).sort()
  },
}

function serializeError(err) {
  if (!(err instanceof Error)) return { name: 'NonError', message: String(err) }
  const out = { name: err.name, message: err.message, stack: err.stack }
  for (const [k, v] of Object.entries(err)) {
    if (['string', 'number', 'boolean'].includes(typeof v)) out[k] = v
    else if (typeof v === 'bigint') out[k] = v.toString()
  }
  if (err.code !== undefined) out.code = err.code
  if (err.errno !== undefined) out.errno = err.errno
  if (agentModule?.BpfError !== undefined) out.isBpfError = err instanceof agentModule.BpfError
  return out
}

process.on('message', async (msg) => {
  const { id, op, args } = msg
  try {
    const fn = ops[op]
    if (fn === undefined) throw new Error(`nsworker: unknown op ${op}`)
    const result = await fn(args)
    process.send({ id, ok: true, result: result === undefined ? null : result })
  } catch (err) {
    process.send({ id, ok: false, error: serializeError(err) })
  }
})

// The parent went away (test finished or crashed): release everything and leave.
process.on('disconnect', () => {
  setTimeout(() => process.exit(0), 2_000).unref()
  Promise.resolve(agent?.close?.())
    .catch(() => undefined)
    .finally(() => process.exit(0))
})

process.send({ ready: true, pid: process.pid })
