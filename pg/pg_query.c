/*
 * pg_query.c - bounded conversations with a running Postgres through libpq.
 *
 * The agent's loop must never wait on Postgres for longer than it chose, so
 * nothing here uses libpq's blocking calls. A connection is opened with
 * PQconnectStartParams/PQconnectPoll and poll() against a deadline; a
 * statement is sent with PQsendQuery on a non-blocking connection and its
 * results collected with PQconsumeInput/PQgetResult, again with poll()
 * against a deadline. Past the deadline the statement is cancelled.
 *
 * PQcancel itself blocks (it connects to the server and waits for it to
 * close that connection, which a stopped server never does), so it runs in
 * a short-lived child process that is SIGKILLed if it overruns. PQcancel
 * is async-signal-safe by design, which is what makes calling it in a
 * child of a multi-threaded process acceptable.
 *
 * All SQL goes through run(): it keeps the SQLSTATE in the error message
 * and drops the connection on a connection-class error (08xxx) or a broken
 * connection, so that the next call simply reconnects.
 *
 * Host names in a conninfo are resolved by libpq with a blocking
 * getaddrinfo(); the agent's conninfos use addresses (or hostaddr=).
 */
#include "pg/pg_query.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg/pg_ctl.h"
#include "pg/pg_data.h"

/* After a timeout: how long the cancel request and then the wait for the
 * cancelled statement to come back may take, each. */
#define CANCEL_GRACE 0.25

static void one_line_msg(const char *in, char *out, size_t len);

struct pg_conn {
	char *conninfo;
	double timeout;
	PGconn *conn;
	bool console; /* pg_conn_new_console: no startup options */
};

struct pg_conn *pg_conn_new(const char *conninfo, double timeout)
{
	struct pg_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->conninfo = strdup(conninfo != NULL ? conninfo : "");
	if (c->conninfo == NULL) {
		free(c);
		return NULL;
	}
	c->timeout = timeout > 0 ? timeout : 1.0;
	return c;
}

void pg_conn_reset(struct pg_conn *c)
{
	if (c != NULL && c->conn != NULL) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
}

void pg_conn_free(struct pg_conn *c)
{
	if (c == NULL)
		return;
	pg_conn_reset(c);
	free(c->conninfo);
	free(c);
}

struct pg_conn *pg_conn_new_console(const char *conninfo, double timeout)
{
	struct pg_conn *c = pg_conn_new(conninfo, timeout);

	if (c != NULL)
		c->console = true;
	return c;
}

bool pg_conninfo_value(const char *conninfo, const char *key, char *buf, size_t len, bool *found, struct pg_err *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	bool ok = false;

	*found = false;
	if (len > 0)
		buf[0] = '\0';
	if (opts == NULL) {
		char line[300];

		one_line_msg(msg != NULL ? msg : "out of memory", line, sizeof(line));
		pg_err_set(err, "not a valid connection string: %s", line);
		PQfreemem(msg);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		int n;

		if (strcmp(o->keyword, key) != 0 || o->val == NULL)
			continue;
		n = snprintf(buf, len, "%s", o->val);
		if (n < 0 || (size_t)n >= len) {
			pg_err_set(err, "connection string: %s is longer than %zu bytes", key, len > 0 ? len - 1 : 0);
			goto cleanup;
		}
		*found = true;
	}
	ok = true;
cleanup:
	PQconninfoFree(opts);
	return ok;
}

/* libpq's messages end with a newline and may span lines; one line for us. */
static void one_line_msg(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; in != NULL && in[i] != '\0' && j + 1 < len; i++) {
		char ch = in[i] == '\n' || in[i] == '\r' || in[i] == '\t' ? ' ' : in[i];

		if (ch == ' ' && (j == 0 || out[j - 1] == ' '))
			continue;
		out[j++] = ch;
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

/* Waits until sock is ready for events or deadline passes: 1 ready, 0
 * timed out, -1 error (errno set). */
static int wait_socket(int sock, short events, double deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = events };
		double left = deadline - pg_now();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Server notices (WARNING, NOTICE...) go to the log hook, never to
 * stderr as libpq's default processor would do. */
static void notice_to_log(void *arg, const char *message)
{
	char line[400];

	(void)arg;
	one_line_msg(message, line, sizeof(line));
	pg_log(PG_LOG_DEBUG, "server notice: %s", line);
}

/* Starts a connection and drives it until deadline. Returns the PGconn in
 * all cases but out of memory (NULL), with *ok telling whether it is usable;
 * on failure err says why and the caller still owns (and must PQfinish) the
 * PGconn, whose error message pg_ping inspects. */
static PGconn *connect_until(const char *conninfo, bool console, double deadline, bool *ok, struct pg_err *err)
{
	/* The agent's sessions run as the superuser: search_path is pinned to
	 * the catalog (pg_temp last), so that no function or operator of a
	 * schema some role can create in (named by a search_path from etcd,
	 * REST, ALTER ROLE or the file) runs in their place; and no timeout of
	 * the cluster's parameters cuts the agent's own sessions (it bounds
	 * its queries itself: a statement_timeout or idle_session_timeout of
	 * 1 ms from etcd made every node flap "Postgres does not answer"). */
	const char *const keys[] = { "dbname", "fallback_application_name", "options", NULL };
	const char *const vals[] = { conninfo, "baton",
		                     "-c search_path=pg_catalog,pg_temp -c statement_timeout=0 -c lock_timeout=0 "
		                     "-c idle_in_transaction_session_timeout=0 -c idle_session_timeout=0",
		                     NULL };
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char msg[400];
	PGconn *conn;

	/* A console (PgBouncer's admin console) refuses startup parameters
	 * it does not know ("unsupported startup parameter: options"). */
	const char *const console_keys[] = { "dbname", "fallback_application_name", NULL };

	*ok = false;
	conn = PQconnectStartParams(console ? console_keys : keys, vals, 1);
	if (conn == NULL) {
		pg_err_set(err, "connect: out of memory");
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	/* Verbose errors carry the SQLSTATE, which pg_ping looks for. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	if (PQstatus(conn) == CONNECTION_BAD) {
		one_line_msg(PQerrorMessage(conn), msg, sizeof(msg));
		pg_err_set(err, "connect: %s", msg);
		return conn;
	}
	for (;;) {
		int r;

		if (st == PGRES_POLLING_OK) {
			*ok = true;
			return conn;
		}
		if (st == PGRES_POLLING_FAILED) {
			one_line_msg(PQerrorMessage(conn), msg, sizeof(msg));
			pg_err_set(err, "connect: %s", msg);
			return conn;
		}
		/* The socket can change between calls (next host, SSL retry). */
		r = wait_socket(PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (r == 0) {
			pg_err_set(err, "connect: no answer from the server within the timeout");
			return conn;
		}
		if (r < 0) {
			pg_err_set(err, "connect: poll: %s", strerror(errno));
			return conn;
		}
		st = PQconnectPoll(conn);
	}
}

static bool ensure_connected(struct pg_conn *c, double deadline, struct pg_err *err)
{
	bool ok;

	if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK) {
		/* An idle connection has nothing to read, unless the server
		 * went away (EOF, perhaps after a FATAL message) or sent a
		 * notice. Notice a dead one now, before sending a statement
		 * into it, so that a restart of the server costs no failure.
		 * A FATAL message is read as a notice; the EOF after it comes
		 * with the next read, hence the loop. */
		bool dead = false;

		for (int i = 0; i < 4 && !dead; i++) {
			struct pollfd pfd = { .fd = PQsocket(c->conn), .events = POLLIN };

			if (poll(&pfd, 1, 0) == 0)
				break;
			dead = !PQconsumeInput(c->conn) || PQstatus(c->conn) != CONNECTION_OK || PQisBusy(c->conn);
		}
		if (!dead)
			return true;
		pg_log(PG_LOG_DEBUG, "connection closed by the server; reconnecting");
	}
	pg_conn_reset(c);
	c->conn = connect_until(c->conninfo, c->console, deadline, &ok, err);
	if (!ok) {
		pg_conn_reset(c);
		return false;
	}
	if (PQsetnonblocking(c->conn, 1) != 0) {
		pg_err_set(err, "connect: cannot make the connection non-blocking");
		pg_conn_reset(c);
		return false;
	}
	PQsetErrorVerbosity(c->conn, PQERRORS_DEFAULT);
	return true;
}

enum pg_ping_result pg_ping(const char *conninfo, double timeout)
{
	struct pg_err err;
	bool ok;
	PGconn *conn = connect_until(conninfo, false, pg_now() + timeout, &ok, &err);
	enum pg_ping_result r = PG_PING_NO_RESPONSE;

	if (conn == NULL)
		return PG_PING_NO_RESPONSE;
	if (ok) {
		r = PG_PING_OK;
	} else {
		const char *m = PQerrorMessage(conn);
		const char *p;

		/* As PQping does: a server that answered with an error is up
		 * (bad password, unknown database...), except for "cannot
		 * connect now" (57P03: starting, stopping, crash recovery). In
		 * verbose mode the SQLSTATE follows the severity: "FATAL:  57P03:". */
		if (strstr(m, ":  57P03:") != NULL) {
			r = PG_PING_REJECT;
		} else if (PQconnectionNeedsPassword(conn)) {
			r = PG_PING_OK;
		} else {
			for (p = strstr(m, ":  "); p != NULL; p = strstr(p + 1, ":  ")) {
				size_t k = 0;

				while (k < 5 &&
				       ((p[3 + k] >= '0' && p[3 + k] <= '9') || (p[3 + k] >= 'A' && p[3 + k] <= 'Z')))
					k++;
				if (k == 5 && p[8] == ':') {
					r = PG_PING_OK;
					break;
				}
			}
		}
	}
	PQfinish(conn);
	return r;
}

/* Sends a cancel request for the statement running on conn, bounded by
 * CANCEL_GRACE (see the comment at the top of the file). */
static void cancel_bounded(PGconn *conn)
{
	PGcancel *cancel = PQgetCancel(conn);
	double deadline = pg_now() + CANCEL_GRACE;
	pid_t pid;

	if (cancel == NULL)
		return;
	pid = fork();
	if (pid == 0) {
		char buf[256];

		_exit(PQcancel(cancel, buf, sizeof(buf)) ? 0 : 1);
	}
	if (pid > 0) {
		for (;;) {
			int status;
			pid_t r = waitpid(pid, &status, WNOHANG);
			struct timespec ts = { 0, 5 * 1000 * 1000 };

			if (r == pid || (r < 0 && errno != EINTR))
				break;
			if (pg_now() >= deadline) {
				(void)kill(pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				break;
			}
			nanosleep(&ts, NULL);
		}
	}
	PQfreeCancel(cancel);
}

/* Collects results until libpq has none left or deadline passes. Keeps the
 * first error result, else the last result, in *keep (caller clears it).
 * true when the statement is complete (PQgetResult gave NULL). */
static bool collect(PGconn *conn, double deadline, PGresult **keep, bool *broken)
{
	for (;;) {
		PGresult *res;

		while (PQisBusy(conn)) {
			int r = wait_socket(PQsocket(conn), POLLIN, deadline);

			if (r <= 0)
				return false;
			if (!PQconsumeInput(conn)) {
				*broken = true;
				return false;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			return true;
		switch (PQresultStatus(res)) {
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			/* Not something we ever run; the connection is unusable. */
			PQclear(res);
			*broken = true;
			return false;
		default:
			break;
		}
		if (*keep != NULL && PQresultStatus(*keep) == PGRES_FATAL_ERROR) {
			PQclear(res);
		} else {
			PQclear(*keep);
			*keep = res;
		}
	}
}

/* Runs sql on c and returns its result (PGRES_COMMAND_OK or TUPLES_OK) for
 * the caller to PQclear, or NULL with err set. `what` names the operation
 * in messages; the SQL itself is logged (at debug level) only when
 * log_sql is true, so statements holding secrets never reach the log. */
static PGresult *run(struct pg_conn *c, const char *what, const char *sql, bool log_sql, struct pg_err *err)
{
	double deadline = pg_now() + c->timeout;
	PGresult *res = NULL;
	bool broken = false;
	char msg[400];
	int r;

	if (!ensure_connected(c, deadline, err))
		return NULL;
	if (log_sql)
		pg_log(PG_LOG_DEBUG, "%s: %s", what, sql);
	if (!PQsendQuery(c->conn, sql)) {
		one_line_msg(PQerrorMessage(c->conn), msg, sizeof(msg));
		pg_err_set(err, "%s: cannot send the query: %s", what, msg);
		pg_conn_reset(c);
		return NULL;
	}
	while ((r = PQflush(c->conn)) == 1) {
		if (wait_socket(PQsocket(c->conn), POLLOUT, deadline) <= 0)
			break;
	}
	if (r != 0) {
		pg_err_set(err, "%s: cannot send the query (%s)", what, r < 0 ? "connection lost" : "timeout");
		pg_conn_reset(c);
		return NULL;
	}
	if (!collect(c->conn, deadline, &res, &broken)) {
		if (broken) {
			one_line_msg(PQerrorMessage(c->conn), msg, sizeof(msg));
			pg_err_set(err, "%s: connection lost: %s", what, msg);
			PQclear(res);
			pg_conn_reset(c);
			return NULL;
		}
		pg_err_set(err, "%s: no answer within %.2f s (statement cancelled)", what, c->timeout);
		cancel_bounded(c->conn);
		PQclear(res);
		res = NULL;
		/* Drain the cancelled statement so the connection can be reused;
		 * if it does not come back quickly, give the connection up. */
		if (!collect(c->conn, pg_now() + CANCEL_GRACE, &res, &broken) || broken ||
		    PQstatus(c->conn) != CONNECTION_OK)
			pg_conn_reset(c);
		PQclear(res);
		return NULL;
	}
	if (res == NULL) {
		pg_err_set(err, "%s: no result", what);
		return NULL;
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
		/* FATAL/PANIC: the server ends the session (e.g. 57P01 after
		 * pg_terminate_backend); 08xxx: the connection itself failed. */
		bool session_over = sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);

		one_line_msg(PQresultErrorMessage(res), msg, sizeof(msg));
		pg_err_set(err, "%s: %s (SQLSTATE %s)", what, msg[0] ? msg : PQresStatus(PQresultStatus(res)),
		           state != NULL ? state : "none");
		if (state == NULL || strncmp(state, "08", 2) == 0 || session_over || PQstatus(c->conn) != CONNECTION_OK)
			pg_conn_reset(c);
		PQclear(res);
		return NULL;
	}
	return res;
}

bool pg_query_exec(struct pg_conn *c, const char *sql, struct pg_err *err)
{
	PGresult *res = run(c, "query", sql, true, err);

	PQclear(res);
	return res != NULL;
}

bool pg_query_scalar(struct pg_conn *c, const char *sql, char *buf, size_t len, struct pg_err *err)
{
	PGresult *res = run(c, "query", sql, true, err);
	bool ok = false;
	int n;

	if (res == NULL)
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		pg_err_set(err, "query: expected one value, got %d rows of %d columns", PQntuples(res), PQnfields(res));
		goto cleanup;
	}
	n = snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	if (n < 0 || (size_t)n >= len) {
		pg_err_set(err, "query: value longer than %zu bytes", len);
		goto cleanup;
	}
	ok = true;
cleanup:
	PQclear(res);
	return ok;
}

bool pg_query_promote(struct pg_conn *c, struct pg_err *err)
{
	char out[16];

	if (!pg_query_scalar(c, "SELECT pg_catalog.pg_promote(false)", out, sizeof(out), err))
		return false;
	if (strcmp(out, "t") != 0) {
		pg_err_set(err, "pg_promote refused (not in recovery?)");
		return false;
	}
	return true;
}

bool pg_query_pending_restart(struct pg_conn *c, bool *pending, struct pg_err *err)
{
	char buf[8];

	if (!pg_query_scalar(c, "SELECT count(*) > 0 FROM pg_catalog.pg_settings WHERE pending_restart", buf,
	                     sizeof(buf), err))
		return false;
	*pending = strcmp(buf, "t") == 0;
	return true;
}

bool pg_query_checkpoint(struct pg_conn *c, struct pg_err *err)
{
	return pg_query_exec(c, "CHECKPOINT", err);
}

/* Text of a value of one row, or "" for NULL. */
static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

static uint64_t lsn_val(const PGresult *res, int row, int col)
{
	uint64_t v = 0;

	if (!PQgetisnull(res, row, col) && !pg_lsn_parse(PQgetvalue(res, row, col), &v))
		v = 0;
	return v;
}

static uint32_t u32_val(const PGresult *res, int row, int col, int base)
{
	const char *s = val(res, row, col);
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0 || end == s || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

/* A timestamp column given as extract(epoch FROM ...): unix seconds, 0 when
 * NULL or unreadable. */
static double epoch_val(const PGresult *res, int row, int col)
{
	const char *s = val(res, row, col);
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !(v > 0))
		return 0;
	return v;
}

/* The replication rows of a primary. */
static bool query_replicas(struct pg_conn *c, struct pg_state *out, struct pg_err *err)
{
	PGresult *res = run(c, "pg_stat_replication",
	                    "SELECT application_name, host(client_addr), state, sync_state, "
	                    "sent_lsn, write_lsn, flush_lsn, replay_lsn, usename, sync_priority "
	                    "FROM pg_catalog.pg_stat_replication ORDER BY pid",
	                    true, err);
	int n;

	if (res == NULL)
		return false;
	n = PQntuples(res);
	if (n > PG_MAX_REPLICAS)
		n = PG_MAX_REPLICAS;
	for (int i = 0; i < n; i++) {
		struct pg_replica_info *r = &out->replicas[i];

		snprintf(r->application_name, sizeof(r->application_name), "%s", val(res, i, 0));
		snprintf(r->client_addr, sizeof(r->client_addr), "%s", val(res, i, 1));
		snprintf(r->state, sizeof(r->state), "%s", val(res, i, 2));
		snprintf(r->sync_state, sizeof(r->sync_state), "%s", val(res, i, 3));
		r->sent_lsn = lsn_val(res, i, 4);
		r->write_lsn = lsn_val(res, i, 5);
		r->flush_lsn = lsn_val(res, i, 6);
		r->replay_lsn = lsn_val(res, i, 7);
		snprintf(r->usename, sizeof(r->usename), "%s", val(res, i, 8));
		r->sync_priority = (int)strtol(val(res, i, 9), NULL, 10);
	}
	out->n_replicas = n;
	PQclear(res);
	return true;
}

/*
 * Which timeline a server is on:
 * - a primary: the timeline in the name of the WAL file being written.
 *   pg_control_checkpoint() would lag behind a promotion until the next
 *   checkpoint, so it is not used there.
 * - a replica: the largest of the WAL receiver's received_tli (the
 *   timeline it is streaming now), the last checkpoint's timeline and the
 *   minimum recovery point's timeline (both from pg_control, which lag but
 *   cover the time when no WAL receiver runs). Timelines only grow along a
 *   server's history, so the largest is the most recent one.
 * Both branches are CASEs so one statement serves both roles; a promotion
 * between the two statements of pg_query_state only makes this call fail.
 */
static const char state_sql[] =
        "SELECT pg_catalog.pg_is_in_recovery(), "
        "(SELECT system_identifier FROM pg_catalog.pg_control_system())::text, "
        "CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL "
        "ELSE substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8) END, "
        "CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE pg_catalog.pg_current_wal_lsn() END, "
        "pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn(), "
        "(SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()), "
        "(SELECT min_recovery_end_timeline FROM pg_catalog.pg_control_recovery()), "
        "w.status, w.received_tli, w.sender_host, w.sender_port, "
        "CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_is_wal_replay_paused() END, "
        "current_setting('server_version_num'), "
        "extract(epoch FROM pg_catalog.pg_postmaster_start_time()), "
        "CASE WHEN pg_catalog.pg_is_in_recovery() "
        "THEN extract(epoch FROM pg_catalog.pg_last_xact_replay_timestamp()) END, "
        "CASE WHEN pg_catalog.pg_is_in_recovery() THEN (SELECT setting <> '' FROM pg_catalog.pg_settings "
        "WHERE name = 'restore_command') END "
        "FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_stat_wal_receiver AS w ON true";

bool pg_query_state(struct pg_conn *c, struct pg_state *out, struct pg_err *err)
{
	PGresult *res;
	char *end;
	const char *sysid;

	memset(out, 0, sizeof(*out));
	res = run(c, "server state", state_sql, true, err);
	if (res == NULL)
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) != 17) {
		pg_err_set(err, "server state: unexpected result shape (%d rows)", PQntuples(res));
		PQclear(res);
		return false;
	}
	out->in_recovery = strcmp(val(res, 0, 0), "t") == 0;
	sysid = val(res, 0, 1);
	errno = 0;
	out->system_identifier = strtoull(sysid, &end, 10);
	if (errno != 0 || end == sysid)
		out->system_identifier = 0;
	if (!out->in_recovery) {
		out->timeline = u32_val(res, 0, 2, 16);
		out->current_lsn = lsn_val(res, 0, 3);
	} else {
		uint32_t tli = u32_val(res, 0, 6, 10);
		uint32_t min_tli = u32_val(res, 0, 7, 10);
		uint32_t recv_tli = u32_val(res, 0, 9, 10);

		out->receive_lsn = lsn_val(res, 0, 4);
		out->replay_lsn = lsn_val(res, 0, 5);
		out->current_lsn = out->receive_lsn > out->replay_lsn ? out->receive_lsn : out->replay_lsn;
		if (min_tli > tli)
			tli = min_tli;
		if (recv_tli > tli)
			tli = recv_tli;
		out->timeline = tli;
		out->wal_receiver_streaming = strcmp(val(res, 0, 8), "streaming") == 0;
		snprintf(out->upstream_host, sizeof(out->upstream_host), "%s", val(res, 0, 10));
		out->upstream_port = (int)u32_val(res, 0, 11, 10);
		out->replay_paused = strcmp(val(res, 0, 12), "t") == 0;
		out->replay_timestamp = epoch_val(res, 0, 15);
		out->restore_command = strcmp(val(res, 0, 16), "t") == 0;
	}
	out->server_version = (int)u32_val(res, 0, 13, 10);
	out->postmaster_start = epoch_val(res, 0, 14);
	PQclear(res);
	if (out->timeline == 0) {
		pg_err_set(err, "server state: cannot tell the timeline");
		return false;
	}
	/* A replica may have cascading replicas too. */
	return query_replicas(c, out, err);
}

bool pg_query_ensure_role(struct pg_conn *c, const char *name, const char *password, bool replication,
                          struct pg_err *err)
{
	char *lit_name = NULL, *ident = NULL, *verifier = NULL, *lit_pw = NULL, *sql = NULL;
	PGresult *res = NULL;
	bool exists, ok = false;
	size_t len;

	if (name == NULL || name[0] == '\0' || password == NULL || password[0] == '\0') {
		pg_err_set(err, "ensure role: a name and a password are required");
		return false;
	}
	/* The escaping functions need a live connection (they follow its
	 * encoding and standard_conforming_strings). */
	if (!ensure_connected(c, pg_now() + c->timeout, err))
		return false;
	lit_name = PQescapeLiteral(c->conn, name, strlen(name));
	ident = PQescapeIdentifier(c->conn, name, strlen(name));
	/* The password travels as a SCRAM verifier computed here, so the
	 * plain text is neither sent nor visible in the server's statement
	 * log. Naming the algorithm keeps libpq from asking the server (a
	 * blocking query). */
	verifier = PQencryptPasswordConn(c->conn, password, name, "scram-sha-256");
	if (lit_name == NULL || ident == NULL || verifier == NULL) {
		pg_err_set(err, "ensure role %s: cannot escape or encrypt: out of memory or bad encoding", name);
		goto cleanup;
	}
	lit_pw = PQescapeLiteral(c->conn, verifier, strlen(verifier));
	if (lit_pw == NULL) {
		pg_err_set(err, "ensure role %s: cannot escape the password", name);
		goto cleanup;
	}
	len = strlen(lit_name) + 64;
	sql = malloc(len);
	if (sql == NULL ||
	    snprintf(sql, len, "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = %s", lit_name) >= (int)len) {
		pg_err_set(err, "ensure role %s: out of memory", name);
		goto cleanup;
	}
	res = run(c, "ensure role", sql, true, err);
	if (res == NULL)
		goto cleanup;
	exists = PQntuples(res) == 1 && strcmp(val(res, 0, 0), "0") != 0;
	free(sql);
	len = strlen(ident) + strlen(lit_pw) + 64;
	sql = malloc(len);
	if (sql == NULL || snprintf(sql, len, "%s ROLE %s LOGIN%s PASSWORD %s", exists ? "ALTER" : "CREATE", ident,
	                            replication ? " REPLICATION" : "", lit_pw) >= (int)len) {
		pg_err_set(err, "ensure role %s: out of memory", name);
		goto cleanup;
	}
	pg_log(PG_LOG_INFO, "%s role %s (login%s)", exists ? "updating" : "creating", name,
	       replication ? ", replication" : "");
	PQclear(res);
	res = run(c, "ensure role", sql, false, err);
	ok = res != NULL;
cleanup:
	PQclear(res);
	PQfreemem(lit_name);
	PQfreemem(ident);
	PQfreemem(verifier);
	PQfreemem(lit_pw);
	free(sql);
	return ok;
}

bool pg_query_grant_rewind(struct pg_conn *c, const char *name, struct pg_err *err)
{
	static const char *const fns[] = {
		"pg_catalog.pg_ls_dir(text, boolean, boolean)",
		"pg_catalog.pg_stat_file(text, boolean)",
		"pg_catalog.pg_read_binary_file(text)",
		"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
	};
	char *ident = NULL, sql[512];
	bool ok = false;

	if (name == NULL || name[0] == '\0') {
		pg_err_set(err, "grant rewind: a role name is required");
		return false;
	}
	if (!ensure_connected(c, pg_now() + c->timeout, err))
		return false;
	ident = PQescapeIdentifier(c->conn, name, strlen(name));
	if (ident == NULL) {
		pg_err_set(err, "grant rewind to %s: cannot escape the name", name);
		return false;
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		PGresult *res;

		if (snprintf(sql, sizeof(sql), "GRANT EXECUTE ON FUNCTION %s TO %s", fns[i], ident) >=
		    (int)sizeof(sql)) {
			pg_err_set(err, "grant rewind to %s: name too long", name);
			goto cleanup;
		}
		res = run(c, "grant rewind", sql, false, err);
		if (res == NULL)
			goto cleanup;
		PQclear(res);
	}
	/* A rewinding member asks a source whose pg_control lags its timeline
	 * for a CHECKPOINT (pg_query_rewind_source): Postgres 15 lets the
	 * predefined role pg_checkpoint do that; older servers lack it. */
	{
		PGresult *res = run(c, "grant rewind",
		                    "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pg_checkpoint'", false, err);
		bool has;

		if (res == NULL)
			goto cleanup;
		has = PQntuples(res) == 1;
		PQclear(res);
		if (has) {
			if (snprintf(sql, sizeof(sql), "GRANT pg_checkpoint TO %s", ident) >= (int)sizeof(sql)) {
				pg_err_set(err, "grant rewind to %s: name too long", name);
				goto cleanup;
			}
			res = run(c, "grant rewind", sql, false, err);
			if (res == NULL)
				goto cleanup;
			PQclear(res);
		}
	}
	ok = true;
cleanup:
	PQfreemem(ident);
	return ok;
}

/*
 * What pg_rewind (15) reads of its source: it takes the source's timeline
 * from the latest checkpoint in its pg_control, which on a standby moves to
 * a new timeline only with a restartpoint on it, and on a primary only with
 * the first checkpoint after its promotion. The timeline the server is on
 * now is judged as in pg_query_state.
 */
bool pg_query_rewind_source(struct pg_conn *c, struct pg_rewind_source *out, struct pg_err *err)
{
	PGresult *res;
	uint32_t min_tli, recv_tli;

	memset(out, 0, sizeof(*out));
	res = run(c, "rewind source",
	          "SELECT pg_catalog.pg_is_in_recovery(), "
	          "CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL "
	          "ELSE substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8) END, "
	          "(SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()), "
	          "(SELECT min_recovery_end_timeline FROM pg_catalog.pg_control_recovery()), "
	          "(SELECT received_tli FROM pg_catalog.pg_stat_wal_receiver)",
	          true, err);
	if (res == NULL)
		return false;
	if (PQntuples(res) != 1 || PQnfields(res) != 5) {
		pg_err_set(err, "rewind source: unexpected result shape (%d rows)", PQntuples(res));
		PQclear(res);
		return false;
	}
	out->in_recovery = strcmp(val(res, 0, 0), "t") == 0;
	out->checkpoint_timeline = u32_val(res, 0, 2, 10);
	if (!out->in_recovery) {
		out->timeline = u32_val(res, 0, 1, 16);
	} else {
		min_tli = u32_val(res, 0, 3, 10);
		recv_tli = u32_val(res, 0, 4, 10);
		out->timeline = out->checkpoint_timeline;
		if (min_tli > out->timeline)
			out->timeline = min_tli;
		if (recv_tli > out->timeline)
			out->timeline = recv_tli;
	}
	PQclear(res);
	if (out->timeline == 0 || out->checkpoint_timeline == 0) {
		pg_err_set(err, "rewind source: cannot tell its timelines");
		return false;
	}
	return true;
}

/* ---- replication slots ------------------------------------------------------ */

/* Slot names go into SQL text: only what Postgres itself accepts. */
static bool slot_name_ok(const char *name, struct pg_err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		pg_err_set(err, "invalid replication slot name \"%s\"", name ? name : "");
		return false;
	}
	return true;
}

bool pg_query_slots(struct pg_conn *c, struct pg_slot *out, size_t max, size_t *n, struct pg_err *err)
{
	PGresult *res = run(c, "pg_replication_slots",
	                    "SELECT slot_name, active, restart_lsn FROM pg_catalog.pg_replication_slots "
	                    "WHERE slot_type = 'physical' ORDER BY slot_name",
	                    true, err);
	int rows;

	*n = 0;
	if (res == NULL)
		return false;
	rows = PQntuples(res);
	for (int i = 0; i < rows && *n < max; i++) {
		struct pg_slot *s = &out[(*n)++];

		snprintf(s->name, sizeof(s->name), "%s", val(res, i, 0));
		s->active = strcmp(val(res, i, 1), "t") == 0;
		s->restart_lsn = lsn_val(res, i, 2);
	}
	PQclear(res);
	return true;
}

static bool slot_call(struct pg_conn *c, const char *what, const char *sql, struct pg_err *err)
{
	PGresult *res = run(c, what, sql, true, err);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

bool pg_query_slot_create(struct pg_conn *c, const char *name, struct pg_err *err)
{
	char sql[160];

	if (!slot_name_ok(name, err))
		return false;
	snprintf(sql, sizeof(sql), "SELECT pg_catalog.pg_create_physical_replication_slot('%s', true)", name);
	return slot_call(c, "create replication slot", sql, err);
}

bool pg_query_slot_drop(struct pg_conn *c, const char *name, struct pg_err *err)
{
	char sql[160];

	if (!slot_name_ok(name, err))
		return false;
	snprintf(sql, sizeof(sql), "SELECT pg_catalog.pg_drop_replication_slot('%s')", name);
	return slot_call(c, "drop replication slot", sql, err);
}

bool pg_query_logical_slots(struct pg_conn *c, struct pg_logical_slot *out, size_t max, size_t *n, struct pg_err *err)
{
	PGresult *res = run(c, "pg_replication_slots",
	                    "SELECT slot_name, database, plugin, active FROM pg_catalog.pg_replication_slots "
	                    "WHERE slot_type = 'logical' ORDER BY slot_name",
	                    true, err);
	int rows;

	*n = 0;
	if (res == NULL)
		return false;
	rows = PQntuples(res);
	for (int i = 0; i < rows && *n < max; i++) {
		struct pg_logical_slot *s = &out[(*n)++];

		snprintf(s->name, sizeof(s->name), "%s", val(res, i, 0));
		snprintf(s->database, sizeof(s->database), "%s", val(res, i, 1));
		snprintf(s->plugin, sizeof(s->plugin), "%s", val(res, i, 2));
		s->active = strcmp(val(res, i, 3), "t") == 0;
	}
	PQclear(res);
	return true;
}

bool pg_query_slot_create_logical(struct pg_conn *c, const char *name, const char *plugin, struct pg_err *err)
{
	char sql[240];

	if (!slot_name_ok(name, err))
		return false;
	if (!slot_name_ok(plugin, err)) {
		pg_err_set(err, "invalid output plugin name \"%s\"", plugin ? plugin : "");
		return false;
	}
	snprintf(sql, sizeof(sql), "SELECT pg_catalog.pg_create_logical_replication_slot('%s', '%s')", name, plugin);
	return slot_call(c, "create logical replication slot", sql, err);
}

bool pg_query_slot_advance(struct pg_conn *c, const char *name, uint64_t lsn, struct pg_err *err)
{
	char sql[200];

	if (!slot_name_ok(name, err))
		return false;
	snprintf(sql, sizeof(sql), "SELECT pg_catalog.pg_replication_slot_advance('%s', '%X/%X')", name,
	         (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
	return slot_call(c, "advance replication slot", sql, err);
}
