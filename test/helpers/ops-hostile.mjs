// nsworker extension for the hostile and runtime tests: loops that would be too slow or too
// noisy as one RPC per step run here, inside the worker, and report figures.
//
// Loaded with `worker.call('worker.load', './ops-hostile.mjs')`. Ops:
//   hostile.resources               → Resources of this process (after a full GC)
//   hostile.programIds              → { prog, maps: { config, secrets, ports, stats } }: kernel ids
//                                     of the worker's agent's program and maps (loads it)
//   hostile.attachments             → [[ifname, mode], ...]: the agent's `attachments`
//   hostile.cycleAttach({ ifname, count, mode? })
//       attach + detach of the worker's agent, `count` times (after one warm-up cycle)
//       → { before, after, ms, linkIds }  (linkIds: tcx link ids seen on sampled cycles)
//   hostile.cycleAgents({ ifname, count, ports, mode? })
//       new SynCookieAgent + attach + close, `count` times (after one warm-up agent)
//       → { before, after, ms, progIds, mapIds }  (every program/map id those agents loaded)
//   hostile.connectFor({ host, port, durationMs, concurrency?, bytes?, timeoutMs?, localAddresses? })
//       connects (tcp.connect of nsworker.mjs) for durationMs, `concurrency` lanes, each lane
//       cycling through localAddresses → { ok, failed, errors, firstErrors, totalMs, p50, p99, max }
//   hostile.rotateEvery({ intervalMs, durationMs })
//       rotateSecret() of the worker's agent every intervalMs (drift-corrected, gaps ≥ intervalMs / 2)
//       → { rotations, failures, firstError?, meanGapMs, maxGapMs, minGapMs }
//   hostile.setClock(ms | null)    the program clock (SynCookieAgent._internals)
//   hostile.apiCall({ ctor, method?, args? })
//       new SynCookieAgent(...ctor), then agent[method](...args), with the arguments decoded
//       from tagged JSON (see decodeValue: NaN, bigints, typed arrays, holes... survive the
//       IPC channel) → { ctor: Outcome, call?: Outcome, usableAfter?: boolean }, Outcome =
//       { ok: true, value? } | { ok: false, sync: boolean, error: { name, message, code } }.
//       `sync` says the call threw instead of returning a rejected promise.
//   hostile.exposure({ keyHex, ifname, missing })
//       runs every agent call that can fail, with `keyHex` as the secret, capturing
//       stdout/stderr/console meanwhile → { output, errors: [text], inspected: [text] }: all the
//       text the agent produced or exposed, for the "secrets never leak" test.
//
// Resources = { fds, kinds: { 'bpf-prog', 'bpf-map', 'bpf_link', btf, ... }, ids: { prog, map,
//   link, btf }, rss, heapUsed }: open fds of this process by anon-inode kind, the BPF object
//   ids they hold (from /proc/self/fdinfo), and memory.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { inspect } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

/** Open fds of this process grouped by anon-inode kind, with the BPF ids they hold. */
function fdSnapshot() {
  const kinds = {}
  const ids = { prog: [], map: [], link: [], btf: [] }
  let fds = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    let target
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // the fd of readdir itself, gone already
    }
    fds++
    const m = /^anon_inode:\[?([^\]]+)\]?$/.exec(target)
    const kind = m ? m[1] : target.startsWith('socket:') ? 'socket' : target.startsWith('pipe:') ? 'pipe' : 'file'
    kinds[kind] = (kinds[kind] ?? 0) + 1
    if (!m) continue
    let info
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    } catch {
      continue
    }
    for (const [key, field] of [['prog', 'prog_id'], ['map', 'map_id'], ['link', 'link_id'], ['btf', 'btf_id']]) {
      // a link's fdinfo also names its prog_id: count it as a link only
      if (key === 'prog' && kind !== 'bpf-prog') continue
      const v = new RegExp(`^${field}:\\s*(\\d+)`, 'm').exec(info)
      if (v) ids[key].push(Number(v[1]))
    }
  }
  return { fds, kinds, ids }
}

async function resources() {
  // Two rounds: finalizers (a NativeTcFilter's safety net) run between them.
  gc()
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  const m = process.memoryUsage()
  return { ...fdSnapshot(), rss: m.rss, heapUsed: m.heapUsed }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

function checkCount(op, count, max) {
  if (!Number.isInteger(count) || count < 1 || count > max) throw new RangeError(`${op}: count must be 1..${max}, got ${count}`)
}

function checkDuration(op, ms) {
  if (!Number.isFinite(ms) || ms < 1 || ms > 900_000) throw new RangeError(`${op}: duration must be 1..900000 ms, got ${ms}`)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Tagged JSON → value: { $: 'nan' | 'inf' | '-inf' | '-0' | 'undefined' | 'symbol' | 'function'
 * | 'date' }, { $: 'bigint', v: '80' }, { $: 'u8' | 'buffer' | 'i8' | 'u16' | 'clamped' |
 * 'arraybuffer' | 'dataview', length, fill? }, { $: 'sparse', length, items?: { index: value } },
 * { $: 'set', items: [...] }, { $: 'map' }, { $: 'array', items: [...] } (to put a tagged value
 * at the top level of an array), { $: 'throwing' } (an object whose every property read
 * throws); anything else is decoded recursively.
 */
export function decodeValue(v) {
  if (Array.isArray(v)) return v.map(decodeValue)
  if (v === null || typeof v !== 'object') return v
  if (!('$' in v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeValue(x)]))
  const bytes = (n) => Array.from({ length: n }, (_, i) => (v.fill ?? i * 37 + 11) & 0xff)
  switch (v.$) {
    case 'nan': return NaN
    case 'inf': return Infinity
    case '-inf': return -Infinity
    case '-0': return -0
    case 'undefined': return undefined
    case 'symbol': return Symbol('x')
    case 'function': return () => 8080
    case 'date': return new Date(0)
    case 'bigint': return BigInt(v.v)
    case 'u8': return Uint8Array.from(bytes(v.length))
    case 'buffer': return Buffer.from(bytes(v.length))
    case 'i8': return Int8Array.from(bytes(v.length))
    case 'u16': return new Uint16Array(v.length)
    case 'clamped': return Uint8ClampedArray.from(bytes(v.length))
    case 'arraybuffer': return Uint8Array.from(bytes(v.length)).buffer
    case 'dataview': return new DataView(Uint8Array.from(bytes(v.length)).buffer)
    case 'sparse': {
      const a = new Array(v.length)
      for (const [i, x] of Object.entries(v.items ?? {})) a[Number(i)] = decodeValue(x)
      return a
    }
    case 'set': return new Set(decodeValue(v.items ?? []))
    case 'map': return new Map()
    case 'array': return decodeValue(v.items ?? [])
    case 'throwing': return new Proxy({}, { get() { throw new Error('property read') } })
    default: throw new RangeError(`decodeValue: unknown tag ${v.$}`)
  }
}

function errorFields(err) {
  return err instanceof Error ? { name: err.name, message: err.message, code: err.code } : { name: typeof err, message: String(err) }
}

export function register({ ops, needAgent, loadAgentModule }) {
  const SynCookieAgent = () => loadAgentModule().SynCookieAgent
  const attachOpts = (mode) => (mode === undefined ? {} : { mode })

  /** The kernel ids of an agent's program and maps (loading it if needed). */
  const programIds = async (agent) => {
    const p = await SynCookieAgent()._internals(agent).load()
    const id = (fd) => Number(/^(?:prog|map)_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1])
    const maps = {}
    for (const name of ['config', 'secrets', 'ports', 'stats']) maps[name] = id(p.mapFd(name))
    return { prog: id(p.progFd()), maps }
  }

  ops['hostile.resources'] = resources
  ops['hostile.programIds'] = () => programIds(needAgent())
  ops['hostile.attachments'] = () => [...needAgent().attachments]

  ops['hostile.cycleAttach'] = async ({ ifname, count, mode }) => {
    checkCount('hostile.cycleAttach', count, 100_000)
    const agent = needAgent()
    await agent.attach(ifname, attachOpts(mode))
    await agent.detach(ifname)
    const before = await resources()
    const linkIds = new Set()
    const every = Math.max(1, Math.floor(count / 50))
    const t0 = performance.now()
    for (let i = 0; i < count; i++) {
      await agent.attach(ifname, attachOpts(mode))
      if (i % every === 0) for (const id of fdSnapshot().ids.link) linkIds.add(id)
      await agent.detach(ifname)
    }
    const ms = performance.now() - t0
    return { before, after: await resources(), ms, linkIds: [...linkIds] }
  }

  ops['hostile.cycleAgents'] = async ({ ifname, count, ports, mode }) => {
    checkCount('hostile.cycleAgents', count, 10_000)
    const Agent = SynCookieAgent()
    const once = async (ids) => {
      const a = new Agent({ ports })
      try {
        await a.attach(ifname, attachOpts(mode))
        if (ids) {
          const own = await programIds(a)
          ids.prog.add(own.prog)
          for (const id of Object.values(own.maps)) ids.map.add(id)
        }
      } finally {
        await a.close()
      }
    }
    await once(undefined)
    const before = await resources()
    const ids = { prog: new Set(), map: new Set() }
    const t0 = performance.now()
    for (let i = 0; i < count; i++) await once(ids)
    const ms = performance.now() - t0
    return { before, after: await resources(), ms, progIds: [...ids.prog], mapIds: [...ids.map] }
  }

  ops['hostile.connectFor'] = async ({ host, port, durationMs, concurrency = 4, bytes = 16, timeoutMs = 5_000, localAddresses = [undefined] }) => {
    checkDuration('hostile.connectFor', durationMs)
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new RangeError('hostile.connectFor: concurrency 1..256')
    const connect = ops['tcp.connect']
    const deadline = performance.now() + durationMs
    const times = []
    const errors = {}
    const firstErrors = []
    let ok = 0
    let failed = 0
    const t0 = performance.now()
    const lane = async (l) => {
      for (let i = l; performance.now() < deadline; i += concurrency) {
        const localAddress = localAddresses[i % localAddresses.length] ?? undefined
        const r = await connect({ host, port, bytes, timeoutMs, localAddress })
        times.push(r.ms)
        if (r.ok) ok++
        else {
          failed++
          errors[r.code] = (errors[r.code] ?? 0) + 1
          if (firstErrors.length < 5) firstErrors.push(`${r.code}: ${r.error} (from ${r.localAddress ?? localAddress}:${r.localPort})`)
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, (_, l) => lane(l)))
    times.sort((a, b) => a - b)
    return { ok, failed, errors, firstErrors, totalMs: performance.now() - t0, p50: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1) ?? 0 }
  }

  ops['hostile.rotateEvery'] = async ({ intervalMs, durationMs }) => {
    checkDuration('hostile.rotateEvery', durationMs)
    if (!(intervalMs >= 1 && intervalMs <= 60_000)) throw new RangeError('hostile.rotateEvery: intervalMs 1..60000')
    const agent = needAgent()
    const t0 = performance.now()
    let rotations = 0
    let failures = 0
    let firstError
    let last = t0
    let maxGapMs = 0
    let minGapMs = Infinity
    for (let k = 1; ; k++) {
      // drift-corrected, but never two rotations closer than half the interval: a cookie
      // survives one rotation, and a catch-up burst after a pause is not "every intervalMs"
      const due = Math.max(t0 + k * intervalMs, rotations > 0 ? last + intervalMs / 2 : 0)
      if (due > t0 + durationMs) break
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      try {
        await agent.rotateSecret()
        rotations++
      } catch (err) {
        failures++
        firstError ??= String(err)
      }
      const now = performance.now()
      if (rotations > 1) {
        maxGapMs = Math.max(maxGapMs, now - last)
        minGapMs = Math.min(minGapMs, now - last)
      }
      last = now
    }
    const totalMs = performance.now() - t0
    return { rotations, failures, firstError, totalMs, meanGapMs: totalMs / Math.max(1, rotations), maxGapMs, minGapMs: rotations > 1 ? minGapMs : 0 }
  }

  ops['hostile.apiCall'] = async ({ ctor, method, args = [] }) => {
    const Agent = SynCookieAgent()
    let agent
    try {
      agent = new Agent(...decodeValue(ctor))
    } catch (err) {
      return { ctor: { ok: false, sync: true, error: errorFields(err) } }
    }
    const out = { ctor: { ok: true } }
    try {
      if (method === undefined) return out
      let p
      try {
        const fn = agent[method]
        p = typeof fn === 'function' ? fn.apply(agent, decodeValue(args)) : fn
      } catch (err) {
        out.call = { ok: false, sync: true, error: errorFields(err) }
        return out
      }
      try {
        const value = await p
        out.call = { ok: true, value: value === undefined ? null : typeof value === 'object' ? inspect(value) : value }
      } catch (err) {
        out.call = { ok: false, sync: false, error: errorFields(err) }
      }
      // the agent still works after the bad call
      out.usableAfter = await agent.stats().then(() => true, () => false)
      return out
    } finally {
      await agent.close().catch(() => undefined)
    }
  }

  ops['hostile.setClock'] = (ms) => {
    SynCookieAgent()._internals(needAgent()).setClock(ms)
    return null
  }

  ops['hostile.exposure'] = async ({ keyHex, ifname, missing }) => {
    const Agent = SynCookieAgent()
    const key = Uint8Array.from(Buffer.from(keyHex, 'hex'))
    const output = []
    const errors = []
    const inspected = []
    const streams = [process.stdout, process.stderr]
    const writes = streams.map((s) => s.write)
    const consoleMethods = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir']
    const saved = consoleMethods.map((m) => console[m])
    const record = (chunk) => output.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1'))
    streams.forEach((s) => {
      s.write = (chunk, ...rest) => {
        record(chunk)
        const cb = rest.find((r) => typeof r === 'function')
        if (cb) cb()
        return true
      }
    })
    consoleMethods.forEach((m) => {
      console[m] = (...args) => record(args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 10 }))).join(' '))
    })
    const onWarning = (w) => record(`warning: ${w.stack ?? w}`)
    process.on('warning', onWarning)
    const describeError = (err) => {
      const parts = []
      for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; e = e.cause, depth++) {
        parts.push(String(e), e.stack ?? '', inspect(e, { depth: 10, showHidden: true }))
        try {
          parts.push(JSON.stringify(e, Object.getOwnPropertyNames(e)))
        } catch {
          // circular: inspect has it
        }
        if (e instanceof AggregateError) for (const inner of e.errors) parts.push(describeError(inner))
      }
      return parts.join('\n')
    }
    const attempt = async (what, fn) => {
      try {
        await fn()
      } catch (err) {
        errors.push(`${what}: ${describeError(err)}`)
      }
    }
    const look = (what, agent) => {
      inspected.push(`${what}: ${inspect(agent, { depth: 10, showHidden: true, getters: true })}`)
      inspected.push(`${what} JSON: ${JSON.stringify(agent)}`)
      inspected.push(`${what} String: ${String(agent)}`)
      inspected.push(`${what} keys: ${Object.getOwnPropertyNames(agent).join(',')} ${Object.getOwnPropertySymbols(agent).map(String).join(',')}`)
    }
    try {
      const agent = new Agent({ ports: [8080] })
      await agent.rotateSecret(key)
      look('fresh agent', agent)
      await attempt('attach to a missing interface', () => agent.attach(missing))
      await agent.attach(ifname)
      await attempt('attach twice', () => agent.attach(ifname))
      await attempt('detach of an interface not attached', () => agent.detach(missing))
      // Keys that are almost the secret: an error must not echo them.
      await attempt('rotateSecret(15 bytes of the secret)', () => agent.rotateSecret(key.subarray(0, 15)))
      await attempt('rotateSecret(secret + 1 byte)', () => agent.rotateSecret(Uint8Array.from([...key, 0])))
      await attempt('rotateSecret(secret as a hex string)', () => agent.rotateSecret(keyHex))
      await attempt('rotateSecret(secret as an array)', () => agent.rotateSecret([...key]))
      await attempt('rotateSecret(secret as a Buffer of 32 bytes)', () => agent.rotateSecret(Buffer.concat([key, key])))
      inspected.push(`stats: ${inspect(await agent.stats())}`)
      look('attached agent', agent)
      await agent.rotateSecret(key)
      look('after a rotation back to the secret', agent)
      await agent.close()
      for (const [what, fn] of [
        ['attach after close', () => agent.attach(ifname)],
        ['rotateSecret after close', () => agent.rotateSecret(key)],
        ['stats after close', () => agent.stats()],
        ['detach after close', () => agent.detach(ifname)],
      ]) {
        await attempt(what, fn)
      }
      look('closed agent', agent)
    } finally {
      streams.forEach((s, i) => {
        s.write = writes[i]
      })
      consoleMethods.forEach((m, i) => {
        console[m] = saved[i]
      })
      process.off('warning', onWarning)
    }
    return { output: output.join(''), errors, inspected }
  }
}
