/*
 * api.c - the node's REST API (libmicrohttpd) and the client that asks
 * peers for their state.
 *
 * The server runs in libmicrohttpd's one internal polling thread, so
 * requests are answered one after another; that is plenty for probes and
 * election polls, and it keeps the Postgres connection used by /status
 * private to that thread. The loop hands the server a snapshot of the
 * node's state with api_publish() (copied under a mutex); /status serves
 * that snapshot, with the LSNs and timeline refreshed from the local
 * Postgres when the snapshot says it runs. The refresh is bounded (0.5 s
 * per connect/statement) and any failure just serves the snapshot: a
 * candidate asking "are you ahead of me?" gets an answer either way, and
 * the published LSN is never newer than the truth.
 *
 * The client side (api_get_status) is a bounded libcurl GET whose answer
 * is checked field by field: peers are trusted no more than etcd is.
 * Neither side calls curl_global_init: programs do that once in main().
 */
#include "agent/api.h"

#include <float.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>

#include "agent/config.h"
#include "agent/jsonf.h"
#include "agent/log.h"
#include "pg/pg_query.h"

#define API_PG_TIMEOUT 0.5           /* seconds, per connect and statement */
#define API_CONNECTION_TIMEOUT 5     /* seconds an idle client may hold a connection */
#define API_CONNECTION_LIMIT 16
#define API_BODY_MAX (64 * 1024)     /* largest answer api_get_status accepts */

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
	struct api_requests requests; /* queued by POSTs, taken by the loop */
	bool starting;            /* MHD messages go to start_err while true */
	char start_err[256];
	/* end of mutex-guarded fields */

	char *pg_conninfo;        /* NULL: never refresh from Postgres */
	struct pg_conn *pg;       /* used only by the MHD thread */
};

/* ---- status JSON --------------------------------------------------------- */

char *api_status_json(const struct api_status *st)
{
	json_t *root;
	char *s = NULL;

	root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:b, s:f}", "name", st->name,
			 "scope", st->scope, "role", st->role, "state", st->state, "leader", st->leader,
			 "is_leader", (int)st->is_leader, "pg_running", (int)st->pg_running, "timeline",
			 (json_int_t)st->timeline, "lsn", (json_int_t)st->lsn, "receive_lsn",
			 (json_int_t)st->receive_lsn, "replay_lsn", (json_int_t)st->replay_lsn, "nofailover",
			 (int)st->nofailover, "lease_ttl_left", st->lease_ttl_left);
	if (root)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

bool api_status_from_json(const char *json, struct api_status *out, char *err, size_t errlen)
{
	static const char *const roles[] = { "primary", "replica", "uninitialized", "stopped" };
	json_int_t timeline = 0, lsn = 0, receive = 0, replay = 0;
	json_error_t jerr;
	json_t *root;
	bool ok = false, known = false;

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
	    !jsonf_bool(root, "nofailover", JSONF_OPTIONAL, &out->nofailover, err, errlen))
		goto cleanup;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		known = known || strcmp(out->role, roles[i]) == 0;
	if (!known) {
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
	ok = true;
cleanup:
	json_decref(root);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}

/* ---- server -------------------------------------------------------------- */

/* MHD's error messages: captured into start_err while api_start runs (so
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

/* Queues body (malloc'd, freed by MHD) with the given status code. */
static api_mhd_result respond(struct MHD_Connection *conn, unsigned int code, char *body)
{
	struct MHD_Response *resp;
	api_mhd_result ret;

	if (!body)
		return MHD_NO; /* out of memory: MHD closes the connection */
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static api_mhd_result respond_error(struct MHD_Connection *conn, unsigned int code, const char *msg)
{
	json_t *root = json_pack("{s:s}", "error", msg);
	char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;

	json_decref(root);
	return respond(conn, code, body);
}

/* Overwrites the snapshot's position with what the local Postgres says now.
 * Runs in the MHD thread only. Failure leaves st as it was. */
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

static api_mhd_result handle_status(struct api_server *s, struct MHD_Connection *conn)
{
	struct api_status st;
	bool have;

	pthread_mutex_lock(&s->mu);
	st = s->status;
	have = s->have_status;
	pthread_mutex_unlock(&s->mu);
	if (!have)
		return respond_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
	refresh_from_pg(s, &st);
	return respond(conn, MHD_HTTP_OK, api_status_json(&st));
}

static api_mhd_result api_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api_server *s = cls;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	/* Bodies are never used: drop whatever a client uploads. */
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (strcmp(url, "/status") == 0)
		return handle_status(s, conn);
	return respond_error(conn, MHD_HTTP_NOT_FOUND, "not found");
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

struct api_server *api_start(const char *listen, const char *pg_conninfo, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = 0;
	struct api_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

	if (!resolve_listen(listen, &addr, &addrlen, err, errlen))
		return NULL;
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
	if (pg_conninfo) {
		s->pg_conninfo = strdup(pg_conninfo);
		if (!s->pg_conninfo) {
			jsonf_set_err(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->starting = true; /* no MHD thread yet: no lock needed */
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, api_handler, s, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned int)API_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned int)API_CONNECTION_LIMIT, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_logger, s,
				     MHD_OPTION_END);
	pthread_mutex_lock(&s->mu);
	s->starting = false;
	pthread_mutex_unlock(&s->mu);
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "cannot listen on %s: %s", listen,
			s->start_err[0] ? s->start_err : "libmicrohttpd refused to start");
		goto fail;
	}
	return s;
fail:
	pthread_mutex_destroy(&s->mu);
	free(s->pg_conninfo);
	free(s);
	return NULL;
}

void api_publish(struct api_server *s, const struct api_status *st)
{
	if (!s || !st)
		return;
	pthread_mutex_lock(&s->mu);
	s->status = *st;
	s->have_status = true;
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
	/* Stopping joins the MHD thread, so nothing uses s->pg afterwards. */
	MHD_stop_daemon(s->daemon);
	if (s->pg)
		pg_conn_free(s->pg);
	pthread_mutex_destroy(&s->mu);
	free(s->pg_conninfo);
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

bool api_get_status(const char *api_url, double timeout, struct api_status *out, char *err, size_t errlen)
{
	struct body b = { NULL, 0, false };
	char url[512];
	CURL *curl = NULL;
	CURLcode rc;
	long code = 0, ms;
	size_t ulen;
	int n;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!api_url || !*api_url || timeout <= 0) {
		jsonf_set_err(err, errlen, "invalid API URL or timeout");
		return false;
	}
	ulen = strlen(api_url);
	while (ulen > 0 && api_url[ulen - 1] == '/')
		ulen--;
	n = snprintf(url, sizeof(url), "%.*s/status", (int)ulen, api_url);
	if (n < 0 || (size_t)n >= sizeof(url)) {
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
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b) != CURLE_OK) {
		jsonf_set_err(err, errlen, "%s: cannot set up the request", url);
		goto cleanup;
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		if (b.too_big)
			jsonf_set_err(err, errlen, "%s: answer larger than %d bytes", url, API_BODY_MAX);
		else
			jsonf_set_err(err, errlen, "%s: %s", url, curl_easy_strerror(rc));
		goto cleanup;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		jsonf_set_err(err, errlen, "%s: HTTP %ld", url, code);
		goto cleanup;
	}
	if (!b.data) {
		jsonf_set_err(err, errlen, "%s: empty answer", url);
		goto cleanup;
	}
	if (strlen(b.data) != b.len) {
		jsonf_set_err(err, errlen, "%s: answer contains a NUL byte", url);
		goto cleanup;
	}
	{
		char why[256];

		if (!api_status_from_json(b.data, out, why, sizeof(why))) {
			jsonf_set_err(err, errlen, "%s: unexpected answer: %s", url, why);
			goto cleanup;
		}
	}
	ok = true;
cleanup:
	curl_easy_cleanup(curl);
	free(b.data);
	return ok;
}
