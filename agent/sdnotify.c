/*
 * sdnotify.c - systemd's notify protocol (see sdnotify.h).
 *
 * Every message is one string of VAR=value lines, sent as one datagram.
 * With libsystemd (configure defines HAVE_LIBSYSTEMD) sd_notify() and
 * sd_watchdog_enabled() do the work. Without it, or when the unit test
 * builds this file with SDNOTIFY_BUILTIN to exercise the fallback, a
 * built-in sender does what sd_notify(3) documents: read $NOTIFY_SOCKET
 * (nothing to do when it is unset or empty), accept an absolute path or an
 * abstract name written "@name" (the '@' stands for the leading NUL byte),
 * open an AF_UNIX SOCK_DGRAM socket, send the message with MSG_NOSIGNAL and
 * close the socket again. A socket per message keeps the code free of
 * shared state, so any thread may call it, and costs a few microseconds once
 * per loop iteration.
 */
#include "agent/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_LIBSYSTEMD) && !defined(SDNOTIFY_BUILTIN)
#define SDNOTIFY_USE_LIBSYSTEMD 1
#include <systemd/sd-daemon.h>
#else
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#endif

/* STATUS= text longer than this is cut (systemctl shows one line anyway). */
#define STATUS_MAX 1024

#ifdef SDNOTIFY_USE_LIBSYSTEMD

static int notify_send(const char *msg)
{
	const char *e = getenv("NOTIFY_SOCKET");

	/* sd_notify() calls an empty NOTIFY_SOCKET invalid; we treat it as
	 * unset, like the built-in sender (an empty Environment= override) */
	if (e == NULL || e[0] == '\0')
		return 0;
	return sd_notify(0, msg);
}

double sdnotify_watchdog_interval(void)
{
	uint64_t usec = 0;

	/* > 0: set and meant for this process; 0: unset or another pid's;
	 * < 0: unparsable. */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	return (double)usec / 1e6;
}

#else

/* Fills *sa from $NOTIFY_SOCKET's value. Returns the address length, or a
 * negative errno when the value is neither an absolute path nor "@name". */
static int notify_address(const char *e, struct sockaddr_un *sa)
{
	size_t n = strlen(e);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (e[0] == '/') {
		if (n >= sizeof(sa->sun_path))
			return -ENAMETOOLONG;
		memcpy(sa->sun_path, e, n + 1);
		return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	if (e[0] == '@') {
		if (n < 2)
			return -EINVAL;
		if (n > sizeof(sa->sun_path))
			return -ENAMETOOLONG;
		/* abstract: a NUL, then the name; the length says where it ends */
		memcpy(sa->sun_path + 1, e + 1, n - 1);
		return (int)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return -EINVAL;
}

static int notify_send(const char *msg)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len = strlen(msg);
	ssize_t sent;
	int fd, salen, err;

	if (e == NULL || e[0] == '\0')
		return 0;
	salen = notify_address(e, &sa);
	if (salen < 0)
		return salen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		sent = sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, (socklen_t)salen);
	while (sent < 0 && errno == EINTR);
	err = sent < 0 ? -errno : (size_t)sent != len ? -EMSGSIZE : 1;
	close(fd);
	return err;
}

/* A decimal unsigned number filling the whole string; false otherwise. */
static bool parse_u64(const char *s, unsigned long long *out)
{
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

double sdnotify_watchdog_interval(void)
{
	const char *pid_s = getenv("WATCHDOG_PID");
	unsigned long long usec, pid;

	if (!parse_u64(getenv("WATCHDOG_USEC"), &usec) || usec == 0)
		return 0;
	if (pid_s != NULL && (!parse_u64(pid_s, &pid) || pid != (unsigned long long)getpid()))
		return 0;
	return (double)usec / 1e6;
}

#endif

int sdnotify_ready(void)
{
	return notify_send("READY=1");
}

int sdnotify_watchdog(void)
{
	return notify_send("WATCHDOG=1");
}

int sdnotify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int sdnotify_status(const char *fmt, ...)
{
	static const char prefix[] = "STATUS=";
	char msg[sizeof(prefix) - 1 + STATUS_MAX + 1];
	va_list ap;

	memcpy(msg, prefix, sizeof(prefix) - 1);
	va_start(ap, fmt);
	/* a negative result (encoding error) leaves an empty status */
	if (vsnprintf(msg + sizeof(prefix) - 1, STATUS_MAX + 1, fmt, ap) < 0)
		msg[sizeof(prefix) - 1] = '\0';
	va_end(ap);
	/* one line: a newline would start a new VAR= assignment */
	for (char *c = msg; *c != '\0'; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return notify_send(msg);
}
