/*
 * ha_sync.c - the synchronous replication plan of the decision core
 * (ha_sync_plan, see ha.h): the next safe step from the sync key and
 * synchronous_standby_names in force towards the standbys the leader
 * wants, so that every member the key names always has every commit
 * acknowledged since it was recorded. Pure, like ha.c, of which it was
 * the second half (split off to keep each file to one concern).
 */
#include "agent/ha.h"

#include <stdio.h>
#include <string.h>

/* names: an array of HA_NAME_MAX-sized names (const or not). */
static bool name_in(const void *names, size_t n, const char *name)
{
	const char(*v)[HA_NAME_MAX] = names;

	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

static void copy_name(char *dst, const char *src)
{
	snprintf(dst, HA_NAME_MAX, "%.*s", HA_NAME_MAX - 1, src);
}

static void list_join(char names[][HA_NAME_MAX], size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int k = snprintf(buf + used, len - used, "%s%s", i ? "," : "", names[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
	if (n == 0)
		snprintf(buf, len, "nobody");
}

/*
 * Quorum commit: Postgres waits for ANY q of the set P; the key promises that
 * every acknowledged commit is on at least key_q members of the set K. That
 * holds while P is within K and q >= key_q. So a standby enters the key
 * before Postgres; the key's quorum drops before Postgres' does; and the key
 * drops a standby, or raises its quorum to q, only once q members of the
 * new set have flushed past the point where Postgres began to wait for it
 * (older commits may sit on a standby being dropped).
 */
static struct ha_sync_step plan_quorum(const struct ha_cluster_view *c, const struct ha_sync_input *in, bool key_ours,
                                       char key[][HA_NAME_MAX], size_t n_key, char want[][HA_NAME_MAX], size_t n_want,
                                       const bool *keep)
{
	struct ha_sync_step st;
	const int key_q = key_ours ? c->sync_quorum : 0;
	int q = c->synchronous_node_count < 1 ? 1 : c->synchronous_node_count;
	char a[120];

	memset(&st, 0, sizeof(st));
	if (q > (int)n_want)
		q = (int)n_want;

	if (!key_ours) {
		st.kind = HA_SYNC_SET_KEY;
		snprintf(st.reason, sizeof(st.reason), "taking over the sync key: nobody promised anything yet");
		return st;
	}
	/* 1. New standbys go into the key first (its quorum unchanged). */
	{
		size_t n = n_key;
		bool added = false;

		memcpy(st.names, key, n_key * HA_NAME_MAX);
		for (size_t i = 0; i < n_want && n < HA_SYNC_MAX; i++)
			if (!name_in(st.names, n, want[i])) {
				copy_name(st.names[n++], want[i]);
				added = true;
			}
		if (added) {
			st.kind = HA_SYNC_SET_KEY;
			st.n = n;
			st.quorum = key_q;
			list_join(st.names, n, a, sizeof(a));
			snprintf(st.reason, sizeof(st.reason), "quorum commit: sync key now names %s (quorum %d)", a,
			         key_q);
			return st;
		}
	}
	/* 2. A lower quorum: the key's first. */
	if (key_q > q) {
		st.kind = HA_SYNC_SET_KEY;
		st.n = n_key;
		memcpy(st.names, key, n_key * HA_NAME_MAX);
		st.quorum = q;
		snprintf(st.reason, sizeof(st.reason), "quorum commit: the sync key's quorum drops to %d", q);
		return st;
	}
	/* 3. Postgres waits for ANY q of exactly the standbys we want (all in
	 * the key by now); '*' in strict mode when there are none. */
	{
		bool same = in->n_pg == n_want && in->pg_quorum == q &&
		            in->pg_star == (n_want == 0 && c->synchronous_mode_strict);

		for (size_t i = 0; same && i < n_want; i++)
			same = name_in(in->pg, in->n_pg, want[i]);
		if (!same) {
			st.kind = HA_SYNC_SET_PG;
			st.n = n_want;
			memcpy(st.names, want, n_want * HA_NAME_MAX);
			st.quorum = q;
			st.star = n_want == 0 && c->synchronous_mode_strict;
			list_join(want, n_want, a, sizeof(a));
			snprintf(st.reason, sizeof(st.reason), "commits now wait for any %d of %s", q, a);
			return st;
		}
	}
	/* 4. The key becomes exactly (want, q) once q of them have caught up;
	 * until then it keeps more names or a lower quorum, which is safe. */
	{
		int caught_up = 0;
		bool same = n_key == n_want && key_q == q;

		for (size_t i = 0; same && i < n_want; i++)
			same = name_in(key, n_key, want[i]);
		if (same)
			return st;
		for (size_t i = 0; i < in->n && i < HA_MAX_MEMBERS; i++)
			if (keep[i] && name_in(want, n_want, in->standbys[i].name) &&
			    in->standbys[i].flush_lsn >= in->pg_since_lsn)
				caught_up++;
		if (caught_up < q)
			return st;
		st.kind = HA_SYNC_SET_KEY;
		st.n = n_want;
		memcpy(st.names, want, n_want * HA_NAME_MAX);
		st.quorum = q;
		list_join(want, n_want, a, sizeof(a));
		snprintf(st.reason, sizeof(st.reason), "quorum commit: every commit is on %d of %s", q, a);
		return st;
	}
}

struct ha_sync_step ha_sync_plan(const struct ha_cluster_view *c, const char *self, const struct ha_sync_input *in)
{
	struct ha_sync_step st;
	char key[HA_SYNC_MAX][HA_NAME_MAX], want[HA_SYNC_MAX][HA_NAME_MAX], a[120], b[120];
	size_t n_key = 0, n_want = 0, n_count;
	const bool key_ours = c->has_sync && strcmp(c->sync_leader, self) == 0;
	bool keep[HA_MAX_MEMBERS];

	memset(&st, 0, sizeof(st));
	st.kind = HA_SYNC_NONE;
	if (key_ours)
		for (size_t i = 0; i < c->n_sync && i < HA_SYNC_MAX; i++)
			copy_name(key[n_key++], c->sync_standbys[i]);

	if (!c->synchronous_mode) {
		/* Leaving synchronous mode: empty the key first (nobody is then
		 * promised anything), then stop waiting in Postgres. */
		if (key_ours && n_key > 0) {
			st.kind = HA_SYNC_SET_KEY;
			snprintf(st.reason, sizeof(st.reason), "synchronous mode is off: clearing the sync key");
			return st;
		}
		if (in->n_pg > 0 || in->pg_star) {
			st.kind = HA_SYNC_SET_PG;
			snprintf(st.reason, sizeof(st.reason),
			         "synchronous mode is off: commits no longer wait for standbys");
		}
		return st;
	}

	/* The standbys we want: streaming members not tagged nosync, those
	 * already recorded first (no needless moves), then those Postgres
	 * already waits for, then by name; at most synchronous_node_count
	 * (quorum commit: all of them, at most HA_SYNC_MAX). */
	n_count = c->synchronous_node_count < 1 ? 1 : (size_t)c->synchronous_node_count;
	if (c->synchronous_quorum)
		n_count = HA_SYNC_MAX;
	if (n_count > HA_SYNC_MAX)
		n_count = HA_SYNC_MAX;
	/* maximum_lag_on_syncnode: lag from the most advanced standby, or with
	 * one standby from the primary's LSN (as Patroni). */
	uint64_t ref = 0;
	size_t n_streaming = 0;

	for (size_t i = 0; i < in->n && i < HA_MAX_MEMBERS; i++)
		if (in->standbys[i].streaming) {
			n_streaming++;
			if (in->standbys[i].flush_lsn > ref)
				ref = in->standbys[i].flush_lsn;
		}
	if (n_streaming <= 1)
		ref = in->primary_lsn;
	for (size_t i = 0; i < in->n && i < HA_MAX_MEMBERS; i++) {
		const struct ha_sync_standby *s = &in->standbys[i];
		const struct ha_member *m = ha_find_member(c, s->name);

		/* A member still cloning also streams (pg_basebackup -X stream,
		 * under its name): only a running replica counts. A cascaded one
		 * (tag replicatefrom) is never chosen, even while it still shows
		 * here on its way to its upstream replica. */
		keep[i] = s->streaming && m && !m->nosync && strcmp(s->name, self) != 0 &&
		          ha_role_from_name(m->role) == HA_ROLE_REPLICA &&
		          ha_state_from_name(m->state) == HA_STATE_RUNNING &&
		          !(m->replicatefrom[0] && ha_member_upstream(c, m)[0] &&
		            strcmp(ha_member_upstream(c, m), self) != 0);
		for (size_t j = 0; j < i && keep[i]; j++)
			if (keep[j] && strcmp(in->standbys[j].name, s->name) == 0)
				keep[i] = false; /* one row per name */
		if (keep[i] && c->maximum_lag_on_syncnode > 0 && ref > s->flush_lsn &&
		    ref - s->flush_lsn > (uint64_t)c->maximum_lag_on_syncnode)
			keep[i] = false; /* too far behind: another takes its place */
	}
	for (int pass = 0; pass < 3 && n_want < n_count; pass++) {
		for (;;) {
			const char *best = NULL;

			for (size_t i = 0; i < in->n && i < HA_MAX_MEMBERS; i++) {
				const char *nm = in->standbys[i].name;

				if (!keep[i] || name_in(want, n_want, nm))
					continue;
				if (pass == 0 && !name_in(key, n_key, nm))
					continue;
				if (pass == 1 && !name_in(in->pg, in->n_pg, nm))
					continue;
				if (!best || strcmp(nm, best) < 0)
					best = nm;
			}
			if (!best || n_want >= n_count)
				break;
			copy_name(want[n_want++], best);
		}
	}

	if (c->synchronous_quorum)
		return plan_quorum(c, in, key_ours, key, n_key, want, n_want, keep);
	/* Coming from quorum commit, the names in the key do not each have
	 * every commit: start the list again. */
	if (key_ours && c->sync_quorum > 0) {
		st.kind = HA_SYNC_SET_KEY;
		snprintf(st.reason, sizeof(st.reason), "leaving quorum commit: sync key now names nobody");
		return st;
	}

	/* 1. The key is someone else's (we were just promoted) or names a
	 * standby we no longer want: shrink it before anything else. */
	if (!key_ours || n_key > 0) {
		size_t n = 0;

		for (size_t i = 0; i < n_key; i++)
			if (name_in(want, n_want, key[i]))
				copy_name(st.names[n++], key[i]);
		if (!key_ours || n != n_key) {
			st.kind = HA_SYNC_SET_KEY;
			st.n = n;
			list_join(st.names, st.n, a, sizeof(a));
			snprintf(st.reason, sizeof(st.reason), "%s: sync key now names %s",
			         key_ours ? "a synchronous standby is gone or not wanted" : "taking over the sync key",
			         a);
			return st;
		}
	}

	/* 2. Postgres waits for exactly the standbys we want ('*' in strict
	 * mode when there are none, so that commits block). */
	{
		bool same = in->n_pg == n_want && in->pg_quorum == 0 &&
		            in->pg_star == (n_want == 0 && c->synchronous_mode_strict);

		for (size_t i = 0; same && i < n_want; i++)
			same = name_in(in->pg, in->n_pg, want[i]);
		if (!same) {
			st.kind = HA_SYNC_SET_PG;
			st.n = n_want;
			memcpy(st.names, want, sizeof(want));
			st.star = n_want == 0 && c->synchronous_mode_strict;
			list_join(want, n_want, a, sizeof(a));
			snprintf(st.reason, sizeof(st.reason), "commits now wait for %s%s",
			         st.star ? "any standby (strict mode): " : "", a);
			return st;
		}
	}

	/* 3. Record the wanted standbys that are synchronous and have flushed
	 * everything written before Postgres began to wait for them. */
	{
		size_t n = n_key;
		bool added = false;

		memcpy(st.names, key, sizeof(key));
		for (size_t i = 0; i < in->n && i < HA_MAX_MEMBERS && n < HA_SYNC_MAX; i++) {
			const struct ha_sync_standby *s = &in->standbys[i];

			if (!keep[i] || !name_in(want, n_want, s->name) || name_in(st.names, n, s->name))
				continue;
			if (!s->sync || s->flush_lsn < in->pg_since_lsn)
				continue;
			copy_name(st.names[n++], s->name);
			added = true;
		}
		if (added) {
			st.kind = HA_SYNC_SET_KEY;
			st.n = n;
			list_join(st.names, n, b, sizeof(b));
			snprintf(st.reason, sizeof(st.reason), "synchronous standby caught up: sync key now names %s",
			         b);
			return st;
		}
	}
	memset(&st, 0, sizeof(st));
	st.kind = HA_SYNC_NONE;
	return st;
}
