/*
 * pg_conf.h - the configuration files the agent owns in a data directory.
 *
 * The agent rewrites these before every start and after every pg_rewind
 * (pg_rewind copies the source's postgresql.conf, so nothing per-node may
 * live only there):
 *   postgresql.conf            every parameter, plus
 *                              include_if_exists 'baton.recovery.conf'
 *   baton.recovery.conf        primary_conninfo, recovery_target_timeline
 *                              = 'latest' (empty when no leader is known)
 *   standby.signal             present iff the server must start as a replica
 *   pg_hba.conf                the lines from the agent's config
 *   pg_ident.conf              likewise (only when the config has lines)
 * Files are written to a temporary name and renamed, so a crash never leaves
 * half a file behind. Values are quoted as postgresql.conf wants ('' for ').
 */
#ifndef BATON_PG_CONF_H
#define BATON_PG_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "pg/pg_err.h"

struct pg_param {
	const char *name;
	const char *value;
};

/* Writes data_dir/postgresql.conf with the given parameters in order (a name
 * given twice: the last one wins) and the include line for the recovery file. */
bool pg_conf_write(const char *data_dir, const struct pg_param *params, size_t n_params, struct pg_err *err) PG_WUR;

/* Writes data_dir/baton.recovery.conf. primary_conninfo NULL or "" = no
 * upstream (the replica waits). */
bool pg_conf_write_recovery(const char *data_dir, const char *primary_conninfo, struct pg_err *err) PG_WUR;

/* Replaces data_dir/name atomically (mode 0600, fsync'ed): a crash leaves
 * the old file or the new one. For the agent's own state kept beside the
 * data (not read by Postgres). */
bool pg_conf_write_file(const char *data_dir, const char *name, const char *data, size_t len,
                        struct pg_err *err) PG_WUR;

/* Creates (standby = true) or removes data_dir/standby.signal. */
bool pg_conf_set_standby(const char *data_dir, bool standby, struct pg_err *err) PG_WUR;

/* Writes data_dir/pg_hba.conf, one entry per line. */
bool pg_conf_write_hba(const char *data_dir, const char *const *lines, size_t n_lines, struct pg_err *err) PG_WUR;

/* Writes data_dir/pg_ident.conf (user name maps), one entry per line. */
bool pg_conf_write_ident(const char *data_dir, const char *const *lines, size_t n_lines, struct pg_err *err) PG_WUR;

/* Writes a pgpass file (mode 0600) with one "*:*:*:user:password" line per
 * pair, escaping ':' and '\'. */
bool pg_conf_write_pgpass(const char *path, const char *const *users, const char *const *passwords, size_t n,
                          struct pg_err *err) PG_WUR;

/*
 * Parameters whose value Postgres executes, loads as code, or uses as a path
 * it reads secrets or configuration from or writes files to (archive_command,
 * shared_preload_libraries, ssl_key_file, log_directory, ...), that turn off
 * a permission check (lo_compat_privileges, ...), and every custom
 * parameter (a name with a '.': plperl.on_init runs code, and no list of
 * extensions' parameters is complete); the list and why each is on it are
 * in pg_code_params.c. Whoever can set one of these can run code as the
 * Postgres user or read what is not theirs, so the agent takes them only
 * from the node's own file: see postgresql.allow_from_dcs. The name is
 * compared as Postgres does, ignoring case. pg_conf_code_param_at(i) is the
 * i-th listed name (custom ones are not listed), NULL past the last.
 */
bool pg_conf_param_runs_code(const char *name);
const char *pg_conf_code_param_at(size_t i);
/* A custom (extension's) parameter: its name holds a '.'. */
bool pg_conf_param_is_custom(const char *name);
/* Why such a parameter is taken only from the node's own file, for an
 * error or warning ("it runs or loads code", ...); never NULL. */
const char *pg_conf_local_only_why(const char *name);

/* Quotes a conninfo value ('...' with \' and \\) into buf; false if too small. */
bool pg_conninfo_quote(const char *value, char *buf, size_t len);

#endif
