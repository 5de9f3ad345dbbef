/*
 * check_etcd.c - tests of the etcd client library.
 *
 * Two suites. "etcd-unit" needs no etcd: each test starts the fake HTTP
 * server of etcd_fake.h and feeds the client canned answers, good and bad,
 * checking what the client parses and what it sends. "etcd-integration"
 * starts a real /usr/bin/etcd per test (a checked fixture, so it runs in the
 * test's own process and dies with it) on free loopback ports, with its data
 * under a temporary directory that the parent creates and removes.
 *
 * Run: make tests/check_etcd && ./tests/check_etcd
 * (CK_RUN_SUITE=etcd-unit for the fast half only.)
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "etcd/etcd.h"
#include "tests/etcd_fake.h"
#include "tests/etcd_fixture.h"
#include "tests/etcd_proc.h"

/* ---- helpers ----------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static struct etcd_client *client2(const char *ep1, const char *ep2, double timeout)
{
	const char *eps[2] = { ep1, ep2 };
	struct etcd_config cfg = {
		.endpoints = eps, .n_endpoints = ep2 ? 2 : 1, .request_timeout = timeout, .connect_timeout = 0.5
	};
	struct etcd_client *c = NULL;
	struct etcd_error err;

	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	return c;
}

static struct etcd_client *client1(const char *ep)
{
	return client2(ep, NULL, 1.0);
}

/* A URL on which nothing listens. */
static void dead_url(char *buf, size_t len)
{
	snprintf(buf, len, "http://127.0.0.1:%d", etcd_proc_free_port());
}

static void assert_request_has(struct fake_server *fs, size_t i, const char *needle)
{
	char *r = fake_request(fs, i);

	ck_assert_msg(r != NULL, "request %zu was not received", i);
	ck_assert_msg(strstr(r, needle) != NULL, "request %zu lacks <%s>:\n%s", i, needle, r);
	free(r);
}

#define HDR "\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\"}"

/* ---- unit: parsing through the public API ------------------------------ */

START_TEST(test_range_parse)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;

	ck_assert_ptr_nonnull(fs);
	/* lease 7587861231234567891 > 2^53: a double would round it. */
	fake_push_http(fs, 200,
	               "{" HDR ",\"kvs\":[{\"key\":\"YS8x\",\"create_revision\":\"9007199254740993\","
	               "\"mod_revision\":\"40\",\"version\":\"3\",\"value\":\"aGVsbG8AeA==\","
	               "\"lease\":\"7587861231234567891\"},"
	               "{\"key\":\"YS8y\",\"mod_revision\":\"41\",\"create_revision\":\"41\","
	               "\"version\":\"1\"}],\"count\":\"2\"}");
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_get_prefix(c, "a/", &r, &err), ETCD_OK);
	ck_assert_int_eq(r.revision, 42);
	ck_assert_uint_eq(r.n_kvs, 2);
	ck_assert_str_eq(r.kvs[0].key, "a/1");
	ck_assert_uint_eq(r.kvs[0].value_len, 7); /* "hello\0x": binary safe */
	ck_assert_int_eq(memcmp(r.kvs[0].value, "hello\0x", 8), 0);
	ck_assert(r.kvs[0].create_revision == INT64_C(9007199254740993));
	ck_assert(r.kvs[0].lease == INT64_C(7587861231234567891));
	ck_assert_int_eq(r.kvs[0].mod_revision, 40);
	ck_assert_int_eq(r.kvs[0].version, 3);
	ck_assert_str_eq(r.kvs[1].key, "a/2");
	ck_assert_str_eq(r.kvs[1].value, ""); /* omitted value = empty */
	ck_assert_uint_eq(r.kvs[1].value_len, 0);
	ck_assert_int_eq(r.kvs[1].lease, 0);
	etcd_range_result_free(&r);
	ck_assert_uint_eq(r.n_kvs, 0);
	ck_assert_ptr_null(r.kvs);
	/* What was sent: POST /v3/kv/range, "a/" -> key YS8=, range_end "a0". */
	assert_request_has(fs, 0, "/v3/kv/range\n");
	assert_request_has(fs, 0, "\"key\":\"YS8=\"");
	assert_request_has(fs, 0, "\"range_end\":\"YTA=\"");
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_prefix_ends)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;

	fake_push_http(fs, 200, "{" HDR "}");
	fake_push_http(fs, 200, "{" HDR "}");
	fake_push_http(fs, 200, "{" HDR "}");
	c = client1(fake_url(fs));
	/* Every key: key "\0", range_end "\0". */
	ck_assert_int_eq(etcd_get_prefix(c, "", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 0); /* no "kvs" = none */
	etcd_range_result_free(&r);
	assert_request_has(fs, 0, "{\"key\":\"AA==\",\"range_end\":\"AA==\"}");
	/* "a\xff" cannot be incremented in place: the end is "b". */
	ck_assert_int_eq(etcd_get_prefix(c, "a\xff", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	assert_request_has(fs, 1, "\"range_end\":\"Yg==\"");
	/* A single key has no range_end. */
	ck_assert_int_eq(etcd_get(c, "k", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	assert_request_has(fs, 2, "{\"key\":\"aw==\"}");
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_put_delete_requests)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_error err;
	int64_t rev = 0, deleted = -1;

	fake_push_http(fs, 200, "{\"header\":{\"revision\":\"9007199254740993\"}}");
	fake_push_http(fs, 200, "{" HDR ",\"deleted\":\"2\"}");
	fake_push_http(fs, 200, "{" HDR "}");
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_put(c, "key", "val", INT64_C(7587861231234567891), &rev, &err), ETCD_OK);
	ck_assert(rev == INT64_C(9007199254740993));
	assert_request_has(fs, 0, "/v3/kv/put\n");
	assert_request_has(fs, 0, "\"key\":\"a2V5\"");
	assert_request_has(fs, 0, "\"value\":\"dmFs\"");
	assert_request_has(fs, 0, "\"lease\":\"7587861231234567891\"");
	assert_request_has(fs, 0, "Content-Type: application/json");
	ck_assert_int_eq(etcd_delete(c, "key", &deleted, &err), ETCD_OK);
	ck_assert_int_eq(deleted, 2);
	assert_request_has(fs, 1, "/v3/kv/deleterange\n");
	/* No "deleted" field = 0 deleted. */
	ck_assert_int_eq(etcd_delete(c, "key", &deleted, &err), ETCD_OK);
	ck_assert_int_eq(deleted, 0);
	/* Bad arguments never reach the network. */
	ck_assert_int_eq(etcd_put(c, "", "v", 0, NULL, &err), ETCD_E_INVALID);
	ck_assert_int_eq(etcd_put(c, "k", NULL, 0, NULL, &err), ETCD_E_INVALID);
	ck_assert_uint_eq(fake_n_requests(fs), 3);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_txn_lost_without_succeeded)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_error err;
	struct etcd_txn_result t;
	struct etcd_compare cmp = { .key = "leader", .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = "leader", .value = "n1", .lease = 77 };
	struct etcd_op get = { .kind = ETCD_OP_GET, .key = "leader" };

	/* etcd omits "succeeded" when it is false. */
	fake_push_http(fs, 200,
	               "{" HDR ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"42\"},"
	               "\"kvs\":[{\"key\":\"bGVhZGVy\",\"value\":\"bjI=\",\"create_revision\":\"5\","
	               "\"mod_revision\":\"5\",\"version\":\"1\",\"lease\":\"88\"}],\"count\":\"1\"}}]}");
	fake_push_http(fs, 200,
	               "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
	               "{\"revision\":\"43\"}}}]}");
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, &err), ETCD_OK);
	ck_assert(!t.succeeded);
	ck_assert_int_eq(t.revision, 42);
	ck_assert_uint_eq(t.n_ranges, 1);
	ck_assert_uint_eq(t.ranges[0].n_kvs, 1);
	ck_assert_str_eq(t.ranges[0].kvs[0].value, "n2");
	ck_assert_int_eq(t.ranges[0].kvs[0].lease, 88);
	etcd_txn_result_free(&t);
	assert_request_has(fs, 0, "/v3/kv/txn\n");
	assert_request_has(fs, 0,
	                   "\"compare\":[{\"key\":\"bGVhZGVy\",\"target\":\"CREATE\","
	                   "\"result\":\"EQUAL\",\"create_revision\":\"0\"}]");
	assert_request_has(fs, 0,
	                   "\"success\":[{\"request_put\":{\"key\":\"bGVhZGVy\",\"value\":\"bjE=\","
	                   "\"lease\":\"77\"}}]");
	assert_request_has(fs, 0, "\"failure\":[{\"request_range\":{\"key\":\"bGVhZGVy\"}}]");

	ck_assert_int_eq(etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, &err), ETCD_OK);
	ck_assert(t.succeeded);
	ck_assert_int_eq(t.revision, 42);
	ck_assert_uint_eq(t.n_ranges, 0); /* the success branch has no GET */
	etcd_txn_result_free(&t);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_txn_value_compare_and_bad_shape)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_error err;
	struct etcd_txn_result t;
	struct etcd_compare cmp = { .key = "k", .target = ETCD_CMP_VALUE, .result = ETCD_CMP_NOT_EQUAL, .value = "me" };
	struct etcd_op del = { .kind = ETCD_OP_DELETE, .key = "k" };
	struct etcd_op get = { .kind = ETCD_OP_GET, .key = "k" };

	fake_push_http(fs, 200, "{" HDR ",\"succeeded\":\"yes\"}");
	fake_push_http(fs, 200, "{" HDR ",\"succeeded\":true}"); /* responses missing */
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_txn(c, &cmp, 1, &get, 1, &del, 1, &t, &err), ETCD_E_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(err.message, fake_url(fs)));
	ck_assert_ptr_nonnull(strstr(err.message, "succeeded"));
	assert_request_has(fs, 0,
	                   "{\"key\":\"aw==\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\","
	                   "\"value\":\"bWU=\"}");
	assert_request_has(fs, 0, "\"request_delete_range\":{\"key\":\"aw==\"}");
	ck_assert_int_eq(etcd_txn(c, &cmp, 1, &get, 1, &del, 1, &t, &err), ETCD_E_PROTOCOL);
	ck_assert_uint_eq(t.n_ranges, 0);
	ck_assert_ptr_null(t.ranges);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_lease_answers)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_error err;
	int64_t id = 0, ttl = 0;

	fake_push_http(fs, 200, "{" HDR ",\"ID\":\"7587861231234567891\",\"TTL\":\"5\"}");
	fake_push_http(fs, 200, "{\"result\":{" HDR ",\"ID\":\"7587861231234567891\",\"TTL\":\"5\"}}");
	/* An expired lease: 200, no TTL. */
	fake_push_http(fs, 200, "{\"result\":{" HDR ",\"ID\":\"7587861231234567891\"}}");
	fake_push_http(fs, 404,
	               "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
	               "\"etcdserver: requested lease not found\",\"code\":5}");
	fake_push_http(fs, 404, "{\"error\":\"etcdserver: requested lease not found\",\"code\":5}");
	fake_push_http(fs, 200, "{\"result\":{" HDR ",\"TTL\":\"five\"}}");
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_lease_grant(c, 5, &id, &ttl, &err), ETCD_OK);
	ck_assert(id == INT64_C(7587861231234567891));
	ck_assert_int_eq(ttl, 5);
	assert_request_has(fs, 0, "/v3/lease/grant\n");
	assert_request_has(fs, 0, "\"TTL\":\"5\"");
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_OK);
	ck_assert_int_eq(ttl, 5);
	assert_request_has(fs, 1, "/v3/lease/keepalive\n");
	assert_request_has(fs, 1, "{\"ID\":\"7587861231234567891\"}");
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_E_LEASE_NOT_FOUND);
	ck_assert_int_eq(err.status, ETCD_E_LEASE_NOT_FOUND);
	ck_assert_int_eq(ttl, 0);
	ck_assert_ptr_nonnull(strstr(err.message, fake_url(fs)));
	/* Revoking a lease that is already gone is fine. */
	ck_assert_int_eq(etcd_lease_revoke(c, id, &err), ETCD_OK);
	assert_request_has(fs, 3, "/v3/lease/revoke\n");
	/* etcd's own "lease not found" error means the same. */
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_E_LEASE_NOT_FOUND);
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_E_PROTOCOL);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

/* Answers to a range request that must each be ETCD_E_PROTOCOL. */
static const char *const bad_answers[] = {
	"{\"header\":{\"revision\":\"1\"}",                     /* truncated JSON */
	"not json at all",                                      /* not JSON */
	"[1,2,3]",                                              /* not an object */
	"{\"kvs\":{\"key\":\"YQ==\"}}",                         /* kvs not an array */
	"{\"kvs\":[5]}",                                        /* kv not an object */
	"{\"kvs\":[{\"key\":\"!!not base64!!\"}]}",             /* key not base64 */
	"{\"kvs\":[{\"key\":\"YQ=\"}]}",                        /* bad padding */
	"{\"kvs\":[{\"key\":7}]}",                              /* key not a string */
	"{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"%%\"}]}",      /* value not base64 */
	"{\"header\":{\"revision\":12.5}}",                     /* revision a double */
	"{\"header\":{\"revision\":true}}",                     /* revision a bool */
	"{\"header\":{\"revision\":\"12abc\"}}",                /* revision not a number */
	"{\"header\":{\"revision\":\" 12\"}}",                  /* leading blank */
	"{\"header\":{\"revision\":\"99999999999999999999\"}}", /* > int64 */
	"{\"header\":[]}",                                      /* header not an object */
	"{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":[]}]}",   /* int field an array */
	"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"Yg==\"}]}",    /* two kvs for one key */
};

START_TEST(test_malformed_answers)
{
	struct fake_server *fs = fake_start();
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;

	fake_push_http(fs, 200, bad_answers[_i]);
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_PROTOCOL);
	ck_assert_int_eq(err.status, ETCD_E_PROTOCOL);
	ck_assert_msg(strstr(err.message, fake_url(fs)) != NULL, "no endpoint in <%s>", err.message);
	ck_assert_msg(strstr(err.message, "/v3/kv/range") != NULL, "no path in <%s>", err.message);
	ck_assert_uint_eq(r.n_kvs, 0);
	ck_assert_ptr_null(r.kvs);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_http_errors)
{
	struct fake_server *a = fake_start(), *b = fake_start();
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;

	/* A 500 alone: ETCD_E_HTTP with status and body. */
	fake_push_http(a, 500, "boom: internal trouble");
	c = client1(fake_url(a));
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_HTTP);
	ck_assert_ptr_nonnull(strstr(err.message, fake_url(a)));
	ck_assert_ptr_nonnull(strstr(err.message, "HTTP 500"));
	ck_assert_ptr_nonnull(strstr(err.message, "boom"));
	etcd_client_free(c);

	/* A 4xx reached etcd: final, not retried on the next endpoint. */
	fake_push_http(a, 400,
	               "{\"error\":\"etcdserver: key is not provided\",\"message\":"
	               "\"etcdserver: key is not provided\",\"code\":3}");
	fake_push_http(b, 200, "{" HDR "}");
	c = client2(fake_url(a), fake_url(b), 1.0);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_HTTP);
	ck_assert_ptr_nonnull(strstr(err.message, "key is not provided"));
	ck_assert_uint_eq(fake_n_requests(b), 0);
	ck_assert_str_eq(etcd_client_endpoint(c), fake_url(a));
	/* A 5xx is: the same request goes to the next endpoint, which stays preferred. */
	fake_push_http(a, 503, "{\"error\":\"etcdserver: no leader\",\"code\":14}");
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	ck_assert_uint_eq(fake_n_requests(b), 1);
	ck_assert_str_eq(etcd_client_endpoint(c), fake_url(b));
	etcd_client_free(c);
	fake_stop(a);
	fake_stop(b);
}
END_TEST

START_TEST(test_huge_body)
{
	struct fake_server *fs = fake_start();
	struct fake_step huge = { .kind = FAKE_HUGE, .huge_len = (size_t)9 << 20 };
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;

	fake_push(fs, &huge);
	c = client2(fake_url(fs), NULL, 5.0);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(err.message, fake_url(fs)));
	ck_assert_msg(strstr(err.message, "larger than") != NULL, "%s", err.message);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_timeout_and_failover)
{
	struct fake_server *hang = fake_start(), *good = fake_start();
	struct fake_step st = { .kind = FAKE_HANG };
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t t0;

	/* Accepts, never answers: ETCD_E_TIMEOUT after the request timeout. */
	fake_push(hang, &st);
	c = client2(fake_url(hang), NULL, 0.4);
	t0 = now_ms();
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_TIMEOUT);
	ck_assert_int_lt(now_ms() - t0, 1500);
	ck_assert_int_ge(now_ms() - t0, 350);
	ck_assert_msg(strstr(err.message, fake_url(hang)) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "timed out") != NULL, "%s", err.message);
	etcd_client_free(c);

	/* The same request is retried once on the next endpoint. */
	fake_push(hang, &st);
	fake_push_http(good, 200, "{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Yg==\"}]}");
	c = client2(fake_url(hang), fake_url(good), 0.4);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	ck_assert_str_eq(r.kvs[0].value, "b");
	etcd_range_result_free(&r);
	ck_assert_str_eq(etcd_client_endpoint(c), fake_url(good));
	assert_request_has(good, 0, "{\"key\":\"YQ==\"}");
	etcd_client_free(c);
	fake_stop(hang);
	fake_stop(good);
}
END_TEST

struct canceler {
	struct etcd_client *c;
	long after_ms;
	int64_t at_ms;
};

static void *cancel_later(void *arg)
{
	struct canceler *k = arg;

	sleep_ms(k->after_ms);
	k->at_ms = now_ms();
	etcd_client_cancel(k->c);
	return NULL;
}

START_TEST(test_cancel_blocked_request)
{
	struct fake_server *fs = fake_start();
	struct fake_step st = { .kind = FAKE_HANG };
	struct etcd_range_result r;
	struct etcd_error err;
	struct canceler k = { .after_ms = 300 };
	pthread_t th;
	int64_t t_back;

	fake_push(fs, &st);
	k.c = client2(fake_url(fs), NULL, 10.0);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &k), 0);
	ck_assert_int_eq(etcd_get(k.c, "a", &r, &err), ETCD_E_CANCELED);
	t_back = now_ms();
	pthread_join(th, NULL);
	ck_assert_int_lt(t_back - k.at_ms, 100);
	ck_assert_msg(strstr(err.message, fake_url(fs)) != NULL, "%s", err.message);
	etcd_client_free(k.c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_connect_refused)
{
	char dead1[64], dead2[64];
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;
	char expect[128];

	dead_url(dead1, sizeof(dead1));
	dead_url(dead2, sizeof(dead2));
	c = client2(dead1, dead2, 1.0);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_UNAVAILABLE);
	snprintf(expect, sizeof(expect), "%s: connect failed: Connection refused", dead1);
	ck_assert_msg(strstr(err.message, expect) != NULL, "<%s>", err.message);
	ck_assert_msg(strstr(err.message, dead2) != NULL, "<%s>", err.message);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_auth_token_refresh)
{
	struct fake_server *fs = fake_start();
	const char *eps[1];
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .username = "root", .password = "s3cret" };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;

	eps[0] = fake_url(fs);
	fake_push_http(fs, 200, "{" HDR ",\"token\":\"tok1.abc\"}");
	fake_push_http(fs, 200, "{" HDR "}");
	fake_push_http(fs, 401,
	               "{\"error\":\"etcdserver: invalid auth token\",\"message\":"
	               "\"etcdserver: invalid auth token\",\"code\":16}");
	fake_push_http(fs, 200, "{" HDR ",\"token\":\"tok2.def\"}");
	fake_push_http(fs, 200, "{" HDR "}");
	/* Then a wrong password. */
	fake_push_http(fs, 401,
	               "{\"error\":\"etcdserver: invalid auth token\",\"message\":"
	               "\"etcdserver: invalid auth token\",\"code\":16}");
	fake_push_http(fs, 400,
	               "{\"error\":\"etcdserver: authentication failed, invalid user ID or "
	               "password\",\"code\":3}");
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	assert_request_has(fs, 0, "/v3/auth/authenticate\n");
	assert_request_has(fs, 0, "{\"name\":\"root\",\"password\":\"s3cret\"}");
	assert_request_has(fs, 1, "Authorization: tok1.abc\r\n");
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	assert_request_has(fs, 2, "Authorization: tok1.abc\r\n");
	assert_request_has(fs, 3, "/v3/auth/authenticate\n");
	assert_request_has(fs, 4, "Authorization: tok2.def\r\n");
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_AUTH);
	ck_assert_msg(strstr(err.message, "authentication failed") != NULL, "%s", err.message);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_client_config)
{
	const char *eps[2] = { "127.0.0.1:2379/", "https://etcd.example:2379" };
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 2 };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;

	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_str_eq(etcd_client_endpoint(c), "http://127.0.0.1:2379");
	/* Cancel is sticky and checked before any I/O. */
	etcd_client_cancel(c);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_CANCELED);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_CANCELED);
	etcd_client_free(c);

	cfg.n_endpoints = 0;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_E_INVALID);
	ck_assert_ptr_null(c);
	cfg.n_endpoints = 1;
	cfg.username = "u"; /* no password */
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_E_INVALID);
	ck_assert_str_eq(etcd_status_name(ETCD_E_LEASE_NOT_FOUND), "lease not found");
	ck_assert_str_eq(etcd_status_name((enum etcd_status)999), "unknown status");
}
END_TEST

/* ---- unit: members, a blackholed member, a trickle, TLS set-up --------- */

#define MEMBERS_ANSWER                                                                              \
	"{" HDR ",\"members\":["                                                                    \
	"{\"ID\":\"1\",\"name\":\"a\",\"peerURLs\":[\"http://127.0.0.1:1\"],"                       \
	"\"clientURLs\":[\"%s\"]},"                                                                 \
	"{\"ID\":\"2\",\"name\":\"b\",\"clientURLs\":[\"http://127.0.0.1:2\","                      \
	"\"http://127.0.0.1:2\",\"https://127.0.0.1:3\"]},"                                         \
	"{\"ID\":\"3\",\"name\":\"l\",\"isLearner\":true,\"clientURLs\":[\"http://127.0.0.1:4\"]}," \
	"{\"ID\":\"4\"}]}"

START_TEST(test_member_list)
{
	struct fake_server *fs = fake_start();
	const char *eps[1];
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .discover_members = true };
	struct etcd_client *c = NULL;
	struct etcd_error err;
	char answer[1024], **urls = NULL;
	size_t n = 0;

	eps[0] = fake_url(fs);
	snprintf(answer, sizeof(answer), MEMBERS_ANSWER, fake_url(fs));
	fake_push_http(fs, 200, answer);
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_member_list(c, &urls, &n, &err), ETCD_OK);
	assert_request_has(fs, 0, "/v3/cluster/member/list\n");
	/* Duplicates once, the learner and the unstarted member left out. */
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(urls[0], fake_url(fs));
	ck_assert_str_eq(urls[1], "http://127.0.0.1:2");
	ck_assert_str_eq(urls[2], "https://127.0.0.1:3");
	etcd_member_list_free(urls, n);
	etcd_client_free(c);

	/* discover_members appends what is new after the configured ones. */
	fake_push_http(fs, 200, answer);
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_uint_eq(etcd_client_n_endpoints(c), 3);
	ck_assert_str_eq(etcd_client_endpoint_at(c, 0), fake_url(fs));
	ck_assert_str_eq(etcd_client_endpoint_at(c, 1), "http://127.0.0.1:2");
	ck_assert_str_eq(etcd_client_endpoint_at(c, 2), "https://127.0.0.1:3");
	ck_assert_ptr_null(etcd_client_endpoint_at(c, 3));
	etcd_client_free(c);

	/* A wrong shape is a protocol error, and discovery failing keeps the
	 * configured list. */
	fake_push_http(fs, 200, "{\"members\":[{\"clientURLs\":[\"ftp://x\"]}]}");
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_member_list(c, &urls, &n, &err), ETCD_E_PROTOCOL);
	ck_assert_ptr_null(urls);
	ck_assert_msg(strstr(err.message, "client URL") != NULL, "%s", err.message);
	fake_push_http(fs, 200, "{\"members\":{}}");
	ck_assert_int_eq(etcd_member_list(c, &urls, &n, &err), ETCD_E_PROTOCOL);
	etcd_client_free(c);
	fake_push_http(fs, 500, "no");
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_uint_eq(etcd_client_n_endpoints(c), 1);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

/* A loopback port whose accept queue is full: a connect there hangs as if
 * the host had vanished (the SYN is dropped). Returns the listening fd. */
static int blackhole(char *url, size_t len, int fillers[2])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 0), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	for (i = 0; i < 2; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fillers[i], 0);
		(void)connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	sleep_ms(50);
	snprintf(url, len, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	return fd;
}

START_TEST(test_dead_member_costs_one_connect_timeout)
{
	struct fake_server *good = fake_start();
	char hole[64], dead[64];
	int fillers[2], lfd = blackhole(hole, sizeof(hole), fillers);
	const char *eps[3] = { hole, NULL, NULL };
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 3, .request_timeout = 3.0, .connect_timeout = 0.3 };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t t0, took;
	int i;

	dead_url(dead, sizeof(dead));
	eps[1] = dead;
	eps[2] = fake_url(good);
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	for (i = 0; i < 4; i++)
		fake_push_http(good, 200, "{" HDR "}");
	/* The first request pays the blackholed member's connect timeout once
	 * (not the request timeout), the refused one costs nothing... */
	t0 = now_ms();
	ck_assert_msg(etcd_get(c, "a", &r, &err) == ETCD_OK, "%s", err.message);
	took = now_ms() - t0;
	etcd_range_result_free(&r);
	ck_assert_msg(took >= 250 && took < 1200, "first request took %lld ms", (long long)took);
	ck_assert_str_eq(etcd_client_endpoint(c), fake_url(good));
	/* ...and the next ones stick to the member that answered. */
	for (i = 0; i < 3; i++) {
		t0 = now_ms();
		ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_OK);
		etcd_range_result_free(&r);
		ck_assert_int_lt(now_ms() - t0, 200);
	}
	ck_assert_uint_eq(fake_n_requests(good), 4);
	/* Two members failed the first request before the third answered; the
	 * successful request still counts them, the later ones add none. */
	{
		struct etcd_stats st;

		etcd_client_get_stats(c, &st);
		ck_assert_uint_eq(st.endpoint_failovers, 2);
		ck_assert_uint_eq(st.failures, 0);
	}
	/* The preferred endpoint can be set (a watch's client starts there). */
	ck_assert_uint_eq(etcd_client_current(c), 2);
	ck_assert(!etcd_client_prefer(c, 3));
	ck_assert_uint_eq(etcd_client_current(c), 2);
	ck_assert(etcd_client_prefer(c, 1));
	ck_assert_uint_eq(etcd_client_current(c), 1);
	ck_assert_str_eq(etcd_client_endpoint(c), dead);
	etcd_client_free(c);
	close(fillers[0]);
	close(fillers[1]);
	close(lfd);
	fake_stop(good);
}
END_TEST

START_TEST(test_slow_trickle_bounded)
{
	struct fake_server *fs = fake_start();
	struct fake_step st = { .kind = FAKE_RAW, .pause_ms = 1000 };
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{}";
	static char bytes[FAKE_MAX_PIECES][2];
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t t0, took;
	int i;

	/* One byte a second: headers never even complete in time. */
	for (i = 0; i < FAKE_MAX_PIECES - 1; i++) {
		bytes[i][0] = answer[i];
		st.pieces[i] = bytes[i];
	}
	fake_push(fs, &st);
	c = client2(fake_url(fs), NULL, 1.5);
	t0 = now_ms();
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_TIMEOUT);
	took = now_ms() - t0;
	ck_assert_msg(took >= 1400 && took < 2500, "took %lld ms", (long long)took);
	ck_assert_msg(strstr(err.message, fake_url(fs)) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "timed out") != NULL, "%s", err.message);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_tls_setup_errors)
{
	struct fake_server *fs = fake_start();
	char dir[] = "/tmp/check_etcd_tls.XXXXXX", path[128], missing[160];
	const char *eps[1];
	/* Generous timeouts: the CA file fails to load before any byte is
	 * sent, but under valgrind OpenSSL's set-up alone takes a while. */
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .connect_timeout = 5, .request_timeout = 10 };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;
	char url[128];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Files are checked at creation; the error names the file and why. */
	snprintf(missing, sizeof(missing), "%s/nope.pem", dir);
	eps[0] = fake_url(fs);
	cfg.cacert = missing;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_E_INVALID);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err.message, missing) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "No such file") != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "cacert") != NULL, "%s", err.message);
	cfg.cacert = NULL;
	cfg.cert = dir; /* a directory */
	cfg.key = missing;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_E_INVALID);
	ck_assert_msg(strstr(err.message, dir) != NULL && strstr(err.message, "not a regular file"), "%s", err.message);

	/* A CA file that is not PEM: named, with the reason. */
	snprintf(path, sizeof(path), "%s/garbage.pem", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a certificate\n", f);
	fclose(f);
	snprintf(url, sizeof(url), "https://%s", fake_url(fs) + strlen("http://"));
	eps[0] = url;
	cfg.cert = cfg.key = NULL;
	cfg.cacert = path;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "a", &r, &err), ETCD_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.message, url) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "TLS: cannot load CA file") != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, path) != NULL, "%s", err.message);
	etcd_client_free(c);
	fake_stop(fs);
	etcd_proc_rmtree(dir);
}
END_TEST

/* ---- unit: watch stream ------------------------------------------------- */

struct rec_event {
	enum etcd_event_type type;
	char key[64];
	char value[64];
	int64_t mod_revision;
	int64_t batch_revision;
};

struct recorder {
	pthread_mutex_t mu;
	struct rec_event ev[64];
	int n_events;
	int n_connected;
	int stop_after; /* return false after this many events (0 = never) */
	/* watch thread */
	struct etcd_client *c;
	const char *key;
	bool prefix;
	int64_t start;
	pthread_t th;
	enum etcd_status st;
	struct etcd_error err;
	int64_t last;
	int64_t done_ms;
	bool done;
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

static bool rec_cb(void *ctx, const struct etcd_event *events, size_t n, int64_t revision)
{
	struct recorder *r = ctx;
	bool go_on = true;
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < n && r->n_events < 64; i++) {
		struct rec_event *e = &r->ev[r->n_events++];

		e->type = events[i].type;
		snprintf(e->key, sizeof(e->key), "%s", events[i].kv->key);
		snprintf(e->value, sizeof(e->value), "%s", events[i].kv->value);
		e->mod_revision = events[i].kv->mod_revision;
		e->batch_revision = revision;
	}
	if (r->stop_after > 0 && r->n_events >= r->stop_after)
		go_on = false;
	pthread_mutex_unlock(&r->mu);
	return go_on;
}

static void rec_connected(void *ctx)
{
	struct recorder *r = ctx;

	pthread_mutex_lock(&r->mu);
	r->n_connected++;
	pthread_mutex_unlock(&r->mu);
}

static int rec_count(struct recorder *r, bool connected)
{
	int n;

	pthread_mutex_lock(&r->mu);
	n = connected ? r->n_connected : r->n_events;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Waits (bounded) until at least n events (or connections) were seen. */
static bool rec_wait(struct recorder *r, bool connected, int n, long timeout_ms)
{
	int64_t until = now_ms() + timeout_ms;

	while (now_ms() < until) {
		if (rec_count(r, connected) >= n)
			return true;
		sleep_ms(10);
	}
	return rec_count(r, connected) >= n;
}

START_TEST(test_watch_split_chunks_resume_compacted)
{
	struct fake_server *fs = fake_start();
	struct fake_step s1 = { .kind = FAKE_RAW, .pause_ms = 100 }, s2 = s1;
	struct etcd_client *c;
	struct etcd_error err;
	struct recorder r;
	int64_t last = -1;
	char *pieces[8];
	size_t i;

	/* Stream 1: created, a PUT (no "type") split mid-object, a DELETE, end. */
	s1.pieces[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	               "Transfer-Encoding: chunked\r\n\r\n";
	s1.pieces[1] = pieces[0] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"10\"},\"created\":true}}\n"
	                                      "{\"result\":{\"header\":{\"rev");
	s1.pieces[2] = pieces[1] = fake_chunk(
	        "ision\":\"11\"},\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"value\":\"YmFy\","
	        "\"create_revision\":\"11\",\"mod_revision\":\"11\",\"version\":\"1\"}}]}}");
	s1.pieces[3] = pieces[2] = fake_chunk("\n\n{\"result\":{\"header\":{\"revision\":\"12\"},\"events\":[{\"type\":"
	                                      "\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"12\"}}]}}\n");
	s1.pieces[4] = "0\r\n\r\n";
	/* Stream 2 (the reconnect): created, then cancelled for compaction. */
	s2.pieces[0] = s1.pieces[0];
	s2.pieces[1] = pieces[3] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"30\"},\"created\":true}}\n");
	s2.pieces[2] = pieces[4] = fake_chunk(
	        "{\"result\":{\"header\":{},\"canceled\":true,\"compact_revision\":\"20\"}}\n");
	s2.pieces[3] = "0\r\n\r\n";
	fake_push(fs, &s1);
	fake_push(fs, &s2);
	for (i = 0; i < 5; i++)
		free(pieces[i]);

	rec_init(&r);
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_watch(c, "foo", false, 0, rec_cb, &r, rec_connected, 5.0, &last, &err), ETCD_E_COMPACTED);
	ck_assert_int_eq(err.status, ETCD_E_COMPACTED);
	ck_assert_msg(strstr(err.message, fake_url(fs)) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "compacted") != NULL, "%s", err.message);
	ck_assert_int_eq(last, 12);
	ck_assert_int_eq(r.n_connected, 2);
	ck_assert_int_eq(r.n_events, 2);
	ck_assert_int_eq(r.ev[0].type, ETCD_EVENT_PUT);
	ck_assert_str_eq(r.ev[0].key, "foo");
	ck_assert_str_eq(r.ev[0].value, "bar");
	ck_assert_int_eq(r.ev[0].mod_revision, 11);
	ck_assert_int_eq(r.ev[0].batch_revision, 11);
	ck_assert_int_eq(r.ev[1].type, ETCD_EVENT_DELETE);
	ck_assert_str_eq(r.ev[1].key, "foo");
	ck_assert_str_eq(r.ev[1].value, "");
	ck_assert_int_eq(r.ev[1].mod_revision, 12);
	/* First from "now"; the reconnect resumes after the last event. */
	assert_request_has(fs, 0, "/v3/watch\n");
	assert_request_has(fs, 0, "{\"create_request\":{\"key\":\"Zm9v\"}}");
	assert_request_has(fs, 1, "\"start_revision\":\"13\"");
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_watch_prefix_stop_and_garbage)
{
	struct fake_server *fs = fake_start();
	struct fake_step s1 = { .kind = FAKE_RAW }, s2 = s1;
	struct etcd_client *c;
	struct etcd_error err;
	struct recorder r;
	int64_t last = -1;
	char *pieces[3];

	s1.pieces[0] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	s1.pieces[1] = pieces[0] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n"
	                                      "{\"result\":{\"header\":{\"revision\":\"7\"},\"events\":["
	                                      "{\"kv\":{\"key\":\"cC9h\",\"mod_revision\":\"6\"}},"
	                                      "{\"kv\":{\"key\":\"cC9i\",\"mod_revision\":\"7\"}}]}}\n");
	s1.pieces[2] = "0\r\n\r\n";
	s2.pieces[0] = s1.pieces[0];
	s2.pieces[1] = pieces[1] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n"
	                                      "{\"result\":{\"events\":{\"not\":\"an array\"}}}\n");
	s2.pieces[2] = "0\r\n\r\n";
	fake_push(fs, &s1);
	fake_push(fs, &s2);
	free(pieces[0]);
	free(pieces[1]);

	/* The callback returning false ends the watch with ETCD_OK. */
	rec_init(&r);
	r.stop_after = 1;
	c = client1(fake_url(fs));
	ck_assert_int_eq(etcd_watch(c, "p/", true, 3, rec_cb, &r, NULL, 5.0, &last, &err), ETCD_OK);
	ck_assert_int_eq(r.n_events, 2); /* one batch of two */
	ck_assert_int_eq(r.ev[1].batch_revision, 7);
	ck_assert_int_eq(last, 7);
	assert_request_has(fs, 0, "\"key\":\"cC8=\",\"range_end\":\"cDA=\",\"start_revision\":\"3\"");
	/* A wrong shape on the stream is a protocol error, not a crash or a loop. */
	rec_init(&r);
	ck_assert_int_eq(etcd_watch(c, "p/", true, 0, rec_cb, &r, NULL, 5.0, &last, &err), ETCD_E_PROTOCOL);
	ck_assert_msg(strstr(err.message, fake_url(fs)) != NULL, "%s", err.message);
	ck_assert_int_eq(r.n_events, 0);
	etcd_client_free(c);
	fake_stop(fs);
}
END_TEST

START_TEST(test_watch_gives_up_after_max_reconnect)
{
	char dead[64];
	struct etcd_client *c;
	struct etcd_error err;
	struct recorder r;
	int64_t t0, last;

	dead_url(dead, sizeof(dead));
	rec_init(&r);
	c = client1(dead);
	t0 = now_ms();
	ck_assert_int_eq(etcd_watch(c, "k", false, 0, rec_cb, &r, rec_connected, 0.8, &last, &err), ETCD_E_UNAVAILABLE);
	ck_assert_int_ge(now_ms() - t0, 700);
	ck_assert_int_lt(now_ms() - t0, 2500);
	ck_assert_msg(strstr(err.message, dead) != NULL, "%s", err.message);
	ck_assert_int_eq(r.n_connected, 0);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_watch_idle_reconnects)
{
	struct fake_server *a = fake_start(), *b = fake_start();
	struct fake_step sa = { .kind = FAKE_RAW, .pause_ms = 3000 }, sb = { .kind = FAKE_RAW };
	const char *eps[2];
	struct etcd_config cfg = { .endpoints = eps,
		                   .n_endpoints = 2,
		                   .request_timeout = 1.0,
		                   .connect_timeout = 0.5,
		                   .watch_idle_timeout = 0.5 };
	struct etcd_client *c = NULL;
	struct etcd_error err;
	struct recorder r;
	char *heads[2], *ev;
	int64_t last = -1, t0;

	/* a: created at revision 8, then silence (3 s) while the TCP
	 * connection stays up; b: created, then one event. */
	heads[0] = fake_chunk("{\"result\":{\"header\":{\"revision\":\"8\"},\"created\":true}}\n");
	heads[1] = malloc(512);
	ck_assert_ptr_nonnull(heads[1]);
	snprintf(heads[1], 512, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", heads[0]);
	sa.pieces[0] = heads[1];
	sa.pieces[1] = "0\r\n\r\n";
	ev = fake_chunk("{\"result\":{\"header\":{\"revision\":\"9\"},\"created\":true}}\n"
	                "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":["
	                "{\"kv\":{\"key\":\"aw==\",\"value\":\"dg==\",\"mod_revision\":\"9\"}}]}}\n");
	sb.pieces[0] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	sb.pieces[1] = ev;
	sb.pieces[2] = "0\r\n\r\n";
	fake_push(a, &sa);
	fake_push(b, &sb);
	free(heads[0]);
	free(heads[1]);
	free(ev);

	eps[0] = fake_url(a);
	eps[1] = fake_url(b);
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	rec_init(&r);
	r.stop_after = 1;
	t0 = now_ms();
	ck_assert_int_eq(etcd_watch(c, "k", false, 0, rec_cb, &r, rec_connected, 5.0, &last, &err), ETCD_OK);
	/* The silent stream was dropped after ~0.5 s, not after a+b's 3 s. */
	ck_assert_msg(now_ms() - t0 < 1800, "took %lld ms", (long long)(now_ms() - t0));
	ck_assert_int_eq(r.n_connected, 2);
	ck_assert_int_eq(r.n_events, 1);
	ck_assert_int_eq(last, 9);
	assert_request_has(a, 0, "\"progress_notify\":true");
	/* Resumed on the other member right after what a had covered. */
	assert_request_has(b, 0, "\"start_revision\":\"9\"");
	etcd_client_free(c);
	fake_stop(a);
	fake_stop(b);
}
END_TEST

/* ---- integration: a real etcd ------------------------------------------ */

static char g_base[256];        /* parent's temporary directory */
static char g_dir[512];         /* this test's directory under it */
static struct etcd_proc g_etcd; /* this test's etcd */
static int g_test_no;

static void integration_tcase_setup(void)
{
	snprintf(g_base, sizeof(g_base), "/tmp/check_etcd.XXXXXX");
	if (mkdtemp(g_base) == NULL)
		g_base[0] = '\0';
}

static void integration_tcase_teardown(void)
{
	etcd_proc_rmtree(g_base);
}

static void etcd_setup(void)
{
	ck_assert_msg(g_base[0] != '\0', "no temporary directory");
	snprintf(g_dir, sizeof(g_dir), "%s/t%d-%d", g_base, (int)getpid(), ++g_test_no);
	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	memset(&g_etcd, 0, sizeof(g_etcd));
	ck_assert_msg(etcd_proc_start(&g_etcd, g_dir), "etcd did not start (log in %s)", g_dir);
}

static void etcd_teardown(void)
{
	etcd_proc_stop(&g_etcd, SIGKILL);
	etcd_proc_rmtree(g_dir);
}

static void *watch_thread(void *arg)
{
	struct recorder *r = arg;

	r->st = etcd_watch(r->c, r->key, r->prefix, r->start, rec_cb, r, rec_connected, 0, &r->last, &r->err);
	pthread_mutex_lock(&r->mu);
	r->done = true;
	r->done_ms = now_ms();
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void watch_start(struct recorder *r, const char *url, const char *key, bool prefix, int64_t start)
{
	rec_init(r);
	r->c = client1(url);
	r->key = key;
	r->prefix = prefix;
	r->start = start;
	ck_assert_int_eq(pthread_create(&r->th, NULL, watch_thread, r), 0);
}

static void watch_stop(struct recorder *r)
{
	etcd_client_cancel(r->c);
	pthread_join(r->th, NULL);
	etcd_client_free(r->c);
	r->c = NULL;
}

START_TEST(test_real_kv)
{
	struct etcd_client *c = client1(g_etcd.url);
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t rev_a = 0, rev_b = 0, deleted = -1;

	ck_assert_int_eq(etcd_put(c, "/t/b", "two", 0, &rev_b, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(c, "/t/a", "one", 0, &rev_a, &err), ETCD_OK);
	ck_assert_int_gt(rev_a, rev_b);
	ck_assert_int_eq(etcd_put(c, "/t/c", "", 0, NULL, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(c, "/tx", "outside", 0, NULL, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(c, "/t/a", "uno", 0, NULL, &err), ETCD_OK);

	ck_assert_int_eq(etcd_get(c, "/t/a", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	ck_assert_str_eq(r.kvs[0].key, "/t/a");
	ck_assert_str_eq(r.kvs[0].value, "uno");
	ck_assert_int_eq(r.kvs[0].create_revision, rev_a);
	ck_assert_int_gt(r.kvs[0].mod_revision, rev_a);
	ck_assert_int_eq(r.kvs[0].version, 2);
	ck_assert_int_eq(r.kvs[0].lease, 0);
	ck_assert_int_eq(r.revision, r.kvs[0].mod_revision);
	etcd_range_result_free(&r);

	ck_assert_int_eq(etcd_get_prefix(c, "/t/", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 3);
	ck_assert_str_eq(r.kvs[0].key, "/t/a");
	ck_assert_str_eq(r.kvs[1].key, "/t/b");
	ck_assert_str_eq(r.kvs[1].value, "two");
	ck_assert_str_eq(r.kvs[2].key, "/t/c");
	ck_assert_uint_eq(r.kvs[2].value_len, 0);
	etcd_range_result_free(&r);

	ck_assert_int_eq(etcd_delete(c, "/t/a", &deleted, &err), ETCD_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(etcd_delete(c, "/t/a", &deleted, &err), ETCD_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(etcd_get(c, "/t/a", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 0);
	ck_assert_int_gt(r.revision, 0);
	etcd_range_result_free(&r);
	ck_assert_str_eq(etcd_client_endpoint(c), g_etcd.url);
	etcd_client_free(c);
}
END_TEST

/* The leader election of DESIGN.md: put leader if it was never created. */
static enum etcd_status elect(struct etcd_client *c, const char *name, int64_t lease, struct etcd_txn_result *t,
                              struct etcd_error *err)
{
	struct etcd_compare cmp = {
		.key = "/svc/leader", .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0
	};
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = "/svc/leader", .value = name, .lease = lease };
	struct etcd_op get = { .kind = ETCD_OP_GET, .key = "/svc/leader" };

	return etcd_txn(c, &cmp, 1, &put, 1, &get, 1, t, err);
}

START_TEST(test_real_txn_election)
{
	struct etcd_client *c1 = client1(g_etcd.url), *c2 = client1(g_etcd.url);
	struct etcd_txn_result t;
	struct etcd_error err;
	int64_t l1, l2, ttl;
	struct etcd_compare is_n2 = {
		.key = "/svc/leader", .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = "node2"
	};
	struct etcd_compare is_n1 = is_n2;
	struct etcd_op del = { .kind = ETCD_OP_DELETE, .key = "/svc/leader" };

	ck_assert_int_eq(etcd_lease_grant(c1, 10, &l1, &ttl, &err), ETCD_OK);
	ck_assert_int_eq(etcd_lease_grant(c2, 10, &l2, &ttl, &err), ETCD_OK);
	ck_assert_int_eq(elect(c1, "node1", l1, &t, &err), ETCD_OK);
	ck_assert(t.succeeded);
	ck_assert_uint_eq(t.n_ranges, 0);
	etcd_txn_result_free(&t);

	ck_assert_int_eq(elect(c2, "node2", l2, &t, &err), ETCD_OK);
	ck_assert(!t.succeeded);
	ck_assert_uint_eq(t.n_ranges, 1);
	ck_assert_uint_eq(t.ranges[0].n_kvs, 1);
	ck_assert_str_eq(t.ranges[0].kvs[0].value, "node1");
	ck_assert(t.ranges[0].kvs[0].lease == l1); /* lease IDs are big: int64 exact */
	etcd_txn_result_free(&t);

	/* Release only if it is ours: node2's delete fails, node1's works. */
	ck_assert_int_eq(etcd_txn(c2, &is_n2, 1, &del, 1, NULL, 0, &t, &err), ETCD_OK);
	ck_assert(!t.succeeded);
	etcd_txn_result_free(&t);
	is_n1.value = "node1";
	ck_assert_int_eq(etcd_txn(c1, &is_n1, 1, &del, 1, NULL, 0, &t, &err), ETCD_OK);
	ck_assert(t.succeeded);
	etcd_txn_result_free(&t);
	ck_assert_int_eq(elect(c2, "node2", l2, &t, &err), ETCD_OK);
	ck_assert(t.succeeded);
	etcd_txn_result_free(&t);
	etcd_client_free(c1);
	etcd_client_free(c2);
}
END_TEST

START_TEST(test_real_lease)
{
	struct etcd_client *c = client1(g_etcd.url);
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t id = 0, ttl = 0;

	ck_assert_int_eq(etcd_lease_grant(c, 5, &id, &ttl, &err), ETCD_OK);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(ttl, 5);
	ck_assert_int_eq(etcd_put(c, "/lease/k", "v", id, NULL, &err), ETCD_OK);
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_OK);
	ck_assert_int_eq(ttl, 5);
	ck_assert_int_eq(etcd_get(c, "/lease/k", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	ck_assert(r.kvs[0].lease == id);
	etcd_range_result_free(&r);

	ck_assert_int_eq(etcd_lease_revoke(c, id, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "/lease/k", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 0); /* revoke deleted the attached key */
	etcd_range_result_free(&r);
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_E_LEASE_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.message, g_etcd.url));
	ck_assert_int_eq(etcd_lease_revoke(c, id, &err), ETCD_OK);
	/* A put on a lease that is gone is refused by etcd. */
	ck_assert_int_eq(etcd_put(c, "/lease/k", "v", id, NULL, &err), ETCD_E_LEASE_NOT_FOUND);
	ck_assert_msg(strstr(err.message, "lease not found") != NULL, "%s", err.message);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_real_lease_expiry_seen_by_watch)
{
	struct etcd_client *c = client1(g_etcd.url);
	struct etcd_error err;
	struct recorder w;
	int64_t id, ttl, rev, t_put, elapsed;

	ck_assert_int_eq(etcd_lease_grant(c, 2, &id, &ttl, &err), ETCD_OK);
	ck_assert_int_eq(ttl, 2);
	ck_assert_int_eq(etcd_put(c, "/exp/leader", "me", id, &rev, &err), ETCD_OK);
	t_put = now_ms();
	watch_start(&w, g_etcd.url, "/exp/leader", false, rev + 1);
	/* No keepalive: the key must vanish within ~TTL and the watch see it. */
	ck_assert_msg(rec_wait(&w, false, 1, 6000), "no event within 6 s");
	elapsed = now_ms() - t_put;
	pthread_mutex_lock(&w.mu);
	ck_assert_int_eq(w.ev[0].type, ETCD_EVENT_DELETE);
	ck_assert_str_eq(w.ev[0].key, "/exp/leader");
	ck_assert_int_gt(w.ev[0].mod_revision, rev);
	pthread_mutex_unlock(&w.mu);
	ck_assert_int_ge(elapsed, 1500);
	ck_assert_int_le(elapsed, 4000);
	watch_stop(&w);
	ck_assert_int_eq(w.st, ETCD_E_CANCELED);
	ck_assert_int_eq(etcd_lease_keepalive(c, id, &ttl, &err), ETCD_E_LEASE_NOT_FOUND);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_real_endpoint_down)
{
	char dead[64];
	struct etcd_client *c;
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t t0;

	dead_url(dead, sizeof(dead));
	c = client1(dead);
	t0 = now_ms();
	ck_assert_int_eq(etcd_get(c, "/x", &r, &err), ETCD_E_UNAVAILABLE);
	ck_assert_int_lt(now_ms() - t0, 1000);
	ck_assert_msg(strstr(err.message, dead) != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "connect failed") != NULL, "%s", err.message);
	etcd_client_free(c);

	/* First endpoint dead, second alive: success, and it is remembered. */
	c = client2(dead, g_etcd.url, 1.0);
	ck_assert_str_eq(etcd_client_endpoint(c), dead);
	ck_assert_int_eq(etcd_put(c, "/x", "1", 0, NULL, &err), ETCD_OK);
	ck_assert_str_eq(etcd_client_endpoint(c), g_etcd.url);
	ck_assert_int_eq(etcd_get(c, "/x", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	etcd_range_result_free(&r);
	ck_assert_str_eq(etcd_client_endpoint(c), g_etcd.url);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_real_watch_survives_restart)
{
	struct etcd_client *c = client1(g_etcd.url);
	struct etcd_error err;
	struct recorder w;
	int i;

	watch_start(&w, g_etcd.url, "/w/", true, 0);
	ck_assert_msg(rec_wait(&w, true, 1, 5000), "watch never connected");
	ck_assert_int_eq(etcd_put(c, "/w/1", "a", 0, NULL, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(c, "/other", "x", 0, NULL, &err), ETCD_OK);
	ck_assert_msg(rec_wait(&w, false, 1, 5000), "first event not seen");

	etcd_proc_stop(&g_etcd, SIGTERM);
	ck_assert_int_eq(g_etcd.pid, 0);
	sleep_ms(300); /* the watch is now failing to reconnect */
	ck_assert_msg(etcd_proc_restart(&g_etcd), "etcd did not restart");
	/* The client may have to wait for its connection to notice. */
	for (i = 0; i < 50; i++) {
		if (etcd_put(c, "/w/2", "b", 0, NULL, &err) == ETCD_OK)
			break;
		sleep_ms(100);
	}
	ck_assert_msg(i < 50, "put after restart failed: %s", err.message);
	ck_assert_msg(rec_wait(&w, false, 2, 10000), "event after restart not seen");
	sleep_ms(200);
	pthread_mutex_lock(&w.mu);
	ck_assert_int_eq(w.n_events, 2); /* nothing lost, nothing repeated */
	ck_assert_str_eq(w.ev[0].key, "/w/1");
	ck_assert_str_eq(w.ev[1].key, "/w/2");
	ck_assert_str_eq(w.ev[1].value, "b");
	ck_assert_int_ge(w.n_connected, 2);
	ck_assert(!w.done);
	pthread_mutex_unlock(&w.mu);
	watch_stop(&w);
	ck_assert_int_eq(w.st, ETCD_E_CANCELED);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_real_cancel_ends_watch)
{
	struct recorder w;
	struct etcd_range_result r;
	struct etcd_error err;
	int64_t t_cancel;
	struct etcd_client *c;

	watch_start(&w, g_etcd.url, "/quiet", false, 0);
	ck_assert_msg(rec_wait(&w, true, 1, 5000), "watch never connected");
	sleep_ms(300); /* idle stream: nothing to read */
	c = w.c;
	t_cancel = now_ms();
	etcd_client_cancel(c);
	pthread_join(w.th, NULL);
	ck_assert_int_eq(w.st, ETCD_E_CANCELED);
	ck_assert_int_lt(w.done_ms - t_cancel, 100);
	/* Sticky: later calls on the client are cancelled too. */
	ck_assert_int_eq(etcd_get(c, "/quiet", &r, &err), ETCD_E_CANCELED);
	etcd_client_free(c);
}
END_TEST

START_TEST(test_real_auth)
{
	const char *eps[1] = { g_etcd.url };
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .username = "root", .password = "pw" };
	struct etcd_client *c = NULL, *bad = NULL, *anon = client1(g_etcd.url);
	struct etcd_range_result r;
	struct etcd_error err;
	struct recorder w;

	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"pw\"}"));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}"));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/enable", "{}"));

	/* No credentials, or wrong ones: ETCD_E_AUTH. */
	ck_assert_int_eq(etcd_put(anon, "/a/k", "v", 0, NULL, &err), ETCD_E_AUTH);
	ck_assert_msg(strstr(err.message, g_etcd.url) != NULL, "%s", err.message);
	cfg.password = "wrong";
	ck_assert_int_eq(etcd_client_new(&cfg, &bad, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(bad, "/a/k", &r, &err), ETCD_E_AUTH);
	ck_assert_msg(strstr(err.message, "authentication failed") != NULL, "%s", err.message);

	cfg.password = "pw";
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(c, "/a/k", "v1", 0, NULL, &err), ETCD_OK);
	/* Tokens live 1 s here: the next call must re-authenticate by itself. */
	sleep_ms(2500);
	ck_assert_msg(etcd_put(c, "/a/k", "v2", 0, NULL, &err) == ETCD_OK, "%s", err.message);
	ck_assert_int_eq(etcd_get(c, "/a/k", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	ck_assert_str_eq(r.kvs[0].value, "v2");
	etcd_range_result_free(&r);

	/* A watch whose token expired is refused at create, then re-authenticates. */
	rec_init(&w);
	ck_assert_int_eq(etcd_client_new(&cfg, &w.c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(w.c, "/a/k", &r, &err), ETCD_OK);
	etcd_range_result_free(&r);
	sleep_ms(2500);
	w.key = "/a/";
	w.prefix = true;
	ck_assert_int_eq(pthread_create(&w.th, NULL, watch_thread, &w), 0);
	ck_assert_msg(rec_wait(&w, true, 1, 5000), "watch never connected");
	ck_assert_int_eq(etcd_put(c, "/a/k", "v3", 0, NULL, &err), ETCD_OK);
	ck_assert_msg(rec_wait(&w, false, 1, 5000), "no event");
	pthread_mutex_lock(&w.mu);
	ck_assert_str_eq(w.ev[0].value, "v3");
	ck_assert_int_eq(w.n_connected, 1);
	pthread_mutex_unlock(&w.mu);
	watch_stop(&w);
	ck_assert_int_eq(w.st, ETCD_E_CANCELED);
	etcd_client_free(c);
	etcd_client_free(bad);
	etcd_client_free(anon);
}
END_TEST

START_TEST(test_real_compacted_watch)
{
	struct etcd_client *c = client1(g_etcd.url), *w = client1(g_etcd.url);
	struct etcd_error err;
	struct recorder r;
	int64_t rev1 = 0, rev = 0, last = -1;
	char body[128];
	int i;

	ck_assert_int_eq(etcd_put(c, "/w/k", "0", 0, &rev1, &err), ETCD_OK);
	for (i = 1; i <= 5; i++)
		ck_assert_int_eq(etcd_put(c, "/w/k", "x", 0, &rev, &err), ETCD_OK);
	/* What `etcdctl compact` does. */
	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", (long long)rev);
	ck_assert(etcd_proc_post(&g_etcd, "/v3/kv/compaction", body));
	/* A watch from before the compaction learns it at once. */
	rec_init(&r);
	ck_assert_int_eq(etcd_watch(w, "/w/k", false, rev1, rec_cb, &r, rec_connected, 5.0, &last, &err),
	                 ETCD_E_COMPACTED);
	ck_assert_int_eq(err.status, ETCD_E_COMPACTED);
	ck_assert_msg(strstr(err.message, "compacted") != NULL && strstr(err.message, g_etcd.url), "%s", err.message);
	ck_assert_int_eq(r.n_events, 0);
	ck_assert_int_eq(last, rev1 - 1);
	/* From the compaction revision on, the watch works. */
	r.stop_after = 1;
	ck_assert_int_eq(etcd_watch(w, "/w/k", false, rev, rec_cb, &r, NULL, 5.0, &last, &err), ETCD_OK);
	ck_assert_int_eq(r.ev[0].mod_revision, rev);
	etcd_client_free(c);
	etcd_client_free(w);
}
END_TEST

/* The secret must never reach an error message. */
static void assert_no_secret(const struct etcd_error *err, const char *secret)
{
	ck_assert_msg(strstr(err->message, secret) == NULL, "password in <%s>", err->message);
}

START_TEST(test_real_auth_prefix_role)
{
	static const char pw[] = "Baton-pw-7f3e", root_pw[] = "Root-pw-91ab";
	const char *eps[1] = { g_etcd.url };
	struct etcd_config cfg = { .endpoints = eps,
		                   .n_endpoints = 1,
		                   .username = "baton",
		                   .password = "wrong-pass-4242",
		                   .watch_idle_timeout = 5 };
	struct etcd_client *c = NULL, *bad = NULL;
	struct etcd_range_result r;
	struct etcd_error err;
	struct recorder w;
	int64_t lease = 0, ttl = 0;
	char body[256];

	/* etcdctl user add root / role add baton / role grant-permission
	 * --prefix baton readwrite /baton/ / user add baton / user grant-role /
	 * auth enable, through the gateway. */
	snprintf(body, sizeof(body), "{\"name\":\"root\",\"password\":\"%s\"}", root_pw);
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/add", body));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}"));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/role/add", "{\"name\":\"baton\"}"));
	/* key "/baton/" .. range_end "/baton0", READWRITE = 2 */
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/role/grant",
	                         "{\"name\":\"baton\",\"perm\":{\"permType\":2,"
	                         "\"key\":\"L2JhdG9uLw==\",\"range_end\":\"L2JhdG9uMA==\"}}"));
	snprintf(body, sizeof(body), "{\"name\":\"baton\",\"password\":\"%s\"}", pw);
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/add", body));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/user/grant", "{\"user\":\"baton\",\"role\":\"baton\"}"));
	ck_assert(etcd_proc_post(&g_etcd, "/v3/auth/enable", "{}"));

	/* A wrong password: ETCD_E_AUTH, clear, and without the password. */
	ck_assert_int_eq(etcd_client_new(&cfg, &bad, &err), ETCD_OK);
	ck_assert_int_eq(etcd_put(bad, "/baton/k", "v", 0, NULL, &err), ETCD_E_AUTH);
	ck_assert_msg(strstr(err.message, "authentication failed") != NULL && strstr(err.message, g_etcd.url) != NULL,
	              "%s", err.message);
	assert_no_secret(&err, cfg.password);
	assert_no_secret(&err, pw);

	cfg.password = pw;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_msg(etcd_put(c, "/baton/k", "v1", 0, NULL, &err) == ETCD_OK, "%s", err.message);
	/* Outside its prefix the role refuses: ETCD_E_AUTH, not a retry loop. */
	ck_assert_int_eq(etcd_put(c, "/other/k", "v", 0, NULL, &err), ETCD_E_AUTH);
	ck_assert_msg(strstr(err.message, "permission denied") != NULL, "%s", err.message);
	assert_no_secret(&err, pw);
	ck_assert_int_eq(etcd_get_prefix(c, "/", &r, &err), ETCD_E_AUTH);
	assert_no_secret(&err, pw);

	/* Tokens live 1 s: put, get, lease and watch all outlive them. The
	 * lease outlives the two 2.2 s sleeps by far (5 s expired on a loaded
	 * machine). */
	ck_assert_int_eq(etcd_lease_grant(c, 15, &lease, &ttl, &err), ETCD_OK);
	sleep_ms(2200);
	ck_assert_msg(etcd_put(c, "/baton/k", "v2", lease, NULL, &err) == ETCD_OK, "%s", err.message);
	sleep_ms(2200);
	ck_assert_msg(etcd_lease_keepalive(c, lease, &ttl, &err) == ETCD_OK, "%s", err.message);
	ck_assert_int_eq(etcd_get(c, "/baton/k", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	ck_assert_str_eq(r.kvs[0].value, "v2");
	etcd_range_result_free(&r);

	rec_init(&w);
	ck_assert_int_eq(etcd_client_new(&cfg, &w.c, &err), ETCD_OK);
	w.key = "/baton/";
	w.prefix = true;
	ck_assert_int_eq(pthread_create(&w.th, NULL, watch_thread, &w), 0);
	ck_assert_msg(rec_wait(&w, true, 1, 5000), "watch never connected");
	sleep_ms(2200); /* the watch's token expires while it streams */
	ck_assert_msg(etcd_put(c, "/baton/k", "v3", 0, NULL, &err) == ETCD_OK, "%s", err.message);
	ck_assert_msg(rec_wait(&w, false, 1, 5000), "no event");
	pthread_mutex_lock(&w.mu);
	ck_assert_str_eq(w.ev[0].value, "v3");
	pthread_mutex_unlock(&w.mu);
	watch_stop(&w);
	ck_assert_int_eq(w.st, ETCD_E_CANCELED);

	/* A watch outside the prefix is refused with ETCD_E_AUTH. */
	rec_init(&w);
	ck_assert_int_eq(etcd_client_new(&cfg, &w.c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_watch(w.c, "/other/", true, 0, rec_cb, &w, NULL, 3.0, NULL, &err), ETCD_E_AUTH);
	assert_no_secret(&err, pw);
	etcd_client_free(w.c);
	etcd_client_free(c);
	etcd_client_free(bad);
}
END_TEST

START_TEST(test_real_tls)
{
	char dir[400], path[700], other_ca[700], ca[700], cert[700], key[700];
	struct etcd_proc p;
	const char *eps[1];
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .connect_timeout = 1, .request_timeout = 2 };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;
	char http_url[sizeof(p.url)];

	ck_assert_msg(g_base[0] != '\0', "no temporary directory");
	snprintf(dir, sizeof(dir), "%s/tls-%d", g_base, (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_msg(etcd_proc_make_certs(dir), "openssl failed");
	memset(&p, 0, sizeof(p));
	snprintf(p.tls_dir, sizeof(p.tls_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/etcd", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_msg(etcd_proc_start(&p, path), "etcd with TLS did not start");
	ck_assert_msg(strncmp(p.url, "https://", 8) == 0, "%s", p.url);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(other_ca, sizeof(other_ca), "%s/other-ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/client.pem", dir);
	snprintf(key, sizeof(key), "%s/client-key.pem", dir);
	eps[0] = p.url;

	/* CA, client certificate and key: it works. */
	cfg.cacert = ca;
	cfg.cert = cert;
	cfg.key = key;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_msg(etcd_put(c, "/t/k", "v", 0, NULL, &err) == ETCD_OK, "%s", err.message);
	ck_assert_int_eq(etcd_get(c, "/t/k", &r, &err), ETCD_OK);
	ck_assert_uint_eq(r.n_kvs, 1);
	etcd_range_result_free(&r);
	etcd_client_free(c);

	/* The wrong CA: the server is not trusted, and the message says by which file. */
	cfg.cacert = other_ca;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "/t/k", &r, &err), ETCD_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.message, "TLS: server certificate not trusted by CA") != NULL &&
	                      strstr(err.message, other_ca) != NULL && strstr(err.message, p.url),
	              "%s", err.message);
	etcd_client_free(c);

	/* No client certificate: etcd (--client-cert-auth) refuses the handshake. */
	cfg.cacert = ca;
	cfg.cert = cfg.key = NULL;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "/t/k", &r, &err), ETCD_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.message, "TLS") != NULL && strstr(err.message, p.url) &&
	                      strstr(err.message, "no client certificate is configured"),
	              "%s", err.message);
	etcd_client_free(c);

	/* A key that does not belong to the certificate. */
	cfg.cert = cert;
	snprintf(path, sizeof(path), "%s/server-key.pem", dir);
	cfg.key = path;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_get(c, "/t/k", &r, &err), ETCD_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.message, "TLS: cannot use client certificate") != NULL &&
	                      strstr(err.message, cert) != NULL && strstr(err.message, path),
	              "%s", err.message);
	etcd_client_free(c);

	/* Plain http to the TLS port: etcd's 400 says why. */
	snprintf(http_url, sizeof(http_url), "http://127.0.0.1:%d", p.client_port);
	c = client1(http_url);
	ck_assert_int_ne(etcd_get(c, "/t/k", &r, &err), ETCD_OK);
	ck_assert_msg(strstr(err.message, http_url) != NULL, "%s", err.message);
	etcd_client_free(c);
	etcd_proc_stop(&p, SIGKILL);
}
END_TEST

START_TEST(test_real_cluster_member_down)
{
	char dir[600];
	struct etcd_proc m[3];
	const char *eps[1];
	struct etcd_config cfg = { .endpoints = eps,
		                   .n_endpoints = 1,
		                   .connect_timeout = 0.5,
		                   .request_timeout = 2,
		                   .discover_members = true };
	struct etcd_client *c = NULL;
	struct etcd_range_result r;
	struct etcd_error err;
	char **urls = NULL;
	size_t n = 0, i;
	int64_t t0;

	ck_assert_msg(g_base[0] != '\0', "no temporary directory");
	snprintf(dir, sizeof(dir), "%s/cluster-%d", g_base, (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	memset(m, 0, sizeof(m));
	ck_assert_msg(etcd_proc_start_cluster(m, 3, dir), "the cluster did not start");
	eps[0] = m[0].url;
	ck_assert_int_eq(etcd_client_new(&cfg, &c, &err), ETCD_OK);
	ck_assert_int_eq(etcd_member_list(c, &urls, &n, &err), ETCD_OK);
	ck_assert_uint_eq(n, 3);
	etcd_member_list_free(urls, n);
	/* Discovery found the other two members, behind the configured one. */
	ck_assert_uint_eq(etcd_client_n_endpoints(c), 3);
	ck_assert_str_eq(etcd_client_endpoint_at(c, 0), m[0].url);
	for (i = 1; i < 3; i++)
		ck_assert(strcmp(etcd_client_endpoint_at(c, 1), m[i].url) == 0 ||
		          strcmp(etcd_client_endpoint_at(c, 2), m[i].url) == 0);
	ck_assert_int_eq(etcd_put(c, "/c/k", "1", 0, NULL, &err), ETCD_OK);
	ck_assert_str_eq(etcd_client_endpoint(c), m[0].url);

	/* Kill the member in use: the next request moves on (the refused
	 * connect costs nothing; if m0 led, the write waits for the election
	 * on the next member, bounded by one request timeout)... */
	etcd_proc_stop(&m[0], SIGKILL);
	t0 = now_ms();
	ck_assert_msg(etcd_put(c, "/c/k", "2", 0, NULL, &err) == ETCD_OK, "%s", err.message);
	ck_assert_int_lt(now_ms() - t0, 2000 + 1500);
	ck_assert_str_ne(etcd_client_endpoint(c), m[0].url);
	/* ...and stays on the live member. */
	for (i = 0; i < 5; i++) {
		t0 = now_ms();
		ck_assert_int_eq(etcd_get(c, "/c/k", &r, &err), ETCD_OK);
		ck_assert_uint_eq(r.n_kvs, 1);
		ck_assert_str_eq(r.kvs[0].value, "2");
		etcd_range_result_free(&r);
		ck_assert_int_lt(now_ms() - t0, 300);
	}
	etcd_client_free(c);
	for (i = 0; i < 3; i++)
		etcd_proc_stop(&m[i], SIGKILL);
}
END_TEST

/* ---- main --------------------------------------------------------------- */

static Suite *unit_suite(void)
{
	Suite *s = suite_create("etcd-unit");
	TCase *tc = tcase_create("fake-server");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_range_parse);
	tcase_add_test(tc, test_prefix_ends);
	tcase_add_test(tc, test_put_delete_requests);
	tcase_add_test(tc, test_txn_lost_without_succeeded);
	tcase_add_test(tc, test_txn_value_compare_and_bad_shape);
	tcase_add_test(tc, test_lease_answers);
	tcase_add_loop_test(tc, test_malformed_answers, 0, (int)(sizeof(bad_answers) / sizeof(bad_answers[0])));
	tcase_add_test(tc, test_http_errors);
	tcase_add_test(tc, test_huge_body);
	tcase_add_test(tc, test_timeout_and_failover);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_cancel_blocked_request);
	tcase_add_test(tc, test_auth_token_refresh);
	tcase_add_test(tc, test_client_config);
	tcase_add_test(tc, test_watch_split_chunks_resume_compacted);
	tcase_add_test(tc, test_watch_prefix_stop_and_garbage);
	tcase_add_test(tc, test_watch_gives_up_after_max_reconnect);
	tcase_add_test(tc, test_member_list);
	tcase_add_test(tc, test_dead_member_costs_one_connect_timeout);
	tcase_add_test(tc, test_slow_trickle_bounded);
	tcase_add_test(tc, test_tls_setup_errors);
	tcase_add_test(tc, test_watch_idle_reconnects);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *integration_suite(void)
{
	Suite *s = suite_create("etcd-integration");
	TCase *tc = tcase_create("real-etcd");

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, integration_tcase_setup, integration_tcase_teardown);
	tcase_set_tags(tc, "etcd");
	tcase_add_checked_fixture(tc, etcd_setup, etcd_teardown);
	tcase_add_test(tc, test_real_kv);
	tcase_add_test(tc, test_real_txn_election);
	tcase_add_test(tc, test_real_lease);
	tcase_add_test(tc, test_real_lease_expiry_seen_by_watch);
	tcase_add_test(tc, test_real_endpoint_down);
	tcase_add_test(tc, test_real_watch_survives_restart);
	tcase_add_test(tc, test_real_cancel_ends_watch);
	tcase_add_test(tc, test_real_auth);
	tcase_add_test(tc, test_real_compacted_watch);
	tcase_add_test(tc, test_real_auth_prefix_role);
	suite_add_tcase(s, tc);
	/* Tests that start their own etcd(s). */
	tc = tcase_create("real-etcd-own");
	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, integration_tcase_setup, integration_tcase_teardown);
	tcase_set_tags(tc, "etcd");
	tcase_add_test(tc, test_real_tls);
	tcase_add_test(tc, test_real_cluster_member_down);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return etcd_fixture_run(unit_suite(), integration_suite());
}
