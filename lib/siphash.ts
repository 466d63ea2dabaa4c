/**
 * SipHash-2-4 (Aumasson & Bernstein, 2012) over a byte string: the reference
 * algorithm with the standard 16-byte key (k0 = little-endian bytes 0..7,
 * k1 = little-endian bytes 8..15) and a 64-bit output.
 *
 * The 64-bit lanes are kept as pairs of unsigned 32-bit halves so that a short
 * message costs a fraction of a microsecond; `siphash24` wraps the result in a
 * bigint for callers that want one number.
 */

/** A SipHash-2-4 output: the u64 as its low and high unsigned 32-bit halves. */
export interface SipHash64 {
  /** Bits 31..0 of the hash. */
  lo: number;
  /** Bits 63..32 of the hash. */
  hi: number;
}

// State v0..v3, each lane as (low, high) unsigned 32-bit halves.
let v0l = 0;
let v0h = 0;
let v1l = 0;
let v1h = 0;
let v2l = 0;
let v2h = 0;
let v3l = 0;
let v3h = 0;

/** Runs `n` SipRounds on the module state. */
function sipRounds(n: number): void {
  let a0l = v0l;
  let a0h = v0h;
  let a1l = v1l;
  let a1h = v1h;
  let a2l = v2l;
  let a2h = v2h;
  let a3l = v3l;
  let a3h = v3h;
  let lo: number;
  let t: number;
  for (let r = 0; r < n; r++) {
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    lo = (a0l + a1l) >>> 0;
    a0h = (a0h + a1h + (lo < a0l ? 1 : 0)) >>> 0;
    a0l = lo;
    t = ((a1h << 13) | (a1l >>> 19)) >>> 0;
    a1l = ((a1l << 13) | (a1h >>> 19)) >>> 0;
    a1h = t;
    a1l = (a1l ^ a0l) >>> 0;
    a1h = (a1h ^ a0h) >>> 0;
    t = a0l;
    a0l = a0h;
    a0h = t;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    lo = (a2l + a3l) >>> 0;
    a2h = (a2h + a3h + (lo < a2l ? 1 : 0)) >>> 0;
    a2l = lo;
    t = ((a3h << 16) | (a3l >>> 16)) >>> 0;
    a3l = ((a3l << 16) | (a3h >>> 16)) >>> 0;
    a3h = t;
    a3l = (a3l ^ a2l) >>> 0;
    a3h = (a3h ^ a2h) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    lo = (a0l + a3l) >>> 0;
    a0h = (a0h + a3h + (lo < a0l ? 1 : 0)) >>> 0;
    a0l = lo;
    t = ((a3h << 21) | (a3l >>> 11)) >>> 0;
    a3l = ((a3l << 21) | (a3h >>> 11)) >>> 0;
    a3h = t;
    a3l = (a3l ^ a0l) >>> 0;
    a3h = (a3h ^ a0h) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    lo = (a2l + a1l) >>> 0;
    a2h = (a2h + a1h + (lo < a2l ? 1 : 0)) >>> 0;
    a2l = lo;
    t = ((a1h << 17) | (a1l >>> 15)) >>> 0;
    a1l = ((a1l << 17) | (a1h >>> 15)) >>> 0;
    a1h = t;
    a1l = (a1l ^ a2l) >>> 0;
    a1h = (a1h ^ a2h) >>> 0;
    t = a2l;
    a2l = a2h;
    a2h = t;
  }
  v0l = a0l;
  v0h = a0h;
  v1l = a1l;
  v1h = a1h;
  v2l = a2l;
  v2h = a2h;
  v3l = a3l;
  v3h = a3h;
}

/** Absorbs one message word m = (ml, mh): v3 ^= m, two SipRounds, v0 ^= m. */
function compress(ml: number, mh: number): void {
  v3l = (v3l ^ ml) >>> 0;
  v3h = (v3h ^ mh) >>> 0;
  sipRounds(2);
  v0l = (v0l ^ ml) >>> 0;
  v0h = (v0h ^ mh) >>> 0;
}

/** Throws unless `key` is a 16-byte Uint8Array and `msg` a Uint8Array. */
function checkArgs(key: unknown, msg: unknown): void {
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(`key must be a Uint8Array of 16 bytes, got ${typeof key}`);
  }
  if (key.length !== 16) {
    throw new RangeError(`key must be 16 bytes, got ${key.length} bytes`);
  }
  if (!(msg instanceof Uint8Array)) {
    throw new TypeError(`msg must be a Uint8Array, got ${typeof msg}`);
  }
}

/** SipHash-2-4 of `msg` under the 16-byte `key`, as the low and high u32 halves of the u64. */
export function siphash24Halves(key: Uint8Array, msg: Uint8Array): SipHash64 {
  checkArgs(key, msg);
  const kv = new DataView(key.buffer, key.byteOffset, 16);
  const k0l = kv.getUint32(0, true);
  const k0h = kv.getUint32(4, true);
  const k1l = kv.getUint32(8, true);
  const k1h = kv.getUint32(12, true);
  // "somepseudorandomlygeneratedbytes"
  v0l = (k0l ^ 0x70736575) >>> 0;
  v0h = (k0h ^ 0x736f6d65) >>> 0;
  v1l = (k1l ^ 0x6e646f6d) >>> 0;
  v1h = (k1h ^ 0x646f7261) >>> 0;
  v2l = (k0l ^ 0x6e657261) >>> 0;
  v2h = (k0h ^ 0x6c796765) >>> 0;
  v3l = (k1l ^ 0x79746573) >>> 0;
  v3h = (k1h ^ 0x74656462) >>> 0;

  const len = msg.length;
  const mv = new DataView(msg.buffer, msg.byteOffset, len);
  const end = len - (len % 8);
  for (let i = 0; i < end; i += 8) {
    compress(mv.getUint32(i, true), mv.getUint32(i + 4, true));
  }
  // Last word: the 0..7 remaining bytes, little-endian, and (len mod 256) in the top byte.
  let ml = 0;
  let mh = (len & 0xff) << 24;
  for (let i = end; i < len; i++) {
    const b = mv.getUint8(i);
    const shift = (i - end) * 8;
    if (shift < 32) {
      ml |= b << shift;
    } else {
      mh |= b << (shift - 32);
    }
  }
  compress(ml >>> 0, mh >>> 0);

  v2l = (v2l ^ 0xff) >>> 0;
  sipRounds(4);
  return {
    lo: (v0l ^ v1l ^ v2l ^ v3l) >>> 0,
    hi: (v0h ^ v1h ^ v2h ^ v3h) >>> 0,
  };
}

/** SipHash-2-4 of `msg` under the 16-byte `key`, as an unsigned 64-bit bigint. */
export function siphash24(key: Uint8Array, msg: Uint8Array): bigint {
  const { lo, hi } = siphash24Halves(key, msg);
  return (BigInt(hi) << 32n) | BigInt(lo);
}
