/*
 * check_batonctl.c - the pure parts of batonctl's Patroni habits: the YAML
 * emitter (quoting and escaping, so that the output parses back to the same
 * values), the cluster name taken as the first positional argument, remove's
 * typed confirmations, edit-config's dotted postgresql.parameters.* keys,
 * and the --role names.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/batonctl/common.h"

/* yaml_dump of the JSON text j equals want. */
static void yaml_is(const char *j, const char *want)
{
	json_error_t jerr;
	json_t *v = json_loads(j, JSON_DECODE_ANY, &jerr);
	char *got;

	ck_assert_msg(v != NULL, "bad JSON in the test: %s", jerr.text);
	got = yaml_dump(v);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
	json_decref(v);
}

START_TEST(yaml_plain_and_quoted_scalars)
{
	yaml_is("{\"name\":\"node1\",\"port\":5432,\"lag\":null,\"leader\":true}",
	        "name: node1\nport: 5432\nlag: null\nleader: true\n");
	/* strings YAML would read as something else keep their quotes */
	yaml_is("[\"yes\",\"off\",\"null\",\"~\",\"\",\"5\",\"1e3\",\"0x1F\",\"12:30\",\"2.5\"]",
	        "- \"yes\"\n- \"off\"\n- \"null\"\n- \"~\"\n- \"\"\n- \"5\"\n- \"1e3\"\n- \"0x1F\"\n- \"12:30\"\n"
	        "- \"2.5\"\n");
	/* indicators, ": " and " #" inside, spaces at either end */
	yaml_is("[\"-x\",\"*a\",\"x: y\",\"a #b\",\" a\",\"a \",\"a:\",\"{x}\",\"'q\"]",
	        "- \"-x\"\n- \"*a\"\n- \"x: y\"\n- \"a #b\"\n- \" a\"\n- \"a \"\n- \"a:\"\n- \"{x}\"\n- \"'q\"\n");
	/* ordinary text stays plain, inner colons and dashes too */
	yaml_is("[\"16MB\",\"host=a port=1\",\"a-b\",\"http://x:1/y\",\"v2026-12-03T16:00:00Z\"]",
	        "- 16MB\n- host=a port=1\n- a-b\n- http://x:1/y\n- v2026-12-03T16:00:00Z\n");
	/* timestamps YAML 1.1 would read as dates */
	yaml_is("[\"2026-12-03\",\"2026-12-03T16:00:00Z\",\"2026-12-03 16:00:00.5 +01:00\"]",
	        "- \"2026-12-03\"\n- \"2026-12-03T16:00:00Z\"\n- \"2026-12-03 16:00:00.5 +01:00\"\n");
	/* a real keeps a point; 2.0 is not read back as the integer 2 */
	yaml_is("[2.0, 0.5]", "- 2.0\n- 0.5\n");
	/* YAML 1.1's value tag and its infinities and NaNs in any case */
	yaml_is("[\"=\",\".NaN\",\"+.Inf\",\".INF\",\".nanx\"]",
	        "- \"=\"\n- \".NaN\"\n- \"+.Inf\"\n- \".INF\"\n- .nanx\n");
	/* document markers */
	yaml_is("[\"...\",\"---\",\"..x\"]", "- \"...\"\n- \"---\"\n- ..x\n");
}
END_TEST

START_TEST(yaml_escapes_controls_and_non_ascii)
{
	yaml_is("[\"a\\nb\",\"t\\tx\",\"q\\\"\\\\\",\"\\u001b[2J\",\"\\u007f\"]",
	        "- \"a\\nb\"\n- \"t\\tx\"\n- q\"\\\n- \"\\x1b[2J\"\n- \"\\x7f\"\n");
	/* quotes and backslashes are escaped once the string needs quotes */
	yaml_is("[\" q\\\"\\\\\"]", "- \" q\\\"\\\\\"\n");
	yaml_is("[\"caf\\u00e9\",\"\\u20ac\",\"\\ud83d\\ude00\"]",
	        "- \"caf\\u00e9\"\n- \"\\u20ac\"\n- \"\\U0001f600\"\n");
	/* keys are quoted by the same rule */
	yaml_is("{\"on\":1,\"a b\":2,\"\":3}", "\"on\": 1\na b: 2\n\"\": 3\n");
}
END_TEST

START_TEST(yaml_nesting)
{
	yaml_is("{\"ttl\":30,\"postgresql\":{\"parameters\":{\"work_mem\":\"8MB\"}},\"slots\":[\"a\",\"b\"],"
	        "\"e\":{},\"l\":[]}",
	        "ttl: 30\npostgresql:\n  parameters:\n    work_mem: 8MB\nslots:\n- a\n- b\ne: {}\nl: []\n");
	yaml_is("[{\"name\":\"n1\",\"tags\":{\"nosync\":false},\"replicas\":[{\"name\":\"n2\"}]},[1,[2]]]",
	        "- name: n1\n  tags:\n    nosync: false\n  replicas:\n  - name: n2\n- - 1\n  - - 2\n");
	yaml_is("[]", "[]\n");
	yaml_is("\"x\"", "x\n");
}
END_TEST

/* scope_take on the positional arguments args (NULL-terminated). */
static int take(const char *scope, const char **args, size_t min_pos, size_t max_pos, char ***pos, size_t *n,
                bool *given, char *err, size_t len)
{
	*n = 0;
	while (args[*n])
		(*n)++;
	*pos = (char **)args;
	return scope_take(scope, pos, n, min_pos, max_pos, given, err, len);
}

START_TEST(scope_positional)
{
	const char *none[] = { NULL }, *main_[] = { "main", NULL }, *other[] = { "other", NULL };
	const char *members[] = { "main", "node1", "node2", NULL }, *only_members[] = { "node1", "node2", NULL };
	const char *wrong_then_member[] = { "other", "node2", NULL };
	char **pos, err[256];
	size_t n;
	bool given;

	/* list: no argument, or exactly the scope */
	ck_assert_int_eq(take("main", none, 0, 0, &pos, &n, &given, err, sizeof(err)), EXIT_DONE);
	ck_assert(!given);
	ck_assert_int_eq(take("main", main_, 0, 0, &pos, &n, &given, err, sizeof(err)), EXIT_DONE);
	ck_assert(given);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(take("main", other, 0, 0, &pos, &n, &given, err, sizeof(err)), EXIT_USAGE);
	ck_assert_msg(strstr(err, "cluster 'other' is not this configuration's cluster 'main'"), "%s", err);
	/* restart: the scope first, then members; or members alone */
	ck_assert_int_eq(take("main", members, 0, 64, &pos, &n, &given, err, sizeof(err)), EXIT_DONE);
	ck_assert(given);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(pos[0], "node1");
	ck_assert_int_eq(take("main", only_members, 0, 64, &pos, &n, &given, err, sizeof(err)), EXIT_DONE);
	ck_assert(!given);
	ck_assert_uint_eq(n, 2);
	/* reinit: one member; a wrong cluster name before it is one too many */
	ck_assert_int_eq(take("main", wrong_then_member, 1, 1, &pos, &n, &given, err, sizeof(err)), EXIT_USAGE);
	ck_assert_msg(strstr(err, "cluster 'other'"), "%s", err);
	ck_assert_int_eq(take("main", main_, 1, 1, &pos, &n, &given, err, sizeof(err)), EXIT_USAGE);
	ck_assert_msg(strstr(err, "missing argument"), "%s", err);
	/* the comparison is exact */
	ck_assert_int_eq(take("Main", main_, 0, 0, &pos, &n, &given, err, sizeof(err)), EXIT_USAGE);
}
END_TEST

START_TEST(remove_confirmations)
{
	/* with a leader: cluster name, phrase, leader name */
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, "main\n", "main", "node1"), REMOVE_ASK_PHRASE);
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "Yes I am aware\n", "main", "node1"), REMOVE_ASK_LEADER);
	ck_assert_int_eq(remove_next(REMOVE_ASK_LEADER, "node1\n", "main", "node1"), REMOVE_CONFIRMED);
	/* without one the phrase ends it, and a leader answer is never right */
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "Yes I am aware", "main", NULL), REMOVE_CONFIRMED);
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "Yes I am aware\r\n", "main", ""), REMOVE_CONFIRMED);
	ck_assert_int_eq(remove_next(REMOVE_ASK_LEADER, "\n", "main", ""), -1);
	/* anything else is wrong: case, spaces, prefixes, y */
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, "Main\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, "mai\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, "main2\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, " main\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_CLUSTER, "\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "yes i am aware\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "y\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_PHRASE, "Yes I am aware.\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_ASK_LEADER, "node2\n", "main", "node1"), -1);
	ck_assert_int_eq(remove_next(REMOVE_CONFIRMED, "main\n", "main", "node1"), -1);
}
END_TEST

START_TEST(edit_config_dotted_keys)
{
	ck_assert_str_eq(edit_set_pg_param("postgresql.parameters.work_mem=8MB"), "work_mem=8MB");
	ck_assert_str_eq(edit_set_pg_param("postgresql.parameters.work_mem="), "work_mem=");
	ck_assert_ptr_null(edit_set_pg_param("postgresql.parameters.=8MB"));
	ck_assert_ptr_null(edit_set_pg_param("postgresql.parameters.work_mem"));
	ck_assert_ptr_null(edit_set_pg_param("loop_wait=2"));
	ck_assert_ptr_null(edit_set_pg_param("postgresql.use_slots=true"));
	ck_assert_ptr_null(edit_set_pg_param("postgresql.parameter.work_mem=1"));
}
END_TEST

/* site-switchover refuses only one cluster named twice: same scope and
 * namespace and a shared etcd endpoint; two sites may share a scope. */
START_TEST(site_same_cluster_needs_same_etcd)
{
	char *ha[] = { "10.0.0.1:2379", "10.0.0.2:2379" }, *hb[] = { "10.9.0.1:2379" }, *hc[] = { "10.0.0.2:2379" };
	struct baton_config x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.scope = y.scope = "main";
	x.namespace_ = y.namespace_ = "/baton";
	x.etcd.hosts = ha;
	x.etcd.n_hosts = 2;
	y.etcd.hosts = hb;
	y.etcd.n_hosts = 1;
	ck_assert(!site_same_cluster(&x, &y)); /* each site its own etcd */
	y.etcd.hosts = hc;
	ck_assert(site_same_cluster(&x, &y)); /* one etcd, one cluster */
	y.namespace_ = "/other";
	ck_assert(!site_same_cluster(&x, &y));
	y.namespace_ = "/baton";
	y.scope = "dr";
	ck_assert(!site_same_cluster(&x, &y));
}
END_TEST

/* What a member key says of a standby_cluster remote: TLS trusts any,
 * else only a host:port its file names (host case-insensitive, port
 * exact, IPv6 in brackets); no standby_trust at all is unknown. */
START_TEST(site_member_trust_from_record)
{
	json_t *rec = json_loads("{\"standby_trust\": {\"tls\": false, \"remotes\": [\"DB-B.example:5433\", "
	                         "\"[::1]:5434\", 7, \"garbage\"]}}",
	                         0, NULL);
	json_t *tls = json_loads("{\"standby_trust\": {\"tls\": true, \"remotes\": []}}", 0, NULL);
	json_t *old = json_loads("{\"role\": \"primary\"}", 0, NULL);
	char hp[64];

	ck_assert_ptr_nonnull(rec);
	ck_assert_int_eq(site_member_trust(rec, "db-b.example", 5433), SITE_TRUSTED);
	ck_assert_int_eq(site_member_trust(rec, "db-b.example", 5432), SITE_UNTRUSTED);
	ck_assert_int_eq(site_member_trust(rec, "10.0.0.9", 5433), SITE_UNTRUSTED);
	ck_assert_int_eq(site_member_trust(rec, "::1", 5434), SITE_TRUSTED);
	ck_assert_int_eq(site_member_trust(tls, "10.0.0.9", 5433), SITE_TRUSTED);
	ck_assert_int_eq(site_member_trust(old, "10.0.0.9", 5433), SITE_TRUST_UNKNOWN);
	ck_assert_int_eq(site_member_trust(NULL, "10.0.0.9", 5433), SITE_TRUST_UNKNOWN);
	site_hostport("::1", 5434, hp, sizeof(hp));
	ck_assert_str_eq(hp, "[::1]:5434");
	site_hostport("10.0.0.9", 5433, hp, sizeof(hp));
	ck_assert_str_eq(hp, "10.0.0.9:5433");
	json_decref(rec);
	json_decref(tls);
	json_decref(old);
}
END_TEST

START_TEST(roles)
{
	static struct ha_cluster_view v;

	memset(&v, 0, sizeof(v));
	snprintf(v.members[0].name, HA_NAME_MAX, "node1");
	snprintf(v.members[0].role, sizeof(v.members[0].role), "primary");
	snprintf(v.members[1].name, HA_NAME_MAX, "node2");
	snprintf(v.members[1].role, sizeof(v.members[1].role), "replica");
	snprintf(v.members[2].name, HA_NAME_MAX, "node3");
	snprintf(v.members[2].role, sizeof(v.members[2].role), "stopped");
	v.n_members = 3;
	v.has_leader = true;
	snprintf(v.leader, sizeof(v.leader), "node1");
	ck_assert(role_matches(&v, &v.members[0], "leader"));
	ck_assert(role_matches(&v, &v.members[0], "primary"));
	ck_assert(!role_matches(&v, &v.members[0], "standby-leader"));
	ck_assert(!role_matches(&v, &v.members[0], "replica"));
	ck_assert(role_matches(&v, &v.members[1], "replica"));
	ck_assert(role_matches(&v, &v.members[1], "standby"));
	ck_assert(!role_matches(&v, &v.members[1], "leader"));
	ck_assert(!role_matches(&v, &v.members[2], "replica"));
	ck_assert(role_matches(&v, &v.members[2], "any"));
	ck_assert(role_matches(&v, &v.members[2], NULL));
	snprintf(v.members[0].role, sizeof(v.members[0].role), "standby_leader");
	ck_assert(role_matches(&v, &v.members[0], "standby-leader"));
	ck_assert(!role_matches(&v, &v.members[0], "primary"));
	ck_assert(role_matches(&v, &v.members[0], "leader"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("batonctl");
	TCase *tc = tcase_create("pure");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, yaml_plain_and_quoted_scalars);
	tcase_add_test(tc, yaml_escapes_controls_and_non_ascii);
	tcase_add_test(tc, yaml_nesting);
	tcase_add_test(tc, scope_positional);
	tcase_add_test(tc, remove_confirmations);
	tcase_add_test(tc, edit_config_dotted_keys);
	tcase_add_test(tc, roles);
	tcase_add_test(tc, site_same_cluster_needs_same_etcd);
	tcase_add_test(tc, site_member_trust_from_record);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
