/*
 * local_view.c - the one builder of the local view (see local_view.h).
 *
 * What it derives, beyond copying: the data directory's identity (and an
 * unreadable pg_control while nothing runs makes it invalid); whether this
 * is a former primary (not after a base backup, nor after a rewind against
 * the current leader); the timeline a replica last streamed on (pg_control
 * lags behind once its primary dies, exactly when an election needs it);
 * how long streaming has been lost and when replay last moved (rule 8);
 * a rewind that did not repair a failed start counting as a failed rewind;
 * and the failure records Postgres' answer makes obsolete.
 */
#include "agent/local_view.h"

#include <stdio.h>
#include <string.h>

void local_view_update(struct ha_local_view *l, struct local_memory *m, const struct local_obs *o,
                       const struct ha_cluster_view *c, double now, struct local_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	l->name = o->name;
	l->nofailover = o->nofailover;
	l->failover_priority = o->failover_priority;
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", o->replicatefrom ? o->replicatefrom : "");
	l->replicatefrom_confirmed = o->replicatefrom_confirmed;
	l->nostream = o->nostream;
	l->shutdown_requested = o->shutdown_requested;
	l->use_pg_rewind = o->use_pg_rewind;
	l->remove_data_on_rewind_failure = o->remove_data_on_rewind_failure;
	l->clone = o->clone;
	l->remove_data_on_diverged = o->remove_data_on_diverged;
	l->lease_id = o->lease_id;
	l->lease_sent = o->lease_sent;
	l->watchdog_required = o->watchdog_required;
	l->watchdog_ok = o->watchdog_ok;

	l->datadir = o->datadir;
	if (o->ctl_valid) {
		l->datadir_sysid = o->ctl_sysid;
		l->datadir_timeline = o->ctl_timeline;
		/* A fresh base backup carries the primary's pg_control ("in production")
		 * but also a backup_label: it is no former primary. */
		l->datadir_was_primary = o->ctl_was_primary && !o->backup_label &&
		                         !(m->rewound_for[0] && c->has_leader &&
		                           strcmp(m->rewound_for, c->leader) == 0);
	} else if (l->datadir == HA_DATADIR_VALID && !o->postmaster_running && o->job_running == HA_JOB_NONE) {
		l->datadir = HA_DATADIR_INVALID; /* unreadable pg_control */
	}

	l->job = o->job_running;
	l->job_failed = m->job_failed;
	l->job_failed_at = m->job_failed_at;
	l->rewind_failures = m->rewind_failures;
	l->bootstrap_given_up = m->boot_given_up;
	/* Rewound against this leader and still unable to start: the rewind did
	 * not repair it, which is what a failed rewind means to the core. */
	if (m->pg_start_failed && m->start_failure == HA_START_FAIL_DIVERGED && m->rewind_ok_for[0] && c->has_leader &&
	    strcmp(m->rewind_ok_for, c->leader) == 0)
		l->job_failed = HA_JOB_REWIND;

	l->pg_running = o->postmaster_running;
	l->pg_ready = false;
	l->pg_primary = false;
	if (l->pg_running) {
		if (o->pg_answered) {
			l->pg_ready = true;
			l->pg_primary = !o->in_recovery;
			if (!o->in_recovery)
				m->streamed_tl = 0;
			else if (o->wal_receiver_streaming && o->timeline > m->streamed_tl)
				m->streamed_tl = o->timeline;
			l->pg_timeline = o->timeline > m->streamed_tl ? o->timeline : m->streamed_tl;
			l->pg_lsn = o->current_lsn;
			l->pg_streaming = o->wal_receiver_streaming;
			if (o->system_identifier)
				l->datadir_sysid = o->system_identifier;
			ev->became_ready = !m->pg_was_ready;
			m->pg_was_ready = true;
			m->pg_start_failed = false;
			m->start_failures = 0;
			m->start_failure = HA_START_FAIL_UNKNOWN;
			m->start_error[0] = '\0';
			m->rewind_ok_for[0] = '\0';
			if (o->in_recovery && o->wal_receiver_streaming)
				m->job_failed = HA_JOB_NONE; /* whatever failed before, we stream now */
		} else {
			ev->stopped_answering = m->pg_was_ready;
			m->pg_was_ready = false;
		}
	}
	if (l->pg_ready && !l->pg_primary) {
		if (l->pg_streaming)
			m->not_streaming_since = 0;
		else if (m->not_streaming_since == 0)
			m->not_streaming_since = now;
	} else {
		m->not_streaming_since = 0;
	}
	l->pg_not_streaming_since = m->not_streaming_since;
	/* Replay progress: it moved, or nothing received waits for it. */
	l->pg_receive_lsn = l->pg_ready && !l->pg_primary ? o->receive_lsn : 0;
	l->pg_replay_lsn = l->pg_ready && !l->pg_primary ? o->replay_lsn : 0;
	l->pg_replay_paused = l->pg_ready && !l->pg_primary && o->replay_paused;
	if (l->pg_ready && !l->pg_primary) {
		if (m->replay_progress_at == 0 || o->replay_lsn != m->replay_seen || o->receive_lsn <= o->replay_lsn)
			m->replay_progress_at = now;
		m->replay_seen = o->replay_lsn;
	} else {
		m->replay_progress_at = 0;
		m->replay_seen = 0;
	}
	l->pg_replay_progress_at = m->replay_progress_at;
	l->hs_below_primary = l->pg_ready && !l->pg_primary && o->hs_below_primary;
	snprintf(l->hs_detail, sizeof(l->hs_detail), "%s", l->hs_below_primary ? o->hs_detail : "");
	l->pg_started_at = m->pg_started_at;
	l->pg_started_primary = m->pg_started_primary;
	l->pg_start_failed = m->pg_start_failed;
	l->pg_start_failure = m->start_failure;
	l->pg_start_failures = m->start_failures;
	snprintf(l->pg_start_error, sizeof(l->pg_start_error), "%s", m->start_error);
	snprintf(l->following, sizeof(l->following), "%s", m->following);
	snprintf(l->following_remote, sizeof(l->following_remote), "%s", m->following_remote);
	l->remote_diverged = m->remote_diverged;

	if (m->promote_requested && l->pg_ready && l->pg_primary) {
		ev->promoted = true;
		m->promote_requested = false;
		m->pg_started_primary = true;
		l->pg_started_primary = true;
	}
	l->promote_requested = m->promote_requested;
	l->wall_now = o->wall_now;
	l->leader_absent_since = o->leader_absent_since;
	l->failsafe_confirmed_at = o->failsafe_confirmed_at;
	l->failsafe_leader_seen_at = o->failsafe_leader_seen_at;
	l->reinit_requested = o->reinit_requested;
}
