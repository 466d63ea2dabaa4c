#!/usr/bin/env python3
"""Neighbours for the agent on TC ingress, through the bpf() syscall and rtnetlink, no bpftool.

A counting SCHED_CLS program (one u64 in an array map, atomically incremented for every
packet it sees, then returns a fixed verdict) stands in for "another program already on the
interface": the coexistence tests read its counter to see whether it still runs.

Run inside the namespace of the interface (nsenter --net=/run/netns/NS python3 ...): ifindexes
are per namespace.

  hostile-bpf.py tcx-counter DEV [--ret N]
      Loads a counter, attaches it to DEV's tcx ingress through a link, prints
      {"prog_id", "map_id"} and holds the link until stdin reaches EOF (or 600 s). N is the
      verdict, default -1 (TCX_NEXT: the programs after it still run).
  hostile-bpf.py clsact-counter DEV --prio P --handle H [--ret N]
      Loads a counter and adds it as a direct-action cls_bpf filter at clsact ingress of DEV
      (the clsact qdisc must exist), prints {"prog_id", "map_id"} and exits: the filter keeps
      the program alive. N defaults to -1 (TC_ACT_UNSPEC: the next filter runs).
  hostile-bpf.py read-counter MAP_ID
      {"count": n}
  hostile-bpf.py read-map MAP_ID
      {"hex": "..."}: the value at u32 key 0 of any array map by id (per-CPU maps: every CPU's
      copy, each rounded up to 8 bytes, as the kernel returns them).
  hostile-bpf.py ids
      {"progs": [...], "maps": [...], "links": [...]}: every BPF object id in the kernel.

Output is one JSON object on stdout.
"""
import ctypes
import json
import os
import socket
import struct
import sys
import time

SYS_bpf = 321  # x86_64
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_PROG_LOAD = 5
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_LINK_CREATE = 28
BPF_LINK_GET_NEXT_ID = 31
BPF_TCX_INGRESS = 46
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_MAP_TYPE_ARRAY = 2
ATTR_SIZE = 128

# the bpf(2) wrapper of the harness's own helper (same directory)
from bpfquery import bpf, libc  # noqa: E402


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def obj_id(fd: int, info_size: int, id_offset: int) -> int:
    info = bytearray(info_size)
    buf = (ctypes.c_char * len(info)).from_buffer(info)
    a = bytearray(ATTR_SIZE)
    struct.pack_into("=II", a, 0, fd, len(info))
    struct.pack_into("=Q", a, 8, ctypes.addressof(buf))
    bpf(BPF_OBJ_GET_INFO_BY_FD, a)
    return struct.unpack_from("=I", info, id_offset)[0]


def load_counter(ret: int, attach_type: int) -> tuple[int, int]:
    """(prog_fd, map_fd) of: count++ in map[0]; return ret."""
    a = bytearray(ATTR_SIZE)
    struct.pack_into("=IIII", a, 0, BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    struct.pack_into("=16s", a, 28, b"sca_hx_count")
    map_fd = bpf(BPF_MAP_CREATE, a)
    prog = b"".join([
        insn(0x62, dst=10, off=-4, imm=0),         # *(u32 *)(r10 - 4) = 0
        insn(0xBF, dst=2, src=10),                 # r2 = r10
        insn(0x07, dst=2, imm=-4),                 # r2 += -4
        insn(0x18, dst=1, src=1, imm=map_fd),      # r1 = map (BPF_PSEUDO_MAP_FD)
        insn(0x00),
        insn(0x85, imm=1),                         # call bpf_map_lookup_elem
        insn(0x15, dst=0, off=2, imm=0),           # if r0 == 0 goto +2
        insn(0xB7, dst=1, imm=1),                  # r1 = 1
        insn(0xDB, dst=0, src=1, off=0, imm=0),    # lock *(u64 *)(r0 + 0) += r1
        insn(0xB7, dst=0, imm=ret),                # r0 = ret
        insn(0x95),                                # exit
    ])
    insns = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    a = bytearray(ATTR_SIZE)
    struct.pack_into("=II", a, 0, BPF_PROG_TYPE_SCHED_CLS, len(prog) // 8)
    struct.pack_into("=QQ", a, 8, ctypes.addressof(insns), ctypes.addressof(lic))
    struct.pack_into("=IIQ", a, 24, 1, len(log), ctypes.addressof(log))
    struct.pack_into("=16s", a, 48, b"sca_hx_counter")
    struct.pack_into("=I", a, 68, attach_type)
    try:
        prog_fd = bpf(BPF_PROG_LOAD, a)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')}") from None
    return prog_fd, map_fd


def nla(kind: int, payload: bytes) -> bytes:
    n = struct.pack("=HH", 4 + len(payload), kind) + payload
    return n + b"\0" * ((4 - len(n) % 4) % 4)


def add_cls_bpf(dev: str, prio: int, handle: int, prog_fd: int) -> None:
    """RTM_NEWTFILTER: cls_bpf, direct action, at clsact ingress (like `tc filter add ... bpf da`)."""
    RTM_NEWTFILTER = 44
    NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
    TCA_KIND, TCA_OPTIONS = 1, 2
    TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS = 6, 7, 8
    ETH_P_ALL = 0x0003
    parent = 0xFFFFFFF2  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
    info = (prio << 16) | socket.htons(ETH_P_ALL)
    tcm = struct.pack("=BBHiIII", socket.AF_UNSPEC, 0, 0, socket.if_nametoindex(dev), handle, parent, info)
    opts = nla(TCA_BPF_FD, struct.pack("=I", prog_fd)) + nla(TCA_BPF_NAME, b"sca_hx_counter\0") + nla(
        TCA_BPF_FLAGS, struct.pack("=I", 1)  # TCA_BPF_FLAG_ACT_DIRECT
    )
    body = tcm + nla(TCA_KIND, b"bpf\0") + nla(TCA_OPTIONS | 0x8000, opts)  # NLA_F_NESTED
    msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE, 1, 0) + body
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.bind((0, 0))
        s.send(msg)
        reply = s.recv(65536)
        err = struct.unpack_from("=i", reply, 16)[0]  # NLMSG_ERROR: error code after the header
        if err != 0:
            raise OSError(-err, f"RTM_NEWTFILTER on {dev}: {os.strerror(-err)}")
    finally:
        s.close()


def read_counter(map_id: int) -> int:
    a = bytearray(ATTR_SIZE)
    struct.pack_into("=I", a, 0, map_id)
    fd = bpf(BPF_MAP_GET_FD_BY_ID, a)
    try:
        key = ctypes.create_string_buffer(4)
        value = ctypes.create_string_buffer(8)
        a = bytearray(ATTR_SIZE)
        struct.pack_into("=IIQQ", a, 0, fd, 0, ctypes.addressof(key), ctypes.addressof(value))
        bpf(BPF_MAP_LOOKUP_ELEM, a)
        return struct.unpack("=Q", value.raw)[0]
    finally:
        os.close(fd)


def read_map(map_id: int) -> bytes:
    a = bytearray(ATTR_SIZE)
    struct.pack_into("=I", a, 0, map_id)
    fd = bpf(BPF_MAP_GET_FD_BY_ID, a)
    try:
        info = bytearray(128)
        buf = (ctypes.c_char * len(info)).from_buffer(info)
        a = bytearray(ATTR_SIZE)
        struct.pack_into("=II", a, 0, fd, len(info))
        struct.pack_into("=Q", a, 8, ctypes.addressof(buf))
        bpf(BPF_OBJ_GET_INFO_BY_FD, a)
        map_type, _, _, value_size = struct.unpack_from("=IIII", info, 0)
        size = value_size
        if map_type in (5, 6, 10):  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
            size = possible_cpus() * ((value_size + 7) // 8 * 8)
        key = ctypes.create_string_buffer(4)
        value = ctypes.create_string_buffer(size)
        a = bytearray(ATTR_SIZE)
        struct.pack_into("=IIQQ", a, 0, fd, 0, ctypes.addressof(key), ctypes.addressof(value))
        bpf(BPF_MAP_LOOKUP_ELEM, a)
        return value.raw
    finally:
        os.close(fd)


def possible_cpus() -> int:
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def all_ids(cmd: int) -> list[int]:
    out = []
    start = 0
    for _ in range(1_000_000):
        a = bytearray(ATTR_SIZE)
        struct.pack_into("=I", a, 0, start)
        try:
            bpf(cmd, a)
        except OSError as e:
            if e.errno == 2:  # ENOENT: no more
                break
            raise
        start = struct.unpack_from("=I", a, 4)[0]
        out.append(start)
    return out


def arg(args: list[str], name: str, default: int | None = None) -> int:
    if name in args:
        return int(args[args.index(name) + 1], 0)
    if default is None:
        raise SystemExit(f"{name} is required")
    return default


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tcx-counter":
        prog_fd, map_fd = load_counter(arg(args, "--ret", -1), BPF_TCX_INGRESS)
        a = bytearray(ATTR_SIZE)
        struct.pack_into("=IIII", a, 0, prog_fd, socket.if_nametoindex(args[0]), BPF_TCX_INGRESS, 0)
        bpf(BPF_LINK_CREATE, a)
        print(json.dumps({"prog_id": obj_id(prog_fd, 256, 4), "map_id": obj_id(map_fd, 128, 4)}), flush=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if sys.stdin.read(1) == "":
                break
    elif cmd == "clsact-counter":
        prog_fd, map_fd = load_counter(arg(args, "--ret", -1), 0)
        add_cls_bpf(args[0], arg(args, "--prio"), arg(args, "--handle"), prog_fd)
        print(json.dumps({"prog_id": obj_id(prog_fd, 256, 4), "map_id": obj_id(map_fd, 128, 4)}))
    elif cmd == "read-counter":
        print(json.dumps({"count": read_counter(int(args[0]))}))
    elif cmd == "read-map":
        print(json.dumps({"hex": read_map(int(args[0])).hex()}))
    elif cmd == "ids":
        print(json.dumps({
            "progs": all_ids(BPF_PROG_GET_NEXT_ID),
            "maps": all_ids(BPF_MAP_GET_NEXT_ID),
            "links": all_ids(BPF_LINK_GET_NEXT_ID),
        }))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
