/*
 * watch.c - the prefix watch thread (see watch.h).
 *
 * The thread runs one etcd_watch over the prefix and copies each event into
 * a queue under a mutex; the loop takes the queue (watch_take) at its own
 * pace. The callback never waits for the loop: a loop stuck in a long
 * action only lets the queue grow, up to WATCH_QUEUE_MAX, after which the
 * watch gives up (lost) and the loop re-reads everything instead.
 *
 * Each event is queued, but only those watch_wakes names wake the loop.
 * To tell a member key whose LSN alone moved from one that changed, the
 * thread keeps the last value it saw of each member key (at most
 * WATCH_PREV_MAX of them; a key beyond that always wakes).
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

#include <jansson.h>

#include "agent/clock.h"
#include "agent/log.h"

#define WATCH_PREV_MAX 1024

struct prev_value {
	char *key, *value;
};

struct watch {
	pthread_t thread;
	struct etcd_client *etcd;
	struct dcs_keys keys;
	char *prefix;
	char *leader_key;
	char own_member_key[400]; /* "" when the name does not fit */
	struct prev_value *prev;  /* the watch thread's own: the member keys' last values */
	size_t n_prev;
	int64_t start_revision;
	int wake_fd;
	atomic_bool stop;
	bool connected_once;
	pthread_mutex_t mu; /* guards the queue and lost */
	struct watch_event *q;
	size_t n_q, cap_q;
	bool lost;
};

static void wake(int fd)
{
	char b = 'w';
	ssize_t n = write(fd, &b, 1);
	(void)n;
}

static void event_clear(struct watch_event *e)
{
	free(e->kv.key);
	free(e->kv.value);
	memset(e, 0, sizeof(*e));
}

void watch_events_free(struct watch_event *events, size_t n)
{
	for (size_t i = 0; events && i < n; i++)
		event_clear(&events[i]);
	free(events);
}

/* A deep copy of ev into e; false when out of memory. */
static bool event_copy(struct watch_event *e, const struct etcd_event *ev, int64_t revision)
{
	const struct etcd_kv *kv = ev->kv;

	memset(e, 0, sizeof(*e));
	e->type = ev->type;
	e->kv = *kv;
	e->kv.key = malloc(kv->key_len + 1);
	e->kv.value = malloc(kv->value_len + 1);
	if (!e->kv.key || !e->kv.value) {
		event_clear(e);
		return false;
	}
	memcpy(e->kv.key, kv->key, kv->key_len);
	e->kv.key[kv->key_len] = '\0';
	if (kv->value_len)
		memcpy(e->kv.value, kv->value, kv->value_len);
	e->kv.value[kv->value_len] = '\0';
	if (e->kv.mod_revision == 0)
		e->kv.mod_revision = revision; /* not said: at most the batch's revision */
	return true;
}

/* Queues the batch; on overflow or ENOMEM drops the queue and marks the
 * watch lost (the loop then re-reads everything). Called with w->mu held. */
static void enqueue(struct watch *w, const struct etcd_event *ev, size_t n, int64_t revision)
{
	if (w->lost)
		return;
	if (w->n_q + n > WATCH_QUEUE_MAX) {
		log_warn("watch on %s: more than %d changes waiting for the loop; it will re-read every key", w->prefix,
		         WATCH_QUEUE_MAX);
		goto lost;
	}
	if (w->n_q + n > w->cap_q) {
		size_t cap = w->cap_q ? w->cap_q : 16;
		struct watch_event *grown;

		while (cap < w->n_q + n)
			cap *= 2;
		grown = realloc(w->q, cap * sizeof(*grown));
		if (!grown)
			goto nomem;
		w->q = grown;
		w->cap_q = cap;
	}
	for (size_t i = 0; i < n; i++) {
		if (!event_copy(&w->q[w->n_q], &ev[i], revision))
			goto nomem;
		w->n_q++;
	}
	return;
nomem:
	log_warn("watch on %s: out of memory for a change; the loop will re-read every key", w->prefix);
lost:
	for (size_t i = 0; i < w->n_q; i++)
		event_clear(&w->q[i]);
	w->n_q = 0;
	w->lost = true;
}

/* Are two member values the same but for their LSN? Values that are not
 * JSON objects are compared as they are. */
static bool same_but_lsn(const char *a, const char *b)
{
	json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
	bool same;

	if (json_is_object(ja) && json_is_object(jb)) {
		json_object_del(ja, "lsn");
		json_object_del(ja, "xlog_location");
		json_object_del(jb, "lsn");
		json_object_del(jb, "xlog_location");
		same = json_equal(ja, jb);
	} else {
		same = strcmp(a, b) == 0;
	}
	json_decref(ja);
	json_decref(jb);
	return same;
}

bool watch_wakes(const struct dcs_keys *keys, const char *own_member_key, enum etcd_event_type type, const char *key,
                 const char *value, const char *prev)
{
	size_t mlen = strlen(keys->members);

	/* Kept current for the next pass, decided on by nobody in a hurry:
	 * the lag a replica is judged by is checked on a full read anyway. */
	if (strcmp(key, keys->status) == 0 || strcmp(key, keys->history) == 0)
		return false;
	/* The leader key (its expiry above all), config, sync, switchover,
	 * initialize, and whatever else someone writes under the prefix. */
	if (strncmp(key, keys->members, mlen) != 0 || key[mlen] == '\0')
		return true;
	if (own_member_key && own_member_key[0] && strcmp(key, own_member_key) == 0)
		return false;
	if (type == ETCD_EVENT_DELETE || prev == NULL)
		return true;
	return !same_but_lsn(prev, value);
}

static struct prev_value *prev_find(struct watch *w, const char *key)
{
	for (size_t i = 0; i < w->n_prev; i++)
		if (strcmp(w->prev[i].key, key) == 0)
			return &w->prev[i];
	return NULL;
}

/* Remembers a member key's value after ev (forgets it on DELETE). Out of
 * memory or past WATCH_PREV_MAX it is not remembered: it then wakes. */
static void prev_update(struct watch *w, struct prev_value *p, const struct etcd_event *ev)
{
	char *v;

	if (ev->type == ETCD_EVENT_DELETE) {
		if (p) {
			free(p->key);
			free(p->value);
			*p = w->prev[--w->n_prev];
		}
		return;
	}
	if (!p) {
		struct prev_value *grown;

		if (w->n_prev >= WATCH_PREV_MAX)
			return;
		grown = realloc(w->prev, (w->n_prev + 1) * sizeof(*grown));
		if (!grown)
			return;
		w->prev = grown;
		p = &w->prev[w->n_prev];
		p->key = strdup(ev->kv->key);
		p->value = NULL;
		if (!p->key)
			return;
		w->n_prev++;
	}
	v = strdup(ev->kv->value);
	if (!v) {
		/* Forget it rather than keep a stale value. */
		free(p->key);
		free(p->value);
		*p = w->prev[--w->n_prev];
		return;
	}
	free(p->value);
	p->value = v;
}

static void prev_free(struct watch *w)
{
	for (size_t i = 0; i < w->n_prev; i++) {
		free(w->prev[i].key);
		free(w->prev[i].value);
	}
	free(w->prev);
	w->prev = NULL;
	w->n_prev = 0;
}

static bool on_events(void *ctx, const struct etcd_event *ev, size_t n, int64_t revision)
{
	struct watch *w = ctx;
	size_t mlen = strlen(w->keys.members);
	bool wakes = false, lost;

	for (size_t i = 0; i < n; i++) {
		const char *key = ev[i].kv->key;
		bool member = strncmp(key, w->keys.members, mlen) == 0 && key[mlen] != '\0';
		struct prev_value *p = member ? prev_find(w, key) : NULL;

		if (watch_wakes(&w->keys, w->own_member_key, ev[i].type, key, ev[i].kv->value, p ? p->value : NULL))
			wakes = true;
		if (member)
			prev_update(w, p, &ev[i]);
		if (strcmp(key, w->leader_key) != 0)
			continue;
		if (ev[i].type == ETCD_EVENT_DELETE)
			log_info("leader key deleted or expired (revision %lld)", (long long)revision);
		else
			log_debug("leader key now holds '%s' (revision %lld)", ev[i].kv->value, (long long)revision);
	}
	pthread_mutex_lock(&w->mu);
	enqueue(w, ev, n, revision);
	lost = w->lost;
	pthread_mutex_unlock(&w->mu);
	if (wakes || lost)
		wake(w->wake_fd);
	return !atomic_load(&w->stop);
}

static void on_connected(void *ctx)
{
	struct watch *w = ctx;

	/* The library resumes from the revision after the last one delivered:
	 * nothing was missed, nothing to re-read. */
	log_info("watch on %s %s on %s", w->prefix, w->connected_once ? "re-established" : "established",
	         etcd_client_endpoint(w->etcd));
	w->connected_once = true;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct etcd_error err;
	int64_t last = 0;
	enum etcd_status st;

	memset(&err, 0, sizeof(err));
	st = etcd_watch(w->etcd, w->prefix, true, w->start_revision, on_events, w, on_connected, 0, &last, &err);
	if (atomic_load(&w->stop) || st == ETCD_E_CANCELED)
		return NULL;
	if (st == ETCD_E_COMPACTED)
		log_warn("watch on %s: revision %lld was compacted; the loop will re-read every key", w->prefix,
		         (long long)last);
	else
		log_warn("watch on %s ended: %s; the loop will re-read every key and watch again", w->prefix,
		         st == ETCD_OK ? "stopped" : err.message);
	pthread_mutex_lock(&w->mu);
	w->lost = true;
	pthread_mutex_unlock(&w->mu);
	wake(w->wake_fd);
	return NULL;
}

bool watch_take(struct watch *w, struct watch_event **events, size_t *n)
{
	bool ok;

	pthread_mutex_lock(&w->mu);
	ok = !w->lost;
	*events = w->q;
	*n = w->n_q;
	w->q = NULL;
	w->n_q = w->cap_q = 0;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

void watch_etcd_stats(struct watch *w, struct etcd_stats *out)
{
	if (!w) {
		memset(out, 0, sizeof(*out));
		return;
	}
	etcd_client_get_stats(w->etcd, out);
}

struct watch *watch_start(const struct etcd_config *ecfg, size_t first_endpoint, const struct dcs_keys *keys,
                          const char *own_name, int64_t start_revision, int wake_fd, char *err, size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct etcd_error e;
	const char *prefix = keys->prefix;

	if (!w || !(w->prefix = strdup(prefix)) || !(w->leader_key = strdup(keys->leader))) {
		if (w)
			free(w->prefix);
		free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->keys = *keys;
	if (!own_name || !dcs_member_key(keys, own_name, w->own_member_key, sizeof(w->own_member_key)))
		w->own_member_key[0] = '\0';
	if (etcd_client_new(ecfg, &w->etcd, &e) != ETCD_OK) {
		snprintf(err, errlen, "watch on %s: %s", prefix, e.message);
		goto fail;
	}
	if (!etcd_client_prefer(w->etcd, first_endpoint))
		log_debug("watch on %s: no endpoint number %zu; starting on %s", prefix, first_endpoint,
		          etcd_client_endpoint(w->etcd));
	w->start_revision = start_revision;
	w->wake_fd = wake_fd;
	atomic_init(&w->stop, false);
	pthread_mutex_init(&w->mu, NULL);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		snprintf(err, errlen, "watch on %s: cannot start thread: %s", prefix, strerror(errno));
		pthread_mutex_destroy(&w->mu);
		etcd_client_free(w->etcd);
		goto fail;
	}
	return w;
fail:
	free(w->leader_key);
	free(w->prefix);
	free(w);
	return NULL;
}

void watch_stop(struct watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	etcd_client_cancel(w->etcd);
	pthread_join(w->thread, NULL);
	etcd_client_free(w->etcd);
	watch_events_free(w->q, w->n_q);
	prev_free(w);
	pthread_mutex_destroy(&w->mu);
	free(w->leader_key);
	free(w->prefix);
	free(w);
}
