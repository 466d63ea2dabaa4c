/**
 * The byte layout of the structs in bpf/syncookie.h, as TypeScript sees them.
 * `checkLayout()` compares it with the sizes and offsets the binding was
 * compiled with, so a drift fails loudly at load instead of giving garbage.
 */

/** Counter names, in the order of `enum sc_stat` (the SC_STATS X-macro). */
export const STAT_NAMES = [
  'synReceived',
  'synAckSent',
  'synExistingSocket',
  'synNoListener',
  'synCookiesOff',
  'synDropMalformed',
  'synDropFragment',
  'synDropHeaders',
  'synDropAddress',
  'synDropMss',
  'synDropError',
  'ackAccepted',
  'ackRejected',
  'ackKernelCookie',
  'ackAssignFailed',
  'ackMalformed',
  'passEstablished',
  'passNoSocket',
  'passOther',
] as const;

/** One counter name. */
export type StatName = (typeof STAT_NAMES)[number];

/** Sizes (bytes) of the shared structs. */
export const SIZES = { sc_secret: 16, sc_config: 24, sc_ports: 8192, sc_route_key: 20, sc_route: 4 } as const;

/** Offsets (bytes) of the fields TypeScript writes. */
export const OFFSETS = {
  config_generation: 0,
  config_flags: 4,
  config_rmem_max: 8,
  config_now_ms_override: 16,
  secret_k0: 0,
  secret_k1: 8,
} as const;

/** Number of secrets in the ring (current, previous, and two free slots). */
export const SECRET_SLOTS = 4;
/** `sc_config.flags`: the slot before the current one holds the previous secret. */
export const CFG_HAVE_PREV = 1;
/** `sc_config.flags`: the routes map is complete; answer only SYNs to local destinations. */
export const CFG_LOCAL_ONLY = 2;
/** `sc_config.flags`: a local route for a prefix exists; look in the LPM trie after the hash. */
export const CFG_LOCAL_NETS = 4;
/** Capacity of the routes map (prefixes). */
export const ROUTE_ENTRIES = 65536;
/** RTN_LOCAL of linux/rtnetlink.h: the route type of this host's addresses. */
export const RTN_LOCAL = 2;

/** What the binding reports of the header it was compiled with. */
export interface NativeLayout {
  sizes: Record<string, number>;
  offsets: Record<string, number>;
  statNames: readonly string[];
  constants: Record<string, number>;
}

/** Throws if the compiled header and this file disagree. */
export function checkLayout(native: NativeLayout): void {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(SIZES)) {
    if (native.sizes[k] !== v) problems.push(`sizeof(struct ${k}) is ${native.sizes[k]}, expected ${v}`);
  }
  const statsSize = STAT_NAMES.length * 8;
  if (native.sizes.sc_stats !== statsSize) problems.push(`sizeof(struct sc_stats) is ${native.sizes.sc_stats}, expected ${statsSize}`);
  for (const [k, v] of Object.entries(OFFSETS)) {
    if (native.offsets[k] !== v) problems.push(`offset ${k} is ${native.offsets[k]}, expected ${v}`);
  }
  if (native.statNames.join() !== STAT_NAMES.join()) {
    problems.push(`stat names differ: binding has [${native.statNames.join(', ')}]`);
  }
  if (native.constants.SC_SECRET_SLOTS !== SECRET_SLOTS) problems.push('SC_SECRET_SLOTS differs');
  if (native.constants.SC_CFG_HAVE_PREV !== CFG_HAVE_PREV) problems.push('SC_CFG_HAVE_PREV differs');
  if (native.constants.SC_CFG_LOCAL_ONLY !== CFG_LOCAL_ONLY) problems.push('SC_CFG_LOCAL_ONLY differs');
  if (native.constants.SC_CFG_LOCAL_NETS !== CFG_LOCAL_NETS) problems.push('SC_CFG_LOCAL_NETS differs');
  if (native.constants.SC_ROUTE_ENTRIES !== ROUTE_ENTRIES) problems.push('SC_ROUTE_ENTRIES differs');
  if (native.constants.SC_RTN_LOCAL !== RTN_LOCAL) problems.push('SC_RTN_LOCAL differs');
  if (problems.length > 0) {
    throw new Error(`bpf/syncookie.h and lib/layout.ts disagree (rebuild the addon?): ${problems.join('; ')}`);
  }
}

/** Bytes of one per-CPU value slot: the kernel rounds each CPU's copy up to 8. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** Sums a per-CPU `struct sc_stats` lookup into one bigint per counter. */
export function sumStats(buf: Uint8Array, cpus: number): Record<StatName, bigint> {
  const stride = perCpuStride(STAT_NAMES.length * 8);
  if (buf.byteLength < stride * cpus) {
    throw new Error(`stats value is ${buf.byteLength} bytes, expected ${stride * cpus} for ${cpus} CPUs`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = Object.fromEntries(STAT_NAMES.map((n) => [n, 0n])) as Record<StatName, bigint>;
  for (let cpu = 0; cpu < cpus; cpu++) {
    STAT_NAMES.forEach((name, i) => {
      out[name] += view.getBigUint64(cpu * stride + i * 8, true);
    });
  }
  return out;
}

/** The 8192-byte `struct sc_ports` bitmap for a set of ports. */
export function portsBitmap(ports: Iterable<number>): Buffer {
  const buf = Buffer.alloc(SIZES.sc_ports);
  for (const p of ports) {
    // bit (port & 63) of the little-endian u64 bits[port >> 6]
    buf[(p >> 6) * 8 + ((p & 63) >> 3)] |= 1 << (p & 7);
  }
  return buf;
}

/** A `struct sc_config` value. */
export function configValue(c: {
  generation: number;
  havePrev: boolean;
  localOnly?: boolean;
  localNets?: boolean;
  rmemMax: number;
  nowMsOverride: bigint;
}): Buffer {
  const buf = Buffer.alloc(SIZES.sc_config);
  buf.writeUInt32LE(c.generation >>> 0, OFFSETS.config_generation);
  const flags = (c.havePrev ? CFG_HAVE_PREV : 0) | (c.localOnly ? CFG_LOCAL_ONLY : 0) | (c.localNets ? CFG_LOCAL_NETS : 0);
  buf.writeUInt32LE(flags, OFFSETS.config_flags);
  buf.writeUInt32LE(c.rmemMax >>> 0, OFFSETS.config_rmem_max);
  buf.writeBigUInt64LE(c.nowMsOverride, OFFSETS.config_now_ms_override);
  return buf;
}

/** A u32 array-map key. */
export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
