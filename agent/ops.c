/*
 * ops.c - operator actions on the cluster's keys in etcd (see ops.h).
 *
 * batonctl and the REST API both come here, so a request is judged the
 * same way whichever door it came through. Every action has the same
 * shape: one prefix read of the cluster, parsed with the agents' own
 * parser (dcs_parse_cluster) so the checks see exactly what the agents
 * see; a validation against that view; and one transaction that writes
 * only if the keys the decision rested on are still at the revision read
 * (or still absent). A refusal therefore never changes anything in etcd,
 * and two operators acting at once get "changed concurrently" rather than
 * a silent overwrite.
 *
 * The config key is always written in its canonical form (dcs_config_json
 * of the validated settings), after the whole document passed
 * dcs_config_from_json, which includes the timing rule.
 */
#include "agent/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agent/clock.h"
#include "agent/jsonf.h"
#include "agent/parse.h"
#include "pg/pg_conf.h"

static void (*before_write_hook)(void *ctx);
static void *before_write_ctx;

/* The local node's postgresql.allow_from_dcs (ops_set_allow_from_dcs): a
 * private copy, NULL/0 until set (= nothing that runs code is allowed). */
static char **allow_from_dcs;
static size_t n_allow_from_dcs;

bool ops_set_allow_from_dcs(char *const *names, size_t n)
{
	char **copy = NULL;

	if (n > 0) {
		copy = calloc(n, sizeof(*copy));
		if (!copy)
			return false;
		for (size_t i = 0; i < n; i++) {
			copy[i] = strdup(names[i]);
			if (!copy[i]) {
				for (size_t j = 0; j < i; j++)
					free(copy[j]);
				free(copy);
				return false;
			}
		}
	}
	for (size_t i = 0; i < n_allow_from_dcs; i++)
		free(allow_from_dcs[i]);
	free(allow_from_dcs);
	allow_from_dcs = copy;
	n_allow_from_dcs = n;
	return true;
}

bool ops_check_schedule(time_t when, time_t now, const char *what, char *err, size_t errlen)
{
	char t[32];

	if (when == 0)
		return true;
	dcs_format_utc((double)when, t, sizeof(t));
	if (when <= now) {
		jsonf_set_err(err, errlen, "scheduled time %s is not in the future", t);
		return false;
	}
	return ops_check_horizon(when, now, what, err, errlen);
}

bool ops_check_horizon(time_t when, time_t now, const char *what, char *err, size_t errlen)
{
	char t[32];

	if (when == 0 || when - now <= OPS_SCHEDULE_HORIZON)
		return true;
	dcs_format_utc((double)when, t, sizeof(t));
	jsonf_set_err(err, errlen,
	              "scheduled time %s is more than %d days ahead: a %s is scheduled at most %d days "
	              "(%d seconds) in advance",
	              t, OPS_SCHEDULE_HORIZON / 86400, what, OPS_SCHEDULE_HORIZON / 86400, OPS_SCHEDULE_HORIZON);
	return false;
}

void ops_set_before_write_hook(void (*hook)(void *ctx), void *ctx)
{
	before_write_hook = hook;
	before_write_ctx = ctx;
}

/* ---- reading and writing ------------------------------------------------- */

/* What one action read: the raw keys and the view built from them. */
struct ops_read {
	struct etcd_range_result res;
	struct ha_cluster_view *view;    /* heap: the view is large */
	const struct etcd_kv *leader_kv; /* NULL when absent (points into res) */
	const struct etcd_kv *config_kv;
	const struct etcd_kv *switchover_kv;
};

static void read_free(struct ops_read *rd)
{
	etcd_range_result_free(&rd->res);
	free(rd->view);
	memset(rd, 0, sizeof(*rd));
}

/* One bounded read of the cluster (dcs_read_cluster); false + err when etcd fails. */
static bool read_cluster(struct etcd_client *c, const struct dcs_keys *k, struct ops_read *rd, char *err, size_t errlen)
{
	struct etcd_error eerr = { 0 };

	memset(rd, 0, sizeof(*rd));
	rd->view = calloc(1, sizeof(*rd->view));
	if (!rd->view) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	if (dcs_read_cluster(c, k, NULL, &rd->res, NULL, 0, &eerr) != ETCD_OK) {
		jsonf_set_err(err, errlen, "cannot read %s from etcd: %s", k->prefix,
		              eerr.message[0] ? eerr.message : etcd_status_name(eerr.status));
		read_free(rd);
		return false;
	}
	/* Warnings (an unreadable member...) are the agents' business; the
	 * checks below only trust what did parse. */
	dcs_parse_cluster(k, &rd->res, NULL, rd->view, NULL, NULL, 0);
	for (size_t i = 0; i < rd->res.n_kvs; i++) {
		const struct etcd_kv *kv = &rd->res.kvs[i];

		if (strcmp(kv->key, k->leader) == 0)
			rd->leader_kv = kv;
		else if (strcmp(kv->key, k->config) == 0)
			rd->config_kv = kv;
		else if (strcmp(kv->key, k->switchover) == 0)
			rd->switchover_kv = kv;
	}
	return true;
}

/* A compare that holds while key is as read: same mod_revision, or still
 * absent (create_revision 0) when rev is 0. */
static struct etcd_compare unchanged(const char *key, int64_t rev)
{
	struct etcd_compare cmp = { .key = key, .result = ETCD_CMP_EQUAL };

	if (rev > 0) {
		cmp.target = ETCD_CMP_MOD;
		cmp.number = rev;
	} else {
		cmp.target = ETCD_CMP_CREATE;
		cmp.number = 0;
	}
	return cmp;
}

static int64_t rev_of(const struct etcd_kv *kv)
{
	return kv ? kv->mod_revision : 0;
}

/* Runs op if every compare holds. what names the change for the message. */
static bool write_if_rev(struct etcd_client *c, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *op,
                         const char *what, int64_t *revision, char *err, size_t errlen)
{
	struct etcd_txn_result tr = { 0 };
	struct etcd_error eerr = { 0 };
	bool ok = false;

	if (before_write_hook)
		before_write_hook(before_write_ctx);
	if (etcd_txn(c, cmp, n_cmp, op, 1, NULL, 0, &tr, &eerr) != ETCD_OK) {
		jsonf_set_err(err, errlen, "cannot write %s to etcd: %s", what,
		              eerr.message[0] ? eerr.message : etcd_status_name(eerr.status));
		return false;
	}
	if (tr.succeeded) {
		ok = true;
		if (revision)
			*revision = tr.revision;
	} else {
		jsonf_set_err(err, errlen, "%s changed concurrently, try again", what);
	}
	etcd_txn_result_free(&tr);
	return ok;
}

static bool write_if(struct etcd_client *c, const struct etcd_compare *cmp, size_t n_cmp, const struct etcd_op *op,
                     const char *what, char *err, size_t errlen)
{
	return write_if_rev(c, cmp, n_cmp, op, what, NULL, err, errlen);
}

/* ---- switchover ------------------------------------------------------------ */

/* A member that could take over, by its own record: a running replica
 * that may fail over. Writes why not into why. */
static bool member_fit(const struct ha_member *m, char *why, size_t len)
{
	if (m->nofailover) {
		snprintf(why, len, "'%s' is tagged nofailover", m->name);
		return false;
	}
	if (strcmp(m->role, "replica") != 0 || strcmp(m->state, "running") != 0) {
		snprintf(why, len, "'%s' is not a healthy replica (role %s, state %s)", m->name, m->role, m->state);
		return false;
	}
	return true;
}

/* The checks of ops.h against the view; false + err on a refusal. */
static bool switchover_allowed(const struct ops_read *rd, const struct ops_switchover_req *req, time_t now, char *err,
                               size_t errlen)
{
	const struct ha_cluster_view *v = rd->view;
	const char *kind = req->failover ? "failover" : "switchover";
	bool leader_known = v->has_leader && v->leader[0];
	char why[200];

	if (rd->switchover_kv) {
		char what[200];

		if (v->has_switchover)
			dcs_switchover_describe(v, what, sizeof(what));
		else
			snprintf(what, sizeof(what), "an unreadable request");
		jsonf_set_err(err, errlen, "a switchover is already pending: %s; cancel it first", what);
		return false;
	}
	/* A standby cluster's leader hands over nothing (the hand-over is the
	 * primary's path): refused now rather than left pending for good. */
	if (v->standby_cluster) {
		jsonf_set_err(err, errlen,
		              "a %s inside a standby cluster is not supported: stop the standby leader's agent "
		              "(another member takes the key), or promote-cluster first",
		              kind);
		return false;
	}
	/* Maintenance mode: the agents choose no candidate and nothing may
	 * wait unseen; a switchover with a candidate runs now. */
	if (v->paused && !req->failover && req->scheduled_at != 0) {
		jsonf_set_err(err, errlen,
		              "maintenance mode: a scheduled switchover is refused while paused; resume first, or "
		              "switch over now with a candidate");
		return false;
	}
	if (v->paused && !req->failover && !(req->candidate && *req->candidate)) {
		jsonf_set_err(err, errlen,
		              "maintenance mode: a switchover needs a candidate while paused (the agents choose "
		              "none); name one (--candidate), or resume first");
		return false;
	}
	if (!req->failover && !leader_known) {
		jsonf_set_err(err, errlen, "no leader: a switchover needs one (a failover --candidate does not)");
		return false;
	}
	if (req->leader && *req->leader) {
		if (!leader_known) {
			jsonf_set_err(err, errlen, "'%s' is not the leader: there is no leader", req->leader);
			return false;
		}
		if (strcmp(req->leader, v->leader) != 0) {
			jsonf_set_err(err, errlen, "'%s' is not the leader (the leader is '%s')", req->leader,
			              v->leader);
			return false;
		}
	}
	if (req->scheduled_at != 0) {
		if (req->failover) {
			jsonf_set_err(err, errlen, "a failover cannot be scheduled");
			return false;
		}
		if (!ops_check_schedule(req->scheduled_at, now, kind, err, errlen))
			return false;
	}
	if (req->failover && !(req->candidate && *req->candidate)) {
		jsonf_set_err(err, errlen, "a failover needs a candidate");
		return false;
	}
	if (req->candidate && *req->candidate) {
		const struct ha_member *m = ha_find_member(v, req->candidate);

		if (!m) {
			jsonf_set_err(err, errlen, "'%s' is not a member of the cluster", req->candidate);
			return false;
		}
		if (leader_known && strcmp(m->name, v->leader) == 0) {
			jsonf_set_err(err, errlen, "'%s' is already the leader", m->name);
			return false;
		}
		if (m->nofailover) {
			jsonf_set_err(err, errlen, "%s refused: '%s' is tagged nofailover", kind, m->name);
			return false;
		}
		if (!req->force && !member_fit(m, why, sizeof(why))) {
			jsonf_set_err(err, errlen, "%s refused: %s (--force to override)", kind, why);
			return false;
		}
		return true;
	}
	for (size_t i = 0; i < v->n_members; i++)
		if (strcmp(v->members[i].name, v->leader) != 0 && member_fit(&v->members[i], why, sizeof(why)))
			return true;
	jsonf_set_err(err, errlen, "%s refused: no healthy candidate (no running replica without nofailover)", kind);
	return false;
}

bool ops_switchover(struct etcd_client *c, const struct dcs_keys *k, const struct ops_switchover_req *req,
                    int64_t *revision, char *err, size_t errlen)
{
	struct dcs_switchover sw;
	struct etcd_compare cmp[2];
	struct etcd_op op = { .kind = ETCD_OP_PUT, .key = k->switchover };
	struct ops_read rd;
	time_t now = clk_wall_s();
	char *json = NULL;
	bool ok = false;

	if (!read_cluster(c, k, &rd, err, errlen))
		return false;
	if (!switchover_allowed(&rd, req, now, err, errlen))
		goto cleanup;

	memset(&sw, 0, sizeof(sw));
	if (rd.view->has_leader)
		snprintf(sw.from, sizeof(sw.from), "%s", rd.view->leader);
	if (req->candidate)
		snprintf(sw.to, sizeof(sw.to), "%s", req->candidate);
	sw.failover = req->failover;
	sw.scheduled_at = (double)req->scheduled_at;
	sw.requested_at = (double)now;
	json = dcs_switchover_json(&sw);
	if (!json) {
		jsonf_set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	op.value = json;
	/* The request rests on who leads: if that changed meanwhile, it is
	 * judged again rather than written. */
	cmp[0] = unchanged(k->switchover, 0);
	cmp[1] = unchanged(k->leader, rev_of(rd.leader_kv));
	ok = write_if_rev(c, cmp, 2, &op, "the leader or switchover key", revision, err, errlen);
cleanup:
	free(json);
	read_free(&rd);
	return ok;
}

bool ops_switchover_cancel(struct etcd_client *c, const struct dcs_keys *k, char *err, size_t errlen)
{
	struct etcd_op op = { .kind = ETCD_OP_DELETE, .key = k->switchover };
	struct etcd_compare cmp;
	struct ops_read rd;
	bool ok = false;

	if (!read_cluster(c, k, &rd, err, errlen))
		return false;
	if (!rd.switchover_kv) {
		jsonf_set_err(err, errlen, "no switchover is pending");
		goto cleanup;
	}
	cmp = unchanged(k->switchover, rd.switchover_kv->mod_revision);
	ok = write_if(c, &cmp, 1, &op, "the switchover key", err, errlen);
cleanup:
	read_free(&rd);
	return ok;
}

/* ---- the config key -------------------------------------------------------- */

/* The top-level keys of the config document, and the only member of its
 * "postgresql" object. Anything else is a typo the agents would ignore,
 * so it is refused, unless the key held it already (Patroni's own keys,
 * such as postgresql.use_pg_rewind, in a cluster that moved from Patroni:
 * the edit did not bring them, and the canonical form written drops them). */
static const char *const config_keys[] = {
	"ttl",           "loop_wait",        "retry_timeout",           "maximum_lag_on_failover", "pause",
	"failsafe_mode", "synchronous_mode", "synchronous_mode_strict", "synchronous_node_count",  "synchronous_quorum",
	"slots",         "postgresql"
};

static bool config_key_known(const char *key)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(key, config_keys[i]) == 0)
			return true;
	return false;
}

static bool check_known_keys(const json_t *doc, const json_t *old_doc, char *err, size_t errlen)
{
	const json_t *pg = json_object_get(doc, "postgresql"), *v;
	const json_t *old_pg = json_object_get(old_doc, "postgresql");
	const char *key;

	json_object_foreach((json_t *)doc, key, v) {
		/* ignore_slots (a list of objects), check_timeline,
		 * maximum_lag_on_syncnode and standby_cluster (an object; batonctl
		 * demote-cluster): a whole document (PUT, PATCH) may set
		 * them; edit-config --set (config_keys, batonctl's) does not yet.
		 * A key the old document held (Patroni's, on a cluster moved from
		 * it) is kept, not refused. */
		if (!config_key_known(key) && strcmp(key, "ignore_slots") != 0 && strcmp(key, "check_timeline") != 0 &&
		    strcmp(key, "maximum_lag_on_syncnode") != 0 && strcmp(key, "standby_cluster") != 0 &&
		    !json_object_get(old_doc, key)) {
			jsonf_set_err(err, errlen,
			              "unknown key '%s' (known: ttl, loop_wait, retry_timeout, "
			              "maximum_lag_on_failover, pause, failsafe_mode, synchronous_mode, "
			              "synchronous_mode_strict, synchronous_node_count, synchronous_quorum, slots, "
			              "ignore_slots, check_timeline, maximum_lag_on_syncnode, standby_cluster, "
			              "postgresql.parameters, postgresql.use_slots)",
			              key);
			return false;
		}
	}
	if (json_is_object(pg)) {
		json_object_foreach((json_t *)pg, key, v) {
			if (strcmp(key, "parameters") != 0 && strcmp(key, "use_slots") != 0 &&
			    !json_object_get(old_pg, key)) {
				jsonf_set_err(
				        err, errlen,
				        "unknown key 'postgresql.%s' (known: postgresql.parameters, postgresql.use_slots)",
				        key);
				return false;
			}
		}
	}
	return true;
}

/* The value old (the config key as it was) gives parameter name, NULL if none. */
static const char *old_param(const struct dcs_settings *old, const char *name)
{
	for (size_t i = 0; old && i < old->n_pg_params; i++)
		if (strcasecmp(old->pg_params[i].name, name) == 0)
			return old->pg_params[i].value;
	return NULL;
}

/*
 * Refuses a parameter that runs code (pg_conf_param_runs_code: a custom one
 * too) which the edit sets or changes, unless this node's
 * postgresql.allow_from_dcs lists it. One the key already held with the same value passes: the edit did not
 * bring it (the agents ignore it anyway unless their own file allows it), and
 * refusing it would block every other edit until someone removed it.
 */
static bool check_code_params(const struct dcs_settings *d, const struct dcs_settings *old, char *err, size_t errlen)
{
	/* standby_cluster.restore_command is a restore_command too: the
	 * standby leader runs it. */
	if (d->standby_restore_command &&
	    !config_param_allowed_from_dcs("restore_command", allow_from_dcs, n_allow_from_dcs) &&
	    !(old && old->standby_restore_command &&
	      strcmp(old->standby_restore_command, d->standby_restore_command) == 0)) {
		jsonf_set_err(err, errlen,
		              "standby_cluster.restore_command: refused: %s, so it is set only in each node's own "
		              "file (bootstrap.dcs.standby_cluster.restore_command or postgresql.parameters), unless "
		              "that file lists restore_command in postgresql.allow_from_dcs",
		              pg_conf_local_only_why("restore_command"));
		return false;
	}
	for (size_t i = 0; i < d->n_pg_params; i++) {
		const struct config_param *p = &d->pg_params[i];
		const char *was;

		if (config_param_allowed_from_dcs(p->name, allow_from_dcs, n_allow_from_dcs))
			continue;
		was = old_param(old, p->name);
		if (was && strcmp(was, p->value) == 0)
			continue;
		/* A node file (libconfig) cannot hold a dotted name: for a
		 * custom parameter the allow list is the only way. */
		if (pg_conf_param_is_custom(p->name))
			jsonf_set_err(err, errlen,
			              "postgresql.parameters.%s: refused: %s, so a node takes it from the "
			              "cluster only when its own file lists it in postgresql.allow_from_dcs",
			              p->name, pg_conf_local_only_why(p->name));
		else
			jsonf_set_err(err, errlen,
			              "postgresql.parameters.%s: refused: %s, so it is set only in each "
			              "node's own file (postgresql.parameters), unless that file lists it in "
			              "postgresql.allow_from_dcs",
			              p->name, pg_conf_local_only_why(p->name));
		return false;
	}
	return true;
}

/*
 * Refuses max_wal_senders or max_replication_slots below the number of
 * members that replicate (all but the leader): each replica streams through
 * a walsender and a slot of its own (agent/slots.h), so with fewer one
 * replica never streams after the restart, and only Postgres' log says why.
 * A value the key already held passes (pause/resume must not be blocked
 * because the cluster grew); a value that is not a plain number is left to
 * Postgres to judge.
 */
static bool check_sender_params(const struct dcs_settings *d, const struct dcs_settings *old,
                                const struct ha_cluster_view *view, char *err, size_t errlen)
{
	static const char *const names[] = { "max_wal_senders", "max_replication_slots" };
	size_t replicas = view && view->n_members > 1 ? view->n_members - 1 : 0;

	for (size_t i = 0; i < d->n_pg_params; i++) {
		const struct config_param *p = &d->pg_params[i];
		const char *was;
		char *end;
		long v;

		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			if (strcasecmp(p->name, names[j]) != 0)
				continue;
			errno = 0;
			v = strtol(p->value, &end, 10);
			if (errno || end == p->value || *end || v < 0 || (unsigned long)v >= replicas)
				break; /* enough, or not a number */
			was = old_param(old, p->name);
			if (was && strcmp(was, p->value) == 0)
				break;
			jsonf_set_err(err, errlen,
			              "postgresql.parameters.%s: %ld is below the %zu replica(s) of this "
			              "%zu-member cluster: each streams through its own%s; set at least %zu",
			              p->name, v, replicas, view->n_members,
			              j == 0 ? " walsender" : " replication slot", replicas);
			return false;
		}
	}
	return true;
}

/*
 * Validates doc (the whole config document) and writes its canonical form
 * if the key is still at rev (0 = absent). old_kv is the config key as read
 * (NULL when absent). result (may be NULL) receives the settings written.
 */
static bool write_config(struct etcd_client *c, const struct dcs_keys *k, const json_t *doc, int64_t rev,
                         const struct etcd_kv *old_kv, const struct ha_cluster_view *view, struct dcs_settings *result,
                         char *err, size_t errlen)
{
	struct etcd_op op = { .kind = ETCD_OP_PUT, .key = k->config };
	struct dcs_settings d, old;
	struct etcd_compare cmp;
	char *text = NULL, *canon = NULL, why[512];
	bool have_old = false, ok = false, known;
	json_t *old_doc;

	memset(&d, 0, sizeof(d));
	memset(&old, 0, sizeof(old));
	if (!json_is_object(doc)) {
		jsonf_set_err(err, errlen, "invalid configuration: not a JSON object");
		return false;
	}
	old_doc = old_kv && old_kv->value ? json_loads(old_kv->value, 0, NULL) : NULL;
	known = check_known_keys(doc, json_is_object(old_doc) ? old_doc : NULL, why, sizeof(why));
	json_decref(old_doc);
	if (!known) {
		jsonf_set_err(err, errlen, "invalid configuration: %s", why);
		return false;
	}
	text = json_dumps(doc, JSON_COMPACT);
	if (!text) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	if (!dcs_config_from_json(text, &d, why, sizeof(why))) {
		jsonf_set_err(err, errlen, "invalid configuration: %s", why);
		goto cleanup;
	}
	/* An unreadable old key counts as empty: everything is then new. */
	have_old = old_kv && old_kv->value && dcs_config_from_json(old_kv->value, &old, NULL, 0);
	if (!check_code_params(&d, have_old ? &old : NULL, why, sizeof(why))) {
		jsonf_set_err(err, errlen, "invalid configuration: %s", why);
		goto cleanup;
	}
	if (!check_sender_params(&d, have_old ? &old : NULL, view, why, sizeof(why))) {
		jsonf_set_err(err, errlen, "invalid configuration: %s", why);
		goto cleanup;
	}
	canon = dcs_config_json(&d);
	if (!canon) {
		jsonf_set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	op.value = canon;
	cmp = unchanged(k->config, rev);
	if (!write_if(c, &cmp, 1, &op, "the config key", err, errlen))
		goto cleanup;
	if (result) {
		*result = d;
		memset(&d, 0, sizeof(d));
	}
	ok = true;
cleanup:
	dcs_settings_free(&d);
	dcs_settings_free(&old);
	free(canon);
	free(text);
	return ok;
}

/* The document to edit: the config key as read, or the defaults when it is
 * absent or not a JSON object (the edit then writes a readable one). New
 * reference, NULL when out of memory. */
static json_t *config_doc(const struct etcd_kv *kv)
{
	struct dcs_settings d;
	json_t *doc = NULL;
	char *text;

	if (kv && kv->value) {
		doc = json_loads(kv->value, 0, NULL);
		if (json_is_object(doc))
			return doc;
		json_decref(doc);
	}
	if (!dcs_config_from_json("{}", &d, NULL, 0))
		return NULL;
	text = dcs_config_json(&d);
	dcs_settings_free(&d);
	if (!text)
		return NULL;
	doc = json_loads(text, 0, NULL);
	free(text);
	return doc;
}

/* Splits "key=value" at the first '='; false when there is none or the key
 * is empty. The key is copied into key (len bytes). */
static bool split_assignment(const char *s, char *key, size_t len, const char **value)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s || (size_t)(eq - s) >= len)
		return false;
	memcpy(key, s, (size_t)(eq - s));
	key[eq - s] = '\0';
	*value = eq + 1;
	return true;
}

/* Applies one --set edit to doc; false + err naming the key. */
static bool apply_set(json_t *doc, const char *assignment, char *err, size_t errlen)
{
	const char *value;
	char key[64];
	json_t *v = NULL;

	if (!split_assignment(assignment, key, sizeof(key), &value)) {
		jsonf_set_err(err, errlen, "expected key=value, got '%s'", assignment);
		return false;
	}
	if (strcmp(key, "ttl") == 0 || strcmp(key, "loop_wait") == 0 || strcmp(key, "retry_timeout") == 0) {
		double d;

		if (!parse_seconds(value, &d)) {
			jsonf_set_err(err, errlen, "%s: expected a number of seconds, got '%s'", key, value);
			return false;
		}
		v = d == floor(d) && fabs(d) < 9e15 ? json_integer((json_int_t)d) : json_real(d);
	} else if (strcmp(key, "maximum_lag_on_failover") == 0) {
		int64_t n;

		if (!parse_bytes(value, &n)) {
			jsonf_set_err(err, errlen,
			              "%s: expected a whole number of bytes (\"1048576\", \"16MB\"), got '%s'", key,
			              value);
			return false;
		}
		v = json_integer((json_int_t)n);
	} else if (strcmp(key, "synchronous_node_count") == 0) {
		int64_t n;

		if (!parse_count(value, &n) || n < 1 || n > HA_SYNC_MAX) {
			jsonf_set_err(err, errlen, "%s: expected a whole number from 1 to %d, got '%s'", key,
			              HA_SYNC_MAX, value);
			return false;
		}
		v = json_integer((json_int_t)n);
	} else if (strcmp(key, "slots") == 0) {
		/* A comma-separated list of slot names; "" empties it. The
		 * agents' parser checks each name. */
		char buf[1024];
		char *save = NULL, *tok;

		if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
			jsonf_set_err(err, errlen, "%s: list too long", key);
			return false;
		}
		v = json_array();
		for (tok = strtok_r(buf, ",", &save); v && tok; tok = strtok_r(NULL, ",", &save))
			if (json_array_append_new(v, json_string(tok)) != 0) {
				json_decref(v);
				v = NULL;
			}
	} else if (strcmp(key, "pause") == 0 || strcmp(key, "failsafe_mode") == 0 ||
	           strcmp(key, "synchronous_mode") == 0 || strcmp(key, "synchronous_mode_strict") == 0 ||
	           strcmp(key, "synchronous_quorum") == 0) {
		if (strcmp(value, "true") == 0) {
			v = json_true();
		} else if (strcmp(value, "false") == 0) {
			v = json_false();
		} else if (strcmp(key, "synchronous_mode") == 0 &&
		           (strcmp(value, "quorum") == 0 || strcmp(value, "on") == 0 || strcmp(value, "off") == 0)) {
			v = json_string(value); /* as Patroni writes it; the agents' parser maps it */
		} else if (strcmp(key, "synchronous_mode") == 0) {
			jsonf_set_err(err, errlen, "%s: expected true, false, on, off or quorum, got '%s'", key, value);
			return false;
		} else {
			jsonf_set_err(err, errlen, "%s: expected true or false, got '%s'", key, value);
			return false;
		}
	} else {
		jsonf_set_err(
		        err, errlen,
		        "unknown key '%s' (known: ttl, loop_wait, retry_timeout, maximum_lag_on_failover, pause, failsafe_mode,"
		        " synchronous_mode, synchronous_mode_strict, synchronous_node_count, synchronous_quorum, slots;"
		        " Postgres parameters go with --pg)",
		        key);
		return false;
	}
	if (!v || json_object_set_new(doc, key, v) != 0) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	return true;
}

/* Applies one --pg edit ("name=value"; "name=" removes it). */
static bool apply_pg(json_t *doc, const char *assignment, char *err, size_t errlen)
{
	json_t *pg, *params;
	const char *value;
	char name[128];

	if (!split_assignment(assignment, name, sizeof(name), &value)) {
		jsonf_set_err(err, errlen, "expected name=value, got '%s'", assignment);
		return false;
	}
	pg = json_object_get(doc, "postgresql");
	if (!pg) {
		pg = json_object();
		if (!pg || json_object_set_new(doc, "postgresql", pg) != 0)
			goto oom;
	}
	if (!json_is_object(pg)) {
		jsonf_set_err(err, errlen, "postgresql: the config key holds no object there");
		return false;
	}
	params = json_object_get(pg, "parameters");
	if (!params) {
		params = json_object();
		if (!params || json_object_set_new(pg, "parameters", params) != 0)
			goto oom;
	}
	if (!json_is_object(params)) {
		jsonf_set_err(err, errlen, "postgresql.parameters: the config key holds no object there");
		return false;
	}
	if (!*value) {
		json_object_del(params, name); /* absent already is fine */
		return true;
	}
	if (json_object_set_new(params, name, json_string(value)) != 0)
		goto oom;
	return true;
oom:
	jsonf_set_err(err, errlen, "out of memory");
	return false;
}

bool ops_edit_config(struct etcd_client *c, const struct dcs_keys *k, const char *const *set, size_t n_set,
                     const char *const *pg, size_t n_pg, struct dcs_settings *result, char *err, size_t errlen)
{
	struct ops_read rd;
	json_t *doc = NULL;
	bool ok = false;

	if (!read_cluster(c, k, &rd, err, errlen))
		return false;
	doc = config_doc(rd.config_kv);
	if (!doc) {
		jsonf_set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n_set; i++)
		if (!apply_set(doc, set[i], err, errlen))
			goto cleanup;
	for (size_t i = 0; i < n_pg; i++)
		if (!apply_pg(doc, pg[i], err, errlen))
			goto cleanup;
	ok = write_config(c, k, doc, rev_of(rd.config_kv), rd.config_kv, rd.view, result, err, errlen);
cleanup:
	json_decref(doc);
	read_free(&rd);
	return ok;
}

bool ops_set_pause(struct etcd_client *c, const struct dcs_keys *k, bool pause, char *err, size_t errlen)
{
	const char *set = pause ? "pause=true" : "pause=false";

	return ops_edit_config(c, k, &set, 1, NULL, 0, NULL, err, errlen);
}

bool ops_replace_config_at(struct etcd_client *c, const struct dcs_keys *k, const char *json, int64_t mod_revision,
                           char *err, size_t errlen)
{
	struct ops_read rd;
	json_error_t jerr;
	json_t *doc;
	bool ok;

	doc = json_loads(json ? json : "", 0, &jerr);
	if (!doc) {
		jsonf_set_err(err, errlen, "invalid configuration: invalid JSON at line %d column %d: %s", jerr.line,
		              jerr.column, jerr.text);
		return false;
	}
	if (!read_cluster(c, k, &rd, err, errlen)) {
		json_decref(doc);
		return false;
	}
	if (mod_revision >= 0 && mod_revision != rev_of(rd.config_kv)) {
		jsonf_set_err(err, errlen, "the config key changed concurrently, try again");
		ok = false;
	} else {
		ok = write_config(c, k, doc, rev_of(rd.config_kv), rd.config_kv, rd.view, NULL, err, errlen);
	}
	json_decref(doc);
	read_free(&rd);
	return ok;
}

bool ops_replace_config(struct etcd_client *c, const struct dcs_keys *k, const char *json, char *err, size_t errlen)
{
	return ops_replace_config_at(c, k, json, -1, err, errlen);
}
