/*
 * fence.h - the fence process: a second, tiny process that stops a writable
 * Postgres when the agent cannot (DESIGN.md safety rule 3).
 *
 * The keeper thread fences at the leader's deadline, but it lives inside the
 * agent: a SIGSTOPped or otherwise frozen agent freezes it too, and its
 * Postgres would go on accepting writes after the lease expired and another
 * node promoted. The fence process shares nothing with the agent but one
 * AF_UNIX SOCK_SEQPACKET socket pair. The agent tells it, in fixed-size
 * messages, which postmaster may write (as a pidfd, passed with SCM_RIGHTS,
 * so a recycled PID is never signalled) and until when (a CLOCK_MONOTONIC
 * deadline). The fence:
 *
 *   - at the deadline, if a postmaster is still registered, sends it SIGQUIT
 *     (immediate shutdown), and SIGKILL to it and its process group if it is
 *     still alive FENCE_KILL_AFTER later; it reports both on the socket and
 *     on stderr (the agent's log), since a frozen agent cannot log;
 *   - when the socket closes without a goodbye (the agent died), does the
 *     same at once and exits;
 *   - on fence_stop()'s goodbye, exits without signalling anything: the
 *     agent is shutting down on purpose and stops Postgres itself.
 *
 * Agent crash, a new primary at once (issue 16). When the agent dies while
 * it holds the leader key, the cluster would otherwise wait out the lease
 * (ttl) with no primary. The agent also tells the fence the leader lease,
 * the one the leader key is attached to (0 = not the leader, or the lease
 * was lost). On the agent-gone path only - the socket closed without a
 * goodbye; not a poll error, not a deadline - and only once it is certain
 * that nothing of the old primary can write any more, the fence revokes
 * that lease, which deletes the leader key, so a replica takes it at once
 * instead of after the ttl. Certain means (fence_revoke_certain):
 *   - the postmaster led its own process group when it was registered
 *     (pg_spawn's setpgid), so the group is everything it started;
 *   - the postmaster has exited (its pidfd is readable; without pidfds,
 *     kill() says ESRCH);
 *   - no process of that group still runs: after a SIGKILL to the group,
 *     kill(-pgid, 0) says ESRCH, or /proc shows only zombies in it (a
 *     zombie runs no code; an init that reaps slowly must not delay us).
 * A group SIGKILL also ends any backend the postmaster left behind, and
 * a process with a pending SIGKILL cannot fork, so nothing new joins the
 * group while we look. The wait is bounded (FENCE_REVOKE_WAIT); without
 * certainty by then the fence says so and leaves the lease to expire.
 *
 * Why this is safe: a frozen agent (SIGSTOP, a hung thread) keeps its
 * socket open, so it never takes this path and the deadline path applies
 * unchanged. The socket closes only when every thread of the agent is
 * gone (it is close-on-exec, and the fence is the only other holder), so
 * no agent code runs any more that could start a postmaster or renew the
 * lease. Revoking deletes the leader key (and the member key) in one etcd
 * step; the replicas learn it through their leader watch, and the usual
 * rules pick the new leader (in synchronous mode only the recorded
 * synchronous standby may take it; the most up-to-date otherwise). What
 * the old primary acknowledged before it died is what a normal node loss
 * leaves too; after the revoke it can acknowledge nothing. A stale lease
 * ID is harmless: a lease that is gone answers "not found", and a lease of
 * ours that no longer carries the leader key carries only our member key.
 *
 * The fence cannot use libcurl (no malloc after fork), so another process
 * of the agent's own binary makes the request. Starting one only when it
 * is needed costs 0.15-0.35 s (exec, config load, TLS handshake and, with
 * auth, a token), so the fence pre-starts it: from the first time the
 * agent names a leader lease, the fence keeps a child running `baton
 * --revoker -c CONFIG` (see baton.c), which loads the config, opens its
 * etcd connection (authenticated, TLS handshake done) by reading the
 * leader key, refreshes it every FENCE_REVOKER_WARM s, and otherwise
 * blocks on FENCE_REVOKER_FD, a pipe from the fence (its stdin is
 * /dev/null). It is started with the agent's pid and the leader lease
 * (`--agent PID --revoke-lease HEX`; the fence starts a new one when the
 * lease changes), and a line the fence writes once fence_revoke_certain
 * holds ("revoke <lease hex> <postmaster> <since ns>") makes it send the
 * one LeaseRevoke (bounded by FENCE_REVOKER_BUDGET), log one line and
 * exit, but only after it checked the claim itself
 * (fence_revoker_refusal): a same-user process (a Postgres superuser's
 * COPY TO PROGRAM) can write to the pipe through /proc/PID/fd, so a line
 * naming another lease, a live postmaster or a live agent is refused with
 * a WARN and it goes on waiting. End of file (the fence's
 * goodbye or death) makes it exit without a request: 0, or 1 once it
 * refused a line (the fence then falls back to a fresh revoker, which
 * checks again). Both revokers also read the leader key first and revoke
 * only when it is gone or names this member under that very lease, so a
 * wrong lease never ends another member's leadership. These checks guard
 * against mistakes and a Postgres superuser's shell, not against the OS
 * user itself: it can read the etcd credentials in the config file. Revoking is then one
 * HTTP request on a warm connection. If it is not running (it exited: the
 * fence starts another FENCE_REVOKER_RETRY s later), cannot be handed the
 * line, or fails, the fence falls back to execve()ing the binary in its
 * revoke-only mode (`baton --revoke-lease ID --postmaster PID --since NS
 * --agent PID -c CONFIG`), which checks that the postmaster and the agent
 * are gone, loads the config afresh (a reload may have changed
 * the etcd settings), makes one LeaseRevoke with a short bound, logs one
 * line and exits: nothing else, no Postgres, no keys. The binary and config
 * paths are fixed before fork (fence_set_revoker).
 *
 * Between fork() and its exit the fence process only makes system calls
 * (poll, recvmsg, send, clock_gettime, pidfd_send_signal, kill, write,
 * open/read/getdents64 of /proc, and pipe2/fork/execve/waitpid for the
 * revoker): it
 * is forked from a multi-threaded process and must not touch a lock or the
 * allocator. It ignores SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN,
 * SIGTTOU, SIGPIPE, SIGUSR1 and SIGUSR2, and moves to its own process
 * group: a Ctrl-C on the terminal or a systemd SIGTERM to every process of
 * the unit must not make it kill Postgres early; its life is bound to the
 * socket, and the agent's orderly exit says goodbye first. (With systemd's
 * KillMode=control-group the postmaster gets SIGTERM directly anyway; with
 * KillMode=mixed only the agent gets it.) Only SIGKILL ends it abruptly,
 * which the agent notices (fence_check) and answers with a new fence.
 *
 * Error convention: bool + a message in err; nothing here logs.
 */
#ifndef BATON_FENCE_H
#define BATON_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* After SIGQUIT, the fence waits this long for the postmaster to exit
 * before it sends SIGKILL. An immediate shutdown takes milliseconds; half a
 * second lands the SIGKILL before the lease can expire for any ttl >= 2
 * (the leader's margin, ha_lease_margin, is at least 0.5 s then). */
#define FENCE_KILL_AFTER 0.5

/* After the agent died, how long the fence waits (after FENCE_KILL_AFTER)
 * for the postmaster's exit and its process group to empty before it gives
 * up revoking the leader lease (the lease then expires by itself). */
#define FENCE_REVOKE_WAIT 2.0

/* The pre-started revoker (see above): how long it may take for the revoke
 * once handed the lease (the fence then falls back to a fresh revoker),
 * how often it refreshes its etcd connection and token while it waits
 * (one read of the leader key), and how long the fence waits before it
 * starts another after one exited. */
#define FENCE_REVOKER_BUDGET 2.0
#define FENCE_REVOKER_WARM 30.0
#define FENCE_REVOKER_RETRY 30.0

struct fence;

/* What the fence process did, read back by fence_next_report(). */
enum fence_report_kind {
	FENCE_FIRED = 1,  /* deadline passed: SIGQUIT sent to the postmaster */
	FENCE_KILLED = 2, /* still alive FENCE_KILL_AFTER later: SIGKILL sent */
	FENCE_EXITED = 3, /* the fenced postmaster has exited */
	FENCE_GONE = 4,   /* deadline passed but the postmaster had already exited */
};

struct fence_report {
	enum fence_report_kind kind;
	pid_t pid;   /* the postmaster */
	double late; /* FENCE_FIRED: seconds past the deadline when it fired */
	double at;   /* monotonic seconds (clk_mono) when it happened */
};

/* Forks the fence process. Call it before other threads hold locks the
 * child could need (it needs none, but say so anyway). NULL + err. */
struct fence *fence_start(char *err, size_t errlen) __attribute__((warn_unused_result));

/* What the fence knows when the agent's socket has closed (see above). */
struct fence_revoke_facts {
	bool agent_gone;        /* the socket closed without a goodbye (not a poll error) */
	int64_t lease;          /* the leader lease the agent named last; 0 = none */
	pid_t postmaster;       /* the registered postmaster; 0 = none */
	bool own_group;         /* it led its own process group when registered */
	bool postmaster_exited; /* its pidfd is readable (or kill() says ESRCH) */
	bool group_live;        /* a process of its group still runs (not a zombie) */
};

/* May the fence revoke the leader lease? True only when all of the above
 * make it certain that nothing of the old primary can write. Pure and
 * async-signal-safe (the fence process calls it). */
bool fence_revoke_certain(const struct fence_revoke_facts *f);

/* The pre-started revoker reads the fence's line on this inherited pipe
 * fd; its stdin is /dev/null (a same-user process can write to
 * /proc/PID/fd/0, so the line is a claim it checks, not an order). */
#define FENCE_REVOKER_FD 3

/* A revoke request as the pre-started revoker sees it, with what it
 * observed itself when the line came. */
struct fence_revoker_claim {
	int64_t lease;          /* the lease the line names */
	int64_t expected_lease; /* the lease the fence gave it at start (--revoke-lease) */
	long long postmaster;   /* the postmaster the line names */
	bool postmaster_gone;   /* kill(postmaster, 0) said ESRCH (or /proc shows a zombie) */
	bool agent_gone;        /* the same of the agent's pid given at start (--agent) */
	bool fence_parent;      /* its parent is still the fence that started it */
};

/* Why the pre-started revoker must not act on c, or NULL when the claim
 * holds: the lease is the one it was started for, the postmaster (pid > 1)
 * and the agent are gone, and the fence that started it still is its
 * parent. Pure; the string is static. */
const char *fence_revoker_refusal(const struct fence_revoker_claim *c);

/* The binary the fence runs to revoke a lease (NULL = this process's own,
 * from /proc/self/exe) and the config file it passes with -c (made
 * absolute here). Call it before fence_start (the fence keeps copies in
 * static buffers: it cannot allocate). Without it, the fence never
 * revokes. False + err when a path cannot be resolved or is too long. */
bool fence_set_revoker(const char *exe, const char *config_path, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Registers the postmaster that may write (pid 0 = none) and the deadline
 * (CLOCK_MONOTONIC seconds; the fence fires once now >= deadline, so 0 with
 * a pid means "at once"), and the leader lease to revoke should the agent
 * die (0 = none; see above). pidfd: the caller's pidfd of pid (see
 * fence_pidfd_open), or -1 to fall back to kill(pid) where pidfds do not
 * exist; the fence gets its own copy when the target is new (a different
 * pid, or the first message after fence_start). Only a change is sent.
 * False + err when the message could not be sent (fence gone or not
 * reading); the caller retries on its next call (the state is re-sent). */
bool fence_update(struct fence *f, pid_t pid, int pidfd, double deadline, int64_t lease, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* Next report from the fence process, without blocking. False = none. */
bool fence_next_report(struct fence *f, struct fence_report *r);

/* Is the fence process still running? False + a description ("killed by
 * signal 9") once it has exited; it is reaped then. */
bool fence_check(struct fence *f, char *why, size_t whylen);

/* The fence process's PID (for logs and tests). */
pid_t fence_pid(const struct fence *f);

/* Says goodbye (the fence exits without signalling), waits for it at most a
 * second (then SIGKILLs it) and frees f. NULL is fine. */
void fence_stop(struct fence *f);

/* pidfd_open(2) and pidfd_send_signal(2), which glibc 2.36 does not wrap
 * for every architecture: -1 + errno (ENOSYS on kernels before 5.3). */
int fence_pidfd_open(pid_t pid);
int fence_pidfd_signal(int pidfd, int sig);

#endif
