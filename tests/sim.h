/*
 * sim.h - the deterministic simulation of baton's HA decision core that
 * tests/check_sim.c runs (the model is described at the top of that file).
 *
 * Three parts:
 *   - a seeded PRNG of our own (splitmix64), so a seed replays exactly;
 *   - sim_etcd.c: a virtual etcd (keys, revisions, leases with TTLs that
 *     expire in etcd's time, create-if-absent transactions);
 *   - sim_world.c: virtual nodes (agent loop, lease keeper, fence, Postgres),
 *     the event queue, the fault injector and the invariant checker.
 * Nothing here reads a real clock or does I/O except writing the trace to
 * the FILE the caller passes.
 */
#ifndef BATON_SIM_H
#define BATON_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/ha.h"
#include "agent/local_view.h"

#define SIM_MAX_NODES 5
#define SIM_MAX_HIST 64   /* timeline entries a data directory keeps */
#define SIM_MAX_LEASES 64 /* live leases in the virtual etcd at once */
#define SIM_NONE (-1)

/* ---- PRNG (splitmix64) ---------------------------------------------------- */

struct sim_rng {
	uint64_t s;
};

uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_unit(struct sim_rng *r);                        /* [0, 1) */
double sim_rng_range(struct sim_rng *r, double lo, double hi); /* [lo, hi) */
int sim_rng_int(struct sim_rng *r, int n);                     /* [0, n) */
bool sim_rng_chance(struct sim_rng *r, double p);

/* ---- WAL history ---------------------------------------------------------- */

/* One timeline of a data directory's history: its number (what Postgres and
 * ha_decide see), a unique identity (two promotions to the same number are
 * different histories), and the LSN at which it began. */
struct sim_tl {
	uint32_t tl;
	uint32_t uid;
	uint64_t start;
};

struct sim_hist {
	int n;
	struct sim_tl e[SIM_MAX_HIST];
};

/* ---- virtual etcd (sim_etcd.c) ---------------------------------------------- */

struct sim_lease {
	int64_t id;
	double ttl;
	double expires_at; /* etcd time: last grant/renewal arrival + ttl */
	double revoke_at;  /* when etcd's expiry sweep actually deletes its keys (a little later) */
};

struct sim_key {
	bool present;
	int64_t lease;
	int64_t create_rev, mod_rev;
};

/* What a member publishes in members/<name>. */
struct sim_member_data {
	char role[16];
	char state[32];
	uint32_t timeline;
	uint64_t lsn;
	bool nofailover;
};

/* The keyspace of one cluster; a range read answers with a copy of it. */
struct sim_keys {
	int64_t rev;
	struct sim_key leader;
	int leader_node;
	struct sim_key init;
	int init_owner;      /* while in progress (attached to a lease) */
	uint64_t init_sysid; /* once done (no lease) */
	struct sim_key status;
	uint64_t status_lsn;
	uint32_t status_tl;
	struct sim_key sw;
	int sw_from, sw_to; /* SIM_NONE = "" */
	bool sw_failover;
	double sw_at; /* wall clock, 0 = now */
	struct sim_key member[SIM_MAX_NODES];
	struct sim_member_data mdata[SIM_MAX_NODES];
};

struct sim_etcd {
	struct sim_keys k;
	struct sim_lease leases[SIM_MAX_LEASES];
	int n_leases;
	int64_t next_lease;
};

void sim_etcd_init(struct sim_etcd *e);
/* New lease; 0 when the table is full (the caller sees an error). */
int64_t sim_etcd_grant(struct sim_etcd *e, double now, double ttl, double sweep_lag);
/* Keepalive: false when the lease is unknown or already past its expiry. */
bool sim_etcd_keepalive(struct sim_etcd *e, double now, int64_t id, double sweep_lag);
/* Revokes the lease and deletes every key attached to it. */
void sim_etcd_revoke(struct sim_etcd *e, int64_t id);
/* The expiry sweep: revokes every lease whose revoke_at has come. */
void sim_etcd_expire(struct sim_etcd *e, double now);
/* Does the lease exist and has its TTL not run out at `now` (etcd time)? */
bool sim_etcd_lease_alive(const struct sim_etcd *e, int64_t id, double now);
bool sim_etcd_lease_exists(const struct sim_etcd *e, int64_t id);
/* Puts a key (on a lease, which must exist; 0 = none). false = lease unknown. */
bool sim_etcd_put(struct sim_etcd *e, struct sim_key *k, int64_t lease);
void sim_etcd_delete(struct sim_etcd *e, struct sim_key *k);

/* ---- the world (sim_world.c) ---------------------------------------------- */

struct sim_params {
	uint64_t seed;
	int n_nodes;
	double ttl, loop_wait, retry_timeout;
	double fault_time;     /* seconds of random faults, then a quiet period */
	double fault_gap;      /* mean seconds between two faults */
	double loss;           /* probability that an etcd request or answer is lost (fault period) */
	double lat_lo, lat_hi; /* one-way latency to etcd, seconds */
	bool fresh;            /* start from empty data directories (bootstrap, clone) */
	int nofailover_node;   /* a node tagged nofailover, or SIM_NONE */
	bool broken;           /* checker self-test: no fence, DEMOTE ignored */
	bool no_fence;         /* experiment: the loop alone must stop Postgres in time */
	bool only_two_writers; /* checker self-test: check nothing but "at most one writable Postgres" */
	bool verbose;          /* print every trace line as it happens */
};

struct sim_stats {
	uint64_t events;
	int faults;
	int leader_changes; /* the leader key changed hands */
	int promotions;
	int demotes;
	int fences;      /* the fence actor stopped a writable Postgres */
	int switchovers; /* leader keys released by a switchover */
	int fatals;
	double max_no_primary; /* longest stretch without a writable primary (fault period included) */
	double recovery;       /* faults stopped -> a primary holds the leader key (-1 = never) */
};

/* Known bugs of code the simulation tests (described in check_sim.c). */
enum { SIM_KNOWN_NONE, SIM_KNOWN_BOOTSTRAP, SIM_KNOWN_SWITCHOVER_LOOP };

struct sim_result {
	bool ok;
	bool liveness_failed;
	int known_bug;      /* the violation is a known bug (see check_sim.c), SIM_KNOWN_* */
	bool unrecoverable; /* liveness not checked: no member may take over (only nofailover data left) */
	char what[512];     /* the violated property, with the time */
	double t;
	struct sim_stats st;
	uint64_t digest; /* hash of the run, to prove replays identical */
};

/* The parameters a seed stands for (timing 5/1/2 for odd seeds, 3/1/1 for even). */
void sim_params_from_seed(uint64_t seed, struct sim_params *p);
/* Runs one seed. On a violation, writes the parameters and the last trace
 * lines to `out` (NULL = quiet). Returns r->ok. */
bool sim_run(const struct sim_params *p, struct sim_result *r, FILE *out);

#endif
