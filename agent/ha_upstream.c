/*
 * ha_upstream.c - which member a replica streams from (ha.h): the leader,
 * or another replica named by the tag replicatefrom (cascading
 * replication, Patroni's meaning), or nobody with the tag nostream.
 *
 * The choice is made afresh every loop from the views, so a cascade is
 * repaired without anyone's help: when the upstream replica dies (its
 * member key goes, or it publishes itself stopped), is promoted, or stops
 * replaying, the cascaded member follows the leader; when the upstream
 * runs again as a replica, the member goes back to it. Only a running
 * replica is an upstream: one that is starting, stuck or not streaming
 * itself would hand on nothing. Two members naming each other (or any
 * longer circle) would stream from nobody, so a chain that leads back to
 * the member is refused and both follow the leader.
 */
#include "agent/ha.h"

#include <stdio.h>
#include <string.h>

/* Does the replicatefrom chain starting at member `from` lead back to
 * `self`? Bounded by the number of members. */
static bool chain_reaches(const struct ha_cluster_view *c, const struct ha_member *from, const char *self)
{
	const struct ha_member *m = from;

	for (size_t steps = 0; m && m->replicatefrom[0] && steps <= c->n_members; steps++) {
		if (strcmp(m->replicatefrom, self) == 0)
			return true;
		m = ha_find_member(c, m->replicatefrom);
	}
	return false;
}

/* The shared rule: may `self` (tag replicatefrom = want) stream from want?
 * NULL when it may, else why not. */
static const char *refuse(const struct ha_cluster_view *c, const char *self, const char *want, bool confirmed,
                          char *buf, size_t len)
{
	const struct ha_member *up = ha_find_member(c, want);

	if (!up)
		snprintf(buf, len, "%s is gone (no member key)", want);
	else if (c->has_leader && strcmp(c->leader, want) == 0)
		snprintf(buf, len, "%s is the leader now", want);
	else if (strcmp(up->role, "replica") != 0 || strcmp(up->state, "running") != 0)
		snprintf(buf, len, "%s is not a running replica (%s, %s)", want, up->role[0] ? up->role : "no role",
		         up->state[0] ? up->state : "no state");
	else if (chain_reaches(c, up, self))
		snprintf(buf, len, "%s streams from us through its own replicatefrom (a circle)", want);
	else if (!confirmed)
		snprintf(buf, len, "%s has not confirmed its address through its REST API", want);
	else
		return NULL;
	return buf;
}

const char *ha_upstream(const struct ha_cluster_view *c, const struct ha_local_view *l, char *why, size_t len)
{
	const char *leader = c->has_leader ? c->leader : "";
	char buf[200];

	if (why && len)
		why[0] = '\0';
	if (l->nostream)
		return "";
	if (!l->replicatefrom[0] || strcmp(l->replicatefrom, l->name) == 0)
		return leader;
	if (!c->has_leader)
		return leader; /* nobody to cascade from: no leader, no WAL */
	if (refuse(c, l->name, l->replicatefrom, l->replicatefrom_confirmed, buf, sizeof(buf))) {
		if (why && len)
			snprintf(why, len, "%s", buf);
		return leader;
	}
	return ha_find_member(c, l->replicatefrom)->name;
}

const char *ha_member_upstream(const struct ha_cluster_view *c, const struct ha_member *m)
{
	const char *leader = c->has_leader ? c->leader : "";
	char buf[200];

	if (m->nostream)
		return "";
	if (!m->replicatefrom[0] || strcmp(m->replicatefrom, m->name) == 0 || !c->has_leader)
		return leader;
	if (refuse(c, m->name, m->replicatefrom, true, buf, sizeof(buf)))
		return leader;
	return ha_find_member(c, m->replicatefrom)->name;
}
