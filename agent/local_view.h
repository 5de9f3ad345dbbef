/*
 * local_view.h - the one builder of the local view (ha.h's struct
 * ha_local_view): from what the loop observed this round, and what it
 * remembers of earlier rounds, to what ha_decide reads.
 *
 *     local_view_update(&view, &memory, &observations, &cluster, now, &events);
 *
 * Pure: the caller does the I/O (pg_controldata, pg_query_state, the
 * keeper) and fills struct local_obs; the builder derives the view, updates
 * its memory (streaming, replay progress, failed starts forgotten once
 * Postgres answers) and reports the edges the caller acts on (Postgres came
 * up, stopped answering, finished promoting). The agent's loop
 * (loop_view.c) and the simulation (tests/sim_world.c) both call it, so the
 * simulation checks the view production builds.
 */
#ifndef BATON_LOCAL_VIEW_H
#define BATON_LOCAL_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/ha.h"

/* What the loop remembers of its Postgres and jobs between rounds. The
 * executor writes it when it starts, stops or reaps (loop_execute.c), the
 * builder when Postgres answers. */
struct local_memory {
	double pg_started_at;        /* monotonic: the last start, or when it ended (failed) */
	bool pg_started_primary;     /* the last start was as primary (or it was promoted since) */
	bool pg_was_ready;           /* Postgres answered since it was started */
	bool promote_requested;      /* pg_promote() sent, not finished */
	double promote_sent_at;      /* monotonic: when */
	int promote_nudges;          /* SIGHUPs sent to end the startup process's retry sleep */
	char following[HA_NAME_MAX]; /* the leader in our primary_conninfo ("" = none) */
	char following_remote[300];  /* following HA_REMOTE: the "host:port" it named */
	bool remote_diverged;        /* ... and the server's log since its start says the other site's
				      * timeline forked off before our position (loop_execute.c) */
	bool remote_stuck_said;      /* ... replay stuck on WAL received from it: said once (loop_execute.c) */
	double remote_stuck_read_at; /* ... when the server's log was last read for it (monotonic) */
	/* failed starts, until Postgres answers again */
	bool pg_start_failed;
	enum ha_start_failure start_failure;
	char start_error[160];
	int start_failures; /* in a row */
	/* jobs */
	enum ha_job job_failed; /* the last job that failed (NONE after a success) */
	double job_failed_at;
	int rewind_failures;             /* in a row */
	bool boot_given_up;              /* a bootstrap from a backup failed (its data directory moved aside) */
	char rewind_ok_for[HA_NAME_MAX]; /* rewound against this leader, Postgres not up since */
	char rewound_for[HA_NAME_MAX];   /* the data directory was rewound or cloned from this leader */
	/* replication progress of a running replica */
	uint32_t streamed_tl; /* the timeline it last streamed on (0 = none since the start) */
	double not_streaming_since;
	uint64_t replay_seen;
	double replay_progress_at;
};

/* What the loop observed this round (all of it I/O the builder does not do). */
struct local_obs {
	/* the configuration */
	const char *name;
	bool nofailover; /* tag nofailover, or failover_priority 0 */
	int failover_priority;
	const char *replicatefrom;    /* tag replicatefrom (NULL = none; copied, cut at HA_NAME_MAX - 1) */
	bool replicatefrom_confirmed; /* ... its member's REST API confirmed its key (member_verify) */
	bool nostream;                /* tag nostream */
	bool use_pg_rewind;
	bool remove_data_on_rewind_failure;
	struct ha_clone_plan clone;   /* postgresql.create_replica_methods, and which failed last */
	bool remove_data_on_diverged; /* remove_data_directory_on_diverged_timelines */
	bool shutdown_requested;
	/* the keeper */
	int64_t lease_id;
	double lease_sent;
	bool watchdog_required, watchdog_ok;
	/* the data directory */
	enum ha_datadir datadir; /* as listed */
	bool ctl_valid;          /* pg_control read and still current */
	uint64_t ctl_sysid;
	uint32_t ctl_timeline; /* its latest checkpoint's */
	bool ctl_was_primary;  /* its state is "shut down" or "in production" */
	bool backup_label;     /* a fresh base backup (no former primary) */
	/* the children */
	bool postmaster_running;
	enum ha_job job_running; /* HA_JOB_NONE: none */
	/* Postgres' answer (postmaster running only) */
	bool pg_answered;
	bool in_recovery;
	uint32_t timeline;
	uint64_t current_lsn, receive_lsn, replay_lsn;
	bool replay_paused;
	bool wal_receiver_streaming;
	uint64_t system_identifier; /* 0 = not known */
	bool hs_below_primary;      /* started with a hot-standby parameter below pg_controldata's */
	char hs_detail[120];
	/* the rest of the loop's memory */
	double wall_now;
	double leader_absent_since;
	double failsafe_confirmed_at, failsafe_leader_seen_at;
	bool reinit_requested;
};

/* Edges of this round, for the caller's logs, callbacks and keys. */
struct local_events {
	bool became_ready;      /* Postgres answers, for the first time since it was started */
	bool stopped_answering; /* it answered last round, not now */
	bool promoted;          /* a promotion finished: it runs as primary now */
};

/* Updates the view l (the last round's, or zeroed) and the memory m from
 * the observations o, the cluster view c (the leader) and the monotonic
 * time now; ev gets the edges. Pure. */
void local_view_update(struct ha_local_view *l, struct local_memory *m, const struct local_obs *o,
                       const struct ha_cluster_view *c, double now, struct local_events *ev);

#endif
