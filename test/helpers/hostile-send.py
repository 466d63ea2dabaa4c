#!/usr/bin/env python3
"""Sends hand-made Ethernet frames (hex, one per line on stdin) out of an interface over
AF_PACKET and reports the frames that came back, for the hostile-packet tests.

Run inside the namespace of the interface (ip netns exec NS python3 hostile-send.py ...).

  hostile-send.py --dev D [--listen-ms 300] [--gap-ms 0] [--max-frames 1000] < frames.hex
      Opens a sniffer on D, sends every frame in order (--gap-ms apart), then keeps listening
      for --listen-ms and prints {"sent": n, "received": ["hex", ...]}: the frames D received
      (not the ones it sent), at most --max-frames of them. Blank lines and lines starting
      with '#' are skipped.

Output is one JSON object on stdout.
"""
import argparse
import json
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dev", required=True)
    p.add_argument("--listen-ms", type=int, default=300)
    p.add_argument("--gap-ms", type=float, default=0)
    p.add_argument("--max-frames", type=int, default=1000)
    a = p.parse_args()
    if not 0 <= a.listen_ms <= 10_000 or not 0 <= a.gap_ms <= 1_000 or not 0 <= a.max_frames <= 100_000:
        p.error("--listen-ms 0..10000, --gap-ms 0..1000, --max-frames 0..100000")
    frames = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip() and not line.startswith("#")]
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((a.dev, ETH_P_ALL))
    sniff.setblocking(False)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.dev, 0))
    received = []

    def drain(until: float) -> None:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            sniff.settimeout(left)
            try:
                data, addr = sniff.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                return
            if addr[2] != PACKET_OUTGOING and len(received) < a.max_frames:
                received.append(data.hex())

    for f in frames:
        tx.send(f)
        drain(time.monotonic() + a.gap_ms / 1000)
    drain(time.monotonic() + a.listen_ms / 1000)
    json.dump({"sent": len(frames), "received": received}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
