// Ethernet/IPv4/IPv6/TCP frames for the benchmarks: well formed, checksums
// computed, addressed to the MAC of `lo` (00:00:00:00:00:00), so that under
// BPF_PROG_TEST_RUN (skb->dev is the caller's lo) they are PACKET_HOST.
import { isIPv6 } from 'node:net'

export const TCP = Object.freeze({ FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, ECE: 0x40, CWR: 0x80 })
export const TC_ACT = Object.freeze({ OK: 0, SHOT: 2, REDIRECT: 7 })

/** The options a Linux client puts in its SYN: MSS, SACK_PERM, TS, NOP, WS. */
export function linuxSynOptions({ mss = 1460, tsval = 0x01020304, wscale = 7 } = {}) {
  const o = Buffer.alloc(20)
  o.writeUInt8(2, 0), o.writeUInt8(4, 1), o.writeUInt16BE(mss, 2)
  o.writeUInt8(4, 4), o.writeUInt8(2, 5)
  o.writeUInt8(8, 6), o.writeUInt8(10, 7), o.writeUInt32BE(tsval >>> 0, 8), o.writeUInt32BE(0, 12)
  o.writeUInt8(1, 16), o.writeUInt8(3, 17), o.writeUInt8(3, 18), o.writeUInt8(wscale, 19)
  return o
}

/** NOP, NOP, TS: the options of an ACK of a connection with timestamps. */
export function tsOptions(tsval, tsecr) {
  const o = Buffer.alloc(12)
  o.writeUInt8(1, 0), o.writeUInt8(1, 1), o.writeUInt8(8, 2), o.writeUInt8(10, 3)
  o.writeUInt32BE(tsval >>> 0, 4), o.writeUInt32BE(tsecr >>> 0, 8)
  return o
}

function ip4Bytes(a) {
  return Buffer.from(a.split('.').map(Number))
}

function ip6Bytes(a) {
  const [head, tail = ''] = a.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const b = Buffer.alloc(16)
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2))
  return b
}

function sum16(buf, acc = 0) {
  for (let i = 0; i + 1 < buf.length; i += 2) acc += buf.readUInt16BE(i)
  if (buf.length & 1) acc += buf[buf.length - 1] << 8
  return acc
}

function fold(acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000)
  return ~acc & 0xffff
}

/**
 * One TCP segment in a frame. seq/ack are u32, flags TCP.* bits, options a
 * Buffer whose length is a multiple of 4.
 */
export function tcpFrame({ src, dst, sport, dport, seq = 0, ack = 0, flags, options = Buffer.alloc(0), window = 64240, payload = Buffer.alloc(0) }) {
  if (options.length % 4 !== 0 || options.length > 40) throw new RangeError('tcpFrame: options must be 0..40 bytes, a multiple of 4')
  const v6 = isIPv6(src)
  const th = Buffer.alloc(20 + options.length + payload.length)
  th.writeUInt16BE(sport, 0)
  th.writeUInt16BE(dport, 2)
  th.writeUInt32BE(seq >>> 0, 4)
  th.writeUInt32BE(ack >>> 0, 8)
  th.writeUInt8(((20 + options.length) / 4) << 4, 12)
  th.writeUInt8(flags, 13)
  th.writeUInt16BE(window, 14)
  options.copy(th, 20)
  payload.copy(th, 20 + options.length)
  const s = v6 ? ip6Bytes(src) : ip4Bytes(src)
  const d = v6 ? ip6Bytes(dst) : ip4Bytes(dst)
  let pseudo = sum16(s) + sum16(d) + 6 + th.length
  th.writeUInt16BE(fold(sum16(th, pseudo)), 16)

  const eth = Buffer.alloc(14) // both MACs 00:00:00:00:00:00: lo's
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12)
  let ip
  if (v6) {
    ip = Buffer.alloc(40)
    ip.writeUInt32BE(0x60000000, 0)
    ip.writeUInt16BE(th.length, 4)
    ip.writeUInt8(6, 6)
    ip.writeUInt8(64, 7)
    s.copy(ip, 8)
    d.copy(ip, 24)
  } else {
    ip = Buffer.alloc(20)
    ip.writeUInt8(0x45, 0)
    ip.writeUInt16BE(20 + th.length, 2)
    ip.writeUInt16BE(0x4000, 6)
    ip.writeUInt8(64, 8)
    ip.writeUInt8(6, 9)
    s.copy(ip, 12)
    d.copy(ip, 16)
    ip.writeUInt16BE(fold(sum16(ip)), 10)
  }
  return Buffer.concat([eth, ip, th])
}

/** Flags, seq and ack of the TCP segment in a frame made by tcpFrame (or the program). */
export function parseTcp(frame) {
  const v6 = frame.readUInt16BE(12) === 0x86dd
  const off = 14 + (v6 ? 40 : (frame[14] & 0x0f) * 4)
  return {
    sport: frame.readUInt16BE(off),
    dport: frame.readUInt16BE(off + 2),
    seq: frame.readUInt32BE(off + 4),
    ack: frame.readUInt32BE(off + 8),
    flags: frame[off + 13],
  }
}
