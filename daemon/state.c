/*
 * daemon/state.c - state that outlives the process, like pfSense's persistent
 * CARP maintenance mode: a file "maintenance" in the state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/carpd.h"

static void state_path(const struct conf *conf, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", conf->state_dir[0] ? conf->state_dir : "/var/lib/carpd", name);
}

bool state_load_maintenance(const struct conf *conf)
{
	char path[PATH_MAX];
	state_path(conf, "maintenance", path, sizeof(path));
	return access(path, F_OK) == 0;
}

int state_save_maintenance(const struct conf *conf, bool on)
{
	char path[PATH_MAX];
	const char *dir = conf->state_dir[0] ? conf->state_dir : "/var/lib/carpd";
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		log_warn("cannot create state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	state_path(conf, "maintenance", path, sizeof(path));
	if (!on) {
		if (unlink(path) < 0 && errno != ENOENT) {
			log_warn("cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	static const char note[] =
		"maintenance mode: remove this file or run 'carpctl maintenance off'\n";
	ssize_t n = write(fd, note, sizeof(note) - 1);
	close(fd);
	return n < 0 ? -1 : 0;
}
