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
 * Between fork() and its exit the fence process only makes system calls
 * (poll, recvmsg, send, clock_gettime, pidfd_send_signal, kill, write): it
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
#include <sys/types.h>

/* After SIGQUIT, the fence waits this long for the postmaster to exit
 * before it sends SIGKILL. An immediate shutdown takes milliseconds; half a
 * second lands the SIGKILL before the lease can expire for any ttl >= 2
 * (the leader's margin, ha_lease_margin, is at least 0.5 s then). */
#define FENCE_KILL_AFTER 0.5

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
};

/* Forks the fence process. Call it before other threads hold locks the
 * child could need (it needs none, but say so anyway). NULL + err. */
struct fence *fence_start(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Registers the postmaster that may write (pid 0 = none) and the deadline
 * (CLOCK_MONOTONIC seconds; the fence fires once now >= deadline, so 0 with
 * a pid means "at once"). pidfd: the caller's pidfd of pid (see
 * fence_pidfd_open), or -1 to fall back to kill(pid) where pidfds do not
 * exist; the fence gets its own copy when the target is new (a different
 * pid, or the first message after fence_start). Only a change is sent.
 * False + err when the message could not be sent (fence gone or not
 * reading); the caller retries on its next call (the state is re-sent). */
bool fence_update(struct fence *f, pid_t pid, int pidfd, double deadline, char *err, size_t errlen)
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
