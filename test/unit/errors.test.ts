import { describe, expect, it } from 'vitest'
import {
  BpfError,
  InterfaceNotFoundError,
  NotSupportedError,
  PermissionError,
  VerifierError,
  errorFromAttach,
  errorFromLoad,
} from '../../lib/errors'

/** An error shaped like the ones binding/errors.cc throws. */
function nativeError(op: string, errno: number, log = ''): Error {
  return Object.assign(new Error(`${op}: failed (errno ${errno})`), { op, errno, code: 'E', log })
}

const verifierLog = [
  'libbpf: prog \'syncookie_ingress\': BPF program load failed: Permission denied',
  'libbpf: prog \'syncookie_ingress\': -- BEGIN PROG LOAD LOG --',
  ...Array.from({ length: 20 }, (_, i) => `${i}: (b7) r${i % 10} = 0`),
  'R4 invalid zero-sized read: u64=[0,40]',
  'processed 218 insns (limit 1000000) max_states_per_insn 0 total_states 17',
  '-- END PROG LOAD LOG --',
].join('\n')

describe('errorFromLoad', () => {
  it('gives a VerifierError with the tail in the message and the whole log on .log', () => {
    const e = errorFromLoad(nativeError('bpf_object__load', 13, verifierLog), { btf: true })
    expect(e).toBeInstanceOf(VerifierError)
    expect(e).toBeInstanceOf(BpfError)
    const v = e as VerifierError
    expect(v.log).toBe(verifierLog)
    expect(v.tail).toHaveLength(8)
    expect(v.message).toContain('R4 invalid zero-sized read')
    expect(v.message).toContain('(17 line(s) omitted)')
    expect(v.errno).toBe(13)
    expect(v.code).toBe('EACCES')
    expect(v.op).toBe('bpf_object__load')
  })

  it('names the kfunc and Linux 6.9 when the kernel lacks bpf_sk_assign_tcp_reqsk', () => {
    const log = "libbpf: extern (func ksym) 'bpf_sk_assign_tcp_reqsk': not found in kernel or module BTFs\nlibbpf: failed to load object 'syncookie_bpf'"
    const e = errorFromLoad(nativeError('bpf_object__load', 3, log), { btf: true })
    expect(e).toBeInstanceOf(NotSupportedError)
    expect((e as NotSupportedError).feature).toContain('bpf_sk_assign_tcp_reqsk')
    expect((e as NotSupportedError).minimumKernel).toBe('6.9')
    expect(e.message).toMatch(/Linux 6\.9/)
  })

  it('says BTF is missing when /sys/kernel/btf/vmlinux is absent, whatever libbpf said', () => {
    const e = errorFromLoad(nativeError('bpf_object__load', 2, 'libbpf: failed to find valid kernel BTF'), { btf: false })
    expect(e).toBeInstanceOf(NotSupportedError)
    expect((e as NotSupportedError).feature).toMatch(/BTF/)
  })

  it('gives a PermissionError naming CAP_BPF for EPERM', () => {
    const e = errorFromLoad(nativeError('bpf_object__load', 1, 'libbpf: Error in bpf_object__probe_loading():Operation not permitted(1)'), { btf: true })
    expect(e).toBeInstanceOf(PermissionError)
    expect(e.message).toMatch(/CAP_BPF/)
    expect((e as PermissionError).hint).toMatch(/root/)
  })

  it('keeps libbpf\'s last words for anything else', () => {
    const e = errorFromLoad(nativeError('bpf_object__load', 12, 'libbpf: map \'stats\': failed to create: -12'), { btf: true })
    expect(e.constructor).toBe(BpfError)
    expect(e.code).toBe('ENOMEM')
    expect(e.hint).toMatch(/failed to create/)
  })
})

describe('errorFromAttach', () => {
  it('names CAP_NET_ADMIN for EPERM', () => {
    const e = errorFromAttach(nativeError('bpf_link_create', 1), 'eth0')
    expect(e).toBeInstanceOf(PermissionError)
    expect((e as PermissionError).capability).toBe('CAP_NET_ADMIN')
  })

  it('maps ENODEV to InterfaceNotFoundError', () => {
    const e = errorFromAttach(nativeError('bpf_link_create', 19), 'eth9')
    expect(e).toBeInstanceOf(InterfaceNotFoundError)
    expect((e as InterfaceNotFoundError).interface).toBe('eth9')
  })
})

describe('errorFromLoad without a JIT', () => {
  it('names the BPF JIT instead of blaming the verifier', () => {
    const log = 'libbpf: prog \'syncookie_ingress\': -- BEGIN PROG LOAD LOG --\nJIT is required for calling kernel function\nprocessed 0 insns\n-- END PROG LOAD LOG --'
    const e = errorFromLoad(nativeError('bpf_object__load', 22, log), { btf: true })
    expect(e).toBeInstanceOf(NotSupportedError)
    expect((e as NotSupportedError).feature).toMatch(/JIT/)
  })
})
