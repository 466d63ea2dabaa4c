import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MSS_TABLE_V4,
  MSS_TABLE_V6,
  cookieSlot,
  decodeCookie,
  encodeCookie,
  synAckTsval,
  type CookieOptions,
  type CookieTuple,
} from '../../lib/cookie';
import { siphash24 } from '../../lib/siphash';

/** One vector of test/vectors/cookies.json. */
interface Vector extends CookieTuple, CookieOptions {
  key: string;
  nowMs: number;
  slot: number;
  data: number;
  cookie: number;
  tsval: number;
}

interface VectorFile {
  header: { format: string; version: number; description: string; count: number };
  vectors: Vector[];
}

const FILE = JSON.parse(
  readFileSync(join(__dirname, '..', 'vectors', 'cookies.json'), 'utf8'),
) as VectorFile;
const VECTORS = FILE.vectors;

const SLOT = 65536;
const OTHER_KEY = new Uint8Array(16).fill(0xa5);
const KEY_A = Uint8Array.from({ length: 16 }, (_, i) => i);
const KEY_B = Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i);
const KEY_C = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const NOW = 1_733_011_237_000;

const unhex = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
const tupleOf = (v: Vector): CookieTuple => ({
  saddr: v.saddr,
  daddr: v.daddr,
  sport: v.sport,
  dport: v.dport,
  seq: v.seq,
});
const optsOf = (v: Vector): CookieOptions => ({ mss: v.mss, wscale: v.wscale, sack: v.sack, ecn: v.ecn });
const isV6 = (v: CookieTuple): boolean => v.saddr.includes(':');

/** The MSS index from the spec: the largest i with table[i] <= mss. */
function mssIndex(table: readonly number[], mss: number): number {
  return table.reduce((best, entry, i) => (entry <= mss ? i : best), 0);
}

/** The data byte from the spec text, computed without lib/cookie.ts. */
function specData(v: Vector): number {
  const table = isV6(v) ? MSS_TABLE_V6 : MSS_TABLE_V4;
  const ws = v.wscale === null ? 15 : Math.min(v.wscale, 14);
  return (mssIndex(table, v.mss) << 6) | (v.ecn ? 0x20 : 0) | (v.sack ? 0x10 : 0) | ws;
}

/** What decodeCookie must return for a vector: the options as the cookie carries them. */
function decoded(v: Vector): CookieOptions {
  const table = isV6(v) ? MSS_TABLE_V6 : MSS_TABLE_V4;
  return {
    mss: table[mssIndex(table, v.mss)] ?? 0,
    wscale: v.wscale === null ? null : Math.min(v.wscale, 14),
    sack: v.sack,
    ecn: v.ecn,
  };
}

describe('the vector file', () => {
  it('has a header and at least 200 vectors', () => {
    expect(FILE.header.version).toBe(1);
    expect(FILE.header.description).toMatch(/cookie/);
    expect(FILE.header.count).toBe(VECTORS.length);
    expect(VECTORS.length).toBeGreaterThanOrEqual(200);
  });

  it('covers the edges it claims to', () => {
    const has = (p: (v: Vector) => boolean): boolean => VECTORS.some(p);
    for (const v6 of [false, true]) {
      const table = v6 ? MSS_TABLE_V6 : MSS_TABLE_V4;
      for (let i = 0; i < 4; i++) {
        expect(has((v) => isV6(v) === v6 && v.data >> 6 === i && v.mss === table[i])).toBe(true);
        expect(has((v) => isV6(v) === v6 && v.data >> 6 === i && v.mss !== table[i])).toBe(true);
      }
    }
    for (const ws of [null, 0, 14, 15, 255]) expect(has((v) => v.wscale === ws)).toBe(true);
    for (const sack of [false, true]) {
      for (const ecn of [false, true]) expect(has((v) => v.sack === sack && v.ecn === ecn)).toBe(true);
    }
    for (const port of [1, 65535]) {
      expect(has((v) => v.sport === port)).toBe(true);
      expect(has((v) => v.dport === port)).toBe(true);
    }
    for (const seq of [0, 0xffffffff]) expect(has((v) => v.seq === seq)).toBe(true);
    for (const slot of [0, 1, 0xfffffffe, 0xffffffff]) expect(has((v) => v.slot === slot)).toBe(true);
    expect(has((v) => v.nowMs === 2 ** 48)).toBe(true); // the slot counter wraps
    expect(new Set(VECTORS.map((v) => v.key)).size).toBeGreaterThanOrEqual(4);
  });
});

describe.each(VECTORS.map((v, i) => ({ ...v, i })))(
  'vector $i: $saddr:$sport -> $daddr:$dport seq $seq at $nowMs',
  (v) => {
    const tuple = tupleOf(v);
    const key = unhex(v.key);
    const slotStart = v.nowMs - (v.nowMs % SLOT);

    it('encodes to the vector cookie, slot, data byte and TSval', () => {
      expect(cookieSlot(v.nowMs)).toBe(v.slot);
      expect(v.data).toBe(specData(v));
      expect(encodeCookie(tuple, optsOf(v), key, v.nowMs)).toBe(v.cookie);
      expect(v.cookie & 0xff).toBe(v.data);
      expect((v.cookie >>> 8) & 1).toBe(v.slot & 1);
      expect(synAckTsval(tuple, optsOf(v), key, v.nowMs)).toBe(v.tsval);
    });

    it('decodes in its slot and the next one, not later or earlier', () => {
      expect(decodeCookie(v.cookie, tuple, [key], v.nowMs)).toEqual(decoded(v));
      expect(decodeCookie(v.cookie, tuple, [key], v.nowMs + SLOT)).toEqual(decoded(v));
      expect(decodeCookie(v.cookie, tuple, [key], slotStart + 2 * SLOT - 1)).toEqual(decoded(v));
      expect(decodeCookie(v.cookie, tuple, [key], v.nowMs + 2 * SLOT)).toBeNull();
      expect(decodeCookie(v.cookie, tuple, [key], slotStart + 2 * SLOT)).toBeNull();
      if (v.nowMs >= SLOT) expect(decodeCookie(v.cookie, tuple, [key], v.nowMs - SLOT)).toBeNull();
    });

    it('decodes with the key as the previous key, not with another key', () => {
      expect(decodeCookie(v.cookie, tuple, [OTHER_KEY, key], v.nowMs)).toEqual(decoded(v));
      expect(decodeCookie(v.cookie, tuple, [key, OTHER_KEY], v.nowMs)).toEqual(decoded(v));
      expect(decodeCookie(v.cookie, tuple, [OTHER_KEY], v.nowMs)).toBeNull();
    });

    it('rejects each of the 32 single-bit flips of the cookie', () => {
      for (let bit = 0; bit < 32; bit++) {
        expect(decodeCookie((v.cookie ^ (1 << bit)) >>> 0, tuple, [key], v.nowMs)).toBeNull();
      }
    });

    it('is bound to the client ISN and the ports', () => {
      expect(decodeCookie(v.cookie, { ...tuple, seq: (v.seq + 1) >>> 0 }, [key], v.nowMs)).toBeNull();
      expect(decodeCookie(v.cookie, { ...tuple, sport: v.sport ^ 1 }, [key], v.nowMs)).toBeNull();
      expect(decodeCookie(v.cookie, { ...tuple, dport: v.dport ^ 1 }, [key], v.nowMs)).toBeNull();
    });
  },
);

describe('the message layout (worked examples of docs/cookie-format.md)', () => {
  it('hashes the IPv4 message byte string of the spec', () => {
    const v = VECTORS[6]; // 192.0.2.1:40000 -> 198.51.100.7:443, mss 1460, wscale 7, sack
    expect(v).toMatchObject({ saddr: '192.0.2.1', mss: 1460, wscale: 7, sack: true, ecn: false });
    if (v === undefined) return;
    const msg = unhex(
      'c0000201' + 'c6336407' + '9c40' + '01bb' + '12345678' + '847f9301' + '97' + '000000',
    );
    expect(v.slot).toBe(0x01937f84);
    const h = siphash24(unhex(v.key), msg);
    expect(h).toBe(0xed876959_4f787098n);
    expect(v.cookie).toBe((Number(h & 0xfffffe00n) | ((v.slot & 1) << 8) | v.data) >>> 0);
    expect(v.tsval).toBe(Number(h >> 32n));
  });

  it('hashes the IPv6 message byte string of the spec', () => {
    const v = VECTORS.find((x) => x.saddr === '2001:db8::1' && x.mss === 1440 && x.wscale === 7);
    expect(v).toBeDefined();
    if (v === undefined) return;
    const msg = unhex(
      '20010db8000000000000000000000001' +
        '20010db8000000010000000000000007' +
        '9c40' +
        '01bb' +
        '12345678' +
        '847f9301' +
        '97' +
        '000000',
    );
    const h = siphash24(unhex(v.key), msg);
    expect(h).toBe(0xe535e9a2_b6a29562n);
    expect(v.cookie).toBe((Number(h & 0xfffffe00n) | ((v.slot & 1) << 8) | v.data) >>> 0);
    expect(v.tsval).toBe(Number(h >> 32n));
  });
});

describe('cookieSlot', () => {
  it('is floor(ms / 65536) mod 2^32', () => {
    expect(cookieSlot(0)).toBe(0);
    expect(cookieSlot(65535)).toBe(0);
    expect(cookieSlot(65535.9)).toBe(0);
    expect(cookieSlot(65536)).toBe(1);
    expect(cookieSlot(2 ** 48 - 1)).toBe(0xffffffff);
    expect(cookieSlot(2 ** 48)).toBe(0);
    expect(cookieSlot(NOW)).toBe(Math.floor(NOW / 65536));
  });

  it('rejects what is not a time in ms, naming nowMs', () => {
    expect(() => cookieSlot(-1)).toThrow(RangeError);
    expect(() => cookieSlot(Number.NaN)).toThrow(/nowMs.*NaN/);
    expect(() => cookieSlot(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => cookieSlot(2 ** 53)).toThrow(RangeError);
    expect(() => cookieSlot('0' as unknown as number)).toThrow(TypeError);
  });
});

describe('encodeCookie and decodeCookie', () => {
  const t4: CookieTuple = { saddr: '192.0.2.1', daddr: '198.51.100.7', sport: 40000, dport: 443, seq: 7 };
  const t6: CookieTuple = { saddr: '2001:db8::1', daddr: '2001:db8::2', sport: 40000, dport: 443, seq: 7 };
  const opts: CookieOptions = { mss: 1460, wscale: 7, sack: true, ecn: false };
  const enc = (t: Partial<CookieTuple>, o: Partial<CookieOptions> = {}): number =>
    encodeCookie({ ...t4, ...t }, { ...opts, ...o }, KEY_A, NOW);

  afterEach(() => {
    vi.useRealTimers();
  });

  it('accepts one rotation and rejects two', () => {
    const c = encodeCookie(t4, opts, KEY_A, NOW);
    expect(decodeCookie(c, t4, [KEY_A], NOW)).not.toBeNull();
    expect(decodeCookie(c, t4, [KEY_B, KEY_A], NOW)).not.toBeNull();
    expect(decodeCookie(c, t4, [KEY_C, KEY_B], NOW)).toBeNull();
  });

  it('rounds the MSS down to its table and clamps the window scale to 14', () => {
    const round = (t: CookieTuple, o: Partial<CookieOptions>): CookieOptions | null =>
      decodeCookie(encodeCookie(t, { ...opts, ...o }, KEY_A, NOW), t, [KEY_A], NOW);
    expect(round(t4, { mss: 536 })?.mss).toBe(536);
    expect(round(t4, { mss: 1400 })?.mss).toBe(1300);
    expect(round(t4, { mss: 65535 })?.mss).toBe(8960);
    expect(round(t6, { mss: 1220 })?.mss).toBe(1220);
    expect(round(t6, { mss: 1439 })?.mss).toBe(1420);
    expect(round(t6, { mss: 9000 })?.mss).toBe(8940);
    expect(round(t4, { wscale: 15 })?.wscale).toBe(14);
    expect(round(t4, { wscale: 255 })?.wscale).toBe(14);
    expect(round(t4, { wscale: null })?.wscale).toBeNull();
    expect(round(t4, { wscale: 0 })?.wscale).toBe(0);
  });

  it('defaults now to Date.now()', () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
    const c = encodeCookie(t4, opts, KEY_A);
    expect(c).toBe(encodeCookie(t4, opts, KEY_A, NOW));
    expect(synAckTsval(t4, opts, KEY_A)).toBe(synAckTsval(t4, opts, KEY_A, NOW));
    expect(decodeCookie(c, t4, [KEY_A])).not.toBeNull();
    vi.setSystemTime(NOW + 2 * SLOT);
    expect(decodeCookie(c, t4, [KEY_A])).toBeNull();
  });

  it('reads every IPv6 text form of the same address alike', () => {
    const base = encodeCookie(t6, opts, KEY_A, NOW);
    for (const [saddr, daddr] of [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:DB8::2'],
      ['2001:db8:0:0:0:0:0:1', '2001:db8:0::2'],
      ['2001:db8::0:1', '2001:db8:0:0:0::2'],
      ['2001:db8::1%eth0', '2001:db8::2'],
    ] as const) {
      expect(encodeCookie({ ...t6, saddr, daddr }, opts, KEY_A, NOW)).toBe(base);
    }
    // The WHATWG URL parser is an independent IPv6 parser: its canonical form must agree.
    for (const v of VECTORS.filter((x) => isV6(x)).slice(0, 60)) {
      const canon = (a: string): string => new URL(`http://[${a}]/`).hostname.slice(1, -1);
      const t = { ...tupleOf(v), saddr: canon(v.saddr), daddr: canon(v.daddr).toUpperCase() };
      expect(encodeCookie(t, optsOf(v), unhex(v.key), v.nowMs)).toBe(v.cookie);
    }
  });

  it('accepts the unusual but valid IPv6 forms', () => {
    for (const a of ['::', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '::1.2.3.4', '1::']) {
      expect(() => enc({ saddr: a, daddr: '::1' }, { mss: 1220 })).not.toThrow();
    }
    expect(enc({ saddr: '1:2:3:4:5:6:7::', daddr: '::1' }, { mss: 1220 })).toBe(
      enc({ saddr: '1:2:3:4:5:6:7:0', daddr: '0:0:0:0:0:0:0:1' }, { mss: 1220 }),
    );
    expect(enc({ saddr: '1:2:3:4:5:6:1.2.3.4', daddr: '::1' }, { mss: 1220 })).toBe(
      enc({ saddr: '1:2:3:4:5:6:102:304', daddr: '::1' }, { mss: 1220 }),
    );
  });

  it('treats IPv4-mapped IPv6 addresses as the IPv4 addresses they name', () => {
    const base = enc({});
    expect(enc({ saddr: '::ffff:192.0.2.1', daddr: '::ffff:198.51.100.7' })).toBe(base);
    expect(enc({ saddr: '::ffff:c000:201', daddr: '0:0:0:0:0:FFFF:198.51.100.7' })).toBe(base);
    expect(enc({ saddr: '::ffff:192.0.2.1' })).toBe(base);
    // IPv4-compatible (::a.b.c.d, deprecated) is an ordinary IPv6 address.
    expect(() => enc({ saddr: '::192.0.2.1' })).toThrow(TypeError);
  });

  it('rejects malformed addresses with a TypeError naming the field and value', () => {
    for (const bad of [
      '', '1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4.5', '1.2.3.4 ', ' 1.2.3.4', '1..2.3',
      ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7', '::1.2.3',
      '1.2.3.4::', ':1::', '1::2:', 'fe80::1%', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4:5',
      'localhost', '::ffff:1.2.3.04',
    ]) {
      expect(() => enc({ saddr: bad })).toThrow(TypeError);
      expect(() => enc({ saddr: bad })).toThrow(`tuple.saddr must be an IPv4 or IPv6 address, got ${JSON.stringify(bad)}`);
    }
    expect(() => enc({ daddr: 42 as unknown as string })).toThrow(/tuple\.daddr.*42/);
  });

  it('rejects addresses of two families with a TypeError naming both', () => {
    expect(() => enc({ daddr: '2001:db8::2' })).toThrow(TypeError);
    expect(() => enc({ daddr: '2001:db8::2' })).toThrow(/tuple\.saddr and tuple\.daddr.*"192\.0\.2\.1".*"2001:db8::2"/);
    expect(() => decodeCookie(0, { ...t6, daddr: '10.0.0.1' }, [KEY_A], NOW)).toThrow(TypeError);
  });

  it('rejects bad ports and ISNs with errors naming the field and value', () => {
    for (const field of ['sport', 'dport'] as const) {
      expect(() => enc({ [field]: -1 })).toThrow(RangeError);
      expect(() => enc({ [field]: 65536 })).toThrow(new RegExp(`tuple\\.${field} .*65536`));
      expect(() => enc({ [field]: 80.5 })).toThrow(RangeError);
      expect(() => enc({ [field]: '80' as unknown as number })).toThrow(TypeError);
      expect(enc({ [field]: 0 })).toBeTypeOf('number');
      expect(enc({ [field]: 65535 })).toBeTypeOf('number');
    }
    expect(() => enc({ seq: -1 })).toThrow(/tuple\.seq .*-1/);
    expect(() => enc({ seq: 2 ** 32 })).toThrow(RangeError);
    expect(() => enc({ seq: 1n as unknown as number })).toThrow(TypeError);
    expect(() => encodeCookie(null as unknown as CookieTuple, opts, KEY_A, NOW)).toThrow(/tuple must be an object/);
  });

  it('rejects bad options with errors naming the field and value', () => {
    expect(() => enc({}, { mss: 535 })).toThrow(RangeError);
    expect(() => enc({}, { mss: 535 })).toThrow(/opts\.mss must be at least 536 for IPv4.*535/);
    expect(() => encodeCookie(t6, { ...opts, mss: 1219 }, KEY_A, NOW)).toThrow(/opts\.mss.*1220.*1219/);
    expect(() => encodeCookie(t6, { ...opts, mss: 536 }, KEY_A, NOW)).toThrow(RangeError);
    expect(() => enc({}, { mss: 65536 })).toThrow(RangeError);
    expect(() => enc({}, { mss: 1460.5 })).toThrow(/opts\.mss.*1460\.5/);
    expect(() => enc({}, { mss: '1460' as unknown as number })).toThrow(TypeError);
    expect(() => enc({}, { wscale: 256 })).toThrow(/opts\.wscale.*256/);
    expect(() => enc({}, { wscale: -1 })).toThrow(RangeError);
    expect(() => enc({}, { wscale: 7.5 })).toThrow(RangeError);
    expect(() => enc({}, { wscale: undefined as unknown as null })).toThrow(TypeError);
    expect(() => enc({}, { wscale: '7' as unknown as number })).toThrow(/opts\.wscale.*"7"/);
    expect(() => enc({}, { sack: 1 as unknown as boolean })).toThrow(/opts\.sack must be a boolean, got 1/);
    expect(() => enc({}, { ecn: 'yes' as unknown as boolean })).toThrow(/opts\.ecn.*"yes"/);
    expect(() => encodeCookie(t4, null as unknown as CookieOptions, KEY_A, NOW)).toThrow(TypeError);
  });

  it('rejects bad keys, cookies and times with errors naming the field', () => {
    expect(() => encodeCookie(t4, opts, new Uint8Array(15), NOW)).toThrow(RangeError);
    expect(() => encodeCookie(t4, opts, new Uint8Array(15), NOW)).toThrow(/key must be 16 bytes, got 15/);
    expect(() => encodeCookie(t4, opts, [...KEY_A] as unknown as Uint8Array, NOW)).toThrow(/key must be a Uint8Array/);
    expect(() => synAckTsval(t4, opts, new Uint8Array(17), NOW)).toThrow(RangeError);
    expect(() => decodeCookie(0, t4, [], NOW)).toThrow(/keys must hold 1 or 2 keys.*0/);
    expect(() => decodeCookie(0, t4, [KEY_A, KEY_B, KEY_C], NOW)).toThrow(RangeError);
    expect(() => decodeCookie(0, t4, KEY_A as unknown as Uint8Array[], NOW)).toThrow(/keys must be an array/);
    expect(() => decodeCookie(0, t4, [KEY_A, new Uint8Array(8)], NOW)).toThrow(/keys\[1\] must be 16 bytes, got 8/);
    expect(() => decodeCookie(-1, t4, [KEY_A], NOW)).toThrow(/cookie .*-1/);
    expect(() => decodeCookie(2 ** 32, t4, [KEY_A], NOW)).toThrow(RangeError);
    expect(() => decodeCookie(1.5, t4, [KEY_A], NOW)).toThrow(RangeError);
    expect(() => decodeCookie('1' as unknown as number, t4, [KEY_A], NOW)).toThrow(TypeError);
    expect(() => encodeCookie(t4, opts, KEY_A, -1)).toThrow(/now must be milliseconds.*-1/);
    expect(() => encodeCookie(t4, opts, KEY_A, Number.NaN)).toThrow(RangeError);
    expect(() => decodeCookie(0, t4, [KEY_A], '0' as unknown as number)).toThrow(/now must be a number/);
  });

  it('exports frozen MSS tables', () => {
    expect(MSS_TABLE_V4).toEqual([536, 1300, 1460, 8960]);
    expect(MSS_TABLE_V6).toEqual([1220, 1420, 1440, 8940]);
    expect(Object.isFrozen(MSS_TABLE_V4)).toBe(true);
    expect(Object.isFrozen(MSS_TABLE_V6)).toBe(true);
  });
});
