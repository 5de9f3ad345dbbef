/*
 * import_patroni.c - batonctl import-patroni: turns a Patroni node's YAML
 * configuration (patroni.yml) into the equivalent baton.conf, so that a
 * running Patroni cluster can move to baton with the same scope, namespace,
 * member names, data directories, ports and credentials (README.md,
 * "Migrating from Patroni").
 *
 * How: libyaml loads the file into a document tree; walk() visits every
 * mapping key by its dotted path (etcd3.hosts, postgresql.parameters, ...)
 * and looks the path up in one table, rules[]: a row names the baton key
 * the value goes to and how it converts (a string, a boolean as YAML 1.1
 * spells it, seconds, a host list, a parameter group, the initdb list, the
 * slots map), or says why the key is not carried. A path no row names is
 * walked into when it is a mapping, and otherwise reported as unknown.
 * Nothing is dropped silently: every key not carried is printed on stderr
 * with its line and the reason, and the summary counts them.
 *
 * The result is built with libconfig's own writer (so strings are escaped
 * as the agent's parser expects), written to a temporary file beside the
 * output, loaded back with the agent's config_load() (the same checks
 * `baton -t` runs), and only then renamed into place (mode 0600: the file
 * holds passwords) or copied to stdout. A file the agent would refuse is
 * never left behind.
 *
 * A row whose path ends in ".*" takes any key under that group that no
 * exact row names (custom tags, pgBackRest's extra options).
 *
 * Exit status: 0 written (also when keys were not carried: they are
 * listed), 1 the output cannot be written or the agent would refuse it,
 * 2 usage error, or the YAML file unreadable or invalid (FILE:LINE: why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libconfig.h>
#include <yaml.h>

#include "agent/batonctl/common.h"
#include "agent/config.h"
#include "agent/parse.h"
#include "pg/pg_conf.h"
#include "pg/pg_ctl.h"

#define PATH_MAX_LEN 256
#define SET_MAX 256

/* How a Patroni value becomes a baton one. */
enum imp_kind {
	IMP_STRING,      /* a scalar, as is */
	IMP_BOOL,        /* true/false/yes/no/on/off -> a libconfig boolean */
	IMP_BOOL_WEAK,   /* the same, unless the node's own section sets the key too */
	IMP_SECONDS,     /* a number of seconds (integer or decimal) */
	IMP_INT,         /* a 64-bit integer */
	IMP_HOSTS,       /* "h1:p1,h2:p2" or a list -> an array of "host:port" */
	IMP_URLS,        /* "http://h:p" or a list of them -> hosts, plus the protocol */
	IMP_STRLIST,     /* a list of scalars -> an array of strings */
	IMP_PARAMS,      /* a mapping of Postgres parameters -> a group of strings */
	IMP_NAMESPACE,   /* "/service/" -> "/service" */
	IMP_LOG_LEVEL,   /* DEBUG/INFO/WARNING/ERROR/CRITICAL -> debug/info/warning/error */
	IMP_INITDB,      /* the initdb list: encoding, locale, data-checksums, other options */
	IMP_SYNC_MODE,   /* a boolean, or "quorum" -> true plus synchronous_quorum */
	IMP_ALLOWLIST,   /* restapi.allowlist: numeric addresses and networks */
	IMP_METHODS,     /* create_replica_methods: the methods baton knows */
	IMP_BASEBACKUP,  /* Patroni's basebackup options, a list or a mapping */
	IMP_TAG,         /* a custom tag: string, number or boolean */
	IMP_DCS_JSON,    /* not carried: the etcd config key takes it (why), shown as JSON */
	IMP_SLOTS,       /* bootstrap.dcs.slots: physical slot names */
	IMP_VERIFY,      /* restapi.verify_client: none/optional/required */
	IMP_DROP,        /* not carried: why says why (the whole subtree) */
	IMP_DEFAULTS_OK, /* not carried, and nothing lost: baton does this by itself (why) */
};

struct imp_rule {
	const char *from; /* the Patroni key's dotted path */
	const char *to;   /* the baton key */
	enum imp_kind kind;
	const char *why; /* IMP_DROP, IMP_DEFAULTS_OK, IMP_DCS_JSON: the reason */
};

static const char NO_ETCD2[] = "baton speaks etcd's v3 API only: Patroni's etcd (v2) keys are invisible to it; "
                               "move Patroni to etcd3 first";
static const char NO_DCS[] = "baton keeps its state in etcd v3 only";

/* Every Patroni key baton knows of, in the order of Patroni's documentation. */
static const struct imp_rule rules[] = {
	{ "scope", "scope", IMP_STRING, NULL },
	{ "namespace", "namespace", IMP_NAMESPACE, NULL },
	{ "name", "name", IMP_STRING, NULL },
	{ "log.level", "log.level", IMP_LOG_LEVEL, NULL },
	{ "log.traceback_level", NULL, IMP_DROP, "baton logs no tracebacks" },
	{ "log.format", NULL, IMP_DROP, "baton's log lines have one fixed format" },
	{ "log.dateformat", NULL, IMP_DROP, "baton's log lines have one fixed format" },
	{ "log.max_queue_size", NULL, IMP_DROP, "baton logs synchronously to stderr" },
	{ "log.dir", NULL, IMP_DROP, "baton logs to stderr (the journal under systemd)" },
	{ "log.file_num", NULL, IMP_DROP, "baton logs to stderr (the journal under systemd)" },
	{ "log.file_size", NULL, IMP_DROP, "baton logs to stderr (the journal under systemd)" },
	{ "log.loggers", NULL, IMP_DROP, "baton has one log level" },

	{ "etcd3.host", "etcd.hosts", IMP_HOSTS, NULL },
	{ "etcd3.hosts", "etcd.hosts", IMP_HOSTS, NULL },
	{ "etcd3.url", "etcd.hosts", IMP_URLS, NULL },
	{ "etcd3.urls", "etcd.hosts", IMP_URLS, NULL },
	{ "etcd3.protocol", "etcd.protocol", IMP_STRING, NULL },
	{ "etcd3.cacert", "etcd.cacert", IMP_STRING, NULL },
	{ "etcd3.cert", "etcd.cert", IMP_STRING, NULL },
	{ "etcd3.key", "etcd.key", IMP_STRING, NULL },
	{ "etcd3.username", "etcd.username", IMP_STRING, NULL },
	{ "etcd3.password", "etcd.password", IMP_STRING, NULL },
	{ "etcd3.key_password", NULL, IMP_DROP, "baton reads unencrypted client keys only" },
	{ "etcd3.use_proxies", NULL, IMP_DROP, "baton has no etcd proxy mode" },
	{ "etcd3.proxy", NULL, IMP_DROP, "baton has no etcd proxy mode" },
	{ "etcd3.srv", NULL, IMP_DROP, "baton finds etcd by etcd.hosts only (no DNS SRV discovery)" },
	{ "etcd3.srv_suffix", NULL, IMP_DROP, "baton finds etcd by etcd.hosts only (no DNS SRV discovery)" },
	{ "etcd3.retry_timeout", NULL, IMP_DROP, "baton bounds etcd requests by the cluster's retry_timeout" },
	{ "etcd", NULL, IMP_DROP, NO_ETCD2 },
	{ "consul", NULL, IMP_DROP, NO_DCS },
	{ "zookeeper", NULL, IMP_DROP, NO_DCS },
	{ "exhibitor", NULL, IMP_DROP, NO_DCS },
	{ "kubernetes", NULL, IMP_DROP, NO_DCS },
	{ "raft", NULL, IMP_DROP, NO_DCS },

	{ "restapi.listen", "restapi.listen", IMP_STRING, NULL },
	{ "restapi.connect_address", "restapi.connect_address", IMP_STRING, NULL },
	{ "restapi.certfile", "restapi.certfile", IMP_STRING, NULL },
	{ "restapi.keyfile", "restapi.keyfile", IMP_STRING, NULL },
	{ "restapi.cafile", "restapi.cafile", IMP_STRING, NULL },
	{ "restapi.verify_client", "restapi.verify_client", IMP_VERIFY, NULL },
	{ "restapi.authentication.username", "restapi.authentication.username", IMP_STRING, NULL },
	{ "restapi.authentication.password", "restapi.authentication.password", IMP_STRING, NULL },
	{ "restapi.allowlist", "restapi.allowlist", IMP_ALLOWLIST, NULL },
	{ "restapi.allowlist_include_members", NULL, IMP_DROP,
	  "baton refuses it (the members' addresses are not added by themselves): list them in restapi.allowlist" },
	{ "restapi.keyfile_password", NULL, IMP_DROP, "baton reads unencrypted keys only" },
	{ "restapi.ciphers", NULL, IMP_DROP, "baton uses GnuTLS's default priorities" },
	{ "restapi.http_extra_headers", NULL, IMP_DROP, "baton sends no extra headers" },
	{ "restapi.https_extra_headers", NULL, IMP_DROP, "baton sends no extra headers" },
	{ "restapi.request_queue_size", NULL, IMP_DROP, "baton's REST server sizes its own queue" },
	{ "ctl.certfile", "restapi.client_certfile", IMP_STRING, NULL },
	{ "ctl.keyfile", "restapi.client_keyfile", IMP_STRING, NULL },
	{ "ctl.cacert", NULL, IMP_DROP, "batonctl verifies the members against restapi.cafile" },
	{ "ctl.insecure", NULL, IMP_DROP, "batonctl always verifies the members' certificates" },
	{ "ctl.keyfile_password", NULL, IMP_DROP, "baton reads unencrypted keys only" },

	{ "bootstrap.dcs.ttl", "bootstrap.dcs.ttl", IMP_SECONDS, NULL },
	{ "bootstrap.dcs.loop_wait", "bootstrap.dcs.loop_wait", IMP_SECONDS, NULL },
	{ "bootstrap.dcs.retry_timeout", "bootstrap.dcs.retry_timeout", IMP_SECONDS, NULL },
	{ "bootstrap.dcs.maximum_lag_on_failover", "bootstrap.dcs.maximum_lag_on_failover", IMP_INT, NULL },
	{ "bootstrap.dcs.synchronous_mode", "bootstrap.dcs.synchronous_mode", IMP_SYNC_MODE, NULL },
	{ "bootstrap.dcs.synchronous_mode_strict", "bootstrap.dcs.synchronous_mode_strict", IMP_BOOL, NULL },
	{ "bootstrap.dcs.synchronous_node_count", "bootstrap.dcs.synchronous_node_count", IMP_INT, NULL },
	{ "bootstrap.dcs.slots", "bootstrap.dcs.slots", IMP_SLOTS, NULL },
	{ "bootstrap.dcs.postgresql.parameters", "bootstrap.dcs.postgresql.parameters", IMP_PARAMS, NULL },
	{ "bootstrap.dcs.postgresql.use_pg_rewind", "postgresql.use_pg_rewind", IMP_BOOL_WEAK, NULL },
	{ "bootstrap.dcs.postgresql.use_slots", "bootstrap.dcs.postgresql.use_slots", IMP_BOOL, NULL },
	{ "bootstrap.dcs.postgresql.pg_hba", NULL, IMP_DROP,
	  "baton takes pg_hba only from the node's own file: list the lines in postgresql.pg_hba" },
	{ "bootstrap.dcs.postgresql.recovery_conf", NULL, IMP_DROP, "baton writes the recovery settings itself" },
	{ "bootstrap.dcs.maximum_lag_on_syncnode", "bootstrap.dcs.maximum_lag_on_syncnode", IMP_INT, NULL },
	{ "bootstrap.dcs.check_timeline", "bootstrap.dcs.check_timeline", IMP_BOOL, NULL },
	{ "bootstrap.dcs.ignore_slots", "ignore_slots", IMP_DCS_JSON,
	  "baton's node file has no ignore_slots, only the cluster's config key: once baton runs, set it with "
	  "`batonctl edit-config` or PATCH /config with" },
	{ "bootstrap.dcs.failsafe_mode", NULL, IMP_DROP,
	  "not a node setting in baton: set it with `batonctl edit-config --set failsafe_mode=true`" },
	{ "bootstrap.dcs.master_start_timeout", NULL, IMP_DROP,
	  "baton fails over a primary that does not start after ttl, with no separate timeout" },
	{ "bootstrap.dcs.primary_start_timeout", NULL, IMP_DROP,
	  "baton fails over a primary that does not start after ttl, with no separate timeout" },
	{ "bootstrap.dcs.master_stop_timeout", NULL, IMP_DROP, "baton has no primary stop timeout" },
	{ "bootstrap.dcs.primary_stop_timeout", NULL, IMP_DROP, "baton has no primary stop timeout" },
	{ "bootstrap.dcs.standby_cluster.host", "bootstrap.dcs.standby_cluster.host", IMP_STRING, NULL },
	{ "bootstrap.dcs.standby_cluster.port", "bootstrap.dcs.standby_cluster.port", IMP_INT, NULL },
	{ "bootstrap.dcs.standby_cluster.primary_slot_name", "bootstrap.dcs.standby_cluster.primary_slot_name",
	  IMP_STRING, NULL },
	{ "bootstrap.dcs.standby_cluster.restore_command", "bootstrap.dcs.standby_cluster.restore_command", IMP_STRING,
	  NULL },
	{ "bootstrap.dcs.standby_cluster.archive_cleanup_command", NULL, IMP_DROP,
	  "baton's standby cluster runs no archive_cleanup_command: clean the archive on its own site" },
	{ "bootstrap.dcs.standby_cluster.recovery_min_apply_delay", NULL, IMP_DROP,
	  "baton's standby leader applies at once (a delay would break the site switchover's wait)" },
	{ "bootstrap.dcs.standby_cluster.create_replica_methods", NULL, IMP_DROP,
	  "the standby cluster's first member is a base backup of standby_cluster.host" },
	{ "bootstrap.dcs.member_slots_ttl", NULL, IMP_DROP, "baton drops a member's slot when the member is gone" },
	{ "bootstrap.initdb", "bootstrap.initdb", IMP_INITDB, NULL },
	{ "bootstrap.method", NULL, IMP_DROP,
	  "a custom method is a script: set bootstrap.method = \"pgbackrest\" and bootstrap.pgbackrest by hand" },
	{ "bootstrap.pg_hba", NULL, IMP_DROP, "baton writes pg_hba.conf from postgresql.pg_hba" },
	{ "bootstrap.users", NULL, IMP_DROP, "baton creates no users at bootstrap (removed in Patroni 4 as well)" },
	{ "bootstrap.post_bootstrap", "bootstrap.post_bootstrap", IMP_STRING, NULL },
	{ "bootstrap.post_init", "bootstrap.post_bootstrap", IMP_STRING, NULL },

	{ "postgresql.listen", "postgresql.listen", IMP_STRING, NULL },
	{ "postgresql.connect_address", "postgresql.connect_address", IMP_STRING, NULL },
	{ "postgresql.data_dir", "postgresql.data_dir", IMP_STRING, NULL },
	{ "postgresql.bin_dir", "postgresql.bin_dir", IMP_STRING, NULL },
	{ "postgresql.pgpass", "postgresql.pgpass", IMP_STRING, NULL },
	{ "postgresql.authentication.superuser.username", "postgresql.authentication.superuser.username", IMP_STRING,
	  NULL },
	{ "postgresql.authentication.superuser.password", "postgresql.authentication.superuser.password", IMP_STRING,
	  NULL },
	{ "postgresql.authentication.replication.username", "postgresql.authentication.replication.username",
	  IMP_STRING, NULL },
	{ "postgresql.authentication.replication.password", "postgresql.authentication.replication.password",
	  IMP_STRING, NULL },
	{ "postgresql.authentication.rewind.username", "postgresql.authentication.rewind.username", IMP_STRING, NULL },
	{ "postgresql.authentication.rewind.password", "postgresql.authentication.rewind.password", IMP_STRING, NULL },
	{ "postgresql.parameters", "postgresql.parameters", IMP_PARAMS, NULL },
	{ "postgresql.pg_hba", "postgresql.pg_hba", IMP_STRLIST, NULL },
	{ "postgresql.pg_ident", "postgresql.pg_ident", IMP_STRLIST, NULL },
	{ "postgresql.use_pg_rewind", "postgresql.use_pg_rewind", IMP_BOOL, NULL },
	{ "postgresql.remove_data_directory_on_rewind_failure", "postgresql.remove_data_directory_on_rewind_failure",
	  IMP_BOOL, NULL },
	{ "postgresql.remove_data_directory_on_diverged_timelines",
	  "postgresql.remove_data_directory_on_diverged_timelines", IMP_BOOL, NULL },
	{ "postgresql.pg_ctl_timeout", "postgresql.pg_ctl_timeout", IMP_SECONDS, NULL },
	{ "postgresql.callbacks.on_start", "postgresql.callbacks.on_start", IMP_STRING, NULL },
	{ "postgresql.callbacks.on_stop", "postgresql.callbacks.on_stop", IMP_STRING, NULL },
	{ "postgresql.callbacks.on_role_change", "postgresql.callbacks.on_role_change", IMP_STRING, NULL },
	{ "postgresql.callbacks.on_reload", "postgresql.callbacks.on_reload", IMP_STRING, NULL },
	{ "postgresql.callbacks.on_restart", NULL, IMP_DROP, "baton has no on_restart callback" },
	{ "postgresql.create_replica_methods", "postgresql.create_replica_methods", IMP_METHODS, NULL },
	{ "postgresql.basebackup", "postgresql.basebackup", IMP_BASEBACKUP, NULL },
	{ "postgresql.pgbackrest.command", "postgresql.pgbackrest.command", IMP_STRING, NULL },
	{ "postgresql.pgbackrest.keep_data", "postgresql.pgbackrest.keep_data", IMP_BOOL, NULL },
	{ "postgresql.pgbackrest.no_params", "postgresql.pgbackrest.no_params", IMP_BOOL, NULL },
	{ "postgresql.pgbackrest.no_leader", "postgresql.pgbackrest.no_leader", IMP_BOOL, NULL },
	{ "postgresql.pgbackrest.no_master", "postgresql.pgbackrest.no_leader", IMP_BOOL, NULL },
	{ "postgresql.pgbackrest.*", NULL, IMP_DROP,
	  "baton's pgbackrest method passes no other options: add them to postgresql.pgbackrest.command" },
	{ "postgresql.use_unix_socket", NULL, IMP_DEFAULTS_OK,
	  "baton's local connections use postgresql.socket_dir by itself" },
	{ "postgresql.use_unix_socket_repl", NULL, IMP_DROP, "replicas stream over TCP (connect_address)" },
	{ "postgresql.config_dir", NULL, IMP_DROP, "baton keeps postgresql.conf in the data directory" },
	{ "postgresql.custom_conf", NULL, IMP_DROP, "baton writes postgresql.conf from the parameters" },
	{ "postgresql.recovery_conf", NULL, IMP_DROP, "baton writes the recovery settings itself" },
	{ "postgresql.pre_promote", NULL, IMP_DROP, "baton has no pre_promote hook" },
	{ "postgresql.before_stop", NULL, IMP_DROP, "baton has no before_stop hook" },
	{ "postgresql.pg_ctl", NULL, IMP_DROP, "baton starts the postmaster itself (no pg_ctl)" },
	{ "postgresql.rewind", NULL, IMP_DROP, "baton runs pg_rewind with its own options" },

	{ "tags.nofailover", "tags.nofailover", IMP_BOOL, NULL },
	{ "tags.nosync", "tags.nosync", IMP_BOOL, NULL },
	{ "tags.failover_priority", "tags.failover_priority", IMP_INT, NULL },
	{ "tags.clonefrom", "tags.clonefrom", IMP_BOOL, NULL },
	{ "tags.noloadbalance", "tags.noloadbalance", IMP_BOOL, NULL },
	{ "tags.replicatefrom", "tags.replicatefrom", IMP_STRING, NULL },
	{ "tags.nostream", "tags.nostream", IMP_BOOL, NULL },
	{ "tags.*", "tags", IMP_TAG, NULL },

	{ "watchdog.mode", "watchdog.mode", IMP_STRING, NULL },
	{ "watchdog.device", "watchdog.device", IMP_STRING, NULL },
	{ "watchdog.safety_margin", "watchdog.safety_margin", IMP_SECONDS, NULL },
	{ "watchdog.driver", NULL, IMP_DEFAULTS_OK, "baton drives the default Linux watchdog device" },
};

/* The row for path: its own, else a "GROUP.*" row of the group its first
 * glen characters name (the key itself may hold dots: a custom tag's). */
static const struct imp_rule *rule_for(const char *path, size_t glen)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].from, path) == 0)
			return &rules[i];
	for (size_t i = 0; glen > 0 && i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strncmp(rules[i].from, path, glen) == 0 && strcmp(rules[i].from + glen, ".*") == 0)
			return &rules[i];
	return NULL;
}

/* ---- the run ------------------------------------------------------------------- */

struct imp {
	const char *file;
	yaml_document_t doc;
	config_t out;
	size_t carried, dropped;
	struct {
		char path[PATH_MAX_LEN];
		bool weak;
	} set[SET_MAX]; /* the baton keys written so far */
	size_t n_set;
	bool etcd_tls; /* a URL said https */
	size_t visits; /* nodes visited, aliases counted each time (IMP_MAX_VISITS) */
	struct {
		const char *name, *value; /* in doc */
		unsigned long line;
	} moved[32]; /* code-running parameters of bootstrap.dcs, for the node's own file */
	size_t n_moved;
};

/* YAML aliases let a small file name a huge tree (each alias re-visits its
 * anchor's whole tree): past this many visited nodes the file is refused. */
#define IMP_MAX_VISITS 20000

/* Counts one more visited node; false past IMP_MAX_VISITS. */
static bool visit(struct imp *x)
{
	return ++x->visits <= IMP_MAX_VISITS;
}

/* Counts the nodes of n's tree as walk() would visit them (aliases each
 * time), stopping past IMP_MAX_VISITS; before anything is printed. */
static void count_nodes(struct imp *x, const yaml_node_t *n, int depth)
{
	if (!n || depth > 8 || !visit(x))
		return;
	if (n->type == YAML_SEQUENCE_NODE)
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top && x->visits <= IMP_MAX_VISITS; i++)
			count_nodes(x, yaml_document_get_node(&x->doc, *i), depth + 1);
	else if (n->type == YAML_MAPPING_NODE)
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top && x->visits <= IMP_MAX_VISITS; p++)
			count_nodes(x, yaml_document_get_node(&x->doc, p->value), depth + 1);
}

/* "not carried: KEY (FILE:LINE): why" on stderr, counted. */
static void drop(struct imp *x, const char *path, const yaml_node_t *n, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void drop(struct imp *x, const char *path, const yaml_node_t *n, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "batonctl: import-patroni: not carried: %s (%s:%lu): %s\n", path, x->file,
	        (unsigned long)(n ? n->start_mark.line + 1 : 0), why);
	x->dropped++;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A YAML 1.1 boolean (what Patroni's PyYAML reads as one). */
static bool yaml_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "y" }, *const no[] = { "false", "no", "off", "n" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/*
 * The setting at the dotted baton path, made with its groups (type is the
 * leaf's). An existing setting made by a weak rule is replaced; one made by
 * a strong rule is kept and NULL returned (reported by the caller as set
 * twice). NULL too when out of memory.
 */
static config_setting_t *make_setting(struct imp *x, const char *to, int type, bool weak, bool *twice)
{
	config_setting_t *g = config_root_setting(&x->out), *s;
	char buf[PATH_MAX_LEN], *part, *next;

	*twice = false;
	for (size_t i = 0; i < x->n_set; i++)
		if (strcmp(x->set[i].path, to) == 0) {
			if (weak || !x->set[i].weak) {
				*twice = true;
				return NULL;
			}
			x->set[i].weak = false;
			s = config_lookup(&x->out, to);
			if (s && config_setting_remove(config_setting_parent(s), config_setting_name(s)) != CONFIG_TRUE)
				return NULL;
			break;
		}
	snprintf(buf, sizeof(buf), "%s", to);
	for (part = buf; (next = strchr(part, '.')) != NULL; part = next + 1) {
		*next = '\0';
		s = config_setting_get_member(g, part);
		if (!s)
			s = config_setting_add(g, part, CONFIG_TYPE_GROUP);
		if (!s || !config_setting_is_group(s))
			return NULL;
		g = s;
	}
	s = config_setting_add(g, part, type);
	if (s && x->n_set < SET_MAX && !weak) {
		snprintf(x->set[x->n_set].path, sizeof(x->set[0].path), "%s", to);
		x->set[x->n_set++].weak = false;
	} else if (s && x->n_set < SET_MAX) {
		snprintf(x->set[x->n_set].path, sizeof(x->set[0].path), "%s", to);
		x->set[x->n_set++].weak = true;
	}
	return s;
}

/* make_setting, reporting a key set twice or memory run out. */
static config_setting_t *setting(struct imp *x, const char *path, const yaml_node_t *n, const char *to, int type,
                                 bool weak)
{
	bool twice;
	config_setting_t *s = make_setting(x, to, type, weak, &twice);

	if (!s && twice && weak)
		drop(x, path, n, "the node's own %s of this file takes precedence, as in Patroni", to);
	else if (!s && twice)
		drop(x, path, n, "baton's %s is already set by an earlier key of this file", to);
	else if (!s)
		drop(x, path, n, "cannot add %s to the output (out of memory, or a name libconfig cannot hold)", to);
	return s;
}

static bool put_string(struct imp *x, const char *path, const yaml_node_t *n, const char *to, const char *v)
{
	config_setting_t *s = setting(x, path, n, to, CONFIG_TYPE_STRING, false);

	return s && config_setting_set_string(s, v) == CONFIG_TRUE;
}

/* Appends "host:port" items of a comma-separated list to the array a. */
static bool hosts_append(config_setting_t *a, const char *list, bool urls, bool *https)
{
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *h = tok, *end;

		while (*h == ' ')
			h++;
		end = h + strlen(h);
		while (end > h && end[-1] == ' ')
			*--end = '\0';
		if (urls) {
			if (strncmp(h, "https://", 8) == 0) {
				*https = true;
				h += 8;
			} else if (strncmp(h, "http://", 7) == 0) {
				h += 7;
			}
			end = strchr(h, '/');
			if (end)
				*end = '\0';
		}
		if (*h && !config_setting_set_string_elem(a, -1, h))
			return false;
	}
	return true;
}

/* IMP_HOSTS and IMP_URLS: a scalar list or a sequence of them. */
static void put_hosts(struct imp *x, const char *path, const yaml_node_t *n, const struct imp_rule *r)
{
	bool urls = r->kind == IMP_URLS;
	config_setting_t *a;
	const char *v = scalar(n);

	if (!v && n->type != YAML_SEQUENCE_NODE) {
		drop(x, path, n, "expected a list of host:port");
		return;
	}
	a = setting(x, path, n, r->to, CONFIG_TYPE_ARRAY, false);
	if (!a)
		return;
	if (v) {
		if (!hosts_append(a, v, urls, &x->etcd_tls))
			goto fail;
	} else {
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			const char *item = scalar(yaml_document_get_node(&x->doc, *i));

			if (!item || !hosts_append(a, item, urls, &x->etcd_tls))
				goto fail;
		}
	}
	if (config_setting_length(a) == 0)
		goto fail;
	x->carried++;
	return;
fail:
	drop(x, path, n, "expected host:port items");
}

/* IMP_PARAMS: every parameter as a string (Postgres parses its own values). */
static void put_params(struct imp *x, const char *path, const yaml_node_t *n, const char *to)
{
	config_setting_t *g;

	if (n->type != YAML_MAPPING_NODE) {
		drop(x, path, n, "expected a mapping of Postgres parameters");
		return;
	}
	g = setting(x, path, n, to, CONFIG_TYPE_GROUP, false);
	if (!g)
		return;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		const yaml_node_t *vn = yaml_document_get_node(&x->doc, p->value);
		const char *k = scalar(kn), *v = scalar(vn);
		char sub[PATH_MAX_LEN];
		config_setting_t *s;

		snprintf(sub, sizeof(sub), "%.180s.%.60s", path, k ? k : "?");
		if (!k || !v) {
			drop(x, sub, kn, "expected a parameter name and a scalar value");
			continue;
		}
		/* libconfig names: a letter or '*', then letters, digits, "-_*" */
		if (strchr(k, '.')) {
			drop(x, sub, kn,
			     "a name with a '.' (an extension's setting) cannot be a libconfig key: list it in "
			     "postgresql.allow_from_dcs on the nodes that may take it, then set it with `batonctl "
			     "edit-config --pg NAME=VALUE`");
			continue;
		}
		if (strcmp(k, "unix_socket_directories") == 0 && strcmp(to, "postgresql.parameters") == 0) {
			char dir[PATH_MAX_LEN];

			snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(v, ","), v);
			if (put_string(x, sub, vn, "postgresql.socket_dir", dir))
				x->carried++;
			continue;
		}
		/* A parameter that runs code (archive_command, ...) is taken only
		 * from the node's own file: Patroni's common bootstrap.dcs
		 * placement moves there (move_local_params), said on stderr. */
		if (strcmp(to, "bootstrap.dcs.postgresql.parameters") == 0 &&
		    !config_param_allowed_from_dcs(k, NULL, 0) && x->n_moved < sizeof(x->moved) / sizeof(x->moved[0])) {
			x->moved[x->n_moved].name = k;
			x->moved[x->n_moved].value = v;
			x->moved[x->n_moved++].line = (unsigned long)kn->start_mark.line + 1;
			continue;
		}
		if (strcmp(k, "listen_addresses") == 0 || strcmp(k, "port") == 0 || strcmp(k, "cluster_name") == 0) {
			drop(x, sub, kn, "baton sets it itself (from postgresql.listen, or the member name)");
			continue;
		}
		s = config_setting_add(g, k, CONFIG_TYPE_STRING);
		if (!s || config_setting_set_string(s, v) != CONFIG_TRUE) {
			drop(x, sub, kn, "not a parameter name baton's file can hold");
			continue;
		}
		x->carried++;
	}
}

/* One initdb option of Patroni's list (neither encoding, locale nor
 * checksums) -> bootstrap.initdb.options as "name" or "name=value"; one
 * baton passes itself, or not a long option name, is dropped saying why. */
static void put_initdb_option(struct imp *x, const char *sub, const yaml_node_t *item, const char *k, const char *v)
{
	config_setting_t *a = config_lookup(&x->out, "bootstrap.initdb.options");
	char opt[256], why[256];
	size_t n;

	snprintf(opt, sizeof(opt), "%s%s%s", k, v ? "=" : "", v ? v : "");
	n = strcspn(opt, "=");
	if (pg_initdb_option_reserved(opt, why, sizeof(why))) {
		drop(x, sub, item, "%s", why);
		return;
	}
	if (n == 0 || n > 64 || opt[0] == '-' || strspn(opt, "abcdefghijklmnopqrstuvwxyz0123456789-") < n ||
	    strlen(opt) > 250 || strchr(opt, '\n')) {
		drop(x, sub, item, "baton's bootstrap.initdb.options takes long option names ([a-z0-9-]) only");
		return;
	}
	if (!a)
		a = setting(x, sub, item, "bootstrap.initdb.options", CONFIG_TYPE_ARRAY, false);
	if (!a)
		return;
	if (!config_setting_set_string_elem(a, -1, opt)) {
		drop(x, sub, item, "out of memory");
		return;
	}
	x->carried++;
}

/* IMP_INITDB: Patroni's list of initdb options (strings, or one-key maps).
 * As in Patroni, a list without data-checksums makes a cluster without. */
static void put_initdb(struct imp *x, const char *path, const yaml_node_t *n)
{
	bool checksums = false;
	config_setting_t *s;

	if (n->type != YAML_SEQUENCE_NODE) {
		drop(x, path, n, "expected a list of initdb options");
		return;
	}
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		const yaml_node_t *item = yaml_document_get_node(&x->doc, *i);
		const char *flag = scalar(item), *k = NULL, *v = NULL;
		char sub[PATH_MAX_LEN];

		if (!flag && item->type == YAML_MAPPING_NODE &&
		    item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1) {
			k = scalar(yaml_document_get_node(&x->doc, item->data.mapping.pairs.start->key));
			v = scalar(yaml_document_get_node(&x->doc, item->data.mapping.pairs.start->value));
		}
		snprintf(sub, sizeof(sub), "%.200s[%ld]", path, (long)(i - n->data.sequence.items.start));
		if (flag && (strcmp(flag, "data-checksums") == 0 || strcmp(flag, "k") == 0)) {
			s = setting(x, sub, item, "bootstrap.initdb.data_checksums", CONFIG_TYPE_BOOL, false);
			if (s && config_setting_set_bool(s, 1) == CONFIG_TRUE) {
				checksums = true;
				x->carried++;
			}
		} else if (k && v && (strcmp(k, "encoding") == 0 || strcmp(k, "E") == 0)) {
			if (put_string(x, sub, item, "bootstrap.initdb.encoding", v))
				x->carried++;
		} else if (k && v && strcmp(k, "locale") == 0) {
			if (put_string(x, sub, item, "bootstrap.initdb.locale", v))
				x->carried++;
		} else if (flag && *flag) {
			put_initdb_option(x, sub, item, flag, NULL);
		} else if (k && v && *k) {
			put_initdb_option(x, sub, item, k, v);
		} else {
			drop(x, sub, item, "expected an option name, or a mapping of one option to its value");
		}
	}
	if (!checksums && !config_lookup(&x->out, "bootstrap.initdb.data_checksums")) {
		bool twice;

		s = make_setting(x, "bootstrap.initdb.data_checksums", CONFIG_TYPE_BOOL, false, &twice);
		if (s)
			config_setting_set_bool(s, 0);
	}
}

/* The YAML node as JSON, every scalar as a string (slot fields are). */
static json_t *yaml_json(struct imp *x, const yaml_node_t *n, int depth)
{
	json_t *j = NULL;

	if (!n || depth > 8 || !visit(x))
		return NULL;
	if (n->type == YAML_SCALAR_NODE)
		return json_string((const char *)n->data.scalar.value);
	if (n->type == YAML_SEQUENCE_NODE) {
		j = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start; j && i < n->data.sequence.items.top; i++)
			if (json_array_append_new(j, yaml_json(x, yaml_document_get_node(&x->doc, *i), depth + 1)) != 0)
				goto fail;
		return j;
	}
	if (n->type == YAML_MAPPING_NODE) {
		j = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; j && p < n->data.mapping.pairs.top; p++) {
			const char *k = scalar(yaml_document_get_node(&x->doc, p->key));

			if (!k || json_object_set_new(j, k,
			                              yaml_json(x, yaml_document_get_node(&x->doc, p->value),
			                                        depth + 1)) != 0)
				goto fail;
		}
		return j;
	}
fail:
	json_decref(j);
	return NULL;
}

/* Not carried, for the cluster's config key: why, then the JSON to send,
 * {"key": value} or {"key": {"name": value}} with name. */
static void drop_json(struct imp *x, const char *path, const yaml_node_t *kn, const yaml_node_t *vn, const char *key,
                      const char *name, const char *why)
{
	json_t *v = yaml_json(x, vn, 0), *doc = NULL;
	char *text = NULL;

	/* json_object_set_new takes the value's reference even when it fails */
	if (v && name) {
		json_t *inner = json_object();

		if (!inner) {
			json_decref(v);
			v = NULL;
		} else if (json_object_set_new(inner, name, v) != 0) {
			json_decref(inner);
			v = NULL;
		} else {
			v = inner;
		}
	}
	if (v) {
		doc = json_object();
		if (!doc)
			json_decref(v);
		else if (json_object_set_new(doc, key, v) == 0)
			text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	drop(x, path, kn, "%s %s", why, text ? text : "(its value, as JSON)");
	free(text);
	json_decref(doc);
}

/* IMP_SYNC_MODE: a boolean, or Patroni's "quorum" (ANY n commits). */
static void put_sync_mode(struct imp *x, const char *path, const yaml_node_t *n, const char *to)
{
	const char *v = scalar(n);
	config_setting_t *s, *q;
	bool b, quorum = v && strcasecmp(v, "quorum") == 0;

	if (!v || (!quorum && !yaml_bool(v, &b))) {
		drop(x, path, n, "expected true, false or quorum");
		return;
	}
	s = setting(x, path, n, to, CONFIG_TYPE_BOOL, false);
	if (!s || config_setting_set_bool(s, quorum || b) != CONFIG_TRUE)
		return;
	if (quorum) {
		q = setting(x, path, n, "bootstrap.dcs.synchronous_quorum", CONFIG_TYPE_BOOL, false);
		if (!q || config_setting_set_bool(q, 1) != CONFIG_TRUE)
			return;
	}
	x->carried++;
}

/* Each scalar of n (one, or a sequence of them) to fn; false if n is neither. */
static bool each_scalar(struct imp *x, const char *path, const yaml_node_t *n,
                        void (*fn)(struct imp *, const char *, const yaml_node_t *, const char *, void *), void *arg)
{
	char sub[PATH_MAX_LEN];

	if (scalar(n)) {
		fn(x, path, n, scalar(n), arg);
		return true;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return false;
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		const yaml_node_t *item = yaml_document_get_node(&x->doc, *i);

		snprintf(sub, sizeof(sub), "%.200s[%ld]", path, (long)(i - n->data.sequence.items.start));
		if (scalar(item))
			fn(x, sub, item, scalar(item), arg);
		else
			drop(x, sub, item, "expected a string");
	}
	return true;
}

struct list_arg {
	const char *to;
	config_setting_t *a;
	size_t given, kept;
};

/* Appends v to the list arg names (made on first use). */
static void list_add(struct imp *x, const char *path, const yaml_node_t *n, const char *v, struct list_arg *l)
{
	if (!l->a)
		l->a = setting(x, path, n, l->to, CONFIG_TYPE_ARRAY, false);
	if (!l->a)
		return;
	if (!config_setting_set_string_elem(l->a, -1, v)) {
		drop(x, path, n, "out of memory");
		return;
	}
	l->kept++;
	x->carried++;
}

static void allow_one(struct imp *x, const char *path, const yaml_node_t *n, const char *v, void *arg)
{
	struct list_arg *l = arg;
	struct parse_net net;

	l->given++;
	if (!parse_net(v, &net)) {
		drop(x, path, n,
		     "\"%s\" is not an IP address or network: baton resolves no host names (add the host's "
		     "addresses to restapi.allowlist)",
		     v);
		return;
	}
	list_add(x, path, n, v, l);
}

/* IMP_ALLOWLIST: the addresses and networks writes may come from. */
static void put_allowlist(struct imp *x, const char *path, const yaml_node_t *n, const char *to)
{
	struct list_arg l = { .to = to };

	if (!each_scalar(x, path, n, allow_one, &l)) {
		drop(x, path, n, "expected a list of addresses or networks");
		return;
	}
	if (l.given > 0 && l.kept == 0)
		fprintf(stderr,
		        "batonctl: import-patroni: WARNING: no entry of %s could be carried: without "
		        "restapi.allowlist baton takes writes (with credentials) from any address; write one\n",
		        path);
}

static void method_one(struct imp *x, const char *path, const yaml_node_t *n, const char *v, void *arg)
{
	if (strcmp(v, "pgbackrest") != 0 && strcmp(v, "basebackup") != 0) {
		drop(x, path, n, "baton knows the replica creation methods pgbackrest and basebackup only");
		return;
	}
	list_add(x, path, n, v, arg);
}

/* IMP_METHODS: the methods, in order, without those baton does not know. */
static void put_methods(struct imp *x, const char *path, const yaml_node_t *n, const char *to)
{
	struct list_arg l = { .to = to };

	if (!each_scalar(x, path, n, method_one, &l))
		drop(x, path, n, "expected a list of method names");
}

/* One pg_basebackup option: max-rate and checkpoint are baton keys. */
static void basebackup_one(struct imp *x, const char *path, const yaml_node_t *n, const char *k, const char *v)
{
	char to[PATH_MAX_LEN];

	if ((strcmp(k, "max-rate") != 0 && strcmp(k, "checkpoint") != 0) || !v || !*v) {
		drop(x, path, n, "baton runs pg_basebackup with its own options (it takes max-rate and checkpoint)");
		return;
	}
	snprintf(to, sizeof(to), "postgresql.basebackup.%s", k);
	if (put_string(x, path, n, to, v))
		x->carried++;
}

/* IMP_BASEBACKUP: Patroni's list ("verbose", {max-rate: 100M}) or mapping. */
static void put_basebackup(struct imp *x, const char *path, const yaml_node_t *n)
{
	char sub[PATH_MAX_LEN];

	if (n->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			const yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
			const char *k = scalar(kn);

			snprintf(sub, sizeof(sub), "%.180s.%.60s", path, k ? k : "?");
			basebackup_one(x, sub, kn, k ? k : "?", scalar(yaml_document_get_node(&x->doc, p->value)));
		}
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		drop(x, path, n, "expected a list or a mapping of pg_basebackup options");
		return;
	}
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		const yaml_node_t *item = yaml_document_get_node(&x->doc, *i);
		const char *k = scalar(item), *v = NULL;

		snprintf(sub, sizeof(sub), "%.200s[%ld]", path, (long)(i - n->data.sequence.items.start));
		if (!k && item->type == YAML_MAPPING_NODE &&
		    item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1) {
			k = scalar(yaml_document_get_node(&x->doc, item->data.mapping.pairs.start->key));
			v = scalar(yaml_document_get_node(&x->doc, item->data.mapping.pairs.start->value));
		}
		basebackup_one(x, sub, item, k ? k : "?", v);
	}
}

/* IMP_TAG: a custom tag, typed as YAML 1.1 reads it (bool, integer,
 * decimal, else a string), under the tags group. */
static void put_tag(struct imp *x, const char *path, const yaml_node_t *kn, const yaml_node_t *n, const char *group)
{
	const char *name = scalar(kn), *v = scalar(n);
	config_setting_t *g, *s = NULL;
	bool b, quoted = n->type == YAML_SCALAR_NODE && n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	long long ll;
	double d;
	char *end;

	if (!v || !name || (!quoted && !*v)) {
		drop(x, path, kn, "a custom tag is a string, number or boolean");
		return;
	}
	if (name[0] == '\0' || strlen(name) > 63 ||
	    !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(name)) {
		drop(x, path, kn, "baton's file holds tag names of a letter then [A-Za-z0-9_-] only");
		return;
	}
	g = config_lookup(&x->out, group);
	if (!g) {
		bool twice;

		g = make_setting(x, group, CONFIG_TYPE_GROUP, false, &twice);
	}
	if (!g || config_setting_get_member(g, name)) {
		drop(x, path, kn, "cannot add the tag (set twice, or out of memory)");
		return;
	}
	errno = 0;
	if (!quoted && yaml_bool(v, &b)) {
		s = config_setting_add(g, name, CONFIG_TYPE_BOOL);
		if (s && config_setting_set_bool(s, b) != CONFIG_TRUE)
			s = NULL;
	} else if (!quoted && (ll = strtoll(v, &end, 10), errno == 0 && end != v && *end == '\0')) {
		s = config_setting_add(g, name, CONFIG_TYPE_INT64);
		if (s && config_setting_set_int64(s, ll) != CONFIG_TRUE)
			s = NULL;
	} else if (!quoted && (errno = 0, d = strtod(v, &end), errno == 0 && end != v && *end == '\0' && d - d == 0)) {
		s = config_setting_add(g, name, CONFIG_TYPE_FLOAT);
		if (s && config_setting_set_float(s, d) != CONFIG_TRUE)
			s = NULL;
	} else {
		s = config_setting_add(g, name, CONFIG_TYPE_STRING);
		if (s && config_setting_set_string(s, v) != CONFIG_TRUE)
			s = NULL;
	}
	if (!s) {
		drop(x, path, kn, "cannot add the tag (out of memory)");
		return;
	}
	x->carried++;
}

/* IMP_SLOTS: Patroni's map of permanent slots; baton keeps physical ones. */
static void put_slots(struct imp *x, const char *path, const yaml_node_t *n)
{
	config_setting_t *a = NULL;

	if (n->type != YAML_MAPPING_NODE) {
		drop(x, path, n, "expected a mapping of slot names");
		return;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		const yaml_node_t *vn = yaml_document_get_node(&x->doc, p->value);
		const yaml_node_t *tn = NULL;
		const char *name = scalar(kn), *type = "physical";
		char sub[PATH_MAX_LEN];

		snprintf(sub, sizeof(sub), "%.180s.%.60s", path, name ? name : "?");
		if (vn && vn->type == YAML_MAPPING_NODE)
			for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
				const char *qk = scalar(yaml_document_get_node(&x->doc, q->key));

				if (qk && strcmp(qk, "type") == 0)
					tn = yaml_document_get_node(&x->doc, q->value);
			}
		if (tn && scalar(tn))
			type = scalar(tn);
		if (!name) {
			drop(x, sub, kn, "expected a slot name");
			continue;
		}
		if (strcmp(type, "physical") != 0) {
			drop_json(x, sub, kn, vn, "slots", name,
			          "baton's node file holds physical slots only; the cluster's config key takes "
			          "this one: once baton runs, set it with `batonctl edit-config` or PATCH /config with");
			continue;
		}
		if (!a)
			a = setting(x, path, n, "bootstrap.dcs.slots", CONFIG_TYPE_ARRAY, false);
		if (!a)
			return;
		if (!config_setting_set_string_elem(a, -1, name)) {
			drop(x, sub, kn, "out of memory");
			continue;
		}
		x->carried++;
	}
}

/* One value by its rule (kn: its key, whose line a dropped subtree is named by). */
static void carry(struct imp *x, const char *path, const yaml_node_t *kn, const yaml_node_t *n,
                  const struct imp_rule *r)
{
	const char *v = scalar(n);
	config_setting_t *s;
	char buf[PATH_MAX_LEN];
	bool b;

	switch (r->kind) {
	case IMP_DROP:
		drop(x, path, kn, "%s", r->why);
		return;
	case IMP_DCS_JSON:
		drop_json(x, path, kn, n, r->to, NULL, r->why);
		return;
	case IMP_SYNC_MODE:
		put_sync_mode(x, path, n, r->to);
		return;
	case IMP_ALLOWLIST:
		put_allowlist(x, path, n, r->to);
		return;
	case IMP_METHODS:
		put_methods(x, path, n, r->to);
		return;
	case IMP_BASEBACKUP:
		put_basebackup(x, path, n);
		return;
	case IMP_TAG:
		put_tag(x, path, kn, n, r->to);
		return;
	case IMP_DEFAULTS_OK:
		fprintf(stderr, "batonctl: import-patroni: not needed: %s (%s:%lu): %s\n", path, x->file,
		        (unsigned long)(kn->start_mark.line + 1), r->why);
		return;
	case IMP_HOSTS:
	case IMP_URLS:
		put_hosts(x, path, n, r);
		return;
	case IMP_PARAMS:
		put_params(x, path, n, r->to);
		return;
	case IMP_INITDB:
		put_initdb(x, path, n);
		return;
	case IMP_SLOTS:
		put_slots(x, path, n);
		return;
	case IMP_STRLIST:
		if (n->type != YAML_SEQUENCE_NODE) {
			drop(x, path, n, "expected a list");
			return;
		}
		s = setting(x, path, n, r->to, CONFIG_TYPE_ARRAY, false);
		if (!s)
			return;
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			const char *item = scalar(yaml_document_get_node(&x->doc, *i));

			if (!item || !config_setting_set_string_elem(s, -1, item)) {
				drop(x, path, n, "expected a list of strings");
				config_setting_remove(config_setting_parent(s), config_setting_name(s));
				return;
			}
		}
		x->carried++;
		return;
	default:
		break;
	}
	if (!v || !*v) {
		drop(x, path, n, "expected a value (a scalar)");
		return;
	}
	switch (r->kind) {
	case IMP_STRING:
		if (put_string(x, path, n, r->to, v))
			x->carried++;
		return;
	case IMP_NAMESPACE: {
		size_t len;

		snprintf(buf, sizeof(buf), "%s", v);
		len = strlen(buf);
		while (len > 1 && buf[len - 1] == '/')
			buf[--len] = '\0';
		if (put_string(x, path, n, r->to, buf))
			x->carried++;
		return;
	}
	case IMP_LOG_LEVEL: {
		static const char *const levels[][2] = { { "DEBUG", "debug" },     { "INFO", "info" },
			                                 { "WARNING", "warning" }, { "WARN", "warning" },
			                                 { "ERROR", "error" },     { "CRITICAL", "error" },
			                                 { "FATAL", "error" } };

		for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			if (strcasecmp(v, levels[i][0]) == 0) {
				if (put_string(x, path, n, r->to, levels[i][1]))
					x->carried++;
				return;
			}
		drop(x, path, n, "unknown log level \"%s\" (DEBUG, INFO, WARNING, ERROR, CRITICAL)", v);
		return;
	}
	case IMP_VERIFY:
		if (strcmp(v, "none") != 0 && strcmp(v, "optional") != 0 && strcmp(v, "required") != 0) {
			drop(x, path, n, "expected none, optional or required");
			return;
		}
		if (put_string(x, path, n, r->to, v))
			x->carried++;
		return;
	case IMP_BOOL:
	case IMP_BOOL_WEAK:
		if (!yaml_bool(v, &b)) {
			drop(x, path, n, "expected a boolean (true or false)");
			return;
		}
		s = setting(x, path, n, r->to, CONFIG_TYPE_BOOL, r->kind == IMP_BOOL_WEAK);
		if (s && config_setting_set_bool(s, b) == CONFIG_TRUE)
			x->carried++;
		return;
	case IMP_INT: {
		char *end;
		long long ll;

		errno = 0;
		ll = strtoll(v, &end, 10);
		if (errno != 0 || *end != '\0' || end == v) {
			drop(x, path, n, "expected an integer");
			return;
		}
		s = setting(x, path, n, r->to, CONFIG_TYPE_INT64, false);
		if (s && config_setting_set_int64(s, ll) == CONFIG_TRUE)
			x->carried++;
		return;
	}
	case IMP_SECONDS: {
		char *end;
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || *end != '\0' || end == v || !(d >= 0)) {
			drop(x, path, n, "expected a number of seconds");
			return;
		}
		if (d == (double)(long long)d && d < 1e15) {
			s = setting(x, path, n, r->to, CONFIG_TYPE_INT64, false);
			if (s && config_setting_set_int64(s, (long long)d) == CONFIG_TRUE)
				x->carried++;
		} else {
			s = setting(x, path, n, r->to, CONFIG_TYPE_FLOAT, false);
			if (s && config_setting_set_float(s, d) == CONFIG_TRUE)
				x->carried++;
		}
		return;
	}
	default:
		return;
	}
}

/* Visits every key of the mapping n under the dotted prefix. */
static void walk(struct imp *x, const yaml_node_t *n, const char *prefix, int depth)
{
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *kn = yaml_document_get_node(&x->doc, p->key);
		const yaml_node_t *vn = yaml_document_get_node(&x->doc, p->value);
		const char *k = scalar(kn);
		const struct imp_rule *r;
		char path[PATH_MAX_LEN];
		int len;

		if (!visit(x))
			return;
		if (!k || !vn) {
			drop(x, prefix[0] ? prefix : "(top)", kn, "a key that is not a plain name");
			continue;
		}
		len = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", k);
		if (len < 0 || (size_t)len >= sizeof(path)) {
			drop(x, prefix, kn, "a key path longer than %d characters", PATH_MAX_LEN - 1);
			continue;
		}
		r = rule_for(path, strlen(prefix));
		if (r)
			carry(x, path, kn, vn, r);
		else if (vn->type == YAML_MAPPING_NODE && depth < 8)
			walk(x, vn, path, depth + 1);
		else if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0 &&
		         vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			continue; /* "key:" with nothing: null, as Patroni reads it */
		else
			drop(x, path, kn, "baton has no such setting");
	}
}

/* ---- input and output ---------------------------------------------------------- */

/* Loads the YAML file; EXIT_DONE or EXIT_USAGE (reported with file:line). */
static int load_yaml(struct imp *x)
{
	yaml_parser_t parser;
	FILE *f = fopen(x->file, "r");
	const yaml_node_t *root;
	int rc = EXIT_USAGE;

	if (!f) {
		fprintf(stderr, "batonctl: import-patroni: %s: %s\n", x->file, strerror(errno));
		return EXIT_USAGE;
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return failed("out of memory");
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &x->doc)) {
		fprintf(stderr, "batonctl: import-patroni: %s:%lu:%lu: invalid YAML: %s%s%s\n", x->file,
		        (unsigned long)parser.problem_mark.line + 1, (unsigned long)parser.problem_mark.column + 1,
		        parser.problem ? parser.problem : "cannot parse", parser.context ? " " : "",
		        parser.context ? parser.context : "");
		memset(&x->doc, 0, sizeof(x->doc));
		goto cleanup;
	}
	root = yaml_document_get_root_node(&x->doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		fprintf(stderr,
		        "batonctl: import-patroni: %s:%lu: not a Patroni configuration (expected a mapping of "
		        "settings)\n",
		        x->file, (unsigned long)(root ? root->start_mark.line + 1 : 1));
		goto cleanup;
	}
	rc = EXIT_DONE;
cleanup:
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* What Patroni does by default and baton must be told: the namespace
 * (Patroni's /service, baton's /baton) and https when a URL said so. */
/* The code-running parameters of bootstrap.dcs (put_params) into the
 * node's postgresql.parameters, unless the file sets them there too. */
static void move_local_params(struct imp *x)
{
	config_setting_t *pg, *g;

	for (size_t i = 0; i < x->n_moved; i++) {
		const char *k = x->moved[i].name;
		config_setting_t *s;

		pg = config_lookup(&x->out, "postgresql");
		if (!pg)
			pg = config_setting_add(config_root_setting(&x->out), "postgresql", CONFIG_TYPE_GROUP);
		g = pg ? config_setting_get_member(pg, "parameters") : NULL;
		if (pg && !g)
			g = config_setting_add(pg, "parameters", CONFIG_TYPE_GROUP);
		if (g && config_setting_get_member(g, k)) {
			fprintf(stderr,
			        "batonctl: import-patroni: bootstrap.dcs.postgresql.parameters.%s (%s:%lu): the node's own "
			        "postgresql.parameters.%s is kept\n",
			        k, x->file, x->moved[i].line, k);
			continue;
		}
		s = g ? config_setting_add(g, k, CONFIG_TYPE_STRING) : NULL;
		if (!s || config_setting_set_string(s, x->moved[i].value) != CONFIG_TRUE) {
			fprintf(stderr,
			        "batonctl: import-patroni: not carried: bootstrap.dcs.postgresql.parameters.%s "
			        "(%s:%lu): cannot add it to postgresql.parameters\n",
			        k, x->file, x->moved[i].line);
			x->dropped++;
			continue;
		}
		x->carried++;
		fprintf(stderr,
		        "batonctl: import-patroni: moved: bootstrap.dcs.postgresql.parameters.%s (%s:%lu) to "
		        "postgresql.parameters: %s, so baton takes it only from the node's own file (and ignores it in "
		        "the etcd config key: after a migration, remove it there)\n",
		        k, x->file, x->moved[i].line, pg_conf_local_only_why(k));
	}
}

static void add_defaults(struct imp *x)
{
	config_setting_t *s;
	bool twice;

	if (!config_lookup(&x->out, "namespace")) {
		s = make_setting(x, "namespace", CONFIG_TYPE_STRING, false, &twice);
		if (s && config_setting_set_string(s, "/service") == CONFIG_TRUE)
			fprintf(stderr, "batonctl: import-patroni: namespace = \"/service\" (Patroni's default, "
			                "so that baton finds the cluster's keys)\n");
	}
	if (!config_lookup(&x->out, "restapi.authentication.password"))
		fprintf(stderr,
		        "batonctl: import-patroni: note: %s sets no restapi.authentication: Patroni then "
		        "takes unauthenticated writes, baton refuses them (set restapi.authentication, or "
		        "restapi.allow_unauthenticated_writes = true to keep Patroni's behaviour)\n",
		        x->file);
	if (x->etcd_tls && !config_lookup(&x->out, "etcd.protocol")) {
		s = make_setting(x, "etcd.protocol", CONFIG_TYPE_STRING, false, &twice);
		if (s)
			config_setting_set_string(s, "https");
	}
}

/* Writes the output to a temporary file in dir, named into tmp; EXIT_*. */
static int write_tmp(struct imp *x, const char *dir, char *tmp, size_t len)
{
	FILE *f;
	int fd, n;

	n = snprintf(tmp, len, "%s/.baton-import-XXXXXX", dir);
	if (n < 0 || (size_t)n >= len)
		return failed("%s: directory name too long", dir);
	fd = mkstemp(tmp);
	if (fd < 0)
		return failed("cannot create a file in %s: %s", dir, strerror(errno));
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return failed("%s: %s", tmp, strerror(errno));
	}
	fprintf(f,
	        "# baton.conf written by batonctl import-patroni from %s\n"
	        "# (the keys it could not carry were listed when it ran; see baton.conf(5))\n",
	        x->file);
	config_write(&x->out, f);
	if (ferror(f) || fclose(f) != 0) {
		unlink(tmp);
		return failed("cannot write %s", tmp);
	}
	return EXIT_DONE;
}

/* Copies the file at path to stdout. */
static bool copy_out(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;
	bool ok = true;

	if (!f)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (fwrite(buf, 1, n, json_out ? json_out : stdout) != n)
			ok = false;
	if (ferror(f))
		ok = false;
	fclose(f);
	return ok && fflush(json_out ? json_out : stdout) == 0;
}

int cmd_import_patroni(const char *config_path, const struct args *a)
{
	struct imp *x = calloc(1, sizeof(*x));
	struct baton_config check;
	char tmp[4096], dir[4096], err[1024];
	const char *slash;
	int rc;

	(void)config_path;
	if (!x)
		return failed("out of memory");
	x->file = a->pos[0];
	config_init(&x->out);
	rc = load_yaml(x);
	if (rc != EXIT_DONE)
		goto cleanup;
	count_nodes(x, yaml_document_get_root_node(&x->doc), 0);
	if (x->visits <= IMP_MAX_VISITS) {
		x->visits = 0;
		walk(x, yaml_document_get_root_node(&x->doc), "", 0);
	}
	if (x->visits > IMP_MAX_VISITS) {
		fprintf(stderr,
		        "batonctl: import-patroni: %s: more than %d keys and values once its aliases are expanded "
		        "(an alias bomb?): nothing written\n",
		        x->file, IMP_MAX_VISITS);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	move_local_params(x);
	add_defaults(x);

	/* Beside the output (rename is atomic there), or in $TMPDIR for stdout. */
	if (a->output) {
		slash = strrchr(a->output, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == a->output)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - a->output), a->output);
	} else {
		snprintf(dir, sizeof(dir), "%s", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	}
	rc = write_tmp(x, dir, tmp, sizeof(tmp));
	if (rc != EXIT_DONE)
		goto cleanup;
	if (!config_load(tmp, &check, err, sizeof(err))) {
		size_t tlen = strlen(tmp);
		/* the loader names the temporary file: "TMP:LINE: why" or "TMP: why" */
		const char *why = strncmp(err, tmp, tlen) == 0 ? err + tlen : err;

		unlink(tmp);
		rc = failed("the baton configuration made from %s would not load, nothing written: %s%s", x->file,
		            why == err ? "" : "the generated file", why);
		goto cleanup;
	}
	config_free(&check);
	if (a->output) {
		if (rename(tmp, a->output) != 0) {
			rc = failed("cannot write %s: %s", a->output, strerror(errno));
			unlink(tmp);
			goto cleanup;
		}
	} else {
		bool ok = copy_out(tmp);

		unlink(tmp);
		if (!ok) {
			rc = failed("cannot write the configuration to stdout");
			goto cleanup;
		}
	}
	fprintf(stderr, "batonctl: import-patroni: %s: %zu key%s carried, %zu not carried%s%s\n", x->file, x->carried,
	        x->carried == 1 ? "" : "s", x->dropped, a->output ? "; wrote " : "", a->output ? a->output : "");
	rc = EXIT_DONE;
cleanup:
	yaml_document_delete(&x->doc);
	config_destroy(&x->out);
	free(x);
	return rc;
}
