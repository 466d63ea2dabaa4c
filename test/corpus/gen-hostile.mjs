#!/usr/bin/env node
// Builds test/corpus/hostile.json: malformed and edge-case frames, each with the verdict and the
// counters the program must give (README's counter table), for test/kernel/hostile-corpus.test.ts.
//
//   node test/corpus/gen-hostile.mjs           writes hostile.json
//   node test/corpus/gen-hostile.mjs --check   exits 1 if hostile.json differs from what it builds
//
// Needs the built package (dist/cookie.js) for the valid cookie ACKs. The frames are the data;
// this script says how each was made. Conventions of every frame unless it says otherwise:
// client 192.0.2.3 / 2001:db8::3 (test/helpers/netns.ts's raw address), server 192.0.2.1 /
// 2001:db8::1, destination MAC 00:00:00:00:00:00 (lo's, so PACKET_HOST under BPF_PROG_TEST_RUN;
// rewritten to the server veth's MAC when sent over the veth unless `keepMac`), a client port of
// its own per entry (the SYN-ACKs on the veth are told apart by it), checksums and lengths right.
//
// An entry: { id, group, what, hex | frames, expect: { verdict, counters }, veth?, testRun?,
// keepMac?, bug?, today? }. verdict: 'answered' (a cookie SYN-ACK: TC_ACT_REDIRECT), 'dropped'
// (TC_ACT_SHOT), 'passed' (TC_ACT_OK or TC_ACT_UNSPEC: the kernel gets it). `frames` is a
// sequence sent together (fragments): counters are summed over it. `veth` overrides `expect`
// for the real interface where the kernel shows the program another skb than test_run does
// (VLAN tags stripped, lo vs veth addresses) or { refused } where the frame cannot be sent.
// `testRun: { refused }`: BPF_PROG_TEST_RUN rejects the frame (EINVAL) before the program runs.
// `bug`: the program does not do `expect` today (issue 5); `today` says what it does instead;
// `bugOn: 'veth'` when only the veth expectation is not met.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildFrame, fragmentFrame, linuxSynOptions, TCP_FLAG } from '../helpers/packets.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

export const SETUP = Object.freeze({
  ports: [8080, 1, 65535, 9],
  listeners: 'TCP listeners on 0.0.0.0 and [::] (v6only) for ports 8080, 1 and 65535; none on 9',
  previousKey: '00112233445566778899aabbccddeeff',
  key: 'a0b1c2d3e4f5061728394a5b6c7d8e9f',
  nowMs: 1733011237000,
  client: { ip4: '192.0.2.3', ip6: '2001:db8::3' },
  server: { ip4: '192.0.2.1', ip6: '2001:db8::1' },
})

const C4 = SETUP.client.ip4
const S4 = SETUP.server.ip4
const C6 = SETUP.client.ip6
const S6 = SETUP.server.ip6
const PORT = 8080
const F = TCP_FLAG

const ANSWERED = { verdict: 'answered', counters: { synReceived: 1, synAckSent: 1 } }
const PASSED_NONE = { verdict: 'passed', counters: {} }
const synDrop = (c) => ({ verdict: 'dropped', counters: { synReceived: 1, [c]: 1 } })
const dropped = (c) => ({ verdict: 'dropped', counters: { [c]: 1 } })
const passed = (c) => ({ verdict: 'passed', counters: { [c]: 1 } })

export function buildCorpus() {
  const { encodeCookie } = require('../../dist/cookie.js')
  const key = Uint8Array.from(Buffer.from(SETUP.key, 'hex'))
  let nextPort = 30000
  const entries = []
  const linux4 = linuxSynOptions({ mss: 1460, sack: true, ts: { tsval: 0x11223344 }, wscale: 7 })
  const linux6 = linuxSynOptions({ mss: 1440, sack: true, ts: { tsval: 0x11223344 }, wscale: 7 })

  /** A frame spec for a segment from the client: family 4 or 6, TCP fields, IP/Ethernet extras. */
  const spec = (family, t = {}, ip = {}, eth = undefined) => {
    const sport = t.sport ?? nextPort
    return {
      eth,
      ip: { src: family === 4 ? C4 : C6, dst: family === 4 ? S4 : S6, ...ip },
      tcp: {
        sport,
        dport: PORT,
        seq: 0x10000000 + sport,
        flags: F.SYN,
        options: family === 4 ? linux4 : linux6,
        ...t,
      },
    }
  }
  /** A cookie ACK for the SYN spec() would give, valid under SETUP's key and clock. */
  const validAck = (family, t = {}, ip = {}) => {
    const sport = t.sport ?? nextPort
    const dport = t.dport ?? PORT
    const isn = 0x20000000 + sport
    const cookie = encodeCookie(
      { saddr: ip.src ?? (family === 4 ? C4 : C6), daddr: ip.dst ?? (family === 4 ? S4 : S6), sport, dport, seq: isn },
      { mss: family === 4 ? 1460 : 1440, wscale: 7, sack: true, ecn: false },
      key,
      SETUP.nowMs,
    )
    return spec(family, { seq: (isn + 1) >>> 0, ack: (cookie + 1) >>> 0, flags: F.ACK, options: [], ...t }, ip)
  }
  const randomAck = (family, t = {}, ip = {}) => spec(family, { seq: 0x31415926, ack: 0x27182818, flags: F.ACK, options: [], ...t }, ip)

  /** Adds an entry; `what` is a frame spec, a frame, or a list of frames. */
  const add = (id, group, what, description, expect, extra = {}) => {
    const toHex = (x) => (Buffer.isBuffer(x) ? x : buildFrame(x)).toString('hex')
    const e = { id, group, what: description }
    if (Array.isArray(what)) e.frames = what.map(toHex)
    else e.hex = toHex(what)
    e.expect = expect
    Object.assign(e, extra)
    entries.push(e)
    nextPort++
  }
  const cut = (s, n) => buildFrame(s).subarray(0, n)

  // ---- reference ---------------------------------------------------------------------------
  add('v4-syn', 'reference', spec(4), 'IPv4 SYN, Linux options (MSS 1460, SACK, TS, WS 7)', ANSWERED)
  add('v6-syn', 'reference', spec(6), 'IPv6 SYN, Linux options', ANSWERED)
  add('v4-syn-bare', 'reference', spec(4, { options: [] }), 'IPv4 SYN without options', ANSWERED)
  add('v6-syn-bare', 'reference', spec(6, { options: [] }), 'IPv6 SYN without options (MSS 1220 assumed)', ANSWERED)
  add('v4-ack-forged', 'reference', randomAck(4), 'IPv4 ACK with a wrong cookie', dropped('ackRejected'))
  add('v6-ack-forged', 'reference', randomAck(6), 'IPv6 ACK with a wrong cookie', dropped('ackRejected'))
  add('v4-ack-valid', 'reference', validAck(4), 'IPv4 ACK with a valid cookie (under test_run the kfunc refuses: -EINVAL)', dropped('ackAssignFailed'), {
    veth: { expect: passed('ackAccepted') },
  })
  add('v6-ack-valid', 'reference', validAck(6), 'IPv6 ACK with a valid cookie', dropped('ackAssignFailed'), { veth: { expect: passed('ackAccepted') } })
  add('v4-syn-other-port', 'reference', spec(4, { dport: 9090 }), 'IPv4 SYN to an unprotected port', PASSED_NONE)
  add('v6-syn-other-port', 'reference', spec(6, { dport: 9090 }), 'IPv6 SYN to an unprotected port', PASSED_NONE)
  add('v4-syn-no-listener', 'reference', spec(4, { dport: 9 }), 'IPv4 SYN to a protected port nobody listens on', { verdict: 'passed', counters: { synReceived: 1, synNoListener: 1 } })
  add('v4-ack-no-listener', 'reference', randomAck(4, { dport: 9 }), 'IPv4 ACK to a protected port with no socket', passed('passNoSocket'))

  // ---- Ethernet ----------------------------------------------------------------------------
  const refused = (why) => ({ refused: 'EINVAL', why })
  add('eth-13-bytes', 'ethernet', cut(spec(4), 13), 'a 13-byte frame (Ethernet header cut short)', PASSED_NONE, {
    testRun: refused('BPF_PROG_TEST_RUN needs at least ETH_HLEN bytes'),
    veth: refused('AF_PACKET refuses to send a frame shorter than the link header'),
  })
  add('eth-14-bytes-ipv4', 'ethernet', cut(spec(4), 14), 'an Ethernet header with ethertype IPv4 and nothing after it', PASSED_NONE, {
    testRun: refused('BPF_PROG_TEST_RUN refuses an IPv4 frame without a whole IPv4 header'),
  })
  add('eth-type-arp', 'ethernet', { ...spec(4), eth: { type: 0x0806 } }, 'a SYN behind ethertype ARP', PASSED_NONE)
  add('eth-type-zero', 'ethernet', { ...spec(4), eth: { type: 0x0000 } }, 'a SYN behind ethertype 0 (802.3 length)', PASSED_NONE)
  add('vlan-syn', 'ethernet', { ...spec(4), eth: { vlan: { id: 100 } } }, 'IPv4 SYN in 802.1Q VLAN 100', PASSED_NONE, {
    veth: {
      expect: ANSWERED,
      why: 'the kernel strips one VLAN tag (skb_vlan_untag) before TC ingress: the program sees an untagged SYN; under test_run the tag stays in the data and the program only parses untagged frames',
    },
  })
  add('vlan-syn-v6', 'ethernet', { ...spec(6), eth: { vlan: { id: 100 } } }, 'IPv6 SYN in 802.1Q VLAN 100', PASSED_NONE, { veth: { expect: ANSWERED, why: 'tag stripped before TC, as above' } })
  add('vlan-0-syn', 'ethernet', { ...spec(4), eth: { vlan: { id: 0, pcp: 5 } } }, 'IPv4 SYN with an 802.1p priority tag (VLAN 0)', PASSED_NONE, { veth: { expect: ANSWERED, why: 'tag stripped before TC' } })
  add('qinq-syn', 'ethernet', { ...spec(4), eth: { vlan: [{ id: 10 }, { id: 20 }] } }, 'IPv4 SYN in QinQ (802.1ad 10 + 802.1Q 20)', PASSED_NONE, {
    veth: {
      expect: PASSED_NONE,
      why: 'the outer tag is stripped, the inner one stays in the data: the program passes it uncounted; this kernel has no VLAN device for it and drops it (with a VLAN device stack it would reach the kernel unprotected unless the agent is attached there too)',
    },
  })
  add('mac-broadcast', 'ethernet', { ...spec(4), eth: { dst: 'ff:ff:ff:ff:ff:ff' } }, 'IPv4 SYN to the broadcast MAC', synDrop('synDropAddress'), { keepMac: true })
  add('mac-multicast', 'ethernet', { ...spec(4), eth: { dst: '01:00:5e:00:00:01' } }, 'IPv4 SYN to a multicast MAC', synDrop('synDropAddress'), { keepMac: true })
  add('mac-other-host', 'ethernet', { ...spec(4), eth: { dst: '02:11:22:33:44:55' } }, 'IPv4 SYN to another host\'s MAC (PACKET_OTHERHOST)', synDrop('synDropAddress'), { keepMac: true })
  add('mac-multicast-v6', 'ethernet', { ...spec(6), eth: { dst: '33:33:00:00:00:01' } }, 'IPv6 SYN to an IPv6 multicast MAC', synDrop('synDropAddress'), { keepMac: true })

  // ---- IPv4 header -------------------------------------------------------------------------
  const shortIp = refused('BPF_PROG_TEST_RUN refuses an IPv4 frame without a whole IPv4 header')
  add('ip4-header-10-bytes', 'ipv4', cut(spec(4), 24), 'IPv4 header cut after 10 bytes', PASSED_NONE, { testRun: shortIp })
  add('ip4-header-19-bytes', 'ipv4', cut(spec(4), 33), 'IPv4 header cut after 19 bytes', PASSED_NONE, { testRun: shortIp })
  for (const ihl of [0, 1, 4]) add(`ip4-ihl-${ihl}`, 'ipv4', spec(4, {}, { ihl }), `IPv4 IHL ${ihl} (< 5)`, PASSED_NONE)
  add('ip4-ihl-15-past-end', 'ipv4', spec(4, { options: [] }, { ihl: 15 }), 'IPv4 IHL 15: 60 header bytes claimed, the frame ends before a TCP header after them', PASSED_NONE)
  add('ip4-ihl-6-no-options', 'ipv4', spec(4, {}, { ihl: 6 }), 'IPv4 IHL 6 without options: the TCP header is read 4 bytes late (ports from the ISN: not protected)', PASSED_NONE)
  add('ip4-version-6', 'ipv4', spec(4, {}, { ipVersionField: 6 }), 'version 6 in an IPv4 ethertype frame', PASSED_NONE)
  add('ip4-protocol-udp', 'ipv4', spec(4, {}, { protocol: 17 }), 'a TCP SYN marked protocol 17 (UDP)', PASSED_NONE)
  add('ip4-options-nop', 'ipv4', spec(4, {}, { options: [{ type: 1 }, { type: 1 }, { type: 1 }, { type: 1 }] }), 'IPv4 options: 4 NOPs (IHL 6)', ANSWERED)
  add('ip4-options-timestamp', 'ipv4', spec(4, {}, { options: [{ type: 68, data: [5, 0, 0, 0, 0, 0, 0, 0, 0, 0] }] }), 'IPv4 timestamp option', ANSWERED)
  add('ip4-options-record-route', 'ipv4', spec(4, {}, { options: [{ type: 7, data: [4, 0, 0, 0, 0, 0, 0, 0, 0] }] }), 'IPv4 record-route option', ANSWERED)
  add('ip4-options-40-bytes', 'ipv4', spec(4, {}, { options: Array.from({ length: 40 }, () => ({ type: 1 })) }), 'IPv4 options: 40 NOPs (IHL 15)', ANSWERED)
  add('ip4-options-lsrr', 'ipv4', spec(4, {}, { options: [{ type: 131, data: [4, 192, 0, 2, 1] }] }), 'IPv4 loose source route (the kernel drops it: accept_source_route = 0)', synDrop('synDropMalformed'))
  add('ip4-options-length-0', 'ipv4', spec(4, {}, { options: Buffer.from([7, 0, 0, 0]) }), 'IPv4 option with length 0 (the kernel drops it: ip_options_compile)', synDrop('synDropMalformed'))
  add('ip4-options-eol-then-garbage', 'ipv4', spec(4, {}, { options: Buffer.from([0, 0xde, 0xad, 0xbe]) }), 'IPv4 options: EOL, then garbage', ANSWERED)
  add('ip4-total-length-short', 'ipv4', spec(4, {}, { totalLength: 20 }), 'IPv4 total length 20: no TCP header inside the datagram (the kernel trims and drops it)', synDrop('synDropMalformed'))
  add('ip4-total-length-long', 'ipv4', spec(4, {}, { totalLength: 1500 }), 'IPv4 total length 1500 in a 90-byte frame (the kernel drops it: truncated)', synDrop('synDropMalformed'))
  add('ip4-ethernet-padding', 'ipv4', { ...spec(4, { options: [] }), trailer: Buffer.alloc(6) }, 'IPv4 SYN with 6 bytes of Ethernet padding after the datagram', ANSWERED)
  add('ip4-bad-checksum', 'ipv4', spec(4, {}, { checksum: 'bad' }), 'IPv4 header checksum wrong (the kernel drops it)', synDrop('synDropMalformed'))
  add('ip4-ttl-0', 'ipv4', spec(4, {}, { ttl: 0 }), 'IPv4 TTL 0 (delivered locally all the same)', ANSWERED)
  add('ip4-reserved-flag', 'ipv4', spec(4, {}, { reservedBit: true }), 'IPv4 reserved ("evil") flag set', ANSWERED)
  add('ip4-df', 'ipv4', spec(4, {}, { df: true }), 'IPv4 DF set', ANSWERED)

  // ---- IPv4 fragments ----------------------------------------------------------------------
  const synWithPayload = (family, extra = {}) => spec(family, { payload: Buffer.alloc(32, 0x61), ...extra })
  // each datagram its own IP ID: the kernel reassembles fragments sent over the veth by it
  const frag = (s, size) => fragmentFrame(s, size, { id: 0x4000 + nextPort })
  const frag4 = frag(synWithPayload(4), 48)
  add('frag4-first', 'fragments', frag4[0], 'IPv4 first fragment (MF) holding the whole SYN header', synDrop('synDropFragment'))
  add('frag4-later', 'fragments', frag4[1], 'IPv4 later fragment (offset 6)', PASSED_NONE)
  add('frag4-both', 'fragments', frag(synWithPayload(4), 48), 'IPv4 SYN in two fragments, header in the first', synDrop('synDropFragment'))
  add('frag4-tiny-8', 'fragments', frag(synWithPayload(4), 8), 'IPv4 SYN in fragments of 8 bytes: the first holds only the ports and the ISN', dropped('synDropFragment'))
  add('frag4-tiny-16', 'fragments', frag(synWithPayload(4), 16), 'IPv4 SYN in fragments of 16 bytes: the first holds the flags but not the whole header', dropped('synDropFragment'))
  add('frag4-tiny-8-first', 'fragments', frag(synWithPayload(4), 8)[0], 'the first 8-byte fragment alone', dropped('synDropFragment'))

  // ---- IPv6 header and extension headers ---------------------------------------------------
  const shortIp6 = refused('BPF_PROG_TEST_RUN refuses an IPv6 frame without a whole IPv6 header')
  add('ip6-header-20-bytes', 'ipv6', cut(spec(6), 34), 'IPv6 header cut after 20 bytes', PASSED_NONE, { testRun: shortIp6 })
  add('ip6-version-4', 'ipv6', spec(6, {}, { ipVersionField: 4 }), 'version 4 in an IPv6 ethertype frame', PASSED_NONE)
  add('ip6-hop-by-hop', 'ipv6', spec(6, {}, { ext: [{ type: 'hop' }] }), 'IPv6 hop-by-hop options (PadN)', ANSWERED)
  add('ip6-destination', 'ipv6', spec(6, {}, { ext: [{ type: 'dest', data: [0x1e, 2, 0, 0] }] }), 'IPv6 destination options (an unknown skippable option)', ANSWERED)
  add('ip6-routing-0-left', 'ipv6', spec(6, {}, { ext: [{ type: 'routing', routingType: 4, segmentsLeft: 0, addresses: ['2001:db8::9'] }] }), 'IPv6 routing header, segments left 0', ANSWERED)
  add('ip6-routing-1-left', 'ipv6', spec(6, {}, { ext: [{ type: 'routing', routingType: 4, segmentsLeft: 1, addresses: ['2001:db8::9'] }] }), 'IPv6 routing header, segments left 1 (we are not the destination)', synDrop('synDropHeaders'))
  add('ip6-ah', 'ipv6', spec(6, {}, { ext: [{ type: 'auth' }] }), 'IPv6 authentication header', synDrop('synDropHeaders'))
  add('ip6-esp', 'ipv6', spec(6, {}, { protocol: 50 }), 'IPv6 next header ESP', PASSED_NONE)
  add('ip6-no-next-header', 'ipv6', spec(6, {}, { protocol: 59 }), 'IPv6 next header 59 (no next header)', PASSED_NONE)
  add('ip6-unknown-next-header', 'ipv6', spec(6, {}, { protocol: 253 }), 'IPv6 next header 253 (experimental)', PASSED_NONE)
  add('ip6-8-headers', 'ipv6', spec(6, {}, { ext: Array.from({ length: 8 }, () => ({ type: 'dest' })) }), '8 IPv6 destination-options headers, then TCP', ANSWERED)
  add('ip6-9-headers', 'ipv6', spec(6, {}, { ext: Array.from({ length: 9 }, () => ({ type: 'dest' })) }), '9 IPv6 extension headers: the chain is too long for the program', dropped('synDropHeaders'))
  add('ip6-9-headers-other-port', 'ipv6', spec(6, { dport: 9090 }, { ext: Array.from({ length: 9 }, () => ({ type: 'dest' })) }), '9 extension headers to an unprotected port (the port cannot be seen: dropped too)', dropped('synDropHeaders'))
  add('ip6-ext-truncated', 'ipv6', cut(spec(6, {}, { ext: [{ type: 'hop', data: Array(14).fill(0) }] }), 14 + 40 + 6), 'IPv6 hop-by-hop header cut short', PASSED_NONE)
  add('ip6-ext-length-past-end', 'ipv6', spec(6, { options: [] }, { ext: [{ type: 'dest', raw: [6, 20, 1, 4, 0, 0, 0, 0] }] }), 'IPv6 destination options claiming 168 bytes', PASSED_NONE)
  // ip6_parse_tlv(): what the kernel drops inside hop-by-hop and destination options headers
  const dest6 = (data) => spec(6, {}, { ext: [{ type: 'dest', data }] })
  const hop6 = (data) => spec(6, {}, { ext: [{ type: 'hop', data }] })
  add('ip6-dest-option-discard', 'ipv6', dest6([0x5e, 2, 0, 0]), 'IPv6 destination option 0x5e: unknown, high bits 01 (discard)', synDrop('synDropHeaders'))
  add('ip6-dest-option-discard-icmp', 'ipv6', dest6([0x9e, 2, 0, 0]), 'IPv6 destination option 0x9e: unknown, high bits 10 (discard, ICMP)', synDrop('synDropHeaders'))
  add('ip6-hop-option-discard-icmp', 'ipv6', hop6([0xde, 2, 0, 0]), 'IPv6 hop-by-hop option 0xde: unknown, high bits 11', synDrop('synDropHeaders'))
  add('ip6-hop-jumbo', 'ipv6', hop6([0xc2, 4, 0, 1, 0, 0]), 'IPv6 Jumbo Payload option on a small SYN (the kernel drops it)', synDrop('synDropHeaders'))
  add('ip6-hop-router-alert', 'ipv6', hop6([5, 2, 0, 0]), 'IPv6 Router Alert (hop-by-hop)', ANSWERED)
  add('ip6-hop-router-alert-long', 'ipv6', hop6([5, 4, 0, 0, 0, 0]), 'IPv6 Router Alert of length 4 (ipv6_hop_ra() drops it)', synDrop('synDropHeaders'))
  add('ip6-dest-pad1-8', 'ipv6', dest6(Array(14).fill(0)), 'IPv6 destination options: 14 Pad1 in a row (more than 7 bytes of padding)', synDrop('synDropHeaders'))
  add('ip6-dest-padn-nonzero', 'ipv6', dest6([1, 4, 0, 0, 1, 0]), 'IPv6 PadN with a non-zero byte (RFC 4942)', synDrop('synDropHeaders'))
  add('ip6-dest-option-past-end', 'ipv6', dest6([0x1e, 5, 0, 0, 0, 0]), 'IPv6 destination option running past its header', synDrop('synDropHeaders'))
  add('ip6-dest-8-options', 'ipv6', dest6(Array.from({ length: 8 }, () => [0x1e, 0]).flat()), '8 unknown skippable destination options (net.ipv6.max_dst_opts_cnt)', ANSWERED)
  add('ip6-dest-9-options', 'ipv6', dest6(Array.from({ length: 9 }, () => [0x1e, 0]).flat()), '9 destination options: one more than net.ipv6.max_dst_opts_cnt', synDrop('synDropHeaders'))
  add('ip6-hop-by-hop-not-first', 'ipv6', spec(6, {}, { ext: [{ type: 'dest' }, { type: 'hop' }] }), 'IPv6 hop-by-hop after a destination header (the kernel drops it)', synDrop('synDropHeaders'))
  add('ip6-payload-length-short', 'ipv6', spec(6, {}, { payloadLength: 8 }), 'IPv6 payload length 8: no TCP header inside the datagram', synDrop('synDropMalformed'))
  add('ip6-payload-length-long', 'ipv6', spec(6, {}, { payloadLength: 1400 }), 'IPv6 payload length beyond the frame (the kernel drops it)', synDrop('synDropMalformed'))
  add('ip6-mapped-source', 'ipv6', spec(6, {}, { src: '::ffff:192.0.2.3' }), 'IPv6 SYN from an IPv4-mapped address', synDrop('synDropAddress'))
  add('ip6-mapped-destination', 'ipv6', spec(6, {}, { dst: '::ffff:192.0.2.1' }), 'IPv6 SYN to an IPv4-mapped address', synDrop('synDropAddress'))

  // ---- IPv6 fragments ----------------------------------------------------------------------
  const frag6 = frag(synWithPayload(6), 48)
  add('frag6-first', 'fragments', frag6[0], 'IPv6 first fragment (M) holding the whole SYN header', synDrop('synDropFragment'))
  add('frag6-later', 'fragments', frag6[1], 'IPv6 later fragment', PASSED_NONE)
  add('frag6-atomic', 'fragments', spec(6, {}, { ext: [{ type: 'fragment', offset: 0, more: false, id: 9 }] }), 'IPv6 atomic fragment (offset 0, no M)', ANSWERED)
  add('frag6-tiny-8', 'fragments', frag(synWithPayload(6), 8), 'IPv6 SYN in fragments of 8 bytes', dropped('synDropFragment'))

  // ---- TCP header --------------------------------------------------------------------------
  add('tcp-ports-only', 'tcp', cut(spec(4, { options: [] }), 14 + 20 + 4), 'TCP header cut after the ports', PASSED_NONE)
  add('tcp-19-bytes', 'tcp', cut(spec(4, { options: [] }), 14 + 20 + 19), 'TCP header cut at 19 bytes', PASSED_NONE)
  add('tcp-19-bytes-v6', 'tcp', cut(spec(6, { options: [] }), 14 + 40 + 19), 'IPv6: TCP header cut at 19 bytes', PASSED_NONE)
  for (const doff of [0, 1, 4]) add(`tcp-doff-${doff}`, 'tcp', spec(4, { doff }), `SYN with data offset ${doff} (< 5)`, synDrop('synDropMalformed'))
  add('tcp-doff-15-past-end', 'tcp', spec(4, { doff: 15, options: [] }), 'SYN with data offset 15 and no options in the frame', synDrop('synDropMalformed'))
  add('tcp-doff-6-past-end', 'tcp', cut(spec(4, { options: [{ kind: 'mss', value: 1460 }] }), 14 + 20 + 22), 'SYN with data offset 6, the frame ends 2 bytes into the options', synDrop('synDropMalformed'))
  add('ack-doff-4-valid', 'tcp', validAck(4, { doff: 4 }), 'valid cookie ACK with data offset 4', dropped('ackMalformed'))
  add('ack-doff-4-forged', 'tcp', randomAck(4, { doff: 4 }), 'forged ACK with data offset 4', dropped('ackRejected'))

  // ---- TCP flags ---------------------------------------------------------------------------
  add('flags-syn-ack', 'flags', spec(4, { flags: F.SYN | F.ACK }), 'SYN+ACK to a protected port', passed('passOther'))
  add('flags-syn-rst', 'flags', spec(4, { flags: F.SYN | F.RST }), 'SYN+RST', synDrop('synDropMalformed'))
  add('flags-syn-fin', 'flags', spec(4, { flags: F.SYN | F.FIN }), 'SYN+FIN', synDrop('synDropMalformed'))
  add('flags-syn-fin-v6', 'flags', spec(6, { flags: F.SYN | F.FIN }), 'IPv6 SYN+FIN', synDrop('synDropMalformed'))
  add('flags-syn-fin-rst-psh-urg', 'flags', spec(4, { flags: F.SYN | F.FIN | F.RST | F.PSH | F.URG }), 'SYN+FIN+RST+PSH+URG', synDrop('synDropMalformed'))
  add('flags-syn-psh', 'flags', spec(4, { flags: F.SYN | F.PSH }), 'SYN+PSH (passed on it would land in the SYN queue)', ANSWERED)
  add('flags-syn-urg', 'flags', spec(4, { flags: F.SYN | F.URG, urg: 10 }), 'SYN+URG with an urgent pointer', ANSWERED)
  add('flags-syn-psh-v6', 'flags', spec(6, { flags: F.SYN | F.PSH | F.URG }), 'IPv6 SYN+PSH+URG', ANSWERED)
  add('flags-syn-ece-cwr', 'flags', spec(4, { flags: F.SYN | F.ECE | F.CWR }), 'SYN+ECE+CWR (ECN setup)', ANSWERED)
  add('flags-syn-ece', 'flags', spec(4, { flags: F.SYN | F.ECE }), 'SYN+ECE without CWR', ANSWERED)
  add('flags-syn-all-but-ack-rst-fin', 'flags', spec(4, { flags: F.SYN | F.PSH | F.URG | F.ECE | F.CWR }), 'SYN+PSH+URG+ECE+CWR', ANSWERED)
  add('flags-syn-reserved-bits', 'flags', spec(4, { reserved: 0xf }), 'SYN with the 4 reserved header bits set', ANSWERED)
  add('flags-syn-with-data', 'flags', spec(4, { payload: Buffer.alloc(100, 0x41) }), 'SYN carrying 100 bytes of data', ANSWERED)
  add('flags-none', 'flags', spec(4, { flags: 0 }), 'no flags (null scan)', passed('passOther'))
  add('flags-fin', 'flags', spec(4, { flags: F.FIN }), 'FIN alone', passed('passOther'))
  add('flags-rst', 'flags', spec(4, { flags: F.RST }), 'RST alone', passed('passOther'))
  add('flags-rst-ack', 'flags', randomAck(4, { flags: F.RST | F.ACK }), 'RST+ACK', passed('passOther'))
  add('flags-xmas-no-ack', 'flags', spec(4, { flags: F.FIN | F.PSH | F.URG }), 'FIN+PSH+URG (xmas scan)', passed('passOther'))
  add('flags-ack-data-forged', 'flags', randomAck(4, { flags: F.ACK | F.PSH, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') }), 'forged ACK with data', dropped('ackRejected'))
  add('flags-ack-data-valid', 'flags', validAck(4, { flags: F.ACK | F.PSH, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') }), 'valid cookie ACK with data', dropped('ackAssignFailed'), {
    veth: { expect: passed('ackAccepted') },
  })
  add('flags-ack-fin-valid', 'flags', validAck(4, { flags: F.ACK | F.FIN }), 'valid cookie ACK+FIN', dropped('ackAssignFailed'), { veth: { expect: passed('ackAccepted') } })
  add('flags-ack-urg-valid-v6', 'flags', validAck(6, { flags: F.ACK | F.URG, urg: 1 }), 'IPv6 valid cookie ACK+URG', dropped('ackAssignFailed'), { veth: { expect: passed('ackAccepted') } })

  // ---- TCP options of a SYN ----------------------------------------------------------------
  const o4 = (options, t = {}) => spec(4, { options, ...t })
  const raw = (...bytes) => Buffer.from(bytes)
  add('opt-length-0', 'options', o4(raw(2, 0, 5, 180)), 'MSS option with length 0', synDrop('synDropMalformed'))
  add('opt-length-1', 'options', o4(raw(2, 1, 5, 180)), 'MSS option with length 1', synDrop('synDropMalformed'))
  add('opt-past-end', 'options', o4(raw(1, 1, 2, 4)), 'MSS option whose value is past the end of the options', synDrop('synDropMalformed'))
  add('opt-kind-last-byte', 'options', o4(raw(1, 1, 1, 2)), 'an option kind in the last byte, no length', synDrop('synDropMalformed'))
  add('opt-unknown-length-0', 'options', o4(raw(99, 0, 0, 0)), 'unknown option kind 99 with length 0', synDrop('synDropMalformed'))
  add('opt-unknown', 'options', o4(raw(99, 2, 1, 1)), 'unknown option kind 99, length 2', ANSWERED)
  add('opt-unknown-40', 'options', o4(Buffer.concat([raw(200, 40), Buffer.alloc(38, 7)])), 'one unknown option filling all 40 option bytes', ANSWERED)
  add('opt-eol-then-garbage', 'options', o4(raw(0, 2, 1, 0xff)), 'EOL, then bytes that would be malformed', ANSWERED)
  add('opt-40-nops', 'options', o4(Buffer.alloc(40, 1)), '40 NOPs', ANSWERED)
  add('opt-mss-repeated', 'options', o4([{ kind: 'mss', value: 1460 }, { kind: 'mss', value: 536 }]), 'MSS twice (the last one counts)', ANSWERED)
  for (const mss of [0, 1, 535]) add(`opt-mss-${mss}`, 'options', o4([{ kind: 'mss', value: mss }]), `MSS ${mss} (< 536)`, synDrop('synDropMss'))
  add('opt-mss-536', 'options', o4([{ kind: 'mss', value: 536 }]), 'MSS 536', ANSWERED)
  add('opt-mss-65535', 'options', o4([{ kind: 'mss', value: 65535 }]), 'MSS 65535', ANSWERED)
  add('opt-mss-1219-v6', 'options', spec(6, { options: [{ kind: 'mss', value: 1219 }] }), 'IPv6 MSS 1219 (< 1220)', synDrop('synDropMss'))
  add('opt-mss-1220-v6', 'options', spec(6, { options: [{ kind: 'mss', value: 1220 }] }), 'IPv6 MSS 1220', ANSWERED)
  for (const ws of [14, 15, 255]) add(`opt-wscale-${ws}`, 'options', o4([{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'wscale', value: ws }]), `window scale ${ws}${ws > 14 ? ' (> 14: treated as 14)' : ''}`, ANSWERED)
  add('opt-wscale-size-4', 'options', o4(raw(3, 4, 7, 0)), 'window scale option of size 4 (ignored)', ANSWERED)
  add('opt-mss-size-3', 'options', o4(raw(2, 3, 5, 1)), 'MSS option of size 3 (ignored: MSS 536 assumed)', ANSWERED)
  add('opt-sackperm-size-3', 'options', o4(raw(4, 3, 0, 1)), 'SACK-permitted of size 3 (ignored)', ANSWERED)
  add('opt-ts-size-9', 'options', o4(Buffer.concat([raw(8, 9), Buffer.alloc(7), raw(0, 0, 0)])), 'timestamp option of size 9 (ignored)', ANSWERED)
  add('opt-ts-repeated', 'options', o4([{ kind: 'ts', tsval: 1 }, { kind: 'ts', tsval: 2 }, { kind: 'nop' }, { kind: 'nop' }]), 'timestamps twice', ANSWERED)
  add('opt-sack-blocks', 'options', o4([{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[1, 2], [3, 4]] }]), 'SACK blocks in a SYN', ANSWERED)
  add('opt-fastopen', 'options', o4([{ kind: 'mss', value: 1460 }, { kind: 'raw', type: 34 }, { kind: 'nop' }, { kind: 'nop' }]), 'TCP Fast Open cookie request', ANSWERED)
  add('opt-md5', 'options', o4([{ kind: 'raw', type: 19, data: Array(16).fill(0x5a) }, { kind: 'nop' }, { kind: 'nop' }]), 'TCP MD5 signature option (the kernel drops it without a key)', synDrop('synDropMalformed'))
  add('opt-ack-length-0-valid', 'options', validAck(4, { options: raw(8, 0, 0, 0) }), 'valid cookie ACK with a length-0 option', dropped('ackMalformed'))
  add('opt-ack-ts-valid', 'options', validAck(4, { options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'ts', tsval: 9, tsecr: 7 }] }), 'valid cookie ACK with timestamps', dropped('ackAssignFailed'), {
    veth: { expect: passed('ackAccepted') },
  })

  // ---- ports -------------------------------------------------------------------------------
  add('port-source-0', 'ports', spec(4, { sport: 0 }), 'source port 0', ANSWERED)
  add('port-source-65535', 'ports', spec(4, { sport: 65535 }), 'source port 65535', ANSWERED)
  add('port-destination-0', 'ports', spec(4, { dport: 0 }), 'destination port 0 (never protected)', PASSED_NONE)
  add('port-destination-1', 'ports', spec(4, { dport: 1 }), 'destination port 1 (protected)', ANSWERED)
  add('port-destination-65535', 'ports', spec(6, { dport: 65535 }), 'IPv6, destination port 65535 (protected)', ANSWERED)
  add('port-destination-65535-ack', 'ports', randomAck(4, { dport: 65535 }), 'forged ACK to port 65535', dropped('ackRejected'))

  // ---- addresses ---------------------------------------------------------------------------
  const a4 = (src, dst, t = {}) => spec(4, t, { src, dst })
  const a6 = (src, dst, t = {}) => spec(6, t, { src, dst })
  add('addr4-source-0', 'addresses', a4('0.0.0.0', S4), 'IPv4 source 0.0.0.0', synDrop('synDropAddress'))
  add('addr4-source-broadcast', 'addresses', a4('255.255.255.255', S4), 'IPv4 source 255.255.255.255', synDrop('synDropAddress'))
  add('addr4-destination-broadcast', 'addresses', a4(C4, '255.255.255.255'), 'IPv4 destination 255.255.255.255', synDrop('synDropAddress'))
  add('addr4-source-multicast', 'addresses', a4('224.0.0.1', S4), 'IPv4 source 224.0.0.1', synDrop('synDropAddress'))
  add('addr4-destination-multicast', 'addresses', a4(C4, '239.1.2.3'), 'IPv4 destination 239.1.2.3', synDrop('synDropAddress'))
  add('addr4-destination-subnet-broadcast', 'addresses', a4(C4, '192.0.2.255'), 'IPv4 destination 192.0.2.255, the server subnet\'s broadcast (the kernel refuses it: tcp_v4_conn_request; its route is RTN_BROADCAST)', synDrop('synDropAddress'))
  add('addr4-destination-0', 'addresses', a4(C4, '0.0.0.0'), 'IPv4 destination 0.0.0.0', synDrop('synDropAddress'))
  add('addr4-destination-not-local', 'addresses', a4(C4, '203.0.113.9'), 'IPv4 destination 203.0.113.9, an address this host does not have (no local route: the kernel would forward or drop it)', synDrop('synDropAddress'))
  add('addr4-source-loopback', 'addresses', a4('127.0.0.1', S4), 'IPv4 source 127.0.0.1 (legitimate on lo, a martian on the veth)', ANSWERED, {
    veth: { expect: synDrop('synDropAddress') },
  })
  add('addr4-destination-loopback', 'addresses', a4(C4, '127.0.0.1'), 'IPv4 destination 127.0.0.1 (legitimate on lo, a martian on the veth)', ANSWERED, {
    veth: { expect: synDrop('synDropAddress') },
  })
  add('addr4-land', 'addresses', a4(S4, S4, { sport: PORT }), 'IPv4 "land": source = destination = 192.0.2.1:8080', ANSWERED, {
    veth: { expect: synDrop('synDropAddress'), why: 'from one of our own addresses, not on lo: a martian source (fib_validate_source(), accept_local is 0)' },
  })
  add('addr6-source-unspecified', 'addresses', a6('::', S6), 'IPv6 source ::', synDrop('synDropAddress'))
  add('addr6-source-multicast', 'addresses', a6('ff02::1', S6), 'IPv6 source ff02::1', synDrop('synDropAddress'))
  add('addr6-destination-multicast', 'addresses', a6(C6, 'ff02::1'), 'IPv6 destination ff02::1', synDrop('synDropAddress'))
  add('addr6-destination-unspecified', 'addresses', a6(C6, '::'), 'IPv6 destination ::', synDrop('synDropAddress'))
  add('addr6-destination-not-local', 'addresses', a6(C6, '2001:db8:ffff::9'), 'IPv6 destination this host does not have', synDrop('synDropAddress'))
  add('addr6-source-loopback', 'addresses', a6('::1', S6), 'IPv6 source ::1 (legitimate on lo, a martian on the veth)', ANSWERED, {
    veth: { expect: synDrop('synDropAddress') },
  })
  add('addr6-source-link-local', 'addresses', a6('fe80::3', S6), 'IPv6 source fe80::3', ANSWERED)

  // ---- checksums ---------------------------------------------------------------------------
  add('csum-tcp-bad', 'checksums', spec(4, { checksum: 'bad' }), 'IPv4 SYN with a wrong TCP checksum (the kernel drops it)', synDrop('synDropMalformed'))
  add('csum-tcp-zero', 'checksums', spec(4, { checksum: 'zero' }), 'IPv4 SYN with TCP checksum 0', synDrop('synDropMalformed'))
  add('csum-tcp-bad-v6', 'checksums', spec(6, { checksum: 'bad' }), 'IPv6 SYN with a wrong TCP checksum', synDrop('synDropMalformed'))
  add('csum-ack-valid-bad', 'checksums', validAck(4, { checksum: 'bad' }), 'valid cookie ACK with a wrong TCP checksum (the kernel drops it after the assignment)', dropped('ackAssignFailed'), {
    veth: { expect: passed('ackAccepted'), why: 'counted as accepted, but the kernel then drops the segment: no connection' },
  })

  return {
    format: 'syncookie-agent hostile corpus',
    version: 1,
    description: 'Malformed and edge-case frames with the verdict and counters bpf/syncookie.bpf.c must give; made by test/corpus/gen-hostile.mjs, used by test/kernel/hostile-corpus.test.ts',
    setup: SETUP,
    count: entries.length,
    entries,
  }
}

const FILE = path.join(here, 'hostile.json')

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = `${JSON.stringify(buildCorpus(), null, 1)}\n`
  if (process.argv.includes('--check')) {
    if (readFileSync(FILE, 'utf8') !== text) {
      console.error('test/corpus/hostile.json is not what gen-hostile.mjs builds: run node test/corpus/gen-hostile.mjs')
      process.exit(1)
    }
  } else {
    writeFileSync(FILE, text)
    console.log(`wrote ${FILE}`)
  }
}
