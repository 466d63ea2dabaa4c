/**
 * Handshakes through the agent: data both ways, the options the server socket ends up with,
 * exact counter movements, an unprotected port left alone, and `lo`.
 */
import { beforeAll, expect, it } from 'vitest'
import {
  describeKernel,
  expectCounters,
  expectNoCounterMoved,
  measure,
  registerCleanup,
  setupKernelEnv,
  startAgent,
  type KernelEnv,
} from '../helpers/kernel.js'
import { counter, findSocket, linkStats, nstat, withSysctls, type SsSocket } from '../helpers/netns.js'

const PREFIX = 'sca-hs'
const ECHO = 8080 // protected, server closes after the echo
const HOLD = 8081 // protected, connections stay open for ss
const OPEN_ECHO = 9090 // not protected
const OPEN_HOLD = 9091 // not protected: the kernel's own handshake, the reference for options
const MiB = 1024 * 1024

describeKernel('handshakes through the agent', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      await env.server.listen({ host, port: ECHO, mode: 'echo-bulk' })
      await env.server.listen({ host, port: HOLD, mode: 'hold' })
      await env.server.listen({ host, port: OPEN_ECHO, mode: 'echo-bulk' })
      await env.server.listen({ host, port: OPEN_HOLD, mode: 'hold' })
    }
    await startAgent(env, [ECHO, HOLD])
  })

  const drops = (): Promise<number> => env.topo.drops()

  for (const family of [4, 6] as const) {
    it(`IPv${family}: 1 MiB each way through a cookie handshake, counted exactly once`, async () => {
      const host = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const before = await nstat(env.topo.server.ns)
      const m = await measure(env.server, drops, () =>
        env.client.connect({ host, port: ECHO, bytes: MiB, timeoutMs: 15_000 }),
      )
      expect(m.result, JSON.stringify(m.result)).toMatchObject({ ok: true })
      expectCounters(m, { synReceived: 1n, synAckSent: 1n, ackAccepted: 1n, ackRejected: 0n, ackAssignFailed: 0n }, `IPv${family} connect`)
      const after = await nstat(env.topo.server.ns)
      expect(counter(after, 'TcpExtSyncookiesSent') - counter(before, 'TcpExtSyncookiesSent'), 'kernel syncookies must not be involved').toBe(0)
      expect(counter(after, 'TcpExtSyncookiesRecv') - counter(before, 'TcpExtSyncookiesRecv')).toBe(0)
      expect((await env.server.listenerInfo(host, ECHO)).verifyErrors).toBe(0)
    })
  }

  it('20 sequential connects move the counters by exactly 20', async () => {
    const m = await measure(env.server, drops, () =>
      env.client.connectMany({ host: env.topo.server.ip4, port: ECHO, count: 20, concurrency: 1, bytes: 1000 }, 60_000),
    )
    expect(m.result, JSON.stringify(m.result)).toMatchObject({ ok: 20, failed: 0 })
    expectCounters(m, { synReceived: 20n, synAckSent: 20n, ackAccepted: 20n, ackRejected: 0n, synExistingSocket: 0n }, '20 connects')
  })

  // Client sysctls → what the server socket must show. The reference is the kernel's own
  // handshake on an unprotected port with the same client settings: a cookie connection must
  // look exactly like it (ts, sack, ecn, both window scales, mss).
  const optionCases = [
    { family: 4, client: {}, ts: true, ecn: false },
    { family: 6, client: {}, ts: true, ecn: false },
    { family: 4, client: { 'net.ipv4.tcp_timestamps': 0 }, ts: false, ecn: false },
    { family: 6, client: { 'net.ipv4.tcp_timestamps': 0 }, ts: false, ecn: false },
    { family: 4, client: { 'net.ipv4.tcp_ecn': 1 }, ts: true, ecn: true },
    { family: 4, client: { 'net.ipv4.tcp_timestamps': 0, 'net.ipv4.tcp_ecn': 1 }, ts: false, ecn: true },
    { family: 6, client: { 'net.ipv4.tcp_timestamps': 0, 'net.ipv4.tcp_ecn': 1 }, ts: false, ecn: true },
  ] as const

  for (const c of optionCases) {
    it(`IPv${c.family} client ${JSON.stringify(c.client)}: server socket has ts=${c.ts}, sack, wscale, ecn=${c.ecn}, as with the kernel`, async () => {
      const host = c.family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const peer = c.family === 4 ? env.topo.client.ip4 : env.topo.client.ip6
      const serverSocket = async (port: number, localPort: number | undefined): Promise<SsSocket | undefined> =>
        findSocket(env.topo.server.ns, { addr: host, port }, { addr: peer, port: localPort ?? -1 })

      await withSysctls(env.topo.client.ns, c.client, async () => {
        const ref = await env.client.connect({ host, port: OPEN_HOLD, bytes: 64 * 1024, hold: true })
        expect(ref.ok, JSON.stringify(ref)).toBe(true)
        const kernel = await serverSocket(OPEN_HOLD, ref.localPort)

        const m = await measure(env.server, drops, () =>
          env.client.connect({ host, port: HOLD, bytes: MiB, hold: true, timeoutMs: 15_000 }),
        )
        expect(m.result.ok, JSON.stringify(m.result)).toBe(true)
        expectCounters(m, { synReceived: 1n, synAckSent: 1n, ackAccepted: 1n, ackRejected: 0n }, 'options connect')
        const cookie = await serverSocket(HOLD, m.result.localPort)

        const label = `cookie: ${cookie?.info ?? 'no socket'}\nkernel: ${kernel?.info ?? 'no socket'}`
        expect(cookie?.state, label).toBe('ESTAB')
        expect(cookie?.ts, label).toBe(c.ts)
        expect(cookie?.sack, label).toBe(true)
        expect(cookie?.wscale, label).toBeDefined()
        expect(cookie?.ecn, label).toBe(c.ecn)
        // Same as the kernel's own handshake with this client:
        expect(kernel?.state, label).toBe('ESTAB')
        expect(cookie?.ts, `ts differs from the kernel's\n${label}`).toBe(kernel?.ts)
        expect(cookie?.ecn, `ecn differs from the kernel's\n${label}`).toBe(kernel?.ecn)
        expect(cookie?.wscale, `wscale (snd,rcv) differs from the kernel's\n${label}`).toEqual(kernel?.wscale)
        expect(cookie?.mss, `mss differs from the kernel's\n${label}`).toBe(kernel?.mss)
      })
      await env.client.closeAll()
    })
  }

  it('an unprotected port handshakes through the kernel and moves no counter', async () => {
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      const m = await measure(env.server, drops, () =>
        env.client.connect({ host, port: OPEN_ECHO, bytes: MiB, timeoutMs: 15_000 }),
      )
      expect(m.result, JSON.stringify(m.result)).toMatchObject({ ok: true })
      expectNoCounterMoved(m, `connect to unprotected ${host}:${OPEN_ECHO}`)
    }
  })

  it('on lo inside the server namespace: 127.0.0.1 and ::1, 1 MiB each way', async () => {
    for (const host of ['127.0.0.1', '::1']) await env.server.listen({ host, port: ECHO, mode: 'echo-bulk' })
    await env.server.attach('lo')
    const loDrops = async (): Promise<number> => {
      const s = await linkStats(env.topo.server.ns, 'lo')
      return s.txDropped + s.rxDropped
    }
    for (const host of ['127.0.0.1', '::1']) {
      const m = await measure(env.server, loDrops, () =>
        env.server.connect({ host, port: ECHO, bytes: MiB, timeoutMs: 15_000 }),
      )
      expect(m.result, `${host}: ${JSON.stringify(m.result)}`).toMatchObject({ ok: true })
      expectCounters(m, { synReceived: 1n, synAckSent: 1n, ackAccepted: 1n, ackRejected: 0n }, `lo ${host}`)
    }
    expect(counter(await nstat(env.topo.server.ns), 'TcpExtSyncookiesSent')).toBe(0)
    await env.server.detach('lo')
  })
})
