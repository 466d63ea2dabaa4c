import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseCli, readKeyFile } from '../../lib/cli'
import { STAT_NAMES, type StatName } from '../../lib/layout'
import { prometheusText, snakeCase } from '../../lib/metrics'

describe('parseCli', () => {
  it('takes repeated interfaces and ports and the optional flags', () => {
    expect(parseCli(['-i', 'eth0', '-i', 'eth1', '-p', '80', '--port', '443', '--metrics', '[::1]:9464', '--stats', '5'])).toEqual({
      interfaces: ['eth0', 'eth1'],
      ports: [80, 443],
      destinations: 'local',
      keyFile: undefined,
      rotateSeconds: 3600,
      metrics: { host: '::1', port: 9464 },
      statsSeconds: 5,
    })
    expect(parseCli(['-h'])).toBe('help')
    expect(parseCli(['-i', 'eth0', '-p', '80', '--destinations', 'any'])).toMatchObject({ destinations: 'any' })
  })

  it.each([
    [['-p', '80'], /--interface is required/],
    [['-i', 'eth0'], /--port is required/],
    [['-i', 'eth0', '-p', 'http'], /--port must be a port number 1\.\.65535, got "http"/],
    [['-i', 'eth0', '-p', '80', '--rotate', '0'], /--rotate must be a positive number/],
    [['-i', 'eth0', '-p', '80', '--rotate', 'NaN'], /--rotate must be a positive number/],
    [['-i', 'eth0', '-p', '80', '--metrics', '9464'], /--metrics must be HOST:PORT/],
    [['-i', 'eth0', '-p', '80', '--key-file', 'k', '--rotate', '5'], /exclude each other/],
    [['-i', 'eth0', '-p', '80', '--bogus'], /Unknown option '--bogus'/],
    [['-i', 'eth0', '-p', '80', '--destinations', 'all'], /--destinations must be local or any, got "all"/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseCli(argv)).toThrow(message)
  })
})

describe('readKeyFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cli-'))
  it('reads 32 hex digits and never echoes a bad file', () => {
    const good = path.join(dir, 'good')
    writeFileSync(good, '00112233 44556677 8899aabb ccddeeff\n')
    expect(Buffer.from(readKeyFile(good)).toString('hex')).toBe('00112233445566778899aabbccddeeff')
    const bad = path.join(dir, 'bad')
    writeFileSync(bad, 'not-a-secret-but-still-private')
    expect(() => readKeyFile(bad)).toThrow(/must hold a 16-byte key/)
    expect(() => readKeyFile(bad)).not.toThrow(/private/)
  })
})

describe('prometheusText', () => {
  it('exposes every counter as a *_total counter with help and labels', () => {
    const stats = Object.fromEntries(STAT_NAMES.map((n, i) => [n, BigInt(i) * 10n ** 15n])) as Record<StatName, bigint>
    const text = prometheusText(stats, { iface: 'eth"0' })
    expect(snakeCase('synAckSent')).toBe('syn_ack_sent')
    expect(text).toContain('# TYPE syncookie_agent_ack_accepted_total counter')
    expect(text).toContain(`syncookie_agent_ack_accepted_total{iface="eth\\"0"} ${stats.ackAccepted}`)
    expect(text.match(/^syncookie_agent_\w+_total\{/gm)).toHaveLength(STAT_NAMES.length)
    expect(() => prometheusText(stats, { 'bad-name': 'x' })).toThrow(/label name/)
  })
})
