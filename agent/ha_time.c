/*
 * ha_time.c - the decision core's clocks (see ha.h): when a lease runs out
 * (ha_deadline, the one formula the loop, the keeper and the fence share),
 * how long a replica may lag behind a timeline switch or stall its replay,
 * and how long to back off after a failed start or job. Pure like ha.c:
 * every time comes from the caller's monotonic clock.
 */
#include "agent/ha.h"
#include "agent/ha_internal.h"

#include <stdio.h>

double ha_lease_margin(double ttl)
{
	/* A quarter of the TTL, at most one second: enough for an immediate
	 * shutdown (milliseconds) and for scheduling noise, while a leader
	 * still survives two or three lost keepalives. */
	double m = ttl * 0.25;
	return m > 1.0 ? 1.0 : m;
}

/*
 * Failsafe semantics (the keeper used to count a confirmed round whether or
 * not etcd answered again, ha_lease_deadline only while it did not): rule 2
 * counts from the last renewal *sent*, whatever etcd says later. A failsafe
 * round stands in for a renewal only while etcd cannot be asked: each member
 * that confirmed us promised not to take the key for a ttl. Once etcd
 * answers, its lease is the truth again (it may have expired there, and the
 * key with it), so the deadline is the lease's: never later than with the
 * round counted, so the safe one. The callers pass failsafe_at only while
 * failsafe_mode is on and etcd is unreachable: ha_lease_deadline from the
 * cluster view, the keeper until a keepalive gets an answer.
 */
double ha_deadline(int64_t lease_id, double lease_sent, double ttl, double failsafe_at)
{
	double base = lease_id != 0 && lease_sent > 0 ? lease_sent : 0;

	if (failsafe_at > base)
		base = failsafe_at;
	return base > 0 ? base + ttl - ha_lease_margin(ttl) : 0;
}

double ha_keepalive_interval(double ttl, double loop_wait, double retry_timeout, double watchdog_margin)
{
	double base = loop_wait < ttl / 4 ? loop_wait : ttl / 4;
	/* The leader's budget minus the etcd stall it must ride out: as long
	 * as retry_timeout promises, and at least 1 s (etcd's disk stalls
	 * for that long on a busy machine; at ttl 2 this keeps the old
	 * 0.5 s cadence, which rode out 10 minutes of saturating load). */
	double ride_out = retry_timeout > 1.0 ? retry_timeout : 1.0;
	double relaxed = ttl - ha_lease_margin(ttl) - ride_out;

	if (watchdog_margin >= 0 && (ttl - watchdog_margin - 1) / 2 < relaxed)
		relaxed = (ttl - watchdog_margin - 1) / 2;
	return relaxed > base ? relaxed : base;
}

double ha_lease_deadline(const struct ha_cluster_view *c, const struct ha_local_view *l)
{
	return ha_deadline(l->lease_id, l->lease_sent, c->ttl,
	                   c->failsafe_mode && !c->etcd_ok ? l->failsafe_confirmed_at : 0);
}

double ha_diverged_after(const struct ha_cluster_view *c)
{
	/* Longer than a replica needs to reconnect after a timeline switch
	 * (wal_retrieve_retry_interval is 5 s by default); a needless
	 * rewind costs a restart and "no rewind required", nothing more. */
	double t = 3 * c->loop_wait;
	return t < 6.0 ? 6.0 : t;
}

double ha_rewind_source_bound(const struct ha_cluster_view *c)
{
	/* Long enough for the source to replay its upstream's first checkpoint
	 * after a promotion (Postgres requests it at once, spread over
	 * checkpoint_completion_target unless the promoting agent forces it). */
	double t = 10 * c->loop_wait;
	return t < 60.0 ? 60.0 : t;
}

enum ha_rewind_source ha_rewind_source_check(const char *source, uint32_t ckpt_tl, uint32_t source_tl,
                                             uint32_t known_tl, bool checkpoint_asked, double waited, double bound,
                                             char *why, size_t len)
{
	const uint32_t tl = known_tl > source_tl ? known_tl : source_tl;
	char dummy[8];

	if (!why) {
		why = dummy;
		len = sizeof(dummy);
	}
	why[0] = '\0';
	if (ckpt_tl == 0 || tl == 0 || ckpt_tl >= tl) {
		snprintf(why, len, "source %s has checkpointed on its timeline %u", source, ckpt_tl);
		return HA_REWIND_SOURCE_READY;
	}
	if (!checkpoint_asked) {
		snprintf(why, len,
		         "source %s has not checkpointed on timeline %u yet (its pg_control is on timeline %u, and "
		         "pg_rewind would take that for its timeline): asking it to CHECKPOINT before the rewind",
		         source, tl, ckpt_tl);
		return HA_REWIND_SOURCE_CHECKPOINT;
	}
	if (waited >= bound) {
		snprintf(why, len,
		         "source %s has not checkpointed on timeline %u for %.0fs (its pg_control is still on "
		         "timeline %u): this rewind attempt failed",
		         source, tl, waited, ckpt_tl);
		return HA_REWIND_SOURCE_GIVE_UP;
	}
	snprintf(why, len,
	         "source %s has not checkpointed on timeline %u yet, even after a CHECKPOINT (its pg_control is "
	         "still on timeline %u: a standby restart-points there only after it replayed a checkpoint record of "
	         "that timeline): not rewinding yet, asking again (waited %.0fs of %.0fs)",
	         source, tl, ckpt_tl, waited, bound);
	return HA_REWIND_SOURCE_WAIT;
}

double ha_replay_bound(const struct ha_cluster_view *c)
{
	double t = 2 * c->loop_wait;
	return t < 5.0 ? 5.0 : t;
}

double ha_start_backoff(enum ha_start_failure why, int failures)
{
	double t = 3.0;

	if (failures <= 0 || (failures == 1 && why == HA_START_FAIL_PARAMS))
		return 0;
	for (int i = 1; i < failures && t < 60.0; i++)
		t *= 2;
	return t > 60.0 ? 60.0 : t;
}

double ha_job_backoff(enum ha_job kind)
{
	return kind == HA_JOB_NONE ? 0 : 3.0;
}

/* Still inside the backoff after a failed `kind` job: seconds left, else 0. */
double ha_job_backoff_left(const struct ha_local_view *l, enum ha_job kind, double factor, double now)
{
	double left;

	if (l->job_failed_at <= 0)
		return 0;
	left = ha_job_backoff(kind) * factor - (now - l->job_failed_at);
	return left > 0 ? left : 0;
}

/* pg_rewind failed and is to be tried again (rewind_failures < 3), not yet. */
double ha_rewind_backoff_left(const struct ha_local_view *l, double now)
{
	return l->rewind_failures > 0 ? ha_job_backoff_left(l, HA_JOB_REWIND, 1, now) : 0;
}
