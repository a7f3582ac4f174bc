/*
 * daemon/control.h - the control socket.
 *
 * Protocol (one request per connection, text, line based; see carpctl(8)):
 *   request:  one line, at most CONTROL_MAX_REQUEST bytes, e.g. "status json\n"
 *   response: "ok\n" followed by the body, or "error: <reason>\n"; then the
 *             server closes the connection.
 * Requests: status [text|json] | metrics | maintenance on|off | demote N |
 *           state VHID[@IFACE] master|backup | sync bulk | version
 *
 * Two sockets, like OpenBGPD's -s and -r:
 *   the control socket (mode 0660, root's group): every request; a connecting
 *     process that is not root and not in the socket file's group is refused
 *     ("error: permission denied") after its SO_PEERCRED/SO_PEERGROUPS are read;
 *   the optional read-only socket (control-ro; mode 0666, or 0660 with its group):
 *     only status, metrics and version; anything else gets
 *     "error: permission denied: read-only socket".
 */
#ifndef CARPD_DAEMON_CONTROL_H
#define CARPD_DAEMON_CONTROL_H

#include <event2/buffer.h>
#include <stdbool.h>

#include "daemon/carpd.h"

#define CONTROL_MAX_REQUEST 1024

#define CONTROL_DENIED	  "permission denied"
#define CONTROL_DENIED_RO "permission denied: read-only socket"

enum control_access { CONTROL_RW, CONTROL_RO };

/* The control socket; on SIGHUP, called again with the new path it moves there. */
int control_open(struct carpd *cd, const char *path);
/* The read-only socket; group NULL or "" gives mode 0666, else 0660 with that group.
 * Opened once at start: the group needs CAP_CHOWN, which carpd then gives up. */
int control_open_ro(struct carpd *cd, const char *path, const char *group);
/* The read-only socket's path ("" = none) and group, as opened. */
const char *control_ro_path(const struct carpd *cd);
const char *control_ro_group(const struct carpd *cd);
void control_close(struct carpd *cd);
/* Execute one request line; appends the full response to out. Pure apart from
 * the daemon state it reads or changes: the fuzz target and the unit tests call it.
 * control_handle is control_handle_access with CONTROL_RW. */
void control_handle(struct carpd *cd, const char *line, struct evbuffer *out);
void control_handle_access(struct carpd *cd, const char *line, struct evbuffer *out,
			   enum control_access access);
/* true for the requests the read-only socket answers (first word of the line) */
bool control_request_is_read_only(const char *line);

#endif
