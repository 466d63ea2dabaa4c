/**
 * Fuzz: 1,000,000 mutated packets (bit flips, odd bytes, truncations and garbage tails of ten
 * valid SYNs and cookie ACKs, v4 and v6, with options, IPv4 options and IPv6 extension headers)
 * through the real program with BPF_PROG_TEST_RUN, generated inside the worker from a seed.
 *
 * Each packet is compared with a reference model of the program's parse (ops-hostile.mjs
 * programView/predict: other_port(), parse_packet(), the flag dispatch, the SYN checks in
 * order, the codec's verdict on a cookie): the counters it moves and the verdict must be the
 * predicted ones, exactly. That is the invariant of README's counter table, per packet:
 *   - a packet the program cannot see as TCP to a protected port (PARSE_NOT_OURS, other ports)
 *     moves no counter and passes;
 *   - a SYN (SYN without ACK) to a protected port moves synReceived and exactly one SYN verdict;
 *   - any other segment to a protected port moves exactly one other verdict;
 *   - an IPv6 chain too long to reach TCP moves synDropHeaders alone.
 * So over the run the verdict counters sum to the number of packets the model calls
 * protected, and synReceived to the number of SYNs. Every SYN-ACK is checked (checksums,
 * swapped addresses/ports/MACs, ack = ISN + 1, and its cookie decodes with the options the
 * SYN asked for), and a valid SYN is still answered after every 100,000 packets.
 *
 * BPF_PROG_TEST_RUN refuses (EINVAL) a frame whose IPv4/IPv6 header is cut short, so truncations
 * keep the IP header and the rare refused mutant is replaced by the next: 1,000,000 packets run.
 * Frames with cut IP headers go over a veth in hostile-corpus.test.ts.
 *
 * Reproduce: SCA_FUZZ_SEED=<n> SCA_FUZZ_COUNT=<n> npx vitest run test/kernel/fuzz.test.ts; a
 * reported packet index i is rebuilt from (seed, i) alone (ops-hostile.mjs packetRng).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadHostileOps } from '../helpers/hostile.js'
import { describeKernel, requireDist } from '../helpers/kernel.js'
import { createNamespace, namespaceName, removeLeftovers } from '../helpers/netns.js'
import { run } from '../helpers/exec.js'
import { killAllWorkers, NsWorker } from '../helpers/worker.js'

const PREFIX = 'sca-fz'
const SEED = Number(process.env.SCA_FUZZ_SEED ?? 0xf022ed) >>> 0
const COUNT = Number(process.env.SCA_FUZZ_COUNT ?? 1_000_000)
const CHUNK = 250_000
const PORTS = [8080, 443]
const NOW_MS = 1_733_011_237_000
const KEY_PREV = '000102030405060708090a0b0c0d0e0f'
const KEY_CUR = 'f0e1d2c3b4a5968778695a4b3c2d1e0f'

interface FuzzResult {
  seed: number
  count: number
  start: number
  bases: { what: string; hex: string }[]
  ran: number
  refusedShortL3: number
  errors: Record<string, number>
  firstErrors: { index: number; error: string; hex: string }[]
  classes: Record<string, number>
  verdicts: Record<string, number>
  retvals: Record<string, number>
  mismatches: number
  firstMismatches: unknown[]
  synAcks: number
  badSynAcks: number
  firstBadSynAcks: unknown[]
  answeredInvalid: Record<string, number>
  firstAnsweredInvalid: { index: number; why: string; hex: string }[]
  validCookieAcks: number
  sanity: { at: number; ok: boolean }[]
  ms: number
  total: Record<string, number>
}

const SYN_VERDICTS = ['synAckSent', 'synExistingSocket', 'synNoListener', 'synCookiesOff', 'synDropMalformed', 'synDropFragment', 'synDropHeaders', 'synDropAddress', 'synDropMss', 'synDropError']

describeKernel('fuzz: mutated SYNs and ACKs through BPF_PROG_TEST_RUN', () => {
  const ns = namespaceName(PREFIX, 'fz')
  let w: NsWorker
  const results: FuzzResult[] = []

  beforeAll(async () => {
    requireDist()
    await removeLeftovers(PREFIX)
    await createNamespace(ns)
    // the base frames' server addresses are this namespace's (destinations 'local'): a flip in
    // a destination address mostly makes it another host's, which the model predicts too
    await run(['ip', '-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'lo'])
    await run(['ip', '-n', ns, 'addr', 'add', '2001:db8::1/64', 'dev', 'lo', 'nodad'])
    w = await NsWorker.start(ns)
    for (const port of PORTS) {
      await w.listen({ host: '0.0.0.0', port, mode: 'hold' })
      await w.listen({ host: '::', port, mode: 'hold' })
    }
    await w.createAgent({ ports: PORTS })
    await loadHostileOps(w)
    await w.rotateSecret(KEY_PREV)
    await w.rotateSecret(KEY_CUR)
    await w.call('hostile.setClock', NOW_MS)
  })

  afterAll(async () => {
    killAllWorkers()
    await run(['ip', 'netns', 'del', ns]).catch(() => undefined)
  }, 30_000)

  const chunks = Array.from({ length: Math.ceil(COUNT / CHUNK) }, (_, i) => ({ start: i * CHUNK, count: Math.min(CHUNK, COUNT - i * CHUNK) }))
  for (const c of chunks) {
    it(`packets ${c.start}..${c.start + c.count - 1} (seed 0x${SEED.toString(16)}): every verdict and counter as predicted`, async () => {
      const r = await w.call<FuzzResult>('hostile.fuzz', { seed: SEED, count: c.count, start: c.start, nowMs: NOW_MS, ports: PORTS }, 600_000)
      results.push(r)
      const ctx = `mismatches ${JSON.stringify(r.firstMismatches, null, 1).slice(0, 6000)}`
      expect(r.ran).toBe(c.count)
      expect(r.errors, `BPF_PROG_TEST_RUN errors: ${JSON.stringify(r.firstErrors)}`).toEqual({})
      expect(r.mismatches, ctx).toBe(0)
      expect(r.badSynAcks, `bad SYN-ACKs: ${JSON.stringify(r.firstBadSynAcks).slice(0, 4000)}`).toBe(0)
      expect(r.sanity.every((s) => s.ok), `a valid SYN was not answered at some point: ${JSON.stringify(r.sanity)}`).toBe(true)
      // the invariant, summed: verdicts = protected packets, synReceived = SYNs
      const protectedCount = c.count - (r.classes.none ?? 0)
      const verdictSum = Object.entries(r.total).filter(([k]) => k !== 'synReceived').reduce((a, [, n]) => a + n, 0)
      expect(verdictSum, `verdict counters ${JSON.stringify(r.total)} vs classes ${JSON.stringify(r.classes)}`).toBe(protectedCount)
      expect(r.total.synReceived ?? 0).toBe(r.classes.syn ?? 0)
      const synVerdicts = SYN_VERDICTS.filter((k) => k !== 'synDropHeaders').reduce((a, k) => a + (r.total[k] ?? 0), 0)
      // chains too long and first fragments too short for a TCP header are dropped unseen (no synReceived)
      expect(synVerdicts + (r.total.synDropHeaders ?? 0), 'SYN verdicts = SYNs + chains too long + tiny first fragments').toBe(
        (r.classes.syn ?? 0) + (r.classes.headers ?? 0) + (r.classes.fragment ?? 0),
      )
      expect(r.total.synDropError ?? 0, 'no SYN-ACK failed to build').toBe(0)
      expect(r.total, 'the per-packet sums and the map agree').toEqual(r.verdicts)
    }, 900_000)
  }

  it('figures', () => {
    const sum = (f: (r: FuzzResult) => Record<string, number>): Record<string, number> => {
      const out: Record<string, number> = {}
      for (const r of results) for (const [k, n] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + n
      return out
    }
    const ran = results.reduce((a, r) => a + r.ran, 0)
    const refused = results.reduce((a, r) => a + r.refusedShortL3, 0)
    const ms = results.reduce((a, r) => a + r.ms, 0)
    const synAcks = results.reduce((a, r) => a + r.synAcks, 0)
    const invalid = sum((r) => r.answeredInvalid)
    console.info(
      `[fuzz] seed 0x${SEED.toString(16)}: ${ran} packets in ${(ms / 1000).toFixed(1)} s (${((ms * 1000) / Math.max(ran, 1)).toFixed(1)} µs each), ${refused} refused by BPF_PROG_TEST_RUN (IP header cut short); ` +
        `classes ${JSON.stringify(sum((r) => r.classes))}; verdicts ${JSON.stringify(sum((r) => r.verdicts))}; retvals ${JSON.stringify(sum((r) => r.retvals))}; ` +
        `${synAcks} SYN-ACKs, all well-formed; answered although the kernel would drop the SYN: ${JSON.stringify(invalid)}; ` +
        `valid cookie ACKs among the mutants: ${results.reduce((a, r) => a + r.validCookieAcks, 0)}`,
    )
    const examples = results.flatMap((r) => r.firstAnsweredInvalid).slice(0, 3)
    if (examples.length > 0) console.info(`[fuzz] answered invalid SYNs, e.g. ${JSON.stringify(examples)}`)
    expect(ran).toBe(COUNT)
  })

  // The program checks the IPv4 header checksum, the IP length fields against the frame and the
  // TCP checksum (test_run skbs are CHECKSUM_NONE: always summed), as ip_rcv_core() and
  // tcp_v4_rcv()/tcp_v6_rcv() do: no SYN-ACK for a packet that is not a valid SYN.
  it('no SYN the kernel would drop (bad IPv4/TCP checksum, IP length) is answered', () => {
    const invalid: Record<string, number> = {}
    for (const r of results) for (const [k, n] of Object.entries(r.answeredInvalid)) invalid[k] = (invalid[k] ?? 0) + n
    expect(results.length).toBeGreaterThan(0)
    expect(invalid).toEqual({})
  })
})
