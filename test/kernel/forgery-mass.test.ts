/**
 * Mass forgery and replay.
 *
 * 1,000,000 forged ACKs to a protected port through the real program (BPF_PROG_TEST_RUN, built
 * inside the worker from a seed): a quarter each IPv4/IPv6 from random unicast sources, ports,
 * ISNs and ack numbers, and IPv4/IPv6 at one tuple whose ISN the attacker knows (random ack
 * numbers only). Two keys are live (current and previous). docs/cookie-format.md bounds a blind
 * forgery at 2 × 2^-23 = 2^-22 per ACK: about 0.24 accepted per million. Under test_run a cookie
 * the program accepts reaches bpf_sk_assign_tcp_reqsk(), which returns -EINVAL: it counts as
 * ackAssignFailed. Every ACK's verdict must also be exactly the codec's (lib/cookie.ts).
 *
 * Replay: a cookie is accepted after one rotation and rejected after two; accepted in its own
 * time slot and the next, rejected two slots later (and in the slot before); through test_run
 * for v4 and v6, and over the veth with a raw client for the slots.
 *
 * Reproduce: SCA_FORGE_SEED=<n> SCA_FORGE_COUNT=<n> npx vitest run test/kernel/forgery-mass.test.ts
 */
import { beforeAll, expect, it } from 'vitest'
import { poll } from '../helpers/exec.js'
import { loadHostileOps } from '../helpers/hostile.js'
import { describeKernel, moved, registerCleanup, setupKernelEnv, startAgent, statsDelta, type KernelEnv } from '../helpers/kernel.js'
import { parseFrame, TC_ACT, TCP_FLAG, linuxSynOptions, tcpFrame } from '../helpers/packets.mjs'
import { rawAck, rawSyn, seqAdd } from '../helpers/raw.js'

const PREFIX = 'sca-fm'
const PORT = 8080
const SEED = Number(process.env.SCA_FORGE_SEED ?? 0xf0e6e) >>> 0
const COUNT = Number(process.env.SCA_FORGE_COUNT ?? 1_000_000)
const SLOT_MS = 65536
const NOW_MS = 1_733_011_237_000
const KEY_PREV = '00112233445566778899aabbccddeeff'
const KEY_CUR = 'ffeeddccbbaa99887766554433221100'

interface ForgeResult {
  count: number
  family: 4 | 6
  targeted: boolean
  accepted: { index: number; hex: string }[]
  rejected: number
  kernelCookie: number
  other: Record<string, number>
  codecAccepted: number
  mismatches: number
  firstMismatches: unknown[]
  ms: number
}

interface RunResult {
  retval: number
  hex: string
  moved?: Record<string, number>
}

describeKernel('mass forgery and replay', () => {
  let env: KernelEnv
  registerCleanup()
  const results: ForgeResult[] = []

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) await env.server.listen({ host, port: PORT, mode: 'hold' })
    await startAgent(env, [PORT])
    await loadHostileOps(env.server)
    await env.server.call('worker.load', './ops-testrun.mjs')
    await env.server.call('prog.load')
  })

  const runs = [
    { family: 4, targeted: false },
    { family: 6, targeted: false },
    { family: 4, targeted: true },
    { family: 6, targeted: true },
  ] as const

  runs.forEach((r, i) => {
    const count = Math.floor(COUNT / runs.length) + (i < COUNT % runs.length ? 1 : 0)
    it(`${count} forged ACKs, IPv${r.family}, ${r.targeted ? 'one known tuple and ISN' : 'random tuples'}: verdicts are the codec's`, async () => {
      await env.server.rotateSecret(KEY_PREV)
      await env.server.rotateSecret(KEY_CUR)
      await env.server.call('hostile.setClock', NOW_MS)
      const res = await env.server.call<ForgeResult>(
        'hostile.forge',
        { seed: (SEED + i) >>> 0, count, family: r.family, targeted: r.targeted, nowMs: NOW_MS, ports: [PORT] },
        900_000,
      )
      results.push(res)
      const ctx = JSON.stringify({ ...res, accepted: res.accepted.length, firstMismatches: res.firstMismatches.slice(0, 3) })
      expect(res.mismatches, ctx).toBe(0)
      expect(res.other, ctx).toEqual({})
      expect(res.accepted.length + res.rejected + res.kernelCookie, ctx).toBe(count)
      expect(res.accepted.length, `accepted vs the codec: ${ctx}`).toBe(res.codecAccepted)
    }, 900_000)
  })

  it(`forged ACKs accepted: within docs/cookie-format.md's 2^-22 per ACK`, () => {
    const total = results.reduce((a, r) => a + r.count, 0)
    const accepted = results.reduce((a, r) => a + r.accepted.length, 0)
    const ms = results.reduce((a, r) => a + r.ms, 0)
    const expected = total * 2 ** -22
    console.info(
      `[forgery] ${total} forged ACKs in ${(ms / 1000).toFixed(1)} s (${((ms * 1000) / Math.max(total, 1)).toFixed(1)} µs each): ` +
        `${accepted} accepted (fraction ${(accepted / Math.max(total, 1)).toExponential(2)}; bound 2^-22 = ${(2 ** -22).toExponential(2)}, ${expected.toFixed(2)} expected), ` +
        `${results.reduce((a, r) => a + r.kernelCookie, 0)} taken for kernel cookies; per run ${JSON.stringify(results.map((r) => ({ family: r.family, targeted: r.targeted, accepted: r.accepted.length })))}` +
        (accepted > 0 ? `; accepted: ${JSON.stringify(results.flatMap((r) => r.accepted))}` : ''),
    )
    expect(total).toBe(COUNT)
    // Poisson(0.24): P(X >= 4) = 1.3e-4. More than 3 means more than 2^-22 per ACK.
    expect(accepted, `accepted ${accepted} of ${total}`).toBeLessThanOrEqual(3)
  })

  // ---- replay through test_run -------------------------------------------------------------

  const batch = (steps: unknown[]): Promise<unknown[]> => env.server.call('prog.batch', { steps }, 60_000)

  /** SYN at `mintMs` → the cookie; then, for each later setup, the ACK's verdict. */
  async function replay(family: 4 | 6, sport: number, mintMs: number, later: unknown[][]): Promise<Record<string, number>[]> {
    const src = family === 4 ? env.topo.raw.ip4 : env.topo.raw.ip6
    const dst = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
    const isn = 0x0badcafe
    const syn = tcpFrame({ src, dst, sport, dport: PORT, seq: isn, options: linuxSynOptions({ mss: family === 4 ? 1460 : 1440, sack: true, wscale: 7 }) })
    const [, minted] = (await batch([{ setClock: mintMs }, { run: syn.toString('hex'), stats: true }])) as [null, RunResult]
    expect(minted.retval, `SYN answered: ${JSON.stringify(minted.moved)}`).toBe(TC_ACT.REDIRECT)
    const sa = parseFrame(Buffer.from(minted.hex, 'hex')).tcp!
    expect(sa.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)).toBe(TCP_FLAG.SYN | TCP_FLAG.ACK)
    const ack = tcpFrame({ src, dst, sport, dport: PORT, seq: (isn + 1) >>> 0, ack: (sa.seq + 1) >>> 0, flags: TCP_FLAG.ACK }).toString('hex')
    const out: Record<string, number>[] = []
    for (const setup of later) {
      const res = (await batch([...setup, { run: ack, stats: true }])) as RunResult[]
      out.push(res.at(-1)!.moved ?? {})
    }
    return out
  }

  const VALID = { ackAssignFailed: 1 } // a valid cookie under test_run
  const REJECTED = { ackRejected: 1 }

  for (const family of [4, 6] as const) {
    it(`IPv${family}: a cookie replayed after one rotation is accepted, after two rotations rejected`, async () => {
      await batch([{ rotate: KEY_PREV }, { rotate: KEY_CUR }])
      const [now, one, two] = await replay(family, 41000 + family, NOW_MS, [[], [{ rotate: '0123456789abcdef0123456789abcdef' }], [{ rotate: 'fedcba9876543210fedcba9876543210' }]])
      expect(now, 'right away').toEqual(VALID)
      expect(one, 'after one rotation').toEqual(VALID)
      expect(two, 'after two rotations').toEqual(REJECTED)
    })

    it(`IPv${family}: a cookie replayed in its slot and the next is accepted, two slots later or a slot earlier rejected`, async () => {
      await batch([{ rotate: KEY_PREV }, { rotate: KEY_CUR }])
      const slot = Math.floor(NOW_MS / SLOT_MS)
      const start = slot * SLOT_MS // first ms of slot S
      const end = start + SLOT_MS - 1 // last ms of slot S
      const at = (ms: number): unknown[] => [{ setClock: ms }]
      // minted at the start of slot S
      const a = await replay(family, 42000 + family, start, [at(start), at(end), at(start + SLOT_MS), at(end + SLOT_MS), at(start + 2 * SLOT_MS), at(start - 1), at(start + 3 * SLOT_MS)])
      expect(a, 'minted at the start of a slot: S, S, S+1, S+1 | S+2, S-1, S+3').toEqual([VALID, VALID, VALID, VALID, REJECTED, REJECTED, REJECTED])
      // minted at the last ms of slot S: valid for 65.537 s at most
      const b = await replay(family, 43000 + family, end, [at(end + 1), at(end + SLOT_MS), at(end + SLOT_MS + 1)])
      expect(b, 'minted at the end of a slot: S+1 start, S+1 end | S+2 start').toEqual([VALID, VALID, REJECTED])
    })
  }

  // ---- replay over the veth ------------------------------------------------------------------

  it('over the veth: a cookie ACK two slots after its SYN-ACK is rejected, one slot after it is accepted', async () => {
    await env.server.rotateSecret()
    const start = Math.floor(NOW_MS / SLOT_MS) * SLOT_MS
    const results: Record<string, string>[] = []
    for (const [i, laterMs] of [start + 2 * SLOT_MS, start + SLOT_MS].entries()) {
      await env.server.call('hostile.setClock', start)
      const flow = { family: 4 as const, sport: 44000 + i, dport: PORT }
      const syn = await rawSyn(env.topo, flow)
      expect(syn.synack, `SYN-ACK for ${JSON.stringify(flow)}`).not.toBeNull()
      await env.server.call('hostile.setClock', laterMs)
      const s0 = await env.server.stats()
      await rawAck(env.topo, flow, { seq: seqAdd(syn.isn, 1), ack: seqAdd(syn.synack!.seq, 1) })
      const d = await poll(async () => {
        const x = statsDelta(s0, await env.server.stats())
        return (x.ackAccepted ?? 0n) + (x.ackRejected ?? 0n) > 0n ? x : undefined
      }, { timeoutMs: 2_000 })
      results.push(moved(d ?? statsDelta(s0, await env.server.stats())))
    }
    await env.server.call('hostile.setClock', null)
    expect(results[0], 'two slots later').toMatchObject({ ackRejected: '1' })
    expect(results[1], 'one slot later').toMatchObject({ ackAccepted: '1' })
  })
})
