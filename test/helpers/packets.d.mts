// Types of test/helpers/packets.mjs (hand-made Ethernet/IP/TCP frames for BPF_PROG_TEST_RUN).

/** An IP address: text (IPv4 dotted quad, IPv6 in any RFC 4291 form) or 4 / 16 bytes. */
export type IpAddress = string | Uint8Array

export declare const ETH_P: Readonly<{ IP: 0x0800; IPV6: 0x86dd; VLAN: 0x8100; QINQ: 0x88a8; ARP: 0x0806 }>
export declare const IPPROTO: Readonly<{
  HOPOPTS: 0
  ICMP: 1
  TCP: 6
  UDP: 17
  ROUTING: 43
  FRAGMENT: 44
  ESP: 50
  AH: 51
  ICMPV6: 58
  NONE: 59
  DSTOPTS: 60
}>
export declare const TCP_FLAG: Readonly<{ FIN: 1; SYN: 2; RST: 4; PSH: 8; ACK: 16; URG: 32; ECE: 64; CWR: 128 }>
export declare const TCPOPT: Readonly<{
  EOL: 0
  NOP: 1
  MSS: 2
  WINDOW: 3
  SACK_PERM: 4
  SACK: 5
  TIMESTAMP: 8
  MD5SIG: 19
  FASTOPEN: 34
}>
/** TC verdicts: TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT (what bpf_redirect() returns). */
export declare const TC_ACT: Readonly<{ OK: 0; SHOT: 2; REDIRECT: 7 }>
/** lo's MAC: under BPF_PROG_TEST_RUN a frame to it is PACKET_HOST, any other unicast MAC OTHERHOST. */
export declare const LO_MAC: '00:00:00:00:00:00'

/** One TCP option, or raw bytes put in as they are. */
export type TcpOptionSpec =
  | Uint8Array
  | { kind: 'eol' }
  | { kind: 'nop' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackPerm' }
  | { kind: 'sack'; blocks: readonly (readonly [number, number])[] }
  | { kind: 'ts'; tsval: number; tsecr?: number }
  /** kind byte `type`, length byte `length` (default data.length + 2, may lie), then `data`. */
  | { kind: 'raw'; type: number; length?: number; data?: Uint8Array | readonly number[] }

/** A checksum field: undefined = correct, 'bad' = some wrong value, 'zero' = 0, a number = exactly that. */
export type ChecksumSpec = undefined | 'bad' | 'zero' | number

/** An 802.1Q tag; the outer tags of a stack default to TPID 0x88a8. */
export interface VlanSpec {
  id: number
  pcp?: number
  dei?: boolean
  tpid?: number
}

/** One IPv6 extension header, built in chain order (the next-header fields are filled in). */
export interface Ipv6ExtSpec {
  /** 'hop' (0), 'routing' (43), 'fragment' (44), 'auth' (51), 'dest' (60), or a number. */
  type?: 'hop' | 'routing' | 'fragment' | 'auth' | 'dest' | number
  /** hop/dest: option bytes (PadN added to a multiple of 8); auth: the ICV (default 12 zero bytes). */
  data?: Uint8Array | readonly number[]
  /** fragment: offset in 8-byte units, M flag, identification. */
  offset?: number
  more?: boolean
  id?: number
  /** routing: type, segments left, addresses. */
  routingType?: number
  segmentsLeft?: number
  addresses?: readonly IpAddress[]
  /** auth: SPI and sequence number. */
  spi?: number
  seq?: number
  /** The whole header as bytes; byte 0 is set to the next header unless keepNext. `type` says what it is. */
  raw?: Uint8Array | readonly number[]
  keepNext?: boolean
}

/** An IPv4 option: {type, data} (type 0/1 are single bytes), or raw bytes. */
export type Ipv4OptionSpec = Uint8Array | { type: number; data?: Uint8Array | readonly number[] }

/** A frame to build. Every length and checksum is right unless overridden. */
export interface FrameSpec {
  eth?: {
    /** Default LO_MAC. */
    dst?: string | Uint8Array
    /** Default 02:00:00:00:00:01. */
    src?: string | Uint8Array
    vlan?: VlanSpec | readonly VlanSpec[]
    /** Ethertype after the tags (default from the IP version). */
    type?: number
  }
  ip: {
    /** 4 or 6; default from the address. */
    version?: 4 | 6
    src: IpAddress
    dst: IpAddress
    /** TTL / hop limit (64). */
    ttl?: number
    /** TOS / traffic class. */
    tos?: number
    /** Protocol / last next header (TCP). */
    protocol?: number
    /** The version nibble written (4 / 6), to build a lying header. */
    ipVersionField?: number
    // IPv4
    id?: number
    df?: boolean
    mf?: boolean
    /** In 8-byte units. */
    fragOffset?: number
    /** The reserved flag bit (0x8000). */
    reservedBit?: boolean
    options?: Uint8Array | readonly Ipv4OptionSpec[]
    /** Header length field in 4-byte words (default from the options). */
    ihl?: number
    totalLength?: number
    checksum?: ChecksumSpec
    // IPv6
    flowLabel?: number
    ext?: readonly Ipv6ExtSpec[]
    payloadLength?: number
    /** The next-header field of the fixed header (default: first extension header, or protocol). */
    nextHeader?: number
  }
  /** A TCP segment; or give `l4` for raw bytes after the IP header(s). */
  tcp?: {
    sport: number
    dport: number
    seq?: number
    ack?: number
    /** Bits (TCP_FLAG) or names ('SYN', 'ACK', ...). */
    flags?: number | readonly string[]
    /** Default 65535. */
    window?: number
    urg?: number
    /** The 4 reserved bits of byte 12. */
    reserved?: number
    /** A list (encoded, zero-padded to 4n unless padOptions is false) or raw bytes. */
    options?: readonly TcpOptionSpec[] | Uint8Array
    padOptions?: boolean
    /** Data offset in words (default from the options). */
    doff?: number
    payload?: Uint8Array | readonly number[]
    checksum?: ChecksumSpec
  }
  l4?: Uint8Array | readonly number[]
  /** Bytes after the IP datagram (Ethernet padding). */
  trailer?: Uint8Array | readonly number[]
  /** Cut the finished frame to this many bytes. */
  truncate?: number
}

/** A compact TCP segment for {@link tcpFrame}. */
export interface SegmentSpec {
  src: IpAddress
  dst: IpAddress
  sport: number
  dport: number
  seq?: number
  ack?: number
  /** Default SYN. */
  flags?: number | readonly string[]
  window?: number
  options?: readonly TcpOptionSpec[] | Uint8Array
  payload?: Uint8Array | readonly number[]
  checksum?: ChecksumSpec
  eth?: FrameSpec['eth']
  /** More IP fields (options, ext, ttl, fragments, ...). */
  ip?: Omit<FrameSpec['ip'], 'src' | 'dst'>
  truncate?: number
}

export interface ParsedTcpOption {
  kind: number
  offset: number
  length: number
  data: Buffer
}

export interface ParsedTcpOptions {
  /** Every option in order (NOP and EOL included). */
  list: ParsedTcpOption[]
  /** A length < 2 or past the end stopped the walk. */
  malformed: boolean
  /** An EOL ended the list. */
  eol: boolean
  mss?: number
  wscale?: number
  sackPerm?: boolean
  ts?: { tsval: number; tsecr: number }
  sack?: [number, number][]
}

export interface ParsedExt {
  type: number
  offset: number
  length: number
  next: number
  fragOffset?: number
  more?: boolean
  id?: number
  segmentsLeft?: number
}

export interface ParsedIp {
  version: 4 | 6
  /** 20 + options (IPv4), 40 (IPv6, extension headers not included). */
  headerLength: number
  tos: number
  ttl: number
  /** The L4 protocol (after the IPv6 extension headers). */
  protocol: number
  src: string
  dst: string
  srcBytes: Buffer
  dstBytes: Buffer
  ext: ParsedExt[]
  // IPv4
  totalLength?: number
  id?: number
  df?: boolean
  mf?: boolean
  fragOffset?: number
  checksum?: number
  /** The header checksum verifies. */
  checksumOk?: boolean
  options?: Buffer
  // IPv6
  flowLabel?: number
  payloadLength?: number
  nextHeader?: number
}

export interface ParsedTcp {
  sport: number
  dport: number
  seq: number
  ack: number
  doff: number
  reserved: number
  flags: number
  window: number
  checksum: number
  /** The checksum over the pseudo-header and the segment verifies (false for fragments). */
  checksumOk: boolean
  urg: number
  optionsRaw: Buffer
  options: ParsedTcpOptions
  payload: Buffer
}

export interface ParsedFrame {
  length: number
  /** Why parts could not be read or look wrong. */
  errors: string[]
  eth?: { dst: string; src: string; vlans: { tpid: number; pcp: number; dei: boolean; id: number }[]; type: number }
  l3Offset?: number
  ip?: ParsedIp
  l4Offset?: number
  /** The bytes after the IP header(s), bounded by the IP length fields. */
  l4: Buffer
  tcp?: ParsedTcp
}

export declare function macBytes(mac: string | Uint8Array): Buffer
export declare function formatMac(b: Uint8Array): string
export declare function ipBytes(a: IpAddress, family?: 4 | 6): Buffer
/** Dotted quad, or RFC 5952 IPv6 text. */
export declare function formatIp(b: Uint8Array): string
export declare function onesSum(buf: Uint8Array, sum?: number): number
/** ~fold(sum) of the parts; 0 over a region that contains its correct checksum. */
export declare function inetChecksum(...parts: Uint8Array[]): number
export declare function pseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Buffer
export declare function encodeTcpOptions(opts: readonly TcpOptionSpec[] | Uint8Array, how?: { pad?: boolean }): Buffer
export declare function parseTcpOptions(buf: Uint8Array): ParsedTcpOptions
export declare function buildFrame(spec: FrameSpec): Buffer
export declare function fragmentFrame(spec: FrameSpec, size: number, how?: { id?: number }): Buffer[]
export declare function tcpFrame(s: SegmentSpec): Buffer
export declare function linuxSynOptions(o: {
  mss?: number
  sack?: boolean
  ts?: { tsval: number; tsecr?: number }
  wscale?: number
}): TcpOptionSpec[]
export declare function parseFrame(frame: Uint8Array): ParsedFrame
/** A copy with bit `bit` (0 = most significant) of byte `offset` flipped. */
export declare function flipBit(frame: Uint8Array, offset: number, bit: number): Buffer
