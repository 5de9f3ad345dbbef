/*
 * check_api.c - tests of agent/api*.c, the REST API, over real HTTP.
 *
 * Each test starts the real libmicrohttpd server on a free loopback port,
 * publishes a snapshot the way the loop does, and talks to it with libcurl.
 * The endpoints that read or write the cluster run against a real etcd
 * started once for the run (tests/etcd_fixture.c), each test under a scope of
 * its own, with a cluster the test writes itself (leader key, member keys
 * made with dcs_member_json, config). Every refused request is checked for
 * its code and JSON error, and for having changed nothing: no request
 * queued for the loop, every etcd key at the same value and mod_revision.
 * The pure parsers (?lag= sizes, scheduled_at times) and the socket-free
 * handler (api_internal.h) get tables of their own, and the etcd client's
 * request statistics that /metrics reports are checked against real etcd.
 * Who may write (issue 10) is a table over api_handle; what only the wire
 * shows (HTTP/1.1 without Host, two Content-Lengths, a slow client, TLS
 * versions, client certificates) is sent as raw bytes or with libcurl.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/api.h"
#include "agent/api_internal.h"
#include "agent/parse.h"
#include "agent/dcs.h"
#include "agent/log.h"
#include "agent/peer.h"
#include "etcd/etcd.h"
#include "tests/etcd_fixture.h"
#include "tests/etcd_proc.h"

/* ---- HTTP client ----------------------------------------------------------- */

struct answer {
	long code;
	char body[16384];
	size_t len;
	char content_type[128];
	char allow[128];
	char www_auth[128];
	json_t *json; /* the body parsed, when it is JSON */
	CURLcode curl_rc;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;

	if (n > sizeof(a->body) - 1 - a->len)
		return 0;
	memcpy(a->body + a->len, ptr, n);
	a->len += n;
	a->body[a->len] = '\0';
	return n;
}

static void header_copy(char *dst, size_t len, const char *src, size_t n)
{
	while (n > 0 && (src[n - 1] == '\r' || src[n - 1] == '\n'))
		n--;
	while (n > 0 && *src == ' ') {
		src++;
		n--;
	}
	snprintf(dst, len, "%.*s", (int)n, src);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;

	if (n > 6 && strncasecmp(ptr, "Allow:", 6) == 0)
		header_copy(a->allow, sizeof(a->allow), ptr + 6, n - 6);
	if (n > 17 && strncasecmp(ptr, "WWW-Authenticate:", 17) == 0)
		header_copy(a->www_auth, sizeof(a->www_auth), ptr + 17, n - 17);
	return n;
}

struct req {
	const char *method;
	const char *url;
	const char *body;     /* NULL = none */
	size_t body_len;      /* 0 = strlen(body) */
	const char *userpwd;  /* "user:password" for basic auth (NULL = none) */
	const char *auth_hdr; /* a raw Authorization header (NULL = none) */
	bool chunked;         /* send the body without a Content-Length */
	bool expect_continue; /* send "Expect: 100-continue" (wait for the server before the body) */
	bool may_reset;       /* a reset while sending the body is an answer too (code 0) */
	bool https;
	const char *content_type; /* NULL: application/json on writes, none on reads; "" = none */
	const char *extra[3];     /* more raw header lines ("Origin: ...", "Host: ...") */
	const char *cacert;       /* https: verify the server against this CA (NULL = no verification) */
	const char *cert, *key;   /* https: the client certificate to present */
	bool tls_max_1_1;         /* https: offer at most TLS 1.1 */
	bool tls_1_2_only;        /* https: offer TLS 1.2 and nothing else */
	const char *ciphers;      /* https: the TLS 1.2 cipher list to offer (NULL = curl's) */
	bool may_fail;            /* no answer at all is a result too (a->curl_rc says why) */
};

static void answer_free(struct answer *a)
{
	json_decref(a->json);
	a->json = NULL;
}

/* Reads chunks of the body for a chunked upload. */
struct upload {
	const char *p;
	size_t left;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct upload *u = userdata;
	size_t n = size * nitems;

	if (n > u->left)
		n = u->left;
	if (n > 4096)
		n = 4096;
	memcpy(buf, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

static void http(const struct req *r, struct answer *a)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct upload up;
	char *ct = NULL;
	char hdr[512];
	CURLcode rc;

	memset(a, 0, sizeof(*a));
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 8000L);
	if (strcmp(r->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body && r->chunked) {
		up.p = r->body;
		up.left = r->body_len ? r->body_len : strlen(r->body);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &up);
		hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
	} else if (r->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(r->body_len ? r->body_len : strlen(r->body)));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
	}
	/* no 100-continue round trip unless asked */
	hdrs = curl_slist_append(hdrs, r->expect_continue ? "Expect: 100-continue" : "Expect:");
	if (r->content_type && r->content_type[0]) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", r->content_type);
		hdrs = curl_slist_append(hdrs, hdr);
	} else if (r->content_type) {
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	} else if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
	           strcmp(r->method, "OPTIONS") != 0) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	}
	for (size_t i = 0; i < sizeof(r->extra) / sizeof(r->extra[0]) && r->extra[i]; i++)
		hdrs = curl_slist_append(hdrs, r->extra[i]);
	if (r->userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, r->userpwd);
	}
	if (r->auth_hdr) {
		snprintf(hdr, sizeof(hdr), "Authorization: %s", r->auth_hdr);
		hdrs = curl_slist_append(hdrs, hdr);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (r->https && r->cacert) {
		curl_easy_setopt(c, CURLOPT_CAINFO, r->cacert);
	} else if (r->https) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (r->https && r->cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, r->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, r->key);
	}
	if (r->https && r->tls_max_1_1)
		curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_TLSv1 | CURL_SSLVERSION_MAX_TLSv1_1));
	if (r->https && r->tls_1_2_only)
		curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
	if (r->https && r->ciphers)
		curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, r->ciphers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	rc = curl_easy_perform(c);
	/* A server that answers 413 early may close while the body is still
	 * being sent: the answer counts if it arrived. */
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->code);
	a->curl_rc = rc;
	ck_assert_msg(rc == CURLE_OK || a->code != 0 || (r->may_reset && rc == CURLE_SEND_ERROR) || r->may_fail,
	              "%s %s: %s", r->method, r->url, curl_easy_strerror(rc));
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(a->content_type, sizeof(a->content_type), "%s", ct);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (strncmp(a->content_type, "application/json", 16) == 0 && a->len)
		a->json = json_loads(a->body, JSON_DECODE_ANY, NULL);
}

/* A simple request: method, URL, body (may be NULL). */
static void http_simple(const char *method, const char *url, const char *body, struct answer *a)
{
	struct req r = { .method = method, .url = url, .body = body };

	http(&r, a);
}

/* An error answer: JSON {"error": "..."}. */
static void assert_json_error(const struct answer *a, const char *contains)
{
	const char *msg;

	ck_assert_msg(a->json && json_is_object(a->json), "not JSON: %s", a->body);
	msg = json_string_value(json_object_get(a->json, "error"));
	ck_assert_msg(msg != NULL, "no error field: %s", a->body);
	if (contains)
		ck_assert_msg(strstr(msg, contains) != NULL, "error '%s' lacks '%s'", msg, contains);
}

/* ---- servers and snapshots --------------------------------------------------- */

struct srv {
	struct api_server *s;
	int port;
	char base[64]; /* http://127.0.0.1:port */
	char scope[64];
	struct dcs_keys k;
	struct etcd_client *c; /* the test's own client (NULL without etcd) */
	const char *endpoint;
	struct etcd_config ecfg;
};

enum with_etcd { NO_ETCD, REAL_ETCD, DEAD_ETCD };

static char g_dead_url[64];

/* Starts a server; opts_extra (may be NULL) adds auth or TLS. */
static void srv_start(struct srv *v, const char *scope, enum with_etcd etcd, const struct api_options *extra)
{
	struct api_options o;
	struct etcd_error e;
	char listen[64], err[512] = "";

	memset(v, 0, sizeof(*v));
	if (extra) {
		o = *extra;
	} else {
		/* The endpoint tests exercise what writes do, not who may
		 * write (test_write_rules, test_auth, test_client_certs). */
		memset(&o, 0, sizeof(o));
		o.allow_unauthenticated_writes = true;
	}
	v->port = etcd_proc_free_port();
	ck_assert_int_gt(v->port, 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", v->port);
	snprintf(v->base, sizeof(v->base), "%s://127.0.0.1:%d", o.certfile ? "https" : "http", v->port);
	snprintf(v->scope, sizeof(v->scope), "%s", scope);
	o.listen = listen;
	o.namespace_ = "/test";
	o.scope = scope;
	if (etcd == REAL_ETCD) {
		v->endpoint = etcd_fixture_url();
	} else if (etcd == DEAD_ETCD) {
		snprintf(g_dead_url, sizeof(g_dead_url), "http://127.0.0.1:%d", etcd_proc_free_port());
		v->endpoint = g_dead_url;
	}
	if (v->endpoint) {
		v->ecfg.endpoints = &v->endpoint;
		v->ecfg.n_endpoints = 1;
		v->ecfg.request_timeout = 3;
		o.etcd = &v->ecfg;
	}
	v->s = api_start_opts(&o, err, sizeof(err));
	ck_assert_msg(v->s != NULL, "api_start_opts: %s", err);
	ck_assert(dcs_keys_init(&v->k, "/test", scope));
	if (etcd == REAL_ETCD)
		ck_assert_int_eq(etcd_client_new(&v->ecfg, &v->c, &e), ETCD_OK);
}

static void srv_stop(struct srv *v)
{
	api_stop(v->s);
	etcd_client_free(v->c);
	memset(v, 0, sizeof(*v));
}

static void url_of(const struct srv *v, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", v->base, path);
}

static struct api_status primary_status(void)
{
	struct api_status st;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node1");
	snprintf(st.scope, sizeof(st.scope), "main");
	snprintf(st.role, sizeof(st.role), "primary");
	snprintf(st.state, sizeof(st.state), "running");
	snprintf(st.leader, sizeof(st.leader), "node1");
	st.is_leader = true;
	st.pg_running = true;
	st.timeline = 3;
	st.lsn = 123456789;
	st.lag = 0;
	st.loop_wait = 1;
	st.lease_ttl_left = 4;
	return st;
}

static struct api_status replica_status(void)
{
	struct api_status st = primary_status();

	snprintf(st.name, sizeof(st.name), "node2");
	snprintf(st.role, sizeof(st.role), "replica");
	snprintf(st.state, sizeof(st.state), "streaming");
	st.is_leader = false;
	st.lsn = 123455789;
	st.lag = 1000;
	st.lease_ttl_left = 0;
	return st;
}

/* ---- etcd helpers ------------------------------------------------------------ */

static void put(struct srv *v, const char *key, const char *value)
{
	etcd_fixture_put(v->c, key, value);
}

static void put_member(struct srv *v, const char *name, const char *role, const char *state, uint64_t lsn)
{
	struct ha_member m;
	char key[400], *json;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.role, sizeof(m.role), "%s", role);
	snprintf(m.state, sizeof(m.state), "%s", state);
	snprintf(m.host, sizeof(m.host), "127.0.0.1");
	m.port = 5432;
	snprintf(m.api_url, sizeof(m.api_url), "http://127.0.0.1:8008");
	m.timeline = 3;
	m.lsn = lsn;
	json = dcs_member_json(&m);
	ck_assert_ptr_nonnull(json);
	ck_assert(dcs_member_key(&v->k, name, key, sizeof(key)));
	put(v, key, json);
	free(json);
}

/* leader node1 (lsn 5000, status 6000), node2 running replica (lsn 4000),
 * node3 stopped. */
static void write_cluster(struct srv *v)
{
	put(v, v->k.leader, "node1");
	put(v, v->k.config, "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2,\"maximum_lag_on_failover\":1048576}");
	put(v, v->k.status, "{\"optime\":6000,\"timeline\":3}");
	put_member(v, "node1", "primary", "running", 5000);
	put_member(v, "node2", "replica", "running", 4000);
	put_member(v, "node3", "stopped", "stopped", 0);
}

static char *etcd_snapshot(struct srv *v)
{
	return etcd_fixture_snapshot(v->c, v->k.prefix);
}

static char *get_value(struct srv *v, const char *key)
{
	return etcd_fixture_get(v->c, key);
}

static void assert_unchanged(struct srv *v, const char *before, const char *what)
{
	char *after;

	if (!v->c)
		return;
	after = etcd_snapshot(v);
	ck_assert_msg(strcmp(before, after) == 0, "%s changed etcd:\nbefore:\n%s\nafter:\n%s", what, before, after);
	free(after);
}

static void assert_nothing_queued(struct srv *v, const char *what)
{
	struct api_requests rq;

	api_take_requests(v->s, &rq);
	ck_assert_msg(!rq.restart && !rq.restart_pending_only && !rq.reload && !rq.reinit,
	              "%s queued a request for the loop", what);
}

/* ---- every endpoint on a primary and on a replica ------------------------------- */

struct ep_case {
	const char *method, *path, *body;
	long on_primary, on_replica;
};

static const struct ep_case ep_cases[] = {
	{ "GET", "/primary", NULL, 200, 503 },
	{ "HEAD", "/primary", NULL, 200, 503 },
	{ "OPTIONS", "/primary", NULL, 200, 503 },
	{ "GET", "/leader", NULL, 200, 503 },
	{ "OPTIONS", "/leader", NULL, 200, 503 },
	/* Patroni's paths (issue 13) */
	{ "GET", "/", NULL, 200, 503 },
	{ "OPTIONS", "/", NULL, 200, 503 },
	{ "HEAD", "/master", NULL, 200, 503 },
	{ "OPTIONS", "/read-write", NULL, 200, 503 },
	{ "GET", "/standby-leader", NULL, 503, 503 },
	{ "GET", "/synchronous", NULL, 503, 503 },
	{ "OPTIONS", "/asynchronous", NULL, 503, 200 },
	{ "GET", "/read-only-sync", NULL, 200, 503 },
	{ "GET", "/quorum", NULL, 503, 503 },
	{ "GET", "/patroni", NULL, 200, 200 },
	{ "HEAD", "/patroni", NULL, 200, 200 },
	{ "GET", "/replica?tag_nofailover=false", NULL, 503, 200 },
	{ "GET", "/replica?tag_nofailover=true", NULL, 503, 503 },
	{ "PUT", "/config", "{\"ttl\":1}", 400, 400 },
	{ "PUT", "/config", "[1]", 400, 400 },
	{ "DELETE", "/switchover", NULL, 404, 404 },
	{ "POST", "/reinitialize", NULL, 409, 202 },
	{ "GET", "/replica", NULL, 503, 200 },
	{ "HEAD", "/replica", NULL, 503, 200 },
	{ "OPTIONS", "/replica", NULL, 503, 200 },
	{ "GET", "/replica?lag=1MB", NULL, 503, 200 },
	{ "GET", "/replica?lag=100", NULL, 503, 503 },
	{ "GET", "/replica?lag=1000", NULL, 503, 200 },
	{ "GET", "/replica?lag=bogus", NULL, 400, 400 },
	{ "GET", "/read-only", NULL, 200, 200 },
	{ "OPTIONS", "/read-only", NULL, 200, 200 },
	{ "GET", "/health", NULL, 200, 200 },
	{ "HEAD", "/health", NULL, 200, 200 },
	{ "GET", "/liveness", NULL, 200, 200 },
	{ "GET", "/readiness", NULL, 200, 200 },
	/* the fixture's replica is not a synchronous standby */
	{ "GET", "/sync", NULL, 503, 503 },
	{ "HEAD", "/sync", NULL, 503, 503 },
	{ "GET", "/async", NULL, 503, 200 },
	{ "GET", "/async?lag=1MB", NULL, 503, 200 },
	{ "GET", "/async?lag=bogus", NULL, 400, 400 },
	{ "GET", "/status", NULL, 200, 200 },
	{ "HEAD", "/status", NULL, 200, 200 },
	{ "GET", "/metrics", NULL, 200, 200 },
	{ "GET", "/cluster", NULL, 200, 200 },
	{ "GET", "/history", NULL, 200, 200 },
	{ "GET", "/config", NULL, 200, 200 },
	{ "HEAD", "/config", NULL, 200, 200 },
	/* write endpoints, with requests that change nothing in etcd */
	{ "PATCH", "/config", "{\"ttl\":1}", 400, 400 },
	{ "PATCH", "/config", "[1]", 400, 400 },
	{ "POST", "/switchover", "{\"candidate\":\"ghost\"}", 412, 412 },
	{ "POST", "/switchover", "{\"candidate\":\"node1\"}", 412, 412 },
	{ "POST", "/switchover", "{\"leader\":\"node2\",\"candidate\":\"node1\"}", 412, 412 },
	{ "POST", "/switchover", "{\"scheduled_at\":\"tomorrow\"}", 400, 400 },
	{ "POST", "/failover", "{}", 400, 400 },
	{ "POST", "/failover", NULL, 400, 400 },
	{ "POST", "/failover", "{\"candidate\":\"node1\"}", 412, 412 },
	{ "POST", "/failover", "{\"candidate\":\"node2\",\"scheduled_at\":1}", 400, 400 },
	{ "POST", "/restart", NULL, 202, 202 },
	{ "POST", "/restart", "{\"restart_pending\":true}", 202, 202 },
	{ "POST", "/reload", NULL, 202, 202 },
	{ "POST", "/reinit", NULL, 409, 202 },
	/* wrong methods */
	{ "POST", "/primary", "{}", 405, 405 },
	{ "DELETE", "/replica", NULL, 405, 405 },
	{ "POST", "/status", "{}", 405, 405 },
	{ "OPTIONS", "/status", NULL, 405, 405 },
	{ "PUT", "/patroni", "{}", 405, 405 },
	{ "DELETE", "/config", NULL, 405, 405 },
	{ "GET", "/switchover", NULL, 405, 405 },
	{ "GET", "/failover", NULL, 405, 405 },
	{ "GET", "/restart", NULL, 405, 405 },
	{ "PATCH", "/reload", "{}", 405, 405 },
	{ "HEAD", "/reinit", NULL, 405, 405 },
	{ "get", "/health", NULL, 405, 405 },
	/* unknown paths */
	{ "GET", "/nope", NULL, 404, 404 },
	{ "GET", "/primary/", NULL, 404, 404 },
	{ "POST", "/nope", "{}", 404, 404 },
};

static void run_endpoint_table(bool primary)
{
	struct api_status st = primary ? primary_status() : replica_status();
	struct srv v;
	char url[256];
	char *before;

	srv_start(&v, primary ? "ep-primary" : "ep-replica", REAL_ETCD, NULL);
	write_cluster(&v);
	api_publish(v.s, &st);
	before = etcd_snapshot(&v);
	for (size_t i = 0; i < sizeof(ep_cases) / sizeof(ep_cases[0]); i++) {
		const struct ep_case *c = &ep_cases[i];
		long want = primary ? c->on_primary : c->on_replica;
		struct api_requests rq;
		struct answer a;

		url_of(&v, c->path, url, sizeof(url));
		http_simple(c->method, url, c->body, &a);
		ck_assert_msg(a.code == want, "%s %s %s on a %s: %ld, expected %ld (%s)", c->method, c->path,
		              c->body ? c->body : "", primary ? "primary" : "replica", a.code, want, a.body);
		if (strcmp(c->path, "/metrics") == 0)
			ck_assert_str_eq(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
		else
			ck_assert_msg(strcmp(a.content_type, "application/json") == 0, "%s %s: content type %s",
			              c->method, c->path, a.content_type);
		if (strcmp(c->method, "HEAD") == 0)
			ck_assert_uint_eq(a.len, 0);
		else if (strcmp(c->path, "/metrics") != 0)
			ck_assert_msg(a.json != NULL, "%s %s: not JSON: %s", c->method, c->path, a.body);
		if (a.code >= 400 && strcmp(c->method, "HEAD") != 0)
			assert_json_error(&a, NULL);
		if (a.code == 405)
			ck_assert_msg(a.allow[0] != '\0', "405 without Allow for %s %s", c->method, c->path);
		/* What the loop is asked to do follows from the 202s only. */
		api_take_requests(v.s, &rq);
		if (a.code == 202 && strcmp(c->path, "/restart") == 0)
			ck_assert(rq.restart && rq.restart_pending_only == (c->body != NULL));
		else
			ck_assert(!rq.restart);
		ck_assert(rq.reload == (a.code == 202 && strcmp(c->path, "/reload") == 0));
		ck_assert(rq.reinit == (a.code == 202 && strncmp(c->path, "/reinit", 7) == 0));
		answer_free(&a);
	}
	/* None of those requests may have changed etcd. */
	assert_unchanged(&v, before, "the endpoint table");
	free(before);
	srv_stop(&v);
}

START_TEST(test_endpoints_primary)
{
	run_endpoint_table(true);
}
END_TEST

START_TEST(test_endpoints_replica)
{
	run_endpoint_table(false);
}
END_TEST

/* Health checks answer 503 with a reason before any snapshot; and on a
 * node whose Postgres is down every check but liveness fails. */
START_TEST(test_health_states)
{
	static const char *const paths[] = { "/primary", "/replica", "/read-only", "/health", "/readiness" };
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "health", NO_ETCD, NULL);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		url_of(&v, paths[i], url, sizeof(url));
		http_simple("GET", url, NULL, &a);
		ck_assert_int_eq(a.code, 503);
		assert_json_error(&a, "not published");
		answer_free(&a);
	}
	url_of(&v, "/liveness", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	answer_free(&a);
	url_of(&v, "/metrics", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	answer_free(&a);

	st.pg_running = false;
	snprintf(st.state, sizeof(st.state), "stopped");
	api_publish(v.s, &st);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		url_of(&v, paths[i], url, sizeof(url));
		http_simple("OPTIONS", url, NULL, &a);
		ck_assert_msg(a.code == 503, "%s: %ld", paths[i], a.code);
		answer_free(&a);
	}
	url_of(&v, "/liveness", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);

	/* A replica whose lag is unknown: running, but not ready, and a
	 * lag-bounded check fails while a plain one passes. */
	st = replica_status();
	st.lag = -1;
	api_publish(v.s, &st);
	url_of(&v, "/readiness", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	answer_free(&a);
	url_of(&v, "/replica", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(a.json, "lag")), -1);
	answer_free(&a);
	url_of(&v, "/replica?lag=1GB", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	ck_assert_msg(strstr(a.body, "lag unknown") != NULL, "%s", a.body);
	answer_free(&a);

	/* A synchronous standby: /sync 200, /async 503; the status says so. */
	st = replica_status();
	st.sync_standby = true;
	api_publish(v.s, &st);
	url_of(&v, "/sync", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	url_of(&v, "/async", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	ck_assert_msg(strstr(a.body, "a synchronous standby") != NULL, "%s", a.body);
	answer_free(&a);
	url_of(&v, "/status", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert(json_is_true(json_object_get(a.json, "sync_standby")));
	answer_free(&a);

	/* The leader whose Postgres still runs as a replica (promoting). */
	st = primary_status();
	snprintf(st.role, sizeof(st.role), "replica");
	api_publish(v.s, &st);
	url_of(&v, "/primary", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	answer_free(&a);
	url_of(&v, "/replica", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

/* DESIGN.md rule 8: a replica that does not replay fails every replica
 * check, whatever its lag says; /health keeps meaning "Postgres runs". */
START_TEST(test_health_replay_states)
{
	static const char *const states[] = { "replay paused", "stuck replay", "not streaming" };
	static const struct {
		const char *path;
		long code;
	} want[] = {
		{ "/replica", 503 }, { "/replica?lag=1GB", 503 }, { "/read-only", 503 }, { "/read-only?lag=1GB", 503 },
		{ "/async", 503 },   { "/readiness", 503 },       { "/health", 200 },    { "/liveness", 200 },
	};
	struct api_status st;
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "replay", NO_ETCD, NULL);
	for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		st = replica_status();
		st.lag = 0;
		snprintf(st.state, sizeof(st.state), "%s", states[k]);
		api_publish(v.s, &st);
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			url_of(&v, want[i].path, url, sizeof(url));
			http_simple("GET", url, NULL, &a);
			ck_assert_msg(a.code == want[i].code, "%s in state %s: %ld, want %ld", want[i].path, states[k],
			              a.code, want[i].code);
			if (want[i].code == 503)
				ck_assert_msg(strstr(a.body, states[k]) != NULL, "%s: %s", want[i].path, a.body);
			answer_free(&a);
		}
	}
	/* Replaying again: healthy; a lag-bounded /read-only counts the lag. */
	st = replica_status();
	st.lag = 2 * 1048576;
	api_publish(v.s, &st);
	url_of(&v, "/read-only", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	url_of(&v, "/read-only?lag=1MB", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	ck_assert_msg(strstr(a.body, "replication lag") != NULL, "%s", a.body);
	answer_free(&a);
	url_of(&v, "/read-only?lag=bogus", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 400);
	answer_free(&a);
	/* The primary passes a lag-bounded /read-only. */
	st = primary_status();
	api_publish(v.s, &st);
	url_of(&v, "/read-only?lag=1MB", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

/* ---- ?lag= --------------------------------------------------------------------- */

struct lag_case {
	const char *text;
	bool ok;
	int64_t bytes;
};

static const struct lag_case lag_cases[] = {
	{ "0", true, 0 },
	{ "1048576", true, 1048576 },
	{ "16MB", true, 16 << 20 },
	{ "16mb", true, 16 << 20 },
	{ "16 MB", true, 16 << 20 },
	{ "16M", true, 16 << 20 },
	{ "16MiB", true, 16 << 20 },
	{ "1GB", true, 1 << 30 },
	{ "2G", true, 2LL << 30 },
	{ "8kB", true, 8192 },
	{ "8KB", true, 8192 },
	{ "8k", true, 8192 },
	{ "100B", true, 100 },
	{ "1TB", true, 1LL << 40 },
	{ "9223372036854775807", true, INT64_MAX },
	{ "9223372036854775808", false, 0 },
	{ "99999999999999999999", false, 0 },
	{ "8388608TB", false, 0 },
	{ "", false, 0 },
	{ "MB", false, 0 },
	{ "-1", false, 0 },
	{ "+5", false, 0 },
	{ "1.5GB", false, 0 },
	{ "16XB", false, 0 },
	{ "16MBB", false, 0 },
	{ "16 ", false, 0 },
	{ " 16", false, 0 },
	{ "0x10", false, 0 },
};

START_TEST(test_parse_bytes)
{
	const struct lag_case *c = &lag_cases[_i];
	int64_t v = -7;
	bool ok = parse_bytes(c->text, &v);

	ck_assert_msg(ok == c->ok, "\"%s\": %s", c->text, ok ? "accepted" : "refused");
	if (c->ok)
		ck_assert_msg(v == c->bytes, "\"%s\": %lld", c->text, (long long)v);
	else
		ck_assert_int_eq(v, -7);
}
END_TEST

/* The same over HTTP, with the query as a client would encode it. */
struct lag_http_case {
	const char *query;
	long code; /* against a replica 1000 bytes behind */
};

static const struct lag_http_case lag_http_cases[] = {
	{ "lag=16MB", 200 },
	{ "lag=16%20MB", 200 },
	{ "lag=16+MB", 200 },
	{ "lag=%31%30%30%30", 200 },
	{ "other=1&lag=1000", 200 },
	{ "lag=999", 503 },
	{ "lag=0", 503 },
	{ "lag=", 400 },
	{ "lag", 400 },
	{ "lag=-5", 400 },
	{ "lag=1e6", 400 },
	{ "lag=%00", 400 },
	{ "lag=%zz", 400 },
	{ "lag=99999999999999999999", 400 },
	{ "unrelated=x", 200 },
	{ "", 200 },
};

START_TEST(test_lag_http)
{
	struct api_status st = replica_status();
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "lag", NO_ETCD, NULL);
	api_publish(v.s, &st);
	for (size_t i = 0; i < sizeof(lag_http_cases) / sizeof(lag_http_cases[0]); i++) {
		snprintf(url, sizeof(url), "%s/replica?%s", v.base, lag_http_cases[i].query);
		http_simple("GET", url, NULL, &a);
		ck_assert_msg(a.code == lag_http_cases[i].code, "?%s: %ld (%s)", lag_http_cases[i].query, a.code,
		              a.body);
		if (a.code == 400)
			assert_json_error(&a, "lag");
		answer_free(&a);
	}
	srv_stop(&v);
}
END_TEST

/* ---- scheduled_at ----------------------------------------------------------------- */

struct time_case {
	const char *text;
	bool ok;
	int64_t t;
};

static const struct time_case time_cases[] = {
	{ "2030-01-31T12:00:00Z", true, 1896091200 },
	{ "2030-01-31T12:00Z", true, 1896091200 },
	{ "2030-01-31 12:00:00Z", true, 1896091200 },
	{ "2030-01-31T12:00:00.250Z", true, 1896091200 },
	{ "2030-01-31T14:00:00+02:00", true, 1896091200 },
	{ "2030-01-31T07:30:00-0430", true, 1896091200 },
	{ "1896091200", true, 1896091200 },
	{ "2030-02-29T12:00:00Z", false, 0 },
	{ "2030-13-01T12:00:00Z", false, 0 },
	{ "2030-01-31T24:00:00Z", false, 0 },
	{ "2030-01-31T12:00:00", false, 0 },
	{ "2030-01-31", false, 0 },
	{ "tomorrow", false, 0 },
	{ "", false, 0 },
	{ "2030-01-31T12:00:00Zjunk", false, 0 },
	{ "2030-01-31T12:00:00+2", false, 0 },
	{ "1960-01-01T00:00:00Z", false, 0 },
	{ "99999999999999", false, 0 },
};

START_TEST(test_parse_time)
{
	const struct time_case *c = &time_cases[_i];
	int64_t t = -7;
	bool ok = parse_time(c->text, &t);

	ck_assert_msg(ok == c->ok, "\"%s\": %s", c->text, ok ? "accepted" : "refused");
	if (c->ok)
		ck_assert_msg(t == c->t, "\"%s\": %lld", c->text, (long long)t);
}
END_TEST

/* ---- liveness ---------------------------------------------------------------------- */

START_TEST(test_liveness)
{
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "live", NO_ETCD, NULL);
	url_of(&v, "/liveness", url, sizeof(url));
	st.loop_wait = 0.2; /* 3 * loop_wait < 3 s: the 3 s floor applies */
	api_publish(v.s, &st);
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	sleep(2);
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(a.code == 200, "503 after 2 s: %s", a.body);
	answer_free(&a);
	usleep(1300 * 1000);
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(a.code == 503, "still live 3.3 s after the last publish: %s", a.body);
	assert_json_error(&a, NULL);
	answer_free(&a);
	/* The other checks still answer from the last snapshot. */
	url_of(&v, "/primary", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	api_publish(v.s, &st);
	url_of(&v, "/liveness", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

/* ---- metrics -------------------------------------------------------------------------- */

START_TEST(test_metrics)
{
#define L1 "{scope=\"main\",name=\"node1\""
	static const char *const expected[] = {
		"baton_info" L1 ",version=\"",
		"baton_is_leader" L1 "} 1\n",
		"baton_postgres_running" L1 "} 1\n",
		"baton_role" L1 ",role=\"primary\"} 1\n",
		"baton_role" L1 ",role=\"replica\"} 0\n",
		"baton_timeline" L1 "} 3\n",
		"baton_lsn_bytes" L1 "} 123456789\n",
		"baton_replication_lag_bytes" L1 "} 0\n",
		"baton_paused" L1 "} 1\n",
		"baton_pending_restart" L1 "} 1\n",
		"baton_lease_renewals_total" L1 "} 41\n",
		"baton_lease_renewal_failures_total" L1 "} 2\n",
		"baton_seconds_since_lease_renewal" L1 "} 0.750000\n",
		"baton_leader_changes_total" L1 "} 3\n",
		"baton_loop_iterations_total" L1 "} 17\n",
		"baton_etcd_requests_total" L1 "} 100\n",
		"baton_etcd_request_failures_total" L1 "} 4\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.005\"} 10\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.01\"} 20\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.025\"} 30\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.05\"} 40\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.1\"} 50\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.25\"} 60\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"0.5\"} 70\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"1\"} 80\n",
		"baton_etcd_request_duration_seconds_bucket" L1 ",le=\"+Inf\"} 100\n",
		"baton_etcd_request_duration_seconds_sum" L1 "} 12.500000\n",
		"baton_etcd_request_duration_seconds_count" L1 "} 100\n",
		"baton_rest_deadline_closed_total" L1 "} 0\n",
	};
	static const char *const families[][2] = {
		{ "baton_info", "gauge" },
		{ "baton_is_leader", "gauge" },
		{ "baton_postgres_running", "gauge" },
		{ "baton_role", "gauge" },
		{ "baton_timeline", "gauge" },
		{ "baton_lsn_bytes", "gauge" },
		{ "baton_replication_lag_bytes", "gauge" },
		{ "baton_paused", "gauge" },
		{ "baton_pending_restart", "gauge" },
		{ "baton_lease_renewals_total", "counter" },
		{ "baton_lease_renewal_failures_total", "counter" },
		{ "baton_seconds_since_lease_renewal", "gauge" },
		{ "baton_lease_renewal_worst_seconds", "gauge" },
		{ "baton_lease_renewal_worst_gap_seconds", "gauge" },
		{ "baton_leader_changes_total", "counter" },
		{ "baton_loop_iterations_total", "counter" },
		{ "baton_etcd_requests_total", "counter" },
		{ "baton_etcd_request_failures_total", "counter" },
		{ "baton_etcd_request_duration_seconds", "histogram" },
		{ "baton_rest_deadline_closed_total", "counter" },
	};
	struct api_status st = primary_status();
	struct api_metrics m;
	struct answer a;
	struct srv v;
	char url[256], line[256];
	const char *p;

	srv_start(&v, "metrics", NO_ETCD, NULL);
	st.paused = true;
	st.pending_restart = true;
	memset(&m, 0, sizeof(m));
	m.lease_renewals = 41;
	m.lease_renewal_failures = 2;
	m.since_last_renewal = 0.75;
	m.leader_changes = 3;
	m.loop_iterations = 17;
	m.etcd_requests = 100;
	m.etcd_failures = 4;
	for (int i = 0; i < API_LATENCY_BUCKETS; i++)
		m.etcd_latency_le[i] = (uint64_t)(i + 1) * 10;
	m.etcd_latency_count = 100;
	m.etcd_latency_sum = 12.5;
	api_publish(v.s, &st);
	api_publish_metrics(v.s, &m);
	url_of(&v, "/metrics", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert_str_eq(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
		ck_assert_msg(strstr(a.body, expected[i]) != NULL, "no \"%s\" in:\n%s", expected[i], a.body);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", families[i][0]);
		ck_assert_msg(strstr(a.body, line) != NULL, "no HELP for %s", families[i][0]);
		snprintf(line, sizeof(line), "# TYPE %s %s\n", families[i][0], families[i][1]);
		ck_assert_msg(strstr(a.body, line) != NULL, "no \"%s\"", line);
	}
	ck_assert(a.body[a.len - 1] == '\n');
	/* Every sample of every series carries scope and name first. */
	for (p = a.body; *p; p = strchr(p, '\n') + 1) {
		if (*p != '#')
			ck_assert_msg(strncmp(strchr(p, '{'), "{scope=\"main\",name=\"node1\"", 26) == 0 &&
			                      strchr(p, '{') < strchr(p, ' '),
			              "a sample without scope and name first: %.*s", (int)(strchr(p, '\n') - p), p);
	}
	answer_free(&a);

	/* A replica with unknown lag, and a name that needs escaping. */
	st = replica_status();
	st.lag = -1;
	snprintf(st.scope, sizeof(st.scope), "a\"b\\c");
	api_publish(v.s, &st);
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(strstr(a.body, "baton_replication_lag_bytes{scope=\"a\\\"b\\\\c\",name=\"node2\"} -1\n") != NULL,
	              "%s", a.body);
	ck_assert_msg(strstr(a.body, "baton_role{scope=\"a\\\"b\\\\c\",name=\"node2\",role=\"replica\"} 1\n") != NULL,
	              "%s", a.body);
	ck_assert_msg(strstr(a.body, "baton_is_leader{scope=\"a\\\"b\\\\c\",name=\"node2\"} 0\n") != NULL, "%s",
	              a.body);
	answer_free(&a);
	srv_stop(&v);
#undef L1
}
END_TEST

/* The value of one sample in a /metrics text: the line that starts with
 * prefix (name and labels, up to the value); NULL when absent. */
static const char *sample_value(const char *body, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return p + n;
	return NULL;
}

/* Patroni's series (issue 13): every name Patroni 3.0.2 and 4.x expose,
 * with Patroni's type and the scope and name labels, valued per role. */
START_TEST(test_metrics_patroni)
{
	/* name, type, value on the primary, value on the replica */
	static const char *const series[][4] = {
		{ "patroni_version", "gauge", "*", "*" }, /* baton's version, padded */
		{ "patroni_postgres_running", "gauge", "1", "1" },
		{ "patroni_postmaster_start_time", "gauge", "1764700000.250000", "1764700001.500000" },
		{ "patroni_master", "gauge", "1", "0" },
		{ "patroni_primary", "gauge", "1", "0" },
		{ "patroni_xlog_location", "counter", "123456789", "0" },
		{ "patroni_standby_leader", "gauge", "0", "0" },
		{ "patroni_replica", "gauge", "0", "1" },
		{ "patroni_sync_standby", "gauge", "0", "1" },
		{ "patroni_quorum_standby", "gauge", "0", "0" },
		{ "patroni_xlog_received_location", "counter", "0", "123455789" },
		{ "patroni_xlog_replayed_location", "counter", "0", "123450000" },
		{ "patroni_xlog_replayed_timestamp", "gauge", "0", "1764700100.125000" },
		{ "patroni_xlog_paused", "gauge", "0", "1" },
		{ "patroni_postgres_streaming", "gauge", "0", "1" },
		{ "patroni_postgres_in_archive_recovery", "gauge", "0", "0" },
		{ "patroni_postgres_server_version", "gauge", "150004", "150004" },
		{ "patroni_cluster_unlocked", "gauge", "0", "0" },
		{ "patroni_failsafe_mode_is_active", "gauge", "0", "1" },
		{ "patroni_postgres_timeline", "counter", "3", "3" },
		{ "patroni_dcs_last_seen", "gauge", "1764700200", "1764700201" },
		{ "patroni_pending_restart", "gauge", "1", "0" },
		{ "patroni_is_paused", "gauge", "1", "1" },
		{ "patroni_postgres_state", "gauge", "5", "5" },
	};
	const size_t n = sizeof(series) / sizeof(series[0]);
	int major = 0, minor = 0, patch = 0;
	char version[16];
	struct api_status pst = primary_status(), rst = replica_status(), st;
	struct answer a;
	struct srv v;
	char url[256], want[256];
	const char *val;

	/* Patroni's form of a version: "3.0.2" -> "030002". */
	ck_assert_int_eq(sscanf(BATON_VERSION, "%d.%d.%d", &major, &minor, &patch), 3);
	snprintf(version, sizeof(version), "%02d%02d%02d", major, minor, patch);
	srv_start(&v, "metrics_patroni", NO_ETCD, NULL);
	url_of(&v, "/metrics", url, sizeof(url));
	pst.paused = rst.paused = true;
	pst.pending_restart = true;
	pst.server_version = rst.server_version = 150004;
	pst.postmaster_start = 1764700000.25;
	rst.postmaster_start = 1764700001.5;
	pst.dcs_last_seen = 1764700200.9;
	rst.dcs_last_seen = 1764700201.2;
	snprintf(rst.state, sizeof(rst.state), "running");
	rst.receive_lsn = 123455789;
	rst.replay_lsn = 123450000;
	rst.replay_timestamp = 1764700100.125;
	rst.replay_paused = true;
	rst.sync_standby = true;
	rst.failsafe_active = true;
	snprintf(rst.replication_state, sizeof(rst.replication_state), "streaming");
	for (int role = 0; role < 2; role++) {
		st = role == 0 ? pst : rst;
		api_publish(v.s, &st);
		http_simple("GET", url, NULL, &a);
		ck_assert_int_eq(a.code, 200);
		for (size_t i = 0; i < n; i++) {
			const char *exp = strcmp(series[i][2 + role], "*") == 0 ? version : series[i][2 + role];

			snprintf(want, sizeof(want), "# HELP %s ", series[i][0]);
			ck_assert_msg(strstr(a.body, want) != NULL, "no HELP for %s", series[i][0]);
			snprintf(want, sizeof(want), "# TYPE %s %s\n", series[i][0], series[i][1]);
			ck_assert_msg(strstr(a.body, want) != NULL, "no \"%s\" in:\n%s", want, a.body);
			snprintf(want, sizeof(want), "%s{scope=\"main\",name=\"%s\"} ", series[i][0], st.name);
			val = sample_value(a.body, want);
			ck_assert_msg(val != NULL, "no sample \"%s\" in:\n%s", want, a.body);
			ck_assert_msg(strncmp(val, exp, strlen(exp)) == 0 && val[strlen(exp)] == '\n',
			              "%s on the %s: \"%.*s\", expected %s", series[i][0], role ? "replica" : "primary",
			              (int)(strchr(val, '\n') - val), val, exp);
		}
		answer_free(&a);
	}

	/* Quorum commit: the standby is a quorum standby, not a sync one; an
	 * archive-recovering replica; the cluster without a leader. */
	st = rst;
	st.sync_quorum = true;
	st.replication_state[0] = '\0';
	st.archive_recovery = true;
	st.leader[0] = '\0';
	snprintf(st.state, sizeof(st.state), "not streaming");
	api_publish(v.s, &st);
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(strstr(a.body, "patroni_sync_standby{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_quorum_standby{scope=\"main\",name=\"node2\"} 1\n") &&
	                      strstr(a.body, "patroni_postgres_streaming{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body,
	                             "patroni_postgres_in_archive_recovery{scope=\"main\",name=\"node2\"} 1\n") &&
	                      strstr(a.body, "patroni_cluster_unlocked{scope=\"main\",name=\"node2\"} 1\n") &&
	                      strstr(a.body, "patroni_postgres_state{scope=\"main\",name=\"node2\"} 5\n"),
	              "%s", a.body);
	answer_free(&a);

	/* Postgres down: zeros, and no streaming series (Patroni shows them
	 * only with a known server version). */
	st = rst;
	st.pg_running = false;
	snprintf(st.role, sizeof(st.role), "stopped");
	snprintf(st.state, sizeof(st.state), "stopped");
	api_publish(v.s, &st);
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(strstr(a.body, "patroni_postgres_running{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_replica{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_postmaster_start_time{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_xlog_replayed_location{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_postgres_server_version{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_postgres_timeline{scope=\"main\",name=\"node2\"} 0\n") &&
	                      strstr(a.body, "patroni_postgres_state{scope=\"main\",name=\"node2\"} 12\n") &&
	                      !strstr(a.body, "patroni_postgres_streaming") &&
	                      !strstr(a.body, "patroni_postgres_in_archive_recovery"),
	              "%s", a.body);
	answer_free(&a);

	/* Label values escaped: a quote, a backslash and a newline in the
	 * scope and the name. */
	st = pst;
	snprintf(st.scope, sizeof(st.scope), "a\"b\\c");
	snprintf(st.name, sizeof(st.name), "n\\\"\n1");
	api_publish(v.s, &st);
	http_simple("GET", url, NULL, &a);
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "\n%s{scope=\"a\\\"b\\\\c\",name=\"n\\\\\\\"\\n1\"} %s\n", series[i][0],
		         strcmp(series[i][2], "*") == 0 ? version : series[i][2]);
		ck_assert_msg(strstr(a.body, want) != NULL, "no \"%s\" in:\n%s", want, a.body);
	}
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

/* ---- authentication ------------------------------------------------------------------ */

/* ---- a test PKI (openssl) ------------------------------------------------------ */

/* A CA, a server certificate it signs (localhost, 127.0.0.1), a client
 * certificate it signs (CN=operator) and a self-signed "rogue" client
 * certificate, in a fresh directory dir (PATH_MAX). false when openssl is
 * not installed (the caller skips, saying so). */
struct pki {
	char dir[64];
	char ca[128], server_cert[128], server_key[128], client_cert[128], client_key[128], rogue_cert[128],
	        rogue_key[128];
};

static bool pki_make(struct pki *k)
{
	char cmd[4096];
	int rc;

	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIPPED: openssl is not installed (apt-get install openssl)\n");
		return false;
	}
	snprintf(k->dir, sizeof(k->dir), "/tmp/check_api_pki.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(k->dir));
#define PKI_EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && { "
	         "openssl req -x509 " PKI_EC " -subj /CN=check-api-ca -days 2 -keyout ca.key -out ca.pem && "
	         "openssl req " PKI_EC " -subj /CN=localhost -keyout server.key -out server.csr && "
	         "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' >server.ext && "
	         "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	         "-extfile server.ext -out server.pem && "
	         "openssl req " PKI_EC " -subj /CN=operator -keyout client.key -out client.csr && "
	         "printf 'extendedKeyUsage=clientAuth\\n' >client.ext && "
	         "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	         "-extfile client.ext -out client.pem && "
	         "openssl req -x509 " PKI_EC " -subj /CN=rogue -days 2 -keyout rogue.key -out rogue.pem; "
	         "} >openssl.log 2>&1",
	         k->dir);
#undef PKI_EC
	rc = system(cmd);
	ck_assert_msg(rc == 0, "openssl failed (see %s/openssl.log)", k->dir);
	snprintf(k->ca, sizeof(k->ca), "%s/ca.pem", k->dir);
	snprintf(k->server_cert, sizeof(k->server_cert), "%s/server.pem", k->dir);
	snprintf(k->server_key, sizeof(k->server_key), "%s/server.key", k->dir);
	snprintf(k->client_cert, sizeof(k->client_cert), "%s/client.pem", k->dir);
	snprintf(k->client_key, sizeof(k->client_key), "%s/client.key", k->dir);
	snprintf(k->rogue_cert, sizeof(k->rogue_cert), "%s/rogue.pem", k->dir);
	snprintf(k->rogue_key, sizeof(k->rogue_key), "%s/rogue.key", k->dir);
	return true;
}

static void pki_free(struct pki *k)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct auth_case {
	const char *name;
	const char *userpwd, *header;
	bool ok;
};

static const struct auth_case auth_cases[] = {
	{ "no header", NULL, NULL, false },
	{ "wrong password", "admin:wrong", NULL, false },
	{ "wrong user", "root:s3cret", NULL, false },
	{ "password prefix", "admin:s3cre", NULL, false },
	{ "password longer", "admin:s3cret!", NULL, false },
	{ "empty", NULL, "Basic ", false },
	{ "not base64", NULL, "Basic !!!!", false },
	{ "no colon", NULL, "Basic YWRtaW4=", false }, /* "admin" */
	{ "bearer", NULL, "Bearer YWRtaW46czNjcmV0", false },
	{ "no scheme", NULL, "YWRtaW46czNjcmV0", false },
	{ "bad padding", NULL, "Basic YWRtaW46czNjcmV0=", false },
	{ "right", "admin:s3cret", NULL, true },
	{ "right, scheme lower case", NULL, "basic YWRtaW46czNjcmV0", true }, /* admin:s3cret */
};

struct auth_ep {
	const char *method, *path, *body;
	long ok_code;
};

static const struct auth_ep auth_eps[] = {
	{ "POST", "/restart", NULL, 202 },
	{ "POST", "/reload", "{}", 202 },
	{ "POST", "/reinit", NULL, 202 },
	{ "POST", "/switchover", "{\"candidate\":\"ghost\"}", 412 },
	{ "POST", "/failover", "{\"candidate\":\"ghost\"}", 412 },
	{ "PATCH", "/config", "{\"ttl\":1}", 400 },
};

START_TEST(test_auth)
{
	struct api_options o;
	struct api_status st = replica_status();
	struct srv v;
	char url[256];
	char *before;

	struct pki k;

	if (!pki_make(&k))
		return;
	/* Credentials authorise writes over TLS only (plain HTTP: below). */
	memset(&o, 0, sizeof(o));
	o.auth_username = "admin";
	o.auth_password = "s3cret";
	o.certfile = k.server_cert;
	o.keyfile = k.server_key;
	srv_start(&v, "auth", REAL_ETCD, &o);
	write_cluster(&v);
	api_publish(v.s, &st);
	before = etcd_snapshot(&v);
	for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
		const struct auth_case *c = &auth_cases[i];

		for (size_t j = 0; j < sizeof(auth_eps) / sizeof(auth_eps[0]); j++) {
			const struct auth_ep *e = &auth_eps[j];
			struct req r = { .method = e->method,
				         .body = e->body,
				         .userpwd = c->userpwd,
				         .auth_hdr = c->header,
				         .https = true,
				         .cacert = k.ca };
			struct api_requests rq;
			struct answer a;

			url_of(&v, e->path, url, sizeof(url));
			r.url = url;
			http(&r, &a);
			api_take_requests(v.s, &rq);
			if (!c->ok) {
				ck_assert_msg(a.code == 401, "%s, %s %s: %ld", c->name, e->method, e->path, a.code);
				ck_assert_msg(strncmp(a.www_auth, "Basic realm=", 12) == 0, "WWW-Authenticate: %s",
				              a.www_auth);
				assert_json_error(&a, "authentication");
				ck_assert_msg(!rq.restart && !rq.reload && !rq.reinit, "%s, %s: queued", c->name,
				              e->path);
			} else {
				ck_assert_msg(a.code == e->ok_code, "%s, %s %s: %ld (%s)", c->name, e->method, e->path,
				              a.code, a.body);
				if (strcmp(e->path, "/restart") == 0)
					ck_assert(rq.restart);
				if (strcmp(e->path, "/reload") == 0)
					ck_assert(rq.reload);
				if (strcmp(e->path, "/reinit") == 0)
					ck_assert(rq.reinit);
			}
			answer_free(&a);
		}
	}
	assert_unchanged(&v, before, "the auth table");
	free(before);

	/* Reads need no credentials. */
	{
		static const char *const reads[] = { "/replica", "/status", "/metrics", "/cluster", "/config" };
		struct answer a;

		for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
			struct req r = { .method = "GET", .url = url, .https = true, .cacert = k.ca };

			url_of(&v, reads[i], url, sizeof(url));
			http(&r, &a);
			ck_assert_msg(a.code == 200, "GET %s: %ld", reads[i], a.code);
			answer_free(&a);
		}
		{
			struct req r = { .method = "OPTIONS", .url = url, .https = true, .cacert = k.ca };

			url_of(&v, "/replica", url, sizeof(url));
			http(&r, &a);
			ck_assert_int_eq(a.code, 200);
			answer_free(&a);
		}
	}
	srv_stop(&v);

	/* The same credentials over plain HTTP: never a write, and the answer
	 * names the key that would make it possible. */
	memset(&o, 0, sizeof(o));
	o.auth_username = "admin";
	o.auth_password = "s3cret";
	srv_start(&v, "auth-plain", REAL_ETCD, &o);
	api_publish(v.s, &st);
	before = etcd_snapshot(&v);
	for (size_t j = 0; j < sizeof(auth_eps) / sizeof(auth_eps[0]); j++) {
		const struct auth_ep *e = &auth_eps[j];
		struct req r = { .method = e->method, .body = e->body, .userpwd = "admin:s3cret" };
		struct answer a;

		url_of(&v, e->path, url, sizeof(url));
		r.url = url;
		http(&r, &a);
		ck_assert_msg(a.code == 403, "plain HTTP, %s %s: %ld", e->method, e->path, a.code);
		assert_json_error(&a, "restapi.certfile");
		answer_free(&a);
		assert_nothing_queued(&v, e->path);
	}
	assert_unchanged(&v, before, "basic auth over plain HTTP");
	free(before);
	srv_stop(&v);
	pki_free(&k);
}
END_TEST

/* ---- bodies: too large, malformed ------------------------------------------------------ */

START_TEST(test_bodies)
{
	static const struct {
		const char *method, *path;
	} writes[] = { { "POST", "/restart" },  { "POST", "/reload" },     { "POST", "/reinit" },
		       { "POST", "/failover" }, { "POST", "/switchover" }, { "PATCH", "/config" } };
	static const char *const malformed[] = { "{",  "{\"candidate\":}",   "nul\x01l", "{\"a\":1}}",
		                                 "  ", "{\"a\":\"\\u0000\"}" };
	struct api_status st = replica_status();
	size_t big_len = 70 * 1024;
	char *big = malloc(big_len + 1);
	struct srv v;
	char url[256];
	char *before;

	ck_assert_ptr_nonnull(big);
	/* A JSON object that would be valid but for its size. */
	memset(big, ' ', big_len);
	big[0] = '{';
	big[big_len - 1] = '}';
	big[big_len] = '\0';
	srv_start(&v, "bodies", REAL_ETCD, NULL);
	write_cluster(&v);
	api_publish(v.s, &st);
	before = etcd_snapshot(&v);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		url_of(&v, writes[i].path, url, sizeof(url));
		/* 0: Content-Length with Expect: 100-continue, refused before the
		 * body is sent; 1: chunked, read up to the cap and dropped after;
		 * 2: Content-Length sent at once: the server answers 413 and closes
		 * without reading, so the client may see a reset instead. */
		for (int mode = 0; mode < 3; mode++) {
			struct req r = { .method = writes[i].method,
				         .url = url,
				         .body = big,
				         .chunked = mode == 1,
				         .expect_continue = mode == 0,
				         .may_reset = mode == 2 };
			struct answer a;

			http(&r, &a);
			ck_assert_msg(a.code == 413 || (mode == 2 && a.code == 0), "%s %s, %d KiB, mode %d: %ld",
			              writes[i].method, writes[i].path, (int)(big_len / 1024), mode, a.code);
			if (a.len)
				assert_json_error(&a, "larger than");
			answer_free(&a);
			assert_nothing_queued(&v, "a 70 KiB body");
		}
		for (size_t j = 0; j < sizeof(malformed) / sizeof(malformed[0]); j++) {
			struct answer a;

			http_simple(writes[i].method, url, malformed[j], &a);
			ck_assert_msg(a.code == 400, "%s %s '%s': %ld", writes[i].method, writes[i].path, malformed[j],
			              a.code);
			assert_json_error(&a, "malformed JSON");
			answer_free(&a);
			assert_nothing_queued(&v, "malformed JSON");
		}
		/* Valid JSON of the wrong shape. */
		{
			struct answer a;

			http_simple(writes[i].method, url, "[\"restart_pending\"]", &a);
			ck_assert_msg(a.code == 400, "%s %s with an array: %ld", writes[i].method, writes[i].path,
			              a.code);
			assert_json_error(&a, NULL);
			answer_free(&a);
			assert_nothing_queued(&v, "a JSON array");
		}
	}
	/* A body just under the cap is read. */
	{
		size_t n = API_REQUEST_BODY_MAX;
		struct req r = { .method = "POST", .body = big, .body_len = n };
		struct answer a;
		struct api_requests rq;

		big[n - 1] = '}';
		url_of(&v, "/reload", url, sizeof(url));
		r.url = url;
		http(&r, &a);
		ck_assert_msg(a.code == 202, "64 KiB body: %ld %s", a.code, a.body);
		answer_free(&a);
		api_take_requests(v.s, &rq);
		ck_assert(rq.reload);
	}
	/* Wrong types in the fields. */
	{
		static const struct {
			const char *path, *body, *error;
		} typed[] = {
			{ "/restart", "{\"restart_pending\":\"yes\"}", "restart_pending" },
			{ "/switchover", "{\"candidate\":7}", "candidate" },
			{ "/switchover", "{\"leader\":[]}", "leader" },
			{ "/switchover", "{\"force\":1}", "force" },
			{ "/switchover", "{\"scheduled_at\":-5}", "scheduled_at" },
			{ "/switchover", "{\"scheduled_at\":1.5}", "scheduled_at" },
			{ "/switchover",
			  "{\"candidate\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
			  "candidate" },
			{ "/failover", "{\"candidate\":null}", "candidate" },
		};
		for (size_t i = 0; i < sizeof(typed) / sizeof(typed[0]); i++) {
			struct answer a;

			url_of(&v, typed[i].path, url, sizeof(url));
			http_simple("POST", url, typed[i].body, &a);
			ck_assert_msg(a.code == 400, "%s %s: %ld %s", typed[i].path, typed[i].body, a.code, a.body);
			assert_json_error(&a, typed[i].error);
			answer_free(&a);
			assert_nothing_queued(&v, typed[i].body);
		}
	}
	assert_unchanged(&v, before, "refused bodies");
	free(before);
	free(big);
	srv_stop(&v);
}
END_TEST

/* ---- the cluster's keys through the API -------------------------------------------------- */

START_TEST(test_cluster_history_config)
{
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256];
	json_t *members, *m;

	srv_start(&v, "views", REAL_ETCD, NULL);
	api_publish(v.s, &st);

	/* An empty scope: no leader, no members, defaults, no history. */
	url_of(&v, "/cluster", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	ck_assert(json_is_null(json_object_get(a.json, "leader")));
	ck_assert_uint_eq(json_array_size(json_object_get(a.json, "members")), 0);
	answer_free(&a);
	url_of(&v, "/history", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert_str_eq(a.body, "[]");
	answer_free(&a);
	url_of(&v, "/config", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert(json_number_value(json_object_get(a.json, "ttl")) == 5);
	ck_assert(json_number_value(json_object_get(a.json, "loop_wait")) == 1);
	ck_assert_int_eq(json_integer_value(json_object_get(a.json, "maximum_lag_on_failover")), 1048576);
	answer_free(&a);

	write_cluster(&v);
	put(&v, v.k.config, "{\"ttl\":10,\"loop_wait\":2,\"retry_timeout\":3,\"pause\":true}");
	put(&v, v.k.history,
	    "[{\"timeline\":1,\"lsn\":50,\"reason\":\"bootstrap\",\"time\":\"2025-01-31T12:00:00Z\",\"leader\":\"node2\"},"
	    "{\"timeline\":2,\"lsn\":100,\"reason\":\"failover\",\"time\":\"2025-01-31T12:05:00Z\",\"leader\":\"node1\"}]");
	url_of(&v, "/cluster", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	ck_assert_str_eq(json_string_value(json_object_get(a.json, "scope")), "views");
	ck_assert_str_eq(json_string_value(json_object_get(a.json, "leader")), "node1");
	ck_assert(json_is_true(json_object_get(a.json, "paused")));
	ck_assert(json_is_true(json_object_get(a.json, "pause")));
	ck_assert(json_is_null(json_object_get(a.json, "switchover")));
	members = json_object_get(a.json, "members");
	ck_assert_uint_eq(json_array_size(members), 3);
	m = json_array_get(members, 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "node1");
	/* Patroni's role names; baton's own beside; no lag for the leader */
	ck_assert_str_eq(json_string_value(json_object_get(m, "role")), "leader");
	ck_assert_str_eq(json_string_value(json_object_get(m, "baton_role")), "primary");
	ck_assert(json_is_true(json_object_get(m, "is_leader")));
	ck_assert_ptr_null(json_object_get(m, "lag"));
	m = json_array_get(members, 1);
	ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "node2");
	ck_assert_str_eq(json_string_value(json_object_get(m, "state")), "running");
	ck_assert_str_eq(json_string_value(json_object_get(m, "api_url")), "http://127.0.0.1:8008");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "timeline")), 3);
	/* behind the status key's 6000, which is ahead of node1's record */
	ck_assert_int_eq(json_integer_value(json_object_get(m, "lag")), 2000);
	ck_assert_str_eq(json_string_value(json_object_get(m, "role")), "replica");
	ck_assert(json_is_false(json_object_get(m, "is_leader")));
	answer_free(&a);

	put(&v, v.k.switchover, "{\"from\":\"node1\",\"to\":\"node2\",\"kind\":\"switchover\"}");
	http_simple("GET", url, NULL, &a);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a.json, "switchover"), "to")), "node2");
	answer_free(&a);

	url_of(&v, "/history", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	/* Patroni's lines: [ended timeline, lsn, reason, time, new leader]; no
	 * line for the bootstrap. */
	ck_assert_uint_eq(json_array_size(a.json), 1);
	{
		char *line = json_dumps(json_array_get(a.json, 0), JSON_COMPACT);

		ck_assert_str_eq(line, "[1,100,\"failover\",\"2025-01-31T12:05:00+00:00\",\"node1\"]");
		free(line);
	}
	answer_free(&a);
	put(&v, v.k.history, "{\"not\":\"an array\"}");
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 500);
	assert_json_error(&a, "history");
	answer_free(&a);

	url_of(&v, "/config", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert(json_number_value(json_object_get(a.json, "ttl")) == 10);
	ck_assert(json_is_true(json_object_get(a.json, "pause")));
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

START_TEST(test_patch_config)
{
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256];
	char *before, *val;
	json_t *cfg;

	srv_start(&v, "patch", REAL_ETCD, NULL);
	api_publish(v.s, &st);
	write_cluster(&v);
	url_of(&v, "/config", url, sizeof(url));

	http_simple("PATCH", url, "{\"ttl\":10,\"loop_wait\":2,\"postgresql\":{\"parameters\":{\"work_mem\":\"8MB\"}}}",
	            &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.config);
	cfg = json_loads(val, 0, NULL);
	ck_assert_msg(cfg != NULL, "%s", val);
	ck_assert(json_number_value(json_object_get(cfg, "loop_wait")) == 2);
	ck_assert(json_number_value(json_object_get(cfg, "retry_timeout")) == 2); /* kept */
	ck_assert_str_eq(json_string_value(
	                         json_object_get(json_object_get(json_object_get(cfg, "postgresql"), "parameters"),
	                                         "work_mem")),
	                 "8MB");
	json_decref(cfg);
	free(val);

	/* null deletes (RFC 7386), other parameters stay */
	http_simple("PATCH", url,
	            "{\"postgresql\":{\"parameters\":{\"work_mem\":null,\"max_connections\":200}},\"pause\":true}", &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.config);
	cfg = json_loads(val, 0, NULL);
	ck_assert_ptr_null(
	        json_object_get(json_object_get(json_object_get(cfg, "postgresql"), "parameters"), "work_mem"));
	ck_assert_ptr_nonnull(
	        json_object_get(json_object_get(json_object_get(cfg, "postgresql"), "parameters"), "max_connections"));
	ck_assert(json_is_true(json_object_get(cfg, "pause")));
	json_decref(cfg);
	free(val);

	/* Refusals leave the key as it was. */
	before = etcd_snapshot(&v);
	{
		static const struct {
			const char *body;
			long code;
			const char *error;
		} bad[] = {
			{ "{\"ttl\":1}", 400, "ttl" },
			{ "{\"loop_wait\":10}", 400, "ttl" }, /* timing rule */
			{ "{\"ttl\":\"5\"}", 400, "ttl" },
			{ "{\"bogus\":1}", 400, "bogus" },
			{ "{\"pause\":\"yes\"}", 400, "pause" },
			{ "{\"postgresql\":{\"parameters\":{\"bad name\":1}}}", 400, "" },
			{ "\"ttl\"", 400, "JSON object" },
			{ "{\"ttl\":", 400, "malformed JSON" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			http_simple("PATCH", url, bad[i].body, &a);
			ck_assert_msg(a.code == bad[i].code, "PATCH %s: %ld %s", bad[i].body, a.code, a.body);
			assert_json_error(&a, bad[i].error);
			answer_free(&a);
		}
	}
	assert_unchanged(&v, before, "refused config patches");
	free(before);

	/* An unreadable config key: GET says so, a patch replaces it (RFC 7386). */
	put(&v, v.k.config, "not json");
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 500);
	assert_json_error(&a, "config");
	answer_free(&a);
	http_simple("PATCH", url, "{\"ttl\":6}", &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.config);
	cfg = json_loads(val, 0, NULL);
	ck_assert_msg(cfg && json_number_value(json_object_get(cfg, "ttl")) == 6, "%s", val);
	json_decref(cfg);
	free(val);

	/* With no config key, the patch applies to the defaults. */
	{
		struct etcd_error e;

		ck_assert_int_eq(etcd_delete(v.c, v.k.config, NULL, &e), ETCD_OK);
	}
	http_simple("PATCH", url, "{\"maximum_lag_on_failover\":0}", &a);
	ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.config);
	cfg = json_loads(val, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(cfg, "maximum_lag_on_failover")), 0);
	ck_assert(json_number_value(json_object_get(cfg, "ttl")) == 5);
	json_decref(cfg);
	free(val);
	srv_stop(&v);
}
END_TEST

START_TEST(test_switchover)
{
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256], body[256], iso[64];
	char *before, *val;
	json_t *sw;
	time_t later = time(NULL) + 3600;
	struct tm tm;

	srv_start(&v, "switch", REAL_ETCD, NULL);
	api_publish(v.s, &st);
	write_cluster(&v);
	url_of(&v, "/switchover", url, sizeof(url));

	/* Refusals: 412 (Patroni's code) naming the reason, 400 for a bad request; etcd unchanged. */
	before = etcd_snapshot(&v);
	{
		static const struct {
			const char *path, *body;
			long code;
			const char *error;
		} bad[] = {
			{ "/switchover", "{\"candidate\":\"ghost\"}", 412, "'ghost' is not a member" },
			{ "/switchover", "{\"candidate\":\"node1\"}", 412, "already the leader" },
			{ "/switchover", "{\"leader\":\"node2\"}", 412, "not the leader" },
			{ "/switchover", "{\"candidate\":\"node3\"}", 412, "not a healthy replica" },
			{ "/switchover", "{\"candidate\":\"node2\",\"scheduled_at\":\"2001-01-01T00:00:00Z\"}", 412,
			  "not in the future" },
			{ "/switchover", "{\"candidate\":\"node2\",\"scheduled_at\":\"2030-02-30T00:00:00Z\"}", 400,
			  "scheduled_at" },
			{ "/failover", "{\"candidate\":\"ghost\"}", 412, "'ghost' is not a member" },
			{ "/failover", "{\"candidate\":\"node1\"}", 412, "already the leader" },
			{ "/failover", "{\"leader\":\"node1\"}", 400, "candidate" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char u[256];

			url_of(&v, bad[i].path, u, sizeof(u));
			http_simple("POST", u, bad[i].body, &a);
			ck_assert_msg(a.code == bad[i].code, "%s %s: %ld %s", bad[i].path, bad[i].body, a.code, a.body);
			assert_json_error(&a, bad[i].error);
			answer_free(&a);
		}
	}
	assert_unchanged(&v, before, "refused switchovers");
	free(before);

	/* Scheduled, with an ISO 8601 time: written with the time in seconds. */
	gmtime_r(&later, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"leader\":\"node1\",\"candidate\":\"node2\",\"scheduled_at\":\"%s\"}", iso);
	http_simple("POST", url, body, &a);
	ck_assert_msg(a.code == 202, "%ld %s", a.code, a.body);
	ck_assert_int_eq(json_integer_value(json_object_get(a.json, "scheduled_at")), (json_int_t)later);
	answer_free(&a);
	val = get_value(&v, v.k.switchover);
	ck_assert_ptr_nonnull(val);
	sw = json_loads(val, 0, NULL);
	ck_assert_msg(sw != NULL, "%s", val);
	ck_assert_str_eq(json_string_value(json_object_get(sw, "to")), "node2");
	ck_assert_str_eq(json_string_value(json_object_get(sw, "from")), "node1");
	ck_assert_int_eq(json_integer_value(json_object_get(sw, "scheduled_at")), (json_int_t)later);
	json_decref(sw);
	free(val);

	/* A second one while the first is pending: 412, nothing changes. */
	before = etcd_snapshot(&v);
	http_simple("POST", url, "{\"candidate\":\"node2\"}", &a);
	ck_assert_int_eq(a.code, 412);
	assert_json_error(&a, "already pending");
	answer_free(&a);
	assert_unchanged(&v, before, "a second switchover");
	free(before);

	/* Failover, now, to a named candidate (unix seconds are refused for it). */
	{
		struct etcd_error e;

		ck_assert_int_eq(etcd_delete(v.c, v.k.switchover, NULL, &e), ETCD_OK);
		ck_assert_int_eq(etcd_delete(v.c, v.k.leader, NULL, &e), ETCD_OK);
	}
	url_of(&v, "/failover", url, sizeof(url));
	http_simple("POST", url, "{\"candidate\":\"node2\"}", &a);
	ck_assert_msg(a.code == 202, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.switchover);
	sw = json_loads(val, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(sw, "kind")), "failover");
	ck_assert_str_eq(json_string_value(json_object_get(sw, "to")), "node2");
	json_decref(sw);
	free(val);

	/* Switchover to the best candidate with unix seconds. */
	{
		struct etcd_error e;

		ck_assert_int_eq(etcd_delete(v.c, v.k.switchover, NULL, &e), ETCD_OK);
	}
	put(&v, v.k.leader, "node1");
	url_of(&v, "/switchover", url, sizeof(url));
	snprintf(body, sizeof(body), "{\"scheduled_at\":%lld}", (long long)later);
	http_simple("POST", url, body, &a);
	ck_assert_msg(a.code == 202, "%ld %s", a.code, a.body);
	answer_free(&a);
	val = get_value(&v, v.k.switchover);
	sw = json_loads(val, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(sw, "scheduled_at")), (json_int_t)later);
	json_decref(sw);
	free(val);
	srv_stop(&v);
}
END_TEST

/* etcd unreachable: 503 with a JSON error naming the cause, quickly. */
START_TEST(test_etcd_down)
{
	static const struct {
		const char *method, *path, *body;
	} cases[] = {
		{ "GET", "/cluster", NULL },
		{ "GET", "/history", NULL },
		{ "GET", "/config", NULL },
		{ "PATCH", "/config", "{\"ttl\":10}" },
		{ "POST", "/switchover", "{\"candidate\":\"node2\"}" },
		{ "POST", "/failover", "{\"candidate\":\"node2\"}" },
	};
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "down", DEAD_ETCD, NULL);
	api_publish(v.s, &st);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		url_of(&v, cases[i].path, url, sizeof(url));
		http_simple(cases[i].method, url, cases[i].body, &a);
		ck_assert_msg(a.code == 503, "%s %s: %ld %s", cases[i].method, cases[i].path, a.code, a.body);
		assert_json_error(&a, "etcd");
		answer_free(&a);
	}
	/* Health checks do not need etcd. */
	url_of(&v, "/primary", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 200);
	answer_free(&a);
	srv_stop(&v);

	/* Without etcd configured at all: 503 too. */
	srv_start(&v, "none", NO_ETCD, NULL);
	url_of(&v, "/cluster", url, sizeof(url));
	http_simple("GET", url, NULL, &a);
	ck_assert_int_eq(a.code, 503);
	assert_json_error(&a, "not configured");
	answer_free(&a);
	srv_stop(&v);
}
END_TEST

/* ---- TLS ----------------------------------------------------------------------------- */

START_TEST(test_https)
{
	struct api_options o;
	struct api_status st = primary_status();
	struct answer a;
	struct srv v;
	char dir[] = "/tmp/check_api_tls.XXXXXX", cert[300], key[300], cmd[1024], url[256], err[512] = "";
	int rc;

	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_https: SKIPPED: openssl is not installed (apt-get install openssl)\n");
		return;
	}
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout '%s' -out '%s' "
	         ">'%s/openssl.log' 2>&1",
	         key, cert, dir);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "openssl failed (see %s/openssl.log)", dir);

	memset(&o, 0, sizeof(o));
	o.certfile = cert;
	o.keyfile = key;
	srv_start(&v, "tls", NO_ETCD, &o);
	api_publish(v.s, &st);
	url_of(&v, "/primary", url, sizeof(url));
	ck_assert(strncmp(url, "https://", 8) == 0);
	{
		struct req r = { .method = "GET", .url = url, .https = true };

		http(&r, &a);
		ck_assert_msg(a.code == 200, "%ld %s", a.code, a.body);
		ck_assert_msg(a.json && json_is_true(json_object_get(a.json, "ok")), "%s", a.body);
		answer_free(&a);
	}
	/* The peer client speaks HTTPS too (to a self-signed certificate it
	 * refuses: certificates are verified). */
	{
		struct api_status back;
		char e2[512];

		ck_assert(!peer_get_status(NULL, v.base, 2, &back, NULL, e2, sizeof(e2)));
	}
	srv_stop(&v);

	/* Missing or unreadable files: a clear error naming the file. */
	{
		char missing[400];

		char listen[64];

		snprintf(missing, sizeof(missing), "%s/nope.pem", dir);
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", etcd_proc_free_port());
		memset(&o, 0, sizeof(o));
		o.listen = listen;
		o.certfile = missing;
		o.keyfile = key;
		ck_assert_ptr_null(api_start_opts(&o, err, sizeof(err)));
		ck_assert_msg(strstr(err, missing) != NULL && strstr(err, "certfile") != NULL, "%s", err);
		o.certfile = cert;
		o.keyfile = missing;
		ck_assert_ptr_null(api_start_opts(&o, err, sizeof(err)));
		ck_assert_msg(strstr(err, missing) != NULL && strstr(err, "keyfile") != NULL, "%s", err);
		o.keyfile = dir; /* a directory is no PEM file */
		ck_assert_ptr_null(api_start_opts(&o, err, sizeof(err)));
		ck_assert_msg(strstr(err, dir) != NULL, "%s", err);
		o.keyfile = NULL;
		ck_assert_ptr_null(api_start_opts(&o, err, sizeof(err)));
		ck_assert_msg(strstr(err, "together") != NULL, "%s", err);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the socket-free handler -------------------------------------------------------------- */

/* failsafe_mode: a member confirms the leader it last knew only while it
 * cannot reach etcd itself (by its loop's last read, or, that read being a
 * moment old, by asking etcd then), never while its loop takes the key,
 * and the loop learns when it did. */
START_TEST(test_failsafe_confirm)
{
	static const struct {
		bool etcd_ok, is_leader, etcd_dead, closed;
		const char *body;
		int code;
	} t[] = {
		{ false, false, false, false, "{\"leader\":\"node1\"}", 200 },
		{ true, false, false, false, "{\"leader\":\"node1\"}", 409 }, /* we reach etcd: the key decides */
		{ true, false, true, false, "{\"leader\":\"node1\"}", 200 },  /* the loop's read is old: etcd is gone */
		{ false, false, false, true, "{\"leader\":\"node1\"}", 409 }, /* our loop is taking the key */
		{ true, false, true, true, "{\"leader\":\"node1\"}", 409 },   /* the same, etcd gone */
		{ false, false, false, false, "{\"leader\":\"node9\"}", 409 }, /* not the leader we knew */
		{ false, true, false, false, "{\"leader\":\"node1\"}", 409 },  /* we are the leader */
		{ false, false, false, false, "{\"leader\":1}", 400 },
		{ false, false, false, false, "[]", 400 },
		{ false, false, false, false, NULL, 400 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct api_options o;
		struct api_status st = replica_status();
		struct api_server *s;
		struct api_request rq;
		struct api_reply r;
		struct api_requests q;
		struct etcd_config ec;
		const char *dead = "http://127.0.0.1:1"; /* nothing listens: refused at once */
		char err[256];

		memset(&o, 0, sizeof(o));
		memset(&ec, 0, sizeof(ec));
		o.allow_unauthenticated_writes = true;
		if (t[i].etcd_dead) {
			ec.endpoints = &dead;
			ec.n_endpoints = 1;
			o.etcd = &ec;
			o.scope = "fs";
		}
		s = api_server_new(&o, err, sizeof(err));
		ck_assert_msg(s != NULL, "%s", err);
		snprintf(st.leader, sizeof(st.leader), "node1");
		st.etcd_ok = t[i].etcd_ok;
		st.is_leader = t[i].is_leader;
		api_publish(s, &st);
		if (t[i].closed)
			ck_assert(api_failsafe_close(s) == 0);
		memset(&rq, 0, sizeof(rq));
		rq.method = "POST";
		rq.path = "/failsafe";
		rq.content_type = "application/json";
		rq.body = t[i].body;
		rq.body_len = t[i].body ? strlen(t[i].body) : 0;
		api_handle(s, &rq, &r);
		ck_assert_msg((int)r.code == t[i].code, "row %zu: %d, want %d (%s)", i, (int)r.code, t[i].code,
		              r.body ? r.body : "");
		api_reply_free(&r);
		if (t[i].code == 200) {
			/* The loop about to take the key sees the confirmation. */
			ck_assert_msg(api_failsafe_close(s) > 0, "row %zu: the gate missed the confirmation", i);
			api_failsafe_reopen(s);
		}
		api_take_requests(s, &q);
		if (t[i].code == 200)
			ck_assert_msg(q.failsafe_seen_at > 0, "row %zu: confirmation not handed to the loop", i);
		else
			ck_assert_msg(q.failsafe_seen_at == 0, "row %zu: a refusal was recorded", i);
		api_stop(s);
	}
}
END_TEST

START_TEST(test_handle_direct)
{
	struct api_options o;
	struct api_status st = replica_status();
	struct api_server *s;
	struct api_request rq;
	struct api_reply r;
	struct api_requests q;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.auth_username = "u";
	o.auth_password = "p";
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	api_publish(s, &st);

	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.path = "/replica";
	rq.query = "lag=2000&lag=1";
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 200); /* the first lag= counts */
	ck_assert_str_eq(r.content_type, "application/json");
	ck_assert_uint_eq(r.body_len, strlen(r.body));
	api_reply_free(&r);

	/* a body with a NUL byte inside is malformed, not truncated */
	rq.method = "POST";
	rq.path = "/restart";
	rq.query = NULL;
	rq.tls = true;
	rq.content_type = "application/json";
	rq.authorization = "Basic dTpw"; /* u:p */
	rq.body = "{}\0{\"restart_pending\":true}";
	rq.body_len = 27;
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 400);
	api_reply_free(&r);
	api_take_requests(s, &q);
	ck_assert(!q.restart);

	rq.body_too_large = true;
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 413);
	api_reply_free(&r);
	rq.body_too_large = false;

	rq.method = NULL;
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 405);
	ck_assert_str_eq(r.allow, "POST, DELETE");
	api_reply_free(&r);
	rq.path = NULL;
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 404);
	api_reply_free(&r);

	rq.method = "POST";
	rq.path = "/reload";
	rq.authorization = "Basic dTpx"; /* u:q */
	rq.body = NULL;
	rq.body_len = 0;
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 401);
	ck_assert(r.authenticate);
	api_reply_free(&r);
	rq.authorization = "Basic dTpw";
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 202);
	api_reply_free(&r);
	api_take_requests(s, &q);
	ck_assert(q.reload && !q.restart);
	api_take_requests(s, &q);
	ck_assert(!q.reload);
	api_stop(s);

	/* options checked */
	o.auth_password = NULL;
	ck_assert_ptr_null(api_server_new(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "password") != NULL, "%s", err);
	ck_assert_ptr_null(api_server_new(NULL, err, sizeof(err)));
}
END_TEST

/* ---- Patroni's health endpoints (issue 13): role × endpoint × method ---------------- */

enum pt_node {
	PT_PRIMARY,
	PT_REPLICA,
	PT_SYNC,
	PT_QUORUM,
	PT_STOPPED,
	PT_PROMOTING,
	PT_PAUSED,
	PT_LEADER_DOWN,
	PT_STANDBY_LEADER,
	PT_N
};

static const char *const pt_node_names[] = { "primary",        "async replica",         "sync standby",
	                                     "quorum standby", "stopped replica",       "leader still a replica",
	                                     "replay paused",  "leader, Postgres down", "standby leader" };

static struct api_status pt_status(enum pt_node n)
{
	struct api_status st = n == PT_PRIMARY || n == PT_PROMOTING || n == PT_LEADER_DOWN || n == PT_STANDBY_LEADER
	                               ? primary_status()
	                               : replica_status();

	snprintf(st.replication_state, sizeof(st.replication_state), "%s", st.is_leader ? "" : "streaming");
	st.failover_priority = 1;
	switch (n) {
	case PT_SYNC:
		st.sync_standby = true;
		break;
	case PT_QUORUM:
		st.sync_standby = true;
		st.sync_quorum = true;
		break;
	case PT_STOPPED:
		st.pg_running = false;
		snprintf(st.role, sizeof(st.role), "stopped");
		snprintf(st.state, sizeof(st.state), "stopped");
		break;
	case PT_PROMOTING:
		snprintf(st.role, sizeof(st.role), "replica");
		snprintf(st.state, sizeof(st.state), "promoting");
		break;
	case PT_PAUSED:
		snprintf(st.state, sizeof(st.state), "replay paused");
		break;
	case PT_LEADER_DOWN:
		st.pg_running = false;
		snprintf(st.role, sizeof(st.role), "stopped");
		snprintf(st.state, sizeof(st.state), "stopped");
		break;
	case PT_STANDBY_LEADER:
		/* the key of a standby cluster, Postgres a replica of the other site */
		snprintf(st.role, sizeof(st.role), "replica");
		st.standby_leader = true;
		break;
	default:
		break;
	}
	return st;
}

struct pt_case {
	const char *path;
	int code[PT_N]; /* primary, replica, sync, quorum, stopped, promoting, paused, leader down, standby leader */
};

static const struct pt_case pt_cases[] = {
	{ "/", { 200, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/primary", { 200, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/master", { 200, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/read-write", { 200, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/leader", { 200, 503, 503, 503, 503, 200, 503, 200, 503 } },
	{ "/standby-leader", { 503, 503, 503, 503, 503, 503, 503, 503, 200 } },
	{ "/replica", { 503, 200, 200, 200, 503, 503, 503, 503, 503 } },
	{ "/replica?lag=999", { 503, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/replica?lag=1000", { 503, 200, 200, 200, 503, 503, 503, 503, 503 } },
	{ "/replica?replication_state=streaming", { 503, 200, 200, 200, 503, 503, 503, 503, 503 } },
	{ "/replica?replication_state=in%20archive%20recovery", { 503, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/replica?tag_nosync=false&tag_failover_priority=1", { 503, 200, 200, 200, 503, 503, 503, 503, 503 } },
	{ "/replica?tag_nosync=TRUE", { 503, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/replica?tag_noloadbalance=true", { 503, 503, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/read-only", { 200, 200, 200, 200, 503, 503, 503, 503, 200 } },
	{ "/read-only?tag_nofailover=true", { 200, 503, 503, 503, 503, 503, 503, 503, 200 } },
	{ "/read-only-sync", { 200, 503, 200, 503, 503, 503, 503, 503, 503 } },
	{ "/synchronous", { 503, 503, 200, 503, 503, 503, 503, 503, 503 } },
	{ "/sync", { 503, 503, 200, 503, 503, 503, 503, 503, 503 } },
	{ "/sync?tag_nofailover=false", { 503, 503, 200, 503, 503, 503, 503, 503, 503 } },
	{ "/asynchronous", { 503, 200, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/async", { 503, 200, 503, 503, 503, 503, 503, 503, 503 } },
	{ "/quorum", { 503, 503, 503, 200, 503, 503, 503, 503, 503 } },
	{ "/health", { 200, 200, 200, 200, 503, 200, 200, 503, 200 } },
	{ "/liveness", { 200, 200, 200, 200, 200, 200, 200, 200, 200 } },
	{ "/readiness", { 200, 200, 200, 200, 503, 503, 503, 503, 200 } },
	{ "/readiness?lag=10", { 200, 503, 503, 503, 503, 503, 503, 503, 200 } },
	{ "/patroni", { 200, 200, 200, 200, 200, 200, 200, 200, 200 } },
	{ "/replica?lag=bogus", { 400, 400, 400, 400, 400, 400, 400, 400, 400 } },
	{ "/replica?tag_x%00=1", { 400, 400, 400, 400, 400, 400, 400, 400, 400 } },
};

/* Every Patroni health path answers the same code on GET, HEAD and OPTIONS,
 * the one Patroni gives for each kind of node. */
START_TEST(test_patroni_health_table)
{
	static const char *const methods[] = { "GET", "HEAD", "OPTIONS" };
	const struct pt_case *c = &pt_cases[_i];
	struct api_options o;
	struct api_server *s;
	char err[256], path[128];

	memset(&o, 0, sizeof(o));
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	for (int n = 0; n < PT_N; n++) {
		struct api_status st = pt_status((enum pt_node)n);
		const char *q = strchr(c->path, '?');

		api_publish(s, &st);
		snprintf(path, sizeof(path), "%.*s", q ? (int)(q - c->path) : (int)strlen(c->path), c->path);
		for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
			struct api_request rq;
			struct api_reply r;

			memset(&rq, 0, sizeof(rq));
			rq.method = methods[m];
			rq.path = path;
			rq.query = q ? q + 1 : NULL;
			api_handle(s, &rq, &r);
			ck_assert_msg(r.code == (unsigned int)c->code[n], "%s %s on a %s: %u, expected %d (%s)",
			              methods[m], c->path, pt_node_names[n], r.code, c->code[n], r.body ? r.body : "");
			api_reply_free(&r);
		}
	}
	api_stop(s);
}
END_TEST

/* GET /patroni: Patroni's field names and shapes, per role. */
START_TEST(test_patroni_status)
{
	struct api_options o;
	struct api_server *s;
	struct api_status st = primary_status();
	struct api_request rq;
	struct api_reply r;
	json_t *doc, *x, *w;
	char err[256];

	memset(&o, 0, sizeof(o));
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	st.n_walsenders = 1;
	snprintf(st.walsenders[0].usename, sizeof(st.walsenders[0].usename), "replicator");
	snprintf(st.walsenders[0].application_name, sizeof(st.walsenders[0].application_name), "node2");
	snprintf(st.walsenders[0].client_addr, sizeof(st.walsenders[0].client_addr), "127.0.0.2");
	snprintf(st.walsenders[0].state, sizeof(st.walsenders[0].state), "streaming");
	snprintf(st.walsenders[0].sync_state, sizeof(st.walsenders[0].sync_state), "async");
	st.dcs_last_seen = 1764000000.5;
	api_publish(s, &st);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.path = "/patroni";
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 200);
	doc = json_loads(r.body, 0, NULL);
	ck_assert_msg(doc != NULL, "%s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "state")), "running");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "role")), "primary");
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "timeline")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "dcs_last_seen")), 1764000000);
	x = json_object_get(doc, "xlog");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "location")), 123456789);
	ck_assert_ptr_null(json_object_get(x, "replayed_location"));
	w = json_array_get(json_object_get(doc, "replication"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(w, "usename")), "replicator");
	ck_assert_str_eq(json_string_value(json_object_get(w, "application_name")), "node2");
	ck_assert_str_eq(json_string_value(json_object_get(w, "client_addr")), "127.0.0.2");
	ck_assert_str_eq(json_string_value(json_object_get(w, "sync_state")), "async");
	ck_assert_int_eq(json_integer_value(json_object_get(w, "sync_priority")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "patroni"), "scope")), "main");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "patroni"), "name")), "node1");
	ck_assert(json_is_string(json_object_get(json_object_get(doc, "patroni"), "version")));
	json_decref(doc);
	api_reply_free(&r);

	/* A replica: received/replayed locations, paused, replication_state;
	 * a dcs_last_seen of 0 keeps the last good one. */
	st = replica_status();
	st.receive_lsn = 5000;
	st.replay_lsn = 4000;
	st.replay_paused = true;
	snprintf(st.replication_state, sizeof(st.replication_state), "streaming");
	api_publish(s, &st);
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 200);
	doc = json_loads(r.body, 0, NULL);
	ck_assert_msg(doc != NULL, "%s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "role")), "replica");
	x = json_object_get(doc, "xlog");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "received_location")), 5000);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "replayed_location")), 4000);
	ck_assert(json_is_true(json_object_get(x, "paused")));
	ck_assert(json_is_null(json_object_get(x, "replayed_timestamp")));
	ck_assert_ptr_null(json_object_get(x, "location"));
	ck_assert_ptr_null(json_object_get(doc, "replication"));
	ck_assert_str_eq(json_string_value(json_object_get(doc, "replication_state")), "streaming");
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "dcs_last_seen")), 1764000000);
	json_decref(doc);
	api_reply_free(&r);

	/* Once a transaction was replayed: its time, as Patroni shows it. */
	snprintf(st.replayed_timestamp, sizeof(st.replayed_timestamp), "2025-11-24 16:00:00.123456+00:00");
	api_publish(s, &st);
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 200);
	doc = json_loads(r.body, 0, NULL);
	ck_assert_msg(doc != NULL, "%s", r.body);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "xlog"), "replayed_timestamp")),
	                 "2025-11-24 16:00:00.123456+00:00");
	json_decref(doc);
	api_reply_free(&r);
	api_stop(s);
}
END_TEST

/* ---- who may write, and from where (issue 10) ------------------------------------- */

/* Writes a file holding text (a stand-in PEM: api_server_new only checks
 * that it looks like one). */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

struct rule_case {
	const char *name;
	bool tls, auth, allow_unauth;
	const char *verify; /* NULL = none */
	const char *method, *path;
	const char *authorization;
	bool cert; /* the transport verified a client certificate */
	unsigned int code;
	const char *error; /* substring of the error (NULL: not checked) */
	bool authenticate; /* a WWW-Authenticate header */
};

#define UP "Basic dTpw" /* u:p */
#define UQ "Basic dTpx" /* u:q */
static const struct rule_case rule_cases[] = {
	/* plain HTTP: nothing authorises a write but the explicit INSECURE key */
	{ "plain, nothing set", false, false, false, NULL, "POST", "/reload", NULL, false, 403,
	  "restapi.allow_unauthenticated_writes", false },
	{ "plain, nothing set, names authentication", false, false, false, NULL, "PATCH", "/config", NULL, false, 403,
	  "restapi.authentication", false },
	{ "plain, credentials right", false, true, false, NULL, "POST", "/reload", UP, false, 403, "restapi.certfile",
	  false },
	{ "plain, credentials sent to a node without auth", false, false, false, NULL, "POST", "/restart", UP, false,
	  403, "restapi.certfile", false },
	{ "plain, credentials missing", false, true, false, NULL, "POST", "/reinit", NULL, false, 403,
	  "restapi.certfile", false },
	{ "plain, open by the INSECURE key", false, false, true, NULL, "POST", "/reload", NULL, false, 202, NULL,
	  false },
	{ "plain, reads stay open", false, false, false, NULL, "GET", "/health", NULL, false, 200, NULL, false },
	/* TLS with credentials */
	{ "tls, credentials missing", true, true, false, NULL, "POST", "/reload", NULL, false, 401,
	  "restapi.authentication", true },
	{ "tls, credentials wrong", true, true, false, NULL, "POST", "/restart", UQ, false, 401, NULL, true },
	{ "tls, credentials right", true, true, false, NULL, "POST", "/reload", UP, false, 202, NULL, false },
	{ "tls, a certificate does not replace set credentials", true, true, false, "optional", "POST", "/reload", NULL,
	  true, 401, NULL, true },
	{ "tls, credentials and certificate", true, true, false, "optional", "POST", "/reload", UP, true, 202, NULL,
	  false },
	/* TLS with client certificates, no credentials */
	{ "tls, optional, certificate", true, false, false, "optional", "POST", "/reload", NULL, true, 202, NULL,
	  false },
	{ "tls, optional, no certificate", true, false, false, "optional", "POST", "/reload", NULL, false, 403,
	  "restapi.verify_client", false },
	{ "tls, optional, no certificate, reads open", true, false, false, "optional", "GET", "/health", NULL, false,
	  200, NULL, false },
	{ "tls, required, no certificate, even a read", true, false, false, "required", "GET", "/health", NULL, false,
	  403, "required", false },
	{ "tls, required, certificate", true, false, false, "required", "POST", "/reload", NULL, true, 202, NULL,
	  false },
	/* TLS that protects nothing */
	{ "tls, nothing set", true, false, false, NULL, "POST", "/reload", NULL, false, 403, "restapi.verify_client",
	  false },
	{ "tls, nothing set, credentials sent", true, false, false, NULL, "POST", "/reload", UP, false, 403,
	  "writes need credentials", false },
};
#undef UP
#undef UQ

START_TEST(test_write_rules)
{
	const struct rule_case *c = &rule_cases[_i];
	char dir[] = "/tmp/check_api_rules.XXXXXX", pem[128], err[512], cmd[128];
	struct api_status st = replica_status();
	struct api_options o;
	struct api_server *s;
	struct api_request rq;
	struct api_reply r;
	struct api_requests q;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pem, sizeof(pem), "%s/x.pem", dir);
	write_file(pem, "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n");
	memset(&o, 0, sizeof(o));
	if (c->tls) {
		o.certfile = pem;
		o.keyfile = pem;
	}
	if (c->auth) {
		o.auth_username = "u";
		o.auth_password = "p";
	}
	o.verify_client = c->verify;
	o.cafile = c->verify ? pem : NULL;
	o.allow_unauthenticated_writes = c->allow_unauth;
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s: %s", c->name, err);
	api_publish(s, &st);

	memset(&rq, 0, sizeof(rq));
	rq.method = c->method;
	rq.path = c->path;
	rq.version = "HTTP/1.1";
	rq.host = "127.0.0.1:8008";
	rq.content_type = "application/json";
	rq.client = "127.0.0.1";
	rq.tls = c->tls;
	rq.authorization = c->authorization;
	rq.client_cert_verified = c->cert;
	rq.client_subject = c->cert ? "CN=operator" : NULL;
	api_handle(s, &rq, &r);
	ck_assert_msg(r.code == c->code, "%s: %u, want %u (%s)", c->name, r.code, c->code, r.body ? r.body : "");
	ck_assert_msg(r.authenticate == c->authenticate, "%s: WWW-Authenticate %d", c->name, (int)r.authenticate);
	if (c->error)
		ck_assert_msg(r.body && strstr(r.body, c->error), "%s: '%s' lacks '%s'", c->name, r.body, c->error);
	api_reply_free(&r);
	api_take_requests(s, &q);
	if (c->code != 202)
		ck_assert_msg(!q.reload && !q.restart && !q.reinit, "%s: a refused write was queued", c->name);
	api_stop(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* restapi.allowlist: writes from other addresses get 403 before their
 * credentials count; reads are not affected. */
static const struct allow_case {
	const char *client; /* NULL: MHD gave none */
	const char *method, *path;
	unsigned int code;
	const char *error;
} allow_cases[] = {
	{ "127.0.0.1", "POST", "/reload", 202, NULL },
	{ "::ffff:127.0.0.1", "POST", "/reload", 202, NULL },
	{ "10.20.30.40", "POST", "/reload", 202, NULL },
	{ "127.0.0.2", "POST", "/reload", 403, "writes from 127.0.0.2 are refused: not in restapi.allowlist" },
	{ "::1", "POST", "/restart", 403, "writes from ::1 are refused: not in restapi.allowlist" },
	{ NULL, "POST", "/reload", 403, "writes from an unknown address are refused" },
	{ "127.0.0.2", "GET", "/health", 200, NULL },
	{ "192.0.2.1", "PATCH", "/config", 403, "not in restapi.allowlist" },
};

START_TEST(test_allowlist)
{
	const struct allow_case *c = &allow_cases[_i];
	const char *const allow[] = { "127.0.0.1", "10.0.0.0/8" };
	const char *const bad[] = { "db1.example.com" };
	char dir[] = "/tmp/check_api_allow.XXXXXX", pem[128], err[512], cmd[128];
	struct api_status st = replica_status();
	struct api_options o;
	struct api_server *s;
	struct api_request rq;
	struct api_reply r;
	struct api_requests q;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pem, sizeof(pem), "%s/x.pem", dir);
	write_file(pem, "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n");
	memset(&o, 0, sizeof(o));
	o.certfile = pem;
	o.keyfile = pem;
	o.auth_username = "u";
	o.auth_password = "p";
	o.allowlist = bad;
	o.n_allowlist = 1;
	ck_assert_ptr_null(api_server_new(&o, err, sizeof(err)));
	ck_assert_str_eq(err, "restapi.allowlist: \"db1.example.com\" is not an IP address or network");
	o.allowlist = allow;
	o.n_allowlist = 2;
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	api_publish(s, &st);

	memset(&rq, 0, sizeof(rq));
	rq.method = c->method;
	rq.path = c->path;
	rq.version = "HTTP/1.1";
	rq.host = "127.0.0.1:8008";
	rq.content_type = "application/json";
	rq.client = c->client;
	rq.tls = true;
	rq.authorization = "Basic dTpw"; /* u:p */
	api_handle(s, &rq, &r);
	ck_assert_msg(r.code == c->code, "%s %s from %s: %u, want %u (%s)", c->method, c->path,
	              c->client ? c->client : "?", r.code, c->code, r.body ? r.body : "");
	if (c->error)
		ck_assert_msg(r.body && strstr(r.body, c->error), "'%s' lacks '%s'", r.body, c->error);
	api_reply_free(&r);
	api_take_requests(s, &q);
	if (c->code == 403)
		ck_assert_msg(!q.reload && !q.restart && !q.reinit, "a refused write was queued");
	api_stop(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

struct check_case {
	const char *name;
	const char *method, *path, *version, *host, *origin, *content_type, *framing;
	unsigned int code;
	const char *error;
};

static const struct check_case check_cases[] = {
	/* Host: the names this node answers to */
	{ "host with port", "GET", "/health", "HTTP/1.1", "127.0.0.1:8008", NULL, NULL, NULL, 200, NULL },
	{ "host localhost", "GET", "/health", "HTTP/1.1", "LocalHost", NULL, NULL, NULL, 200, NULL },
	{ "host ::1", "GET", "/health", "HTTP/1.1", "[::1]:8008", NULL, NULL, NULL, 200, NULL },
	{ "host connect_address", "GET", "/health", "HTTP/1.1", "10.1.2.3:8008", NULL, NULL, NULL, 200, NULL },
	{ "host from allowed_hosts", "GET", "/health", "HTTP/1.1", "db1.example.net", NULL, NULL, NULL, 200, NULL },
	{ "host with the root dot", "GET", "/health", "HTTP/1.1", "db1.example.net.:8008", NULL, NULL, NULL, 200,
	  NULL },
	{ "host foreign (DNS rebinding)", "GET", "/cluster", "HTTP/1.1", "attacker.example:8008", NULL, NULL, NULL, 421,
	  "restapi.allowed_hosts" },
	{ "host foreign on a write", "POST", "/reload", "HTTP/1.1", "attacker.example", NULL, "application/json", NULL,
	  421, "attacker.example" },
	{ "host malformed", "GET", "/health", "HTTP/1.1", "127.0.0.1:80:80", NULL, NULL, NULL, 421, NULL },
	{ "host with a space", "GET", "/health", "HTTP/1.1", "127.0.0.1 x", NULL, NULL, NULL, 421, NULL },
	{ "host empty", "GET", "/health", "HTTP/1.1", "", NULL, NULL, NULL, 421, NULL },
	{ "host port not a number", "GET", "/health", "HTTP/1.1", "localhost:http", NULL, NULL, NULL, 421, NULL },
	{ "HTTP/1.1 without Host", "GET", "/health", "HTTP/1.1", NULL, NULL, NULL, NULL, 400, "Host" },
	{ "HTTP/1.0 without Host", "GET", "/health", "HTTP/1.0", NULL, NULL, NULL, NULL, 200, NULL },
	{ "framing", "POST", "/reload", "HTTP/1.1", "localhost", NULL, "application/json",
	  "more than one Content-Length header", 400, "Content-Length" },
	/* Content-Type of writes */
	{ "text/plain write", "POST", "/reload", "HTTP/1.1", "localhost", NULL, "text/plain", NULL, 415,
	  "application/json" },
	{ "form write", "POST", "/reload", "HTTP/1.1", "localhost", NULL, "application/x-www-form-urlencoded", NULL,
	  415, NULL },
	{ "no content type", "POST", "/restart", "HTTP/1.1", "localhost", NULL, NULL, NULL, 415, NULL },
	{ "json prefix only", "POST", "/reload", "HTTP/1.1", "localhost", NULL, "application/jsonp", NULL, 415, NULL },
	{ "json with charset", "POST", "/reload", "HTTP/1.1", "localhost", NULL, "Application/JSON; charset=utf-8",
	  NULL, 202, NULL },
	{ "reads need no content type", "GET", "/status", "HTTP/1.1", "localhost", NULL, "text/plain", NULL, 200,
	  NULL },
	/* Origin of writes */
	{ "foreign origin", "POST", "/reload", "HTTP/1.1", "127.0.0.1:8008", "https://attacker.example",
	  "application/json", NULL, 403, "Origin" },
	{ "null origin", "PATCH", "/config", "HTTP/1.1", "127.0.0.1:8008", "null", "application/json", NULL, 403,
	  "Origin" },
	{ "origin of another port", "POST", "/reload", "HTTP/1.1", "127.0.0.1:8008", "https://127.0.0.1:9999",
	  "application/json", NULL, 403, NULL },
	{ "origin over the other scheme", "POST", "/reload", "HTTP/1.1", "127.0.0.1:8008", "http://127.0.0.1:8008",
	  "application/json", NULL, 403, NULL },
	{ "own origin", "POST", "/reload", "HTTP/1.1", "127.0.0.1:8008", "https://127.0.0.1:8008", "application/json",
	  NULL, 202, NULL },
	{ "origin on a read", "GET", "/health", "HTTP/1.1", "127.0.0.1:8008", "https://attacker.example", NULL, NULL,
	  200, NULL },
};

START_TEST(test_request_checks)
{
	static const char *const allowed[] = { "db1.example.net" };
	const struct check_case *c = &check_cases[_i];
	char dir[] = "/tmp/check_api_checks.XXXXXX", pem[128], err[512], cmd[128];
	struct api_status st = replica_status();
	struct api_options o;
	struct api_server *s;
	struct api_request rq;
	struct api_reply r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pem, sizeof(pem), "%s/x.pem", dir);
	write_file(pem, "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n");
	memset(&o, 0, sizeof(o));
	o.listen = "127.0.0.1:8008";
	o.connect_address = "10.1.2.3:8008";
	o.allowed_hosts = allowed;
	o.n_allowed_hosts = 1;
	o.certfile = pem;
	o.keyfile = pem;
	o.auth_username = "u";
	o.auth_password = "p";
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	api_publish(s, &st);
	memset(&rq, 0, sizeof(rq));
	rq.method = c->method;
	rq.path = c->path;
	rq.version = c->version;
	rq.host = c->host;
	rq.origin = c->origin;
	rq.content_type = c->content_type;
	rq.framing_error = c->framing;
	rq.tls = true;
	rq.authorization = "Basic dTpw";
	api_handle(s, &rq, &r);
	ck_assert_msg(r.code == c->code, "%s: %u, want %u (%s)", c->name, r.code, c->code, r.body ? r.body : "");
	if (c->error)
		ck_assert_msg(r.body && strstr(r.body, c->error), "%s: '%s' lacks '%s'", c->name, r.body, c->error);
	api_reply_free(&r);
	api_stop(s);

	/* Listening on every address: this machine's addresses count too. */
	o.listen = "*:8008";
	o.connect_address = NULL;
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	api_publish(s, &st);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.path = "/health";
	rq.host = "127.0.0.1:8008";
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 200);
	api_reply_free(&r);
	rq.host = "10.1.2.3:8008"; /* no longer a name of this node */
	api_handle(s, &rq, &r);
	ck_assert_int_eq(r.code, 421);
	api_reply_free(&r);
	api_stop(s);

	/* verify_client without what it needs: the keys are named. */
	memset(&o, 0, sizeof(o));
	o.verify_client = "required";
	o.cafile = pem;
	ck_assert_ptr_null(api_server_new(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "restapi.verify_client") && strstr(err, "restapi.certfile is not set"), "%s", err);
	o.certfile = pem;
	o.keyfile = pem;
	o.cafile = NULL;
	o.verify_client = "optional";
	ck_assert_ptr_null(api_server_new(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "restapi.cafile is not set"), "%s", err);
	o.verify_client = "sometimes";
	ck_assert_ptr_null(api_server_new(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "sometimes"), "%s", err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the wire: raw requests, slow clients, TLS ------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TCP connection to 127.0.0.1:port (blocking, 3 s receive timeout). */
static int tcp_connect(int port)
{
	struct sockaddr_in a;
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends raw bytes and reads the answer until the server closes or 3 s
 * pass; the answer's status code (0 none) and the answer in buf. */
static int raw_http(int port, const char *text, char *buf, size_t len)
{
	int fd = tcp_connect(port), code = 0;
	size_t got = 0;
	ssize_t n;

	ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
	while (got + 1 < len && (n = recv(fd, buf + got, len - 1 - got, 0)) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") && strstr(buf, "}"))
			break; /* our answers are one JSON object */
	}
	buf[got] = '\0';
	close(fd);
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		code = 0;
	return code;
}

START_TEST(test_raw_requests)
{
	static const struct {
		const char *name, *text;
		int code;
		const char *contains;
	} t[] = {
		{ "HTTP/1.1 without Host", "GET /health HTTP/1.1\r\n\r\n", 400, "Host" },
		{ "HTTP/1.0 without Host", "GET /health HTTP/1.0\r\n\r\n", 200, NULL },
		{ "with Host", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 200, NULL },
		{ "foreign Host", "GET /health HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n", 421,
		  "restapi.allowed_hosts" },
		{ "two Hosts", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\n\r\n", 400,
		  "Host" },
		{ "conflicting Content-Length",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
		  400, "Content-Length" },
		{ "repeated Content-Length",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
		  400, "Content-Length" },
		{ "Content-Length and chunked",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  400, "Transfer-Encoding" },
		{ "Content-Length and chunked, closing",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Content-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  400, "Transfer-Encoding" },
		{ "gzip, chunked",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  400, "Transfer-Encoding" },
		{ "chunked, chunked",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Transfer-Encoding: chunked, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  400, "Transfer-Encoding" },
		{ "identity",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Transfer-Encoding: identity\r\nConnection: close\r\n\r\n{}",
		  400, "Transfer-Encoding" },
		{ "two Transfer-Encoding headers",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		  "2\r\n{}\r\n0\r\n\r\n",
		  400, "Transfer-Encoding" },
		{ "Chunked (any case), alone: accepted",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  202, NULL },
		{ "text/plain write (a cross-origin form)",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
		  "Connection: close\r\n\r\n{}",
		  415, "application/json" },
		{ "foreign Origin write",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://attacker.example\r\n"
		  "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
		  403, "Origin" },
		{ "json write",
		  "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		  "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
		  202, NULL },
	};
	struct api_status st = primary_status();
	struct srv v;
	char buf[4096];

	srv_start(&v, "raw", NO_ETCD, NULL);
	api_publish(v.s, &st);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct api_requests q;
		int code = raw_http(v.port, t[i].text, buf, sizeof(buf));

		ck_assert_msg(code == t[i].code, "%s: %d, want %d: %s", t[i].name, code, t[i].code, buf);
		if (t[i].contains)
			ck_assert_msg(strstr(buf, t[i].contains), "%s: '%s' lacks '%s'", t[i].name, buf, t[i].contains);
		api_take_requests(v.s, &q);
		ck_assert_msg(q.reload == (t[i].code == 202), "%s: reload queued %d", t[i].name, (int)q.reload);
	}
	srv_stop(&v);
}
END_TEST

/* 300 idle connections and 50 that trickle their headers a byte at a time:
 * /health still answers within a second, and the trickling ones are
 * closed at the header deadline (5 s), however steadily they send. */
START_TEST(test_slow_clients)
{
	enum { IDLE = 300, SLOW = 50 };
	static int fds[IDLE + SLOW];
	struct api_status st = primary_status();
	struct srv v;
	char url[256];
	double t0, worst = 0;
	int closed = 0;
	bool open_[SLOW];

	srv_start(&v, "slow", NO_ETCD, NULL);
	api_publish(v.s, &st);
	url_of(&v, "/health", url, sizeof(url));
	for (int i = 0; i < IDLE + SLOW; i++) {
		fds[i] = tcp_connect(v.port);
		if (i >= IDLE)
			ck_assert_int_eq(send(fds[i], "GET /hea", 8, MSG_NOSIGNAL), 8);
	}
	for (int i = 0; i < SLOW; i++)
		open_[i] = true;
	t0 = now_s();
	/* 8 s: a byte from every slow client each 0.25 s, a probe each round */
	while (now_s() - t0 < 8.0) {
		struct answer a;
		double p0 = now_s(), took;

		for (int i = 0; i < SLOW; i++) {
			if (!open_[i])
				continue;
			if (send(fds[IDLE + i], "d", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
				open_[i] = false;
				closed++;
				ck_assert_msg(now_s() - t0 >= 4.5, "slow client %d closed after only %.2f s", i,
				              now_s() - t0);
			} else {
				struct pollfd pf = { fds[IDLE + i], POLLIN, 0 };
				char c;

				/* end of file: the server shut it down */
				if (poll(&pf, 1, 0) == 1 && recv(fds[IDLE + i], &c, 1, MSG_DONTWAIT) <= 0) {
					open_[i] = false;
					closed++;
					ck_assert_msg(now_s() - t0 >= 4.5, "slow client %d closed after only %.2f s", i,
					              now_s() - t0);
				}
			}
		}
		http_simple("GET", url, NULL, &a);
		took = now_s() - p0;
		ck_assert_msg(a.code == 200, "/health under load: %ld after %.2f s", a.code, now_s() - t0);
		answer_free(&a);
		if (took > worst)
			worst = took;
		usleep(250000);
	}
	fprintf(stderr, "test_slow_clients: worst /health %.3f s, %d of %d slow clients closed\n", worst, closed, SLOW);
	ck_assert_msg(worst < 1.0, "/health took %.3f s under load", worst);
	ck_assert_msg(closed == SLOW, "only %d of %d slow clients were closed by the header deadline", closed, SLOW);
	{
		struct answer a;
		char murl[256];
		const char *m;

		url_of(&v, "/metrics", murl, sizeof(murl));
		http_simple("GET", murl, NULL, &a);
		m = strstr(a.body, "\nbaton_rest_deadline_closed_total{");
		m = m ? strstr(m, "} ") : NULL;
		ck_assert_msg(m && atoi(m + 2) >= SLOW, "/metrics does not count the closed connections: %s",
		              m ? m : "(absent)");
		answer_free(&a);
	}
	for (int i = 0; i < IDLE + SLOW; i++)
		close(fds[i]);
	srv_stop(&v);
}
END_TEST

/* TLS: 1.2 at least; restapi.verify_client with a CA. */
START_TEST(test_client_certs)
{
	struct api_status st = replica_status();
	struct api_options o;
	struct answer a;
	struct srv v;
	struct pki k;
	char health[256], reload[256];

	if (!pki_make(&k))
		return;
	memset(&o, 0, sizeof(o));
	o.certfile = k.server_cert;
	o.keyfile = k.server_key;
	o.cafile = k.ca;
	o.verify_client = "required";
	srv_start(&v, "certs", NO_ETCD, &o);
	api_publish(v.s, &st);
	url_of(&v, "/health", health, sizeof(health));
	url_of(&v, "/reload", reload, sizeof(reload));
	{
		struct req r = { .method = "GET", .url = health, .https = true, .cacert = k.ca, .may_fail = true };

		/* no certificate: refused (the handshake or the request) */
		http(&r, &a);
		ck_assert_msg(a.code == 403 || a.code == 0, "no client certificate: %ld", a.code);
		if (a.code == 403)
			assert_json_error(&a, "restapi.verify_client");
		answer_free(&a);
		/* a certificate no trusted CA signed */
		r.cert = k.rogue_cert;
		r.key = k.rogue_key;
		http(&r, &a);
		ck_assert_msg(a.code == 403 || a.code == 0, "rogue client certificate: %ld", a.code);
		answer_free(&a);
		/* the CA's client */
		r.cert = k.client_cert;
		r.key = k.client_key;
		http(&r, &a);
		ck_assert_msg(a.code == 200, "client certificate: %ld (%s)", a.code, curl_easy_strerror(a.curl_rc));
		answer_free(&a);
		/* ... may write (no credentials are configured) */
		r.method = "POST";
		r.url = reload;
		r.body = "{}";
		http(&r, &a);
		ck_assert_msg(a.code == 202, "write with a client certificate: %ld %s", a.code, a.body);
		answer_free(&a);
		/* TLS 1.1 is refused at the handshake */
		r.method = "GET";
		r.url = health;
		r.body = NULL;
		r.tls_max_1_1 = true;
		http(&r, &a);
		ck_assert_msg(a.code == 0 && a.curl_rc != CURLE_OK, "TLS 1.1: %ld", a.code);
		answer_free(&a);
		/* TLS 1.2 with an AEAD cipher works; with CBC it does not */
		r.tls_max_1_1 = false;
		r.tls_1_2_only = true;
		r.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
		http(&r, &a);
		ck_assert_msg(a.code == 200, "TLS 1.2 with AES-GCM: %ld (%s)", a.code, curl_easy_strerror(a.curl_rc));
		answer_free(&a);
		r.ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA";
		http(&r, &a);
		ck_assert_msg(a.code == 0 && a.curl_rc != CURLE_OK, "TLS 1.2 with a CBC cipher: %ld", a.code);
		answer_free(&a);
	}
	srv_stop(&v);

	/* optional: reads without a certificate, writes with one */
	o.verify_client = "optional";
	srv_start(&v, "certs-opt", NO_ETCD, &o);
	api_publish(v.s, &st);
	url_of(&v, "/health", health, sizeof(health));
	url_of(&v, "/reload", reload, sizeof(reload));
	{
		struct req r = { .method = "GET", .url = health, .https = true, .cacert = k.ca };
		struct api_requests q;

		http(&r, &a);
		ck_assert_msg(a.code == 200, "optional, read without a certificate: %ld", a.code);
		answer_free(&a);
		r.method = "POST";
		r.url = reload;
		r.body = "{}";
		http(&r, &a);
		ck_assert_msg(a.code == 403, "optional, write without a certificate: %ld", a.code);
		assert_json_error(&a, "restapi.verify_client");
		answer_free(&a);
		api_take_requests(v.s, &q);
		ck_assert(!q.reload);
		r.cert = k.rogue_cert;
		r.key = k.rogue_key;
		r.may_fail = true;
		http(&r, &a);
		ck_assert_msg(a.code == 403 || a.code == 0, "optional, write with a rogue certificate: %ld", a.code);
		answer_free(&a);
		r.cert = k.client_cert;
		r.key = k.client_key;
		http(&r, &a);
		ck_assert_msg(a.code == 202, "optional, write with a certificate: %ld %s", a.code, a.body);
		answer_free(&a);
		api_take_requests(v.s, &q);
		ck_assert(q.reload);
	}
	srv_stop(&v);
	pki_free(&k);
}
END_TEST

/* A plain restart asked after a pending-only one is not narrowed by it. */
START_TEST(test_restart_requests_merge)
{
	struct api_status st = replica_status();
	struct api_requests q;
	struct answer a;
	struct srv v;
	char url[256];

	srv_start(&v, "merge", NO_ETCD, NULL);
	api_publish(v.s, &st);
	url_of(&v, "/restart", url, sizeof(url));
	http_simple("POST", url, "{\"restart_pending\":true}", &a);
	ck_assert_int_eq(a.code, 202);
	answer_free(&a);
	http_simple("POST", url, "{\"restart_pending\":false}", &a);
	ck_assert_int_eq(a.code, 202);
	answer_free(&a);
	api_take_requests(v.s, &q);
	ck_assert(q.restart && !q.restart_pending_only);
	http_simple("POST", url, "{\"restart_pending\":true}", &a);
	answer_free(&a);
	api_take_requests(v.s, &q);
	ck_assert(q.restart && q.restart_pending_only);
	srv_stop(&v);
}
END_TEST

/* ---- etcd client statistics ------------------------------------------------------------------ */

START_TEST(test_etcd_stats)
{
	static const double bounds[ETCD_STATS_BUCKETS] = ETCD_STATS_BOUNDS;
	const char *ep;
	char dead[64];
	struct etcd_config cfg;
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_stats st;
	struct etcd_error e;

	memset(&cfg, 0, sizeof(cfg));
	ep = etcd_fixture_url();
	cfg.endpoints = &ep;
	cfg.n_endpoints = 1;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &e), ETCD_OK);
	etcd_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 0);
	for (int i = 0; i < 5; i++) {
		memset(&r, 0, sizeof(r));
		ck_assert_int_eq(etcd_get(c, "/test/stats", &r, &e), ETCD_OK);
		etcd_range_result_free(&r);
	}
	ck_assert_int_eq(etcd_put(c, "/test/stats", "x", 0, NULL, &e), ETCD_OK);
	etcd_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 6);
	ck_assert_uint_eq(st.failures, 0);
	ck_assert(st.latency_sum > 0 && st.latency_sum < 6);
	for (int i = 1; i < ETCD_STATS_BUCKETS; i++)
		ck_assert_uint_ge(st.le[i], st.le[i - 1]);
	ck_assert_uint_le(st.le[ETCD_STATS_BUCKETS - 1], st.requests);
	ck_assert(bounds[ETCD_STATS_BUCKETS - 1] == 1.0 && bounds[0] == 0.005);
	ck_assert_uint_eq(st.le[ETCD_STATS_BUCKETS - 1], 6); /* loopback: well under 1 s */
	etcd_client_free(c);

	/* Failures count too. */
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", etcd_proc_free_port());
	ep = dead;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &e), ETCD_OK);
	memset(&r, 0, sizeof(r));
	ck_assert_int_ne(etcd_get(c, "/x", &r, &e), ETCD_OK);
	etcd_range_result_free(&r);
	etcd_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 1);
	ck_assert_uint_eq(st.failures, 1);
	etcd_client_free(c);
	etcd_client_get_stats(NULL, &st);
	ck_assert_uint_eq(st.requests, 0);
}
END_TEST

/* Tags (issue 13): noloadbalance takes a replica out of the replica checks;
 * tag_KEY=VALUE filters match custom tags as Patroni compares them; the
 * tags are in /patroni. */
START_TEST(test_patroni_tags)
{
	static const struct {
		bool noloadbalance;
		const char *path;
		unsigned code;
	} cases[] = {
		{ false, "/replica", 200 },
		{ true, "/replica", 503 },
		{ true, "/read-only", 503 },
		{ true, "/async", 503 },
		{ true, "/health", 200 },
		{ true, "/readiness", 200 },
		{ false, "/replica?tag_dc=east", 200 },
		{ false, "/replica?tag_dc=EAST", 200 },
		{ false, "/replica?tag_dc=west", 503 },
		{ false, "/replica?tag_rack=7&tag_ssd=true", 200 },
		{ false, "/replica?tag_rack=8", 503 },
		{ false, "/replica?tag_weight=1.5", 200 },
		{ false, "/replica?tag_zone=a", 503 },
		{ false, "/replica?tag_replicatefrom=node1", 200 },
		{ false, "/replica?tag_noloadbalance=true", 503 }, /* not set: no such tag */
		{ false, "/read-only?tag_dc=east", 200 },
		{ false, "/async?tag_dc=west", 503 },
	};
	struct api_options o;
	struct api_server *s;
	char err[256];
	json_t *doc, *tags;

	memset(&o, 0, sizeof(o));
	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_status st = replica_status();
		const char *q = strchr(cases[i].path, '?');
		char path[64];
		struct api_request rq;
		struct api_reply r;

		snprintf(st.replication_state, sizeof(st.replication_state), "streaming");
		st.noloadbalance = cases[i].noloadbalance;
		st.failover_priority = 1; /* the default */
		snprintf(st.replicatefrom, sizeof(st.replicatefrom), "node1");
		snprintf(st.custom_tags, sizeof(st.custom_tags),
		         "{\"dc\":\"east\",\"rack\":7,\"ssd\":true,\"weight\":1.5}");
		api_publish(s, &st);
		snprintf(path, sizeof(path), "%.*s", q ? (int)(q - cases[i].path) : (int)strlen(cases[i].path),
		         cases[i].path);
		memset(&rq, 0, sizeof(rq));
		rq.method = "GET";
		rq.path = path;
		rq.query = q ? q + 1 : NULL;
		api_handle(s, &rq, &r);
		ck_assert_msg(r.code == cases[i].code, "%s (noloadbalance %d): %u, expected %u (%s)", cases[i].path,
		              (int)cases[i].noloadbalance, r.code, cases[i].code, r.body ? r.body : "");
		if (cases[i].noloadbalance && r.code == 503)
			ck_assert_msg(strstr(r.body, "tagged noloadbalance") != NULL, "%s", r.body);
		if (i == 0) {
			api_reply_free(&r);
			rq.path = "/patroni";
			api_handle(s, &rq, &r);
			doc = json_loads(r.body, 0, NULL);
			tags = json_object_get(doc, "tags");
			ck_assert_str_eq(json_string_value(json_object_get(tags, "dc")), "east");
			ck_assert_int_eq(json_integer_value(json_object_get(tags, "rack")), 7);
			ck_assert_str_eq(json_string_value(json_object_get(tags, "replicatefrom")), "node1");
			/* Patroni's shape: a boolean tag only when set, no default priority */
			ck_assert_ptr_null(json_object_get(tags, "nofailover"));
			ck_assert_ptr_null(json_object_get(tags, "failover_priority"));
			ck_assert_ptr_null(json_object_get(tags, "noloadbalance"));
			json_decref(doc);
		}
		api_reply_free(&r);
	}
	api_stop(s);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *pure = tcase_create("pure");
	TCase *http_tc = tcase_create("http");
	TCase *real = tcase_create("real-etcd");

	tcase_add_loop_test(pure, test_parse_bytes, 0, (int)(sizeof(lag_cases) / sizeof(lag_cases[0])));
	tcase_add_loop_test(pure, test_parse_time, 0, (int)(sizeof(time_cases) / sizeof(time_cases[0])));
	tcase_add_test(pure, test_handle_direct);
	tcase_add_loop_test(pure, test_patroni_health_table, 0, (int)(sizeof(pt_cases) / sizeof(pt_cases[0])));
	tcase_add_test(pure, test_patroni_status);
	tcase_add_test(pure, test_patroni_tags);
	tcase_add_loop_test(pure, test_write_rules, 0, (int)(sizeof(rule_cases) / sizeof(rule_cases[0])));
	tcase_add_loop_test(pure, test_allowlist, 0, (int)(sizeof(allow_cases) / sizeof(allow_cases[0])));
	tcase_add_loop_test(pure, test_request_checks, 0, (int)(sizeof(check_cases) / sizeof(check_cases[0])));
	tcase_add_test(pure, test_failsafe_confirm);
	suite_add_tcase(s, pure);

	tcase_set_timeout(http_tc, 40);
	tcase_add_test(http_tc, test_health_states);
	tcase_add_test(http_tc, test_health_replay_states);
	tcase_add_test(http_tc, test_lag_http);
	tcase_add_test(http_tc, test_liveness);
	tcase_add_test(http_tc, test_metrics);
	tcase_add_test(http_tc, test_metrics_patroni);
	tcase_add_test(http_tc, test_restart_requests_merge);
	tcase_add_test(http_tc, test_https);
	tcase_add_test(http_tc, test_raw_requests);
	tcase_add_test(http_tc, test_slow_clients);
	tcase_add_test(http_tc, test_client_certs);
	suite_add_tcase(s, http_tc);

	tcase_set_timeout(real, 60);
	tcase_add_unchecked_fixture(real, etcd_fixture_up, etcd_fixture_down);
	tcase_set_tags(real, "etcd");
	tcase_add_test(real, test_endpoints_primary);
	tcase_add_test(real, test_endpoints_replica);
	tcase_add_test(real, test_auth);
	tcase_add_test(real, test_bodies);
	tcase_add_test(real, test_cluster_history_config);
	tcase_add_test(real, test_patch_config);
	tcase_add_test(real, test_switchover);
	tcase_add_test(real, test_etcd_down);
	tcase_add_test(real, test_etcd_stats);
	suite_add_tcase(s, real);
	return s;
}

int main(void)
{
	log_set_level(LOG_LVL_WARN); /* the API logs every accepted write at INFO */
	return etcd_fixture_run(api_suite(), NULL);
}
