/*
 * etcd_client.c - the client object: configuration, endpoints, timeouts,
 * cancellation, and the error helpers every other file uses.
 *
 * A client owns one libcurl multi handle and one easy handle, so the TCP
 * connection to the preferred endpoint is kept between requests. It never
 * calls curl_global_init: the program does that once in main.
 *
 * Cancellation is a sticky atomic flag, plus a wake-up of the multi handle's
 * poll: once etcd_client_cancel() has been called, the call in progress and
 * every later call on the client return ETCD_E_CANCELED until the client is
 * freed. The agent cancels a client only to shut down the thread that
 * uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "etcd/etcd_internal.h"

const char *etcd_status_name(enum etcd_status st)
{
	switch (st) {
	case ETCD_OK:
		return "ok";
	case ETCD_E_UNAVAILABLE:
		return "unavailable";
	case ETCD_E_TIMEOUT:
		return "timeout";
	case ETCD_E_HTTP:
		return "http error";
	case ETCD_E_PROTOCOL:
		return "protocol error";
	case ETCD_E_LEASE_NOT_FOUND:
		return "lease not found";
	case ETCD_E_COMPACTED:
		return "compacted";
	case ETCD_E_CANCELED:
		return "canceled";
	case ETCD_E_AUTH:
		return "auth failed";
	case ETCD_E_INVALID:
		return "invalid argument";
	case ETCD_E_NOMEM:
		return "out of memory";
	}
	return "unknown status";
}

enum etcd_status etcd_error_set(struct etcd_error *err, enum etcd_status st, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return st;
	err->status = st;
	va_start(ap, fmt);
	/* Truncation is fine: the message is for humans. */
	if (vsnprintf(err->message, sizeof(err->message), fmt, ap) < 0)
		err->message[0] = '\0';
	va_end(ap);
	return st;
}

/* The library's one clock reader (it may not use the agent's clock module). */
int64_t etcd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t etcd_now_ms(void)
{
	return etcd_now_us() / 1000;
}

bool etcd_sleep_ms(struct etcd_client *c, long ms)
{
	int64_t until = etcd_now_ms() + ms;

	for (;;) {
		int64_t left = until - etcd_now_ms();
		struct timespec ts;

		if (atomic_load(&c->canceled))
			return false;
		if (left <= 0)
			return true;
		if (left > 20)
			left = 20;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

static char *dup_opt(const char *s, bool *ok)
{
	char *d;

	if (s == NULL || s[0] == '\0')
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*ok = false;
	return d;
}

/* "host:port" -> "http://host:port"; drops trailing slashes. */
static char *normalise_endpoint(const char *ep)
{
	size_t len = strlen(ep);
	bool has_scheme = strstr(ep, "://") != NULL;
	char *out;

	while (len > 0 && ep[len - 1] == '/')
		len--;
	out = malloc(len + sizeof("http://"));
	if (out == NULL)
		return NULL;
	if (snprintf(out, len + sizeof("http://"), "%s%.*s", has_scheme ? "" : "http://", (int)len, ep) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

static long seconds_to_ms(double s, long dflt)
{
	if (!(s > 0))
		return dflt;
	if (s > 86400)
		s = 86400;
	return (long)(s * 1000 + 0.5) > 0 ? (long)(s * 1000 + 0.5) : 1;
}

/* A TLS file named in the config must be a readable regular file: say which
 * one and why not now, rather than as a TLS failure on the first request. */
static enum etcd_status check_tls_file(const char *what, const char *path, struct etcd_error *err)
{
	struct stat sb;
	int fd;

	if (path == NULL || path[0] == '\0')
		return ETCD_OK;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: %s %s: cannot read: %s", what, path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: %s %s: not a regular file", what, path);
	}
	close(fd);
	return ETCD_OK;
}

/* Appends the members' client URLs that are not endpoints yet (best
 * effort: on any failure the list stays as it was). */
static void discover_members(struct etcd_client *c)
{
	struct etcd_error err;
	char **urls = NULL;
	size_t n = 0, i, j;

	if (etcd_member_list(c, &urls, &n, &err) != ETCD_OK)
		return;
	for (i = 0; i < n; i++) {
		char *norm = normalise_endpoint(urls[i]);
		char **grown;
		bool known = false;

		if (norm == NULL)
			break;
		for (j = 0; j < c->n_endpoints && !known; j++)
			known = strcmp(c->endpoints[j], norm) == 0;
		grown = known ? NULL : realloc(c->endpoints, (c->n_endpoints + 1) * sizeof(char *));
		if (grown == NULL) {
			free(norm);
			if (known)
				continue;
			break;
		}
		c->endpoints = grown;
		c->endpoints[c->n_endpoints++] = norm;
	}
	etcd_member_list_free(urls, n);
}

enum etcd_status etcd_member_list(struct etcd_client *c, char ***client_urls, size_t *n, struct etcd_error *err)
{
	static const char path[] = "/v3/cluster/member/list";
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	enum etcd_status st;
	char why[200];

	if (err == NULL)
		err = &scratch;
	if (client_urls == NULL || n == NULL)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_member_list: no output");
	*client_urls = NULL;
	*n = 0;
	req = json_object();
	if (req == NULL)
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	st = etcd_call(c, path, req, &resp, NULL, err);
	if (st == ETCD_OK) {
		st = etcd_parse_member_list(resp, client_urls, n, why, sizeof(why));
		if (st == ETCD_E_PROTOCOL)
			etcd_protocol_error(c, err, path, why);
		else if (st != ETCD_OK)
			etcd_error_set(err, st, "etcd: out of memory");
	}
	json_decref(req);
	json_decref(resp);
	return st;
}

size_t etcd_client_n_endpoints(const struct etcd_client *c)
{
	return c->n_endpoints;
}

const char *etcd_client_endpoint_at(const struct etcd_client *c, size_t i)
{
	return i < c->n_endpoints ? c->endpoints[i] : NULL;
}

size_t etcd_client_current(const struct etcd_client *c)
{
	return c->current;
}

bool etcd_client_prefer(struct etcd_client *c, size_t i)
{
	if (i >= c->n_endpoints)
		return false;
	c->current = i;
	return true;
}

enum etcd_status etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out, struct etcd_error *err)
{
	struct etcd_client *c = NULL;
	bool ok = true;
	size_t i;

	if (out == NULL)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_client_new: no output pointer");
	*out = NULL;
	if (cfg == NULL || cfg->endpoints == NULL || cfg->n_endpoints == 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: no endpoint configured");
	for (i = 0; i < cfg->n_endpoints; i++)
		if (cfg->endpoints[i] == NULL || cfg->endpoints[i][0] == '\0')
			return etcd_error_set(err, ETCD_E_INVALID, "etcd: endpoint %zu is empty", i + 1);
	if ((cfg->username == NULL) != (cfg->password == NULL))
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: username and password go together");
	if (check_tls_file("cacert", cfg->cacert, err) != ETCD_OK ||
	    check_tls_file("cert", cfg->cert, err) != ETCD_OK || check_tls_file("key", cfg->key, err) != ETCD_OK)
		return ETCD_E_INVALID;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto nomem;
	atomic_init(&c->canceled, false);
	atomic_init(&c->st_requests, 0);
	atomic_init(&c->st_failures, 0);
	atomic_init(&c->st_endpoint_failovers, 0);
	atomic_init(&c->st_latency_us, 0);
	for (i = 0; i < ETCD_STATS_BUCKETS; i++)
		atomic_init(&c->st_le[i], 0);
	for (i = 0; i < ETCD_REQ_N; i++)
		atomic_init(&c->st_kind[i], 0);
	c->endpoints = calloc(cfg->n_endpoints, sizeof(*c->endpoints));
	if (c->endpoints == NULL)
		goto nomem;
	c->n_endpoints = cfg->n_endpoints;
	c->n_configured = cfg->n_endpoints;
	c->watch_idle_ms = cfg->watch_idle_timeout > 0 ? seconds_to_ms(cfg->watch_idle_timeout, 0) : 0;
	for (i = 0; i < cfg->n_endpoints; i++) {
		c->endpoints[i] = normalise_endpoint(cfg->endpoints[i]);
		if (c->endpoints[i] == NULL)
			goto nomem;
	}
	c->request_timeout_ms = seconds_to_ms(cfg->request_timeout, 2000);
	c->connect_timeout_ms = seconds_to_ms(cfg->connect_timeout, 1000);
	c->cacert = dup_opt(cfg->cacert, &ok);
	c->cert = dup_opt(cfg->cert, &ok);
	c->key = dup_opt(cfg->key, &ok);
	c->username = dup_opt(cfg->username, &ok);
	c->password = cfg->password != NULL ? strdup(cfg->password) : NULL;
	if (!ok || (cfg->password != NULL && c->password == NULL))
		goto nomem;
	c->multi = curl_multi_init();
	c->easy = curl_easy_init();
	if (c->multi == NULL || c->easy == NULL)
		goto nomem;
	if (cfg->discover_members)
		discover_members(c);
	*out = c;
	return ETCD_OK;
nomem:
	etcd_client_free(c);
	return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory creating the client");
}

void etcd_client_free(struct etcd_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	for (i = 0; c->endpoints != NULL && i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c->username);
	if (c->password != NULL) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	if (c->token != NULL) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c);
}

const char *etcd_client_endpoint(const struct etcd_client *c)
{
	return c->endpoints[c->current];
}

void etcd_client_set_timeout(struct etcd_client *c, double request_timeout)
{
	c->request_timeout_ms = seconds_to_ms(request_timeout, 2000);
}

const char *etcd_request_kind_name(enum etcd_request_kind k)
{
	static const char *const names[ETCD_REQ_N] = { "range",     "put",          "delete", "txn",  "lease_grant",
		                                       "keepalive", "lease_revoke", "watch",  "other" };

	return (unsigned)k < ETCD_REQ_N ? names[k] : "other";
}

void etcd_stats_count(struct etcd_client *c, enum etcd_request_kind k)
{
	atomic_fetch_add(&c->st_kind[(unsigned)k < ETCD_REQ_N ? k : ETCD_REQ_OTHER], 1);
}

/* The kind of a unary request from its gateway path. */
static enum etcd_request_kind kind_of_path(const char *path)
{
	static const struct {
		const char *path;
		enum etcd_request_kind kind;
	} paths[] = {
		{ "/v3/kv/range", ETCD_REQ_RANGE },
		{ "/v3/kv/put", ETCD_REQ_PUT },
		{ "/v3/kv/deleterange", ETCD_REQ_DELETE },
		{ "/v3/kv/txn", ETCD_REQ_TXN },
		{ "/v3/lease/grant", ETCD_REQ_LEASE_GRANT },
		{ "/v3/lease/keepalive", ETCD_REQ_KEEPALIVE },
		{ "/v3/lease/revoke", ETCD_REQ_LEASE_REVOKE },
		{ "/v3/kv/lease/revoke", ETCD_REQ_LEASE_REVOKE },
	};

	for (size_t i = 0; path && i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(path, paths[i].path) == 0)
			return paths[i].kind;
	return ETCD_REQ_OTHER;
}

void etcd_stats_record(struct etcd_client *c, const char *path, int64_t us, enum etcd_status st)
{
	static const double bounds[ETCD_STATS_BUCKETS] = ETCD_STATS_BOUNDS;
	double secs;

	if (us < 0)
		us = 0;
	secs = (double)us / 1e6;
	atomic_fetch_add(&c->st_requests, 1);
	etcd_stats_count(c, kind_of_path(path));
	if (st != ETCD_OK)
		atomic_fetch_add(&c->st_failures, 1);
	atomic_fetch_add(&c->st_latency_us, (uint_fast64_t)us);
	for (size_t i = 0; i < ETCD_STATS_BUCKETS; i++)
		if (secs <= bounds[i])
			atomic_fetch_add(&c->st_le[i], 1);
}

void etcd_client_get_stats(const struct etcd_client *c, struct etcd_stats *out)
{
	/* atomic_load takes a non-const pointer in C11 before C17's DR 459. */
	struct etcd_client *m = (struct etcd_client *)c;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	out->requests = atomic_load(&m->st_requests);
	out->failures = atomic_load(&m->st_failures);
	out->endpoint_failovers = atomic_load(&m->st_endpoint_failovers);
	out->latency_sum = (double)atomic_load(&m->st_latency_us) / 1e6;
	for (size_t i = 0; i < ETCD_STATS_BUCKETS; i++)
		out->le[i] = atomic_load(&m->st_le[i]);
	for (size_t i = 0; i < ETCD_REQ_N; i++)
		out->by_kind[i] = atomic_load(&m->st_kind[i]);
}

void etcd_client_cancel(struct etcd_client *c)
{
	atomic_store(&c->canceled, true);
	/* Thread-safe by libcurl's contract: interrupts a curl_multi_poll in
	 * progress (or the next one), so the transfer loop sees the flag now
	 * rather than at its next 50 ms tick. */
	curl_multi_wakeup(c->multi);
}
