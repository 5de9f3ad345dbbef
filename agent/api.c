/*
 * api.c - the node's REST API (libmicrohttpd): what a request may ask and
 * who may ask it, and the handler that answers.
 *
 * Two layers. api_handle() is the API's whole logic as a function from one
 * request (method, path, raw query, the headers that matter, what the
 * transport knows of the client, body bytes) to one reply (code, content
 * type, body): health checks for load balancers and Kubernetes, JSON views
 * of this node and of the cluster, the operator's write endpoints, and
 * Prometheus metrics. The libmicrohttpd glue (api_http.c) only reads a
 * request (capping the body at 64 KiB: a larger one is answered 413 without
 * being read), calls api_handle and sends the reply. Tests and the fuzzers
 * call api_handle directly (api_internal.h) or feed raw bytes to the glue.
 *
 * This file is the dispatch: the route table, and every check a request
 * passes before its handler runs. Who may write (DESIGN.md rule 9): with
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
 * The API's other files, one concern each (they share api_internal.h):
 *   api_health.c   /status and the health checks, from the loop's snapshot;
 *   api_metrics.c  /metrics;
 *   api_cluster.c  the cluster's keys and the operator's writes (/cluster,
 *                  /history, /config, switchover, failover, restart,
 *                  reload, reinit, failsafe);
 *   api_server.c   the server's state: made from the options, published by
 *                  the loop;
 *   api_http.c     libmicrohttpd: TLS, worker threads, deadlines, limits;
 *   api_parse.c    the byte-count and time parsers of query and body.
 * The client side, which asks peers for their state, lives in peer.c.
 */
#include "agent/api.h"
#include "agent/clock.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/parse.h"

#define API_LOCK_WAIT 0.5 /* seconds a handler waits for the etcd client */

/* ---- credentials ----------------------------------------------------------- */

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
	decoded = n ? parse_base64_decode(p, n, &len) : NULL;
	if (!decoded)
		return false;
	ok = ct_equal(decoded, len, s->auth_expected, s->auth_len);
	explicit_bzero(decoded, len);
	free(decoded);
	return ok;
}

/* ---- replies ------------------------------------------------------------- */

/* Takes root (a new reference, may be NULL on ENOMEM). */
void api_reply_json(struct api_reply *out, unsigned int code, json_t *root)
{
	out->code = code;
	out->content_type = JSON_TYPE;
	out->body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	out->body_len = out->body ? strlen(out->body) : 0;
	json_decref(root);
}

void api_reply_error(struct api_reply *out, unsigned int code, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	api_reply_json(out, code, json_pack("{s:s}", "error", msg));
}

void api_reply_free(struct api_reply *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- dispatch -------------------------------------------------------------- */

enum { M_GET = 1, M_HEAD = 2, M_OPTIONS = 4, M_POST = 8, M_PATCH = 16, M_DELETE = 32, M_PUT = 64 };

struct api_route {
	const char *path;
	unsigned int methods;
	const char *allow; /* every method the path takes, for 405 answers */
	api_handler_fn fn;
	bool etcd; /* uses the server's etcd client (under etcd_mu) */
};

#define HEALTH_METHODS (M_GET | M_HEAD | M_OPTIONS)
#define HEALTH_ALLOW "GET, HEAD, OPTIONS"

/* Patroni's paths (issue 13) answer as Patroni does: "/" and "/master",
 * "/read-write" are "/primary"; "/synchronous", "/asynchronous" are
 * "/sync", "/async"; "/reinitialize" is "/reinit". */
static const struct api_route routes[] = {
	{ "/", HEALTH_METHODS, HEALTH_ALLOW, api_h_primary, false },
	{ "/primary", HEALTH_METHODS, HEALTH_ALLOW, api_h_primary, false },
	{ "/master", HEALTH_METHODS, HEALTH_ALLOW, api_h_primary, false },
	{ "/read-write", HEALTH_METHODS, HEALTH_ALLOW, api_h_primary, false },
	{ "/leader", HEALTH_METHODS, HEALTH_ALLOW, api_h_leader, false },
	{ "/standby-leader", HEALTH_METHODS, HEALTH_ALLOW, api_h_standby_leader, false },
	{ "/replica", HEALTH_METHODS, HEALTH_ALLOW, api_h_replica, false },
	{ "/read-only", HEALTH_METHODS, HEALTH_ALLOW, api_h_read_only, false },
	{ "/read-only-sync", HEALTH_METHODS, HEALTH_ALLOW, api_h_read_only_sync, false },
	{ "/health", HEALTH_METHODS, HEALTH_ALLOW, api_h_health, false },
	{ "/liveness", HEALTH_METHODS, HEALTH_ALLOW, api_h_liveness, false },
	{ "/readiness", HEALTH_METHODS, HEALTH_ALLOW, api_h_readiness, false },
	{ "/sync", HEALTH_METHODS, HEALTH_ALLOW, api_h_sync, false },
	{ "/synchronous", HEALTH_METHODS, HEALTH_ALLOW, api_h_sync, false },
	{ "/async", HEALTH_METHODS, HEALTH_ALLOW, api_h_async, false },
	{ "/asynchronous", HEALTH_METHODS, HEALTH_ALLOW, api_h_async, false },
	{ "/quorum", HEALTH_METHODS, HEALTH_ALLOW, api_h_quorum, false },
	{ "/patroni", HEALTH_METHODS, HEALTH_ALLOW, api_h_patroni, false },
	{ "/status", M_GET | M_HEAD, "GET, HEAD", api_h_status, false },
	{ "/metrics", M_GET | M_HEAD, "GET, HEAD", api_h_metrics, false },
	{ "/cluster", M_GET | M_HEAD, "GET, HEAD", api_h_cluster, true },
	{ "/history", M_GET | M_HEAD, "GET, HEAD", api_h_history, true },
	{ "/config", M_GET | M_HEAD, "GET, HEAD, PATCH, PUT", api_h_config_get, true },
	{ "/config", M_PATCH, "GET, HEAD, PATCH, PUT", api_h_config_patch, true },
	{ "/config", M_PUT, "GET, HEAD, PATCH, PUT", api_h_config_put, true },
	{ "/switchover", M_POST, "POST, DELETE", api_h_switchover, true },
	{ "/switchover", M_DELETE, "POST, DELETE", api_h_switchover_cancel, true },
	{ "/failover", M_POST, "POST", api_h_failover, true },
	{ "/restart", M_POST, "POST, DELETE", api_h_restart, false },
	{ "/restart", M_DELETE, "POST, DELETE", api_h_restart_cancel, false },
	{ "/reload", M_POST, "POST", api_h_reload, false },
	{ "/reinit", M_POST, "POST", api_h_reinit, false },
	{ "/reinitialize", M_POST, "POST", api_h_reinit, false },
	{ "/failsafe", M_POST, "POST", api_h_failsafe, false },
};

static unsigned int method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} methods[] = { { "GET", M_GET },     { "HEAD", M_HEAD },     { "OPTIONS", M_OPTIONS }, { "POST", M_POST },
		        { "PATCH", M_PATCH }, { "DELETE", M_DELETE }, { "PUT", M_PUT } };

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
			api_reply_error(out, MHD_HTTP_FORBIDDEN,
			                "basic auth over plain HTTP never authorizes a write: set restapi.certfile and "
			                "restapi.keyfile (HTTPS) and send the credentials over TLS");
		else
			api_reply_error(out, MHD_HTTP_FORBIDDEN, "writes need credentials: " WRITE_CREDENTIALS_HINT);
		return false;
	}
	if (s->auth_expected) {
		if (creds)
			return true;
		api_reply_error(out, MHD_HTTP_UNAUTHORIZED,
		                "authentication required: the restapi.authentication credentials of this node");
		out->authenticate = true;
		return false;
	}
	if (s->verify != VERIFY_NONE) {
		if (rq->client_cert_verified)
			return true;
		api_reply_error(
		        out, MHD_HTTP_FORBIDDEN,
		        "writes need a client certificate verified against restapi.cafile (restapi.verify_client)");
		return false;
	}
	api_reply_error(out, MHD_HTTP_FORBIDDEN, "writes need credentials: " WRITE_CREDENTIALS_HINT);
	return false;
}

/* restapi.allowlist: may a write come from the client's address? (No list:
 * from anywhere; an unknown address never matches a list.) */
static bool client_listed(const struct api_server *s, const struct api_request *rq)
{
	if (s->n_allowlist == 0)
		return true;
	for (size_t i = 0; i < s->n_allowlist; i++)
		if (parse_net_contains(&s->allowlist[i], rq->client))
			return true;
	return false;
}

/* Takes the etcd client's mutex, waiting at most API_LOCK_WAIT. */
static bool etcd_lock(struct api_server *s)
{
	struct timespec until;

	clk_wall_after(API_LOCK_WAIT, &until);
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
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed request: %s", rq->framing_error);
		return false;
	}
	if (!rq->host && rq->version && strcmp(rq->version, "HTTP/1.0") != 0) {
		api_reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed request: %s without a Host header", rq->version);
		return false;
	}
	/* DNS rebinding: a browser tricked into sending here says the
	 * attacker's name in Host. */
	if (rq->host && !host_allowed(s, rq->host)) {
		api_reply_error(out, 421 /* Misdirected Request */,
		                "Host \"%.200s\" is not a name this node answers to (add it to restapi.allowed_hosts)",
		                rq->host);
		return false;
	}
	if (s->verify == VERIFY_REQUIRED && !rq->client_cert_verified) {
		api_reply_error(out, MHD_HTTP_FORBIDDEN,
		                "a client certificate verified against restapi.cafile is required (restapi.verify_client "
		                "= \"required\")");
		return false;
	}
	if (rq->body_too_large) {
		api_reply_error(out, 413 /* Content Too Large; its MHD name changed in 0.9.74 */,
		                "request body larger than %d bytes", API_REQUEST_BODY_MAX);
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
		api_reply_error(out, MHD_HTTP_NOT_FOUND, "not found");
		return false;
	}
	if (!route) {
		api_reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (allowed: %s)", allow);
		out->allow = allow;
		return false;
	}
	/* Every method that can change something: same origin, credentials,
	 * and a JSON content type (which a cross-origin form cannot send). */
	if (!(bit & (M_GET | M_HEAD | M_OPTIONS))) {
		if (rq->origin && !origin_own(s, rq)) {
			api_reply_error(out, MHD_HTTP_FORBIDDEN,
			                "Origin \"%.200s\" is not this node's own: cross-origin writes are refused",
			                rq->origin);
			return false;
		}
		if (!client_listed(s, rq)) {
			api_reply_error(out, MHD_HTTP_FORBIDDEN,
			                "writes from %.64s are refused: not in restapi.allowlist",
			                rq->client ? rq->client : "an unknown address");
			return false;
		}
		if (!write_allowed(s, rq, out))
			return false;
		if (!content_type_json(rq->content_type)) {
			api_reply_error(out, 415 /* Unsupported Media Type */, "writes need Content-Type: %s",
			                JSON_TYPE);
			return false;
		}
		authorized = true;
	}
	if ((bit & (M_POST | M_PATCH | M_PUT)) && rq->body_len > 0) {
		json_error_t jerr;

		body = json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_DECODE_ANY, &jerr);
		if (!body) {
			api_reply_error(out, MHD_HTTP_BAD_REQUEST, "malformed JSON: %s (line %d, column %d)", jerr.text,
			                jerr.line, jerr.column);
			return false;
		}
	}
	if (route->etcd && s->etcd) {
		if (!etcd_lock(s)) {
			api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE,
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

/* Refused writes are logged one by one up to REFUSED_LOG_BURST per
 * REFUSED_LOG_WINDOW seconds, then counted: anyone who reaches the port
 * can send them, and a flood must not bury the agent's own lines (nor
 * trip journald's rate limit for the unit). */
#define REFUSED_LOG_BURST 100
#define REFUSED_LOG_WINDOW 10.0
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static double refused_window_at;
static unsigned refused_logged, refused_counted;
static char refused_last_client[64];

/* Whether this refusal gets its own line; says how many were counted when
 * a window with more than the burst ends. */
static bool refused_log_allowed(const char *client)
{
	double now = clk_mono();
	unsigned counted = 0;
	char who[sizeof(refused_last_client)] = "";
	bool allowed;

	pthread_mutex_lock(&refused_mu);
	if (now - refused_window_at >= REFUSED_LOG_WINDOW) {
		counted = refused_counted;
		snprintf(who, sizeof(who), "%s", refused_last_client);
		refused_window_at = now;
		refused_logged = refused_counted = 0;
	}
	allowed = refused_logged < REFUSED_LOG_BURST;
	if (allowed) {
		refused_logged++;
	} else {
		refused_counted++;
		snprintf(refused_last_client, sizeof(refused_last_client), "%s", client);
	}
	pthread_mutex_unlock(&refused_mu);
	if (counted)
		log_warn("REST API: %u more refused writes in the last %.0f s not logged one by one (the last from %s)",
		         counted, REFUSED_LOG_WINDOW, who);
	return allowed;
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
	else if (refused_log_allowed(rq->client ? rq->client : "unknown"))
		log_warn("REST API: %s %s from %s (user %s): refused, %u %.300s", method, path,
		         rq->client ? rq->client : "unknown", client_user(s, rq), out->code,
		         out->body ? out->body : "");
}
