/*
 * writer.c - a test client that writes one row per tick and says which
 * writes were acknowledged, and by which server.
 *
 * The integration tests and the failover benchmark need a client that behaves
 * like a real application during a failover: it keeps one connection, made
 * through a (usually multi-host) libpq connection string such as
 *
 *   "host=127.0.0.1,127.0.0.1,127.0.0.1 port=A,B,C user=postgres
 *    dbname=postgres target_session_attrs=read-write"
 *
 * and on any error drops it and connects again on the next tick. Every tick
 * makes at most one connection attempt (libpq walks the host list inside it)
 * and one INSERT, each bounded by --timeout, so a hung server costs one tick's
 * budget, never a hang. For each acknowledged INSERT it prints
 *
 *   ack <id> <unix_time_ms> <server_port>
 *
 * and for each failure "err <unix_time_ms> <message>" (stdout, flushed per
 * line). Write unavailability is then the gap between two ack lines. Ids
 * increase by one per attempt, starting after the largest id already in the
 * table, so an ack always names a row that was committed exactly once.
 *
 * The connection is made with PQconnectStart/PQconnectPoll and the statement
 * is sent with PQsendQueryParams; both wait in poll() against a deadline
 * (libpq ignores connect_timeout in its non-blocking API, so the deadline is
 * ours). Runs for --duration seconds (0: until SIGTERM/SIGINT).
 *
 * Three options serve the fault-injection suite (tests/chaos), which runs
 * several writers at once and must tell servers apart when they share a
 * port: --table NAME writes into NAME instead of baton_writes (so writers
 * do not collide on ids), and --detail appends the server's address and its
 * timeline to each ack line:
 *
 *   ack <id> <unix_time_ms> <server_port> <server_addr> <timeline>
 *
 * The timeline is the one of the WAL insert position (from
 * pg_walfile_name(pg_current_wal_lsn())), which is the new one as soon as a
 * promotion ends, unlike pg_control_checkpoint()'s, which waits for the next
 * checkpoint. --host-timeout MS walks a multi-host conninfo one host at a
 * time with MS for each (libpq, non-blocking, would spend the whole
 * --timeout on a first host that drops packets). Without these options the
 * output and behaviour are unchanged.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctype.h>

#include <libpq-fe.h>

#include "tests/tools/tool_util.h"

/* Copies a libpq message into buf on one line (newlines become spaces,
 * trailing blanks dropped). */
static void one_line(char *buf, size_t len, const char *msg)
{
	size_t n = 0;

	if (len == 0)
		return;
	for (const char *p = msg ? msg : ""; *p && n + 1 < len; p++)
		buf[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}

/* Drops NOTICEs ("relation already exists, skipping") and WARNINGs sent
 * before a shutdown: the output is for acks and errors only. */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void report_err(const char *what, const char *msg)
{
	char line[512];

	one_line(line, sizeof(line), msg);
	printf("err %lld %s: %s\n", (long long)tool_unix_ms(), what, line[0] ? line : "unknown error");
	fflush(stdout);
}

/* Waits for fd to become readable (want_write false) or writable, until the
 * monotonic deadline. Returns 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, bool want_write, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - tool_mono_ms();
		struct pollfd pfd = { .fd = fd, .events = want_write ? POLLOUT : POLLIN };
		int rc;

		if (left <= 0)
			return 0;
		if (left > INT_MAX)
			left = INT_MAX;
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
		if (tool_stop_requested)
			return 0;
	}
}

/* Drives a started connection until it is made or the monotonic deadline
 * passes (timeout_ms is only for the message). Returns NULL (and writes
 * err) on failure; conn is finished then. */
static PGconn *connect_finish(PGconn *conn, int64_t deadline, int timeout_ms, char *err, size_t errlen)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (conn == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		one_line(err, errlen, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	while (st != PGRES_POLLING_OK) {
		int rc;

		if (st == PGRES_POLLING_FAILED) {
			one_line(err, errlen, PQerrorMessage(conn));
			PQfinish(conn);
			return NULL;
		}
		rc = wait_fd(PQsocket(conn), st == PGRES_POLLING_WRITING, deadline);
		if (rc <= 0) {
			snprintf(err, errlen, "connection not made within %d ms", timeout_ms);
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	PQsetNoticeProcessor(conn, quiet_notices, NULL);
	if (PQsetnonblocking(conn, 1) != 0) {
		one_line(err, errlen, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Connects within timeout_ms. Returns NULL (and writes err) on failure. */
static PGconn *connect_bounded(const char *conninfo, int timeout_ms, char *err, size_t errlen)
{
	return connect_finish(PQconnectStart(conninfo), tool_mono_ms() + timeout_ms, timeout_ms, err, errlen);
}

#define MAX_HOSTS 16
#define MAX_KEYWORDS 80

/* Splits a comma-separated list in place into at most max items. */
static int split_list(char *list, char **items, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok != NULL && n < max; tok = strtok_r(NULL, ",", &save))
		items[n++] = tok;
	return n;
}

/* With --host-timeout: walks the hosts of a (multi-host) conninfo in order
 * as libpq does, but gives each at most host_ms (and all of them together
 * timeout_ms). libpq's connect_timeout does not apply to the non-blocking
 * API, so without this a host that drops packets would use up the whole
 * budget of every attempt and the writer would never reach the next one. */
static PGconn *connect_per_host(const char *conninfo, int host_ms, int timeout_ms, char *err, size_t errlen)
{
	char *perr = NULL, hostbuf[1024] = "", portbuf[256] = "";
	char *hosts[MAX_HOSTS], *ports[MAX_HOSTS];
	const char *kw[MAX_KEYWORDS + 3], *val[MAX_KEYWORDS + 3];
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	int nkw = 0, nh, np;
	int64_t deadline = tool_mono_ms() + timeout_ms;
	PGconn *conn = NULL;

	if (opts == NULL) {
		one_line(err, errlen, perr ? perr : "out of memory");
		PQfreemem(perr);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0) {
			snprintf(hostbuf, sizeof(hostbuf), "%s", o->val);
		} else if (strcmp(o->keyword, "port") == 0) {
			snprintf(portbuf, sizeof(portbuf), "%s", o->val);
		} else if (strcmp(o->keyword, "hostaddr") == 0) {
			snprintf(err, errlen, "--host-timeout needs host= in the conninfo, not hostaddr=");
			goto cleanup;
		} else if (nkw < MAX_KEYWORDS) {
			kw[nkw] = o->keyword;
			val[nkw++] = o->val;
		}
	}
	nh = split_list(hostbuf, hosts, MAX_HOSTS);
	np = split_list(portbuf, ports, MAX_HOSTS);
	if (nh == 0) {
		hosts[0] = NULL; /* libpq's default host */
		nh = 1;
	}
	if (np > 1 && np != nh) {
		snprintf(err, errlen, "the conninfo lists %d hosts but %d ports", nh, np);
		goto cleanup;
	}
	snprintf(err, errlen, "no host answered");
	for (int i = 0; i < nh && conn == NULL; i++) {
		int64_t now = tool_mono_ms(), until = now + host_ms;
		int n = nkw;
		char one[512];

		if (now >= deadline)
			break;
		if (until > deadline)
			until = deadline;
		if (hosts[i] != NULL) {
			kw[n] = "host";
			val[n++] = hosts[i];
		}
		if (np > 0) {
			kw[n] = "port";
			val[n++] = ports[np == 1 ? 0 : i];
		}
		kw[n] = NULL;
		val[n] = NULL;
		conn = connect_finish(PQconnectStartParams(kw, val, 0), until, (int)(until - now), one, sizeof(one));
		/* A message cut short is still a message: the length is not checked. */
		if (conn == NULL && snprintf(err, errlen, "%s: %s", hosts[i] ? hosts[i] : "default host", one) < 0)
			snprintf(err, errlen, "no host answered");
	}
cleanup:
	PQconninfoFree(opts);
	return conn;
}

/* Runs one statement within timeout_ms. On success returns its last result
 * (caller PQclears); on failure NULL with the reason in err. After a failure
 * the connection must be dropped: a timed-out statement may still run. */
static PGresult *exec_bounded(PGconn *conn, const char *sql, int nparams, const char *const *params, int timeout_ms,
                              char *err, size_t errlen)
{
	int64_t deadline = tool_mono_ms() + timeout_ms;
	PGresult *res, *last = NULL;
	int flushed;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
		one_line(err, errlen, PQerrorMessage(conn));
		return NULL;
	}
	while ((flushed = PQflush(conn)) == 1) {
		if (wait_fd(PQsocket(conn), true, deadline) <= 0)
			goto timeout;
	}
	if (flushed < 0) {
		one_line(err, errlen, PQerrorMessage(conn));
		return NULL;
	}
	for (;;) {
		while (PQisBusy(conn)) {
			if (wait_fd(PQsocket(conn), false, deadline) <= 0)
				goto timeout;
			if (!PQconsumeInput(conn)) {
				one_line(err, errlen, PQerrorMessage(conn));
				PQclear(last);
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		PQclear(last);
		last = res;
	}
	if (last == NULL) {
		snprintf(err, errlen, "no result");
		return NULL;
	}
	if (PQresultStatus(last) != PGRES_COMMAND_OK && PQresultStatus(last) != PGRES_TUPLES_OK) {
		one_line(err, errlen, PQresultErrorMessage(last));
		PQclear(last);
		return NULL;
	}
	return last;
timeout:
	PQclear(last);
	snprintf(err, errlen, "statement not answered within %d ms", timeout_ms);
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: writer [--interval MS] [--duration S] [--timeout MS] [--host-timeout MS]\n"
	             "              [--table NAME] [--detail] CONNINFO\n"
	             "  inserts one row into baton_writes (or NAME) every MS milliseconds (default 100)\n"
	             "  for S seconds (default 0: until SIGTERM), each connect and statement\n"
	             "  bounded by --timeout MS (default 2000); prints \"ack ID UNIX_MS PORT\"\n"
	             "  per acknowledged insert (with --detail: \"ack ID UNIX_MS PORT ADDR TIMELINE\")\n"
	             "  and \"err UNIX_MS MESSAGE\" per failure. --host-timeout MS gives each host of\n"
	             "  a multi-host CONNINFO at most MS of a connection attempt.\n");
}

/* A table name we can paste into SQL unquoted: [a-z_][a-z0-9_]*, < 64 bytes. */
static bool table_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= 64 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return false;
	}
	return true;
}

/* The value of column col of the one-row result, or "?" when absent/NULL. */
static const char *field_or_unknown(const PGresult *res, int col)
{
	if (PQntuples(res) != 1 || PQnfields(res) <= col || PQgetisnull(res, 0, col))
		return "?";
	return PQgetvalue(res, 0, col);
}

int main(int argc, char **argv)
{
	long interval = 100, duration = 0, timeout = 2000, host_timeout = 0;
	const char *conninfo = NULL, *table = "baton_writes";
	bool detail = false;
	char sql_create[256], sql_max[160], sql_insert[512];
	PGconn *conn = NULL;
	bool table_ready = false;
	long long next_id = 0, acks = 0, errs = 0;
	int64_t end, next;

	for (int i = 1; i < argc; i++) {
		long *target = NULL, min = 0;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--interval") == 0) {
			target = &interval;
			min = 1;
		} else if (strcmp(argv[i], "--duration") == 0) {
			target = &duration;
		} else if (strcmp(argv[i], "--timeout") == 0) {
			target = &timeout;
			min = 1;
		} else if (strcmp(argv[i], "--host-timeout") == 0) {
			target = &host_timeout;
			min = 1;
		} else if (strcmp(argv[i], "--detail") == 0) {
			detail = true;
			continue;
		} else if (strcmp(argv[i], "--table") == 0) {
			if (i + 1 >= argc || !table_name_ok(argv[i + 1])) {
				fprintf(stderr, "writer: --table needs a name of lower-case letters, digits and _ "
				                "(not starting with a digit, under 64 bytes)\n");
				return 2;
			}
			table = argv[++i];
			continue;
		} else if (argv[i][0] != '-' && conninfo == NULL) {
			conninfo = argv[i];
			continue;
		} else {
			usage(stderr);
			return 2;
		}
		if (i + 1 >= argc || !tool_parse_int(argv[i + 1], min, 86400000, target)) {
			fprintf(stderr, "writer: %s needs a number\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (conninfo == NULL) {
		usage(stderr);
		return 2;
	}

	/* The name was checked above, so these cannot be cut short. */
	snprintf(sql_create, sizeof(sql_create),
	         "CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, at timestamptz DEFAULT now(), node text)",
	         table);
	snprintf(sql_max, sizeof(sql_max), "SELECT coalesce(max(id), 0) FROM %s", table);
	snprintf(sql_insert, sizeof(sql_insert),
	         "INSERT INTO %s (id, node) VALUES ($1, inet_server_port()::text) RETURNING inet_server_port()%s",
	         table,
	         detail ? ", coalesce(host(inet_server_addr()), 'local'), "
	                  "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
	                : "");

	tool_install_signals();
	setvbuf(stdout, NULL, _IOLBF, 0);

	next = tool_mono_ms();
	end = duration > 0 ? next + duration * 1000 : INT64_MAX;
	while (!tool_stop_requested && tool_mono_ms() < end) {
		char err[512];
		PGresult *res;

		if (conn == NULL) {
			if (host_timeout > 0)
				conn = connect_per_host(conninfo, (int)host_timeout, (int)timeout, err, sizeof(err));
			else
				conn = connect_bounded(conninfo, (int)timeout, err, sizeof(err));
			if (conn == NULL) {
				report_err("connect", err);
				errs++;
			}
		}
		if (conn != NULL && !table_ready) {
			res = exec_bounded(conn, sql_create, 0, NULL, (int)timeout, err, sizeof(err));
			if (res != NULL) {
				PQclear(res);
				res = exec_bounded(conn, sql_max, 0, NULL, (int)timeout, err, sizeof(err));
			}
			if (res == NULL) {
				report_err("create table", err);
				errs++;
				PQfinish(conn);
				conn = NULL;
			} else {
				long long max_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);

				if (max_id > next_id)
					next_id = max_id;
				table_ready = true;
				PQclear(res);
			}
		}
		if (conn != NULL && table_ready) {
			char idbuf[32];
			const char *params[1] = { idbuf };

			next_id++;
			snprintf(idbuf, sizeof(idbuf), "%lld", next_id);
			res = exec_bounded(conn, sql_insert, 1, params, (int)timeout, err, sizeof(err));
			if (res == NULL) {
				report_err("insert", err);
				errs++;
				PQfinish(conn);
				conn = NULL;
				/* the next primary may not have the table yet */
				table_ready = false;
			} else {
				long long at = (long long)tool_unix_ms();

				if (detail)
					printf("ack %lld %lld %s %s %s\n", next_id, at, field_or_unknown(res, 0),
					       field_or_unknown(res, 1), field_or_unknown(res, 2));
				else
					printf("ack %lld %lld %s\n", next_id, at, field_or_unknown(res, 0));
				fflush(stdout);
				acks++;
				PQclear(res);
			}
		}

		tool_pace(&next, interval);
	}
	if (conn != NULL)
		PQfinish(conn);
	printf("done acks %lld errs %lld\n", acks, errs);
	fflush(stdout);
	return 0;
}
