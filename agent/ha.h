/*
 * ha.h - the HA decision core: a pure function from what etcd says (the
 * cluster view) and what this node knows of itself (the local view) to one
 * action for the loop to carry out.
 *
 *     struct ha_action a = ha_decide(&cluster, &local, now);
 *
 * No I/O, no clock reads, no globals: `now` is the caller's monotonic clock,
 * the same clock as every time stored in the views. Every rule of DESIGN.md
 * is a row of the tests in tests/check_ha.c. The loop (loop.c) gathers the
 * views, calls ha_decide, and executes the action; every action is safe to
 * repeat, so a crash halfway is handled by running the loop again.
 */
#ifndef BATON_HA_H
#define BATON_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/ha_clone.h"

#define HA_NAME_MAX 64
#define HA_MAX_MEMBERS 32
#define HA_SYNC_MAX 8        /* synchronous standbys recorded in the sync key at most */
#define HA_TAGS_JSON_MAX 512 /* a member's custom tags as JSON text, at most (with the NUL) */
/* The upstream of a standby leader: not a member but the other site's
 * primary, standby_cluster.host:port (no member name holds an '@'). */
#define HA_REMOTE "@standby_cluster"

/* What a member publishes in members/<name> (JSON), plus what the loop
 * learned by asking its REST API just now. */
struct ha_member {
	char name[HA_NAME_MAX];
	char role[16];  /* "primary", "replica", "uninitialized", "stopped" */
	char state[32]; /* "running", "starting", "stopped", "bootstrapping", "cloning", ... */
	char host[128]; /* Postgres connect address */
	int port;
	char api_url[160]; /* "http://host:port" */
	uint32_t timeline;
	uint64_t lsn; /* published: primary current LSN, replica received/replayed */
	bool nofailover;
	bool nosync;                        /* tag nosync: never chosen as a synchronous standby */
	int failover_priority;              /* tag failover_priority: higher wins LSN ties (a member whose tag is 0
	                       * publishes nofailover = true instead) */
	bool pending_restart;               /* Postgres runs with settings that need a restart to apply */
	bool clonefrom;                     /* tag clonefrom: new replicas prefer a base backup from this member */
	bool noloadbalance;                 /* tag noloadbalance: /replica and /read-only answer 503 on it */
	bool nostream;                      /* tag nostream: replays from restore_command only, never streams */
	char replicatefrom[HA_NAME_MAX];    /* tag replicatefrom: the member it wants to stream from ("" none) */
	char custom_tags[HA_TAGS_JSON_MAX]; /* every other tag, as a compact JSON object ("" = none) */
	/* Filled by the loop only while it looks for a new leader: */
	bool polled;          /* the loop asked this member's REST API this round */
	bool reachable;       /* ... and it answered */
	bool healthy;         /* ... and its Postgres is running and answering */
	bool polled_primary;  /* ... and it says its Postgres runs as a primary */
	bool polled_starting; /* ... and its Postgres is not up yet but has data (it may be ahead of us) */
	uint64_t polled_lsn;  /* ... the LSN it reported */
	uint32_t polled_timeline;
};

/* The config key as the last read found it. */
enum ha_config_key {
	HA_CONFIG_VALID,   /* present and parsed */
	HA_CONFIG_MISSING, /* no config key */
	HA_CONFIG_INVALID, /* present, refused (named in the read's warnings) */
};

struct ha_cluster_view {
	bool etcd_ok; /* the read of the cluster's keys succeeded this loop */

	/* initialize key */
	bool init_key_present;
	bool init_in_progress;        /* present, attached to a lease: a bootstrap runs */
	char init_owner[HA_NAME_MAX]; /* who bootstraps (value while in progress) */
	uint64_t sysid;               /* the cluster's system identifier (0 until bootstrapped) */

	/* leader key */
	bool has_leader;
	char leader[HA_NAME_MAX];
	int64_t leader_lease; /* lease ID the leader key is attached to */

	/* status key: the leader's last known position */
	uint64_t leader_lsn;
	uint32_t leader_timeline;

	/* config key: its settings, or while it is invalid or missing the last
	 * good ones (bootstrap.dcs before any); config_key says which */
	enum ha_config_key config_key;
	int64_t config_revision; /* the key's mod_revision when present */
	/* config_key is not valid in an initialized cluster and this member
	 * never read a valid one (bootstrap.dcs is in force): whether the
	 * cluster is a standby cluster, paused or in synchronous mode is
	 * unknown, so it neither takes the leader key nor promotes. */
	bool config_unknown;
	double ttl, loop_wait, retry_timeout;
	int64_t maximum_lag_on_failover;
	bool paused;                     /* maintenance mode: no failover, no Postgres actions */
	bool failsafe_mode;              /* etcd down: a primary confirmed by every member it last saw stays primary */
	bool synchronous_mode;           /* only a member the sync key names may take the leader key */
	bool synchronous_mode_strict;    /* no synchronous standby left: writes block rather than go asynchronous */
	int synchronous_node_count;      /* standbys every commit waits for (default 1) */
	bool synchronous_quorum;         /* ANY n of every eligible standby instead of FIRST n */
	bool check_timeline;             /* candidates must be on leader_timeline exactly (not only not behind) */
	int64_t maximum_lag_on_syncnode; /* > 0: a standby lagging more is not chosen as synchronous */
	bool standby_cluster;            /* config standby_cluster: the leader is a standby leader, a replica of
					  * standby_host:standby_port (HA_REMOTE), never promoted */
	char standby_host[256];
	int standby_port;
	bool standby_remote_usable;     /* the loop may connect to standby_host:standby_port: postgresql.tls
				     * verifies it, or this node's own file names that host:port (without
				     * either no password goes there, and a primary does not demote for it) */
	char standby_unusable_why[200]; /* when not usable: why, for the log ("" = not proven by
					 * postgresql.tls or the node file) */

	/* sync key: written by the leader; who has every acknowledged write */
	bool has_sync;
	char sync_leader[HA_NAME_MAX]; /* the leader that wrote it */
	size_t n_sync;
	char sync_standbys[HA_SYNC_MAX][HA_NAME_MAX];
	int sync_quorum; /* quorum commit: every acknowledged commit is on at least this many of
				    * them (0 = no promise yet); 0 outside quorum mode, where it is on all */

	/* switchover key: a planned switchover or a manual failover */
	bool has_switchover;
	char sw_from[HA_NAME_MAX]; /* the leader it applies to ("" = whoever leads) */
	char sw_to[HA_NAME_MAX];   /* the candidate ("" = the best one, chosen by the leader) */
	double sw_scheduled_at;    /* wall clock, unix seconds (0 = now) */
	bool sw_failover;          /* manual failover: the candidate may take the key when the leader is gone
				    * even if a peer is ahead */

	size_t n_members;
	struct ha_member members[HA_MAX_MEMBERS];
};

/* What the local data directory is. */
enum ha_datadir { HA_DATADIR_EMPTY, HA_DATADIR_VALID, HA_DATADIR_INVALID };

/* Long operation the loop runs as a child process (at most one at a time). */
enum ha_job { HA_JOB_NONE, HA_JOB_BOOTSTRAP, HA_JOB_CLONE, HA_JOB_REWIND };

/* Why the last start of Postgres failed, from the server's own log (rule 9). */
enum ha_start_failure {
	HA_START_FAIL_UNKNOWN,  /* the log said nothing we could read */
	HA_START_FAIL_DIVERGED, /* "requested timeline N is not a child of this server's history": pg_rewind */
	HA_START_FAIL_PARAMS,   /* "insufficient parameter settings": start with pg_controldata's values */
	HA_START_FAIL_OTHER,    /* anything else: report it, retry with backoff, never rewrite data */
};

/* A member's role and state: enums inside the agent, strings only at its
 * edges (the member key in etcd, the REST API, batonctl, callbacks), by
 * ha_role_name / ha_state_name and back by ha_role_from_name /
 * ha_state_from_name (UNKNOWN for anything else). */
enum ha_role { HA_ROLE_UNKNOWN, HA_ROLE_PRIMARY, HA_ROLE_REPLICA, HA_ROLE_UNINITIALIZED, HA_ROLE_STOPPED };
enum ha_state {
	HA_STATE_UNKNOWN,
	HA_STATE_RUNNING,
	HA_STATE_STARTING,
	HA_STATE_STOPPED,
	HA_STATE_START_FAILED,
	HA_STATE_BOOTSTRAPPING,
	HA_STATE_CLONING,
	HA_STATE_REWINDING,
	HA_STATE_PROMOTING,
	HA_STATE_REPLAY_PAUSED, /* the replay states of rule 8 (enum ha_replay) */
	HA_STATE_STUCK_REPLAY,
	HA_STATE_NOT_STREAMING,
};
const char *ha_role_name(enum ha_role r);
enum ha_role ha_role_from_name(const char *name);
const char *ha_state_name(enum ha_state s);
enum ha_state ha_state_from_name(const char *name);

/* What a running replica's replay is doing (DESIGN.md rule 8). */
enum ha_replay {
	HA_REPLAY_OK,            /* replaying what it receives (or nothing waits) */
	HA_REPLAY_PAUSED,        /* pg_is_wal_replay_paused() */
	HA_REPLAY_STUCK,         /* received WAL waits and replay has not moved for ha_replay_bound() */
	HA_REPLAY_NOT_STREAMING, /* a leader is ahead and no WAL arrives for ha_replay_bound() */
};

struct ha_local_view {
	const char *name;
	bool nofailover;
	int failover_priority;   /* tag: higher wins LSN ties (the loop sets nofailover when it is 0) */
	bool watchdog_required;  /* watchdog.mode = "required" ... */
	bool watchdog_ok;        /* ... and the watchdog device can be armed */
	bool shutdown_requested; /* SIGTERM/SIGINT received */
	bool use_pg_rewind;
	bool remove_data_on_rewind_failure;
	bool remove_data_on_diverged; /* diverged and use_pg_rewind off: reinit rather than wait */

	/* our lease (the one the member key and, when leader, the leader key use) */
	int64_t lease_id;  /* 0 = none yet / lost */
	double lease_sent; /* monotonic time we *sent* the last keepalive that succeeded (or the grant) */

	/* data directory */
	enum ha_datadir datadir;
	uint64_t datadir_sysid;   /* when VALID */
	bool datadir_was_primary; /* pg_control: "shut down" or "in production" */
	uint32_t datadir_timeline;

	/* long operation in progress / last result */
	enum ha_job job;        /* running now */
	enum ha_job job_failed; /* the last job that failed (NONE after a success) */
	double job_failed_at;   /* monotonic time the last job failed (0 = none): the retry backoff */
	int rewind_failures;    /* failed pg_rewind attempts in a row (retried up to 3 times) */
	/* our bootstrap from a backup failed: no racing for initialize until restarted */
	bool bootstrap_given_up;

	/* postgresql.create_replica_methods and which one failed last (ha_clone.h) */
	struct ha_clone_plan clone;

	/* Postgres */
	bool pg_running;                        /* the postmaster child is alive */
	bool pg_ready;                          /* ... and answers queries (pg_state below is valid) */
	double pg_started_at;                   /* monotonic time of the last start */
	bool pg_started_primary;                /* the last start was as a primary (no standby.signal) */
	bool pg_start_failed;                   /* the last start ended with the postmaster exiting before ready */
	enum ha_start_failure pg_start_failure; /* ... diagnosed from the server's log */
	char pg_start_error[160];               /* ... the server's FATAL line (or what else it said) */
	int pg_start_failures; /* failed starts in a row (backoff); pg_started_at = when the last ended */
	bool pg_primary;       /* ready and not in recovery */
	uint32_t pg_timeline;
	uint64_t pg_lsn;                 /* primary: current; replica: max(received, replayed): ranks healthy
				        * candidates (a promotion replays all it received); lag, health and
				        * maximum_lag_on_failover count from pg_replay_lsn */
	bool pg_streaming;               /* replica: wal receiver streaming */
	uint64_t pg_receive_lsn;         /* replica: pg_last_wal_receive_lsn() */
	uint64_t pg_replay_lsn;          /* replica: pg_last_wal_replay_lsn() (0 = not a replica: use pg_lsn) */
	bool pg_replay_paused;           /* replica: pg_is_wal_replay_paused() */
	double pg_replay_progress_at;    /* replica: monotonic time replay last moved, or had nothing waiting */
	bool hs_below_primary;           /* replica: runs with a hot-standby parameter below pg_controldata's */
	char hs_detail[120];             /* ... which one ("max_connections 100 < 150") */
	double pg_not_streaming_since;   /* replica: monotonic time streaming was last seen lost (0 = streaming) */
	char following[HA_NAME_MAX];     /* the member named in our primary_conninfo ("" = none) */
	char following_remote[300];      /* following HA_REMOTE: the "host:port" our primary_conninfo names */
	bool following_remote_untrusted; /* ... which this node no longer trusts (taken out of its file, or the
	                                  * address of a member): the loop's standby_remote_trusted */
	bool remote_diverged;            /* ... whose timeline forked off before our position (the server's log
					  * says so while it runs): pg_rewind against it */
	char replicatefrom[HA_NAME_MAX]; /* tag replicatefrom: stream from this member ("" = the leader) */
	bool replicatefrom_confirmed;    /* ... whose REST API confirmed its key (agent/member_verify.h) */
	bool nostream;                   /* tag nostream: no primary_conninfo, restore_command only */
	bool promote_requested;          /* we asked for promotion; waiting for it to finish */

	double wall_now;              /* wall clock, unix seconds (scheduled switchovers only) */
	double leader_absent_since;   /* monotonic time the leader key was first seen absent (0 = present) */
	double failsafe_confirmed_at; /* leader: start of the last round in which every member confirmed us (0 none) */
	double failsafe_leader_seen_at; /* replica: when we last confirmed the leader's failsafe heartbeat (0 none) */
	bool restart_requested;         /* an operator asked for a Postgres restart */
	bool reinit_requested;          /* an operator asked to wipe and re-clone this member */
	bool restart_in_progress;       /* we stopped Postgres to start it again (an operator's restart, our
					* switchover): it is started again, and follows the leader, also in
					* maintenance mode */
};

enum ha_action_kind {
	HA_WAIT,             /* nothing to change */
	HA_FATAL,            /* refuse to go on (e.g. data directory of another cluster); agent exits 1 */
	HA_RACE_INIT,        /* no cluster yet: try to take the initialize key */
	HA_BOOTSTRAP,        /* we own the initialize key: run/continue initdb + first start */
	HA_CLONE,            /* empty data directory: pg_basebackup from the leader */
	HA_REINIT,           /* rewind failed and config allows: remove data directory, then clone */
	HA_START_REPLICA,    /* Postgres down: start it as a replica of `leader` ("" = no upstream) */
	HA_START_PRIMARY,    /* Postgres down, we hold the key: start it as the primary */
	HA_FOLLOW,           /* running replica: point primary_conninfo at `leader`, reload */
	HA_ACQUIRE,          /* take the leader key (create it, or move our own name to our lease) */
	HA_PROMOTE,          /* we hold the key, our Postgres is a replica: promote it */
	HA_LEAD,             /* we hold the key and are primary: publish status */
	HA_DEMOTE,           /* we are primary without a valid key: stop Postgres now (immediate) */
	HA_REWIND,           /* Postgres down (or to be stopped), diverged from `leader`: pg_rewind */
	HA_RELEASE,          /* we hold the key but cannot serve: delete the leader key */
	HA_SWITCHOVER,       /* leader: hand the key to `leader` ("" = best candidate): checkpoint, stop,
			   * wait until the candidate has our last WAL, release the key */
	HA_RESTART,          /* operator asked: stop Postgres (fast); the next loop starts it in the same role */
	HA_REFUSE,           /* an operator's request this member must not carry out (reinit of the leader):
			   * forget it, say why */
	HA_CLEAR_SWITCHOVER, /* leader: as LEAD, and the switchover key no longer applies (it named us,
			      * or another leader): delete it */
	HA_STANDBY_LEAD,     /* standby cluster: we hold the key and our Postgres replicates from the other
			      * site (HA_REMOTE): publish status, never promote */
	HA_DEMOTE_CLUSTER,   /* standby_cluster was set while we run as the primary with the key: stop
			      * Postgres (fast, so every replica gets the final WAL); the next loop starts
			      * it as a replica of HA_REMOTE */
	HA_SHUTDOWN,         /* shutdown requested: stop Postgres, then release our keys */
};

struct ha_action {
	enum ha_action_kind kind;
	char leader[HA_NAME_MAX]; /* the upstream for CLONE, START_REPLICA, FOLLOW, REWIND */
	char reason[200];         /* one line for the log, says what and why */
	int rule;                 /* the rule of ha_decide that returned it (1..12, see ha.c) */
	int clone_method;         /* CLONE, REINIT: the index in the local view's clone plan to run */
};

/* Seconds before a lease could expire at which a leader must stop writes:
 * deadline = lease_sent + ttl - ha_lease_margin(ttl). */
/* May the agent connect to standby_cluster's host:port (and so send it the
 * replication and superuser passwords)? Yes when Postgres TLS proves the
 * server (pg_tls: postgresql.tls, verify-full with channel binding), or
 * when this node's own file names the same host (case-insensitive) and
 * port (own_host NULL: it names none). The config key alone, which any
 * etcd writer or PATCH /config can set, never proves a remote. Pure. */
bool ha_standby_remote_proven(bool pg_tls, const char *own_host, int own_port, const char *host, int port);
/* The member of this cluster whose Postgres address (its member key's
 * conn_url) is host:port, host compared case-insensitively; NULL: none.
 * A standby_cluster remote that is a member of this very cluster is never
 * used: a primary must not demote to follow its own replica. Pure. */
const struct ha_member *ha_member_at(const struct ha_cluster_view *c, const char *host, int port);
/* Is member m the standby leader (Patroni's role)? The holder of the
 * leader key in a standby cluster while its Postgres is not a primary (a
 * primary that refused an unusable standby_cluster remote stays the
 * writable leader), or a holder publishing role standby_leader as
 * Patroni's members do. Pure. */
bool ha_is_standby_leader(const struct ha_cluster_view *c, const struct ha_member *m);
double ha_lease_margin(double ttl);
/*
 * The leader's deadline (DESIGN.md rule 2): the one formula behind the
 * loop's DEMOTE (ha_lease_deadline), the keeper thread's own fencing, the
 * deadline it hands the fence process, and the simulation's fence.
 * lease_sent: when the last successful keepalive (or the grant) of lease
 * lease_id was sent; failsafe_at: start of the last failsafe round every
 * member confirmed, to be passed (else 0) only while failsafe_mode is on
 * and etcd cannot be asked. 0 = no deadline (nothing may write).
 */
double ha_deadline(int64_t lease_id, double lease_sent, double ttl, double failsafe_at);
/*
 * Seconds between two lease keepalives. Rule 2 counts the deadline from
 * the last keepalive *sent*, so the interval never bears on safety, only
 * on how long an etcd outage the leader outlives: after a keepalive at t
 * the next goes at t + interval and is retried until the deadline
 * t + ttl - margin, so an outage shorter than ttl - margin - interval
 * never demotes it. retry_timeout is the outage a leader must survive
 * (DESIGN.md), and etcd's disk stalls for up to 1 s on a busy machine,
 * hence interval = ttl - margin - max(retry_timeout, 1 s): 2 s at the
 * defaults (ttl 5, retry_timeout 2), half of etcd's keepalive load of the
 * old min(loop_wait, ttl / 4). Never below that old value (0.5 s at
 * ttl 2). With a usable
 * watchdog (watchdog_margin >= 0; < 0 = none) at most
 * (ttl - watchdog_margin - 1) / 2, so that its timeout,
 * floor(ttl - margin - 2 * interval), stays at least 1 s. Pure.
 */
double ha_keepalive_interval(double ttl, double loop_wait, double retry_timeout, double watchdog_margin);
/* ha_deadline for the local view's lease (0 if no lease). */
double ha_lease_deadline(const struct ha_cluster_view *c, const struct ha_local_view *l);

/* A replica that has not streamed for this long while its timeline differs
 * from the leader's is taken to have diverged and is rewound. */
double ha_diverged_after(const struct ha_cluster_view *c);

/*
 * May pg_rewind use this source now? pg_rewind (Postgres 15) takes the
 * source's timeline from the latest checkpoint in its pg_control. A
 * standby's pg_control moves to a new timeline only with a restartpoint
 * there (a primary's with its first checkpoint after the promotion); until
 * then pg_rewind compares the wrong timeline, says "no rewind required",
 * and the target still cannot follow the source. So:
 *   READY       the source's checkpoint is on its timeline (or nothing is
 *               known to the contrary): run pg_rewind;
 *   CHECKPOINT  it lags and no CHECKPOINT was asked of the source in this
 *               attempt: ask for one (on a standby it restart-points once
 *               a checkpoint record of the new timeline was replayed), then
 *               ask again;
 *   WAIT        it still lags after the CHECKPOINT: no rewind now, the next
 *               loop tries again;
 *   GIVE_UP     it has lagged for ha_rewind_source_bound() seconds: this
 *               rewind attempt failed (the retries of a failed pg_rewind
 *               follow).
 * ckpt_tl: the source's checkpoint timeline; source_tl: the timeline it
 * says it is on; known_tl: the timeline the cluster last saw it on (its
 * member key, 0 = unknown); waited: seconds this attempt has waited
 * already. why gets one line for the operator. Pure.
 */
enum ha_rewind_source {
	HA_REWIND_SOURCE_READY,
	HA_REWIND_SOURCE_CHECKPOINT,
	HA_REWIND_SOURCE_WAIT,
	HA_REWIND_SOURCE_GIVE_UP
};
enum ha_rewind_source ha_rewind_source_check(const char *source, uint32_t ckpt_tl, uint32_t source_tl,
                                             uint32_t known_tl, bool checkpoint_asked, double waited, double bound,
                                             char *why, size_t len);
/* How long a rewind waits for its source's checkpoint to reach the source's
 * timeline: max(60 s, 10 * loop_wait). */
double ha_rewind_source_bound(const struct ha_cluster_view *c);

/* Replay that has not moved for this long while WAL waits is stuck:
 * max(2 * loop_wait, 5 s). */
double ha_replay_bound(const struct ha_cluster_view *c);
/* What the local replica's replay does (HA_REPLAY_OK for a primary or a
 * Postgres that is not up); why (may be NULL) gets one line for logs and
 * the REST API. Pure. */
enum ha_replay ha_replay_check(const struct ha_cluster_view *c, const struct ha_local_view *l, double now, char *why,
                               size_t len);
/* The member state a replica publishes for it: "running", "replay paused",
 * "stuck replay", "not streaming". */
const char *ha_replay_state(enum ha_replay r);
/* The role this member publishes: primary or replica while Postgres
 * answers, else uninitialized (no data) or stopped. Pure. */
enum ha_role ha_role_of(bool pg_ready, bool pg_primary, enum ha_datadir datadir);
/* The state this member publishes: the running job, a promotion, a stopped
 * or failed postmaster, starting, or for an answering replica what its
 * replay does. Pure. */
enum ha_state ha_state_of(enum ha_job running, bool promoting, bool postmaster_running, bool start_failed,
                          bool pg_ready, bool pg_primary, enum ha_replay replay);
/* Is a published member state one of the unhealthy replay states above? */
bool ha_replay_state_unhealthy(const char *state);
/* Seconds to wait after the n-th failed start in a row before the next:
 * 0 for the first failure whose cause a start repairs, else 3 s doubling
 * up to 60 s. */
double ha_start_backoff(enum ha_start_failure why, int failures);

/* Seconds after a failed job (initdb, pg_basebackup, pg_rewind) before the
 * core runs it again; a failed bootstrap also gave up the initialize key,
 * and the race for it waits three times as long (another member may). */
double ha_job_backoff(enum ha_job kind);

/* The decision. Pure; never fails. */
struct ha_action ha_decide(const struct ha_cluster_view *c, const struct ha_local_view *l, double now);

/* "wait", "acquire", ... */
const char *ha_action_name(enum ha_action_kind k);

/* Synchronous mode: may this member take the leader key? (true outside
 * synchronous mode, or while no sync key names a leader.) */
bool ha_sync_allows(const struct ha_cluster_view *c, const char *name);
/* Synchronous mode with quorum commit (config, or a key written under it). */
bool ha_sync_quorum_mode(const struct ha_cluster_view *c);

/*
 * Synchronous replication, managed by the primary each loop. The invariant:
 * every member the sync key names has every commit acknowledged since it
 * was recorded. So a standby goes into synchronous_standby_names (Postgres)
 * before it goes into the key, and is recorded only once it is synchronous
 * and has flushed everything written before Postgres began to wait for it;
 * it leaves the key before it leaves Postgres. ha_sync_plan returns the
 * next step towards the wanted state; the loop carries it out and asks
 * again, until HA_SYNC_NONE.
 */
struct ha_sync_standby {
	char name[HA_NAME_MAX]; /* application_name (the member name) */
	bool streaming;         /* state = streaming */
	bool sync;              /* sync_state = sync or quorum */
	uint64_t flush_lsn;
};

struct ha_sync_input {
	size_t n; /* pg_stat_replication rows */
	struct ha_sync_standby standbys[HA_MAX_MEMBERS];
	size_t n_pg; /* synchronous_standby_names in force ... */
	char pg[HA_SYNC_MAX][HA_NAME_MAX];
	bool pg_star;          /* ... or '*' (strict, nobody to wait for) */
	int pg_quorum;         /* ... as ANY pg_quorum (...) (0: FIRST n_pg) */
	uint64_t pg_since_lsn; /* primary LSN once that setting was in force */
	uint64_t primary_lsn;  /* the primary's current LSN (maximum_lag_on_syncnode; 0: unknown) */
};

enum ha_sync_step_kind { HA_SYNC_NONE, HA_SYNC_SET_KEY, HA_SYNC_SET_PG };

struct ha_sync_step {
	enum ha_sync_step_kind kind;
	size_t n; /* SET_KEY: the key's new list; SET_PG: Postgres' new list */
	char names[HA_SYNC_MAX][HA_NAME_MAX];
	bool star;  /* SET_PG with n == 0: '*' (strict) rather than '' (asynchronous) */
	int quorum; /* SET_KEY: the key's quorum; SET_PG: ANY quorum (...) (0: FIRST n) */
	char reason[200];
};

/* The next step for leader `self` (pure). */
struct ha_sync_step ha_sync_plan(const struct ha_cluster_view *c, const char *self, const struct ha_sync_input *in);

/*
 * Switchover: what a peer's REST API said when the leader asked it just now
 * (the executor asks; the core judges and chooses).
 */
struct ha_peer_status {
	bool answered; /* false: error says why */
	char error[160];
	bool pg_running;
	char role[16];  /* "primary", "replica", ... as published */
	char state[32]; /* "running", "replay paused", ... */
	uint32_t timeline;
	uint64_t lsn;
};
/* May member `name` take over from us (the leader, l) now, by its fresh
 * status st (NULL: not asked)? A member of the cluster with a REST API, not
 * nofailover, answering, a running replica replaying what it receives
 * (rule 8), on our timeline, within maximum_lag_on_failover of our LSN.
 * why gets the reason when not. Pure. */
bool ha_switchover_ready(const struct ha_cluster_view *c, const struct ha_local_view *l, const char *name,
                         const struct ha_peer_status *st, char *why, size_t len);
/* The candidate for a switchover that names none, among n asked peers
 * (names[i] answered st[i]): of the ready ones, in synchronous mode one the
 * sync key allows first, then the most advanced (LSN), then the order of a
 * failover among equals (higher failover_priority, then the smaller name).
 * Returns its index, -1 when none is ready. Pure. */
int ha_switchover_choose(const struct ha_cluster_view *c, const struct ha_local_view *l, const char *const names[],
                         const struct ha_peer_status st[], size_t n);

/*
 * Where this replica streams from (Patroni's tags replicatefrom and
 * nostream): "" with nostream (no primary_conninfo at all); else the member
 * the replicatefrom tag names when it is a running replica (role replica,
 * state running) whose key its REST API confirmed
 * (l->replicatefrom_confirmed), not the leader, and whose own replicatefrom
 * chain does not lead back to us; else the leader (c->leader, "" when there
 * is none). The loop asks every round, so a cascade broken by the
 * upstream's death falls back to the leader and is set up again when it
 * returns. why (may be NULL) gets one line when the tag is set but not
 * followed ("node2 is gone"), else "". Pure.
 */
const char *ha_upstream(const struct ha_cluster_view *c, const struct ha_local_view *l, char *why, size_t len);
/* The member that member m streams from as the cluster sees it: the same
 * rule for another member, judged from its published tags (without the
 * REST confirmation only its own agent can ask). "" for nostream or no
 * leader. For the slots the primary keeps. Pure. */
const char *ha_member_upstream(const struct ha_cluster_view *c, const struct ha_member *m);

/* Find a member by name (NULL if absent). */
const struct ha_member *ha_find_member(const struct ha_cluster_view *c, const char *name);

#endif
