import { constants as osConstants } from 'node:os';

/** What the binding attaches to the errors it throws. */
export interface NativeErrorFields {
  errno?: number;
  code?: string;
  op?: string;
  log?: string;
}

const errnoNames: Record<number, string> = Object.fromEntries(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name]),
);

function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
}

/** Any failure of a BPF or netlink operation: `errno`, the operation, and what to do about it. */
export class BpfError extends Error {
  /** Positive errno of the failing call (0 when the failure has no errno). */
  readonly errno: number;
  /** Stable code: the errno name (`EPERM`, `ENODEV`, …) or an `ERR_*` code of this package. */
  readonly code: string;
  /** The kernel/libbpf operation that failed, e.g. `bpf_object__load`, `bpf_link_create`. */
  readonly op: string;
  /** One sentence on what to do about it. */
  readonly hint: string;

  constructor(message: string, fields: { errno?: number; code?: string; op: string; hint: string; cause?: unknown }) {
    super(fields.hint ? `${message} (${fields.hint})` : message, { cause: fields.cause });
    this.name = new.target.name;
    this.errno = fields.errno ?? 0;
    this.code = fields.code ?? (fields.errno ? errnoName(fields.errno) : 'ERR_BPF');
    this.op = fields.op;
    this.hint = fields.hint;
  }
}

/** How many trailing lines of a verifier log an error message shows. */
const LOG_TAIL_LINES = 8;

/** The verifier refused the program: `log` has the whole verifier/libbpf log, the message its tail. */
export class VerifierError extends BpfError {
  /** The complete libbpf and verifier log of the failed load. */
  readonly log: string;
  /** The last lines of the log, the ones that say why. */
  readonly tail: string[];

  constructor(fields: { errno: number; op: string; log: string; cause?: unknown }) {
    const lines = fields.log.split('\n').filter((l) => l.trim() !== '');
    const tail = lines.slice(-LOG_TAIL_LINES);
    const omitted = lines.length - tail.length;
    const shown = (omitted > 0 ? [`(${omitted} line(s) omitted)`] : []).concat(tail).join('\n  ');
    super(`${fields.op}: the verifier rejected the program: ${errnoName(fields.errno)}\n  ${shown}\n`, {
      errno: fields.errno,
      op: fields.op,
      hint: 'the full log is on the error\'s `log` property',
      cause: fields.cause,
    });
    this.log = fields.log;
    this.tail = tail;
  }
}

/** The kernel lacks something the program needs; `feature` says what, `minimumKernel` where it appeared. */
export class NotSupportedError extends BpfError {
  /** The missing kernel feature. */
  readonly feature: string;
  /** The first Linux version that has it. */
  readonly minimumKernel: string;

  constructor(fields: { feature: string; minimumKernel: string; errno?: number; op: string; detail?: string; cause?: unknown }) {
    super(`${fields.feature} is not supported by this kernel${fields.detail ? `: ${fields.detail}` : ''}`, {
      errno: fields.errno,
      code: 'ERR_NOT_SUPPORTED',
      op: fields.op,
      hint: `needs Linux ${fields.minimumKernel} or later`,
      cause: fields.cause,
    });
    this.feature = fields.feature;
    this.minimumKernel = fields.minimumKernel;
  }
}

/** The process may not do this: `capability` names what it lacks. */
export class PermissionError extends BpfError {
  /** The capability the operation needs. */
  readonly capability: 'CAP_BPF' | 'CAP_NET_ADMIN';

  constructor(fields: { capability: 'CAP_BPF' | 'CAP_NET_ADMIN'; errno: number; op: string; cause?: unknown }) {
    const hint =
      fields.capability === 'CAP_BPF'
        ? 'run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN'
        : 'run as root, or grant CAP_NET_ADMIN (and CAP_BPF)';
    super(`${fields.op}: permission denied, ${fields.capability} required`, {
      errno: fields.errno,
      op: fields.op,
      hint,
      cause: fields.cause,
    });
    this.capability = fields.capability;
  }
}

/** No interface of that name in the caller's network namespace. */
export class InterfaceNotFoundError extends BpfError {
  /** The name that was looked up. */
  readonly interface: string;

  constructor(name: string, errno: number, cause?: unknown) {
    super(`no network interface named ${JSON.stringify(name)} in this network namespace`, {
      errno,
      op: 'if_nametoindex',
      hint: 'interfaces are resolved in the caller\'s network namespace: run the agent inside the namespace that owns it',
      cause,
    });
    this.interface = name;
  }
}

/** The host (its sysctls) is configured so that the agent's cookies cannot work. */
export class ConfigurationError extends BpfError {
  constructor(message: string, fields: { code: string; op: string; hint: string }) {
    super(message, fields);
  }
}

/** Thrown by every method of a closed agent. */
export class ClosedError extends Error {
  /** Always `ERR_CLOSED`. */
  readonly code = 'ERR_CLOSED';

  constructor(what: string) {
    super(`${what}: the agent is closed`);
    this.name = 'ClosedError';
  }
}

/** The errno fields of an error thrown by the binding, if it is one. */
export function nativeFields(err: unknown): NativeErrorFields & { message: string } {
  if (err instanceof Error) {
    const e = err as Error & NativeErrorFields;
    return { message: e.message, errno: e.errno, code: e.code, op: e.op, log: e.log };
  }
  return { message: String(err) };
}

/** A generic BpfError from a binding error that no more specific class describes. */
export function bpfErrorFrom(err: unknown, hint: string): BpfError {
  const f = nativeFields(err);
  return new BpfError(f.message, { errno: f.errno, op: f.op ?? 'unknown', hint, cause: err });
}

const KFUNC = 'bpf_sk_assign_tcp_reqsk';

/** What is known about the host when a load fails (probed after the failure, not before every load). */
export interface LoadProbe {
  /** /sys/kernel/btf/vmlinux exists. */
  btf: boolean;
}

/** Turns a failed `open()` of the program into the error a user can act on. */
export function errorFromLoad(err: unknown, probe: LoadProbe): BpfError {
  const f = nativeFields(err);
  const log = f.log ?? '';
  const op = f.op ?? 'bpf_object__load';
  if (!probe.btf) {
    return new NotSupportedError({ feature: 'kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)', minimumKernel: '5.4', errno: f.errno, op, detail: f.message, cause: err });
  }
  if (log.includes(KFUNC) && /not found|extern/i.test(log)) {
    return new NotSupportedError({ feature: `the ${KFUNC}() kfunc`, minimumKernel: '6.9', errno: f.errno, op, detail: 'the kernel BTF has no such kfunc', cause: err });
  }
  if (/JIT is required|JIT does not support calling kernel function/.test(log)) {
    return new NotSupportedError({ feature: 'the BPF JIT (CONFIG_BPF_JIT, net.core.bpf_jit_enable=1): kfunc calls need it', minimumKernel: '6.9', errno: f.errno, op, detail: 'the kernel interprets BPF instead of compiling it', cause: err });
  }
  if (f.errno === 1 /* EPERM */) return new PermissionError({ capability: 'CAP_BPF', errno: 1, op, cause: err });
  if (/processed \d+ insns|^\d+: \(/m.test(log) || log.includes('BEGIN PROG LOAD LOG')) {
    return new VerifierError({ errno: f.errno ?? 0, op, log, cause: err });
  }
  if (f.errno === 13 /* EACCES */) return new PermissionError({ capability: 'CAP_BPF', errno: 13, op, cause: err });
  return bpfErrorFrom(err, log ? `libbpf said: ${log.trim().split('\n').slice(-3).join(' | ')}` : 'see the cause');
}

/** Turns a failed tcx/clsact attach into the error a user can act on. */
export function errorFromAttach(err: unknown, ifname: string): BpfError {
  const f = nativeFields(err);
  if (f.errno === 1 || f.errno === 13) return new PermissionError({ capability: 'CAP_NET_ADMIN', errno: f.errno, op: f.op ?? 'attach', cause: err });
  if (f.errno === 19 /* ENODEV */) return new InterfaceNotFoundError(ifname, 19, err);
  return bpfErrorFrom(err, `attaching to ${ifname} failed`);
}
