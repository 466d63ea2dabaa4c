import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { NativeModule, NativeTcFilterInfo } from '../../lib/native'

// lib/orphans.ts's rule over a scripted /proc: a program is an orphan only when every
// process's fd table could be read and none holds it. The kernel case (root, kill -9) is
// test/kernel/runtime-crash.test.ts; an unreadable fd table (EACCES: hidepid, another uid, an
// agent without CAP_SYS_PTRACE next to a non-dumpable process) is hard to stage there.

/** pid -> its fds (fd -> prog id), or an errno code for readdir of /proc/<pid>/fd */
const procs = new Map<string, Map<string, number> | string>()

function fsError(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code })
}

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const fd = (p: string) => /^\/proc\/(\d+)\/(fd|fdinfo)\/(\d+)$/.exec(p)
  const table = (pid: string) => {
    const t = procs.get(pid)
    if (t === undefined) throw fsError('ENOENT', `/proc/${pid}`)
    if (typeof t === 'string') throw fsError(t, `/proc/${pid}/fd`)
    return t
  }
  return {
    ...fs,
    readdirSync: ((p: string) => {
      if (p === '/proc') return [...procs.keys(), 'self', 'sys']
      const m = /^\/proc\/(\d+)\/fd$/.exec(p)
      if (m) return [...table(m[1]!).keys()]
      return fs.readdirSync(p)
    }) as typeof fs.readdirSync,
    readlinkSync: ((p: string) => {
      const m = fd(p)
      if (!m) return fs.readlinkSync(p)
      if (!table(m[1]!).has(m[3]!)) throw fsError('ENOENT', p)
      return 'anon_inode:bpf-prog'
    }) as typeof fs.readlinkSync,
    readFileSync: ((p: string, ...rest: unknown[]) => {
      const m = fd(p)
      if (!m || m[2] !== 'fdinfo') return (fs.readFileSync as (...a: unknown[]) => unknown)(p, ...rest)
      const id = table(m[1]!).get(m[3]!)
      if (id === undefined) throw fsError('ENOENT', p)
      return `pos:\t0\nflags:\t02000002\nprog_type:\t3\nprog_id:\t${id}\n`
    }) as typeof fs.readFileSync,
  }
})

const { heldProgramIds, removeOrphanFilters, PROGRAM_NAME } = await import('../../lib/orphans')

function filter(progId: number, priority: number, progName = PROGRAM_NAME): NativeTcFilterInfo {
  return { priority, handle: 1, protocol: 0x0300, kind: 'bpf', progId, progName }
}

function fakeNative(ingress: NativeTcFilterInfo[]) {
  const detached: number[] = []
  const native = {
    tcFilters: (_ifindex: number, side: string) => (side === 'ingress' ? ingress.filter((f) => !detached.includes(f.priority)) : []),
    tcDetach: (_ifindex: number, priority: number) => void detached.push(priority),
  } as unknown as NativeModule
  return { native, detached }
}

beforeEach(() => {
  procs.clear()
})

describe('orphan filters', () => {
  it('a program no readable process holds is an orphan; one that a process holds is not', () => {
    procs.set('100', new Map([['3', 41], ['4', 42]]))
    procs.set('200', new Map([['7', 43]]))
    expect(heldProgramIds(new Set([42, 43, 44]))).toEqual(new Set([42, 43]))
  })

  it('a process that exits while /proc is read (ENOENT) is skipped', () => {
    procs.set('100', 'ENOENT')
    procs.set('200', new Map([['7', 43]]))
    expect(heldProgramIds(new Set([43, 44]))).toEqual(new Set([43]))
  })

  it('one fd table that cannot be read (EACCES) makes every candidate held: nothing is removed', () => {
    procs.set('100', new Map([['3', 41]]))
    procs.set('150', 'EACCES')
    expect(heldProgramIds(new Set([42, 43]))).toEqual(new Set([42, 43]))
    const { native, detached } = fakeNative([filter(42, 1), filter(43, 2), filter(99, 3)])
    const sweep = removeOrphanFilters(native, 2, 99)
    expect(sweep.removed).toEqual([])
    expect(detached).toEqual([])
    expect(sweep.remaining).toBe(3)
  })

  it('removes the orphans only: not our own filter, not a held one, not another program\'s', () => {
    procs.set('100', new Map([['3', 42]]))
    const other = filter(50, 4, 'tc_other_prog')
    const { native, detached } = fakeNative([filter(42, 1), filter(43, 2), filter(99, 3), other])
    const sweep = removeOrphanFilters(native, 2, 99)
    expect(sweep.removed.map((f) => f.progId)).toEqual([43])
    expect(detached).toEqual([2])
    expect(sweep.remaining).toBe(3)
  })
})
