#!/usr/bin/env python3
"""What a connection negotiated, read from TCP_INFO on the server socket.

Debian 12's `ss -ti` (iproute2 6.1) leaves the ts/sack/ecn flags out unless
`-o` is given too; reading tcpi_options directly says exactly what was negotiated.

  tcpinfo.py serve PORT COUNT   accept COUNT connections (IPv4 and IPv6), print one JSON line each
  tcpinfo.py connect HOST PORT COUNT [TIMEOUT]   connect COUNT times, send a line, wait for the close
"""
import json
import socket
import struct
import sys

TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN = 1, 2, 4, 8


def info(conn):
    raw = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    options, wscale = raw[5], raw[6]
    snd_mss = struct.unpack_from('=I', raw, 16)[0]  # tcpi_snd_mss
    return {
        'ts': bool(options & TCPI_OPT_TIMESTAMPS),
        'sack': bool(options & TCPI_OPT_SACK),
        'wscale': [wscale & 0xF, wscale >> 4] if options & TCPI_OPT_WSCALE else None,
        'ecn': bool(options & TCPI_OPT_ECN),
        'mss': snd_mss,
    }


def serve(port, count):
    lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lst.bind(('::', port))
    lst.listen(128)
    print(json.dumps({'listening': port}), flush=True)
    for _ in range(count):
        conn, peer = lst.accept()
        conn.settimeout(5)
        conn.recv(64)
        line = info(conn)
        line['peer'] = peer[0]
        print(json.dumps(line), flush=True)
        conn.close()


def connect(host, port, count, timeout):
    ok = 0
    for _ in range(count):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            s.sendall(b'hello\n')
            s.recv(64)
            ok += 1
        except OSError as e:
            print(json.dumps({'error': str(e)}), flush=True)
        finally:
            s.close()
    print(json.dumps({'connected': ok, 'of': count}), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'serve':
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == 'connect':
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 3.0)
    else:
        sys.exit(__doc__)
