/*
 * check_ha.c - the HA decision core as a table of (cluster view, local view)
 * -> expected action.
 *
 * Every row starts from the same healthy picture: a three-member cluster
 * "node1" (leader, primary), "node2" (this node, a streaming replica of
 * node1) and "node3"; each row's setup function changes what the scenario
 * needs and names the action ha_decide must return.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ha.h"
#include "agent/local_view.h"

#define NOW 1000.0

static void add_member(struct ha_cluster_view *c, const char *name, const char *role, uint64_t lsn)
{
	struct ha_member *m = &c->members[c->n_members++];

	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->role, sizeof(m->role), "%s", role);
	snprintf(m->state, sizeof(m->state), "running");
	m->timeline = 1;
	m->lsn = lsn;
}

static void base(struct ha_cluster_view *c, struct ha_local_view *l)
{
	memset(c, 0, sizeof(*c));
	memset(l, 0, sizeof(*l));
	c->etcd_ok = true;
	c->init_key_present = true;
	c->sysid = 42;
	c->has_leader = true;
	snprintf(c->leader, sizeof(c->leader), "node1");
	c->leader_lease = 100;
	c->leader_lsn = 5000;
	c->leader_timeline = 1;
	c->ttl = 5;
	c->loop_wait = 1;
	c->retry_timeout = 2;
	c->maximum_lag_on_failover = 1048576;
	add_member(c, "node1", "primary", 5000);
	add_member(c, "node2", "replica", 5000);
	add_member(c, "node3", "replica", 4000);

	l->name = "node2";
	l->use_pg_rewind = true;
	l->lease_id = 200;
	l->lease_sent = NOW - 0.5;
	l->datadir = HA_DATADIR_VALID;
	l->datadir_sysid = 42;
	l->datadir_timeline = 1;
	l->pg_running = true;
	l->pg_ready = true;
	l->pg_timeline = 1;
	l->pg_lsn = 5000;
	l->pg_streaming = true;
	snprintf(l->following, sizeof(l->following), "node1");
}

/* This node (node2) is the leader and primary. */
static void as_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = l->lease_id;
	snprintf(c->members[0].role, sizeof(c->members[0].role), "replica");
	snprintf(c->members[1].role, sizeof(c->members[1].role), "primary");
	l->pg_primary = true;
	l->pg_started_primary = true;
	l->following[0] = '\0';
}

/* The leader key expired; peers were polled and answered. */
static void leader_gone(struct ha_cluster_view *c, struct ha_local_view *l)
{
	c->has_leader = false;
	c->leader[0] = '\0';
	c->leader_lease = 0;
	for (size_t i = 0; i < c->n_members; i++) {
		struct ha_member *m = &c->members[i];
		m->polled = true;
		m->reachable = strcmp(m->name, "node1") != 0; /* the old leader is dead */
		m->healthy = m->reachable;
		m->polled_lsn = m->lsn;
		m->polled_timeline = 1;
	}
	(void)l;
}

/* ---- rows ---- */

static void s_steady_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	(void)l;
}
static void s_steady_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
}

static void s_shutdown_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->shutdown_requested = true;
}
static void s_shutdown_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->shutdown_requested = true;
}

/* Rule 2: past the deadline a primary demotes, whatever etcd says. */
static void s_deadline_passed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->lease_sent = NOW - 4.5; /* ttl 5, margin 1 -> deadline NOW - 0.5 */
}
static void s_deadline_not_yet(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->lease_sent = NOW - 3.9;
}
static void s_deadline_passed_etcd_down(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->etcd_ok = false;
	l->lease_sent = NOW - 4.1;
}
static void s_etcd_down_within_lease(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->etcd_ok = false;
	l->lease_sent = NOW - 2.0;
}
static void s_lease_lost(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->lease_id = 0;
}
static void s_other_holds_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	snprintf(c->leader, sizeof(c->leader), "node3");
	c->leader_lease = 300;
}
static void s_started_primary_not_ready_other_leads(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->pg_ready = false;
	l->pg_primary = false;
	snprintf(c->leader, sizeof(c->leader), "node3");
}
static void s_promoting_without_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	l->promote_requested = true;
	l->lease_sent = NOW - 10;
	(void)c;
}
static void s_key_vanished_while_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->has_leader = false;
	c->leader[0] = '\0';
}
static void s_key_on_old_lease_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->leader_lease = 99;
}

/* Rule 3/never promote without etcd. */
static void s_etcd_down_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->etcd_ok = false;
}
static void s_etcd_down_pg_down(struct ha_cluster_view *c, struct ha_local_view *l)
{
	c->etcd_ok = false;
	l->pg_running = false;
	l->pg_ready = false;
}

/* Bootstrap race. */
static void s_fresh_empty(struct ha_cluster_view *c, struct ha_local_view *l)
{
	memset(c->members, 0, sizeof(c->members));
	c->n_members = 0;
	c->init_key_present = false;
	c->sysid = 0;
	c->has_leader = false;
	l->datadir = HA_DATADIR_EMPTY;
	l->pg_running = l->pg_ready = false;
}
static void s_fresh_with_data(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_fresh_empty(c, l);
	l->datadir = HA_DATADIR_VALID;
}
static void s_bootstrap_ours(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_fresh_empty(c, l);
	c->init_key_present = true;
	c->init_in_progress = true;
	snprintf(c->init_owner, sizeof(c->init_owner), "node2");
}
static void s_bootstrap_theirs(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_ours(c, l);
	snprintf(c->init_owner, sizeof(c->init_owner), "node1");
}
static void s_bootstrap_ours_running_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_ours(c, l);
	c->has_leader = true;
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = l->lease_id;
	l->datadir = HA_DATADIR_VALID;
	l->pg_running = l->pg_ready = l->pg_primary = l->pg_started_primary = true;
}

/* Clone / join. */
static void s_empty_with_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->datadir = HA_DATADIR_EMPTY;
	l->pg_running = l->pg_ready = false;
}
static void s_empty_no_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_empty_with_leader(c, l);
	c->has_leader = false;
}
static void s_empty_but_holds_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_empty_with_leader(c, l);
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = l->lease_id;
}
static void s_job_running(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_empty_with_leader(c, l);
	l->job = HA_JOB_CLONE;
}
/* pg_basebackup's half-copied directory is not "invalid" while it runs. */
static void s_clone_half_done(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_job_running(c, l);
	l->datadir = HA_DATADIR_INVALID;
}

/* Rule 6. */
static void s_other_cluster(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->datadir_sysid = 77;
	l->pg_running = l->pg_ready = false;
}
static void s_invalid_datadir(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->datadir = HA_DATADIR_INVALID;
	l->pg_running = l->pg_ready = false;
}

/* Rule 1: start-up. */
static void s_down_replica_data(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->pg_running = l->pg_ready = false;
	l->following[0] = '\0';
}
static void s_down_holds_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->pg_running = l->pg_ready = l->pg_primary = false;
}
static void s_down_holds_key_old_lease(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_holds_key(c, l);
	c->leader_lease = 99;
}
static void s_down_holds_key_start_failed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_holds_key(c, l);
	l->pg_start_failed = true;
}
static void s_down_no_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	c->has_leader = false;
}

/* Rule 7: old primaries come back as replicas. */
static void s_former_primary_rejoins(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	l->datadir_was_primary = true;
}
static void s_former_primary_no_rewind(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_former_primary_rejoins(c, l);
	l->use_pg_rewind = false;
}
static void s_rewind_failed_reinit(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_former_primary_rejoins(c, l);
	l->job_failed = HA_JOB_REWIND;
	l->remove_data_on_rewind_failure = true;
}
static void s_rewind_failed_no_reinit(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_former_primary_rejoins(c, l);
	l->job_failed = HA_JOB_REWIND;
}
static void s_diverged_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	c->leader_timeline = 3;
	l->pg_timeline = 2;
	l->pg_streaming = false;
	l->pg_not_streaming_since = NOW - 30;
}
static void s_diverged_rewind_failed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->job_failed = HA_JOB_REWIND;
}
static void s_diverged_rewind_failed_reinit(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_rewind_failed(c, l);
	l->remove_data_on_rewind_failure = true;
}
static void s_diverged_no_rewind(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->use_pg_rewind = false;
}
static void s_diverged_no_rewind_remove(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_no_rewind(c, l);
	l->remove_data_on_diverged = true;
}
static void s_diverged_rewind_on_remove_flag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->remove_data_on_diverged = true; /* pg_rewind is on: it is tried first */
}
static void s_not_streaming_briefly_remove_flag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_no_rewind_remove(c, l);
	l->pg_not_streaming_since = NOW - 2;
}
static void s_briefly_not_streaming(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->pg_not_streaming_since = NOW - 2;
}
static void s_not_streaming_same_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->pg_timeline = 3;
}

/* Follow. */
static void s_new_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)l;
	snprintf(c->leader, sizeof(c->leader), "node3");
	c->leader_lease = 300;
}
/* Cascading (tag replicatefrom = node3, a running replica; we are node2). */
static void cascade(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", "node3");
	l->replicatefrom_confirmed = true;
}
static void s_cascade_starts(struct ha_cluster_view *c, struct ha_local_view *l)
{
	cascade(c, l);
	snprintf(l->following, sizeof(l->following), "node1");
}
static void s_cascade_steady(struct ha_cluster_view *c, struct ha_local_view *l)
{
	cascade(c, l);
	snprintf(l->following, sizeof(l->following), "node3");
}
static void s_cascade_upstream_gone(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cascade_steady(c, l);
	c->n_members = 2; /* node3's key expired */
}
static void s_cascade_upstream_stopped(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cascade_steady(c, l);
	snprintf(c->members[2].state, sizeof(c->members[2].state), "stopped");
}
static void s_cascade_upstream_promoted(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cascade_steady(c, l);
	snprintf(c->leader, sizeof(c->leader), "node3");
	snprintf(c->members[2].role, sizeof(c->members[2].role), "primary");
}
static void s_cascade_down_starts_from_upstream(struct ha_cluster_view *c, struct ha_local_view *l)
{
	cascade(c, l);
	l->pg_running = l->pg_ready = false;
	l->following[0] = '\0';
}
static void s_nostream_steady(struct ha_cluster_view *c, struct ha_local_view *l)
{
	l->nostream = true;
	l->following[0] = '\0';
	/* never streams, behind on another timeline: no rewind for that */
	l->pg_streaming = false;
	l->pg_not_streaming_since = NOW - 600;
	c->leader_timeline = 2;
}
static void s_nostream_follows_nobody(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->nostream = true; /* following node1 from before the tag */
}
static void s_nostream_down_starts_without_upstream(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->nostream = true;
	l->pg_running = l->pg_ready = false;
}
static void s_replica_starting(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->pg_ready = false;
}

/* Failover: acquire on expiry, and rule 5's refusals. */
static void s_acquire_on_expiry(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
}
static void s_acquire_tie(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].polled_lsn = 5000; /* node3 as far as we are: both may try, etcd decides */
}
static void s_refuse_nofailover(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->nofailover = true;
}
static void s_refuse_behind_max_lag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_lsn = 5000 + 2 * 1048576;
}
static void s_within_max_lag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_lsn = 5000 + 1048576;
}
static void s_refuse_peer_ahead(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].polled_lsn = 6000;
}
static void s_peer_ahead_but_nofailover(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].polled_lsn = 6000;
	c->members[2].nofailover = true;
}
static void s_peer_ahead_unreachable(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].polled_lsn = 6000;
	c->members[2].reachable = c->members[2].healthy = false;
}
static void s_peer_ahead_unhealthy(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].polled_lsn = 6000;
	c->members[2].healthy = false;
}
static void s_peer_still_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[0].reachable = c->members[0].healthy = c->members[0].polled_primary = true;
}
static void s_refuse_old_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_timeline = 2; /* the last leader promoted to 2; we never followed */
	l->pg_lsn = 9000;       /* ... and our WAL on timeline 1 runs further */
}
static void s_peer_ahead_on_old_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_timeline = 2;
	l->pg_timeline = 2;
	c->members[2].polled_timeline = 1;
	c->members[2].polled_lsn = 9000;
}
/* check_timeline (Patroni's): a timeline other than the last leader's,
 * ahead of it too, is no candidate, and such a peer blocks nobody. */
static void s_ahead_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_timeline = 2;
	l->pg_timeline = 3;
}
static void s_check_timeline_ahead(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_ahead_timeline(c, l);
	c->check_timeline = true;
}
static void s_peer_on_other_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->leader_timeline = 2;
	l->pg_timeline = 2;
	c->members[2].polled_timeline = 3;
	c->members[2].polled_lsn = 9000;
}
static void s_check_timeline_peer_other(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_peer_on_other_timeline(c, l);
	c->check_timeline = true;
}
static void s_peer_starting_may_be_ahead(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].healthy = false;
	c->members[2].polled_starting = true;
	l->leader_absent_since = NOW - 2;
}
static void s_peer_starting_too_long(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_peer_starting_may_be_ahead(c, l);
	l->leader_absent_since = NOW - 11; /* 2 * ttl */
}
static void s_cannot_start_as_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	snprintf(l->following, sizeof(l->following), "node1");
	l->pg_start_failed = true;
	/* "requested timeline 2 is not a child of this server's history" */
	l->pg_start_failure = HA_START_FAIL_DIVERGED;
	l->pg_start_failures = 1;
	l->pg_started_at = NOW - 1;
}
static void s_cannot_start_rewind_failed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->job_failed = HA_JOB_REWIND;
	l->pg_started_at = NOW - 10; /* past the 3 s backoff */
}
static void s_cannot_start_rewind_failed_backoff(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_rewind_failed(c, l);
	l->pg_started_at = NOW - 1;
}
/* Rule 9: a failed start is repaired by what its diagnosis needs; pg_rewind
 * only for a diverged timeline (issue 11). */
static void s_start_failed_params(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->pg_start_failure = HA_START_FAIL_PARAMS;
	snprintf(l->pg_start_error, sizeof(l->pg_start_error), "max_connections = 100 is below the primary's 150");
}
static void s_start_failed_params_again(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_params(c, l);
	l->pg_start_failures = 2;
}
static void s_start_failed_params_again_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_params_again(c, l);
	l->pg_started_at = NOW - 10;
}
static void s_start_failed_other(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->pg_start_failure = HA_START_FAIL_OTHER;
	snprintf(l->pg_start_error, sizeof(l->pg_start_error), "FATAL:  could not load pg_hba.conf");
}
static void s_start_failed_other_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_other(c, l);
	l->pg_started_at = NOW - 3.5;
}
static void s_start_failed_other_many(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_other(c, l);
	l->pg_start_failures = 4; /* 24 s */
	l->pg_started_at = NOW - 20;
}
static void s_start_failed_unknown(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->pg_start_failure = HA_START_FAIL_UNKNOWN;
	l->pg_started_at = NOW - 100;
}
static void s_start_failed_diverged_no_rewind(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->use_pg_rewind = false;
}
static void s_start_failed_diverged_no_rewind_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_diverged_no_rewind(c, l);
	l->pg_started_at = NOW - 10;
}
static void s_start_failed_diverged_no_rewind_remove(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_diverged_no_rewind(c, l);
	l->remove_data_on_diverged = true;
}
static void s_start_failed_no_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_other(c, l);
	c->has_leader = false;
}
static void s_start_failed_as_primary_after_release(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_start_failed_other(c, l);
	l->pg_started_primary = true;
}
static void s_bootstrap_start_failed_backoff(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_ours(c, l);
	l->datadir = HA_DATADIR_VALID;
	l->pg_running = l->pg_ready = false;
	l->pg_start_failed = true;
	l->pg_started_primary = true;
	l->pg_start_failure = HA_START_FAIL_OTHER;
	l->pg_start_failures = 1;
	l->pg_started_at = NOW - 1;
}
static void s_reinit_after_failed_start(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->reinit_requested = true;
}

/* Rule 8 of DESIGN.md: candidacy and health come from replay. */
static void s_paused_replay_no_candidate(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->pg_replay_paused = true;
	l->pg_receive_lsn = 5000;
	l->pg_replay_lsn = 4000;
}
static void s_stuck_replay_no_candidate(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->pg_receive_lsn = 5000;
	l->pg_replay_lsn = 4999;
	l->pg_replay_progress_at = NOW - 6; /* bound max(2 * 1, 5) */
}
static void s_replay_catching_up_candidate(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_stuck_replay_no_candidate(c, l);
	l->pg_replay_progress_at = NOW - 1;
}
static void s_replay_lag_beyond_max(struct ha_cluster_view *c, struct ha_local_view *l)
{
	/* received everything, replayed 2 MB less (and moving) */
	leader_gone(c, l);
	c->leader_lsn = 5000 + 3 * 1048576;
	l->pg_lsn = l->pg_receive_lsn = c->leader_lsn;
	l->pg_replay_lsn = 5000;
	l->pg_replay_progress_at = NOW - 0.5;
	for (size_t i = 0; i < c->n_members; i++)
		c->members[i].polled_lsn = 0;
}
static void s_manual_failover_to_paused(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_paused_replay_no_candidate(c, l);
	c->has_switchover = true;
	snprintf(c->sw_to, sizeof(c->sw_to), "node2");
	c->sw_failover = true;
}
static void s_hs_param_below_primary_restart(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->pg_replay_paused = true;
	l->hs_below_primary = true;
	snprintf(l->hs_detail, sizeof(l->hs_detail), "max_connections 100 < 150 on the primary");
}
static void s_hs_param_below_primary_not_paused(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_hs_param_below_primary_restart(c, l);
	l->pg_replay_paused = false;
}

static void s_paused_replay_no_rewind(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->pg_replay_paused = true;
}

static void s_no_lease_no_compete(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->lease_id = 0;
}

/* Promote. */
static void s_promote_after_acquire(struct ha_cluster_view *c, struct ha_local_view *l)
{
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = l->lease_id;
}
static void s_promote_in_progress(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	l->promote_requested = true;
}
static void s_holds_key_lease_expired_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	l->lease_sent = NOW - 6;
}
static void s_holds_old_lease_replica(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	c->leader_lease = 99;
}

/* Maintenance mode. */
static void s_paused_no_failover(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->paused = true;
}
static void s_paused_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->paused = true;
}
static void s_paused_pg_down(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	c->paused = true;
}
static void s_paused_deadline_passed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_deadline_passed(c, l);
	c->paused = true;
}

/* Operator requests. */
static void s_restart_requested(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->restart_requested = true;
}
static void s_restart_requested_pg_down(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	l->restart_requested = true;
}
static void s_reinit_requested(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	l->reinit_requested = true;
}
static void s_reinit_on_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->reinit_requested = true;
}
static void s_reinit_no_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->reinit_requested = true;
}

/* Switchover and manual failover, seen by the leader. */
static void sw(struct ha_cluster_view *c, const char *from, const char *to, double at, bool failover)
{
	c->has_switchover = true;
	snprintf(c->sw_from, sizeof(c->sw_from), "%s", from);
	snprintf(c->sw_to, sizeof(c->sw_to), "%s", to);
	c->sw_scheduled_at = at;
	c->sw_failover = failover;
}
static void s_sw_leader_now(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	sw(c, "node2", "node3", 0, false);
}
static void s_sw_leader_best(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	sw(c, "", "", 0, false);
}
static void s_sw_leader_scheduled_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->wall_now = 1000000;
	sw(c, "node2", "node3", 1000060, false);
}
static void s_sw_leader_scheduled_due(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->wall_now = 1000061;
	sw(c, "node2", "node3", 1000060, false);
}
static void s_sw_for_another_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	sw(c, "node9", "node3", 0, false);
}
static void s_sw_done_we_are_target(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	sw(c, "node1", "node2", 0, false);
}
static void s_sw_paused_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sw_leader_now(c, l);
	c->paused = true;
}
/* Maintenance mode: the agents choose no candidate, nothing scheduled runs. */
static void s_sw_paused_leader_best(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	sw(c, "node2", "", 0, false);
	c->paused = true;
}
static void s_sw_paused_leader_scheduled(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->wall_now = 1000000;
	sw(c, "node2", "node3", 1000060, false);
	c->paused = true;
}
static void s_sw_paused_target_takes_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sw(c, "node1", "node2", 0, false);
	l->leader_absent_since = NOW - 1;
	c->paused = true;
}
static void s_sw_paused_other_replica_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sw(c, "node1", "node3", 0, false);
	l->leader_absent_since = NOW - 1;
	c->paused = true;
}
/* ... an operator's restart (or our switchover) stopped Postgres: it comes back. */
static void s_sw_paused_target_promotes(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	sw(c, "node1", "node2", 0, false);
	c->paused = true;
}
static void s_paused_holder_not_named_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	c->paused = true;
}
static void s_paused_restart_in_progress(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_replica_data(c, l);
	l->restart_in_progress = true;
	c->paused = true;
}
static void s_paused_after_switchover_follows(struct ha_cluster_view *c, struct ha_local_view *l)
{
	l->following[0] = '\0';
	l->restart_in_progress = true;
	c->paused = true;
}
static void s_paused_replica_of_old_leader_follows(struct ha_cluster_view *c, struct ha_local_view *l)
{
	snprintf(l->following, sizeof(l->following), "node9");
	c->paused = true;
}
static void s_paused_replica_unfollowed_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	l->following[0] = '\0';
	c->paused = true;
}
static void s_paused_restart_in_progress_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->pg_running = l->pg_ready = l->pg_primary = false;
	l->restart_in_progress = true;
	c->paused = true;
}

/* ... seen by replicas once the leader released the key. */
static void s_sw_other_target_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sw(c, "node1", "node3", 0, false);
	l->leader_absent_since = NOW - 1;
}
static void s_sw_target_dead_after_ttl(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sw_other_target_waits(c, l);
	l->leader_absent_since = NOW - 6; /* ttl 5 */
}
static void s_sw_we_are_target_peer_ahead(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sw(c, "node1", "node2", 0, false);
	c->members[2].polled_lsn = 6000;
}
static void s_sw_target_behind_max_lag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sw_we_are_target_peer_ahead(c, l);
	c->leader_lsn = 5000 + 2 * 1048576;
}
static void s_failover_target_behind_max_lag(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sw_target_behind_max_lag(c, l);
	c->sw_failover = true;
}
static void s_failover_target_old_timeline(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failover_target_behind_max_lag(c, l);
	c->leader_timeline = 2;
}
static void s_failover_target_nofailover(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failover_target_behind_max_lag(c, l);
	l->nofailover = true;
}

/* failsafe_mode. */
static void s_failsafe_confirmed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	c->etcd_ok = false;
	c->failsafe_mode = true;
	l->lease_sent = NOW - 10;           /* the lease is long gone */
	l->failsafe_confirmed_at = NOW - 1; /* but every member confirmed us a second ago */
}
static void s_failsafe_round_too_old(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failsafe_confirmed(c, l);
	l->failsafe_confirmed_at = NOW - 4.5; /* ttl 5, margin 1 */
}
static void s_failsafe_off(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failsafe_confirmed(c, l);
	c->failsafe_mode = false;
}
static void s_failsafe_etcd_back_other_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failsafe_confirmed(c, l);
	c->etcd_ok = true;
	snprintf(c->leader, sizeof(c->leader), "node3");
}
static void s_failsafe_etcd_back_lease_gone(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_failsafe_confirmed(c, l);
	c->etcd_ok = true; /* confirmations no longer count: the lease is what matters again */
}
/* failsafe_mode on, and we confirmed the last leader's heartbeat `ago` s back. */
static void confirmed_ago(struct ha_cluster_view *c, struct ha_local_view *l, double ago)
{
	c->failsafe_mode = true;
	l->failsafe_leader_seen_at = NOW - ago;
}
static void s_replica_confirmed_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	confirmed_ago(c, l, 2);
}
static void s_replica_confirmed_long_ago(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	confirmed_ago(c, l, 6);
}
/* A take of the key that etcd applied but did not answer, after which we
 * confirmed the old leader: holding the key, we still write nothing until
 * a ttl after the confirmation. */
static void s_holds_key_confirmed_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	confirmed_ago(c, l, 2);
}
static void s_holds_key_confirmed_long_ago(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	confirmed_ago(c, l, 6);
}
static void s_down_holds_key_confirmed_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_holds_key(c, l);
	confirmed_ago(c, l, 2);
}

/* Rule 5: racing for the initialize key needs our own lease, and a failed
 * bootstrap (which gave the key up) waits before racing again. */
static void s_fresh_no_lease(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_fresh_empty(c, l);
	l->lease_id = 0;
}
static void s_fresh_bootstrap_failed_recently(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_fresh_empty(c, l);
	l->job_failed = HA_JOB_BOOTSTRAP;
	l->job_failed_at = NOW - 2;
}
static void s_fresh_bootstrap_failed_long_ago(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_fresh_bootstrap_failed_recently(c, l);
	l->job_failed_at = NOW - 10;
}
static void s_bootstrap_initdb_failed_recently(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_ours(c, l);
	l->job_failed = HA_JOB_BOOTSTRAP;
	l->job_failed_at = NOW - 1;
}
static void s_bootstrap_initdb_failed_long_ago(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_initdb_failed_recently(c, l);
	l->job_failed_at = NOW - 4;
}
/* Rule 8: a failed clone waits before the next. */
static void s_clone_failed_recently(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_empty_with_leader(c, l);
	l->job_failed = HA_JOB_CLONE;
	l->job_failed_at = NOW - 1;
}
static void s_clone_failed_long_ago(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_clone_failed_recently(c, l);
	l->job_failed_at = NOW - 4;
}
/* Rule 9: holding the key, Postgres down: the lease must be valid, and a
 * required watchdog armed, before it starts as primary. */
static void s_down_holds_key_lease_expired(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_holds_key(c, l);
	l->lease_sent = NOW - 6;
}
static void s_down_holds_key_watchdog_missing(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_down_holds_key(c, l);
	l->watchdog_required = true;
}
/* Rules 9 and 11: a failed pg_rewind is tried again (3 times) after a backoff. */
static void s_cannot_start_rewind_retry_backoff(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_as_replica(c, l);
	l->rewind_failures = 1;
	l->job_failed_at = NOW - 1;
}
static void s_cannot_start_rewind_retry_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_cannot_start_rewind_retry_backoff(c, l);
	l->job_failed_at = NOW - 4;
}
static void s_diverged_rewind_retry_backoff(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_replica(c, l);
	l->rewind_failures = 2;
	l->job_failed_at = NOW - 1;
}
static void s_diverged_rewind_retry_later(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_diverged_rewind_retry_backoff(c, l);
	l->job_failed_at = NOW - 4;
}
/* Rule 7: a stale switchover is cleared in maintenance mode too. */
static void s_sw_paused_for_another_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sw_for_another_leader(c, l);
	c->paused = true;
}

/* ---- standby cluster (config standby_cluster): the leader follows the
 * other site's primary (HA_REMOTE) and never promotes ---- */
static void standby(struct ha_cluster_view *c)
{
	c->standby_cluster = true;
	snprintf(c->standby_host, sizeof(c->standby_host), "10.1.0.5");
	c->standby_port = 5432;
	c->standby_remote_usable = true;
}
/* The remote is not proven (no postgresql.tls, the node's file does not
 * name it): e.g. an etcd writer pointed standby_cluster at its server. */
static void unproven(struct ha_cluster_view *c)
{
	c->standby_remote_usable = false;
}
/* Rule 5: a standby cluster's first member copies the other site. */
static void s_sb_bootstrap(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_bootstrap_ours(c, l);
	standby(c);
}
/* Rule 9: the standby leader starts as a replica of the other site ... */
static void s_sb_leader_down(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	standby(c);
	l->pg_running = l->pg_ready = false;
	l->following[0] = '\0';
}
/* ... and is rewound against it when its timeline diverged (a demoted
 * primary whose WAL went past the other site's fork point). */
static void s_sb_leader_diverged(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_leader_down(c, l);
	l->pg_start_failed = true;
	l->pg_start_failure = HA_START_FAIL_DIVERGED;
	l->pg_start_failures = 1;
	l->pg_started_at = NOW - 1;
	snprintf(l->following, sizeof(l->following), "%s", HA_REMOTE);
}
/* Rule 11: holding the key as a replica never promotes in a standby
 * cluster; it keeps following the other site. */
static void s_sb_never_promotes(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	standby(c);
	snprintf(l->following, sizeof(l->following), "%s", HA_REMOTE);
	snprintf(l->following_remote, sizeof(l->following_remote), "10.1.0.5:5432");
}
/* The other site raised a hot-standby parameter: the standby leader's
 * replay pauses as any replica's; it restarts (never promotes). */
static void s_sb_hs_param_below_primary(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	l->pg_replay_paused = true;
	l->hs_below_primary = true;
	snprintf(l->hs_detail, sizeof(l->hs_detail), "max_connections 100 < 150 on the primary");
}
/* Paused by an operator (no parameter below the primary's): left alone. */
static void s_sb_paused_by_operator(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_hs_param_below_primary(c, l);
	l->hs_below_primary = false;
	l->hs_detail[0] = '\0';
}
/* A demoted primary that went past the other site's fork point: its
 * server's log says so while it runs; rewound against the other site. */
static void s_sb_running_diverged(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	l->pg_streaming = false;
	l->remote_diverged = true;
}
/* ... and once pg_rewind failed for good: wait for an operator. */
static void s_sb_running_diverged_rewind_failed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_running_diverged(c, l);
	l->job_failed = HA_JOB_REWIND;
	l->job_failed_at = NOW - 100;
}
/* standby_cluster changed to another host: the standby leader re-points. */
static void s_sb_remote_changed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	c->standby_port = 5433;
}
/* Failover inside the standby cluster: the replica that took the key
 * re-points from the dead standby leader to the other site. */
static void s_sb_new_leader_repoints(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	standby(c);
}
/* The standby leader is gone: a replica takes the key as usual. */
static void s_sb_failover_acquire(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	standby(c);
}
/* A replica of the standby cluster follows the standby leader (cascade). */
static void s_sb_replica_follows_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	standby(c);
	(void)l;
}
/* promote-cluster: standby_cluster removed, the standby leader promotes. */
static void s_sb_promote_cluster(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	snprintf(l->following, sizeof(l->following), "%s", HA_REMOTE);
}
/* Rule 12: demote-cluster: the primary stops to become the standby leader. */
static void s_sb_demote_cluster(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	standby(c);
}

/* Unproven remote: no base backup, no rewind, no re-point, no demotion. */
static void s_sb_bootstrap_unproven(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_bootstrap(c, l);
	unproven(c);
}
static void s_sb_leader_diverged_unproven(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_leader_diverged(c, l);
	unproven(c);
	l->pg_started_at = NOW - 1000; /* past the backoff */
}
static void s_sb_running_diverged_unproven(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_running_diverged(c, l);
	unproven(c);
}
static void s_sb_remote_changed_unproven(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_remote_changed(c, l);
	unproven(c);
}
/* The node file no longer lists the remote the standby leader streams
 * from (a reload): it drops primary_conninfo, whatever the config says. */
static void s_sb_following_untrusted(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	unproven(c);
	l->following_remote_untrusted = true;
}
/* ... also when the remote is otherwise usable (only what it follows is not). */
static void s_sb_following_untrusted_config_usable(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_remote_changed(c, l);
	l->following_remote_untrusted = true;
}
/* Once it follows nobody, it waits (the remote is not usable). */
static void s_sb_dropped_untrusted_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	unproven(c);
	l->following[0] = '\0';
	l->following_remote[0] = '\0';
}
/* A standby leader whose view lost standby_cluster without a valid key
 * (missing or invalid): it never promotes for that. */
static void s_sb_key_missing_no_promote(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_never_promotes(c, l);
	c->standby_cluster = false;
	c->config_key = HA_CONFIG_MISSING;
}
static void s_sb_key_invalid_no_promote(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_key_missing_no_promote(c, l);
	c->config_key = HA_CONFIG_INVALID;
}
/* A replica that never read a valid config key (it joined while the key
 * was invalid or missing): the cluster's mode is unknown, so it takes no
 * free leader key, and one it holds does not make it promote. */
static void s_config_unknown_no_acquire(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->config_key = HA_CONFIG_INVALID;
	c->config_unknown = true;
}
static void s_config_unknown_no_promote(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_promote_after_acquire(c, l);
	c->config_key = HA_CONFIG_MISSING;
	c->config_unknown = true;
}
/* ... while a member with last good settings (config_unknown false) may. */
static void s_config_invalid_known_acquires(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->config_key = HA_CONFIG_INVALID;
}
static void s_sb_demote_cluster_unproven(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_sb_demote_cluster(c, l);
	unproven(c);
}

struct row {
	int rule; /* the rule of ha_decide (ha.c) that must decide it: rows go in rule order */
	const char *name;
	void (*setup)(struct ha_cluster_view *, struct ha_local_view *);
	enum ha_action_kind want;
	const char *want_leader; /* NULL = not checked */
};

/* ---- synchronous mode, candidate ranking, watchdog ---- */

static void sync_key(struct ha_cluster_view *c, const char *leader, const char *a, const char *b)
{
	c->synchronous_mode = true;
	c->synchronous_node_count = 1;
	c->has_sync = true;
	snprintf(c->sync_leader, sizeof(c->sync_leader), "%s", leader);
	c->n_sync = 0;
	if (a)
		snprintf(c->sync_standbys[c->n_sync++], HA_NAME_MAX, "%s", a);
	if (b)
		snprintf(c->sync_standbys[c->n_sync++], HA_NAME_MAX, "%s", b);
}

static void s_sync_named_acquires(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node2", NULL);
}
static void s_sync_not_named_waits(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node3", NULL);
}
/* node3 is the synchronous one, behind node2 (which was asynchronous and
 * may hold WAL node1 never got an ack for): node2 must not block it. */
static void s_sync_named_behind_async_peer(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node3", NULL);
	l->name = "node3";
	l->pg_lsn = 4900;
	c->members[2].lsn = c->members[2].polled_lsn = 4900;
}
static void s_sync_no_key_anyone(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->synchronous_mode = true;
}
static void s_sync_key_of_ours(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node2", NULL, NULL); /* we led last and wrote it */
}
static void s_sync_empty_key_nobody(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", NULL, NULL);
}
static void s_sync_off_ignores_key(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node3", NULL);
	c->synchronous_mode = false;
}
static void s_sync_manual_failover_overrides(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node3", NULL);
	c->has_switchover = true;
	snprintf(c->sw_to, sizeof(c->sw_to), "node2");
	c->sw_failover = true;
}
static void s_tie_priority_peer_first(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].lsn = c->members[2].polled_lsn = 5000;
	c->members[2].failover_priority = 2;
	l->failover_priority = 1;
	l->leader_absent_since = NOW - 1;
}
static void s_tie_priority_we_first(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].lsn = c->members[2].polled_lsn = 5000;
	c->members[2].failover_priority = 1;
	l->failover_priority = 3;
	l->leader_absent_since = NOW - 1;
}
static void s_tie_name_we_first(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	c->members[2].lsn = c->members[2].polled_lsn = 5000;
	c->members[2].failover_priority = 1;
	l->failover_priority = 1;
	l->leader_absent_since = NOW - 1;
}
static void s_tie_name_peer_first(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_tie_name_we_first(c, l);
	/* We are "node4" now: node2 and node3, as far as we are with the same
	 * priority, both come first by name. */
	l->name = "node4";
	c->members[1].failover_priority = 1;
}
static void s_tie_expires(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_tie_priority_peer_first(c, l);
	l->leader_absent_since = NOW - 11; /* > 2 ttl: the peer never took it */
}
static void s_ahead_peer_not_sync_ignored(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	sync_key(c, "node1", "node2", NULL);
	c->members[2].lsn = c->members[2].polled_lsn = 9000; /* node3 ahead but not synchronous */
}
static void s_watchdog_required_missing(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->watchdog_required = true;
	l->watchdog_ok = false;
}
static void s_watchdog_required_ok(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	l->watchdog_required = true;
	l->watchdog_ok = true;
}
static void s_watchdog_required_holds_releases(struct ha_cluster_view *c, struct ha_local_view *l)
{
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = l->lease_id;
	l->following[0] = '\0';
	l->watchdog_required = true;
}

/* Quorum commit: key {node1: [node2, node3], quorum 1}. */
static void quorum_key(struct ha_cluster_view *c)
{
	sync_key(c, "node1", "node2", "node3");
	c->synchronous_quorum = true;
	c->sync_quorum = 1;
}
static void s_quorum_sees_enough(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	quorum_key(c);
	c->members[2].lsn = c->members[2].polled_lsn = 4000; /* node3 behind us */
}
static void s_quorum_sees_too_few(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	quorum_key(c);
	c->members[2].reachable = c->members[2].healthy = false; /* node3 silent: a commit may be only there */
}
static void s_quorum_peer_ahead(struct ha_cluster_view *c, struct ha_local_view *l)
{
	leader_gone(c, l);
	quorum_key(c);
	c->members[2].lsn = c->members[2].polled_lsn = 6000;
}
static void s_quorum_all_needed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_quorum_sees_enough(c, l);
	c->sync_quorum = 2; /* on both: we alone suffice */
	c->members[2].reachable = c->members[2].healthy = false;
}
static void s_quorum_nothing_promised(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_quorum_sees_enough(c, l);
	c->sync_quorum = 0;
}
static void s_quorum_key_despite_config(struct ha_cluster_view *c, struct ha_local_view *l)
{
	s_quorum_sees_too_few(c, l);
	c->synchronous_quorum = false; /* config just changed; the key still says quorum 1 */
}

/* Bootstrap: the first primary obeys the lease like any other (found by check_sim). */
static void bootstrapping(struct ha_cluster_view *c, struct ha_local_view *l)
{
	c->init_in_progress = true;
	snprintf(c->init_owner, sizeof(c->init_owner), "node2");
	c->sysid = 0;
	c->has_leader = false;
	c->leader[0] = '\0';
	c->n_members = 0;
	l->pg_running = l->pg_ready = false;
}
static void s_bootstrap_starts(struct ha_cluster_view *c, struct ha_local_view *l)
{
	bootstrapping(c, l);
}
static void s_bootstrap_lease_expired(struct ha_cluster_view *c, struct ha_local_view *l)
{
	bootstrapping(c, l);
	l->lease_sent = NOW - 4.5; /* past ttl - margin after a freeze */
}
static void s_bootstrap_key_old_lease(struct ha_cluster_view *c, struct ha_local_view *l)
{
	bootstrapping(c, l);
	c->has_leader = true;
	snprintf(c->leader, sizeof(c->leader), "node2");
	c->leader_lease = 77; /* not our lease 200 */
}
static void s_bootstrap_no_watchdog(struct ha_cluster_view *c, struct ha_local_view *l)
{
	bootstrapping(c, l);
	l->watchdog_required = true;
}
static void s_race_init_no_watchdog(struct ha_cluster_view *c, struct ha_local_view *l)
{
	bootstrapping(c, l);
	c->init_key_present = c->init_in_progress = false;
	l->datadir = HA_DATADIR_EMPTY;
	l->watchdog_required = true;
}
static void s_primary_watchdog_lost(struct ha_cluster_view *c, struct ha_local_view *l)
{
	as_leader(c, l);
	l->watchdog_required = true;
	l->watchdog_ok = false;
}

static const struct row rows[] = {
	/* 1. shutdown requested */
	{ 1, "shutdown of a primary", s_shutdown_primary, HA_SHUTDOWN, NULL },
	{ 1, "shutdown of a replica", s_shutdown_replica, HA_SHUTDOWN, NULL },
	/* 2. safety of a Postgres that may write */
	{ 2, "primary whose required watchdog cannot be armed demotes", s_primary_watchdog_lost, HA_DEMOTE, NULL },
	{ 2, "primary past its lease deadline demotes", s_deadline_passed, HA_DEMOTE, NULL },
	{ 2, "primary past deadline with etcd down demotes", s_deadline_passed_etcd_down, HA_DEMOTE, NULL },
	{ 2, "primary with etcd down, lease valid, waits", s_etcd_down_within_lease, HA_WAIT, NULL },
	{ 2, "primary whose lease is lost demotes", s_lease_lost, HA_DEMOTE, NULL },
	{ 2, "primary while another holds the key demotes", s_other_holds_key, HA_DEMOTE, NULL },
	{ 2, "starting as primary while another leads demotes", s_started_primary_not_ready_other_leads, HA_DEMOTE,
	  NULL },
	{ 2, "promotion under way without a lease demotes", s_promoting_without_key, HA_DEMOTE, NULL },
	{ 2, "primary whose key vanished retakes it", s_key_vanished_while_primary, HA_ACQUIRE, NULL },
	{ 2, "primary whose key is on an old lease moves it", s_key_on_old_lease_primary, HA_ACQUIRE, NULL },
	{ 2, "paused: a primary past its deadline still demotes", s_paused_deadline_passed, HA_DEMOTE, NULL },
	{ 2, "failsafe: every member confirmed: stay primary", s_failsafe_confirmed, HA_WAIT, NULL },
	{ 2, "failsafe: last confirmation too old: demote", s_failsafe_round_too_old, HA_DEMOTE, NULL },
	{ 2, "failsafe off: lease gone means demote", s_failsafe_off, HA_DEMOTE, NULL },
	{ 2, "failsafe: etcd back, another leader: demote", s_failsafe_etcd_back_other_leader, HA_DEMOTE, NULL },
	{ 2, "failsafe: etcd back, our lease gone: demote", s_failsafe_etcd_back_lease_gone, HA_DEMOTE, NULL },
	/* 3. etcd unreadable */
	{ 3, "replica never promotes with etcd down", s_etcd_down_replica, HA_WAIT, NULL },
	{ 3, "nothing starts with etcd down", s_etcd_down_pg_down, HA_WAIT, NULL },
	/* 4. a long job runs */
	{ 4, "job running: wait", s_job_running, HA_WAIT, NULL },
	{ 4, "half-copied data dir while cloning: wait", s_clone_half_done, HA_WAIT, NULL },
	/* 5. cluster identity */
	{ 5, "bootstrap: owner with data starts its first primary", s_bootstrap_starts, HA_BOOTSTRAP, NULL },
	{ 5, "bootstrap: not past our lease deadline", s_bootstrap_lease_expired, HA_WAIT, NULL },
	{ 5, "bootstrap: the key on an old lease moves to ours first", s_bootstrap_key_old_lease, HA_ACQUIRE, NULL },
	{ 5, "bootstrap: watchdog required and missing: no first primary", s_bootstrap_no_watchdog, HA_WAIT, NULL },
	{ 5, "no cluster: watchdog required and missing: no race", s_race_init_no_watchdog, HA_WAIT, NULL },
	{ 5, "fresh cluster, empty dir: race to bootstrap", s_fresh_empty, HA_RACE_INIT, NULL },
	{ 5, "fresh cluster, data present: claim it", s_fresh_with_data, HA_RACE_INIT, NULL },
	{ 5, "we own initialize: bootstrap", s_bootstrap_ours, HA_BOOTSTRAP, NULL },
	{ 5, "another bootstraps: wait", s_bootstrap_theirs, HA_WAIT, NULL },
	{ 5, "bootstrap continues once primary runs", s_bootstrap_ours_running_primary, HA_BOOTSTRAP, NULL },
	{ 5, "data dir of another cluster: fatal", s_other_cluster, HA_FATAL, NULL },
	{ 5, "invalid data dir: fatal", s_invalid_datadir, HA_FATAL, NULL },
	{ 5, "bootstrap: first start failed, back off before the next", s_bootstrap_start_failed_backoff, HA_WAIT,
	  NULL },
	{ 5, "no cluster, no lease of our own: wait before racing", s_fresh_no_lease, HA_WAIT, NULL },
	{ 5, "no cluster, our bootstrap failed 2s ago: wait before racing", s_fresh_bootstrap_failed_recently, HA_WAIT,
	  NULL },
	{ 5, "no cluster, our bootstrap failed 10s ago: race again", s_fresh_bootstrap_failed_long_ago, HA_RACE_INIT,
	  NULL },
	{ 5, "bootstrap: initdb failed 1s ago: wait", s_bootstrap_initdb_failed_recently, HA_WAIT, NULL },
	{ 5, "bootstrap: initdb failed 4s ago: run it again", s_bootstrap_initdb_failed_long_ago, HA_BOOTSTRAP, NULL },
	/* 6. operator requests */
	{ 5, "standby cluster: its first member copies the other site", s_sb_bootstrap, HA_BOOTSTRAP, HA_REMOTE },
	{ 5, "standby cluster, remote not proven: no base backup, wait", s_sb_bootstrap_unproven, HA_WAIT, NULL },
	{ 6, "reinit after a failed start: reinit", s_reinit_after_failed_start, HA_REINIT, "node1" },
	{ 6, "restart requested", s_restart_requested, HA_RESTART, NULL },
	{ 6, "reinit requested on a replica", s_reinit_requested, HA_REINIT, "node1" },
	{ 6, "reinit refused on the leader: the request is dropped", s_reinit_on_leader, HA_REFUSE, NULL },
	{ 6, "reinit without a leader waits", s_reinit_no_leader, HA_WAIT, NULL },
	/* 7. maintenance mode */
	{ 7, "paused: a replica never takes a free key", s_paused_no_failover, HA_WAIT, NULL },
	{ 7, "paused: the leader keeps its key", s_paused_leader, HA_LEAD, NULL },
	{ 7, "paused: Postgres down stays down", s_paused_pg_down, HA_WAIT, NULL },
	{ 7, "switchover without a candidate while paused: nothing", s_sw_paused_leader_best, HA_LEAD, NULL },
	{ 7, "scheduled switchover while paused: nothing", s_sw_paused_leader_scheduled, HA_LEAD, NULL },
	{ 7, "paused: another replica leaves the key", s_sw_paused_other_replica_waits, HA_WAIT, NULL },
	{ 7, "paused: holding the key as a replica unasked: nothing", s_paused_holder_not_named_waits, HA_WAIT, NULL },
	{ 7, "paused: after our switchover, follow the new leader", s_paused_after_switchover_follows, HA_FOLLOW,
	  "node1" },
	{ 7, "paused: a replica of the old leader follows the new one", s_paused_replica_of_old_leader_follows,
	  HA_FOLLOW, "node1" },
	{ 7, "paused: a replica not asked to follow waits", s_paused_replica_unfollowed_waits, HA_WAIT, NULL },
	{ 7, "paused: a switchover for another leader is cleared", s_sw_paused_for_another_leader, HA_CLEAR_SWITCHOVER,
	  NULL },
	/* 8. empty data directory */
	{ 8, "empty dir with a leader: clone", s_empty_with_leader, HA_CLONE, "node1" },
	{ 8, "empty dir without leader: wait", s_empty_no_leader, HA_WAIT, NULL },
	{ 8, "empty dir but holding the key: release", s_empty_but_holds_key, HA_RELEASE, NULL },
	{ 8, "empty dir, clone failed 1s ago: wait", s_clone_failed_recently, HA_WAIT, NULL },
	{ 8, "empty dir, clone failed 4s ago: clone again", s_clone_failed_long_ago, HA_CLONE, "node1" },
	/* 9. Postgres down */
	{ 9, "down replica starts as replica of leader", s_down_replica_data, HA_START_REPLICA, "node1" },
	{ 9, "down, holding key: start as primary", s_down_holds_key, HA_START_PRIMARY, NULL },
	{ 9, "failsafe: down, holding the key a ttl after confirming: wait", s_down_holds_key_confirmed_leader, HA_WAIT,
	  NULL },
	{ 9, "down, key on old lease: move it first", s_down_holds_key_old_lease, HA_ACQUIRE, NULL },
	{ 9, "down, primary start failed: release", s_down_holds_key_start_failed, HA_RELEASE, NULL },
	{ 9, "down, no leader: replica without upstream", s_down_no_leader, HA_START_REPLICA, "" },
	{ 9, "former primary starts as replica of the new leader", s_former_primary_rejoins, HA_START_REPLICA,
	  "node1" },
	{ 9, "former primary without pg_rewind starts as replica", s_former_primary_no_rewind, HA_START_REPLICA,
	  "node1" },
	{ 9, "down after failed rewind, reinit allowed", s_rewind_failed_reinit, HA_REINIT, "node1" },
	{ 9, "down after failed rewind, no reinit: start anyway", s_rewind_failed_no_reinit, HA_START_REPLICA,
	  "node1" },
	{ 9, "cannot start as replica of the leader: rewind", s_cannot_start_as_replica, HA_REWIND, "node1" },
	{ 9, "cannot start, rewind failed for good: start again", s_cannot_start_rewind_failed, HA_START_REPLICA,
	  "node1" },
	{ 9, "cannot start, rewind failed for good, within the backoff: wait", s_cannot_start_rewind_failed_backoff,
	  HA_WAIT, NULL },
	{ 9, "failed start, insufficient parameter settings: start again at once, no rewind", s_start_failed_params,
	  HA_START_REPLICA, "node1" },
	{ 9, "failed start, parameters again: back off", s_start_failed_params_again, HA_WAIT, NULL },
	{ 9, "failed start, parameters again, backoff over: start, no rewind", s_start_failed_params_again_later,
	  HA_START_REPLICA, "node1" },
	{ 9, "failed start, other server error: back off, no rewind", s_start_failed_other, HA_WAIT, NULL },
	{ 9, "failed start, other server error, backoff over: start again", s_start_failed_other_later,
	  HA_START_REPLICA, "node1" },
	{ 9, "failed start, fourth in a row: backoff has grown", s_start_failed_other_many, HA_WAIT, NULL },
	{ 9, "failed start, log unreadable: never rewind", s_start_failed_unknown, HA_START_REPLICA, "node1" },
	{ 9, "failed start, diverged, use_pg_rewind off: back off", s_start_failed_diverged_no_rewind, HA_WAIT, NULL },
	{ 9, "failed start, diverged, use_pg_rewind off, remove_data_directory_on_diverged_timelines: reinit",
	  s_start_failed_diverged_no_rewind_remove, HA_REINIT, "node1" },
	{ 9, "failed start, diverged, use_pg_rewind off, backoff over: start again",
	  s_start_failed_diverged_no_rewind_later, HA_START_REPLICA, "node1" },
	{ 9, "failed start, no leader: back off too", s_start_failed_no_leader, HA_WAIT, NULL },
	{ 9, "failed start as primary, key released: back off", s_start_failed_as_primary_after_release, HA_WAIT,
	  NULL },
	{ 9, "restart requested while down: just start", s_restart_requested_pg_down, HA_START_REPLICA, "node1" },
	{ 9, "replicatefrom: down, starts as a replica of its upstream replica", s_cascade_down_starts_from_upstream,
	  HA_START_REPLICA, "node3" },
	{ 9, "nostream: down, starts without primary_conninfo", s_nostream_down_starts_without_upstream,
	  HA_START_REPLICA, "" },
	{ 9, "paused: a restarting replica starts again", s_paused_restart_in_progress, HA_START_REPLICA, NULL },
	{ 9, "paused: a restarting leader starts again", s_paused_restart_in_progress_leader, HA_START_PRIMARY, NULL },
	{ 9, "down, holding the key, lease expired: wait for renewal", s_down_holds_key_lease_expired, HA_WAIT, NULL },
	{ 9, "down, holding the key, required watchdog missing: release", s_down_holds_key_watchdog_missing, HA_RELEASE,
	  NULL },
	{ 9, "cannot start, rewind failed once 1s ago: wait before the next", s_cannot_start_rewind_retry_backoff,
	  HA_WAIT, NULL },
	{ 9, "cannot start, rewind failed once 4s ago: rewind again", s_cannot_start_rewind_retry_later, HA_REWIND,
	  "node1" },
	/* 10. Postgres starting */
	{ 9, "standby leader down: starts as a replica of the other site", s_sb_leader_down, HA_START_REPLICA,
	  HA_REMOTE },
	{ 9, "standby leader diverged from the other site: rewinds against it", s_sb_leader_diverged, HA_REWIND,
	  HA_REMOTE },
	{ 9, "standby leader diverged, remote not proven: no rewind, starts as a replica",
	  s_sb_leader_diverged_unproven, HA_START_REPLICA, HA_REMOTE },
	{ 10, "replica still starting: wait", s_replica_starting, HA_WAIT, NULL },
	/* 11. Postgres a replica */
	{ 11, "steady replica waits", s_steady_replica, HA_WAIT, NULL },
	{ 11, "sync: the named standby takes the key", s_sync_named_acquires, HA_ACQUIRE, NULL },
	{ 11, "sync: a standby the key does not name waits", s_sync_not_named_waits, HA_WAIT, NULL },
	{ 11, "sync: the named standby is not held back by an asynchronous peer ahead", s_sync_named_behind_async_peer,
	  HA_ACQUIRE, NULL },
	{ 11, "sync: no sync key yet, anyone eligible may", s_sync_no_key_anyone, HA_ACQUIRE, NULL },
	{ 11, "sync: the leader that wrote the key may take it back", s_sync_key_of_ours, HA_ACQUIRE, NULL },
	{ 11, "sync: an empty key from another leader names nobody", s_sync_empty_key_nobody, HA_WAIT, NULL },
	{ 11, "sync mode off: the key is ignored", s_sync_off_ignores_key, HA_ACQUIRE, NULL },
	{ 11, "sync: a manual failover overrides the key", s_sync_manual_failover_overrides, HA_ACQUIRE, NULL },
	{ 11, "tie: a peer as far with a higher failover_priority goes first", s_tie_priority_peer_first, HA_WAIT,
	  NULL },
	{ 11, "tie: our higher failover_priority goes first", s_tie_priority_we_first, HA_ACQUIRE, NULL },
	{ 11, "tie: equal priority, the smaller name goes first (us)", s_tie_name_we_first, HA_ACQUIRE, NULL },
	{ 11, "tie: equal priority, the smaller name goes first (the peer)", s_tie_name_peer_first, HA_WAIT, NULL },
	{ 11, "tie: after two ttls without a leader the rank no longer holds us", s_tie_expires, HA_ACQUIRE, NULL },
	{ 11, "sync: a peer ahead that is not synchronous does not hold us", s_ahead_peer_not_sync_ignored, HA_ACQUIRE,
	  NULL },
	{ 11, "quorum: we see 2 of 2 named (need 2) and lead: take the key", s_quorum_sees_enough, HA_ACQUIRE, NULL },
	{ 11, "quorum: we see 1 of 2 named (need 2): wait", s_quorum_sees_too_few, HA_WAIT, NULL },
	{ 11, "quorum: a named peer is ahead: leave it the key", s_quorum_peer_ahead, HA_WAIT, NULL },
	{ 11, "quorum 2 of 2: every named standby has every commit", s_quorum_all_needed, HA_ACQUIRE, NULL },
	{ 11, "quorum 0: nothing promised, nobody may take over", s_quorum_nothing_promised, HA_WAIT, NULL },
	{ 11, "quorum key keeps its meaning after a config change", s_quorum_key_despite_config, HA_WAIT, NULL },
	{ 11, "watchdog required and missing: not a candidate", s_watchdog_required_missing, HA_WAIT, NULL },
	{ 11, "watchdog required and armed: candidate", s_watchdog_required_ok, HA_ACQUIRE, NULL },
	{ 11, "watchdog required and missing while holding the key: release", s_watchdog_required_holds_releases,
	  HA_RELEASE, NULL },
	{ 11, "diverged, rewind failed, reinit allowed", s_diverged_rewind_failed_reinit, HA_REINIT, "node1" },
	{ 11, "diverged, rewind failed, no reinit: wait", s_diverged_rewind_failed, HA_WAIT, NULL },
	{ 11, "diverged but pg_rewind disabled: wait", s_diverged_no_rewind, HA_WAIT, NULL },
	{ 11, "diverged, pg_rewind disabled, remove_data_directory_on_diverged_timelines: reinit",
	  s_diverged_no_rewind_remove, HA_REINIT, "node1" },
	{ 11, "diverged, pg_rewind on: rewind first whatever the remove flag", s_diverged_rewind_on_remove_flag,
	  HA_REWIND, "node1" },
	{ 11, "briefly not streaming: no reinit for the remove flag", s_not_streaming_briefly_remove_flag, HA_WAIT,
	  NULL },
	{ 11, "diverged replica is rewound", s_diverged_replica, HA_REWIND, "node1" },
	{ 11, "briefly not streaming: wait", s_briefly_not_streaming, HA_WAIT, NULL },
	{ 11, "not streaming on leader's timeline: wait", s_not_streaming_same_timeline, HA_WAIT, NULL },
	{ 11, "new leader: follow it", s_new_leader, HA_FOLLOW, "node3" },
	{ 11, "replicatefrom: stream from the upstream replica", s_cascade_starts, HA_FOLLOW, "node3" },
	{ 11, "replicatefrom: streaming from the upstream replica, wait", s_cascade_steady, HA_WAIT, NULL },
	{ 11, "replicatefrom: upstream gone, back to the leader", s_cascade_upstream_gone, HA_FOLLOW, "node1" },
	{ 11, "replicatefrom: upstream stopped, back to the leader", s_cascade_upstream_stopped, HA_FOLLOW, "node1" },
	{ 11, "replicatefrom: upstream promoted, follow it as the leader", s_cascade_upstream_promoted, HA_WAIT, NULL },
	{ 11, "nostream: never streams, never rewound for it", s_nostream_steady, HA_WAIT, NULL },
	{ 11, "nostream: drops the upstream it had", s_nostream_follows_nobody, HA_FOLLOW, "" },
	{ 11, "leader expired: most up-to-date acquires", s_acquire_on_expiry, HA_ACQUIRE, NULL },
	{ 11, "leader expired, tie: acquire (etcd decides)", s_acquire_tie, HA_ACQUIRE, NULL },
	{ 11, "nofailover never acquires", s_refuse_nofailover, HA_WAIT, NULL },
	{ 11, "behind more than maximum_lag_on_failover", s_refuse_behind_max_lag, HA_WAIT, NULL },
	{ 11, "behind exactly maximum_lag_on_failover", s_within_max_lag, HA_ACQUIRE, NULL },
	{ 11, "a healthy peer is ahead", s_refuse_peer_ahead, HA_WAIT, NULL },
	{ 11, "a peer ahead but nofailover does not block", s_peer_ahead_but_nofailover, HA_ACQUIRE, NULL },
	{ 11, "an unreachable peer does not block", s_peer_ahead_unreachable, HA_ACQUIRE, NULL },
	{ 11, "an unhealthy peer does not block", s_peer_ahead_unhealthy, HA_ACQUIRE, NULL },
	{ 11, "a peer still running as primary blocks", s_peer_still_primary, HA_WAIT, NULL },
	{ 11, "behind the last leader's timeline: not a candidate", s_refuse_old_timeline, HA_WAIT, NULL },
	{ 11, "a peer ahead on an old timeline does not block", s_peer_ahead_on_old_timeline, HA_ACQUIRE, NULL },
	{ 11, "ahead of the last leader's timeline: a candidate", s_ahead_timeline, HA_ACQUIRE, NULL },
	{ 11, "check_timeline: ahead of the last leader's timeline is no candidate", s_check_timeline_ahead, HA_WAIT,
	  NULL },
	{ 11, "a peer ahead on a newer timeline blocks", s_peer_on_other_timeline, HA_WAIT, NULL },
	{ 11, "check_timeline: a peer on another timeline does not block", s_check_timeline_peer_other, HA_ACQUIRE,
	  NULL },
	{ 11, "a peer still starting may be ahead: wait", s_peer_starting_may_be_ahead, HA_WAIT, NULL },
	{ 11, "a peer starting for over 2 ttl: ignore it", s_peer_starting_too_long, HA_ACQUIRE, NULL },
	{ 11, "replay paused, leader on a new timeline: no rewind while paused", s_paused_replay_no_rewind, HA_WAIT,
	  NULL },
	{ 11, "replay paused: not a failover candidate", s_paused_replay_no_candidate, HA_WAIT, NULL },
	{ 11, "replay stuck with WAL waiting: not a failover candidate", s_stuck_replay_no_candidate, HA_WAIT, NULL },
	{ 11, "replay behind but moving: candidate", s_replay_catching_up_candidate, HA_ACQUIRE, NULL },
	{ 11, "lag counts from replay: received all, replayed beyond maximum_lag_on_failover", s_replay_lag_beyond_max,
	  HA_WAIT, NULL },
	{ 11, "manual failover naming a paused replica: the operator's choice", s_manual_failover_to_paused, HA_ACQUIRE,
	  NULL },
	{ 11, "replay paused by a hot-standby parameter below the primary's: restart", s_hs_param_below_primary_restart,
	  HA_RESTART, NULL },
	{ 11, "hot-standby parameter below the primary's, replay not paused: wait", s_hs_param_below_primary_not_paused,
	  HA_WAIT, NULL },
	{ 11, "no lease of our own: do not compete", s_no_lease_no_compete, HA_WAIT, NULL },
	{ 11, "paused: the switchover's candidate takes the key", s_sw_paused_target_takes_key, HA_ACQUIRE, NULL },
	{ 11, "paused: the switchover's candidate promotes", s_sw_paused_target_promotes, HA_PROMOTE, NULL },
	{ 11, "switchover to another: leave it the key", s_sw_other_target_waits, HA_WAIT, NULL },
	{ 11, "switchover target silent past ttl: compete", s_sw_target_dead_after_ttl, HA_ACQUIRE, NULL },
	{ 11, "switchover target ignores a peer ahead", s_sw_we_are_target_peer_ahead, HA_ACQUIRE, NULL },
	{ 11, "switchover target too far behind: refuse", s_sw_target_behind_max_lag, HA_WAIT, NULL },
	{ 11, "failover target may be behind", s_failover_target_behind_max_lag, HA_ACQUIRE, NULL },
	{ 11, "failover target on an old timeline: refuse", s_failover_target_old_timeline, HA_WAIT, NULL },
	{ 11, "failover target tagged nofailover: refuse", s_failover_target_nofailover, HA_WAIT, NULL },
	{ 11, "failsafe: replica that confirmed the leader waits", s_replica_confirmed_leader, HA_WAIT, NULL },
	{ 11, "failsafe: confirmation older than ttl: compete", s_replica_confirmed_long_ago, HA_ACQUIRE, NULL },
	{ 11, "failsafe: holding the key a ttl after confirming: wait", s_holds_key_confirmed_leader, HA_WAIT, NULL },
	{ 11, "failsafe: holding the key, confirmation older than ttl: promote", s_holds_key_confirmed_long_ago,
	  HA_PROMOTE, NULL },
	{ 11, "holding the key as replica: promote", s_promote_after_acquire, HA_PROMOTE, NULL },
	{ 11, "promotion in progress: wait", s_promote_in_progress, HA_WAIT, NULL },
	{ 11, "holding key with expired lease: no promote", s_holds_key_lease_expired_replica, HA_WAIT, NULL },
	{ 11, "holding key on an old lease as replica: move it", s_holds_old_lease_replica, HA_ACQUIRE, NULL },
	{ 11, "diverged, rewind failed twice 1s ago: wait before the next", s_diverged_rewind_retry_backoff, HA_WAIT,
	  NULL },
	{ 11, "diverged, rewind failed twice 4s ago: rewind again", s_diverged_rewind_retry_later, HA_REWIND, "node1" },
	/* 12. Postgres the primary */
	{ 11, "standby leader never promotes", s_sb_never_promotes, HA_STANDBY_LEAD, NULL },
	{ 11, "standby leader, replay paused by a hot-standby parameter below the primary's: restart",
	  s_sb_hs_param_below_primary, HA_RESTART, NULL },
	{ 11, "standby leader, replay paused by an operator: keeps leading", s_sb_paused_by_operator, HA_STANDBY_LEAD,
	  NULL },
	{ 11, "standby_cluster names another host: re-point", s_sb_remote_changed, HA_FOLLOW, HA_REMOTE },
	{ 11, "standby leader diverged from the other site while running: rewind", s_sb_running_diverged, HA_REWIND,
	  HA_REMOTE },
	{ 11, "standby leader diverged, pg_rewind failed: wait", s_sb_running_diverged_rewind_failed, HA_WAIT, NULL },
	{ 11, "standby leader diverged, remote not proven: no rewind, waits", s_sb_running_diverged_unproven,
	  HA_STANDBY_LEAD, NULL },
	{ 11, "standby_cluster names an unproven host: no re-point, waits", s_sb_remote_changed_unproven,
	  HA_STANDBY_LEAD, NULL },
	{ 11, "standby leader: the remote it streams from is no longer trusted: follows nobody",
	  s_sb_following_untrusted, HA_FOLLOW, "" },
	{ 11, "standby leader: untrusted current remote dropped before re-pointing",
	  s_sb_following_untrusted_config_usable, HA_FOLLOW, "" },
	{ 11, "standby leader following nobody, remote unproven: waits, never promotes", s_sb_dropped_untrusted_waits,
	  HA_STANDBY_LEAD, NULL },
	{ 11, "standby failover: the new leader re-points to the other site", s_sb_new_leader_repoints, HA_FOLLOW,
	  HA_REMOTE },
	{ 11, "standby leader gone: a replica takes the key", s_sb_failover_acquire, HA_ACQUIRE, NULL },
	{ 11, "standby cluster replica follows the standby leader", s_sb_replica_follows_leader, HA_WAIT, NULL },
	{ 11, "promote-cluster: the standby leader promotes", s_sb_promote_cluster, HA_PROMOTE, NULL },
	{ 11, "standby leader, config key missing: never promotes", s_sb_key_missing_no_promote, HA_WAIT, NULL },
	{ 11, "standby leader, config key invalid: never promotes", s_sb_key_invalid_no_promote, HA_WAIT, NULL },
	{ 11, "config key unknown (never read valid): holding the key, no promotion", s_config_unknown_no_promote,
	  HA_WAIT, NULL },
	{ 11, "config key unknown (never read valid): no free key taken", s_config_unknown_no_acquire, HA_WAIT, NULL },
	{ 11, "config key invalid, last good settings known: the free key taken", s_config_invalid_known_acquires,
	  HA_ACQUIRE, NULL },
	{ 12, "steady leader leads", s_steady_leader, HA_LEAD, NULL },
	{ 12, "primary before its deadline leads", s_deadline_not_yet, HA_LEAD, NULL },
	{ 12, "switchover now: leader hands over", s_sw_leader_now, HA_SWITCHOVER, "node3" },
	{ 12, "switchover to the best candidate", s_sw_leader_best, HA_SWITCHOVER, "" },
	{ 12, "switchover scheduled later: keep leading", s_sw_leader_scheduled_later, HA_LEAD, NULL },
	{ 12, "switchover scheduled and due", s_sw_leader_scheduled_due, HA_SWITCHOVER, "node3" },
	{ 12, "switchover for another leader: clear it", s_sw_for_another_leader, HA_CLEAR_SWITCHOVER, NULL },
	{ 12, "switchover to us done: clear it", s_sw_done_we_are_target, HA_CLEAR_SWITCHOVER, NULL },
	{ 12, "switchover with a candidate while paused: runs now", s_sw_paused_leader, HA_SWITCHOVER, "node3" },
	{ 12, "demote-cluster: the primary stops to become the standby leader", s_sb_demote_cluster, HA_DEMOTE_CLUSTER,
	  NULL },
	{ 12, "demote-cluster to an unproven remote: the primary stays the primary", s_sb_demote_cluster_unproven,
	  HA_LEAD, NULL },
};

/* Only Postgres TLS or the node's own file proves a standby_cluster remote. */
START_TEST(test_standby_remote_proven)
{
	ck_assert(ha_standby_remote_proven(true, NULL, 0, "10.1.0.5", 5432));
	ck_assert(ha_standby_remote_proven(false, "DB.site-a", 5432, "db.site-a", 5432));
	ck_assert(!ha_standby_remote_proven(false, NULL, 0, "10.1.0.5", 5432));
	ck_assert(!ha_standby_remote_proven(false, "10.1.0.5", 5432, "10.6.6.6", 5432));
	ck_assert(!ha_standby_remote_proven(false, "10.1.0.5", 5432, "10.1.0.5", 5433));
	ck_assert(!ha_standby_remote_proven(true, NULL, 0, "", 5432));
}
END_TEST

/* A standby_cluster remote that is one of our own members' addresses. */
START_TEST(test_member_at)
{
	struct ha_cluster_view c;

	memset(&c, 0, sizeof(c));
	add_member(&c, "node1", "primary", 100);
	add_member(&c, "node2", "replica", 100);
	snprintf(c.members[0].host, sizeof(c.members[0].host), "10.0.0.1");
	c.members[0].port = 5432;
	snprintf(c.members[1].host, sizeof(c.members[1].host), "db2.Example");
	c.members[1].port = 5433;
	ck_assert_ptr_eq(ha_member_at(&c, "10.0.0.1", 5432), &c.members[0]);
	ck_assert_ptr_eq(ha_member_at(&c, "DB2.example", 5433), &c.members[1]);
	ck_assert_ptr_null(ha_member_at(&c, "10.0.0.1", 5433));
	ck_assert_ptr_null(ha_member_at(&c, "10.0.0.2", 5432));
	ck_assert_ptr_null(ha_member_at(&c, "", 5432));
	ck_assert_ptr_null(ha_member_at(&c, NULL, 5432));
}
END_TEST

/* The standby leader is the standby cluster's key holder while it is not a
 * primary: a primary that refused an unusable remote is shown as the leader. */
START_TEST(test_is_standby_leader)
{
	struct ha_cluster_view c;
	struct ha_local_view l;

	base(&c, &l);
	ck_assert(!ha_is_standby_leader(&c, &c.members[0])); /* a normal cluster's primary */
	c.standby_cluster = true;
	ck_assert(!ha_is_standby_leader(&c, &c.members[0])); /* still a writable primary */
	snprintf(c.members[0].role, sizeof(c.members[0].role), "replica");
	ck_assert(ha_is_standby_leader(&c, &c.members[0]));
	snprintf(c.members[0].role, sizeof(c.members[0].role), "stopped");
	ck_assert(ha_is_standby_leader(&c, &c.members[0]));  /* restarting as a standby */
	ck_assert(!ha_is_standby_leader(&c, &c.members[1])); /* not the key holder */
	c.standby_cluster = false;
	snprintf(c.members[0].role, sizeof(c.members[0].role), "standby_leader");
	ck_assert(ha_is_standby_leader(&c, &c.members[0])); /* a Patroni member's own role */
	c.has_leader = false;
	ck_assert(!ha_is_standby_leader(&c, &c.members[0]));
}
END_TEST

START_TEST(test_row)
{
	const struct row *r = &rows[_i];
	struct ha_cluster_view c;
	struct ha_local_view l;
	struct ha_action a;

	base(&c, &l);
	r->setup(&c, &l);
	a = ha_decide(&c, &l, NOW);
	ck_assert_msg(a.kind == r->want, "%s: got %s (%s), want %s", r->name, ha_action_name(a.kind), a.reason,
	              ha_action_name(r->want));
	ck_assert_msg(a.rule == r->rule, "%s: decided by rule %d, want rule %d (%s)", r->name, a.rule, r->rule,
	              a.reason);
	ck_assert_msg(a.reason[0] != '\0', "%s: action has no reason", r->name);
	if (r->want_leader)
		ck_assert_msg(strcmp(a.leader, r->want_leader) == 0, "%s: leader '%s', want '%s'", r->name, a.leader,
		              r->want_leader);
}
END_TEST

/* What a replica's replay is doing, and the backoff after failed starts. */
START_TEST(test_replay_check)
{
	struct ha_cluster_view c;
	struct ha_local_view l;
	char why[160];

	base(&c, &l);
	l.pg_receive_lsn = l.pg_replay_lsn = 5000;
	l.pg_replay_progress_at = NOW;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);
	ck_assert_str_eq(ha_replay_state(HA_REPLAY_OK), "running");

	l.pg_replay_paused = true;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_PAUSED);
	ck_assert_msg(strstr(why, "paused") != NULL, "%s", why);
	ck_assert(ha_replay_state_unhealthy(ha_replay_state(HA_REPLAY_PAUSED)));
	l.pg_replay_paused = false;

	/* WAL waits: stuck only past the bound */
	l.pg_receive_lsn = 9000;
	l.pg_replay_progress_at = NOW - 4.9;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);
	l.pg_replay_progress_at = NOW - 5.0;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_STUCK);
	ck_assert_msg(strstr(why, "4000 bytes") != NULL, "%s", why);
	ck_assert(ha_replay_state_unhealthy("stuck replay"));
	c.loop_wait = 10; /* bound 20 s */
	ck_assert_double_eq(ha_replay_bound(&c), 20.0);
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);
	c.loop_wait = 1;

	/* nothing arrives while the leader is ahead */
	l.pg_receive_lsn = 5000;
	l.pg_streaming = false;
	c.leader_lsn = 8000;
	l.pg_not_streaming_since = NOW - 6;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_NOT_STREAMING);
	ck_assert_msg(strstr(why, "node1") != NULL && strstr(why, "3000 bytes") != NULL, "%s", why);
	c.leader_lsn = 5000; /* not ahead */
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);
	c.leader_lsn = 8000;
	c.has_leader = false; /* no leader: everybody stops streaming, nobody is unhealthy for it */
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);

	/* a standby leader whose server says the other site diverged (or is
	 * behind it) is not a healthy replica, whatever the LSNs say */
	c.has_leader = true;
	c.leader_lsn = 5000;
	l.remote_diverged = true;
	snprintf(l.following_remote, sizeof(l.following_remote), "10.0.0.9:5432");
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_NOT_STREAMING);
	ck_assert_msg(strstr(why, "10.0.0.9:5432") != NULL && strstr(why, "diverged") != NULL, "%s", why);
	l.pg_streaming = true; /* streams again (re-pointed): healthy */
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, why, sizeof(why)), HA_REPLAY_OK);
	l.pg_streaming = false;
	l.remote_diverged = false;
	l.following_remote[0] = '\0';

	/* a primary is never "stuck" */
	as_leader(&c, &l);
	l.pg_replay_paused = true;
	ck_assert_int_eq(ha_replay_check(&c, &l, NOW, NULL, 0), HA_REPLAY_OK);
	ck_assert(!ha_replay_state_unhealthy("running"));

	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_PARAMS, 1), 0);
	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_PARAMS, 2), 6);
	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_OTHER, 1), 3);
	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_OTHER, 3), 12);
	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_OTHER, 30), 60);
	ck_assert_double_eq(ha_start_backoff(HA_START_FAIL_OTHER, 0), 0);
}
END_TEST

/* Is a pg_rewind source fit for it: its checkpoint on its timeline? */
START_TEST(test_rewind_source_check)
{
	static const struct {
		const char *name;
		uint32_t ckpt_tl, source_tl, known_tl;
		bool asked;
		double waited;
		enum ha_rewind_source want;
		const char *says;
	} srows[] = {
		{ "primary, checkpointed since its promotion", 6, 6, 6, false, 0, HA_REWIND_SOURCE_READY,
		  "timeline 6" },
		{ "standby, restart-pointed on its timeline", 6, 6, 0, false, 0, HA_REWIND_SOURCE_READY, "timeline 6" },
		{ "checkpoint ahead of a stale member key", 7, 7, 6, false, 0, HA_REWIND_SOURCE_READY, "timeline 7" },
		{ "nothing known: left to pg_rewind", 0, 0, 0, false, 0, HA_REWIND_SOURCE_READY, "" },
		{ "rewound standby, pg_control on the old timeline", 5, 6, 6, false, 0, HA_REWIND_SOURCE_CHECKPOINT,
		  "has not checkpointed on timeline 6 yet (its pg_control is on timeline 5" },
		{ "its member key knows the new timeline, its receiver is down", 5, 5, 6, false, 0,
		  HA_REWIND_SOURCE_CHECKPOINT, "asking it to CHECKPOINT" },
		{ "promoted primary before its first checkpoint", 1, 2, 1, false, 0, HA_REWIND_SOURCE_CHECKPOINT,
		  "timeline 2" },
		{ "still behind after the CHECKPOINT", 5, 6, 6, true, 0, HA_REWIND_SOURCE_WAIT, "not rewinding yet" },
		{ "still behind, just inside the bound", 5, 6, 6, true, 59.9, HA_REWIND_SOURCE_WAIT,
		  "waited 60s of 60s" },
		{ "behind for the whole bound", 5, 6, 6, true, 60, HA_REWIND_SOURCE_GIVE_UP,
		  "has not checkpointed on timeline 6 for 60s" },
		{ "caught up after the CHECKPOINT", 6, 6, 6, true, 30, HA_REWIND_SOURCE_READY, "timeline 6" },
	};
	struct ha_cluster_view c;
	struct ha_local_view l;
	char why[512];

	for (size_t i = 0; i < sizeof(srows) / sizeof(srows[0]); i++) {
		enum ha_rewind_source v = ha_rewind_source_check("node1", srows[i].ckpt_tl, srows[i].source_tl,
		                                                 srows[i].known_tl, srows[i].asked, srows[i].waited, 60,
		                                                 why, sizeof(why));

		ck_assert_msg(v == srows[i].want, "%s: verdict %d, want %d (%s)", srows[i].name, (int)v,
		              (int)srows[i].want, why);
		ck_assert_msg(strstr(why, srows[i].says) != NULL && strstr(why, "node1") != NULL, "%s: says '%s'",
		              srows[i].name, why);
	}
	ck_assert_int_eq(ha_rewind_source_check("x", 5, 6, 0, false, 0, 60, NULL, 0), HA_REWIND_SOURCE_CHECKPOINT);
	base(&c, &l);
	ck_assert_double_eq(ha_rewind_source_bound(&c), 60.0); /* loop_wait 1 */
	c.loop_wait = 10;
	ck_assert_double_eq(ha_rewind_source_bound(&c), 100.0);
}
END_TEST

/* The decision must not depend on anything but its inputs. */
START_TEST(test_pure_repeatable)
{
	struct ha_cluster_view c;
	struct ha_local_view l;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct ha_action a, b;

		base(&c, &l);
		rows[i].setup(&c, &l);
		a = ha_decide(&c, &l, NOW);
		b = ha_decide(&c, &l, NOW);
		ck_assert_int_eq(a.kind, b.kind);
		ck_assert_str_eq(a.reason, b.reason);
	}
}
END_TEST

/* Rule 2 sweep: a primary is never left writable at or past its deadline. */
START_TEST(test_deadline_sweep)
{
	for (double ttl = 2; ttl <= 30; ttl += 0.5) {
		for (int k = 0; k <= (int)((ttl + 2) * 20); k++) {
			double age = k / 20.0;
			struct ha_cluster_view c;
			struct ha_local_view l;
			struct ha_action a;
			bool past;

			base(&c, &l);
			as_leader(&c, &l);
			c.ttl = ttl;
			l.lease_sent = NOW - age;
			past = age >= ttl - ha_lease_margin(ttl);
			if (fabs(age - (ttl - ha_lease_margin(ttl))) < 1e-6)
				continue; /* the exact boundary is a matter of rounding */
			a = ha_decide(&c, &l, NOW);
			if (past)
				ck_assert_msg(a.kind == HA_DEMOTE, "ttl %.1f age %.2f: %s", ttl, age,
				              ha_action_name(a.kind));
			else
				ck_assert_msg(a.kind == HA_LEAD, "ttl %.1f age %.2f: %s", ttl, age,
				              ha_action_name(a.kind));
			ck_assert(ha_lease_margin(ttl) > 0 && ha_lease_margin(ttl) <= 1.0);
		}
	}
}
END_TEST

/* ha_deadline, the one formula of the loop, the keeper and the fence: a
 * failsafe round counts like a renewal sent when it began, but only while
 * failsafe_mode is on and etcd unreachable (ha_lease_deadline). */
START_TEST(test_deadline_one_formula)
{
	struct ha_cluster_view c;
	struct ha_local_view l;
	const double m = ha_lease_margin(5);

	ck_assert(fabs(ha_deadline(7, 100, 5, 0) - (105 - m)) < 1e-9);
	ck_assert(fabs(ha_deadline(7, 100, 5, 102) - (107 - m)) < 1e-9); /* a later round extends */
	ck_assert(fabs(ha_deadline(7, 100, 5, 99) - (105 - m)) < 1e-9);  /* an older one does not */
	ck_assert(fabs(ha_deadline(0, 100, 5, 102) - (107 - m)) < 1e-9); /* lease lost in failsafe */
	ck_assert(ha_deadline(0, 100, 5, 0) == 0);                       /* nothing may write */
	ck_assert(ha_deadline(7, 0, 5, 0) == 0);

	base(&c, &l);
	as_leader(&c, &l);
	l.lease_sent = NOW - 3;
	l.failsafe_confirmed_at = NOW - 1;
	c.failsafe_mode = true;
	c.etcd_ok = false;
	ck_assert(fabs(ha_lease_deadline(&c, &l) - ha_deadline(l.lease_id, l.lease_sent, c.ttl, NOW - 1)) < 1e-9);
	ck_assert(ha_lease_deadline(&c, &l) > NOW - 3 + c.ttl - m);
	c.etcd_ok = true; /* etcd answers: the lease's deadline alone */
	ck_assert(fabs(ha_lease_deadline(&c, &l) - (NOW - 3 + c.ttl - m)) < 1e-9);
	c.etcd_ok = false;
	c.failsafe_mode = false; /* failsafe off: the rounds do not count */
	ck_assert(fabs(ha_lease_deadline(&c, &l) - (NOW - 3 + c.ttl - m)) < 1e-9);
}
END_TEST

/* The keepalive cadence: as sparse as the etcd stall the leader must ride
 * out allows (max(retry_timeout, 1 s) within ttl - margin), never denser
 * than min(loop_wait, ttl/4), and with a watchdog short enough for its
 * timeout. */
START_TEST(test_keepalive_interval)
{
	ck_assert(fabs(ha_keepalive_interval(5, 1, 2, -1) - 2.0) < 1e-9);     /* defaults: 5 - 1 - 2 */
	ck_assert(fabs(ha_keepalive_interval(3, 1, 1, -1) - 1.25) < 1e-9);    /* 3 - 0.75 - 1 */
	ck_assert(fabs(ha_keepalive_interval(2, 1, 0.5, -1) - 0.5) < 1e-9);   /* ttl 2 rides out 1 s */
	ck_assert(fabs(ha_keepalive_interval(30, 10, 10, -1) - 19.0) < 1e-9); /* 30 - 1 - 10 */
	ck_assert(fabs(ha_keepalive_interval(5, 1, 2, 0.5) - 1.75) < 1e-9);   /* watchdog: (5 - 0.5 - 1) / 2 */
	for (double ttl = 2; ttl <= 30; ttl += 0.5) {
		double rt = (ttl - 1) / 2, iv = ha_keepalive_interval(ttl, 1, rt, -1);
		double ride = rt > 1 ? rt : 1;

		ck_assert(iv >= (ttl / 4 < 1 ? ttl / 4 : 1) - 1e-9);
		ck_assert(ttl - ha_lease_margin(ttl) - iv >= ride - 1e-9 || iv <= (ttl / 4 < 1 ? ttl / 4 : 1) + 1e-9);
	}
}
END_TEST

/* The table reads as the policy: rows in rule order, every rule with a row. */
START_TEST(test_rows_in_rule_order)
{
	bool seen[13] = { false };

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ck_assert_msg(rows[i].rule >= 1 && rows[i].rule <= 12, "%s: rule %d", rows[i].name, rows[i].rule);
		ck_assert_msg(i == 0 || rows[i - 1].rule <= rows[i].rule, "%s (rule %d) comes after a row of rule %d",
		              rows[i].name, rows[i].rule, rows[i - 1].rule);
		seen[rows[i].rule] = true;
	}
	for (int r = 1; r <= 12; r++)
		ck_assert_msg(seen[r], "rule %d has no row", r);
}
END_TEST

/* ---- the upstream of a replica (ha_upstream, tags replicatefrom and nostream) ---- */

/* We are node2, node1 leads, node3 is a running replica. */
static void up_none(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	(void)l;
}
static void up_running(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", "node3");
	l->replicatefrom_confirmed = true;
}
static void up_missing(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", "node9");
}
static void up_stopped(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(c->members[2].state, sizeof(c->members[2].state), "stopped");
	snprintf(c->members[2].role, sizeof(c->members[2].role), "stopped");
}
static void up_starting(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(c->members[2].state, sizeof(c->members[2].state), "starting");
}
static void up_not_streaming(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(c->members[2].state, sizeof(c->members[2].state), "not streaming");
}
static void up_is_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	(void)c;
	up_running(c, l);
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", "node1");
}
static void up_cascades_to_us(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(c->members[2].replicatefrom, sizeof(c->members[2].replicatefrom), "node2");
}
static void up_longer_circle(struct ha_cluster_view *c, struct ha_local_view *l)
{
	/* node2 -> node3 -> node4 -> node2 */
	up_running(c, l);
	add_member(c, "node4", "replica", 4000);
	snprintf(c->members[2].replicatefrom, sizeof(c->members[2].replicatefrom), "node4");
	snprintf(c->members[3].replicatefrom, sizeof(c->members[3].replicatefrom), "node2");
}
static void up_chain(struct ha_cluster_view *c, struct ha_local_view *l)
{
	/* node2 -> node3 -> node4 (which streams from the leader): fine */
	up_running(c, l);
	add_member(c, "node4", "replica", 4000);
	snprintf(c->members[2].replicatefrom, sizeof(c->members[2].replicatefrom), "node4");
}
static void up_unconfirmed(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	l->replicatefrom_confirmed = false;
}
static void up_self(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	snprintf(l->replicatefrom, sizeof(l->replicatefrom), "%s", "node2");
}
static void up_no_leader(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	c->has_leader = false;
	c->leader[0] = '\0';
}
static void up_nostream(struct ha_cluster_view *c, struct ha_local_view *l)
{
	up_running(c, l);
	l->nostream = true;
}

static const struct up_row {
	const char *name;
	void (*setup)(struct ha_cluster_view *, struct ha_local_view *);
	const char *want;
	const char *why; /* a part of the reason, "" = none given */
} up_rows[] = {
	{ "no tag: the leader", up_none, "node1", "" },
	{ "upstream a running, confirmed replica: it", up_running, "node3", "" },
	{ "upstream missing: the leader", up_missing, "node1", "node9 is gone" },
	{ "upstream stopped: the leader", up_stopped, "node1", "not a running replica (stopped, stopped)" },
	{ "upstream starting: the leader", up_starting, "node1", "not a running replica" },
	{ "upstream not streaming itself: the leader", up_not_streaming, "node1", "not a running replica" },
	{ "upstream is the leader: the leader", up_is_leader, "node1", "the leader now" },
	{ "upstream cascades back to us: the leader", up_cascades_to_us, "node1", "a circle" },
	{ "a longer circle: the leader", up_longer_circle, "node1", "a circle" },
	{ "a chain without circle: the upstream", up_chain, "node3", "" },
	{ "upstream not confirmed: the leader", up_unconfirmed, "node1", "has not confirmed" },
	{ "tag names us: the leader", up_self, "node1", "" },
	{ "no leader: nobody", up_no_leader, "", "" },
	{ "nostream: nobody", up_nostream, "", "" },
};

START_TEST(test_upstream)
{
	const struct up_row *r = &up_rows[_i];
	struct ha_cluster_view c;
	struct ha_local_view l;
	char why[200];
	const char *up;

	base(&c, &l);
	r->setup(&c, &l);
	up = ha_upstream(&c, &l, why, sizeof(why));
	ck_assert_msg(strcmp(up, r->want) == 0, "%s: upstream '%s', want '%s' (%s)", r->name, up, r->want, why);
	if (r->why[0])
		ck_assert_msg(strstr(why, r->why) != NULL, "%s: why '%s' lacks '%s'", r->name, why, r->why);
	else
		ck_assert_msg(why[0] == '\0', "%s: why '%s', want none", r->name, why);
	/* The same rule as the others judge it (no REST confirmation there). */
	if (strcmp(r->name, "upstream not confirmed: the leader") != 0) {
		struct ha_member me;

		memset(&me, 0, sizeof(me));
		snprintf(me.name, sizeof(me.name), "%s", l.name);
		snprintf(me.replicatefrom, sizeof(me.replicatefrom), "%s", l.replicatefrom);
		me.nostream = l.nostream;
		ck_assert_str_eq(ha_member_upstream(&c, &me), r->want);
	}
}
END_TEST

/* ---- the switchover candidate (ha_switchover_ready, ha_switchover_choose) ---- */

static struct ha_peer_status replica_status(uint64_t lsn)
{
	struct ha_peer_status st;

	memset(&st, 0, sizeof(st));
	st.answered = true;
	st.pg_running = true;
	snprintf(st.role, sizeof(st.role), "replica");
	snprintf(st.state, sizeof(st.state), "running");
	st.timeline = 1;
	st.lsn = lsn;
	return st;
}

/* node2 leads; node1 and node3 are its replicas, both asked. */
static void sw_base(struct ha_cluster_view *c, struct ha_local_view *l)
{
	base(c, l);
	as_leader(c, l);
	for (size_t i = 0; i < c->n_members; i++)
		snprintf(c->members[i].api_url, sizeof(c->members[i].api_url), "https://%s:8008", c->members[i].name);
	sw(c, "node2", "", 0, false);
}

struct sw_row {
	const char *name;
	void (*setup)(struct ha_cluster_view *, struct ha_local_view *, struct ha_peer_status st[2]);
	int want;        /* index into {"node1", "node3"}, -1 = nobody */
	const char *why; /* ha_switchover_ready's reason for node1 (NULL: not checked) */
};

static void w_lsn_wins(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	(void)c, (void)l;
	st[0] = replica_status(4000);
	st[1] = replica_status(4500);
}
static void w_tie_priority(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	(void)l;
	st[0] = replica_status(4500);
	st[1] = replica_status(4500);
	c->members[0].failover_priority = 1;
	c->members[2].failover_priority = 5; /* node3 ranks first, as in a failover */
}
static void w_tie_name(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	(void)c, (void)l;
	st[0] = replica_status(4500);
	st[1] = replica_status(4500);
}
static void w_lsn_before_priority(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_tie_priority(c, l, st);
	st[0].lsn = 4600; /* node1 is ahead: the LSN decides before the priority */
}
static void w_sync_first(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	(void)l;
	st[0] = replica_status(4000);
	st[1] = replica_status(4900);
	c->synchronous_mode = true;
	c->has_sync = true;
	snprintf(c->sync_leader, sizeof(c->sync_leader), "node2");
	c->n_sync = 1;
	snprintf(c->sync_standbys[0], sizeof(c->sync_standbys[0]), "node1");
}
static void w_nofailover(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	c->members[2].nofailover = true;
	c->members[0].nofailover = true;
}
static void w_silent(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	st[1].answered = false;
	st[0].answered = false;
	snprintf(st[0].error, sizeof(st[0].error), "timed out");
}
static void w_not_replica(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	snprintf(st[0].role, sizeof(st[0].role), "primary");
}
static void w_paused(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	snprintf(st[0].state, sizeof(st[0].state), "replay paused");
	snprintf(st[1].state, sizeof(st[1].state), "not streaming");
}
static void w_timeline(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	st[0].timeline = 2;
	st[1].pg_running = false;
}
static void w_lag(struct ha_cluster_view *c, struct ha_local_view *l, struct ha_peer_status st[2])
{
	w_lsn_wins(c, l, st);
	l->pg_lsn = 4000 + (uint64_t)c->maximum_lag_on_failover + 1;
	st[1].lsn = 4000;
}

static const struct sw_row sw_rows[] = {
	{ "the most advanced ready replica", w_lsn_wins, 1, NULL },
	{ "equally advanced: the higher failover_priority", w_tie_priority, 1, NULL },
	{ "equally advanced, equal priority: the smaller name", w_tie_name, 0, NULL },
	{ "the LSN decides before the priority", w_lsn_before_priority, 0, NULL },
	{ "synchronous mode: the one the sync key allows, though behind", w_sync_first, 0, NULL },
	{ "nofailover: nobody", w_nofailover, -1, "node1 is tagged nofailover" },
	{ "silent: nobody", w_silent, -1, "node1 does not answer: timed out" },
	{ "a primary is no candidate", w_not_replica, 1,
	  "node1 is not a running replica (role primary, state running)" },
	{ "paused or not streaming replay: nobody (rule 8)", w_paused, -1,
	  "node1 is not replaying (state replay paused)" },
	{ "another timeline, or Postgres down: nobody", w_timeline, -1, "node1 is on timeline 2, we are on 1" },
	{ "beyond maximum_lag_on_failover: nobody", w_lag, -1,
	  "node1 is 1048577 bytes behind (maximum_lag_on_failover "
	  "1048576)" },
};

START_TEST(test_switchover_choose)
{
	const struct sw_row *r = &sw_rows[_i];
	const char *names[2] = { "node1", "node3" };
	struct ha_cluster_view c;
	struct ha_local_view l;
	struct ha_peer_status st[2];
	char why[300] = "";
	int got;

	sw_base(&c, &l);
	r->setup(&c, &l, st);
	got = ha_switchover_choose(&c, &l, names, st, 2);
	ck_assert_msg(got == r->want, "%s: chose %d, want %d", r->name, got, r->want);
	ck_assert(ha_switchover_ready(&c, &l, "node1", &st[0], why, sizeof(why)) == (r->why == NULL || r->want == 0));
	if (r->why)
		ck_assert_msg(strcmp(why, r->why) == 0, "%s: why '%s', want '%s'", r->name, why, r->why);
	/* Ourselves, or a name the cluster does not know, never. */
	ck_assert(!ha_switchover_ready(&c, &l, "node9", &st[0], why, sizeof(why)));
	ck_assert_str_eq(why, "node9 is not a member of the cluster");
}
END_TEST

/* ---- the one view builder (local_view_update), shared with the simulation ---- */

static void obs_replica(struct local_obs *o, uint32_t tl, bool streaming)
{
	memset(o, 0, sizeof(*o));
	o->name = "node2";
	o->lease_id = 200;
	o->lease_sent = NOW - 0.5;
	o->datadir = HA_DATADIR_VALID;
	o->ctl_valid = true;
	o->ctl_sysid = 42;
	o->ctl_timeline = 1;
	o->postmaster_running = true;
	o->pg_answered = true;
	o->in_recovery = true;
	o->timeline = tl;
	o->current_lsn = o->receive_lsn = o->replay_lsn = 5000;
	o->wal_receiver_streaming = streaming;
}

START_TEST(test_local_view_update)
{
	struct ha_cluster_view c;
	struct ha_local_view l;
	struct local_memory m;
	struct local_obs o;
	struct local_events ev;

	base(&c, &l);
	memset(&l, 0, sizeof(l));
	memset(&m, 0, sizeof(m));
	/* A failed start, then Postgres answers: the edge once, the failure forgotten. */
	m.pg_start_failed = true;
	m.start_failure = HA_START_FAIL_OTHER;
	m.start_failures = 2;
	snprintf(m.following, sizeof(m.following), "node1");
	obs_replica(&o, 2, true);
	local_view_update(&l, &m, &o, &c, NOW, &ev);
	ck_assert(ev.became_ready && !ev.stopped_answering && !ev.promoted);
	ck_assert(l.pg_ready && !l.pg_primary && l.pg_timeline == 2 && l.pg_streaming);
	ck_assert(!l.pg_start_failed && l.pg_start_failures == 0 && m.streamed_tl == 2);
	ck_assert_str_eq(l.following, "node1");
	local_view_update(&l, &m, &o, &c, NOW + 1, &ev);
	ck_assert(!ev.became_ready);
	/* The primary died: the receiver is gone and Postgres reports timeline 1
	 * again; the last streamed timeline stays true (an election needs it). */
	obs_replica(&o, 1, false);
	local_view_update(&l, &m, &o, &c, NOW + 2, &ev);
	ck_assert_uint_eq(l.pg_timeline, 2);
	ck_assert(l.pg_not_streaming_since == NOW + 2);
	local_view_update(&l, &m, &o, &c, NOW + 3, &ev);
	ck_assert(l.pg_not_streaming_since == NOW + 2);
	/* Replay stuck with WAL waiting: progress stays at the last move. */
	o.receive_lsn = 6000;
	local_view_update(&l, &m, &o, &c, NOW + 4, &ev);
	ck_assert(l.pg_replay_progress_at == NOW + 3); /* nothing waited until then */
	local_view_update(&l, &m, &o, &c, NOW + 9, &ev);
	ck_assert(l.pg_replay_progress_at == NOW + 3);
	o.replay_lsn = 5500; /* it moves */
	local_view_update(&l, &m, &o, &c, NOW + 10, &ev);
	ck_assert(l.pg_replay_progress_at == NOW + 10);
	/* It stops answering: the edge, and not ready. */
	o.pg_answered = false;
	local_view_update(&l, &m, &o, &c, NOW + 10.5, &ev);
	ck_assert(ev.stopped_answering && !l.pg_ready && l.pg_running);
	/* A promotion finishes: the edge, and the start counts as a primary's. */
	obs_replica(&o, 3, false);
	o.in_recovery = false;
	m.promote_requested = true;
	local_view_update(&l, &m, &o, &c, NOW + 11, &ev);
	ck_assert(ev.promoted && l.pg_primary && l.pg_started_primary && !l.promote_requested && m.streamed_tl == 0);
	/* Nothing runs and pg_control is unreadable: not a data directory. */
	obs_replica(&o, 1, false);
	o.postmaster_running = o.pg_answered = false;
	o.ctl_valid = false;
	local_view_update(&l, &m, &o, &c, NOW + 12, &ev);
	ck_assert(l.datadir == HA_DATADIR_INVALID && !l.pg_running);
	/* A former primary, but not after a base backup, nor once rewound
	 * against the current leader. */
	o.ctl_valid = o.ctl_was_primary = true;
	local_view_update(&l, &m, &o, &c, NOW + 13, &ev);
	ck_assert(l.datadir == HA_DATADIR_VALID && l.datadir_was_primary);
	o.backup_label = true;
	local_view_update(&l, &m, &o, &c, NOW + 14, &ev);
	ck_assert(!l.datadir_was_primary);
	o.backup_label = false;
	snprintf(m.rewound_for, sizeof(m.rewound_for), "node1");
	local_view_update(&l, &m, &o, &c, NOW + 15, &ev);
	ck_assert(!l.datadir_was_primary);
	/* Rewound against this leader and the start still diverges: to the
	 * core, a failed rewind. */
	m.pg_start_failed = true;
	m.start_failure = HA_START_FAIL_DIVERGED;
	snprintf(m.rewind_ok_for, sizeof(m.rewind_ok_for), "node1");
	local_view_update(&l, &m, &o, &c, NOW + 16, &ev);
	ck_assert(l.job_failed == HA_JOB_REWIND);
}
END_TEST

START_TEST(test_names)
{
	for (int k = HA_WAIT; k <= HA_SHUTDOWN; k++)
		ck_assert_str_ne(ha_action_name((enum ha_action_kind)k), "unknown");
	/* Roles and states: the wire strings, both ways. */
	for (int r = HA_ROLE_PRIMARY; r <= HA_ROLE_STOPPED; r++)
		ck_assert_int_eq(ha_role_from_name(ha_role_name((enum ha_role)r)), r);
	for (int st = HA_STATE_RUNNING; st <= HA_STATE_NOT_STREAMING; st++)
		ck_assert_int_eq(ha_state_from_name(ha_state_name((enum ha_state)st)), st);
	ck_assert_str_eq(ha_role_name(HA_ROLE_UNINITIALIZED), "uninitialized");
	ck_assert_str_eq(ha_state_name(HA_STATE_START_FAILED), "start failed");
	ck_assert_int_eq(ha_role_from_name("leader"), HA_ROLE_UNKNOWN);
	ck_assert_int_eq(ha_state_from_name(NULL), HA_STATE_UNKNOWN);
	ck_assert_int_eq(ha_role_of(false, false, HA_DATADIR_EMPTY), HA_ROLE_UNINITIALIZED);
	ck_assert_int_eq(ha_role_of(true, false, HA_DATADIR_VALID), HA_ROLE_REPLICA);
	ck_assert_int_eq(ha_state_of(HA_JOB_CLONE, false, false, false, false, false, HA_REPLAY_OK), HA_STATE_CLONING);
	ck_assert_int_eq(ha_state_of(HA_JOB_NONE, false, false, true, false, false, HA_REPLAY_OK),
	                 HA_STATE_START_FAILED);
	ck_assert_int_eq(ha_state_of(HA_JOB_NONE, false, true, false, true, false, HA_REPLAY_STUCK),
	                 HA_STATE_STUCK_REPLAY);
	ck_assert_int_eq(ha_state_of(HA_JOB_NONE, false, true, false, true, true, HA_REPLAY_OK), HA_STATE_RUNNING);
	ck_assert_int_eq(ha_state_of(HA_JOB_NONE, false, true, false, false, false, HA_REPLAY_OK), HA_STATE_STARTING);
}
END_TEST

/* ---- ha_sync_plan ---- */

static void plan_base(struct ha_cluster_view *c, struct ha_sync_input *in)
{
	struct ha_local_view l;

	base(c, &l);
	as_leader(c, &l);
	c->synchronous_mode = true;
	c->synchronous_node_count = 1;
	snprintf(c->members[0].role, sizeof(c->members[0].role), "replica"); /* node1 */
	memset(in, 0, sizeof(*in));
	in->n = 2;
	snprintf(in->standbys[0].name, HA_NAME_MAX, "node1");
	in->standbys[0].streaming = true;
	in->standbys[0].flush_lsn = 5000;
	snprintf(in->standbys[1].name, HA_NAME_MAX, "node3");
	in->standbys[1].streaming = true;
	in->standbys[1].flush_lsn = 5000;
}

static bool step_names(const struct ha_sync_step *st, const char *a, const char *b)
{
	size_t want = (a != NULL) + (b != NULL);

	if (st->n != want)
		return false;
	if (a && strcmp(st->names[0], a) != 0)
		return false;
	if (b && strcmp(st->names[1], b) != 0)
		return false;
	return true;
}

/* maximum_lag_on_syncnode: a standby lagging more than that behind the
 * most advanced one (with one standby: behind the primary) is not chosen. */
static const struct syncnode_case {
	const char *name;
	int64_t max_lag;
	uint64_t node1_flush, node3_flush, primary_lsn;
	bool only_node1;
	const char *want; /* SET_PG names, NULL: no step */
} syncnode_cases[] = {
	{ "off (-1): by name", -1, 1000, 5000, 5000, false, "node1" },
	{ "off (0): by name", 0, 1000, 5000, 5000, false, "node1" },
	{ "node1 4000 behind node3, limit 1000: node3", 1000, 1000, 5000, 5000, false, "node3" },
	{ "node1 exactly at the limit: node1", 4000, 1000, 5000, 5000, false, "node1" },
	{ "both lag the primary, not each other: node1", 1000, 5000, 5000, 90000, false, "node1" },
	{ "one standby, close to the primary: node1", 1000, 1000, 0, 1500, true, "node1" },
	{ "one standby, far behind the primary: nobody", 1000, 1000, 0, 9000, true, NULL },
	{ "one standby, primary LSN unknown: node1", 1000, 1000, 0, 0, true, "node1" },
};

START_TEST(test_sync_plan_max_lag_on_syncnode)
{
	const struct syncnode_case *sc = &syncnode_cases[_i];
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	c.maximum_lag_on_syncnode = sc->max_lag;
	in.standbys[0].flush_lsn = sc->node1_flush;
	in.standbys[1].flush_lsn = sc->node3_flush;
	in.primary_lsn = sc->primary_lsn;
	if (sc->only_node1)
		in.n = 1;
	st = ha_sync_plan(&c, "node2", &in);
	if (sc->want == NULL) {
		ck_assert_msg(st.kind == HA_SYNC_NONE, "%s: step %d (%s)", sc->name, (int)st.kind, st.reason);
		return;
	}
	ck_assert_msg(st.kind == HA_SYNC_SET_PG, "%s: step %d (%s)", sc->name, (int)st.kind, st.reason);
	ck_assert_msg(step_names(&st, sc->want, NULL), "%s: %s", sc->name, st.reason);
}
END_TEST

/* Fresh leader, no sync key: take the key over (empty), then wait for one
 * standby in Postgres, then record it once synchronous and caught up. */
START_TEST(test_sync_plan_from_scratch)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert(step_names(&st, NULL, NULL));

	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert(step_names(&st, "node1", NULL)); /* by name */
	ck_assert(!st.star);

	/* Postgres waits for node1 since LSN 6000; node1 is sync but behind. */
	in.n_pg = 1;
	snprintf(in.pg[0], HA_NAME_MAX, "node1");
	in.pg_since_lsn = 6000;
	in.standbys[0].sync = true;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);

	in.standbys[0].flush_lsn = 6000;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert(step_names(&st, "node1", NULL));

	c.n_sync = 1;
	snprintf(c.sync_standbys[0], HA_NAME_MAX, "node1");
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);
}
END_TEST

/* The recorded standby stops streaming: leave the key first, then
 * Postgres moves on to the other one; never the other way round. */
START_TEST(test_sync_plan_standby_lost)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	c.n_sync = 1;
	snprintf(c.sync_standbys[0], HA_NAME_MAX, "node1");
	in.n_pg = 1;
	snprintf(in.pg[0], HA_NAME_MAX, "node1");
	in.standbys[0].streaming = false;

	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert(step_names(&st, NULL, NULL));

	c.n_sync = 0;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert_msg(step_names(&st, "node3", NULL), "%zu %s: %s", st.n, st.names[0], st.reason);
}
END_TEST

/* The recorded standby is kept even if another sorts first by name. */
START_TEST(test_sync_plan_stable)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	c.n_sync = 1;
	snprintf(c.sync_standbys[0], HA_NAME_MAX, "node3");
	in.n_pg = 1;
	snprintf(in.pg[0], HA_NAME_MAX, "node3");
	in.standbys[1].sync = true;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);

	/* A member still cloning streams under its name too: never chosen. */
	snprintf(c.members[0].state, sizeof(c.members[0].state), "cloning");
	c.synchronous_node_count = 2;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);
	snprintf(c.members[0].state, sizeof(c.members[0].state), "running");

	/* Two wanted: node1 joins Postgres first, the key later. */
	c.synchronous_node_count = 2;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert(step_names(&st, "node3", "node1"));
}
END_TEST

/* Strict: nobody to wait for means '*', so commits block; nosync members
 * are never chosen; leaving sync mode clears the key before Postgres. */
START_TEST(test_sync_plan_strict_nosync_off)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.synchronous_mode_strict = true;
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	c.members[0].nosync = true;       /* node1 */
	in.standbys[1].streaming = false; /* node3 */
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert_int_eq(st.n, 0);
	ck_assert(st.star);

	in.pg_star = true;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);

	/* Not strict: '' (asynchronous) instead. */
	c.synchronous_mode_strict = false;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert(!st.star);

	/* Sync mode off with a key naming node3: key first. */
	c.synchronous_mode = false;
	c.n_sync = 1;
	snprintf(c.sync_standbys[0], HA_NAME_MAX, "node3");
	in.pg_star = false;
	in.n_pg = 1;
	snprintf(in.pg[0], HA_NAME_MAX, "node3");
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert_int_eq(st.n, 0);
	c.n_sync = 0;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert_int_eq(st.n, 0);
	ck_assert(!st.star);
}
END_TEST

/* Invariant over many random inputs: a step never adds to the key a
 * standby Postgres does not wait for, and never removes from Postgres a
 * standby the key still names. */
START_TEST(test_sync_plan_invariant)
{
	uint64_t x = 88172645463325252ull;

	for (int iter = 0; iter < 20000; iter++) {
		struct ha_cluster_view c;
		struct ha_sync_input in;
		struct ha_sync_step st;
		const char *names[4] = { "node1", "node3", "node4", "node5" };

		plan_base(&c, &in);
		add_member(&c, "node4", "replica", 4000);
		add_member(&c, "node5", "replica", 4000);
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
		c.synchronous_mode = RND() % 5 != 0;
		c.synchronous_mode_strict = RND() % 2;
		c.synchronous_node_count = 1 + (int)(RND() % 3);
		c.has_sync = RND() % 4 != 0;
		snprintf(c.sync_leader, HA_NAME_MAX, "%s", RND() % 4 ? "node2" : "node1");
		c.n_sync = 0;
		in.n = 0;
		in.n_pg = 0;
		for (int i = 0; i < 4; i++) {
			if (RND() % 3 == 0)
				snprintf(c.sync_standbys[c.n_sync++], HA_NAME_MAX, "%s", names[i]);
			if (RND() % 3 == 0)
				snprintf(in.pg[in.n_pg++], HA_NAME_MAX, "%s", names[i]);
			if (RND() % 4 != 0) {
				struct ha_sync_standby *sb = &in.standbys[in.n++];
				snprintf(sb->name, HA_NAME_MAX, "%s", names[i]);
				sb->streaming = RND() % 4 != 0;
				sb->sync = RND() % 2;
				sb->flush_lsn = RND() % 3 * 1000;
			}
			c.members[i < 1 ? 0 : i + 1].nosync = RND() % 6 == 0;
		}
		in.pg_star = in.n_pg == 0 && RND() % 3 == 0;
		in.pg_since_lsn = RND() % 3 * 1000;
		c.synchronous_quorum = RND() % 3 == 0;
		c.sync_quorum = c.synchronous_quorum ? (int)(RND() % 3) : 0;
		in.pg_quorum = c.synchronous_quorum && in.n_pg ? 1 + (int)(RND() % 2) : 0;
#undef RND
		st = ha_sync_plan(&c, "node2", &in);
		if (c.synchronous_mode && c.synchronous_quorum && c.has_sync && strcmp(c.sync_leader, "node2") == 0) {
			/* quorum: Postgres never waits outside the key, nor for fewer
			 * than the key promises */
			if (st.kind == HA_SYNC_SET_PG) {
				for (size_t i = 0; i < st.n; i++) {
					bool in_key = false;
					for (size_t j = 0; j < c.n_sync; j++)
						in_key |= strcmp(c.sync_standbys[j], st.names[i]) == 0;
					ck_assert_msg(in_key, "iter %d: Postgres would wait for %s outside the key",
					              iter, st.names[i]);
				}
				ck_assert_msg(st.n == 0 || st.quorum >= c.sync_quorum,
				              "iter %d: quorum below the key's", iter);
			}
			if (st.kind == HA_SYNC_SET_KEY)
				ck_assert_msg(st.quorum <= (in.n_pg ? in.pg_quorum : 0) || st.quorum <= c.sync_quorum,
				              "iter %d: key quorum %d above Postgres' %d", iter, st.quorum,
				              in.pg_quorum);
			continue;
		}
		if (st.kind == HA_SYNC_SET_KEY) {
			bool ours = c.has_sync && strcmp(c.sync_leader, "node2") == 0;
			for (size_t i = 0; i < st.n; i++) {
				bool was = false, in_pg = false;
				for (size_t j = 0; ours && j < c.n_sync; j++)
					was |= strcmp(c.sync_standbys[j], st.names[i]) == 0;
				for (size_t j = 0; j < in.n_pg; j++)
					in_pg |= strcmp(in.pg[j], st.names[i]) == 0;
				/* a name new to the key must already be waited for */
				ck_assert_msg(was || in_pg, "iter %d: %s added to the key before Postgres", iter,
				              st.names[i]);
			}
		} else if (st.kind == HA_SYNC_SET_PG && c.has_sync && strcmp(c.sync_leader, "node2") == 0 &&
		           c.synchronous_mode) {
			for (size_t j = 0; j < c.n_sync; j++) {
				bool kept = false;
				for (size_t i = 0; i < st.n; i++)
					kept |= strcmp(st.names[i], c.sync_standbys[j]) == 0;
				ck_assert_msg(kept, "iter %d: %s dropped from Postgres while the key names it", iter,
				              c.sync_standbys[j]);
			}
		}
	}
}
END_TEST

/* Quorum commit from scratch with two standbys, then one is lost. */
START_TEST(test_sync_plan_quorum)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.synchronous_quorum = true;
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");

	/* 1. both into the key first, promising nothing yet */
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert(step_names(&st, "node1", "node3"));
	ck_assert_int_eq(st.quorum, 0);
	c.n_sync = 2;
	snprintf(c.sync_standbys[0], HA_NAME_MAX, "node1");
	snprintf(c.sync_standbys[1], HA_NAME_MAX, "node3");

	/* 2. Postgres: ANY 1 (node1, node3) */
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert_int_eq(st.quorum, 1);
	ck_assert_uint_eq(st.n, 2);
	in.n_pg = 2;
	snprintf(in.pg[0], HA_NAME_MAX, "node1");
	snprintf(in.pg[1], HA_NAME_MAX, "node3");
	in.pg_quorum = 1;
	in.pg_since_lsn = 7000;

	/* 3. the key's quorum rises only once one of them caught up */
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);
	in.standbys[1].flush_lsn = 7000;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert_int_eq(st.quorum, 1);
	c.sync_quorum = 1;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE);

	/* node3 stops streaming: Postgres first (ANY 1 (node1)), then the key,
	 * once node1 has caught up with that change. */
	in.standbys[1].streaming = false;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert(step_names(&st, "node1", NULL));
	in.n_pg = 1;
	in.pg_since_lsn = 8000;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_NONE); /* node1 at 5000 < 8000 */
	in.standbys[0].flush_lsn = 8000;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert(step_names(&st, "node1", NULL));
	ck_assert_int_eq(st.quorum, 1);

	/* Going back to FIRST n: the key starts again from nobody. */
	c.synchronous_quorum = false;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_KEY);
	ck_assert_uint_eq(st.n, 0);
	ck_assert_int_eq(st.quorum, 0);
}
END_TEST

/* A cascaded member is never a synchronous standby of the primary, even
 * while it still streams from it on its way to its upstream replica. */
START_TEST(test_sync_plan_skips_cascaded)
{
	struct ha_cluster_view c;
	struct ha_sync_input in;
	struct ha_sync_step st;

	plan_base(&c, &in);
	c.has_sync = true;
	snprintf(c.sync_leader, HA_NAME_MAX, "node2");
	/* node1 (first by name) streams from node3 by its tag */
	snprintf(c.members[0].replicatefrom, sizeof(c.members[0].replicatefrom), "node3");
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert_msg(step_names(&st, "node3", NULL), "%zu %s: %s", st.n, st.names[0], st.reason);
	/* node3 stopped: node1 streams from us again and may be chosen */
	snprintf(c.members[2].state, sizeof(c.members[2].state), "stopped");
	in.standbys[1].streaming = false;
	st = ha_sync_plan(&c, "node2", &in);
	ck_assert_int_eq(st.kind, HA_SYNC_SET_PG);
	ck_assert(step_names(&st, "node1", NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ha");
	TCase *tc = tcase_create("decide");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_row, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_pure_repeatable);
	tcase_add_test(tc, test_replay_check);
	tcase_add_test(tc, test_deadline_sweep);
	tcase_add_test(tc, test_deadline_one_formula);
	tcase_add_test(tc, test_keepalive_interval);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_rows_in_rule_order);
	tcase_add_test(tc, test_standby_remote_proven);
	tcase_add_test(tc, test_member_at);
	tcase_add_test(tc, test_rewind_source_check);
	tcase_add_test(tc, test_is_standby_leader);
	tcase_add_test(tc, test_local_view_update);
	tcase_add_loop_test(tc, test_switchover_choose, 0, (int)(sizeof(sw_rows) / sizeof(sw_rows[0])));
	tcase_add_test(tc, test_sync_plan_from_scratch);
	tcase_add_loop_test(tc, test_sync_plan_max_lag_on_syncnode, 0,
	                    (int)(sizeof(syncnode_cases) / sizeof(syncnode_cases[0])));
	tcase_add_test(tc, test_sync_plan_standby_lost);
	tcase_add_test(tc, test_sync_plan_stable);
	tcase_add_test(tc, test_sync_plan_strict_nosync_off);
	tcase_add_test(tc, test_sync_plan_invariant);
	tcase_add_test(tc, test_sync_plan_quorum);
	tcase_add_loop_test(tc, test_upstream, 0, (int)(sizeof(up_rows) / sizeof(up_rows[0])));
	tcase_add_test(tc, test_sync_plan_skips_cascaded);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
