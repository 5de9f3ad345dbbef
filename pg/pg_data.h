/*
 * pg_data.h - what a data directory says about itself, without a server.
 *
 * Reads PG_VERSION and global/pg_control (through pg_controldata) so the agent
 * can tell an empty directory from a usable one, the cluster it belongs to
 * (system identifier) and whether it was last a primary (for pg_rewind).
 */
#ifndef BATON_PG_DATA_H
#define BATON_PG_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/pg_err.h"

enum pg_datadir_state {
	PG_DATADIR_MISSING, /* does not exist, or exists and is empty */
	PG_DATADIR_VALID,   /* PG_VERSION and global/pg_control present */
	PG_DATADIR_INVALID, /* exists, not empty, but not a data directory */
};

enum pg_datadir_state pg_datadir_inspect(const char *data_dir);

/* Cluster state from pg_control. */
enum pg_db_state {
	PG_DB_UNKNOWN,
	PG_DB_STARTING,
	PG_DB_SHUTDOWNED,             /* "shut down" (was a primary) */
	PG_DB_SHUTDOWNED_IN_RECOVERY, /* "shut down in recovery" (was a replica) */
	PG_DB_SHUTDOWNING,
	PG_DB_IN_CRASH_RECOVERY,
	PG_DB_IN_ARCHIVE_RECOVERY, /* a replica that did not stop cleanly */
	PG_DB_IN_PRODUCTION,       /* a primary that did not stop cleanly */
};

struct pg_controldata {
	uint64_t system_identifier;
	enum pg_db_state state;
	uint32_t checkpoint_timeline;  /* "Latest checkpoint's TimeLineID" */
	uint64_t checkpoint_lsn;       /* "Latest checkpoint location" */
	uint64_t min_recovery_end_lsn; /* "Minimum recovery ending location" */
	uint32_t min_recovery_end_timeline;
	/* The hot-standby parameters as the primary last logged them ("max_connections
	 * setting:" ...): a replica must run with at least these to replay. */
	bool hs_valid; /* all five lines were present */
	long hs[5];    /* indexed like pg_hot_standby_params[] */
};

/* The five parameters a replica needs at least at the primary's values, in
 * the order of pg_controldata's hs[] and with Postgres' defaults. */
#define PG_HS_PARAMS 5
struct pg_hs_param {
	const char *name;  /* GUC name: "max_connections" */
	const char *label; /* pg_controldata's label: "max_connections setting" */
	long pg_default;
};
extern const struct pg_hs_param pg_hot_standby_params[PG_HS_PARAMS];

/* Runs bin_dir/pg_controldata on data_dir (a quick child process, bounded to
 * a few seconds) and parses its output. Safe while the server runs (the
 * agent reads a running replica's hot-standby values this way); its command
 * line is logged at debug level only. */
bool pg_controldata_read(const char *bin_dir, const char *data_dir, struct pg_controldata *out,
                         struct pg_err *err) PG_WUR;

/* Does Postgres accept the configuration files of data_dir as they are now
 * (bin_dir/postgres -D data_dir -C, which parses them as a start would)?
 * true when that could be told: *refused false when it accepts them, true
 * with err naming what it refuses ("invalid value for parameter ..."). false
 * with err when the check itself could not run. Read-only, bounded (5 s),
 * usable beside a running server. */
bool pg_config_check(const char *bin_dir, const char *data_dir, bool *refused, struct pg_err *err) PG_WUR;

/* "in production", ... -> enum, and back. */
const char *pg_db_state_name(enum pg_db_state s);

/* Removes data_dir and everything under it (used before a re-clone, and on a
 * failed bootstrap). Refuses "/" and paths that are not absolute. */
bool pg_datadir_remove(const char *data_dir, struct pg_err *err) PG_WUR;

/* Renames data_dir to DATA_DIR.failed-YYYYMMDDTHHMMSS (-2, -3, ... if that
 * exists) beside it, keeping what a failed bootstrap left for the operator
 * to read; the new name goes to moved (also on failure: what was tried).
 * A missing data_dir is fine (moved gets ""). Same refusals as
 * pg_datadir_remove. */
bool pg_datadir_move_aside(const char *data_dir, char *moved, size_t len, struct pg_err *err) PG_WUR;

/* "0/3000148" <-> uint64. */
bool pg_lsn_parse(const char *text, uint64_t *out);
void pg_lsn_format(uint64_t lsn, char *buf, size_t len);

#endif
