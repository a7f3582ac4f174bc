/* fuzz-sources: tools/carpdump_decode.c proto/carp.c proto/sha1.c proto/frames.c proto/pfsync.c */
/* fuzz-libs: -lpcap -lnettle */
/*
 * tests/fuzz/fuzz_pcap.c - libFuzzer target for carpdump's decoder
 * (tools/carpdump_decode.h) and, through it, libpcap's capture file parser.
 *
 * The first input byte says what the rest is:
 *   bits 0-2  0 Ethernet, 1 raw IP, 2 Linux cooked SLL, 3 SLL2, 4 IPv4, 5 IPv6:
 *             one captured frame of that link type, handed to carpdump_packet()
 *             as a record of exactly that many bytes;
 *             6, 7: a whole pcap or pcapng file, read with pcap_fopen_offline()
 *             from an fmemopen() buffer, every record decoded as carpdump -r does
 *   bit 3     JSON output (else the readable lines)
 *   bit 4     check the HMAC (key "foobar" plus its pfSense GUI variant, one IPv4
 *             and one IPv6 address), as with -p and -a
 *   bit 5     the record says the wire carried more than was captured (snaplen)
 * Output goes to /dev/null. Besides "no crash, no read past the record", one
 * frame gives at most one record. Carpdump handles no other link types (NULL,
 * LOOP, ...): a file with one is refused before any record is read.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/carp.h"
#include "tools/carpdump_decode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 4096 /* per file: bounds the time one input takes */

static FILE *devnull;
static struct carpdump_opts plain, json, auth, auth_json;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TZ", "UTC", 1); /* readable lines print the local time of day */
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	json.json = true;
	auth.have_password = true;
	carp_key_from_password("foobar", auth.key);
	auth.have_gui_key = true;
	carp_key_from_password("foo bar", auth.gui_key);
	inet_pton(AF_INET, "192.0.2.254", &auth.v4[auth.n4++]);
	inet_pton(AF_INET6, "fe80::1", &auth.v6[auth.n6++]);
	auth_json = auth;
	auth_json.json = true;
	return 0;
}

static void one_file(struct carpdump *c, const uint8_t *data, size_t size)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *pkt;
	unsigned long frame = 0;
	FILE *f;
	pcap_t *pc;

	if (size == 0)
		return; /* fmemopen() wants at least one byte */
	f = fmemopen((void *)data, size, "rb");
	if (!f)
		abort();
	pc = pcap_fopen_offline(f, errbuf);
	if (!pc) {
		fclose(f); /* not libpcap's on failure */
		return;
	}
	if (carpdump_dlt_supported(pcap_datalink(pc))) {
		while (frame < MAX_RECORDS && pcap_next_ex(pc, &h, &pkt) == 1) {
			frame++;
			carpdump_packet(c, pcap_datalink(pc), frame, h, pkt);
		}
	}
	pcap_close(pc); /* closes f */
	if (c->shown > frame)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int dlts[] = {DLT_EN10MB,	   DLT_RAW,  DLT_LINUX_SLL,
				   DLT_LINUX_SLL2, DLT_IPV4, DLT_IPV6};
	const struct carpdump_opts *o;
	struct carpdump c;
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (mode & 0x10)
		o = mode & 0x08 ? &auth_json : &auth;
	else
		o = mode & 0x08 ? &json : &plain;
	carpdump_init(&c, o, devnull);

	if ((mode & 7) >= 6) {
		one_file(&c, data, size);
		return 0;
	}

	struct pcap_pkthdr h;
	memset(&h, 0, sizeof(h));
	h.ts.tv_sec = 1700049601;
	h.ts.tv_usec = 1000;
	h.caplen = (bpf_u_int32)size;
	h.len = (bpf_u_int32)size + (mode & 0x20 ? 1 : 0);
	if (!carpdump_dlt_supported(dlts[mode & 7]))
		abort();
	carpdump_packet(&c, dlts[mode & 7], 1, &h, data);
	if (c.shown > 1)
		abort(); /* one frame, at most one record */
	return 0;
}
