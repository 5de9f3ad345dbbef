/*
 * sim_world.c - the simulated cluster: N nodes around one virtual etcd,
 * driven by a discrete-event queue in virtual time (see check_sim.c for the
 * model and its simplifications, sim.h for the interface).
 *
 * Each node has four actors:
 *   - the agent loop, a step machine that follows agent/loop.c: reap, lease,
 *     read the cluster (bounded by the deadline while Postgres may write),
 *     read the local state, poll the peers when there is no leader,
 *     ha_decide(), carry out the action, publish, sleep. Every etcd request
 *     blocks the loop until its answer or its timeout, as in the real loop;
 *   - the keeper, which sends a keepalive every min(loop_wait, ttl/4) s and
 *     records when the last successful one was *sent*;
 *   - the fence, an independent actor that stops a writable Postgres at the
 *     deadline the keeper's state implies (it keeps running while the agent
 *     is frozen; only a frozen or crashed node stops it);
 *   - Postgres: down / starting / replica / promoting / primary, with a WAL
 *     history (timelines with identities) and an LSN that grows while it is
 *     primary; a replica streams from the node it follows when their
 *     histories allow it.
 * The invariant is checked after every event; liveness at the end.
 */
#include "tests/sim.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define REQ_RING 4096
#define TRACE_LINES 40
#define TRACE_LEN 240
#define MAX_EVENTS 4000000
#define PG_TICK 0.2
#define WALL_BASE 1700000000.0

enum ev_kind {
	EV_TICK,        /* agent loop: start an iteration (arg = tick generation) */
	EV_RESUME,      /* agent loop: a timed wait inside an action is over (arg = generation) */
	EV_ARRIVE,      /* a request reaches etcd (arg = request id) */
	EV_ANSWER,      /* its answer reaches the client */
	EV_TIMEOUT,     /* the client gives up on it */
	EV_KEEPER,      /* keeper: time for the next keepalive (arg = generation) */
	EV_FENCE,       /* fence: deadline check (arg = generation) */
	EV_SWEEP,       /* etcd's expiry sweep */
	EV_PG_TICK,     /* WAL is written and streamed, every PG_TICK s */
	EV_PG_READY,    /* a starting postmaster answers (inc = postmaster incarnation) */
	EV_PG_PROMOTED, /* a promotion finished */
	EV_JOB_DONE,    /* initdb / pg_basebackup / pg_rewind finished (inc = job incarnation) */
	EV_WATCH,       /* the leader watch wakes an agent */
	EV_FAULT,       /* inject the next random fault */
	EV_RESTART,     /* a crashed node or agent comes back (arg: 0 = agent, 1 = node) */
	EV_QUIET,       /* faults stop: heal everything, restart what is down */
	EV_END,         /* liveness check, end of the run */
};

struct ev {
	double t;
	uint64_t seq;
	int kind;
	int node;
	uint32_t inc;
	uint64_t arg;
};

enum rq_kind {
	RQ_GRANT,
	RQ_KEEPALIVE,
	RQ_REVOKE,
	RQ_RANGE,
	RQ_ACQUIRE,
	RQ_RELEASE,
	RQ_PUT_MEMBER,
	RQ_PUT_STATUS,
	RQ_RACE_INIT,
	RQ_FINISH_INIT,
	RQ_CLEAR_SW,
	RQ_RECORD_SW,
};

struct req {
	uint64_t id;
	int node;
	uint32_t inc;
	int kind;
	bool keeper;
	/* parameters */
	int64_t lease;
	int64_t rev;
	bool create;  /* acquire: create-if-absent (else compare value and mod revision) */
	int target;   /* switchover target */
	uint64_t u64; /* sysid / lsn */
	uint32_t tl;
	struct sim_member_data md;
	/* answer */
	bool refused;   /* connection refused: answered at once with an error */
	bool err;       /* etcd answered with an error (lease not found) */
	bool won;       /* txn succeeded */
	int64_t out_id; /* granted lease */
	struct sim_keys snap;
};

enum pg_st { PG_DOWN, PG_STARTING, PG_REPLICA, PG_PROMOTING, PG_PRIMARY };
static const char *const pg_st_names[] = { "down", "starting", "replica", "promoting", "primary" };

enum dd_state { DD_EMPTY, DD_VALID, DD_INVALID };

struct datadir {
	int state;
	uint64_t sysid;
	struct sim_hist h;
	uint64_t lsn;
};

enum step {
	ST_IDLE,     /* asleep until EV_TICK */
	ST_GRANT,    /* waiting for a lease grant */
	ST_READ,     /* waiting for the range read */
	ST_LOCAL_SW, /* waiting for clear_switchover after a promotion */
	ST_POLL,     /* polling the peers' REST APIs */
	ST_ACT,      /* inside an action (ph says where) */
	ST_PUBLISH,  /* waiting for the member put */
	ST_EXIT,     /* agent exiting: waiting for the lease revoke */
};

enum phase {
	PH_NONE,
	PH_ACQUIRE,
	PH_RELEASE,
	PH_STATUS,
	PH_LEAD_SW,
	PH_REWIND_STOP,
	PH_REINIT_STOP,
	PH_RACE_INIT,
	PH_BOOT_ACQUIRE,
	PH_BOOT_FINISH,
	PH_SW_CHECK,
	PH_SW_RECORD,
	PH_SW_STOP,
	PH_SW_WAIT,
	PH_SW_RELEASE,
	PH_SW_ABORT,
	PH_FATAL_STOP,
	PH_SHUT_STOP,
	PH_SHUT_RELEASE,
	PH_RESTART_STOP,
};

/* What a node's REST API answers: the agent's last published snapshot. */
struct api_snap {
	bool pg_running;
	bool primary;
	char role[16];
	char state[32];
	uint64_t lsn;
	uint32_t tl;
};

struct node {
	char name[16];
	int idx;
	bool nofailover, remove_data;
	double clock_off, clock_rate, wall_off;

	/* faults */
	bool up; /* the machine runs */
	bool agent_alive;
	bool fatal; /* the agent exited on HA_FATAL and stays down */
	uint32_t agent_inc;
	double afz_until, nfz_until;   /* agent / whole-node freeze until */
	double epart_until;            /* cut off from etcd until */
	bool epart_reject;             /* ... refused (fast error) rather than dropped */
	double ppart_until;            /* cut off from the peers until */
	double delay_until, delay_max; /* etcd answers delayed by up to delay_max */

	/* Postgres and its data */
	int pg;
	uint32_t pg_inc;
	bool pg_started_primary;
	bool pg_by_bootstrap; /* this postmaster was started by HA_BOOTSTRAP (see KNOWN_BOOTSTRAP) */
	int pg_upstream;
	bool pg_streaming;
	uint64_t lsn_prev;
	double wal_rate;
	struct datadir dd;
	/* running job (a child of the agent) */
	bool job_running, job_done, job_ok;
	int job_kind; /* enum ha_job */
	int job_src;
	uint32_t job_inc;

	/* keeper */
	int64_t k_lease;
	double k_sent;
	double k_t0;
	uint64_t k_req;
	int64_t k_req_lease;
	uint64_t k_gen;
	double k_interval;
	/* fence */
	bool f_armed;
	uint32_t f_pg;
	uint64_t f_gen;

	/* agent loop (mirrors struct loop in agent/loop.c) */
	int step, ph;
	uint64_t tick_gen, resume_gen;
	bool wake_pending;
	uint64_t req; /* the request the loop waits for */
	double t0;
	struct ha_cluster_view view;
	struct ha_local_view local;
	struct ha_action act;
	int last_kind;
	char last_reason[200];
	int64_t leader_mod_rev, sw_mod_rev;
	double leader_absent_since;
	uint32_t pm;            /* postmaster "pid": pg incarnation we started, 0 = none */
	struct local_memory lm; /* the view builder's and the executor's memory (agent/local_view.h) */
	char job_leader[HA_NAME_MAX];
	bool member_pub_valid;
	struct sim_member_data member_pub;
	bool status_pub_valid;
	uint64_t status_pub_lsn;
	uint32_t status_pub_tl;
	bool shutdown_requested;
	/* pg_query_state's answer */
	uint32_t pgst_tl;
	uint64_t pgst_lsn;
	bool pgst_streaming;
	/* switchover in progress */
	int sw_cand;
	int sw_aborts_quiet; /* switchovers aborted since the faults stopped (see KNOWN_SWITCHOVER_LOOP) */
	uint64_t sw_ckpt;
	double sw_until;
	struct api_snap api;
};

struct world {
	struct sim_params p;
	struct sim_rng rng;
	double t;
	uint64_t seq;
	struct ev *heap;
	size_t n_ev, cap_ev;
	struct sim_etcd etcd;
	struct node nodes[SIM_MAX_NODES];
	struct req *reqs;
	uint64_t req_seq;
	uint32_t next_uid;
	int64_t max_lag;
	double req_timeout, margin;
	bool quiet;
	bool done;
	bool hist_full;
	int last_leader;
	double last_writable;
	bool seen_writable;
	struct sim_result *res;
	char trace[TRACE_LINES][TRACE_LEN];
	int trace_n;
	FILE *out;
};

/* Copies a string into a fixed buffer, cut to fit (strings here are short
 * names and roles; snprintf would warn about overlap within the world). */
static void set_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memmove(dst, src, n);
	dst[n] = '\0';
}

/* ---- event queue (binary heap on (t, seq)) ---------------------------------- */

static bool ev_before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct world *W, double t, int kind, int node, uint32_t inc, uint64_t arg)
{
	size_t i;

	if (W->n_ev == W->cap_ev) {
		size_t cap = W->cap_ev ? W->cap_ev * 2 : 1024;
		struct ev *h = realloc(W->heap, cap * sizeof(*h));
		if (!h)
			abort(); /* test program: nothing sensible to do without memory */
		W->heap = h;
		W->cap_ev = cap;
	}
	i = W->n_ev++;
	W->heap[i] = (struct ev){
		.t = t < W->t ? W->t : t, .seq = W->seq++, .kind = kind, .node = node, .inc = inc, .arg = arg
	};
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		struct ev tmp;

		if (!ev_before(&W->heap[i], &W->heap[parent]))
			break;
		tmp = W->heap[i];
		W->heap[i] = W->heap[parent];
		W->heap[parent] = tmp;
		i = parent;
	}
}

static struct ev pop(struct world *W)
{
	struct ev top = W->heap[0];
	size_t i = 0;

	W->heap[0] = W->heap[--W->n_ev];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct ev tmp;

		if (l < W->n_ev && ev_before(&W->heap[l], &W->heap[m]))
			m = l;
		if (r < W->n_ev && ev_before(&W->heap[r], &W->heap[m]))
			m = r;
		if (m == i)
			break;
		tmp = W->heap[i];
		W->heap[i] = W->heap[m];
		W->heap[m] = tmp;
		i = m;
	}
	return top;
}

/* ---- trace ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void tr(struct world *W, const char *fmt, ...)
{
	char *line = W->trace[W->trace_n++ % TRACE_LINES];
	va_list ap;
	int n = snprintf(line, TRACE_LEN, "%9.3f ", W->t);

	va_start(ap, fmt);
	vsnprintf(line + n, TRACE_LEN - (size_t)n, fmt, ap);
	va_end(ap);
	if (W->p.verbose && W->out)
		fprintf(W->out, "  %s\n", line);
}

/* ---- clocks ------------------------------------------------------------------ */

/* A node's monotonic clock: its own offset and rate (a few hundred ppm). */
static double local_now(const struct node *N, double t)
{
	return N->clock_off + t * N->clock_rate;
}

static double global_at(const struct node *N, double local)
{
	return (local - N->clock_off) / N->clock_rate;
}

static double wall_now(const struct world *W, const struct node *N)
{
	return WALL_BASE + W->t + N->wall_off;
}

static bool agent_frozen(const struct world *W, const struct node *N)
{
	return N->afz_until > W->t || N->nfz_until > W->t;
}

static bool node_frozen(const struct world *W, const struct node *N)
{
	return N->nfz_until > W->t;
}

static bool etcd_cut(const struct world *W, const struct node *N)
{
	return N->epart_until > W->t;
}

static bool peers_cut(const struct world *W, const struct node *a, const struct node *b)
{
	return a->ppart_until > W->t || b->ppart_until > W->t;
}

static int node_by_name(const struct world *W, const char *name)
{
	for (int i = 0; i < W->p.n_nodes; i++)
		if (strcmp(W->nodes[i].name, name) == 0)
			return i;
	return SIM_NONE;
}

/* ---- WAL histories -------------------------------------------------------------- */

static bool hist_push(struct world *W, struct datadir *d, uint32_t tl, uint64_t start)
{
	if (d->h.n >= SIM_MAX_HIST) {
		W->hist_full = true;
		return false;
	}
	d->h.e[d->h.n++] = (struct sim_tl){ .tl = tl, .uid = ++W->next_uid, .start = start };
	return true;
}

static uint32_t hist_tl(const struct datadir *d)
{
	return d->h.n ? d->h.e[d->h.n - 1].tl : 0;
}

/* Entries both histories share (same identities from the start). */
static int hist_common(const struct datadir *a, const struct datadir *b)
{
	int k = 0;

	if (a->sysid != b->sysid)
		return 0;
	while (k < a->h.n && k < b->h.n && a->h.e[k].uid == b->h.e[k].uid)
		k++;
	return k;
}

/* Can `me` stream from `up`: is my history a prefix of its history, and
 * did I not go past the point where it left my last timeline? */
static bool hist_can_follow(const struct datadir *me, const struct datadir *up)
{
	int k = hist_common(me, up);

	if (k == 0 || k < me->h.n)
		return false;
	if (k < up->h.n && me->lsn > up->h.e[k].start)
		return false;
	return true;
}

/* ---- Postgres ----------------------------------------------------------------- */

static bool pg_running(const struct node *N)
{
	return N->pg != PG_DOWN;
}

/* Accepts (or may accept) writes: the invariant's notion of a writer. A
 * Postgres on a frozen node serves nobody until the node thaws. */
static bool pg_writable(const struct world *W, const struct node *N)
{
	if (!N->up || N->nfz_until >= W->t)
		return false;
	return N->pg == PG_PRIMARY || N->pg == PG_PROMOTING || (N->pg == PG_STARTING && N->pg_started_primary);
}

static void wake(struct world *W, int n);

/* The postmaster exits. A fast stop of a primary writes a shutdown
 * checkpoint, which its WAL senders ship to the streaming replicas first. */
static void pg_exit(struct world *W, int n, bool fast, const char *why)
{
	struct node *N = &W->nodes[n];

	if (!pg_running(N))
		return;
	if (fast && N->pg == PG_PRIMARY) {
		N->dd.lsn += 1;
		for (int i = 0; i < W->p.n_nodes; i++) {
			struct node *R = &W->nodes[i];

			if (i == n || !R->up || R->pg != PG_REPLICA || R->pg_upstream != n || !R->pg_streaming ||
			    node_frozen(W, R) || peers_cut(W, N, R) || !hist_can_follow(&R->dd, &N->dd))
				continue;
			R->dd.h = N->dd.h;
			if (R->dd.lsn < N->dd.lsn)
				R->dd.lsn = N->dd.lsn;
		}
	}
	tr(W, "%s: postgres %s -> down (%s)", N->name, pg_st_names[N->pg], why);
	N->pg = PG_DOWN;
	N->pg_streaming = false;
	N->pg_inc++;
	if (N->agent_alive)
		wake(W, n); /* SIGCHLD */
}

/* ---- requests to etcd ------------------------------------------------------------ */

static double latency(struct world *W)
{
	if (sim_rng_chance(&W->rng, 0.01))
		return sim_rng_range(&W->rng, 0.05, 0.3);
	return sim_rng_range(&W->rng, W->p.lat_lo, W->p.lat_hi);
}

static struct req *req_get(struct world *W, uint64_t id)
{
	struct req *r = &W->reqs[id % REQ_RING];

	return r->id == id ? r : NULL;
}

static double loss(const struct world *W)
{
	return W->quiet ? 0 : W->p.loss;
}

/* Sends a request with a client timeout (seconds of the node's clock).
 * Returns its id; the answer or the timeout comes back as an event. */
static uint64_t send_req(struct world *W, int n, const struct req *params, double timeout)
{
	struct node *N = &W->nodes[n];
	uint64_t id = ++W->req_seq;
	struct req *r = &W->reqs[id % REQ_RING];

	*r = *params;
	r->id = id;
	r->node = n;
	r->inc = N->agent_inc;
	push(W, W->t + timeout / N->clock_rate, EV_TIMEOUT, n, N->agent_inc, id);
	if (etcd_cut(W, N)) {
		if (N->epart_reject) {
			r->refused = true;
			push(W, W->t + 0.001, EV_ANSWER, n, N->agent_inc, id);
		}
		return id;
	}
	if (sim_rng_chance(&W->rng, loss(W)))
		return id;
	push(W, W->t + latency(W), EV_ARRIVE, n, N->agent_inc, id);
	return id;
}

static void watch_notify(struct world *W)
{
	for (int i = 0; i < W->p.n_nodes; i++) {
		struct node *N = &W->nodes[i];

		if (N->up && N->agent_alive && !etcd_cut(W, N))
			push(W, W->t + latency(W), EV_WATCH, i, N->agent_inc, 0);
	}
}

static double sweep_lag(struct world *W)
{
	return sim_rng_range(&W->rng, 0.05, 0.4);
}

/* Runs etcd's expiry sweep and tells the watchers if the leader key went. */
static void etcd_sweep(struct world *W)
{
	struct sim_etcd *E = &W->etcd;
	bool had = E->k.leader.present;
	int who = E->k.leader_node;

	sim_etcd_expire(E, W->t);
	if (had && !E->k.leader.present) {
		tr(W, "etcd: leader key of %s expired with its lease", W->nodes[who].name);
		watch_notify(W);
	}
}

static void schedule_sweeps(struct world *W)
{
	for (int i = 0; i < W->etcd.n_leases; i++)
		push(W, W->etcd.leases[i].revoke_at, EV_SWEEP, SIM_NONE, 0, 0);
}

/* etcd applies a request atomically when it arrives. */
static void etcd_apply(struct world *W, struct req *r)
{
	struct sim_etcd *E = &W->etcd;
	struct sim_keys *K = &E->k;
	struct node *N = &W->nodes[r->node];
	int64_t leader_rev = K->leader.present ? K->leader.mod_rev : 0;
	bool leader_before = K->leader.present;

	etcd_sweep(W);
	switch (r->kind) {
	case RQ_GRANT:
		r->out_id = sim_etcd_grant(E, W->t, ceil(W->p.ttl), sweep_lag(W));
		r->err = r->out_id == 0;
		schedule_sweeps(W);
		break;
	case RQ_KEEPALIVE:
		r->err = !sim_etcd_keepalive(E, W->t, r->lease, sweep_lag(W));
		if (!r->err)
			schedule_sweeps(W);
		break;
	case RQ_REVOKE:
		sim_etcd_revoke(E, r->lease);
		break;
	case RQ_RANGE:
		r->snap = *K;
		break;
	case RQ_ACQUIRE:
		if (r->create)
			r->won = !K->leader.present;
		else
			r->won = K->leader.present && K->leader_node == r->node && K->leader.mod_rev == r->rev;
		if (r->won) {
			if (sim_etcd_put(E, &K->leader, r->lease)) {
				K->leader_node = r->node;
				tr(W, "etcd: leader key -> %s (lease %llx)", N->name, (unsigned long long)r->lease);
			} else {
				r->won = false;
				r->err = true;
			}
		}
		break;
	case RQ_RELEASE:
		r->won = K->leader.present && K->leader_node == r->node;
		if (r->won) {
			sim_etcd_delete(E, &K->leader);
			tr(W, "etcd: leader key deleted by %s", N->name);
		}
		break;
	case RQ_PUT_MEMBER:
		if (sim_etcd_put(E, &K->member[r->node], r->lease))
			K->mdata[r->node] = r->md;
		else
			r->err = true;
		break;
	case RQ_PUT_STATUS:
		sim_etcd_put(E, &K->status, 0);
		K->status_lsn = r->u64;
		K->status_tl = r->tl;
		break;
	case RQ_RACE_INIT:
		r->won = !K->init.present;
		if (r->won) {
			if (!sim_etcd_put(E, &K->init, r->lease)) {
				r->won = false;
				r->err = true;
			} else if (r->lease) {
				K->init_owner = r->node;
			} else {
				K->init_sysid = r->u64;
			}
		}
		break;
	case RQ_FINISH_INIT:
		r->won = K->init.present && K->init.lease != 0 && K->init_owner == r->node;
		if (r->won) {
			sim_etcd_put(E, &K->init, 0);
			K->init_sysid = r->u64;
		}
		break;
	case RQ_CLEAR_SW:
		r->won = K->sw.present && K->sw.mod_rev == r->rev;
		if (r->won)
			sim_etcd_delete(E, &K->sw);
		break;
	case RQ_RECORD_SW:
		r->won = K->sw.present && K->sw.mod_rev == r->rev;
		if (r->won) {
			sim_etcd_put(E, &K->sw, 0);
			K->sw_from = r->node;
			K->sw_to = r->target;
			r->out_id = K->sw.mod_rev; /* the txn's revision, as loop.c's txn_rev returns */
		}
		break;
	}
	if (K->leader.present != leader_before || (K->leader.present && K->leader.mod_rev != leader_rev))
		watch_notify(W);
}

/* ---- keeper and fence ------------------------------------------------------------ */

/* The keeper's deadline, by the core's one formula (the model has no
 * failsafe rounds). */
static double deadline_of(const struct world *W, const struct node *N)
{
	return ha_deadline(N->k_lease, N->k_sent, W->p.ttl, 0);
}

/* Reschedules the fence after the keeper's state or the arming changed. */
static void fence_update(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	double d;

	N->f_gen++;
	if (!N->f_armed || W->p.broken || W->p.no_fence)
		return;
	d = deadline_of(W, N);
	push(W, d > 0 ? global_at(N, d) : W->t, EV_FENCE, n, 0, N->f_gen);
}

static void set_fence_pid(struct world *W, int n, uint32_t pm)
{
	struct node *N = &W->nodes[n];

	if (N->f_armed == (pm != 0) && N->f_pg == pm)
		return;
	N->f_armed = pm != 0;
	N->f_pg = pm;
	fence_update(W, n);
}

static void fence_fire(struct world *W, int n, uint64_t gen)
{
	struct node *N = &W->nodes[n];
	double d;

	if (gen != N->f_gen || !N->f_armed || !N->up)
		return;
	d = deadline_of(W, N);
	if (d > 0 && local_now(N, W->t) < d) {
		push(W, global_at(N, d), EV_FENCE, n, 0, N->f_gen);
		return;
	}
	N->f_armed = false;
	if (N->pg_inc != N->f_pg || !pg_running(N))
		return;
	W->res->st.fences++;
	tr(W, "%s: FENCE: lease deadline passed, stopping postgres at once", N->name);
	pg_exit(W, n, false, "fenced");
}

static void keeper_send(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	struct req q;
	double timeout = N->k_interval;

	if (N->k_lease == 0) {
		push(W, global_at(N, local_now(N, W->t) + 0.1), EV_KEEPER, n, N->agent_inc, ++N->k_gen);
		return;
	}
	if (N->f_armed && N->k_sent > 0) {
		double left = deadline_of(W, N) - local_now(N, W->t);
		double t = left - 0.05 < N->k_interval ? left - 0.05 : N->k_interval;
		timeout = t < 0.1 ? 0.1 : t;
	}
	memset(&q, 0, sizeof(q));
	q.kind = RQ_KEEPALIVE;
	q.keeper = true;
	q.lease = N->k_lease;
	N->k_t0 = local_now(N, W->t);
	N->k_req_lease = N->k_lease;
	N->k_req = send_req(W, n, &q, timeout);
}

static void keeper_done(struct world *W, int n, const struct req *r)
{
	struct node *N = &W->nodes[n];
	double next = N->k_interval;

	N->k_req = 0;
	if (N->k_req_lease == N->k_lease) {
		if (r && !r->refused && !r->err) {
			N->k_sent = N->k_t0;
			fence_update(W, n);
		} else if (r && r->err) {
			tr(W, "%s: keeper: lease %llx gone in etcd", N->name, (unsigned long long)N->k_lease);
			N->k_lease = 0;
			fence_update(W, n);
			wake(W, n);
		} else {
			next = N->k_interval / 4 < 0.25 ? N->k_interval / 4 : 0.25;
		}
	}
	push(W, global_at(N, local_now(N, W->t) + next), EV_KEEPER, n, N->agent_inc, ++N->k_gen);
}

/* ---- the agent loop ------------------------------------------------------------------ */

static void loop_read(struct world *W, int n);
static void loop_local(struct world *W, int n);
static void loop_poll(struct world *W, int n);
static void loop_decide(struct world *W, int n);
static void loop_publish(struct world *W, int n);
static void loop_sleep(struct world *W, int n);
static void agent_exit(struct world *W, int n, bool fatal);

static void wake(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (!N->agent_alive)
		return;
	if (N->step == ST_IDLE)
		push(W, W->t, EV_TICK, n, N->agent_inc, ++N->tick_gen);
	else
		N->wake_pending = true;
}

static void block_for(struct world *W, int n, double seconds)
{
	struct node *N = &W->nodes[n];

	push(W, W->t + seconds / N->clock_rate, EV_RESUME, n, N->agent_inc, ++N->resume_gen);
}

static void set_fence(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	bool may_write = N->pm != 0 && (N->lm.pg_started_primary || N->lm.promote_requested ||
	                                (N->local.pg_ready && N->local.pg_primary));

	set_fence_pid(W, n, may_write ? N->pm : 0);
}

static bool is_leader(const struct node *N)
{
	return N->view.etcd_ok && N->view.has_leader && strcmp(N->view.leader, N->name) == 0;
}

static void reap_postmaster(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (N->pm == 0 || (N->pg_inc == N->pm && pg_running(N)))
		return;
	N->pm = 0;
	set_fence_pid(W, n, 0);
	if (!N->lm.pg_was_ready) {
		/* A fault killed it during start-up: no cause the server's log
		 * would name; the model counts one failure, not a growing streak. */
		N->lm.pg_start_failed = true;
		N->lm.start_failure = HA_START_FAIL_OTHER;
		N->lm.start_failures = 1;
	}
	N->lm.pg_started_at = local_now(N, W->t);
	N->lm.promote_requested = false;
	if (N->lm.pg_was_ready)
		N->lm.following[0] = '\0';
	N->lm.pg_was_ready = false;
}

static void reap_job(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	double now = local_now(N, W->t);

	if (!N->job_running || !N->job_done)
		return;
	N->job_running = false;
	if (N->job_ok) {
		if (N->job_kind == HA_JOB_REWIND || N->job_kind == HA_JOB_CLONE)
			set_str(N->lm.rewound_for, sizeof(N->lm.rewound_for), N->job_leader);
		if (N->job_kind == HA_JOB_REWIND) {
			N->lm.rewind_failures = 0;
			N->lm.pg_start_failed = false;
			set_str(N->lm.rewind_ok_for, sizeof(N->lm.rewind_ok_for), N->job_leader);
		}
		N->lm.job_failed = HA_JOB_NONE;
	} else {
		N->lm.job_failed = N->job_kind;
		N->lm.job_failed_at = now;
		if (N->job_kind == HA_JOB_REWIND && ++N->lm.rewind_failures < 3)
			N->lm.job_failed = HA_JOB_NONE;
		if (N->job_kind == HA_JOB_CLONE || N->job_kind == HA_JOB_BOOTSTRAP)
			N->dd.state = DD_EMPTY;
	}
}

static void start_job(struct world *W, int n, int kind, int src, double lo, double hi)
{
	struct node *N = &W->nodes[n];

	N->job_running = true;
	N->job_done = false;
	N->job_kind = kind;
	N->job_src = src;
	set_str(N->job_leader, sizeof(N->job_leader), src >= 0 ? W->nodes[src].name : "");
	push(W, W->t + sim_rng_range(&W->rng, lo, hi), EV_JOB_DONE, n, ++N->job_inc, 0);
	tr(W, "%s: job %s started%s%s", N->name,
	   kind == HA_JOB_CLONE    ? "clone"
	   : kind == HA_JOB_REWIND ? "rewind"
	                           : "initdb",
	   src >= 0 ? " from " : "", src >= 0 ? W->nodes[src].name : "");
}

static void job_done(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	struct node *S = N->job_src >= 0 ? &W->nodes[N->job_src] : NULL;
	bool src_ok = S && S->up && !node_frozen(W, S) &&
	              (S->pg == PG_REPLICA || S->pg == PG_PRIMARY || S->pg == PG_PROMOTING) && !peers_cut(W, N, S);

	N->job_done = true;
	N->job_ok = false;
	switch (N->job_kind) {
	case HA_JOB_BOOTSTRAP:
		memset(&N->dd, 0, sizeof(N->dd));
		N->dd.state = DD_VALID;
		N->dd.sysid = sim_rng_next(&W->rng) | 1;
		hist_push(W, &N->dd, 1, 0);
		N->job_ok = true;
		break;
	case HA_JOB_CLONE:
		if (src_ok) {
			N->dd = S->dd;
			N->job_ok = true;
		}
		break;
	case HA_JOB_REWIND: {
		int k = src_ok ? hist_common(&N->dd, &S->dd) : 0;

		if (k > 0) {
			uint64_t fork = k < S->dd.h.n ? S->dd.h.e[k].start : S->dd.lsn;

			if (k < N->dd.h.n && N->dd.h.e[k].start < fork)
				fork = N->dd.h.e[k].start;
			N->dd.h = S->dd.h;
			if (N->dd.lsn > fork)
				N->dd.lsn = fork;
			N->job_ok = true;
		}
		break;
	}
	}
	tr(W, "%s: job %s", N->name, N->job_ok ? "finished" : "FAILED");
	wake(W, n);
}

static void start_postgres(struct world *W, int n, bool primary, const char *upstream)
{
	struct node *N = &W->nodes[n];
	double now = local_now(N, W->t);

	if (pg_running(N))
		return; /* cannot happen with a reaped postmaster; keeps the model honest */
	N->pg = PG_STARTING;
	N->pg_inc++;
	N->pg_started_primary = primary;
	N->pg_by_bootstrap = N->act.kind == HA_BOOTSTRAP;
	N->pg_upstream = !primary && upstream && upstream[0] ? node_by_name(W, upstream) : SIM_NONE;
	N->pg_streaming = false;
	push(W, W->t + sim_rng_range(&W->rng, 0.1, 1.5), EV_PG_READY, n, N->pg_inc, 0);
	N->pm = N->pg_inc;
	N->lm.pg_started_primary = primary;
	N->lm.pg_started_at = now;
	N->lm.pg_was_ready = false;
	N->lm.streamed_tl = 0;
	N->lm.rewound_for[0] = '\0';
	set_str(N->lm.following, sizeof(N->lm.following), primary || !upstream ? "" : upstream);
	N->lm.not_streaming_since = 0;
	set_fence(W, n);
	tr(W, "%s: postgres starting as %s%s%s", N->name, primary ? "PRIMARY" : "replica",
	   !primary && upstream && upstream[0] ? " of " : "", !primary && upstream ? upstream : "");
}

static void stop_postgres(struct world *W, int n, bool immediate, const char *why)
{
	struct node *N = &W->nodes[n];

	if (N->pm == 0)
		return;
	if (N->pg_inc == N->pm)
		pg_exit(W, n, !immediate, why);
	N->pm = 0;
	set_fence_pid(W, n, 0);
	N->lm.pg_started_primary = false;
	N->lm.promote_requested = false;
	N->lm.pg_was_ready = false;
	N->lm.following[0] = '\0';
	N->local.pg_running = N->local.pg_ready = N->local.pg_primary = false;
}

static double stop_time(struct world *W, bool immediate)
{
	return immediate ? 0.01 : sim_rng_range(&W->rng, 0.05, 0.6);
}

static void loop_begin(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	struct req q;

	N->wake_pending = false;
	reap_postmaster(W, n);
	reap_job(W, n);
	/* ensure_lease */
	if (N->k_lease == 0 && !(N->pm != 0 && (N->lm.pg_started_primary || N->local.pg_primary))) {
		memset(&q, 0, sizeof(q));
		q.kind = RQ_GRANT;
		N->t0 = local_now(N, W->t);
		N->step = ST_GRANT;
		N->req = send_req(W, n, &q, W->req_timeout);
		return;
	}
	loop_read(W, n);
}

static void grant_done(struct world *W, int n, const struct req *r)
{
	struct node *N = &W->nodes[n];

	if (r && !r->refused && !r->err) {
		N->k_lease = r->out_id;
		N->k_sent = N->t0;
		N->member_pub_valid = false;
		fence_update(W, n);
		tr(W, "%s: got lease %llx", N->name, (unsigned long long)r->out_id);
	}
	loop_read(W, n);
}

static void loop_read(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	bool may_write = N->pm != 0 && (N->lm.pg_started_primary || N->local.pg_primary);
	double timeout = W->req_timeout;
	struct req q;

	if (may_write && ha_lease_deadline(&N->view, &N->local) > 0) {
		double left;

		N->local.lease_id = N->k_lease;
		N->local.lease_sent = N->k_sent;
		left = ha_lease_deadline(&N->view, &N->local) - local_now(N, W->t);
		if (left <= 0.05) {
			N->view.etcd_ok = false;
			loop_local(W, n);
			return;
		}
		if (left - 0.05 < timeout)
			timeout = left - 0.05;
	}
	memset(&q, 0, sizeof(q));
	q.kind = RQ_RANGE;
	N->step = ST_READ;
	N->req = send_req(W, n, &q, timeout);
}

static void fill_view(struct world *W, struct node *N, const struct sim_keys *k)
{
	struct ha_cluster_view *v = &N->view;

	memset(v, 0, sizeof(*v));
	v->etcd_ok = true;
	if (k->init.present) {
		v->init_key_present = true;
		if (k->init.lease != 0) {
			v->init_in_progress = true;
			set_str(v->init_owner, sizeof(v->init_owner), W->nodes[k->init_owner].name);
		} else {
			v->sysid = k->init_sysid;
		}
	}
	if (k->leader.present) {
		v->has_leader = true;
		set_str(v->leader, sizeof(v->leader), W->nodes[k->leader_node].name);
		v->leader_lease = k->leader.lease;
	}
	if (k->status.present) {
		v->leader_lsn = k->status_lsn;
		v->leader_timeline = k->status_tl;
	}
	v->ttl = W->p.ttl;
	v->loop_wait = W->p.loop_wait;
	v->retry_timeout = W->p.retry_timeout;
	v->maximum_lag_on_failover = W->max_lag;
	if (k->sw.present) {
		v->has_switchover = true;
		if (k->sw_from >= 0)
			set_str(v->sw_from, sizeof(v->sw_from), W->nodes[k->sw_from].name);
		if (k->sw_to >= 0)
			set_str(v->sw_to, sizeof(v->sw_to), W->nodes[k->sw_to].name);
		v->sw_scheduled_at = k->sw_at;
		v->sw_failover = k->sw_failover;
	}
	for (int i = 0; i < W->p.n_nodes; i++) {
		struct ha_member *m;

		if (!k->member[i].present)
			continue;
		m = &v->members[v->n_members++];
		set_str(m->name, sizeof(m->name), W->nodes[i].name);
		set_str(m->role, sizeof(m->role), k->mdata[i].role);
		set_str(m->state, sizeof(m->state), k->mdata[i].state);
		snprintf(m->host, sizeof(m->host), "10.0.0.%d", i + 1);
		m->port = 5432;
		snprintf(m->api_url, sizeof(m->api_url), "http://10.0.0.%d:8008", i + 1);
		m->timeline = k->mdata[i].timeline;
		m->lsn = k->mdata[i].lsn;
		m->nofailover = k->mdata[i].nofailover;
	}
	N->leader_mod_rev = k->leader.present ? k->leader.mod_rev : 0;
	N->sw_mod_rev = k->sw.present ? k->sw.mod_rev : 0;
}

static void read_done(struct world *W, int n, const struct req *r)
{
	struct node *N = &W->nodes[n];

	if (r && !r->refused && !r->err) {
		fill_view(W, N, &r->snap);
		if (N->view.has_leader)
			N->leader_absent_since = 0;
		else if (N->leader_absent_since == 0)
			N->leader_absent_since = local_now(N, W->t);
	} else {
		N->view.etcd_ok = false;
	}
	loop_local(W, n);
}

/* The state and role the node publishes: the core's functions, as loop_publish.c. */
static const char *member_state(const struct world *W, const struct node *N)
{
	return ha_state_name(ha_state_of(N->job_running ? (enum ha_job)N->job_kind : HA_JOB_NONE,
	                                 N->lm.promote_requested, N->pm != 0, N->lm.pg_start_failed, N->local.pg_ready,
	                                 N->local.pg_primary,
	                                 ha_replay_check(&N->view, &N->local, local_now(N, W->t), NULL, 0)));
}

static const char *member_role(const struct node *N)
{
	return ha_role_name(ha_role_of(N->local.pg_ready, N->local.pg_primary, N->local.datadir));
}

static void clear_switchover(struct world *W, int n, int next_step)
{
	struct node *N = &W->nodes[n];
	struct req q;

	memset(&q, 0, sizeof(q));
	q.kind = RQ_CLEAR_SW;
	q.rev = N->sw_mod_rev;
	N->sw_mod_rev = 0;
	N->view.has_switchover = false;
	N->step = next_step;
	N->req = send_req(W, n, &q, W->req_timeout);
}

/* The local view, by production's builder (local_view_update) from what
 * the model's Postgres, data directory and keeper show. */
static void loop_local(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	struct local_obs o;
	struct local_events ev;
	double now = local_now(N, W->t);

	memset(&o, 0, sizeof(o));
	o.name = N->name;
	o.nofailover = N->nofailover;
	o.failover_priority = N->local.failover_priority;
	o.shutdown_requested = N->shutdown_requested;
	o.use_pg_rewind = true;
	o.remove_data_on_rewind_failure = N->remove_data;
	o.lease_id = N->k_lease;
	o.lease_sent = N->k_sent;
	o.datadir = N->dd.state == DD_VALID   ? HA_DATADIR_VALID
	            : N->dd.state == DD_EMPTY ? HA_DATADIR_EMPTY
	                                      : HA_DATADIR_INVALID;
	/* The model's pg_control: always readable, never a former primary's
	 * (its rejoin goes by streaming or the diverged-timeline rewind). */
	o.ctl_valid = N->dd.state == DD_VALID;
	o.ctl_sysid = N->dd.sysid;
	o.ctl_timeline = hist_tl(&N->dd);
	o.postmaster_running = N->pm != 0;
	o.job_running = N->job_running ? (enum ha_job)N->job_kind : HA_JOB_NONE;
	if (o.postmaster_running && N->pg_inc == N->pm &&
	    (N->pg == PG_REPLICA || N->pg == PG_PROMOTING || N->pg == PG_PRIMARY)) {
		o.pg_answered = true;
		o.in_recovery = N->pg != PG_PRIMARY;
		N->pgst_tl = hist_tl(&N->dd);
		N->pgst_lsn = N->dd.lsn;
		N->pgst_streaming = N->pg == PG_REPLICA && N->pg_streaming;
		o.timeline = N->pgst_tl;
		o.current_lsn = N->pgst_lsn;
		o.wal_receiver_streaming = N->pgst_streaming;
		o.system_identifier = N->dd.sysid;
	}
	o.wall_now = wall_now(W, N);
	o.leader_absent_since = N->leader_absent_since;

	local_view_update(&N->local, &N->lm, &o, &N->view, now, &ev);

	if (ev.promoted) {
		tr(W, "%s: promoted (timeline %u)", N->name, N->local.pg_timeline);
		W->res->st.promotions++;
		if (N->view.has_switchover && N->sw_mod_rev != 0) {
			clear_switchover(W, n, ST_LOCAL_SW);
			return;
		}
	}
	loop_poll(W, n);
}

static bool api_reachable(const struct world *W, int from, int to)
{
	const struct node *T = &W->nodes[to];

	return T->up && T->agent_alive && !agent_frozen(W, T) && !peers_cut(W, &W->nodes[from], T);
}

static void loop_poll(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	double cost = 0;

	if (!(N->view.etcd_ok && !N->view.has_leader && N->local.pg_ready && !N->local.pg_primary && !N->nofailover)) {
		loop_decide(W, n);
		return;
	}
	for (size_t i = 0; i < N->view.n_members; i++) {
		struct ha_member *m = &N->view.members[i];
		int j = node_by_name(W, m->name);
		const struct api_snap *s;

		if (j == n || j < 0)
			continue;
		m->polled = true;
		m->reachable = api_reachable(W, n, j);
		if (!m->reachable) {
			cost += W->p.loop_wait < 0.5 ? W->p.loop_wait : 0.5;
			continue;
		}
		cost += 0.002;
		s = &W->nodes[j].api;
		/* as poll_peers (loop_view.c) judges an answer */
		m->healthy = s->pg_running && ha_state_from_name(s->state) != HA_STATE_REPLAY_PAUSED &&
		             ha_state_from_name(s->state) != HA_STATE_STUCK_REPLAY;
		m->polled_starting = !s->pg_running && ha_role_from_name(s->role) != HA_ROLE_UNINITIALIZED &&
		                     (ha_state_from_name(s->state) == HA_STATE_STARTING ||
		                      ha_state_from_name(s->state) == HA_STATE_STOPPED);
		m->polled_primary = s->pg_running && ha_role_from_name(s->role) == HA_ROLE_PRIMARY;
		m->polled_lsn = s->lsn;
		m->polled_timeline = s->tl;
	}
	N->step = ST_POLL;
	block_for(W, n, cost);
}

static void send_simple(struct world *W, int n, int kind, int ph)
{
	struct node *N = &W->nodes[n];
	struct req q;

	memset(&q, 0, sizeof(q));
	q.kind = kind;
	q.lease = N->local.lease_id;
	q.rev = kind == RQ_ACQUIRE ? N->leader_mod_rev : N->sw_mod_rev;
	q.create = !N->view.has_leader;
	N->step = ST_ACT;
	N->ph = ph;
	N->req = send_req(W, n, &q, W->req_timeout);
}

static bool leader_known(const struct world *W, const struct node *N, const char *leader)
{
	return ha_find_member(&N->view, leader) != NULL && node_by_name(W, leader) >= 0;
}

/* What `cand`'s REST API answers `n` now (loop_switchover.c's ask_candidate). */
static void ask_candidate(const struct world *W, int n, int cand, struct ha_peer_status *st)
{
	const struct api_snap *s = &W->nodes[cand].api;

	memset(st, 0, sizeof(*st));
	st->answered = api_reachable(W, n, cand);
	if (!st->answered) {
		set_str(st->error, sizeof(st->error), "unreachable");
		return;
	}
	st->pg_running = s->pg_running;
	set_str(st->role, sizeof(st->role), s->role);
	set_str(st->state, sizeof(st->state), s->state);
	st->timeline = s->tl;
	st->lsn = s->lsn;
}

static void do_switchover(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	int cand = SIM_NONE;

	if (N->act.leader[0]) {
		int t = node_by_name(W, N->act.leader);
		struct ha_peer_status st;
		char why[300];

		if (t >= 0) {
			ask_candidate(W, n, t, &st);
			if (ha_switchover_ready(&N->view, &N->local, N->act.leader, &st, why, sizeof(why)))
				cand = t;
		}
	} else {
		struct ha_peer_status st[HA_MAX_MEMBERS];
		const char *names[HA_MAX_MEMBERS];
		int idx[HA_MAX_MEMBERS];
		size_t k = 0;
		int best;

		for (size_t i = 0; i < N->view.n_members && k < HA_MAX_MEMBERS; i++) {
			int j = node_by_name(W, N->view.members[i].name);

			if (j == n || j < 0)
				continue;
			ask_candidate(W, n, j, &st[k]);
			names[k] = N->view.members[i].name;
			idx[k++] = j;
		}
		best = ha_switchover_choose(&N->view, &N->local, names, st, k);
		cand = best >= 0 ? idx[best] : SIM_NONE;
	}
	if (cand < 0) {
		tr(W, "%s: switchover refused: no ready candidate", N->name);
		if (N->sw_mod_rev) {
			clear_switchover(W, n, ST_ACT);
			N->ph = PH_SW_ABORT;
		} else {
			loop_publish(W, n);
		}
		return;
	}
	N->sw_cand = cand;
	{
		struct req q;

		memset(&q, 0, sizeof(q));
		q.kind = RQ_RECORD_SW;
		q.rev = N->sw_mod_rev;
		q.target = cand;
		N->step = ST_ACT;
		N->ph = PH_SW_RECORD;
		N->req = send_req(W, n, &q, W->req_timeout);
	}
}

/* Carries out N->act. Ends by calling loop_publish, now or after the
 * requests and timed waits the action needs. */
static void execute(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	const struct ha_action *a = &N->act;
	double now = local_now(N, W->t);

	switch (a->kind) {
	case HA_WAIT:
		break;
	case HA_FATAL:
		W->res->st.fatals++;
		stop_postgres(W, n, false, "fatal condition");
		N->step = ST_ACT;
		N->ph = PH_FATAL_STOP;
		block_for(W, n, 0.01);
		return;
	case HA_SHUTDOWN:
		stop_postgres(W, n, false, "agent shutting down");
		N->step = ST_ACT;
		N->ph = PH_SHUT_STOP;
		block_for(W, n, stop_time(W, false));
		return;
	case HA_RACE_INIT: {
		struct req q;

		if (N->local.lease_id == 0) /* the core waits for a lease (rule 5) */
			break;
		memset(&q, 0, sizeof(q));
		q.kind = RQ_RACE_INIT;
		q.lease = N->local.lease_id;
		if (N->local.datadir == HA_DATADIR_VALID) {
			q.lease = 0;
			q.u64 = N->dd.sysid;
		}
		N->step = ST_ACT;
		N->ph = PH_RACE_INIT;
		N->req = send_req(W, n, &q, W->req_timeout);
		return;
	}
	case HA_BOOTSTRAP:
		if (N->local.datadir == HA_DATADIR_EMPTY) {
			start_job(W, n, HA_JOB_BOOTSTRAP, SIM_NONE, 0.3, 1.5);
			break;
		}
		if (!N->local.pg_running) {
			if (is_leader(N)) {
				start_postgres(W, n, true, NULL);
				break;
			}
			if (N->local.lease_id == 0)
				break;
			send_simple(W, n, RQ_ACQUIRE, PH_BOOT_ACQUIRE);
			return;
		}
		if (!N->local.pg_ready || !N->local.pg_primary)
			break;
		{
			struct req q;

			memset(&q, 0, sizeof(q));
			q.kind = RQ_FINISH_INIT;
			q.u64 = N->dd.sysid;
			N->step = ST_ACT;
			N->ph = PH_BOOT_FINISH;
			N->req = send_req(W, n, &q, W->req_timeout);
			return;
		}
	case HA_CLONE:
		if (!leader_known(W, N, a->leader))
			break;
		start_job(W, n, HA_JOB_CLONE, node_by_name(W, a->leader), 0.3, 3.0);
		break;
	case HA_REINIT:
		stop_postgres(W, n, false, "reinit");
		N->step = ST_ACT;
		N->ph = PH_REINIT_STOP;
		block_for(W, n, stop_time(W, false));
		return;
	case HA_START_REPLICA:
		start_postgres(W, n, false, a->leader);
		break;
	case HA_START_PRIMARY:
		start_postgres(W, n, true, NULL);
		break;
	case HA_FOLLOW:
		if (!leader_known(W, N, a->leader))
			break;
		set_str(N->lm.following, sizeof(N->lm.following), a->leader);
		N->lm.not_streaming_since = now;
		if (N->pg_inc == N->pm && pg_running(N))
			N->pg_upstream = node_by_name(W, a->leader);
		break;
	case HA_ACQUIRE:
		if (N->local.lease_id == 0)
			break;
		send_simple(W, n, RQ_ACQUIRE, PH_ACQUIRE);
		return;
	case HA_PROMOTE:
		if (N->pg_inc != N->pm || N->pg != PG_REPLICA)
			break; /* pg_promote() fails: Postgres not answering */
		N->pg = PG_PROMOTING;
		N->pg_streaming = false;
		push(W, W->t + sim_rng_range(&W->rng, 0.1, 1.0), EV_PG_PROMOTED, n, N->pg_inc, 0);
		N->lm.promote_requested = true;
		N->lm.following[0] = '\0';
		set_fence(W, n);
		tr(W, "%s: postgres promoting", N->name);
		break;
	case HA_LEAD:
	case HA_CLEAR_SWITCHOVER: /* as loop_execute.c: lead, then clear the stale key */
		if (!N->status_pub_valid || N->status_pub_lsn != N->pgst_lsn || N->status_pub_tl != N->pgst_tl) {
			struct req q;

			memset(&q, 0, sizeof(q));
			q.kind = RQ_PUT_STATUS;
			q.u64 = N->pgst_lsn;
			q.tl = N->pgst_tl;
			N->step = ST_ACT;
			N->ph = PH_STATUS;
			N->req = send_req(W, n, &q, W->req_timeout);
			return;
		}
		if (a->kind == HA_CLEAR_SWITCHOVER && N->sw_mod_rev) {
			clear_switchover(W, n, ST_ACT);
			N->ph = PH_LEAD_SW;
			return;
		}
		break;
	case HA_REFUSE:
		break; /* the model sends no operator requests */
	case HA_STANDBY_LEAD:
	case HA_DEMOTE_CLUSTER:
		break; /* the model runs no standby clusters */
	case HA_DEMOTE:
		if (W->p.broken)
			break; /* the deliberately broken variant keeps writing */
		W->res->st.demotes++;
		stop_postgres(W, n, true, a->reason);
		break;
	case HA_REWIND:
		if (!leader_known(W, N, a->leader))
			break;
		stop_postgres(W, n, false, "rewinding");
		N->step = ST_ACT;
		N->ph = PH_REWIND_STOP;
		block_for(W, n, stop_time(W, false));
		return;
	case HA_RELEASE:
		send_simple(W, n, RQ_RELEASE, PH_RELEASE);
		return;
	case HA_SWITCHOVER:
		N->step = ST_ACT;
		N->ph = PH_SW_CHECK;
		block_for(W, n, 0.005);
		return;
	case HA_RESTART:
		stop_postgres(W, n, false, "restart requested");
		N->step = ST_ACT;
		N->ph = PH_RESTART_STOP;
		block_for(W, n, stop_time(W, false));
		return;
	}
	loop_publish(W, n);
}

/* Continues an action after its request was answered (r, ok) or timed out
 * (r NULL), or after a timed wait (r NULL, timer true). */
static void act_continue(struct world *W, int n, const struct req *r)
{
	struct node *N = &W->nodes[n];
	bool ok = r && !r->refused && !r->err;
	bool won = ok && r->won;

	switch (N->ph) {
	case PH_ACQUIRE:
	case PH_BOOT_ACQUIRE:
		if (won) {
			N->view.has_leader = true;
			set_str(N->view.leader, sizeof(N->view.leader), N->name);
			N->view.leader_lease = N->local.lease_id;
			if (N->ph == PH_BOOT_ACQUIRE)
				start_postgres(W, n, true, NULL);
		}
		break;
	case PH_STATUS:
		if (ok) {
			N->status_pub_valid = true;
			N->status_pub_lsn = N->pgst_lsn;
			N->status_pub_tl = N->pgst_tl;
		}
		if (N->act.kind == HA_CLEAR_SWITCHOVER && N->sw_mod_rev) {
			clear_switchover(W, n, ST_ACT);
			N->ph = PH_LEAD_SW;
			return;
		}
		break;
	case PH_REWIND_STOP:
		start_job(W, n, HA_JOB_REWIND, node_by_name(W, N->act.leader), 0.3, 1.0);
		break;
	case PH_REINIT_STOP:
		memset(&N->dd, 0, sizeof(N->dd));
		N->dd.state = DD_EMPTY;
		N->lm.job_failed = HA_JOB_NONE;
		tr(W, "%s: data directory removed (reinit)", N->name);
		break;
	case PH_SW_CHECK:
		do_switchover(W, n);
		return;
	case PH_SW_RECORD:
		if (!won) {
			tr(W, "%s: switchover: the request changed; starting over", N->name);
			break;
		}
		N->sw_mod_rev = r->out_id; /* an abort clears what we just wrote (loop.c) */
		tr(W, "%s: switchover to %s: stopping postgres", N->name, W->nodes[N->sw_cand].name);
		N->sw_ckpt = N->dd.lsn;
		stop_postgres(W, n, false, "switchover");
		N->ph = PH_SW_STOP;
		block_for(W, n, stop_time(W, false));
		return;
	case PH_SW_STOP:
		N->sw_until = local_now(N, W->t) + 5.0;
		N->ph = PH_SW_WAIT;
		/* fall through: first look at once */
		/* FALLTHROUGH */
	case PH_SW_WAIT: {
		const struct node *C = &W->nodes[N->sw_cand];

		if (api_reachable(W, n, N->sw_cand) && C->api.lsn > N->sw_ckpt) {
			struct req q;

			memset(&q, 0, sizeof(q));
			q.kind = RQ_RELEASE;
			N->ph = PH_SW_RELEASE;
			N->req = send_req(W, n, &q, W->req_timeout);
			return;
		}
		if (local_now(N, W->t) < N->sw_until) {
			block_for(W, n, 0.1);
			return;
		}
		tr(W, "%s: switchover aborted: %s did not catch up", N->name, C->name);
		if (W->quiet)
			N->sw_aborts_quiet++;
		/* clear_switchover with the revision the record step wrote (loop.c) */
		clear_switchover(W, n, ST_ACT);
		N->ph = PH_SW_ABORT;
		return;
	}
	case PH_SW_RELEASE:
		if (won) {
			W->res->st.switchovers++;
			tr(W, "%s: switchover: leader key released for %s", N->name, W->nodes[N->sw_cand].name);
		}
		break;
	case PH_FATAL_STOP:
		agent_exit(W, n, true);
		return;
	case PH_SHUT_STOP:
		if (is_leader(N)) {
			send_simple(W, n, RQ_RELEASE, PH_SHUT_RELEASE);
			return;
		}
		agent_exit(W, n, false);
		return;
	case PH_SHUT_RELEASE:
		agent_exit(W, n, false);
		return;
	default:
		break;
	}
	loop_publish(W, n);
}

static void loop_decide(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	double now = local_now(N, W->t);

	N->act = ha_decide(&N->view, &N->local, now);
	if ((int)N->act.kind != N->last_kind || strcmp(N->act.reason, N->last_reason) != 0)
		tr(W, "%s: %s: %s", N->name, ha_action_name(N->act.kind), N->act.reason);
	N->last_kind = (int)N->act.kind;
	set_str(N->last_reason, sizeof(N->last_reason), N->act.reason);
	execute(W, n);
}

static void loop_publish(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	struct sim_member_data md;

	set_fence(W, n);
	/* publish_api: what the REST API answers until the next loop */
	N->api.pg_running = N->local.pg_ready;
	N->api.primary = N->local.pg_primary;
	set_str(N->api.role, sizeof(N->api.role), member_role(N));
	set_str(N->api.state, sizeof(N->api.state), member_state(W, N));
	N->api.lsn = N->local.pg_lsn;
	N->api.tl = N->local.pg_timeline;
	if (!N->view.etcd_ok || N->local.lease_id == 0) {
		loop_sleep(W, n);
		return;
	}
	memset(&md, 0, sizeof(md));
	set_str(md.role, sizeof(md.role), member_role(N));
	set_str(md.state, sizeof(md.state), member_state(W, N));
	md.timeline = N->local.pg_ready ? N->local.pg_timeline : N->local.datadir_timeline;
	md.lsn = N->local.pg_ready ? N->local.pg_lsn : 0;
	md.nofailover = N->nofailover;
	if (N->member_pub_valid && memcmp(&md, &N->member_pub, sizeof(md)) == 0) {
		loop_sleep(W, n);
		return;
	}
	{
		struct req q;

		memset(&q, 0, sizeof(q));
		q.kind = RQ_PUT_MEMBER;
		q.lease = N->local.lease_id;
		q.md = md;
		N->member_pub = md;
		N->step = ST_PUBLISH;
		N->req = send_req(W, n, &q, W->req_timeout);
	}
}

static void loop_sleep(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	const struct ha_action *a = &N->act;
	bool busy = !(a->kind == HA_WAIT || a->kind == HA_LEAD || a->kind == HA_CLEAR_SWITCHOVER) || N->job_running ||
	            (N->pm != 0 && !N->local.pg_ready) || N->lm.promote_requested;
	double wait = busy ? 0.1 : W->p.loop_wait;
	double deadline = ha_lease_deadline(&N->view, &N->local);

	if (N->pm && (N->lm.pg_started_primary || N->local.pg_primary) && deadline > 0) {
		double left = deadline - local_now(N, W->t);
		double w = left > 0.01 ? left : 0.01;

		if (w < wait)
			wait = w;
	}
	if (N->wake_pending)
		wait = 0;
	N->wake_pending = false;
	N->step = ST_IDLE;
	push(W, global_at(N, local_now(N, W->t) + wait), EV_TICK, n, N->agent_inc, ++N->tick_gen);
}

/* An answer (r) or a timeout (r NULL) for the request the loop waits for. */
static void loop_answer(struct world *W, int n, const struct req *r)
{
	struct node *N = &W->nodes[n];

	N->req = 0;
	switch (N->step) {
	case ST_GRANT:
		grant_done(W, n, r);
		break;
	case ST_READ:
		read_done(W, n, r);
		break;
	case ST_LOCAL_SW:
		N->local.promote_requested = N->lm.promote_requested;
		loop_poll(W, n);
		break;
	case ST_ACT:
		act_continue(W, n, r);
		break;
	case ST_PUBLISH:
		if (r && !r->refused && !r->err)
			N->member_pub_valid = true;
		loop_sleep(W, n);
		break;
	case ST_EXIT:
		N->agent_alive = false;
		tr(W, "%s: agent exited", N->name);
		break;
	default:
		break;
	}
}

static void loop_resume(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (N->step == ST_POLL)
		loop_decide(W, n);
	else if (N->step == ST_ACT)
		act_continue(W, n, NULL);
}

/* ---- agent lifecycle ------------------------------------------------------------------ */

static void agent_start(struct world *W, int n)
{
	struct node *N = &W->nodes[n];
	uint32_t inc = N->agent_inc + 1;

	/* a fresh process: nothing of the last one's memory survives */
	N->agent_inc = inc;
	N->agent_alive = true;
	N->shutdown_requested = false;
	N->k_lease = 0;
	N->k_sent = 0;
	N->k_req = 0;
	N->f_armed = false;
	N->f_gen++;
	N->step = ST_IDLE;
	N->ph = PH_NONE;
	N->wake_pending = false;
	N->req = 0;
	memset(&N->view, 0, sizeof(N->view));
	memset(&N->local, 0, sizeof(N->local));
	memset(&N->act, 0, sizeof(N->act));
	N->last_kind = -1;
	N->last_reason[0] = '\0';
	N->leader_mod_rev = N->sw_mod_rev = 0;
	N->leader_absent_since = 0;
	N->pm = 0;
	memset(&N->lm, 0, sizeof(N->lm));
	N->job_leader[0] = '\0';
	N->member_pub_valid = N->status_pub_valid = false;
	memset(&N->api, 0, sizeof(N->api));
	tr(W, "%s: agent starts", N->name);
	push(W, W->t + 0.05, EV_TICK, n, inc, ++N->tick_gen);
	push(W, W->t + 0.05, EV_KEEPER, n, inc, ++N->k_gen);
}

/* The agent process dies: its postmaster with it (PDEATHSIG), its job too. */
static void agent_kill(struct world *W, int n, const char *why)
{
	struct node *N = &W->nodes[n];

	if (!N->agent_alive)
		return;
	N->agent_alive = false;
	N->f_armed = false;
	N->f_gen++;
	tr(W, "%s: agent dies (%s)", N->name, why);
	pg_exit(W, n, false, "PDEATHSIG");
	if (N->job_running && !N->job_done) {
		/* a killed initdb or pg_basebackup leaves a broken directory; a
		 * killed pg_rewind is taken to have changed nothing yet */
		if (N->job_kind != HA_JOB_REWIND)
			N->dd.state = DD_INVALID;
		N->job_inc++;
	}
	N->job_running = false;
}

/* loop_free: the agent exits on its own (SHUTDOWN or FATAL). */
static void agent_exit(struct world *W, int n, bool fatal)
{
	struct node *N = &W->nodes[n];
	int64_t lease = N->k_lease;

	N->fatal = fatal;
	N->k_lease = 0; /* keeper stopped */
	N->k_gen++;
	if (lease != 0) {
		struct req q;

		memset(&q, 0, sizeof(q));
		q.kind = RQ_REVOKE;
		q.lease = lease;
		N->step = ST_EXIT;
		N->req = send_req(W, n, &q, W->req_timeout);
		return;
	}
	N->agent_alive = false;
	tr(W, "%s: agent exited", N->name);
}

/* ---- faults ------------------------------------------------------------------------------- */

static void node_crash(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	agent_kill(W, n, "node crash");
	pg_exit(W, n, false, "node crash");
	N->up = false;
}

static void restart_node(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (!N->up) {
		N->up = true;
		tr(W, "%s: node boots", N->name);
	}
	if (!N->agent_alive)
		agent_start(W, n);
}

static const char *const fault_names[] = {
	"node crash",  "agent crash",     "postmaster crash", "agent freeze",
	"node freeze", "etcd partition",  "peer partition",   "slow etcd answers",
	"switchover",  "wall clock step", "agent shutdown",
};

static void fault(struct world *W)
{
	static const double weight[] = { 1.0, 1.5, 1.0, 2.0, 1.0, 2.0, 1.0, 1.5, 1.0, 0.3, 0.5 };
	struct sim_rng *R = &W->rng;
	double ttl = W->p.ttl, sum = 0, x;
	int kind = 0, n = sim_rng_int(R, W->p.n_nodes);
	struct node *N = &W->nodes[n];

	for (size_t i = 0; i < sizeof(weight) / sizeof(weight[0]); i++)
		sum += weight[i];
	x = sim_rng_unit(R) * sum;
	while (x >= weight[kind] && kind < (int)(sizeof(weight) / sizeof(weight[0])) - 1)
		x -= weight[kind++];
	/* Most faults hit the primary: that is where the safety rules matter. */
	if (sim_rng_chance(R, 0.6) && W->etcd.k.leader.present)
		N = &W->nodes[n = W->etcd.k.leader_node];
	W->res->st.faults++;

	switch (kind) {
	case 0: {
		double d = sim_rng_range(R, 0.5, 4 * ttl);

		if (!N->up)
			return;
		tr(W, "FAULT %s on %s for %.2fs", fault_names[kind], N->name, d);
		node_crash(W, n);
		push(W, W->t + d, EV_RESTART, n, 0, 1);
		break;
	}
	case 1: {
		double d = sim_rng_range(R, 0.1, 2 * ttl);

		if (!N->up || !N->agent_alive)
			return;
		tr(W, "FAULT %s on %s, restart in %.2fs", fault_names[kind], N->name, d);
		agent_kill(W, n, "killed");
		push(W, W->t + d, EV_RESTART, n, 0, 0);
		break;
	}
	case 2:
		if (!N->up || !pg_running(N) || node_frozen(W, N))
			return;
		tr(W, "FAULT %s on %s", fault_names[kind], N->name);
		pg_exit(W, n, false, "crash");
		break;
	case 3:
	case 4: {
		double d = sim_rng_chance(R, 0.5) ? sim_rng_range(R, 0.1, ttl) : sim_rng_range(R, ttl, 3 * ttl);
		double *until = kind == 3 ? &N->afz_until : &N->nfz_until;

		if (!N->up)
			return;
		tr(W, "FAULT %s on %s for %.2fs", fault_names[kind], N->name, d);
		if (*until < W->t + d)
			*until = W->t + d;
		break;
	}
	case 5: {
		double d = sim_rng_range(R, 0.3, 3 * ttl);

		N->epart_reject = sim_rng_chance(R, 0.3);
		tr(W, "FAULT %s (%s) on %s for %.2fs", fault_names[kind], N->epart_reject ? "refused" : "dropped",
		   N->name, d);
		if (N->epart_until < W->t + d)
			N->epart_until = W->t + d;
		break;
	}
	case 6: {
		double d = sim_rng_range(R, 0.3, 3 * ttl);

		tr(W, "FAULT %s on %s for %.2fs", fault_names[kind], N->name, d);
		if (N->ppart_until < W->t + d)
			N->ppart_until = W->t + d;
		break;
	}
	case 7: {
		double d = sim_rng_range(R, 1, 3 * ttl);

		N->delay_max = sim_rng_range(R, 0.2, 2.5 * W->req_timeout);
		tr(W, "FAULT %s on %s for %.2fs, up to %.2fs late", fault_names[kind], N->name, d, N->delay_max);
		if (N->delay_until < W->t + d)
			N->delay_until = W->t + d;
		break;
	}
	case 8: {
		struct sim_keys *K = &W->etcd.k;
		int to = sim_rng_chance(R, 0.7) ? sim_rng_int(R, W->p.n_nodes) : SIM_NONE;

		if (!K->init.present || K->init.lease != 0 || W->t > W->p.fault_time - 20)
			return;
		if (K->leader.present) {
			K->sw_from = sim_rng_chance(R, 0.5) ? K->leader_node : SIM_NONE;
			K->sw_failover = sim_rng_chance(R, 0.2);
		} else {
			if (to == SIM_NONE)
				return;
			K->sw_from = SIM_NONE;
			K->sw_failover = true;
		}
		K->sw_to = to;
		K->sw_at = sim_rng_chance(R, 0.25) ? WALL_BASE + W->t + sim_rng_range(R, 1, 10) : 0;
		sim_etcd_put(&W->etcd, &K->sw, 0);
		tr(W, "OPERATOR %s from %s to %s%s", K->sw_failover ? "failover" : "switchover",
		   K->sw_from >= 0 ? W->nodes[K->sw_from].name : "(leader)", to >= 0 ? W->nodes[to].name : "(best)",
		   K->sw_at > 0 ? " (scheduled)" : "");
		break;
	}
	case 9:
		N->wall_off = sim_rng_range(R, -5, 5);
		tr(W, "FAULT %s on %s: wall clock now %+.1fs off", fault_names[kind], N->name, N->wall_off);
		break;
	case 10: {
		double d = sim_rng_range(R, 0.5, 2 * ttl);

		if (!N->up || !N->agent_alive || N->shutdown_requested)
			return;
		tr(W, "OPERATOR stops the agent on %s, start again in %.2fs", N->name, d);
		N->shutdown_requested = true;
		wake(W, n);
		push(W, W->t + d, EV_RESTART, n, 0, 0);
		break;
	}
	}
}

static void quiet(struct world *W)
{
	W->quiet = true;
	tr(W, "QUIET: faults stop; healing everything");
	for (int i = 0; i < W->p.n_nodes; i++) {
		struct node *N = &W->nodes[i];

		/* freezes run out on their own (at most 3 x ttl): events wait for them */
		N->epart_until = N->ppart_until = N->delay_until = 0;
		N->wall_off = 0;
		if (N->fatal && N->dd.state != DD_EMPTY) {
			/* the operator reads the FATAL message and wipes the data directory */
			tr(W, "OPERATOR wipes the data directory of %s after its fatal error", N->name);
			memset(&N->dd, 0, sizeof(N->dd));
			N->dd.state = DD_EMPTY;
		}
		N->fatal = false;
		if (!N->up || !N->agent_alive)
			push(W, W->t, EV_RESTART, i, 0, 1);
	}
}

/* ---- the invariant ------------------------------------------------------------------------- */

static void violation(struct world *W, int n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first violation and ends the run. n: the node whose Postgres
 * broke a rule (SIM_NONE when it is not one node's doing). */
static void violation(struct world *W, int n, const char *fmt, ...)
{
	va_list ap;

	if (!W->res->ok)
		return;
	W->res->ok = false;
	W->res->t = W->t;
	/* KNOWN BUG (reported, not fixed here: agent/ha.c is not ours): HA_BOOTSTRAP
	 * starts Postgres as primary without the lease checks START_PRIMARY has. */
	if (n >= 0 && W->nodes[n].pg_by_bootstrap)
		W->res->known_bug = SIM_KNOWN_BOOTSTRAP;
	va_start(ap, fmt);
	vsnprintf(W->res->what, sizeof(W->res->what), fmt, ap);
	va_end(ap);
	W->done = true;
}

static void check_invariant(struct world *W)
{
	int writers = 0, first = SIM_NONE, second = SIM_NONE;

	for (int i = 0; i < W->p.n_nodes; i++) {
		struct node *N = &W->nodes[i];
		const struct sim_keys *K = &W->etcd.k;
		double d;

		if (!pg_writable(W, N))
			continue;
		d = deadline_of(W, N);
		if (writers++ == 0)
			first = i;
		else
			second = i;
		if (W->p.only_two_writers)
			continue;
		if (d <= 0)
			violation(W, i, "%s is writable without a lease", N->name);
		else if (local_now(N, W->t) > d)
			violation(W, i, "%s is writable %.3fs past its lease deadline", N->name,
			          local_now(N, W->t) - d);
		if (!sim_etcd_lease_alive(&W->etcd, N->k_lease, W->t))
			violation(W, i, "%s is writable but its lease %llx has expired in etcd", N->name,
			          (unsigned long long)N->k_lease);
		/* The key may sit on an older lease of ours for a loop (a restarted
		 * agent moves it to its new lease); the etcd lease check above and
		 * this one together catch the case where that old lease runs out. */
		if (!K->leader.present || K->leader_node != i)
			violation(W, i, "%s is writable but the leader key is %s", N->name,
			          !K->leader.present ? "absent" : "another member's");
	}
	if (W->quiet && W->res->st.recovery < 0 && writers == 1 && W->nodes[first].pg == PG_PRIMARY &&
	    W->etcd.k.leader.present && W->etcd.k.leader_node == first)
		W->res->st.recovery = W->t - W->p.fault_time;
	if (writers > 1)
		violation(W, SIM_NONE, "two writable primaries: %s and %s", W->nodes[first].name,
		          W->nodes[second].name);
	if (writers > 0) {
		W->seen_writable = true;
		W->last_writable = W->t;
	} else if (W->seen_writable && W->t - W->last_writable > W->res->st.max_no_primary) {
		W->res->st.max_no_primary = W->t - W->last_writable;
	}
	if (W->etcd.k.leader.present && W->etcd.k.leader_node != W->last_leader) {
		if (W->last_leader != SIM_NONE)
			W->res->st.leader_changes++;
		W->last_leader = W->etcd.k.leader_node;
	}
}

/* Can the cluster elect a primary on its own? It cannot when the only data
 * left is on members tagged nofailover (or nowhere, once initialized): an
 * operator has to step in, which is right. */
static bool recoverable(const struct world *W)
{
	const struct sim_keys *K = &W->etcd.k;

	if (!K->init.present)
		return true; /* anyone may bootstrap */
	for (int i = 0; i < W->p.n_nodes; i++) {
		const struct node *N = &W->nodes[i];

		/* Rule 5: within maximum_lag_on_failover of the last leader position
		 * (the status key); a member further behind may never take over,
		 * and with no other the cluster waits by design (a nofailover
		 * member alone ahead, say). */
		if (!N->nofailover && N->dd.state == DD_VALID && (K->init.lease != 0 || N->dd.sysid == K->init_sysid) &&
		    (!K->status.present || K->status_lsn <= N->dd.lsn ||
		     K->status_lsn - N->dd.lsn <= (uint64_t)W->max_lag))
			return true;
	}
	return false;
}

static void check_liveness(struct world *W)
{
	int primaries = 0, who = SIM_NONE;
	const struct sim_keys *K = &W->etcd.k;

	if (!recoverable(W)) {
		W->res->unrecoverable = true;
		return;
	}

	for (int i = 0; i < W->p.n_nodes; i++) {
		if (pg_writable(W, &W->nodes[i])) {
			primaries++;
			who = i;
		}
	}
	if (primaries != 1) {
		violation(W, SIM_NONE, "liveness: %d writable primaries %.0fs after the faults stopped", primaries,
		          W->t - W->p.fault_time);
	} else if (W->nodes[who].pg != PG_PRIMARY) {
		violation(W, SIM_NONE, "liveness: %s is still %s %.0fs after the faults stopped", W->nodes[who].name,
		          pg_st_names[W->nodes[who].pg], W->t - W->p.fault_time);
	} else if (!K->leader.present || K->leader_node != who) {
		violation(W, SIM_NONE, "liveness: the primary %s does not hold the leader key", W->nodes[who].name);
	}
	if (!W->res->ok) {
		W->res->liveness_failed = true;
		/* KNOWN BUG (agent/loop.c, not ours): an aborted switchover never
		 * clears its key, so the leader retries it every loop. */
		for (int i = 0; i < W->p.n_nodes; i++)
			if (W->nodes[i].sw_aborts_quiet >= 2 && K->sw.present)
				W->res->known_bug = SIM_KNOWN_SWITCHOVER_LOOP;
	}
}

/* ---- Postgres activity ------------------------------------------------------------------------ */

static void pg_tick(struct world *W)
{
	for (int i = 0; i < W->p.n_nodes; i++) {
		struct node *N = &W->nodes[i];

		if (!N->up || node_frozen(W, N))
			continue;
		if (N->pg == PG_PRIMARY) {
			N->dd.lsn += (uint64_t)(N->wal_rate * PG_TICK);
		} else if (N->pg == PG_REPLICA) {
			int u = N->pg_upstream;
			const struct node *U = u >= 0 ? &W->nodes[u] : NULL;
			bool ok = U && u != i && U->up && !node_frozen(W, U) &&
			          (U->pg == PG_PRIMARY || U->pg == PG_REPLICA || U->pg == PG_PROMOTING) &&
			          !peers_cut(W, N, U) && hist_can_follow(&N->dd, &U->dd);

			N->pg_streaming = ok;
			if (ok) {
				if (U->dd.h.n > N->dd.h.n)
					N->dd.h = U->dd.h;
				if (N->dd.lsn < U->lsn_prev)
					N->dd.lsn = U->lsn_prev < U->dd.lsn ? U->lsn_prev : U->dd.lsn;
			}
		}
	}
	for (int i = 0; i < W->p.n_nodes; i++)
		W->nodes[i].lsn_prev = W->nodes[i].dd.lsn;
}

static void pg_ready(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (N->pg != PG_STARTING)
		return;
	if (N->pg_started_primary) {
		/* A start as primary writes on from where this data directory
		 * ends: a new branch of its history, whatever others have. */
		N->pg = PG_PRIMARY;
		hist_push(W, &N->dd, hist_tl(&N->dd), N->dd.lsn);
		N->dd.lsn += 1;
	} else {
		N->pg = PG_REPLICA;
	}
	tr(W, "%s: postgres up as %s (timeline %u, lsn %llu)", N->name, pg_st_names[N->pg], hist_tl(&N->dd),
	   (unsigned long long)N->dd.lsn);
	wake(W, n);
}

static void pg_promoted(struct world *W, int n)
{
	struct node *N = &W->nodes[n];

	if (N->pg != PG_PROMOTING)
		return;
	hist_push(W, &N->dd, hist_tl(&N->dd) + 1, N->dd.lsn);
	N->dd.lsn += 1;
	N->pg = PG_PRIMARY;
	tr(W, "%s: postgres is primary on timeline %u", N->name, hist_tl(&N->dd));
}

/* ---- the run ------------------------------------------------------------------------------------ */

void sim_params_from_seed(uint64_t seed, struct sim_params *p)
{
	struct sim_rng r = { .s = seed * 0x2545F4914F6CDD1Dull + 7 };

	memset(p, 0, sizeof(*p));
	p->seed = seed;
	if (seed % 2) {
		p->ttl = 5;
		p->loop_wait = 1;
		p->retry_timeout = 2;
	} else {
		p->ttl = 3;
		p->loop_wait = 1;
		p->retry_timeout = 1;
	}
	p->n_nodes = 3 + sim_rng_int(&r, 3);
	p->fault_time = sim_rng_range(&r, 60, 150);
	p->fault_gap = sim_rng_range(&r, 0.5, 4);
	p->loss = sim_rng_chance(&r, 0.5) ? sim_rng_range(&r, 0, 0.08) : 0;
	p->lat_lo = 0.0005;
	p->lat_hi = sim_rng_range(&r, 0.002, 0.05);
	p->fresh = sim_rng_chance(&r, 0.3);
	p->nofailover_node = sim_rng_chance(&r, 0.2) ? sim_rng_int(&r, p->n_nodes) : SIM_NONE;
}

static void world_init(struct world *W, const struct sim_params *p, struct sim_result *r, FILE *out)
{
	struct sim_rng *R;

	memset(W, 0, sizeof(*W));
	W->p = *p;
	W->rng.s = p->seed;
	W->res = r;
	W->out = out;
	W->reqs = calloc(REQ_RING, sizeof(*W->reqs));
	if (!W->reqs)
		abort();
	R = &W->rng;
	sim_etcd_init(&W->etcd);
	W->max_lag = sim_rng_chance(R, 0.5) ? 1048576 : 3000;
	W->req_timeout = fmax(0.5, fmin(p->retry_timeout, p->ttl / 4));
	W->margin = ha_lease_margin(p->ttl);
	W->last_leader = SIM_NONE;
	for (int i = 0; i < p->n_nodes; i++) {
		struct node *N = &W->nodes[i];

		snprintf(N->name, sizeof(N->name), "node%d", i + 1);
		N->idx = i;
		N->nofailover = i == p->nofailover_node;
		N->remove_data = sim_rng_chance(R, 0.5);
		N->clock_off = sim_rng_range(R, 100, 100000);
		N->clock_rate = 1.0 + sim_rng_range(R, -5e-4, 5e-4);
		N->wal_rate = sim_rng_range(R, 200, 2000);
		N->up = true;
		N->pg_upstream = SIM_NONE;
		N->k_interval = fmin(p->loop_wait, p->ttl / 4);
		N->sw_cand = SIM_NONE;
	}
}

/* The cluster at time 0: either bootstrapped (the initialize key holds the
 * system identifier, every data directory is a copy at LSN 0, everything is
 * stopped) or brand new (nothing in etcd, empty data directories). */
static void initial_state(struct world *W)
{
	struct sim_keys *K = &W->etcd.k;

	if (!W->p.fresh) {
		struct datadir d;

		memset(&d, 0, sizeof(d));
		d.state = DD_VALID;
		d.sysid = sim_rng_next(&W->rng) | 1;
		hist_push(W, &d, 1, 0);
		sim_etcd_put(&W->etcd, &K->init, 0);
		K->init_sysid = d.sysid;
		for (int i = 0; i < W->p.n_nodes; i++)
			W->nodes[i].dd = d;
	}
	for (int i = 0; i < W->p.n_nodes; i++)
		push(W, sim_rng_range(&W->rng, 0, 1), EV_RESTART, i, 0, 1);
	push(W, PG_TICK, EV_PG_TICK, SIM_NONE, 0, 0);
	push(W, W->p.fault_gap, EV_FAULT, SIM_NONE, 0, 0);
	push(W, W->p.fault_time, EV_QUIET, SIM_NONE, 0, 0);
	push(W, W->p.fault_time + 10 * W->p.ttl, EV_END, SIM_NONE, 0, 0);
}

/* Is an event for node n's agent still meant for the running agent? */
static bool agent_event_ok(const struct world *W, const struct ev *e)
{
	const struct node *N = &W->nodes[e->node];

	return N->up && N->agent_alive && e->inc == N->agent_inc;
}

/* Events of a frozen agent (or node) wait until it thaws. */
static bool defer_if_frozen(struct world *W, const struct ev *e, bool whole_node_only)
{
	const struct node *N = &W->nodes[e->node];
	double thaw = N->nfz_until;

	if (!whole_node_only && N->afz_until > thaw)
		thaw = N->afz_until;
	if (thaw <= W->t)
		return false;
	push(W, thaw, e->kind, e->node, e->inc, e->arg);
	return true;
}

static void deliver(struct world *W, int n, uint64_t id, const struct req *r)
{
	struct node *N = &W->nodes[n];

	if (N->k_req == id)
		keeper_done(W, n, r);
	else if (N->req == id)
		loop_answer(W, n, r);
}

static void dispatch(struct world *W, const struct ev *e)
{
	struct node *N = e->node >= 0 ? &W->nodes[e->node] : NULL;
	struct req *r;

	switch (e->kind) {
	case EV_TICK:
		if (!agent_event_ok(W, e) || defer_if_frozen(W, e, false))
			break;
		if (e->arg == N->tick_gen && N->step == ST_IDLE)
			loop_begin(W, e->node);
		break;
	case EV_RESUME:
		if (!agent_event_ok(W, e) || defer_if_frozen(W, e, false))
			break;
		if (e->arg == N->resume_gen)
			loop_resume(W, e->node);
		break;
	case EV_ARRIVE:
		r = req_get(W, e->arg);
		if (!r || etcd_cut(W, N))
			break;
		etcd_apply(W, r);
		if (sim_rng_chance(&W->rng, loss(W)))
			break;
		push(W, W->t + latency(W) + (N->delay_until > W->t ? sim_rng_range(&W->rng, 0, N->delay_max) : 0),
		     EV_ANSWER, e->node, e->inc, e->arg);
		break;
	case EV_ANSWER:
		r = req_get(W, e->arg);
		if (!agent_event_ok(W, e) || !r || (etcd_cut(W, N) && !r->refused))
			break;
		if (defer_if_frozen(W, e, false))
			break;
		deliver(W, e->node, e->arg, r);
		break;
	case EV_TIMEOUT:
		if (!agent_event_ok(W, e) || defer_if_frozen(W, e, false))
			break;
		deliver(W, e->node, e->arg, NULL);
		break;
	case EV_KEEPER:
		if (!agent_event_ok(W, e) || defer_if_frozen(W, e, false))
			break;
		if (e->arg == N->k_gen && N->k_req == 0)
			keeper_send(W, e->node);
		break;
	case EV_FENCE:
		if (!N->up || defer_if_frozen(W, e, true))
			break;
		fence_fire(W, e->node, e->arg);
		break;
	case EV_SWEEP:
		etcd_sweep(W);
		break;
	case EV_PG_TICK:
		pg_tick(W);
		push(W, W->t + PG_TICK, EV_PG_TICK, SIM_NONE, 0, 0);
		break;
	case EV_PG_READY:
	case EV_PG_PROMOTED:
		if (!N->up || e->inc != N->pg_inc || defer_if_frozen(W, e, true))
			break;
		if (e->kind == EV_PG_READY)
			pg_ready(W, e->node);
		else
			pg_promoted(W, e->node);
		break;
	case EV_JOB_DONE:
		if (!N->up || e->inc != N->job_inc || !N->job_running || defer_if_frozen(W, e, true))
			break;
		job_done(W, e->node);
		break;
	case EV_WATCH:
		if (!agent_event_ok(W, e) || defer_if_frozen(W, e, false))
			break;
		wake(W, e->node);
		break;
	case EV_FAULT:
		if (W->quiet)
			break;
		fault(W);
		push(W, W->t - log(1 - sim_rng_unit(&W->rng)) * W->p.fault_gap, EV_FAULT, SIM_NONE, 0, 0);
		break;
	case EV_RESTART:
		if (e->arg == 1)
			restart_node(W, e->node);
		else if (N->up && !N->agent_alive && !N->fatal)
			agent_start(W, e->node);
		else if (N->up && N->agent_alive && N->shutdown_requested)
			push(W, W->t + 1, EV_RESTART, e->node, 0, 0); /* still stopping (frozen?): start it when gone */
		break;
	case EV_QUIET:
		quiet(W);
		break;
	case EV_END:
		check_liveness(W);
		W->done = true;
		break;
	}
}

static void report(const struct world *W, FILE *out)
{
	const struct sim_params *p = &W->p;
	int first = W->trace_n > TRACE_LINES ? W->trace_n - TRACE_LINES : 0;

	fprintf(out, "\nSIMULATION FAILED, seed %llu: %s (t = %.3f s)%s\n", (unsigned long long)p->seed, W->res->what,
	        W->t,
	        W->res->known_bug == SIM_KNOWN_BOOTSTRAP
	                ? "\n  KNOWN BUG: Postgres started as primary by HA_BOOTSTRAP, which skips the lease checks of "
	                  "START_PRIMARY (see check_sim.c)"
	        : W->res->known_bug == SIM_KNOWN_SWITCHOVER_LOOP
	                ? "\n  KNOWN BUG: an aborted switchover never clears its key (clear_switchover compares the "
	                  "revision from before record_switchover_target), so it repeats for ever (see check_sim.c)"
	                : "");
	fprintf(out,
	        "  parameters: %d nodes, ttl %.0f, loop_wait %.0f, retry_timeout %.0f; faults for %.0f s every %.2f s "
	        "on average; loss %.3f; latency %.4f-%.4f s; %s; nofailover %s; maximum_lag_on_failover %lld%s\n",
	        p->n_nodes, p->ttl, p->loop_wait, p->retry_timeout, p->fault_time, p->fault_gap, p->loss, p->lat_lo,
	        p->lat_hi, p->fresh ? "fresh cluster" : "bootstrapped cluster",
	        p->nofailover_node >= 0 ? W->nodes[p->nofailover_node].name : "none", (long long)W->max_lag,
	        p->broken ? "; BROKEN variant (no fence, DEMOTE ignored)" : "");
	fprintf(out, "  replay: BATON_SIM_SEED=%llu%s BATON_SIM_VERBOSE=1 ./tests/check_sim\n",
	        (unsigned long long)p->seed, p->broken ? " BATON_SIM_BROKEN=1" : "");
	fprintf(out, "  last %d events:\n", W->trace_n - first);
	for (int i = first; i < W->trace_n; i++)
		fprintf(out, "  %s\n", W->trace[i % TRACE_LINES]);
	for (int i = 0; i < p->n_nodes; i++) {
		const struct node *N = &W->nodes[i];

		fprintf(out,
		        "  %s: %s, agent %s%s, postgres %s (timeline %u, lsn %llu), lease %llx, deadline in %.3f s, "
		        "last action %s\n",
		        N->name, N->up ? "up" : "DOWN", N->agent_alive ? "alive" : "dead",
		        agent_frozen(W, N) ? " (frozen)" : "", pg_st_names[N->pg], hist_tl(&N->dd),
		        (unsigned long long)N->dd.lsn, (unsigned long long)N->k_lease,
		        deadline_of(W, N) > 0 ? deadline_of(W, N) - local_now(N, W->t) : -1.0,
		        N->last_kind >= 0 ? ha_action_name((enum ha_action_kind)N->last_kind) : "-");
	}
	fprintf(out, "  etcd: leader key %s%s\n",
	        W->etcd.k.leader.present ? W->nodes[W->etcd.k.leader_node].name : "absent",
	        W->etcd.k.sw.present ? ", switchover key present" : "");
}

bool sim_run(const struct sim_params *p, struct sim_result *r, FILE *out)
{
	struct world *W = malloc(sizeof(*W));
	uint64_t h = 1469598103934665603ull;

	if (!W)
		abort();
	memset(r, 0, sizeof(*r));
	r->ok = true;
	r->st.recovery = -1;
	world_init(W, p, r, out);
	initial_state(W);
	while (!W->done && W->n_ev > 0) {
		struct ev e = pop(W);
		uint64_t bits;

		W->t = e.t;
		memcpy(&bits, &e.t, sizeof(bits));
		h = (h ^ bits ^ ((uint64_t)e.kind << 56) ^ ((uint64_t)(e.node + 1) << 48)) * 1099511628211ull;
		if (++r->st.events > MAX_EVENTS) {
			violation(W, SIM_NONE, "model error: more than %d events", MAX_EVENTS);
			break;
		}
		dispatch(W, &e);
		if (!W->done)
			check_invariant(W);
		if (W->hist_full)
			W->done = true; /* histories too long to follow further: end early, nothing is violated */
	}
	r->digest = h;
	if (!r->ok && out)
		report(W, out);
	free(W->heap);
	free(W->reqs);
	free(W);
	return r->ok;
}
