/**
 * SYN-ACK checksums: with tx checksum offload off on the client veth, the client kernel
 * verifies every segment it receives, so a SYN-ACK finished wrongly (see KERNEL-NOTES on
 * CHECKSUM_PARTIAL) is dropped and counted in the client's TcpInCsumErrors.
 */
import { beforeAll, expect, it } from 'vitest'
import {
  describeKernel,
  expectCounters,
  measure,
  registerCleanup,
  setupKernelEnv,
  startAgent,
  type KernelEnv,
} from '../helpers/kernel.js'
import { counter, disableTxChecksum, nstat, txChecksumOn } from '../helpers/netns.js'

const PREFIX = 'sca-ck'
const PORT = 8080
const MiB = 1024 * 1024

describeKernel('SYN-ACK checksums through the agent', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      await env.server.listen({ host, port: PORT, mode: 'echo-bulk' })
    }
    await startAgent(env, [PORT])
  })

  const cases = [
    { what: 'client veth tx off', devs: ['client'] },
    { what: 'both veth ends tx off', devs: ['client', 'server'] },
  ] as const

  for (const c of cases) {
    for (const family of [4, 6] as const) {
      it(`${c.what}, IPv${family}: the handshake succeeds and the client counts no checksum error`, async () => {
        for (const side of c.devs) {
          const ep = env.topo[side]
          await disableTxChecksum(ep.ns, ep.dev)
          expect(await txChecksumOn(ep.ns, ep.dev), `${side} tx checksumming`).toBe(false)
        }
        const host = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
        const c0 = counter(await nstat(env.topo.client.ns), 'TcpInCsumErrors')
        const s0 = counter(await nstat(env.topo.server.ns), 'TcpInCsumErrors')
        const m = await measure(env.server, () => env.topo.drops(), () =>
          env.client.connect({ host, port: PORT, bytes: MiB, timeoutMs: 15_000 }),
        )
        const c1 = counter(await nstat(env.topo.client.ns), 'TcpInCsumErrors')
        const s1 = counter(await nstat(env.topo.server.ns), 'TcpInCsumErrors')
        expect(c1 - c0, 'client TcpInCsumErrors: the SYN-ACK checksum is wrong').toBe(0)
        expect(s1 - s0, 'server TcpInCsumErrors').toBe(0)
        expect(m.result, JSON.stringify(m.result)).toMatchObject({ ok: true })
        // Proof that the cookie path answered (a single, unretransmitted SYN).
        expectCounters(m, { synReceived: 1n, synAckSent: 1n, ackAccepted: 1n, ackRejected: 0n }, `${c.what} IPv${family}`)
      })
    }
  }
})
