#!/usr/bin/env python3
"""Hand-made TCP segments over AF_PACKET, for kernel tests that need packets no socket sends.

Run inside the client namespace (ip netns exec NS python3 rawtcp.py ...). The source address
should be one that no interface in that namespace owns (see Topology.raw in netns.ts): the
client kernel then drops the server's replies instead of resetting them, and the AF_PACKET
sniffer opened here still sees them.

  rawtcp.py syn --dev D --src-mac M --dst-mac M --src IP --dst IP --sport P --dport P
                [--isn N] [--mss 1460] [--wscale 7] [--sack] [--ts] [--timeout-ms 1000] [--tries 3]
      Sends a SYN (again, up to --tries times, if no SYN-ACK comes back) and prints
      {"tries": n, "isn": N, "synack": {"seq", "ack", "flags", "window", "options"} | null}.
  rawtcp.py ack ... --seq S --ack A [--tsval V --tsecr E] [--payload-hex H]
      Sends one ACK (with data if --payload-hex) and prints {"sent": true}.

Output is one JSON object on stdout. Exit status 0 unless the arguments are wrong.
"""
import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_options(mss=None, wscale=None, sack=False, ts=None) -> bytes:
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack:
        out += b"\x04\x02"
    if ts is not None:
        out += struct.pack("!BBII", 8, 10, ts[0], ts[1])
    if wscale is not None:
        out += struct.pack("!BBB", 3, 3, wscale)
    while len(out) % 4:
        out += b"\x01"  # NOP padding
    return out


def build_frame(a, flags, seq, ack, options=b"", payload=b"", window=64240) -> bytes:
    src = ipaddress.ip_address(a.src)
    dst = ipaddress.ip_address(a.dst)
    doff = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", a.sport, a.dport, seq, ack, doff << 4, flags, window, 0, 0)
    tcp += options + payload
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    else:
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(tcp), socket.IPPROTO_TCP)
    c = csum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    if src.version == 4:
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536), 0x4000, 64,
            socket.IPPROTO_TCP, 0, src.packed, dst.packed,
        )
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        ethertype = ETH_P_IP
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), socket.IPPROTO_TCP, 64, src.packed, dst.packed)
        ethertype = ETH_P_IPV6
    eth = bytes.fromhex(a.dst_mac.replace(":", "")) + bytes.fromhex(a.src_mac.replace(":", ""))
    return eth + struct.pack("!H", ethertype) + ip + tcp


def parse_options(data: bytes) -> dict:
    opts = {}
    i = 0
    while i < len(data):
        kind = data[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        length = data[i + 1]
        if length < 2 or i + length > len(data):
            break
        body = data[i + 2 : i + length]
        if kind == 2 and length == 4:
            opts["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3 and length == 3:
            opts["wscale"] = body[0]
        elif kind == 4 and length == 2:
            opts["sack"] = True
        elif kind == 8 and length == 10:
            opts["tsval"], opts["tsecr"] = struct.unpack("!II", body)
        i += length
    return opts


def parse_reply(frame: bytes, a):
    """The TCP segment in `frame` if it is from dst:dport to src:sport, else None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    if ethertype == ETH_P_IP and len(p) >= 20 and p[9] == socket.IPPROTO_TCP:
        ihl = (p[0] & 0x0F) * 4
        src, dst = socket.inet_ntop(socket.AF_INET, p[12:16]), socket.inet_ntop(socket.AF_INET, p[16:20])
        tcp = p[ihl:]
    elif ethertype == ETH_P_IPV6 and len(p) >= 40 and p[6] == socket.IPPROTO_TCP:
        src, dst = socket.inet_ntop(socket.AF_INET6, p[8:24]), socket.inet_ntop(socket.AF_INET6, p[24:40])
        tcp = p[40:]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack, off, flags, window = struct.unpack("!HHIIBBH", tcp[:16])
    if ipaddress.ip_address(src) != ipaddress.ip_address(a.dst) or ipaddress.ip_address(dst) != ipaddress.ip_address(a.src):
        return None
    if sport != a.dport or dport != a.sport:
        return None
    doff = (off >> 4) * 4
    return {
        "seq": seq,
        "ack": ack,
        "flags": flags,
        "window": window,
        "options": parse_options(tcp[20:doff]),
    }


def cmd_syn(a) -> dict:
    isn = a.isn if a.isn is not None else random.randrange(1 << 32)
    ts = (a.tsval, 0) if a.ts else None
    opts = tcp_options(mss=a.mss, wscale=a.wscale, sack=a.sack, ts=ts)
    frame = build_frame(a, SYN, isn, 0, opts)
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((a.dev, ETH_P_ALL))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.dev, 0))
    tries = 0
    synack = None
    rst = None
    while tries < a.tries and synack is None:
        tries += 1
        tx.send(frame)
        deadline = time.monotonic() + a.timeout_ms / 1000
        while time.monotonic() < deadline:
            sniff.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data, addr = sniff.recvfrom(65536)
            except socket.timeout:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            seg = parse_reply(data, a)
            if seg is None:
                continue
            if seg["flags"] & (SYN | ACK) == (SYN | ACK):
                synack = seg
                break
            if seg["flags"] & RST:
                rst = seg
    return {"tries": tries, "isn": isn, "synack": synack, "rst": rst}


def cmd_ack(a) -> dict:
    opts = tcp_options(ts=(a.tsval, a.tsecr)) if a.tsval is not None else b""
    payload = bytes.fromhex(a.payload_hex) if a.payload_hex else b""
    flags = ACK | (PSH if payload else 0)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.dev, 0))
    tx.send(build_frame(a, flags, a.seq, a.ack, opts, payload, window=a.window))
    return {"sent": True}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["syn", "ack"])
    p.add_argument("--dev", required=True)
    p.add_argument("--src-mac", required=True)
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--sport", type=int, required=True)
    p.add_argument("--dport", type=int, required=True)
    p.add_argument("--isn", type=int)
    p.add_argument("--mss", type=int, default=1460)
    p.add_argument("--wscale", type=int)
    p.add_argument("--sack", action="store_true")
    p.add_argument("--ts", action="store_true")
    p.add_argument("--tsval", type=int)
    p.add_argument("--tsecr", type=int, default=0)
    p.add_argument("--seq", type=int)
    p.add_argument("--ack", type=int)
    p.add_argument("--window", type=int, default=502)
    p.add_argument("--payload-hex")
    p.add_argument("--timeout-ms", type=int, default=1000)
    p.add_argument("--tries", type=int, default=3)
    a = p.parse_args()
    if not 1 <= a.tries <= 10 or not 1 <= a.timeout_ms <= 10_000:
        p.error("--tries must be 1..10 and --timeout-ms 1..10000")
    if a.cmd == "syn":
        if a.ts and a.tsval is None:
            a.tsval = random.randrange(1, 1 << 32)
        out = cmd_syn(a)
    else:
        if a.seq is None or a.ack is None:
            p.error("ack needs --seq and --ack")
        out = cmd_ack(a)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
