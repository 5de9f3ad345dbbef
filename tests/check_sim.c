/*
 * check_sim.c - a deterministic simulation of baton's HA decision core
 * (agent/ha.c) inside a model of the loop that carries out its actions
 * (agent/loop.c), the lease keeper (agent/keeper.c), the fence, Postgres
 * and etcd, under random faults. `make check` runs thousands of seeds.
 *
 * THE MODEL (tests/sim_world.c, tests/sim_etcd.c)
 *   Virtual time in seconds; one event queue ordered by (time, sequence);
 *   one splitmix64 PRNG seeded with the seed, so a seed replays exactly.
 *   - etcd: one revision counter; the leader, initialize, status,
 *     switchover and members/<name> keys; leases whose TTL runs from the
 *     moment a grant or keepalive *arrives*; a keepalive after the TTL ran
 *     out finds the lease gone; the expiry sweep deletes an expired lease's
 *     keys 0.05-0.4 s later and the leader watch tells every reachable agent.
 *     Each request is applied atomically when it arrives (create-if-absent
 *     and compare-value/mod-revision transactions as loop.c sends them).
 *     Requests and answers take 0.5-50 ms (1% take 50-300 ms), may be lost
 *     (up to 8%), and the client gives up after its timeout: a request can
 *     succeed in etcd while its client saw a timeout.
 *   - each node (3-5): the agent loop as a step machine following loop.c
 *     (reap, ensure_lease, read_cluster_in_time, read_local, poll_peers,
 *     ha_decide, execute, set_fence, publish_member, sleep loop_wait or
 *     until the deadline or a wake-up); every etcd request blocks the loop
 *     until its answer or timeout, as in the real loop. The keeper sends a
 *     keepalive every min(loop_wait, ttl/4) s, records the *send* time of
 *     the last success and bounds its timeout by the deadline while Postgres
 *     may write. The fence is an independent actor: it stops a writable
 *     Postgres (immediate) the moment the deadline the keeper's state
 *     implies has passed; it keeps running while the agent is frozen.
 *     Postgres: down / starting / replica / promoting / primary; a data
 *     directory with a system identifier, a WAL history (timelines, each
 *     with an identity, so two promotions to the same number differ) and an
 *     LSN that grows while primary; a replica streams from the node it
 *     follows (with one 0.2 s tick of lag) only when its history is a prefix
 *     of the upstream's; a fast stop of a primary ships its shutdown
 *     checkpoint to the streaming replicas. initdb, pg_basebackup and
 *     pg_rewind are jobs of 0.3-3 s that fail when their source is gone.
 *     Each node's monotonic clock has its own offset and a rate within
 *     +-500 ppm; its wall clock (scheduled switchovers only) can be stepped.
 *   - faults, at random for 60-150 s (60% of them aimed at the leader): node
 *     crash and reboot; agent crash (its postmaster dies with it, PDEATHSIG)
 *     and restart; postmaster crash; agent freeze (loop and keeper stop, the
 *     fence and Postgres go on) and whole-node freeze, both up to 3 x ttl;
 *     etcd partition (requests dropped, or refused at once); partition from
 *     the peers (no REST polls, no streaming); etcd answers delayed by up to
 *     2.5 x the request timeout (stale views); operator switchover or
 *     failover (to a named or the best member, now or scheduled) through the
 *     switchover key; operator stop and start of an agent; wall clock steps.
 *   Timings: odd seeds ttl/loop_wait/retry_timeout 5/1/2, even seeds 3/1/1.
 *
 * PRODUCTION CODE THE MODEL RUNS (not copies of it)
 *   ha_decide and every rule of the core, including the job backoffs;
 *   local_view_update (agent/local_view.c), the loop's one view builder,
 *   fed with what the model's Postgres, data directory and keeper show;
 *   ha_switchover_ready / ha_switchover_choose for the switchover
 *   candidate; ha_role_of / ha_state_of for what a member publishes;
 *   ha_deadline for the keeper's and the fence's deadline. The executor
 *   stays a model: its actions are asynchronous steps in virtual time
 *   (requests that block the loop until answered or timed out), which the
 *   real, synchronous executor cannot be run as.
 *
 * THE PROPERTIES, checked after every event
 *   - at most one node's Postgres is writable (primary, promoting, or
 *     starting as primary);
 *   - a writable Postgres's node has a lease, its deadline as the node
 *     computes it (last successful keepalive *sent* + ttl - margin, on the
 *     node's clock) has not passed, that lease has not expired in etcd's
 *     time, and the leader key names this node on that lease.
 *   Liveness, loosely: 10 x ttl after the faults stop (everything healed and
 *   restarted) exactly one node is a primary and holds the leader key,
 *   unless no member may ever take over by rule 5 (counted as "without a
 *   possible candidate": none with data of this cluster, not nofailover,
 *   within maximum_lag_on_failover of the last leader position).
 *
 * SIMPLIFICATIONS
 *   One etcd member (no raft leader changes); the view is built directly
 *   from the keyspace, not through dcs_parse_cluster's JSON; REST polls
 *   answer the polled agent's last published snapshot and cost 2 ms (0.5 s
 *   when unreachable); Postgres stops take 10-600 ms; the real keeper's own
 *   fence check (at its keepalive times) is folded into the fence actor,
 *   which fires exactly at the deadline; a Postgres on a frozen node serves
 *   nobody, and on thaw the fence acts before it does (as a watchdog would);
 *   a killed initdb/pg_basebackup leaves an unusable data directory (the
 *   agent then stops with FATAL, and in the quiet period an operator wipes
 *   it), a killed pg_rewind changes nothing; no synchronous mode, failsafe
 *   mode, pause, restarts or reinit requests from operators.
 *
 * BUGS THIS SIMULATION FOUND, NOW FIXED (a run showing one again fails and
 * is named in the summary as a regression)
 *   SIM_KNOWN_BOOTSTRAP (seed 243 when written; every run prints the first
 *     seed of each known bug): ha_decide returns HA_BOOTSTRAP to the owner
 *     of the initialize key without the checks rule 9 makes
 *     before START_PRIMARY (lease_valid, holds_on_our_lease), and loop.c's
 *     do_bootstrap starts Postgres as primary when is_leader() matches our
 *     *name*. After a freeze longer than ttl - margin, with a stale view, or
 *     with the lease lost (lease_id 0), a bootstrapping node starts a
 *     writable primary past its deadline, and its keys then expire under it
 *     while another member bootstraps a second cluster (seed 702).
 *     Only runs whose violating Postgres was started by HA_BOOTSTRAP count.
 *   SIM_KNOWN_SWITCHOVER_LOOP (seed 1211 when written): loop.c's do_switchover
 *     rewrites the switchover key (record_switchover_target) and, when the
 *     candidate does not catch up within 5 s, calls clear_switchover with
 *     the mod revision read *before* that rewrite: the delete loses, the key
 *     stays, the next loop restarts the primary and switches over again,
 *     for ever; the primary is up for milliseconds between attempts, so a
 *     lagging candidate never catches up (write outage without end).
 *     Counted when liveness fails with the key present after >= 2 aborts.
 *     Fixed: the record step's revision is kept for the clear (txn_rev),
 *     and a candidate more than maximum_lag_on_failover behind is not ready
 *     (the model here follows loop.c).
 *
 * REPLAY
 *   BATON_SIM_SEED=12345 ./tests/check_sim     one seed (prints its trace on failure)
 *   BATON_SIM_SEEDS=20000 ./tests/check_sim    more seeds (default 2000)
 *   BATON_SIM_FIRST=5000                       start the seed range there
 *   BATON_SIM_VERBOSE=1                        every trace line as it happens
 *   BATON_SIM_BROKEN=1                         the broken variant (no fence, DEMOTE ignored)
 *   BATON_SIM_NOFENCE=1                        no fence actor: the loop alone must demote in time
 *   CK_RUN_CASE=sim ./tests/check_sim          only the seeded runs
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim.h"

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	v = strtoull(s, &end, 10);
	if (*end != '\0') {
		fprintf(stderr, "check_sim: %s=\"%s\" is not a whole number; using %llu\n", name, s,
		        (unsigned long long)dflt);
		return dflt;
	}
	return v;
}

static bool env_flag(const char *name)
{
	const char *s = getenv(name);

	return s && *s && strcmp(s, "0") != 0;
}

struct seed_summary {
	int failed;                        /* violations other than the known bugs */
	int known[3];                      /* failed runs that were a fixed bug again, by SIM_KNOWN_* */
	int unrecoverable;                 /* runs whose liveness could not be asked for */
	int recovered;                     /* runs with a primary after the faults stopped ... */
	double recovery_sum, recovery_max; /* ... and how long that took */
	uint64_t first_failed, first_known[3];
	struct sim_stats sum;
};

/* Runs seeds [first, first + count). A failing seed is run again with its
 * trace printed (runs are deterministic); known-bug seeds are printed only
 * when asked for one seed or verbose output. */
static void run_seeds(uint64_t first, uint64_t count, bool broken, bool verbose, bool only_two_writers,
                      struct seed_summary *out)
{
	memset(out, 0, sizeof(*out));
	for (uint64_t s = first; s < first + count; s++) {
		struct sim_params p;
		struct sim_result r;

		sim_params_from_seed(s, &p);
		p.broken = broken;
		p.no_fence = env_flag("BATON_SIM_NOFENCE");
		p.only_two_writers = only_two_writers;
		p.verbose = verbose;
		if (!sim_run(&p, &r, verbose ? stderr : NULL)) {
			/* Both bugs this simulation found are fixed: a run that
			 * shows one again is a regression and fails like any other,
			 * named in the summary. */
			if (r.known_bug && !broken && out->known[r.known_bug]++ == 0)
				out->first_known[r.known_bug] = s;
			if (out->failed++ == 0)
				out->first_failed = s;
			if (!verbose && (!broken || count == 1))
				sim_run(&p, &r, stderr);
			if (broken)
				break; /* one catch is the proof */
		}
		out->unrecoverable += r.unrecoverable;
		if (r.st.recovery >= 0) {
			out->recovered++;
			out->recovery_sum += r.st.recovery;
			if (r.st.recovery > out->recovery_max)
				out->recovery_max = r.st.recovery;
		}
		out->sum.events += r.st.events;
		out->sum.faults += r.st.faults;
		out->sum.leader_changes += r.st.leader_changes;
		out->sum.promotions += r.st.promotions;
		out->sum.demotes += r.st.demotes;
		out->sum.fences += r.st.fences;
		out->sum.switchovers += r.st.switchovers;
		out->sum.fatals += r.st.fatals;
		if (r.st.max_no_primary > out->sum.max_no_primary)
			out->sum.max_no_primary = r.st.max_no_primary;
	}
}

START_TEST(test_sim_seeds)
{
	bool verbose = env_flag("BATON_SIM_VERBOSE");
	bool broken = env_flag("BATON_SIM_BROKEN");
	uint64_t one = env_u64("BATON_SIM_SEED", 0);
	uint64_t first = one ? one : env_u64("BATON_SIM_FIRST", 1);
	uint64_t count = one ? 1 : env_u64("BATON_SIM_SEEDS", 2000);
	struct seed_summary o;

	run_seeds(first, count, broken, verbose, false, &o);
	fprintf(stderr,
	        "check_sim: %llu seed(s) from %llu%s: %d failed; of them regressions of fixed bugs: bootstrap gap "
	        "in %d (first seed %llu), switchover loop in %d (first seed %llu); %d without a possible candidate at the end; %llu events, %d "
	        "faults, %d leader changes, %d promotions, %d demotes, %d fencings, %d switchovers, %d fatal stops; "
	        "longest stretch without a writable primary %.1f s; after the faults stop a primary holds the key "
	        "within %.1f s on average, %.1f s at worst\n",
	        (unsigned long long)count, (unsigned long long)first, broken ? " (broken variant)" : "", o.failed,
	        o.known[SIM_KNOWN_BOOTSTRAP], (unsigned long long)o.first_known[SIM_KNOWN_BOOTSTRAP],
	        o.known[SIM_KNOWN_SWITCHOVER_LOOP], (unsigned long long)o.first_known[SIM_KNOWN_SWITCHOVER_LOOP],
	        o.unrecoverable, (unsigned long long)o.sum.events, o.sum.faults, o.sum.leader_changes, o.sum.promotions,
	        o.sum.demotes, o.sum.fences, o.sum.switchovers, o.sum.fatals, o.sum.max_no_primary,
	        o.recovered ? o.recovery_sum / o.recovered : 0.0, o.recovery_max);
	if (broken)
		ck_assert_msg(o.failed > 0, "the broken variant was not caught");
	else
		ck_assert_msg(o.failed == 0,
		              "%d of %llu seeds failed; the first is %llu (replay: BATON_SIM_SEED=%llu "
		              "./tests/check_sim)",
		              o.failed, (unsigned long long)count, (unsigned long long)o.first_failed,
		              (unsigned long long)o.first_failed);
}
END_TEST

/* The checker can fail: with the fence gone and DEMOTE ignored, a primary
 * cut off from etcd writes on past its lease while another is elected. The
 * deadline check catches that first; with every check but "at most one
 * writable Postgres" switched off, that one must catch it too. */
START_TEST(test_broken_variant_is_caught)
{
	struct seed_summary all, two;

	run_seeds(1, 200, true, false, false, &all);
	ck_assert_msg(all.failed > 0, "200 seeds of the broken variant passed the invariant: the checker is blind");
	run_seeds(1, 500, true, false, true, &two);
	ck_assert_msg(two.failed > 0, "500 seeds of the broken variant never had two writable primaries at once: "
	                              "that check is blind");
	fprintf(stderr,
	        "check_sim: the broken variant is caught by seed %llu (BATON_SIM_SEED=%llu BATON_SIM_BROKEN=1), and by "
	        "the two-writers check alone at seed %llu\n",
	        (unsigned long long)all.first_failed, (unsigned long long)all.first_failed,
	        (unsigned long long)two.first_failed);
}
END_TEST

/* A seed is a replay: the same seed gives the same run, event for event. */
START_TEST(test_replay_is_exact)
{
	struct sim_params p;
	struct sim_result a, b, c;

	sim_params_from_seed(77, &p);
	sim_run(&p, &a, NULL);
	sim_run(&p, &b, NULL);
	sim_params_from_seed(78, &p);
	sim_run(&p, &c, NULL);
	ck_assert_uint_eq(a.digest, b.digest);
	ck_assert_uint_eq(a.st.events, b.st.events);
	ck_assert_uint_ne(a.digest, c.digest);
	ck_assert_uint_gt(a.st.faults, 0);
}
END_TEST

/* The virtual etcd on its own: TTLs count from arrival, a late keepalive
 * finds the lease gone, the sweep deletes the leader key. */
START_TEST(test_etcd_lease_rules)
{
	struct sim_etcd e;
	int64_t id;

	sim_etcd_init(&e);
	id = sim_etcd_grant(&e, 10.0, 5.0, 0.3);
	ck_assert(id != 0);
	ck_assert(sim_etcd_put(&e, &e.k.leader, id));
	ck_assert(!sim_etcd_put(&e, &e.k.status, id + 1)); /* unknown lease */
	ck_assert(sim_etcd_keepalive(&e, 14.0, id, 0.3));
	ck_assert(sim_etcd_lease_alive(&e, id, 18.9));
	ck_assert(!sim_etcd_lease_alive(&e, id, 19.0));
	ck_assert(!sim_etcd_keepalive(&e, 19.1, id, 0.3)); /* expired, not yet swept */
	sim_etcd_expire(&e, 19.2);
	ck_assert(e.k.leader.present);
	sim_etcd_expire(&e, 19.3);
	ck_assert(!e.k.leader.present);
	ck_assert(!sim_etcd_lease_exists(&e, id));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("sim");
	TCase *tc_self = tcase_create("self");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_sim_seeds);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tc_self, 120);
	tcase_add_test(tc_self, test_etcd_lease_rules);
	tcase_add_test(tc_self, test_replay_is_exact);
	tcase_add_test(tc_self, test_broken_variant_is_caught);
	suite_add_tcase(s, tc_self);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
