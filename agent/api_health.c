/*
 * api_health.c - what this node says of itself: GET /status, and the health
 * checks load balancers and Kubernetes ask (/primary, /leader, /replica,
 * /read-only, /health, /liveness, /readiness, /sync, /async, and Patroni's
 * others: /standby-leader, /read-only-sync, /quorum), with Patroni's codes
 * and filters (?lag=, ?replication_state=, ?tag_KEY=VALUE), and GET
 * /patroni, Patroni's status document (issue 13).
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
#include <strings.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/parse.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "agent/log.h"
#include "pg/pg_query.h"

#define API_PG_TIMEOUT 0.5   /* seconds, per connect and statement */
#define API_LIVENESS_MIN 3.0 /* seconds: /liveness allows max(3 * loop_wait, this) */

/* ---- status JSON --------------------------------------------------------- */

char *api_status_json(const struct api_status *st)
{
	json_t *root;
	char *s = NULL;

	root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:b, s:f, s:b, s:b, s:I, s:b}",
	                 "name", st->name, "scope", st->scope, "role", st->role, "state", st->state, "leader",
	                 st->leader, "is_leader", (int)st->is_leader, "pg_running", (int)st->pg_running, "timeline",
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
	if (!jsonf_number(root, "lease_ttl_left", JSONF_OPTIONAL, -DBL_MAX, DBL_MAX, false, &out->lease_ttl_left, err,
	                  errlen))
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

enum health_check {
	HC_PRIMARY,
	HC_REPLICA,
	HC_READ_ONLY,
	HC_HEALTH,
	HC_LIVENESS,
	HC_READINESS,
	HC_SYNC,
	HC_ASYNC,
	HC_LEADER,
	HC_STANDBY_LEADER,
	HC_READ_ONLY_SYNC,
	HC_QUORUM
};

static const char *const health_names[] = { "primary",  "replica",        "read-only",      "health",
	                                    "liveness", "readiness",      "sync",           "async",
	                                    "leader",   "standby-leader", "read-only-sync", "quorum" };

/* A custom tag's value as text, as Patroni compares it: a string as it is,
 * anything else as Python's str() in lower case ("true", "5", "1.5"). */
static bool custom_tag_value(const struct api_status *st, const char *key, char *out, size_t len)
{
	json_t *tags = st->custom_tags[0] ? json_loads(st->custom_tags, 0, NULL) : NULL;
	const json_t *v = tags ? json_object_get(tags, key) : NULL;
	bool ok = true;

	if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(out, len, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_integer(v))
		snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, len, "%.17g", json_real_value(v));
	else
		ok = false;
	json_decref(tags);
	return ok;
}

/* This member's value of a tag, as text, for tag_KEY=VALUE filters; false
 * when it has no such tag. */
static bool tag_value(const struct api_status *st, const char *key, char *out, size_t len)
{
	if (strcmp(key, "nofailover") == 0)
		snprintf(out, len, "%s", st->nofailover ? "true" : "false");
	else if (strcmp(key, "nosync") == 0)
		snprintf(out, len, "%s", st->nosync ? "true" : "false");
	else if (strcmp(key, "failover_priority") == 0)
		snprintf(out, len, "%" PRId64, st->failover_priority);
	else if (strcmp(key, "noloadbalance") == 0 && st->noloadbalance)
		snprintf(out, len, "true"); /* Patroni: boolean tags exist only when set */
	else if (strcmp(key, "nostream") == 0 && st->nostream)
		snprintf(out, len, "true");
	else if (strcmp(key, "replicatefrom") == 0 && st->replicatefrom[0])
		snprintf(out, len, "%s", st->replicatefrom);
	else if (strcmp(key, "noloadbalance") == 0 || strcmp(key, "nostream") == 0 || strcmp(key, "replicatefrom") == 0)
		return false;
	else
		return custom_tag_value(st, key, out, len);
	return true;
}

/* Patroni's tag filters: every "tag_KEY=VALUE" of the query must name a tag
 * of this member with that value (compared without case). false with why
 * filled on the first that does not; *bad when one cannot be decoded. */
static bool tags_match(const struct api_status *st, const char *query, char *why, size_t whylen, bool *bad)
{
	const char *p = query;

	*bad = false;
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		char *key = query_decode(p, klen), *want = NULL, have[300];
		bool ok = true;

		if (!key) {
			*bad = true;
			return false;
		}
		if (strncmp(key, "tag_", 4) == 0) {
			want = eq ? query_decode(eq + 1, len - klen - 1) : strdup("");
			if (!want) {
				*bad = true;
				free(key);
				return false;
			}
			if (!tag_value(st, key + 4, have, sizeof(have))) {
				snprintf(why, whylen, "no tag \"%.40s\" on this member", key + 4);
				ok = false;
			} else if (strcasecmp(have, want) != 0) {
				snprintf(why, whylen, "tag \"%.40s\" is \"%.40s\", not \"%.40s\"", key + 4, have, want);
				ok = false;
			}
		}
		free(want);
		free(key);
		if (!ok)
			return false;
		p = end ? end + 1 : NULL;
	}
	return true;
}

/* Patroni's replica conditions, shared by /replica, /read-only (on a
 * replica), /sync, /async, /quorum and /read-only-sync: a running replica
 * that replays (DESIGN.md rule 8), within ?lag= of the leader, in the asked
 * ?replication_state=, with every asked tag. */
static bool replica_ok(const struct api_status *st, int64_t max_lag, const char *repl_state, bool tags_ok,
                       const char *tags_why, char *why, size_t whylen)
{
	if (!st->pg_running) {
		snprintf(why, whylen, "Postgres is not running");
	} else if (st->is_leader || strcmp(st->role, "replica") != 0) {
		snprintf(why, whylen, "%s",
		         st->is_leader ? "this node is the leader" : "Postgres is not running as a replica");
	} else if (ha_replay_state_unhealthy(st->state)) {
		snprintf(why, whylen, "%s", st->state);
	} else if (st->noloadbalance) {
		snprintf(why, whylen, "tagged noloadbalance");
	} else if (max_lag >= 0 && st->lag < 0) {
		snprintf(why, whylen, "replication lag unknown");
	} else if (max_lag >= 0 && st->lag > max_lag) {
		snprintf(why, whylen, "replication lag %" PRId64 " bytes above %" PRId64, st->lag, max_lag);
	} else if (repl_state && strcmp(repl_state, st->replication_state) != 0) {
		snprintf(why, whylen, "replication state \"%s\", not \"%.40s\"",
		         st->replication_state[0] ? st->replication_state : "none", repl_state);
	} else if (!tags_ok) {
		snprintf(why, whylen, "%s", tags_why);
	} else {
		return true;
	}
	return false;
}

static bool primary_ok(const struct api_status *st)
{
	return st->is_leader && st->pg_running && strcmp(st->role, "primary") == 0;
}

/* One health check: 200 when it passes, 503 otherwise, with a small JSON
 * body saying what was seen and, on 503, why ("error", as in every answer
 * that is not a success). */
static json_t *patroni_doc(struct api_server *s, const struct api_status *st, bool ask_pg);

static void health(struct api_server *s, const struct api_request *rq, enum health_check hc, struct api_reply *out)
{
	struct api_status st;
	double age = 0, limit;
	int64_t max_lag = -1;
	char why[160] = "", tags_why[160] = "";
	char *repl_state = NULL;
	bool have, ok = false, tags_ok = true;
	json_t *root;

	if (hc != HC_PRIMARY && hc != HC_LEADER && hc != HC_STANDBY_LEADER && hc != HC_HEALTH && hc != HC_LIVENESS) {
		bool bad = false;
		char *v = query_param(rq->query, "lag", &bad);

		if (bad || (v && !parse_bytes(v, &max_lag))) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST,
			                "lag: expected a byte count such as 1048576, 16MB or 1GB");
			free(v);
			return;
		}
		free(v);
		repl_state = query_param(rq->query, "replication_state", &bad);
		if (bad) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "replication_state: cannot be decoded");
			return;
		}
	}
	have = api_snapshot(s, &st, &age, NULL);
	limit = st.loop_wait > 0 ? 3 * st.loop_wait : 0;
	if (limit < API_LIVENESS_MIN)
		limit = API_LIVENESS_MIN;
	if (!have) {
		snprintf(why, sizeof(why), "the agent has not published its state yet");
		goto answer;
	}
	if (hc != HC_PRIMARY && hc != HC_LEADER && hc != HC_STANDBY_LEADER && hc != HC_HEALTH && hc != HC_LIVENESS &&
	    hc != HC_READINESS) {
		bool bad = false;

		tags_ok = tags_match(&st, rq->query, tags_why, sizeof(tags_why), &bad);
		if (bad) {
			free(repl_state);
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "a tag_ filter cannot be decoded");
			return;
		}
	}
	switch (hc) {
	case HC_PRIMARY:
		ok = primary_ok(&st);
		if (!ok)
			snprintf(why, sizeof(why), "%s",
			         !st.is_leader    ? "this node does not hold the leader key"
			         : !st.pg_running ? "Postgres is not running"
			                          : "Postgres is not running as a primary");
		break;
	case HC_LEADER:
		/* Patroni: the leader key, whatever Postgres does; but a
		 * standby leader takes no writes, so a proxy routing writes by
		 * /leader must not send them there. */
		ok = st.is_leader && !st.standby_leader;
		if (!ok)
			snprintf(why, sizeof(why), "%s",
			         st.is_leader ? "this node is the standby leader of a standby cluster (read-only)"
			                      : "this node does not hold the leader key");
		break;
	case HC_STANDBY_LEADER:
		ok = st.standby_leader && st.pg_running;
		if (!ok)
			snprintf(why, sizeof(why), "%s",
			         st.standby_leader ? "Postgres is not running"
			                           : "not the standby leader of a standby cluster");
		break;
	case HC_REPLICA:
		ok = replica_ok(&st, max_lag, repl_state, tags_ok, tags_why, why, sizeof(why));
		break;
	case HC_SYNC:
	case HC_ASYNC:
	case HC_QUORUM:
		/* Synchronous mode: a replica the sync key names (/sync, /quorum
		 * under quorum commit) or does not (/async). */
		ok = replica_ok(&st, max_lag, repl_state, tags_ok, tags_why, why, sizeof(why));
		if (ok && hc == HC_ASYNC && st.sync_standby) {
			ok = false;
			snprintf(why, sizeof(why), "%s", st.sync_quorum ? "a quorum standby" : "a synchronous standby");
		} else if (ok && hc != HC_ASYNC && (!st.sync_standby || st.sync_quorum != (hc == HC_QUORUM))) {
			ok = false;
			snprintf(why, sizeof(why), "%s",
			         hc == HC_SYNC ? "not a synchronous standby" : "not a quorum standby");
		}
		break;
	case HC_READ_ONLY:
	case HC_READ_ONLY_SYNC:
		/* (a standby leader is readable, as Patroni's /read-only says) */
		if (primary_ok(&st) || (hc == HC_READ_ONLY && st.standby_leader && st.pg_running)) {
			ok = true;
			break;
		}
		ok = replica_ok(&st, max_lag, repl_state, tags_ok, tags_why, why, sizeof(why));
		if (ok && hc == HC_READ_ONLY_SYNC && (!st.sync_standby || st.sync_quorum)) {
			ok = false;
			snprintf(why, sizeof(why), "neither the primary nor a synchronous standby");
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
		ok = st.pg_running && ((st.is_leader && (strcmp(st.role, "primary") == 0 || st.standby_leader)) ||
		                       (!st.is_leader && strcmp(st.role, "replica") == 0 && st.lag >= 0 &&
		                        !ha_replay_state_unhealthy(st.state) && (max_lag < 0 || st.lag <= max_lag)));
		if (!ok)
			snprintf(why, sizeof(why), "%s",
			         !st.pg_running                        ? "Postgres is not running"
			         : ha_replay_state_unhealthy(st.state) ? st.state
			         : strcmp(st.role, "replica") == 0 && !st.is_leader
			                 ? (st.lag < 0 ? "replication lag unknown" : "replication lag above ?lag")
			                 : "neither a running leader nor a running replica");
		break;
	}
answer:
	free(repl_state);
	/* Patroni answers every check with its status document: so do we
	 * (without what only Postgres knows: a probe never waits for it), with
	 * the check's own fields beside it. */
	root = have ? patroni_doc(s, &st, false) : json_pack("{s:s, s:s, s:i}", "role", "", "state", "", "timeline", 0);
	if (root && (json_object_set_new(root, "check", json_string(health_names[hc])) != 0 ||
	             json_object_set_new(root, "ok", json_boolean(ok)) != 0 ||
	             json_object_set_new(root, "is_leader", json_boolean(have && st.is_leader)) != 0 ||
	             json_object_set_new(root, "pg_running", json_boolean(have && st.pg_running)) != 0 ||
	             json_object_set_new(root, "lag", json_integer((json_int_t)(have ? st.lag : -1))) != 0)) {
		json_decref(root);
		root = NULL;
	}
	if (root && hc == HC_LIVENESS && have)
		json_object_set_new(root, "since_last_publish", json_real(age));
	if (root && !ok)
		json_object_set_new(root, "error", json_string(why));
	api_reply_json(out, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, root);
}

#define HEALTH_HANDLER(fn, hc)                                                                           \
	void fn(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out) \
	{                                                                                                \
		(void)body;                                                                              \
		health(s, rq, hc, out);                                                                  \
	}
HEALTH_HANDLER(api_h_primary, HC_PRIMARY)
HEALTH_HANDLER(api_h_replica, HC_REPLICA)
HEALTH_HANDLER(api_h_read_only, HC_READ_ONLY)
HEALTH_HANDLER(api_h_health, HC_HEALTH)
HEALTH_HANDLER(api_h_liveness, HC_LIVENESS)
HEALTH_HANDLER(api_h_readiness, HC_READINESS)
HEALTH_HANDLER(api_h_sync, HC_SYNC)
HEALTH_HANDLER(api_h_async, HC_ASYNC)
HEALTH_HANDLER(api_h_leader, HC_LEADER)
HEALTH_HANDLER(api_h_standby_leader, HC_STANDBY_LEADER)
HEALTH_HANDLER(api_h_read_only_sync, HC_READ_ONLY_SYNC)
HEALTH_HANDLER(api_h_quorum, HC_QUORUM)

/* ---- GET /patroni ---------------------------------------------------------- */

#ifndef BATON_VERSION
#define BATON_VERSION "unknown"
#endif

/* What the loop does not publish and Patroni's status shows: the server's
 * version number, system identifier and postmaster start time, asked of
 * the local Postgres on the server's connection (never waited for: false
 * when another handler uses it, or Postgres does not answer). */
static bool pg_facts(struct api_server *s, const struct api_status *st, long *version, char *sysid, size_t sysid_len,
                     char *started, size_t started_len)
{
	char buf[160], *sep1, *sep2;
	struct pg_err perr;
	bool ok;

	if (!s->pg_conninfo || !st->pg_running)
		return false;
	if (pthread_mutex_trylock(&s->pg_mu) != 0)
		return false;
	if (!s->pg)
		s->pg = pg_conn_new(s->pg_conninfo, API_PG_TIMEOUT);
	memset(&perr, 0, sizeof(perr));
	ok = s->pg &&
	     pg_query_scalar(s->pg,
	                     "SELECT current_setting('server_version_num') || '|' || "
	                     "(SELECT system_identifier FROM pg_catalog.pg_control_system()) || '|' || "
	                     "to_char(pg_catalog.pg_postmaster_start_time(), 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM')",
	                     buf, sizeof(buf), &perr);
	if (!ok && s->pg) {
		log_debug("REST API: /patroni without the server's version: Postgres did not answer: %s", perr.msg);
		pg_conn_reset(s->pg);
	}
	pthread_mutex_unlock(&s->pg_mu);
	if (!ok)
		return false;
	sep1 = strchr(buf, '|');
	sep2 = sep1 ? strchr(sep1 + 1, '|') : NULL;
	if (!sep2)
		return false;
	*sep1 = *sep2 = '\0';
	*version = strtol(buf, NULL, 10);
	snprintf(sysid, sysid_len, "%s", sep1 + 1);
	snprintf(started, started_len, "%s", sep2 + 1);
	return true;
}

/* Patroni's "tags": what the member key publishes (dcs_member_tags), in
 * Patroni's shape: a boolean tag only when true, failover_priority only
 * when not the default 1, and no "tags" at all when none is left. */
static bool patroni_tags(const struct api_status *st, json_t *root)
{
	struct ha_member m;
	json_t *tags;

	memset(&m, 0, sizeof(m));
	m.nofailover = st->nofailover;
	m.nosync = st->nosync;
	m.failover_priority = (int)st->failover_priority;
	m.noloadbalance = st->noloadbalance;
	m.nostream = st->nostream;
	m.clonefrom = st->clonefrom;
	snprintf(m.replicatefrom, sizeof(m.replicatefrom), "%s", st->replicatefrom);
	snprintf(m.custom_tags, sizeof(m.custom_tags), "%s", st->custom_tags);
	tags = dcs_member_tags(&m);
	if (!tags)
		return false;
	if (!m.nofailover)
		json_object_del(tags, "nofailover");
	if (!m.nosync)
		json_object_del(tags, "nosync");
	if (m.failover_priority == 1)
		json_object_del(tags, "failover_priority");
	if (json_object_size(tags) == 0) {
		json_decref(tags);
		return true;
	}
	return json_object_set_new(root, "tags", tags) == 0;
}

/* Patroni's status document: the fields its tools and dashboards read,
 * with Patroni's names and shapes, from the loop's snapshot; with ask_pg
 * also the server's version, system identifier and postmaster start time
 * (pg_facts). A new reference, NULL on ENOMEM. */
static json_t *patroni_doc(struct api_server *s, const struct api_status *st, bool ask_pg)
{
	char sysid[32], started[64];
	long version = 0;
	json_t *root, *xlog, *repl;
	bool primary;

	primary = st->pg_running && strcmp(st->role, "primary") == 0;
	root = json_pack("{s:s, s:s, s:I, s:{s:s, s:s, s:s}}", "state", st->state, "role",
	                 st->standby_leader ? "standby_leader" : st->role, "timeline", (json_int_t)st->timeline,
	                 "patroni", "version", BATON_VERSION, "scope", st->scope, "name", st->name);
	if (!root)
		goto oom;
	if (primary)
		xlog = json_pack("{s:I}", "location", (json_int_t)st->lsn);
	else
		xlog = json_pack("{s:I, s:I, s:o, s:b}", "received_location", (json_int_t)st->receive_lsn,
		                 "replayed_location", (json_int_t)st->replay_lsn, "replayed_timestamp",
		                 st->replayed_timestamp[0] ? json_string(st->replayed_timestamp) : json_null(),
		                 "paused", (int)st->replay_paused);
	if (!st->pg_running) {
		json_decref(xlog);
		xlog = NULL;
	}
	if (xlog && json_object_set_new(root, "xlog", xlog) != 0)
		goto oom;
	if (ask_pg && pg_facts(s, st, &version, sysid, sizeof(sysid), started, sizeof(started)) &&
	    (json_object_set_new(root, "server_version", json_integer(version)) != 0 ||
	     json_object_set_new(root, "database_system_identifier", json_string(sysid)) != 0 ||
	     json_object_set_new(root, "postmaster_start_time", json_string(started)) != 0))
		goto oom;
	if (primary && st->n_walsenders > 0) {
		repl = json_array();
		if (!repl || json_object_set_new(root, "replication", repl) != 0)
			goto oom;
		for (int i = 0; i < st->n_walsenders; i++) {
			const struct api_walsender *w = &st->walsenders[i];

			if (json_array_append_new(repl,
			                          json_pack("{s:s, s:s, s:s?, s:s, s:s, s:i}", "usename", w->usename,
			                                    "application_name", w->application_name, "client_addr",
			                                    w->client_addr[0] ? w->client_addr : NULL, "state",
			                                    w->state, "sync_state", w->sync_state, "sync_priority",
			                                    w->sync_priority)) != 0)
				goto oom;
		}
	}
	if (!primary && st->replication_state[0] &&
	    json_object_set_new(root, "replication_state", json_string(st->replication_state)) != 0)
		goto oom;
	if (st->dcs_last_seen > 0 &&
	    json_object_set_new(root, "dcs_last_seen", json_integer((json_int_t)st->dcs_last_seen)) != 0)
		goto oom;
	if (!st->leader[0] && json_object_set_new(root, "cluster_unlocked", json_true()) != 0)
		goto oom;
	if (st->paused && json_object_set_new(root, "pause", json_true()) != 0)
		goto oom;
	if (st->pending_restart && json_object_set_new(root, "pending_restart", json_true()) != 0)
		goto oom;
	if (st->sync_standby &&
	    json_object_set_new(root, st->sync_quorum ? "quorum_standby" : "sync_standby", json_true()) != 0)
		goto oom;
	if (!patroni_tags(st, root))
		goto oom;
	return root;
oom:
	json_decref(root);
	return NULL;
}

/* GET /patroni: Patroni's status document. */
void api_h_patroni(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	json_t *root;

	(void)rq;
	(void)body;
	if (!api_snapshot(s, &st, NULL, NULL)) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	root = patroni_doc(s, &st, true);
	if (root)
		api_reply_json(out, MHD_HTTP_OK, root);
	else
		api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}
