/*
 * loop_sync.c - synchronous replication on the leader: the sync key in
 * etcd and synchronous_standby_names in Postgres, changed in the safe
 * order ha_sync_plan gives; and the replication slots (slots.h) every
 * member keeps for the others. Split from loop.c: what the leader owes
 * its replicas, apart from the election.
 */
#include "agent/loop_internal.h"

/* synchronous_standby_names for the standbys in L->sync_pg:
 * FIRST n ("a", "b") waits for every one of them, ANY q ("a", "b") for q. */
void sync_pg_render(const struct loop *L, char *buf, size_t len)
{
	size_t used;
	int k;

	if (L->sync_pg.n == 0) {
		snprintf(buf, len, "%s", L->sync_pg.star ? "*" : "");
		return;
	}
	if (L->sync_pg.quorum > 0)
		k = snprintf(buf, len, "ANY %d (", L->sync_pg.quorum);
	else
		k = snprintf(buf, len, "FIRST %zu (", L->sync_pg.n);
	used = k > 0 ? (size_t)k : 0;
	for (size_t i = 0; i < L->sync_pg.n && used < len; i++) {
		k = snprintf(buf + used, len - used, "%s\"%s\"", i ? ", " : "", L->sync_pg.names[i]);
		used += k > 0 ? (size_t)k : 0;
	}
	if (used < len)
		snprintf(buf + used, len - used, ")");
}

/* What Postgres should wait for when it (re)starts or is promoted: the
 * standbys our own sync key names, or nobody ('*' in strict mode). */
void sync_pg_reset(struct loop *L)
{
	memset(&L->sync_pg, 0, sizeof(L->sync_pg));
	if (!L->settings.synchronous_mode)
		return;
	if (L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0 &&
	    !(ha_sync_quorum_mode(&L->view) && L->view.sync_quorum <= 0)) {
		for (size_t i = 0; i < L->view.n_sync && i < HA_SYNC_MAX; i++)
			snprintf(L->sync_pg.names[L->sync_pg.n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
		L->sync_pg.quorum = ha_sync_quorum_mode(&L->view) ? L->view.sync_quorum : 0;
	}
	L->sync_pg.star = L->sync_pg.n == 0 && L->settings.synchronous_mode_strict;
}

/* One slot per other member on every node, permanent ones on the primary
 * (slots.h). Runs while Postgres is up and nothing else is going on. */
void manage_slots(struct loop *L, double now)
{
	struct pg_slot existing[SLOTS_MAX];
	struct pg_logical_slot existing_logical[SLOTS_MAX];
	size_t n_logical = 0;
	struct slots_input in;
	struct slots_plan plan;
	struct pg_err err;
	size_t n = 0;

	if (!L->view.etcd_ok || L->view.paused || !L->local.pg_ready || L->postmaster.pid == 0 ||
	    L->lm.promote_requested || L->job.pid != 0)
		return;
	if (!pg_query_slots(L->pg, existing, SLOTS_MAX, &n, &err)) {
		log_warn("cannot list replication slots: %s", err.msg);
		return;
	}
	if (L->settings.n_logical_slots > 0 &&
	    !pg_query_logical_slots(L->pg, existing_logical, SLOTS_MAX, &n_logical, &err)) {
		log_warn("cannot list logical replication slots: %s", err.msg);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.self = L->cfg->name;
	in.primary = L->local.pg_primary;
	in.standby_leader = !L->local.pg_primary && L->view.standby_cluster && L->view.has_leader &&
	                    strcmp(L->view.leader, L->cfg->name) == 0;
	if (in.standby_leader && L->settings.n_logical_slots > 0 && !L->standby_logical_noted) {
		log_info("standby leader: keeping the permanent physical slots; the %zu permanent logical slot(s) "
		         "are created once this cluster is promoted (a standby cannot hold them)",
		         L->settings.n_logical_slots);
		L->standby_logical_noted = true;
	} else if (!in.standby_leader) {
		L->standby_logical_noted = false;
	}
	in.replay_lsn = L->pgst.replay_lsn;
	in.view = &L->view;
	in.permanent = L->settings.slots;
	in.n_permanent = L->settings.n_slots;
	in.existing = existing;
	in.n_existing = n;
	in.now = now;
	in.no_slots = !L->settings.use_slots;
	in.logical = L->settings.logical_slots;
	in.n_logical = L->settings.n_logical_slots;
	in.ignore = L->settings.ignore_slots;
	in.n_ignore = L->settings.n_ignore_slots;
	in.existing_logical = existing_logical;
	in.n_existing_logical = n_logical;
	/* Slots only for members whose REST API confirmed their key (a forged
	 * member key must not hold WAL), asking at most one member not yet
	 * confirmed per loop. */
	{
		bool ok[HA_MAX_MEMBERS];
		int asks = 1;

		for (size_t i = 0; i < L->view.n_members && i < HA_MAX_MEMBERS; i++) {
			const struct ha_member *m = &L->view.members[i];

			ok[i] = mv_confirmed(&L->mv, m, now);
			if (!ok[i] && strcmp(m->name, L->cfg->name) != 0 && !mv_cache_find(&L->mv, m, now) &&
			    asks-- > 0)
				ok[i] = mv_confirm(
				        &L->mv, L->cfg, m, now, false,
				        slots_member_has_slot(m->name, existing, n)
				                ? "its replication slot here is dropped if it stays so for 30 minutes"
				                : "creates no replication slot for it");
		}
		in.member_ok = ok;
		slots_plan(&in, &L->slots_mem, &plan);
	}
	slots_apply(L->pg, &plan);
	slots_apply_logical(L->local_conninfo, fmin(1.0, fmax(0.5, L->settings.loop_wait)), &plan);
}

/* Writes the sync key {us, names}, only while the leader key is ours on our
 * lease: a deposed leader waking up late must not overwrite its
 * successor's record. */
bool sync_key_write(struct loop *L, char names[][HA_NAME_MAX], size_t n, int quorum, const char *why)
{
	struct etcd_compare cmp[2] = {
		{ .key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name },
		{ .key = L->keys.leader,
		  .target = ETCD_CMP_LEASE,
		  .result = ETCD_CMP_EQUAL,
		  .number = L->local.lease_id },
	};
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = L->keys.sync };
	char *json = dcs_sync_json(L->cfg->name, names, n, quorum);
	bool won = false;

	if (!json || L->local.lease_id == 0) {
		free(json);
		return false;
	}
	put.value = json;
	if (!txn_simple(L, cmp, 2, &put, 1, &won, "write sync key") || !won) {
		if (!won)
			log_warn("not writing the sync key: the leader key is not ours on our lease");
		free(json);
		return false;
	}
	free(json);
	L->view.has_sync = true;
	snprintf(L->view.sync_leader, sizeof(L->view.sync_leader), "%s", L->cfg->name);
	L->view.n_sync = 0;
	L->view.sync_quorum = quorum;
	for (size_t i = 0; i < n && i < HA_SYNC_MAX; i++)
		snprintf(L->view.sync_standbys[L->view.n_sync++], HA_NAME_MAX, "%s", names[i]);
	log_info("sync key: %s", why);
	return true;
}

/* Before Postgres may accept writes as primary: the sync key must be ours
 * and name only standbys Postgres will wait for. */
bool sync_key_claim(struct loop *L)
{
	char keep[HA_SYNC_MAX][HA_NAME_MAX];
	size_t n = 0;
	bool ours;

	if (!L->settings.synchronous_mode)
		return true;
	ours = L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0;
	if (ha_sync_quorum_mode(&L->view)) {
		/* Quorum commit: the key's promise must not exceed what Postgres
		 * will wait for; else promise nothing until the plan rebuilds it. */
		bool within = ours && L->view.sync_quorum <= L->sync_pg.quorum;

		for (size_t i = 0; within && i < L->sync_pg.n; i++) {
			bool in_key = false;

			for (size_t j = 0; j < L->view.n_sync; j++)
				in_key |= strcmp(L->view.sync_standbys[j], L->sync_pg.names[i]) == 0;
			within = in_key;
		}
		if (within || (ours && L->view.sync_quorum == 0))
			return true;
		if (!sync_key_write(L, keep, 0, 0, "taking it over before accepting writes")) {
			log_warn("synchronous mode: cannot claim the sync key; not accepting writes yet");
			return false;
		}
		return true;
	}
	for (size_t i = 0; ours && i < L->view.n_sync && i < HA_SYNC_MAX; i++)
		for (size_t j = 0; j < L->sync_pg.n; j++)
			if (strcmp(L->view.sync_standbys[i], L->sync_pg.names[j]) == 0)
				snprintf(keep[n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
	if (ours && n == L->view.n_sync)
		return true;
	if (!sync_key_write(L, keep, n, 0, "taking it over before accepting writes")) {
		log_warn("synchronous mode: cannot claim the sync key; not accepting writes yet");
		return false;
	}
	return true;
}

/* Applies synchronous_standby_names from L->sync_pg and waits (briefly) until
 * our session sees it; then records the LSN from which Postgres waits. */
static bool sync_pg_apply(struct loop *L)
{
	char want[HA_SYNC_MAX * (HA_NAME_MAX + 4) + 32], have[sizeof(want)];
	struct pg_err err;

	L->sync_pg.since_known = false;
	if (!write_pg_files(L, false, NULL))
		return false;
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		log_error("reload for synchronous_standby_names failed: %s", err.msg);
		return false;
	}
	sync_pg_render(L, want, sizeof(want));
	for (int i = 0; i < 40; i++) {
		if (pg_query_scalar(L->pg, "SHOW synchronous_standby_names", have, sizeof(have), &err) &&
		    strcmp(have, want) == 0) {
			if (pg_query_scalar(L->pg, "SELECT pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn", have,
			                    sizeof(have), &err)) {
				L->sync_pg.since_lsn = strtoull(have, NULL, 10);
				L->sync_pg.since_known = true;
			}
			return L->sync_pg.since_known;
		}
		clk_sleep(0.025);
	}
	log_warn("Postgres does not show synchronous_standby_names = '%s' yet", want);
	return false;
}

/* The leader's part of synchronous mode, once per loop: step towards the
 * wanted synchronous standbys in the safe order (ha_sync_plan). */
void sync_manage(struct loop *L)
{
	struct ha_sync_input in;

	if (!L->local.pg_ready || !L->local.pg_primary || L->postmaster.pid == 0)
		return;
	if (!L->settings.synchronous_mode && L->sync_pg.n == 0 && !L->sync_pg.star &&
	    !(L->view.has_sync && strcmp(L->view.sync_leader, L->cfg->name) == 0 && L->view.n_sync > 0))
		return;
	if (!L->sync_pg.since_known) {
		/* Just started or promoted: Postgres has waited for sync_pg since
		 * at least now. */
		L->sync_pg.since_lsn = L->pgst.current_lsn;
		L->sync_pg.since_known = true;
	}
	for (int step = 0; step < 4; step++) {
		struct ha_sync_step st;

		memset(&in, 0, sizeof(in));
		for (int i = 0; i < L->pgst.n_replicas && in.n < HA_MAX_MEMBERS; i++) {
			const struct pg_replica_info *r = &L->pgst.replicas[i];
			struct ha_sync_standby *sb = &in.standbys[in.n++];

			snprintf(sb->name, sizeof(sb->name), "%s", r->application_name);
			sb->streaming = strcmp(r->state, "streaming") == 0;
			sb->sync = strcmp(r->sync_state, "sync") == 0 || strcmp(r->sync_state, "quorum") == 0;
			sb->flush_lsn = r->flush_lsn;
		}
		in.n_pg = L->sync_pg.n;
		memcpy(in.pg, L->sync_pg.names, sizeof(in.pg));
		in.pg_star = L->sync_pg.star;
		in.pg_quorum = L->sync_pg.quorum;
		in.pg_since_lsn = L->sync_pg.since_lsn;
		in.primary_lsn = L->pgst.current_lsn;

		st = ha_sync_plan(&L->view, L->cfg->name, &in);
		if (st.kind == HA_SYNC_NONE)
			return;
		if (st.kind == HA_SYNC_SET_KEY) {
			if (!sync_key_write(L, st.names, st.n, st.quorum, st.reason))
				return;
			continue;
		}
		/* HA_SYNC_SET_PG; pg_stat_replication is stale afterwards: the
		 * next loop goes on. */
		memset(L->sync_pg.names, 0, sizeof(L->sync_pg.names));
		L->sync_pg.n = st.n;
		for (size_t i = 0; i < st.n; i++)
			snprintf(L->sync_pg.names[i], HA_NAME_MAX, "%s", st.names[i]);
		L->sync_pg.star = st.star;
		L->sync_pg.quorum = st.n > 0 ? st.quorum : 0;
		if (sync_pg_apply(L))
			log_info("synchronous replication: %s", st.reason);
		return;
	}
}
