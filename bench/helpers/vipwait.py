#!/usr/bin/env python3
"""Wait until this network namespace holds every given address; poll the kernel
with a netlink RTM_GETADDR dump every 5 ms (no fork per poll).

  vipwait.py READY_FILE TIMEOUT_S ADDRESS...

Writes "ready" to READY_FILE after the first dump (so the caller knows polling has
started), then prints one JSON object on stdout: for each address, the wall-clock
time (ns since the epoch, CLOCK_REALTIME like `date +%s%N`) of the first dump that
showed it, or null if it never appeared within TIMEOUT_S; "all" is the time all of
them were present at once (null if never). Bounded by TIMEOUT_S."""
import ipaddress
import json
import socket
import struct
import sys
import time

RTM_GETADDR, RTM_NEWADDR, NLMSG_DONE, NLMSG_ERROR = 22, 20, 3, 2
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2


def dump(sock, seq):
    """The set of addresses (text) in this namespace, IPv4 and IPv6."""
    msg = struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
    hdr = struct.pack("=IHHII", 16 + len(msg), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(hdr + msg)
    found = set()
    while True:
        data = sock.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            ln, typ, _flags, mseq, _pid = struct.unpack_from("=IHHII", data, off)
            if ln < 16:
                return found
            if mseq == seq:
                if typ == NLMSG_DONE or typ == NLMSG_ERROR:
                    return found
                if typ == RTM_NEWADDR:
                    fam = data[off + 16]
                    a = off + 16 + 8
                    end = off + ln
                    while a + 4 <= end:
                        alen, atyp = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atyp in (IFA_ADDRESS, IFA_LOCAL):
                            raw = data[a + 4:a + alen]
                            if fam == socket.AF_INET and len(raw) == 4:
                                found.add(str(ipaddress.IPv4Address(raw)))
                            elif fam == socket.AF_INET6 and len(raw) == 16:
                                found.add(str(ipaddress.IPv6Address(raw)))
                        a += (alen + 3) & ~3
            off += (ln + 3) & ~3


def main():
    ready, timeout = sys.argv[1], float(sys.argv[2])
    want = [str(ipaddress.ip_address(a)) for a in sys.argv[3:]]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    first = {a: None for a in want}
    allt = None
    deadline = time.monotonic() + timeout
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        have = dump(sock, seq)
        t = time.time_ns()
        for a in want:
            if first[a] is None and a in have:
                first[a] = t
        if seq == 1:
            with open(ready, "w") as f:
                f.write("ready\n")
        if all(a in have for a in want):
            allt = t
            break
        time.sleep(0.005)
    print(json.dumps({"first": first, "all": allt}))


main()
