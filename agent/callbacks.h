/*
 * callbacks.h - the operator's scripts (postgresql.callbacks), run without
 * ever blocking the agent's loop.
 *
 * A callback is run as `SCRIPT ACTION ROLE SCOPE`, e.g.
 *   /etc/baton/role_change.sh on_role_change primary main
 * as a child process in its own process group, stdin from /dev/null,
 * stdout and stderr into a pipe whose lines the agent logs
 * ("callback on_role_change: <line>", at most CB_LOG_MAX bytes per run, then
 * "(output truncated)"). cb_fire starts it and returns at once; cb_poll,
 * called on every loop pass (and whenever SIGCHLD wakes the loop), drains
 * the output, reaps finished scripts and kills those past the timeout.
 *
 * At most one run per action: firing an action whose previous run is still
 * going kills the old one first (a newer role change supersedes an older
 * one, so the VIP ends where the last role says). Killing is SIGTERM to the
 * script's process group, at most CB_TERM_GRACE seconds for it to exit, then
 * SIGKILL: a bounded pause, never an unbounded wait.
 *
 * Reaping is per pid (waitpid(pid, WNOHANG)), never waitpid(-1): the loop
 * owns other children (the postmaster, pg_basebackup, ...). Conversely the
 * loop must not reap with waitpid(-1) either, or callbacks are lost (cb_poll
 * then logs that it lost track of one).
 *
 * Thread use: a runner is used by one thread only, the loop's (no locks).
 * fork() from a threaded process is safe here: everything the child needs
 * is prepared before fork, and the child only calls async-signal-safe
 * functions until exec.
 */
#ifndef BATON_CALLBACKS_H
#define BATON_CALLBACKS_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent/config.h"

enum cb_action {
	CB_ON_START,       /* Postgres was started by the agent */
	CB_ON_STOP,        /* Postgres was stopped by the agent */
	CB_ON_ROLE_CHANGE, /* promoted, or demoted/following a new primary */
	CB_ON_RELOAD,      /* Postgres configuration reloaded */
	CB_N_ACTIONS
};

#define CB_LOG_MAX (64 * 1024) /* bytes of one run's output that are logged */
#define CB_TERM_GRACE 0.05     /* seconds between SIGTERM and SIGKILL */
#define CB_DEFAULT_TIMEOUT 30.0

struct cb_runner;

/* "on_start", "on_stop", "on_role_change", "on_reload"; "?" when out of range. */
const char *cb_action_name(enum cb_action action);

/* A runner for the scripts in cbs (NULL members: no script for that action)
 * and the cluster name scope, killing scripts after timeout seconds
 * (<= 0: CB_DEFAULT_TIMEOUT; the loop passes cbs->timeout). The runner
 * copies what it keeps: cbs and scope may be freed afterwards. cbs may be
 * NULL (no scripts at all). NULL on out of memory. Free with cb_free. */
struct cb_runner *cb_new(const struct config_callbacks *cbs, const char *scope, double timeout);

/* Starts the action's script with ROLE = role ("primary", "replica", ...),
 * and returns without waiting for it. No script configured: does nothing
 * and returns true. A previous run of the same action still going is
 * killed first (and logged: superseded). False if the script could not be
 * started (pipe/fork failure, logged here; an exec failure shows up as exit
 * status 127 in cb_poll's log instead). The caller may ignore the result:
 * a callback never changes what the agent does. */
bool cb_fire(struct cb_runner *r, enum cb_action action, const char *role);

/* Non-blocking: logs the output lines available, reaps the scripts that
 * ended (logs their exit status), kills those past the timeout (logs it).
 * Returns how many scripts are still running, so the loop can poll again
 * soon while some are (their output is drained only on polls). Safe to call
 * at any time, any number of times; NULL runner: 0. */
int cb_poll(struct cb_runner *r);

/* The pid of the action's running script, 0 if none (for tests and status). */
pid_t cb_running(const struct cb_runner *r, enum cb_action action);

/* Kills (SIGTERM, grace, SIGKILL) and reaps every script still running,
 * logging what was cut short, and frees the runner. NULL is a no-op. */
void cb_free(struct cb_runner *r);

#endif
