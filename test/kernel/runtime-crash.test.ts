/**
 * kill -9 of the agent's process while attached: what is left on the host, and what the next
 * agent start does with it.
 *
 * - tcx: the link lives in the process's fd table, so nothing is left: no attachment, no link,
 *   program, map or BTF object of the dead agent.
 * - clsact: the filter lives in the qdisc, so the dead agent's filter, its program and its four
 *   maps stay, with the clsact qdisc the agent created. The orphan keeps answering SYNs with
 *   the dead agent's last secret, which nobody rotates any more.
 * - The next agent start on that interface removes the orphan once its own attachment is in
 *   place (lib/orphans.ts): a syncookie filter whose program no process holds an fd of. Its
 *   program and maps go with it; the clsact qdisc goes too when nothing else is on it (tcx), or
 *   becomes the new agent's (clsact). A live agent's filter is not an orphan and stays.
 */
import { afterEach, beforeAll, expect, it } from 'vitest'
import { STAT_NAMES } from '../../lib/layout'
import { tcIngressFilters, tcxIngress } from '../helpers/bpf.js'
import { poll } from '../helpers/exec.js'
import { bpfObjectIds, loadHostileOps, qdiscs, readMapById, resources } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { nsExec } from '../helpers/netns.js'
import { NsWorker } from '../helpers/worker.js'

const PREFIX = 'sca-kc'
const PORT = 8080

interface ProgramIds {
  prog: number
  maps: { config: number; secrets: number; ports: number; stats: number }
}

/** Sums a per-CPU `struct sc_stats` value read by map id. */
function sumStats(buf: Buffer): Record<string, bigint> {
  const stride = STAT_NAMES.length * 8
  const out: Record<string, bigint> = {}
  STAT_NAMES.forEach((n, i) => {
    out[n] = 0n
    for (let off = 0; off + stride <= buf.length; off += stride) out[n] += buf.readBigUInt64LE(off + i * 8)
  })
  return out
}

describeKernel('kill -9 of an attached agent', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    for (const host of [env.topo.server.ip4, env.topo.server.ip6]) await env.server.listen({ host, port: PORT, mode: 'echo-bulk' })
  })

  afterEach(async () => {
    await nsExec(env.topo.server.ns, ['tc', 'qdisc', 'del', 'dev', env.topo.server.dev, 'clsact']).catch(() => undefined)
  })

  /** An agent in a worker of its own, attached; returns the worker and the kernel ids it holds. */
  async function agentProcess(mode?: 'tcx' | 'clsact'): Promise<{ w: NsWorker; ids: ProgramIds; held: Awaited<ReturnType<typeof resources>> }> {
    const w = await NsWorker.start(env.topo.server.ns)
    await loadHostileOps(w)
    await w.createAgent({ ports: [PORT] })
    await w.attach(env.topo.server.dev, mode ? { mode } : undefined)
    return { w, ids: await w.call<ProgramIds>('hostile.programIds'), held: await resources(w) }
  }

  const connect = (family: 4 | 6 = 4) => env.client.connect({ host: family === 4 ? env.topo.server.ip4 : env.topo.server.ip6, port: PORT, bytes: 4096 })

  async function stillExist(ids: { progs?: number[]; maps?: number[]; links?: number[] }): Promise<{ progs: number[]; maps: number[]; links: number[] }> {
    const live = await bpfObjectIds()
    const keep = (mine: number[] | undefined, all: number[]): number[] => (mine ?? []).filter((id) => all.includes(id))
    return { progs: keep(ids.progs, live.progs), maps: keep(ids.maps, live.maps), links: keep(ids.links, live.links) }
  }

  it('tcx: nothing is left, neither attachment nor link, program or map', async () => {
    const { ns, dev } = env.topo.server
    const { w, ids, held } = await agentProcess()
    expect(held.ids.link, 'the agent holds one tcx link').toHaveLength(1)
    expect((await tcxIngress(ns, dev)).map((p) => p.id)).toEqual([ids.prog])
    await w.killAndWait()
    const mine = { progs: [ids.prog], maps: Object.values(ids.maps), links: held.ids.link }
    const left = await poll(async () => {
      const s = await stillExist(mine)
      return s.progs.length + s.maps.length + s.links.length === 0 ? s : undefined
    }, { timeoutMs: 5_000 })
    expect(left ?? (await stillExist(mine)), 'BPF objects of the killed agent').toEqual({ progs: [], maps: [], links: [] })
    expect(await tcxIngress(ns, dev)).toEqual([])
    expect(await tcIngressFilters(ns, dev)).toBe('')
    expect(await qdiscs(ns, dev)).not.toMatch(/clsact/)
    const r = await connect()
    expect(r.ok, `the kernel handshakes again: ${JSON.stringify(r)}`).toBe(true)
  })

  it('clsact: the qdisc, the filter, the program and its maps are left, and the orphan still answers SYNs', async () => {
    const { ns, dev } = env.topo.server
    const { w, ids } = await agentProcess('clsact')
    const filters = await tcIngressFilters(ns, dev)
    expect(filters).toMatch(new RegExp(`syncookie_ingr.* id ${ids.prog} `))
    await w.killAndWait()
    expect(await tcIngressFilters(ns, dev), 'the filter outlives its process').toBe(filters)
    expect(await qdiscs(ns, dev), 'the clsact qdisc the agent created').toMatch(/clsact/)
    expect(await stillExist({ progs: [ids.prog], maps: Object.values(ids.maps) })).toEqual({
      progs: [ids.prog],
      maps: Object.values(ids.maps),
      links: [],
    })
    const s0 = sumStats(await readMapById(ids.maps.stats))
    for (const family of [4, 6] as const) {
      const r = await connect(family)
      expect(r.ok, `IPv${family} through the orphan: ${JSON.stringify(r)}`).toBe(true)
    }
    const s1 = sumStats(await readMapById(ids.maps.stats))
    expect(s1.synAckSent! - s0.synAckSent!, 'the orphan answered both SYNs with cookies').toBe(2n)
    expect(s1.ackAccepted! - s0.ackAccepted!, 'and accepted both ACKs').toBe(2n)
  })

  it('clsact: a live agent\'s filter (another process) is not an orphan: the next agent leaves it', async () => {
    const { ns, dev } = env.topo.server
    const live = await agentProcess('clsact')
    const next = await agentProcess()
    try {
      expect(await tcIngressFilters(ns, dev), 'the live agent\'s filter stays').toMatch(new RegExp(`syncookie_ingr.* id ${live.ids.prog} `))
      const n0 = await next.w.stats()
      expect((await connect()).ok).toBe(true)
      expect((await next.w.stats()).synAckSent! - n0.synAckSent!, 'the tcx agent runs first and answered').toBe(1n)
      await next.w.closeAgent()
      const l0 = await live.w.stats()
      expect((await connect()).ok).toBe(true)
      expect((await live.w.stats()).synAckSent! - l0.synAckSent!, 'the live clsact agent answers again').toBe(1n)
      await live.w.closeAgent()
      expect(await tcIngressFilters(ns, dev)).toBe('')
      expect(await qdiscs(ns, dev), 'the qdisc the live agent created went with its close()').not.toMatch(/clsact/)
    } finally {
      await next.w.killAndWait()
      await live.w.killAndWait()
    }
  })

  it('clsact: the next agent start (tcx) removes the orphan filter, its program, maps and the empty qdisc', async () => {
    const { ns, dev } = env.topo.server
    const dead = await agentProcess('clsact')
    await dead.w.killAndWait()
    const next = await agentProcess()
    try {
      expect(await tcIngressFilters(ns, dev), 'no syncookie filter left once the next agent attached').not.toMatch(/syncookie_ingr/)
      const orphan = { progs: [dead.ids.prog], maps: Object.values(dead.ids.maps) }
      const gone = await poll(async () => {
        const s = await stillExist(orphan)
        return s.progs.length + s.maps.length === 0 ? true : undefined
      }, { timeoutMs: 5_000 })
      expect(gone ?? (await stillExist(orphan)), `the orphan program ${dead.ids.prog} and its maps are unloaded`).toBe(true)
      expect(await qdiscs(ns, dev), 'the dead agent\'s clsact qdisc, empty now, is removed').not.toMatch(/clsact/)
      const n0 = await next.w.stats()
      expect((await connect()).ok).toBe(true)
      expect((await next.w.stats()).ackAccepted! - n0.ackAccepted!).toBe(1n)
    } finally {
      await next.w.killAndWait()
    }
  })

  it('clsact: the next agent start (clsact) takes the orphan\'s place: one syncookie filter, its own, and the qdisc', async () => {
    const { ns, dev } = env.topo.server
    const dead = await agentProcess('clsact')
    await dead.w.killAndWait()
    const next = await agentProcess('clsact')
    try {
      const lines = (await tcIngressFilters(ns, dev)).split('\n').filter((l) => /syncookie_ingr.* id \d+ /.test(l))
      expect(lines, 'syncookie filters on the interface').toHaveLength(1)
      expect(lines[0]).toMatch(new RegExp(` id ${next.ids.prog} `))
      await next.w.closeAgent()
      expect(await tcIngressFilters(ns, dev), 'close leaves no syncookie filter').not.toMatch(/syncookie_ingr/)
      expect(await qdiscs(ns, dev), 'and no clsact qdisc: the new agent adopted the dead one\'s').not.toMatch(/clsact/)
    } finally {
      await next.w.killAndWait()
    }
  })
})
