/*
 * pooler.h - PgBouncer's admin console, paused around a planned switchover
 * so that clients see a delay instead of an error.
 *
 * The old primary's agent pauses every pooler of its `poolers` setting
 * before it stops Postgres (PAUSE waits until each pooler has released its
 * server connections, so no transaction is cut), and resumes them once the
 * new primary takes writes and the address the poolers connect to
 * (`pooler_target`: HAProxy, a VIP, a DNS name) answers read-write; or at
 * once when the switchover is aborted and the old primary stays. A new
 * leader resumes its poolers too, once per timeline (retried until each
 * pooler was reached), for the case where
 * the agent that paused them died mid-switchover: a pooler is never left
 * paused for longer than a leader change takes.
 *
 *     struct pooler_set ps;
 *     pooler_set_init(&ps, cfg->poolers, cfg->n_poolers, NULL);
 *     pooler_pause_all(&ps, cfg->pooler_pause_timeout);
 *     ... stop Postgres, hand over ...
 *     pooler_resume_all(&ps, "the new primary takes writes");
 *
 * Every console call is bounded in time (PAUSE by the pause timeout, the
 * others by POOLER_CONSOLE_TIMEOUT) and goes through the io seam below,
 * which production fills with pg/'s bounded libpq calls (the simple query
 * protocol: the console knows no other) and unit tests with a fake.
 * Functions return nothing that must be checked: a pooler that cannot be
 * paused is switched over without a pause (logged), and one that cannot be
 * resumed is logged as an ERROR naming it; the switchover never waits on
 * a pooler for longer than the timeouts.
 */
#ifndef BATON_POOLER_H
#define BATON_POOLER_H

#include <stdbool.h>
#include <stddef.h>

#define POOLER_MAX 16
/* a console's connection string, at most (bytes with the NUL; the config
 * refuses longer ones) */
#define POOLER_CONNINFO_MAX 1024
/* seconds for a console connection and for RESUME */
#define POOLER_CONSOLE_TIMEOUT 2.0
/* A RESUME that keeps failing is tried every loop; its failure is logged
 * the first time and then every this many attempts. */
#define POOLER_LOG_EVERY 30

/* What a console command came back with. */
enum pooler_result {
	POOLER_OK,             /* the command completed */
	POOLER_ALREADY_PAUSED, /* PAUSE: "already suspended/paused" */
	POOLER_NOT_PAUSED,     /* RESUME: "pooler is not paused/suspended" */
	POOLER_TIMEOUT,        /* no answer within the timeout (PAUSE still waiting on a server connection) */
	POOLER_FAILED,         /* cannot connect, refused, any other error (msg says) */
};

/* The seam: run one console command (sql) on the console at conninfo
 * (without the dbname, which the implementation adds), bounded by timeout
 * seconds; on anything but POOLER_OK, msg gets one line. */
struct pooler_io {
	enum pooler_result (*exec)(void *arg, const char *conninfo, const char *sql, double timeout, char *msg,
	                           size_t len);
	void *arg;
};

/* The production seam: pg/'s bounded connections (pg_conn_new_console). */
extern const struct pooler_io pooler_io_libpq;

/* The classification of a console's error message (exposed for tests). */
enum pooler_result pooler_classify_error(const char *msg);

struct pooler {
	char name[160]; /* "host:port" of the console, for the log */
	/* a copy: a SIGHUP may replace the config while a pause is held */
	char conninfo[POOLER_CONNINFO_MAX];
	bool paused;    /* we paused it (or found it paused) and have not resumed it */
	bool swept;     /* pooler_resume_any reached it (RESUME done or "not paused") */
	unsigned fails; /* RESUMEs that failed in a row (bounds the log: POOLER_LOG_EVERY) */
};

struct pooler_set {
	size_t n;
	struct pooler p[POOLER_MAX];
	const struct pooler_io *io;
	double paused_at; /* monotonic, when the first pause completed (0: none) */
	bool overdue;     /* pooler_resume_due: the timeout passed (said once) */
};

/* Fills s for n consoles (beyond POOLER_MAX ignored, with a WARN); io NULL
 * means pooler_io_libpq. Copies the conninfos (pooler_set_clear wipes
 * them). */
void pooler_set_init(struct pooler_set *s, char *const *conninfos, size_t n, const struct pooler_io *io);

/* PAUSE on every console in order, each bounded by pause_timeout. A pooler
 * found already paused counts as paused (it is resumed with the others). A
 * PAUSE that times out or fails is undone at once (RESUME) and the pooler
 * goes on unpaused: a switchover is never held up by a pooler. Returns how
 * many poolers are paused now. */
size_t pooler_pause_all(struct pooler_set *s, double pause_timeout);

/* RESUME on every console we paused; "not paused" counts as done. A RESUME
 * that fails is logged as an ERROR (the first time and then every
 * POOLER_LOG_EVERY attempts) and left marked paused (returns false), so
 * that a caller tries again. `why` ends the log line. */
bool pooler_resume_all(struct pooler_set *s, const char *why);

/* The every-loop step of a held pause: resumes (pooler_resume_all) when
 * ready (the new primary takes writes; ready_why says who), or once
 * timeout seconds have passed since the pause (at now, monotonic) whatever
 * happened, with one WARN that says what was observed (observed: e.g.
 * "pooler_target answered: ..."). Once overdue it does not wait for ready
 * again: every call retries the RESUMEs that failed. true when none is
 * paused any more (the caller then clears s); idempotent. */
bool pooler_resume_due(struct pooler_set *s, bool ready, const char *ready_why, double now, double timeout,
                       const char *observed);

/* RESUME on every console not yet reached, whether or not we paused it (a
 * new leader's sweep for a pause an agent left behind). A pooler that was
 * paused is a WARN; one that was not, a debug line; one that failed, a
 * WARN (bounded as above) and it stays to be tried by the next call. true
 * once every pooler of s was reached. */
bool pooler_resume_any(struct pooler_set *s, const char *why);

/* Wipes the copies of the connection strings (they may hold passwords). */
void pooler_set_clear(struct pooler_set *s);

/* How many of s are paused by us now. */
size_t pooler_paused_count(const struct pooler_set *s);

#endif
