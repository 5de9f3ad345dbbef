/*
 * ha.c - the HA decision core (see ha.h); its synchronous replication plan
 * is in ha_sync.c.
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
 *  12. Postgres the primary          -> LEAD / SWITCHOVER
 *
 * Each rule is one function (rule_shutdown ... rule_primary) that decides or
 * passes; the table rules[] is the order, and ha_decide puts the number of
 * the rule that decided in the action (tests/check_ha.c checks it per row).
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
	case HA_REFUSE: return "refuse";
	case HA_CLEAR_SWITCHOVER: return "clear_switchover";
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

/*
 * Failsafe semantics (the keeper used to count a confirmed round whether or
 * not etcd answered again, ha_lease_deadline only while it did not): rule 2
 * counts from the last renewal *sent*, whatever etcd says later. A failsafe
 * round stands in for a renewal only while etcd cannot be asked: each member
 * that confirmed us promised not to take the key for a ttl. Once etcd
 * answers, its lease is the truth again (it may have expired there, and the
 * key with it), so the deadline is the lease's: never later than with the
 * round counted, so the safe one. The callers pass failsafe_at only while
 * failsafe_mode is on and etcd is unreachable: ha_lease_deadline from the
 * cluster view, the keeper until a keepalive gets an answer.
 */
double ha_deadline(int64_t lease_id, double lease_sent, double ttl, double failsafe_at)
{
	double base = lease_id != 0 && lease_sent > 0 ? lease_sent : 0;

	if (failsafe_at > base)
		base = failsafe_at;
	return base > 0 ? base + ttl - ha_lease_margin(ttl) : 0;
}

double ha_lease_deadline(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	return ha_deadline(l->lease_id, l->lease_sent, c->ttl,
			   c->failsafe_mode && !c->etcd_ok ? l->failsafe_confirmed_at : 0);
}

double ha_diverged_after(const struct ha_cluster_view *c)
{
	/* Longer than a replica needs to reconnect after a timeline switch
	 * (wal_retrieve_retry_interval is 5 s by default); a needless
	 * rewind costs a restart and "no rewind required", nothing more. */
	double t = 3 * c->loop_wait;
	return t < 6.0 ? 6.0 : t;
}

double ha_replay_bound(const struct ha_cluster_view *c)
{
	double t = 2 * c->loop_wait;
	return t < 5.0 ? 5.0 : t;
}

static const char *const role_names[] = {
	[HA_ROLE_UNKNOWN] = "unknown", [HA_ROLE_PRIMARY] = "primary", [HA_ROLE_REPLICA] = "replica",
	[HA_ROLE_UNINITIALIZED] = "uninitialized", [HA_ROLE_STOPPED] = "stopped",
};

static const char *const state_names[] = {
	[HA_STATE_UNKNOWN] = "unknown",
	[HA_STATE_RUNNING] = "running",
	[HA_STATE_STARTING] = "starting",
	[HA_STATE_STOPPED] = "stopped",
	[HA_STATE_START_FAILED] = "start failed",
	[HA_STATE_BOOTSTRAPPING] = "bootstrapping",
	[HA_STATE_CLONING] = "cloning",
	[HA_STATE_REWINDING] = "rewinding",
	[HA_STATE_PROMOTING] = "promoting",
	[HA_STATE_REPLAY_PAUSED] = "replay paused",
	[HA_STATE_STUCK_REPLAY] = "stuck replay",
	[HA_STATE_NOT_STREAMING] = "not streaming",
};

const char *ha_role_name(enum ha_role r)
{
	return (size_t)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "unknown";
}

enum ha_role ha_role_from_name(const char *name)
{
	for (size_t i = 1; name && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(name, role_names[i]) == 0)
			return (enum ha_role)i;
	return HA_ROLE_UNKNOWN;
}

const char *ha_state_name(enum ha_state s)
{
	return (size_t)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

enum ha_state ha_state_from_name(const char *name)
{
	for (size_t i = 1; name && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (enum ha_state)i;
	return HA_STATE_UNKNOWN;
}

static enum ha_state replay_member_state(enum ha_replay r)
{
	switch (r) {
	case HA_REPLAY_OK: return HA_STATE_RUNNING;
	case HA_REPLAY_PAUSED: return HA_STATE_REPLAY_PAUSED;
	case HA_REPLAY_STUCK: return HA_STATE_STUCK_REPLAY;
	case HA_REPLAY_NOT_STREAMING: return HA_STATE_NOT_STREAMING;
	}
	return HA_STATE_RUNNING;
}

const char *ha_replay_state(enum ha_replay r)
{
	return ha_state_name(replay_member_state(r));
}

bool ha_replay_state_unhealthy(const char *state)
{
	enum ha_state s = ha_state_from_name(state);

	return s == HA_STATE_REPLAY_PAUSED || s == HA_STATE_STUCK_REPLAY || s == HA_STATE_NOT_STREAMING;
}

enum ha_role ha_role_of(bool pg_ready, bool pg_primary, enum ha_datadir datadir)
{
	if (pg_ready)
		return pg_primary ? HA_ROLE_PRIMARY : HA_ROLE_REPLICA;
	return datadir == HA_DATADIR_EMPTY ? HA_ROLE_UNINITIALIZED : HA_ROLE_STOPPED;
}

enum ha_state ha_state_of(enum ha_job running, bool promoting, bool postmaster_running, bool start_failed,
			  bool pg_ready, bool pg_primary, enum ha_replay replay)
{
	switch (running) {
	case HA_JOB_BOOTSTRAP: return HA_STATE_BOOTSTRAPPING;
	case HA_JOB_CLONE: return HA_STATE_CLONING;
	case HA_JOB_REWIND: return HA_STATE_REWINDING;
	case HA_JOB_NONE: break;
	}
	if (promoting)
		return HA_STATE_PROMOTING;
	if (!postmaster_running)
		return start_failed ? HA_STATE_START_FAILED : HA_STATE_STOPPED;
	if (pg_ready && !pg_primary)
		return replay_member_state(replay);
	return pg_ready ? HA_STATE_RUNNING : HA_STATE_STARTING;
}

/* The position a replica's health and lag count from: what it replayed. */
static uint64_t replayed(const struct ha_local_view *l)
{
	return l->pg_replay_lsn ? l->pg_replay_lsn : l->pg_lsn;
}

enum ha_replay ha_replay_check(const struct ha_cluster_view *c, const struct ha_local_view *l, double now,
			       char *why, size_t len)
{
	const double bound = ha_replay_bound(c);
	char dummy[8];

	if (!why) {
		why = dummy;
		len = sizeof(dummy);
	}
	why[0] = '\0';
	if (!l->pg_ready || l->pg_primary)
		return HA_REPLAY_OK;
	if (l->pg_replay_paused) {
		snprintf(why, len, "replay paused (pg_is_wal_replay_paused)%s%s", l->hs_below_primary ? ": " : "",
			 l->hs_below_primary ? l->hs_detail : "");
		return HA_REPLAY_PAUSED;
	}
	if (l->pg_receive_lsn > l->pg_replay_lsn && l->pg_replay_progress_at > 0 &&
	    now - l->pg_replay_progress_at >= bound) {
		snprintf(why, len, "replay stuck for %.0fs with %llu bytes received and not replayed", now - l->pg_replay_progress_at,
			 (unsigned long long)(l->pg_receive_lsn - l->pg_replay_lsn));
		return HA_REPLAY_STUCK;
	}
	if (c->etcd_ok && c->has_leader && strcmp(c->leader, l->name) != 0 && !l->pg_streaming &&
	    l->pg_not_streaming_since > 0 && now - l->pg_not_streaming_since >= bound && c->leader_lsn > replayed(l)) {
		snprintf(why, len, "not streaming from %s for %.0fs, %llu bytes behind it", c->leader,
			 now - l->pg_not_streaming_since, (unsigned long long)(c->leader_lsn - replayed(l)));
		return HA_REPLAY_NOT_STREAMING;
	}
	return HA_REPLAY_OK;
}

double ha_start_backoff(enum ha_start_failure why, int failures)
{
	double t = 3.0;

	if (failures <= 0 || (failures == 1 && why == HA_START_FAIL_PARAMS))
		return 0;
	for (int i = 1; i < failures && t < 60.0; i++)
		t *= 2;
	return t > 60.0 ? 60.0 : t;
}

double ha_job_backoff(enum ha_job kind)
{
	return kind == HA_JOB_NONE ? 0 : 3.0;
}

/* Still inside the backoff after a failed `kind` job: seconds left, else 0. */
static double job_backoff_left(const struct ha_local_view *l, enum ha_job kind, double factor, double now)
{
	double left;

	if (l->job_failed_at <= 0)
		return 0;
	left = ha_job_backoff(kind) * factor - (now - l->job_failed_at);
	return left > 0 ? left : 0;
}

/* pg_rewind failed and is to be tried again (rewind_failures < 3), not yet. */
static double rewind_backoff_left(const struct ha_local_view *l, double now)
{
	return l->rewind_failures > 0 ? job_backoff_left(l, HA_JOB_REWIND, 1, now) : 0;
}

static const char *start_failure_name(enum ha_start_failure k)
{
	switch (k) {
	case HA_START_FAIL_UNKNOWN: return "cause unknown";
	case HA_START_FAIL_DIVERGED: return "diverged timeline";
	case HA_START_FAIL_PARAMS: return "hot-standby parameter below the primary's";
	case HA_START_FAIL_OTHER: return "server error";
	}
	return "cause unknown";
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

/* Synchronous mode: may `name` take the leader key? Every commit the sync
 * key's leader acknowledged is on the standbys it names (they were added to
 * synchronous_standby_names before being recorded), and on that leader
 * itself. Without a sync key, or outside synchronous mode, anyone may. */
bool ha_sync_allows(const struct ha_cluster_view *c, const char *name)
{
	if (!c->synchronous_mode || !c->has_sync || !c->sync_leader[0])
		return true;
	if (strcmp(c->sync_leader, name) == 0)
		return true;
	/* Quorum commit with nothing promised yet: nobody but that leader. */
	if (ha_sync_quorum_mode(c) && c->sync_quorum <= 0)
		return false;
	for (size_t i = 0; i < c->n_sync && i < HA_SYNC_MAX; i++)
		if (strcmp(c->sync_standbys[i], name) == 0)
			return true;
	return false;
}

bool ha_sync_quorum_mode(const struct ha_cluster_view *c)
{
	/* A key written under quorum commit keeps its meaning even if the
	 * config has just changed. */
	return c->synchronous_mode && (c->synchronous_quorum || c->sync_quorum > 0);
}

static bool sync_candidate(const struct ha_cluster_view *c, const char *name)
{
	return ha_sync_allows(c, name);
}

/* Candidate order among equally advanced members: higher
 * failover_priority first, then the smaller name. */
static bool ranks_before(int prio_a, const char *name_a, int prio_b, const char *name_b)
{
	if (prio_a != prio_b)
		return prio_a > prio_b;
	return strcmp(name_a, name_b) < 0;
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
		*why = act(HA_WAIT, NULL, "no leader; not a candidate (tag nofailover or failover_priority 0)");
		return false;
	}
	if (l->watchdog_required && !l->watchdog_ok) {
		*why = act(HA_WAIT, NULL, "no leader; not a candidate: watchdog.mode is required and the watchdog "
					  "cannot be armed");
		return false;
	}
	/* Synchronous mode: only a member that has every acknowledged commit
	 * may lead; an operator's manual failover overrides it. */
	if (!(named_candidate && c->sw_failover) && !sync_candidate(c, l->name)) {
		*why = act(HA_WAIT, NULL, "no leader; not a candidate: synchronous mode and the sync key (leader %s) "
					  "does not name us",
			   c->sync_leader);
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
	/* DESIGN.md rule 8: a replica whose replay is paused or stuck would
	 * promote without what it has not replayed, or not at all (a paused
	 * replay for insufficient parameters refuses promotion). An operator's
	 * manual failover naming it overrides, as it does the lag. */
	if (!skip_lag) {
		char rwhy[160];
		enum ha_replay r = ha_replay_check(c, l, now, rwhy, sizeof(rwhy));

		if (r == HA_REPLAY_PAUSED || r == HA_REPLAY_STUCK) {
			*why = act(HA_WAIT, NULL, "no leader; not a candidate: %s", rwhy);
			return false;
		}
	}
	/* The lag counts from what we replayed, not what we received. */
	if (!skip_lag && c->leader_lsn > replayed(l) &&
	    c->leader_lsn - replayed(l) > (uint64_t)c->maximum_lag_on_failover) {
		*why = act(HA_WAIT, NULL,
			   "no leader; not a candidate: %llu bytes behind the last leader position "
			   "(maximum_lag_on_failover %lld)",
			   (unsigned long long)(c->leader_lsn - replayed(l)), (long long)c->maximum_lag_on_failover);
		return false;
	}
	/* Quorum commit: a commit is on sync_quorum of the n_sync named; only
	 * a candidate that sees n_sync - sync_quorum + 1 of them (itself
	 * included) and is not behind any sees one of them for sure. */
	if (!skip_lag && ha_sync_quorum_mode(c) && c->has_sync && strcmp(c->sync_leader, l->name) != 0) {
		size_t seen = 0, need;

		for (size_t i = 0; i < c->n_sync && i < HA_SYNC_MAX; i++) {
			const struct ha_member *m = ha_find_member(c, c->sync_standbys[i]);

			if (strcmp(c->sync_standbys[i], l->name) == 0)
				seen++;
			else if (m && m->polled && m->reachable && m->healthy && !m->polled_primary)
				seen++;
		}
		need = c->sync_quorum > 0 && (size_t)c->sync_quorum <= c->n_sync ? c->n_sync - (size_t)c->sync_quorum + 1
										 : c->n_sync + 1;
		if (seen < need) {
			*why = act(HA_WAIT, NULL,
				   "no leader; quorum commit: we see %zu of the %zu synchronous standbys, need %zu to be "
				   "sure to hold every commit",
				   seen, c->n_sync, need);
			return false;
		}
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
		/* Only a peer that could take the key itself may hold us back: not
		 * nofailover, not behind the last leader's timeline, and in
		 * synchronous mode one the sync key names. */
		if (m->nofailover || (c->leader_timeline != 0 && m->polled_timeline < c->leader_timeline) ||
		    !sync_candidate(c, m->name))
			continue;
		if (m->polled_lsn > l->pg_lsn) {
			*why = act(HA_WAIT, NULL, "no leader; %s is ahead of us (%llu > %llu), leaving it the key",
				   m->name, (unsigned long long)m->polled_lsn, (unsigned long long)l->pg_lsn);
			return false;
		}
		/* Equally advanced: failover_priority, then the name, decide, so
		 * that exactly one of them tries. */
		/* (For two ttls only: a peer that never takes it must not stall
		 * the failover for good.) */
		if (m->polled_lsn == l->pg_lsn && ranks_before(m->failover_priority, m->name, l->failover_priority, l->name) &&
		    (l->leader_absent_since <= 0 || now - l->leader_absent_since < 2 * c->ttl)) {
			*why = act(HA_WAIT, NULL,
				   "no leader; %s is as far as we are (lsn %llu) and ranks first (failover_priority %d vs "
				   "%d), leaving it the key",
				   m->name, (unsigned long long)l->pg_lsn, m->failover_priority, l->failover_priority);
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

/* For the leader: why a switchover key that is not for us is over (it named
 * us as the candidate: done; or it is addressed to another leader). */
static const char *stale_switchover(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	return strcmp(c->sw_to, l->name) == 0 ? "the switchover to us is done: clearing its request"
					       : "the switchover request is for another leader: clearing it";
}

bool ha_switchover_ready(const struct ha_cluster_view *c, const struct ha_local_view *l, const char *name,
			 const struct ha_peer_status *st, char *why, size_t len)
{
	const struct ha_member *m = ha_find_member(c, name);

	if (!m || !m->api_url[0]) {
		snprintf(why, len, "%s is not a member of the cluster", name);
		return false;
	}
	if (m->nofailover) {
		snprintf(why, len, "%s is tagged nofailover", name);
		return false;
	}
	if (!st || !st->answered) {
		snprintf(why, len, "%s does not answer: %s", name, st ? st->error : "not asked");
		return false;
	}
	if (!st->pg_running || ha_role_from_name(st->role) != HA_ROLE_REPLICA) {
		snprintf(why, len, "%s is not a running replica (role %s, state %s)", name, st->role, st->state);
		return false;
	}
	/* DESIGN.md rule 8: it must be replaying what it receives. */
	if (ha_replay_state_unhealthy(st->state)) {
		snprintf(why, len, "%s is not replaying (state %s)", name, st->state);
		return false;
	}
	if (st->timeline != l->pg_timeline) {
		snprintf(why, len, "%s is on timeline %u, we are on %u", name, st->timeline, l->pg_timeline);
		return false;
	}
	/* Far behind, it would not catch up while we wait, stopped. */
	if (l->pg_lsn > st->lsn && l->pg_lsn - st->lsn > (uint64_t)c->maximum_lag_on_failover) {
		snprintf(why, len, "%s is %llu bytes behind (maximum_lag_on_failover %lld)", name,
			 (unsigned long long)(l->pg_lsn - st->lsn), (long long)c->maximum_lag_on_failover);
		return false;
	}
	return true;
}

int ha_switchover_choose(const struct ha_cluster_view *c, const struct ha_local_view *l, const char *const names[],
			 const struct ha_peer_status st[], size_t n)
{
	int best = -1;
	bool best_sync = false;
	int best_prio = 0;

	for (size_t i = 0; i < n; i++) {
		const struct ha_member *m = ha_find_member(c, names[i]);
		bool is_sync = ha_sync_allows(c, names[i]);
		int prio = m ? m->failover_priority : 0;
		char why[300];

		if (strcmp(names[i], l->name) == 0 || !ha_switchover_ready(c, l, names[i], &st[i], why, sizeof(why)))
			continue;
		if (best >= 0 && !(is_sync && !best_sync)) {
			if (is_sync != best_sync || st[i].lsn < st[best].lsn)
				continue;
			if (st[i].lsn == st[best].lsn && !ranks_before(prio, names[i], best_prio, names[best]))
				continue;
		}
		best = (int)i;
		best_sync = is_sync;
		best_prio = prio;
	}
	return best;
}

/* What every rule reads: the views, the time, and what ha_decide derives
 * from them once. */
struct rule_ctx {
	const struct ha_cluster_view *c;
	const struct ha_local_view *l;
	double now;
	double deadline;          /* ha_lease_deadline */
	bool lease_valid;         /* our lease (or a failsafe round) is good until the deadline */
	bool holds;               /* etcd says the leader key holds our name */
	bool holds_on_our_lease;  /* ... on our current lease */
	bool other_leads;         /* etcd says another member holds it */
	bool may_write;           /* our Postgres may accept writes (primary, started as one, or promoting) */
};

/* A rule that decides fills *out and returns true; else false, and the
 * next rule is asked. DECIDE(kind, leader, fmt, ...) decides with act(). */
static bool done(struct ha_action *out, struct ha_action a)
{
	*out = a;
	return true;
}
#define DECIDE(...) return done(out, act(__VA_ARGS__))

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
			       c->failsafe_mode && l->failsafe_confirmed_at > 0 ? "failsafe" : "lease", x->deadline - now);
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
			DECIDE(HA_WAIT, NULL, "cluster not initialized; not racing to bootstrap it: watchdog.mode is "
					      "required and the watchdog cannot be armed");
		if (l->lease_id == 0)
			DECIDE(HA_WAIT, NULL, "cluster not initialized; waiting for our own lease before racing to "
					      "initialize it");
		if (l->job_failed == HA_JOB_BOOTSTRAP && job_backoff_left(l, HA_JOB_BOOTSTRAP, 3, now) > 0)
			DECIDE(HA_WAIT, NULL, "cluster not initialized; our bootstrap failed: racing again in %.0fs",
			       job_backoff_left(l, HA_JOB_BOOTSTRAP, 3, now));
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
					DECIDE(HA_WAIT, NULL, "bootstrap: not starting as primary: watchdog.mode is "
							      "required and the watchdog cannot be armed");
				if (!x->lease_valid)
					DECIDE(HA_WAIT, NULL,
					       "bootstrap: our lease is not valid; waiting for renewal before starting "
					       "as primary");
				if (x->holds && !x->holds_on_our_lease)
					DECIDE(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
				if (l->pg_start_failed &&
				    now - l->pg_started_at < ha_start_backoff(l->pg_start_failure, l->pg_start_failures))
					DECIDE(HA_WAIT, NULL, "bootstrap: Postgres failed to start (%s); starting it again in %.0fs",
					       l->pg_start_error,
					       ha_start_backoff(l->pg_start_failure, l->pg_start_failures) -
						       (now - l->pg_started_at));
			}
			if (l->datadir == HA_DATADIR_EMPTY && l->job_failed == HA_JOB_BOOTSTRAP &&
			    job_backoff_left(l, HA_JOB_BOOTSTRAP, 1, now) > 0)
				DECIDE(HA_WAIT, NULL, "bootstrap: initdb failed; running it again in %.0fs",
				       job_backoff_left(l, HA_JOB_BOOTSTRAP, 1, now));
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
		if (!x->other_leads)
			DECIDE(HA_WAIT, NULL, "reinit requested, but there is no leader to clone from");
		DECIDE(HA_REINIT, c->leader, "reinit requested: removing the data directory to clone from %s",
		       c->leader);
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
		} else if ((l->restart_in_progress || l->following[0]) && l->pg_ready && !l->pg_primary && x->other_leads &&
			   strcmp(l->following, c->leader) != 0) {
			/* The leader changed by an operator's switchover: replicas
			 * (and the old primary, started again) follow it, by a
			 * reload. */
			DECIDE(HA_FOLLOW, c->leader, "maintenance mode: following the new leader %s", c->leader);
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
		if (x->holds)
			DECIDE(HA_RELEASE, NULL, "we hold the leader key but have no data; releasing it");
		if (x->other_leads && l->job_failed == HA_JOB_CLONE && job_backoff_left(l, HA_JOB_CLONE, 1, now) > 0)
			DECIDE(HA_WAIT, NULL, "empty data directory: cloning from %s failed; trying again in %.0fs",
			       c->leader, job_backoff_left(l, HA_JOB_CLONE, 1, now));
		if (x->other_leads)
			DECIDE(HA_CLONE, c->leader, "empty data directory: cloning from %s", c->leader);
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
		const double backoff = l->pg_start_failed ? ha_start_backoff(l->pg_start_failure, l->pg_start_failures) : 0;
		const bool backing_off = backoff > 0 && now - l->pg_started_at < backoff;

		if (x->holds) {
			if (l->pg_start_failed && l->pg_started_primary)
				DECIDE(HA_RELEASE, NULL, "Postgres failed to start as primary; releasing the leader key");
			if (!x->lease_valid)
				DECIDE(HA_WAIT, NULL, "we hold the key but our lease is not valid; waiting for renewal");
			if (!x->holds_on_our_lease)
				DECIDE(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
			if (l->watchdog_required && !l->watchdog_ok)
				DECIDE(HA_RELEASE, NULL,
				       "watchdog.mode is required and the watchdog cannot be armed: releasing the key");
			/* No backoff while we hold the key: a failed start as primary
			 * releases it (above), and the key must not wait on us. */
			DECIDE(HA_START_PRIMARY, NULL, "we hold the leader key: starting Postgres as primary");
		}
		if (x->other_leads) {
			/* A former primary also starts as a replica first: if its WAL
			 * does not go past the new leader's fork point it simply follows;
			 * if it does, it cannot stream and is rewound below (rule 11),
			 * then from a clean shutdown in recovery. */
			if (l->job_failed == HA_JOB_REWIND && l->remove_data_on_rewind_failure)
				DECIDE(HA_REINIT, c->leader, "pg_rewind failed: removing the data directory to clone from %s",
				       c->leader);
			/* A failed start is repaired by what its cause needs, as the
			 * server's own log says; pg_rewind rewrites the data directory
			 * and only ever follows a diverged timeline. */
			if (l->pg_start_failed && !l->pg_started_primary) {
				switch (l->pg_start_failure) {
				case HA_START_FAIL_DIVERGED:
					if (l->use_pg_rewind && l->job_failed != HA_JOB_REWIND &&
					    strcmp(l->following, c->leader) == 0 && rewind_backoff_left(l, now) > 0)
						DECIDE(HA_WAIT, NULL,
						       "Postgres cannot start as a replica of %s, its timeline diverged; "
						       "pg_rewind failed (attempt %d of 3): trying again in %.0fs",
						       c->leader, l->rewind_failures, rewind_backoff_left(l, now));
					if (l->use_pg_rewind && l->job_failed != HA_JOB_REWIND &&
					    strcmp(l->following, c->leader) == 0)
						DECIDE(HA_REWIND, c->leader,
						       "Postgres cannot start as a replica of %s, its timeline diverged (%s): "
						       "rewinding",
						       c->leader, l->pg_start_error);
					if (backing_off)
						DECIDE(HA_WAIT, NULL,
						       "Postgres cannot start as a replica of %s, its timeline diverged, and "
						       "%s: reinit this member; trying again in %.0fs",
						       c->leader,
						       l->use_pg_rewind ? "pg_rewind did not repair it" : "use_pg_rewind is off",
						       backoff - (now - l->pg_started_at));
					break;
				case HA_START_FAIL_PARAMS:
					if (backing_off)
						DECIDE(HA_WAIT, NULL, "Postgres failed to start (%s: %s); starting it again in %.0fs",
						       start_failure_name(l->pg_start_failure), l->pg_start_error,
						       backoff - (now - l->pg_started_at));
					DECIDE(HA_START_REPLICA, c->leader,
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
				DECIDE(HA_START_REPLICA, c->leader, "starting Postgres again as a replica of %s after a failed "
								    "start (%d in a row)",
				       c->leader, l->pg_start_failures);
			}
			if (backing_off)
				DECIDE(HA_WAIT, NULL, "Postgres failed to start (%s: %s); starting it again in %.0fs",
				       start_failure_name(l->pg_start_failure), l->pg_start_error,
				       backoff - (now - l->pg_started_at));
			DECIDE(HA_START_REPLICA, c->leader, "starting Postgres as a replica of %s", c->leader);
		}
		if (backing_off)
			DECIDE(HA_WAIT, NULL, "Postgres failed to start (%s: %s); starting it again in %.0fs",
			       start_failure_name(l->pg_start_failure), l->pg_start_error, backoff - (now - l->pg_started_at));
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
				DECIDE(HA_WAIT, NULL, "we hold the key but our lease is not valid; waiting for renewal");
			if (!x->holds_on_our_lease)
				DECIDE(HA_ACQUIRE, NULL, "leader key holds our name on an old lease; moving it to ours");
			if (l->promote_requested)
				DECIDE(HA_WAIT, NULL, "promotion in progress");
			if (l->watchdog_required && !l->watchdog_ok)
				DECIDE(HA_RELEASE, NULL,
				       "watchdog.mode is required and the watchdog cannot be armed: releasing the key "
				       "instead of promoting");
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

			if (strcmp(l->following, c->leader) != 0)
				DECIDE(HA_FOLLOW, c->leader, "following the new leader %s", c->leader);
			/* A replay paused by an operator also stops streaming across a
			 * timeline switch: that is no evidence of divergence, and a rewind
			 * (a restart) would silently drop the pause. */
			if (l->pg_replay_paused && !l->pg_streaming && tl != 0 && tl != l->pg_timeline)
				DECIDE(HA_WAIT, NULL,
				       "replica of %s; replay is paused, so the switch to its timeline %u waits until "
				       "it resumes",
				       c->leader, tl);
			if (l->use_pg_rewind && !l->pg_streaming && l->pg_not_streaming_since > 0 &&
			    now - l->pg_not_streaming_since >= ha_diverged_after(c) && tl != 0 && tl != l->pg_timeline) {
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
				if (rewind_backoff_left(l, now) > 0)
					DECIDE(HA_WAIT, NULL,
					       "not streaming from %s and on timeline %u while it is on %u; pg_rewind failed "
					       "(attempt %d of 3): trying again in %.0fs",
					       c->leader, l->pg_timeline, tl, l->rewind_failures, rewind_backoff_left(l, now));
				DECIDE(HA_REWIND, c->leader,
				       "not streaming from %s for %.0fs and on timeline %u while it is on %u: rewinding",
				       c->leader, now - l->pg_not_streaming_since, l->pg_timeline, tl);
			}
			DECIDE(HA_WAIT, NULL, "replica of %s", c->leader);
		}
		{
			struct ha_action why;
			bool named = c->has_switchover && strcmp(c->sw_to, l->name) == 0;

			if (!named && switchover_reserves_key(c, l, now))
				DECIDE(HA_WAIT, NULL, "no leader; %s to %s in progress, leaving it the key",
				       c->sw_failover ? "failover" : "switchover", c->sw_to);
			if (!eligible(c, l, named, now, &why))
				return done(out, why);
			if (named)
				DECIDE(HA_ACQUIRE, NULL, "no leader; we are the %s candidate: taking the key",
				       c->sw_failover ? "failover" : "switchover");
		}
		DECIDE(HA_ACQUIRE, NULL, "no leader; we are the most up-to-date healthy member (lsn %llu): taking the key",
		       (unsigned long long)l->pg_lsn);
	}
	return false;
}

/* 12. The primary, with a valid lease and the key on it (rule 2 above). */
static bool rule_primary(const struct rule_ctx *x, struct ha_action *out)
{
	const struct ha_cluster_view *c = x->c;
	const struct ha_local_view *l = x->l;

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
	rule_shutdown, rule_safety, rule_etcd,    rule_job,      rule_identity, rule_requests,
	rule_paused,   rule_empty,  rule_down,    rule_starting, rule_replica,  rule_primary,
};

struct ha_action ha_decide(const struct ha_cluster_view *c, const struct ha_local_view *l, double now)
{
	struct rule_ctx x = {.c = c, .l = l, .now = now};
	struct ha_action a;

	x.deadline = ha_lease_deadline(c, l);
	x.lease_valid = x.deadline > 0 && now < x.deadline && (l->lease_id != 0 || (c->failsafe_mode && !c->etcd_ok));
	x.holds = c->etcd_ok && c->has_leader && strcmp(c->leader, l->name) == 0;
	x.holds_on_our_lease = x.holds && c->leader_lease == l->lease_id;
	x.other_leads = c->etcd_ok && c->has_leader && !x.holds;
	x.may_write = l->pg_running && (l->pg_primary || l->pg_started_primary || l->promote_requested);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i](&x, &a)) {
			a.rule = (int)i + 1;
			return a;
		}
	/* Not reached: rule 12 always decides. */
	a = act(HA_WAIT, NULL, "no rule decided");
	a.rule = 0;
	return a;
}

