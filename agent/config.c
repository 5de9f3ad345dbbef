/*
 * config.c - the option table: every key of the node's libconfig file, one
 * row each.
 *
 * Everything the agent knows about its options lives in one table,
 * `config_options[]` below: the dotted path, the type, where the value goes
 * in struct baton_config, the default, the allowed range or a validator,
 * flags (required, secret), what SIGHUP does with a change (the reload
 * column) and a one-line doc. The other files of the module walk it
 * (config_internal.h lists them): the loader for the unknown-key check,
 * parsing, defaults and validation; the printer for show-config; the reload
 * for what a SIGHUP may change; doc/check-man.sh for the man page.
 *
 * Adding an option is adding a row here (plus its field in config.h, its
 * entry in doc/baton.conf.5 and README.md); tests/check_config fails on a
 * row without a reload entry. This file also holds the validators the rows
 * name and the small public helpers that share their rules
 * (config_split_hostport, config_check_timing).
 */
#include "agent/config.h"
#include "agent/config_internal.h"

#include "agent/log.h"
#include "agent/parse.h"
#include "agent/pooler.h"
#include "agent/watchdog.h"
#include "pg/pg_conf.h"
#include "pg/pg_replica.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"
#include "pg/pg_query.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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
static bool check_replica_method(const char *v, char *why, size_t len);
static bool check_replica_command(const char *v, char *why, size_t len);
static bool check_max_rate(const char *v, char *why, size_t len);
static bool check_bootstrap_method(const char *v, char *why, size_t len);
static bool check_target_time(const char *v, char *why, size_t len);
static bool check_target_lsn(const char *v, char *why, size_t len);
static bool check_target_name(const char *v, char *why, size_t len);
static bool check_target_xid(const char *v, char *why, size_t len);
static bool check_checkpoint(const char *v, char *why, size_t len);
static bool check_initdb_option(const char *v, char *why, size_t len);
static bool check_allow_net(const char *v, char *why, size_t len);
static bool check_pooler_conninfo(const char *v, char *why, size_t len);
static bool check_pooler_target(const char *v, char *why, size_t len);

#define CFG_OFF(field) offsetof(struct baton_config, field)
#define NO_MAX DBL_MAX

/* The options, in the order show-config prints them. An option whose default
 * comes from another (def_from) must follow it. */
/* clang-format off: one row per key, packed as the man page reads it */
const struct opt config_options[] = {
	{ .path = "scope",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(scope),
	  .flags = OPT_REQUIRED,
	  .check = check_member_name,
	  .doc = "cluster name, shared by all its members" },
	{ .path = "name",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(name),
	  .flags = OPT_REQUIRED,
	  .check = check_member_name,
	  .doc = "this member's name, unique in the cluster" },
	{ .path = "namespace",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(namespace_),
	  .def = "/baton",
	  .check = check_namespace,
	  .doc = "etcd key prefix; the cluster lives under NAMESPACE/SCOPE/" },

	{ .path = "etcd.hosts",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_HOSTLIST,
	  .off = CFG_OFF(etcd.hosts),
	  .count_off = CFG_OFF(etcd.n_hosts),
	  .flags = OPT_REQUIRED | OPT_NONEMPTY,
	  .check = check_hostport,
	  .doc = "etcd members as \"host:port\"" },
	{ .path = "etcd.protocol",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.protocol),
	  .def = "http",
	  .check = check_protocol,
	  .doc = "\"http\" or \"https\"" },
	{ .path = "etcd.cacert",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.cacert),
	  .doc = "CA certificate file for https" },
	{ .path = "etcd.cert",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.cert),
	  .doc = "client certificate file for https" },
	{ .path = "etcd.key",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.key),
	  .doc = "client key file for https" },
	{ .path = "etcd.username",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.username),
	  .check = config_check_one_line,
	  .doc = "etcd user (authentication enabled)" },
	{ .path = "etcd.password",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(etcd.password),
	  .flags = OPT_SECRET,
	  .check = config_check_one_line,
	  .doc = "etcd user's password" },

	{ .path = "restapi.listen",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.listen),
	  .flags = OPT_REQUIRED,
	  .check = check_hostport,
	  .doc = "\"host:port\" the REST API listens on" },
	{ .path = "restapi.connect_address",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.connect_address),
	  .def_from = "restapi.listen",
	  .check = check_hostport,
	  .doc = "\"host:port\" other members and clients use; default listen" },
	{ .path = "restapi.authentication.username",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.auth_username),
	  .with = "restapi.authentication.password",
	  .check = config_check_one_line,
	  .doc = "basic-auth user the write endpoints require (unset: no authentication)" },
	{ .path = "restapi.authentication.password",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.auth_password),
	  .with = "restapi.authentication.username",
	  .flags = OPT_SECRET,
	  .check = config_check_one_line,
	  .doc = "that user's password" },
	{ .path = "restapi.certfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.certfile),
	  .with = "restapi.keyfile",
	  .check = check_readable_file,
	  .doc = "PEM certificate (absolute path): serve HTTPS (unset: plain HTTP)" },
	{ .path = "restapi.keyfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.keyfile),
	  .with = "restapi.certfile",
	  .check = check_readable_file,
	  .doc = "PEM private key of certfile (absolute path)" },
	{ .path = "restapi.cafile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.cafile),
	  .check = check_readable_file,
	  .doc = "PEM CA bundle: verifies client certificates and, as a client, the members' REST servers" },
	{ .path = "restapi.verify_client",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.verify_client),
	  .def = "none",
	  .check = check_verify_client,
	  .doc = "client certificates: \"none\", \"optional\" or \"required\" (needs certfile and cafile)" },
	{ .path = "restapi.client_certfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.client_certfile),
	  .with = "restapi.client_keyfile",
	  .check = check_readable_file,
	  .doc = "PEM client certificate the agent and batonctl present to the members' REST APIs" },
	{ .path = "restapi.client_keyfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(restapi.client_keyfile),
	  .with = "restapi.client_certfile",
	  .check = check_readable_file,
	  .doc = "PEM private key of client_certfile (absolute path)" },
	{ .path = "restapi.allowed_hosts",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(restapi.allowed_hosts),
	  .count_off = CFG_OFF(restapi.n_allowed_hosts),
	  .check = check_host_name,
	  .doc = "more names the Host header may carry (besides the listen/connect addresses, localhost, this host)" },
	{ .path = "restapi.allow_unauthenticated_writes",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(restapi.allow_unauthenticated_writes),
	  .def = "false",
	  .doc = "INSECURE: accept writes without credentials (warned at every start)" },
	{ .path = "restapi.allowlist",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(restapi.allowlist),
	  .count_off = CFG_OFF(restapi.n_allowlist),
	  .check = check_allow_net,
	  .doc = "addresses or networks (\"10.0.0.5\", \"10.0.0.0/24\", \"::1\") writes may come from; others "
	         "get 403 whatever their credentials (unset: any)" },

	{ .path = "bootstrap.dcs.ttl",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_dcs.ttl),
	  .def = "5",
	  .min = CONFIG_TTL_MIN,
	  .max = CONFIG_TTL_MAX,
	  .doc = "seconds the leader lease lasts (2 to 86400; etcd grants no shorter lease)" },
	{ .path = "bootstrap.dcs.loop_wait",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_dcs.loop_wait),
	  .def = "1",
	  .min = CONFIG_LOOP_WAIT_MIN,
	  .max = CONFIG_WAIT_MAX,
	  .doc = "seconds between HA loop runs (0.1 to 3600)" },
	{ .path = "bootstrap.dcs.retry_timeout",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_dcs.retry_timeout),
	  .def = "2",
	  .min = CONFIG_RETRY_TIMEOUT_MIN,
	  .max = CONFIG_WAIT_MAX,
	  .doc = "seconds to retry etcd and Postgres before giving up (0.5 to 3600)" },
	{ .path = "bootstrap.dcs.maximum_lag_on_failover",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.maximum_lag_on_failover),
	  .def = "1048576",
	  .min = 0,
	  .max = NO_MAX,
	  .doc = "bytes a replica may lag and still be promoted" },
	{ .path = "bootstrap.dcs.synchronous_mode",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_mode),
	  .def = "false",
	  .flags = OPT_SYNC_MODE,
	  .doc = "commits wait for synchronous standbys; only those may be promoted (also \"on\", \"off\", "
	         "or \"quorum\" as Patroni writes it: synchronous_quorum too)" },
	{ .path = "bootstrap.dcs.synchronous_mode_strict",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_mode_strict),
	  .def = "false",
	  .doc = "with no synchronous standby left, writes block instead of turning asynchronous" },
	{ .path = "bootstrap.dcs.synchronous_node_count",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_node_count),
	  .def = "1",
	  .min = 1,
	  .max = 8,
	  .doc = "synchronous standbys every commit waits for (1..8)" },
	{ .path = "bootstrap.dcs.synchronous_quorum",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.synchronous_quorum),
	  .def = "false",
	  .doc = "quorum commit: ANY synchronous_node_count of every eligible standby, not FIRST n" },
	{ .path = "bootstrap.dcs.check_timeline",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.check_timeline),
	  .def = "false",
	  .doc = "a replica on another timeline than the last leader's is never a failover candidate (behind it, never)" },
	{ .path = "bootstrap.dcs.maximum_lag_on_syncnode",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.maximum_lag_on_syncnode),
	  .def = "-1",
	  .min = -1,
	  .max = NO_MAX,
	  .doc = "bytes a synchronous standby may lag before another is chosen (-1 or 0: never replaced for lag)" },
	{ .path = "bootstrap.dcs.slots",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(bootstrap_dcs.slots),
	  .count_off = CFG_OFF(bootstrap_dcs.n_slots),
	  .check = check_slot_name,
	  .doc = "permanent physical replication slots, kept on whichever member is primary" },
	{ .path = "bootstrap.dcs.postgresql.use_slots",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_dcs.use_slots),
	  .def = "true",
	  .doc = "replication slots for the members (false: none made, primary_slot_name unset, members' dropped)" },
	{ .path = "bootstrap.dcs.postgresql.parameters",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_PARAMS,
	  .off = CFG_OFF(bootstrap_dcs.pg_params),
	  .count_off = CFG_OFF(bootstrap_dcs.n_pg_params),
	  .doc = "Postgres parameters for all members, stored in etcd at bootstrap" },

	{ .path = "bootstrap.dcs.standby_cluster.host",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_dcs.standby_host),
	  .check = check_host_name,
	  .doc = "set: a standby cluster, whose leader replicates from this host (the other site's primary) and "
	         "never promotes (unset: a normal cluster)" },
	{ .path = "bootstrap.dcs.standby_cluster.port",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_INT64,
	  .off = CFG_OFF(bootstrap_dcs.standby_port),
	  .def = "5432",
	  .min = 1,
	  .max = 65535,
	  .doc = "Postgres port of standby_cluster.host" },
	{ .path = "bootstrap.dcs.standby_cluster.primary_slot_name",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_dcs.standby_slot),
	  .check = check_slot_name,
	  .doc = "replication slot on standby_cluster.host the standby leader streams through (unset: none)" },
	{ .path = "bootstrap.dcs.standby_cluster.restore_command",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_dcs.standby_restore_command),
	  .check = config_check_one_line,
	  .doc = "restore_command of the standby leader; applied only by nodes whose postgresql.allow_from_dcs "
	         "lists restore_command" },

	{ .path = "bootstrap.initdb.encoding",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_initdb.encoding),
	  .def = "UTF8",
	  .check = check_initdb_encoding,
	  .doc = "encoding of a cluster this node bootstraps (initdb -E)" },
	{ .path = "bootstrap.initdb.locale",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_initdb.locale),
	  .def = "C.UTF-8",
	  .check = check_initdb_locale,
	  .doc = "locale of a cluster this node bootstraps (initdb --locale); must be installed on every member" },
	{ .path = "bootstrap.initdb.data_checksums",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_initdb.data_checksums),
	  .def = "true",
	  .doc = "page checksums in a cluster this node bootstraps (initdb --data-checksums); fixed for the cluster's life" },
	{ .path = "bootstrap.initdb.options",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(bootstrap_initdb.options),
	  .count_off = CFG_OFF(bootstrap_initdb.n_options),
	  .check = check_initdb_option,
	  .doc = "more initdb options, \"name\" or \"name=value\" without the dashes (\"wal-segsize=64\"); "
	         "bootstrap.initdb may also be Patroni's list, ( { encoding = \"UTF8\"; }, \"data-checksums\" )" },

	{ .path = "bootstrap.post_bootstrap",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(post_bootstrap),
	  .check = check_executable,
	  .doc = "run as `SCRIPT URL` once a cluster this node bootstraps runs, before the bootstrap completes; a "
	         "failure undoes the bootstrap" },
	{ .path = "bootstrap.method",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_method),
	  .def = "initdb",
	  .check = check_bootstrap_method,
	  .doc = "how a cluster this node bootstraps is made: \"initdb\" (an empty cluster) or \"pgbackrest\" "
	         "(restore a backup with bootstrap.pgbackrest.command, recover, promote)" },
	{ .path = "bootstrap.pgbackrest.command",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.command),
	  .check = check_replica_command,
	  .doc = "restore command of bootstrap.method \"pgbackrest\": an absolute program and its arguments, split "
	         "into words (quotes group, no shell), run as the agent's user into the empty data directory" },
	{ .path = "bootstrap.pgbackrest.no_params",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_pgbackrest.no_params),
	  .def = "false",
	  .doc = "do not append --scope and --datadir to the command (pgbackrest itself needs this)" },
	{ .path = "bootstrap.pgbackrest.keep_existing_recovery_conf",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_pgbackrest.keep_existing_recovery_conf),
	  .def = "false",
	  .doc = "recover with the restore_command and target the restore wrote (pgbackrest --type=time "
	         "--target=...) instead of baton's; recovery still ends with a promotion" },
	{ .path = "bootstrap.pgbackrest.restore_command",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.restore_command),
	  .check = config_check_one_line,
	  .doc = "restore_command of the recovery after the restore (the backup's archive); unset: "
	         "postgresql.parameters.restore_command" },
	{ .path = "bootstrap.pgbackrest.recovery_target_time",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.recovery_target_time),
	  .check = check_target_time,
	  .doc = "recover to this time, \"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]\" (at most one recovery_target_*; "
	         "none: to the end of the archive)" },
	{ .path = "bootstrap.pgbackrest.recovery_target_lsn",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.recovery_target_lsn),
	  .check = check_target_lsn,
	  .doc = "recover to this WAL position, \"X/X\" in hex" },
	{ .path = "bootstrap.pgbackrest.recovery_target_name",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.recovery_target_name),
	  .check = check_target_name,
	  .doc = "recover to this restore point (pg_create_restore_point)" },
	{ .path = "bootstrap.pgbackrest.recovery_target_xid",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_STRING,
	  .off = CFG_OFF(bootstrap_pgbackrest.recovery_target_xid),
	  .check = check_target_xid,
	  .doc = "recover to the commit of this transaction id (digits)" },
	{ .path = "bootstrap.pgbackrest.recovery_target_inclusive",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(bootstrap_pgbackrest.recovery_target_inclusive),
	  .def = "true",
	  .doc = "stop just after the target (true) or just before it (false)" },
	{ .path = "bootstrap.pgbackrest.timeout",
	  .reload = CONFIG_RELOAD_BOOTSTRAP,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(bootstrap_pgbackrest.timeout),
	  .def = "3600",
	  .min = 0,
	  .max = NO_MAX,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds the restore may run before it is killed and the bootstrap fails" },

	{ .path = "postgresql.bin_dir",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.bin_dir),
	  .def = "/usr/lib/postgresql/15/bin",
	  .check = check_bin_dir,
	  .doc = "directory of postgres, initdb, pg_ctl, pg_basebackup, pg_rewind" },
	{ .path = "postgresql.data_dir",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.data_dir),
	  .flags = OPT_REQUIRED,
	  .check = check_abspath,
	  .doc = "the data directory (absolute)" },
	{ .path = "postgresql.listen",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.listen),
	  .flags = OPT_REQUIRED,
	  .check = check_hostport,
	  .doc = "\"host:port\" Postgres listens on" },
	{ .path = "postgresql.connect_address",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.connect_address),
	  .def_from = "postgresql.listen",
	  .check = check_hostport,
	  .doc = "\"host:port\" other members use; default listen" },
	{ .path = "postgresql.socket_dir",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.socket_dir),
	  .def = "/tmp",
	  .check = check_abspath,
	  .doc = "unix_socket_directories" },
	{ .path = "postgresql.pgpass",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.pgpass),
	  .def_from = "postgresql.data_dir",
	  .def_suffix = ".pgpass",
	  .check = check_abspath,
	  .doc = "password file the agent writes for pg_basebackup and pg_rewind" },
	{ .path = "postgresql.log_file",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.log_file),
	  .def_from = "postgresql.data_dir",
	  .def_suffix = ".log",
	  .check = check_abspath,
	  .doc = "output of Postgres and its tools" },
	{ .path = "postgresql.authentication.superuser.username",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.superuser_username),
	  .def = "postgres",
	  .check = config_check_one_line,
	  .doc = "superuser the agent connects as" },
	{ .path = "postgresql.authentication.superuser.password",
	  .reload = CONFIG_RELOAD_PASSWORDS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.superuser_password),
	  .flags = OPT_REQUIRED | OPT_SECRET,
	  .check = config_check_one_line,
	  .doc = "superuser's password" },
	{ .path = "postgresql.authentication.replication.username",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.replication_username),
	  .def = "replicator",
	  .check = config_check_one_line,
	  .doc = "user replicas stream as" },
	{ .path = "postgresql.authentication.replication.password",
	  .reload = CONFIG_RELOAD_PASSWORDS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.replication_password),
	  .flags = OPT_REQUIRED | OPT_SECRET,
	  .check = config_check_one_line,
	  .doc = "replication user's password" },
	{ .path = "postgresql.authentication.rewind.username",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.rewind_username),
	  .with = "postgresql.authentication.rewind.password",
	  .check = config_check_one_line,
	  .doc = "role pg_rewind connects to the leader as, created with the grants it needs (unset: the superuser)" },
	{ .path = "postgresql.authentication.rewind.password",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.rewind_password),
	  .with = "postgresql.authentication.rewind.username",
	  .flags = OPT_SECRET,
	  .check = config_check_one_line,
	  .doc = "rewind role's password" },
	{ .path = "postgresql.parameters",
	  .reload = CONFIG_RELOAD_POSTGRES,
	  .type = OPT_PARAMS,
	  .off = CFG_OFF(postgresql.params),
	  .count_off = CFG_OFF(postgresql.n_params),
	  .doc = "Postgres parameters of this member (override bootstrap.dcs ones)" },
	{ .path = "postgresql.allow_from_dcs",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(postgresql.allow_from_dcs),
	  .count_off = CFG_OFF(postgresql.n_allow_from_dcs),
	  .check = check_code_param,
	  .doc = "parameters that run or load code (archive_command, *_preload_libraries, ...), turn off a "
	         "permission check (lo_compat_privileges) or are custom (any name with a '.', e.g. "
	         "auto_explain.log_min_duration) this node takes from the cluster's config key; unlisted ones come "
	         "only from this file's postgresql.parameters" },
	{ .path = "postgresql.tls.certfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.tls_certfile),
	  .with = "postgresql.tls.keyfile",
	  .check = check_readable_file,
	  .doc = "PEM certificate Postgres serves (ssl = on; absolute path; its SAN must name connect_address's host)" },
	{ .path = "postgresql.tls.keyfile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.tls_keyfile),
	  .with = "postgresql.tls.certfile",
	  .check = check_readable_file,
	  .doc = "PEM private key of postgresql.tls.certfile (mode 0600, owned by the Postgres user)" },
	{ .path = "postgresql.tls.cafile",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.tls_cafile),
	  .check = check_readable_file,
	  .doc = "PEM CA bundle the other members' Postgres certificates chain to: every connection to a member "
	         "uses sslmode=verify-full and channel_binding=require (needs certfile and keyfile)" },
	{ .path = "postgresql.standby_cluster_remotes",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_HOSTLIST,
	  .off = CFG_OFF(postgresql.standby_remotes),
	  .count_off = CFG_OFF(postgresql.n_standby_remotes),
	  .check = check_hostport,
	  .doc = "\"host:port\" addresses this node may follow as standby_cluster (the other site's primary, proxy or "
	         "VIP) without postgresql.tls: they receive the replication and superuser passwords" },
	{ .path = "postgresql.pg_hba",
	  .reload = CONFIG_RELOAD_POSTGRES,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(postgresql.pg_hba),
	  .count_off = CFG_OFF(postgresql.n_pg_hba),
	  .check = config_check_one_line,
	  .doc = "pg_hba.conf lines" },
	{ .path = "postgresql.pg_ident",
	  .reload = CONFIG_RELOAD_POSTGRES,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(postgresql.pg_ident),
	  .count_off = CFG_OFF(postgresql.n_pg_ident),
	  .check = config_check_one_line,
	  .doc = "pg_ident.conf lines (\"MAPNAME SYSTEM-USER PG-USER\"); unset: the file is left alone" },
	{ .path = "postgresql.pg_ctl_timeout",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(postgresql.pg_ctl_timeout),
	  .def = "30",
	  .min = 1,
	  .max = 600,
	  .doc = "seconds a stop of Postgres may take before it becomes an immediate shutdown (1 to 600)" },
	{ .path = "postgresql.use_pg_rewind",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.use_pg_rewind),
	  .def = "true",
	  .doc = "rewind a diverged former primary instead of recloning it" },
	{ .path = "postgresql.remove_data_directory_on_rewind_failure",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.remove_data_directory_on_rewind_failure),
	  .def = "false",
	  .doc = "reclone from the primary if pg_rewind fails" },
	{ .path = "postgresql.create_replica_methods",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(postgresql.create_replica_methods),
	  .count_off = CFG_OFF(postgresql.n_create_replica_methods),
	  .check = check_replica_method,
	  .doc = "how a new replica is created, tried in order: \"pgbackrest\", \"basebackup\" (unset: basebackup)" },
	{ .path = "postgresql.pgbackrest.command",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.pgbackrest.command),
	  .check = check_replica_command,
	  .doc = "restore command of the pgbackrest method: an absolute program and its arguments, split into words "
	         "(quotes group, no shell), run as the agent's user" },
	{ .path = "postgresql.pgbackrest.keep_data",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.pgbackrest.keep_data),
	  .def = "false",
	  .doc = "a reinit runs the command over the old data directory instead of removing it first (--delta)" },
	{ .path = "postgresql.pgbackrest.no_params",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.pgbackrest.no_params),
	  .def = "false",
	  .doc = "do not append --scope, --datadir, --role and --connstring to the command" },
	{ .path = "postgresql.pgbackrest.no_leader",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.pgbackrest.no_leader),
	  .def = "false",
	  .doc = "the method may run while no member leads (the replica then waits, restoring from the archive)" },
	{ .path = "postgresql.pgbackrest.timeout",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(postgresql.pgbackrest.timeout),
	  .def = "3600",
	  .min = 0,
	  .max = NO_MAX,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds the restore may run before it is killed and the next method tried" },
	{ .path = "postgresql.basebackup.max-rate",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.basebackup.max_rate),
	  .check = check_max_rate,
	  .doc = "pg_basebackup --max-rate: kB/s, or with a k or M suffix (\"100M\"); unset: no limit" },
	{ .path = "postgresql.basebackup.checkpoint",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.basebackup.checkpoint),
	  .def = "fast",
	  .check = check_checkpoint,
	  .doc = "pg_basebackup --checkpoint: \"fast\" or \"spread\"" },
	{ .path = "postgresql.basebackup.timeout",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(postgresql.basebackup.timeout),
	  .def = "0",
	  .min = 0,
	  .max = NO_MAX,
	  .doc = "seconds pg_basebackup may run before it is killed and the next method tried (0: no bound)" },
	{ .path = "postgresql.remove_data_directory_on_diverged_timelines",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(postgresql.remove_data_directory_on_diverged_timelines),
	  .def = "false",
	  .doc = "with use_pg_rewind off, reclone a replica whose timeline diverged from the leader's" },
	{ .path = "postgresql.callbacks.on_start",
	  .reload = CONFIG_RELOAD_CALLBACKS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_start),
	  .check = check_executable,
	  .doc = "run as `SCRIPT on_start ROLE SCOPE` after Postgres started (absolute path)" },
	{ .path = "postgresql.callbacks.on_stop",
	  .reload = CONFIG_RELOAD_CALLBACKS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_stop),
	  .check = check_executable,
	  .doc = "run as `SCRIPT on_stop ROLE SCOPE` after Postgres stopped" },
	{ .path = "postgresql.callbacks.on_role_change",
	  .reload = CONFIG_RELOAD_CALLBACKS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_role_change),
	  .check = check_executable,
	  .doc = "run as `SCRIPT on_role_change ROLE SCOPE` on promotion or demotion (VIP, labels)" },
	{ .path = "postgresql.callbacks.on_reload",
	  .reload = CONFIG_RELOAD_CALLBACKS,
	  .type = OPT_STRING,
	  .off = CFG_OFF(postgresql.callbacks.on_reload),
	  .check = check_executable,
	  .doc = "run as `SCRIPT on_reload ROLE SCOPE` after a configuration reload" },
	{ .path = "postgresql.callbacks.timeout",
	  .reload = CONFIG_RELOAD_CALLBACKS,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(postgresql.callbacks.timeout),
	  .def = "30",
	  .min = 0,
	  .max = NO_MAX,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds a callback may run before it is killed" },

	{ .path = "tags",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_TAGS,
	  .off = CFG_OFF(tags.custom),
	  .count_off = CFG_OFF(tags.n_custom),
	  .doc = "custom tags: any other key (string, number or boolean), published and matched by ?tag_KEY=VALUE" },
	{ .path = "tags.nofailover",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(tags.nofailover),
	  .def = "false",
	  .doc = "never promote this member" },
	{ .path = "tags.nosync",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(tags.nosync),
	  .def = "false",
	  .doc = "never choose this member as a synchronous standby" },
	{ .path = "tags.clonefrom",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(tags.clonefrom),
	  .def = "false",
	  .doc = "new replicas take their base backup from this running replica rather than from the leader" },
	{ .path = "tags.failover_priority",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_INT64,
	  .off = CFG_OFF(tags.failover_priority),
	  .def = "1",
	  .min = 0,
	  .max = 1000000,
	  .doc = "0: never promote; among equally advanced candidates the highest wins" },
	{ .path = "tags.noloadbalance",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(tags.noloadbalance),
	  .def = "false",
	  .doc = "/replica, /read-only and /async answer 503 here (no read traffic); it still replicates and may fail over" },
	{ .path = "tags.nostream",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_BOOL,
	  .off = CFG_OFF(tags.nostream),
	  .def = "false",
	  .doc = "never stream (no primary_conninfo, no slot): replay only what restore_command fetches" },
	{ .path = "tags.replicatefrom",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRING,
	  .off = CFG_OFF(tags.replicatefrom),
	  .check = check_member_name,
	  .doc = "stream from this member (cascading) while it is a running replica, else from the leader" },

	{ .path = "watchdog.mode",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(watchdog.mode),
	  .def = "automatic",
	  .check = check_watchdog_mode,
	  .doc = "\"off\", \"automatic\" (arm the device while primary if it works) or \"required\" (never primary without it)" },
	{ .path = "watchdog.device",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_STRING,
	  .off = CFG_OFF(watchdog.device),
	  .def = "/dev/watchdog",
	  .check = check_abspath,
	  .doc = "the Linux watchdog device (absolute path)" },
	{ .path = "watchdog.safety_margin",
	  .reload = CONFIG_RELOAD_RESTART,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(watchdog.safety_margin),
	  .def = "0.5",
	  .min = 0,
	  .max = NO_MAX,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds between a watchdog reset and the lease's expiry; timeout = floor(ttl - margin - 2 * keepalive interval)" },

	{ .path = "poolers",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRLIST,
	  .off = CFG_OFF(poolers),
	  .count_off = CFG_OFF(n_poolers),
	  .flags = OPT_SECRET,
	  .check = check_pooler_conninfo,
	  .doc = "PgBouncer admin consoles (libpq connection strings with host and port) paused while a planned switchover stops the primary" },
	{ .path = "pooler_pause_timeout",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(pooler_pause_timeout),
	  .def = "5",
	  .min = 0,
	  .max = 300,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds PAUSE may wait for server connections; past it the pooler is resumed and the switchover goes on without its pause" },
	{ .path = "pooler_resume_timeout",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_SECONDS,
	  .off = CFG_OFF(pooler_resume_timeout),
	  .def = "10",
	  .min = 0,
	  .max = 300,
	  .flags = OPT_MIN_EXCL,
	  .doc = "seconds a paused pooler waits for the new primary (and pooler_target) to take writes before it is resumed anyway" },
	{ .path = "pooler_target",
	  .reload = CONFIG_RELOAD_LIVE,
	  .type = OPT_STRING,
	  .off = CFG_OFF(pooler_target),
	  .flags = OPT_SECRET,
	  .check = check_pooler_target,
	  .doc = "libpq connection string of the address the poolers send their server connections to (HAProxy, VIP): resume once it answers read-write" },

	{ .path = "log.level",
	  .reload = CONFIG_RELOAD_LOG,
	  .type = OPT_STRING,
	  .off = CFG_OFF(log_level),
	  .def = "info",
	  .check = check_log_level,
	  .doc = "debug, info, warning or error" },
};
/* clang-format on */

const size_t config_n_options = sizeof(config_options) / sizeof(config_options[0]);

_Static_assert(sizeof(config_options) / sizeof(config_options[0]) <= CONFIG_RELOAD_MAX,
               "struct config_reload_report holds one change per option");

/* ---- helpers shared by the module (config_internal.h) ---- */

void config_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const struct opt *config_find_option(const char *path)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strcmp(config_options[i].path, path) == 0)
			return &config_options[i];
	return NULL;
}

void config_format_number(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
}

bool config_option_at(size_t i, const char **path, enum config_reload *reload)
{
	if (i >= N_OPTIONS)
		return false;
	if (path != NULL)
		*path = config_options[i].path;
	if (reload != NULL)
		*reload = config_options[i].reload;
	return true;
}

/* ---- validators ---- */

static bool check_member_name(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (n < 1 || n > 63) {
		config_set_err(why, len, "must be 1 to 63 characters of [A-Za-z0-9_.-]");
		return false;
	}
	for (const char *p = v; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-')) {
			config_set_err(why, len, "may only contain [A-Za-z0-9_.-]");
			return false;
		}
	}
	return true;
}

static bool check_namespace(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (v[0] != '/') {
		config_set_err(why, len, "must start with '/'");
		return false;
	}
	if (n < 2 || v[n - 1] == '/') {
		config_set_err(why, len, "must not end with '/'");
		return false;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			config_set_err(why, len, "must not contain white space");
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
			config_set_err(why, len,
			               "expected \"host:port\", an IPv6 host in brackets "
			               "(\"[::1]:5432\")");
		else
			config_set_err(why, len, "expected \"host:port\" with a port from 1 to 65535");
		return false;
	}
	free(host);
	return true;
}

static bool check_protocol(const char *v, char *why, size_t len)
{
	if (strcmp(v, "http") == 0 || strcmp(v, "https") == 0)
		return true;
	config_set_err(why, len, "must be \"http\" or \"https\"");
	return false;
}

static bool check_verify_client(const char *v, char *why, size_t len)
{
	if (strcmp(v, "none") == 0 || strcmp(v, "optional") == 0 || strcmp(v, "required") == 0)
		return true;
	config_set_err(why, len, "must be \"none\", \"optional\" or \"required\"");
	return false;
}

/* A DNS name or an IP address as it appears in a Host header (without the
 * port; IPv6 without brackets). */
static bool check_host_name(const char *v, char *why, size_t len)
{
	const char *p;

	if (!*v || strlen(v) > 253) {
		config_set_err(why, len, "must be a host name or address of 1 to 253 characters");
		return false;
	}
	/* A leading '-' is no host name, and a program given it as an
	 * argument (pg_basebackup -h, ssh) would read it as an option. */
	if (v[0] == '-') {
		config_set_err(why, len, "must not start with '-'");
		return false;
	}
	for (p = v; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-' || *p == ':' || *p == '_')) {
			config_set_err(why, len, "must hold only letters, digits, '.', '-', '_' and ':'");
			return false;
		}
	}
	return true;
}

static bool check_abspath(const char *v, char *why, size_t len)
{
	if (v[0] == '/')
		return true;
	config_set_err(why, len, "must be an absolute path");
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
		config_set_err(why, len, "path too long");
		return false;
	}
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
		config_set_err(why, len, "%s is not an executable file", path);
		return false;
	}
	return true;
}

static bool check_log_level(const char *v, char *why, size_t len)
{
	if (log_level_parse(v, NULL))
		return true;
	config_set_err(why, len, "must be debug, info, warning or error");
	return false;
}

/* Letters, digits and "._-@", not starting with "-": what encoding and
 * locale names are made of, and nothing initdb could take as an option. */
static bool initdb_name_chars(const char *v)
{
	if (v[0] == '\0' || v[0] == '-')
		return false;
	for (const char *c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '@'))
			return false;
	return true;
}

static bool check_initdb_encoding(const char *v, char *why, size_t len)
{
	if (!initdb_name_chars(v) || strlen(v) > 32) {
		config_set_err(why, len, "expected an encoding name such as \"UTF8\" (letters, digits, \"_-\")");
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
		config_set_err(why, len, "expected a locale name such as \"C.UTF-8\" or \"en_US.UTF-8\"");
		return false;
	}
	l = newlocale(LC_ALL_MASK, v, (locale_t)0);
	if (l == (locale_t)0) {
		config_set_err(why, len, "locale not installed on this host (`locale -a` lists those that are)");
		return false;
	}
	freelocale(l);
	return true;
}

/* One more initdb option: a long option name ([a-z0-9-], not starting with
 * '-'), optionally "=value" on one line, and none baton passes itself. */
static bool check_initdb_option(const char *v, char *why, size_t len)
{
	size_t n = strcspn(v, "=");

	if (n == 1 && v[0] != '-')
		return !pg_initdb_option_reserved(v, why, len); /* "U": refused with its reason */
	if (n == 0 || n > 64 || v[0] == '-' || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") < n) {
		config_set_err(why, len, "expected an initdb long option without dashes, \"name\" or \"name=value\"");
		return false;
	}
	if (strlen(v) > 250) {
		config_set_err(why, len, "longer than 250 characters");
		return false;
	}
	if (!config_check_one_line(v, why, len))
		return false;
	if (pg_initdb_option_reserved(v, why, len))
		return false;
	return true;
}

/* An entry of restapi.allowlist: a numeric address or network. */
static bool check_allow_net(const char *v, char *why, size_t len)
{
	struct parse_net n;

	if (parse_net(v, &n))
		return true;
	config_set_err(why, len,
	               "expected an IP address or network, \"10.0.0.5\", \"10.0.0.0/24\" or \"fd00::/8\" (host "
	               "names are not resolved; bits past the prefix must be 0)");
	return false;
}

static bool check_watchdog_mode(const char *v, char *why, size_t len)
{
	enum watchdog_mode m;

	if (watchdog_mode_parse(v, &m))
		return true;
	config_set_err(why, len, "must be \"off\", \"automatic\" or \"required\"");
	return false;
}

/* A replication slot name as Postgres accepts it. */
static bool check_slot_name(const char *v, char *why, size_t len)
{
	size_t n = strlen(v);

	if (n == 0 || n > 63 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		config_set_err(why, len, "a slot name is 1 to 63 of a-z, 0-9 and _");
		return false;
	}
	return true;
}

bool config_check_host(const char *v, char *why, size_t len)
{
	return check_host_name(v, why, len);
}

/* A value that becomes one line of a file (postgresql.conf, pg_hba.conf,
 * the pgpass file): a line break would start a line of the writer's
 * choosing, other control characters confuse the files and the logs. A tab
 * is fine. */
bool config_check_one_line(const char *v, char *why, size_t len)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			config_set_err(why, len,
			               "must be one line without control characters (byte 0x%02x at offset %zu)", *p,
			               (size_t)(p - (const unsigned char *)v));
			return false;
		}
	return true;
}

/* An entry of postgresql.allow_from_dcs: one of the parameters that need
 * it (any other is always taken from etcd, so listing it is a typo). A
 * custom one must be a name Postgres takes: dot-separated parts of letters,
 * digits, '_' and '$', none empty ("plperl.", ".x" would never match). */
static bool check_code_param(const char *v, char *why, size_t len)
{
	if (pg_conf_param_is_custom(v)) {
		bool part_empty = true;

		for (const char *p = v; *p != '\0'; p++) {
			if (*p == '.') {
				if (part_empty)
					break;
				part_empty = true;
			} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			           *p == '_' || *p == '$') {
				part_empty = false;
			} else {
				config_set_err(why, len, "not a parameter name (byte 0x%02x at offset %zu)",
				               (unsigned char)*p, (size_t)(p - v));
				return false;
			}
		}
		if (!part_empty)
			return true;
		config_set_err(why, len, "not a custom parameter name (an empty part around a '.', e.g. \"plperl.\")");
		return false;
	}
	if (pg_conf_param_runs_code(v))
		return true;
	config_set_err(why, len,
	               "not a parameter taken only from this file (archive_command, *_preload_libraries, "
	               "lo_compat_privileges, a custom one such as auto_explain.log_min_duration, ...: "
	               "see baton.conf(5))");
	return false;
}

/* postgresql.create_replica_methods: the methods baton knows. */
/* poolers[i]: a connection string libpq parses, naming the console's host
 * and port (PgBouncer listens on 6432, not libpq's default 5432), and no
 * database but the console's own ("pgbouncer", which the agent adds). */
static bool check_pooler_conninfo(const char *v, char *why, size_t len)
{
	static const char *const needed[] = { "host", "port" };
	char val[256];
	struct pg_err err;
	bool found;

	if (strlen(v) >= POOLER_CONNINFO_MAX) {
		config_set_err(why, len, "longer than %d bytes", POOLER_CONNINFO_MAX - 1);
		return false;
	}
	if (strstr(v, "://") != NULL) {
		/* The agent appends dbname=pgbouncer, which a URI cannot take. */
		config_set_err(why, len, "use libpq's key=value form (host=... port=...), not a URI");
		return false;
	}
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (!pg_conninfo_value(v, needed[i], val, sizeof(val), &found, &err)) {
			config_set_err(why, len, "%s", err.msg);
			return false;
		}
		if (!found || !val[0]) {
			config_set_err(why, len, "the admin console's connection string must set %s", needed[i]);
			return false;
		}
	}
	if (!pg_conninfo_value(v, "dbname", val, sizeof(val), &found, &err)) {
		config_set_err(why, len, "%s", err.msg);
		return false;
	}
	if (found && strcmp(val, "pgbouncer") != 0) {
		config_set_err(why, len,
		               "dbname must be \"pgbouncer\" (the admin console), or left out (got \"%.64s\")", val);
		return false;
	}
	return true;
}

/* pooler_target: a connection string libpq parses. */
static bool check_pooler_target(const char *v, char *why, size_t len)
{
	char val[256];
	struct pg_err err;
	bool found;

	if (!pg_conninfo_value(v, "host", val, sizeof(val), &found, &err)) {
		config_set_err(why, len, "%s", err.msg);
		return false;
	}
	return true;
}

static bool check_replica_method(const char *v, char *why, size_t len)
{
	if (strcmp(v, "pgbackrest") == 0 || strcmp(v, "basebackup") == 0)
		return true;
	config_set_err(why, len, "unknown replica creation method (known: \"pgbackrest\", \"basebackup\")");
	return false;
}

/* A restore command: words as pg_replica.h splits them, the first an
 * executable absolute path. */
static bool check_replica_command(const char *v, char *why, size_t len)
{
	struct pg_words w;
	struct pg_err err;
	bool ok;

	if (!config_check_one_line(v, why, len))
		return false;
	if (!pg_words_split(v, &w, &err)) {
		config_set_err(why, len, "%s", err.msg);
		return false;
	}
	ok = check_executable(w.argv[0], why, len);
	pg_words_free(&w);
	return ok;
}

/* bootstrap.method: the methods baton knows. */
static bool check_bootstrap_method(const char *v, char *why, size_t len)
{
	if (strcmp(v, "initdb") == 0 || strcmp(v, "pgbackrest") == 0)
		return true;
	config_set_err(why, len, "unknown bootstrap method (known: \"initdb\", \"pgbackrest\")");
	return false;
}

/* Digits: n of them exactly (0: one or more); *p moves past them. */
static bool digits(const char **p, int n)
{
	int k = 0;

	while ((**p >= '0' && **p <= '9') && (n == 0 || k < n))
		(*p)++, k++;
	return n == 0 ? k > 0 : k == n;
}

/* recovery_target_time as Postgres reads a timestamptz, in the one
 * unambiguous form: "YYYY-MM-DD HH:MM:SS", optional fraction, optional
 * zone (+HH, +HH:MM, -HH..., Z or a name such as UTC). */
static bool check_target_time(const char *v, char *why, size_t len)
{
	const char *p = v;

	if (!(digits(&p, 4) && *p++ == '-' && digits(&p, 2) && *p++ == '-' && digits(&p, 2) &&
	      (*p == ' ' || *p == 'T') && (p++, digits(&p, 2)) && *p++ == ':' && digits(&p, 2) && *p++ == ':' &&
	      digits(&p, 2)))
		goto bad;
	if (*p == '.') {
		p++;
		if (!digits(&p, 0))
			goto bad;
	}
	if (*p == ' ')
		p++;
	if (*p == '+' || *p == '-') {
		p++;
		if (!digits(&p, 2))
			goto bad;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2))
				goto bad;
		}
	} else {
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '/' || *p == '_')
			p++;
	}
	if (*p == '\0')
		return true;
bad:
	config_set_err(why, len, "expected \"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]\" (a time zone is wise)");
	return false;
}

static bool check_target_lsn(const char *v, char *why, size_t len)
{
	uint64_t lsn;

	if (pg_lsn_parse(v, &lsn))
		return true;
	config_set_err(why, len, "expected a WAL position \"X/X\" in hex (\"0/3000148\")");
	return false;
}

static bool check_target_name(const char *v, char *why, size_t len)
{
	if (!config_check_one_line(v, why, len))
		return false;
	if (v[0] == '\0' || strlen(v) > 63) {
		config_set_err(why, len, "a restore point name has 1 to 63 characters");
		return false;
	}
	return true;
}

static bool check_target_xid(const char *v, char *why, size_t len)
{
	const char *p = v;

	if (digits(&p, 0) && *p == '\0' && strlen(v) <= 20)
		return true;
	config_set_err(why, len, "expected a transaction id (digits)");
	return false;
}

static bool check_max_rate(const char *v, char *why, size_t len)
{
	return pg_basebackup_rate_ok(v, why, len);
}

static bool check_checkpoint(const char *v, char *why, size_t len)
{
	if (strcmp(v, "fast") == 0 || strcmp(v, "spread") == 0)
		return true;
	config_set_err(why, len, "must be \"fast\" or \"spread\"");
	return false;
}

/* TLS files: read by the REST server at start, so a typo must fail the load. */
static bool check_readable_file(const char *v, char *why, size_t len)
{
	struct stat st;

	if (!check_abspath(v, why, len))
		return false;
	if (stat(v, &st) != 0 || access(v, R_OK) != 0) {
		config_set_err(why, len, "cannot read %s: %s", v, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		config_set_err(why, len, "%s is not a regular file", v);
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
		config_set_err(why, len, "cannot run %s: %s", v, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		config_set_err(why, len, "%s is not a regular file", v);
		return false;
	}
	if (access(v, X_OK) != 0) {
		config_set_err(why, len, "%s is not executable: %s", v, strerror(errno));
		return false;
	}
	return true;
}

/* ---- public helpers ---- */

void config_tags_json(const struct baton_config *cfg, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < cfg->tags.n_custom; i++) {
		int k = snprintf(buf + used, len - used, "%s\"%s\":%s", i ? "," : "{", cfg->tags.custom[i].name,
		                 cfg->tags.custom[i].value);

		if (k < 0 || (size_t)k >= len - used - 1) {
			buf[0] = '\0'; /* never a cut object */
			return;
		}
		used += (size_t)k;
	}
	if (used > 0)
		snprintf(buf + used, len - used, "}");
}

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
		config_set_err(err, errlen, "no settings");
		return false;
	}
	/* !(x >= min) also catches NaN. */
	if (!(d->ttl >= CONFIG_TTL_MIN)) {
		config_format_number(d->ttl, a, sizeof(a));
		config_set_err(err, errlen, "ttl = %s < 2 (etcd's minimum lease)", a);
		return false;
	}
	if (!(d->ttl <= CONFIG_TTL_MAX)) {
		config_format_number(d->ttl, a, sizeof(a));
		config_set_err(err, errlen, "ttl = %s > 86400 (a day: a longer lease means no failover)", a);
		return false;
	}
	if (!(d->loop_wait >= CONFIG_LOOP_WAIT_MIN) || !(d->loop_wait <= CONFIG_WAIT_MAX)) {
		config_format_number(d->loop_wait, a, sizeof(a));
		config_set_err(err, errlen, "loop_wait = %s outside [0.1, 3600] (it paces the lease keepalives)", a);
		return false;
	}
	if (!(d->retry_timeout >= CONFIG_RETRY_TIMEOUT_MIN) || !(d->retry_timeout <= CONFIG_WAIT_MAX)) {
		config_format_number(d->retry_timeout, a, sizeof(a));
		config_set_err(err, errlen,
		               "retry_timeout = %s outside [0.5, 3600] (shorter than one etcd request may take)", a);
		return false;
	}
	if (d->maximum_lag_on_failover < 0) {
		config_set_err(err, errlen, "maximum_lag_on_failover = %lld must be >= 0",
		               (long long)d->maximum_lag_on_failover);
		return false;
	}
	/* A small tolerance: 0.1 + 2 * 0.95 must not fail a ttl of 2. */
	if (d->loop_wait + 2 * d->retry_timeout > d->ttl + 1e-9) {
		config_format_number(d->loop_wait + 2 * d->retry_timeout, a, sizeof(a));
		config_format_number(d->ttl, b, sizeof(b));
		config_set_err(err, errlen,
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
