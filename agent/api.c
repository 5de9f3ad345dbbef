/*
 * api.c - the node's REST API (libmicrohttpd) and the client that asks
 * peers for their state.
 *
 * Two layers. api_handle() is the API's whole logic as a function from one
 * request (method, path, raw query, the headers that matter, what the
 * transport knows of the client, body bytes) to one reply (code, content
 * type, body): health checks for load balancers and Kubernetes, JSON views
 * of this node and of the cluster, the operator's write endpoints, and
 * Prometheus metrics. The libmicrohttpd glue below it only reads a request
 * (capping the body at 64 KiB: a larger one is answered 413 without being
 * read), calls api_handle and sends the reply. Tests and the fuzzers call
 * api_handle directly (api_internal.h) or feed raw bytes to the glue.
 *
 * Threads and slow clients (issue 10). The server runs in a pool of
 * API_THREADS libmicrohttpd threads, each with its own epoll set (no
 * FD_SETSIZE limit), so one handler waiting on etcd or Postgres does not
 * stop the others from answering. The total connection limit follows the
 * file descriptor limit (raised to its hard limit at start), and one
 * client address may hold only a quarter of it, so one host cannot take
 * every slot from the load balancer's probes. libmicrohttpd's own timeout
 * is an inactivity timeout that every trickled byte resets; so the server
 * tracks each connection (MHD_OPTION_NOTIFY_CONNECTION) and a reaper
 * thread shuts down the socket of one whose headers are not complete
 * API_HEADER_DEADLINE seconds after it was accepted (or after its previous
 * request ended), or whose body is not complete API_REQUEST_DEADLINE
 * seconds after that; libmicrohttpd then closes it as a dead peer.
 *
 * State. The loop hands the server a snapshot of the node's state with
 * api_publish() (copied under a mutex, with the monotonic time it arrived,
 * which /liveness checks); health checks and /metrics answer from it and
 * never wait for anything else. /status refreshes the LSNs and timeline
 * from the local Postgres when the snapshot says it runs (0.5 s per
 * connect/statement; on failure, or while another handler uses that
 * connection, it serves the snapshot: a candidate asking "are you ahead of
 * me?" gets an answer either way, and the published LSN is never newer than
 * the truth). The server's etcd client (short timeouts) serves /cluster,
 * /history, /config and the writes, one request at a time under its own
 * mutex; a handler that cannot take it within API_LOCK_WAIT answers 503.
 *
 * Writes: PATCH /config and POST /switchover, /failover go through ops.c
 * (validated against the cluster, compare-and-swap on the key); POST
 * /restart, /reload, /reinit, /failsafe and DELETE /restart set flags the
 * loop takes with api_take_requests(), and POST /restart then waits (bounded,
 * in its own worker thread) for the loop's api_restart_report(). Who may write (DESIGN.md rule 9): with
 * restapi.allow_unauthenticated_writes anyone (INSECURE, warned at every
 * start); otherwise only over TLS, with the restapi.authentication
 * credentials when they are set, else with a client certificate verified
 * against restapi.cafile (restapi.verify_client). Basic auth over plain
 * HTTP never authorises a write. A write must also say Content-Type:
 * application/json and carry no foreign Origin (a browser cannot send
 * either across origins without a preflight), and every request's Host
 * must be a name this node answers to (DNS rebinding). Each write is logged
 * once, accepted or refused, with the client's address, the user (or the
 * certificate's subject) and the method and path. Nothing a refused request
 * sends changes state: every check runs before the first write.
 *
 * The client side, which asks peers for their state, lives in peer.c; it
 * parses answers with api_status_from_json below.
 */
#include "agent/api.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
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
#define API_HEADER_DEADLINE 5.0      /* seconds from accept (or the previous answer) to complete headers */
#define API_REQUEST_DEADLINE 15.0    /* seconds from the same point to a complete body */
#define API_REAP_INTERVAL 0.25       /* seconds between two passes of the deadline reaper */
#define API_THREADS 8                /* libmicrohttpd worker threads */
#define API_CONNECTION_MAX 16384     /* total connections, at most (also bounded by RLIMIT_NOFILE) */
#define API_FD_RESERVE 256           /* descriptors left for the agent's other work */
#define API_LOCK_WAIT 0.5            /* seconds a handler waits for the etcd client */
#define API_HOSTS_MAX 64             /* names kept for the Host check */
#define API_BODY_MAX (64 * 1024)     /* largest answer api_get_status accepts */
#define API_PEM_MAX (1024 * 1024)    /* largest certificate or key file read */
#define API_LIVENESS_MIN 3.0         /* seconds: /liveness allows max(3 * loop_wait, this) */

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* GnuTLS priorities of the HTTPS server: TLS 1.2 and 1.3 only; in TLS 1.2
 * only forward-secret ECDHE key exchange with AEAD ciphers (no CBC, no RSA
 * key transport, no SHA-1 MACs). */
#define API_TLS_PRIORITIES                                                                                    \
	"SECURE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM:"  \
	"+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:%SAFE_RENEGOTIATION"

#define WRITE_CREDENTIALS_HINT                                                                                \
	"set restapi.authentication with restapi.certfile/keyfile, or restapi.verify_client, or (INSECURE) "   \
	"restapi.allow_unauthenticated_writes"

enum api_verify { VERIFY_NONE, VERIFY_OPTIONAL, VERIFY_REQUIRED };

/* One accepted connection, for the header deadline (socket context of
 * MHD_OPTION_NOTIFY_CONNECTION; linked in the server's list under sock_mu). */
struct api_sock {
	struct api_sock *prev, *next;
	int fd;
	double since;      /* monotonic: accepted, or the previous request ended */
	bool have_headers; /* the handler saw this request's headers */
	bool answered;     /* a reply was queued: no deadline until the next request */
	bool reaped;       /* shut down by the reaper */
};

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
	/* POST /restart waits for the loop's report (api_restart_report) */
	bool restart_attached;    /* a loop reports restart outcomes */
	bool restart_stopping;    /* api_stop: no report will come, stop waiting */
	uint64_t restart_seq;     /* the last request id handed out */
	uint64_t restart_done_id; /* the last request the loop finished */
	enum api_restart_outcome restart_done_outcome;
	char restart_done_msg[512];
	/* end of mutex-guarded fields */
	pthread_cond_t restart_cv; /* signalled on each report (CLOCK_MONOTONIC) */

	/* Set at creation, read-only afterwards (any handler thread). */
	char *pg_conninfo;        /* NULL: never refresh from Postgres */
	struct etcd_client *etcd; /* NULL: no etcd access configured; used under etcd_mu */
	struct dcs_keys keys;
	char scope[64];
	char *auth_expected;      /* "user:password" (NULL = no auth) */
	size_t auth_len;
	char *auth_user;          /* its user, for the write log */
	char *tls_cert, *tls_key; /* PEM text (NULL = plain HTTP) */
	char *tls_trust;          /* PEM CA bundle for client certificates (NULL = none asked) */
	enum api_verify verify;
	bool allow_unauth;        /* restapi.allow_unauthenticated_writes */
	char *hosts[API_HOSTS_MAX]; /* names the Host header may carry (lower case) */
	size_t n_hosts;

	pthread_mutex_t pg_mu;    /* guards pg (tried, never waited for) */
	struct pg_conn *pg;
	pthread_mutex_t etcd_mu;  /* one etcd request of the API at a time */

	/* Connections and the deadline reaper. */
	pthread_mutex_t sock_mu;  /* guards socks, reaper_stop, reaped */
	pthread_cond_t sock_cv;
	struct api_sock *socks;
	bool reaper_stop, reaper_running;
	pthread_t reaper;
	uint64_t reaped;          /* connections shut down for a missed deadline */
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

	if (hc == HC_REPLICA || hc == HC_SYNC || hc == HC_ASYNC || hc == HC_READ_ONLY) {
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
	uint64_t reaped;

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
	pthread_mutex_lock(&s->sock_mu);
	reaped = s->reaped;
	pthread_mutex_unlock(&s->sock_mu);
	metric_head(&b, "baton_rest_deadline_closed_total", "counter",
		    "REST connections closed for not sending their headers or body in time.");
	sb_printf(&b, "baton_rest_deadline_closed_total %" PRIu64 "\n", reaped);
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
	if (json_is_string(at) && (json_string_length(at) == 0 || api_parse_time(json_string_value(at), when)))
		return true;
	reply_error(out, MHD_HTTP_BAD_REQUEST,
		    "%s: expected an ISO 8601 time with a zone (2025-01-31T12:00:00Z) or unix seconds", key);
	return false;
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
	if (!parse_when(at, "scheduled_at", &when, out))
		return;
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
static void h_restart(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
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
		reply_error(out, MHD_HTTP_BAD_REQUEST, "%s", err[0] ? err : "the body must be a JSON object");
		return;
	}
	if (strcmp(role, "master") == 0)
		snprintf(role, sizeof(role), "primary");
	if (strcmp(role, "any") == 0)
		role[0] = '\0';
	if (role[0] && strcmp(role, "primary") != 0 && strcmp(role, "replica") != 0) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "role: expected primary, replica or any, not '%s'", role);
		return;
	}
	w = body ? json_object_get(body, "postgres_version") : NULL;
	if (w && !json_is_null(w)) {
		if (json_is_integer(w))
			snprintf(version, sizeof(version), "%" JSON_INTEGER_FORMAT, json_integer_value(w));
		else if (json_is_string(w))
			snprintf(version, sizeof(version), "%s", json_string_value(w));
		if (!parse_pg_version(version, &min_version)) {
			reply_error(out, MHD_HTTP_BAD_REQUEST,
				    "postgres_version: expected a version such as \"15.4\" or 150004");
			return;
		}
	}
	at = body ? json_object_get(body, "schedule") : NULL;
	if (!parse_when(at, "schedule", &when, out))
		return;
	if (at && !json_is_null(at)) {
		if (when > 0 && (double)when <= (double)time(NULL)) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: %s is not in the future",
				    json_is_string(at) ? json_string_value(at) : "the time given");
			return;
		}
		/* A restart planned further ahead than a switchover may be is a
		 * typo or a time bomb (issue 10, sane bounds). */
		if (when > 0 && when < (int64_t)INT32_MAX * 64 &&
		    !ops_check_schedule((time_t)when, time(NULL), "restart", why, sizeof(why))) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: %s", why);
			return;
		}
		if (when >= (int64_t)INT32_MAX * 64) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "schedule: out of range");
			return;
		}
	}
	w = body ? json_object_get(body, "wait") : NULL;
	if (w && !json_is_null(w)) {
		if (!json_is_number(w) || json_number_value(w) < 0 || json_number_value(w) > API_RESTART_WAIT_MAX_S) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "wait: expected a number of seconds from 0 to %.0f",
				    API_RESTART_WAIT_MAX_S);
			return;
		}
		wait = json_number_value(w);
	}
	have_st = snapshot(s, &st, NULL, NULL);
	if (role[0] && !have_st) {
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
		return;
	}
	if (role[0] && !role_matches(&st, role)) {
		reply_error(out, MHD_HTTP_PRECONDITION_FAILED, "restart not done: %s is not the %s (its role is %s)",
			    st.name, role, st.is_leader ? "primary" : st.role);
		return;
	}

	pthread_mutex_lock(&s->mu);
	if (when > 0) {
		double kept = s->requests.restart_at > 0 ? s->requests.restart_at : s->status.restart_scheduled_at;

		if (kept > 0 && !s->requests.restart_cancel) {
			char t[32];

			pthread_mutex_unlock(&s->mu);
			dcs_format_utc(kept, t, sizeof(t));
			reply_error(out, MHD_HTTP_CONFLICT,
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
			reply_json(out, MHD_HTTP_ACCEPTED,
				   json_pack("{s:s, s:s, s:b}", "accepted", "restart", "scheduled_at", t, "restart_pending",
					     (int)pending));
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
	s->requests.restart_arrived = mono_now();
	if (!s->restart_attached || wait <= 0) {
		pthread_mutex_unlock(&s->mu);
		reply_json(out, MHD_HTTP_ACCEPTED,
			   json_pack("{s:s, s:b, s:s}", "accepted", "restart", "restart_pending", (int)pending, "message",
				     "restart requested"));
		return;
	}
	deadline = mono_now() + wait;
	while (s->restart_done_id < id && !s->restart_stopping) {
		struct timespec ts;
		double left = deadline - mono_now();

		if (left <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)left;
		ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&s->restart_cv, &s->mu, &ts);
	}
	done = s->restart_done_id >= id;
	outcome = s->restart_done_outcome;
	snprintf(msg, sizeof(msg), "%s", s->restart_done_msg);
	pthread_mutex_unlock(&s->mu);
	if (!done)
		reply_json(out, MHD_HTTP_ACCEPTED,
			   json_pack("{s:s, s:b, s:s}", "accepted", "restart", "restart_pending", (int)pending, "message",
				     "restart in progress"));
	else if (outcome == API_RESTART_FAILED)
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", msg);
	else
		reply_json(out, MHD_HTTP_OK,
			   json_pack("{s:b, s:s}", "restarted", (int)(outcome == API_RESTART_DONE), "message", msg));
}

/* DELETE /restart: drops the scheduled restart (404 when there is none). */
static void h_restart_cancel(struct api_server *s, const struct api_request *rq, json_t *body,
			     struct api_reply *out)
{
	double at;
	char t[32];

	(void)rq;
	(void)body;
	pthread_mutex_lock(&s->mu);
	at = s->requests.restart_at > 0 ? s->requests.restart_at : s->status.restart_scheduled_at;
	if (at <= 0 || (s->requests.restart_at <= 0 && s->requests.restart_cancel)) {
		pthread_mutex_unlock(&s->mu);
		reply_error(out, MHD_HTTP_NOT_FOUND, "no restart is scheduled on %s",
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
	reply_json(out, MHD_HTTP_OK, json_pack("{s:s, s:s}", "cancelled", "restart", "scheduled_at", t));
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

enum { M_GET = 1, M_HEAD = 2, M_OPTIONS = 4, M_POST = 8, M_PATCH = 16, M_DELETE = 32 };

typedef void (*api_handler_fn)(struct api_server *s, const struct api_request *rq, json_t *body,
			       struct api_reply *out);

struct api_route {
	const char *path;
	unsigned int methods;
	const char *allow; /* every method the path takes, for 405 answers */
	api_handler_fn fn;
	bool etcd;         /* uses the server's etcd client (under etcd_mu) */
};

#define HEALTH_METHODS (M_GET | M_HEAD | M_OPTIONS)
#define HEALTH_ALLOW "GET, HEAD, OPTIONS"

static const struct api_route routes[] = {
	{ "/primary", HEALTH_METHODS, HEALTH_ALLOW, h_primary, false },
	{ "/leader", HEALTH_METHODS, HEALTH_ALLOW, h_primary, false },
	{ "/replica", HEALTH_METHODS, HEALTH_ALLOW, h_replica, false },
	{ "/read-only", HEALTH_METHODS, HEALTH_ALLOW, h_read_only, false },
	{ "/health", HEALTH_METHODS, HEALTH_ALLOW, h_health, false },
	{ "/liveness", HEALTH_METHODS, HEALTH_ALLOW, h_liveness, false },
	{ "/readiness", HEALTH_METHODS, HEALTH_ALLOW, h_readiness, false },
	{ "/sync", HEALTH_METHODS, HEALTH_ALLOW, h_sync, false },
	{ "/async", HEALTH_METHODS, HEALTH_ALLOW, h_async, false },
	{ "/status", M_GET | M_HEAD, "GET, HEAD", h_status, false },
	{ "/metrics", M_GET | M_HEAD, "GET, HEAD", h_metrics, false },
	{ "/cluster", M_GET | M_HEAD, "GET, HEAD", h_cluster, true },
	{ "/history", M_GET | M_HEAD, "GET, HEAD", h_history, true },
	{ "/config", M_GET | M_HEAD, "GET, HEAD, PATCH", h_config_get, true },
	{ "/config", M_PATCH, "GET, HEAD, PATCH", h_config_patch, true },
	{ "/switchover", M_POST, "POST", h_switchover, true },
	{ "/failover", M_POST, "POST", h_failover, true },
	{ "/restart", M_POST, "POST, DELETE", h_restart, false },
	{ "/restart", M_DELETE, "POST, DELETE", h_restart_cancel, false },
	{ "/reload", M_POST, "POST", h_reload, false },
	{ "/reinit", M_POST, "POST", h_reinit, false },
	{ "/failsafe", M_POST, "POST", h_failsafe, false },
};

static unsigned int method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} methods[] = { { "GET", M_GET }, { "HEAD", M_HEAD }, { "OPTIONS", M_OPTIONS }, { "POST", M_POST },
			{ "PATCH", M_PATCH }, { "DELETE", M_DELETE } };

	for (size_t i = 0; m && i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].bit;
	return 0;
}

/* ---- who may ask what (issue 10) ------------------------------------------- */

/* The host of a Host header value ("name", "name:port", "[v6]:port") in
 * lower case, without brackets; false when it is not of that form. */
static bool host_of(const char *hostport, char *out, size_t outlen)
{
	const char *p = hostport, *end;
	size_t n;

	if (!p || !*p)
		return false;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return false;
		p++;
		n = (size_t)(end - p);
		end++;
	} else {
		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
	}
	if (*end == ':') {
		end++;
		if (!*end || strspn(end, "0123456789") != strlen(end) || strlen(end) > 5)
			return false;
	} else if (*end) {
		return false;
	}
	if (n == 0 || n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%')
			return false;
		out[i] = (char)tolower(c);
	}
	/* "name." is "name" (the root label) */
	if (n > 1 && out[n - 1] == '.')
		n--;
	out[n] = '\0';
	return true;
}

/* True when the host of a Host header is one this node answers to. */
static bool host_allowed(const struct api_server *s, const char *hostport)
{
	char h[256];

	if (!host_of(hostport, h, sizeof(h)))
		return false;
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(h, s->hosts[i]) == 0)
			return true;
	return false;
}

/* True when an Origin is this node's own: the scheme of this connection and
 * the authority the request was sent to (its Host), or, without a Host,
 * one of this node's names. "null" and anything else is foreign. */
static bool origin_own(const struct api_server *s, const struct api_request *rq)
{
	const char *scheme = rq->tls ? "https://" : "http://";
	size_t n = strlen(scheme);
	const char *authority;

	if (strncasecmp(rq->origin, scheme, n) != 0)
		return false;
	authority = rq->origin + n;
	if (strchr(authority, '/'))
		return false;
	if (rq->host)
		return strcasecmp(authority, rq->host) == 0;
	return host_allowed(s, authority);
}

/* Content-Type: application/json, with parameters or not. */
static bool content_type_json(const char *ct)
{
	size_t n = strlen(JSON_TYPE);

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, JSON_TYPE, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Who the client proved to be, for the log: the user of the right
 * credentials, the subject of a verified certificate, or "anonymous". */
static const char *client_user(const struct api_server *s, const struct api_request *rq)
{
	if (s->auth_expected && rq->authorization && authorized(s, rq->authorization))
		return s->auth_user;
	if (rq->client_cert_verified && rq->client_subject)
		return rq->client_subject;
	return "anonymous";
}

/* Whether this request may write, by the rules in the file's opening
 * comment. On refusal fills out (401 or 403 with the keys to set). */
static bool write_allowed(const struct api_server *s, const struct api_request *rq, struct api_reply *out)
{
	bool creds = s->auth_expected && rq->authorization && authorized(s, rq->authorization);

	if (s->allow_unauth)
		return true;
	if (!rq->tls) {
		if (s->auth_expected || rq->authorization)
			reply_error(out, MHD_HTTP_FORBIDDEN,
				    "basic auth over plain HTTP never authorizes a write: set restapi.certfile and "
				    "restapi.keyfile (HTTPS) and send the credentials over TLS");
		else
			reply_error(out, MHD_HTTP_FORBIDDEN, "writes need credentials: " WRITE_CREDENTIALS_HINT);
		return false;
	}
	if (s->auth_expected) {
		if (creds)
			return true;
		reply_error(out, MHD_HTTP_UNAUTHORIZED,
			    "authentication required: the restapi.authentication credentials of this node");
		out->authenticate = true;
		return false;
	}
	if (s->verify != VERIFY_NONE) {
		if (rq->client_cert_verified)
			return true;
		reply_error(out, MHD_HTTP_FORBIDDEN,
			    "writes need a client certificate verified against restapi.cafile (restapi.verify_client)");
		return false;
	}
	reply_error(out, MHD_HTTP_FORBIDDEN, "writes need credentials: " WRITE_CREDENTIALS_HINT);
	return false;
}

/* Takes the etcd client's mutex, waiting at most API_LOCK_WAIT. */
static bool etcd_lock(struct api_server *s)
{
	struct timespec until;
	double end;

	clock_gettime(CLOCK_REALTIME, &until);
	end = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + API_LOCK_WAIT;
	until.tv_sec = (time_t)end;
	until.tv_nsec = (long)((end - (double)until.tv_sec) * 1e9);
	if (until.tv_nsec >= 1000000000L)
		until.tv_nsec = 999999999L;
	return pthread_mutex_timedlock(&s->etcd_mu, &until) == 0;
}

/* api_handle without the write log; true when the request was a write that
 * passed every check (its handler's answer may still refuse it). */
static bool handle(struct api_server *s, const struct api_request *rq, struct api_reply *out)
{
	const struct api_route *route = NULL;
	const char *allow = NULL;
	unsigned int bit = method_bit(rq->method);
	bool authorized = false;
	json_t *body = NULL;

	memset(out, 0, sizeof(*out));
	if (rq->framing_error) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed request: %s", rq->framing_error);
		return false;
	}
	if (!rq->host && rq->version && strcmp(rq->version, "HTTP/1.0") != 0) {
		reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed request: %s without a Host header", rq->version);
		return false;
	}
	/* DNS rebinding: a browser tricked into sending here says the
	 * attacker's name in Host. */
	if (rq->host && !host_allowed(s, rq->host)) {
		reply_error(out, 421 /* Misdirected Request */,
			    "Host \"%.200s\" is not a name this node answers to (add it to restapi.allowed_hosts)",
			    rq->host);
		return false;
	}
	if (s->verify == VERIFY_REQUIRED && !rq->client_cert_verified) {
		reply_error(out, MHD_HTTP_FORBIDDEN,
			    "a client certificate verified against restapi.cafile is required (restapi.verify_client "
			    "= \"required\")");
		return false;
	}
	if (rq->body_too_large) {
		reply_error(out, 413 /* Content Too Large; its MHD name changed in 0.9.74 */, "request body larger than %d bytes", API_REQUEST_BODY_MAX);
		return false;
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
		return false;
	}
	if (!route) {
		reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (allowed: %s)", allow);
		out->allow = allow;
		return false;
	}
	/* Every method that can change something: same origin, credentials,
	 * and a JSON content type (which a cross-origin form cannot send). */
	if (!(bit & (M_GET | M_HEAD | M_OPTIONS))) {
		if (rq->origin && !origin_own(s, rq)) {
			reply_error(out, MHD_HTTP_FORBIDDEN, "Origin \"%.200s\" is not this node's own: cross-origin writes are refused",
				    rq->origin);
			return false;
		}
		if (!write_allowed(s, rq, out))
			return false;
		if (!content_type_json(rq->content_type)) {
			reply_error(out, 415 /* Unsupported Media Type */, "writes need Content-Type: %s", JSON_TYPE);
			return false;
		}
		authorized = true;
	}
	if ((bit & (M_POST | M_PATCH)) && rq->body_len > 0) {
		json_error_t jerr;

		body = json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_DECODE_ANY, &jerr);
		if (!body) {
			reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed JSON: %s (line %d, column %d)", jerr.text,
				    jerr.line, jerr.column);
			return false;
		}
	}
	if (route->etcd && s->etcd) {
		if (!etcd_lock(s)) {
			reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE,
				    "busy: another etcd request of this REST API is in progress, retry");
		} else {
			route->fn(s, rq, body, out);
			pthread_mutex_unlock(&s->etcd_mu);
		}
	} else {
		route->fn(s, rq, body, out);
	}
	json_decref(body);
	return authorized;
}

/* A method or path for the log: printable ASCII only, bounded. */
static void log_safe(char *out, size_t len, const char *in)
{
	size_t j = 0;

	for (; in && *in && j + 1 < len; in++)
		out[j++] = (*in > 0x20 && *in < 0x7f) ? *in : '?';
	out[j] = '\0';
}

void api_handle(struct api_server *s, const struct api_request *rq, struct api_reply *out)
{
	unsigned int bit = method_bit(rq->method);
	char method[16], path[128];
	bool authorized = handle(s, rq, out);

	if (bit & (M_GET | M_HEAD | M_OPTIONS))
		return;
	/* Once per write (every other method): who asked what, and the
	 * answer. */
	log_safe(method, sizeof(method), rq->method ? rq->method : "?");
	log_safe(path, sizeof(path), rq->path ? rq->path : "?");
	if (authorized)
		log_info("REST API: %s %s from %s (user %s): authorized, answered %u", method, path,
			 rq->client ? rq->client : "unknown", client_user(s, rq), out->code);
	else
		log_warn("REST API: %s %s from %s (user %s): refused, %u %.300s", method, path,
			 rq->client ? rq->client : "unknown", client_user(s, rq), out->code, out->body ? out->body : "");
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

/* ---- connections and the header deadline ---------------------------------- */

/* MHD_OPTION_NOTIFY_CONNECTION: links a new connection into the list the
 * reaper walks, and unlinks it when MHD closes it. MHD calls the CLOSED
 * notification before it closes the socket, so under sock_mu the reaper
 * never shuts down a descriptor that was reused. */
static void api_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
				  enum MHD_ConnectionNotificationCode toe)
{
	struct api_server *s = cls;
	struct api_sock *k = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (k || !ci)
			return;
		k = calloc(1, sizeof(*k));
		if (!k)
			return; /* untracked: MHD's inactivity timeout still applies */
		k->fd = ci->connect_fd;
		k->since = mono_now();
		pthread_mutex_lock(&s->sock_mu);
		k->next = s->socks;
		if (s->socks)
			s->socks->prev = k;
		s->socks = k;
		pthread_mutex_unlock(&s->sock_mu);
		*socket_context = k;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	if (k->prev)
		k->prev->next = k->next;
	else
		s->socks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&s->sock_mu);
	free(k);
	*socket_context = NULL;
}

/* The handler saw a request's headers (answered false) or queued its
 * reply (answered true). */
static void sock_mark(struct api_server *s, struct MHD_Connection *conn, bool answered)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct api_sock *k = ci ? ci->socket_context : NULL;

	if (!k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	k->have_headers = true;
	if (answered)
		k->answered = true;
	pthread_mutex_unlock(&s->sock_mu);
}

/* A request ended: the next one's headers get a fresh deadline. */
static void sock_request_done(struct api_server *s, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct api_sock *k = ci ? ci->socket_context : NULL;

	if (!k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	k->have_headers = false;
	k->answered = false;
	k->since = mono_now();
	pthread_mutex_unlock(&s->sock_mu);
}

/* Shuts down the sockets of connections past their deadline; their
 * worker thread then sees end-of-file and closes them. */
static void *api_reaper(void *arg)
{
	struct api_server *s = arg;
	double last_report = mono_now();
	uint64_t reported = 0;

	pthread_mutex_lock(&s->sock_mu);
	while (!s->reaper_stop) {
		struct timespec until;
		double now = mono_now(), end;

		for (struct api_sock *k = s->socks; k; k = k->next) {
			double limit = k->have_headers ? API_REQUEST_DEADLINE : API_HEADER_DEADLINE;

			if (k->reaped || k->answered || now - k->since <= limit)
				continue;
			shutdown(k->fd, SHUT_RDWR);
			k->reaped = true;
			s->reaped++;
		}
		/* Once a minute at most, so an attack does not flood the log. */
		if (s->reaped != reported && now - last_report >= 60.0) {
			log_info("REST API: closed %" PRIu64 " connection(s) that did not send a request within %.0f s "
				 "(headers) or %.0f s (body)",
				 s->reaped - reported, API_HEADER_DEADLINE, API_REQUEST_DEADLINE);
			reported = s->reaped;
			last_report = now;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		end = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + API_REAP_INTERVAL;
		until.tv_sec = (time_t)end;
		until.tv_nsec = (long)((end - (double)until.tv_sec) * 1e9);
		if (until.tv_nsec >= 1000000000L)
			until.tv_nsec = 999999999L;
		pthread_cond_timedwait(&s->sock_cv, &s->sock_mu, &until);
	}
	pthread_mutex_unlock(&s->sock_mu);
	return NULL;
}

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

	(void)toe;
	sock_request_done(cls, conn);
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

/* Counts the headers that must appear at most once. */
struct header_count {
	unsigned int host, content_length, transfer_encoding;
	bool te_other; /* a Transfer-Encoding other than exactly "chunked" */
};

static api_mhd_result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_count *c = cls;

	(void)kind;
	if (!key)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		c->host++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		c->content_length++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		c->transfer_encoding++;
		/* "gzip, chunked" and the like: a proxy may frame it otherwise */
		c->te_other |= !value || strcasecmp(value, "chunked") != 0;
	}
	return MHD_YES;
}

/* What makes a request ambiguous to a proxy in front of us (request
 * smuggling) or to us; NULL when none. */
static const char *framing_error(struct MHD_Connection *conn)
{
	struct header_count c = { 0, 0, 0, false };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &c);
	if (c.host > 1)
		return "more than one Host header";
	if (c.content_length > 1)
		return "more than one Content-Length header";
	if (c.content_length && c.transfer_encoding)
		return "both Content-Length and Transfer-Encoding";
	if (c.transfer_encoding > 1)
		return "more than one Transfer-Encoding header";
	if (c.te_other)
		return "a Transfer-Encoding other than exactly \"chunked\"";
	return NULL;
}

/* The client's address as text ("unknown" when MHD has none). */
static void client_address(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t salen;

	snprintf(out, len, "unknown");
	if (!sa)
		return;
	salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, salen, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, len, "unknown");
}

/* TLS: whether the client presented a certificate that verifies against
 * the trust MHD was given (restapi.cafile), and its subject DN (control
 * characters replaced) into subject. */
static bool client_cert(struct MHD_Connection *conn, char *subject, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { NULL, 0 };
	unsigned int status = 0, n = 0;

	subject[0] = '\0';
	if (!session || gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
		return false;
	if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0)
		return false;
	certs = gnutls_certificate_get_peers(session, &n);
	if (!certs || n == 0)
		return false;
	if (gnutls_x509_crt_init(&crt) == GNUTLS_E_SUCCESS) {
		if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
		    gnutls_x509_crt_get_dn2(crt, &dn) == GNUTLS_E_SUCCESS) {
			snprintf(subject, len, "%.*s", (int)dn.size, (const char *)dn.data);
			gnutls_free(dn.data);
		}
		gnutls_x509_crt_deinit(crt);
	}
	for (char *c = subject; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (!subject[0])
		snprintf(subject, len, "(certificate without a subject)");
	return true;
}

static api_mhd_result handle_and_send(struct api_server *s, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version, struct api_conn *cc)
{
	struct api_request rq;
	struct api_reply r;
	api_mhd_result ret;
	char client[64], subject[256];

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = url;
	rq.query = cc->query;
	rq.version = version;
	rq.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	rq.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	rq.origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	rq.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	rq.framing_error = framing_error(conn);
	client_address(conn, client, sizeof(client));
	rq.client = client;
	rq.tls = s->tls_cert != NULL;
	if (rq.tls && s->tls_trust) {
		rq.client_cert_verified = client_cert(conn, subject, sizeof(subject));
		if (rq.client_cert_verified)
			rq.client_subject = subject;
	}
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

	if (!cc) {
		/* the URI callback ran out of memory */
		cc = calloc(1, sizeof(*cc));
		if (!cc)
			return MHD_NO;
		*con_cls = cc;
	}
	if (!cc->started) {
		/* Headers only: the header deadline is met. Refuse a declared
		 * oversized body or an ambiguous framing before reading the body
		 * (MHD then neither sends 100 Continue nor reads on). */
		cc->started = true;
		sock_mark(s, conn, false);
		if (framing_error(conn)) {
			cc->answered = true;
			return handle_and_send(s, conn, url, method, version, cc);
		}
		if (declared_too_large(conn)) {
			cc->too_large = true;
			cc->answered = true;
			return handle_and_send(s, conn, url, method, version, cc);
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
	sock_mark(s, conn, true);
	return handle_and_send(s, conn, url, method, version, cc);
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

/* Frees everything but the daemon (stopped before) and the reaper (joined
 * before). */
static void server_free(struct api_server *s)
{
	if (s->pg)
		pg_conn_free(s->pg);
	etcd_client_free(s->etcd);
	free(s->pg_conninfo);
	free_secret(s->auth_expected);
	free(s->auth_user);
	free(s->tls_cert);
	free_secret(s->tls_key);
	free(s->tls_trust);
	for (size_t i = 0; i < s->n_hosts; i++)
		free(s->hosts[i]);
	while (s->socks) {
		struct api_sock *k = s->socks;

		s->socks = k->next;
		free(k);
	}
	pthread_cond_destroy(&s->restart_cv);
	pthread_cond_destroy(&s->sock_cv);
	pthread_mutex_destroy(&s->sock_mu);
	pthread_mutex_destroy(&s->etcd_mu);
	pthread_mutex_destroy(&s->pg_mu);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Adds a name (lower-cased, without brackets or port) to the Host list;
 * duplicates are skipped. false on ENOMEM or a full list. */
static bool add_host(struct api_server *s, const char *name, char *err, size_t errlen)
{
	char buf[256];
	size_t n;

	if (!name || !*name)
		return true;
	n = strlen(name);
	if (name[0] == '[' && n > 2 && name[n - 1] == ']')
		snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), name + 1);
	else
		snprintf(buf, sizeof(buf), "%s", name);
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	n = strlen(buf);
	if (n > 1 && buf[n - 1] == '.')
		buf[n - 1] = '\0';
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i], buf) == 0)
			return true;
	if (s->n_hosts >= API_HOSTS_MAX) {
		jsonf_set_err(err, errlen, "restapi.allowed_hosts: more than %d names in all", API_HOSTS_MAX);
		return false;
	}
	if (!(s->hosts[s->n_hosts] = strdup(buf))) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	s->n_hosts++;
	return true;
}

/* The host of a "host:port" option (NULL when absent), added to the list;
 * *wildcard when it is one of the listen wildcards. */
static bool add_host_of(struct api_server *s, const char *hostport, bool *wildcard, char *err, size_t errlen)
{
	char *host = NULL;
	int port = 0;
	bool ok;

	if (!hostport)
		return true;
	if (!config_split_hostport(hostport, &host, &port))
		return true; /* resolve_listen names a bad listen address */
	if (!host[0] || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
	    strcmp(host, "[::]") == 0)
		*wildcard = true;
	ok = add_host(s, host, err, errlen);
	free(host);
	return ok;
}

/* The names a Host header may carry: listen and connect_address hosts,
 * localhost and the loopback addresses, this machine's name (and its first
 * label), restapi.allowed_hosts, and, when listening on every address,
 * every address of this machine's interfaces. */
static bool build_hosts(struct api_server *s, const struct api_options *opts, char *err, size_t errlen)
{
	static const char *const fixed[] = { "localhost", "127.0.0.1", "::1", "localhost.localdomain" };
	char name[256];
	bool wildcard = false;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!add_host(s, fixed[i], err, errlen))
			return false;
	if (!add_host_of(s, opts->listen, &wildcard, err, errlen) ||
	    !add_host_of(s, opts->connect_address, &wildcard, err, errlen))
		return false;
	if (gethostname(name, sizeof(name)) == 0) {
		name[sizeof(name) - 1] = '\0';
		if (!add_host(s, name, err, errlen))
			return false;
		if (strchr(name, '.')) {
			*strchr(name, '.') = '\0';
			if (!add_host(s, name, err, errlen))
				return false;
		}
	}
	for (size_t i = 0; i < opts->n_allowed_hosts; i++)
		if (!add_host(s, opts->allowed_hosts[i], err, errlen))
			return false;
	if (wildcard) {
		struct ifaddrs *ifa = NULL;

		if (getifaddrs(&ifa) == 0) {
			for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
				char a[INET6_ADDRSTRLEN + 8];
				socklen_t len;

				if (!p->ifa_addr || (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6))
					continue;
				len = p->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
									 : sizeof(struct sockaddr_in);
				if (getnameinfo(p->ifa_addr, len, a, sizeof(a), NULL, 0, NI_NUMERICHOST) != 0)
					continue;
				if (strchr(a, '%'))
					continue; /* link-local with a zone: not in a Host header */
				if (!add_host(s, a, err, errlen)) {
					freeifaddrs(ifa);
					return false;
				}
			}
			freeifaddrs(ifa);
		}
	}
	return true;
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
	if (pthread_mutex_init(&s->pg_mu, NULL) != 0 || pthread_mutex_init(&s->etcd_mu, NULL) != 0 ||
	    pthread_mutex_init(&s->sock_mu, NULL) != 0 || pthread_cond_init(&s->sock_cv, NULL) != 0) {
		/* glibc's init of a default mutex or condition cannot fail */
		jsonf_set_err(err, errlen, "cannot create a mutex");
		abort();
	}
	{
		pthread_condattr_t ca;

		/* POST /restart waits on it against the monotonic clock. */
		if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
		    pthread_cond_init(&s->restart_cv, &ca) != 0) {
			jsonf_set_err(err, errlen, "cannot create a condition variable");
			abort();
		}
		pthread_condattr_destroy(&ca);
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
		s->auth_user = strdup(opts->auth_username);
		if (!s->auth_expected || !s->auth_user) {
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
	if (!opts->verify_client || strcmp(opts->verify_client, "none") == 0) {
		s->verify = VERIFY_NONE;
	} else if (strcmp(opts->verify_client, "optional") == 0 || strcmp(opts->verify_client, "required") == 0) {
		s->verify = opts->verify_client[0] == 'o' ? VERIFY_OPTIONAL : VERIFY_REQUIRED;
		if (!opts->certfile || !opts->cafile) {
			jsonf_set_err(err, errlen,
				      "restapi.verify_client = \"%s\" needs restapi.certfile and restapi.keyfile (HTTPS) "
				      "and restapi.cafile (the CA that signs the client certificates)%s%s",
				      opts->verify_client, !opts->certfile ? "; restapi.certfile is not set" : "",
				      !opts->cafile ? "; restapi.cafile is not set" : "");
			goto fail;
		}
		s->tls_trust = read_pem("cafile", opts->cafile, err, errlen);
		if (!s->tls_trust)
			goto fail;
	} else {
		jsonf_set_err(err, errlen, "restapi.verify_client \"%s\": must be \"none\", \"optional\" or \"required\"",
			      opts->verify_client);
		goto fail;
	}
	s->allow_unauth = opts->allow_unauthenticated_writes;
	if (!build_hosts(s, opts, err, errlen))
		goto fail;
	if (opts->etcd) {
		struct etcd_config ec = *opts->etcd;
		struct etcd_error e;

		if (!opts->scope || !dcs_keys_init(&s->keys, opts->namespace_ ? opts->namespace_ : "/baton",
						   opts->scope)) {
			jsonf_set_err(err, errlen, "restapi: invalid namespace or scope for etcd keys");
			goto fail;
		}
		snprintf(s->scope, sizeof(s->scope), "%s", opts->scope);
		/* A handler holds a worker thread while it waits for etcd:
		 * keep each request short. */
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
	server_free(s);
	return NULL;
}

/* Raises the soft limit on open files to the hard one; returns the soft
 * limit in force. */
static rlim_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("REST API: raised the open files limit from %lu to %lu", (unsigned long)old,
				  (unsigned long)rl.rlim_cur);
		else if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return 1024;
	}
	return rl.rlim_cur;
}

/* Logs, at every start, what this node's write rules amount to when they
 * are not the safe default. */
static void warn_write_rules(const struct api_server *s)
{
	if (s->allow_unauth) {
		log_warn("REST API: INSECURE: restapi.allow_unauthenticated_writes = true: anyone who reaches this "
			 "port can change the cluster (PATCH /config, switchover, failover, restart, reinit)");
		return;
	}
	if (!s->tls_cert)
		log_warn("REST API: writes are refused: this node serves plain HTTP (no restapi.certfile), over "
			 "which no credentials authorise a write; %s", WRITE_CREDENTIALS_HINT);
	else if (!s->auth_expected && s->verify == VERIFY_NONE)
		log_warn("REST API: writes are refused: neither restapi.authentication nor restapi.verify_client "
			 "is set; %s", WRITE_CREDENTIALS_HINT);
}

struct api_server *api_start_opts(const struct api_options *opts, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = 0;
	struct api_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	unsigned int limit, per_ip;
	rlim_t nofile;
	struct MHD_OptionItem tls_opts[5];
	size_t n_tls = 0;

	if (!opts || !resolve_listen(opts->listen, &addr, &addrlen, err, errlen))
		return NULL;
	s = api_server_new(opts, err, errlen);
	if (!s)
		return NULL;
	/* epoll where it exists (Linux), poll elsewhere: no FD_SETSIZE cap. */
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (s->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			jsonf_set_err(err, errlen, "restapi.certfile: this libmicrohttpd has no TLS support");
			api_stop(s);
			return NULL;
		}
		flags |= MHD_USE_TLS;
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert };
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key };
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)API_TLS_PRIORITIES };
		/* A trust list makes MHD ask for (not require) a client
		 * certificate; the handler checks it. */
		if (s->tls_trust)
			tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_trust };
	}
	tls_opts[n_tls] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	/* Two descriptors per connection at worst (its socket, and the epoll
	 * registrations are free); keep a reserve for the agent. */
	nofile = raise_nofile();
	limit = nofile > API_FD_RESERVE + 64 ? (unsigned int)(nofile - API_FD_RESERVE) : 64;
	if (limit > API_CONNECTION_MAX)
		limit = API_CONNECTION_MAX;
	per_ip = limit / 4 > 16 ? limit / 4 : 16;
	s->starting = true; /* no MHD thread yet: no lock needed */
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, api_mhd_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)API_THREADS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)API_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_EXTERNAL_LOGGER, api_mhd_logger, s, MHD_OPTION_URI_LOG_CALLBACK, api_uri_cb, s,
		MHD_OPTION_NOTIFY_COMPLETED, api_completed_cb, s, MHD_OPTION_NOTIFY_CONNECTION, api_notify_connection,
		s, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
	pthread_mutex_lock(&s->mu);
	s->starting = false;
	pthread_mutex_unlock(&s->mu);
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "cannot listen on %s: %s", opts->listen,
			      s->start_err[0] ? s->start_err : "libmicrohttpd refused to start");
		api_stop(s);
		return NULL;
	}
	if (pthread_create(&s->reaper, NULL, api_reaper, s) != 0) {
		jsonf_set_err(err, errlen, "cannot start the REST API's connection reaper thread");
		api_stop(s);
		return NULL;
	}
	s->reaper_running = true;
	log_info("REST API: %u worker threads, at most %u connections (%u per client address), headers due "
		 "within %.0f s%s",
		 (unsigned int)API_THREADS, limit, per_ip, API_HEADER_DEADLINE,
		 s->tls_cert ? (s->verify == VERIFY_REQUIRED   ? ", TLS 1.2+ with client certificates required"
				: s->verify == VERIFY_OPTIONAL ? ", TLS 1.2+ with client certificates verified"
							       : ", TLS 1.2+")
			     : "");
	warn_write_rules(s);
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

/* ---- driving the glue without a listening socket (the HTTP fuzzer) ---------- */

bool api_external_start(struct api_server *s, char *err, size_t errlen)
{
	if (!s || s->daemon) {
		jsonf_set_err(err, errlen, "no server, or one already running");
		return false;
	}
	s->starting = true;
	s->daemon = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, api_mhd_handler, s,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT,
				     MHD_OPTION_EXTERNAL_LOGGER, api_mhd_logger, s, MHD_OPTION_URI_LOG_CALLBACK,
				     api_uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED, api_completed_cb, s,
				     MHD_OPTION_NOTIFY_CONNECTION, api_notify_connection, s, MHD_OPTION_END);
	s->starting = false;
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "libmicrohttpd: %s", s->start_err[0] ? s->start_err : "refused to start");
		return false;
	}
	return true;
}

bool api_external_add(struct api_server *s, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	return s && s->daemon && MHD_add_connection(s->daemon, fd, addr, addrlen) == MHD_YES;
}

unsigned int api_external_run(struct api_server *s)
{
	const union MHD_DaemonInfo *di;

	if (!s || !s->daemon)
		return 0;
	(void)MHD_run(s->daemon);
	di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di ? di->num_connections : 0;
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
	/* A POST /restart waiting for the loop's report answers now. */
	pthread_mutex_lock(&s->mu);
	s->restart_stopping = true;
	pthread_cond_broadcast(&s->restart_cv);
	pthread_mutex_unlock(&s->mu);
	/* Stopping joins the MHD threads, so nothing uses s->pg or s->etcd
	 * afterwards; the reaper goes first, so it never touches a socket MHD
	 * is closing on its way out. */
	if (s->reaper_running) {
		pthread_mutex_lock(&s->sock_mu);
		s->reaper_stop = true;
		pthread_cond_signal(&s->sock_cv);
		pthread_mutex_unlock(&s->sock_mu);
		pthread_join(s->reaper, NULL);
	}
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	server_free(s);
}
