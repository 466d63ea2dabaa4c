/**
 * Many connects through the agent: 20,000 one after the other and 20,000 with 64 in flight,
 * 16 bytes echoed each. Past ~7,000 connects the client reuses tuples the server still holds in
 * TIME_WAIT, so this also exercises the synExistingSocket path at scale.
 */
import { beforeAll, expect, it } from 'vitest'
import { describeKernel, measure, moved, registerCleanup, setupKernelEnv, startAgent, type KernelEnv } from '../helpers/kernel.js'
import { counter, nstat } from '../helpers/netns.js'

const PREFIX = 'sca-sk'
// One port per run: the concurrent run then starts on fresh tuples (cookie handshakes) instead
// of the sequential run's TIME_WAIT ones.
const PORTS = { 1: 8080, 64: 8081 } as const
const COUNT = 20_000

describeKernel('soak: 20,000 connects through the agent', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const port of Object.values(PORTS)) {
      await env.server.listen({ host: env.topo.server.ip4, port, mode: 'echo-bulk', backlog: 4096 })
    }
    await startAgent(env, Object.values(PORTS))
  })

  for (const concurrency of [1, 64] as const) {
    const PORT = PORTS[concurrency]
    it(`${COUNT} connects, ${concurrency} at a time: no failure, no rejected ACK`, async () => {
      const n0 = await nstat(env.topo.server.ns)
      const m = await measure(env.server, () => env.topo.drops(), () =>
        env.client.connectMany(
          { host: env.topo.server.ip4, port: PORT, count: COUNT, concurrency, bytes: 16, timeoutMs: 10_000 },
          240_000,
        ),
      )
      const n1 = await nstat(env.topo.server.ns)
      const r = m.result
      const d = m.delta
      const ctx = `result ${JSON.stringify(r)}; counters ${JSON.stringify(moved(d))}; ${m.drops} dropped`
      console.info(`[soak c=${concurrency}] ${r.ok} ok in ${Math.round(r.totalMs)} ms, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; ${JSON.stringify(moved(d))}`)
      expect(r.failed, ctx).toBe(0)
      expect(r.ok, ctx).toBe(COUNT)
      expect(d.ackRejected, ctx).toBe(0n)
      expect(d.ackAssignFailed, ctx).toBe(0n)
      expect(d.synDropError, ctx).toBe(0n)
      expect(d.synReceived! >= BigInt(COUNT), ctx).toBe(true)
      if (m.drops === 0) {
        // Each connect was either a cookie handshake or handed to the kernel (TIME_WAIT tuple).
        expect((d.ackAccepted ?? 0n) + (d.synExistingSocket ?? 0n), ctx).toBe(BigInt(COUNT))
      }
      expect(counter(n1, 'TcpExtSyncookiesSent') - counter(n0, 'TcpExtSyncookiesSent'), ctx).toBe(0)
      expect(counter(n1, 'TcpExtTCPACKSkippedTimeWait') - counter(n0, 'TcpExtTCPACKSkippedTimeWait'), ctx).toBe(0)
      expect((await env.server.listenerInfo(env.topo.server.ip4, PORT)).verifyErrors).toBe(0)
    }, 300_000)
  }
})
