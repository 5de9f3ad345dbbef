/*
 * check_clone.c - replica creation (issue 14): the order of the methods as
 * a table (ha_clone_next), rule 8 of ha_decide with a plan (method list x
 * leader present/absent x no_leader x the method that failed last -> the
 * next action), the reinit with keep_data, the clonefrom source, and the
 * command lines pg/ builds (pg_words_split, pg_replica_argv_build,
 * pg_basebackup_argv_build) and the recovery settings dropped from
 * postgresql.auto.conf (pg_auto_conf_filter). All pure: nothing runs.
 * Bootstrap from a backup: rule 5 after a failed one, the restore's
 * parameters, the recovery settings and signal files written into a
 * restored data directory (a temporary one), and the move aside.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/ha.h"
#include "agent/ha_clone.h"
#include "pg/pg_data.h"
#include "pg/pg_replica.h"

#define NOW 1000.0

static const struct ha_clone_method PGBR = { .kind = HA_CLONE_PGBACKREST };
static const struct ha_clone_method PGBR_NL = { .kind = HA_CLONE_PGBACKREST, .no_leader = true };
static const struct ha_clone_method PGBR_KEEP = { .kind = HA_CLONE_PGBACKREST, .keep_data = true };
static const struct ha_clone_method BB = { .kind = HA_CLONE_BASEBACKUP };
static const struct ha_clone_method BB_NL = { .kind = HA_CLONE_BASEBACKUP, .no_leader = true };

/* ---- ha_clone_next: the order ---- */

static const struct next_case {
	const char *what;
	struct ha_clone_method m[3];
	size_t n;
	int after;
	bool leader;
	int expect;
} next_cases[] = {
	{ "no list, leader: basebackup", { { 0 } }, 0, -1, true, 0 },
	{ "no list, no leader: nothing", { { 0 } }, 0, -1, false, -1 },
	{ "no list, basebackup failed: nothing left", { { 0 } }, 0, 0, true, -1 },
	{ "pgbackrest, basebackup; leader: pgbackrest first", { PGBR, BB }, 2, -1, true, 0 },
	{ "pgbackrest failed; leader: basebackup", { PGBR, BB }, 2, 0, true, 1 },
	{ "both failed: nothing left", { PGBR, BB }, 2, 1, true, -1 },
	{ "no leader, pgbackrest without no_leader: nothing", { PGBR, BB }, 2, -1, false, -1 },
	{ "no leader, pgbackrest no_leader: pgbackrest", { PGBR_NL, BB }, 2, -1, false, 0 },
	{ "no leader, pgbackrest no_leader failed: basebackup needs a leader", { PGBR_NL, BB }, 2, 0, false, -1 },
	{ "no leader, basebackup first, then pgbackrest no_leader", { BB, PGBR_NL }, 2, -1, false, 1 },
	{ "leader, basebackup first", { BB, PGBR_NL }, 2, -1, true, 0 },
	{ "basebackup failed, leader: pgbackrest", { BB, PGBR_NL }, 2, 0, true, 1 },
	{ "basebackup never runs without a leader, even marked no_leader", { BB_NL }, 1, -1, false, -1 },
	{ "pgbackrest alone failed: nothing left", { PGBR }, 1, 0, true, -1 },
};

START_TEST(test_next)
{
	const struct next_case *t = &next_cases[_i];
	struct ha_clone_plan p = { .n = t->n };

	memcpy(p.m, t->m, sizeof(t->m));
	ck_assert_msg(ha_clone_next(&p, t->after, t->leader) == t->expect, "%s: got %d, want %d", t->what,
	              ha_clone_next(&p, t->after, t->leader), t->expect);
}
END_TEST

START_TEST(test_plan_helpers)
{
	struct ha_clone_plan p = { .n = 0 };

	ck_assert_uint_eq(ha_clone_count(&p), 1);
	ck_assert_int_eq(ha_clone_method_at(&p, 0).kind, HA_CLONE_BASEBACKUP);
	ck_assert_str_eq(ha_clone_kind_name(HA_CLONE_BASEBACKUP), "basebackup");
	ck_assert_str_eq(ha_clone_kind_name(HA_CLONE_PGBACKREST), "pgbackrest");
	p.n = 2;
	p.m[0] = PGBR;
	p.m[1] = BB;
	ck_assert_uint_eq(ha_clone_count(&p), 2);
	ck_assert_int_eq(ha_clone_method_at(&p, 0).kind, HA_CLONE_PGBACKREST);
	ck_assert_int_eq(ha_clone_method_at(&p, 1).kind, HA_CLONE_BASEBACKUP);
	ck_assert_int_eq(ha_clone_method_at(&p, 7).kind, HA_CLONE_BASEBACKUP);
}
END_TEST

/* ---- rule 8 with a plan: views -> action ---- */

static void add_member(struct ha_cluster_view *c, const char *name, const char *role, uint64_t lsn)
{
	struct ha_member *m = &c->members[c->n_members++];

	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->role, sizeof(m->role), "%s", role);
	snprintf(m->state, sizeof(m->state), "running");
	snprintf(m->host, sizeof(m->host), "127.0.0.1");
	m->port = 5432;
	m->timeline = 1;
	m->lsn = lsn;
}

/* node2 (this node) with an empty data directory; node1 leads. */
static void base(struct ha_cluster_view *c, struct ha_local_view *l)
{
	memset(c, 0, sizeof(*c));
	memset(l, 0, sizeof(*l));
	c->etcd_ok = true;
	c->init_key_present = true;
	c->sysid = 42;
	c->has_leader = true;
	snprintf(c->leader, sizeof(c->leader), "node1");
	c->leader_lease = 100;
	c->ttl = 5;
	c->loop_wait = 1;
	c->retry_timeout = 2;
	add_member(c, "node1", "primary", 5000);
	add_member(c, "node3", "replica", 4000);
	l->name = "node2";
	l->lease_id = 200;
	l->lease_sent = NOW - 0.5;
	l->datadir = HA_DATADIR_EMPTY;
}

static const struct rule_case {
	const char *what;
	struct ha_clone_method m[2];
	size_t n;
	bool leader;
	int failed;        /* 1 + index, 0 none */
	bool job_failed;   /* the clone job failed ... */
	double failed_ago; /* ... this many seconds ago */
	bool reinit;       /* a reinit request on a valid data directory */
	enum ha_action_kind kind;
	int method;              /* CLONE/REINIT: the method index */
	const char *leader_name; /* expected action leader ("" none) */
	const char *reason;      /* a part of the reason */
} rule_cases[] = {
	{ "default plan, leader",
	  { { 0 } },
	  0,
	  true,
	  0,
	  false,
	  0,
	  false,
	  HA_CLONE,
	  0,
	  "node1",
	  "creating a replica with basebackup (method 1 of 1), leader node1" },
	{ "default plan, no leader", { { 0 } }, 0, false, 0, false, 0, false, HA_WAIT, 0, "", "no leader to clone from" },
	{ "default plan, basebackup failed 1 s ago: backoff",
	  { { 0 } },
	  0,
	  true,
	  1,
	  true,
	  1,
	  false,
	  HA_WAIT,
	  0,
	  "",
	  "creating a replica failed (every method); trying again" },
	{ "default plan, basebackup failed long ago: again",
	  { { 0 } },
	  0,
	  true,
	  1,
	  true,
	  100,
	  false,
	  HA_CLONE,
	  0,
	  "node1",
	  "basebackup (method 1 of 1)" },
	{ "old-style failure record (no method), 1 s ago: backoff",
	  { { 0 } },
	  0,
	  true,
	  0,
	  true,
	  1,
	  false,
	  HA_WAIT,
	  0,
	  "",
	  "trying again" },
	{ "pgbackrest first",
	  { PGBR, BB },
	  2,
	  true,
	  0,
	  false,
	  0,
	  false,
	  HA_CLONE,
	  0,
	  "node1",
	  "pgbackrest (method 1 of 2)" },
	{ "pgbackrest failed just now: basebackup at once",
	  { PGBR, BB },
	  2,
	  true,
	  1,
	  true,
	  0.1,
	  false,
	  HA_CLONE,
	  1,
	  "node1",
	  "basebackup (method 2 of 2)" },
	{ "both failed just now: backoff", { PGBR, BB }, 2, true, 2, true, 0.1, false, HA_WAIT, 0, "", "every method" },
	{ "both failed long ago: pgbackrest again",
	  { PGBR, BB },
	  2,
	  true,
	  2,
	  true,
	  100,
	  false,
	  HA_CLONE,
	  0,
	  "node1",
	  "pgbackrest (method 1 of 2)" },
	{ "no leader, pgbackrest without no_leader: wait",
	  { PGBR, BB },
	  2,
	  false,
	  0,
	  false,
	  0,
	  false,
	  HA_WAIT,
	  0,
	  "",
	  "no leader to clone from" },
	{ "no leader, pgbackrest no_leader: restore",
	  { PGBR_NL, BB },
	  2,
	  false,
	  0,
	  false,
	  0,
	  false,
	  HA_CLONE,
	  0,
	  "",
	  "while no member leads (no_leader)" },
	{ "no leader, no_leader restore failed just now: wait (backoff)",
	  { PGBR_NL, BB },
	  2,
	  false,
	  1,
	  true,
	  0.1,
	  false,
	  HA_WAIT,
	  0,
	  "",
	  "every method" },
	{ "no leader, no_leader restore failed long ago: again",
	  { PGBR_NL, BB },
	  2,
	  false,
	  1,
	  true,
	  100,
	  false,
	  HA_CLONE,
	  0,
	  "",
	  "pgbackrest" },
	{ "reinit, default plan: remove and clone",
	  { { 0 } },
	  0,
	  true,
	  0,
	  false,
	  0,
	  true,
	  HA_REINIT,
	  0,
	  "node1",
	  "removing the data directory to clone from node1" },
	{ "reinit, no leader, default plan: wait",
	  { { 0 } },
	  0,
	  false,
	  0,
	  false,
	  0,
	  true,
	  HA_WAIT,
	  0,
	  "",
	  "no leader to clone from" },
	{ "reinit, keep_data first: over the old data",
	  { PGBR_KEEP, BB },
	  2,
	  true,
	  0,
	  false,
	  0,
	  true,
	  HA_REINIT,
	  0,
	  "node1",
	  "over the data directory (keep_data)" },
	{ "reinit, no leader, no_leader restore",
	  { PGBR_NL, BB },
	  2,
	  false,
	  0,
	  false,
	  0,
	  true,
	  HA_REINIT,
	  0,
	  "",
	  "restore it with pgbackrest (no_leader)" },
};

START_TEST(test_rule)
{
	const struct rule_case *t = &rule_cases[_i];
	struct ha_cluster_view c;
	struct ha_local_view l;
	struct ha_action a;

	base(&c, &l);
	l.clone.n = t->n;
	memcpy(l.clone.m, t->m, sizeof(t->m));
	l.clone.failed = t->failed;
	if (!t->leader) {
		c.has_leader = false;
		c.leader[0] = '\0';
		c.leader_lease = 0;
		l.leader_absent_since = NOW - 1;
	}
	if (t->job_failed) {
		l.job_failed = HA_JOB_CLONE;
		l.job_failed_at = NOW - t->failed_ago;
	}
	if (t->reinit) {
		l.datadir = HA_DATADIR_VALID;
		l.datadir_sysid = 42;
		l.reinit_requested = true;
	}
	a = ha_decide(&c, &l, NOW);
	ck_assert_msg(a.kind == t->kind, "%s: got %s (%s)", t->what, ha_action_name(a.kind), a.reason);
	ck_assert_msg(strstr(a.reason, t->reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", t->what, a.reason,
	              t->reason);
	if (a.kind == HA_CLONE || a.kind == HA_REINIT) {
		ck_assert_msg(a.clone_method == t->method, "%s: method %d, want %d", t->what, a.clone_method,
		              t->method);
		ck_assert_msg(strcmp(a.leader, t->leader_name) == 0, "%s: leader \"%s\"", t->what, a.leader);
	}
}
END_TEST

/* ---- the clonefrom source ---- */

START_TEST(test_source)
{
	struct ha_cluster_view c;
	struct ha_local_view l;

	base(&c, &l);
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node1"); /* nobody tagged: the leader */
	c.members[1].clonefrom = true;                           /* node3, a running replica */
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node3");
	ck_assert_str_eq(ha_clone_source(&c, "node3"), "node1"); /* never from itself */
	snprintf(c.members[1].state, sizeof(c.members[1].state), "starting");
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node1"); /* not running */
	snprintf(c.members[1].state, sizeof(c.members[1].state), "running");
	c.members[1].host[0] = '\0';
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node1"); /* no address */
	snprintf(c.members[1].host, sizeof(c.members[1].host), "127.0.0.1");
	add_member(&c, "node4", "replica", 4500);
	c.members[2].clonefrom = true;
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node4"); /* the one furthest ahead */
	c.members[2].lsn = 4000;
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node3"); /* a tie: the first by name */
	c.members[0].clonefrom = true;                           /* the leader tagged: still itself */
	snprintf(c.members[1].role, sizeof(c.members[1].role), "uninitialized");
	snprintf(c.members[2].role, sizeof(c.members[2].role), "primary");
	ck_assert_str_eq(ha_clone_source(&c, "node2"), "node1");
	c.has_leader = false;
	ck_assert_ptr_null(ha_clone_source(&c, "node2"));
}
END_TEST

/* ---- the command lines ---- */

static const struct split_case {
	const char *cmd;
	size_t n; /* 0: refused */
	const char *words[6];
	const char *err;
} split_cases[] = {
	{ "/usr/bin/pgbackrest --stanza=main --delta restore --type=standby",
	  5,
	  { "/usr/bin/pgbackrest", "--stanza=main", "--delta", "restore", "--type=standby" },
	  NULL },
	{ "  /bin/x\t 'a b'  \"c \\\"d\\\"\" e\\ f ", 4, { "/bin/x", "a b", "c \"d\"", "e f" }, NULL },
	{ "/bin/x --opt='a|b;c' \"$\"", 0, { NULL }, "$ inside \"...\" at character 23" },
	{ "/bin/x --opt='a|b;c'", 2, { "/bin/x", "--opt=a|b;c" }, NULL },
	{ "/bin/x a''b \"\"", 3, { "/bin/x", "ab", "" }, NULL },
	{ "/bin/x; rm -rf /", 0, { NULL }, "';' at character 7" },
	{ "/bin/x $HOME", 0, { NULL }, "'$' at character 8" },
	{ "/bin/x `id`", 0, { NULL }, "'`' at character 8" },
	{ "/bin/x > /tmp/f", 0, { NULL }, "'>' at character 8" },
	{ "/bin/x *.conf", 0, { NULL }, "'*' at character 8" },
	{ "/bin/x ~/f", 0, { NULL }, "'~' at character 8" },
	{ "/bin/x a~b #c", 0, { NULL }, "'#' at character 12" },
	{ "/bin/x 'open", 0, { NULL }, "unterminated ' at character 8" },
	{ "/bin/x \"open", 0, { NULL }, "unterminated \" at character 8" },
	{ "/bin/x a\\", 0, { NULL }, "trailing backslash" },
	{ "   ", 0, { NULL }, "empty command" },
	{ "/bin/x\nrm", 0, { NULL }, "line break" },
};

START_TEST(test_split)
{
	const struct split_case *t = &split_cases[_i];
	struct pg_words w;
	struct pg_err err = { "" };
	bool ok = pg_words_split(t->cmd, &w, &err);

	if (t->n == 0) {
		ck_assert_msg(!ok, "\"%s\" split", t->cmd);
		ck_assert_msg(strstr(err.msg, t->err) != NULL, "\"%s\": %s", t->cmd, err.msg);
		ck_assert_ptr_null(w.buf);
		return;
	}
	ck_assert_msg(ok, "\"%s\": %s", t->cmd, err.msg);
	ck_assert_uint_eq(w.n, t->n);
	for (size_t i = 0; i < t->n; i++)
		ck_assert_str_eq(w.argv[i], t->words[i]);
	ck_assert_ptr_null(w.argv[t->n]);
	pg_words_free(&w);
}
END_TEST

START_TEST(test_replica_argv)
{
	struct pg_replica_argv a;
	struct pg_err err = { "" };
	struct pg_replica_cmd c = { .command = "/usr/bin/pgbackrest --stanza=main --delta restore",
		                    .scope = "main",
		                    .datadir = "/var/lib/pg/d",
		                    .role = "replica",
		                    .connstring = "host=10.0.0.1 port=5432 user=replicator" };
	const char *want[] = { "/usr/bin/pgbackrest",
		               "--stanza=main",
		               "--delta",
		               "restore",
		               "--scope=main",
		               "--datadir=/var/lib/pg/d",
		               "--role=replica",
		               "--connstring=host=10.0.0.1 port=5432 user=replicator",
		               NULL };

	ck_assert_msg(pg_replica_argv_build(&a, &c, &err), "%s", err.msg);
	for (size_t i = 0; want[i]; i++)
		ck_assert_str_eq(a.argv[i], want[i]);
	ck_assert_ptr_null(a.argv[8]);
	pg_replica_argv_free(&a);

	c.connstring = NULL; /* no leader: no --connstring */
	ck_assert(pg_replica_argv_build(&a, &c, &err));
	ck_assert_uint_eq(a.n, 7);
	ck_assert_str_eq(a.argv[6], "--role=replica");
	ck_assert_ptr_null(a.argv[7]);
	pg_replica_argv_free(&a);

	c.no_params = true; /* the words alone */
	ck_assert(pg_replica_argv_build(&a, &c, &err));
	ck_assert_uint_eq(a.n, 4);
	ck_assert_str_eq(a.argv[3], "restore");
	ck_assert_ptr_null(a.argv[4]);
	pg_replica_argv_free(&a);

	c.command = "pgbackrest restore"; /* not absolute */
	ck_assert(!pg_replica_argv_build(&a, &c, &err));
	ck_assert_msg(strstr(err.msg, "\"pgbackrest\" is not an absolute path") != NULL, "%s", err.msg);
	pg_replica_argv_free(&a); /* harmless after a failure */
}
END_TEST

START_TEST(test_basebackup_argv)
{
	struct pg_basebackup_argv a;
	struct pg_err err = { "" };
	struct pg_basebackup_opts o = { .max_rate = "100M", .checkpoint = "spread" };
	const char *want[] = {
		"/b/pg_basebackup", "-D", "/d",     "-X", "stream", "--checkpoint=spread", "--max-rate=100M",
		"--no-password",    "-d", "host=h", NULL
	};
	char why[120];

	ck_assert_msg(pg_basebackup_argv_build(&a, "/b/pg_basebackup", "/d", "host=h", &o, &err), "%s", err.msg);
	for (size_t i = 0; want[i]; i++)
		ck_assert_str_eq(a.argv[i], want[i]);
	ck_assert_ptr_null(a.argv[10]);

	/* Defaults: the fast checkpoint baton always asked for, no rate limit. */
	ck_assert(pg_basebackup_argv_build(&a, "/b/pg_basebackup", "/d", "host=h", NULL, &err));
	ck_assert_str_eq(a.argv[5], "--checkpoint=fast");
	ck_assert_str_eq(a.argv[6], "--no-password");
	ck_assert_ptr_null(a.argv[9]);

	o.checkpoint = "slow";
	ck_assert(!pg_basebackup_argv_build(&a, "/b/pg_basebackup", "/d", "host=h", &o, &err));
	ck_assert_msg(strstr(err.msg, "checkpoint must be \"fast\" or \"spread\"") != NULL, "%s", err.msg);
	o.checkpoint = NULL;
	o.max_rate = "1G";
	ck_assert(!pg_basebackup_argv_build(&a, "/b/pg_basebackup", "/d", "host=h", &o, &err));
	ck_assert_msg(strstr(err.msg, "max-rate \"1G\"") != NULL, "%s", err.msg);

	ck_assert(pg_basebackup_rate_ok("32", why, sizeof(why)));
	ck_assert(pg_basebackup_rate_ok("1024M", why, sizeof(why)));
	ck_assert(pg_basebackup_rate_ok("500k", why, sizeof(why)));
	ck_assert(!pg_basebackup_rate_ok("31", why, sizeof(why)));
	ck_assert(!pg_basebackup_rate_ok("1025M", why, sizeof(why)));
	ck_assert(!pg_basebackup_rate_ok("-5", why, sizeof(why)));
	ck_assert(!pg_basebackup_rate_ok("", why, sizeof(why)));
	ck_assert(!pg_basebackup_rate_ok("10MB", why, sizeof(why)));
}
END_TEST

START_TEST(test_auto_conf_filter)
{
	const char *in = "# Do not edit this file manually!\n"
	                 "work_mem = '8MB'\n"
	                 "restore_command = 'pgbackrest --stanza=main archive-get %f \"%p\"'\n"
	                 "  Primary_Conninfo = 'host=old'\n"
	                 "recovery_target_timeline = 'current'\n"
	                 "recovery_target = 'immediate'\n"
	                 "primary_slot_name 'x'\n"
	                 "restore_commands_are_not_a_guc = 1\n"
	                 "# restore_command = 'commented'\n"
	                 "max_connections = 200";
	char out[512], removed[256];

	ck_assert_uint_eq(pg_auto_conf_filter(in, out, removed, sizeof(removed)), 5);
	ck_assert_str_eq(out, "# Do not edit this file manually!\n"
	                      "work_mem = '8MB'\n"
	                      "restore_commands_are_not_a_guc = 1\n"
	                      "# restore_command = 'commented'\n"
	                      "max_connections = 200");
	ck_assert_str_eq(
	        removed,
	        "restore_command, Primary_Conninfo, recovery_target_timeline, recovery_target, primary_slot_name");
	ck_assert_uint_eq(pg_auto_conf_filter("work_mem = 1\n", out, removed, sizeof(removed)), 0);
	ck_assert_str_eq(out, "work_mem = 1\n");
	ck_assert_str_eq(removed, "");
	/* A short buffer for the names still filters every line. */
	ck_assert_uint_eq(pg_auto_conf_filter(in, out, removed, 8), 5);
	ck_assert_uint_lt(strlen(removed), 8);
}
END_TEST

/* ---- bootstrap from a backup ---- */

/* Rule 5: a member whose bootstrap from a backup failed does not race for
 * the initialize key again (each try would move a data directory aside);
 * without that flag it races as usual. */
START_TEST(test_boot_given_up_rule)
{
	struct ha_cluster_view c;
	struct ha_local_view l;
	struct ha_action a;

	base(&c, &l);
	c.init_key_present = false;
	c.sysid = 0;
	c.has_leader = false;
	c.leader[0] = '\0';
	a = ha_decide(&c, &l, NOW);
	ck_assert_msg(a.kind == HA_RACE_INIT, "got %s (%s)", ha_action_name(a.kind), a.reason);
	l.bootstrap_given_up = true;
	l.job_failed = HA_JOB_BOOTSTRAP;
	l.job_failed_at = NOW - 3600; /* long past the backoff: still no race */
	a = ha_decide(&c, &l, NOW);
	ck_assert_msg(a.kind == HA_WAIT, "got %s (%s)", ha_action_name(a.kind), a.reason);
	ck_assert_str_eq(a.reason, "cluster not initialized; our bootstrap from a backup failed (see the log): not "
	                           "racing again until the agent is restarted");
	/* Once another member bootstrapped, it clones as any member would. */
	base(&c, &l);
	l.bootstrap_given_up = true;
	a = ha_decide(&c, &l, NOW);
	ck_assert_msg(a.kind == HA_CLONE, "got %s (%s)", ha_action_name(a.kind), a.reason);
}
END_TEST

/* Patroni's custom bootstrap gets --scope and --datadir, no --role. */
START_TEST(test_boot_argv)
{
	struct pg_replica_argv a;
	struct pg_err err = { "" };
	struct pg_replica_cmd c = { .command = "/usr/local/bin/restore-it 'a b'", .scope = "b", .datadir = "/d" };

	ck_assert_msg(pg_replica_argv_build(&a, &c, &err), "%s", err.msg);
	ck_assert_uint_eq(a.n, 4);
	ck_assert_str_eq(a.argv[1], "a b");
	ck_assert_str_eq(a.argv[2], "--scope=b");
	ck_assert_str_eq(a.argv[3], "--datadir=/d");
	ck_assert_ptr_null(a.argv[4]);
	pg_replica_argv_free(&a);
	c.datadir = NULL;
	ck_assert(!pg_replica_argv_build(&a, &c, &err));
	ck_assert_str_eq(err.msg, "scope and datadir are required");
	pg_replica_argv_free(&a);
}
END_TEST

static const struct boot_render_case {
	struct pg_boot_recovery r;
	const char *expect; /* NULL: refused */
} boot_render_cases[] = {
	{ { .restore_command = "/bin/get %f \"%p\"" },
	  "restore_command = '/bin/get %f \"%p\"'\nrecovery_target_action = 'promote'\n" },
	{ { .target_name = "recovery_target_time", .target_value = "2026-12-03 20:00:01.5+00", .inclusive = true },
	  "recovery_target_time = '2026-12-03 20:00:01.5+00'\nrecovery_target_inclusive = 'on'\n"
	  "recovery_target_action = 'promote'\n" },
	{ { .restore_command = "/bin/get", .target_name = "recovery_target_name", .target_value = "it's" },
	  "restore_command = '/bin/get'\nrecovery_target_name = 'it''s'\nrecovery_target_inclusive = 'off'\n"
	  "recovery_target_action = 'promote'\n" },
	/* the restore's own settings rule: only the promotion is added */
	{ { .restore_command = "/bin/get",
	    .target_name = "recovery_target_lsn",
	    .target_value = "0/3000000",
	    .keep_existing = true },
	  "recovery_target_action = 'promote'\n" },
	{ { .restore_command = "/bin/get\nshared_preload_libraries = 'x'" }, NULL },
};

START_TEST(test_boot_recovery_render)
{
	const struct boot_render_case *t = &boot_render_cases[_i];
	char out[512];
	struct pg_err err = { "" };
	bool ok = pg_boot_recovery_render(&t->r, out, sizeof(out), &err);

	if (t->expect == NULL) {
		ck_assert_msg(!ok, "case %d rendered", _i);
		ck_assert_str_eq(err.msg, "restore_command holds a line break");
		return;
	}
	ck_assert_msg(ok, "case %d: %s", _i, err.msg);
	ck_assert_str_eq(out, t->expect);
	ck_assert(!pg_boot_recovery_render(&t->r, out, 20, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "do not fit"));
}
END_TEST

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static bool has_file(const char *dir, const char *name)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void read_back(const char *dir, const char *name, char *buf, size_t len)
{
	char path[800];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* What pgBackRest leaves (its restore_command and a target, a standby
 * signal, no newline at the end) becomes baton's recovery to a promotion. */
START_TEST(test_boot_recovery_prepare)
{
	char dir[] = "/tmp/check_clone_boot_XXXXXX", text[1024], removed[128], moved[600], parent[600];
	struct pg_boot_recovery r = { .restore_command = "/bin/get %f %p",
		                      .target_name = "recovery_target_xid",
		                      .target_value = "1234",
		                      .inclusive = false };
	struct pg_err err = { "" };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	put_file(dir, "postgresql.auto.conf",
	         "# Do not edit\nwork_mem = '8MB'\nrestore_command = 'pgbackrest --stanza=a archive-get %f \"%p\"'\n"
	         "recovery_target_time = '2020-01-01'\nmax_connections = 50");
	put_file(dir, "standby.signal", "");
	ck_assert_msg(pg_boot_recovery_prepare(dir, &r, removed, sizeof(removed), &err), "%s", err.msg);
	ck_assert_str_eq(removed, "restore_command, recovery_target_time");
	read_back(dir, "postgresql.auto.conf", text, sizeof(text));
	ck_assert_str_eq(text, "# Do not edit\nwork_mem = '8MB'\nmax_connections = 50\n"
	                       "restore_command = '/bin/get %f %p'\nrecovery_target_xid = '1234'\n"
	                       "recovery_target_inclusive = 'off'\nrecovery_target_action = 'promote'\n");
	ck_assert(!has_file(dir, "standby.signal"));
	ck_assert(has_file(dir, "recovery.signal"));
	ck_assert(pg_boot_recovery_pending(dir));

	/* keep_existing: the restore's lines stay, the promotion is added */
	put_file(dir, "postgresql.auto.conf", "restore_command = 'x'\n");
	r.keep_existing = true;
	ck_assert_msg(pg_boot_recovery_prepare(dir, &r, removed, sizeof(removed), &err), "%s", err.msg);
	ck_assert_str_eq(removed, "");
	read_back(dir, "postgresql.auto.conf", text, sizeof(text));
	ck_assert_str_eq(text, "restore_command = 'x'\nrecovery_target_action = 'promote'\n");

	/* after the promotion the agent strips them all, and the marker */
	ck_assert(pg_boot_recovery_done(dir, removed, sizeof(removed), &err));
	ck_assert_str_eq(removed, "restore_command, recovery_target_action");
	ck_assert(!pg_boot_recovery_pending(dir));
	read_back(dir, "postgresql.auto.conf", text, sizeof(text));
	ck_assert_str_eq(text, "");

	/* a failed bootstrap's data directory is moved aside, not removed */
	ck_assert_msg(pg_datadir_move_aside(dir, moved, sizeof(moved), &err), "%s", err.msg);
	ck_assert_int_eq(strncmp(moved, dir, strlen(dir)), 0);
	ck_assert_int_eq(strncmp(moved + strlen(dir), ".failed-20", 10), 0);
	ck_assert(access(dir, F_OK) != 0);
	ck_assert(has_file(moved, "recovery.signal"));
	/* a second one in the same second gets another name */
	ck_assert(mkdir(dir, 0700) == 0);
	snprintf(parent, sizeof(parent), "%s", moved);
	ck_assert_msg(pg_datadir_move_aside(dir, moved, sizeof(moved), &err), "%s", err.msg);
	ck_assert_str_ne(moved, parent);
	ck_assert(rmdir(moved) == 0);
	/* nothing to move: fine, no name */
	ck_assert(pg_datadir_move_aside(dir, moved, sizeof(moved), &err));
	ck_assert_str_eq(moved, "");
	ck_assert(!pg_datadir_move_aside("relative", moved, sizeof(moved), &err));
	ck_assert(!pg_datadir_move_aside("/", moved, sizeof(moved), &err));
	ck_assert(pg_datadir_remove(parent, &err));
}
END_TEST

static Suite *clone_suite(void)
{
	Suite *s = suite_create("clone");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_next, 0, (int)(sizeof(next_cases) / sizeof(next_cases[0])));
	tcase_add_test(tc, test_plan_helpers);
	tcase_add_loop_test(tc, test_rule, 0, (int)(sizeof(rule_cases) / sizeof(rule_cases[0])));
	tcase_add_test(tc, test_source);
	tcase_add_test(tc, test_boot_given_up_rule);
	suite_add_tcase(s, tc);
	tc = tcase_create("pg");
	tcase_add_loop_test(tc, test_split, 0, (int)(sizeof(split_cases) / sizeof(split_cases[0])));
	tcase_add_test(tc, test_replica_argv);
	tcase_add_test(tc, test_basebackup_argv);
	tcase_add_test(tc, test_auto_conf_filter);
	tcase_add_test(tc, test_boot_argv);
	tcase_add_loop_test(tc, test_boot_recovery_render, 0,
	                    (int)(sizeof(boot_render_cases) / sizeof(boot_render_cases[0])));
	tcase_add_test(tc, test_boot_recovery_prepare);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(clone_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
