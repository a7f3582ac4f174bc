/*
 * daemon/output.h - one renderer for everything operators read: the status
 * table, the status JSON document (CONTRACT §4) and OpenMetrics text. carpctl
 * prints what the daemon renders, so the three views can never disagree.
 */
#ifndef CARPD_DAEMON_OUTPUT_H
#define CARPD_DAEMON_OUTPUT_H

#include <event2/buffer.h>

#include "daemon/carpd.h"

void output_status_text(const struct carpd *cd, struct evbuffer *out);
void output_status_json(const struct carpd *cd, struct evbuffer *out);
void output_metrics(const struct carpd *cd, struct evbuffer *out);
/* JSON string with escapes, quotes included. */
void output_json_string(struct evbuffer *out, const char *s);

#endif
