#!/usr/bin/env python3
"""What BPF is attached to an interface's TC ingress, through the bpf() syscall.

bpftool 7.1 and `tc filter show` do not see tcx attachments, so kernel tests ask the kernel
directly (BPF_PROG_QUERY with BPF_TCX_INGRESS). Run inside the namespace of the interface
(nsenter --net=/run/netns/NS python3 bpfquery.py ...): ifindexes are per namespace.

  bpfquery.py tcx-ingress DEV
      {"dev", "ifindex", "progs": [{"id", "name", "type"}], "link_ids": [...], "revision"}
  bpfquery.py prog-exists ID...
      {"ID": true|false, ...}: whether a program id still exists anywhere.
  bpfquery.py hold-dummy DEV
      Loads a 2-instruction SCHED_CLS program (returns TC_ACT_UNSPEC), attaches it to DEV's tcx
      ingress through a link, prints {"prog_id", "link_fd"} and sleeps until killed or until
      stdin reaches EOF: the harness self-test uses it to show the query sees a tcx program
      and that the link dies with its process.
"""
import ctypes
import json
import os
import socket
import struct
import sys
import time

SYS_bpf = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_LINK_CREATE = 28
BPF_TCX_INGRESS = 46
BPF_PROG_TYPE_SCHED_CLS = 3
ATTR_SIZE = 128

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: bytearray) -> int:
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    r = libc.syscall(SYS_bpf, cmd, buf, len(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf({cmd}): {os.strerror(e)}")
    return r


def attr() -> bytearray:
    return bytearray(ATTR_SIZE)


def tcx_ingress(dev: str) -> dict:
    ifindex = socket.if_nametoindex(dev)
    cap = 64
    prog_ids = (ctypes.c_uint32 * cap)()
    link_ids = (ctypes.c_uint32 * cap)()
    a = attr()
    struct.pack_into("=III", a, 0, ifindex, BPF_TCX_INGRESS, 0)
    struct.pack_into("=Q", a, 16, ctypes.addressof(prog_ids))
    struct.pack_into("=I", a, 24, cap)
    struct.pack_into("=Q", a, 40, ctypes.addressof(link_ids))
    bpf(BPF_PROG_QUERY, a)
    count = struct.unpack_from("=I", a, 24)[0]
    revision = struct.unpack_from("=Q", a, 56)[0]
    progs = [prog_info(prog_ids[i]) for i in range(min(count, cap))]
    return {
        "dev": dev,
        "ifindex": ifindex,
        "progs": progs,
        "link_ids": [link_ids[i] for i in range(min(count, cap)) if link_ids[i]],
        "revision": revision,
    }


def prog_fd_by_id(prog_id: int) -> int:
    a = attr()
    struct.pack_into("=I", a, 0, prog_id)
    return bpf(BPF_PROG_GET_FD_BY_ID, a)


def prog_info(prog_id: int) -> dict:
    fd = prog_fd_by_id(prog_id)
    try:
        info = bytearray(256)
        info_buf = (ctypes.c_char * len(info)).from_buffer(info)
        a = attr()
        struct.pack_into("=II", a, 0, fd, len(info))
        struct.pack_into("=Q", a, 8, ctypes.addressof(info_buf))
        bpf(BPF_OBJ_GET_INFO_BY_FD, a)
        ptype, pid = struct.unpack_from("=II", info, 0)
        name = bytes(info[64:80]).split(b"\0", 1)[0].decode()
        return {"id": pid, "name": name, "type": ptype}
    finally:
        os.close(fd)


def prog_exists(prog_id: int) -> bool:
    try:
        os.close(prog_fd_by_id(prog_id))
        return True
    except OSError as e:
        if e.errno == 2:  # ENOENT
            return False
        raise


def hold_dummy(dev: str) -> None:
    insns = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0 (TC_ACT_OK); exit
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    a = attr()
    struct.pack_into("=II", a, 0, BPF_PROG_TYPE_SCHED_CLS, len(insns) // 8)
    struct.pack_into("=QQ", a, 8, ctypes.addressof(insn_buf), ctypes.addressof(lic))
    struct.pack_into("=16s", a, 48, b"sca_test_dummy")
    struct.pack_into("=I", a, 68, BPF_TCX_INGRESS)  # expected_attach_type
    prog_fd = bpf(BPF_PROG_LOAD, a)
    a = attr()
    struct.pack_into("=IIII", a, 0, prog_fd, socket.if_nametoindex(dev), BPF_TCX_INGRESS, 0)
    link_fd = bpf(BPF_LINK_CREATE, a)
    info = tcx_ingress(dev)
    mine = [p["id"] for p in info["progs"] if p["name"] == "sca_test_dummy"]
    print(json.dumps({"prog_id": mine[0] if mine else None, "link_fd": link_fd}), flush=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if sys.stdin.read(1) == "":
            return
    return


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tcx-ingress":
        print(json.dumps(tcx_ingress(args[0])))
    elif cmd == "prog-exists":
        print(json.dumps({i: prog_exists(int(i)) for i in args}))
    elif cmd == "hold-dummy":
        hold_dummy(args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
