/*
 * dcs_view.c - the cluster view from a read of baton's prefix (see dcs.h):
 * dcs_parse_cluster() sorts the keys by kind, parses each through the JSON
 * readers of dcs.c and dcs_settings.c, and fills the view ha_decide reads.
 * It never fails as a whole: one bad key is named in a warning and left
 * out, because it must not blind the loop to the others.
 */
#include "agent/dcs.h"
#include "agent/dcs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies value into buf if it is a usable name (non-empty, fits, no '/'). */
static bool name_from_value(const struct etcd_kv *kv, char *buf, size_t len)
{
	if (!kv->value || kv->value_len == 0 || kv->value_len >= len || strlen(kv->value) != kv->value_len)
		return false;
	memcpy(buf, kv->value, kv->value_len + 1);
	return true;
}

/* The decimal system identifier; false unless value is all digits and fits. */
static bool parse_sysid(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

void dcs_parse_cluster(const struct dcs_keys *k, const struct etcd_range_result *r, const struct dcs_settings *fallback,
                       struct ha_cluster_view *view, struct dcs_settings *settings_out, char *warn, size_t warnlen)
{
	size_t plen = strlen(k->prefix);
	struct dcs_settings parsed;
	bool have_config = false;
	char err[256];

	memset(view, 0, sizeof(*view));
	memset(&parsed, 0, sizeof(parsed));
	view->config_key = HA_CONFIG_MISSING;
	if (warn && warnlen)
		warn[0] = '\0';
	view->etcd_ok = true;

	for (size_t i = 0; r && i < r->n_kvs; i++) {
		const struct etcd_kv *kv = &r->kvs[i];
		const char *rel;

		if (!kv->key || strncmp(kv->key, k->prefix, plen) != 0)
			continue;
		rel = kv->key + plen;

		if (strcmp(rel, "leader") == 0) {
			/* The key exists, so someone holds it, readable or not:
			 * an unreadable leader never reads as "no leader". */
			view->has_leader = true;
			view->leader_lease = kv->lease;
			if (!name_from_value(kv, view->leader, sizeof(view->leader))) {
				view->leader[0] = '\0';
				dcs_warn_add(warn, warnlen, "%s: unreadable leader name", kv->key);
			}
		} else if (strcmp(rel, "initialize") == 0) {
			view->init_key_present = true;
			if (kv->lease != 0) {
				view->init_in_progress = true;
				if (!name_from_value(kv, view->init_owner, sizeof(view->init_owner)))
					dcs_warn_add(warn, warnlen, "%s: unreadable bootstrapper name", kv->key);
			} else if (!parse_sysid(kv->value, &view->sysid)) {
				dcs_warn_add(warn, warnlen, "%s: not a system identifier: \"%.40s\"", kv->key,
				             kv->value ? kv->value : "");
			}
		} else if (strcmp(rel, "config") == 0) {
			if (have_config) {
				dcs_settings_free(&parsed);
				have_config = false;
			}
			view->config_revision = kv->mod_revision;
			if (dcs_config_from_json(kv->value, &parsed, err, sizeof(err))) {
				have_config = true;
				view->config_key = HA_CONFIG_VALID;
			} else {
				view->config_key = HA_CONFIG_INVALID;
				dcs_warn_add(warn, warnlen, "%s: invalid config, keeping the previous settings: %s",
				             kv->key, err);
			}
		} else if (strcmp(rel, "switchover") == 0) {
			struct dcs_switchover sw;

			if (dcs_switchover_from_json(kv->value, &sw, err, sizeof(err))) {
				view->has_switchover = true;
				memcpy(view->sw_from, sw.from, sizeof(view->sw_from));
				memcpy(view->sw_to, sw.to, sizeof(view->sw_to));
				view->sw_scheduled_at = sw.scheduled_at;
				view->sw_failover = sw.failover;
			} else {
				dcs_warn_add(warn, warnlen, "%s: ignored: %s", kv->key, err);
			}
		} else if (strcmp(rel, "sync") == 0) {
			view->has_sync = dcs_sync_from_json(kv->value, view->sync_leader, sizeof(view->sync_leader),
			                                    view->sync_standbys, HA_SYNC_MAX, &view->n_sync,
			                                    &view->sync_quorum, err, sizeof(err));
			if (!view->has_sync)
				dcs_warn_add(warn, warnlen, "%s: unreadable, no member counts as synchronous: %s",
				             kv->key, err);
		} else if (strcmp(rel, "status") == 0) {
			if (!dcs_status_from_json(kv->value, &view->leader_lsn, &view->leader_timeline))
				dcs_warn_add(warn, warnlen, "%s: unreadable status", kv->key);
		} else if (strncmp(rel, "members/", 8) == 0) {
			const char *name = rel + 8;
			struct ha_member *m;

			if (view->n_members >= HA_MAX_MEMBERS) {
				dcs_warn_add(warn, warnlen, "%s: more than %d members, ignored", kv->key,
				             HA_MAX_MEMBERS);
				continue;
			}
			m = &view->members[view->n_members];
			if (strchr(name, '/')) {
				dcs_warn_add(warn, warnlen, "%s: not a member key", kv->key);
				continue;
			}
			if (!dcs_member_from_json(name, kv->value, m, err, sizeof(err))) {
				dcs_warn_add(warn, warnlen, "%s: skipped: %s", kv->key, err);
				memset(m, 0, sizeof(*m));
				continue;
			}
			view->n_members++;
		}
	}

	/* The settings in force: the config key when readable, else the
	 * fallback (or the built-in defaults without one). */
	if (!have_config) {
		if (fallback) {
			if (fallback == settings_out) {
				parsed = *fallback; /* aliasing caller: nothing to copy */
			} else if (!dcs_settings_copy(&parsed, fallback)) {
				dcs_warn_add(warn, warnlen, "out of memory copying the settings");
				dcs_settings_default(&parsed);
				parsed.ttl = fallback->ttl;
				parsed.loop_wait = fallback->loop_wait;
				parsed.retry_timeout = fallback->retry_timeout;
				parsed.maximum_lag_on_failover = fallback->maximum_lag_on_failover;
				parsed.pause = fallback->pause;
				parsed.failsafe_mode = fallback->failsafe_mode;
				parsed.synchronous_mode = fallback->synchronous_mode;
				parsed.synchronous_mode_strict = fallback->synchronous_mode_strict;
				parsed.synchronous_node_count = fallback->synchronous_node_count;
				parsed.synchronous_quorum = fallback->synchronous_quorum;
			}
		} else {
			dcs_settings_default(&parsed);
		}
	} else if (settings_out && settings_out == fallback) {
		dcs_settings_free(settings_out);
	}
	view->ttl = parsed.ttl;
	view->loop_wait = parsed.loop_wait;
	view->retry_timeout = parsed.retry_timeout;
	view->maximum_lag_on_failover = parsed.maximum_lag_on_failover;
	view->paused = parsed.pause;
	view->failsafe_mode = parsed.failsafe_mode;
	view->synchronous_mode = parsed.synchronous_mode;
	view->synchronous_mode_strict = parsed.synchronous_mode_strict;
	view->synchronous_node_count = (int)parsed.synchronous_node_count;
	view->synchronous_quorum = parsed.synchronous_quorum;
	view->check_timeline = parsed.check_timeline;
	view->maximum_lag_on_syncnode = parsed.maximum_lag_on_syncnode;
	view->standby_cluster = parsed.standby_host != NULL;
	snprintf(view->standby_host, sizeof(view->standby_host), "%s", parsed.standby_host ? parsed.standby_host : "");
	view->standby_port = view->standby_cluster ? (int)parsed.standby_port : 0;
	if (settings_out)
		*settings_out = parsed;
	else
		dcs_settings_free(&parsed);
}

void dcs_settings_summary(const struct dcs_settings *s, char *buf, size_t len)
{
	int n;

	if (s->standby_host)
		n = snprintf(buf, len, "standby cluster following %s:%lld", s->standby_host,
		             (long long)s->standby_port);
	else
		n = snprintf(buf, len, "not a standby cluster");
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - (size_t)n, "%s%s%s", s->pause ? ", paused" : "",
	         s->synchronous_mode ? (s->synchronous_mode_strict ? ", strict synchronous mode" : ", synchronous mode")
	                             : "",
	         s->failsafe_mode ? ", failsafe mode" : "");
}

char *dcs_lastgood_json(const char *namespace_, const char *scope, const char *name, int64_t revision,
                        const char *config)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "namespace", namespace_, "scope", scope, "name", name,
	                      "revision", (json_int_t)revision, "config", config);
	char *out;

	if (!o)
		return NULL;
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

bool dcs_lastgood_parse(const char *text, const char *namespace_, const char *scope, const char *name,
                        int64_t *revision, char **config, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	const char *ns, *sc, *nm, *cf;
	json_int_t rev;
	bool ok = false;

	*config = NULL;
	*revision = 0;
	if (!o) {
		snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
		return false;
	}
	if (json_unpack(o, "{s:s, s:s, s:s, s:I, s:s}", "namespace", &ns, "scope", &sc, "name", &nm, "revision", &rev,
	                "config", &cf) != 0) {
		snprintf(err, errlen, "expected {namespace, scope, name, revision, config}");
		goto cleanup;
	}
	/* A copy that came with the data directory (a base backup, a rewind)
	 * belongs to its writer: another member, maybe of the other site. */
	if (strcmp(ns, namespace_) != 0 || strcmp(sc, scope) != 0 || strcmp(nm, name) != 0) {
		snprintf(err, errlen, "written by member \"%.64s\" of %.64s/%.64s/, not by this member", nm, ns, sc);
		goto cleanup;
	}
	if (rev <= 0) {
		snprintf(err, errlen, "revision %lld is not a revision", (long long)rev);
		goto cleanup;
	}
	if (!(*config = strdup(cf))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	*revision = rev;
	ok = true;
cleanup:
	json_decref(o);
	return ok;
}
