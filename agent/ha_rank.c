/*
 * ha_rank.c - who may lead (see ha.h): the member lookup, what synchronous
 * mode allows, the candidate order (failover_priority, then name), whether
 * this node may take a free leader key (ha_eligible, asked by rule 11), and
 * the leader's choice of a switchover candidate, ranked the same way. Pure
 * like ha.c; apart so that ranking is read and tested in one place.
 */
#include "agent/ha.h"
#include "agent/ha_internal.h"

#include <stdio.h>
#include <string.h>

const struct ha_member *ha_find_member(const struct ha_cluster_view *c, const char *name)
{
	for (size_t i = 0; i < c->n_members && i < HA_MAX_MEMBERS; i++)
		if (strcmp(c->members[i].name, name) == 0)
			return &c->members[i];
	return NULL;
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
bool ha_eligible(const struct ha_cluster_view *c, const struct ha_local_view *l, bool named_candidate, double now,
                 struct ha_action *why)
{
	/* The member a switchover or a manual failover names is the operator's
	 * choice: peers ahead of it do not block it, and a manual failover may
	 * also take a lagging one. The timeline rule always holds. */
	const bool skip_peers = named_candidate;
	const bool skip_lag = named_candidate && c->sw_failover;

	if (c->config_unknown) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader; not a candidate: the config key is %s and this member never read a valid "
		              "one, so whether this is a standby cluster (or paused, or in synchronous mode) is "
		              "unknown: fix the config key",
		              c->config_key == HA_CONFIG_MISSING ? "missing" : "invalid");
		return false;
	}
	if (l->nofailover) {
		*why = ha_act(HA_WAIT, NULL, "no leader; not a candidate (tag nofailover or failover_priority 0)");
		return false;
	}
	if (l->watchdog_required && !l->watchdog_ok) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader; not a candidate: watchdog.mode is required and the watchdog "
		              "cannot be armed");
		return false;
	}
	/* Synchronous mode: only a member that has every acknowledged commit
	 * may lead; an operator's manual failover overrides it. */
	if (!(named_candidate && c->sw_failover) && !sync_candidate(c, l->name)) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader; not a candidate: synchronous mode and the sync key (leader %s) "
		              "does not name us",
		              c->sync_leader);
		return false;
	}
	if (l->lease_id == 0) {
		*why = ha_act(HA_WAIT, NULL, "no leader; waiting for our own lease before competing");
		return false;
	}
	/* We confirmed the old leader's failsafe heartbeat: it may still be
	 * writing until a ttl after that. */
	if (l->failsafe_leader_seen_at > 0 && now - l->failsafe_leader_seen_at < c->ttl) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader, but we confirmed the leader's failsafe heartbeat %.1fs ago; waiting",
		              now - l->failsafe_leader_seen_at);
		return false;
	}
	/* A replica still on an older timeline than the last leader's has not
	 * followed the last promotion (it may even hold WAL that timeline never
	 * had): promoting it would fork a second history with the same timeline
	 * ID and throw away what the last leader wrote. */
	if (c->leader_timeline != 0 && l->pg_timeline < c->leader_timeline) {
		*why = ha_act(HA_WAIT, NULL, "no leader; not a candidate: on timeline %u, the last leader was on %u",
		              l->pg_timeline, c->leader_timeline);
		return false;
	}
	/* check_timeline (Patroni's): ahead of it is refused too, a history
	 * the last leader never had. */
	if (c->check_timeline && c->leader_timeline != 0 && l->pg_timeline != c->leader_timeline) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader; not a candidate: on timeline %u, the last leader was on %u (check_timeline)",
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
			*why = ha_act(HA_WAIT, NULL, "no leader; not a candidate: %s", rwhy);
			return false;
		}
	}
	/* The lag counts from what we replayed, not what we received. */
	if (!skip_lag && c->leader_lsn > ha_replayed(l) &&
	    c->leader_lsn - ha_replayed(l) > (uint64_t)c->maximum_lag_on_failover) {
		*why = ha_act(HA_WAIT, NULL,
		              "no leader; not a candidate: %llu bytes behind the last leader position "
		              "(maximum_lag_on_failover %lld)",
		              (unsigned long long)(c->leader_lsn - ha_replayed(l)),
		              (long long)c->maximum_lag_on_failover);
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
		need = c->sync_quorum > 0 && (size_t)c->sync_quorum <= c->n_sync
		               ? c->n_sync - (size_t)c->sync_quorum + 1
		               : c->n_sync + 1;
		if (seen < need) {
			*why = ha_act(
			        HA_WAIT, NULL,
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
			*why = ha_act(HA_WAIT, NULL, "no leader; %s is still starting and may be ahead of us, waiting",
			              m->name);
			return false;
		}
		if (!m->healthy)
			continue;
		if (m->polled_primary) {
			*why = ha_act(HA_WAIT, NULL, "no leader, but %s still runs as a primary; waiting", m->name);
			return false;
		}
		/* Only a peer that could take the key itself may hold us back: not
		 * nofailover, not behind the last leader's timeline, and in
		 * synchronous mode one the sync key names. */
		if (m->nofailover || (c->leader_timeline != 0 && m->polled_timeline < c->leader_timeline) ||
		    (c->check_timeline && c->leader_timeline != 0 && m->polled_timeline != c->leader_timeline) ||
		    !sync_candidate(c, m->name))
			continue;
		if (m->polled_lsn > l->pg_lsn) {
			*why = ha_act(HA_WAIT, NULL, "no leader; %s is ahead of us (%llu > %llu), leaving it the key",
			              m->name, (unsigned long long)m->polled_lsn, (unsigned long long)l->pg_lsn);
			return false;
		}
		/* Equally advanced: failover_priority, then the name, decide, so
		 * that exactly one of them tries. */
		/* (For two ttls only: a peer that never takes it must not stall
		 * the failover for good.) */
		if (m->polled_lsn == l->pg_lsn &&
		    ranks_before(m->failover_priority, m->name, l->failover_priority, l->name) &&
		    (l->leader_absent_since <= 0 || now - l->leader_absent_since < 2 * c->ttl)) {
			*why = ha_act(
			        HA_WAIT, NULL,
			        "no leader; %s is as far as we are (lsn %llu) and ranks first (failover_priority %d vs "
			        "%d), leaving it the key",
			        m->name, (unsigned long long)l->pg_lsn, m->failover_priority, l->failover_priority);
			return false;
		}
	}
	return true;
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
