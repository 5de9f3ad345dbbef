/*
 * watch.h - a thread that watches baton's whole prefix in etcd and hands
 * the loop every change (PUT/DELETE with its revision), so the loop keeps
 * its cluster view from the watch instead of reading every key each loop,
 * and wakes the loop (one byte on wake_fd) on the changes that need a
 * prompt decision (watch_wakes), so a replica reacts to the leader key's
 * expiry at once instead of at its next loop (DESIGN.md timing rule). The
 * other changes (the members' LSNs under write load, the leader's status)
 * wait in the queue for the loop's next pass: were they to wake it, every
 * agent's publication would wake every other agent, whose own publication
 * would wake it again, a loop spinning as fast as etcd answers.
 *
 * The watch starts at a revision the loop gives it: the revision of the
 * full read the loop's cached view comes from, plus one, so that no change
 * between the read and the watch is missed. The etcd library resumes a
 * dropped stream from the revision after the last one delivered; when the
 * watch ends for good (the start revision was compacted, the stream was
 * refused) or its queue overflows, the watch reports itself lost and the
 * loop rebuilds its view with a full read and starts a new watch.
 *
 * The watch has its own etcd client, which starts on the endpoint the
 * caller names (the one its main client last got answers from), not on
 * the first one, which may be a dead or partitioned member; the endpoint
 * of each stream established is logged.
 */
#ifndef BATON_WATCH_H
#define BATON_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/dcs.h"
#include "etcd/etcd.h"

struct watch;

/* One change under the prefix; kv is a deep copy the event owns. */
struct watch_event {
	enum etcd_event_type type;
	struct etcd_kv kv; /* key always; value empty on DELETE; mod_revision = the change's revision */
};

/*
 * Starts the thread with its own etcd client (made from ecfg, first trying
 * endpoint number first_endpoint of ecfg's list; an index out of range
 * means the first), watching every key under keys->prefix from
 * start_revision (> 0: a full read's revision + 1). own_name is this
 * agent's member name: changes to its own member key do not wake the
 * loop. Makes no request before the thread runs. NULL + err.
 */
struct watch *watch_start(const struct etcd_config *ecfg, size_t first_endpoint, const struct dcs_keys *keys,
                          const char *own_name, int64_t start_revision, int wake_fd, char *err, size_t errlen);
/*
 * Whether one change under the prefix wakes the loop now (true) or waits
 * for the loop's next pass (false). Pure. Wakes: the leader key, config,
 * sync, switchover, initialize, any key it does not know, a member key
 * deleted or expired, a member key seen for the first time (prev NULL),
 * and a member key whose content changed beyond its LSN (role, state,
 * timeline, tags, addresses...). Waits: the leader's status and history,
 * this agent's own member key (own_member_key, may be NULL), and a member
 * key whose only change is its LSN ("lsn", or Patroni's "xlog_location").
 * prev is the key's value before this change as the watch last saw it
 * (NULL: not seen yet); value is "" on DELETE.
 */
bool watch_wakes(const struct dcs_keys *keys, const char *own_member_key, enum etcd_event_type type, const char *key,
                 const char *value, const char *prev);
/*
 * Moves the changes queued since the last call into *events (*n of them,
 * oldest first; the caller frees them with watch_events_free). Returns
 * false when the watch is lost (it ended, or more than WATCH_QUEUE_MAX
 * changes were queued): the caller must rebuild its view with a full read
 * and replace this watch by a new one (watch_stop, watch_start). Never
 * blocks on etcd.
 */
#define WATCH_QUEUE_MAX 4096
bool watch_take(struct watch *w, struct watch_event **events, size_t *n) __attribute__((warn_unused_result));
void watch_events_free(struct watch_event *events, size_t n);
/* Request statistics of the watch's own etcd client (watch streams opened). */
void watch_etcd_stats(struct watch *w, struct etcd_stats *out);
void watch_stop(struct watch *w);

#endif
