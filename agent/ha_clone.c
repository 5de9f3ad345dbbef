/*
 * ha_clone.c - the order of the replica creation methods (see ha_clone.h).
 * Rule 8 of ha_decide asks it which method runs next; the executor runs
 * exactly that method and records its failure in the plan, so the order is
 * one table-tested function and not a branch in the loop.
 */
#include "agent/ha_clone.h"

#include <string.h>

#include "agent/ha.h"

static const struct ha_clone_method basebackup_only = { .kind = HA_CLONE_BASEBACKUP };

const char *ha_clone_kind_name(enum ha_clone_kind k)
{
	switch (k) {
	case HA_CLONE_BASEBACKUP:
		return "basebackup";
	case HA_CLONE_PGBACKREST:
		return "pgbackrest";
	}
	return "basebackup";
}

size_t ha_clone_count(const struct ha_clone_plan *p)
{
	return p->n == 0 ? 1 : p->n;
}

struct ha_clone_method ha_clone_method_at(const struct ha_clone_plan *p, int i)
{
	if (p->n == 0 || i < 0 || (size_t)i >= p->n)
		return basebackup_only;
	return p->m[i];
}

int ha_clone_next(const struct ha_clone_plan *p, int after, bool have_leader)
{
	size_t n = ha_clone_count(p);

	for (size_t i = after < 0 ? 0 : (size_t)after + 1; i < n; i++) {
		struct ha_clone_method m = ha_clone_method_at(p, (int)i);

		/* pg_basebackup needs a server to copy from, whatever its flag says. */
		if (have_leader || (m.no_leader && m.kind != HA_CLONE_BASEBACKUP))
			return (int)i;
	}
	return -1;
}

const char *ha_clone_source(const struct ha_cluster_view *c, const char *self)
{
	const struct ha_member *best = NULL;

	for (size_t i = 0; i < c->n_members; i++) {
		const struct ha_member *m = &c->members[i];

		if (!m->clonefrom || strcmp(m->name, self) == 0 || (c->has_leader && strcmp(m->name, c->leader) == 0) ||
		    strcmp(m->role, "replica") != 0 || strcmp(m->state, "running") != 0 || !m->host[0] || m->port <= 0)
			continue;
		if (!best || m->lsn > best->lsn || (m->lsn == best->lsn && strcmp(m->name, best->name) < 0))
			best = m;
	}
	if (best)
		return best->name;
	return c->has_leader ? c->leader : NULL;
}
