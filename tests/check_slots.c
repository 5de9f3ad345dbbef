/*
 * check_slots.c - the replication slot plan (agent/slots.h): which slots a
 * node creates, moves forward and drops, as a primary and as a replica.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/slots.h"

static struct ha_cluster_view view;

static void members(void)
{
	const char *names[3] = { "node1", "node2", "Node-3.b" };
	const uint64_t lsns[3] = { 9000, 5000, 4000 };

	memset(&view, 0, sizeof(view));
	for (int i = 0; i < 3; i++) {
		snprintf(view.members[i].name, HA_NAME_MAX, "%s", names[i]);
		view.members[i].lsn = lsns[i];
	}
	view.n_members = 3;
}

static struct slots_input input(bool primary, const struct pg_slot *existing, size_t n)
{
	static char *perm[1] = { (char *)"backup_tool" };
	struct slots_input in;

	memset(&in, 0, sizeof(in));
	in.self = "node1";
	in.primary = primary;
	in.replay_lsn = 4500;
	in.view = &view;
	in.permanent = perm;
	in.n_permanent = 1;
	in.existing = existing;
	in.n_existing = n;
	in.now = 100;
	return in;
}

START_TEST(test_member_slot_names)
{
	char b[64];

	ck_assert(slots_member_slot("Node-3.b", b, sizeof(b)));
	ck_assert_str_eq(b, "node_3_b");
	ck_assert(slots_member_slot("node1", b, sizeof(b)));
	ck_assert_str_eq(b, "node1");
	ck_assert(!slots_member_slot("", b, sizeof(b)));
	ck_assert(!slots_member_slot("node1", b, 5));
}
END_TEST

/* A primary with no slots yet: one per other member, and the permanent one. */
START_TEST(test_primary_creates)
{
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(true, NULL, 0);
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 3);
	ck_assert_str_eq(p.create[0], "node2");
	ck_assert_str_eq(p.create[1], "node_3_b");
	ck_assert_str_eq(p.create[2], "backup_tool");
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(p.n_advance, 0); /* the replicas move their own slots */
}
END_TEST

/* Only confirmed members get a slot (a forged member key must not hold
 * WAL back); a slot an unconfirmed member has is dropped like a gone
 * member's: inactive and unwanted for SLOTS_GRACE. */
START_TEST(test_unconfirmed_members)
{
	struct pg_slot have[1] = { { "node_3_b", false, 4000 } };
	bool ok[3] = { true, false, false };
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(true, NULL, 0);
	in.member_ok = ok;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 1);
	ck_assert_str_eq(p.create[0], "backup_tool");

	in = input(true, have, 1);
	in.member_ok = ok;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 1);
	ck_assert_str_eq(p.create[0], "backup_tool");
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(mem.n, 1); /* unwanted since now */
	in.now = 100 + SLOTS_GRACE - 1;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 0);
	in.now = 100 + SLOTS_GRACE;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 1);
	ck_assert_str_eq(p.drop[0], "node_3_b");

	/* confirmed again before the grace ends: kept, the clock reset */
	memset(&mem, 0, sizeof(mem));
	in.now = 100;
	slots_plan(&in, &mem, &p);
	ok[2] = true;
	in.now = 100 + SLOTS_GRACE;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(mem.n, 0);
	ok[2] = false;

	ok[1] = true;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 2);
	ck_assert_str_eq(p.create[0], "node2");
	ck_assert_str_eq(p.create[1], "backup_tool");
}
END_TEST

/* A replica keeps slots for the others (no permanent ones) and moves each
 * forward to where that member is, never past its own replay position. */
START_TEST(test_replica_advances)
{
	struct pg_slot have[3] = {
		{ "node2", false, 3000 },    /* member at 5000, we replayed 4500: to 4500 */
		{ "node_3_b", false, 4000 }, /* member at 4000: stays */
		{ "backup_tool", false, 100 },
	};
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(false, have, 3);
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 0);
	ck_assert_uint_eq(p.n_advance, 1);
	ck_assert_str_eq(p.advance[0].name, "node2");
	ck_assert_uint_eq(p.advance[0].lsn, 4500);
	/* backup_tool is unwanted on a replica: remembered, not dropped yet */
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(mem.n, 1);
	ck_assert_str_eq(mem.unwanted[0].name, "backup_tool");
}
END_TEST

/* A standby leader keeps the permanent physical slots too (created when
 * missing, moved to its replay while inactive), never logical ones. */
START_TEST(test_standby_leader_permanent)
{
	static const struct dcs_logical_slot logical[1] = { { "feed", "app", "pgoutput" } };
	struct pg_slot have[1] = { { "node2", false, 3000 } };
	struct pg_slot have_perm[2] = { { "node2", false, 4500 }, { "backup_tool", false, 100 } };
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(false, have, 1);
	in.standby_leader = true;
	in.logical = logical;
	in.n_logical = 1;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 2);
	ck_assert_str_eq(p.create[0], "node_3_b");
	ck_assert_str_eq(p.create[1], "backup_tool");
	ck_assert_uint_eq(p.n_create_logical, 0);
	ck_assert_uint_eq(p.n_drop, 0);

	in = input(false, have_perm, 2);
	in.standby_leader = true;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_advance, 1);
	ck_assert_str_eq(p.advance[0].name, "backup_tool");
	ck_assert_uint_eq(p.advance[0].lsn, 4500);
	ck_assert_uint_eq(mem.n, 0); /* wanted, never on the way to a drop */
}
END_TEST

/* A gone member's slot is kept for SLOTS_GRACE, then dropped if inactive;
 * an active one is never dropped; a member coming back clears the clock. */
START_TEST(test_grace)
{
	struct pg_slot have[3] = {
		{ "node2", false, 5000 },
		{ "old_node", false, 1000 },
		{ "busy", true, 1000 },
	};
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(true, have, 3);
	in.n_permanent = 0;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(mem.n, 2);

	in.now = 100 + SLOTS_GRACE - 1;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 0);

	in.now = 100 + SLOTS_GRACE;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 1);
	ck_assert_str_eq(p.drop[0], "old_node");
	ck_assert_uint_eq(mem.n, 1); /* busy: still watched */

	/* old_node's member returns before the grace ends: its clock stops. */
	memset(&mem, 0, sizeof(mem));
	in.now = 100;
	slots_plan(&in, &mem, &p);
	snprintf(view.members[2].name, HA_NAME_MAX, "old_node");
	in.now = 100 + SLOTS_GRACE + 5;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(p.n_create, 0); /* its slot is still there */
	ck_assert_uint_eq(mem.n, 1);      /* only busy is unwanted now */
	ck_assert_str_eq(mem.unwanted[0].name, "busy");
}
END_TEST

/* Cascading (Patroni's rule): the primary keeps no slot for a member that
 * streams from another replica (tag replicatefrom) or not at all (tag
 * nostream), and drops one it has at once when inactive; that replica
 * keeps it; a member whose upstream is gone gets it on the primary again. */
START_TEST(test_cascaded_members)
{
	struct pg_slot have[2];
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;

	members();
	view.has_leader = true;
	snprintf(view.leader, HA_NAME_MAX, "node1");
	for (int i = 0; i < 3; i++) {
		snprintf(view.members[i].role, sizeof(view.members[i].role), i ? "replica" : "primary");
		snprintf(view.members[i].state, sizeof(view.members[i].state), "running");
	}
	/* Node-3.b streams from node2 */
	snprintf(view.members[2].replicatefrom, HA_NAME_MAX, "node2");
	memset(have, 0, sizeof(have));
	snprintf(have[0].name, sizeof(have[0].name), "node2");
	have[0].active = true;
	snprintf(have[1].name, sizeof(have[1].name), "node_3_b");
	have[1].active = false;
	memset(&mem, 0, sizeof(mem));
	in = input(true, have, 2);
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 1);
	ck_assert_str_eq(p.create[0], "backup_tool");
	ck_assert_uint_eq(p.n_drop, 0);
	ck_assert_uint_eq(p.n_drop_elsewhere, 1);
	ck_assert_str_eq(p.drop_elsewhere[0], "node_3_b");

	/* Still active (on its way to node2): kept until it is not. */
	have[1].active = true;
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_drop_elsewhere, 0);
	ck_assert_uint_eq(p.n_drop, 0);

	/* On node2, the upstream, it is wanted like every member's. */
	in = input(false, NULL, 0);
	in.self = "node2";
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 2);
	ck_assert_str_eq(p.create[0], "node1");
	ck_assert_str_eq(p.create[1], "node_3_b");

	/* node2 stopped: Node-3.b follows the leader, which wants its slot. */
	snprintf(view.members[1].state, sizeof(view.members[1].state), "stopped");
	in = input(true, have, 1);
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 2);
	ck_assert_str_eq(p.create[0], "node_3_b");

	/* nostream: no slot on the primary. */
	snprintf(view.members[1].state, sizeof(view.members[1].state), "running");
	view.members[2].replicatefrom[0] = '\0';
	view.members[2].nostream = true;
	in = input(true, have, 1);
	slots_plan(&in, &mem, &p);
	ck_assert_uint_eq(p.n_create, 1);
	ck_assert_str_eq(p.create[0], "backup_tool");
}
END_TEST

/* Patroni's keys in the plan, one row each: use_slots, ignore_slots and
 * permanent logical slots, as a primary or a replica with the slots it
 * has. Lists are ' '-joined names. */
static const struct dcs_logical_slot logical[2] = {
	{ (char *)"cdc", (char *)"app", (char *)"pgoutput" },
	{ (char *)"audit", (char *)"postgres", (char *)"test_decoding" },
};
static const struct dcs_slot_matcher ign_name[1] = { { (char *)"debezium", NULL, NULL, NULL } };
static const struct dcs_slot_matcher ign_phys[1] = { { NULL, (char *)"physical", NULL, NULL } };
static const struct dcs_slot_matcher ign_plugin[1] = { { NULL, (char *)"logical", NULL, (char *)"pgoutput" } };
static const struct dcs_slot_matcher ign_node2[2] = { { (char *)"xyz", NULL, NULL, NULL },
	                                              { (char *)"node2", (char *)"physical", NULL, NULL } };

static const struct patroni_slot_case {
	const char *name;
	bool primary, no_slots;
	const struct dcs_slot_matcher *ignore;
	size_t n_ignore;
	bool with_logical;
	const char *create, *drop, *create_logical;
} patroni_slot_cases[] = {
	{ "use_slots: members' and permanent ones made", true, false, NULL, 0, false, "node_3_b backup_tool", "", "" },
	{ "use_slots false: none made, members' inactive dropped at once", true, true, NULL, 0, true, "", "node2", "" },
	{ "use_slots false on a replica too", false, true, NULL, 0, false, "", "node2", "" },
	{ "ignore by name: never dropped", true, true, ign_name, 1, false, "", "node2", "" },
	{ "ignore physical: neither created nor dropped", true, true, ign_phys, 1, false, "", "", "" },
	{ "ignore a member's slot: kept", true, true, ign_node2, 2, false, "", "", "" },
	{ "ignore physical on a primary: nothing created", true, false, ign_phys, 1, false, "", "", "" },
	{ "logical slots on the primary, the existing one kept", true, false, NULL, 0, true, "node_3_b backup_tool", "",
	  "audit" },
	{ "logical slots: none on a replica", false, false, NULL, 0, true, "node_3_b", "", "" },
	{ "an ignored logical slot is not created", true, false, ign_plugin, 1, true, "node_3_b backup_tool", "",
	  "audit" },
};

static void join(char *buf, size_t len, const char (*names)[64], size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "", names[i]);
}

START_TEST(test_patroni_keys)
{
	const struct patroni_slot_case *c = &patroni_slot_cases[_i];
	/* node2's slot (inactive), an operator's debezium slot (inactive) */
	struct pg_slot have[2] = { { "node2", false, 5000 }, { "debezium", false, 1000 } };
	/* cdc exists already (wrongly on a replica: never dropped by baton) */
	struct pg_logical_slot have_logical[1] = { { "cdc", "app", "pgoutput", false } };
	struct slots_memory mem;
	struct slots_plan p;
	struct slots_input in;
	char buf[512], names[SLOTS_MAX][64];

	members();
	memset(&mem, 0, sizeof(mem));
	in = input(c->primary, have, 2);
	in.no_slots = c->no_slots;
	in.ignore = c->ignore;
	in.n_ignore = c->n_ignore;
	if (c->with_logical) {
		in.logical = logical;
		in.n_logical = 2;
		in.existing_logical = have_logical;
		in.n_existing_logical = 1;
	}
	slots_plan(&in, &mem, &p);
	join(buf, sizeof(buf), (const char(*)[64])p.create, p.n_create);
	ck_assert_msg(strcmp(buf, c->create) == 0, "%s: create '%s', want '%s'", c->name, buf, c->create);
	join(buf, sizeof(buf), (const char(*)[64])p.drop, p.n_drop);
	ck_assert_msg(strcmp(buf, c->drop) == 0, "%s: drop '%s', want '%s'", c->name, buf, c->drop);
	for (size_t i = 0; i < p.n_create_logical; i++)
		snprintf(names[i], 64, "%s", p.create_logical[i].name);
	join(buf, sizeof(buf), (const char(*)[64])names, p.n_create_logical);
	ck_assert_msg(strcmp(buf, c->create_logical) == 0, "%s: create logical '%s', want '%s'", c->name, buf,
	              c->create_logical);
	if (p.n_create_logical > 0) {
		ck_assert_str_eq(p.create_logical[0].database, "postgres");
		ck_assert_str_eq(p.create_logical[0].plugin, "test_decoding");
	}
	/* debezium (no member's) waits out the grace unless ignored */
	if (!c->ignore)
		ck_assert_msg(mem.n >= 1, "%s: debezium not remembered", c->name);
}
END_TEST

START_TEST(test_ignored_matchers)
{
	static const struct dcs_slot_matcher m[2] = { { NULL, (char *)"logical", (char *)"app", NULL },
		                                      { (char *)"keep", NULL, NULL, NULL } };

	ck_assert(slots_ignored(m, 2, "x", "logical", "app", "pgoutput"));
	ck_assert(!slots_ignored(m, 2, "x", "logical", "other", "pgoutput"));
	ck_assert(!slots_ignored(m, 2, "x", "physical", NULL, NULL));
	ck_assert(slots_ignored(m, 2, "keep", "physical", NULL, NULL));
	ck_assert(!slots_ignored(m, 1, "keep", "physical", NULL, NULL));
	ck_assert(!slots_ignored(NULL, 0, "keep", "physical", NULL, NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("slots");
	TCase *tc = tcase_create("plan");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_member_slot_names);
	tcase_add_test(tc, test_primary_creates);
	tcase_add_test(tc, test_unconfirmed_members);
	tcase_add_test(tc, test_replica_advances);
	tcase_add_test(tc, test_standby_leader_permanent);
	tcase_add_test(tc, test_grace);
	tcase_add_test(tc, test_cascaded_members);
	tcase_add_loop_test(tc, test_patroni_keys, 0,
	                    (int)(sizeof(patroni_slot_cases) / sizeof(patroni_slot_cases[0])));
	tcase_add_test(tc, test_ignored_matchers);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
