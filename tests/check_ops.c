/*
 * check_ops.c - tests of agent/ops.c (operator actions) against a real etcd.
 *
 * One etcd is started for the whole run (tests/etcd_fixture.c); each test
 * works under a scope of its own, so tests never see each other's keys.
 * The cluster is written by the test: a leader key, member records made
 * with dcs_member_json, a config key. Every refusal is checked twice: the
 * reason names the problem, and a snapshot of every key (value and
 * mod_revision) is the same after the call as before it.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/api_internal.h"
#include "agent/dcs.h"
#include "agent/ops.h"
#include "etcd/etcd.h"
#include "tests/etcd_fixture.h"
#include "tests/etcd_proc.h"

/* ---- helpers ------------------------------------------------------------- */

struct env {
	struct etcd_client *c;
	struct dcs_keys k;
};

/* A client and a scope no other test uses. */
static void env_open(struct env *e, const char *scope)
{
	const char *ep = etcd_fixture_url();
	struct etcd_config cfg = { .endpoints = &ep, .n_endpoints = 1, .request_timeout = 3 };
	struct etcd_error err;

	ck_assert(dcs_keys_init(&e->k, "/test", scope));
	ck_assert_int_eq(etcd_client_new(&cfg, &e->c, &err), ETCD_OK);
}

static void env_close(struct env *e)
{
	etcd_client_free(e->c);
	e->c = NULL;
}

static void put(struct env *e, const char *key, const char *value)
{
	etcd_fixture_put(e->c, key, value);
}

static void put_member(struct env *e, const char *name, const char *role, const char *state, bool nofailover)
{
	struct ha_member m;
	char key[400], *json;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.role, sizeof(m.role), "%s", role);
	snprintf(m.state, sizeof(m.state), "%s", state);
	snprintf(m.host, sizeof(m.host), "127.0.0.1");
	m.port = 5432;
	snprintf(m.api_url, sizeof(m.api_url), "http://127.0.0.1:8008");
	m.timeline = 1;
	m.lsn = 1000;
	m.nofailover = nofailover;
	json = dcs_member_json(&m);
	ck_assert_ptr_nonnull(json);
	ck_assert(dcs_member_key(&e->k, name, key, sizeof(key)));
	put(e, key, json);
	free(json);
}

/* The clusters the switchover table runs against. */
enum shape {
	FULL,       /* leader node1; node2 running replica; node3 nofailover; node4 starting; node5 stopped */
	NO_LEADER,  /* FULL without the leader key */
	NO_HEALTHY, /* leader node1; node3 nofailover; node4 starting */
	PENDING,    /* FULL with a switchover already requested */
	PAUSED,     /* FULL in maintenance mode */
};

static void write_cluster(struct env *e, enum shape shape)
{
	if (shape != NO_LEADER)
		put(e, e->k.leader, "node1");
	put(e, e->k.config,
	    shape == PAUSED ? "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2,\"pause\":true}"
	                    : "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2}");
	put_member(e, "node1", "primary", "running", false);
	if (shape != NO_HEALTHY) {
		put_member(e, "node2", "replica", "running", false);
		put_member(e, "node5", "stopped", "stopped", false);
	}
	put_member(e, "node3", "replica", "running", true);
	put_member(e, "node4", "replica", "starting", false);
	if (shape == PENDING)
		put(e, e->k.switchover, "{\"from\":\"node1\",\"to\":\"node2\",\"kind\":\"switchover\"}");
}

static char *snapshot(struct env *e)
{
	return etcd_fixture_snapshot(e->c, e->k.prefix);
}

static char *get_value(struct env *e, const char *key)
{
	return etcd_fixture_get(e->c, key);
}

static void assert_refused(bool ok, const char *err, const char *reason, const char *before, struct env *e)
{
	char *after = snapshot(e);

	ck_assert_msg(!ok, "accepted, expected a refusal with '%s'", reason);
	ck_assert_msg(strstr(err, reason) != NULL, "reason '%s' does not contain '%s'", err, reason);
	ck_assert_msg(strchr(err, '\n') == NULL, "reason is not one line: '%s'", err);
	ck_assert_msg(strcmp(before, after) == 0, "etcd changed by a refusal:\nbefore:\n%s\nafter:\n%s", before, after);
	free(after);
}

/* ---- switchover / failover --------------------------------------------------- */

struct sw_case {
	const char *name;
	enum shape shape;
	const char *leader, *candidate;
	long scheduled_in; /* seconds from now; 0 = now */
	bool failover, force;
	const char *refusal; /* NULL = accepted */
};

static const struct sw_case sw_cases[] = {
	{ "to the best", FULL, NULL, NULL, 0, false, false, NULL },
	{ "to node2", FULL, NULL, "node2", 0, false, false, NULL },
	{ "leader named", FULL, "node1", "node2", 0, false, false, NULL },
	{ "scheduled", FULL, NULL, "node2", 3600, false, false, NULL },
	{ "forced to a starting replica", FULL, NULL, "node4", 0, false, true, NULL },
	{ "failover, no leader", NO_LEADER, NULL, "node2", 0, true, false, NULL },
	{ "failover with a leader", FULL, NULL, "node2", 0, true, false, NULL },
	{ "forced failover to a stopped member", NO_LEADER, NULL, "node5", 0, true, true, NULL },
	{ "wrong leader", FULL, "node2", "node2", 0, false, false,
	  "'node2' is not the leader (the leader is 'node1')" },
	{ "to the leader", FULL, NULL, "node1", 0, false, false, "'node1' is already the leader" },
	{ "unknown candidate", FULL, NULL, "ghost", 0, false, false, "'ghost' is not a member" },
	{ "nofailover", FULL, NULL, "node3", 0, false, false, "'node3' is tagged nofailover" },
	{ "nofailover, forced", FULL, NULL, "node3", 0, false, true, "'node3' is tagged nofailover" },
	{ "starting replica", FULL, NULL, "node4", 0, false, false, "'node4' is not a healthy replica" },
	{ "stopped member", FULL, NULL, "node5", 0, false, false, "'node5' is not a healthy replica" },
	{ "no leader", NO_LEADER, NULL, "node2", 0, false, false, "no leader" },
	{ "no leader, leader named", NO_LEADER, "node1", "node2", 0, true, false, "there is no leader" },
	{ "no healthy candidate", NO_HEALTHY, NULL, NULL, 0, false, false, "no healthy candidate" },
	{ "no healthy candidate, forced", NO_HEALTHY, NULL, NULL, 0, false, true, "no healthy candidate" },
	{ "already pending", PENDING, NULL, "node2", 0, false, false,
	  "a switchover is already pending: switchover from node1 to node2; cancel it first" },
	{ "in the past", FULL, NULL, "node2", -60, false, false, "is not in the future" },
	{ "7 days ahead", FULL, NULL, "node2", 7 * 86400 - 60, false, false, NULL },
	{ "beyond the horizon", FULL, NULL, "node2", 7 * 86400 + 60, false, false,
	  "more than 7 days ahead: a switchover is scheduled at most 7 days (604800 seconds) in advance" },
	{ "a year ahead", FULL, NULL, "node2", 366L * 86400, false, false, "more than 7 days ahead" },
	{ "failover without a candidate", NO_LEADER, NULL, NULL, 0, true, false, "a failover needs a candidate" },
	{ "failover scheduled", FULL, NULL, "node2", 3600, true, false, "a failover cannot be scheduled" },
	{ "failover to a starting replica", NO_LEADER, NULL, "node4", 0, true, false,
	  "'node4' is not a healthy replica" },
	/* maintenance mode: nothing left pending unseen, no candidate chosen by the agents */
	{ "paused, to node2", PAUSED, NULL, "node2", 0, false, false, NULL },
	{ "paused, failover to node2", PAUSED, NULL, "node2", 0, true, false, NULL },
	{ "paused, no candidate", PAUSED, NULL, NULL, 0, false, false,
	  "maintenance mode: a switchover needs a candidate while paused" },
	{ "paused, no candidate, forced", PAUSED, NULL, NULL, 0, false, true,
	  "maintenance mode: a switchover needs a candidate while paused" },
	{ "paused, scheduled", PAUSED, NULL, "node2", 3600, false, false,
	  "maintenance mode: a scheduled switchover is refused while paused" },
};

START_TEST(test_switchover_table)
{
	const struct sw_case *t = &sw_cases[_i];
	struct ops_switchover_req req = { 0 };
	char scope[32], err[512] = "", *before;
	time_t now = time(NULL);
	struct env e;
	bool ok;

	snprintf(scope, sizeof(scope), "sw%d", _i);
	env_open(&e, scope);
	write_cluster(&e, t->shape);
	before = snapshot(&e);
	req.leader = t->leader;
	req.candidate = t->candidate;
	req.scheduled_at = t->scheduled_in ? now + t->scheduled_in : 0;
	req.failover = t->failover;
	req.force = t->force;
	ok = ops_switchover(e.c, &e.k, &req, NULL, err, sizeof(err));
	if (t->refusal) {
		assert_refused(ok, err, t->refusal, before, &e);
	} else {
		struct dcs_switchover sw;
		char *v;

		ck_assert_msg(ok, "%s: refused: %s", t->name, err);
		v = get_value(&e, e.k.switchover);
		ck_assert_ptr_nonnull(v);
		ck_assert_msg(dcs_switchover_from_json(v, &sw, err, sizeof(err)), "%s: %s", v, err);
		ck_assert_str_eq(sw.from, t->shape == NO_LEADER ? "" : "node1");
		ck_assert_str_eq(sw.to, t->candidate ? t->candidate : "");
		ck_assert(sw.failover == t->failover);
		ck_assert(sw.scheduled_at == (double)req.scheduled_at);
		ck_assert(sw.requested_at >= (double)now && sw.requested_at <= (double)now + 5);
		free(v);
	}
	free(before);
	env_close(&e);
}
END_TEST

START_TEST(test_switchover_cancel)
{
	struct ops_switchover_req req = { .candidate = "node2" };
	char err[512] = "", *before, *v;
	int64_t request = 0;
	bool found = false;
	struct ha_cluster_view *view = calloc(1, sizeof(*view));
	struct etcd_range_result r = { 0 };
	struct etcd_error eerr;
	struct env e;

	ck_assert_ptr_nonnull(view);
	env_open(&e, "cancel");
	write_cluster(&e, FULL);
	before = snapshot(&e);
	assert_refused(ops_switchover_cancel(e.c, &e.k, err, sizeof(err)), err, "no switchover is pending", before, &e);
	free(before);

	ck_assert_msg(ops_switchover(e.c, &e.k, &req, &request, err, sizeof(err)), "%s", err);
	/* The agents read the request the same way. */
	ck_assert_int_eq(etcd_get_prefix(e.c, e.k.prefix, &r, &eerr), ETCD_OK);
	dcs_parse_cluster(&e.k, &r, NULL, view, NULL, NULL, 0);
	ck_assert(view->has_switchover);
	/* The revision batonctl waits on is the one that created the key (the
	 * leader quotes it when it refuses the request). */
	for (size_t i = 0; i < r.n_kvs; i++)
		if (strcmp(r.kvs[i].key, e.k.switchover) == 0) {
			ck_assert_int_eq(r.kvs[i].create_revision, request);
			found = true;
		}
	ck_assert(found);
	ck_assert_str_eq(view->sw_from, "node1");
	ck_assert_str_eq(view->sw_to, "node2");
	ck_assert(!view->sw_failover);
	etcd_range_result_free(&r);

	ck_assert_msg(ops_switchover_cancel(e.c, &e.k, err, sizeof(err)), "%s", err);
	v = get_value(&e, e.k.switchover);
	ck_assert_ptr_null(v);
	/* ... and once cancelled, a new request is accepted. */
	ck_assert_msg(ops_switchover(e.c, &e.k, &req, NULL, err, sizeof(err)), "%s", err);
	free(view);
	env_close(&e);
}
END_TEST

/* ---- pause and config edits ------------------------------------------------ */

/* The settings in the config key now. */
static void read_settings(struct env *e, struct dcs_settings *d)
{
	char err[256] = "", *v = get_value(e, e->k.config);

	ck_assert_ptr_nonnull(v);
	ck_assert_msg(dcs_config_from_json(v, d, err, sizeof(err)), "%s: %s", v, err);
	free(v);
}

START_TEST(test_pause_round_trip)
{
	struct etcd_range_result r = { 0 };
	struct ha_cluster_view *view = calloc(1, sizeof(*view));
	struct etcd_error eerr;
	struct dcs_settings d;
	const char *set = "ttl=9";
	char err[512] = "";
	struct env e;

	ck_assert_ptr_nonnull(view);
	env_open(&e, "pause");
	/* No config key yet: pausing creates it from the defaults. */
	ck_assert_msg(ops_set_pause(e.c, &e.k, true, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert(d.pause);
	ck_assert(d.ttl == 5 && d.loop_wait == 1 && d.retry_timeout == 2);
	dcs_settings_free(&d);
	ck_assert_int_eq(etcd_get_prefix(e.c, e.k.prefix, &r, &eerr), ETCD_OK);
	dcs_parse_cluster(&e.k, &r, NULL, view, NULL, NULL, 0);
	ck_assert(view->paused);
	etcd_range_result_free(&r);

	/* Resume keeps the other settings. */
	ck_assert_msg(ops_edit_config(e.c, &e.k, &set, 1, NULL, 0, NULL, err, sizeof(err)), "%s", err);
	ck_assert_msg(ops_set_pause(e.c, &e.k, false, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert(!d.pause);
	ck_assert(d.ttl == 9);
	dcs_settings_free(&d);
	ck_assert_int_eq(etcd_get_prefix(e.c, e.k.prefix, &r, &eerr), ETCD_OK);
	dcs_parse_cluster(&e.k, &r, NULL, view, NULL, NULL, 0);
	ck_assert(!view->paused);
	etcd_range_result_free(&r);
	free(view);
	env_close(&e);
}
END_TEST

struct edit_case {
	const char *set[3];
	const char *pg[3];
	const char *refusal; /* NULL = accepted */
};

static const struct edit_case edit_cases[] = {
	{ { "ttl=10" }, { NULL }, NULL },
	{ { "ttl=20", "loop_wait=5", "retry_timeout=2.5" }, { NULL }, NULL },
	{ { "maximum_lag_on_failover=16777216", "pause=true" }, { NULL }, NULL },
	{ { NULL }, { "work_mem=8MB", "max_connections=200" }, NULL },
	{ { NULL }, { "shared_buffers=" }, NULL }, /* removes it */
	{ { "ttl=abc" }, { NULL }, "ttl: expected a number of seconds, got 'abc'" },
	{ { "ttl=inf" }, { NULL }, "ttl: expected a number" },
	{ { "ttl=0x10" }, { NULL }, "ttl: expected a number" },
	{ { "ttl=5s" }, { NULL }, "ttl: expected a number" },
	{ { "ttl=1" }, { NULL }, "ttl" },
	{ { "loop_wait=5" }, { NULL }, "loop_wait + 2 * retry_timeout" },
	{ { "retry_timeout=0" }, { NULL }, "retry_timeout" },
	{ { "foo=1" }, { NULL }, "unknown key 'foo'" },
	{ { "ttl" }, { NULL }, "expected key=value, got 'ttl'" },
	{ { "=5" }, { NULL }, "expected key=value" },
	{ { "pause=yes" }, { NULL }, "pause: expected true or false, got 'yes'" },
	{ { "maximum_lag_on_failover=-1" }, { NULL }, "maximum_lag_on_failover: expected a whole number" },
	{ { "maximum_lag_on_failover=1.5" }, { NULL }, "maximum_lag_on_failover: expected a whole number" },
	{ { "ttl=30" }, { "bad name=1" }, "invalid parameter name" }, /* one bad edit spoils all */
	{ { NULL }, { "work_mem" }, "expected name=value, got 'work_mem'" },
	{ { NULL }, { "work_mem=a\nb" }, "line break" },
	/* The timing bounds, naming the value and the bound (issue 10). */
	{ { "loop_wait=0.001", "retry_timeout=0.001" }, { NULL }, "loop_wait: 0.001 out of range [0.1, 3600]" },
	{ { "retry_timeout=0.2" }, { NULL }, "retry_timeout: 0.2 out of range [0.5, 3600]" },
	{ { "ttl=1e308" }, { NULL }, "ttl: 1e+308 out of range [2, 86400]" },
	{ { "ttl=86401" }, { NULL }, "ttl: 86401 out of range [2, 86400]" },
	/* Parameters that run code: never through the config key by default. */
	{ { NULL },
	  { "archive_command=touch /tmp/pwned" },
	  "invalid configuration: postgresql.parameters.archive_command: refused: it runs or loads code" },
	{ { NULL }, { "archive_cleanup_command=x" }, "postgresql.parameters.archive_cleanup_command: refused" },
	{ { NULL }, { "shared_preload_libraries=evil" }, "postgresql.parameters.shared_preload_libraries: refused" },
	{ { NULL }, { "Session_Preload_Libraries=evil" }, "postgresql.parameters.Session_Preload_Libraries: refused" },
	{ { NULL }, { "ssl_passphrase_command=x" }, "ssl_passphrase_command: refused" },
	{ { NULL }, { "work_mem=a\033[2J" }, "control character 0x1b" },
	/* bytes take units (agent/parse.c, as the REST API's ?lag=); counts do not */
	{ { "maximum_lag_on_failover=16MB" }, { NULL }, NULL },
	{ { "maximum_lag_on_failover=16XB" }, { NULL }, "maximum_lag_on_failover: expected a whole number of bytes" },
	{ { "synchronous_node_count=1k" }, { NULL }, "synchronous_node_count: expected a whole number from 1 to" },
	{ { "ttl=-5" }, { NULL }, "ttl: expected a number of seconds, got '-5'" },
};

static size_t count(const char *const *a)
{
	size_t n = 0;

	while (n < 3 && a[n])
		n++;
	return n;
}

static const char *param(const struct dcs_settings *d, const char *name)
{
	for (size_t i = 0; i < d->n_pg_params; i++)
		if (strcmp(d->pg_params[i].name, name) == 0)
			return d->pg_params[i].value;
	return NULL;
}

START_TEST(test_edit_config_table)
{
	const struct edit_case *t = &edit_cases[_i];
	char scope[32], err[512] = "", *before;
	struct dcs_settings result, now;
	struct env e;
	bool ok;

	snprintf(scope, sizeof(scope), "edit%d", _i);
	env_open(&e, scope);
	put(&e, e.k.config,
	    "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2,\"postgresql\":{\"parameters\":{\"shared_buffers\":\"64MB\"}}}");
	before = snapshot(&e);
	memset(&result, 0, sizeof(result));
	ok = ops_edit_config(e.c, &e.k, t->set, count(t->set), t->pg, count(t->pg), &result, err, sizeof(err));
	if (t->refusal) {
		assert_refused(ok, err, t->refusal, before, &e);
	} else {
		ck_assert_msg(ok, "refused: %s", err);
		read_settings(&e, &now);
		/* result is what was written */
		ck_assert(result.ttl == now.ttl && result.loop_wait == now.loop_wait &&
		          result.retry_timeout == now.retry_timeout && result.pause == now.pause);
		ck_assert_uint_eq(result.n_pg_params, now.n_pg_params);
		if (_i == 0)
			ck_assert(now.ttl == 10 && now.loop_wait == 1);
		if (_i == 1)
			ck_assert(now.ttl == 20 && now.loop_wait == 5 && now.retry_timeout == 2.5);
		if (_i == 2)
			ck_assert(now.maximum_lag_on_failover == 16777216 && now.pause);
		if (_i == 3) {
			ck_assert_str_eq(param(&now, "work_mem"), "8MB");
			ck_assert_str_eq(param(&now, "max_connections"), "200");
			ck_assert_str_eq(param(&now, "shared_buffers"), "64MB");
		}
		if (_i == 4)
			ck_assert_ptr_null(param(&now, "shared_buffers"));
		if (t->set[0] && strcmp(t->set[0], "maximum_lag_on_failover=16MB") == 0)
			ck_assert_int_eq(now.maximum_lag_on_failover, 16 << 20);
		dcs_settings_free(&now);
		dcs_settings_free(&result);
	}
	free(before);
	env_close(&e);
}
END_TEST

START_TEST(test_replace_config)
{
	char err[512] = "", *before, *v;
	struct dcs_settings d;
	struct env e;

	env_open(&e, "replace");
	/* Absent key: created. */
	ck_assert_msg(
	        ops_replace_config(e.c, &e.k,
	                           "{\"ttl\":12,\"loop_wait\":2,\"retry_timeout\":3,\"pause\":false,"
	                           "\"postgresql\":{\"parameters\":{\"work_mem\":\"4MB\",\"max_connections\":150}}}",
	                           err, sizeof(err)),
	        "%s", err);
	read_settings(&e, &d);
	ck_assert(d.ttl == 12 && d.loop_wait == 2 && d.retry_timeout == 3);
	ck_assert_str_eq(param(&d, "max_connections"), "150");
	dcs_settings_free(&d);
	/* Written in canonical form: numbers of parameters become strings. */
	v = get_value(&e, e.k.config);
	ck_assert_msg(strstr(v, "\"max_connections\":\"150\"") != NULL, "%s", v);
	free(v);

	before = snapshot(&e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":", err, sizeof(err)), err, "invalid JSON", before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "[1]", err, sizeof(err)), err, "not a JSON object", before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":12,\"loop_wiat\":1}", err, sizeof(err)), err,
	               "unknown key 'loop_wiat'", before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"postgresql\":{\"parameter\":{}}}", err, sizeof(err)), err,
	               "unknown key 'postgresql.parameter'", before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":\"12\"}", err, sizeof(err)), err, "ttl: expected",
	               before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":4,\"loop_wait\":1,\"retry_timeout\":2}", err,
	                                  sizeof(err)),
	               err, "loop_wait + 2 * retry_timeout", before, &e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"pause\":1}", err, sizeof(err)), err, "pause: expected", before,
	               &e);
	assert_refused(ops_replace_config(e.c, &e.k, NULL, err, sizeof(err)), err, "invalid JSON", before, &e);
	free(before);

	/* Patroni's config key (3.0.2, paused): its own keys, which the key
	 * held already, do not block resume; the canonical form drops them.
	 * A key the edit brings is still refused. */
	put(&e, e.k.config,
	    "{\"ttl\":10,\"loop_wait\":1,\"retry_timeout\":2,\"maximum_lag_on_failover\":1048576,"
	    "\"synchronous_mode\":true,\"slots\":{\"keep_me\":{\"type\":\"physical\"}},"
	    "\"postgresql\":{\"use_pg_rewind\":true},\"master_start_timeout\":300,\"pause\":true}");
	ck_assert_msg(ops_set_pause(e.c, &e.k, false, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert(!d.pause && d.synchronous_mode && d.ttl == 10);
	ck_assert_uint_eq(d.n_slots, 1);
	ck_assert_str_eq(d.slots[0], "keep_me");
	dcs_settings_free(&d);
	v = get_value(&e, e.k.config);
	ck_assert_msg(strstr(v, "use_pg_rewind") == NULL && strstr(v, "master_start_timeout") == NULL, "%s", v);
	free(v);
	before = snapshot(&e);
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":12,\"master_start_timeout\":30}", err, sizeof(err)), err,
	               "unknown key 'master_start_timeout'", before, &e);
	free(before);
	env_close(&e);
}
END_TEST

/* Code-running parameters through the config key: refused unless this
 * node's file allows them; one already in the key (same value) does not
 * block other edits; removing one is fine. */
START_TEST(test_code_params)
{
	char err[512] = "", *before, *v;
	const char *pg_set[] = { "archive_command=/bin/true" };
	const char *pg_del[] = { "archive_command=" };
	const char *set_ttl[] = { "ttl=11" };
	char *allow[] = { "archive_command" };
	struct dcs_settings d;
	struct env e;

	env_open(&e, "codeparams");
	put(&e, e.k.config, "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2}");
	before = snapshot(&e);
	assert_refused(ops_replace_config(e.c, &e.k,
	                                  "{\"ttl\":5,\"postgresql\":{\"parameters\":{\"restore_command\":\"x\"}}}",
	                                  err, sizeof(err)),
	               err, "postgresql.parameters.restore_command: refused", before, &e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, pg_set, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.archive_command: refused", before, &e);
	/* standby_cluster.restore_command runs a command on the standby leader. */
	assert_refused(ops_replace_config(e.c, &e.k,
	                                  "{\"ttl\":5,\"standby_cluster\":{\"host\":\"10.1.0.5\","
	                                  "\"restore_command\":\"touch /tmp/pwned\"}}",
	                                  err, sizeof(err)),
	               err, "standby_cluster.restore_command: refused", before, &e);
	/* ... and a host an option parser would take for an option. */
	assert_refused(ops_replace_config(e.c, &e.k, "{\"ttl\":5,\"standby_cluster\":{\"host\":\"-oFoo\"}}", err,
	                                  sizeof(err)),
	               err, "must not start with '-'", before, &e);
	free(before);

	/* This node's file allows archive_command: it passes, others still not. */
	ck_assert(ops_set_allow_from_dcs(allow, 1));
	ck_assert_msg(ops_edit_config(e.c, &e.k, NULL, 0, pg_set, 1, NULL, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert_str_eq(param(&d, "archive_command"), "/bin/true");
	dcs_settings_free(&d);
	before = snapshot(&e);
	assert_refused(ops_replace_config(e.c, &e.k,
	                                  "{\"ttl\":5,\"postgresql\":{\"parameters\":{\"archive_command\":\"/bin/true\","
	                                  "\"local_preload_libraries\":\"x\"}}}",
	                                  err, sizeof(err)),
	               err, "postgresql.parameters.local_preload_libraries: refused", before, &e);
	free(before);

	/* Allowed no more: an edit of ttl still works with archive_command
	 * unchanged in the key; changing it does not; removing it does. */
	ck_assert(ops_set_allow_from_dcs(NULL, 0));
	ck_assert_msg(ops_edit_config(e.c, &e.k, set_ttl, 1, NULL, 0, NULL, err, sizeof(err)), "%s", err);
	before = snapshot(&e);
	assert_refused(
	        ops_replace_config(e.c, &e.k,
	                           "{\"ttl\":11,\"postgresql\":{\"parameters\":{\"archive_command\":\"/bin/false\"}}}",
	                           err, sizeof(err)),
	        err, "postgresql.parameters.archive_command: refused", before, &e);
	free(before);
	ck_assert_msg(ops_edit_config(e.c, &e.k, NULL, 0, pg_del, 1, NULL, err, sizeof(err)), "%s", err);
	v = get_value(&e, e.k.config);
	ck_assert_msg(strstr(v, "archive_command") == NULL, "%s", v);
	free(v);
	env_close(&e);
}
END_TEST

/* Custom (dotted) parameters and lo_compat_privileges through the config
 * key: refused, naming the parameter and postgresql.allow_from_dcs, unless
 * this node's file lists that very name; one already in the key with the
 * same value does not block other edits. */
START_TEST(test_custom_params)
{
	char err[512] = "", *before, *v;
	const char *perl[] = { "plperl.on_init=system('touch /tmp/pwned')" };
	const char *tcl[] = { "PLTCL.start_proc=evil" };
	const char *lo[] = { "lo_compat_privileges=on" };
	const char *explain[] = { "auto_explain.log_min_duration=250ms" };
	const char *set_ttl[] = { "ttl=11" };
	char *allow[] = { "auto_explain.log_min_duration" };
	struct dcs_settings d;
	struct env e;

	env_open(&e, "customparams");
	put(&e, e.k.config, "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2}");
	before = snapshot(&e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, perl, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.plperl.on_init: refused: it is an extension's custom parameter", before,
	               &e);
	ck_assert_msg(strstr(err, "lists it in postgresql.allow_from_dcs") != NULL, "%s", err);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, tcl, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.PLTCL.start_proc: refused", before, &e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, explain, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.auto_explain.log_min_duration: refused", before, &e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, lo, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.lo_compat_privileges: refused: it turns off the permission checks on "
	               "large objects",
	               before, &e);
	assert_refused(ops_replace_config(e.c, &e.k,
	                                  "{\"ttl\":5,\"postgresql\":{\"parameters\":{\"plv8.start_proc\":\"x\"}}}",
	                                  err, sizeof(err)),
	               err, "postgresql.parameters.plv8.start_proc: refused", before, &e);
	free(before);

	/* Listed by name: that one passes; another custom one still does not. */
	ck_assert(ops_set_allow_from_dcs(allow, 1));
	ck_assert_msg(ops_edit_config(e.c, &e.k, NULL, 0, explain, 1, NULL, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert_str_eq(param(&d, "auto_explain.log_min_duration"), "250ms");
	dcs_settings_free(&d);
	before = snapshot(&e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, perl, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.plperl.on_init: refused", before, &e);
	free(before);

	/* Allowed no more: other edits pass with it unchanged in the key. */
	ck_assert(ops_set_allow_from_dcs(NULL, 0));
	ck_assert_msg(ops_edit_config(e.c, &e.k, set_ttl, 1, NULL, 0, NULL, err, sizeof(err)), "%s", err);
	v = get_value(&e, e.k.config);
	ck_assert_msg(strstr(v, "\"auto_explain.log_min_duration\":\"250ms\"") != NULL, "%s", v);
	ck_assert_msg(strstr(v, "plperl") == NULL, "%s", v);
	free(v);
	env_close(&e);
}
END_TEST

/* max_wal_senders / max_replication_slots below the replicas of the
 * cluster (members - 1): refused with the value, the member count and the
 * least to set; enough passes; a value the key already held does not block
 * other edits (pause). */
START_TEST(test_sender_params)
{
	char err[512] = "", *before;
	const char *senders1[] = { "max_wal_senders=1" };
	const char *senders2[] = { "max_wal_senders=2" };
	const char *slots0[] = { "max_replication_slots=0" };
	const char *set_ttl[] = { "ttl=11" };
	struct dcs_settings d;
	struct env e;

	env_open(&e, "senders");
	put(&e, e.k.leader, "node1");
	put(&e, e.k.config, "{\"ttl\":5,\"loop_wait\":1,\"retry_timeout\":2}");
	put_member(&e, "node1", "primary", "running", false);
	put_member(&e, "node2", "replica", "running", false);
	put_member(&e, "node3", "replica", "running", false);
	before = snapshot(&e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, senders1, 1, NULL, err, sizeof(err)), err,
	               "invalid configuration: postgresql.parameters.max_wal_senders: 1 is below the 2 replica(s) "
	               "of this 3-member cluster: each streams through its own walsender; set at least 2",
	               before, &e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, slots0, 1, NULL, err, sizeof(err)), err,
	               "postgresql.parameters.max_replication_slots: 0 is below the 2 replica(s) of this "
	               "3-member cluster: each streams through its own replication slot; set at least 2",
	               before, &e);
	assert_refused(ops_replace_config(e.c, &e.k,
	                                  "{\"ttl\":5,\"postgresql\":{\"parameters\":{\"max_wal_senders\":1}}}", err,
	                                  sizeof(err)),
	               err, "postgresql.parameters.max_wal_senders: 1 is below the 2 replica(s)", before, &e);
	free(before);
	ck_assert_msg(ops_edit_config(e.c, &e.k, NULL, 0, senders2, 1, NULL, err, sizeof(err)), "%s", err);
	read_settings(&e, &d);
	ck_assert_str_eq(param(&d, "max_wal_senders"), "2");
	dcs_settings_free(&d);

	/* A fourth member: the key's 2 is now short, but an edit that leaves it
	 * alone (ttl, pause) still passes; lowering it further does not. */
	put_member(&e, "node4", "replica", "running", false);
	ck_assert_msg(ops_edit_config(e.c, &e.k, set_ttl, 1, NULL, 0, NULL, err, sizeof(err)), "%s", err);
	ck_assert_msg(ops_set_pause(e.c, &e.k, true, err, sizeof(err)), "%s", err);
	before = snapshot(&e);
	assert_refused(ops_edit_config(e.c, &e.k, NULL, 0, senders1, 1, NULL, err, sizeof(err)), err,
	               "max_wal_senders: 1 is below the 3 replica(s) of this 4-member cluster", before, &e);
	free(before);
	env_close(&e);
}
END_TEST

START_TEST(test_check_schedule)
{
	char err[256];
	time_t now = 1764100000;

	ck_assert(ops_check_schedule(0, now, "restart", err, sizeof(err)));
	ck_assert(ops_check_schedule(now + 1, now, "restart", err, sizeof(err)));
	ck_assert(ops_check_schedule(now + OPS_SCHEDULE_HORIZON, now, "restart", err, sizeof(err)));
	ck_assert(!ops_check_schedule(now + OPS_SCHEDULE_HORIZON + 1, now, "restart", err, sizeof(err)));
	ck_assert_msg(strstr(err, "scheduled time 2025-12-02T19:46:41Z is more than 7 days ahead: a restart is "
	                          "scheduled at most 7 days") != NULL,
	              "%s", err);
	ck_assert(!ops_check_schedule(now, now, "restart", err, sizeof(err)));
	ck_assert_msg(strstr(err, "is not in the future") != NULL, "%s", err);
	/* Read back from etcd: a time past is due, only the horizon counts. */
	ck_assert(ops_check_horizon(0, now, "switchover", err, sizeof(err)));
	ck_assert(ops_check_horizon(now - 86400, now, "switchover", err, sizeof(err)));
	ck_assert(ops_check_horizon(now + OPS_SCHEDULE_HORIZON, now, "switchover", err, sizeof(err)));
	ck_assert(!ops_check_horizon(now + OPS_SCHEDULE_HORIZON + 1, now, "switchover", err, sizeof(err)));
	ck_assert_msg(strstr(err, "is more than 7 days ahead: a switchover is scheduled at most 7 days") != NULL, "%s",
	              err);
}
END_TEST

/* ---- concurrent changes ---------------------------------------------------- */

struct race {
	struct env *e;
	const char *key, *value;
	int calls;
};

/* Writes the key with the test's own client, between the action's read
 * and its write. */
static void race_hook(void *ctx)
{
	struct race *r = ctx;

	r->calls++;
	put(r->e, r->key, r->value);
}

START_TEST(test_concurrent_changes)
{
	struct ops_switchover_req req = { .candidate = "node2" };
	const char *set = "ttl=30";
	const char *other = "{\"ttl\":6,\"loop_wait\":1,\"retry_timeout\":2}";
	struct etcd_range_result r = { 0 };
	struct etcd_error eerr;
	struct race race;
	char err[512] = "", *v;
	int64_t rev;
	struct env e;

	env_open(&e, "race");
	write_cluster(&e, FULL);

	/* The config key changes between the read and the write. */
	race = (struct race){ &e, e.k.config, other, 0 };
	ops_set_before_write_hook(race_hook, &race);
	ck_assert(!ops_edit_config(e.c, &e.k, &set, 1, NULL, 0, NULL, err, sizeof(err)));
	ops_set_before_write_hook(NULL, NULL);
	ck_assert_int_eq(race.calls, 1);
	ck_assert_msg(strstr(err, "the config key changed concurrently, try again") != NULL, "%s", err);
	v = get_value(&e, e.k.config);
	ck_assert_str_eq(v, other); /* the other operator's change stands */
	free(v);

	/* The leader changes between the read and the write: the request is
	 * not written on a stale judgement. */
	race = (struct race){ &e, e.k.leader, "node2", 0 };
	ops_set_before_write_hook(race_hook, &race);
	ck_assert(!ops_switchover(e.c, &e.k, &req, NULL, err, sizeof(err)));
	ops_set_before_write_hook(NULL, NULL);
	ck_assert_msg(strstr(err, "changed concurrently") != NULL, "%s", err);
	v = get_value(&e, e.k.switchover);
	ck_assert_ptr_null(v);

	/* Another switchover written meanwhile: not overwritten. */
	put(&e, e.k.leader, "node1");
	race = (struct race){ &e, e.k.switchover, "{\"to\":\"node4\"}", 0 };
	ops_set_before_write_hook(race_hook, &race);
	ck_assert(!ops_switchover(e.c, &e.k, &req, NULL, err, sizeof(err)));
	ops_set_before_write_hook(NULL, NULL);
	ck_assert_msg(strstr(err, "changed concurrently") != NULL, "%s", err);
	v = get_value(&e, e.k.switchover);
	ck_assert_str_eq(v, "{\"to\":\"node4\"}");
	free(v);

	/* An editor session: a stale revision is refused, the current one works. */
	ck_assert_int_eq(etcd_get(e.c, e.k.config, &r, &eerr), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	rev = r.kvs[0].mod_revision;
	etcd_range_result_free(&r);
	ck_assert(!ops_replace_config_at(e.c, &e.k, "{\"ttl\":7}", rev - 1, err, sizeof(err)));
	ck_assert_msg(strstr(err, "the config key changed concurrently") != NULL, "%s", err);
	ck_assert(!ops_replace_config_at(e.c, &e.k, "{\"ttl\":7}", 0, err, sizeof(err)));
	ck_assert_msg(strstr(err, "changed concurrently") != NULL, "%s", err);
	v = get_value(&e, e.k.config);
	ck_assert_str_eq(v, other);
	free(v);
	ck_assert_msg(ops_replace_config_at(e.c, &e.k, "{\"ttl\":7}", rev, err, sizeof(err)), "%s", err);
	v = get_value(&e, e.k.config);
	ck_assert_msg(strstr(v, "\"ttl\":7") != NULL, "%s", v);
	free(v);
	env_close(&e);
}
END_TEST

START_TEST(test_etcd_down)
{
	char url[64], err[512] = "";
	const char *ep = url;
	struct etcd_config cfg = { .endpoints = &ep, .n_endpoints = 1, .request_timeout = 1, .connect_timeout = 0.5 };
	struct ops_switchover_req req = { .candidate = "node2" };
	struct etcd_client *c;
	struct etcd_error eerr;
	struct dcs_keys k;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", etcd_proc_free_port());
	ck_assert(dcs_keys_init(&k, "/test", "down"));
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &eerr), ETCD_OK);
	ck_assert(!ops_switchover(c, &k, &req, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot read /test/down/ from etcd") != NULL, "%s", err);
	ck_assert(!ops_set_pause(c, &k, true, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot read") != NULL, "%s", err);
	etcd_client_free(c);
}
END_TEST

/* ---- POST/DELETE /restart: the API side of operator restarts -------------------- */

/* One request to the API, answered; returns the code, the body in body. */
static unsigned int restart_call(struct api_server *s, const char *method, const char *json, char *body, size_t len)
{
	struct api_request rq = { .method = method, .path = "/restart", .content_type = "application/json" };
	struct api_reply r;
	unsigned int code;

	rq.body = json;
	rq.body_len = json ? strlen(json) : 0;
	api_handle(s, &rq, &r);
	code = r.code;
	snprintf(body, len, "%s", r.body ? r.body : "");
	api_reply_free(&r);
	return code;
}

/* A stand-in loop: takes the first restart request and reports outcome. */
struct fake_loop {
	struct api_server *s;
	enum api_restart_outcome outcome;
	const char *message;
	uint64_t seen_id;
};

static void *fake_loop_run(void *arg)
{
	struct fake_loop *f = arg;

	for (int i = 0; i < 500; i++) {
		struct api_requests r;

		api_take_requests(f->s, &r);
		if (r.restart) {
			f->seen_id = r.restart_id;
			api_restart_report(f->s, r.restart_id, f->outcome, f->message);
			return NULL;
		}
		usleep(10 * 1000);
	}
	return NULL;
}

/* The answer waits for the loop's report; times out with 202. */
static void restart_with_loop(struct api_server *s, enum api_restart_outcome outcome, const char *message,
                              unsigned int want_code, const char *want_in_body)
{
	struct fake_loop f = { .s = s, .outcome = outcome, .message = message };
	char body[1024];
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, fake_loop_run, &f), 0);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"restart_pending\":true,\"wait\":10}", body, sizeof(body)),
	                  want_code);
	pthread_join(t, NULL);
	ck_assert(f.seen_id > 0);
	ck_assert_msg(strstr(body, want_in_body) != NULL, "'%s' not in '%s'", want_in_body, body);
}

START_TEST(test_restart_endpoint)
{
	/* Writes open: this tests the restart logic, not who may write
	 * (check_api's tables do that). */
	struct api_options o = { .listen = "127.0.0.1:0", .allow_unauthenticated_writes = true };
	struct api_status st;
	struct api_requests r;
	struct api_server *s;
	char err[256], body[1024];
	double t0;

	s = api_server_new(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);

	/* Bad requests, and a role without a published state. */
	ck_assert_uint_eq(restart_call(s, "POST", "{\"postgres_version\":\"fifteen\"}", body, sizeof(body)), 400);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"wait\":61}", body, sizeof(body)), 400);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"role\":\"standby\"}", body, sizeof(body)), 400);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"schedule\":\"2001-01-01T00:00:00Z\"}", body, sizeof(body)), 400);
	ck_assert_msg(strstr(body, "not in the future") != NULL, "%s", body);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"role\":\"primary\"}", body, sizeof(body)), 503);

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node2");
	snprintf(st.role, sizeof(st.role), "replica");
	api_publish(s, &st);
	/* role: 412 when it differs, like Patroni; nothing queued. */
	ck_assert_uint_eq(restart_call(s, "POST", "{\"role\":\"primary\"}", body, sizeof(body)), 412);
	ck_assert_msg(strstr(body, "node2 is not the primary") != NULL, "%s", body);
	api_take_requests(s, &r);
	ck_assert(!r.restart && r.restart_at == 0);

	/* No loop attached (tests, fuzzing): 202 at once, the request queued
	 * with its conditions; a version as "15.4" or server_version_num. */
	ck_assert_uint_eq(restart_call(s, "POST", "{\"role\":\"replica\",\"postgres_version\":\"15.4\"}", body,
	                               sizeof(body)),
	                  202);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"postgres_version\":\"9.6.24\"}", body, sizeof(body)), 202);
	api_take_requests(s, &r);
	ck_assert(r.restart && !r.restart_pending_only && r.restart_id == 2);
	ck_assert_int_eq(r.restart_min_version, 150004); /* the higher of the two merged */
	ck_assert_uint_eq(restart_call(s, "POST", "{\"postgres_version\":150004,\"restart_pending\":true}", body,
	                               sizeof(body)),
	                  202);
	api_take_requests(s, &r);
	ck_assert(r.restart && r.restart_pending_only && r.restart_min_version == 150004);

	/* With a loop: the answer says how it went. */
	api_restart_attach(s);
	restart_with_loop(s, API_RESTART_DONE, "restarted (max_connections 100 -> 150) in 0.5 s", 200,
	                  "\"restarted\":true");
	restart_with_loop(s, API_RESTART_NOT_NEEDED, "restart not needed: no parameter is pending a restart", 200,
	                  "restart not needed");
	restart_with_loop(s, API_RESTART_FAILED, "restart of node2: Postgres failed to start again", 503,
	                  "failed to start again");
	/* Nobody reports: 202 "in progress" after the wait. */
	t0 = (double)time(NULL);
	ck_assert_uint_eq(restart_call(s, "POST", "{\"wait\":1}", body, sizeof(body)), 202);
	ck_assert_msg(strstr(body, "restart in progress") != NULL, "%s", body);
	ck_assert((double)time(NULL) - t0 <= 3);
	api_take_requests(s, &r);

	/* Scheduled: kept once (409 for a second), cancelled by DELETE; not
	 * beyond the 7-day horizon. */
	{
		time_t when = time(NULL) + 86400;
		char j1[128], j2[128], t1[32];

		dcs_format_utc((double)when, t1, sizeof(t1));
		snprintf(j1, sizeof(j1), "{\"schedule\":%lld,\"restart_pending\":true}", (long long)when);
		snprintf(j2, sizeof(j2), "{\"schedule\":%lld}", (long long)when + 3600);
		ck_assert_uint_eq(restart_call(s, "DELETE", NULL, body, sizeof(body)), 404);
		ck_assert_uint_eq(restart_call(s, "POST", "{\"schedule\":\"2099-01-01T00:00:00Z\"}", body,
		                               sizeof(body)),
		                  400);
		ck_assert_msg(strstr(body, "days ahead") != NULL, "%s", body);
		ck_assert_uint_eq(restart_call(s, "POST", j1, body, sizeof(body)), 202);
		ck_assert_msg(strstr(body, t1) != NULL, "%s not in %s", t1, body);
		ck_assert_uint_eq(restart_call(s, "POST", j2, body, sizeof(body)), 409);
		ck_assert_msg(strstr(body, "already scheduled at") != NULL && strstr(body, t1) != NULL, "%s", body);
		api_take_requests(s, &r);
		ck_assert(!r.restart && r.restart_at == (double)when && r.restart_pending_only);
		/* ... now kept by the loop, which publishes it */
		st.restart_scheduled_at = r.restart_at;
		api_publish(s, &st);
		ck_assert_uint_eq(restart_call(s, "POST", j2, body, sizeof(body)), 409);
	}
	ck_assert_uint_eq(restart_call(s, "DELETE", NULL, body, sizeof(body)), 200);
	ck_assert_uint_eq(restart_call(s, "DELETE", NULL, body, sizeof(body)), 404);
	api_take_requests(s, &r);
	ck_assert(r.restart_cancel && r.restart_at == 0);
	api_stop(s);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("real-etcd");

	tcase_set_timeout(tc, 30);
	tcase_add_unchecked_fixture(tc, etcd_fixture_up, etcd_fixture_down);
	tcase_set_tags(tc, "etcd");
	tcase_add_loop_test(tc, test_switchover_table, 0, (int)(sizeof(sw_cases) / sizeof(sw_cases[0])));
	tcase_add_test(tc, test_switchover_cancel);
	tcase_add_test(tc, test_pause_round_trip);
	tcase_add_loop_test(tc, test_edit_config_table, 0, (int)(sizeof(edit_cases) / sizeof(edit_cases[0])));
	tcase_add_test(tc, test_replace_config);
	tcase_add_test(tc, test_code_params);
	tcase_add_test(tc, test_custom_params);
	tcase_add_test(tc, test_sender_params);
	tcase_add_test(tc, test_check_schedule);
	tcase_add_test(tc, test_concurrent_changes);
	tcase_add_test(tc, test_etcd_down);
	tcase_add_test(tc, test_restart_endpoint);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return etcd_fixture_run(ops_suite(), NULL);
}
