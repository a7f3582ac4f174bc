/*
 * tools/carpctl.c - the operator's tool: a thin client of carpd's control
 * socket. It sends one request line and prints what the daemon renders.
 *
 *   carpctl [-s SOCKET] status [-j] | maintenance on|off | demote N |
 *           state VHID[@IF] master|backup | sync bulk | metrics | version
 *
 * Exit 0 on success, 1 with a one-line reason on stderr otherwise.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/carpd.sock"

static void usage(void)
{
	fprintf(stderr, "usage: carpctl [-s SOCKET] status [-j]\n"
			"       carpctl [-s SOCKET] maintenance on|off\n"
			"       carpctl [-s SOCKET] demote N\n"
			"       carpctl [-s SOCKET] state VHID[@INTERFACE] master|backup\n"
			"       carpctl [-s SOCKET] sync bulk\n"
			"       carpctl [-s SOCKET] metrics\n"
			"       carpctl [-s SOCKET] version\n");
	exit(1);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "carpctl: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Turn argv into the one-line request, checking arguments locally so that a
 * typo gets a usage message even when the daemon is not running. */
static void build_request(int argc, char **argv, char *req, size_t len)
{
	if (argc < 1)
		usage();
	const char *cmd = argv[0];
	if (!strcmp(cmd, "status")) {
		if (argc == 1)
			snprintf(req, len, "status text\n");
		else if (argc == 2 && !strcmp(argv[1], "-j"))
			snprintf(req, len, "status json\n");
		else
			usage();
	} else if (!strcmp(cmd, "maintenance")) {
		if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off")))
			die("maintenance takes 'on' or 'off'");
		snprintf(req, len, "maintenance %s\n", argv[1]);
	} else if (!strcmp(cmd, "demote")) {
		char *end;
		if (argc != 2)
			die("demote takes one integer, e.g. 'demote 50' or 'demote -50'");
		errno = 0;
		long v = strtol(argv[1], &end, 10);
		if (!*argv[1] || *end || errno || v < -100000 || v > 100000)
			die("bad demotion '%s': expected an integer between -100000 and 100000",
			    argv[1]);
		snprintf(req, len, "demote %ld\n", v);
	} else if (!strcmp(cmd, "state")) {
		if (argc != 3 || (strcmp(argv[2], "master") && strcmp(argv[2], "backup")) ||
		    strlen(argv[1]) > 40 || strpbrk(argv[1], " \t\r\n"))
			die("usage: state VHID[@INTERFACE] master|backup");
		snprintf(req, len, "state %s %s\n", argv[1], argv[2]);
	} else if (!strcmp(cmd, "sync")) {
		if (argc != 2 || strcmp(argv[1], "bulk"))
			die("sync takes 'bulk'");
		snprintf(req, len, "sync bulk\n");
	} else if (!strcmp(cmd, "metrics") && argc == 1) {
		snprintf(req, len, "metrics\n");
	} else if (!strcmp(cmd, "version") && argc == 1) {
		snprintf(req, len, "version\n");
	} else {
		usage();
	}
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_SOCKET;
	int opt;
	while ((opt = getopt(argc, argv, "+s:h")) != -1) {
		if (opt == 's')
			path = optarg;
		else
			usage();
	}
	char req[128];
	build_request(argc - optind, argv + optind, req, sizeof(req));

	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path))
		die("socket path too long: %s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			die("carpd is not running (no daemon listening on %s)", path);
		if (errno == EACCES || errno == EPERM)
			die("permission denied on %s (root or the socket's group only)", path);
		die("cannot connect to carpd: %s", strerror(errno));
	}
	struct timeval tmo = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		die("cannot send the request: %s", strerror(errno));

	/* Read the whole response: "ok\n" + body, or "error: reason\n". */
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		die("out of memory");
	for (;;) {
		if (len + 4096 > cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				die("out of memory");
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("no answer from carpd: %s", strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	if (!strncmp(buf, "ok\n", 3)) {
		fwrite(buf + 3, 1, len - 3, stdout);
		free(buf);
		return 0;
	}
	if (!strncmp(buf, "error: ", 7)) {
		buf[strcspn(buf, "\n")] = 0;
		fprintf(stderr, "carpctl: %s\n", buf + 7);
		free(buf);
		return 1;
	}
	die("unexpected answer from carpd");
	return 1;
}
