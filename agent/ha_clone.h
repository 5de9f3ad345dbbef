/*
 * ha_clone.h - how a replica is created: the order of the replica creation
 * methods (postgresql.create_replica_methods) and the member a base backup
 * is taken from (the clonefrom tag). Part of the pure decision core: no
 * I/O, no clock, no etcd or Postgres headers.
 *
 * The methods are tried in the configured order. With a leader every
 * method may run; without one only those marked no_leader (a restore from
 * a backup repository needs no running primary). A method that fails hands
 * over to the next one that may run now; when none is left, the whole
 * sequence waits for the clone backoff (ha_job_backoff) and starts again
 * from the first. A plan with no methods is pg_basebackup alone, baton's
 * behaviour before the option existed.
 */
#ifndef BATON_HA_CLONE_H
#define BATON_HA_CLONE_H

#include <stdbool.h>
#include <stddef.h>

#define HA_CLONE_METHODS_MAX 4

enum ha_clone_kind {
	HA_CLONE_BASEBACKUP, /* pg_basebackup from the leader (or a clonefrom replica) */
	HA_CLONE_PGBACKREST, /* postgresql.pgbackrest.command: restore the latest backup */
};

struct ha_clone_method {
	enum ha_clone_kind kind;
	bool no_leader; /* may run while no member holds the leader key */
	bool keep_data; /* reinit keeps the data directory for it (e.g. pgbackrest --delta) */
};

/* The configured methods, in order, and how the current attempt went. */
struct ha_clone_plan {
	struct ha_clone_method m[HA_CLONE_METHODS_MAX];
	size_t n;   /* 0: pg_basebackup alone */
	int failed; /* 1 + the index of the method that failed last since the last success; 0 none */
};

/* "basebackup", "pgbackrest". */
const char *ha_clone_kind_name(enum ha_clone_kind k);

/* The index of the method to run after method `after` failed (-1: the
 * first), given whether a leader is there to clone or stream from; -1 when
 * none is left. For a plan with n = 0, index 0 is pg_basebackup. Pure. */
int ha_clone_next(const struct ha_clone_plan *p, int after, bool have_leader);

/* The method at index i (a plan with n = 0 answers pg_basebackup). */
struct ha_clone_method ha_clone_method_at(const struct ha_clone_plan *p, int i);

/* Number of methods the plan tries (1 for n = 0). */
size_t ha_clone_count(const struct ha_clone_plan *p);

struct ha_cluster_view;
/* The member pg_basebackup copies from: among the members tagged clonefrom
 * that publish a running replica with an address (never self, never the
 * leader), the one furthest ahead (ties: the first by name); else the
 * leader; NULL when there is neither. The loop still confirms the member
 * (agent/member_verify.h) and falls back to the leader if it cannot. Pure. */
const char *ha_clone_source(const struct ha_cluster_view *c, const char *self);

#endif
