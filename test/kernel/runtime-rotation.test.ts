/**
 * Secret rotation under load: the server worker rotates the secret every 10 ms for 60 s while
 * the client worker connects continuously (8 lanes, v4 and v6, from 32 + 32 source addresses, so
 * that most handshakes are cookie handshakes rather than TIME_WAIT recycles). A cookie survives
 * one rotation and a SYN-ACK → ACK round trip on the veth takes tens of µs: no handshake may fail.
 */
import { beforeAll, expect, it } from 'vitest'
import { run } from '../helpers/exec.js'
import { loadHostileOps } from '../helpers/hostile.js'
import { describeKernel, measure, moved, registerCleanup, setupKernelEnv, startAgent, type KernelEnv } from '../helpers/kernel.js'
import { counter, nstat } from '../helpers/netns.js'

const PREFIX = 'sca-rr'
const PORT = 8080
const SOAK_MS = 60_000
const ROTATE_MS = 10
const LANES = 8
const EXTRA = 32

interface ConnectForResult {
  ok: number
  failed: number
  errors: Record<string, number>
  firstErrors: string[]
  totalMs: number
  p50: number
  p99: number
  max: number
}

interface RotateResult {
  rotations: number
  failures: number
  firstError?: string
  totalMs: number
  meanGapMs: number
  maxGapMs: number
  minGapMs: number
}

describeKernel('secret rotation every 10 ms during 60 s of connects', () => {
  let env: KernelEnv
  registerCleanup()
  const v4 = Array.from({ length: EXTRA }, (_, i) => `192.0.2.${100 + i}`)
  const v6 = Array.from({ length: EXTRA }, (_, i) => `2001:db8::${(0x100 + i).toString(16)}`)

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    const { client, server } = env.topo
    for (const a of v4) {
      await run(['ip', '-n', client.ns, 'addr', 'add', `${a}/32`, 'dev', client.dev])
      await run(['ip', '-n', server.ns, 'neigh', 'replace', a, 'lladdr', client.mac, 'dev', server.dev, 'nud', 'permanent'])
    }
    for (const a of v6) {
      await run(['ip', '-n', client.ns, 'addr', 'add', `${a}/128`, 'dev', client.dev, 'nodad'])
      await run(['ip', '-n', server.ns, 'neigh', 'replace', a, 'lladdr', client.mac, 'dev', server.dev, 'nud', 'permanent'])
    }
    for (const host of [server.ip4, server.ip6]) await env.server.listen({ host, port: PORT, mode: 'echo-bulk', backlog: 4096 })
    await startAgent(env, [PORT])
    await loadHostileOps(env.server)
    await loadHostileOps(env.client)
  })

  it(`rotating every ${ROTATE_MS} ms for ${SOAK_MS / 1000} s: 0 failed handshakes, 0 rejected ACKs`, async () => {
    const n0 = await nstat(env.topo.server.ns)
    const m = await measure(env.server, () => env.topo.drops(), async () => {
      const rotating = env.server.call<RotateResult>('hostile.rotateEvery', { intervalMs: ROTATE_MS, durationMs: SOAK_MS }, SOAK_MS + 30_000)
      const lanes = (host: string, localAddresses: string[]): Promise<ConnectForResult> =>
        env.client.call<ConnectForResult>(
          'hostile.connectFor',
          { host, port: PORT, durationMs: SOAK_MS, concurrency: LANES / 2, bytes: 16, timeoutMs: 5_000, localAddresses },
          SOAK_MS + 30_000,
        )
      const [rot, c4, c6] = await Promise.all([rotating, lanes(env.topo.server.ip4, v4), lanes(env.topo.server.ip6, v6)])
      return { rot, c4, c6 }
    })
    const n1 = await nstat(env.topo.server.ns)
    const { rot, c4, c6 } = m.result
    const d = m.delta
    const ok = c4.ok + c6.ok
    const ctx = `rotation ${JSON.stringify(rot)}; v4 ${JSON.stringify(c4)}; v6 ${JSON.stringify(c6)}; counters ${JSON.stringify(moved(d))}; ${m.drops} packet(s) dropped on the veth`
    console.info(
      `[rotation soak] ${rot.rotations} rotations in ${(rot.totalMs / 1000).toFixed(1)} s (mean gap ${rot.meanGapMs.toFixed(2)} ms, max ${rot.maxGapMs.toFixed(1)} ms); ` +
        `${ok} handshakes (v4 ${c4.ok}, v6 ${c6.ok}), ${c4.failed + c6.failed} failed; p99 ${Math.max(c4.p99, c6.p99).toFixed(2)} ms; ${JSON.stringify(moved(d))}; ${m.drops} dropped`,
    )
    expect(rot.failures, ctx).toBe(0)
    // the schedule held: at least 90 % of the 6,000 rotations happened
    expect(rot.rotations, ctx).toBeGreaterThanOrEqual(0.9 * (SOAK_MS / ROTATE_MS))
    expect(c4.failed + c6.failed, ctx).toBe(0)
    expect(ok, ctx).toBeGreaterThan(1000)
    expect(d.ackRejected, ctx).toBe(0n)
    expect(d.ackAssignFailed, ctx).toBe(0n)
    expect(d.synDropError, ctx).toBe(0n)
    // Every connection was a cookie handshake, or landed on a tuple the server still held in
    // TIME_WAIT (bind(addr, 0) reuses freed ports) and was handed to the kernel.
    expect((d.ackAccepted ?? 0n) + (d.synExistingSocket ?? 0n), ctx).toBe(BigInt(ok))
    expect(d.ackAccepted! * 2n > BigInt(ok), `most handshakes are cookie handshakes: ${ctx}`).toBe(true)
    expect(counter(n1, 'TcpExtSyncookiesSent') - counter(n0, 'TcpExtSyncookiesSent'), ctx).toBe(0)
  }, SOAK_MS + 60_000)
})
