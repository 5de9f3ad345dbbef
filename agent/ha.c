/*
 * ha.c - the HA decision core (see ha.h).
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
 *   9. Postgres down                 -> START_PRIMARY / START_REPLICA / REINIT
 *  10. Postgres starting             -> WAIT
 *  11. Postgres a replica            -> FOLLOW / PROMOTE / ACQUIRE / REWIND
 *  12. Postgres the primary          -> LEAD / SWITCHOVER
 *
 * Nothing here reads a clock or does I/O: `now` and every time in the local
 * view come from the caller's monotonic clock.
 */
#include "agent/ha.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ha_action_name(enum ha_action_kind k)
{
	switch (k) {
	case HA_WAIT: return "wait";
	case HA_FATAL: return "fatal";
	case HA_RACE_INIT: return "race_init";
	case HA_BOOTSTRAP: return "bootstrap";
	case HA_CLONE: return "clone";
	case HA_REINIT: return "reinit";
	case HA_START_REPLICA: return "start_replica";
	case HA_START_PRIMARY: return "start_primary";
	case HA_FOLLOW: return "follow";
	case HA_ACQUIRE: return "acquire";
	case HA_PROMOTE: return "promote";
	case HA_LEAD: return "lead";
	case HA_DEMOTE: return "demote";
	case HA_REWIND: return "rewind";
	case HA_RELEASE: return "release";
	case HA_SWITCHOVER: return "switchover";
	case HA_RESTART: return "restart";
	case HA_SHUTDOWN: return "shutdown";
	}
	return "unknown";
}

double ha_lease_margin(double ttl)
{
	/* A quarter of the TTL, at most one second: enough for an immediate
	 * shutdown (milliseconds) and for scheduling noise, while a leader
	 * still survives two or three lost keepalives. */
	double m = ttl * 0.25;
	return m > 1.0 ? 1.0 : m;
}

double ha_lease_deadline(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	double d = 0;

	if (l->lease_id != 0 && l->lease_sent > 0)
		d = l->lease_sent + c->ttl - ha_lease_margin(c->ttl);
	/* failsafe_mode: with etcd unreachable, a round in which every member
	 * confirmed us counts like a renewal sent when the round began; each of
	 * them promised not to take the key for a ttl after confirming. */
	if (c->failsafe_mode && !c->etcd_ok && l->failsafe_confirmed_at > 0) {
		double f = l->failsafe_confirmed_at + c->ttl - ha_lease_margin(c->ttl);
		if (f > d)
			d = f;
	}
	return d;
}

double ha_diverged_after(const struct ha_cluster_view *c)
{
	/* Longer than a replica needs to reconnect after a timeline switch
	 * (wal_retrieve_retry_interval is 5 s by default); a needless
	 * rewind costs a restart and "no rewind required", nothing more. */
	double t = 3 * c->loop_wait;
	return t < 6.0 ? 6.0 : t;
}

const struct ha_member *ha_find_member(const struct ha_cluster_view *c, const char *name)
{
	for (size_t i = 0; i < c->n_members && i < HA_MAX_MEMBERS; i++)
		if (strcmp(c->members[i].name, name) == 0)
			return &c->members[i];
	return NULL;
}

__attribute__((format(printf, 3, 4))) static struct ha_action act(enum ha_action_kind kind, const char *leader,
								  const char *fmt, ...)
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

/*
 * Rule 5: may this node take the free leader key? Returns NULL when it may,
 * else fills *why and returns the action to take instead (a WAIT).
 */
static bool eligible(const struct ha_cluster_view *c, const struct ha_local_view *l, bool named_candidate,
		     double now, struct ha_action *why)
{
	/* The member a switchover or a manual failover names is the operator's
	 * choice: peers ahead of it do not block it, and a manual failover may
	 * also take a lagging one. The timeline rule always holds. */
	const bool skip_peers = named_candidate;
	const bool skip_lag = named_candidate && c->sw_failover;

	if (l->nofailover) {
		*why = act(HA_WAIT, NULL, "no leader; not a candidate (tag nofailover)");
		return false;
	}
	if (l->lease_id == 0) {
		*why = act(HA_WAIT, NULL, "no leader; waiting for our own lease before competing");
		return false;
	}
	/* We confirmed the old leader's failsafe heartbeat: it may still be
	 * writing until a ttl after that. */
	if (l->failsafe_leader_seen_at > 0 && now - l->failsafe_leader_seen_at < c->ttl) {
		*why = act(HA_WAIT, NULL, "no leader, but we confirmed the leader's failsafe heartbeat %.1fs ago; waiting",
			   now - l->failsafe_leader_seen_at);
		return false;
	}
	/* A replica still on an older timeline than the last leader's has not
	 * followed the last promotion (it may even hold WAL that timeline never
	 * had): promoting it would fork a second history with the same timeline
	 * ID and throw away what the last leader wrote. */
	if (c->leader_timeline != 0 && l->pg_timeline < c->leader_timeline) {
		*why = act(HA_WAIT, NULL, "no leader; not a candidate: on timeline %u, the last leader was on %u",
			   l->pg_timeline, c->leader_timeline);
		return false;
	}
	if (!skip_lag && c->leader_lsn > l->pg_lsn &&
	    c->leader_lsn - l->pg_lsn > (uint64_t)c->maximum_lag_on_failover) {
		*why = act(HA_WAIT, NULL,
			   "no leader; not a candidate: %llu bytes behind the last leader position "
			   "(maximum_lag_on_failover %lld)",
			   (unsigned long long)(c->leader_lsn - l->pg_lsn), (long long)c->maximum_lag_on_failover);
		return false;
	}
	for (size_t i = 0; i < c->n_members && i < HA_MAX_MEMBERS && !skip_peers; i++) {
		const struct ha_member *m = &c->members[i];

		if (strcmp(m->name, l->name) == 0 || !m->polled || !m->reachable)
			continue;
		/* A peer whose Postgres is still coming up (a whole-cluster restart)
		 * may hold more WAL than we do: give it a bounded while. */
		if (!m->healthy && m->polled_starting && l->leader_absent_since > 0 &&
		    now - l->leader_absent_since < 2 * c->ttl) {
			*why = act(HA_WAIT, NULL, "no leader; %s is still starting and may be ahead of us, waiting", m->name);
			return false;
		}
		if (!m->healthy)
			continue;
		if (m->polled_primary) {
			*why = act(HA_WAIT, NULL, "no leader, but %s still runs as a primary; waiting", m->name);
			return false;
		}
		/* A peer behind the last leader's timeline is no candidate either. */
		if (!m->nofailover && m->polled_lsn > l->pg_lsn &&
		    !(c->leader_timeline != 0 && m->polled_timeline < c->leader_timeline)) {
			*why = act(HA_WAIT, NULL, "no leader; %s is ahead of us (%llu > %llu), leaving it the key",
				   m->name, (unsigned long long)m->polled_lsn, (unsigned long long)l->pg_lsn);
			return false;
		}
	}
	return true;
}

/* A switchover/failover names a target, and the leader key has not been
 * gone for longer than a ttl: only the target may take the key. Past that
 * the target is presumed dead and anybody eligible may. */
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

struct ha_action ha_decide(const struct ha_cluster_view *c, const struct ha_local_view *l, double now)
{
	const double deadline = ha_lease_deadline(c, l);
	const bool lease_valid = deadline > 0 && now < deadline &&
				 (l->lease_id != 0 || (c->failsafe_mode && !c->etcd_ok));
	const bool holds = c->etcd_ok && c->has_leader && strcmp(c->leader, l->name) == 0;
	const bool holds_on_our_lease = holds && c->leader_lease == l->lease_id;
	const bool other_leads = c->etcd_ok && c->has_leader && !holds;
	const bool may_write = l->pg_running && (l->pg_primary || l->pg_started_primary || l->promote_requested);

	/* 1. An operator or systemd asked us to stop. */
	if (l->shutdown_requested)
		return act(HA_SHUTDOWN, NULL, "shutdown requested: stopping Postgres, then releasing our keys");

	/* 2. Safety: a Postgres that may accept writes needs a valid lease and the key. */
	if (may_write) {
		if (!lease_valid) {
			if (deadline > 0)
				return act(HA_DEMOTE, NULL,
					   "leader lease not renewed for %.1fs (deadline passed %.1fs ago), demoting",
					   now - l->lease_sent, now - deadline);
			return act(HA_DEMOTE, NULL, "no leader lease, demoting");
		}
		if (other_leads)
			return act(HA_DEMOTE, c->leader, "%s holds the leader key, demoting", c->leader);
		if (c->etcd_ok && !c->has_leader)
			return act(HA_ACQUIRE, NULL, "leader key vanished while we run as primary; taking it again");
		if (holds && !holds_on_our_lease)
			return act(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
		if (!c->etcd_ok)
			return act(HA_WAIT, NULL, "etcd unreachable; staying primary until the %s deadline in %.1fs",
				   c->failsafe_mode && l->failsafe_confirmed_at > 0 ? "failsafe" : "lease", deadline - now);
	}

	/* 3. Without a fresh view of etcd nothing may change role. */
	if (!c->etcd_ok)
		return act(HA_WAIT, NULL, "etcd unreachable; keeping the current role, no promotion");

	/* 4. One long job at a time; while it runs the data directory is half-made. */
	if (l->job != HA_JOB_NONE)
		return act(HA_WAIT, NULL, "waiting for the running job to finish");

	/* 5. Which cluster is this? */
	if (l->datadir == HA_DATADIR_INVALID)
		return act(HA_FATAL, NULL, "data directory is not empty and is not a Postgres data directory");
	if (!c->init_key_present) {
		return act(HA_RACE_INIT, NULL,
			   l->datadir == HA_DATADIR_VALID
				   ? "cluster not initialized in etcd; claiming it with our data directory"
				   : "cluster not initialized; racing to bootstrap it");
	}
	if (c->init_in_progress) {
		if (strcmp(c->init_owner, l->name) == 0)
			return act(HA_BOOTSTRAP, NULL, "we own the initialize key: bootstrapping");
		return act(HA_WAIT, NULL, "waiting for %s to bootstrap the cluster", c->init_owner);
	}
	if (l->datadir == HA_DATADIR_VALID && c->sysid != 0 && l->datadir_sysid != c->sysid)
		return act(HA_FATAL, NULL,
			   "data directory belongs to another cluster: system identifier %llu, cluster's is %llu",
			   (unsigned long long)l->datadir_sysid, (unsigned long long)c->sysid);

	/* 6. Operator requests for this node. */
	if (l->reinit_requested) {
		if (holds)
			return act(HA_WAIT, NULL, "reinit refused: this member is the leader; switch over first");
		if (!other_leads)
			return act(HA_WAIT, NULL, "reinit requested, but there is no leader to clone from");
		return act(HA_REINIT, c->leader, "reinit requested: removing the data directory to clone from %s",
			   c->leader);
	}
	if (l->restart_requested && l->pg_running)
		return act(HA_RESTART, NULL, "restart requested by an operator");

	/* 7. Maintenance mode: keep the keys, touch no Postgres, never fail over
	 * (rule 2 above still stops a primary whose lease is gone). */
	if (c->paused) {
		if (holds && l->pg_ready && l->pg_primary)
			return act(HA_LEAD, NULL, "maintenance mode: primary holding the leader key, touching nothing");
		return act(HA_WAIT, NULL, "maintenance mode (paused): not touching Postgres, no failover");
	}

	/* 8. Nothing to run yet. */
	if (l->datadir == HA_DATADIR_EMPTY) {
		if (holds)
			return act(HA_RELEASE, NULL, "we hold the leader key but have no data; releasing it");
		if (other_leads)
			return act(HA_CLONE, c->leader, "empty data directory: cloning from %s", c->leader);
		return act(HA_WAIT, NULL, "empty data directory and no leader to clone from; waiting");
	}

	/* 9. Data but no Postgres. */
	if (!l->pg_running) {
		if (holds) {
			if (l->pg_start_failed && l->pg_started_primary)
				return act(HA_RELEASE, NULL, "Postgres failed to start as primary; releasing the leader key");
			if (!lease_valid)
				return act(HA_WAIT, NULL, "we hold the key but our lease is not valid; waiting for renewal");
			if (!holds_on_our_lease)
				return act(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
			return act(HA_START_PRIMARY, NULL, "we hold the leader key: starting Postgres as primary");
		}
		if (other_leads) {
			/* A former primary also starts as a replica first: if its WAL
			 * does not go past the new leader's fork point it simply follows;
			 * if it does, it cannot stream and is rewound below (rule 11),
			 * then from a clean shutdown in recovery. */
			if (l->job_failed == HA_JOB_REWIND && l->remove_data_on_rewind_failure)
				return act(HA_REINIT, c->leader, "pg_rewind failed: removing the data directory to clone from %s",
					   c->leader);
			/* "requested timeline is not a child of this server's history":
			 * it cannot even start as a replica of this leader. */
			if (l->pg_start_failed && !l->pg_started_primary && l->use_pg_rewind &&
			    l->job_failed != HA_JOB_REWIND && strcmp(l->following, c->leader) == 0)
				return act(HA_REWIND, c->leader, "Postgres fails to start as a replica of %s: rewinding",
					   c->leader);
			return act(HA_START_REPLICA, c->leader, "starting Postgres as a replica of %s", c->leader);
		}
		return act(HA_START_REPLICA, "", "no leader: starting Postgres as a replica without upstream");
	}

	/* 10. Running but not answering yet. */
	if (!l->pg_ready)
		return act(HA_WAIT, NULL, "Postgres is starting");

	/* 11. A replica. */
	if (!l->pg_primary) {
		if (holds) {
			if (!lease_valid)
				return act(HA_WAIT, NULL, "we hold the key but our lease is not valid; waiting for renewal");
			if (!holds_on_our_lease)
				return act(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
			if (l->promote_requested)
				return act(HA_WAIT, NULL, "promotion in progress");
			return act(HA_PROMOTE, NULL, "we hold the leader key: promoting");
		}
		if (other_leads) {
			uint32_t tl = leader_timeline(c);

			if (strcmp(l->following, c->leader) != 0)
				return act(HA_FOLLOW, c->leader, "following the new leader %s", c->leader);
			if (l->use_pg_rewind && !l->pg_streaming && l->pg_not_streaming_since > 0 &&
			    now - l->pg_not_streaming_since >= ha_diverged_after(c) && tl != 0 && tl != l->pg_timeline) {
				if (l->job_failed == HA_JOB_REWIND) {
					if (l->remove_data_on_rewind_failure)
						return act(HA_REINIT, c->leader,
							   "pg_rewind failed: removing the data directory to clone from %s",
							   c->leader);
					return act(HA_WAIT, NULL,
						   "not streaming from %s and pg_rewind failed; remove_data_directory_on_rewind_failure "
						   "is off: reinit this member by hand",
						   c->leader);
				}
				return act(HA_REWIND, c->leader,
					   "not streaming from %s for %.0fs and on timeline %u while it is on %u: rewinding",
					   c->leader, now - l->pg_not_streaming_since, l->pg_timeline, tl);
			}
			return act(HA_WAIT, NULL, "replica of %s", c->leader);
		}
		{
			struct ha_action why;
			bool named = c->has_switchover && strcmp(c->sw_to, l->name) == 0;

			if (!named && switchover_reserves_key(c, l, now))
				return act(HA_WAIT, NULL, "no leader; %s to %s in progress, leaving it the key",
					   c->sw_failover ? "failover" : "switchover", c->sw_to);
			if (!eligible(c, l, named, now, &why))
				return why;
			if (named)
				return act(HA_ACQUIRE, NULL, "no leader; we are the %s candidate: taking the key",
					   c->sw_failover ? "failover" : "switchover");
		}
		return act(HA_ACQUIRE, NULL, "no leader; we are the most up-to-date healthy member (lsn %llu): taking the key",
			   (unsigned long long)l->pg_lsn);
	}

	/* 12. The primary, with a valid lease and the key on it (rule 2 above). */
	if (switchover_for_us(c, l)) {
		if (c->sw_scheduled_at > 0 && l->wall_now < c->sw_scheduled_at)
			return act(HA_LEAD, NULL, "primary holding the leader key; switchover%s%s scheduled in %.0fs",
				   c->sw_to[0] ? " to " : "", c->sw_to, c->sw_scheduled_at - l->wall_now);
		return act(HA_SWITCHOVER, c->sw_to, "%s%s%s requested: handing over the leader key",
			   c->sw_failover ? "failover" : "switchover", c->sw_to[0] ? " to " : "", c->sw_to);
	}
	return act(HA_LEAD, NULL, "primary holding the leader key");
}
