/*
 * dcs.c - baton's key layout in etcd and the JSON of each key.
 *
 * Everything the agents tell each other through etcd passes through here:
 * the member records, the dynamic config, the leader's status and the
 * history of leader changes. Writers build JSON with jansson; readers never
 * trust what they read: every field's type and range is checked, and a
 * record that fails is reported (with the reason) and left out rather than
 * half-used.
 *
 * This file holds the key names and the JSON of the member, status, sync,
 * switchover and history keys; beside it, one concern a file (what they
 * share is in dcs_internal.h): dcs_settings.c the config key and the
 * dynamic settings, dcs_view.c dcs_parse_cluster() (the cluster view from
 * a prefix read; it never fails as a whole, because one bad key must not
 * blind the loop to the others), dcs_read.c dcs_read_cluster() (the one
 * function that does I/O: the bounded read that feeds dcs_parse_cluster,
 * kept beside the layout it must know). Everything else does no I/O:
 * callers do the etcd reads and writes.
 */
#include "agent/dcs.h"
#include "agent/dcs_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/jsonf.h"

#define DCS_HISTORY_MAX 100

/* Appends one line to the warning buffer; a line that does not fit is cut
 * (the buffer always stays NUL-terminated). */
void dcs_warn_add(char *warn, size_t warnlen, const char *fmt, ...)
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
	n = snprintf(k->prefix, sizeof(k->prefix), "%s%.*s/%s/", namespace_[0] == '/' ? "" : "/", (int)nslen,
	             namespace_, scope);
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
json_t *dcs_load_object(const char *text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (!text) {
		jsonf_set_err(err, errlen, "no value");
		return NULL;
	}
	root = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!root) {
		jsonf_set_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
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
char *dcs_dump_and_free(json_t *root)
{
	char *s = NULL;

	if (root)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/* A number as JSON: an integer when it is one (so `etcdctl get` shows 5, not
 * 5.0), a real otherwise. */
json_t *dcs_json_num(double d)
{
	if (d == floor(d) && fabs(d) < 9e15)
		return json_integer((json_int_t)d);
	return json_real(d);
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

/* A tag name as members publish it: [A-Za-z0-9_.-]{1,63}. */
bool dcs_tag_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || *p == '-'))
			return false;
	return true;
}

json_t *dcs_member_tags(const struct ha_member *m)
{
	json_t *tags = json_pack("{s:b, s:b, s:i}", "nofailover", (int)m->nofailover, "nosync", (int)m->nosync,
	                         "failover_priority", m->failover_priority);

	if (!tags)
		return NULL;
	/* Patroni publishes these only when set. */
	if ((m->noloadbalance && json_object_set_new(tags, "noloadbalance", json_true()) != 0) ||
	    (m->nostream && json_object_set_new(tags, "nostream", json_true()) != 0) ||
	    (m->clonefrom && json_object_set_new(tags, "clonefrom", json_true()) != 0) ||
	    (m->replicatefrom[0] && json_object_set_new(tags, "replicatefrom", json_string(m->replicatefrom)) != 0))
		goto fail;
	if (m->custom_tags[0]) {
		json_t *custom = json_loads(m->custom_tags, 0, NULL);
		const char *key;
		json_t *value;

		if (!json_is_object(custom)) {
			json_decref(custom);
			goto fail;
		}
		/* A custom tag never replaces one the agent interprets. */
		json_object_foreach(custom, key, value) {
			if (!json_object_get(tags, key) && json_object_set(tags, key, value) != 0) {
				json_decref(custom);
				goto fail;
			}
		}
		json_decref(custom);
	}
	return tags;
fail:
	json_decref(tags);
	return NULL;
}

/* The tags of a member key that the agent does not interpret, kept as a
 * compact JSON object in out (len bytes): scalar values (string, number,
 * boolean) under a well-formed name only; others are left out, and so are
 * tags past len (a member key is written by whoever can write etcd: it
 * gets no unbounded room). */
static void custom_tags_from(const json_t *tags, char *out, size_t len)
{
	static const char *const known[] = { "nofailover",    "nosync",   "failover_priority", "clonefrom",
		                             "noloadbalance", "nostream", "replicatefrom" };
	json_t *keep = json_object();
	const char *key;
	json_t *value;

	out[0] = '\0';
	if (!keep)
		return;
	json_object_foreach((json_t *)tags, key, value) {
		bool skip = !dcs_tag_name_ok(key) ||
		            !(json_is_string(value) || json_is_number(value) || json_is_boolean(value));
		char *text;

		for (size_t i = 0; !skip && i < sizeof(known) / sizeof(known[0]); i++)
			skip = strcmp(key, known[i]) == 0;
		if (skip || json_object_set(keep, key, value) != 0)
			continue;
		text = json_dumps(keep, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text || strlen(text) >= len) {
			json_object_del(keep, key);
			free(text);
			continue;
		}
		free(text);
	}
	if (json_object_size(keep) > 0) {
		char *text = json_dumps(keep, JSON_COMPACT | JSON_SORT_KEYS);

		if (text && strlen(text) < len)
			snprintf(out, len, "%s", text);
		free(text);
	}
	json_decref(keep);
}

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
	root = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:b, s:o, s:s}", "name", m->name, "role",
	                 m->role, "state", m->state, "host", m->host, "port", m->port, "conn_url", conn_url, "api_url",
	                 m->api_url, "timeline", (json_int_t)m->timeline, "lsn", (json_int_t)m->lsn, "pending_restart",
	                 (int)m->pending_restart, "tags", dcs_member_tags(m), "version", BATON_VERSION);
	return dcs_dump_and_free(root);
}

/*
 * A member record in Patroni's shape (3.x: conn_url, api_url ending in
 * /patroni, role master/primary/replica, xlog_location, timeline only when
 * known), read into baton's fields: host and port from conn_url, the API's
 * base URL without Patroni's path, the LSN from xlog_location. The role is
 * mapped (master and primary: primary; replica and standby_leader: replica;
 * uninitialized) and anything else refused, like baton's own records.
 */
static bool member_from_patroni(const json_t *root, struct ha_member *out, json_int_t *port, json_int_t *timeline,
                                json_int_t *lsn, char *err, size_t errlen)
{
	char role[32], conn[256], api[sizeof(out->api_url)];
	const char *h, *end, *colon;
	char *slash, *stop;
	unsigned long p;
	size_t hlen;

	if (!jsonf_string(root, "role", JSONF_REQUIRED, role, sizeof(role), err, errlen) ||
	    !jsonf_string(root, "state", JSONF_REQUIRED, out->state, sizeof(out->state), err, errlen) ||
	    !jsonf_string(root, "conn_url", JSONF_REQUIRED, conn, sizeof(conn), err, errlen) ||
	    !jsonf_string(root, "api_url", JSONF_REQUIRED, api, sizeof(api), err, errlen) ||
	    !jsonf_int(root, "timeline", JSONF_OPTIONAL, 0, UINT32_MAX, timeline, err, errlen) ||
	    !jsonf_int(root, "xlog_location", JSONF_OPTIONAL, 0, INT64_MAX, lsn, err, errlen))
		return false;
	if (strcmp(role, "master") == 0 || strcmp(role, "primary") == 0)
		snprintf(out->role, sizeof(out->role), "primary");
	else if (strcmp(role, "replica") == 0 || strcmp(role, "standby_leader") == 0)
		snprintf(out->role, sizeof(out->role), "replica");
	else if (strcmp(role, "uninitialized") == 0)
		snprintf(out->role, sizeof(out->role), "uninitialized");
	else {
		jsonf_set_err(err, errlen, "role: unknown Patroni role \"%s\"", role);
		return false;
	}
	/* postgres://host:port/db or postgresql://[v6]:port/db */
	h = strstr(conn, "://");
	if (!h || (strncmp(conn, "postgres://", 11) != 0 && strncmp(conn, "postgresql://", 13) != 0))
		goto bad_conn;
	h += 3;
	if (strchr(h, '@'))
		h = strchr(h, '@') + 1; /* user[:password]@ */
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			goto bad_conn;
		colon = end + 1;
		h++;
	} else {
		colon = strchr(h, ':');
		end = colon;
		if (!colon || (strchr(h, '/') && strchr(h, '/') < colon))
			goto bad_conn;
	}
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen >= sizeof(out->host))
		goto bad_conn;
	memcpy(out->host, h, hlen);
	out->host[hlen] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &stop, 10);
	if (errno != 0 || stop == colon + 1 || (*stop != '\0' && *stop != '/') || p < 1 || p > 65535)
		goto bad_conn;
	*port = (json_int_t)p;
	/* http://host:port/patroni: baton's peers are addressed by scheme://host:port */
	h = strstr(api, "://");
	slash = h ? strchr(h + 3, '/') : NULL;
	if (slash)
		*slash = '\0';
	snprintf(out->api_url, sizeof(out->api_url), "%s", api);
	return true;
bad_conn:
	jsonf_set_err(err, errlen, "conn_url: not postgres://host:port/...");
	out->host[0] = '\0';
	return false;
}

bool dcs_member_host_ok(const char *host)
{
	size_t n = strlen(host);

	return n > 0 && host[0] != '-' && host[0] != '.' &&
	       strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") == n;
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
	root = dcs_load_object(json, err, errlen);
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

	/* Patroni's record (no host, a conn_url): a cluster moving to baton
	 * keeps its keys until each member's lease ends. */
	if (!json_object_get(root, "host") && json_object_get(root, "conn_url")) {
		if (!member_from_patroni(root, out, &port, &timeline, &lsn, err, errlen))
			goto cleanup;
	} else {
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
		    !jsonf_int(root, "lsn", JSONF_REQUIRED, 0, INT64_MAX, &lsn, err, errlen))
			goto cleanup;
	}
	/* A host name or an IP address, nothing libpq reads otherwise: "/dir"
	 * or "@name" is a Unix socket, where sslmode=verify-full does not apply
	 * and a listener there could ask a client for its password in clear. */
	if (!dcs_member_host_ok(out->host)) {
		jsonf_set_err(err, errlen,
		              "host: \"%.64s\" is not a host name or IP address (letters, digits, '.', '-', ':')",
		              out->host);
		goto cleanup;
	}
	if (!jsonf_bool(root, "pending_restart", JSONF_OPTIONAL, &out->pending_restart, err, errlen))
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
		    !jsonf_int(tags, "failover_priority", JSONF_OPTIONAL, 0, 1000000, &prio, err, errlen) ||
		    !jsonf_bool(tags, "noloadbalance", JSONF_OPTIONAL, &out->noloadbalance, err, errlen) ||
		    !jsonf_bool(tags, "nostream", JSONF_OPTIONAL, &out->nostream, err, errlen) ||
		    !jsonf_bool(tags, "clonefrom", JSONF_OPTIONAL, &out->clonefrom, err, errlen) ||
		    !jsonf_string(tags, "replicatefrom", JSONF_OPTIONAL, out->replicatefrom, sizeof(out->replicatefrom),
		                  err, errlen))
			goto cleanup;
		out->failover_priority = (int)prio;
		custom_tags_from(tags, out->custom_tags, sizeof(out->custom_tags));
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
	return dcs_dump_and_free(json_pack("{s:I, s:I}", "optime", (json_int_t)lsn, "timeline", (json_int_t)timeline));
}

bool dcs_status_from_json(const char *json, uint64_t *lsn, uint32_t *timeline)
{
	json_int_t l = 0, t = 0;
	json_t *root = dcs_load_object(json, NULL, 0);
	bool ok;

	if (!root)
		return false;
	/* Patroni's status key has no timeline ({"optime":N,"slots":{...}}):
	 * 0, unknown, which the rules read as "no timeline to compare". */
	ok = jsonf_int(root, "optime", JSONF_REQUIRED, 0, INT64_MAX, &l, NULL, 0) &&
	     jsonf_int(root, "timeline", JSONF_OPTIONAL, 0, UINT32_MAX, &t, NULL, 0);
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
		return dcs_dump_and_free(
		        json_pack("{s:s, s:o, s:i}", "leader", leader, "sync_standby", arr, "quorum", quorum));
	return dcs_dump_and_free(json_pack("{s:s, s:o}", "leader", leader, "sync_standby", arr));
}

/* "a,b" (Patroni's sync_standby) into names; false + err on a bad name. */
static bool sync_names_from_list(const char *list, char names[][HA_NAME_MAX], size_t max, size_t *n, char *err,
                                 size_t errlen)
{
	const char *p = list;

	*n = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0 || len >= HA_NAME_MAX || memchr(p, '/', len)) {
			jsonf_set_err(err, errlen, "sync_standby: \"%.64s\" is not a list of member names", list);
			*n = 0;
			return false;
		}
		if (*n >= max) {
			jsonf_set_err(err, errlen, "sync_standby: more than %zu names", max);
			*n = 0;
			return false;
		}
		memcpy(names[*n], p, len);
		names[(*n)++][len] = '\0';
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
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
	root = dcs_load_object(json, err, errlen);
	if (!root)
		return false;
	if (!jsonf_string(root, "leader", JSONF_REQUIRED, leader, leader_len, err, errlen))
		goto cleanup;
	arr = json_object_get(root, "sync_standby");
	/* Patroni's sync key: sync_standby is one name, "a,b" for several, or
	 * null for none. Read as baton's array of names. */
	if (json_is_null(arr) || json_is_string(arr)) {
		const char *list = json_is_string(arr) ? json_string_value(arr) : "";

		if (!sync_names_from_list(list, names, max, n, err, errlen))
			goto cleanup;
		if (!jsonf_int(root, "quorum", JSONF_OPTIONAL, 0, HA_SYNC_MAX, &q, err, errlen))
			goto cleanup;
		*quorum = (int)q;
		ok = true;
		goto cleanup;
	}
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

/* ---- switchover ------------------------------------------------------------ */

char *dcs_switchover_json(const struct dcs_switchover *s)
{
	json_t *root = json_pack("{s:s, s:s, s:s, s:o}", "from", s->from, "to", s->to, "kind",
	                         s->failover ? "failover" : "switchover", "requested_at",
	                         dcs_json_num(s->requested_at));

	if (root && s->scheduled_at > 0 &&
	    json_object_set_new(root, "scheduled_at", dcs_json_num(s->scheduled_at)) != 0) {
		json_decref(root);
		return NULL;
	}
	return dcs_dump_and_free(root);
}

/* A name field of the switchover key: optional, a member name or "". */
static bool switchover_name(const json_t *root, const char *key, char *buf, size_t len, char *err, size_t errlen)
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
	root = dcs_load_object(json, err, errlen);
	if (!root)
		return false;
	if (!switchover_name(root, "from", out->from, sizeof(out->from), err, errlen) ||
	    !switchover_name(root, "to", out->to, sizeof(out->to), err, errlen) ||
	    !jsonf_string(root, "kind", JSONF_OPTIONAL, kind, sizeof(kind), err, errlen) ||
	    !jsonf_number(root, "scheduled_at", JSONF_OPTIONAL, 0, 1e12, false, &out->scheduled_at, err, errlen) ||
	    !jsonf_number(root, "requested_at", JSONF_OPTIONAL, 0, 1e12, false, &out->requested_at, err, errlen))
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

json_t *dcs_history_entry(const json_t *e)
{
	if (json_is_object(e))
		return json_incref((json_t *)e);
	if (json_is_array(e)) {
		/* Patroni: [timeline that ended, lsn, reason, time, new leader]
		 * (the last two since 1.6); baton records the new timeline. */
		const json_t *tl = json_array_get(e, 0), *pos = json_array_get(e, 1);
		const char *why = json_string_value(json_array_get(e, 2));
		const char *at = json_string_value(json_array_get(e, 3));
		const char *who = json_string_value(json_array_get(e, 4));
		json_int_t t = json_is_integer(tl) && json_integer_value(tl) > 0 &&
		                               json_integer_value(tl) < (json_int_t)UINT32_MAX
		                       ? json_integer_value(tl) + 1
		                       : 0;

		return json_pack("{s:I, s:I, s:s, s:s, s:s}", "timeline", t, "lsn",
		                 json_is_integer(pos) && json_integer_value(pos) >= 0 ? json_integer_value(pos) : 0,
		                 "reason", why ? why : "", "time", at ? at : "", "leader", who ? who : "");
	}
	return NULL;
}

char *dcs_history_append(const char *old_json, uint32_t timeline, uint64_t lsn, const char *reason, const char *leader,
                         time_t when)
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
	/* Patroni's entries (lists) are rewritten in baton's shape, so that
	 * every reader of the key sees one kind of entry. */
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *old = json_array_get(arr, i), *obj;

		if (!json_is_array(old))
			continue;
		obj = dcs_history_entry(old);
		if (!obj || json_array_set_new(arr, i, obj) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	dcs_format_utc((double)when, stamp, sizeof(stamp));
	entry = json_pack("{s:I, s:I, s:s, s:s, s:s}", "timeline", (json_int_t)timeline, "lsn", (json_int_t)lsn,
	                  "reason", reason ? reason : "", "time", stamp, "leader", leader ? leader : "");
	if (!entry || json_array_append_new(arr, entry) != 0) {
		json_decref(arr);
		return NULL;
	}
	while (json_array_size(arr) > DCS_HISTORY_MAX)
		json_array_remove(arr, 0);
	return dcs_dump_and_free(arr);
}
