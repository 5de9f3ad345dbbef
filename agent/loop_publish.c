/*
 * loop_publish.c - what this agent tells others: its member key in etcd
 * (role, state, position, tags), the leader's status key and history,
 * and the snapshot and metrics the REST API serves. Split from loop.c:
 * publishing only reads the loop's state, it never decides.
 */
#include "agent/loop_internal.h"

void append_history(struct loop *L, const char *reason)
{
	struct etcd_range_result r;
	struct etcd_error err;
	const char *old = NULL;
	char *json;

	memset(&r, 0, sizeof(r));
	if (etcd_get(L->etcd, L->keys.history, &r, &err) == ETCD_OK && r.n_kvs == 1)
		old = r.kvs[0].value;
	json = dcs_history_append(old, L->pgst.timeline, L->pgst.current_lsn, reason, L->cfg->name, clk_wall_s());
	if (json && etcd_put(L->etcd, L->keys.history, json, 0, NULL, &err) != ETCD_OK)
		log_warn("cannot record the leader change in history: %s", err.message);
	free(json);
	etcd_range_result_free(&r);
}

void publish_status(struct loop *L)
{
	struct etcd_error err;
	char *json = dcs_status_json(L->pgst.current_lsn, L->pgst.timeline);

	if (!json)
		return;
	/* Unchanged; or only the LSN moved (under writes, every pass) and the
	 * last one is younger than loop_wait: it can wait. */
	if (L->status_json &&
	    (strcmp(json, L->status_json) == 0 ||
	     (L->status_timeline == L->pgst.timeline && clk_mono() - L->status_put_at < L->settings.loop_wait))) {
		free(json);
		return;
	}
	if (etcd_put(L->etcd, L->keys.status, json, 0, NULL, &err) != ETCD_OK) {
		log_warn("cannot publish the leader status: %s", err.message);
		free(json);
		return;
	}
	free(L->status_json);
	L->status_json = json;
	L->status_timeline = L->pgst.timeline;
	L->status_put_at = clk_mono();
}

/* Unix seconds as Patroni shows a timestamp in /patroni
 * ("2026-12-03 17:20:00.123456+00:00", UTC); "" for 0 (none yet). */
static void patroni_timestamp(double t, char *out, size_t len)
{
	struct tm tm;
	time_t sec = (time_t)t;
	long usec = (long)((t - (double)sec) * 1e6);
	char day[32];

	out[0] = '\0';
	if (t <= 0 || gmtime_r(&sec, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		return;
	if (usec < 0 || usec > 999999)
		usec = 0;
	snprintf(out, len, "%s.%06ld+00:00", day, usec);
}

/* The state we publish (the core's ha_state_of, from the live children). */
enum ha_state member_state(const struct loop *L)
{
	if (L->reinit_stopping)
		return HA_STATE_STOPPED;
	return ha_state_of(L->job.pid ? L->job_kind : HA_JOB_NONE, L->lm.promote_requested, L->postmaster.pid != 0,
	                   L->lm.pg_start_failed, L->local.pg_ready, L->local.pg_primary,
	                   ha_replay_check(&L->view, &L->local, clk_mono(), NULL, 0));
}

/* The role we publish (the core's ha_role_of). */
enum ha_role member_role(const struct loop *L)
{
	return ha_role_of(L->local.pg_ready, L->local.pg_primary, L->local.datadir);
}

/* Adds {"scheduled_restart": {"at", "restart_pending", "postgres_version",
 * "role"}} to the member JSON (takes json; NULL when out of memory), so
 * batonctl list shows what this agent keeps. */
static char *add_scheduled_restart(const struct loop *L, char *json)
{
	json_t *doc = json_loads(json, 0, NULL), *o;
	char t[32], *out = NULL;

	free(json);
	if (!doc)
		return NULL;
	dcs_format_utc(L->sched.at, t, sizeof(t));
	o = json_pack("{s:s, s:b}", "at", t, "restart_pending", (int)L->sched.pending_only);
	if (o && L->sched.min_version)
		json_object_set_new(o, "postgres_version", json_integer(L->sched.min_version));
	if (o && L->sched.role[0])
		json_object_set_new(o, "role", json_string(L->sched.role));
	if (o && json_object_set_new(doc, "scheduled_restart", o) == 0)
		out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return out;
}

/* Adds what batonctl needs to tell the truth about a standby_cluster
 * remote (takes json; NULL when out of memory):
 *   "standby_trust": {"tls": B, "remotes": ["host:port", ...]
 *                     [, "refuses": "host:port"[, "why": S]]}
 * the remotes this node's file names (bootstrap.dcs.standby_cluster and
 * postgresql.standby_cluster_remotes) or that Postgres TLS would prove
 * (tls), so that site-switchover and demote-cluster can check them before
 * they change anything, and the config key's remote when this node
 * refuses it (standby_remote_usable); and for a running replica
 * "replication_state": "streaming" or "not streaming" (its WAL receiver),
 * so that list shows whether a standby leader streams; and
 * "switchover_refused": {"request": R, "why": S}, the last switchover
 * request (its key's create revision) this leader refused or aborted, so
 * that batonctl says why at once; and "config_error": what Postgres
 * refuses in its configuration files since the last reload (a restart
 * and a switchover are refused meanwhile). Published facts,
 * not decisions: the agent refuses by itself whatever batonctl reads. */
static char *add_standby_trust(const struct loop *L, char *json)
{
	const struct baton_config *cfg = L->cfg;
	json_t *doc = json_loads(json, 0, NULL), *o = NULL, *remotes = json_array();
	char *out = NULL;

	free(json);
	if (!doc || !remotes)
		goto cleanup;
	if (cfg->bootstrap_dcs.standby_host && cfg->bootstrap_dcs.standby_host[0] &&
	    json_array_append_new(remotes,
	                          json_sprintf(strchr(cfg->bootstrap_dcs.standby_host, ':') ? "[%s]:%d" : "%s:%d",
	                                       cfg->bootstrap_dcs.standby_host,
	                                       (int)cfg->bootstrap_dcs.standby_port)) != 0)
		goto cleanup;
	for (size_t i = 0; i < cfg->postgresql.n_standby_remotes; i++)
		if (json_array_append_new(remotes, json_string(cfg->postgresql.standby_remotes[i])) != 0)
			goto cleanup;
	o = json_pack("{s:b, s:O}", "tls", (int)(cfg->postgresql.tls_cafile != NULL), "remotes", remotes);
	if (!o)
		goto cleanup;
	/* why: when it is trusted but refused all the same (a member's
	 * address, an answer as one of ours, no answer). */
	if (L->view.standby_cluster && L->view.standby_host[0] && !L->view.standby_remote_usable &&
	    (json_object_set_new(o, "refuses",
	                         json_sprintf(strchr(L->view.standby_host, ':') ? "[%s]:%d" : "%s:%d",
	                                      L->view.standby_host, L->view.standby_port)) != 0 ||
	     (L->view.standby_unusable_why[0] &&
	      json_object_set_new(o, "why", json_string(L->view.standby_unusable_why)) != 0)))
		goto cleanup;
	/* The remote it streams from now: while the config key is invalid it
	 * follows its last good settings, not what a reader would parse. */
	if (strcmp(L->lm.following, HA_REMOTE) == 0 && L->lm.following_remote[0] &&
	    json_object_set_new(o, "follows", json_string(L->lm.following_remote)) != 0)
		goto cleanup;
	if (json_object_set(doc, "standby_trust", o) != 0)
		goto cleanup;
	/* What Postgres refuses in its configuration (loop_reload.c). */
	if (L->config_error[0]) {
		json_t *e = json_string(L->config_error);

		if (e && json_object_set_new(doc, "config_error", e) != 0)
			goto cleanup;
	}
	/* The last switchover request we refused, for batonctl to quote (left
	 * out when the reason is not UTF-8: the log has it). */
	if (L->sw_refusal.request > 0) {
		json_t *r = json_pack("{s:I, s:s}", "request", (json_int_t)L->sw_refusal.request, "why",
		                      L->sw_refusal.why);

		if (r && json_object_set_new(doc, "switchover_refused", r) != 0)
			goto cleanup;
	}
	if (L->local.pg_ready && !L->local.pg_primary &&
	    json_object_set_new(doc, "replication_state",
	                        json_string(L->pgst.wal_receiver_streaming ? "streaming" : "not streaming")) != 0)
		goto cleanup;
	out = json_dumps(doc, JSON_COMPACT);
cleanup:
	json_decref(o);
	json_decref(remotes);
	json_decref(doc);
	return out;
}

/* The member key's value (*json, with the scheduled restart) and what etcd
 * should hold of it without the parts the member parser does not keep
 * (*base, compared with what it does hold). Both the caller's to free;
 * false when out of memory. */
static bool member_docs(const struct loop *L, const struct ha_member *me, char **base, char **json)
{
	*base = dcs_member_json(me);
	if (!*base)
		return false;
	*json = L->sched.at > 0 ? add_scheduled_restart(L, strdup(*base)) : strdup(*base);
	if (*json)
		*json = add_standby_trust(L, *json);
	if (!*json) {
		free(*base);
		return false;
	}
	return true;
}

void publish_member(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_member me;
	struct etcd_error err;
	char key[400], *json, *base;
	int64_t rev = 0;
	uint64_t lsn;

	if (L->local.lease_id == 0 || !dcs_member_key(&L->keys, cfg->name, key, sizeof(key)))
		return;
	memset(&me, 0, sizeof(me));
	snprintf(me.name, sizeof(me.name), "%s", cfg->name);
	snprintf(me.role, sizeof(me.role), "%s", ha_role_name(member_role(L)));
	snprintf(me.state, sizeof(me.state), "%s", ha_state_name(member_state(L)));
	snprintf(me.host, sizeof(me.host), "%s", cfg->postgresql.connect_host);
	me.port = cfg->postgresql.connect_port;
	snprintf(me.api_url, sizeof(me.api_url), "%s://%s", cfg->restapi.certfile ? "https" : "http",
	         cfg->restapi.connect_address);
	me.timeline = L->local.pg_ready ? L->local.pg_timeline : L->local.datadir_timeline;
	/* A replica publishes what it replayed: lags shown from it tell the truth. */
	me.lsn = !L->local.pg_ready ? 0 : L->local.pg_primary ? L->local.pg_lsn : L->local.pg_replay_lsn;
	/* A member that refuses to lead (watchdog required, not armed) must
	 * not hold its peers back by being ahead of them. */
	me.nofailover = cfg->tags.nofailover || cfg->tags.failover_priority == 0 ||
	                (L->local.watchdog_required && !L->local.watchdog_ok);
	me.nosync = cfg->tags.nosync;
	me.clonefrom = cfg->tags.clonefrom;
	me.failover_priority = (int)cfg->tags.failover_priority;
	me.noloadbalance = cfg->tags.noloadbalance;
	me.nostream = cfg->tags.nostream;
	snprintf(me.replicatefrom, sizeof(me.replicatefrom), "%s",
	         cfg->tags.replicatefrom ? cfg->tags.replicatefrom : "");
	config_tags_json(cfg, me.custom_tags, sizeof(me.custom_tags));
	me.pending_restart = L->pending_restart;
	/* Under writes the LSN moves every pass, and each publication is a
	 * request and a change every other agent's watch takes in: a change
	 * of the LSN alone waits until the last publication is loop_wait old
	 * (the LSN that counts for a failover is asked of the peers afresh,
	 * rule 5). Try the LSN published last; if more than the LSN changed,
	 * publish everything now. */
	lsn = me.lsn;
	if (L->member_json && lsn != L->member_lsn && clk_mono() - L->member_put_at < L->settings.loop_wait)
		me.lsn = L->member_lsn;
	if (!member_docs(L, &me, &base, &json))
		return;
	if (me.lsn != lsn && strcmp(json, L->member_json) != 0) {
		free(base);
		free(json);
		me.lsn = lsn;
		if (!member_docs(L, &me, &base, &json))
			return;
	}
	/* Unchanged, and etcd still holds it as written: nothing to do. A key
	 * deleted or overwritten by someone else is written again. */
	if (L->member_json && strcmp(json, L->member_json) == 0) {
		const struct ha_member *seen = ha_find_member(&L->view, cfg->name);
		char *seen_json = seen ? dcs_member_json(seen) : NULL;
		bool intact = !L->view.etcd_ok || (seen_json && strcmp(seen_json, base) == 0);

		/* The watch-driven cache holds the key as etcd has it: every
		 * byte (a forged replication_state or switchover_refused the
		 * parsed member leaves out) and its lease. */
		if (intact && L->view.etcd_ok && L->cached_valid) {
			const struct etcd_kv *kv = NULL;

			for (size_t i = 0; i < L->cached.n_kvs && !kv; i++)
				if (strcmp(L->cached.kvs[i].key, key) == 0)
					kv = &L->cached.kvs[i];
			intact = kv && kv->value && strcmp(kv->value, json) == 0 && kv->lease == L->local.lease_id;
		}
		free(seen_json);
		if (intact) {
			free(base);
			free(json);
			return;
		}
		log_warn("our member key %s is missing or altered in etcd: writing it again", key);
	}
	free(base);
	if (etcd_put(L->etcd, key, json, L->local.lease_id, &rev, &err) != ETCD_OK) {
		log_warn("cannot publish our member key: %s", err.message);
		free(json);
		return;
	}
	/* Our own write goes into the cached view now: its watch event may
	 * come after the next loop, which must not read it as altered. */
	cache_own_put(L, key, json, L->local.lease_id, rev);
	free(L->member_json);
	L->member_json = json;
	L->member_lsn = me.lsn;
	L->member_put_at = clk_mono();
}

static void publish_metrics(struct loop *L)
{
	struct api_metrics m;
	struct etcd_stats a, b, w;
	int64_t id;
	double sent;

	memset(&m, 0, sizeof(m));
	keeper_counts(L->keeper, &m.lease_renewals, &m.lease_renewal_failures);
	keeper_get(L->keeper, &id, &sent);
	m.since_last_renewal = id && sent > 0 ? clk_mono() - sent : -1;
	m.worst_renewal_latency = keeper_worst_latency(L->keeper);
	m.worst_renewal_gap = keeper_worst_gap(L->keeper);
	m.leader_changes = L->leader_changes;
	m.loop_iterations = L->iterations;
	/* The loop's and the keeper's clients together: every request this agent sends
	 * but the watch stream. */
	etcd_client_get_stats(L->etcd, &a);
	keeper_etcd_stats(L->keeper, &b);
	m.etcd_requests = a.requests + b.requests;
	m.etcd_failures = a.failures + b.failures;
	m.etcd_latency_count = m.etcd_requests;
	m.etcd_latency_sum = a.latency_sum + b.latency_sum;
	for (int i = 0; i < API_LATENCY_BUCKETS && i < ETCD_STATS_BUCKETS; i++)
		m.etcd_latency_le[i] = a.le[i] + b.le[i];
	watch_etcd_stats(L->watch, &w);
	for (int i = 0; i < ETCD_REQ_N; i++)
		m.etcd_by_kind[i] = a.by_kind[i] + b.by_kind[i] + w.by_kind[i] + L->watch_stats.by_kind[i];
	api_publish_metrics(L->api, &m);
}

void publish_api(struct loop *L)
{
	struct api_status st;
	double deadline = ha_lease_deadline(&L->view, &L->local);

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", L->cfg->name);
	snprintf(st.scope, sizeof(st.scope), "%s", L->cfg->scope);
	snprintf(st.role, sizeof(st.role), "%s", ha_role_name(member_role(L)));
	snprintf(st.state, sizeof(st.state), "%s", ha_state_name(member_state(L)));
	snprintf(st.leader, sizeof(st.leader), "%s", L->view.has_leader ? L->view.leader : "");
	st.is_leader = is_leader(L);
	/* Also while its Postgres (re)starts: /leader must not turn 200 then. */
	st.standby_leader = st.is_leader && L->view.standby_cluster && !L->local.pg_primary;
	st.pg_running = L->local.pg_ready && !L->reinit_stopping;
	st.timeline = L->local.pg_timeline;
	st.lsn = L->local.pg_lsn;
	st.receive_lsn = L->pgst.receive_lsn;
	st.replay_lsn = L->pgst.replay_lsn;
	st.nofailover = L->cfg->tags.nofailover;
	st.sync_standby = L->view.synchronous_mode && L->view.has_sync &&
	                  strcmp(L->view.sync_leader, L->cfg->name) != 0 && ha_sync_allows(&L->view, L->cfg->name);
	st.lease_ttl_left = st.is_leader && deadline > 0 ? deadline - clk_mono() : 0;
	st.paused = L->view.paused;
	st.pending_restart = L->pending_restart;
	st.loop_wait = L->settings.loop_wait;
	st.etcd_ok = L->view.etcd_ok;
	st.restart_scheduled_at = L->sched.at;
	snprintf(st.pg_host, sizeof(st.pg_host), "%s", L->cfg->postgresql.connect_host);
	st.pg_port = L->cfg->postgresql.connect_port;
	st.lag = -1;
	if (L->local.pg_ready && L->local.pg_primary)
		st.lag = 0;
	else if (L->local.pg_ready && L->view.leader_lsn > 0)
		st.lag = L->view.leader_lsn > L->local.pg_replay_lsn
		                 ? (int64_t)(L->view.leader_lsn - L->local.pg_replay_lsn)
		                 : 0;
	/* What Patroni's endpoints show (issue 13). */
	st.nosync = L->cfg->tags.nosync;
	st.failover_priority = L->cfg->tags.failover_priority;
	st.noloadbalance = L->cfg->tags.noloadbalance;
	st.nostream = L->cfg->tags.nostream;
	st.clonefrom = L->cfg->tags.clonefrom;
	snprintf(st.replicatefrom, sizeof(st.replicatefrom), "%s",
	         L->cfg->tags.replicatefrom ? L->cfg->tags.replicatefrom : "");
	config_tags_json(L->cfg, st.custom_tags, sizeof(st.custom_tags));
	st.sync_quorum = L->view.synchronous_mode && ha_sync_quorum_mode(&L->view);
	if (L->local.pg_ready && !L->local.pg_primary) {
		snprintf(st.replication_state, sizeof(st.replication_state), "%s",
		         L->pgst.wal_receiver_streaming ? "streaming" : "");
		st.replay_paused = L->pgst.replay_paused;
		patroni_timestamp(L->pgst.replay_timestamp, st.replayed_timestamp, sizeof(st.replayed_timestamp));
	}
	/* Patroni's /metrics series (issue 13). */
	if (L->local.pg_ready) {
		st.server_version = L->pgst.server_version;
		st.postmaster_start = L->pgst.postmaster_start;
	}
	if (L->local.pg_ready && !L->local.pg_primary) {
		st.replay_timestamp = L->pgst.replay_timestamp;
		st.archive_recovery = !L->pgst.wal_receiver_streaming && L->pgst.restore_command;
	}
	st.failsafe_active = L->failsafe.confirmed_at > 0 ||
	                     (L->failsafe.seen_at > 0 && clk_mono() - L->failsafe.seen_at < L->settings.ttl);
	/* 0 keeps the time of the last good read (api_publish). */
	st.dcs_last_seen = L->view.etcd_ok ? clk_wall_s() : 0;
	for (int i = 0; L->local.pg_ready && L->local.pg_primary && i < L->pgst.n_replicas && i < API_WALSENDERS_MAX;
	     i++) {
		const struct pg_replica_info *r = &L->pgst.replicas[i];
		struct api_walsender *w = &st.walsenders[st.n_walsenders++];

		snprintf(w->usename, sizeof(w->usename), "%s", r->usename);
		snprintf(w->application_name, sizeof(w->application_name), "%s", r->application_name);
		snprintf(w->client_addr, sizeof(w->client_addr), "%s", r->client_addr);
		snprintf(w->state, sizeof(w->state), "%s", r->state);
		snprintf(w->sync_state, sizeof(w->sync_state), "%s", r->sync_state);
		w->sync_priority = r->sync_priority;
	}
	api_publish(L->api, &st);
	publish_metrics(L);
}
