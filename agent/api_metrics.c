/*
 * api_metrics.c - GET /metrics: the node's state and the loop's counters in
 * Prometheus text format 0.0.4.
 *
 * Like the health checks it answers from what the loop last published (the
 * snapshot and api_publish_metrics()) and never waits for etcd or Postgres;
 * the one figure of its own is the count of connections the deadline reaper
 * (api_http.c) closed. The text is built in a growing buffer; out of memory
 * anywhere gives an empty body, never a truncated one.
 */
#include "agent/api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/dcs.h"

#ifndef BATON_VERSION
#define BATON_VERSION "unknown"
#endif

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

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

void api_h_metrics(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
{
	static const char *const bounds[API_LATENCY_BUCKETS] = { "0.005", "0.01", "0.025", "0.05",
		                                                 "0.1",   "0.25", "0.5",   "1" };
	struct api_status st;
	struct api_metrics m;
	struct sbuf b = { NULL, 0, 0, false };
	uint64_t reaped;

	(void)rq;
	(void)body;
	if (!api_snapshot(s, &st, NULL, &m)) {
		api_reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not published its state yet");
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
	metric_head(
	        &b, "baton_lease_renewal_worst_gap_seconds", "gauge",
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
