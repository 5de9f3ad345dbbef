/*
 * callbacks.c - runs postgresql.callbacks scripts as supervised children.
 *
 * Each started script is a `struct cb_proc` on the runner's list: its pid
 * (also its process group, so that killing reaches what the script started),
 * the non-blocking read end of the pipe its stdout and stderr go to, and a
 * line buffer. Nothing here waits for a script: cb_poll reads what is
 * there, waitpid(pid, WNOHANG)s each one, and kills the overdue. The only
 * pause is the kill itself, bounded by CB_TERM_GRACE.
 *
 * A proc stays on the list until it is reaped: a killed script that has not
 * been reaped yet no longer counts as the action's run (a new one may
 * start), but it is still reaped and its end logged, so no zombie is left.
 *
 * The output of a run is logged line by line up to CB_LOG_MAX bytes; past
 * that it is still read (so the script never blocks on a full pipe) and
 * dropped. A line longer than the buffer is logged in pieces.
 */
#include "agent/callbacks.h"

#include "agent/clock.h"
#include "agent/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CB_LINE_MAX 1024              /* a longer line is logged in pieces */
#define CB_READ_PER_POLL (256 * 1024) /* bounds one poll's work per script */

struct cb_proc {
	struct cb_proc *next;
	enum cb_action action;
	pid_t pid;       /* also the process group id */
	int fd;          /* read end of the output pipe, -1 once closed */
	double started;  /* monotonic seconds */
	bool killed;     /* SIGKILL sent; waiting to be reaped */
	const char *why; /* why it was killed (static text), NULL if not */
	char role[32];
	char line[CB_LINE_MAX];
	size_t linelen;
	size_t logged;  /* output bytes logged so far */
	bool truncated; /* CB_LOG_MAX reached: the rest is dropped */
};

struct cb_runner {
	char *script[CB_N_ACTIONS];
	char *scope;
	double timeout;
	struct cb_proc *procs;
};

static const char *const action_names[CB_N_ACTIONS] = {
	[CB_ON_START] = "on_start",
	[CB_ON_STOP] = "on_stop",
	[CB_ON_ROLE_CHANGE] = "on_role_change",
	[CB_ON_RELOAD] = "on_reload",
};

const char *cb_action_name(enum cb_action action)
{
	if ((int)action < 0 || action >= CB_N_ACTIONS)
		return "?";
	return action_names[action];
}

struct cb_runner *cb_new(const struct config_callbacks *cbs, const char *scope, double timeout)
{
	struct cb_runner *r = calloc(1, sizeof(*r));
	const char *scripts[CB_N_ACTIONS] = { NULL };

	if (r == NULL)
		return NULL;
	if (cbs != NULL) {
		scripts[CB_ON_START] = cbs->on_start;
		scripts[CB_ON_STOP] = cbs->on_stop;
		scripts[CB_ON_ROLE_CHANGE] = cbs->on_role_change;
		scripts[CB_ON_RELOAD] = cbs->on_reload;
	}
	for (int i = 0; i < CB_N_ACTIONS; i++) {
		if (scripts[i] == NULL)
			continue;
		r->script[i] = strdup(scripts[i]);
		if (r->script[i] == NULL)
			goto fail;
	}
	r->scope = strdup(scope != NULL ? scope : "");
	if (r->scope == NULL)
		goto fail;
	r->timeout = timeout > 0 ? timeout : CB_DEFAULT_TIMEOUT;
	return r;

fail:
	cb_free(r);
	return NULL;
}

pid_t cb_running(const struct cb_runner *r, enum cb_action action)
{
	if (r == NULL)
		return 0;
	for (const struct cb_proc *p = r->procs; p != NULL; p = p->next)
		if (p->action == action && !p->killed)
			return p->pid;
	return 0;
}

/* ---- output ---- */

static void emit_line(struct cb_proc *p)
{
	const char *name = cb_action_name(p->action);

	if (p->truncated) {
		p->linelen = 0;
		return;
	}
	if (p->logged + p->linelen > CB_LOG_MAX) {
		p->truncated = true;
		p->linelen = 0;
		log_info("callback %s: (output truncated)", name);
		return;
	}
	if (p->linelen > 0)
		log_info("callback %s: %.*s", name, (int)p->linelen, p->line);
	p->logged += p->linelen + 1;
	p->linelen = 0;
}

/* No terminal escapes or carriage returns from a script reach the log. */
static char printable(char c)
{
	if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f)
		return '?';
	return c;
}

static void feed(struct cb_proc *p, const char *data, size_t n)
{
	for (size_t i = 0; i < n && !p->truncated; i++) {
		if (data[i] == '\n') {
			emit_line(p);
			continue;
		}
		p->line[p->linelen++] = printable(data[i]);
		if (p->linelen == sizeof(p->line))
			emit_line(p);
	}
}

static void close_output(struct cb_proc *p)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
}

/* Reads what the pipe holds now (bounded), logging complete lines; at end
 * of file logs the last partial line and closes the pipe. */
static void drain(struct cb_proc *p)
{
	char buf[4096];
	size_t total = 0;

	while (p->fd >= 0 && total < CB_READ_PER_POLL) {
		ssize_t n = read(p->fd, buf, sizeof(buf));

		if (n > 0) {
			feed(p, buf, (size_t)n);
			total += (size_t)n;
		} else if (n == 0) {
			if (p->linelen > 0)
				emit_line(p);
			close_output(p);
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_warn("callback %s: cannot read its output: %s", cb_action_name(p->action),
				         strerror(errno));
				close_output(p);
			}
			break;
		}
	}
}

/* ---- ending ---- */

static void unlink_proc(struct cb_runner *r, struct cb_proc *p)
{
	for (struct cb_proc **pp = &r->procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	close_output(p);
	free(p);
}

/* p has been reaped with wait status st: logs the rest of its output and
 * how it ended, and forgets it. */
static void finish(struct cb_runner *r, struct cb_proc *p, int st)
{
	const char *name = cb_action_name(p->action);
	double took = clk_mono() - p->started;

	/* Whatever it wrote before it ended is in the pipe now. Someone it
	 * started may still hold the pipe open: do not wait for end of file. */
	drain(p);
	if (p->linelen > 0)
		emit_line(p);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("callback %s %s %s: exited with status 0 after %.1fs", name, p->role, r->scope, took);
	else if (WIFEXITED(st))
		log_warn("callback %s %s %s: exited with status %d after %.1fs%s", name, p->role, r->scope,
		         WEXITSTATUS(st), took, WEXITSTATUS(st) == 127 ? " (could not be executed?)" : "");
	else if (WIFSIGNALED(st))
		log_warn("callback %s %s %s: killed by signal %d (%s) after %.1fs%s%s", name, p->role, r->scope,
		         WTERMSIG(st), strsignal(WTERMSIG(st)), took, p->why != NULL ? ", " : "",
		         p->why != NULL ? p->why : "");
	else
		log_warn("callback %s %s %s: ended with wait status 0x%x", name, p->role, r->scope, (unsigned)st);
	unlink_proc(r, p);
}

/* SIGTERM to p's process group, up to CB_TERM_GRACE seconds for p to exit,
 * then SIGKILL. True (with *st) if p was reaped meanwhile; otherwise it is
 * marked killed and a later cb_poll reaps it. Idempotent. */
static bool kill_proc(struct cb_proc *p, const char *why, int *st)
{
	double deadline;

	p->why = why;
	if (p->killed)
		return false;
	/* p is not reaped, so its process group id cannot have been reused. */
	if (kill(-p->pid, SIGTERM) != 0)
		(void)kill(p->pid, SIGTERM); /* not yet its own group leader */
	deadline = clk_mono() + CB_TERM_GRACE;
	do {
		pid_t w = waitpid(p->pid, st, WNOHANG);

		if (w == p->pid)
			return true;
		if (w < 0 && errno != EINTR) {
			/* Reaped elsewhere: its group id may be reused, send nothing
			 * more; cb_poll reports it. */
			p->killed = true;
			return false;
		}
		clk_sleep(0.005);
	} while (clk_mono() < deadline);
	if (kill(-p->pid, SIGKILL) != 0)
		(void)kill(p->pid, SIGKILL);
	p->killed = true;
	return waitpid(p->pid, st, WNOHANG) == p->pid;
}

int cb_poll(struct cb_runner *r)
{
	struct cb_proc *p, *next;
	int running = 0;

	if (r == NULL)
		return 0;
	for (p = r->procs; p != NULL; p = next) {
		const char *name = cb_action_name(p->action);
		int st = 0;
		pid_t w;

		next = p->next;
		drain(p);
		do
			w = waitpid(p->pid, &st, WNOHANG);
		while (w < 0 && errno == EINTR);
		if (w == p->pid) {
			finish(r, p, st);
			continue;
		}
		if (w < 0) {
			/* Someone reaped it with waitpid(-1): see callbacks.h. */
			log_warn("callback %s: lost track of pid %d: %s", name, (int)p->pid, strerror(errno));
			unlink_proc(r, p);
			continue;
		}
		if (!p->killed && clk_mono() - p->started >= r->timeout) {
			log_warn("callback %s %s %s: still running after the %gs timeout, killing it "
			         "(pid %d)",
			         name, p->role, r->scope, r->timeout, (int)p->pid);
			if (kill_proc(p, "timed out", &st)) {
				finish(r, p, st);
				continue;
			}
		}
		running++;
	}
	return running;
}

/* ---- starting ---- */

/* Moves fd above 0..2 so that the child's dup2 onto its stdio cannot clobber
 * it. Returns the fd to use (close-on-exec), or -1. */
static int above_stdio(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

/* Decimal of a non-negative int into buf, async-signal-safe. */
static size_t fmt_uint(char *buf, size_t len, unsigned v)
{
	char tmp[16];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < sizeof(tmp));
	for (i = 0; i < n && i < len; i++)
		buf[i] = tmp[n - 1 - i];
	return i;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child_exec(char *const argv[], int devnull, int out, int maxfd)
{
	struct sigaction dfl;
	sigset_t none;
	static const char prefix[] = "cannot execute the script: errno ";
	char msg[64];
	size_t n;
	int err;

	(void)setpgid(0, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL); /* ignored ones (SIGPIPE) survive exec */
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
		_exit(126);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
		for (int fd = 3; fd < maxfd; fd++)
			(void)close(fd);
	execv(argv[0], argv);
	err = errno;
	memcpy(msg, prefix, sizeof(prefix) - 1);
	n = sizeof(prefix) - 1;
	n += fmt_uint(msg + n, sizeof(msg) - n - 1, (unsigned)err);
	msg[n++] = '\n';
	(void)!write(STDERR_FILENO, msg, n);
	_exit(127);
}

bool cb_fire(struct cb_runner *r, enum cb_action action, const char *role)
{
	const char *name = cb_action_name(action);
	struct cb_proc *p = NULL;
	char *argv[5];
	int pipefd[2] = { -1, -1 }, devnull = -1, st = 0;
	long maxfd;
	pid_t pid;
	bool ok = false;

	if (r == NULL || (int)action < 0 || action >= CB_N_ACTIONS)
		return false;
	if (r->script[action] == NULL)
		return true;
	if (role == NULL)
		role = "";

	/* The newer event wins: its script must not race an older one. */
	for (struct cb_proc *q = r->procs, *next; q != NULL; q = next) {
		next = q->next;
		if (q->action != action || q->killed)
			continue;
		log_warn("callback %s %s %s: superseded by %s %s, killing it (pid %d)", name, q->role, r->scope, name,
		         role, (int)q->pid);
		if (kill_proc(q, "superseded", &st))
			finish(r, q, st);
	}

	argv[0] = r->script[action];
	argv[1] = (char *)name;
	argv[2] = (char *)role;
	argv[3] = r->scope;
	argv[4] = NULL;

	devnull = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (devnull < 0) {
		log_error("callback %s: cannot open /dev/null: %s", name, strerror(errno));
		goto cleanup;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		log_error("callback %s: cannot create a pipe: %s", name, strerror(errno));
		goto cleanup;
	}
	pipefd[0] = above_stdio(pipefd[0]);
	pipefd[1] = above_stdio(pipefd[1]);
	if (pipefd[0] < 0 || pipefd[1] < 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0) {
		log_error("callback %s: cannot set up its output pipe: %s", name, strerror(errno));
		goto cleanup;
	}
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;

	pid = fork();
	if (pid < 0) {
		log_error("callback %s: fork failed: %s", name, strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		child_exec(argv, devnull, pipefd[1], (int)maxfd);
	/* Both sides set the group, so a kill right after fork reaches it. */
	(void)setpgid(pid, pid);
	/* Allocated after fork so that the child holds no heap block of its
	 * own (valgrind counts one as lost when exec fails). */
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		log_error("callback %s: out of memory, killing it (pid %d)", name, (int)pid);
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		goto cleanup;
	}
	p->action = action;
	snprintf(p->role, sizeof(p->role), "%s", role);
	p->pid = pid;
	p->fd = pipefd[0];
	pipefd[0] = -1;
	p->started = clk_mono();
	p->next = r->procs;
	r->procs = p;
	p = NULL;
	log_info("callback %s %s %s: started %s (pid %d)", name, role, r->scope, r->script[action], (int)pid);
	ok = true;

cleanup:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (devnull >= 0)
		close(devnull);
	free(p);
	return ok;
}

void cb_free(struct cb_runner *r)
{
	if (r == NULL)
		return;
	while (r->procs != NULL) {
		struct cb_proc *p = r->procs;
		int st = 0;
		double deadline;

		drain(p);
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			finish(r, p, st);
			continue;
		}
		if (!p->killed)
			log_warn("callback %s %s %s: still running as the agent stops, killing it "
			         "(pid %d)",
			         cb_action_name(p->action), p->role, r->scope, (int)p->pid);
		if (kill_proc(p, "agent stopping", &st)) {
			finish(r, p, st);
			continue;
		}
		/* SIGKILLed: it ends as soon as the kernel runs it. Bounded, in
		 * case it sits in uninterruptible sleep. */
		deadline = clk_mono() + 1.0;
		for (;;) {
			pid_t w = waitpid(p->pid, &st, WNOHANG);

			if (w == p->pid) {
				finish(r, p, st);
				break;
			}
			if ((w < 0 && errno != EINTR) || clk_mono() >= deadline) {
				log_warn("callback %s: pid %d not reaped after SIGKILL (%s); leaving it",
				         cb_action_name(p->action), (int)p->pid,
				         w < 0 ? strerror(errno) : "still there");
				unlink_proc(r, p);
				break;
			}
			if (w == 0)
				clk_sleep(0.005);
		}
	}
	for (int i = 0; i < CB_N_ACTIONS; i++)
		free(r->script[i]);
	free(r->scope);
	free(r);
}
