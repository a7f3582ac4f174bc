/* daemon/log.c - stderr in the foreground (-d), syslog (and so the journal) otherwise. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

#include "daemon/carpd.h"

static bool log_to_stderr = true;
static bool log_debug_on;

void log_init(bool foreground)
{
	log_to_stderr = foreground;
	if (!foreground)
		openlog("carpd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_debug_on = getenv("CARPD_DEBUG") != NULL;
}

static void log_v(int prio, const char *fmt, va_list ap)
{
	if (!log_to_stderr) {
		vsyslog(prio, fmt, ap);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld carpd: ", stamp, ts.tv_nsec / 1000000);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

#define LOG_FN(name, prio)                                                                         \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_v(prio, fmt, ap);                                                              \
		va_end(ap);                                                                        \
	}
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_err, LOG_ERR)

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v(LOG_DEBUG, fmt, ap);
	va_end(ap);
}
