/*
 * fuzz_api.c - libFuzzer target over the REST API's request handling.
 *
 * Each input is one request, split as
 *
 *     <flags byte><method>\n<path>\n<query>\n<authorization>\n<body...>
 *
 * (a missing field is absent: no query, no header, no body). The flags
 * byte picks the snapshot the handler answers from (primary, replica with
 * a lag, replica with an unknown lag, Postgres stopped), whether the body
 * counts as too large, and whether the body is also fed to the peer-status
 * parser (api_status_from_json), which reads what other nodes answer. The
 * request goes through api_handle(), the same function libmicrohttpd's glue
 * calls, on a server that listens nowhere (api_server_new), has basic auth
 * configured (so both sides of the check are reached; the seeds carry the
 * right credentials) and an etcd client pointed at a closed loopback port,
 * so /cluster, /config, PATCH /config and POST /switchover run up to their
 * first etcd request and fail fast. Requests queued for the loop are taken
 * after every input so state stays flat.
 *
 * Built and run by tests/fuzz/run.sh with clang -fsanitize=fuzzer,address,
 * undefined; any crash, leak or sanitizer report fails the run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "agent/api.h"
#include "agent/api_internal.h"
#include "agent/log.h"

static struct api_server *g_server;

/* Port 1 on loopback: nothing listens there, connect is refused at once. */
static const char *const g_etcd_endpoints[] = { "http://127.0.0.1:1" };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct etcd_config ec;
	struct api_options o;
	char err[512];

	(void)argc;
	(void)argv;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
	log_set_level(LOG_LVL_ERROR);
	memset(&ec, 0, sizeof(ec));
	ec.endpoints = g_etcd_endpoints;
	ec.n_endpoints = 1;
	ec.request_timeout = 0.2;
	ec.connect_timeout = 0.2;
	memset(&o, 0, sizeof(o));
	o.etcd = &ec;
	o.namespace_ = "/baton";
	o.scope = "fuzz";
	o.auth_username = "u";
	o.auth_password = "p"; /* "Authorization: Basic dTpw" */
	g_server = api_server_new(&o, err, sizeof(err));
	if (!g_server) {
		fprintf(stderr, "fuzz_api: api_server_new: %s\n", err);
		abort();
	}
	return 0;
}

static void publish(uint8_t flags)
{
	struct api_status st;
	struct api_metrics m;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node1");
	snprintf(st.scope, sizeof(st.scope), "fuzz");
	snprintf(st.leader, sizeof(st.leader), "node1");
	st.timeline = 2;
	st.lsn = 0x3000000;
	st.loop_wait = (flags & 0x40) ? 0.001 : 1;
	switch (flags & 3) {
	case 0:
		snprintf(st.role, sizeof(st.role), "primary");
		snprintf(st.state, sizeof(st.state), "running");
		st.is_leader = true;
		st.pg_running = true;
		st.lag = 0;
		break;
	case 1:
		snprintf(st.role, sizeof(st.role), "replica");
		snprintf(st.state, sizeof(st.state), "streaming");
		st.pg_running = true;
		st.lag = 16 << 20;
		break;
	case 2:
		snprintf(st.role, sizeof(st.role), "replica");
		snprintf(st.state, sizeof(st.state), "starting");
		st.pg_running = true;
		st.lag = -1;
		break;
	default:
		snprintf(st.role, sizeof(st.role), "stopped");
		snprintf(st.state, sizeof(st.state), "stopped");
		st.lag = -1;
		break;
	}
	st.paused = flags & 0x10;
	st.pending_restart = flags & 0x20;
	api_publish(g_server, &st);
	memset(&m, 0, sizeof(m));
	m.lease_renewals = flags;
	m.since_last_renewal = (flags & 4) ? -1 : 0.5;
	m.etcd_requests = 10;
	m.etcd_latency_count = 10;
	m.etcd_latency_sum = 0.25;
	api_publish_metrics(g_server, &m);
}

/* The next '\n'-terminated field of [*p, end) as a malloc'd string (NULs
 * inside are kept, so the handler sees a shorter string, as it would from
 * libmicrohttpd); NULL when the input has no more separators. */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n;
	char *s;

	if (!nl)
		return NULL;
	n = (size_t)(nl - *p);
	s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *method = NULL, *path = NULL, *query = NULL, *auth = NULL, *body = NULL;
	struct api_request rq;
	struct api_reply r;
	struct api_requests taken;
	uint8_t flags;
	size_t body_len = 0;

	if (size < 1)
		return 0;
	flags = *p++;
	publish(flags);
	method = next_field(&p, end);
	if (method)
		path = next_field(&p, end);
	if (path)
		query = next_field(&p, end);
	if (query)
		auth = next_field(&p, end);
	if (auth) {
		/* The rest is the body, in a buffer of its exact size (no NUL
		 * after it), so an over-read is caught. */
		body_len = (size_t)(end - p);
		if (body_len > API_REQUEST_BODY_MAX)
			body_len = API_REQUEST_BODY_MAX;
		if (body_len) {
			body = malloc(body_len);
			if (!body)
				abort();
			memcpy(body, p, body_len);
		}
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = method ? method : "GET";
	rq.path = path ? path : "/health";
	rq.query = query && query[0] ? query : NULL;
	rq.authorization = auth && auth[0] ? auth : NULL;
	/* Over TLS with a JSON type, so the credentials decide and writes
	 * reach their handlers (fuzz_http covers the other transports). */
	rq.tls = true;
	rq.content_type = "application/json";
	rq.host = "localhost";
	rq.version = "HTTP/1.1";
	rq.body = body;
	rq.body_len = body_len;
	rq.body_too_large = (flags & 0x80) != 0;
	api_handle(g_server, &rq, &r);
	if (r.code < 200 || r.code > 599)
		abort();
	if (r.body && strlen(r.body) != r.body_len)
		abort();
	if (!r.content_type)
		abort();
	api_reply_free(&r);
	api_take_requests(g_server, &taken);

	/* What peers answer to /status goes through this parser. */
	if ((flags & 8) && body_len) {
		struct api_status st;
		char err[256];
		char *text = malloc(body_len + 1);

		if (!text)
			abort();
		memcpy(text, body, body_len);
		text[body_len] = '\0';
		(void)api_status_from_json(text, &st, err, sizeof(err));
		free(text);
	}
	free(method);
	free(path);
	free(query);
	free(auth);
	free(body);
	return 0;
}
