/*
 * fence.c - the fence process (see fence.h).
 *
 * Two halves share this file. The agent half (fence_start, fence_update,
 * fence_next_report, fence_check, fence_stop) is ordinary code. The child
 * half (everything named child_*) runs in the forked fence process and is
 * written as a small event loop over raw system calls only: poll() on the
 * socket (and on the target's pidfd once it was signalled) with a timeout
 * up to the next deadline, recvmsg() to take the new state, and
 * pidfd_send_signal()/kill() to fence. No malloc, no stdio, no locks: the
 * agent is multi-threaded, and whatever lock another thread held at fork()
 * stays held forever in the child.
 *
 * The messages are fixed-size structs; SOCK_SEQPACKET keeps their
 * boundaries and reports the peer's close as a zero-length read, which is
 * how the fence learns that the agent died. The socket is close-on-exec on
 * the agent's side, so no postmaster or tool the agent starts can hold it
 * open after the agent is gone.
 *
 * The agent-crash revoke (fence.h has the whole safety argument): on the
 * agent-gone path only, child_agent_gone() fences as before and then loops,
 * bounded by FENCE_REVOKE_WAIT, gathering the facts fence_revoke_certain()
 * judges: the pidfd says the postmaster exited; a SIGKILL goes to its group
 * each round (nothing in it may fork once that is pending); the group is
 * empty when kill(-pgid, 0) says ESRCH or, since an init that reaps late
 * leaves zombies in it, when /proc (read with open/getdents64/read into
 * stack buffers) shows no process of that group but zombies. Then it
 * execve()s the revoker with an argv built in stack buffers; the revoker's
 * path and the config's were copied into static buffers before fork.
 * Each refusal to revoke leaves things as they were before this existed:
 * the lease expires after the ttl. The revoker is normally pre-started
 * (child_spawn_revoker): the fence only writes it one line on a pipe, and
 * execs a fresh one only when that one is gone or fails.
 */
#include "agent/fence.h"

#include "agent/clock.h"
#include "agent/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { MSG_SET = 1, MSG_BYE = 2 };

/* agent -> fence */
struct fence_msg {
	uint32_t type;
	uint32_t new_target; /* a pidfd (or the fallback: none) comes with it */
	int32_t pid;         /* 0 = nothing may write */
	int32_t pad;
	int64_t deadline_ns; /* CLOCK_MONOTONIC */
	int64_t lease;       /* the leader lease to revoke if the agent dies; 0 = none */
};

/* fence -> agent */
struct fence_wire_report {
	uint32_t kind;
	int32_t pid;
	int64_t late_ns;
	int64_t at_ns; /* CLOCK_MONOTONIC when it happened */
};

struct fence {
	pid_t pid;
	int sock;
	bool sent_any; /* the fence process has our state */
	pid_t sent_pid;
	int64_t sent_deadline;
	int64_t sent_lease;
};

#define NS 1000000000LL

int fence_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int fence_pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* ---- the fence process ---------------------------------------------------- */

struct child_target {
	pid_t pid;        /* 0 = none */
	int pidfd;        /* -1: no pidfds here, use kill(pid) */
	int64_t deadline; /* ns */
	bool fired;       /* SIGQUIT sent */
	int64_t kill_at;  /* ns, when fired */
	int64_t lease;    /* the leader lease; 0 = none */
	bool own_group;   /* pid led its own process group when registered */
};

bool fence_revoke_certain(const struct fence_revoke_facts *f)
{
	return f->agent_gone && f->lease > 0 && f->postmaster > 0 && f->own_group && f->postmaster_exited &&
	       !f->group_live;
}

const char *fence_revoker_refusal(const struct fence_revoker_claim *c)
{
	if (c->lease <= 0 || c->lease != c->expected_lease)
		return "it names a lease other than the one the fence gave it";
	if (c->postmaster <= 1)
		return "it names no postmaster pid";
	if (!c->postmaster_gone)
		return "the postmaster it names still runs";
	if (!c->agent_gone)
		return "the agent still runs";
	if (!c->fence_parent)
		return "the fence process that started it is gone";
	return NULL;
}

/* The revoker (fence_set_revoker), fixed before fork: the child only reads
 * them. Empty = never revoke. */
static char revoke_exe[PATH_MAX];
static char revoke_conf[PATH_MAX];
/* The agent that started the fence (set before fork): the pre-started
 * revoker is told it, to check that the agent is gone before it revokes. */
static pid_t fence_agent_pid;
extern char **environ;

/* Appends s to buf at *pos (bounded). Async-signal-safe. */
static void child_put(char *buf, size_t len, size_t *pos, const char *s)
{
	while (*s && *pos + 1 < len)
		buf[(*pos)++] = *s++;
}

static void child_put_num(char *buf, size_t len, size_t *pos, long long v)
{
	char d[24];
	int n = 0;

	if (v < 0) {
		child_put(buf, len, pos, "-");
		v = -v;
	}
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < (int)sizeof(d));
	while (n > 0 && *pos + 1 < len)
		buf[(*pos)++] = d[--n];
}

static void child_put_hex(char *buf, size_t len, size_t *pos, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char d[17];
	int n = 0;

	do {
		d[n++] = digits[v & 15];
		v >>= 4;
	} while (v > 0 && n < 16);
	while (n > 0 && *pos + 1 < len)
		buf[(*pos)++] = d[--n];
}

/* Taken before fork() (localtime_r and getenv are not safe after it in a
 * threaded program): the offset of local time from UTC, so that the
 * child's lines carry the agent's timestamps, and whether lines start with
 * a journal priority (log.c). */
static long fence_utc_offset;
static bool fence_journal;

/* n, zero-padded to width digits. Async-signal-safe. */
static void child_put_pad(char *buf, size_t len, size_t *pos, long long n, int width)
{
	char d[24];
	int k = 0;

	do {
		d[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && k < (int)sizeof(d));
	while (k < width && k < (int)sizeof(d))
		d[k++] = '0';
	while (k > 0 && *pos + 1 < len)
		buf[(*pos)++] = d[--k];
}

/* "YYYY-MM-DD HH:MM:SS.mmm" of the wall clock in local time, as log.c
 * writes it (days to a civil date by arithmetic alone). Async-signal-safe. */
static void child_put_stamp(char *buf, size_t len, size_t *pos)
{
	struct timespec ts;
	long long t, days, secs, z, era, doe, yoe, doy, mp, y, m, d;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (long long)ts.tv_sec + fence_utc_offset;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	child_put_pad(buf, len, pos, y, 4);
	child_put(buf, len, pos, "-");
	child_put_pad(buf, len, pos, m, 2);
	child_put(buf, len, pos, "-");
	child_put_pad(buf, len, pos, d, 2);
	child_put(buf, len, pos, " ");
	child_put_pad(buf, len, pos, secs / 3600, 2);
	child_put(buf, len, pos, ":");
	child_put_pad(buf, len, pos, secs / 60 % 60, 2);
	child_put(buf, len, pos, ":");
	child_put_pad(buf, len, pos, secs % 60, 2);
	child_put(buf, len, pos, ".");
	child_put_pad(buf, len, pos, ts.tv_nsec / 1000000, 3);
}

/* One line on stderr (the agent's log), since the agent may be frozen:
 * "<a><pid><b><ms><c>", stamped and levelled as log.c's ERROR lines (the
 * fence acts only when something went wrong). Async-signal-safe. */
static void child_say(const char *a, pid_t pid, const char *b, long long ms, const char *c)
{
	char line[320];
	size_t pos = 0;
	ssize_t unused;

	if (fence_journal)
		child_put(line, sizeof(line), &pos, "<3>");
	child_put_stamp(line, sizeof(line), &pos);
	child_put(line, sizeof(line), &pos, " ERROR baton fence process: ");
	child_put(line, sizeof(line), &pos, a);
	child_put_num(line, sizeof(line), &pos, pid);
	if (b) {
		child_put(line, sizeof(line), &pos, b);
		child_put_num(line, sizeof(line), &pos, ms);
	}
	child_put(line, sizeof(line), &pos, c);
	child_put(line, sizeof(line), &pos, "\n");
	unused = write(STDERR_FILENO, line, pos);
	(void)unused;
}

static void child_report(int sock, enum fence_report_kind kind, pid_t pid, int64_t late)
{
	struct fence_wire_report r = { .kind = (uint32_t)kind, .pid = pid, .late_ns = late, .at_ns = clk_mono_ns() };

	/* A frozen agent does not read: drop the report rather than block. */
	(void)send(sock, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void child_drop(struct child_target *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pid = 0;
	t->pidfd = -1;
	t->fired = false;
	t->lease = 0;
	t->own_group = false;
}

/* 0 or an errno. */
static int child_signal(const struct child_target *t, int sig)
{
	if (t->pidfd >= 0)
		return fence_pidfd_signal(t->pidfd, sig) == 0 ? 0 : errno;
	return kill(t->pid, sig) == 0 ? 0 : errno;
}

/* Has the target exited (a zombie counts)? */
static bool child_exited(const struct child_target *t)
{
	if (t->pidfd >= 0) {
		struct pollfd p = { .fd = t->pidfd, .events = POLLIN };
		return poll(&p, 1, 0) > 0;
	}
	return kill(t->pid, 0) != 0 && errno == ESRCH;
}

static void child_fire(int sock, struct child_target *t, int64_t now, bool agent_gone)
{
	int e = child_signal(t, SIGQUIT);

	if (e == ESRCH) {
		child_report(sock, FENCE_GONE, t->pid, now - t->deadline);
		child_drop(t);
		return;
	}
	if (agent_gone)
		child_say("the agent is gone (its socket closed): SIGQUIT to postmaster ", t->pid, NULL, 0,
		          " (immediate shutdown)");
	else if (t->deadline <= 0)
		child_say("postmaster ", t->pid, NULL, 0,
		          " may write but the agent holds no valid lease: SIGQUIT (immediate shutdown)");
	else
		child_say("lease deadline passed and the agent did not renew: SIGQUIT to postmaster ", t->pid,
		          " (immediate shutdown), ms past the deadline: ", (now - t->deadline) / 1000000, "");
	child_report(sock, FENCE_FIRED, t->pid, t->deadline > 0 ? now - t->deadline : 0);
	t->fired = true;
	t->kill_at = now + (int64_t)(FENCE_KILL_AFTER * (double)NS);
}

/* SIGKILL to the postmaster's process group (its backends too: a backend of
 * a dead postmaster could still commit), then to the postmaster. The group
 * id is the postmaster's PID (it calls setpgid(0, 0)), which cannot be
 * reused while the postmaster exists, and child_exited() just said it does;
 * only an exit, a reap by the agent and a reuse of that PID within the few
 * microseconds between the two calls could misdirect it. */
static void child_escalate(int sock, struct child_target *t)
{
	if (!child_exited(t)) {
		(void)kill(-t->pid, SIGKILL);
		(void)child_signal(t, SIGKILL);
		child_say("postmaster ", t->pid, NULL, 0,
		          " did not exit after SIGQUIT: SIGKILL to it and its process group");
		child_report(sock, FENCE_KILLED, t->pid, 0);
	} else {
		child_report(sock, FENCE_EXITED, t->pid, 0);
	}
	child_drop(t);
}

/* The agent died while it held the leader lease: the lease can be handed
 * over only once the postmaster and its group are gone, and an immediate
 * shutdown (SIGQUIT) makes the postmaster wait for its backends first
 * (0.2 s measured on a loaded machine). Nothing is to be saved by it (an
 * immediate shutdown writes no checkpoint either; the next start recovers
 * from WAL in both cases), so SIGKILL the postmaster (through its pidfd)
 * and its whole group at once. */
static void child_kill_for_handover(struct child_target *t, int64_t now)
{
	int e = child_signal(t, SIGKILL);

	if (e == ESRCH) {
		child_drop(t); /* it has exited already (its parent-death signal) */
		return;
	}
	(void)kill(-t->pid, SIGKILL);
	child_say("the agent is gone (its socket closed) while it held the leader lease: SIGKILL to postmaster ",
	          t->pid, NULL, 0, " and its process group, so that the lease can be revoked at once");
	t->fired = true;
	t->kill_at = now + (int64_t)(FENCE_KILL_AFTER * (double)NS);
}

/* Does /proc/<name>/stat (dfd = /proc) describe a process of group pgid
 * that is not a zombie? A process that vanished meanwhile is not. */
static bool child_proc_live_in(int dfd, const char *name, pid_t pgid)
{
	char path[48], st[512];
	size_t pos = 0;
	ssize_t n;
	int fd;
	char *p = NULL, state;
	long long grp = 0;

	child_put(path, sizeof(path), &pos, name);
	child_put(path, sizeof(path), &pos, "/stat");
	path[pos] = '\0';
	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT && errno != ESRCH; /* unknown counts as live */
	n = read(fd, st, sizeof(st) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 && errno != ESRCH;
	st[n] = '\0';
	/* "pid (comm) state ppid pgrp ...": comm may hold spaces and ')' */
	for (ssize_t i = 0; i < n; i++)
		if (st[i] == ')')
			p = st + i;
	if (!p || p + 4 >= st + n)
		return true;
	state = p[2];
	p += 3;
	while (*p == ' ')
		p++;
	while (*p && *p != ' ') /* ppid */
		p++;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return true;
	while (*p >= '0' && *p <= '9')
		grp = grp * 10 + (*p++ - '0');
	return grp == pgid && state != 'Z' && state != 'X' && state != 'x';
}

/* Does a process of group pgid still run (zombies do not count: they run
 * no code)? kill(-pgid, 0) counts zombies, which a slow init leaves for a
 * while, so when it finds any, /proc is read with raw system calls. Cannot
 * tell = true. */
static bool child_group_live(pid_t pgid)
{
	union {
		char buf[4096];
		uint64_t align;
	} u;
	bool live = false;
	int dfd;

	if (kill(-pgid, 0) != 0 && errno == ESRCH)
		return false;
	dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return true;
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, u.buf, sizeof(u.buf));

		if (n <= 0) {
			live = live || n < 0;
			break;
		}
		for (long off = 0; off < n && !live;) {
			/* struct linux_dirent64: ino, off, reclen, type, name */
			unsigned short reclen;
			const char *name = u.buf + off + 19;

			memcpy(&reclen, u.buf + off + 16, sizeof(reclen));
			if (reclen == 0)
				break;
			off += reclen;
			if (name[0] >= '1' && name[0] <= '9')
				live = child_proc_live_in(dfd, name, pgid);
		}
		if (live)
			break;
	}
	close(dfd);
	return live;
}

/* The pre-started revoker (fence.h): a child of the fence running
 * `baton --revoker --agent PID --revoke-lease HEX -c CONFIG`, its
 * FENCE_REVOKER_FD the read end of a pipe whose write end is rv_fd, its
 * stdin /dev/null. -1/0 = none; rv_lease: the lease it was started for;
 * rv_retry_at: not before then (ns). */
static int rv_fd = -1;
static pid_t rv_pid;
static int64_t rv_lease;
static int64_t rv_retry_at;

/* Starts the pre-started revoker (once the agent names a leader lease: a
 * fence that never guarded a leader needs none). Async-signal-safe: the
 * fence is single-threaded, so fork() here is an ordinary fork. On failure, tries
 * again FENCE_REVOKER_RETRY later. */
static void child_spawn_revoker(int64_t now, int64_t lease)
{
	int p[2];
	pid_t pid;
	char agent[24], hex[24];
	size_t pa = 0, ph = 0;

	child_put_num(agent, sizeof(agent), &pa, fence_agent_pid);
	agent[pa] = '\0';
	child_put_hex(hex, sizeof(hex), &ph, (uint64_t)lease);
	hex[ph] = '\0';

	rv_retry_at = now + (int64_t)(FENCE_REVOKER_RETRY * (double)NS);
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		char *argv[] = { revoke_exe, "--revoker", "--agent",   agent, "--revoke-lease",
			         hex,        "-c",        revoke_conf, NULL };
		int nul;

		/* The pipe is its FENCE_REVOKER_FD; dup2 clears close-on-exec
		 * (unless it already is that fd). Its stdin is /dev/null. */
		if (p[0] == FENCE_REVOKER_FD)
			(void)fcntl(p[0], F_SETFD, 0);
		else if (dup2(p[0], FENCE_REVOKER_FD) != FENCE_REVOKER_FD)
			_exit(127);
		nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul < 0 || dup2(nul, STDIN_FILENO) != STDIN_FILENO)
			_exit(127);
		execve(revoke_exe, argv, environ);
		_exit(127);
	}
	close(p[0]);
	rv_fd = p[1];
	rv_pid = pid;
	rv_lease = lease;
}

/* The agent named another leader lease than the pre-started revoker was
 * started for: end that one (it would refuse the new lease) so that the
 * loop starts one for the new lease at once. */
static void child_retire_revoker(int64_t now)
{
	int st;

	close(rv_fd);
	rv_fd = -1;
	(void)kill(rv_pid, SIGKILL);
	while (waitpid(rv_pid, &st, 0) < 0 && errno == EINTR)
		;
	rv_pid = 0;
	rv_retry_at = now;
}

/* The pre-started revoker closed its stdin (it exited): reap it, say so,
 * and start another FENCE_REVOKER_RETRY later (not in a hot loop when,
 * say, the config file went bad). */
static void child_revoker_lost(void)
{
	int st;

	close(rv_fd);
	rv_fd = -1;
	if (waitpid(rv_pid, &st, WNOHANG) == 0) {
		(void)kill(rv_pid, SIGKILL);
		while (waitpid(rv_pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	child_say("the pre-started lease revoker ", rv_pid, NULL, 0,
	          " exited; starting another later (until then an agent crash revokes through a new process)");
	rv_pid = 0;
}

/* Hands the revoke to the pre-started revoker: one line on its stdin,
 * "revoke <lease hex> <postmaster> <since ns>\n", then waits (bounded) for
 * its exit. True when it exited 0 (revoked, or the lease was already gone);
 * false when it could not be handed over or failed, and the caller falls
 * back to a fresh revoker (the revoke is idempotent). */
static bool child_ask_revoker(pid_t pm, int64_t lease, int64_t since)
{
	char line[96];
	size_t pos = 0;
	int64_t until;
	int st;

	if (rv_fd < 0)
		return false;
	child_put(line, sizeof(line), &pos, "revoke ");
	child_put_hex(line, sizeof(line), &pos, (uint64_t)lease);
	child_put(line, sizeof(line), &pos, " ");
	child_put_num(line, sizeof(line), &pos, pm);
	child_put(line, sizeof(line), &pos, " ");
	child_put_num(line, sizeof(line), &pos, since);
	child_put(line, sizeof(line), &pos, "\n");
	/* One write of less than PIPE_BUF is atomic; SIGPIPE is ignored here,
	 * so a revoker that is gone makes this EPIPE. */
	if (write(rv_fd, line, pos) != (ssize_t)pos)
		return false;
	close(rv_fd);
	rv_fd = -1;
	until = clk_mono_ns() + (int64_t)((FENCE_REVOKER_BUDGET + 0.5) * (double)NS);
	for (;;) {
		pid_t w = waitpid(rv_pid, &st, WNOHANG);

		if (w == rv_pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (w < 0 && errno != EINTR)
			return false;
		if (clk_mono_ns() >= until) {
			(void)kill(rv_pid, SIGKILL);
			return false;
		}
		{
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
}

/* The agent died while it held the leader key and its postmaster is now
 * certainly gone with its whole process group: run the revoker, which
 * replaces this process. Returns only when exec failed (said on stderr). */
static void child_exec_revoker(pid_t pm, int64_t lease, int64_t since)
{
	char hex[24], pid[24], ns[24], agent[24];
	size_t ph = 0, pp = 0, pn = 0, pa = 0;
	char *argv[] = { revoke_exe, "--revoke-lease", hex,   "--postmaster", pid,         "--since",
		         ns,         "--agent",        agent, "-c",           revoke_conf, NULL };
	char line[PATH_MAX + 200];
	size_t pos = 0;
	int e;
	ssize_t unused;

	child_put_hex(hex, sizeof(hex), &ph, (uint64_t)lease);
	hex[ph] = '\0';
	child_put_num(pid, sizeof(pid), &pp, pm);
	pid[pp] = '\0';
	child_put_num(ns, sizeof(ns), &pn, since);
	ns[pn] = '\0';
	child_put_num(agent, sizeof(agent), &pa, fence_agent_pid);
	agent[pa] = '\0';
	execve(revoke_exe, argv, environ);
	e = errno;
	if (fence_journal)
		child_put(line, sizeof(line), &pos, "<3>");
	child_put_stamp(line, sizeof(line), &pos);
	child_put(line, sizeof(line), &pos, " ERROR baton fence process: cannot run ");
	child_put(line, sizeof(line), &pos, revoke_exe);
	child_put(line, sizeof(line), &pos, " to revoke leader lease ");
	child_put_hex(line, sizeof(line), &pos, (uint64_t)lease);
	child_put(line, sizeof(line), &pos, " (errno ");
	child_put_num(line, sizeof(line), &pos, e);
	child_put(line, sizeof(line), &pos, "): the lease will expire by itself within ttl\n");
	unused = write(STDERR_FILENO, line, pos);
	(void)unused;
}

/* The agent is gone: fence now, wait for the exit (bounded), escalate.
 * closed: the socket closed without a goodbye (the agent died), as opposed
 * to a poll() failure, where the agent may still live: only then may the
 * leader lease be revoked, and only once fence_revoke_certain says so. */
static void __attribute__((noreturn)) child_agent_gone(int sock, struct child_target *t, bool closed)
{
	int64_t since = clk_mono_ns();
	struct fence_revoke_facts facts = {
		.agent_gone = closed, .lease = t->lease, .postmaster = t->pid, .own_group = t->own_group
	};

	if (t->pid > 0) {
		int64_t now = since, until;

		if (!t->fired) {
			t->deadline = now;
			if (closed && t->lease > 0 && revoke_exe[0] && t->own_group)
				child_kill_for_handover(t, now);
			else
				child_fire(sock, t, now, true);
		}
		while (t->pid > 0 && !child_exited(t) && (now = clk_mono_ns()) < t->kill_at) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		/* (The postmaster may have exited before the SIGQUIT, e.g. by its
		 * parent-death signal: child_fire then dropped the target, and
		 * facts.postmaster still names it for the checks below.) */
		if (closed && facts.lease > 0 && revoke_exe[0] && !facts.own_group)
			child_say("postmaster ", facts.postmaster, NULL, 0,
			          " did not lead its own process group: cannot be sure all of it is gone, so not revoking "
			          "the leader lease; it will expire by itself within ttl");
		if (!closed || facts.lease <= 0 || !revoke_exe[0] || !facts.own_group) {
			if (t->pid > 0)
				child_escalate(sock, t);
			_exit(0);
		}
		if (t->pid > 0 && !child_exited(t)) {
			(void)kill(-t->pid, SIGKILL);
			(void)child_signal(t, SIGKILL);
			child_say("postmaster ", t->pid, NULL, 0,
			          " did not exit after SIGQUIT: SIGKILL to it and its process group");
		}
		/* Certainty, bounded: the postmaster exited and its group is empty. */
		until = clk_mono_ns() + (int64_t)(FENCE_REVOKE_WAIT * (double)NS);
		for (;;) {
			/* a dropped target: its signal said ESRCH, it has exited */
			facts.postmaster_exited = t->pid <= 0 || child_exited(t);
			if (facts.postmaster_exited) {
				(void)kill(-facts.postmaster, SIGKILL); /* backends it left behind */
				facts.group_live = child_group_live(facts.postmaster);
			}
			if (fence_revoke_certain(&facts)) {
				if (!child_ask_revoker(facts.postmaster, facts.lease, since))
					child_exec_revoker(facts.postmaster, facts.lease, since);
				break;
			}
			if (clk_mono_ns() >= until) {
				child_say(
				        "the agent is gone but postmaster ", facts.postmaster,
				        facts.postmaster_exited
				                ? " has exited while a process of its group still runs after "
				                : " has not exited after ",
				        (long long)(FENCE_REVOKE_WAIT * 1000),
				        " ms more: not revoking the leader lease; it will expire by itself within ttl");
				break;
			}
			{
				struct timespec ts = { 0, 5 * 1000 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
		child_drop(t);
	}
	_exit(0);
}

/* Takes every queued message. False when the agent closed the socket. */
static bool child_receive(int sock, struct child_target *t)
{
	for (;;) {
		struct fence_msg m;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} c;
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
		struct msghdr h = {
			.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)
		};
		struct cmsghdr *cm;
		int fd = -1;
		ssize_t n = recvmsg(sock, &h, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		cm = CMSG_FIRSTHDR(&h);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if ((size_t)n != sizeof(m) || (h.msg_flags & MSG_TRUNC)) {
			if (fd >= 0)
				close(fd);
			continue; /* not ours: ignore */
		}
		if (m.type == MSG_BYE) {
			if (fd >= 0)
				close(fd);
			child_drop(t); /* the agent stops Postgres itself */
			_exit(0);
		}
		if (m.type != MSG_SET) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (m.pid <= 0) {
			child_drop(t);
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (m.new_target || m.pid != t->pid) {
			child_drop(t);
			t->pid = m.pid;
			t->pidfd = fd;
			/* pg_spawn makes the postmaster a group leader; if it is not,
			 * its group is not "everything it started": never revoke. */
			t->own_group = getpgid(m.pid) == m.pid;
		} else if (fd >= 0) {
			close(fd);
		}
		t->deadline = m.deadline_ns;
		t->lease = m.lease;
	}
}

static void __attribute__((noreturn)) child_main(int sock)
{
	struct child_target t = { .pid = 0, .pidfd = -1 };
	struct sigaction sa;
	static const int ignored[] = { SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGTSTP,
		                       SIGTTIN, SIGTTOU, SIGPIPE, SIGUSR1, SIGUSR2 };
	sigset_t none;

	/* The agent's handlers write into the agent's memory and pipes: reset
	 * every disposition, then ignore what must not end us (see fence.h). */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		(void)sigaction(ignored[i], &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)setpgid(0, 0);
	(void)prctl(PR_SET_NAME, "baton-fence", 0, 0, 0);
	/* Keep stdin/out/err (the agent's log) and the socket only: etcd
	 * connections, the REST API's listening socket and the wake pipe
	 * belong to the agent. */
	if (sock > 3)
		(void)close_range(3, (unsigned)sock - 1, 0);
	(void)close_range((unsigned)sock + 1, ~0U, 0);

	for (;;) {
		struct pollfd p[3];
		int64_t now = clk_mono_ns(), next = -1;
		int timeout, np = 1;

		if (t.pid > 0 && !t.fired && now >= t.deadline)
			child_fire(sock, &t, now, false);
		if (t.pid > 0 && t.fired && (now >= t.kill_at || child_exited(&t)))
			child_escalate(sock, &t);
		if (t.pid > 0)
			next = t.fired ? t.kill_at : t.deadline;
		if (rv_fd >= 0 && t.lease > 0 && t.lease != rv_lease)
			child_retire_revoker(now);
		if (revoke_exe[0] && rv_fd < 0 && t.lease > 0) {
			if (now >= rv_retry_at)
				child_spawn_revoker(now, t.lease);
			if (rv_fd < 0 && (next < 0 || rv_retry_at < next))
				next = rv_retry_at;
		}
		if (next < 0) {
			timeout = -1;
		} else {
			int64_t ms = (next - now + 999999) / 1000000; /* round up: never wake early */
			timeout = ms > INT_MAX ? INT_MAX : ms < 0 ? 0 : (int)ms;
		}
		p[0] = (struct pollfd){ .fd = sock, .events = POLLIN };
		if (t.pid > 0 && t.fired && t.pidfd >= 0)
			p[np++] = (struct pollfd){ .fd = t.pidfd, .events = POLLIN };
		if (rv_fd >= 0) /* a pipe's write end reports POLLERR once its reader is gone */
			p[np++] = (struct pollfd){ .fd = rv_fd, .events = 0 };
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			child_agent_gone(sock, &t, false); /* cannot wait: treat as lost */
		if (rv_fd >= 0 && p[np - 1].fd == rv_fd && (p[np - 1].revents & (POLLERR | POLLHUP)))
			child_revoker_lost();
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !child_receive(sock, &t))
			child_agent_gone(sock, &t, true);
	}
}

/* ---- the agent's side --------------------------------------------------- */

bool fence_set_revoker(const char *exe, const char *config_path, char *err, size_t errlen)
{
	char conf[PATH_MAX];
	ssize_t n;

	if (exe) {
		n = (ssize_t)strlen(exe);
		if ((size_t)n >= sizeof(revoke_exe)) {
			snprintf(err, errlen, "fence process: revoker path %.100s... is too long", exe);
			return false;
		}
		memcpy(revoke_exe, exe, (size_t)n + 1);
	} else {
		n = readlink("/proc/self/exe", revoke_exe, sizeof(revoke_exe) - 1);
		if (n <= 0 || (size_t)n >= sizeof(revoke_exe) - 1) {
			snprintf(err, errlen, "fence process: cannot read /proc/self/exe: %s",
			         n < 0 ? strerror(errno) : "path too long");
			revoke_exe[0] = '\0';
			return false;
		}
		revoke_exe[n] = '\0';
	}
	if (!realpath(config_path, conf)) {
		snprintf(err, errlen, "fence process: config file %s: %s", config_path, strerror(errno));
		revoke_exe[0] = '\0';
		return false;
	}
	memcpy(revoke_conf, conf, sizeof(revoke_conf));
	return true;
}

struct fence *fence_start(char *err, size_t errlen)
{
	struct fence *f = calloc(1, sizeof(*f));
	int sv[2];

	if (!f) {
		snprintf(err, errlen, "fence process: out of memory");
		return NULL;
	}
	{
		time_t now = time(NULL);
		struct tm tm;

		fence_utc_offset = localtime_r(&now, &tm) ? tm.tm_gmtoff : 0;
		fence_journal = log_journal_prefix();
	}
	fence_agent_pid = getpid();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "fence process: socketpair: %s", strerror(errno));
		free(f);
		return NULL;
	}
	f->pid = fork();
	if (f->pid < 0) {
		snprintf(err, errlen, "fence process: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(f);
		return NULL;
	}
	if (f->pid == 0)
		child_main(sv[1]);
	close(sv[1]);
	f->sock = sv[0];
	if (fcntl(f->sock, F_SETFL, O_NONBLOCK) != 0) {
		snprintf(err, errlen, "fence process: fcntl: %s", strerror(errno));
		fence_stop(f);
		return NULL;
	}
	return f;
}

bool fence_update(struct fence *f, pid_t pid, int pidfd, double deadline, int64_t lease, char *err, size_t errlen)
{
	int64_t dl = deadline > 0 ? (int64_t)(deadline * (double)NS) : 0;
	bool new_target = !f->sent_any || pid != f->sent_pid;
	struct fence_msg m = { .type = MSG_SET,
		               .new_target = new_target,
		               .pid = pid,
		               .deadline_ns = pid > 0 ? dl : 0,
		               .lease = pid > 0 && lease > 0 ? lease : 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (f->sent_any && pid == f->sent_pid && m.deadline_ns == f->sent_deadline && m.lease == f->sent_lease)
		return true;
	if (new_target && pid > 0 && pidfd >= 0) {
		struct cmsghdr *cm;

		memset(&c, 0, sizeof(c));
		h.msg_control = c.buf;
		h.msg_controllen = sizeof(c.buf);
		cm = CMSG_FIRSTHDR(&h);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pidfd, sizeof(int));
	}
	do
		n = sendmsg(f->sock, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m)) {
		snprintf(err, errlen, "cannot reach the fence process %d: %s", (int)f->pid,
		         n < 0 ? strerror(errno) : "short write");
		return false;
	}
	f->sent_any = true;
	f->sent_pid = pid;
	f->sent_deadline = m.deadline_ns;
	f->sent_lease = m.lease;
	return true;
}

bool fence_next_report(struct fence *f, struct fence_report *r)
{
	struct fence_wire_report w;
	ssize_t n;

	do
		n = recv(f->sock, &w, sizeof(w), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(w))
		return false;
	r->kind = (enum fence_report_kind)w.kind;
	r->pid = w.pid;
	r->late = (double)w.late_ns / (double)NS;
	r->at = (double)w.at_ns / (double)NS;
	return true;
}

bool fence_check(struct fence *f, char *why, size_t whylen)
{
	int st;
	pid_t w;

	if (f->pid <= 0) {
		snprintf(why, whylen, "already reaped");
		return false;
	}
	w = waitpid(f->pid, &st, WNOHANG);
	if (w == 0)
		return true;
	if (w < 0) {
		snprintf(why, whylen, "waitpid: %s", strerror(errno));
	} else if (WIFSIGNALED(st)) {
		snprintf(why, whylen, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	} else {
		snprintf(why, whylen, "exited with status %d", WEXITSTATUS(st));
	}
	f->pid = 0;
	return false;
}

pid_t fence_pid(const struct fence *f)
{
	return f->pid;
}

void fence_stop(struct fence *f)
{
	struct fence_msg m = { .type = MSG_BYE };

	if (!f)
		return;
	if (f->pid > 0) {
		int st;
		pid_t w = 0;

		(void)send(f->sock, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
		for (int i = 0; i < 100 && (w = waitpid(f->pid, &st, WNOHANG)) == 0; i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (w == 0) {
			kill(f->pid, SIGKILL);
			while (waitpid(f->pid, &st, 0) < 0 && errno == EINTR)
				;
		}
	}
	close(f->sock);
	free(f);
}
