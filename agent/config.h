/*
 * config.h - the node's libconfig file.
 *
 * One declarative table in config.c lists every option (path, type, default,
 * range, what SIGHUP does with it, doc line); it drives parsing, validation,
 * `show-config` and the reload (config_internal.h names the files). Key
 * names follow Patroni's where they exist. Example:
 *
 *   scope = "main"; name = "node1"; namespace = "/baton";
 *   etcd = { hosts = ["127.0.0.1:2379"]; protocol = "http"; };
 *   restapi = { listen = "127.0.0.1:8008"; connect_address = "127.0.0.1:8008"; };
 *   bootstrap = { dcs = { ttl = 5; loop_wait = 1; retry_timeout = 2;
 *                         maximum_lag_on_failover = 1048576;
 *                         postgresql = { parameters = { max_connections = 100; }; }; };
 *                 initdb = { encoding = "UTF8"; locale = "C.UTF-8"; data_checksums = true; }; };
 *   postgresql = { bin_dir = "/usr/lib/postgresql/15/bin"; data_dir = "/var/lib/baton/node1";
 *                  listen = "127.0.0.1:5432"; connect_address = "127.0.0.1:5432";
 *                  authentication = { superuser = { username = "postgres"; password = "..."; };
 *                                     replication = { username = "replicator"; password = "..."; }; };
 *                  parameters = { shared_buffers = "128MB"; };
 *                  pg_hba = [ "host replication replicator 127.0.0.1/32 scram-sha-256" ]; };
 *   tags = { nofailover = false; };
 *   log = { level = "info"; };
 *
 * Errors name the file, the line and the key ("node1.conf:12: postgresql.listen:
 * expected "host:port", got "localhost""), and the loader returns false:
 * callers exit with status 2.
 */
#ifndef BATON_CONFIG_H
#define BATON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A Postgres parameter: name = value (value always rendered as a string:
 * integers, floats and booleans from the file are converted, e.g. true -> "on"). */
struct config_param {
	char *name;
	char *value;
};

/*
 * The bounds of the timing settings, the same in the file (bootstrap.dcs),
 * the config key, PATCH /config and edit-config:
 *   ttl            [2, 86400]: etcd grants no shorter lease (shorter requests
 *                  are silently raised to its minimum) and caps it at a day
 *                  (its MaxLeaseTTL is far higher, but a lease of more than a
 *                  day means nobody would ever take over);
 *   loop_wait      [0.1, 3600]: it paces the HA loop and the lease
 *                  keepalives (every min(loop_wait, ttl / 4)); below 0.1 s the
 *                  agents hammer etcd with requests that add no safety;
 *   retry_timeout  [0.5, 3600]: how long etcd and Postgres calls may be
 *                  retried before the leader gives up. One etcd request may
 *                  itself take 0.5 s (the agent's request timeout is never
 *                  shorter, see loop.c), so a shorter window does not even
 *                  cover one keepalive: renewals would time out in
 *                  milliseconds. 0.5 rather than 1 keeps etcd's minimum
 *                  lease usable: 0.5 + 2 * 0.75 <= 2.
 * plus the timing rule loop_wait + 2 * retry_timeout <= ttl.
 */
#define CONFIG_TTL_MIN 2.0
#define CONFIG_TTL_MAX 86400.0
#define CONFIG_LOOP_WAIT_MIN 0.1
#define CONFIG_RETRY_TIMEOUT_MIN 0.5
#define CONFIG_WAIT_MAX 3600.0

/* The custom tags of the file as one JSON object, at most (bytes, without
 * the NUL): what a member key carries of them (HA_TAGS_JSON_MAX). */
#define CONFIG_TAGS_JSON_MAX 511

/* The cluster-wide (dynamic) settings: bootstrap.dcs in the file, the
 * `config` key in etcd once the cluster exists. */
struct dcs_settings {
	double ttl;           /* seconds, default 5, [2, 86400] */
	double loop_wait;     /* seconds, default 1, [0.1, 3600] */
	double retry_timeout; /* seconds, default 2, [0.5, 3600] */
	bool pause;           /* maintenance mode: no failover, no Postgres actions (config key only) */
	bool failsafe_mode;   /* etcd down: the primary stays while every member confirms it (config key only) */
	int64_t maximum_lag_on_failover; /* bytes, default 1048576, >= 0; in the file, values
	                                     over 2^31 need the L suffix (libconfig) */
	bool synchronous_mode;           /* commits wait for a standby; only it may take over */
	bool synchronous_mode_strict;    /* no synchronous standby left: writes block (never async) */
	int64_t synchronous_node_count;  /* standbys every commit waits for, 1..8, default 1 */
	bool synchronous_quorum;         /* ANY n of every eligible standby (quorum commit) instead of FIRST n */
	bool check_timeline;             /* a replica on another timeline than the last leader's is no candidate */
	int64_t maximum_lag_on_syncnode; /* bytes a synchronous standby may lag before it is replaced; <= 0: off (-1) */
	char **slots;                    /* permanent physical replication slots, kept on the primary */
	size_t n_slots;
	bool use_slots; /* postgresql.use_slots, default true: false = no slots made, members' dropped */
	/* Permanent logical slots ("slots" in Patroni's object form, type
	 * logical), created on the primary; the config key only. */
	struct dcs_logical_slot {
		char *name, *database, *plugin;
	} * logical_slots;
	size_t n_logical_slots;
	/* ignore_slots: slots matching one (NULL fields match anything) are
	 * never created or dropped by baton; the config key only. */
	struct dcs_slot_matcher {
		char *name, *type, *database, *plugin;
	} * ignore_slots;
	size_t n_ignore_slots;
	struct config_param *pg_params; /* postgresql.parameters shared by all nodes */
	size_t n_pg_params;
	/* standby_cluster: this whole cluster follows another cluster's primary
	 * (standby_host NULL: it is not a standby cluster). Its leader is a
	 * standby leader: a replica of standby_host:standby_port, never promoted. */
	char *standby_host;            /* host name or address of the other site's primary (or standby leader) */
	int64_t standby_port;          /* its Postgres port, 1..65535, default 5432 */
	char *standby_slot;            /* primary_slot_name on it (NULL: none) */
	char *standby_restore_command; /* restore_command of the standby leader (NULL: none); runs a command, so
	                                * a node applies it only when its postgresql.allow_from_dcs lists
	                                * restore_command (DESIGN.md rule 9) */
};

struct baton_config {
	char *path;       /* the file it came from */
	char *scope;      /* required; [A-Za-z0-9_.-]{1,63} (it is part of etcd keys) */
	char *name;       /* required; [A-Za-z0-9_.-]{1,63} */
	char *namespace_; /* default "/baton"; starts with '/', no trailing '/' */

	struct {
		char **hosts; /* "host:port", at least one */
		size_t n_hosts;
		char *protocol;            /* "http" (default) or "https" */
		char *cacert, *cert, *key; /* optional (NULL) */
		char *username, *password; /* optional (NULL) */
	} etcd;

	struct {
		char *listen;          /* "host:port", required */
		char *connect_address; /* "host:port", default = listen */
		char *auth_username; /* restapi.authentication.username: basic auth for write endpoints (NULL = none) */
		char *auth_password; /* restapi.authentication.password (required when username is set) */
		char *certfile;      /* restapi.certfile: PEM certificate, enables HTTPS (NULL = plain HTTP) */
		char *keyfile;       /* restapi.keyfile: PEM private key (required with certfile) */
		char *cafile; /* restapi.cafile: CA bundle for client certs and for verifying peers (NULL = system CAs) */
		char *verify_client;   /* restapi.verify_client: "none", "optional" or "required" */
		char *client_certfile; /* restapi.client_certfile: client certificate presented to peers (NULL = none) */
		char *client_keyfile;  /* restapi.client_keyfile: its private key */
		char **allowed_hosts;  /* restapi.allowed_hosts: extra names accepted in the Host header */
		size_t n_allowed_hosts;
		bool allow_unauthenticated_writes; /* restapi.allow_unauthenticated_writes: INSECURE open writes */
		char **allowlist; /* restapi.allowlist: addresses/networks writes may come from (none: any) */
		size_t n_allowlist;
	} restapi;

	struct dcs_settings bootstrap_dcs;

	struct {
		char *encoding;      /* bootstrap.initdb.encoding: initdb -E, default "UTF8" */
		char *locale;        /* bootstrap.initdb.locale: initdb --locale, default "C.UTF-8" */
		bool data_checksums; /* bootstrap.initdb.data_checksums: --data-checksums, default true */
		char **options;      /* bootstrap.initdb.options: more initdb options, "name" or "name=value" */
		size_t n_options;
	} bootstrap_initdb;
	char *post_bootstrap; /* bootstrap.post_bootstrap: script run once the new cluster runs (NULL = none) */
	/* bootstrap.method: "initdb" (default) or "pgbackrest" (restore a backup) */
	char *bootstrap_method;
	struct {
		/* bootstrap.pgbackrest: the restore that makes a new cluster from a
		 * backup, and the recovery that follows it (node file only). */
		char *command;                    /* absolute program and its arguments, no shell */
		bool no_params;                   /* do not append --scope and --datadir */
		bool keep_existing_recovery_conf; /* keep the restore's recovery settings */
		char *restore_command;            /* NULL: postgresql.parameters' */
		/* at most one target; none: recover to the end of the archive */
		char *recovery_target_time, *recovery_target_lsn, *recovery_target_name, *recovery_target_xid;
		bool recovery_target_inclusive; /* default true */
		double timeout;                 /* seconds the restore may run, default 3600 */
	} bootstrap_pgbackrest;

	struct {
		char *bin_dir;     /* default "/usr/lib/postgresql/15/bin" */
		char *data_dir;    /* required, absolute */
		char *listen;      /* "host:port", required */
		char *listen_host; /* parsed from listen */
		int listen_port;
		char *connect_address; /* "host:port", default = listen */
		char *connect_host;
		int connect_port;
		char *socket_dir; /* default "/tmp" */
		char *pgpass;     /* default "<data_dir>.pgpass" */
		char *log_file;   /* default "<data_dir>.log": Postgres and its tools' output */
		char *superuser_username, *superuser_password;     /* default "postgres", required password */
		char *replication_username, *replication_password; /* default "replicator", required password */
		char *rewind_username,
		        *rewind_password;    /* authentication.rewind: pg_rewind's source role (NULL: superuser) */
		struct config_param *params; /* postgresql.parameters (local, override dcs ones) */
		size_t n_params;
		char **allow_from_dcs; /* postgresql.allow_from_dcs: code-running parameters
		                          (pg_conf_param_runs_code) this node takes from etcd */
		size_t n_allow_from_dcs;
		/* postgresql.tls.*: Postgres serves TLS with certfile/keyfile, and
		 * every connection to another member verifies it against cafile
		 * (sslmode=verify-full, channel_binding=require). All three or none. */
		char *tls_certfile, *tls_keyfile, *tls_cafile;
		/* postgresql.standby_cluster_remotes: "host:port" addresses this
		 * node may follow as a standby_cluster remote without tls_cafile
		 * (the etcd config key alone proves nothing, see loop_pgfiles.c). */
		char **standby_remotes;
		size_t n_standby_remotes;
		char **pg_hba; /* lines */
		size_t n_pg_hba;
		char **pg_ident; /* postgresql.pg_ident: pg_ident.conf lines (none: the file is left alone) */
		size_t n_pg_ident;
		double pg_ctl_timeout; /* postgresql.pg_ctl_timeout: seconds a fast stop may take, default 30 */
		bool use_pg_rewind;    /* default true */
		bool remove_data_directory_on_rewind_failure;     /* default false */
		bool remove_data_directory_on_diverged_timelines; /* default false: with use_pg_rewind off, reclone */
		struct config_callbacks {                         /* tagged so that agent/callbacks.h can take it */
			/* postgresql.callbacks: executables called as
			 * `script ACTION ROLE SCOPE` (NULL = none), absolute paths. */
			char *on_start, *on_stop, *on_role_change, *on_reload;
			double timeout; /* postgresql.callbacks.timeout: seconds before a callback is killed, default 30 */
		} callbacks;

		/* postgresql.create_replica_methods: "pgbackrest", "basebackup",
		 * tried in this order (none: basebackup alone). */
		char **create_replica_methods;
		size_t n_create_replica_methods;
		struct {
			char *command; /* postgresql.pgbackrest.command: absolute program and its arguments */
			bool keep_data, no_params, no_leader;
			double timeout; /* seconds before the restore is killed, default 3600 */
		} pgbackrest;
		struct {
			char *max_rate;   /* postgresql.basebackup.max-rate: pg_basebackup --max-rate (NULL: none) */
			char *checkpoint; /* postgresql.basebackup.checkpoint: "fast" (default) or "spread" */
			double timeout;   /* seconds before pg_basebackup is killed, 0 (default): no bound */
		} basebackup;
	} postgresql;

	struct {
		bool nofailover;           /* default false */
		bool nosync;               /* never a synchronous standby, default false */
		bool clonefrom;            /* new replicas prefer a base backup from this member, default false */
		int64_t failover_priority; /* 0 = never promote; higher wins LSN ties; default 1 */
		bool noloadbalance;        /* /replica, /read-only, /async... answer 503 here; default false */
		bool nostream;             /* replay from restore_command only, no primary_conninfo; default false */
		char *replicatefrom;       /* stream from this member while it is a running replica (NULL = leader) */
		/* tags.<any other key>: custom tags, published and matched by
		 * ?tag_KEY=VALUE; value is the JSON text of the file's value
		 * ("\"east\"", "5", "true"), name [A-Za-z0-9_.-]{1,63}. */
		struct config_param *custom;
		size_t n_custom;
	} tags;

	struct {
		char *mode;   /* watchdog.mode: "off", "automatic" (default: use it if it works) or "required" */
		char *device; /* watchdog.device: default "/dev/watchdog" */
		double safety_margin; /* watchdog.safety_margin: seconds from a watchdog reset to the lease's expiry, default 0.5 */
	} watchdog;

	/* PgBouncer admin consoles paused around a planned switchover
	 * (agent/pooler.h). From this file only: they carry passwords. */
	char **poolers; /* poolers: libpq connection strings of the admin consoles (host and port required) */
	size_t n_poolers;
	double pooler_pause_timeout;  /* seconds PAUSE may take before we resume and go on unpaused, default 5 */
	double pooler_resume_timeout; /* seconds to wait for the new primary (and pooler_target) to take writes
	                               * before resuming anyway, default 10 */
	char *pooler_target;          /* pooler_target: conninfo of the address the poolers connect to (NULL: none) */

	char *log_level; /* default "info" */
};

/*
 * What SIGHUP does with a changed key: the option table's reload column,
 * one value per key (tests/check_config fails on a key without one, so a new
 * option cannot be ignored on SIGHUP by accident).
 */
enum config_reload {
	CONFIG_RELOAD_UNSET = 0, /* no row may keep this */
	CONFIG_RELOAD_LIVE,      /* the agent reads the new value where it uses it (next loop) */
	CONFIG_RELOAD_LOG,       /* the log level is set at once */
	CONFIG_RELOAD_CALLBACKS, /* the callback runner is replaced; a callback still running is stopped */
	CONFIG_RELOAD_POSTGRES,  /* Postgres's files are rewritten and Postgres reloaded */
	CONFIG_RELOAD_PASSWORDS, /* the password file is rewritten, the role changed on the primary, Postgres reloaded */
	CONFIG_RELOAD_BOOTSTRAP, /* kept for a bootstrap still to come; the cluster's config key rules once it exists */
	CONFIG_RELOAD_RESTART, /* held by other threads or etcd's client: WARN naming the key, the running value stays */
	CONFIG_RELOAD_N
};

/* Bit of an outcome in config_reload_report.effects and in apply masks. */
#define CONFIG_RELOAD_BIT(how) (1u << (unsigned)(how))

/* "live", "log level", "callbacks", "Postgres reload", "passwords",
 * "bootstrap", "restart". */
const char *config_reload_name(enum config_reload how);

/* A key the table knows, by index: false past the last. For tests and docs. */
bool config_option_at(size_t i, const char **path, enum config_reload *reload);

#define CONFIG_RELOAD_MAX 128 /* >= the number of options (checked in config.c) */

struct config_reload_change {
	const char *key; /* the option's dotted path (static) */
	enum config_reload how;
};

/* What differs between two loaded configurations, key by key, in the table's order. */
struct config_reload_report {
	struct config_reload_change changed[CONFIG_RELOAD_MAX];
	size_t n_changed;
	unsigned effects; /* CONFIG_RELOAD_BIT(how) of every change */
};

/* Walks the table comparing old and fresh (both loaded by config_load);
 * fills rep. Pure: no logging, no I/O. */
void config_reload_diff(const struct baton_config *old, const struct baton_config *fresh,
                        struct config_reload_report *rep);

/* Moves into cur the fresh value of every key in rep whose outcome is in
 * mask (CONFIG_RELOAD_BITs), leaving cur's previous value in fresh, which
 * the caller then frees with config_free. CONFIG_RELOAD_RESTART keys are
 * never moved, whatever mask says. Returns the number of keys moved. */
size_t config_reload_apply(struct baton_config *cur, struct baton_config *fresh, const struct config_reload_report *rep,
                           unsigned mask);

/* Writes the keys of rep whose outcome is in mask into buf as "a, b, c",
 * each followed by " (outcome)" when with_how. Returns how many were written. */
size_t config_reload_keys(const struct config_reload_report *rep, unsigned mask, bool with_how, char *buf, size_t len);

/* Loads and validates path into *out (zeroed first). On error writes one line
 * "FILE:LINE: KEY: problem" into err and returns false (out is left freed). */
bool config_load(const char *path, struct baton_config *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));
void config_free(struct baton_config *cfg);

/* The bounds above and the timing rule loop_wait + 2 * retry_timeout <= ttl.
 * Writes the reason, naming the value and the bound, into err when violated. */
bool config_check_timing(const struct dcs_settings *d, char *err, size_t errlen);

/* May the cluster's config key (etcd, PATCH /config, edit-config) set
 * Postgres parameter name on this node? Always, unless it is one that runs
 * code (pg_conf_param_runs_code: also the privilege-weakening ones and
 * every custom "ext.name" one); then only if allow (n names, e.g.
 * postgresql.allow_from_dcs) lists it. Names compare ignoring case. */
bool config_param_allowed_from_dcs(const char *name, char *const *allow, size_t n);

/* The custom tags (cfg->tags.custom) as one compact JSON object in buf,
 * "" when there are none (the loader keeps them within
 * CONFIG_TAGS_JSON_MAX bytes, so len > that always fits them). */
void config_tags_json(const struct baton_config *cfg, char *buf, size_t len);

/* Splits "host:port" ("[v6]:port" too) into host (caller frees) and port. */
bool config_split_hostport(const char *s, char **host, int *port);
/* A host name or address as standby_cluster.host takes it: 1 to 253 of
 * letters, digits, '.', '-', '_', ':'; false + why if not. */
bool config_check_host(const char *v, char *why, size_t len);

/* True, with the warning in why, when the file (cfg->path) holds a password
 * and its group or others may read or write it (as ssh and libpq warn). */
bool config_file_exposed(const struct baton_config *cfg, char *why, size_t len);

/* The TLS files the config names (restapi cert/key/cafile/client cert/key,
 * etcd cacert/cert/key) hold PEM blocks of the right kind, well formed.
 * false + "FILE: KEY: problem" in err. For `baton -t` and the start. */
bool config_check_files(const struct baton_config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Prints the effective configuration as libconfig text (secrets as "***"). */
void config_print(const struct baton_config *cfg, FILE *out);

#endif
