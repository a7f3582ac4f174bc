#!/usr/bin/env python3
"""Hostile-input flood for the e2e tests: bad CARP (IP protocol 112) and pfsync
(protocol 240) packets, sent only to the lab's own groups and addresses.

  flood.py carp  IFACE COUNT RATE      from the LAN client, round-robin over:
      badauth   vhid 1 advertisement, right addresses, HMAC with a wrong password
      badvhid   well-formed advertisement for vhid 7 (not configured)
      vrrp3     VRRPv3 advertisement for VRID 1 (version 3)
      badttl    vhid 1 advertisement with TTL 64 (multicast mode wants 255)
      short     2..35 random bytes (version nibble 2)
      garbage   36 random bytes (any version, wrong checksum)
      pf-lan    pfsync-looking packet to the firewall's LAN address (protocol 240)
    each over IPv4 (224.0.0.18, 198.51.100.2 for pf-lan) and, where it makes
    sense, IPv6 (ff02::12).
  flood.py pfsync IFACE COUNT RATE     on the sync link, to 224.0.0.240:
      ttl       a pfsync v5 header with TTL 1..254
      garbage   TTL 255: random bytes with a version byte other than 5, or too short

Bounded by COUNT (and RATE packets a second); prints a JSON object of what was
sent, by kind."""
import hashlib
import hmac
import json
import os
import random
import socket
import struct
import sys
import time

LAB = ("198.51.100.", "2001:db8:", "224.0.0.18", "ff02::12", "224.0.0.240")


def in_lab(addr):
    return any(addr.startswith(p) or addr == p for p in LAB)


def cksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def carp_adv(vhid, key, addrs4, addrs6, advskew=0, advbase=1):
    counter = os.urandom(8)
    msg = b"\x02\x01" + bytes([vhid])
    for a in sorted(set(socket.inet_pton(socket.AF_INET, x) for x in addrs4)):
        msg += a
    for a in sorted(set(socket.inet_pton(socket.AF_INET6, x) for x in addrs6)):
        msg += a
    md = hmac.new(key[:19], msg + counter, hashlib.sha1).digest()
    hdr = struct.pack("!BBBBBBH", 0x21, vhid, advskew, 7, 0, advbase, 0) + counter + md
    return hdr[:6] + struct.pack("!H", cksum(hdr)) + hdr[8:]


def vrrp3(vrid, addrs4):
    body = struct.pack("!BBBBH", 0x31, vrid, 100, len(addrs4), 100)
    body += b"".join(socket.inet_aton(a) for a in addrs4)
    return body + b"\0\0"  # checksum left 0: carpd must reject it on the version


def main():
    mode, iface, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rnd = random.Random(1)
    sent = {}
    socks = []
    if mode == "carp":
        s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s4ttl = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        s4ttl.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s4ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
        s6.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        pf = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
        pf.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        pf.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
        socks = [s4, s4ttl, s6, pf]
        idx6 = socket.if_nametoindex(iface)
        g4, g6 = "224.0.0.18", "ff02::12"
        a4, a6 = ["198.51.100.1"], ["2001:db8:1::1"]
        wrong = b"notthepassword"

        def k_badauth(i):
            if i % 2:
                return s4, carp_adv(1, wrong, a4, a6), (g4, 0), "badauth4"
            return s6, carp_adv(1, wrong, a4, a6), (g6, 0, 0, idx6), "badauth6"

        def k_badvhid(i):
            if i % 2:
                return s4, carp_adv(7, wrong, ["198.51.100.7"], []), (g4, 0), "badvhid4"
            return s6, carp_adv(7, wrong, [], ["2001:db8:1::7"]), (g6, 0, 0, idx6), "badvhid6"

        def k_vrrp3(i):
            return s4, vrrp3(1, a4), (g4, 0), "vrrp3"

        def k_badttl(i):
            return s4ttl, carp_adv(1, wrong, a4, a6), (g4, 0), "badttl4"

        def k_short(i):
            n = rnd.randrange(2, 36)
            return s4, bytes([0x21]) + os.urandom(n - 1), (g4, 0), "short4"

        def k_garbage(i):
            if i % 2:
                return s4, os.urandom(36), (g4, 0), "garbage4"
            return s6, os.urandom(36), (g6, 0, 0, idx6), "garbage6"

        def k_pflan(i):
            return pf, bytes([5, 0]) + struct.pack("!H", 12) + os.urandom(8), ("198.51.100.2", 0), "pf_lan"

        kinds = [k_badauth, k_badvhid, k_vrrp3, k_badttl, k_short, k_garbage, k_pflan]
    elif mode == "pfsync":
        ttl = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
        ttl.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        g255 = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
        g255.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        g255.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        g255.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        socks = [ttl, g255]
        g = "224.0.0.240"

        def k_ttl(i):
            ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1 + i % 254)
            # a well-formed empty pfsync v5 packet: header only (version, pad, length, pfcksum)
            return ttl, struct.pack("!BBH", 5, 0, 12) + bytes(8), (g, 0), "badttl"

        def k_garbage(i):
            if i % 2:
                return g255, os.urandom(rnd.randrange(0, 12)), (g, 0), "short"
            b = bytearray(os.urandom(rnd.randrange(12, 200)))
            b[0] = rnd.choice([0, 1, 4, 6, 255])
            return g255, bytes(b), (g, 0), "badver"

        kinds = [k_ttl, k_garbage]
    else:
        sys.exit("mode: carp or pfsync")

    start = time.monotonic()
    for i in range(count):
        sock, data, dest, name = kinds[i % len(kinds)](i // len(kinds))
        assert in_lab(dest[0]), dest
        try:
            sock.sendto(data, dest)
            sent[name] = sent.get(name, 0) + 1
        except OSError as e:
            sent["error_" + name] = sent.get("error_" + name, 0) + 1
            sent["last_error"] = str(e)
        if i % 50 == 0:
            ahead = i / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    sent["seconds"] = round(time.monotonic() - start, 3)
    print(json.dumps(sent))


main()
