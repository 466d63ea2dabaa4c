/**
 * Bad input to every public function: wrong types, NaN, ±Infinity, negative, huge, empty,
 * strings where numbers go, keys of 15/17 bytes, holes. Each must fail with a TypeError or
 * RangeError whose message names the field, an async method by rejecting (not by throwing),
 * and the agent must still work afterwards.
 *
 * The agent's methods run in a worker inside a test namespace (an input that slipped through
 * validation would otherwise reach the host's interfaces); values JSON cannot carry travel
 * tagged (ops-hostile.mjs decodeValue). The pure functions (codec, metrics, CLI parsing) run
 * here. Last, an unprivileged process gets a PermissionError with its hint.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCli, readKeyFile } from '../../lib/cli'
import { cookieSlot, decodeCookie, encodeCookie, synAckTsval } from '../../lib/cookie'
import { STAT_NAMES } from '../../lib/layout'
import { prometheusText } from '../../lib/metrics'
import { loadHostileOps } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { NsWorker, RemoteError } from '../helpers/worker.js'

const PREFIX = 'sca-ai'
const PORT = 8080

/** Tagged values (decoded in the worker by ops-hostile.mjs decodeValue). */
const T = {
  nan: { $: 'nan' },
  inf: { $: 'inf' },
  ninf: { $: '-inf' },
  undef: { $: 'undefined' },
  sym: { $: 'symbol' },
  fn: { $: 'function' },
  big: (v: string) => ({ $: 'bigint', v }),
  u8: (length: number) => ({ $: 'u8', length }),
  sparse: (length: number, items: Record<number, unknown> = {}) => ({ $: 'sparse', length, items }),
  typed: (kind: 'i8' | 'u16' | 'clamped' | 'arraybuffer' | 'dataview' | 'buffer', length: number) => ({ $: kind, length }),
  set: (items: unknown[]) => ({ $: 'set', items }),
  throwing: { $: 'throwing' },
}

interface Outcome {
  ok: boolean
  sync?: boolean
  value?: unknown
  error?: { name: string; message: string; code?: string }
}

interface ApiCall {
  ctor: Outcome
  call?: Outcome
  usableAfter?: boolean
}

/** A bad input: what it is, the call, and the field the error must name. */
interface Case {
  what: string
  ctor?: unknown[]
  method?: 'attach' | 'detach' | 'rotateSecret'
  args?: unknown[]
  field: RegExp
  /** Error classes accepted (default TypeError or RangeError). */
  names?: string[]
}

const ports = (p: unknown): unknown[] => [{ ports: p }]

const CTOR_CASES: Case[] = [
  { what: 'no options', ctor: [], field: /options/ },
  { what: 'options null', ctor: [null], field: /options/ },
  { what: 'options a number', ctor: [8080], field: /options/ },
  { what: 'options a string', ctor: ['8080'], field: /options/ },
  { what: 'options an array', ctor: [[8080]], field: /options\.ports/ },
  { what: 'ports missing', ctor: [{}], field: /options\.ports/ },
  { what: 'ports undefined', ctor: ports(T.undef), field: /options\.ports/ },
  { what: 'ports null', ctor: ports(null), field: /options\.ports/ },
  { what: 'ports a number', ctor: ports(8080), field: /options\.ports/ },
  { what: 'ports a string', ctor: ports('8080'), field: /options\.ports/ },
  { what: 'ports a Set', ctor: ports(T.set([8080])), field: /options\.ports/ },
  { what: 'ports a Uint16Array', ctor: ports(T.typed('u16', 1)), field: /options\.ports/ },
  { what: 'ports empty', ctor: ports([]), field: /options\.ports/ },
  { what: 'port NaN', ctor: ports([T.nan]), field: /options\.ports\[0\]/ },
  { what: 'port Infinity', ctor: ports([T.inf]), field: /options\.ports\[0\]/ },
  { what: 'port -Infinity', ctor: ports([T.ninf]), field: /options\.ports\[0\]/ },
  { what: 'port -1', ctor: ports([-1]), field: /options\.ports\[0\]/ },
  { what: 'port 0', ctor: ports([0]), field: /options\.ports\[0\]/ },
  { what: 'port 65536', ctor: ports([65536]), field: /options\.ports\[0\]/ },
  { what: 'port 2^53 + 2', ctor: ports([2 ** 53 + 2]), field: /options\.ports\[0\]/ },
  { what: 'port 1e300', ctor: ports([1e300]), field: /options\.ports\[0\]/ },
  { what: 'port 80.5', ctor: ports([80.5]), field: /options\.ports\[0\]/ },
  { what: "port '80'", ctor: ports(['80']), field: /options\.ports\[0\]/ },
  { what: "port ''", ctor: ports(['']), field: /options\.ports\[0\]/ },
  { what: 'port true', ctor: ports([true]), field: /options\.ports\[0\]/ },
  { what: 'port null', ctor: ports([null]), field: /options\.ports\[0\]/ },
  { what: 'port undefined', ctor: ports([T.undef]), field: /options\.ports\[0\]/ },
  { what: 'port 80n', ctor: ports([T.big('80')]), field: /options\.ports\[0\]/ },
  { what: 'port {}', ctor: ports([{}]), field: /options\.ports\[0\]/ },
  { what: 'port [80]', ctor: ports([[80]]), field: /options\.ports\[0\]/ },
  { what: 'port a symbol', ctor: ports([T.sym]), field: /options\.ports\[0\]/ },
  { what: 'the second port bad', ctor: ports([8080, 'x']), field: /options\.ports\[1\]/ },
  { what: 'a duplicate port', ctor: ports([8080, 8081, 8080]), field: /options\.ports\[2\]/ },
  { what: '70,000 ports (duplicates)', ctor: ports(Array.from({ length: 70_000 }, (_, i) => (i % 65535) + 1)), field: /options\.ports\[65535\]/ },
  { what: 'options whose property reads throw', ctor: [T.throwing], field: /./, names: ['Error', 'TypeError', 'RangeError'] },
  { what: "destinations 'all'", ctor: [{ ports: [8080], destinations: 'all' }], field: /options\.destinations/, names: ['RangeError'] },
  { what: "destinations ''", ctor: [{ ports: [8080], destinations: '' }], field: /options\.destinations/, names: ['RangeError'] },
  { what: "destinations 'LOCAL'", ctor: [{ ports: [8080], destinations: 'LOCAL' }], field: /options\.destinations/, names: ['RangeError'] },
  { what: 'destinations null', ctor: [{ ports: [8080], destinations: null }], field: /options\.destinations/, names: ['TypeError'] },
  { what: 'destinations true', ctor: [{ ports: [8080], destinations: true }], field: /options\.destinations/, names: ['TypeError'] },
  { what: 'destinations 0', ctor: [{ ports: [8080], destinations: 0 }], field: /options\.destinations/, names: ['TypeError'] },
  { what: "destinations ['local']", ctor: [{ ports: [8080], destinations: ['local'] }], field: /options\.destinations/, names: ['TypeError'] },
]

// Holes: forEach skips them; validation must not (they once passed).
const CTOR_HOLES: Case[] = [
  { what: 'ports a sparse array of 3 holes', ctor: ports(T.sparse(3)), field: /options\.ports\[0\]/ },
  { what: 'ports [<hole>, 8080]', ctor: ports(T.sparse(2, { 1: 8080 })), field: /options\.ports\[0\]/ },
]

const IFNAME_BAD: [string, unknown][] = [
  ['undefined', T.undef],
  ['null', null],
  ['a number', 1],
  ['NaN', T.nan],
  ['an object', {}],
  ['an array', ['lo']],
  ['a function', T.fn],
  ['empty', ''],
  ['16 characters', 'a'.repeat(16)],
  ['a huge string', 'x'.repeat(100_000)],
  ["containing '/'", 'a/b'],
  ['containing a space', 'a b'],
  ['containing a tab', 'a\tb'],
  ['containing a newline', 'lo\n'],
]

function methodCases(method: 'attach' | 'detach'): Case[] {
  return IFNAME_BAD.map(([what, v]) => ({ what: `${method}(${what})`, ctor: ports([PORT]), method, args: [v], field: /interface/ }))
}

const ATTACH_OPTION_CASES: Case[] = [
  { what: 'attach(dev, null)', ctor: ports([PORT]), method: 'attach', args: ['@dev', null], field: /options/ },
  { what: "attach(dev, 'tcx')", ctor: ports([PORT]), method: 'attach', args: ['@dev', 'tcx'], field: /options/ },
  { what: 'attach(dev, 1)', ctor: ports([PORT]), method: 'attach', args: ['@dev', 1], field: /options/ },
  { what: "attach(dev, { mode: 'xdp' })", ctor: ports([PORT]), method: 'attach', args: ['@dev', { mode: 'xdp' }], field: /options\.mode/ },
  { what: "attach(dev, { mode: 'TCX' })", ctor: ports([PORT]), method: 'attach', args: ['@dev', { mode: 'TCX' }], field: /options\.mode/ },
  { what: 'attach(dev, { mode: 1 })', ctor: ports([PORT]), method: 'attach', args: ['@dev', { mode: 1 }], field: /options\.mode/ },
  { what: 'attach(dev, { mode: NaN })', ctor: ports([PORT]), method: 'attach', args: ['@dev', { mode: T.nan }], field: /options\.mode/ },
  { what: "attach(dev, { mode: '' })", ctor: ports([PORT]), method: 'attach', args: ['@dev', { mode: '' }], field: /options\.mode/ },
]

const KEY_CASES: Case[] = (
  [
    ['null', null],
    ['a number', 16],
    ['NaN', T.nan],
    ['a 16-character string', '0123456789abcdef'],
    ['a 32-digit hex string', '00112233445566778899aabbccddeeff'],
    ['an empty string', ''],
    ['an array of 16 numbers', Array.from({ length: 16 }, (_, i) => i)],
    ['an object', {}],
    ['0 bytes', T.u8(0)],
    ['1 byte', T.u8(1)],
    ['15 bytes', T.u8(15)],
    ['17 bytes', T.u8(17)],
    ['32 bytes', T.u8(32)],
    ['1 MiB', T.u8(2 ** 20)],
    ['a Buffer of 15 bytes', T.typed('buffer', 15)],
    ['an Int8Array of 16', T.typed('i8', 16)],
    ['a Uint16Array of 8 (16 bytes)', T.typed('u16', 8)],
    ['a Uint8ClampedArray of 16', T.typed('clamped', 16)],
    ['an ArrayBuffer of 16', T.typed('arraybuffer', 16)],
    ['a DataView of 16', T.typed('dataview', 16)],
    ['a bigint', T.big('123456789')],
    ['a symbol', T.sym],
  ] as [string, unknown][]
).map(([what, v]) => ({ what: `rotateSecret(${what})`, ctor: ports([PORT]), method: 'rotateSecret' as const, args: [v], field: /key/ }))

describeKernel('bad input to every public function', () => {
  let env: KernelEnv
  registerCleanup()
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-ai-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await loadHostileOps(env.server)
  })

  const call = (c: Case): Promise<ApiCall> => {
    const args = (c.args ?? []).map((a) => (a === '@dev' ? env.topo.server.dev : a))
    return env.server.call<ApiCall>('hostile.apiCall', { ctor: c.ctor, method: c.method, args }, 60_000)
  }

  function expectNamedError(o: Outcome | undefined, c: Case, ctx: string): void {
    expect(o?.ok, `${ctx}: must fail, got ${JSON.stringify(o)}`).toBe(false)
    const e = o!.error!
    expect(c.names ?? ['TypeError', 'RangeError'], `${ctx}: ${e.name}: ${e.message}`).toContain(e.name)
    expect(e.message, `${ctx}: the message names the field`).toMatch(c.field)
  }

  describe('new SynCookieAgent(options)', () => {
    for (const c of CTOR_CASES) {
      it(c.what, async () => {
        const r = await call(c)
        expectNamedError(r.ctor, c, c.what)
      })
    }
    // Array.prototype.forEach skips holes: { ports: new Array(3) } once built an agent that
    // protected nothing, and [<hole>, 8080] passed as [8080] (found by this test).
    for (const c of CTOR_HOLES) {
      it(c.what, async () => {
        const r = await call(c)
        expectNamedError(r.ctor, c, c.what)
      })
    }
  })

  describe('attach(ifname, options) / detach(ifname)', () => {
    for (const c of [...methodCases('attach'), ...methodCases('detach'), ...ATTACH_OPTION_CASES]) {
      it(`${c.what} rejects (not throws), naming the field; the agent still works`, async () => {
        const r = await call(c)
        expect(r.ctor.ok).toBe(true)
        expectNamedError(r.call, c, c.what)
        expect(r.call?.sync, `${c.what} threw synchronously instead of rejecting`).toBe(false)
        expect(r.usableAfter, 'stats() after the bad call').toBe(true)
      })
    }
    // BUG (issue 5, reported; lib/agent.ts validateIfname/describe): attach('x' × 100,000) rejects
    // with a message of 100,079 characters: describe() quotes the whole string.
    it('attach(a huge string) rejects naming the interface with a short message', async () => {
      const c: Case = { what: 'attach(huge)', ctor: ports([PORT]), method: 'attach', args: ['x'.repeat(100_000)], field: /interface/ }
      const r = await call(c)
      expectNamedError(r.call, c, c.what)
      expect(r.call?.error?.message.length).toBeLessThan(1000)
    })
    // BUG (issue 5, reported; lib/agent.ts validateMode): `mode ?? 'auto'` takes { mode: null } for
    // 'auto', and an array passes as the options object.
    for (const [what, args] of [['{ mode: null }', ['@dev', { mode: null }]], ['[]', ['@dev', []]]] as const) {
      it(`attach(dev, ${what}) rejects naming options`, async () => {
        const c: Case = { what, ctor: ports([PORT]), method: 'attach', args: [...args], field: /options/ }
        const r = await call(c)
        expectNamedError(r.call, c, c.what)
      })
    }
    it('attach(a 15-character name of multi-byte characters, 30 bytes) rejects naming the interface', async () => {
      const c: Case = { what: 'attach(é × 15)', ctor: ports([PORT]), method: 'attach', args: ['é'.repeat(15)], field: /é{15}|interface/ }
      const r = await call(c)
      expectNamedError(r.call, { ...c, names: ['TypeError', 'RangeError', 'InterfaceNotFoundError'] }, c.what)
    })
    // A NUL in the name once passed validation and if_nametoindex() read the C string up to it:
    // attach('lo\0anything') attached to lo (found by this test).
    it("attach('lo\\0x') rejects naming the interface instead of attaching to lo", async () => {
      const c: Case = { what: "attach('lo\\0x')", ctor: ports([PORT]), method: 'attach', args: ['lo\u0000x'], field: /interface/ }
      const r = await call(c)
      expectNamedError(r.call, c, c.what)
    })
  })

  describe('rotateSecret(key)', () => {
    for (const c of KEY_CASES) {
      it(`${c.what} rejects (not throws), naming key; the agent still works`, async () => {
        const r = await call(c)
        expectNamedError(r.call, c, c.what)
        expect(r.call?.sync, 'threw synchronously').toBe(false)
        expect(r.usableAfter).toBe(true)
      })
    }
    // BUG (issue 5, reported; lib/agent.ts validateKey): a key passed as a bigint or a number is
    // echoed by describe(): "key must be a Uint8Array of 16 bytes, got 17778916176024...".
    const bigSecret = '0xa1b2c3d4e5f60718293a4b5c6d7e8f90'
    for (const [what, v, leak] of [['a bigint', T.big(bigSecret), String(BigInt(bigSecret)).slice(0, 12)], ['a number', 0x1b2c3d4e5f607, String(0x1b2c3d4e5f607).slice(0, 8)]] as const) {
      it(`rotateSecret(${what} holding a secret) rejects naming key without echoing it`, async () => {
        const r = await call({ what, ctor: ports([PORT]), method: 'rotateSecret', args: [v], field: /^key / })
        expectNamedError(r.call, { what, field: /^key /, ctor: [] }, what)
        expect(r.call?.error?.message).not.toContain(leak)
      })
    }
    it('rotateSecret() and rotateSecret(16 bytes) resolve', async () => {
      for (const args of [[], [T.u8(16)], [T.typed('buffer', 16)], [T.undef]]) {
        const r = await call({ what: 'ok', ctor: ports([PORT]), method: 'rotateSecret', args, field: /./ })
        expect(r.call, JSON.stringify(args)).toMatchObject({ ok: true })
      }
    })
  })

  describe('codec: encodeCookie / synAckTsval / decodeCookie / cookieSlot', () => {
    const key = new Uint8Array(16).fill(7)
    const tuple = { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 40000, dport: 8080, seq: 1 }
    const opts = { mss: 1460, wscale: 7, sack: true, ecn: false }
    const bad: [string, unknown, RegExp][] = []
    const tupleBad: [string, unknown][] = [
      ['saddr', 1], ['saddr', ''], ['saddr', '256.0.0.1'], ['saddr', '01.2.3.4'], ['saddr', '1.2.3'], ['saddr', '::g'], ['saddr', '1:2:3:4:5:6:7:8:9'],
      ['daddr', null], ['daddr', '2001:db8::1'], // mixed family
      ['sport', NaN], ['sport', -1], ['sport', 65536], ['sport', '80'], ['sport', 1.5], ['sport', Infinity],
      ['dport', undefined], ['dport', 2 ** 53],
      ['seq', -1], ['seq', 2 ** 32], ['seq', NaN], ['seq', '1'], ['seq', 1n],
    ]
    for (const [field, v] of tupleBad) bad.push([`tuple.${field} = ${String(v)}`, { ...tuple, [field]: v }, new RegExp(`tuple\\.(${field}|saddr)`)])
    const optsBad: [string, unknown][] = [
      ['mss', 535], ['mss', 0], ['mss', -1], ['mss', NaN], ['mss', 65536], ['mss', '1460'], ['mss', undefined],
      ['wscale', -1], ['wscale', 256], ['wscale', '7'], ['wscale', 1.5], ['wscale', NaN], ['wscale', undefined],
      ['sack', 1], ['sack', 'true'], ['sack', undefined], ['ecn', 0], ['ecn', null],
    ]
    for (const fn of ['encodeCookie', 'synAckTsval'] as const) {
      const f = fn === 'encodeCookie' ? encodeCookie : synAckTsval
      const run = (t: unknown, o: unknown, k: unknown, now?: unknown): unknown => (f as (...a: unknown[]) => unknown)(t, o, k, now)
      it(`${fn}: bad tuple, opts, key and now throw naming the field`, () => {
        for (const [what, t, field] of bad) expect(() => run(t, opts, key, 0), what).toThrow(field)
        for (const t of [null, undefined, 'tuple', 5, []]) expect(() => run(t, opts, key, 0), String(t)).toThrow(/tuple/)
        for (const [field, v] of optsBad) expect(() => run(tuple, { ...opts, [field]: v }, key, 0), `opts.${field} = ${String(v)}`).toThrow(new RegExp(`opts\\.${field}`))
        for (const o of [null, 'opts', 1]) expect(() => run(tuple, o, key, 0), String(o)).toThrow(/opts/)
        for (const k of [null, 'k', new Uint8Array(15), new Uint8Array(17), new Uint8Array(0), [...key], key.buffer]) {
          expect(() => run(tuple, opts, k, 0), `key ${String(k)}`).toThrow(/key/)
        }
        for (const now of [NaN, -1, Infinity, -Infinity, '0', 2 ** 53, 1n, null]) expect(() => run(tuple, opts, key, now), `now ${String(now)}`).toThrow(/now/)
      })
    }
    it('decodeCookie: bad cookie, tuple, keys and now throw naming the field', () => {
      const c = encodeCookie(tuple, opts, key, 0)
      for (const cookie of [NaN, -1, 2 ** 32, 1.5, '1', null, undefined, Infinity]) {
        expect(() => decodeCookie(cookie as number, tuple, [key], 0), `cookie ${String(cookie)}`).toThrow(/cookie/)
      }
      for (const [what, t, field] of bad) expect(() => decodeCookie(c, t as typeof tuple, [key], 0), what).toThrow(field)
      const keysBad: [string, unknown, RegExp][] = [
        ['not an array', key, /keys/], ['[]', [], /keys/], ['3 keys', [key, key, key], /keys/], ['null', null, /keys/],
        ['[15 bytes]', [new Uint8Array(15)], /keys\[0\]/], ['[key, 17 bytes]', [key, new Uint8Array(17)], /keys\[1\]/],
        ['[string]', ['00'.repeat(16)], /keys\[0\]/], ['[undefined]', [undefined], /keys\[0\]/],
      ]
      for (const [what, keys, field] of keysBad) expect(() => decodeCookie(c, tuple, keys as Uint8Array[], 0), `keys ${what}`).toThrow(field)
      for (const now of [NaN, -1, Infinity, '0']) expect(() => decodeCookie(c, tuple, [key], now as number), `now ${String(now)}`).toThrow(/now/)
      expect(decodeCookie(c, tuple, [key], 0)).not.toBeNull()
    })
    // keys.map() skips holes: a sparse keys array once reached SipHash with `undefined` and
    // failed with an internal TypeError that named no field (found by this test).
    it('decodeCookie with a sparse keys array throws naming keys[0]', () => {
      const c = encodeCookie(tuple, opts, key, 0)
      // eslint-disable-next-line no-sparse-arrays
      expect(() => decodeCookie(c, tuple, [, key] as Uint8Array[], 0)).toThrow(/keys\[0\]/)
    })
    // A key passed as hex text or a bigint is still the secret: the error once quoted it.
    it('a key given as a string or a bigint: the error names key, never its content', () => {
      const secret = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
      const c = encodeCookie(tuple, opts, key, 0)
      const calls: [string, (k: unknown) => unknown, RegExp][] = [
        ['encodeCookie', (k) => encodeCookie(tuple, opts, k as Uint8Array, 0), /^key /],
        ['synAckTsval', (k) => synAckTsval(tuple, opts, k as Uint8Array, 0), /^key /],
        ['decodeCookie keys[0]', (k) => decodeCookie(c, tuple, [k as Uint8Array], 0), /^keys\[0\] /],
        ['decodeCookie keys[1]', (k) => decodeCookie(c, tuple, [key, k as Uint8Array], 0), /^keys\[1\] /],
      ]
      for (const [what, f, field] of calls) {
        for (const k of [secret, Buffer.from(secret, 'hex').toString('latin1'), BigInt(`0x${secret}`), 0x1b2c3d4e5f607]) {
          let e: Error | undefined
          try {
            f(k)
          } catch (err) {
            e = err as Error
          }
          expect(e, `${what}(${typeof k})`).toBeInstanceOf(TypeError)
          expect(e?.message, what).toMatch(field)
          for (const leak of [secret.slice(0, 12), BigInt(`0x${secret}`).toString().slice(0, 12), '1b2c3d4e5f607', String(0x1b2c3d4e5f607)]) {
            expect(e?.message.toLowerCase(), `${what}(${typeof k}) echoes the key`).not.toContain(leak)
          }
        }
      }
    })
    it('keys: a Buffer of 16 works; other views and ArrayBuffers of 16 bytes are TypeErrors naming their type', () => {
      const c = encodeCookie(tuple, opts, Buffer.from(key), 0)
      expect(c).toBe(encodeCookie(tuple, opts, key, 0))
      expect(synAckTsval(tuple, opts, Buffer.from(key), 0)).toBe(synAckTsval(tuple, opts, key, 0))
      expect(decodeCookie(c, tuple, [Buffer.from(key)], 0)).toMatchObject({ mss: 1460, wscale: 7, sack: true })
      const views: [unknown, RegExp][] = [
        [new Int8Array(16), /Int8Array\(16 bytes\)/], [new Uint16Array(8), /Uint16Array\(16 bytes\)/],
        [new Uint8ClampedArray(16), /Uint8ClampedArray\(16 bytes\)/], [new DataView(new ArrayBuffer(16)), /DataView\(16 bytes\)/],
        [new ArrayBuffer(16), /ArrayBuffer\(16 bytes\)/], [Buffer.alloc(15), /key must be 16 bytes, got 15/],
      ]
      for (const [k, message] of views) {
        expect(() => encodeCookie(tuple, opts, k as Uint8Array, 0), String(message)).toThrow(message)
        expect(() => encodeCookie(tuple, opts, k as Uint8Array, 0)).toThrow(k instanceof Buffer ? RangeError : TypeError)
        expect(() => decodeCookie(c, tuple, [k as Uint8Array], 0), String(message)).toThrow(/keys\[0\]/)
      }
    })
    it('a huge string where an address or a number goes: the message names the field and stays short', () => {
      const huge = '1'.repeat(1_000_000)
      const c = encodeCookie(tuple, opts, key, 0)
      const calls: [string, () => unknown, RegExp][] = [
        ['tuple.saddr', () => encodeCookie({ ...tuple, saddr: huge }, opts, key, 0), /^tuple\.saddr .*\(1000000 characters\)$/],
        ['tuple.sport', () => synAckTsval({ ...tuple, sport: huge } as unknown as typeof tuple, opts, key, 0), /^tuple\.sport .*\(1000000 characters\)$/],
        ['opts.mss', () => encodeCookie(tuple, { ...opts, mss: huge } as unknown as typeof opts, key, 0), /^opts\.mss /],
        ['cookie', () => decodeCookie(huge as unknown as number, tuple, [key], 0), /^cookie /],
        ['now', () => decodeCookie(c, tuple, [key], huge as unknown as number), /^now /],
        ['nowMs', () => cookieSlot(huge as unknown as number), /^nowMs /],
      ]
      for (const [what, f, field] of calls) {
        let message = ''
        try {
          f()
        } catch (err) {
          message = (err as Error).message
        }
        expect(message, what).toMatch(field)
        expect(message.length, what).toBeLessThan(200)
      }
    })
    it('decodeCookie: more bad now and keys', () => {
      const c = encodeCookie(tuple, opts, key, 0)
      for (const now of [-Infinity, 2 ** 53, 1n, null, {}]) expect(() => decodeCookie(c, tuple, [key], now as number), `now ${String(now)}`).toThrow(/^now /)
      // eslint-disable-next-line no-sparse-arrays
      expect(() => decodeCookie(c, tuple, [key, ,] as Uint8Array[], 0)).toThrow(/^keys\[1\] /)
      expect(() => decodeCookie(c, tuple, new Array(2) as Uint8Array[], 0)).toThrow(/^keys\[0\] /)
      expect(() => decodeCookie(c, tuple, new Array(3) as Uint8Array[], 0)).toThrow(/^keys must hold 1 or 2 keys/)
      expect(() => decodeCookie(c, tuple, 'k' as unknown as Uint8Array[], 0)).toThrow(/^keys must be an array/)
      // the IPv6 table starts at 1220: an IPv4 MSS is not encodable for an IPv6 tuple
      const t6 = { ...tuple, saddr: '2001:db8::2', daddr: '2001:db8::1' }
      expect(() => encodeCookie(t6, { ...opts, mss: 1219 }, key, 0)).toThrow(/^opts\.mss must be at least 1220 for IPv6/)
      expect(() => encodeCookie(t6, { ...opts, mss: 1219 }, key, 0)).toThrow(RangeError)
      expect(() => encodeCookie(t6, { ...opts, mss: 1220 }, key, 0)).not.toThrow()
    })
    it('cookieSlot: NaN, negative, infinite, huge, strings throw naming nowMs', () => {
      for (const v of [NaN, -1, Infinity, -Infinity, 2 ** 53, '0', null, undefined, 1n]) {
        expect(() => cookieSlot(v as number), String(v)).toThrow(/nowMs/)
      }
    })
  })

  describe('prometheusText(stats, labels)', () => {
    const stats = Object.fromEntries(STAT_NAMES.map((n) => [n, 1n])) as Parameters<typeof prometheusText>[0]
    it('bad label names throw naming the label', () => {
      for (const k of ['', '0abc', 'a-b', 'a b', 'é']) expect(() => prometheusText(stats, { [k]: 'v' }), JSON.stringify(k)).toThrow(/label/)
    })
    it('label values are escaped', () => {
      expect(prometheusText(stats, { node: 'a"b\\c\nd' })).toContain('node="a\\"b\\\\c\\nd"')
    })
    // A missing or non-object stats, a counter that is not a non-negative bigint, a label value
    // that is not a string, or labels = null once failed with internal TypeErrors ("Cannot read
    // properties of ...", "v.replace is not a function") or, worse, printed garbage such as
    // `syncookie_agent_syn_received_total -5` (found by this test).
    const statsBad: [string, unknown, unknown, RegExp, string][] = [
      ['stats null', null, {}, /^stats /, 'TypeError'],
      ['stats undefined', undefined, {}, /^stats /, 'TypeError'],
      ['stats a number', 5, {}, /^stats /, 'TypeError'],
      ['stats a string', 'synReceived 1', {}, /^stats /, 'TypeError'],
      ['stats {}', {}, {}, /stats\.synReceived/, 'TypeError'],
      ['stats missing a counter', { synReceived: 1n }, {}, /stats\.synAckSent/, 'TypeError'],
      ['a counter -5n', { ...stats, synReceived: -5n }, {}, /stats\.synReceived.*-5n/, 'RangeError'],
      ['a counter NaN', { ...stats, synReceived: NaN }, {}, /stats\.synReceived.*NaN/, 'TypeError'],
      ['a counter 5 (a number)', { ...stats, synReceived: 5 }, {}, /stats\.synReceived/, 'TypeError'],
      ['a counter 1.5', { ...stats, passOther: 1.5 }, {}, /stats\.passOther/, 'TypeError'],
      ["a counter 'x'", { ...stats, synReceived: 'x' }, {}, /stats\.synReceived/, 'TypeError'],
      ['a counter undefined', { ...stats, ackAccepted: undefined }, {}, /stats\.ackAccepted/, 'TypeError'],
      ['a counter null', { ...stats, ackAccepted: null }, {}, /stats\.ackAccepted/, 'TypeError'],
      ['labels null', stats, null, /^labels /, 'TypeError'],
      ['labels a string', stats, 'node="a"', /^labels /, 'TypeError'],
      ['labels a number', stats, 1, /^labels /, 'TypeError'],
      ['labels an array', stats, [['node', 'a']], /^labels /, 'TypeError'],
      ['a label value 5', stats, { node: 5 }, /labels\.node/, 'TypeError'],
      ['a label value null', stats, { node: null }, /labels\.node/, 'TypeError'],
      ['a label value undefined', stats, { node: undefined }, /labels\.node/, 'TypeError'],
      ['a label value an object', stats, { node: {} }, /labels\.node/, 'TypeError'],
      ['a label name starting with __ (reserved)', stats, { __name__: 'x' }, /label.*"__name__"/, 'RangeError'],
    ]
    for (const [what, s, l, field, name] of statsBad) {
      it(`${what} throws a ${name} naming the field`, () => {
        const f = (): string => prometheusText(s as typeof stats, l as Record<string, string>)
        expect(f).toThrow(field)
        expect(f).toThrow(name === 'TypeError' ? TypeError : RangeError)
      })
    }
    it('a huge bad label name or counter string: the message stays short', () => {
      expect(() => prometheusText(stats, { ['-'.repeat(100_000)]: 'v' })).toThrow(/^labels: "-{64}"\.\.\. \(100000 characters\) is not a valid/)
      expect(() => prometheusText({ ...stats, synReceived: 'x'.repeat(100_000) } as unknown as typeof stats)).toThrow(/^stats\.synReceived .*\(100000 characters\)$/)
    })
    it('labels undefined is no labels; a counter above 2^64 prints exactly', () => {
      const big = 2n ** 70n + 1n
      const text = prometheusText({ ...stats, synReceived: big }, undefined)
      expect(text).toContain(`syncookie_agent_syn_received_total ${big}\n`)
      expect(text).not.toContain('{')
    })
  })

  describe('CLI: parseCli(argv) / readKeyFile(path)', () => {
    const base = ['-i', 'eth0', '-p', '8080']
    const cliBad: [string, string[], RegExp][] = [
      ['no interface', ['-p', '8080'], /--interface/],
      ['no port', ['-i', 'eth0'], /--port/],
      ['port -1', ['-i', 'eth0', '-p', '-1'], /port|-1/],
      ['port 80.5', ['-i', 'eth0', '-p', '80.5'], /--port/],
      ['port NaN', ['-i', 'eth0', '-p', 'NaN'], /--port/],
      ['port empty', ['-i', 'eth0', '-p', ''], /--port/],
      ['--rotate NaN', [...base, '--rotate', 'NaN'], /--rotate/],
      ['--rotate -1', [...base, '--rotate', '-1'], /--rotate/],
      ['--rotate 0', [...base, '--rotate', '0'], /--rotate/],
      ['--rotate Infinity', [...base, '--rotate', 'Infinity'], /--rotate/],
      ['--rotate 1e400', [...base, '--rotate', '1e400'], /--rotate/],
      ['--rotate x', [...base, '--rotate', 'x'], /--rotate/],
      ['--stats -5', [...base, '--stats', '-5'], /--stats/],
      ['--metrics without port', [...base, '--metrics', 'localhost'], /--metrics/],
      ['--metrics port 70000', [...base, '--metrics', ':70000'], /--metrics/],
      ['--rotate with --key-file', [...base, '--rotate', '5', '--key-file', '/k'], /--rotate|--key-file/],
      ['an unknown flag', [...base, '--bogus'], /bogus/],
      ['-p without a value', ['-i', 'eth0', '-p'], /--port/],
      ['port 1e3', ['-i', 'eth0', '-p', '1e3'], /--port/],
      ['port 0x50', ['-i', 'eth0', '-p', '0x50'], /--port/],
      ["port ' 80'", ['-i', 'eth0', '-p', ' 80'], /--port/],
      ['the same port twice', [...base, '-p', '8080'], /--port 8080 is given twice/],
      ['the same port twice, spelled 08080', [...base, '-p', '08080'], /--port 8080 is given twice/],
      ['the same interface twice', [...base, '-i', 'eth0'], /--interface "eth0" is given twice/],
      ['interface empty', ['-i', '', '-p', '80'], /--interface/],
      ['interface of 16 characters', ['-i', 'a'.repeat(16), '-p', '80'], /--interface/],
      ["interface containing '/'", ['-i', 'a/b', '-p', '80'], /--interface/],
      ['interface containing a NUL', ['-i', 'lo\u0000x', '-p', '80'], /--interface/],
      // setInterval() turns more than 2^31 - 1 ms into 1 ms: --rotate 3000000 rotated every ms
      ['--rotate 3000000 (35 days, over the timer limit)', [...base, '--rotate', '3000000'], /--rotate/],
      ['--rotate 1e-9', [...base, '--rotate', '1e-9'], /--rotate/],
      ["--rotate ' '", [...base, '--rotate', ' '], /--rotate/],
      ['--stats 0', [...base, '--stats', '0'], /--stats/],
      ['--stats 1e10', [...base, '--stats', '1e10'], /--stats/],
      ["--stats ''", [...base, '--stats', ''], /--stats/],
      ['--metrics :0', [...base, '--metrics', ':0'], /--metrics/],
      ['--metrics host:', [...base, '--metrics', 'localhost:'], /--metrics/],
      ['--metrics [::1] (no port)', [...base, '--metrics', '[::1]'], /--metrics/],
      ['--metrics :http', [...base, '--metrics', ':http'], /--metrics/],
      ["--key-file ''", [...base, '--key-file', ''], /--key-file/],
      ['a positional', [...base, 'extra'], /extra|positional/i],
    ]
    for (const [what, argv, field] of cliBad) {
      it(`parseCli: ${what} throws naming the flag`, () => {
        expect(() => parseCli(argv)).toThrow(field)
      })
    }
    // parseCli once checked --port only against /^\d+$/: 0 and 65536 passed and failed later in
    // the constructor with a message about options.ports, not --port (found by this test).
    for (const p of ['0', '00', '65536', '99999999999']) {
      it(`parseCli: --port ${p} throws a RangeError naming --port`, () => {
        expect(() => parseCli(['-i', 'eth0', '-p', p])).toThrow(/--port must be a port number 1\.\.65535/)
        expect(() => parseCli(['-i', 'eth0', '-p', p])).toThrow(RangeError)
      })
    }
    it('parseCli: argv not an array of strings throws a TypeError naming argv', () => {
      for (const argv of [undefined, null, '-i eth0 -p 80', 80, {}]) expect(() => parseCli(argv as unknown as string[]), String(argv)).toThrow(/^argv must be an array/)
      expect(() => parseCli(['-i', 'eth0', '-p', 80] as unknown as string[])).toThrow(/argv\[3\] must be a string, got number/)
      expect(() => parseCli(['-i', 'eth0', '-p', '80', null] as unknown as string[])).toThrow(TypeError)
    })
    it('parseCli: a huge bad value is named, and the message stays short', () => {
      for (const argv of [['-i', 'eth0', '-p', '9'.repeat(100_000)], ['-i', 'x'.repeat(100_000), '-p', '80'], [...base, '--rotate', '1'.repeat(100_000)]]) {
        let message = ''
        try {
          parseCli(argv)
        } catch (err) {
          message = (err as Error).message
        }
        expect(message).toMatch(/^--(port|interface|rotate) .*\(100000 characters\)$/)
        expect(message.length).toBeLessThan(200)
      }
    })
    it('parseCli: the edges of every range are accepted', () => {
      expect(parseCli(['-i', 'a'.repeat(15), '-p', '1', '-p', '65535', '--rotate', '0.001', '--stats', '2147483', '--metrics', ':65535'])).toMatchObject({
        interfaces: ['a'.repeat(15)], ports: [1, 65535], rotateSeconds: 0.001, statsSeconds: 2147483, metrics: { host: '', port: 65535 },
      })
      expect(parseCli([...base, '--rotate', '2147483', '--metrics', '[::1]:1'])).toMatchObject({ rotateSeconds: 2147483, metrics: { host: '::1', port: 1 } })
      expect(parseCli([...base, '--metrics', '::1:9464'])).toMatchObject({ metrics: { host: '::1', port: 9464 } })
    })
    it('readKeyFile: missing file, a directory, 31 or 33 digits, not hex, 16 raw bytes: errors that never echo the content', () => {
      const write = (name: string, content: string | Buffer): string => {
        const p = path.join(dir, name)
        writeFileSync(p, content, { mode: 0o600 })
        return p
      }
      const secret = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
      const files: [string, string][] = [
        ['missing', path.join(dir, 'nope')],
        ['31 digits', write('k31', secret.slice(0, 31))],
        ['33 digits', write('k33', `${secret}0`)],
        ['not hex', write('knothex', `${secret.slice(0, 30)}zz`)],
        ['16 raw bytes', write('kraw', Buffer.from(secret, 'hex').toString('latin1'))],
        ['the key twice', write('k2', `${secret}\n${secret}\n`)],
      ]
      for (const [what, p] of files) {
        let message = ''
        try {
          readKeyFile(p)
        } catch (err) {
          message = (err as Error).message
        }
        expect(message, `${what}: must throw`).not.toBe('')
        expect(message, `${what}: names the file`).toContain(p)
        expect(message.toLowerCase(), `${what}: does not echo the key`).not.toContain(secret.slice(0, 12))
      }
      for (const v of [undefined, null, {}, true, Buffer.from(files[1][1]), new URL(`file://${files[1][1]}`)]) {
        expect(() => readKeyFile(v as unknown as string), String(v)).toThrow(TypeError)
        expect(() => readKeyFile(v as unknown as string), String(v)).toThrow(/^path must be a file path string/)
      }
      expect(() => readKeyFile('')).toThrow(RangeError)
      expect(() => readKeyFile('')).toThrow(/^path must be a file path, got ""/)
      expect(Buffer.from(readKeyFile(write('kgood', ` ${secret.toUpperCase()}\n`))).toString('hex')).toBe(secret)
    })
    // readKeyFile(n) with a number once read file descriptor n (readFileSync takes fds):
    // readKeyFile(0) blocked on stdin. A number is not a path (found by this test).
    it('readKeyFile(a number) throws a TypeError naming path instead of reading that fd', () => {
      for (const n of [0, 2, 2 ** 30, NaN]) {
        expect(() => readKeyFile(n as unknown as string), String(n)).toThrow(TypeError)
        expect(() => readKeyFile(n as unknown as string), String(n)).toThrow(/^path must be a file path string, got number/)
      }
    })
    // A directory once gave Node's bare "EISDIR: illegal operation on a directory, read",
    // which names no file: the CLI printed it without the path (found by this test).
    it('readKeyFile(a directory) names the path', () => {
      expect(() => readKeyFile(dir)).toThrow(`${dir} must be a key file, got a directory`)
    })
    // readFileSync read /dev/zero until memory ran out and blocked on a FIFO with no writer.
    it('readKeyFile: a device, a FIFO and a huge file fail at once, naming the path, echoing nothing', () => {
      const fifo = path.join(dir, 'fifo')
      execFileSync('mkfifo', [fifo])
      const huge = path.join(dir, 'khuge')
      const secret = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
      writeFileSync(huge, `${secret}\n`.repeat(200))
      const cases: [string, RegExp][] = [
        ['/dev/zero', /^\/dev\/zero must be a regular key file/],
        ['/dev/null', /^\/dev\/null must be a regular key file/],
        [fifo, /must be a regular key file/],
        [huge, /must hold a 16-byte key as 32 hex digits, got more than 4096 bytes/],
      ]
      for (const [p, message] of cases) {
        let e: Error | undefined
        try {
          readKeyFile(p)
        } catch (err) {
          e = err as Error
        }
        expect(e?.message, p).toMatch(message)
        expect(e?.message, p).toContain(p)
        expect(e?.message.toLowerCase(), p).not.toContain(secret.slice(0, 12))
      }
    })
  })

  it('an unprivileged process: attach rejects with PermissionError, its capability and its hint', async () => {
    const w = await NsWorker.start(env.topo.server.ns, { unprivileged: { uid: 65534, gid: 65534 } })
    try {
      expect((await w.call<{ uid: number }>('ping')).uid).toBe(65534)
      await w.createAgent({ ports: [PORT] })
      // what needs no privilege still works
      await w.rotateSecret()
      expect((await w.stats()).synReceived).toBe(0n)
      let e: RemoteError | undefined
      try {
        await w.attach(env.topo.server.dev)
      } catch (err) {
        e = err as RemoteError
      }
      expect(e?.name, `${e?.name}: ${e?.message}`).toBe('PermissionError')
      expect(e?.props.isBpfError).toBe(true)
      expect(e?.props.capability).toMatch(/^CAP_(BPF|NET_ADMIN)$/)
      expect(e?.props.hint, 'the hint says what to do').toMatch(/run as root, or grant CAP_BPF/)
      expect(e?.message, 'the message carries the hint').toContain(String(e?.props.hint))
      expect(e?.message).toContain(String(e?.props.capability))
      expect(e?.code).toMatch(/^E(PERM|ACCES)$/)
    } finally {
      w.kill()
    }
  })
})
