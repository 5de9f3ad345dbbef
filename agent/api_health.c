/*
 * api_health.c - what this node says of itself: GET /status, and the health
 * checks load balancers and Kubernetes ask (/primary, /leader, /replica,
 * /read-only, /health, /liveness, /readiness, /sync, /async).
 *
 * Every answer comes from the snapshot the loop publishes (api_publish) and
 * never waits for anything else, so a probe is answered while the loop or
 * etcd is slow; /liveness fails once no snapshot came for max(3 * loop_wait,
 * API_LIVENESS_MIN). /status alone refreshes the LSNs and timeline from the
 * local Postgres when the snapshot says it runs (0.5 s per connect and
 * statement; on failure, or while another handler uses that connection, it
 * serves the snapshot): a candidate asking "are you ahead of me?" during an
 * election gets an answer either way, and the published LSN is never newer
 * than the truth. The status document's JSON (api_status_json, and
 * api_status_from_json, with which peer.c reads a peer's answer) is here too.
 */
#include "agent/api.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/parse.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "agent/log.h"
#include "pg/pg_query.h"

#define API_PG_TIMEOUT 0.5           /* seconds, per connect and statement */
#define API_LIVENESS_MIN 3.0         /* seconds: /liveness allows max(3 * loop_wait, this) */

/* ---- status JSON --------------------------------------------------------- */

char *api_status_json(const struct api_status *st)
{
	json_t *root;
	char *s = NULL;

	root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:b, s:f, s:b, s:b, s:I, s:b}", "name",
			 st->name, "scope", st->scope, "role", st->role, "state", st->state, "leader", st->leader,
			 "is_leader", (int)st->is_leader, "pg_running", (int)st->pg_running, "timeline",
			 (json_int_t)st->timeline, "lsn", (json_int_t)st->lsn, "receive_lsn",
			 (json_int_t)st->receive_lsn, "replay_lsn", (json_int_t)st->replay_lsn, "nofailover",
			 (int)st->nofailover, "lease_ttl_left", st->lease_ttl_left, "paused", (int)st->paused,
			 "pending_restart", (int)st->pending_restart, "lag", (json_int_t)st->lag, "sync_standby",
			 (int)st->sync_standby);
	if (root && st->pg_host[0] && st->pg_port > 0 &&
	    (json_object_set_new(root, "pg_host", json_string(st->pg_host)) != 0 ||
	     json_object_set_new(root, "pg_port", json_integer(st->pg_port)) != 0)) {
		json_decref(root);
		return NULL;
	}
	if (root)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

bool api_status_from_json(const char *json, struct api_status *out, char *err, size_t errlen)
{
	json_int_t timeline = 0, lsn = 0, receive = 0, replay = 0, lag = -1, pg_port = 0;
	json_error_t jerr;
	json_t *root;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	root = json ? json_loads(json, JSON_DECODE_ANY, &jerr) : NULL;
	if (!root) {
		jsonf_set_err(err, errlen, "invalid JSON: %s", json ? jerr.text : "no body");
		return false;
	}
	if (!json_is_object(root)) {
		jsonf_set_err(err, errlen, "not a JSON object");
		goto cleanup;
	}
	/* What an election needs is required; the rest is checked if present. */
	if (!jsonf_string(root, "name", JSONF_REQUIRED, out->name, sizeof(out->name), err, errlen) ||
	    !jsonf_string(root, "role", JSONF_REQUIRED, out->role, sizeof(out->role), err, errlen) ||
	    !jsonf_string(root, "state", JSONF_REQUIRED, out->state, sizeof(out->state), err, errlen) ||
	    !jsonf_bool(root, "pg_running", JSONF_REQUIRED, &out->pg_running, err, errlen) ||
	    !jsonf_bool(root, "is_leader", JSONF_REQUIRED, &out->is_leader, err, errlen) ||
	    !jsonf_int(root, "timeline", JSONF_REQUIRED, 0, UINT32_MAX, &timeline, err, errlen) ||
	    !jsonf_int(root, "lsn", JSONF_REQUIRED, 0, INT64_MAX, &lsn, err, errlen) ||
	    !jsonf_string(root, "scope", JSONF_OPTIONAL, out->scope, sizeof(out->scope), err, errlen) ||
	    !jsonf_string(root, "leader", JSONF_OPTIONAL, out->leader, sizeof(out->leader), err, errlen) ||
	    !jsonf_int(root, "receive_lsn", JSONF_OPTIONAL, 0, INT64_MAX, &receive, err, errlen) ||
	    !jsonf_int(root, "replay_lsn", JSONF_OPTIONAL, 0, INT64_MAX, &replay, err, errlen) ||
	    !jsonf_bool(root, "nofailover", JSONF_OPTIONAL, &out->nofailover, err, errlen) ||
	    !jsonf_bool(root, "paused", JSONF_OPTIONAL, &out->paused, err, errlen) ||
	    !jsonf_bool(root, "pending_restart", JSONF_OPTIONAL, &out->pending_restart, err, errlen) ||
	    !jsonf_bool(root, "sync_standby", JSONF_OPTIONAL, &out->sync_standby, err, errlen) ||
	    !jsonf_int(root, "lag", JSONF_OPTIONAL, -1, INT64_MAX, &lag, err, errlen) ||
	    !jsonf_string(root, "pg_host", JSONF_OPTIONAL, out->pg_host, sizeof(out->pg_host), err, errlen) ||
	    !jsonf_int(root, "pg_port", JSONF_OPTIONAL, 0, 65535, &pg_port, err, errlen))
		goto cleanup;
	if (!dcs_role_known(out->role)) {
		jsonf_set_err(err, errlen, "role: unknown role \"%s\"", out->role);
		goto cleanup;
	}
	/* Any finite number: jansson never parses an infinity or a NaN. */
	if (!jsonf_number(root, "lease_ttl_left", JSONF_OPTIONAL, -DBL_MAX, DBL_MAX, false, &out->lease_ttl_left,
			  err, errlen))
		goto cleanup;
	out->timeline = (uint32_t)timeline;
	out->lsn = (uint64_t)lsn;
	out->receive_lsn = (uint64_t)receive;
	out->replay_lsn = (uint64_t)replay;
	out->lag = (int64_t)lag;
	out->pg_port = (int)pg_port;
	ok = true;
cleanup:
	json_decref(root);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}

/* ---- query strings ------------------------------------------------------- */

/* Percent-decodes n bytes of a query component ('+' is a space) into a
 * malloc'd string; NULL when it decodes to a NUL byte or on ENOMEM. */
static char *query_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
			   isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = { s[i + 1], s[i + 2], '\0' };

			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (c == '\0') {
			free(out);
			return NULL;
		}
		out[j++] = c;
	}
	out[j] = '\0';
	return out;
}

/* The decoded value of the first "name=..." of a raw query (malloc'd);
 * NULL when absent. *bad is set when the parameter is there but cannot be
 * decoded. */
static char *query_param(const char *query, const char *name, bool *bad)
{
	const char *p = query;
	size_t nlen = strlen(name);

	*bad = false;
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		char *key = query_decode(p, klen);

		if (key && strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
			char *v = eq ? query_decode(eq + 1, len - klen - 1) : strdup("");

			free(key);
			if (!v)
				*bad = true;
			return v;
		}
		free(key);
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

/* ---- snapshot-based endpoints -------------------------------------------- */

/* Overwrites the snapshot's position with what the local Postgres says now.
 * The connection is one for the server: a handler that finds it in use by
 * another does not wait, it serves the snapshot. Failure leaves st as it
 * was. */
static void refresh_from_pg(struct api_server *s, struct api_status *st)
{
	struct pg_state ps;
	struct pg_err perr;
	bool ok;

	if (!s->pg_conninfo || !st->pg_running)
		return;
	if (pthread_mutex_trylock(&s->pg_mu) != 0)
		return;
	if (!s->pg)
		s->pg = pg_conn_new(s->pg_conninfo, API_PG_TIMEOUT);
	memset(&perr, 0, sizeof(perr));
	ok = s->pg && pg_query_state(s->pg, &ps, &perr);
	if (!ok && s->pg) {
		log_debug("REST API: serving the last snapshot, Postgres did not answer: %s", perr.msg);
		pg_conn_reset(s->pg);
	}
	pthread_mutex_unlock(&s->pg_mu);
	if (!ok)
		return;
	/* A replica's fresh timeline can lag (no WAL receiver right after its
	 * primary died); the loop's snapshot keeps the one it last streamed on. */
	if (!ps.in_recovery || ps.timeline > st->timeline)
		st->timeline = ps.timeline;
	st->lsn = ps.current_lsn;
	st->receive_lsn = ps.receive_lsn;
	st->replay_lsn = ps.replay_lsn;
}

void api_h_status(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	char *text;

	(void)rq;
	(void)body;
	if (!api_snapshot(s, &st, NULL, NULL)) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	refresh_from_pg(s, &st);
	text = api_status_json(&st);
	out->code = MHD_HTTP_OK;
	out->content_type = JSON_TYPE;
	out->body = text;
	out->body_len = text ? strlen(text) : 0;
}

enum health_check { HC_PRIMARY, HC_REPLICA, HC_READ_ONLY, HC_HEALTH, HC_LIVENESS, HC_READINESS, HC_SYNC, HC_ASYNC };

static const char *const health_names[] = { "primary", "replica", "read-only", "health",
					     "liveness", "readiness", "sync", "async" };

/* One health check: 200 when it passes, 503 otherwise, with a small JSON
 * body saying what was seen and, on 503, why ("error", as in every answer
 * that is not a success). */
static void health(struct api_server *s, const struct api_request *rq, enum health_check hc, struct api_reply *out)
{
	struct api_status st;
	double age = 0, limit;
	int64_t max_lag = -1;
	char why[160] = "";
	bool have, ok = false;
	json_t *root;

	if (hc == HC_REPLICA || hc == HC_SYNC || hc == HC_ASYNC || hc == HC_READ_ONLY) {
		bool bad = false;
		char *v = query_param(rq->query, "lag", &bad);

		if (bad || (v && !parse_bytes(v, &max_lag))) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST,
				    "lag: expected a byte count such as 1048576, 16MB or 1GB");
			free(v);
			return;
		}
		free(v);
	}
	have = api_snapshot(s, &st, &age, NULL);
	limit = st.loop_wait > 0 ? 3 * st.loop_wait : 0;
	if (limit < API_LIVENESS_MIN)
		limit = API_LIVENESS_MIN;
	if (!have) {
		snprintf(why, sizeof(why), "the agent has not published its state yet");
		goto answer;
	}
	switch (hc) {
	case HC_PRIMARY:
		ok = st.is_leader && st.pg_running && strcmp(st.role, "primary") == 0;
		if (!ok)
			snprintf(why, sizeof(why), "%s", !st.is_leader ? "this node does not hold the leader key"
						     : !st.pg_running ? "Postgres is not running"
								      : "Postgres is not running as a primary");
		break;
	case HC_REPLICA:
		ok = strcmp(st.role, "replica") == 0 && st.pg_running && !st.is_leader;
		if (!ok) {
			snprintf(why, sizeof(why), "%s", !st.pg_running ? "Postgres is not running"
							 : st.is_leader ? "this node is the leader"
									: "Postgres is not running as a replica");
		} else if (ha_replay_state_unhealthy(st.state)) {
			/* DESIGN.md rule 8: a replica that does not replay is not one. */
			ok = false;
			snprintf(why, sizeof(why), "%s", st.state);
		} else if (max_lag >= 0 && st.lag < 0) {
			ok = false;
			snprintf(why, sizeof(why), "replication lag unknown");
		} else if (max_lag >= 0 && st.lag > max_lag) {
			ok = false;
			snprintf(why, sizeof(why), "replication lag %" PRId64 " bytes above %" PRId64, st.lag, max_lag);
		}
		break;
	case HC_SYNC:
	case HC_ASYNC:
		/* Synchronous mode: a running replica the sync key names (/sync) or
		 * does not (/async), for routing reads that must see every commit. */
		ok = strcmp(st.role, "replica") == 0 && st.pg_running && !st.is_leader &&
		     st.sync_standby == (hc == HC_SYNC);
		if (!ok)
			snprintf(why, sizeof(why), "%s",
				 !st.pg_running ? "Postgres is not running"
				 : st.is_leader || strcmp(st.role, "replica") != 0 ? "not running as a replica"
				 : hc == HC_SYNC ? "not a synchronous standby"
						 : "a synchronous standby");
		else if (ha_replay_state_unhealthy(st.state)) {
			ok = false;
			snprintf(why, sizeof(why), "%s", st.state);
		} else if (max_lag >= 0 && (st.lag < 0 || st.lag > max_lag)) {
			ok = false;
			snprintf(why, sizeof(why), "replication lag %" PRId64 " bytes above %" PRId64, st.lag, max_lag);
		}
		break;
	case HC_READ_ONLY:
		ok = st.pg_running && (strcmp(st.role, "replica") == 0 || strcmp(st.role, "primary") == 0);
		if (!ok) {
			snprintf(why, sizeof(why), "Postgres is not running");
		} else if (!st.is_leader && ha_replay_state_unhealthy(st.state)) {
			ok = false;
			snprintf(why, sizeof(why), "%s", st.state);
		} else if (!st.is_leader && max_lag >= 0 && (st.lag < 0 || st.lag > max_lag)) {
			ok = false;
			snprintf(why, sizeof(why), "replication lag %" PRId64 " bytes above %" PRId64, st.lag, max_lag);
		}
		break;
	case HC_HEALTH:
		ok = st.pg_running;
		if (!ok)
			snprintf(why, sizeof(why), "Postgres is not running");
		break;
	case HC_LIVENESS:
		ok = age <= limit;
		if (!ok)
			snprintf(why, sizeof(why), "the loop has not published for %.1f s (limit %.1f s)", age, limit);
		break;
	case HC_READINESS:
		ok = st.pg_running && ((st.is_leader && strcmp(st.role, "primary") == 0) ||
				       (!st.is_leader && strcmp(st.role, "replica") == 0 && st.lag >= 0 &&
					!ha_replay_state_unhealthy(st.state)));
		if (!ok)
			snprintf(why, sizeof(why), "%s", !st.pg_running ? "Postgres is not running"
							 : ha_replay_state_unhealthy(st.state) ? st.state
							 : strcmp(st.role, "replica") == 0 && !st.is_leader
							       ? "replication lag unknown"
							       : "neither a running leader nor a running replica");
		break;
	}
answer:
	root = json_pack("{s:s, s:b, s:s, s:s, s:b, s:b, s:I, s:I}", "check", health_names[hc], "ok", (int)ok, "role",
			 have ? st.role : "", "state", have ? st.state : "", "is_leader", (int)(have && st.is_leader),
			 "pg_running", (int)(have && st.pg_running), "timeline", (json_int_t)(have ? st.timeline : 0),
			 "lag", (json_int_t)(have ? st.lag : -1));
	if (root && hc == HC_LIVENESS && have)
		json_object_set_new(root, "since_last_publish", json_real(age));
	if (root && !ok)
		json_object_set_new(root, "error", json_string(why));
	api_reply_json(out, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, root);
}

#define HEALTH_HANDLER(fn, hc)                                                                                    \
	void fn(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)          \
	{                                                                                                         \
		(void)body;                                                                                       \
		health(s, rq, hc, out);                                                                           \
	}
HEALTH_HANDLER(api_h_primary, HC_PRIMARY)
HEALTH_HANDLER(api_h_replica, HC_REPLICA)
HEALTH_HANDLER(api_h_read_only, HC_READ_ONLY)
HEALTH_HANDLER(api_h_health, HC_HEALTH)
HEALTH_HANDLER(api_h_liveness, HC_LIVENESS)
HEALTH_HANDLER(api_h_readiness, HC_READINESS)
HEALTH_HANDLER(api_h_sync, HC_SYNC)
HEALTH_HANDLER(api_h_async, HC_ASYNC)
