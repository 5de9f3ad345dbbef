/*
 * loop_restart.c - operator requests taken from the REST API (restart,
 * scheduled restart, reinit, reload, failsafe confirmations): queued,
 * judged on a fresh view of etcd, carried out, and answered. Split from
 * loop.c: the requests' life cycle, apart from the HA actions.
 */
#include "agent/loop_internal.h"

/* Carries out what the REST API queued for this node. */
void take_requests(struct loop *L)
{
	struct api_requests r;

	memset(&r, 0, sizeof(r));
	/* Closed only while we take or hold the key (acquire_leader_key), or
	 * may hold it: after a take etcd did not answer, until a full read. */
	if (L->failsafe.take_unknown && L->view.etcd_ok && !L->view_from_cache)
		L->failsafe.take_unknown = false;
	if (!L->failsafe.take_unknown && (!L->view.has_leader || strcmp(L->view.leader, L->cfg->name) != 0))
		api_failsafe_reopen(L->api);
	/* A confirmation given just before this agent restarted is forgotten
	 * with it, and the leader may still count on it: with failsafe_mode on,
	 * the promise is kept for a ttl after the start as if given then. */
	if (!L->failsafe.start_judged && L->view.etcd_ok) {
		L->failsafe.start_judged = true;
		if (L->view.failsafe_mode) {
			L->failsafe.start_promise = L->failsafe.agent_started_at;
			log_info("failsafe_mode is on: this agent takes no leader key until %.0fs after its start (a "
			         "leader may count on a confirmation given before a restart)",
			         L->settings.ttl);
		}
	}
	api_take_requests(L->api, &r);
	if (r.restart) {
		/* A request that arrives while one waits is merged into it: a
		 * plain restart wins over a conditional one, and the report for
		 * the latest id answers the earlier ones too. */
		if (!L->req.restart) {
			L->req.restart_pending_only = r.restart_pending_only;
			L->req.restart_min_version = r.restart_min_version;
		} else {
			L->req.restart_pending_only = L->req.restart_pending_only && r.restart_pending_only;
			if (!r.restart_min_version || !L->req.restart_min_version)
				L->req.restart_min_version = 0;
			else if (r.restart_min_version > L->req.restart_min_version)
				L->req.restart_min_version = r.restart_min_version;
		}
		L->req.restart = true;
		L->req.restart_id = r.restart_id;
		L->req.restart_arrived = r.restart_arrived;
		L->req.restart_judged = false;
	}
	if (r.restart_cancel && L->sched.at > 0) {
		char t[32];

		dcs_format_utc(L->sched.at, t, sizeof(t));
		log_info("scheduled restart at %s cancelled by an operator", t);
		L->sched.at = 0;
	}
	if (r.restart_at > 0) {
		char t[32];

		dcs_format_utc(r.restart_at, t, sizeof(t));
		log_info("restart of Postgres scheduled at %s%s%s%s", t,
		         r.restart_pending_only ? ", if a restart is pending" : "", r.restart_role[0] ? ", if " : "",
		         r.restart_role[0] ? r.restart_role : "");
		L->sched.at = r.restart_at;
		L->sched.pending_only = r.restart_pending_only;
		L->sched.min_version = r.restart_min_version;
		snprintf(L->sched.role, sizeof(L->sched.role), "%s", r.restart_role);
	}
	if (r.reinit)
		L->req.reinit = true;
	if (r.failsafe_seen_at > L->failsafe.seen_at) {
		if (L->failsafe.seen_at == 0 || r.failsafe_seen_at - L->failsafe.seen_at > L->settings.ttl)
			log_info("confirmed %s as leader in failsafe mode: we will not take the key for %.0fs after "
			         "the last confirmation",
			         L->view.leader, L->settings.ttl);
		L->failsafe.seen_at = r.failsafe_seen_at;
	}
	if (r.reload) {
		/* The same as SIGHUP: the agent's own file, then Postgres' files
		 * (always, even when the agent's file changed nothing for it). */
		double before = L->pg_reloaded_at;

		log_info("reload requested by an operator: re-reading %s as on SIGHUP", L->cfg->path);
		reload_config(L);
		if (L->pg_reloaded_at == before)
			reload_postgres(L, "reload requested by an operator");
	}
}

/* Answers the waiting REST request (if any) and forgets the restart request. */
static void restart_report(struct loop *L, uint64_t id, enum api_restart_outcome outcome, const char *msg, bool own)
{
	log_info("%s: %s", own ? "our own restart" : "restart request", msg);
	api_restart_report(L->api, id, outcome, msg);
}

static void restart_answer(struct loop *L, uint64_t id, enum api_restart_outcome outcome, const char *msg)
{
	restart_report(L, id, outcome, msg, false);
}

/* A scheduled restart whose time came becomes a request like any other
 * (its conditions judged now); one for another role is dropped. */
void due_scheduled_restart(struct loop *L)
{
	char t[32];

	if (L->sched.at <= 0 || clk_wall() < L->sched.at || !L->view.etcd_ok)
		return;
	dcs_format_utc(L->sched.at, t, sizeof(t));
	L->sched.at = 0;
	if (L->sched.role[0] && ha_role_from_name(L->sched.role) != (is_leader(L) ? HA_ROLE_PRIMARY : member_role(L))) {
		log_info("scheduled restart at %s not done: this member is not the %s now", t, L->sched.role);
		return;
	}
	log_info("scheduled restart at %s is due", t);
	if (!L->req.restart) {
		L->req.restart_pending_only = L->sched.pending_only;
		L->req.restart_min_version = L->sched.min_version;
		L->req.restart_id = 0;
	} else {
		L->req.restart_pending_only = L->req.restart_pending_only && L->sched.pending_only;
		if (!L->sched.min_version || !L->req.restart_min_version)
			L->req.restart_min_version = 0;
	}
	L->req.restart = true;
	L->req.restart_arrived = 0;
	L->req.restart_judged = false;
}

/*
 * Judges a restart request against a fresh view: the conditions the
 * operator gave (restart_pending, postgres_version) are evaluated only on
 * a loop whose read of etcd began after the request arrived, once the
 * shared parameters read by it are applied and Postgres has had a moment
 * to take the reload, so "restart --pending" right after "edit-config"
 * sees what the edit made pending. Sets local.restart_requested for the
 * decision core when the restart is to happen.
 */
/*
 * What Postgres would refuse in its configuration files as they are now
 * (postgres -C parses them as a start would): its words, or "" when it
 * accepts them. false when that cannot be told.
 */
bool pg_config_errors(struct loop *L, char *out, size_t len)
{
	struct pg_err err;
	bool refused;

	out[0] = '\0';
	if (!pg_config_check(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &refused, &err)) {
		log_warn("cannot check Postgres' configuration files: %s", err.msg);
		return false;
	}
	if (refused)
		snprintf(out, len, "%s", err.msg);
	return true;
}

void judge_restart(struct loop *L)
{
	struct pg_err err;
	char buf[160], msg[1024];

	L->local.restart_requested = false;
	if (!L->req.restart)
		return;
	if (L->req.restart_judged) {
		L->local.restart_requested = true;
		return;
	}
	if (!L->view.etcd_ok || L->req.restart_arrived >= L->read_started_at)
		return; /* next loop, on a fresh read */
	if (!L->local.pg_ready) {
		L->req.restart = false;
		snprintf(msg, sizeof(msg), "restart of %s not done: Postgres is not running (%s)", L->cfg->name,
		         ha_state_name(member_state(L)));
		restart_answer(L, L->req.restart_id, API_RESTART_FAILED, msg);
		return;
	}
	if (L->req.restart_min_version) {
		int running;

		if (!pg_query_scalar(L->pg, "SHOW server_version_num", buf, sizeof(buf), &err)) {
			L->req.restart = false;
			snprintf(msg, sizeof(msg), "restart of %s not done: cannot read the server version: %.120s",
			         L->cfg->name, err.msg);
			restart_answer(L, L->req.restart_id, API_RESTART_FAILED, msg);
			return;
		}
		running = atoi(buf);
		if (running >= L->req.restart_min_version) {
			L->req.restart = false;
			snprintf(msg, sizeof(msg),
			         "restart not needed: the running server's version %d is not lower than %d", running,
			         L->req.restart_min_version);
			restart_answer(L, L->req.restart_id, API_RESTART_NOT_NEEDED, msg);
			return;
		}
	}
	L->restart.detail[0] = '\0';
	{
		/* The names, running values and the files' values of what waits
		 * for a restart; a parameter taken out of the files goes back
		 * to its built-in default ("default 100"; a value with a unit
		 * only "default"), which batonctl reads (a lowered hot-standby
		 * parameter). A reload sent just now may not have reached our
		 * backend yet: give it a moment (bounded). */
		static const char sql[] =
		        "SELECT coalesce(string_agg(s.name || ' ' || pg_catalog.current_setting(s.name) || ' -> ' || "
		        "coalesce(f.setting, 'default' || CASE WHEN s.unit IS NULL THEN ' ' || s.boot_val ELSE '' END), "
		        "', ' ORDER BY s.name), '') FROM pg_catalog.pg_settings s "
		        "LEFT JOIN LATERAL (SELECT fs.setting FROM pg_catalog.pg_file_settings fs "
		        "WHERE fs.name = s.name ORDER BY fs.seqno DESC LIMIT 1) f ON true WHERE s.pending_restart";
		double settle = L->pg_reloaded_at + 0.3 - clk_mono();

		if (L->pg_reloaded_at > 0 && settle > 0)
			clk_sleep(settle);
		if (!pg_query_scalar(L->pg, sql, L->restart.detail, sizeof(L->restart.detail), &err)) {
			log_warn("cannot read which parameters are pending a restart: %s", err.msg);
			L->restart.detail[0] = '\0';
			if (L->req.restart_pending_only && !L->pending_restart) {
				L->req.restart = false;
				snprintf(msg, sizeof(msg),
				         "restart of %s not done: cannot tell whether a restart is pending: %.100s",
				         L->cfg->name, err.msg);
				restart_answer(L, L->req.restart_id, API_RESTART_FAILED, msg);
				return;
			}
		} else {
			L->pending_restart = L->restart.detail[0] != '\0';
		}
	}
	if (L->req.restart_pending_only && !L->pending_restart) {
		L->req.restart = false;
		restart_answer(L, L->req.restart_id, API_RESTART_NOT_NEEDED,
		               "restart not needed: no parameter is pending a restart");
		return;
	}
	/* A parameter Postgres refuses (a typo in edit-config --pg, a value out
	 * of range) is only logged by a reload, but stops a restart: refuse the
	 * restart, naming it, rather than take Postgres down. */
	{
		char bad[600];

		if (pg_config_errors(L, bad, sizeof(bad)) && bad[0]) {
			L->req.restart = false;
			snprintf(msg, sizeof(msg),
			         "restart of %s refused: Postgres would not start with its configuration: %s "
			         "(fix it with batonctl edit-config --pg NAME= or in the node's file)",
			         L->cfg->name, bad);
			log_error("%s", msg);
			restart_answer(L, L->req.restart_id, API_RESTART_FAILED, msg);
			return;
		}
	}
	L->req.restart_judged = true;
	L->local.restart_requested = true;
}

/* After HA_RESTART stopped Postgres: report once it is back (a replica
 * once it streams again, or after 15 s of running without), or failed. */
void track_restart(struct loop *L, double now)
{
	char msg[1024];

	if (!L->restart.running)
		return;
	if (L->postmaster.pid != 0 && L->postmaster.pid != L->restart.old_pid && L->local.pg_ready) {
		bool primary = L->local.pg_primary;

		if (L->restart.ready_at == 0)
			L->restart.ready_at = now;
		if (!primary && !L->local.pg_streaming && now - L->restart.ready_at < 15.0)
			return;
		if (primary || L->local.pg_streaming)
			snprintf(msg, sizeof(msg), "restarted%s%s%s in %.1f s%s%s", L->restart.detail[0] ? " (" : "",
			         L->restart.detail, L->restart.detail[0] ? ")" : "", now - L->restart.began,
			         primary ? ", primary" : ", streaming from ",
			         primary                     ? ""
			         : L->lm.following_remote[0] ? L->lm.following_remote /* not HA_REMOTE's token */
			                                     : L->lm.following);
		else
			snprintf(msg, sizeof(msg), "restarted%s%s%s in %.1f s, but not streaming yet",
			         L->restart.detail[0] ? " (" : "", L->restart.detail, L->restart.detail[0] ? ")" : "",
			         now - L->restart.began);
		L->restart.running = false;
		restart_report(L, L->restart.running_id, API_RESTART_DONE, msg, L->restart.by_core);
		return;
	}
	if (L->lm.pg_start_failed || now - L->restart.began > 120.0) {
		snprintf(msg, sizeof(msg), "restart of %s: Postgres %s (see the agent's log)", L->cfg->name,
		         L->lm.pg_start_failed ? "failed to start again" : "not back within 120 s");
		L->restart.running = false;
		restart_report(L, L->restart.running_id, API_RESTART_FAILED, msg, L->restart.by_core);
	}
}
