/**
 * The clsact fallback (kernels before tcx, or `attach(ifname, { mode: 'clsact' })`): the same
 * handshakes work through a tc filter, and detach removes only what the agent added — the
 * qdisc it created, or just its filter when the qdisc was already there.
 */
import { beforeAll, expect, it } from 'vitest'
import { tcIngressFilters, tcxIngress } from '../helpers/bpf.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { nsExec } from '../helpers/netns.js'

const PREFIX = 'sca-cls'
const PORT = 8080

describeKernel('clsact attachment', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await env.server.listen({ host: env.topo.server.ip4, port: PORT, mode: 'echo-bulk' })
    await env.server.listen({ host: env.topo.server.ip6, port: PORT, mode: 'echo-bulk' })
    await env.server.createAgent({ ports: [PORT] })
  })

  const qdiscs = async (): Promise<string> =>
    (await nsExec(env.topo.server.ns, ['tc', 'qdisc', 'show', 'dev', env.topo.server.dev])).stdout

  it('handshakes through a clsact filter, v4 and v6, and creates then removes its qdisc', async () => {
    const { dev } = env.topo.server
    expect(await qdiscs()).not.toMatch(/clsact/)
    await env.server.attach(dev, { mode: 'clsact' })
    expect(await tcxIngress(env.topo.server.ns, dev)).toEqual([])
    expect(await tcIngressFilters(env.topo.server.ns, dev)).toMatch(/bpf.*syncookie_ingr/)
    const before = await env.server.stats()
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) {
      const r = await env.client.connect({ host, port: PORT, bytes: 256 * 1024 })
      expect(r.ok, JSON.stringify(r)).toBe(true)
    }
    const after = await env.server.stats()
    expect(after.ackAccepted - before.ackAccepted).toBe(2n)
    await env.server.detach(dev)
    expect(await tcIngressFilters(env.topo.server.ns, dev)).toBe('')
    expect(await qdiscs()).not.toMatch(/clsact/)
  })

  it('leaves a clsact qdisc it did not create in place', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    await env.server.attach(dev, { mode: 'clsact' })
    expect(await tcIngressFilters(ns, dev)).toMatch(/syncookie_ingr/)
    await env.server.detach(dev)
    expect(await tcIngressFilters(ns, dev)).toBe('')
    expect(await qdiscs()).toMatch(/clsact/)
    await nsExec(ns, ['tc', 'qdisc', 'del', 'dev', dev, 'clsact'])
  })

  it('refuses an unknown mode, naming it', async () => {
    await expect(env.server.call('agent.attach', { ifname: env.topo.server.dev, options: { mode: 'xdp' } })).rejects.toThrow(
      /options\.mode must be 'auto', 'tcx' or 'clsact', got "xdp"/,
    )
  })
})
