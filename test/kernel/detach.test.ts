/**
 * Detach and close leave nothing behind: the port is the kernel's again, no program stays
 * attached (tcx, seen through BPF_PROG_QUERY, and legacy tc / XDP, seen through bpftool), and
 * the programs we loaded are gone from the kernel. A killed agent process leaves nothing either.
 */
import { beforeAll, expect, it } from 'vitest'
import { bpftoolNetShow, bpftoolProgs, progsExist, tcIngressFilters, tcxIngress, type AttachedProg } from '../helpers/bpf.js'
import { poll } from '../helpers/exec.js'
import {
  describeKernel,
  expectCounters,
  expectNoCounterMoved,
  measure,
  registerCleanup,
  requireDist,
  setupKernelEnv,
  type KernelEnv,
} from '../helpers/kernel.js'
import { NsWorker } from '../helpers/worker.js'

const PREFIX = 'sca-dt'
const PORT = 8080
// The kernel keeps BPF_OBJ_NAME_LEN - 1 = 15 characters of "syncookie_ingress".
const PROG_NAME = 'syncookie_ingress'.slice(0, 15)

describeKernel('detach and close', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await env.server.listen({ host: env.topo.server.ip4, port: PORT, mode: 'echo-bulk' })
    await env.server.listen({ host: env.topo.server.ip6, port: PORT, mode: 'echo-bulk' })
  })

  const connect = (family: 4 | 6 = 4) =>
    env.client.connect({ host: family === 4 ? env.topo.server.ip4 : env.topo.server.ip6, port: PORT, bytes: 64 * 1024 })
  const drops = (): Promise<number> => env.topo.drops()
  const ours = (progs: AttachedProg[]): AttachedProg[] => progs.filter((p) => p.name === PROG_NAME)

  async function expectNothingAttached(what: string): Promise<void> {
    const { ns, dev } = env.topo.server
    const settled = await poll(async () => ((await tcxIngress(ns, dev)).length === 0 ? true : undefined), { timeoutMs: 3_000 })
    expect(settled ? [] : await tcxIngress(ns, dev), `${what}: tcx ingress of ${dev}`).toEqual([])
    const net = await bpftoolNetShow(ns, dev)
    expect(net.tc, `${what}: bpftool net show dev ${dev} (tc)\n${net.raw}`).toEqual([])
    expect(net.xdp, `${what}: bpftool net show dev ${dev} (xdp)\n${net.raw}`).toEqual([])
    expect(await tcIngressFilters(ns, dev), `${what}: tc filter show dev ${dev} ingress`).toBe('')
  }

  async function expectProgsGone(ids: number[], what: string): Promise<void> {
    const gone = await poll(async () => {
      const e = await progsExist(ids)
      return Object.values(e).every((x) => !x) ? e : undefined
    }, { timeoutMs: 5_000 })
    expect(gone ?? (await progsExist(ids)), `${what}: program ids ${ids.join(',')} still loaded`).toEqual(
      Object.fromEntries(ids.map((i) => [String(i), false])),
    )
    const left = (await bpftoolProgs()).filter((p) => ids.includes(p.id))
    expect(left, `${what}: bpftool prog show still lists our sched_cls program(s)`).toEqual([])
  }

  it('attach → cookie handshakes; detach → kernel handshakes and no counter moves; attach again works', async () => {
    await expectNothingAttached('before attach')
    await env.server.createAgent({ ports: [PORT] })
    await env.server.attach(env.topo.server.dev)
    const attached = ours(await tcxIngress(env.topo.server.ns, env.topo.server.dev))
    expect(attached, 'our program on tcx ingress after attach').toHaveLength(1)
    const listed = (await bpftoolProgs()).find((p) => p.id === attached[0]?.id)
    expect(listed, 'bpftool prog show lists the attached program').toMatchObject({ type: 'sched_cls', name: 'syncookie_ingress' })

    const through = await measure(env.server, drops, () => connect())
    expect(through.result.ok, JSON.stringify(through.result)).toBe(true)
    expectCounters(through, { synAckSent: 1n, ackAccepted: 1n }, 'attached')

    await env.server.detach(env.topo.server.dev)
    await expectNothingAttached('after detach')
    for (const family of [4, 6] as const) {
      const after = await measure(env.server, drops, () => connect(family))
      expect(after.result.ok, JSON.stringify(after.result)).toBe(true)
      expectNoCounterMoved(after, `IPv${family} connect after detach`)
    }
    // Detaching an interface that is not attached is an error naming it.
    await expect(env.server.detach(env.topo.server.dev)).rejects.toThrow(env.topo.server.dev)

    await env.server.attach(env.topo.server.dev)
    const again = await measure(env.server, drops, () => connect(6))
    expect(again.result.ok, JSON.stringify(again.result)).toBe(true)
    expectCounters(again, { synAckSent: 1n, ackAccepted: 1n }, 'attached again')
  })

  it('close() detaches everything, unloads the program, and is idempotent', async () => {
    const progIds = ours(await tcxIngress(env.topo.server.ns, env.topo.server.dev)).map((p) => p.id)
    expect(progIds, 'attached before close').toHaveLength(1)
    await env.server.attach('lo')
    await env.server.closeAgent()
    await expectNothingAttached('after close')
    expect(ours(await tcxIngress(env.topo.server.ns, 'lo')), 'lo after close').toEqual([])
    await expectProgsGone(progIds, 'after close')
    await env.server.closeAgent() // a second close is a no-op
    const r = await connect()
    expect(r.ok, `kernel handshake after close: ${JSON.stringify(r)}`).toBe(true)
  })

  it('a SIGKILLed agent process leaves nothing attached or loaded', async () => {
    const w = await NsWorker.start(env.topo.server.ns)
    await w.createAgent({ ports: [PORT] })
    await w.attach(env.topo.server.dev)
    const progIds = ours(await tcxIngress(env.topo.server.ns, env.topo.server.dev)).map((p) => p.id)
    expect(progIds).toHaveLength(1)
    await w.killAndWait()
    await expectNothingAttached('after SIGKILL of the agent process')
    await expectProgsGone(progIds, 'after SIGKILL')
    const r = await connect()
    expect(r.ok, `kernel handshake after the agent died: ${JSON.stringify(r)}`).toBe(true)
  })
})
