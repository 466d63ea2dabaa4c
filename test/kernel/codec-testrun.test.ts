/**
 * The BPF program and lib/cookie.ts agree bit for bit: random SYNs go through the real program
 * with BPF_PROG_TEST_RUN, and the SYN-ACK's ISN and TSval must be what encodeCookie() and
 * synAckTsval() compute; the client's ACK must pass the cookie check, and every 1-bit change of
 * the cookie must fail it. Clock slots and secret rotation are checked the same way.
 *
 * Everything runs in a worker inside one namespace of this file: under test_run, skb->dev is the
 * caller netns' `lo` (so frames go to lo's MAC 00:00:00:00:00:00, else the program sees
 * PACKET_OTHERHOST) and bpf_skc_lookup_tcp() finds the listeners of that namespace. A valid
 * cookie reaches bpf_sk_assign_tcp_reqsk(), which returns -EINVAL under test_run: the program
 * counts ackAssignFailed and drops. An invalid one counts ackRejected. Every run's counter
 * movement is read in the worker around that run and compared exactly.
 *
 * Reproduce with another seed: SCA_CODEC_SEED=<n> npx vitest run test/kernel/codec-testrun.test.ts
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  decodeCookie,
  encodeCookie,
  MSS_TABLE_V4,
  MSS_TABLE_V6,
  synAckTsval,
  type CookieOptions,
  type CookieTuple,
} from '../../lib/cookie'
import { run } from '../helpers/exec.js'
import { describeKernel, moved, requireDist, statsDelta } from '../helpers/kernel.js'
import { createNamespace, namespaceName, removeLeftovers } from '../helpers/netns.js'
import {
  encodeTcpOptions,
  formatIp,
  linuxSynOptions,
  LO_MAC,
  parseFrame,
  TC_ACT,
  TCP_FLAG,
  tcpFrame,
  type Ipv6ExtSpec,
  type ParsedFrame,
  type SegmentSpec,
  type TcpOptionSpec,
} from '../helpers/packets.mjs'
import { killAllWorkers, NsWorker, type AgentStats } from '../helpers/worker.js'

const PREFIX = 'sca-ctr'
const SEED = Number(process.env.SCA_CODEC_SEED ?? 0x5c00c1e5) >>> 0
const TUPLES = 1000
const GROUP = 50 // tuples per key / clock / sysctl group
const FLIP_EVERY = 8 // every 8th tuple gets its cookie's 32 single-bit flips: 125 tuples
const SLOT_MS = 65536

/** Protected ports with listeners (both families); NO_LISTENER is protected, nobody listens. */
const LISTEN_PORTS = [1, 443, 8080, 65535]
const NO_LISTENER = 9

// ---------------------------------------------------------------------------------------------
// Deterministic randomness (sfc32 seeded with splitmix32)

class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  constructor(seed: number) {
    let s = seed >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 16; i++) this.u32()
  }
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }
  /** Integer in lo..hi (inclusive), hi - lo < 2^32. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 2 ** 32) * (hi - lo + 1))
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)] as T
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }
  shuffle<T>(list: T[]): T[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      ;[list[i], list[j]] = [list[j] as T, list[i] as T]
    }
    return list
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

/** What the listener's namespace allows (net.ipv4.tcp_*). */
interface Profile {
  name: string
  timestamps: number
  sack: number
  window_scaling: number
  ecn: number
}

const DEFAULTS: Profile = { name: 'defaults', timestamps: 1, sack: 1, window_scaling: 1, ecn: 2 }
/** One profile per group, in turn: defaults four times out of ten. */
const PROFILES: Profile[] = [
  DEFAULTS,
  { ...DEFAULTS, name: 'sack=0', sack: 0 },
  DEFAULTS,
  { ...DEFAULTS, name: 'timestamps=0', timestamps: 0 },
  { ...DEFAULTS, name: 'window_scaling=0', window_scaling: 0 },
  DEFAULTS,
  { ...DEFAULTS, name: 'ecn=0', ecn: 0 },
  { name: 'all off', timestamps: 0, sack: 0, window_scaling: 0, ecn: 0 },
  DEFAULTS,
  { ...DEFAULTS, name: 'ecn=1 timestamps=2', ecn: 1, timestamps: 2 },
]

/** A client SYN and what the server namespace makes of it. */
interface SynCase {
  index: number
  family: 4 | 6
  saddr: string
  daddr: string
  sport: number
  dport: number
  seq: number
  /** Client MSS option (undefined: none, the default applies). */
  mss?: number
  /** Client window scale option, as sent (may be > 14). */
  wscale?: number
  sack: boolean
  ts?: { tsval: number; tsecr: number }
  flags: number
  srcMac: string
  options: TcpOptionSpec[]
  ip: SegmentSpec['ip']
  payload?: Buffer
  /** What the group set up. */
  profile: Profile
  key: string
  /** Pinned program clock, or null: the real clock. */
  nowMs: number | null
  /** Gets the 32 cookie flips. */
  flips: boolean
}

function randomIPv4(rng: Rng): string {
  for (;;) {
    const a = rng.u32()
    const top = a >>> 28
    // the program refuses 0.0.0.0, 255.255.255.255 and 224.0.0.0/4 (synDropAddress)
    if (a === 0 || a === 0xffffffff || top === 0xe) continue
    return formatIp(Buffer.from([a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff]))
  }
}

function randomIPv6(rng: Rng): string {
  for (;;) {
    const b = rng.bytes(16)
    if (rng.chance(0.3)) b.writeUInt32BE(0x20010db8, 0) // documentation prefix: readable failures
    if (b[0] === 0xff) continue // multicast: synDropAddress
    // IPv4-mapped: the codec reads them as IPv4 by design (docs/cookie-format.md)
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) continue
    if (b.every((x) => x === 0)) continue
    return formatIp(b)
  }
}

function randomMss(rng: Rng, table: readonly number[]): number | undefined {
  const r = rng.u32() / 2 ** 32
  const i = rng.int(0, 3)
  const entry = table[i] as number
  if (r < 0.15) return undefined // no option: 536 / 1220
  if (r < 0.45) return entry // exactly a table entry
  if (r < 0.6) return rng.chance(0.5) ? entry + 1 : Math.max(table[0] as number, entry - 1)
  if (r < 0.97) {
    const next = i === 3 ? 65536 : (table[i + 1] as number)
    return rng.int(entry, next - 1) // between two entries
  }
  return rng.int(0, (table[0] as number) - 1) // below the table: not encodable, dropped
}

/** TCP options of a SYN: Linux's layout, or the same options shuffled with NOPs, an unknown option, an EOL. */
function synOptions(rng: Rng, c: Pick<SynCase, 'mss' | 'wscale' | 'sack' | 'ts'>): TcpOptionSpec[] {
  if (rng.chance(0.5)) {
    return linuxSynOptions({ mss: c.mss, sack: c.sack, ts: c.ts, wscale: c.wscale })
  }
  const parts: TcpOptionSpec[][] = []
  if (c.mss !== undefined) parts.push([{ kind: 'mss', value: c.mss }])
  if (c.wscale !== undefined) parts.push([{ kind: 'wscale', value: c.wscale }])
  if (c.sack) parts.push([{ kind: 'sackPerm' }])
  if (c.ts !== undefined) parts.push([{ kind: 'ts', tsval: c.ts.tsval, tsecr: c.ts.tsecr }])
  if (rng.chance(0.2)) {
    // options the program must step over: experimental (RFC 6994), a TFO cookie request
    parts.push([rng.chance(0.5) ? { kind: 'raw', type: 254, data: [0xf9, 0x89] } : { kind: 'raw', type: 34 }])
  }
  rng.shuffle(parts)
  const list: TcpOptionSpec[] = []
  let len = parts.flat().reduce((n, o) => n + encodeTcpOptions([o], { pad: false }).length, 0)
  for (const p of parts) {
    const nops = Math.min(rng.int(0, 3), 39 - len)
    for (let k = 0; k < nops; k++) list.push({ kind: 'nop' })
    len += Math.max(nops, 0)
    list.push(...p)
  }
  if (len < 40 && rng.chance(0.2)) list.push({ kind: 'eol' })
  return list
}

function ipExtras(rng: Rng, family: 4 | 6): SegmentSpec['ip'] {
  if (!rng.chance(0.1)) return {}
  if (family === 4) {
    // options the SYN-ACK must not echo: NOPs, router alert, a timestamp option (timestamps
    // only: with addresses, 10 bytes hold no room for one entry and ip_options_compile() drops it)
    return {
      options: rng.pick([
        [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 0 }],
        [{ type: 148, data: [0, 0] }],
        [{ type: 68, data: [5, 0x00, 0, 0, 0, 0, 0, 0] }],
      ]),
      id: rng.int(0, 0xffff),
      df: rng.chance(0.5),
    }
  }
  const ext: Ipv6ExtSpec[] = rng.pick<Ipv6ExtSpec[]>([
    [{ type: 'hop' }],
    [{ type: 'dest', data: [1, 4, 0, 0, 0, 0] }],
    [{ type: 'hop' }, { type: 'dest' }],
    [{ type: 'routing', routingType: 4, segmentsLeft: 0, addresses: ['2001:db8::99'] }],
  ])
  return { ext, flowLabel: rng.int(0, 0xfffff), tos: rng.int(0, 255) }
}

function makeCases(rng: Rng): SynCase[] {
  const cases: SynCase[] = []
  let key = ''
  let nowMs: number | null = null
  let profile = DEFAULTS
  for (let i = 0; i < TUPLES; i++) {
    const g = Math.floor(i / GROUP)
    if (i % GROUP === 0) {
      key = rng.bytes(16).toString('hex')
      profile = PROFILES[g % PROFILES.length] as Profile
      const groups = TUPLES / GROUP
      if (g >= groups - 2) nowMs = null // the last two groups: the real clock
      else if (g % 4 === 3) nowMs = rng.int(1, 2 ** 21 - 1) * 2 ** 32 + rng.u32() // anywhere below 2^53
      else if (g % 4 === 2) nowMs = 2 ** 48 - SLOT_MS * 2 + rng.int(0, SLOT_MS * 4) // the u32 slot wraps at 2^48 ms
      else nowMs = 1_700_000_000_000 + rng.int(0, 2 ** 32) * 16 // around now
    }
    const family: 4 | 6 = i % 2 === 0 ? 4 : 6
    const table = family === 4 ? MSS_TABLE_V4 : MSS_TABLE_V6
    const wr = rng.u32() / 2 ** 32
    const partial = {
      mss: randomMss(rng, table),
      wscale: wr < 0.2 ? undefined : wr < 0.85 ? rng.int(0, 14) : rng.int(15, 255),
      sack: rng.chance(0.5),
      ts: rng.chance(0.6) ? { tsval: rng.u32(), tsecr: rng.chance(0.5) ? 0 : rng.u32() } : undefined,
    }
    const er = rng.u32() / 2 ** 32
    const ecnFlags = er < 0.4 ? TCP_FLAG.ECE | TCP_FLAG.CWR : er < 0.5 ? TCP_FLAG.ECE : er < 0.6 ? TCP_FLAG.CWR : 0
    const mac = rng.bytes(6)
    mac[0] = ((mac[0] as number) & 0xfc) | 0x02 // unicast, locally administered
    cases.push({
      index: i,
      family,
      saddr: family === 4 ? randomIPv4(rng) : randomIPv6(rng),
      daddr: family === 4 ? randomIPv4(rng) : randomIPv6(rng),
      sport: rng.int(1, 65535),
      dport: rng.pick(LISTEN_PORTS),
      seq: rng.u32(),
      ...partial,
      flags: TCP_FLAG.SYN | ecnFlags,
      srcMac: Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':'),
      options: synOptions(rng, partial),
      ip: ipExtras(rng, family),
      payload: rng.chance(0.05) ? rng.bytes(rng.int(1, 64)) : undefined,
      profile,
      key,
      nowMs,
      flips: i % FLIP_EVERY === 0,
    })
  }
  return cases
}

function synFrame(c: SynCase): Buffer {
  return tcpFrame({
    eth: { dst: LO_MAC, src: c.srcMac },
    src: c.saddr,
    dst: c.daddr,
    sport: c.sport,
    dport: c.dport,
    seq: c.seq,
    flags: c.flags,
    window: 64240,
    options: c.options,
    payload: c.payload,
    ip: c.ip,
  })
}

/** The tuple as the codec takes it: the SYN's view (source = client). */
function tupleOf(c: Pick<SynCase, 'saddr' | 'daddr' | 'sport' | 'dport' | 'seq'>): CookieTuple {
  return { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, seq: c.seq }
}

/** What the program should negotiate: the client's options that the listener's netns allows. */
function negotiated(c: SynCase): { opts: CookieOptions; ts: boolean; encodable: boolean } {
  const table = c.family === 4 ? MSS_TABLE_V4 : MSS_TABLE_V6
  const mss = c.mss ?? (table[0] as number)
  return {
    opts: {
      mss,
      wscale: c.wscale !== undefined && c.profile.window_scaling !== 0 ? c.wscale : null,
      sack: c.sack && c.profile.sack !== 0,
      ecn: (c.flags & TCP_FLAG.ECE) !== 0 && (c.flags & TCP_FLAG.CWR) !== 0 && c.profile.ecn !== 0,
    },
    ts: c.ts !== undefined && c.profile.timestamps !== 0,
    encodable: mss >= (table[0] as number),
  }
}

function describeCase(c: SynCase): string {
  const host = (a: string, p: number): string => (c.family === 6 ? `[${a}]:${p}` : `${a}:${p}`)
  const o = [
    c.mss === undefined ? 'no MSS' : `MSS ${c.mss}`,
    c.wscale === undefined ? 'no WS' : `WS ${c.wscale}`,
    c.sack ? 'SACK' : 'no SACK',
    c.ts ? `TS ${c.ts.tsval}/${c.ts.tsecr}` : 'no TS',
    `flags 0x${c.flags.toString(16)}`,
  ].join(', ')
  const clock = c.nowMs === null ? 'real clock' : `nowMs ${c.nowMs}`
  return `#${c.index} ${host(c.saddr, c.sport)} > ${host(c.daddr, c.dport)} seq ${c.seq} (${o}); ${c.profile.name}; key ${c.key}; ${clock}`
}

// ---------------------------------------------------------------------------------------------
// Worker side

interface RunResult {
  retval: number
  hex: string
  durationNs: number
  moved: Record<string, number>
  clock?: { before: number; after: number }
}

type Step =
  | { run: string; stats: true; clock?: boolean }
  | { setClock: number | null }
  | { rotate: string }
  | { sysctl: string; value?: number | string }
  | { keys: true }

function sysctlSteps(p: Profile): Step[] {
  return [
    { sysctl: 'net.ipv4.tcp_timestamps', value: p.timestamps },
    { sysctl: 'net.ipv4.tcp_sack', value: p.sack },
    { sysctl: 'net.ipv4.tcp_window_scaling', value: p.window_scaling },
    { sysctl: 'net.ipv4.tcp_ecn', value: p.ecn },
  ]
}

function ilog2(x: number): number {
  return 31 - Math.clz32(x)
}

/** Sum of per-run counter movements. */
function addMoved(total: Record<string, number>, m: Record<string, number>): void {
  for (const [k, v] of Object.entries(m)) total[k] = (total[k] ?? 0) + v
}

function asBigints(m: Record<string, number>, names: readonly string[]): AgentStats {
  const out: AgentStats = {}
  for (const n of names) out[n] = BigInt(m[n] ?? 0)
  return out
}

function same(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const k of keys) if ((a[k] ?? 0) !== (b[k] ?? 0)) return false
  return true
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length
}

describeKernel('the BPF program and lib/cookie.ts agree (BPF_PROG_TEST_RUN)', () => {
  let worker: NsWorker
  let ns: string
  /** lo's MTU in the namespace: the program advertises MTU - 40 (IPv4) / - 60 (IPv6). */
  let loMtu = 0
  /** The window scale the program offers (the kernel's choice for the listener). */
  let rcvWscale = -1

  const batch = <T = RunResult>(steps: Step[]): Promise<(T | null)[]> =>
    worker.call<(T | null)[]>('prog.batch', { steps }, 60_000)

  beforeAll(async () => {
    requireDist()
    await removeLeftovers(PREFIX)
    ns = namespaceName(PREFIX, 'tr')
    await createNamespace(ns) // lo up
    worker = await NsWorker.start(ns)
    await worker.call('worker.load', './ops-testrun.mjs')
    for (const port of LISTEN_PORTS) {
      await worker.listen({ host: '0.0.0.0', port, mode: 'hold' })
      await worker.listen({ host: '::', port, mode: 'hold' })
    }
    // random addresses on both sides: the codec is under test, not which destinations are local
    await worker.createAgent({ ports: [...LISTEN_PORTS, NO_LISTENER], destinations: 'any' })
    await worker.call('prog.load')
    const { stdout } = await run(['ip', '-n', ns, '-j', 'link', 'show', 'lo'])
    loMtu = (JSON.parse(stdout) as { mtu: number }[])[0]?.mtu ?? 0
    // tcp_select_initial_window(): ilog2(max(sk_rcvbuf = tcp_rmem[1], tcp_rmem[2], rmem_max)) - 15
    const rmem = (await worker.call<string>('prog.sysctl', { name: 'net.ipv4.tcp_rmem' })).split(' ').map(Number)
    const rmemMax = Number(await worker.call<string>('prog.sysctl', { name: 'net.core.rmem_max' }))
    const space = Math.max(rmem[1] ?? 0, rmem[2] ?? 0, rmemMax)
    rcvWscale = Math.min(14, Math.max(0, ilog2(space) - 15))
  })

  afterAll(async () => {
    killAllWorkers()
    await removeLeftovers(PREFIX)
  }, 30_000)

  /** Runs steps in the worker between two stats() reads; returns the results and the counter delta. */
  async function measured<T = RunResult>(steps: Step[]): Promise<{ results: (T | null)[]; delta: AgentStats }> {
    const s0 = await worker.stats()
    const results = await batch<T>(steps)
    const s1 = await worker.stats()
    return { results, delta: statsDelta(s0, s1) }
  }

  /** Asserts that the stats() delta of a phase is exactly the sum of the runs' movements. */
  function expectTotals(delta: AgentStats, total: Record<string, number>, what: string): void {
    const names = Object.keys(delta)
    expect(names.length, 'stats() has counters').toBeGreaterThan(15)
    expect(delta, `${what}: stats() delta ${JSON.stringify(moved(delta))}`).toEqual(asBigints(total, names))
    expect(delta.ackKernelCookie, 'no ACK is ever taken for a kernel cookie').toBe(0n)
  }

  it('preconditions: lo MAC, a listener, the pinned clock, the key in the map', async () => {
    await batch([...sysctlSteps(DEFAULTS), { rotate: '000102030405060708090a0b0c0d0e0f' }, { setClock: 1733011237000 }])
    const keys = await worker.call<string[]>('prog.keys')
    expect(keys[0]).toBe('000102030405060708090a0b0c0d0e0f')
    // docs/cookie-format.md, worked example (vector 6), sent to a port with a listener
    const c = { saddr: '192.0.2.1', daddr: '198.51.100.7', sport: 40000, dport: 443, seq: 0x12345678 }
    const base: SegmentSpec = {
      src: c.saddr,
      dst: c.daddr,
      sport: c.sport,
      dport: c.dport,
      seq: c.seq,
      options: linuxSynOptions({ mss: 1460, sack: true, wscale: 7 }),
    }
    const other = { ...base, eth: { dst: '02:00:00:00:00:99' } }
    const noListener = { ...base, dport: NO_LISTENER }
    const { results, delta } = await measured([
      { run: tcpFrame(base).toString('hex'), stats: true },
      { run: tcpFrame(other).toString('hex'), stats: true },
      { run: tcpFrame(noListener).toString('hex'), stats: true },
    ])
    const [ok, otherHost, none] = results as RunResult[]
    expect(ok?.moved).toEqual({ synReceived: 1, synAckSent: 1 })
    expect(ok?.retval).toBe(TC_ACT.REDIRECT)
    const f = parseFrame(Buffer.from(ok!.hex, 'hex'))
    expect(f.tcp?.seq, 'vector 6: cookie 0x4f787097').toBe(0x4f787097)
    expect(encodeCookie({ ...c, dport: 443 }, { mss: 1460, wscale: 7, sack: true, ecn: false }, Buffer.from(keys[0]!, 'hex'), 1733011237000)).toBe(
      0x4f787097,
    )
    expect(otherHost?.moved, 'a frame to another MAC is PACKET_OTHERHOST under test_run').toEqual({ synReceived: 1, synDropAddress: 1 })
    expect(otherHost?.retval).toBe(TC_ACT.SHOT)
    expect(none?.moved, 'a protected port nobody listens on').toEqual({ synReceived: 1, synNoListener: 1 })
    expect(none?.retval, "passed on as TC_ACT_UNSPEC (-1 as a u32)").toBe(0xffffffff)
    expectTotals(delta, { synReceived: 3, synAckSent: 1, synDropAddress: 1, synNoListener: 1 }, 'preconditions')
    expect(loMtu).toBeGreaterThan(1280)
    expect(rcvWscale).toBeGreaterThanOrEqual(0)
  })

  it('drops IPv6 SYNs from or to IPv4-mapped addresses (the kernel would; the format has no tuple for them)', async () => {
    // ::ffff:192.0.2.1 -> [2001:db8::7]:8080, a Linux-like SYN
    const fromMapped =
      '00000000000002000000000186dd600000000018064000000000000000000000ffffc000020120010db80000000000000000000000079c401f9012345678000000006002ffff83e80000020405b4'
    // [2001:db8::2] -> ::ffff:192.0.2.7: only the destination is mapped
    const toMapped = fromMapped.slice(0, 44) + '20010db8000000000000000000000002' + '00000000000000000000ffffc0000207' + fromMapped.slice(108)
    const { results } = await measured([
      { run: fromMapped, stats: true },
      { run: toMapped, stats: true },
    ])
    for (const r of results as RunResult[]) {
      expect(r.moved).toEqual({ synReceived: 1, synDropAddress: 1 })
      expect(r.retval).toBe(TC_ACT.SHOT)
    }
  })

  it(`${TUPLES} random SYNs and their ACKs: ISN, TSval, options and checksums match the codec; 32 flips of every ${FLIP_EVERY}th cookie are rejected`, async () => {
    const rng = new Rng(SEED)
    const cases = makeCases(rng)
    const problems: string[] = []
    const problem = (c: SynCase, what: string, syn?: Buffer): void => {
      if (problems.length < 20) problems.push(`${describeCase(c)}: ${what}${syn ? `\n    SYN ${syn.toString('hex')}` : ''}`)
      else problems.push('')
    }
    const figures = {
      v4: 0,
      v6: 0,
      realClock: 0,
      synAcks: 0,
      droppedMss: 0,
      ecn: 0,
      sack: 0,
      ts: 0,
      ws: 0,
      wsClamped: 0,
      ipExtras: 0,
      validAcks: 0,
      flips: 0,
      fieldFlips: 0,
      synNs: [] as number[],
      ackNs: [] as number[],
      rejectNs: [] as number[],
    }
    const expectedTotal: Record<string, number> = {}
    const s0 = await worker.stats()

    for (let g = 0; g < cases.length; g += GROUP) {
      const group = cases.slice(g, g + GROUP)
      const first = group[0]!
      const setup: Step[] = [...sysctlSteps(first.profile), { rotate: first.key }, { setClock: first.nowMs }, { keys: true }]
      const synFrames = group.map(synFrame)
      const synResults = await batch([...setup, ...synFrames.map((f): Step => ({ run: f.toString('hex'), stats: true, clock: first.nowMs === null }))])
      const keys = (synResults[setup.length - 1] as unknown as string[]).map((k) => Buffer.from(k, 'hex'))
      expect(keys[0]?.toString('hex'), 'the group key is the current secret').toBe(first.key)
      const key = keys[0]!

      // --- SYN → SYN-ACK ---------------------------------------------------------------------
      const acks: { c: SynCase; cookie: number; frame: SegmentSpec; nowMs: number | null; ackSeq: number }[] = []
      group.forEach((c, j) => {
        const r = synResults[setup.length + j] as RunResult
        const syn = synFrames[j]!
        const n = negotiated(c)
        figures[c.family === 4 ? 'v4' : 'v6']++
        if (c.nowMs === null) figures.realClock++
        if ((c.ip?.options ?? c.ip?.ext) !== undefined) figures.ipExtras++
        if (!n.encodable) {
          figures.droppedMss++
          addMoved(expectedTotal, { synReceived: 1, synDropMss: 1 })
          if (!same(r.moved, { synReceived: 1, synDropMss: 1 }) || r.retval !== TC_ACT.SHOT) {
            problem(c, `MSS below the table: want synDropMss and SHOT, got ${JSON.stringify(r.moved)} retval ${r.retval}`, syn)
          }
          expect(() => encodeCookie(tupleOf(c), n.opts, key, 0)).toThrow(RangeError)
          return
        }
        addMoved(expectedTotal, { synReceived: 1, synAckSent: 1 })
        if (!same(r.moved, { synReceived: 1, synAckSent: 1 }) || r.retval !== TC_ACT.REDIRECT) {
          problem(c, `want synAckSent and TC_ACT_REDIRECT, got ${JSON.stringify(r.moved)} retval ${r.retval}`, syn)
          return
        }
        figures.synAcks++
        figures.synNs.push(r.durationNs)
        const f: ParsedFrame = parseFrame(Buffer.from(r.hex, 'hex'))
        const t = f.tcp
        if (t === undefined || f.ip === undefined || f.eth === undefined) {
          problem(c, `unparsable SYN-ACK ${r.hex}: ${f.errors.join('; ')}`, syn)
          return
        }
        // the clock the cookie was minted with: pinned, or either side of the run
        const nows = c.nowMs !== null ? [c.nowMs] : [...new Set([r.clock!.before, r.clock!.after])]
        const candidates = nows.map((now) => ({ now, cookie: encodeCookie(tupleOf(c), n.opts, key, now), tsval: synAckTsval(tupleOf(c), n.opts, key, now) }))
        const hit = candidates.find((k) => k.cookie === t.seq)
        const bad: string[] = []
        if (hit === undefined) {
          bad.push(`ISN 0x${t.seq.toString(16)} != codec ${candidates.map((k) => `0x${k.cookie.toString(16)} (now ${k.now})`).join(' or ')}`)
        }
        const v4 = c.family === 4
        const advMss = loMtu - (v4 ? 40 : 60)
        const wantOpts = encodeTcpOptions(
          linuxSynOptions({
            mss: advMss,
            sack: n.opts.sack,
            ts: n.ts ? { tsval: (hit ?? candidates[0]!).tsval, tsecr: c.ts!.tsval } : undefined,
            wscale: n.opts.wscale !== null ? rcvWscale : undefined,
          }),
        )
        if (!t.optionsRaw.equals(wantOpts)) {
          bad.push(`options ${t.optionsRaw.toString('hex')} != ${wantOpts.toString('hex')} (MSS ${advMss}, SACK ${n.opts.sack}, TS ${n.ts}, WS ${n.opts.wscale})`)
        }
        if (n.ts && t.options.ts?.tsval !== (hit ?? candidates[0]!).tsval) bad.push(`TSval ${t.options.ts?.tsval} != codec ${(hit ?? candidates[0]!).tsval}`)
        const wantFlags = TCP_FLAG.SYN | TCP_FLAG.ACK | (n.opts.ecn ? TCP_FLAG.ECE : 0)
        if (t.flags !== wantFlags) bad.push(`flags 0x${t.flags.toString(16)} != 0x${wantFlags.toString(16)}`)
        if (t.ack !== ((c.seq + 1) >>> 0)) bad.push(`ack ${t.ack} != ISN + 1`)
        if (t.sport !== c.dport || t.dport !== c.sport) bad.push(`ports ${t.sport} > ${t.dport}`)
        if (t.window !== 65535 || t.urg !== 0 || t.reserved !== 0 || t.payload.length !== 0) bad.push(`window ${t.window}, urg ${t.urg}, payload ${t.payload.length}`)
        if (!t.checksumOk) bad.push(`TCP checksum 0x${t.checksum.toString(16)} is wrong`)
        if (f.ip.src !== c.daddr || f.ip.dst !== c.saddr) bad.push(`addresses ${f.ip.src} > ${f.ip.dst}`)
        if (f.ip.ttl !== 64) bad.push(`TTL / hop limit ${f.ip.ttl}`)
        if (v4) {
          if (f.ip.checksumOk !== true) bad.push(`IPv4 header checksum 0x${f.ip.checksum?.toString(16)} is wrong`)
          if (f.ip.headerLength !== 20 || f.ip.df !== true || f.ip.mf || f.ip.fragOffset !== 0) bad.push('IPv4 header: options, or not DF')
          if (f.ip.totalLength !== f.length - 14) bad.push(`IPv4 total length ${f.ip.totalLength} of a ${f.length}-byte frame`)
        } else {
          if (f.ip.ext.length !== 0 || f.ip.nextHeader !== 6) bad.push('IPv6 extension headers echoed')
          if (f.ip.payloadLength !== f.length - 54) bad.push(`IPv6 payload length ${f.ip.payloadLength} of a ${f.length}-byte frame`)
        }
        if (f.eth.dst !== c.srcMac || f.eth.src !== LO_MAC || f.eth.type !== (v4 ? 0x0800 : 0x86dd)) bad.push(`Ethernet ${f.eth.src} > ${f.eth.dst}`)
        if (bad.length > 0) {
          problem(c, `${bad.join('; ')}\n    SYN-ACK ${r.hex}`, syn)
          return
        }
        if (n.opts.ecn) figures.ecn++
        if (n.opts.sack) figures.sack++
        if (n.ts) figures.ts++
        if (n.opts.wscale !== null) figures.ws++
        if ((n.opts.wscale ?? 0) > 14) figures.wsClamped++

        // the client's ACK
        const frame: SegmentSpec = {
          eth: { dst: LO_MAC, src: c.srcMac },
          src: c.saddr,
          dst: c.daddr,
          sport: c.sport,
          dport: c.dport,
          seq: (c.seq + 1) >>> 0,
          ack: (t.seq + 1) >>> 0,
          flags: TCP_FLAG.ACK,
          window: 502,
          options: n.ts ? [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', tsval: (c.ts!.tsval + 1) >>> 0, tsecr: t.options.ts!.tsval }] : undefined,
        }
        acks.push({ c, cookie: t.seq, frame, nowMs: c.nowMs, ackSeq: (t.seq + 1) >>> 0 })
      })

      // --- ACKs: the right cookie, then single-bit changes of it and of the tuple --------------
      interface Probe {
        c: SynCase
        what: string
        tuple: CookieTuple
        cookie: number
        kind: 'valid' | 'flip' | 'field'
        frame: Buffer
      }
      const probes: Probe[] = []
      for (const a of acks) {
        const { c } = a
        probes.push({ c, what: 'the cookie ACK', tuple: tupleOf(c), cookie: a.cookie, kind: 'valid', frame: tcpFrame(a.frame) })
        if (!c.flips) continue
        for (let bit = 0; bit < 32; bit++) {
          const cookie = (a.cookie ^ (1 << bit)) >>> 0
          probes.push({ c, what: `cookie bit ${bit} flipped`, tuple: tupleOf(c), cookie, kind: 'flip', frame: tcpFrame({ ...a.frame, ack: (cookie + 1) >>> 0 }) })
        }
        // the cookie is bound to the client ISN, the client port and both addresses
        const isnBit = rng.int(0, 31)
        const seq = (c.seq ^ (1 << isnBit)) >>> 0
        probes.push({ c, what: `ISN bit ${isnBit} flipped`, tuple: { ...tupleOf(c), seq }, cookie: a.cookie, kind: 'field', frame: tcpFrame({ ...a.frame, seq: (seq + 1) >>> 0 }) })
        const portBit = rng.int(0, 15)
        const sport = c.sport ^ (1 << portBit)
        probes.push({ c, what: `client port bit ${portBit} flipped`, tuple: { ...tupleOf(c), sport }, cookie: a.cookie, kind: 'field', frame: tcpFrame({ ...a.frame, sport }) })
        const which = rng.chance(0.5) ? 'saddr' : 'daddr'
        const addr = Buffer.from(parseFrame(tcpFrame(a.frame)).ip![which === 'saddr' ? 'srcBytes' : 'dstBytes'])
        const addrBit = rng.int(0, addr.length * 8 - 1)
        addr[addrBit >> 3] = (addr[addrBit >> 3] as number) ^ (0x80 >> (addrBit & 7))
        const moved4 = { ...tupleOf(c), [which]: formatIp(addr) }
        probes.push({
          c,
          what: `${which} bit ${addrBit} flipped`,
          tuple: moved4,
          cookie: a.cookie,
          kind: 'field',
          frame: tcpFrame({ ...a.frame, src: moved4.saddr, dst: moved4.daddr }),
        })
      }
      const ackResults = await batch(probes.map((p): Step => ({ run: p.frame.toString('hex'), stats: true, clock: p.c.nowMs === null })))
      probes.forEach((p, j) => {
        const r = ackResults[j] as RunResult
        // the codec's verdict at the program's clock (both sides of the run for the real clock)
        const nows = p.c.nowMs !== null ? [p.c.nowMs] : [...new Set([r.clock!.before, r.clock!.after])]
        const verdicts = nows.map((now) => decodeCookie(p.cookie, p.tuple, keys, now) !== null)
        const accepted = r.retval === TC_ACT.SHOT && same(r.moved, { ackAssignFailed: 1 })
        const rejected = r.retval === TC_ACT.SHOT && same(r.moved, { ackRejected: 1 })
        if (p.kind === 'valid') {
          figures.validAcks++
          figures.ackNs.push(r.durationNs)
          addMoved(expectedTotal, { ackAssignFailed: 1 })
          if (!verdicts.every(Boolean)) problem(p.c, `${p.what}: the codec does not accept its own cookie 0x${p.cookie.toString(16)}`)
          if (!accepted) problem(p.c, `${p.what}: want ackAssignFailed (cookie valid, kfunc -EINVAL under test_run), got ${JSON.stringify(r.moved)} retval ${r.retval}\n    ACK ${r.hex}`)
        } else {
          figures[p.kind === 'flip' ? 'flips' : 'fieldFlips']++
          figures.rejectNs.push(r.durationNs)
          addMoved(expectedTotal, { ackRejected: 1 })
          // with two keys a change passes with probability ~2^-22: the seed must not hit one
          if (verdicts.some(Boolean)) problem(p.c, `${p.what}: the codec accepts it (a 2^-22 collision: pick another seed)`)
          if (!rejected) problem(p.c, `${p.what}: want ackRejected, got ${JSON.stringify(r.moved)} retval ${r.retval}\n    ACK ${p.frame.toString('hex')}`)
        }
      })
    }

    const delta = statsDelta(s0, await worker.stats())
    const f = figures
    console.log(
      `[codec-testrun] seed 0x${SEED.toString(16)}: ${f.v4 + f.v6} SYNs (${f.v4} IPv4, ${f.v6} IPv6, ${f.realClock} on the real clock, ` +
        `${f.ipExtras} with IP options / extension headers), ${f.synAcks} SYN-ACKs matched the codec ` +
        `(ECN ${f.ecn}, SACK ${f.sack}, TS ${f.ts}, WS ${f.ws} of which ${f.wsClamped} clamped), ${f.droppedMss} dropped for MSS; ` +
        `${f.validAcks} cookie ACKs accepted, ${f.flips} cookie bit flips and ${f.fieldFlips} tuple bit flips rejected; ` +
        `test_run mean ns: SYN ${mean(f.synNs).toFixed(0)}, valid ACK ${mean(f.ackNs).toFixed(0)}, rejected ACK ${mean(f.rejectNs).toFixed(0)}`,
    )
    expect(problems.filter(Boolean), `${problems.length} problem(s), the first ones`).toEqual([])
    expect(f.v4).toBe(TUPLES / 2)
    expect(f.v6).toBe(TUPLES / 2)
    expect(f.synAcks + f.droppedMss).toBe(TUPLES)
    expect(f.synAcks).toBeGreaterThanOrEqual(950)
    expect(f.validAcks).toBe(f.synAcks)
    expect(f.flips, 'at least 100 tuples × 32 flips').toBeGreaterThanOrEqual(3200)
    expect(f.realClock).toBeGreaterThanOrEqual(100)
    for (const n of [f.ecn, f.sack, f.ts, f.ws, f.wsClamped, f.droppedMss, f.ipExtras]) expect(n).toBeGreaterThan(0)
    expectTotals(delta, expectedTotal, 'random tuples')
  })

  /** One SYN per family with options; returns the cookie and the ACK to send for it. */
  async function mint(rng: Rng, family: 4 | 6, nowMs: number): Promise<{ tuple: CookieTuple; cookie: number; ack: (cookie?: number) => string; c: SynCase }> {
    const c: SynCase = {
      index: -1,
      family,
      saddr: family === 4 ? randomIPv4(rng) : randomIPv6(rng),
      daddr: family === 4 ? randomIPv4(rng) : randomIPv6(rng),
      sport: rng.int(1, 65535),
      dport: rng.pick(LISTEN_PORTS),
      seq: rng.u32(),
      mss: family === 4 ? 1460 : 1440,
      wscale: 7,
      sack: true,
      ts: { tsval: rng.u32(), tsecr: 0 },
      flags: TCP_FLAG.SYN,
      srcMac: '02:00:00:00:00:01',
      options: [],
      ip: {},
      profile: DEFAULTS,
      key: '',
      nowMs,
      flips: false,
    }
    c.options = linuxSynOptions({ mss: c.mss, sack: c.sack, ts: c.ts, wscale: c.wscale })
    const [r] = (await batch([{ setClock: nowMs }, { run: synFrame(c).toString('hex'), stats: true }])).slice(1) as RunResult[]
    expect(r?.moved, describeCase(c)).toEqual({ synReceived: 1, synAckSent: 1 })
    const t = parseFrame(Buffer.from(r!.hex, 'hex')).tcp!
    const ack = (cookie = t.seq): string =>
      tcpFrame({
        src: c.saddr,
        dst: c.daddr,
        sport: c.sport,
        dport: c.dport,
        seq: (c.seq + 1) >>> 0,
        ack: (cookie + 1) >>> 0,
        flags: TCP_FLAG.ACK,
        options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', tsval: c.ts!.tsval + 1, tsecr: t.options.ts!.tsval }],
      }).toString('hex')
    return { tuple: tupleOf(c), cookie: t.seq, ack, c }
  }

  it('a cookie minted in slot S is accepted in S and S+1 and rejected in S-1, S+2, S+3, S+4', async () => {
    const rng = new Rng(SEED ^ 0x51075107)
    const key = rng.bytes(16)
    await batch([...sysctlSteps(DEFAULTS), { rotate: key.toString('hex') }])
    const keys = (await worker.call<string[]>('prog.keys')).map((k) => Buffer.from(k, 'hex'))
    const s0 = await worker.stats()
    const total: Record<string, number> = {}
    let checked = 0
    for (let i = 0; i < 16; i++) {
      const family: 4 | 6 = i % 2 === 0 ? 4 : 6
      // the clock is S * 65536 + offset ms; the u32 slot wraps from S = 2^32 - 1 to 2^32 (0)
      const S = [2 ** 32 - 1, 2 ** 32 - 2, 2 ** 32, 2 ** 33 + 1][i] ?? rng.int(2, 2 ** 36)
      // minted at the first, the last or any ms of its slot
      const offset = i % 4 === 0 ? 0 : i % 4 === 1 ? SLOT_MS - 1 : rng.int(0, SLOT_MS - 1)
      const mintedAt = S * SLOT_MS + offset
      const m = await mint(rng, family, mintedAt)
      addMoved(total, { synReceived: 1, synAckSent: 1 })
      expect(m.cookie, describeCase(m.c)).toBe(encodeCookie(m.tuple, { mss: m.c.mss!, wscale: 7, sack: true, ecn: false }, keys[0]!, mintedAt))
      const at: [string, number, boolean][] = [
        ['S, when minted', mintedAt, true],
        ['S, first ms', S * SLOT_MS, true],
        ['S, last ms', (S + 1) * SLOT_MS - 1, true],
        ['S+1, first ms', (S + 1) * SLOT_MS, true],
        ['S+1 (now + 65536)', mintedAt + SLOT_MS, true],
        ['S+1, last ms', (S + 2) * SLOT_MS - 1, true],
        ['S+2, first ms', (S + 2) * SLOT_MS, false],
        ['S+2 (now + 2 × 65536)', mintedAt + 2 * SLOT_MS, false],
        ['S+3', (S + 3) * SLOT_MS + offset, false],
        ['S+4', (S + 4) * SLOT_MS + offset, false],
        ['S-1, last ms', S * SLOT_MS - 1, false],
      ]
      const steps: Step[] = at.flatMap(([, ms]): Step[] => [{ setClock: ms }, { run: m.ack(), stats: true }])
      const results = (await batch(steps)).filter((x) => x !== null) as RunResult[]
      at.forEach(([name, ms, valid], j) => {
        const r = results[j]!
        const want: Record<string, number> = valid ? { ackAssignFailed: 1 } : { ackRejected: 1 }
        expect(decodeCookie(m.cookie, m.tuple, keys, ms) !== null, `codec at ${name}`).toBe(valid)
        expect(r.moved, `${describeCase(m.c)}: ACK at ${name} (clock ${ms}, minted at ${mintedAt})`).toEqual(want)
        expect(r.retval).toBe(TC_ACT.SHOT)
        addMoved(total, want)
        checked++
      })
    }
    expectTotals(statsDelta(s0, await worker.stats()), total, 'slots')
    expect(checked).toBe(16 * 11)
  })

  it('a cookie survives one rotateSecret and is rejected after two', async () => {
    const rng = new Rng(SEED ^ 0x0707a7e5)
    await batch(sysctlSteps(DEFAULTS))
    const s0 = await worker.stats()
    const total: Record<string, number> = {}
    for (let i = 0; i < 8; i++) {
      const family: 4 | 6 = i % 2 === 0 ? 4 : 6
      const nowMs = 1_700_000_000_000 + rng.int(0, 2 ** 31)
      const [k1, k2, k3] = [rng.bytes(16), rng.bytes(16), rng.bytes(16)]
      await batch([{ rotate: k1.toString('hex') }])
      const m = await mint(rng, family, nowMs)
      addMoved(total, { synReceived: 1, synAckSent: 1 })
      const opts: CookieOptions = { mss: m.c.mss!, wscale: 7, sack: true, ecn: false }
      expect(m.cookie, describeCase(m.c)).toBe(encodeCookie(m.tuple, opts, k1, nowMs))
      const results = (await batch([
        { run: m.ack(), stats: true },
        { rotate: k2.toString('hex') },
        { keys: true },
        { run: m.ack(), stats: true },
        { rotate: k3.toString('hex') },
        { keys: true },
        { run: m.ack(), stats: true },
      ])) as unknown[]
      const [r0, , keys1, r1, , keys2, r2] = results as [RunResult, null, string[], RunResult, null, string[], RunResult]
      expect(keys1).toEqual([k2.toString('hex'), k1.toString('hex')])
      expect(keys2).toEqual([k3.toString('hex'), k2.toString('hex')])
      const ctx = describeCase(m.c)
      expect(r0.moved, `${ctx}: with its own key`).toEqual({ ackAssignFailed: 1 })
      expect(r1.moved, `${ctx}: after one rotation`).toEqual({ ackAssignFailed: 1 })
      expect(r2.moved, `${ctx}: after two rotations`).toEqual({ ackRejected: 1 })
      expect(decodeCookie(m.cookie, m.tuple, [k1], nowMs)).toEqual({ ...opts, mss: family === 4 ? 1460 : 1440 })
      expect(decodeCookie(m.cookie, m.tuple, [k2, k1], nowMs)).not.toBeNull()
      expect(decodeCookie(m.cookie, m.tuple, [k3, k2], nowMs)).toBeNull()
      addMoved(total, { ackAssignFailed: 2, ackRejected: 1 })
      // and a cookie minted with the current key (k3) is good
      const m2 = await mint(rng, family, nowMs)
      addMoved(total, { synReceived: 1, synAckSent: 1 })
      expect(m2.cookie).toBe(encodeCookie(m2.tuple, opts, k3, nowMs))
      const [again] = (await batch([{ run: m2.ack(), stats: true }])) as RunResult[]
      expect(again?.moved).toEqual({ ackAssignFailed: 1 })
      addMoved(total, { ackAssignFailed: 1 })
    }
    expectTotals(statsDelta(s0, await worker.stats()), total, 'rotation')
  })
})
