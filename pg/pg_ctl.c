/*
 * pg_ctl.c - the postmaster and the long Postgres tools as children.
 *
 * Everything here is a child process of the calling thread (see
 * pg_spawn.c for how they are started): the postmaster itself, so that the
 * kernel stops it when the agent dies, and initdb/pg_basebackup/pg_rewind,
 * so that the agent's loop is never blocked by them. Waiting is always a
 * waitpid(WNOHANG) poll against a deadline; nothing here blocks without
 * a bound except the final reap after SIGKILL of a whole process group.
 */
#include "pg/pg_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg/pg_data.h"
#include "pg/pg_spawn.h"

#define POLL_INTERVAL_NS (10 * 1000 * 1000)

double pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(void)
{
	struct timespec ts = { 0, POLL_INTERVAL_NS };

	nanosleep(&ts, NULL);
}

/* Describes a wait status into err. */
static void describe_status(const struct pg_child *child, int status, struct pg_err *err)
{
	if (WIFEXITED(status))
		pg_err_set(err, "%s (pid %d) exited with status %d", child->what, (int)child->pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		pg_err_set(err, "%s (pid %d) was killed by signal %d (%s)", child->what, (int)child->pid,
		           WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		pg_err_set(err, "%s (pid %d) ended with wait status %d", child->what, (int)child->pid, status);
}

static void forget(struct pg_child *child)
{
	child->pid = 0;
	child->started = 0;
}

enum pg_child_state pg_child_poll(struct pg_child *child, struct pg_err *err)
{
	int status = 0;
	pid_t r;

	if (child->pid <= 0)
		return PG_CHILD_NONE;
	r = waitpid(child->pid, &status, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return PG_CHILD_RUNNING;
	if (r < 0) {
		/* ECHILD: reaped by someone else (or SIGCHLD ignored). */
		pg_err_set(err, "%s (pid %d): cannot wait for it: %s", child->what, (int)child->pid, strerror(errno));
		forget(child);
		return PG_CHILD_FAILED;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		pg_log(PG_LOG_DEBUG, "%s (pid %d) exited with status 0", child->what, (int)child->pid);
		forget(child);
		return PG_CHILD_OK;
	}
	describe_status(child, status, err);
	pg_log(PG_LOG_DEBUG, "%s", err != NULL ? err->msg : "child failed");
	forget(child);
	return PG_CHILD_FAILED;
}

/* Polls for the child's end until deadline (monotonic seconds). true once
 * it is reaped (or cannot be waited for: then it is not ours any more). */
static bool wait_until(struct pg_child *child, double deadline)
{
	for (;;) {
		int status;
		pid_t r = waitpid(child->pid, &status, WNOHANG);

		if (r == child->pid || (r < 0 && errno != EINTR)) {
			forget(child);
			return true;
		}
		if (pg_now() >= deadline)
			return false;
		nap();
	}
}

/* Signals the child's process group, or the child alone if it has no group
 * of its own (yet). */
static void signal_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) != 0)
		(void)kill(pid, sig);
}

/* SIGKILL of the direct children of pid. Postgres's own children call
 * setsid(), so they are not in the postmaster's process group; the kernel
 * lists them in /proc/<pid>/task/<pid>/children. Best effort. */
static void kill_children(pid_t pid)
{
	char path[64];
	FILE *f;
	int child;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	while (fscanf(f, "%d", &child) == 1) {
		if (child > 1)
			(void)kill(child, SIGKILL);
	}
	fclose(f);
}

/* Last resort: SIGKILL of the children, the group, then a reap. The parent
 * is stopped first so that it cannot fork new children in between. SIGKILL
 * cannot be caught, so the wait is bounded by the kernel; a generous bound
 * is kept anyway for a process stuck in uninterruptible sleep. */
static bool kill_and_reap(struct pg_child *child)
{
	(void)kill(child->pid, SIGSTOP);
	kill_children(child->pid);
	signal_group(child->pid, SIGKILL);
	return wait_until(child, pg_now() + 10.0);
}

void pg_child_kill(struct pg_child *child, double grace)
{
	pid_t pid = child->pid;

	if (pid <= 0)
		return;
	pg_log(PG_LOG_INFO, "stopping %s (pid %d)", child->what, (int)pid);
	signal_group(pid, SIGTERM);
	if (wait_until(child, pg_now() + (grace > 0 ? grace : 0))) {
		/* Leftovers of the group (e.g. pg_basebackup's WAL streamer). */
		(void)kill(-pid, SIGKILL);
		return;
	}
	if (!kill_and_reap(child))
		pg_log(PG_LOG_ERROR, "%s (pid %d) survived SIGKILL", child->what, (int)pid);
}

/* The pgpass file as environment for children that connect. */
static void pgpass_env(const struct pg_paths *p, char *buf, size_t len, const char **env)
{
	env[0] = NULL;
	if (p->pgpass != NULL && snprintf(buf, len, "PGPASSFILE=%s", p->pgpass) < (int)len) {
		env[0] = buf;
		env[1] = NULL;
	}
}

static bool program(const struct pg_paths *p, const char *name, char *buf, size_t len, struct pg_err *err)
{
	if (p->bin_dir == NULL || p->data_dir == NULL) {
		pg_err_set(err, "%s: bin_dir and data_dir are required", name);
		return false;
	}
	return pg_path_join(buf, len, p->bin_dir, name, err);
}

/* Starts one of the Postgres programs with its output appended to the log
 * file; env may be NULL. */
static bool spawn_logged(const struct pg_paths *p, const char *what, const char *const *argv, const char *const *env,
                         int death_signal, struct pg_child *child, struct pg_err *err)
{
	struct pg_spawn_opts o = { .what = what,
		                   .argv = argv,
		                   .env_set = env,
		                   .log_file = p->log_file,
		                   .out_fd = -1,
		                   .death_signal = death_signal };

	return pg_spawn(&o, child, err);
}

/* initdb's password file: next to the data directory (initdb wants the data
 * directory itself missing or empty), "<data_dir>.baton-initdb-pw". */
static bool initdb_pwfile(const struct pg_paths *p, char *buf, size_t len)
{
	size_t n = strlen(p->data_dir);
	int w;

	while (n > 1 && p->data_dir[n - 1] == '/')
		n--;
	w = snprintf(buf, len, "%.*s.baton-initdb-pw", (int)n, p->data_dir);
	return w > 0 && (size_t)w < len;
}

void pg_initdb_cleanup(const struct pg_paths *p)
{
	char path[4096];

	if (p->data_dir != NULL && initdb_pwfile(p, path, sizeof(path)))
		(void)unlink(path);
}

const struct pg_initdb_opts pg_initdb_defaults = {
	.encoding = PG_INITDB_ENCODING,
	.locale = PG_INITDB_LOCALE,
	.data_checksums = true,
};

/* An encoding or locale name as initdb takes them ("UTF8", "C.UTF-8",
 * "de_DE.utf8@euro"): no spaces, quotes or option-like leading dash. */
static bool initdb_name_ok(const char *v)
{
	if (v[0] == '\0' || v[0] == '-')
		return false;
	for (const char *c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '@'))
			return false;
	return true;
}

/* The initdb options baton passes itself (or that would break it), and
 * what to use instead. Long names; single letters are refused apart. */
static const struct {
	const char *name;
	const char *why;
} initdb_reserved[] = {
	{ "pgdata", "baton passes the data directory itself: use postgresql.data_dir" },
	{ "username", "baton creates the superuser itself: use postgresql.authentication.superuser.username" },
	{ "pwfile", "baton passes the superuser's password itself: use "
	            "postgresql.authentication.superuser.password" },
	{ "pwprompt", "initdb runs without a terminal: use postgresql.authentication.superuser.password" },
	{ "auth", "baton sets scram-sha-256 for local and host connections: use postgresql.pg_hba" },
	{ "auth-host", "baton sets scram-sha-256 for host connections: use postgresql.pg_hba" },
	{ "auth-local", "baton sets scram-sha-256 for local connections: use postgresql.pg_hba" },
	{ "encoding", "use bootstrap.initdb.encoding (or { encoding = \"...\"; } in the list form)" },
	{ "locale", "use bootstrap.initdb.locale (or { locale = \"...\"; } in the list form)" },
	{ "data-checksums", "use bootstrap.initdb.data_checksums (or \"data-checksums\" in the list form)" },
	{ "sync-only", "it only syncs an existing data directory: initdb would create none" },
	{ "show", "it only prints settings: initdb would create no cluster" },
	{ "version", "it only prints the version: initdb would create no cluster" },
	{ "help", "it only prints help: initdb would create no cluster" },
};

bool pg_initdb_option_reserved(const char *opt, char *why, size_t whylen)
{
	size_t n = strcspn(opt, "=");

	if (n == 1) {
		snprintf(why, whylen, "%s", "a one-letter option: use initdb's long option name");
		return true;
	}
	for (size_t i = 0; i < sizeof(initdb_reserved) / sizeof(initdb_reserved[0]); i++)
		if (strlen(initdb_reserved[i].name) == n && strncmp(opt, initdb_reserved[i].name, n) == 0) {
			snprintf(why, whylen, "%s", initdb_reserved[i].why);
			return true;
		}
	return false;
}

bool pg_initdb_argv_build(struct pg_initdb_argv *a, const char *prog, const char *data_dir, const char *superuser,
                          const char *pwarg, const struct pg_initdb_opts *opts, struct pg_err *err)
{
	const char *enc, *loc;
	size_t n = 0;
	int w;

	if (opts == NULL)
		opts = &pg_initdb_defaults;
	enc = opts->encoding != NULL && opts->encoding[0] ? opts->encoding : PG_INITDB_ENCODING;
	loc = opts->locale != NULL && opts->locale[0] ? opts->locale : PG_INITDB_LOCALE;
	memset(a, 0, sizeof(*a));
	if (!initdb_name_ok(enc) || strlen(enc) >= sizeof(a->encoding)) {
		pg_err_set(err, "initdb: invalid encoding name \"%.64s\"", enc);
		return false;
	}
	w = snprintf(a->locale_arg, sizeof(a->locale_arg), "--locale=%s", loc);
	if (!initdb_name_ok(loc) || w < 0 || (size_t)w >= sizeof(a->locale_arg)) {
		pg_err_set(err, "initdb: invalid locale name \"%.64s\"", loc);
		return false;
	}
	snprintf(a->encoding, sizeof(a->encoding), "%s", enc);
	a->argv[n++] = prog;
	a->argv[n++] = "-D";
	a->argv[n++] = data_dir;
	a->argv[n++] = "-U";
	a->argv[n++] = superuser;
	a->argv[n++] = pwarg;
	a->argv[n++] = "-E";
	a->argv[n++] = a->encoding;
	a->argv[n++] = a->locale_arg;
	if (opts->data_checksums)
		a->argv[n++] = "--data-checksums";
	a->argv[n++] = "--auth-local=scram-sha-256";
	a->argv[n++] = "--auth-host=scram-sha-256";
	if (opts->n_extra > PG_INITDB_MAX_EXTRA) {
		pg_err_set(err, "initdb: more than %d options", PG_INITDB_MAX_EXTRA);
		return false;
	}
	for (size_t i = 0; i < opts->n_extra; i++) {
		const char *o = opts->extra[i];
		char why[200];

		w = snprintf(a->extra[i], sizeof(a->extra[i]), "--%s", o != NULL ? o : "");
		if (o == NULL || o[0] == '\0' || o[0] == '-' || w < 0 || (size_t)w >= sizeof(a->extra[i]) ||
		    strpbrk(o, "\r\n") != NULL) {
			pg_err_set(err, "initdb: invalid option \"%.64s\"", o != NULL ? o : "");
			return false;
		}
		if (pg_initdb_option_reserved(o, why, sizeof(why))) {
			pg_err_set(err, "initdb: option \"%.64s\" refused: %s", o, why);
			return false;
		}
		a->argv[n++] = a->extra[i];
	}
	a->argv[n] = NULL;
	return true;
}

bool pg_initdb_start(const struct pg_paths *p, const char *superuser, const char *password,
                     const struct pg_initdb_opts *opts, struct pg_child *child, struct pg_err *err)
{
	char prog[4096], pwfile[4096], pwarg[4200];
	struct pg_initdb_argv a;
	int fd = -1;
	bool ok = false;

	if (!program(p, "initdb", prog, sizeof(prog), err))
		return false;
	if (superuser == NULL || superuser[0] == '\0' || password == NULL || password[0] == '\0' ||
	    strpbrk(password, "\r\n") != NULL) {
		pg_err_set(err, "initdb: a superuser name and a one-line, non-empty password are required");
		return false;
	}
	if (!initdb_pwfile(p, pwfile, sizeof(pwfile)) ||
	    snprintf(pwarg, sizeof(pwarg), "--pwfile=%s", pwfile) >= (int)sizeof(pwarg)) {
		pg_err_set(err, "initdb: data directory path too long");
		return false;
	}
	if (!pg_initdb_argv_build(&a, prog, p->data_dir, superuser, pwarg, opts, err))
		return false;
	/* A stale file of a crashed earlier attempt is replaced; O_EXCL then
	 * guarantees we write to a fresh regular file of ours. */
	(void)unlink(pwfile);
	fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		pg_err_set(err, "initdb: cannot create password file %s: %s", pwfile, strerror(errno));
		return false;
	}
	{
		size_t len = strlen(password);

		if (write(fd, password, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
			pg_err_set(err, "initdb: cannot write password file %s: %s", pwfile, strerror(errno));
			goto cleanup;
		}
	}
	if (close(fd) != 0) {
		fd = -1;
		pg_err_set(err, "initdb: cannot write password file %s: %s", pwfile, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	{
		/* The agent's own environment does not matter: LC_ALL only sets
		 * the language of initdb's messages and the locale of anything
		 * --locale leaves open. The default C.UTF-8 sorts by code point,
		 * so no glibc collation update can silently corrupt the indexes
		 * of a replica on another host, and it always matches UTF8. */
		const char *env[] = { "LC_ALL=C.UTF-8", NULL };
		ok = spawn_logged(p, "initdb", a.argv, env, SIGTERM, child, err);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (!ok)
		(void)unlink(pwfile);
	return ok;
}

bool pg_post_bootstrap_start(const struct pg_paths *p, const char *script, const char *url, const char *pgpass,
                             struct pg_child *child, struct pg_err *err)
{
	char envbuf[4200];
	const char *argv[] = { script, url, NULL };
	const char *env[] = { envbuf, NULL };

	if (script == NULL || script[0] != '/' || url == NULL || pgpass == NULL) {
		pg_err_set(err, "post_bootstrap: an absolute script path, a URL and a password file are required");
		return false;
	}
	if (snprintf(envbuf, sizeof(envbuf), "PGPASSFILE=%s", pgpass) >= (int)sizeof(envbuf)) {
		pg_err_set(err, "post_bootstrap: password file path too long");
		return false;
	}
	return spawn_logged(p, "post_bootstrap", argv, env, SIGTERM, child, err);
}

bool pg_basebackup_start(const struct pg_paths *p, const char *conninfo, struct pg_child *child, struct pg_err *err)
{
	char prog[4096], envbuf[4200];
	const char *env[2];

	if (!program(p, "pg_basebackup", prog, sizeof(prog), err))
		return false;
	if (pg_datadir_inspect(p->data_dir) != PG_DATADIR_MISSING) {
		pg_err_set(err, "pg_basebackup: data directory %s exists and is not empty", p->data_dir);
		return false;
	}
	pgpass_env(p, envbuf, sizeof(envbuf), env);
	{
		const char *argv[] = { prog, "-D",     p->data_dir, "-X", "stream", "-c", "fast", "--no-password",
			               "-d", conninfo, NULL };
		return spawn_logged(p, "pg_basebackup", argv, env, SIGTERM, child, err);
	}
}

bool pg_rewind_start(const struct pg_paths *p, const char *source_conninfo, struct pg_child *child, struct pg_err *err)
{
	char prog[4096], envbuf[4200], target[4200], source[4200];
	const char *env[2];
	int n1, n2;

	if (!program(p, "pg_rewind", prog, sizeof(prog), err))
		return false;
	n1 = snprintf(target, sizeof(target), "--target-pgdata=%s", p->data_dir);
	n2 = snprintf(source, sizeof(source), "--source-server=%s", source_conninfo);
	if (n1 < 0 || n1 >= (int)sizeof(target) || n2 < 0 || n2 >= (int)sizeof(source)) {
		pg_err_set(err, "pg_rewind: argument too long");
		return false;
	}
	pgpass_env(p, envbuf, sizeof(envbuf), env);
	{
		const char *argv[] = { prog, target, source, NULL };
		return spawn_logged(p, "pg_rewind", argv, env, SIGTERM, child, err);
	}
}

bool pg_postmaster_start(const struct pg_paths *p, struct pg_child *child, struct pg_err *err)
{
	char prog[4096];

	if (!program(p, "postgres", prog, sizeof(prog), err))
		return false;
	if (child->pid > 0) {
		pg_err_set(err, "postgres: already running as pid %d", (int)child->pid);
		return false;
	}
	{
		const char *argv[] = { prog, "-D", p->data_dir, NULL };
		return spawn_logged(p, "postgres", argv, NULL, SIGQUIT, child, err);
	}
}

bool pg_postmaster_stop(struct pg_child *child, enum pg_stop_mode mode, double timeout, struct pg_err *err)
{
	static const char *const names[] = { "smart", "fast", "immediate" };
	int sig = mode == PG_STOP_SMART ? SIGTERM : mode == PG_STOP_FAST ? SIGINT : SIGQUIT;
	pid_t pid = child->pid;

	if (pid <= 0)
		return true;
	pg_log(PG_LOG_INFO, "stopping postgres (pid %d), %s mode", (int)pid, names[mode]);
	if (kill(pid, sig) != 0 && errno != ESRCH) {
		pg_err_set(err, "postgres (pid %d): cannot signal it: %s", (int)pid, strerror(errno));
		return false;
	}
	if (wait_until(child, pg_now() + (timeout > 0 ? timeout : 0)))
		goto gone;
	pg_log(PG_LOG_WARNING, "postgres (pid %d) still running after %.1f s: immediate shutdown", (int)pid, timeout);
	/* The postmaster SIGKILLs its own children 5 s into an immediate
	 * shutdown; we do not wait that long. */
	signal_group(pid, SIGQUIT);
	if (wait_until(child, pg_now() + 2.0))
		goto gone;
	pg_log(PG_LOG_WARNING, "postgres (pid %d) ignores SIGQUIT: SIGKILL of it and its children", (int)pid);
	if (!kill_and_reap(child)) {
		pg_err_set(err, "postgres (pid %d) survived SIGKILL", (int)pid);
		return false;
	}
gone:
	/* Whatever is left of its process group (nothing, normally). */
	(void)kill(-pid, SIGKILL);
	pg_log(PG_LOG_INFO, "postgres (pid %d) stopped", (int)pid);
	return true;
}

bool pg_postmaster_reload(const struct pg_child *child, struct pg_err *err)
{
	if (child->pid <= 0) {
		pg_err_set(err, "postgres reload: not running");
		return false;
	}
	if (kill(child->pid, SIGHUP) != 0) {
		pg_err_set(err, "postgres reload (pid %d): %s", (int)child->pid, strerror(errno));
		return false;
	}
	return true;
}

pid_t pg_postmaster_pid_from_file(const char *data_dir)
{
	char path[4096], line[64];
	FILE *f;
	long pid;
	char *end;

	if (snprintf(path, sizeof(path), "%s/postmaster.pid", data_dir) >= (int)sizeof(path))
		return 0;
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return 0;
	}
	fclose(f);
	errno = 0;
	pid = strtol(line, &end, 10);
	/* A standalone backend writes its pid negated. */
	if (pid < 0)
		pid = -pid;
	if (errno != 0 || end == line || pid <= 1 || pid > 0x7fffffffL)
		return 0;
	if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
		return (pid_t)pid;
	return 0;
}

/* ---- why a start failed --------------------------------------------------- */

#define DIAG_MAX_READ (64 * 1024)

const char *pg_start_failure_name(enum pg_start_failure k)
{
	switch (k) {
	case PG_START_FAIL_UNKNOWN:
		return "unknown";
	case PG_START_FAIL_DIVERGED:
		return "diverged timeline";
	case PG_START_FAIL_PARAMS:
		return "hot-standby parameters";
	case PG_START_FAIL_OTHER:
		return "other";
	}
	return "unknown";
}

/* Copies one log line from its severity on ("FATAL:  ..."), dropping the
 * log_line_prefix (time, pid) and the line end. */
static void copy_from(char *dst, size_t len, const char *line, size_t n, const char *sev)
{
	const char *p = sev ? sev : line;
	size_t k = n - (size_t)(p - line);

	while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == ' '))
		k--;
	if (k >= len)
		k = len - 1;
	memcpy(dst, p, k);
	dst[k] = '\0';
	for (size_t i = 0; i < k; i++)
		if ((unsigned char)dst[i] < 0x20)
			dst[i] = ' ';
}

/* memmem restricted to one line. */
static const char *line_find(const char *line, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; m <= n && i + m <= n; i++)
		if (memcmp(line + i, needle, m) == 0)
			return line + i;
	return NULL;
}

/* The severity tags Postgres writes after log_line_prefix ("FATAL:  "). */
static const char *const sev_tags[] = { "DEBUG1:  ",    "DEBUG2:  ", "DEBUG3:  ",  "DEBUG4:  ",  "DEBUG5:  ",
	                                "LOG:  ",       "INFO:  ",   "NOTICE:  ",  "WARNING:  ", "ERROR:  ",
	                                "FATAL:  ",     "PANIC:  ",  "DETAIL:  ",  "HINT:  ",    "CONTEXT:  ",
	                                "STATEMENT:  ", "QUERY:  ",  "LOCATION:  " };

/* The first severity tag in one line (its index in sev_tags in *which),
 * and how many tags the line holds in all. */
static const char *line_severity(const char *line, size_t n, size_t *which, int *count)
{
	const char *first = NULL;

	*count = 0;
	for (size_t t = 0; t < sizeof(sev_tags) / sizeof(sev_tags[0]); t++) {
		size_t m = strlen(sev_tags[t]);

		for (size_t i = 0; m <= n && i + m <= n; i++)
			if (memcmp(line + i, sev_tags[t], m) == 0) {
				(*count)++;
				if (!first || line + i < first) {
					first = line + i;
					*which = t;
				}
			}
	}
	return first;
}

/*
 * True if one log line is the startup process's (or walreceiver's) own
 * report that this data directory diverged from its upstream's timeline:
 * the message after the LOG/FATAL/PANIC tag *starts* with the phrase, with
 * its numbers. Text a client or a remote server chooses can reach the log
 * (a user name in a refused connection's line, the upstream's error text
 * relayed by "could not connect to the primary server:", a continuation
 * line of a multi-line message, which Postgres starts with a tab), and a
 * rewind must never follow from it: such lines never count, nor a line
 * with a second severity tag (a client's name in log_line_prefix that
 * imitates one).
 */
static bool line_diverged(const char *line, size_t n)
{
	char msg[300];
	const char *sev;
	size_t which = 0;
	int count, end = -1;
	unsigned int tl, tl2, hi, lo;

	if (n == 0 || line[0] == ' ' || line[0] == '\t')
		return false;
	sev = line_severity(line, n, &which, &count);
	if (!sev || count != 1 ||
	    (strcmp(sev_tags[which], "LOG:  ") != 0 && strcmp(sev_tags[which], "FATAL:  ") != 0 &&
	     strcmp(sev_tags[which], "PANIC:  ") != 0))
		return false;
	if (line_find(line, n, "user \"") || line_find(line, n, "database \"") ||
	    line_find(line, n, "connection authorized") || line_find(line, n, "pg_hba.conf") ||
	    line_find(line, n, "could not connect to the primary server"))
		return false;
	copy_from(msg, sizeof(msg), line, n, sev + strlen(sev_tags[which]));
	if (sscanf(msg, "requested timeline %u is not a child of this server's history%n", &tl, &end) == 1 &&
	    end >= 0 && msg[end] == '\0')
		return true;
	end = -1;
	/* The walreceiver's own check: this server's timeline is ahead of
	 * everything its upstream has (it was promoted, the upstream not).
	 * Postgres retries for ever; only a rewind lets it follow. */
	if (sscanf(msg, "highest timeline %u of the primary is behind recovery timeline %u%n", &tl, &tl2, &end) == 2 &&
	    end >= 0 && msg[end] == '\0' && tl < tl2)
		return true;
	end = -1;
	return sscanf(msg,
	              "new timeline %u forked off current database system timeline %u before current recovery "
	              "point %X/%X%n",
	              &tl, &tl2, &hi, &lo, &end) == 4 &&
	       end >= 0 && msg[end] == '\0';
}

void pg_start_diagnose_text(const char *text, struct pg_start_diag *out)
{
	const char *line = text ? text : "";
	bool params = false, diverged = false;
	char div_line[sizeof(out->fatal_line)] = "";
	size_t which = 0;
	int count;

	memset(out, 0, sizeof(*out));
	out->kind = PG_START_FAIL_OTHER;
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *sev = line_find(line, n, "FATAL:");
		const char *d;

		if (!sev)
			sev = line_find(line, n, "PANIC:");
		if (!diverged && line_diverged(line, n)) {
			diverged = true;
			copy_from(div_line, sizeof(div_line), line, n, line_severity(line, n, &which, &count));
		}
		if (line_find(line, n, "insufficient parameter settings"))
			params = true;
		d = line_find(line, n, "is a lower setting than on the primary server");
		if (d && !out->param[0]) {
			/* "DETAIL:  max_connections = 100 is a lower setting than on the
			 * primary server, where its value was 150." */
			const char *det = line_find(line, n, "DETAIL:");
			char buf[200];
			char name[48];
			long v, pv;

			copy_from(buf, sizeof(buf), line, n, det ? det + strlen("DETAIL:") : line);
			if (sscanf(buf,
			           " %47[a-z_] = %ld is a lower setting than on the primary server, where its value "
			           "was %ld",
			           name, &v, &pv) == 3) {
				snprintf(out->param, sizeof(out->param), "%s", name);
				out->value = v;
				out->primary_value = pv;
			}
		}
		/* The server also logs the connections it refused while starting
		 * ("FATAL:  the database system is starting up"): not its cause. */
		if (sev && !line_find(line, n, "the database system is "))
			copy_from(out->fatal_line, sizeof(out->fatal_line), line, n, sev);
		line = end ? end + 1 : line + n;
	}
	if (!out->fatal_line[0]) {
		/* No FATAL/PANIC line: the last line that says anything. */
		const char *p = text ? text + strlen(text) : "";
		const char *start;

		while (p > (text ? text : p) && (p[-1] == '\n' || p[-1] == '\r' || p[-1] == ' '))
			p--;
		start = p;
		while (text && start > text && start[-1] != '\n')
			start--;
		copy_from(out->fatal_line, sizeof(out->fatal_line), start, (size_t)(p - start), NULL);
	}
	if (diverged) {
		/* The server's own divergence line, not whatever came last. */
		snprintf(out->fatal_line, sizeof(out->fatal_line), "%s", div_line);
		out->kind = PG_START_FAIL_DIVERGED;
	} else if (params)
		out->kind = PG_START_FAIL_PARAMS;
}

long pg_log_size(const char *log_file)
{
	struct stat st;

	if (!log_file || stat(log_file, &st) != 0)
		return 0;
	return (long)st.st_size;
}

/* The text log_file holds from byte `from` on (at most its last
 * DIAG_MAX_READ bytes), NUL-terminated in a new buffer (*out, the
 * caller's to free). */
static bool log_read_from(const char *log_file, long from, char **out, struct pg_err *err)
{
	char *buf = NULL;
	long size = pg_log_size(log_file);
	ssize_t got;
	size_t used = 0;
	int fd = -1;
	bool ok = false;

	*out = NULL;
	if (!log_file) {
		pg_err_set(err, "no log file to read");
		return false;
	}
	if (from < 0 || from > size)
		from = 0; /* rotated or truncated since the start: read what is there */
	if (size - from > DIAG_MAX_READ)
		from = size - DIAG_MAX_READ;
	buf = malloc(DIAG_MAX_READ + 1);
	if (!buf) {
		pg_err_set(err, "reading %s: out of memory", log_file);
		return false;
	}
	fd = open(log_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || lseek(fd, (off_t)from, SEEK_SET) < 0) {
		pg_err_set(err, "cannot read %s: %s", log_file, strerror(errno));
		goto cleanup;
	}
	while (used < DIAG_MAX_READ && (got = read(fd, buf + used, DIAG_MAX_READ - used)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			pg_err_set(err, "cannot read %s: %s", log_file, strerror(errno));
			goto cleanup;
		}
		used += (size_t)got;
	}
	buf[used] = '\0';
	*out = buf;
	buf = NULL;
	ok = true;
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

bool pg_start_diagnose(const char *log_file, long from, struct pg_start_diag *out, struct pg_err *err)
{
	char *buf;

	memset(out, 0, sizeof(*out));
	out->kind = PG_START_FAIL_UNKNOWN;
	if (!log_read_from(log_file, from, &buf, err))
		return false;
	/* A NUL byte in the log ends the text there: harmless. */
	pg_start_diagnose_text(buf, out);
	free(buf);
	return true;
}

bool pg_log_last_bad_wal(const char *log_file, long from, char *out, size_t len, struct pg_err *err)
{
	static const char *const bad[] = { "invalid record length at ", "invalid resource manager ID ",
		                           "incorrect resource manager data checksum",
		                           "record with incorrect prev-link", "unexpected pageaddr " };
	char *buf;
	const char *line;

	if (len == 0) {
		pg_err_set(err, "pg_log_last_bad_wal: no room for the line");
		return false;
	}
	out[0] = '\0';
	if (!log_read_from(log_file, from, &buf, err))
		return false;
	for (line = buf; *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		size_t which = 0;
		int count;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (line_find(line, n, bad[i])) {
				const char *sev = line_severity(line, n, &which, &count);
				size_t skip = sev ? (size_t)(sev - line) : 0, k = n - skip;

				if (k >= len)
					k = len - 1;
				for (size_t j = 0; j < k; j++)
					out[j] = (unsigned char)line[skip + j] < 0x20 ? ' ' : line[skip + j];
				out[k] = '\0';
				break;
			}
		line = end ? end + 1 : line + n;
	}
	free(buf);
	return true;
}

bool pg_rewind_said_nothing_to_do(const char *log_file, long from, bool *said, struct pg_err *err)
{
	char *buf;
	const char *line;

	*said = false;
	if (!log_read_from(log_file, from, &buf, err))
		return false;
	for (line = buf; *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (n >= strlen("pg_rewind: no rewind required") &&
		    strncmp(line, "pg_rewind: no rewind required", strlen("pg_rewind: no rewind required")) == 0)
			*said = true;
		line = end ? end + 1 : line + n;
	}
	free(buf);
	return true;
}
