// Ethernet / IPv4 / IPv6 / TCP frames for BPF_PROG_TEST_RUN, built and parsed by hand.
//
// Plain ESM so that both a test (TypeScript, through packets.d.mts) and a namespace worker
// (test/helpers/ops-*.mjs) can use it. Everything is explicit and overridable, because the
// hostile-input tests need frames that are wrong on purpose: raw TCP option bytes, IPv4 options,
// IPv6 extension headers, fragments, VLAN tags, bad lengths and bad checksums. By default a
// frame is well formed: lengths and checksums are computed.
//
// Byte order: every multi-byte field in a spec or a parse result is a host number; the frame
// holds it big-endian. Sequence numbers are u32 (>>> 0).

/** Ethertypes. */
export const ETH_P = Object.freeze({ IP: 0x0800, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8, ARP: 0x0806 })

/** IP protocol / IPv6 next-header numbers. */
export const IPPROTO = Object.freeze({
  HOPOPTS: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
})

/** TCP header flag bits (byte 13). */
export const TCP_FLAG = Object.freeze({ FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 })

/** TCP option kinds. */
export const TCPOPT = Object.freeze({ EOL: 0, NOP: 1, MSS: 2, WINDOW: 3, SACK_PERM: 4, SACK: 5, TIMESTAMP: 8, MD5SIG: 19, FASTOPEN: 34 })

/** tc verdicts a TC program returns. */
export const TC_ACT = Object.freeze({ OK: 0, SHOT: 2, REDIRECT: 7 })

/** The MAC address of `lo`, which BPF_PROG_TEST_RUN uses as skb->dev: frames to it are PACKET_HOST. */
export const LO_MAC = '00:00:00:00:00:00'

const ETH_HLEN = 14

// ------------------------------------------------------------------------------------------
// Addresses

/**
 * Bytes of a MAC address ('aa:bb:cc:dd:ee:ff' or 6 bytes).
 * @param {string | Uint8Array} mac
 * @returns {Buffer}
 */
export function macBytes(mac) {
  if (typeof mac !== 'string') return checkedBytes(mac, 6, 'MAC address')
  const parts = mac.split(/[:-]/)
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`bad MAC address ${JSON.stringify(mac)}`)
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)))
}

/**
 * '00:11:22:33:44:55' for 6 bytes.
 * @param {Uint8Array} b
 * @returns {string}
 */
export function formatMac(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':')
}

/** @returns {Buffer} */
function checkedBytes(b, n, what) {
  if (!(b instanceof Uint8Array) || b.length !== n) throw new TypeError(`${what} must be ${n} bytes`)
  return Buffer.from(b)
}

/**
 * Bytes of an IPv4 dotted quad, or null if `s` is not one.
 * @param {string} s
 * @returns {Buffer | null}
 */
function parseIPv4(s) {
  const parts = s.split('.')
  if (parts.length !== 4) return null
  const out = Buffer.alloc(4)
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return null
    out[i] = Number(parts[i])
  }
  return out
}

/**
 * Bytes of IPv6 text (RFC 4291 forms, '::', trailing dotted quad; a '%zone' is ignored), or null.
 * @param {string} s
 * @returns {Buffer | null}
 */
function parseIPv6(s) {
  s = s.replace(/%.*$/, '')
  const halves = s.split('::')
  if (halves.length > 2) return null
  const groups = (h) => (h === '' ? [] : h.split(':'))
  const head = groups(halves[0])
  const tail = halves.length === 2 ? groups(halves[1]) : []
  const words = []
  const push = (list, isLast) => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]
      if (isLast && i === list.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g)
        if (v4 === null) return false
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        words.push(parseInt(g, 16))
      } else {
        return false
      }
    }
    return true
  }
  if (!push(head, halves.length === 1)) return null
  const headWords = words.length
  if (!push(tail, true)) return null
  const tailWords = words.splice(headWords)
  if (halves.length === 1) {
    if (words.length !== 8) return null
  } else {
    if (words.length + tailWords.length > 7) return null
    while (words.length + tailWords.length < 8) words.push(0)
  }
  words.push(...tailWords)
  const out = Buffer.alloc(16)
  words.forEach((w, i) => out.writeUInt16BE(w, 2 * i))
  return out
}

/**
 * Bytes of an address: a string (IPv4 dotted quad, IPv6 text) or 4 / 16 raw bytes.
 * @param {string | Uint8Array} a
 * @param {4 | 6} [family] required family; a mismatch throws
 * @returns {Buffer}
 */
export function ipBytes(a, family) {
  let b
  if (typeof a === 'string') {
    b = a.includes(':') ? parseIPv6(a) : parseIPv4(a)
    if (b === null) throw new TypeError(`bad IP address ${JSON.stringify(a)}`)
  } else if (a instanceof Uint8Array && (a.length === 4 || a.length === 16)) {
    b = Buffer.from(a)
  } else {
    throw new TypeError('an IP address must be a string or 4 / 16 bytes')
  }
  if (family !== undefined && b.length !== (family === 4 ? 4 : 16)) {
    throw new TypeError(`address ${typeof a === 'string' ? a : formatIp(b)} is not IPv${family}`)
  }
  return b
}

/**
 * Text of 4 or 16 address bytes: dotted quad, or RFC 5952 IPv6 (lower case, longest run of two
 * or more zero groups as '::'; IPv4-mapped as ::ffff:a.b.c.d).
 * @param {Uint8Array} b
 * @returns {string}
 */
export function formatIp(b) {
  if (b.length === 4) return Array.from(b).join('.')
  if (b.length !== 16) throw new TypeError('an IP address is 4 or 16 bytes')
  const w = []
  for (let i = 0; i < 16; i += 2) w.push((b[i] << 8) | b[i + 1])
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (list) => list.map((x) => x.toString(16)).join(':')
  if (best < 0) return hex(w)
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`
}

// ------------------------------------------------------------------------------------------
// Checksums

/**
 * The 16-bit one's complement sum of `buf` added to `sum` (not folded, not complemented).
 * @param {Uint8Array} buf
 * @param {number} [sum]
 * @returns {number}
 */
export function onesSum(buf, sum = 0) {
  const n = buf.length & ~1
  for (let i = 0; i < n; i += 2) sum += (buf[i] << 8) | buf[i + 1]
  if (buf.length & 1) sum += buf[buf.length - 1] << 8
  // fold often enough that the sum stays a small integer
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return sum
}

/**
 * The Internet checksum (RFC 1071) of the concatenation of `parts`: ~fold(sum), as written in a
 * header. A region that includes a correct checksum field gives 0.
 * @param {...Uint8Array} parts
 * @returns {number}
 */
export function inetChecksum(...parts) {
  let sum = 0
  let odd = false
  for (const p of parts) {
    if (odd) throw new RangeError('inetChecksum: only the last part may have an odd length')
    sum = onesSum(p, sum)
    odd = (p.length & 1) === 1
  }
  return ~sum & 0xffff
}

/**
 * The TCP/UDP pseudo-header (RFC 9293 / RFC 8200 section 8.1).
 * @param {Uint8Array} src 4 or 16 bytes
 * @param {Uint8Array} dst
 * @param {number} proto
 * @param {number} length of the L4 segment
 * @returns {Buffer}
 */
export function pseudoHeader(src, dst, proto, length) {
  if (src.length === 4) {
    const p = Buffer.alloc(12)
    Buffer.from(src).copy(p, 0)
    Buffer.from(dst).copy(p, 4)
    p[9] = proto
    p.writeUInt16BE(length & 0xffff, 10)
    return p
  }
  const p = Buffer.alloc(40)
  Buffer.from(src).copy(p, 0)
  Buffer.from(dst).copy(p, 16)
  p.writeUInt32BE(length >>> 0, 32)
  p[39] = proto
  return p
}

// ------------------------------------------------------------------------------------------
// TCP options

/**
 * @typedef {import('./packets.d.mts').TcpOptionSpec} TcpOptionSpec
 * @typedef {import('./packets.d.mts').FrameSpec} FrameSpec
 * @typedef {import('./packets.d.mts').ParsedFrame} ParsedFrame
 * @typedef {import('./packets.d.mts').ParsedTcpOptions} ParsedTcpOptions
 */

/**
 * Bytes of one TCP option spec.
 * @param {TcpOptionSpec} o
 * @returns {Buffer}
 */
function optionBytes(o) {
  if (o instanceof Uint8Array) return Buffer.from(o)
  switch (o.kind) {
    case 'eol':
      return Buffer.from([TCPOPT.EOL])
    case 'nop':
      return Buffer.from([TCPOPT.NOP])
    case 'mss': {
      const b = Buffer.from([TCPOPT.MSS, 4, 0, 0])
      b.writeUInt16BE(o.value & 0xffff, 2)
      return b
    }
    case 'wscale':
      return Buffer.from([TCPOPT.WINDOW, 3, o.value & 0xff])
    case 'sackPerm':
      return Buffer.from([TCPOPT.SACK_PERM, 2])
    case 'sack': {
      const b = Buffer.alloc(2 + 8 * o.blocks.length)
      b[0] = TCPOPT.SACK
      b[1] = b.length
      o.blocks.forEach(([l, r], i) => {
        b.writeUInt32BE(l >>> 0, 2 + 8 * i)
        b.writeUInt32BE(r >>> 0, 6 + 8 * i)
      })
      return b
    }
    case 'ts': {
      const b = Buffer.from([TCPOPT.TIMESTAMP, 10, 0, 0, 0, 0, 0, 0, 0, 0])
      b.writeUInt32BE(o.tsval >>> 0, 2)
      b.writeUInt32BE((o.tsecr ?? 0) >>> 0, 6)
      return b
    }
    case 'raw': {
      const data = Buffer.from(o.data ?? [])
      return Buffer.concat([Buffer.from([o.type & 0xff, (o.length ?? data.length + 2) & 0xff]), data])
    }
    default:
      throw new TypeError(`unknown TCP option kind ${JSON.stringify(o.kind)}`)
  }
}

/**
 * Encodes TCP options. `pad` (default true) appends zero bytes (EOL) up to a multiple of 4, as the
 * data offset requires; with pad false the bytes are returned as they are.
 * @param {readonly TcpOptionSpec[] | Uint8Array} opts
 * @param {{ pad?: boolean }} [how]
 * @returns {Buffer}
 */
export function encodeTcpOptions(opts, how = {}) {
  const raw = opts instanceof Uint8Array ? Buffer.from(opts) : Buffer.concat(opts.map(optionBytes))
  if (how.pad === false || raw.length % 4 === 0) return raw
  return Buffer.concat([raw, Buffer.alloc(4 - (raw.length % 4))])
}

/**
 * Parses TCP option bytes the way the kernel's tcp_parse_options() does: NOP skipped, EOL ends,
 * an option of the wrong size is listed but not interpreted, a later one overrides an earlier
 * one, a length < 2 or past the end stops the walk (`malformed`).
 * @param {Uint8Array} buf
 * @returns {ParsedTcpOptions}
 */
export function parseTcpOptions(buf) {
  /** @type {ParsedTcpOptions} */
  const out = { list: [], malformed: false, eol: false }
  let i = 0
  while (i < buf.length) {
    const kind = buf[i]
    if (kind === TCPOPT.EOL) {
      out.eol = true
      out.list.push({ kind, offset: i, length: 1, data: Buffer.alloc(0) })
      break
    }
    if (kind === TCPOPT.NOP) {
      out.list.push({ kind, offset: i, length: 1, data: Buffer.alloc(0) })
      i++
      continue
    }
    if (i + 1 >= buf.length) {
      out.malformed = true
      break
    }
    const len = buf[i + 1]
    if (len < 2 || i + len > buf.length) {
      out.malformed = true
      break
    }
    const data = Buffer.from(buf.subarray(i + 2, i + len))
    out.list.push({ kind, offset: i, length: len, data })
    if (kind === TCPOPT.MSS && len === 4) out.mss = data.readUInt16BE(0)
    else if (kind === TCPOPT.WINDOW && len === 3) out.wscale = data[0]
    else if (kind === TCPOPT.SACK_PERM && len === 2) out.sackPerm = true
    else if (kind === TCPOPT.TIMESTAMP && len === 10) out.ts = { tsval: data.readUInt32BE(0), tsecr: data.readUInt32BE(4) }
    else if (kind === TCPOPT.SACK && len >= 10 && (len - 2) % 8 === 0) {
      out.sack = []
      for (let j = 0; j < len - 2; j += 8) out.sack.push([data.readUInt32BE(j), data.readUInt32BE(j + 4)])
    }
    i += len
  }
  return out
}

// ------------------------------------------------------------------------------------------
// Building

/**
 * Flags from a number or a list of names ('SYN', 'ACK', ...).
 * @param {number | readonly string[] | undefined} f
 * @returns {number}
 */
function flagBits(f) {
  if (f === undefined) return 0
  if (typeof f === 'number') return f & 0xff
  let v = 0
  for (const name of f) {
    const bit = TCP_FLAG[name.toUpperCase()]
    if (bit === undefined) throw new TypeError(`unknown TCP flag ${JSON.stringify(name)}`)
    v |= bit
  }
  return v
}

/** A checksum field: undefined = correct, 'bad' = a wrong value, 'zero' = 0, a number = that. */
function checksumField(spec, correct) {
  if (spec === undefined) return correct
  if (spec === 'bad') return correct === 0 ? 0x1234 : correct ^ 0x5555
  if (spec === 'zero') return 0
  return spec & 0xffff
}

/**
 * The TCP segment (header, options, payload) with its checksum over `src`/`dst`.
 * @param {NonNullable<FrameSpec['tcp']>} t
 * @param {Buffer} src
 * @param {Buffer} dst
 * @returns {Buffer}
 */
function buildTcp(t, src, dst) {
  const opts = t.options === undefined ? Buffer.alloc(0) : encodeTcpOptions(t.options, { pad: t.padOptions !== false })
  const payload = Buffer.from(t.payload ?? [])
  const seg = Buffer.alloc(20 + opts.length + payload.length)
  seg.writeUInt16BE(t.sport & 0xffff, 0)
  seg.writeUInt16BE(t.dport & 0xffff, 2)
  seg.writeUInt32BE((t.seq ?? 0) >>> 0, 4)
  seg.writeUInt32BE((t.ack ?? 0) >>> 0, 8)
  const doff = t.doff ?? (20 + opts.length) / 4
  if (!Number.isInteger(doff)) throw new RangeError(`TCP options of ${opts.length} bytes need padding (or give doff)`)
  seg[12] = ((doff & 0xf) << 4) | ((t.reserved ?? 0) & 0xf)
  seg[13] = flagBits(t.flags)
  seg.writeUInt16BE((t.window ?? 65535) & 0xffff, 14)
  seg.writeUInt16BE((t.urg ?? 0) & 0xffff, 18)
  opts.copy(seg, 20)
  payload.copy(seg, 20 + opts.length)
  const sum = inetChecksum(pseudoHeader(src, dst, IPPROTO.TCP, seg.length), seg)
  seg.writeUInt16BE(checksumField(t.checksum, sum), 16)
  return seg
}

/**
 * One IPv6 extension header. `nh` is the header that follows it.
 * @param {import('./packets.d.mts').Ipv6ExtSpec} e
 * @param {number} nh
 * @returns {{ type: number, bytes: Buffer }}
 */
function buildExt(e, nh) {
  if (e.raw !== undefined) {
    const b = Buffer.from(e.raw)
    if (e.keepNext !== true && b.length > 0) b[0] = nh
    return { type: e.type === undefined ? IPPROTO.DSTOPTS : extType(e.type), bytes: b }
  }
  const type = extType(e.type)
  if (type === IPPROTO.FRAGMENT) {
    const b = Buffer.alloc(8)
    b[0] = nh
    b.writeUInt16BE((((e.offset ?? 0) & 0x1fff) << 3) | (e.more ? 1 : 0), 2)
    b.writeUInt32BE((e.id ?? 0) >>> 0, 4)
    return { type, bytes: b }
  }
  if (type === IPPROTO.AH) {
    // RFC 4302: length in 4-byte units minus 2; SPI, sequence, ICV
    const icv = Buffer.from(e.data ?? Buffer.alloc(12))
    const len = 12 + icv.length
    if (len % 8 !== 0 && len % 4 !== 0) throw new RangeError('AH length must be a multiple of 4')
    const b = Buffer.alloc(len)
    b[0] = nh
    b[1] = len / 4 - 2
    b.writeUInt32BE((e.spi ?? 0x100) >>> 0, 4)
    b.writeUInt32BE((e.seq ?? 1) >>> 0, 8)
    icv.copy(b, 12)
    return { type, bytes: b }
  }
  if (type === IPPROTO.ROUTING) {
    // type 0-like layout: routing type, segments left, 4 reserved bytes, then addresses
    const addrs = (e.addresses ?? []).map((a) => ipBytes(a, 6))
    const b = Buffer.alloc(8 + 16 * addrs.length)
    b[0] = nh
    b[1] = (b.length - 8) / 8
    b[2] = e.routingType ?? 0
    b[3] = e.segmentsLeft ?? 0
    addrs.forEach((a, i) => a.copy(b, 8 + 16 * i))
    return { type, bytes: b }
  }
  // hop-by-hop and destination options: options (default none), padded with PadN to 8n bytes
  const opts = Buffer.from(e.data ?? [])
  let total = 2 + opts.length
  const pad = (8 - (total % 8)) % 8
  total += pad
  const b = Buffer.alloc(total)
  b[0] = nh
  b[1] = total / 8 - 1
  opts.copy(b, 2)
  if (pad === 1) b[2 + opts.length] = 0 // Pad1
  else if (pad > 1) {
    b[2 + opts.length] = 1 // PadN
    b[3 + opts.length] = pad - 2
  }
  return { type, bytes: b }
}

function extType(t) {
  if (typeof t === 'number') return t
  const m = { hop: IPPROTO.HOPOPTS, routing: IPPROTO.ROUTING, fragment: IPPROTO.FRAGMENT, auth: IPPROTO.AH, dest: IPPROTO.DSTOPTS }
  const v = m[t]
  if (v === undefined) throw new TypeError(`unknown IPv6 extension header ${JSON.stringify(t)}`)
  return v
}

/**
 * Builds a frame: Ethernet (optional VLAN tags), IPv4 or IPv6 (options, extension headers,
 * fragment fields), then TCP (or raw L4 bytes). Lengths and checksums are correct unless
 * overridden. See FrameSpec in packets.d.mts.
 * @param {FrameSpec} spec
 * @returns {Buffer}
 */
export function buildFrame(spec) {
  const ipSpec = spec.ip
  const family = ipSpec.version ?? (typeof ipSpec.src === 'string' ? (ipSpec.src.includes(':') ? 6 : 4) : ipSpec.src.length === 16 ? 6 : 4)
  const src = ipBytes(ipSpec.src, family)
  const dst = ipBytes(ipSpec.dst, family)
  let l4
  if (spec.l4 !== undefined) l4 = Buffer.from(spec.l4)
  else if (spec.tcp !== undefined) l4 = buildTcp(spec.tcp, src, dst)
  else l4 = Buffer.alloc(0)
  const proto = ipSpec.protocol ?? IPPROTO.TCP

  let l3
  if (family === 4) {
    const options = encodeIpv4Options(ipSpec.options)
    const hl = 20 + options.length
    l3 = Buffer.alloc(hl)
    const ihl = ipSpec.ihl ?? hl / 4
    l3[0] = ((ipSpec.ipVersionField ?? 4) << 4) | (ihl & 0xf)
    l3[1] = ipSpec.tos ?? 0
    l3.writeUInt16BE((ipSpec.totalLength ?? hl + l4.length) & 0xffff, 2)
    l3.writeUInt16BE((ipSpec.id ?? 0) & 0xffff, 4)
    const frag = ((ipSpec.df ?? false) ? 0x4000 : 0) | ((ipSpec.mf ?? false) ? 0x2000 : 0) | ((ipSpec.fragOffset ?? 0) & 0x1fff) | (ipSpec.reservedBit ? 0x8000 : 0)
    l3.writeUInt16BE(frag, 6)
    l3[8] = ipSpec.ttl ?? 64
    l3[9] = proto
    src.copy(l3, 12)
    dst.copy(l3, 16)
    options.copy(l3, 20)
    l3.writeUInt16BE(checksumField(ipSpec.checksum, inetChecksum(l3)), 10)
  } else {
    const exts = ipSpec.ext ?? []
    // build back to front: each header names the one after it
    const built = []
    let nh = proto
    for (let i = exts.length - 1; i >= 0; i--) {
      const b = buildExt(exts[i], nh)
      built.unshift(b.bytes)
      nh = b.type
    }
    const extBytes = Buffer.concat(built)
    l3 = Buffer.alloc(40 + extBytes.length)
    const vtf = ((ipSpec.ipVersionField ?? 6) << 28) | (((ipSpec.tos ?? 0) & 0xff) << 20) | ((ipSpec.flowLabel ?? 0) & 0xfffff)
    l3.writeUInt32BE(vtf >>> 0, 0)
    l3.writeUInt16BE((ipSpec.payloadLength ?? extBytes.length + l4.length) & 0xffff, 4)
    l3[6] = ipSpec.nextHeader ?? nh
    l3[7] = ipSpec.ttl ?? 64
    src.copy(l3, 8)
    dst.copy(l3, 24)
    extBytes.copy(l3, 40)
  }

  const eth = buildEth(spec.eth ?? {}, family === 4 ? ETH_P.IP : ETH_P.IPV6)
  let frame = Buffer.concat([eth, l3, l4, Buffer.from(spec.trailer ?? [])])
  if (spec.truncate !== undefined) frame = frame.subarray(0, spec.truncate)
  return frame
}

/**
 * IPv4 options: raw bytes, or a list of {type, data} / raw byte chunks; padded with EOL to 4n.
 * @param {import('./packets.d.mts').FrameSpec['ip']['options']} o
 * @returns {Buffer}
 */
function encodeIpv4Options(o) {
  if (o === undefined) return Buffer.alloc(0)
  let raw
  if (o instanceof Uint8Array) raw = Buffer.from(o)
  else {
    raw = Buffer.concat(
      o.map((x) => {
        if (x instanceof Uint8Array) return Buffer.from(x)
        if (x.type === 0 || x.type === 1) return Buffer.from([x.type])
        const data = Buffer.from(x.data ?? [])
        return Buffer.concat([Buffer.from([x.type, data.length + 2]), data])
      }),
    )
  }
  if (raw.length % 4 !== 0) raw = Buffer.concat([raw, Buffer.alloc(4 - (raw.length % 4))])
  if (raw.length > 40) throw new RangeError(`IPv4 options of ${raw.length} bytes (at most 40)`)
  return raw
}

/** Ethernet header with optional VLAN tags (802.1Q, or QinQ for more than one). */
function buildEth(e, ethertype) {
  const tags = e.vlan === undefined ? [] : Array.isArray(e.vlan) ? e.vlan : [e.vlan]
  const b = Buffer.alloc(ETH_HLEN + 4 * tags.length)
  macBytes(e.dst ?? LO_MAC).copy(b, 0)
  macBytes(e.src ?? '02:00:00:00:00:01').copy(b, 6)
  let at = 12
  tags.forEach((t, i) => {
    const tpid = t.tpid ?? (i < tags.length - 1 ? ETH_P.QINQ : ETH_P.VLAN)
    b.writeUInt16BE(tpid, at)
    b.writeUInt16BE((((t.pcp ?? 0) & 7) << 13) | ((t.dei ? 1 : 0) << 12) | (t.id & 0xfff), at + 2)
    at += 4
  })
  b.writeUInt16BE(e.type ?? ethertype, at)
  return b
}

/**
 * Splits a frame's IP payload (from `offset`, a multiple of 8, after the unfragmentable part)
 * into fragments of at most `size` bytes (a multiple of 8 except the last) and returns one frame
 * per fragment: IPv4 with MF/offset, IPv6 with a fragment header after its extension headers.
 * @param {FrameSpec} spec
 * @param {number} size
 * @param {{ id?: number }} [how]
 * @returns {Buffer[]}
 */
export function fragmentFrame(spec, size, how = {}) {
  if (size <= 0 || size % 8 !== 0) throw new RangeError('fragment size must be a positive multiple of 8')
  const whole = parseFrame(buildFrame(spec))
  const payload = whole.l4
  const out = []
  for (let off = 0; off < payload.length || off === 0; off += size) {
    const chunk = payload.subarray(off, off + size)
    const more = off + size < payload.length
    const id = how.id ?? 0x1234
    const ip = { ...spec.ip }
    if (whole.ip.version === 4) {
      Object.assign(ip, { mf: more, fragOffset: off / 8, id, totalLength: undefined, checksum: undefined })
    } else {
      ip.ext = [...(spec.ip.ext ?? []), { type: 'fragment', offset: off / 8, more, id }]
      ip.payloadLength = undefined
    }
    out.push(buildFrame({ eth: spec.eth, ip, l4: chunk }))
    if (chunk.length === 0) break
  }
  return out
}

/**
 * A SYN (or any segment, with `flags`) from a compact description.
 * @param {import('./packets.d.mts').SegmentSpec} s
 * @returns {Buffer}
 */
export function tcpFrame(s) {
  return buildFrame({
    eth: s.eth,
    ip: { src: s.src, dst: s.dst, ...(s.ip ?? {}) },
    tcp: {
      sport: s.sport,
      dport: s.dport,
      seq: s.seq,
      ack: s.ack,
      flags: s.flags ?? TCP_FLAG.SYN,
      window: s.window,
      options: s.options,
      payload: s.payload,
      checksum: s.checksum,
    },
    truncate: s.truncate,
  })
}

/**
 * SYN options as a client stack would send them, in Linux order (MSS, SACK_PERM + TS or
 * NOP NOP TS, NOP WSCALE), from the values given (undefined / false = left out).
 * @param {{ mss?: number, sack?: boolean, ts?: { tsval: number, tsecr?: number }, wscale?: number }} o
 * @returns {TcpOptionSpec[]}
 */
export function linuxSynOptions(o) {
  /** @type {TcpOptionSpec[]} */
  const list = []
  if (o.mss !== undefined) list.push({ kind: 'mss', value: o.mss })
  if (o.ts !== undefined) {
    if (o.sack) list.push({ kind: 'sackPerm' })
    else list.push({ kind: 'nop' }, { kind: 'nop' })
    list.push({ kind: 'ts', tsval: o.ts.tsval, tsecr: o.ts.tsecr ?? 0 })
  } else if (o.sack) {
    list.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'sackPerm' })
  }
  if (o.wscale !== undefined) list.push({ kind: 'nop' }, { kind: 'wscale', value: o.wscale })
  return list
}

// ------------------------------------------------------------------------------------------
// Parsing

/**
 * Parses a frame: Ethernet (VLAN tags), IPv4 (options, fragment fields, header checksum) or
 * IPv6 (extension header chain), TCP (options, checksum). Never throws on short or odd input:
 * what could not be read is absent and `errors` says why.
 * @param {Uint8Array} frame
 * @returns {ParsedFrame}
 */
export function parseFrame(frame) {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length)
  /** @type {ParsedFrame} */
  const out = { length: buf.length, errors: [], l4: Buffer.alloc(0) }
  if (buf.length < ETH_HLEN) {
    out.errors.push('short Ethernet header')
    return out
  }
  const eth = { dst: formatMac(buf.subarray(0, 6)), src: formatMac(buf.subarray(6, 12)), vlans: [], type: 0 }
  let at = 12
  let type = buf.readUInt16BE(at)
  while ((type === ETH_P.VLAN || type === ETH_P.QINQ) && at + 6 <= buf.length) {
    const tci = buf.readUInt16BE(at + 2)
    eth.vlans.push({ tpid: type, pcp: tci >> 13, dei: ((tci >> 12) & 1) === 1, id: tci & 0xfff })
    at += 4
    type = buf.readUInt16BE(at)
  }
  eth.type = type
  out.eth = eth
  at += 2
  out.l3Offset = at
  let proto
  let l4Start
  let l4End = buf.length
  let src
  let dst
  if (type === ETH_P.IP) {
    if (at + 20 > buf.length) {
      out.errors.push('short IPv4 header')
      return out
    }
    const ihl = (buf[at] & 0xf) * 4
    const totalLength = buf.readUInt16BE(at + 2)
    const frag = buf.readUInt16BE(at + 6)
    src = Buffer.from(buf.subarray(at + 12, at + 16))
    dst = Buffer.from(buf.subarray(at + 16, at + 20))
    const hdrOk = ihl >= 20 && at + ihl <= buf.length
    out.ip = {
      version: 4,
      headerLength: ihl,
      tos: buf[at + 1],
      totalLength,
      id: buf.readUInt16BE(at + 4),
      df: (frag & 0x4000) !== 0,
      mf: (frag & 0x2000) !== 0,
      fragOffset: frag & 0x1fff,
      ttl: buf[at + 8],
      protocol: buf[at + 9],
      checksum: buf.readUInt16BE(at + 10),
      checksumOk: hdrOk && inetChecksum(buf.subarray(at, at + ihl)) === 0,
      src: formatIp(src),
      dst: formatIp(dst),
      srcBytes: src,
      dstBytes: dst,
      options: hdrOk ? Buffer.from(buf.subarray(at + 20, at + ihl)) : Buffer.alloc(0),
      ext: [],
    }
    if (!hdrOk) {
      out.errors.push(`bad IPv4 header length ${ihl}`)
      return out
    }
    if (at + totalLength < buf.length) l4End = at + totalLength
    else if (at + totalLength > buf.length) out.errors.push('IPv4 total length beyond the frame')
    proto = buf[at + 9]
    l4Start = at + ihl
    if ((frag & 0x1fff) !== 0) out.errors.push('not the first fragment')
  } else if (type === ETH_P.IPV6) {
    if (at + 40 > buf.length) {
      out.errors.push('short IPv6 header')
      return out
    }
    const vtf = buf.readUInt32BE(at)
    const payloadLength = buf.readUInt16BE(at + 4)
    src = Buffer.from(buf.subarray(at + 8, at + 24))
    dst = Buffer.from(buf.subarray(at + 24, at + 40))
    out.ip = {
      version: 6,
      headerLength: 40,
      tos: (vtf >>> 20) & 0xff,
      flowLabel: vtf & 0xfffff,
      payloadLength,
      nextHeader: buf[at + 6],
      ttl: buf[at + 7],
      protocol: buf[at + 6],
      src: formatIp(src),
      dst: formatIp(dst),
      srcBytes: src,
      dstBytes: dst,
      ext: [],
    }
    if (at + 40 + payloadLength < buf.length) l4End = at + 40 + payloadLength
    else if (at + 40 + payloadLength > buf.length) out.errors.push('IPv6 payload length beyond the frame')
    let nh = buf[at + 6]
    let p = at + 40
    const extTypes = new Set([IPPROTO.HOPOPTS, IPPROTO.ROUTING, IPPROTO.FRAGMENT, IPPROTO.AH, IPPROTO.DSTOPTS])
    while (extTypes.has(nh)) {
      if (p + 8 > buf.length) {
        out.errors.push('short IPv6 extension header')
        return out
      }
      const len = nh === IPPROTO.FRAGMENT ? 8 : nh === IPPROTO.AH ? (buf[p + 1] + 2) * 4 : (buf[p + 1] + 1) * 8
      /** @type {import('./packets.d.mts').ParsedExt} */
      const e = { type: nh, offset: p, length: len, next: buf[p] }
      if (nh === IPPROTO.FRAGMENT) {
        const fo = buf.readUInt16BE(p + 2)
        e.fragOffset = fo >> 3
        e.more = (fo & 1) === 1
        e.id = buf.readUInt32BE(p + 4)
        if (e.fragOffset !== 0) out.errors.push('not the first fragment')
      } else if (nh === IPPROTO.ROUTING) {
        e.segmentsLeft = buf[p + 3]
      }
      out.ip.ext.push(e)
      nh = buf[p]
      p += len
    }
    out.ip.protocol = nh
    proto = nh
    l4Start = p
  } else {
    return out
  }
  out.l4Offset = l4Start
  out.l4 = Buffer.from(buf.subarray(Math.min(l4Start, l4End), l4End))
  // a later fragment carries no TCP header: its bytes stay in l4
  if (proto !== IPPROTO.TCP || out.errors.includes('not the first fragment')) return out
  if (l4Start + 20 > l4End) {
    out.errors.push('short TCP header')
    return out
  }
  const t = out.l4
  const doff = (t[12] >> 4) * 4
  const optEnd = Math.min(Math.max(doff, 20), t.length)
  const optionsRaw = Buffer.from(t.subarray(20, optEnd))
  const fragmented = out.ip.version === 4 ? out.ip.mf || out.ip.fragOffset !== 0 : out.ip.ext.some((e) => e.type === IPPROTO.FRAGMENT)
  out.tcp = {
    sport: t.readUInt16BE(0),
    dport: t.readUInt16BE(2),
    seq: t.readUInt32BE(4),
    ack: t.readUInt32BE(8),
    doff,
    reserved: t[12] & 0xf,
    flags: t[13],
    window: t.readUInt16BE(14),
    checksum: t.readUInt16BE(16),
    // over the segment as the IP header bounds it (meaningless for a fragment)
    checksumOk: !fragmented && inetChecksum(pseudoHeader(src, dst, IPPROTO.TCP, t.length), t) === 0,
    urg: t.readUInt16BE(18),
    optionsRaw,
    options: parseTcpOptions(optionsRaw),
    payload: Buffer.from(t.subarray(optEnd)),
  }
  if (doff < 20 || doff > t.length) out.errors.push(`bad TCP data offset ${doff}`)
  return out
}

/**
 * Returns a copy of `frame` with the bit `bit` (0 = most significant) of byte `offset` flipped.
 * @param {Uint8Array} frame
 * @param {number} offset
 * @param {number} bit
 * @returns {Buffer}
 */
export function flipBit(frame, offset, bit) {
  const b = Buffer.from(frame)
  b[offset] ^= 0x80 >> bit
  return b
}
