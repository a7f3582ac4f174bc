#!/usr/bin/env python3
"""Create many UDP flows at once: one datagram from one socket to each of COUNT
destination ports starting at FIRST, at most RATE datagrams a second (default
20000), so that each becomes its own conntrack entry on the firewall in between.

  udp_flows.py HOST FIRST COUNT [RATE] [SPORT]

Bounded by COUNT; prints how many were sent."""
import socket
import sys
import time

host, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rate = float(sys.argv[4]) if len(sys.argv) > 4 else 20000.0
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 0
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if ":" in host else "0.0.0.0", sport))
start = time.monotonic()
sent = 0
for i in range(count):
    try:
        s.sendto(b"x", (host, first + i))
        sent += 1
    except OSError:
        pass
    if sent % 20 == 0:
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
print(sent)
