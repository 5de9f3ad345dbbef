/*
 * check_callbacks.c - unit tests of agent/callbacks.c with real scripts.
 *
 * Each test writes small /bin/sh scripts into a temporary directory, runs
 * them through a cb_runner, and drives it the way the loop does: cb_poll
 * in a bounded loop. The agent's log (stderr) is captured into a file so
 * that the logged output, exit statuses and kills can be checked. Every
 * test ends by checking that the test process has no child left (no
 * zombie, nothing unreaped): callbacks reap their own pids and nothing else.
 */
#include "agent/callbacks.h"
#include "agent/log.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXAMPLES TEST_SRCDIR "/deploy/examples/callbacks/"

static char g_dir[64];
static int g_saved_stderr = -1;
static char g_log_path[128];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

/* ---- fixtures: a temp dir and the captured log ---- */

static void setup(void)
{
	int fd;

	snprintf(g_dir, sizeof(g_dir), "/tmp/check_callbacks_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	snprintf(g_log_path, sizeof(g_log_path), "%s/agent.log", g_dir);
	fd = open(g_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	g_saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(g_saved_stderr, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
	log_set_level(LOG_LVL_INFO);
}

static void teardown(void)
{
	char cmd[128];

	fflush(stderr);
	if (g_saved_stderr >= 0) {
		dup2(g_saved_stderr, STDERR_FILENO);
		close(g_saved_stderr);
		g_saved_stderr = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
}

/* The whole file (caller frees), "" if missing. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static char *agent_log(void)
{
	fflush(stderr);
	return slurp(g_log_path);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Bytes of script output in the log: the text of the lines that start with
 * prefix (after the time and level) up to " [file:line]", plus one newline
 * each; the "(output truncated)" notice does not count. */
static size_t output_logged(const char *log, const char *prefix)
{
	size_t total = 0;

	for (const char *line = log; *line != '\0';) {
		const char *end = strchr(line, '\n'), *p, *tail;

		if (end == NULL)
			end = line + strlen(line);
		p = strstr(line, prefix);
		if (p != NULL && p < end && strncmp(p + strlen(prefix), "(output truncated)", 18) != 0) {
			p += strlen(prefix);
			tail = end;
			while (tail > p && strncmp(tail, " [", 2) != 0)
				tail--;
			total += (size_t)(tail - p) + 1;
		}
		line = *end != '\0' ? end + 1 : end;
	}
	return total;
}

/* Writes an executable script NAME in the temp dir; returns its path (static). */
static const char *script(const char *name, const char *body)
{
	static char path[4][128];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, 128, "%s/%s", g_dir, name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s", body);
	fclose(f);
	ck_assert_int_eq(chmod(p, 0755), 0);
	return p;
}

static const char *tmp_path(const char *name)
{
	static char path[4][128];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, 128, "%s/%s", g_dir, name);
	return p;
}

/* Polls like the loop until nothing runs; fails after limit seconds.
 * Returns the longest single cb_poll call, in seconds. */
static double poll_until_idle(struct cb_runner *r, double limit)
{
	double end = now_s() + limit, longest = 0;

	for (;;) {
		double t0 = now_s();
		int n = cb_poll(r);
		double took = now_s() - t0;

		if (took > longest)
			longest = took;
		if (n == 0)
			return longest;
		ck_assert_msg(now_s() < end, "callbacks still running after %.1fs", limit);
		nap(0.01);
	}
}

/* No child of ours is left, zombie or alive. */
static void assert_no_children(void)
{
	int st;

	errno = 0;
	ck_assert_int_eq(waitpid(-1, &st, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}

/* A pid that is not running (gone, or a zombie of some other parent). */
static bool gone(pid_t pid)
{
	char path[64], *stat;
	bool g;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat = slurp(path);
	g = stat[0] == '\0' || strstr(stat, ") Z ") != NULL || strstr(stat, ") X ") != NULL;
	free(stat);
	return g;
}

static bool wait_gone(pid_t pid, double limit)
{
	double end = now_s() + limit;

	while (!gone(pid)) {
		if (now_s() > end)
			return false;
		nap(0.01);
	}
	return true;
}

/* Waits until the file holds a line ending with want (bounded). */
static void wait_content(const char *path, const char *want, double limit)
{
	double end = now_s() + limit;

	for (;;) {
		char *text = slurp(path);
		size_t n = strlen(text), w = strlen(want);
		bool done = n >= w && strcmp(text + n - w, want) == 0;

		free(text);
		if (done)
			return;
		ck_assert_msg(now_s() < end, "%s: no \"%s\" after %.1fs", path, want, limit);
		nap(0.01);
	}
}

/* ---- tests ---- */

/* The script gets ACTION ROLE SCOPE, stdin /dev/null, its own process
 * group, none of the agent's descriptors; stdout and stderr are logged. */
START_TEST(test_args_and_output)
{
	char body[1024];
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	char *out, *log;
	int leak_fd;
	pid_t pid;
	int fpid = 0, fpgid = -1;

	snprintf(body, sizeof(body),
	         "printf '%%s|%%s|%%s|%%s\\n' \"$#\" \"$1\" \"$2\" \"$3\" > %s\n"
	         "echo \"$$ $(cut -d' ' -f5 /proc/$$/stat)\" >> %s\n"
	         "readlink /proc/self/fd/0 >> %s\n"
	         "if [ -e /proc/self/fd/57 ]; then echo leaked >> %s; fi\n"
	         "echo \"hello from $1\"\n"
	         "echo 'to stderr' >&2\n"
	         "printf 'an \\033[31mescape\\r\\n'\n"
	         "printf 'no newline at the end'\n",
	         tmp_path("args"), tmp_path("args"), tmp_path("args"), tmp_path("args"));
	cbs.on_role_change = (char *)script("args.sh", body);
	/* a descriptor without close-on-exec, as a library might leave one */
	leak_fd = open("/dev/zero", O_RDONLY);
	ck_assert_int_ge(leak_fd, 0);
	ck_assert_int_eq(dup2(leak_fd, 57), 57);
	close(leak_fd);

	r = cb_new(&cbs, "main", 10);
	ck_assert_ptr_nonnull(r);
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "primary"));
	pid = cb_running(r, CB_ON_ROLE_CHANGE);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(cb_running(r, CB_ON_START), 0);
	poll_until_idle(r, 5);
	ck_assert_int_eq(cb_running(r, CB_ON_ROLE_CHANGE), 0);
	cb_free(r);
	close(57);

	out = slurp(tmp_path("args"));
	ck_assert_msg(strncmp(out, "4|on_role_change|primary|main\n", 30) != 0, "argc counts $0?");
	ck_assert_msg(strncmp(out, "3|on_role_change|primary|main\n", 30) == 0, "%s", out);
	ck_assert_int_eq(sscanf(out + 30, "%d %d", &fpid, &fpgid), 2);
	ck_assert_int_eq(fpid, pid);
	ck_assert_int_eq(fpgid, pid); /* its own process group */
	ck_assert_ptr_nonnull(strstr(out, "\n/dev/null\n"));
	ck_assert_ptr_null(strstr(out, "leaked"));
	free(out);

	log = agent_log();
	ck_assert_msg(strstr(log, "callback on_role_change: hello from on_role_change [") != NULL, "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change: to stderr ["));
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change: no newline at the end ["));
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change: an ?[31mescape? ["));
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change primary main: exited with status 0"));
	free(log);
	assert_no_children();
}
END_TEST

/* The shipped example log_event.sh, as the operator would configure it. */
START_TEST(test_example_log_event)
{
	struct config_callbacks cbs = { .on_start = (char *)EXAMPLES "log_event.sh",
		                        .on_stop = (char *)EXAMPLES "log_event.sh" };
	struct cb_runner *r;
	regex_t re;
	char *events;

	ck_assert_int_eq(access(EXAMPLES "log_event.sh", X_OK), 0);
	ck_assert_int_eq(setenv("BATON_EVENT_LOG", tmp_path("events"), 1), 0);
	r = cb_new(&cbs, "main", 0);
	ck_assert_ptr_nonnull(r);
	ck_assert(cb_fire(r, CB_ON_START, "replica"));
	poll_until_idle(r, 5);
	ck_assert(cb_fire(r, CB_ON_STOP, "replica"));
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "primary")); /* not configured: nothing */
	poll_until_idle(r, 5);
	cb_free(r);
	unsetenv("BATON_EVENT_LOG");

	events = slurp(tmp_path("events"));
	ck_assert_int_eq(regcomp(&re,
	                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[-+][0-9:]{5} on_start replica main\n"
	                         "[0-9T:+-]{25} on_stop replica main\n$",
	                         REG_EXTENDED),
	                 0);
	ck_assert_msg(regexec(&re, events, 0, NULL, 0) == 0, "events:\n%s", events);
	regfree(&re);
	free(events);
	assert_no_children();
}
END_TEST

/* A script past its timeout is killed, with what it started, and logged. */
START_TEST(test_timeout_kills)
{
	char body[512];
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	double t0, took;
	char *log, *pidtext;
	int sleeper = 0;

	snprintf(body, sizeof(body), "echo started\nsleep 30 &\necho $! > %s\nwait\necho never\n", tmp_path("sleeper"));
	cbs.on_reload = (char *)script("slow.sh", body);
	r = cb_new(&cbs, "main", 0.3);
	ck_assert_ptr_nonnull(r);
	t0 = now_s();
	ck_assert(cb_fire(r, CB_ON_RELOAD, "primary"));
	/* the timeout is enforced by polls: none until the sleeper's pid is known */
	wait_content(tmp_path("sleeper"), "\n", 3);
	poll_until_idle(r, 5);
	took = now_s() - t0;
	ck_assert_msg(took >= 0.3 && took < 3, "took %.2fs", took);
	cb_free(r);

	log = agent_log();
	ck_assert_ptr_nonnull(strstr(log, "callback on_reload: started ["));
	ck_assert_msg(strstr(log, "callback on_reload primary main: still running after the 0.3s "
	                          "timeout, killing it") != NULL,
	              "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "killed by signal 15 (Terminated)"));
	ck_assert_ptr_nonnull(strstr(log, ", timed out ["));
	ck_assert_ptr_null(strstr(log, "never"));
	free(log);

	/* the sleep it started was in its process group: killed too */
	pidtext = slurp(tmp_path("sleeper"));
	ck_assert_int_eq(sscanf(pidtext, "%d", &sleeper), 1);
	free(pidtext);
	ck_assert_msg(wait_gone(sleeper, 2), "sleep %d survived", sleeper);
	assert_no_children();
}
END_TEST

/* A script that ignores SIGTERM is SIGKILLed after the grace, and the loop's
 * poll is not held up meanwhile. */
START_TEST(test_timeout_sigkill)
{
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	double longest;
	char *log;

	cbs.on_start = (char *)script("stubborn.sh", "trap '' TERM\necho ignoring\n"
	                                             "while :; do sleep 0.05; done\n");
	r = cb_new(&cbs, "main", 0.2);
	ck_assert_ptr_nonnull(r);
	ck_assert(cb_fire(r, CB_ON_START, "replica"));
	longest = poll_until_idle(r, 5);
	ck_assert_msg(longest < 0.5, "one cb_poll took %.2fs", longest);
	cb_free(r);
	log = agent_log();
	ck_assert_msg(strstr(log, "callback on_start replica main: killed by signal 9") != NULL, "%s", log);
	free(log);
	assert_no_children();
}
END_TEST

/* A newer role change supersedes an older one still running: only the
 * second's effect remains; other actions are not touched. */
START_TEST(test_supersede)
{
	char body[512];
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	pid_t first, second, other;
	char *result, *started, *log;

	snprintf(body, sizeof(body), "echo \"$2 started\" >> %s\nsleep 0.5\necho \"$2\" > %s\necho \"$2 done\"\n",
	         tmp_path("started"), tmp_path("result"));
	cbs.on_role_change = (char *)script("vip.sh", body);
	cbs.on_start = (char *)script("other.sh", "sleep 1\n");
	r = cb_new(&cbs, "main", 10);
	ck_assert_ptr_nonnull(r);

	ck_assert(cb_fire(r, CB_ON_START, "primary"));
	other = cb_running(r, CB_ON_START);
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "replica"));
	first = cb_running(r, CB_ON_ROLE_CHANGE);
	ck_assert_int_gt(first, 0);
	/* let the first one begin its work (the file exists before the line is in) */
	wait_content(tmp_path("started"), "replica started\n", 3);
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "primary"));
	second = cb_running(r, CB_ON_ROLE_CHANGE);
	ck_assert_int_gt(second, 0);
	ck_assert_int_ne(second, first);
	ck_assert_int_eq(cb_running(r, CB_ON_START), other); /* untouched */
	ck_assert(wait_gone(first, 1));

	poll_until_idle(r, 5);
	nap(0.6); /* the first's sleep would have ended by now */
	result = slurp(tmp_path("result"));
	ck_assert_str_eq(result, "primary\n");
	started = slurp(tmp_path("started"));
	ck_assert_str_eq(started, "replica started\nprimary started\n");
	cb_free(r);

	log = agent_log();
	ck_assert_msg(strstr(log, "callback on_role_change replica main: superseded by on_role_change "
	                          "primary, killing it") != NULL,
	              "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change: primary done ["));
	ck_assert_ptr_null(strstr(log, "replica done"));
	ck_assert_ptr_nonnull(strstr(log, "callback on_start primary main: exited with status 0"));
	free(result);
	free(started);
	free(log);
	assert_no_children();
}
END_TEST

/* 1 MB of output, in lines or in one line, does not block the script (it
 * ends on its own, well before the timeout) nor the poll, and at most
 * CB_LOG_MAX bytes of it are logged. */
START_TEST(test_large_output)
{
	static const struct {
		const char *name, *body, *sample;
	} cases[] = {
		{ "lines.sh", "yes 'a line of output' | head -c 1048576\necho >&2 end\n",
		  "callback on_stop: a line of output [" },
		{ "oneline.sh", "head -c 1048576 /dev/zero | tr '\\0' x\n", "callback on_stop: xxxx" },
	};
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	double t0, longest;
	size_t logged;
	char *log;

	cbs.on_stop = (char *)script(cases[_i].name, cases[_i].body);
	r = cb_new(&cbs, "main", 20);
	ck_assert_ptr_nonnull(r);
	t0 = now_s();
	ck_assert(cb_fire(r, CB_ON_STOP, "replica"));
	longest = poll_until_idle(r, 10);
	ck_assert_msg(now_s() - t0 < 10, "took %.1fs", now_s() - t0);
	ck_assert_msg(longest < 1, "one cb_poll took %.2fs", longest);
	cb_free(r);

	log = agent_log();
	ck_assert_ptr_nonnull(strstr(log, cases[_i].sample));
	ck_assert_uint_eq(count(log, "callback on_stop: (output truncated)"), 1);
	ck_assert_ptr_nonnull(strstr(log, "callback on_stop replica main: exited with status 0"));
	ck_assert_ptr_null(strstr(log, "callback on_stop: end ["));
	/* close to CB_LOG_MAX bytes of output logged, never more */
	logged = output_logged(log, "callback on_stop: ");
	ck_assert_uint_le(logged, CB_LOG_MAX);
	ck_assert_uint_ge(logged, CB_LOG_MAX - 2 * 1024);
	ck_assert_uint_lt(strlen(log), 6 * CB_LOG_MAX);
	free(log);
	assert_no_children();
}
END_TEST

/* No script for an action, or no callbacks at all: nothing happens. */
START_TEST(test_not_configured)
{
	struct config_callbacks cbs = { .on_start = (char *)"/bin/true" };
	struct cb_runner *r = cb_new(&cbs, "main", 5), *none = cb_new(NULL, NULL, 0);
	char *log;

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(none);
	for (int a = 0; a < CB_N_ACTIONS; a++) {
		ck_assert(cb_fire(none, (enum cb_action)a, "primary"));
		ck_assert_int_eq(cb_running(none, (enum cb_action)a), 0);
	}
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "primary"));
	ck_assert(cb_fire(r, CB_ON_STOP, "primary"));
	ck_assert(cb_fire(r, CB_ON_RELOAD, "primary"));
	ck_assert_int_eq(cb_poll(r), 0);
	ck_assert_int_eq(cb_poll(none), 0);
	ck_assert_int_eq(cb_poll(NULL), 0);
	ck_assert(!cb_fire(NULL, CB_ON_START, "primary"));
	ck_assert(!cb_fire(r, CB_N_ACTIONS, "primary"));
	ck_assert_int_eq(cb_running(NULL, CB_ON_START), 0);
	assert_no_children();
	cb_free(none);
	cb_free(r);
	cb_free(NULL);
	log = agent_log();
	ck_assert_str_eq(log, "");
	free(log);
	ck_assert_str_eq(cb_action_name(CB_ON_ROLE_CHANGE), "on_role_change");
	ck_assert_str_eq(cb_action_name(CB_N_ACTIONS), "?");
}
END_TEST

/* A script that vanished after the config was loaded: exit 127, logged. */
START_TEST(test_exec_failure)
{
	struct config_callbacks cbs = { .on_start = (char *)"/nonexistent/start.sh" };
	struct cb_runner *r = cb_new(&cbs, "main", 5);
	char *log;

	ck_assert_ptr_nonnull(r);
	ck_assert(cb_fire(r, CB_ON_START, "replica"));
	poll_until_idle(r, 5);
	cb_free(r);
	log = agent_log();
	ck_assert_msg(strstr(log, "callback on_start: cannot execute the script: errno 2 [") != NULL, "%s", log);
	ck_assert_msg(strstr(log, "callback on_start replica main: exited with status 127 after ") != NULL, "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "s (could not be executed?) ["));
	free(log);
	assert_no_children();
}
END_TEST

/* cb_free kills what still runs (and its process group) and reaps it. */
START_TEST(test_free_kills)
{
	char body[256];
	struct config_callbacks cbs = { 0 };
	struct cb_runner *r;
	double t0;
	char *log, *pidtext;
	int sleeper = 0;
	pid_t pid;

	snprintf(body, sizeof(body), "sleep 30 &\necho $! > %s\nwait\n", tmp_path("sleeper"));
	cbs.on_role_change = (char *)script("long.sh", body);
	r = cb_new(&cbs, "main", 60);
	ck_assert_ptr_nonnull(r);
	ck_assert(cb_fire(r, CB_ON_ROLE_CHANGE, "primary"));
	pid = cb_running(r, CB_ON_ROLE_CHANGE);
	wait_content(tmp_path("sleeper"), "\n", 3); /* its pid is written */
	ck_assert_int_eq(cb_poll(r), 1);
	t0 = now_s();
	cb_free(r);
	ck_assert_msg(now_s() - t0 < 1.5, "cb_free took %.2fs", now_s() - t0);
	assert_no_children();
	ck_assert(gone(pid));

	pidtext = slurp(tmp_path("sleeper"));
	ck_assert_int_eq(sscanf(pidtext, "%d", &sleeper), 1);
	free(pidtext);
	ck_assert_msg(wait_gone(sleeper, 2), "sleep %d survived", sleeper);
	log = agent_log();
	ck_assert_ptr_nonnull(strstr(log, "callback on_role_change primary main: still running as the "
	                                  "agent stops, killing it"));
	ck_assert_ptr_nonnull(strstr(log, ", agent stopping ["));
	free(log);
}
END_TEST

static Suite *callbacks_suite(void)
{
	Suite *s = suite_create("callbacks");
	TCase *tc = tcase_create("callbacks");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_args_and_output);
	tcase_add_test(tc, test_example_log_event);
	tcase_add_test(tc, test_timeout_kills);
	tcase_add_test(tc, test_timeout_sigkill);
	tcase_add_test(tc, test_supersede);
	tcase_add_loop_test(tc, test_large_output, 0, 2);
	tcase_add_test(tc, test_not_configured);
	tcase_add_test(tc, test_exec_failure);
	tcase_add_test(tc, test_free_kills);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(callbacks_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
