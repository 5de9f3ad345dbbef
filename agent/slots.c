/*
 * slots.c - replication slots: the members', permanent and logical ones (see slots.h).
 */
#include "agent/slots.h"

#include <stdio.h>
#include <string.h>

#include "agent/log.h"

bool slots_member_slot(const char *member, char *buf, size_t len)
{
	size_t n = strlen(member);

	if (n == 0 || n >= len || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = member[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			ch = '_';
		buf[i] = ch;
	}
	buf[n] = '\0';
	return true;
}

bool slots_member_has_slot(const char *member, const struct pg_slot *existing, size_t n)
{
	char slot[64];

	if (!slots_member_slot(member, slot, sizeof(slot)))
		return false;
	for (size_t j = 0; j < n; j++)
		if (strcmp(existing[j].name, slot) == 0)
			return true;
	return false;
}

bool slots_ignored(const struct dcs_slot_matcher *ignore, size_t n, const char *name, const char *type,
                   const char *database, const char *plugin)
{
	for (size_t i = 0; i < n; i++) {
		const struct dcs_slot_matcher *m = &ignore[i];

		if ((m->name && strcmp(m->name, name) != 0) || (m->type && strcmp(m->type, type) != 0) ||
		    (m->database && (!database || strcmp(m->database, database) != 0)) ||
		    (m->plugin && (!plugin || strcmp(m->plugin, plugin) != 0)))
			continue;
		return true;
	}
	return false;
}

/* Is name the slot of a member in the view (use_slots = false drops those at once)? */
static bool member_slot_name(const struct ha_cluster_view *v, const char *name)
{
	char slot[64];

	for (size_t i = 0; i < v->n_members && i < HA_MAX_MEMBERS; i++)
		if (slots_member_slot(v->members[i].name, slot, sizeof(slot)) && strcmp(slot, name) == 0)
			return true;
	return false;
}

static bool in_list(const char (*names)[64], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Does member m stream from another member than us, or not at all? */
static bool streams_elsewhere(const struct slots_input *in, const struct ha_member *m)
{
	const char *up;

	if (m->nostream)
		return true;
	if (!m->replicatefrom[0])
		return false;
	up = ha_member_upstream(in->view, m);
	return up[0] && strcmp(up, in->self) != 0;
}

void slots_plan(const struct slots_input *in, struct slots_memory *mem, struct slots_plan *out)
{
	char want[SLOTS_MAX][64];
	uint64_t want_lsn[SLOTS_MAX];  /* replica: how far a member's slot may move (0 = leave it) */
	char elsewhere[SLOTS_MAX][64]; /* primary: slots of members that stream from elsewhere */
	size_t n_want = 0, n_elsewhere = 0;
	struct slots_memory kept;

	memset(out, 0, sizeof(*out));
	/* Wanted: a slot per other member; on the primary the permanent ones
	 * too; nothing with use_slots = false. */
	for (size_t i = 0; !in->no_slots && i < in->view->n_members && i < HA_MAX_MEMBERS && n_want < SLOTS_MAX; i++) {
		const struct ha_member *m = &in->view->members[i];
		char slot[64];

		if (strcmp(m->name, in->self) == 0 || !slots_member_slot(m->name, slot, sizeof(slot)) ||
		    in_list((const char(*)[64])want, n_want, slot))
			continue;
		/* An unconfirmed member gets no slot; one it has is unwanted,
		 * so dropped once inactive and unconfirmed for SLOTS_GRACE. */
		if (in->member_ok && !in->member_ok[i])
			continue;
		/* Patroni's rule: the primary keeps no slot for a member that
		 * streams from another replica (tag replicatefrom: that replica
		 * keeps it) or not at all (tag nostream); it would only hold
		 * WAL back. Dropped as soon as inactive; a member that falls
		 * back to the leader gets it again the next loop. */
		if (in->primary && streams_elsewhere(in, m)) {
			if (n_elsewhere < SLOTS_MAX)
				snprintf(elsewhere[n_elsewhere++], 64, "%.63s", slot);
			continue;
		}
		snprintf(want[n_want], 64, "%.63s", slot);
		/* As far as the member has got, never past our own replay. */
		want_lsn[n_want++] = m->lsn < in->replay_lsn ? m->lsn : in->replay_lsn;
	}
	/* A standby leader keeps them too: while nothing streams through one
	 * it follows our replay (what the other site's primary has is at
	 * least that), so it holds no WAL the other site does not need. */
	for (size_t i = 0;
	     !in->no_slots && (in->primary || in->standby_leader) && i < in->n_permanent && n_want < SLOTS_MAX; i++) {
		if (in_list((const char(*)[64])want, n_want, in->permanent[i]))
			continue;
		snprintf(want[n_want], 64, "%.63s", in->permanent[i]);
		want_lsn[n_want++] = in->primary ? 0 : in->replay_lsn;
	}

	for (size_t i = 0; i < n_want; i++) {
		const struct pg_slot *have = NULL;

		for (size_t j = 0; j < in->n_existing; j++)
			if (strcmp(in->existing[j].name, want[i]) == 0)
				have = &in->existing[j];
		if (!have) {
			if (!slots_ignored(in->ignore, in->n_ignore, want[i], "physical", NULL, NULL))
				snprintf(out->create[out->n_create++], 64, "%.63s", want[i]);
			continue;
		}
		if (!in->primary && !have->active && want_lsn[i] > have->restart_lsn && have->restart_lsn != 0) {
			snprintf(out->advance[out->n_advance].name, 64, "%.63s", want[i]);
			out->advance[out->n_advance++].lsn = want_lsn[i];
		}
	}

	/* Unwanted slots: dropped once unwanted for SLOTS_GRACE, and inactive;
	 * a permanent slot removed from the config, or any slot on a replica
	 * that no member needs (e.g. a permanent one left from when it was the
	 * primary), the same way. */
	memset(&kept, 0, sizeof(kept));
	for (size_t j = 0; j < in->n_existing; j++) {
		const struct pg_slot *s = &in->existing[j];
		double since = in->now;

		if (in_list((const char(*)[64])want, n_want, s->name) ||
		    slots_ignored(in->ignore, in->n_ignore, s->name, "physical", NULL, NULL))
			continue;
		for (size_t k = 0; k < mem->n; k++)
			if (strcmp(mem->unwanted[k].name, s->name) == 0)
				since = mem->unwanted[k].since;
		/* use_slots = false: a member's slot goes once inactive, no grace
		 * (its replica streams without it after its next reload). */
		if (in->no_slots && member_slot_name(in->view, s->name))
			since = in->now - SLOTS_GRACE;
		if (!s->active && in_list((const char(*)[64])elsewhere, n_elsewhere, s->name)) {
			snprintf(out->drop_elsewhere[out->n_drop_elsewhere++], 64, "%.63s", s->name);
			continue;
		}
		if (!s->active && in->now - since >= SLOTS_GRACE) {
			snprintf(out->drop[out->n_drop++], 64, "%.63s", s->name);
			continue;
		}
		if (kept.n < SLOTS_MAX) {
			snprintf(kept.unwanted[kept.n].name, 64, "%.63s", s->name);
			kept.unwanted[kept.n++].since = since;
		}
	}
	*mem = kept;

	/* Permanent logical slots: created on the primary; never dropped here. */
	for (size_t i = 0; !in->no_slots && in->primary && i < in->n_logical && out->n_create_logical < SLOTS_MAX;
	     i++) {
		const struct dcs_logical_slot *l = &in->logical[i];
		bool have = false;

		for (size_t j = 0; j < in->n_existing_logical; j++)
			if (strcmp(in->existing_logical[j].name, l->name) == 0)
				have = true;
		if (have || slots_ignored(in->ignore, in->n_ignore, l->name, "logical", l->database, l->plugin))
			continue;
		snprintf(out->create_logical[out->n_create_logical].name, 64, "%.63s", l->name);
		snprintf(out->create_logical[out->n_create_logical].database, 64, "%.63s", l->database);
		snprintf(out->create_logical[out->n_create_logical++].plugin, 64, "%.63s", l->plugin);
	}
}

void slots_apply(struct pg_conn *pg, const struct slots_plan *p)
{
	struct pg_err err;

	for (size_t i = 0; i < p->n_create; i++) {
		if (pg_query_slot_create(pg, p->create[i], &err))
			log_info("created replication slot %s", p->create[i]);
		else
			log_warn("cannot create replication slot %s: %s", p->create[i], err.msg);
	}
	for (size_t i = 0; i < p->n_drop; i++) {
		if (pg_query_slot_drop(pg, p->drop[i], &err))
			log_info("dropped replication slot %s: no member has needed it for %.0f minutes", p->drop[i],
			         SLOTS_GRACE / 60);
		else
			log_warn("cannot drop replication slot %s: %s", p->drop[i], err.msg);
	}
	for (size_t i = 0; i < p->n_drop_elsewhere; i++) {
		if (pg_query_slot_drop(pg, p->drop_elsewhere[i], &err))
			log_info("dropped replication slot %s: its member streams from another replica (tag "
			         "replicatefrom) or not at all (tag nostream); that replica keeps its slot",
			         p->drop_elsewhere[i]);
		else
			log_warn("cannot drop replication slot %s: %s", p->drop_elsewhere[i], err.msg);
	}
	for (size_t i = 0; i < p->n_advance; i++)
		if (!pg_query_slot_advance(pg, p->advance[i].name, p->advance[i].lsn, &err))
			log_warn("cannot advance replication slot %s: %s", p->advance[i].name, err.msg);
}

void slots_apply_logical(const char *conninfo, double timeout, const struct slots_plan *p)
{
	for (size_t i = 0; conninfo && i < p->n_create_logical; i++) {
		char ci[2048];
		struct pg_conn *c;
		struct pg_err err;
		int w;

		/* database names are [A-Za-z0-9_-] (dcs_settings.c): no quoting needed */
		w = snprintf(ci, sizeof(ci), "%s dbname=%s", conninfo, p->create_logical[i].database);
		if (w < 0 || (size_t)w >= sizeof(ci))
			continue;
		c = pg_conn_new(ci, timeout);
		if (c == NULL) {
			log_warn("cannot create logical replication slot %s: out of memory", p->create_logical[i].name);
			continue;
		}
		if (pg_query_slot_create_logical(c, p->create_logical[i].name, p->create_logical[i].plugin, &err))
			log_info("created logical replication slot %s (database %s, plugin %s)",
			         p->create_logical[i].name, p->create_logical[i].database, p->create_logical[i].plugin);
		else
			log_warn("cannot create logical replication slot %s in database %s with plugin %s (wal_level "
			         "must be logical): %s",
			         p->create_logical[i].name, p->create_logical[i].database, p->create_logical[i].plugin,
			         err.msg);
		pg_conn_free(c);
	}
}
