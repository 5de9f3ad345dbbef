/*
 * ha_internal.h - what the files of the decision core (ha.c, ha_rank.c,
 * ha_state.c, ha_time.c) call in one another, and nothing else includes.
 * ha.h stays the public interface. Like the core itself, no etcd/, pg/ or
 * curl header.
 */
#ifndef BATON_HA_INTERNAL_H
#define BATON_HA_INTERNAL_H

#include "agent/ha.h"

/* An action of `kind` (leader may be NULL) with a printf-formatted reason. */
__attribute__((format(printf, 3, 4))) struct ha_action ha_act(enum ha_action_kind kind, const char *leader,
                                                              const char *fmt, ...);

/* The position a replica's health and lag count from: what it replayed. */
uint64_t ha_replayed(const struct ha_local_view *l);

/* May this node take the free leader key? False with *why (a WAIT) if not. */
bool ha_eligible(const struct ha_cluster_view *c, const struct ha_local_view *l, bool named_candidate, double now,
                 struct ha_action *why);

/* Still inside the backoff after a failed `kind` job: seconds left, else 0. */
double ha_job_backoff_left(const struct ha_local_view *l, enum ha_job kind, double factor, double now);

/* pg_rewind failed and is to be tried again, not yet: seconds left, else 0. */
double ha_rewind_backoff_left(const struct ha_local_view *l, double now);

#endif
