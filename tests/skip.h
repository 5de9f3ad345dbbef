/*
 * skip.h - lets a Check program run on a machine without etcd or Postgres.
 *
 * The tests that start a real etcd or a real Postgres (or need its binaries)
 * sit in test cases tagged "etcd" or "postgres" (tcase_set_tags). A
 * program's main asks skip_have() whether the binary is there; when it is
 * not, skip_run() runs every other test case and, if none of those failed,
 * exits 77, which automake's test harness counts as SKIP: `make check` on a
 * bare machine then passes what it can run and says what it left out,
 * instead of failing on tests that could not start.
 *
 * Header-only (static inline) so that a test program needs no extra source
 * in tests/local.mk.
 */
#ifndef BATON_TESTS_SKIP_H
#define BATON_TESTS_SKIP_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The exit status automake's harness reports as SKIP. */
#define SKIP_EXIT 77

/* true when path is an executable regular file. Otherwise prints, once,
 * "<program>: SKIP the <tag> tests: <path> is not an executable file (<hint>)"
 * on stderr and returns false. */
static inline bool skip_have(const char *program, const char *tag, const char *path, const char *hint)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
		return true;
	fprintf(stderr, "%s: SKIP the %s tests: %s is not an executable file (%s)\n", program, tag, path, hint);
	return false;
}

/* Runs sr (CK_NORMAL) and frees it: everything when have, else every test
 * case not tagged tag. EXIT_FAILURE when a test failed, else SKIP_EXIT
 * when tests were left out, else EXIT_SUCCESS. */
static inline int skip_run(SRunner *sr, const char *tag, bool have)
{
	int failed;

	if (have)
		srunner_run_all(sr, CK_NORMAL);
	else
		srunner_run_tagged(sr, NULL, NULL, NULL, tag, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed)
		return EXIT_FAILURE;
	return have ? EXIT_SUCCESS : SKIP_EXIT;
}

#endif
