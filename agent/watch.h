/*
 * watch.h - a thread that watches the leader key in etcd and wakes the loop
 * (one byte on wake_fd) on every change, so a replica reacts to the leader
 * key's expiry at once instead of at its next loop (DESIGN.md timing rule).
 * The etcd library resumes the watch from the last revision after a dropped
 * connection; a compacted revision restarts it from the current one.
 */
#ifndef BATON_WATCH_H
#define BATON_WATCH_H

#include "etcd/etcd.h"

struct watch;

struct watch *watch_start(const struct etcd_config *ecfg, const char *key, int wake_fd, char *err, size_t errlen);
void watch_stop(struct watch *w);

#endif
