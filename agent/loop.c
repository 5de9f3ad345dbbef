/*
 * loop.c - the agent's main loop (see loop.h).
 *
 * Each iteration:
 *   1. reap the postmaster and the running job (initdb, pg_basebackup,
 *      pg_rewind), if they ended;
 *   2. make sure we have a lease (the keeper thread keeps it alive);
 *   3. read every key of the cluster with one etcd range request;
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
#include "agent/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/callbacks.h"
#include "agent/dcs.h"
#include "agent/ha.h"
#include "agent/keeper.h"
#include "agent/log.h"
#include "agent/member_verify.h"
#include "agent/ops.h"
#include "agent/peer.h"
#include "agent/sdnotify.h"
#include "agent/slots.h"
#include "agent/watch.h"
#include "etcd/etcd.h"
#include "pg/pg_conf.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"
#include "pg/pg_query.h"

static volatile sig_atomic_t g_shutdown;
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

/* Seconds we wait before retrying a failed clone / bootstrap / start. */
#define RETRY_BACKOFF 3.0
/* How long a planned stop may take before the library escalates. */
#define STOP_TIMEOUT 30.0

struct loop {
	const struct baton_config *cfg;
	struct dcs_keys keys;
	char **endpoints;
	struct etcd_config ecfg;
	struct etcd_client *etcd;
	struct keeper *keeper;
	struct watch *watch;
	struct api_server *api;
	struct cb_runner *callbacks;
	char last_role[16];  /* role Postgres last came up in ("" = none yet), for on_role_change */
	int wake[2];

	struct dcs_settings settings; /* in force: the config key, or bootstrap.dcs */
	struct ha_cluster_view view;
	struct ha_local_view local;
	int64_t leader_mod_revision;
	int64_t granted_ttl;
	int64_t requested_ttl; /* what we asked etcd for (it may grant more) */

	struct pg_paths paths;
	char local_conninfo[PATH_MAX + 1024];
	struct pg_conn *pg;
	struct pg_state pgst;
	struct pg_controldata ctl;
	bool ctl_valid;
	bool ctl_stale;  /* pg_control may have changed since we read it */

	struct pg_child postmaster;
	bool pg_started_primary, pg_start_failed, pg_was_ready;
	/* Why the last start failed (the server's log), and how many in a row. */
	long pg_log_from;            /* size of postgresql.log_file when Postgres was last started */
	enum ha_start_failure start_failure;
	char start_error[160];
	int start_failures;
	/* Hot-standby parameters (pg_data.h): the primary's as this data
	 * directory last replayed them (pg_controldata), and what the running
	 * replica was started with / its files now say. */
	long hs_primary[PG_HS_PARAMS];
	bool hs_primary_valid;
	long hs_started[PG_HS_PARAMS];
	bool hs_started_valid;
	long hs_written[PG_HS_PARAMS];
	long hs_wanted[PG_HS_PARAMS]; /* ... and what the config asked for then */
	bool hs_written_valid;
	double hs_checked_at;
	/* Replay progress of a running replica. */
	uint64_t replay_seen;
	double replay_progress_at;
	/* The timeline this replica last streamed on. When its primary dies the
	 * WAL receiver goes away and pg_control's timelines lag behind, right
	 * when an election needs the truth; replay cannot go back in time, so
	 * the last streamed timeline stays true until Postgres restarts. */
	uint32_t streamed_tl;
	double pg_started_at;

	struct pg_child job;
	enum ha_job job_kind, job_failed;
	double job_failed_at;
	int rewind_failures;  /* in a row */
	char rewind_ok_for[HA_NAME_MAX]; /* rewound against this leader, Postgres not up since */
	char job_leader[HA_NAME_MAX];
	char rewound_for[HA_NAME_MAX];

	char following[HA_NAME_MAX];
	bool promote_requested;
	double not_streaming_since;

	/* operator requests (REST API), kept until carried out */
	bool req_restart, req_restart_pending_only, req_reinit;
	uint64_t req_restart_id;     /* the REST request to answer (0 = nobody waits) */
	int req_restart_min_version; /* only if server_version_num is lower (0 = any) */
	double req_restart_arrived;  /* monotonic; judged only on a read of etcd begun after it */
	bool req_restart_judged;     /* its conditions held on a fresh view: restart */
	char restart_detail[200];    /* what was pending, for the report */
	uint64_t restart_running_id; /* restarting: the request to report (0 none) */
	bool restart_running;
	pid_t restart_old_pid;
	double restart_began, restart_ready_at;
	/* a scheduled restart (POST /restart {"schedule"}), published in our member key */
	double sched_restart_at;     /* wall clock (0 = none) */
	bool sched_pending_only;
	int sched_min_version;
	char sched_role[16];
	bool switchover_stopped;     /* we stopped Postgres to hand over: start it again, also when paused */
	double read_started_at;      /* monotonic: when this loop's read of etcd began */
	double pg_reloaded_at;       /* monotonic: the last reload we sent Postgres */
	bool pending_restart;       /* a changed parameter waits for a restart */
	double pending_checked_at;
	char *applied_params;       /* the shared Postgres parameters last written, "name=value\n"... */
	int64_t switchover_mod_revision;
	int64_t sw_refused_rev;     /* the switchover key last refused (logged once) */
	double leader_absent_since;

	uint64_t leader_changes;
	char last_leader[HA_NAME_MAX];
	double failsafe_confirmed_at; /* leader: start of the last round every member confirmed */
	double failsafe_seen_at;      /* replica: when we last confirmed the leader's heartbeat */
	bool failsafe_logged;

	/* synchronous_standby_names as last written for Postgres (primary) */
	struct {
		size_t n;
		char names[HA_SYNC_MAX][HA_NAME_MAX];
		bool star;             /* '*': strict mode with nobody to wait for */
		int quorum;            /* quorum commit: ANY quorum (names); 0: FIRST n (names) */
		uint64_t since_lsn;    /* primary LSN once it was in force */
		bool since_known;
	} sync_pg;

	struct slots_memory slots_mem; /* when each unwanted replication slot was first seen */
	struct mv_cache mv;            /* members whose Postgres address their REST API confirmed */

	char *member_json;   /* last published */
	char *status_json;   /* last published (leader) */
	enum ha_action_kind last_kind;
	char last_reason[200];
	char last_warn[4096];
	struct dcs_read_cache read_cache; /* oversized keys not to download again */
	double last_etcd_err_log;
	bool running_fatal;
};

/* ---- small helpers ------------------------------------------------------ */

static bool is_leader(const struct loop *L)
{
	return L->view.etcd_ok && L->view.has_leader && strcmp(L->view.leader, L->cfg->name) == 0;
}

static void set_fence(struct loop *L)
{
	bool may_write = L->postmaster.pid > 0 &&
			 (L->pg_started_primary || L->promote_requested || (L->local.pg_ready && L->local.pg_primary));

	keeper_set_fence(L->keeper, may_write ? L->postmaster.pid : 0);
}

/* conninfo to reach `leader`'s Postgres: as the replication user (for
 * streaming and pg_basebackup) or as the superuser (for pg_rewind). */
static bool leader_conninfo(struct loop *L, const char *leader, bool replication, char *buf, size_t len)
{
	const struct baton_config *cfg = L->cfg;
	const struct ha_member *m = ha_find_member(&L->view, leader);
	char host[300], user[300], pass[PATH_MAX + 8], app[HA_NAME_MAX * 2 + 4], tls[3 * PATH_MAX + 120] = "";
	int n;

	if (!m || !m->host[0] || m->port <= 0) {
		log_warn("leader %s has not published its address in etcd yet", leader);
		return false;
	}
	/* sec F1: no password goes to an address the member itself has not
	 * confirmed through its REST API (agent/member_verify.h). */
	if (!mv_confirm(&L->mv, cfg, m, pg_now(),
			L->postmaster.pid && L->following[0] ? "keeps streaming from its current upstream"
							     : "keeps waiting and asks again"))
		return false;
	if (!pg_conninfo_quote(m->host, host, sizeof(host)) ||
	    !pg_conninfo_quote(replication ? cfg->postgresql.replication_username : cfg->postgresql.superuser_username,
			       user, sizeof(user)) ||
	    !pg_conninfo_quote(cfg->postgresql.pgpass, pass, sizeof(pass)) ||
	    !pg_conninfo_quote(cfg->name, app, sizeof(app)))
		return false;
	/* sec F1: with postgresql.tls.cafile, libpq verifies the member's
	 * certificate and host name before it sends anything, and refuses a
	 * password exchange without channel binding (cleartext, md5). The
	 * node's own certificate is named as the client certificate, so that
	 * libpq never reads ~/.postgresql/ (the agent's HOME may be anyone's). */
	if (cfg->postgresql.tls_cafile) {
		char ca[PATH_MAX + 8], crt[PATH_MAX + 8], key[PATH_MAX + 8];

		if (!pg_conninfo_quote(cfg->postgresql.tls_cafile, ca, sizeof(ca)) ||
		    !pg_conninfo_quote(cfg->postgresql.tls_certfile, crt, sizeof(crt)) ||
		    !pg_conninfo_quote(cfg->postgresql.tls_keyfile, key, sizeof(key)))
			return false;
		n = snprintf(tls, sizeof(tls),
			     " sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s channel_binding=require", ca, crt,
			     key);
		if (n < 0 || (size_t)n >= sizeof(tls))
			return false;
	}
	n = snprintf(buf, len, "host=%s port=%d user=%s passfile=%s application_name=%s%s connect_timeout=3%s", host,
		     m->port, user, pass, app, replication ? "" : " dbname=postgres", tls);
	return n > 0 && (size_t)n < len;
}

/* Parameters the agent needs whatever the config says. */
struct forced_param {
	const char *name;
	const char *why;
};

static const struct forced_param forced[] = {
	{"listen_addresses", "set from postgresql.listen"},
	{"port", "set from postgresql.listen"},
	{"unix_socket_directories", "set from postgresql.socket_dir"},
	{"wal_level", "replicas need at least 'replica'"},
	{"hot_standby", "replicas answer read-only queries and health checks"},
	{"wal_log_hints", "pg_rewind needs it"},
	{"cluster_name", "set to the member name"},
};

/* Defaults the config may override: enough WAL kept for a replica to catch
 * up after a failover or a short outage without a re-clone. */
static const struct pg_param default_params[] = {
	{"wal_keep_size", "128MB"},
	{"max_wal_senders", "10"},
	{"max_replication_slots", "10"},
};

/* synchronous_standby_names for the standbys in L->sync_pg:
 * FIRST n ("a", "b") waits for every one of them, ANY q ("a", "b") for q. */
static void sync_pg_render(const struct loop *L, char *buf, size_t len)
{
	size_t used;
	int k;

	if (L->sync_pg.n == 0) {
		snprintf(buf, len, "%s", L->sync_pg.star ? "*" : "");
		return;
	}
	if (L->sync_pg.quorum > 0)
		k = snprintf(buf, len, "ANY %d (", L->sync_pg.quorum);
	else
		k = snprintf(buf, len, "FIRST %zu (", L->sync_pg.n);
	used = k > 0 ? (size_t)k : 0;
	for (size_t i = 0; i < L->sync_pg.n && used < len; i++) {
		k = snprintf(buf + used, len - used, "%s\"%s\"", i ? ", " : "", L->sync_pg.names[i]);
		used += k > 0 ? (size_t)k : 0;
	}
	if (used < len)
		snprintf(buf + used, len - used, ")");
}

/* What Postgres should wait for when it (re)starts or is promoted: the
 * standbys our own sync key names, or nobody ('*' in strict mode). */
static void sync_pg_reset(struct loop *L)
{
	memset(&L->sync_pg, 0, sizeof(L->sync_pg));
	if (!L->settings.synchronous_mode)
		return;
	if (L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0 &&
	    !(ha_sync_quorum_mode(&L->view) && L->view.sync_quorum <= 0)) {
		for (size_t i = 0; i < L->view.n_sync && i < HA_SYNC_MAX; i++)
			snprintf(L->sync_pg.names[L->sync_pg.n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
		L->sync_pg.quorum = ha_sync_quorum_mode(&L->view) ? L->view.sync_quorum : 0;
	}
	L->sync_pg.star = L->sync_pg.n == 0 && L->settings.synchronous_mode_strict;
}

/*
 * Raises each hot-standby parameter in params[0..*n) (a later entry of the
 * same name wins) to at least the primary's value as this data directory
 * replayed it, by appending an entry; vals holds the appended values'
 * text. Records in L->hs_written what the file will say; logs a change.
 */
static void hs_floor(struct loop *L, struct pg_param *params, size_t *n, char vals[][24])
{
	size_t n0 = *n;
	long eff[PG_HS_PARAMS], want[PG_HS_PARAMS];

	for (int i = 0; i < PG_HS_PARAMS; i++) {
		const struct pg_hs_param *hp = &pg_hot_standby_params[i];
		long wanted = hp->pg_default;
		bool parsed = true;

		for (size_t j = 0; j < n0; j++)
			if (strcmp(params[j].name, hp->name) == 0) {
				char *end;

				errno = 0;
				wanted = strtol(params[j].value, &end, 10);
				parsed = errno == 0 && end != params[j].value && *end == '\0';
			}
		eff[i] = want[i] = wanted;
		if (parsed && L->hs_primary_valid && L->hs_primary[i] > wanted) {
			eff[i] = L->hs_primary[i];
			snprintf(vals[i], sizeof(vals[0]), "%ld", eff[i]);
			params[(*n)++] = (struct pg_param){hp->name, vals[i]};
		}
		if (eff[i] != wanted &&
		    (!L->hs_written_valid || L->hs_written[i] != eff[i] || L->hs_wanted[i] != wanted))
			log_info("%s raised to %ld from %ld: the primary's value as this replica replayed it "
				 "(pg_controldata); the lower value applies once the primary runs with it and this "
				 "replica has replayed that (then a restart of this replica applies it)",
				 hp->name, eff[i], wanted);
		else if (L->hs_written_valid && L->hs_written[i] > eff[i])
			log_info("%s may now drop to %ld (the primary's value as replayed is %ld): pending until this "
				 "replica restarts",
				 hp->name, eff[i], L->hs_primary_valid ? L->hs_primary[i] : -1L);
	}
	memcpy(L->hs_written, eff, sizeof(eff));
	memcpy(L->hs_wanted, want, sizeof(want));
	L->hs_written_valid = true;
}

/* Writes postgresql.conf, pg_hba.conf, the recovery file and standby.signal
 * for a start as primary (upstream NULL) or as a replica of upstream ("" = none). */
static bool write_pg_files(struct loop *L, bool standby, const char *upstream)
{
	const struct baton_config *cfg = L->cfg;
	size_t n_user = L->settings.n_pg_params + cfg->postgresql.n_params;
	size_t n_forced = sizeof(forced) / sizeof(forced[0]);
	size_t n_defaults = sizeof(default_params) / sizeof(default_params[0]);
	struct pg_param *params = calloc(n_defaults + n_user + n_forced + 2 + PG_HS_PARAMS + 3, sizeof(*params));
	char hs_vals[PG_HS_PARAMS][24];
	char ssn[HA_SYNC_MAX * (HA_NAME_MAX + 4) + 32], slot[64];
	const char **hba = calloc(cfg->postgresql.n_pg_hba + 1, sizeof(*hba));
	char port[16], local_line[200], conninfo[2048] = "";
	const char *forced_values[sizeof(forced) / sizeof(forced[0])];
	struct pg_err err;
	size_t n = 0;
	bool ok = false;

	if (!params || !hba) {
		log_error("out of memory writing Postgres configuration");
		goto cleanup;
	}
	snprintf(port, sizeof(port), "%d", cfg->postgresql.listen_port);
	forced_values[0] = cfg->postgresql.listen_host;
	forced_values[1] = port;
	forced_values[2] = cfg->postgresql.socket_dir;
	forced_values[3] = "replica";
	forced_values[4] = "on";
	forced_values[5] = "on";
	forced_values[6] = cfg->name;

	for (size_t i = 0; i < n_defaults; i++)
		params[n++] = default_params[i]; /* a later entry of the same name wins */
	for (size_t i = 0; i < L->settings.n_pg_params; i++)
		params[n++] = (struct pg_param){L->settings.pg_params[i].name, L->settings.pg_params[i].value};
	for (size_t i = 0; i < cfg->postgresql.n_params; i++)
		params[n++] = (struct pg_param){cfg->postgresql.params[i].name, cfg->postgresql.params[i].value};
	/* A replica streams through its own slot on the primary (slots.h). */
	if (standby && upstream && upstream[0] && slots_member_slot(cfg->name, slot, sizeof(slot))) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(params[i].name, "primary_slot_name") == 0)
				log_warn("postgresql parameter primary_slot_name = '%s' ignored: each replica streams "
					 "through its own slot, %s",
					 params[i].value, slot);
		params[n++] = (struct pg_param){"primary_slot_name", slot};
	}
	/* A replica replays only with hot-standby parameters at least the
	 * primary's (pg_controldata); lowering one in the config must not stop
	 * it. The lower value applies once pg_controldata shows it. */
	if (standby)
		hs_floor(L, params, &n, hs_vals);
	else
		L->hs_written_valid = false;
	/* Synchronous mode: the agent owns synchronous_standby_names. */
	if (L->settings.synchronous_mode || L->sync_pg.n > 0 || L->sync_pg.star) {
		sync_pg_render(L, ssn, sizeof(ssn));
		for (size_t i = 0; i < n; i++)
			if (strcmp(params[i].name, "synchronous_standby_names") == 0 && strcmp(params[i].value, ssn) != 0)
				log_warn("postgresql parameter synchronous_standby_names = '%s' ignored: synchronous mode "
					 "manages it",
					 params[i].value);
		params[n++] = (struct pg_param){"synchronous_standby_names", ssn};
	}
	for (size_t f = 0; f < n_forced; f++) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(params[i].name, forced[f].name) != 0 || strcmp(params[i].value, forced_values[f]) == 0)
				continue;
			if (strcmp(forced[f].name, "wal_level") == 0 && strcmp(params[i].value, "logical") == 0) {
				forced_values[f] = "logical"; /* stronger than needed: keep it */
				continue;
			}
			log_warn("postgresql parameter %s = '%s' overridden with '%s' (%s)", params[i].name, params[i].value,
				 forced_values[f], forced[f].why);
		}
		params[n++] = (struct pg_param){forced[f].name, forced_values[f]};
	}
	/* sec F1: postgresql.tls.* — Postgres serves TLS to the other members
	 * (last, so that no parameter from etcd or the file turns it off). */
	if (cfg->postgresql.tls_certfile) {
		params[n++] = (struct pg_param){"ssl", "on"};
		params[n++] = (struct pg_param){"ssl_cert_file", cfg->postgresql.tls_certfile};
		params[n++] = (struct pg_param){"ssl_key_file", cfg->postgresql.tls_keyfile};
	}
	if (!pg_conf_write(cfg->postgresql.data_dir, params, n, &err))
		goto fail;

	/* The agent's own connections come over the unix socket as the superuser. */
	snprintf(local_line, sizeof(local_line), "local all %s scram-sha-256", cfg->postgresql.superuser_username);
	hba[0] = local_line;
	for (size_t i = 0; i < cfg->postgresql.n_pg_hba; i++)
		hba[i + 1] = cfg->postgresql.pg_hba[i];
	if (!pg_conf_write_hba(cfg->postgresql.data_dir, hba, cfg->postgresql.n_pg_hba + 1, &err))
		goto fail;

	if (standby && upstream && upstream[0] && !leader_conninfo(L, upstream, true, conninfo, sizeof(conninfo)))
		goto cleanup;
	if (!pg_conf_write_recovery(cfg->postgresql.data_dir, conninfo, &err) ||
	    !pg_conf_set_standby(cfg->postgresql.data_dir, standby, &err))
		goto fail;
	ok = true;
	goto cleanup;
fail:
	log_error("cannot write Postgres configuration: %s", err.msg);
cleanup:
	free(params);
	free(hba);
	return ok;
}

static bool write_pgpass(const struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	const char *users[2] = {cfg->postgresql.superuser_username, cfg->postgresql.replication_username};
	const char *pws[2] = {cfg->postgresql.superuser_password, cfg->postgresql.replication_password};
	struct pg_err err;

	if (!pg_conf_write_pgpass(cfg->postgresql.pgpass, users, pws, 2, &err)) {
		log_error("cannot write the password file: %s", err.msg);
		return false;
	}
	return true;
}

/* ---- etcd writes -------------------------------------------------------- */

/* A txn without a failure branch; *revision (may be NULL) gets the
 * revision it ran at, which is the mod revision of what it put. */
static bool txn_rev(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops,
		    size_t n_ops, bool *won, int64_t *revision, const char *what)
{
	struct etcd_txn_result r;
	struct etcd_error err;

	memset(&r, 0, sizeof(r));
	if (etcd_txn(L->etcd, cmp, n_cmp, ops, n_ops, NULL, 0, &r, &err) != ETCD_OK) {
		log_warn("%s: etcd transaction failed: %s", what, err.message);
		return false;
	}
	*won = r.succeeded;
	if (revision)
		*revision = r.revision;
	etcd_txn_result_free(&r);
	return true;
}

static bool txn_simple(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops,
		       size_t n_ops, bool *won, const char *what)
{
	return txn_rev(L, cmp, n_cmp, ops, n_ops, won, NULL, what);
}

/* Deletes the leader key if it still holds our name. */
static void release_leader_key(struct loop *L)
{
	struct etcd_compare cmp = {.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL,
				   .value = L->cfg->name};
	struct etcd_op del = {.kind = ETCD_OP_DELETE, .key = L->keys.leader};
	bool won = false;

	if (txn_simple(L, &cmp, 1, &del, 1, &won, "release leader key") && won)
		log_info("released the leader key");
}

/* Creates the leader key on our lease, or moves our name from an old lease. */
static bool acquire_leader_key(struct loop *L)
{
	struct etcd_compare cmp[2];
	struct etcd_op put = {.kind = ETCD_OP_PUT, .key = L->keys.leader, .value = L->cfg->name,
			      .lease = L->local.lease_id};
	size_t n_cmp;
	bool won = false;

	if (L->local.lease_id == 0)
		return false;
	memset(cmp, 0, sizeof(cmp));
	if (!L->view.has_leader) {
		cmp[0] = (struct etcd_compare){.key = L->keys.leader, .target = ETCD_CMP_CREATE,
					       .result = ETCD_CMP_EQUAL, .number = 0};
		n_cmp = 1;
	} else {
		cmp[0] = (struct etcd_compare){.key = L->keys.leader, .target = ETCD_CMP_VALUE,
					       .result = ETCD_CMP_EQUAL, .value = L->cfg->name};
		cmp[1] = (struct etcd_compare){.key = L->keys.leader, .target = ETCD_CMP_MOD,
					       .result = ETCD_CMP_EQUAL, .number = L->leader_mod_revision};
		n_cmp = 2;
	}
	if (!txn_simple(L, cmp, n_cmp, &put, 1, &won, "acquire leader key"))
		return false;
	if (!won) {
		log_info("lost the race for the leader key");
		return false;
	}
	log_info("acquired the leader key");
	L->view.has_leader = true;
	snprintf(L->view.leader, sizeof(L->view.leader), "%s", L->cfg->name);
	L->view.leader_lease = L->local.lease_id;
	return true;
}

/* ---- replication slots ----------------------------------------------------- */

/* One slot per other member on every node, permanent ones on the primary
 * (slots.h). Runs while Postgres is up and nothing else is going on. */
static void manage_slots(struct loop *L, double now)
{
	struct pg_slot existing[SLOTS_MAX];
	struct slots_input in;
	struct slots_plan plan;
	struct pg_err err;
	size_t n = 0;

	if (!L->view.etcd_ok || L->view.paused || !L->local.pg_ready || L->postmaster.pid == 0 ||
	    L->promote_requested || L->job.pid != 0)
		return;
	if (!pg_query_slots(L->pg, existing, SLOTS_MAX, &n, &err)) {
		log_warn("cannot list replication slots: %s", err.msg);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.self = L->cfg->name;
	in.primary = L->local.pg_primary;
	in.replay_lsn = L->pgst.replay_lsn;
	in.view = &L->view;
	in.permanent = L->settings.slots;
	in.n_permanent = L->settings.n_slots;
	in.existing = existing;
	in.n_existing = n;
	in.now = now;
	/* sec F5: slots only for members whose REST API confirmed their key,
	 * asking at most one member not yet confirmed per loop. */
	{
		bool ok[HA_MAX_MEMBERS];
		int asks = 1;

		for (size_t i = 0; i < L->view.n_members && i < HA_MAX_MEMBERS; i++) {
			const struct ha_member *m = &L->view.members[i];

			ok[i] = mv_confirmed(&L->mv, m, now);
			if (!ok[i] && strcmp(m->name, L->cfg->name) != 0 && !mv_cache_find(&L->mv, m, now) &&
			    asks-- > 0)
				ok[i] = mv_confirm(&L->mv, L->cfg, m, now,
						   slots_member_has_slot(m->name, existing, n)
							   ? "its replication slot here is dropped if it stays so for 30 minutes"
							   : "creates no replication slot for it");
		}
		in.member_ok = ok;
		slots_plan(&in, &L->slots_mem, &plan);
	}
	slots_apply(L->pg, &plan);
}

/* ---- synchronous mode ------------------------------------------------------ */

/* Writes the sync key {us, names}, only while the leader key is ours on our
 * lease: a deposed leader waking up late must not overwrite its
 * successor's record. */
static bool sync_key_write(struct loop *L, char names[][HA_NAME_MAX], size_t n, int quorum, const char *why)
{
	struct etcd_compare cmp[2] = {
		{.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name},
		{.key = L->keys.leader, .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL, .number = L->local.lease_id},
	};
	struct etcd_op put = {.kind = ETCD_OP_PUT, .key = L->keys.sync};
	char *json = dcs_sync_json(L->cfg->name, names, n, quorum);
	bool won = false;

	if (!json || L->local.lease_id == 0) {
		free(json);
		return false;
	}
	put.value = json;
	if (!txn_simple(L, cmp, 2, &put, 1, &won, "write sync key") || !won) {
		if (!won)
			log_warn("not writing the sync key: the leader key is not ours on our lease");
		free(json);
		return false;
	}
	free(json);
	L->view.has_sync = true;
	snprintf(L->view.sync_leader, sizeof(L->view.sync_leader), "%s", L->cfg->name);
	L->view.n_sync = 0;
	L->view.sync_quorum = quorum;
	for (size_t i = 0; i < n && i < HA_SYNC_MAX; i++)
		snprintf(L->view.sync_standbys[L->view.n_sync++], HA_NAME_MAX, "%s", names[i]);
	log_info("sync key: %s", why);
	return true;
}

/* Before Postgres may accept writes as primary: the sync key must be ours
 * and name only standbys Postgres will wait for. */
static bool sync_key_claim(struct loop *L)
{
	char keep[HA_SYNC_MAX][HA_NAME_MAX];
	size_t n = 0;
	bool ours;

	if (!L->settings.synchronous_mode)
		return true;
	ours = L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0;
	if (ha_sync_quorum_mode(&L->view)) {
		/* Quorum commit: the key's promise must not exceed what Postgres
		 * will wait for; else promise nothing until the plan rebuilds it. */
		bool within = ours && L->view.sync_quorum <= L->sync_pg.quorum;

		for (size_t i = 0; within && i < L->sync_pg.n; i++) {
			bool in_key = false;

			for (size_t j = 0; j < L->view.n_sync; j++)
				in_key |= strcmp(L->view.sync_standbys[j], L->sync_pg.names[i]) == 0;
			within = in_key;
		}
		if (within || (ours && L->view.sync_quorum == 0))
			return true;
		if (!sync_key_write(L, keep, 0, 0, "taking it over before accepting writes")) {
			log_warn("synchronous mode: cannot claim the sync key; not accepting writes yet");
			return false;
		}
		return true;
	}
	for (size_t i = 0; ours && i < L->view.n_sync && i < HA_SYNC_MAX; i++)
		for (size_t j = 0; j < L->sync_pg.n; j++)
			if (strcmp(L->view.sync_standbys[i], L->sync_pg.names[j]) == 0)
				snprintf(keep[n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
	if (ours && n == L->view.n_sync)
		return true;
	if (!sync_key_write(L, keep, n, 0, "taking it over before accepting writes")) {
		log_warn("synchronous mode: cannot claim the sync key; not accepting writes yet");
		return false;
	}
	return true;
}

/* Applies synchronous_standby_names from L->sync_pg and waits (briefly) until
 * our session sees it; then records the LSN from which Postgres waits. */
static bool sync_pg_apply(struct loop *L)
{
	char want[HA_SYNC_MAX * (HA_NAME_MAX + 4) + 32], have[sizeof(want)];
	struct pg_err err;

	L->sync_pg.since_known = false;
	if (!write_pg_files(L, false, NULL))
		return false;
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		log_error("reload for synchronous_standby_names failed: %s", err.msg);
		return false;
	}
	sync_pg_render(L, want, sizeof(want));
	for (int i = 0; i < 40; i++) {
		if (pg_query_scalar(L->pg, "SHOW synchronous_standby_names", have, sizeof(have), &err) &&
		    strcmp(have, want) == 0) {
			if (pg_query_scalar(L->pg, "SELECT pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn", have,
					    sizeof(have), &err)) {
				L->sync_pg.since_lsn = strtoull(have, NULL, 10);
				L->sync_pg.since_known = true;
			}
			return L->sync_pg.since_known;
		}
		usleep(25000);
	}
	log_warn("Postgres does not show synchronous_standby_names = '%s' yet", want);
	return false;
}

/* The leader's part of synchronous mode, once per loop: step towards the
 * wanted synchronous standbys in the safe order (ha_sync_plan). */
static void sync_manage(struct loop *L)
{
	struct ha_sync_input in;

	if (!L->local.pg_ready || !L->local.pg_primary || L->postmaster.pid == 0)
		return;
	if (!L->settings.synchronous_mode && L->sync_pg.n == 0 && !L->sync_pg.star &&
	    !(L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0 && L->view.n_sync > 0))
		return;
	if (!L->sync_pg.since_known) {
		/* Just started or promoted: Postgres has waited for sync_pg since
		 * at least now. */
		L->sync_pg.since_lsn = L->pgst.current_lsn;
		L->sync_pg.since_known = true;
	}
	for (int step = 0; step < 4; step++) {
		struct ha_sync_step st;

		memset(&in, 0, sizeof(in));
		for (int i = 0; i < L->pgst.n_replicas && in.n < HA_MAX_MEMBERS; i++) {
			const struct pg_replica_info *r = &L->pgst.replicas[i];
			struct ha_sync_standby *sb = &in.standbys[in.n++];

			snprintf(sb->name, sizeof(sb->name), "%s", r->application_name);
			sb->streaming = strcmp(r->state, "streaming") == 0;
			sb->sync = strcmp(r->sync_state, "sync") == 0 || strcmp(r->sync_state, "quorum") == 0;
			sb->flush_lsn = r->flush_lsn;
		}
		in.n_pg = L->sync_pg.n;
		memcpy(in.pg, L->sync_pg.names, sizeof(in.pg));
		in.pg_star = L->sync_pg.star;
		in.pg_quorum = L->sync_pg.quorum;
		in.pg_since_lsn = L->sync_pg.since_lsn;

		st = ha_sync_plan(&L->view, L->cfg->name, &in);
		if (st.kind == HA_SYNC_NONE)
			return;
		if (st.kind == HA_SYNC_SET_KEY) {
			if (!sync_key_write(L, st.names, st.n, st.quorum, st.reason))
				return;
			continue;
		}
		/* HA_SYNC_SET_PG; pg_stat_replication is stale afterwards: the
		 * next loop goes on. */
		memset(L->sync_pg.names, 0, sizeof(L->sync_pg.names));
		L->sync_pg.n = st.n;
		for (size_t i = 0; i < st.n; i++)
			snprintf(L->sync_pg.names[i], HA_NAME_MAX, "%s", st.names[i]);
		L->sync_pg.star = st.star;
		L->sync_pg.quorum = st.n > 0 ? st.quorum : 0;
		if (sync_pg_apply(L))
			log_info("synchronous replication: %s", st.reason);
		return;
	}
}

static void append_history(struct loop *L, const char *reason)
{
	struct etcd_range_result r;
	struct etcd_error err;
	const char *old = NULL;
	char *json;

	memset(&r, 0, sizeof(r));
	if (etcd_get(L->etcd, L->keys.history, &r, &err) == ETCD_OK && r.n_kvs == 1)
		old = r.kvs[0].value;
	json = dcs_history_append(old, L->pgst.timeline, L->pgst.current_lsn, reason, L->cfg->name, time(NULL));
	if (json && etcd_put(L->etcd, L->keys.history, json, 0, NULL, &err) != ETCD_OK)
		log_warn("cannot record the leader change in history: %s", err.message);
	free(json);
	etcd_range_result_free(&r);
}

static void publish_status(struct loop *L)
{
	struct etcd_error err;
	char *json = dcs_status_json(L->pgst.current_lsn, L->pgst.timeline);

	if (!json)
		return;
	if (L->status_json && strcmp(json, L->status_json) == 0) {
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
}

static const char *member_state(const struct loop *L)
{
	switch (L->job.pid ? L->job_kind : HA_JOB_NONE) {
	case HA_JOB_BOOTSTRAP: return "bootstrapping";
	case HA_JOB_CLONE: return "cloning";
	case HA_JOB_REWIND: return "rewinding";
	case HA_JOB_NONE: break;
	}
	if (L->promote_requested)
		return "promoting";
	if (L->postmaster.pid == 0)
		return L->pg_start_failed ? "start failed" : "stopped";
	if (L->local.pg_ready && !L->local.pg_primary)
		return ha_replay_state(ha_replay_check(&L->view, &L->local, pg_now(), NULL, 0));
	return L->local.pg_ready ? "running" : "starting";
}

static const char *member_role(const struct loop *L)
{
	if (L->local.pg_ready)
		return L->local.pg_primary ? "primary" : "replica";
	return L->local.datadir == HA_DATADIR_EMPTY ? "uninitialized" : "stopped";
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
	dcs_format_utc(L->sched_restart_at, t, sizeof(t));
	o = json_pack("{s:s, s:b}", "at", t, "restart_pending", (int)L->sched_pending_only);
	if (o && L->sched_min_version)
		json_object_set_new(o, "postgres_version", json_integer(L->sched_min_version));
	if (o && L->sched_role[0])
		json_object_set_new(o, "role", json_string(L->sched_role));
	if (o && json_object_set_new(doc, "scheduled_restart", o) == 0)
		out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return out;
}

static void publish_member(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_member me;
	struct etcd_error err;
	char key[400], *json, *base;

	if (L->local.lease_id == 0 || !dcs_member_key(&L->keys, cfg->name, key, sizeof(key)))
		return;
	memset(&me, 0, sizeof(me));
	snprintf(me.name, sizeof(me.name), "%s", cfg->name);
	snprintf(me.role, sizeof(me.role), "%s", member_role(L));
	snprintf(me.state, sizeof(me.state), "%s", member_state(L));
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
	me.failover_priority = (int)cfg->tags.failover_priority;
	me.pending_restart = L->pending_restart;
	json = dcs_member_json(&me);
	if (!json)
		return;
	/* What etcd should hold, without the parts the member parser does not
	 * keep (the scheduled restart): compared with what it does hold. */
	base = json;
	json = L->sched_restart_at > 0 ? add_scheduled_restart(L, strdup(base)) : strdup(base);
	if (!json) {
		free(base);
		return;
	}
	/* Unchanged, and etcd still holds it as written: nothing to do. A key
	 * deleted or overwritten by someone else is written again. */
	if (L->member_json && strcmp(json, L->member_json) == 0) {
		const struct ha_member *seen = ha_find_member(&L->view, cfg->name);
		char *seen_json = seen ? dcs_member_json(seen) : NULL;
		bool intact = !L->view.etcd_ok || (seen_json && strcmp(seen_json, base) == 0);

		free(seen_json);
		if (intact) {
			free(base);
			free(json);
			return;
		}
		log_warn("our member key %s is missing or altered in etcd: writing it again", key);
	}
	free(base);
	if (etcd_put(L->etcd, key, json, L->local.lease_id, NULL, &err) != ETCD_OK) {
		log_warn("cannot publish our member key: %s", err.message);
		free(json);
		return;
	}
	free(L->member_json);
	L->member_json = json;
}

static void publish_metrics(struct loop *L)
{
	struct api_metrics m;
	struct etcd_stats a, b;
	int64_t id;
	double sent;

	memset(&m, 0, sizeof(m));
	keeper_counts(L->keeper, &m.lease_renewals, &m.lease_renewal_failures);
	keeper_get(L->keeper, &id, &sent);
	m.since_last_renewal = id && sent > 0 ? pg_now() - sent : -1;
	m.worst_renewal_latency = keeper_worst_latency(L->keeper);
	m.worst_renewal_gap = keeper_worst_gap(L->keeper);
	m.leader_changes = L->leader_changes;
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
	api_publish_metrics(L->api, &m);
}

static void publish_api(struct loop *L)
{
	struct api_status st;
	double deadline = ha_lease_deadline(&L->view, &L->local);

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", L->cfg->name);
	snprintf(st.scope, sizeof(st.scope), "%s", L->cfg->scope);
	snprintf(st.role, sizeof(st.role), "%s", member_role(L));
	snprintf(st.state, sizeof(st.state), "%s", member_state(L));
	snprintf(st.leader, sizeof(st.leader), "%s", L->view.has_leader ? L->view.leader : "");
	st.is_leader = is_leader(L);
	st.pg_running = L->local.pg_ready;
	st.timeline = L->local.pg_timeline;
	st.lsn = L->local.pg_lsn;
	st.receive_lsn = L->pgst.receive_lsn;
	st.replay_lsn = L->pgst.replay_lsn;
	st.nofailover = L->cfg->tags.nofailover;
	st.sync_standby = L->view.synchronous_mode && L->view.has_sync &&
			  strcmp(L->view.sync_leader, L->cfg->name) != 0 && ha_sync_allows(&L->view, L->cfg->name);
	st.lease_ttl_left = st.is_leader && deadline > 0 ? deadline - pg_now() : 0;
	st.paused = L->view.paused;
	st.pending_restart = L->pending_restart;
	st.loop_wait = L->settings.loop_wait;
	st.etcd_ok = L->view.etcd_ok;
	st.restart_scheduled_at = L->sched_restart_at;
	snprintf(st.pg_host, sizeof(st.pg_host), "%s", L->cfg->postgresql.connect_host);
	st.pg_port = L->cfg->postgresql.connect_port;
	st.lag = -1;
	if (L->local.pg_ready && L->local.pg_primary)
		st.lag = 0;
	else if (L->local.pg_ready && L->view.leader_lsn > 0)
		st.lag = L->view.leader_lsn > L->local.pg_replay_lsn ? (int64_t)(L->view.leader_lsn - L->local.pg_replay_lsn)
								      : 0;
	api_publish(L->api, &st);
	publish_metrics(L);
}

/* ---- gathering the views ------------------------------------------------ */

static void publish_member(struct loop *L);

/*
 * The ttl in the config key changed: a lease keeps the TTL it was granted
 * with, so take a new one and move our keys onto it (the leader key first,
 * guarded by our name), then drop the old lease. The deadline then counts
 * from the new grant, and other members wait the new ttl after our death.
 */
static void rotate_lease(struct loop *L, int64_t old_id)
{
	int64_t id, granted = 0;
	double t0 = pg_now();
	struct etcd_error err;

	if (etcd_lease_grant(L->etcd, (int64_t)ceil(L->settings.ttl), &id, &granted, &err) != ETCD_OK) {
		log_warn("ttl changed, but no new lease from etcd: %s; keeping the old one", err.message);
		return;
	}
	if (is_leader(L)) {
		struct etcd_compare cmp = {.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL,
					   .value = L->cfg->name};
		struct etcd_op put = {.kind = ETCD_OP_PUT, .key = L->keys.leader, .value = L->cfg->name, .lease = id};
		bool won = false;

		if (!txn_simple(L, &cmp, 1, &put, 1, &won, "move the leader key to the new lease") || !won) {
			/* Keep the old lease (and its deadline): revoke the new one. */
			if (etcd_lease_revoke(L->etcd, id, &err) != ETCD_OK)
				log_warn("cannot revoke the unused lease: %s", err.message);
			return;
		}
	}
	log_info("ttl is now %llds: moved our keys from lease %llx to %llx", (long long)granted,
		 (unsigned long long)old_id, (unsigned long long)id);
	L->granted_ttl = granted;
	L->requested_ttl = (int64_t)ceil(L->settings.ttl);
	keeper_set_lease(L->keeper, id, t0);
	L->local.lease_id = id;
	L->local.lease_sent = t0;
	free(L->member_json);
	L->member_json = NULL;
	publish_member(L); /* re-attached to the new lease before the old one goes */
	if (etcd_lease_revoke(L->etcd, old_id, &err) != ETCD_OK)
		log_warn("cannot revoke our old lease: %s", err.message);
}

/* The lease: take a new one when the keeper reports it lost, or when the
 * ttl changed. */
static void ensure_lease(struct loop *L)
{
	int64_t id, granted = 0;
	double sent, t0;
	struct etcd_error err;

	keeper_get(L->keeper, &id, &sent);
	if (id != 0 && L->requested_ttl != (int64_t)ceil(L->settings.ttl)) {
		rotate_lease(L, id);
		return;
	}
	if (id != 0)
		return;
	/* Lost while Postgres may write: demote first (this loop), lease later. */
	if (L->postmaster.pid > 0 && (L->pg_started_primary || L->local.pg_primary))
		return;
	t0 = pg_now();
	if (etcd_lease_grant(L->etcd, (int64_t)ceil(L->settings.ttl), &id, &granted, &err) != ETCD_OK) {
		if (t0 - L->last_etcd_err_log >= 5.0) {
			log_warn("cannot get a lease from etcd: %s", err.message);
			L->last_etcd_err_log = t0;
		}
		return;
	}
	L->granted_ttl = granted;
	L->requested_ttl = (int64_t)ceil(L->settings.ttl);
	keeper_set_lease(L->keeper, id, t0);
	free(L->member_json);
	L->member_json = NULL; /* the member key must be written on the new lease */
	log_info("got lease %llx (ttl %llds) from etcd", (unsigned long long)id, (long long)granted);
}

static void clear_switchover(struct loop *L, const char *why);

static void read_cluster(struct loop *L)
{
	struct etcd_range_result r;
	struct etcd_error err;
	struct dcs_settings fresh;
	struct ha_cluster_view v;
	char warn[4096] = "", read_warn[2048] = "";
	double now = pg_now();

	memset(&r, 0, sizeof(r));
	if (dcs_read_cluster(L->etcd, &L->keys, &L->read_cache, &r, read_warn, sizeof(read_warn), &err) != ETCD_OK) {
		if (L->view.etcd_ok || now - L->last_etcd_err_log >= 5.0) {
			log_warn("cannot read the cluster state from etcd: %s", err.message);
			L->last_etcd_err_log = now;
		}
		L->view.etcd_ok = false; /* the rest of the old view stays for the timing */
		return;
	}
	memset(&v, 0, sizeof(v));
	memset(&fresh, 0, sizeof(fresh));
	dcs_parse_cluster(&L->keys, &r, &L->settings, &v, &fresh, warn, sizeof(warn));
	/* Code-running parameters only from this node's file (or its allow list). */
	dcs_settings_drop_code_params(&fresh, L->cfg->postgresql.allow_from_dcs, L->cfg->postgresql.n_allow_from_dcs,
				      warn, sizeof(warn));
	snprintf(warn + strlen(warn), sizeof(warn) - strlen(warn), "%s", read_warn);
	if (warn[0] && strcmp(warn, L->last_warn) != 0)
		log_warn("unreadable keys in etcd (ignored): %s", warn);
	snprintf(L->last_warn, sizeof(L->last_warn), "%s", warn);
	L->leader_mod_revision = 0;
	L->switchover_mod_revision = 0;
	for (size_t i = 0; i < r.n_kvs; i++) {
		if (strcmp(r.kvs[i].key, L->keys.leader) == 0)
			L->leader_mod_revision = r.kvs[i].mod_revision;
		else if (strncmp(r.kvs[i].key, L->keys.prefix, strlen(L->keys.prefix)) == 0 &&
			 strcmp(r.kvs[i].key + strlen(L->keys.prefix), "switchover") == 0)
			L->switchover_mod_revision = r.kvs[i].mod_revision;
	}
	etcd_range_result_free(&r);

	if (fresh.ttl != L->settings.ttl || fresh.loop_wait != L->settings.loop_wait) {
		double interval = fmin(fresh.loop_wait, fresh.ttl / 4);
		log_info("timing in force: ttl %.1fs, loop_wait %.1fs, retry_timeout %.1fs", fresh.ttl, fresh.loop_wait,
			 fresh.retry_timeout);
		keeper_set_timing(L->keeper, interval, fmin(fresh.ttl, L->granted_ttl > 0 ? (double)L->granted_ttl
											    : fresh.ttl));
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
	/* sec F7: a switchover key written straight into etcd is held to the
	 * horizon REST and batonctl enforce: ignored, and the leader clears it. */
	if (v.has_switchover && !ops_check_horizon((time_t)v.sw_scheduled_at, time(NULL), "switchover", warn,
						   sizeof(warn))) {
		if (L->switchover_mod_revision != L->sw_refused_rev)
			log_warn("switchover key %sswitchover refused: %s; %s", L->keys.prefix, warn,
				 is_leader(L) ? "clearing it" : "ignoring it (the leader clears it)");
		L->sw_refused_rev = L->switchover_mod_revision;
		L->view.has_switchover = false;
		if (is_leader(L))
			clear_switchover(L, "refused: scheduled beyond the horizon");
	}
}

static void switchover_key(const struct loop *L, char *buf, size_t len)
{
	snprintf(buf, len, "%sswitchover", L->keys.prefix);
}

/* Deletes the switchover key if it is still the one we read this loop. */
static void clear_switchover(struct loop *L, const char *why)
{
	char key[400];
	struct etcd_compare cmp = {.target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL};
	struct etcd_op del = {.kind = ETCD_OP_DELETE};
	bool won = false;

	if (L->switchover_mod_revision == 0)
		return;
	switchover_key(L, key, sizeof(key));
	cmp.key = key;
	cmp.number = L->switchover_mod_revision;
	del.key = key;
	if (txn_simple(L, &cmp, 1, &del, 1, &won, "clear the switchover key") && won)
		log_info("switchover request cleared: %s", why);
	L->switchover_mod_revision = 0;
	L->view.has_switchover = false;
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
static void read_cluster_in_time(struct loop *L)
{
	bool may_write = L->postmaster.pid > 0 && (L->pg_started_primary || L->local.pg_primary);
	double deadline = ha_lease_deadline(&L->view, &L->local), left;

	if (!may_write || deadline <= 0) {
		read_cluster(L);
		return;
	}
	keeper_get(L->keeper, &L->local.lease_id, &L->local.lease_sent);
	deadline = ha_lease_deadline(&L->view, &L->local);
	left = deadline - pg_now();
	if (left <= 0.05) {
		L->view.etcd_ok = false; /* no time to ask: decide on what we know */
		return;
	}
	etcd_client_set_timeout(L->etcd, fmin(L->ecfg.request_timeout, left - 0.05));
	read_cluster(L);
	etcd_client_set_timeout(L->etcd, L->ecfg.request_timeout);
}

static void read_local(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_local_view *l = &L->local;
	enum pg_datadir_state ds;
	struct pg_err err;

	l->name = cfg->name;
	l->nofailover = cfg->tags.nofailover || cfg->tags.failover_priority == 0;
	l->failover_priority = (int)cfg->tags.failover_priority;
	l->shutdown_requested = g_shutdown != 0;
	l->use_pg_rewind = cfg->postgresql.use_pg_rewind;
	l->remove_data_on_rewind_failure = cfg->postgresql.remove_data_directory_on_rewind_failure;
	keeper_get(L->keeper, &l->lease_id, &l->lease_sent);
	keeper_watchdog_state(L->keeper, &l->watchdog_required, &l->watchdog_ok);

	ds = pg_datadir_inspect(cfg->postgresql.data_dir);
	l->datadir = ds == PG_DATADIR_VALID ? HA_DATADIR_VALID
		     : ds == PG_DATADIR_MISSING ? HA_DATADIR_EMPTY
						: HA_DATADIR_INVALID;
	if (l->datadir == HA_DATADIR_VALID && L->postmaster.pid == 0 && L->job.pid == 0 && L->ctl_stale) {
		/* Only read pg_control while nothing writes it, and only when it may
		 * have changed (pg_controldata's exit wakes the loop via SIGCHLD). */
		L->ctl_stale = false;
		if (pg_controldata_read(cfg->postgresql.bin_dir, cfg->postgresql.data_dir, &L->ctl, &err)) {
			L->ctl_valid = true;
			if (L->ctl.hs_valid) {
				memcpy(L->hs_primary, L->ctl.hs, sizeof(L->hs_primary));
				L->hs_primary_valid = true;
			}
		} else {
			log_error("cannot read the data directory's control file: %s", err.msg);
			L->ctl_valid = false;
		}
	}
	if (l->datadir != HA_DATADIR_VALID) {
		L->ctl_valid = false;
		L->ctl_stale = true;
	}
	if (L->ctl_valid) {
		l->datadir_sysid = L->ctl.system_identifier;
		l->datadir_timeline = L->ctl.checkpoint_timeline;
		/* A fresh base backup carries the primary's pg_control ("in production")
		 * but also a backup_label: it is no former primary. */
		l->datadir_was_primary = (L->ctl.state == PG_DB_SHUTDOWNED || L->ctl.state == PG_DB_IN_PRODUCTION) &&
					 !has_backup_label(cfg->postgresql.data_dir) &&
					 !(L->rewound_for[0] && L->view.has_leader &&
					   strcmp(L->rewound_for, L->view.leader) == 0);
	} else if (l->datadir == HA_DATADIR_VALID && L->postmaster.pid == 0 && L->job.pid == 0) {
		l->datadir = HA_DATADIR_INVALID; /* unreadable pg_control */
	}

	l->job = L->job.pid ? L->job_kind : HA_JOB_NONE;
	l->job_failed = L->job_failed;
	/* Rewound against this leader and still unable to start: the rewind did
	 * not repair it, which is what a failed rewind means to the core. */
	if (L->pg_start_failed && L->start_failure == HA_START_FAIL_DIVERGED && L->rewind_ok_for[0] &&
	    L->view.has_leader && strcmp(L->rewind_ok_for, L->view.leader) == 0)
		l->job_failed = HA_JOB_REWIND;

	l->pg_running = L->postmaster.pid != 0;
	l->pg_ready = false;
	l->pg_primary = false;
	if (l->pg_running) {
		if (pg_query_state(L->pg, &L->pgst, &err)) {
			l->pg_ready = true;
			l->pg_primary = !L->pgst.in_recovery;
			if (!L->pgst.in_recovery)
				L->streamed_tl = 0;
			else if (L->pgst.wal_receiver_streaming && L->pgst.timeline > L->streamed_tl)
				L->streamed_tl = L->pgst.timeline;
			l->pg_timeline = L->pgst.timeline > L->streamed_tl ? L->pgst.timeline : L->streamed_tl;
			l->pg_lsn = L->pgst.current_lsn;
			l->pg_streaming = L->pgst.wal_receiver_streaming;
			if (L->pgst.system_identifier)
				l->datadir_sysid = L->pgst.system_identifier;
			if (!L->pg_was_ready) {
				const char *role = l->pg_primary ? "primary" : "replica";

				log_info("Postgres is up as %s on timeline %u", role, l->pg_timeline);
				cb_fire(L->callbacks, CB_ON_START, role);
				if (L->last_role[0] && strcmp(L->last_role, role) != 0)
					cb_fire(L->callbacks, CB_ON_ROLE_CHANGE, role);
				snprintf(L->last_role, sizeof(L->last_role), "%s", role);
			}
			L->pg_was_ready = true;
			L->pg_start_failed = false;
			L->start_failures = 0;
			L->start_failure = HA_START_FAIL_UNKNOWN;
			L->start_error[0] = '\0';
			L->rewind_ok_for[0] = '\0';
			if (L->pgst.in_recovery && L->pgst.wal_receiver_streaming)
				L->job_failed = HA_JOB_NONE; /* whatever failed before, we stream now */
		} else {
			if (L->pg_was_ready)
				log_warn("Postgres does not answer: %s", err.msg);
			L->pg_was_ready = false;
		}
	}
	if (l->pg_ready && !l->pg_primary) {
		if (l->pg_streaming)
			L->not_streaming_since = 0;
		else if (L->not_streaming_since == 0)
			L->not_streaming_since = now;
	} else {
		L->not_streaming_since = 0;
	}
	l->pg_not_streaming_since = L->not_streaming_since;
	/* Replay progress: it moved, or nothing received waits for it. */
	l->pg_receive_lsn = l->pg_ready && !l->pg_primary ? L->pgst.receive_lsn : 0;
	l->pg_replay_lsn = l->pg_ready && !l->pg_primary ? L->pgst.replay_lsn : 0;
	l->pg_replay_paused = l->pg_ready && !l->pg_primary && L->pgst.replay_paused;
	if (l->pg_ready && !l->pg_primary) {
		if (L->replay_progress_at == 0 || L->pgst.replay_lsn != L->replay_seen ||
		    L->pgst.receive_lsn <= L->pgst.replay_lsn)
			L->replay_progress_at = now;
		L->replay_seen = L->pgst.replay_lsn;
	} else {
		L->replay_progress_at = 0;
		L->replay_seen = 0;
	}
	l->pg_replay_progress_at = L->replay_progress_at;
	/* A running replica started with a hot-standby parameter below what
	 * the primary now has (pg_controldata, refreshed by check_hot_standby). */
	l->hs_below_primary = false;
	l->hs_detail[0] = '\0';
	if (l->pg_ready && !l->pg_primary && L->hs_started_valid && L->hs_primary_valid)
		for (int i = 0; i < PG_HS_PARAMS && !l->hs_below_primary; i++)
			if (L->hs_primary[i] > L->hs_started[i]) {
				l->hs_below_primary = true;
				snprintf(l->hs_detail, sizeof(l->hs_detail), "%s %ld < %ld on the primary",
					 pg_hot_standby_params[i].name, L->hs_started[i], L->hs_primary[i]);
			}
	l->pg_started_at = L->pg_started_at;
	l->pg_started_primary = L->pg_started_primary;
	l->pg_start_failed = L->pg_start_failed;
	l->pg_start_failure = L->start_failure;
	l->pg_start_failures = L->start_failures;
	snprintf(l->pg_start_error, sizeof(l->pg_start_error), "%s", L->start_error);
	snprintf(l->following, sizeof(l->following), "%s", L->following);

	if (L->promote_requested && l->pg_ready && l->pg_primary) {
		log_info("promoted: Postgres is primary on timeline %u", l->pg_timeline);
		cb_fire(L->callbacks, CB_ON_ROLE_CHANGE, "primary");
		snprintf(L->last_role, sizeof(L->last_role), "primary");
		L->promote_requested = false;
		L->pg_started_primary = true;
		l->pg_started_primary = true;
		if (L->view.has_switchover) {
			char reason[160];

			snprintf(reason, sizeof(reason), "%s from %s", L->view.sw_failover ? "manual failover" : "switchover",
				 L->view.sw_from[0] ? L->view.sw_from : "the old leader");
			append_history(L, reason);
			clear_switchover(L, "done: we are the new leader");
		} else {
			append_history(L, "leader lease acquired, promoted");
		}
		/* Postgres spreads its end-of-recovery checkpoint over seconds;
		 * until one completes, pg_control still names the old timeline,
		 * and pg_rewind against or of this node goes wrong (it looks for
		 * the fork on the wrong timeline and fails). Ask for it now. */
		if (pg_query_checkpoint(L->pg, &err))
			log_info("checkpoint after promotion done: pg_control is on timeline %u", l->pg_timeline);
		else
			log_warn("checkpoint after promotion: %s", err.msg);
	}
	l->promote_requested = L->promote_requested;
	l->wall_now = (double)time(NULL);
	l->leader_absent_since = L->leader_absent_since;
	l->failsafe_confirmed_at = L->failsafe_confirmed_at;
	l->failsafe_leader_seen_at = L->failsafe_seen_at;
	l->reinit_requested = L->req_reinit;
}

/* How this node talks to its peers' REST APIs (the current config's
 * restapi.cafile, client certificate and credentials). */
static struct peer_opts loop_peer_opts(const struct loop *L)
{
	struct peer_opts o;

	peer_opts_from_config(L->cfg, &o);
	return o;
}

/* Rule 5: fresh positions of the peers, asked of their REST APIs. */
static void poll_peers(struct loop *L)
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
		if (!m->reachable) {
			log_info("candidate check: %s unreachable (%s)", m->name, err);
			continue;
		}
		log_info("candidate check: %s answered over %s: role %s, state %s, timeline %u, lsn %X/%X", m->name,
			 tls ? "https (certificate verified)" : "http", st.role, st.state, st.timeline,
			 (unsigned)(st.lsn >> 32), (unsigned)st.lsn);
		/* A peer whose replay is paused or stuck is no candidate and may
		 * not hold us back (DESIGN.md rule 8). */
		m->healthy = st.pg_running && strcmp(st.state, ha_replay_state(HA_REPLAY_PAUSED)) != 0 &&
			     strcmp(st.state, ha_replay_state(HA_REPLAY_STUCK)) != 0;
		m->polled_starting = !st.pg_running && strcmp(st.role, "uninitialized") != 0 &&
				     (strcmp(st.state, "starting") == 0 || strcmp(st.state, "stopped") == 0);
		m->polled_primary = st.pg_running && strcmp(st.role, "primary") == 0;
		m->polled_lsn = st.lsn;
		m->polled_timeline = st.timeline;
	}
}

/* ---- executing actions -------------------------------------------------- */

static void start_postgres(struct loop *L, bool primary, const char *upstream, double now)
{
	struct pg_err err;

	/* The backoff after a failed start is the core's (ha_start_backoff). */
	sync_pg_reset(L);
	if (primary && !sync_key_claim(L))
		return;
	if (!write_pg_files(L, !primary, upstream))
		return;
	L->pg_log_from = pg_log_size(L->cfg->postgresql.log_file);
	if (!pg_postmaster_start(&L->paths, &L->postmaster, &err)) {
		log_error("cannot start Postgres: %s", err.msg);
		L->pg_start_failed = true;
		L->start_failure = HA_START_FAIL_OTHER;
		snprintf(L->start_error, sizeof(L->start_error), "%.159s", err.msg);
		L->start_failures++;
		L->pg_started_at = now;
		return;
	}
	memcpy(L->hs_started, L->hs_written, sizeof(L->hs_started));
	L->hs_started_valid = !primary && L->hs_written_valid;
	L->hs_checked_at = now;
	L->pg_started_primary = primary;
	L->pg_started_at = now;
	L->pg_was_ready = false;
	L->streamed_tl = 0;
	L->rewound_for[0] = '\0';
	snprintf(L->following, sizeof(L->following), "%s", primary || !upstream ? "" : upstream);
	L->not_streaming_since = 0;
	pg_conn_reset(L->pg);
	set_fence(L);
	log_info("started Postgres (pid %d) as %s%s%s", (int)L->postmaster.pid, primary ? "primary" : "replica",
		 !primary && upstream && upstream[0] ? " of " : "", !primary && upstream ? upstream : "");
}

static void stop_postgres(struct loop *L, enum pg_stop_mode mode, const char *why)
{
	struct pg_err err;

	if (L->postmaster.pid == 0)
		return;
	log_info("stopping Postgres (%s): %s", mode == PG_STOP_IMMEDIATE ? "immediate" : "fast", why);
	if (!pg_postmaster_stop(&L->postmaster, mode, mode == PG_STOP_IMMEDIATE ? 5.0 : STOP_TIMEOUT, &err))
		log_error("stopping Postgres: %s", err.msg);
	cb_fire(L->callbacks, CB_ON_STOP, L->last_role[0] ? L->last_role : "unknown");
	keeper_set_fence(L->keeper, 0);
	L->ctl_stale = true;
	L->pg_started_primary = false;
	L->promote_requested = false;
	L->pg_was_ready = false;
	L->following[0] = '\0';
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
	if (L->pg_start_failed || L->job_failed != HA_JOB_NONE || L->rewind_failures || L->start_failures)
		log_info("%s: forgetting the old data directory's failures", why);
	L->pg_start_failed = false;
	L->start_failures = 0;
	L->start_failure = HA_START_FAIL_UNKNOWN;
	L->start_error[0] = '\0';
	L->job_failed = HA_JOB_NONE;
	L->job_failed_at = 0;
	L->rewind_failures = 0;
	L->rewind_ok_for[0] = '\0';
	L->rewound_for[0] = '\0';
	L->following[0] = '\0';
	L->pg_started_primary = false;
	L->hs_primary_valid = L->hs_started_valid = L->hs_written_valid = false;
	L->ctl_stale = true;
}

static void start_job(struct loop *L, enum ha_job kind, const char *leader, bool started, const char *what)
{
	if (!started)
		return;
	L->job_kind = kind;
	snprintf(L->job_leader, sizeof(L->job_leader), "%s", leader ? leader : "");
	log_info("%s started (pid %d); its output goes to %s", what, (int)L->job.pid, L->cfg->postgresql.log_file);
}

/* Reaps a finished job and records what it means. */
static void reap_job(struct loop *L, double now)
{
	struct pg_err err;
	enum pg_child_state st;

	if (L->job.pid == 0)
		return;
	st = pg_child_poll(&L->job, &err);
	if (st == PG_CHILD_RUNNING)
		return;
	L->ctl_stale = true;
	if (L->job_kind == HA_JOB_BOOTSTRAP)
		pg_initdb_cleanup(&L->paths);
	if (st == PG_CHILD_OK) {
		log_info("%s finished", L->job.what[0] ? L->job.what : "job");
		if (L->job_kind == HA_JOB_CLONE)
			reset_failure_state(L, "cloned");
		if (L->job_kind == HA_JOB_REWIND || L->job_kind == HA_JOB_CLONE)
			snprintf(L->rewound_for, sizeof(L->rewound_for), "%s", L->job_leader);
		if (L->job_kind == HA_JOB_REWIND) {
			L->rewind_failures = 0;
			L->pg_start_failed = false; /* try the start again */
			snprintf(L->rewind_ok_for, sizeof(L->rewind_ok_for), "%s", L->job_leader);
		}
		L->job_failed = HA_JOB_NONE;
	} else {
		log_error("%s failed: %s (see %s)", L->job.what[0] ? L->job.what : "job", err.msg,
			  L->cfg->postgresql.log_file);
		L->job_failed = L->job_kind;
		L->job_failed_at = now;
		/* A rewind can fail for a passing reason (the source was shutting
		 * down): it counts as failed for good only the third time in a row. */
		if (L->job_kind == HA_JOB_REWIND && ++L->rewind_failures < 3) {
			log_info("will retry pg_rewind (attempt %d of 3)", L->rewind_failures + 1);
			L->job_failed = HA_JOB_NONE;
		}
		if (L->job_kind == HA_JOB_CLONE || L->job_kind == HA_JOB_BOOTSTRAP) {
			/* A half-made data directory is worthless: remove it so the next try starts clean. */
			if (!pg_datadir_remove(L->cfg->postgresql.data_dir, &err))
				log_error("cannot remove the failed data directory: %s", err.msg);
		}
		if (L->job_kind == HA_JOB_BOOTSTRAP) {
			struct etcd_compare cmp = {.key = L->keys.initialize, .target = ETCD_CMP_VALUE,
						   .result = ETCD_CMP_EQUAL, .value = L->cfg->name};
			struct etcd_op del = {.kind = ETCD_OP_DELETE, .key = L->keys.initialize};
			bool won;

			if (txn_simple(L, &cmp, 1, &del, 1, &won, "give up the initialize key") && won)
				log_info("gave up the initialize key so that another member can bootstrap");
		}
	}
	L->job_kind = HA_JOB_NONE;
}

static void reap_postmaster(struct loop *L, double now)
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
	if (!L->pg_was_ready) {
		struct pg_start_diag d;
		struct pg_err derr;

		L->pg_start_failed = true;
		L->start_failures++;
		if (!pg_start_diagnose(L->cfg->postgresql.log_file, L->pg_log_from, &d, &derr))
			log_warn("cannot tell why Postgres failed to start: %s", derr.msg);
		L->start_failure = d.kind == PG_START_FAIL_DIVERGED ? HA_START_FAIL_DIVERGED
				   : d.kind == PG_START_FAIL_PARAMS ? HA_START_FAIL_PARAMS
				   : d.kind == PG_START_FAIL_OTHER  ? HA_START_FAIL_OTHER
								    : HA_START_FAIL_UNKNOWN;
		if (d.kind == PG_START_FAIL_PARAMS && d.param[0])
			snprintf(L->start_error, sizeof(L->start_error), "%s = %ld is below the primary's %ld", d.param,
				 d.value, d.primary_value);
		else
			snprintf(L->start_error, sizeof(L->start_error), "%.159s", d.fatal_line[0] ? d.fatal_line : err.msg);
		/* Make sure the next start sees pg_control as it is now (the
		 * primary's parameters as replayed up to the failure). */
		L->ctl_stale = true;
		log_error("Postgres exited during start-up (%s), failure %d in a row: %s [%s]; see %s", err.msg,
			  L->start_failures, d.fatal_line[0] ? d.fatal_line : "the server logged no FATAL line",
			  pg_start_failure_name(d.kind), L->cfg->postgresql.log_file);
	} else {
		log_warn("Postgres exited unexpectedly (%s)", st == PG_CHILD_OK ? "status 0" : err.msg);
		cb_fire(L->callbacks, CB_ON_STOP, L->last_role[0] ? L->last_role : "unknown");
	}
	L->pg_started_at = now;
	L->promote_requested = false;
	/* After a failed start keep `following`: the core then knows it could
	 * not start as a replica of that leader (and rewinds). */
	if (L->pg_was_ready)
		L->following[0] = '\0';
	L->pg_was_ready = false;
	pg_conn_reset(L->pg);
}

static bool ensure_roles(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct pg_err err;

	if (!pg_query_ensure_role(L->pg, cfg->postgresql.replication_username, cfg->postgresql.replication_password,
				  true, &err)) {
		log_error("cannot create the replication role: %s", err.msg);
		return false;
	}
	return true;
}

static void do_race_init(struct loop *L)
{
	char value[32];
	const char *v = L->cfg->name;
	int64_t lease = L->local.lease_id;
	struct etcd_compare cmp = {.key = L->keys.initialize, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL};
	struct etcd_op put = {.kind = ETCD_OP_PUT, .key = L->keys.initialize};
	bool won = false;

	if (lease == 0)
		return;
	if (L->job_failed == HA_JOB_BOOTSTRAP && pg_now() - L->job_failed_at < RETRY_BACKOFF * 3)
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

static void do_bootstrap(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct ha_local_view *l = &L->local;
	struct pg_err err;

	if (l->datadir == HA_DATADIR_EMPTY) {
		const struct pg_initdb_opts io = {.encoding = cfg->bootstrap_initdb.encoding,
						  .locale = cfg->bootstrap_initdb.locale,
						  .data_checksums = cfg->bootstrap_initdb.data_checksums};

		if (L->job_failed == HA_JOB_BOOTSTRAP && now - L->job_failed_at < RETRY_BACKOFF)
			return;
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
	if (!l->pg_running) {
		if (!is_leader(L) && !acquire_leader_key(L))
			return;
		start_postgres(L, true, NULL, now);
		return;
	}
	if (!l->pg_ready || !l->pg_primary)
		return;
	if (!ensure_roles(L))
		return;
	{
		char sysid[32], *config_json = dcs_config_json(&cfg->bootstrap_dcs);
		struct etcd_compare init_cmp = {.key = L->keys.initialize, .target = ETCD_CMP_VALUE,
						.result = ETCD_CMP_EQUAL, .value = cfg->name};
		struct etcd_compare cfg_cmp = {.key = L->keys.config, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL};
		struct etcd_op put_init = {.kind = ETCD_OP_PUT, .key = L->keys.initialize, .value = sysid};
		struct etcd_op put_cfg = {.kind = ETCD_OP_PUT, .key = L->keys.config, .value = config_json};
		bool won = false;

		snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long)L->pgst.system_identifier);
		if (config_json && txn_simple(L, &cfg_cmp, 1, &put_cfg, 1, &won, "write the cluster config") && won)
			log_info("wrote the cluster's dynamic configuration from bootstrap.dcs");
		free(config_json);
		if (txn_simple(L, &init_cmp, 1, &put_init, 1, &won, "finish bootstrap") && won) {
			log_info("bootstrap complete: cluster '%s' has system identifier %s; we are its primary",
				 cfg->scope, sysid);
			append_history(L, "bootstrap");
		}
	}
}

static void do_clone(struct loop *L, const char *leader, double now)
{
	char conninfo[2048];
	struct pg_err err;

	if (L->job_failed == HA_JOB_CLONE && now - L->job_failed_at < RETRY_BACKOFF)
		return;
	if (!write_pgpass(L) || !leader_conninfo(L, leader, true, conninfo, sizeof(conninfo)))
		return;
	start_job(L, HA_JOB_CLONE, leader, pg_basebackup_start(&L->paths, conninfo, &L->job, &err),
		  "pg_basebackup");
	if (L->job.pid == 0)
		log_error("cannot run pg_basebackup: %s", err.msg);
}

static void do_rewind(struct loop *L, const char *leader, double now)
{
	char conninfo[2048];
	struct pg_err err;

	if (L->rewind_failures > 0 && now - L->job_failed_at < RETRY_BACKOFF)
		return;

	if (!leader_conninfo(L, leader, false, conninfo, sizeof(conninfo)))
		return;
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
	char conninfo[2048];
	struct pg_err err;

	if (!leader_conninfo(L, leader, true, conninfo, sizeof(conninfo)))
		return;
	if (!pg_conf_write_recovery(L->cfg->postgresql.data_dir, conninfo, &err) ||
	    !pg_postmaster_reload(&L->postmaster, &err)) {
		log_error("cannot repoint replication at %s: %s", leader, err.msg);
		return;
	}
	snprintf(L->following, sizeof(L->following), "%s", leader);
	L->not_streaming_since = now;
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
	L->promote_requested = true;
	L->following[0] = '\0';
	set_fence(L);
}

static bool pg_config_errors(struct loop *L, char *out, size_t len);

/* Rewrites the configuration files for the role Postgres has now and asks
 * it to re-read them. */
static void reload_postgres(struct loop *L, const char *why)
{
	struct pg_err err;
	bool replica = L->postmaster.pid && !(L->local.pg_ready && L->local.pg_primary) && !L->pg_started_primary;

	if (L->postmaster.pid == 0)
		return;
	if (!write_pg_files(L, replica, replica ? L->following : NULL))
		return;
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		log_error("reload failed: %s", err.msg);
		return;
	}
	log_info("reloaded Postgres configuration: %s", why);
	{
		char bad[600];

		if (pg_config_errors(L, bad, sizeof(bad)) && bad[0])
			log_error("Postgres refuses part of its configuration and keeps the old values for it: %s; "
				  "a restart would fail, so restarts are refused until it is fixed",
				  bad);
	}
	cb_fire(L->callbacks, CB_ON_RELOAD, L->last_role[0] ? L->last_role : "unknown");
	/* Look again in about a second: the postmaster and our backend take
	 * the SIGHUP asynchronously, so a look in this very loop reads the
	 * old pending_restart and the next would come 10 s later. */
	L->pending_checked_at = pg_now() - 9.0;
	L->pg_reloaded_at = pg_now();
}

/* The shared parameters (config key) changed: apply them. */
static void apply_shared_params(struct loop *L)
{
	size_t len = 1;
	char *sig;

	for (size_t i = 0; i < L->settings.n_pg_params; i++)
		len += strlen(L->settings.pg_params[i].name) + strlen(L->settings.pg_params[i].value) + 2;
	sig = malloc(len);
	if (!sig)
		return;
	sig[0] = '\0';
	for (size_t i = 0; i < L->settings.n_pg_params; i++) {
		size_t used = strlen(sig);
		snprintf(sig + used, len - used, "%s=%s\n", L->settings.pg_params[i].name, L->settings.pg_params[i].value);
	}
	if (L->applied_params && strcmp(sig, L->applied_params) != 0 && L->local.pg_ready)
		reload_postgres(L, "the cluster's postgresql.parameters changed");
	free(L->applied_params);
	L->applied_params = sig;
}

/* pending_restart, asked of Postgres every few seconds (and soon after a reload). */
static void check_pending_restart(struct loop *L, double now)
{
	struct pg_err err;
	bool pending;

	if (!L->local.pg_ready) {
		L->pending_restart = false;
		return;
	}
	if (now - L->pending_checked_at < 10.0 && L->pending_checked_at > 0)
		return;
	L->pending_checked_at = now;
	if (pg_query_pending_restart(L->pg, &pending, &err)) {
		if (pending && !L->pending_restart)
			log_info("a changed parameter needs a restart of Postgres (pending restart)");
		L->pending_restart = pending;
	}
}

/*
 * A running replica: reads pg_controldata again every so often (it is made
 * to be read while the server runs), since replay changes the primary's
 * hot-standby values it holds. When what the files should say changed (the
 * primary lowered a value and we replayed that; or raised one), rewrites
 * them and reloads, so that pending_restart shows it and a restart applies it.
 */
static void check_hot_standby(struct loop *L, double now)
{
	struct pg_controldata cd;
	struct pg_err err;
	bool differs = false;

	if (!L->local.pg_ready || L->local.pg_primary || L->pg_started_primary || L->promote_requested)
		return;
	/* Every few seconds; every loop while replay is paused (it may be for
	 * a parameter the primary raised: ha_decide restarts us with it). */
	if (L->hs_checked_at > 0 &&
	    now - L->hs_checked_at < (L->local.pg_replay_paused ? 1.0 : fmax(5.0, L->settings.loop_wait)))
		return;
	L->hs_checked_at = now;
	if (!pg_controldata_read(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &cd, &err)) {
		log_warn("cannot read the hot-standby parameters in pg_control: %s", err.msg);
		return;
	}
	if (!cd.hs_valid)
		return;
	for (int i = 0; i < PG_HS_PARAMS; i++)
		if (!L->hs_primary_valid || cd.hs[i] != L->hs_primary[i]) {
			if (L->hs_primary_valid)
				log_info("the primary's %s as replayed is now %ld (was %ld)", pg_hot_standby_params[i].name,
					 cd.hs[i], L->hs_primary[i]);
			differs = true;
		}
	if (!differs)
		return;
	memcpy(L->hs_primary, cd.hs, sizeof(L->hs_primary));
	L->hs_primary_valid = true;
	reload_postgres(L, "the primary's hot-standby parameters changed");
}

/* Is `name` a running replica on our timeline, ready to take over? */
static bool candidate_ready(struct loop *L, const char *name, struct api_status *st, char *why, size_t len)
{
	const struct ha_member *m = ha_find_member(&L->view, name);
	struct peer_opts po;
	char err[256];

	if (!m || !m->api_url[0]) {
		snprintf(why, len, "%s is not a member of the cluster", name);
		return false;
	}
	if (m->nofailover) {
		snprintf(why, len, "%s is tagged nofailover", name);
		return false;
	}
	po = loop_peer_opts(L);
	if (!peer_get_status(&po, m->api_url, 1.0, st, NULL, err, sizeof(err))) {
		snprintf(why, len, "%s does not answer: %s", name, err);
		return false;
	}
	if (!st->pg_running || strcmp(st->role, "replica") != 0) {
		snprintf(why, len, "%s is not a running replica (role %s, state %s)", name, st->role, st->state);
		return false;
	}
	/* DESIGN.md rule 8: it must be replaying what it receives. */
	if (ha_replay_state_unhealthy(st->state)) {
		snprintf(why, len, "%s is not replaying (state %s)", name, st->state);
		return false;
	}
	if (st->timeline != L->local.pg_timeline) {
		snprintf(why, len, "%s is on timeline %u, we are on %u", name, st->timeline, L->local.pg_timeline);
		return false;
	}
	/* Far behind, it would not catch up while we wait, stopped. */
	if (L->local.pg_lsn > st->lsn &&
	    L->local.pg_lsn - st->lsn > (uint64_t)L->view.maximum_lag_on_failover) {
		snprintf(why, len, "%s is %llu bytes behind (maximum_lag_on_failover %lld)", name,
			 (unsigned long long)(L->local.pg_lsn - st->lsn), (long long)L->view.maximum_lag_on_failover);
		return false;
	}
	return true;
}

/* Rewrites the switchover key naming the candidate, so that only it takes
 * the key once we release it. */
static bool record_switchover_target(struct loop *L, const char *candidate)
{
	char key[400], *text;
	struct etcd_compare cmp = {.target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL};
	struct etcd_op put = {.kind = ETCD_OP_PUT};
	json_t *o;
	bool won = false;
	int64_t rev = 0;

	switchover_key(L, key, sizeof(key));
	o = json_pack("{s:s, s:s, s:s, s:I}", "from", L->cfg->name, "to", candidate, "kind",
		      L->view.sw_failover ? "failover" : "switchover", "requested_at", (json_int_t)time(NULL));
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return false;
	cmp.key = key;
	cmp.number = L->switchover_mod_revision;
	put.key = key;
	put.value = text;
	if (!txn_rev(L, &cmp, 1, &put, 1, &won, &rev, "record the switchover target") || !won) {
		log_warn("switchover: the request changed while we acted on it; starting over");
		won = false;
	} else {
		/* clear_switchover must match what we just wrote, or an abort
		 * would leave the request behind and repeat it for ever. */
		L->switchover_mod_revision = rev;
	}
	free(text);
	return won;
}

/*
 * The leader's side of a switchover: pick (or check) the candidate, name it
 * in the switchover key, CHECKPOINT (so the shutdown checkpoint is short),
 * stop Postgres fast (its WAL senders ship everything to the replicas
 * before it exits), wait until the candidate has received our shutdown
 * checkpoint, then release the leader key. If the candidate does not catch
 * up in time we keep the key and the next loop restarts us as primary:
 * nothing acknowledged is lost either way.
 */
static void do_switchover(struct loop *L, const char *target)
{
	char cand[HA_NAME_MAX] = "", why[300] = "", url[sizeof(((struct ha_member *)0)->api_url)];
	struct peer_opts po = loop_peer_opts(L);
	struct api_status st;
	struct pg_controldata ctl;
	struct pg_err err;
	double t0 = pg_now(), until;
	bool caught_up = false;

	if (target[0]) {
		if (!candidate_ready(L, target, &st, why, sizeof(why))) {
			log_error("switchover refused: %s", why);
			clear_switchover(L, "refused");
			return;
		}
		snprintf(cand, sizeof(cand), "%s", target);
	} else {
		uint64_t best = 0;
		bool best_sync = false;

		/* The most advanced ready replica; in synchronous mode one the
		 * sync key names comes first. */
		for (size_t i = 0; i < L->view.n_members; i++) {
			const char *name = L->view.members[i].name;
			bool is_sync = ha_sync_allows(&L->view, name);
			char w[300];

			if (strcmp(name, L->cfg->name) == 0 || !candidate_ready(L, name, &st, w, sizeof(w)))
				continue;
			if (!cand[0] || (is_sync && !best_sync) || (is_sync == best_sync && st.lsn > best)) {
				snprintf(cand, sizeof(cand), "%s", name);
				best = st.lsn;
				best_sync = is_sync;
			}
		}
		if (!cand[0]) {
			log_error("switchover refused: no healthy replica on our timeline to hand over to");
			clear_switchover(L, "refused");
			return;
		}
	}
	snprintf(url, sizeof(url), "%s", ha_find_member(&L->view, cand)->api_url);
	if (!record_switchover_target(L, cand))
		return;
	log_info("switchover to %s: checkpoint, then stopping Postgres", cand);
	if (!pg_query_checkpoint(L->pg, &err))
		log_warn("checkpoint before switchover failed: %s", err.msg);
	stop_postgres(L, PG_STOP_FAST, "switchover");
	L->switchover_stopped = true;
	if (!pg_controldata_read(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &ctl, &err)) {
		log_error("switchover aborted: cannot read our final position: %s; staying leader", err.msg);
		clear_switchover(L, "aborted");
		return;
	}
	until = pg_now() + 5.0;
	while (pg_now() < until) {
		char e[256];

		if (peer_get_status(&po, url, 0.5, &st, NULL, e, sizeof(e)) &&
		    (st.receive_lsn > ctl.checkpoint_lsn || st.lsn > ctl.checkpoint_lsn)) {
			caught_up = true;
			break;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!caught_up) {
		log_error("switchover aborted: %s did not receive our shutdown checkpoint (%llX) within 5s; staying "
			  "leader",
			  cand, (unsigned long long)ctl.checkpoint_lsn);
		clear_switchover(L, "aborted");
		return;
	}
	/* Synchronous mode: Postgres is stopped and the candidate has all our
	 * WAL, so it may be recorded as synchronous, which lets it take the key. */
	if (L->settings.synchronous_mode && !ha_sync_allows(&L->view, cand)) {
		char names[HA_SYNC_MAX][HA_NAME_MAX];
		size_t n = 0;

		/* (Quorum commit: the others hold only a quorum of the commits, so
		 * the candidate alone, which has them all.) */
		for (size_t i = 0; !ha_sync_quorum_mode(&L->view) && strcmp(L->view.sync_leader, L->cfg->name) == 0 &&
				   i < L->view.n_sync && n + 1 < HA_SYNC_MAX;
		     i++)
			snprintf(names[n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
		snprintf(names[n++], HA_NAME_MAX, "%s", cand);
		if (!sync_key_write(L, names, n, ha_sync_quorum_mode(&L->view) ? 1 : 0,
				    "switchover candidate has all our WAL")) {
			log_error("switchover aborted: cannot record %s in the sync key; starting again as leader", cand);
			clear_switchover(L, "aborted");
			return;
		}
	}
	release_leader_key(L);
	log_info("switchover: %s has all our WAL; leader key released %.2fs after the request was taken up", cand,
		 pg_now() - t0);
}

/*
 * failsafe_mode, etcd unreachable, we are the primary: ask every member of
 * the last view we had to confirm us. Only a round that all of them
 * confirm extends our deadline (ha_lease_deadline); one silent or refusing
 * member and the deadline stays, so we demote in time.
 */
static void failsafe_round(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	double t0 = pg_now(), timeout = fmin(0.5, L->settings.loop_wait);
	struct peer_opts po = loop_peer_opts(L);
	size_t asked = 0, confirmed = 0;

	if (!L->view.failsafe_mode || L->view.etcd_ok || !L->local.pg_ready || !L->local.pg_primary) {
		if (L->failsafe_confirmed_at > 0) {
			L->failsafe_confirmed_at = 0;
			keeper_set_failsafe(L->keeper, 0);
		}
		L->failsafe_logged = false;
		return;
	}
	for (size_t i = 0; i < L->view.n_members; i++) {
		const struct ha_member *m = &L->view.members[i];
		char err[300];

		if (strcmp(m->name, cfg->name) == 0 || !m->api_url[0])
			continue;
		asked++;
		if (peer_post_failsafe(&po, m->api_url, cfg->name, timeout, err, sizeof(err)))
			confirmed++;
		else
			log_warn("failsafe: %s did not confirm us (%s)", m->name, err);
	}
	if (confirmed == asked) {
		L->failsafe_confirmed_at = t0;
		keeper_set_failsafe(L->keeper, t0);
		if (!L->failsafe_logged)
			log_warn("etcd unreachable; all %zu members confirm us: staying primary (failsafe_mode)", asked);
		L->failsafe_logged = true;
	} else {
		L->failsafe_logged = false;
	}
}

static void reload_config(struct loop *L);

/* Carries out what the REST API queued for this node. */
static void take_requests(struct loop *L)
{
	struct api_requests r;

	memset(&r, 0, sizeof(r));
	api_take_requests(L->api, &r);
	if (r.restart) {
		/* A request that arrives while one waits is merged into it: a
		 * plain restart wins over a conditional one, and the report for
		 * the latest id answers the earlier ones too. */
		if (!L->req_restart) {
			L->req_restart_pending_only = r.restart_pending_only;
			L->req_restart_min_version = r.restart_min_version;
		} else {
			L->req_restart_pending_only = L->req_restart_pending_only && r.restart_pending_only;
			if (!r.restart_min_version || !L->req_restart_min_version)
				L->req_restart_min_version = 0;
			else if (r.restart_min_version > L->req_restart_min_version)
				L->req_restart_min_version = r.restart_min_version;
		}
		L->req_restart = true;
		L->req_restart_id = r.restart_id;
		L->req_restart_arrived = r.restart_arrived;
		L->req_restart_judged = false;
	}
	if (r.restart_cancel && L->sched_restart_at > 0) {
		char t[32];

		dcs_format_utc(L->sched_restart_at, t, sizeof(t));
		log_info("scheduled restart at %s cancelled by an operator", t);
		L->sched_restart_at = 0;
	}
	if (r.restart_at > 0) {
		char t[32];

		dcs_format_utc(r.restart_at, t, sizeof(t));
		log_info("restart of Postgres scheduled at %s%s%s%s", t,
			 r.restart_pending_only ? ", if a restart is pending" : "", r.restart_role[0] ? ", if " : "",
			 r.restart_role[0] ? r.restart_role : "");
		L->sched_restart_at = r.restart_at;
		L->sched_pending_only = r.restart_pending_only;
		L->sched_min_version = r.restart_min_version;
		snprintf(L->sched_role, sizeof(L->sched_role), "%s", r.restart_role);
	}
	if (r.reinit)
		L->req_reinit = true;
	if (r.failsafe_seen_at > L->failsafe_seen_at) {
		if (L->failsafe_seen_at == 0 || r.failsafe_seen_at - L->failsafe_seen_at > L->settings.ttl)
			log_info("confirmed %s as leader in failsafe mode: we will not take the key for %.0fs after "
				 "the last confirmation",
				 L->view.leader, L->settings.ttl);
		L->failsafe_seen_at = r.failsafe_seen_at;
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
	if (L->req_reinit && is_leader(L)) {
		log_warn("reinit refused: this member is the leader; switch over first");
		L->req_reinit = false;
	}
}

/* Answers the waiting REST request (if any) and forgets the restart request. */
static void restart_answer(struct loop *L, uint64_t id, enum api_restart_outcome outcome, const char *msg)
{
	log_info("restart request: %s", msg);
	api_restart_report(L->api, id, outcome, msg);
}

/* A scheduled restart whose time came becomes a request like any other
 * (its conditions judged now); one for another role is dropped. */
static void due_scheduled_restart(struct loop *L)
{
	char t[32];

	if (L->sched_restart_at <= 0 || (double)time(NULL) < L->sched_restart_at || !L->view.etcd_ok)
		return;
	dcs_format_utc(L->sched_restart_at, t, sizeof(t));
	L->sched_restart_at = 0;
	if (L->sched_role[0] && strcmp(L->sched_role, is_leader(L) ? "primary" : member_role(L)) != 0) {
		log_info("scheduled restart at %s not done: this member is not the %s now", t, L->sched_role);
		return;
	}
	log_info("scheduled restart at %s is due", t);
	if (!L->req_restart) {
		L->req_restart_pending_only = L->sched_pending_only;
		L->req_restart_min_version = L->sched_min_version;
		L->req_restart_id = 0;
	} else {
		L->req_restart_pending_only = L->req_restart_pending_only && L->sched_pending_only;
		if (!L->sched_min_version || !L->req_restart_min_version)
			L->req_restart_min_version = 0;
	}
	L->req_restart = true;
	L->req_restart_arrived = 0;
	L->req_restart_judged = false;
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
static bool pg_config_errors(struct loop *L, char *out, size_t len)
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

static void judge_restart(struct loop *L)
{
	struct pg_err err;
	char buf[160], msg[1024];

	L->local.restart_requested = false;
	if (!L->req_restart)
		return;
	if (L->req_restart_judged) {
		L->local.restart_requested = true;
		return;
	}
	if (!L->view.etcd_ok || L->req_restart_arrived >= L->read_started_at)
		return; /* next loop, on a fresh read */
	if (!L->local.pg_ready) {
		L->req_restart = false;
		snprintf(msg, sizeof(msg), "restart of %s not done: Postgres is not running (%s)", L->cfg->name,
			 member_state(L));
		restart_answer(L, L->req_restart_id, API_RESTART_FAILED, msg);
		return;
	}
	if (L->req_restart_min_version) {
		int running;

		if (!pg_query_scalar(L->pg, "SHOW server_version_num", buf, sizeof(buf), &err)) {
			L->req_restart = false;
			snprintf(msg, sizeof(msg), "restart of %s not done: cannot read the server version: %.120s", L->cfg->name,
				 err.msg);
			restart_answer(L, L->req_restart_id, API_RESTART_FAILED, msg);
			return;
		}
		running = atoi(buf);
		if (running >= L->req_restart_min_version) {
			L->req_restart = false;
			snprintf(msg, sizeof(msg),
				 "restart not needed: the running server's version %d is not lower than %d", running,
				 L->req_restart_min_version);
			restart_answer(L, L->req_restart_id, API_RESTART_NOT_NEEDED, msg);
			return;
		}
	}
	L->restart_detail[0] = '\0';
	{
		/* The names, running values and the files' values of what waits
		 * for a restart. A reload sent just now may not have reached our
		 * backend yet: give it a moment (bounded). */
		static const char sql[] =
			"SELECT coalesce(string_agg(s.name || ' ' || pg_catalog.current_setting(s.name) || ' -> ' || "
			"coalesce(f.setting, '?'), ', ' ORDER BY s.name), '') FROM pg_catalog.pg_settings s "
			"LEFT JOIN LATERAL (SELECT fs.setting FROM pg_catalog.pg_file_settings fs "
			"WHERE fs.name = s.name ORDER BY fs.seqno DESC LIMIT 1) f ON true WHERE s.pending_restart";
		double settle = L->pg_reloaded_at + 0.3 - pg_now();

		if (L->pg_reloaded_at > 0 && settle > 0) {
			struct timespec ts = { 0, (long)(settle * 1e9) };

			nanosleep(&ts, NULL);
		}
		if (!pg_query_scalar(L->pg, sql, L->restart_detail, sizeof(L->restart_detail), &err)) {
			log_warn("cannot read which parameters are pending a restart: %s", err.msg);
			L->restart_detail[0] = '\0';
			if (L->req_restart_pending_only && !L->pending_restart) {
				L->req_restart = false;
				snprintf(msg, sizeof(msg), "restart of %s not done: cannot tell whether a restart is pending: %.100s",
					 L->cfg->name, err.msg);
				restart_answer(L, L->req_restart_id, API_RESTART_FAILED, msg);
				return;
			}
		} else {
			L->pending_restart = L->restart_detail[0] != '\0';
		}
	}
	if (L->req_restart_pending_only && !L->pending_restart) {
		L->req_restart = false;
		restart_answer(L, L->req_restart_id, API_RESTART_NOT_NEEDED,
			       "restart not needed: no parameter is pending a restart");
		return;
	}
	/* A parameter Postgres refuses (a typo in edit-config --pg, a value out
	 * of range) is only logged by a reload, but stops a restart: refuse the
	 * restart, naming it, rather than take Postgres down. */
	{
		char bad[600];

		if (pg_config_errors(L, bad, sizeof(bad)) && bad[0]) {
			L->req_restart = false;
			snprintf(msg, sizeof(msg),
				 "restart of %s refused: Postgres would not start with its configuration: %s "
				 "(fix it with batonctl edit-config --pg NAME= or in the node's file)",
				 L->cfg->name, bad);
			log_error("%s", msg);
			restart_answer(L, L->req_restart_id, API_RESTART_FAILED, msg);
			return;
		}
	}
	L->req_restart_judged = true;
	L->local.restart_requested = true;
}

/* After HA_RESTART stopped Postgres: report once it is back (a replica
 * once it streams again, or after 15 s of running without), or failed. */
static void track_restart(struct loop *L, double now)
{
	char msg[1024];

	if (!L->restart_running)
		return;
	if (L->postmaster.pid != 0 && L->postmaster.pid != L->restart_old_pid && L->local.pg_ready) {
		bool primary = L->local.pg_primary;

		if (L->restart_ready_at == 0)
			L->restart_ready_at = now;
		if (!primary && !L->local.pg_streaming && now - L->restart_ready_at < 15.0)
			return;
		if (primary || L->local.pg_streaming)
			snprintf(msg, sizeof(msg), "restarted%s%s%s in %.1f s%s%s", L->restart_detail[0] ? " (" : "",
				 L->restart_detail, L->restart_detail[0] ? ")" : "", now - L->restart_began,
				 primary ? ", primary" : ", streaming from ", primary ? "" : L->following);
		else
			snprintf(msg, sizeof(msg), "restarted%s%s%s in %.1f s, but not streaming yet",
				 L->restart_detail[0] ? " (" : "", L->restart_detail, L->restart_detail[0] ? ")" : "",
				 now - L->restart_began);
		L->restart_running = false;
		restart_answer(L, L->restart_running_id, API_RESTART_DONE, msg);
		return;
	}
	if (L->pg_start_failed || now - L->restart_began > 120.0) {
		snprintf(msg, sizeof(msg), "restart of %s: Postgres %s (see the agent's log)", L->cfg->name,
			 L->pg_start_failed ? "failed to start again" : "not back within 120 s");
		L->restart_running = false;
		restart_answer(L, L->restart_running_id, API_RESTART_FAILED, msg);
	}
}

/* Returns true when the agent must exit (after SHUTDOWN or FATAL). */
static bool execute(struct loop *L, const struct ha_action *a, double now)
{
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
		do_bootstrap(L, now);
		break;
	case HA_CLONE:
		do_clone(L, a->leader, now);
		break;
	case HA_REINIT: {
		struct pg_err err;

		L->req_reinit = false;
		stop_postgres(L, PG_STOP_FAST, "reinit");
		if (!pg_datadir_remove(L->cfg->postgresql.data_dir, &err))
			log_error("cannot remove the data directory: %s", err.msg);
		reset_failure_state(L, "reinit");
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
		publish_status(L);
		if (!L->view.paused)
			sync_manage(L);
		/* A switchover that named us, or another leader, is over. */
		if (L->view.has_switchover && ((L->view.sw_to[0] && strcmp(L->view.sw_to, L->cfg->name) == 0) ||
					       (L->view.sw_from[0] && strcmp(L->view.sw_from, L->cfg->name) != 0)))
			clear_switchover(L, "it no longer applies to the current leader");
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
		bool requested = L->req_restart && L->req_restart_judged;

		if (!requested)
			L->restart_detail[0] = '\0';
		L->restart_old_pid = L->postmaster.pid;
		L->restart_running_id = L->req_restart_id;
		L->restart_running = true;
		L->restart_began = now;
		L->restart_ready_at = 0;
		stop_postgres(L, PG_STOP_FAST, requested ? "restart requested" : a->reason);
		L->req_restart = false;
		L->req_restart_judged = false;
		L->pending_restart = false;
		break;
	}
	case HA_SWITCHOVER:
		do_switchover(L, a->leader);
		break;
	case HA_SHUTDOWN: {
		bool primary = L->local.pg_primary || L->pg_started_primary;
		struct pg_err err;

		if (primary && L->local.pg_ready && !pg_query_checkpoint(L->pg, &err))
			log_warn("checkpoint before shutdown failed: %s", err.msg);
		stop_postgres(L, PG_STOP_FAST, "agent shutting down");
		if (is_leader(L))
			release_leader_key(L);
		return true;
	}
	}
	return false;
}

/* ---- the loop ----------------------------------------------------------- */

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
	struct pollfd pfd = {.fd = L->wake[0], .events = POLLIN};
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
		break;
	default:
		return true;
	}
	return L->job.pid != 0 || (L->postmaster.pid != 0 && !L->local.pg_ready) || L->promote_requested ||
	       (L->req_restart && !L->req_restart_judged) || L->restart_running;
}

static bool startup_checks(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct etcd_range_result r;
	struct etcd_error err;
	double until = pg_now() + fmax(5.0, 2 * cfg->bootstrap_dcs.retry_timeout);
	pid_t other;

	memset(&r, 0, sizeof(r));
	for (;;) {
		if (etcd_get(L->etcd, L->keys.leader, &r, &err) == ETCD_OK)
			break;
		if (pg_now() >= until || g_shutdown || err.status == ETCD_E_AUTH || err.status == ETCD_E_INVALID) {
			const char *check = err.status == ETCD_E_AUTH		    ? "etcd.username and etcd.password"
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
	until = pg_now() + 10.0;
	while ((other = pg_postmaster_pid_from_file(cfg->postgresql.data_dir)) > 0) {
		if (pg_now() >= until) {
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
	 * watch needs no idle timeout here: the loop re-reads every key each
	 * loop_wait, so a dead watch costs at most one loop of latency. */
	L->ecfg.discover_members = true;
	if (etcd_client_new(&L->ecfg, &L->etcd, &e) != ETCD_OK) {
		log_error("etcd client: %s", e.message);
		return false;
	}
	if (!dcs_settings_copy(&L->settings, &cfg->bootstrap_dcs))
		return false;

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
	L->watch = watch_start(&L->ecfg, L->keys.leader, L->wake[1], err, sizeof(err));
	if (!L->watch) {
		log_error("%s", err);
		return false;
	}
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
		for (int i = 0; i < 50 && cb_poll(L->callbacks) > 0; i++) {
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
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
	double until = pg_now() + fmin(10.0, L->cfg->postgresql.callbacks.timeout);
	bool said = false;

	while (L->callbacks && pg_now() < until) {
		bool running = false;

		cb_poll(L->callbacks);
		for (int i = 0; i < CB_N_ACTIONS; i++)
			running |= cb_running(L->callbacks, (enum cb_action)i) > 0;
		if (!running)
			return;
		if (!said) {
			log_info("waiting up to %.0fs for callbacks still running", until - pg_now());
			said = true;
		}
		usleep(20000);
	}
}

/* ---- SIGHUP: the local configuration file, again ---------------------------- */

static bool str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool strlist_same(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_same(a[i], b[i]))
			return false;
	return true;
}

static bool params_same(const struct config_param *a, size_t na, const struct config_param *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_same(a[i].name, b[i].name) || !str_same(a[i].value, b[i].value))
			return false;
	return true;
}

#define SWAP_FIELD(a, b)                                                                                      \
	do {                                                                                                  \
		__typeof__(a) tmp_ = (a);                                                                     \
		(a) = (b);                                                                                    \
		(b) = tmp_;                                                                                   \
	} while (0)

/*
 * Re-reads the file the agent started with. What only this loop reads
 * changes now: log level, tags, Postgres parameters and pg_hba (Postgres is
 * reloaded), passwords (the password file, and the roles on the primary),
 * rewind policy, callbacks. What other threads or etcd's client hold
 * (names, etcd, REST API, data directory, addresses, watchdog) needs a
 * restart: each such change is reported, and the running value kept. A
 * file that does not load changes nothing.
 */
static void reload_config(struct loop *L)
{
	struct baton_config *cur = (struct baton_config *)L->cfg; /* the agent's own copy (baton.c) */
	struct baton_config fresh;
	char err[1024], restart[600] = "";
	bool pg_files = false, passwords = false, callbacks = false;
	enum log_level lvl;
	size_t used = 0;

	if (!config_load(cur->path, &fresh, err, sizeof(err))) {
		log_error("SIGHUP: %s; keeping the running configuration", err);
		return;
	}
#define NEEDS_RESTART(cond, key)                                                                              \
	do {                                                                                                  \
		if (!(cond) && used < sizeof(restart)) {                                                      \
			int k_ = snprintf(restart + used, sizeof(restart) - used, "%s%s", used ? ", " : "", key); \
			used += k_ > 0 ? (size_t)k_ : 0;                                                      \
		}                                                                                             \
	} while (0)
	NEEDS_RESTART(str_same(cur->scope, fresh.scope), "scope");
	NEEDS_RESTART(str_same(cur->name, fresh.name), "name");
	NEEDS_RESTART(str_same(cur->namespace_, fresh.namespace_), "namespace");
	NEEDS_RESTART(strlist_same(cur->etcd.hosts, cur->etcd.n_hosts, fresh.etcd.hosts, fresh.etcd.n_hosts) &&
			      str_same(cur->etcd.protocol, fresh.etcd.protocol) &&
			      str_same(cur->etcd.cacert, fresh.etcd.cacert) && str_same(cur->etcd.cert, fresh.etcd.cert) &&
			      str_same(cur->etcd.key, fresh.etcd.key) &&
			      str_same(cur->etcd.username, fresh.etcd.username) &&
			      str_same(cur->etcd.password, fresh.etcd.password),
		      "etcd");
	NEEDS_RESTART(str_same(cur->restapi.listen, fresh.restapi.listen) &&
			      str_same(cur->restapi.connect_address, fresh.restapi.connect_address) &&
			      str_same(cur->restapi.auth_username, fresh.restapi.auth_username) &&
			      str_same(cur->restapi.auth_password, fresh.restapi.auth_password) &&
			      str_same(cur->restapi.certfile, fresh.restapi.certfile) &&
			      str_same(cur->restapi.keyfile, fresh.restapi.keyfile) &&
			      str_same(cur->restapi.cafile, fresh.restapi.cafile) &&
			      str_same(cur->restapi.verify_client, fresh.restapi.verify_client) &&
			      strlist_same(cur->restapi.allowed_hosts, cur->restapi.n_allowed_hosts,
					   fresh.restapi.allowed_hosts, fresh.restapi.n_allowed_hosts) &&
			      cur->restapi.allow_unauthenticated_writes == fresh.restapi.allow_unauthenticated_writes,
		      "restapi");
	NEEDS_RESTART(str_same(cur->postgresql.bin_dir, fresh.postgresql.bin_dir), "postgresql.bin_dir");
	NEEDS_RESTART(str_same(cur->postgresql.data_dir, fresh.postgresql.data_dir), "postgresql.data_dir");
	NEEDS_RESTART(str_same(cur->postgresql.listen, fresh.postgresql.listen), "postgresql.listen");
	NEEDS_RESTART(str_same(cur->postgresql.connect_address, fresh.postgresql.connect_address),
		      "postgresql.connect_address");
	NEEDS_RESTART(str_same(cur->postgresql.socket_dir, fresh.postgresql.socket_dir), "postgresql.socket_dir");
	NEEDS_RESTART(str_same(cur->postgresql.pgpass, fresh.postgresql.pgpass), "postgresql.pgpass");
	NEEDS_RESTART(str_same(cur->postgresql.log_file, fresh.postgresql.log_file), "postgresql.log_file");
	NEEDS_RESTART(str_same(cur->postgresql.tls_certfile, fresh.postgresql.tls_certfile) &&
			      str_same(cur->postgresql.tls_keyfile, fresh.postgresql.tls_keyfile) &&
			      str_same(cur->postgresql.tls_cafile, fresh.postgresql.tls_cafile),
		      "postgresql.tls");
	NEEDS_RESTART(str_same(cur->postgresql.superuser_username, fresh.postgresql.superuser_username),
		      "postgresql.authentication.superuser.username");
	NEEDS_RESTART(str_same(cur->postgresql.replication_username, fresh.postgresql.replication_username),
		      "postgresql.authentication.replication.username");
	NEEDS_RESTART(str_same(cur->watchdog.mode, fresh.watchdog.mode) &&
			      str_same(cur->watchdog.device, fresh.watchdog.device) &&
			      cur->watchdog.safety_margin == fresh.watchdog.safety_margin,
		      "watchdog");
#undef NEEDS_RESTART

	/* Applied now: swap each value into the running config (fresh then
	 * holds the old ones and is freed). */
	if (!str_same(cur->log_level, fresh.log_level) && log_level_parse(fresh.log_level, &lvl)) {
		log_set_level(lvl);
		log_info("SIGHUP: log.level is now %s", fresh.log_level);
		SWAP_FIELD(cur->log_level, fresh.log_level);
	}
	if (!params_same(cur->postgresql.params, cur->postgresql.n_params, fresh.postgresql.params,
			 fresh.postgresql.n_params) ||
	    !strlist_same(cur->postgresql.pg_hba, cur->postgresql.n_pg_hba, fresh.postgresql.pg_hba,
			  fresh.postgresql.n_pg_hba)) {
		SWAP_FIELD(cur->postgresql.params, fresh.postgresql.params);
		SWAP_FIELD(cur->postgresql.n_params, fresh.postgresql.n_params);
		SWAP_FIELD(cur->postgresql.pg_hba, fresh.postgresql.pg_hba);
		SWAP_FIELD(cur->postgresql.n_pg_hba, fresh.postgresql.n_pg_hba);
		pg_files = true;
	}
	if (!str_same(cur->postgresql.superuser_password, fresh.postgresql.superuser_password) ||
	    !str_same(cur->postgresql.replication_password, fresh.postgresql.replication_password)) {
		SWAP_FIELD(cur->postgresql.superuser_password, fresh.postgresql.superuser_password);
		SWAP_FIELD(cur->postgresql.replication_password, fresh.postgresql.replication_password);
		passwords = true;
	}
	if (!str_same(cur->postgresql.callbacks.on_start, fresh.postgresql.callbacks.on_start) ||
	    !str_same(cur->postgresql.callbacks.on_stop, fresh.postgresql.callbacks.on_stop) ||
	    !str_same(cur->postgresql.callbacks.on_role_change, fresh.postgresql.callbacks.on_role_change) ||
	    !str_same(cur->postgresql.callbacks.on_reload, fresh.postgresql.callbacks.on_reload) ||
	    cur->postgresql.callbacks.timeout != fresh.postgresql.callbacks.timeout) {
		struct cb_runner *r = cb_new(&fresh.postgresql.callbacks, cur->scope, fresh.postgresql.callbacks.timeout);

		if (r) {
			cb_free(L->callbacks); /* a script still running is stopped */
			L->callbacks = r;
			SWAP_FIELD(cur->postgresql.callbacks, fresh.postgresql.callbacks);
			callbacks = true;
		} else {
			log_error("SIGHUP: out of memory for the new callbacks; keeping the old ones");
		}
	}
	SWAP_FIELD(cur->postgresql.use_pg_rewind, fresh.postgresql.use_pg_rewind);
	SWAP_FIELD(cur->postgresql.remove_data_directory_on_rewind_failure,
		   fresh.postgresql.remove_data_directory_on_rewind_failure);
	SWAP_FIELD(cur->tags, fresh.tags);
	/* bootstrap.dcs only matters until the config key exists. */
	SWAP_FIELD(cur->bootstrap_dcs, fresh.bootstrap_dcs);
	config_free(&fresh);

	log_info("SIGHUP: reloaded %s%s%s%s", cur->path, pg_files ? "; Postgres parameters/pg_hba changed" : "",
		 passwords ? "; passwords changed" : "", callbacks ? "; callbacks changed" : "");
	if (restart[0])
		log_warn("SIGHUP: changed but only applied by a restart of the agent, keeping the running values: %s",
			 restart);
	if (passwords) {
		if (write_pgpass(L))
			log_info("SIGHUP: password file rewritten");
		if (L->local.pg_ready && L->local.pg_primary)
			(void)ensure_roles(L);
		pg_files = true; /* primary_conninfo names the password file, not the password; a reload is cheap */
	}
	if (pg_files && L->local.pg_ready)
		reload_postgres(L, "local configuration file reloaded (SIGHUP)");
}

int loop_run(const struct baton_config *cfg)
{
	struct loop L;
	sigset_t block, old;
	int status = 0;
	bool ok, stopping_told = false;

	memset(&L, 0, sizeof(L));
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
		double now = pg_now();
		struct ha_action a;
		double wait, deadline;

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
		L.read_started_at = pg_now();
		read_cluster_in_time(&L);
		take_requests(&L);
		now = pg_now();
		read_local(&L, now);
		track_restart(&L, now);
		failsafe_round(&L);
		L.local.failsafe_confirmed_at = L.failsafe_confirmed_at;
		apply_shared_params(&L);
		check_pending_restart(&L, now);
		check_hot_standby(&L, now);
		due_scheduled_restart(&L);
		judge_restart(&L);
		/* After our switchover: until Postgres runs again and follows the
		 * new leader (or leads again, when it was aborted). */
		if (L.local.pg_ready && (is_leader(&L) || (L.view.has_leader && strcmp(L.following, L.view.leader) == 0)))
			L.switchover_stopped = false;
		L.local.restart_in_progress = (L.restart_running && !L.local.pg_running) || L.switchover_stopped;
		if (L.view.etcd_ok && !L.view.has_leader && L.local.pg_ready && !L.local.pg_primary &&
		    !L.local.nofailover)
			poll_peers(&L);
		now = pg_now();
		a = ha_decide(&L.view, &L.local, now);
		log_action(&L, &a);
		if (execute(&L, &a, now)) {
			status = L.running_fatal ? 1 : 0;
			break;
		}
		set_fence(&L);
		if (a.kind == HA_LEAD || a.kind == HA_WAIT)
			manage_slots(&L, now);
		if (L.view.etcd_ok)
			publish_member(&L);
		publish_api(&L);

		wait = busy(&L, &a) ? 0.1 : L.settings.loop_wait;
		if (cb_poll(L.callbacks) > 0)
			wait = fmin(wait, 0.2); /* drain callback output, enforce their timeout */
		deadline = ha_lease_deadline(&L.view, &L.local);
		if (L.postmaster.pid && (L.pg_started_primary || L.local.pg_primary) && deadline > 0)
			wait = fmin(wait, fmax(0.01, deadline - pg_now()));
		if (!g_shutdown)
			sleep_until_woken(&L, wait);
	}
	drain_callbacks(&L);
	log_info("agent stopped%s", status ? " after a fatal error" : "");
	loop_free(&L);
	return status;
}
