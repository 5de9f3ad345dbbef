/*
 * etcd_fixture.c - the shared etcd of a Check program (see etcd_fixture.h).
 *
 * The fixture's state is file-static: Check calls an unchecked fixture
 * without arguments, and a program has one shared etcd at most.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* program_invocation_short_name */
#endif
#include "tests/etcd_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tests/etcd_proc.h"
#include "tests/skip.h"

static char g_dir[256];
static struct etcd_proc g_etcd;
static bool g_etcd_up;

void etcd_fixture_up(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/%s.XXXXXX", program_invocation_short_name);
	if (!mkdtemp(g_dir)) {
		g_dir[0] = '\0';
		return;
	}
	memset(&g_etcd, 0, sizeof(g_etcd));
	g_etcd_up = etcd_proc_start(&g_etcd, g_dir);
}

void etcd_fixture_down(void)
{
	if (g_etcd_up)
		etcd_proc_stop(&g_etcd, SIGKILL);
	g_etcd_up = false;
	if (g_dir[0])
		etcd_proc_rmtree(g_dir);
}

const char *etcd_fixture_url(void)
{
	ck_assert_msg(g_etcd_up, "etcd did not start (see %s)", g_dir);
	return g_etcd.url;
}

void etcd_fixture_put(struct etcd_client *c, const char *key, const char *value)
{
	struct etcd_error err;

	ck_assert_msg(etcd_put(c, key, value, 0, NULL, &err) == ETCD_OK, "put %s: %s", key, err.message);
}

char *etcd_fixture_snapshot(struct etcd_client *c, const char *prefix)
{
	struct etcd_range_result r = { 0 };
	struct etcd_error err;
	size_t len = 1, used = 0;
	char *s;

	ck_assert_int_eq(etcd_get_prefix(c, prefix, &r, &err), ETCD_OK);
	for (size_t i = 0; i < r.n_kvs; i++)
		len += strlen(r.kvs[i].key) + r.kvs[i].value_len + 40;
	s = malloc(len);
	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (size_t i = 0; i < r.n_kvs; i++) {
		int n = snprintf(s + used, len - used, "%s=%s@%lld\n", r.kvs[i].key, r.kvs[i].value,
		                 (long long)r.kvs[i].mod_revision);

		ck_assert(n > 0 && (size_t)n < len - used);
		used += (size_t)n;
	}
	etcd_range_result_free(&r);
	return s;
}

char *etcd_fixture_get(struct etcd_client *c, const char *key)
{
	struct etcd_range_result r = { 0 };
	struct etcd_error err;
	char *v = NULL;

	ck_assert_int_eq(etcd_get(c, key, &r, &err), ETCD_OK);
	if (r.n_kvs == 1) {
		v = strdup(r.kvs[0].value);
		ck_assert_ptr_nonnull(v);
	}
	etcd_range_result_free(&r);
	return v;
}

int etcd_fixture_run(Suite *s, Suite *more)
{
	SRunner *sr;
	bool have = skip_have(program_invocation_short_name, "etcd", etcd_proc_bin(),
	                      "install etcd-server, or point $ETCD_BIN at etcd");
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 2;
	sr = srunner_create(s);
	if (more)
		srunner_add_suite(sr, more);
	rc = skip_run(sr, "etcd", have);
	curl_global_cleanup();
	return rc;
}
