#!/usr/bin/env python3
"""A TCP stream for failover tests: send a numbered line every INTERVAL seconds to
an echo server, read the echoes, and report as JSON the longest time without an
echo, how many echoes came back, and whether the connection broke (reset, EOF).
Bounded: stops after DURATION seconds."""
import json
import socket
import sys
import time

host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.02
result = {"connected": False, "echoes": 0, "max_gap_s": 0.0, "error": None}
try:
    s = socket.create_connection((host, port), timeout=3)
    result["connected"] = True
    s.settimeout(interval)
    start = last = time.monotonic()
    seq, buf = 0, b""
    while time.monotonic() - start < duration:
        seq += 1
        try:
            s.sendall(b"%d\n" % seq)
        except OSError as e:
            result["error"] = "send: %s" % e
            break
        try:
            data = s.recv(65536)
            if not data:
                result["error"] = "connection closed by peer"
                break
            buf += data
            lines = buf.count(b"\n")
            if lines:
                result["echoes"] += lines
                buf = buf[buf.rindex(b"\n") + 1:]
                now = time.monotonic()
                result["max_gap_s"] = max(result["max_gap_s"], now - last)
                last = now
        except socket.timeout:
            pass
        except OSError as e:
            result["error"] = "recv: %s" % e
            break
        time.sleep(interval)
    result["max_gap_s"] = round(max(result["max_gap_s"], time.monotonic() - last), 3)
except OSError as e:
    result["error"] = "connect: %s" % e
print(json.dumps(result))
