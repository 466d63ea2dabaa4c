/**
 * Which destinations are this host's: the program answers a SYN only for an
 * address whose route is RTN_LOCAL, as the kernel's routing decision after
 * TC ingress would deliver it (ip_route_input_slow(), ip6_route_input()).
 * No BPF helper answers that (bpf_fib_lookup() refuses on an interface that
 * does not forward, and does not tell local from broadcast when it does), so
 * this keeps the program's `hosts` and `routes` maps a copy of the
 * namespace's routes of the types that decide local delivery, from an
 * rtnetlink dump and the route events that follow it.
 *
 * Routes come from every table, so a VRF's or a policy table's local routes
 * count; the longest match wins across tables. An lo `local 0.0.0.0/0` in a
 * TPROXY table therefore makes every IPv4 destination local: the check errs
 * towards answering, as the agent did before it had one.
 */
import { SIZES, RTN_LOCAL } from './layout';
import type { NativeModule, NativeProgram, NativeRoute, NativeRouteEvents } from './native';

/** The key of 127.0.0.0/8 (lo's local route), which the program knows without a lookup. */
const LOOPBACK_NET = '68000000' + '00000000000000000000ffff7f000000';

/** rtm_type values of linux/rtnetlink.h that the map keeps. */
export const RTN = { LOCAL: RTN_LOCAL, BROADCAST: 3, ANYCAST: 4, MULTICAST: 5 } as const;
const KEPT_TYPES = [RTN.LOCAL, RTN.BROADCAST, RTN.ANYCAST, RTN.MULTICAST];
const ENOBUFS = 105;
/** After a failed write (the map full, ENOMEM), the whole map is rebuilt this much later. */
const RETRY_MS = 1000;

/** The `struct sc_route_key` of a route: IPv4 as ::ffff:a.b.c.d/96+len. */
export function routeKey(family: 4 | 6, dst: Uint8Array, dstLen: number): Buffer {
  const key = Buffer.alloc(SIZES.sc_route_key);
  if (family === 4) {
    key.writeUInt32LE(96 + dstLen, 0);
    key[14] = 0xff;
    key[15] = 0xff;
    Buffer.from(dst.buffer, dst.byteOffset, 4).copy(key, 16);
  } else {
    key.writeUInt32LE(dstLen, 0);
    Buffer.from(dst.buffer, dst.byteOffset, 16).copy(key, 4);
  }
  // bits past the prefix are the kernel's business, but two keys for one prefix must be equal
  const bits = key.readUInt32LE(0);
  for (let bit = bits; bit < 128; bit++) key[4 + (bit >> 3)] &= ~(0x80 >> (bit & 7));
  return key;
}

/**
 * What identifies one route of the kernel's (a deletion names it the same
 * way). Not its type: `ip route replace` announces only the new route, which
 * must take the place of the old one.
 */
function routeId(r: NativeRoute): string {
  return `${r.table}|${r.family}|${Buffer.from(r.dst).toString('hex')}/${r.dstLen}|${r.tos}|${r.priority}|${r.ifindex}`;
}

/** The value of a prefix's entry: RTN_LOCAL if any of its routes is local, else the lowest type. */
function prefixType(types: Map<string, number>): number {
  let best = 0;
  for (const t of types.values()) {
    if (t === RTN.LOCAL) return t;
    if (best === 0 || t < best) best = t;
  }
  return best;
}

function routeValue(type: number): Buffer {
  const b = Buffer.alloc(SIZES.sc_route);
  b.writeUInt32LE(type >>> 0, 0);
  return b;
}

/** One address (prefixlen 128): in the hash as well as in the LPM trie. */
function isHost(prefix: string): boolean {
  return prefix.startsWith('80000000');
}

/**
 * Keeps `program`'s `hosts` and `routes` maps equal to the routes of the
 * caller's network namespace (see bpf/syncookie.h). `onChange()` is called
 * whenever {@link usable} or {@link localNets} changes: the program checks
 * destinations only while the maps are a complete copy (a write can fail),
 * and looks in the LPM trie only while it holds a local prefix.
 */
export class RouteMirror {
  readonly #native: NativeModule;
  readonly #program: NativeProgram;
  readonly #onChange: () => void;
  /** prefix key hex -> (route id -> type) */
  readonly #prefixes = new Map<string, Map<string, number>>();
  /** prefix key hex -> the type in the BPF map */
  readonly #written = new Map<string, number>();
  /** prefixes (not one address, not 127.0.0.0/8) written as RTN_LOCAL */
  readonly #localNets = new Set<string>();
  #events: NativeRouteEvents | null = null;
  /** Events that arrived while a dump was running: applied on top of it. */
  #pending: NativeRoute[] | null = null;
  #syncs = 0;
  #dumps = 0;
  #usable = false;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(native: NativeModule, program: NativeProgram, onChange: () => void) {
    this.#native = native;
    this.#program = program;
    this.#onChange = onChange;
  }

  /** Whether the map is a complete copy now. */
  get usable(): boolean {
    return this.#usable;
  }

  /** Whether a prefix other than 127.0.0.0/8 is local (AnyIP): the LPM trie must be looked at. */
  get localNets(): boolean {
    return this.#localNets.size > 0;
  }

  /** Number of prefixes in the maps. */
  get size(): number {
    return this.#written.size;
  }

  /** Dumps applied to the map so far: 1 after start(), one more per rebuild. */
  get dumps(): number {
    return this.#dumps;
  }

  /** Subscribes, dumps and fills the map; rejects if the first dump fails. */
  async start(): Promise<void> {
    this.#events = this.#native.routeEvents(KEPT_TYPES, (routes, errno) => this.#onEvents(routes, errno));
    await this.#sync();
  }

  /** Stops following the routes; the map keeps what it has. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#events?.close();
    this.#events = null;
  }

  #onEvents(routes: NativeRoute[], errno: number): void {
    if (this.#closed) return;
    if (this.#pending) this.#pending.push(...routes);
    else for (const r of routes) this.#apply(r, true);
    if (errno === ENOBUFS) {
      // events were lost: the table is rebuilt from a new dump
      this.#sync().catch(() => this.#scheduleRetry());
    }
  }

  /**
   * A dump replaces the table, then the events received since the
   * subscription was made are applied over it in order: the last word on
   * each route is an event if there was one, else the dump.
   */
  async #sync(): Promise<void> {
    const sync = ++this.#syncs;
    this.#pending = [];
    let dumped: NativeRoute[];
    try {
      dumped = await this.#native.routeDump(KEPT_TYPES);
    } catch (err) {
      if (sync === this.#syncs) this.#pending = null;
      throw err;
    }
    if (sync !== this.#syncs || this.#closed) return; // a later dump supersedes this one
    const pending = this.#pending ?? [];
    this.#pending = null;
    this.#prefixes.clear();
    for (const r of dumped) this.#apply(r, false);
    for (const r of pending) this.#apply(r, false);
    this.#dumps++;
    this.#writeAll();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#sync().catch(() => this.#scheduleRetry());
    }, RETRY_MS);
    this.#retry.unref();
  }

  /** Adds or removes one route in the table; `write` updates its prefix in the map too. */
  #apply(r: NativeRoute, write: boolean): void {
    if (r.srcLen !== 0) return; // source-specific (IPv6 subtrees): not a statement about the destination
    const id = routeId(r);
    const prefix = routeKey(r.family, r.dst, r.dstLen).toString('hex');
    let types = this.#prefixes.get(prefix);
    if (r.add) {
      if (!types) this.#prefixes.set(prefix, (types = new Map()));
      types.set(id, r.type);
    } else {
      types?.delete(id);
      if (types?.size === 0) this.#prefixes.delete(prefix);
    }
    if (write) this.#writePrefix(prefix);
  }

  #writePrefix(prefix: string): void {
    const types = this.#prefixes.get(prefix);
    const nets = this.localNets;
    if (!this.#write(prefix, types ? prefixType(types) : 0)) {
      // the map is full (SC_ROUTE_ENTRIES) or the kernel is short of memory
      this.#usable = false;
      this.#onChange();
      this.#scheduleRetry();
    } else if (nets !== this.localNets) {
      this.#onChange();
    }
  }

  /** Puts `type` (0: nothing) into the map for `prefix`; false if the kernel refused. */
  #write(prefix: string, type: number): boolean {
    const had = this.#written.get(prefix);
    if (had === type || (type === 0 && had === undefined)) return true;
    const key = Buffer.from(prefix, 'hex');
    const maps = isHost(prefix) ? (['routes', 'hosts'] as const) : (['routes'] as const);
    try {
      for (const map of maps) {
        if (type !== 0) {
          this.#program.mapUpdate(map, key, routeValue(type));
          continue;
        }
        try {
          this.#program.mapDelete(map, key);
        } catch (err) {
          if ((err as { errno?: number }).errno !== 2) throw err; // ENOENT: not there, as wanted
        }
      }
    } catch {
      // the maps keep what was written: #written still says the old type, a rebuild redoes it
      return false;
    }
    if (type === 0) this.#written.delete(prefix);
    else this.#written.set(prefix, type);
    if (type === RTN.LOCAL && !isHost(prefix) && prefix !== LOOPBACK_NET) this.#localNets.add(prefix);
    else this.#localNets.delete(prefix);
    return true;
  }

  /** Makes the maps equal to the table: new and changed prefixes first, then the deletions. */
  #writeAll(): void {
    let ok = true;
    for (const [prefix, types] of this.#prefixes) ok = this.#write(prefix, prefixType(types)) && ok;
    for (const prefix of [...this.#written.keys()]) {
      if (!this.#prefixes.has(prefix)) ok = this.#write(prefix, 0) && ok;
    }
    this.#usable = ok;
    this.#onChange();
    if (!ok) this.#scheduleRetry();
  }
}
