/**
 * test/helpers/packets.mjs builds and parses the frames of the BPF_PROG_TEST_RUN tests: check it
 * against bytes tcpdump called correct, and that what it builds parses back.
 */
import { describe, expect, it } from 'vitest'
import {
  buildFrame,
  encodeTcpOptions,
  formatIp,
  fragmentFrame,
  ipBytes,
  linuxSynOptions,
  parseFrame,
  parseTcpOptions,
  TCP_FLAG,
  tcpFrame,
} from '../helpers/packets.mjs'

// tcpdump -vvv: "IP (ttl 64, ..., options (RA)) 192.0.2.1.40000 > 198.51.100.7.443: Flags [S],
// cksum 0x5116 (correct), ..., options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 3"
// (and no "bad cksum" for the IPv4 header, 0xf974)
const GOLDEN_V4 =
  '000000000000020000000001080046000043000000004006f974c0000201c6336407940400009c4001bb1234567800000000a002ffff51160000' +
  '020405b40402080a000000010000000001030307010203'

describe('test/helpers/packets.mjs', () => {
  it('builds the frame tcpdump verified, byte for byte, and parses it back', () => {
    const f = tcpFrame({
      src: '192.0.2.1',
      dst: '198.51.100.7',
      sport: 40000,
      dport: 443,
      seq: 0x12345678,
      options: linuxSynOptions({ mss: 1460, sack: true, ts: { tsval: 1 }, wscale: 7 }),
      ip: { options: [{ type: 148, data: [0, 0] }] },
      payload: [1, 2, 3],
    })
    const p = parseFrame(f)
    expect(p.ip?.checksumOk).toBe(true)
    expect(p.tcp?.checksumOk).toBe(true)
    expect(p.tcp?.checksum).toBe(0x5116)
    expect(f.toString('hex')).toBe(GOLDEN_V4)
    expect(p.ip).toMatchObject({ version: 4, headerLength: 24, totalLength: 67, src: '192.0.2.1', dst: '198.51.100.7' })
    expect(p.tcp).toMatchObject({ sport: 40000, dport: 443, seq: 0x12345678, flags: TCP_FLAG.SYN, doff: 40, window: 65535 })
    expect(p.tcp?.options).toMatchObject({ mss: 1460, sackPerm: true, ts: { tsval: 1, tsecr: 0 }, wscale: 7, malformed: false })
    expect([...(p.tcp?.payload ?? [])]).toEqual([1, 2, 3])
  })

  it('IPv6 text in and RFC 5952 text out', () => {
    const cases: [string, string][] = [
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['fe80::1%eth0', 'fe80::1'],
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
      ['1:0:0:2::3', '1:0:0:2::3'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ]
    for (const [input, out] of cases) expect(formatIp(ipBytes(input)), input).toBe(out)
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '1.2.3', '1:2:3:4:5:6:7', '256.1.1.1']) {
      expect(() => ipBytes(bad), bad).toThrow(TypeError)
    }
    expect(() => ipBytes('192.0.2.1', 6)).toThrow(TypeError)
  })

  it('IPv6 with extension headers, odd payload, a bad checksum, VLAN tags', () => {
    const spec = { src: '2001:db8::1', dst: '2001:db8::2', sport: 1, dport: 2, payload: [9, 9, 9] }
    const f = parseFrame(tcpFrame({ ...spec, ip: { ext: [{ type: 'hop' }, { type: 'dest', data: [1, 2, 0, 0] }] } }))
    expect(f.ip?.ext.map((e) => [e.type, e.length])).toEqual([
      [0, 8],
      [60, 8],
    ])
    expect(f.ip?.payloadLength).toBe(16 + 20 + 3)
    expect(f.tcp?.checksumOk).toBe(true)
    expect(parseFrame(tcpFrame({ ...spec, checksum: 'bad' })).tcp?.checksumOk).toBe(false)
    expect(parseFrame(tcpFrame({ ...spec, ip: { checksum: 'bad' } })).tcp?.checksumOk).toBe(true) // IPv6 has none
    const v = parseFrame(tcpFrame({ ...spec, eth: { vlan: [{ id: 100 }, { id: 7, pcp: 5 }] } }))
    expect(v.eth?.vlans).toEqual([
      { tpid: 0x88a8, pcp: 0, dei: false, id: 100 },
      { tpid: 0x8100, pcp: 5, dei: false, id: 7 },
    ])
    expect(v.tcp?.checksumOk).toBe(true)
    expect(parseFrame(tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 2, ip: { checksum: 'bad' } })).ip?.checksumOk).toBe(false)
  })

  it('fragments: offsets, MF, no TCP header in later fragments', () => {
    for (const src of ['192.0.2.1', '2001:db8::1']) {
      const dst = src.includes(':') ? '2001:db8::2' : '192.0.2.2'
      const frags = fragmentFrame({ ip: { src, dst }, tcp: { sport: 1, dport: 2, flags: TCP_FLAG.SYN, payload: Buffer.alloc(40) } }, 24)
      const parsed = frags.map(parseFrame)
      expect(parsed.length, src).toBe(3) // 60 bytes of TCP: 24 + 24 + 12
      const fields = parsed.map((p) =>
        p.ip?.version === 4 ? [p.ip.fragOffset, p.ip.mf] : [p.ip?.ext[0]?.fragOffset, p.ip?.ext[0]?.more],
      )
      expect(fields, src).toEqual([
        [0, true],
        [3, true],
        [6, false],
      ])
      expect(parsed[0]?.tcp?.sport).toBe(1)
      expect(parsed[0]?.tcp?.checksumOk, 'no checksum over a fragment').toBe(false)
      expect(parsed[1]?.tcp).toBeUndefined()
      expect(parsed[1]?.errors).toContain('not the first fragment')
    }
  })

  it('TCP options as the kernel parses them', () => {
    expect(encodeTcpOptions([{ kind: 'mss', value: 1 }, { kind: 'nop' }]).length).toBe(8)
    const o = parseTcpOptions(Buffer.from([2, 4, 0, 100, 3, 4, 9, 9, 2, 4, 1, 0, 0]))
    expect(o.mss, 'a later MSS overrides').toBe(256)
    expect(o.wscale, 'a window scale of the wrong size is ignored').toBeUndefined()
    expect(o.eol).toBe(true)
    expect(parseTcpOptions(Buffer.from([1, 8, 10, 0])).malformed).toBe(true)
    expect(parseTcpOptions(Buffer.from([2])).malformed).toBe(true)
    expect(parseTcpOptions(Buffer.from([254, 1])).malformed).toBe(true)
  })

  it('truncated and lying frames parse without throwing', () => {
    const f = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 2 })
    for (let n = 0; n <= f.length; n++) expect(() => parseFrame(f.subarray(0, n))).not.toThrow()
    expect(parseFrame(f.subarray(0, 40)).errors).toContain('short TCP header')
    const lying = buildFrame({ ip: { src: '192.0.2.1', dst: '192.0.2.2', ihl: 15 }, tcp: { sport: 1, dport: 2 } })
    expect(parseFrame(lying).errors.length).toBeGreaterThan(0)
  })
})
