/*
 * The libpcap read floor: open a capture and walk every record with pcap_next_ex, doing nothing
 * else. No reader that goes through libpcap can be faster, so it bounds what "fast" means here.
 *
 * Build: gcc -O2 -o pcap_read pcap_read.c -lpcap
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CAPTURE\n", argv[0]);
        return 2;
    }

    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], errbuf);
    if (p == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], errbuf);
        return 1;
    }

    struct pcap_pkthdr *header;
    const u_char *data;
    uint64_t packets = 0, captured = 0, wire = 0, truncated = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &header, &data)) == 1) {
        packets++;
        captured += header->caplen;
        wire += header->len;
        truncated += header->caplen < header->len;
    }

    if (rc == PCAP_ERROR) {
        fprintf(stderr, "%s: %s\n", argv[1], pcap_geterr(p));
        pcap_close(p);
        return 1;
    }

    pcap_close(p);
    printf("{\"packets\": %" PRIu64 ", \"captured_bytes\": %" PRIu64 ", \"wire_bytes\": %" PRIu64 ", \"truncated\": %" PRIu64 "}\n",
           packets, captured, wire, truncated);
    return 0;
}
