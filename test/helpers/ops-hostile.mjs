// nsworker extension for the hostile and runtime tests: loops that would be too slow or too
// noisy as one RPC per step run here, inside the worker, and report figures.
//
// Loaded with `worker.call('worker.load', './ops-hostile.mjs')`. Ops:
//   hostile.resources               → Resources of this process (after a full GC)
//   hostile.programIds              → { prog, maps: { config, secrets, ports, stats } }: kernel ids
//                                     of the worker's agent's program and maps (loads it)
//   hostile.attachments             → [[ifname, mode], ...]: the agent's `attachments`
//   hostile.listenEvents            collects the agent's interfaceGone/interfaceRenamed events
//   hostile.events({ atLeast?, timeoutMs? }) → [{ event, ...payload }] collected since (waits
//                                     up to timeoutMs for atLeast of them), and clears them
//   hostile.routes                  → { size, usable, dumps } of the agent's routes map, null
//                                     with destinations 'any' (SynCookieAgent._internals)
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
//   hostile.fuzz({ seed, count, start, nowMs, ports })
//       `count` mutated SYNs/ACKs through BPF_PROG_TEST_RUN, each compared with programView()
//       and predict() (the reference model of the program) → figures and the first mismatches
//   hostile.forge({ seed, count, family, targeted?, nowMs, ports })
//       `count` forged ACKs, each verdict compared with the codec's → accepted ones, figures
//   hostile.predict({ hex, nowMs, ports, listening? }) → { cls, want }: the model's verdict for one
//       frame (`listening`: the protected ports with a listener, default all)
//   (fuzz/forge/predict need the worker's agent with its keys set and the clock pinned at nowMs)
//
// Resources = { fds, kinds: { 'bpf-prog', 'bpf-map', 'bpf_link', btf, ... }, ids: { prog, map,
//   link, btf }, rss, heapUsed }: open fds of this process by anon-inode kind, the BPF object
//   ids they hold (from /proc/self/fdinfo), and memory.

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { isIPv4 } from 'node:net'
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
  registerTestRun({ ops, needAgent, loadAgentModule })
  const SynCookieAgent = () => loadAgentModule().SynCookieAgent
  ops['hostile.routes'] = () => SynCookieAgent()._internals(needAgent()).routes()
  // the agent's interface events from now on, collected until hostile.events takes them
  let events = []
  ops['hostile.listenEvents'] = () => {
    const agent = needAgent()
    events = []
    for (const name of ['interfaceGone', 'interfaceRenamed']) agent.on(name, (e) => events.push({ event: name, ...e }))
    return true
  }
  ops['hostile.events'] = async ({ atLeast = 0, timeoutMs = 2000 } = {}) => {
    const end = Date.now() + timeoutMs
    while (events.length < atLeast && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    const out = events
    events = []
    return out
  }
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

// ------------------------------------------------------------------------------------------
// Fuzz and mass forgery through BPF_PROG_TEST_RUN (see test/kernel/fuzz.test.ts,
// test/kernel/forgery-mass.test.ts). Everything is generated here from a seed: packet i comes
// from its own generator seeded with (seed, i), so one packet can be rebuilt from its index.

/** mulberry32 over a 32-bit state: small, fast, and enough to pick mutations. */
export function rng32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The generator of packet `index` of run `seed`. */
export function packetRng(seed, index) {
  return rng32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0)
}

const TCX_PASS_VALUES = new Set([0, 0xffffffff]) // TC_ACT_OK, TC_ACT_UNSPEC (TCX_NEXT) as a u32
const TC_ACT_SHOT = 2
const TC_ACT_REDIRECT = 7

/**
 * What bpf/syncookie.bpf.c sees of a frame, step by step as it parses (other_port(),
 * parse_packet(), the port check, the flag dispatch): the reference the fuzz compares against.
 * cls: 'none' (passed uncounted), 'headers' (PARSE_DROP_HEADERS), 'fragment' (PARSE_DROP_FRAGMENT), 'synack', 'other' (both
 * passOther), 'syn' or 'ack' (the two handlers); with the fields the handlers use.
 */
export function programView(f, isProtected) {
  const none = { cls: 'none' }
  if (f.length < 14) return none
  const type = f.readUInt16BE(12)
  // other_port(): the fixed-offset destination port of a plain IPv4 / IPv6 + TCP header
  if (type === 0x0800 && f.length >= 14 + 24 && f[14] === 0x45 && f[23] === 6 && !isProtected(f.readUInt16BE(36))) return none
  if (type === 0x86dd && f.length >= 14 + 44 && f[14] >> 4 === 6 && f[20] === 6 && !isProtected(f.readUInt16BE(56))) return none
  const v = { v6: false, fragment: false, badExt: false, l4: 0, src: null, dst: null }
  if (type === 0x0800) {
    if (f.length < 34) return none
    if (f[14] >> 4 !== 4 || f[23] !== 6) return none
    const ihl = (f[14] & 15) * 4
    if (ihl < 20) return none
    const frag = f.readUInt16BE(20)
    if (frag & 0x1fff) return none
    v.fragment = (frag & 0x2000) !== 0
    v.ipLen = f.readUInt16BE(16)
    v.src = f.subarray(26, 30)
    v.dst = f.subarray(30, 34)
    v.l4 = 14 + ihl
  } else if (type === 0x86dd) {
    if (f.length < 54) return none
    if (f[14] >> 4 !== 6) return none
    v.v6 = true
    v.tlvs = []
    v.ipLen = f.readUInt16BE(18)
    v.src = f.subarray(22, 38)
    v.dst = f.subarray(38, 54)
    let nh = f[20]
    let off = 54
    for (let i = 0; i < 8; i++) {
      if (nh === 6) break
      if (nh !== 0 && nh !== 43 && nh !== 60 && nh !== 44 && nh !== 51) return none
      if (off + 8 > f.length) return none
      if (nh === 0 && i > 0) v.badExt = true // hop-by-hop only right after the IPv6 header
      if (nh === 44) {
        if (f.readUInt16BE(off + 2) & 0xfff8) return none
        v.fragment = (f[off + 3] & 1) === 1
        nh = f[off]
        off += 8
      } else if (nh === 51) {
        v.badExt = true
        const len = (f[off + 1] + 2) * 4
        nh = f[off]
        off += len
      } else {
        if (nh === 43 && f[off + 3]) v.badExt = true
        const len = (f[off + 1] + 1) * 8
        if (nh === 0 || nh === 60) v.tlvs.push({ start: off + 2, end: off + len, hop: nh === 0 })
        nh = f[off]
        off += len
      }
    }
    if (nh !== 6) return { cls: 'headers' }
    v.l4 = off
  } else {
    return none
  }
  // a first fragment without a whole TCP header: PARSE_DROP_FRAGMENT (RFC 1858)
  if (v.l4 + 20 > f.length) return v.fragment ? { cls: 'fragment' } : none
  const t = f.subarray(v.l4)
  v.sport = t.readUInt16BE(0)
  v.dport = t.readUInt16BE(2)
  v.seq = t.readUInt32BE(4)
  v.ack = t.readUInt32BE(8)
  v.doff = (t[12] >> 4) * 4
  v.flags = t[13]
  if (!isProtected(v.dport)) return none
  if (v.flags & 0x02) v.cls = v.flags & 0x10 ? 'synack' : 'syn'
  else if (v.flags & 0x04 || !(v.flags & 0x10) || v.fragment) v.cls = 'other'
  else v.cls = 'ack'
  return v
}

/** The TCP options as the program reads them: doff-bounded, from the frame (not the IP length). */
function programOptions(f, v, parseTcpOptions) {
  if (v.doff < 20) return { malformed: true }
  const len = v.doff - 20
  if (v.l4 + 20 + len > f.length) return { malformed: true }
  return parseTcpOptions(f.subarray(v.l4 + 20, v.l4 + 20 + len))
}

/** ip_options_compile() on a received IPv4 header, as parse_ip4_option() mirrors it. */
function ip4OptionsOk(o) {
  let i = 0
  let rr = false
  let ts = false
  while (i < o.length) {
    const kind = o[i]
    if (kind === 0) return true
    if (kind === 1) {
      i++
      continue
    }
    if (o.length - i < 2) return false
    const size = o[i + 1]
    if (size < 2 || size > o.length - i) return false
    const ptr = o[i + 2] ?? 0
    const fl = o[i + 3] ?? 0
    if (kind === 131 || kind === 137 || kind === 134) return false // source route, CIPSO
    if (kind === 7) {
      if (rr || size < 3 || ptr < 4 || (ptr <= size && ptr + 3 > size)) return false
      rr = true
    } else if (kind === 68) {
      if (ts || size < 4 || ptr < 5) return false
      if (ptr <= size) {
        if (ptr + 3 > size) return false
        if (((fl & 15) === 1 || (fl & 15) === 3) && ptr + 7 > size) return false
      } else if ((fl & 15) !== 3 && fl >> 4 === 15) return false
      ts = true
    } else if (kind === 148 && size < 4) return false
    i += size
  }
  return true
}

/** sc_syn_l3_check(): what ip_rcv_core()/ip6_rcv_core() check; the TCP segment length or -1. */
function synL3Check(f, v) {
  const frame = f.length - 14
  let ipLen
  let hl
  if (v.v6) {
    if (v.ipLen === 0) return -1
    ipLen = 40 + v.ipLen
    hl = v.l4 - 14
  } else {
    hl = v.l4 - 14
    ipLen = v.ipLen
    let sum = 0
    for (let i = 0; i < hl; i += 2) sum += f.readUInt16BE(14 + i)
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
    if (sum !== 0xffff) return -1
    if (!ip4OptionsOk(f.subarray(34, 14 + hl))) return -1
  }
  if (ipLen > frame || ipLen < hl) return -1
  const seg = ipLen - hl
  if (seg < 20 || seg < v.doff) return -1
  return seg
}

/** The TCP checksum over `seg` bytes (test_run skbs are CHECKSUM_NONE: always checked). */
function tcpChecksumOk(f, v, seg, P) {
  return P.inetChecksum(P.pseudoHeader(v.src, v.dst, 6, seg), f.subarray(v.l4, v.l4 + seg)) === 0
}

/** bad_address(): L2 not to us, or a broadcast/multicast/unspecified/v4-mapped address. */
function badAddress(f, v) {
  const mac = f.subarray(0, 6)
  if (!mac.every((b) => b === 0)) return true // under test_run, lo's MAC is PACKET_HOST, any other MAC is not
  const s = v.src
  const d = v.dst
  if (v.v6) {
    if (s[0] === 0xff || d[0] === 0xff) return true
    if (s.every((b) => b === 0) || d.every((b) => b === 0)) return true
    const mapped = (a) => a.subarray(0, 10).every((b) => b === 0) && a[10] === 0xff && a[11] === 0xff
    return mapped(s) || mapped(d)
  }
  const sv = s.readUInt32BE(0)
  const dv = d.readUInt32BE(0)
  // (127.0.0.0/8 and ::1 are refused only off lo; test_run runs on lo)
  if (sv === 0 || dv === 0 || sv === 0xffffffff || dv === 0xffffffff) return true
  return sv >>> 28 === 0xe || dv >>> 28 === 0xe
}

/**
 * The namespace's routes of the types that decide local delivery, as iproute2 lists them
 * (`ip -j route show table all`): the model's own source, not the agent's rtnetlink copy.
 * → (addr: Buffer, v6) => the type of the longest matching route ('local', 'broadcast', ...) or null.
 */
function localRouteTypes() {
  const routes = []
  for (const family of ['-4', '-6']) {
    for (const r of JSON.parse(execFileSync('ip', ['-j', family, 'route', 'show', 'table', 'all'], { encoding: 'utf8' }))) {
      if (!['local', 'broadcast', 'anycast', 'multicast'].includes(r.type)) continue
      const [addr, len] = r.dst === 'default' ? [family === '-4' ? '0.0.0.0' : '::', 0] : r.dst.split('/')
      const v6 = !isIPv4(addr)
      const bytes = ipBytes(addr)
      routes.push({ v6, bytes, len: len === undefined ? bytes.length * 8 : Number(len), type: r.type })
    }
  }
  return (a, v6) => {
    let best = null
    for (const r of routes) {
      if (r.v6 !== v6 || (best && best.len >= r.len)) continue
      let same = true
      for (let bit = 0; bit < r.len && same; bit++) same = ((a[bit >> 3] ^ r.bytes[bit >> 3]) & (0x80 >> (bit & 7))) === 0
      if (same) best = r
    }
    return best ? best.type : null
  }
}

function ipBytes(addr) {
  if (isIPv4(addr)) return Buffer.from(addr.split('.').map(Number))
  const [head, tail = ''] = addr.split('::')
  const words = (s) => (s ? s.split(':').map((w) => parseInt(w, 16)) : [])
  const h = words(head)
  const t = words(tail)
  const all = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill(0), ...t] : h
  const b = Buffer.alloc(16)
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2))
  return b
}

/**
 * ip6_parse_tlv() over the hop-by-hop and destination options headers (v.tlvs): false where
 * the kernel drops the datagram. Extension headers past 512 bytes: more than the program reads.
 */
function ip6OptionsOk(f, v) {
  if (v.l4 - 54 > 512) return false
  for (const { start, end, hop } of v.tlvs) {
    let padlen = 0
    let count = 0
    for (let i = start; i < end; ) {
      const t = f[i]
      if (t === 0) {
        if (++padlen > 7) return false
        i++
        continue
      }
      if (i + 2 > end) return false
      const size = f[i + 1] + 2
      if (i + size > end) return false
      if (t === 1) {
        padlen += size
        if (padlen > 7) return false
        for (let j = 2; j < size; j++) if (f[i + j] !== 0) return false
      } else {
        padlen = 0
        if (++count > 8) return false
        if (t & 0xc0) return false // RFC 8200 4.2: discard (Jumbo and Home Address included)
        if (hop && t === 5 && size !== 4) return false // Router Alert of a wrong length
      }
      i += size
    }
  }
  return true
}

function mssIndex(v6, mss) {
  const table = v6 ? [1220, 1420, 1440, 8940] : [536, 1300, 1460, 8960]
  for (let i = 3; i >= 0; i--) if (mss >= table[i]) return i
  return -1
}

export function registerTestRun({ ops, needAgent, loadAgentModule }) {
  const mod = () => loadAgentModule()
  const KEY0 = Buffer.alloc(4)
  let packetsMod

  const packets = async () => (packetsMod ??= await import('./packets.mjs'))

  /** Per-packet counter reader over the program's per-CPU stats map (no agent queue). */
  const statsReader = (program) => {
    const names = mod().STAT_NAMES
    const n = names.length
    return () => {
      const b = program.mapLookup('stats', KEY0)
      const out = new Array(n).fill(0)
      for (let off = 0; off + n * 8 <= b.length; off += n * 8) {
        for (let i = 0; i < n; i++) out[i] += b.readUInt32LE(off + i * 8) + b.readUInt32LE(off + i * 8 + 4) * 4294967296
      }
      return out
    }
  }

  const movedOf = (names, before, after) => {
    const m = {}
    for (let i = 0; i < names.length; i++) if (after[i] !== before[i]) m[names[i]] = after[i] - before[i]
    return m
  }
  const sameCounters = (a, b) => {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
  }

  /**
   * The verdict the program must give: { counters, retval: 'pass' | 'shot' | 'redirect',
   * alternatives?: [{ counters, retval }] }, from programView() and, for an ACK, the codec.
   */
  const predict = (f, v, ctx) => {
    const { decodeCookie } = mod()
    const { parseTcpOptions, formatIp } = ctx.P
    switch (v.cls) {
      case 'none':
        return { counters: {}, retval: 'pass' }
      case 'headers':
        return { counters: { synDropHeaders: 1 }, retval: 'shot' }
      case 'fragment':
        return { counters: { synDropFragment: 1 }, retval: 'shot' }
      case 'synack':
      case 'other':
        return { counters: { passOther: 1 }, retval: 'pass' }
      case 'syn': {
        const drop = (c) => ({ counters: { synReceived: 1, [c]: 1 }, retval: 'shot' })
        if (v.flags & 0x05) return drop('synDropMalformed')
        if (v.fragment) return drop('synDropFragment')
        if (v.badExt || (v.v6 && !ip6OptionsOk(f, v))) return drop('synDropHeaders')
        const seg = synL3Check(f, v)
        if (seg < 0) return drop('synDropMalformed')
        if (badAddress(f, v)) return drop('synDropAddress')
        // destinations 'local': only a destination whose longest route is local (test_run is on
        // lo, where a source of our own is no martian)
        if (ctx.localOnly && ctx.routeType(v.dst, v.v6) !== 'local') return drop('synDropAddress')
        const o = programOptions(f, v, parseTcpOptions)
        if (o.malformed) return drop('synDropMalformed')
        const mss = o.mss ?? (v.v6 ? 1220 : 536)
        const index = mssIndex(v.v6, mss)
        if (index < 0) return drop('synDropMss')
        if (!tcpChecksumOk(f, v, seg, ctx.P)) return drop('synDropMalformed')
        if (!ctx.isListening(v.dport)) return { counters: { synReceived: 1, synNoListener: 1 }, retval: 'pass' }
        // tcp_inbound_hash(): an MD5 signature for a listener without keys (none here have any)
        if (o.list.some((x) => x.kind === 19 && x.length === 18)) return drop('synDropMalformed')
        const wscale = o.wscale === undefined ? null : Math.min(o.wscale, 14)
        const ecn = (v.flags & 0xc0) === 0xc0
        return {
          counters: { synReceived: 1, synAckSent: 1 },
          retval: 'redirect',
          cookie: { mss: (v.v6 ? [1220, 1420, 1440, 8940] : [536, 1300, 1460, 8960])[index], wscale, sack: o.sackPerm === true, ecn },
        }
      }
      case 'ack': {
        if (!ctx.isListening(v.dport)) return { counters: { passNoSocket: 1 }, retval: 'pass' }
        const tuple = { saddr: formatIp(v.src), daddr: formatIp(v.dst), sport: v.sport, dport: v.dport, seq: (v.seq - 1) >>> 0 }
        const mapped = v.v6 && tuple.saddr.startsWith('::ffff:') // the codec reads these as IPv4
        const valid = !mapped && decodeCookie((v.ack - 1) >>> 0, tuple, ctx.keys, ctx.nowMs) !== null
        const kernelCookie = { counters: { ackKernelCookie: 1 }, retval: 'pass' }
        if (!valid) return { counters: { ackRejected: 1 }, retval: 'shot', alternatives: [kernelCookie], valid }
        const o = programOptions(f, v, parseTcpOptions)
        return { counters: { [o.malformed ? 'ackMalformed' : 'ackAssignFailed']: 1 }, retval: 'shot', valid }
      }
      default:
        throw new Error(`predict: class ${v.cls}`)
    }
  }

  const retvalName = (r) => (r === TC_ACT_REDIRECT ? 'redirect' : r === TC_ACT_SHOT ? 'shot' : TCX_PASS_VALUES.has(r) ? 'pass' : `retval ${r}`)

  /** Checks a SYN-ACK the program built from `f`; returns what is wrong with it, or null. */
  const checkSynAck = (f, v, out, want, ctx) => {
    const { parseFrame, formatIp } = ctx.P
    const p = parseFrame(out)
    if (!p.tcp || !p.ip) return `not a TCP frame: ${p.errors.join('; ')}`
    const t = p.tcp
    if ((t.flags & ~0x40) !== 0x12) return `flags 0x${t.flags.toString(16)}`
    if (((t.flags & 0x40) !== 0) !== want.cookie.ecn) return 'ECE does not match the SYN\'s ECN request'
    if (p.ip.version === 4 && !p.ip.checksumOk) return 'bad IPv4 header checksum'
    if (!t.checksumOk) return 'bad TCP checksum'
    if (t.sport !== v.dport || t.dport !== v.sport) return 'ports not swapped'
    if (!p.ip.srcBytes.equals(v.dst) || !p.ip.dstBytes.equals(v.src)) return 'addresses not swapped'
    if (!out.subarray(0, 6).equals(f.subarray(6, 12)) || !out.subarray(6, 12).equals(f.subarray(0, 6))) return 'MACs not swapped'
    if (t.ack !== ((v.seq + 1) >>> 0)) return 'ack is not ISN + 1'
    if (p.errors.length > 0) return p.errors.join('; ')
    const got = mod().decodeCookie(t.seq, { saddr: formatIp(v.src), daddr: formatIp(v.dst), sport: v.sport, dport: v.dport, seq: v.seq }, ctx.keys, ctx.nowMs)
    if (got === null) return `the cookie 0x${t.seq.toString(16)} does not decode`
    for (const k of ['mss', 'wscale', 'sack', 'ecn']) if (got[k] !== want.cookie[k]) return `cookie ${k} ${got[k]}, want ${want.cookie[k]}`
    return null
  }

  /** Why a SYN the program answered is not one the kernel would take (checksums, lengths). */
  const invalidSyn = (f, ctx) => {
    const p = ctx.P.parseFrame(f)
    if (!p.ip || !p.tcp) return `parseFrame: ${p.errors[0] ?? 'no TCP header'}`
    if (p.ip.version === 4 && !p.ip.checksumOk) return 'badIpChecksum'
    const ipEnd = p.ip.version === 4 ? p.l3Offset + p.ip.totalLength : p.l3Offset + 40 + p.ip.payloadLength
    if (ipEnd > f.length) return 'ipLengthBeyondFrame'
    if (p.l4Offset + p.tcp.doff > ipEnd) return 'tcpHeaderBeyondIpLength'
    // computed here: parseFrame() calls any segment behind a fragment header unverifiable, an
    // atomic fragment (offset 0, no M: answered) too
    const { inetChecksum, pseudoHeader } = ctx.P
    if (inetChecksum(pseudoHeader(p.ip.srcBytes, p.ip.dstBytes, 6, p.l4.length), p.l4) !== 0) return 'badTcpChecksum'
    return null
  }

  const baseFrames = async ({ keys, nowMs, port }) => {
    const P = await packets()
    const { encodeCookie } = mod()
    const c4 = { src: '192.0.2.3', dst: '192.0.2.1' }
    const c6 = { src: '2001:db8::3', dst: '2001:db8::1' }
    const linux = P.linuxSynOptions({ mss: 1460, sack: true, ts: { tsval: 0x01020304 }, wscale: 7 })
    const linux6 = P.linuxSynOptions({ mss: 1440, sack: true, ts: { tsval: 0x01020304 }, wscale: 7 })
    const syn = (a, sport, options, ip) => P.tcpFrame({ ...a, sport, dport: port, seq: 0x11223344 + sport, options, ip })
    const ack = (a, sport, opts, extra = {}) => {
      const seq = 0x55667788 + sport
      const cookie = encodeCookie({ saddr: a.src, daddr: a.dst, sport, dport: port, seq }, opts, keys[0], nowMs)
      return P.tcpFrame({ ...a, sport, dport: port, seq: (seq + 1) >>> 0, ack: (cookie + 1) >>> 0, flags: P.TCP_FLAG.ACK, ...extra })
    }
    return [
      ['v4 SYN, Linux options', syn(c4, 40001, linux)],
      ['v6 SYN, Linux options', syn(c6, 40002, linux6)],
      ['v4 SYN, no options', syn(c4, 40003, undefined)],
      ['v6 SYN, hop-by-hop + destination options', syn(c6, 40004, [{ kind: 'mss', value: 1440 }], { ext: [{ type: 'hop' }, { type: 'dest' }] })],
      ['v4 SYN, IPv4 options', syn(c4, 40005, [{ kind: 'mss', value: 1460 }, { kind: 'wscale', value: 14 }, { kind: 'nop' }], { options: [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 1 }] })],
      ['v6 SYN, atomic fragment header', syn(c6, 40006, [{ kind: 'mss', value: 1220 }, { kind: 'sackPerm' }], { ext: [{ type: 'fragment', offset: 0, more: false, id: 7 }] })],
      ['v4 cookie ACK, timestamps', ack(c4, 40007, { mss: 1460, wscale: 7, sack: true, ecn: false }, { options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', tsval: 5, tsecr: 6 }] })],
      ['v6 cookie ACK', ack(c6, 40008, { mss: 1440, wscale: null, sack: false, ecn: false })],
      ['v4 cookie ACK with data', ack(c4, 40009, { mss: 536, wscale: 0, sack: true, ecn: true }, { payload: Buffer.from('GET / HTTP/1.0\r\n\r\n'), flags: P.TCP_FLAG.ACK | P.TCP_FLAG.PSH })],
      ['v6 cookie ACK, FIN', ack(c6, 40010, { mss: 8940, wscale: 14, sack: true, ecn: false }, { flags: P.TCP_FLAG.ACK | P.TCP_FLAG.FIN })],
    ]
  }

  const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0f, 0x10, 0x11, 0x12, 0x14, 0x28, 0x2c, 0x3b, 0x40, 0x45, 0x50, 0x7f, 0x80, 0xf0, 0xff]

  /** A mutation of `base`: bit flips (mostly in the headers), odd bytes, truncations, garbage tails. */
  const mutate = (base, rng) => {
    let b = Buffer.from(base)
    const n = 1 + Math.floor(rng() * rng() * 8)
    for (let k = 0; k < n; k++) {
      const r = rng()
      const at = () => Math.floor((rng() < 0.8 ? rng() * Math.min(b.length, 100) : rng() * b.length))
      if (r < 0.55) {
        b[at()] ^= 1 << Math.floor(rng() * 8)
      } else if (r < 0.72) {
        b[at()] = INTERESTING[Math.floor(rng() * INTERESTING.length)]
      } else if (r < 0.87) {
        // keep the IP header whole: BPF_PROG_TEST_RUN refuses a frame that cuts it short
        // (the corpus test sends those over a veth)
        const type = b.readUInt16BE(12)
        const keep = Math.min(b.length, 14 + (type === 0x0800 ? 20 : type === 0x86dd ? 40 : 0))
        b = Buffer.from(b.subarray(0, keep + Math.floor(rng() * (b.length - keep + 1))))
      } else {
        const tail = Buffer.alloc(1 + Math.floor(rng() * 48))
        for (let i = 0; i < tail.length; i++) tail[i] = Math.floor(rng() * 256)
        b = Buffer.concat([b, tail])
      }
    }
    return b
  }

  /** `listening`: the protected ports with a listener in this namespace (default: all of them). */
  const runContext = async ({ nowMs, ports, listening = ports }) => {
    const agent = needAgent()
    const program = await mod().SynCookieAgent._internals(agent).load()
    const keys = mod().SynCookieAgent._internals(agent).keys().map((k) => Uint8Array.from(k))
    const protectedSet = new Set(ports)
    const listeningSet = new Set(listening)
    return {
      program, keys, nowMs, P: await packets(), read: statsReader(program), names: mod().STAT_NAMES,
      isProtected: (p) => protectedSet.has(p),
      isListening: (p) => listeningSet.has(p),
      localOnly: agent.destinations === 'local',
      routeType: localRouteTypes(),
    }
  }

  /**
   * Runs one frame and compares with the prediction; returns { got, want, moved, retval, out }.
   */
  const runOne = async (ctx, f) => {
    const v = programView(f, ctx.isProtected)
    const want = predict(f, v, ctx)
    const s0 = ctx.read()
    let r
    try {
      r = await ctx.program.testRun(f, 1, 4096)
    } catch (err) {
      return { v, want, error: err.code ?? err.message }
    }
    const moved = movedOf(ctx.names, s0, ctx.read())
    const retval = retvalName(r.retval)
    const ok = [want, ...(want.alternatives ?? [])].some((w) => w.retval === retval && sameCounters(w.counters, moved))
    return { v, want, moved, retval, rawRetval: r.retval, out: r.data, ok }
  }

  ops['hostile.fuzz'] = async ({ seed, count, start = 0, nowMs, ports, port = ports[0], maxReport = 10 }) => {
    if (!Number.isInteger(count) || count < 1 || count > 20_000_000) throw new RangeError('hostile.fuzz: count 1..2e7')
    const ctx = await runContext({ nowMs, ports })
    const bases = await baseFrames({ keys: ctx.keys, nowMs, port })
    const r = {
      seed, count, start, bases: bases.map(([what, f]) => ({ what, hex: f.toString('hex') })),
      ran: 0, refusedShortL3: 0, errors: {}, firstErrors: [], classes: {}, verdicts: {}, retvals: {}, mismatches: 0, firstMismatches: [],
      synAcks: 0, badSynAcks: 0, firstBadSynAcks: [], answeredInvalid: {}, firstAnsweredInvalid: [],
      validCookieAcks: 0, sanity: [], ms: 0,
    }
    const before = ctx.read()
    const t0 = performance.now()
    const sanityMoved = {}
    const sanity = async (at) => {
      const x = await runOne(ctx, bases[0][1])
      r.sanity.push({ at, ok: x.ok && x.retval === 'redirect' })
      for (const [k, n] of Object.entries(x.moved ?? {})) sanityMoved[k] = (sanityMoved[k] ?? 0) + n
    }
    await sanity(0)
    // `count` packets that ran: indices from 2 * start on, a refused one is replaced by the next
    const first = 2 * start
    for (let i = first; r.ran < count && i < first + 2 * count; i++) {
      const rng = packetRng(seed, i)
      const [, base] = bases[Math.floor(rng() * bases.length)]
      const f = mutate(base, rng)
      const x = await runOne(ctx, f)
      if (x.error !== undefined) {
        // BPF_PROG_TEST_RUN itself refuses an IPv4/IPv6 frame whose IP header is cut short
        // (EINVAL before the program runs): such frames are sent over a veth by the corpus test
        const type = f.length >= 14 ? f.readUInt16BE(12) : 0
        if (x.error === 'EINVAL' && ((type === 0x0800 && f.length < 34) || (type === 0x86dd && f.length < 54))) {
          r.refusedShortL3++
          continue
        }
        r.ran++
        r.errors[x.error] = (r.errors[x.error] ?? 0) + 1
        if (r.firstErrors.length < maxReport) r.firstErrors.push({ index: i, error: x.error, hex: f.toString('hex') })
        continue
      }
      r.ran++
      r.classes[x.v.cls] = (r.classes[x.v.cls] ?? 0) + 1
      r.retvals[x.retval] = (r.retvals[x.retval] ?? 0) + 1
      for (const [k, n] of Object.entries(x.moved)) r.verdicts[k] = (r.verdicts[k] ?? 0) + n
      if (x.want.valid) r.validCookieAcks++
      if (!x.ok) {
        r.mismatches++
        if (r.firstMismatches.length < maxReport) r.firstMismatches.push({ index: i, hex: f.toString('hex'), cls: x.v.cls, want: x.want, got: { moved: x.moved, retval: x.retval, raw: x.rawRetval } })
        continue
      }
      if (x.retval === 'redirect') {
        r.synAcks++
        const bad = checkSynAck(f, x.v, x.out, x.want, ctx)
        if (bad !== null) {
          r.badSynAcks++
          if (r.firstBadSynAcks.length < maxReport) r.firstBadSynAcks.push({ index: i, hex: f.toString('hex'), out: x.out.toString('hex'), why: bad })
        }
        const invalid = invalidSyn(f, ctx)
        if (invalid !== null) {
          r.answeredInvalid[invalid] = (r.answeredInvalid[invalid] ?? 0) + 1
          if (r.firstAnsweredInvalid.length < maxReport) r.firstAnsweredInvalid.push({ index: i, why: invalid, hex: f.toString('hex') })
        }
      }
      if (r.ran % 100_000 === 0) await sanity(r.ran)
    }
    await sanity(r.ran)
    r.ms = performance.now() - t0
    // the map's own movement over the run, less the sanity SYNs
    r.total = movedOf(ctx.names, before, ctx.read())
    for (const [k, n] of Object.entries(sanityMoved)) {
      r.total[k] -= n
      if (r.total[k] === 0) delete r.total[k]
    }
    return r
  }

  /**
   * Forged ACKs: random source address/port (or one fixed tuple whose ISN the attacker knows:
   * `targeted`), random seq and ack, to `port`. Every one's verdict is read and compared with
   * the codec's. → { count, accepted: [{ index, hex }], rejected, other, codecAccepted, mismatches, ms }
   */
  ops['hostile.forge'] = async ({ seed, count, family, targeted = false, nowMs, ports, port = ports[0], maxReport = 10 }) => {
    if (!Number.isInteger(count) || count < 1 || count > 20_000_000) throw new RangeError('hostile.forge: count 1..2e7')
    const ctx = await runContext({ nowMs, ports })
    const { P } = ctx
    const v6 = family === 6
    const dst = v6 ? '2001:db8::1' : '192.0.2.1'
    const tmpl = P.tcpFrame({ src: v6 ? '2001:db8::3' : '192.0.2.3', dst, sport: 40000, dport: port, seq: 1, ack: 1, flags: P.TCP_FLAG.ACK })
    const ipOff = 14
    const l4 = v6 ? 54 : 34
    const saddrAt = v6 ? 22 : 26
    const fixedIsn = 0x01020304
    const r = { count, family, targeted, accepted: [], rejected: 0, kernelCookie: 0, other: {}, codecAccepted: 0, mismatches: 0, firstMismatches: [], ms: 0 }
    const t0 = performance.now()
    for (let i = 0; i < count; i++) {
      const rng = packetRng(seed, i)
      const f = Buffer.from(tmpl)
      const u32 = () => Math.floor(rng() * 4294967296) >>> 0
      if (!targeted) {
        if (v6) {
          // 2001:db8:ffff::/48 plus 80 random bits: unicast, never mapped or multicast
          f.writeUInt32BE(0x20010db8, saddrAt)
          f.writeUInt16BE(0xffff, saddrAt + 4)
          for (let k = 6; k < 16; k += 2) f.writeUInt16BE(Math.floor(rng() * 65536), saddrAt + k)
        } else {
          // 1.0.0.0 .. 223.255.255.255: unicast
          f.writeUInt32BE((0x01000000 + Math.floor(rng() * 0xdeffffff)) >>> 0, saddrAt)
        }
        f.writeUInt16BE(1024 + Math.floor(rng() * 64512), l4)
        f.writeUInt32BE(u32(), l4 + 4)
      } else {
        f.writeUInt32BE((fixedIsn + 1) >>> 0, l4 + 4)
      }
      f.writeUInt32BE(u32(), l4 + 8)
      // honest checksums (the program ignores them)
      const alen = v6 ? 16 : 4
      if (!v6) {
        f.writeUInt16BE(0, ipOff + 10)
        f.writeUInt16BE(P.inetChecksum(f.subarray(ipOff, ipOff + 20)), ipOff + 10)
      }
      f.writeUInt16BE(0, l4 + 16)
      const seg = f.subarray(l4)
      const pseudo = P.pseudoHeader(f.subarray(saddrAt, saddrAt + alen), f.subarray(saddrAt + alen, saddrAt + 2 * alen), 6, seg.length)
      f.writeUInt16BE(P.inetChecksum(pseudo, seg), l4 + 16)
      const x = await runOne(ctx, f)
      if (x.error !== undefined) {
        r.other[x.error] = (r.other[x.error] ?? 0) + 1
        continue
      }
      if (x.want.valid) r.codecAccepted++
      if (x.moved.ackAssignFailed === 1) r.accepted.push({ index: i, hex: f.toString('hex') })
      else if (x.moved.ackRejected === 1) r.rejected++
      else if (x.moved.ackKernelCookie === 1) r.kernelCookie++
      else r.other[JSON.stringify(x.moved)] = (r.other[JSON.stringify(x.moved)] ?? 0) + 1
      if (!x.ok) {
        r.mismatches++
        if (r.firstMismatches.length < maxReport) r.firstMismatches.push({ index: i, hex: f.toString('hex'), want: x.want, got: { moved: x.moved, retval: x.retval } })
      }
    }
    r.ms = performance.now() - t0
    return r
  }

  /** One frame through the program with the prediction: for the corpus test's self-check. */
  ops['hostile.predict'] = async ({ hex, nowMs, ports, listening }) => {
    const ctx = await runContext({ nowMs, ports, listening })
    const f = Buffer.from(hex, 'hex')
    const v = programView(f, ctx.isProtected)
    const want = predict(f, v, ctx)
    return { cls: v.cls, want: { counters: want.counters, retval: want.retval } }
  }
}
