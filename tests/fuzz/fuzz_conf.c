/* fuzz-sources: daemon/conf.c proto/carp.c proto/sha1.c */
/* fuzz-libs: -lnettle */
/*
 * tests/fuzz/fuzz_conf.c - libFuzzer target for the carpd.conf parser.
 *
 * The input is handed over as it is, NUL bytes included and without a terminating
 * NUL, because that is exactly what conf_parse_buffer() promises to cope with. A
 * successful parse is also run through the helpers the daemon calls on it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs;
	/* a copy of exactly size bytes, so ASan catches any read past the end */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	struct conf *c = conf_parse_buffer("fuzz.conf", buf, size, &errs);
	if (c) {
		char s[INET6_ADDRSTRLEN + 4];
		for (size_t i = 0; i < c->nvhids; i++) {
			for (size_t j = 0; j < c->vhids[i].naddrs; j++)
				conf_addr_str(&c->vhids[i].addrs[j], s, sizeof(s));
			if (!conf_vhid_equal(&c->vhids[i], &c->vhids[i]))
				abort();
		}
	} else if (errs.count == 0 || errs.count > CONF_MAX_ERRORS) {
		abort(); /* a rejected file always says why */
	}
	for (size_t i = 0; i < errs.count; i++)
		if (!memchr(errs.msg[i], '\0', sizeof(errs.msg[i])))
			abort();
	conf_free(c);
	free(buf);
	return 0;
}
