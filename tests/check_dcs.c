/*
 * check_dcs.c - unit tests of agent/dcs.c (etcd key layout and JSON),
 * agent/jsonf.c (the typed field reads both parsers share) and
 * agent/api_health.c (the status JSON that the REST API server writes and
 * the peer client reads).
 *
 * The cluster view is parsed from an etcd range result built in memory, so
 * no etcd is needed. The API tests start the real libmicrohttpd server on a
 * free loopback port and talk to it over HTTP with the real client; the
 * published snapshot says Postgres is not running, so no Postgres is asked.
 */
#include <check.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/api.h"
#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "agent/peer.h"
#include "agent/watch.h"
#include "tests/etcd_fake.h"

/* ---- helpers ------------------------------------------------------------- */

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A loopback socket bound to a port the kernel picked; returns the fd
 * (still bound, not listening) and the port. */
static int bound_socket(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port nothing listens on (just released by us). */
static int free_port(void)
{
	int port;
	int fd = bound_socket(&port);

	close(fd);
	return port;
}

struct kvs {
	struct etcd_range_result r;
	struct etcd_kv kv[64];
};

static void add_kv(struct kvs *k, const char *key, const char *value, int64_t lease)
{
	struct etcd_kv *kv;

	ck_assert_uint_lt(k->r.n_kvs, 64);
	kv = &k->kv[k->r.n_kvs++];
	kv->key = strdup(key);
	kv->value = strdup(value);
	ck_assert_ptr_nonnull(kv->key);
	ck_assert_ptr_nonnull(kv->value);
	kv->value_len = strlen(value);
	kv->lease = lease;
	kv->create_revision = kv->mod_revision = kv->version = 1;
	k->r.kvs = k->kv;
}

static void free_kvs(struct kvs *k)
{
	for (size_t i = 0; i < k->r.n_kvs; i++) {
		free(k->kv[i].key);
		free(k->kv[i].value);
	}
	k->r.n_kvs = 0;
}

static struct ha_member sample_member(const char *name, const char *role, uint64_t lsn)
{
	struct ha_member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.role, sizeof(m.role), "%s", role);
	snprintf(m.state, sizeof(m.state), "running");
	snprintf(m.host, sizeof(m.host), "127.0.0.1");
	m.port = 5432;
	snprintf(m.api_url, sizeof(m.api_url), "http://127.0.0.1:8008");
	m.timeline = 3;
	m.lsn = lsn;
	m.nofailover = false;
	return m;
}

static char *member_json(const char *name, const char *role, uint64_t lsn)
{
	struct ha_member m = sample_member(name, role, lsn);
	char *s = dcs_member_json(&m);

	ck_assert_ptr_nonnull(s);
	return s;
}

/* ---- keys ------------------------------------------------------------------ */

START_TEST(test_keys)
{
	struct dcs_keys k;
	char buf[400];

	ck_assert(dcs_keys_init(&k, "/baton", "main"));
	ck_assert_str_eq(k.prefix, "/baton/main/");
	ck_assert_str_eq(k.leader, "/baton/main/leader");
	ck_assert_str_eq(k.initialize, "/baton/main/initialize");
	ck_assert_str_eq(k.config, "/baton/main/config");
	ck_assert_str_eq(k.status, "/baton/main/status");
	ck_assert_str_eq(k.history, "/baton/main/history");
	ck_assert_str_eq(k.members, "/baton/main/members/");
	ck_assert(dcs_member_key(&k, "node1", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "/baton/main/members/node1");
	ck_assert(!dcs_member_key(&k, "a/b", buf, sizeof(buf)));
	ck_assert(!dcs_member_key(&k, "", buf, sizeof(buf)));
	ck_assert(!dcs_member_key(&k, "node1", buf, 10));

	ck_assert(dcs_keys_init(&k, "/service/", "c1"));
	ck_assert_str_eq(k.prefix, "/service/c1/");
	ck_assert(dcs_keys_init(&k, NULL, "c1"));
	ck_assert_str_eq(k.prefix, "/baton/c1/");
	ck_assert(!dcs_keys_init(&k, "/baton", ""));
	ck_assert(!dcs_keys_init(&k, "/baton", "a/b"));
	memset(buf, 'x', 300);
	buf[300] = '\0';
	ck_assert(!dcs_keys_init(&k, "/baton", buf));
}
END_TEST

/* ---- member JSON ----------------------------------------------------------- */

START_TEST(test_member_round_trip)
{
	struct ha_member m = sample_member("node1", "replica", 0x3000060ULL), back;
	char err[256] = "";
	json_t *root;
	char *s;

	m.nofailover = true;
	m.timeline = 7;
	m.lsn = 0x1234567890ABULL;
	s = dcs_member_json(&m);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(dcs_member_from_json("node1", s, &back, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(back.name, "node1");
	ck_assert_str_eq(back.role, "replica");
	ck_assert_str_eq(back.state, "running");
	ck_assert_str_eq(back.host, "127.0.0.1");
	ck_assert_int_eq(back.port, 5432);
	ck_assert_str_eq(back.api_url, "http://127.0.0.1:8008");
	ck_assert_uint_eq(back.timeline, 7);
	ck_assert_uint_eq(back.lsn, 0x1234567890ABULL);
	ck_assert(back.nofailover);

	/* The published shape: integers, conn_url, tags, version. */
	root = json_loads(s, 0, NULL);
	ck_assert_ptr_nonnull(root);
	ck_assert(json_is_integer(json_object_get(root, "lsn")));
	ck_assert(json_is_integer(json_object_get(root, "timeline")));
	ck_assert_str_eq(json_string_value(json_object_get(root, "conn_url")), "postgres://127.0.0.1:5432/postgres");
	ck_assert_str_eq(json_string_value(json_object_get(root, "version")), BATON_VERSION);
	ck_assert(json_is_true(json_object_get(json_object_get(root, "tags"), "nofailover")));
	json_decref(root);
	free(s);

	/* IPv6 hosts get brackets in the URL. */
	snprintf(m.host, sizeof(m.host), "::1");
	s = dcs_member_json(&m);
	ck_assert_ptr_nonnull(strstr(s, "postgres://[::1]:5432/postgres"));
	ck_assert(dcs_member_from_json("node1", s, &back, err, sizeof(err)));
	ck_assert_str_eq(back.host, "::1");
	free(s);

	/* Unknown fields are ignored; tags are optional. */
	ck_assert_msg(dcs_member_from_json("n2",
	                                   "{\"role\":\"primary\",\"state\":\"running\",\"host\":\"h\",\"port\":1,"
	                                   "\"api_url\":\"\",\"timeline\":1,\"lsn\":0,\"future\":[1,2]}",
	                                   &back, err, sizeof(err)),
	              "%s", err);
	ck_assert_str_eq(back.name, "n2");
	ck_assert(!back.nofailover);
}
END_TEST

/* Tags with Patroni's meaning and custom tags: published, read back; the
 * custom ones that a hostile key could abuse are left out, bounded. */
START_TEST(test_member_tags)
{
	struct ha_member m = sample_member("node3", "replica", 100), back;
	char err[256] = "", big[2048];
	json_t *root, *tags;
	char *s;

	m.noloadbalance = true;
	snprintf(m.replicatefrom, sizeof(m.replicatefrom), "node2");
	snprintf(m.custom_tags, sizeof(m.custom_tags), "{\"dc\":\"east\",\"rack\":7,\"nosync\":true}");
	s = dcs_member_json(&m);
	ck_assert_ptr_nonnull(s);
	root = json_loads(s, 0, NULL);
	tags = json_object_get(root, "tags");
	ck_assert(json_is_true(json_object_get(tags, "noloadbalance")));
	ck_assert_ptr_null(json_object_get(tags, "nostream")); /* Patroni: only when set */
	ck_assert_str_eq(json_string_value(json_object_get(tags, "replicatefrom")), "node2");
	ck_assert_str_eq(json_string_value(json_object_get(tags, "dc")), "east");
	ck_assert_int_eq(json_integer_value(json_object_get(tags, "rack")), 7);
	ck_assert(json_is_false(json_object_get(tags, "nosync"))); /* a custom tag never overrides */
	json_decref(root);
	ck_assert_msg(dcs_member_from_json("node3", s, &back, err, sizeof(err)), "%s", err);
	free(s);
	ck_assert(back.noloadbalance);
	ck_assert(!back.nostream);
	ck_assert(!back.nosync);
	ck_assert_str_eq(back.replicatefrom, "node2");
	ck_assert_str_eq(back.custom_tags, "{\"dc\":\"east\",\"rack\":7}");

	/* Hostile: lists, objects, odd names left out; too many kept within bounds. */
	ck_assert_msg(dcs_member_from_json("n2",
	                                   "{\"role\":\"replica\",\"state\":\"running\",\"host\":\"h\",\"port\":1,"
	                                   "\"api_url\":\"\",\"timeline\":1,\"lsn\":0,\"tags\":{\"l\":[1],\"o\":{},"
	                                   "\"bad name\":1,\"n\":null,\"ok\":1.5,\"s\":\"x\"}}",
	                                   &back, err, sizeof(err)),
	              "%s", err);
	ck_assert_str_eq(back.custom_tags, "{\"ok\":1.5,\"s\":\"x\"}");
	{
		int n = snprintf(big, sizeof(big),
		                 "{\"role\":\"replica\",\"state\":\"running\",\"host\":\"h\",\"port\":1,"
		                 "\"api_url\":\"\",\"timeline\":1,\"lsn\":0,\"tags\":{");

		for (int i = 0; i < 60; i++)
			n += snprintf(big + n, sizeof(big) - (size_t)n, "%s\"t%02d\":\"xxxxxxxxxxxxxxxxxx\"",
			              i ? "," : "", i);
		snprintf(big + n, sizeof(big) - (size_t)n, "}}");
	}
	ck_assert_msg(dcs_member_from_json("n2", big, &back, err, sizeof(err)), "%s", err);
	ck_assert_uint_lt(strlen(back.custom_tags), HA_TAGS_JSON_MAX);
	root = json_loads(back.custom_tags, 0, NULL);
	ck_assert(json_is_object(root));
	ck_assert_uint_gt(json_object_size(root), 10);
	ck_assert_uint_lt(json_object_size(root), 60);
	json_decref(root);
	ck_assert(dcs_tag_name_ok("dc.zone-1_a"));
	ck_assert(!dcs_tag_name_ok(""));
	ck_assert(!dcs_tag_name_ok("a b"));
}
END_TEST

/* Each row: a field of a valid record replaced (value NULL = removed), or a
 * whole text (field NULL), and a piece of the reason expected. */
static const struct {
	const char *field;
	const char *value;
	const char *reason;
} bad_members[] = {
	{ NULL, "[1,2]", "not a JSON object" },
	{ NULL, "\"replica\"", "not a JSON object" },
	{ NULL, "42", "not a JSON object" },
	{ NULL, "", "invalid JSON" },
	{ NULL, "{\"role\":\"replica\",\"state\":", "invalid JSON" },
	{ "role", NULL, "role: missing" },
	{ "role", "5", "role: expected a string" },
	{ "role", "\"king\"", "role: unknown role" },
	{ "role", "null", "role: expected a string" },
	{ "state", NULL, "state: missing" },
	{ "host", "[\"a\"]", "host: expected a string" },
	{ "port", "0", "port: 0 out of range" },
	{ "port", "65536", "port: 65536 out of range" },
	{ "port", "\"5432\"", "port: expected an integer" },
	{ "port", "5432.0", "port: expected an integer" },
	{ "lsn", "-1", "lsn: -1 out of range" },
	{ "lsn", "\"0/3000060\"", "lsn: expected an integer" },
	{ "lsn", "1.5", "lsn: expected an integer" },
	{ "lsn", NULL, "lsn: missing" },
	{ "timeline", "-2", "timeline: -2 out of range" },
	{ "timeline", "4294967296", "timeline: 4294967296 out of range" },
	{ "tags", "true", "tags: expected an object" },
	{ "tags", "{\"nofailover\":\"yes\"}", "nofailover: expected true or false" },
	{ "tags", "{\"noloadbalance\":1}", "noloadbalance: expected true or false" },
	{ "tags", "{\"nostream\":\"true\"}", "nostream: expected true or false" },
	{ "tags", "{\"replicatefrom\":7}", "replicatefrom: expected a string" },
	{ "name", "\"node9\"", "does not match" },
	{ "name", "7", "name: expected a string" },
	{ "api_url", "{}", "api_url: expected a string" },
	{ "conn_url", "1", "conn_url: expected a string" },
	{ "host",
	  "\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
	  "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh\"",
	  "host: longer than" },
	{ "state", "\"a\\u0000b\"", "NUL" },
	{ "pending_restart", "\"yes\"", "pending_restart: expected true or false" },
	{ "pending_restart", "1", "pending_restart: expected true or false" },
};

START_TEST(test_member_bad)
{
	char *good = member_json("node1", "replica", 100);
	struct ha_member out;
	char err[256];
	char *text;

	if (bad_members[_i].field == NULL) {
		text = strdup(bad_members[_i].value);
	} else {
		json_t *root = json_loads(good, 0, NULL);

		ck_assert_ptr_nonnull(root);
		if (bad_members[_i].value) {
			json_error_t jerr;
			json_t *v = json_loads(bad_members[_i].value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

			ck_assert_msg(v != NULL, "row %d: %s", _i, jerr.text);
			json_object_set_new(root, bad_members[_i].field, v);
		} else {
			json_object_del(root, bad_members[_i].field);
		}
		text = json_dumps(root, JSON_COMPACT);
		json_decref(root);
	}
	ck_assert_ptr_nonnull(text);
	err[0] = '\0';
	ck_assert_msg(!dcs_member_from_json("node1", text, &out, err, sizeof(err)), "row %d accepted: %s", _i, text);
	ck_assert_msg(strstr(err, bad_members[_i].reason) != NULL, "row %d: reason \"%s\", expected \"%s\"", _i, err,
	              bad_members[_i].reason);
	ck_assert_str_eq(out.role, "");
	free(text);
	free(good);
}
END_TEST

/* A member's host is a host name or an IP address: a Unix-socket path
 * ("/dir", "@name") would take libpq past sslmode=verify-full. */
START_TEST(test_member_host)
{
	static const char *const good[] = { "127.0.0.1", "::1", "node1.example.com", "db-2", "fe80::1" };
	static const char *const bad[] = { "", "/var/run/postgresql", "@abstract", "-oops", "a b", "h;x", "h/x" };
	struct ha_member m;
	char err[256], json[512];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(dcs_member_host_ok(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!dcs_member_host_ok(bad[i]), "%s", bad[i]);
	snprintf(json, sizeof(json),
	         "{\"role\":\"replica\",\"state\":\"running\",\"host\":\"/tmp/sock\",\"port\":5432,"
	         "\"api_url\":\"https://127.0.0.1:1\",\"timeline\":1,\"lsn\":1}");
	ck_assert(!dcs_member_from_json("a0", json, &m, err, sizeof(err)));
	ck_assert_msg(strstr(err, "host: \"/tmp/sock\" is not a host name or IP address") != NULL, "%s", err);
}
END_TEST

START_TEST(test_member_null_json)
{
	struct ha_member out;
	char err[128];

	ck_assert(!dcs_member_from_json("node1", NULL, &out, err, sizeof(err)));
	ck_assert(!dcs_member_from_json("", "{}", &out, err, sizeof(err)));
}
END_TEST

/* ---- status ---------------------------------------------------------------- */

START_TEST(test_status_json)
{
	uint64_t lsn = 0;
	uint32_t tl = 0;
	char *s = dcs_status_json(0xFFFFFFFF12ULL, 12);

	ck_assert_ptr_nonnull(s);
	ck_assert(dcs_status_from_json(s, &lsn, &tl));
	ck_assert_uint_eq(lsn, 0xFFFFFFFF12ULL);
	ck_assert_uint_eq(tl, 12);
	free(s);
	ck_assert(!dcs_status_from_json("{\"optime\":\"1\",\"timeline\":1}", &lsn, &tl));
	/* Patroni's status key carries no timeline: 0, unknown */
	ck_assert(dcs_status_from_json("{\"optime\":1,\"slots\":{\"node1\":5}}", &lsn, &tl));
	ck_assert_uint_eq(lsn, 1);
	ck_assert_uint_eq(tl, 0);
	ck_assert(!dcs_status_from_json("{\"timeline\":1}", &lsn, &tl));
	ck_assert(!dcs_status_from_json("{\"optime\":-5,\"timeline\":1}", &lsn, &tl));
	ck_assert(!dcs_status_from_json("nonsense", &lsn, &tl));
	ck_assert(!dcs_status_from_json(NULL, &lsn, &tl));
}
END_TEST

/* ---- config ---------------------------------------------------------------- */

static struct dcs_settings settings(double ttl, double wait, double retry, int64_t lag)
{
	struct dcs_settings d;

	memset(&d, 0, sizeof(d));
	d.ttl = ttl;
	d.loop_wait = wait;
	d.retry_timeout = retry;
	d.maximum_lag_on_failover = lag;
	d.synchronous_node_count = 1;
	return d;
}

/* Patroni's slot keys in the config key: slots in the object form (logical
 * ones with database and plugin), ignore_slots, postgresql.use_slots; they
 * survive a round trip through dcs_config_json and a copy. */
START_TEST(test_config_patroni_slots)
{
	struct dcs_settings d, back, copy;
	char err[256] = "";
	char *s;

	ck_assert_msg(dcs_config_from_json("{\"slots\": {\"keep\": {\"type\": \"physical\"}, \"cdc\": {\"type\": "
	                                   "\"logical\", \"database\": \"app\", \"plugin\": \"pgoutput\"}},"
	                                   " \"ignore_slots\": [{\"name\": \"debezium\"}, {\"type\": \"logical\", "
	                                   "\"plugin\": \"wal2json\"}], \"postgresql\": {\"use_slots\": false}}",
	                                   &d, err, sizeof(err)),
	              "%s", err);
	ck_assert_uint_eq(d.n_slots, 1);
	ck_assert_str_eq(d.slots[0], "keep");
	ck_assert_uint_eq(d.n_logical_slots, 1);
	ck_assert_str_eq(d.logical_slots[0].name, "cdc");
	ck_assert_str_eq(d.logical_slots[0].database, "app");
	ck_assert_str_eq(d.logical_slots[0].plugin, "pgoutput");
	ck_assert_uint_eq(d.n_ignore_slots, 2);
	ck_assert_str_eq(d.ignore_slots[0].name, "debezium");
	ck_assert_ptr_null(d.ignore_slots[0].type);
	ck_assert_str_eq(d.ignore_slots[1].plugin, "wal2json");
	ck_assert(!d.use_slots);
	ck_assert(dcs_settings_copy(&copy, &d));
	s = dcs_config_json(&copy);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "\"cdc\": {\"type\": \"logical\"") || strstr(s, "\"cdc\":{\"type\":\"logical\""), "%s",
	              s);
	ck_assert_msg(dcs_config_from_json(s, &back, err, sizeof(err)), "%s: %s", s, err);
	ck_assert_uint_eq(back.n_slots, 1);
	ck_assert_uint_eq(back.n_logical_slots, 1);
	ck_assert_str_eq(back.logical_slots[0].plugin, "pgoutput");
	ck_assert_uint_eq(back.n_ignore_slots, 2);
	ck_assert_str_eq(back.ignore_slots[1].type, "logical");
	ck_assert(!back.use_slots);
	free(s);
	dcs_settings_free(&back);
	dcs_settings_free(&copy);
	dcs_settings_free(&d);

	/* default: use_slots true, written as such */
	ck_assert(dcs_config_from_json("{}", &d, err, sizeof(err)));
	ck_assert(d.use_slots);
	s = dcs_config_json(&d);
	ck_assert_msg(strstr(s, "\"use_slots\": true") || strstr(s, "\"use_slots\":true"), "%s", s);
	free(s);
	dcs_settings_free(&d);
}
END_TEST

static const struct slots_bad_case {
	const char *json, *err;
} slots_bad_cases[] = {
	{ "{\"slots\": {\"cdc\": {\"type\": \"logical\", \"database\": \"app\"}}}",
	  "slots.cdc: a logical slot needs \"database\" and \"plugin\"" },
	{ "{\"slots\": {\"cdc\": {\"type\": \"other\"}}}", "slots.cdc.type: expected \"physical\" or \"logical\"" },
	{ "{\"slots\": {\"Bad\": {\"type\": \"physical\"}}}", "slots.Bad: a slot name is 1 to 63 of a-z, 0-9 and _" },
	{ "{\"slots\": {\"p\": {\"type\": \"physical\", \"plugin\": \"x\"}}}",
	  "slots.p: a physical slot has no database or plugin" },
	{ "{\"slots\": {\"cdc\": {\"type\": \"logical\", \"database\": \"a b\", \"plugin\": \"p\"}}}",
	  "slots.cdc.database: expected a database name" },
	{ "{\"slots\": {\"cdc\": \"logical\"}}", "slots.cdc: expected an object" },
	{ "{\"ignore_slots\": {\"name\": \"x\"}}", "ignore_slots: expected an array" },
	{ "{\"ignore_slots\": [{}]}", "ignore_slots[0]: expected an object with name, type, database or plugin" },
	{ "{\"ignore_slots\": [{\"nam\": \"x\"}]}", "ignore_slots[0]: unknown key \"nam\"" },
	{ "{\"ignore_slots\": [{\"type\": \"both\"}]}", "ignore_slots[0].type: expected \"physical\" or \"logical\"" },
	{ "{\"postgresql\": {\"use_slots\": \"no\"}}", "postgresql.use_slots: expected true or false" },
};

START_TEST(test_config_slots_bad)
{
	const struct slots_bad_case *c = &slots_bad_cases[_i];
	struct dcs_settings d;
	char err[256] = "";

	ck_assert_msg(!dcs_config_from_json(c->json, &d, err, sizeof(err)), "%s accepted", c->json);
	ck_assert_msg(strstr(err, c->err) == err, "%s: '%s', want '%s'", c->json, err, c->err);
}
END_TEST

/* synchronous_mode as Patroni writes it: "on", "off", "quorum" (= quorum commit). */
static const struct sync_mode_case {
	const char *json;
	bool mode, quorum;
} sync_mode_cases[] = {
	{ "{\"synchronous_mode\": \"quorum\"}", true, true },
	{ "{\"synchronous_mode\": \"on\"}", true, false },
	{ "{\"synchronous_mode\": \"off\"}", false, false },
	{ "{\"synchronous_mode\": true, \"synchronous_quorum\": true}", true, true },
	{ "{\"synchronous_mode\": \"quorum\", \"synchronous_quorum\": true}", true, true },
	{ "{\"synchronous_mode\": false}", false, false },
	/* PATCH /config merges into a document that always says synchronous_quorum */
	{ "{\"synchronous_mode\": \"quorum\", \"synchronous_quorum\": false}", true, true },
	{ "{\"synchronous_mode\": \"on\", \"synchronous_quorum\": true}", true, true },
};

START_TEST(test_config_sync_mode_strings)
{
	const struct sync_mode_case *c = &sync_mode_cases[_i];
	struct dcs_settings back;
	char err[256] = "";

	ck_assert_msg(dcs_config_from_json(c->json, &back, err, sizeof(err)), "%s: %s", c->json, err);
	ck_assert_int_eq(back.synchronous_mode, c->mode);
	ck_assert_int_eq(back.synchronous_quorum, c->quorum);
	dcs_settings_free(&back);
}
END_TEST

/* Synchronous mode settings and permanent slots go through the config key. */
START_TEST(test_config_sync_and_slots)
{
	struct dcs_settings d = settings(5, 1, 2, 0), back;
	char *slots[2] = { (char *)"backup_tool", (char *)"archiver" };
	char err[256] = "";
	char *s;

	d.synchronous_mode = true;
	d.synchronous_mode_strict = true;
	d.synchronous_node_count = 2;
	d.slots = slots;
	d.n_slots = 2;
	s = dcs_config_json(&d);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(dcs_config_from_json(s, &back, err, sizeof(err)), "%s", err);
	ck_assert(back.synchronous_mode && back.synchronous_mode_strict);
	ck_assert_int_eq(back.synchronous_node_count, 2);
	ck_assert_uint_eq(back.n_slots, 2);
	ck_assert_str_eq(back.slots[1], "archiver");
	dcs_settings_free(&back);
	free(s);

	/* Absent: off, one standby, no slots. */
	ck_assert(dcs_config_from_json("{\"ttl\": 5}", &back, err, sizeof(err)));
	ck_assert(!back.synchronous_mode && !back.synchronous_mode_strict);
	ck_assert_int_eq(back.synchronous_node_count, 1);
	ck_assert_uint_eq(back.n_slots, 0);
	dcs_settings_free(&back);

	/* Bad values name the key. */
	ck_assert(!dcs_config_from_json("{\"synchronous_node_count\": 0}", &back, err, sizeof(err)));
	ck_assert_msg(strstr(err, "synchronous_node_count") != NULL, "%s", err);
	ck_assert(!dcs_config_from_json("{\"synchronous_mode\": \"yes\"}", &back, err, sizeof(err)));
	ck_assert_msg(strstr(err, "synchronous_mode") != NULL, "%s", err);
	ck_assert(!dcs_config_from_json("{\"synchronous_mode\": 1}", &back, err, sizeof(err)));
	ck_assert_msg(strstr(err, "synchronous_mode") != NULL, "%s", err);

	ck_assert(!dcs_config_from_json("{\"slots\": [\"Bad-Name\"]}", &back, err, sizeof(err)));
	ck_assert_msg(strstr(err, "slots[0]") != NULL, "%s", err);
	ck_assert(!dcs_config_from_json("{\"slots\": \"x\"}", &back, err, sizeof(err)));
}
END_TEST

/* The sync key: round trip, and anything unexpected is refused. */
START_TEST(test_sync_key)
{
	char names[HA_SYNC_MAX][HA_NAME_MAX], leader[HA_NAME_MAX], err[256];
	char in[2][HA_NAME_MAX] = { "node2", "node3" };
	size_t n = 99;
	int q = 99;
	char *s = dcs_sync_json("node1", in, 2, 0);

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strcmp(s, "{\"leader\":\"node1\",\"sync_standby\":[\"node2\",\"node3\"]}") == 0, "%s", s);
	ck_assert(dcs_sync_from_json(s, leader, sizeof(leader), names, HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert_str_eq(leader, "node1");
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(names[1], "node3");
	ck_assert_int_eq(q, 0);
	free(s);
	/* quorum commit */
	s = dcs_sync_json("node1", in, 2, 1);
	ck_assert_msg(strcmp(s, "{\"leader\":\"node1\",\"sync_standby\":[\"node2\",\"node3\"],\"quorum\":1}") == 0,
	              "%s", s);
	ck_assert(dcs_sync_from_json(s, leader, sizeof(leader), names, HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert_int_eq(q, 1);
	free(s);
	ck_assert(!dcs_sync_from_json("{\"leader\":\"a\",\"sync_standby\":[],\"quorum\":\"x\"}", leader, sizeof(leader),
	                              names, HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert(!dcs_sync_from_json("{\"leader\":\"node1\"}", leader, sizeof(leader), names, HA_SYNC_MAX, &n, &q, err,
	                              sizeof(err)));
	ck_assert_uint_eq(n, 0);
	ck_assert(!dcs_sync_from_json("{\"leader\":\"node1\",\"sync_standby\":[1]}", leader, sizeof(leader), names,
	                              HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert(
	        !dcs_sync_from_json("not json", leader, sizeof(leader), names, HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert(!dcs_sync_from_json("{\"leader\":\"node1\",\"sync_standby\":[\"a\",\"b\",\"c\"]}", leader,
	                              sizeof(leader), names, 2, &n, &q, err, sizeof(err)));
}
END_TEST

START_TEST(test_config_round_trip)
{
	struct dcs_settings d = settings(10, 2, 3.5, 1 << 20), back;
	struct config_param params[2] = { { (char *)"max_connections", (char *)"100" },
		                          { (char *)"wal_level", (char *)"replica" } };
	char err[256] = "";
	json_t *root;
	char *s;

	d.pg_params = params;
	d.n_pg_params = 2;
	s = dcs_config_json(&d);
	ck_assert_ptr_nonnull(s);
	root = json_loads(s, 0, NULL);
	ck_assert(json_is_integer(json_object_get(root, "ttl")));
	ck_assert(json_is_real(json_object_get(root, "retry_timeout")));
	json_decref(root);

	ck_assert_msg(dcs_config_from_json(s, &back, err, sizeof(err)), "%s", err);
	ck_assert(back.ttl == 10);
	ck_assert(back.loop_wait == 2);
	ck_assert(back.retry_timeout == 3.5);
	ck_assert_int_eq(back.maximum_lag_on_failover, 1 << 20);
	ck_assert_uint_eq(back.n_pg_params, 2);
	for (size_t i = 0; i < 2; i++) {
		bool found = false;

		for (size_t j = 0; j < back.n_pg_params; j++)
			if (strcmp(back.pg_params[j].name, params[i].name) == 0) {
				ck_assert_str_eq(back.pg_params[j].value, params[i].value);
				found = true;
			}
		ck_assert(found);
	}
	dcs_settings_free(&back);
	free(s);

	/* Reals where integers are usual, booleans and numbers as parameters,
	 * missing keys take the defaults. */
	ck_assert_msg(dcs_config_from_json("{\"ttl\":6.0,\"maximum_lag_on_failover\":2048.0,"
	                                   "\"postgresql\":{\"parameters\":{\"hot_standby\":true,\"max_wal_senders\":10,"
	                                   "\"x.y\":false}}}",
	                                   &back, err, sizeof(err)),
	              "%s", err);
	ck_assert(back.ttl == 6);
	ck_assert(back.loop_wait == 1);
	ck_assert(back.retry_timeout == 2);
	ck_assert_int_eq(back.maximum_lag_on_failover, 2048);
	ck_assert_uint_eq(back.n_pg_params, 3);
	for (size_t j = 0; j < back.n_pg_params; j++) {
		if (strcmp(back.pg_params[j].name, "hot_standby") == 0)
			ck_assert_str_eq(back.pg_params[j].value, "on");
		else if (strcmp(back.pg_params[j].name, "max_wal_senders") == 0)
			ck_assert_str_eq(back.pg_params[j].value, "10");
		else
			ck_assert_str_eq(back.pg_params[j].value, "off");
	}
	dcs_settings_free(&back);

	ck_assert(dcs_config_from_json("{}", &back, err, sizeof(err)));
	ck_assert(back.ttl == 5 && back.loop_wait == 1 && back.retry_timeout == 2);
	ck_assert_int_eq(back.maximum_lag_on_failover, 1048576);
	dcs_settings_free(&back);
}
END_TEST

static const struct {
	const char *json;
	const char *reason;
} bad_configs[] = {
	{ "{\"ttl\":5,\"loop_wait\":2,\"retry_timeout\":2}", "loop_wait + 2 * retry_timeout" },
	{ "{\"ttl\":1}", "ttl" },
	{ "{\"ttl\":\"5\"}", "ttl: expected a number" },
	{ "{\"loop_wait\":0}", "loop_wait" },
	{ "{\"retry_timeout\":-1}", "retry_timeout" },
	{ "{\"maximum_lag_on_failover\":-1}", "maximum_lag_on_failover" },
	{ "{\"maximum_lag_on_failover\":1.5}", "maximum_lag_on_failover" },
	{ "{\"maximum_lag_on_failover\":true}", "maximum_lag_on_failover" },
	{ "{\"postgresql\":[]}", "postgresql: expected an object" },
	{ "{\"postgresql\":{\"parameters\":5}}", "postgresql.parameters: expected an object" },
	{ "{\"postgresql\":{\"parameters\":{\"a\":{}}}}", "postgresql.parameters.a" },
	{ "{\"postgresql\":{\"parameters\":{\"a b\":\"1\"}}}", "invalid parameter name" },
	{ "{\"postgresql\":{\"parameters\":{\"a\":\"1\\nb=2\"}}}", "line break" },
	{ "[5]", "not a JSON object" },
	{ "{\"ttl\":", "invalid JSON" },
	{ "{\"pause\":\"yes\"}", "pause: expected true or false" },
	{ "{\"pause\":1}", "pause: expected true or false" },
};

START_TEST(test_config_bad)
{
	struct dcs_settings out;
	char err[256] = "";

	ck_assert_msg(!dcs_config_from_json(bad_configs[_i].json, &out, err, sizeof(err)), "row %d accepted", _i);
	ck_assert_msg(strstr(err, bad_configs[_i].reason) != NULL, "row %d: reason \"%s\", expected \"%s\"", _i, err,
	              bad_configs[_i].reason);
	ck_assert_ptr_null(out.pg_params);
	ck_assert_uint_eq(out.n_pg_params, 0);
}
END_TEST

START_TEST(test_config_pause)
{
	struct dcs_settings d = settings(10, 2, 3, 1 << 20), back;
	char err[256] = "";
	char *s;

	d.pause = true;
	s = dcs_config_json(&d);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "\"pause\":true") != NULL, "%s", s);
	ck_assert_msg(dcs_config_from_json(s, &back, err, sizeof(err)), "%s", err);
	ck_assert(back.pause);
	dcs_settings_free(&back);
	free(s);
	/* Absent: not paused. */
	ck_assert_msg(dcs_config_from_json("{}", &back, err, sizeof(err)), "%s", err);
	ck_assert(!back.pause);
	dcs_settings_free(&back);
}
END_TEST

START_TEST(test_member_pending_restart)
{
	struct ha_member m = sample_member("node1", "replica", 100), back;
	char err[256] = "";
	char *s;

	m.pending_restart = true;
	s = dcs_member_json(&m);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(dcs_member_from_json("node1", s, &back, err, sizeof(err)), "%s", err);
	ck_assert(back.pending_restart);
	free(s);
	/* Records of agents that do not publish it read as false. */
	ck_assert_msg(dcs_member_from_json("node1",
	                                   "{\"role\":\"replica\",\"state\":\"running\",\"host\":\"h\",\"port\":1,"
	                                   "\"api_url\":\"http://h:1\",\"timeline\":1,\"lsn\":0}",
	                                   &back, err, sizeof(err)),
	              "%s", err);
	ck_assert(!back.pending_restart);
}
END_TEST

/* ---- switchover -------------------------------------------------------------- */

START_TEST(test_switchover_json)
{
	struct dcs_switchover sw = { .from = "node1",
		                     .to = "node2",
		                     .scheduled_at = 1764100000,
		                     .requested_at = 1764099000 },
	                      back;
	char err[256] = "";
	char *s;

	s = dcs_switchover_json(&sw);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "\"kind\":\"switchover\"") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\"scheduled_at\":1764100000") != NULL, "%s", s);
	ck_assert_msg(dcs_switchover_from_json(s, &back, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(back.from, "node1");
	ck_assert_str_eq(back.to, "node2");
	ck_assert(!back.failover);
	ck_assert(back.scheduled_at == 1764100000 && back.requested_at == 1764099000);
	free(s);

	/* "now" leaves scheduled_at out; a failover says so. */
	sw.scheduled_at = 0;
	sw.failover = true;
	s = dcs_switchover_json(&sw);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "scheduled_at") == NULL, "%s", s);
	ck_assert_msg(dcs_switchover_from_json(s, &back, err, sizeof(err)), "%s", err);
	ck_assert(back.failover);
	ck_assert(back.scheduled_at == 0);
	free(s);

	/* Every field is optional: any leader, the best candidate, now. */
	ck_assert_msg(dcs_switchover_from_json("{}", &back, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(back.from, "");
	ck_assert_str_eq(back.to, "");
	ck_assert(!back.failover);
}
END_TEST

static const struct {
	const char *json;
	const char *reason;
} bad_switchovers[] = {
	{ "[]", "not a JSON object" },
	{ "{\"to\":", "invalid JSON" },
	{ "{\"to\":5}", "to: expected a string" },
	{ "{\"from\":\"a/b\"}", "from: \"a/b\" is not a member name" },
	{ "{\"kind\":\"takeover\"}", "kind: expected \"switchover\" or \"failover\"" },
	{ "{\"kind\":\"failover\"}", "to: a failover must name its candidate" },
	{ "{\"scheduled_at\":\"2026-11-25T20:00:00Z\"}", "scheduled_at: expected a number" },
	{ "{\"scheduled_at\":-5}", "scheduled_at" },
	{ "{\"to\":\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"}", "to: longer than" },
};

START_TEST(test_switchover_bad)
{
	struct dcs_switchover out;
	char err[256] = "";

	ck_assert_msg(!dcs_switchover_from_json(bad_switchovers[_i].json, &out, err, sizeof(err)), "row %d accepted",
	              _i);
	ck_assert_msg(strstr(err, bad_switchovers[_i].reason) != NULL, "row %d: reason \"%s\", expected \"%s\"", _i,
	              err, bad_switchovers[_i].reason);
	ck_assert_str_eq(out.to, "");
}
END_TEST

START_TEST(test_parse_cluster_switchover)
{
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[1024];

	ck_assert_ptr_nonnull(v);
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	ck_assert_str_eq(keys.switchover, "/baton/main/switchover");
	add_kv(&k, "/baton/main/config", "{\"pause\":true}", 0);
	add_kv(&k, "/baton/main/switchover", "{\"to\":\"node3\",\"kind\":\"failover\"}", 0);
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, warn, sizeof(warn));
	ck_assert_str_eq(warn, "");
	ck_assert(v->paused);
	ck_assert(v->has_switchover);
	ck_assert(v->sw_failover);
	ck_assert_str_eq(v->sw_from, "");
	ck_assert_str_eq(v->sw_to, "node3");
	dcs_switchover_describe(v, warn, sizeof(warn));
	ck_assert_str_eq(warn, "failover from the leader to node3");
	v->sw_failover = false;
	v->sw_scheduled_at = 1764100000;
	dcs_switchover_describe(v, warn, sizeof(warn));
	ck_assert_str_eq(warn, "switchover from the leader to node3 at 2025-11-25T19:46:40Z");

	/* Unreadable: reported, and no request is seen. */
	free_kvs(&k);
	add_kv(&k, "/baton/main/switchover", "{\"kind\":\"failover\"}", 0);
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, warn, sizeof(warn));
	ck_assert_msg(strstr(warn, "/baton/main/switchover: ignored: to: a failover must name its candidate") != NULL,
	              "%s", warn);
	ck_assert(!v->has_switchover);
	ck_assert(!v->paused);
	free_kvs(&k);
	free(v);
}
END_TEST

/* ---- history --------------------------------------------------------------- */

START_TEST(test_history)
{
	char *h = NULL, *next;
	json_t *arr, *e;

	for (uint32_t tl = 1; tl <= 105; tl++) {
		next = dcs_history_append(h, tl, (uint64_t)tl * 1000, "failover", "node1", (time_t)1700000000 + tl);
		ck_assert_ptr_nonnull(next);
		free(h);
		h = next;
	}
	arr = json_loads(h, 0, NULL);
	ck_assert(json_is_array(arr));
	ck_assert_uint_eq(json_array_size(arr), 100);
	for (size_t i = 0; i < 100; i++) {
		e = json_array_get(arr, i);
		ck_assert_int_eq(json_integer_value(json_object_get(e, "timeline")), (json_int_t)(i + 6));
		ck_assert_int_eq(json_integer_value(json_object_get(e, "lsn")), (json_int_t)(i + 6) * 1000);
	}
	e = json_array_get(arr, 99);
	ck_assert_str_eq(json_string_value(json_object_get(e, "reason")), "failover");
	ck_assert_str_eq(json_string_value(json_object_get(e, "leader")), "node1");
	/* 1700000000 + 105 */
	ck_assert_str_eq(json_string_value(json_object_get(e, "time")), "2023-11-14T22:15:05Z");
	json_decref(arr);
	free(h);

	/* Unreadable or absent history starts anew. */
	h = dcs_history_append("{\"not\":\"an array\"}", 2, 5, "switchover", "node2", 0);
	arr = json_loads(h, 0, NULL);
	ck_assert_uint_eq(json_array_size(arr), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "time")), "1970-01-01T00:00:00Z");
	json_decref(arr);
	free(h);
	h = dcs_history_append("garbage", 2, 5, NULL, NULL, 0);
	ck_assert_str_eq(
	        h, "[{\"timeline\":2,\"lsn\":5,\"reason\":\"\",\"time\":\"1970-01-01T00:00:00Z\",\"leader\":\"\"}]");
	free(h);
	h = dcs_history_append(NULL, 1, 1, "bootstrap", "n", 0);
	ck_assert_ptr_nonnull(h);
	free(h);
}
END_TEST

/* ---- a Patroni cluster's keys ---------------------------------------------- */

/* Captured from a running Patroni 3.0.2 cluster (3 nodes, synchronous mode,
 * after one switchover and `patronictl pause`), key by key. */
#define P302_CONFIG                                                                                                      \
	"{\"ttl\":10,\"loop_wait\":1,\"retry_timeout\":2,\"maximum_lag_on_failover\":1048576,\"synchronous_mode\":true," \
	"\"slots\":{\"keep_me\":{\"type\":\"physical\"}},\"postgresql\":{\"use_pg_rewind\":true},\"pause\":true}"
#define P302_HISTORY "[[1,67109296,\"no recovery target specified\",\"2026-12-03T16:53:11.483591+00:00\",\"node2\"]]"
#define P302_NODE1                                                                                                    \
	"{\"conn_url\":\"postgres://127.0.0.1:23629/postgres\",\"api_url\":\"http://127.0.0.1:27180/patroni\","       \
	"\"state\":\"running\",\"role\":\"replica\",\"version\":\"3.0.2\",\"xlog_location\":67109672,\"timeline\":2," \
	"\"pause\":true}"
#define P302_NODE2                                                                                                   \
	"{\"conn_url\":\"postgres://127.0.0.1:27139/postgres\",\"api_url\":\"http://127.0.0.1:23999/patroni\","      \
	"\"state\":\"running\",\"role\":\"master\",\"version\":\"3.0.2\",\"xlog_location\":67109672,\"timeline\":2," \
	"\"pause\":true}"

START_TEST(test_parse_cluster_patroni)
{
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct dcs_settings in_force;
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[1024] = "junk";

	ck_assert(dcs_keys_init(&keys, "/service", "it"));
	add_kv(&k, "/service/it/config", P302_CONFIG, 0);
	add_kv(&k, "/service/it/failover", "{}", 0);
	add_kv(&k, "/service/it/history", P302_HISTORY, 0);
	add_kv(&k, "/service/it/initialize", "7715121675177406188", 0);
	add_kv(&k, "/service/it/leader", "node2", 0x694d9a2f6b1c0e11LL);
	add_kv(&k, "/service/it/members/node1", P302_NODE1, 0x694d9a2f6b1c0e12LL);
	add_kv(&k, "/service/it/members/node2", P302_NODE2, 0x694d9a2f6b1c0e11LL);
	add_kv(&k, "/service/it/status", "{\"optime\":67109672}", 0);
	add_kv(&k, "/service/it/sync", "{\"leader\":\"node2\",\"sync_standby\":\"node1\"}", 0);

	dcs_parse_cluster(&keys, &k.r, NULL, v, &in_force, warn, sizeof(warn));
	ck_assert_msg(warn[0] == '\0', "unexpected warnings: %s", warn);
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "node2");
	ck_assert_uint_eq(v->sysid, 7715121675177406188ULL);
	ck_assert(v->ttl == 10 && v->loop_wait == 1 && v->retry_timeout == 2);
	ck_assert(v->synchronous_mode);
	ck_assert(v->paused);
	ck_assert_uint_eq(in_force.n_slots, 1);
	ck_assert_str_eq(in_force.slots[0], "keep_me");
	ck_assert_uint_eq(v->leader_lsn, 67109672);
	ck_assert_uint_eq(v->leader_timeline, 0); /* Patroni's status has none */
	ck_assert(v->has_sync);
	ck_assert_str_eq(v->sync_leader, "node2");
	ck_assert_uint_eq(v->n_sync, 1);
	ck_assert_str_eq(v->sync_standbys[0], "node1");
	ck_assert_uint_eq(v->n_members, 2);
	ck_assert_str_eq(v->members[0].name, "node1");
	ck_assert_str_eq(v->members[0].role, "replica");
	ck_assert_str_eq(v->members[0].state, "running");
	ck_assert_str_eq(v->members[0].host, "127.0.0.1");
	ck_assert_int_eq(v->members[0].port, 23629);
	ck_assert_str_eq(v->members[0].api_url, "http://127.0.0.1:27180");
	ck_assert_uint_eq(v->members[0].timeline, 2);
	ck_assert_uint_eq(v->members[0].lsn, 67109672);
	ck_assert_int_eq(v->members[0].failover_priority, 1);
	ck_assert_str_eq(v->members[1].role, "primary"); /* "master" */
	ck_assert_int_eq(v->members[1].port, 27139);
	dcs_settings_free(&in_force);
	free_kvs(&k);
	free(v);
}
END_TEST

START_TEST(test_patroni_records)
{
	char names[HA_SYNC_MAX][HA_NAME_MAX], leader[HA_NAME_MAX], err[256];
	struct ha_member m;
	struct dcs_settings d;
	size_t n = 9;
	int q = 9;
	json_t *arr, *e;
	char *h;

	/* sync: none (null), several ("a,b"), and a bad list */
	ck_assert(dcs_sync_from_json("{\"leader\":\"node2\",\"sync_standby\":null}", leader, sizeof(leader), names,
	                             HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq(leader, "node2");
	ck_assert(dcs_sync_from_json("{\"leader\":\"n1\",\"sync_standby\":\"n2,n3\"}", leader, sizeof(leader), names,
	                             HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(names[0], "n2");
	ck_assert_str_eq(names[1], "n3");
	ck_assert(!dcs_sync_from_json("{\"leader\":\"n1\",\"sync_standby\":\"n2,,n3\"}", leader, sizeof(leader), names,
	                              HA_SYNC_MAX, &n, &q, err, sizeof(err)));
	ck_assert_uint_eq(n, 0);

	/* members: IPv6 and credentials in conn_url; replicas without a timeline */
	ck_assert(dcs_member_from_json("pg1",
	                               "{\"conn_url\":\"postgresql://u:pw@[::1]:5433/postgres\",\"api_url\":\"https://"
	                               "[::1]:8008/patroni\",\"state\":\"starting\",\"role\":\"replica\"}",
	                               &m, err, sizeof(err)));
	ck_assert_str_eq(m.host, "::1");
	ck_assert_int_eq(m.port, 5433);
	ck_assert_str_eq(m.api_url, "https://[::1]:8008");
	ck_assert_uint_eq(m.timeline, 0);
	ck_assert_uint_eq(m.lsn, 0);
	ck_assert(!dcs_member_from_json("pg1",
	                                "{\"conn_url\":\"postgres://h:5432/x\",\"api_url\":\"http://h:8008/patroni\","
	                                "\"state\":\"running\",\"role\":\"demoted\"}",
	                                &m, err, sizeof(err)));
	ck_assert_msg(strstr(err, "demoted") != NULL, "%s", err);
	ck_assert(!dcs_member_from_json("pg1",
	                                "{\"conn_url\":\"mysql://h:5432/x\",\"api_url\":\"http://h:8008/patroni\","
	                                "\"state\":\"running\",\"role\":\"replica\"}",
	                                &m, err, sizeof(err)));
	ck_assert_msg(strstr(err, "conn_url") != NULL, "%s", err);
	ck_assert(!dcs_member_from_json("pg1",
	                                "{\"conn_url\":\"postgres://h:99999/x\",\"api_url\":\"http://h:8008/patroni\","
	                                "\"state\":\"running\",\"role\":\"replica\"}",
	                                &m, err, sizeof(err)));

	/* config: logical slots are left out, physical ones kept */
	ck_assert(dcs_config_from_json("{\"slots\":{\"a_phys\":{\"type\":\"physical\"},\"b_log\":{\"type\":\"logical\","
	                               "\"database\":\"d\",\"plugin\":\"pgoutput\"},\"c\":null}}",
	                               &d, err, sizeof(err)));
	ck_assert_uint_eq(d.n_slots, 2);
	ck_assert_str_eq(d.slots[0], "a_phys");
	ck_assert_str_eq(d.slots[1], "c");
	dcs_settings_free(&d);
	ck_assert(!dcs_config_from_json("{\"slots\":{\"Bad-Name\":{\"type\":\"physical\"}}}", &d, err, sizeof(err)));

	/* history: Patroni's entries take baton's shape when baton appends
	 * (Patroni records the timeline that ended, baton the new one) */
	h = dcs_history_append(P302_HISTORY, 3, 67200000, "failover", "node1", 0);
	ck_assert_ptr_nonnull(h);
	arr = json_loads(h, 0, NULL);
	ck_assert_uint_eq(json_array_size(arr), 2);
	e = json_array_get(arr, 0);
	ck_assert(json_is_object(e));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "timeline")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "lsn")), 67109296);
	ck_assert_str_eq(json_string_value(json_object_get(e, "reason")), "no recovery target specified");
	ck_assert_str_eq(json_string_value(json_object_get(e, "time")), "2026-12-03T16:53:11.483591+00:00");
	ck_assert_str_eq(json_string_value(json_object_get(e, "leader")), "node2");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "leader")), "node1");
	json_decref(arr);
	free(h);
	/* an old entry without the time and leader (Patroni before 1.6) */
	h = dcs_history_append("[[1,100,\"x\"]]", 2, 200, "failover", "n", 0);
	ck_assert_str_eq(h,
	                 "[{\"timeline\":2,\"lsn\":100,\"reason\":\"x\",\"time\":\"\",\"leader\":\"\"},{\"timeline\":2,"
	                 "\"lsn\":200,\"reason\":\"failover\",\"time\":\"1970-01-01T00:00:00Z\",\"leader\":\"n\"}]");
	free(h);
}
END_TEST

/* ---- the cluster view ------------------------------------------------------ */

START_TEST(test_parse_cluster)
{
	struct dcs_settings fallback = settings(30, 10, 10, 1000), in_force;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[1024] = "junk";
	char *m1 = member_json("node1", "primary", 5000), *m2 = member_json("node2", "replica", 4000);
	char *status = dcs_status_json(5100, 3);

	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	add_kv(&k, "/baton/main/config",
	       "{\"ttl\":10,\"loop_wait\":2,\"retry_timeout\":3,\"maximum_lag_on_failover\":4096,"
	       "\"postgresql\":{\"parameters\":{\"max_connections\":\"50\"}}}",
	       0);
	add_kv(&k, "/baton/main/history", "[]", 0);
	add_kv(&k, "/baton/main/initialize", "7301234567890123456", 0);
	add_kv(&k, "/baton/main/leader", "node1", 0x7a1b2c3d4e5f6071LL);
	add_kv(&k, "/baton/main/members/node1", m1, 11);
	add_kv(&k, "/baton/main/members/node2", m2, 12);
	add_kv(&k, "/baton/main/status", status, 0);
	add_kv(&k, "/baton/other/leader", "intruder", 5); /* another cluster's key */
	add_kv(&k, "/baton/main/switchover", "{\"from\":\"node1\",\"to\":\"node2\",\"scheduled_at\":1764100000}", 0);

	dcs_parse_cluster(&keys, &k.r, &fallback, v, &in_force, warn, sizeof(warn));
	ck_assert_msg(warn[0] == '\0', "unexpected warnings: %s", warn);
	ck_assert(v->etcd_ok);
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "node1");
	ck_assert_int_eq(v->leader_lease, 0x7a1b2c3d4e5f6071LL);
	ck_assert(v->init_key_present);
	ck_assert(!v->init_in_progress);
	ck_assert_uint_eq(v->sysid, 7301234567890123456ULL);
	ck_assert_uint_eq(v->leader_lsn, 5100);
	ck_assert_uint_eq(v->leader_timeline, 3);
	ck_assert(v->ttl == 10 && v->loop_wait == 2 && v->retry_timeout == 3);
	ck_assert_int_eq(v->maximum_lag_on_failover, 4096);
	ck_assert_uint_eq(v->n_members, 2);
	ck_assert_str_eq(v->members[0].name, "node1");
	ck_assert_str_eq(v->members[0].role, "primary");
	ck_assert_uint_eq(v->members[0].lsn, 5000);
	ck_assert_str_eq(v->members[1].name, "node2");
	ck_assert_uint_eq(v->members[1].lsn, 4000);
	ck_assert(in_force.ttl == 10);
	ck_assert(!v->paused);
	ck_assert(v->has_switchover);
	ck_assert_str_eq(v->sw_from, "node1");
	ck_assert_str_eq(v->sw_to, "node2");
	ck_assert(v->sw_scheduled_at == 1764100000);
	ck_assert(!v->sw_failover);
	ck_assert_uint_eq(in_force.n_pg_params, 1);
	ck_assert_str_eq(in_force.pg_params[0].name, "max_connections");
	ck_assert_str_eq(in_force.pg_params[0].value, "50");
	dcs_settings_free(&in_force);

	/* No leader, no initialize, no config: the fallback is in force. */
	free_kvs(&k);
	add_kv(&k, "/baton/main/members/node2", m2, 12);
	dcs_parse_cluster(&keys, &k.r, &fallback, v, &in_force, warn, sizeof(warn));
	ck_assert_str_eq(warn, "");
	ck_assert(!v->has_leader);
	ck_assert(!v->init_key_present);
	ck_assert_uint_eq(v->sysid, 0);
	ck_assert(v->ttl == 30 && v->loop_wait == 10 && v->retry_timeout == 10);
	ck_assert_int_eq(v->maximum_lag_on_failover, 1000);
	ck_assert_uint_eq(v->n_members, 1);
	dcs_settings_free(&in_force);

	/* An empty read, no fallback: built-in defaults, and settings_out NULL. */
	free_kvs(&k);
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, NULL, 0);
	ck_assert(v->etcd_ok);
	ck_assert(v->ttl == 5 && v->loop_wait == 1 && v->retry_timeout == 2);
	ck_assert_uint_eq(v->n_members, 0);

	free(m1);
	free(m2);
	free(status);
	free(v);
}
END_TEST

/* A standby cluster's settings survive an invalid or missing config key:
 * the view keeps the last good ones (standby, pause, synchronous mode)
 * and says which case it met. */
START_TEST(test_parse_cluster_keeps_standby)
{
	const char *good = "{\"pause\":true,\"synchronous_mode\":true,"
	                   "\"standby_cluster\":{\"host\":\"10.1.0.5\",\"port\":5433}}";
	struct dcs_settings last, in_force;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[2048], err[256], sum[300];

	ck_assert_ptr_nonnull(v);
	ck_assert(dcs_keys_init(&keys, "/baton", "b"));
	add_kv(&k, "/baton/b/config", good, 0);
	k.kv[0].mod_revision = 123;
	add_kv(&k, "/baton/b/initialize", "7301234567890123456", 0);
	dcs_parse_cluster(&keys, &k.r, NULL, v, &last, warn, sizeof(warn));
	ck_assert_int_eq(v->config_key, HA_CONFIG_VALID);
	ck_assert_int_eq(v->config_revision, 123);
	ck_assert(v->standby_cluster && v->paused && v->synchronous_mode);
	dcs_settings_summary(&last, sum, sizeof(sum));
	ck_assert_str_eq(sum, "standby cluster following 10.1.0.5:5433, paused, synchronous mode");

	/* Patroni's create_replica_methods inside standby_cluster: refused, so
	 * the last good settings stay in force, mode and all. */
	free_kvs(&k);
	add_kv(&k, "/baton/b/config",
	       "{\"standby_cluster\":{\"host\":\"10.1.0.5\",\"create_replica_methods\":[\"basebackup\"]}}", 0);
	k.kv[0].mod_revision = 124;
	dcs_parse_cluster(&keys, &k.r, &last, v, &in_force, warn, sizeof(warn));
	ck_assert_int_eq(v->config_key, HA_CONFIG_INVALID);
	ck_assert_int_eq(v->config_revision, 124);
	ck_assert_msg(strstr(warn, "standby_cluster.create_replica_methods") != NULL, "%s", warn);
	ck_assert(v->standby_cluster && v->paused && v->synchronous_mode);
	ck_assert_str_eq(v->standby_host, "10.1.0.5");
	ck_assert_int_eq(v->standby_port, 5433);
	ck_assert_str_eq(in_force.standby_host, "10.1.0.5");
	dcs_settings_free(&in_force);

	/* Deleted: the same. */
	free_kvs(&k);
	add_kv(&k, "/baton/b/initialize", "7301234567890123456", 0);
	dcs_parse_cluster(&keys, &k.r, &last, v, &in_force, warn, sizeof(warn));
	ck_assert_int_eq(v->config_key, HA_CONFIG_MISSING);
	ck_assert(v->standby_cluster && v->paused && v->synchronous_mode);
	dcs_settings_free(&in_force);

	/* Only a valid key without standby_cluster ends the standby cluster. */
	free_kvs(&k);
	add_kv(&k, "/baton/b/config", "{\"standby_cluster\":null}", 0);
	dcs_parse_cluster(&keys, &k.r, &last, v, &in_force, warn, sizeof(warn));
	ck_assert_int_eq(v->config_key, HA_CONFIG_VALID);
	ck_assert(!v->standby_cluster && !v->paused);
	dcs_settings_summary(&in_force, sum, sizeof(sum));
	ck_assert_str_eq(sum, "not a standby cluster");
	dcs_settings_free(&in_force);

	free_kvs(&k);
	dcs_settings_free(&last);
	(void)err;
	free(v);
}
END_TEST

/* The data directory's copy of the last good key: only this member's. */
START_TEST(test_lastgood_record)
{
	const char *cfg = "{\"standby_cluster\":{\"host\":\"a.example\",\"port\":5432}}";
	char *json = dcs_lastgood_json("/baton", "b", "b1", 77, cfg), *raw = NULL, err[256];
	int64_t rev = 0;

	ck_assert_ptr_nonnull(json);
	ck_assert(dcs_lastgood_parse(json, "/baton", "b", "b1", &rev, &raw, err, sizeof(err)));
	ck_assert_int_eq(rev, 77);
	ck_assert_str_eq(raw, cfg);
	free(raw);
	/* Another member's (a base backup's), another scope's, another namespace's. */
	ck_assert(!dcs_lastgood_parse(json, "/baton", "b", "b2", &rev, &raw, err, sizeof(err)));
	ck_assert_ptr_null(raw);
	ck_assert_msg(strstr(err, "written by member \"b1\" of /baton/b/") != NULL, "%s", err);
	ck_assert(!dcs_lastgood_parse(json, "/baton", "a", "b1", &rev, &raw, err, sizeof(err)));
	ck_assert(!dcs_lastgood_parse(json, "/other", "b", "b1", &rev, &raw, err, sizeof(err)));
	free(json);
	/* Broken or incomplete records. */
	ck_assert(!dcs_lastgood_parse("{", "/baton", "b", "b1", &rev, &raw, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not JSON") != NULL, "%s", err);
	ck_assert(!dcs_lastgood_parse("{\"namespace\":\"/baton\",\"scope\":\"b\",\"name\":\"b1\",\"revision\":3}",
	                              "/baton", "b", "b1", &rev, &raw, err, sizeof(err)));
	ck_assert(!dcs_lastgood_parse("{\"namespace\":\"/baton\",\"scope\":\"b\",\"name\":\"b1\",\"revision\":0,"
	                              "\"config\":\"{}\"}",
	                              "/baton", "b", "b1", &rev, &raw, err, sizeof(err)));
	ck_assert_ptr_null(raw);
}
END_TEST

START_TEST(test_parse_cluster_unreadable)
{
	struct dcs_settings fallback = settings(8, 1, 2, 77), in_force;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[2048];
	char *m1 = member_json("node1", "replica", 10);

	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	add_kv(&k, "/baton/main/config", "{\"ttl\":5,\"loop_wait\":4,\"retry_timeout\":4}", 0);
	add_kv(&k, "/baton/main/initialize", "node3", 99);
	add_kv(&k, "/baton/main/leader", "", 42);
	add_kv(&k, "/baton/main/members/node1", m1, 11);
	add_kv(&k, "/baton/main/members/node2", "{\"role\":\"replica\",\"port\":\"x\"}", 12);
	add_kv(&k, "/baton/main/members/node3", "not json", 13);
	add_kv(&k, "/baton/main/status", "{\"optime\":\"0/5\"}", 0);

	dcs_parse_cluster(&keys, &k.r, &fallback, v, &in_force, warn, sizeof(warn));
	/* The good member is there, the bad ones are named with their reason. */
	ck_assert_uint_eq(v->n_members, 1);
	ck_assert_str_eq(v->members[0].name, "node1");
	ck_assert_ptr_null(ha_find_member(v, "node2"));
	ck_assert_msg(strstr(warn, "/baton/main/members/node2: skipped: state: missing") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "/baton/main/members/node3: skipped: invalid JSON") != NULL, "%s", warn);
	/* The invalid config keeps the fallback. */
	ck_assert_msg(strstr(warn, "/baton/main/config: invalid config") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "loop_wait + 2 * retry_timeout") != NULL, "%s", warn);
	ck_assert(v->ttl == 8);
	ck_assert_int_eq(v->maximum_lag_on_failover, 77);
	ck_assert(in_force.ttl == 8);
	/* An unreadable leader key still means someone holds it. */
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "");
	ck_assert_int_eq(v->leader_lease, 42);
	ck_assert_msg(strstr(warn, "/baton/main/leader: unreadable") != NULL, "%s", warn);
	/* Bootstrap in progress: initialize on a lease holds the owner. */
	ck_assert(v->init_key_present);
	ck_assert(v->init_in_progress);
	ck_assert_str_eq(v->init_owner, "node3");
	ck_assert_uint_eq(v->sysid, 0);
	ck_assert_msg(strstr(warn, "/baton/main/status: unreadable") != NULL, "%s", warn);
	ck_assert_uint_eq(v->leader_lsn, 0);
	dcs_settings_free(&in_force);

	/* The caller may pass its last good settings as both in and out. */
	free_kvs(&k);
	ck_assert(dcs_settings_copy(&in_force, &fallback));
	add_kv(&k, "/baton/main/config", "{\"ttl\":\"x\"}", 0);
	dcs_parse_cluster(&keys, &k.r, &in_force, v, &in_force, warn, sizeof(warn));
	ck_assert(in_force.ttl == 8);
	free_kvs(&k);
	add_kv(&k, "/baton/main/config", "{\"ttl\":9,\"postgresql\":{\"parameters\":{\"a\":1}}}", 0);
	dcs_parse_cluster(&keys, &k.r, &in_force, v, &in_force, warn, sizeof(warn));
	ck_assert(in_force.ttl == 9);
	ck_assert(v->ttl == 9);
	ck_assert_uint_eq(in_force.n_pg_params, 1);
	dcs_parse_cluster(&keys, &k.r, &in_force, v, &in_force, warn, sizeof(warn));
	ck_assert_uint_eq(in_force.n_pg_params, 1);
	dcs_settings_free(&in_force);

	/* A non-numeric initialize without a lease is reported, sysid stays 0. */
	free_kvs(&k);
	add_kv(&k, "/baton/main/initialize", "12ab", 0);
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, warn, sizeof(warn));
	ck_assert(v->init_key_present && !v->init_in_progress);
	ck_assert_uint_eq(v->sysid, 0);
	ck_assert_msg(strstr(warn, "not a system identifier") != NULL, "%s", warn);

	free_kvs(&k);
	free(m1);
	free(v);
}
END_TEST

START_TEST(test_parse_cluster_many_members)
{
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct kvs k = { 0 };
	struct dcs_keys keys;
	char warn[8192];

	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	for (int i = 0; i < HA_MAX_MEMBERS + 3; i++) {
		char name[16], key[64];
		char *m;

		snprintf(name, sizeof(name), "n%02d", i);
		snprintf(key, sizeof(key), "/baton/main/members/%s", name);
		m = member_json(name, "replica", (uint64_t)i);
		add_kv(&k, key, m, 1);
		free(m);
	}
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, warn, sizeof(warn));
	ck_assert_uint_eq(v->n_members, HA_MAX_MEMBERS);
	ck_assert_msg(strstr(warn, "members/n34: more than") != NULL, "%s", warn);
	/* The warning buffer is cut cleanly when too small. */
	dcs_parse_cluster(&keys, &k.r, NULL, v, NULL, warn, 20);
	ck_assert_uint_le(strlen(warn), 19);
	free_kvs(&k);
	free(v);
}
END_TEST

/* ---- jsonf: typed field reads ---------------------------------------------- */

/* The object every jsonf test reads from. */
static json_t *jsonf_sample(void)
{
	json_t *o = json_loads("{\"s\":\"abc\",\"nul\":\"a\\u0000b\",\"i\":5,\"neg\":-3,\"r\":5.0,"
	                       "\"t\":true,\"f\":false,\"z\":0,\"nil\":null}",
	                       JSON_ALLOW_NUL, NULL);

	ck_assert_ptr_nonnull(o);
	return o;
}

START_TEST(test_jsonf_set_err)
{
	char err[8];

	jsonf_set_err(NULL, 0, "%s", "nowhere");
	jsonf_set_err(err, 0, "%s", "nowhere");
	jsonf_set_err(err, sizeof(err), "%s: %d", "abcdef", 42);
	ck_assert_str_eq(err, "abcdef:"); /* cut to fit, still terminated */
}
END_TEST

START_TEST(test_jsonf_string)
{
	json_t *o = jsonf_sample();
	char buf[4] = "xy", small[3] = "", err[128] = "";

	ck_assert_msg(jsonf_string(o, "s", JSONF_REQUIRED, buf, sizeof(buf), err, sizeof(err)), "%s", err);
	ck_assert_str_eq(buf, "abc"); /* exactly len - 1 characters fit */

	snprintf(buf, sizeof(buf), "xy");
	ck_assert(jsonf_string(o, "absent", JSONF_OPTIONAL, buf, sizeof(buf), err, sizeof(err)));
	ck_assert_str_eq(buf, "xy");
	ck_assert(!jsonf_string(o, "absent", JSONF_REQUIRED, buf, sizeof(buf), err, sizeof(err)));
	ck_assert_str_eq(err, "absent: missing");
	ck_assert(!jsonf_string(o, "i", JSONF_OPTIONAL, buf, sizeof(buf), err, sizeof(err)));
	ck_assert_str_eq(err, "i: expected a string");
	ck_assert(!jsonf_string(o, "nil", JSONF_OPTIONAL, buf, sizeof(buf), err, sizeof(err)));
	ck_assert_str_eq(err, "nil: expected a string");
	ck_assert(!jsonf_string(o, "nul", JSONF_REQUIRED, buf, sizeof(buf), err, sizeof(err)));
	ck_assert_str_eq(err, "nul: contains a NUL character");
	ck_assert(!jsonf_string(o, "s", JSONF_REQUIRED, small, sizeof(small), err, sizeof(err)));
	ck_assert_str_eq(err, "s: longer than 2 characters");
	ck_assert_str_eq(small, ""); /* untouched on failure */
	ck_assert_str_eq(buf, "xy");
	/* No place for a reason is fine. */
	ck_assert(!jsonf_string(o, "i", JSONF_REQUIRED, buf, sizeof(buf), NULL, 0));
	json_decref(o);
}
END_TEST

START_TEST(test_jsonf_int)
{
	json_t *o = jsonf_sample();
	json_int_t v = 77;
	char err[128] = "";

	ck_assert(jsonf_int(o, "i", JSONF_REQUIRED, 5, 5, &v, err, sizeof(err))); /* bounds are inclusive */
	ck_assert_int_eq(v, 5);
	ck_assert(jsonf_int(o, "neg", JSONF_REQUIRED, -3, 0, &v, err, sizeof(err)));
	ck_assert_int_eq(v, -3);

	v = 77;
	ck_assert(jsonf_int(o, "absent", JSONF_OPTIONAL, 0, 10, &v, err, sizeof(err)));
	ck_assert_int_eq(v, 77);
	ck_assert(!jsonf_int(o, "absent", JSONF_REQUIRED, 0, 10, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "absent: missing");
	ck_assert(!jsonf_int(o, "i", JSONF_REQUIRED, 6, 10, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "i: 5 out of range [6, 10]");
	ck_assert(!jsonf_int(o, "i", JSONF_REQUIRED, 0, 4, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "i: 5 out of range [0, 4]");
	ck_assert(!jsonf_int(o, "r", JSONF_REQUIRED, 0, 10, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "r: expected an integer");
	ck_assert(!jsonf_int(o, "s", JSONF_OPTIONAL, 0, 10, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "s: expected an integer");
	ck_assert(!jsonf_int(o, "t", JSONF_OPTIONAL, 0, 10, &v, err, sizeof(err)));
	ck_assert_str_eq(err, "t: expected an integer");
	ck_assert_int_eq(v, 77); /* untouched on failure */
	json_decref(o);
}
END_TEST

START_TEST(test_jsonf_bool)
{
	json_t *o = jsonf_sample();
	bool b = false;
	char err[128] = "";

	ck_assert(jsonf_bool(o, "t", JSONF_REQUIRED, &b, err, sizeof(err)));
	ck_assert(b);
	ck_assert(jsonf_bool(o, "f", JSONF_REQUIRED, &b, err, sizeof(err)));
	ck_assert(!b);

	b = true;
	ck_assert(jsonf_bool(o, "absent", JSONF_OPTIONAL, &b, err, sizeof(err)));
	ck_assert(b);
	ck_assert(!jsonf_bool(o, "absent", JSONF_REQUIRED, &b, err, sizeof(err)));
	ck_assert_str_eq(err, "absent: missing");
	ck_assert(!jsonf_bool(o, "z", JSONF_REQUIRED, &b, err, sizeof(err)));
	ck_assert_str_eq(err, "z: expected true or false");
	ck_assert(!jsonf_bool(o, "s", JSONF_OPTIONAL, &b, err, sizeof(err)));
	ck_assert_str_eq(err, "s: expected true or false");
	ck_assert(b);
	json_decref(o);
}
END_TEST

START_TEST(test_jsonf_number)
{
	json_t *o = jsonf_sample();
	double d = 9.5;
	char err[128] = "";

	ck_assert(jsonf_number(o, "i", JSONF_REQUIRED, 0, 5, false, &d, err, sizeof(err))); /* an integer is a number */
	ck_assert(d == 5.0);
	ck_assert(jsonf_number(o, "r", JSONF_REQUIRED, 5, 5, false, &d, err, sizeof(err)));
	ck_assert(d == 5.0);
	ck_assert(jsonf_number(o, "z", JSONF_REQUIRED, 0, 1, false, &d, err, sizeof(err))); /* [0: 0 is in */
	ck_assert(d == 0.0);

	d = 9.5;
	ck_assert(jsonf_number(o, "absent", JSONF_OPTIONAL, 0, 1, false, &d, err, sizeof(err)));
	ck_assert(d == 9.5);
	ck_assert(!jsonf_number(o, "absent", JSONF_REQUIRED, 0, 1, false, &d, err, sizeof(err)));
	ck_assert_str_eq(err, "absent: missing");
	ck_assert(!jsonf_number(o, "z", JSONF_REQUIRED, 0, 1, true, &d, err, sizeof(err))); /* (0: 0 is out */
	ck_assert_str_eq(err, "z: 0 out of range (0, 1]");
	ck_assert(!jsonf_number(o, "r", JSONF_REQUIRED, 0, 4.5, false, &d, err, sizeof(err)));
	ck_assert_str_eq(err, "r: 5 out of range [0, 4.5]");
	ck_assert(!jsonf_number(o, "neg", JSONF_REQUIRED, -2, 0, false, &d, err, sizeof(err)));
	ck_assert_str_eq(err, "neg: -3 out of range [-2, 0]");
	ck_assert(!jsonf_number(o, "s", JSONF_OPTIONAL, 0, 1, false, &d, err, sizeof(err)));
	ck_assert_str_eq(err, "s: expected a number");
	ck_assert(!jsonf_number(o, "t", JSONF_OPTIONAL, 0, 1, false, &d, err, sizeof(err)));
	ck_assert_str_eq(err, "t: expected a number");
	ck_assert(d == 9.5);
	json_decref(o);
}
END_TEST

/* ---- api status JSON ------------------------------------------------------- */

static struct api_status sample_status(void)
{
	struct api_status st;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node2");
	snprintf(st.scope, sizeof(st.scope), "main");
	snprintf(st.role, sizeof(st.role), "replica");
	snprintf(st.state, sizeof(st.state), "running");
	snprintf(st.leader, sizeof(st.leader), "node1");
	st.is_leader = false;
	st.pg_running = false;
	st.timeline = 4;
	st.lsn = 0x5000000ULL;
	st.receive_lsn = 0x5000000ULL;
	st.replay_lsn = 0x4FFFF00ULL;
	st.nofailover = true;
	st.lease_ttl_left = 2.5;
	return st;
}

static void assert_status_eq(const struct api_status *a, const struct api_status *b)
{
	ck_assert_str_eq(a->name, b->name);
	ck_assert_str_eq(a->scope, b->scope);
	ck_assert_str_eq(a->role, b->role);
	ck_assert_str_eq(a->state, b->state);
	ck_assert_str_eq(a->leader, b->leader);
	ck_assert_int_eq(a->is_leader, b->is_leader);
	ck_assert_int_eq(a->pg_running, b->pg_running);
	ck_assert_uint_eq(a->timeline, b->timeline);
	ck_assert_uint_eq(a->lsn, b->lsn);
	ck_assert_uint_eq(a->receive_lsn, b->receive_lsn);
	ck_assert_uint_eq(a->replay_lsn, b->replay_lsn);
	ck_assert_int_eq(a->nofailover, b->nofailover);
	ck_assert(a->lease_ttl_left == b->lease_ttl_left);
}

START_TEST(test_api_status_json)
{
	struct api_status st = sample_status(), back;
	char err[256] = "";
	char *s = api_status_json(&st);

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(api_status_from_json(s, &back, err, sizeof(err)), "%s", err);
	assert_status_eq(&st, &back);
	free(s);

	ck_assert(!api_status_from_json("[]", &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a JSON object"));
	ck_assert(!api_status_from_json("{\"name\":\"a\",\"role\":\"boss\",\"state\":\"x\",\"pg_running\":true,"
	                                "\"is_leader\":false,\"timeline\":1,\"lsn\":1}",
	                                &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "role"));
	ck_assert(!api_status_from_json("{\"name\":\"a\",\"role\":\"replica\",\"state\":\"x\",\"pg_running\":true,"
	                                "\"is_leader\":false,\"timeline\":1,\"lsn\":\"0/1\"}",
	                                &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "lsn"));
	ck_assert(!api_status_from_json("{\"name\":\"a\",\"role\":\"replica\",\"state\":\"x\",\"pg_running\":1,"
	                                "\"is_leader\":false,\"timeline\":1,\"lsn\":1}",
	                                &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "pg_running"));
	ck_assert(!api_status_from_json("{\"name\":\"a\",\"role\":\"replica\",\"state\":\"x\",\"pg_running\":true,"
	                                "\"is_leader\":false,\"lsn\":1}",
	                                &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "timeline: missing"));
	ck_assert(!api_status_from_json("{\"name\":\"a\",\"role\":\"replica\",\"state\":\"x\",\"pg_running\":true,"
	                                "\"is_leader\":false,\"timeline\":1,\"lsn\":1,\"lease_ttl_left\":\"1\"}",
	                                &back, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "lease_ttl_left"));
	ck_assert(!api_status_from_json("{\"name\":", &back, err, sizeof(err)));
	ck_assert(!api_status_from_json(NULL, &back, err, sizeof(err)));
}
END_TEST

/* ---- api server and client over HTTP --------------------------------------- */

struct http_answer {
	long code;
	char body[4096];
	size_t len;
	char content_type[128];
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_answer *a = userdata;
	size_t n = size * nmemb;

	if (n > sizeof(a->body) - 1 - a->len)
		return 0;
	memcpy(a->body + a->len, ptr, n);
	a->len += n;
	a->body[a->len] = '\0';
	return n;
}

/* A plain request with libcurl, to see what the server answers. */
static void http_request(const char *method, const char *url, struct http_answer *a)
{
	CURL *c = curl_easy_init();
	char *ct = NULL;

	memset(a, 0, sizeof(*a));
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"x\":1}");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->code);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(a->content_type, sizeof(a->content_type), "%s", ct);
	curl_easy_cleanup(c);
}

START_TEST(test_api_server)
{
	struct api_status st = sample_status(), back;
	struct http_answer a;
	struct api_server *s;
	char listen[64], url[128], err[512] = "";
	int port = free_port();
	json_t *root;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	s = api_start(listen, "host=127.0.0.1 port=1 dbname=postgres", err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);

	/* Nothing published yet: 503, which the client reports. */
	ck_assert(!peer_get_status(NULL, url, 2, &back, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "HTTP 503") != NULL, "%s", err);

	api_publish(s, &st);
	ck_assert_msg(peer_get_status(NULL, url, 2, &back, NULL, err, sizeof(err)), "%s", err);
	assert_status_eq(&st, &back);

	/* A trailing slash on the URL is fine; a new snapshot replaces the old. */
	st.lsn = 0x6000000ULL;
	snprintf(st.state, sizeof(st.state), "streaming");
	api_publish(s, &st);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	ck_assert_msg(peer_get_status(NULL, url, 2, &back, NULL, err, sizeof(err)), "%s", err);
	assert_status_eq(&st, &back);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", port);
	http_request("GET", url, &a);
	ck_assert_int_eq(a.code, 200);
	ck_assert_str_eq(a.content_type, "application/json");

	/* Unknown path: 404 with a JSON error. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", port);
	http_request("GET", url, &a);
	ck_assert_int_eq(a.code, 404);
	ck_assert_str_eq(a.content_type, "application/json");
	root = json_loads(a.body, 0, NULL);
	ck_assert_msg(root && json_is_string(json_object_get(root, "error")), "%s", a.body);
	json_decref(root);
	/* A member URL with a path is refused before any request: a key could
	 * otherwise aim /status at another endpoint (/config?/status). */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/config?", port);
	ck_assert(!peer_get_status(NULL, url, 2, &back, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "with a path, query or fragment") != NULL, "%s", err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	ck_assert_msg(peer_get_status(NULL, url, 2, &back, NULL, err, sizeof(err)), "%s", err);

	/* Other methods: 405. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", port);
	http_request("POST", url, &a);
	ck_assert_int_eq(a.code, 405);
	http_request("DELETE", url, &a);
	ck_assert_int_eq(a.code, 405);
	root = json_loads(a.body, 0, NULL);
	ck_assert_msg(root && json_is_string(json_object_get(root, "error")), "%s", a.body);
	json_decref(root);

	/* The port is taken now: a second server says so. */
	ck_assert_ptr_null(api_start(listen, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, listen) != NULL, "%s", err);

	api_stop(s);
	api_stop(NULL);
}
END_TEST

/* The snapshot says Postgres runs but nothing answers at its address: the
 * refresh fails quickly and /status serves the snapshot as published. */
START_TEST(test_api_server_pg_down)
{
	struct api_status st = sample_status(), back;
	struct api_server *s;
	char listen[64], url[128], conninfo[128], err[512] = "";
	int port = free_port();
	double t0, elapsed;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=postgres user=postgres", free_port());
	s = api_start(listen, conninfo, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	st.pg_running = true;
	api_publish(s, &st);
	for (int i = 0; i < 2; i++) { /* the second time with the connection reset */
		t0 = now_mono();
		ck_assert_msg(peer_get_status(NULL, url, 3, &back, NULL, err, sizeof(err)), "%s", err);
		elapsed = now_mono() - t0;
		ck_assert_msg(elapsed < 1.5, "took %.3f s", elapsed);
		assert_status_eq(&st, &back);
	}
	api_stop(s);
}
END_TEST

START_TEST(test_api_start_bad_address)
{
	char err[256] = "";

	ck_assert_ptr_null(api_start("nonsense", NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "nonsense") != NULL, "%s", err);
	ck_assert_ptr_null(api_start(NULL, NULL, err, sizeof(err)));
}
END_TEST

START_TEST(test_api_client_nothing_listens)
{
	struct api_status back;
	char url[64], err[512] = "";
	double t0, elapsed;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
	t0 = now_mono();
	ck_assert(!peer_get_status(NULL, url, 0.5, &back, NULL, err, sizeof(err)));
	elapsed = now_mono() - t0;
	ck_assert_msg(elapsed < 1.0, "took %.3f s", elapsed);
	ck_assert_msg(strstr(err, url) != NULL, "%s", err);
	ck_assert(!peer_get_status(NULL, url, 0, &back, NULL, err, sizeof(err)));
	ck_assert(!peer_get_status(NULL, NULL, 1, &back, NULL, err, sizeof(err)));
}
END_TEST

START_TEST(test_api_client_timeout)
{
	struct api_status back;
	char url[64], err[512] = "";
	double t0, elapsed;
	int port;
	/* A socket that listens but never answers: connect succeeds through the
	 * kernel's backlog and the request hangs until the client's deadline. */
	int fd = bound_socket(&port);

	ck_assert_int_eq(listen(fd, 4), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	t0 = now_mono();
	ck_assert(!peer_get_status(NULL, url, 0.3, &back, NULL, err, sizeof(err)));
	elapsed = now_mono() - t0;
	ck_assert_msg(elapsed >= 0.25 && elapsed < 1.5, "took %.3f s", elapsed);
	ck_assert_msg(strstr(err, "imeout") != NULL || strstr(err, "timed out") != NULL, "%s", err);
	close(fd);
}
END_TEST

/* ---- the bounded read (dcs_read_cluster) against canned etcd answers ---------- */

/* Base64 of n bytes of s (malloc'd). */
static char *b64(const char *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;

	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* A growing JSON text for canned answers. */
struct jbuf {
	char *s;
	size_t len;
};

static void jadd(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jadd(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	b->s = realloc(b->s, b->len + (size_t)n + 1);
	ck_assert_ptr_nonnull(b->s);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* One kv object; value NULL = keys only. */
static void jkv(struct jbuf *b, const char *key, const char *value, size_t vlen, long rev, long lease)
{
	char *k = b64(key, strlen(key));

	jadd(b, "{\"key\":\"%s\",\"create_revision\":\"%ld\",\"mod_revision\":\"%ld\",\"version\":\"1\"", k, rev, rev);
	free(k);
	if (lease)
		jadd(b, ",\"lease\":\"%ld\"", lease);
	if (value) {
		char *v = b64(value, vlen);

		jadd(b, ",\"value\":\"%s\"", v);
		free(v);
	}
	jadd(b, "}");
}

/* A range answer: n keys (names), keys only. */
static char *listing(const char *const *keys, const long *revs, size_t n, bool more)
{
	struct jbuf b = { 0 };

	jadd(&b, "{\"header\":{\"revision\":\"50\"},\"kvs\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			jadd(&b, ",");
		jkv(&b, keys[i], NULL, 0, revs ? revs[i] : 10 + (long)i, 0);
	}
	jadd(&b, "]%s,\"count\":\"%zu\"}", more ? ",\"more\":true" : "", n);
	return b.s;
}

/* A txn answer with one response_range per key; values[i] NULL = absent. */
static char *txn_answer(const char *const *keys, const char *const *values, const size_t *lens, size_t n, long lease0)
{
	struct jbuf b = { 0 };

	jadd(&b, "{\"header\":{\"revision\":\"51\"},\"succeeded\":true,\"responses\":[");
	for (size_t i = 0; i < n; i++) {
		jadd(&b, "%s{\"response_range\":{\"header\":{\"revision\":\"51\"}", i ? "," : "");
		if (values[i]) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, keys[i], values[i], lens ? lens[i] : strlen(values[i]), 10 + (long)i,
			    i == 0 ? lease0 : 0);
			jadd(&b, "],\"count\":\"1\"");
		}
		jadd(&b, "}}");
	}
	jadd(&b, "]}");
	return b.s;
}

static struct etcd_client *fake_client(struct fake_server *fs)
{
	const char *ep = fake_url(fs);
	struct etcd_config cfg = { .endpoints = &ep, .n_endpoints = 1, .request_timeout = 5, .connect_timeout = 1 };
	struct etcd_client *c = NULL;
	struct etcd_error err;

	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	return c;
}

static bool request_has(struct fake_server *fs, size_t i, const char *needle)
{
	char *r = fake_request(fs, i);
	bool has;

	ck_assert_msg(r != NULL, "request %zu was not received", i);
	has = strstr(r, needle) != NULL;
	free(r);
	return has;
}

static const struct etcd_kv *find_kv(const struct etcd_range_result *r, const char *key)
{
	for (size_t i = 0; i < r->n_kvs; i++)
		if (strcmp(r->kvs[i].key, key) == 0)
			return &r->kvs[i];
	return NULL;
}

#define MEMBER_A \
	"{\"role\":\"primary\",\"state\":\"running\",\"host\":\"h\",\"port\":5432,\"api_url\":\"http://h:8008\",\"timeline\":1,\"lsn\":5}"
#define MEMBER_B_REPLICA \
	"{\"role\":\"replica\",\"state\":\"running\",\"host\":\"h2\",\"port\":5432,\"api_url\":\"http://h2:8008\",\"timeline\":1,\"lsn\":5}"
#define MEMBER_B_PRIMARY \
	"{\"role\":\"primary\",\"state\":\"running\",\"host\":\"h2\",\"port\":5432,\"api_url\":\"http://h2:8008\",\"timeline\":2,\"lsn\":9}"

/* The fixed keys in the order dcs_read_cluster asks for them. */
static const char *const fixed_full[] = { "/baton/main/leader", "/baton/main/initialize", "/baton/main/config",
	                                  "/baton/main/status", "/baton/main/switchover", "/baton/main/sync",
	                                  "/baton/main/history" };
#define N_FIXED_KEYS 7

START_TEST(test_read_cluster_bounded)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct dcs_keys keys;
	struct etcd_range_result r;
	struct etcd_error err;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	char warn[2048], *ans, *junk_b64, *big;
	const char *listed[] = { "/baton/main/config", "/baton/main/junk1", "/baton/main/leader",
		                 "/baton/main/members/a", "/baton/main/members/b" };
	const char *tkeys[N_FIXED_KEYS + 2], *tvals[N_FIXED_KEYS + 2];
	size_t tlens[N_FIXED_KEYS + 2];

	ck_assert_ptr_nonnull(fs);
	ck_assert_ptr_nonnull(v);
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	c = fake_client(fs);

	/* 1. A listing with an unknown key and an oversized member value; the
	 * one-request read's answer is too big, so step by step. */
	fake_push(fs, &(struct fake_step){ .kind = FAKE_HUGE, .huge_len = (size_t)9 << 20 });
	ans = listing(listed, NULL, 5, false);
	fake_push_http(fs, 200, ans);
	free(ans);
	big = malloc(DCS_VALUE_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', DCS_VALUE_MAX + 1);
	big[DCS_VALUE_MAX + 1] = '\0';
	for (size_t i = 0; i < N_FIXED_KEYS; i++) {
		tkeys[i] = fixed_full[i];
		tvals[i] = NULL;
		tlens[i] = 0;
	}
	tvals[0] = "a";
	tlens[0] = 1;
	tvals[2] = "{\"ttl\":10,\"loop_wait\":1,\"retry_timeout\":2}";
	tlens[2] = strlen(tvals[2]);
	tkeys[N_FIXED_KEYS] = "/baton/main/members/a";
	tvals[N_FIXED_KEYS] = MEMBER_A;
	tlens[N_FIXED_KEYS] = strlen(MEMBER_A);
	tkeys[N_FIXED_KEYS + 1] = "/baton/main/members/b";
	tvals[N_FIXED_KEYS + 1] = big;
	tlens[N_FIXED_KEYS + 1] = DCS_VALUE_MAX + 1;
	ans = txn_answer(tkeys, tvals, tlens, N_FIXED_KEYS + 2, 77);
	fake_push_http(fs, 200, ans);
	free(ans);
	ck_assert_int_eq(dcs_read_cluster(c, &keys, NULL, &r, warn, sizeof(warn), &err), ETCD_OK);
	ck_assert_uint_eq(fake_n_requests(fs), 3);
	ck_assert(request_has(fs, 0, "/v3/kv/txn\n"));
	ck_assert(request_has(fs, 1, "/v3/kv/range\n"));
	ck_assert(request_has(fs, 1, "\"keys_only\":true"));
	ck_assert(request_has(fs, 1, "\"limit\":\"500\""));
	ck_assert(request_has(fs, 2, "/v3/kv/txn\n"));
	/* The unknown key was never read, only named. */
	junk_b64 = b64("/baton/main/junk1", strlen("/baton/main/junk1"));
	ck_assert(!request_has(fs, 2, junk_b64));
	free(junk_b64);
	ck_assert_msg(strstr(warn, "1 key that baton does not use, not read: \"/baton/main/junk1\"") != NULL, "%s",
	              warn);
	ck_assert_msg(strstr(warn, "/baton/main/members/b: a value of 262145 bytes, more than the 262144") != NULL,
	              "%s", warn);
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/leader"));
	ck_assert_str_eq(find_kv(&r, "/baton/main/leader")->value, "a");
	ck_assert_int_eq(find_kv(&r, "/baton/main/leader")->lease, 77);
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/members/a"));
	ck_assert_ptr_null(find_kv(&r, "/baton/main/members/b"));
	ck_assert_ptr_null(find_kv(&r, "/baton/main/junk1"));
	ck_assert_int_eq(r.revision, 51);
	/* The view built from it: the leader and its member, ttl from config. */
	dcs_parse_cluster(&keys, &r, NULL, v, NULL, NULL, 0);
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "a");
	ck_assert_uint_eq(v->n_members, 1);
	ck_assert(v->ttl == 10);
	etcd_range_result_free(&r);

	/* 2. The transaction's answer is too big: key by key; an oversized
	 * leader value keeps the key (someone holds it), without a name. */
	fake_push(fs, &(struct fake_step){ .kind = FAKE_HUGE, .huge_len = (size_t)9 << 20 });
	ans = listing(listed + 2, NULL, 2, false); /* leader, members/a */
	fake_push_http(fs, 200, ans);
	free(ans);
	fake_push(fs, &(struct fake_step){ .kind = FAKE_HUGE, .huge_len = (size_t)9 << 20 });
	for (size_t i = 0; i < N_FIXED_KEYS + 1; i++) {
		const char *key = i < N_FIXED_KEYS ? fixed_full[i] : "/baton/main/members/a";
		struct jbuf b = { 0 };

		jadd(&b, "{\"header\":{\"revision\":\"52\"}");
		if (i == 0) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, key, big, DCS_VALUE_MAX + 1, 12, 99);
			jadd(&b, "]");
		} else if (i == N_FIXED_KEYS) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, key, MEMBER_A, strlen(MEMBER_A), 13, 0);
			jadd(&b, "]");
		}
		jadd(&b, "}");
		fake_push_http(fs, 200, b.s);
		free(b.s);
	}
	ck_assert_int_eq(dcs_read_cluster(c, &keys, NULL, &r, warn, sizeof(warn), &err), ETCD_OK);
	ck_assert_uint_eq(fake_n_requests(fs), 3 + 3 + N_FIXED_KEYS + 1);
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/leader"));
	ck_assert_ptr_null(find_kv(&r, "/baton/main/leader")->value);
	ck_assert_int_eq(find_kv(&r, "/baton/main/leader")->lease, 99);
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/members/a"));
	ck_assert_msg(strstr(warn, "/baton/main/leader: a value of 262145 bytes") != NULL, "%s", warn);
	dcs_parse_cluster(&keys, &r, NULL, v, NULL, NULL, 0);
	ck_assert(v->has_leader); /* unreadable, but held: never "no leader" */
	ck_assert_str_eq(v->leader, "");
	etcd_range_result_free(&r);

	free(big);
	free(v);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

/* The common case: one transaction (listing, fixed keys, members). */
START_TEST(test_read_cluster_one_request)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct dcs_keys keys;
	struct dcs_read_cache cache;
	struct etcd_range_result r;
	struct etcd_error err;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	const char *listed[] = { "/baton/main/config",    "/baton/main/history",       "/baton/main/leader",
		                 "/baton/main/members/a", "/baton/main/members/bad/x", "/baton/main/zz\033[2J" };
	char warn[2048], *l, *big;
	struct jbuf b = { 0 };

	ck_assert_ptr_nonnull(fs);
	ck_assert_ptr_nonnull(v);
	memset(&cache, 0, sizeof(cache));
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	c = fake_client(fs);
	big = malloc(DCS_VALUE_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'z', DCS_VALUE_MAX + 1);
	big[DCS_VALUE_MAX + 1] = '\0';

	l = listing(listed, NULL, 6, false);
	/* The listing's range answer is l without its closing brace's "header"
	 * wrapper: it is one response_range as it stands. */
	jadd(&b, "{\"header\":{\"revision\":\"60\"},\"succeeded\":true,\"responses\":[{\"response_range\":%s}", l);
	free(l);
	for (size_t i = 0; i < N_FIXED_KEYS; i++) {
		jadd(&b, ",{\"response_range\":{\"header\":{\"revision\":\"60\"}");
		if (i == 0) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, fixed_full[0], "a", 1, 20, 123);
			jadd(&b, "]");
		} else if (i == 2) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, fixed_full[2], "{\"ttl\":9}", 10, 21, 0);
			jadd(&b, "]");
		} else if (i == 6) {
			jadd(&b, ",\"kvs\":[");
			jkv(&b, fixed_full[6], "[]", 2, 19, 0);
			jadd(&b, "]");
		}
		jadd(&b, "}}");
	}
	jadd(&b, ",{\"response_range\":{\"header\":{\"revision\":\"60\"},\"kvs\":[");
	jkv(&b, "/baton/main/members/a", MEMBER_A, strlen(MEMBER_A), 22, 0);
	jadd(&b, ",");
	jkv(&b, "/baton/main/members/bad/x", "{}", 2, 23, 0);
	jadd(&b, ",");
	jkv(&b, "/baton/main/members/c", big, DCS_VALUE_MAX + 1, 24, 0);
	jadd(&b, "]}}]}");
	fake_push_http(fs, 200, b.s);
	free(b.s);

	ck_assert_msg(dcs_read_cluster(c, &keys, &cache, &r, warn, sizeof(warn), &err) == ETCD_OK, "%s", err.message);
	ck_assert_uint_eq(fake_n_requests(fs), 1);
	ck_assert(request_has(fs, 0, "/v3/kv/txn\n"));
	ck_assert(request_has(fs, 0, "\"keys_only\":true"));
	ck_assert(request_has(fs, 0, "\"limit\":\"64\"")); /* the members' values, bounded */
	ck_assert_int_eq(r.revision, 60);
	ck_assert_uint_eq(r.n_kvs, 4); /* leader, config, history, members/a */
	ck_assert_str_eq(find_kv(&r, "/baton/main/history")->value, "[]");
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/members/a"));
	ck_assert_ptr_null(find_kv(&r, "/baton/main/members/bad/x"));
	ck_assert_ptr_null(find_kv(&r, "/baton/main/members/c"));
	/* history is known; the others are named, escapes shown as '?'. */
	ck_assert_msg(strstr(warn, "2 keys that baton does not use, not read: \"/baton/main/members/bad/x\", "
	                           "\"/baton/main/zz?[2J\"") != NULL,
	              "%s", warn);
	ck_assert_msg(strstr(warn, "/baton/main/members/c: a value of 262145 bytes") != NULL, "%s", warn);
	ck_assert(cache.slow); /* next time: the listing first */
	dcs_parse_cluster(&keys, &r, NULL, v, NULL, NULL, 0);
	ck_assert_str_eq(v->leader, "a");
	ck_assert_int_eq(v->leader_lease, 123);
	ck_assert(v->ttl == 9);
	ck_assert_uint_eq(v->n_members, 1);
	etcd_range_result_free(&r);
	free(big);
	free(v);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

/* Paging at one revision, and the cache of oversized keys. */
START_TEST(test_read_cluster_pages_and_cache)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct dcs_keys keys;
	struct dcs_read_cache cache;
	struct etcd_range_result r;
	struct etcd_error err;
	char warn[2048], *ans, *next_b64, *big, *member_b64;
	const char *page1[] = { "/baton/main/leader" };
	const char *page2[] = { "/baton/main/members/b" };
	const long rev2[] = { 10 + N_FIXED_KEYS }; /* as the transaction answers it */
	const char *tkeys[N_FIXED_KEYS + 1], *tvals[N_FIXED_KEYS + 1];
	size_t tlens[N_FIXED_KEYS + 1];

	ck_assert_ptr_nonnull(fs);
	memset(&cache, 0, sizeof(cache));
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	c = fake_client(fs);
	big = malloc(DCS_VALUE_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'y', DCS_VALUE_MAX + 1);
	big[DCS_VALUE_MAX + 1] = '\0';
	for (size_t i = 0; i < N_FIXED_KEYS; i++) {
		tkeys[i] = fixed_full[i];
		tvals[i] = NULL;
		tlens[i] = 0;
	}
	tvals[0] = "b";
	tlens[0] = 1;
	tkeys[N_FIXED_KEYS] = "/baton/main/members/b";
	tvals[N_FIXED_KEYS] = big;
	tlens[N_FIXED_KEYS] = DCS_VALUE_MAX + 1;

	/* Round 1: the one-request read is too big; two pages (more = true),
	 * then the transaction. */
	fake_push(fs, &(struct fake_step){ .kind = FAKE_HUGE, .huge_len = (size_t)9 << 20 });
	ans = listing(page1, NULL, 1, true);
	fake_push_http(fs, 200, ans);
	free(ans);
	ans = listing(page2, rev2, 1, false);
	fake_push_http(fs, 200, ans);
	free(ans);
	ans = txn_answer(tkeys, tvals, tlens, N_FIXED_KEYS + 1, 5);
	fake_push_http(fs, 200, ans);
	free(ans);
	ck_assert_msg(dcs_read_cluster(c, &keys, &cache, &r, warn, sizeof(warn), &err) == ETCD_OK, "%s", err.message);
	ck_assert_uint_eq(fake_n_requests(fs), 4);
	/* The second page starts right after the first's last key, at its revision. */
	next_b64 = b64("/baton/main/leader\0", strlen("/baton/main/leader") + 1);
	ck_assert(request_has(fs, 2, next_b64));
	ck_assert(request_has(fs, 2, "\"revision\":\"50\""));
	free(next_b64);
	ck_assert_ptr_null(find_kv(&r, "/baton/main/members/b"));
	etcd_range_result_free(&r);

	/* Round 2: the last read met an oversized key, so the listing comes
	 * first; members/b unchanged (same mod_revision): not downloaded again,
	 * still named. */
	ans = listing(page2, rev2, 1, false);
	fake_push_http(fs, 200, ans);
	free(ans);
	ans = txn_answer(tkeys, tvals, tlens, N_FIXED_KEYS, 5);
	fake_push_http(fs, 200, ans);
	free(ans);
	ck_assert_msg(dcs_read_cluster(c, &keys, &cache, &r, warn, sizeof(warn), &err) == ETCD_OK, "%s", err.message);
	ck_assert_uint_eq(fake_n_requests(fs), 6);
	ck_assert(request_has(fs, 4, "/v3/kv/range\n"));
	member_b64 = b64("/baton/main/members/b", strlen("/baton/main/members/b"));
	ck_assert(!request_has(fs, 5, member_b64));
	free(member_b64);
	ck_assert_msg(strstr(warn, "/baton/main/members/b: a value of 262145 bytes") != NULL, "%s", warn);
	ck_assert_ptr_nonnull(find_kv(&r, "/baton/main/leader"));
	etcd_range_result_free(&r);

	/* etcd down: the read fails as a whole (the loop keeps its old view). */
	fake_push_http(fs, 503, "{\"error\":\"unavailable\"}");
	ck_assert_int_ne(dcs_read_cluster(c, &keys, &cache, &r, warn, sizeof(warn), &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 0);

	free(big);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

/* ---- the cached view kept by the watch (dcs_cache_apply, watch.h) ---------- */

/* A kv for dcs_cache_apply (strings borrowed). */
static struct etcd_kv mkkv(const char *key, const char *value, int64_t mod, int64_t lease)
{
	struct etcd_kv kv;

	memset(&kv, 0, sizeof(kv));
	kv.key = (char *)key;
	kv.key_len = strlen(key);
	kv.value = (char *)(value ? value : "");
	kv.value_len = value ? strlen(value) : 0;
	kv.create_revision = mod;
	kv.mod_revision = mod;
	kv.lease = lease;
	return kv;
}

START_TEST(test_cache_apply)
{
	struct dcs_keys keys;
	struct etcd_range_result cache, other;
	struct ha_cluster_view *v = calloc(1, sizeof(*v));
	struct etcd_kv kv;
	char *big = malloc(DCS_VALUE_MAX + 2);
	char name[64];

	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', DCS_VALUE_MAX + 1);
	big[DCS_VALUE_MAX + 1] = '\0';
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	/* The full read at revision 50: leader a, members/a. */
	memset(&cache, 0, sizeof(cache));
	cache.revision = 50;
	kv = mkkv("/baton/main/leader", "a", 40, 7);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_STALE);
	cache.revision = 0;
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	kv = mkkv("/baton/main/members/a", MEMBER_A, 45, 7);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	cache.revision = 50;
	ck_assert_uint_eq(cache.n_kvs, 2);

	/* A new member after the read: in; the same change again (a replay): stale. */
	kv = mkkv("/baton/main/members/b", MEMBER_B_REPLICA, 51, 8);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_STALE);
	ck_assert_str_eq(find_kv(&cache, "/baton/main/members/b")->value, MEMBER_B_REPLICA);
	ck_assert_int_eq(find_kv(&cache, "/baton/main/members/b")->lease, 8);
	/* A change the read already holds (revision <= 50): ignored. */
	kv = mkkv("/baton/main/leader", "zz", 49, 9);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_STALE);
	ck_assert_str_eq(find_kv(&cache, "/baton/main/leader")->value, "a");
	dcs_parse_cluster(&keys, &cache, NULL, v, NULL, NULL, 0);
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "a");
	ck_assert_uint_eq(v->n_members, 2);

	/* The leader key expires: gone from the view. */
	kv = mkkv("/baton/main/leader", NULL, 52, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_DELETE, &kv), DCS_APPLY_CHANGED);
	ck_assert_ptr_null(find_kv(&cache, "/baton/main/leader"));
	dcs_parse_cluster(&keys, &cache, NULL, v, NULL, NULL, 0);
	ck_assert(!v->has_leader);
	/* An older PUT of it arriving late does not bring it back. */
	kv = mkkv("/baton/main/leader", "a", 50, 7);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_STALE);
	ck_assert_ptr_null(find_kv(&cache, "/baton/main/leader"));
	/* b takes it. */
	kv = mkkv("/baton/main/leader", "b", 53, 8);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	kv = mkkv("/baton/main/members/b", MEMBER_B_PRIMARY, 53, 8);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	/* An older version of a key the cache holds newer: stale. */
	kv = mkkv("/baton/main/members/b", MEMBER_B_REPLICA, 51, 8);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_STALE);
	dcs_parse_cluster(&keys, &cache, NULL, v, NULL, NULL, 0);
	ck_assert(v->has_leader);
	ck_assert_str_eq(v->leader, "b");
	ck_assert_int_eq(v->leader_lease, 8);
	ck_assert_str_eq(ha_find_member(v, "b")->role, "primary");

	/* Keys the layout does not have: ignored, as the read ignores them. */
	kv = mkkv("/baton/main/junk", "x", 54, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_IGNORED);
	kv = mkkv("/baton/other/leader", "x", 54, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_IGNORED);
	kv = mkkv("/baton/main/members/x/y", "x", 54, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_IGNORED);
	ck_assert_ptr_null(find_kv(&cache, "/baton/main/junk"));

	/* Oversized: a member left out (and dropped if it was there) and a
	 * full read asked for (it names the key), the initialize key kept
	 * without its value. */
	kv = mkkv("/baton/main/members/a", big, 55, 7);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_FULL_READ);
	ck_assert_ptr_null(find_kv(&cache, "/baton/main/members/a"));
	kv = mkkv("/baton/main/initialize", big, 56, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	ck_assert_ptr_nonnull(find_kv(&cache, "/baton/main/initialize"));
	ck_assert_uint_eq(find_kv(&cache, "/baton/main/initialize")->value_len, 0);

	/* dcs_cache_same: same keys at the same revisions. */
	memset(&other, 0, sizeof(other));
	for (size_t i = cache.n_kvs; i-- > 0;) {
		kv = cache.kvs[i];
		ck_assert_int_eq(dcs_cache_apply(&keys, &other, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	}
	ck_assert(dcs_cache_same(&cache, &other));
	kv = mkkv("/baton/main/sync", "{\"leader\":\"b\",\"sync_standby\":[]}", 57, 0);
	ck_assert_int_eq(dcs_cache_apply(&keys, &other, ETCD_EVENT_PUT, &kv), DCS_APPLY_CHANGED);
	ck_assert(!dcs_cache_same(&cache, &other));
	ck_assert(!dcs_cache_same(&other, &cache));
	etcd_range_result_free(&other);

	/* More members than a read keeps: the caller must read everything. */
	for (int i = 0; i < DCS_FETCH_MEMBERS + 1; i++) {
		enum dcs_apply want = cache.n_kvs - 2 < DCS_FETCH_MEMBERS ? DCS_APPLY_CHANGED : DCS_APPLY_FULL_READ;

		snprintf(name, sizeof(name), "/baton/main/members/m%d", i);
		kv = mkkv(name, "{\"role\":\"replica\"}", 100 + i, 0);
		ck_assert_int_eq(dcs_cache_apply(&keys, &cache, ETCD_EVENT_PUT, &kv), want);
	}
	ck_assert_uint_eq(cache.n_kvs, 2 + DCS_FETCH_MEMBERS); /* leader, initialize, DCS_FETCH_MEMBERS members */
	etcd_range_result_free(&cache);
	free(big);
	free(v);
}
END_TEST

/* The prefix watch: starts at the revision it is given, hands over each
 * change with its revision, and reports itself lost when etcd cancels it
 * for compaction, so the loop reads everything again. */
START_TEST(test_watch_compacted_is_lost)
{
	struct fake_server *fs = fake_start();
	struct fake_step s;
	const char *ep;
	struct etcd_config cfg;
	struct watch *w;
	struct watch_event *ev = NULL, *all = NULL;
	size_t n = 0, n_all = 0;
	char err[256], *pieces[3], *k64, *v64, ev_json[512];
	int wake[2];
	bool lost = false;
	struct dcs_keys keys;

	ck_assert_ptr_nonnull(fs);
	ck_assert_int_eq(pipe(wake), 0);
	k64 = b64("/baton/main/leader", strlen("/baton/main/leader"));
	v64 = b64("a", 1);
	snprintf(ev_json, sizeof(ev_json),
	         "{\"result\":{\"header\":{\"revision\":\"52\"},\"events\":[{\"kv\":{\"key\":\"%s\",\"value\":\"%s\","
	         "\"create_revision\":\"52\",\"mod_revision\":\"52\",\"version\":\"1\",\"lease\":\"7\"}}]}}\n",
	         k64, v64);
	memset(&s, 0, sizeof(s));
	s.kind = FAKE_RAW;
	s.pause_ms = 50;
	s.pieces[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	s.pieces[1] = pieces[0] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"51\"},\"created\":true}}\n");
	s.pieces[2] = pieces[1] = fake_chunk(ev_json);
	s.pieces[3] = pieces[2] = fake_chunk(
	        "{\"result\":{\"header\":{},\"canceled\":true,\"compact_revision\":\"60\"}}\n");
	s.pieces[4] = "0\r\n\r\n";
	fake_push(fs, &s);
	for (int i = 0; i < 3; i++)
		free(pieces[i]);

	ep = fake_url(fs);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoints = &ep;
	cfg.n_endpoints = 1;
	cfg.request_timeout = 5;
	cfg.connect_timeout = 1;
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	w = watch_start(&cfg, 0, &keys, "n1", 51, wake[1], err, sizeof(err));
	ck_assert_msg(w != NULL, "%s", err);
	for (int i = 0; i < 100 && !lost; i++) {
		lost = !watch_take(w, &ev, &n);
		if (n > 0) {
			all = realloc(all, (n_all + n) * sizeof(*all));
			ck_assert_ptr_nonnull(all);
			memcpy(all + n_all, ev, n * sizeof(*ev));
			n_all += n;
		}
		free(ev);
		ev = NULL;
		if (!lost)
			usleep(50000);
	}
	ck_assert_msg(lost, "the watch was not reported lost after the compaction");
	ck_assert_uint_eq(n_all, 1);
	ck_assert_int_eq(all[0].type, ETCD_EVENT_PUT);
	ck_assert_str_eq(all[0].kv.key, "/baton/main/leader");
	ck_assert_str_eq(all[0].kv.value, "a");
	ck_assert_int_eq(all[0].kv.mod_revision, 52);
	ck_assert_int_eq(all[0].kv.lease, 7);
	/* It watched the whole prefix from the revision it was given. */
	ck_assert(request_has(fs, 0, "/v3/watch\n"));
	ck_assert(request_has(fs, 0, "\"start_revision\":\"51\""));
	ck_assert(request_has(fs, 0, "\"range_end\""));
	{
		struct etcd_stats st;

		watch_etcd_stats(w, &st);
		ck_assert_uint_eq(st.by_kind[ETCD_REQ_WATCH], 1);
		ck_assert_uint_eq(st.requests, 0);
	}
	watch_events_free(all, n_all);
	watch_stop(w);
	close(wake[0]);
	close(wake[1]);
	free(k64);
	free(v64);
	fake_stop(fs);
}
END_TEST

/* The wake filter: which changes wake the loop at once, which wait for its
 * next pass (the spin under write load: LSN-only publications must not
 * wake the other agents; the leader key's DELETE always must). */
START_TEST(test_watch_wakes)
{
	struct dcs_keys k;
	const char *own = "/baton/main/members/n1";
	const char *m = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"streaming\",\"timeline\":1,\"lsn\":100,"
	                "\"tags\":{}}";
	const char *m_lsn = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"streaming\",\"timeline\":1,\"lsn\":200,"
	                    "\"tags\":{}}";
	const char *m_state = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"stopped\",\"timeline\":1,\"lsn\":200,"
	                      "\"tags\":{}}";
	const char *m_tl = "{\"name\":\"n2\",\"role\":\"primary\",\"state\":\"running\",\"timeline\":2,\"lsn\":100,"
	                   "\"tags\":{}}";
	const char *m_tags = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"streaming\",\"timeline\":1,\"lsn\":300,"
	                     "\"tags\":{\"nofailover\":true}}";
	/* Patroni's members carry the position as xlog_location. */
	const char *p1 = "{\"conn_url\":\"postgres://h:5432/postgres\",\"role\":\"replica\",\"state\":\"running\","
	                 "\"xlog_location\":10}";
	const char *p2 = "{\"conn_url\":\"postgres://h:5432/postgres\",\"role\":\"replica\",\"state\":\"running\","
	                 "\"xlog_location\":99}";
	static const struct {
		const char *key;
		enum etcd_event_type type;
		int value, prev; /* indexes into vals, -1 = NULL */
		bool wakes;
	} rows[] = {
		/* leader key: taken, renewed by another name, deleted or expired */
		{ "/baton/main/leader", ETCD_EVENT_PUT, 7, -1, true },
		{ "/baton/main/leader", ETCD_EVENT_PUT, 7, 7, true },
		{ "/baton/main/leader", ETCD_EVENT_DELETE, 0, -1, true },
		{ "/baton/main/config", ETCD_EVENT_PUT, 8, -1, true },
		{ "/baton/main/sync", ETCD_EVENT_PUT, 8, -1, true },
		{ "/baton/main/switchover", ETCD_EVENT_PUT, 8, -1, true },
		{ "/baton/main/switchover", ETCD_EVENT_DELETE, 0, -1, true },
		{ "/baton/main/initialize", ETCD_EVENT_PUT, 8, -1, true },
		{ "/baton/main/initialize", ETCD_EVENT_DELETE, 0, -1, true },
		{ "/baton/main/failover", ETCD_EVENT_PUT, 8, -1, true }, /* unknown: wakes */
		{ "/baton/main/members/", ETCD_EVENT_PUT, 8, -1, true },
		/* the leader's LSN and history: not in a hurry */
		{ "/baton/main/status", ETCD_EVENT_PUT, 8, -1, false },
		{ "/baton/main/history", ETCD_EVENT_PUT, 8, -1, false },
		/* another member: new, LSN only, state, role+timeline, tags, gone */
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 1, -1, true },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 1, 1, false },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 2, 1, false },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 3, 2, true },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 4, 1, true },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 5, 2, true },
		{ "/baton/main/members/n2", ETCD_EVENT_DELETE, 0, 1, true },
		{ "/baton/main/members/n2", ETCD_EVENT_DELETE, 0, -1, true },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 6, 9, false },
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 8, 1, true }, /* no longer JSON */
		{ "/baton/main/members/n2", ETCD_EVENT_PUT, 8, 8, false },
		/* our own member key: never */
		{ "/baton/main/members/n1", ETCD_EVENT_PUT, 3, 1, false },
		{ "/baton/main/members/n1", ETCD_EVENT_PUT, 1, -1, false },
		{ "/baton/main/members/n1", ETCD_EVENT_DELETE, 0, 1, false },
		{ "/baton/main/members/n10", ETCD_EVENT_PUT, 1, -1, true },
	};
	const char *vals[] = { "", m, m_lsn, m_state, m_tl, m_tags, p2, "n2", "x", p1 };

	ck_assert(dcs_keys_init(&k, "/baton", "main"));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool got = watch_wakes(&k, own, rows[i].type, rows[i].key, vals[rows[i].value],
		                       rows[i].prev < 0 ? NULL : vals[rows[i].prev]);

		ck_assert_msg(got == rows[i].wakes, "row %zu (%s %s): wakes %d, expected %d", i, rows[i].key,
		              rows[i].type == ETCD_EVENT_DELETE ? "DELETE" : "PUT", got, rows[i].wakes);
	}
	/* Without a name of our own, our key is just another member's. */
	ck_assert(watch_wakes(&k, NULL, ETCD_EVENT_PUT, own, m_state, m));
	ck_assert(!watch_wakes(&k, NULL, ETCD_EVENT_PUT, own, m_lsn, m));
}
END_TEST

/* The queue still gets every change; only the wake is filtered: an
 * LSN-only member update is queued without a wake, the leader's DELETE
 * wakes. And the watch starts on the endpoint it is given, not on the
 * first one (here a member that accepts connections and never answers,
 * as a stopped etcd does), and names it. */
START_TEST(test_watch_filter_and_endpoint)
{
	struct fake_server *fs = fake_start();
	struct fake_step s;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	const char *eps[2];
	char dead_url[64], err[256], ev_json[1200], *pieces[4], *mk, *m1, *m2, *lk;
	struct etcd_config cfg;
	struct dcs_keys keys;
	struct watch *w;
	struct watch_event *ev = NULL;
	size_t n = 0, total = 0;
	int wake[2], dead = socket(AF_INET, SOCK_STREAM, 0), wakes = 0;
	char b;
	bool saw_delete = false;
	struct timespec t0, t1;
	const char *mj1 = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"streaming\",\"lsn\":1}";
	const char *mj2 = "{\"name\":\"n2\",\"role\":\"replica\",\"state\":\"streaming\",\"lsn\":2}";

	ck_assert_ptr_nonnull(fs);
	ck_assert_int_ge(dead, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(dead, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(dead, 8), 0);
	ck_assert_int_eq(getsockname(dead, (struct sockaddr *)&sa, &sl), 0);
	snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	ck_assert_int_eq(pipe2(wake, O_NONBLOCK), 0);
	mk = b64("/baton/main/members/n2", strlen("/baton/main/members/n2"));
	m1 = b64(mj1, strlen(mj1));
	m2 = b64(mj2, strlen(mj2));
	lk = b64("/baton/main/leader", strlen("/baton/main/leader"));
	memset(&s, 0, sizeof(s));
	s.kind = FAKE_RAW;
	s.pause_ms = 300;
	s.pieces[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	s.pieces[1] = pieces[0] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"51\"},\"created\":true}}\n");
	snprintf(ev_json, sizeof(ev_json),
	         "{\"result\":{\"header\":{\"revision\":\"52\"},\"events\":[{\"kv\":{\"key\":\"%s\",\"value\":\"%s\","
	         "\"create_revision\":\"40\",\"mod_revision\":\"52\",\"version\":\"3\",\"lease\":\"7\"}}]}}\n",
	         mk, m1);
	s.pieces[2] = pieces[1] = fake_chunk(ev_json);
	snprintf(ev_json, sizeof(ev_json),
	         "{\"result\":{\"header\":{\"revision\":\"53\"},\"events\":[{\"kv\":{\"key\":\"%s\",\"value\":\"%s\","
	         "\"create_revision\":\"40\",\"mod_revision\":\"53\",\"version\":\"4\",\"lease\":\"7\"}}]}}\n",
	         mk, m2);
	s.pieces[3] = pieces[2] = fake_chunk(ev_json);
	snprintf(ev_json, sizeof(ev_json),
	         "{\"result\":{\"header\":{\"revision\":\"54\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"%s\","
	         "\"mod_revision\":\"54\"}}]}}\n",
	         lk);
	s.pieces[4] = pieces[3] = fake_chunk(ev_json);
	fake_push(fs, &s);
	for (int i = 0; i < 4; i++)
		free(pieces[i]);

	eps[0] = dead_url;
	eps[1] = fake_url(fs);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoints = eps;
	cfg.n_endpoints = 2;
	cfg.request_timeout = 5;
	cfg.connect_timeout = 1;
	ck_assert(dcs_keys_init(&keys, "/baton", "main"));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	w = watch_start(&cfg, 1, &keys, "n1", 51, wake[1], err, sizeof(err));
	ck_assert_msg(w != NULL, "%s", err);
	/* Four batches 300 ms apart; the wakes counted as they come. */
	for (int i = 0; i < 60 && !saw_delete; i++) {
		struct pollfd pfd = { .fd = wake[0], .events = POLLIN };

		if (poll(&pfd, 1, 100) > 0)
			while (read(wake[0], &b, 1) == 1)
				wakes++;
		ck_assert(watch_take(w, &ev, &n));
		for (size_t j = 0; j < n; j++)
			if (ev[j].type == ETCD_EVENT_DELETE && strcmp(ev[j].kv.key, "/baton/main/leader") == 0)
				saw_delete = true;
		total += n;
		watch_events_free(ev, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(saw_delete, "the leader key's DELETE never came");
	/* Within the fake's pauses, not after the dead member's 1 + 5 s. */
	ck_assert_int_lt((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 3000);
	ck_assert_uint_eq(total, 3);
	/* The member's first sight wakes, its LSN-only change does not, the
	 * DELETE does: two wakes, not three. */
	ck_assert_int_eq(wakes, 2);
	ck_assert(request_has(fs, 0, "/v3/watch\n"));
	watch_stop(w);
	close(dead);
	close(wake[0]);
	close(wake[1]);
	free(mk);
	free(m1);
	free(m2);
	free(lk);
	fake_stop(fs);
}
END_TEST

/* Code-running parameters from etcd are dropped unless the node allows them. */
START_TEST(test_drop_code_params)
{
	struct dcs_settings d;
	char warn[2048] = "", err[256];
	char *allow[] = { "Archive_Command" };

	ck_assert(dcs_config_from_json("{\"postgresql\":{\"parameters\":{\"work_mem\":\"8MB\",\"archive_command\":"
	                               "\"touch /tmp/pwned\",\"shared_preload_libraries\":\"evil\","
	                               "\"SSL_KEY_FILE\":\"/tmp/k\"}}}",
	                               &d, err, sizeof(err)));
	ck_assert_uint_eq(d.n_pg_params, 4);
	ck_assert_uint_eq(dcs_settings_drop_code_params(&d, NULL, 0, warn, sizeof(warn)), 3);
	ck_assert_uint_eq(d.n_pg_params, 1);
	ck_assert_str_eq(d.pg_params[0].name, "work_mem");
	ck_assert_msg(strstr(warn, "config: postgresql.parameters.archive_command ignored") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "postgresql.parameters.shared_preload_libraries ignored") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "postgresql.parameters.SSL_KEY_FILE ignored") != NULL, "%s", warn);
	dcs_settings_free(&d);

	/* Allowed (case does not matter, as in Postgres): kept, no warning. */
	warn[0] = '\0';
	ck_assert(dcs_config_from_json("{\"postgresql\":{\"parameters\":{\"archive_command\":\"/bin/true\","
	                               "\"restore_command\":\"cp %f %p\"}}}",
	                               &d, err, sizeof(err)));
	ck_assert_uint_eq(dcs_settings_drop_code_params(&d, allow, 1, warn, sizeof(warn)), 1);
	ck_assert_uint_eq(d.n_pg_params, 1);
	ck_assert_str_eq(d.pg_params[0].name, "archive_command");
	ck_assert_msg(strstr(warn, "restore_command ignored") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "archive_command") == NULL, "%s", warn);
	dcs_settings_free(&d);

	/* Custom (dotted) parameters and lo_compat_privileges: dropped unless
	 * listed by name (any case); the warning names each and the key. */
	warn[0] = '\0';
	ck_assert(dcs_config_from_json("{\"postgresql\":{\"parameters\":{\"plperl.on_init\":\"system('id')\","
	                               "\"pltcl.start_proc\":\"evil\",\"auto_explain.log_min_duration\":\"250ms\","
	                               "\"lo_compat_privileges\":\"on\",\"work_mem\":\"8MB\"}}}",
	                               &d, err, sizeof(err)));
	{
		char *allow_custom[] = { "Auto_Explain.Log_Min_Duration", "plperl" };

		ck_assert_uint_eq(dcs_settings_drop_code_params(&d, allow_custom, 2, warn, sizeof(warn)), 3);
	}
	ck_assert_uint_eq(d.n_pg_params, 2);
	ck_assert_str_eq(d.pg_params[0].name, "auto_explain.log_min_duration");
	ck_assert_str_eq(d.pg_params[1].name, "work_mem");
	ck_assert_msg(strstr(warn, "config: postgresql.parameters.plperl.on_init ignored: it is an extension's custom "
	                           "parameter") != NULL,
	              "%s", warn);
	ck_assert_msg(strstr(warn, "postgresql.parameters.pltcl.start_proc ignored") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "only when its own file lists it in postgresql.allow_from_dcs") != NULL, "%s", warn);
	ck_assert_msg(strstr(warn, "postgresql.parameters.lo_compat_privileges ignored: it turns off the permission "
	                           "checks on large objects") != NULL,
	              "%s", warn);
	ck_assert_msg(strstr(warn, "auto_explain") == NULL, "%s", warn);
	dcs_settings_free(&d);

	/* Control characters in values from etcd are refused. */
	ck_assert(!dcs_config_from_json("{\"postgresql\":{\"parameters\":{\"work_mem\":\"8MB\\u001b[2J\"}}}", &d, err,
	                                sizeof(err)));
	ck_assert_msg(strstr(err, "work_mem: contains the control character 0x1b") != NULL, "%s", err);
	/* The bounds of the timing settings, naming the value and the bound. */
	ck_assert(!dcs_config_from_json("{\"ttl\":1e308}", &d, err, sizeof(err)));
	ck_assert_msg(strstr(err, "ttl: 1e+308 out of range [2, 86400]") != NULL, "%s", err);
	ck_assert(!dcs_config_from_json("{\"loop_wait\":0.001,\"retry_timeout\":0.001}", &d, err, sizeof(err)));
	ck_assert_msg(strstr(err, "loop_wait: 0.001 out of range [0.1, 3600]") != NULL, "%s", err);
	ck_assert(!dcs_config_from_json("{\"retry_timeout\":0.2}", &d, err, sizeof(err)));
	ck_assert_msg(strstr(err, "retry_timeout: 0.2 out of range [0.5, 3600]") != NULL, "%s", err);
	ck_assert(dcs_config_from_json("{\"ttl\":2,\"loop_wait\":0.1,\"retry_timeout\":0.5}", &d, err, sizeof(err)));
	dcs_settings_free(&d);
}
END_TEST

static Suite *dcs_suite(void)
{
	Suite *s = suite_create("dcs");
	TCase *tc = tcase_create("json");
	TCase *tv = tcase_create("view");
	TCase *ta = tcase_create("api");
	TCase *tj = tcase_create("jsonf");

	tcase_add_test(tj, test_jsonf_set_err);
	tcase_add_test(tj, test_jsonf_string);
	tcase_add_test(tj, test_jsonf_int);
	tcase_add_test(tj, test_jsonf_bool);
	tcase_add_test(tj, test_jsonf_number);
	suite_add_tcase(s, tj);

	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_member_round_trip);
	tcase_add_test(tc, test_member_tags);
	tcase_add_loop_test(tc, test_member_bad, 0, (int)(sizeof(bad_members) / sizeof(bad_members[0])));
	tcase_add_test(tc, test_member_null_json);
	tcase_add_test(tc, test_member_host);
	tcase_add_test(tc, test_status_json);
	tcase_add_test(tc, test_config_round_trip);
	tcase_add_test(tc, test_config_sync_and_slots);
	tcase_add_test(tc, test_config_patroni_slots);
	tcase_add_loop_test(tc, test_config_slots_bad, 0, (int)(sizeof(slots_bad_cases) / sizeof(slots_bad_cases[0])));
	tcase_add_loop_test(tc, test_config_sync_mode_strings, 0,
	                    (int)(sizeof(sync_mode_cases) / sizeof(sync_mode_cases[0])));
	tcase_add_test(tc, test_sync_key);
	tcase_add_loop_test(tc, test_config_bad, 0, (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
	tcase_add_test(tc, test_history);
	tcase_add_test(tc, test_config_pause);
	tcase_add_test(tc, test_member_pending_restart);
	tcase_add_test(tc, test_switchover_json);
	tcase_add_loop_test(tc, test_switchover_bad, 0, (int)(sizeof(bad_switchovers) / sizeof(bad_switchovers[0])));
	suite_add_tcase(s, tc);

	tcase_add_test(tv, test_parse_cluster);
	tcase_add_test(tv, test_parse_cluster_unreadable);
	tcase_add_test(tv, test_parse_cluster_keeps_standby);
	tcase_add_test(tv, test_lastgood_record);
	tcase_add_test(tv, test_parse_cluster_many_members);
	tcase_add_test(tv, test_parse_cluster_switchover);
	tcase_add_test(tv, test_parse_cluster_patroni);
	tcase_add_test(tc, test_patroni_records);
	tcase_add_test(tv, test_drop_code_params);
	tcase_add_test(tv, test_read_cluster_bounded);
	tcase_add_test(tv, test_read_cluster_one_request);
	tcase_add_test(tv, test_read_cluster_pages_and_cache);
	tcase_add_test(tv, test_cache_apply);
	tcase_add_test(tv, test_watch_compacted_is_lost);
	tcase_add_test(tv, test_watch_wakes);
	tcase_add_test(tv, test_watch_filter_and_endpoint);
	tcase_set_timeout(tv, 30);
	suite_add_tcase(s, tv);

	tcase_add_test(ta, test_api_status_json);
	tcase_add_test(ta, test_api_server);
	tcase_add_test(ta, test_api_server_pg_down);
	tcase_add_test(ta, test_api_start_bad_address);
	tcase_add_test(ta, test_api_client_nothing_listens);
	tcase_add_test(ta, test_api_client_timeout);
	tcase_set_timeout(ta, 20);
	suite_add_tcase(s, ta);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	sr = srunner_create(dcs_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
