/*
 * watchdog.h - the Linux watchdog device (/dev/watchdog), the last line of
 * fencing (DESIGN.md safety rule 3).
 *
 * When the whole agent is frozen - its fence process too, e.g. a frozen
 * cgroup or a stalled machine - nothing in user space stops Postgres. A
 * hardware (or softdog) watchdog resets the machine unless it is fed; the
 * keeper feeds it while this node's Postgres may write, and only at moments
 * after which a reset comes before the lease can expire:
 *
 *   timeout T   = floor(ttl - safety_margin - 2 * keepalive interval), >= 1 s;
 *   arm or feed only while now <= last renewal sent + ttl - safety_margin - T,
 *
 * so a reset comes at the latest safety_margin before the lease expires,
 * counted from the time the renewal was *sent*. Two keepalive intervals are
 * kept out of T so that the feeding window of one renewal (2 intervals
 * wide) covers the keeper's wait for the next keepalive plus that
 * keepalive's round trip (its timeout is one interval at most): a healthy
 * keeper always feeds in time. The leader's own deadline
 * (ttl - ha_lease_margin(ttl), i.e. 1 s before expiry at ttl >= 4) comes
 * before that reset when safety_margin < that margin: a primary that merely
 * lost etcd demotes and disarms the watchdog instead of being reset; hence
 * the default safety_margin of 0.5 s rather than Patroni's 5 (which is for
 * ttl 30).
 *
 * Device protocol: open() starts the timer, WDIOC_SETTIMEOUT/GETTIMEOUT set
 * and read back T (a driver may round it: the value read back is used), a
 * write() feeds it, and writing 'V' before close() ("magic close") stops it.
 * A driver loaded with nowayout=1 cannot be stopped: do not use one.
 *
 * The system calls go through a small ops table so that a unit test can
 * stand in for the device (no /dev/watchdog or softdog on the test
 * machines); watchdog_new(..., NULL) uses the real calls. A path that is not
 * a watchdog (a regular file, a FIFO) answers ENOTTY to the timeout ioctl
 * and is reported as "not a watchdog device".
 *
 * Error convention: bool + a message in err; nothing here logs.
 */
#ifndef BATON_WATCHDOG_H
#define BATON_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum watchdog_mode { WATCHDOG_OFF, WATCHDOG_AUTOMATIC, WATCHDOG_REQUIRED };

/* "off", "automatic", "required". */
bool watchdog_mode_parse(const char *s, enum watchdog_mode *out);
const char *watchdog_mode_name(enum watchdog_mode m);

struct watchdog_ops {
	int (*open)(const char *path, int flags);
	int (*ioctl)(int fd, unsigned long request, void *arg);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*close)(int fd);
};

struct watchdog;

/* device is copied. ops NULL = the real system calls. NULL when out of memory. */
struct watchdog *watchdog_new(const char *device, const struct watchdog_ops *ops);
/* Disarms (magic close) if armed, frees. NULL is fine. */
void watchdog_free(struct watchdog *w);

/* The timeout for these timings (see above). False + a reason naming
 * watchdog.safety_margin when it would be below 1 s. */
bool watchdog_timeout_for(double ttl, double interval, double safety_margin, int *timeout, char *err, size_t errlen)
        __attribute__((warn_unused_result));
/* The last moment a feed may happen for a renewal sent at `sent`. */
double watchdog_feed_until(double sent, double ttl, double safety_margin, int timeout);

/* Can the device be armed with this timeout? Opens it, sets and reads back
 * the timeout, and stops it again with the magic close. Does nothing but
 * answer true while armed. */
bool watchdog_probe(struct watchdog *w, int timeout, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Opens the device (if not yet), sets the timeout (if it differs) and
 * feeds it. Idempotent. On failure the device is closed with the magic
 * close, so it is never left running unfed. */
bool watchdog_arm(struct watchdog *w, int timeout, char *err, size_t errlen) __attribute__((warn_unused_result));
/* One feed. False when not armed or the write failed. */
bool watchdog_feed(struct watchdog *w, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Magic close. Idempotent. False when the 'V' could not be written: the
 * device may then reset the machine when its timeout runs out. */
bool watchdog_disarm(struct watchdog *w, char *err, size_t errlen) __attribute__((warn_unused_result));

bool watchdog_armed(const struct watchdog *w);
/* The timeout in force (as read back from the device), 0 when not armed. */
int watchdog_timeout(const struct watchdog *w);
const char *watchdog_device(const struct watchdog *w);

#endif
