/*
 * watch.c - the leader-key watch thread (see watch.h).
 */
#include "agent/watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/log.h"

struct watch {
	pthread_t thread;
	struct etcd_client *etcd;
	char *key;
	int wake_fd;
	atomic_bool stop;
	bool connected_once;
};

static void wake(int fd)
{
	char b = 'w';
	ssize_t n = write(fd, &b, 1);
	(void)n;
}

static bool on_events(void *ctx, const struct etcd_event *ev, size_t n, int64_t revision)
{
	struct watch *w = ctx;

	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == ETCD_EVENT_DELETE)
			log_info("leader key deleted or expired (revision %lld)", (long long)revision);
		else
			log_debug("leader key now holds '%s' (revision %lld)", ev[i].kv->value, (long long)revision);
	}
	if (n > 0)
		wake(w->wake_fd);
	return !atomic_load(&w->stop);
}

static void on_connected(void *ctx)
{
	struct watch *w = ctx;

	if (w->connected_once)
		log_info("leader watch re-established");
	w->connected_once = true;
	/* We may have missed changes while disconnected: let the loop re-read. */
	wake(w->wake_fd);
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;

	while (!atomic_load(&w->stop)) {
		struct etcd_error err;
		int64_t last = 0;
		enum etcd_status st = etcd_watch(w->etcd, w->key, false, 0, on_events, w, on_connected, 0, &last, &err);

		if (st == ETCD_E_CANCELED || atomic_load(&w->stop))
			break;
		if (st == ETCD_E_COMPACTED)
			log_warn("leader watch: revision %lld was compacted; watching from now on", (long long)last);
		else if (st != ETCD_OK)
			log_warn("leader watch ended: %s; restarting it", err.message);
		wake(w->wake_fd);
		clk_sleep(0.2);
	}
	return NULL;
}

struct watch *watch_start(const struct etcd_config *ecfg, const char *key, int wake_fd, char *err, size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct etcd_error e;

	if (!w || !(w->key = strdup(key))) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (etcd_client_new(ecfg, &w->etcd, &e) != ETCD_OK) {
		snprintf(err, errlen, "leader watch: %s", e.message);
		free(w->key);
		free(w);
		return NULL;
	}
	w->wake_fd = wake_fd;
	atomic_init(&w->stop, false);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		snprintf(err, errlen, "leader watch: cannot start thread: %s", strerror(errno));
		etcd_client_free(w->etcd);
		free(w->key);
		free(w);
		return NULL;
	}
	return w;
}

void watch_stop(struct watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	etcd_client_cancel(w->etcd);
	pthread_join(w->thread, NULL);
	etcd_client_free(w->etcd);
	free(w->key);
	free(w);
}
