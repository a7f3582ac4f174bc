/* daemon/notify.c - systemd's readiness protocol without libsystemd (see
 * carpd.h). The protocol is a stable interface of systemd's ("sd_notify(3)":
 * one datagram of NEWLINE-separated KEY=VALUE to the AF_UNIX socket named by
 * $NOTIFY_SOCKET, a path or "@" for the abstract namespace); linking
 * libsystemd for it mapped libsystemd, libgcrypt, libgpg-error, liblzma,
 * libzstd and liblz4: about 1 MiB of carpd's resident memory. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/carpd.h"

int carpd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return 0; /* not started by systemd with Type=notify */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	int err = errno;
	close(fd);
	errno = err;
	return n < 0 ? -1 : 1;
}

uint64_t carpd_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (usec == NULL)
		return 0;
	/* WATCHDOG_PID, when set, names the process meant (not a child we started) */
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	if (errno || end == usec || *end || v == 0)
		return 0;
	return v;
}
