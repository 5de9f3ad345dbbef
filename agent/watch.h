/*
 * watch.h - a thread that watches baton's whole prefix in etcd and hands
 * the loop every change (PUT/DELETE with its revision), so the loop keeps
 * its cluster view from the watch instead of reading every key each loop,
 * and wakes the loop (one byte on wake_fd) on every change, so a replica
 * reacts to the leader key's expiry at once instead of at its next loop
 * (DESIGN.md timing rule).
 *
 * The watch starts at a revision the loop gives it: the revision of the
 * full read the loop's cached view comes from, plus one, so that no change
 * between the read and the watch is missed. The etcd library resumes a
 * dropped stream from the revision after the last one delivered; when the
 * watch ends for good (the start revision was compacted, the stream was
 * refused) or its queue overflows, the watch reports itself lost and the
 * loop rebuilds its view with a full read and starts a new watch.
 */
#ifndef BATON_WATCH_H
#define BATON_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd/etcd.h"

struct watch;

/* One change under the prefix; kv is a deep copy the event owns. */
struct watch_event {
	enum etcd_event_type type;
	struct etcd_kv kv; /* key always; value empty on DELETE; mod_revision = the change's revision */
};

/*
 * Starts the thread with its own etcd client, watching every key under
 * prefix from start_revision (> 0: a full read's revision + 1). leader_key
 * is only named in log lines. NULL + err.
 */
struct watch *watch_start(const struct etcd_config *ecfg, const char *prefix, const char *leader_key,
                          int64_t start_revision, int wake_fd, char *err, size_t errlen);
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
