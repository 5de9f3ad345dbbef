/*
 * pg_conf.c - writing the configuration files the agent owns.
 *
 * Each file is built in memory, written to "<name>.baton-tmp" in the same
 * directory, fsync'ed, renamed over the old one, and the directory is
 * fsync'ed: a crash leaves either the old file or the new one, never a
 * mix. Values are validated before anything is written, so a bad value
 * (a newline, a parameter name that is not one) is an error, not a file
 * Postgres refuses to start with.
 */
#include "pg/pg_conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pg_spawn.h"

#define RECOVERY_FILE "baton.recovery.conf"

/* A growable string; `failed` sticks after the first allocation failure so
 * callers check once at the end. */
struct sbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void sb_addn(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->failed)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		char *p;

		while (cap < sb->len + n + 1)
			cap *= 2;
		p = realloc(sb->data, cap);
		if (p == NULL) {
			sb->failed = true;
			return;
		}
		sb->data = p;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void sb_add(struct sbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

/* A postgresql.conf string: '...' where ' is doubled and \ is doubled (the
 * configuration file lexer treats backslash as an escape character). */
static void sb_add_conf_quoted(struct sbuf *sb, const char *v)
{
	sb_add(sb, "'");
	for (; *v != '\0'; v++) {
		if (*v == '\'')
			sb_add(sb, "''");
		else if (*v == '\\')
			sb_add(sb, "\\\\");
		else
			sb_addn(sb, v, 1);
	}
	sb_add(sb, "'");
}

static bool one_line(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static bool valid_param_name(const char *name)
{
	if (name == NULL || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (const char *s = name; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
			return false;
	}
	return true;
}

/* fsync of the directory holding path, so that a rename survives a crash. */
static bool fsync_parent(const char *path, struct pg_err *err)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;
	bool ok;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else if ((size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	} else {
		pg_err_set(err, "path too long: %s", path);
		return false;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pg_err_set(err, "cannot open directory %s: %s", dir, strerror(errno));
		return false;
	}
	ok = fsync(fd) == 0;
	if (!ok)
		pg_err_set(err, "cannot fsync directory %s: %s", dir, strerror(errno));
	close(fd);
	return ok;
}

/* Replaces path atomically with data (len bytes), file mode `mode`. */
static bool write_atomic(const char *path, const char *data, size_t len, mode_t mode, struct pg_err *err)
{
	char tmp[4200];
	int fd = -1;
	size_t done = 0;
	bool ok = false;

	if (snprintf(tmp, sizeof(tmp), "%s.baton-tmp", path) >= (int)sizeof(tmp)) {
		pg_err_set(err, "path too long: %s", path);
		return false;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		pg_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
		return false;
	}
	/* The umask, or an older file of that name, may have left other bits. */
	if (fchmod(fd, mode) != 0) {
		pg_err_set(err, "cannot chmod %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pg_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
			goto cleanup;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		pg_err_set(err, "cannot fsync %s: %s", tmp, strerror(errno));
		goto cleanup;
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
	ok = fsync_parent(path, err);
cleanup:
	if (fd >= 0)
		close(fd);
	if (!ok)
		(void)unlink(tmp);
	return ok;
}

/* Writes sb to data_dir/name (mode 0600); frees sb in all cases. */
static bool write_sb(const char *data_dir, const char *name, struct sbuf *sb, struct pg_err *err)
{
	char path[4096];
	bool ok = false;

	if (sb->failed) {
		pg_err_set(err, "%s: out of memory", name);
	} else if (pg_path_join(path, sizeof(path), data_dir, name, err)) {
		ok = write_atomic(path, sb->data != NULL ? sb->data : "", sb->len, 0600, err);
		if (ok)
			pg_log(PG_LOG_DEBUG, "wrote %s", path);
	}
	free(sb->data);
	sb->data = NULL;
	return ok;
}

static const char header[] = "# Written by baton: every change made here is lost when baton rewrites it.\n";

bool pg_conf_write(const char *data_dir, const struct pg_param *params, size_t n_params, struct pg_err *err)
{
	struct sbuf sb = { 0 };

	for (size_t i = 0; i < n_params; i++) {
		if (!valid_param_name(params[i].name)) {
			pg_err_set(err, "postgresql.conf: invalid parameter name \"%s\"",
			           params[i].name ? params[i].name : "(null)");
			return false;
		}
		if (!one_line(params[i].value)) {
			pg_err_set(err, "postgresql.conf: parameter %s: value missing or holds a line break",
			           params[i].name);
			return false;
		}
	}
	sb_add(&sb, header);
	for (size_t i = 0; i < n_params; i++) {
		bool overridden = false;

		/* Parameter names are case-insensitive in Postgres. */
		for (size_t j = i + 1; j < n_params && !overridden; j++)
			overridden = strcasecmp(params[i].name, params[j].name) == 0;
		if (overridden)
			continue;
		sb_add(&sb, params[i].name);
		sb_add(&sb, " = ");
		sb_add_conf_quoted(&sb, params[i].value);
		sb_add(&sb, "\n");
	}
	sb_add(&sb, "include_if_exists = '" RECOVERY_FILE "'\n");
	return write_sb(data_dir, "postgresql.conf", &sb, err);
}

bool pg_conf_write_recovery(const char *data_dir, const char *primary_conninfo, struct pg_err *err)
{
	struct sbuf sb = { 0 };

	if (primary_conninfo == NULL)
		primary_conninfo = "";
	if (!one_line(primary_conninfo)) {
		pg_err_set(err, RECOVERY_FILE ": primary_conninfo holds a line break");
		return false;
	}
	sb_add(&sb, header);
	sb_add(&sb, "primary_conninfo = ");
	sb_add_conf_quoted(&sb, primary_conninfo);
	sb_add(&sb, "\nrecovery_target_timeline = 'latest'\n");
	return write_sb(data_dir, RECOVERY_FILE, &sb, err);
}

bool pg_conf_write_file(const char *data_dir, const char *name, const char *data, size_t len, struct pg_err *err)
{
	char path[4096];

	if (!pg_path_join(path, sizeof(path), data_dir, name, err))
		return false;
	return write_atomic(path, data, len, 0600, err);
}

bool pg_conf_set_standby(const char *data_dir, bool standby, struct pg_err *err)
{
	char path[4096];

	if (!pg_path_join(path, sizeof(path), data_dir, "standby.signal", err))
		return false;
	if (standby) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		bool synced;

		if (fd < 0) {
			pg_err_set(err, "cannot create %s: %s", path, strerror(errno));
			return false;
		}
		synced = fsync(fd) == 0;
		close(fd);
		if (!synced) {
			pg_err_set(err, "cannot fsync %s: %s", path, strerror(errno));
			return false;
		}
	} else if (unlink(path) != 0) {
		if (errno == ENOENT)
			return true;
		pg_err_set(err, "cannot remove %s: %s", path, strerror(errno));
		return false;
	}
	return fsync_parent(path, err);
}

/* Writes data_dir/name: the header, then one line per entry. */
static bool write_lines(const char *data_dir, const char *name, const char *const *lines, size_t n_lines,
                        struct pg_err *err)
{
	struct sbuf sb = { 0 };

	for (size_t i = 0; i < n_lines; i++) {
		if (!one_line(lines[i])) {
			pg_err_set(err, "%s: entry %zu is missing or holds a line break", name, i + 1);
			return false;
		}
	}
	sb_add(&sb, header);
	for (size_t i = 0; i < n_lines; i++) {
		sb_add(&sb, lines[i]);
		sb_add(&sb, "\n");
	}
	return write_sb(data_dir, name, &sb, err);
}

bool pg_conf_write_hba(const char *data_dir, const char *const *lines, size_t n_lines, struct pg_err *err)
{
	return write_lines(data_dir, "pg_hba.conf", lines, n_lines, err);
}

bool pg_conf_write_ident(const char *data_dir, const char *const *lines, size_t n_lines, struct pg_err *err)
{
	return write_lines(data_dir, "pg_ident.conf", lines, n_lines, err);
}

/* A pgpass field: ':' and '\' escaped with a backslash. */
static void sb_add_pgpass_field(struct sbuf *sb, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == ':' || *v == '\\')
			sb_add(sb, "\\");
		sb_addn(sb, v, 1);
	}
}

bool pg_conf_write_pgpass(const char *path, const char *const *users, const char *const *passwords, size_t n,
                          struct pg_err *err)
{
	struct sbuf sb = { 0 };
	bool ok;

	for (size_t i = 0; i < n; i++) {
		if (!one_line(users[i]) || !one_line(passwords[i]) || users[i][0] == '\0') {
			/* No value in the message: it may be a password. */
			pg_err_set(err, "pgpass %s: entry %zu: user or password missing or holds a line break", path,
			           i + 1);
			return false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		sb_add(&sb, "*:*:*:");
		sb_add_pgpass_field(&sb, users[i]);
		sb_add(&sb, ":");
		sb_add_pgpass_field(&sb, passwords[i]);
		sb_add(&sb, "\n");
	}
	if (sb.failed) {
		free(sb.data);
		pg_err_set(err, "pgpass %s: out of memory", path);
		return false;
	}
	ok = write_atomic(path, sb.data != NULL ? sb.data : "", sb.len, 0600, err);
	/* The buffer held passwords: do not leave them in freed memory. */
	if (sb.data != NULL)
		explicit_bzero(sb.data, sb.cap);
	free(sb.data);
	return ok;
}

bool pg_conninfo_quote(const char *value, char *buf, size_t len)
{
	size_t pos = 0;

	if (value == NULL)
		value = "";
	if (len < 3)
		return false;
	buf[pos++] = '\'';
	for (; *value != '\0'; value++) {
		bool esc = *value == '\'' || *value == '\\';

		/* room for: escape, char, closing quote, NUL */
		if (pos + (esc ? 2 : 1) + 2 > len)
			return false;
		if (esc)
			buf[pos++] = '\\';
		buf[pos++] = *value;
	}
	buf[pos++] = '\'';
	buf[pos] = '\0';
	return true;
}
