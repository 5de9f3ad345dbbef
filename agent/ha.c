/*
 * ha.c - the HA decision core (see ha.h): ha_decide, its rules and their
 * order. The rest of the core is beside it, one concern a file: who may
 * lead and the switchover candidate in ha_rank.c, deadlines and backoff in
 * ha_time.c, role/state names in ha_state.c, the synchronous replication
 * plan in ha_sync.c (ha_internal.h: what they share).
 *
 * ha_decide() reads the two views and returns one action. The rules are
 * checked in a fixed order, and the order is the policy:
 *
 *   1. shutdown requested            -> SHUTDOWN
 *   2. safety of a running primary  -> DEMOTE when it may no longer write
 *                                       (lease deadline passed, or another
 *                                       member holds the key)
 *   3. etcd unreadable               -> WAIT (never promote without etcd)
 *   4. a long job runs               -> WAIT
 *   5. cluster identity              -> RACE_INIT / BOOTSTRAP / FATAL
 *   6. operator requests             -> REINIT / RESTART
 *   7. maintenance mode (paused)     -> LEAD / WAIT, nothing else
 *   8. empty data directory          -> CLONE
 *   9. Postgres down                 -> START_PRIMARY / START_REPLICA / REINIT;
 *                                       a failed start by its diagnosis:
 *                                       diverged timeline -> REWIND,
 *                                       hot-standby parameters -> START_REPLICA
 *                                       (with pg_controldata's values), other
 *                                       -> WAIT (backoff) then START_REPLICA
 *  10. Postgres starting             -> WAIT
 *  11. Postgres a replica            -> FOLLOW / PROMOTE / ACQUIRE / REWIND /
 *                                       RESTART (replay paused by a hot-standby
 *                                       parameter below the primary's); a
 *                                       replica whose replay is paused or stuck
 *                                       is never a candidate
 *  12. Postgres the primary          -> LEAD / SWITCHOVER / DEMOTE_CLUSTER (only for a
 *                                       standby_cluster remote the node may connect to)
 *
 * A standby cluster (config standby_cluster) follows another cluster's
 * primary: its leader is a standby leader, a replica of HA_REMOTE that
 * never promotes. Rule 5 creates its first member by a base backup of the
 * remote (BOOTSTRAP with leader HA_REMOTE) instead of initdb; rule 9 starts
 * the key holder as a replica of HA_REMOTE (rewinding it against the remote
 * when its timeline diverged); rule 11 keeps it following HA_REMOTE
 * (STANDBY_LEAD) where a normal cluster promotes, and a standby leader
 * promotes only when a valid config key no longer names standby_cluster
 * (never for a missing or invalid one); rule 12 stops a primary
 * once standby_cluster is set (demote-cluster). Failover inside it is the
 * usual one: a replica takes the free key and becomes the standby leader.
 *
 * Each rule is one function (rule_shutdown ... rule_primary) that decides or
 * passes; the table rules[] is the order, and ha_decide puts the number of
 * the rule that decided in the action (tests/check_ha.c checks it per row).
 *
 * Nothing here reads a clock or does I/O: `now` and every time in the local
 * view come from the caller's monotonic clock.
 */
#include "agent/ha.h"
#include "agent/ha_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *start_failure_name(enum ha_start_failure k)
{
	switch (k) {
	case HA_START_FAIL_UNKNOWN:
		return "cause unknown";
	case HA_START_FAIL_DIVERGED:
		return "diverged timeline";
	case HA_START_FAIL_PARAMS:
		return "hot-standby parameter below the primary's";
	case HA_START_FAIL_OTHER:
		return "server error";
	}
	return "cause unknown";
}

struct ha_action ha_act(enum ha_action_kind kind, const char *leader, const char *fmt, ...)
{
	struct ha_action a;
	va_list ap;

	memset(&a, 0, sizeof(a));
	a.kind = kind;
	if (leader)
		snprintf(a.leader, sizeof(a.leader), "%s", leader);
	va_start(ap, fmt);
	vsnprintf(a.reason, sizeof(a.reason), fmt, ap);
	va_end(ap);
	return a;
}

/* The leader's timeline as best known: the status key, else its member key. */
static uint32_t leader_timeline(const struct ha_cluster_view *c)
{
	const struct ha_member *m;

	if (c->leader_timeline)
		return c->leader_timeline;
	m = ha_find_member(c, c->leader);
	return m ? m->timeline : 0;
}

bool ha_is_standby_leader(const struct ha_cluster_view *c, const struct ha_member *m)
{
	if (!c->has_leader || strcmp(c->leader, m->name) != 0)
		return false;
	return (c->standby_cluster && strcmp(m->role, "primary") != 0) || strcmp(m->role, "standby_leader") == 0;
}

bool ha_standby_remote_proven(bool pg_tls, const char *own_host, int own_port, const char *host, int port)
{
	if (!host || !host[0])
		return false;
	if (pg_tls)
		return true;
	return own_host && strcasecmp(own_host, host) == 0 && own_port == port;
}

const struct ha_member *ha_member_at(const struct ha_cluster_view *c, const char *host, int port)
{
	if (!host || !host[0])
		return NULL;
	for (size_t i = 0; i < c->n_members; i++)
		if (c->members[i].port == port && strcasecmp(c->members[i].host, host) == 0)
			return &c->members[i];
	return NULL;
}

/* A standby leader follows standby_cluster's host:port as the config says
 * now: following HA_REMOTE, and the address it follows is the current one
 * (an operator may point the cluster elsewhere, e.g. at the other site's
 * new primary). */
/* Why the standby_cluster remote is not usable, for a decision's reason. */
static const char *unusable_why(const struct ha_cluster_view *c)
{
	return c->standby_unusable_why[0] ? c->standby_unusable_why
	                                  : "no postgresql.tls, and its own file does not name it";
}

static bool follows_remote(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	char now[300];

	snprintf(now, sizeof(now), "%s:%d", c->standby_host, c->standby_port);
	return strcmp(l->following, HA_REMOTE) == 0 && strcmp(l->following_remote, now) == 0;
}

/* A switchover/failover names a target, and the leader key has not been
 * gone for longer than a ttl: only the target may take the key. Past that
 * the target is presumed dead and anybody eligible may. */
/* A leader we confirmed in failsafe_mode may write until a ttl after that
 * (it counts our word to stay primary without etcd): even holding the key
 * (a take etcd applied but did not answer), we do not write before then. */
static bool failsafe_promised(const struct ha_cluster_view *c, const struct ha_local_view *l, double now)
{
	return l->failsafe_leader_seen_at > 0 && now - l->failsafe_leader_seen_at < c->ttl;
}

static bool switchover_reserves_key(const struct ha_cluster_view *c, const struct ha_local_view *l, double now)
{
	if (!c->has_switchover || !c->sw_to[0])
		return false;
	return l->leader_absent_since <= 0 || now - l->leader_absent_since < c->ttl;
}

/* For the leader: is the switchover key addressed to us, and due? */
static bool switchover_for_us(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	return c->has_switchover && (!c->sw_from[0] || strcmp(c->sw_from, l->name) == 0) &&
	       strcmp(c->sw_to, l->name) != 0;
}

/* For the leader: why a switchover key that is not for us is over (it named
 * us as the candidate: done; or it is addressed to another leader). */
static const char *stale_switchover(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	return strcmp(c->sw_to, l->name) == 0 ? "the switchover to us is done: clearing its request"
	                                      : "the switchover request is for another leader: clearing it";
}

/* What every rule reads: the views, the time, and what ha_decide derives
 * from them once. */
struct rule_ctx {
	const struct ha_cluster_view *c;
	const struct ha_local_view *l;
	double now;
	double deadline;         /* ha_lease_deadline */
	bool lease_valid;        /* our lease (or a failsafe round) is good until the deadline */
	bool holds;              /* etcd says the leader key holds our name */
	bool holds_on_our_lease; /* ... on our current lease */
	bool other_leads;        /* etcd says another member holds it */
	bool may_write;          /* our Postgres may accept writes (primary, started as one, or promoting) */
	const char *upstream;    /* whom a replica of ours streams from (ha_upstream): the leader, the
				  * replica our tag replicatefrom names, or "" (tag nostream) */
	char up_note[400];       /* for the log: why that upstream when it is not simply the leader */
};

/* A rule that decides fills *out and returns true; else false, and the
 * next rule is asked. DECIDE(kind, leader, fmt, ...) decides with ha_act(). */
static bool done(struct ha_action *out, struct ha_action a)
{
	*out = a;
	return true;
}
#define DECIDE(...) return done(out, ha_act(__VA_ARGS__))

/* 1. An operator or systemd asked us to stop. */
static bool rule_shutdown(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_local_view *l = x->l;

	if (l->shutdown_requested)
		DECIDE(HA_SHUTDOWN, NULL, "shutdown requested: stopping Postgres, then releasing our keys");
	return false;
}

/* 2. Safety: a Postgres that may accept writes needs a valid lease and the key. */
static bool rule_safety(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;
	const double now = x->now;

	if (x->may_write) {
		if (!x->lease_valid) {
			if (x->deadline > 0)
				DECIDE(HA_DEMOTE, NULL,
				       "leader lease not renewed for %.1fs (deadline passed %.1fs ago), demoting",
				       now - l->lease_sent, now - x->deadline);
			DECIDE(HA_DEMOTE, NULL, "no leader lease, demoting");
		}
		if (x->other_leads)
			DECIDE(HA_DEMOTE, c->leader, "%s holds the leader key, demoting", c->leader);
		if (c->etcd_ok && !c->has_leader)
			DECIDE(HA_ACQUIRE, NULL, "leader key vanished while we run as primary; taking it again");
		if (x->holds && !x->holds_on_our_lease)
			DECIDE(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
		if (l->watchdog_required && !l->watchdog_ok)
			DECIDE(HA_DEMOTE, NULL, "watchdog.mode is required and the watchdog cannot be armed: demoting");
		if (!c->etcd_ok)
			DECIDE(HA_WAIT, NULL, "etcd unreachable; staying primary until the %s deadline in %.1fs",
			       c->failsafe_mode && l->failsafe_confirmed_at > 0 ? "failsafe" : "lease",
			       x->deadline - now);
	}
	return false;
}

/* 3. Without a fresh view of etcd nothing may change role. */
static bool rule_etcd(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;

	if (!c->etcd_ok)
		DECIDE(HA_WAIT, NULL, "etcd unreachable; keeping the current role, no promotion");
	return false;
}

/* 4. One long job at a time; while it runs the data directory is half-made. */
static bool rule_job(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_local_view *l = x->l;

	if (l->job != HA_JOB_NONE)
		DECIDE(HA_WAIT, NULL, "waiting for the running job to finish");
	return false;
}

/* 5. Which cluster is this? */
static bool rule_identity(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;
	const double now = x->now;

	if (l->datadir == HA_DATADIR_INVALID)
		DECIDE(HA_FATAL, NULL, "data directory is not empty and is not a Postgres data directory");
	if (!c->init_key_present) {
		if (l->watchdog_required && !l->watchdog_ok)
			DECIDE(HA_WAIT, NULL,
			       "cluster not initialized; not racing to bootstrap it: watchdog.mode is "
			       "required and the watchdog cannot be armed");
		if (l->lease_id == 0)
			DECIDE(HA_WAIT, NULL,
			       "cluster not initialized; waiting for our own lease before racing to "
			       "initialize it");
		/* A restore or recovery that failed fails the same way again
		 * (a target the archive cannot reach, a wrong stanza), and each
		 * try leaves a data directory aside: the operator decides. */
		if (l->bootstrap_given_up)
			DECIDE(HA_WAIT, NULL,
			       "cluster not initialized; our bootstrap from a backup failed (see the log): not racing "
			       "again until the agent is restarted");
		if (l->job_failed == HA_JOB_BOOTSTRAP && ha_job_backoff_left(l, HA_JOB_BOOTSTRAP, 3, now) > 0)
			DECIDE(HA_WAIT, NULL, "cluster not initialized; our bootstrap failed: racing again in %.0fs",
			       ha_job_backoff_left(l, HA_JOB_BOOTSTRAP, 3, now));
		DECIDE(HA_RACE_INIT, NULL,
		       l->datadir == HA_DATADIR_VALID
		               ? "cluster not initialized in etcd; claiming it with our data directory"
		               : "cluster not initialized; racing to bootstrap it");
	}
	if (c->init_in_progress) {
		if (strcmp(c->init_owner, l->name) == 0) {
			/* Starting the first primary obeys what rule 9 checks. */
			if (l->datadir == HA_DATADIR_VALID && !l->pg_running) {
				if (l->watchdog_required && !l->watchdog_ok)
					DECIDE(HA_WAIT, NULL,
					       "bootstrap: not starting as primary: watchdog.mode is "
					       "required and the watchdog cannot be armed");
				if (!x->lease_valid)
					DECIDE(HA_WAIT, NULL,
					       "bootstrap: our lease is not valid; waiting for renewal before starting "
					       "as primary");
				if (x->holds && !x->holds_on_our_lease)
					DECIDE(HA_ACQUIRE, NULL,
					       "leader key holds our name on an old lease; moving it to ours");
				if (l->pg_start_failed &&
				    now - l->pg_started_at <
				            ha_start_backoff(l->pg_start_failure, l->pg_start_failures))
					DECIDE(HA_WAIT, NULL,
					       "bootstrap: Postgres failed to start (%s); starting it again in %.0fs",
					       l->pg_start_error,
					       ha_start_backoff(l->pg_start_failure, l->pg_start_failures) -
					               (now - l->pg_started_at));
			}
			if (l->datadir == HA_DATADIR_EMPTY && l->job_failed == HA_JOB_BOOTSTRAP &&
			    ha_job_backoff_left(l, HA_JOB_BOOTSTRAP, 1, now) > 0)
				DECIDE(HA_WAIT, NULL, "bootstrap: initdb failed; running it again in %.0fs",
				       ha_job_backoff_left(l, HA_JOB_BOOTSTRAP, 1, now));
			if (c->standby_cluster && !c->standby_remote_usable && l->datadir == HA_DATADIR_EMPTY)
				DECIDE(HA_WAIT, NULL,
				       "we own the initialize key of a standby cluster, but %s:%d is a remote this "
				       "node cannot connect to safely (%s): no base backup, waiting",
				       c->standby_host, c->standby_port, unusable_why(c));
			if (c->standby_cluster)
				DECIDE(HA_BOOTSTRAP, HA_REMOTE,
				       "we own the initialize key of a standby cluster: %s from the other site's "
				       "primary %s:%d",
				       l->datadir == HA_DATADIR_EMPTY ? "taking a base backup"
				                                      : "starting as a replica",
				       c->standby_host, c->standby_port);
			DECIDE(HA_BOOTSTRAP, NULL, "we own the initialize key: bootstrapping");
		}
		DECIDE(HA_WAIT, NULL, "waiting for %s to bootstrap the cluster", c->init_owner);
	}
	if (l->datadir == HA_DATADIR_VALID && c->sysid != 0 && l->datadir_sysid != c->sysid)
		DECIDE(HA_FATAL, NULL,
		       "data directory belongs to another cluster: system identifier %llu, cluster's is %llu",
		       (unsigned long long)l->datadir_sysid, (unsigned long long)c->sysid);
	return false;
}

/* 6. Operator requests for this node. */
static bool rule_requests(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;

	if (l->reinit_requested) {
		if (x->holds)
			DECIDE(HA_REFUSE, NULL, "reinit refused: this member is the leader; switch over first");
		const int first = ha_clone_next(&l->clone, -1, x->other_leads);
		struct ha_action a;

		if (first < 0)
			DECIDE(HA_WAIT, NULL, "reinit requested, but there is no leader to clone from");
		if (ha_clone_method_at(&l->clone, first).keep_data)
			a = ha_act(HA_REINIT, x->other_leads ? c->leader : NULL,
			           "reinit requested: creating the replica again with %s over the data directory "
			           "(keep_data)",
			           ha_clone_kind_name(ha_clone_method_at(&l->clone, first).kind));
		else if (x->other_leads)
			a = ha_act(HA_REINIT, c->leader,
			           "reinit requested: removing the data directory to clone from %s", c->leader);
		else
			a = ha_act(HA_REINIT, NULL,
			           "reinit requested: removing the data directory to restore it with %s (no_leader)",
			           ha_clone_kind_name(ha_clone_method_at(&l->clone, first).kind));
		a.clone_method = first;
		*out = a;
		return true;
	}
	if (l->restart_requested && l->pg_running)
		DECIDE(HA_RESTART, NULL, "restart requested by an operator");
	return false;
}

/* 7. Maintenance mode: keep the keys, touch no Postgres, never fail over
 * (rule 2 above still stops a primary whose lease is gone). */
static bool rule_paused(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;

	if (c->paused) {
		const bool named = c->has_switchover && strcmp(c->sw_to, l->name) == 0;
		const bool due = c->sw_scheduled_at <= 0 || l->wall_now >= c->sw_scheduled_at;

		if (l->restart_in_progress && !l->pg_running) {
			/* An operator's restart, or our own switchover, stopped it:
			 * start it again (rules 8 and 9). */
		} else if ((l->restart_in_progress || l->following[0]) && l->pg_ready && !l->pg_primary &&
		           x->other_leads && strcmp(l->following, x->upstream) != 0) {
			/* The leader changed by an operator's switchover: replicas
			 * (and the old primary, started again) follow it, by a
			 * reload; a cascade follows its upstream (ha_upstream). */
			DECIDE(HA_FOLLOW, x->upstream, "maintenance mode: following %s%s",
			       x->upstream[0] ? x->upstream : "nobody", x->up_note);
		} else if (x->holds && l->pg_ready && l->pg_primary) {
			if (c->has_switchover && !switchover_for_us(c, l))
				DECIDE(HA_CLEAR_SWITCHOVER, NULL, "maintenance mode: %s", stale_switchover(c, l));
			/* A switchover that names its candidate runs now (rule 12);
			 * the agents choose no candidate while paused. */
			if (!(switchover_for_us(c, l) && c->sw_to[0] && due))
				DECIDE(HA_LEAD, NULL, "%s",
				       switchover_for_us(c, l)
				               ? "maintenance mode: primary holding the leader key; a pending switchover "
				                 "without a candidate (or not due) waits for resume"
				               : "maintenance mode: primary holding the leader key, touching nothing");
		} else if (!(named && l->pg_ready && !l->pg_primary && (x->holds || !c->has_leader))) {
			DECIDE(HA_WAIT, NULL, "maintenance mode (paused): not touching Postgres, no failover");
		}
		/* else: the named candidate of a switchover takes the key and
		 * promotes (rule 11). */
	}
	return false;
}

/* 8. Nothing to run yet. */
static bool rule_empty(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;
	const double now = x->now;

	if (l->datadir == HA_DATADIR_EMPTY) {
		int next;

		if (x->holds)
			DECIDE(HA_RELEASE, NULL, "we hold the leader key but have no data; releasing it");
		/* The method after the one that failed runs at once; once every
		 * method that may run has failed, the sequence waits for the
		 * backoff and starts again from the first (ha_clone.h). */
		next = l->job_failed == HA_JOB_CLONE && l->clone.failed == 0
		               ? -1
		               : ha_clone_next(&l->clone, l->clone.failed - 1, x->other_leads);
		if (next < 0 && l->job_failed == HA_JOB_CLONE) {
			if (ha_job_backoff_left(l, HA_JOB_CLONE, 1, now) > 0 &&
			    ha_clone_next(&l->clone, -1, x->other_leads) >= 0)
				DECIDE(HA_WAIT, NULL,
				       "empty data directory: creating a replica failed (every method); trying again "
				       "in %.0fs",
				       ha_job_backoff_left(l, HA_JOB_CLONE, 1, now));
			next = ha_clone_next(&l->clone, -1, x->other_leads);
		}
		if (next >= 0) {
			struct ha_action a;

			if (x->other_leads)
				a = ha_act(
				        HA_CLONE, c->leader,
				        "empty data directory: creating a replica with %s (method %d of %zu), leader %s",
				        ha_clone_kind_name(ha_clone_method_at(&l->clone, next).kind), next + 1,
				        ha_clone_count(&l->clone), c->leader);
			else
				a = ha_act(HA_CLONE, NULL,
				           "empty data directory: creating a replica with %s (method %d of %zu) while "
				           "no member leads (no_leader)",
				           ha_clone_kind_name(ha_clone_method_at(&l->clone, next).kind), next + 1,
				           ha_clone_count(&l->clone));
			a.clone_method = next;
			*out = a;
			return true;
		}
		DECIDE(HA_WAIT, NULL, "empty data directory and no leader to clone from; waiting");
	}
	return false;
}

/* 9. Data but no Postgres. */
static bool rule_down(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;
	const double now = x->now;

	if (!l->pg_running) {
		/* After a failed start, wait before the next one (not after one
		 * whose cause the next start repairs, see ha_start_backoff). */
		const double backoff = l->pg_start_failed ? ha_start_backoff(l->pg_start_failure, l->pg_start_failures)
		                                          : 0;
		const bool backing_off = backoff > 0 && now - l->pg_started_at < backoff;

		if (x->holds) {
			if (l->pg_start_failed && l->pg_started_primary)
				DECIDE(HA_RELEASE, NULL,
				       "Postgres failed to start as primary; releasing the leader key");
			if (!x->lease_valid)
				DECIDE(HA_WAIT, NULL,
				       "we hold the key but our lease is not valid; waiting for renewal");
			if (!x->holds_on_our_lease)
				DECIDE(HA_ACQUIRE, NULL,
				       "leader key holds our name on an old lease; moving it to ours");
			if (l->watchdog_required && !l->watchdog_ok)
				DECIDE(HA_RELEASE, NULL,
				       "watchdog.mode is required and the watchdog cannot be armed: releasing the key");
			if (c->standby_cluster) {
				/* The standby leader: a replica of the other site. A
				 * diverged timeline (a former primary demoted to follow
				 * a site that already moved on) is rewound against it. */
				if (l->pg_start_failed && l->pg_start_failure == HA_START_FAIL_DIVERGED &&
				    c->standby_remote_usable && l->use_pg_rewind && l->job_failed != HA_JOB_REWIND &&
				    strcmp(l->following, HA_REMOTE) == 0 && ha_rewind_backoff_left(l, now) <= 0)
					DECIDE(HA_REWIND, HA_REMOTE,
					       "standby leader: Postgres cannot start as a replica of %s:%d, its timeline "
					       "diverged (%s): rewinding",
					       c->standby_host, c->standby_port, l->pg_start_error);
				if (backing_off)
					DECIDE(HA_WAIT, NULL,
					       "standby leader: Postgres failed to start (%s: %s); starting it again in "
					       "%.0fs",
					       start_failure_name(l->pg_start_failure), l->pg_start_error,
					       backoff - (now - l->pg_started_at));
				DECIDE(HA_START_REPLICA, HA_REMOTE,
				       "standby leader: starting Postgres as a replica of the other site's primary %s:%d",
				       c->standby_host, c->standby_port);
			}
			/* No backoff while we hold the key: a failed start as primary
			 * releases it (above), and the key must not wait on us. */
			if (failsafe_promised(c, l, now))
				DECIDE(HA_WAIT, NULL,
				       "we hold the leader key, but we confirmed the last leader's failsafe heartbeat "
				       "%.1fs ago: starting Postgres as primary once %.0fs have passed",
				       now - l->failsafe_leader_seen_at, c->ttl);
			DECIDE(HA_START_PRIMARY, NULL, "we hold the leader key: starting Postgres as primary");
		}
		if (x->other_leads) {
			/* A former primary also starts as a replica first: if its WAL
			 * does not go past the new leader's fork point it simply follows;
			 * if it does, it cannot stream and is rewound below (rule 11),
			 * then from a clean shutdown in recovery. */
			if (l->job_failed == HA_JOB_REWIND && l->remove_data_on_rewind_failure)
				DECIDE(HA_REINIT, c->leader,
				       "pg_rewind failed: removing the data directory to clone from %s", c->leader);
			/* A failed start is repaired by what its cause needs, as the
			 * server's own log says; pg_rewind rewrites the data directory
			 * and only ever follows a diverged timeline. */
			if (l->pg_start_failed && !l->pg_started_primary) {
				switch (l->pg_start_failure) {
				case HA_START_FAIL_DIVERGED:
					if (l->use_pg_rewind && l->job_failed != HA_JOB_REWIND &&
					    strcmp(l->following, x->upstream) == 0 &&
					    ha_rewind_backoff_left(l, now) > 0)
						DECIDE(HA_WAIT, NULL,
						       "Postgres cannot start as a replica of %s, its timeline diverged; "
						       "pg_rewind failed (attempt %d of 3): trying again in %.0fs",
						       c->leader, l->rewind_failures, ha_rewind_backoff_left(l, now));
					if (l->use_pg_rewind && l->job_failed != HA_JOB_REWIND &&
					    strcmp(l->following, x->upstream) == 0)
						DECIDE(HA_REWIND, c->leader,
						       "Postgres cannot start as a replica of %s, its timeline diverged (%s): "
						       "rewinding",
						       c->leader, l->pg_start_error);
					if (!l->use_pg_rewind && l->remove_data_on_diverged)
						DECIDE(HA_REINIT, c->leader,
						       "Postgres cannot start as a replica of %s, its timeline diverged, and "
						       "use_pg_rewind is off: removing the data directory to clone "
						       "(remove_data_directory_on_diverged_timelines)",
						       c->leader);
					if (backing_off)
						DECIDE(HA_WAIT, NULL,
						       "Postgres cannot start as a replica of %s, its timeline diverged, and "
						       "%s: reinit this member; trying again in %.0fs",
						       c->leader,
						       l->use_pg_rewind ? "pg_rewind did not repair it"
						                        : "use_pg_rewind is off",
						       backoff - (now - l->pg_started_at));
					break;
				case HA_START_FAIL_PARAMS:
					if (backing_off)
						DECIDE(HA_WAIT, NULL,
						       "Postgres failed to start (%s: %s); starting it again in %.0fs",
						       start_failure_name(l->pg_start_failure), l->pg_start_error,
						       backoff - (now - l->pg_started_at));
					DECIDE(HA_START_REPLICA, x->upstream,
					       "Postgres stopped at start-up, a hot-standby parameter is below the primary's "
					       "(%s): starting it again with at least the values in pg_controldata",
					       l->pg_start_error);
				case HA_START_FAIL_OTHER:
				case HA_START_FAIL_UNKNOWN:
					if (backing_off)
						DECIDE(HA_WAIT, NULL,
						       "Postgres failed to start (%s: %s); not touching its data, starting it "
						       "again in %.0fs",
						       start_failure_name(l->pg_start_failure), l->pg_start_error,
						       backoff - (now - l->pg_started_at));
					break;
				}
				DECIDE(HA_START_REPLICA, x->upstream,
				       "starting Postgres again as a replica of %s after a failed "
				       "start (%d in a row)%s",
				       x->upstream[0] ? x->upstream : "nobody", l->pg_start_failures, x->up_note);
			}
			if (backing_off)
				DECIDE(HA_WAIT, NULL, "Postgres failed to start (%s: %s); starting it again in %.0fs",
				       start_failure_name(l->pg_start_failure), l->pg_start_error,
				       backoff - (now - l->pg_started_at));
			DECIDE(HA_START_REPLICA, x->upstream, "starting Postgres as a replica of %s%s",
			       x->upstream[0] ? x->upstream : "nobody", x->up_note);
		}
		if (backing_off)
			DECIDE(HA_WAIT, NULL, "Postgres failed to start (%s: %s); starting it again in %.0fs",
			       start_failure_name(l->pg_start_failure), l->pg_start_error,
			       backoff - (now - l->pg_started_at));
		DECIDE(HA_START_REPLICA, "", "no leader: starting Postgres as a replica without upstream");
	}
	return false;
}

/* 10. Running but not answering yet. */
static bool rule_starting(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_local_view *l = x->l;

	if (!l->pg_ready)
		DECIDE(HA_WAIT, NULL, "Postgres is starting");
	return false;
}

/* 11. A replica. */
static bool rule_replica(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;
	const double now = x->now;

	if (!l->pg_primary) {
		if (x->holds) {
			if (!x->lease_valid)
				DECIDE(HA_WAIT, NULL,
				       "we hold the key but our lease is not valid; waiting for renewal");
			if (!x->holds_on_our_lease)
				DECIDE(HA_ACQUIRE, NULL,
				       "leader key holds our name on an old lease; moving it to ours");
			if (l->promote_requested)
				DECIDE(HA_WAIT, NULL, "promotion in progress");
			if (c->standby_cluster) {
				/* The remote we stream from is no longer trusted (taken
				 * out of the node file, then a reload): stop streaming
				 * from it; passwords must not go there again. */
				if (strcmp(l->following, HA_REMOTE) == 0 && l->following_remote_untrusted)
					DECIDE(HA_FOLLOW, "",
					       "standby leader: this node no longer trusts %s, which it streams from: "
					       "dropping primary_conninfo, replicating from nobody",
					       l->following_remote);
				/* No connection to a remote nobody vouched for:
				 * Postgres runs on as it is, a replica, and waits. */
				if (!c->standby_remote_usable)
					DECIDE(HA_STANDBY_LEAD, NULL,
					       "standby leader: standby_cluster names %s:%d, which this node cannot "
					       "connect to safely (%s): not following it, waiting",
					       c->standby_host, c->standby_port, unusable_why(c));
				if (strcmp(l->following, HA_REMOTE) != 0)
					DECIDE(HA_FOLLOW, HA_REMOTE,
					       "standby leader: replicating from the other site's primary %s:%d, never "
					       "promoting",
					       c->standby_host, c->standby_port);
				if (!follows_remote(c, l))
					DECIDE(HA_FOLLOW, HA_REMOTE,
					       "standby leader: standby_cluster now names %s:%d (we follow %s): re-pointing",
					       c->standby_host, c->standby_port, l->following_remote);
				/* A demoted primary whose WAL went past the other site's
				 * fork point (it promoted without us): Postgres waits for
				 * ever, so it is rewound against the other site. */
				if (l->remote_diverged && l->use_pg_rewind && l->job_failed != HA_JOB_REWIND) {
					if (ha_rewind_backoff_left(l, now) > 0)
						DECIDE(HA_WAIT, NULL,
						       "standby leader: diverged from %s:%d, pg_rewind failed (attempt %d of "
						       "3): trying again in %.0fs",
						       c->standby_host, c->standby_port, l->rewind_failures,
						       ha_rewind_backoff_left(l, now));
					DECIDE(HA_REWIND, HA_REMOTE,
					       "standby leader: the timeline of %s:%d forked off before our position: "
					       "rewinding against it",
					       c->standby_host, c->standby_port);
				}
				if (l->remote_diverged)
					DECIDE(HA_WAIT, NULL,
					       "standby leader: diverged from %s:%d and %s: reinit this member by hand%s",
					       c->standby_host, c->standby_port,
					       l->use_pg_rewind ? "pg_rewind failed" : "use_pg_rewind is off",
					       l->use_pg_rewind ? ""
					                        : " (or turn on postgresql.use_pg_rewind and reload)");
				/* The other site's primary raised a hot-standby parameter:
				 * replay pauses here as on any replica, and only a restart
				 * with the values replayed into pg_controldata (the files
				 * take them from there, not from our config key) resumes
				 * it; it starts again as a replica of the remote. */
				if (l->hs_below_primary && l->pg_replay_paused)
					DECIDE(HA_RESTART, NULL,
					       "standby leader: replay paused, a hot-standby parameter is below the primary's "
					       "(%s): restarting with at least the values in pg_controldata, still a "
					       "replica of %s:%d",
					       l->hs_detail, c->standby_host, c->standby_port);
				DECIDE(HA_STANDBY_LEAD, NULL, "standby leader following %s:%d", c->standby_host,
				       c->standby_port);
			}
			/* A standby leader (streaming from the other site) becomes
			 * a primary only when a valid config key says the cluster
			 * is no longer a standby cluster, never because the key
			 * went missing or unreadable (a second writable site). */
			if ((strcmp(l->following, HA_REMOTE) == 0 || c->config_unknown) &&
			    c->config_key != HA_CONFIG_VALID)
				DECIDE(HA_WAIT, NULL,
				       "standby leader: the config key is %s and does not say this cluster is no longer "
				       "a standby cluster: not promoting",
				       c->config_key == HA_CONFIG_MISSING ? "missing" : "invalid");
			if (l->watchdog_required && !l->watchdog_ok)
				DECIDE(HA_RELEASE, NULL,
				       "watchdog.mode is required and the watchdog cannot be armed: releasing the key "
				       "instead of promoting");
			if (failsafe_promised(c, l, now))
				DECIDE(HA_WAIT, NULL,
				       "we hold the leader key, but we confirmed the last leader's failsafe heartbeat "
				       "%.1fs ago: promoting once %.0fs have passed",
				       now - l->failsafe_leader_seen_at, c->ttl);
			DECIDE(HA_PROMOTE, NULL, "we hold the leader key: promoting");
		}
		/* Replay paused because the primary raised a hot-standby parameter
		 * above ours: only a restart with at least its value resumes it. */
		if (l->hs_below_primary && l->pg_replay_paused)
			DECIDE(HA_RESTART, NULL,
			       "replay paused, a hot-standby parameter is below the primary's (%s): restarting with "
			       "at least the values in pg_controldata",
			       l->hs_detail);
		if (x->other_leads) {
			uint32_t tl = leader_timeline(c);

			if (strcmp(l->following, x->upstream) != 0) {
				if (strcmp(x->upstream, c->leader) == 0 && !x->up_note[0])
					DECIDE(HA_FOLLOW, c->leader, "following the new leader %s", c->leader);
				DECIDE(HA_FOLLOW, x->upstream, "streaming from %s%s",
				       x->upstream[0] ? x->upstream : "nobody", x->up_note);
			}
			/* A replay paused by an operator also stops streaming across a
			 * timeline switch: that is no evidence of divergence, and a rewind
			 * (a restart) would silently drop the pause. */
			if (l->pg_replay_paused && !l->pg_streaming && tl != 0 && tl != l->pg_timeline)
				DECIDE(HA_WAIT, NULL,
				       "replica of %s; replay is paused, so the switch to its timeline %u waits until "
				       "it resumes",
				       c->leader, tl);
			/* (A nostream replica never streams: it follows timelines
			 * through restore_command, and is never rewound for it.) */
			if (l->use_pg_rewind && x->upstream[0] && !l->pg_streaming && l->pg_not_streaming_since > 0 &&
			    now - l->pg_not_streaming_since >= ha_diverged_after(c) && tl != 0 &&
			    tl != l->pg_timeline) {
				if (l->job_failed == HA_JOB_REWIND) {
					if (l->remove_data_on_rewind_failure)
						DECIDE(HA_REINIT, c->leader,
						       "pg_rewind failed: removing the data directory to clone from %s",
						       c->leader);
					DECIDE(HA_WAIT, NULL,
					       "not streaming from %s and pg_rewind failed; remove_data_directory_on_rewind_failure "
					       "is off: reinit this member by hand",
					       c->leader);
				}
				if (ha_rewind_backoff_left(l, now) > 0)
					DECIDE(HA_WAIT, NULL,
					       "not streaming from %s and on timeline %u while it is on %u; pg_rewind failed "
					       "(attempt %d of 3): trying again in %.0fs",
					       c->leader, l->pg_timeline, tl, l->rewind_failures,
					       ha_rewind_backoff_left(l, now));
				DECIDE(HA_REWIND, c->leader,
				       "not streaming from %s for %.0fs and on timeline %u while it is on %u: rewinding",
				       c->leader, now - l->pg_not_streaming_since, l->pg_timeline, tl);
			}
			if (!l->use_pg_rewind && l->remove_data_on_diverged && x->upstream[0] && !l->pg_streaming &&
			    l->pg_not_streaming_since > 0 && now - l->pg_not_streaming_since >= ha_diverged_after(c) &&
			    tl != 0 && tl != l->pg_timeline)
				DECIDE(HA_REINIT, c->leader,
				       "not streaming from %s for %.0fs and on timeline %u while it is on %u, use_pg_rewind "
				       "is off: removing the data directory to clone (remove_data_directory_on_diverged_timelines)",
				       c->leader, now - l->pg_not_streaming_since, l->pg_timeline, tl);
			DECIDE(HA_WAIT, NULL, "replica of %s%s", x->upstream[0] ? x->upstream : "nobody", x->up_note);
		}
		{
			struct ha_action why;
			bool named = c->has_switchover && strcmp(c->sw_to, l->name) == 0;

			if (!named && switchover_reserves_key(c, l, now))
				DECIDE(HA_WAIT, NULL, "no leader; %s to %s in progress, leaving it the key",
				       c->sw_failover ? "failover" : "switchover", c->sw_to);
			if (!ha_eligible(c, l, named, now, &why))
				return done(out, why);
			if (named)
				DECIDE(HA_ACQUIRE, NULL, "no leader; we are the %s candidate: taking the key",
				       c->sw_failover ? "failover" : "switchover");
		}
		DECIDE(HA_ACQUIRE, NULL,
		       "no leader; we are the most up-to-date healthy member (lsn %llu): taking the key",
		       (unsigned long long)l->pg_lsn);
	}
	return false;
}

/* 12. The primary, with a valid lease and the key on it (rule 2 above). */
static bool rule_primary(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;

	if (c->standby_cluster && !c->standby_remote_usable)
		DECIDE(HA_LEAD, NULL,
		       "primary holding the leader key; standby_cluster names %s:%d, which this node cannot connect "
		       "to safely (%s): staying the primary",
		       c->standby_host, c->standby_port, unusable_why(c));
	if (c->standby_cluster)
		DECIDE(HA_DEMOTE_CLUSTER, NULL,
		       "standby_cluster is set: this cluster now follows %s:%d; stopping the primary to start it as "
		       "the standby leader",
		       c->standby_host, c->standby_port);
	if (c->has_switchover && !switchover_for_us(c, l))
		DECIDE(HA_CLEAR_SWITCHOVER, NULL, "primary holding the leader key; %s", stale_switchover(c, l));
	if (switchover_for_us(c, l)) {
		if (c->sw_scheduled_at > 0 && l->wall_now < c->sw_scheduled_at)
			DECIDE(HA_LEAD, NULL, "primary holding the leader key; switchover%s%s scheduled in %.0fs",
			       c->sw_to[0] ? " to " : "", c->sw_to, c->sw_scheduled_at - l->wall_now);
		DECIDE(HA_SWITCHOVER, c->sw_to, "%s%s%s requested: handing over the leader key",
		       c->sw_failover ? "failover" : "switchover", c->sw_to[0] ? " to " : "", c->sw_to);
	}
	DECIDE(HA_LEAD, NULL, "primary holding the leader key");
	return false;
}

/* The policy: the rules in the order they are asked (ha.c's header lists
 * them); the first that decides wins, and its number goes in the action. */
static bool (*const rules[])(const struct rule_ctx *, struct ha_action *) = {
	rule_shutdown, rule_safety, rule_etcd, rule_job,      rule_identity, rule_requests,
	rule_paused,   rule_empty,  rule_down, rule_starting, rule_replica,  rule_primary,
};

struct ha_action ha_decide(const struct ha_cluster_view *c, const struct ha_local_view *l, double now)
{
	struct rule_ctx x = { .c = c, .l = l, .now = now };
	struct ha_action a;

	x.deadline = ha_lease_deadline(c, l);
	x.lease_valid = x.deadline > 0 && now < x.deadline && (l->lease_id != 0 || (c->failsafe_mode && !c->etcd_ok));
	x.holds = c->etcd_ok && c->has_leader && strcmp(c->leader, l->name) == 0;
	x.holds_on_our_lease = x.holds && c->leader_lease == l->lease_id;
	x.other_leads = c->etcd_ok && c->has_leader && !x.holds;
	x.may_write = l->pg_running && (l->pg_primary || l->pg_started_primary || l->promote_requested);
	x.upstream = "";
	if (x.other_leads) {
		char why[200];

		x.upstream = ha_upstream(c, l, why, sizeof(why));
		if (l->nostream)
			snprintf(x.up_note, sizeof(x.up_note),
			         " (tag nostream: restore_command only; the leader is %s)", c->leader);
		else if (why[0])
			snprintf(x.up_note, sizeof(x.up_note),
			         " (tag replicatefrom = %.63s, but %.150s: the leader instead)", l->replicatefrom, why);
		else if (strcmp(x.upstream, c->leader) != 0)
			snprintf(x.up_note, sizeof(x.up_note), " (tag replicatefrom; the leader is %s)", c->leader);
	}
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i](&x, &a)) {
			a.rule = (int)i + 1;
			return a;
		}
	/* Not reached: rule 12 always decides. */
	a = ha_act(HA_WAIT, NULL, "no rule decided");
	a.rule = 0;
	return a;
}
