/*
 * loop_view.c - gathering the two views ha_decide reads: the cluster view
 * (one etcd range read, bounded by the leader's deadline) and the local
 * view (the data directory, pg_control, Postgres' own answers, the
 * agent's memory of starts, jobs and failures), plus the peers' fresh
 * positions asked of their REST APIs when there is no leader (rule 5).
 * Split from loop.c so that observing stays apart from acting.
 */
#include "agent/loop_internal.h"

/*
 * The cluster view is kept by the prefix watch (watch.h): the loop reads
 * every key with one full read (dcs_read_cluster) at start-up, then applies
 * the changes the watch delivers to that read (dcs_cache_apply) and builds
 * the view from the result each loop, sending etcd nothing. It reads
 * everything again, and starts a new watch from that read's revision + 1
 * so that no change falls between the two:
 *   - when the watch is lost (compacted, ended, overflowed) or missing;
 *   - when etcd looked unwell: the last read failed, or a keepalive failed
 *     since the last loop, or a member failed a request of the loop or the
 *     keeper that another member then answered (a watch on a silently dead
 *     connection delivers nothing, so trouble seen by any request makes it
 *     suspect); the new watch starts on the member that answered last;
 *   - every VIEW_CHECK_INTERVAL seconds, as a consistency check: the cache
 *     with the changes up to the read's revision must equal the read, or
 *     the watch missed something and is replaced;
 *   - whenever the cluster is not in its steady state: no leader, a
 *     switchover pending, or the last action was anything but WAIT/LEAD;
 *   - and before acting on a view from the cache (view_needs_fresh): an
 *     action that changes the cluster or Postgres (acquire, promote,
 *     follow, switchover, ...) is decided again on a full read first.
 * Why that is as safe as a read each loop: rule 1 rests on the txns
 * themselves (the leader key is taken with compares etcd checks server-
 * side, create_revision == 0 or our name at the mod revision we read) and
 * rule 2 on the keeper's send times, neither on the view's age; rule 5's
 * candidate checks run on a full read (no leader => full read). What the
 * cache can hold back is news: with a working watch it arrives within
 * milliseconds (sooner than the old loop_wait poll, and the leader key's
 * DELETE still wakes the loop at once); with a broken one it arrives at
 * the next full read, which etcd trouble, a lost stream or the periodic
 * check brings within VIEW_CHECK_INTERVAL at worst, and a view that only
 * leads to WAIT or LEAD changes nothing in the meantime.
 */
static void replace_watch(struct loop *L, int64_t start, const char *why)
{
	char err[512];
	struct etcd_config ec = L->ecfg;
	size_t n_ep = etcd_client_n_endpoints(L->etcd), first = etcd_client_current(L->etcd);
	const char **eps = calloc(n_ep, sizeof(*eps));
	char keeper_url[256];

	if (L->watch) {
		struct etcd_stats s;

		watch_etcd_stats(L->watch, &s);
		for (int i = 0; i < ETCD_REQ_N; i++)
			L->watch_stats.by_kind[i] += s.by_kind[i];
		watch_stop(L->watch);
		L->watch = NULL;
	}
	if (!eps) {
		log_warn("watch on %s: out of memory; reading every key each loop until a watch runs", L->keys.prefix);
		return;
	}
	/* The endpoints the loop's client knows (the discovered ones too),
	 * starting on a member that answers: the one that answered the
	 * keeper's last keepalive (the keeper asks every few seconds, so a
	 * member that goes silent under the watch is noticed: its failover
	 * replaces the watch), else the one that just answered this loop's
	 * full read; not on the first, which may be a dead or partitioned
	 * member. No discovery: watch_start sends nothing from this thread. */
	if (!keeper_endpoint(L->keeper, keeper_url, sizeof(keeper_url)))
		keeper_url[0] = '\0';
	for (size_t i = 0; i < n_ep; i++) {
		eps[i] = etcd_client_endpoint_at(L->etcd, i);
		if (keeper_url[0] && strcmp(eps[i], keeper_url) == 0)
			first = i;
	}
	ec.endpoints = eps;
	ec.n_endpoints = n_ep;
	ec.discover_members = false;
	log_info("watching %s from revision %lld on %s (%s)", L->keys.prefix, (long long)start, eps[first], why);
	L->watch = watch_start(&ec, first, &L->keys, L->cfg->name, start, L->wake[1], err, sizeof(err));
	free(eps);
	if (!L->watch)
		log_warn("%s; reading every key each loop until a watch runs", err);
}

/* Requests of the loop's and the keeper's clients that a member failed and
 * another one then took (etcd_stats.endpoint_failovers). */
static uint64_t endpoint_failovers(struct loop *L)
{
	struct etcd_stats a, b;

	etcd_client_get_stats(L->etcd, &a);
	keeper_etcd_stats(L->keeper, &b);
	return a.endpoint_failovers + b.endpoint_failovers;
}

/* Applies the watched changes to the cache; false when it must be rebuilt. */
static bool apply_watched(struct loop *L)
{
	struct watch_event *ev = NULL;
	size_t n = 0;
	bool ok;

	if (!L->watch)
		return false;
	ok = watch_take(L->watch, &ev, &n);
	for (size_t i = 0; ok && i < n; i++)
		if (dcs_cache_apply(&L->keys, &L->cached, ev[i].type, &ev[i].kv) == DCS_APPLY_FULL_READ)
			ok = false;
	watch_events_free(ev, n);
	return ok;
}

/*
 * Reads every key, checks the cache against it, makes it the new cache and
 * (re)starts the watch where needed. False when etcd fails (the cache is
 * then kept, marked for a full read).
 */
static bool full_read(struct loop *L, double now, struct etcd_error *err)
{
	struct etcd_range_result r;
	struct watch_event *ev = NULL;
	size_t n = 0;
	bool watch_ok, same = true, again = false;
	const char *why = NULL;

	memset(&r, 0, sizeof(r));
	if (dcs_read_cluster(L->etcd, &L->keys, &L->read_cache, &r, L->cached_warn, sizeof(L->cached_warn), err) !=
	    ETCD_OK) {
		L->want_full_read = true;
		L->watch_suspect = true;
		return false;
	}
	/* What the watch delivered so far: up to r.revision it must agree
	 * with the read; past it, it goes onto the new cache. */
	watch_ok = L->watch && watch_take(L->watch, &ev, &n);
	if (watch_ok && L->cached_valid && !L->watch_suspect) {
		for (size_t i = 0; i < n; i++)
			if (ev[i].kv.mod_revision <= r.revision &&
			    dcs_cache_apply(&L->keys, &L->cached, ev[i].type, &ev[i].kv) == DCS_APPLY_FULL_READ)
				same = false;
		/* A change in flight (written before the read, not delivered
		 * yet) differs too: then the new watch costs one request. */
		if (!same || !dcs_cache_same(&L->cached, &r)) {
			log_info("the cached view of %s differs from a full read at revision %lld: the watch lags "
			         "or missed changes",
			         L->keys.prefix, (long long)r.revision);
			why = "the cached view differed";
		}
	}
	etcd_range_result_free(&L->cached);
	L->cached = r;
	L->cached_valid = true;
	if (!L->watch)
		why = "no watch yet";
	else if (!watch_ok)
		why = "the watch was lost";
	else if (L->watch_suspect && !why)
		why = "after trouble with etcd";
	if (why) {
		watch_events_free(ev, n);
		ev = NULL;
		n = 0;
		replace_watch(L, r.revision + 1, why);
		/* The members this read passed over are behind the new watch. */
		L->endpoint_failovers_seen = endpoint_failovers(L);
	}
	for (size_t i = 0; i < n; i++)
		if (dcs_cache_apply(&L->keys, &L->cached, ev[i].type, &ev[i].kv) == DCS_APPLY_FULL_READ)
			again = true; /* too much to keep: read again next loop */
	watch_events_free(ev, n);
	L->watch_suspect = false;
	L->want_full_read = again;
	L->next_full_read = now + VIEW_CHECK_INTERVAL;
	return true;
}

static bool need_full_read(struct loop *L, double now)
{
	uint64_t ok, failed;
	bool steady = (L->last_kind == HA_WAIT || L->last_kind == HA_LEAD || L->last_kind == HA_STANDBY_LEAD) &&
	              L->view.has_leader && !L->view.has_switchover;
	uint64_t failovers;

	keeper_counts(L->keeper, &ok, &failed);
	if (failed != L->keepalive_failed_seen) {
		L->keepalive_failed_seen = failed;
		L->want_full_read = true;
		L->watch_suspect = true;
	}
	/* A member that failed a request which another then answered may be
	 * the one the watch streams from, silently (stopped, partitioned):
	 * replace the watch, on the member that answers. */
	failovers = endpoint_failovers(L);
	if (failovers != L->endpoint_failovers_seen) {
		L->endpoint_failovers_seen = failovers;
		L->want_full_read = true;
		L->watch_suspect = true;
	}
	return !L->cached_valid || !L->watch || L->want_full_read || !L->view.etcd_ok || now >= L->next_full_read ||
	       !steady;
}

bool view_needs_fresh(const struct loop *L, const struct ha_action *a)
{
	if (!L->view_from_cache)
		return false;
	switch (a->kind) {
	case HA_WAIT:
	case HA_LEAD:
	case HA_STANDBY_LEAD: /* the standby leader's steady state: it writes nothing */
	case HA_DEMOTE:       /* toward fewer writers, and due now (rule 2) */
	case HA_SHUTDOWN:     /* asked for by a signal, not by the view */
		return false;
	default:
		return true;
	}
}

double keepalive_interval(struct loop *L, const struct dcs_settings *s)
{
	bool required, ok;

	keeper_watchdog_state(L->keeper, &required, &ok);
	return ha_keepalive_interval(s->ttl, s->loop_wait, s->retry_timeout,
	                             required || ok ? L->cfg->watchdog.safety_margin : -1.0);
}

static bool cache_has(const struct loop *L, const char *key)
{
	for (size_t i = 0; i < L->cached.n_kvs; i++)
		if (strcmp(L->cached.kvs[i].key, key) == 0)
			return true;
	return false;
}

void cache_own_put(struct loop *L, const char *key, const char *value, int64_t lease, int64_t rev)
{
	struct etcd_kv kv;

	if (!L->cached_valid || rev <= 0)
		return;
	memset(&kv, 0, sizeof(kv));
	kv.key = (char *)key;
	kv.key_len = strlen(key);
	kv.value = (char *)value;
	kv.value_len = strlen(value);
	kv.mod_revision = rev;
	kv.lease = lease;
	if (dcs_cache_apply(&L->keys, &L->cached, ETCD_EVENT_PUT, &kv) == DCS_APPLY_FULL_READ)
		L->want_full_read = true;
}

static void read_cluster(struct loop *L)
{
	struct etcd_error err;
	struct dcs_settings fresh;
	struct ha_cluster_view v;
	char warn[4096] = "";
	double now = clk_mono();
	const struct etcd_range_result *r = &L->cached;

	L->view_from_cache = false;
	/* The cache serves the steady state only: when the watch just took
	 * the leader key away or brought a switchover, the loop reads fully
	 * now, before it polls the peers and decides. */
	if (!need_full_read(L, now) && apply_watched(L) && cache_has(L, L->keys.leader) &&
	    !cache_has(L, L->keys.switchover)) {
		L->view_from_cache = true;
	} else if (!full_read(L, now, &err)) {
		if (L->view.etcd_ok || now - L->last_etcd_err_log >= 5.0) {
			log_warn("cannot read the cluster state from etcd: %s", err.message);
			L->last_etcd_err_log = now;
		}
		L->view.etcd_ok = false; /* the rest of the old view stays for the timing */
		return;
	}
	memset(&v, 0, sizeof(v));
	memset(&fresh, 0, sizeof(fresh));
	dcs_parse_cluster(&L->keys, r, &L->settings, &v, &fresh, warn, sizeof(warn));
	/* Code-running parameters only from this node's file (or its allow list). */
	dcs_settings_drop_code_params(&fresh, L->cfg->postgresql.allow_from_dcs, L->cfg->postgresql.n_allow_from_dcs,
	                              warn, sizeof(warn));
	snprintf(warn + strlen(warn), sizeof(warn) - strlen(warn), "%s", L->cached_warn);
	if (warn[0] && strcmp(warn, L->last_warn) != 0)
		log_warn("unreadable keys in etcd (ignored): %s", warn);
	snprintf(L->last_warn, sizeof(L->last_warn), "%s", warn);
	L->leader_mod_revision = 0;
	L->switchover_mod_revision = 0;
	L->switchover_create_revision = 0;
	for (size_t i = 0; i < r->n_kvs; i++) {
		if (strcmp(r->kvs[i].key, L->keys.leader) == 0)
			L->leader_mod_revision = r->kvs[i].mod_revision;
		else if (strncmp(r->kvs[i].key, L->keys.prefix, strlen(L->keys.prefix)) == 0 &&
		         strcmp(r->kvs[i].key + strlen(L->keys.prefix), "switchover") == 0) {
			L->switchover_mod_revision = r->kvs[i].mod_revision;
			L->switchover_create_revision = r->kvs[i].create_revision;
		}
	}

	if (fresh.ttl != L->settings.ttl || fresh.loop_wait != L->settings.loop_wait ||
	    keepalive_interval(L, &fresh) != L->keepalive_interval) {
		double interval = keepalive_interval(L, &fresh);

		L->keepalive_interval = interval;
		log_info("timing in force: ttl %.1fs, loop_wait %.1fs, retry_timeout %.1fs, keepalive every %.2fs",
		         fresh.ttl, fresh.loop_wait, fresh.retry_timeout, interval);
		keeper_set_timing(L->keeper, interval,
		                  fmin(fresh.ttl, L->granted_ttl > 0 ? (double)L->granted_ttl : fresh.ttl));
	}
	dcs_settings_free(&L->settings);
	L->settings = fresh;
	/* The lease we hold may be shorter than a raised ttl: never count on more. */
	if (L->granted_ttl > 0 && (double)L->granted_ttl < v.ttl)
		v.ttl = (double)L->granted_ttl;
	if (v.has_leader && strcmp(v.leader, L->last_leader) != 0) {
		if (L->last_leader[0])
			L->leader_changes++;
		snprintf(L->last_leader, sizeof(L->last_leader), "%s", v.leader);
	}
	if (v.has_leader)
		L->leader_absent_since = 0;
	else if (L->leader_absent_since == 0)
		L->leader_absent_since = now;
	L->view = v;
	lastgood_track(L, r);
	L->view.config_unknown = L->view.init_key_present && L->view.config_key != HA_CONFIG_VALID &&
	                         L->lastgood.raw == NULL;
	/* A switchover key written straight into etcd is held to what REST
	 * and batonctl enforce (the horizon; no scheduled failover): ignored,
	 * and the leader clears it. */
	if (v.has_switchover && v.sw_failover && v.sw_scheduled_at > 0)
		snprintf(warn, sizeof(warn), "a failover cannot be scheduled (REST and batonctl refuse it)");
	else
		warn[0] = '\0';
	if (v.has_switchover && (warn[0] || !ops_check_horizon((time_t)v.sw_scheduled_at, clk_wall_s(), "switchover",
	                                                       warn, sizeof(warn)))) {
		if (L->switchover_mod_revision != L->sw_refused_rev)
			log_warn("switchover key %sswitchover refused: %s; %s", L->keys.prefix, warn,
			         is_leader(L) ? "clearing it" : "ignoring it (the leader clears it)");
		L->sw_refused_rev = L->switchover_mod_revision;
		L->view.has_switchover = false;
		if (is_leader(L))
			clear_switchover(L, "refused: a scheduled failover, or scheduled beyond the horizon");
	}
}

static bool has_backup_label(const char *data_dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/backup_label", data_dir);

	return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

/*
 * read_cluster, but never past the leader's deadline: while Postgres may
 * write, each etcd request is bounded by the time left, and with no time
 * left the read is skipped, so the decision (DEMOTE) comes in time even
 * when etcd hangs rather than refuses.
 */
void read_cluster_in_time(struct loop *L)
{
	bool may_write = L->postmaster.pid > 0 && (L->lm.pg_started_primary || L->local.pg_primary);
	double deadline = ha_lease_deadline(&L->view, &L->local), left;

	if (!may_write || deadline <= 0) {
		read_cluster(L);
		return;
	}
	keeper_get(L->keeper, &L->local.lease_id, &L->local.lease_sent);
	deadline = ha_lease_deadline(&L->view, &L->local);
	left = deadline - clk_mono();
	if (left <= 0.05) {
		L->view_from_cache = false;
		L->view.etcd_ok = false; /* no time to ask: decide on what we know */
		return;
	}
	etcd_client_set_timeout(L->etcd, fmin(L->ecfg.request_timeout, left - 0.05));
	read_cluster(L);
	etcd_client_set_timeout(L->etcd, L->ecfg.request_timeout);
}

/*
 * The local view: the I/O here (the data directory, pg_control when it may
 * have changed, Postgres' own answer, the keeper), the derivation in the
 * one builder (local_view_update, shared with the simulation), then what
 * its edges call for: logs, callbacks, and after a promotion the history,
 * the switchover key and a checkpoint.
 */
void read_local(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_local_view *l = &L->local;
	struct local_obs o;
	struct local_events ev;
	enum pg_datadir_state ds;
	struct pg_err err;

	memset(&o, 0, sizeof(o));
	o.name = cfg->name;
	o.nofailover = cfg->tags.nofailover || cfg->tags.failover_priority == 0;
	o.failover_priority = (int)cfg->tags.failover_priority;
	o.replicatefrom = cfg->tags.replicatefrom;
	o.nostream = cfg->tags.nostream;
	/* Cascading (tag replicatefrom): the upstream replica must confirm its
	 * key through its REST API before we stream from it (the password goes
	 * there); asked only while it is a running replica, at most one bounded
	 * request, and cached (member_verify.h). */
	if (cfg->tags.replicatefrom && !cfg->tags.nostream && L->view.etcd_ok) {
		const struct ha_member *up = ha_find_member(&L->view, cfg->tags.replicatefrom);

		o.replicatefrom_confirmed = up && strcmp(up->role, "replica") == 0 &&
		                            strcmp(up->state, "running") == 0 &&
		                            (mv_confirmed(&L->mv, up, now) ||
		                             mv_confirm(&L->mv, cfg, up, now, true,
		                                        "streams from the leader instead (tag replicatefrom)"));
	}
	o.shutdown_requested = g_shutdown != 0;
	o.use_pg_rewind = cfg->postgresql.use_pg_rewind;
	o.remove_data_on_rewind_failure = cfg->postgresql.remove_data_directory_on_rewind_failure;
	clone_plan_build(L, &o.clone);
	o.remove_data_on_diverged = cfg->postgresql.remove_data_directory_on_diverged_timelines;
	keeper_get(L->keeper, &o.lease_id, &o.lease_sent);
	keeper_watchdog_state(L->keeper, &o.watchdog_required, &o.watchdog_ok);

	ds = pg_datadir_inspect(cfg->postgresql.data_dir);
	o.datadir = ds == PG_DATADIR_VALID     ? HA_DATADIR_VALID
	            : ds == PG_DATADIR_MISSING ? HA_DATADIR_EMPTY
	                                       : HA_DATADIR_INVALID;
	if (o.datadir == HA_DATADIR_VALID && L->postmaster.pid == 0 && L->job.pid == 0 && L->ctl_stale) {
		/* Only read pg_control while nothing writes it, and only when it may
		 * have changed (pg_controldata's exit wakes the loop via SIGCHLD). */
		L->ctl_stale = false;
		if (pg_controldata_read(cfg->postgresql.bin_dir, cfg->postgresql.data_dir, &L->ctl, &err)) {
			L->ctl_valid = true;
			if (L->ctl.hs_valid) {
				memcpy(L->hs.primary, L->ctl.hs, sizeof(L->hs.primary));
				L->hs.primary_valid = true;
			}
		} else {
			log_error("cannot read the data directory's control file: %s", err.msg);
			L->ctl_valid = false;
		}
	}
	if (o.datadir != HA_DATADIR_VALID) {
		L->ctl_valid = false;
		L->ctl_stale = true;
	}
	o.ctl_valid = L->ctl_valid;
	if (L->ctl_valid) {
		o.ctl_sysid = L->ctl.system_identifier;
		o.ctl_timeline = L->ctl.checkpoint_timeline;
		o.ctl_was_primary = L->ctl.state == PG_DB_SHUTDOWNED || L->ctl.state == PG_DB_IN_PRODUCTION;
		o.backup_label = has_backup_label(cfg->postgresql.data_dir);
	}
	o.postmaster_running = L->postmaster.pid != 0;
	o.job_running = L->job.pid ? L->job_kind : HA_JOB_NONE;
	if (o.postmaster_running && pg_query_state(L->pg, &L->pgst, &err)) {
		o.pg_answered = true;
		o.in_recovery = L->pgst.in_recovery;
		o.timeline = L->pgst.timeline;
		o.current_lsn = L->pgst.current_lsn;
		o.receive_lsn = L->pgst.receive_lsn;
		o.replay_lsn = L->pgst.replay_lsn;
		o.replay_paused = L->pgst.replay_paused;
		o.wal_receiver_streaming = L->pgst.wal_receiver_streaming;
		o.system_identifier = L->pgst.system_identifier;
	}
	/* Started with a hot-standby parameter below what the primary now has
	 * (pg_controldata, refreshed by check_hot_standby). */
	if (L->hs.started_valid && L->hs.primary_valid)
		for (int i = 0; i < PG_HS_PARAMS && !o.hs_below_primary; i++)
			if (L->hs.primary[i] > L->hs.started[i]) {
				o.hs_below_primary = true;
				snprintf(o.hs_detail, sizeof(o.hs_detail), "%s %ld < %ld on the primary",
				         pg_hot_standby_params[i].name, L->hs.started[i], L->hs.primary[i]);
			}
	o.wall_now = clk_wall();
	o.leader_absent_since = L->leader_absent_since;
	o.failsafe_confirmed_at = L->failsafe.confirmed_at;
	o.failsafe_leader_seen_at = fmax(L->failsafe.seen_at, L->failsafe.start_promise);
	o.reinit_requested = L->req.reinit;

	local_view_update(l, &L->lm, &o, &L->view, now, &ev);

	if (ev.became_ready) {
		const char *role = ha_role_name(l->pg_primary ? HA_ROLE_PRIMARY : HA_ROLE_REPLICA);

		log_info("Postgres is up as %s on timeline %u", role, l->pg_timeline);
		cb_fire(L->callbacks, CB_ON_START, role);
		if (L->last_role[0] && strcmp(L->last_role, role) != 0)
			cb_fire(L->callbacks, CB_ON_ROLE_CHANGE, role);
		snprintf(L->last_role, sizeof(L->last_role), "%s", role);
	}
	if (ev.stopped_answering)
		log_warn("Postgres does not answer: %s", err.msg);
	if (ev.promoted) {
		log_info("promoted: Postgres is primary on timeline %u", l->pg_timeline);
		cb_fire(L->callbacks, CB_ON_ROLE_CHANGE, ha_role_name(HA_ROLE_PRIMARY));
		snprintf(L->last_role, sizeof(L->last_role), "%s", ha_role_name(HA_ROLE_PRIMARY));
		if (L->view.has_switchover) {
			char reason[160];

			snprintf(reason, sizeof(reason), "%s from %s",
			         L->view.sw_failover ? "manual failover" : "switchover",
			         L->view.sw_from[0] ? L->view.sw_from : "the old leader");
			append_history(L, reason);
			clear_switchover(L, "done: we are the new leader");
		} else {
			append_history(L, "leader lease acquired, promoted");
		}
		/* The checkpoint below holds this loop for up to a second: say
		 * now that we take writes (HAProxy's /primary check, the old
		 * primary waiting to resume its poolers). */
		publish_api(L);
		/* Postgres spreads its end-of-recovery checkpoint over seconds;
		 * until one completes, pg_control still names the old timeline,
		 * and pg_rewind against or of this node goes wrong (it looks for
		 * the fork on the wrong timeline and fails). Ask for it now. */
		if (pg_query_checkpoint(L->pg, &err))
			log_info("checkpoint after promotion done: pg_control is on timeline %u", l->pg_timeline);
		else
			log_warn("checkpoint after promotion: %s", err.msg);
	}
}

/* How this node talks to its peers' REST APIs (the current config's
 * restapi.cafile, client certificate and credentials). */
struct peer_opts loop_peer_opts(const struct loop *L)
{
	struct peer_opts o;

	peer_opts_from_config(L->cfg, &o);
	return o;
}

/* Rule 5: fresh positions of the peers, asked of their REST APIs. */
void poll_peers(struct loop *L)
{
	double timeout = fmin(0.5, L->settings.loop_wait);
	struct peer_opts po = loop_peer_opts(L);

	for (size_t i = 0; i < L->view.n_members; i++) {
		struct ha_member *m = &L->view.members[i];
		struct api_status st;
		char err[300];
		bool tls = false;

		if (strcmp(m->name, L->cfg->name) == 0 || !m->api_url[0])
			continue;
		m->polled = true;
		m->reachable = peer_get_status(&po, m->api_url, timeout, &st, &tls, err, sizeof(err));
		if (m->reachable && strcmp(st.name, m->name) != 0) {
			/* Another member's REST API (or something else) answers at
			 * this key's api_url: its status is not this member's. */
			char who[sizeof(st.name) * 4];

			log_escape(st.name, who, sizeof(who), false);
			snprintf(err, sizeof(err), "its REST API answers as member %s", who);
			m->reachable = false;
		}
		if (!m->reachable) {
			log_info("candidate check: %s unreachable (%s)", m->name, err);
			continue;
		}
		log_info("candidate check: %s answered over %s: role %s, state %s, timeline %u, lsn %X/%X", m->name,
		         tls ? "https (certificate verified)" : "http", st.role, st.state, st.timeline,
		         (unsigned)(st.lsn >> 32), (unsigned)st.lsn);
		/* A peer whose replay is paused or stuck is no candidate and may
		 * not hold us back (DESIGN.md rule 8). */
		m->healthy = st.pg_running && ha_state_from_name(st.state) != HA_STATE_REPLAY_PAUSED &&
		             ha_state_from_name(st.state) != HA_STATE_STUCK_REPLAY;
		m->polled_starting = !st.pg_running && ha_role_from_name(st.role) != HA_ROLE_UNINITIALIZED &&
		                     (ha_state_from_name(st.state) == HA_STATE_STARTING ||
		                      ha_state_from_name(st.state) == HA_STATE_STOPPED);
		m->polled_primary = st.pg_running && ha_role_from_name(st.role) == HA_ROLE_PRIMARY;
		m->polled_lsn = st.lsn;
		m->polled_timeline = st.timeline;
	}
}
