/*
 * pg_replica.h - the programs that create a replica's data directory:
 * pg_basebackup with the options of postgresql.basebackup, and an
 * operator's restore command (postgresql.pgbackrest.command, e.g.
 * `pgbackrest --stanza=main --delta restore --type=standby`).
 *
 * A restore command runs without a shell: its text is split into words
 * the way a shell splits a simple command (blanks separate words, '...'
 * and "..." group, a backslash escapes), and characters a shell would act
 * on ($ ` | & ; < > ( ) and the like, outside quotes) are refused rather
 * than passed on literally, so that what the operator wrote means what it
 * seems to. Unless no_params, the fixed parameters follow the words, as
 * Patroni appends them: --scope=SCOPE --datadir=DIR --role=replica and,
 * with a leader, --connstring=CONNINFO (a bootstrap from a backup gets
 * --scope and --datadir alone, as Patroni's custom bootstrap does). Like every child of the library it
 * runs in its own process group with its output appended to the log file
 * (pg_ctl.h); the caller polls it and bounds its time.
 */
#ifndef BATON_PG_REPLICA_H
#define BATON_PG_REPLICA_H

#include <stdbool.h>
#include <stddef.h>

#include "pg/pg_ctl.h"
#include "pg/pg_err.h"

/* The words of a command line (pg_words_split): argv[0..n) then NULL; the
 * strings live in buf. Free with pg_words_free. */
struct pg_words {
	char *buf;
	const char **argv;
	size_t n;
};

/* Splits cmd into words as described above. false (err names the problem
 * and its position) for an empty command, an unterminated quote, a
 * trailing backslash or a shell metacharacter outside quotes. *out is
 * owned by the caller on success, untouched-but-empty on failure. */
bool pg_words_split(const char *cmd, struct pg_words *out, struct pg_err *err) PG_WUR;
void pg_words_free(struct pg_words *w);

/* One run of a restore command. */
struct pg_replica_cmd {
	const char *command;    /* the operator's text; its first word an absolute path */
	bool no_params;         /* append nothing */
	const char *scope;      /* --scope= */
	const char *datadir;    /* --datadir= */
	const char *role;       /* --role= ("replica"; NULL: omitted) */
	const char *connstring; /* --connstring= (NULL or "": omitted, no leader) */
};

/* The command's full argv (words + parameters), built without side effects
 * (unit-tested). Free with pg_replica_argv_free, also after a failure. */
struct pg_replica_argv {
	struct pg_words words;
	const char **argv; /* NULL-terminated */
	char *params[4];
	size_t n;
};
bool pg_replica_argv_build(struct pg_replica_argv *a, const struct pg_replica_cmd *c, struct pg_err *err) PG_WUR;
void pg_replica_argv_free(struct pg_replica_argv *a);

/* Creates p->data_dir (0700) when it is missing, then runs the command as
 * a child named `what` ("pgbackrest"). The data directory must be missing
 * or empty unless keep_data. */
bool pg_replica_cmd_start(const struct pg_paths *p, const char *what, const struct pg_replica_cmd *c, bool keep_data,
                          struct pg_child *child, struct pg_err *err) PG_WUR;

/* postgresql.basebackup: options passed to pg_basebackup. */
struct pg_basebackup_opts {
	const char *max_rate;   /* --max-rate (NULL or "": none); digits with an optional k or M */
	const char *checkpoint; /* --checkpoint: "fast" (NULL or "": fast) or "spread" */
};

/* pg_basebackup's command line (unit-tested):
 *   PROG -D DATA_DIR -X stream --checkpoint=C [--max-rate=R] --no-password -d CONNINFO
 * argv points into a and the arguments. false (err says) for a bad option. */
struct pg_basebackup_argv {
	const char *argv[16];
	char checkpoint[32];
	char max_rate[48];
};
bool pg_basebackup_argv_build(struct pg_basebackup_argv *a, const char *prog, const char *data_dir,
                              const char *conninfo, const struct pg_basebackup_opts *o, struct pg_err *err) PG_WUR;

/* Checks a --max-rate value as pg_basebackup takes it ("32", "100k",
 * "100M"; 32 kB/s to 1 GB/s); why gets the reason. */
bool pg_basebackup_rate_ok(const char *v, char *why, size_t len);

/* pg_basebackup_start with options (o NULL: the defaults). */
bool pg_basebackup_start_opts(const struct pg_paths *p, const char *conninfo, const struct pg_basebackup_opts *o,
                              struct pg_child *child, struct pg_err *err) PG_WUR;

/*
 * A restore (pgbackrest restore --type=standby writes restore_command
 * there) or a base backup of a primary someone ran ALTER SYSTEM on leaves
 * recovery settings in postgresql.auto.conf, which Postgres reads after
 * every other file: a primary_conninfo there would outrank the agent's own
 * (the replica would follow the wrong server after a failover), a
 * restore_command there the node's own. pg_auto_conf_filter drops the
 * lines that set them (primary_conninfo, primary_slot_name,
 * restore_command, archive_cleanup_command, recovery_end_command,
 * recovery_target*, recovery_min_apply_delay, promote_trigger_file,
 * standby_mode; names compared ignoring case) from in, writing the rest to
 * out (at least strlen(in) + 1 bytes) and the dropped names, comma
 * separated, to removed. Pure; returns how many lines it dropped.
 */
size_t pg_auto_conf_filter(const char *in, char *out, char *removed, size_t rlen);
/* The same on data_dir/postgresql.auto.conf, rewritten (temporary file,
 * rename) only when something was dropped; a missing file is fine. */
bool pg_auto_conf_strip_recovery(const char *data_dir, char *removed, size_t rlen, struct pg_err *err) PG_WUR;

/*
 * Bootstrapping a new cluster from a backup (bootstrap.method =
 * "pgbackrest"): after the restore, the data directory is made to recover
 * as a new primary would. pg_boot_recovery_prepare
 *   - unless keep_existing, drops the restore's own recovery settings from
 *     postgresql.auto.conf (as pg_auto_conf_strip_recovery) and appends the
 *     given ones: restore_command (when set; else postgresql.conf's), the
 *     one recovery target and recovery_target_inclusive (when a target is
 *     set; none: recovery runs to the end of the archive);
 *   - always appends recovery_target_action = 'promote', so that reaching
 *     the target ends recovery on a new timeline instead of pausing;
 *   - replaces standby.signal (a standby never ends recovery) by
 *     recovery.signal;
 *   - writes the marker file baton.bootstrap-recovery.
 * Postgres reads postgresql.auto.conf after the agent's postgresql.conf,
 * so these rule during the recovery; the agent strips them again once the
 * server is promoted (pg_boot_recovery_done), or a later standby of this
 * data directory would stop at the old target. Until then the marker says
 * that this data directory must not be started by anyone but the
 * bootstrap that prepared it: started as a standby (after an agent crash),
 * it would promote itself at the target without the leader key.
 */
struct pg_boot_recovery {
	const char *restore_command; /* NULL or "": postgresql.conf's (or, keep_existing, the restore's) */
	const char *target_name;     /* "recovery_target_time", "_lsn", "_name", "_xid"; NULL: none */
	const char *target_value;
	bool inclusive; /* recovery_target_inclusive */
	bool keep_existing;
};

/* The lines appended to postgresql.auto.conf (unit-tested), values quoted
 * as postgresql.conf wants ('' for '). false (err says) when out is too
 * small or a value holds a line break. */
bool pg_boot_recovery_render(const struct pg_boot_recovery *r, char *out, size_t len, struct pg_err *err) PG_WUR;

/* The steps above on data_dir; removed gets the names it dropped. */
bool pg_boot_recovery_prepare(const char *data_dir, const struct pg_boot_recovery *r, char *removed, size_t rlen,
                              struct pg_err *err) PG_WUR;
/* Is a prepared recovery not yet done (the marker is there)? */
bool pg_boot_recovery_pending(const char *data_dir);
/* After the promotion: strips the recovery settings from
 * postgresql.auto.conf (removed gets their names), then the marker. */
bool pg_boot_recovery_done(const char *data_dir, char *removed, size_t rlen, struct pg_err *err) PG_WUR;

#endif
