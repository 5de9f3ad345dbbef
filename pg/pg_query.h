/*
 * pg_query.h - asking a running Postgres about itself through libpq.
 *
 * Every call is bounded in time: connections use libpq's non-blocking API
 * polled against a deadline, and queries are cancelled past their timeout,
 * so a hung Postgres can never hold the caller for longer than asked. All
 * SQL goes through one internal function that keeps the SQLSTATE and marks
 * the connection bad on a connection-class error (08xxx) so the next call
 * reconnects.
 */
#ifndef BATON_PG_QUERY_H
#define BATON_PG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/pg_err.h"

struct pg_conn; /* opaque: a libpq connection with its conninfo and timeouts */

/* Does not connect yet; copies conninfo. timeout = seconds for connect and
 * for each statement. */
struct pg_conn *pg_conn_new(const char *conninfo, double timeout);
void pg_conn_free(struct pg_conn *c);
/* The same for a server that speaks the protocol but is no Postgres
 * (PgBouncer's admin console): no startup options (search_path, timeouts)
 * are sent, which it would refuse. Statements go through the simple query
 * protocol, as every statement here does (pg_query_exec). */
struct pg_conn *pg_conn_new_console(const char *conninfo, double timeout);

/* Parses conninfo (libpq's syntax, "key=value ..." or a URI) and copies the
 * value of key into buf (*found = false and buf "" when it is not set).
 * false with err on a string libpq cannot parse or a value over len. */
bool pg_conninfo_value(const char *conninfo, const char *key, char *buf, size_t len, bool *found,
                       struct pg_err *err) PG_WUR;
/* Closes the connection (the next call reconnects). */
void pg_conn_reset(struct pg_conn *c);

enum pg_ping_result { PG_PING_OK, PG_PING_REJECT, PG_PING_NO_RESPONSE };
/* PQping-like, bounded by timeout seconds; REJECT = up but not accepting
 * connections yet (starting / shutting down / in crash recovery). */
enum pg_ping_result pg_ping(const char *conninfo, double timeout);

#define PG_MAX_REPLICAS 32

struct pg_replica_info {
	char usename[64];
	char application_name[64];
	char client_addr[64];
	char state[32];      /* streaming, catchup, ... */
	char sync_state[16]; /* async, sync, quorum, potential */
	int sync_priority;
	uint64_t sent_lsn, write_lsn, flush_lsn, replay_lsn;
};

struct pg_state {
	bool in_recovery;
	uint32_t timeline; /* the timeline the server is on now */
	uint64_t system_identifier;
	uint64_t current_lsn;        /* primary: pg_current_wal_lsn(); replica: max(receive, replay) */
	uint64_t receive_lsn;        /* replica: pg_last_wal_receive_lsn() (0 if none) */
	uint64_t replay_lsn;         /* replica: pg_last_wal_replay_lsn() */
	bool wal_receiver_streaming; /* replica: pg_stat_wal_receiver.status = 'streaming' */
	bool replay_paused;          /* replica: pg_is_wal_replay_paused() (an operator, or a
				       * hot-standby parameter below the primary's) */
	char upstream_host[128];     /* replica: sender_host of the wal receiver ("" if none) */
	int upstream_port;
	int n_replicas; /* primary: rows of pg_stat_replication (capped) */
	struct pg_replica_info replicas[PG_MAX_REPLICAS];
	/* For Patroni's /metrics series (issue 13): */
	int server_version;      /* server_version_num, e.g. 150004 */
	double postmaster_start; /* pg_postmaster_start_time(), unix seconds */
	double replay_timestamp; /* replica: pg_last_xact_replay_timestamp(), unix seconds (0 if none) */
	bool restore_command;    /* replica: restore_command is set (false when this role may not read it) */
};

/* Fills out from a few queries on one connection (reconnecting if needed). */
bool pg_query_state(struct pg_conn *c, struct pg_state *out, struct pg_err *err) PG_WUR;

/* SELECT pg_promote(false): asks for promotion, does not wait for it. */
bool pg_query_promote(struct pg_conn *c, struct pg_err *err) PG_WUR;

/* Whether a changed parameter waits for a restart (pg_settings.pending_restart). */
bool pg_query_pending_restart(struct pg_conn *c, bool *pending, struct pg_err *err) PG_WUR;

/* CHECKPOINT (used before a planned shutdown to shorten it). */
bool pg_query_checkpoint(struct pg_conn *c, struct pg_err *err) PG_WUR;

/* Creates the role if missing, else updates it: LOGIN, password, and
 * REPLICATION when replication is true. Password sent as a literal escaped
 * by libpq, never logged. */
bool pg_query_ensure_role(struct pg_conn *c, const char *name, const char *password, bool replication,
                          struct pg_err *err) PG_WUR;

/* Grants role name what pg_rewind needs of a non-superuser source
 * connection (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file),
 * and pg_checkpoint where the server has it (Postgres 15).
 * Idempotent; on the primary. */
bool pg_query_grant_rewind(struct pg_conn *c, const char *name, struct pg_err *err) PG_WUR;

/* What a pg_rewind source says of its timelines (pg_query_rewind_source). */
struct pg_rewind_source {
	bool in_recovery;
	uint32_t timeline;            /* the timeline it is on now (as pg_query_state judges it) */
	uint32_t checkpoint_timeline; /* its pg_control's latest checkpoint's: what pg_rewind 15 takes for
				       * the source's timeline */
};
/* Asks a server pg_rewind is about to use as its source for the above
 * (a few catalog functions any role may call). Read-only. */
bool pg_query_rewind_source(struct pg_conn *c, struct pg_rewind_source *out, struct pg_err *err) PG_WUR;

/* A physical replication slot (pg_replication_slots). */
struct pg_slot {
	char name[64];
	bool active;
	uint64_t restart_lsn; /* 0 = none reserved */
};

/* The physical slots, by name; at most max (*n gets how many). */
bool pg_query_slots(struct pg_conn *c, struct pg_slot *out, size_t max, size_t *n, struct pg_err *err) PG_WUR;
/* Creates a physical slot that reserves WAL at once; drops one; moves one
 * forward to lsn (never back). name: [a-z0-9_]{1,63}, checked. */
bool pg_query_slot_create(struct pg_conn *c, const char *name, struct pg_err *err) PG_WUR;
bool pg_query_slot_drop(struct pg_conn *c, const char *name, struct pg_err *err) PG_WUR;
bool pg_query_slot_advance(struct pg_conn *c, const char *name, uint64_t lsn, struct pg_err *err) PG_WUR;

/* A logical replication slot (pg_replication_slots). */
struct pg_logical_slot {
	char name[64];
	char database[64];
	char plugin[64];
	bool active;
};
/* The logical slots, by name; at most max (*n gets how many). */
bool pg_query_logical_slots(struct pg_conn *c, struct pg_logical_slot *out, size_t max, size_t *n,
                            struct pg_err *err) PG_WUR;
/* Creates logical slot name with output plugin ([a-z0-9_]{1,63}, checked)
 * in the database c is connected to (a logical slot belongs to one). */
bool pg_query_slot_create_logical(struct pg_conn *c, const char *name, const char *plugin, struct pg_err *err) PG_WUR;

/* Runs one statement that returns nothing (tests and bootstrap use it). */
bool pg_query_exec(struct pg_conn *c, const char *sql, struct pg_err *err) PG_WUR;

/* Runs a query returning one row, one column, copying it into buf. */
bool pg_query_scalar(struct pg_conn *c, const char *sql, char *buf, size_t len, struct pg_err *err) PG_WUR;

#endif
