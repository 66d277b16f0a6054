#!/usr/bin/python3
"""Reads a capture with dpkt the way dpkt's own examples do, parsing Ethernet -> IPv6 -> TCP/UDP per packet.

Run it with Debian's interpreter (/usr/bin/python3), which is where python3-dpkt is installed.
dpkt's Ethernet class strips 802.1Q/802.1ad tags itself, and IP6 walks extension headers, so no
extra work is done here beyond what a typical dpkt script does; the counts are printed so the
work cannot be skipped.
"""

import json
import sys

import dpkt


def main(path):
    packets = wire = ipv6 = tcp = udp = other = undecodable = 0
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            packets += 1
            wire += len(buf)
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            # AttributeError: dpkt 1.9.8's IP6 fails on a Fragment header followed by another extension header.
            except (dpkt.UnpackError, AttributeError):
                undecodable += 1
                continue
            ip = eth.data
            if not isinstance(ip, dpkt.ip6.IP6):
                other += 1
                continue
            ipv6 += 1
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                tcp += 1
            elif isinstance(l4, dpkt.udp.UDP):
                udp += 1
    print(json.dumps({"packets": packets, "captured_bytes": wire, "ipv6": ipv6, "tcp": tcp, "udp": udp,
                      "not_ipv6": other, "undecodable": undecodable}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: dpkt_read.py CAPTURE")
    main(sys.argv[1])
