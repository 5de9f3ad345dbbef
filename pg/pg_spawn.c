/*
 * pg_spawn.c - fork and exec of the Postgres programs (see pg_spawn.h).
 *
 * The agent is multi-threaded, so between fork() and execve() the child
 * only makes async-signal-safe system calls: everything that allocates
 * (the environment, the log file, the command line for the log) is prepared
 * by the parent before forking.
 *
 * The child calls setpgid(0, 0) so that the whole tree it starts (a
 * postmaster and its backends, pg_basebackup and its WAL streamer) can be
 * signalled as one group; the parent calls setpgid() too, which closes the
 * race with a kill of the group issued right after fork. PR_SET_PDEATHSIG
 * makes the kernel signal the child when the thread that forked it dies;
 * since the parent may die before prctl() runs, the child then checks that
 * its parent is still the one that forked it, and gives up if not.
 */
#include "pg/pg_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

bool pg_path_join(char *buf, size_t len, const char *dir, const char *name, struct pg_err *err)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= len) {
		pg_err_set(err, "path too long: %s/%s", dir, name);
		return false;
	}
	return true;
}

/* The command line for the log: arguments separated by spaces, single-quoted
 * when they contain a space or a quote; an argument that holds "password="
 * is masked whole. Truncated (with "...") when it does not fit. */
static void format_cmdline(const char *const *argv, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; argv[i] != NULL; i++) {
		const char *a = argv[i];
		bool quote = strpbrk(a, " '\"\t") != NULL || a[0] == '\0';
		int n;

		if (strstr(a, "password=") != NULL)
			a = "<argument with a password hidden>";
		n = snprintf(buf + pos, len - pos, "%s%s%s%s", i > 0 ? " " : "", quote ? "'" : "", a, quote ? "'" : "");
		if (n < 0 || (size_t)n >= len - pos) {
			if (len > 4)
				memcpy(buf + len - 4, "...", 4);
			return;
		}
		pos += (size_t)n;
	}
}

/* Variables systemd gives the service's main process only (sd_notify(3),
 * sd_watchdog_enabled(3)). Postgres (built with systemd support) would
 * otherwise send READY=1 on that socket itself, which systemd refuses under
 * NotifyAccess=main with a warning at every start, and which would be taken
 * for the agent's own message under NotifyAccess=all. */
static bool for_main_process_only(const char *var, size_t name_len)
{
	static const char *const names[] = { "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == name_len && strncmp(var, names[i], name_len) == 0)
			return true;
	return false;
}

/* A NULL-terminated copy of environ (the strings are shared, not copied)
 * where every entry of set replaces the variable of the same name, without
 * the variables meant for the agent alone (for_main_process_only). The
 * array is malloc'ed; NULL when out of memory. */
static char **build_env(const char *const *set)
{
	size_t n_env = 0, n_set = 0, k = 0;
	char **envp;

	while (environ != NULL && environ[n_env] != NULL)
		n_env++;
	while (set != NULL && set[n_set] != NULL)
		n_set++;
	envp = calloc(n_env + n_set + 1, sizeof(*envp));
	if (envp == NULL)
		return NULL;
	for (size_t i = 0; i < n_env; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t name_len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool replaced = false;

		for (size_t j = 0; j < n_set && !replaced; j++)
			replaced = strncmp(set[j], environ[i], name_len) == 0 && set[j][name_len] == '=';
		if (!replaced && !for_main_process_only(environ[i], name_len))
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < n_set; j++)
		envp[k++] = (char *)set[j];
	envp[k] = NULL;
	return envp;
}

/* A descriptor >= 3 (so that dup2 onto 0..2 never hits itself), with
 * FD_CLOEXEC. Closes fd when it had to move it. -1 on error. */
static int above_stdio(int fd)
{
	int moved;

	if (fd >= 3)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

static void child_fail(const char *msg)
{
	ssize_t unused = write(STDERR_FILENO, msg, strlen(msg));

	(void)unused;
	_exit(127);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child_exec(const struct pg_spawn_opts *o, char **envp, int in_fd, int out_fd, pid_t parent, int max_fd)
{
	struct sigaction sa;
	sigset_t none;

	(void)setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	/* Dispositions set to "ignore" survive exec; reset them all. Some
	 * numbers are reserved by the C library and refuse: that is fine. */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	}
	if (prctl(PR_SET_PDEATHSIG, o->death_signal, 0, 0, 0) != 0)
		_exit(126);
	/* The parent died before prctl(): nobody will ever signal us. */
	if (getppid() != parent)
		_exit(126);
	/* Unblocked last, so a death signal already pending is acted on now. */
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
		_exit(126);
	if (close_range(3, ~0U, 0) != 0) {
		for (int fd = 3; fd < max_fd; fd++)
			(void)close(fd);
	}
	execve(o->argv[0], (char *const *)o->argv, envp);
	child_fail("baton: cannot execute the program (execve failed)\n");
	_exit(127);
}

/* One line in the log file before the child's own output, so a reader of
 * the file sees what ran when. Best effort. */
static void log_file_header(int fd, const char *cmd)
{
	char line[2300];
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	if (localtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		stamp[0] = '\0';
	n = snprintf(line, sizeof(line), "%s baton: running %s\n", stamp, cmd);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		ssize_t unused = write(fd, line, len);

		(void)unused;
	}
}

bool pg_spawn(const struct pg_spawn_opts *o, struct pg_child *child, struct pg_err *err)
{
	char cmd[2048];
	char **envp = NULL;
	int in_fd = -1, out_fd = -1;
	bool own_out = false;
	long open_max;
	pid_t parent, pid;
	bool ok = false;

	format_cmdline(o->argv, cmd, sizeof(cmd));
	envp = build_env(o->env_set);
	if (envp == NULL) {
		pg_err_set(err, "%s: out of memory", o->what);
		goto cleanup;
	}
	in_fd = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (in_fd < 0) {
		pg_err_set(err, "%s: cannot open /dev/null: %s", o->what, strerror(errno));
		goto cleanup;
	}
	if (o->out_fd >= 0) {
		out_fd = o->out_fd;
	} else {
		const char *path = o->log_file != NULL ? o->log_file : "/dev/null";

		out_fd = above_stdio(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
		if (out_fd < 0) {
			pg_err_set(err, "%s: cannot open log file %s: %s", o->what, path, strerror(errno));
			goto cleanup;
		}
		own_out = true;
		if (o->log_file != NULL)
			log_file_header(out_fd, cmd);
	}
	open_max = sysconf(_SC_OPEN_MAX);
	if (open_max < 0 || open_max > 65536)
		open_max = 65536;

	pg_log(o->quiet ? PG_LOG_DEBUG : PG_LOG_INFO, "starting %s: %s", o->what, cmd);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		pg_err_set(err, "%s: fork failed: %s", o->what, strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		child_exec(o, envp, in_fd, out_fd, parent, (int)open_max);

	/* Also from this side: the group exists before anyone signals it. It
	 * fails harmlessly once the child has exec'd (it did it itself). */
	(void)setpgid(pid, pid);
	child->pid = pid;
	snprintf(child->what, sizeof(child->what), "%s", o->what);
	child->started = pg_now();
	ok = true;
cleanup:
	if (in_fd >= 0)
		close(in_fd);
	if (own_out && out_fd >= 0)
		close(out_fd);
	free(envp);
	return ok;
}
