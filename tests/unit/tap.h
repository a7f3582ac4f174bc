/* tests/unit/tap.h - a minimal TAP-style check library for the unit tests. */
#ifndef CARPD_TESTS_TAP_H
#define CARPD_TESTS_TAP_H

#include <stddef.h>
#include <stdint.h>

/* Record one check; prints "ok N - what" or "not ok N - what (file:line)". */
int tap_check(int cond, const char *what, const char *file, int line);
/* Compare two byte strings; on mismatch prints both in hex. */
int tap_bytes(const void *got, const void *want, size_t len, const char *what, const char *file,
	      int line);
/* Parse a hex string (spaces ignored) into out; returns the byte count, or -1. */
int tap_unhex(const char *hex, uint8_t *out, size_t cap);
/* Print the plan and return the process exit code (0 when every check passed). */
int tap_done(void);

#define CHECK(cond, what) tap_check(!!(cond), (what), __FILE__, __LINE__)
#define CHECK_BYTES(got, want, len, what)                                                          \
	tap_bytes((got), (want), (len), (what), __FILE__, __LINE__)

#endif
