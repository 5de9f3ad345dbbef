/*
 * api.c - the node's REST API (libmicrohttpd) and the client that asks
 * peers for their state.
 *
 * Two layers. api_handle() is the API's whole logic as a function from one
 * request (method, path, raw query, Authorization header, body bytes) to one
 * reply (code, content type, body): health checks for load balancers and
 * Kubernetes, JSON views of this node and of the cluster, the operator's
 * write endpoints, and Prometheus metrics. The libmicrohttpd glue below it
 * only reads a request (capping the body at 64 KiB: a larger one is
 * answered 413 without being read), calls api_handle and sends the reply.
 * Tests and the fuzzer call api_handle directly (api_internal.h).
 *
 * The server runs in libmicrohttpd's one internal polling thread, so
 * requests are answered one after another; that is plenty for probes and
 * operators, and it keeps the Postgres connection used by /status and the
 * server's own etcd client private to that thread. Both are bounded by short
 * timeouts, so a dead etcd slows a /cluster answer, not the health checks
 * for long. The loop hands the server a snapshot of the node's state with
 * api_publish() (copied under a mutex, with the monotonic time it arrived,
 * which /liveness checks); health checks and /metrics answer from it.
 * /status refreshes the LSNs and timeline from the local Postgres when the
 * snapshot says it runs (0.5 s per connect/statement; on failure it serves
 * the snapshot: a candidate asking "are you ahead of me?" gets an answer
 * either way, and the published LSN is never newer than the truth).
 *
 * Writes: PATCH /config and POST /switchover, /failover go through ops.c
 * (validated against the cluster, compare-and-swap on the key); POST
 * /restart, /reload, /reinit only set flags the loop takes with
 * api_take_requests(). When restapi.authentication is set, every method
 * but GET, HEAD and OPTIONS needs those basic-auth credentials. Nothing a
 * refused request sends (unauthorised, malformed, too large) changes state:
 * every check runs before the first write.
 *
 * The client side (api_get_status) is a bounded libcurl GET whose answer
 * is checked field by field: peers are trusted no more than etcd is.
 * Neither side calls curl_global_init: programs do that once in main().
 */
#include "agent/api.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "agent/log.h"
#include "agent/ops.h"
#include "pg/pg_query.h"

#ifndef BATON_VERSION
#define BATON_VERSION "unknown"
#endif

#define API_PG_TIMEOUT 0.5           /* seconds, per connect and statement */
#define API_ETCD_TIMEOUT 1.5         /* seconds, per etcd request of the API's own client */
#define API_ETCD_CONNECT_TIMEOUT 0.5
#define API_CONNECTION_TIMEOUT 5     /* seconds an idle client may hold a connection */
#define API_CONNECTION_LIMIT 16
#define API_BODY_MAX (64 * 1024)     /* largest answer api_get_status accepts */
#define API_PEM_MAX (1024 * 1024)    /* largest certificate or key file read */
#define API_LIVENESS_MIN 3.0         /* seconds: /liveness allows max(3 * loop_wait, this) */

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* libmicrohttpd changed the handler's return type to enum MHD_Result in 0.9.71. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result api_mhd_result;
#else
typedef int api_mhd_result;
#endif

struct api_server {
	struct MHD_Daemon *daemon;

	pthread_mutex_t mu; /* guards everything below up to the marker */
	struct api_status status;
	bool have_status;
	double published_at;      /* monotonic time of the last api_publish */
	struct api_metrics metrics;
	struct api_requests requests;
	bool starting;            /* MHD messages go to start_err while true */
	char start_err[256];
	/* end of mutex-guarded fields */

	/* Set at creation, then used by the handler thread only. */
	char *pg_conninfo;        /* NULL: never refresh from Postgres */
	struct pg_conn *pg;
	struct etcd_client *etcd; /* NULL: no etcd access configured */
	struct dcs_keys keys;
	char scope[64];
	char *auth_expected;      /* "user:password" (NULL = no auth) */
	size_t auth_len;
	char *tls_cert, *tls_key; /* PEM text (NULL = plain HTTP) */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
	if (root)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

bool api_status_from_json(const char *json, struct api_status *out, char *err, size_t errlen)
{
	json_int_t timeline = 0, lsn = 0, receive = 0, replay = 0, lag = -1;
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
	    !jsonf_int(root, "lag", JSONF_OPTIONAL, -1, INT64_MAX, &lag, err, errlen))
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
	ok = true;
cleanup:
	json_decref(root);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}

/* ---- parsing helpers ----------------------------------------------------- */

bool api_parse_bytes(const char *s, int64_t *out)
{
	static const struct {
		const char *name;
		int shift;
	} units[] = {
		{ "", 0 },     { "b", 0 },     { "k", 10 },  { "kb", 10 }, { "kib", 10 }, { "m", 20 },
		{ "mb", 20 },  { "mib", 20 },  { "g", 30 },  { "gb", 30 }, { "gib", 30 }, { "t", 40 },
		{ "tb", 40 },  { "tib", 40 },
	};
	uint64_t v = 0;
	const char *p = s;
	char unit[4];
	size_t n = 0;

	if (!s || !isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (uint64_t)INT64_MAX / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > (uint64_t)INT64_MAX)
			return false;
	}
	/* spaces only between the number and a unit */
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (!isalpha((unsigned char)*p))
			return false;
	}
	for (; *p && isalpha((unsigned char)*p); p++) {
		if (n >= sizeof(unit) - 1)
			return false;
		unit[n++] = (char)tolower((unsigned char)*p);
	}
	unit[n] = '\0';
	if (*p)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		if (units[i].shift && v > ((uint64_t)INT64_MAX >> units[i].shift))
			return false;
		*out = (int64_t)(v << units[i].shift);
		return true;
	}
	return false;
}

/* n decimal digits at *p (advanced), as an int. */
static bool take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool api_parse_time(const char *s, int64_t *out)
{
	int year, mon, day, hour, min, sec = 0, off_h = 0, off_m = 0, sign = 0;
	const char *p = s;
	struct tm tm, back;
	time_t t;

	if (!s || !*s)
		return false;
	/* Unix seconds. */
	if (strspn(s, "0123456789") == strlen(s)) {
		int64_t v = 0;

		if (strlen(s) > 12)
			return false;
		for (; *p; p++)
			v = v * 10 + (*p - '0');
		*out = v;
		return true;
	}
	if (!take_digits(&p, 4, &year) || *p++ != '-' || !take_digits(&p, 2, &mon) || *p++ != '-' ||
	    !take_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if (!take_digits(&p, 2, &hour) || *p++ != ':' || !take_digits(&p, 2, &min))
		return false;
	if (*p == ':') {
		p++;
		if (!take_digits(&p, 2, &sec))
			return false;
		if (*p == '.' || *p == ',') {
			p++;
			if (!isdigit((unsigned char)*p))
				return false;
			while (isdigit((unsigned char)*p))
				p++; /* fractions of a second: dropped */
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!take_digits(&p, 2, &off_h))
			return false;
		if (*p == ':')
			p++;
		if (!take_digits(&p, 2, &off_m))
			return false;
	} else {
		return false; /* a time without a zone is ambiguous */
	}
	if (*p || year < 1970 || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60 ||
	    off_h > 23 || off_m > 59)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	/* timegm normalises 31 February into March: refuse what it moved. */
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != day || back.tm_mon != mon - 1)
		return false;
	*out = (int64_t)t - (int64_t)sign * (off_h * 3600 + off_m * 60);
	return true;
}

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

/* Standard base64 (padding required) of n bytes into a malloc'd string;
 * NULL on anything else. */
static char *b64_decode(const char *s, size_t n, size_t *out_len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *out;
	size_t j = 0;

	if (n == 0 || n % 4 != 0)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 4) {
		unsigned int v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			const char *pos;
			char c = s[i + k];

			if (c == '=' && i + 4 == n && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				pad++;
				v <<= 6;
				continue;
			}
			pos = c ? strchr(alphabet, c) : NULL;
			if (!pos || pad) {
				free(out);
				return NULL;
			}
			v = (v << 6) | (unsigned int)(pos - alphabet);
		}
		out[j++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[j++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[j++] = (unsigned char)v;
	}
	out[j] = '\0';
	*out_len = j;
	return (char *)out;
}

/* Compares in time that depends on the expected length only. */
static bool ct_equal(const char *given, size_t glen, const char *expected, size_t elen)
{
	volatile unsigned char d = glen != elen;

	for (size_t i = 0; i < elen; i++)
		d |= (unsigned char)expected[i] ^ (unsigned char)(i < glen ? given[i] : 0);
	return d == 0;
}

/* True when the request carries the configured basic-auth credentials. */
static bool authorized(const struct api_server *s, const char *header)
{
	const char *p = header;
	char *decoded;
	size_t len = 0, n;
	bool ok;

	if (!s->auth_expected)
		return true;
	if (!p)
		return false;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "Basic", 5) != 0 || p[5] != ' ')
		return false;
	p += 6;
	while (*p == ' ')
		p++;
	n = strlen(p);
	while (n > 0 && p[n - 1] == ' ')
		n--;
	decoded = b64_decode(p, n, &len);
	if (!decoded)
		return false;
	ok = ct_equal(decoded, len, s->auth_expected, s->auth_len);
	explicit_bzero(decoded, len);
	free(decoded);
	return ok;
}

/* ---- replies ------------------------------------------------------------- */

/* Takes root (a new reference, may be NULL on ENOMEM). */
static void reply_json(struct api_reply *out, unsigned int code, json_t *root)
{
	out->code = code;
	out->content_type = JSON_TYPE;
	out->body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	out->body_len = out->body ? strlen(out->body) : 0;
	json_decref(root);
}

static void reply_error(struct api_reply *out, unsigned int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_error(struct api_reply *out, unsigned int code, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	reply_json(out, code, json_pack("{s:s}", "error", msg));
}

void api_reply_free(struct api_reply *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* A growing text buffer for /metrics; oom sticks. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap ? b->cap : 2048);
			char *q;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			q = realloc(b->p, cap);
			if (!q) {
				b->oom = true;
				return;
			}
			b->p = q;
			b->cap = cap;
		}
	}
}

/* ---- snapshot-based endpoints ---------------------------------------------- */

/* The snapshot and when it came; false when none was published yet. */
static bool snapshot(struct api_server *s, struct api_status *st, double *age, struct api_metrics *m)
{
	bool have;

	pthread_mutex_lock(&s->mu);
	have = s->have_status;
	*st = s->status;
	if (age)
		*age = mono_now() - s->published_at;
	if (m)
		*m = s->metrics;
	pthread_mutex_unlock(&s->mu);
	return have;
}

/* Overwrites the snapshot's position with what the local Postgres says now.
 * Runs in the handler thread only. Failure leaves st as it was. */
static void refresh_from_pg(struct api_server *s, struct api_status *st)
{
	struct pg_state ps;
	struct pg_err perr;

	if (!s->pg_conninfo || !st->pg_running)
		return;
	if (!s->pg) {
		s->pg = pg_conn_new(s->pg_conninfo, API_PG_TIMEOUT);
		if (!s->pg)
			return;
	}
	memset(&perr, 0, sizeof(perr));
	if (!pg_query_state(s->pg, &ps, &perr)) {
		log_debug("REST API: serving the last snapshot, Postgres did not answer: %s", perr.msg);
		pg_conn_reset(s->pg);
		return;
	}
	/* A replica's fresh timeline can lag (no WAL receiver right after its
	 * primary died); the loop's snapshot keeps the one it last streamed on. */
	if (!ps.in_recovery || ps.timeline > st->timeline)
		st->timeline = ps.timeline;
	st->lsn = ps.current_lsn;
	st->receive_lsn = ps.receive_lsn;
	st->replay_lsn = ps.replay_lsn;
}

static void h_status(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	char *text;

	(void)rq;
	(void)body;
	if (!snapshot(s, &st, NULL, NULL)) {
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
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

	if (hc == HC_REPLICA || hc == HC_SYNC || hc == HC_ASYNC) {
		bool bad = false;
		char *v = query_param(rq->query, "lag", &bad);

		if (bad || (v && !api_parse_bytes(v, &max_lag))) {
			reply_error(out, MHD_HTTP_BAD_REQUEST,
				    "lag: expected a byte count such as 1048576, 16MB or 1GB");
			free(v);
			return;
		}
		free(v);
	}
	have = snapshot(s, &st, &age, NULL);
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
		else if (max_lag >= 0 && (st.lag < 0 || st.lag > max_lag)) {
			ok = false;
			snprintf(why, sizeof(why), "replication lag %" PRId64 " bytes above %" PRId64, st.lag, max_lag);
		}
		break;
	case HC_READ_ONLY:
		ok = st.pg_running && (strcmp(st.role, "replica") == 0 || strcmp(st.role, "primary") == 0);
		if (!ok)
			snprintf(why, sizeof(why), "Postgres is not running");
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
				       (!st.is_leader && strcmp(st.role, "replica") == 0 && st.lag >= 0));
		if (!ok)
			snprintf(why, sizeof(why), "%s", !st.pg_running ? "Postgres is not running"
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
	reply_json(out, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, root);
}

#define HEALTH_HANDLER(fn, hc)                                                                                    \
	static void fn(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)   \
	{                                                                                                         \
		(void)body;                                                                                       \
		health(s, rq, hc, out);                                                                           \
	}
HEALTH_HANDLER(h_primary, HC_PRIMARY)
HEALTH_HANDLER(h_replica, HC_REPLICA)
HEALTH_HANDLER(h_read_only, HC_READ_ONLY)
HEALTH_HANDLER(h_health, HC_HEALTH)
HEALTH_HANDLER(h_liveness, HC_LIVENESS)
HEALTH_HANDLER(h_readiness, HC_READINESS)
HEALTH_HANDLER(h_sync, HC_SYNC)
HEALTH_HANDLER(h_async, HC_ASYNC)

/* A Prometheus label value: backslash, quote and newline escaped. */
static void sb_label(struct sbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(b, "\\%c", *v);
		else if (*v == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *v);
	}
}

static void metric_head(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void h_metrics(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	static const char *const bounds[API_LATENCY_BUCKETS] = { "0.005", "0.01", "0.025", "0.05",
								 "0.1",   "0.25", "0.5",   "1" };
	struct api_status st;
	struct api_metrics m;
	struct sbuf b = { NULL, 0, 0, false };

	(void)rq;
	(void)body;
	if (!snapshot(s, &st, NULL, &m)) {
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	metric_head(&b, "baton_info", "gauge", "Agent identity; always 1.");
	sb_printf(&b, "baton_info{name=\"");
	sb_label(&b, st.name);
	sb_printf(&b, "\",scope=\"");
	sb_label(&b, st.scope);
	sb_printf(&b, "\",version=\"");
	sb_label(&b, BATON_VERSION);
	sb_printf(&b, "\"} 1\n");
	metric_head(&b, "baton_is_leader", "gauge", "1 when this node holds the leader key.");
	sb_printf(&b, "baton_is_leader %d\n", st.is_leader ? 1 : 0);
	metric_head(&b, "baton_postgres_running", "gauge", "1 when the local Postgres runs.");
	sb_printf(&b, "baton_postgres_running %d\n", st.pg_running ? 1 : 0);
	metric_head(&b, "baton_role", "gauge", "The local Postgres' role (1 for the current one).");
	for (size_t i = 0; dcs_role_at(i); i++) {
		const char *role = dcs_role_at(i);

		sb_printf(&b, "baton_role{role=\"%s\"} %d\n", role, strcmp(st.role, role) == 0 ? 1 : 0);
	}
	metric_head(&b, "baton_timeline", "gauge", "The local Postgres' timeline.");
	sb_printf(&b, "baton_timeline %" PRIu32 "\n", st.timeline);
	metric_head(&b, "baton_lsn_bytes", "gauge",
		    "WAL position in bytes (primary: current; replica: max of received and replayed).");
	sb_printf(&b, "baton_lsn_bytes %" PRIu64 "\n", st.lsn);
	metric_head(&b, "baton_replication_lag_bytes", "gauge", "Bytes behind the leader (-1 unknown).");
	sb_printf(&b, "baton_replication_lag_bytes %" PRId64 "\n", st.lag);
	metric_head(&b, "baton_paused", "gauge", "1 when the cluster is in maintenance mode.");
	sb_printf(&b, "baton_paused %d\n", st.paused ? 1 : 0);
	metric_head(&b, "baton_pending_restart", "gauge", "1 when a changed parameter needs a Postgres restart.");
	sb_printf(&b, "baton_pending_restart %d\n", st.pending_restart ? 1 : 0);
	metric_head(&b, "baton_lease_renewals_total", "counter", "Lease keepalives that succeeded.");
	sb_printf(&b, "baton_lease_renewals_total %" PRIu64 "\n", m.lease_renewals);
	metric_head(&b, "baton_lease_renewal_failures_total", "counter", "Lease keepalives that failed.");
	sb_printf(&b, "baton_lease_renewal_failures_total %" PRIu64 "\n", m.lease_renewal_failures);
	metric_head(&b, "baton_seconds_since_lease_renewal", "gauge",
		    "Seconds since the last good keepalive was sent (-1 no lease).");
	sb_printf(&b, "baton_seconds_since_lease_renewal %.6f\n", m.since_last_renewal);
	metric_head(&b, "baton_lease_renewal_worst_seconds", "gauge",
		    "Slowest lease keepalive round trip since the agent started.");
	sb_printf(&b, "baton_lease_renewal_worst_seconds %.6f\n", m.worst_renewal_latency);
	metric_head(&b, "baton_lease_renewal_worst_gap_seconds", "gauge",
		    "Longest time between two successful lease keepalives (the leader's deadline budget is ttl - margin).");
	sb_printf(&b, "baton_lease_renewal_worst_gap_seconds %.6f\n", m.worst_renewal_gap);
	metric_head(&b, "baton_leader_changes_total", "counter", "Changes of the leader key's holder seen.");
	sb_printf(&b, "baton_leader_changes_total %" PRIu64 "\n", m.leader_changes);
	metric_head(&b, "baton_etcd_requests_total", "counter", "etcd requests made.");
	sb_printf(&b, "baton_etcd_requests_total %" PRIu64 "\n", m.etcd_requests);
	metric_head(&b, "baton_etcd_request_failures_total", "counter", "etcd requests that failed.");
	sb_printf(&b, "baton_etcd_request_failures_total %" PRIu64 "\n", m.etcd_failures);
	metric_head(&b, "baton_etcd_request_duration_seconds", "histogram", "etcd request latency.");
	for (size_t i = 0; i < API_LATENCY_BUCKETS; i++)
		sb_printf(&b, "baton_etcd_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n", bounds[i],
			  m.etcd_latency_le[i]);
	sb_printf(&b, "baton_etcd_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", m.etcd_latency_count);
	sb_printf(&b, "baton_etcd_request_duration_seconds_sum %.6f\n", m.etcd_latency_sum);
	sb_printf(&b, "baton_etcd_request_duration_seconds_count %" PRIu64 "\n", m.etcd_latency_count);
	if (b.oom) {
		free(b.p);
		b.p = NULL;
		b.len = 0;
	}
	out->code = MHD_HTTP_OK;
	out->content_type = METRICS_TYPE;
	out->body = b.p;
	out->body_len = b.len;
}

/* ---- etcd-based endpoints -------------------------------------------------- */

/* An optional body that, when present, must be a JSON object (no fields are
 * read from it); false with a 400 reply otherwise. */
static bool body_optional_object(json_t *body, struct api_reply *out)
{
	if (body && !json_is_object(body)) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
		return false;
	}
	return true;
}

/* 503 unless the server has etcd access. */
static bool need_etcd(struct api_server *s, struct api_reply *out)
{
	if (s->etcd)
		return true;
	reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "etcd access is not configured for this REST API");
	return false;
}

static void reply_etcd_error(struct api_reply *out, const char *what, const struct etcd_error *e)
{
	reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "etcd unreachable while reading %s: %s (%s)", what, e->message,
		    etcd_status_name(e->status));
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

/* GET /cluster: one prefix read, parsed as the agents parse it. */
static void h_cluster(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
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
		json_object_set_new(mj, "is_leader", json_boolean(leads));
		if (leads)
			json_object_set_new(mj, "lag", json_integer(0));
		else if (ref > 0)
			json_object_set_new(mj, "lag", json_integer(ref > m->lsn ? (json_int_t)(ref - m->lsn) : 0));
		else
			json_object_set_new(mj, "lag", json_null());
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
		reply_json(out, MHD_HTTP_OK, root);
	else
		reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

static void h_history(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct etcd_range_result r;
	struct etcd_error e;
	json_t *arr;

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
		reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "the history key is not a JSON array");
		return;
	}
	reply_json(out, MHD_HTTP_OK, arr);
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
				reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "the config key is not a JSON object");
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
			reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	etcd_range_result_free(&r);
	return cfg;
}

static void h_config_get(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	int64_t rev = 0;
	json_t *cfg;

	(void)rq;
	(void)body;
	if (!need_etcd(s, out))
		return;
	cfg = read_config(s, &rev, false, out);
	if (cfg)
		reply_json(out, MHD_HTTP_OK, cfg);
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

static void h_config_patch(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	int64_t rev = 0;
	json_t *cfg = NULL;
	char *text = NULL;
	char err[512] = "";

	(void)rq;
	if (!need_etcd(s, out))
		return;
	if (!json_is_object(body)) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object (a merge patch of the config)");
		return;
	}
	cfg = read_config(s, &rev, true, out);
	if (!cfg)
		return;
	if (!merge_patch(cfg, body) || !(text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS))) {
		reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto cleanup;
	}
	/* Written only if the key is still as read (ops validates it). */
	if (!ops_replace_config_at(s->etcd, &s->keys, text, rev, err, sizeof(err))) {
		reply_error(out, ops_error_code(err), "%s", err);
		goto cleanup;
	}
	log_info("REST API: config changed to %s", text);
	reply_json(out, MHD_HTTP_OK, cfg);
	cfg = NULL;
cleanup:
	json_decref(cfg);
	free(text);
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

static void switchover(struct api_server *s, json_t *body, bool failover, struct api_reply *out)
{
	struct ops_switchover_req req;
	char leader[HA_NAME_MAX], cand[HA_NAME_MAX], err[512] = "";
	const json_t *at;
	int64_t when = 0;
	json_t *root;

	if (!need_etcd(s, out) || !body_optional_object(body, out))
		return;
	memset(&req, 0, sizeof(req));
	req.failover = failover;
	if (body && (!name_field(body, "leader", leader, sizeof(leader), &req.leader, err, sizeof(err)) ||
		     !name_field(body, "candidate", cand, sizeof(cand), &req.candidate, err, sizeof(err)) ||
		     !jsonf_bool(body, "force", JSONF_OPTIONAL, &req.force, err, sizeof(err)))) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	at = body ? json_object_get(body, "scheduled_at") : NULL;
	if (at && !json_is_null(at)) {
		if (json_is_integer(at) && json_integer_value(at) > 0) {
			when = json_integer_value(at);
		} else if (!json_is_string(at) ||
			   (json_string_length(at) > 0 && !api_parse_time(json_string_value(at), &when))) {
			reply_error(out, MHD_HTTP_BAD_REQUEST,
				    "scheduled_at: expected an ISO 8601 time with a zone "
				    "(2025-01-31T12:00:00Z) or unix seconds");
			return;
		}
	}
	if (failover && when > 0) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "scheduled_at: a failover happens now, it cannot be scheduled");
		return;
	}
	if (failover && !req.candidate) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "candidate: a failover needs one");
		return;
	}
	if (when > 0 && (time_t)when != when) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "scheduled_at: out of range");
		return;
	}
	req.scheduled_at = (time_t)when;
	if (!ops_switchover(s->etcd, &s->keys, &req, err, sizeof(err))) {
		reply_error(out, ops_error_code(err), "%s", err);
		return;
	}
	log_info("REST API: %s requested (leader %s, candidate %s, at %" PRId64 ")",
		 failover ? "failover" : "switchover", req.leader ? req.leader : "any",
		 req.candidate ? req.candidate : "best", when);
	root = json_pack("{s:s, s:s?, s:s?}", "accepted", failover ? "failover" : "switchover", "leader", req.leader,
			 "candidate", req.candidate);
	if (root && when > 0)
		json_object_set_new(root, "scheduled_at", json_integer((json_int_t)when));
	reply_json(out, MHD_HTTP_ACCEPTED, root);
}

static void h_switchover(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	switchover(s, body, false, out);
}

static void h_failover(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	if (!body) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object with a candidate");
		return;
	}
	switchover(s, body, true, out);
}

/* ---- requests for the loop ------------------------------------------------- */

static void h_restart(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	bool pending = false;
	char err[256] = "";

	(void)rq;
	if (body && (!json_is_object(body) ||
		     !jsonf_bool(body, "restart_pending", JSONF_OPTIONAL, &pending, err, sizeof(err)))) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "%s", err[0] ? err : "the body must be a JSON object");
		return;
	}
	pthread_mutex_lock(&s->mu);
	/* A plain restart wins over a pending-only one queued earlier. */
	if (!s->requests.restart)
		s->requests.restart_pending_only = pending;
	else if (!pending)
		s->requests.restart_pending_only = false;
	s->requests.restart = true;
	pthread_mutex_unlock(&s->mu);
	reply_json(out, MHD_HTTP_ACCEPTED,
		   json_pack("{s:s, s:b}", "accepted", "restart", "restart_pending", (int)pending));
}

/* Sets one of s->requests' flags for the loop and replies 202
 * {"accepted": what}. */
static void queue_request(struct api_server *s, bool *flag, const char *what, struct api_reply *out)
{
	pthread_mutex_lock(&s->mu);
	*flag = true;
	pthread_mutex_unlock(&s->mu);
	reply_json(out, MHD_HTTP_ACCEPTED, json_pack("{s:s}", "accepted", what));
}

static void h_reload(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	(void)rq;
	if (body_optional_object(body, out))
		queue_request(s, &s->requests.reload, "reload", out);
}

static void h_reinit(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;

	(void)rq;
	if (!body_optional_object(body, out))
		return;
	if (!snapshot(s, &st, NULL, NULL)) {
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	/* Wiping the leader's data directory would only lose data. */
	if (st.is_leader || strcmp(st.role, "primary") == 0) {
		reply_error(out, MHD_HTTP_CONFLICT, "%s is the leader: only a replica can be reinitialized",
			    st.name);
		return;
	}
	queue_request(s, &s->requests.reinit, "reinit", out);
}

/*
 * failsafe_mode: the leader, unable to reach etcd, asks every member to
 * confirm it. We confirm only if we cannot reach etcd either (else the
 * leader key in etcd is the truth and the leader must go by it) and the
 * sender is the leader we last knew. Confirming is a promise the loop keeps:
 * no leader key taken by us within a ttl of it.
 */
static void h_failsafe(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	struct api_status st;
	const char *leader;

	(void)rq;
	if (!body || !json_is_object(body) || !json_is_string(json_object_get(body, "leader"))) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "the body must be {\"leader\": NAME}");
		return;
	}
	leader = json_string_value(json_object_get(body, "leader"));
	if (!snapshot(s, &st, NULL, NULL)) {
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	if (st.etcd_ok) {
		reply_error(out, MHD_HTTP_CONFLICT, "%s reaches etcd: the leader key decides, not failsafe", st.name);
		return;
	}
	if (st.is_leader || strcmp(st.leader, leader) != 0) {
		reply_error(out, MHD_HTTP_CONFLICT, "%s is not the leader %s last knew ('%s')", leader, st.name,
			    st.leader);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->requests.failsafe_seen_at = mono_now();
	pthread_mutex_unlock(&s->mu);
	reply_json(out, MHD_HTTP_OK, json_pack("{s:s, s:s}", "accepted", "failsafe", "member", st.name));
}

/* ---- dispatch -------------------------------------------------------------- */

enum { M_GET = 1, M_HEAD = 2, M_OPTIONS = 4, M_POST = 8, M_PATCH = 16 };

typedef void (*api_handler_fn)(struct api_server *s, const struct api_request *rq, json_t *body,
			       struct api_reply *out);

struct api_route {
	const char *path;
	unsigned int methods;
	const char *allow; /* every method the path takes, for 405 answers */
	api_handler_fn fn;
};

#define HEALTH_METHODS (M_GET | M_HEAD | M_OPTIONS)
#define HEALTH_ALLOW "GET, HEAD, OPTIONS"

static const struct api_route routes[] = {
	{ "/primary", HEALTH_METHODS, HEALTH_ALLOW, h_primary },
	{ "/leader", HEALTH_METHODS, HEALTH_ALLOW, h_primary },
	{ "/replica", HEALTH_METHODS, HEALTH_ALLOW, h_replica },
	{ "/read-only", HEALTH_METHODS, HEALTH_ALLOW, h_read_only },
	{ "/health", HEALTH_METHODS, HEALTH_ALLOW, h_health },
	{ "/liveness", HEALTH_METHODS, HEALTH_ALLOW, h_liveness },
	{ "/readiness", HEALTH_METHODS, HEALTH_ALLOW, h_readiness },
	{ "/sync", HEALTH_METHODS, HEALTH_ALLOW, h_sync },
	{ "/async", HEALTH_METHODS, HEALTH_ALLOW, h_async },
	{ "/status", M_GET | M_HEAD, "GET, HEAD", h_status },
	{ "/metrics", M_GET | M_HEAD, "GET, HEAD", h_metrics },
	{ "/cluster", M_GET | M_HEAD, "GET, HEAD", h_cluster },
	{ "/history", M_GET | M_HEAD, "GET, HEAD", h_history },
	{ "/config", M_GET | M_HEAD, "GET, HEAD, PATCH", h_config_get },
	{ "/config", M_PATCH, "GET, HEAD, PATCH", h_config_patch },
	{ "/switchover", M_POST, "POST", h_switchover },
	{ "/failover", M_POST, "POST", h_failover },
	{ "/restart", M_POST, "POST", h_restart },
	{ "/reload", M_POST, "POST", h_reload },
	{ "/reinit", M_POST, "POST", h_reinit },
	{ "/failsafe", M_POST, "POST", h_failsafe },
};

static unsigned int method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} methods[] = { { "GET", M_GET }, { "HEAD", M_HEAD }, { "OPTIONS", M_OPTIONS }, { "POST", M_POST },
			{ "PATCH", M_PATCH } };

	for (size_t i = 0; m && i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].bit;
	return 0;
}

void api_handle(struct api_server *s, const struct api_request *rq, struct api_reply *out)
{
	const struct api_route *route = NULL;
	const char *allow = NULL;
	unsigned int bit = method_bit(rq->method);
	json_t *body = NULL;

	memset(out, 0, sizeof(*out));
	if (rq->body_too_large) {
		reply_error(out, 413 /* Content Too Large; its MHD name changed in 0.9.74 */, "request body larger than %d bytes", API_REQUEST_BODY_MAX);
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!rq->path || strcmp(rq->path, routes[i].path) != 0)
			continue;
		allow = routes[i].allow;
		if (routes[i].methods & bit) {
			route = &routes[i];
			break;
		}
	}
	if (!allow) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "not found");
		return;
	}
	if (!route) {
		reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (allowed: %s)", allow);
		out->allow = allow;
		return;
	}
	/* Every method that can change something needs the credentials. */
	if (!(bit & (M_GET | M_HEAD | M_OPTIONS)) && !authorized(s, rq->authorization)) {
		reply_error(out, MHD_HTTP_UNAUTHORIZED, "authentication required");
		out->authenticate = true;
		return;
	}
	if ((bit & (M_POST | M_PATCH)) && rq->body_len > 0) {
		json_error_t jerr;

		body = json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_DECODE_ANY, &jerr);
		if (!body) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed JSON: %s (line %d, column %d)", jerr.text,
				    jerr.line, jerr.column);
			return;
		}
	}
	route->fn(s, rq, body, out);
	json_decref(body);
}

/* ---- libmicrohttpd glue ---------------------------------------------------- */

/* What one request accumulates between the handler's calls. */
struct api_conn {
	char *query;      /* raw query string (NULL = none) */
	char *body;
	size_t body_len;
	bool started;     /* the handler saw the headers */
	bool too_large;
	bool answered;    /* a reply was queued early (413) */
};

/* MHD's error messages: captured into start_err while the daemon starts (so
 * the caller learns why a bind failed), otherwise debug lines. */
static void api_mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct api_server *s = cls;
	char line[256];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	pthread_mutex_lock(&s->mu);
	if (s->starting) {
		if (!s->start_err[0])
			snprintf(s->start_err, sizeof(s->start_err), "%s", line);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	log_debug("REST API: %s", line);
}

/* Called with the raw request URI before it is parsed: keeps the query
 * string exactly as sent (MHD would hand it over decoded and split). Its
 * return value becomes the request's context. */
static void *api_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct api_conn *cc = calloc(1, sizeof(*cc));
	const char *q = uri ? strchr(uri, '?') : NULL;

	(void)cls;
	(void)conn;
	if (cc && q) {
		cc->query = strdup(q + 1);
		if (!cc->query) {
			free(cc);
			return NULL;
		}
	}
	return cc;
}

static void api_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			     enum MHD_RequestTerminationCode toe)
{
	struct api_conn *cc = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!cc)
		return;
	free(cc->query);
	free(cc->body);
	free(cc);
	*con_cls = NULL;
}

/* Sends a reply; MHD_NO (the connection is closed) when it cannot. */
static api_mhd_result send_reply(struct MHD_Connection *conn, struct api_reply *r)
{
	struct MHD_Response *resp;
	api_mhd_result ret;

	if (!r->body)
		return MHD_NO; /* out of memory */
	resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	r->body = NULL; /* MHD frees it now */
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (r->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) != MHD_YES) ||
	    (r->authenticate && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
							"Basic realm=\"baton\", charset=\"UTF-8\"") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, r->code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static api_mhd_result handle_and_send(struct api_server *s, struct MHD_Connection *conn, const char *url,
				      const char *method, struct api_conn *cc)
{
	struct api_request rq;
	struct api_reply r;
	api_mhd_result ret;

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = url;
	rq.query = cc->query;
	rq.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	rq.body = cc->body;
	rq.body_len = cc->body_len;
	rq.body_too_large = cc->too_large;
	api_handle(s, &rq, &r);
	ret = send_reply(conn, &r);
	api_reply_free(&r);
	return ret;
}

/* A Content-Length above the cap: no need to read the body to refuse it. */
static bool declared_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end = NULL;
	unsigned long long v;

	if (!cl)
		return false;
	errno = 0;
	v = strtoull(cl, &end, 10);
	return errno == ERANGE || (end != cl && v > API_REQUEST_BODY_MAX);
}

static api_mhd_result api_mhd_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				      const char *version, const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct api_server *s = cls;
	struct api_conn *cc = *con_cls;

	(void)version;
	if (!cc) {
		/* the URI callback ran out of memory */
		cc = calloc(1, sizeof(*cc));
		if (!cc)
			return MHD_NO;
		*con_cls = cc;
	}
	if (!cc->started) {
		/* Headers only: refuse a declared oversized body before reading it
		 * (MHD then neither sends 100 Continue nor reads on). */
		cc->started = true;
		if (declared_too_large(conn)) {
			cc->too_large = true;
			cc->answered = true;
			return handle_and_send(s, conn, url, method, cc);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (cc->answered || cc->too_large)
			return MHD_YES; /* drop what comes after the cap */
		if (n > API_REQUEST_BODY_MAX - cc->body_len) {
			/* A chunked body that grew past the cap: forget it. */
			cc->too_large = true;
			free(cc->body);
			cc->body = NULL;
			cc->body_len = 0;
			return MHD_YES;
		}
		{
			char *p = realloc(cc->body, cc->body_len + n + 1);

			if (!p)
				return MHD_NO;
			cc->body = p;
			memcpy(cc->body + cc->body_len, upload_data, n);
			cc->body_len += n;
			cc->body[cc->body_len] = '\0';
		}
		return MHD_YES;
	}
	if (cc->answered)
		return MHD_YES;
	cc->answered = true;
	return handle_and_send(s, conn, url, method, cc);
}

/* Resolves "host:port" into addr (the first address getaddrinfo gives). */
static bool resolve_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
			   size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char portbuf[16];
	char *host = NULL;
	int port = 0, rc;

	if (!listen || !config_split_hostport(listen, &host, &port) || port < 0 || port > 65535) {
		jsonf_set_err(err, errlen, "listen address \"%s\": expected host:port", listen ? listen : "");
		free(host);
		return false;
	}
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* "*" and "" mean every IPv4 address, as in Patroni's listen. */
	rc = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, portbuf, &hints, &res);
	if (rc != 0 || !res) {
		jsonf_set_err(err, errlen, "listen address \"%s\": %s", listen, rc ? gai_strerror(rc) : "no address");
		free(host);
		if (res)
			freeaddrinfo(res);
		return false;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	free(host);
	return true;
}

/* The whole of a PEM file (malloc'd, NUL-terminated); NULL + err naming it. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, n;

	if (!f) {
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(API_PEM_MAX + 1);
	if (!buf) {
		jsonf_set_err(err, errlen, "out of memory");
		goto fail;
	}
	while ((n = fread(buf + len, 1, API_PEM_MAX + 1 - len, f)) > 0)
		len += n;
	if (ferror(f)) {
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": %s", what, path, strerror(errno));
		goto fail;
	}
	if (len > API_PEM_MAX || len == 0 || memchr(buf, '\0', len) || !strstr(buf, "-----BEGIN ")) {
		buf[len > API_PEM_MAX ? API_PEM_MAX : len] = '\0';
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": not a PEM file", what, path);
		goto fail;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
fail:
	if (buf) {
		explicit_bzero(buf, len < API_PEM_MAX ? len : API_PEM_MAX);
		free(buf);
	}
	fclose(f);
	return NULL;
}

static void free_secret(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

/* Frees everything but the daemon and the mutex. */
static void server_free_parts(struct api_server *s)
{
	if (s->pg)
		pg_conn_free(s->pg);
	etcd_client_free(s->etcd);
	free(s->pg_conninfo);
	free_secret(s->auth_expected);
	free(s->tls_cert);
	free_secret(s->tls_key);
}

struct api_server *api_server_new(const struct api_options *opts, char *err, size_t errlen)
{
	struct api_server *s;

	if (!opts) {
		jsonf_set_err(err, errlen, "no options");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		jsonf_set_err(err, errlen, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		jsonf_set_err(err, errlen, "cannot create a mutex");
		return NULL;
	}
	s->status.lag = -1;
	if (opts->pg_conninfo && !(s->pg_conninfo = strdup(opts->pg_conninfo))) {
		jsonf_set_err(err, errlen, "out of memory");
		goto fail;
	}
	if (opts->auth_username) {
		size_t n;

		if (!opts->auth_password) {
			jsonf_set_err(err, errlen, "restapi.authentication: a username needs a password");
			goto fail;
		}
		if (strchr(opts->auth_username, ':')) {
			jsonf_set_err(err, errlen, "restapi.authentication: the username cannot contain ':'");
			goto fail;
		}
		n = strlen(opts->auth_username) + 1 + strlen(opts->auth_password) + 1;
		s->auth_expected = malloc(n);
		if (!s->auth_expected) {
			jsonf_set_err(err, errlen, "out of memory");
			goto fail;
		}
		snprintf(s->auth_expected, n, "%s:%s", opts->auth_username, opts->auth_password);
		s->auth_len = n - 1;
	}
	if ((opts->certfile == NULL) != (opts->keyfile == NULL)) {
		jsonf_set_err(err, errlen, "restapi: certfile and keyfile go together");
		goto fail;
	}
	if (opts->certfile) {
		s->tls_cert = read_pem("certfile", opts->certfile, err, errlen);
		if (!s->tls_cert)
			goto fail;
		s->tls_key = read_pem("keyfile", opts->keyfile, err, errlen);
		if (!s->tls_key)
			goto fail;
	}
	if (opts->etcd) {
		struct etcd_config ec = *opts->etcd;
		struct etcd_error e;

		if (!opts->scope || !dcs_keys_init(&s->keys, opts->namespace_ ? opts->namespace_ : "/baton",
						   opts->scope)) {
			jsonf_set_err(err, errlen, "restapi: invalid namespace or scope for etcd keys");
			goto fail;
		}
		snprintf(s->scope, sizeof(s->scope), "%s", opts->scope);
		/* The API's requests share one thread with the health checks:
		 * keep each one short. */
		if (ec.request_timeout <= 0 || ec.request_timeout > API_ETCD_TIMEOUT)
			ec.request_timeout = API_ETCD_TIMEOUT;
		if (ec.connect_timeout <= 0 || ec.connect_timeout > API_ETCD_CONNECT_TIMEOUT)
			ec.connect_timeout = API_ETCD_CONNECT_TIMEOUT;
		memset(&e, 0, sizeof(e));
		if (etcd_client_new(&ec, &s->etcd, &e) != ETCD_OK) {
			jsonf_set_err(err, errlen, "restapi: etcd client: %s", e.message);
			goto fail;
		}
	}
	return s;
fail:
	server_free_parts(s);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return NULL;
}

struct api_server *api_start_opts(const struct api_options *opts, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = 0;
	struct api_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

	if (!opts || !resolve_listen(opts->listen, &addr, &addrlen, err, errlen))
		return NULL;
	s = api_server_new(opts, err, errlen);
	if (!s)
		return NULL;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (s->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			jsonf_set_err(err, errlen, "restapi.certfile: this libmicrohttpd has no TLS support");
			api_stop(s);
			return NULL;
		}
		flags |= MHD_USE_TLS;
	}
	s->starting = true; /* no MHD thread yet: no lock needed */
	if (s->tls_cert)
		s->daemon = MHD_start_daemon(
			flags, 0, NULL, NULL, api_mhd_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_CONNECTION_LIMIT, MHD_OPTION_EXTERNAL_LOGGER,
			api_mhd_logger, s, MHD_OPTION_URI_LOG_CALLBACK, api_uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED,
			api_completed_cb, s, MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
			s->tls_key, MHD_OPTION_END);
	else
		s->daemon = MHD_start_daemon(
			flags, 0, NULL, NULL, api_mhd_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_CONNECTION_LIMIT, MHD_OPTION_EXTERNAL_LOGGER,
			api_mhd_logger, s, MHD_OPTION_URI_LOG_CALLBACK, api_uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED,
			api_completed_cb, s, MHD_OPTION_END);
	pthread_mutex_lock(&s->mu);
	s->starting = false;
	pthread_mutex_unlock(&s->mu);
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "cannot listen on %s: %s", opts->listen,
			      s->start_err[0] ? s->start_err : "libmicrohttpd refused to start");
		api_stop(s);
		return NULL;
	}
	return s;
}

struct api_server *api_start(const char *listen, const char *pg_conninfo, char *err, size_t errlen)
{
	struct api_options o;

	memset(&o, 0, sizeof(o));
	o.listen = listen;
	o.pg_conninfo = pg_conninfo;
	return api_start_opts(&o, err, errlen);
}

void api_publish(struct api_server *s, const struct api_status *st)
{
	if (!s || !st)
		return;
	pthread_mutex_lock(&s->mu);
	s->status = *st;
	s->have_status = true;
	s->published_at = mono_now();
	pthread_mutex_unlock(&s->mu);
}

void api_publish_metrics(struct api_server *s, const struct api_metrics *m)
{
	if (!s || !m)
		return;
	pthread_mutex_lock(&s->mu);
	s->metrics = *m;
	pthread_mutex_unlock(&s->mu);
}

void api_take_requests(struct api_server *s, struct api_requests *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	*out = s->requests;
	memset(&s->requests, 0, sizeof(s->requests));
	pthread_mutex_unlock(&s->mu);
}

void api_stop(struct api_server *s)
{
	if (!s)
		return;
	/* Stopping joins the MHD thread, so nothing uses s->pg or s->etcd
	 * afterwards. */
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	server_free_parts(s);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- client -------------------------------------------------------------- */

struct body {
	char *data;
	size_t len;
	bool too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (n > API_BODY_MAX - b->len) {
		b->too_big = true;
		return 0; /* makes libcurl fail with CURLE_WRITE_ERROR */
	}
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	b->data = p;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/*
 * One request to a peer's REST API: GET <api_url><path>, or POST with
 * post_body (JSON) and HTTP basic auth when user is set. Bounded by timeout
 * seconds in all; no proxy. On success *code is the HTTP status and
 * b->data the NUL-terminated answer (caller frees).
 */
static bool peer_request(const char *api_url, const char *path, const char *post_body, const char *user,
			 const char *password, double timeout, long *code, struct body *b, char *url, size_t urllen,
			 char *err, size_t errlen)
{
	CURL *curl = NULL;
	struct curl_slist *hdr = NULL;
	CURLcode rc;
	long ms;
	size_t ulen;
	int n;
	bool ok = false;

	if (!api_url || !*api_url || timeout <= 0) {
		jsonf_set_err(err, errlen, "invalid API URL or timeout");
		return false;
	}
	ulen = strlen(api_url);
	while (ulen > 0 && api_url[ulen - 1] == '/')
		ulen--;
	n = snprintf(url, urllen, "%.*s%s", (int)ulen, api_url, path);
	if (n < 0 || (size_t)n >= urllen) {
		jsonf_set_err(err, errlen, "API URL too long");
		return false;
	}
	ms = (long)(timeout * 1000.0);
	if (ms < 1)
		ms = 1;
	curl = curl_easy_init();
	if (!curl) {
		jsonf_set_err(err, errlen, "%s: cannot create a libcurl handle", url);
		return false;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
#endif
	    /* Peers are on the cluster's network: a proxy from the environment
	     * would only add a hop (and its own failures) to an election. */
	    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b) != CURLE_OK) {
		jsonf_set_err(err, errlen, "%s: cannot set up the request", url);
		goto cleanup;
	}
	if (post_body) {
		hdr = curl_slist_append(NULL, "Content-Type: application/json");
		if (!hdr || curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
		    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body) != CURLE_OK ||
		    (user && (curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
			      curl_easy_setopt(curl, CURLOPT_USERNAME, user) != CURLE_OK ||
			      curl_easy_setopt(curl, CURLOPT_PASSWORD, password ? password : "") != CURLE_OK))) {
			jsonf_set_err(err, errlen, "%s: cannot set up the request", url);
			goto cleanup;
		}
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		if (b->too_big)
			jsonf_set_err(err, errlen, "%s: answer larger than %d bytes", url, API_BODY_MAX);
		else
			jsonf_set_err(err, errlen, "%s: %s", url, curl_easy_strerror(rc));
		goto cleanup;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
	if (!b->data) {
		jsonf_set_err(err, errlen, "%s: HTTP %ld, empty answer", url, *code);
		goto cleanup;
	}
	if (strlen(b->data) != b->len) {
		jsonf_set_err(err, errlen, "%s: answer contains a NUL byte", url);
		goto cleanup;
	}
	ok = true;
cleanup:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	return ok;
}

bool api_get_status(const char *api_url, double timeout, struct api_status *out, char *err, size_t errlen)
{
	struct body b = { NULL, 0, false };
	char url[512], why[256];
	long code = 0;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!peer_request(api_url, "/status", NULL, NULL, NULL, timeout, &code, &b, url, sizeof(url), err, errlen))
		goto cleanup;
	if (code != 200) {
		jsonf_set_err(err, errlen, "%s: HTTP %ld", url, code);
		goto cleanup;
	}
	if (!api_status_from_json(b.data, out, why, sizeof(why))) {
		jsonf_set_err(err, errlen, "%s: unexpected answer: %s", url, why);
		goto cleanup;
	}
	ok = true;
cleanup:
	free(b.data);
	return ok;
}

bool api_post_failsafe(const char *api_url, const char *leader, double timeout, const char *user,
		       const char *password, char *err, size_t errlen)
{
	struct body b = { NULL, 0, false };
	char url[512], *req;
	json_t *o = json_pack("{s:s}", "leader", leader);
	long code = 0;
	bool ok = false;

	req = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!req) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	if (!peer_request(api_url, "/failsafe", req, user, password, timeout, &code, &b, url, sizeof(url), err,
			  errlen))
		goto cleanup;
	if (code != 200) {
		json_t *ans = json_loads(b.data, 0, NULL);
		const char *why = ans ? json_string_value(json_object_get(ans, "error")) : NULL;

		jsonf_set_err(err, errlen, "%s: HTTP %ld: %s", url, code, why ? why : "refused");
		json_decref(ans);
		goto cleanup;
	}
	ok = true;
cleanup:
	free(b.data);
	free(req);
	return ok;
}
