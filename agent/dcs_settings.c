/*
 * dcs_settings.c - the config key (see dcs.h): the dynamic settings every
 * member shares (ttl, loop_wait, synchronous mode, slots, Postgres
 * parameters) to and from JSON, each value's type and range checked, and
 * the settings' copy, release and filtering. Apart from dcs.c because the
 * settings are a concern of their own, larger than any other key.
 */
#include "agent/dcs.h"
#include "agent/dcs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/jsonf.h"
#include "pg/pg_conf.h"

/* The dynamic settings' ranges (config.h; the timing rule is config_check_timing's). */
#define DCS_TTL_MIN CONFIG_TTL_MIN
#define DCS_TTL_MAX CONFIG_TTL_MAX
#define DCS_WAIT_MAX CONFIG_WAIT_MAX

#define DCS_DEFAULT_TTL 5.0
#define DCS_DEFAULT_LOOP_WAIT 1.0
#define DCS_DEFAULT_RETRY_TIMEOUT 2.0
#define DCS_DEFAULT_MAX_LAG 1048576

/* "slots": baton's array of physical slot names, or, once there is a
 * logical slot, Patroni's object { NAME: {"type": "physical"} | {"type":
 * "logical", "database": DB, "plugin": P} }. New reference or NULL. */
static json_t *slots_json(const struct dcs_settings *d)
{
	json_t *slots;

	if (d->n_logical_slots == 0) {
		slots = json_array();
		for (size_t i = 0; slots && i < d->n_slots; i++)
			if (!d->slots[i] || json_array_append_new(slots, json_string(d->slots[i])) != 0) {
				json_decref(slots);
				slots = NULL;
			}
		return slots;
	}
	slots = json_object();
	for (size_t i = 0; slots && i < d->n_slots; i++)
		if (!d->slots[i] ||
		    json_object_set_new(slots, d->slots[i], json_pack("{s:s}", "type", "physical")) != 0) {
			json_decref(slots);
			slots = NULL;
		}
	for (size_t i = 0; slots && i < d->n_logical_slots; i++) {
		const struct dcs_logical_slot *l = &d->logical_slots[i];

		if (!l->name || !l->database || !l->plugin ||
		    json_object_set_new(slots, l->name,
		                        json_pack("{s:s, s:s, s:s}", "type", "logical", "database", l->database,
		                                  "plugin", l->plugin)) != 0) {
			json_decref(slots);
			slots = NULL;
		}
	}
	return slots;
}

char *dcs_config_json(const struct dcs_settings *d)
{
	json_t *root = NULL, *params = NULL, *slots = NULL;

	params = json_object();
	if (!params)
		return NULL;
	for (size_t i = 0; i < d->n_pg_params; i++) {
		const struct config_param *p = &d->pg_params[i];

		if (!p->name || !p->value || json_object_set_new(params, p->name, json_string(p->value)) != 0) {
			json_decref(params);
			return NULL;
		}
	}
	slots = slots_json(d);
	if (!slots) {
		json_decref(params);
		return NULL;
	}
	/* "o" steals params and slots, even when packing fails. */
	root = json_pack("{s:o, s:o, s:o, s:I, s:b, s:b, s:b, s:b, s:I, s:b, s:o, s:{s:b, s:o}}", "ttl",
	                 dcs_json_num(d->ttl), "loop_wait", dcs_json_num(d->loop_wait), "retry_timeout",
	                 dcs_json_num(d->retry_timeout), "maximum_lag_on_failover",
	                 (json_int_t)d->maximum_lag_on_failover, "pause", (int)d->pause, "failsafe_mode",
	                 (int)d->failsafe_mode, "synchronous_mode", (int)d->synchronous_mode, "synchronous_mode_strict",
	                 (int)d->synchronous_mode_strict, "synchronous_node_count",
	                 (json_int_t)d->synchronous_node_count, "synchronous_quorum", (int)d->synchronous_quorum,
	                 "slots", slots, "postgresql", "use_slots", (int)d->use_slots, "parameters", params);
	if (root && (json_object_set_new(root, "check_timeline", json_boolean(d->check_timeline)) != 0 ||
	             json_object_set_new(root, "maximum_lag_on_syncnode",
	                                 json_integer((json_int_t)d->maximum_lag_on_syncnode)) != 0)) {
		json_decref(root);
		return NULL;
	}
	if (root && d->standby_host) {
		json_t *sc = json_pack("{s:s, s:I}", "host", d->standby_host, "port", (json_int_t)d->standby_port);

		if (!sc ||
		    (d->standby_slot && json_object_set_new(sc, "primary_slot_name", json_string(d->standby_slot))) ||
		    (d->standby_restore_command &&
		     json_object_set_new(sc, "restore_command", json_string(d->standby_restore_command))) ||
		    json_object_set_new(root, "standby_cluster", sc) != 0) {
			json_decref(root);
			return NULL;
		}
	}
	if (root && d->n_ignore_slots > 0) {
		json_t *ign = json_array();

		for (size_t i = 0; ign && i < d->n_ignore_slots; i++) {
			const struct dcs_slot_matcher *m = &d->ignore_slots[i];
			json_t *o = json_object();

			if (!o || (m->name && json_object_set_new(o, "name", json_string(m->name)) != 0) ||
			    (m->type && json_object_set_new(o, "type", json_string(m->type)) != 0) ||
			    (m->database && json_object_set_new(o, "database", json_string(m->database)) != 0) ||
			    (m->plugin && json_object_set_new(o, "plugin", json_string(m->plugin)) != 0) ||
			    json_array_append_new(ign, o) != 0) {
				json_decref(ign);
				ign = NULL;
			}
		}
		if (!ign || json_object_set_new(root, "ignore_slots", ign) != 0) {
			json_decref(root);
			return NULL;
		}
	}
	return dcs_dump_and_free(root);
}

/* A slot name baton can keep: 1 to 63 of a-z, 0-9 and _. */
static bool slot_name_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* The logical decoding output plugins a permanent slot may name. */
#define LOGICAL_PLUGINS "pgoutput, test_decoding, wal2json, decoderbufs"
static bool logical_plugin_known(const char *p)
{
	return strcmp(p, "pgoutput") == 0 || strcmp(p, "test_decoding") == 0 || strcmp(p, "wal2json") == 0 ||
	       strcmp(p, "decoderbufs") == 0;
}

/* A database name as baton passes it in a conninfo: letters, digits, '_'
 * and '-', 1 to 63. */
static bool db_name_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == len;
}

/* A string member of o, or NULL when absent; false (err) when present but
 * not a string, or when check refuses it. */
static bool opt_string(const json_t *o, const char *key, const char *where, bool (*check)(const char *),
                       const char **out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v)
		return true;
	if (!json_is_string(v) || (check && !check(json_string_value(v)))) {
		jsonf_set_err(err, errlen, "%s.%s: expected %s", where, key,
		              check == slot_name_valid ? "1 to 63 of a-z, 0-9 and _"
		              : check == db_name_valid ? "a database name of 1 to 63 letters, digits, _ and -"
		                                       : "a string");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* "slots" in Patroni's object form: physical names to out->slots, logical
 * ones (database and plugin required) to out->logical_slots. */
static bool parse_slots_object(const json_t *obj, struct dcs_settings *out, char *err, size_t errlen)
{
	size_t n = json_object_size(obj);
	const char *name;
	const json_t *v;

	if (n > 64) {
		jsonf_set_err(err, errlen, "slots: more than 64");
		return false;
	}
	if (n == 0)
		return true;
	out->slots = calloc(n, sizeof(*out->slots));
	out->logical_slots = calloc(n, sizeof(*out->logical_slots));
	if (!out->slots || !out->logical_slots) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	json_object_foreach((json_t *)obj, name, v) {
		const char *type, *db, *plugin;
		char where[96];

		snprintf(where, sizeof(where), "slots.%.63s", name);
		if (!slot_name_valid(name)) {
			jsonf_set_err(err, errlen, "%s: a slot name is 1 to 63 of a-z, 0-9 and _", where);
			return false;
		}
		/* (null: a physical slot, as Patroni reads "name:" with no value) */
		if (!json_is_object(v) && !json_is_null(v)) {
			jsonf_set_err(err, errlen,
			              "%s: expected an object {\"type\": \"physical\" or \"logical\", ...}", where);
			return false;
		}
		if (!opt_string(v, "type", where, NULL, &type, err, errlen) ||
		    !opt_string(v, "database", where, db_name_valid, &db, err, errlen) ||
		    !opt_string(v, "plugin", where, slot_name_valid, &plugin, err, errlen))
			return false;
		if (type == NULL || strcmp(type, "physical") == 0) {
			if (db || plugin) {
				jsonf_set_err(err, errlen,
				              "%s: a physical slot has no database or plugin (type \"logical\"?)",
				              where);
				return false;
			}
			out->slots[out->n_slots] = strdup(name);
			if (!out->slots[out->n_slots]) {
				jsonf_set_err(err, errlen, "out of memory");
				return false;
			}
			out->n_slots++;
		} else if (strcmp(type, "logical") == 0) {
			struct dcs_logical_slot *l = &out->logical_slots[out->n_logical_slots];

			if (!db || !plugin) {
				jsonf_set_err(err, errlen, "%s: a logical slot needs \"database\" and \"plugin\"",
				              where);
				return false;
			}
			/* Creating the slot loads the plugin's library into the
			 * agent's superuser session: only known output plugins,
			 * not any library an etcd writer names. */
			if (!logical_plugin_known(plugin)) {
				jsonf_set_err(err, errlen,
				              "%s.plugin: \"%s\" is not an output plugin baton creates slots for (%s)",
				              where, plugin, LOGICAL_PLUGINS);
				return false;
			}
			out->n_logical_slots++; /* counted now so dcs_settings_free releases it */
			l->name = strdup(name);
			l->database = strdup(db);
			l->plugin = strdup(plugin);
			if (!l->name || !l->database || !l->plugin) {
				jsonf_set_err(err, errlen, "out of memory");
				return false;
			}
		} else {
			jsonf_set_err(err, errlen, "%s.type: expected \"physical\" or \"logical\"", where);
			return false;
		}
	}
	return true;
}

/* "ignore_slots": [{name, type, database, plugin}, ...], each with at least
 * one of them; a slot matching every field given is left alone. */
static bool parse_ignore_slots(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(root, "ignore_slots");
	size_t n;

	if (!arr || json_is_null(arr))
		return true;
	if (!json_is_array(arr)) {
		jsonf_set_err(err, errlen, "ignore_slots: expected an array of {name, type, database, plugin}");
		return false;
	}
	n = json_array_size(arr);
	if (n > 64) {
		jsonf_set_err(err, errlen, "ignore_slots: more than 64");
		return false;
	}
	if (n == 0)
		return true;
	out->ignore_slots = calloc(n, sizeof(*out->ignore_slots));
	if (!out->ignore_slots) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(arr, i), *v;
		struct dcs_slot_matcher *d = &out->ignore_slots[i];
		const char *f[4], *key;
		char where[32];

		snprintf(where, sizeof(where), "ignore_slots[%zu]", i);
		if (!json_is_object(m) || json_object_size(m) == 0) {
			jsonf_set_err(err, errlen, "%s: expected an object with name, type, database or plugin", where);
			return false;
		}
		json_object_foreach((json_t *)m, key, v) {
			if (strcmp(key, "name") && strcmp(key, "type") && strcmp(key, "database") &&
			    strcmp(key, "plugin")) {
				jsonf_set_err(err, errlen,
				              "%s: unknown key \"%.32s\" (known: name, type, database, plugin)", where,
				              key);
				return false;
			}
		}
		if (!opt_string(m, "name", where, slot_name_valid, &f[0], err, errlen) ||
		    !opt_string(m, "type", where, NULL, &f[1], err, errlen) ||
		    !opt_string(m, "database", where, db_name_valid, &f[2], err, errlen) ||
		    !opt_string(m, "plugin", where, slot_name_valid, &f[3], err, errlen))
			return false;
		if (f[1] && strcmp(f[1], "physical") != 0 && strcmp(f[1], "logical") != 0) {
			jsonf_set_err(err, errlen, "%s.type: expected \"physical\" or \"logical\"", where);
			return false;
		}
		out->n_ignore_slots = i + 1;
		if ((f[0] && !(d->name = strdup(f[0]))) || (f[1] && !(d->type = strdup(f[1]))) ||
		    (f[2] && !(d->database = strdup(f[2]))) || (f[3] && !(d->plugin = strdup(f[3])))) {
			jsonf_set_err(err, errlen, "out of memory");
			return false;
		}
	}
	return true;
}

/* "slots": an array of physical slot names (a-z, 0-9, _), or Patroni's
 * object form (parse_slots_object). */
static bool parse_slots(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(root, "slots");
	size_t n;

	if (!arr || json_is_null(arr))
		return true;
	if (json_is_object(arr))
		return parse_slots_object(arr, out, err, errlen);
	if (!json_is_array(arr)) {
		jsonf_set_err(err, errlen,
		              "slots: expected an array of slot names, or an object {NAME: {\"type\": ...}}");
		return false;
	}
	n = json_array_size(arr);
	if (n > 64) {
		jsonf_set_err(err, errlen, "slots: more than 64");
		return false;
	}
	if (n == 0)
		return true;
	out->slots = calloc(n, sizeof(*out->slots));
	if (!out->slots) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		size_t len = strlen(s);

		if (len == 0 || len > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
			jsonf_set_err(err, errlen, "slots[%zu]: a slot name is 1 to 63 of a-z, 0-9 and _", i);
			return false;
		}
		out->slots[i] = strdup(s);
		if (!out->slots[i]) {
			jsonf_set_err(err, errlen, "out of memory");
			return false;
		}
		out->n_slots = i + 1;
	}
	return true;
}

/* A Postgres parameter name: letters, digits, '_' and '.' (custom GUCs). */
static bool param_name_ok(const char *s)
{
	if (!*s || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

/* The text a parameter's JSON value stands for (malloc'd), NULL + err if the
 * value is not a scalar or holds characters postgresql.conf cannot carry. */
static char *param_value(const char *name, const json_t *v, char *err, size_t errlen)
{
	char buf[64];
	const char *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		if (strlen(s) != json_string_length(v)) {
			jsonf_set_err(err, errlen, "postgresql.parameters.%s: contains a NUL character", name);
			return NULL;
		}
		for (const unsigned char *c = (const unsigned char *)s; *c; c++)
			if (*c == '\n' || *c == '\r') {
				jsonf_set_err(err, errlen, "postgresql.parameters.%s: contains a line break", name);
				return NULL;
			} else if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
				jsonf_set_err(err, errlen,
				              "postgresql.parameters.%s: contains the control character 0x%02x", name,
				              *c);
				return NULL;
			}
		return strdup(s);
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("on");
	case JSON_FALSE:
		return strdup("off");
	default:
		jsonf_set_err(err, errlen, "postgresql.parameters.%s: expected a string, number or boolean", name);
		return NULL;
	}
}

/* Fills out->pg_params from the "postgresql" member of root (if any). */
static bool parse_pg_params(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *pg = json_object_get(root, "postgresql"), *params, *v;
	const char *name;

	if (!pg)
		return true;
	if (!json_is_object(pg)) {
		jsonf_set_err(err, errlen, "postgresql: expected an object");
		return false;
	}
	if (!jsonf_bool(pg, "use_slots", JSONF_OPTIONAL, &out->use_slots, err, errlen)) {
		jsonf_set_err(err, errlen, "postgresql.use_slots: expected true or false");
		return false;
	}
	params = json_object_get(pg, "parameters");
	if (!params)
		return true;
	if (!json_is_object(params)) {
		jsonf_set_err(err, errlen, "postgresql.parameters: expected an object");
		return false;
	}
	if (json_object_size(params) == 0)
		return true;
	out->pg_params = calloc(json_object_size(params), sizeof(*out->pg_params));
	if (!out->pg_params) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	json_object_foreach((json_t *)params, name, v) {
		struct config_param *p = &out->pg_params[out->n_pg_params];

		if (!param_name_ok(name)) {
			jsonf_set_err(err, errlen, "postgresql.parameters: invalid parameter name \"%.64s\"", name);
			return false;
		}
		p->value = param_value(name, v, err, errlen);
		if (!p->value)
			return false;
		p->name = strdup(name);
		out->n_pg_params++; /* counted now so dcs_settings_free releases value */
		if (!p->name) {
			jsonf_set_err(err, errlen, "out of memory");
			return false;
		}
	}
	return true;
}

/* "synchronous_mode": true/false, or a string as Patroni writes it ("on",
 * "off", "quorum"); "quorum" is synchronous_quorum = true, whatever
 * "synchronous_quorum" says (PATCH /config merges into a document that
 * always holds it). */
static bool parse_sync_mode(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(root, "synchronous_mode");
	bool quorum = false;

	if (v != NULL && json_is_string(v)) {
		const char *s = json_string_value(v);

		if (strcmp(s, "quorum") == 0)
			quorum = true;
		else if (strcmp(s, "on") != 0 && strcmp(s, "off") != 0) {
			jsonf_set_err(err, errlen,
			              "synchronous_mode: expected true, false, \"on\", \"off\" or \"quorum\"");
			return false;
		}
		out->synchronous_mode = strcmp(s, "off") != 0;
	} else if (!jsonf_bool(root, "synchronous_mode", JSONF_OPTIONAL, &out->synchronous_mode, err, errlen))
		return false;
	if (!jsonf_bool(root, "synchronous_quorum", JSONF_OPTIONAL, &out->synchronous_quorum, err, errlen))
		return false;
	if (quorum)
		out->synchronous_quorum = true;
	return true;
}

/* "standby_cluster": absent or null (a normal cluster), or an object with
 * Patroni's keys: host (required), port, primary_slot_name, restore_command.
 * The keys baton does not carry out are refused by name, never ignored:
 * an operator who sets recovery_min_apply_delay must not believe it acts. */
static bool parse_standby_cluster(const json_t *root, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *sc = json_object_get(root, "standby_cluster"), *v;
	const char *key, *host, *slot, *restore;
	char why[160];
	json_int_t port = 5432;

	if (!sc || json_is_null(sc))
		return true;
	if (!json_is_object(sc)) {
		jsonf_set_err(err, errlen,
		              "standby_cluster: expected an object {host, port, primary_slot_name, "
		              "restore_command} or null");
		return false;
	}
	json_object_foreach((json_t *)sc, key, v) {
		if (strcmp(key, "archive_cleanup_command") == 0 || strcmp(key, "recovery_min_apply_delay") == 0 ||
		    strcmp(key, "create_replica_methods") == 0) {
			jsonf_set_err(err, errlen,
			              "standby_cluster.%s: not supported by baton (it follows host:port by streaming, "
			              "and restore_command; the first member is a base backup of host:port)",
			              key);
			return false;
		}
		if (strcmp(key, "host") && strcmp(key, "port") && strcmp(key, "primary_slot_name") &&
		    strcmp(key, "restore_command")) {
			jsonf_set_err(err, errlen,
			              "standby_cluster: unknown key \"%.32s\" (known: host, port, primary_slot_name, "
			              "restore_command)",
			              key);
			return false;
		}
	}
	if (!opt_string(sc, "host", "standby_cluster", NULL, &host, err, errlen) ||
	    !opt_string(sc, "primary_slot_name", "standby_cluster", slot_name_valid, &slot, err, errlen) ||
	    !opt_string(sc, "restore_command", "standby_cluster", NULL, &restore, err, errlen))
		return false;
	if (!host) {
		jsonf_set_err(err, errlen, "standby_cluster.host: required (the other site's primary)");
		return false;
	}
	if (!config_check_host(host, why, sizeof(why))) {
		jsonf_set_err(err, errlen, "standby_cluster.host: \"%.64s\" %s", host, why);
		return false;
	}
	/* Patroni writes the port as a number or a string. */
	v = json_object_get(sc, "port");
	if (v && json_is_string(v)) {
		char *end;
		long p = strtol(json_string_value(v), &end, 10);

		if (end == json_string_value(v) || *end || p < 1 || p > 65535) {
			jsonf_set_err(err, errlen, "standby_cluster.port: expected a port 1..65535");
			return false;
		}
		port = p;
	} else if (!jsonf_int(sc, "port", JSONF_OPTIONAL, 1, 65535, &port, err, errlen)) {
		jsonf_set_err(err, errlen, "standby_cluster.port: expected a port 1..65535");
		return false;
	}
	for (const unsigned char *c = (const unsigned char *)(restore ? restore : ""); *c; c++)
		if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
			jsonf_set_err(err, errlen,
			              "standby_cluster.restore_command: must be one line without control characters");
			return false;
		}
	out->standby_port = port;
	if (!(out->standby_host = strdup(host)) || (slot && !(out->standby_slot = strdup(slot))) ||
	    (restore && !(out->standby_restore_command = strdup(restore)))) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	return true;
}

void dcs_settings_default(struct dcs_settings *d)
{
	memset(d, 0, sizeof(*d));
	d->ttl = DCS_DEFAULT_TTL;
	d->loop_wait = DCS_DEFAULT_LOOP_WAIT;
	d->retry_timeout = DCS_DEFAULT_RETRY_TIMEOUT;
	d->maximum_lag_on_failover = DCS_DEFAULT_MAX_LAG;
	d->synchronous_node_count = 1;
	d->use_slots = true;
	d->maximum_lag_on_syncnode = -1;
	d->standby_port = 5432;
}

bool dcs_config_from_json(const char *json, struct dcs_settings *out, char *err, size_t errlen)
{
	const json_t *v;
	json_t *root;
	bool ok = false;

	dcs_settings_default(out);

	root = dcs_load_object(json, err, errlen);
	if (!root)
		return false;
	if (!jsonf_number(root, "ttl", JSONF_OPTIONAL, DCS_TTL_MIN, DCS_TTL_MAX, false, &out->ttl, err, errlen) ||
	    !jsonf_number(root, "loop_wait", JSONF_OPTIONAL, CONFIG_LOOP_WAIT_MIN, DCS_WAIT_MAX, false, &out->loop_wait,
	                  err, errlen) ||
	    !jsonf_number(root, "retry_timeout", JSONF_OPTIONAL, CONFIG_RETRY_TIMEOUT_MIN, DCS_WAIT_MAX, false,
	                  &out->retry_timeout, err, errlen))
		goto cleanup;

	/* Bytes: an integer, or a real that is a whole number (some tools write
	 * every number as a double). */
	v = json_object_get(root, "maximum_lag_on_failover");
	if (v) {
		double d;

		if (!json_is_number(v)) {
			jsonf_set_err(err, errlen, "maximum_lag_on_failover: expected a number");
			goto cleanup;
		}
		if (json_is_integer(v)) {
			if (json_integer_value(v) < 0) {
				jsonf_set_err(err, errlen, "maximum_lag_on_failover: must be >= 0");
				goto cleanup;
			}
			out->maximum_lag_on_failover = json_integer_value(v);
		} else {
			d = json_real_value(v);
			if (!isfinite(d) || d < 0 || d != floor(d) || d >= 9.2e18) {
				jsonf_set_err(err, errlen,
				              "maximum_lag_on_failover: expected a whole number of bytes >= 0");
				goto cleanup;
			}
			out->maximum_lag_on_failover = (int64_t)d;
		}
	}
	if (!jsonf_bool(root, "pause", JSONF_OPTIONAL, &out->pause, err, errlen) ||
	    !jsonf_bool(root, "failsafe_mode", JSONF_OPTIONAL, &out->failsafe_mode, err, errlen) ||
	    !parse_sync_mode(root, out, err, errlen) ||
	    !jsonf_bool(root, "synchronous_mode_strict", JSONF_OPTIONAL, &out->synchronous_mode_strict, err, errlen))
		goto cleanup;
	{
		json_int_t n = 1;

		if (!jsonf_int(root, "synchronous_node_count", JSONF_OPTIONAL, 1, HA_SYNC_MAX, &n, err, errlen))
			goto cleanup;
		out->synchronous_node_count = n;
	}
	if (!parse_slots(root, out, err, errlen) || !parse_ignore_slots(root, out, err, errlen))
		goto cleanup;
	if (!jsonf_bool(root, "check_timeline", JSONF_OPTIONAL, &out->check_timeline, err, errlen))
		goto cleanup;
	{
		json_int_t n = -1;

		if (!jsonf_int(root, "maximum_lag_on_syncnode", JSONF_OPTIONAL, -1, INT64_MAX, &n, err, errlen))
			goto cleanup;
		out->maximum_lag_on_syncnode = n;
	}
	if (!config_check_timing(out, err, errlen))
		goto cleanup;
	if (!parse_pg_params(root, out, err, errlen) || !parse_standby_cluster(root, out, err, errlen))
		goto cleanup;
	ok = true;
cleanup:
	json_decref(root);
	if (!ok) {
		dcs_settings_free(out);
		memset(out, 0, sizeof(*out));
	}
	return ok;
}

void dcs_settings_free(struct dcs_settings *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n_pg_params; i++) {
		free(d->pg_params[i].name);
		free(d->pg_params[i].value);
	}
	free(d->pg_params);
	for (size_t i = 0; i < d->n_slots; i++)
		free(d->slots[i]);
	free(d->slots);
	for (size_t i = 0; i < d->n_logical_slots; i++) {
		free(d->logical_slots[i].name);
		free(d->logical_slots[i].database);
		free(d->logical_slots[i].plugin);
	}
	free(d->logical_slots);
	for (size_t i = 0; i < d->n_ignore_slots; i++) {
		free(d->ignore_slots[i].name);
		free(d->ignore_slots[i].type);
		free(d->ignore_slots[i].database);
		free(d->ignore_slots[i].plugin);
	}
	free(d->ignore_slots);
	free(d->standby_host);
	free(d->standby_slot);
	free(d->standby_restore_command);
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
	tmp.logical_slots = NULL;
	tmp.n_logical_slots = 0;
	tmp.ignore_slots = NULL;
	tmp.n_ignore_slots = 0;
	tmp.standby_host = tmp.standby_slot = tmp.standby_restore_command = NULL;
	if ((src->standby_host && !(tmp.standby_host = strdup(src->standby_host))) ||
	    (src->standby_slot && !(tmp.standby_slot = strdup(src->standby_slot))) ||
	    (src->standby_restore_command && !(tmp.standby_restore_command = strdup(src->standby_restore_command)))) {
		dcs_settings_free(&tmp);
		return false;
	}
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
		if (tmp.pg_params == NULL) {
			dcs_settings_free(&tmp); /* the slots copied so far */
			return false;
		}
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
	if (src->n_logical_slots > 0) {
		tmp.logical_slots = calloc(src->n_logical_slots, sizeof(*tmp.logical_slots));
		if (tmp.logical_slots == NULL) {
			dcs_settings_free(&tmp);
			return false;
		}
		for (size_t i = 0; i < src->n_logical_slots; i++) {
			const struct dcs_logical_slot *l = &src->logical_slots[i];

			tmp.n_logical_slots = i + 1;
			tmp.logical_slots[i].name = strdup(l->name);
			tmp.logical_slots[i].database = strdup(l->database);
			tmp.logical_slots[i].plugin = strdup(l->plugin);
			if (!tmp.logical_slots[i].name || !tmp.logical_slots[i].database ||
			    !tmp.logical_slots[i].plugin) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	if (src->n_ignore_slots > 0) {
		tmp.ignore_slots = calloc(src->n_ignore_slots, sizeof(*tmp.ignore_slots));
		if (tmp.ignore_slots == NULL) {
			dcs_settings_free(&tmp);
			return false;
		}
		for (size_t i = 0; i < src->n_ignore_slots; i++) {
			const struct dcs_slot_matcher *m = &src->ignore_slots[i];
			struct dcs_slot_matcher *d = &tmp.ignore_slots[i];

			tmp.n_ignore_slots = i + 1;
			if ((m->name && !(d->name = strdup(m->name))) || (m->type && !(d->type = strdup(m->type))) ||
			    (m->database && !(d->database = strdup(m->database))) ||
			    (m->plugin && !(d->plugin = strdup(m->plugin)))) {
				dcs_settings_free(&tmp);
				return false;
			}
		}
	}
	*dst = tmp;
	return true;
}

size_t dcs_settings_drop_code_params(struct dcs_settings *s, char *const *allow, size_t n_allow, char *warn,
                                     size_t warnlen)
{
	size_t kept = 0, dropped = 0;

	for (size_t i = 0; i < s->n_pg_params; i++) {
		struct config_param *p = &s->pg_params[i];

		if (config_param_allowed_from_dcs(p->name, allow, n_allow)) {
			s->pg_params[kept++] = *p;
			continue;
		}
		if (pg_conf_param_is_custom(p->name)) /* a node file cannot hold a dotted name */
			dcs_warn_add(warn, warnlen,
			             "config: postgresql.parameters.%s ignored: %s, so this node takes it from "
			             "etcd only when its own file lists it in postgresql.allow_from_dcs",
			             p->name, pg_conf_local_only_why(p->name));
		else
			dcs_warn_add(
			        warn, warnlen,
			        "config: postgresql.parameters.%s ignored: %s, so this node takes it only "
			        "from its own file (postgresql.parameters, or list it in postgresql.allow_from_dcs)",
			        p->name, pg_conf_local_only_why(p->name));
		free(p->name);
		free(p->value);
		dropped++;
	}
	s->n_pg_params = kept;
	return dropped;
}
