/**
 * Resource hygiene over many cycles, measured inside the agent's own process (open fds by kind,
 * the BPF object ids they hold, RSS after a full GC) and in the kernel (links and programs by
 * id, tcx attachments, qdiscs and filters): 10,000 attach/detach cycles on one interface (tcx,
 * then clsact), and 1,000 agents opened (loaded and attached) and closed.
 *
 * A tcx attach costs ~16 ms and a detach ~8 ms here (the kernel waits for RCU grace periods
 * when it swaps a tcx program array), so 10,000 tcx cycles take ~4.5 minutes, and a load ~280 ms
 * (the verifier), so 1,000 agents take ~5 minutes: CI runs 1,000 tcx cycles (10,000 clsact) and
 * 200 agents; SCA_HOSTILE_FULL=1 runs the full 10,000 and 1,000 (the figures in issue 5's note
 * come from that run).
 */
import { beforeAll, expect, it } from 'vitest'
import { tcIngressFilters, tcxIngress } from '../helpers/bpf.js'
import { poll } from '../helpers/exec.js'
import { bpfObjectIds, describeResources, loadHostileOps, qdiscs, resources, type Resources } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'

const PREFIX = 'sca-rc'
const PORT = 8080
const FULL = process.env.SCA_HOSTILE_FULL === '1'
const CYCLES = { tcx: FULL ? 10_000 : 1_000, clsact: 10_000 } as const
const AGENTS = FULL ? 1_000 : 200
const MiB = 2 ** 20

interface CycleResult {
  before: Resources
  after: Resources
  ms: number
  linkIds?: number[]
  progIds?: number[]
  mapIds?: number[]
}

/** The BPF fds a process holds, by kind. */
function bpfKinds(r: Resources): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of ['bpf-prog', 'bpf-map', 'bpf_link', 'btf']) out[k] = r.kinds[k] ?? 0
  return out
}

describeKernel('attach/detach and open/close cycles leak nothing', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await loadHostileOps(env.server)
    await env.server.createAgent({ ports: [PORT] })
  })

  type Ids = Awaited<ReturnType<typeof bpfObjectIds>>
  const report = (what: string, r: CycleResult, n: number, k0: Ids, k1: Ids): string => {
    const kernel = (k: Ids): string => `${k.progs.length} progs, ${k.maps.length} maps, ${k.links.length} links`
    const line =
      `[${what}] ${n} cycles in ${(r.ms / 1000).toFixed(1)} s (${((r.ms * 1000) / n).toFixed(0)} µs each); ` +
      `kernel-wide (other tests may run): ${kernel(k0)} before, ${kernel(k1)} after; ` +
      `before: ${describeResources(r.before)}; after: ${describeResources(r.after)}; ` +
      `rss ${((r.after.rss - r.before.rss) / MiB).toFixed(2)} MiB, heap ${((r.after.heapUsed - r.before.heapUsed) / MiB).toFixed(2)} MiB`
    console.info(line)
    return line
  }

  for (const mode of ['tcx', 'clsact'] as const) {
    it(`${CYCLES[mode]} attach/detach cycles (${mode}) on one interface: no fd, link, program, qdisc or memory growth`, async () => {
      const { ns, dev } = env.topo.server
      const q0 = await qdiscs(ns, dev)
      const k0 = await bpfObjectIds()
      const r = await env.server.call<CycleResult>('hostile.cycleAttach', { ifname: dev, count: CYCLES[mode], mode }, 600_000)
      const ctx = report(`attach/detach ${mode}`, r, CYCLES[mode], k0, await bpfObjectIds())
      expect(r.after.fds, `open fds: ${ctx}`).toBe(r.before.fds)
      expect(bpfKinds(r.after), ctx).toEqual(bpfKinds(r.before))
      // the loaded program is kept between attachments: one program, its seven maps (config,
      // secrets, ports, stats, scratch, hosts, routes), one BTF, no link
      expect(bpfKinds(r.after), ctx).toEqual({ 'bpf-prog': 1, 'bpf-map': 7, bpf_link: 0, btf: 1 })
      expect(r.after.ids.prog, ctx).toEqual(r.before.ids.prog)
      expect(r.after.rss - r.before.rss, `RSS growth: ${ctx}`).toBeLessThan(16 * MiB)
      expect(r.after.heapUsed - r.before.heapUsed, `heap growth: ${ctx}`).toBeLessThan(4 * MiB)
      expect(await tcxIngress(ns, dev), 'tcx ingress after the cycles').toEqual([])
      expect(await tcIngressFilters(ns, dev), 'tc ingress filters after the cycles').toBe('')
      expect(await qdiscs(ns, dev), 'qdiscs after the cycles').toBe(q0)
      if (mode === 'tcx') {
        expect(r.linkIds?.length, 'tcx link ids were sampled during the cycles').toBeGreaterThan(10)
        const left = await poll(async () => {
          const live = new Set((await bpfObjectIds()).links)
          const still = (r.linkIds ?? []).filter((id) => live.has(id))
          return still.length === 0 ? still : undefined
        }, { timeoutMs: 5_000 })
        expect(left, 'links created by the cycles that still exist in the kernel').toEqual([])
      }
    }, 900_000)
  }

  it(`${AGENTS} agents loaded, attached and closed: every program and map they loaded is gone`, async () => {
    const { ns, dev } = env.topo.server
    await env.server.closeAgent()
    const q0 = await qdiscs(ns, dev)
    const k0 = await bpfObjectIds()
    const r = await env.server.call<CycleResult>('hostile.cycleAgents', { ifname: dev, count: AGENTS, ports: [PORT] }, 900_000)
    const k1 = await poll(async () => {
      const k = await bpfObjectIds()
      return k.progs.length <= k0.progs.length ? k : undefined
    }, { timeoutMs: 10_000, intervalMs: 250 })
    const ctx = report('agents open/close', r, AGENTS, k0, k1 ?? (await bpfObjectIds()))
    expect(r.after.fds, `open fds: ${ctx}`).toBe(r.before.fds)
    expect(bpfKinds(r.after), ctx).toEqual({ 'bpf-prog': 0, 'bpf-map': 0, bpf_link: 0, btf: 0 })
    expect(r.progIds, ctx).toHaveLength(AGENTS)
    expect(r.mapIds, ctx).toHaveLength(AGENTS * 4)
    const leftover = await poll(async () => {
      const live = await bpfObjectIds()
      const progs = new Set(live.progs)
      const maps = new Set(live.maps)
      const still = { progs: (r.progIds ?? []).filter((id) => progs.has(id)), maps: (r.mapIds ?? []).filter((id) => maps.has(id)) }
      return still.progs.length + still.maps.length === 0 ? still : undefined
    }, { timeoutMs: 10_000, intervalMs: 250 })
    expect(leftover, 'programs/maps of the closed agents still in the kernel').toEqual({ progs: [], maps: [] })
    expect(r.after.rss - r.before.rss, `RSS growth: ${ctx}`).toBeLessThan(32 * MiB)
    expect(r.after.heapUsed - r.before.heapUsed, `heap growth: ${ctx}`).toBeLessThan(4 * MiB)
    expect(await tcxIngress(ns, dev)).toEqual([])
    expect(await qdiscs(ns, dev)).toBe(q0)
  }, 900_000)
})
