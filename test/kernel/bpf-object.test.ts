/**
 * openObject(): any BPF object file through the addon (bench/ loads its anchor programs with
 * it). Lifecycle as for Program: close twice, use after close, errors with errno/op/log.
 */
import path from 'node:path'
import { expect, it } from 'vitest'
import { describeKernel } from '../helpers/kernel.js'
import { loadNative, type NativeErrnoError } from '../../lib/native'

const ANCHORS = path.resolve(__dirname, '../../build/anchors.bpf.o')

async function rejection(p: Promise<unknown>): Promise<NativeErrnoError> {
  try {
    await p
  } catch (err) {
    return err as NativeErrnoError
  }
  throw new Error('expected a rejection')
}

describeKernel('openObject (BpfObject)', () => {
  it('loads every program of an object and test-runs one by name', async () => {
    const obj = await loadNative().openObject(ANCHORS)
    try {
      expect(obj).toBeInstanceOf(loadNative().BpfObject)
      expect(obj.progNames()).toEqual(['noop', 'gen4', 'gen6', 'check4', 'check6'])
      for (const name of obj.progNames()) expect(obj.progFd(name)).toBeGreaterThan(2)
      const frame = Buffer.alloc(64)
      const r = await obj.testRun('noop', frame, 10, 0)
      expect(r.retval).toBe(0)
      expect(r.data.length).toBe(0)
      expect(r.durationNs).toBeGreaterThan(0)
      // gen4 refuses a frame that is not IPv4/TCP: TC_ACT_UNSPEC (-1 as u32)
      expect((await obj.testRun('gen4', frame, 1, 0)).retval).toBe(0xffffffff)
      expect(() => obj.progFd('nope')).toThrow(expect.objectContaining({ errno: 2, code: 'ENOENT', op: 'bpf_object__find_program_by_name' }))
    } finally {
      obj.close()
    }
  })

  it('closes idempotently and then refuses every call with ERR_CLOSED', async () => {
    const obj = await loadNative().openObject(ANCHORS)
    obj.close()
    obj.close()
    expect(() => obj.progNames()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
    expect(() => obj.progFd('noop')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
    expect(() => obj.testRun('noop', Buffer.alloc(64), 1, 0)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
  })

  it('rejects a missing or invalid file with errno, op and the libbpf log', async () => {
    const missing = await rejection(loadNative().openObject('/nonexistent/x.bpf.o'))
    expect(missing).toMatchObject({ errno: 2, code: 'ENOENT', op: 'bpf_object__open_file' })
    expect(typeof missing.log).toBe('string')
    const notElf = await rejection(loadNative().openObject(__filename))
    expect(notElf.op).toBe('bpf_object__open_file')
    expect(notElf.log).toMatch(/elf|ELF/)
  })

  it('checks argument types', () => {
    const native = loadNative()
    expect(() => native.openObject(1 as unknown as string)).toThrow(TypeError)
    const BpfObject = native.BpfObject as unknown as new () => unknown
    expect(() => new BpfObject()).toThrow(TypeError)
  })
})
