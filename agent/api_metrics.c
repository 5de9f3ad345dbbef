/*
 * api_metrics.c - GET /metrics: the node's state and the loop's counters in
 * Prometheus text format 0.0.4.
 *
 * Two families of series (issue 13). First Patroni's: every patroni_* series
 * Patroni 3.0.2 and 4.x expose, with Patroni's names, types, labels
 * (scope and name) and meaning per role, so that dashboards and alerts
 * written for Patroni work unchanged; patroni_version carries baton's own
 * version in Patroni's form (each part padded to two digits). Then baton's
 * own baton_* series, each also labelled with scope and name.
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
#include "agent/ha.h"

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

/* A sample's name and labels up to its value: NAME{scope="..",name=".."}
 * with one more label when key is not NULL, and the space before the value. */
static void sample(struct sbuf *b, const struct api_status *st, const char *name, const char *key, const char *val)
{
	sb_printf(b, "%s{scope=\"", name);
	sb_label(b, st->scope);
	sb_printf(b, "\",name=\"");
	sb_label(b, st->name);
	if (key) {
		sb_printf(b, "\",%s=\"", key);
		sb_label(b, val);
	}
	sb_printf(b, "\"} ");
}

/* A one-sample gauge or counter with an integer value. */
static void series_int(struct sbuf *b, const struct api_status *st, const char *name, const char *type,
                       const char *help, int64_t v)
{
	metric_head(b, name, type, help);
	sample(b, st, name, NULL, NULL);
	sb_printf(b, "%" PRId64 "\n", v);
}

/* A one-sample gauge with a value in seconds (an epoch or a duration);
 * Patroni writes a missing timestamp as a plain 0. */
static void series_seconds(struct sbuf *b, const struct api_status *st, const char *name, const char *help, double v)
{
	metric_head(b, name, "gauge", help);
	sample(b, st, name, NULL, NULL);
	if (v == 0)
		sb_printf(b, "0\n");
	else
		sb_printf(b, "%.6f\n", v);
}

/* Patroni's form of a version: each dot-separated part padded to two
 * digits ("3.0.2" -> "030002"), as patroni_version shows it. A part's
 * leading digits count ("1-rc1" -> 1); no digits at all give "0". */
static void version_padded(const char *version, char *out, size_t len)
{
	const char *p = version;
	size_t used = 0;
	int parts = 0;

	out[0] = '\0';
	while (*p && parts < 4) {
		unsigned long part = strtoul(p, NULL, 10);
		int n;

		if (*p < '0' || *p > '9')
			break;
		n = snprintf(out + used, len - used, "%02lu", part % 100);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
		parts++;
		p = strchr(p, '.');
		if (!p)
			break;
		p++;
	}
	if (used == 0)
		snprintf(out, len, "0");
}

/* Patroni 4's patroni_postgres_state: the index of Patroni's name for
 * what Postgres is doing, from baton's state. Postgres runs through
 * promotion and while a replica's replay is paused, stuck or not
 * streaming; it is down while pg_rewind runs. -1: unknown. */
static int patroni_state_index(const char *state)
{
	switch (ha_state_from_name(state)) {
	case HA_STATE_BOOTSTRAPPING:
		return 0; /* initializing new cluster */
	case HA_STATE_CLONING:
		return 4; /* creating replica */
	case HA_STATE_RUNNING:
	case HA_STATE_PROMOTING:
	case HA_STATE_REPLAY_PAUSED:
	case HA_STATE_STUCK_REPLAY:
	case HA_STATE_NOT_STREAMING:
		return 5; /* running */
	case HA_STATE_STARTING:
		return 6;
	case HA_STATE_START_FAILED:
		return 8;
	case HA_STATE_REWINDING:
	case HA_STATE_STOPPED:
		return 12; /* stopped */
	case HA_STATE_UNKNOWN:
		break;
	}
	return -1;
}

/* Every series Patroni exposes, valued from baton's snapshot. Roles follow
 * Postgres, as in Patroni: "primary" is a running Postgres out of recovery
 * (patroni_master is Patroni 3's name for it). The streaming and archive
 * recovery series are there only while the server's version is known
 * (Postgres runs), as Patroni does. */
static void patroni_series(struct sbuf *b, const struct api_status *st)
{
	bool running = st->pg_running;
	bool primary = running && strcmp(st->role, "primary") == 0;
	bool replica = running && strcmp(st->role, "replica") == 0;
	char version[16];

	version_padded(BATON_VERSION, version, sizeof(version));
	metric_head(b, "patroni_version", "gauge",
	            "The agent's version, each part padded to two digits (baton's own).");
	sample(b, st, "patroni_version", NULL, NULL);
	sb_printf(b, "%s\n", version);
	series_int(b, st, "patroni_postgres_running", "gauge", "1 while the local Postgres runs and answers, else 0.",
	           running);
	series_seconds(b, st, "patroni_postmaster_start_time",
	               "When the running postmaster started, unix seconds (0 if down).",
	               running ? st->postmaster_start : 0);
	series_int(b, st, "patroni_master", "gauge",
	           "1 when the local Postgres runs as the primary, else 0 (Patroni 3 name).", primary);
	series_int(b, st, "patroni_primary", "gauge", "1 when the local Postgres runs as the primary, else 0.",
	           primary);
	series_int(b, st, "patroni_xlog_location", "counter",
	           "Primary: the current WAL position in bytes; 0 on any other node.", primary ? (int64_t)st->lsn : 0);
	series_int(b, st, "patroni_standby_leader", "gauge",
	           "1 on the standby leader of a standby cluster (the leader key, Postgres a replica of the other "
	           "site), else 0.",
	           running && st->standby_leader);
	series_int(b, st, "patroni_replica", "gauge", "1 when the local Postgres runs as a replica, else 0.", replica);
	series_int(b, st, "patroni_sync_standby", "gauge",
	           "1 when this replica is a synchronous standby named in the sync key, else 0.",
	           replica && st->sync_standby && !st->sync_quorum);
	series_int(b, st, "patroni_quorum_standby", "gauge",
	           "1 when this replica is a quorum commit standby named in the sync key, else 0.",
	           replica && st->sync_standby && st->sync_quorum);
	series_int(b, st, "patroni_xlog_received_location", "counter",
	           "Replica: the last WAL position received, in bytes (the replayed one when none was); 0 elsewhere.",
	           replica ? (int64_t)(st->receive_lsn ? st->receive_lsn : st->replay_lsn) : 0);
	series_int(b, st, "patroni_xlog_replayed_location", "counter",
	           "Replica: the last WAL position replayed, in bytes; 0 elsewhere.",
	           replica ? (int64_t)st->replay_lsn : 0);
	series_seconds(b, st, "patroni_xlog_replayed_timestamp",
	               "Replica: commit time of the last transaction replayed, unix seconds (0 if none).",
	               replica ? st->replay_timestamp : 0);
	series_int(b, st, "patroni_xlog_paused", "gauge", "1 when this replica's WAL replay is paused, else 0.",
	           replica && st->replay_paused);
	if (running && st->server_version >= 90600) {
		series_int(b, st, "patroni_postgres_streaming", "gauge",
		           "1 while this replica's WAL receiver streams from its upstream, else 0.",
		           replica && strcmp(st->replication_state, "streaming") == 0);
		series_int(b, st, "patroni_postgres_in_archive_recovery", "gauge",
		           "1 while this replica does not stream but can read WAL with its restore_command, else 0.",
		           replica && st->archive_recovery);
	}
	series_int(b, st, "patroni_postgres_server_version", "gauge",
	           "server_version_num of the running Postgres (e.g. 150004), 0 if down.",
	           running ? st->server_version : 0);
	series_int(b, st, "patroni_cluster_unlocked", "gauge", "1 when no member holds the leader key, else 0.",
	           st->leader[0] == '\0');
	series_int(
	        b, st, "patroni_failsafe_mode_is_active", "gauge",
	        "1 while failsafe_mode keeps a primary without etcd (on a replica: it confirmed such a leader within ttl).",
	        st->failsafe_active);
	series_int(b, st, "patroni_postgres_timeline", "counter", "Timeline of the running Postgres, 0 if down.",
	           running ? (int64_t)st->timeline : 0);
	series_int(b, st, "patroni_dcs_last_seen", "gauge", "When the agent last read etcd successfully, unix seconds.",
	           (int64_t)st->dcs_last_seen);
	series_int(b, st, "patroni_pending_restart", "gauge",
	           "1 when a changed Postgres parameter waits for a restart, else 0.", st->pending_restart);
	series_int(b, st, "patroni_is_paused", "gauge",
	           "1 when the cluster is in maintenance mode (no automatic failover).", st->paused);
	metric_head(b, "patroni_postgres_state", "gauge",
	            "What Postgres is doing, by Patroni's index: 0 initdb, 4 creating replica, 5 running, "
	            "6 starting, 8 start failed, 12 stopped; -1 unknown.");
	sample(b, st, "patroni_postgres_state", NULL, NULL);
	sb_printf(b, "%d\n", patroni_state_index(st->state));
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
	patroni_series(&b, &st);
	metric_head(&b, "baton_info", "gauge", "Agent identity; always 1.");
	sample(&b, &st, "baton_info", "version", BATON_VERSION);
	sb_printf(&b, "1\n");
	series_int(&b, &st, "baton_is_leader", "gauge", "1 when this node holds the leader key.", st.is_leader);
	series_int(&b, &st, "baton_postgres_running", "gauge", "1 when the local Postgres runs.", st.pg_running);
	metric_head(&b, "baton_role", "gauge", "The local Postgres' role (1 for the current one).");
	for (size_t i = 0; dcs_role_at(i); i++) {
		const char *role = dcs_role_at(i);

		sample(&b, &st, "baton_role", "role", role);
		sb_printf(&b, "%d\n", strcmp(st.role, role) == 0 ? 1 : 0);
	}
	series_int(&b, &st, "baton_timeline", "gauge", "The local Postgres' timeline.", st.timeline);
	metric_head(&b, "baton_lsn_bytes", "gauge",
	            "WAL position in bytes (primary: current; replica: max of received and replayed).");
	sample(&b, &st, "baton_lsn_bytes", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", st.lsn);
	series_int(&b, &st, "baton_replication_lag_bytes", "gauge", "Bytes behind the leader (-1 unknown).", st.lag);
	series_int(&b, &st, "baton_paused", "gauge", "1 when the cluster is in maintenance mode.", st.paused);
	series_int(&b, &st, "baton_pending_restart", "gauge", "1 when a changed parameter needs a Postgres restart.",
	           st.pending_restart);
	metric_head(&b, "baton_lease_renewals_total", "counter", "Lease keepalives that succeeded.");
	sample(&b, &st, "baton_lease_renewals_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.lease_renewals);
	metric_head(&b, "baton_lease_renewal_failures_total", "counter", "Lease keepalives that failed.");
	sample(&b, &st, "baton_lease_renewal_failures_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.lease_renewal_failures);
	metric_head(&b, "baton_seconds_since_lease_renewal", "gauge",
	            "Seconds since the last good keepalive was sent (-1 no lease).");
	sample(&b, &st, "baton_seconds_since_lease_renewal", NULL, NULL);
	sb_printf(&b, "%.6f\n", m.since_last_renewal);
	metric_head(&b, "baton_lease_renewal_worst_seconds", "gauge",
	            "Slowest lease keepalive round trip since the agent started.");
	sample(&b, &st, "baton_lease_renewal_worst_seconds", NULL, NULL);
	sb_printf(&b, "%.6f\n", m.worst_renewal_latency);
	metric_head(
	        &b, "baton_lease_renewal_worst_gap_seconds", "gauge",
	        "Longest time between two successful lease keepalives (the leader's deadline budget is ttl - margin).");
	sample(&b, &st, "baton_lease_renewal_worst_gap_seconds", NULL, NULL);
	sb_printf(&b, "%.6f\n", m.worst_renewal_gap);
	metric_head(&b, "baton_leader_changes_total", "counter", "Changes of the leader key's holder seen.");
	sample(&b, &st, "baton_leader_changes_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.leader_changes);
	metric_head(&b, "baton_loop_iterations_total", "counter",
	            "Passes of the HA loop (each wake by the watch, the keeper, a child or the loop_wait timer).");
	sample(&b, &st, "baton_loop_iterations_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.loop_iterations);
	metric_head(&b, "baton_etcd_requests_total", "counter", "etcd requests made.");
	sample(&b, &st, "baton_etcd_requests_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.etcd_requests);
	metric_head(&b, "baton_etcd_requests_by_kind_total", "counter",
	            "etcd requests made, by kind; watch counts the watch streams opened.");
	for (int i = 0; i < ETCD_REQ_N; i++) {
		sample(&b, &st, "baton_etcd_requests_by_kind_total", "kind",
		       etcd_request_kind_name((enum etcd_request_kind)i));
		sb_printf(&b, "%" PRIu64 "\n", m.etcd_by_kind[i]);
	}
	metric_head(&b, "baton_etcd_request_failures_total", "counter", "etcd requests that failed.");
	sample(&b, &st, "baton_etcd_request_failures_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.etcd_failures);
	metric_head(&b, "baton_etcd_request_duration_seconds", "histogram", "etcd request latency.");
	for (size_t i = 0; i < API_LATENCY_BUCKETS; i++) {
		sample(&b, &st, "baton_etcd_request_duration_seconds_bucket", "le", bounds[i]);
		sb_printf(&b, "%" PRIu64 "\n", m.etcd_latency_le[i]);
	}
	sample(&b, &st, "baton_etcd_request_duration_seconds_bucket", "le", "+Inf");
	sb_printf(&b, "%" PRIu64 "\n", m.etcd_latency_count);
	sample(&b, &st, "baton_etcd_request_duration_seconds_sum", NULL, NULL);
	sb_printf(&b, "%.6f\n", m.etcd_latency_sum);
	sample(&b, &st, "baton_etcd_request_duration_seconds_count", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", m.etcd_latency_count);
	pthread_mutex_lock(&s->sock_mu);
	reaped = s->reaped;
	pthread_mutex_unlock(&s->sock_mu);
	metric_head(&b, "baton_rest_deadline_closed_total", "counter",
	            "REST connections closed for not sending their headers or body in time.");
	sample(&b, &st, "baton_rest_deadline_closed_total", NULL, NULL);
	sb_printf(&b, "%" PRIu64 "\n", reaped);
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
