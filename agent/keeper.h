/*
 * keeper.h - the lease keeper: a thread that keeps this agent's etcd lease
 * alive, independently of the loop (DESIGN.md rule 4: nothing Postgres does
 * may delay a renewal).
 *
 * It records the monotonic time at which it *sent* the last keepalive that
 * succeeded; the loop computes the leader's deadline from it (rule 2). As a
 * second line of defence it fences: if the loop has registered a postmaster
 * that may accept writes and the deadline passes without the loop having
 * stopped it, the keeper sends that postmaster SIGQUIT (immediate shutdown)
 * itself and wakes the loop. A frozen agent freezes this thread too, so the
 * keeper also runs a separate fence process (fence.h) that enforces the
 * same deadline, and, where present, arms a watchdog device (watchdog.h)
 * while Postgres may write.
 */
#ifndef BATON_KEEPER_H
#define BATON_KEEPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "etcd/etcd.h"

struct keeper;

/* Starts the thread with its own etcd client. interval = seconds between
 * keepalives; ttl = the lease TTL used for the fencing deadline. wake_fd gets
 * one byte whenever the lease is lost or the keeper fenced. NULL + err. */
struct keeper *keeper_start(const struct etcd_config *ecfg, double interval, double ttl, int wake_fd, char *err,
                            size_t errlen);
/* A new lease from the loop (granted at monotonic time `sent`). 0 = none. */
void keeper_set_lease(struct keeper *k, int64_t lease_id, double sent);
/* Current lease (0 when lost) and when its last good keepalive was sent. */
void keeper_get(struct keeper *k, int64_t *lease_id, double *last_ok_sent);
/* Timing from the dynamic config. */
void keeper_set_timing(struct keeper *k, double interval, double ttl);
/* failsafe_mode: start of the last round in which every member confirmed
 * us while etcd was unreachable (0 = none); it extends the fencing
 * deadline like a renewal sent at that time. */
void keeper_set_failsafe(struct keeper *k, double confirmed_at);
/* The postmaster to fence at the deadline (0 = nothing may write). Call it
 * from the thread that reaps the postmaster, while it is unreaped: its
 * pidfd is opened here and handed to the fence process. It also arms
 * (non-zero) or disarms (0) the watchdog. Cheap when nothing changed. */
void keeper_set_fence(struct keeper *k, pid_t postmaster);
/* The lease the leader key is attached to while this node holds it (0 =
 * not the leader). Passed to the fence process with the postmaster, so
 * that it can revoke the lease once the agent died and the postmaster is
 * gone (fence.h); sent only while it is the lease this keeper renews. */
void keeper_set_fence_lease(struct keeper *k, int64_t leader_lease);
/* The watchdog settings (config keys watchdog.mode, watchdog.device,
 * watchdog.safety_margin); call once after keeper_start. Probes the device
 * (arms it and stops it again). False + err only for a setting that cannot
 * work: an unknown mode, or in mode "required" a safety_margin that leaves
 * no timeout of at least 1 s with the current ttl; a missing device is no
 * error here (automatic: logged once, going on without; required: the
 * node may not become primary, see keeper_watchdog_state). */
bool keeper_set_watchdog(struct keeper *k, const char *mode, const char *device, double safety_margin, char *err,
                         size_t errlen) __attribute__((warn_unused_result));
/* For the local view: mode is "required", and the device can be armed. */
void keeper_watchdog_state(struct keeper *k, bool *required, bool *ok);
/* Is a fence process running (false briefly while it is restarted)? */
bool keeper_fence_running(struct keeper *k);
/* Keepalives that succeeded / failed since start. */
void keeper_counts(struct keeper *k, uint64_t *ok, uint64_t *failed);
/* The etcd member (base URL) that answered the last successful keepalive,
 * into buf; false (buf "") before the first. The loop starts its watch
 * there: a member the keeper uses is one whose silence it notices. */
bool keeper_endpoint(struct keeper *k, char *buf, size_t len);
/* Request statistics of the keeper's own etcd client. */
void keeper_etcd_stats(struct keeper *k, struct etcd_stats *out);
/* Longest time between the send times of two successful keepalives of one
 * lease (how much of the ttl - margin budget was ever used), seconds. */
double keeper_worst_gap(struct keeper *k);
/* Worst keepalive round trip seen so far, seconds. */
double keeper_worst_latency(struct keeper *k);
/* Stops and joins the thread, frees everything. NULL is fine. */
void keeper_stop(struct keeper *k);

#endif
