/*
 * watchdog.c - the Linux watchdog device (see watchdog.h).
 *
 * A small state holder around one file descriptor: -1 when disarmed, open
 * while armed. Every path that fails after open() ends with the magic close,
 * so a half-set-up device never goes on counting down unfed.
 */
#include "agent/watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct watchdog {
	const struct watchdog_ops *ops;
	char *device;
	int fd;
	int timeout; /* as read back, while armed */
};

static int real_open(const char *path, int flags)
{
	return open(path, flags);
}

static int real_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

static const struct watchdog_ops real_ops = {
	.open = real_open,
	.ioctl = real_ioctl,
	.write = write,
	.close = close,
};

bool watchdog_mode_parse(const char *s, enum watchdog_mode *out)
{
	if (strcmp(s, "off") == 0)
		*out = WATCHDOG_OFF;
	else if (strcmp(s, "automatic") == 0)
		*out = WATCHDOG_AUTOMATIC;
	else if (strcmp(s, "required") == 0)
		*out = WATCHDOG_REQUIRED;
	else
		return false;
	return true;
}

const char *watchdog_mode_name(enum watchdog_mode m)
{
	switch (m) {
	case WATCHDOG_OFF:
		return "off";
	case WATCHDOG_AUTOMATIC:
		return "automatic";
	case WATCHDOG_REQUIRED:
		return "required";
	}
	return "unknown";
}

struct watchdog *watchdog_new(const char *device, const struct watchdog_ops *ops)
{
	struct watchdog *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->device = strdup(device);
	if (!w->device) {
		free(w);
		return NULL;
	}
	w->ops = ops ? ops : &real_ops;
	w->fd = -1;
	return w;
}

bool watchdog_timeout_for(double ttl, double interval, double safety_margin, int *timeout, char *err, size_t errlen)
{
	double t = floor(ttl - safety_margin - 2 * interval);

	if (t < 1) {
		snprintf(err, errlen,
		         "watchdog.safety_margin = %g s leaves no watchdog timeout with ttl %g s and a keepalive interval "
		         "of %g s: floor(ttl - safety_margin - 2 * interval) = %g s, at least 1 s is needed (lower "
		         "watchdog.safety_margin, raise ttl, or set watchdog.mode = \"off\")",
		         safety_margin, ttl, interval, t);
		return false;
	}
	*timeout = t > 3600 ? 3600 : (int)t;
	return true;
}

double watchdog_feed_until(double sent, double ttl, double safety_margin, int timeout)
{
	return sent + ttl - safety_margin - timeout;
}

/* Magic close: 'V', then close. False when the 'V' did not go out. */
static bool magic_close(struct watchdog *w, char *err, size_t errlen)
{
	bool ok = true;
	ssize_t n;

	if (w->fd < 0)
		return true;
	do
		n = w->ops->write(w->fd, "V", 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		snprintf(err, errlen,
		         "%s: cannot write the magic close character: %s; the watchdog may reset the machine",
		         w->device, n < 0 ? strerror(errno) : "short write");
		ok = false;
	}
	if (w->ops->close(w->fd) != 0 && ok) {
		snprintf(err, errlen, "%s: close: %s; the watchdog may still run", w->device, strerror(errno));
		ok = false;
	}
	w->fd = -1;
	w->timeout = 0;
	return ok;
}

/* Opens the device and sets the timeout; on failure closes it (magic). */
static bool open_and_set(struct watchdog *w, int timeout, char *err, size_t errlen)
{
	int t = timeout, got = 0;
	char ignored[8];

	if (w->fd < 0) {
		w->fd = w->ops->open(w->device, O_WRONLY | O_CLOEXEC);
		if (w->fd < 0) {
			snprintf(err, errlen, "%s: cannot open: %s", w->device, strerror(errno));
			return false;
		}
	} else if (w->timeout == timeout) {
		return true;
	}
	if (w->ops->ioctl(w->fd, WDIOC_SETTIMEOUT, &t) != 0) {
		int e = errno;

		if (e == ENOTTY || e == EINVAL)
			snprintf(err, errlen,
			         "%s: not a watchdog device, or it refuses a %d s timeout (WDIOC_SETTIMEOUT: %s)",
			         w->device, timeout, strerror(e));
		else
			snprintf(err, errlen, "%s: cannot set a %d s timeout: %s", w->device, timeout, strerror(e));
		goto fail;
	}
	if (w->ops->ioctl(w->fd, WDIOC_GETTIMEOUT, &got) != 0) {
		snprintf(err, errlen, "%s: cannot read the timeout back (WDIOC_GETTIMEOUT: %s)", w->device,
		         strerror(errno));
		goto fail;
	}
	/* A driver may round: only a timeout no longer than asked keeps the
	 * reset before the lease's expiry. */
	if (got < 1 || got > timeout) {
		snprintf(err, errlen, "%s: asked for a %d s timeout, the device set %d s", w->device, timeout, got);
		goto fail;
	}
	w->timeout = got;
	return true;
fail:
	if (!magic_close(w, ignored, sizeof(ignored)))
		snprintf(err + strlen(err), errlen - strlen(err), "; and the magic close failed");
	return false;
}

bool watchdog_probe(struct watchdog *w, int timeout, char *err, size_t errlen)
{
	if (w->fd >= 0)
		return true;
	if (!open_and_set(w, timeout, err, errlen))
		return false;
	return magic_close(w, err, errlen);
}

bool watchdog_arm(struct watchdog *w, int timeout, char *err, size_t errlen)
{
	if (!open_and_set(w, timeout, err, errlen))
		return false;
	return watchdog_feed(w, err, errlen);
}

bool watchdog_feed(struct watchdog *w, char *err, size_t errlen)
{
	ssize_t n;

	if (w->fd < 0) {
		snprintf(err, errlen, "%s: not armed", w->device);
		return false;
	}
	/* Any write other than a final 'V' feeds it (WDIOC_KEEPALIVE needs a
	 * driver option that not every driver has). */
	do
		n = w->ops->write(w->fd, "1", 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		snprintf(err, errlen, "%s: cannot feed: %s", w->device, n < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

bool watchdog_disarm(struct watchdog *w, char *err, size_t errlen)
{
	return magic_close(w, err, errlen);
}

bool watchdog_armed(const struct watchdog *w)
{
	return w->fd >= 0;
}

int watchdog_timeout(const struct watchdog *w)
{
	return w->fd >= 0 ? w->timeout : 0;
}

const char *watchdog_device(const struct watchdog *w)
{
	return w->device;
}

void watchdog_free(struct watchdog *w)
{
	char ignored[8];

	if (!w)
		return;
	(void)magic_close(w, ignored, sizeof(ignored));
	free(w->device);
	free(w);
}
