/*
 * dcs.h - baton's key layout in etcd, and the JSON of each key.
 *
 * Prefix <namespace>/<scope>/ holds:
 *   leader          the leader's name, plain text, on the leader's lease
 *   members/<name>  JSON of struct ha_member (see dcs_member_json), on the member's lease
 *   initialize      while bootstrapping: the bootstrapper's name, on its lease;
 *                   afterwards: the system identifier (decimal), no lease
 *   config          JSON dynamic settings (ttl, loop_wait, retry_timeout,
 *                   maximum_lag_on_failover, postgresql.parameters)
 *   status          JSON {"optime": LSN, "timeline": N} refreshed by the leader
 *   history         JSON array of {"timeline","lsn","reason","time","leader"}
 *   switchover      JSON of struct dcs_switchover: a planned switchover or a
 *                   manual failover requested by an operator (see ops.h), no lease
 *   sync            JSON {"leader": NAME, "sync_standby": [NAME, ...], "quorum": N}: in
 *                   synchronous mode, the standbys the leader's commits wait
 *                   for; only they (or that leader) may take the leader key
 *
 * Parsing never trusts what it reads: a member whose JSON is unreadable is
 * left out of the view (and reported), an unreadable config falls back to
 * the previous settings; nothing unreadable ever counts as permission to
 * promote.
 */
#ifndef BATON_DCS_H
#define BATON_DCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "agent/config.h"
#include "agent/ha.h"
#include "etcd/etcd.h"

struct dcs_keys {
	char prefix[256]; /* "/baton/main/" */
	char leader[320];
	char initialize[320];
	char config[320];
	char status[320];
	char history[320];
	char members[320]; /* "/baton/main/members/" */
	char switchover[320];
	char sync[320];
};

/* false if the names do not fit. */
bool dcs_keys_init(struct dcs_keys *k, const char *namespace_, const char *scope);
/* members/<name> into buf. */
bool dcs_member_key(const struct dcs_keys *k, const char *name, char *buf, size_t len);

/*
 * Fills the cluster view from one read of the cluster (dcs_read_cluster).
 * settings: in = the settings to use when the config key is absent or
 * unreadable (bootstrap.dcs, or the last good ones); out = the settings in
 * force (deep copy; caller frees with dcs_settings_free). view->ttl etc. are
 * set from them (view->paused from their pause). A switchover key that is
 * readable sets has_switchover and the sw_* fields; an unreadable one is
 * reported and ignored (it never triggers anything). Problems (a member
 * JSON unreadable, config invalid) are
 * written, one per line, into warn (may be NULL); the view is still filled.
 * etcd_ok is set true.
 * The view is zeroed first. fallback may be NULL (built-in defaults: ttl 5,
 * loop_wait 1, retry_timeout 2, maximum_lag_on_failover 1 MiB). settings_out
 * may be NULL, and may be the same struct as fallback (it is then replaced,
 * its old contents freed, when the config key is readable); otherwise it is
 * overwritten without being freed.
 */
void dcs_parse_cluster(const struct dcs_keys *k, const struct etcd_range_result *r, const struct dcs_settings *fallback,
                       struct ha_cluster_view *view, struct dcs_settings *settings_out, char *warn, size_t warnlen);

/* One line for an operator: "standby cluster following H:P" or "not a
 * standby cluster", then ", paused", ", synchronous mode" as they hold. */
void dcs_settings_summary(const struct dcs_settings *s, char *buf, size_t len);

/*
 * The last good config key, as a node keeps it in its data directory so
 * that an invalid or deleted key never changes the cluster's mode, not
 * even across a restart (loop_pgfiles.c): JSON {"namespace", "scope",
 * "name", "revision", "config": the key's value as read}. _json returns a
 * malloc'ed string (NULL: out of memory). _parse accepts only a record
 * this very member wrote (a copy that came with a base backup or a rewind
 * is another member's, perhaps of the other site): the key's value into
 * *config (malloc'ed, caller frees), its mod_revision into *revision;
 * false with err set otherwise. The value itself is not validated here.
 */
char *dcs_lastgood_json(const char *namespace_, const char *scope, const char *name, int64_t revision,
                        const char *config);
bool dcs_lastgood_parse(const char *text, const char *namespace_, const char *scope, const char *name,
                        int64_t *revision, char **config, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The one bounded read of the cluster, used wherever the view is built from
 * etcd (the loop, the REST API, batonctl, ops): whatever sits under the
 * prefix, no answer is larger than one key's worth, so a hostile or broken
 * key costs that key only. Usually one request: a transaction with a
 * keys-only listing of the prefix, the fixed keys and the members' values.
 * When that answer is too big, or cut (more keys, more members), or the
 * last read met an oversized key (cache), it goes step by step:
 *   1. a keys-only listing of the prefix, in pages at one revision (small
 *      pages if the key names themselves are huge), at most DCS_LIST_MAX keys;
 *   2. the values of the keys the view needs (leader, initialize, config,
 *      status, switchover, sync, history, members/<name>) in one transaction, or one
 *      by one if that answer would be too big; keys the layout does not have
 *      are named in warn and never read;
 *   3. a value larger than DCS_VALUE_MAX bytes is named in warn and left out
 *      (the leader and initialize keys stay, without a value: a key that
 *      exists is never read as absent).
 * out receives the keys read (values NUL-terminated) at the revision of
 * step 2; the caller frees it with etcd_range_result_free. warn (may be NULL)
 * gets one line per problem, the same text while the problem stays, so the
 * caller can log it once per change. cache (may be NULL) remembers oversized
 * keys by mod_revision so they are not downloaded again each loop (not
 * thread-safe: one cache per thread). ETCD_OK unless etcd itself fails.
 */
#define DCS_VALUE_MAX (256 * 1024)
#define DCS_LIST_MAX 5000
#define DCS_CACHE_N 16
#define DCS_FETCH_MEMBERS (2 * HA_MAX_MEMBERS)

struct dcs_read_cache {
	struct {
		char key[400];
		int64_t mod_revision;
		size_t len;
	} e[DCS_CACHE_N];
	size_t next;
	bool slow;          /* the last read met an oversized key: list first */
	bool saw_oversized; /* ... this read did */
};

enum etcd_status dcs_read_cluster(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
                                  struct etcd_range_result *out, char *warn, size_t warnlen, struct etcd_error *err)
        __attribute__((warn_unused_result));

/*
 * The cached view (watch-driven reads): the loop keeps the result of its
 * last dcs_read_cluster and applies to it each change the prefix watch
 * delivers, instead of reading every key each loop. dcs_cache_apply applies
 * one change (type, kv: the watched key, its value, its revision in
 * kv->mod_revision) to cache, with the rules the read itself follows:
 *   - a change at or below cache->revision (the read's revision) is
 *     already in the read: DCS_APPLY_STALE; so is a PUT older than the
 *     cached key's own mod_revision (a replay after a reconnect);
 *   - keys the layout does not have are ignored (DCS_APPLY_IGNORED);
 *   - a value larger than DCS_VALUE_MAX is left out as the read leaves it
 *     out (the leader and initialize keys stay, without a value); for
 *     another key the answer is DCS_APPLY_FULL_READ, so that a read names
 *     it to the operator at once;
 *   - a new member beyond DCS_FETCH_MEMBERS members, or no memory, answers
 *     DCS_APPLY_FULL_READ: the caller must read everything again, as it
 *     must after a lost watch (compaction, cancel, overflow).
 * DCS_APPLY_CHANGED otherwise. cache->revision is not moved: it stays the
 * revision of the read, so re-applying a change is harmless. Pure.
 */
enum dcs_apply { DCS_APPLY_CHANGED, DCS_APPLY_STALE, DCS_APPLY_IGNORED, DCS_APPLY_FULL_READ };
enum dcs_apply dcs_cache_apply(const struct dcs_keys *k, struct etcd_range_result *cache, enum etcd_event_type type,
                               const struct etcd_kv *kv) __attribute__((warn_unused_result));
/* Do a and b hold the same keys at the same mod revisions? (the periodic
 * consistency check of the cached view against a full read). Pure. */
bool dcs_cache_same(const struct etcd_range_result *a, const struct etcd_range_result *b);

/* The roles a member can report (members/<name>, GET /): "primary",
 * "replica", "uninitialized", "stopped". dcs_role_at(i) is the i-th of them,
 * NULL past the last; dcs_role_known() is true for exactly those strings. */
const char *dcs_role_at(size_t i);
bool dcs_role_known(const char *role);

/* A member's tags as a JSON object (new reference, NULL when out of
 * memory): nofailover, nosync, failover_priority always; noloadbalance,
 * nostream, replicatefrom when set; then its custom tags (never over one
 * of those). For the member key, /patroni and batonctl. */
json_t *dcs_member_tags(const struct ha_member *m);
/* A custom tag's name as accepted: [A-Za-z0-9_.-]{1,63}. */
bool dcs_tag_name_ok(const char *name);

/* JSON text of a member (malloc'd, caller frees). */
char *dcs_member_json(const struct ha_member *m);
/* A member key's Postgres host: a host name or an IP address (letters,
 * digits, '.', '-', ':'), never a Unix-socket path ("/dir", "@name"). Pure. */
bool dcs_member_host_ok(const char *host);

/* Parses members/<name>; false with the reason in err when it is not the
 * JSON expected (wrong types, missing role, ...). */
bool dcs_member_from_json(const char *name, const char *json, struct ha_member *out, char *err, size_t errlen);

char *dcs_status_json(uint64_t lsn, uint32_t timeline);
bool dcs_status_from_json(const char *json, uint64_t *lsn, uint32_t *timeline);

/* Includes "pause" (true/false). */
char *dcs_config_json(const struct dcs_settings *d);
/* Unknown keys are ignored; "pause" must be a boolean when present; wrong types or values out of range -> false + err.
 * out is overwritten (not freed): keys absent from json take the built-in
 * defaults; on failure out is left empty. */
bool dcs_config_from_json(const char *json, struct dcs_settings *out, char *err, size_t errlen);

/* Frees what d holds and zeroes it (d itself is the caller's); NULL is fine. */
void dcs_settings_free(struct dcs_settings *d);
/* Deep copy into dst (overwritten, not freed); false on ENOMEM, dst untouched. */
bool dcs_settings_copy(struct dcs_settings *dst, const struct dcs_settings *src);

/*
 * Removes from s->pg_params every parameter this node must not take from the
 * cluster (config_param_allowed_from_dcs with allow, n_allow: the node's
 * postgresql.allow_from_dcs) and writes one line per parameter removed, naming
 * it, into warn (may be NULL). Returns how many were removed. Each node calls
 * it on what it read, with its own list: one node's permission never reaches
 * another.
 */
size_t dcs_settings_drop_code_params(struct dcs_settings *s, char *const *allow, size_t n_allow, char *warn,
                                     size_t warnlen);

/*
 * The switchover key:
 *   {"from": "node1", "to": "node2", "kind": "switchover" | "failover",
 *    "requested_at": 1764099000, "scheduled_at": 1764100000}
 * Every field is optional: from/to "" (any leader / the best candidate),
 * kind "switchover", scheduled_at absent or 0 for "now". A failover must
 * name its candidate.
 */
struct dcs_switchover {
	char from[HA_NAME_MAX];
	char to[HA_NAME_MAX];
	bool failover;       /* kind "failover" */
	double scheduled_at; /* wall clock, unix seconds; 0 = now */
	double requested_at; /* wall clock, unix seconds; 0 = not said */
};

/* The sync key (malloc'd, caller frees). */
char *dcs_sync_json(const char *leader, char names[][HA_NAME_MAX], size_t n, int quorum);
/* Parses it; false + err when it is not the JSON expected. quorum: 0 when absent. */
bool dcs_sync_from_json(const char *json, char *leader, size_t leader_len, char names[][HA_NAME_MAX], size_t max,
                        size_t *n, int *quorum, char *err, size_t errlen);

/* JSON text of the key (malloc'd, caller frees); NULL when out of memory. */
char *dcs_switchover_json(const struct dcs_switchover *s);
/* Parses the key; false with the reason in err (out zeroed then). */
bool dcs_switchover_from_json(const char *json, struct dcs_switchover *out, char *err, size_t errlen);

/* One phrase for the switchover request in the view ("switchover from node1
 * to node2 at 2026-11-25T20:00:00Z", "failover from the leader to node2"). */
void dcs_switchover_describe(const struct ha_cluster_view *v, char *buf, size_t len);

/* Unix seconds as "2026-11-25T20:00:00Z" (UTC), as the keys store times. */
void dcs_format_utc(double t, char *buf, size_t len);

/* One history entry in baton's shape, {timeline (the new one), lsn,
 * reason, time, leader}: an object as it is (a new reference), Patroni's
 * list [timeline that ended, lsn, reason, time, new leader] converted; NULL
 * for anything else or on ENOMEM. Pure. */
json_t *dcs_history_entry(const json_t *e);

/* Returns a new JSON array: old (may be NULL/invalid -> starts anew) plus one entry. */
char *dcs_history_append(const char *old_json, uint32_t timeline, uint64_t lsn, const char *reason, const char *leader,
                         time_t when);

#endif
