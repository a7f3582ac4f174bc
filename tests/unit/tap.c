/* tests/unit/tap.c - see tap.h. */
#include "tap.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

int tap_check(int cond, const char *what, const char *file, int line)
{
	tap_count++;
	if (cond) {
		printf("ok %d - %s\n", tap_count, what);
		return 1;
	}
	tap_failed++;
	printf("not ok %d - %s (%s:%d)\n", tap_count, what, file, line);
	return 0;
}

static void tap_hexdump(const char *label, const uint8_t *p, size_t len)
{
	printf("#   %s:", label);
	for (size_t i = 0; i < len; i++)
		printf("%s%02x", i % 32 == 0 ? "\n#     " : "", p[i]);
	printf("\n");
}

int tap_bytes(const void *got, const void *want, size_t len, const char *what, const char *file,
	      int line)
{
	int same = memcmp(got, want, len) == 0;
	if (!tap_check(same, what, file, line)) {
		tap_hexdump("got ", got, len);
		tap_hexdump("want", want, len);
	}
	return same;
}

int tap_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (; *hex; hex++) {
		if (isspace((unsigned char)*hex))
			continue;
		if (!isxdigit((unsigned char)*hex))
			return -1;
		int v = isdigit((unsigned char)*hex) ? *hex - '0'
						     : (tolower((unsigned char)*hex) - 'a' + 10);
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (int)n : -1;
}

int tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_count);
	return tap_failed ? 1 : 0;
}
