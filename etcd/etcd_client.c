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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int64_t etcd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	if (snprintf(out, len + sizeof("http://"), "%s%.*s", has_scheme ? "" : "http://", (int)len,
		     ep) < 0) {
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

enum etcd_status etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out,
				 struct etcd_error *err)
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
		return etcd_error_set(err, ETCD_E_INVALID,
				      "etcd: username and password go together");

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto nomem;
	atomic_init(&c->canceled, false);
	atomic_init(&c->st_requests, 0);
	atomic_init(&c->st_failures, 0);
	atomic_init(&c->st_latency_us, 0);
	for (i = 0; i < ETCD_STATS_BUCKETS; i++)
		atomic_init(&c->st_le[i], 0);
	c->endpoints = calloc(cfg->n_endpoints, sizeof(*c->endpoints));
	if (c->endpoints == NULL)
		goto nomem;
	c->n_endpoints = cfg->n_endpoints;
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

void etcd_stats_record(struct etcd_client *c, int64_t us, enum etcd_status st)
{
	static const double bounds[ETCD_STATS_BUCKETS] = ETCD_STATS_BOUNDS;
	double secs;

	if (us < 0)
		us = 0;
	secs = (double)us / 1e6;
	atomic_fetch_add(&c->st_requests, 1);
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
	out->latency_sum = (double)atomic_load(&m->st_latency_us) / 1e6;
	for (size_t i = 0; i < ETCD_STATS_BUCKETS; i++)
		out->le[i] = atomic_load(&m->st_le[i]);
}

void etcd_client_cancel(struct etcd_client *c)
{
	atomic_store(&c->canceled, true);
	/* Thread-safe by libcurl's contract: interrupts a curl_multi_poll in
	 * progress (or the next one), so the transfer loop sees the flag now
	 * rather than at its next 50 ms tick. */
	curl_multi_wakeup(c->multi);
}
