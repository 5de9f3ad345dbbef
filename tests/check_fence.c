/*
 * check_fence.c - unit tests of agent/fence.c (the fence process) and
 * agent/watchdog.c (the watchdog device).
 *
 * The fence is tested for real: a fence process is forked and fences a
 * dummy "postmaster" the test spawns (`sleep 60` in its own process group,
 * as pg_spawn starts Postgres); the test reaps the dummy and checks which
 * signal ended it and when. The agent's death is a helper process that
 * starts a fence and exits without saying goodbye.
 *
 * The watchdog is tested against an in-memory device behind the module's
 * ops table (there is no /dev/watchdog or softdog on the test machines),
 * and through the real system calls against paths that are not watchdogs.
 */
#include "agent/fence.h"
#include "agent/ha.h"
#include "agent/watchdog.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* A dummy postmaster: `sleep 60` as a group leader; ignore_quit makes it
 * ignore SIGQUIT (an ignored disposition survives exec), otherwise SIGQUIT
 * is set to its default. Returns once the child has exec'd (a close-on-exec
 * pipe reads EOF then), so a fence can never signal it while it still has
 * the disposition the test inherited: a shell that started the test in the
 * background may have left SIGQUIT ignored. */
static pid_t spawn_dummy(bool ignore_quit)
{
	int p[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		setpgid(0, 0);
		signal(SIGQUIT, ignore_quit ? SIG_IGN : SIG_DFL);
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	setpgid(pid, pid);
	while (read(p[0], &c, 1) < 0 && errno == EINTR)
		;
	close(p[0]);
	return pid;
}

/* Waits up to `limit` seconds for pid to end; returns the wait status, or
 * -1 (after killing and reaping it) if it is still alive. */
static int wait_dummy(pid_t pid, double limit, double *ended_at)
{
	double until = now_s() + limit;
	int st;

	while (now_s() < until) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			if (ended_at)
				*ended_at = now_s();
			return st;
		}
		nap(0.01);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static bool alive(pid_t pid)
{
	int st;

	return waitpid(pid, &st, WNOHANG) == 0;
}

/* Waits (bounded) for a report of this kind. */
static bool wait_report(struct fence *f, enum fence_report_kind kind, struct fence_report *out)
{
	for (int i = 0; i < 200; i++) {
		struct fence_report r;
		while (fence_next_report(f, &r)) {
			if (r.kind == kind) {
				if (out)
					*out = r;
				return true;
			}
		}
		nap(0.01);
	}
	return false;
}

/* A pidfd of pid, or -1 where the kernel (or valgrind) has none: the fence
 * then falls back to kill() by PID, and the tests must pass either way. */
static int pidfd_of(pid_t pid)
{
	int fd = fence_pidfd_open(pid);

	ck_assert_msg(fd >= 0 || errno == ENOSYS, "pidfd_open(%d): %s", (int)pid, strerror(errno));
	return fd;
}

static void close_pidfd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static struct fence *start_fence(void)
{
	char err[256];
	struct fence *f = fence_start(err, sizeof(err));

	ck_assert_msg(f != NULL, "%s", err);
	return f;
}

static void update(struct fence *f, pid_t pid, int pidfd, double deadline)
{
	char err[256];

	ck_assert_msg(fence_update(f, pid, pidfd, deadline, 0, err, sizeof(err)), "%s", err);
}

/* ---- the fence process ---- */

START_TEST(test_fires_at_deadline)
{
	struct fence *f = start_fence();
	pid_t d = spawn_dummy(false);
	int pidfd = pidfd_of(d);
	double t0 = now_s(), ended = 0;
	struct fence_report r;
	int st;

	update(f, d, pidfd, t0 + 0.4);
	st = wait_dummy(d, 5, &ended);
	ck_assert_msg(st != -1, "the dummy postmaster still ran 5 s after its deadline");
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGQUIT);
	ck_assert_msg(ended - t0 >= 0.39, "fired %.3f s after registration, before the deadline", ended - t0);
	ck_assert_msg(ended - t0 < 2.0, "fired %.3f s after registration (deadline 0.4 s)", ended - t0);
	ck_assert(wait_report(f, FENCE_FIRED, &r));
	ck_assert_int_eq(r.pid, d);
	ck_assert(r.late >= 0 && r.late < 1.5);
	close_pidfd(pidfd);
	fence_stop(f);
}
END_TEST

START_TEST(test_escalates_to_sigkill)
{
	struct fence *f = start_fence();
	pid_t d = spawn_dummy(true);
	int pidfd = pidfd_of(d);
	double t0 = now_s(), ended = 0;
	struct fence_report r;
	int st;

	nap(0.1); /* let the dummy reach exec with SIGQUIT ignored */
	update(f, d, pidfd, t0 + 0.2);
	st = wait_dummy(d, 5, &ended);
	ck_assert_msg(st != -1, "a postmaster that ignores SIGQUIT still ran 5 s after its deadline");
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	/* SIGQUIT at the deadline, SIGKILL FENCE_KILL_AFTER later */
	ck_assert_msg(ended - t0 >= 0.2 + FENCE_KILL_AFTER - 0.02, "SIGKILL after %.3f s", ended - t0);
	ck_assert(wait_report(f, FENCE_FIRED, NULL));
	ck_assert(wait_report(f, FENCE_KILLED, &r));
	ck_assert_int_eq(r.pid, d);
	close_pidfd(pidfd);
	fence_stop(f);
}
END_TEST

START_TEST(test_moving_deadline_does_not_fire)
{
	struct fence *f = start_fence();
	pid_t d = spawn_dummy(false);
	int pidfd = pidfd_of(d);
	double end = now_s() + 1.5, last = 0, ended = 0;
	int st;

	/* renewed every 0.1 s with 1 s left: never due (the slack keeps a
	 * loaded test machine from making it due) */
	while (now_s() < end) {
		last = now_s();
		update(f, d, pidfd, last + 1.0);
		nap(0.1);
		ck_assert_msg(alive(d), "fired although the deadline kept moving");
	}
	st = wait_dummy(d, 5, &ended);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_msg(ended - last >= 0.99, "fired %.3f s after the last renewal (deadline 1 s)", ended - last);
	close_pidfd(pidfd);
	fence_stop(f);
}
END_TEST

START_TEST(test_unregistered_is_never_signalled)
{
	struct fence *f = start_fence();
	pid_t a = spawn_dummy(false), b = spawn_dummy(false);
	int fa = pidfd_of(a), fb = pidfd_of(b);
	struct fence_report r;
	int st;

	update(f, a, fa, now_s() + 1.0);
	update(f, 0, -1, 0);
	nap(1.5);
	ck_assert_msg(alive(a), "a postmaster was signalled after it was unregistered");
	/* a new target replaces the old one: only b is fenced */
	update(f, a, fa, now_s() + 5);
	update(f, b, fb, now_s() + 0.2);
	st = wait_dummy(b, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	nap(0.8); /* past FENCE_KILL_AFTER too */
	ck_assert_msg(alive(a), "the replaced target was signalled");
	ck_assert(wait_report(f, FENCE_FIRED, &r));
	ck_assert_int_eq(r.pid, b);
	/* goodbye: the fence exits without fencing */
	update(f, a, fa, now_s() + 1.0);
	fence_stop(f); /* returns once the fence process has exited */
	nap(0.2);
	ck_assert_msg(alive(a), "the fence fenced after its goodbye");
	kill(a, SIGKILL);
	waitpid(a, &st, 0);
	close_pidfd(fa);
	close_pidfd(fb);
}
END_TEST

START_TEST(test_past_deadline_fires_at_once)
{
	struct fence *f = start_fence();
	pid_t d = spawn_dummy(false);
	int pidfd = pidfd_of(d);
	double t0 = now_s(), ended = 0;
	int st;

	update(f, d, pidfd, 0); /* no lease: at once */
	st = wait_dummy(d, 5, &ended);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_msg(ended - t0 < 1.0, "%.3f s", ended - t0);
	close_pidfd(pidfd);
	fence_stop(f);
}
END_TEST

/* The agent dies (its socket closes without goodbye): fenced at once. */
START_TEST(test_agent_death_fences_at_once)
{
	pid_t d = spawn_dummy(false), helper;
	double t0, ended = 0;
	int st, sync[2], go[2];
	char c;

	ck_assert_int_eq(pipe(sync), 0);
	ck_assert_int_eq(pipe(go), 0);
	helper = fork();
	ck_assert_int_ge(helper, 0);
	if (helper == 0) {
		char err[256];
		struct fence *f = fence_start(err, sizeof(err));
		int pidfd = pidfd_of(d);

		if (!f || !fence_update(f, d, pidfd, now_s() + 60, 0, err, sizeof(err)))
			_exit(1);
		if (write(sync[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0); /* no fence_stop: like a SIGKILLed agent */
	}
	close(sync[1]);
	close(go[0]);
	ck_assert_int_eq(read(sync[0], &c, 1), 1);
	close(sync[0]);
	nap(0.3);
	ck_assert_msg(alive(d), "fenced while the agent was alive and the deadline 60 s away");
	t0 = now_s();
	ck_assert_int_eq(write(go[1], "x", 1), 1);
	close(go[1]);
	ck_assert_int_eq(waitpid(helper, &st, 0), helper);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = wait_dummy(d, 5, &ended);
	ck_assert_msg(st != -1, "the dummy postmaster outlived its agent by 5 s");
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_msg(ended - t0 < 2.0, "fenced %.3f s after the agent died", ended - t0);
}
END_TEST

/* ---- revoking the leader lease after the agent died ---- */

START_TEST(test_revoke_certain)
{
	const struct fence_revoke_facts all = { .agent_gone = true,
		                                .lease = 0x1234,
		                                .postmaster = 4242,
		                                .own_group = true,
		                                .postmaster_exited = true,
		                                .group_live = false };
	struct fence_revoke_facts f;

	ck_assert(fence_revoke_certain(&all));
	/* each condition alone withholds it */
	f = all;
	f.agent_gone = false; /* a poll error, a goodbye, or a frozen agent */
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.lease = 0; /* not the leader */
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.lease = -5;
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.postmaster = 0; /* nothing was registered */
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.own_group = false; /* its group is not everything it started */
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.postmaster_exited = false;
	ck_assert(!fence_revoke_certain(&f));
	f = all;
	f.group_live = true; /* a backend still runs */
	ck_assert(!fence_revoke_certain(&f));
}
END_TEST

/* How the test revoker script behaves when the fence pre-starts it
 * (--revoker): it reads the fence's line on fd 3 and writes "warm <line>
 * <its arguments> stdin=<what its stdin is>" to dir/out and exits 0; or exits at once, before any line; or
 * reads the line, leaves it in dir/seen and exits 1 (a failed revoke). Run
 * as the fresh revoker (--revoke-lease ...), it writes its arguments to
 * dir/out. */
enum warm_mode { WARM_OK, WARM_DIES, WARM_FAILS };

static char revoke_dir[64];

static void setup_revoker_mode(enum warm_mode mode)
{
	char path[128], conf[128], err[256];
	FILE *f;

	snprintf(revoke_dir, sizeof(revoke_dir), "/tmp/check_fence.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(revoke_dir));
	snprintf(path, sizeof(path), "%s/revoker", revoke_dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\ncd '%s' || exit 9\nif [ \"$1\" = --revoker ]; then\n", revoke_dir);
	if (mode == WARM_OK)
		fprintf(f,
		        "  IFS= read -r l <&3 || exit 0\n  echo \"warm $l $* stdin=$(readlink /proc/$$/fd/0)\" > out.tmp && "
		        "mv out.tmp out\n  exit 0\n");
	else if (mode == WARM_DIES)
		fprintf(f, "  exit 3\n");
	else
		fprintf(f, "  IFS= read -r l <&3 || exit 0\n  echo \"$l\" > seen\n  exit 1\n");
	fprintf(f, "fi\necho \"$@\" > out.tmp && mv out.tmp out\n");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/node.conf", revoke_dir);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(fence_set_revoker(path, conf, err, sizeof(err)), "%s", err);
}

static void setup_revoker(void)
{
	setup_revoker_mode(WARM_OK);
}

static void cleanup_revoker(void)
{
	char p[128];
	char err[256];

	snprintf(p, sizeof(p), "%s/revoker", revoke_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/node.conf", revoke_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/out", revoke_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/seen", revoke_dir);
	unlink(p);
	rmdir(revoke_dir);
	/* a revoker that does not exist: later tests never run one */
	ck_assert(fence_set_revoker("/nonexistent/baton", "/", err, sizeof(err)));
}

/* The revoker's arguments once it ran (waits up to limit s), or "". */
static const char *revoked(double limit)
{
	static char line[512];
	char p[128];
	double until = now_s() + limit;

	snprintf(p, sizeof(p), "%s/out", revoke_dir);
	line[0] = '\0';
	do {
		FILE *f = fopen(p, "r");
		if (f) {
			/* The fake revoker creates the file before it writes its
			 * line: only a whole line (ending in a newline) counts. */
			bool whole = fgets(line, sizeof(line), f) && strchr(line, '\n');

			fclose(f);
			if (whole) {
				line[strcspn(line, "\n")] = '\0';
				return line;
			}
			line[0] = '\0';
		}
		nap(0.02);
	} while (now_s() < until);
	return line;
}

/* 'R' (running), 'Z' (zombie), ... of pid, from /proc; 0 = gone. */
static char proc_state(pid_t pid)
{
	char p[64], buf[512], *rp;
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

/* A helper "agent" that starts a fence, registers target with lease (and a
 * deadline 60 s away), reports ready on sync and exits (without goodbye)
 * when go is written, or says goodbye first if bye. */
static pid_t fake_agent(pid_t target, int64_t lease, bool bye, int *go_wr)
{
	int sync[2], go[2];
	pid_t helper;
	char c;

	ck_assert_int_eq(pipe(sync), 0);
	ck_assert_int_eq(pipe(go), 0);
	helper = fork();
	ck_assert_int_ge(helper, 0);
	if (helper == 0) {
		char err[256];
		struct fence *f = fence_start(err, sizeof(err));
		int pidfd = fence_pidfd_open(target);

		if (!f || !fence_update(f, target, pidfd, now_s() + 60, lease, err, sizeof(err)))
			_exit(1);
		if (write(sync[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		if (bye)
			fence_stop(f);
		_exit(0);
	}
	close(sync[1]);
	close(go[0]);
	ck_assert_int_eq(read(sync[0], &c, 1), 1);
	close(sync[0]);
	*go_wr = go[1];
	return helper;
}

/* fake_agent that names lease, then (after the fence started its revoker)
 * lease2: a new leader term. */
static pid_t fake_agent_new_lease(pid_t target, int64_t lease, int64_t lease2, int *go_wr)
{
	int sync[2], go[2];
	pid_t helper;
	char c;

	ck_assert_int_eq(pipe(sync), 0);
	ck_assert_int_eq(pipe(go), 0);
	helper = fork();
	ck_assert_int_ge(helper, 0);
	if (helper == 0) {
		char err[256];
		struct fence *f = fence_start(err, sizeof(err));
		int pidfd = fence_pidfd_open(target);
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		if (!f || !fence_update(f, target, pidfd, now_s() + 60, lease, err, sizeof(err)))
			_exit(1);
		nanosleep(&ts, NULL);
		if (!fence_update(f, target, pidfd, now_s() + 60, lease2, err, sizeof(err)))
			_exit(1);
		if (write(sync[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(sync[1]);
	close(go[0]);
	ck_assert_int_eq(read(sync[0], &c, 1), 1);
	close(sync[0]);
	*go_wr = go[1];
	return helper;
}

static void end_agent(pid_t helper, int go_wr)
{
	int st;

	ck_assert_int_eq(write(go_wr, "x", 1), 1);
	close(go_wr);
	ck_assert_int_eq(waitpid(helper, &st, 0), helper);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The agent dies holding the leader lease: once its postmaster has exited
 * (a zombie the test has not reaped counts: it runs no code), the fence
 * hands the lease to its pre-started revoker, which got -c config; when
 * that one is gone or fails, it runs a fresh revoker with the lease, the
 * postmaster and -c config. */
static void agent_death_revokes(enum warm_mode mode)
{
	pid_t d = spawn_dummy(false), helper;
	char want[256], wantc[160], p[128];
	const char *got;
	int go, st;

	setup_revoker_mode(mode);
	helper = fake_agent(d, 0xabc123, false, &go);
	nap(0.3);
	ck_assert_str_eq(revoked(0), "");
	end_agent(helper, go);
	for (int i = 0; i < 250 && proc_state(d) != 'Z'; i++)
		nap(0.02);
	ck_assert_msg(proc_state(d) == 'Z', "the dummy postmaster was not fenced (state %c)", proc_state(d));
	got = revoked(5);
	if (mode == WARM_OK)
		snprintf(want, sizeof(want), "warm revoke abc123 %d ", (int)d);
	else
		snprintf(want, sizeof(want), "--revoke-lease abc123 --postmaster %d --since ", (int)d);
	ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "revoker ran with '%s'", got);
	if (mode == WARM_OK) {
		/* started with the agent's pid and the lease, stdin not the pipe */
		snprintf(want, sizeof(want),
		         " --revoker --agent %d --revoke-lease abc123 -c %s/node.conf stdin=/dev/null", (int)helper,
		         revoke_dir);
		ck_assert_msg(strstr(got, want) != NULL, "revoker ran with '%s'", got);
	} else {
		/* the dead agent's pid too, for the revoker's own check */
		snprintf(wantc, sizeof(wantc), " --agent %d -c %s/node.conf", (int)helper, revoke_dir);
		ck_assert_msg(strlen(got) > strlen(wantc) && strcmp(got + strlen(got) - strlen(wantc), wantc) == 0,
		              "revoker ran with '%s'", got);
	}
	/* the failing pre-started revoker was asked first */
	snprintf(p, sizeof(p), "%s/seen", revoke_dir);
	ck_assert_int_eq(access(p, F_OK) == 0, mode == WARM_FAILS);
	ck_assert_msg(proc_state(d) == 'Z', "the test's zombie was reaped by someone else");
	/* the leader's postmaster is SIGKILLed at once, not asked to shut down */
	st = wait_dummy(d, 5, NULL);
	ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "postmaster status %d", st);
	cleanup_revoker();
}

/* The pre-started revoker acts on a line only when what it sees itself
 * bears it out: anyone of its user can write to its pipe through /proc. */
START_TEST(test_revoker_refuses_false_claims)
{
	const struct fence_revoker_claim good = {
		.lease = 0xe6a23db72b8d08,
		.expected_lease = 0xe6a23db72b8d08,
		.postmaster = 4242,
		.postmaster_gone = true,
		.agent_gone = true,
		.fence_parent = true,
	};
	struct fence_revoker_claim c;

	ck_assert_ptr_null(fence_revoker_refusal(&good));
	/* the reviewer's line: "revoke e6a23db72b8d08 1 0" while all runs */
	c = good;
	c.postmaster = 1;
	c.postmaster_gone = false;
	c.agent_gone = false;
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
	c = good;
	c.postmaster = 1; /* init: never "gone" */
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
	c = good;
	c.postmaster = 0;
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
	c = good;
	c.postmaster_gone = false;
	ck_assert_str_eq(fence_revoker_refusal(&c), "the postmaster it names still runs");
	c = good;
	c.agent_gone = false;
	ck_assert_str_eq(fence_revoker_refusal(&c), "the agent still runs");
	c = good;
	c.lease = 0x1234; /* another node's lease */
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
	c = good;
	c.expected_lease = 0;
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
	c = good;
	c.fence_parent = false;
	ck_assert_ptr_nonnull(fence_revoker_refusal(&c));
}
END_TEST

/* The pre-started revoker refuses a lease other than the one it was
 * started with, so a new leader lease gets a new revoker. */
START_TEST(test_new_lease_new_revoker)
{
	pid_t d = spawn_dummy(false), helper;
	char want[256];
	const char *got;
	int go, st;

	setup_revoker();
	helper = fake_agent_new_lease(d, 0xabc123, 0xdef456, &go);
	nap(0.3);
	end_agent(helper, go);
	got = revoked(5);
	snprintf(want, sizeof(want), "warm revoke def456 %d ", (int)d);
	ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "revoker ran with '%s'", got);
	ck_assert_msg(strstr(got, " --revoke-lease def456 -c ") != NULL, "revoker ran with '%s'", got);
	cleanup_revoker();
	st = wait_dummy(d, 5, NULL);
	ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "postmaster status %d", st);
}
END_TEST

START_TEST(test_agent_death_revokes_lease)
{
	agent_death_revokes(WARM_OK);
}
END_TEST

START_TEST(test_agent_death_revokes_without_warm_revoker)
{
	agent_death_revokes(WARM_DIES);
}
END_TEST

START_TEST(test_agent_death_revokes_after_warm_failure)
{
	agent_death_revokes(WARM_FAILS);
}
END_TEST

/* No revoke: a goodbye, no lease, a postmaster that is not a group
 * leader; and none before a process of its group that still ran is dead. */
START_TEST(test_no_revoke_without_certainty)
{
	pid_t d, helper, member, m2;
	int go, st;

	setup_revoker();

	/* goodbye: the agent stops Postgres itself and releases the key */
	d = spawn_dummy(false);
	helper = fake_agent(d, 0xabc, true, &go);
	end_agent(helper, go);
	ck_assert_str_eq(revoked(1.0), "");
	ck_assert_msg(alive(d), "fenced after a goodbye");
	kill(d, SIGKILL);
	waitpid(d, &st, 0);

	/* not the leader: fenced, but nothing to revoke */
	d = spawn_dummy(false);
	helper = fake_agent(d, 0, false, &go);
	end_agent(helper, go);
	st = wait_dummy(d, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_str_eq(revoked(1.0), "");

	/* a postmaster that is no group leader (here: in the test's group) */
	member = fork();
	ck_assert_int_ge(member, 0);
	if (member == 0) {
		signal(SIGQUIT, SIG_DFL);
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	nap(0.1);
	helper = fake_agent(member, 0xabc, false, &go);
	end_agent(helper, go);
	st = wait_dummy(member, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_str_eq(revoked(1.0), "");

	/* a second process of the postmaster's group (it ignores SIGQUIT):
	 * the fence SIGKILLs the whole group, and revokes only once that
	 * process is dead too */
	d = spawn_dummy(false);
	m2 = fork();
	ck_assert_int_ge(m2, 0);
	if (m2 == 0) {
		setpgid(0, d);
		signal(SIGQUIT, SIG_IGN); /* survives the postmaster's SIGQUIT */
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	setpgid(m2, d);
	nap(0.2);
	ck_assert_int_eq(getpgid(m2), d);
	helper = fake_agent(d, 0xdef, false, &go);
	end_agent(helper, go);
	st = wait_dummy(d, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* the member ignores SIGQUIT: the group SIGKILL ends it, before the revoke */
	{
		/* by the warm revoker, or (a loaded machine: it was not ready
		 * yet) by the fresh one: either way only now */
		const char *r = revoked(5);
		ck_assert_msg(strncmp(r, "warm revoke def ", 16) == 0 ||
		                      strncmp(r, "--revoke-lease def --postmaster ", 32) == 0,
		              "no revoke once the group was empty (got '%s')", r);
	}
	{
		char stt = proc_state(m2);
		ck_assert_msg(stt == 'Z', "revoked while a process of the group still ran (state %d)", stt);
	}
	st = wait_dummy(m2, 5, NULL);
	ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	              "the group member was not SIGKILLed before the revoke");
	cleanup_revoker();
}
END_TEST

/* A frozen agent keeps its socket open: the deadline path fences, and
 * never revokes, even when the agent dies later. */
START_TEST(test_frozen_agent_does_not_revoke)
{
	pid_t d = spawn_dummy(false), helper;
	int sync[2], st;
	char c;

	setup_revoker();
	ck_assert_int_eq(pipe(sync), 0);
	helper = fork();
	ck_assert_int_ge(helper, 0);
	if (helper == 0) {
		char err[256];
		struct fence *f = fence_start(err, sizeof(err));
		int pidfd = fence_pidfd_open(d);

		if (!f || !fence_update(f, d, pidfd, now_s() + 0.5, 0x77, err, sizeof(err)))
			_exit(1);
		if (write(sync[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	ck_assert_int_eq(read(sync[0], &c, 1), 1);
	close(sync[0]);
	ck_assert_int_eq(kill(helper, SIGSTOP), 0);
	st = wait_dummy(d, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	ck_assert_str_eq(revoked(1.0), "");
	/* and when the frozen agent is killed after the fence fired */
	kill(helper, SIGKILL);
	waitpid(helper, &st, 0);
	ck_assert_str_eq(revoked(1.0), "");
	cleanup_revoker();
}
END_TEST

/* A terminal's Ctrl-C, systemd's SIGTERM and friends do not end it. */
START_TEST(test_survives_signals)
{
	struct fence *f = start_fence();
	pid_t d = spawn_dummy(false);
	int pidfd = pidfd_of(d);
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGTSTP };
	char why[160];
	int st;

	update(f, d, pidfd, now_s() + 30);
	nap(0.1); /* the child has set its dispositions */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ck_assert_int_eq(kill(fence_pid(f), sigs[i]), 0);
	nap(0.3);
	ck_assert_msg(fence_check(f, why, sizeof(why)), "the fence process %s", why);
	ck_assert(alive(d));
	/* and it still works */
	update(f, d, pidfd, now_s() + 0.1);
	st = wait_dummy(d, 5, NULL);
	ck_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
	close_pidfd(pidfd);
	fence_stop(f);
}
END_TEST

START_TEST(test_check_notices_death)
{
	struct fence *f = start_fence();
	char why[160], err[256];

	ck_assert(fence_check(f, why, sizeof(why)));
	ck_assert_int_eq(kill(fence_pid(f), SIGKILL), 0);
	for (int i = 0; i < 200 && fence_check(f, why, sizeof(why)); i++)
		nap(0.01);
	ck_assert_ptr_nonnull(strstr(why, "killed by signal 9"));
	/* sending to a dead fence fails with a message instead of SIGPIPE */
	ck_assert(!fence_update(f, getpid(), -1, now_s() + 5, 0, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "cannot reach the fence process"));
	fence_stop(f);
}
END_TEST

/* ---- the watchdog ---- */

/* An in-memory watchdog device. */
static struct fake_wd {
	bool open;
	int opens, feeds, magic_closes, plain_closes;
	int timeout;   /* as set */
	int round_up;  /* the "driver" adds this to every timeout asked */
	int set_errno; /* WDIOC_SETTIMEOUT fails with it */
	char last;     /* last byte written */
} fake;

static int fake_open(const char *path, int flags)
{
	(void)path;
	(void)flags;
	if (fake.open) {
		errno = EBUSY; /* watchdog devices have one opener */
		return -1;
	}
	fake.open = true;
	fake.opens++;
	fake.last = 0;
	return 42;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
	ck_assert_int_eq(fd, 42);
	ck_assert(fake.open);
	if (req == WDIOC_SETTIMEOUT) {
		if (fake.set_errno) {
			errno = fake.set_errno;
			return -1;
		}
		fake.timeout = *(int *)arg + fake.round_up;
		return 0;
	}
	if (req == WDIOC_GETTIMEOUT) {
		*(int *)arg = fake.timeout;
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static ssize_t fake_write(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(fd, 42);
	ck_assert(fake.open);
	ck_assert_uint_eq(len, 1);
	fake.last = *(const char *)buf;
	if (fake.last != 'V')
		fake.feeds++;
	return 1;
}

static int fake_close(int fd)
{
	ck_assert_int_eq(fd, 42);
	if (fake.last == 'V')
		fake.magic_closes++;
	else
		fake.plain_closes++; /* a real device would go on counting down */
	fake.open = false;
	return 0;
}

static const struct watchdog_ops fake_ops = { fake_open, fake_ioctl, fake_write, fake_close };

START_TEST(test_watchdog_arm_feed_disarm)
{
	struct watchdog *w;
	char err[512];

	memset(&fake, 0, sizeof(fake));
	w = watchdog_new("/dev/fake-watchdog", &fake_ops);
	ck_assert_ptr_nonnull(w);

	/* probe: open, set, read back, magic close */
	ck_assert_msg(watchdog_probe(w, 2, err, sizeof(err)), "%s", err);
	ck_assert(!fake.open && !watchdog_armed(w));
	ck_assert_int_eq(fake.opens, 1);
	ck_assert_int_eq(fake.magic_closes, 1);

	ck_assert_msg(watchdog_arm(w, 2, err, sizeof(err)), "%s", err);
	ck_assert(fake.open && watchdog_armed(w));
	ck_assert_int_eq(watchdog_timeout(w), 2);
	ck_assert_int_eq(fake.feeds, 1);
	ck_assert(watchdog_arm(w, 2, err, sizeof(err))); /* idempotent: no second open */
	ck_assert_int_eq(fake.opens, 2);
	ck_assert(watchdog_feed(w, err, sizeof(err)));
	ck_assert_int_eq(fake.feeds, 3);
	ck_assert(watchdog_probe(w, 2, err, sizeof(err))); /* armed: nothing to probe */
	ck_assert(fake.open);

	/* a new ttl: the timeout is set again on the open device */
	ck_assert(watchdog_arm(w, 3, err, sizeof(err)));
	ck_assert_int_eq(fake.opens, 2);
	ck_assert_int_eq(fake.timeout, 3);

	ck_assert(watchdog_disarm(w, err, sizeof(err)));
	ck_assert(!fake.open && !watchdog_armed(w));
	ck_assert_int_eq(fake.magic_closes, 2);
	ck_assert(watchdog_disarm(w, err, sizeof(err))); /* idempotent */
	ck_assert(!watchdog_feed(w, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not armed"));

	/* freeing an armed watchdog disarms it */
	ck_assert(watchdog_arm(w, 2, err, sizeof(err)));
	watchdog_free(w);
	ck_assert(!fake.open);
	ck_assert_int_eq(fake.magic_closes, 3);
	ck_assert_int_eq(fake.plain_closes, 0);
}
END_TEST

START_TEST(test_watchdog_refusals_leave_it_stopped)
{
	struct watchdog *w = watchdog_new("/dev/fake-watchdog", &fake_ops);
	char err[512];

	memset(&fake, 0, sizeof(fake));
	/* the driver rounds 2 s up to 3 s: a later reset than asked is refused */
	fake.round_up = 1;
	ck_assert(!watchdog_arm(w, 2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "asked for a 2 s timeout, the device set 3 s"));
	ck_assert(!fake.open && !watchdog_armed(w));
	ck_assert_int_eq(fake.magic_closes, 1);
	/* a driver that refuses the timeout */
	fake.round_up = 0;
	fake.set_errno = EINVAL;
	ck_assert(!watchdog_probe(w, 2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "refuses a 2 s timeout"));
	ck_assert(!fake.open);
	ck_assert_int_eq(fake.magic_closes, 2);
	/* busy (someone else holds it) */
	fake.set_errno = 0;
	fake.open = true;
	ck_assert(!watchdog_arm(w, 2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "cannot open: Device or resource busy"));
	fake.open = false;
	ck_assert_int_eq(fake.plain_closes, 0);
	watchdog_free(w);
}
END_TEST

/* The real system calls: paths that are no watchdog. */
START_TEST(test_watchdog_real_not_a_device)
{
	char dir[] = "/tmp/check_fence_XXXXXX", file[64], err[512];
	struct watchdog *w;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/watchdog", dir);

	w = watchdog_new(file, NULL);
	ck_assert(!watchdog_probe(w, 2, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot open: No such file or directory") != NULL, "%s", err);
	watchdog_free(w);

	fd = open(file, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	w = watchdog_new(file, NULL);
	ck_assert(!watchdog_arm(w, 2, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a watchdog device") != NULL, "%s", err);
	ck_assert(!watchdog_armed(w));
	watchdog_free(w);
	unlink(file);
	rmdir(dir);
}
END_TEST

START_TEST(test_watchdog_timing)
{
	static const double ttls[] = { 3, 5, 10, 30, 60 };
	char err[512];
	enum watchdog_mode m;
	int t;

	ck_assert(watchdog_mode_parse("off", &m) && m == WATCHDOG_OFF);
	ck_assert(watchdog_mode_parse("automatic", &m) && m == WATCHDOG_AUTOMATIC);
	ck_assert(watchdog_mode_parse("required", &m) && m == WATCHDOG_REQUIRED);
	ck_assert(!watchdog_mode_parse("on", &m));
	ck_assert_str_eq(watchdog_mode_name(WATCHDOG_REQUIRED), "required");

	ck_assert(watchdog_timeout_for(5, 1, 0.5, &t, err, sizeof(err)));
	ck_assert_int_eq(t, 2);
	ck_assert(watchdog_timeout_for(30, 1, 5, &t, err, sizeof(err)));
	ck_assert_int_eq(t, 23);
	/* ttl 2 leaves nothing for a margin of 0.5 s with interval 0.5 s */
	ck_assert(!watchdog_timeout_for(2, 0.5, 0.5, &t, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "watchdog.safety_margin = 0.5 s leaves no watchdog timeout with ttl 2 s"));
	ck_assert(!watchdog_timeout_for(5, 1, 5, &t, err, sizeof(err)));

	/* With the default margin, for each ttl with the agent's keepalive
	 * interval: the latest reset comes before the lease's expiry and after
	 * the leader's own deadline (so a primary that merely lost etcd demotes
	 * and disarms first), and a renewal followed by one wait and one
	 * keepalive round trip still falls inside the feeding window. */
	for (size_t i = 0; i < sizeof(ttls) / sizeof(ttls[0]); i++) {
		double ttl = ttls[i], interval = ttl / 4 < 1 ? ttl / 4 : 1, sent = 1000;
		double until, reset;

		ck_assert_msg(watchdog_timeout_for(ttl, interval, 0.5, &t, err, sizeof(err)), "%s", err);
		until = watchdog_feed_until(sent, ttl, 0.5, t);
		reset = until + t;
		ck_assert(reset <= sent + ttl - 0.5 + 1e-9);
		ck_assert_msg(reset > sent + ttl - ha_lease_margin(ttl), "ttl %g: reset %.2f before the deadline", ttl,
		              reset - sent);
		ck_assert(until - sent >= 2 * interval - 1e-9);
	}
}
END_TEST

static Suite *fence_suite(void)
{
	Suite *s = suite_create("fence");
	TCase *tf = tcase_create("fence");
	TCase *tw = tcase_create("watchdog");

	tcase_set_timeout(tf, 20);
	tcase_add_test(tf, test_fires_at_deadline);
	tcase_add_test(tf, test_escalates_to_sigkill);
	tcase_add_test(tf, test_moving_deadline_does_not_fire);
	tcase_add_test(tf, test_unregistered_is_never_signalled);
	tcase_add_test(tf, test_past_deadline_fires_at_once);
	tcase_add_test(tf, test_agent_death_fences_at_once);
	tcase_add_test(tf, test_survives_signals);
	tcase_add_test(tf, test_check_notices_death);
	tcase_add_test(tf, test_revoke_certain);
	tcase_add_test(tf, test_agent_death_revokes_lease);
	tcase_add_test(tf, test_agent_death_revokes_without_warm_revoker);
	tcase_add_test(tf, test_revoker_refuses_false_claims);
	tcase_add_test(tf, test_new_lease_new_revoker);
	tcase_add_test(tf, test_agent_death_revokes_after_warm_failure);
	tcase_add_test(tf, test_no_revoke_without_certainty);
	tcase_add_test(tf, test_frozen_agent_does_not_revoke);
	suite_add_tcase(s, tf);

	tcase_add_test(tw, test_watchdog_arm_feed_disarm);
	tcase_add_test(tw, test_watchdog_refusals_leave_it_stopped);
	tcase_add_test(tw, test_watchdog_real_not_a_device);
	tcase_add_test(tw, test_watchdog_timing);
	suite_add_tcase(s, tw);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fence_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
