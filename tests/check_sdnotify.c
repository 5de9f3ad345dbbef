/*
 * check_sdnotify.c - unit tests of agent/sdnotify.c.
 *
 * Each test plays systemd's part: it binds an AF_UNIX datagram socket (a
 * file in a mkdtemp() directory, or an abstract name), points
 * NOTIFY_SOCKET at it, calls the module and reads back the datagram the
 * call sent, comparing it byte for byte. The watchdog tests set
 * WATCHDOG_USEC/WATCHDOG_PID the way systemd does and check the interval,
 * including the "variables inherited from another process" case.
 *
 * The same source is built twice when configure found libsystemd:
 * tests/check_sdnotify uses libagent.a (sd_notify), and
 * tests/check_sdnotify_builtin compiles agent/sdnotify.c with
 * SDNOTIFY_BUILTIN (the fallback sender); without libsystemd the first one
 * already tests the fallback. Both must behave the same.
 */
#include "agent/sdnotify.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char g_dir[64];
static char g_path[128];
static int g_fd = -1;

/* Binds a datagram socket at g_dir/notify and points NOTIFY_SOCKET at it. */
static void setup_path(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(g_dir, sizeof(g_dir), "/tmp/check_sdnotify_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	ck_assert_int_lt(snprintf(g_path, sizeof(g_path), "%s/notify", g_dir), (int)sizeof(g_path));
	memcpy(sa.sun_path, g_path, strlen(g_path) + 1);
	g_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(g_fd, 0);
	ck_assert_int_eq(bind(g_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", g_path, 1), 0);
}

static void teardown_path(void)
{
	if (g_fd >= 0)
		close(g_fd);
	g_fd = -1;
	unlink(g_path);
	rmdir(g_dir);
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram on g_fd (NUL-terminated into buf), waiting at most 2 s;
 * its length, or -1 when none came. */
static ssize_t receive(char *buf, size_t len)
{
	struct pollfd p = { .fd = g_fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, 2000) != 1)
		return -1;
	n = recv(g_fd, buf, len - 1, MSG_DONTWAIT);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* Asserts that the next datagram is exactly want. */
static void expect(const char *want)
{
	char buf[4096];
	ssize_t n = receive(buf, sizeof(buf));

	ck_assert_msg(n >= 0, "no datagram arrived (expected \"%s\")", want);
	ck_assert_int_eq((int)n, (int)strlen(want));
	ck_assert_str_eq(buf, want);
}

static void expect_nothing(void)
{
	struct pollfd p = { .fd = g_fd, .events = POLLIN };

	ck_assert_int_eq(poll(&p, 1, 100), 0);
}

START_TEST(test_messages_to_a_path)
{
	ck_assert_int_gt(sdnotify_ready(), 0);
	expect("READY=1");
	ck_assert_int_gt(sdnotify_status("leader, %d replicas streaming", 2), 0);
	expect("STATUS=leader, 2 replicas streaming");
	ck_assert_int_gt(sdnotify_watchdog(), 0);
	expect("WATCHDOG=1");
	ck_assert_int_gt(sdnotify_stopping(), 0);
	expect("STOPPING=1");
	expect_nothing();
}
END_TEST

START_TEST(test_status_is_one_bounded_line)
{
	char long_text[3000], want[8 + 1024];

	/* a newline would start another assignment: it becomes a space */
	ck_assert_int_gt(sdnotify_status("demoting\nREADY=1\r%s", "done"), 0);
	expect("STATUS=demoting READY=1 done");

	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	ck_assert_int_gt(sdnotify_status("%s", long_text), 0);
	memcpy(want, "STATUS=", 7);
	memset(want + 7, 'x', 1024);
	want[7 + 1024] = '\0';
	expect(want);

	ck_assert_int_gt(sdnotify_status("%s", ""), 0);
	expect("STATUS=");
}
END_TEST

START_TEST(test_abstract_socket)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64], env[80];
	int n = snprintf(name, sizeof(name), "baton-check-sdnotify-%ld-%ld", (long)getpid(), random());

	/* an abstract name: a leading NUL, the length ends it; "@name" in the env */
	memcpy(sa.sun_path + 1, name, (size_t)n);
	g_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(g_fd, 0);
	ck_assert_int_eq(bind(g_fd, (struct sockaddr *)&sa,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)),
	                 0);
	snprintf(env, sizeof(env), "@%s", name);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", env, 1), 0);

	ck_assert_int_gt(sdnotify_ready(), 0);
	expect("READY=1");
	ck_assert_int_gt(sdnotify_watchdog(), 0);
	expect("WATCHDOG=1");

	/* a different abstract name is another socket: nobody listens there */
	snprintf(env, sizeof(env), "@%s-other", name);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", env, 1), 0);
	ck_assert_int_lt(sdnotify_ready(), 0);
	expect_nothing();
	close(g_fd);
	g_fd = -1;
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_no_socket_is_a_no_op)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(sdnotify_ready(), 0);
	ck_assert_int_eq(sdnotify_status("x"), 0);
	ck_assert_int_eq(sdnotify_watchdog(), 0);
	ck_assert_int_eq(sdnotify_stopping(), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "", 1), 0);
	ck_assert_int_eq(sdnotify_ready(), 0);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_bad_socket_is_an_error)
{
	/* neither absolute nor abstract */
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
	ck_assert_int_eq(sdnotify_ready(), -EINVAL);
	/* an absolute path where nobody listens */
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "/nonexistent/baton/notify", 1), 0);
	ck_assert_int_lt(sdnotify_ready(), 0);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_watchdog_interval)
{
	char pid[32];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);

	ck_assert_int_eq(setenv("WATCHDOG_USEC", "30000000", 1), 0);
	ck_assert_double_eq_tol(sdnotify_watchdog_interval(), 30.0, 1e-9);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "1500", 1), 0);
	ck_assert_double_eq_tol(sdnotify_watchdog_interval(), 0.0015, 1e-12);

	/* meant for this process */
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	ck_assert_double_eq_tol(sdnotify_watchdog_interval(), 0.0015, 1e-12);
	/* inherited from another process (our parent): not ours to ping */
	snprintf(pid, sizeof(pid), "%ld", (long)getppid());
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	ck_assert_int_eq(setenv("WATCHDOG_PID", "not-a-pid", 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	unsetenv("WATCHDOG_PID");

	/* zero, garbage, negative: no watchdog */
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "0", 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "30s", 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "-5", 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "", 1), 0);
	ck_assert_double_eq(sdnotify_watchdog_interval(), 0);
	unsetenv("WATCHDOG_USEC");
}
END_TEST

static Suite *sdnotify_suite(void)
{
	Suite *s = suite_create("sdnotify");
	TCase *tc = tcase_create("path");

	tcase_add_checked_fixture(tc, setup_path, teardown_path);
	tcase_add_test(tc, test_messages_to_a_path);
	tcase_add_test(tc, test_status_is_one_bounded_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("other");
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_no_socket_is_a_no_op);
	tcase_add_test(tc, test_bad_socket_is_an_error);
	tcase_add_test(tc, test_watchdog_interval);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sdnotify_suite());
	int failed;

	srandom((unsigned)getpid());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
