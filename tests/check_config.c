/*
 * check_config.c - unit tests of the config module (agent/config*.c) and agent/log.c.
 *
 * The config loader is tested against files under tests/configs/: a full
 * and a minimal good file whose every value (and every default) is checked,
 * and a table of bad files, each with the substring its one-line error must
 * contain - file name and line included, so an operator can find the
 * mistake. show-config is checked for masked secrets and for printing text
 * that loads back to the same configuration. The logging half checks level
 * names, the line format, the level filter and password scrubbing.
 */
#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/log.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/skip.h"

#define CONFIGS TEST_SRCDIR "/tests/configs/"
#define DEFAULT_BIN_DIR "/usr/lib/postgresql/15/bin"

static const char *param(const struct config_param *p, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return p[i].value;
	return NULL;
}

/* ---- good files ---- */

START_TEST(test_full)
{
	struct baton_config c;
	char err[512];

	ck_assert_msg(config_load(CONFIGS "good/full.conf", &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.path, CONFIGS "good/full.conf");
	ck_assert_str_eq(c.scope, "main");
	ck_assert_str_eq(c.name, "node1");
	ck_assert_str_eq(c.namespace_, "/service");

	ck_assert_uint_eq(c.etcd.n_hosts, 3);
	ck_assert_str_eq(c.etcd.hosts[0], "127.0.0.1:2379");
	ck_assert_str_eq(c.etcd.hosts[1], "[::1]:2381");
	ck_assert_str_eq(c.etcd.hosts[2], "etcd3.example.com:2379");
	ck_assert_str_eq(c.etcd.protocol, "https");
	ck_assert_str_eq(c.etcd.cacert, "/etc/baton/ca.pem");
	ck_assert_str_eq(c.etcd.cert, "/etc/baton/client.pem");
	ck_assert_str_eq(c.etcd.key, "/etc/baton/client.key");
	ck_assert_str_eq(c.etcd.username, "baton");
	ck_assert_str_eq(c.etcd.password, "etcd-secret");

	ck_assert_str_eq(c.restapi.listen, "0.0.0.0:8008");
	ck_assert_str_eq(c.restapi.connect_address, "10.0.0.1:8008");
	ck_assert_str_eq(c.restapi.auth_username, "admin");
	ck_assert_str_eq(c.restapi.auth_password, "api-secret");
	ck_assert_ptr_null(c.restapi.certfile);
	ck_assert_ptr_null(c.restapi.keyfile);

	ck_assert(c.bootstrap_dcs.ttl == 30);
	ck_assert(!c.bootstrap_dcs.pause);
	ck_assert(c.bootstrap_dcs.loop_wait == 0.5);
	ck_assert(c.bootstrap_dcs.retry_timeout == 10);
	ck_assert_int_eq(c.bootstrap_dcs.maximum_lag_on_failover, 4294967296LL);
	ck_assert_uint_eq(c.bootstrap_dcs.n_pg_params, 5);
	ck_assert_str_eq(param(c.bootstrap_dcs.pg_params, 5, "max_connections"), "200");
	ck_assert_str_eq(param(c.bootstrap_dcs.pg_params, 5, "wal_log_hints"), "on");
	ck_assert_str_eq(param(c.bootstrap_dcs.pg_params, 5, "hot_standby"), "off");
	ck_assert_str_eq(param(c.bootstrap_dcs.pg_params, 5, "checkpoint_completion_target"), "0.9");
	ck_assert_str_eq(param(c.bootstrap_dcs.pg_params, 5, "wal_keep_size"), "1GB");

	ck_assert_str_eq(c.postgresql.bin_dir, DEFAULT_BIN_DIR);
	ck_assert_str_eq(c.postgresql.data_dir, "/var/lib/baton/node1");
	ck_assert_str_eq(c.postgresql.listen, "127.0.0.1:5441");
	ck_assert_str_eq(c.postgresql.listen_host, "127.0.0.1");
	ck_assert_int_eq(c.postgresql.listen_port, 5441);
	ck_assert_str_eq(c.postgresql.connect_address, "[::1]:5441");
	ck_assert_str_eq(c.postgresql.connect_host, "::1");
	ck_assert_int_eq(c.postgresql.connect_port, 5441);
	ck_assert_str_eq(c.postgresql.socket_dir, "/run/baton");
	ck_assert_str_eq(c.postgresql.pgpass, "/var/lib/baton/pgpass");
	ck_assert_str_eq(c.postgresql.log_file, "/var/log/baton/postgres.log");
	ck_assert_str_eq(c.postgresql.superuser_username, "admin");
	ck_assert_str_eq(c.postgresql.superuser_password, "super-secret");
	ck_assert_str_eq(c.postgresql.replication_username, "repl");
	ck_assert_str_eq(c.postgresql.replication_password, "repl-secret");
	ck_assert_uint_eq(c.postgresql.n_params, 2);
	ck_assert_str_eq(c.postgresql.params[0].name, "shared_buffers");
	ck_assert_str_eq(c.postgresql.params[0].value, "128MB");
	ck_assert_str_eq(c.postgresql.params[1].name, "work_mem");
	ck_assert_str_eq(c.postgresql.params[1].value, "4096");
	ck_assert_uint_eq(c.postgresql.n_pg_hba, 2);
	ck_assert_str_eq(c.postgresql.pg_hba[0], "host replication repl 127.0.0.1/32 scram-sha-256");
	ck_assert_str_eq(c.postgresql.pg_hba[1], "host all all 0.0.0.0/0 scram-sha-256");
	ck_assert(!c.postgresql.use_pg_rewind);
	ck_assert(c.postgresql.remove_data_directory_on_rewind_failure);
	ck_assert_ptr_null(c.postgresql.callbacks.on_start);
	ck_assert_ptr_null(c.postgresql.callbacks.on_role_change);
	ck_assert(c.postgresql.callbacks.timeout == 7.5);
	ck_assert(c.tags.nofailover);
	ck_assert(c.tags.nosync);
	ck_assert_int_eq(c.tags.failover_priority, 5);
	ck_assert(c.bootstrap_dcs.synchronous_mode && c.bootstrap_dcs.synchronous_mode_strict);
	ck_assert_int_eq(c.bootstrap_dcs.synchronous_node_count, 2);
	ck_assert_uint_eq(c.bootstrap_dcs.n_slots, 1);
	ck_assert_str_eq(c.bootstrap_dcs.slots[0], "backup_tool");
	ck_assert_str_eq(c.log_level, "debug");

	config_free(&c);
	ck_assert_ptr_null(c.scope);
	config_free(&c); /* idempotent */
}
END_TEST

START_TEST(test_minimal_defaults)
{
	struct baton_config c;
	char err[512];
	bool ok = config_load(CONFIGS "good/minimal.conf", &c, err, sizeof(err));

	if (access(DEFAULT_BIN_DIR "/postgres", X_OK) != 0) {
		/* Without Postgres at the default place, the default must be refused. */
		ck_assert(!ok);
		ck_assert_ptr_nonnull(strstr(err, "postgresql.bin_dir: " DEFAULT_BIN_DIR "/postgres"));
		return;
	}
	ck_assert_msg(ok, "%s", err);
	ck_assert_str_eq(c.scope, "main");
	ck_assert_str_eq(c.name, "node2");
	ck_assert_str_eq(c.namespace_, "/baton");
	ck_assert_uint_eq(c.etcd.n_hosts, 1);
	ck_assert_str_eq(c.etcd.hosts[0], "127.0.0.1:2379");
	ck_assert_str_eq(c.etcd.protocol, "http");
	ck_assert_ptr_null(c.etcd.cacert);
	ck_assert_ptr_null(c.etcd.cert);
	ck_assert_ptr_null(c.etcd.key);
	ck_assert_ptr_null(c.etcd.username);
	ck_assert_ptr_null(c.etcd.password);
	ck_assert_str_eq(c.restapi.listen, "127.0.0.1:8009");
	ck_assert_str_eq(c.restapi.connect_address, "127.0.0.1:8009");
	ck_assert_ptr_null(c.restapi.auth_username);
	ck_assert_ptr_null(c.restapi.auth_password);
	ck_assert_ptr_null(c.restapi.certfile);
	ck_assert_ptr_null(c.restapi.keyfile);
	ck_assert(c.bootstrap_dcs.ttl == 5);
	ck_assert(!c.bootstrap_dcs.pause);
	ck_assert(c.bootstrap_dcs.loop_wait == 1);
	ck_assert(c.bootstrap_dcs.retry_timeout == 2);
	ck_assert_int_eq(c.bootstrap_dcs.maximum_lag_on_failover, 1048576);
	ck_assert_uint_eq(c.bootstrap_dcs.n_pg_params, 0);
	ck_assert_ptr_null(c.bootstrap_dcs.pg_params);
	ck_assert_str_eq(c.postgresql.bin_dir, DEFAULT_BIN_DIR);
	ck_assert_str_eq(c.postgresql.data_dir, "/var/lib/baton/node2");
	ck_assert_str_eq(c.postgresql.listen, "127.0.0.1:5442");
	ck_assert_str_eq(c.postgresql.listen_host, "127.0.0.1");
	ck_assert_int_eq(c.postgresql.listen_port, 5442);
	ck_assert_str_eq(c.postgresql.connect_address, "127.0.0.1:5442");
	ck_assert_str_eq(c.postgresql.connect_host, "127.0.0.1");
	ck_assert_int_eq(c.postgresql.connect_port, 5442);
	ck_assert_str_eq(c.postgresql.socket_dir, "/tmp");
	ck_assert_str_eq(c.postgresql.pgpass, "/var/lib/baton/node2.pgpass");
	ck_assert_str_eq(c.postgresql.log_file, "/var/lib/baton/node2.log");
	ck_assert_str_eq(c.postgresql.superuser_username, "postgres");
	ck_assert_str_eq(c.postgresql.superuser_password, "s1");
	ck_assert_str_eq(c.postgresql.replication_username, "replicator");
	ck_assert_str_eq(c.postgresql.replication_password, "r1");
	ck_assert_uint_eq(c.postgresql.n_params, 0);
	ck_assert_uint_eq(c.postgresql.n_pg_hba, 0);
	ck_assert(c.postgresql.use_pg_rewind);
	ck_assert(!c.postgresql.remove_data_directory_on_rewind_failure);
	ck_assert_ptr_null(c.postgresql.callbacks.on_start);
	ck_assert_ptr_null(c.postgresql.callbacks.on_stop);
	ck_assert_ptr_null(c.postgresql.callbacks.on_role_change);
	ck_assert_ptr_null(c.postgresql.callbacks.on_reload);
	ck_assert(c.postgresql.callbacks.timeout == 30);
	ck_assert(!c.tags.nofailover);
	ck_assert_str_eq(c.log_level, "info");
	config_free(&c);
}
END_TEST

/* deploy/examples/nodeN.conf copied to a temporary file with its TLS
 * directory (/etc/baton/tls/) replaced by the test's PEM files; the path of
 * the copy goes into out. */
static void example_copy(int n, char *out, size_t outlen)
{
	static const char tls_dir[] = "/etc/baton/tls/";
	char path[1024], line[1024];
	FILE *in, *f;
	int fd;

	snprintf(path, sizeof(path), TEST_SRCDIR "/deploy/examples/node%d.conf", n);
	snprintf(out, outlen, "/tmp/check_config_example_XXXXXX");
	in = fopen(path, "r");
	ck_assert_msg(in != NULL, "%s", path);
	fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), in)) {
		char *at = strstr(line, tls_dir);

		if (at && at[-1] == '"') {
			*at = '\0';
			fprintf(f, "%s%s/tests/configs/files/example-tls/%s", line, TEST_SRCDIR, at + strlen(tls_dir));
		} else {
			fputs(line, f);
		}
	}
	fclose(in);
	ck_assert_int_eq(fclose(f), 0);
}

/* The shipped examples (deploy/examples) load, and the three members of the
 * loopback cluster do not share a port or a data directory. They ship
 * protected: HTTPS with a CA to verify peers, and credentials. */
START_TEST(test_examples)
{
	struct baton_config c[3];
	char path[1024], err[512];

	if (access(DEFAULT_BIN_DIR "/postgres", X_OK) != 0)
		return; /* they name the default bin_dir; test_minimal_defaults covers this */
	for (int i = 0; i < 3; i++) {
		example_copy(i + 1, path, sizeof(path));
		ck_assert_msg(config_load(path, &c[i], err, sizeof(err)), "%s", err);
		unlink(path);
		ck_assert_ptr_nonnull(strstr(c[i].restapi.certfile, "/example-tls/restapi.crt"));
		ck_assert_ptr_nonnull(strstr(c[i].restapi.keyfile, "/example-tls/restapi.key"));
		ck_assert_ptr_nonnull(strstr(c[i].restapi.cafile, "/example-tls/ca.crt"));
		ck_assert_ptr_nonnull(c[i].restapi.auth_username);
		ck_assert_ptr_nonnull(c[i].restapi.auth_password);
		ck_assert_int_eq(c[i].postgresql.listen_port, 5441 + i);
		ck_assert_str_eq(c[i].etcd.hosts[0], "127.0.0.1:2379");
		ck_assert_str_eq(c[i].scope, c[0].scope);
		for (int j = 0; j < i; j++) {
			ck_assert_str_ne(c[i].name, c[j].name);
			ck_assert_str_ne(c[i].restapi.listen, c[j].restapi.listen);
			ck_assert_str_ne(c[i].postgresql.data_dir, c[j].postgresql.data_dir);
		}
	}
	for (int i = 0; i < 3; i++)
		config_free(&c[i]);
}
END_TEST

static char *print_to_string(const struct baton_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	config_print(c, f);
	fclose(f);
	return buf;
}

/* The options that name files must point at real ones, so this config is
 * written at run time with the absolute paths of files in the source tree:
 * the example callback scripts (executable) and placeholder TLS files (the
 * loader only checks that they are readable; the REST server parses them). */
START_TEST(test_tls_and_callbacks)
{
	static const char *const fmt =
	        "scope = \"main\"; name = \"node3\";\n"
	        "etcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
	        "restapi = { listen = \"127.0.0.1:8010\";\n"
	        "  certfile = \"%s/tests/configs/files/restapi.crt\";\n"
	        "  keyfile = \"%s/tests/configs/files/restapi.key\"; };\n"
	        "postgresql = { data_dir = \"/var/lib/baton/node3\"; listen = \"127.0.0.1:5443\";\n"
	        "  authentication = { superuser = { password = \"s\"; };\n"
	        "                     replication = { password = \"r\"; }; };\n"
	        "  callbacks = { on_start = \"%s/deploy/examples/callbacks/log_event.sh\";\n"
	        "                on_stop = \"%s/deploy/examples/callbacks/log_event.sh\";\n"
	        "                on_role_change = \"%s/deploy/examples/callbacks/role_change.sh\";\n"
	        "                on_reload = \"%s/deploy/examples/callbacks/log_event.sh\"; }; };\n";
	struct baton_config c;
	char tmp[] = "/tmp/check_config_XXXXXX";
	char err[512], *text;
	FILE *f;
	int fd;

	if (access(DEFAULT_BIN_DIR "/postgres", X_OK) != 0)
		return; /* the default bin_dir is refused first; test_minimal_defaults covers it */
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, fmt, TEST_SRCDIR, TEST_SRCDIR, TEST_SRCDIR, TEST_SRCDIR, TEST_SRCDIR, TEST_SRCDIR);
	fclose(f);
	ck_assert_msg(config_load(tmp, &c, err, sizeof(err)), "%s", err);
	unlink(tmp);
	ck_assert_str_eq(c.restapi.certfile, TEST_SRCDIR "/tests/configs/files/restapi.crt");
	ck_assert_str_eq(c.restapi.keyfile, TEST_SRCDIR "/tests/configs/files/restapi.key");
	ck_assert_ptr_null(c.restapi.auth_username);
	ck_assert_str_eq(c.postgresql.callbacks.on_start, TEST_SRCDIR "/deploy/examples/callbacks/log_event.sh");
	ck_assert_str_eq(c.postgresql.callbacks.on_stop, TEST_SRCDIR "/deploy/examples/callbacks/log_event.sh");
	ck_assert_str_eq(c.postgresql.callbacks.on_role_change,
	                 TEST_SRCDIR "/deploy/examples/callbacks/role_change.sh");
	ck_assert_str_eq(c.postgresql.callbacks.on_reload, TEST_SRCDIR "/deploy/examples/callbacks/log_event.sh");
	ck_assert(c.postgresql.callbacks.timeout == 30);
	text = print_to_string(&c);
	ck_assert_ptr_nonnull(strstr(text, "certfile = \"" TEST_SRCDIR "/tests/configs/files/restapi.crt\";"));
	ck_assert_ptr_nonnull(strstr(text, "on_role_change = \"" TEST_SRCDIR));
	ck_assert_ptr_nonnull(strstr(text, "# username is not set"));
	free(text);
	config_free(&c);
}
END_TEST

/* ---- bad files: each must fail with this text in its error ---- */

static const struct bad_case {
	const char *file;
	const char *expect;
} bad_cases[] = {
	{ "syntax_error.conf", "syntax_error.conf:3: syntax error: " },
	{ "include.conf", "include.conf:4: @include is not supported" },
	{ "nul_byte.conf", "nul_byte.conf:2: a NUL byte: not a text configuration file" },
	{ "sync_count_zero.conf",
	  "sync_count_zero.conf:14: bootstrap.dcs.synchronous_node_count: must be >= 1 (got 0)" },
	{ "bad_slot_name.conf",
	  "bad_slot_name.conf:14: bootstrap.dcs.slots[1]: a slot name is 1 to 63 of a-z, 0-9 and _ (got \"Bad-Slot\")" },
	{ "negative_priority.conf", "negative_priority.conf:14: tags.failover_priority: must be >= 0 (got -1)" },
	{ "unknown_top.conf", "unknown_top.conf:14: colour: unknown key" },
	{ "unknown_nested.conf", "unknown_nested.conf:4: etcd.timeout: unknown key" },
	{ "misspelled.conf",
	  "misspelled.conf:7: postgresql.data_dri: unknown key (did you mean postgresql.data_dir?)" },
	{ "misplaced.conf", "misplaced.conf:14: ttl: unknown key (did you mean bootstrap.dcs.ttl?)" },
	{ "misspelled_password.conf",
	  "misspelled_password.conf:10: postgresql.authentication.superuser.pasword: unknown key "
	  "(did you mean postgresql.authentication.superuser.password?)" },
	{ "wrong_type_string.conf",
	  "wrong_type_string.conf:14: bootstrap.dcs.ttl: expected a number of seconds (got \"5\")" },
	{ "wrong_type_number.conf", "wrong_type_number.conf:2: scope: expected a string (got 5)" },
	{ "wrong_type_bool.conf", "wrong_type_bool.conf:14: tags.nofailover: expected true or false (got \"yes\")" },
	{ "group_expected.conf", "group_expected.conf:4: etcd: expected a group { ... } (got \"127.0.0.1:2379\")" },
	{ "missing_scope.conf", "missing_scope.conf: scope: required key missing" },
	{ "missing_name.conf", "missing_name.conf: name: required key missing" },
	{ "missing_password.conf",
	  "missing_password.conf:11: postgresql.authentication.replication.password: required key missing" },
	{ "missing_hosts.conf", "missing_hosts.conf:4: etcd.hosts: required key missing" },
	{ "empty_scope.conf", "empty_scope.conf:2: scope: must not be empty" },
	{ "bad_name.conf", "bad_name.conf:3: name: may only contain [A-Za-z0-9_.-] (got \"node 2\")" },
	{ "long_name.conf", "long_name.conf:3: name: must be 1 to 63 characters" },
	{ "empty_hosts.conf", "empty_hosts.conf:4: etcd.hosts: must list at least one entry" },
	{ "hosts_not_list.conf", "hosts_not_list.conf:4: etcd.hosts: expected a list of strings" },
	{ "bad_hostport.conf", "bad_hostport.conf:4: etcd.hosts[1]: expected \"host:port\" with a port from 1 to 65535 "
	                       "(got \"localhost\")" },
	{ "bad_port.conf", "bad_port.conf:5: restapi.listen: expected \"host:port\" with a port from 1 "
	                   "to 65535 (got \"127.0.0.1:70000\")" },
	{ "bare_ipv6.conf", "bare_ipv6.conf:8: postgresql.listen: expected \"host:port\", an IPv6 host in "
	                    "brackets" },
	{ "relative_data_dir.conf", "relative_data_dir.conf:7: postgresql.data_dir: must be an absolute path "
	                            "(got \"var/lib/baton/node2\")" },
	{ "no_postgres.conf",
	  "no_postgres.conf:7: postgresql.bin_dir: /nonexistent/bin/postgres is not an executable file" },
	{ "timing.conf", "timing.conf:15: bootstrap.dcs: loop_wait + 2 * retry_timeout = 5 > ttl = 3 "
	                 "(a leader could lose its lease before noticing)" },
	{ "ttl_too_small.conf", "ttl_too_small.conf:14: bootstrap.dcs.ttl: must be >= 2 (got 1)" },
	{ "zero_loop_wait.conf", "zero_loop_wait.conf:14: bootstrap.dcs.loop_wait: must be >= 0.1 (got 0)" },
	{ "negative_lag.conf", "negative_lag.conf:14: bootstrap.dcs.maximum_lag_on_failover: must be >= 0 (got -1)" },
	{ "float_lag.conf", "float_lag.conf:14: bootstrap.dcs.maximum_lag_on_failover: expected an integer (got 1.5)" },
	{ "bad_log_level.conf",
	  "bad_log_level.conf:14: log.level: must be debug, info, warning or error (got \"verbose\")" },
	{ "bad_protocol.conf", "bad_protocol.conf:4: etcd.protocol: must be \"http\" or \"https\" (got \"grpc\")" },
	{ "bad_namespace.conf", "bad_namespace.conf:14: namespace: must start with '/' (got \"baton\")" },
	{ "trailing_namespace.conf", "trailing_namespace.conf:14: namespace: must not end with '/' (got \"/baton/\")" },
	{ "bad_param_name.conf",
	  "bad_param_name.conf:9: postgresql.parameters.Shared_Buffers: not a Postgres parameter name" },
	{ "bad_param_value.conf",
	  "bad_param_value.conf:9: postgresql.parameters.work_mem: expected a number, boolean or "
	  "string (got an array)" },
	{ "bad_dcs_param.conf", "bad_dcs_param.conf:15: bootstrap.dcs.postgresql.parameters.max-connections: not a "
	                        "Postgres parameter name" },
	{ "hba_not_string.conf", "hba_not_string.conf:9: postgresql.pg_hba[0]: expected a string (got 1)" },
	{ "params_not_group.conf",
	  "params_not_group.conf:9: postgresql.parameters: expected a group { name = value; ... } "
	  "(got an array)" },
	{ "auth_no_password.conf", "auth_no_password.conf:7: restapi.authentication.username: set without "
	                           "restapi.authentication.password (both are required together)" },
	{ "auth_no_username.conf", "auth_no_username.conf:7: restapi.authentication.password: set without "
	                           "restapi.authentication.username (both are required together)" },
	{ "cert_no_key.conf", "cert_no_key.conf:7: restapi.certfile: set without restapi.keyfile (both are required "
	                      "together)" },
	{ "relative_certfile.conf",
	  "relative_certfile.conf:7: restapi.certfile: must be an absolute path (got \"restapi.crt\")" },
	{ "missing_certfile.conf",
	  "missing_certfile.conf:7: restapi.certfile: cannot read /nonexistent/restapi.crt: No such "
	  "file or directory" },
	{ "missing_callback.conf", "missing_callback.conf:15: postgresql.callbacks.on_role_change: cannot run "
	                           "/nonexistent/role_change.sh: No such file or directory" },
	{ "callback_not_executable.conf",
	  "callback_not_executable.conf:15: postgresql.callbacks.on_start: /etc/passwd is not "
	  "executable: Permission denied" },
	{ "callback_directory.conf",
	  "callback_directory.conf:15: postgresql.callbacks.on_stop: /tmp is not a regular file" },
	{ "relative_callback.conf",
	  "relative_callback.conf:15: postgresql.callbacks.on_reload: must be an absolute path "
	  "(got \"reload.sh\")" },
	{ "callbacks_timeout_zero.conf",
	  "callbacks_timeout_zero.conf:15: postgresql.callbacks.timeout: must be > 0 (got 0)" },
	{ "callbacks_unknown.conf", "callbacks_unknown.conf:15: postgresql.callbacks.on_promote: unknown key" },
	{ "dcs_pause.conf", "dcs_pause.conf:16: bootstrap.dcs.pause: unknown key" },
};

#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

START_TEST(test_bad_file)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct baton_config c;
	char path[1024], err[512];

	snprintf(path, sizeof(path), CONFIGS "bad/%s", bc->file);
	ck_assert_int_eq(access(path, R_OK), 0);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", bc->file);
	ck_assert_msg(strstr(err, bc->expect) != NULL, "%s: error\n  %s\ndoes not contain\n  %s", bc->file, err,
	              bc->expect);
	/* one line, and the file is named by the path it was given */
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
	/* out is left freed */
	ck_assert_ptr_null(c.path);
	ck_assert_ptr_null(c.scope);
	ck_assert_ptr_null(c.etcd.hosts);
	config_free(&c);
}
END_TEST

/* A value holding a newline must not split the error into two lines. */
START_TEST(test_error_one_line)
{
	char tmp[] = "/tmp/check_config_nl_XXXXXX", err[512];
	struct baton_config c;
	int fd = mkstemp(tmp);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs("scope = \"main\";\nname = \"bad\\nname\";\n", f);
	fclose(f);
	ck_assert(!config_load(tmp, &c, err, sizeof(err)));
	unlink(tmp);
	ck_assert_msg(strchr(err, '\n') == NULL, "error spans lines: %s", err);
	ck_assert_msg(strstr(err, "name") != NULL, "%s", err);
}
END_TEST

START_TEST(test_missing_file)
{
	struct baton_config c;
	char err[512];

	ck_assert(!config_load(CONFIGS "no-such-file.conf", &c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no-such-file.conf: cannot read"));
	/* a tiny error buffer is truncated, not overrun */
	ck_assert(!config_load(CONFIGS "no-such-file.conf", &c, err, 4));
	ck_assert_uint_eq(strlen(err), 3);
}
END_TEST

START_TEST(test_free_zeroed)
{
	struct baton_config c;
	struct dcs_settings d;

	memset(&c, 0, sizeof(c));
	config_free(&c);
	config_free(NULL);
	memset(&d, 0, sizeof(d));
	dcs_settings_free(&d);
	dcs_settings_free(NULL);
}
END_TEST

/* ---- show-config ---- */

START_TEST(test_print_masks_secrets_and_round_trips)
{
	struct baton_config c, back;
	char err[512], tmp[] = "/tmp/check_config_XXXXXX";
	char *text;
	FILE *f;
	int fd;

	ck_assert_msg(config_load(CONFIGS "good/full.conf", &c, err, sizeof(err)), "%s", err);
	text = print_to_string(&c);
	ck_assert_ptr_null(strstr(text, "super-secret"));
	ck_assert_ptr_null(strstr(text, "repl-secret"));
	ck_assert_ptr_null(strstr(text, "etcd-secret"));
	ck_assert_ptr_null(strstr(text, "api-secret"));
	ck_assert_ptr_nonnull(strstr(text, "authentication = {\n    # basic-auth user"));
	ck_assert_ptr_nonnull(strstr(text, "    timeout = 7.5;\n"));
	ck_assert_ptr_nonnull(strstr(text, "password = \"***\";"));
	ck_assert_ptr_nonnull(strstr(text, "hosts = [ \"127.0.0.1:2379\", \"[::1]:2381\""));
	ck_assert_ptr_nonnull(strstr(text, "loop_wait = 0.5;"));
	ck_assert_ptr_nonnull(strstr(text, "maximum_lag_on_failover = 4294967296L;"));
	ck_assert_ptr_nonnull(strstr(text, "wal_log_hints = \"on\";"));

	/* The printed text is a valid config with the same values. */
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_msg(config_load(tmp, &back, err, sizeof(err)), "%s\n%s", err, text);
	unlink(tmp);
	ck_assert_str_eq(back.name, c.name);
	ck_assert_str_eq(back.namespace_, c.namespace_);
	ck_assert_uint_eq(back.etcd.n_hosts, 3);
	ck_assert_str_eq(back.etcd.hosts[2], c.etcd.hosts[2]);
	ck_assert_str_eq(back.etcd.password, "***");
	ck_assert_str_eq(back.postgresql.superuser_password, "***");
	ck_assert_str_eq(back.restapi.auth_username, "admin");
	ck_assert_str_eq(back.restapi.auth_password, "***");
	ck_assert(back.postgresql.callbacks.timeout == 7.5);
	ck_assert(back.bootstrap_dcs.loop_wait == c.bootstrap_dcs.loop_wait);
	ck_assert_int_eq(back.bootstrap_dcs.maximum_lag_on_failover, c.bootstrap_dcs.maximum_lag_on_failover);
	ck_assert_uint_eq(back.bootstrap_dcs.n_pg_params, c.bootstrap_dcs.n_pg_params);
	ck_assert_str_eq(param(back.bootstrap_dcs.pg_params, back.bootstrap_dcs.n_pg_params,
	                       "checkpoint_completion_target"),
	                 "0.9");
	ck_assert_uint_eq(back.postgresql.n_pg_hba, 2);
	ck_assert_str_eq(back.postgresql.pg_hba[1], c.postgresql.pg_hba[1]);
	ck_assert_str_eq(back.postgresql.connect_address, "[::1]:5441");
	ck_assert(back.postgresql.use_pg_rewind == c.postgresql.use_pg_rewind);
	ck_assert(back.tags.nofailover);
	ck_assert_str_eq(back.log_level, "debug");
	config_free(&back);
	free(text);
	config_free(&c);
}
END_TEST

START_TEST(test_print_minimal)
{
	struct baton_config c;
	char err[512];
	char *text;

	if (access(DEFAULT_BIN_DIR "/postgres", X_OK) != 0)
		return; /* test_minimal_defaults covers this machine */
	ck_assert_msg(config_load(CONFIGS "good/minimal.conf", &c, err, sizeof(err)), "%s", err);
	text = print_to_string(&c);
	ck_assert_ptr_nonnull(strstr(text, "# cacert is not set"));
	ck_assert_ptr_nonnull(strstr(text, "pg_hba = [];"));
	ck_assert_ptr_nonnull(strstr(text, "pgpass = \"/var/lib/baton/node2.pgpass\";"));
	ck_assert_ptr_null(strstr(text, "\"s1\""));
	ck_assert_ptr_null(strstr(text, "\"r1\""));
	free(text);
	config_free(&c);
}
END_TEST

/* ---- timing rule, host:port, dcs settings ---- */

static const struct timing_case {
	double ttl, loop_wait, retry_timeout;
	long long lag;
	const char *expect; /* NULL: valid */
} timing_cases[] = {
	{ 5, 1, 2, 0, NULL },
	{ 30, 10, 10, 1048576, NULL },
	{ 2, 0.1, 0.95, 0, NULL },
	{ 2, 0.5, 0.75, 0, NULL },
	{ 3, 1, 2, 0,
	  "loop_wait + 2 * retry_timeout = 5 > ttl = 3 (a leader could lose its lease "
	  "before noticing)" },
	{ 10, 5, 3, 0, "loop_wait + 2 * retry_timeout = 11 > ttl = 10" },
	{ 1.5, 0.1, 0.1, 0, "ttl = 1.5 < 2" },
	{ 5, 0, 1, 0, "loop_wait = 0 outside [0.1, 3600]" },
	{ 5, 0.001, 1, 0, "loop_wait = 0.001 outside [0.1, 3600]" },
	{ 5, 1, -1, 0, "retry_timeout = -1 outside [0.5, 3600]" },
	{ 5, 0.1, 0.001, 0, "retry_timeout = 0.001 outside [0.5, 3600]" },
	{ 5, 0.1, 0.4999, 0, "retry_timeout = 0.4999 outside [0.5, 3600]" },
	{ 2, 0.1, 0.5, 0, NULL },
	{ 1e308, 1, 2, 0, "ttl = 1e+308 > 86400" },
	{ 86400, 1, 2, 0, NULL },
	{ 86400.5, 1, 2, 0, "ttl = 86400.5 > 86400" },
	{ NAN, 1, 2, 0, "ttl = nan < 2" },
	{ 80000, 4000, 2, 0, "loop_wait = 4000 outside [0.1, 3600]" },
	{ 5, 1, 2, -5, "maximum_lag_on_failover = -5 must be >= 0" },
};

START_TEST(test_timing)
{
	const struct timing_case *tc = &timing_cases[_i];
	struct dcs_settings d = { .ttl = tc->ttl,
		                  .loop_wait = tc->loop_wait,
		                  .retry_timeout = tc->retry_timeout,
		                  .maximum_lag_on_failover = tc->lag };
	char err[256] = "";
	bool ok = config_check_timing(&d, err, sizeof(err));

	if (tc->expect == NULL) {
		ck_assert_msg(ok, "case %d: %s", _i, err);
	} else {
		ck_assert_msg(!ok, "case %d passed", _i);
		ck_assert_msg(strstr(err, tc->expect) != NULL, "case %d: %s", _i, err);
	}
}
END_TEST

static const struct hostport_case {
	const char *in;
	const char *host; /* NULL: rejected */
	int port;
} hostport_cases[] = {
	{ "127.0.0.1:5432", "127.0.0.1", 5432 },
	{ "db.example.com:1", "db.example.com", 1 },
	{ "[::1]:5432", "::1", 5432 },
	{ "[fe80::1%eth0]:65535", "fe80::1%eth0", 65535 },
	{ "localhost", NULL, 0 },
	{ "localhost:", NULL, 0 },
	{ ":5432", NULL, 0 },
	{ "host:0", NULL, 0 },
	{ "host:65536", NULL, 0 },
	{ "host:-1", NULL, 0 },
	{ "host:+5", NULL, 0 },
	{ "host:54x", NULL, 0 },
	{ "::1:5432", NULL, 0 },
	{ "[::1]5432", NULL, 0 },
	{ "[::1", NULL, 0 },
	{ "[]:5432", NULL, 0 },
	{ "http://host:2379", NULL, 0 },
	{ "a b:1", NULL, 0 },
	{ "", NULL, 0 },
};

START_TEST(test_split_hostport)
{
	const struct hostport_case *hc = &hostport_cases[_i];
	char *host = (char *)"untouched";
	int port = -7;
	bool ok = config_split_hostport(hc->in, &host, &port);

	if (hc->host == NULL) {
		ck_assert_msg(!ok, "\"%s\" accepted", hc->in);
		ck_assert_ptr_null(host);
		return;
	}
	ck_assert_msg(ok, "\"%s\" rejected", hc->in);
	ck_assert_str_eq(host, hc->host);
	ck_assert_int_eq(port, hc->port);
	free(host);
}
END_TEST

START_TEST(test_dcs_copy)
{
	struct config_param params[] = { { (char *)"max_connections", (char *)"100" },
		                         { (char *)"wal_level", (char *)"replica" } };
	struct dcs_settings src = { .ttl = 10,
		                    .loop_wait = 2,
		                    .retry_timeout = 3,
		                    .maximum_lag_on_failover = 99,
		                    .pause = true,
		                    .pg_params = params,
		                    .n_pg_params = 2 };
	struct dcs_settings dst, empty = { .ttl = 5 }, dst2;

	ck_assert(dcs_settings_copy(&dst, &src));
	ck_assert(dst.ttl == 10 && dst.loop_wait == 2 && dst.retry_timeout == 3);
	ck_assert_int_eq(dst.maximum_lag_on_failover, 99);
	ck_assert(dst.pause);
	ck_assert_uint_eq(dst.n_pg_params, 2);
	ck_assert_ptr_ne(dst.pg_params, params);
	ck_assert_ptr_ne(dst.pg_params[1].value, params[1].value);
	ck_assert_str_eq(dst.pg_params[1].name, "wal_level");
	ck_assert_str_eq(dst.pg_params[1].value, "replica");
	dcs_settings_free(&dst);
	ck_assert_ptr_null(dst.pg_params);
	ck_assert_uint_eq(dst.n_pg_params, 0);

	ck_assert(dcs_settings_copy(&dst2, &empty));
	ck_assert(dst2.ttl == 5);
	ck_assert(!dst2.pause);
	ck_assert_ptr_null(dst2.pg_params);
	dcs_settings_free(&dst2);
	ck_assert(!dcs_settings_copy(NULL, &src));
}
END_TEST

/* ---- logging ---- */

static const struct level_case {
	const char *name;
	bool ok;
	enum log_level lvl;
} level_cases[] = {
	{ "debug", true, LOG_LVL_DEBUG },   { "info", true, LOG_LVL_INFO },   { "warning", true, LOG_LVL_WARN },
	{ "warn", true, LOG_LVL_WARN },     { "error", true, LOG_LVL_ERROR }, { "INFO", true, LOG_LVL_INFO },
	{ "verbose", false, LOG_LVL_INFO }, { "", false, LOG_LVL_INFO },      { "info ", false, LOG_LVL_INFO },
};

START_TEST(test_level_parse)
{
	const struct level_case *lc = &level_cases[_i];
	enum log_level lvl = (enum log_level)99;

	ck_assert_int_eq(log_level_parse(lc->name, &lvl), lc->ok);
	if (lc->ok)
		ck_assert_int_eq(lvl, lc->lvl);
	else
		ck_assert_int_eq(lvl, 99);
	ck_assert(!log_level_parse(NULL, &lvl));
}
END_TEST

static const struct scrub_case {
	const char *in, *out;
} scrub_cases[] = {
	{ "host=127.0.0.1 port=5432 user=postgres password=secret dbname=postgres",
	  "host=127.0.0.1 port=5432 user=postgres password=*** dbname=postgres" },
	{ "password=secret", "password=***" },
	{ "host=a password = 'it\\'s a secret' user=b", "host=a password = *** user=b" },
	{ "password='' user=b", "password=*** user=b" },
	{ "PassWord=x", "PassWord=***" },
	{ "user=a passfile=/tmp/p host=b", "user=a passfile=/tmp/p host=b" },
	{ "application_name='password=x' host=h", "application_name='password=x' host=h" },
	{ "host=h user=u", "host=h user=u" },
	{ "postgresql://repl:secret@10.0.0.1:5432/postgres?sslmode=disable",
	  "postgresql://repl:***@10.0.0.1:5432/postgres?sslmode=disable" },
	{ "postgres://u@h/db?password=secret&sslmode=require", "postgres://u@h/db?password=***&sslmode=require" },
	{ "postgresql://h:5432/db", "postgresql://h:5432/db" },
	{ "", "" },
};

START_TEST(test_scrub)
{
	const struct scrub_case *sc = &scrub_cases[_i];
	char buf[256];

	memset(buf, 'x', sizeof(buf));
	log_scrub(sc->in, buf, sizeof(buf));
	ck_assert_str_eq(buf, sc->out);
}
END_TEST

START_TEST(test_scrub_bounds)
{
	char buf[16];
	char small[1] = { 'x' };

	memset(buf, 'x', sizeof(buf));
	log_scrub("host=averylonghostname password=secret", buf, 10);
	ck_assert_str_eq(buf, "host=aver");
	ck_assert_int_eq(buf[10], 'x');
	log_scrub("password=secretsecret", buf, sizeof(buf));
	ck_assert_str_eq(buf, "password=***");
	log_scrub("password=s", small, 1);
	ck_assert_int_eq(small[0], '\0');
	log_scrub("password=s", NULL, 0);
	log_scrub(NULL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	char tmp[] = "/tmp/check_log_XXXXXX";
	int fd = mkstemp(tmp), saved;
	char *buf;
	long len;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	unlink(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	f = fdopen(fd, "r");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void write_some_lines(void)
{
	log_set_prefix("node1");
	log_set_level(LOG_LVL_INFO);
	log_debug("hidden %d", 1);
	log_info("promoted to primary on timeline %d", 3);
	log_set_prefix(NULL);
	errno = ENOENT;
	log_warn("multi\nline\n");
	ck_assert_int_eq(errno, ENOENT); /* preserved */
	log_set_level(LOG_LVL_ERROR);
	log_warn("hidden too");
	log_error("bad %s", "thing");
	log_set_level(LOG_LVL_INFO);
}

START_TEST(test_log_lines)
{
	char *out = capture_stderr(write_some_lines);
	regex_t re;
	const char *pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} INFO  node1: "
	                      "promoted to primary on timeline 3 \\[check_config\\.c:[0-9]+\\]\n"
	                      "[0-9-]{10} [0-9:.]{12} WARN  multi line \\[check_config\\.c:[0-9]+\\]\n"
	                      "[0-9-]{10} [0-9:.]{12} ERROR bad thing \\[check_config\\.c:[0-9]+\\]\n$";

	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED), 0);
	ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "log output:\n%s", out);
	regfree(&re);
	free(out);
}
END_TEST

static void write_long_line(void)
{
	char big[10000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error("%s", big);
}

START_TEST(test_log_long_line)
{
	char *out = capture_stderr(write_long_line);
	size_t len = strlen(out);

	ck_assert_uint_lt(len, 4096);
	ck_assert_int_eq(out[len - 1], '\n');
	ck_assert_ptr_nonnull(strstr(out, "aaa... [check_config.c:"));
	ck_assert(strchr(out, '\n') == out + len - 1); /* one line */
	free(out);
}
END_TEST

START_TEST(test_log_enabled)
{
	log_set_level(LOG_LVL_WARN);
	ck_assert(!log_enabled(LOG_LVL_DEBUG));
	ck_assert(!log_enabled(LOG_LVL_INFO));
	ck_assert(log_enabled(LOG_LVL_WARN));
	ck_assert(log_enabled(LOG_LVL_ERROR));
	log_set_level(LOG_LVL_DEBUG);
	ck_assert(log_enabled(LOG_LVL_DEBUG));
	log_set_level(LOG_LVL_INFO);
}
END_TEST

/* ---- watchdog keys (agent/watchdog.h) ---- */

/* Writes the required keys plus `extra` (at line 10) into a temporary file;
 * the caller unlinks path. */
static void write_watchdog_conf(char *path, size_t len, const char *extra)
{
	int fd;
	FILE *f;

	snprintf(path, len, "/tmp/check_config_wd_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "scope = \"main\";\nname = \"node2\";\netcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
	        "restapi = { listen = \"127.0.0.1:8009\"; };\n"
	        "postgresql = { data_dir = \"/var/lib/baton/node2\"; listen = \"127.0.0.1:5442\";\n"
	        "  bin_dir = \"%s\";\n"
	        "  authentication = { superuser = { password = \"s1\"; }; replication = { password = \"r1\"; }; };\n"
	        "};\n"
	        "# watchdog\n"
	        "%s\n",
	        PG_BINDIR, extra);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_watchdog_defaults_and_values)
{
	struct baton_config c;
	char path[64], err[512];

	write_watchdog_conf(path, sizeof(path), "");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.watchdog.mode, "automatic");
	ck_assert_str_eq(c.watchdog.device, "/dev/watchdog");
	ck_assert(c.watchdog.safety_margin == 0.5);
	config_free(&c);
	unlink(path);

	write_watchdog_conf(path, sizeof(path),
	                    "watchdog = { mode = \"required\"; device = \"/dev/watchdog1\"; safety_margin = 1.5; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.watchdog.mode, "required");
	ck_assert_str_eq(c.watchdog.device, "/dev/watchdog1");
	ck_assert(c.watchdog.safety_margin == 1.5);
	config_free(&c);
	unlink(path);

	write_watchdog_conf(path, sizeof(path), "watchdog = { mode = \"off\"; safety_margin = 2; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.watchdog.mode, "off");
	ck_assert(c.watchdog.safety_margin == 2.0);
	config_free(&c);
	unlink(path);
}
END_TEST

static const struct watchdog_bad_case {
	const char *extra;
	const char *expect; /* after "FILE:" */
} watchdog_bad_cases[] = {
	{ "watchdog = { mode = \"on\"; };",
	  ":10: watchdog.mode: must be \"off\", \"automatic\" or \"required\" (got \"on\")" },
	{ "watchdog = { mode = true; };", ":10: watchdog.mode: expected a string (got true)" },
	{ "watchdog = { device = \"watchdog0\"; };",
	  ":10: watchdog.device: must be an absolute path (got \"watchdog0\")" },
	{ "watchdog = { safety_margin = 0; };", ":10: watchdog.safety_margin: must be > 0 (got 0)" },
	{ "watchdog = { safety_margin = -1.5; };", ":10: watchdog.safety_margin: must be > 0 (got -1.5)" },
	{ "watchdog = { safety_margin = \"2\"; };",
	  ":10: watchdog.safety_margin: expected a number of seconds (got \"2\")" },
	{ "watchdog = { devcie = \"/dev/watchdog\"; };",
	  ":10: watchdog.devcie: unknown key (did you mean watchdog.device?)" },
};

START_TEST(test_watchdog_bad)
{
	const struct watchdog_bad_case *bc = &watchdog_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[600];

	write_watchdog_conf(path, sizeof(path), bc->extra);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", bc->extra);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	config_free(&c);
}
END_TEST

/* ---- issue 10: what the file may say, and how it is read ---- */

/* A valid file with pg (inside postgresql = { }) and top (after it) added;
 * mode 0600. path receives its name. */
static void write_conf(char *path, size_t len, const char *pg, const char *top)
{
	int fd;
	FILE *f;

	snprintf(path, len, "/tmp/check_config_sec_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "scope = \"main\";\nname = \"node2\";\netcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
	        "restapi = { listen = \"127.0.0.1:8009\"; };\n"
	        "postgresql = { data_dir = \"/var/lib/baton/node2\"; listen = \"127.0.0.1:5442\";\n"
	        "  bin_dir = \"%s\";\n"
	        "  authentication = { superuser = { password = \"s1\"; }; replication = { password = \"r1\"; }; };\n"
	        "%s\n};\n%s\n",
	        PG_BINDIR, pg ? pg : "", top ? top : "");
	ck_assert_int_eq(fclose(f), 0);
}

static const struct sec_case {
	const char *pg, *top;
	const char *expect;     /* NULL: loads */
	const char *not_echoed; /* must not appear in the error */
} sec_cases[] = {
	{ "allow_from_dcs = [ \"archive_command\", \"Shared_Preload_Libraries\" ];", NULL, NULL, NULL },
	{ "allow_from_dcs = [ \"archive_comand\" ];", NULL,
	  "postgresql.allow_from_dcs[0]: not a parameter taken only from this file", NULL },
	{ "allow_from_dcs = [ \"work_mem\" ];", NULL, "not a parameter taken only from this file", NULL },
	{ "parameters = { archive_command = \"/bin/true\"; };", NULL, NULL, NULL }, /* the node's own file */
	{ NULL, "bootstrap = { dcs = { postgresql = { parameters = { archive_command = \"x\"; }; }; }; };",
	  "bootstrap.dcs.postgresql.parameters.archive_command: runs or loads code", NULL },
	{ "allow_from_dcs = [ \"archive_command\" ];",
	  "bootstrap = { dcs = { postgresql = { parameters = { archive_command = \"x\"; }; }; }; };", NULL, NULL },
	{ NULL, "bootstrap = { dcs = { postgresql = { parameters = { shared_preload_libraries = \"x\"; }; }; }; };",
	  "shared_preload_libraries: runs or loads code", NULL },
	{ "parameters = { work_mem = \"4MB\\nshared_preload_libraries = 'evil'\"; };", NULL,
	  "postgresql.parameters.work_mem: must be one line without control characters (byte 0x0a at offset 3)", NULL },
	{ "parameters = { application_name = \"a\\x1b[2Jb\"; };", NULL, "byte 0x1b", NULL },
	{ "pg_hba = [ \"host all all 0.0.0.0/0 trust\\nlocal all all trust\" ];", NULL,
	  "postgresql.pg_hba[0]: must be one line", NULL },
	{ "pg_hba = [ \"host\\tall\\tall\\t127.0.0.1/32\\tscram-sha-256\" ];", NULL, NULL, NULL }, /* tabs are fine */
	{ "authentication = { superuser = { username = \"po\\nstgres\"; password = \"s\"; }; replication = { password = \"r\"; }; };",
	  NULL, NULL, NULL }, /* placeholder, replaced below: authentication is set twice otherwise */
	{ NULL, "bootstrap = { dcs = { ttl = 1e308; }; };", "bootstrap.dcs.ttl: must be <= 86400 (got 1e+308)", NULL },
	{ NULL, "bootstrap = { dcs = { loop_wait = 0.001; }; };", "bootstrap.dcs.loop_wait: must be >= 0.1 (got 0.001)",
	  NULL },
	{ NULL, "bootstrap = { dcs = { retry_timeout = 0.1; }; };",
	  "bootstrap.dcs.retry_timeout: must be >= 0.5 (got 0.1)", NULL },
	{ NULL, "bootstrap = { dcs = { ttl = 1e999; }; };", "the number 1e999 is out of range", NULL },
	{ NULL, "bootstrap = { dcs = { maximum_lag_on_failover = 99999999999999999999L; }; };",
	  "the number 99999999999999999999L is out of range", NULL },
	{ NULL, "tags = { failover_priority = -99999999999999999999; };",
	  "the number -99999999999999999999 is out of range", NULL },
	{ NULL, "bootstrap = { dcs = { maximum_lag_on_failover = 0x7fffffffffffffffL; }; };", NULL, NULL },
	{ NULL, "etcd2 = { password = 424242; };", "unknown key", "424242" },
	/* Postgres TLS between members: all three files or none */
	{ "tls = { certfile = \"/etc/passwd\"; keyfile = \"/etc/passwd\"; cafile = \"/etc/passwd\"; };", NULL, NULL,
	  NULL },
	{ "tls = { cafile = \"/etc/passwd\"; };", NULL,
	  "postgresql.tls.cafile: needs postgresql.tls.certfile and keyfile too", NULL },
	{ "tls = { certfile = \"/etc/passwd\"; keyfile = \"/etc/passwd\"; };", NULL,
	  "postgresql.tls.certfile: needs postgresql.tls.cafile too", NULL },
	{ "tls = { certfile = \"/etc/passwd\"; cafile = \"/etc/passwd\"; };", NULL, "postgresql.tls.keyfile", NULL },
	{ "tls = { certfile = \"relative.pem\"; keyfile = \"/etc/passwd\"; cafile = \"/etc/passwd\"; };", NULL,
	  "postgresql.tls.certfile", NULL },
	/* custom (dotted) names and lo_compat_privileges are allowed by name */
	{ "allow_from_dcs = [ \"auto_explain.log_min_duration\", \"PG_Stat_Statements.max\", "
	  "\"lo_compat_privileges\", \"my$ext.a_1.b\" ];",
	  NULL, NULL, NULL },
	{ "allow_from_dcs = [ \"plperl.\" ];", NULL,
	  "postgresql.allow_from_dcs[0]: not a custom parameter name (an empty part around a '.'", NULL },
	{ "allow_from_dcs = [ \"lo_compat_privileges\", \".on_init\" ];", NULL,
	  "postgresql.allow_from_dcs[1]: not a custom parameter name", NULL },
	{ "allow_from_dcs = [ \"a..b\" ];", NULL, "not a custom parameter name", NULL },
	{ "allow_from_dcs = [ \"plperl.on init\" ];", NULL,
	  "postgresql.allow_from_dcs[0]: not a parameter name (byte 0x20 at offset 9)", NULL },
};

START_TEST(test_security_rules)
{
	const struct sec_case *t = &sec_cases[_i];
	struct baton_config c;
	char path[64], err[1024];
	bool ok;

	if (_i == 11) {
		/* A user name with a line break (its own file: authentication is a group). */
		int fd;
		FILE *f;

		snprintf(path, sizeof(path), "/tmp/check_config_sec_XXXXXX");
		fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		f = fdopen(fd, "w");
		fprintf(f,
		        "scope = \"main\"; name = \"n\"; etcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
		        "restapi = { listen = \"127.0.0.1:8009\"; };\n"
		        "postgresql = { data_dir = \"/d\"; listen = \"127.0.0.1:5442\"; bin_dir = \"%s\";\n"
		        "  authentication = { superuser = { username = \"po\\nstgres\"; password = \"s\"; };\n"
		        "                     replication = { password = 4242; }; }; };\n",
		        PG_BINDIR);
		fclose(f);
		ck_assert(!config_load(path, &c, err, sizeof(err)));
		ck_assert_msg(strstr(err, "postgresql.authentication.superuser.username: must be one line") != NULL,
		              "%s", err);
		unlink(path);
		return;
	}
	write_conf(path, sizeof(path), t->pg, t->top);
	ok = config_load(path, &c, err, sizeof(err));
	unlink(path);
	if (t->expect == NULL) {
		ck_assert_msg(ok, "case %d: %s", _i, err);
		config_free(&c);
		return;
	}
	ck_assert_msg(!ok, "case %d loaded", _i);
	ck_assert_msg(strstr(err, t->expect) != NULL, "case %d: %s", _i, err);
	ck_assert_msg(t->not_echoed == NULL || strstr(err, t->not_echoed) == NULL, "case %d echoes: %s", _i, err);
}
END_TEST

/* A password of the wrong type is named by its type only. */
START_TEST(test_secret_wrong_type)
{
	static const char *const bodies[] = {
		"replication = { password = 4242; }; }; };\n",
		"replication = { password = 42.5; }; }; };\n",
		"replication = { password = true; }; }; };\n",
		"replication = { password = 4242424242424L; }; }; };\n",
	};
	struct baton_config c;
	char path[64], err[1024];

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int fd;
		FILE *f;

		snprintf(path, sizeof(path), "/tmp/check_config_sec_XXXXXX");
		fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		f = fdopen(fd, "w");
		fprintf(f,
		        "scope = \"main\"; name = \"n\"; etcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
		        "restapi = { listen = \"127.0.0.1:8009\"; };\n"
		        "postgresql = { data_dir = \"/d\"; listen = \"127.0.0.1:5442\"; bin_dir = \"%s\";\n"
		        "  authentication = { superuser = { password = \"s\"; };\n%s",
		        PG_BINDIR, bodies[i]);
		fclose(f);
		ck_assert(!config_load(path, &c, err, sizeof(err)));
		unlink(path);
		ck_assert_msg(strstr(err, "postgresql.authentication.replication.password: expected a string (got a") !=
		                      NULL,
		              "%s", err);
		ck_assert_msg(strstr(err, "4242") == NULL && strstr(err, "42.5") == NULL && strstr(err, "true") == NULL,
		              "password echoed: %s", err);
	}
}
END_TEST

/* A FIFO or a device is refused at once; nothing blocks on it. */
START_TEST(test_not_a_regular_file)
{
	struct baton_config c;
	char dir[] = "/tmp/check_config_fifo_XXXXXX", path[128], err[512];
	double t0;
	struct timespec ts;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	ck_assert(!config_load(path, &c, err, sizeof(err)));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ck_assert_msg((double)ts.tv_sec + ts.tv_nsec / 1e9 - t0 < 1.0, "took too long");
	ck_assert_msg(strstr(err, "fifo: a FIFO, not a configuration file") != NULL, "%s", err);
	unlink(path);
	rmdir(dir);
	ck_assert(!config_load("/dev/null", &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/dev/null: a character device, not a configuration file") != NULL, "%s", err);
	ck_assert(!config_load("/tmp", &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/tmp: a directory") != NULL, "%s", err);
}
END_TEST

/* A string of a few MB loads in linear time (libconfig alone: 8 s for 2 MB). */
START_TEST(test_long_string_linear)
{
	const size_t sizes[] = { (size_t)1 << 20, (size_t)4 << 20 };
	double took[2];
	struct baton_config c;

	for (size_t k = 0; k < 2; k++) {
		char path[64], err[512], *v = malloc(sizes[k] + 64);
		struct timespec a, b;

		ck_assert_ptr_nonnull(v);
		snprintf(v, 64, "parameters = { application_name = \"");
		memset(v + strlen(v), 'x', sizes[k]);
		snprintf(v + strlen("parameters = { application_name = \"") + sizes[k], 16, "\"; };");
		write_conf(path, sizeof(path), v, NULL);
		clock_gettime(CLOCK_MONOTONIC, &a);
		ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
		clock_gettime(CLOCK_MONOTONIC, &b);
		took[k] = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
		ck_assert_uint_eq(strlen(param(c.postgresql.params, c.postgresql.n_params, "application_name")),
		                  sizes[k]);
		config_free(&c);
		unlink(path);
		free(v);
	}
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's realloc always copies, and libconfig grows a string by
	 * appending (glibc's realloc grows big blocks in place): the time is
	 * the sanitizer's, not ours. The load itself was checked above. */
	fprintf(stderr, "test_long_string_linear: sanitizer build, timing not checked (1 MB %.2f s, 4 MB %.2f s)\n",
	        took[0], took[1]);
#else
	/* 4 times the size: linear is ~4x, quadratic 16x; allow noise. */
	ck_assert_msg(took[1] < 3.0, "4 MB took %.2f s", took[1]);
	ck_assert_msg(took[1] < 10 * took[0] + 0.3, "1 MB %.3f s, 4 MB %.3f s: not linear", took[0], took[1]);
#endif
}
END_TEST

START_TEST(test_file_exposed)
{
	struct baton_config c;
	char path[64], err[512], why[512];

	write_conf(path, sizeof(path), NULL, NULL);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert(!config_file_exposed(&c, why, sizeof(why))); /* 0600 from mkstemp */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert(config_file_exposed(&c, why, sizeof(why)));
	ck_assert_msg(strstr(why, "holds passwords (postgresql.authentication.superuser.password, "
	                          "postgresql.authentication.replication.password) and is readable or writable by its "
	                          "group (mode 0640): chmod go-rwx") != NULL,
	              "%s", why);
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert(config_file_exposed(&c, why, sizeof(why)));
	ck_assert_msg(strstr(why, "by others (mode 0604)") != NULL, "%s", why);
	config_free(&c);
	unlink(path);
}
END_TEST

/* The PEM files a config names: parsed by config_check_files. */
START_TEST(test_pem_files)
{
	static const char *const good_cert = "-----BEGIN CERTIFICATE-----\nTUlJQmFh\nYmNk\n-----END CERTIFICATE-----\n";
	static const char *const good_key = "junk before\n-----BEGIN EC PRIVATE KEY-----\nTUlJQmFhYmNk\n"
	                                    "-----END EC PRIVATE KEY-----\n";
	static const struct {
		const char *cert, *key, *expect;
	} cases[] = {
		{ NULL, NULL, NULL },
		{ "garbage\n", NULL, "restapi.certfile: %s: no PEM \"CERTIFICATE\" block" },
		{ "-----BEGIN CERTIFICATE-----\nMIIB$$$$\n-----END CERTIFICATE-----\n", NULL,
		  "restapi.certfile: %s:1: the CERTIFICATE block is not valid base64" },
		{ "-----BEGIN CERTIFICATE-----\nTUlJ\n", NULL, "\"BEGIN CERTIFICATE\" has no END line" },
		{ "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END PRIVATE KEY-----\n", NULL,
		  "the END line does not match \"BEGIN CERTIFICATE\" of line 1" },
		{ NULL, "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n",
		  "restapi.keyfile: %s: no PEM \"PRIVATE KEY\" block" },
	};
	char dir[] = "/tmp/check_config_pem_XXXXXX", cert[128], key[128], conf[160], err[1024], want[512];
	struct baton_config c;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fopen(cert, "w");

		fputs(cases[i].cert ? cases[i].cert : good_cert, f);
		fclose(f);
		f = fopen(key, "w");
		fputs(cases[i].key ? cases[i].key : good_key, f);
		fclose(f);
		/* A file of its own: the TLS keys go inside the restapi group. */
		{
			char path[64];
			int fd;

			snprintf(path, sizeof(path), "/tmp/check_config_sec_XXXXXX");
			fd = mkstemp(path);
			f = fdopen(fd, "w");
			fprintf(f,
			        "scope = \"main\"; name = \"n\"; etcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
			        "restapi = { listen = \"127.0.0.1:8009\"; certfile = \"%s\"; keyfile = \"%s\"; };\n"
			        "postgresql = { data_dir = \"/d\"; listen = \"127.0.0.1:5442\"; bin_dir = \"%s\";\n"
			        "  authentication = { superuser = { password = \"s\"; }; replication = { password = \"r\"; }; }; };\n",
			        cert, key, PG_BINDIR);
			fclose(f);
			snprintf(conf, sizeof(conf), "%s", path);
		}
		ck_assert_msg(config_load(conf, &c, err, sizeof(err)), "%s", err);
		if (cases[i].expect == NULL) {
			ck_assert_msg(config_check_files(&c, err, sizeof(err)), "case %zu: %s", i, err);
		} else {
			ck_assert_msg(!config_check_files(&c, err, sizeof(err)), "case %zu passed", i);
			snprintf(want, sizeof(want), cases[i].expect, strstr(cases[i].expect, "keyfile") ? key : cert);
			ck_assert_msg(strstr(err, want) != NULL, "case %zu: %s\nwanted: %s", i, err, want);
		}
		config_free(&c);
		unlink(conf);
	}
	unlink(cert);
	unlink(key);
	rmdir(dir);
}
END_TEST

START_TEST(test_param_allowed_from_dcs)
{
	char *allow[] = { "archive_command" };

	ck_assert(config_param_allowed_from_dcs("work_mem", NULL, 0));
	ck_assert(!config_param_allowed_from_dcs("archive_command", NULL, 0));
	ck_assert(config_param_allowed_from_dcs("archive_command", allow, 1));
	ck_assert(config_param_allowed_from_dcs("ARCHIVE_COMMAND", allow, 1));
	ck_assert(!config_param_allowed_from_dcs("restore_command", allow, 1));
}
END_TEST

/* ---- bootstrap.initdb ---- */

START_TEST(test_initdb_defaults_and_values)
{
	struct baton_config c;
	char path[64], err[512], *text;

	write_watchdog_conf(path, sizeof(path), "");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.bootstrap_initdb.encoding, "UTF8");
	ck_assert_str_eq(c.bootstrap_initdb.locale, "C.UTF-8");
	ck_assert(c.bootstrap_initdb.data_checksums);
	/* show-config prints them back with their doc lines */
	text = print_to_string(&c);
	ck_assert_ptr_nonnull(strstr(text, "encoding = \"UTF8\";"));
	ck_assert_ptr_nonnull(strstr(text, "locale = \"C.UTF-8\";"));
	ck_assert_ptr_nonnull(strstr(text, "data_checksums = true;"));
	ck_assert_ptr_nonnull(strstr(text, "initdb --data-checksums"));
	free(text);
	config_free(&c);
	unlink(path);

	write_watchdog_conf(
	        path, sizeof(path),
	        "bootstrap = { initdb = { encoding = \"LATIN1\"; locale = \"C\"; data_checksums = false; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.bootstrap_initdb.encoding, "LATIN1");
	ck_assert_str_eq(c.bootstrap_initdb.locale, "C");
	ck_assert(!c.bootstrap_initdb.data_checksums);
	text = print_to_string(&c);
	ck_assert_ptr_nonnull(strstr(text, "data_checksums = false;"));
	free(text);
	config_free(&c);
	unlink(path);

	/* POSIX exists wherever the C library does */
	write_watchdog_conf(path, sizeof(path), "bootstrap = { initdb = { locale = \"POSIX\"; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.bootstrap_initdb.locale, "POSIX");
	ck_assert(c.bootstrap_initdb.data_checksums);
	config_free(&c);
	unlink(path);
}
END_TEST

static const struct initdb_bad_case {
	const char *extra;
	const char *expect; /* after "FILE:" */
} initdb_bad_cases[] = {
	{ "bootstrap = { initdb = { locale = \"xx_NOWHERE.UTF-8\"; }; };",
	  ":10: bootstrap.initdb.locale: locale not installed on this host (`locale -a` lists those that are) (got \"xx_NOWHERE.UTF-8\")" },
	{ "bootstrap = { initdb = { locale = \"C.UTF-8 --no-sync\"; }; };",
	  ":10: bootstrap.initdb.locale: expected a locale name such as \"C.UTF-8\" or \"en_US.UTF-8\" (got \"C.UTF-8 --no-sync\")" },
	{ "bootstrap = { initdb = { locale = \"\"; }; };", ":10: bootstrap.initdb.locale: must not be empty" },
	{ "bootstrap = { initdb = { encoding = \"-D/tmp\"; }; };",
	  ":10: bootstrap.initdb.encoding: expected an encoding name such as \"UTF8\" (letters, digits, \"_-\") (got \"-D/tmp\")" },
	{ "bootstrap = { initdb = { encoding = 8; }; };", ":10: bootstrap.initdb.encoding: expected a string (got 8)" },
	{ "bootstrap = { initdb = { data_checksums = \"on\"; }; };",
	  ":10: bootstrap.initdb.data_checksums: expected true or false" },
	{ "bootstrap = { initdb = { data_checksum = true; }; };",
	  ":10: bootstrap.initdb.data_checksum: unknown key (did you mean bootstrap.initdb.data_checksums?)" },
	/* Patroni's list form: what baton passes itself is refused, with the key to use */
	{ "bootstrap = { initdb = ( \"pgdata=/tmp/x\" ); };",
	  ":10: bootstrap.initdb[0]: baton passes the data directory itself: use postgresql.data_dir (got "
	  "\"pgdata=/tmp/x\")" },
	{ "bootstrap = { initdb = ( \"data-checksums\", { username = \"admin\"; } ); };",
	  ":10: bootstrap.initdb[1]: baton creates the superuser itself: use "
	  "postgresql.authentication.superuser.username (got \"username=admin\")" },
	{ "bootstrap = { initdb = ( { auth_host = \"trust\"; } ); };",
	  ":10: bootstrap.initdb[0]: baton sets scram-sha-256 for host connections: use postgresql.pg_hba (got "
	  "\"auth-host=trust\")" },
	{ "bootstrap = { initdb = ( \"U\" ); };",
	  ":10: bootstrap.initdb[0]: a one-letter option: use initdb's long option name (got \"U\")" },
	{ "bootstrap = { initdb = ( \"--no-sync\" ); };",
	  ":10: bootstrap.initdb[0]: expected an initdb long option without dashes, \"name\" or \"name=value\" "
	  "(got \"--no-sync\")" },
	{ "bootstrap = { initdb = ( 5 ); };",
	  ":10: bootstrap.initdb[0]: expected an option name (\"data-checksums\") or a group of one option "
	  "({ encoding = \"UTF8\"; }) (got 5)" },
	{ "bootstrap = { initdb = ( { a = 1; b = 2; } ); };", ":10: bootstrap.initdb[0]: expected an option name" },
	{ "bootstrap = { initdb = ( { waldir = [ \"x\" ]; } ); };",
	  ":10: bootstrap.initdb[0]: waldir: expected a string, number or boolean (got an array)" },
	{ "bootstrap = { initdb = ( { locale = \"xx_NOWHERE.UTF-8\"; } ); };",
	  ":10: bootstrap.initdb[0]: locale not installed on this host" },
	{ "bootstrap = { initdb = ( { encoding = \"-D/tmp\"; } ); };",
	  ":10: bootstrap.initdb[0]: expected an encoding name" },
	{ "bootstrap = { initdb = { options = [ \"pwfile=/tmp/pw\" ]; }; };",
	  ":10: bootstrap.initdb.options[0]: baton passes the superuser's password itself" },
	{ "bootstrap = { initdb = { options = [ \"encoding=LATIN1\" ]; }; };",
	  ":10: bootstrap.initdb.options[0]: use bootstrap.initdb.encoding" },
	{ "bootstrap = { post_bootstrap = \"/nonexistent/pb.sh\"; };",
	  ":10: bootstrap.post_bootstrap: cannot run /nonexistent/pb.sh: No such file or directory" },
	{ "bootstrap = { post_bootstrap = \"pb.sh\"; };", ":10: bootstrap.post_bootstrap: must be an absolute path" },
	{ "bootstrap = { post_init = \"/bin/true\"; };",
	  ":10: bootstrap.post_init: bootstrap.post_init is a Patroni key baton does not support: use "
	  "bootstrap.post_bootstrap" },
};

/* Patroni's list form: options with and without values, the three typed
 * ones mapped to their keys, data checksums off unless listed. */
static const struct initdb_list_case {
	const char *extra;
	const char *encoding, *locale;
	bool checksums;
	const char *options; /* joined with ' ' */
} initdb_list_cases[] = {
	{ "bootstrap = { initdb = ( { encoding = \"LATIN1\"; }, \"data-checksums\", { wal_segsize = 32; }, "
	  "\"no-sync\" ); };",
	  "LATIN1", "C.UTF-8", true, "wal-segsize=32 no-sync" },
	{ "bootstrap = { initdb = ( \"no-sync\" ); };", "UTF8", "C.UTF-8", false, "no-sync" },
	{ "bootstrap = { initdb = [ \"data-checksums\" ]; };", "UTF8", "C.UTF-8", true, "" },
	{ "bootstrap = { initdb = ( { locale = \"C\"; }, \"k\", { lc-messages = \"C\"; } ); };", "UTF8", "C", true,
	  "lc-messages=C" },
	{ "bootstrap = { initdb = ( ); };", "UTF8", "C.UTF-8", false, "" },
	{ "bootstrap = { initdb = { data_checksums = false; options = [ \"wal-segsize=64\", \"no-instructions\" ]; "
	  "}; };",
	  "UTF8", "C.UTF-8", false, "wal-segsize=64 no-instructions" },
};

START_TEST(test_initdb_list)
{
	const struct initdb_list_case *lc = &initdb_list_cases[_i];
	struct baton_config c;
	char path[64], err[512], joined[256] = "";

	write_watchdog_conf(path, sizeof(path), lc->extra);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s: %s", lc->extra, err);
	unlink(path);
	ck_assert_str_eq(c.bootstrap_initdb.encoding, lc->encoding);
	ck_assert_str_eq(c.bootstrap_initdb.locale, lc->locale);
	ck_assert_int_eq(c.bootstrap_initdb.data_checksums, lc->checksums);
	for (size_t i = 0; i < c.bootstrap_initdb.n_options; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s", i ? " " : "",
		         c.bootstrap_initdb.options[i]);
	ck_assert_str_eq(joined, lc->options);
	config_free(&c);
}
END_TEST

/* Patroni keys baton does not support: the key, what to use instead, and
 * the line, in place of "unknown key". */
static const struct patroni_case {
	const char *extra;
	const char *expect; /* after "FILE:" */
} patroni_cases[] = {
	{ "kubernetes = { namespace = \"default\"; };",
	  ":10: kubernetes: kubernetes is a Patroni key baton does not support: the only DCS is etcd (v3): use "
	  "etcd.hosts" },
	{ "etcd3 = { hosts = \"127.0.0.1:2379\"; };",
	  ":10: etcd3: etcd3 is a Patroni key baton does not support: baton speaks etcd's v3 API through the etcd "
	  "group" },
	{ "consul = { host = \"x\"; };", ":10: consul: consul is a Patroni key baton does not support" },
	{ "zookeeper = { hosts = [ \"x\" ]; };", ":10: zookeeper: zookeeper is a Patroni key baton does not support" },
	{ "raft = { data_dir = \"/x\"; };", ":10: raft: raft is a Patroni key baton does not support" },
	{ "citus = { group = 0; };", ":10: citus: citus is a Patroni key baton does not support" },
	{ "ctl = { insecure = true; };", ":10: ctl: ctl is a Patroni key baton does not support: batonctl reads this "
	                                 "same file" },
	{ "log = { level = \"info\";\n dir = \"/var/log/baton\"; };",
	  ":11: log.dir: log.dir is a Patroni key baton does not support: baton logs to stderr" },
	{ "bootstrap = { dcs = { standby_cluster = { host = \"x\"; recovery_min_apply_delay = \"1h\"; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.recovery_min_apply_delay: "
	  "bootstrap.dcs.standby_cluster.recovery_min_apply_delay is a Patroni key baton does not support: not "
	  "supported: a delayed standby leader" },
	{ "bootstrap = { dcs = { standby_cluster = { host = \"x\"; create_replica_methods = [ \"basebackup\" ]; }; }; "
	  "};",
	  ":10: bootstrap.dcs.standby_cluster.create_replica_methods: bootstrap.dcs.standby_cluster.create_replica_methods "
	  "is a Patroni key baton does not support: the standby cluster's first member is a base backup" },
	{ "bootstrap = { dcs = { postgresql = { use_pg_rewind = true; }; }; };",
	  ":10: bootstrap.dcs.postgresql.use_pg_rewind: bootstrap.dcs.postgresql.use_pg_rewind is a Patroni key baton "
	  "does not support: use postgresql.use_pg_rewind in each node's own file" },
};

START_TEST(test_patroni_unsupported)
{
	const struct patroni_case *pc = &patroni_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[700];

	write_watchdog_conf(path, sizeof(path), pc->extra);
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", pc->extra);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, pc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	config_free(&c);
}
END_TEST

/* standby_cluster: in the node file (bootstrap.dcs.standby_cluster) and in
 * the config key (edit-config, PATCH /config), validated, round-tripped. */
START_TEST(test_standby_cluster_file)
{
	struct baton_config c;
	char path[64], err[512], *json;
	struct dcs_settings d;

	write_watchdog_conf(path, sizeof(path),
	                    "bootstrap = { dcs = { standby_cluster = { host = \"10.1.0.5\"; port = 5433; "
	                    "primary_slot_name = \"site_b\"; restore_command = \"/bin/false %f %p\"; }; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_str_eq(c.bootstrap_dcs.standby_host, "10.1.0.5");
	ck_assert_int_eq(c.bootstrap_dcs.standby_port, 5433);
	ck_assert_str_eq(c.bootstrap_dcs.standby_slot, "site_b");
	ck_assert_str_eq(c.bootstrap_dcs.standby_restore_command, "/bin/false %f %p");
	/* What the bootstrap writes to the config key reads back the same. */
	json = dcs_config_json(&c.bootstrap_dcs);
	ck_assert_ptr_nonnull(json);
	ck_assert_msg(dcs_config_from_json(json, &d, err, sizeof(err)), "%s: %s", json, err);
	ck_assert_str_eq(d.standby_host, "10.1.0.5");
	ck_assert_int_eq(d.standby_port, 5433);
	ck_assert_str_eq(d.standby_slot, "site_b");
	ck_assert_str_eq(d.standby_restore_command, "/bin/false %f %p");
	dcs_settings_free(&d);
	free(json);
	config_free(&c);

	/* Not set: a normal cluster, and the key says nothing about it. */
	write_watchdog_conf(path, sizeof(path), "");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_ptr_null(c.bootstrap_dcs.standby_host);
	json = dcs_config_json(&c.bootstrap_dcs);
	ck_assert_ptr_nonnull(json);
	ck_assert_ptr_null(strstr(json, "standby_cluster"));
	free(json);
	config_free(&c);
}
END_TEST

static const struct standby_bad_case {
	const char *extra;
	const char *expect; /* after "FILE" */
} standby_bad_cases[] = {
	{ "bootstrap = { dcs = { standby_cluster = { host = \"a b\"; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.host: must hold only letters, digits" },
	{ "bootstrap = { dcs = { standby_cluster = { host = \"-oFoo\"; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.host: must not start with '-'" },
	{ "bootstrap = { dcs = { standby_cluster = { host = \"x\"; port = 70000; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.port: must be <= 65535 (got 70000)" },
	{ "bootstrap = { dcs = { standby_cluster = { host = \"x\"; primary_slot_name = \"Site-B\"; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.primary_slot_name: a slot name is 1 to 63 of a-z, 0-9 and _" },
	{ "bootstrap = { dcs = { standby_cluster = { hots = \"x\"; }; }; };",
	  ":10: bootstrap.dcs.standby_cluster.hots: unknown key (did you mean bootstrap.dcs.standby_cluster.host?)" },
};

START_TEST(test_standby_cluster_file_bad)
{
	const struct standby_bad_case *bc = &standby_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[700];

	write_watchdog_conf(path, sizeof(path), bc->extra);
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", bc->extra);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	config_free(&c);
}
END_TEST

static const struct standby_json_case {
	const char *json;
	const char *expect; /* NULL: accepted; else the error */
} standby_json_cases[] = {
	{ "{\"standby_cluster\": {\"host\": \"db.site-a.example\", \"port\": \"5433\"}}", NULL },
	{ "{\"standby_cluster\": null}", NULL },
	{ "{\"standby_cluster\": {\"port\": 5432}}", "standby_cluster.host: required (the other site's primary)" },
	{ "{\"standby_cluster\": {\"host\": \"x;rm\"}}",
	  "standby_cluster.host: \"x;rm\" must hold only letters, digits" },
	{ "{\"standby_cluster\": {\"host\": \"-oFoo\"}}", "standby_cluster.host: \"-oFoo\" must not start with '-'" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"port\": 0}}", "standby_cluster.port: expected a port 1..65535" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"port\": \"54x\"}}",
	  "standby_cluster.port: expected a port 1..65535" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"primary_slot_name\": \"a-b\"}}",
	  "standby_cluster.primary_slot_name: expected 1 to 63 of a-z, 0-9 and _" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"archive_cleanup_command\": \"/bin/true\"}}",
	  "standby_cluster.archive_cleanup_command: not supported by baton" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"recovery_min_apply_delay\": \"1h\"}}",
	  "standby_cluster.recovery_min_apply_delay: not supported by baton" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"create_replica_methods\": []}}",
	  "standby_cluster.create_replica_methods: not supported by baton" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"hots\": 1}}", "standby_cluster: unknown key \"hots\"" },
	{ "{\"standby_cluster\": {\"host\": \"x\", \"restore_command\": \"a\\nb\"}}",
	  "standby_cluster.restore_command: must be one line" },
	{ "{\"standby_cluster\": \"x:5432\"}", "standby_cluster: expected an object" },
};

START_TEST(test_standby_cluster_json)
{
	const struct standby_json_case *jc = &standby_json_cases[_i];
	struct dcs_settings d;
	char err[512] = "";
	bool ok = dcs_config_from_json(jc->json, &d, err, sizeof(err));

	if (!jc->expect) {
		ck_assert_msg(ok, "%s: %s", jc->json, err);
		if (strstr(jc->json, "null")) {
			ck_assert_ptr_null(d.standby_host);
		} else {
			ck_assert_str_eq(d.standby_host, "db.site-a.example");
			ck_assert_int_eq(d.standby_port, 5433);
			ck_assert_ptr_null(d.standby_slot);
		}
		dcs_settings_free(&d);
		return;
	}
	ck_assert_msg(!ok, "%s accepted", jc->json);
	ck_assert_msg(strstr(err, jc->expect) != NULL, "%s: error\n  %s\ndoes not contain\n  %s", jc->json, err,
	              jc->expect);
}
END_TEST

/* A deep copy of the settings carries standby_cluster (the loop copies them). */
START_TEST(test_standby_cluster_copy)
{
	struct dcs_settings d, e;
	char err[512];

	ck_assert(dcs_config_from_json("{\"standby_cluster\": {\"host\": \"h\", \"primary_slot_name\": \"s\"}}", &d,
	                               err, sizeof(err)));
	ck_assert(dcs_settings_copy(&e, &d));
	dcs_settings_free(&d);
	ck_assert_str_eq(e.standby_host, "h");
	ck_assert_str_eq(e.standby_slot, "s");
	ck_assert_int_eq(e.standby_port, 5432);
	dcs_settings_free(&e);
}
END_TEST

/* The Patroni keys baton does support, in the file: synchronous_mode as a
 * string, pg_ident lines, the REST allowlist. */
static const struct patroni_key_case {
	const char *extra;
	const char *expect;         /* NULL: loads; else after "FILE:" */
	int sync_mode, sync_quorum; /* -1: not checked */
} patroni_key_cases[] = {
	{ "bootstrap = { dcs = { synchronous_mode = \"quorum\"; }; };", NULL, 1, 1 },
	{ "bootstrap = { dcs = { synchronous_mode = \"on\"; }; };", NULL, 1, 0 },
	{ "bootstrap = { dcs = { synchronous_mode = \"off\"; }; };", NULL, 0, 0 },
	{ "bootstrap = { dcs = { synchronous_mode = true; }; };", NULL, 1, 0 },
	{ "bootstrap = { dcs = { synchronous_mode = \"quorum\"; synchronous_quorum = true; }; };", NULL, 1, 1 },
	{ "bootstrap = { dcs = { synchronous_mode = \"quorum\"; synchronous_quorum = false; }; };",
	  ":10: bootstrap.dcs.synchronous_quorum: false contradicts synchronous_mode = \"quorum\" (set one of them)",
	  -1, -1 },
	{ "bootstrap = { dcs = { synchronous_mode = \"yes\"; }; };",
	  ":10: bootstrap.dcs.synchronous_mode: expected true, false, \"on\", \"off\" or \"quorum\" (got \"yes\")", -1,
	  -1 },
	{ "bootstrap = { dcs = { synchronous_mode_strict = \"on\"; }; };",
	  ":10: bootstrap.dcs.synchronous_mode_strict: expected true or false (got \"on\")", -1, -1 },
	{ "restapi2 = { allowlist = [ \"127.0.0.1\" ]; };", ":10: restapi2: unknown key", -1, -1 },
	{ "postgresql2 = { pg_ident = [ \"m root postgres\" ]; };", ":10: postgresql2: unknown key", -1, -1 },
};

START_TEST(test_patroni_keys)
{
	const struct patroni_key_case *pc = &patroni_key_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[700];
	bool ok;

	write_watchdog_conf(path, sizeof(path), pc->extra);
	ok = config_load(path, &c, err, sizeof(err));
	unlink(path);
	if (pc->expect == NULL) {
		ck_assert_msg(ok, "%s: %s", pc->extra, err);
		ck_assert_int_eq(c.bootstrap_dcs.synchronous_mode, pc->sync_mode);
		ck_assert_int_eq(c.bootstrap_dcs.synchronous_quorum, pc->sync_quorum);
	} else {
		ck_assert_msg(!ok, "%s loaded", pc->extra);
		snprintf(want, sizeof(want), "%s%s", path, pc->expect);
		ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	}
	config_free(&c);
}
END_TEST

/* postgresql.pg_ident and restapi.allowlist, inside their groups. */
static const struct list_key_case {
	const char *pg, *api;
	const char *expect; /* NULL: loads; else after "FILE:" */
	size_t n_ident, n_allow;
} list_key_cases[] = {
	{ "pg_ident = [ \"ops root postgres\", \"ops baton postgres\" ];", "", NULL, 2, 0 },
	{ "pg_ident = [ \"ops root\\npostgres\" ];", "",
	  ":6: postgresql.pg_ident[0]: must be one line without control characters (byte 0x0a at offset 8)", 0, 0 },
	{ "", "allowlist = [ \"127.0.0.1\", \"10.0.0.0/8\", \"::1\", \"fd00::/8\" ];", NULL, 0, 4 },
	{ "", "allowlist = [ \"10.0.0.1/8\" ];", ":4: restapi.allowlist[0]: expected an IP address or network", 0, 0 },
	{ "", "allowlist = [ \"db1.example.com\" ];",
	  ":4: restapi.allowlist[0]: expected an IP address or network, \"10.0.0.5\", \"10.0.0.0/24\" or "
	  "\"fd00::/8\" (host names are not resolved; bits past the prefix must be 0) (got \"db1.example.com\")",
	  0, 0 },
	{ "", "allowlist = [ \"10.0.0.0/33\" ];", ":4: restapi.allowlist[0]: expected an IP address or network", 0, 0 },
	{ "pg_ctl_timeout = 120;", "", NULL, 0, 0 },
	{ "pg_ctl_timeout = 0;", "", ":6: postgresql.pg_ctl_timeout: must be >= 1 (got 0)", 0, 0 },
	{ "pg_ctl_timeout = 601;", "", ":6: postgresql.pg_ctl_timeout: must be <= 600 (got 601)", 0, 0 },
	{ "", "allowlist_include_members = true;",
	  ":4: restapi.allowlist_include_members: restapi.allowlist_include_members is a Patroni key baton does not "
	  "support: not supported yet: list the members' addresses in restapi.allowlist",
	  0, 0 },
};

START_TEST(test_list_keys)
{
	const struct list_key_case *lc = &list_key_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[700];
	int fd;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/tmp/check_config_lk_XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "scope = \"main\";\nname = \"node2\";\netcd = { hosts = [\"127.0.0.1:2379\"]; };\n"
	        "restapi = { listen = \"127.0.0.1:8009\"; %s };\n"
	        "postgresql = { data_dir = \"/var/lib/baton/node2\"; listen = \"127.0.0.1:5442\";\n"
	        "  %s\n"
	        "  bin_dir = \"%s\";\n"
	        "  authentication = { superuser = { password = \"s1\"; }; replication = { password = \"r1\"; }; };\n"
	        "};\n",
	        lc->api, lc->pg, PG_BINDIR);
	ck_assert_int_eq(fclose(f), 0);
	ok = config_load(path, &c, err, sizeof(err));
	unlink(path);
	if (lc->expect == NULL) {
		ck_assert_msg(ok, "%s%s: %s", lc->pg, lc->api, err);
		ck_assert_uint_eq(c.postgresql.n_pg_ident, lc->n_ident);
		ck_assert_uint_eq(c.restapi.n_allowlist, lc->n_allow);
		if (lc->n_ident > 0)
			ck_assert_str_eq(c.postgresql.pg_ident[1], "ops baton postgres");
		if (lc->n_allow > 0)
			ck_assert_str_eq(c.restapi.allowlist[3], "fd00::/8");
		ck_assert(c.postgresql.pg_ctl_timeout == (strstr(lc->pg, "pg_ctl_timeout") ? 120 : 30));
	} else {
		ck_assert_msg(!ok, "%s%s loaded", lc->pg, lc->api);
		snprintf(want, sizeof(want), "%s%s", path, lc->expect);
		ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	}
	config_free(&c);
}
END_TEST

START_TEST(test_initdb_bad)
{
	const struct initdb_bad_case *bc = &initdb_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[600];

	write_watchdog_conf(path, sizeof(path), bc->extra);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", bc->extra);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	config_free(&c);
}
END_TEST

/* ---- issue 14: replica creation methods, the clonefrom tag ---- */

START_TEST(test_replica_methods_values)
{
	struct baton_config c;
	char path[64], err[512];

	write_conf(path, sizeof(path),
	           "create_replica_methods = ( \"pgbackrest\", \"basebackup\" );\n"
	           "pgbackrest = { command = \"/bin/true --stanza=main --delta restore --type=standby\";\n"
	           "  keep_data = true; no_params = true; no_leader = true; timeout = 90; };\n"
	           "basebackup = { max-rate = \"100M\"; checkpoint = \"spread\"; timeout = 600; };",
	           "tags = { clonefrom = true; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_uint_eq(c.postgresql.n_create_replica_methods, 2);
	ck_assert_str_eq(c.postgresql.create_replica_methods[0], "pgbackrest");
	ck_assert_str_eq(c.postgresql.create_replica_methods[1], "basebackup");
	ck_assert_str_eq(c.postgresql.pgbackrest.command, "/bin/true --stanza=main --delta restore --type=standby");
	ck_assert(c.postgresql.pgbackrest.keep_data && c.postgresql.pgbackrest.no_params &&
	          c.postgresql.pgbackrest.no_leader);
	ck_assert(c.postgresql.pgbackrest.timeout == 90);
	ck_assert_str_eq(c.postgresql.basebackup.max_rate, "100M");
	ck_assert_str_eq(c.postgresql.basebackup.checkpoint, "spread");
	ck_assert(c.postgresql.basebackup.timeout == 600);
	ck_assert(c.tags.clonefrom);
	config_free(&c);

	/* The defaults: no list (pg_basebackup alone), fast checkpoint, no rate. */
	write_conf(path, sizeof(path), NULL, NULL);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_uint_eq(c.postgresql.n_create_replica_methods, 0);
	ck_assert_ptr_null(c.postgresql.pgbackrest.command);
	ck_assert(!c.postgresql.pgbackrest.keep_data && !c.postgresql.pgbackrest.no_params &&
	          !c.postgresql.pgbackrest.no_leader);
	ck_assert(c.postgresql.pgbackrest.timeout == 3600);
	ck_assert_ptr_null(c.postgresql.basebackup.max_rate);
	ck_assert_str_eq(c.postgresql.basebackup.checkpoint, "fast");
	ck_assert(c.postgresql.basebackup.timeout == 0);
	ck_assert(!c.tags.clonefrom);
	config_free(&c);
}
END_TEST

static const struct replica_bad_case {
	const char *pg, *top;
	const char *expect; /* after "FILE" */
} replica_bad_cases[] = {
	{ "create_replica_methods = ( \"basebackup\", \"wal_e\" );", NULL,
	  ":8: postgresql.create_replica_methods[1]: unknown replica creation method (known: \"pgbackrest\", "
	  "\"basebackup\") (got \"wal_e\")" },
	{ "create_replica_methods = ( \"pgbackrest\" );", NULL,
	  ":8: postgresql.create_replica_methods: method \"pgbackrest\" needs postgresql.pgbackrest.command" },
	{ "create_replica_methods = ( \"basebackup\", \"basebackup\" );", NULL,
	  ":8: postgresql.create_replica_methods: method \"basebackup\" listed twice" },
	{ "pgbackrest = { command = \"pgbackrest restore\"; };", NULL,
	  ":8: postgresql.pgbackrest.command: must be an absolute path" },
	{ "pgbackrest = { command = \"/bin/true restore | tee x\"; };", NULL,
	  ":8: postgresql.pgbackrest.command: '|' at character 19: no shell runs the command" },
	{ "pgbackrest = { command = \"/bin/true 'restore\"; };", NULL,
	  ":8: postgresql.pgbackrest.command: unterminated ' at character 11" },
	{ "pgbackrest = { command = \"/nonexistent/pgbackrest restore\"; };", NULL,
	  ":8: postgresql.pgbackrest.command: cannot run /nonexistent/pgbackrest" },
	{ "pgbackrest = { comand = \"/bin/true\"; };", NULL,
	  ":8: postgresql.pgbackrest.comand: unknown key (did you mean postgresql.pgbackrest.command?)" },
	{ "pgbackrest = { command = \"/bin/true\"; timeout = 0; };", NULL,
	  ":8: postgresql.pgbackrest.timeout: must be > 0" },
	{ "basebackup = { max-rate = \"fast\"; };", NULL,
	  ":8: postgresql.basebackup.max-rate: expected kB/s as digits with an optional k or M suffix" },
	{ "basebackup = { max-rate = \"16k\"; };", NULL,
	  ":8: postgresql.basebackup.max-rate: must be between 32 kB/s and 1024 MB/s" },
	{ "basebackup = { checkpoint = \"slow\"; };", NULL,
	  ":8: postgresql.basebackup.checkpoint: must be \"fast\" or \"spread\"" },
	{ "basebackup = { wal-method = \"fetch\"; };", NULL, ":8: postgresql.basebackup.wal-method: unknown key" },
	{ NULL, "tags = { clonefrom = \"yes\"; };", ":10: tags.clonefrom: expected" },
};

START_TEST(test_replica_methods_bad)
{
	const struct replica_bad_case *bc = &replica_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[600];

	write_conf(path, sizeof(path), bc->pg, bc->top);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "case %d loaded", _i);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	config_free(&c);
}
END_TEST

/* ---- issue 14: bootstrap from a pgBackRest backup ---- */

START_TEST(test_boot_backup_values)
{
	struct baton_config c;
	char path[64], err[512];

	write_conf(path, sizeof(path), NULL,
	           "bootstrap = { method = \"pgbackrest\";\n"
	           "  pgbackrest = { command = \"/bin/true --stanza=main restore\"; no_params = true;\n"
	           "    restore_command = \"/bin/true --stanza=main archive-get %f \\\"%p\\\"\";\n"
	           "    recovery_target_time = \"2026-12-03 20:01:02.345+00\"; recovery_target_inclusive = false;\n"
	           "    timeout = 600; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_str_eq(c.bootstrap_method, "pgbackrest");
	ck_assert_str_eq(c.bootstrap_pgbackrest.command, "/bin/true --stanza=main restore");
	ck_assert_str_eq(c.bootstrap_pgbackrest.restore_command, "/bin/true --stanza=main archive-get %f \"%p\"");
	ck_assert_str_eq(c.bootstrap_pgbackrest.recovery_target_time, "2026-12-03 20:01:02.345+00");
	ck_assert(c.bootstrap_pgbackrest.no_params && !c.bootstrap_pgbackrest.recovery_target_inclusive &&
	          !c.bootstrap_pgbackrest.keep_existing_recovery_conf);
	ck_assert(c.bootstrap_pgbackrest.timeout == 600);
	config_free(&c);

	/* keep_existing_recovery_conf needs no restore_command of baton's; the
	 * node's postgresql.parameters.restore_command also serves. */
	write_conf(path, sizeof(path), "parameters = { restore_command = \"/bin/true %f %p\"; };",
	           "bootstrap = { method = \"pgbackrest\"; pgbackrest = { command = \"/bin/true restore\";\n"
	           "  recovery_target_lsn = \"0/3000148\"; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_str_eq(c.bootstrap_pgbackrest.recovery_target_lsn, "0/3000148");
	ck_assert(c.bootstrap_pgbackrest.recovery_target_inclusive && !c.bootstrap_pgbackrest.no_params);
	config_free(&c);
	write_conf(path, sizeof(path), NULL,
	           "bootstrap = { method = \"pgbackrest\"; pgbackrest = { command = \"/bin/true restore\";\n"
	           "  keep_existing_recovery_conf = true; }; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert(c.bootstrap_pgbackrest.keep_existing_recovery_conf);
	config_free(&c);

	/* The defaults: initdb, no command, inclusive, an hour. */
	write_conf(path, sizeof(path), NULL, NULL);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_str_eq(c.bootstrap_method, "initdb");
	ck_assert_ptr_null(c.bootstrap_pgbackrest.command);
	ck_assert_ptr_null(c.bootstrap_pgbackrest.recovery_target_time);
	ck_assert(c.bootstrap_pgbackrest.recovery_target_inclusive);
	ck_assert(c.bootstrap_pgbackrest.timeout == 3600);
	config_free(&c);
}
END_TEST

#define BOOT_OK "method = \"pgbackrest\"; "
#define NAME64 "0123456789012345678901234567890123456789012345678901234567890123"
#define BOOT_CMD "command = \"/bin/true restore\"; restore_command = \"/bin/true %f %p\"; "

static const struct replica_bad_case boot_bad_cases[] = {
	{ NULL, "bootstrap = { method = \"barman\"; };",
	  ":10: bootstrap.method: unknown bootstrap method (known: \"initdb\", \"pgbackrest\") (got \"barman\")" },
	{ NULL, "bootstrap = { method = \"pgbackrest\"; };",
	  ":10: bootstrap.method: \"pgbackrest\" needs bootstrap.pgbackrest.command" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { command = \"pgbackrest restore\"; }; };",
	  ":10: bootstrap.pgbackrest.command: must be an absolute path" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { command = \"/bin/true restore; rm -rf /\"; }; };",
	  ":10: bootstrap.pgbackrest.command: ';' at character 18: no shell runs the command" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { command = \"/bin/true restore\"; }; };",
	  ":10: bootstrap.pgbackrest: the recovery after the restore needs a restore_command" },
	{ NULL,
	  "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target_time = \"2026-12-03 20:01\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target_time: expected \"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]\" (a time "
	  "zone is wise) (got \"2026-12-03 20:01\")" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target_time = \"yesterday\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target_time: expected" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target_lsn = \"3000148\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target_lsn: expected a WAL position \"X/X\" in hex (\"0/3000148\") (got "
	  "\"3000148\")" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target_xid = \"12a\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target_xid: expected a transaction id (digits) (got \"12a\")" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target_name = \"" NAME64 "\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target_name: a restore point name has 1 to 63 characters" },
	{ NULL,
	  "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD
	  "recovery_target_time = \"2026-12-03 20:01:00+01\";\n recovery_target_xid = \"99\"; }; };",
	  ":11: bootstrap.pgbackrest.recovery_target_xid: = \"99\": only one recovery target may be set "
	  "(recovery_target_time is set too)" },
	{ NULL,
	  "bootstrap = { " BOOT_OK
	  "pgbackrest = { command = \"/bin/true restore\"; keep_existing_recovery_conf = true;\n"
	  " recovery_target_name = \"before-upgrade\"; }; };",
	  ":11: bootstrap.pgbackrest.recovery_target_name: = \"before-upgrade\" contradicts keep_existing_recovery_conf = "
	  "true" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "keep_existing_recovery_conf = true; }; };",
	  ":10: bootstrap.pgbackrest.restore_command: contradicts keep_existing_recovery_conf = true" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "timeout = 0; }; };",
	  ":10: bootstrap.pgbackrest.timeout: must be > 0" },
	{ NULL, "bootstrap = { " BOOT_OK "pgbackrest = { " BOOT_CMD "recovery_target = \"immediate\"; }; };",
	  ":10: bootstrap.pgbackrest.recovery_target: unknown key" },
};

START_TEST(test_boot_backup_bad)
{
	const struct replica_bad_case *bc = &boot_bad_cases[_i];
	struct baton_config c;
	char path[64], err[700], want[800];

	write_conf(path, sizeof(path), bc->pg, bc->top);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "case %d loaded", _i);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	config_free(&c);
}
END_TEST

/* ---- PgBouncer poolers (agent/pooler.h) ---- */

START_TEST(test_poolers_values)
{
	struct baton_config c;
	char path[64], err[512], *text = NULL;
	size_t tlen = 0;
	FILE *f;

	write_conf(path, sizeof(path), NULL,
	           "poolers = [ \"host=127.0.0.1 port=6432 user=pgbouncer password=sekrit1\",\n"
	           "  \"host=10.0.0.6 port=6433 user=pgbouncer dbname=pgbouncer passfile=/etc/baton/pgb.pass\" ];\n"
	           "pooler_pause_timeout = 2.5;\npooler_resume_timeout = 20;\n"
	           "pooler_target = \"host=127.0.0.1 port=5000 user=postgres password=sekrit2\";");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_uint_eq(c.n_poolers, 2);
	ck_assert_str_eq(c.poolers[0], "host=127.0.0.1 port=6432 user=pgbouncer password=sekrit1");
	ck_assert_str_eq(c.poolers[1],
	                 "host=10.0.0.6 port=6433 user=pgbouncer dbname=pgbouncer passfile=/etc/baton/pgb.pass");
	ck_assert(c.pooler_pause_timeout == 2.5);
	ck_assert(c.pooler_resume_timeout == 20);
	ck_assert_str_eq(c.pooler_target, "host=127.0.0.1 port=5000 user=postgres password=sekrit2");
	/* show-config never prints them: they hold passwords */
	f = open_memstream(&text, &tlen);
	ck_assert_ptr_nonnull(f);
	config_print(&c, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(strstr(text, "sekrit"));
	ck_assert_ptr_nonnull(strstr(text, "poolers = [ \"***\", \"***\" ]"));
	ck_assert_ptr_nonnull(strstr(text, "pooler_target = \"***\""));
	free(text);
	config_free(&c);

	/* The defaults: none, 5 s to pause, 10 s to resume, no target. */
	write_conf(path, sizeof(path), NULL, NULL);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert_uint_eq(c.n_poolers, 0);
	ck_assert(c.pooler_pause_timeout == 5);
	ck_assert(c.pooler_resume_timeout == 10);
	ck_assert_ptr_null(c.pooler_target);
	config_free(&c);
}
END_TEST

static const struct pooler_bad_case {
	const char *top;
	const char *expect; /* after "FILE" */
} pooler_bad_cases[] = {
	{ "poolers = [ \"host=127.0.0.1 user=pgbouncer password=sekrit\" ];",
	  ":10: poolers[0]: the admin console's connection string must set port (got a string)" },
	{ "poolers = [ \"port=6432\" ];", ":10: poolers[0]: the admin console's connection string must set host" },
	{ "poolers = [ \"host=a port=6432\", \"host=b port=6432 dbname=app password=sekrit\" ];",
	  ":10: poolers[1]: dbname must be \"pgbouncer\" (the admin console), or left out (got \"app\")" },
	{ "poolers = [ \"host=a port=6432 bogus=sekrit\" ];",
	  ":10: poolers[0]: not a valid connection string: invalid connection option \"bogus\"" },
	{ "poolers = [ \"postgresql://pgbouncer:sekrit@a:6432/pgbouncer\" ];",
	  ":10: poolers[0]: use libpq's key=value form (host=... port=...), not a URI" },
	{ "poolers = \"host=a port=6432\";", ":10: poolers: expected a list of strings" },
	{ "poolers = [ \"host=a port=6432 password=sekrit application_name=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" ];",
	  ":10: poolers[0]: longer than 1023 bytes" },
	{ "pooler_pause_timeout = 0;", ":10: pooler_pause_timeout: must be > 0 (got 0)" },
	{ "pooler_resume_timeout = 301;", ":10: pooler_resume_timeout: must be <= 300 (got 301)" },
	{ "pooler_target = \"host=a port\";", ":10: pooler_target: not a valid connection string" },
	{ "pooler = [ \"host=a port=6432\" ];", ":10: pooler: unknown key (did you mean poolers?)" },
};

START_TEST(test_poolers_bad)
{
	const struct pooler_bad_case *bc = &pooler_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[600];

	write_conf(path, sizeof(path), NULL, bc->top);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "case %d loaded", _i);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_msg(strstr(err, "sekrit") == NULL, "a password echoed: %s", err);
	config_free(&c);
}
END_TEST

/* ---- SIGHUP: the reload column ---- */

/* Every option has a reload entry: a new row without one fails here, so a
 * key can never be ignored on SIGHUP by accident. */
START_TEST(test_reload_every_key_has_entry)
{
	const char *path;
	enum config_reload how;
	size_t n = 0, per[CONFIG_RELOAD_N] = { 0 };

	while (config_option_at(n, &path, &how)) {
		ck_assert_msg(how != CONFIG_RELOAD_UNSET, "%s has no reload entry in the option table", path);
		ck_assert_msg((unsigned)how < CONFIG_RELOAD_N, "%s: reload entry %d out of range", path, (int)how);
		ck_assert_str_ne(config_reload_name(how), "?");
		per[how]++;
		n++;
	}
	ck_assert_uint_gt(n, 50);
	ck_assert_uint_le(n, CONFIG_RELOAD_MAX);
	ck_assert(!config_option_at(n, NULL, NULL));
	/* every outcome is some key's (else it is dead code in the loop) */
	for (int h = CONFIG_RELOAD_LIVE; h < CONFIG_RELOAD_N; h++)
		ck_assert_msg(per[h] > 0, "no key has reload outcome %s", config_reload_name((enum config_reload)h));
	ck_assert_str_eq(config_reload_name(CONFIG_RELOAD_N), "?");
}
END_TEST

static void load_conf(const char *pg, const char *top, struct baton_config *c)
{
	char path[64], err[512];

	write_conf(path, sizeof(path), pg, top);
	ck_assert_msg(config_load(path, c, err, sizeof(err)), "%s", err);
	unlink(path);
}

START_TEST(test_reload_unchanged)
{
	struct baton_config a, b;
	struct config_reload_report rep;
	char keys[64] = "x";

	load_conf("parameters = { work_mem = \"4MB\"; };", "tags = { nosync = true; };", &a);
	load_conf("parameters = { work_mem = \"4MB\"; };", "tags = { nosync = true; };", &b);
	config_reload_diff(&a, &b, &rep);
	ck_assert_uint_eq(rep.n_changed, 0);
	ck_assert_uint_eq(rep.effects, 0);
	ck_assert_uint_eq(config_reload_keys(&rep, ~0u, true, keys, sizeof(keys)), 0);
	ck_assert_str_eq(keys, "");
	ck_assert_uint_eq(config_reload_apply(&a, &b, &rep, ~0u), 0);
	config_free(&a);
	config_free(&b);
}
END_TEST

/* One change each (from the base file write_conf makes), and the exact
 * per-key report. */
static const struct reload_case {
	const char *pg, *top;
	const char *report;
} reload_cases[] = {
	{ "parameters = { work_mem = \"7MB\"; };", NULL, "postgresql.parameters (Postgres reload)" },
	{ "pg_hba = [ \"host all all 127.0.0.1/32 scram-sha-256\" ];", NULL, "postgresql.pg_hba (Postgres reload)" },
	{ NULL, "log = { level = \"debug\"; };", "log.level (log level)" },
	{ NULL, "tags = { nosync = true; failover_priority = 3; };",
	  "tags.nosync (live), tags.failover_priority (live)" },
	{ "use_pg_rewind = false;", NULL, "postgresql.use_pg_rewind (live)" },
	{ "callbacks = { timeout = 5; };", NULL, "postgresql.callbacks.timeout (callbacks)" },
	{ NULL, "bootstrap = { dcs = { ttl = 10; slots = [ \"s1\" ]; }; initdb = { data_checksums = false; }; };",
	  "bootstrap.dcs.ttl (bootstrap), bootstrap.dcs.slots (bootstrap), bootstrap.initdb.data_checksums (bootstrap)" },
	{ NULL, "namespace = \"/other\";", "namespace (restart)" },
	{ NULL, "watchdog = { mode = \"off\"; };", "watchdog.mode (restart)" },
	{ "allow_from_dcs = [ \"archive_command\" ];", NULL, "postgresql.allow_from_dcs (restart)" },
	/* a derived default changes with what it derives from */
	{ "socket_dir = \"/run\"; log_file = \"/var/log/x.log\";", NULL,
	  "postgresql.socket_dir (restart), postgresql.log_file (restart)" },
	{ "parameters = { work_mem = \"7MB\"; };", "log = { level = \"error\"; }; namespace = \"/x\";",
	  "namespace (restart), postgresql.parameters (Postgres reload), log.level (log level)" },
};

START_TEST(test_reload_report)
{
	const struct reload_case *rc = &reload_cases[_i];
	struct baton_config base, fresh;
	struct config_reload_report rep;
	char keys[512];
	unsigned effects = 0;

	load_conf(NULL, NULL, &base);
	load_conf(rc->pg, rc->top, &fresh);
	config_reload_diff(&base, &fresh, &rep);
	ck_assert_uint_gt(config_reload_keys(&rep, ~0u, true, keys, sizeof(keys)), 0);
	ck_assert_str_eq(keys, rc->report);
	for (size_t i = 0; i < rep.n_changed; i++)
		effects |= CONFIG_RELOAD_BIT(rep.changed[i].how);
	ck_assert_uint_eq(rep.effects, effects);
	/* the other direction reports the same keys */
	config_reload_diff(&fresh, &base, &rep);
	ck_assert_uint_gt(config_reload_keys(&rep, ~0u, true, keys, sizeof(keys)), 0);
	ck_assert_str_eq(keys, rc->report);
	config_free(&base);
	config_free(&fresh);
}
END_TEST

START_TEST(test_reload_passwords)
{
	struct baton_config base, fresh;
	struct config_reload_report rep;
	char keys[256];

	load_conf(NULL, NULL, &base);
	load_conf(NULL, NULL, &fresh);
	free(fresh.postgresql.replication_password);
	fresh.postgresql.replication_password = strdup("r2");
	ck_assert_ptr_nonnull(fresh.postgresql.replication_password);
	config_reload_diff(&base, &fresh, &rep);
	ck_assert_uint_eq(config_reload_keys(&rep, ~0u, true, keys, sizeof(keys)), 1);
	ck_assert_str_eq(keys, "postgresql.authentication.replication.password (passwords)");
	ck_assert_uint_eq(rep.effects, CONFIG_RELOAD_BIT(CONFIG_RELOAD_PASSWORDS));
	ck_assert_uint_eq(config_reload_apply(&base, &fresh, &rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_PASSWORDS)), 1);
	ck_assert_str_eq(base.postgresql.replication_password, "r2");
	ck_assert_str_eq(fresh.postgresql.replication_password, "r1");
	config_free(&base);
	config_free(&fresh);
}
END_TEST

/* apply moves what the mask allows and never a restart key; both configs
 * stay whole (config_free on each: ASan sees any double free or leak). */
START_TEST(test_reload_apply)
{
	struct baton_config cur, fresh;
	struct config_reload_report rep;
	char keys[256];
	unsigned mask = ~0u & ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_POSTGRES);

	load_conf("pg_hba = [ \"local all all peer\" ];", NULL, &cur);
	load_conf("parameters = { work_mem = \"7MB\"; };",
	          "namespace = \"/other\"; tags = { nofailover = true; }; log = { level = \"warning\"; };"
	          "bootstrap = { dcs = { postgresql = { parameters = { max_connections = 50; }; }; }; };",
	          &fresh);
	config_reload_diff(&cur, &fresh, &rep);
	ck_assert_uint_eq(rep.n_changed, 6);
	/* everything but Postgres's files (masked) and the namespace (restart) */
	ck_assert_uint_eq(config_reload_apply(&cur, &fresh, &rep, mask), 3);
	ck_assert_str_eq(cur.namespace_, "/baton");
	ck_assert_str_eq(fresh.namespace_, "/other");
	ck_assert(cur.tags.nofailover);
	ck_assert(!fresh.tags.nofailover);
	ck_assert_str_eq(cur.log_level, "warning");
	ck_assert_str_eq(fresh.log_level, "info");
	ck_assert_uint_eq(cur.bootstrap_dcs.n_pg_params, 1);
	ck_assert_str_eq(cur.bootstrap_dcs.pg_params[0].value, "50");
	ck_assert_uint_eq(fresh.bootstrap_dcs.n_pg_params, 0);
	ck_assert_uint_eq(cur.postgresql.n_params, 0);
	ck_assert_uint_eq(cur.postgresql.n_pg_hba, 1);
	/* now the rest: lists move with their counts */
	ck_assert_uint_eq(config_reload_apply(&cur, &fresh, &rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_POSTGRES)), 2);
	ck_assert_uint_eq(cur.postgresql.n_params, 1);
	ck_assert_str_eq(cur.postgresql.params[0].value, "7MB");
	ck_assert_uint_eq(cur.postgresql.n_pg_hba, 0);
	ck_assert_ptr_null(cur.postgresql.pg_hba);
	ck_assert_uint_eq(fresh.postgresql.n_pg_hba, 1);
	ck_assert_str_eq(fresh.postgresql.pg_hba[0], "local all all peer");
	/* a restart key is never moved, whatever the mask */
	ck_assert_uint_eq(config_reload_apply(&cur, &fresh, &rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_RESTART)), 0);
	ck_assert_str_eq(cur.namespace_, "/baton");
	/* the restart keys alone, without outcomes: what the warning names */
	ck_assert_uint_eq(config_reload_keys(&rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_RESTART), false, keys, sizeof(keys)),
	                  1);
	ck_assert_str_eq(keys, "namespace");
	config_free(&cur);
	config_free(&fresh);
}
END_TEST

/* A short buffer is cut, never overrun, and stays terminated. */
START_TEST(test_reload_keys_short_buffer)
{
	struct baton_config a, b;
	struct config_reload_report rep;
	char keys[16 + 8];

	memset(keys, 'Z', sizeof(keys));
	load_conf(NULL, NULL, &a);
	load_conf("socket_dir = \"/run\"; log_file = \"/var/log/x.log\";", "namespace = \"/x\";", &b);
	config_reload_diff(&a, &b, &rep);
	ck_assert_uint_eq(rep.n_changed, 3);
	(void)config_reload_keys(&rep, ~0u, true, keys, 16);
	ck_assert_uint_eq(strlen(keys), 15);
	ck_assert_int_eq(keys[16], 'Z');
	ck_assert(strncmp(keys, "namespace (rest", 15) == 0);
	config_free(&a);
	config_free(&b);
}
END_TEST

/* ---- issue 13: tags with Patroni's meaning, custom tags ---- */

START_TEST(test_tags)
{
	struct baton_config c, back;
	char path[64], path2[64], err[512], json[600];
	char *text;
	FILE *f;

	write_conf(path, sizeof(path), NULL,
	           "tags = { nofailover = false; noloadbalance = true; replicatefrom = \"node3\"; dc = \"east\"; "
	           "rack = 7; weight = 1.5; ssd = true; big = 5000000000L; quote = \"a\\\"b\"; };");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	ck_assert(c.tags.noloadbalance);
	ck_assert(!c.tags.nostream);
	ck_assert_str_eq(c.tags.replicatefrom, "node3");
	ck_assert_uint_eq(c.tags.n_custom, 6);
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "dc"), "\"east\"");
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "rack"), "7");
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "weight"), "1.5");
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "ssd"), "true");
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "big"), "5000000000");
	ck_assert_str_eq(param(c.tags.custom, c.tags.n_custom, "quote"), "\"a\\\"b\"");
	config_tags_json(&c, json, sizeof(json));
	ck_assert_str_eq(json, "{\"dc\":\"east\",\"rack\":7,\"weight\":1.5,\"ssd\":true,\"big\":5000000000,"
	                       "\"quote\":\"a\\\"b\"}");

	/* show-config prints them inside the tags group, and reads back. */
	text = print_to_string(&c);
	ck_assert_msg(strstr(text, "  dc = \"east\";\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "  replicatefrom = \"node3\";\n") != NULL, "%s", text);
	snprintf(path2, sizeof(path2), "/tmp/check_config_tags_XXXXXX");
	f = fdopen(mkstemp(path2), "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_msg(config_load(path2, &back, err, sizeof(err)), "%s\n%s", err, text);
	unlink(path2);
	config_tags_json(&back, json, sizeof(json));
	ck_assert_str_eq(json, "{\"dc\":\"east\",\"rack\":7,\"weight\":1.5,\"ssd\":true,\"big\":5000000000,"
	                       "\"quote\":\"a\\\"b\"}");
	ck_assert(back.tags.noloadbalance);
	config_free(&back);
	free(text);

	/* A change of a custom tag is live on SIGHUP, like the other tags. */
	write_conf(path, sizeof(path), NULL, "tags = { dc = \"west\"; };");
	ck_assert_msg(config_load(path, &back, err, sizeof(err)), "%s", err);
	unlink(path);
	{
		struct config_reload_report rep;
		char keys[256];

		config_reload_diff(&c, &back, &rep);
		ck_assert(config_reload_keys(&rep, ~0u, true, keys, sizeof(keys)) >= 3);
		ck_assert_msg(strstr(keys, "tags (live)") != NULL, "%s", keys);
		ck_assert_uint_eq(config_reload_apply(&c, &back, &rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_LIVE)),
		                  rep.n_changed);
		ck_assert_uint_eq(c.tags.n_custom, 1);
		ck_assert_str_eq(c.tags.custom[0].value, "\"west\"");
	}
	config_free(&back);
	config_free(&c);

	/* No tags: nothing to publish. */
	write_conf(path, sizeof(path), NULL, "");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)), "%s", err);
	unlink(path);
	config_tags_json(&c, json, sizeof(json));
	ck_assert_str_eq(json, "");
	ck_assert_ptr_null(c.tags.replicatefrom);
	config_free(&c);
}
END_TEST

static const struct tags_bad_case {
	const char *top;
	const char *expect; /* after "FILE" */
} tags_bad_cases[] = {
	{ "tags = { dc = [ \"east\" ]; };", ":10: tags.dc: a tag is a string, number or boolean (got an array)" },
	{ "tags = { dc = ( \"east\", 1 ); };", ":10: tags.dc: a tag is a string, number or boolean (got a list)" },
	{ "tags = { dc = { x = 1; }; };", ":10: tags.dc: a tag is a string, number or boolean (got a group)" },
	{ "tags = { nofailvoer = true; };",
	  ":10: tags.nofailvoer: unknown tag too close to tags.nofailover (did you mean it?)" },
	{ "tags = { replicatefrom = \"node 3\"; };", ":10: tags.replicatefrom: " },
	{ "tags = { replicatefrom = true; };", ":10: tags.replicatefrom: expected a string (got true)" },
	{ "tags = { noloadbalance = \"yes\"; };", ":10: tags.noloadbalance: expected true or false (got \"yes\")" },
	{ "tags = { dc = \"east\\nwest\"; };", ":10: tags.dc: must be one line" },
	{ "tags = 5;", ":10: tags: expected a group { name = value; ... } (got 5)" },
	{ "tags = { aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1; };",
	  ":10: tags.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: not a tag name" },
	{ "tags = { a = \""
	  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789012345678901234567890123456789\"; };",
	  ":10: tags.a: a tag value may be at most 254 characters" },
	{ "tags = { a1 = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"; "
	  "a2 = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"; "
	  "a3 = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"; "
	  "a4 = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"; "
	  "a5 = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"; };",
	  ":10: tags.a5: the custom tags take more than 511 bytes as JSON" },
};

START_TEST(test_tags_bad)
{
	const struct tags_bad_case *bc = &tags_bad_cases[_i];
	struct baton_config c;
	char path[64], err[512], want[600];

	write_conf(path, sizeof(path), NULL, bc->top);
	memset(err, 0, sizeof(err));
	ck_assert_msg(!config_load(path, &c, err, sizeof(err)), "%s loaded", bc->top);
	unlink(path);
	snprintf(want, sizeof(want), "%s%s", path, bc->expect);
	ck_assert_msg(strstr(err, want) != NULL, "error\n  %s\ndoes not contain\n  %s", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	config_free(&c);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	TCase *tl = tcase_create("log");

	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_poolers_values);
	tcase_add_loop_test(tc, test_poolers_bad, 0, (int)(sizeof(pooler_bad_cases) / sizeof(pooler_bad_cases[0])));
	tcase_add_test(tc, test_tags);
	tcase_add_loop_test(tc, test_tags_bad, 0, (int)(sizeof(tags_bad_cases) / sizeof(tags_bad_cases[0])));
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_examples);
	tcase_add_test(tc, test_tls_and_callbacks);
	tcase_add_loop_test(tc, test_bad_file, 0, (int)N_BAD);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_error_one_line);
	tcase_add_test(tc, test_free_zeroed);
	tcase_add_test(tc, test_print_masks_secrets_and_round_trips);
	tcase_add_test(tc, test_print_minimal);
	tcase_add_loop_test(tc, test_timing, 0, (int)(sizeof(timing_cases) / sizeof(timing_cases[0])));
	tcase_add_loop_test(tc, test_split_hostport, 0, (int)(sizeof(hostport_cases) / sizeof(hostport_cases[0])));
	tcase_add_test(tc, test_dcs_copy);
	tcase_add_test(tc, test_watchdog_defaults_and_values);
	tcase_add_loop_test(tc, test_watchdog_bad, 0,
	                    (int)(sizeof(watchdog_bad_cases) / sizeof(watchdog_bad_cases[0])));
	tcase_add_loop_test(tc, test_security_rules, 0, (int)(sizeof(sec_cases) / sizeof(sec_cases[0])));
	tcase_add_test(tc, test_secret_wrong_type);
	tcase_add_test(tc, test_not_a_regular_file);
	tcase_add_test(tc, test_long_string_linear);
	tcase_add_test(tc, test_file_exposed);
	tcase_add_test(tc, test_pem_files);
	tcase_add_test(tc, test_param_allowed_from_dcs);
	tcase_add_test(tc, test_initdb_defaults_and_values);
	tcase_add_loop_test(tc, test_initdb_bad, 0, (int)(sizeof(initdb_bad_cases) / sizeof(initdb_bad_cases[0])));
	tcase_add_test(tc, test_replica_methods_values);
	tcase_add_loop_test(tc, test_replica_methods_bad, 0,
	                    (int)(sizeof(replica_bad_cases) / sizeof(replica_bad_cases[0])));
	tcase_add_test(tc, test_boot_backup_values);
	tcase_add_loop_test(tc, test_boot_backup_bad, 0, (int)(sizeof(boot_bad_cases) / sizeof(boot_bad_cases[0])));
	tcase_add_loop_test(tc, test_initdb_list, 0, (int)(sizeof(initdb_list_cases) / sizeof(initdb_list_cases[0])));
	tcase_add_loop_test(tc, test_patroni_unsupported, 0, (int)(sizeof(patroni_cases) / sizeof(patroni_cases[0])));
	tcase_add_test(tc, test_standby_cluster_file);
	tcase_add_loop_test(tc, test_standby_cluster_file_bad, 0,
	                    (int)(sizeof(standby_bad_cases) / sizeof(standby_bad_cases[0])));
	tcase_add_loop_test(tc, test_standby_cluster_json, 0,
	                    (int)(sizeof(standby_json_cases) / sizeof(standby_json_cases[0])));
	tcase_add_test(tc, test_standby_cluster_copy);
	tcase_add_loop_test(tc, test_patroni_keys, 0, (int)(sizeof(patroni_key_cases) / sizeof(patroni_key_cases[0])));
	tcase_add_loop_test(tc, test_list_keys, 0, (int)(sizeof(list_key_cases) / sizeof(list_key_cases[0])));
	tcase_add_test(tc, test_reload_every_key_has_entry);
	tcase_add_test(tc, test_reload_unchanged);
	tcase_add_loop_test(tc, test_reload_report, 0, (int)(sizeof(reload_cases) / sizeof(reload_cases[0])));
	tcase_add_test(tc, test_reload_passwords);
	tcase_add_test(tc, test_reload_apply);
	tcase_add_test(tc, test_reload_keys_short_buffer);
	tcase_set_timeout(tc, 30);
	tcase_set_tags(tc, "postgres"); /* configs name PG_BINDIR, which the loader checks */
	suite_add_tcase(s, tc);

	tcase_add_loop_test(tl, test_level_parse, 0, (int)(sizeof(level_cases) / sizeof(level_cases[0])));
	tcase_add_loop_test(tl, test_scrub, 0, (int)(sizeof(scrub_cases) / sizeof(scrub_cases[0])));
	tcase_add_test(tl, test_scrub_bounds);
	tcase_add_test(tl, test_log_lines);
	tcase_add_test(tl, test_log_long_line);
	tcase_add_test(tl, test_log_enabled);
	suite_add_tcase(s, tl);
	return s;
}

int main(void)
{
	bool have = skip_have("check_config", "postgres", PG_BINDIR "/postgres",
	                      "install postgresql-15, or configure with PG_BINDIR=DIR");

	return skip_run(srunner_create(config_suite()), "postgres", have);
}
