/*
 * slots.h - physical replication slots, so that no replica needs re-cloning
 * because WAL it needed was recycled.
 *
 * Every member keeps a slot for every other member: on the primary the
 * replicas stream through theirs (primary_slot_name), and on a replica the
 * agent moves them forward as the members advance, so a replica promoted
 * by a failover already holds the WAL the others still need, before any of
 * them reconnects. Permanent slots from the config (`slots`) exist on the
 * primary. A member's slot outlives its member key by SLOTS_GRACE seconds
 * (a node down for maintenance keeps its WAL), then it is dropped.
 * A member key is not enough to get a slot: whoever can write etcd could
 * make thousands, each holding WAL back. The caller says which members it
 * confirmed as genuine (member_ok, agent/member_verify.h): a slot is
 * wanted only for those (at most HA_MAX_MEMBERS), so a member that cannot
 * be confirmed gets none, and one it has is dropped like a gone member's:
 * once inactive and unwanted for SLOTS_GRACE.
 * Cascading (tags replicatefrom, nostream; Patroni's rule): the primary
 * keeps no slot for a member that streams from another replica
 * (ha_member_upstream) or does not stream; the replica it streams from
 * keeps one like every member does, and its slot there is the one it uses
 * (primary_slot_name). Such a slot on the primary is dropped as soon as it
 * is inactive, and made again when the member falls back to the leader.
 *
 * Patroni's dynamic keys act here too: use_slots = false (no_slots) makes
 * no slot at all and drops the members' slots as soon as they are
 * inactive (primary_slot_name is then not written, loop_pgfiles.c);
 * ignore_slots matchers name slots baton never creates or drops;
 * permanent logical slots (type, database, plugin) are created on the
 * primary through a connection to their database. Logical slots are not
 * copied to replicas (PostgreSQL 15 cannot have them on a standby): after
 * a failover the new primary creates them afresh, at its current WAL
 * position, and their consumers must resynchronise. A logical slot the
 * config does not name is never dropped.
 *
 *     struct slots_plan p;
 *     slots_plan(&in, &p);          pure: what to create, drop, advance
 *     slots_apply(pg, &p, ...);     does it, logging each change
 */
#ifndef BATON_SLOTS_H
#define BATON_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/ha.h"
#include "pg/pg_query.h"

#define SLOTS_MAX 64
#define SLOTS_GRACE 1800.0 /* seconds a gone member's slot is kept */

/* The slot of a member: its name in lower case, other characters than
 * a-z, 0-9 and _ replaced by _. false if it does not fit. */
bool slots_member_slot(const char *member, char *buf, size_t len);

/* Does member already have its slot among the n existing ones? */
bool slots_member_has_slot(const char *member, const struct pg_slot *existing, size_t n);

/* When each slot we no longer want was first seen unwanted (kept between
 * loops by the caller; zero it at start). */
struct slots_memory {
	size_t n;
	struct {
		char name[64];
		double since;
	} unwanted[SLOTS_MAX];
};

struct slots_input {
	const char *self;
	bool primary;        /* our Postgres is the primary */
	bool standby_leader; /* a standby cluster's leader (a replica of the other site): keeps the
	                      * permanent physical slots too, moved to its replay position while
	                      * inactive (Patroni keeps them there, so that after a site switchover
	                      * the other site's slot exists); logical ones cannot be on a standby */
	uint64_t replay_lsn; /* replica: how far we have replayed */
	const struct ha_cluster_view *view;
	const bool *member_ok;  /* per view->members: confirmed, its slot may be created (NULL: all) */
	char *const *permanent; /* config `slots` */
	size_t n_permanent;
	const struct pg_slot *existing; /* pg_query_slots */
	size_t n_existing;
	double now;
	/* Patroni's keys; zeroed = baton's behaviour before them. */
	bool no_slots;                          /* use_slots = false */
	const struct dcs_logical_slot *logical; /* permanent logical slots (config.h) */
	size_t n_logical;
	const struct dcs_slot_matcher *ignore; /* ignore_slots (config.h) */
	size_t n_ignore;
	const struct pg_logical_slot *existing_logical; /* pg_query_logical_slots */
	size_t n_existing_logical;
};

struct slots_plan {
	size_t n_create, n_drop, n_advance, n_drop_elsewhere;
	char create[SLOTS_MAX][64];
	char drop[SLOTS_MAX][64];
	char drop_elsewhere[SLOTS_MAX][64]; /* primary: inactive slots of members that stream from
					     * another replica or not at all (dropped at once) */
	struct {
		char name[64];
		uint64_t lsn;
	} advance[SLOTS_MAX];
	size_t n_create_logical;
	struct {
		char name[64], database[64], plugin[64];
	} create_logical[SLOTS_MAX];
};

/* Does a slot (type "physical" or "logical"; database and plugin NULL for
 * physical) match one of the n ignore_slots matchers? */
bool slots_ignored(const struct dcs_slot_matcher *ignore, size_t n, const char *name, const char *type,
                   const char *database, const char *plugin);

/* Pure but for the memory of unwanted slots, which it updates. */
void slots_plan(const struct slots_input *in, struct slots_memory *mem, struct slots_plan *out);

/* Carries the plan out; each failure is logged, the rest goes on. Logical
 * slots are created through a connection to their database: conninfo (the
 * agent's local one) with dbname set; NULL creates none. */
void slots_apply(struct pg_conn *pg, const struct slots_plan *p);
void slots_apply_logical(const char *conninfo, double timeout, const struct slots_plan *p);

#endif
