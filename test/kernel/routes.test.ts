/**
 * destinations 'local' (the default) against the namespace's real routes: the agent answers a
 * SYN only for an address the kernel would deliver here, and follows the routes as they change
 * (rtnetlink events into the program's routes map). Every handshake is real: the client
 * connects over the veth to addresses that exist only inside this file's namespaces.
 *
 *   - an address added to lo after the attach (a VIP) is answered at once, IPv4 and IPv6, and
 *     dropped again once it is deleted;
 *   - a `local` route for a whole prefix (AnyIP) makes every address in it answered;
 *   - destinations 'any' answers a destination that is not this host's;
 *   - an IPv4 SYN from the server's own address over the veth ("land") is dropped, and
 *     answered once accept_local is set (the kernel's rule, fib_validate_source());
 *   - thousands of route changes at once leave the map equal to the kernel's table.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeAll, expect, it } from 'vitest'
import { run } from '../helpers/exec.js'
import { loadHostileOps, sendFrames } from '../helpers/hostile.js'
import { describeKernel, measure, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { sysctl } from '../helpers/netns.js'
import { buildFrame, linuxSynOptions, macBytes, parseFrame, TCP_FLAG } from '../helpers/packets.mjs'

const PREFIX = 'sca-rt'
const PORT = 8080
const VIP4 = '198.51.100.10'
const VIP6 = '2001:db8:100::10'
const ANYIP = '203.0.113.0/24'
const NOT_LOCAL4 = '198.51.100.99'

interface RoutesInfo {
  size: number
  usable: boolean
  dumps: number
}

describeKernel('destinations: only local addresses are answered, as the routes change', () => {
  let env: KernelEnv
  let srv: string
  registerCleanup()

  const ip = (ns: string, ...args: string[]) => run(['ip', '-n', ns, ...args])

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    srv = env.topo.server.ns
    const cli = env.topo.client.ns
    await loadHostileOps(env.server)
    // the client reaches the server's extra addresses over the veth
    await ip(cli, 'route', 'add', '198.51.100.0/24', 'via', env.topo.server.ip4)
    await ip(cli, 'route', 'add', ANYIP, 'via', env.topo.server.ip4)
    await ip(cli, '-6', 'route', 'add', '2001:db8:100::/64', 'via', env.topo.server.ip6)
    await env.server.listen({ host: '0.0.0.0', port: PORT })
    await env.server.listen({ host: '::', port: PORT })
  })

  afterEach(async () => {
    await env.server.closeAgent().catch(() => undefined)
    await ip(srv, 'addr', 'del', `${VIP4}/32`, 'dev', 'lo').catch(() => undefined)
    await ip(srv, 'addr', 'del', `${VIP6}/128`, 'dev', 'lo').catch(() => undefined)
    await ip(srv, 'route', 'del', 'local', ANYIP, 'dev', 'lo', 'table', 'local').catch(() => undefined)
  })

  async function agent(opts: { destinations?: 'local' | 'any' } = {}): Promise<void> {
    await env.server.createAgent({ ports: [PORT], ...opts })
    await env.server.attach(env.topo.server.dev)
  }

  const m_ = <T>(fn: () => Promise<T>) => measure(env.server, env.topo.drops, fn)
  const routes = () => env.server.call('hostile.routes') as Promise<RoutesInfo | null>
  const connect = (host: string, timeoutMs: number) => env.client.connect({ host, port: PORT, timeoutMs })

  it('an address added to lo after attach is answered at once, and dropped once deleted (IPv4, IPv6)', async () => {
    await agent()
    for (const [vip, len] of [[VIP4, 32], [VIP6, 128]] as const) {
      const before = await m_(() => connect(vip, 400))
      expect(before.result.ok, `${vip} before it exists: ${JSON.stringify(before.result)}`).toBe(false)
      expect(before.delta.synDropAddress, `${vip} before it exists`).toBeGreaterThanOrEqual(1n)
      expect(before.delta.synAckSent ?? 0n).toBe(0n)

      await ip(srv, 'addr', 'add', `${vip}/${len}`, 'dev', 'lo', ...(len === 128 ? ['nodad'] : []))
      // no wait: the route event is in the map before the client's first SYN arrives
      const added = await m_(() => connect(vip, 3000))
      expect(added.result.ok, `${vip} once added: ${JSON.stringify(added.result)}`).toBe(true)
      expect(added.delta.synDropAddress ?? 0n, `${vip}: no SYN dropped after the add`).toBe(0n)
      expect(added.delta.synAckSent, `${vip}: the agent's SYN-ACK`).toBe(1n)
      expect(added.delta.ackAccepted, `${vip}: the agent's connection`).toBe(1n)

      await ip(srv, 'addr', 'del', `${vip}/${len}`, 'dev', 'lo')
      const deleted = await m_(() => connect(vip, 400))
      expect(deleted.result.ok, `${vip} once deleted`).toBe(false)
      expect(deleted.delta.synDropAddress, `${vip} once deleted`).toBeGreaterThanOrEqual(1n)
      expect(deleted.delta.synAckSent ?? 0n).toBe(0n)
    }
  })

  it('a local route for a whole prefix (AnyIP) makes every address in it answered', async () => {
    await agent()
    await ip(srv, 'route', 'add', 'local', ANYIP, 'dev', 'lo', 'table', 'local')
    for (const host of ['203.0.113.7', '203.0.113.200']) {
      const m = await m_(() => connect(host, 3000))
      expect(m.result.ok, `${host}: ${JSON.stringify(m.result)}`).toBe(true)
      expect(m.delta.ackAccepted, host).toBe(1n)
    }
    await ip(srv, 'route', 'del', 'local', ANYIP, 'dev', 'lo', 'table', 'local')
    const m = await m_(() => connect('203.0.113.7', 400))
    expect(m.result.ok).toBe(false)
    expect(m.delta.synDropAddress).toBeGreaterThanOrEqual(1n)
  })

  it("destinations 'any' answers a destination that is not this host's (the kernel then has no socket for it)", async () => {
    await agent({ destinations: 'any' })
    expect(await routes()).toBeNull()
    const m = await m_(() => connect(NOT_LOCAL4, 400))
    expect(m.delta.synAckSent, 'a SYN-ACK for an address that is not ours').toBeGreaterThanOrEqual(1n)
    expect(m.delta.synDropAddress ?? 0n).toBe(0n)
    // the default for comparison
    await env.server.closeAgent()
    await agent()
    const d = await m_(() => connect(NOT_LOCAL4, 400))
    expect(d.delta.synDropAddress).toBeGreaterThanOrEqual(1n)
    expect(d.delta.synAckSent ?? 0n).toBe(0n)
  })

  it('an IPv4 SYN from our own address over the veth is dropped, and answered with accept_local', async () => {
    await agent()
    const { server, client } = env.topo
    const frame = (sport: number) => {
      const b = buildFrame({
        ip: { src: server.ip4, dst: server.ip4 },
        tcp: { sport, dport: PORT, seq: 0x1000 + sport, flags: TCP_FLAG.SYN, options: linuxSynOptions({ mss: 1460, sack: true, wscale: 7 }) },
      })
      macBytes(server.mac).copy(b, 0)
      macBytes(client.mac).copy(b, 6)
      return b
    }
    const synAcksFor = (got: Buffer[], sport: number) =>
      got.map((f) => parseFrame(f)).filter((p) => p.tcp?.dport === sport && (p.tcp.flags & 0x12) === 0x12)

    const dropped = await m_(() => sendFrames(client.ns, client.dev, [frame(41001)], { listenMs: 200 }))
    expect(dropped.delta.synDropAddress, 'land SYN, accept_local 0').toBe(1n)
    expect(synAcksFor(dropped.result, 41001)).toHaveLength(0)

    const old = await sysctl(srv, `net.ipv4.conf.${server.dev}.accept_local`)
    await sysctl(srv, `net.ipv4.conf.${server.dev}.accept_local`, 1)
    try {
      const answered = await m_(() => sendFrames(client.ns, client.dev, [frame(41002)], { listenMs: 200 }))
      expect(answered.delta.synAckSent, 'land SYN, accept_local 1 on the device').toBe(1n)
      expect(synAcksFor(answered.result, 41002)).toHaveLength(1)
    } finally {
      await sysctl(srv, `net.ipv4.conf.${server.dev}.accept_local`, old)
    }
  })

  it('3000 local routes added and deleted at once: the map follows the kernel table', async () => {
    await agent()
    const base = (await routes())!
    expect(base.usable).toBe(true)
    const count = 3000
    const lines = (verb: string) =>
      Array.from({ length: count }, (_, i) => `route ${verb} local 198.18.${i >> 8}.${i & 255}/32 dev lo table local`).join('\n') + '\n'
    const file = path.join(tmpdir(), `${PREFIX}-${process.pid}.batch`)
    const batch = async (verb: string) => {
      writeFileSync(file, lines(verb))
      try {
        await run(['ip', '-n', srv, '-batch', file])
      } finally {
        rmSync(file, { force: true })
      }
    }
    const settle = async (want: number): Promise<RoutesInfo> => {
      let r = (await routes())!
      for (let i = 0; i < 100 && r.size !== want; i++) {
        await new Promise((res) => setTimeout(res, 50))
        r = (await routes())!
      }
      return r
    }
    await batch('add')
    const added = await settle(base.size + count)
    expect(added.size, `prefixes after ${count} adds (${added.dumps - base.dumps} rebuild(s) after lost events)`).toBe(base.size + count)
    expect(added.usable).toBe(true)
    await ip(env.topo.client.ns, 'route', 'add', '198.18.0.0/15', 'via', env.topo.server.ip4).catch(() => undefined)
    const m = await m_(() => connect('198.18.11.183', 3000))
    expect(m.result.ok, JSON.stringify(m.result)).toBe(true)
    expect(m.delta.ackAccepted).toBe(1n)
    await batch('del')
    const deleted = await settle(base.size)
    expect(deleted.size, 'prefixes after the deletes').toBe(base.size)
    console.log(`[routes] ${count} adds and ${count} deletes followed; rebuilds from a new dump: ${deleted.dumps - base.dumps}`)
  })
})
