/* tests/unit/flow_tuple.h - a struct flow_tuple from text, for the unit tests that
 * build conntrack flows (test_flow, test_pfsync_pack). */
#ifndef CARPD_TESTS_FLOW_TUPLE_H
#define CARPD_TESTS_FLOW_TUPLE_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "proto/flow.h"

static inline void tuple(struct flow_tuple *t, int af, const char *src, uint16_t sport,
			 const char *dst, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	inet_pton(af, src, &t->src);
	inet_pton(af, dst, &t->dst);
	t->sport = sport;
	t->dport = dport;
}

#endif
