import { describe, expect, it } from 'vitest'
import { SynCookieAgent } from '../../lib/agent'
import { ClosedError } from '../../lib/errors'

// No kernel needed: nothing here loads the program.
describe('SynCookieAgent lifecycle without a kernel', () => {
  it('`await using` closes the agent at the end of the scope', async () => {
    let escaped: SynCookieAgent | undefined
    {
      await using agent = new SynCookieAgent({ ports: [8080] })
      escaped = agent
      expect(await agent.stats()).toMatchObject({ synReceived: 0n, ackAccepted: 0n })
    }
    await expect(escaped.stats()).rejects.toBeInstanceOf(ClosedError)
    await expect(escaped.attach('lo')).rejects.toMatchObject({ code: 'ERR_CLOSED' })
  })

  it('close() is idempotent and every later call fails with ERR_CLOSED', async () => {
    const agent = new SynCookieAgent({ ports: [443, 80] })
    expect(agent.ports).toEqual([80, 443])
    await Promise.all([agent.close(), agent.close()])
    await agent.close()
    for (const call of [() => agent.rotateSecret(), () => agent.detach('lo'), () => agent.stats()]) {
      await expect(call()).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    }
  })

  it('validates options at the boundary, naming the field and the value', () => {
    const bad: [unknown, RegExp, ErrorConstructor][] = [
      [undefined, /options must be an object/, TypeError],
      [{ ports: 8080 }, /options\.ports must be an array.*8080/, TypeError],
      [{ ports: [] }, /options\.ports must name at least one port/, RangeError],
      [{ ports: [0] }, /options\.ports\[0\] must be 1\.\.65535, got 0/, RangeError],
      [{ ports: [65536] }, /options\.ports\[0\].*65536/, RangeError],
      [{ ports: [80, 80.5] }, /options\.ports\[1\] must be an integer port, got 80\.5/, RangeError],
      [{ ports: [Number.NaN] }, /options\.ports\[0\].*NaN/, RangeError],
      [{ ports: ['80'] }, /options\.ports\[0\].*"80"/, TypeError],
      [{ ports: [80, 81, 80] }, /options\.ports\[2\]: port 80 is listed twice/, RangeError],
    ]
    for (const [opts, message, type] of bad) {
      expect(() => new SynCookieAgent(opts as { ports: number[] })).toThrow(type)
      expect(() => new SynCookieAgent(opts as { ports: number[] })).toThrow(message)
    }
  })

  it('rejects keys that are not 16 bytes, naming key', async () => {
    const agent = new SynCookieAgent({ ports: [8080] })
    await expect(agent.rotateSecret(new Uint8Array(15) as Uint8Array)).rejects.toThrow(/key must be 16 bytes, got 15/)
    await expect(agent.rotateSecret(new Uint8Array(17))).rejects.toThrow(RangeError)
    await expect(agent.rotateSecret('0123456789abcdef' as unknown as Uint8Array)).rejects.toThrow(/key must be a Uint8Array/)
    await agent.close()
  })
})
