/*
 * loop_execute.c - carrying out the one action ha_decide returned: start
 * and stop Postgres, run and reap the jobs (initdb, the replica creation
 * methods: pg_basebackup or a pgBackRest restore, pg_rewind), follow a new
 * leader, promote. Every step is idempotent: if it fails halfway, the next
 * loop decides again from what it sees.
 * Split from loop.c: the executor, apart from the views and the policy.
 */
#include "agent/loop_internal.h"

#include "pg/pg_replica.h"

static void boot_fail(struct loop *L, double now, const char *what, const char *why);
static void rewind_attempt_failed(struct loop *L, double now);

/* Following HA_REMOTE: which host:port (the core re-points when the
 * config names another). */
static void remember_remote(struct loop *L, const char *upstream)
{
	/* Not proven (standby_remote_usable): Postgres got no primary_conninfo,
	 * so nothing is followed, and the core points it there once it is. */
	if (upstream && strcmp(upstream, HA_REMOTE) == 0 && standby_remote_usable(L))
		snprintf(L->lm.following_remote, sizeof(L->lm.following_remote), "%s:%d", L->view.standby_host,
		         L->view.standby_port);
	else
		L->lm.following_remote[0] = '\0';
	L->lm.remote_diverged = false;
	L->lm.remote_stuck_said = false;
	L->lm.remote_stuck_read_at = 0;
}

/*
 * A standby leader whose replay stays stuck while WAL from the other site
 * arrives, the server's log saying the WAL at that point is unreadable: the
 * two sites' WAL differ past a point on the same timeline number. That
 * happens when both promoted from the same position (this site was
 * promoted, or failed over, after the other one was: both made timeline
 * N+1 from the same record), so the timeline histories match and neither
 * Postgres nor pg_rewind sees a fork. Nothing here can repair it; said once
 * per following, with the way out.
 */
static void standby_stuck_check(struct loop *L, double now)
{
	char why[200], bad[200];
	struct pg_err err;

	if (L->lm.remote_stuck_said || strcmp(L->lm.following, HA_REMOTE) != 0 ||
	    ha_replay_check(&L->view, &L->local, now, why, sizeof(why)) != HA_REPLAY_STUCK)
		return;
	/* The log is read at most every 10 s while replay stays stuck. */
	if (L->lm.remote_stuck_read_at > 0 && now - L->lm.remote_stuck_read_at < 10.0)
		return;
	L->lm.remote_stuck_read_at = now;
	if (!pg_log_last_bad_wal(L->cfg->postgresql.log_file, L->pg_log_from, bad, sizeof(bad), &err) || !bad[0])
		return;
	L->lm.remote_stuck_said = true;
	log_error("standby leader: %s from %s, and the server says \"%s\": this site's WAL and the other "
	          "site's differ past that point on the same timeline number (both sites promoted from the same "
	          "position: one failed over or was promoted after the other was), which neither Postgres nor "
	          "pg_rewind can see. This copy cannot follow %s; re-seed this site from the other one (README, "
	          "\"Re-seeding a standby site\")",
	          why, L->lm.following_remote, bad, L->lm.following_remote);
}

static void start_postgres(struct loop *L, bool primary, const char *upstream, double now)
{
	struct pg_err err;

	/* Only the bootstrap that prepared a recovery of a backup may start it
	 * (pg_replica.h): after an agent crash it would otherwise come up as a
	 * standby and promote itself at its target, without the leader key. */
	if (!L->boot_recovering && pg_boot_recovery_pending(L->cfg->postgresql.data_dir)) {
		boot_fail(L, now, "the data directory holds a bootstrap from a backup interrupted before its promotion",
		          "started now it would promote itself at its recovery target without the leader key");
		return;
	}

	/* The backoff after a failed start is the core's (ha_start_backoff). */
	sync_pg_reset(L);
	if (primary && !sync_key_claim(L))
		return;
	if (!write_pg_files_for_start(L, !primary, upstream))
		return;
	L->pg_log_from = pg_log_size(L->cfg->postgresql.log_file);
	if (!pg_postmaster_start(&L->paths, &L->postmaster, &err)) {
		log_error("cannot start Postgres: %s", err.msg);
		L->lm.pg_start_failed = true;
		L->lm.start_failure = HA_START_FAIL_OTHER;
		snprintf(L->lm.start_error, sizeof(L->lm.start_error), "%.159s", err.msg);
		L->lm.start_failures++;
		L->lm.pg_started_at = now;
		return;
	}
	memcpy(L->hs.started, L->hs.written, sizeof(L->hs.started));
	L->hs.started_valid = !primary && L->hs.written_valid;
	L->hs.checked_at = now;
	L->lm.pg_started_primary = primary;
	L->lm.pg_started_at = now;
	L->lm.pg_was_ready = false;
	L->lm.streamed_tl = 0;
	L->lm.rewound_for[0] = '\0';
	snprintf(L->lm.following, sizeof(L->lm.following), "%s", primary || !upstream ? "" : upstream);
	remember_remote(L, upstream);
	L->lm.not_streaming_since = 0;
	pg_conn_reset(L->pg);
	set_fence(L);
	/* HA_REMOTE is a token of the core: the log names the remote's host:port. */
	log_info("started Postgres (pid %d) as %s%s%s", (int)L->postmaster.pid,
	         ha_role_name(primary ? HA_ROLE_PRIMARY : HA_ROLE_REPLICA),
	         !primary && upstream && upstream[0] ? " of " : "",
	         primary || !upstream        ? ""
	         : L->lm.following_remote[0] ? L->lm.following_remote
	                                     : upstream);
}

void stop_postgres(struct loop *L, enum pg_stop_mode mode, const char *why)
{
	struct pg_err err;

	if (L->postmaster.pid == 0)
		return;
	log_info("stopping Postgres (%s): %s", mode == PG_STOP_IMMEDIATE ? "immediate" : "fast", why);
	if (!pg_postmaster_stop(&L->postmaster, mode,
	                        mode == PG_STOP_IMMEDIATE ? 5.0 : L->cfg->postgresql.pg_ctl_timeout, &err))
		log_error("stopping Postgres: %s", err.msg);
	cb_fire(L->callbacks, CB_ON_STOP, L->last_role[0] ? L->last_role : "unknown");
	keeper_set_fence(L->keeper, 0);
	L->ctl_stale = true;
	L->lm.pg_started_primary = false;
	L->lm.promote_requested = false;
	L->lm.pg_was_ready = false;
	L->lm.following[0] = '\0';
	L->local.pg_running = L->local.pg_ready = L->local.pg_primary = false;
	pg_conn_reset(L->pg);
}

/*
 * A fresh data directory (clone, reinit) owes nothing to the old one:
 * every failure record of it goes (start failures and their diagnosis,
 * failed jobs and their backoff, rewind attempts, the hot-standby values
 * of its pg_control), or the new copy would be treated for the old one's
 * illness.
 */
static void reset_failure_state(struct loop *L, const char *why)
{
	if (L->lm.pg_start_failed || L->lm.job_failed != HA_JOB_NONE || L->lm.rewind_failures || L->lm.start_failures)
		log_info("%s: forgetting the old data directory's failures", why);
	L->lm.pg_start_failed = false;
	L->lm.start_failures = 0;
	L->lm.start_failure = HA_START_FAIL_UNKNOWN;
	L->lm.start_error[0] = '\0';
	L->lm.job_failed = HA_JOB_NONE;
	L->lm.job_failed_at = 0;
	L->lm.rewind_failures = 0;
	L->lm.rewind_ok_for[0] = '\0';
	L->lm.rewound_for[0] = '\0';
	L->lm.following[0] = '\0';
	L->lm.pg_started_primary = false;
	L->hs.primary_valid = L->hs.started_valid = L->hs.written_valid = false;
	L->ctl_stale = true;
	L->clone_failed = 0;
}

static void start_job(struct loop *L, enum ha_job kind, const char *leader, bool started, const char *what)
{
	if (!started)
		return;
	L->job_kind = kind;
	snprintf(L->job_leader, sizeof(L->job_leader), "%s", leader ? leader : "");
	log_info("%s started (pid %d); its output goes to %s", what, (int)L->job.pid, L->cfg->postgresql.log_file);
}

/* ---- bootstrap.method = "pgbackrest": a new cluster from a backup ----
 *
 * The member that won the initialize race runs the restore command (a job,
 * like initdb) into the empty data directory, prepares the recovery
 * (pg_boot_recovery_prepare: baton's restore_command and target, ending
 * with a promotion), takes the leader key and starts Postgres, which
 * recovers and promotes itself on a new timeline at the target (or the end
 * of the archive); do_bootstrap then finishes the bootstrap as after
 * initdb. Any failure on the way (the restore, the preparation, Postgres
 * stopping before it was promoted: a target the archive cannot reach)
 * gives the leader and initialize keys up and moves the data directory
 * aside, and this member does not race again until restarted (rule 5):
 * never a half-recovered primary. */

#define BOOT_RESTORE "bootstrap restore"

static bool boot_from_backup(const struct baton_config *cfg)
{
	return strcmp(cfg->bootstrap_method, "pgbackrest") == 0;
}

/* The one recovery_target_* set (the loader allows one at most): its value,
 * and its name in *name; NULL when none is. */
static const char *boot_target(const struct baton_config *cfg, const char **name)
{
	const char *names[] = { "recovery_target_time", "recovery_target_lsn", "recovery_target_name",
		                "recovery_target_xid" };
	const char *vals[] = { cfg->bootstrap_pgbackrest.recovery_target_time,
		               cfg->bootstrap_pgbackrest.recovery_target_lsn,
		               cfg->bootstrap_pgbackrest.recovery_target_name,
		               cfg->bootstrap_pgbackrest.recovery_target_xid };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (vals[i] != NULL) {
			*name = names[i];
			return vals[i];
		}
	*name = NULL;
	return NULL;
}

/* "to recovery_target_time = '...' (inclusive)", for the log. */
static void boot_target_text(const struct baton_config *cfg, char *buf, size_t len)
{
	const char *name, *value = boot_target(cfg, &name);

	if (cfg->bootstrap_pgbackrest.keep_existing_recovery_conf)
		snprintf(buf, len, "with the restore's own recovery settings (keep_existing_recovery_conf)");
	else if (value != NULL)
		snprintf(buf, len, "to %s = '%s' (%s)", name, value,
		         cfg->bootstrap_pgbackrest.recovery_target_inclusive ? "inclusive" : "exclusive");
	else
		snprintf(buf, len, "to the end of the archive");
}

/* Deletes the initialize key if it still holds our name (a bootstrap in
 * progress), so that another member may bootstrap. */
static void give_up_initialize(struct loop *L)
{
	struct etcd_compare cmp = {
		.key = L->keys.initialize, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name
	};
	struct etcd_op del = { .kind = ETCD_OP_DELETE, .key = L->keys.initialize };
	bool won;

	if (txn_simple(L, &cmp, 1, &del, 1, &won, "give up the initialize key") && won)
		log_info("gave up the initialize key so that another member can bootstrap");
}

static void boot_fail(struct loop *L, double now, const char *what, const char *why)
{
	const char *dir = L->cfg->postgresql.data_dir;
	char moved[PATH_MAX + 64];
	struct pg_err err;

	log_error("bootstrap from a backup failed: %s: %s", what, why);
	L->boot_recovering = false;
	stop_postgres(L, PG_STOP_IMMEDIATE, "bootstrap from a backup failed");
	if (is_leader(L))
		release_leader_key(L);
	give_up_initialize(L);
	reset_failure_state(L, "bootstrap from a backup failed");
	if (!pg_datadir_move_aside(dir, moved, sizeof(moved), &err)) {
		log_error("cannot move the data directory aside (%s): removing it", err.msg);
		if (!pg_datadir_remove(dir, &err))
			log_error("cannot remove the failed data directory: %s", err.msg);
		moved[0] = '\0';
	}
	L->ctl_stale = true;
	L->lm.job_failed = HA_JOB_BOOTSTRAP;
	L->lm.job_failed_at = now;
	L->lm.boot_given_up = true;
	log_error("no cluster was created and this member will not try again until baton is restarted: %s%s%s; fix "
	          "bootstrap.pgbackrest (the backup and stanza the command restores, the recovery target: it must be "
	          "after the end of the backup and within the archive) and restart baton, or set bootstrap.method = "
	          "\"initdb\" for an empty cluster",
	          moved[0] ? "the data directory was moved aside to " : "the data directory was removed",
	          moved[0] ? moved : "", moved[0] ? " for you to read (Postgres' log: postgresql.log_file)" : "");
}

/* Starts the restore command of bootstrap.pgbackrest as the bootstrap job. */
static void boot_restore_start(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct pg_replica_cmd c = { .command = cfg->bootstrap_pgbackrest.command,
		                    .no_params = cfg->bootstrap_pgbackrest.no_params,
		                    .scope = cfg->scope,
		                    .datadir = cfg->postgresql.data_dir };
	struct pg_err err = { "" };
	char target[256];

	if (!write_pgpass(L))
		return;
	boot_target_text(cfg, target, sizeof(target));
	log_info("bootstrapping cluster '%s' from a backup (bootstrap.method pgbackrest): restoring it, then recovering "
	         "%s",
	         cfg->scope, target);
	L->job_deadline = now + cfg->bootstrap_pgbackrest.timeout;
	start_job(L, HA_JOB_BOOTSTRAP, NULL, pg_replica_cmd_start(&L->paths, BOOT_RESTORE, &c, false, &L->job, &err),
	          "the bootstrap restore");
	if (L->job.pid == 0)
		boot_fail(L, now, "the restore command could not start", err.msg);
}

/* The restore job ended: prepare the recovery, or fail the bootstrap. */
static void boot_restore_reaped(struct loop *L, bool ok, double secs, const char *why, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct pg_boot_recovery r = { .restore_command = cfg->bootstrap_pgbackrest.restore_command,
		                      .inclusive = cfg->bootstrap_pgbackrest.recovery_target_inclusive,
		                      .keep_existing = cfg->bootstrap_pgbackrest.keep_existing_recovery_conf };
	char removed[256], target[256], what[96];
	struct pg_err err;

	if (!ok) {
		snprintf(what, sizeof(what), "the restore failed after %.1f s", secs);
		boot_fail(L, now, what, why);
		return;
	}
	r.target_value = boot_target(cfg, &r.target_name);
	if (!pg_boot_recovery_prepare(cfg->postgresql.data_dir, &r, removed, sizeof(removed), &err)) {
		boot_fail(L, now, "cannot prepare the recovery of the restored backup", err.msg);
		return;
	}
	boot_target_text(cfg, target, sizeof(target));
	log_info("restored the backup in %.1f s%s%s; Postgres will recover it %s and be promoted", secs,
	         removed[0] ? "; replaced the restore's recovery settings " : "", removed, target);
	L->boot_recovering = true;
	L->lm.job_failed = HA_JOB_NONE;
}

/* postgresql.create_replica_methods as the core reads it (ha_clone.h). */
void clone_plan_build(const struct loop *L, struct ha_clone_plan *p)
{
	const struct baton_config *cfg = L->cfg;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < cfg->postgresql.n_create_replica_methods && p->n < HA_CLONE_METHODS_MAX; i++) {
		struct ha_clone_method *m = &p->m[p->n++];

		if (strcmp(cfg->postgresql.create_replica_methods[i], "pgbackrest") == 0) {
			m->kind = HA_CLONE_PGBACKREST;
			m->no_leader = cfg->postgresql.pgbackrest.no_leader;
			m->keep_data = cfg->postgresql.pgbackrest.keep_data;
		} else {
			m->kind = HA_CLONE_BASEBACKUP;
		}
	}
	/* A reload may have shortened the list: the next attempt starts over. */
	p->failed = (size_t)L->clone_failed <= ha_clone_count(p) ? L->clone_failed : 0;
}

/*
 * A restore brings whatever the repository holds: a stanza of another
 * cluster would give a data directory rule 5 refuses for good (FATAL).
 * Such a copy counts as a failed method instead, so the next one runs.
 */
static bool clone_identity_ok(struct loop *L, char *why, size_t len)
{
	struct pg_controldata ctl;
	struct pg_err err;

	if (L->view.sysid == 0)
		return true;
	if (!pg_controldata_read(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &ctl, &err)) {
		snprintf(why, len, "the new data directory has no readable control file: %.400s", err.msg);
		return false;
	}
	if (ctl.system_identifier != L->view.sysid) {
		snprintf(why, len,
		         "the new data directory belongs to another cluster (system identifier %llu, "
		         "this cluster's is %llu): wrong stanza or repository?",
		         (unsigned long long)ctl.system_identifier, (unsigned long long)L->view.sysid);
		return false;
	}
	return true;
}

/* One log line per finished clone method, and what the failure means. */
static void clone_report(struct loop *L, bool ok, const char *what, double secs, const char *why)
{
	struct ha_clone_plan plan;
	int i = L->clone_running, next;
	const char *name;

	clone_plan_build(L, &plan);
	name = ha_clone_kind_name(ha_clone_method_at(&plan, i).kind);
	if (ok) {
		log_info("replica created with %s (method %d of %zu, %s) in %.1f s", name, i + 1, ha_clone_count(&plan),
		         what, secs);
		return;
	}
	L->clone_failed = i + 1;
	next = ha_clone_next(&plan, i, L->view.has_leader && strcmp(L->view.leader, L->cfg->name) != 0);
	if (next >= 0)
		log_warn("%s failed after %.1f s (%s), trying %s (method %d of %zu)", name, secs, why,
		         ha_clone_kind_name(ha_clone_method_at(&plan, next).kind), next + 1, ha_clone_count(&plan));
	else
		log_error("%s failed after %.1f s (%s); no replica creation method left: trying again after %.0f s",
		          name, secs, why, ha_job_backoff(HA_JOB_CLONE));
}

/* Reaps a finished job and records what it means. */
void reap_job(struct loop *L, double now)
{
	struct pg_err err = { "" };
	enum pg_child_state st;
	double started;
	char what[32];
	bool post_bootstrap, boot_restore;

	if (L->job.pid == 0)
		return;
	started = L->job.started;
	snprintf(what, sizeof(what), "%s", L->job.what[0] ? L->job.what : "job");
	st = pg_child_poll(&L->job, &err);
	boot_restore = L->job_kind == HA_JOB_BOOTSTRAP && strcmp(what, BOOT_RESTORE) == 0;
	if (st == PG_CHILD_RUNNING && (L->job_kind == HA_JOB_CLONE || boot_restore) && L->job_deadline > 0 &&
	    now > L->job_deadline) {
		log_error("%s has run for %.0f s, past its timeout: stopping it", what, now - started);
		pg_child_kill(&L->job, 5.0);
		snprintf(err.msg, sizeof(err.msg), "%s timed out after %.0f s", what, now - started);
		st = PG_CHILD_FAILED;
	}
	if (st == PG_CHILD_RUNNING)
		return;
	L->ctl_stale = true;
	if (boot_restore) {
		L->job_kind = HA_JOB_NONE;
		boot_restore_reaped(L, st == PG_CHILD_OK, now - started, err.msg, now);
		return;
	}
	if (L->job_kind == HA_JOB_BOOTSTRAP)
		pg_initdb_cleanup(&L->paths);
	if (st == PG_CHILD_OK && L->job_kind == HA_JOB_CLONE && !clone_identity_ok(L, err.msg, sizeof(err.msg)))
		st = PG_CHILD_FAILED;
	if (st == PG_CHILD_OK && L->job_kind == HA_JOB_CLONE) {
		char removed[256];
		struct pg_err serr;

		/* The agent's own recovery settings must rule (pg_replica.h). */
		if (!pg_auto_conf_strip_recovery(L->cfg->postgresql.data_dir, removed, sizeof(removed), &serr))
			log_warn("cannot clean postgresql.auto.conf of the new copy: %s", serr.msg);
		else if (removed[0])
			log_info("removed %s from postgresql.auto.conf of the new copy: the agent's own settings "
			         "(postgresql.parameters, primary_conninfo) rule",
			         removed);
	}
	if (L->job_kind == HA_JOB_CLONE)
		clone_report(L, st == PG_CHILD_OK, what, now - started, err.msg);
	post_bootstrap = L->job_kind == HA_JOB_BOOTSTRAP && strcmp(what, "post_bootstrap") == 0;
	if (st == PG_CHILD_OK && L->job_kind == HA_JOB_REWIND && L->rewind_proven) {
		bool said = false;
		struct pg_err lerr;

		/* The server said its timeline diverged: a pg_rewind that found
		 * nothing to do repaired nothing (it compared a stale timeline of
		 * its source), so this attempt failed and is retried. */
		if (!pg_rewind_said_nothing_to_do(L->cfg->postgresql.log_file, L->rewind_log_from, &said, &lerr))
			log_warn("cannot read pg_rewind's output: %s", lerr.msg);
		if (said) {
			st = PG_CHILD_FAILED;
			snprintf(err.msg, sizeof(err.msg),
			         "it said \"no rewind required\" although the server reported a diverged timeline");
		}
	}
	if (st == PG_CHILD_OK) {
		log_info("%s finished", what);
		if (post_bootstrap)
			L->post_bootstrap_done = true;
		if (L->job_kind == HA_JOB_CLONE)
			reset_failure_state(L, "cloned");
		if (L->job_kind == HA_JOB_REWIND || L->job_kind == HA_JOB_CLONE)
			snprintf(L->lm.rewound_for, sizeof(L->lm.rewound_for), "%s", L->job_leader);
		if (L->job_kind == HA_JOB_REWIND) {
			L->lm.rewind_failures = 0;
			L->lm.pg_start_failed = false; /* try the start again */
			snprintf(L->lm.rewind_ok_for, sizeof(L->lm.rewind_ok_for), "%s", L->job_leader);
		}
		L->lm.job_failed = HA_JOB_NONE;
	} else {
		log_error("%s failed: %s (see %s)", what, err.msg, L->cfg->postgresql.log_file);
		L->lm.job_failed = L->job_kind;
		L->lm.job_failed_at = now;
		if (L->job_kind == HA_JOB_REWIND)
			rewind_attempt_failed(L, now);
		if (post_bootstrap) {
			/* As Patroni: the new cluster is dropped, and the bootstrap
			 * starts again (on any member) once the backoff has passed. */
			log_error("post_bootstrap %s failed: removing the new cluster and giving up the bootstrap; it is "
			          "retried after a backoff (fix the script)",
			          L->cfg->post_bootstrap);
			stop_postgres(L, PG_STOP_IMMEDIATE, "post_bootstrap failed");
			release_leader_key(L);
		}
		if (L->job_kind == HA_JOB_CLONE || L->job_kind == HA_JOB_BOOTSTRAP) {
			/* A half-made data directory is worthless: remove it so the next try starts clean. */
			if (!pg_datadir_remove(L->cfg->postgresql.data_dir, &err))
				log_error("cannot remove the failed data directory: %s", err.msg);
		}
		if (L->job_kind == HA_JOB_BOOTSTRAP)
			give_up_initialize(L);
	}
	L->job_kind = HA_JOB_NONE;
}

void reap_postmaster(struct loop *L, double now)
{
	struct pg_err err;
	enum pg_child_state st;

	if (L->postmaster.pid == 0)
		return;
	st = pg_child_poll(&L->postmaster, &err);
	if (st == PG_CHILD_RUNNING)
		return;
	keeper_set_fence(L->keeper, 0);
	L->ctl_stale = true;
	if (!L->lm.pg_was_ready) {
		struct pg_start_diag d;
		struct pg_err derr;

		L->lm.pg_start_failed = true;
		L->lm.start_failures++;
		if (!pg_start_diagnose(L->cfg->postgresql.log_file, L->pg_log_from, &d, &derr))
			log_warn("cannot tell why Postgres failed to start: %s", derr.msg);
		L->lm.start_failure = d.kind == PG_START_FAIL_DIVERGED ? HA_START_FAIL_DIVERGED
		                      : d.kind == PG_START_FAIL_PARAMS ? HA_START_FAIL_PARAMS
		                      : d.kind == PG_START_FAIL_OTHER  ? HA_START_FAIL_OTHER
		                                                       : HA_START_FAIL_UNKNOWN;
		if (d.kind == PG_START_FAIL_PARAMS && d.param[0])
			snprintf(L->lm.start_error, sizeof(L->lm.start_error), "%s = %ld is below the primary's %ld",
			         d.param, d.value, d.primary_value);
		else
			snprintf(L->lm.start_error, sizeof(L->lm.start_error), "%.159s",
			         d.fatal_line[0] ? d.fatal_line : err.msg);
		/* Make sure the next start sees pg_control as it is now (the
		 * primary's parameters as replayed up to the failure). */
		L->ctl_stale = true;
		log_error("Postgres exited during start-up (%s), failure %d in a row: %s [%s]; see %s", err.msg,
		          L->lm.start_failures, d.fatal_line[0] ? d.fatal_line : "the server logged no FATAL line",
		          pg_start_failure_name(d.kind), L->cfg->postgresql.log_file);
		/* Rewound and still diverged: that rewind repaired nothing (its
		 * source may have been mid-way through a timeline switch), so it
		 * counts as one failed attempt of three, not as the last word. */
		if (d.kind == PG_START_FAIL_DIVERGED && L->lm.rewind_ok_for[0]) {
			log_warn("Postgres still cannot follow %s after pg_rewind: counting that rewind as failed",
			         strcmp(L->lm.rewind_ok_for, HA_REMOTE) == 0 ? "the standby_cluster remote"
			                                                     : L->lm.rewind_ok_for);
			L->lm.rewind_ok_for[0] = '\0';
			rewind_attempt_failed(L, now);
		}
	} else {
		log_warn("Postgres exited unexpectedly (%s)", st == PG_CHILD_OK ? "status 0" : err.msg);
		cb_fire(L->callbacks, CB_ON_STOP, L->last_role[0] ? L->last_role : "unknown");
	}
	L->lm.pg_started_at = now;
	L->lm.promote_requested = false;
	/* After a failed start keep `following`: the core then knows it could
	 * not start as a replica of that leader (and rewinds). */
	if (L->lm.pg_was_ready)
		L->lm.following[0] = '\0';
	L->lm.pg_was_ready = false;
	pg_conn_reset(L->pg);
	if (L->boot_recovering) {
		struct pg_start_diag d;
		struct pg_err derr;

		if (!pg_start_diagnose(L->cfg->postgresql.log_file, L->pg_log_from, &d, &derr))
			d.fatal_line[0] = '\0';
		boot_fail(L, now, "Postgres stopped before the recovery of the restored backup ended",
		          d.fatal_line[0] ? d.fatal_line : "it logged no FATAL line");
	}
}

bool ensure_roles(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct pg_err err;

	if (!pg_query_ensure_role(L->pg, cfg->postgresql.replication_username, cfg->postgresql.replication_password,
	                          true, &err)) {
		log_error("cannot create the replication role: %s", err.msg);
		return false;
	}
	/* Patroni's authentication.rewind: a role that can do no more than
	 * pg_rewind needs, so the superuser's password need not be usable
	 * from the other members. */
	if (cfg->postgresql.rewind_username && (!pg_query_ensure_role(L->pg, cfg->postgresql.rewind_username,
	                                                              cfg->postgresql.rewind_password, false, &err) ||
	                                        !pg_query_grant_rewind(L->pg, cfg->postgresql.rewind_username, &err))) {
		log_error("cannot create the rewind role %s: %s", cfg->postgresql.rewind_username, err.msg);
		return false;
	}
	return true;
}

static void do_race_init(struct loop *L)
{
	char value[32];
	const char *v = L->cfg->name;
	int64_t lease = L->local.lease_id;
	struct etcd_compare cmp = { .key = L->keys.initialize, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL };
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = L->keys.initialize };
	bool won = false;

	if (lease == 0) /* the core waits for our lease (rule 5): never a key without one */
		return;
	if (L->local.datadir == HA_DATADIR_VALID) {
		/* An existing data directory claims a cluster that etcd forgot. */
		snprintf(value, sizeof(value), "%llu", (unsigned long long)L->local.datadir_sysid);
		v = value;
		lease = 0;
	}
	put.value = v;
	put.lease = lease;
	if (!txn_simple(L, &cmp, 1, &put, 1, &won, "initialize race"))
		return;
	if (!won)
		log_info("another member initializes the cluster");
	else if (lease)
		log_info("won the initialize race: bootstrapping a new cluster");
	else
		log_info("claimed the cluster with our data directory (system identifier %s)", v);
}

/*
 * The first member of a standby cluster (the core's BOOTSTRAP with leader
 * HA_REMOTE): a base backup of the other site's primary instead of initdb,
 * then a start as its replica with the leader key held. No roles and no
 * post_bootstrap: the copy has the other site's. Returns false once the
 * replica answers, and the bootstrap is finished by the caller.
 */
static bool bootstrap_standby(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_local_view *l = &L->local;
	struct pg_err err = { "" };

	if (l->datadir == HA_DATADIR_EMPTY) {
		const struct pg_basebackup_opts o = { .max_rate = cfg->postgresql.basebackup.max_rate,
			                              .checkpoint = cfg->postgresql.basebackup.checkpoint };
		char conninfo[2048];

		if (!write_pgpass(L) || !leader_conninfo(L, HA_REMOTE, true, conninfo, sizeof(conninfo)))
			return true;
		log_info("standby cluster: taking a base backup of the other site's primary %s:%d",
		         L->view.standby_host, L->view.standby_port);
		start_job(L, HA_JOB_BOOTSTRAP, HA_REMOTE,
		          pg_basebackup_start_opts(&L->paths, conninfo, &o, &L->job, &err),
		          "pg_basebackup of the other site");
		if (L->job.pid == 0)
			log_error("cannot run pg_basebackup of %s:%d: %s", L->view.standby_host, L->view.standby_port,
			          err.msg);
		return true;
	}
	if (!l->pg_running) {
		if (!is_leader(L) && !acquire_leader_key(L))
			return true;
		start_postgres(L, false, HA_REMOTE, now);
		return true;
	}
	return !l->pg_ready;
}

static void do_bootstrap(struct loop *L, const struct ha_action *a, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_local_view *l = &L->local;
	struct pg_err err;
	const bool standby = strcmp(a->leader, HA_REMOTE) == 0;

	if (standby && bootstrap_standby(L, now))
		return;
	if (!standby && l->datadir == HA_DATADIR_EMPTY && boot_from_backup(cfg)) {
		boot_restore_start(L, now);
		return;
	}
	if (!standby && l->datadir == HA_DATADIR_EMPTY) {
		const struct pg_initdb_opts io = { .encoding = cfg->bootstrap_initdb.encoding,
			                           .locale = cfg->bootstrap_initdb.locale,
			                           .data_checksums = cfg->bootstrap_initdb.data_checksums,
			                           .extra = cfg->bootstrap_initdb.options,
			                           .n_extra = cfg->bootstrap_initdb.n_options };

		if (!write_pgpass(L))
			return;
		start_job(L, HA_JOB_BOOTSTRAP, NULL,
		          pg_initdb_start(&L->paths, cfg->postgresql.superuser_username,
		                          cfg->postgresql.superuser_password, &io, &L->job, &err),
		          "initdb");
		if (L->job.pid == 0)
			log_error("cannot run initdb: %s", err.msg);
		return;
	}
	if (!standby && !l->pg_running) {
		if (!is_leader(L) && !acquire_leader_key(L))
			return;
		if (L->boot_recovering)
			log_info(
			        "starting Postgres on the restored backup: it recovers, then promotes itself and becomes "
			        "the primary; we hold the leader key meanwhile");
		start_postgres(L, true, NULL, now);
		return;
	}
	if (!standby && (!l->pg_ready || !l->pg_primary))
		return;
	if (L->boot_recovering) {
		char removed[256];
		struct pg_err serr;

		/* A later standby of this data directory must not stop at the old
		 * target, and a marker left behind would make every later start
		 * refuse this (by then live) data directory: the bootstrap ends
		 * only once both are gone. */
		if (!pg_boot_recovery_done(cfg->postgresql.data_dir, removed, sizeof(removed), &serr)) {
			log_error("recovery of the restored backup ended, but cleaning up after it failed: %s; the "
			          "bootstrap does not finish until it succeeds (retrying next loop)",
			          serr.msg);
			return;
		}
		L->boot_recovering = false;
		log_info("recovery of the restored backup ended: Postgres was promoted on timeline %u",
		         (unsigned)L->pgst.timeline);
		if (removed[0])
			log_info("removed %s from postgresql.auto.conf (used by the recovery only)", removed);
	}
	if (!standby && !ensure_roles(L))
		return;
	/* Patroni's post_bootstrap: once, as a job (rule 4 waits for it),
	 * before the initialize key says the cluster exists. */
	if (!standby && cfg->post_bootstrap && !L->post_bootstrap_done) {
		char url[PATH_MAX + 256];

		if (snprintf(url, sizeof(url), "postgresql://%s@/postgres?host=%s&port=%d",
		             cfg->postgresql.superuser_username, cfg->postgresql.socket_dir,
		             cfg->postgresql.listen_port) >= (int)sizeof(url) ||
		    !write_pgpass(L))
			return;
		start_job(L, HA_JOB_BOOTSTRAP, NULL,
		          pg_post_bootstrap_start(&L->paths, cfg->post_bootstrap, url, cfg->postgresql.pgpass, &L->job,
		                                  &err),
		          "post_bootstrap");
		if (L->job.pid == 0)
			log_error("cannot run post_bootstrap %s: %s", cfg->post_bootstrap, err.msg);
		return;
	}
	{
		char sysid[32], *config_json = dcs_config_json(&cfg->bootstrap_dcs);
		struct etcd_compare init_cmp = { .key = L->keys.initialize,
			                         .target = ETCD_CMP_VALUE,
			                         .result = ETCD_CMP_EQUAL,
			                         .value = cfg->name };
		struct etcd_compare cfg_cmp = { .key = L->keys.config,
			                        .target = ETCD_CMP_CREATE,
			                        .result = ETCD_CMP_EQUAL };
		struct etcd_op put_init = { .kind = ETCD_OP_PUT, .key = L->keys.initialize, .value = sysid };
		struct etcd_op put_cfg = { .kind = ETCD_OP_PUT, .key = L->keys.config, .value = config_json };
		bool won = false;

		snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long)L->pgst.system_identifier);
		if (config_json && txn_simple(L, &cfg_cmp, 1, &put_cfg, 1, &won, "write the cluster config") && won)
			log_info("wrote the cluster's dynamic configuration from bootstrap.dcs");
		free(config_json);
		if (txn_simple(L, &init_cmp, 1, &put_init, 1, &won, "finish bootstrap") && won) {
			log_info("bootstrap complete: cluster '%s' has system identifier %s; we are its %s", cfg->scope,
			         sysid, standby ? "standby leader" : "primary");
			append_history(L, "bootstrap");
		}
	}
}

/*
 * Runs the clone method the core chose (a->clone_method of the plan). A
 * base backup comes from a confirmed replica tagged clonefrom when there is
 * one (ha_clone_source), else from the leader; a restore command gets the
 * leader's conninfo as --connstring (none without a leader). keep_data: a
 * reinit runs the command over the old data directory. A method that
 * cannot even start counts as failed, so the next one runs.
 */
static void do_clone(struct loop *L, const struct ha_action *a, bool keep_data, double now)
{
	const struct baton_config *cfg = L->cfg;
	const char *leader = a->leader[0] ? a->leader : NULL;
	struct ha_clone_plan plan;
	struct ha_clone_method m;
	char conninfo[2048] = "", label[48];
	struct pg_err err = { "" };
	bool started;

	clone_plan_build(L, &plan);
	m = ha_clone_method_at(&plan, a->clone_method);
	if (!write_pgpass(L))
		return;
	if (m.kind == HA_CLONE_BASEBACKUP) {
		const char *src = ha_clone_source(&L->view, cfg->name);
		struct pg_basebackup_opts o = { .max_rate = cfg->postgresql.basebackup.max_rate,
			                        .checkpoint = cfg->postgresql.basebackup.checkpoint };

		if (src == NULL || leader == NULL)
			return; /* the core only asks for a base backup with a leader */
		if (strcmp(src, leader) != 0 && !leader_conninfo(L, src, true, conninfo, sizeof(conninfo))) {
			log_warn("cannot take the base backup from %s (tagged clonefrom): taking it from the leader %s",
			         src, leader);
			src = leader;
		}
		if (strcmp(src, leader) == 0 && !leader_conninfo(L, leader, true, conninfo, sizeof(conninfo)))
			return; /* not confirmed yet: the next loop asks again */
		log_info("creating replica with basebackup (method %d of %zu) from %s%s", a->clone_method + 1,
		         ha_clone_count(&plan), src,
		         strcmp(src, leader) != 0 ? " (tagged clonefrom)" : " (the leader)");
		started = pg_basebackup_start_opts(&L->paths, conninfo, &o, &L->job, &err);
		snprintf(label, sizeof(label), "pg_basebackup");
		L->job_deadline = cfg->postgresql.basebackup.timeout > 0 ? now + cfg->postgresql.basebackup.timeout : 0;
	} else {
		struct pg_replica_cmd c = { .command = cfg->postgresql.pgbackrest.command,
			                    .no_params = cfg->postgresql.pgbackrest.no_params,
			                    .scope = cfg->scope,
			                    .datadir = cfg->postgresql.data_dir,
			                    .role = "replica" };

		if (leader && !c.no_params && !leader_conninfo(L, leader, true, conninfo, sizeof(conninfo)))
			return;
		c.connstring = conninfo;
		log_info("creating replica with pgbackrest (method %d of %zu)%s%s%s", a->clone_method + 1,
		         ha_clone_count(&plan), leader ? ", leader " : " while no member leads", leader ? leader : "",
		         keep_data ? ", over the old data directory (keep_data)" : "");
		started = pg_replica_cmd_start(&L->paths, "pgbackrest", &c, keep_data, &L->job, &err);
		snprintf(label, sizeof(label), "the pgbackrest restore");
		L->job_deadline = now + cfg->postgresql.pgbackrest.timeout;
	}
	L->clone_running = a->clone_method;
	start_job(L, HA_JOB_CLONE, leader, started, label);
	if (!started) {
		log_error("cannot run %s: %s", label, err.msg);
		clone_report(L, false, label, 0, err.msg);
		L->lm.job_failed = HA_JOB_CLONE;
		L->lm.job_failed_at = now;
		if (!keep_data && !pg_datadir_remove(cfg->postgresql.data_dir, &err))
			log_error("cannot remove the failed data directory: %s", err.msg);
	}
}

/* A failed rewind attempt (pg_rewind failed, or its source never became
 * fit for it): a rewind can fail for a passing reason (the source was
 * shutting down), so it counts as failed for good only the third time in
 * a row; the core retries after its backoff until then. */
static void rewind_attempt_failed(struct loop *L, double now)
{
	L->lm.job_failed = HA_JOB_REWIND;
	L->lm.job_failed_at = now;
	if (++L->lm.rewind_failures < 3) {
		log_info("will retry pg_rewind (attempt %d of 3)", L->lm.rewind_failures + 1);
		L->lm.job_failed = HA_JOB_NONE;
	}
}

/*
 * Is the rewind source fit for pg_rewind now (ha_rewind_source_check)?
 * Asks it over the rewind connection, and for a CHECKPOINT when its
 * pg_control lags its timeline (pg_rewind 15 would otherwise take the old
 * timeline for the source's, say "no rewind required", and the target
 * still could not follow). false: not now (logged; the next loop asks
 * again), or this attempt failed (counted as a failed rewind). A source
 * that cannot be asked is left to pg_rewind itself, which reports what is
 * wrong with it: the check only ever delays a rewind.
 */
static bool rewind_source_ready(struct loop *L, const char *leader, const char *conninfo, double now)
{
	const struct ha_member *m = strcmp(leader, HA_REMOTE) == 0 ? NULL : ha_find_member(&L->view, leader);
	const uint32_t known_tl = m ? m->timeline : 0;
	char name[300], why[512];
	struct pg_rewind_source src;
	struct pg_conn *c = NULL;
	struct pg_err err;
	enum ha_rewind_source v;
	bool ready = true, quiet, asked = false;

	if (m)
		snprintf(name, sizeof(name), "%s", leader);
	else
		snprintf(name, sizeof(name), "%s:%d", L->view.standby_host, L->view.standby_port);
	/* A pause longer than a few loops ends the wait: this is a new attempt. */
	if (L->rewind_wait_since > 0 && now - L->rewind_wait_at > 3 * L->view.loop_wait + 5)
		L->rewind_wait_since = 0;
	c = pg_conn_new(conninfo, 3.0);
	if (!c) {
		log_warn("cannot ask rewind source %s for its timelines: out of memory", name);
		goto cleanup;
	}
	if (!pg_query_rewind_source(c, &src, &err)) {
		log_warn("cannot ask rewind source %s for its timelines (%s): leaving it to pg_rewind", name, err.msg);
		goto cleanup;
	}
	v = ha_rewind_source_check(name, src.checkpoint_timeline, src.timeline, known_tl, false,
	                           L->rewind_wait_since > 0 ? now - L->rewind_wait_since : 0,
	                           ha_rewind_source_bound(&L->view), why, sizeof(why));
	/* While it waits, one line every 10 s says so, not one per loop. */
	quiet = L->rewind_wait_since > 0 && now - L->rewind_wait_logged < 10;
	if (v == HA_REWIND_SOURCE_CHECKPOINT) {
		if (!quiet)
			log_info("%s", why);
		asked = true;
		if (!pg_query_checkpoint(c, &err))
			log_warn("CHECKPOINT on rewind source %s failed: %s", name, err.msg);
		if (!pg_query_rewind_source(c, &src, &err)) {
			log_warn("cannot ask rewind source %s for its timelines (%s): not rewinding yet", name,
			         err.msg);
			ready = false;
			goto cleanup;
		}
		v = ha_rewind_source_check(name, src.checkpoint_timeline, src.timeline, known_tl, true,
		                           L->rewind_wait_since > 0 ? now - L->rewind_wait_since : 0,
		                           ha_rewind_source_bound(&L->view), why, sizeof(why));
	}
	switch (v) {
	case HA_REWIND_SOURCE_READY:
		if (L->rewind_wait_since > 0 || asked)
			log_info("%s: rewinding now", why);
		L->rewind_wait_since = 0;
		break;
	case HA_REWIND_SOURCE_CHECKPOINT: /* not after a CHECKPOINT was asked */
	case HA_REWIND_SOURCE_WAIT:
		if (!quiet) {
			log_warn("%s", why);
			L->rewind_wait_logged = now;
		}
		if (L->rewind_wait_since == 0)
			L->rewind_wait_since = now;
		L->rewind_wait_at = now;
		ready = false;
		break;
	case HA_REWIND_SOURCE_GIVE_UP:
		log_error("%s", why);
		L->rewind_wait_since = 0;
		rewind_attempt_failed(L, now);
		ready = false;
		break;
	}
cleanup:
	pg_conn_free(c);
	return ready;
}

static void do_rewind(struct loop *L, const char *leader, double now)
{
	char conninfo[2048];
	struct pg_err err;

	if (!leader_conninfo(L, leader, false, conninfo, sizeof(conninfo)))
		return;
	if (!rewind_source_ready(L, leader, conninfo, now))
		return;
	L->rewind_proven = (L->lm.pg_start_failed && L->lm.start_failure == HA_START_FAIL_DIVERGED) ||
	                   L->lm.remote_diverged;
	L->rewind_log_from = pg_log_size(L->cfg->postgresql.log_file);
	stop_postgres(L, PG_STOP_FAST, "rewinding");
	/* pg_rewind may run a single-user server for crash recovery, which
	 * refuses to start in standby mode. */
	if (!pg_conf_set_standby(L->cfg->postgresql.data_dir, false, &err)) {
		log_error("cannot prepare for pg_rewind: %s", err.msg);
		return;
	}
	start_job(L, HA_JOB_REWIND, leader, pg_rewind_start(&L->paths, conninfo, &L->job, &err), "pg_rewind");
	if (L->job.pid == 0)
		log_error("cannot run pg_rewind: %s", err.msg);
}

static void do_follow(struct loop *L, const char *leader, double now)
{
	struct pg_err err;

	/* All of a standby's files, not only primary_conninfo: a node that
	 * started without an upstream (a former primary after a switchover)
	 * gets its primary_slot_name here too, or it would stream without its
	 * slot while the slot on the leader holds WAL. Both are reloadable. */
	if (!write_pg_files(L, true, leader))
		return; /* leader_conninfo or the write said why */
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		if (strcmp(leader, HA_REMOTE) == 0)
			log_error("cannot repoint replication at %s:%d (standby_cluster): %s", L->view.standby_host,
			          L->view.standby_port, err.msg);
		else
			log_error("cannot repoint replication at %s: %s", leader, err.msg);
		return;
	}
	L->pg_reloaded_at = clk_mono();
	/* What the log said about the old upstream is no diagnosis of the new one. */
	L->pg_log_from = pg_log_size(L->cfg->postgresql.log_file);
	snprintf(L->lm.following, sizeof(L->lm.following), "%s", leader);
	remember_remote(L, leader);
	L->lm.not_streaming_since = now;
}

static void do_promote(struct loop *L)
{
	struct pg_err err;

	/* Synchronous mode: the sync key must name us as its leader before we
	 * accept a single write, or a standby it names could take over
	 * without what we acknowledged. */
	if (!sync_key_claim(L))
		return;
	if (!pg_query_promote(L->pg, &err)) {
		log_error("promotion request failed: %s", err.msg);
		return;
	}
	L->lm.promote_requested = true;
	L->lm.promote_sent_at = clk_mono();
	L->lm.promote_nudges = 0;
	L->lm.following[0] = '\0';
	set_fence(L);
}

/*
 * PG 15's startup process may take the promote request and then sleep out
 * wal_retrieve_retry_interval (5 s by default) before it ends recovery:
 * when the request comes right after its WAL receiver failed (the old
 * primary just died), it logs "received promote request", then "waiting
 * for WAL to become available" and sleeps, the request already consumed,
 * so nothing wakes it. Measured: 3 of 50 node-loss rounds took 5 s longer.
 * A SIGHUP wakes that sleep (its handler sets the recovery latch) and
 * changes nothing else: sent 0.3 s after the request while Postgres is
 * still in recovery, then every second, at most 5 times.
 */
void promote_nudge(struct loop *L)
{
	struct pg_err err;
	double since = clk_mono() - L->lm.promote_sent_at;

	if (!L->lm.promote_requested || L->postmaster.pid == 0 || (L->local.pg_ready && L->local.pg_primary) ||
	    L->lm.promote_nudges >= 5 || since < 0.3 + L->lm.promote_nudges)
		return;
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		log_warn("promotion still in progress after %.1fs; cannot wake Postgres' startup process: %s", since,
		         err.msg);
		L->lm.promote_nudges = 5;
		return;
	}
	if (L->lm.promote_nudges++ == 0)
		log_info("promotion still in progress after %.1fs: sending Postgres a SIGHUP to end its WAL retry "
		         "sleep (wal_retrieve_retry_interval), which can hold a promotion it already took",
		         since);
}

/* Returns true when the agent must exit (after SHUTDOWN or FATAL). */
bool execute(struct loop *L, const struct ha_action *a, double now)
{
	pooler_tick(L, now);
	switch (a->kind) {
	case HA_WAIT:
		break;
	case HA_FATAL:
		log_error("%s; stopping the agent", a->reason);
		stop_postgres(L, PG_STOP_FAST, "fatal condition");
		L->running_fatal = true;
		return true;
	case HA_RACE_INIT:
		do_race_init(L);
		break;
	case HA_BOOTSTRAP:
		do_bootstrap(L, a, now);
		break;
	case HA_CLONE:
		do_clone(L, a, false, now);
		break;
	case HA_REINIT: {
		struct pg_err err;
		struct ha_clone_plan plan;
		bool keep;

		clone_plan_build(L, &plan);
		keep = ha_clone_method_at(&plan, a->clone_method).keep_data;

		L->req.reinit = false;
		/* The stop and the removal block this loop for seconds (the
		 * removal ~3 s per 100 MB): the member key and the REST API say
		 * "stopped" first, or /replica would answer 200 and the key say
		 * "running" for a Postgres that is going away. */
		L->reinit_stopping = true;
		publish_api(L);
		publish_member(L);
		log_info("reinit: published state stopped; stopping Postgres and %s %s", keep ? "keeping" : "removing",
		         L->cfg->postgresql.data_dir);
		stop_postgres(L, PG_STOP_FAST, "reinit");
		if (!keep && !pg_datadir_remove(L->cfg->postgresql.data_dir, &err))
			log_error("cannot remove the data directory: %s", err.msg);
		L->reinit_stopping = false;
		reset_failure_state(L, "reinit");
		/* keep_data: the method runs over the old files now (rule 8
		 * only clones into an empty directory). */
		if (keep)
			do_clone(L, a, true, now);
		break;
	}
	case HA_START_REPLICA:
		start_postgres(L, false, a->leader, now);
		break;
	case HA_START_PRIMARY:
		start_postgres(L, true, NULL, now);
		break;
	case HA_FOLLOW:
		do_follow(L, a->leader, now);
		break;
	case HA_ACQUIRE:
		if (acquire_leader_key(L) && L->local.pg_ready && L->local.pg_primary)
			(void)ensure_roles(L);
		break;
	case HA_PROMOTE:
		do_promote(L);
		break;
	case HA_LEAD:
	case HA_CLEAR_SWITCHOVER: /* leading, and the switchover key is stale */
		publish_status(L);
		if (!L->view.paused)
			sync_manage(L);
		if (a->kind == HA_CLEAR_SWITCHOVER)
			clear_switchover(L, "it no longer applies to the current leader");
		break;
	case HA_REFUSE:
		/* The only request the core refuses: a reinit of the leader. */
		log_warn("%s", a->reason);
		L->req.reinit = false;
		break;
	case HA_DEMOTE:
		stop_postgres(L, PG_STOP_IMMEDIATE, a->reason);
		break;
	case HA_REWIND:
		do_rewind(L, a->leader, now);
		break;
	case HA_RELEASE:
		release_leader_key(L);
		break;
	case HA_RESTART: {
		/* An operator's request, judged above; or the core's own restart
		 * (a hot-standby parameter below the primary's), whose report
		 * must not repeat what an earlier request had pending. */
		bool requested = L->req.restart && L->req.restart_judged;

		if (!requested)
			L->restart.detail[0] = '\0';
		L->restart.old_pid = L->postmaster.pid;
		L->restart.running_id = L->req.restart_id;
		L->restart.by_core = !requested;
		L->restart.running = true;
		L->restart.began = now;
		L->restart.ready_at = 0;
		stop_postgres(L, PG_STOP_FAST, requested ? "restart requested" : a->reason);
		L->req.restart = false;
		L->req.restart_judged = false;
		L->pending_restart = false;
		break;
	}
	case HA_SWITCHOVER:
		do_switchover(L, a->leader);
		break;
	case HA_STANDBY_LEAD:
		/* The standby leader's replay position is the position its
		 * replicas and a failover inside this cluster count from. */
		publish_status(L);
		manage_slots(L, now);
		/* Not streaming: is it because the other site's timeline forked
		 * off before our position? Only the server's log says so. */
		if (!L->pgst.wal_receiver_streaming && !L->lm.remote_diverged) {
			struct pg_start_diag d;
			struct pg_err derr;

			if (pg_start_diagnose(L->cfg->postgresql.log_file, L->pg_log_from, &d, &derr) &&
			    d.kind == PG_START_FAIL_DIVERGED) {
				L->lm.remote_diverged = true;
				log_warn("standby leader: %s", d.fatal_line[0] ? d.fatal_line : "timeline diverged");
			}
		}
		standby_stuck_check(L, now);
		break;
	case HA_DEMOTE_CLUSTER: {
		struct pg_err err;

		/* A fast stop: the walsenders send everything up to the shutdown
		 * checkpoint before they exit, so the replicas, and the other
		 * site's standby leader streaming from us, get every write we
		 * acknowledged (the site switchover waits for exactly that). */
		if (L->local.pg_ready && !pg_query_checkpoint(L->pg, &err))
			log_warn("checkpoint before the demotion of the cluster failed: %s", err.msg);
		stop_postgres(L, PG_STOP_FAST, a->reason);
		break;
	}
	case HA_SHUTDOWN: {
		bool primary = L->local.pg_primary || L->lm.pg_started_primary;
		struct pg_err err;

		if (primary && L->local.pg_ready && !pg_query_checkpoint(L->pg, &err))
			log_warn("checkpoint before shutdown failed: %s", err.msg);
		stop_postgres(L, PG_STOP_FAST, "agent shutting down");
		if (is_leader(L))
			release_leader_key(L);
		/* Paused by a switchover of ours: nobody else would resume them
		 * before the new leader's sweep, if there is a new leader. */
		if (pooler_paused_count(&L->pool.set) > 0 &&
		    pooler_resume_all(&L->pool.set, "the agent that paused it is shutting down"))
			pooler_set_clear(&L->pool.set);
		return true;
	}
	}
	return false;
}
