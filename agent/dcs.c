/*
 * dcs.c - baton's key layout in etcd and the JSON of each key.
 *
 * Everything the agents tell each other through etcd passes through here:
 * the member records, the dynamic config, the leader's status and the
 * history of leader changes. Writers build JSON with jansson; readers never
 * trust what they read: every field's type and range is checked, and a
 * record that fails is reported (with the reason) and left out rather than
 * half-used. The one place the cluster view is built from a prefix read is
 * dcs_parse_cluster(); it never fails as a whole, because one bad key must
 * not blind the loop to the others.
 *
 * One I/O function lives here, dcs_read_cluster(): the bounded read that
 * feeds dcs_parse_cluster, kept beside the layout it must know. Everything
 * else does no I/O: callers do the etcd reads and writes.
 */
#include "agent/dcs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/jsonf.h"
#include "pg/pg_conf.h"

#define DCS_HISTORY_MAX 100

/* The dynamic settings' ranges (config.h; the timing rule is config_check_timing's). */
#define DCS_TTL_MIN CONFIG_TTL_MIN
#define DCS_TTL_MAX CONFIG_TTL_MAX
#define DCS_WAIT_MAX CONFIG_WAIT_MAX

#define DCS_DEFAULT_TTL 5.0
#define DCS_DEFAULT_LOOP_WAIT 1.0
#define DCS_DEFAULT_RETRY_TIMEOUT 2.0
#define DCS_DEFAULT_MAX_LAG 1048576

/* Appends one line to the warning buffer; a line that does not fit is cut
 * (the buffer always stays NUL-terminated). */
static void __attribute__((format(printf, 3, 4))) warn_add(char *warn, size_t warnlen, const char *fmt, ...)
{
	size_t used;
	va_list ap;
	int n;

	if (!warn || warnlen == 0)
		return;
	used = strnlen(warn, warnlen);
	if (used >= warnlen - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(warn + used, warnlen - used, fmt, ap);
	va_end(ap);
	if (n < 0) {
		warn[used] = '\0';
		return;
	}
	used = strnlen(warn, warnlen);
	if (used < warnlen - 1) {
		warn[used] = '\n';
		warn[used + 1] = '\0';
	}
}

/* Concatenates a and b into dst; false if it does not fit. */
static bool join2(char *dst, size_t len, const char *a, const char *b)
{
	int n = snprintf(dst, len, "%s%s", a, b);

	return n >= 0 && (size_t)n < len;
}

bool dcs_keys_init(struct dcs_keys *k, const char *namespace_, const char *scope)
{
	size_t nslen;
	int n;

	memset(k, 0, sizeof(*k));
	if (!namespace_ || !*namespace_)
		namespace_ = "/baton";
	if (!scope || !*scope || strchr(scope, '/'))
		return false;
	/* Tolerate a trailing '/' on the namespace: "/baton/" and "/baton" mean
	 * the same prefix. */
	nslen = strlen(namespace_);
	while (nslen > 1 && namespace_[nslen - 1] == '/')
		nslen--;
	if (nslen > 200)
		return false;
	n = snprintf(k->prefix, sizeof(k->prefix), "%s%.*s/%s/", namespace_[0] == '/' ? "" : "/",
		     (int)nslen, namespace_, scope);
	if (n < 0 || (size_t)n >= sizeof(k->prefix))
		return false;
	return join2(k->leader, sizeof(k->leader), k->prefix, "leader") &&
	       join2(k->initialize, sizeof(k->initialize), k->prefix, "initialize") &&
	       join2(k->config, sizeof(k->config), k->prefix, "config") &&
	       join2(k->status, sizeof(k->status), k->prefix, "status") &&
	       join2(k->history, sizeof(k->history), k->prefix, "history") &&
	       join2(k->sync, sizeof(k->sync), k->prefix, "sync") &&
	       join2(k->members, sizeof(k->members), k->prefix, "members/") &&
	       join2(k->switchover, sizeof(k->switchover), k->prefix, "switchover");
}

bool dcs_member_key(const struct dcs_keys *k, const char *name, char *buf, size_t len)
{
	if (!name || !*name || strchr(name, '/'))
		return false;
	return join2(buf, len, k->members, name);
}

/* ---- JSON helpers -------------------------------------------------------- */

/* Parses text that must be a JSON object; NULL + reason otherwise. */
static json_t *load_object(const char *text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (!text) {
		jsonf_set_err(err, errlen, "no value");
		return NULL;
	}
	root = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!root) {
		jsonf_set_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			      jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		jsonf_set_err(err, errlen, "not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* Serializes and releases root; NULL when either step fails. */
static char *dump_and_free(json_t *root)
{
	char *s = NULL;

	if (root)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/* A known member role. */
const char *dcs_role_at(size_t i)
{
	static const char *const roles[] = { "primary", "replica", "uninitialized", "stopped" };

	return i < sizeof(roles) / sizeof(roles[0]) ? roles[i] : NULL;
}

bool dcs_role_known(const char *role)
{
	for (size_t i = 0; dcs_role_at(i); i++)
		if (strcmp(role, dcs_role_at(i)) == 0)
			return true;
	return false;
}

/* ---- members/<name> ------------------------------------------------------ */

char *dcs_member_json(const struct ha_member *m)
{
	char conn_url[200];
	const char *fmt;
	json_t *root;
	int n;

	/* An IPv6 literal needs brackets inside a URL. */
	fmt = strchr(m->host, ':') && m->host[0] != '[' ? "postgres://[%s]:%d/postgres" : "postgres://%s:%d/postgres";
	n = snprintf(conn_url, sizeof(conn_url), fmt, m->host, m->port);
	if (n < 0 || (size_t)n >= sizeof(conn_url))
		return NULL;
	root = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:b, s:{s:b, s:b, s:i}, s:s}", "name",
			 m->name, "role", m->role, "state", m->state, "host", m->host, "port", m->port, "conn_url",
			 conn_url, "api_url", m->api_url, "timeline", (json_int_t)m->timeline, "lsn",
			 (json_int_t)m->lsn, "pending_restart", (int)m->pending_restart, "tags", "nofailover",
			 (int)m->nofailover, "nosync", (int)m->nosync, "failover_priority", m->failover_priority,
			 "version", BATON_VERSION);
	return dump_and_free(root);
}

bool dcs_member_from_json(const char *name, const char *json, struct ha_member *out, char *err, size_t errlen)
{
	char scratch[HA_NAME_MAX];
	json_int_t port = 0, timeline = 0, lsn = 0;
	const json_t *tags;
	json_t *root;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!name || !*name) {
		jsonf_set_err(err, errlen, "empty member name");
		return false;
	}
	if (strlen(name) >= sizeof(out->name)) {
		jsonf_set_err(err, errlen, "member name longer than %zu characters", sizeof(out->name) - 1);
		return false;
	}
	root = load_object(json, err, errlen);
	if (!root)
		return false;

	/* The key names the member; a record claiming another name is not
	 * trusted (it would let one member speak for another). */
	scratch[0] = '\0';
	if (!jsonf_string(root, "name", JSONF_OPTIONAL, scratch, sizeof(scratch), err, errlen))
		goto cleanup;
	if (scratch[0] && strcmp(scratch, name) != 0) {
		jsonf_set_err(err, errlen, "name: \"%s\" does not match the key's \"%s\"", scratch, name);
		goto cleanup;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);

	if (!jsonf_string(root, "role", JSONF_REQUIRED, out->role, sizeof(out->role), err, errlen))
		goto cleanup;
	if (!dcs_role_known(out->role)) {
		jsonf_set_err(err, errlen, "role: unknown role \"%s\"", out->role);
		goto cleanup;
	}
	if (!jsonf_string(root, "state", JSONF_REQUIRED, out->state, sizeof(out->state), err, errlen) ||
	    !jsonf_string(root, "host", JSONF_REQUIRED, out->host, sizeof(out->host), err, errlen) ||
	    !jsonf_int(root, "port", JSONF_REQUIRED, 1, 65535, &port, err, errlen) ||
	    !jsonf_string(root, "api_url", JSONF_REQUIRED, out->api_url, sizeof(out->api_url), err, errlen) ||
	    !jsonf_int(root, "timeline", JSONF_REQUIRED, 0, UINT32_MAX, &timeline, err, errlen) ||
	    !jsonf_int(root, "lsn", JSONF_REQUIRED, 0, INT64_MAX, &lsn, err, errlen) ||
	    !jsonf_bool(root, "pending_restart", JSONF_OPTIONAL, &out->pending_restart, err, errlen))
		goto cleanup;

	/* Known but unused here: they must still be strings when present. */
	{
		char buf[256];

		if (!jsonf_string(root, "conn_url", JSONF_OPTIONAL, buf, sizeof(buf), err, errlen) ||
		    !jsonf_string(root, "version", JSONF_OPTIONAL, buf, sizeof(buf), err, errlen))
			goto cleanup;
	}

	tags = json_object_get(root, "tags");
	if (tags) {
		if (!json_is_object(tags)) {
			jsonf_set_err(err, errlen, "tags: expected an object");
			goto cleanup;
		}
		json_int_t prio = 1;

		if (!jsonf_bool(tags, "nofailover", JSONF_OPTIONAL, &out->nofailover, err, errlen) ||
		    !jsonf_bool(tags, "nosync", JSONF_OPTIONAL, &out->nosync, err, errlen) ||
		    !jsonf_int(tags, "failover_priority", JSONF_OPTIONAL, 0, 1000000, &prio, err, errlen))
			goto cleanup;
		out->failover_priority = (int)prio;
	} else {
		out->failover_priority = 1;
	}
	out->port = (int)port;
	out->timeline = (uint32_t)timeline;
	out->lsn = (uint64_t)lsn;
	ok = true;
cleanup:
	json_decref(root);
	if (!ok) {
		char keep[HA_NAME_MAX];

		/* Leave only the name behind, so a caller that reports the
		 * failure still knows whose record it was. */
		snprintf(keep, sizeof(keep), "%s", name);
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", keep);
	}
	return ok;
}

/* ---- status ---------------------------------------------------------------- */

char *dcs_status_json(uint64_t lsn, uint32_t timeline)
{
	return dump_and_free(json_pack("{s:I, s:I}", "optime", (json_int_t)lsn, "timeline", (json_int_t)timeline));
}

bool dcs_status_from_json(const char *json, uint64_t *lsn, uint32_t *timeline)
{
	json_int_t l = 0, t = 0;
	json_t *root = load_object(json, NULL, 0);
	bool ok;

	if (!root)
		return false;
	ok = jsonf_int(root, "optime", JSONF_REQUIRED, 0, INT64_MAX, &l, NULL, 0) &&
	     jsonf_int(root, "timeline", JSONF_REQUIRED, 0, UINT32_MAX, &t, NULL, 0);
	json_decref(root);
	if (ok) {
		*lsn = (uint64_t)l;
		*timeline = (uint32_t)t;
	}
	return ok;
}

/* ---- sync ------------------------------------------------------------------ */

char *dcs_sync_json(const char *leader, char names[][HA_NAME_MAX], size_t n, int quorum)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_string(names[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	if (!arr)
		return NULL;
	if (quorum > 0)
		return dump_and_free(json_pack("{s:s, s:o, s:i}", "leader", leader, "sync_standby", arr, "quorum", quorum));
	return dump_and_free(json_pack("{s:s, s:o}", "leader", leader, "sync_standby", arr));
}

bool dcs_sync_from_json(const char *json, char *leader, size_t leader_len, char names[][HA_NAME_MAX], size_t max,
			size_t *n, int *quorum, char *err, size_t errlen)
{
	json_int_t q = 0;
	const json_t *arr;
	json_t *root;
	bool ok = false;

	*n = 0;
	*quorum = 0;
	leader[0] = '\0';
	root = load_object(json, err, errlen);
	if (!root)
		return false;
	if (!jsonf_string(root, "leader", JSONF_REQUIRED, leader, leader_len, err, errlen))
		goto cleanup;
	arr = json_object_get(root, "sync_standby");
	if (!json_is_array(arr)) {
		jsonf_set_err(err, errlen, "sync_standby: expected an array of member names");
		goto cleanup;
	}
	if (json_array_size(arr) > max) {
		jsonf_set_err(err, errlen, "sync_standby: more than %zu names", max);
		goto cleanup;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *v = json_array_get(arr, i);

		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= HA_NAME_MAX) {
			jsonf_set_err(err, errlen, "sync_standby[%zu]: expected a member name", i);
			goto cleanup;
		}
		snprintf(names[i], HA_NAME_MAX, "%s", json_string_value(v));
	}
	if (!jsonf_int(root, "quorum", JSONF_OPTIONAL, 0, HA_SYNC_MAX, &q, err, errlen))
		goto cleanup;
	*n = json_array_size(arr);
	*quorum = (int)q;
	ok = true;
cleanup:
	json_decref(root);
	if (!ok) {
		*n = 0;
		*quorum = 0;
		leader[0] = '\0';
	}
	return ok;
}

/* ---- config ---------------------------------------------------------------- */

/* A number as JSON: an integer when it is one (so `etcdctl get` shows 5, not
 * 5.0), a real otherwise. */
static json_t *json_num(double d)
{
	if (d == floor(d) && fabs(d) < 9e15)
		return json_integer((json_int_t)d);
	return json_real(d);
}

char *dcs_config_json(const struct dcs_settings *d)
{
	json_t *root = NULL, *params = NULL, *slots = NULL;

	params = json_object();
	if (!params)
		return NULL;
	for (size_t i = 0; i < d->n_pg_params; i++) {
		const struct config_param *p = &d->pg_params[i];

		if (!p->name || !p->value || json_object_set_new(params, p->name, json_string(p->value)) != 0) {
			json_decref(params);
			return NULL;
		}
	}
	slots = json_array();
	for (size_t i = 0; slots && i < d->n_slots; i++)
		if (!d->slots[i] || json_array_append_new(slots, json_string(d->slots[i])) != 0) {
			json_decref(slots);
			slots = NULL;
		}
	if (!slots) {
		json_decref(params);
		return NULL;
	}
	/* "o" steals params and slots, even when packing fails. */
	root = json_pack("{s:o, s:o, s:o, s:I, s:b, s:b, s:b, s:b, s:I, s:b, s:o, s:{s:o}}", "ttl", json_num(d->ttl),
			 "loop_wait", json_num(d->loop_wait), "retry_timeout", json_num(d->retry_timeout),
			 "maximum_lag_on_failover", (json_int_t)d->maximum_lag_on_failover, "pause", (int)d->pause,
			 "failsafe_mode", (int)d->failsafe_mode, "synchronous_mode", (int)d->synchronous_mode,
			 "synchronous_mode_strict", (int)d->synchronous_mode_strict, "synchronous_node_count",
			 (json_int_t)d->synchronous_node_count, "synchronous_quorum", (int)d->synchronous_quorum, "slots",
			 slots, "postgresql", "parameters", params);
	return dump_and_free(root);
}

/* "slots": an array of physical slot names (a-z, 0-9, _). */
static bool parse_slots(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(root, "slots");
	size_t n;

	if (!arr || json_is_null(arr))
		return true;
	if (!json_is_array(arr)) {
		jsonf_set_err(err, errlen, "slots: expected an array of slot names");
		return false;
	}
	n = json_array_size(arr);
	if (n > 64) {
		jsonf_set_err(err, errlen, "slots: more than 64");
		return false;
	}
	if (n == 0)
		return true;
	out->slots = calloc(n, sizeof(*out->slots));
	if (!out->slots) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		size_t len = strlen(s);

		if (len == 0 || len > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
			jsonf_set_err(err, errlen, "slots[%zu]: a slot name is 1 to 63 of a-z, 0-9 and _", i);
			return false;
		}
		out->slots[i] = strdup(s);
		if (!out->slots[i]) {
			jsonf_set_err(err, errlen, "out of memory");
			return false;
		}
		out->n_slots = i + 1;
	}
	return true;
}

/* A Postgres parameter name: letters, digits, '_' and '.' (custom GUCs). */
static bool param_name_ok(const char *s)
{
	if (!*s || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

/* The text a parameter's JSON value stands for (malloc'd), NULL + err if the
 * value is not a scalar or holds characters postgresql.conf cannot carry. */
static char *param_value(const char *name, const json_t *v, char *err, size_t errlen)
{
	char buf[64];
	const char *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		if (strlen(s) != json_string_length(v)) {
			jsonf_set_err(err, errlen, "postgresql.parameters.%s: contains a NUL character", name);
			return NULL;
		}
		for (const unsigned char *c = (const unsigned char *)s; *c; c++)
			if (*c == '\n' || *c == '\r') {
				jsonf_set_err(err, errlen, "postgresql.parameters.%s: contains a line break", name);
				return NULL;
			} else if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
				jsonf_set_err(err, errlen, "postgresql.parameters.%s: contains the control character 0x%02x",
					      name, *c);
				return NULL;
			}
		return strdup(s);
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("on");
	case JSON_FALSE:
		return strdup("off");
	default:
		jsonf_set_err(err, errlen, "postgresql.parameters.%s: expected a string, number or boolean", name);
		return NULL;
	}
}

/* Fills out->pg_params from the "postgresql" member of root (if any). */
static bool parse_pg_params(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *pg = json_object_get(root, "postgresql"), *params, *v;
	const char *name;

	if (!pg)
		return true;
	if (!json_is_object(pg)) {
		jsonf_set_err(err, errlen, "postgresql: expected an object");
		return false;
	}
	params = json_object_get(pg, "parameters");
	if (!params)
		return true;
	if (!json_is_object(params)) {
		jsonf_set_err(err, errlen, "postgresql.parameters: expected an object");
		return false;
	}
	if (json_object_size(params) == 0)
		return true;
	out->pg_params = calloc(json_object_size(params), sizeof(*out->pg_params));
	if (!out->pg_params) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	json_object_foreach((json_t *)params, name, v) {
		struct config_param *p = &out->pg_params[out->n_pg_params];

		if (!param_name_ok(name)) {
			jsonf_set_err(err, errlen, "postgresql.parameters: invalid parameter name \"%.64s\"", name);
			return false;
		}
		p->value = param_value(name, v, err, errlen);
		if (!p->value)
			return false;
		p->name = strdup(name);
		out->n_pg_params++; /* counted now so dcs_settings_free releases value */
		if (!p->name) {
			jsonf_set_err(err, errlen, "out of memory");
			return false;
		}
	}
	return true;
}

bool dcs_config_from_json(const char *json, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *v;
	json_t *root;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	out->ttl = DCS_DEFAULT_TTL;
	out->loop_wait = DCS_DEFAULT_LOOP_WAIT;
	out->retry_timeout = DCS_DEFAULT_RETRY_TIMEOUT;
	out->maximum_lag_on_failover = DCS_DEFAULT_MAX_LAG;
	out->synchronous_node_count = 1;

	root = load_object(json, err, errlen);
	if (!root)
		return false;
	if (!jsonf_number(root, "ttl", JSONF_OPTIONAL, DCS_TTL_MIN, DCS_TTL_MAX, false, &out->ttl, err, errlen) ||
	    !jsonf_number(root, "loop_wait", JSONF_OPTIONAL, CONFIG_LOOP_WAIT_MIN, DCS_WAIT_MAX, false,
			  &out->loop_wait, err, errlen) ||
	    !jsonf_number(root, "retry_timeout", JSONF_OPTIONAL, CONFIG_RETRY_TIMEOUT_MIN, DCS_WAIT_MAX, false,
			  &out->retry_timeout, err, errlen))
		goto cleanup;

	/* Bytes: an integer, or a real that is a whole number (some tools write
	 * every number as a double). */
	v = json_object_get(root, "maximum_lag_on_failover");
	if (v) {
		double d;

		if (!json_is_number(v)) {
			jsonf_set_err(err, errlen, "maximum_lag_on_failover: expected a number");
			goto cleanup;
		}
		if (json_is_integer(v)) {
			if (json_integer_value(v) < 0) {
				jsonf_set_err(err, errlen, "maximum_lag_on_failover: must be >= 0");
				goto cleanup;
			}
			out->maximum_lag_on_failover = json_integer_value(v);
		} else {
			d = json_real_value(v);
			if (!isfinite(d) || d < 0 || d != floor(d) || d >= 9.2e18) {
				jsonf_set_err(err, errlen, "maximum_lag_on_failover: expected a whole number of bytes >= 0");
				goto cleanup;
			}
			out->maximum_lag_on_failover = (int64_t)d;
		}
	}
	if (!jsonf_bool(root, "pause", JSONF_OPTIONAL, &out->pause, err, errlen) ||
	    !jsonf_bool(root, "failsafe_mode", JSONF_OPTIONAL, &out->failsafe_mode, err, errlen) ||
	    !jsonf_bool(root, "synchronous_mode", JSONF_OPTIONAL, &out->synchronous_mode, err, errlen) ||
	    !jsonf_bool(root, "synchronous_mode_strict", JSONF_OPTIONAL, &out->synchronous_mode_strict, err, errlen) ||
	    !jsonf_bool(root, "synchronous_quorum", JSONF_OPTIONAL, &out->synchronous_quorum, err, errlen))
		goto cleanup;
	{
		json_int_t n = 1;

		if (!jsonf_int(root, "synchronous_node_count", JSONF_OPTIONAL, 1, HA_SYNC_MAX, &n, err, errlen))
			goto cleanup;
		out->synchronous_node_count = n;
	}
	if (!parse_slots(root, out, err, errlen))
		goto cleanup;
	if (!config_check_timing(out, err, errlen))
		goto cleanup;
	if (!parse_pg_params(root, out, err, errlen))
		goto cleanup;
	ok = true;
cleanup:
	json_decref(root);
	if (!ok) {
		dcs_settings_free(out);
		memset(out, 0, sizeof(*out));
	}
	return ok;
}

void dcs_settings_free(struct dcs_settings *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n_pg_params; i++) {
		free(d->pg_params[i].name);
		free(d->pg_params[i].value);
	}
	free(d->pg_params);
	for (size_t i = 0; i < d->n_slots; i++)
		free(d->slots[i]);
	free(d->slots);
	memset(d, 0, sizeof(*d));
}

bool dcs_settings_copy(struct dcs_settings *dst, const struct dcs_settings *src)
{
	struct dcs_settings tmp;

	if (dst == NULL || src == NULL)
		return false;
	tmp = *src;
	tmp.pg_params = NULL;
	tmp.n_pg_params = 0;
	tmp.slots = NULL;
	tmp.n_slots = 0;
	if (src->n_slots > 0) {
		tmp.slots = calloc(src->n_slots, sizeof(*tmp.slots));
		if (tmp.slots == NULL)
			return false;
		for (size_t i = 0; i < src->n_slots; i++) {
			tmp.slots[i] = strdup(src->slots[i]);
			tmp.n_slots = i + 1;
			if (tmp.slots[i] == NULL) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	if (src->n_pg_params > 0) {
		tmp.pg_params = calloc(src->n_pg_params, sizeof(*tmp.pg_params));
		if (tmp.pg_params == NULL) {
			dcs_settings_free(&tmp); /* the slots copied so far */
			return false;
		}
		for (size_t i = 0; i < src->n_pg_params; i++) {
			tmp.pg_params[i].name = strdup(src->pg_params[i].name);
			tmp.pg_params[i].value = strdup(src->pg_params[i].value);
			tmp.n_pg_params = i + 1;
			if (tmp.pg_params[i].name == NULL || tmp.pg_params[i].value == NULL) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	*dst = tmp;
	return true;
}

size_t dcs_settings_drop_code_params(struct dcs_settings *s, char *const *allow, size_t n_allow, char *warn,
				     size_t warnlen)
{
	size_t kept = 0, dropped = 0;

	for (size_t i = 0; i < s->n_pg_params; i++) {
		struct config_param *p = &s->pg_params[i];

		if (config_param_allowed_from_dcs(p->name, allow, n_allow)) {
			s->pg_params[kept++] = *p;
			continue;
		}
		warn_add(warn, warnlen,
			 "config: postgresql.parameters.%s ignored: %s, so this node takes it only "
			 "from its own file (postgresql.parameters, or list it in postgresql.allow_from_dcs)",
			 p->name, pg_conf_local_only_why(p->name));
		free(p->name);
		free(p->value);
		dropped++;
	}
	s->n_pg_params = kept;
	return dropped;
}

/* ---- switchover ------------------------------------------------------------ */

char *dcs_switchover_json(const struct dcs_switchover *s)
{
	json_t *root = json_pack("{s:s, s:s, s:s, s:o}", "from", s->from, "to", s->to, "kind",
				 s->failover ? "failover" : "switchover", "requested_at", json_num(s->requested_at));

	if (root && s->scheduled_at > 0 &&
	    json_object_set_new(root, "scheduled_at", json_num(s->scheduled_at)) != 0) {
		json_decref(root);
		return NULL;
	}
	return dump_and_free(root);
}

/* A name field of the switchover key: optional, a member name or "". */
static bool switchover_name(const json_t *root, const char *key, char *buf, size_t len, char *err,
			    size_t errlen)
{
	if (!jsonf_string(root, key, JSONF_OPTIONAL, buf, len, err, errlen))
		return false;
	if (strchr(buf, '/')) {
		jsonf_set_err(err, errlen, "%s: \"%s\" is not a member name", key, buf);
		return false;
	}
	return true;
}

bool dcs_switchover_from_json(const char *json, struct dcs_switchover *out, char *err, size_t errlen)
{
	char kind[16] = "switchover";
	json_t *root;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	root = load_object(json, err, errlen);
	if (!root)
		return false;
	if (!switchover_name(root, "from", out->from, sizeof(out->from), err, errlen) ||
	    !switchover_name(root, "to", out->to, sizeof(out->to), err, errlen) ||
	    !jsonf_string(root, "kind", JSONF_OPTIONAL, kind, sizeof(kind), err, errlen) ||
	    !jsonf_number(root, "scheduled_at", JSONF_OPTIONAL, 0, 1e12, false, &out->scheduled_at, err,
			  errlen) ||
	    !jsonf_number(root, "requested_at", JSONF_OPTIONAL, 0, 1e12, false, &out->requested_at, err,
			  errlen))
		goto cleanup;
	if (strcmp(kind, "failover") == 0) {
		out->failover = true;
	} else if (strcmp(kind, "switchover") != 0) {
		jsonf_set_err(err, errlen, "kind: expected \"switchover\" or \"failover\", got \"%s\"", kind);
		goto cleanup;
	}
	if (out->failover && !out->to[0]) {
		jsonf_set_err(err, errlen, "to: a failover must name its candidate");
		goto cleanup;
	}
	ok = true;
cleanup:
	json_decref(root);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}

void dcs_format_utc(double t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%.0f", t);
}

void dcs_switchover_describe(const struct ha_cluster_view *v, char *buf, size_t len)
{
	char when[40] = "";

	if (v->sw_scheduled_at > 0) {
		char t[32];

		dcs_format_utc(v->sw_scheduled_at, t, sizeof(t));
		snprintf(when, sizeof(when), " at %s", t);
	}
	snprintf(buf, len, "%s from %s to %s%s", v->sw_failover ? "failover" : "switchover",
		 v->sw_from[0] ? v->sw_from : "the leader", v->sw_to[0] ? v->sw_to : "the best candidate", when);
}

/* ---- history --------------------------------------------------------------- */

char *dcs_history_append(const char *old_json, uint32_t timeline, uint64_t lsn, const char *reason,
			 const char *leader, time_t when)
{
	char stamp[32] = "";
	json_t *arr = NULL, *entry;

	if (old_json) {
		arr = json_loads(old_json, 0, NULL);
		if (arr && !json_is_array(arr)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (!arr)
		arr = json_array();
	if (!arr)
		return NULL;
	dcs_format_utc((double)when, stamp, sizeof(stamp));
	entry = json_pack("{s:I, s:I, s:s, s:s, s:s}", "timeline", (json_int_t)timeline, "lsn", (json_int_t)lsn,
			  "reason", reason ? reason : "", "time", stamp, "leader", leader ? leader : "");
	if (!entry || json_array_append_new(arr, entry) != 0) {
		json_decref(arr);
		return NULL;
	}
	while (json_array_size(arr) > DCS_HISTORY_MAX)
		json_array_remove(arr, 0);
	return dump_and_free(arr);
}

/* ---- the cluster view ------------------------------------------------------ */

/* Copies value into buf if it is a usable name (non-empty, fits, no '/'). */
static bool name_from_value(const struct etcd_kv *kv, char *buf, size_t len)
{
	if (!kv->value || kv->value_len == 0 || kv->value_len >= len || strlen(kv->value) != kv->value_len)
		return false;
	memcpy(buf, kv->value, kv->value_len + 1);
	return true;
}

/* The decimal system identifier; false unless value is all digits and fits. */
static bool parse_sysid(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

static void default_settings(struct dcs_settings *d)
{
	memset(d, 0, sizeof(*d));
	d->ttl = DCS_DEFAULT_TTL;
	d->loop_wait = DCS_DEFAULT_LOOP_WAIT;
	d->retry_timeout = DCS_DEFAULT_RETRY_TIMEOUT;
	d->maximum_lag_on_failover = DCS_DEFAULT_MAX_LAG;
	d->synchronous_node_count = 1;
}

void dcs_parse_cluster(const struct dcs_keys *k, const struct etcd_range_result *r,
		       const struct dcs_settings *fallback, struct ha_cluster_view *view,
		       struct dcs_settings *settings_out, char *warn, size_t warnlen)
{
	size_t plen = strlen(k->prefix);
	struct dcs_settings parsed;
	bool have_config = false;
	char err[256];

	memset(view, 0, sizeof(*view));
	memset(&parsed, 0, sizeof(parsed));
	if (warn && warnlen)
		warn[0] = '\0';
	view->etcd_ok = true;

	for (size_t i = 0; r && i < r->n_kvs; i++) {
		const struct etcd_kv *kv = &r->kvs[i];
		const char *rel;

		if (!kv->key || strncmp(kv->key, k->prefix, plen) != 0)
			continue;
		rel = kv->key + plen;

		if (strcmp(rel, "leader") == 0) {
			/* The key exists, so someone holds it, readable or not:
			 * an unreadable leader never reads as "no leader". */
			view->has_leader = true;
			view->leader_lease = kv->lease;
			if (!name_from_value(kv, view->leader, sizeof(view->leader))) {
				view->leader[0] = '\0';
				warn_add(warn, warnlen, "%s: unreadable leader name", kv->key);
			}
		} else if (strcmp(rel, "initialize") == 0) {
			view->init_key_present = true;
			if (kv->lease != 0) {
				view->init_in_progress = true;
				if (!name_from_value(kv, view->init_owner, sizeof(view->init_owner)))
					warn_add(warn, warnlen, "%s: unreadable bootstrapper name", kv->key);
			} else if (!parse_sysid(kv->value, &view->sysid)) {
				warn_add(warn, warnlen, "%s: not a system identifier: \"%.40s\"", kv->key,
					 kv->value ? kv->value : "");
			}
		} else if (strcmp(rel, "config") == 0) {
			if (have_config) {
				dcs_settings_free(&parsed);
				have_config = false;
			}
			if (dcs_config_from_json(kv->value, &parsed, err, sizeof(err)))
				have_config = true;
			else
				warn_add(warn, warnlen, "%s: invalid config, keeping the previous settings: %s",
					 kv->key, err);
		} else if (strcmp(rel, "switchover") == 0) {
			struct dcs_switchover sw;

			if (dcs_switchover_from_json(kv->value, &sw, err, sizeof(err))) {
				view->has_switchover = true;
				memcpy(view->sw_from, sw.from, sizeof(view->sw_from));
				memcpy(view->sw_to, sw.to, sizeof(view->sw_to));
				view->sw_scheduled_at = sw.scheduled_at;
				view->sw_failover = sw.failover;
			} else {
				warn_add(warn, warnlen, "%s: ignored: %s", kv->key, err);
			}
		} else if (strcmp(rel, "sync") == 0) {
			view->has_sync = dcs_sync_from_json(kv->value, view->sync_leader, sizeof(view->sync_leader),
							    view->sync_standbys, HA_SYNC_MAX, &view->n_sync,
							    &view->sync_quorum, err, sizeof(err));
			if (!view->has_sync)
				warn_add(warn, warnlen, "%s: unreadable, no member counts as synchronous: %s", kv->key,
					 err);
		} else if (strcmp(rel, "status") == 0) {
			if (!dcs_status_from_json(kv->value, &view->leader_lsn, &view->leader_timeline))
				warn_add(warn, warnlen, "%s: unreadable status", kv->key);
		} else if (strncmp(rel, "members/", 8) == 0) {
			const char *name = rel + 8;
			struct ha_member *m;

			if (view->n_members >= HA_MAX_MEMBERS) {
				warn_add(warn, warnlen, "%s: more than %d members, ignored", kv->key, HA_MAX_MEMBERS);
				continue;
			}
			m = &view->members[view->n_members];
			if (strchr(name, '/')) {
				warn_add(warn, warnlen, "%s: not a member key", kv->key);
				continue;
			}
			if (!dcs_member_from_json(name, kv->value, m, err, sizeof(err))) {
				warn_add(warn, warnlen, "%s: skipped: %s", kv->key, err);
				memset(m, 0, sizeof(*m));
				continue;
			}
			view->n_members++;
		}
	}

	/* The settings in force: the config key when readable, else the
	 * fallback (or the built-in defaults without one). */
	if (!have_config) {
		if (fallback) {
			if (fallback == settings_out) {
				parsed = *fallback; /* aliasing caller: nothing to copy */
			} else if (!dcs_settings_copy(&parsed, fallback)) {
				warn_add(warn, warnlen, "out of memory copying the settings");
				default_settings(&parsed);
				parsed.ttl = fallback->ttl;
				parsed.loop_wait = fallback->loop_wait;
				parsed.retry_timeout = fallback->retry_timeout;
				parsed.maximum_lag_on_failover = fallback->maximum_lag_on_failover;
				parsed.pause = fallback->pause;
				parsed.failsafe_mode = fallback->failsafe_mode;
				parsed.synchronous_mode = fallback->synchronous_mode;
				parsed.synchronous_mode_strict = fallback->synchronous_mode_strict;
				parsed.synchronous_node_count = fallback->synchronous_node_count;
				parsed.synchronous_quorum = fallback->synchronous_quorum;
			}
		} else {
			default_settings(&parsed);
		}
	} else if (settings_out && settings_out == fallback) {
		dcs_settings_free(settings_out);
	}
	view->ttl = parsed.ttl;
	view->loop_wait = parsed.loop_wait;
	view->retry_timeout = parsed.retry_timeout;
	view->maximum_lag_on_failover = parsed.maximum_lag_on_failover;
	view->paused = parsed.pause;
	view->failsafe_mode = parsed.failsafe_mode;
	view->synchronous_mode = parsed.synchronous_mode;
	view->synchronous_mode_strict = parsed.synchronous_mode_strict;
	view->synchronous_node_count = (int)parsed.synchronous_node_count;
	view->synchronous_quorum = parsed.synchronous_quorum;
	if (settings_out)
		*settings_out = parsed;
	else
		dcs_settings_free(&parsed);
}

/* ---- the bounded read -------------------------------------------------------- */

#define DCS_LIST_PAGE 500      /* keys per keys-only page */
#define DCS_LIST_PAGE_SMALL 2  /* ... when huge key names made a page too big */
#define DCS_FETCH_MEMBERS (2 * HA_MAX_MEMBERS)
#define DCS_NAMED_MAX 5        /* unknown keys named in one warning */

/* The keys the view is built from, besides members/<name>; and history,
 * which batonctl shows from the same read. */
static const char *const fixed_keys[] = { "leader", "initialize", "config", "status", "switchover", "sync", "history" };
#define N_FIXED (sizeof(fixed_keys) / sizeof(fixed_keys[0]))

static enum etcd_status set_etcd_err(struct etcd_error *err, enum etcd_status st, const char *msg)
{
	err->status = st;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return st;
}

/* A key as it may be shown in a log line: printable ASCII, cut at 80 bytes. */
static void show_key(const char *key, size_t len, char *buf, size_t blen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 4 < blen; i++) {
		if (i == 80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
	}
	buf[o] = '\0';
}

/* Moves src's kvs onto the end of dst (src is left empty). */
static bool move_kvs(struct etcd_range_result *dst, struct etcd_range_result *src)
{
	struct etcd_kv *grown;

	if (src->n_kvs == 0)
		return true;
	grown = realloc(dst->kvs, (dst->n_kvs + src->n_kvs) * sizeof(*grown));
	if (!grown)
		return false;
	dst->kvs = grown;
	memcpy(dst->kvs + dst->n_kvs, src->kvs, src->n_kvs * sizeof(*grown));
	dst->n_kvs += src->n_kvs;
	free(src->kvs);
	src->kvs = NULL;
	src->n_kvs = 0;
	return true;
}

/*
 * Keys-only listing of [start, end) into out, page by page at one revision,
 * at most max keys; *complete false when cut. Pages shrink to
 * DCS_LIST_PAGE_SMALL keys when one is too big (key names of a megabyte).
 */
static enum etcd_status list_keys(struct etcd_client *c, const char *start, const char *end, size_t max,
				  struct etcd_range_result *out, bool *complete, struct etcd_error *err)
{
	struct etcd_range_req rq = { .key = start, .range_end = end, .keys_only = true, .limit = DCS_LIST_PAGE };
	char *next = NULL;
	enum etcd_status st = ETCD_OK;

	memset(out, 0, sizeof(*out));
	*complete = false;
	/* Bounded: each page moves past its last key, or shrinks once. */
	for (int pages = 0; pages < 2 * (DCS_LIST_MAX / DCS_LIST_PAGE_SMALL) + 2; pages++) {
		struct etcd_range_result page;
		const struct etcd_kv *last;

		if (out->n_kvs >= max)
			break;
		if ((size_t)rq.limit > max - out->n_kvs)
			rq.limit = (int64_t)(max - out->n_kvs);
		st = etcd_range(c, &rq, &page, err);
		if (st != ETCD_OK && etcd_error_too_big(err) && rq.limit > DCS_LIST_PAGE_SMALL) {
			rq.limit = DCS_LIST_PAGE_SMALL;
			continue;
		}
		if (st != ETCD_OK)
			break;
		if (rq.revision == 0)
			rq.revision = page.revision; /* later pages: the same snapshot */
		out->revision = rq.revision;
		if (page.n_kvs == 0 || !page.more) {
			bool moved = move_kvs(out, &page);

			etcd_range_result_free(&page);
			if (!moved) {
				st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
				break;
			}
			*complete = true;
			break;
		}
		/* The next page starts right after the last key: its bytes and a NUL. */
		last = &page.kvs[page.n_kvs - 1];
		free(next);
		next = malloc(last->key_len + 1);
		if (!next || !move_kvs(out, &page)) {
			etcd_range_result_free(&page);
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			break;
		}
		last = &out->kvs[out->n_kvs - 1];
		memcpy(next, last->key, last->key_len);
		next[last->key_len] = '\0';
		rq.key = next;
		rq.key_len = last->key_len + 1;
		etcd_range_result_free(&page);
	}
	free(next);
	if (st != ETCD_OK)
		etcd_range_result_free(out);
	return st;
}

/* Is key (a listed one) at mod_revision known to be oversized? Its size then. */
static bool cache_hit(const struct dcs_read_cache *cache, const char *key, int64_t rev, size_t *len)
{
	for (size_t i = 0; cache && i < DCS_CACHE_N; i++)
		if (cache->e[i].mod_revision == rev && rev != 0 && strcmp(cache->e[i].key, key) == 0) {
			*len = cache->e[i].len;
			return true;
		}
	return false;
}

static void cache_add(struct dcs_read_cache *cache, const char *key, int64_t rev, size_t len)
{
	size_t i;

	if (cache)
		cache->saw_oversized = true;
	if (!cache || rev == 0 || strlen(key) >= sizeof(cache->e[0].key))
		return;
	i = cache->next++ % DCS_CACHE_N;
	snprintf(cache->e[i].key, sizeof(cache->e[i].key), "%s", key);
	cache->e[i].mod_revision = rev;
	cache->e[i].len = len;
}

/* A key whose existence counts even without a readable value. */
static bool presence_matters(const struct dcs_keys *k, const char *key)
{
	return strcmp(key, k->leader) == 0 || strcmp(key, k->initialize) == 0;
}

/* One key to read: its name, and what the listing said of it (NULL: not listed). */
struct want {
	char key[400];
	const struct etcd_kv *listed;
	bool skip;      /* known oversized (cache): not fetched */
	size_t old_len; /* ... of this many bytes */
};

/* Appends kv (taking its strings) to out, or drops it when its value is too
 * big (keeping leader/initialize without a value). */
static bool keep_kv(const struct dcs_keys *k, struct dcs_read_cache *cache, struct etcd_kv *kv,
		    struct etcd_range_result *out, char *warn, size_t warnlen)
{
	if (kv->value_len > DCS_VALUE_MAX) {
		char shown[100];

		show_key(kv->key, kv->key_len, shown, sizeof(shown));
		warn_add(warn, warnlen, "%s: a value of %zu bytes, more than the %d a key may hold: ignored", shown,
			 kv->value_len, DCS_VALUE_MAX);
		cache_add(cache, kv->key, kv->mod_revision, kv->value_len);
		free(kv->value);
		kv->value = NULL;
		kv->value_len = 0;
		if (!presence_matters(k, kv->key)) {
			free(kv->key);
			memset(kv, 0, sizeof(*kv));
			return true;
		}
	}
	out->kvs[out->n_kvs++] = *kv;
	memset(kv, 0, sizeof(*kv));
	return true;
}

/* A listed key, without its value (known oversized), for the view. */
static bool keep_listed(const struct dcs_keys *k, const struct want *w, struct etcd_range_result *out, char *warn,
			size_t warnlen)
{
	struct etcd_kv *kv;

	warn_add(warn, warnlen, "%s: a value of %zu bytes, more than the %d a key may hold: ignored", w->key,
		 w->old_len, DCS_VALUE_MAX);
	if (!presence_matters(k, w->key))
		return true;
	kv = &out->kvs[out->n_kvs];
	memset(kv, 0, sizeof(*kv));
	kv->key = strdup(w->key);
	if (!kv->key)
		return false;
	kv->key_len = strlen(w->key);
	kv->create_revision = w->listed->create_revision;
	kv->mod_revision = w->listed->mod_revision;
	kv->version = w->listed->version;
	kv->lease = w->listed->lease;
	out->n_kvs++;
	return true;
}

enum key_kind { KEY_FIXED, KEY_MEMBER, KEY_UNKNOWN };

/* What a key under the prefix is to baton; *fixed = index in fixed_keys[]. */
static enum key_kind classify(const struct dcs_keys *k, const struct etcd_kv *kv, size_t *fixed)
{
	size_t plen = strlen(k->prefix);
	const char *rel;

	if (kv->key_len != strlen(kv->key) || kv->key_len < plen || strncmp(kv->key, k->prefix, plen) != 0)
		return KEY_UNKNOWN;
	rel = kv->key + plen;
	for (size_t f = 0; f < N_FIXED; f++)
		if (strcmp(rel, fixed_keys[f]) == 0) {
			*fixed = f;
			return KEY_FIXED;
		}
	if (strncmp(rel, "members/", 8) == 0 && rel[8] && !strchr(rel + 8, '/') && strlen(rel + 8) < HA_NAME_MAX)
		return KEY_MEMBER;
	return KEY_UNKNOWN;
}

/* One warning naming the listed keys baton does not use (the first few). */
static void warn_unknown(const struct dcs_keys *k, const struct etcd_range_result *list, char *warn, size_t warnlen)
{
	char named[DCS_NAMED_MAX * 90 + 16] = "";
	size_t unknown = 0, f;

	for (size_t i = 0; i < list->n_kvs; i++) {
		const struct etcd_kv *kv = &list->kvs[i];

		if (classify(k, kv, &f) != KEY_UNKNOWN)
			continue;
		if (unknown++ < DCS_NAMED_MAX) {
			char shown[100];
			size_t used = strlen(named);

			show_key(kv->key, kv->key_len, shown, sizeof(shown));
			snprintf(named + used, sizeof(named) - used, "%s\"%s\"", used ? ", " : "", shown);
		}
	}
	if (unknown > 0)
		warn_add(warn, warnlen, "%s: %zu key%s that baton does not use, not read: %s%s", k->prefix, unknown,
			 unknown == 1 ? "" : "s", named, unknown > DCS_NAMED_MAX ? ", ..." : "");
}

/* Sorts the listing into the keys to read and the ones to name. */
static size_t choose_keys(const struct dcs_keys *k, const struct etcd_range_result *list, bool complete,
			  const struct dcs_read_cache *cache, struct want *want, size_t max, char *warn, size_t warnlen)
{
	size_t n = 0, extra_members = 0, f;

	for (size_t i = 0; i < N_FIXED; i++) {
		snprintf(want[n].key, sizeof(want[n].key), "%s%s", k->prefix, fixed_keys[i]);
		want[n].listed = NULL;
		n++;
	}
	for (size_t i = 0; i < list->n_kvs; i++) {
		const struct etcd_kv *kv = &list->kvs[i];

		switch (classify(k, kv, &f)) {
		case KEY_FIXED:
			want[f].listed = kv;
			break;
		case KEY_MEMBER:
			if (n >= max) {
				extra_members++;
				break;
			}
			snprintf(want[n].key, sizeof(want[n].key), "%s", kv->key);
			want[n].listed = kv;
			n++;
			break;
		case KEY_UNKNOWN:
			break;
		}
	}
	warn_unknown(k, list, warn, warnlen);
	if (extra_members > 0)
		warn_add(warn, warnlen, "%smembers/: %zu member keys beyond the first %zu, not read", k->prefix,
			 extra_members, max - N_FIXED);
	if (!complete)
		warn_add(warn, warnlen, "%s: more than %d keys, the listing was cut there", k->prefix, DCS_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		want[i].skip = want[i].listed && cache_hit(cache, want[i].key, want[i].listed->mod_revision,
							   &want[i].old_len);
	return n;
}

/*
 * The common case in one request: a transaction holding the keys-only
 * listing (one page), the fixed keys and the members' values (at most
 * DCS_FETCH_MEMBERS). *fallback is set, and nothing is kept, when that is
 * not enough: the answer too big, the listing or the members cut. out->kvs
 * must have room for N_FIXED + DCS_FETCH_MEMBERS entries.
 */
static enum etcd_status read_fast(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
				  struct etcd_range_result *out, char *warn, size_t warnlen, bool *fallback,
				  struct etcd_error *err)
{
	struct etcd_op ops[N_FIXED + 2];
	char fixed[N_FIXED][400];
	struct etcd_txn_result tr;
	enum etcd_status st;
	size_t f;

	*fallback = false;
	ops[0] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = k->prefix, .prefix = true, .keys_only = true,
				   .limit = DCS_LIST_PAGE };
	for (size_t i = 0; i < N_FIXED; i++) {
		snprintf(fixed[i], sizeof(fixed[i]), "%s%s", k->prefix, fixed_keys[i]);
		ops[1 + i] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = fixed[i] };
	}
	ops[1 + N_FIXED] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = k->members, .prefix = true,
					     .limit = DCS_FETCH_MEMBERS };
	st = etcd_txn(c, NULL, 0, ops, N_FIXED + 2, NULL, 0, &tr, err);
	if (st != ETCD_OK) {
		*fallback = etcd_error_too_big(err);
		return *fallback ? ETCD_OK : st;
	}
	if (tr.n_ranges != N_FIXED + 2 || tr.ranges[0].more || tr.ranges[1 + N_FIXED].more) {
		*fallback = true;
		etcd_txn_result_free(&tr);
		return ETCD_OK;
	}
	warn_unknown(k, &tr.ranges[0], warn, warnlen);
	for (size_t i = 1; i <= N_FIXED && st == ETCD_OK; i++)
		if (tr.ranges[i].n_kvs == 1 && !keep_kv(k, cache, &tr.ranges[i].kvs[0], out, warn, warnlen))
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	for (size_t i = 0; i < tr.ranges[1 + N_FIXED].n_kvs && st == ETCD_OK; i++) {
		struct etcd_kv *kv = &tr.ranges[1 + N_FIXED].kvs[i];

		if (classify(k, kv, &f) == KEY_MEMBER && !keep_kv(k, cache, kv, out, warn, warnlen))
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	}
	out->revision = tr.revision;
	etcd_txn_result_free(&tr);
	return st;
}

/* The values of want[] (those not skipped) into out: one transaction, or
 * key by key when its answer is too big. */
static enum etcd_status fetch_values(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
				     const struct want *want, size_t n, struct etcd_range_result *out, char *warn,
				     size_t warnlen, struct etcd_error *err)
{
	struct etcd_op ops[N_FIXED + DCS_FETCH_MEMBERS];
	size_t idx[N_FIXED + DCS_FETCH_MEMBERS], n_ops = 0;
	struct etcd_txn_result tr;
	enum etcd_status st;

	for (size_t i = 0; i < n; i++) {
		if (want[i].skip) {
			if (cache)
				cache->saw_oversized = true;
			if (!keep_listed(k, &want[i], out, warn, warnlen))
				return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			continue;
		}
		ops[n_ops] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = want[i].key };
		idx[n_ops++] = i;
	}
	if (n_ops == 0)
		return ETCD_OK;
	st = etcd_txn(c, NULL, 0, ops, n_ops, NULL, 0, &tr, err);
	if (st == ETCD_OK) {
		out->revision = tr.revision;
		for (size_t i = 0; i < tr.n_ranges; i++)
			if (tr.ranges[i].n_kvs == 1 && !keep_kv(k, cache, &tr.ranges[i].kvs[0], out, warn, warnlen))
				st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		etcd_txn_result_free(&tr);
		return st;
	}
	if (!etcd_error_too_big(err))
		return st;
	/* Too much at once: key by key, each answer at most one value. */
	for (size_t i = 0; i < n_ops; i++) {
		const struct want *w = &want[idx[i]];
		struct etcd_range_result r;

		st = etcd_get(c, w->key, &r, err);
		if (st != ETCD_OK && etcd_error_too_big(err) && w->listed) {
			struct want big = *w;

			big.old_len = (size_t)DCS_VALUE_MAX + 1; /* more than that, how much is unknown */
			if (!keep_listed(k, &big, out, warn, warnlen))
				return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			continue;
		}
		if (st != ETCD_OK)
			return st;
		if (r.revision > out->revision)
			out->revision = r.revision;
		if (r.n_kvs == 1 && !keep_kv(k, cache, &r.kvs[0], out, warn, warnlen)) {
			etcd_range_result_free(&r);
			return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		}
		etcd_range_result_free(&r);
	}
	return ETCD_OK;
}

enum etcd_status dcs_read_cluster(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
				  struct etcd_range_result *out, char *warn, size_t warnlen, struct etcd_error *err)
{
	struct etcd_range_result list;
	struct etcd_error scratch;
	struct want *want = NULL;
	char end[sizeof(k->prefix)];
	size_t plen = strlen(k->prefix), n;
	enum etcd_status st;
	bool complete;

	if (!err)
		err = &scratch;
	memset(out, 0, sizeof(*out));
	if (warn && warnlen)
		warn[0] = '\0';
	/* The prefix ends with '/': the range end is the same with '0'. */
	if (plen == 0 || k->prefix[plen - 1] != '/')
		return set_etcd_err(err, ETCD_E_INVALID, "dcs_read_cluster: bad prefix");
	if (cache)
		cache->saw_oversized = false;
	out->kvs = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*out->kvs));
	if (!out->kvs)
		return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	/* One request unless the last read met an oversized key (then the
	 * listing first, so it is not downloaded again) or this one is too big. */
	if (!cache || !cache->slow) {
		bool fallback;

		st = read_fast(c, k, cache, out, warn, warnlen, &fallback, err);
		if (st != ETCD_OK || !fallback)
			goto done;
		etcd_range_result_free(out);
		if (warn && warnlen)
			warn[0] = '\0';
		out->kvs = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*out->kvs));
		if (!out->kvs)
			return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	}
	memcpy(end, k->prefix, plen + 1);
	end[plen - 1] = '/' + 1;
	st = list_keys(c, k->prefix, end, DCS_LIST_MAX, &list, &complete, err);
	if (st != ETCD_OK)
		goto done;
	if (!complete) {
		/* Flooded: the members may lie past the cut. List them alone. */
		struct etcd_range_result mlist;
		bool mcomplete;
		char mend[sizeof(k->members)];
		size_t mlen = strlen(k->members);

		memcpy(mend, k->members, mlen + 1);
		mend[mlen - 1] = '/' + 1;
		etcd_range_result_free(&list);
		st = list_keys(c, k->members, mend, DCS_FETCH_MEMBERS + 1, &mlist, &mcomplete, err);
		if (st != ETCD_OK)
			goto done;
		list = mlist;
	}
	want = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*want));
	if (!want) {
		st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		goto cleanup;
	}
	n = choose_keys(k, &list, complete, cache, want, N_FIXED + DCS_FETCH_MEMBERS, warn, warnlen);
	out->revision = list.revision;
	st = fetch_values(c, k, cache, want, n, out, warn, warnlen, err);
cleanup:
	free(want);
	etcd_range_result_free(&list);
done:
	if (st != ETCD_OK)
		etcd_range_result_free(out);
	if (cache)
		cache->slow = cache->saw_oversized;
	return st;
}
