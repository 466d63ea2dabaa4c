/**
 * Forged ACKs and secret rotation, with hand-made segments (test/helpers/rawtcp.py) sent from
 * the client namespace with a source address nothing there owns: the client kernel drops the
 * SYN-ACK silently (no RST) and the sniffer reads the cookie from it.
 */
import { beforeAll, expect, it } from 'vitest'
import { poll, sleep } from '../helpers/exec.js'
import { describeKernel, moved, registerCleanup, setupKernelEnv, startAgent, statsDelta, type KernelEnv } from '../helpers/kernel.js'
import { findSocket } from '../helpers/netns.js'
import { rawAck, rawSyn, seqAdd, TCP_FLAGS, type RawFlow, type SynResult } from '../helpers/raw.js'
import type { AgentStats } from '../helpers/worker.js'

const PREFIX = 'sca-fg'
const PORT = 8080
const KEY_A = '000102030405060708090a0b0c0d0e0f'
const KEY_B = 'f0e1d2c3b4a5968778695a4b3c2d1e0f'

describeKernel('forged ACKs and secret rotation', () => {
  let env: KernelEnv
  registerCleanup()
  let nextPort = 52000

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      await env.server.listen({ host, port: PORT, mode: 'hold' })
    }
    await startAgent(env, [PORT])
  })

  const hostOf = (family: 4 | 6): string => (family === 4 ? env.topo.server.ip4 : env.topo.server.ip6)
  const rawOf = (family: 4 | 6): string => (family === 4 ? env.topo.raw.ip4 : env.topo.raw.ip6)
  const flow = (family: 4 | 6): RawFlow => ({ family, sport: nextPort++, dport: PORT })

  async function serverSocketFor(f: RawFlow): Promise<string | undefined> {
    const s = await findSocket(env.topo.server.ns, { addr: hostOf(f.family), port: PORT }, { addr: rawOf(f.family), port: f.sport })
    return s?.state
  }

  /** SYN → SYN-ACK; asserts the SYN-ACK is a well-formed cookie reply. */
  async function handshakeStart(f: RawFlow): Promise<{ syn: SynResult; cookie: number }> {
    const drops0 = await env.topo.drops()
    const s0 = await env.server.stats()
    const syn = await rawSyn(env.topo, f)
    const d = statsDelta(s0, await env.server.stats())
    const dropped = (await env.topo.drops()) - drops0
    expect(syn.synack, `no SYN-ACK after ${syn.tries} SYN(s); counters ${JSON.stringify(moved(d))}`).not.toBeNull()
    const sa = syn.synack!
    expect(sa.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK | TCP_FLAGS.RST)).toBe(TCP_FLAGS.SYN | TCP_FLAGS.ACK)
    expect(sa.ack, 'SYN-ACK acknowledges ISN + 1').toBe(seqAdd(syn.isn, 1))
    expect(sa.options.mss, 'SYN-ACK carries an MSS').toBeGreaterThan(0)
    const answered = `the agent answered (${syn.tries} SYN(s) sent, ${dropped} packet(s) dropped): ${JSON.stringify(moved(d))}`
    if (dropped === 0) expect(d.synAckSent, answered).toBe(BigInt(syn.tries))
    else expect(d.synAckSent! >= 1n && d.synAckSent! <= BigInt(syn.tries), answered).toBe(true)
    return { syn, cookie: sa.seq }
  }

  /**
   * Sends the ACK (again, at most 3 times, only if no verdict counter moved and a packet was
   * dropped on the link) and returns the counter delta.
   */
  async function sendAck(f: RawFlow, seq: number, ack: number): Promise<AgentStats> {
    const s0 = await env.server.stats()
    for (let attempt = 0; attempt < 3; attempt++) {
      const drops0 = await env.topo.drops()
      await rawAck(env.topo, f, { seq, ack })
      const settled = await poll(async () => {
        const d = statsDelta(s0, await env.server.stats())
        return (d.ackAccepted ?? 0n) + (d.ackRejected ?? 0n) + (d.ackAssignFailed ?? 0n) + (d.ackMalformed ?? 0n) > 0n ? d : undefined
      }, { timeoutMs: 1_000 })
      if (settled !== undefined) return settled
      if ((await env.topo.drops()) === drops0) break
    }
    return statsDelta(s0, await env.server.stats())
  }

  for (const family of [4, 6] as const) {
    it(`IPv${family}: an ACK with a random ack number is dropped and counted, no connection appears`, async () => {
      const f = flow(family)
      const before = await env.server.listenerInfo(hostOf(family), PORT)
      const ack = (Math.random() * 2 ** 32) >>> 0
      const d = await sendAck(f, (Math.random() * 2 ** 32) >>> 0, ack)
      expect(d.ackRejected, `counters ${JSON.stringify(moved(d))}`).toBe(1n)
      expect(d.ackAccepted).toBe(0n)
      await sleep(100)
      expect(await serverSocketFor(f), 'server socket for the forged tuple').toBeUndefined()
      expect((await env.server.listenerInfo(hostOf(family), PORT)).accepted).toBe(before.accepted)
    })

    it(`IPv${family}: a cookie ACK with the right cookie is accepted and accept() fires`, async () => {
      const f = flow(family)
      const before = await env.server.listenerInfo(hostOf(family), PORT)
      const { syn, cookie } = await handshakeStart(f)
      const d = await sendAck(f, seqAdd(syn.isn, 1), seqAdd(cookie, 1))
      expect(d.ackAccepted, `counters ${JSON.stringify(moved(d))}`).toBe(1n)
      expect(d.ackRejected).toBe(0n)
      const info = await poll(async () => {
        const i = await env.server.listenerInfo(hostOf(family), PORT)
        return i.accepted > before.accepted ? i : undefined
      }, { timeoutMs: 2_000 })
      expect(info?.accepted, 'accept() in the listener').toBe(before.accepted + 1)
      expect(info?.remotes.at(-1)).toEqual({ addr: rawOf(family), port: f.sport })
      expect(await serverSocketFor(f)).toBe('ESTAB')
    })

    it(`IPv${family}: the cookie of a neighbouring ISN or port is rejected`, async () => {
      const f = flow(family)
      const { syn, cookie } = await handshakeStart(f)
      const wrongSeq = await sendAck(f, seqAdd(syn.isn, 2), seqAdd(cookie, 1))
      expect(wrongSeq.ackRejected, `ACK with seq = ISN + 2: ${JSON.stringify(moved(wrongSeq))}`).toBe(1n)
      const other: RawFlow = { ...f, sport: f.sport + 1000 }
      const wrongPort = await sendAck(other, seqAdd(syn.isn, 1), seqAdd(cookie, 1))
      expect(wrongPort.ackRejected, `same cookie from another port: ${JSON.stringify(moved(wrongPort))}`).toBe(1n)
      expect(await serverSocketFor(f)).toBeUndefined()
      expect(await serverSocketFor(other)).toBeUndefined()
    })
  }

  it('one rotation between SYN-ACK and ACK: the ACK is still accepted', async () => {
    const f = flow(4)
    const before = await env.server.listenerInfo(hostOf(4), PORT)
    const { syn, cookie } = await handshakeStart(f)
    await env.server.rotateSecret()
    const d = await sendAck(f, seqAdd(syn.isn, 1), seqAdd(cookie, 1))
    expect(d.ackAccepted, `counters ${JSON.stringify(moved(d))}`).toBe(1n)
    expect(d.ackRejected).toBe(0n)
    const info = await poll(async () => {
      const i = await env.server.listenerInfo(hostOf(4), PORT)
      return i.accepted > before.accepted ? i : undefined
    }, { timeoutMs: 2_000 })
    expect(info?.accepted, 'accept() in the listener').toBe(before.accepted + 1)
    expect(await serverSocketFor(f)).toBe('ESTAB')
  })

  it('two rotations between SYN-ACK and ACK: the ACK is rejected', async () => {
    const f = flow(4)
    const before = await env.server.listenerInfo(hostOf(4), PORT)
    const { syn, cookie } = await handshakeStart(f)
    await env.server.rotateSecret()
    await env.server.rotateSecret()
    const d = await sendAck(f, seqAdd(syn.isn, 1), seqAdd(cookie, 1))
    expect(d.ackRejected, `counters ${JSON.stringify(moved(d))}`).toBe(1n)
    expect(d.ackAccepted).toBe(0n)
    await sleep(100)
    expect(await serverSocketFor(f)).toBeUndefined()
    expect((await env.server.listenerInfo(hostOf(4), PORT)).accepted).toBe(before.accepted)
  })

  it('explicit keys: the same key mints the same cookie; a key two rotations old is rejected', async () => {
    const f = flow(4)
    const isn = 0x12345678
    await env.server.rotateSecret(KEY_A)
    const first = await rawSyn(env.topo, f, { isn })
    await env.server.rotateSecret(KEY_B)
    await env.server.rotateSecret(KEY_A)
    const again = await rawSyn(env.topo, f, { isn })
    expect(first.synack && again.synack, JSON.stringify({ first, again })).toBeTruthy()
    const c1 = first.synack!.seq
    const c2 = again.synack!.seq
    if (c1 !== c2) {
      // Only a change of time slot (65.5 s) between the two SYNs may change the cookie, and it
      // flips the slot parity bit.
      expect((c1 ^ c2) & 0x100, `cookies ${c1.toString(16)} / ${c2.toString(16)} differ without a slot change`).toBe(0x100)
    }
    // KEY_A is current again: the ACK for `again` is accepted ...
    const ok = await sendAck(f, seqAdd(isn, 1), seqAdd(c2, 1))
    expect(ok.ackAccepted, `counters ${JSON.stringify(moved(ok))}`).toBe(1n)
    // ... and after two more rotations a cookie from KEY_A no longer is.
    const g = flow(4)
    const { syn, cookie } = await handshakeStart(g)
    await env.server.rotateSecret(KEY_B)
    await env.server.rotateSecret()
    const rejected = await sendAck(g, seqAdd(syn.isn, 1), seqAdd(cookie, 1))
    expect(rejected.ackRejected, `counters ${JSON.stringify(moved(rejected))}`).toBe(1n)
  })
})
