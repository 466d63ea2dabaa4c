// Kernel support, without a kernel: SynCookieAgent over a fake addon whose calls
// fail the way libbpf 1.1.2 and the kernel fail on a host that lacks BTF, tcx
// or the kfunc, and a fake /sys and /proc. What is checked is what a user sees
// from attach(): the error class, its fields, and which attachment was made.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { SynCookieAgent } from '../../lib/agent'
import { BpfError, InterfaceNotFoundError, NotSupportedError, PermissionError } from '../../lib/errors'
import { CFG_HAVE_PREV, CFG_LOCAL_NETS, CFG_LOCAL_ONLY, OFFSETS, ROUTE_ENTRIES, RTN_LOCAL, SECRET_SLOTS, SIZES, STAT_NAMES } from '../../lib/layout'
import type { NativeLink, NativeModule, NativeProgram, NativeTcFilter } from '../../lib/native'

const host = vi.hoisted(() => ({
  /** Paths under /sys and /proc that exist, with their contents. */
  files: new Map<string, string>(),
  native: undefined as unknown,
}))

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const faked = (p: unknown) => typeof p === 'string' && /^\/(sys|proc)\//.test(p)
  return {
    ...fs,
    existsSync: (p: string) => (faked(p) ? host.files.has(p) : fs.existsSync(p)),
    readFileSync: ((p: string, ...rest: unknown[]) => {
      if (!faked(p)) return (fs.readFileSync as (...a: unknown[]) => unknown)(p, ...rest)
      const text = host.files.get(p)
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT', errno: -2 })
      return text
    }) as typeof fs.readFileSync,
  }
})

vi.mock('../../lib/native', () => ({ loadNative: () => host.native }))

/** An error shaped like the ones binding/errors.cc throws. */
function nativeError(op: string, errno: number, code: string, log?: string): Error {
  return Object.assign(new Error(`${op}: failed (errno ${errno})`), { op, errno, code, ...(log === undefined ? {} : { log }) })
}

/** What libbpf 1.1.2 prints when the kernel has no /sys/kernel/btf/vmlinux. */
const NO_BTF_LOG = [
  'libbpf: failed to find valid kernel BTF',
  'libbpf: Error loading vmlinux BTF: -3',
  "libbpf: failed to load object 'syncookie_bpf'",
  "libbpf: failed to load BPF skeleton 'syncookie_bpf': -3",
].join('\n')

/** What libbpf 1.1.2 prints when the kernel BTF has no such kfunc (Linux before 6.9). */
const NO_KFUNC_LOG = [
  "libbpf: extern (func ksym) 'bpf_sk_assign_tcp_reqsk': not found in kernel or module BTFs",
  "libbpf: failed to load object 'syncookie_bpf'",
  "libbpf: failed to load BPF skeleton 'syncookie_bpf': -3",
].join('\n')

interface FakeKernel {
  open?: () => Error | null
  attachTcx?: () => Error | null
  attachTc?: () => Error | null
}

/** A fake addon; `calls` records which attach paths were tried. */
function fakeNative(kernel: FakeKernel) {
  const calls: string[] = []
  const link: NativeLink = { fd: 7, detach: () => calls.push('link.detach') }
  const filter: NativeTcFilter = { ifindex: 2, priority: 1, handle: 1, hookCreated: true, qdiscKept: false, adoptQdisc: () => undefined, detach: () => calls.push('filter.detach') }
  const program = {
    progFd: () => 5,
    mapFd: () => 6,
    mapUpdate: () => undefined,
    mapLookup: () => Buffer.alloc(STAT_NAMES.length * 8),
    close: () => calls.push('program.close'),
    attachTcx: async () => {
      calls.push('attachTcx')
      const err = kernel.attachTcx?.()
      if (err) throw err
      return link
    },
    attachTc: async () => {
      calls.push('attachTc')
      const err = kernel.attachTc?.()
      if (err) throw err
      return filter
    },
  } as unknown as NativeProgram
  const native = {
    layout: () => ({
      sizes: { ...SIZES, sc_stats: STAT_NAMES.length * 8 },
      offsets: { ...OFFSETS },
      statNames: [...STAT_NAMES],
      constants: {
        SC_SECRET_SLOTS: SECRET_SLOTS,
        SC_PORT_WORDS: SIZES.sc_ports / 8,
        SC_STAT_COUNT: STAT_NAMES.length,
        SC_CFG_HAVE_PREV: CFG_HAVE_PREV,
        SC_CFG_LOCAL_ONLY: CFG_LOCAL_ONLY,
        SC_CFG_LOCAL_NETS: CFG_LOCAL_NETS,
        SC_ROUTE_ENTRIES: ROUTE_ENTRIES,
        SC_RTN_LOCAL: RTN_LOCAL,
      },
    }),
    possibleCpus: () => 1,
    clockTaiNs: () => 0n,
    ifNameToIndex: () => 2,
    ifIndexToName: () => 'eth0',
    queryTcx: () => 0,
    tcFilters: () => [],
    routeDump: async () => [],
    routeEvents: () => ({ close: () => undefined }),
    open: async () => {
      calls.push('open')
      const err = kernel.open?.()
      if (err) throw err
      return program
    },
  } as unknown as NativeModule
  return { native, calls }
}

function useKernel(kernel: FakeKernel, opts: { btf?: boolean } = {}) {
  const fake = fakeNative(kernel)
  host.native = fake.native
  if (opts.btf !== false) host.files.set('/sys/kernel/btf/vmlinux', '')
  return fake
}

async function attachError(agent: SynCookieAgent): Promise<unknown> {
  try {
    await agent.attach('eth0')
  } catch (err) {
    return err
  }
  throw new Error('attach() resolved, expected it to fail')
}

beforeEach(() => {
  host.files.clear()
  host.files.set('/proc/sys/net/ipv4/tcp_syncookies', '1\n')
  host.files.set('/proc/sys/net/core/rmem_max', '212992\n')
})

describe('kernel support, probed after a failed load', () => {
  it('a kernel without BTF: NotSupportedError naming CONFIG_DEBUG_INFO_BTF, nothing attached', async () => {
    const cause = nativeError('bpf_object__load', 3, 'ESRCH', NO_BTF_LOG)
    const { calls } = useKernel({ open: () => cause }, { btf: false })
    const agent = new SynCookieAgent({ ports: [8080] })
    const err = await attachError(agent)
    expect(err).toBeInstanceOf(NotSupportedError)
    expect(err).toBeInstanceOf(BpfError)
    expect(err).toMatchObject({ code: 'ERR_NOT_SUPPORTED', errno: 3, op: 'bpf_object__load', minimumKernel: '5.4', cause })
    expect((err as NotSupportedError).feature).toMatch(/CONFIG_DEBUG_INFO_BTF/)
    expect((err as Error).message).toMatch(/not supported by this kernel.*needs Linux 5\.4 or later/s)
    expect(calls).toEqual(['open'])
    expect(agent.attachments.size).toBe(0)
    await agent.close()
  })

  it('a kernel before 6.9 (BTF but no bpf_sk_assign_tcp_reqsk): NotSupportedError naming the kfunc and 6.9', async () => {
    const cause = nativeError('bpf_object__load', 3, 'ESRCH', NO_KFUNC_LOG)
    const { calls } = useKernel({ open: () => cause })
    const agent = new SynCookieAgent({ ports: [8080] })
    const err = await attachError(agent)
    expect(err).toBeInstanceOf(NotSupportedError)
    expect(err).toMatchObject({ code: 'ERR_NOT_SUPPORTED', minimumKernel: '6.9', cause })
    expect((err as NotSupportedError).feature).toMatch(/bpf_sk_assign_tcp_reqsk/)
    expect((err as Error).message).toMatch(/needs Linux 6\.9 or later/)
    expect(calls).toEqual(['open'])
    await agent.close()
  })

  it('a failed load is not cached: the next attach loads again', async () => {
    let broken = true
    const { calls } = useKernel({ open: () => (broken ? nativeError('bpf_object__load', 3, 'ESRCH', NO_KFUNC_LOG) : null) })
    const agent = new SynCookieAgent({ ports: [8080] })
    expect(await attachError(agent)).toBeInstanceOf(NotSupportedError)
    broken = false
    await agent.attach('eth0')
    expect(calls).toEqual(['open', 'open', 'attachTcx'])
    await agent.close()
  })
})

describe('tcx, and clsact where the kernel has no tcx', () => {
  it('uses tcx when the kernel has it, and never touches clsact', async () => {
    const { calls } = useKernel({})
    const agent = new SynCookieAgent({ ports: [8080] })
    await agent.attach('eth0')
    expect(agent.attachments).toEqual(new Map([['eth0', 'tcx']]))
    await agent.close()
    expect(calls).toEqual(['open', 'attachTcx', 'link.detach', 'program.close'])
  })

  it.each([
    [22, 'EINVAL', 'before 6.6: no BPF_TCX_INGRESS attach type'],
    [95, 'EOPNOTSUPP', 'tcx not supported for this device'],
  ])('falls back to a clsact filter when bpf_link_create says %i (%s, %s)', async (errno, code) => {
    const { calls } = useKernel({ attachTcx: () => nativeError('bpf_link_create', errno, code) })
    const agent = new SynCookieAgent({ ports: [8080] })
    await agent.attach('eth0')
    expect(agent.attachments).toEqual(new Map([['eth0', 'clsact']]))
    await agent.close()
    expect(calls).toEqual(['open', 'attachTcx', 'attachTc', 'filter.detach', 'program.close'])
  })

  it('does not fall back on EPERM: PermissionError naming CAP_NET_ADMIN', async () => {
    const { calls } = useKernel({ attachTcx: () => nativeError('bpf_link_create', 1, 'EPERM') })
    const agent = new SynCookieAgent({ ports: [8080] })
    const err = await attachError(agent)
    expect(err).toBeInstanceOf(PermissionError)
    expect(err).toMatchObject({ capability: 'CAP_NET_ADMIN', errno: 1, op: 'bpf_link_create' })
    expect(calls).toEqual(['open', 'attachTcx'])
    await agent.close()
  })

  it.each([
    [2, 'ENOENT'],
    [95, 'EOPNOTSUPP'],
  ])('says what the kernel lacks when neither tcx nor clsact works (%i, %s)', async (errno, code) => {
    useKernel({
      attachTcx: () => nativeError('bpf_link_create', 22, 'EINVAL'),
      attachTc: () => nativeError('bpf_tc_attach', errno, code),
    })
    const agent = new SynCookieAgent({ ports: [8080] })
    const err = await attachError(agent)
    expect(err).toBeInstanceOf(NotSupportedError)
    expect(err).toMatchObject({ minimumKernel: '6.6', errno })
    expect((err as NotSupportedError).feature).toMatch(/tcx.*CONFIG_NET_CLS_BPF/)
    expect(agent.attachments.size).toBe(0)
    await agent.close()
  })

  it('reports the clsact failure, not the tcx one, when both fail', async () => {
    const { calls } = useKernel({
      attachTcx: () => nativeError('bpf_link_create', 22, 'EINVAL'),
      attachTc: () => nativeError('bpf_tc_hook_create', 19, 'ENODEV'),
    })
    const agent = new SynCookieAgent({ ports: [8080] })
    const err = await attachError(agent)
    expect(err).toBeInstanceOf(InterfaceNotFoundError)
    expect(err).toMatchObject({ interface: 'eth0', errno: 19 })
    expect(calls).toEqual(['open', 'attachTcx', 'attachTc'])
    expect(agent.attachments.size).toBe(0)
    await agent.close()
  })
})
