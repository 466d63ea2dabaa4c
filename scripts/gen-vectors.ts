/**
 * Writes test/vectors/cookies.json, the reference vectors of docs/cookie-format.md, from a
 * fixed seed: the same file on every run.
 *
 *   npx tsx scripts/gen-vectors.ts           # (re)write the file
 *   npx tsx scripts/gen-vectors.ts --check   # exit 1 if the file differs from what this writes
 *
 * Regenerate only when the format changes (and bump FORMAT_VERSION): the file is the contract
 * with the BPF program and with any other implementation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  cookieSlot,
  decodeCookie,
  encodeCookie,
  synAckTsval,
  type CookieOptions,
  type CookieTuple,
} from '../lib/cookie';

const FORMAT_VERSION = 1;
const SEED = 0x5ca1ab1e;
const RANDOM_VECTORS = 200;
// This script's own path: works whether it runs as CommonJS or as an ES module.
const OUT = join(dirname(process.argv[1] ?? 'scripts/gen-vectors.ts'), '..', 'test', 'vectors', 'cookies.json');

/** One reference vector, as stored in the file. */
interface Vector extends CookieTuple, CookieOptions {
  key: string;
  nowMs: number;
  slot: number;
  data: number;
  cookie: number;
  tsval: number;
}

/** mulberry32: a small deterministic PRNG, u32 per call. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const next = prng(SEED);
const below = (n: number): number => next() % n;
const pick = <T>(items: readonly T[]): T => {
  const item = items[below(items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
};
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const randomKey = (): Uint8Array => Uint8Array.from({ length: 16 }, () => next() & 0xff);

/** RFC 5952 text of 16 address bytes: lowercase, no leading zeros, longest zero run as "::". */
function formatV6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  let best = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const text = groups.map((g) => g.toString(16));
  if (best < 0) return text.join(':');
  return `${text.slice(0, best).join(':')}::${text.slice(best + bestLen).join(':')}`;
}

const randomV4 = (): string => [next() >>> 24, next() >>> 24, next() >>> 24, next() >>> 24].join('.');
function randomV6(): string {
  const bytes = Uint8Array.from({ length: 16 }, () => next() & 0xff);
  if (below(3) === 0) bytes.fill(0, 4 + 2 * below(4), 12); // a run of zero groups
  if (below(2) === 0) bytes.set([0x20, 0x01, 0x0d, 0xb8]); // 2001:db8::/32
  return formatV6(bytes);
}

const KEY_SEQ = Uint8Array.from({ length: 16 }, (_, i) => i);
const KEY_ZERO = new Uint8Array(16);
const KEY_FF = new Uint8Array(16).fill(0xff);
const KEYS = [KEY_SEQ, KEY_ZERO, KEY_FF, randomKey(), randomKey(), randomKey(), randomKey()];

const SLOT = 65536;
const TAI_2024_12_01 = 1_733_011_200_000 + 37_000; // UTC midnight + 37 s TAI offset
const NOW_EDGES = [
  0,
  SLOT - 1,
  SLOT,
  2 * SLOT - 1,
  0xfffffffe * SLOT,
  0xffffffff * SLOT,
  2 ** 48 - 1, // last ms of slot 0xffffffff
  2 ** 48, // slot wraps to 0
  2 ** 48 + SLOT,
  TAI_2024_12_01,
];
const MSS_V4 = [536, 537, 1299, 1300, 1400, 1459, 1460, 1500, 8959, 8960, 9000, 65535];
const MSS_V6 = [1220, 1221, 1280, 1419, 1420, 1439, 1440, 1500, 8939, 8940, 9000, 65535];
const WSCALES: readonly (number | null)[] = [null, 0, 1, 7, 9, 14, 15, 255];
const PORTS = [0, 1, 22, 80, 443, 1023, 1024, 32768, 65534, 65535];
const SEQS = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** The fixed edge cases: each row varies one thing from a plain connection. */
function edgeCases(): Array<[CookieTuple, CookieOptions, Uint8Array, number]> {
  const v4: CookieTuple = { saddr: '192.0.2.1', daddr: '198.51.100.7', sport: 40000, dport: 443, seq: 0x12345678 };
  const v6: CookieTuple = { saddr: '2001:db8::1', daddr: '2001:db8:0:1::7', sport: 40000, dport: 443, seq: 0x12345678 };
  const plain: CookieOptions = { mss: 1460, wscale: 7, sack: true, ecn: false };
  const rows: Array<[CookieTuple, CookieOptions, Uint8Array, number]> = [];
  for (const t of [v4, v6]) {
    const mssList = t === v4 ? MSS_V4 : MSS_V6;
    for (const mss of mssList) rows.push([t, { ...plain, mss }, KEY_SEQ, TAI_2024_12_01]);
    for (const wscale of WSCALES) rows.push([t, { ...plain, wscale }, KEY_SEQ, TAI_2024_12_01]);
    for (const sack of [false, true]) {
      for (const ecn of [false, true]) rows.push([t, { ...plain, sack, ecn }, KEY_SEQ, TAI_2024_12_01]);
    }
    for (const [sport, dport] of [[1, 65535], [65535, 1], [0, 0], [65535, 65535]] as const) {
      rows.push([{ ...t, sport, dport }, plain, KEY_SEQ, TAI_2024_12_01]);
    }
    for (const seq of SEQS) rows.push([{ ...t, seq }, plain, KEY_SEQ, TAI_2024_12_01]);
    for (const key of KEYS.slice(0, 4)) rows.push([t, plain, key, TAI_2024_12_01]);
    for (const now of NOW_EDGES) rows.push([t, plain, KEY_SEQ, now]);
  }
  const addresses: Array<[string, string]> = [
    ['0.0.0.0', '255.255.255.255'],
    ['10.0.0.2', '10.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['fe80::1', 'fe80::2'],
    ['::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8::ff00:42:8329'],
  ];
  for (const [saddr, daddr] of addresses) {
    const mss = saddr.includes(':') ? 1440 : 1460;
    rows.push([{ ...v4, saddr, daddr }, { ...plain, mss }, KEY_SEQ, TAI_2024_12_01]);
  }
  return rows;
}

/** Random combinations of every field. */
function randomCases(): Array<[CookieTuple, CookieOptions, Uint8Array, number]> {
  const rows: Array<[CookieTuple, CookieOptions, Uint8Array, number]> = [];
  for (let i = 0; i < RANDOM_VECTORS; i++) {
    const v6 = (i & 1) === 1;
    const tuple: CookieTuple = {
      saddr: v6 ? randomV6() : randomV4(),
      daddr: v6 ? randomV6() : randomV4(),
      sport: below(4) === 0 ? pick(PORTS) : next() & 0xffff,
      dport: below(4) === 0 ? pick(PORTS) : next() & 0xffff,
      seq: below(8) === 0 ? pick(SEQS) : next(),
    };
    const opts: CookieOptions = {
      mss: below(2) === 0 ? pick(v6 ? MSS_V6 : MSS_V4) : (v6 ? 1220 : 536) + below(9000),
      wscale: pick(WSCALES),
      sack: below(2) === 0,
      ecn: below(2) === 0,
    };
    const nowMs = below(8) === 0 ? pick(NOW_EDGES) : TAI_2024_12_01 + next() * 1000 + below(1000);
    rows.push([tuple, opts, pick(KEYS), nowMs]);
  }
  return rows;
}

/** Builds one vector and checks that it behaves as the unit test expects. */
function vector(tuple: CookieTuple, opts: CookieOptions, key: Uint8Array, nowMs: number): Vector {
  const cookie = encodeCookie(tuple, opts, key, nowMs);
  const other = new Uint8Array(16).fill(0xa5);
  const fail = (what: string): never => {
    throw new Error(`vector ${JSON.stringify(tuple)} at ${nowMs}: ${what}`);
  };
  if (decodeCookie(cookie, tuple, [key], nowMs + SLOT) === null) fail('not accepted in the next slot');
  if (decodeCookie(cookie, tuple, [key], nowMs + 2 * SLOT) !== null) fail('accepted two slots later');
  if (decodeCookie(cookie, tuple, [other], nowMs) !== null) fail('accepted with another key');
  for (let bit = 0; bit < 32; bit++) {
    if (decodeCookie((cookie ^ (1 << bit)) >>> 0, tuple, [key], nowMs) !== null) fail(`bit ${bit} flip accepted`);
  }
  return {
    ...tuple,
    ...opts,
    key: hex(key),
    nowMs,
    slot: cookieSlot(nowMs),
    data: cookie & 0xff,
    cookie,
    tsval: synAckTsval(tuple, opts, key, nowMs),
  };
}

const vectors = [...edgeCases(), ...randomCases()].map(([t, o, k, n]) => vector(t, o, k, n));
const header = {
  format: 'syncookie-agent SYN cookie vectors',
  version: FORMAT_VERSION,
  description:
    'Reference vectors for docs/cookie-format.md. Each vector is a SYN (saddr/sport = client, ' +
    'seq = client ISN) with its options (mss, wscale: null = no window scale option, sack, ecn), ' +
    'the 16-byte SipHash key in hex, the CLOCK_TAI time nowMs, and the results: slot = ' +
    'floor(nowMs / 65536) mod 2^32, data = the option byte, cookie = the SYN-ACK ISN (u32), ' +
    'tsval = the SYN-ACK TSval (u32, high half of the hash). Generated by scripts/gen-vectors.ts.',
  seed: SEED,
  count: vectors.length,
};
// One vector per line: the file stays readable and diffs stay small.
const text =
  `{\n "header": ${JSON.stringify(header, null, 2).replace(/\n/g, '\n ')},\n "vectors": [\n` +
  `${vectors.map((v) => `  ${JSON.stringify(v)}`).join(',\n')}\n ]\n}\n`;

if (process.argv.includes('--check')) {
  const current = readFileSync(OUT, 'utf8');
  if (current !== text) {
    console.error(`${OUT} differs from what scripts/gen-vectors.ts generates`);
    process.exit(1);
  }
  console.log(`${OUT}: ${vectors.length} vectors, up to date`);
} else {
  writeFileSync(OUT, text);
  console.log(`wrote ${vectors.length} vectors to ${OUT}`);
}
