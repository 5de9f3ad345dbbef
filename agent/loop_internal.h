/*
 * loop_internal.h - the parts of the main loop (loop.h), shared by its
 * files and by nothing else: struct loop, which holds everything the loop
 * remembers between iterations, and the functions one part calls in
 * another. Each loop_*.c file opens with the concern it holds:
 *   loop.c            the iteration itself, start-up and shutdown
 *   loop_view.c       gathering the cluster and the local view
 *   loop_execute.c    carrying out ha_decide's action (Postgres, jobs)
 *   loop_switchover.c the leader's side of a switchover
 *   loop_sync.c       synchronous replication and replication slots
 *   loop_lease.c      the lease, the leader key, fencing, failsafe
 *   loop_publish.c    member key, status, history, REST snapshot, metrics
 *   loop_reload.c     run-time configuration changes and SIGHUP
 *   loop_pgfiles.c    the Postgres files the agent writes
 *   loop_restart.c    operator requests from the REST API
 * Functions here return what they returned when they were static in one
 * loop.c; all take the loop (L) and run on the main thread only.
 */
#ifndef BATON_LOOP_INTERNAL_H
#define BATON_LOOP_INTERNAL_H

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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/callbacks.h"
#include "agent/clock.h"
#include "agent/dcs.h"
#include "agent/ha.h"
#include "agent/keeper.h"
#include "agent/local_view.h"
#include "agent/log.h"
#include "agent/member_verify.h"
#include "agent/ops.h"
#include "agent/peer.h"
#include "agent/pooler.h"
#include "agent/sdnotify.h"
#include "agent/slots.h"
#include "agent/watch.h"
#include "etcd/etcd.h"
#include "pg/pg_conf.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"
#include "pg/pg_query.h"

/* How long a planned stop may take before the library escalates: the
 * default of postgresql.pg_ctl_timeout (config.c's row says "30"; the
 * Kubernetes manifests' grace period is checked against this value). */
#define STOP_TIMEOUT 30.0

/* Set by loop_request_shutdown (signal handler context). */
extern volatile sig_atomic_t g_shutdown;

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
	char last_role[16]; /* role Postgres last came up in ("" = none yet), for on_role_change */
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
	bool ctl_stale; /* pg_control may have changed since we read it */

	struct pg_child postmaster;
	bool post_bootstrap_done;    /* bootstrap.post_bootstrap succeeded in this bootstrap */
	bool boot_recovering;        /* bootstrap.method pgbackrest: Postgres recovers the restored backup */
	bool standby_restore_warned; /* said once that standby_cluster.restore_command is not allowed here */
	/* The last good config key (loop_pgfiles.c lastgood_*): the settings
	 * kept while the key is invalid or missing, and across a restart
	 * through a copy in the data directory, so neither changes the
	 * cluster's mode (standby cluster, pause, synchronous mode). */
	struct {
		char *raw;        /* the key's value as read (NULL: none known) */
		int64_t revision; /* its mod_revision */
		bool saved;       /* the data directory's copy holds it, as stat'ed below */
		ino_t ino;        /* ... of the copy we wrote (a rewind or a clone replaces it) */
		off_t size;
		struct timespec mtime;
		enum ha_config_key said; /* the state last logged */
		bool said_known;
		int64_t said_rev; /* ... for the key's revision */
		bool save_failed_said;
	} lastgood;
	char standby_unusable_said[300]; /* "host:port" of the standby_cluster remote last refused (logged once) */
	/* What the remote said of itself when this leader last asked
	 * (loop_pgfiles.c remote_is_other_site): a primary demotes only onto a
	 * remote that answers and is not one of its own members, and a
	 * standby leader never streams from one of its own members. */
	struct {
		char key[300]; /* "host:port" asked */
		double at;     /* when (clk_mono) */
		bool ok;       /* it answered, and is not ours */
		bool ours;     /* it answered, and is a member of this cluster */
		bool asking;   /* building its connection string: no recursion */
	} remote_probe;
	/* What the view builder and the executor remember of Postgres and the
	 * jobs (local_view.h): starts, failures, streaming, replay progress. */
	struct local_memory lm;
	long pg_log_from; /* size of postgresql.log_file when Postgres was last started: where
				      * the diagnosis of a failed start reads from */
	/* Hot-standby parameters (pg_data.h): the primary's as this data
	 * directory last replayed them (pg_controldata), and what the running
	 * replica was started with / its files now say. */
	struct {
		long primary[PG_HS_PARAMS];
		bool primary_valid;
		long started[PG_HS_PARAMS];
		bool started_valid;
		long written[PG_HS_PARAMS];
		long wanted[PG_HS_PARAMS]; /* ... and what the config asked for then */
		bool written_valid;
		double checked_at;
	} hs;

	struct pg_child job;
	enum ha_job job_kind;
	char job_leader[HA_NAME_MAX];
	double job_deadline; /* monotonic: a clone method running past it is killed (0 = no bound) */
	int clone_running;   /* the clone plan's index of the running method */
	int clone_failed;    /* 1 + the index of the method that failed last since a success (0 = none) */
	/* A rewind waiting for its source's pg_control to reach the source's
	 * timeline (ha_rewind_source_check): since when, and the last ask. */
	double rewind_wait_since, rewind_wait_at, rewind_wait_logged;
	/* The running pg_rewind: where its output starts in the log, and
	 * whether the server itself said it diverged (then "no rewind
	 * required" is no repair). */
	long rewind_log_from;
	bool rewind_proven;

	/* operator requests (REST API), kept until carried out (loop_restart.c) */
	struct {
		bool restart, restart_pending_only, reinit;
		uint64_t restart_id;     /* the REST request to answer (0 = nobody waits) */
		int restart_min_version; /* only if server_version_num is lower (0 = any) */
		double restart_arrived;  /* monotonic; judged only on a read of etcd begun after it */
		bool restart_judged;     /* its conditions held on a fresh view: restart */
	} req;
	/* a restart under way (an operator's, or the core's) */
	struct {
		char detail[200];    /* what was pending, for the report */
		uint64_t running_id; /* the request to report (0 none) */
		bool by_core;        /* the agent's own restart, not an operator's request */
		bool running;
		pid_t old_pid;
		double began, ready_at;
	} restart;
	/* a scheduled restart (POST /restart {"schedule"}), published in our member key */
	struct {
		double at; /* wall clock (0 = none) */
		bool pending_only;
		int min_version;
		char role[16];
	} sched;
	bool switchover_stopped; /* we stopped Postgres to hand over: start it again, also when paused */
	double read_started_at;  /* monotonic: when this loop's read of etcd began */
	double pg_reloaded_at;   /* monotonic: the last reload we sent Postgres */
	bool pending_restart;    /* a changed parameter waits for a restart */
	double pending_checked_at;
	char *applied_params; /* the shared Postgres parameters last written, "name=value\n"... */
	int64_t switchover_mod_revision;
	int64_t switchover_create_revision; /* names the request (batonctl waits on it) */
	int64_t sw_refused_rev;             /* the switchover key last refused (logged once) */
	/* The last switchover request we refused or aborted, and why: in our
	 * member key ("switchover_refused") so that batonctl says why at once. */
	char config_error[600]; /* what Postgres refuses in its files since the last reload ("" none) */
	/* Shared parameters a start leaves out because Postgres refuses them
	 * (write_pg_files_for_start; set only during it). */
	const char *start_skip[8];
	size_t n_start_skip;
	struct {
		int64_t request; /* its key's create revision; 0 = none */
		char why[300];
	} sw_refusal;
	double leader_absent_since;

	uint64_t leader_changes;
	uint64_t iterations; /* passes of the main loop (baton_loop_iterations_total) */
	char last_leader[HA_NAME_MAX];
	/* failsafe_mode (loop_lease.c failsafe_round, loop_restart.c) */
	struct {
		double confirmed_at; /* leader: start of the last round every member confirmed */
		double seen_at;      /* replica: when we last confirmed the leader's heartbeat */
		bool logged;
		double agent_started_at; /* monotonic: a restart forgets a confirmation given before it */
		double start_promise;    /* failsafe_mode on at start: agent_started_at, kept as a confirmation */
		bool start_judged;       /* the first view that reached etcd was looked at */
		bool take_unknown;       /* a take of the key failed without an answer: kept closed */
	} failsafe;

	/* synchronous_standby_names as last written for Postgres (primary) */
	struct {
		size_t n;
		char names[HA_SYNC_MAX][HA_NAME_MAX];
		bool star;          /* '*': strict mode with nobody to wait for */
		int quorum;         /* quorum commit: ANY quorum (names); 0: FIRST n (names) */
		uint64_t since_lsn; /* primary LSN once it was in force */
		bool since_known;
	} sync_pg;

	struct slots_memory slots_mem; /* when each unwanted replication slot was first seen */
	bool standby_logical_noted;    /* logged once: a standby leader skips the permanent logical slots */
	struct mv_cache mv;            /* members whose Postgres address their REST API confirmed */

	char *member_json; /* last published */
	char *status_json; /* last published (leader) */
	/* When and with which LSN (timeline) they were written: a change of
	 * LSN alone waits until loop_wait has passed (loop_publish.c). */
	double member_put_at, status_put_at;
	uint64_t member_lsn;
	uint32_t status_timeline;
	enum ha_action_kind last_kind;
	char last_reason[200];
	char last_warn[4096];
	struct dcs_read_cache read_cache; /* oversized keys not to download again */
	double last_etcd_err_log;
	/* The watch-driven cluster view (loop_view.c): the last full read,
	 * with the changes the prefix watch delivered since applied to it. */
	struct etcd_range_result cached;
	bool cached_valid;
	char cached_warn[2048];         /* what the full read warned of */
	double next_full_read;          /* monotonic: the periodic consistency check */
	bool want_full_read;            /* the next read must be a full one */
	bool watch_suspect;             /* etcd failed a request since: replace the watch */
	bool view_from_cache;           /* this loop's view came from the cache */
	uint64_t keepalive_failed_seen; /* keeper failures already seen (a new one: read fully) */
	double keepalive_interval;      /* in force in the keeper */
	struct etcd_stats watch_stats;  /* of the watches replaced so far */

	/* The loop's and keeper's etcd_stats.endpoint_failovers already seen
	 * (a new one: read fully, replace the watch). */
	uint64_t endpoint_failovers_seen;
	bool running_fatal;
	/* A reinit stops Postgres and removes its data directory inside the
	 * loop: what we publish says "stopped" from before the stop on. */
	bool reinit_stopping;
	/* PgBouncer poolers paused around our switchover (loop_switchover.c) */
	struct {
		struct pooler_set set;   /* what we paused, until resumed */
		struct pooler_set sweep; /* leader: the pending sweep, until it reached every pooler (n 0: none) */
		uint32_t swept_timeline; /* leader: the timeline whose sweep is done (0: none yet) */
		double sweep_since;      /* leader: when the pending sweep was first tried (0: none) */
		int target_warns;        /* pooler_target errors said at WARN for this pause or sweep */
		char target_said[256];   /* the last of them (the same one is not said again) */
		char target_err[256];    /* pooler_target's current error, the same since target_err_at */
		double target_err_at;    /* monotonic */
	} pool;
};

/* loop_view.c */
void read_cluster_in_time(struct loop *L);
/* Seconds between keepalives for settings s (ha_keepalive_interval with
 * this node's watchdog). */
double keepalive_interval(struct loop *L, const struct dcs_settings *s);
/* Would the action, decided on a view from the cache, change anything
 * that needs a fresh view? (loop_view.c, the cached view's safety). */
bool view_needs_fresh(const struct loop *L, const struct ha_action *a);
/* A put of ours (at revision rev) applied to the cached view at once. */
void cache_own_put(struct loop *L, const char *key, const char *value, int64_t lease, int64_t rev);
/* The period of the full read that checks the cached view (seconds). */
#define VIEW_CHECK_INTERVAL 30.0
void read_local(struct loop *L, double now);
struct peer_opts loop_peer_opts(const struct loop *L);
void poll_peers(struct loop *L);

/* loop_execute.c */
void stop_postgres(struct loop *L, enum pg_stop_mode mode, const char *why);
void reap_job(struct loop *L, double now);
void reap_postmaster(struct loop *L, double now);
bool ensure_roles(struct loop *L);
bool execute(struct loop *L, const struct ha_action *a, double now);
/* postgresql.create_replica_methods as the core reads it (ha_clone.h). */
void clone_plan_build(const struct loop *L, struct ha_clone_plan *p);

/* loop_switchover.c */
void clear_switchover(struct loop *L, const char *why);
void promote_nudge(struct loop *L);
void refuse_switchover(struct loop *L, const char *outcome, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void do_switchover(struct loop *L, const char *target);
/* Every loop: resumes poolers we paused once the primary takes writes (or
 * pooler_resume_timeout passed), and a new leader's one sweep per timeline. */
void pooler_tick(struct loop *L, double now);

/* loop_sync.c */
void sync_pg_render(const struct loop *L, char *buf, size_t len);
void sync_pg_reset(struct loop *L);
void manage_slots(struct loop *L, double now);
bool sync_key_write(struct loop *L, char names[][HA_NAME_MAX], size_t n, int quorum, const char *why);
bool sync_key_claim(struct loop *L);
void sync_manage(struct loop *L);

/* loop_lease.c */
void set_fence(struct loop *L);
bool txn_rev(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops, size_t n_ops,
             bool *won, int64_t *revision, const char *what);
bool txn_simple(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops, size_t n_ops,
                bool *won, const char *what);
void release_leader_key(struct loop *L);
bool acquire_leader_key(struct loop *L);
void ensure_lease(struct loop *L);
void failsafe_round(struct loop *L);

/* loop_publish.c */
void append_history(struct loop *L, const char *reason);
void publish_status(struct loop *L);
enum ha_state member_state(const struct loop *L);
enum ha_role member_role(const struct loop *L);
void publish_member(struct loop *L);
void publish_api(struct loop *L);

/* loop_reload.c */
void reload_postgres(struct loop *L, const char *why);
void apply_shared_params(struct loop *L);
void check_pending_restart(struct loop *L, double now);
void check_hot_standby(struct loop *L, double now);
void reload_config(struct loop *L);

/* loop_pgfiles.c */
/* True if the agent may connect to the config's standby_cluster remote
 * (primary_conninfo, pg_basebackup, pg_rewind's source): postgresql.tls is
 * on (libpq verifies the server's certificate and name and requires
 * channel binding before any password), or this node's own file
 * (bootstrap.dcs.standby_cluster) names that same host:port, the
 * operator's opt-in for a cluster without Postgres TLS. Anyone who can
 * write the config key could otherwise point the agent, and its
 * passwords, at a server of their choosing. Never the Postgres address
 * of a member of this cluster (a primary must not demote to follow its
 * own replica). Logs an ERROR once per refused host:port; false when the
 * config has no standby_cluster. */
bool standby_remote_usable(struct loop *L);
/* Following HA_REMOTE, is the remote our primary_conninfo names
 * (lm.following_remote) one this node no longer trusts, after a reload
 * took it out of the node file (or it became a member's address)? */
bool standby_remote_following_untrusted(struct loop *L);
/* At start-up, before the first read of etcd: the settings of this
 * member's copy of the last good config key in the data directory, when
 * there is one (else bootstrap.dcs stays). Logs what it loaded or why a
 * copy is ignored. */
void lastgood_load(struct loop *L);
/* After each read: a valid config key becomes the last good one (saved
 * in the data directory when it changed or the copy was replaced); an
 * invalid one is logged once per revision with the settings kept; a
 * missing one is restored by the leader from the last good one (never
 * from bootstrap.dcs). r: the read the view came from. */
void lastgood_track(struct loop *L, const struct etcd_range_result *r);
bool leader_conninfo(struct loop *L, const char *leader, bool replication, char *buf, size_t len);
bool write_pg_files(struct loop *L, bool standby, const char *upstream);
/* write_pg_files for a start: leaves out any parameter from the cluster's
 * config that Postgres refuses, so that the start does not fail on it. */
bool write_pg_files_for_start(struct loop *L, bool standby, const char *upstream);
/* At start: a WARN for tags that need something else to work (nostream
 * without restore_command never advances; replicatefrom with nostream is
 * ignored). */
void tags_startup_note(const struct baton_config *cfg);
bool write_pgpass(const struct loop *L);

/* loop_restart.c */
void take_requests(struct loop *L);
void due_scheduled_restart(struct loop *L);
bool pg_config_errors(struct loop *L, char *out, size_t len);
void judge_restart(struct loop *L);
void track_restart(struct loop *L, double now);

/* loop.c */
bool is_leader(const struct loop *L);

#endif
