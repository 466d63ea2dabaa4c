/**
 * The SYN cookie codec: the pure TypeScript twin of make_cookie/check_cookie
 * in bpf/syncookie.bpf.c. docs/cookie-format.md is the specification and
 * test/vectors/cookies.json the reference vectors; both sides must agree bit
 * for bit.
 */
import { siphash24Halves, type SipHash64 } from './siphash';

/** The connection a cookie is bound to, as the client's SYN carries it (source = client). */
export interface CookieTuple {
  /** Client address (the SYN's source): IPv4 dotted quad or IPv6 text. */
  saddr: string;
  /** Server address (the SYN's destination), same family as `saddr`. */
  daddr: string;
  /** Client port (the SYN's source port), 0..65535. */
  sport: number;
  /** Server port (the SYN's destination port), 0..65535. */
  dport: number;
  /** Client ISN: the SYN's sequence number, a u32. */
  seq: number;
}

/** The TCP options a cookie carries for the connection it will create. */
export interface CookieOptions {
  /** Client MSS from the SYN (536 / 1220 when it had none); decoded as its MSS table entry. */
  mss: number;
  /** Client window scale shift, or null when the SYN had no window scale option. */
  wscale: number | null;
  /** The SYN had SACK-permitted. */
  sack: boolean;
  /** The connection negotiated ECN. */
  ecn: boolean;
}

/** IPv4 MSS table: a cookie's 2-bit MSS index decodes to this entry. */
export const MSS_TABLE_V4 = Object.freeze([536, 1300, 1460, 8960] as const);

/** IPv6 MSS table: a cookie's 2-bit MSS index decodes to this entry. */
export const MSS_TABLE_V6 = Object.freeze([1220, 1420, 1440, 8940] as const);

const SLOT_MS = 65536; // time slot = CLOCK_TAI ms >> 16
const HASH_MASK = 0xfffffe00; // SC_COOKIE_HASH_MASK
const WSCALE_NONE = 15; // SC_COOKIE_WSCALE_MASK value: no window scale option
const WSCALE_MAX = 14; // RFC 7323: larger shifts are treated as 14

type MssTable = readonly [number, number, number, number];

/** A validated tuple: addresses as bytes, numbers checked. */
interface ParsedTuple {
  v6: boolean;
  saddr: Uint8Array;
  daddr: Uint8Array;
  sport: number;
  dport: number;
  seq: number;
}

// Message buffers, reused: the codec is synchronous, so one of each is enough.
const msg4 = new Uint8Array(24);
const msg6 = new Uint8Array(48);
const view4 = new DataView(msg4.buffer);
const view6 = new DataView(msg6.buffer);

/** A string for an error message: quoted, and cut at 64 characters (with the full length). */
function quote(text: string): string {
  return text.length <= 64 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 64))}... (${text.length} characters)`;
}

/** Renders a bad value for an error message. */
function show(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return String(value);
  }
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.constructor.name}(${value.length})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
  if (value instanceof ArrayBuffer) return `ArrayBuffer(${value.byteLength} bytes)`;
  if (Array.isArray(value)) return `array(${value.length})`;
  return typeof value;
}

/** Renders a bad key for an error message: its type and size, never its content. */
function showKey(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'bigint') return `a ${typeof value}`;
  return show(value);
}

/** Returns `value` if it is an integer in min..max; throws TypeError/RangeError naming `field`. */
function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${field} must be an integer in ${min}..${max}, got ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${field} must be an integer in ${min}..${max}, got ${show(value)}`);
  }
  return value;
}

/** Returns `value` if it is a boolean; throws TypeError naming `field`. */
function checkBool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') {
    throw new TypeError(`${field} must be a boolean, got ${show(value)}`);
  }
  return value;
}

/** Returns `value` if it is a 16-byte Uint8Array; throws TypeError/RangeError naming `field`. */
function checkKey(value: unknown, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${field} must be a Uint8Array of 16 bytes, got ${showKey(value)}`);
  }
  if (value.length !== 16) {
    throw new RangeError(`${field} must be 16 bytes, got ${value.length} bytes`);
  }
  return value;
}

/** Returns the time slot of `value` ms; throws TypeError/RangeError naming `field`. */
function slotOf(value: unknown, field: string): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${field} must be a number of milliseconds, got ${show(value)}`);
  }
  if (!Number.isFinite(value) || value < 0 || value > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `${field} must be milliseconds in 0..${Number.MAX_SAFE_INTEGER}, got ${show(value)}`,
    );
  }
  // Division by a power of two is exact, so this is (floor(ms) >> 16) mod 2^32.
  return Math.floor(value / SLOT_MS) % 0x1_0000_0000;
}

/** Parses text[start..end) as a strict dotted quad (no leading zeros) into out[at..at+4). */
function parseDottedQuad(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 0x2e; // a final '.' closes the last part
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return false; // leading zero
      value = value * 10 + (c - 0x30);
      digits++;
      if (value > 255) return false;
    } else if (c === 0x2e) {
      if (digits === 0 || part === 4) return false;
      out[at + part] = value;
      part++;
      digits = 0;
      value = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** The value of hex digit `c` (a char code), or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Parses IPv6 text (RFC 4291 section 2.2: groups of 1..4 hex digits, one "::", an optional
 * trailing dotted quad; an RFC 4007 "%zone" suffix is ignored) into 16 bytes; null if invalid.
 */
function parseIPv6(text: string): Uint8Array | null {
  let end = text.indexOf('%');
  if (end === -1) end = text.length;
  else if (end === text.length - 1) return null; // empty zone
  const out = new Uint8Array(16);
  let n = 0; // 16-bit groups written to out
  let gap = -1; // group index where "::" stands
  let i = 0;
  if (text.startsWith('::')) {
    gap = 0;
    i = 2;
  }
  while (i < end) {
    let value = 0;
    let j = i;
    for (let h = hexValue(text.charCodeAt(j)); j < end && h >= 0; h = hexValue(text.charCodeAt(j))) {
      value = value * 16 + h;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 0x2e) {
      // The last 32 bits as a dotted quad.
      if (n > 6 || !parseDottedQuad(text, i, end, out, 2 * n)) return null;
      n += 2;
      break;
    }
    if (j === i || j - i > 4 || n === 8) return null;
    out[2 * n] = value >>> 8;
    out[2 * n + 1] = value & 0xff;
    n++;
    if (j === end) break;
    if (text.charCodeAt(j) !== 0x3a) return null;
    j++;
    if (j < end && text.charCodeAt(j) === 0x3a) {
      if (gap !== -1) return null;
      gap = n;
      j++;
    } else if (j === end) {
      return null; // a trailing single ':'
    }
    i = j;
  }
  if (gap === -1) return n === 8 ? out : null;
  if (n > 7) return null;
  // Move the groups after "::" to the end; the gap becomes zeros.
  const moved = 2 * (n - gap);
  out.copyWithin(16 - moved, 2 * gap, 2 * n);
  out.fill(0, 2 * gap, 16 - moved);
  return out;
}

/** True for ::ffff:0:0/96, the IPv4-mapped IPv6 addresses. */
function isV4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/**
 * Parses an address: 4 bytes for IPv4 and for IPv4-mapped IPv6 (::ffff:a.b.c.d, which is
 * how a dual-stack socket names an IPv4 peer: the packet on the wire is IPv4), else 16 bytes.
 */
function parseAddress(value: unknown, field: string): Uint8Array {
  if (typeof value !== 'string') {
    throw new TypeError(`${field} must be an IPv4 or IPv6 address string, got ${show(value)}`);
  }
  const v4 = new Uint8Array(4);
  if (parseDottedQuad(value, 0, value.length, v4, 0)) return v4;
  const v6 = value.includes(':') ? parseIPv6(value) : null;
  if (v6 === null) {
    throw new TypeError(`${field} must be an IPv4 or IPv6 address, got ${show(value)}`);
  }
  return isV4Mapped(v6) ? v6.slice(12) : v6;
}

/** Validates a CookieTuple at the boundary. */
function parseTuple(tuple: unknown): ParsedTuple {
  if (typeof tuple !== 'object' || tuple === null) {
    throw new TypeError(`tuple must be an object, got ${show(tuple)}`);
  }
  const t = tuple as Record<string, unknown>;
  const saddr = parseAddress(t['saddr'], 'tuple.saddr');
  const daddr = parseAddress(t['daddr'], 'tuple.daddr');
  if (saddr.length !== daddr.length) {
    throw new TypeError(
      `tuple.saddr and tuple.daddr must be the same address family, got ${show(t['saddr'])} ` +
        `(IPv${saddr.length === 4 ? 4 : 6}) and ${show(t['daddr'])} (IPv${daddr.length === 4 ? 4 : 6})`,
    );
  }
  return {
    v6: saddr.length === 16,
    saddr,
    daddr,
    sport: checkInt(t['sport'], 'tuple.sport', 0, 0xffff),
    dport: checkInt(t['dport'], 'tuple.dport', 0, 0xffff),
    seq: checkInt(t['seq'], 'tuple.seq', 0, 0xffffffff),
  };
}

/** The MSS table of the tuple's family. */
function tableFor(v6: boolean): MssTable {
  return v6 ? MSS_TABLE_V6 : MSS_TABLE_V4;
}

/** Validates a window scale: null is handled by the caller, else an integer 0..255. */
function checkWscale(value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`opts.wscale must be null or an integer in 0..255, got ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 255) {
    throw new RangeError(`opts.wscale must be null or an integer in 0..255, got ${show(value)}`);
  }
  return value;
}

/** Validates CookieOptions and packs them into the data byte d. */
function dataByte(opts: unknown, v6: boolean): number {
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`opts must be an object, got ${show(opts)}`);
  }
  const o = opts as Record<string, unknown>;
  const table = tableFor(v6);
  const mss = checkInt(o['mss'], 'opts.mss', 0, 0xffff);
  if (mss < table[0]) {
    throw new RangeError(
      `opts.mss must be at least ${table[0]} for IPv${v6 ? 6 : 4} (smaller is not encodable), got ${mss}`,
    );
  }
  let index = 3;
  while (index > 0 && (table[index] ?? 0) > mss) index--;
  const ws = o['wscale'];
  const wscale = ws === null ? WSCALE_NONE : Math.min(checkWscale(ws), WSCALE_MAX);
  const sack = checkBool(o['sack'], 'opts.sack');
  const ecn = checkBool(o['ecn'], 'opts.ecn');
  return (index << 6) | (ecn ? 0x20 : 0) | (sack ? 0x10 : 0) | wscale;
}

/** SipHash-2-4 of the cookie message for (tuple, slot, d) under `key`. */
function cookieHash(t: ParsedTuple, slot: number, d: number, key: Uint8Array): SipHash64 {
  const msg = t.v6 ? msg6 : msg4;
  const view = t.v6 ? view6 : view4;
  const n = t.saddr.length;
  msg.set(t.saddr, 0);
  msg.set(t.daddr, n);
  let at = 2 * n;
  view.setUint16(at, t.sport, false);
  view.setUint16(at + 2, t.dport, false);
  view.setUint32(at + 4, t.seq, false);
  view.setUint32(at + 8, slot, true); // the slot is little-endian: a native u32 on the BPF side
  at += 12;
  msg[at] = d;
  msg[at + 1] = 0;
  msg[at + 2] = 0;
  msg[at + 3] = 0;
  return siphash24Halves(key, msg);
}

/** Resolves the `now` argument: the given ms, or Date.now() (CLOCK_REALTIME) by default. */
function slotNow(now: unknown): number {
  return slotOf(now === undefined ? Date.now() : now, 'now');
}

/** The cookie time slot for a CLOCK_TAI time in ms: floor(nowMs / 65536) mod 2^32. */
export function cookieSlot(nowMs: number): number {
  return slotOf(nowMs, 'nowMs');
}

/**
 * The SYN-ACK ISN (u32) for a SYN: 23 bits of SipHash, the slot's low bit, the option byte.
 * `now` is the program's clock, CLOCK_TAI in ms; the default Date.now() is CLOCK_REALTIME,
 * which equals CLOCK_TAI only while the kernel's TAI offset is 0.
 */
export function encodeCookie(
  tuple: CookieTuple,
  opts: CookieOptions,
  key: Uint8Array,
  now?: number,
): number {
  const t = parseTuple(tuple);
  const d = dataByte(opts, t.v6);
  const k = checkKey(key, 'key');
  const slot = slotNow(now);
  const h = cookieHash(t, slot, d, k);
  return ((h.lo & HASH_MASK) | ((slot & 1) << 8) | d) >>> 0;
}

/**
 * Checks a cookie (an ACK's ack_seq - 1) for `tuple` (seq = the ACK's seq - 1) against
 * keys[0] (current) and keys[1] (previous, optional) in the current or previous slot;
 * returns the options it carries, or null if it is not valid.
 */
export function decodeCookie(
  cookie: number,
  tuple: CookieTuple,
  keys: Uint8Array[],
  now?: number,
): CookieOptions | null {
  const c = checkInt(cookie, 'cookie', 0, 0xffffffff);
  const t = parseTuple(tuple);
  if (!Array.isArray(keys)) {
    throw new TypeError(`keys must be an array of 1 or 2 keys, got ${show(keys)}`);
  }
  if (keys.length < 1 || keys.length > 2) {
    throw new RangeError(`keys must hold 1 or 2 keys (current, previous), got ${keys.length}`);
  }
  // a for loop, not map(): map() skips the holes of a sparse array
  const checked: Uint8Array[] = [];
  for (let i = 0; i < keys.length; i++) checked.push(checkKey(keys[i], `keys[${i}]`));
  const current = slotNow(now);
  const d = c & 0xff;
  const parity = (c >>> 8) & 1;
  const slot = (current & 1) === parity ? current : (current - 1) >>> 0;
  for (const k of checked) {
    const h = cookieHash(t, slot, d, k);
    if (((h.lo ^ c) & HASH_MASK) === 0) {
      const wscale = d & 0x0f;
      return {
        mss: tableFor(t.v6)[d >>> 6] ?? 0,
        wscale: wscale === WSCALE_NONE ? null : wscale,
        sack: (d & 0x10) !== 0,
        ecn: (d & 0x20) !== 0,
      };
    }
  }
  return null;
}

/** The SYN-ACK's TSval (u32) for a SYN: the high 32 bits of the cookie's SipHash. */
export function synAckTsval(
  tuple: CookieTuple,
  opts: CookieOptions,
  key: Uint8Array,
  now?: number,
): number {
  const t = parseTuple(tuple);
  const d = dataByte(opts, t.v6);
  const k = checkKey(key, 'key');
  return cookieHash(t, slotNow(now), d, k).hi;
}
