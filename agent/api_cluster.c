/*
 * api_cluster.c - the operator's endpoints: the cluster as etcd holds it
 * (GET /cluster, /history, /config) and the writes (PATCH /config, POST
 * /switchover, /failover, /restart, /reload, /reinit, /failsafe, DELETE
 * /restart).
 *
 * The reads and PATCH /config, /switchover, /failover use the server's own
 * etcd client (short timeouts), one request at a time: the dispatch
 * (api.c) holds its mutex around these handlers, and answers 503 when it
 * cannot take it within API_LOCK_WAIT. The writes to etcd go through ops.c
 * (validated against the cluster, compare-and-swap on the key). POST
 * /restart, /reload, /reinit, /failsafe and DELETE /restart set flags the
 * loop takes with api_take_requests(); POST /restart then waits (bounded,
 * in its own worker thread) for the loop's api_restart_report(). Who may
 * write is decided before any handler here runs (api.c).
 */
#include "agent/api.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/parse.h"
#include "agent/clock.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "agent/log.h"
#include "agent/ops.h"

/* ---- etcd-based endpoints -------------------------------------------------- */

/* An optional body that, when present, must be a JSON object (no fields are
 * read from it); false with a 400 reply otherwise. */
static bool body_optional_object(json_t *body, struct api_reply *out)
{
	if (body && !json_is_object(body)) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
		return false;
	}
	return true;
}

/* 503 unless the server has etcd access. */
static bool need_etcd(struct api_server *s, struct api_reply *out)
{
	if (s->etcd)
		return true;
	api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "etcd access is not configured for this REST API");
	return false;
}

static void reply_etcd_error(struct api_reply *out, const char *what, const struct etcd_error *e)
{
	api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "etcd unreachable while reading %s: %s (%s)", what,
	                e->message, etcd_status_name(e->status));
}

/* A JSON value from etcd's text; NULL when it does not parse. */
static json_t *parse_value(const struct etcd_kv *kv)
{
	return json_loadb(kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
}

static const struct etcd_kv *find_kv(const struct etcd_range_result *r, const char *key)
{
	for (size_t i = 0; i < r->n_kvs; i++)
		if (strcmp(r->kvs[i].key, key) == 0)
			return &r->kvs[i];
	return NULL;
}

/* True when the sync key names the member (a synchronous standby). */
static bool sync_names(const struct ha_cluster_view *v, const char *name)
{
	for (size_t i = 0; v->has_sync && i < v->n_sync && i < HA_SYNC_MAX; i++)
		if (strcmp(v->sync_standbys[i], name) == 0)
			return true;
	return false;
}

/* GET /cluster: one prefix read, parsed as the agents parse it, in
 * Patroni's shape (member roles leader, sync_standby, replica) with
 * baton's fields beside. */
void api_h_cluster(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct etcd_range_result r;
	struct etcd_error e;
	struct ha_cluster_view *view = NULL;
	struct dcs_settings settings;
	const struct etcd_kv *kv;
	const struct ha_member *lm;
	json_t *root = NULL, *members = NULL, *sw = NULL;
	char warn[2048] = "";
	uint64_t ref = 0;
	bool paused;

	(void)rq;
	(void)body;
	if (!need_etcd(s, out))
		return;
	memset(&r, 0, sizeof(r));
	memset(&e, 0, sizeof(e));
	if (dcs_read_cluster(s->etcd, &s->keys, NULL, &r, NULL, 0, &e) != ETCD_OK) {
		reply_etcd_error(out, "the cluster", &e);
		return;
	}
	view = calloc(1, sizeof(*view));
	if (!view)
		goto cleanup;
	memset(&settings, 0, sizeof(settings));
	dcs_parse_cluster(&s->keys, &r, NULL, view, &settings, warn, sizeof(warn));
	paused = view->paused || settings.pause;
	dcs_settings_free(&settings);

	/* The reference for lags: the leader's freshest known position. */
	ref = view->leader_lsn;
	lm = view->has_leader ? ha_find_member(view, view->leader) : NULL;
	if (lm && lm->lsn > ref)
		ref = lm->lsn;

	members = json_array();
	if (!members)
		goto cleanup;
	for (size_t i = 0; i < view->n_members; i++) {
		const struct ha_member *m = &view->members[i];
		char *text = dcs_member_json(m);
		json_t *mj = text ? json_loads(text, 0, NULL) : NULL;
		bool leads = view->has_leader && strcmp(m->name, view->leader) == 0;

		free(text);
		if (!mj)
			goto cleanup;
		/* Patroni's roles: the leader, a synchronous standby the sync
		 * key names, or a replica; baton's own role stays in
		 * "baton_role". Patroni gives no lag for the leader, and
		 * "unknown" when it cannot tell. */
		json_object_set_new(mj, "baton_role", json_string(m->role));
		json_object_set_new(mj, "role",
		                    json_string(ha_is_standby_leader(view, m) ? "standby_leader"
		                                : leads                       ? "leader"
		                                : sync_names(view, m->name)   ? "sync_standby"
		                                                              : "replica"));
		json_object_set_new(mj, "is_leader", json_boolean(leads));
		if (!leads && ref > 0)
			json_object_set_new(mj, "lag", json_integer(ref > m->lsn ? (json_int_t)(ref - m->lsn) : 0));
		else if (!leads)
			json_object_set_new(mj, "lag", json_string("unknown"));
		if (json_array_append_new(members, mj) != 0)
			goto cleanup;
	}

	/* The switchover key as its writer (ops.c) wrote it. */
	kv = find_kv(&r, s->keys.switchover);
	if (kv) {
		sw = parse_value(kv);
		if (!json_is_object(sw)) {
			json_decref(sw);
			sw = json_pack("{s:s}", "unreadable", kv->value);
		}
	}
	root = json_pack("{s:s, s:o, s:b, s:o, s:o}", "scope", s->scope, "leader",
	                 view->has_leader ? json_string(view->leader) : json_null(), "paused", (int)paused, "members",
	                 members, "switchover", sw ? sw : json_null());
	members = NULL; /* stolen by json_pack, even on failure */
	sw = NULL;
	if (root) {
		if (paused)
			json_object_set_new(root, "pause", json_true()); /* Patroni's name */
		if (view->has_leader && view->leader_lsn)
			json_object_set_new(root, "leader_lsn", json_integer((json_int_t)view->leader_lsn));
		if (warn[0])
			json_object_set_new(root, "warnings", json_string(warn));
	}
cleanup:
	json_decref(members);
	json_decref(sw);
	free(view);
	etcd_range_result_free(&r);
	if (root)
		api_reply_json(out, MHD_HTTP_OK, root);
	else
		api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

/* One entry of the history key (an object: timeline, lsn, reason, time,
 * leader) as Patroni writes its history lines: [timeline, lsn, reason,
 * timestamp, new_leader], where timeline is the one that ENDED (baton
 * records the new one) at lsn (the position baton saw at the promotion),
 * and the timestamp is ISO 8601 with a "+00:00" zone. NULL for an entry
 * Patroni has no line for (the bootstrap, timeline 1) or that is not an
 * object with a timeline. */
static json_t *history_line(const json_t *entry)
{
	json_t *own = dcs_history_entry(entry), *line; /* Patroni's own lines too (a moved cluster) */
	const json_t *e = own;
	const json_t *tl = json_object_get(e, "timeline");
	const char *reason = json_string_value(json_object_get(e, "reason"));
	const char *when = json_string_value(json_object_get(e, "time"));
	const char *leader = json_string_value(json_object_get(e, "leader"));
	const json_t *lsn = json_object_get(e, "lsn");
	char stamp[64];
	size_t n;

	if (!json_is_object(e) || !json_is_integer(tl) || json_integer_value(tl) < 2) {
		json_decref(own);
		return NULL;
	}
	snprintf(stamp, sizeof(stamp), "%s", when ? when : "");
	n = strlen(stamp);
	if (n > 0 && stamp[n - 1] == 'Z' && n + 6 < sizeof(stamp))
		snprintf(stamp + n - 1, sizeof(stamp) - (n - 1), "+00:00");
	line = json_pack("[I, I, s, s, s]", json_integer_value(tl) - 1,
	                 json_is_integer(lsn) ? json_integer_value(lsn) : (json_int_t)0, reason ? reason : "", stamp,
	                 leader ? leader : "");
	json_decref(own);
	return line;
}

/* GET /history: Patroni's shape (history_line); batonctl history reads
 * the key itself, with baton's fields. */
void api_h_history(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct etcd_range_result r;
	struct etcd_error e;
	json_t *arr, *lines, *entry, *line;
	size_t i;

	(void)rq;
	(void)body;
	if (!need_etcd(s, out))
		return;
	memset(&r, 0, sizeof(r));
	memset(&e, 0, sizeof(e));
	if (etcd_get(s->etcd, s->keys.history, &r, &e) != ETCD_OK) {
		reply_etcd_error(out, "the history", &e);
		return;
	}
	arr = r.n_kvs ? parse_value(&r.kvs[0]) : json_array();
	etcd_range_result_free(&r);
	if (!json_is_array(arr)) {
		json_decref(arr);
		api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "the history key is not a JSON array");
		return;
	}
	lines = json_array();
	if (!lines)
		goto oom;
	json_array_foreach(arr, i, entry) {
		line = history_line(entry);
		if (line && json_array_append_new(lines, line) != 0)
			goto oom;
	}
	json_decref(arr);
	api_reply_json(out, MHD_HTTP_OK, lines);
	return;
oom:
	json_decref(lines);
	json_decref(arr);
	api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

/* The config key's JSON object, or the defaults when absent; *rev is the
 * key's mod_revision (0 = absent). A key that is not a JSON object is an
 * error, or an empty object when for_patch (RFC 7386: a patch replaces a
 * target that is not an object). NULL with the reply filled on failure. */
static json_t *read_config(struct api_server *s, int64_t *rev, bool for_patch, struct api_reply *out)
{
	struct etcd_range_result r;
	struct etcd_error e;
	json_t *cfg = NULL;

	memset(&r, 0, sizeof(r));
	memset(&e, 0, sizeof(e));
	if (etcd_get(s->etcd, s->keys.config, &r, &e) != ETCD_OK) {
		reply_etcd_error(out, "the config", &e);
		return NULL;
	}
	*rev = r.n_kvs ? r.kvs[0].mod_revision : 0;
	if (r.n_kvs) {
		cfg = parse_value(&r.kvs[0]);
		if (!json_is_object(cfg)) {
			json_decref(cfg);
			cfg = for_patch ? json_object() : NULL;
			if (!cfg)
				api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
				                "the config key is not a JSON object");
		}
	} else {
		struct dcs_settings d;
		char *text = NULL;

		if (dcs_config_from_json("{}", &d, NULL, 0)) {
			text = dcs_config_json(&d);
			dcs_settings_free(&d);
		}
		cfg = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
		if (!cfg)
			api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	etcd_range_result_free(&r);
	return cfg;
}

void api_h_config_get(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	int64_t rev = 0;
	json_t *cfg;

	(void)rq;
	(void)body;
	if (!need_etcd(s, out))
		return;
	cfg = read_config(s, &rev, false, out);
	if (cfg)
		api_reply_json(out, MHD_HTTP_OK, cfg);
}

/* The code for an ops refusal: 503 when etcd could not be read or written,
 * 400 for a document ops found invalid, 409 for a request the cluster's
 * state refuses (unknown candidate, already the leader, changed
 * concurrently...). ops.c words these three kinds as matched here. */
static unsigned int ops_error_code(const char *err)
{
	if (strncmp(err, "cannot read ", 12) == 0 || strncmp(err, "cannot write ", 13) == 0)
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	if (strncmp(err, "invalid configuration", 21) == 0)
		return MHD_HTTP_BAD_REQUEST;
	return MHD_HTTP_CONFLICT;
}

/* RFC 7386 JSON merge patch of patch into target (an object, modified in
 * place): null removes a member, an object merges recursively, anything
 * else replaces. false on ENOMEM. */
static bool merge_patch(json_t *target, const json_t *patch)
{
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)patch, key, value) {
		if (json_is_null(value)) {
			json_object_del(target, key);
		} else if (json_is_object(value)) {
			json_t *sub = json_object_get(target, key);

			if (!json_is_object(sub)) {
				sub = json_object();
				if (!sub || json_object_set_new(target, key, sub) != 0)
					return false;
			}
			if (!merge_patch(sub, value))
				return false;
		} else if (json_object_set_new(target, key, json_deep_copy(value)) != 0) {
			return false;
		}
	}
	return true;
}

void api_h_config_patch(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	int64_t rev = 0;
	json_t *cfg = NULL;
	char *text = NULL;
	char err[512] = "";

	(void)rq;
	if (!need_etcd(s, out))
		return;
	if (!json_is_object(body)) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST,
		                "the body must be a JSON object (a merge patch of the config)");
		return;
	}
	cfg = read_config(s, &rev, true, out);
	if (!cfg)
		return;
	if (!merge_patch(cfg, body) || !(text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS))) {
		api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto cleanup;
	}
	/* Written only if the key is still as read (ops validates it). */
	if (!ops_replace_config_at(s->etcd, &s->keys, text, rev, err, sizeof(err))) {
		api_reply_error(out, ops_error_code(err), "%s", err);
		goto cleanup;
	}
	log_info("REST API: config changed to %s", text);
	api_reply_json(out, MHD_HTTP_OK, cfg);
	cfg = NULL;
cleanup:
	json_decref(cfg);
	free(text);
}

/* PUT /config (Patroni's): the body replaces the whole dynamic config,
 * checked as PATCH's result is, and written only if the key is still as
 * read. */
void api_h_config_put(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	int64_t rev = 0;
	json_t *old;
	char *text = NULL;
	char err[512] = "";

	(void)rq;
	if (!need_etcd(s, out))
		return;
	if (!json_is_object(body)) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object (the whole config)");
		return;
	}
	old = read_config(s, &rev, true, out);
	if (!old)
		return;
	json_decref(old);
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		api_reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	if (!ops_replace_config_at(s->etcd, &s->keys, text, rev, err, sizeof(err))) {
		api_reply_error(out, ops_error_code(err), "%s", err);
		free(text);
		return;
	}
	log_info("REST API: config replaced by %s", text);
	free(text);
	api_reply_json(out, MHD_HTTP_OK, json_incref(body));
}

/* A member name field: absent, null or "" -> *out NULL; a string of at
 * most HA_NAME_MAX - 1 bytes -> copied into buf. */
static bool name_field(const json_t *body, const char *key, char *buf, size_t len, const char **out, char *err,
                       size_t errlen)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!jsonf_string(body, key, JSONF_REQUIRED, buf, len, err, errlen))
		return false;
	if (buf[0])
		*out = buf;
	return true;
}

/* A time in a request body (key names it): absent, null or "" leaves
 * *when 0; unix seconds or ISO 8601 with a zone set it. false (answered
 * 400) for anything else. */
static bool parse_when(const json_t *at, const char *key, int64_t *when, struct api_reply *out)
{
	if (!at || json_is_null(at))
		return true;
	if (json_is_integer(at) && json_integer_value(at) > 0) {
		*when = json_integer_value(at);
		return true;
	}
	if (json_is_string(at) && (json_string_length(at) == 0 || parse_time(json_string_value(at), when)))
		return true;
	api_reply_error(out, MHD_HTTP_BAD_REQUEST,
	                "%s: expected an ISO 8601 time with a zone (2025-01-31T12:00:00Z) or unix seconds", key);
	return false;
}

static void switchover(struct api_server *s, json_t *body, bool failover, struct api_reply *out)
{
	struct ops_switchover_req req;
	char leader[HA_NAME_MAX], cand[HA_NAME_MAX], err[512] = "";
	const json_t *at;
	int64_t when = 0, request = 0;
	json_t *root;

	if (!need_etcd(s, out) || !body_optional_object(body, out))
		return;
	memset(&req, 0, sizeof(req));
	req.failover = failover;
	if (body && (!name_field(body, "leader", leader, sizeof(leader), &req.leader, err, sizeof(err)) ||
	             !name_field(body, "candidate", cand, sizeof(cand), &req.candidate, err, sizeof(err)) ||
	             !jsonf_bool(body, "force", JSONF_OPTIONAL, &req.force, err, sizeof(err)))) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	at = body ? json_object_get(body, "scheduled_at") : NULL;
	if (!parse_when(at, "scheduled_at", &when, out))
		return;
	if (failover && when > 0) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST,
		                "scheduled_at: a failover happens now, it cannot be scheduled");
		return;
	}
	if (failover && !req.candidate) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "candidate: a failover needs one");
		return;
	}
	if (when > 0 && (time_t)when != when) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "scheduled_at: out of range");
		return;
	}
	req.scheduled_at = (time_t)when;
	if (!ops_switchover(s->etcd, &s->keys, &req, &request, err, sizeof(err))) {
		unsigned int code = ops_error_code(err);

		/* Patroni answers 412 when the cluster's state refuses a
		 * switchover or failover (unknown candidate, not the leader...). */
		api_reply_error(out, code == MHD_HTTP_CONFLICT ? MHD_HTTP_PRECONDITION_FAILED : code, "%s", err);
		return;
	}
	log_info("REST API: %s requested (leader %s, candidate %s, at %" PRId64 ")",
	         failover ? "failover" : "switchover", req.leader ? req.leader : "any",
	         req.candidate ? req.candidate : "best", when);
	root = json_pack("{s:s, s:s?, s:s?}", "accepted", failover ? "failover" : "switchover", "leader", req.leader,
	                 "candidate", req.candidate);
	if (root && when > 0)
		json_object_set_new(root, "scheduled_at", json_integer((json_int_t)when));
	/* The leader's member key quotes it if it refuses the request
	 * ("switchover_refused"). */
	if (root && request > 0)
		json_object_set_new(root, "request", json_integer((json_int_t)request));
	api_reply_json(out, MHD_HTTP_ACCEPTED, root);
}

void api_h_switchover(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	switchover(s, body, false, out);
}

/* DELETE /switchover (Patroni's): drops a pending (scheduled) switchover;
 * 404 when none is pending. */
void api_h_switchover_cancel(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	char err[512] = "";

	(void)rq;
	(void)body;
	if (!need_etcd(s, out))
		return;
	if (!ops_switchover_cancel(s->etcd, &s->keys, err, sizeof(err))) {
		api_reply_error(out, strstr(err, "no switchover is pending") ? MHD_HTTP_NOT_FOUND : ops_error_code(err),
		                "%s", err);
		return;
	}
	log_info("REST API: pending switchover cancelled");
	api_reply_json(out, MHD_HTTP_OK, json_pack("{s:s}", "message", "scheduled switchover deleted"));
}

void api_h_failover(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	if (!body) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object with a candidate");
		return;
	}
	switchover(s, body, true, out);
}

/* ---- requests for the loop ------------------------------------------------- */

/* "15", "15.4", "9.6.24" or a server_version_num (150004) -> server_version_num. */
static bool parse_pg_version(const char *v, int *out)
{
	int part[3] = { 0, 0, 0 }, n = 0;
	const char *p = v;

	if (!v || !*v)
		return false;
	if (strspn(v, "0123456789") == strlen(v) && strlen(v) >= 5 && strlen(v) <= 7) {
		*out = atoi(v);
		return true;
	}
	while (n < 3) {
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p)) {
			part[n] = part[n] * 10 + (*p - '0');
			if (part[n] > 999)
				return false;
			p++;
		}
		n++;
		if (*p != '.')
			break;
		p++;
	}
	if (*p)
		return false;
	if (part[0] >= 10 && n <= 2)
		*out = part[0] * 10000 + part[1];
	else if (part[0] < 10 && part[0] > 0)
		*out = part[0] * 10000 + part[1] * 100 + part[2];
	else
		return false;
	return true;
}

/* Does the node's role (snapshot) match "primary" / "replica"? */
static bool role_matches(const struct api_status *st, const char *role)
{
	bool primary = st->is_leader || strcmp(st->role, "primary") == 0;

	if (strcmp(role, "primary") == 0)
		return primary;
	return !primary && strcmp(st->role, "replica") == 0;
}

/*
 * POST /restart. The role is judged now, from the snapshot (412 when it
 * differs, like Patroni); restart_pending and postgres_version are judged
 * by the loop when it takes the request, after its next read of the
 * config key, so a restart asked for right after an edit of the config
 * sees what that edit made pending. With a loop attached the answer waits
 * (up to "wait" seconds) for the loop's report.
 */
void api_h_restart(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	bool pending = false, have_st;
	char err[256] = "", why[300], role[16] = "", version[32] = "", msg[512];
	const json_t *at, *w;
	int64_t when = 0;
	int min_version = 0;
	double wait = API_RESTART_WAIT_S, deadline;
	uint64_t id;
	enum api_restart_outcome outcome;
	bool done;

	(void)rq;
	if (body && (!json_is_object(body) ||
	             !jsonf_bool(body, "restart_pending", JSONF_OPTIONAL, &pending, err, sizeof(err)) ||
	             !jsonf_string(body, "role", JSONF_OPTIONAL, role, sizeof(role), err, sizeof(err)))) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "%s", err[0] ? err : "the body must be a JSON object");
		return;
	}
	if (strcmp(role, "master") == 0)
		snprintf(role, sizeof(role), "primary");
	if (strcmp(role, "any") == 0)
		role[0] = '\0';
	if (role[0] && strcmp(role, "primary") != 0 && strcmp(role, "replica") != 0) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "role: expected primary, replica or any, not '%s'", role);
		return;
	}
	w = body ? json_object_get(body, "postgres_version") : NULL;
	if (w && !json_is_null(w)) {
		if (json_is_integer(w))
			snprintf(version, sizeof(version), "%" JSON_INTEGER_FORMAT, json_integer_value(w));
		else if (json_is_string(w))
			snprintf(version, sizeof(version), "%s", json_string_value(w));
		if (!parse_pg_version(version, &min_version)) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST,
			                "postgres_version: expected a version such as \"15.4\" or 150004");
			return;
		}
	}
	at = body ? json_object_get(body, "schedule") : NULL;
	if (!parse_when(at, "schedule", &when, out))
		return;
	if (at && !json_is_null(at)) {
		if (when > 0 && (double)when <= (double)clk_wall_s()) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: %s is not in the future",
			                json_is_string(at) ? json_string_value(at) : "the time given");
			return;
		}
		/* A restart planned further ahead than a switchover may be is a
		 * typo or a time bomb (issue 10, sane bounds). */
		if (when > 0 && when < (int64_t)INT32_MAX * 64 &&
		    !ops_check_schedule((time_t)when, clk_wall_s(), "restart", why, sizeof(why))) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: %s", why);
			return;
		}
		if (when >= (int64_t)INT32_MAX * 64) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: out of range");
			return;
		}
	}
	w = body ? json_object_get(body, "wait") : NULL;
	if (w && !json_is_null(w)) {
		if (!json_is_number(w) || json_number_value(w) < 0 || json_number_value(w) > API_RESTART_WAIT_MAX_S) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "wait: expected a number of seconds from 0 to %.0f",
			                API_RESTART_WAIT_MAX_S);
			return;
		}
		wait = json_number_value(w);
	}
	have_st = api_snapshot(s, &st, NULL, NULL);
	if (role[0] && !have_st) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	if (role[0] && !role_matches(&st, role)) {
		api_reply_error(out, MHD_HTTP_PRECONDITION_FAILED,
		                "restart not done: %s is not the %s (its role is %s)", st.name, role,
		                st.is_leader ? "primary" : st.role);
		return;
	}

	pthread_mutex_lock(&s->mu);
	if (when > 0) {
		double kept = s->requests.restart_at > 0 ? s->requests.restart_at : s->status.restart_scheduled_at;

		if (kept > 0 && !s->requests.restart_cancel) {
			char t[32];

			pthread_mutex_unlock(&s->mu);
			dcs_format_utc(kept, t, sizeof(t));
			api_reply_error(
			        out, MHD_HTTP_CONFLICT,
			        "a restart is already scheduled at %s; DELETE /restart (batonctl restart --cancel) first",
			        t);
			return;
		}
		s->requests.restart_at = (double)when;
		s->requests.restart_pending_only = pending;
		s->requests.restart_min_version = min_version;
		snprintf(s->requests.restart_role, sizeof(s->requests.restart_role), "%s", role);
		pthread_mutex_unlock(&s->mu);
		{
			char t[32];

			dcs_format_utc((double)when, t, sizeof(t));
			log_info("REST API: restart scheduled at %s%s", t, pending ? " (if a restart is pending)" : "");
			api_reply_json(out, MHD_HTTP_ACCEPTED,
			               json_pack("{s:s, s:s, s:b}", "accepted", "restart", "scheduled_at", t,
			                         "restart_pending", (int)pending));
		}
		return;
	}
	/* A plain restart wins over a conditional one queued earlier. */
	if (!s->requests.restart) {
		s->requests.restart_pending_only = pending;
		s->requests.restart_min_version = min_version;
	} else {
		s->requests.restart_pending_only = s->requests.restart_pending_only && pending;
		if (!min_version || !s->requests.restart_min_version)
			s->requests.restart_min_version = 0;
		else if (min_version > s->requests.restart_min_version)
			s->requests.restart_min_version = min_version;
	}
	s->requests.restart = true;
	id = ++s->restart_seq;
	s->requests.restart_id = id;
	s->requests.restart_arrived = clk_mono();
	if (!s->restart_attached || wait <= 0) {
		pthread_mutex_unlock(&s->mu);
		api_reply_json(out, MHD_HTTP_ACCEPTED,
		               json_pack("{s:s, s:b, s:s}", "accepted", "restart", "restart_pending", (int)pending,
		                         "message", "restart requested"));
		return;
	}
	deadline = clk_mono() + wait;
	while (s->restart_done_id < id && !s->restart_stopping) {
		struct timespec ts;
		double left = deadline - clk_mono();

		if (left <= 0)
			break;
		clk_mono_after(left, &ts);
		(void)pthread_cond_timedwait(&s->restart_cv, &s->mu, &ts);
	}
	done = s->restart_done_id >= id;
	outcome = s->restart_done_outcome;
	snprintf(msg, sizeof(msg), "%s", s->restart_done_msg);
	pthread_mutex_unlock(&s->mu);
	if (!done)
		api_reply_json(out, MHD_HTTP_ACCEPTED,
		               json_pack("{s:s, s:b, s:s}", "accepted", "restart", "restart_pending", (int)pending,
		                         "message", "restart in progress"));
	else if (outcome == API_RESTART_FAILED)
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", msg);
	else
		api_reply_json(out, MHD_HTTP_OK,
		               json_pack("{s:b, s:s}", "restarted", (int)(outcome == API_RESTART_DONE), "message",
		                         msg));
}

/* DELETE /restart: drops the scheduled restart (404 when there is none). */
void api_h_restart_cancel(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	double at;
	char t[32];

	(void)rq;
	(void)body;
	pthread_mutex_lock(&s->mu);
	at = s->requests.restart_at > 0 ? s->requests.restart_at : s->status.restart_scheduled_at;
	if (at <= 0 || (s->requests.restart_at <= 0 && s->requests.restart_cancel)) {
		pthread_mutex_unlock(&s->mu);
		api_reply_error(out, MHD_HTTP_NOT_FOUND, "no restart is scheduled on %s",
		                s->status.name[0] ? s->status.name : "this node");
		return;
	}
	/* One the loop keeps is dropped by it; one not taken yet, here. */
	if (s->status.restart_scheduled_at > 0)
		s->requests.restart_cancel = true;
	s->requests.restart_at = 0;
	pthread_mutex_unlock(&s->mu);
	dcs_format_utc(at, t, sizeof(t));
	log_info("REST API: scheduled restart at %s cancelled", t);
	api_reply_json(out, MHD_HTTP_OK, json_pack("{s:s, s:s}", "cancelled", "restart", "scheduled_at", t));
}

void api_restart_attach(struct api_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->restart_attached = true;
	pthread_mutex_unlock(&s->mu);
}

void api_restart_report(struct api_server *s, uint64_t id, enum api_restart_outcome outcome, const char *message)
{
	if (!s || id == 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (id > s->restart_done_id) {
		s->restart_done_id = id;
		s->restart_done_outcome = outcome;
		snprintf(s->restart_done_msg, sizeof(s->restart_done_msg), "%s", message ? message : "");
	}
	pthread_cond_broadcast(&s->restart_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Sets one of s->requests' flags for the loop and replies 202
 * {"accepted": what}. */
static void queue_request(struct api_server *s, bool *flag, const char *what, struct api_reply *out)
{
	pthread_mutex_lock(&s->mu);
	*flag = true;
	pthread_mutex_unlock(&s->mu);
	api_reply_json(out, MHD_HTTP_ACCEPTED, json_pack("{s:s}", "accepted", what));
}

void api_h_reload(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	if (body_optional_object(body, out))
		queue_request(s, &s->requests.reload, "reload", out);
}

void api_h_reinit(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;

	(void)rq;
	if (!body_optional_object(body, out))
		return;
	if (!api_snapshot(s, &st, NULL, NULL)) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	/* Wiping the leader's data directory would only lose data. */
	if (st.is_leader || strcmp(st.role, "primary") == 0) {
		api_reply_error(out, MHD_HTTP_CONFLICT, "%s is the leader: only a replica can be reinitialized",
		                st.name);
		return;
	}
	queue_request(s, &s->requests.reinit, "reinit", out);
}

double api_failsafe_close(struct api_server *s)
{
	double pending;

	pthread_mutex_lock(&s->mu);
	s->failsafe_closed = true;
	pending = s->requests.failsafe_seen_at;
	pthread_mutex_unlock(&s->mu);
	return pending;
}

void api_failsafe_reopen(struct api_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->failsafe_closed = false;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Does etcd answer this agent now? The loop's last read may be a loop old,
 * or served by the watch's cache while etcd is already gone; the leader asks
 * only once it cannot reach etcd, and gives its request 0.5 s. A probe that
 * ended less than 0.3 s ago answers for this one too (a request that waited
 * for it); no answer from the lock within 0.3 s: as if etcd answered, so
 * that the leader asks again.
 */
static bool etcd_answers_now(struct api_server *s)
{
	struct timespec until;
	struct etcd_range_result r;
	struct etcd_error e;
	bool ok;

	if (!s->probe_etcd)
		return true;
	clk_wall_after(0.3, &until);
	if (pthread_mutex_timedlock(&s->probe_mu, &until) != 0)
		return true;
	if (s->probe_at > 0 && clk_mono() - s->probe_at < 0.3) {
		ok = s->probe_ok;
	} else {
		memset(&r, 0, sizeof(r));
		memset(&e, 0, sizeof(e));
		ok = etcd_get(s->probe_etcd, s->keys.leader, &r, &e) == ETCD_OK;
		etcd_range_result_free(&r);
		s->probe_at = clk_mono();
		s->probe_ok = ok;
	}
	pthread_mutex_unlock(&s->probe_mu);
	return ok;
}

/*
 * failsafe_mode: the leader, unable to reach etcd, asks every member to
 * confirm it. We confirm only if we cannot reach etcd either (else the
 * leader key in etcd is the truth and the leader must go by it) and the
 * sender is the leader we last knew. Confirming is a promise the loop keeps:
 * no leader key taken by us within a ttl of it (api_failsafe_close).
 */
void api_h_failsafe(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	const char *leader;
	bool closed;

	(void)rq;
	if (!body || !json_is_object(body) || !json_is_string(json_object_get(body, "leader"))) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be {\"leader\": NAME}");
		return;
	}
	leader = json_string_value(json_object_get(body, "leader"));
	if (!api_snapshot(s, &st, NULL, NULL)) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	if (st.is_leader || strcmp(st.leader, leader) != 0) {
		api_reply_error(out, MHD_HTTP_CONFLICT, "%s is not the leader %s last knew ('%s')", leader, st.name,
		                st.leader);
		return;
	}
	if (st.etcd_ok && etcd_answers_now(s)) {
		api_reply_error(out, MHD_HTTP_CONFLICT, "%s reaches etcd: the leader key decides, not failsafe",
		                st.name);
		return;
	}
	pthread_mutex_lock(&s->mu);
	closed = s->failsafe_closed;
	if (!closed)
		s->requests.failsafe_seen_at = clk_mono();
	pthread_mutex_unlock(&s->mu);
	if (closed) {
		api_reply_error(out, MHD_HTTP_CONFLICT, "%s is taking the leader key in etcd", st.name);
		return;
	}
	api_reply_json(out, MHD_HTTP_OK, json_pack("{s:s, s:s}", "accepted", "failsafe", "member", st.name));
}
