/*
 * sim_etcd.c - the simulation's PRNG and its virtual etcd (see sim.h).
 *
 * The etcd model keeps what baton relies on: one revision counter bumped by
 * every change; keys with create/mod revisions and an optional lease; leases
 * whose TTL runs from the moment a grant or keepalive *arrives* (etcd's
 * time); a keepalive that arrives after the TTL ran out finds the lease gone
 * even if the expiry sweep has not deleted its keys yet; and the sweep that
 * deletes the keys of an expired lease a little after the expiry (measured
 * here: 0.2-0.4 s). Transactions are written by sim_world.c on top of
 * sim_etcd_put/sim_etcd_delete, each applied atomically when the request
 * arrives.
 */
#include "tests/sim.h"

#include <string.h>

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sim_rng_range(struct sim_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * sim_rng_unit(r);
}

int sim_rng_int(struct sim_rng *r, int n)
{
	return n <= 1 ? 0 : (int)(sim_rng_next(r) % (uint64_t)n);
}

bool sim_rng_chance(struct sim_rng *r, double p)
{
	return sim_rng_unit(r) < p;
}

void sim_etcd_init(struct sim_etcd *e)
{
	memset(e, 0, sizeof(*e));
	e->k.rev = 1;
	e->k.leader_node = SIM_NONE;
	e->k.init_owner = SIM_NONE;
	e->k.sw_from = e->k.sw_to = SIM_NONE;
	e->next_lease = 0x1000;
}

static struct sim_lease *find_lease(struct sim_etcd *e, int64_t id)
{
	for (int i = 0; i < e->n_leases; i++)
		if (e->leases[i].id == id)
			return &e->leases[i];
	return NULL;
}

int64_t sim_etcd_grant(struct sim_etcd *e, double now, double ttl, double sweep_lag)
{
	struct sim_lease *l;

	if (e->n_leases >= SIM_MAX_LEASES)
		return 0;
	l = &e->leases[e->n_leases++];
	l->id = e->next_lease++;
	l->ttl = ttl;
	l->expires_at = now + ttl;
	l->revoke_at = l->expires_at + sweep_lag;
	return l->id;
}

bool sim_etcd_keepalive(struct sim_etcd *e, double now, int64_t id, double sweep_lag)
{
	struct sim_lease *l = find_lease(e, id);

	if (!l || now >= l->expires_at)
		return false;
	l->expires_at = now + l->ttl;
	l->revoke_at = l->expires_at + sweep_lag;
	return true;
}

bool sim_etcd_lease_exists(const struct sim_etcd *e, int64_t id)
{
	for (int i = 0; i < e->n_leases; i++)
		if (e->leases[i].id == id)
			return true;
	return false;
}

bool sim_etcd_lease_alive(const struct sim_etcd *e, int64_t id, double now)
{
	for (int i = 0; i < e->n_leases; i++)
		if (e->leases[i].id == id)
			return now < e->leases[i].expires_at;
	return false;
}

void sim_etcd_delete(struct sim_etcd *e, struct sim_key *k)
{
	if (!k->present)
		return;
	e->k.rev++;
	memset(k, 0, sizeof(*k));
}

bool sim_etcd_put(struct sim_etcd *e, struct sim_key *k, int64_t lease)
{
	if (lease != 0 && !find_lease(e, lease))
		return false;
	e->k.rev++;
	if (!k->present)
		k->create_rev = e->k.rev;
	k->present = true;
	k->mod_rev = e->k.rev;
	k->lease = lease;
	return true;
}

void sim_etcd_revoke(struct sim_etcd *e, int64_t id)
{
	struct sim_lease *l = find_lease(e, id);

	if (!l)
		return;
	*l = e->leases[--e->n_leases];
	if (e->k.leader.present && e->k.leader.lease == id)
		sim_etcd_delete(e, &e->k.leader);
	if (e->k.init.present && e->k.init.lease == id)
		sim_etcd_delete(e, &e->k.init);
	for (int i = 0; i < SIM_MAX_NODES; i++)
		if (e->k.member[i].present && e->k.member[i].lease == id)
			sim_etcd_delete(e, &e->k.member[i]);
}

void sim_etcd_expire(struct sim_etcd *e, double now)
{
	for (int i = 0; i < e->n_leases;) {
		if (e->leases[i].revoke_at <= now)
			sim_etcd_revoke(e, e->leases[i].id); /* moves the last one into slot i */
		else
			i++;
	}
}
