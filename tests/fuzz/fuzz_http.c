/*
 * fuzz_http.c - libFuzzer target over the REST API's whole HTTP request
 * path: raw bytes as a client sends them (request line, headers, body,
 * chunked framing, several pipelined requests), parsed by the real
 * libmicrohttpd and handed through api_http.c's glue (URI callback, header
 * checks, Host/Origin/Content-Type/credential rules, body cap, framing
 * checks) to api_handle(). fuzz_api.c covers api_handle's own inputs;
 * this one covers what reaches them from the wire.
 *
 * Each input is one connection's bytes. Two servers are made with
 * api_server_new (basic auth u:p, an etcd client pointed at a closed
 * loopback port so etcd endpoints fail fast): a strict one, whose plain
 * HTTP refuses every write (the rules of issue 10), and one with
 * restapi.allow_unauthenticated_writes, whose writes reach their handlers.
 * Each runs libmicrohttpd
 * without a listening socket and without threads (api_external_start): for
 * every input a loopback TCP connection is made to a listener of this
 * process, its server end is handed to libmicrohttpd (api_external_add),
 * the input is written on the client end, and the daemon is driven
 * (api_external_run) while the answers are drained, for a bounded number of
 * passes; then the client closes and the daemon is driven until it has
 * released the connection (so leaks show). Requests queued for the loop
 * are taken after every input so state stays flat. The first byte picks
 * the snapshot's role (primary or replica), whether the client half-closes
 * after sending, and the server.
 *
 * Built and run by tests/fuzz/run.sh with clang -fsanitize=fuzzer,address,
 * undefined; any crash, leak or sanitizer report fails the run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/api.h"
#include "agent/api_internal.h"
#include "agent/log.h"

#define PASSES 64 /* daemon passes per input, at most */

static struct api_server *g_servers[2], *g_server;
static int g_listener = -1;
static struct sockaddr_in g_addr;

static const char *const g_etcd_endpoints[] = { "http://127.0.0.1:1" };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct etcd_config ec;
	struct api_options o;
	socklen_t len = sizeof(g_addr);
	char err[512];

	(void)argc;
	(void)argv;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
	log_set_level(LOG_LVL_ERROR); /* refused writes are WARNs: too many here */
	memset(&ec, 0, sizeof(ec));
	ec.endpoints = g_etcd_endpoints;
	ec.n_endpoints = 1;
	ec.request_timeout = 0.2;
	ec.connect_timeout = 0.2;
	memset(&o, 0, sizeof(o));
	o.listen = "127.0.0.1:8008";
	o.etcd = &ec;
	o.namespace_ = "/baton";
	o.scope = "fuzz";
	o.auth_username = "u";
	o.auth_password = "p";
	for (int i = 0; i < 2; i++) {
		o.allow_unauthenticated_writes = i == 1;
		g_servers[i] = api_server_new(&o, err, sizeof(err));
		if (!g_servers[i] || !api_external_start(g_servers[i], err, sizeof(err))) {
			fprintf(stderr, "fuzz_http: cannot start the server: %s\n", err);
			abort();
		}
	}
	g_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&g_addr, 0, sizeof(g_addr));
	g_addr.sin_family = AF_INET;
	g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (g_listener < 0 || bind(g_listener, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 ||
	    listen(g_listener, 16) != 0 || getsockname(g_listener, (struct sockaddr *)&g_addr, &len) != 0) {
		fprintf(stderr, "fuzz_http: loopback listener: %s\n", strerror(errno));
		abort();
	}
	return 0;
}

static void publish(uint8_t flags)
{
	struct api_status st;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node1");
	snprintf(st.scope, sizeof(st.scope), "fuzz");
	snprintf(st.leader, sizeof(st.leader), "node1");
	st.timeline = 1;
	st.loop_wait = 1;
	st.pg_running = true;
	if (flags & 1) {
		snprintf(st.role, sizeof(st.role), "replica");
		snprintf(st.state, sizeof(st.state), "streaming");
		st.lag = 0;
	} else {
		snprintf(st.role, sizeof(st.role), "primary");
		snprintf(st.state, sizeof(st.state), "running");
		st.is_leader = true;
	}
	api_publish(g_server, &st);
}

/* Reads whatever the server sent; false once it closed. */
static bool drain(int fd)
{
	char buf[16384];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (n == 0)
			return false;
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	struct api_requests taken;
	int client, server;
	size_t sent = 0;
	bool open_ = true;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	g_server = g_servers[(flags >> 2) & 1];
	publish(flags);
	client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client < 0)
		abort();
	/* Close with a reset: thousands of inputs a second would otherwise
	 * leave as many client ports in TIME_WAIT and run out of them. */
	{
		struct linger lg = { 1, 0 };

		(void)setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	/* libFuzzer's timer signal can interrupt connect(): the connection then
	 * completes on its own; wait for it. */
	if (connect(client, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0) {
		struct pollfd pfd = { .fd = client, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (errno != EINTR || poll(&pfd, 1, 2000) != 1 ||
		    getsockopt(client, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			fprintf(stderr, "fuzz_http: connect to the loopback listener: %s\n",
			        strerror(soerr ? soerr : errno));
			abort();
		}
	}
	do
		server = accept(g_listener, (struct sockaddr *)&peer, &plen);
	while (server < 0 && errno == EINTR);
	if (server < 0)
		abort();
	if (!api_external_add(g_server, server, (struct sockaddr *)&peer, plen))
		abort(); /* MHD closed it */
	(void)fcntl(client, F_SETFL, O_NONBLOCK);
	for (int pass = 0; pass < PASSES && open_; pass++) {
		if (sent < size) {
			ssize_t n = send(client, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				sent = size; /* the server closed: stop sending */
			if (sent == size && (flags & 2))
				shutdown(client, SHUT_WR);
		}
		(void)api_external_run(g_server);
		open_ = drain(client);
	}
	close(client);
	/* The daemon sees the end and releases the connection. */
	for (int pass = 0; pass < PASSES; pass++)
		if (api_external_run(g_server) == 0)
			break;
	api_take_requests(g_server, &taken);
	return 0;
}
