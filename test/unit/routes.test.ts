import { afterEach, describe, expect, it, vi } from 'vitest'
import type { NativeModule, NativeProgram, NativeRoute } from '../../lib/native'
import { routeKey, RouteMirror, RTN } from '../../lib/routes'

// The policy of lib/routes.ts over a scripted rtnetlink: what the BPF map must hold after a
// dump, events, a lost-events resync and failed writes. test/kernel/routes.test.ts runs the
// same against the kernel's routes.

const ENOBUFS = 105

function v4(dst: string, dstLen: number, type: number, extra: Partial<NativeRoute> = {}): NativeRoute {
  return { add: true, family: 4, dst: Buffer.from(dst.split('.').map(Number)), dstLen, srcLen: 0, tos: 0, type, table: 255, ifindex: 2, priority: 0, ...extra }
}

function v6(hex: string, dstLen: number, type: number, extra: Partial<NativeRoute> = {}): NativeRoute {
  return { add: true, family: 6, dst: Buffer.from(hex, 'hex'), dstLen, srcLen: 0, tos: 0, type, table: 255, ifindex: 2, priority: 0, ...extra }
}

const del = (r: NativeRoute): NativeRoute => ({ ...r, add: false })

/** A fake addon and program: dumps answer from `dumps` in order, the map is a Map of hex keys. */
function fake(dumps: NativeRoute[][]) {
  // the LPM trie ('routes') holds every prefix; 'hosts' the one-address ones again
  const maps: Record<string, Map<string, number>> = { routes: new Map(), hosts: new Map() }
  const map = maps.routes
  let onEvents: ((routes: NativeRoute[], errno: number) => void) | null = null
  let closed = 0
  let dumpCalls = 0
  const gates: (() => void)[] = []
  let failWrites = false
  const native = {
    routeDump: vi.fn(async (types: readonly number[]) => {
      expect([...types].sort()).toEqual([RTN.LOCAL, RTN.BROADCAST, RTN.ANYCAST, RTN.MULTICAST].sort())
      const routes = dumps[Math.min(dumpCalls++, dumps.length - 1)]
      await new Promise<void>((resolve) => gates.push(resolve))
      return routes
    }),
    routeEvents: vi.fn((_types: readonly number[], cb: (routes: NativeRoute[], errno: number) => void) => {
      onEvents = cb
      return { close: () => void closed++ }
    }),
  } as unknown as NativeModule
  const program = {
    mapUpdate: (name: string, key: Uint8Array, value: Uint8Array) => {
      if (failWrites) throw Object.assign(new Error('bpf_map_update_elem: Argument list too long (errno 7)'), { errno: 7 })
      maps[name]!.set(Buffer.from(key).toString('hex'), Buffer.from(value).readUInt32LE(0))
    },
    mapDelete: (name: string, key: Uint8Array) => {
      if (!maps[name]!.delete(Buffer.from(key).toString('hex'))) throw Object.assign(new Error('ENOENT'), { errno: 2 })
    },
  } as unknown as NativeProgram
  return {
    native,
    program,
    map,
    /** The value in the LPM trie for a route's prefix, undefined when absent; the hash must agree. */
    at: (r: NativeRoute) => {
      const hex = routeKey(r.family, r.dst, r.dstLen).toString('hex')
      const host = r.dstLen === (r.family === 4 ? 32 : 128)
      expect(maps.hosts!.get(hex), `hosts map for ${hex}`).toBe(host ? maps.routes!.get(hex) : undefined)
      return maps.routes!.get(hex)
    },
    /** The maps that hold a route's prefix. */
    mapsOf: (r: NativeRoute) => Object.keys(maps).filter((m) => maps[m]!.has(routeKey(r.family, r.dst, r.dstLen).toString('hex'))),
    hostCount: () => maps.hosts!.size,
    event: (routes: NativeRoute[], errno = 0) => onEvents!(routes, errno),
    /** Lets the oldest pending dump return. */
    release: async () => {
      gates.shift()!()
      await new Promise((r) => setImmediate(r))
    },
    pendingDumps: () => gates.length,
    closed: () => closed,
    failWrites: (on: boolean) => void (failWrites = on),
  }
}

/** A started mirror and `changes`: [usable, localNets] at each onChange() call. */
async function started(f: ReturnType<typeof fake>) {
  const changes: [boolean, boolean][] = []
  const mirror: RouteMirror = new RouteMirror(f.native, f.program, () => changes.push([mirror.usable, mirror.localNets]))
  const p = mirror.start()
  await new Promise((r) => setImmediate(r))
  await f.release()
  await p
  return { mirror, changes }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('routeKey', () => {
  it('maps IPv4 into ::ffff:0:0/96 and counts its prefix from there', () => {
    expect(routeKey(4, Buffer.from([192, 0, 2, 1]), 32).toString('hex')).toBe('80000000' + '00000000000000000000ffffc0000201')
    expect(routeKey(4, Buffer.from([0, 0, 0, 0]), 0).toString('hex')).toBe('60000000' + '00000000000000000000ffff00000000')
  })

  it('clears the bits past the prefix, so one prefix is one key', () => {
    expect(routeKey(4, Buffer.from([10, 1, 2, 3]), 8).toString('hex')).toBe('68000000' + '00000000000000000000ffff0a000000')
    expect(routeKey(4, Buffer.from([10, 255, 2, 3]), 12)).toEqual(routeKey(4, Buffer.from([10, 240, 0, 0]), 12))
    const a = Buffer.from('20010db8000000000000000000000001', 'hex')
    expect(routeKey(6, a, 64).toString('hex')).toBe('40000000' + '20010db8000000000000000000000000')
    expect(routeKey(6, a, 128).subarray(4)).toEqual(a)
  })
})

describe('RouteMirror', () => {
  it('fills the map from the dump, then says it is usable', async () => {
    const local = v4('192.0.2.1', 32, RTN.LOCAL)
    const bcast = v4('192.0.2.255', 32, RTN.BROADCAST)
    const mcast = v6('ff000000000000000000000000000000', 8, RTN.MULTICAST)
    const sourceSpecific = v6('20010db8000000000000000000000000', 64, RTN.LOCAL, { srcLen: 48 })
    const f = fake([[local, bcast, mcast, sourceSpecific]])
    const { mirror, changes } = await started(f)
    expect(f.at(local)).toBe(RTN.LOCAL)
    expect(f.at(bcast)).toBe(RTN.BROADCAST)
    expect(f.at(mcast)).toBe(RTN.MULTICAST)
    expect(f.map.size).toBe(3) // the source-specific route says nothing about a destination alone
    // every prefix in the LPM trie, one address in the hash as well
    expect([f.mapsOf(local), f.mapsOf(bcast), f.mapsOf(mcast)]).toEqual([['routes', 'hosts'], ['routes', 'hosts'], ['routes']])
    expect(mirror.usable).toBe(true)
    expect(changes).toEqual([[true, false]])
  })

  it('applies the events of the dump\'s time over it, in order', async () => {
    const a = v4('198.51.100.1', 32, RTN.LOCAL)
    const b = v4('198.51.100.2', 32, RTN.LOCAL)
    const c = v4('198.51.100.3', 32, RTN.LOCAL)
    const f = fake([[a, b]])
    const mirror = new RouteMirror(f.native, f.program, () => undefined)
    const p = mirror.start()
    await new Promise((r) => setImmediate(r))
    // while the dump runs: b deleted (the dump may still list it), c added (it may not)
    f.event([del(b), c])
    expect(f.map.size).toBe(0)
    await f.release()
    await p
    expect([f.at(a), f.at(b), f.at(c)]).toEqual([RTN.LOCAL, undefined, RTN.LOCAL])
    // and live events after it
    f.event([del(a), v4('198.51.100.4', 32, RTN.LOCAL)])
    expect(f.at(a)).toBeUndefined()
    expect(f.at(v4('198.51.100.4', 32, RTN.LOCAL))).toBe(RTN.LOCAL)
  })

  it('keeps a prefix while any route for it is left; local wins over broadcast', async () => {
    const onDev2 = v4('203.0.113.1', 32, RTN.LOCAL)
    const onDev3 = v4('203.0.113.1', 32, RTN.LOCAL, { ifindex: 3 })
    const bcastVrf = v4('203.0.113.1', 32, RTN.BROADCAST, { table: 10 })
    const f = fake([[onDev2, onDev3, bcastVrf]])
    await started(f)
    expect(f.at(onDev2)).toBe(RTN.LOCAL)
    f.event([del(onDev2)])
    expect(f.at(onDev2)).toBe(RTN.LOCAL)
    f.event([del(onDev3)])
    expect(f.at(onDev2)).toBe(RTN.BROADCAST)
    f.event([del(bcastVrf)])
    expect(f.map.size).toBe(0)
    expect(f.hostCount()).toBe(0)
  })

  it('a replaced route (ip route replace: only the new one is announced) takes the old one\'s place', async () => {
    const local = v4('203.0.113.5', 32, RTN.LOCAL)
    const f = fake([[local]])
    await started(f)
    f.event([{ ...local, type: RTN.BROADCAST }])
    expect(f.at(local)).toBe(RTN.BROADCAST)
    f.event([del({ ...local, type: RTN.BROADCAST })])
    expect(f.at(local)).toBeUndefined()
  })

  it('rebuilds the map from a new dump when events were lost (ENOBUFS)', async () => {
    const kept = v4('192.0.2.1', 32, RTN.LOCAL)
    const gone = v4('192.0.2.9', 32, RTN.LOCAL)
    const added = v6('20010db8000000000000000000000009', 128, RTN.LOCAL)
    const f = fake([[kept, gone], [kept, added]])
    const { mirror, changes } = await started(f)
    f.event([], ENOBUFS)
    expect(f.pendingDumps()).toBe(1)
    // the old copy stays in place until the new dump is in
    expect(f.at(gone)).toBe(RTN.LOCAL)
    await f.release()
    expect([f.at(kept), f.at(gone), f.at(added)]).toEqual([RTN.LOCAL, undefined, RTN.LOCAL])
    expect(mirror.usable).toBe(true)
    expect(changes).toEqual([[true, false], [true, false]])
  })

  it('a second overrun during a resync supersedes the first dump', async () => {
    const a = v4('192.0.2.1', 32, RTN.LOCAL)
    const b = v4('192.0.2.2', 32, RTN.LOCAL)
    const f = fake([[a], [a], [b]])
    await started(f)
    f.event([], ENOBUFS)
    f.event([], ENOBUFS)
    expect(f.pendingDumps()).toBe(2)
    await f.release() // the superseded dump: ignored
    expect(f.at(a)).toBe(RTN.LOCAL)
    await f.release()
    expect([f.at(a), f.at(b)]).toEqual([undefined, RTN.LOCAL])
  })

  it('a failed write makes the map unusable, and a rebuild a second later usable again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const a = v4('192.0.2.1', 32, RTN.LOCAL)
    const b = v4('192.0.2.2', 32, RTN.LOCAL)
    const f = fake([[a], [a, b]])
    const { mirror, changes } = await started(f)
    f.failWrites(true)
    f.event([b])
    expect(mirror.usable).toBe(false)
    expect(changes).toEqual([[true, false], [false, false]])
    f.failWrites(false)
    expect(f.pendingDumps()).toBe(0)
    vi.advanceTimersByTime(1000)
    expect(f.pendingDumps()).toBe(1)
    await f.release()
    expect(f.at(b)).toBe(RTN.LOCAL)
    expect(mirror.usable).toBe(true)
    expect(changes).toEqual([[true, false], [false, false], [true, false]])
  })

  it('says when a local prefix other than 127.0.0.0/8 exists (AnyIP): the program must look in the trie', async () => {
    const loopback = v4('127.0.0.0', 8, RTN.LOCAL, { ifindex: 1 })
    const anyIp = v4('203.0.113.0', 24, RTN.LOCAL, { ifindex: 1 })
    const anyIp6 = v6('20010db8010000000000000000000000', 48, RTN.LOCAL, { ifindex: 1 })
    const f = fake([[loopback, v6('ff000000000000000000000000000000', 8, RTN.MULTICAST)]])
    const { mirror, changes } = await started(f)
    expect(f.mapsOf(loopback)).toEqual(['routes'])
    expect(mirror.localNets).toBe(false)
    f.event([anyIp])
    expect(mirror.localNets).toBe(true)
    f.event([anyIp6])
    f.event([del(anyIp)])
    expect(mirror.localNets).toBe(true)
    f.event([del(anyIp6)])
    expect(mirror.localNets).toBe(false)
    expect(changes).toEqual([[true, false], [true, true], [true, false]])
  })

  it('rejects start() when the first dump fails, and close() stops the events', async () => {
    const f = fake([[]])
    ;(f.native.routeDump as unknown as ReturnType<typeof vi.fn>).mockRejectedValueOnce(
      Object.assign(new Error('RTM_GETROUTE: Operation not permitted (errno 1)'), { errno: 1, op: 'RTM_GETROUTE' }),
    )
    const mirror = new RouteMirror(f.native, f.program, () => undefined)
    await expect(mirror.start()).rejects.toMatchObject({ op: 'RTM_GETROUTE' })
    mirror.close()
    mirror.close()
    expect(f.closed()).toBe(1)
    f.event([v4('192.0.2.1', 32, RTN.LOCAL)])
    expect(f.map.size).toBe(0)
  })
})
