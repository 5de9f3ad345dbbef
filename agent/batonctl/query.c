/*
 * query.c - batonctl dsn and query, as patronictl has them: both pick one
 * member (pick_member: --member, or the first that plays --role, the leader
 * by default) from the cluster view. dsn prints its libpq connection string
 * (host and port as its member key publishes them, never a password); query
 * connects there with libpq and prints the rows of the SQL given.
 *
 * query is an operator's interactive tool, not the agent: it talks to libpq
 * directly (no pg/ wrapper, whose every call is bounded for the agent's
 * loop), with a connect timeout, and a query runs as long as the operator
 * lets it (Ctrl-C). The password comes from libpq's own sources (PGPASSWORD,
 * the password file); only when those have none and -U names the superuser
 * of the configuration file is that file's superuser password used, and
 * batonctl says so on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "agent/member_verify.h"

#define QUERY_MAX_SQL (1u << 20)

/* value as a conninfo value: as is when it needs no quotes, else '...'
 * with \' and \\. */
static void conninfo_value(const char *value, char *buf, size_t len)
{
	size_t o = 0;

	if (*value && !strpbrk(value, " \t\n'\\=")) {
		snprintf(buf, len, "%s", value);
		return;
	}
	if (len < 3) {
		buf[0] = '\0';
		return;
	}
	buf[o++] = '\'';
	for (const char *c = value; *c && o + 3 < len; c++) {
		if (*c == '\'' || *c == '\\')
			buf[o++] = '\\';
		buf[o++] = *c;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
}

int cmd_dsn(const char *config_path, const struct args *a)
{
	const struct ha_member *m;
	char host[300];
	struct ctl x;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	m = pick_member(&x, a);
	if (!m) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (!m->host[0] || m->port <= 0) {
		rc = failed("%s publishes no Postgres address", m->name);
		goto cleanup;
	}
	conninfo_value(m->host, host, sizeof(host));
	printf("host=%s port=%d\n", host, m->port);
cleanup:
	ctl_close(&x);
	return rc;
}

/* Reads the SQL of --file (- = stdin); malloc'd, NULL + reported. */
static char *read_sql(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = NULL;
	size_t len;

	if (!f) {
		failed("query: %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(QUERY_MAX_SQL + 1);
	if (!buf) {
		failed("out of memory");
	} else {
		len = fread(buf, 1, QUERY_MAX_SQL + 1, f);
		if (ferror(f) || len > QUERY_MAX_SQL) {
			failed("query: %s: %s", path, ferror(f) ? strerror(errno) : "larger than 1 MiB");
			free(buf);
			buf = NULL;
		} else {
			buf[len] = '\0';
		}
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* The rows as tsv (the delimiter between columns, column names first) or
 * a table (at most TABLE_MAX_COLS columns, cells cut at TABLE_CELL). */
static int print_rows_text(const PGresult *res, const struct args *a)
{
	int nf = PQnfields(res), nt = PQntuples(res);

	if (a->format == FMT_TABLE) {
		const char *heads[TABLE_MAX_COLS];
		struct table t = { (size_t)nf, heads, 0, NULL, 0 };

		if (nf > TABLE_MAX_COLS)
			return failed("query: --format table shows at most %d columns (this has %d): use tsv, json or "
			              "yaml",
			              TABLE_MAX_COLS, nf);
		for (int c = 0; c < nf; c++)
			heads[c] = PQfname(res, c);
		t.rows = calloc((size_t)nt + 1, sizeof(*t.rows));
		if (!t.rows)
			return failed("out of memory");
		for (int r = 0; r < nt; r++)
			for (int c = 0; c < nf; c++)
				snprintf(t.rows[r][c], TABLE_CELL, "%s",
				         PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c));
		t.n_rows = (size_t)nt;
		table_print(&t);
		free(t.rows);
		return EXIT_DONE;
	}
	for (int c = 0; c < nf; c++)
		printf("%s%s", c ? a->delimiter : "", PQfname(res, c));
	putchar('\n');
	for (int r = 0; r < nt; r++) {
		for (int c = 0; c < nf; c++)
			printf("%s%s", c ? a->delimiter : "", PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c));
		putchar('\n');
	}
	return EXIT_DONE;
}

/* The rows as a JSON/YAML array of objects (column -> text; NULL -> null). */
static int print_rows_doc(const PGresult *res, const struct args *a)
{
	int nf = PQnfields(res), nt = PQntuples(res), rc = EXIT_DONE;
	json_t *arr = json_array();

	for (int r = 0; arr && r < nt; r++) {
		json_t *o = json_object();

		for (int c = 0; o && c < nf; c++) {
			/* Postgres text is in the database's encoding; a value that
			 * is not UTF-8 is shown as null rather than dropped silently */
			json_t *v = PQgetisnull(res, r, c) ? json_null() : json_string(PQgetvalue(res, r, c));

			if (json_object_set_new(o, PQfname(res, c), v ? v : json_null()) != 0) {
				json_decref(o);
				o = NULL;
			}
		}
		if (!o || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (!arr || !print_value(arr, a->format, false))
		rc = failed("out of memory");
	json_decref(arr);
	return rc;
}

int cmd_query(const char *config_path, const struct args *a)
{
	const char *keys[16], *vals[16];
	const struct ha_member *m;
	struct args opts = *a;
	char port[16], *sql = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	struct ctl x;
	size_t n = 0;
	int rc;

	if (!!a->sql == !!a->file)
		return usage_error("query: give the SQL with -c SQL or --file FILE (one of them)");
	if (!a->format_given)
		opts.format = FMT_TSV;
	if (!opts.delimiter)
		opts.delimiter = "\t";
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	m = pick_member(&x, a);
	if (!m) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (!m->host[0] || m->port <= 0) {
		rc = failed("%s publishes no Postgres address", m->name);
		goto cleanup;
	}
	/* The address comes from etcd: confirm it with the member itself (its
	 * REST API, as the agent does before it sends a credential) before
	 * libpq may send any password there. With postgresql.tls, libpq
	 * verifies the server's certificate first, so an unanswered REST API
	 * (not a contradicting one) is tolerated. */
	{
		static struct mv_cache cache;

		if (!mv_confirm(&cache, &x.cfg, m, clk_mono(), x.cfg.postgresql.tls_cafile != NULL,
		                "batonctl query does not connect")) {
			rc = failed(
			        "query: %s's Postgres address %s:%d is not confirmed by its REST API; not connecting",
			        m->name, m->host, m->port);
			goto cleanup;
		}
	}
	if (a->file) {
		sql = read_sql(a->file);
		if (!sql) {
			rc = EXIT_FAILED;
			goto cleanup;
		}
	}
	snprintf(port, sizeof(port), "%d", m->port);
	keys[n] = "host", vals[n++] = m->host;
	keys[n] = "port", vals[n++] = port;
	keys[n] = "dbname", vals[n++] = a->dbname ? a->dbname : "postgres";
	keys[n] = "connect_timeout", vals[n++] = "5";
	keys[n] = "application_name", vals[n++] = "batonctl";
	if (a->user)
		keys[n] = "user", vals[n++] = a->user;
	if (x.cfg.postgresql.tls_cafile) {
		keys[n] = "sslmode", vals[n++] = "verify-full";
		keys[n] = "sslrootcert", vals[n++] = x.cfg.postgresql.tls_cafile;
		/* as the agent's own sessions: no cleartext or md5 password */
		keys[n] = "channel_binding", vals[n++] = "require";
	}
	keys[n] = NULL, vals[n] = NULL;
	conn = PQconnectdbParams(keys, vals, 0);
	/* libpq found no password (PGPASSWORD, the password file): the one of
	 * the config file, only for the superuser it names, and said */
	if (conn && PQstatus(conn) != CONNECTION_OK && PQconnectionNeedsPassword(conn) && a->user &&
	    x.cfg.postgresql.superuser_username && x.cfg.postgresql.superuser_password &&
	    strcmp(a->user, x.cfg.postgresql.superuser_username) == 0) {
		fprintf(stderr,
		        "batonctl: no password from libpq's sources: using the password of "
		        "postgresql.authentication.superuser (%s) from %s\n",
		        a->user, x.cfg.path);
		PQfinish(conn);
		keys[n] = "password", vals[n++] = x.cfg.postgresql.superuser_password;
		keys[n] = NULL, vals[n] = NULL;
		conn = PQconnectdbParams(keys, vals, 0);
	}
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		rc = failed("query: cannot connect to %s (%s:%d): %s", m->name, m->host, m->port,
		            conn ? PQerrorMessage(conn) : "out of memory");
		goto cleanup;
	}
	res = PQexec(conn, a->sql ? a->sql : sql);
	if (!res) {
		rc = failed("query on %s: %s", m->name, PQerrorMessage(conn));
		goto cleanup;
	}
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		if (opts.format == FMT_JSON || opts.format == FMT_YAML)
			rc = print_rows_doc(res, &opts);
		else
			rc = print_rows_text(res, &opts);
		break;
	case PGRES_COMMAND_OK:
		if (opts.format == FMT_JSON || opts.format == FMT_YAML) {
			json_t *none = json_array();

			rc = none && print_value(none, opts.format, false) ? EXIT_DONE : failed("out of memory");
			json_decref(none);
		} else
			printf("%s\n", PQcmdStatus(res));
		break;
	default:
		rc = failed("query on %s: %s%s%s", m->name, PQresultErrorMessage(res),
		            PQresultErrorField(res, PG_DIAG_SQLSTATE) ? " SQLSTATE " : "",
		            PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "");
	}
cleanup:
	PQclear(res);
	PQfinish(conn);
	free(sql);
	ctl_close(&x);
	return rc;
}
