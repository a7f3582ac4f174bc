/*
 * daemon/control.h - the control socket.
 *
 * Protocol (one request per connection, text, line based; see carpctl(8)):
 *   request:  one line, at most CONTROL_MAX_REQUEST bytes, e.g. "status json\n"
 *   response: "ok\n" followed by the body, or "error: <reason>\n"; then the
 *             server closes the connection.
 * Requests: status [text|json] | metrics | maintenance on|off | demote N |
 *           state VHID[@IFACE] master|backup | sync bulk | version
 */
#ifndef CARPD_DAEMON_CONTROL_H
#define CARPD_DAEMON_CONTROL_H

#include <event2/buffer.h>

#include "daemon/carpd.h"

#define CONTROL_MAX_REQUEST 1024

int control_open(struct carpd *cd, const char *path);
void control_close(struct carpd *cd);
/* Execute one request line; appends the full response to out. Pure apart from
 * the daemon state it reads or changes: the fuzz target and the unit tests call it. */
void control_handle(struct carpd *cd, const char *line, struct evbuffer *out);

#endif
