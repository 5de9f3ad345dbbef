/*
 * loop.h - the agent's main loop: gather the cluster view (one etcd read)
 * and the local view (data directory, Postgres), call ha_decide, execute
 * the action, publish our member key and REST status, sleep until the next
 * loop or until woken (leader key changed, lease lost, child exited,
 * signal).
 */
#ifndef BATON_LOOP_H
#define BATON_LOOP_H

#include "agent/config.h"

/* Set from signal handlers; the loop acts on them at safe points. */
void loop_request_shutdown(void);
void loop_request_reload(void);
void loop_wake_from_signal(void);

/* Runs the agent until shutdown. Returns the process exit status:
 * 0 after a clean shutdown, 1 on a fatal condition (logged). */
int loop_run(const struct baton_config *cfg);

#endif
