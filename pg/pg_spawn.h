/*
 * pg_spawn.h - library-internal: start a Postgres program as a child.
 *
 * One function forks and execs every program the library runs (postgres,
 * initdb, pg_basebackup, pg_rewind, pg_controldata), so that all of them
 * get the same treatment: the command line is logged first (connection
 * passwords masked, though none should ever be there), the child gets its
 * own process group and a parent-death signal, a clean signal state,
 * stdin from /dev/null, output appended to a log file (or sent to a pipe),
 * and no inherited descriptors. Not part of the public API of pg/.
 */
#ifndef BATON_PG_SPAWN_H
#define BATON_PG_SPAWN_H

#include <stdbool.h>

#include "pg/pg_ctl.h"
#include "pg/pg_err.h"

struct pg_spawn_opts {
	const char *what;           /* short name for messages: "initdb" */
	const char *const *argv;    /* argv[0] is the program's full path; NULL-terminated */
	const char *const *env_set; /* "NAME=value" added or replacing; NULL-terminated, or NULL */
	const char *log_file;       /* stdout+stderr appended here (NULL: /dev/null) ... */
	int out_fd;                 /* ... unless out_fd >= 0: then they go to out_fd (not closed) */
	int death_signal;           /* sent by the kernel when the forking thread dies */
	bool quiet;                 /* log the command line at debug level (a frequent read-only tool) */
};

/* Forks and execs. On success child->pid/what/started are set and the child
 * runs; the caller must reap it (pg_child_poll/pg_child_kill/...). On failure
 * nothing is left running. A child that cannot exec exits with status 127
 * after writing one line to its output. */
bool pg_spawn(const struct pg_spawn_opts *o, struct pg_child *child, struct pg_err *err) PG_WUR;

/* snprintf(buf, len, "%s/%s", dir, name) with a truncation check. */
bool pg_path_join(char *buf, size_t len, const char *dir, const char *name, struct pg_err *err) PG_WUR;

#endif
