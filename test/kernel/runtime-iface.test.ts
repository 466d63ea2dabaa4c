/**
 * The interface changes under the agent: deleted, renamed, moved to another namespace, or the
 * namespace's name deleted. No crash, and close() must still succeed.
 *
 * What the agent does (issue 5): it emits interfaceGone (deleted, or moved to another
 * namespace) and interfaceRenamed, from rtnetlink link events. An attachment whose interface
 * went away is gone with it: detach() and close() resolve, and attach() of that name again resolves the name
 * afresh (InterfaceNotFoundError, or a new attachment to a new device of that name). Attachments
 * are keyed by the name given to attach(); a renamed interface is detached by either name, and
 * attaching it again under its new name is refused as already attached, naming the old one.
 * With tcx the kernel detaches the link itself when the device goes away or moves; a clsact
 * filter goes with the device's qdiscs.
 */
import { afterEach, beforeAll, expect, it } from 'vitest'
import { tcIngressFilters, tcxIngress } from '../helpers/bpf.js'
import { run } from '../helpers/exec.js'
import { loadHostileOps, qdiscs } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { createNamespace, listNamespaces, namespaceName } from '../helpers/netns.js'
import { NsWorker, RemoteError } from '../helpers/worker.js'

const PREFIX = 'sca-if'
const PORT = 8080
const DEV = 'sca-if-xa'
const PEER = 'sca-if-xb'
const RENAMED = 'sca-if-xr'

async function rejection(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p
  } catch (err) {
    if (err instanceof RemoteError) return err
    throw err
  }
  throw new Error('expected a rejection, the call succeeded')
}

describeKernel('interface deleted, renamed, moved; namespace name deleted', () => {
  let env: KernelEnv
  let ns: string
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    ns = env.topo.server.ns
    await loadHostileOps(env.server)
  })

  afterEach(async () => {
    await env.server.closeAgent().catch(() => undefined)
    for (const dev of [DEV, RENAMED, PEER]) await run(['ip', '-n', ns, 'link', 'del', dev]).catch(() => undefined)
  })

  async function freshAgentOn(mode: 'tcx' | 'clsact'): Promise<void> {
    await run(['ip', '-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER])
    await run(['ip', '-n', ns, 'link', 'set', DEV, 'up'])
    await env.server.createAgent({ ports: [PORT] })
    await env.server.attach(DEV, { mode })
  }

  const attachments = (): Promise<[string, string][]> => env.server.call('hostile.attachments')

  for (const mode of ['tcx', 'clsact'] as const) {
    it(`${mode}: interface deleted while attached: stats works, attach() of the name again finds no interface and forgets it`, async () => {
      await freshAgentOn(mode)
      await run(['ip', '-n', ns, 'link', 'del', DEV])
      expect(await attachments(), 'listed until the agent next looks').toEqual([[DEV, mode]])
      expect((await env.server.stats()).synReceived).toBe(0n)
      const missing = await rejection(env.server.attach(DEV, { mode }))
      expect(missing.name, missing.message).toBe('InterfaceNotFoundError')
      expect(await attachments(), 'the attachment that went with the device').toEqual([])
      const detach = await rejection(env.server.detach(DEV))
      expect(detach.message).toMatch(/not attached/)
      await env.server.closeAgent()
    })

    it(`${mode}: interface deleted and a new one made under its name: attach() attaches to the new one`, async () => {
      await freshAgentOn(mode)
      await run(['ip', '-n', ns, 'link', 'del', DEV])
      await run(['ip', '-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER])
      await env.server.attach(DEV, { mode })
      expect(await attachments()).toEqual([[DEV, mode]])
      const filters = mode === 'tcx' ? (await tcxIngress(ns, DEV)).length : (await tcIngressFilters(ns, DEV)).split('\n').filter((l) => /syncookie_ingr/.test(l)).length
      expect(filters, 'one syncookie attachment on the new device').toBe(1)
      await env.server.detach(DEV)
      expect(await qdiscs(ns, DEV)).not.toMatch(/clsact/)
      await env.server.closeAgent()
    })
  }

  it('tcx: interface deleted while attached, then close() without detach: succeeds', async () => {
    await freshAgentOn('tcx')
    await run(['ip', '-n', ns, 'link', 'del', DEV])
    await env.server.closeAgent()
  })

  // Fixed (issue 5): close() used to reject with AggregateError (bpf_tc_detach: ENODEV). A
  // filter that went away with its device counts as removed.
  it('clsact: interface deleted while attached, then close() without detach: succeeds', async () => {
    await freshAgentOn('clsact')
    await run(['ip', '-n', ns, 'link', 'del', DEV])
    await env.server.closeAgent()
  })

  it('clsact: interface deleted while attached, then detach(): succeeds', async () => {
    await freshAgentOn('clsact')
    await run(['ip', '-n', ns, 'link', 'del', DEV])
    await env.server.detach(DEV)
    expect(await attachments()).toEqual([])
    await env.server.closeAgent()
  })

  for (const mode of ['tcx', 'clsact'] as const) {
    it(`${mode}: interface renamed while attached: the program stays on it; attach(new name) is refused; detach takes either name`, async () => {
      await freshAgentOn(mode)
      const ours = async (dev: string): Promise<number> =>
        mode === 'tcx' ? (await tcxIngress(ns, dev)).length : (await tcIngressFilters(ns, dev)).split('\n').filter((l) => /syncookie_ingr/.test(l)).length
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'name', RENAMED])
      expect(await ours(RENAMED), 'still attached under the new name').toBe(1)
      expect(await attachments(), 'listed under the name given to attach()').toEqual([[DEV, mode]])
      const twice = await rejection(env.server.attach(RENAMED, { mode }))
      expect(twice.message, `${twice.name}: ${twice.message}`).toMatch(/"sca-if-xr" is already attached \(as "sca-if-xa", renamed since\)/)
      expect(await ours(RENAMED), 'no second attachment').toBe(1)
      await env.server.detach(RENAMED)
      expect(await ours(RENAMED)).toBe(0)
      expect(await qdiscs(ns, RENAMED)).not.toMatch(/clsact/)
      expect(await attachments()).toEqual([])
      await env.server.attach(RENAMED, { mode })
      await run(['ip', '-n', ns, 'link', 'set', RENAMED, 'name', DEV])
      await env.server.detach(RENAMED) // the name given to attach(), though it names nothing now
      expect(await ours(DEV)).toBe(0)
      await env.server.closeAgent()
    })
  }

  it('clsact: renamed away and a new device takes the old name: attach(old name) is refused until detach, nothing is lost', async () => {
    await freshAgentOn('clsact')
    await run(['ip', '-n', ns, 'link', 'set', DEV, 'name', RENAMED])
    await run(['ip', '-n', ns, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', 'sca-if-xc'])
    const again = await rejection(env.server.attach(DEV, { mode: 'clsact' }))
    expect(again.message, `${again.name}: ${again.message}`).toMatch(/"sca-if-xa" is already attached: the interface attached under that name is "sca-if-xr" now/)
    expect((await tcIngressFilters(ns, RENAMED)).split('\n').filter((l) => /syncookie_ingr/.test(l)), 'the first attachment is still there').toHaveLength(1)
    await env.server.detach(DEV)
    expect(await tcIngressFilters(ns, RENAMED), 'detach(old name) removed it from the renamed device').toBe('')
    await env.server.attach(DEV, { mode: 'clsact' })
    expect((await tcIngressFilters(ns, DEV)).split('\n').filter((l) => /syncookie_ingr/.test(l))).toHaveLength(1)
    await env.server.closeAgent()
    expect(await tcIngressFilters(ns, DEV)).toBe('')
  })

  it('tcx: interface moved to another namespace: the link goes with it; detach and close succeed', async () => {
    await freshAgentOn('tcx')
    const other = namespaceName(PREFIX, 'mv')
    await createNamespace(other)
    try {
      const [prog] = await tcxIngress(ns, DEV)
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'netns', other])
      // documented: the program keeps running on the device in the other namespace (its socket
      // lookups then see that namespace's sockets) until detach
      expect((await tcxIngress(other, DEV)).map((p) => p.id)).toEqual([prog?.id])
      await env.server.detach(DEV)
      expect(await tcxIngress(other, DEV)).toEqual([])
      await env.server.closeAgent()
    } finally {
      await run(['ip', 'netns', 'del', other]).catch(() => undefined)
    }
  })

  it('clsact: interface moved to another namespace: the move destroys its qdiscs and our filter; detach and close succeed', async () => {
    await freshAgentOn('clsact')
    const other = namespaceName(PREFIX, 'mc')
    await createNamespace(other)
    try {
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'netns', other])
      // the move shuts the device down and destroys its qdiscs, clsact included
      expect(await tcIngressFilters(other, DEV)).toBe('')
      expect(await qdiscs(other, DEV)).not.toMatch(/clsact/)
      await env.server.detach(DEV)
      await env.server.closeAgent()
    } finally {
      await run(['ip', 'netns', 'del', other]).catch(() => undefined)
    }
  })

  // Events (issue 5): from rtnetlink link events, while something is attached.
  const events = (atLeast: number) => env.server.call<Record<string, unknown>[]>('hostile.events', { atLeast, timeoutMs: 3000 })

  for (const mode of ['tcx', 'clsact'] as const) {
    it(`${mode}: events: interfaceRenamed on a rename (twice), interfaceGone on a delete, nothing for up/down`, async () => {
      await freshAgentOn(mode)
      await env.server.call('hostile.listenEvents')
      const ifindex = Number((await run(['ip', '-n', ns, '-j', 'link', 'show', DEV])).stdout.match(/"ifindex":(\d+)/)![1])
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'down'])
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'name', RENAMED])
      await run(['ip', '-n', ns, 'link', 'set', RENAMED, 'up'])
      await run(['ip', '-n', ns, 'link', 'set', RENAMED, 'name', DEV])
      expect(await events(2)).toEqual([
        { event: 'interfaceRenamed', interface: DEV, ifindex, from: DEV, to: RENAMED },
        { event: 'interfaceRenamed', interface: DEV, ifindex, from: RENAMED, to: DEV },
      ])
      await run(['ip', '-n', ns, 'link', 'del', DEV])
      expect(await events(1)).toEqual([{ event: 'interfaceGone', interface: DEV, ifindex, reason: 'deleted', mode }])
      // deleting the peer (another interface) said nothing more
      expect(await events(0)).toEqual([])
      await env.server.detach(DEV).catch(() => undefined)
      await env.server.closeAgent()
    })
  }

  it('events: interfaceGone with reason moved when the interface goes to another namespace; none after detach', async () => {
    await freshAgentOn('tcx')
    await env.server.call('hostile.listenEvents')
    const other = namespaceName(PREFIX, 'ev')
    await createNamespace(other)
    try {
      await run(['ip', '-n', ns, 'link', 'set', DEV, 'netns', other])
      expect(await events(1)).toMatchObject([{ event: 'interfaceGone', interface: DEV, reason: 'moved', mode: 'tcx' }])
      await env.server.detach(DEV)
      // the veth peer stayed here
      await run(['ip', '-n', ns, 'link', 'set', PEER, 'up'])
      await env.server.attach(PEER)
      await env.server.detach(PEER)
      await run(['ip', '-n', ns, 'link', 'set', PEER, 'name', RENAMED])
      expect(await events(0), 'detached interfaces have no events').toEqual([])
      await env.server.closeAgent()
    } finally {
      await run(['ip', 'netns', 'del', other]).catch(() => undefined)
    }
  })

  it('both modes: the namespace\'s name deleted while the agent lives in it: everything keeps working', async () => {
    const own = namespaceName(PREFIX, 'gone')
    await createNamespace(own)
    await run(['ip', '-n', own, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER])
    await run(['ip', '-n', own, 'link', 'set', DEV, 'up'])
    const w = await NsWorker.start(own)
    try {
      await w.createAgent({ ports: [PORT] })
      await w.attach(DEV)
      await w.attach(PEER, { mode: 'clsact' })
      await run(['ip', 'netns', 'del', own])
      expect(await listNamespaces()).not.toContain(own)
      // `ip netns del` only removes the name: the worker keeps the namespace alive
      expect((await w.stats()).synReceived).toBe(0n)
      await w.rotateSecret()
      await w.detach(DEV)
      await w.closeAgent()
    } finally {
      await w.killAndWait()
      await run(['ip', 'netns', 'del', own]).catch(() => undefined)
    }
  })
})
