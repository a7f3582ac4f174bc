#!/usr/bin/env python3
"""A server-to-client UDP stream for failover tests (think of a media stream or a
download over UDP: the client asks once, then only listens).

  udp_stream.py server PORT DURATION [INTERVAL]
      wait (at most DURATION s) for one datagram, then send a numbered datagram to
      its sender every INTERVAL s (default 0.02) for DURATION s; errors such as
      ICMP port unreachable are ignored (the stream goes on).
  udp_stream.py client HOST PORT DURATION
      send one request, then receive for DURATION s; print JSON: how many
      datagrams came back, the longest silence, and the silence at the end.

Every loop is bounded by DURATION."""
import json
import socket
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def server(port, duration, interval):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.settimeout(duration)
    try:
        _, peer = s.recvfrom(2048)
    except socket.timeout:
        return
    end = time.monotonic() + duration
    seq = 0
    while time.monotonic() < end:
        seq += 1
        try:
            s.sendto(b"%d\n" % seq, peer)
        except OSError:
            pass  # port unreachable from a firewall without the state: keep going
        time.sleep(interval)


def client(host, port, duration):
    result = {"received": 0, "max_gap_s": 0.0, "tail_gap_s": 0.0, "error": None}
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(0.05)
    start = last = time.monotonic()
    try:
        s.sendto(b"hello\n", (host, port))
    except OSError as e:
        result["error"] = "send: %s" % e
    while result["error"] is None and time.monotonic() - start < duration:
        try:
            s.recvfrom(2048)
        except socket.timeout:
            continue
        except OSError as e:
            result["error"] = "recv: %s" % e
            break
        now = time.monotonic()
        if result["received"]:
            result["max_gap_s"] = max(result["max_gap_s"], now - last)
        result["received"] += 1
        last = now
    result["tail_gap_s"] = round(time.monotonic() - last, 3)
    result["max_gap_s"] = round(max(result["max_gap_s"], result["tail_gap_s"]), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.02)
    else:
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
