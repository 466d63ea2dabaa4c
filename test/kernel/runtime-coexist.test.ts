/**
 * Coexistence with whatever else is on the interface's TC ingress: a program already there
 * keeps its place and keeps working, and detach removes only what the agent added.
 *
 * "Another program" is a counting SCHED_CLS program (test/helpers/hostile-bpf.py) that counts
 * every packet it sees and returns TCX_NEXT / TC_ACT_UNSPEC (-1): "let the next one decide", as a
 * well-behaved neighbour does. Its counter says whether it still runs.
 */
import { afterEach, beforeAll, expect, it } from 'vitest'
import { tcIngressFilters, tcxIngress } from '../helpers/bpf.js'
import { addClsactCounter, holdTcxCounter, qdiscs, readCounter, type CounterProg } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { nsExec } from '../helpers/netns.js'

const PREFIX = 'sca-co'
const PROTECTED = 8080
const OPEN = 9090
const PROG_NAME = 'syncookie_ingress'.slice(0, 15)

describeKernel('coexistence with other TC ingress programs', () => {
  let env: KernelEnv
  registerCleanup()
  const holders: CounterProg[] = []

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    for (const port of [PROTECTED, OPEN]) await env.server.listen({ host: env.topo.server.ip4, port, mode: 'echo-bulk' })
    await env.server.createAgent({ ports: [PROTECTED] })
  })

  afterEach(async () => {
    const { ns, dev } = env.topo.server
    await env.server.detach(dev).catch(() => undefined)
    for (const h of holders.splice(0)) h.child?.kill('SIGKILL')
    await nsExec(ns, ['tc', 'qdisc', 'del', 'dev', dev, 'clsact']).catch(() => undefined)
  })

  /** Connects to the unprotected and the protected port; returns how many packets `c` saw meanwhile. */
  async function traffic(c: CounterProg): Promise<{ seen: number; agentAccepted: bigint }> {
    const c0 = await readCounter(c)
    const s0 = await env.server.stats()
    for (const port of [OPEN, PROTECTED]) {
      const r = await env.client.connect({ host: env.topo.server.ip4, port, bytes: 1000 })
      expect(r.ok, `connect to ${port}: ${JSON.stringify(r)}`).toBe(true)
    }
    const s1 = await env.server.stats()
    return { seen: (await readCounter(c)) - c0, agentAccepted: (s1.ackAccepted ?? 0n) - (s0.ackAccepted ?? 0n) }
  }

  const filterLines = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => /handle/.test(l))

  it('tcx: a program attached before the agent keeps the first place and sees every packet', async () => {
    const { ns, dev } = env.topo.server
    const counter = await holdTcxCounter(ns, dev)
    holders.push(counter)
    expect((await tcxIngress(ns, dev)).map((p) => p.id)).toEqual([counter.progId])
    await env.server.attach(dev)
    const order = await tcxIngress(ns, dev)
    expect(order.map((p) => p.name), 'tcx order after attach').toEqual(['sca_hx_counter', PROG_NAME])
    expect(order[0]?.id).toBe(counter.progId)
    const t = await traffic(counter)
    expect(t.agentAccepted, 'the agent behind it still answers').toBe(1n)
    // two handshakes with 1000 bytes each way and a close: well over 10 packets in
    expect(t.seen, 'packets the first program saw with the agent behind it').toBeGreaterThan(10)
    await env.server.detach(dev)
    expect((await tcxIngress(ns, dev)).map((p) => p.id), 'detach removes only the agent').toEqual([counter.progId])
    expect((await traffic(counter)).seen).toBeGreaterThan(10)
  })

  // The program hands traffic on with TC_ACT_UNSPEC (= TCX_NEXT): TC_ACT_OK (= TCX_PASS) would
  // end tcx processing and programs after it would never run (found by this test).
  it('tcx: a program attached after the agent still sees the packets the agent passes', async () => {
    const { ns, dev } = env.topo.server
    await env.server.attach(dev)
    const counter = await holdTcxCounter(ns, dev)
    holders.push(counter)
    expect((await tcxIngress(ns, dev)).map((p) => p.name)).toEqual([PROG_NAME, 'sca_hx_counter'])
    const t = await traffic(counter)
    expect(t.agentAccepted).toBe(1n)
    expect(t.seen, 'packets to the unprotected port reach the program after the agent').toBeGreaterThan(5)
  })

  // tcx runs before the legacy clsact filters, and a tcx verdict other than TCX_NEXT skips them
  // (sch_handle_ingress): the agent's pass verdict must be TCX_NEXT for them to keep working.
  it('clsact: a filter already on the interface keeps its place and keeps working when the agent attaches with tcx', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    const counter = await addClsactCounter(ns, dev, 5, 5)
    const before = filterLines(await tcIngressFilters(ns, dev))
    expect((await traffic(counter)).seen, 'the filter works before the agent').toBeGreaterThan(10)
    await env.server.attach(dev)
    expect(filterLines(await tcIngressFilters(ns, dev)), 'the filter keeps its priority and handle').toEqual(before)
    const t = await traffic(counter)
    expect(t.agentAccepted).toBe(1n)
    expect(t.seen, 'packets the clsact filter saw with the agent attached (tcx)').toBeGreaterThan(5)
  })

  it('clsact: attaching and detaching with tcx leaves the filter and the qdisc as they were', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    const counter = await addClsactCounter(ns, dev, 5, 5)
    const filters = await tcIngressFilters(ns, dev)
    const q = await qdiscs(ns, dev)
    await env.server.attach(dev)
    await env.server.detach(dev)
    expect(await tcIngressFilters(ns, dev)).toBe(filters)
    expect(await qdiscs(ns, dev)).toBe(q)
    expect((await traffic(counter)).seen, 'the filter works after the agent left').toBeGreaterThan(10)
  })

  it('clsact mode: a filter already there in front of the agent keeps its place and keeps working', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    const counter = await addClsactCounter(ns, dev, 5, 5)
    const before = filterLines(await tcIngressFilters(ns, dev))
    await env.server.attach(dev, { mode: 'clsact' })
    const during = filterLines(await tcIngressFilters(ns, dev))
    for (const line of before) expect(during, 'the old filter is still there, same priority and handle').toContain(line)
    // the kernel gives the agent's filter (priority 0 asked) priority 0xc000: behind priority 5
    expect(during.at(-1), 'the agent\'s filter comes after it').toMatch(/pref 49152 .*syncookie_ingr/)
    const t = await traffic(counter)
    expect(t.agentAccepted).toBe(1n)
    expect(t.seen, 'packets the old filter saw with the agent behind it').toBeGreaterThan(10)
  })

  // Same in clsact mode: TC_ACT_OK would end classification (direct action) and a filter behind
  // the agent's would never run; TC_ACT_UNSPEC continues to it.
  it('clsact mode: a filter behind the agent still sees the packets the agent passes', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    const counter = await addClsactCounter(ns, dev, 0xd000, 9)
    await env.server.attach(dev, { mode: 'clsact' })
    // the kernel puts a filter asked with priority 0 in front of one at 0xd000 (0xd000 - 1)
    const lines = filterLines(await tcIngressFilters(ns, dev))
    expect(lines.map((l) => (/syncookie_ingr/.test(l) ? 'agent' : 'counter')), lines.join('\n')).toEqual(['agent', 'counter'])
    expect(lines[1]).toMatch(/pref 53248 /)
    const t = await traffic(counter)
    expect(t.agentAccepted).toBe(1n)
    expect(t.seen, 'packets to the unprotected port reach the filter behind the agent').toBeGreaterThan(5)
  })

  it('clsact mode: detach removes only the agent\'s filter from a qdisc it did not create', async () => {
    const { ns, dev } = env.topo.server
    await nsExec(ns, ['tc', 'qdisc', 'add', 'dev', dev, 'clsact'])
    const counter = await addClsactCounter(ns, dev, 5, 5)
    const before = await tcIngressFilters(ns, dev)
    await env.server.attach(dev, { mode: 'clsact' })
    expect(await tcIngressFilters(ns, dev)).toMatch(/syncookie_ingr/)
    await env.server.detach(dev)
    expect(await tcIngressFilters(ns, dev)).toBe(before)
    expect(await qdiscs(ns, dev)).toMatch(/clsact/)
    expect((await traffic(counter)).seen).toBeGreaterThan(10)
  })

  // Fixed (issue 5): detach used to destroy the qdisc it had created, with every filter added
  // to it since. Now the qdisc goes only when nothing else is on it (ingress or egress).
  it('clsact mode: a filter added after the agent created the qdisc survives the agent\'s detach', async () => {
    const { ns, dev } = env.topo.server
    expect(await qdiscs(ns, dev)).not.toMatch(/clsact/)
    await env.server.attach(dev, { mode: 'clsact' })
    const counter = await addClsactCounter(ns, dev, 0xc100, 7)
    await env.server.detach(dev)
    expect(await tcIngressFilters(ns, dev), 'the other filter after the agent detached').toMatch(/sca_hx_counter/)
    expect(await tcIngressFilters(ns, dev), 'and only it').not.toMatch(/syncookie_ingr/)
    expect(await qdiscs(ns, dev), 'the qdisc stays for it').toMatch(/clsact/)
    expect((await traffic(counter)).seen).toBeGreaterThan(10)
  })
})
