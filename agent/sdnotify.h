/*
 * sdnotify.h - tell systemd (or any service manager speaking its notify
 * protocol) how the agent is doing.
 *
 * With Type=notify in the unit, systemd considers baton started only after
 * sdnotify_ready(), shows the last sdnotify_status() line in
 * `systemctl status`, restarts the agent when WatchdogSec= passes without a
 * sdnotify_watchdog(), and knows a stop is under way after
 * sdnotify_stopping(). Outside systemd (NOTIFY_SOCKET unset or empty: a terminal, the
 * integration tests) every call does nothing and returns 0.
 *
 * When configure found libsystemd these go through its sd_notify(); else a
 * built-in sender speaks the same datagram protocol: one AF_UNIX SOCK_DGRAM
 * message of newline-separated VAR=value lines to the socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
 *
 * Return values follow sd_notify(3): > 0 sent, 0 nothing to do (no
 * NOTIFY_SOCKET), < 0 a negative errno (unusable NOTIFY_SOCKET, send
 * failed). The caller decides whether to log: a failure never affects the
 * agent's work, it only means systemd may not hear of it (and a missed
 * watchdog ping makes systemd restart the agent, which is what it is for).
 * All functions are safe to call from any thread of the main process.
 */
#ifndef BATON_SDNOTIFY_H
#define BATON_SDNOTIFY_H

/* READY=1: start-up is over (config loaded, loop running). */
int sdnotify_ready(void);

/* STATUS=<text>: one line for `systemctl status` ("leader, 2 replicas
 * streaming"). Newlines in the text become spaces; longer than 1024 bytes
 * is cut. */
int sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* WATCHDOG=1: the loop is alive. Send at least every interval/2. */
int sdnotify_watchdog(void);

/* STOPPING=1: shutdown (hand-over, Postgres stop) has begun. */
int sdnotify_stopping(void);

/* The watchdog interval systemd expects pings within, in seconds, from
 * $WATCHDOG_USEC; 0 when unset, unparsable, zero, or when $WATCHDOG_PID
 * names another process (the variables were inherited, not meant for us). */
double sdnotify_watchdog_interval(void);

#endif
