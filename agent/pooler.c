/*
 * pooler.c - pausing and resuming PgBouncer's admin console (see pooler.h).
 *
 * PgBouncer's PAUSE stops handing server connections to clients and
 * returns once every server connection has gone back to the pool (in
 * transaction pooling: once every running transaction ended). Clients that
 * send a query meanwhile wait inside the pooler instead of failing; RESUME
 * lets them through, over new server connections once the old primary's
 * were closed by its shutdown. The pause is global to the pooler and
 * outlives the console connection that asked for it, which is why a PAUSE
 * that does not complete in time is undone by an explicit RESUME on a
 * fresh connection, and why a new leader sweeps its poolers once.
 *
 * The console speaks only the simple query protocol: the libpq seam sends
 * each command with pg_query_exec (PQsendQuery) on a connection opened by
 * pg_conn_new_console, which sends no startup options. One connection per
 * command: pauses are rare, and a fresh connection has no state to doubt.
 */
#include "agent/pooler.h"

#include <stdio.h>
#include <string.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "pg/pg_query.h"

enum pooler_result pooler_classify_error(const char *msg)
{
	/* PgBouncer 1.18's words (admin.c): "already suspended/paused",
	 * "pooler is not paused/suspended". */
	if (strstr(msg, "already suspended/paused") != NULL)
		return POOLER_ALREADY_PAUSED;
	if (strstr(msg, "not paused/suspended") != NULL)
		return POOLER_NOT_PAUSED;
	if (strstr(msg, "no answer within") != NULL || strstr(msg, "within the timeout") != NULL)
		return POOLER_TIMEOUT;
	return POOLER_FAILED;
}

static enum pooler_result libpq_exec(void *arg, const char *conninfo, const char *sql, double timeout, char *msg,
                                     size_t len)
{
	char full[2048];
	struct pg_conn *c = NULL;
	struct pg_err err;
	enum pooler_result r = POOLER_FAILED;
	int n;

	(void)arg;
	n = snprintf(full, sizeof(full), "%s dbname=pgbouncer", conninfo);
	if (n < 0 || (size_t)n >= sizeof(full)) {
		snprintf(msg, len, "the connection string is longer than %zu bytes", sizeof(full) - 20);
		return POOLER_FAILED;
	}
	c = pg_conn_new_console(full, timeout);
	if (c == NULL) {
		snprintf(msg, len, "out of memory");
		goto cleanup;
	}
	if (pg_query_exec(c, sql, &err)) {
		r = POOLER_OK;
		goto cleanup;
	}
	snprintf(msg, len, "%s", err.msg);
	r = pooler_classify_error(err.msg);
cleanup:
	pg_conn_free(c);
	explicit_bzero(full, sizeof(full));
	return r;
}

const struct pooler_io pooler_io_libpq = { .exec = libpq_exec, .arg = NULL };

/* "host:port" of a console for the log (never its password). */
static void pooler_name(const char *conninfo, char *buf, size_t len)
{
	char host[128], port[16];
	struct pg_err err;
	bool fh = false, fp = false;

	if (!pg_conninfo_value(conninfo, "host", host, sizeof(host), &fh, &err) ||
	    !pg_conninfo_value(conninfo, "port", port, sizeof(port), &fp, &err))
		fh = fp = false;
	snprintf(buf, len, "%s:%s", fh ? host : "?", fp ? port : "?");
}

void pooler_set_init(struct pooler_set *s, char *const *conninfos, size_t n, const struct pooler_io *io)
{
	memset(s, 0, sizeof(*s));
	s->io = io != NULL ? io : &pooler_io_libpq;
	if (n > POOLER_MAX) {
		log_warn("poolers: %zu listed, only the first %d are paused", n, POOLER_MAX);
		n = POOLER_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		/* config.c keeps them shorter (check_pooler_conninfo) */
		snprintf(s->p[i].conninfo, sizeof(s->p[i].conninfo), "%s", conninfos[i]);
		pooler_name(conninfos[i], s->p[i].name, sizeof(s->p[i].name));
	}
	s->n = n;
}

void pooler_set_clear(struct pooler_set *s)
{
	explicit_bzero(s->p, sizeof(s->p));
	s->n = 0;
	s->paused_at = 0;
}

static enum pooler_result run(const struct pooler_set *s, const struct pooler *p, const char *sql, double timeout,
                              char *msg, size_t len)
{
	msg[0] = '\0';
	return s->io->exec(s->io->arg, p->conninfo, sql, timeout, msg, len);
}

size_t pooler_pause_all(struct pooler_set *s, double pause_timeout)
{
	size_t paused = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct pooler *p = &s->p[i];
		char msg[600], msg2[600];
		double t0 = clk_mono();
		enum pooler_result r;

		if (p->paused) {
			paused++;
			continue;
		}
		r = run(s, p, "PAUSE", pause_timeout, msg, sizeof(msg));
		switch (r) {
		case POOLER_OK:
			log_info("paused pooler %s in %.0f ms", p->name, (clk_mono() - t0) * 1000.0);
			p->paused = true;
			break;
		case POOLER_ALREADY_PAUSED:
			log_warn("pooler %s was already paused (by hand, or by a switchover that did not finish): "
			         "counted as paused, it is resumed after this switchover",
			         p->name);
			p->paused = true;
			break;
		default:
			/* The pause stays in force after the console connection
			 * is gone (even a PAUSE still waiting): undo it. */
			log_warn("pooler %s: PAUSE %s (%s): resuming it, the switchover goes on without a pause there",
			         p->name, r == POOLER_TIMEOUT ? "did not complete in time" : "failed", msg);
			r = run(s, p, "RESUME", POOLER_CONSOLE_TIMEOUT, msg2, sizeof(msg2));
			if (r != POOLER_OK && r != POOLER_NOT_PAUSED) {
				/* Keep it marked: the resume after the switchover
				 * tries again. */
				log_error("pooler %s: RESUME after a failed PAUSE failed too: %s", p->name, msg2);
				p->paused = true;
			}
			break;
		}
		if (p->paused) {
			paused++;
			if (s->paused_at == 0)
				s->paused_at = clk_mono();
		}
	}
	return paused;
}

/* RESUME on p; true when it is not paused afterwards. */
static bool resume_one(struct pooler_set *s, struct pooler *p, const char *why, bool sweep)
{
	char msg[600];
	enum pooler_result r = run(s, p, "RESUME", POOLER_CONSOLE_TIMEOUT, msg, sizeof(msg));
	double held = s->paused_at > 0 ? clk_mono() - s->paused_at : 0;

	switch (r) {
	case POOLER_OK:
		if (sweep)
			log_warn("pooler %s was paused (left so by an agent that stopped mid-switchover?): resumed, %s",
			         p->name, why);
		else
			log_info("resumed pooler %s after %.0f ms paused: %s", p->name, held * 1000.0, why);
		if (p->fails > 0)
			log_info("pooler %s: RESUME succeeded after %u failed attempts", p->name, p->fails);
		p->paused = false;
		p->fails = 0;
		return true;
	case POOLER_NOT_PAUSED:
		if (sweep)
			log_debug("pooler %s is not paused", p->name);
		else
			log_warn("pooler %s was no longer paused when we resumed it (%s)", p->name, why);
		p->paused = false;
		p->fails = 0;
		return true;
	default:
		p->fails++;
		if (p->fails != 1 && p->fails % POOLER_LOG_EVERY != 0)
			return false;
		if (sweep) /* most often a pooler not running (yet): nothing of ours is paused there */
			log_warn("pooler %s: RESUME (%s) failed (attempt %u): %s; trying again every loop", p->name,
			         why, p->fails, msg);
		else
			log_error("pooler %s: RESUME failed (attempt %u): %s; its clients wait until it is resumed: trying "
			          "again every loop (or RESUME on its admin console)",
			          p->name, p->fails, msg);
		return false;
	}
}

bool pooler_resume_all(struct pooler_set *s, const char *why)
{
	bool ok = true;

	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].paused && !resume_one(s, &s->p[i], why, false))
			ok = false;
	if (ok)
		s->paused_at = 0;
	return ok;
}

bool pooler_resume_due(struct pooler_set *s, bool ready, const char *ready_why, double now, double timeout,
                       const char *observed)
{
	if (ready)
		return pooler_resume_all(s, ready_why);
	if (!s->overdue) {
		if (now - s->paused_at <= timeout)
			return false;
		log_warn("pooler_resume_timeout (%.1fs) passed since the pause: resuming the poolers anyway (last seen: "
		         "%s)",
		         timeout, observed);
		s->overdue = true;
	}
	return pooler_resume_all(s, "pooler_resume_timeout passed");
}

bool pooler_resume_any(struct pooler_set *s, const char *why)
{
	bool ok = true;

	for (size_t i = 0; i < s->n; i++) {
		if (s->p[i].swept)
			continue;
		if (resume_one(s, &s->p[i], why, !s->p[i].paused))
			s->p[i].swept = true;
		else
			ok = false;
	}
	if (ok)
		s->paused_at = 0;
	return ok;
}

size_t pooler_paused_count(const struct pooler_set *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->p[i].paused ? 1 : 0;
	return n;
}
