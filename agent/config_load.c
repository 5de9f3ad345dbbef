/*
 * config_load.c - the loader: the node's libconfig file into struct
 * baton_config, validated.
 *
 * The file's text (config_file.c reads it, refusing what libconfig would
 * mishandle) is parsed by libconfig; then the option table (config.c) is
 * walked:
 *
 *   - the unknown-key check: a key in the file is known if it is an option's
 *     path or a prefix (group) of one; the free-form groups of Postgres
 *     parameters only require GUC-like names; an unknown key gets a "did you
 *     mean" from the table;
 *   - parsing and validation, in table order, so defaults that derive from
 *     an earlier option (connect_address = listen, pgpass = data_dir.pgpass)
 *     see its final value;
 *   - the checks across options (the timing rule, code-running parameters
 *     in bootstrap.dcs), and config_free, which frees by the table too.
 *
 * Errors are one line, "FILE:LINE: KEY: problem (got VALUE)", and the first
 * one found stops the load: an operator fixes it and runs again. Secrets are
 * never echoed back.
 */
#include "agent/config.h"
#include "agent/config_internal.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg_conf.h"

/* True if path names a group some option lives in ("postgresql.authentication"). */
static bool is_known_group(const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strncmp(config_options[i].path, path, len) == 0 && config_options[i].path[len] == '.')
			return true;
	return false;
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

static void params_free(struct config_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
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
		const struct opt *o = &config_options[i];
		void *f = opt_field(cfg, o->off);

		switch (o->type) {
		case OPT_STRING:
			free(*(char **)f);
			break;
		case OPT_HOSTLIST:
		case OPT_STRLIST:
			strlist_free(*(char ***)f, *(size_t *)opt_field(cfg, o->count_off));
			break;
		case OPT_PARAMS:
		case OPT_TAGS:
			params_free(*(struct config_param **)f, *(size_t *)opt_field(cfg, o->count_off));
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

static void fail(const struct load_ctx *c, const config_setting_t *s, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void fail(const struct load_ctx *c, const config_setting_t *s, const char *key, const char *fmt, ...)
{
	char loc[512], msg[512];
	va_list ap;

	location(c, s, loc, sizeof(loc));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	config_set_err(c->err, c->errlen, "%s: %s: %s", loc, key, msg);
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
		config_format_number(config_setting_get_float(s), num, sizeof(num));
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
		const char *p = config_options[i].path;
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
		const char *leaf = strrchr(config_options[i].path, '.');

		if (leaf != NULL && strcmp(leaf + 1, name) == 0) {
			snprintf(buf, len, "%s", config_options[i].path);
			return true;
		}
	}
	return false;
}

/* Patroni keys baton does not support, and what to use instead: a file
 * written for Patroni gets this hint rather than "unknown key". Looked up
 * only after the option table, so a key that gains a row stops being
 * refused here. */
static const struct {
	const char *path;
	const char *hint;
} patroni_unsupported[] = {
	{ "etcd3", "baton speaks etcd's v3 API through the etcd group: use etcd = { hosts = [ \"host:port\" ]; }" },
	{ "kubernetes", "the only DCS is etcd (v3): use etcd.hosts" },
	{ "consul", "the only DCS is etcd (v3): use etcd.hosts" },
	{ "zookeeper", "the only DCS is etcd (v3): use etcd.hosts" },
	{ "exhibitor", "the only DCS is etcd (v3): use etcd.hosts" },
	{ "raft", "the only DCS is etcd (v3): use etcd.hosts" },
	{ "citus", "Citus clusters are not managed: run one baton cluster (scope) per Citus group" },
	{ "ctl",
	  "batonctl reads this same file: use restapi.cafile, restapi.client_certfile and restapi.client_keyfile" },
	{ "log.dir",
	  "baton logs to stderr (the journal under systemd): use the service manager's log files and rotation" },
	{ "log.file_num", "baton logs to stderr (the journal under systemd): use the service manager's log rotation" },
	{ "log.file_size", "baton logs to stderr (the journal under systemd): use the service manager's log rotation" },
	{ "log.format", "baton's log line format is fixed: use log.level" },
	{ "log.dateformat", "baton's log line format is fixed: use log.level" },
	{ "log.loggers", "there is one logger: use log.level" },
	{ "log.traceback_level", "there is one logger: use log.level" },
	{ "log.max_queue_size", "baton writes log lines synchronously: use log.level" },
	{ "restapi.http_extra_headers", "the REST API sends no extra headers: set them in the proxy in front of it" },
	{ "restapi.https_extra_headers", "the REST API sends no extra headers: set them in the proxy in front of it" },
	{ "restapi.allowlist_include_members", "not supported yet: list the members' addresses in restapi.allowlist" },
	{ "bootstrap.post_init", "use bootstrap.post_bootstrap (the same script, called the same way)" },
	{ "bootstrap.dcs.ignore_slots", "set it in the cluster's config key once it runs (PATCH /config or batonctl "
	                                "edit-config), as a JSON list of {name, type, database, plugin}" },
	{ "restapi.request_queue_size", "libmicrohttpd's queue is fixed: no setting replaces it" },
	{ "bootstrap.users", "create roles in bootstrap.post_bootstrap (Patroni 3 dropped this key too)" },
	{ "bootstrap.pg_hba", "use postgresql.pg_hba on every node" },
	{ "bootstrap.dcs.standby_cluster.archive_cleanup_command",
	  "not supported in a standby cluster: the other site's archive is cleaned there (pgbackrest expire)" },
	{ "bootstrap.dcs.standby_cluster.recovery_min_apply_delay",
	  "not supported: a delayed standby leader would lose the site switchover's wait for its last WAL" },
	{ "bootstrap.dcs.standby_cluster.create_replica_methods",
	  "the standby cluster's first member is a base backup of standby_cluster.host; use "
	  "postgresql.create_replica_methods for the others" },
	{ "bootstrap.dcs.master_start_timeout",
	  "the leader restarts a crashed primary at once: no setting replaces it" },
	{ "bootstrap.dcs.primary_start_timeout",
	  "the leader restarts a crashed primary at once: no setting replaces it" },
	{ "bootstrap.dcs.postgresql.use_pg_rewind", "use postgresql.use_pg_rewind in each node's own file" },
	{ "bootstrap.dcs.postgresql.pg_hba", "use postgresql.pg_hba in each node's own file" },
	{ "bootstrap.dcs.postgresql.recovery_conf",
	  "baton writes standby.signal and primary_conninfo itself: put restore_command in postgresql.parameters" },
	{ "postgresql.recovery_conf",
	  "baton writes standby.signal and primary_conninfo itself: put restore_command in postgresql.parameters" },
	{ "postgresql.config_dir", "postgresql.conf lives in the data directory: use postgresql.data_dir" },
	{ "postgresql.custom_conf", "use postgresql.parameters (baton writes postgresql.conf itself)" },
	{ "postgresql.bin_name", "use postgresql.bin_dir (the programs keep their names)" },
	{ "postgresql.use_unix_socket", "the agent connects through postgresql.socket_dir always" },
	{ "postgresql.use_unix_socket_repl", "replicas connect over TCP to the leader's postgresql.connect_address" },
	{ "postgresql.pre_promote", "use postgresql.callbacks.on_role_change (run after the promotion)" },
	{ "postgresql.before_stop", "use postgresql.callbacks.on_stop (run after Postgres stopped)" },
	{ "postgresql.callbacks.on_restart", "use postgresql.callbacks.on_start (run after every start)" },
	{ "postgresql.authentication.superuser.sslmode", "use postgresql.tls.cafile (every member connection is "
	                                                 "sslmode=verify-full)" },
	{ "postgresql.authentication.replication.sslmode", "use postgresql.tls.cafile (every member connection is "
	                                                   "sslmode=verify-full)" },
};

/* The hint for a Patroni key baton does not support, or NULL. */
static const char *patroni_hint(const char *path)
{
	for (size_t i = 0; i < sizeof(patroni_unsupported) / sizeof(patroni_unsupported[0]); i++)
		if (strcmp(patroni_unsupported[i].path, path) == 0)
			return patroni_unsupported[i].hint;
	return NULL;
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
		if (config_find_option(path) != NULL)
			continue; /* its type and value are checked with the option */
		if (is_known_group(path)) {
			/* Patroni's list form, read by load_initdb_list. */
			if (strcmp(path, "bootstrap.initdb") == 0 &&
			    (config_setting_is_list(s) || config_setting_is_array(s)))
				continue;
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
		if (patroni_hint(path) != NULL)
			fail(c, s, path, "%s is a Patroni key baton does not support: %s", path, patroni_hint(path));
		else if (suggest(prefix, name, hint, sizeof(hint)))
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

static bool load_param_value(const struct load_ctx *c, const config_setting_t *s, const char *key, char **out)
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
		config_format_number(config_setting_get_float(s), buf, sizeof(buf));
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
	struct config_param **list = opt_field(c->cfg, o->off);
	size_t *count = opt_field(c->cfg, o->count_off);
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
		if (!config_check_one_line(p->value, why, sizeof(why))) {
			fail(c, e, key, "%s", why);
			return false;
		}
	}
	return true;
}

/* A custom tag's name: [A-Za-z0-9_.-]{1,63} (what members publish). */
static bool is_tag_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || *p == '-'))
			return false;
	return true;
}

/* Writes s as a JSON string literal ("..." with \" and \\ escaped) into
 * out: false if it does not fit. The value passed config_check_one_line,
 * so nothing else needs escaping (and the text reads back in libconfig). */
static bool json_string_literal(const char *s, char *out, size_t len)
{
	size_t j = 0;

	if (len < 3)
		return false;
	out[j++] = '"';
	for (const char *p = s; *p != '\0'; p++) {
		if (j + 3 >= len)
			return false;
		if (*p == '"' || *p == '\\')
			out[j++] = '\\';
		out[j++] = *p;
	}
	out[j++] = '"';
	out[j] = '\0';
	return true;
}

/* The keys of the tags group that no row of the table has: custom tags,
 * with Patroni's meaning (any name, a scalar value). A name within two
 * edits of a tag the agent interprets is refused: "nofailvoer = true"
 * must not silently leave a member promotable. */
static bool load_tags(const struct load_ctx *c, const struct opt *o, const config_setting_t *s)
{
	struct config_param **list = opt_field(c->cfg, o->off);
	size_t *count = opt_field(c->cfg, o->count_off);
	int n = config_setting_length(s);
	size_t plen = strlen(o->path), json_len = 2;
	char why[160], got[160];

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
		struct config_param *p;
		char key[256], buf[1100];

		snprintf(key, sizeof(key), "%s.%s", o->path, name);
		if (config_find_option(key) != NULL)
			continue; /* a tag the agent interprets: its own row checks it */
		if (!is_tag_name(name)) {
			fail(c, e, key, "not a tag name, expected [A-Za-z0-9_.-]{1,63}");
			return false;
		}
		for (size_t k = 0; k < N_OPTIONS; k++) {
			const char *q = config_options[k].path;

			if (strncmp(q, o->path, plen) == 0 && q[plen] == '.' &&
			    edit_distance(name, q + plen + 1) <= 2) {
				fail(c, e, key,
				     "unknown tag too close to %s (did you mean it?); give a custom tag a more distinct "
				     "name",
				     q);
				return false;
			}
		}
		switch (config_setting_type(e)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
		case CONFIG_TYPE_FLOAT:
		case CONFIG_TYPE_BOOL:
			describe(e, false, buf, sizeof(buf));
			if (config_setting_type(e) == CONFIG_TYPE_INT64)
				buf[strcspn(buf, "L")] = '\0'; /* JSON has no L suffix */
			break;
		case CONFIG_TYPE_STRING:
			if (!config_check_one_line(config_setting_get_string(e), why, sizeof(why))) {
				fail(c, e, key, "%s", why);
				return false;
			}
			if (!json_string_literal(config_setting_get_string(e), buf, sizeof(buf)) || strlen(buf) > 256) {
				fail(c, e, key, "a tag value may be at most 254 characters");
				return false;
			}
			break;
		default:
			describe(e, false, got, sizeof(got));
			fail(c, e, key, "a tag is a string, number or boolean (got %s)", got);
			return false;
		}
		/* {"name":value,...} must fit the member key's room for them. */
		json_len += strlen(name) + strlen(buf) + 4;
		if (json_len > CONFIG_TAGS_JSON_MAX) {
			fail(c, e, key, "the custom tags take more than %d bytes as JSON: fewer or shorter ones",
			     CONFIG_TAGS_JSON_MAX);
			return false;
		}
		p = &(*list)[(*count)++];
		p->name = strdup(name);
		p->value = strdup(buf);
		if (p->name == NULL || p->value == NULL) {
			fail(c, e, key, "out of memory");
			return false;
		}
	}
	return true;
}

static bool load_list(const struct load_ctx *c, const struct opt *o, const config_setting_t *s)
{
	char ***list = opt_field(c->cfg, o->off);
	size_t *count = opt_field(c->cfg, o->count_off);
	char got[160], why[160];
	int n;

	if (config_setting_is_group(s) && strcmp(o->path, "bootstrap.dcs.slots") == 0) {
		fail(c, s, o->path,
		     "Patroni's form { NAME = { type = ...; }; } is taken by the cluster's config key only (PATCH "
		     "/config, batonctl edit-config, where logical slots go): list physical slot names here");
		return false;
	}
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
			/* A secret list (poolers) is not echoed: it may hold a password. */
			describe(e, (o->flags & OPT_SECRET) != 0, got, sizeof(got));
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

static bool check_range(const struct load_ctx *c, const struct opt *o, const config_setting_t *s, double v,
                        const char *shown)
{
	char lim[32];
	bool low = (o->flags & OPT_MIN_EXCL) ? !(v > o->min) : !(v >= o->min);

	if (low) {
		config_format_number(o->min, lim, sizeof(lim));
		fail(c, s, o->path, "must be %s %s (got %s)", (o->flags & OPT_MIN_EXCL) ? ">" : ">=", lim, shown);
		return false;
	}
	if (!(v <= o->max)) {
		config_format_number(o->max, lim, sizeof(lim));
		fail(c, s, o->path, "must be <= %s (got %s)", lim, shown);
		return false;
	}
	return true;
}

/* Parses a default written as text in the table into the field. */
static bool apply_default(const struct load_ctx *c, const struct opt *o)
{
	void *f = opt_field(c->cfg, o->off);

	switch (o->type) {
	case OPT_STRING:
		if (o->def_from != NULL) {
			const struct opt *from = config_find_option(o->def_from);
			const char *base = from != NULL ? *(char **)opt_field(c->cfg, from->off) : NULL;

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
	case OPT_TAGS:
		return true; /* empty */
	}
	return true;
}

/* Loads one option from its setting s (NULL: not in the file). */
static bool load_option(const struct load_ctx *c, config_t *cf, const struct opt *o, const config_setting_t *s)
{
	void *f = opt_field(c->cfg, o->off);
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
		/* synchronous_mode as Patroni writes it: "quorum" turns on quorum
		 * commit too (config_load, after the table). */
		if (type == CONFIG_TYPE_STRING && (o->flags & OPT_SYNC_MODE)) {
			const char *v = config_setting_get_string(s);

			if (strcmp(v, "on") == 0 || strcmp(v, "quorum") == 0 || strcmp(v, "off") == 0) {
				*(bool *)f = strcmp(v, "off") != 0;
				return true;
			}
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected true, false, \"on\", \"off\" or \"quorum\" (got %s)", got);
			return false;
		}
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
	case OPT_TAGS:
		if (!config_setting_is_group(s)) {
			describe(s, false, got, sizeof(got));
			fail(c, s, o->path, "expected a group { name = value; ... } (got %s)", got);
			return false;
		}
		return load_tags(c, o, s);
	}
	return true;
}

/* Appends a copy of v to the strlist option at path. */
static bool strlist_append(const struct load_ctx *c, const config_setting_t *s, const char *path, const char *v)
{
	const struct opt *o = config_find_option(path);
	char ***list = opt_field(c->cfg, o->off), **grown;
	size_t *count = opt_field(c->cfg, o->count_off);

	grown = realloc(*list, (*count + 1) * sizeof(**list));
	if (grown == NULL) {
		fail(c, s, path, "out of memory");
		return false;
	}
	*list = grown;
	grown[*count] = strdup(v);
	if (grown[*count] == NULL) {
		fail(c, s, path, "out of memory");
		return false;
	}
	(*count)++;
	return true;
}

/* Replaces the string option at path with v, checked by its row. */
static bool set_string(const struct load_ctx *c, const config_setting_t *s, const char *key, const char *path,
                       const char *v)
{
	const struct opt *o = config_find_option(path);
	char **f = opt_field(c->cfg, o->off), *copy, why[300];

	if (o->check != NULL && !o->check(v, why, sizeof(why))) {
		fail(c, s, key, "%s (got \"%.100s\")", why, v);
		return false;
	}
	copy = strdup(v);
	if (copy == NULL) {
		fail(c, s, key, "out of memory");
		return false;
	}
	free(*f);
	*f = copy;
	return true;
}

/*
 * bootstrap.method = "pgbackrest" and its block: the command is required,
 * at most one recovery target, and the recovery needs a restore_command
 * (the block's, postgresql.parameters', or the restore's own with
 * keep_existing_recovery_conf, which takes no target of baton's).
 */
static bool check_bootstrap_pgbackrest(const struct load_ctx *c, const config_t *cf, const struct baton_config *out)
{
	const char *names[] = { "recovery_target_time", "recovery_target_lsn", "recovery_target_name",
		                "recovery_target_xid" };
	const char *vals[] = { out->bootstrap_pgbackrest.recovery_target_time,
		               out->bootstrap_pgbackrest.recovery_target_lsn,
		               out->bootstrap_pgbackrest.recovery_target_name,
		               out->bootstrap_pgbackrest.recovery_target_xid };
	const char *first = NULL;
	bool restore = out->bootstrap_pgbackrest.restore_command != NULL;
	char key[96];

	if (strcmp(out->bootstrap_method, "pgbackrest") != 0)
		return true;
	if (out->bootstrap_pgbackrest.command == NULL) {
		fail(c, config_lookup(cf, "bootstrap.method"), "bootstrap.method",
		     "\"pgbackrest\" needs bootstrap.pgbackrest.command (e.g. \"/usr/bin/pgbackrest --stanza=main "
		     "restore\" with no_params = true)");
		return false;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (vals[i] == NULL)
			continue;
		snprintf(key, sizeof(key), "bootstrap.pgbackrest.%s", names[i]);
		if (first != NULL) {
			fail(c, config_lookup(cf, key), key,
			     "= \"%s\": only one recovery target may be set (%s is set too)", vals[i], first);
			return false;
		}
		if (out->bootstrap_pgbackrest.keep_existing_recovery_conf) {
			fail(c, config_lookup(cf, key), key,
			     "= \"%s\" contradicts keep_existing_recovery_conf = true (the restore's own target rules: "
			     "give it to the restore command, e.g. --type=time --target=...)",
			     vals[i]);
			return false;
		}
		first = names[i];
	}
	if (out->bootstrap_pgbackrest.keep_existing_recovery_conf && restore) {
		fail(c, config_lookup(cf, "bootstrap.pgbackrest.restore_command"),
		     "bootstrap.pgbackrest.restore_command",
		     "contradicts keep_existing_recovery_conf = true (the restore's own restore_command rules)");
		return false;
	}
	for (size_t i = 0; i < out->postgresql.n_params; i++)
		restore = restore || (strcmp(out->postgresql.params[i].name, "restore_command") == 0 &&
		                      out->postgresql.params[i].value[0]);
	if (!restore && !out->bootstrap_pgbackrest.keep_existing_recovery_conf) {
		fail(c, config_lookup(cf, "bootstrap.pgbackrest"), "bootstrap.pgbackrest",
		     "the recovery after the restore needs a restore_command: set bootstrap.pgbackrest.restore_command "
		     "(e.g. \"/usr/bin/pgbackrest --stanza=main archive-get %%f \\\"%%p\\\"\"), "
		     "postgresql.parameters.restore_command, or keep_existing_recovery_conf = true");
		return false;
	}
	return true;
}

/*
 * bootstrap.initdb as Patroni writes it: a list whose elements are option
 * names ("data-checksums") or one-setting groups ({ encoding = "UTF8"; }),
 * translated to `--name` and `--name=value`. encoding, locale and
 * data-checksums go to their own keys; the rest to bootstrap.initdb.options.
 * As in Patroni, data checksums are off unless the list names them. The
 * table has set the defaults already (nothing of the group form is there).
 */
static bool load_initdb_list(const struct load_ctx *c, config_t *cf)
{
	const config_setting_t *l = config_lookup(cf, "bootstrap.initdb");
	char why[300], got[160];
	int n;

	if (l == NULL || !(config_setting_is_list(l) || config_setting_is_array(l)))
		return true;
	c->cfg->bootstrap_initdb.data_checksums = false;
	n = config_setting_length(l);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *name;
		char key[64], opt[300], value[256];

		snprintf(key, sizeof(key), "bootstrap.initdb[%d]", i);
		if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			name = config_setting_get_string(e);
			if (strcmp(name, "data-checksums") == 0 || strcmp(name, "k") == 0) {
				c->cfg->bootstrap_initdb.data_checksums = true;
				continue;
			}
			snprintf(opt, sizeof(opt), "%s", name);
		} else if (config_setting_is_group(e) && config_setting_length(e) == 1) {
			const config_setting_t *kv = config_setting_get_elem(e, 0);
			char *text = NULL;

			name = config_setting_name(kv);
			if (config_setting_is_aggregate(kv)) {
				describe(kv, false, got, sizeof(got));
				fail(c, kv, key, "%s: expected a string, number or boolean (got %s)", name, got);
				return false;
			}
			if (!load_param_value(c, kv, key, &text))
				return false;
			snprintf(value, sizeof(value), "%s", text);
			free(text);
			if (strcmp(name, "encoding") == 0 || strcmp(name, "E") == 0) {
				if (!set_string(c, kv, key, "bootstrap.initdb.encoding", value))
					return false;
				continue;
			}
			if (strcmp(name, "locale") == 0) {
				if (!set_string(c, kv, key, "bootstrap.initdb.locale", value))
					return false;
				continue;
			}
			/* "wal_segsize" is taken for "wal-segsize" too. */
			snprintf(opt, sizeof(opt), "%s=%s", name, value);
			for (char *p = opt; *p != '=' && *p != '\0'; p++)
				if (*p == '_')
					*p = '-';
		} else {
			describe(e, false, got, sizeof(got));
			fail(c, e, key,
			     "expected an option name (\"data-checksums\") or a group of one option "
			     "({ encoding = \"UTF8\"; }) (got %s)",
			     got);
			return false;
		}
		if (!config_find_option("bootstrap.initdb.options")->check(opt, why, sizeof(why))) {
			fail(c, e, key, "%s (got \"%.100s\")", why, opt);
			return false;
		}
		if (!strlist_append(c, e, "bootstrap.initdb.options", opt))
			return false;
	}
	return true;
}

static bool split_address(const struct load_ctx *c, config_t *cf, const char *key, const char *value, char **host,
                          int *port)
{
	if (config_split_hostport(value, host, port))
		return true;
	fail(c, config_lookup(cf, key), key, "expected \"host:port\" (got \"%s\")", value);
	return false;
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
	config_set_err(err, errlen, "%s", "");
	if (path == NULL) {
		config_set_err(err, errlen, "no configuration file given");
		return false;
	}

	text = config_read_text(path, err, errlen);
	if (text == NULL)
		return false;
	config_init(&cf);
	if (!config_read_string(&cf, text)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			config_set_err(err, errlen, "%s: cannot read the file", path);
		else
			config_set_err(err, errlen, "%s:%d: syntax error: %s",
			               config_error_file(&cf) != NULL ? config_error_file(&cf) : path,
			               config_error_line(&cf), config_error_text(&cf));
		goto cleanup;
	}

	out->path = strdup(path);
	if (out->path == NULL) {
		config_set_err(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	if (!check_keys(&c, config_root_setting(&cf), ""))
		goto cleanup;
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (!load_option(&c, &cf, &config_options[i], config_lookup(&cf, config_options[i].path)))
			goto cleanup;

	if (!load_initdb_list(&c, &cf))
		goto cleanup;

	/* synchronous_mode = "quorum" (Patroni 4) is baton's synchronous_quorum. */
	{
		const config_setting_t *sm = config_lookup(&cf, "bootstrap.dcs.synchronous_mode");
		const config_setting_t *sq = config_lookup(&cf, "bootstrap.dcs.synchronous_quorum");

		if (sm != NULL && config_setting_type(sm) == CONFIG_TYPE_STRING &&
		    strcmp(config_setting_get_string(sm), "quorum") == 0) {
			if (sq != NULL && !out->bootstrap_dcs.synchronous_quorum) {
				fail(&c, sq, "bootstrap.dcs.synchronous_quorum",
				     "false contradicts synchronous_mode = \"quorum\" (set one of them)");
				goto cleanup;
			}
			out->bootstrap_dcs.synchronous_quorum = true;
		}
	}

	if (!split_address(&c, &cf, "postgresql.listen", out->postgresql.listen, &out->postgresql.listen_host,
	                   &out->postgresql.listen_port) ||
	    !split_address(&c, &cf, "postgresql.connect_address", out->postgresql.connect_address,
	                   &out->postgresql.connect_host, &out->postgresql.connect_port))
		goto cleanup;

	/* Postgres TLS is all or nothing: a node that verifies its peers must
	 * also serve TLS itself, or its replicas could not verify it. */
	if ((out->postgresql.tls_cafile != NULL) != (out->postgresql.tls_certfile != NULL)) {
		const char *have = out->postgresql.tls_cafile ? "postgresql.tls.cafile" : "postgresql.tls.certfile";

		fail(&c, config_lookup(&cf, have), have,
		     "needs %s too (Postgres TLS between members needs "
		     "certfile, keyfile and cafile)",
		     out->postgresql.tls_cafile ? "postgresql.tls.certfile and keyfile" : "postgresql.tls.cafile");
		goto cleanup;
	}

	/* Replica creation methods: each once, and pgbackrest needs its command. */
	for (size_t i = 0; i < out->postgresql.n_create_replica_methods; i++) {
		const char *m = out->postgresql.create_replica_methods[i];
		const char *key = "postgresql.create_replica_methods";

		for (size_t j = 0; j < i; j++)
			if (strcmp(m, out->postgresql.create_replica_methods[j]) == 0) {
				fail(&c, config_lookup(&cf, key), key, "method \"%s\" listed twice", m);
				goto cleanup;
			}
		if (strcmp(m, "pgbackrest") == 0 && out->postgresql.pgbackrest.command == NULL) {
			fail(&c, config_lookup(&cf, key), key,
			     "method \"pgbackrest\" needs postgresql.pgbackrest.command (e.g. \"/usr/bin/pgbackrest "
			     "--stanza=main --delta restore --type=standby\")");
			goto cleanup;
		}
	}
	if (!check_bootstrap_pgbackrest(&c, &cf, out))
		goto cleanup;
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
		     "%s, so nodes take it only from their own file: set it in "
		     "postgresql.parameters (or list it in postgresql.allow_from_dcs on every node that may take it "
		     "from etcd)",
		     pg_conf_local_only_why(name) + 3);
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
