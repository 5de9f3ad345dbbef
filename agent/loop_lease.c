/*
 * loop_lease.c - the lease and the leader key: take a lease (or a new one
 * when the ttl changed), acquire and release the leader key with etcd
 * transactions, tell the keeper which postmaster to fence, and the
 * failsafe rounds that let a primary stay while etcd is unreachable.
 * Split from loop.c: everything that rule 1 and rule 2 rest on.
 */
#include "agent/loop_internal.h"

/* failsafe_mode: pause before asking a member that refused again */
#define FAILSAFE_RETRY_PAUSE 0.15

void set_fence(struct loop *L)
{
	bool may_write = L->postmaster.pid > 0 && (L->lm.pg_started_primary || L->lm.promote_requested ||
	                                           (L->local.pg_ready && L->local.pg_primary));

	keeper_set_fence(L->keeper, may_write ? L->postmaster.pid : 0);
	/* The lease to revoke should this agent die (fence.h): the one the
	 * leader key is on, while we hold it. */
	keeper_set_fence_lease(L->keeper, may_write && is_leader(L) && L->view.leader_lease == L->local.lease_id
	                                          ? L->local.lease_id
	                                          : 0);
}

/* A txn without a failure branch; *revision (may be NULL) gets the
 * revision it ran at, which is the mod revision of what it put. */
bool txn_rev(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops, size_t n_ops,
             bool *won, int64_t *revision, const char *what)
{
	struct etcd_txn_result r;
	struct etcd_error err;

	memset(&r, 0, sizeof(r));
	if (etcd_txn(L->etcd, cmp, n_cmp, ops, n_ops, NULL, 0, &r, &err) != ETCD_OK) {
		log_warn("%s: etcd transaction failed: %s", what, err.message);
		return false;
	}
	*won = r.succeeded;
	if (revision)
		*revision = r.revision;
	etcd_txn_result_free(&r);
	return true;
}

bool txn_simple(struct loop *L, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *ops, size_t n_ops,
                bool *won, const char *what)
{
	return txn_rev(L, cmp, n_cmp, ops, n_ops, won, NULL, what);
}

/* Deletes the leader key if it still holds our name. */
void release_leader_key(struct loop *L)
{
	struct etcd_compare cmp = {
		.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name
	};
	struct etcd_op del = { .kind = ETCD_OP_DELETE, .key = L->keys.leader };
	bool won = false;

	if (txn_simple(L, &cmp, 1, &del, 1, &won, "release leader key") && won)
		log_info("released the leader key");
}

/* Creates the leader key on our lease, or moves our name from an old lease. */
bool acquire_leader_key(struct loop *L)
{
	struct etcd_compare cmp[2];
	struct etcd_op put = {
		.kind = ETCD_OP_PUT, .key = L->keys.leader, .value = L->cfg->name, .lease = L->local.lease_id
	};
	size_t n_cmp;
	bool won = false;
	double seen;

	if (L->local.lease_id == 0)
		return false;
	memset(cmp, 0, sizeof(cmp));
	if (!L->view.has_leader) {
		cmp[0] = (struct etcd_compare){
			.key = L->keys.leader, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0
		};
		n_cmp = 1;
	} else {
		cmp[0] = (struct etcd_compare){
			.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name
		};
		cmp[1] = (struct etcd_compare){ .key = L->keys.leader,
			                        .target = ETCD_CMP_MOD,
			                        .result = ETCD_CMP_EQUAL,
			                        .number = L->leader_mod_revision };
		n_cmp = 2;
	}
	/* A leader we confirmed in failsafe_mode may write until a ttl after
	 * that: no confirmation between this check and the take. */
	seen = fmax(fmax(api_failsafe_close(L->api), L->failsafe.seen_at), L->failsafe.start_promise);
	if (seen > 0 && clk_mono() - seen < L->settings.ttl) {
		api_failsafe_reopen(L->api);
		log_info("not taking the leader key: we confirmed %s's failsafe heartbeat %.1fs ago",
		         L->view.leader[0] ? L->view.leader : "the leader", clk_mono() - seen);
		return false;
	}
	if (!txn_simple(L, cmp, n_cmp, &put, 1, &won, "acquire leader key")) {
		/* etcd may have applied it without answering: closed until a full
		 * read shows whose the key is (take_requests). */
		L->failsafe.take_unknown = true;
		return false;
	}
	if (!won) {
		api_failsafe_reopen(L->api);
		log_info("lost the race for the leader key");
		return false;
	}
	log_info("acquired the leader key");
	L->view.has_leader = true;
	snprintf(L->view.leader, sizeof(L->view.leader), "%s", L->cfg->name);
	L->view.leader_lease = L->local.lease_id;
	return true;
}

/*
 * The ttl in the config key changed: a lease keeps the TTL it was granted
 * with, so take a new one and move our keys onto it (the leader key first,
 * guarded by our name), then drop the old lease. The deadline then counts
 * from the new grant, and other members wait the new ttl after our death.
 */
static void rotate_lease(struct loop *L, int64_t old_id)
{
	int64_t id, granted = 0;
	double t0 = clk_mono();
	struct etcd_error err;

	if (etcd_lease_grant(L->etcd, (int64_t)ceil(L->settings.ttl), &id, &granted, &err) != ETCD_OK) {
		log_warn("ttl changed, but no new lease from etcd: %s; keeping the old one", err.message);
		return;
	}
	if (is_leader(L)) {
		struct etcd_compare cmp = {
			.key = L->keys.leader, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = L->cfg->name
		};
		struct etcd_op put = { .kind = ETCD_OP_PUT, .key = L->keys.leader, .value = L->cfg->name, .lease = id };
		bool won = false;

		if (!txn_simple(L, &cmp, 1, &put, 1, &won, "move the leader key to the new lease") || !won) {
			/* Keep the old lease (and its deadline): revoke the new one. */
			if (etcd_lease_revoke(L->etcd, id, &err) != ETCD_OK)
				log_warn("cannot revoke the unused lease: %s", err.message);
			return;
		}
	}
	log_info("ttl is now %llds: moved our keys from lease %llx to %llx", (long long)granted,
	         (unsigned long long)old_id, (unsigned long long)id);
	L->granted_ttl = granted;
	L->requested_ttl = (int64_t)ceil(L->settings.ttl);
	keeper_set_lease(L->keeper, id, t0);
	L->local.lease_id = id;
	L->local.lease_sent = t0;
	free(L->member_json);
	L->member_json = NULL;
	publish_member(L); /* re-attached to the new lease before the old one goes */
	if (etcd_lease_revoke(L->etcd, old_id, &err) != ETCD_OK)
		log_warn("cannot revoke our old lease: %s", err.message);
}

/* The lease: take a new one when the keeper reports it lost, or when the
 * ttl changed. */
void ensure_lease(struct loop *L)
{
	int64_t id, granted = 0;
	double sent, t0;
	struct etcd_error err;

	keeper_get(L->keeper, &id, &sent);
	if (id != 0 && L->requested_ttl != (int64_t)ceil(L->settings.ttl)) {
		rotate_lease(L, id);
		return;
	}
	if (id != 0)
		return;
	/* Lost while Postgres may write: demote first (this loop), lease later. */
	if (L->postmaster.pid > 0 && (L->lm.pg_started_primary || L->local.pg_primary))
		return;
	t0 = clk_mono();
	if (etcd_lease_grant(L->etcd, (int64_t)ceil(L->settings.ttl), &id, &granted, &err) != ETCD_OK) {
		if (t0 - L->last_etcd_err_log >= 5.0) {
			log_warn("cannot get a lease from etcd: %s", err.message);
			L->last_etcd_err_log = t0;
		}
		return;
	}
	L->granted_ttl = granted;
	L->requested_ttl = (int64_t)ceil(L->settings.ttl);
	keeper_set_lease(L->keeper, id, t0);
	free(L->member_json);
	L->member_json = NULL; /* the member key must be written on the new lease */
	log_info("got lease %llx (ttl %llds) from etcd", (unsigned long long)id, (long long)granted);
}

/*
 * failsafe_mode, etcd unreachable, we are the primary: ask every member of
 * the last view we had to confirm us. Only a round that all of them
 * confirm extends our deadline (ha_lease_deadline); one silent or refusing
 * member and the deadline stays, so we demote in time.
 */
void failsafe_round(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	double t0 = clk_mono(), timeout = fmin(0.5, L->settings.loop_wait);
	double budget = fmin(1.0, L->settings.loop_wait);
	struct peer_opts po = loop_peer_opts(L);
	size_t asked = 0, confirmed = 0;
	bool done[HA_MAX_MEMBERS] = { false };
	char errs[HA_MAX_MEMBERS][300] = { { 0 } };

	if (!L->view.failsafe_mode || L->view.etcd_ok || !L->local.pg_ready || !L->local.pg_primary) {
		if (L->failsafe.confirmed_at > 0) {
			L->failsafe.confirmed_at = 0;
			keeper_set_failsafe(L->keeper, 0);
		}
		L->failsafe.logged = false;
		return;
	}
	/* A member's answer may lag its own view of etcd by a moment: ask
	 * those that refused again, within the loop's pace. */
	for (int pass = 0;; pass++) {
		asked = confirmed = 0;
		for (size_t i = 0; i < L->view.n_members && i < HA_MAX_MEMBERS; i++) {
			const struct ha_member *m = &L->view.members[i];

			if (strcmp(m->name, cfg->name) == 0 || !m->api_url[0])
				continue;
			asked++;
			if (!done[i])
				done[i] = peer_post_failsafe(&po, m->api_url, cfg->name, timeout, errs[i],
				                             sizeof(errs[i]));
			if (done[i])
				confirmed++;
		}
		if (confirmed == asked || pass >= 2 || clk_mono() - t0 + FAILSAFE_RETRY_PAUSE + timeout > budget)
			break;
		clk_sleep(FAILSAFE_RETRY_PAUSE);
	}
	for (size_t i = 0; i < L->view.n_members && i < HA_MAX_MEMBERS; i++)
		if (!done[i] && strcmp(L->view.members[i].name, cfg->name) != 0 && L->view.members[i].api_url[0])
			log_warn("failsafe: %s did not confirm us (%s)", L->view.members[i].name, errs[i]);
	if (confirmed == asked) {
		L->failsafe.confirmed_at = t0;
		keeper_set_failsafe(L->keeper, t0);
		if (!L->failsafe.logged)
			log_warn("etcd unreachable; all %zu members confirm us: staying primary (failsafe_mode)",
			         asked);
		L->failsafe.logged = true;
	} else {
		L->failsafe.logged = false;
	}
}
