/*
 * loop.c - the agent's main loop (see loop.h); the other loop_*.c files
 * hold its parts, one concern each (see loop_internal.h).
 *
 * Each iteration:
 *   1. reap the postmaster and the running job (initdb, pg_basebackup,
 *      pg_rewind), if they ended;
 *   2. make sure we have a lease (the keeper thread keeps it alive);
 *   3. the cluster view: the changes the prefix watch delivered, applied
 *      to the last full read; a full read (one etcd request) only at
 *      start-up, after watch loss or etcd trouble, outside the steady
 *      state and every VIEW_CHECK_INTERVAL (loop_view.c says why that is
 *      safe); an action decided on the cached view is decided again on a
 *      full read before it is carried out;
 *   4. look at the data directory and ask Postgres about itself (bounded);
 *   5. when there is no leader, ask the peers' REST APIs for fresh LSNs;
 *   6. ha_decide(), then carry out the one action it returns;
 *   7. publish members/<name> (when it changed) and the REST snapshot;
 *   8. sleep until loop_wait has passed, or until woken by the leader
 *      watch, the keeper, a child's exit or a signal.
 * Every action is idempotent: if the agent dies halfway, the next loop
 * (or the next agent) simply decides again from what it sees.
 *
 * The postmaster and the jobs are children of this (the main) thread, which
 * lives as long as the agent, so PR_SET_PDEATHSIG fires only when the agent
 * dies (DESIGN.md rule 3).
 */
#include "agent/loop_internal.h"

volatile sig_atomic_t g_shutdown;
static volatile sig_atomic_t g_reload;
static int g_wake_wr = -1;

void loop_wake_from_signal(void)
{
	if (g_wake_wr >= 0) {
		char b = 's';
		ssize_t n = write(g_wake_wr, &b, 1);
		(void)n;
	}
}

void loop_request_shutdown(void)
{
	g_shutdown = 1;
	loop_wake_from_signal();
}

void loop_request_reload(void)
{
	g_reload = 1;
	loop_wake_from_signal();
}

bool is_leader(const struct loop *L)
{
	return L->view.etcd_ok && L->view.has_leader && strcmp(L->view.leader, L->cfg->name) == 0;
}

static void log_action(struct loop *L, const struct ha_action *a)
{
	bool same = a->kind == L->last_kind && strcmp(a->reason, L->last_reason) == 0;

	if (!same) {
		if (a->kind == HA_WAIT || a->kind == HA_LEAD)
			log_info("%s", a->reason);
		else
			log_info("%s -> %s", a->reason, ha_action_name(a->kind));
		sdnotify_status("%s", a->reason); /* `systemctl status` shows it */
	}
	L->last_kind = a->kind;
	snprintf(L->last_reason, sizeof(L->last_reason), "%s", a->reason);
}

static void sleep_until_woken(struct loop *L, double seconds)
{
	struct pollfd pfd = { .fd = L->wake[0], .events = POLLIN };
	char buf[64];
	int ms = seconds <= 0 ? 0 : (int)(seconds * 1000) + 1;

	if (poll(&pfd, 1, ms) > 0)
		while (read(L->wake[0], buf, sizeof(buf)) > 0)
			;
}

static bool busy(const struct loop *L, const struct ha_action *a)
{
	switch (a->kind) {
	case HA_WAIT:
	case HA_LEAD:
	case HA_CLEAR_SWITCHOVER:
	case HA_STANDBY_LEAD:
		break;
	default:
		return true;
	}
	/* Paused poolers hold clients: look for the new primary every 0.1 s. */
	return L->job.pid != 0 || (L->postmaster.pid != 0 && !L->local.pg_ready) || L->lm.promote_requested ||
	       (L->req.restart && !L->req.restart_judged) || L->restart.running ||
	       pooler_paused_count(&L->pool.set) > 0;
}

static bool startup_checks(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct etcd_range_result r;
	struct etcd_error err;
	double until = clk_mono() + fmax(5.0, 2 * cfg->bootstrap_dcs.retry_timeout);
	pid_t other;

	memset(&r, 0, sizeof(r));
	for (;;) {
		if (etcd_get(L->etcd, L->keys.leader, &r, &err) == ETCD_OK)
			break;
		if (clk_mono() >= until || g_shutdown || err.status == ETCD_E_AUTH || err.status == ETCD_E_INVALID) {
			const char *check = err.status == ETCD_E_AUTH            ? "etcd.username and etcd.password"
			                    : strstr(err.message, "TLS") != NULL ? "etcd.cacert, etcd.cert and etcd.key"
			                                                         : "etcd.hosts";
			log_error("cannot use etcd: %s; giving up (check %s in %s)", err.message, check, cfg->path);
			return false;
		}
		sleep_until_woken(L, 0.5);
	}
	etcd_range_result_free(&r);

	/* A postmaster we did not start must not be supervised blindly. One from our
	 * previous life may still be finishing its PDEATHSIG shutdown: wait a little. */
	until = clk_mono() + 10.0;
	while ((other = pg_postmaster_pid_from_file(cfg->postgresql.data_dir)) > 0) {
		if (clk_mono() >= until) {
			log_error("Postgres is already running in %s (pid %d) and was not started by this agent; "
			          "stop it first",
			          cfg->postgresql.data_dir, (int)other);
			return false;
		}
		sleep_until_woken(L, 0.2);
	}
	return true;
}

static bool loop_init(struct loop *L, const struct baton_config *cfg)
{
	char err[512];
	struct etcd_error e;
	double interval;

	L->cfg = cfg;
	L->wake[0] = L->wake[1] = -1;
	L->ctl_stale = true;
	if (!dcs_keys_init(&L->keys, cfg->namespace_, cfg->scope)) {
		log_error("namespace and scope are too long for etcd keys");
		return false;
	}
	L->endpoints = calloc(cfg->etcd.n_hosts, sizeof(char *));
	if (!L->endpoints)
		return false;
	for (size_t i = 0; i < cfg->etcd.n_hosts; i++) {
		size_t len = strlen(cfg->etcd.protocol) + strlen(cfg->etcd.hosts[i]) + 4;
		L->endpoints[i] = malloc(len);
		if (!L->endpoints[i])
			return false;
		snprintf(L->endpoints[i], len, "%s://%s", cfg->etcd.protocol, cfg->etcd.hosts[i]);
	}
	L->ecfg.endpoints = (const char *const *)L->endpoints;
	L->ecfg.n_endpoints = cfg->etcd.n_hosts;
	/* Short enough that a loop blocked on a dead etcd still reaches the
	 * leader's deadline check in time (the keeper is only the backstop). */
	L->ecfg.request_timeout = fmax(0.5, fmin(cfg->bootstrap_dcs.retry_timeout, cfg->bootstrap_dcs.ttl / 4));
	L->ecfg.connect_timeout = fmin(1.0, L->ecfg.request_timeout);
	L->ecfg.cacert = cfg->etcd.cacert;
	L->ecfg.cert = cfg->etcd.cert;
	L->ecfg.key = cfg->etcd.key;
	L->ecfg.username = cfg->etcd.username;
	L->ecfg.password = cfg->etcd.password;
	/* etcd.hosts may name only some members: the others are found. A silent
	 * watch needs no idle timeout here (it would cost a reconnect each
	 * timeout): a failed request of the loop or the keeper, and the periodic
	 * full read, replace a watch that may be dead (loop_view.c). */
	L->ecfg.discover_members = true;
	if (etcd_client_new(&L->ecfg, &L->etcd, &e) != ETCD_OK) {
		log_error("etcd client: %s", e.message);
		return false;
	}
	if (!dcs_settings_copy(&L->settings, &cfg->bootstrap_dcs))
		return false;
	/* Not bootstrap.dcs when this member kept the last good config key:
	 * an invalid or deleted key must not turn a standby cluster into a
	 * primary one (nor unpause it, nor end synchronous mode) at a restart. */
	lastgood_load(L);

	if (pipe2(L->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		log_error("pipe: %s", strerror(errno));
		return false;
	}
	g_wake_wr = L->wake[1];

	L->paths.bin_dir = cfg->postgresql.bin_dir;
	L->paths.data_dir = cfg->postgresql.data_dir;
	L->paths.log_file = cfg->postgresql.log_file;
	L->paths.pgpass = cfg->postgresql.pgpass;
	{
		char sock[300], user[300], pass[PATH_MAX + 8];
		if (!pg_conninfo_quote(cfg->postgresql.socket_dir, sock, sizeof(sock)) ||
		    !pg_conninfo_quote(cfg->postgresql.superuser_username, user, sizeof(user)) ||
		    !pg_conninfo_quote(cfg->postgresql.pgpass, pass, sizeof(pass)))
			return false;
		int n = snprintf(L->local_conninfo, sizeof(L->local_conninfo),
		                 "host=%s port=%d user=%s dbname=postgres passfile=%s application_name=baton", sock,
		                 cfg->postgresql.listen_port, user, pass);
		if (n < 0 || (size_t)n >= sizeof(L->local_conninfo))
			return false;
	}
	L->pg = pg_conn_new(L->local_conninfo, fmin(1.0, fmax(0.5, cfg->bootstrap_dcs.loop_wait)));
	if (!L->pg)
		return false;

	if (!startup_checks(L))
		return false;
	if (!write_pgpass(L))
		return false;
	L->callbacks = cb_new(&cfg->postgresql.callbacks, cfg->scope, cfg->postgresql.callbacks.timeout);
	if (!L->callbacks) {
		log_error("out of memory for callbacks");
		return false;
	}

	interval = fmin(cfg->bootstrap_dcs.loop_wait, cfg->bootstrap_dcs.ttl / 4);
	L->keeper = keeper_start(&L->ecfg, interval, cfg->bootstrap_dcs.ttl, L->wake[1], err, sizeof(err));
	if (!L->keeper) {
		log_error("%s", err);
		return false;
	}
	if (!keeper_set_watchdog(L->keeper, cfg->watchdog.mode, cfg->watchdog.device, cfg->watchdog.safety_margin, err,
	                         sizeof(err))) {
		log_error("%s", err);
		return false;
	}
	/* The prefix watch starts with the first full read (loop_view.c). */
	{
		struct api_options o = {
			.listen = cfg->restapi.listen,
			.pg_conninfo = L->local_conninfo,
			.etcd = &L->ecfg,
			.namespace_ = cfg->namespace_,
			.scope = cfg->scope,
			.auth_username = cfg->restapi.auth_username,
			.auth_password = cfg->restapi.auth_password,
			.certfile = cfg->restapi.certfile,
			.keyfile = cfg->restapi.keyfile,
			.connect_address = cfg->restapi.connect_address,
			.cafile = cfg->restapi.cafile,
			.verify_client = cfg->restapi.verify_client,
			.allowed_hosts = (const char *const *)cfg->restapi.allowed_hosts,
			.n_allowed_hosts = cfg->restapi.n_allowed_hosts,
			.allowlist = (const char *const *)cfg->restapi.allowlist,
			.n_allowlist = cfg->restapi.n_allowlist,
			.allow_unauthenticated_writes = cfg->restapi.allow_unauthenticated_writes,
		};
		L->api = api_start_opts(&o, err, sizeof(err));
	}
	if (!L->api) {
		log_error("REST API: %s", err);
		return false;
	}
	api_restart_attach(L->api);
	log_info("REST API listening on %s", cfg->restapi.listen);
	mv_startup_note(cfg);
	tags_startup_note(cfg);
	return true;
}

static void loop_free(struct loop *L)
{
	struct etcd_error e;

	watch_stop(L->watch);
	if (L->keeper) {
		int64_t id;
		double sent;

		keeper_get(L->keeper, &id, &sent);
		keeper_stop(L->keeper);
		/* Revoking our lease removes our member key (and a leader key still on it). */
		if (id != 0 && L->etcd && etcd_lease_revoke(L->etcd, id, &e) != ETCD_OK)
			log_warn("cannot revoke our lease: %s", e.message);
	}
	api_stop(L->api);
	if (L->postmaster.pid)
		stop_postgres(L, PG_STOP_FAST, "agent exiting");
	if (L->job.pid)
		pg_child_kill(&L->job, 5.0);
	if (L->callbacks) {
		/* Give on_stop a moment to run, bounded, then end what still runs. */
		for (int i = 0; i < 50 && cb_poll(L->callbacks) > 0; i++)
			clk_sleep(0.1);
		cb_free(L->callbacks);
	}
	pg_conn_free(L->pg);
	etcd_client_free(L->etcd);
	if (L->endpoints) {
		for (size_t i = 0; i < L->cfg->etcd.n_hosts; i++)
			free(L->endpoints[i]);
		free(L->endpoints);
	}
	dcs_settings_free(&L->settings);
	free(L->lastgood.raw);
	etcd_range_result_free(&L->cached);
	free(L->member_json);
	free(L->status_json);
	free(L->applied_params);
	g_wake_wr = -1;
	if (L->wake[0] >= 0)
		close(L->wake[0]);
	if (L->wake[1] >= 0)
		close(L->wake[1]);
}

/* At exit: let callbacks still running (on_stop moving a VIP or a label
 * away) finish, within their timeout and at most 10 s, rather than kill
 * them with the agent. */
static void drain_callbacks(struct loop *L)
{
	double until = clk_mono() + fmin(10.0, L->cfg->postgresql.callbacks.timeout);
	bool said = false;

	while (L->callbacks && clk_mono() < until) {
		bool running = false;

		cb_poll(L->callbacks);
		for (int i = 0; i < CB_N_ACTIONS; i++)
			running |= cb_running(L->callbacks, (enum cb_action)i) > 0;
		if (!running)
			return;
		if (!said) {
			log_info("waiting up to %.0fs for callbacks still running", until - clk_mono());
			said = true;
		}
		clk_sleep(0.02);
	}
}

int loop_run(const struct baton_config *cfg)
{
	struct loop L;
	sigset_t block, old;
	int status = 0;
	bool ok, stopping_told = false;

	memset(&L, 0, sizeof(L));
	L.failsafe.agent_started_at = clk_mono();
	/* Threads started now (keeper, watch, REST API) must not take our signals. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ok = loop_init(&L, cfg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok) {
		loop_free(&L);
		return 1;
	}
	/* systemd (Type=notify): started; WatchdogSec= is answered once per
	 * loop, so a hung loop gets the agent restarted. */
	sdnotify_ready();
	if (sdnotify_watchdog_interval() > 0 && sdnotify_watchdog_interval() < 2 * L.settings.loop_wait + 1)
		log_warn("systemd WatchdogSec=%.1fs is short for loop_wait %.1fs; a slow loop will get the agent "
		         "restarted",
		         sdnotify_watchdog_interval(), L.settings.loop_wait);

	for (;;) {
		double now = clk_mono();
		struct ha_action a;
		double wait, deadline;

		L.iterations++;
		sdnotify_watchdog();
		if (g_shutdown && !stopping_told) {
			sdnotify_stopping();
			stopping_told = true;
		}
		if (g_reload) {
			g_reload = 0;
			reload_config(&L);
		}
		reap_postmaster(&L, now);
		reap_job(&L, now);
		cb_poll(L.callbacks);
		ensure_lease(&L);
		L.read_started_at = clk_mono();
		read_cluster_in_time(&L);
		take_requests(&L);
		now = clk_mono();
		read_local(&L, now);
		track_restart(&L, now);
		failsafe_round(&L);
		L.local.failsafe_confirmed_at = L.failsafe.confirmed_at;
		apply_shared_params(&L);
		check_pending_restart(&L, now);
		check_hot_standby(&L, now);
		due_scheduled_restart(&L);
		judge_restart(&L);
		/* After our switchover: until Postgres runs again and follows the
		 * new leader (or leads again, when it was aborted). */
		if (L.local.pg_ready &&
		    (is_leader(&L) ||
		     (L.view.has_leader && strcmp(L.lm.following, ha_upstream(&L.view, &L.local, NULL, 0)) == 0)))
			L.switchover_stopped = false;
		L.local.restart_in_progress = (L.restart.running && !L.local.pg_running) || L.switchover_stopped;
		if (L.view.etcd_ok && !L.view.has_leader && L.local.pg_ready && !L.local.pg_primary &&
		    !L.local.nofailover)
			poll_peers(&L);
		L.view.standby_remote_usable = standby_remote_usable(&L);
		L.local.following_remote_untrusted = standby_remote_following_untrusted(&L);
		now = clk_mono();
		a = ha_decide(&L.view, &L.local, now);
		if (view_needs_fresh(&L, &a)) {
			/* Decided on the cached view: decide again on a full read
			 * before changing anything (loop_view.c). */
			L.want_full_read = true;
			continue;
		}
		log_action(&L, &a);
		if (execute(&L, &a, now)) {
			status = L.running_fatal ? 1 : 0;
			break;
		}
		set_fence(&L);
		promote_nudge(&L);
		if (a.kind == HA_LEAD || a.kind == HA_CLEAR_SWITCHOVER || a.kind == HA_WAIT)
			manage_slots(&L, now);
		if (L.view.etcd_ok)
			publish_member(&L);
		publish_api(&L);

		wait = busy(&L, &a) ? 0.1 : L.settings.loop_wait;
		if (cb_poll(L.callbacks) > 0)
			wait = fmin(wait, 0.2); /* drain callback output, enforce their timeout */
		deadline = ha_lease_deadline(&L.view, &L.local);
		if (L.postmaster.pid && (L.lm.pg_started_primary || L.local.pg_primary) && deadline > 0)
			wait = fmin(wait, fmax(0.01, deadline - clk_mono()));
		if (!g_shutdown)
			sleep_until_woken(&L, wait);
	}
	drain_callbacks(&L);
	log_info("agent stopped%s", status ? " after a fatal error" : "");
	loop_free(&L);
	return status;
}
