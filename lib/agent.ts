import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import {
  ClosedError,
  ConfigurationError,
  InterfaceNotFoundError,
  NotSupportedError,
  bpfErrorFrom,
  errorFromAttach,
  errorFromLoad,
  nativeFields,
} from './errors';
import { STAT_NAMES, SECRET_SLOTS, checkLayout, configValue, portsBitmap, sumStats, u32Key, type StatName } from './layout';
import {
  loadNative,
  type NativeLink,
  type NativeLinkEvent,
  type NativeModule,
  type NativeProgram,
  type NativeRouteEvents,
  type NativeTcFilter,
} from './native';
import { progIdOfFd, removeOrphanFilters } from './orphans';
import { RouteMirror } from './routes';

/** Options of a {@link SynCookieAgent}. */
export interface SynCookieAgentOptions {
  /** TCP destination ports to protect (IPv4 and IPv6), integers 1–65535, no duplicates. */
  ports: readonly number[];
  /**
   * Which destinations a SYN is answered for. `'local'` (default): only
   * addresses the kernel would deliver here, by the namespace's local routes
   * (followed over rtnetlink), the way the kernel itself refuses the rest;
   * broadcast, anycast and other hosts' addresses are dropped
   * (`synDropAddress`), and so is an IPv4 SYN from one of our own addresses
   * on anything but lo (unless accept_local is set). `'any'`: every
   * destination, for addresses that reach the listener without a local
   * route (TPROXY by fwmark, a SYN proxy for other hosts).
   */
  destinations?: Destinations;
}

/** See {@link SynCookieAgentOptions.destinations}. */
export type Destinations = 'local' | 'any';

/**
 * Counters summed over all CPUs since the program was loaded. Every SYN and
 * ACK to a protected port moves exactly one verdict counter besides
 * `synReceived` (which counts every SYN). Traffic to other ports moves none.
 */
export type SynCookieStats = Record<StatName, bigint>;

/** How the program is attached to one interface. */
export type AttachMode = 'tcx' | 'clsact';

/** Options of {@link SynCookieAgent.attach}. */
export interface AttachOptions {
  /** `auto` (default): tcx when the kernel has it (6.6+), else a clsact filter. */
  mode?: AttachMode | 'auto';
}

/** Payload of the `interfaceGone` event. */
export interface InterfaceGoneEvent {
  /** The name the interface was attached under (the key of {@link SynCookieAgent.attachments}). */
  interface: string;
  ifindex: number;
  /**
   * `deleted`: the attachment went with the device. `moved` (to another
   * network namespace): a clsact filter went with the device's qdiscs; a tcx
   * program stays on the device there, checking that namespace's sockets,
   * until `detach()`.
   */
  reason: 'deleted' | 'moved';
  mode: AttachMode;
}

/** Payload of the `interfaceRenamed` event. */
export interface InterfaceRenamedEvent {
  /** The name the interface was attached under. */
  interface: string;
  ifindex: number;
  from: string;
  to: string;
}

/** The events of a {@link SynCookieAgent}. */
export interface SynCookieAgentEvents {
  /**
   * An attached interface was deleted or moved to another network namespace:
   * the port is unprotected on it here. `detach()` of that name resolves;
   * `attach()` again resolves the name afresh.
   */
  interfaceGone: [InterfaceGoneEvent];
  /** An attached interface was renamed; it stays attached (and listed under the old name). */
  interfaceRenamed: [InterfaceRenamedEvent];
}

interface Attachment {
  /** The name attach() was given; the interface may have been renamed since. */
  name: string;
  /** Its name now, as the last link event said. */
  current: string;
  /** A link event said it is gone (the event was emitted). */
  gone: boolean;
  ifindex: number;
  mode: AttachMode;
  handle: NativeLink | NativeTcFilter;
}

const SECRET_BYTES = 16;

function validatePorts(options: unknown): number[] {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object with a ports array, got ${String(options)}`);
  }
  const ports = (options as { ports?: unknown }).ports;
  if (!Array.isArray(ports)) throw new TypeError(`options.ports must be an array of port numbers, got ${describe(ports)}`);
  if (ports.length === 0) throw new RangeError('options.ports must name at least one port, got []');
  const seen = new Set<number>();
  // a for loop, not forEach: forEach skips the holes of a sparse array
  for (let i = 0; i < ports.length; i++) {
    const p: unknown = ports[i];
    if (typeof p !== 'number') throw new TypeError(`options.ports[${i}] must be an integer port, got ${describe(p)}`);
    if (!Number.isInteger(p)) throw new RangeError(`options.ports[${i}] must be an integer port, got ${describe(p)}`);
    if (p < 1 || p > 65535) throw new RangeError(`options.ports[${i}] must be 1..65535, got ${p}`);
    if (seen.has(p)) throw new RangeError(`options.ports[${i}]: port ${p} is listed twice`);
    seen.add(p);
  }
  return [...seen];
}

function validateDestinations(options: unknown): Destinations {
  const given = (options as { destinations?: unknown }).destinations;
  if (given === undefined || given === 'local' || given === 'any') return given ?? 'local';
  const what = `options.destinations must be 'local' or 'any', got ${describe(given)}`;
  throw typeof given === 'string' ? new RangeError(what) : new TypeError(what);
}

function validateIfname(name: unknown): string {
  // IFNAMSIZ - 1 bytes; a NUL would cut the name short in if_nametoindex()
  const what = `interface must be an interface name (1–15 characters, no '/' or spaces), got ${describe(name)}`;
  if (typeof name !== 'string') throw new TypeError(what);
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[/\s\0]/.test(name)) throw new RangeError(what);
  return name;
}

function validateMode(options: unknown): AttachMode | 'auto' {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`attach options must be an object, got ${describe(options)}`);
  }
  const given = (options as { mode?: unknown }).mode;
  const mode = given === undefined ? 'auto' : given;
  if (mode !== 'auto' && mode !== 'tcx' && mode !== 'clsact') {
    const what = `options.mode must be 'auto', 'tcx' or 'clsact', got ${describe(mode)}`;
    throw typeof mode === 'string' ? new RangeError(what) : new TypeError(what);
  }
  return mode;
}

function validateKey(key: unknown): Uint8Array {
  // never describe() the value: a key passed as a string is still a secret
  if (!(key instanceof Uint8Array)) {
    const got = typeof key === 'string' ? `a string of ${key.length} characters` : typeof key === 'number' || typeof key === 'bigint' ? `a ${typeof key}` : describe(key);
    throw new TypeError(`key must be a Uint8Array of ${SECRET_BYTES} bytes, got ${got}`);
  }
  if (key.byteLength !== SECRET_BYTES) throw new RangeError(`key must be ${SECRET_BYTES} bytes, got ${key.byteLength}`);
  return key;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return v.length <= 64 ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, 64))}... (${v.length} characters)`;
  if (v instanceof Uint8Array) return `${v.constructor.name}(${v.byteLength})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  return typeof v === 'object' && v !== null ? (v.constructor?.name ?? 'object') : String(v);
}

/** net.ipv4 sysctls of the caller's network namespace (/proc/sys/net is per netns). */
function readSysctl(path: string): string | null {
  try {
    return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Stateless SYN-flood protection for the listeners of this network
 * namespace: an eBPF program at TC ingress answers SYNs to the protected
 * ports with SipHash SYN cookies and turns valid cookie ACKs into connections
 * through `bpf_sk_assign_tcp_reqsk()` (Linux 6.9+).
 */
export class SynCookieAgent extends EventEmitter<SynCookieAgentEvents> {
  readonly #ports: number[];
  readonly #destinations: Destinations;
  /** destinations 'local': the copy of the routes the program checks against. */
  #routes: RouteMirror | null = null;
  readonly #attachments = new Map<string, Attachment>();
  #native: NativeModule | null = null;
  #program: NativeProgram | null = null;
  #loading: Promise<NativeProgram> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #generation = 0;
  #current: Uint8Array = randomBytes(SECRET_BYTES);
  #previous: Uint8Array | null = null;
  #nowMsOverride = 0n;
  #queue: Promise<unknown> = Promise.resolve();
  /** Link events (RTMGRP_LINK) while something is attached: `interfaceGone`, `interfaceRenamed`. */
  #links: NativeRouteEvents | null = null;

  /** Validates the options; nothing is loaded until the first {@link attach}. */
  constructor(options: SynCookieAgentOptions) {
    super();
    this.#ports = validatePorts(options);
    this.#destinations = validateDestinations(options);
  }

  /** The protected ports, sorted. */
  get ports(): readonly number[] {
    return [...this.#ports].sort((a, b) => a - b);
  }

  /** Which destinations SYNs are answered for. */
  get destinations(): Destinations {
    return this.#destinations;
  }

  /** Names of the interfaces the program is attached to, with how. */
  get attachments(): ReadonlyMap<string, AttachMode> {
    return new Map([...this.#attachments].map(([k, v]) => [k, v.mode]));
  }

  /** The program's clock (CLOCK_TAI) in ms, for {@link encodeCookie}'s `now`. */
  clockNow(): number {
    return Number(this.#nativeModule().clockTaiNs() / 1_000_000n);
  }

  /**
   * Attaches the program to TC ingress of `ifname`, resolved in the caller's
   * network namespace: tcx when the kernel has it (6.6+), else a clsact
   * filter. Loads the program on first use.
   *
   * A syncookie clsact filter that a killed agent left on the interface (its
   * program held by no process) is removed once this attachment is in place;
   * in clsact mode this agent then owns the clsact qdisc if nothing else is on it.
   */
  attach(ifname: string, options: AttachOptions = {}): Promise<void> {
    return this.#serial('attach', async () => {
      const name = validateIfname(ifname);
      const mode = validateMode(options);
      const native = this.#nativeModule();
      let ifindex: number | undefined;
      try {
        ifindex = native.ifNameToIndex(name);
      } catch (err) {
        this.#forgetIfGone(name);
        throw new InterfaceNotFoundError(name, nativeFields(err).errno ?? 19, err);
      }
      const prior = this.#attachments.get(name);
      if (prior && prior.ifindex !== ifindex) {
        this.#forgetIfGone(name);
        if (this.#attachments.has(name)) {
          // renamed away, and another device took the name: the key is still the first one's
          const now = JSON.stringify(native.ifIndexToName(prior.ifindex));
          throw new RangeError(`interface ${JSON.stringify(name)} is already attached: the interface attached under that name is ${now} now; detach(${JSON.stringify(name)}) first`);
        }
      }
      const same = this.#byIfindex(ifindex);
      if (same) {
        const as = same.name === name ? '' : ` (as ${JSON.stringify(same.name)}, renamed since)`;
        throw new RangeError(`interface ${JSON.stringify(name)} is already attached${as}`);
      }
      const syncookies = readSysctl('net/ipv4/tcp_syncookies');
      if (syncookies === '0') {
        throw new ConfigurationError('net.ipv4.tcp_syncookies is 0 in this network namespace: the kernel would reset every cookie ACK', {
          code: 'ERR_SYNCOOKIES_DISABLED',
          op: 'attach',
          hint: 'set it to 1 (or 2): sysctl -w net.ipv4.tcp_syncookies=1',
        });
      }
      const program = await this.#load();
      const attachment = await this.#attachTo(program, ifindex, name, mode);
      this.#attachments.set(name, attachment);
      this.#watchLinks();
      this.#sweepOrphans(program, attachment);
    });
  }

  /** Follows link events while something is attached (best effort: without them, no events). */
  #watchLinks(): void {
    if (this.#links) return;
    try {
      this.#links = this.#nativeModule().linkEvents((links, errno) => this.#onLinks(links, errno));
    } catch {
      // no rtnetlink socket: the agent works as before, without interface events
    }
  }

  #unwatchLinks(): void {
    this.#links?.close();
    this.#links = null;
  }

  #onLinks(links: NativeLinkEvent[], errno: number): void {
    if (this.#closed || this.#closing) return;
    for (const l of links) {
      const a = this.#byIfindex(l.ifindex);
      if (!a || a.gone) continue;
      if (!l.add) this.#gone(a, l.moved ? 'moved' : 'deleted');
      else if (l.name !== '' && l.name !== a.current) this.#renamed(a, l.name);
    }
    if (errno !== 0) {
      // events were lost (ENOBUFS): look at every attachment's interface
      for (const a of this.#attachments.values()) {
        if (a.gone) continue;
        let now: string;
        try {
          now = this.#nativeModule().ifIndexToName(a.ifindex);
        } catch (err) {
          if (nativeFields(err).errno === 19) this.#gone(a, 'deleted'); // or moved: the lost event said which
          continue;
        }
        if (now !== a.current) this.#renamed(a, now);
      }
    }
  }

  #gone(a: Attachment, reason: 'deleted' | 'moved'): void {
    a.gone = true;
    this.#emitSafely('interfaceGone', { interface: a.name, ifindex: a.ifindex, reason, mode: a.mode });
  }

  #renamed(a: Attachment, to: string): void {
    const from = a.current;
    a.current = to;
    this.#emitSafely('interfaceRenamed', { interface: a.name, ifindex: a.ifindex, from, to });
  }

  /** A listener's exception is the process's (as from any emitter), not the netlink thread's. */
  #emitSafely<K extends keyof SynCookieAgentEvents>(event: K, ...args: SynCookieAgentEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SynCookieAgentEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** The attachment on `ifindex`, under whatever name it was attached. */
  #byIfindex(ifindex: number): Attachment | undefined {
    for (const a of this.#attachments.values()) if (a.ifindex === ifindex) return a;
    return undefined;
  }

  /**
   * Forgets the attachment made under `name` if that interface is gone (the
   * name is unknown now or names another device): what the kernel removed
   * with the device needs no detach.
   */
  #forgetIfGone(name: string): void {
    const a = this.#attachments.get(name);
    if (!a || this.#interfaceExists(a.ifindex)) return;
    this.#attachments.delete(name);
    if (this.#attachments.size === 0) this.#unwatchLinks();
    try {
      a.handle.detach();
    } catch {
      // the device is gone: nothing of ours can be left on it
    }
  }

  #interfaceExists(ifindex: number): boolean {
    try {
      this.#nativeModule().ifIndexToName(ifindex);
      return true;
    } catch (err) {
      return nativeFields(err).errno !== 19;
    }
  }

  /** See {@link attach}: a killed agent's clsact filter on the same interface is removed. */
  #sweepOrphans(program: NativeProgram, attachment: Attachment): void {
    const native = this.#nativeModule();
    try {
      const sweep = removeOrphanFilters(native, attachment.ifindex, progIdOfFd(program.progFd()));
      if (sweep.removed.length === 0) return;
      if (attachment.mode === 'clsact') {
        // Ours is the only filter left: the qdisc was the dead agent's, now ours.
        if (sweep.remaining === 1) (attachment.handle as NativeTcFilter).adoptQdisc();
      } else if (sweep.remaining === 0) {
        native.tcQdiscDelete(attachment.ifindex);
      }
    } catch {
      // Best effort: the attachment itself is in place and ours runs first
      // (tcx before clsact; a new clsact filter goes in front), so an
      // orphan left here is shadowed until this agent detaches.
    }
  }

  async #attachTo(program: NativeProgram, ifindex: number, name: string, mode: AttachMode | 'auto'): Promise<Attachment> {
    if (mode !== 'clsact') {
      try {
        return { name, current: name, gone: false, ifindex, mode: 'tcx', handle: await program.attachTcx(ifindex) };
      } catch (err) {
        const f = nativeFields(err);
        // EINVAL: the kernel does not know BPF_TCX_INGRESS (before 6.6)
        if (mode === 'tcx' || (f.errno !== 22 && f.errno !== 95)) throw errorFromAttach(err, name);
      }
    }
    try {
      return { name, current: name, gone: false, ifindex, mode: 'clsact', handle: await program.attachTc(ifindex, 0, 0) };
    } catch (err) {
      const f = nativeFields(err);
      // ENOENT/EOPNOTSUPP: no clsact qdisc or no cls_bpf classifier in this kernel
      if (mode === 'auto' && (f.errno === 2 || f.errno === 95)) {
        throw new NotSupportedError({
          feature: 'tcx, or a clsact qdisc with the bpf classifier (CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF)',
          minimumKernel: '6.6',
          errno: f.errno,
          op: f.op ?? 'bpf_tc_attach',
          detail: `neither attach mode works on ${name}`,
          cause: err,
        });
      }
      throw errorFromAttach(err, name);
    }
  }

  /**
   * Detaches from `ifname` (the name given to attach(), or the interface's
   * name now if it was renamed); the port is the kernel's again there. An
   * interface deleted meanwhile took the attachment with it: that resolves.
   */
  detach(ifname: string): Promise<void> {
    return this.#serial('detach', async () => {
      const name = validateIfname(ifname);
      let a = this.#attachments.get(name);
      if (!a) {
        try {
          a = this.#byIfindex(this.#nativeModule().ifNameToIndex(name));
        } catch {
          // no interface of that name either
        }
      }
      if (!a) throw new RangeError(`interface ${JSON.stringify(name)} is not attached`);
      try {
        a.handle.detach();
      } catch (err) {
        throw errorFromAttach(err, a.name); // still listed: detach() again retries what is left
      }
      this.#attachments.delete(a.name);
      if (this.#attachments.size === 0) this.#unwatchLinks();
    });
  }

  /**
   * Makes `key` (16 bytes; random when omitted) the current secret. Cookies
   * minted with the previous secret stay valid until the next rotation.
   */
  rotateSecret(key?: Uint8Array): Promise<void> {
    let next: Uint8Array;
    try {
      // copied now: the caller may reuse its buffer
      next = key === undefined ? randomBytes(SECRET_BYTES) : Uint8Array.from(validateKey(key));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#serial('rotateSecret', async () => {
      this.#generation = (this.#generation + 1) >>> 0;
      this.#previous = this.#current;
      this.#current = next;
      if (this.#program) this.#writeSecret(this.#program);
    });
  }

  /** Counters summed over CPUs; all zero before the first attach. */
  stats(): Promise<SynCookieStats> {
    return this.#serial('stats', async () => {
      if (!this.#program) return Object.fromEntries(STAT_NAMES.map((n) => [n, 0n])) as SynCookieStats;
      const native = this.#nativeModule();
      return sumStats(this.#program.mapLookup('stats', u32Key(0)), native.possibleCpus());
    });
  }

  /** Detaches everywhere and unloads the program. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = this.#queue.then(
        () => this.#teardown(),
        () => this.#teardown(),
      );
    }
    return this.#closing;
  }

  /** `await using agent = new SynCookieAgent(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    for (const [name, a] of this.#attachments) {
      try {
        a.handle.detach();
      } catch (err) {
        errors.push(errorFromAttach(err, name));
      }
    }
    this.#attachments.clear();
    this.#unwatchLinks();
    this.#routes?.close();
    this.#routes = null;
    this.#program?.close();
    this.#program = null;
    if (errors.length > 0) throw new AggregateError(errors, 'close: some attachments could not be removed');
  }

  /** Runs `fn` after every earlier call has settled, so attach/rotate/close never interleave. */
  #serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed || this.#closing) throw new ClosedError(what);
      return fn();
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #nativeModule(): NativeModule {
    if (!this.#native) {
      const native = loadNative();
      checkLayout(native.layout());
      this.#native = native;
    }
    return this.#native;
  }

  #load(): Promise<NativeProgram> {
    if (this.#program) return Promise.resolve(this.#program);
    if (!this.#loading) {
      this.#loading = (async () => {
        let program: NativeProgram;
        try {
          program = await this.#nativeModule().open();
        } catch (err) {
          throw errorFromLoad(err, { btf: existsSync('/sys/kernel/btf/vmlinux') });
        }
        if (this.#destinations === 'local') {
          // filled before the program is attached anywhere: no SYN sees a half-built map
          const routes = new RouteMirror(this.#nativeModule(), program, () => {
            if (this.#program !== program) return;
            try {
              program.mapUpdate('config', u32Key(0), this.#configValue());
            } catch {
              // an array map's update fails only for a closed program: nothing left to check
            }
          });
          try {
            await routes.start();
          } catch (err) {
            routes.close();
            program.close();
            throw bpfErrorFrom(err, 'could not read the routes of this network namespace (rtnetlink), which say which destinations are local; destinations: \'any\' does without them');
          }
          this.#routes = routes;
        }
        try {
          program.mapUpdate('ports', u32Key(0), portsBitmap(this.#ports));
          if (this.#previous) {
            program.mapUpdate('secrets', u32Key(((this.#generation - 1) >>> 0) % SECRET_SLOTS), Buffer.from(this.#previous));
          }
          this.#writeSecret(program);
        } catch (err) {
          this.#routes?.close();
          this.#routes = null;
          program.close();
          throw bpfErrorFrom(err, 'could not initialise the program\'s maps');
        }
        this.#program = program;
        return program;
      })().finally(() => {
        this.#loading = null;
      });
    }
    return this.#loading;
  }

  /**
   * Secrets are a ring of SECRET_SLOTS: write the new key into the slot after
   * the current one (no reader uses it), then publish the generation. A
   * packet in flight reads either the old (current, previous) pair or the new.
   */
  #writeSecret(program: NativeProgram): void {
    program.mapUpdate('secrets', u32Key(this.#generation % SECRET_SLOTS), Buffer.from(this.#current));
    program.mapUpdate('config', u32Key(0), this.#configValue());
  }

  #configValue(): Buffer {
    const rmemMax = Number(readSysctl('net/core/rmem_max') ?? '0') || 0;
    return configValue({
      generation: this.#generation,
      havePrev: this.#previous !== null,
      localOnly: this.#routes?.usable ?? false,
      localNets: this.#routes?.localNets ?? false,
      rmemMax,
      nowMsOverride: this.#nowMsOverride,
    });
  }

  /** @internal test hooks: see lib/testing.ts. */
  static _internals(agent: SynCookieAgent): AgentInternals {
    return {
      load: () => agent.#load(),
      setClock: (ms: number | null) => {
        agent.#nowMsOverride = ms === null ? 0n : BigInt(Math.floor(ms));
        if (agent.#program) agent.#program.mapUpdate('config', u32Key(0), agent.#configValue());
      },
      keys: () => (agent.#previous ? [agent.#current, agent.#previous] : [agent.#current]),
      routes: () => {
        const r = agent.#routes;
        return r ? { size: r.size, usable: r.usable, localNets: r.localNets, dumps: r.dumps } : null;
      },
    };
  }
}

/** @internal */
export interface AgentInternals {
  load(): Promise<NativeProgram>;
  setClock(ms: number | null): void;
  keys(): Uint8Array[];
  /** destinations 'local': prefixes in the route maps, whether the program uses them, dumps applied. */
  routes(): { size: number; usable: boolean; localNets: boolean; dumps: number } | null;
}
