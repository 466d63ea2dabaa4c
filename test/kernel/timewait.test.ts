/**
 * TIME_WAIT reuse: the server closes first and keeps TIME_WAIT per 4-tuple; a client that comes
 * back on the same tuple must get a working connection. The program must hand such a SYN to the
 * kernel (synExistingSocket) instead of answering it with a cookie, or the ACK would hit the
 * TIME_WAIT socket (TcpExtTCPACKSkippedTimeWait) and the handshake would never complete.
 */
import { beforeAll, expect, it } from 'vitest'
import { poll } from '../helpers/exec.js'
import {
  describeKernel,
  expectCounters,
  measure,
  moved,
  registerCleanup,
  setupKernelEnv,
  startAgent,
  type KernelEnv,
} from '../helpers/kernel.js'
import { counter, findSocket, nstat, withSysctls } from '../helpers/netns.js'

const PREFIX = 'sca-tw'
const PORT = 8080
const RECONNECTS = 6

describeKernel('TIME_WAIT reuse through the agent', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      await env.server.listen({ host, port: PORT, mode: 'echo-bulk' })
    }
    await startAgent(env, [PORT])
  })

  for (const family of [4, 6] as const) {
    it(`IPv${family}: ${RECONNECTS} reconnects from one fixed source port onto the server's TIME_WAIT all succeed`, async () => {
      const host = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const clientAddr = family === 4 ? env.topo.client.ip4 : env.topo.client.ip6
      const localPort = family === 4 ? 45100 : 45101
      const tw0 = counter(await nstat(env.topo.server.ns), 'TcpExtTCPACKSkippedTimeWait')

      // First connect: no socket for the tuple yet, so a cookie handshake.
      const first = await measure(env.server, () => env.topo.drops(), () =>
        env.client.connect({ host, port: PORT, localPort, bytes: 4096 }),
      )
      expect(first.result, JSON.stringify(first.result)).toMatchObject({ ok: true, localPort })
      expectCounters(first, { synAckSent: 1n, ackAccepted: 1n, synExistingSocket: 0n }, 'first connect')

      const again = await measure(env.server, () => env.topo.drops(), async () => {
        const results = []
        for (let i = 0; i < RECONNECTS; i++) {
          const tw = await poll(async () => {
            const s = await findSocket(env.topo.server.ns, { addr: host, port: PORT }, { addr: clientAddr, port: localPort })
            return s?.state === 'TIME-WAIT' ? s : undefined
          }, { timeoutMs: 2_000 })
          expect(tw?.state, `before reconnect #${i}: the server holds TIME_WAIT for the tuple`).toBe('TIME-WAIT')
          // The client end is LAST_ACK for one round trip after the echo: wait for it to go.
          await poll(async () => {
            const s = await findSocket(env.topo.client.ns, { addr: clientAddr, port: localPort }, { addr: host, port: PORT })
            return s === undefined ? true : undefined
          }, { timeoutMs: 2_000 })
          const r = await env.client.connect({ host, port: PORT, localPort, bytes: 4096, timeoutMs: 5_000 })
          results.push(r)
          expect(r, `reconnect #${i}: ${JSON.stringify(r)}`).toMatchObject({ ok: true, localPort })
        }
        return results
      })
      expectCounters(
        again,
        { synReceived: BigInt(RECONNECTS), synExistingSocket: BigInt(RECONNECTS), synAckSent: 0n, ackAccepted: 0n, ackRejected: 0n },
        'reconnects onto TIME_WAIT',
      )
      const tw1 = counter(await nstat(env.topo.server.ns), 'TcpExtTCPACKSkippedTimeWait')
      expect(tw1 - tw0, `TcpExtTCPACKSkippedTimeWait grew: an ACK hit a TIME_WAIT socket (${JSON.stringify(moved(again.delta))})`).toBe(0)
    })
  }

  it('a client port range of 100 ports, 400 sequential connects: no failure', async () => {
    const count = 400
    const tw0 = counter(await nstat(env.topo.server.ns), 'TcpExtTCPACKSkippedTimeWait')
    const m = await withSysctls(env.topo.client.ns, { 'net.ipv4.ip_local_port_range': '40000 40099' }, () =>
      measure(env.server, () => env.topo.drops(), () =>
        env.client.connectMany({ host: env.topo.server.ip4, port: PORT, count, concurrency: 1, bytes: 16, timeoutMs: 5_000 }, 120_000),
      ),
    )
    expect(m.result, JSON.stringify(m.result)).toMatchObject({ ok: count, failed: 0 })
    const d = m.delta
    expect(d.ackRejected, JSON.stringify(moved(d))).toBe(0n)
    expect(d.ackAssignFailed, JSON.stringify(moved(d))).toBe(0n)
    // At most 100 tuples are new; every later connect lands on a TIME_WAIT tuple.
    expect(d.synExistingSocket! >= BigInt(count - 100), `synExistingSocket ${String(d.synExistingSocket)} < ${count - 100}: ${JSON.stringify(moved(d))}`).toBe(true)
    if (m.drops === 0) {
      expect((d.ackAccepted ?? 0n) + (d.synExistingSocket ?? 0n), `every connect is a cookie or a kernel handshake: ${JSON.stringify(moved(d))}`).toBe(BigInt(count))
    }
    const tw1 = counter(await nstat(env.topo.server.ns), 'TcpExtTCPACKSkippedTimeWait')
    expect(tw1 - tw0, 'TcpExtTCPACKSkippedTimeWait').toBe(0)
  })
})
