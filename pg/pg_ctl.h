/*
 * pg_ctl.h - running Postgres programs as children of the agent.
 *
 * The postmaster is started as a direct child of the calling thread (never
 * daemonized), with PR_SET_PDEATHSIG = SIGQUIT so that the kernel asks it
 * for an immediate shutdown when that thread (the agent's main thread)
 * dies. Long operations (initdb, pg_basebackup, pg_rewind) are also child
 * processes: the *_start functions return at once with a struct pg_child,
 * and the agent's loop polls it with pg_child_poll() between lease renewals.
 * Output of every child goes to the log file given in struct pg_paths
 * (appended), and the command line is reported through the log hook.
 *
 * Passwords never appear on a command line: connection passwords come from
 * a pgpass file (PGPASSFILE / passfile=), the initdb password from a
 * temporary 0600 file that is removed afterwards.
 */
#ifndef BATON_PG_CTL_H
#define BATON_PG_CTL_H

#include <stdbool.h>
#include <sys/types.h>

#include "pg/pg_err.h"

struct pg_paths {
	const char *bin_dir; /* directory with postgres, initdb, pg_basebackup, pg_rewind, pg_controldata */
	const char *data_dir;
	const char *log_file; /* stdout+stderr of children are appended here */
	const char *pgpass;   /* pgpass file used by children that connect (PGPASSFILE) */
};

/* A supervised child process. */
struct pg_child {
	pid_t pid;      /* 0 when none */
	char what[32];  /* "initdb", "pg_basebackup", ... for messages */
	double started; /* monotonic seconds when started */
};

enum pg_child_state {
	PG_CHILD_NONE, /* no child (pid 0) */
	PG_CHILD_RUNNING,
	PG_CHILD_OK,     /* exited with status 0 (child reaped, pid reset to 0) */
	PG_CHILD_FAILED, /* exited non-zero or by signal (reaped; err says how) */
};

/* Non-blocking check of a child; reaps it when it has ended. */
enum pg_child_state pg_child_poll(struct pg_child *child, struct pg_err *err);
/* Kill (SIGTERM, then SIGKILL after grace seconds) and reap. Idempotent. */
void pg_child_kill(struct pg_child *child, double grace);

/* What a new cluster is created with (bootstrap.initdb in the agent's file). */
struct pg_initdb_opts {
	const char *encoding; /* -E; NULL or "": PG_INITDB_ENCODING */
	const char *locale;   /* --locale; NULL or "": PG_INITDB_LOCALE */
	bool data_checksums;  /* --data-checksums (page checksums, fixed for the cluster's life) */
	/* More options, each "name" or "name=value" without the leading "--"
	 * (bootstrap.initdb.options); at most PG_INITDB_MAX_EXTRA. Options the
	 * line above already holds (-D, -U, --pwfile, -E, --locale, --auth*)
	 * are refused by pg_initdb_argv_build. */
	char *const *extra;
	size_t n_extra;
};
#define PG_INITDB_MAX_EXTRA 32
#define PG_INITDB_ENCODING "UTF8"
#define PG_INITDB_LOCALE "C.UTF-8"
/* The defaults: UTF8, C.UTF-8, data checksums on. */
extern const struct pg_initdb_opts pg_initdb_defaults;

/* initdb's command line, built without side effects (unit-tested):
 *   PROG -D DATA_DIR -U SUPERUSER PWARG -E ENCODING --locale=LOCALE
 *        [--data-checksums] --auth-local=scram-sha-256 --auth-host=scram-sha-256
 *        [--EXTRA ...]
 * argv points into a (and into the arguments, which must outlive it); NULL
 * terminated. opts NULL: pg_initdb_defaults. False (err says which) when the
 * encoding or locale is empty after defaults, too long, or holds a character
 * other than letters, digits and "._-@" (the names initdb knows). */
struct pg_initdb_argv {
	const char *argv[16 + PG_INITDB_MAX_EXTRA];
	char extra[PG_INITDB_MAX_EXTRA][256];
	char encoding[64];
	char locale_arg[128];
};
bool pg_initdb_argv_build(struct pg_initdb_argv *a, const char *prog, const char *data_dir, const char *superuser,
                          const char *pwarg, const struct pg_initdb_opts *opts, struct pg_err *err) PG_WUR;

/* Is "name" or "name=value" an initdb option baton sets itself or must
 * not be given (the data directory, the superuser and its password, the
 * authentication methods, encoding and locale, which have keys of their
 * own)? Then true, with the reason in why. */
bool pg_initdb_option_reserved(const char *opt, char *why, size_t whylen);

/* Runs initdb as pg_initdb_argv_build says (password for the superuser
 * written to a temp file next to the data directory: the caller must call
 * pg_initdb_cleanup after the child ended). opts NULL: pg_initdb_defaults. */
bool pg_initdb_start(const struct pg_paths *p, const char *superuser, const char *password,
                     const struct pg_initdb_opts *opts, struct pg_child *child, struct pg_err *err) PG_WUR;
/* Runs bootstrap.post_bootstrap: `script URL` with PGPASSFILE=pgpass in its
 * environment, its output appended to the log file, as a child to reap
 * like the others. URL is the superuser's connection URL to the new
 * cluster over the unix socket. */
bool pg_post_bootstrap_start(const struct pg_paths *p, const char *script, const char *url, const char *pgpass,
                             struct pg_child *child, struct pg_err *err) PG_WUR;

/* Removes the temporary password file of initdb, if any. Idempotent. */
void pg_initdb_cleanup(const struct pg_paths *p);

/* pg_basebackup -D data_dir -X stream -c fast -d <conninfo> (conninfo names
 * the leader and the replication user; password via pgpass). data_dir must
 * be missing or empty. */
bool pg_basebackup_start(const struct pg_paths *p, const char *conninfo, struct pg_child *child,
                         struct pg_err *err) PG_WUR;

/* pg_rewind --target-pgdata=data_dir --source-server=<conninfo> (a normal,
 * non-replication connection as a superuser). Postgres must be stopped; an
 * uncleanly stopped target is crash-recovered by pg_rewind itself. */
bool pg_rewind_start(const struct pg_paths *p, const char *source_conninfo, struct pg_child *child,
                     struct pg_err *err) PG_WUR;

/* Starts `postgres -D data_dir` as a child with PR_SET_PDEATHSIG(SIGQUIT),
 * in its own process group, output appended to log_file. Configuration
 * comes from the files in data_dir (see pg_conf.h). Returns once forked;
 * use pg_query ping to learn when it accepts connections. */
bool pg_postmaster_start(const struct pg_paths *p, struct pg_child *child, struct pg_err *err) PG_WUR;

enum pg_stop_mode { PG_STOP_SMART, PG_STOP_FAST, PG_STOP_IMMEDIATE };

/* Signals the postmaster (SIGTERM/SIGINT/SIGQUIT) and waits up to timeout
 * seconds for it to exit; past that escalates to SIGQUIT, then SIGKILL of
 * its process group. Reaps it. true when it is gone. */
bool pg_postmaster_stop(struct pg_child *child, enum pg_stop_mode mode, double timeout, struct pg_err *err) PG_WUR;

/* SIGHUP: re-read configuration files. */
bool pg_postmaster_reload(const struct pg_child *child, struct pg_err *err) PG_WUR;

/* pid from data_dir/postmaster.pid if that process is alive, else 0. Used at
 * start-up to refuse a Postgres that somebody else started. */
pid_t pg_postmaster_pid_from_file(const char *data_dir);

/*
 * Why a postmaster exited before it accepted connections, read from what the
 * server itself wrote to its log during that start (the log file grows by
 * appending; the caller remembers its size at the start and passes it as
 * `from`). The agent acts on the kind:
 *   DIVERGED  "requested timeline N is not a child of this server's history"
 *             or "new timeline N forked off ... before current recovery
 *             point": this data directory went past the leader's fork point;
 *             or the walreceiver's "highest timeline N of the primary is
 *             behind recovery timeline M": it is on a timeline its upstream
 *             never had (pg_rewind repairs both);
 *   PARAMS    "recovery aborted because of insufficient parameter settings":
 *             a hot-standby parameter is below the primary's (param, value
 *             and primary_value say which; starting with at least the values
 *             in pg_controldata repairs it);
 *   OTHER     anything else (fatal_line holds the server's FATAL/PANIC line,
 *             or its last line): report it and retry, never rewrite data;
 *   UNKNOWN   the log could not be read.
 */
enum pg_start_failure { PG_START_FAIL_UNKNOWN, PG_START_FAIL_DIVERGED, PG_START_FAIL_PARAMS, PG_START_FAIL_OTHER };

struct pg_start_diag {
	enum pg_start_failure kind;
	char fatal_line[200]; /* the server's own words, prefix (time, pid) stripped; DIVERGED: its divergence line */
	char param[48];       /* PARAMS: e.g. "max_connections" ("" if the DETAIL line was missing) */
	long value, primary_value;
};

/* Classifies the log text of one start (pure; text may be any length,
 * need not end in a newline). */
void pg_start_diagnose_text(const char *text, struct pg_start_diag *out);
/* Reads log_file from byte offset `from` (at most the last 64 kB of it) and
 * classifies it; kind UNKNOWN (and err set) when it cannot be read. */
bool pg_start_diagnose(const char *log_file, long from, struct pg_start_diag *out, struct pg_err *err) PG_WUR;
/* The last line of the server's log from byte `from` on where recovery
 * found WAL it cannot read ("invalid record length at ...", "invalid
 * resource manager ID ...", "incorrect resource manager data checksum",
 * "record with incorrect prev-link", "unexpected pageaddr"), its time and
 * pid prefix stripped, in line ("" when there is none). At the end of a
 * replica's own WAL such a line is normal; with WAL received past it and
 * replay stuck there, the WAL received is not the WAL this server has.
 * false with err when the log cannot be read. */
bool pg_log_last_bad_wal(const char *log_file, long from, char *line, size_t len, struct pg_err *err) PG_WUR;
/* Did pg_rewind, whose output went to log_file from byte `from` on, find
 * nothing to do ("pg_rewind: no rewind required" at the start of a line)?
 * false with err when the log cannot be read. */
bool pg_rewind_said_nothing_to_do(const char *log_file, long from, bool *said, struct pg_err *err) PG_WUR;
/* Current size of a log file (0 when missing): the `from` of the next start. */
long pg_log_size(const char *log_file);
/* "diverged timeline", "hot-standby parameters", "other", "unknown". */
const char *pg_start_failure_name(enum pg_start_failure k);

/* Monotonic clock in seconds. */
double pg_now(void);

#endif
