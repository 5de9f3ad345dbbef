/*
 * ops.h - operator actions on the cluster's keys in etcd, shared by batonctl
 * and the REST API: request a switchover or a manual failover, pause and
 * resume, edit the dynamic configuration.
 *
 * Each action first reads the cluster (one prefix read), validates the
 * request against it (a named candidate must be a member, healthy per its
 * member key, not tagged nofailover; a leader named must be the leader...),
 * and writes with a compare on the key's mod_revision so two operators
 * editing at once get a clear "changed concurrently, try again" instead of
 * one silently overwriting the other. Errors are one line in err; the
 * functions never print.
 *
 * The switchover key (JSON) is what the agents act on (see ha.h):
 *   {"from": "node1", "to": "node2", "scheduled_at": 1764100000,
 *    "kind": "switchover" | "failover", "requested_at": 1764099000}
 * "from"/"to" may be "" (any leader / the best candidate); scheduled_at is
 * absent for "now".
 */
#ifndef BATON_OPS_H
#define BATON_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/config.h"
#include "agent/dcs.h"
#include "etcd/etcd.h"

struct ops_switchover_req {
	const char *leader;    /* must be the current leader when set (NULL = current) */
	const char *candidate; /* NULL = the best one (switchover only) */
	time_t scheduled_at;   /* 0 = now; must be in the future otherwise */
	bool failover;         /* manual failover: candidate required; allowed without a leader */
	bool force;            /* skip the health checks of the candidate */
};

/* Validates and writes the switchover key. Refuses when: no leader (switchover),
 * no healthy candidate, the candidate is the leader or unknown or nofailover,
 * a switchover is already pending, scheduled_at in the past or more than
 * OPS_SCHEDULE_HORIZON ahead (ops_check_schedule); in maintenance mode also
 * a switchover without a candidate or a scheduled one (the agents would not
 * act on it until resume). revision (may be NULL) receives the key's create
 * revision: the leader's member key quotes it when it refuses the request
 * ("switchover_refused"). */
bool ops_switchover(struct etcd_client *c, const struct dcs_keys *k, const struct ops_switchover_req *req,
                    int64_t *revision, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Deletes a pending switchover key (false + err when there is none). */
bool ops_switchover_cancel(struct etcd_client *c, const struct dcs_keys *k, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Sets "pause" in the config key (creating it from defaults if absent). */
bool ops_set_pause(struct etcd_client *c, const struct dcs_keys *k, bool pause, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/*
 * Applies edits to the config key and writes it if the result is valid:
 * set[] holds "key=value" for ttl, loop_wait, retry_timeout,
 * maximum_lag_on_failover, pause (true/false); pg[] holds "name=value"
 * Postgres parameters (an empty value removes one). result (may be NULL)
 * receives the new settings (caller frees with dcs_settings_free).
 */
bool ops_edit_config(struct etcd_client *c, const struct dcs_keys *k, const char *const *set, size_t n_set,
                     const char *const *pg, size_t n_pg, struct dcs_settings *result, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Replaces the config key with the JSON document given, after validation
 * (batonctl edit-config with $EDITOR, REST PATCH after merging). Keys other
 * than ttl, loop_wait, retry_timeout, maximum_lag_on_failover, pause and
 * postgresql.parameters are refused (a typo would otherwise be ignored);
 * the key is written in canonical form (dcs_config_json). */
bool ops_replace_config(struct etcd_client *c, const struct dcs_keys *k, const char *json, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* As ops_replace_config, but the write succeeds only if the config key is
 * still at mod_revision (the revision of the document the caller edited; 0 =
 * the key was absent then), so an edit made meanwhile (while an editor was
 * open) is reported as a concurrent change instead of being overwritten.
 * mod_revision < 0 compares with the revision read just now (= ops_replace_config). */
bool ops_replace_config_at(struct etcd_client *c, const struct dcs_keys *k, const char *json, int64_t mod_revision,
                           char *err, size_t errlen) __attribute__((warn_unused_result));

/* The furthest ahead a switchover (or a restart) may be scheduled: 7 days.
 * Further is more likely a typo in the year than a plan, and a request that
 * waits in etcd for months blocks every other switchover meanwhile. */
#define OPS_SCHEDULE_HORIZON (7 * 86400)

/* A scheduled time (unix seconds; 0 = now) for a `what` ("switchover",
 * "restart"): false + err naming the time and the bound when it is not in
 * the future or more than OPS_SCHEDULE_HORIZON ahead of now. */
bool ops_check_schedule(time_t when, time_t now, const char *what, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* The horizon part of ops_check_schedule alone, for a request read back
 * from etcd (the switchover key), where a time already past means "due",
 * not "refused": false + err naming the time and the bound when when is
 * more than OPS_SCHEDULE_HORIZON ahead of now (0 = now: always true). */
bool ops_check_horizon(time_t when, time_t now, const char *what, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* The local node's postgresql.allow_from_dcs. Until it is called, an edit of
 * the config key that sets or changes a parameter that runs code
 * (pg_conf_param_runs_code) is refused ("invalid configuration: ...",
 * naming it); afterwards the ones listed pass. Call it once at start-up,
 * before other threads use ops (the list is copied). false on ENOMEM. */
bool ops_set_allow_from_dcs(char *const *names, size_t n) __attribute__((warn_unused_result));

/* For tests: hook (may be NULL) is called by every action after its read and
 * before its write, so a test can change the keys in between. Not thread-safe;
 * set it only while no action runs. */
void ops_set_before_write_hook(void (*hook)(void *ctx), void *ctx);

#endif
