/*
 * loop_switchover.c - the leader's side of a planned switchover or manual
 * failover: check or choose the candidate, record it in the switchover
 * key, stop Postgres so that the candidate receives all our WAL, then
 * release the leader key; and clearing a request that no longer applies.
 * Split from loop.c: the one multi-step action with its own etcd key.
 *
 * With `poolers` set, the PgBouncers in front of the cluster are paused
 * (pooler.h) between the checkpoint and the stop, so that clients wait in
 * the pooler instead of meeting a stopped server, and resumed once a
 * primary takes writes again: the candidate after a handover (asked here,
 * up to 5 s, then by pooler_tick every loop), or we ourselves when the
 * switchover is aborted and we start again as primary; past
 * pooler_resume_timeout they are resumed whatever happened. A new leader
 * also resumes every pooler of its file once per timeline (the sweep,
 * retried every loop until it reached each one), in case the agent that
 * paused them died in between. A RESUME that fails is retried every loop.
 */
#include "agent/loop_internal.h"

#include <stdarg.h>

/* Seconds a new leader waits before it sweeps its poolers (pooler_tick):
 * longer than the old primary asks for after its handover (5 s, in
 * do_switchover), which it began before our promotion. */
#define POOLER_SWEEP_GRACE 5.0
/* pooler_target errors said at WARN per pause or sweep, at most (each one
 * differing from the one before; the rest go to the debug log), and how
 * long (s) one must last first: while HAProxy moves to the new primary an
 * error or two is expected, a TLS file libpq cannot read is not. */
#define POOLER_TARGET_WARNS 3
#define POOLER_TARGET_PERSIST 1.0
/* New connections to pooler_target that must each answer read-write, one
 * after the other, before the poolers are resumed. A proxy spreads new
 * connections over every server it counts up (HAProxy: round robin), and
 * right after a handover it may still count the old primary up: its last
 * check passed before Postgres stopped, the next one is up to a check
 * interval away (longer when the check is slow). One read-write answer then
 * says nothing about where the poolers' next connection goes: to the old
 * primary, which starts again as a replica right after the resume, and
 * every client statement fails ("cannot execute INSERT in a read-only
 * transaction") until the check marks it down. Consecutive connections
 * reach each of up to this many servers in turn. */
#define POOLER_TARGET_PROBES 3

static void switchover_key(const struct loop *L, char *buf, size_t len)
{
	snprintf(buf, len, "%sswitchover", L->keys.prefix);
}

/* Deletes the switchover key if it is still the one we read this loop. */
void clear_switchover(struct loop *L, const char *why)
{
	char key[400];
	struct etcd_compare cmp = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL };
	struct etcd_op del = { .kind = ETCD_OP_DELETE };
	bool won = false;

	if (L->switchover_mod_revision == 0)
		return;
	switchover_key(L, key, sizeof(key));
	cmp.key = key;
	cmp.number = L->switchover_mod_revision;
	del.key = key;
	if (txn_simple(L, &cmp, 1, &del, 1, &won, "clear the switchover key") && won)
		log_info("switchover request cleared: %s", why);
	L->switchover_mod_revision = 0;
	L->view.has_switchover = false;
}

/* Logs why we do not carry out the switchover request (outcome "refused"
 * or "aborted"), records it in our member key for batonctl, and clears the
 * request. */
void refuse_switchover(struct loop *L, const char *outcome, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(L->sw_refusal.why, sizeof(L->sw_refusal.why), fmt, ap);
	va_end(ap);
	log_error("switchover %s: %s", outcome, L->sw_refusal.why);
	L->sw_refusal.request = L->switchover_create_revision;
	clear_switchover(L, outcome);
	/* (The loop publishes our member key right after this action.) */
}

/* Asks member `name`'s REST API for its status now, for the core to judge
 * (ha_switchover_ready); a member without a REST API is not asked. */
static void ask_candidate(struct loop *L, const char *name, struct ha_peer_status *out)
{
	const struct ha_member *m = ha_find_member(&L->view, name);
	struct peer_opts po;
	struct api_status st;

	memset(out, 0, sizeof(*out));
	if (!m || !m->api_url[0] || m->nofailover) {
		snprintf(out->error, sizeof(out->error), "not asked");
		return;
	}
	po = loop_peer_opts(L);
	out->answered = peer_get_status(&po, m->api_url, 1.0, &st, NULL, out->error, sizeof(out->error));
	if (out->answered && strcmp(st.name, m->name) != 0) {
		/* Another member's REST API answers at this key's api_url (a
		 * forged member key): its status is not the candidate's. */
		char who[sizeof(st.name) * 4];

		log_escape(st.name, who, sizeof(who), false);
		snprintf(out->error, sizeof(out->error), "its REST API answers as member %.64s", who);
		out->answered = false;
	}
	if (!out->answered)
		return;
	out->pg_running = st.pg_running;
	snprintf(out->role, sizeof(out->role), "%s", st.role);
	snprintf(out->state, sizeof(out->state), "%s", st.state);
	out->timeline = st.timeline;
	out->lsn = st.lsn;
}

/* Does one new connection to pooler_target (the address the poolers
 * connect to) answer as a read-write Postgres? When not, seen says what it
 * answered. An error (libpq's: a TLS file it cannot read, a refused
 * password) that lasted POOLER_TARGET_PERSIST is a WARN when it differs from
 * the one said before, at most POOLER_TARGET_WARNS times per pause or sweep;
 * a debug line otherwise. */
static bool target_probe(struct loop *L, double timeout, char *seen, size_t len)
{
	struct pg_conn *c;
	struct pg_err err;
	char v[8];
	bool ok, answered;

	c = pg_conn_new(L->cfg->pooler_target, timeout);
	if (c == NULL) {
		snprintf(seen, len, "pooler_target could not be tried (out of memory)");
		return false;
	}
	answered = pg_query_scalar(c, "SELECT pg_is_in_recovery()", v, sizeof(v), &err);
	ok = answered && strcmp(v, "f") == 0;
	pg_conn_free(c);
	if (ok || answered)
		L->pool.target_err[0] = '\0'; /* the streak of one error ends */
	if (ok)
		return true;
	if (answered) {
		snprintf(seen, len, "pooler_target answers as a server in recovery");
		log_debug("pooler_target is not a writable primary yet: it is in recovery");
		return false;
	}
	snprintf(seen, len, "pooler_target does not answer: %s", err.msg);
	if (strncmp(L->pool.target_err, err.msg, sizeof(L->pool.target_err) - 1) != 0) {
		snprintf(L->pool.target_err, sizeof(L->pool.target_err), "%.*s", (int)sizeof(L->pool.target_err) - 1,
		         err.msg);
		L->pool.target_err_at = clk_mono();
	}
	if (clk_mono() - L->pool.target_err_at >= POOLER_TARGET_PERSIST && L->pool.target_warns < POOLER_TARGET_WARNS &&
	    strcmp(L->pool.target_said, L->pool.target_err) != 0) {
		log_warn("pooler_target does not answer: %s (for %.1fs; the poolers are resumed once it answers "
		         "read-write, or after pooler_resume_timeout)",
		         err.msg, clk_mono() - L->pool.target_err_at);
		snprintf(L->pool.target_said, sizeof(L->pool.target_said), "%.*s", (int)sizeof(L->pool.target_said) - 1,
		         err.msg);
		L->pool.target_warns++;
	} else {
		log_debug("pooler_target is not a writable primary yet: %s", err.msg);
	}
	return false;
}

/* Does pooler_target answer as a read-write Postgres on
 * POOLER_TARGET_PROBES new connections in a row? true when it is not set:
 * the primary's own word is then all there is to wait for. When not, seen
 * says what it answered. */
static bool target_writable(struct loop *L, double timeout, char *seen, size_t len)
{
	if (L->cfg->pooler_target == NULL)
		return true;
	for (int i = 0; i < POOLER_TARGET_PROBES; i++) {
		if (target_probe(L, timeout, seen, len))
			continue;
		if (i > 0) {
			char first[700];

			snprintf(first, sizeof(first), "%s", seen);
			snprintf(seen, len, "pooler_target answered read-write, then on connection %d of %d: %.600s",
			         i + 1, POOLER_TARGET_PROBES, first);
			log_debug("pooler_target: connection %d of %d answered read-write, not the next: a proxy "
			          "still routes to another server",
			          i, POOLER_TARGET_PROBES);
		}
		return false;
	}
	return true;
}

/* Does member name's REST API at url say it runs as the primary? When not,
 * seen says what it answered (or why it did not). */
static bool peer_is_primary(const struct loop *L, const char *name, const char *url, double timeout, char *seen,
                            size_t len)
{
	struct peer_opts po = loop_peer_opts(L);
	struct api_status st;
	char e[256];

	if (!url[0]) {
		snprintf(seen, len, "%s has no REST API to ask", name);
		return false;
	}
	if (!peer_get_status(&po, url, timeout, &st, NULL, e, sizeof(e))) {
		snprintf(seen, len, "%s's REST API does not answer: %s", name, e);
		return false;
	}
	if (strcmp(st.name, name) != 0 || !st.pg_running || strcmp(st.role, ha_role_name(HA_ROLE_PRIMARY)) != 0) {
		snprintf(seen, len, "%s does not say it runs as primary (role %.20s, Postgres %s)", name, st.role,
		         st.pg_running ? "running" : "not running");
		return false;
	}
	return true;
}

void pooler_tick(struct loop *L, double now)
{
	const struct baton_config *cfg = L->cfg;
	struct pooler_set *ps = &L->pool.set;
	char seen[700] = "";

	if (pooler_paused_count(ps) > 0) {
		const struct ha_member *m = L->view.has_leader ? ha_find_member(&L->view, L->view.leader) : NULL;
		bool ready = false;
		char why[200];

		/* Past the timeout every loop only retries the RESUMEs that failed. */
		if (ps->overdue)
			;
		else if (is_leader(L) && !L->local.pg_primary) /* an aborted switchover */
			snprintf(seen, sizeof(seen), "our Postgres is not a running primary");
		else if (is_leader(L))
			ready = target_writable(L, 1.0, seen, sizeof(seen));
		else if (m == NULL)
			snprintf(seen, sizeof(seen), "no member holds the leader key");
		else if (!peer_is_primary(L, m->name, m->api_url, 0.5, seen, sizeof(seen)))
			log_debug("poolers stay paused: %s", seen);
		else
			ready = target_writable(L, 1.0, seen, sizeof(seen));
		snprintf(why, sizeof(why), "%s takes writes", is_leader(L) ? "our Postgres" : L->view.leader);
		if (pooler_resume_due(ps, ready, why, now, cfg->pooler_resume_timeout, seen))
			pooler_set_clear(ps);
		return;
	}
	if (!is_leader(L) || !L->local.pg_primary) {
		L->pool.sweep_since = 0;
		pooler_set_clear(&L->pool.sweep);
		return;
	}
	if (cfg->n_poolers == 0 || L->local.pg_timeline == L->pool.swept_timeline)
		return;
	if (L->pool.sweep_since == 0) {
		L->pool.sweep_since = now;
		L->pool.target_warns = 0;
		L->pool.target_said[0] = L->pool.target_err[0] = '\0';
	}
	/* After a switchover the old primary resumes its poolers within a
	 * second of our promotion (within 5 s of its handover on a slow
	 * machine, or behind a slow proxy check); the sweep is for a pause
	 * nobody is left to end, so it waits long enough not to race that
	 * resume. */
	if (now - L->pool.sweep_since < POOLER_SWEEP_GRACE)
		return;
	if (L->pool.sweep.n == 0) {
		if (!target_writable(L, 1.0, seen, sizeof(seen)) &&
		    now - L->pool.sweep_since <= cfg->pooler_resume_timeout)
			return;
		pooler_set_init(&L->pool.sweep, cfg->poolers, cfg->n_poolers, NULL);
	}
	/* Every loop until each pooler was reached once: a pooler that does
	 * not answer yet (a WARN names it, bounded) is the one that may hold
	 * a pause nobody else will end. */
	if (!pooler_resume_any(&L->pool.sweep, "the new leader's sweep"))
		return;
	pooler_set_clear(&L->pool.sweep);
	L->pool.swept_timeline = L->local.pg_timeline;
	L->pool.sweep_since = 0;
}

/* Rewrites the switchover key naming the candidate, so that only it takes
 * the key once we release it. */
static bool record_switchover_target(struct loop *L, const char *candidate)
{
	char key[400], *text;
	struct etcd_compare cmp = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL };
	struct etcd_op put = { .kind = ETCD_OP_PUT };
	json_t *o;
	bool won = false;
	int64_t rev = 0;

	switchover_key(L, key, sizeof(key));
	o = json_pack("{s:s, s:s, s:s, s:I}", "from", L->cfg->name, "to", candidate, "kind",
	              L->view.sw_failover ? "failover" : "switchover", "requested_at", (json_int_t)clk_wall_s());
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return false;
	cmp.key = key;
	cmp.number = L->switchover_mod_revision;
	put.key = key;
	put.value = text;
	if (!txn_rev(L, &cmp, 1, &put, 1, &won, &rev, "record the switchover target") || !won) {
		log_warn("switchover: the request changed while we acted on it; starting over");
		won = false;
	} else {
		/* clear_switchover must match what we just wrote, or an abort
		 * would leave the request behind and repeat it for ever. */
		L->switchover_mod_revision = rev;
	}
	free(text);
	return won;
}

/*
 * The leader's side of a switchover: pick (or check) the candidate, name it
 * in the switchover key, CHECKPOINT (so the shutdown checkpoint is short),
 * stop Postgres fast (its WAL senders ship everything to the replicas
 * before it exits), wait until the candidate has received our shutdown
 * checkpoint, then release the leader key. If the candidate does not catch
 * up in time we keep the key and the next loop restarts us as primary:
 * nothing acknowledged is lost either way.
 */
void do_switchover(struct loop *L, const char *target)
{
	char cand[HA_NAME_MAX] = "", why[300] = "", url[sizeof(((struct ha_member *)0)->api_url)];
	struct peer_opts po = loop_peer_opts(L);
	struct api_status st;
	struct pg_controldata ctl;
	struct pg_err err;
	char last_err[256] = "";
	double t0 = clk_mono(), until;
	bool caught_up = false, answered = false;

	if (target[0]) {
		struct ha_peer_status ps;

		ask_candidate(L, target, &ps);
		if (!ha_switchover_ready(&L->view, &L->local, target, &ps, why, sizeof(why))) {
			refuse_switchover(L, "refused", "%s", why);
			return;
		}
		snprintf(cand, sizeof(cand), "%s", target);
	} else {
		/* Every other member asked; the core chooses (ha_switchover_choose). */
		struct ha_peer_status ps[HA_MAX_MEMBERS];
		const char *names[HA_MAX_MEMBERS];
		size_t n = 0;
		int best;

		for (size_t i = 0; i < L->view.n_members && n < HA_MAX_MEMBERS; i++) {
			const char *name = L->view.members[i].name;

			if (strcmp(name, L->cfg->name) == 0)
				continue;
			ask_candidate(L, name, &ps[n]);
			names[n++] = name;
		}
		best = ha_switchover_choose(&L->view, &L->local, names, ps, n);
		if (best < 0) {
			refuse_switchover(L, "refused", "no healthy replica on our timeline to hand over to");
			return;
		}
		snprintf(cand, sizeof(cand), "%s", names[best]);
	}
	snprintf(url, sizeof(url), "%s", ha_find_member(&L->view, cand)->api_url);
	/* A parameter Postgres refuses (only logged by the reload that brought
	 * it) would keep us from starting again as the candidate's replica, and
	 * every other member restarted or rewound later: refuse now, while we
	 * still run, rather than leave the new leader alone. */
	{
		char bad[600];

		if (pg_config_errors(L, bad, sizeof(bad)) && bad[0]) {
			refuse_switchover(L, "refused",
			                  "Postgres would not start again with its configuration (%s), so this node "
			                  "could not come back as a replica: fix it first (batonctl edit-config --pg "
			                  "NAME= or the node's file)",
			                  bad);
			return;
		}
	}
	if (!record_switchover_target(L, cand))
		return;
	log_info("switchover to %s: checkpoint, then stopping Postgres", cand);
	if (!pg_query_checkpoint(L->pg, &err))
		log_warn("checkpoint before switchover failed: %s", err.msg);
	if (L->cfg->n_poolers > 0 && pooler_paused_count(&L->pool.set) == 0) {
		/* After the checkpoint, which clients need not wait for. */
		pooler_set_init(&L->pool.set, L->cfg->poolers, L->cfg->n_poolers, NULL);
		L->pool.target_warns = 0;
		L->pool.target_said[0] = L->pool.target_err[0] = '\0';
		(void)pooler_pause_all(&L->pool.set, L->cfg->pooler_pause_timeout);
	}
	stop_postgres(L, PG_STOP_FAST, "switchover");
	L->switchover_stopped = true;
	/* The loop is held here for up to seconds: the REST API must say now
	 * that Postgres stopped, or an HAProxy checking /primary goes on
	 * routing (the poolers' new server connections too) to us. */
	publish_api(L);
	if (!pg_controldata_read(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &ctl, &err)) {
		refuse_switchover(L, "aborted", "cannot read our final position: %s; staying leader", err.msg);
		return;
	}
	until = clk_mono() + 5.0;
	while (clk_mono() < until) {
		if (peer_get_status(&po, url, 0.5, &st, NULL, last_err, sizeof(last_err))) {
			answered = true;
			last_err[0] = '\0';
			if (strcmp(st.name, cand) == 0 &&
			    (st.receive_lsn > ctl.checkpoint_lsn || st.lsn > ctl.checkpoint_lsn)) {
				caught_up = true;
				break;
			}
		}
		clk_sleep(0.02);
	}
	if (!caught_up) {
		/* Say which: a candidate whose agent does not answer may well
		 * hold our checkpoint, but we cannot know it. */
		if (last_err[0])
			refuse_switchover(L, "aborted",
			                  "%s did not answer whether it received our shutdown checkpoint (%llX) within "
			                  "5s (%s%s); staying leader",
			                  cand, (unsigned long long)ctl.checkpoint_lsn,
			                  answered ? "it answered before, then: " : "", last_err);
		else
			refuse_switchover(L, "aborted",
			                  "%s did not receive our shutdown checkpoint (%llX) within 5s; staying leader",
			                  cand, (unsigned long long)ctl.checkpoint_lsn);
		return;
	}
	/* Synchronous mode: Postgres is stopped and the candidate has all our
	 * WAL, so it may be recorded as synchronous, which lets it take the key. */
	if (L->settings.synchronous_mode && !ha_sync_allows(&L->view, cand)) {
		char names[HA_SYNC_MAX][HA_NAME_MAX];
		size_t n = 0;

		/* (Quorum commit: the others hold only a quorum of the commits, so
		 * the candidate alone, which has them all.) */
		for (size_t i = 0; !ha_sync_quorum_mode(&L->view) && strcmp(L->view.sync_leader, L->cfg->name) == 0 &&
		                   i < L->view.n_sync && n + 1 < HA_SYNC_MAX;
		     i++)
			snprintf(names[n++], HA_NAME_MAX, "%s", L->view.sync_standbys[i]);
		snprintf(names[n++], HA_NAME_MAX, "%s", cand);
		if (!sync_key_write(L, names, n, ha_sync_quorum_mode(&L->view) ? 1 : 0,
		                    "switchover candidate has all our WAL")) {
			refuse_switchover(L, "aborted", "cannot record %s in the sync key; starting again as leader",
			                  cand);
			return;
		}
	}
	release_leader_key(L);
	log_info("switchover: %s has all our WAL; leader key released %.2fs after the request was taken up", cand,
	         clk_mono() - t0);
	if (pooler_paused_count(&L->pool.set) > 0) {
		/* Resume as soon as the candidate takes writes; past 5 s
		 * pooler_tick goes on asking whoever leads, every loop. */
		double t1 = clk_mono(), resume_until = t1 + fmin(L->cfg->pooler_resume_timeout, 5.0);
		char seen[700] = "not asked yet", said[700] = "";
		bool resumed = false;

		while (clk_mono() < resume_until) {
			char because[200];

			if (peer_is_primary(L, cand, url, 0.5, seen, sizeof(seen)) &&
			    target_writable(L, 0.5, seen, sizeof(seen))) {
				snprintf(because, sizeof(because), "%s takes writes", cand);
				if (pooler_resume_all(&L->pool.set, because))
					pooler_set_clear(&L->pool.set);
				resumed = true;
				break;
			}
			if (strcmp(seen, said) != 0) { /* each change once */
				log_debug("poolers stay paused: %s", seen);
				snprintf(said, sizeof(said), "%s", seen);
			}
			clk_sleep(0.02);
		}
		if (!resumed)
			log_info("the poolers stay paused %.1fs after the handover (last seen: %s): asking again every loop",
			         clk_mono() - t1, seen);
	}
}
