/*
 * etcd_watch.c - a resilient watch over the gateway's streaming /v3/watch.
 *
 * The gateway answers a watch with a chunked stream of JSON objects, one per
 * line: first {"result":{"created":true,...}}, then batches of events. Lines
 * may arrive split across chunks; etcd_http.c joins them and hands us whole
 * lines. A PUT event has no "type" (etcd omits the default), a DELETE says
 * "DELETE". A start revision that was compacted away arrives as
 * "canceled":true with "compact_revision" on an open stream.
 *
 * Resuming: we remember the next revision we need (one past the last event
 * delivered, or past the header revision of the "created" answer when
 * watching from "now"), so a reconnect after a dropped stream neither
 * misses nor repeats events. The first stream goes to the client's
 * preferred endpoint (the last that answered it, or etcd_client_prefer's
 * choice). Reconnects back off from 100 ms, doubling to 1 s, move to the
 * next endpoint when one cannot be reached, and give up after
 * max_reconnect_seconds without an established stream.
 *
 * A stream can also die silently (a member partitioned away keeps the TCP
 * connection open). With the client's watch_idle_timeout set, the create
 * request asks for progress notifications and a stream on which nothing
 * arrived for that long is dropped and resumed on the next endpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_internal.h"

#define PATH_WATCH "/v3/watch"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

struct watch_run {
	struct etcd_client *c;
	struct etcd_stream *stream;
	size_t ep; /* the endpoint of the stream in progress */
	etcd_watch_cb cb;
	void *ctx;
	void (*on_connected)(void *ctx);
	int64_t next_rev;       /* start revision of the next (re)connect; 0 = now */
	int64_t last_rev;       /* last revision delivered or known to be covered */
	bool user_stop;         /* the callback returned false */
	bool token_refused;     /* the stream reported an auth error */
	enum etcd_status fatal; /* ETCD_OK, or why the watch must end */
	char why[320];          /* fatal reason, or why the stream ended */
};

static bool fail(struct watch_run *w, enum etcd_status st, const char *why)
{
	w->fatal = st;
	snprintf(w->why, sizeof(w->why), "%s", why);
	return false;
}

/* Delivers one "events" array; false ends the stream (see w). */
static bool deliver(struct watch_run *w, const json_t *events, int64_t revision)
{
	size_t n = json_array_size(events), i, parsed = 0;
	struct etcd_event *ev = NULL;
	struct etcd_kv *kvs = NULL;
	int64_t max_rev = 0;
	char why[200];
	bool go_on = false;

	if (n == 0)
		return true;
	ev = calloc(n, sizeof(*ev));
	kvs = calloc(n, sizeof(*kvs));
	if (ev == NULL || kvs == NULL) {
		fail(w, ETCD_E_NOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		const json_t *e = json_array_get(events, i);
		const json_t *type = json_object_get(e, "type");
		enum etcd_status st;

		if (!json_is_object(e)) {
			fail(w, ETCD_E_PROTOCOL, "an event is not an object");
			goto cleanup;
		}
		if (type == NULL || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0)) {
			ev[i].type = ETCD_EVENT_PUT;
		} else if (json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) {
			ev[i].type = ETCD_EVENT_DELETE;
		} else {
			fail(w, ETCD_E_PROTOCOL, "an event has an unknown \"type\"");
			goto cleanup;
		}
		if (!json_is_object(json_object_get(e, "kv"))) {
			fail(w, ETCD_E_PROTOCOL, "an event has no \"kv\" object");
			goto cleanup;
		}
		st = etcd_parse_kv(json_object_get(e, "kv"), &kvs[i], why, sizeof(why));
		if (st != ETCD_OK) {
			fail(w, st, st == ETCD_E_NOMEM ? "out of memory" : why);
			goto cleanup;
		}
		parsed = i + 1;
		ev[i].kv = &kvs[i];
		if (kvs[i].mod_revision > max_rev)
			max_rev = kvs[i].mod_revision;
	}
	if (max_rev == 0)
		max_rev = revision;
	go_on = w->cb(w->ctx, ev, n, revision);
	if (max_rev >= w->next_rev) {
		w->next_rev = max_rev + 1;
		w->last_rev = max_rev;
	}
	if (!go_on)
		w->user_stop = true;
cleanup:
	for (i = 0; i < parsed; i++)
		etcd_kv_clear(&kvs[i]);
	free(kvs);
	free(ev);
	return go_on;
}

/* Does a cancel reason say etcd refused us (token, user, permission)? */
static bool auth_refusal(const char *reason)
{
	return strstr(reason, "auth token") != NULL || strstr(reason, "user name is empty") != NULL ||
	       strstr(reason, "permission denied") != NULL || strstr(reason, "Unauthenticated") != NULL ||
	       strstr(reason, "PermissionDenied") != NULL;
}

/* One line of the stream: see the file comment. */
static bool on_line(void *ctx, const char *line, size_t len)
{
	struct watch_run *w = ctx;
	json_t *j = NULL;
	const json_t *res, *created, *canceled, *events;
	json_error_t jerr;
	int64_t rev = 0, compact = 0;
	char why[320];
	bool go_on = false;

	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return true;
	j = json_loadb(line, len, 0, &jerr);
	if (!json_is_object(j)) {
		if (snprintf(why, sizeof(why), "watch stream line is not a JSON object (%s)",
		             j ? "wrong type" : jerr.text) < 0)
			why[0] = '\0';
		fail(w, ETCD_E_PROTOCOL, why);
		goto cleanup;
	}
	if (json_is_object(json_object_get(j, "error"))) {
		/* The gateway ends a failed stream with {"error":{...}}. */
		const json_t *e = json_object_get(j, "error");
		const char *m = json_string_value(json_object_get(e, "message"));
		int code = (int)json_integer_value(json_object_get(e, "grpc_code"));

		snprintf(w->why, sizeof(w->why), "watch stream error: %s", m ? m : "(no message)");
		if (etcd_token_refused(w->c, 0, code, m ? m : ""))
			w->token_refused = true;
		else if (code == 7 /* PermissionDenied */)
			w->fatal = ETCD_E_AUTH;
		goto cleanup;
	}
	res = json_object_get(j, "result");
	if (!json_is_object(res)) {
		fail(w, ETCD_E_PROTOCOL, "watch stream line has no \"result\" object");
		goto cleanup;
	}
	created = json_object_get(res, "created");
	canceled = json_object_get(res, "canceled");
	events = json_object_get(res, "events");
	if ((created && !json_is_boolean(created)) || (canceled && !json_is_boolean(canceled)) ||
	    (events && !json_is_array(events))) {
		fail(w, ETCD_E_PROTOCOL, "watch answer has a field of the wrong type");
		goto cleanup;
	}
	if (!etcd_json_header_revision(res, &rev, why, sizeof(why)) ||
	    !etcd_json_i64(res, "compact_revision", &compact, why, sizeof(why))) {
		fail(w, ETCD_E_PROTOCOL, why);
		goto cleanup;
	}
	if (json_is_true(canceled)) {
		/* Also the answer to a create that etcd refused (created and
		 * canceled at once): that stream was never established. */
		const char *reason = json_string_value(json_object_get(res, "cancel_reason"));

		if (reason == NULL || reason[0] == '\0')
			reason = "(no reason)";
		if (compact > 0) {
			snprintf(why, sizeof(why), "watch start revision %lld was compacted (oldest kept: %lld)",
			         (long long)w->next_rev, (long long)compact);
			fail(w, ETCD_E_COMPACTED, why);
		} else {
			snprintf(w->why, sizeof(w->why), "watch canceled by etcd: %.200s", reason);
			if (auth_refusal(reason)) {
				if (etcd_token_refused(w->c, 0, -1, reason))
					w->token_refused = true;
				else
					w->fatal = ETCD_E_AUTH;
			}
		}
		goto cleanup;
	}
	if (json_is_true(created)) {
		w->stream->established = true;
		/* The client now prefers this member: on_connected may name it
		 * (etcd_client_endpoint), a reconnect starts on it. */
		w->c->current = w->ep;
		if (w->next_rev == 0 && rev > 0) {
			/* Watching from "now": everything up to rev is history. */
			w->next_rev = rev + 1;
			w->last_rev = rev;
		}
		if (w->on_connected != NULL)
			w->on_connected(w->ctx);
	}
	if (json_array_size(events) > 0) {
		go_on = deliver(w, events, rev);
		goto cleanup;
	}
	if (!json_is_true(created) && rev > 0 && rev >= w->next_rev && w->next_rev > 0) {
		/* A progress notification: nothing is pending up to rev. */
		w->next_rev = rev + 1;
		w->last_rev = rev;
	}
	go_on = true;
cleanup:
	json_decref(j);
	return go_on;
}

/* {"create_request":{"key":..,"range_end":..,"start_revision":".."}} */
static char *watch_body(const char *key, bool prefix, int64_t start, bool progress)
{
	json_t *req = json_object(), *cr = json_object(), *v;
	char *body = NULL, *end = NULL;
	size_t len = strlen(key), end_len = 0;
	bool ok = req != NULL && cr != NULL;

	if (ok && prefix && len == 0) {
		ok = (v = etcd_json_b64("", 1)) != NULL && json_object_set_new(cr, "key", v) == 0 &&
		     (v = etcd_json_b64("", 1)) != NULL && json_object_set_new(cr, "range_end", v) == 0;
	} else if (ok) {
		ok = (v = etcd_json_b64(key, len)) != NULL && json_object_set_new(cr, "key", v) == 0;
		if (ok && prefix) {
			end = etcd_prefix_end(key, len, &end_len);
			ok = end != NULL && (v = etcd_json_b64(end, end_len)) != NULL &&
			     json_object_set_new(cr, "range_end", v) == 0;
		}
	}
	if (ok && start > 0)
		ok = (v = etcd_json_i64str(start)) != NULL && json_object_set_new(cr, "start_revision", v) == 0;
	if (ok && progress)
		ok = json_object_set_new(cr, "progress_notify", json_true()) == 0;
	if (ok && json_object_set(req, "create_request", cr) == 0)
		body = json_dumps(req, JSON_COMPACT);
	free(end);
	json_decref(cr);
	json_decref(req);
	return body;
}

enum etcd_status etcd_watch(struct etcd_client *c, const char *key, bool prefix, int64_t start_revision,
                            etcd_watch_cb cb, void *ctx, void (*on_connected)(void *ctx), double max_reconnect_seconds,
                            int64_t *last_revision, struct etcd_error *err)
{
	struct etcd_error scratch, one;
	struct etcd_stream stream = { 0 };
	struct watch_run w = { 0 };
	enum etcd_status st;
	int64_t failing_since = etcd_now_ms();
	long backoff = BACKOFF_MIN_MS;
	size_t ep = c->current;
	bool reauthed = false;

	if (err == NULL)
		err = &scratch;
	if (last_revision != NULL)
		*last_revision = start_revision > 0 ? start_revision - 1 : 0;
	if (key == NULL || cb == NULL || (!prefix && key[0] == '\0') || start_revision < 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_watch: missing key or callback");
	w.c = c;
	w.stream = &stream;
	w.cb = cb;
	w.ctx = ctx;
	w.on_connected = on_connected;
	w.next_rev = start_revision;
	w.last_rev = start_revision > 0 ? start_revision - 1 : 0;
	stream.on_line = on_line;
	stream.idle_timeout_ms = c->watch_idle_ms;
	stream.ctx = &w;

	for (;;) {
		char *body = watch_body(key, prefix, w.next_rev, c->watch_idle_ms > 0);

		if (body == NULL) {
			st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
			break;
		}
		w.why[0] = '\0';
		w.token_refused = false;
		w.ep = ep;
		etcd_stats_count(c, ETCD_REQ_WATCH);
		st = etcd_stream_once(c, ep, PATH_WATCH, body, &stream, &one);
		free(body);
		if (w.user_stop) {
			st = ETCD_OK;
			break;
		}
		if (w.fatal != ETCD_OK) {
			st = etcd_error_set(err, w.fatal, "%s: %s", c->endpoints[ep], w.why);
			break;
		}
		if (st == ETCD_E_CANCELED || st == ETCD_E_NOMEM || st == ETCD_E_PROTOCOL || st == ETCD_E_AUTH) {
			*err = one;
			break;
		}
		if (stream.established) {
			c->current = ep;
			backoff = BACKOFF_MIN_MS;
			failing_since = etcd_now_ms();
			reauthed = false;
		}
		if (st == ETCD_E_HTTP && stream.http_status < 500 &&
		    !etcd_token_refused(c, stream.http_status, stream.grpc_code, one.message)) {
			*err = one;
			if (stream.grpc_code == 16 || stream.grpc_code == 7 || stream.http_status == 401)
				err->status = st = ETCD_E_AUTH;
			break;
		}
		if (st == ETCD_OK)
			etcd_error_set(&one, ETCD_E_UNAVAILABLE, "%s: %s", c->endpoints[ep],
			               w.why[0] ? w.why : "watch stream ended");
		if (w.token_refused || st == ETCD_E_HTTP) {
			if (st == ETCD_E_HTTP && stream.http_status >= 500) {
				/* an unwell member: fall through to the next one */
			} else if (reauthed) {
				*err = one;
				err->status = st = ETCD_E_AUTH;
				break;
			} else {
				reauthed = true;
				st = etcd_reauthenticate(c, &one);
				if (st == ETCD_E_CANCELED || st == ETCD_E_AUTH || st == ETCD_E_NOMEM) {
					*err = one;
					break;
				}
			}
		}
		/* A member that never accepted the watch, or went silent on an
		 * established one, is passed over for the next. */
		if (!stream.established || st == ETCD_E_TIMEOUT)
			ep = (ep + 1) % c->n_endpoints;
		if (max_reconnect_seconds > 0 &&
		    etcd_now_ms() - failing_since > (int64_t)(max_reconnect_seconds * 1000)) {
			*err = one;
			st = one.status == ETCD_OK ? ETCD_E_UNAVAILABLE : one.status;
			err->status = st;
			break;
		}
		if (!etcd_sleep_ms(c, backoff)) {
			st = etcd_error_set(err, ETCD_E_CANCELED, "%s: canceled", c->endpoints[ep]);
			break;
		}
		if (!stream.established && backoff < BACKOFF_MAX_MS)
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	if (last_revision != NULL)
		*last_revision = w.last_rev;
	return st;
}
