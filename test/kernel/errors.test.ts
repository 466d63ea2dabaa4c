/**
 * Every error of the API, as a user meets it: the class name, the code, and a message that names
 * the culprit (the field, the interface, the capability).
 */
import { beforeAll, expect, it } from 'vitest'
import { tcxIngress } from '../helpers/bpf.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { sysctl } from '../helpers/netns.js'
import { NsWorker, RemoteError, type KeyArg } from '../helpers/worker.js'

const PREFIX = 'sca-er'
const PORT = 8080

async function rejection(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p
  } catch (err) {
    if (err instanceof RemoteError) return err
    throw err
  }
  throw new Error('expected a rejection, the call succeeded')
}

describeKernel('API errors', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
  })

  it('the package exports the agent and every error class, from CJS and ESM', async () => {
    const names = ['SynCookieAgent', 'BpfError', 'PermissionError', 'InterfaceNotFoundError', 'VerifierError', 'NotSupportedError']
    const cjs = await env.server.call<string[]>('module.exports')
    const esm = await env.server.call<string[]>('module.esmExports')
    for (const n of names) {
      expect(cjs, `CJS export ${n}`).toContain(n)
      expect(esm, `ESM export ${n}`).toContain(n)
    }
  })

  const badPorts: [string, unknown][] = [
    ['port 0', { ports: [0] }],
    ['port 65536', { ports: [65536] }],
    ['port 1.5', { ports: [1.5] }],
    ["port '80' (a string)", { ports: ['80'] }],
    ['a negative port', { ports: [-1] }],
    ['a duplicate port', { ports: [8080, 8080] }],
    ['an empty list', { ports: [] }],
    ['ports not an array', { ports: '8080' }],
    ['ports missing', {}],
  ]
  for (const [what, opts] of badPorts) {
    it(`new SynCookieAgent with ${what} throws a TypeError/RangeError naming ports`, async () => {
      const e = await rejection(env.server.createAgent(opts))
      expect(['TypeError', 'RangeError'], `${e.name}: ${e.message}`).toContain(e.name)
      expect(e.message).toMatch(/ports/)
    })
  }

  it('attach to a missing interface rejects with InterfaceNotFoundError naming it', async () => {
    await env.server.createAgent({ ports: [PORT] })
    const e = await rejection(env.server.attach('sca-nosuch0'))
    expect(e.name, e.message).toBe('InterfaceNotFoundError')
    expect(e.message).toContain('sca-nosuch0')
    expect(e.props.isBpfError, 'InterfaceNotFoundError is a BpfError').toBe(true)
  })

  const badKeys: [string, KeyArg, string][] = [
    ['15 bytes', { length: 15 }, 'RangeError'],
    ['17 bytes', { length: 17 }, 'RangeError'],
    ['0 bytes', { length: 0 }, 'RangeError'],
    ['a string of 16 characters', { raw: '0123456789abcdef' }, 'TypeError'],
    ['an array of 16 numbers', { raw: Array.from({ length: 16 }, (_, i) => i) }, 'TypeError'],
    ['null', { raw: null }, 'TypeError'],
  ]
  for (const [what, key, expected] of badKeys) {
    it(`rotateSecret(${what}) rejects with a ${expected} naming key`, async () => {
      const e = await rejection(env.server.rotateSecret(key))
      expect(['TypeError', 'RangeError'], `${e.name}: ${e.message}`).toContain(e.name)
      expect(e.message).toMatch(/key/)
    })
  }

  it('rotateSecret with 16 bytes or no key resolves', async () => {
    await env.server.rotateSecret('00112233445566778899aabbccddeeff')
    await env.server.rotateSecret()
  })

  it('attaching twice to one interface rejects naming it, and the first attachment stays', async () => {
    const { ns, dev } = env.topo.server
    await env.server.attach(dev)
    const e = await rejection(env.server.attach(dev))
    expect(['Error', 'TypeError', 'RangeError'], `${e.name}: ${e.message}`).toContain(e.name)
    expect(e.message).toContain(dev)
    expect(await tcxIngress(ns, dev), 'exactly one program attached').toHaveLength(1)
  })

  it('every method of a closed agent rejects with code ERR_CLOSED; close is idempotent', async () => {
    await env.server.closeAgent()
    await env.server.closeAgent()
    expect(await tcxIngress(env.topo.server.ns, env.topo.server.dev)).toEqual([])
    const calls: [string, () => Promise<unknown>][] = [
      ['attach', () => env.server.attach(env.topo.server.dev)],
      ['detach', () => env.server.detach(env.topo.server.dev)],
      ['rotateSecret()', () => env.server.rotateSecret()],
      ['rotateSecret(key)', () => env.server.rotateSecret('00112233445566778899aabbccddeeff')],
      ['stats', () => env.server.stats()],
    ]
    for (const [what, call] of calls) {
      const e = await rejection(call())
      expect(e.code, `${what} after close: ${e.name}: ${e.message}`).toBe('ERR_CLOSED')
    }
  })

  it('attach rejects with ERR_SYNCOOKIES_DISABLED when tcp_syncookies = 0, and attaches nothing', async () => {
    const { ns, dev } = env.topo.server
    const saved = await sysctl(ns, 'net.ipv4.tcp_syncookies')
    await sysctl(ns, 'net.ipv4.tcp_syncookies', 0)
    try {
      await env.server.createAgent({ ports: [PORT] })
      const e = await rejection(env.server.attach(dev))
      expect(e.code, `${e.name}: ${e.message}`).toBe('ERR_SYNCOOKIES_DISABLED')
      expect(e.message).toMatch(/tcp_syncookies/)
      expect(await tcxIngress(ns, dev), 'nothing attached after the refusal').toEqual([])
    } finally {
      await sysctl(ns, 'net.ipv4.tcp_syncookies', saved)
      await env.server.closeAgent().catch(() => undefined)
    }
  })

  it('an unprivileged process gets PermissionError naming CAP_BPF or CAP_NET_ADMIN', async () => {
    const w = await NsWorker.start(env.topo.server.ns, { unprivileged: { uid: 65534, gid: 65534 } })
    try {
      expect((await w.call<{ uid: number }>('ping')).uid).toBe(65534)
      await w.createAgent({ ports: [PORT] })
      const e = await rejection(w.attach(env.topo.server.dev))
      expect(e.name, `${e.name}: ${e.message}`).toBe('PermissionError')
      expect(e.message).toMatch(/CAP_BPF|CAP_NET_ADMIN/)
      expect(e.props.isBpfError, 'PermissionError is a BpfError').toBe(true)
      expect(await tcxIngress(env.topo.server.ns, env.topo.server.dev)).toEqual([])
    } finally {
      w.kill()
    }
  })
})
