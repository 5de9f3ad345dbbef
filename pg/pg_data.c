/*
 * pg_data.c - what a data directory says about itself, without a server.
 *
 * pg_datadir_inspect looks at files only. pg_controldata_read runs the
 * pg_controldata program of the same Postgres version rather than parsing
 * global/pg_control ourselves: the binary layout changes between major
 * versions, the program's text output (in the C locale) does not. The
 * program is a child like every other (pg_spawn), its output read from a
 * pipe against a deadline, and it is killed if it overruns.
 */
#include "pg/pg_data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg/pg_ctl.h"
#include "pg/pg_spawn.h"

#define CONTROLDATA_TIMEOUT 5.0
#define CONTROLDATA_MAX_OUTPUT 32768

enum pg_datadir_state pg_datadir_inspect(const char *data_dir)
{
	char path[4096];
	struct stat st;
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (stat(data_dir, &st) != 0)
		return errno == ENOENT ? PG_DATADIR_MISSING : PG_DATADIR_INVALID;
	if (!S_ISDIR(st.st_mode))
		return PG_DATADIR_INVALID;
	d = opendir(data_dir);
	if (d == NULL)
		return PG_DATADIR_INVALID;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	if (empty)
		return PG_DATADIR_MISSING;
	if (snprintf(path, sizeof(path), "%s/PG_VERSION", data_dir) >= (int)sizeof(path) || stat(path, &st) != 0 ||
	    !S_ISREG(st.st_mode))
		return PG_DATADIR_INVALID;
	if (snprintf(path, sizeof(path), "%s/global/pg_control", data_dir) >= (int)sizeof(path) ||
	    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return PG_DATADIR_INVALID;
	return PG_DATADIR_VALID;
}

static const struct {
	enum pg_db_state state;
	const char *name; /* as pg_controldata prints it in the C locale */
} db_states[] = {
	{ PG_DB_STARTING, "starting up" },
	{ PG_DB_SHUTDOWNED, "shut down" },
	{ PG_DB_SHUTDOWNED_IN_RECOVERY, "shut down in recovery" },
	{ PG_DB_SHUTDOWNING, "shutting down" },
	{ PG_DB_IN_CRASH_RECOVERY, "in crash recovery" },
	{ PG_DB_IN_ARCHIVE_RECOVERY, "in archive recovery" },
	{ PG_DB_IN_PRODUCTION, "in production" },
};

const char *pg_db_state_name(enum pg_db_state s)
{
	for (size_t i = 0; i < sizeof(db_states) / sizeof(db_states[0]); i++) {
		if (db_states[i].state == s)
			return db_states[i].name;
	}
	return "unknown";
}

static enum pg_db_state db_state_parse(const char *text)
{
	for (size_t i = 0; i < sizeof(db_states) / sizeof(db_states[0]); i++) {
		if (strcmp(db_states[i].name, text) == 0)
			return db_states[i].state;
	}
	return PG_DB_UNKNOWN;
}

/* One half of an LSN: 1 to 8 hex digits from *sp up to the character end,
 * which *sp is left on; false on anything else (end not reached included). */
static bool lsn_half(const char **sp, char end, uint64_t *out)
{
	const char *s = *sp;
	int digits = 0;

	*out = 0;
	for (; *s != end; s++, digits++) {
		int v;

		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			return false;
		if (digits >= 8)
			return false;
		*out = *out * 16 + (uint64_t)v;
	}
	*sp = s;
	return digits > 0;
}

bool pg_lsn_parse(const char *text, uint64_t *out)
{
	uint64_t hi, lo;
	const char *s = text;

	if (text == NULL || !lsn_half(&s, '/', &hi))
		return false;
	s++;
	if (!lsn_half(&s, '\0', &lo))
		return false;
	*out = hi << 32 | lo;
	return true;
}

void pg_lsn_format(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

/* The value after "label:" on one line of pg_controldata's output, with
 * the padding skipped; NULL when the line has another label. */
static const char *field(const char *line, const char *label)
{
	size_t n = strlen(label);

	if (strncmp(line, label, n) != 0 || line[n] != ':')
		return NULL;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

const struct pg_hs_param pg_hot_standby_params[PG_HS_PARAMS] = {
	{ "max_connections", "max_connections setting", 100 },
	{ "max_worker_processes", "max_worker_processes setting", 8 },
	{ "max_wal_senders", "max_wal_senders setting", 10 },
	{ "max_prepared_transactions", "max_prepared_xacts setting", 0 },
	{ "max_locks_per_transaction", "max_locks_per_xact setting", 64 },
};

static bool parse_long(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return false;
	*out = v;
	return true;
}

/* Parses the whole output; every field we need must be there (the
 * hot-standby settings are optional: hs_valid says whether all were). */
static bool parse_controldata(char *text, struct pg_controldata *out, struct pg_err *err)
{
	unsigned seen = 0, hs_seen = 0;
	char *save = NULL;

	memset(out, 0, sizeof(*out));
	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *v;
		bool ok = true;

		if ((v = field(line, "Database system identifier")) != NULL) {
			char *end;

			errno = 0;
			out->system_identifier = strtoull(v, &end, 10);
			ok = errno == 0 && end != v && *end == '\0';
			seen |= 1;
		} else if ((v = field(line, "Database cluster state")) != NULL) {
			out->state = db_state_parse(v);
			ok = out->state != PG_DB_UNKNOWN;
			seen |= 2;
		} else if ((v = field(line, "Latest checkpoint's TimeLineID")) != NULL) {
			ok = parse_u32(v, &out->checkpoint_timeline);
			seen |= 4;
		} else if ((v = field(line, "Latest checkpoint location")) != NULL) {
			ok = pg_lsn_parse(v, &out->checkpoint_lsn);
			seen |= 8;
		} else if ((v = field(line, "Minimum recovery ending location")) != NULL) {
			ok = pg_lsn_parse(v, &out->min_recovery_end_lsn);
			seen |= 16;
		} else if ((v = field(line, "Min recovery ending loc's timeline")) != NULL) {
			ok = parse_u32(v, &out->min_recovery_end_timeline);
			seen |= 32;
		} else {
			for (int i = 0; i < PG_HS_PARAMS; i++)
				if ((v = field(line, pg_hot_standby_params[i].label)) != NULL) {
					ok = parse_long(v, &out->hs[i]);
					hs_seen |= 1u << i;
				}
		}
		if (!ok) {
			pg_err_set(err, "pg_controldata: cannot parse line \"%s\"", line);
			return false;
		}
	}
	if (seen != 63) {
		pg_err_set(err, "pg_controldata: output lacks expected fields (found mask %u of 63)", seen);
		return false;
	}
	out->hs_valid = hs_seen == (1u << PG_HS_PARAMS) - 1;
	return true;
}

/*
 * Runs argv (a quick read-only program: pg_controldata, postgres -C) with
 * env, its stdout and stderr into *out (malloc'd, NUL-terminated, at most
 * CONTROLDATA_MAX_OUTPUT bytes), bounded by CONTROLDATA_TIMEOUT in all.
 * true when it exited 0. false with err set otherwise; then *out holds what
 * it printed (or NULL), which the caller frees either way.
 */
static bool run_capture(const char *what, const char *const *argv, const char *const *env, char **out,
                        struct pg_err *err)
{
	char *buf = NULL;
	size_t used = 0;
	int fds[2] = { -1, -1 };
	struct pg_child child = { 0 };
	struct pg_err cerr;
	double deadline;
	bool ok = false;

	*out = NULL;
	buf = malloc(CONTROLDATA_MAX_OUTPUT + 1);
	if (buf == NULL) {
		pg_err_set(err, "%s: out of memory", what);
		return false;
	}
	buf[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0) {
		pg_err_set(err, "%s: pipe: %s", what, strerror(errno));
		goto cleanup;
	}
	{
		struct pg_spawn_opts o = { .what = what,
			                   .argv = argv,
			                   .env_set = env,
			                   .log_file = NULL,
			                   .out_fd = fds[1],
			                   .death_signal = SIGKILL,
			                   .quiet = true };

		if (!pg_spawn(&o, &child, err))
			goto cleanup;
	}
	close(fds[1]);
	fds[1] = -1;

	deadline = pg_now() + CONTROLDATA_TIMEOUT;
	for (;;) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		double left = deadline - pg_now();
		ssize_t n;
		int r;

		if (left <= 0) {
			pg_err_set(err, "%s: no answer within %.0f s", what, CONTROLDATA_TIMEOUT);
			goto cleanup;
		}
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR) {
			pg_err_set(err, "%s: poll: %s", what, strerror(errno));
			goto cleanup;
		}
		if (r <= 0)
			continue;
		n = read(fds[0], buf + used, CONTROLDATA_MAX_OUTPUT - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pg_err_set(err, "%s: read: %s", what, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		if (used == CONTROLDATA_MAX_OUTPUT) {
			pg_err_set(err, "%s: output larger than %d bytes", what, CONTROLDATA_MAX_OUTPUT);
			goto cleanup;
		}
	}
	buf[used] = '\0';
	/* Output closed: the program is exiting; wait for it within the bound. */
	for (;;) {
		enum pg_child_state st = pg_child_poll(&child, &cerr);

		if (st == PG_CHILD_OK)
			break;
		if (st == PG_CHILD_FAILED) {
			pg_err_set(err, "%s", cerr.msg);
			goto cleanup;
		}
		if (pg_now() >= deadline) {
			pg_err_set(err, "%s: did not exit within %.0f s", what, CONTROLDATA_TIMEOUT);
			goto cleanup;
		}
		usleep(5000);
	}
	ok = true;
cleanup:
	if (child.pid > 0)
		pg_child_kill(&child, 0);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	*out = buf;
	return ok;
}

bool pg_controldata_read(const char *bin_dir, const char *data_dir, struct pg_controldata *out, struct pg_err *err)
{
	char prog[4096];
	char *buf = NULL;
	bool ok;

	if (!pg_path_join(prog, sizeof(prog), bin_dir, "pg_controldata", err))
		return false;
	{
		const char *argv[] = { prog, "-D", data_dir, NULL };
		const char *env[] = { "LC_ALL=C", "LANGUAGE=C", NULL };

		ok = run_capture("pg_controldata", argv, env, &buf, err);
	}
	if (!ok && buf && buf[0]) {
		char *nl = strchr(buf, '\n');
		struct pg_err e = *err;

		if (nl != NULL)
			*nl = '\0';
		pg_err_set(err, "%s: %s", e.msg, buf);
	}
	if (ok)
		ok = parse_controldata(buf, out, err);
	free(buf);
	return ok;
}

bool pg_config_check(const char *bin_dir, const char *data_dir, bool *refused, struct pg_err *err)
{
	char prog[4096];
	char *buf = NULL;
	bool ok;

	*refused = false;
	if (!pg_path_join(prog, sizeof(prog), bin_dir, "postgres", err))
		return false;
	{
		/* -C parses every configuration file as a start would, and exits
		 * non-zero on the first thing Postgres refuses; it works beside a
		 * running server. */
		const char *argv[] = { prog, "-D", data_dir, "-C", "max_connections", NULL };
		const char *env[] = { "LC_ALL=C", "LANGUAGE=C", NULL };

		ok = run_capture("postgres -C", argv, env, &buf, err);
	}
	if (!ok && buf) {
		/* Postgres says what it refuses on its LOG lines; keep those. */
		char why[400] = "";
		size_t used = 0;

		for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *m = strstr(line, "LOG:  ");
			int n;

			/* Only what it says of the files: not, e.g., that it could not
			 * chdir back to an unreadable working directory. */
			if (!m || !(strstr(m, "parameter") || strstr(m, "configuration") || strstr(m, "syntax error") ||
			            strstr(m, "could not open")))
				continue;
			n = snprintf(why + used, sizeof(why) - used, "%s%s", used ? "; " : "", m + 6);
			if (n < 0 || (size_t)n >= sizeof(why) - used)
				break;
			used += (size_t)n;
		}
		if (why[0]) {
			/* It ran and refused: that is an answer, not a failure. */
			pg_err_set(err, "%s", why);
			*refused = true;
			ok = true;
		}
	} else if (ok) {
		/* -C parses the values but skips the checks the postmaster makes
		 * between them at start; the one a parameter change can trip
		 * (the agent forces wal_level) is made here. */
		long max_conn = strtol(buf ? buf : "", NULL, 10), reserved;
		char *buf2 = NULL;
		const char *argv[] = { prog, "-D", data_dir, "-C", "superuser_reserved_connections", NULL };
		const char *env[] = { "LC_ALL=C", "LANGUAGE=C", NULL };

		ok = run_capture("postgres -C", argv, env, &buf2, err);
		reserved = strtol(buf2 ? buf2 : "", NULL, 10);
		free(buf2);
		if (ok && max_conn > 0 && reserved >= max_conn) {
			pg_err_set(err, "superuser_reserved_connections (%ld) must be less than max_connections (%ld)",
			           reserved, max_conn);
			*refused = true;
		}
	}
	free(buf);
	return ok;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP ? rmdir(path) : unlink(path))
		return errno == ENOENT ? 0 : -1;
	return 0;
}

bool pg_datadir_remove(const char *data_dir, struct pg_err *err)
{
	size_t n;
	bool only_slashes_and_dots = true;

	if (data_dir == NULL || data_dir[0] != '/') {
		pg_err_set(err, "refusing to remove \"%s\": not an absolute path", data_dir ? data_dir : "(null)");
		return false;
	}
	n = strlen(data_dir);
	for (size_t i = 0; i < n; i++) {
		if (data_dir[i] != '/' && data_dir[i] != '.')
			only_slashes_and_dots = false;
	}
	if (only_slashes_and_dots || strstr(data_dir, "/../") != NULL ||
	    (n >= 3 && strcmp(data_dir + n - 3, "/..") == 0)) {
		pg_err_set(err, "refusing to remove \"%s\"", data_dir);
		return false;
	}
	pg_log(PG_LOG_INFO, "removing data directory %s", data_dir);
	errno = 0;
	if (nftw(data_dir, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0) {
		if (errno == ENOENT)
			return true;
		pg_err_set(err, "cannot remove %s: %s", data_dir, strerror(errno));
		return false;
	}
	return true;
}

bool pg_datadir_move_aside(const char *data_dir, char *moved, size_t len, struct pg_err *err)
{
	char stamp[32];
	struct tm tm;
	time_t t = time(NULL);
	struct stat st;

	if (len > 0)
		moved[0] = '\0';
	if (data_dir == NULL || data_dir[0] != '/' || strcmp(data_dir, "/") == 0 || strstr(data_dir, "/..") != NULL) {
		pg_err_set(err, "refusing to move \"%s\" aside", data_dir ? data_dir : "(null)");
		return false;
	}
	if (lstat(data_dir, &st) != 0 && errno == ENOENT)
		return true;
	if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm) == 0) {
		pg_err_set(err, "cannot format the time for the new name of %s", data_dir);
		return false;
	}
	for (int i = 1; i <= 100; i++) {
		int k = i == 1 ? snprintf(moved, len, "%s.failed-%s", data_dir, stamp)
		               : snprintf(moved, len, "%s.failed-%s-%d", data_dir, stamp, i);

		if (k < 0 || (size_t)k >= len) {
			pg_err_set(err, "the new name of %s is too long", data_dir);
			return false;
		}
		if (lstat(moved, &st) == 0)
			continue;
		if (rename(data_dir, moved) != 0) {
			pg_err_set(err, "cannot rename %s to %s: %s", data_dir, moved, strerror(errno));
			return false;
		}
		pg_log(PG_LOG_INFO, "moved data directory %s aside to %s", data_dir, moved);
		return true;
	}
	pg_err_set(err, "cannot move %s aside: the names %s.failed-%s* are taken", data_dir, data_dir, stamp);
	return false;
}
