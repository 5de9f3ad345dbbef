/*
 * pg_replica.c - running the programs that create a replica (see
 * pg_replica.h): pg_basebackup with its options, and a restore command
 * split into words without a shell. The argv builders have no side
 * effects, so the unit tests check exactly what would run.
 */
#include "pg/pg_replica.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pg_data.h"
#include "pg/pg_spawn.h"

#define MAX_WORDS 64

void pg_words_free(struct pg_words *w)
{
	free(w->buf);
	free(w->argv);
	memset(w, 0, sizeof(*w));
}

/* Characters a shell would act on outside quotes (~ and # only at the
 * start of a word): refused, since no shell runs. */
static bool shell_special(char ch, bool word_start)
{
	return strchr("|&;<>()$`*?[]", ch) != NULL || (word_start && (ch == '~' || ch == '#'));
}

bool pg_words_split(const char *cmd, struct pg_words *out, struct pg_err *err)
{
	size_t len, o = 0, n = 0;
	bool in_word = false;
	const char *s;

	memset(out, 0, sizeof(*out));
	if (cmd == NULL) {
		pg_err_set(err, "empty command");
		return false;
	}
	len = strlen(cmd);
	out->buf = malloc(len + 1);
	out->argv = calloc(MAX_WORDS + 1, sizeof(*out->argv));
	if (out->buf == NULL || out->argv == NULL) {
		pg_err_set(err, "out of memory");
		goto fail;
	}
	for (s = cmd; *s;) {
		char ch = *s;

		if (ch == ' ' || ch == '\t') {
			if (in_word) {
				out->buf[o++] = '\0';
				in_word = false;
			}
			s++;
			continue;
		}
		if (ch == '\n' || ch == '\r') {
			pg_err_set(err, "command holds a line break");
			goto fail;
		}
		if (!in_word && shell_special(ch, true)) {
			pg_err_set(
			        err,
			        "'%c' at character %zu: no shell runs the command (quote it if it is meant literally)",
			        ch, (size_t)(s - cmd) + 1);
			goto fail;
		}
		if (!in_word) {
			if (n == MAX_WORDS) {
				pg_err_set(err, "command has more than %d words", MAX_WORDS);
				goto fail;
			}
			out->argv[n++] = out->buf + o;
			in_word = true;
		}
		if (ch == '\'') {
			const char *end = strchr(s + 1, '\'');

			if (end == NULL) {
				pg_err_set(err, "unterminated ' at character %zu", (size_t)(s - cmd) + 1);
				goto fail;
			}
			memcpy(out->buf + o, s + 1, (size_t)(end - s - 1));
			o += (size_t)(end - s - 1);
			s = end + 1;
		} else if (ch == '"') {
			const char *q = s + 1;

			for (; *q && *q != '"'; q++) {
				if (*q == '\\' && (q[1] == '"' || q[1] == '\\' || q[1] == '$' || q[1] == '`'))
					q++;
				else if (*q == '$' || *q == '`') {
					pg_err_set(err, "%c inside \"...\" at character %zu: no shell runs the command",
					           *q, (size_t)(q - cmd) + 1);
					goto fail;
				}
				out->buf[o++] = *q;
			}
			if (*q != '"') {
				pg_err_set(err, "unterminated \" at character %zu", (size_t)(s - cmd) + 1);
				goto fail;
			}
			s = q + 1;
		} else if (ch == '\\') {
			if (s[1] == '\0') {
				pg_err_set(err, "trailing backslash");
				goto fail;
			}
			out->buf[o++] = s[1];
			s += 2;
		} else if (shell_special(ch, false)) {
			pg_err_set(
			        err,
			        "'%c' at character %zu: no shell runs the command (quote it if it is meant literally)",
			        ch, (size_t)(s - cmd) + 1);
			goto fail;
		} else {
			out->buf[o++] = ch;
			s++;
		}
	}
	if (in_word)
		out->buf[o++] = '\0';
	if (n == 0) {
		pg_err_set(err, "empty command");
		goto fail;
	}
	out->argv[n] = NULL;
	out->n = n;
	return true;
fail:
	pg_words_free(out);
	return false;
}

void pg_replica_argv_free(struct pg_replica_argv *a)
{
	pg_words_free(&a->words);
	free(a->argv);
	for (size_t i = 0; i < sizeof(a->params) / sizeof(a->params[0]); i++)
		free(a->params[i]);
	memset(a, 0, sizeof(*a));
}

/* "--NAME=VALUE", malloc'd. */
static char *param(const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 4;
	char *p = malloc(len);

	if (p != NULL)
		snprintf(p, len, "--%s=%s", name, value);
	return p;
}

bool pg_replica_argv_build(struct pg_replica_argv *a, const struct pg_replica_cmd *c, struct pg_err *err)
{
	size_t n = 0, np = 0;

	memset(a, 0, sizeof(*a));
	if (!pg_words_split(c->command, &a->words, err))
		return false;
	if (a->words.argv[0][0] != '/') {
		pg_err_set(err, "the program \"%.200s\" is not an absolute path", a->words.argv[0]);
		goto fail;
	}
	if (!c->no_params) {
		if (c->scope == NULL || c->datadir == NULL) {
			pg_err_set(err, "scope and datadir are required");
			goto fail;
		}
		a->params[np++] = param("scope", c->scope);
		a->params[np++] = param("datadir", c->datadir);
		if (c->role != NULL)
			a->params[np++] = param("role", c->role);
		if (c->connstring != NULL && c->connstring[0])
			a->params[np++] = param("connstring", c->connstring);
		for (size_t i = 0; i < np; i++)
			if (a->params[i] == NULL) {
				pg_err_set(err, "out of memory");
				goto fail;
			}
	}
	a->argv = calloc(a->words.n + np + 1, sizeof(*a->argv));
	if (a->argv == NULL) {
		pg_err_set(err, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < a->words.n; i++)
		a->argv[n++] = a->words.argv[i];
	for (size_t i = 0; i < np; i++)
		a->argv[n++] = a->params[i];
	a->argv[n] = NULL;
	a->n = n;
	return true;
fail:
	pg_replica_argv_free(a);
	return false;
}

bool pg_replica_cmd_start(const struct pg_paths *p, const char *what, const struct pg_replica_cmd *c, bool keep_data,
                          struct pg_child *child, struct pg_err *err)
{
	struct pg_replica_argv a;
	char envbuf[4200];
	const char *env[2] = { NULL, NULL };
	bool ok;

	if (p->data_dir == NULL) {
		pg_err_set(err, "%s: data_dir is required", what);
		return false;
	}
	if (!keep_data && pg_datadir_inspect(p->data_dir) != PG_DATADIR_MISSING) {
		pg_err_set(err, "%s: data directory %s exists and is not empty", what, p->data_dir);
		return false;
	}
	/* A restore wants the directory to exist (pgBackRest does). */
	if (mkdir(p->data_dir, 0700) != 0 && errno != EEXIST) {
		pg_err_set(err, "%s: cannot create the data directory %s: %s", what, p->data_dir, strerror(errno));
		return false;
	}
	if (!pg_replica_argv_build(&a, c, err))
		return false;
	if (p->pgpass != NULL && snprintf(envbuf, sizeof(envbuf), "PGPASSFILE=%s", p->pgpass) < (int)sizeof(envbuf))
		env[0] = envbuf;
	{
		struct pg_spawn_opts o = { .what = what,
			                   .argv = a.argv,
			                   .env_set = env,
			                   .log_file = p->log_file,
			                   .out_fd = -1,
			                   .death_signal = SIGTERM };

		ok = pg_spawn(&o, child, err);
	}
	pg_replica_argv_free(&a);
	return ok;
}

bool pg_basebackup_rate_ok(const char *v, char *why, size_t len)
{
	char *end;
	long n;
	double kb;

	errno = 0;
	n = v != NULL && v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : -1;
	if (n < 0 || errno != 0) {
		snprintf(why, len, "expected kB/s as digits with an optional k or M suffix (\"100M\")");
		return false;
	}
	if (*end == 'M')
		kb = (double)n * 1024, end++;
	else if (*end == 'k')
		kb = (double)n, end++;
	else
		kb = (double)n;
	if (*end != '\0') {
		snprintf(why, len, "expected kB/s as digits with an optional k or M suffix (\"100M\")");
		return false;
	}
	if (kb < 32 || kb > 1024 * 1024) {
		snprintf(why, len, "must be between 32 kB/s and 1024 MB/s");
		return false;
	}
	return true;
}

bool pg_basebackup_argv_build(struct pg_basebackup_argv *a, const char *prog, const char *data_dir,
                              const char *conninfo, const struct pg_basebackup_opts *o, struct pg_err *err)
{
	const char *ck = o != NULL && o->checkpoint != NULL && o->checkpoint[0] ? o->checkpoint : "fast";
	size_t n = 0;
	char why[120];

	memset(a, 0, sizeof(*a));
	if (strcmp(ck, "fast") != 0 && strcmp(ck, "spread") != 0) {
		pg_err_set(err, "pg_basebackup: checkpoint must be \"fast\" or \"spread\" (got \"%.40s\")", ck);
		return false;
	}
	snprintf(a->checkpoint, sizeof(a->checkpoint), "--checkpoint=%s", ck);
	a->argv[n++] = prog;
	a->argv[n++] = "-D";
	a->argv[n++] = data_dir;
	a->argv[n++] = "-X";
	a->argv[n++] = "stream";
	a->argv[n++] = a->checkpoint;
	if (o != NULL && o->max_rate != NULL && o->max_rate[0]) {
		if (!pg_basebackup_rate_ok(o->max_rate, why, sizeof(why)) ||
		    snprintf(a->max_rate, sizeof(a->max_rate), "--max-rate=%s", o->max_rate) >=
		            (int)sizeof(a->max_rate)) {
			pg_err_set(err, "pg_basebackup: max-rate \"%.40s\": %s", o->max_rate, why);
			return false;
		}
		a->argv[n++] = a->max_rate;
	}
	a->argv[n++] = "--no-password";
	a->argv[n++] = "-d";
	a->argv[n++] = conninfo;
	a->argv[n] = NULL;
	return true;
}

bool pg_basebackup_start_opts(const struct pg_paths *p, const char *conninfo, const struct pg_basebackup_opts *o,
                              struct pg_child *child, struct pg_err *err)
{
	char prog[4096], envbuf[4200];
	const char *env[2] = { NULL, NULL };
	struct pg_basebackup_argv a;

	if (p->bin_dir == NULL || p->data_dir == NULL) {
		pg_err_set(err, "pg_basebackup: bin_dir and data_dir are required");
		return false;
	}
	if (!pg_path_join(prog, sizeof(prog), p->bin_dir, "pg_basebackup", err))
		return false;
	if (pg_datadir_inspect(p->data_dir) != PG_DATADIR_MISSING) {
		pg_err_set(err, "pg_basebackup: data directory %s exists and is not empty", p->data_dir);
		return false;
	}
	if (!pg_basebackup_argv_build(&a, prog, p->data_dir, conninfo, o, err))
		return false;
	if (p->pgpass != NULL && snprintf(envbuf, sizeof(envbuf), "PGPASSFILE=%s", p->pgpass) < (int)sizeof(envbuf))
		env[0] = envbuf;
	{
		struct pg_spawn_opts so = { .what = "pg_basebackup",
			                    .argv = a.argv,
			                    .env_set = env,
			                    .log_file = p->log_file,
			                    .out_fd = -1,
			                    .death_signal = SIGTERM };

		return pg_spawn(&so, child, err);
	}
}

/* ---- recovery settings left in postgresql.auto.conf ---------------------- */

static const char *const recovery_names[] = {
	"primary_conninfo",     "primary_slot_name",        "restore_command",      "archive_cleanup_command",
	"recovery_end_command", "recovery_min_apply_delay", "promote_trigger_file", "standby_mode",
};

static bool recovery_name(const char *name, size_t n)
{
	if (n > strlen("recovery_target") && strncasecmp(name, "recovery_target", strlen("recovery_target")) == 0)
		return true;
	if (n == strlen("recovery_target") && strncasecmp(name, "recovery_target", n) == 0)
		return true;
	for (size_t i = 0; i < sizeof(recovery_names) / sizeof(recovery_names[0]); i++)
		if (strlen(recovery_names[i]) == n && strncasecmp(name, recovery_names[i], n) == 0)
			return true;
	return false;
}

size_t pg_auto_conf_filter(const char *in, char *out, char *removed, size_t rlen)
{
	size_t dropped = 0, o = 0, r = 0;
	const char *line = in;

	if (rlen > 0)
		removed[0] = '\0';
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
		const char *p = line, *name;
		size_t n;

		while (p < line + len && (*p == ' ' || *p == '\t'))
			p++;
		name = p;
		while (p < line + len && (isalnum((unsigned char)*p) || *p == '_' || *p == '.'))
			p++;
		n = (size_t)(p - name);
		while (p < line + len && (*p == ' ' || *p == '\t'))
			p++;
		/* "name = value" or "name value" (both are valid in the file). */
		if (n > 0 && p < line + len && *p != '#' && *p != '\n' && recovery_name(name, n)) {
			int w = rlen > r ? snprintf(removed + r, rlen - r, "%s%.*s", r ? ", " : "", (int)n, name) : 0;

			if (w > 0)
				r = r + (size_t)w < rlen ? r + (size_t)w : rlen - 1;
			dropped++;
		} else {
			memcpy(out + o, line, len);
			o += len;
		}
		line += len;
	}
	out[o] = '\0';
	return dropped;
}

bool pg_auto_conf_strip_recovery(const char *data_dir, char *removed, size_t rlen, struct pg_err *err)
{
	char path[4096], tmp[4200];
	char *in = NULL, *out = NULL;
	FILE *f = NULL;
	long size;
	int fd = -1;
	bool ok = false;

	if (rlen > 0)
		removed[0] = '\0';
	if (snprintf(path, sizeof(path), "%s/postgresql.auto.conf", data_dir) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s.baton-tmp", path) >= (int)sizeof(tmp)) {
		pg_err_set(err, "data directory path too long");
		return false;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return true;
		pg_err_set(err, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0) {
		pg_err_set(err, "cannot read %s (or it is over 1 MB)", path);
		goto cleanup;
	}
	in = malloc((size_t)size + 1);
	out = malloc((size_t)size + 1);
	if (in == NULL || out == NULL) {
		pg_err_set(err, "reading %s: out of memory", path);
		goto cleanup;
	}
	if (fread(in, 1, (size_t)size, f) != (size_t)size) {
		pg_err_set(err, "cannot read %s", path);
		goto cleanup;
	}
	in[size] = '\0';
	if (strlen(in) != (size_t)size) {
		pg_err_set(err, "%s holds a NUL byte", path);
		goto cleanup;
	}
	if (pg_auto_conf_filter(in, out, removed, rlen) == 0) {
		ok = true;
		goto cleanup;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		pg_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	{
		size_t len = strlen(out);

		if (write(fd, out, len) != (ssize_t)len || fsync(fd) != 0) {
			pg_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
			goto cleanup;
		}
	}
	if (close(fd) != 0) {
		fd = -1;
		pg_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		pg_err_set(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto cleanup;
	}
	ok = true;
cleanup:
	if (fd >= 0)
		close(fd);
	if (!ok)
		(void)unlink(tmp);
	if (f != NULL)
		fclose(f);
	free(in);
	free(out);
	return ok;
}

/* ---- a backup restored to bootstrap a new cluster ------------------------ */

#define BOOT_MARKER "baton.bootstrap-recovery"

/* Appends "name = 'value'\n" to out at *o, quoting ' as ''. */
static bool conf_line(char *out, size_t len, size_t *o, const char *name, const char *value, struct pg_err *err)
{
	int k = snprintf(out + *o, len - *o, "%s = '", name);

	if (k < 0 || (size_t)k >= len - *o)
		goto full;
	*o += (size_t)k;
	for (const char *v = value; *v; v++) {
		if (*v == '\n' || *v == '\r') {
			pg_err_set(err, "%s holds a line break", name);
			return false;
		}
		if (*o + 3 >= len)
			goto full;
		if (*v == '\'')
			out[(*o)++] = '\'';
		out[(*o)++] = *v;
	}
	if (*o + 3 >= len)
		goto full;
	out[(*o)++] = '\'';
	out[(*o)++] = '\n';
	out[*o] = '\0';
	return true;
full:
	pg_err_set(err, "the recovery settings do not fit in %zu bytes", len);
	return false;
}

bool pg_boot_recovery_render(const struct pg_boot_recovery *r, char *out, size_t len, struct pg_err *err)
{
	size_t o = 0;

	if (len == 0) {
		pg_err_set(err, "no room for the recovery settings");
		return false;
	}
	out[0] = '\0';
	if (!r->keep_existing) {
		if (r->restore_command != NULL && r->restore_command[0] &&
		    !conf_line(out, len, &o, "restore_command", r->restore_command, err))
			return false;
		if (r->target_name != NULL && r->target_value != NULL &&
		    (!conf_line(out, len, &o, r->target_name, r->target_value, err) ||
		     !conf_line(out, len, &o, "recovery_target_inclusive", r->inclusive ? "on" : "off", err)))
			return false;
	}
	return conf_line(out, len, &o, "recovery_target_action", "promote", err);
}

/* Creates (make) or removes data_dir/NAME. */
static bool signal_file(const char *data_dir, const char *name, bool make, struct pg_err *err)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= (int)sizeof(path)) {
		pg_err_set(err, "data directory path too long");
		return false;
	}
	if (!make) {
		if (unlink(path) != 0 && errno != ENOENT) {
			pg_err_set(err, "cannot remove %s: %s", path, strerror(errno));
			return false;
		}
		return true;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || close(fd) != 0) {
		pg_err_set(err, "cannot create %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool pg_boot_recovery_prepare(const char *data_dir, const struct pg_boot_recovery *r, char *removed, size_t rlen,
                              struct pg_err *err)
{
	char lines[8192], path[4096], last = '\n';
	struct stat st;
	int fd = -1;
	bool ok = false;

	if (rlen > 0)
		removed[0] = '\0';
	if (!pg_boot_recovery_render(r, lines, sizeof(lines), err))
		return false;
	if (!r->keep_existing && !pg_auto_conf_strip_recovery(data_dir, removed, rlen, err))
		return false;
	if (snprintf(path, sizeof(path), "%s/postgresql.auto.conf", data_dir) >= (int)sizeof(path)) {
		pg_err_set(err, "data directory path too long");
		return false;
	}
	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		pg_err_set(err, "cannot open %s: %s", path, strerror(errno));
		return false;
	}
	/* A file that does not end its last line would glue ours to it. */
	if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		last = '\n';
	if ((last != '\n' && write(fd, "\n", 1) != 1) || write(fd, lines, strlen(lines)) != (ssize_t)strlen(lines) ||
	    fsync(fd) != 0) {
		pg_err_set(err, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!signal_file(data_dir, "standby.signal", false, err) ||
	    !signal_file(data_dir, "recovery.signal", true, err) || !signal_file(data_dir, BOOT_MARKER, true, err))
		goto cleanup;
	ok = true;
cleanup:
	if (fd >= 0)
		close(fd);
	return ok;
}

bool pg_boot_recovery_pending(const char *data_dir)
{
	char path[4096];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", data_dir, BOOT_MARKER) < (int)sizeof(path) &&
	       lstat(path, &st) == 0;
}

bool pg_boot_recovery_done(const char *data_dir, char *removed, size_t rlen, struct pg_err *err)
{
	return pg_auto_conf_strip_recovery(data_dir, removed, rlen, err) &&
	       signal_file(data_dir, BOOT_MARKER, false, err);
}
