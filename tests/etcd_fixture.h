/*
 * etcd_fixture.h - one real etcd shared by all the tests of a Check program,
 * and the assertions those tests make on it.
 *
 * etcd_fixture_up/down are a Check unchecked fixture (run once per test
 * case, in the runner's process): a fresh directory /tmp/<program>.XXXXXX
 * with an etcd (tests/etcd_proc.c) in it, removed afterwards. The helpers on
 * a client fail the running test (ck_assert) instead of returning errors.
 */
#ifndef BATON_TESTS_ETCD_FIXTURE_H
#define BATON_TESTS_ETCD_FIXTURE_H

#include <check.h>

#include "etcd/etcd.h"

void etcd_fixture_up(void);
void etcd_fixture_down(void);

/* The shared etcd's client URL; fails the test (naming the directory that
 * holds etcd's log) when etcd did not start. */
const char *etcd_fixture_url(void);

/* etcd_put without a lease; fails the test on any error. */
void etcd_fixture_put(struct etcd_client *c, const char *key, const char *value);

/* Every key under prefix as "key=value@mod_revision\n" lines (malloc'd):
 * equal snapshots mean nothing under prefix was written in between. */
char *etcd_fixture_snapshot(struct etcd_client *c, const char *prefix);

/* The value of key (malloc'd), NULL when absent. */
char *etcd_fixture_get(struct etcd_client *c, const char *key);

/* A test program's main: runs s (and more, when not NULL) with libcurl
 * initialised; EXIT_SUCCESS when no test failed, 2 when libcurl cannot be
 * initialised. Without the etcd binary (etcd_proc_bin) the test cases
 * tagged "etcd" are left out and, when the others pass, it returns 77
 * (SKIP; see tests/skip.h): tag every test case that uses this fixture or
 * starts etcd itself. */
int etcd_fixture_run(Suite *s, Suite *more);

#endif
