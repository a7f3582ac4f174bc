/*
 * tools/carpdump_decode.h - carpdump's per-packet decoder: one captured frame
 * (link layer -> IPv4/IPv6 -> CARP, VRRP or pfsync) in, one readable line or one
 * JSON object out. carpdump.c reads the capture and hands each record here;
 * tests/fuzz/fuzz_pcap.c calls it too.
 *
 * Everything in a frame is untrusted: the decoder is given the number of bytes
 * really captured (caplen) and checks it before every read.
 */
#ifndef CARPD_TOOLS_CARPDUMP_DECODE_H
#define CARPD_TOOLS_CARPDUMP_DECODE_H

#include "proto/carp.h"

#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How to print, and what the HMAC check needs. */
struct carpdump_opts {
	bool json;
	bool have_password;
	uint8_t key[CARP_KEY_LEN];
	/* the pfSense GUI transform of the password, tried when the plain key fails,
	 * so that an operator who typed the GUI password learns why it differs */
	bool have_gui_key;
	uint8_t gui_key[CARP_KEY_LEN];
	struct in_addr v4[CARP_MAX_ADDRS];
	size_t n4;
	struct in6_addr v6[CARP_MAX_ADDRS];
	size_t n6;
};

/*
 * A streaming JSON writer, just enough for flat records with a few arrays.
 * Separators are ", " and ": " like the contract's examples.
 */
struct carpdump_jw {
	FILE *f;
	int depth;
	bool first[8];
	bool after_key;
};

struct carpdump {
	const struct carpdump_opts *o;
	FILE *out; /* where records go */
	struct carpdump_jw jw;
	unsigned long shown; /* records printed so far */
};

/* Sets up c to print to out with the options o (both must outlive c). */
void carpdump_init(struct carpdump *c, const struct carpdump_opts *o, FILE *out);

/* Whether carpdump_packet() understands this pcap link type. */
bool carpdump_dlt_supported(int dlt);

/* Decodes one record (frame: its 1-based number) and prints it when it is CARP,
 * VRRP or pfsync; anything else is skipped silently. Reads at most h->caplen
 * bytes of data. */
void carpdump_packet(struct carpdump *c, int dlt, unsigned long frame, const struct pcap_pkthdr *h,
		     const uint8_t *data);

#endif
