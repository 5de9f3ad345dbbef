/*
 * check_pg.c - tests of the pg/ library, most of them against real
 * PostgreSQL 15 servers that the tests start themselves.
 *
 * Everything lives in a mkdtemp() directory under /tmp (data directories,
 * logs, the pgpass file, the unix sockets); servers listen on 127.0.0.1 on
 * ports the kernel picked as free. Every postmaster pid the tests start is
 * appended to a "pids" file in that directory: the teardown, which runs in
 * Check's parent process even when a test failed, stops whatever of those
 * is still alive (after checking from /proc that it is one of ours) and
 * removes the directory. Postmasters started by a forked test die with it
 * anyway: their parent-death signal is the very feature under test.
 *
 * Postgres refuses to run as root: run as an unprivileged user, e.g.
 *   runuser -u baton -- ./tests/check_pg
 * Set PG_TEST_VERBOSE=1 to see the library's log lines on stderr.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg/pg_conf.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"
#include "pg/pg_err.h"
#include "pg/pg_query.h"
#include "pg/pg_spawn.h"
#include "tests/skip.h"

/* Passwords with every character that needs escaping somewhere. */
#define SUPER_USER "postgres"
#define SUPER_PW "su'per:pw\\x"
#define REPL_USER "repl"
#define REPL_PW "repl pw'2:x"

static char base[128]; /* the test's temporary directory */
static char pgpass[256];
static bool secret_logged; /* a password reached the log hook */

/* ---------------------------------------------------------------- helpers */

static void hook(enum pg_log_level level, const char *msg)
{
	if (strstr(msg, "su'per") != NULL || strstr(msg, "repl pw") != NULL)
		secret_logged = true;
	if (getenv("PG_TEST_VERBOSE") != NULL)
		fprintf(stderr, "[pg %d] %s\n", (int)level, msg);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void path_in_base(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", base, name);

	ck_assert(n > 0 && (size_t)n < len);
}

static char *read_file(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot create %s", path);
	ck_assert(fputs(text, f) >= 0);
	ck_assert(fclose(f) == 0);
}

/* A loopback TCP port nobody listens on (the kernel's choice for port 0). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0);
	ck_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	ck_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A listening socket that never accepts: the kernel completes connections
 * in its backlog, nobody ever answers. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0);
	ck_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	ck_assert(listen(fd, 8) == 0);
	ck_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Fields of /proc/<pid>/stat; false when the process does not exist. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *close_paren;
	int pp, pg;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || sscanf(close_paren + 1, " %c %d %d", state, &pp, &pg) != 3)
		return false;
	*ppid = pp;
	*pgrp = pg;
	return true;
}

/* Alive and not a zombie. */
static bool proc_alive(pid_t pid)
{
	char st;
	pid_t pp, pg;

	return proc_stat(pid, &st, &pp, &pg) && st != 'Z' && st != 'X';
}

/* Our postmaster: its command line mentions the test directory. */
static bool proc_is_ours(pid_t pid)
{
	char path[64], buf[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return base[0] != '\0' && strstr(buf, base) != NULL;
}

static void record_pid(pid_t pid)
{
	char path[256];
	FILE *f;

	path_in_base(path, sizeof(path), "pids");
	f = fopen(path, "a");
	ck_assert(f != NULL);
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
}

/* -------------------------------------------------------------- fixtures */

static void base_setup(void)
{
	const char *users[] = { SUPER_USER, REPL_USER };
	const char *pws[] = { SUPER_PW, REPL_PW };
	struct pg_err err;

	pg_set_log_hook(hook);
	snprintf(base, sizeof(base), "/tmp/check_pg.XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(pgpass, sizeof(pgpass), "%s/pgpass", base);
	if (!pg_conf_write_pgpass(pgpass, users, pws, 2, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
}

/* Stops what the tests started (only pids they recorded, and only if /proc
 * says they run from the test directory), then removes the directory. */
static void base_teardown(void)
{
	char path[256], line[32];
	pid_t pids[64];
	int n = 0;
	FILE *f;
	struct pg_err err;

	snprintf(path, sizeof(path), "%s/pids", base);
	f = fopen(path, "r");
	while (f != NULL && n < 64 && fgets(line, sizeof(line), f) != NULL) {
		int pid = atoi(line);

		if (pid > 1)
			pids[n++] = pid;
	}
	if (f != NULL)
		fclose(f);
	for (int i = 0; i < n; i++) {
		if (proc_alive(pids[i]) && proc_is_ours(pids[i]))
			kill(pids[i], SIGQUIT);
	}
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 300 && proc_alive(pids[i]); k++) {
			(void)waitpid(pids[i], NULL, WNOHANG);
			sleep_ms(10);
		}
		if (proc_alive(pids[i]) && proc_is_ours(pids[i]))
			kill(-pids[i], SIGKILL);
		(void)waitpid(pids[i], NULL, WNOHANG);
	}
	if (!pg_datadir_remove(base, &err))
		fprintf(stderr, "check_pg: %s\n", err.msg);
	base[0] = '\0';
}

/* ------------------------------------------------------------ a Postgres */

struct node {
	char name[16];
	char dir[192];
	char log[200];
	int port;
	struct pg_paths paths;
	struct pg_child pm;
};

static void node_init(struct node *n, const char *name)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	path_in_base(n->dir, sizeof(n->dir), name);
	ck_assert((size_t)snprintf(n->log, sizeof(n->log), "%s.log", n->dir) < sizeof(n->log));
	n->port = free_port();
	n->paths.bin_dir = PG_BINDIR;
	n->paths.data_dir = n->dir;
	n->paths.log_file = n->log;
	n->paths.pgpass = pgpass;
}

/* Polls a child to its end, at most `timeout` seconds. */
static enum pg_child_state child_wait(struct pg_child *c, double timeout, struct pg_err *err)
{
	double deadline = pg_now() + timeout;
	enum pg_child_state st;

	while ((st = pg_child_poll(c, err)) == PG_CHILD_RUNNING && pg_now() < deadline)
		sleep_ms(10);
	if (st == PG_CHILD_RUNNING) {
		pg_child_kill(c, 1.0);
		snprintf(err->msg, sizeof(err->msg), "%s still running after %.0f s", c->what, timeout);
		return PG_CHILD_FAILED;
	}
	return st;
}

/* initdb with opts (NULL: the defaults), waited for. */
static void node_initdb_opts(struct node *n, const struct pg_initdb_opts *opts)
{
	struct pg_err err;
	struct pg_child c = { 0 };

	ck_assert_msg(pg_initdb_start(&n->paths, SUPER_USER, SUPER_PW, opts, &c, &err), "%s", err.msg);
	ck_assert_int_gt(c.pid, 0);
	ck_assert_msg(child_wait(&c, 30, &err) == PG_CHILD_OK, "initdb: %s (see %s)", err.msg, n->log);
	ck_assert_int_eq(c.pid, 0);
	pg_initdb_cleanup(&n->paths);
}

static void node_initdb(struct node *n)
{
	node_initdb_opts(n, NULL);
}

/* The value of one line of `pg_controldata DIR` ("Data page checksum
 * version"), into buf; false if the line is missing. */
static bool controldata_line(const char *dir, const char *label, char *buf, size_t len)
{
	char cmd[600], line[512];
	size_t ll = strlen(label);
	bool found = false;
	FILE *f;

	ck_assert((size_t)snprintf(cmd, sizeof(cmd), "LC_ALL=C '%s/pg_controldata' -D '%s'", PG_BINDIR, dir) <
	          sizeof(cmd));
	f = popen(cmd, "r");
	ck_assert_msg(f != NULL, "cannot run %s", cmd);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, label, ll) == 0 && line[ll] == ':') {
			const char *v = line + ll + 1;

			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
			found = true;
		}
	}
	pclose(f);
	return found;
}

static void conninfo(const struct node *n, const char *user, char *buf, size_t len)
{
	char qpass[300];

	ck_assert(pg_conninfo_quote(pgpass, qpass, sizeof(qpass)));
	ck_assert((size_t)snprintf(buf, len,
	                           "host=127.0.0.1 port=%d user=%s dbname=postgres passfile=%s sslmode=disable "
	                           "application_name=%s",
	                           n->port, user, qpass, n->name) < len);
}

/* postgresql.conf, pg_hba.conf, baton.recovery.conf and standby.signal for
 * a node: a replica of `upstream` when it is not NULL. */
static void node_configure(struct node *n, const struct node *upstream, const char *work_mem)
{
	char port[16], primary[512];
	struct pg_err err;
	const struct pg_param params[] = {
		{ "port", "1" }, /* overridden below: the last one wins */
		{ "listen_addresses", "127.0.0.1" },
		{ "unix_socket_directories", base },
		{ "wal_level", "replica" },
		{ "max_wal_senders", "5" },
		{ "wal_log_hints", "on" },
		{ "hot_standby", "on" },
		{ "wal_keep_size", "128MB" },
		{ "shared_buffers", "16MB" },
		{ "max_connections", "20" },
		{ "fsync", "off" },
		{ "lc_messages", "C" },
		{ "cluster_name", "it's \\ a test" },
		{ "PORT", port },
		{ "work_mem", work_mem != NULL ? work_mem : "4MB" },
	};
	const char *hba[] = {
		"local all all scram-sha-256",
		"host all all 127.0.0.1/32 scram-sha-256",
		"host replication " REPL_USER " 127.0.0.1/32 scram-sha-256",
	};

	snprintf(port, sizeof(port), "%d", n->port);
	ck_assert_msg(pg_conf_write(n->dir, params, sizeof(params) / sizeof(params[0]), &err), "%s", err.msg);
	ck_assert_msg(pg_conf_write_hba(n->dir, hba, 3, &err), "%s", err.msg);
	if (upstream != NULL) {
		char ci[400];

		conninfo(upstream, REPL_USER, ci, sizeof(ci));
		/* application_name must be this node's, not the upstream's */
		ck_assert((size_t)snprintf(primary, sizeof(primary), "%.*s application_name=%s",
		                           (int)(strstr(ci, " application_name=") - ci), ci,
		                           n->name) < sizeof(primary));
	} else {
		primary[0] = '\0';
	}
	ck_assert_msg(pg_conf_write_recovery(n->dir, primary, &err), "%s", err.msg);
	ck_assert_msg(pg_conf_set_standby(n->dir, upstream != NULL, &err), "%s", err.msg);
}

/* Starts the node's postmaster and waits (bounded) until it accepts
 * connections. */
static void node_start(struct node *n)
{
	char ci[400];
	struct pg_err err;
	double deadline;
	enum pg_ping_result r = PG_PING_NO_RESPONSE;

	ck_assert_msg(pg_postmaster_start(&n->paths, &n->pm, &err), "%s", err.msg);
	ck_assert_int_gt(n->pm.pid, 0);
	record_pid(n->pm.pid);
	conninfo(n, SUPER_USER, ci, sizeof(ci));
	deadline = pg_now() + 15;
	while (pg_now() < deadline && (r = pg_ping(ci, 1.0)) != PG_PING_OK) {
		ck_assert_msg(pg_child_poll(&n->pm, &err) == PG_CHILD_RUNNING, "%s: postgres ended: %s (see %s)",
		              n->name, err.msg, n->log);
		sleep_ms(20);
	}
	ck_assert_msg(r == PG_PING_OK, "%s: postgres not answering (see %s)", n->name, n->log);
}

static struct pg_conn *node_conn(const struct node *n, double timeout)
{
	char ci[400];
	struct pg_conn *c;

	conninfo(n, SUPER_USER, ci, sizeof(ci));
	c = pg_conn_new(ci, timeout);
	ck_assert(c != NULL);
	return c;
}

static void node_stop(struct node *n, enum pg_stop_mode mode, double bound)
{
	struct pg_err err;
	double t0 = pg_now();
	pid_t pid = n->pm.pid;

	ck_assert_msg(pg_postmaster_stop(&n->pm, mode, 10, &err), "%s", err.msg);
	ck_assert_msg(pg_now() - t0 < bound, "stop took %.2f s", pg_now() - t0);
	ck_assert_int_eq(n->pm.pid, 0);
	ck_assert(!proc_alive(pid));
}

/* ------------------------------------------------------- offline tests */

START_TEST(test_conf_postgresql)
{
	char dir[256], path[300];
	struct pg_err err;
	const struct pg_param params[] = {
		{ "port", "5433" }, { "cluster_name", "it's a\\b" }, { "work_mem", "4MB" },
		{ "Port", "6000" }, { "custom.setting", "" },
	};
	const struct pg_param bad_name[] = { { "bad name", "1" } };
	const struct pg_param bad_value[] = { { "work_mem", "4MB\nport = 1" } };
	const char *expect = "work_mem = '4MB'\n"
	                     "Port = '6000'\n"
	                     "custom.setting = ''\n"
	                     "include_if_exists = 'baton.recovery.conf'\n";
	const char *text;
	struct stat st;

	path_in_base(dir, sizeof(dir), "conf");
	ck_assert(mkdir(dir, 0700) == 0);
	ck_assert_msg(pg_conf_write(dir, params, 5, &err), "%s", err.msg);
	snprintf(path, sizeof(path), "%s/postgresql.conf", dir);
	text = read_file(path);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_null(strstr(text, "5433"));
	ck_assert_ptr_nonnull(strstr(text, "cluster_name = 'it''s a\\\\b'\n"));
	ck_assert_ptr_nonnull(strstr(text, expect));
	/* the include line is the very last line */
	ck_assert_str_eq(text + strlen(text) - strlen(expect), expect);
	ck_assert(stat(path, &st) == 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	ck_assert(!pg_conf_write(dir, bad_name, 1, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "bad name"));
	ck_assert(!pg_conf_write(dir, bad_value, 1, &err));
	/* a refused write leaves the previous file alone, and no temp file */
	ck_assert_ptr_nonnull(strstr(read_file(path), expect));
	snprintf(path, sizeof(path), "%s/postgresql.conf.baton-tmp", dir);
	ck_assert(access(path, F_OK) != 0);
	/* a directory that does not exist: an error naming the file */
	ck_assert(!pg_conf_write("/nonexistent/dir", params, 1, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir/postgresql.conf"));
}
END_TEST

START_TEST(test_conf_recovery_standby_hba)
{
	char dir[256], path[300];
	const char *lines[] = { "local all all peer", "host all all 10.0.0.0/8 scram-sha-256" };
	const char *bad[] = { "host all\nall" };
	struct pg_err err;
	const char *text;

	path_in_base(dir, sizeof(dir), "conf2");
	ck_assert(mkdir(dir, 0700) == 0);
	ck_assert_msg(pg_conf_write_recovery(dir, "host=10.0.0.1 passfile='/x/it\\'s'", &err), "%s", err.msg);
	snprintf(path, sizeof(path), "%s/baton.recovery.conf", dir);
	text = read_file(path);
	ck_assert_ptr_nonnull(strstr(text, "\nprimary_conninfo = 'host=10.0.0.1 passfile=''/x/it\\\\''s'''\n"
	                                   "recovery_target_timeline = 'latest'\n"));
	ck_assert(pg_conf_write_recovery(dir, NULL, &err));
	ck_assert_ptr_nonnull(strstr(read_file(path), "\nprimary_conninfo = ''\n"));
	ck_assert(pg_conf_write_recovery(dir, "", &err));
	ck_assert_ptr_nonnull(strstr(read_file(path), "\nprimary_conninfo = ''\n"));
	ck_assert(!pg_conf_write_recovery(dir, "host=a\nport=1", &err));

	snprintf(path, sizeof(path), "%s/standby.signal", dir);
	ck_assert(pg_conf_set_standby(dir, true, &err));
	ck_assert(access(path, F_OK) == 0);
	ck_assert(pg_conf_set_standby(dir, true, &err));
	ck_assert(pg_conf_set_standby(dir, false, &err));
	ck_assert(access(path, F_OK) != 0);
	ck_assert(pg_conf_set_standby(dir, false, &err));

	ck_assert(pg_conf_write_hba(dir, lines, 2, &err));
	snprintf(path, sizeof(path), "%s/pg_hba.conf", dir);
	ck_assert_ptr_nonnull(strstr(read_file(path), "\nlocal all all peer\nhost all all 10.0.0.0/8 scram-sha-256\n"));
	ck_assert(!pg_conf_write_hba(dir, bad, 1, &err));
}
END_TEST

START_TEST(test_conf_pgpass)
{
	char path[256];
	const char *users[] = { "a:b", "plain" };
	const char *pws[] = { "p\\w:d", "x" };
	const char *bad_pw[] = { "secret\nbreak" };
	struct pg_err err;
	struct stat st;

	path_in_base(path, sizeof(path), "pgpass.test");
	ck_assert_msg(pg_conf_write_pgpass(path, users, pws, 2, &err), "%s", err.msg);
	ck_assert_str_eq(read_file(path), "*:*:*:a\\:b:p\\\\w\\:d\n*:*:*:plain:x\n");
	ck_assert(stat(path, &st) == 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert(!pg_conf_write_pgpass(path, users, bad_pw, 1, &err));
	ck_assert_ptr_null(strstr(err.msg, "secret"));
}
END_TEST

/* The parameters only a node's own file may set (issue 10). */
START_TEST(test_code_params)
{
	static const char *const must[] = { "archive_command",
		                            "archive_cleanup_command",
		                            "restore_command",
		                            "recovery_end_command",
		                            "ssl_passphrase_command",
		                            "shared_preload_libraries",
		                            "session_preload_libraries",
		                            "local_preload_libraries",
		                            "dynamic_library_path",
		                            "archive_library",
		                            "jit_provider",
		                            "ssl_key_file",
		                            "ssl_cert_file",
		                            "ssl_ca_file",
		                            "data_directory",
		                            "config_file",
		                            "hba_file",
		                            "ident_file",
		                            "external_pid_file",
		                            "unix_socket_directories",
		                            "log_directory",
		                            "log_filename",
		                            "primary_conninfo",
		                            "primary_slot_name",
		                            "include",
		                            "include_if_exists",
		                            "include_dir",
		                            "promote_trigger_file",
		                            "recovery_target_time",
		                            "recovery_target_action" };
	static const char *const harmless[] = { "work_mem",
		                                "shared_buffers",
		                                "max_connections",
		                                "wal_level",
		                                "archive_mode",
		                                "archive_timeout",
		                                "log_min_messages",
		                                "ssl",
		                                "archive_commandx",
		                                "",
		                                "recovery_min_apply_delay",
		                                "hot_standby" };
	size_t n = 0;

	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		ck_assert_msg(pg_conf_param_runs_code(must[i]), "%s", must[i]);
	ck_assert(pg_conf_param_runs_code("ARCHIVE_COMMAND")); /* Postgres ignores case */
	ck_assert(pg_conf_param_runs_code("Shared_Preload_Libraries"));
	for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
		ck_assert_msg(!pg_conf_param_runs_code(harmless[i]), "%s", harmless[i]);
	ck_assert(!pg_conf_param_runs_code(NULL));
	while (pg_conf_code_param_at(n))
		ck_assert(pg_conf_param_runs_code(pg_conf_code_param_at(n++)));
	ck_assert_uint_ge(n, sizeof(must) / sizeof(must[0]));
}
END_TEST

/* Custom (dotted) parameters and the ones that turn off a permission
 * check are local-only too, each with its reason; names without a '.' that
 * merely look alike are not custom. */
START_TEST(test_custom_params)
{
	static const char *const custom[] = { "plperl.on_init",
		                              "plperl.on_plperlu_init",
		                              "pltcl.start_proc",
		                              "pltclu.start_proc",
		                              "plv8.start_proc",
		                              "PLPERL.ON_INIT",
		                              "auto_explain.log_min_duration",
		                              "a.b.c",
		                              "x." };
	static const char *const weakening[] = { "lo_compat_privileges", "LO_Compat_Privileges", "krb_caseins_users",
		                                 "session_replication_role" };
	static const char *const plain[] = { "work_mem",     "plperl_on_init",      "lo_compat_privilege",
		                             "row_security", "password_encryption", "" };

	for (size_t i = 0; i < sizeof(custom) / sizeof(custom[0]); i++) {
		ck_assert_msg(pg_conf_param_is_custom(custom[i]), "%s", custom[i]);
		ck_assert_msg(pg_conf_param_runs_code(custom[i]), "%s", custom[i]);
		ck_assert_str_eq(pg_conf_local_only_why(custom[i]),
		                 "it is an extension's custom parameter (a name with a '.'), and some of those run code "
		                 "(plperl.on_init, pltcl.start_proc, ...)");
	}
	for (size_t i = 0; i < sizeof(weakening) / sizeof(weakening[0]); i++) {
		ck_assert_msg(!pg_conf_param_is_custom(weakening[i]), "%s", weakening[i]);
		ck_assert_msg(pg_conf_param_runs_code(weakening[i]), "%s", weakening[i]);
		ck_assert_msg(strncmp(pg_conf_local_only_why(weakening[i]), "it turns off", 12) == 0 ||
		                      strstr(pg_conf_local_only_why(weakening[i]), "differs only in case") != NULL,
		              "%s: %s", weakening[i], pg_conf_local_only_why(weakening[i]));
	}
	ck_assert_str_eq(pg_conf_local_only_why("lo_compat_privileges"),
	                 "it turns off the permission checks on large objects");
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		ck_assert_msg(!pg_conf_param_is_custom(plain[i]), "%s", plain[i]);
		ck_assert_msg(!pg_conf_param_runs_code(plain[i]), "%s", plain[i]);
	}
	ck_assert(!pg_conf_param_is_custom(NULL));
	ck_assert_str_eq(pg_conf_local_only_why("archive_command"), "it runs or loads code");
}
END_TEST

START_TEST(test_conninfo_quote)
{
	char buf[32];

	ck_assert(pg_conninfo_quote("abc", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "'abc'");
	ck_assert(pg_conninfo_quote("it's a\\b", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "'it\\'s a\\\\b'");
	ck_assert(pg_conninfo_quote("", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "''");
	ck_assert(pg_conninfo_quote("abc", buf, 6));
	ck_assert_str_eq(buf, "'abc'");
	ck_assert(!pg_conninfo_quote("abc", buf, 5));
	ck_assert(!pg_conninfo_quote("a'", buf, 5));
}
END_TEST

/* Why a start failed, from the server's own log lines (issue 11). */
START_TEST(test_start_diagnose)
{
	struct pg_start_diag d;
	static const char params[] =
	        "2026-12-03 10:00:00.100 UTC [41] LOG:  starting PostgreSQL 15.5 on x86_64-pc-linux-gnu\n"
	        "2026-12-03 10:00:00.120 UTC [43] LOG:  entering standby mode\n"
	        "2026-12-03 10:00:00.121 UTC [44] FATAL:  the database system is starting up\n"
	        "2026-12-03 10:00:00.130 UTC [43] FATAL:  recovery aborted because of insufficient parameter settings\n"
	        "2026-12-03 10:00:00.130 UTC [43] DETAIL:  max_connections = 100 is a lower setting than on the primary "
	        "server, where its value was 150.\n"
	        "2026-12-03 10:00:00.130 UTC [43] HINT:  You can restart the server after making the necessary "
	        "configuration changes.\n"
	        "2026-12-03 10:00:00.131 UTC [41] LOG:  startup process (PID 43) exited with exit code 1\n"
	        "2026-12-03 10:00:00.131 UTC [41] LOG:  aborting startup due to startup process failure\n";
	static const char timeline[] =
	        "2026-12-03 10:00:00.130 UTC [43] LOG:  entering standby mode\n"
	        "2026-12-03 10:00:00.131 UTC [43] FATAL:  requested timeline 3 is not a child of this server's history\n"
	        "2026-12-03 10:00:00.131 UTC [43] DETAIL:  Latest checkpoint is at 0/3000060 on timeline 2, but in the "
	        "history of the requested timeline, the server forked off from that timeline at 0/3000000.\n"
	        "2026-12-03 10:00:00.131 UTC [41] LOG:  database system is shut down";
	static const char forked[] =
	        "LOG:  new timeline 2 forked off current database system timeline 1 before current recovery point "
	        "0/3000148\nFATAL:  terminating walreceiver process due to administrator command\n";
	static const char other[] =
	        "2026-12-03 10:00:00.100 UTC [41] LOG:  invalid value for parameter \"work_mem\": \"lots\"\n"
	        "2026-12-03 10:00:00.100 UTC [41] FATAL:  configuration file \"/d/postgresql.conf\" contains errors\n";
	static const char no_fatal[] = "postgres: could not access directory \"/nope\": No such file or directory\n\n";

	pg_start_diagnose_text(params, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_PARAMS);
	ck_assert_str_eq(d.param, "max_connections");
	ck_assert_int_eq(d.value, 100);
	ck_assert_int_eq(d.primary_value, 150);
	/* the startup process' FATAL, not the refused connection's, prefix stripped */
	ck_assert_str_eq(d.fatal_line, "FATAL:  recovery aborted because of insufficient parameter settings");
	ck_assert_str_eq(pg_start_failure_name(d.kind), "hot-standby parameters");

	pg_start_diagnose_text(timeline, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
	ck_assert_str_eq(d.fatal_line, "FATAL:  requested timeline 3 is not a child of this server's history");

	pg_start_diagnose_text(forked, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
	ck_assert_str_eq(d.fatal_line, "LOG:  new timeline 2 forked off current database system timeline 1 before "
	                               "current recovery point 0/3000148");

	/* Text a client or a remote chooses never counts as divergence: a user
	 * name in a refused connection's line, the upstream's error relayed by
	 * the walreceiver, a continuation line, a prefix imitating a tag. */
	{
		static const char *const attacks[] = {
			"2026-12-03 10:00:00.131 UTC [77] FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user "
			"\"is not a child of this server's history\", database \"x\", no encryption\n",
			"2026-12-03 10:00:00.131 UTC [77] FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user "
			"\"requested timeline 3 is not a child of this server's history\", database \"x\"\n",
			"2026-12-03 10:00:00.131 UTC [77] FATAL:  password authentication failed for user \"new "
			"timeline 9 forked off current database system timeline 1 before current recovery point 0/0\"\n",
			"2026-12-03 10:00:00.131 UTC [78] FATAL:  could not connect to the primary server: connection "
			"to server at \"10.0.0.9\", port 5432 failed: FATAL:  new timeline 9 forked off current "
			"database system timeline 1 before current recovery point 0/0\n",
			"2026-12-03 10:00:00.131 UTC [78] FATAL:  could not receive data from WAL stream: ERROR:  "
			"requested timeline 3 is not a child of this server's history\n",
			"2026-12-03 10:00:00.131 UTC [78] FATAL:  could not connect to the primary server: x\n"
			"\tFATAL:  requested timeline 3 is not a child of this server's history\n",
			"2026-12-03 10:00:00.131 UTC [79] FATAL:  requested timeline 3 is not a child of this server's "
			"history FATAL:  no pg_hba.conf entry\n",
			"2026-12-03 10:00:00.131 UTC [79] LOG:  connection authorized: user=requested timeline 3 is not "
			"a child of this server's history\n",
			"2026-12-03 10:00:00.131 UTC [79] ERROR:  requested timeline 3 is not a child of this "
			"server's history\n",
			"2026-12-03 10:00:00.131 UTC [79] LOG:  requested timeline 3 is not a child of this server's "
			"history, or is it\n",
			/* a client's RAISE reaches the log as ERROR, never FATAL */
			"2026-12-03 10:00:00.131 UTC [79] ERROR:  highest timeline 10 of the primary is behind "
			"recovery timeline 11\n",
			"2026-12-03 10:00:00.131 UTC [78] FATAL:  could not receive data from WAL stream: ERROR:  "
			"highest timeline 10 of the primary is behind recovery timeline 11\n",
			"2026-12-03 10:00:00.131 UTC [78] FATAL:  highest timeline 11 of the primary is behind "
			"recovery timeline 11\n",
		};

		for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
			pg_start_diagnose_text(attacks[i], &d);
			ck_assert_msg(d.kind != PG_START_FAIL_DIVERGED, "attack line %zu read as diverged", i);
		}
		pg_start_diagnose_text("2026-12-03 10:00:00.131 UTC [43] LOG:  new timeline 4 forked off current "
		                       "database system timeline 3 before current recovery point 0/5000148\n",
		                       &d);
		ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
		/* A standby ahead of its upstream (promoted, then made to follow
		 * a server that was not): the walreceiver's FATAL, repeated. */
		pg_start_diagnose_text("2026-12-03 10:00:00.131 UTC [80] FATAL:  highest timeline 10 of the primary "
		                       "is behind recovery timeline 11\n"
		                       "2026-12-03 10:00:05.131 UTC [81] LOG:  started streaming WAL from primary at "
		                       "0/5000000 on timeline 11\n",
		                       &d);
		ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
		ck_assert_str_eq(d.fatal_line,
		                 "FATAL:  highest timeline 10 of the primary is behind recovery timeline 11");
		pg_start_diagnose_text("2026-12-03 10:00:00.131 UTC [43] PANIC:  requested timeline 12 is not a "
		                       "child of this server's history\r\n",
		                       &d);
		ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
	}

	pg_start_diagnose_text(other, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_OTHER);
	ck_assert_str_eq(d.fatal_line, "FATAL:  configuration file \"/d/postgresql.conf\" contains errors");
	ck_assert_str_eq(d.param, "");

	pg_start_diagnose_text(no_fatal, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_OTHER);
	ck_assert_str_eq(d.fatal_line, "postgres: could not access directory \"/nope\": No such file or directory");

	pg_start_diagnose_text("", &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_OTHER);
	ck_assert_str_eq(d.fatal_line, "");
	pg_start_diagnose_text(NULL, &d);
	ck_assert_int_eq(d.kind, PG_START_FAIL_OTHER);

	/* From a file, only what this start wrote (from its offset on). */
	{
		char dir[] = "/tmp/check_pg_diag.XXXXXX", path[300];
		struct pg_err err;
		long from;
		FILE *f;

		ck_assert_ptr_nonnull(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/postgresql.log", dir);
		ck_assert_int_eq(pg_log_size(path), 0);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(timeline, f);
		fputs("\n", f);
		fclose(f);
		from = pg_log_size(path);
		ck_assert_int_eq(from, (long)strlen(timeline) + 1);
		f = fopen(path, "a");
		ck_assert_ptr_nonnull(f);
		fputs(params, f);
		fclose(f);
		ck_assert_msg(pg_start_diagnose(path, from, &d, &err), "%s", err.msg);
		ck_assert_int_eq(d.kind, PG_START_FAIL_PARAMS);
		ck_assert_msg(pg_start_diagnose(path, 0, &d, &err), "%s", err.msg);
		ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED); /* the whole file says both */
		ck_assert_msg(pg_start_diagnose(path, 1L << 40, &d, &err), "%s", err.msg); /* truncated since: all */
		ck_assert_int_eq(d.kind, PG_START_FAIL_DIVERGED);
		/* pg_rewind's output after `from`: did it find nothing to do? */
		{
			bool said = true;

			ck_assert_msg(pg_rewind_said_nothing_to_do(path, 0, &said, &err), "%s", err.msg);
			ck_assert(!said);
			from = pg_log_size(path);
			f = fopen(path, "a");
			ck_assert_ptr_nonnull(f);
			fputs("baton: running pg_rewind ...\npg_rewind: source and target cluster are on the same "
			      "timeline\npg_rewind: no rewind required\n",
			      f);
			fclose(f);
			ck_assert_msg(pg_rewind_said_nothing_to_do(path, from, &said, &err), "%s", err.msg);
			ck_assert(said);
			from = pg_log_size(path);
			f = fopen(path, "a");
			ck_assert_ptr_nonnull(f);
			fputs("pg_rewind: servers diverged at WAL location 0/6050E30 on timeline 5\n"
			      "LOG:  statement: SELECT 'pg_rewind: no rewind required'\npg_rewind: Done!\n",
			      f);
			fclose(f);
			ck_assert_msg(pg_rewind_said_nothing_to_do(path, from, &said, &err), "%s", err.msg);
			ck_assert(!said); /* only at the start of a line */
		}
		/* Recovery's unreadable-WAL lines: the last one, prefix dropped. */
		{
			char bad[64];

			from = pg_log_size(path);
			ck_assert_msg(pg_log_last_bad_wal(path, from, bad, sizeof(bad), &err), "%s", err.msg);
			ck_assert_str_eq(bad, "");
			f = fopen(path, "a");
			ck_assert_ptr_nonnull(f);
			fputs("2026-12-04 14:17:40.1 UTC [9] LOG:  invalid record length at 0/70EB6A8: wanted 24, got 0\n"
			      "2026-12-04 14:17:41.2 UTC [9] LOG:  started streaming WAL from primary at 0/7000000\n"
			      "2026-12-04 14:17:45.3 UTC [9] LOG:  invalid resource manager ID 32 at 0/603C1D0\n"
			      "2026-12-04 14:17:45.4 UTC [11] FATAL:  terminating walreceiver process due to administrator "
			      "command\n",
			      f);
			fclose(f);
			ck_assert_msg(pg_log_last_bad_wal(path, from, bad, sizeof(bad), &err), "%s", err.msg);
			ck_assert_str_eq(bad, "LOG:  invalid resource manager ID 32 at 0/603C1D0");
			ck_assert(!pg_log_last_bad_wal(path, from, bad, 0, &err));
		}
		unlink(path);
		ck_assert(!pg_start_diagnose(path, 0, &d, &err));
		ck_assert_int_eq(d.kind, PG_START_FAIL_UNKNOWN);
		ck_assert_msg(strstr(err.msg, path) != NULL, "%s", err.msg);
		{
			bool said = true;

			ck_assert(!pg_rewind_said_nothing_to_do(path, 0, &said, &err));
			ck_assert(!said);
		}
		rmdir(dir);
	}
}
END_TEST

START_TEST(test_lsn)
{
	static const struct {
		const char *text;
		uint64_t value;
	} ok[] = {
		{ "0/0", 0 },
		{ "0/3000148", 0x3000148 },
		{ "16/B374D848", 0x16B374D848ULL },
		{ "FFFFFFFF/FFFFFFFF", UINT64_MAX },
	};
	const char *bad[] = { "", "/", "0/", "/1", "1", "G/1", "1/2/3", "123456789/0", "0/123456789", "0/1 ", "-1/0" };
	char buf[32];
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(pg_lsn_parse(ok[i].text, &v), "%s", ok[i].text);
		ck_assert_uint_eq(v, ok[i].value);
		pg_lsn_format(v, buf, sizeof(buf));
		ck_assert_str_eq(buf, ok[i].text);
	}
	ck_assert(pg_lsn_parse("a/bc", &v));
	ck_assert_uint_eq(v, 0xA000000BCULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!pg_lsn_parse(bad[i], &v), "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_datadir_inspect_remove)
{
	char dir[256], path[300], outside[256];
	struct pg_err err;

	path_in_base(dir, sizeof(dir), "dd");
	ck_assert_int_eq(pg_datadir_inspect(dir), PG_DATADIR_MISSING);
	ck_assert(mkdir(dir, 0700) == 0);
	ck_assert_int_eq(pg_datadir_inspect(dir), PG_DATADIR_MISSING);
	snprintf(path, sizeof(path), "%s/PG_VERSION", dir);
	write_file(path, "15\n");
	ck_assert_int_eq(pg_datadir_inspect(dir), PG_DATADIR_INVALID);
	snprintf(path, sizeof(path), "%s/global", dir);
	ck_assert(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/global/pg_control", dir);
	write_file(path, "x");
	ck_assert_int_eq(pg_datadir_inspect(dir), PG_DATADIR_VALID);
	/* a file where a directory should be */
	ck_assert_int_eq(pg_datadir_inspect(path), PG_DATADIR_INVALID);

	/* removal: not through symlinks, refuses dangerous paths */
	path_in_base(outside, sizeof(outside), "outside");
	write_file(outside, "keep me");
	snprintf(path, sizeof(path), "%s/global/link", dir);
	ck_assert(symlink(outside, path) == 0);
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	ck_assert(mkdir(path, 0700) != 0); /* sanity: needs parents */
	snprintf(path, sizeof(path), "%s/a", dir);
	ck_assert(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	ck_assert(mkdir(path, 0700) == 0);

	ck_assert(!pg_datadir_remove("/", &err));
	ck_assert(!pg_datadir_remove("//", &err));
	ck_assert(!pg_datadir_remove("/./", &err));
	ck_assert(!pg_datadir_remove("relative/dir", &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "absolute"));
	ck_assert(!pg_datadir_remove("", &err));
	ck_assert(!pg_datadir_remove("/tmp/..", &err));
	ck_assert(!pg_datadir_remove("/tmp/../etc", &err));

	ck_assert_msg(pg_datadir_remove(dir, &err), "%s", err.msg);
	ck_assert(access(dir, F_OK) != 0);
	ck_assert_str_eq(read_file(outside), "keep me");
	ck_assert_int_eq(pg_datadir_inspect(dir), PG_DATADIR_MISSING);
	ck_assert(pg_datadir_remove(dir, &err)); /* already gone: fine */
}
END_TEST

START_TEST(test_controldata_errors)
{
	char dir[256];
	struct pg_err err;
	struct pg_controldata cd;

	path_in_base(dir, sizeof(dir), "empty");
	ck_assert(mkdir(dir, 0700) == 0);
	ck_assert(!pg_controldata_read(PG_BINDIR, dir, &cd, &err));
	ck_assert_msg(strstr(err.msg, "pg_controldata") != NULL, "%s", err.msg);
	ck_assert(!pg_controldata_read("/nonexistent", dir, &cd, &err));
	ck_assert_msg(strstr(err.msg, "127") != NULL, "%s", err.msg);
	ck_assert_str_eq(pg_db_state_name(PG_DB_SHUTDOWNED_IN_RECOVERY), "shut down in recovery");
	ck_assert_str_eq(pg_db_state_name(PG_DB_IN_PRODUCTION), "in production");
}
END_TEST

/* Children: an exec failure is reported with its status; a child that
 * hangs (pg_basebackup against a server that never answers) is killed. */
START_TEST(test_child_failures)
{
	struct node n;
	struct pg_paths bad;
	struct pg_child c = { 0 };
	struct pg_err err;
	char ci[128], pwfile[300];
	int lport, lfd;
	double t0;

	ck_assert_int_eq(pg_child_poll(&c, &err), PG_CHILD_NONE);
	pg_child_kill(&c, 1); /* no child: nothing happens */

	node_init(&n, "bogus");
	bad = n.paths;
	bad.bin_dir = "/nonexistent/bin";
	ck_assert_msg(pg_initdb_start(&bad, SUPER_USER, SUPER_PW, NULL, &c, &err), "%s", err.msg);
	ck_assert_int_eq(child_wait(&c, 5, &err), PG_CHILD_FAILED);
	ck_assert_msg(strstr(err.msg, "initdb") && strstr(err.msg, "status 127"), "%s", err.msg);
	ck_assert_ptr_nonnull(strstr(read_file(n.log), "baton: running /nonexistent/bin/initdb -D"));
	ck_assert_ptr_nonnull(strstr(read_file(n.log), "execve failed"));
	/* the password file exists until the cleanup, 0600, then is gone */
	snprintf(pwfile, sizeof(pwfile), "%s.baton-initdb-pw", n.dir);
	ck_assert_str_eq(read_file(pwfile), SUPER_PW "\n");
	pg_initdb_cleanup(&n.paths);
	ck_assert(access(pwfile, F_OK) != 0);
	ck_assert(!pg_initdb_start(&n.paths, SUPER_USER, "two\nlines", NULL, &c, &err));
	ck_assert_int_eq(c.pid, 0);

	lfd = silent_listener(&lport);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=%s", lport, REPL_USER);
	ck_assert_msg(pg_basebackup_start(&n.paths, ci, &c, &err), "%s", err.msg);
	sleep_ms(100);
	ck_assert_int_eq(pg_child_poll(&c, &err), PG_CHILD_RUNNING);
	t0 = pg_now();
	pg_child_kill(&c, 1.0);
	ck_assert_int_eq(c.pid, 0);
	ck_assert(pg_now() - t0 < 1.5);
	close(lfd);

	/* pg_basebackup refuses a non-empty target before starting anything */
	ck_assert(mkdir(n.dir, 0700) == 0 || errno == EEXIST);
	snprintf(pwfile, sizeof(pwfile), "%s/junk", n.dir);
	write_file(pwfile, "x");
	ck_assert(!pg_basebackup_start(&n.paths, ci, &c, &err));
	ck_assert_int_eq(c.pid, 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "not empty"));
}
END_TEST

START_TEST(test_connect_refused_fast)
{
	char ci[128], buf[16];
	struct pg_conn *c;
	struct pg_err err;
	double t0;

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=x dbname=x sslmode=disable", free_port());
	c = pg_conn_new(ci, 3.0);
	ck_assert(c != NULL);
	t0 = pg_now();
	ck_assert(!pg_query_scalar(c, "SELECT 1", buf, sizeof(buf), &err));
	ck_assert_msg(pg_now() - t0 < 0.5, "took %.2f s", pg_now() - t0);
	ck_assert_msg(strstr(err.msg, "connect") != NULL, "%s", err.msg);
	t0 = pg_now();
	ck_assert_int_eq(pg_ping(ci, 3.0), PG_PING_NO_RESPONSE);
	ck_assert(pg_now() - t0 < 0.5);
	pg_conn_free(c);

	/* a conninfo libpq cannot parse */
	c = pg_conn_new("host=127.0.0.1 nosuchkeyword=1", 1.0);
	ck_assert(!pg_query_exec(c, "SELECT 1", &err));
	ck_assert_msg(strstr(err.msg, "nosuchkeyword") != NULL, "%s", err.msg);
	pg_conn_free(c);
}
END_TEST

START_TEST(test_connect_silent_times_out)
{
	char ci[128], buf[16];
	struct pg_conn *c;
	struct pg_err err;
	double t0, took;
	int port, fd = silent_listener(&port);

	/* default sslmode (prefer): libpq waits for the answer to SSLRequest */
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=x dbname=x", port);
	c = pg_conn_new(ci, 0.5);
	t0 = pg_now();
	ck_assert(!pg_query_scalar(c, "SELECT 1", buf, sizeof(buf), &err));
	took = pg_now() - t0;
	ck_assert_msg(took >= 0.45 && took < 1.0, "took %.2f s", took);
	ck_assert_msg(strstr(err.msg, "within the timeout") != NULL, "%s", err.msg);
	t0 = pg_now();
	ck_assert_int_eq(pg_ping(ci, 0.3), PG_PING_NO_RESPONSE);
	took = pg_now() - t0;
	ck_assert_msg(took >= 0.25 && took < 0.8, "took %.2f s", took);
	pg_conn_free(c);
	close(fd);
}
END_TEST

/* A fake server that answers the startup packet with an error. */
struct fake_server {
	int fd;
	const char *sqlstate;
};

static bool read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 3000) != 1)
			return false;
		n = read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

static void *fake_server_main(void *arg)
{
	struct fake_server *f = arg;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	unsigned char msg[512];
	int conn;
	size_t len = 0;

	if (poll(&p, 1, 3000) != 1)
		return NULL;
	conn = accept(f->fd, NULL, NULL);
	if (conn < 0)
		return NULL;
	for (;;) {
		uint32_t n, code;

		if (!read_full(conn, &n, 4))
			goto done;
		n = ntohl(n);
		if (n < 8 || n > sizeof(msg) || !read_full(conn, msg, n - 4))
			goto done;
		memcpy(&code, msg, 4);
		code = ntohl(code);
		if (code != 80877103 && code != 80877104) /* SSLRequest, GSSENCRequest */
			break;
		if (write(conn, "N", 1) != 1)
			goto done;
	}
	/* ErrorResponse: 'E', int32 length, fields, terminator */
	msg[len++] = 'E';
	len += 4;
	len += (size_t)snprintf((char *)msg + len, sizeof(msg) - len, "SFATAL") + 1;
	len += (size_t)snprintf((char *)msg + len, sizeof(msg) - len, "VFATAL") + 1;
	len += (size_t)snprintf((char *)msg + len, sizeof(msg) - len, "C%s", f->sqlstate) + 1;
	len += (size_t)snprintf((char *)msg + len, sizeof(msg) - len, "Mthe fake server says no") + 1;
	msg[len++] = '\0';
	{
		uint32_t be = htonl((uint32_t)(len - 1));

		memcpy(msg + 1, &be, 4);
	}
	if (write(conn, msg, len) != (ssize_t)len)
		goto done;
done:
	close(conn);
	return NULL;
}

static enum pg_ping_result ping_fake(const char *sqlstate)
{
	struct fake_server f = { .sqlstate = sqlstate };
	pthread_t th;
	char ci[128];
	int port;
	enum pg_ping_result r;

	f.fd = silent_listener(&port);
	ck_assert(pthread_create(&th, NULL, fake_server_main, &f) == 0);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=x dbname=x gssencmode=disable", port);
	r = pg_ping(ci, 2.0);
	pthread_join(th, NULL);
	close(f.fd);
	return r;
}

START_TEST(test_ping_classifies_answers)
{
	/* "the database system is starting up" */
	ck_assert_int_eq(ping_fake("57P03"), PG_PING_REJECT);
	/* a server that rejects the password is up */
	ck_assert_int_eq(ping_fake("28P01"), PG_PING_OK);
	ck_assert_int_eq(ping_fake("3D000"), PG_PING_OK);
}
END_TEST

/* --------------------------------------------------------- with servers */

START_TEST(test_initdb_controldata)
{
	struct node n;
	struct pg_controldata cd;
	struct pg_err err;
	struct pg_child c = { 0 };
	char pwfile[300], buf[64];

	node_init(&n, "init");
	node_initdb(&n);
	snprintf(pwfile, sizeof(pwfile), "%s.baton-initdb-pw", n.dir);
	ck_assert(access(pwfile, F_OK) != 0);
	ck_assert_int_eq(pg_datadir_inspect(n.dir), PG_DATADIR_VALID);
	ck_assert_msg(pg_controldata_read(PG_BINDIR, n.dir, &cd, &err), "%s", err.msg);
	ck_assert(cd.system_identifier != 0);
	ck_assert_int_eq(cd.state, PG_DB_SHUTDOWNED);
	ck_assert_uint_eq(cd.checkpoint_timeline, 1);
	ck_assert(cd.checkpoint_lsn > 0);
	ck_assert_uint_eq(cd.min_recovery_end_lsn, 0);
	/* the hot-standby settings initdb chose (max_locks_per_transaction has no reason to differ) */
	ck_assert(cd.hs_valid);
	ck_assert_int_gt(cd.hs[0], 0);
	ck_assert_int_eq(cd.hs[4], 64);
	ck_assert_str_eq(pg_hot_standby_params[3].name, "max_prepared_transactions");
	ck_assert_ptr_nonnull(strstr(read_file(n.log), "baton: running " PG_BINDIR "/initdb -D"));
	ck_assert_ptr_null(strstr(read_file(n.log), "su'per"));

	/* data checksums by default, and the default locale */
	ck_assert_ptr_nonnull(strstr(read_file(n.log), "--data-checksums"));
	ck_assert_ptr_nonnull(strstr(read_file(n.log), "--locale=C.UTF-8"));
	ck_assert(controldata_line(n.dir, "Data page checksum version", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "1");

	/* postgres -C: the files as initdb wrote them pass; a typo, a value of
	 * the wrong type and one out of range are each named */
	{
		static const char *const bad[][2] = {
			{ "max_conections = 100\n", "unrecognized configuration parameter \"max_conections\"" },
			{ "max_connections = abc\n", "invalid value for parameter \"max_connections\": \"abc\"" },
			{ "shared_buffers = -5\n", "outside the valid range for parameter \"shared_buffers\"" },
			/* each value valid, the pair refused by the postmaster at start */
			{ "max_connections = 3\n",
			  "superuser_reserved_connections (3) must be less than max_connections (3)" },
		};
		char conf[400], *auto_conf;
		bool refused = true;

		ck_assert_msg(pg_config_check(PG_BINDIR, n.dir, &refused, &err), "%s", err.msg);
		ck_assert(!refused);
		snprintf(conf, sizeof(conf), "%s/postgresql.auto.conf", n.dir);
		auto_conf = strdup(read_file(conf));
		ck_assert_ptr_nonnull(auto_conf);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			FILE *f = fopen(conf, "a");

			ck_assert_ptr_nonnull(f);
			fputs(bad[i][0], f);
			fclose(f);
			ck_assert_msg(pg_config_check(PG_BINDIR, n.dir, &refused, &err), "%s", err.msg);
			ck_assert_msg(refused, "accepted %s", bad[i][0]);
			ck_assert_msg(strstr(err.msg, bad[i][1]) != NULL, "'%s' not in '%s'", bad[i][1], err.msg);
			f = fopen(conf, "w");
			ck_assert_ptr_nonnull(f);
			fputs(auto_conf, f);
			fclose(f);
		}
		ck_assert(!pg_config_check("/nonexistent", n.dir, &refused, &err));
		free(auto_conf);
	}

	/* initdb into a directory that is not empty fails, and says how */
	ck_assert_msg(pg_initdb_start(&n.paths, SUPER_USER, SUPER_PW, NULL, &c, &err), "%s", err.msg);
	ck_assert_int_eq(child_wait(&c, 30, &err), PG_CHILD_FAILED);
	ck_assert_msg(strstr(err.msg, "exited with status 1") != NULL, "%s", err.msg);
	pg_initdb_cleanup(&n.paths);
	ck_assert_int_eq(pg_datadir_inspect(n.dir), PG_DATADIR_VALID);

	/* bootstrap.initdb = { encoding = "LATIN1"; locale = "C"; data_checksums = false; } */
	{
		struct node m;
		const struct pg_initdb_opts o = { .encoding = "LATIN1", .locale = "C", .data_checksums = false };

		node_init(&m, "init-nosum");
		node_initdb_opts(&m, &o);
		ck_assert_ptr_null(strstr(read_file(m.log), "--data-checksums"));
		ck_assert(controldata_line(m.dir, "Data page checksum version", buf, sizeof(buf)));
		ck_assert_str_eq(buf, "0");
		ck_assert_ptr_nonnull(strstr(read_file(m.log), "-E LATIN1 --locale=C "));
	}
	ck_assert(!secret_logged);
}
END_TEST

/* The children get the agent's environment and the variables set for them,
 * but not systemd's variables for the main process: a Postgres built with
 * systemd support would answer on NOTIFY_SOCKET itself. */
START_TEST(test_spawn_env_without_notify_socket)
{
	struct pg_child c = { 0 };
	struct pg_err err;
	char log[300];
	const char *argv[] = { "/usr/bin/env", NULL };
	const char *set[] = { "IT_SET_FOR_CHILD=1", NULL };
	const struct pg_spawn_opts o = {
		.what = "env", .argv = argv, .env_set = set, .log_file = log, .out_fd = -1, .death_signal = SIGTERM
	};
	const char *text;

	path_in_base(log, sizeof(log), "env.log");
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "60000000", 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_PID", "1", 1), 0);
	ck_assert_int_eq(setenv("IT_KEPT", "yes", 1), 0);
	ck_assert_msg(pg_spawn(&o, &c, &err), "%s", err.msg);
	ck_assert_msg(child_wait(&c, 10, &err) == PG_CHILD_OK, "%s", err.msg);
	text = read_file(log);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, "\nIT_KEPT=yes\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "\nIT_SET_FOR_CHILD=1\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "NOTIFY_SOCKET=") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "WATCHDOG_USEC=") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "WATCHDOG_PID=") == NULL, "%s", text);
	/* the agent itself keeps them (agent/sdnotify.c reads them) */
	ck_assert_str_eq(getenv("NOTIFY_SOCKET"), "/run/systemd/notify");
}
END_TEST

/* a's argv joined by spaces into line. */
static void join_argv(const struct pg_initdb_argv *a, char *line, size_t len)
{
	size_t off = 0;

	line[0] = '\0';
	for (size_t i = 0; a->argv[i] != NULL; i++) {
		int w;

		ck_assert(i < sizeof(a->argv) / sizeof(a->argv[0]) - 1);
		w = snprintf(line + off, len - off, "%s%s", i ? " " : "", a->argv[i]);
		ck_assert(w > 0 && (size_t)w < len - off);
		off += (size_t)w;
	}
}

/* initdb's command line for each bootstrap.initdb setting, and refusals of
 * names initdb could take for options or that hold spaces. */
START_TEST(test_initdb_argv)
{
	struct pg_initdb_argv a;
	struct pg_err err;
	char line[1024];
	const struct pg_initdb_opts custom = { .encoding = "LATIN1",
		                               .locale = "de_DE.iso88591@euro",
		                               .data_checksums = false };
	const struct pg_initdb_opts empty = { .encoding = "", .locale = NULL, .data_checksums = true };
	static const char *const bad_names[] = { "", "-D/tmp", "UTF8 --no-sync", "C.UTF-8\n", "a'b", "$(x)", "x/y" };

	ck_assert_msg(pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", NULL, &err), "%s", err.msg);
	join_argv(&a, line, sizeof(line));
	ck_assert_str_eq(line, "/bin/initdb -D /d -U su --pwfile=/d.pw -E UTF8 --locale=C.UTF-8 --data-checksums "
	                       "--auth-local=scram-sha-256 --auth-host=scram-sha-256");
	ck_assert(pg_initdb_defaults.data_checksums);
	ck_assert(pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &pg_initdb_defaults, &err));
	join_argv(&a, line, sizeof(line));
	ck_assert_str_eq(line, "/bin/initdb -D /d -U su --pwfile=/d.pw -E UTF8 --locale=C.UTF-8 --data-checksums "
	                       "--auth-local=scram-sha-256 --auth-host=scram-sha-256");
	/* empty or unset names fall back to the defaults */
	ck_assert(pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &empty, &err));
	join_argv(&a, line, sizeof(line));
	ck_assert_str_eq(line, "/bin/initdb -D /d -U su --pwfile=/d.pw -E UTF8 --locale=C.UTF-8 --data-checksums "
	                       "--auth-local=scram-sha-256 --auth-host=scram-sha-256");
	ck_assert(pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &custom, &err));
	join_argv(&a, line, sizeof(line));
	ck_assert_str_eq(line, "/bin/initdb -D /d -U su --pwfile=/d.pw -E LATIN1 --locale=de_DE.iso88591@euro "
	                       "--auth-local=scram-sha-256 --auth-host=scram-sha-256");

	for (size_t i = 1; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		struct pg_initdb_opts o = { .encoding = bad_names[i], .locale = "C", .data_checksums = true };

		ck_assert_msg(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err),
		              "encoding '%s' accepted", bad_names[i]);
		ck_assert_msg(strstr(err.msg, "invalid encoding name") != NULL, "%s", err.msg);
		o.encoding = "UTF8";
		o.locale = bad_names[i];
		ck_assert_msg(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err),
		              "locale '%s' accepted", bad_names[i]);
		ck_assert_msg(strstr(err.msg, "invalid locale name") != NULL, "%s", err.msg);
	}
	{
		char longname[200];
		struct pg_initdb_opts o = { .encoding = "UTF8", .locale = longname, .data_checksums = true };

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		ck_assert(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err));
		ck_assert_msg(strstr(err.msg, "invalid locale name") != NULL, "%s", err.msg);
		o.locale = "C";
		o.encoding = longname;
		ck_assert(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err));
		ck_assert_msg(strstr(err.msg, "invalid encoding name") != NULL, "%s", err.msg);
	}
	/* bootstrap.initdb.options: appended with "--"; what baton passes itself is refused */
	{
		char *extra[] = { (char *)"wal-segsize=32", (char *)"no-sync" };
		struct pg_initdb_opts o = { .encoding = "UTF8", .locale = "C", .extra = extra, .n_extra = 2 };
		static const struct {
			const char *opt, *err;
		} refused[] = {
			{ "pgdata=/x", "initdb: option \"pgdata=/x\" refused: baton passes the data directory itself" },
			{ "username=x", "initdb: option \"username=x\" refused: baton creates the superuser itself" },
			{ "auth=trust", "initdb: option \"auth=trust\" refused: baton sets scram-sha-256" },
			{ "D", "initdb: option \"D\" refused: a one-letter option" },
			{ "-D", "initdb: invalid option \"-D\"" },
			{ "", "initdb: invalid option \"\"" },
			{ "no-sync\n-D", "initdb: invalid option" },
		};

		ck_assert_msg(pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err), "%s",
		              err.msg);
		join_argv(&a, line, sizeof(line));
		ck_assert_str_eq(line,
		                 "/bin/initdb -D /d -U su --pwfile=/d.pw -E UTF8 --locale=C "
		                 "--auth-local=scram-sha-256 --auth-host=scram-sha-256 --wal-segsize=32 --no-sync");
		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			extra[1] = (char *)refused[i].opt;
			ck_assert_msg(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err),
			              "%s accepted", refused[i].opt);
			ck_assert_msg(strstr(err.msg, refused[i].err) == err.msg, "%s: %s", refused[i].opt, err.msg);
		}
		o.n_extra = PG_INITDB_MAX_EXTRA + 1;
		ck_assert(!pg_initdb_argv_build(&a, "/bin/initdb", "/d", "su", "--pwfile=/d.pw", &o, &err));
		ck_assert_msg(strstr(err.msg, "more than 32 options") != NULL, "%s", err.msg);
	}
}
END_TEST

/* Polls pg_query_state until pred holds, at most timeout seconds. */
static bool wait_state(struct pg_conn *c, struct pg_state *st, bool (*pred)(const struct pg_state *, int), int arg,
                       double timeout, struct pg_err *err)
{
	double deadline = pg_now() + timeout;

	snprintf(err->msg, sizeof(err->msg), "condition not reached");
	while (pg_now() < deadline) {
		if (pg_query_state(c, st, err) && pred(st, arg))
			return true;
		sleep_ms(5);
	}
	return false;
}

static bool streaming_from(const struct pg_state *st, int port)
{
	return st->in_recovery && st->wal_receiver_streaming && st->upstream_port == port &&
	       strcmp(st->upstream_host, "127.0.0.1") == 0;
}

static bool has_streaming_replica(const struct pg_state *st, int name_char)
{
	if (getenv("PG_TEST_VERBOSE") != NULL) {
		for (int i = 0; i < st->n_replicas; i++)
			fprintf(stderr, "replica %s %s %s %s\n", st->replicas[i].application_name,
			        st->replicas[i].client_addr, st->replicas[i].state, st->replicas[i].sync_state);
	}
	for (int i = 0; i < st->n_replicas; i++) {
		if (st->replicas[i].application_name[0] == (char)name_char &&
		    strcmp(st->replicas[i].state, "streaming") == 0 &&
		    strcmp(st->replicas[i].client_addr, "127.0.0.1") == 0 && st->replicas[i].sent_lsn > 0)
			return true;
	}
	return false;
}

static bool streaming_on_tl2_from(const struct pg_state *st, int port)
{
	return streaming_from(st, port) && st->timeline == 2;
}

static bool not_in_recovery(const struct pg_state *st, int unused)
{
	(void)unused;
	return !st->in_recovery;
}

static void wait_scalar(struct pg_conn *c, const char *sql, const char *want, double timeout)
{
	char buf[128] = "";
	struct pg_err err = { "" };
	double deadline = pg_now() + timeout;

	while (pg_now() < deadline) {
		if (pg_query_scalar(c, sql, buf, sizeof(buf), &err) && strcmp(buf, want) == 0)
			return;
		sleep_ms(20);
	}
	ck_abort_msg("%s: got \"%s\" (%s), want \"%s\"", sql, buf, err.msg, want);
}

/* The whole life of a two-node cluster: bootstrap, clone, stream, promote
 * the replica, rewind the old primary and let it follow the new one. */
START_TEST(test_cluster_lifecycle)
{
	struct node a, b, cn;
	struct pg_conn *ca, *cb, *cc;
	struct pg_state st;
	struct pg_controldata cd;
	struct pg_child c = { 0 };
	struct pg_err err;
	char buf[128], ci[400];
	char stat_state;
	pid_t ppid, pgrp;
	uint64_t sysid;

	node_init(&a, "a");
	node_init(&b, "b");
	node_init(&cn, "c");
	node_initdb(&a);
	ck_assert_msg(pg_controldata_read(PG_BINDIR, a.dir, &cd, &err), "%s", err.msg);
	sysid = cd.system_identifier;
	node_configure(&a, NULL, NULL);
	node_start(&a);

	/* the postmaster is our child, in its own process group */
	ck_assert(proc_stat(a.pm.pid, &stat_state, &ppid, &pgrp));
	ck_assert_int_eq(ppid, getpid());
	ck_assert_int_eq(pgrp, a.pm.pid);
	ck_assert_int_eq(pg_postmaster_pid_from_file(a.dir), a.pm.pid);
	ck_assert_ptr_nonnull(strstr(read_file(a.log), "baton: running " PG_BINDIR "/postgres -D"));

	ca = node_conn(&a, 5.0);
	ck_assert_msg(pg_query_state(ca, &st, &err), "%s", err.msg);
	ck_assert(!st.in_recovery);
	ck_assert_uint_eq(st.timeline, 1);
	ck_assert(st.current_lsn > 0);
	ck_assert_uint_eq(st.system_identifier, sysid);
	ck_assert_int_eq(st.n_replicas, 0);
	/* what /metrics shows as Patroni's series */
	ck_assert_msg(st.server_version >= 150000 && st.server_version < 160000, "server_version %d",
	              st.server_version);
	ck_assert_msg(st.postmaster_start > time(NULL) - 120.0 && st.postmaster_start <= time(NULL) + 1.0,
	              "postmaster_start %f", st.postmaster_start);
	ck_assert(st.replay_timestamp == 0 && !st.restore_command);
	/* our quoting survived Postgres's parser, port came from the last entry */
	ck_assert(pg_query_scalar(ca, "SHOW cluster_name", buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "it's \\ a test");
	ck_assert(pg_query_scalar(ca, "SHOW port", buf, sizeof(buf), &err));
	ck_assert_int_eq(atoi(buf), a.port);
	/* what initdb gave the cluster by default */
	ck_assert(pg_query_scalar(ca, "SHOW data_checksums", buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "on");
	ck_assert(pg_query_scalar(ca, "SHOW server_encoding", buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "UTF8");
	ck_assert(pg_query_scalar(ca, "SHOW lc_collate", buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "C.UTF-8");

	/* a bad password still means "up" for ping */
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=nobody dbname=postgres password=wrong sslmode=disable",
	         a.port);
	ck_assert_int_eq(pg_ping(ci, 2.0), PG_PING_OK);

	ck_assert_msg(pg_query_ensure_role(ca, REPL_USER, REPL_PW, true, &err), "%s", err.msg);
	ck_assert_msg(pg_query_ensure_role(ca, REPL_USER, REPL_PW, true, &err), "%s", err.msg); /* ALTER */
	ck_assert(pg_query_scalar(ca, "SELECT rolreplication AND rolcanlogin FROM pg_roles WHERE rolname = 'repl'", buf,
	                          sizeof(buf), &err));
	ck_assert_str_eq(buf, "t");
	/* a name that needs quoting as an identifier */
	ck_assert_msg(pg_query_ensure_role(ca, "Odd \"Name\"", "pw'd", false, &err), "%s", err.msg);
	ck_assert(pg_query_scalar(ca, "SELECT rolreplication FROM pg_roles WHERE rolname = 'Odd \"Name\"'", buf,
	                          sizeof(buf), &err));
	ck_assert_str_eq(buf, "f");
	/* the password was stored as a SCRAM verifier */
	ck_assert(pg_query_scalar(ca, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'repl'", buf,
	                          sizeof(buf), &err));
	ck_assert_str_eq(buf, "SCRAM-SHA-256$");
	ck_assert(pg_query_exec(ca, "CREATE TABLE public.t (x int)", &err));
	ck_assert(pg_query_exec(ca, "INSERT INTO public.t VALUES (1)", &err));
	ck_assert(!pg_query_exec(ca, "INSERT INTO nosuchtable VALUES (1)", &err));
	ck_assert_msg(strstr(err.msg, "42P01") != NULL, "%s", err.msg);

	/* clone a into b with the replication user, start b as a replica */
	conninfo(&a, REPL_USER, ci, sizeof(ci));
	ck_assert_msg(pg_basebackup_start(&b.paths, ci, &c, &err), "%s", err.msg);
	ck_assert_msg(child_wait(&c, 30, &err) == PG_CHILD_OK, "pg_basebackup: %s (see %s)", err.msg, b.log);
	ck_assert_int_eq(pg_datadir_inspect(b.dir), PG_DATADIR_VALID);
	node_configure(&b, &a, NULL);
	node_start(&b);
	cb = node_conn(&b, 5.0);
	ck_assert_msg(wait_state(cb, &st, streaming_from, a.port, 10, &err), "b not streaming: %s", err.msg);
	ck_assert_uint_eq(st.timeline, 1);
	ck_assert_uint_eq(st.system_identifier, sysid);
	ck_assert(st.receive_lsn > 0 && st.replay_lsn > 0);
	ck_assert(st.current_lsn >= st.replay_lsn);
	ck_assert_msg(st.server_version >= 150000 && st.postmaster_start > 0, "%d %f", st.server_version,
	              st.postmaster_start);
	ck_assert(!st.restore_command); /* streaming only */
	ck_assert_msg(wait_state(ca, &st, has_streaming_replica, 'b', 10, &err), "a has no replica b: %s", err.msg);
	ck_assert(!pg_query_promote(ca, &err)); /* a primary cannot be promoted */

	/* c: a cascading replica of b */
	conninfo(&b, REPL_USER, ci, sizeof(ci));
	ck_assert_msg(pg_basebackup_start(&cn.paths, ci, &c, &err), "%s", err.msg);
	ck_assert_msg(child_wait(&c, 30, &err) == PG_CHILD_OK, "pg_basebackup: %s (see %s)", err.msg, cn.log);
	node_configure(&cn, &b, NULL);
	node_start(&cn);
	cc = node_conn(&cn, 5.0);
	ck_assert_msg(wait_state(cc, &st, streaming_from, b.port, 10, &err), "c not streaming: %s", err.msg);
	ck_assert_uint_eq(st.timeline, 1);

	/* Dirty buffers on b make its end-of-recovery checkpoint take a
	 * while: pg_control lags behind the promotion during that time. */
	ck_assert(pg_query_exec(ca, "INSERT INTO public.t SELECT 1000 + g FROM generate_series(1, 5000) AS g", &err));
	wait_scalar(cb, "SELECT count(*) FROM public.t", "5001", 10);
	wait_scalar(cc, "SELECT count(*) FROM public.t", "5001", 10);

	/* promote b: out of recovery, on timeline 2 at once, writable */
	ck_assert_msg(pg_query_promote(cb, &err), "%s", err.msg);
	ck_assert_msg(wait_state(cb, &st, not_in_recovery, 0, 10, &err), "b still in recovery: %s", err.msg);
	ck_assert_uint_eq(st.timeline, 2);
	ck_assert(pg_query_exec(cb, "INSERT INTO public.t VALUES (2)", &err));
	/* c follows the new timeline by itself, and says so */
	ck_assert_msg(wait_state(cc, &st, streaming_on_tl2_from, b.port, 10, &err),
	              "c not streaming on timeline 2 (timeline %u): %s", st.timeline, err.msg);
	wait_scalar(cc, "SELECT string_agg(x::text, ',' ORDER BY x) FROM public.t WHERE x < 1000", "1,2", 10);
	/* pg_rewind wants the source's pg_control on the new timeline */
	ck_assert(pg_query_checkpoint(cb, &err));

	/* a diverges a little, then stops */
	ck_assert(pg_query_exec(ca, "INSERT INTO public.t VALUES (100)", &err));
	pg_conn_reset(ca);
	node_stop(&a, PG_STOP_FAST, 5.0);
	ck_assert_msg(pg_controldata_read(PG_BINDIR, a.dir, &cd, &err), "%s", err.msg);
	ck_assert_int_eq(cd.state, PG_DB_SHUTDOWNED);
	ck_assert_int_eq(pg_postmaster_pid_from_file(a.dir), 0);

	/* rewind a from b, rewrite its files (pg_rewind copied b's), follow b */
	conninfo(&b, SUPER_USER, ci, sizeof(ci));
	ck_assert_msg(pg_rewind_start(&a.paths, ci, &c, &err), "%s", err.msg);
	ck_assert_msg(child_wait(&c, 30, &err) == PG_CHILD_OK, "pg_rewind: %s (see %s)", err.msg, a.log);
	ck_assert_ptr_nonnull(strstr(read_file(a.log), "baton: running " PG_BINDIR "/pg_rewind --target-pgdata="));
	node_configure(&a, &b, NULL);
	node_start(&a);
	ck_assert_msg(wait_state(ca, &st, streaming_from, b.port, 10, &err), "a not streaming: %s", err.msg);
	ck_assert_uint_eq(st.timeline, 2);
	ck_assert_uint_eq(st.system_identifier, sysid);
	wait_scalar(ca, "SELECT string_agg(x::text, ',' ORDER BY x) FROM public.t WHERE x < 1000", "1,2", 10);
	ck_assert_msg(wait_state(cb, &st, has_streaming_replica, 'a', 10, &err), "b has no replica a: %s", err.msg);

	/* stops: immediate and fast, both quick */
	pg_conn_free(ca);
	pg_conn_free(cb);
	pg_conn_free(cc);
	node_stop(&cn, PG_STOP_FAST, 5.0);
	node_stop(&a, PG_STOP_IMMEDIATE, 3.0);
	ck_assert_msg(pg_controldata_read(PG_BINDIR, a.dir, &cd, &err), "%s", err.msg);
	ck_assert_int_eq(cd.state, PG_DB_IN_ARCHIVE_RECOVERY);
	node_stop(&b, PG_STOP_FAST, 5.0);
	ck_assert(pg_postmaster_stop(&b.pm, PG_STOP_FAST, 1, &err)); /* again: nothing to do */
	ck_assert(!secret_logged);
}
END_TEST

/* The agent dies (SIGKILL): its postmaster must go within a second or two. */
START_TEST(test_pdeathsig)
{
	struct node n;
	int fds[2];
	pid_t agent, pm = 0, ppid, pgrp;
	char stat_state, ci[400];
	int status;
	double t0;
	bool gone = false;

	node_init(&n, "orphan");
	node_initdb(&n);
	node_configure(&n, NULL, NULL);
	/* Orphans are re-parented to us, so we can reap the postmaster. */
	ck_assert(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
	ck_assert(pipe(fds) == 0);
	agent = fork();
	ck_assert(agent >= 0);
	if (agent == 0) {
		struct pg_err err;
		struct pg_child child = { 0 };
		pid_t p = pg_postmaster_start(&n.paths, &child, &err) ? child.pid : -1;

		if (write(fds[1], &p, sizeof(p)) != sizeof(p))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert(read_full(fds[0], &pm, sizeof(pm)));
	close(fds[0]);
	ck_assert_int_gt(pm, 0);
	record_pid(pm);
	conninfo(&n, SUPER_USER, ci, sizeof(ci));
	t0 = pg_now();
	while (pg_ping(ci, 1.0) != PG_PING_OK && pg_now() - t0 < 15)
		sleep_ms(20);
	ck_assert_int_eq(pg_ping(ci, 1.0), PG_PING_OK);
	ck_assert(proc_stat(pm, &stat_state, &ppid, &pgrp));
	ck_assert_int_eq(ppid, agent);

	ck_assert(kill(agent, SIGKILL) == 0);
	ck_assert_int_eq(waitpid(agent, &status, 0), agent);
	t0 = pg_now();
	while (pg_now() - t0 < 3) {
		if (waitpid(pm, &status, WNOHANG) == pm || !proc_alive(pm)) {
			gone = true;
			break;
		}
		sleep_ms(10);
	}
	ck_assert_msg(gone, "postmaster %d still alive 3 s after its parent died", (int)pm);
	ck_assert_msg(pg_now() - t0 < 2.0, "postmaster took %.2f s to go", pg_now() - t0);
	ck_assert_int_eq(pg_ping(ci, 1.0), PG_PING_NO_RESPONSE);
	/* reap the postmaster's own children that were re-parented to us */
	while (waitpid(-pm, &status, WNOHANG) > 0)
		;
}
END_TEST

START_TEST(test_query_timeout_and_stops)
{
	struct node n;
	struct pg_conn *c, *c2;
	struct pg_err err;
	char buf[64], sql[512], path[300];
	double t0, took;
	pid_t pid, backend;

	node_init(&n, "q");
	node_initdb(&n);
	node_configure(&n, NULL, NULL);
	node_start(&n);

	/* a statement past its timeout is cancelled; the connection stays */
	c = node_conn(&n, 0.5);
	ck_assert(pg_query_scalar(c, "SELECT pg_backend_pid()", buf, sizeof(buf), &err));
	t0 = pg_now();
	ck_assert(!pg_query_exec(c, "SELECT pg_sleep(10)", &err));
	took = pg_now() - t0;
	ck_assert_msg(took >= 0.45 && took < 1.0, "took %.2f s", took);
	ck_assert_msg(strstr(err.msg, "cancel") != NULL, "%s", err.msg);
	ck_assert(pg_query_scalar(c, "SELECT 1", sql, sizeof(sql), &err));
	ck_assert_str_eq(sql, "1");
	c2 = node_conn(&n, 2.0);
	wait_scalar(c2,
	            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'",
	            "0", 2.0);

	/* a session the server closed is noticed before the next statement,
	 * which runs on a fresh connection */
	ck_assert(pg_query_scalar(c, "SELECT pg_backend_pid()", buf, sizeof(buf), &err));
	backend = atoi(buf);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", (int)backend);
	ck_assert(pg_query_scalar(c2, sql, buf, sizeof(buf), &err));
	ck_assert_str_eq(buf, "t");
	for (int i = 0; i < 100 && proc_alive(backend); i++)
		sleep_ms(10);
	ck_assert_msg(pg_query_scalar(c, "SELECT pg_backend_pid()", buf, sizeof(buf), &err), "%s", err.msg);
	ck_assert_int_ne(atoi(buf), backend);

	/* reload picks up a rewritten postgresql.conf */
	node_configure(&n, NULL, "7MB");
	ck_assert_msg(pg_postmaster_reload(&n.pm, &err), "%s", err.msg);
	pg_conn_reset(c2);
	wait_scalar(c2, "SHOW work_mem", "7MB", 5.0);
	pg_conn_free(c2);

	/* immediate stop */
	pid = n.pm.pid;
	node_stop(&n, PG_STOP_IMMEDIATE, 3.0);
	ck_assert(!pg_query_scalar(c, "SELECT 3", buf, sizeof(buf), &err));
	ck_assert_int_eq(pg_postmaster_pid_from_file(n.dir), 0);
	/* a stale file naming a dead process does not count */
	snprintf(path, sizeof(path), "%s/postmaster.pid", n.dir);
	snprintf(sql, sizeof(sql), "%d\n%s\n", (int)pid, n.dir);
	write_file(path, sql);
	ck_assert_int_eq(pg_postmaster_pid_from_file(n.dir), 0);
	snprintf(sql, sizeof(sql), "%d\n%s\n", (int)getpid(), n.dir);
	write_file(path, sql);
	ck_assert_int_eq(pg_postmaster_pid_from_file(n.dir), getpid());
	ck_assert(unlink(path) == 0);

	/* a postmaster that died on its own is reaped by stop, quickly */
	node_start(&n);
	pid = n.pm.pid;
	ck_assert(kill(pid, SIGKILL) == 0);
	sleep_ms(100);
	t0 = pg_now();
	ck_assert_msg(pg_postmaster_stop(&n.pm, PG_STOP_FAST, 10, &err), "%s", err.msg);
	ck_assert(pg_now() - t0 < 0.5);
	ck_assert_int_eq(n.pm.pid, 0);
	ck_assert(pg_postmaster_stop(&n.pm, PG_STOP_FAST, 10, &err));
	ck_assert(!pg_postmaster_reload(&n.pm, &err));

	/* and a fast stop of a healthy one */
	node_start(&n);
	ck_assert_msg(pg_query_scalar(c, "SELECT 4", buf, sizeof(buf), &err), "%s", err.msg);
	node_stop(&n, PG_STOP_FAST, 5.0);

	/* a postmaster that does not react (stopped): SIGQUIT, then SIGKILL
	 * of it and of its children, all within the bounds */
	node_start(&n);
	ck_assert(pg_query_scalar(c, "SELECT pg_backend_pid()", buf, sizeof(buf), &err));
	backend = atoi(buf);
	ck_assert(proc_alive(backend));
	ck_assert(kill(n.pm.pid, SIGSTOP) == 0);
	pid = n.pm.pid;
	t0 = pg_now();
	ck_assert_msg(pg_postmaster_stop(&n.pm, PG_STOP_FAST, 0.3, &err), "%s", err.msg);
	took = pg_now() - t0;
	ck_assert_msg(took >= 2.25 && took < 3.0, "took %.2f s", took);
	ck_assert(!proc_alive(pid));
	for (int i = 0; i < 100 && proc_alive(backend); i++)
		sleep_ms(10);
	ck_assert(!proc_alive(backend));
	pg_conn_free(c);
	ck_assert(!secret_logged);
}
END_TEST

static Suite *pg_suite(void)
{
	Suite *s = suite_create("pg");
	TCase *off = tcase_create("offline");
	TCase *bin = tcase_create("binaries");
	TCase *srv = tcase_create("servers");

	tcase_add_unchecked_fixture(off, base_setup, base_teardown);
	tcase_set_timeout(off, 20);
	tcase_add_test(off, test_conf_postgresql);
	tcase_add_test(off, test_code_params);
	tcase_add_test(off, test_custom_params);
	tcase_add_test(off, test_conf_recovery_standby_hba);
	tcase_add_test(off, test_conf_pgpass);
	tcase_add_test(off, test_conninfo_quote);
	tcase_add_test(off, test_lsn);
	tcase_add_test(off, test_start_diagnose);
	tcase_add_test(off, test_datadir_inspect_remove);
	tcase_add_test(off, test_controldata_errors);
	tcase_add_test(off, test_initdb_argv);
	tcase_add_test(off, test_spawn_env_without_notify_socket);
	tcase_add_test(off, test_connect_refused_fast);
	tcase_add_test(off, test_connect_silent_times_out);
	tcase_add_test(off, test_ping_classifies_answers);
	suite_add_tcase(s, off);

	/* PG_BINDIR's programs run, no server: left out without them */
	tcase_add_unchecked_fixture(bin, base_setup, base_teardown);
	tcase_set_tags(bin, "postgres");
	tcase_set_timeout(bin, 20);
	tcase_add_test(bin, test_child_failures);
	suite_add_tcase(s, bin);

	tcase_add_unchecked_fixture(srv, base_setup, base_teardown);
	tcase_set_tags(srv, "postgres"); /* left out without PG_BINDIR's binaries */
	tcase_set_timeout(srv, 90);
	tcase_add_test(srv, test_initdb_controldata);
	tcase_add_test(srv, test_cluster_lifecycle);
	tcase_add_test(srv, test_pdeathsig);
	tcase_add_test(srv, test_query_timeout_and_stops);
	suite_add_tcase(s, srv);
	return s;
}

int main(void)
{
	bool have;

	if (geteuid() == 0) {
		fprintf(stderr, "check_pg: Postgres refuses to run as root; run as an unprivileged user\n");
		return 1;
	}
	have = skip_have("check_pg", "postgres", PG_BINDIR "/postgres",
	                 "install postgresql-15, or configure with PG_BINDIR=DIR");
	return skip_run(srunner_create(pg_suite()), "postgres", have);
}
