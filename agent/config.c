/*
 * config.c - the node's libconfig file: loading, validation, show-config.
 *
 * Everything the agent knows about its options lives in one table,
 * `options[]` below: the dotted path, the type, where the value goes in
 * struct baton_config, the default, the allowed range or a validator, flags
 * (required, secret) and a one-line doc. The table drives:
 *
 *   - the unknown-key check: a key in the file is known if it is an option's
 *     path or a prefix (group) of one; the free-form groups of Postgres
 *     parameters only require GUC-like names;
 *   - parsing and validation, in table order, so defaults that derive from
 *     an earlier option (connect_address = listen, pgpass = data_dir.pgpass)
 *     see its final value;
 *   - freeing, and config_print (show-config), which prints the effective
 *     values back as libconfig text with each doc line as a comment.
 *
 * Errors are one line, "FILE:LINE: KEY: problem (got VALUE)", and the first
 * one found stops the load: an operator fixes it and runs again. Secrets are
 * never echoed back, in errors or in show-config.
 */
#include "agent/config.h"

#include "agent/log.h"
#include "agent/watchdog.h"
#include "pg/pg_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <libconfig.h>
#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum opt_type {
	OPT_STRING,   /* char *; a string in the file */
	OPT_SECONDS,  /* double; int, int64 or float in the file */
	OPT_INT64,    /* int64_t; int or int64 (L suffix) in the file */
	OPT_BOOL,     /* bool; true/false in the file */
	OPT_HOSTLIST, /* char ** + size_t; a list or array of "host:port" strings */
	OPT_STRLIST,  /* char ** + size_t; a list or array of strings */
	OPT_PARAMS,   /* struct config_param * + size_t; a group of Postgres GUCs */
};

enum {
	OPT_REQUIRED = 1u << 0, /* no default: the file must set it */
	OPT_SECRET = 1u << 1,   /* never printed or echoed in errors */
	OPT_MIN_EXCL = 1u << 2, /* numbers: the minimum itself is not allowed */
	OPT_NONEMPTY = 1u << 3, /* lists: at least one element */
};

/* A string validator: false with a short reason ("must be absolute"). */
typedef bool (*opt_check_fn)(const char *value, char *why, size_t whylen);

struct opt {
	const char *path;
	enum opt_type type;
	size_t off;           /* the value in struct baton_config */
	size_t count_off;     /* list types: the size_t element count */
	const char *def;      /* default as text: "5", "true", "/tmp"; NULL = none */
	const char *def_from; /* default: this earlier option's value ... */
	const char *def_suffix; /* ... followed by this */
	double min, max;      /* numbers */
	unsigned flags;
	opt_check_fn check;   /* strings and list elements */
	const char *with;     /* set only together with this option (both or neither) */
	const char *doc;
};

static bool check_member_name(const char *v, char *why, size_t len);
static bool check_namespace(const char *v, char *why, size_t len);
static bool check_hostport(const char *v, char *why, size_t len);
static bool check_protocol(const char *v, char *why, size_t len);
static bool check_verify_client(const char *v, char *why, size_t len);
static bool check_host_name(const char *v, char *why, size_t len);
static bool check_abspath(const char *v, char *why, size_t len);
static bool check_bin_dir(const char *v, char *why, size_t len);
static bool check_log_level(const char *v, char *why, size_t len);
static bool check_readable_file(const char *v, char *why, size_t len);
static bool check_executable(const char *v, char *why, size_t len);
static bool check_slot_name(const char *v, char *why, size_t len);
static bool check_watchdog_mode(const char *v, char *why, size_t len);
static bool check_initdb_encoding(const char *v, char *why, size_t len);
static bool check_initdb_locale(const char *v, char *why, size_t len);
static bool check_code_param(const char *v, char *why, size_t len);
static bool check_one_line(const char *v, char *why, size_t len);

#define CFG_OFF(field) offsetof(struct baton_config, field)
#define NO_MAX DBL_MAX

/* The options, in the order show-config prints them. An option whose default
 * comes from another (def_from) must follow it. */
static const struct opt options[] = {
	{ .path = "scope", .type = OPT_STRING, .off = CFG_OFF(scope), .flags = OPT_REQUIRED,
	  .check = check_member_name, .doc = "cluster name, shared by all its members" },
	{ .path = "name", .type = OPT_STRING, .off = CFG_OFF(name), .flags = OPT_REQUIRED,
	  .check = check_member_name, .doc = "this member's name, unique in the cluster" },
	{ .path = "namespace", .type = OPT_STRING, .off = CFG_OFF(namespace_), .def = "/baton",
	  .check = check_namespace, .doc = "etcd key prefix; the cluster lives under NAMESPACE/SCOPE/" },

	{ .path = "etcd.hosts", .type = OPT_HOSTLIST, .off = CFG_OFF(etcd.hosts),
	  .count_off = CFG_OFF(etcd.n_hosts), .flags = OPT_REQUIRED | OPT_NONEMPTY,
	  .check = check_hostport, .doc = "etcd members as \"host:port\"" },
	{ .path = "etcd.protocol", .type = OPT_STRING, .off = CFG_OFF(etcd.protocol), .def = "http",
	  .check = check_protocol, .doc = "\"http\" or \"https\"" },
	{ .path = "etcd.cacert", .type = OPT_STRING, .off = CFG_OFF(etcd.cacert),
	  .doc = "CA certificate file for https" },
	{ .path = "etcd.cert", .type = OPT_STRING, .off = CFG_OFF(etcd.cert),
	  .doc = "client certificate file for https" },
	{ .path = "etcd.key", .type = OPT_STRING, .off = CFG_OFF(etcd.key),
	  .doc = "client key file for https" },
	{ .path = "etcd.username", .type = OPT_STRING, .off = CFG_OFF(etcd.username),
	  .check = check_one_line, .doc = "etcd user (authentication enabled)" },
	{ .path = "etcd.password", .type = OPT_STRING, .off = CFG_OFF(etcd.password),
	  .flags = OPT_SECRET, .check = check_one_line, .doc = "etcd user's password" },

	{ .path = "restapi.listen", .type = OPT_STRING, .off = CFG_OFF(restapi.listen),
	  .flags = OPT_REQUIRED, .check = check_hostport,
	  .doc = "\"host:port\" the REST API listens on" },
	{ .path = "restapi.connect_address", .type = OPT_STRING,
	  .off = CFG_OFF(restapi.connect_address), .def_from = "restapi.listen",
	  .check = check_hostport, .doc = "\"host:port\" other members and clients use; default listen" },
	{ .path = "restapi.authentication.username", .type = OPT_STRING,
	  .off = CFG_OFF(restapi.auth_username), .with = "restapi.authentication.password",
	  .check = check_one_line,
	  .doc = "basic-auth user the write endpoints require (unset: no authentication)" },
	{ .path = "restapi.authentication.password", .type = OPT_STRING,
	  .off = CFG_OFF(restapi.auth_password), .with = "restapi.authentication.username",
	  .flags = OPT_SECRET, .check = check_one_line, .doc = "that user's password" },
	{ .path = "restapi.certfile", .type = OPT_STRING, .off = CFG_OFF(restapi.certfile),
	  .with = "restapi.keyfile", .check = check_readable_file,
	  .doc = "PEM certificate (absolute path): serve HTTPS (unset: plain HTTP)" },
	{ .path = "restapi.keyfile", .type = OPT_STRING, .off = CFG_OFF(restapi.keyfile),
	  .with = "restapi.certfile", .check = check_readable_file,
	  .doc = "PEM private key of certfile (absolute path)" },
	{ .path = "restapi.cafile", .type = OPT_STRING, .off = CFG_OFF(restapi.cafile),
	  .check = check_readable_file,
	  .doc = "PEM CA bundle: verifies client certificates and, as a client, the members' REST servers" },
	{ .path = "restapi.verify_client", .type = OPT_STRING, .off = CFG_OFF(restapi.verify_client),
	  .def = "none", .check = check_verify_client,
	  .doc = "client certificates: \"none\", \"optional\" or \"required\" (needs certfile and cafile)" },
	{ .path = "restapi.client_certfile", .type = OPT_STRING,
	  .off = CFG_OFF(restapi.client_certfile), .with = "restapi.client_keyfile",
	  .check = check_readable_file,
	  .doc = "PEM client certificate the agent and batonctl present to the members' REST APIs" },
	{ .path = "restapi.client_keyfile", .type = OPT_STRING,
	  .off = CFG_OFF(restapi.client_keyfile), .with = "restapi.client_certfile",
	  .check = check_readable_file, .doc = "PEM private key of client_certfile (absolute path)" },
	{ .path = "restapi.allowed_hosts", .type = OPT_STRLIST, .off = CFG_OFF(restapi.allowed_hosts),
	  .count_off = CFG_OFF(restapi.n_allowed_hosts), .check = check_host_name,
	  .doc = "more names the Host header may carry (besides the listen/connect addresses, localhost, this host)" },
	{ .path = "restapi.allow_unauthenticated_writes", .type = OPT_BOOL,
	  .off = CFG_OFF(restapi.allow_unauthenticated_writes), .def = "false",
	  .doc = "INSECURE: accept writes without credentials (warned at every start)" },

	{ .path = "bootstrap.dcs.ttl", .type = OPT_SECONDS, .off = CFG_OFF(bootstrap_dcs.ttl),
	  .def = "5", .min = CONFIG_TTL_MIN, .max = CONFIG_TTL_MAX,
	  .doc = "seconds the leader lease lasts (2 to 86400; etcd grants no shorter lease)" },
	{ .path = "bootstrap.dcs.loop_wait", .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_dcs.loop_wait), .def = "1", .min = CONFIG_LOOP_WAIT_MIN,
	  .max = CONFIG_WAIT_MAX, .doc = "seconds between HA loop runs (0.1 to 3600)" },
	{ .path = "bootstrap.dcs.retry_timeout", .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_dcs.retry_timeout), .def = "2", .min = CONFIG_RETRY_TIMEOUT_MIN,
	  .max = CONFIG_WAIT_MAX, .doc = "seconds to retry etcd and Postgres before giving up (0.5 to 3600)" },
	{ .path = "bootstrap.dcs.maximum_lag_on_failover", .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.maximum_lag_on_failover), .def = "1048576", .min = 0,
	  .max = NO_MAX, .doc = "bytes a replica may lag and still be promoted" },
	{ .path = "bootstrap.dcs.synchronous_mode", .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_mode), .def = "false",
	  .doc = "commits wait for synchronous standbys; only those may be promoted" },
	{ .path = "bootstrap.dcs.synchronous_mode_strict", .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_mode_strict), .def = "false",
	  .doc = "with no synchronous standby left, writes block instead of turning asynchronous" },
	{ .path = "bootstrap.dcs.synchronous_node_count", .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_node_count), .def = "1", .min = 1, .max = 8,
	  .doc = "synchronous standbys every commit waits for (1..8)" },
	{ .path = "bootstrap.dcs.synchronous_quorum", .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_quorum), .def = "false",
	  .doc = "quorum commit: ANY synchronous_node_count of every eligible standby, not FIRST n" },
	{ .path = "bootstrap.dcs.slots", .type = OPT_STRLIST, .off = CFG_OFF(bootstrap_dcs.slots),
	  .count_off = CFG_OFF(bootstrap_dcs.n_slots), .check = check_slot_name,
	  .doc = "permanent physical replication slots, kept on whichever member is primary" },
	{ .path = "bootstrap.dcs.postgresql.parameters", .type = OPT_PARAMS,
	  .off = CFG_OFF(bootstrap_dcs.pg_params), .count_off = CFG_OFF(bootstrap_dcs.n_pg_params),
	  .doc = "Postgres parameters for all members, stored in etcd at bootstrap" },

	{ .path = "bootstrap.initdb.encoding", .type = OPT_STRING, .off = CFG_OFF(bootstrap_initdb.encoding),
	  .def = "UTF8", .check = check_initdb_encoding,
	  .doc = "encoding of a cluster this node bootstraps (initdb -E)" },
	{ .path = "bootstrap.initdb.locale", .type = OPT_STRING, .off = CFG_OFF(bootstrap_initdb.locale),
	  .def = "C.UTF-8", .check = check_initdb_locale,
	  .doc = "locale of a cluster this node bootstraps (initdb --locale); must be installed on every member" },
	{ .path = "bootstrap.initdb.data_checksums", .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_initdb.data_checksums), .def = "true",
	  .doc = "page checksums in a cluster this node bootstraps (initdb --data-checksums); fixed for the cluster's life" },

	{ .path = "postgresql.bin_dir", .type = OPT_STRING, .off = CFG_OFF(postgresql.bin_dir),
	  .def = "/usr/lib/postgresql/15/bin", .check = check_bin_dir,
	  .doc = "directory of postgres, initdb, pg_ctl, pg_basebackup, pg_rewind" },
	{ .path = "postgresql.data_dir", .type = OPT_STRING, .off = CFG_OFF(postgresql.data_dir),
	  .flags = OPT_REQUIRED, .check = check_abspath, .doc = "the data directory (absolute)" },
	{ .path = "postgresql.listen", .type = OPT_STRING, .off = CFG_OFF(postgresql.listen),
	  .flags = OPT_REQUIRED, .check = check_hostport, .doc = "\"host:port\" Postgres listens on" },
	{ .path = "postgresql.connect_address", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.connect_address), .def_from = "postgresql.listen",
	  .check = check_hostport, .doc = "\"host:port\" other members use; default listen" },
	{ .path = "postgresql.socket_dir", .type = OPT_STRING, .off = CFG_OFF(postgresql.socket_dir),
	  .def = "/tmp", .check = check_abspath, .doc = "unix_socket_directories" },
	{ .path = "postgresql.pgpass", .type = OPT_STRING, .off = CFG_OFF(postgresql.pgpass),
	  .def_from = "postgresql.data_dir", .def_suffix = ".pgpass", .check = check_abspath,
	  .doc = "password file the agent writes for pg_basebackup and pg_rewind" },
	{ .path = "postgresql.log_file", .type = OPT_STRING, .off = CFG_OFF(postgresql.log_file),
	  .def_from = "postgresql.data_dir", .def_suffix = ".log", .check = check_abspath,
	  .doc = "output of Postgres and its tools" },
	{ .path = "postgresql.authentication.superuser.username", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.superuser_username), .def = "postgres", .check = check_one_line,
	  .doc = "superuser the agent connects as" },
	{ .path = "postgresql.authentication.superuser.password", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.superuser_password), .flags = OPT_REQUIRED | OPT_SECRET,
	  .check = check_one_line,
	  .doc = "superuser's password" },
	{ .path = "postgresql.authentication.replication.username", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.replication_username), .def = "replicator", .check = check_one_line,
	  .doc = "user replicas stream as" },
	{ .path = "postgresql.authentication.replication.password", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.replication_password), .flags = OPT_REQUIRED | OPT_SECRET,
	  .check = check_one_line,
	  .doc = "replication user's password" },
	{ .path = "postgresql.parameters", .type = OPT_PARAMS, .off = CFG_OFF(postgresql.params),
	  .count_off = CFG_OFF(postgresql.n_params),
	  .doc = "Postgres parameters of this member (override bootstrap.dcs ones)" },
	{ .path = "postgresql.allow_from_dcs", .type = OPT_STRLIST,
	  .off = CFG_OFF(postgresql.allow_from_dcs), .count_off = CFG_OFF(postgresql.n_allow_from_dcs),
	  .check = check_code_param,
	  .doc = "parameters that run or load code (archive_command, *_preload_libraries, ...) this node "
		 "takes from the cluster's config key; others come only from this file" },
	{ .path = "postgresql.tls.certfile", .type = OPT_STRING, .off = CFG_OFF(postgresql.tls_certfile),
	  .with = "postgresql.tls.keyfile", .check = check_readable_file,
	  .doc = "PEM certificate Postgres serves (ssl = on; absolute path; its SAN must name connect_address's host)" },
	{ .path = "postgresql.tls.keyfile", .type = OPT_STRING, .off = CFG_OFF(postgresql.tls_keyfile),
	  .with = "postgresql.tls.certfile", .check = check_readable_file,
	  .doc = "PEM private key of postgresql.tls.certfile (mode 0600, owned by the Postgres user)" },
	{ .path = "postgresql.tls.cafile", .type = OPT_STRING, .off = CFG_OFF(postgresql.tls_cafile),
	  .check = check_readable_file,
	  .doc = "PEM CA bundle the other members' Postgres certificates chain to: every connection to a member "
		 "uses sslmode=verify-full and channel_binding=require (needs certfile and keyfile)" },
	{ .path = "postgresql.pg_hba", .type = OPT_STRLIST, .off = CFG_OFF(postgresql.pg_hba),
	  .count_off = CFG_OFF(postgresql.n_pg_hba), .check = check_one_line, .doc = "pg_hba.conf lines" },
	{ .path = "postgresql.use_pg_rewind", .type = OPT_BOOL, .off = CFG_OFF(postgresql.use_pg_rewind),
	  .def = "true", .doc = "rewind a diverged former primary instead of recloning it" },
	{ .path = "postgresql.remove_data_directory_on_rewind_failure", .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.remove_data_directory_on_rewind_failure), .def = "false",
	  .doc = "reclone from the primary if pg_rewind fails" },
	{ .path = "postgresql.callbacks.on_start", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_start), .check = check_executable,
	  .doc = "run as `SCRIPT on_start ROLE SCOPE` after Postgres started (absolute path)" },
	{ .path = "postgresql.callbacks.on_stop", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_stop), .check = check_executable,
	  .doc = "run as `SCRIPT on_stop ROLE SCOPE` after Postgres stopped" },
	{ .path = "postgresql.callbacks.on_role_change", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_role_change), .check = check_executable,
	  .doc = "run as `SCRIPT on_role_change ROLE SCOPE` on promotion or demotion (VIP, labels)" },
	{ .path = "postgresql.callbacks.on_reload", .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_reload), .check = check_executable,
	  .doc = "run as `SCRIPT on_reload ROLE SCOPE` after a configuration reload" },
	{ .path = "postgresql.callbacks.timeout", .type = OPT_SECONDS,
	  .off = CFG_OFF(postgresql.callbacks.timeout), .def = "30", .min = 0, .max = NO_MAX,
	  .flags = OPT_MIN_EXCL, .doc = "seconds a callback may run before it is killed" },

	{ .path = "tags.nofailover", .type = OPT_BOOL, .off = CFG_OFF(tags.nofailover),
	  .def = "false", .doc = "never promote this member" },
	{ .path = "tags.nosync", .type = OPT_BOOL, .off = CFG_OFF(tags.nosync),
	  .def = "false", .doc = "never choose this member as a synchronous standby" },
	{ .path = "tags.failover_priority", .type = OPT_INT64, .off = CFG_OFF(tags.failover_priority),
	  .def = "1", .min = 0, .max = 1000000,
	  .doc = "0: never promote; among equally advanced candidates the highest wins" },

	{ .path = "watchdog.mode", .type = OPT_STRING, .off = CFG_OFF(watchdog.mode), .def = "automatic",
	  .check = check_watchdog_mode,
	  .doc = "\"off\", \"automatic\" (arm the device while primary if it works) or \"required\" (never primary without it)" },
	{ .path = "watchdog.device", .type = OPT_STRING, .off = CFG_OFF(watchdog.device), .def = "/dev/watchdog",
	  .check = check_abspath, .doc = "the Linux watchdog device (absolute path)" },
	{ .path = "watchdog.safety_margin", .type = OPT_SECONDS, .off = CFG_OFF(watchdog.safety_margin),
	  .def = "0.5", .min = 0, .max = NO_MAX, .flags = OPT_MIN_EXCL,
	  .doc = "seconds between a watchdog reset and the lease's expiry; timeout = floor(ttl - margin - 2 * keepalive interval)" },

	{ .path = "log.level", .type = OPT_STRING, .off = CFG_OFF(log_level), .def = "info",
	  .check = check_log_level, .doc = "debug, info, warning or error" },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* ---- small helpers ---- */

static void *field(struct baton_config *cfg, size_t off)
{
	return (char *)cfg + off;
}

static const void *cfield(const struct baton_config *cfg, size_t off)
{
	return (const char *)cfg + off;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const struct opt *find_option(const char *path)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strcmp(options[i].path, path) == 0)
			return &options[i];
	return NULL;
}

/* True if path names a group some option lives in ("postgresql.authentication"). */
static bool is_known_group(const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strncmp(options[i].path, path, len) == 0 && options[i].path[len] == '.')
			return true;
	return false;
}

/* Renders a double so that reading it back gives the same value. */
static void format_number(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
}

static char *xstrdup_suffix(const char *a, const char *b)
{
	size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0;
	char *s = malloc(la + lb + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, a, la);
	if (lb > 0)
		memcpy(s + la, b, lb);
	s[la + lb] = '\0';
	return s;
}

/* ---- validators ---- */

static bool check_member_name(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (n < 1 || n > 63) {
		set_err(why, len, "must be 1 to 63 characters of [A-Za-z0-9_.-]");
		return false;
	}
	for (const char *p = v; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-')) {
			set_err(why, len, "may only contain [A-Za-z0-9_.-]");
			return false;
		}
	}
	return true;
}

static bool check_namespace(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (v[0] != '/') {
		set_err(why, len, "must start with '/'");
		return false;
	}
	if (n < 2 || v[n - 1] == '/') {
		set_err(why, len, "must not end with '/'");
		return false;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			set_err(why, len, "must not contain white space");
			return false;
		}
	}
	return true;
}

static bool check_hostport(const char *v, char *why, size_t len)
{
	char *host = NULL;
	int port;

	if (!config_split_hostport(v, &host, &port)) {
		const char *colon = strchr(v, ':');

		if (v[0] != '[' && colon != NULL && strchr(colon + 1, ':') != NULL)
			set_err(why, len, "expected \"host:port\", an IPv6 host in brackets "
					  "(\"[::1]:5432\")");
		else
			set_err(why, len, "expected \"host:port\" with a port from 1 to 65535");
		return false;
	}
	free(host);
	return true;
}

static bool check_protocol(const char *v, char *why, size_t len)
{
	if (strcmp(v, "http") == 0 || strcmp(v, "https") == 0)
		return true;
	set_err(why, len, "must be \"http\" or \"https\"");
	return false;
}

static bool check_verify_client(const char *v, char *why, size_t len)
{
	if (strcmp(v, "none") == 0 || strcmp(v, "optional") == 0 || strcmp(v, "required") == 0)
		return true;
	set_err(why, len, "must be \"none\", \"optional\" or \"required\"");
	return false;
}

/* A DNS name or an IP address as it appears in a Host header (without the
 * port; IPv6 without brackets). */
static bool check_host_name(const char *v, char *why, size_t len)
{
	const char *p;

	if (!*v || strlen(v) > 253) {
		set_err(why, len, "must be a host name or address of 1 to 253 characters");
		return false;
	}
	for (p = v; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == ':' || *p == '_')) {
			set_err(why, len, "must hold only letters, digits, '.', '-', '_' and ':'");
			return false;
		}
	}
	return true;
}

static bool check_abspath(const char *v, char *why, size_t len)
{
	if (v[0] == '/')
		return true;
	set_err(why, len, "must be an absolute path");
	return false;
}

static bool check_bin_dir(const char *v, char *why, size_t len)
{
	char path[4096];
	struct stat st;
	int n;

	if (!check_abspath(v, why, len))
		return false;
	n = snprintf(path, sizeof(path), "%s/postgres", v);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		set_err(why, len, "path too long");
		return false;
	}
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
		set_err(why, len, "%s is not an executable file", path);
		return false;
	}
	return true;
}

static bool check_log_level(const char *v, char *why, size_t len)
{
	if (log_level_parse(v, NULL))
		return true;
	set_err(why, len, "must be debug, info, warning or error");
	return false;
}

/* Letters, digits and "._-@", not starting with "-": what encoding and
 * locale names are made of, and nothing initdb could take as an option. */
static bool initdb_name_chars(const char *v)
{
	if (v[0] == '\0' || v[0] == '-')
		return false;
	for (const char *c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '.' || *c == '_' || *c == '-' || *c == '@'))
			return false;
	return true;
}

static bool check_initdb_encoding(const char *v, char *why, size_t len)
{
	if (!initdb_name_chars(v) || strlen(v) > 32) {
		set_err(why, len, "expected an encoding name such as \"UTF8\" (letters, digits, \"_-\")");
		return false;
	}
	return true;
}

/* The locale must exist here: every member runs Postgres with the
 * cluster's locale, and initdb would only fail later, in the log. */
static bool check_initdb_locale(const char *v, char *why, size_t len)
{
	locale_t l;

	if (!initdb_name_chars(v) || strlen(v) > 64) {
		set_err(why, len, "expected a locale name such as \"C.UTF-8\" or \"en_US.UTF-8\"");
		return false;
	}
	l = newlocale(LC_ALL_MASK, v, (locale_t)0);
	if (l == (locale_t)0) {
		set_err(why, len, "locale not installed on this host (`locale -a` lists those that are)");
		return false;
	}
	freelocale(l);
	return true;
}

static bool check_watchdog_mode(const char *v, char *why, size_t len)
{
	enum watchdog_mode m;

	if (watchdog_mode_parse(v, &m))
		return true;
	set_err(why, len, "must be \"off\", \"automatic\" or \"required\"");
	return false;
}

/* A replication slot name as Postgres accepts it. */
static bool check_slot_name(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (n == 0 || n > 63 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		set_err(why, len, "a slot name is 1 to 63 of a-z, 0-9 and _");
		return false;
	}
	return true;
}

/* A value that becomes one line of a file (postgresql.conf, pg_hba.conf,
 * the pgpass file): a line break would start a line of the writer's
 * choosing, other control characters confuse the files and the logs. A tab
 * is fine. */
static bool check_one_line(const char *v, char *why, size_t len)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			set_err(why, len, "must be one line without control characters (byte 0x%02x at offset %zu)", *p,
				(size_t)(p - (const unsigned char *)v));
			return false;
		}
	return true;
}

/* An entry of postgresql.allow_from_dcs: one of the parameters that need
 * it (any other is always taken from etcd, so listing it is a typo). */
static bool check_code_param(const char *v, char *why, size_t len)
{
	if (pg_conf_param_runs_code(v))
		return true;
	set_err(why, len, "not a parameter that runs or loads code (archive_command, *_preload_libraries, ...: "
			  "see baton.conf(5))");
	return false;
}

/* TLS files: read by the REST server at start, so a typo must fail the load. */
static bool check_readable_file(const char *v, char *why, size_t len)
{
	struct stat st;

	if (!check_abspath(v, why, len))
		return false;
	if (stat(v, &st) != 0 || access(v, R_OK) != 0) {
		set_err(why, len, "cannot read %s: %s", v, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(why, len, "%s is not a regular file", v);
		return false;
	}
	return true;
}

/* Callback scripts: checked here so that a role change does not discover
 * a missing or non-executable script when it matters. */
static bool check_executable(const char *v, char *why, size_t len)
{
	struct stat st;

	if (!check_abspath(v, why, len))
		return false;
	if (stat(v, &st) != 0) {
		set_err(why, len, "cannot run %s: %s", v, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(why, len, "%s is not a regular file", v);
		return false;
	}
	if (access(v, X_OK) != 0) {
		set_err(why, len, "%s is not executable: %s", v, strerror(errno));
		return false;
	}
	return true;
}

/* Postgres GUC names as we accept them: [a-z_][a-z0-9_.]* */
static bool is_guc_name(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (const char *p = s + 1; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* ---- public helpers ---- */

bool config_split_hostport(const char *s, char **host, int *port)
{
	const char *colon, *h, *hend;
	char *end;
	long p;
	char *copy;

	if (s == NULL || host == NULL || port == NULL)
		return false;
	*host = NULL;
	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (hend == NULL || hend[1] != ':')
			return false;
		h = s + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return false;
		h = s;
		hend = colon;
		if (memchr(h, ':', (size_t)(hend - h)) != NULL)
			return false; /* a bare IPv6 address: needs [brackets] */
	}
	if (hend == h)
		return false;
	for (const char *c = h; c < hend; c++)
		if (*c == ' ' || *c == '\t' || *c == '/' || *c == '[' || *c == ']' || *c == '@')
			return false;
	if (colon[1] < '0' || colon[1] > '9')
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return false;
	copy = strndup(h, (size_t)(hend - h));
	if (copy == NULL)
		return false;
	*host = copy;
	*port = (int)p;
	return true;
}

bool config_check_timing(const struct dcs_settings *d, char *err, size_t errlen)
{
	char a[32], b[32];

	if (d == NULL) {
		set_err(err, errlen, "no settings");
		return false;
	}
	/* !(x >= min) also catches NaN. */
	if (!(d->ttl >= CONFIG_TTL_MIN)) {
		format_number(d->ttl, a, sizeof(a));
		set_err(err, errlen, "ttl = %s < 2 (etcd's minimum lease)", a);
		return false;
	}
	if (!(d->ttl <= CONFIG_TTL_MAX)) {
		format_number(d->ttl, a, sizeof(a));
		set_err(err, errlen, "ttl = %s > 86400 (a day: a longer lease means no failover)", a);
		return false;
	}
	if (!(d->loop_wait >= CONFIG_LOOP_WAIT_MIN) || !(d->loop_wait <= CONFIG_WAIT_MAX)) {
		format_number(d->loop_wait, a, sizeof(a));
		set_err(err, errlen, "loop_wait = %s outside [0.1, 3600] (it paces the lease keepalives)", a);
		return false;
	}
	if (!(d->retry_timeout >= CONFIG_RETRY_TIMEOUT_MIN) || !(d->retry_timeout <= CONFIG_WAIT_MAX)) {
		format_number(d->retry_timeout, a, sizeof(a));
		set_err(err, errlen,
			"retry_timeout = %s outside [0.5, 3600] (shorter than one etcd request may take)", a);
		return false;
	}
	if (d->maximum_lag_on_failover < 0) {
		set_err(err, errlen, "maximum_lag_on_failover = %lld must be >= 0",
			(long long)d->maximum_lag_on_failover);
		return false;
	}
	/* A small tolerance: 0.1 + 2 * 0.95 must not fail a ttl of 2. */
	if (d->loop_wait + 2 * d->retry_timeout > d->ttl + 1e-9) {
		format_number(d->loop_wait + 2 * d->retry_timeout, a, sizeof(a));
		format_number(d->ttl, b, sizeof(b));
		set_err(err, errlen,
			"loop_wait + 2 * retry_timeout = %s > ttl = %s (a leader could lose its lease "
			"before noticing)",
			a, b);
		return false;
	}
	return true;
}

bool config_param_allowed_from_dcs(const char *name, char *const *allow, size_t n)
{
	if (!pg_conf_param_runs_code(name))
		return true;
	for (size_t i = 0; i < n; i++)
		if (allow[i] != NULL && strcasecmp(allow[i], name) == 0)
			return true;
	return false;
}

static void params_free(struct config_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

void dcs_settings_free(struct dcs_settings *d)
{
	if (d == NULL)
		return;
	params_free(d->pg_params, d->n_pg_params);
	for (size_t i = 0; i < d->n_slots; i++)
		free(d->slots[i]);
	free(d->slots);
	memset(d, 0, sizeof(*d));
}

bool dcs_settings_copy(struct dcs_settings *dst, const struct dcs_settings *src)
{
	struct dcs_settings tmp;

	if (dst == NULL || src == NULL)
		return false;
	tmp = *src;
	tmp.pg_params = NULL;
	tmp.n_pg_params = 0;
	tmp.slots = NULL;
	tmp.n_slots = 0;
	if (src->n_slots > 0) {
		tmp.slots = calloc(src->n_slots, sizeof(*tmp.slots));
		if (tmp.slots == NULL)
			return false;
		for (size_t i = 0; i < src->n_slots; i++) {
			tmp.slots[i] = strdup(src->slots[i]);
			tmp.n_slots = i + 1;
			if (tmp.slots[i] == NULL) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	if (src->n_pg_params > 0) {
		tmp.pg_params = calloc(src->n_pg_params, sizeof(*tmp.pg_params));
		if (tmp.pg_params == NULL)
			return false;
		for (size_t i = 0; i < src->n_pg_params; i++) {
			tmp.pg_params[i].name = strdup(src->pg_params[i].name);
			tmp.pg_params[i].value = strdup(src->pg_params[i].value);
			tmp.n_pg_params = i + 1;
			if (tmp.pg_params[i].name == NULL || tmp.pg_params[i].value == NULL) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	*dst = tmp;
	return true;
}

static void strlist_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void config_free(struct baton_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		void *f = field(cfg, o->off);

		switch (o->type) {
		case OPT_STRING:
			free(*(char **)f);
			break;
		case OPT_HOSTLIST:
		case OPT_STRLIST:
			strlist_free(*(char ***)f, *(size_t *)field(cfg, o->count_off));
			break;
		case OPT_PARAMS:
			params_free(*(struct config_param **)f, *(size_t *)field(cfg, o->count_off));
			break;
		case OPT_SECONDS:
		case OPT_INT64:
		case OPT_BOOL:
			break;
		}
	}
	free(cfg->path);
	free(cfg->postgresql.listen_host);
	free(cfg->postgresql.connect_host);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- loading ---- */

struct load_ctx {
	const char *path;
	struct baton_config *cfg;
	char *err;
	size_t errlen;
};

/* "FILE:LINE: " for a setting, "FILE: " when it has no line. */
static void location(const struct load_ctx *c, const config_setting_t *s, char *buf, size_t len)
{
	const char *file = c->path;
	unsigned line = 0;

	if (s != NULL) {
		line = config_setting_source_line(s);
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
	}
	if (line > 0)
		snprintf(buf, len, "%s:%u", file, line);
	else
		snprintf(buf, len, "%s", file);
}

static void fail(const struct load_ctx *c, const config_setting_t *s, const char *key,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(const struct load_ctx *c, const config_setting_t *s, const char *key,
		 const char *fmt, ...)
{
	char loc[512], msg[512];
	va_list ap;

	location(c, s, loc, sizeof(loc));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(c->err, c->errlen, "%s: %s: %s", loc, key, msg);
	/* A value may hold newlines or escapes: the error stays one printable line. */
	for (char *p = c->err; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* What a setting holds, for "(got ...)": a short rendering of its value. */
static void describe(const config_setting_t *s, bool secret, char *buf, size_t len)
{
	char num[32];

	/* A secret is never echoed, whatever its type: a password written as
	 * a number is still the password. */
	if (secret && config_setting_type(s) != CONFIG_TYPE_GROUP && config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		switch (config_setting_type(s)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			snprintf(buf, len, "an integer");
			return;
		case CONFIG_TYPE_FLOAT:
			snprintf(buf, len, "a number");
			return;
		case CONFIG_TYPE_BOOL:
			snprintf(buf, len, "a boolean");
			return;
		default:
			snprintf(buf, len, "a string");
			return;
		}
	}
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		snprintf(buf, len, "%d", config_setting_get_int(s));
		break;
	case CONFIG_TYPE_INT64:
		snprintf(buf, len, "%lldL", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		format_number(config_setting_get_float(s), num, sizeof(num));
		snprintf(buf, len, "%s", num);
		break;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%s", config_setting_get_bool(s) ? "true" : "false");
		break;
	case CONFIG_TYPE_STRING:
		if (secret)
			snprintf(buf, len, "a string");
		else
			snprintf(buf, len, "\"%.100s%s\"", config_setting_get_string(s),
				 strlen(config_setting_get_string(s)) > 100 ? "..." : "");
		break;
	case CONFIG_TYPE_GROUP:
		snprintf(buf, len, "a group");
		break;
	case CONFIG_TYPE_ARRAY:
		snprintf(buf, len, "an array");
		break;
	case CONFIG_TYPE_LIST:
		snprintf(buf, len, "a list");
		break;
	default:
		snprintf(buf, len, "nothing");
		break;
	}
}

/* Optimal string alignment distance (edits with transpositions), for
 * "did you mean"; names here are short, anything long is "far". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[33][33];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* Suggests a known key for an unknown one: a close sibling name, or the same
 * name somewhere else ("ttl" at the top -> "bootstrap.dcs.ttl"). */
static bool suggest(const char *prefix, const char *name, char *buf, size_t len)
{
	size_t plen = strlen(prefix);
	size_t best = 99;

	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *p = options[i].path;
		const char *child, *dot;
		char cand[64];
		size_t clen, dist;

		if (plen > 0 && (strncmp(p, prefix, plen) != 0 || p[plen] != '.'))
			continue;
		child = plen > 0 ? p + plen + 1 : p;
		dot = strchr(child, '.');
		clen = dot != NULL ? (size_t)(dot - child) : strlen(child);
		if (clen >= sizeof(cand))
			continue;
		memcpy(cand, child, clen);
		cand[clen] = '\0';
		dist = edit_distance(name, cand);
		if (dist < best && dist <= 2 && dist * 3 <= clen) {
			best = dist;
			snprintf(buf, len, "%s%s%s", prefix, plen > 0 ? "." : "", cand);
		}
	}
	if (best < 99)
		return true;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *leaf = strrchr(options[i].path, '.');

		if (leaf != NULL && strcmp(leaf + 1, name) == 0) {
			snprintf(buf, len, "%s", options[i].path);
			return true;
		}
	}
	return false;
}

/* Walks the file's tree: every key must be an option or a group of them. */
static bool check_keys(const struct load_ctx *c, const config_setting_t *group, const char *prefix)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char path[256], hint[128], got[160];
		int len;

		len = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", name);
		if (len < 0 || (size_t)len >= sizeof(path)) {
			fail(c, s, prefix, "key name too long");
			return false;
		}
		if (find_option(path) != NULL)
			continue; /* its type and value are checked with the option */
		if (is_known_group(path)) {
			if (!config_setting_is_group(s)) {
				/* "authentication = ..." in place of its group may be a password. */
				describe(s, strstr(path, "authentication") != NULL, got, sizeof(got));
				fail(c, s, path, "expected a group { ... } (got %s)", got);
				return false;
			}
			if (!check_keys(c, s, path))
				return false;
			continue;
		}
		if (suggest(prefix, name, hint, sizeof(hint)))
			fail(c, s, path, "unknown key (did you mean %s?)", hint);
		else
			fail(c, s, path, "unknown key");
		return false;
	}
	return true;
}

/* The nearest existing group on the way to path, for "required key missing". */
static const config_setting_t *nearest_group(config_t *cf, const char *path)
{
	char buf[256];
	const config_setting_t *best = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *dot = strrchr(buf, '.'); dot != NULL; dot = strrchr(buf, '.')) {
		*dot = '\0';
		best = config_lookup(cf, buf);
		if (best != NULL)
			return best;
	}
	return NULL;
}

static bool load_param_value(const struct load_ctx *c, const config_setting_t *s,
			     const char *key, char **out)
{
	char buf[64], got[160];

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		snprintf(buf, sizeof(buf), "%d", config_setting_get_int(s));
		break;
	case CONFIG_TYPE_INT64:
		snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		format_number(config_setting_get_float(s), buf, sizeof(buf));
		break;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, sizeof(buf), "%s", config_setting_get_bool(s) ? "on" : "off");
		break;
	case CONFIG_TYPE_STRING:
		*out = strdup(config_setting_get_string(s));
		goto done;
	default:
		describe(s, false, got, sizeof(got));
		fail(c, s, key, "expected a number, boolean or string (got %s)", got);
		return false;
	}
	*out = strdup(buf);
done:
	if (*out == NULL) {
		fail(c, s, key, "out of memory");
		return false;
	}
	return true;
}

static bool load_params(const struct load_ctx *c, const struct opt *o, const config_setting_t *s)
{
	struct config_param **list = field(c->cfg, o->off);
	size_t *count = field(c->cfg, o->count_off);
	int n = config_setting_length(s);
	char why[160];

	if (n == 0)
		return true;
	*list = calloc((size_t)n, sizeof(**list));
	if (*list == NULL) {
		fail(c, s, o->path, "out of memory");
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(e);
		struct config_param *p = &(*list)[i];
		char key[256];

		snprintf(key, sizeof(key), "%s.%s", o->path, name);
		if (!is_guc_name(name)) {
			fail(c, e, key, "not a Postgres parameter name, expected [a-z_][a-z0-9_.]*");
			return false;
		}
		p->name = strdup(name);
		*count = (size_t)i + 1;
		if (p->name == NULL) {
			fail(c, e, key, "out of memory");
			return false;
		}
		if (!load_param_value(c, e, key, &p->value))
			return false;
		if (!check_one_line(p->value, why, sizeof(why))) {
			fail(c, e, key, "%s", why);
			return false;
		}
	}
	return true;
}

static bool load_list(const struct load_ctx *c, const struct opt *o, const config_setting_t *s)
{
	char ***list = field(c->cfg, o->off);
	size_t *count = field(c->cfg, o->count_off);
	char got[160], why[160];
	int n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		describe(s, false, got, sizeof(got));
		fail(c, s, o->path, "expected a list of strings [ \"...\", ... ] (got %s)", got);
		return false;
	}
	n = config_setting_length(s);
	if (n == 0) {
		if (o->flags & OPT_NONEMPTY) {
			fail(c, s, o->path, "must list at least one entry (got an empty list)");
			return false;
		}
		return true;
	}
	*list = calloc((size_t)n, sizeof(**list));
	if (*list == NULL) {
		fail(c, s, o->path, "out of memory");
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char key[256];
		const char *v;

		snprintf(key, sizeof(key), "%s[%d]", o->path, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			describe(e, false, got, sizeof(got));
			fail(c, e, key, "expected a string (got %s)", got);
			return false;
		}
		v = config_setting_get_string(e);
		if (v[0] == '\0') {
			fail(c, e, key, "must not be empty");
			return false;
		}
		if (o->check != NULL && !o->check(v, why, sizeof(why))) {
			describe(e, false, got, sizeof(got));
			fail(c, e, key, "%s (got %s)", why, got);
			return false;
		}
		(*list)[i] = strdup(v);
		*count = (size_t)i + 1;
		if ((*list)[i] == NULL) {
			fail(c, e, key, "out of memory");
			return false;
		}
	}
	return true;
}

static bool check_range(const struct load_ctx *c, const struct opt *o, const config_setting_t *s,
			double v, const char *shown)
{
	char lim[32];
	bool low = (o->flags & OPT_MIN_EXCL) ? !(v > o->min) : !(v >= o->min);

	if (low) {
		format_number(o->min, lim, sizeof(lim));
		fail(c, s, o->path, "must be %s %s (got %s)", (o->flags & OPT_MIN_EXCL) ? ">" : ">=",
		     lim, shown);
		return false;
	}
	if (!(v <= o->max)) {
		format_number(o->max, lim, sizeof(lim));
		fail(c, s, o->path, "must be <= %s (got %s)", lim, shown);
		return false;
	}
	return true;
}

/* Parses a default written as text in the table into the field. */
static bool apply_default(const struct load_ctx *c, const struct opt *o)
{
	void *f = field(c->cfg, o->off);

	switch (o->type) {
	case OPT_STRING:
		if (o->def_from != NULL) {
			const struct opt *from = find_option(o->def_from);
			const char *base = from != NULL ? *(char **)field(c->cfg, from->off) : NULL;

			if (base == NULL)
				return true;
			*(char **)f = xstrdup_suffix(base, o->def_suffix);
		} else if (o->def != NULL) {
			*(char **)f = strdup(o->def);
		} else {
			return true;
		}
		if (*(char **)f == NULL) {
			fail(c, NULL, o->path, "out of memory");
			return false;
		}
		return true;
	case OPT_SECONDS:
		*(double *)f = o->def != NULL ? strtod(o->def, NULL) : 0;
		return true;
	case OPT_INT64:
		*(int64_t *)f = o->def != NULL ? strtoll(o->def, NULL, 10) : 0;
		return true;
	case OPT_BOOL:
		*(bool *)f = o->def != NULL && strcmp(o->def, "true") == 0;
		return true;
	case OPT_HOSTLIST:
	case OPT_STRLIST:
	case OPT_PARAMS:
		return true; /* empty */
	}
	return true;
}

/* Loads one option from its setting s (NULL: not in the file). */
static bool load_option(const struct load_ctx *c, config_t *cf, const struct opt *o,
			const config_setting_t *s)
{
	void *f = field(c->cfg, o->off);
	bool secret = (o->flags & OPT_SECRET) != 0;
	char got[160], why[300];
	int type;

	if (s == NULL) {
		if (o->flags & OPT_REQUIRED) {
			const config_setting_t *g = nearest_group(cf, o->path);

			fail(c, g, o->path, "required key missing");
			return false;
		}
		if (!apply_default(c, o))
			return false;
		/* Defaults are checked too: the built-in bin_dir may not exist here. */
		if (o->type == OPT_STRING && o->check != NULL && *(char **)f != NULL &&
		    !o->check(*(char **)f, why, sizeof(why))) {
			fail(c, NULL, o->path, "%s (got \"%s\", the default)", why, *(char **)f);
			return false;
		}
		return true;
	}

	/* A pair is refused first: a keyfile without its certfile is the
	 * mistake to report, whatever the files hold. */
	if (o->with != NULL && config_lookup(cf, o->with) == NULL) {
		fail(c, s, o->path, "set without %s (both are required together)", o->with);
		return false;
	}
	type = config_setting_type(s);
	switch (o->type) {
	case OPT_STRING: {
		const char *v;

		if (type != CONFIG_TYPE_STRING) {
			describe(s, secret, got, sizeof(got));
			fail(c, s, o->path, "expected a string (got %s)", got);
			return false;
		}
		v = config_setting_get_string(s);
		if (v[0] == '\0') {
			fail(c, s, o->path, "must not be empty");
			return false;
		}
		if (o->check != NULL && !o->check(v, why, sizeof(why))) {
			describe(s, secret, got, sizeof(got));
			fail(c, s, o->path, "%s (got %s)", why, got);
			return false;
		}
		*(char **)f = strdup(v);
		if (*(char **)f == NULL) {
			fail(c, s, o->path, "out of memory");
			return false;
		}
		return true;
	}
	case OPT_SECONDS: {
		double v;

		if (type == CONFIG_TYPE_INT)
			v = config_setting_get_int(s);
		else if (type == CONFIG_TYPE_INT64)
			v = (double)config_setting_get_int64(s);
		else if (type == CONFIG_TYPE_FLOAT)
			v = config_setting_get_float(s);
		else {
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected a number of seconds (got %s)", got);
			return false;
		}
		describe(s, false, got, sizeof(got));
		if (!check_range(c, o, s, v, got))
			return false;
		*(double *)f = v;
		return true;
	}
	case OPT_INT64: {
		long long v;

		if (type == CONFIG_TYPE_INT)
			v = config_setting_get_int(s);
		else if (type == CONFIG_TYPE_INT64)
			v = config_setting_get_int64(s);
		else {
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected an integer (got %s)", got);
			return false;
		}
		describe(s, false, got, sizeof(got));
		if (!check_range(c, o, s, (double)v, got))
			return false;
		*(int64_t *)f = v;
		return true;
	}
	case OPT_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected true or false (got %s)", got);
			return false;
		}
		*(bool *)f = config_setting_get_bool(s) != 0;
		return true;
	case OPT_HOSTLIST:
	case OPT_STRLIST:
		return load_list(c, o, s);
	case OPT_PARAMS:
		if (!config_setting_is_group(s)) {
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected a group { name = value; ... } (got %s)", got);
			return false;
		}
		return load_params(c, o, s);
	}
	return true;
}

static bool split_address(const struct load_ctx *c, config_t *cf, const char *key,
			  const char *value, char **host, int *port)
{
	if (config_split_hostport(value, host, port))
		return true;
	fail(c, config_lookup(cf, key), key, "expected \"host:port\" (got \"%s\")", value);
	return false;
}

/* A growable buffer for the text handed to libconfig. */
struct text {
	char *data;
	size_t len, cap;
	bool failed;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *p;

		while (cap < t->len + n + 1)
			cap *= 2;
		p = realloc(t->data, cap);
		if (p == NULL) {
			t->failed = true;
			return;
		}
		t->data = p;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

#define CONFIG_FILE_MAX ((size_t)16 << 20) /* a node's file is a few KB */
#define STRING_PIECE 4096                   /* bytes of a string literal libconfig lexes at once */

/* What a path that is not a regular file is, for the error. */
static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/*
 * Reads path for libconfig, refusing at once what is not a configuration
 * file: a FIFO or a device (opened without blocking, so nothing hangs), more
 * than CONFIG_FILE_MAX bytes, a NUL byte (libconfig's lexer reads on past it;
 * found by fuzz_config). On the way it checks what libconfig would get wrong:
 *  - "@include" is refused: one file per node is the product's rule, and
 *    libconfig 1.5's lexer exit()s the whole process when an included path
 *    cannot be read (found by fuzz_config). libconfig takes a directive
 *    only at the start of a line;
 *  - a number that does not fit (libconfig silently saturates
 *    99999999999999999999L and makes 1e999 infinite) is refused, naming it;
 *  - a long string literal is cut into adjacent literals of STRING_PIECE
 *    bytes, which libconfig joins as C does: its lexer rescans a token from
 *    its start at every buffer refill, so one literal of n bytes costs n^2
 *    (8 s for 2 MB), pieces cost n. Lines stay where they were.
 * Returns the malloc'd text (caller frees) or NULL with err set.
 */
static char *read_config_text(const char *path, char *err, size_t errlen)
{
	static const char directive[] = "@include";
	struct text out = { 0 };
	struct stat st;
	char *in = NULL;
	size_t n = 0, i = 0;
	int fd, line = 1;
	bool bol = true, ok = false;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "%s: cannot read the file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: %s, not a configuration file", path,
			fstat(fd, &st) != 0 ? strerror(errno) : file_kind(st.st_mode));
		close(fd);
		return NULL;
	}
	if ((size_t)st.st_size > CONFIG_FILE_MAX) {
		set_err(err, errlen, "%s: %lld bytes, more than a configuration file has (at most %zu)", path,
			(long long)st.st_size, CONFIG_FILE_MAX);
		close(fd);
		return NULL;
	}
	in = malloc((size_t)st.st_size + 1);
	if (in == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, in + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank meanwhile: take what there is */
		n += (size_t)r;
	}
	close(fd);
	in[n] = '\0';

	for (size_t j = 0; j < n; j++) {
		if (in[j] == '\0') {
			set_err(err, errlen, "%s:%d: a NUL byte: not a text configuration file", path, line);
			goto cleanup;
		}
		if (in[j] == '\n')
			line++;
	}
	line = 1;
	while (i < n) {
		char c = in[i];

		if (c == '\n') {
			line++;
			bol = true;
			text_add(&out, in + i++, 1);
			continue;
		}
		if (bol && (c == ' ' || c == '\t')) {
			text_add(&out, in + i++, 1);
			continue;
		}
		if (bol && n - i >= sizeof(directive) - 1 && memcmp(in + i, directive, sizeof(directive) - 1) == 0) {
			set_err(err, errlen, "%s:%d: @include is not supported: keep the whole configuration in one file",
				path, line);
			goto cleanup;
		}
		bol = false;
		if (c == '#' || (c == '/' && i + 1 < n && in[i + 1] == '/')) {
			size_t e = i;

			while (e < n && in[e] != '\n')
				e++;
			text_add(&out, in + i, e - i);
			i = e;
		} else if (c == '/' && i + 1 < n && in[i + 1] == '*') {
			size_t e = i + 2;

			while (e < n && !(in[e] == '*' && e + 1 < n && in[e + 1] == '/'))
				line += in[e++] == '\n';
			e = e < n ? e + 2 : n;
			text_add(&out, in + i, e - i);
			i = e;
		} else if (c == '"') {
			size_t run = 0;

			text_add(&out, in + i++, 1);
			while (i < n && in[i] != '"') {
				size_t step = in[i] == '\\' && i + 1 < n ? (in[i + 1] == 'x' ? 4 : 2) : 1;

				if (step > n - i)
					step = n - i;
				if (run >= STRING_PIECE) {
					text_add(&out, "\" \"", 3);
					run = 0;
				}
				for (size_t e = 0; e < step; e++)
					line += in[i + e] == '\n';
				text_add(&out, in + i, step);
				i += step;
				run += step;
			}
			if (i < n)
				text_add(&out, in + i++, 1);
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*') {
			size_t e = i;

			while (e < n && ((in[e] >= 'A' && in[e] <= 'Z') || (in[e] >= 'a' && in[e] <= 'z') ||
					 (in[e] >= '0' && in[e] <= '9') || in[e] == '_' || in[e] == '-' || in[e] == '*'))
				e++;
			text_add(&out, in + i, e - i);
			i = e;
		} else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
			/* A number token: digits, letters (hex, e, L), '.', and a
			 * sign at the start or after an exponent's e. */
			char tok[64];
			size_t e = i + 1, len;

			while (e < n && ((in[e] >= '0' && in[e] <= '9') || (in[e] >= 'a' && in[e] <= 'z') ||
					 (in[e] >= 'A' && in[e] <= 'Z') || in[e] == '.' ||
					 ((in[e] == '-' || in[e] == '+') && (in[e - 1] == 'e' || in[e - 1] == 'E'))))
				e++;
			len = e - i;
			if (len >= sizeof(tok)) {
				set_err(err, errlen, "%s:%d: the number %.20s... is too long", path, line, in + i);
				goto cleanup;
			}
			memcpy(tok, in + i, len);
			tok[len] = '\0';
			{
				const char *digits = tok + (tok[0] == '-' || tok[0] == '+');
				bool hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
				size_t dl = strlen(digits);
				char *endp;

				while (dl > 0 && (digits[dl - 1] == 'L' || digits[dl - 1] == 'l') && !hex)
					dl--;
				errno = 0;
				if (hex) {
					(void)strtoull(digits, &endp, 16);
				} else if (strpbrk(tok, ".eE") != NULL) {
					double d = strtod(tok, &endp);

					if (errno == 0 && !isfinite(d))
						errno = ERANGE;
					if (errno == ERANGE && d == 0)
						errno = 0; /* underflow to 0 is harmless */
				} else if (dl > 0 && strspn(digits, "0123456789") == dl) {
					char num[64];

					snprintf(num, sizeof(num), "%.*s%.*s", tok[0] == '-' ? 1 : 0, "-", (int)dl, digits);
					(void)strtoll(num, &endp, 10);
				}
				if (errno == ERANGE) {
					set_err(err, errlen, "%s:%d: the number %s is out of range (integers fit in 64 "
							     "bits, reals are finite)",
						path, line, tok);
					goto cleanup;
				}
			}
			text_add(&out, in + i, len);
			i = e;
		} else {
			text_add(&out, in + i++, 1);
		}
	}
	if (out.failed || out.data == NULL) {
		if (out.failed) {
			set_err(err, errlen, "%s: out of memory", path);
			goto cleanup;
		}
		text_add(&out, "", 0); /* an empty file: libconfig gets "" */
		if (out.failed || out.data == NULL) {
			set_err(err, errlen, "%s: out of memory", path);
			goto cleanup;
		}
	}
	ok = true;
cleanup:
	free(in);
	if (!ok) {
		free(out.data);
		return NULL;
	}
	return out.data;
}

bool config_load(const char *path, struct baton_config *out, char *err, size_t errlen)
{
	struct load_ctx c = { path, out, err, errlen };
	config_t cf;
	const config_setting_t *dcs;
	char why[300], *text = NULL;
	bool ok = false;

	if (out == NULL)
		return false;
	memset(out, 0, sizeof(*out));
	set_err(err, errlen, "%s", "");
	if (path == NULL) {
		set_err(err, errlen, "no configuration file given");
		return false;
	}

	text = read_config_text(path, err, errlen);
	if (text == NULL)
		return false;
	config_init(&cf);
	if (!config_read_string(&cf, text)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			set_err(err, errlen, "%s: cannot read the file", path);
		else
			set_err(err, errlen, "%s:%d: syntax error: %s",
				config_error_file(&cf) != NULL ? config_error_file(&cf) : path,
				config_error_line(&cf), config_error_text(&cf));
		goto cleanup;
	}

	out->path = strdup(path);
	if (out->path == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	if (!check_keys(&c, config_root_setting(&cf), ""))
		goto cleanup;
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (!load_option(&c, &cf, &options[i], config_lookup(&cf, options[i].path)))
			goto cleanup;

	if (!split_address(&c, &cf, "postgresql.listen", out->postgresql.listen,
			   &out->postgresql.listen_host, &out->postgresql.listen_port) ||
	    !split_address(&c, &cf, "postgresql.connect_address", out->postgresql.connect_address,
			   &out->postgresql.connect_host, &out->postgresql.connect_port))
		goto cleanup;

	/* Postgres TLS is all or nothing: a node that verifies its peers must
	 * also serve TLS itself, or its replicas could not verify it. */
	if ((out->postgresql.tls_cafile != NULL) != (out->postgresql.tls_certfile != NULL)) {
		const char *have = out->postgresql.tls_cafile ? "postgresql.tls.cafile" : "postgresql.tls.certfile";

		fail(&c, config_lookup(&cf, have), have, "needs %s too (Postgres TLS between members needs "
			 "certfile, keyfile and cafile)",
		     out->postgresql.tls_cafile ? "postgresql.tls.certfile and keyfile" : "postgresql.tls.cafile");
		goto cleanup;
	}
	if (!config_check_timing(&out->bootstrap_dcs, why, sizeof(why))) {
		dcs = config_lookup(&cf, "bootstrap.dcs");
		fail(&c, dcs, "bootstrap.dcs", "%s", why);
		goto cleanup;
	}
	/* bootstrap.dcs goes to the config key, which every node reads: a
	 * parameter there that only a node's own file may set would be
	 * ignored by every node but those that allow it. Say so now. */
	for (size_t i = 0; i < out->bootstrap_dcs.n_pg_params; i++) {
		const char *name = out->bootstrap_dcs.pg_params[i].name;
		char key[256];

		if (config_param_allowed_from_dcs(name, out->postgresql.allow_from_dcs,
						  out->postgresql.n_allow_from_dcs))
			continue;
		snprintf(key, sizeof(key), "bootstrap.dcs.postgresql.parameters.%s", name);
		fail(&c, config_lookup(&cf, key), key,
		     "runs or loads code, so nodes take it only from their own file: set it in "
		     "postgresql.parameters (or list it in postgresql.allow_from_dcs on every node that may take it "
		     "from etcd)");
		goto cleanup;
	}
	ok = true;

cleanup:
	config_destroy(&cf);
	free(text);
	if (!ok)
		config_free(out);
	return ok;
}

/* ---- checks beyond the file's syntax ---- */

bool config_file_exposed(const struct baton_config *cfg, char *why, size_t len)
{
	char names[256] = "";
	struct stat st;

	if (cfg == NULL || cfg->path == NULL || stat(cfg->path, &st) != 0 || (st.st_mode & 077) == 0)
		return false;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		size_t used = strlen(names);

		if ((options[i].flags & OPT_SECRET) && options[i].type == OPT_STRING &&
		    *(char *const *)cfield(cfg, options[i].off) != NULL)
			snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", options[i].path);
	}
	if (names[0] == '\0')
		return false;
	set_err(why, len,
		"%s holds passwords (%s) and is readable or writable by %s (mode %04o): chmod go-rwx %s",
		cfg->path, names, (st.st_mode & 070) && (st.st_mode & 07) ? "its group and others"
				  : (st.st_mode & 070)		    ? "its group"
								    : "others",
		(unsigned)(st.st_mode & 07777), cfg->path);
	return true;
}

/* Is s (n bytes) all base64 characters, '=' only at its end, a multiple of 4 long? */
static bool base64_ok(const char *s, size_t n)
{
	size_t pad = 0;

	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				 c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

/*
 * A PEM file: at least one block "-----BEGIN L-----" ... "-----END L-----"
 * whose label L ends with want ("CERTIFICATE", "PRIVATE KEY": "RSA PRIVATE
 * KEY", "ENCRYPTED PRIVATE KEY" count), and every block well formed: its END
 * matches, its body is base64 (after optional "Name: value" header lines).
 * This is what a TLS library would read first; whether the key fits the
 * certificate is left to it.
 */
static bool pem_check(const char *path, const char *want, char *why, size_t len)
{
	FILE *f;
	char line[512], label[80] = "";
	char *body = NULL;
	size_t body_len = 0, body_cap = 0;
	int lineno = 0, begin_line = 0, found = 0;
	bool in_block = false, ok = false, headers_done = false;

	f = fopen(path, "re");
	if (f == NULL) {
		set_err(why, len, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		lineno++;
		if (line[n] == '\0' && !feof(f)) {
			set_err(why, len, "%s:%d: a line longer than %zu bytes: not PEM", path, lineno, sizeof(line) - 2);
			goto cleanup;
		}
		line[n] = '\0';
		if (!in_block) {
			if (strncmp(line, "-----BEGIN ", 11) == 0) {
				size_t l = strlen(line + 11);

				if (l < 6 || strcmp(line + 11 + l - 5, "-----") != 0 || l - 5 >= sizeof(label)) {
					set_err(why, len, "%s:%d: a malformed BEGIN line", path, lineno);
					goto cleanup;
				}
				memcpy(label, line + 11, l - 5);
				label[l - 5] = '\0';
				in_block = true;
				headers_done = false;
				begin_line = lineno;
				body_len = 0;
			}
			continue; /* text around the blocks is allowed (openssl x509 -text) */
		}
		if (strncmp(line, "-----END ", 9) == 0) {
			size_t ll = strlen(label);

			if (strncmp(line + 9, label, ll) != 0 || strcmp(line + 9 + ll, "-----") != 0) {
				set_err(why, len, "%s:%d: the END line does not match \"BEGIN %s\" of line %d", path, lineno,
					label, begin_line);
				goto cleanup;
			}
			if (!base64_ok(body, body_len)) {
				set_err(why, len, "%s:%d: the %s block is not valid base64", path, begin_line, label);
				goto cleanup;
			}
			if (strlen(label) >= strlen(want) && strcmp(label + strlen(label) - strlen(want), want) == 0)
				found++;
			in_block = false;
			continue;
		}
		if (!headers_done && body_len == 0 && strchr(line, ':') != NULL)
			continue; /* "Proc-Type: 4,ENCRYPTED" and the like */
		if (line[0] == '\0' && body_len == 0) {
			headers_done = true;
			continue;
		}
		headers_done = true;
		for (char *p = line; *p; p++) {
			if (*p == ' ' || *p == '\t')
				continue;
			if (body_len + 2 > body_cap) {
				size_t cap = body_cap ? body_cap * 2 : 4096;
				char *nb = realloc(body, cap);

				if (nb == NULL) {
					set_err(why, len, "out of memory");
					goto cleanup;
				}
				body = nb;
				body_cap = cap;
			}
			body[body_len++] = *p;
		}
	}
	if (in_block) {
		set_err(why, len, "%s:%d: \"BEGIN %s\" has no END line", path, begin_line, label);
		goto cleanup;
	}
	if (found == 0) {
		set_err(why, len, "%s: no PEM \"%s\" block (-----BEGIN %s-----)", path, want, want);
		goto cleanup;
	}
	ok = true;
cleanup:
	free(body);
	fclose(f);
	return ok;
}

bool config_check_files(const struct baton_config *cfg, char *err, size_t errlen)
{
	const struct {
		const char *key, *file, *want;
	} files[] = {
		{ "restapi.certfile", cfg->restapi.certfile, "CERTIFICATE" },
		{ "restapi.keyfile", cfg->restapi.keyfile, "PRIVATE KEY" },
		{ "restapi.cafile", cfg->restapi.cafile, "CERTIFICATE" },
		{ "restapi.client_certfile", cfg->restapi.client_certfile, "CERTIFICATE" },
		{ "restapi.client_keyfile", cfg->restapi.client_keyfile, "PRIVATE KEY" },
		{ "postgresql.tls.certfile", cfg->postgresql.tls_certfile, "CERTIFICATE" },
		{ "postgresql.tls.keyfile", cfg->postgresql.tls_keyfile, "PRIVATE KEY" },
		{ "postgresql.tls.cafile", cfg->postgresql.tls_cafile, "CERTIFICATE" },
		{ "etcd.cacert", cfg->etcd.cacert, "CERTIFICATE" },
		{ "etcd.cert", cfg->etcd.cert, "CERTIFICATE" },
		{ "etcd.key", cfg->etcd.key, "PRIVATE KEY" },
	};
	char why[400];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].file == NULL)
			continue;
		if (!pem_check(files[i].file, files[i].want, why, sizeof(why))) {
			set_err(err, errlen, "%s: %s: %s", cfg->path, files[i].key, why);
			return false;
		}
	}
	return true;
}

/* ---- show-config ---- */

static void print_indent(FILE *f, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", f);
}

/* Writes s as a libconfig string literal. */
static void print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void print_option(const struct baton_config *cfg, const struct opt *o, const char *name,
			 int depth, FILE *f)
{
	const void *v = cfield(cfg, o->off);
	char num[32];

	print_indent(f, depth);
	fprintf(f, "# %s\n", o->doc);
	print_indent(f, depth);
	switch (o->type) {
	case OPT_STRING: {
		const char *s = *(char *const *)v;

		if (s == NULL) {
			fprintf(f, "# %s is not set\n", name);
			return;
		}
		fprintf(f, "%s = ", name);
		print_string(f, (o->flags & OPT_SECRET) ? "***" : s);
		break;
	}
	case OPT_SECONDS:
		format_number(*(const double *)v, num, sizeof(num));
		fprintf(f, "%s = %s", name, num);
		break;
	case OPT_INT64: {
		long long n = *(const int64_t *)v;

		fprintf(f, "%s = %lld%s", name, n, (n > 2147483647LL || n < -2147483647LL) ? "L" : "");
		break;
	}
	case OPT_BOOL:
		fprintf(f, "%s = %s", name, *(const bool *)v ? "true" : "false");
		break;
	case OPT_HOSTLIST:
	case OPT_STRLIST: {
		char *const *l = *(char **const *)v;
		size_t n = *(const size_t *)cfield(cfg, o->count_off);

		fprintf(f, "%s = [", name);
		for (size_t i = 0; i < n; i++) {
			fputs(i > 0 ? ", " : " ", f);
			print_string(f, l[i]);
		}
		fputs(n > 0 ? " ]" : "]", f);
		break;
	}
	case OPT_PARAMS: {
		const struct config_param *p = *(struct config_param *const *)v;
		size_t n = *(const size_t *)cfield(cfg, o->count_off);

		fprintf(f, "%s = {\n", name);
		for (size_t i = 0; i < n; i++) {
			print_indent(f, depth + 1);
			fprintf(f, "%s = ", p[i].name);
			print_string(f, p[i].value);
			fputs(";\n", f);
		}
		print_indent(f, depth);
		fputs("}", f);
		break;
	}
	}
	fputs(";\n", f);
}

/* Prints the options and groups directly under prefix ("" = the top), in
 * the table's order of first appearance. */
static void print_group(const struct baton_config *cfg, const char *prefix, int depth, FILE *f)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *p = options[i].path;
		const char *child, *dot;
		char name[64], sub[256];
		size_t clen;
		bool seen = false;

		if (plen > 0 && (strncmp(p, prefix, plen) != 0 || p[plen] != '.'))
			continue;
		child = plen > 0 ? p + plen + 1 : p;
		dot = strchr(child, '.');
		if (dot == NULL) {
			print_option(cfg, &options[i], child, depth, f);
			continue;
		}
		clen = (size_t)(dot - child);
		if (clen >= sizeof(name))
			continue;
		memcpy(name, child, clen);
		name[clen] = '\0';
		/* a group is printed once, at its first option */
		for (size_t j = 0; j < i && !seen; j++) {
			const char *q = options[j].path;
			const char *qc;

			if (plen > 0 && (strncmp(q, prefix, plen) != 0 || q[plen] != '.'))
				continue;
			qc = plen > 0 ? q + plen + 1 : q;
			seen = strncmp(qc, name, clen) == 0 && qc[clen] == '.';
		}
		if (seen)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", prefix, plen > 0 ? "." : "", name);
		print_indent(f, depth);
		fprintf(f, "%s = {\n", name);
		print_group(cfg, sub, depth + 1, f);
		print_indent(f, depth);
		fputs("};\n", f);
	}
}

void config_print(const struct baton_config *cfg, FILE *out)
{
	if (cfg == NULL || out == NULL)
		return;
	if (cfg->path != NULL)
		fprintf(out, "# effective configuration of %s\n", cfg->path);
	print_group(cfg, "", 0, out);
}
