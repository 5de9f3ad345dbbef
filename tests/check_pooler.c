/*
 * check_pooler.c - unit tests of agent/pooler.c: the pause/resume state
 * machine against a fake admin console (the io seam), the classification
 * of PgBouncer 1.18's error messages, and the libpq seam against a port
 * where nothing listens. The real console is exercised by
 * tests/integration/47_pgbouncer_switchover.sh.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/pooler.h"

/* The fake console: per pooler (by conninfo), what PAUSE and RESUME answer,
 * and a log of every command as "conninfo:SQL". */
struct fake {
	struct {
		const char *conninfo;
		enum pooler_result pause, resume;
		bool paused; /* the pooler's own state, as PgBouncer keeps it */
	} p[4];
	size_t n;
	char calls[32][96];
	size_t n_calls;
	double last_timeout[32];
};

static enum pooler_result fake_exec(void *arg, const char *conninfo, const char *sql, double timeout, char *msg,
                                    size_t len)
{
	struct fake *f = arg;

	ck_assert_uint_lt(f->n_calls, 32);
	snprintf(f->calls[f->n_calls], sizeof(f->calls[0]), "%s:%s", conninfo, sql);
	f->last_timeout[f->n_calls++] = timeout;
	for (size_t i = 0; i < f->n; i++) {
		enum pooler_result r;

		if (strcmp(f->p[i].conninfo, conninfo) != 0)
			continue;
		if (strcmp(sql, "PAUSE") == 0) {
			r = f->p[i].paused ? POOLER_ALREADY_PAUSED : f->p[i].pause;
			/* A PAUSE that times out is still in force (PgBouncer). */
			if (r == POOLER_OK || r == POOLER_TIMEOUT)
				f->p[i].paused = true;
		} else if (strcmp(sql, "RESUME") == 0) {
			r = !f->p[i].paused ? POOLER_NOT_PAUSED : f->p[i].resume;
			if (r == POOLER_OK)
				f->p[i].paused = false;
		} else {
			ck_abort_msg("unexpected console command %s", sql);
			return POOLER_FAILED;
		}
		if (r != POOLER_OK)
			snprintf(msg, len, "fake error %d", (int)r);
		return r;
	}
	snprintf(msg, len, "connect: connection refused");
	return POOLER_FAILED;
}

static char *conninfos[] = { "host=a port=6432", "host=b port=6433", "host=c port=6434" };

static void fake_init(struct fake *f, size_t n)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f->p[i].conninfo = conninfos[i];
		f->p[i].pause = POOLER_OK;
		f->p[i].resume = POOLER_OK;
	}
	f->n = n;
}

START_TEST(test_pause_resume_all)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 2);
	pooler_set_init(&s, conninfos, 2, &io);
	ck_assert_str_eq(s.p[0].name, "a:6432");
	ck_assert_str_eq(s.p[1].name, "b:6433");
	ck_assert_uint_eq(pooler_pause_all(&s, 3.5), 2);
	ck_assert_uint_eq(f.n_calls, 2);
	ck_assert_str_eq(f.calls[0], "host=a port=6432:PAUSE");
	ck_assert_str_eq(f.calls[1], "host=b port=6433:PAUSE");
	ck_assert(f.last_timeout[0] == 3.5); /* PAUSE gets the pause timeout */
	ck_assert(f.p[0].paused && f.p[1].paused);
	ck_assert_uint_eq(pooler_paused_count(&s), 2);
	ck_assert(s.paused_at > 0);
	/* Pausing again sends nothing: they are ours already. */
	ck_assert_uint_eq(pooler_pause_all(&s, 3.5), 2);
	ck_assert_uint_eq(f.n_calls, 2);

	ck_assert(pooler_resume_all(&s, "test"));
	ck_assert_uint_eq(f.n_calls, 4);
	ck_assert_str_eq(f.calls[2], "host=a port=6432:RESUME");
	ck_assert_str_eq(f.calls[3], "host=b port=6433:RESUME");
	ck_assert(f.last_timeout[2] == POOLER_CONSOLE_TIMEOUT);
	ck_assert(!f.p[0].paused && !f.p[1].paused);
	ck_assert_uint_eq(pooler_paused_count(&s), 0);
	ck_assert(s.paused_at == 0);
	/* Nothing left to resume: no command. */
	ck_assert(pooler_resume_all(&s, "test"));
	ck_assert_uint_eq(f.n_calls, 4);
}
END_TEST

START_TEST(test_pause_timeout_is_undone)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 3);
	f.p[1].pause = POOLER_TIMEOUT; /* a long transaction holds b */
	pooler_set_init(&s, conninfos, 3, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 2);
	/* b's PAUSE was undone at once, the others stay paused */
	ck_assert_uint_eq(f.n_calls, 4);
	ck_assert_str_eq(f.calls[1], "host=b port=6433:PAUSE");
	ck_assert_str_eq(f.calls[2], "host=b port=6433:RESUME");
	ck_assert_str_eq(f.calls[3], "host=c port=6434:PAUSE");
	ck_assert(f.p[0].paused && !f.p[1].paused && f.p[2].paused);
	ck_assert(s.p[0].paused && !s.p[1].paused && s.p[2].paused);
	ck_assert(pooler_resume_all(&s, "test"));
	ck_assert_uint_eq(f.n_calls, 6); /* a and c only */
	ck_assert(!f.p[0].paused && !f.p[1].paused && !f.p[2].paused);
}
END_TEST

START_TEST(test_pause_failure_and_unreachable)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;
	char *list[] = { "host=a port=6432", "host=gone port=1" };

	fake_init(&f, 1);
	f.p[0].pause = POOLER_FAILED;
	pooler_set_init(&s, list, 2, &io);
	/* a: not paused; gone: unknown, so counted (and kept) as paused */
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 1);
	/* each: PAUSE, then RESUME to undo whatever half happened; the
	 * unreachable one's RESUME fails too, so it stays marked for a retry */
	ck_assert_uint_eq(f.n_calls, 4);
	ck_assert_str_eq(f.calls[1], "host=a port=6432:RESUME");
	ck_assert_str_eq(f.calls[3], "host=gone port=1:RESUME");
	ck_assert(!s.p[0].paused);
	ck_assert(s.p[1].paused);
	ck_assert(!pooler_resume_all(&s, "test")); /* still unreachable */
	ck_assert(s.p[1].paused);
}
END_TEST

START_TEST(test_already_paused_counts_as_ours)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 2);
	f.p[0].paused = true; /* left paused (by hand, or a dead agent) */
	pooler_set_init(&s, conninfos, 2, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 2);
	ck_assert_uint_eq(f.n_calls, 2);
	ck_assert(s.p[0].paused);
	ck_assert(pooler_resume_all(&s, "test"));
	ck_assert(!f.p[0].paused && !f.p[1].paused);
}
END_TEST

START_TEST(test_resume_failure_kept)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 2);
	f.p[0].resume = POOLER_FAILED;
	pooler_set_init(&s, conninfos, 2, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 2);
	ck_assert(!pooler_resume_all(&s, "test"));
	ck_assert(s.p[0].paused && !s.p[1].paused);
	ck_assert(s.paused_at > 0); /* not all resumed: the pause's age stays */
	f.p[0].resume = POOLER_OK;
	ck_assert(pooler_resume_all(&s, "again"));
	ck_assert_uint_eq(pooler_paused_count(&s), 0);
	ck_assert(!f.p[0].paused);
}
END_TEST

START_TEST(test_resume_not_paused_is_done)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 1);
	pooler_set_init(&s, conninfos, 1, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 1);
	f.p[0].paused = false; /* someone resumed it meanwhile (the new leader's sweep) */
	ck_assert(pooler_resume_all(&s, "test"));
	ck_assert(!s.p[0].paused);
}
END_TEST

START_TEST(test_sweep_resumes_every_pooler)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 3);
	f.p[1].paused = true; /* a pause left behind */
	pooler_set_init(&s, conninfos, 3, &io);
	ck_assert(pooler_resume_any(&s, "sweep"));
	ck_assert_uint_eq(f.n_calls, 3);
	ck_assert(!f.p[0].paused && !f.p[1].paused && !f.p[2].paused);
	/* an unreachable one is reported (false), the others still done */
	{
		char *list[] = { "host=a port=6432", "host=gone port=1" };

		f.p[0].paused = true;
		pooler_set_init(&s, list, 2, &io);
		ck_assert(!pooler_resume_any(&s, "sweep"));
		ck_assert(!f.p[0].paused);
	}
}
END_TEST

/* A RESUME that fails is tried again on every call until it succeeds;
 * past pooler_resume_timeout nothing waits for the primary any more, and
 * a failure does not drop the pooler (it stayed paused before). */
START_TEST(test_resume_retried_until_it_succeeds)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;
	double t0;

	fake_init(&f, 2);
	f.p[1].resume = POOLER_FAILED;
	pooler_set_init(&s, conninfos, 2, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 2);
	t0 = s.paused_at;
	f.n_calls = 0;
	/* not ready, within the timeout: nothing is tried */
	ck_assert(!pooler_resume_due(&s, false, "x takes writes", t0 + 1.0, 10.0, "pooler_target does not answer"));
	ck_assert_uint_eq(f.n_calls, 0);
	/* past the timeout: both resumed, the failing one stays ours */
	ck_assert(!pooler_resume_due(&s, false, "x takes writes", t0 + 11.0, 10.0, "pooler_target does not answer"));
	ck_assert(s.overdue);
	ck_assert_uint_eq(f.n_calls, 2);
	ck_assert_uint_eq(pooler_paused_count(&s), 1);
	ck_assert(s.p[1].paused && s.p[1].fails == 1);
	/* every later call retries only it */
	for (int i = 0; i < 5; i++)
		ck_assert(!pooler_resume_due(&s, false, "x takes writes", t0 + 12.0 + i, 10.0, "-"));
	ck_assert_uint_eq(f.n_calls, 7);
	ck_assert_str_eq(f.calls[6], "host=b port=6433:RESUME");
	ck_assert_uint_eq(s.p[1].fails, 6);
	f.p[1].resume = POOLER_OK;
	ck_assert(pooler_resume_due(&s, false, "x takes writes", t0 + 20.0, 10.0, "-"));
	ck_assert_uint_eq(pooler_paused_count(&s), 0);
	ck_assert(!f.p[1].paused);
	ck_assert_uint_eq(s.p[1].fails, 0);
	/* ready before the timeout resumes at once */
	fake_init(&f, 1);
	pooler_set_init(&s, conninfos, 1, &io);
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 1);
	ck_assert(pooler_resume_due(&s, true, "x takes writes", s.paused_at, 10.0, "-"));
	ck_assert(!f.p[0].paused && !s.overdue);
}
END_TEST

/* The new leader's sweep, called again, retries only the poolers it has
 * not reached yet, and says done once it reached them all. */
START_TEST(test_sweep_retried_until_every_pooler_reached)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;

	fake_init(&f, 3);
	f.p[0].paused = true;
	f.p[2].paused = true;
	f.p[2].resume = POOLER_FAILED; /* its console refuses for now */
	pooler_set_init(&s, conninfos, 3, &io);
	ck_assert(!pooler_resume_any(&s, "sweep"));
	ck_assert_uint_eq(f.n_calls, 3);
	ck_assert(!f.p[0].paused && f.p[2].paused);
	ck_assert(!pooler_resume_any(&s, "sweep"));
	ck_assert_uint_eq(f.n_calls, 4);
	ck_assert_str_eq(f.calls[3], "host=c port=6434:RESUME");
	f.p[2].resume = POOLER_OK;
	ck_assert(pooler_resume_any(&s, "sweep"));
	ck_assert_uint_eq(f.n_calls, 5);
	ck_assert(!f.p[2].paused);
	/* done: nothing more to ask */
	ck_assert(pooler_resume_any(&s, "sweep"));
	ck_assert_uint_eq(f.n_calls, 5);
}
END_TEST

START_TEST(test_too_many_poolers)
{
	struct fake f;
	struct pooler_io io = { .exec = fake_exec, .arg = &f };
	struct pooler_set s;
	char *list[POOLER_MAX + 2];

	for (size_t i = 0; i < POOLER_MAX + 2; i++)
		list[i] = conninfos[0];
	fake_init(&f, 1);
	pooler_set_init(&s, list, POOLER_MAX + 2, &io);
	ck_assert_uint_eq(s.n, POOLER_MAX);
}
END_TEST

START_TEST(test_classify)
{
	/* PgBouncer 1.18's answers, as pg_query_exec reports them */
	ck_assert_int_eq(pooler_classify_error("query: ERROR:  already suspended/paused (SQLSTATE 08P01)"),
	                 POOLER_ALREADY_PAUSED);
	ck_assert_int_eq(pooler_classify_error("query: ERROR:  pooler is not paused/suspended (SQLSTATE 08P01)"),
	                 POOLER_NOT_PAUSED);
	ck_assert_int_eq(pooler_classify_error("query: no answer within 5.00 s (statement cancelled)"), POOLER_TIMEOUT);
	ck_assert_int_eq(pooler_classify_error("connect: no answer from the server within the timeout"),
	                 POOLER_TIMEOUT);
	ck_assert_int_eq(pooler_classify_error("connect: connection to server at \"127.0.0.1\", port 1 failed: "
	                                       "Connection refused"),
	                 POOLER_FAILED);
	ck_assert_int_eq(pooler_classify_error("query: ERROR:  admin access needed (SQLSTATE 08P01)"), POOLER_FAILED);
}
END_TEST

/* The libpq seam against a port where nothing listens: a quick, named
 * failure, and the set survives it. */
START_TEST(test_libpq_refused)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char ci[128], *list[1] = { ci };
	struct pooler_set s;
	double t0;

	/* a port that was free a moment ago and is closed now */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=pgbouncer", ntohs(a.sin_port));
	pooler_set_init(&s, list, 1, NULL);
	t0 = clk_mono();
	ck_assert_uint_eq(pooler_pause_all(&s, 1.0), 1); /* unknown state: kept for the resume */
	ck_assert(!pooler_resume_all(&s, "test"));
	ck_assert(clk_mono() - t0 < 2 * POOLER_CONSOLE_TIMEOUT + 1.0);
}
END_TEST

static Suite *pooler_suite(void)
{
	Suite *su = suite_create("pooler");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_pause_resume_all);
	tcase_add_test(tc, test_pause_timeout_is_undone);
	tcase_add_test(tc, test_pause_failure_and_unreachable);
	tcase_add_test(tc, test_already_paused_counts_as_ours);
	tcase_add_test(tc, test_resume_failure_kept);
	tcase_add_test(tc, test_resume_not_paused_is_done);
	tcase_add_test(tc, test_sweep_resumes_every_pooler);
	tcase_add_test(tc, test_resume_retried_until_it_succeeds);
	tcase_add_test(tc, test_sweep_retried_until_every_pooler_reached);
	tcase_add_test(tc, test_too_many_poolers);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_libpq_refused);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(pooler_suite());
	int failed;

	log_set_level(LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
