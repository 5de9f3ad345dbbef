/*
 * members.c - batonctl list and topology: the members of the cluster as a
 * table (or JSON), with the leader marked, each replica's lag behind the
 * leader, pending restarts and tags; topology orders them as a tree (the
 * leader, then the replicas that stream from it). Both build the same rows
 * from the cluster view ctl_open read; only the order and nesting differ.
 * Maintenance mode, a pending switchover and scheduled restarts are printed
 * above the table, so an operator cannot miss them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "agent/log.h"

/* One member as shown. */
struct row {
	const struct ha_member *m;
	bool leader;
	bool lag_known;
	uint64_t lag; /* bytes behind the leader */
	int depth;    /* topology: 0 = top, 1 = streams from the leader */
	bool sync;    /* synchronous mode: the sync key names this replica */
	bool standby; /* the leader of a standby cluster (Patroni's Standby Leader) */
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth - y->depth;
	return strcmp(x->m->name, y->m->name);
}

/* The position members are measured against: the leader's status optime,
 * or its member record's LSN when there is no status. false without a
 * leader (nothing to measure against). */
static bool reference_lsn(const struct ha_cluster_view *v, uint64_t *out)
{
	const struct ha_member *lm;

	if (!v->has_leader || !v->leader[0])
		return false;
	if (v->leader_lsn > 0) {
		*out = v->leader_lsn;
		return true;
	}
	lm = ha_find_member(v, v->leader);
	if (!lm || lm->lsn == 0)
		return false;
	*out = lm->lsn;
	return true;
}

/* Fills rows from the view, sorted by name, or in topology order (the
 * leader, then the replicas that stream from it, then the others). */
static size_t build_rows(const struct ha_cluster_view *v, struct row *rows, bool topology)
{
	uint64_t ref = 0;
	bool have_ref = reference_lsn(v, &ref);

	for (size_t i = 0; i < v->n_members; i++) {
		struct row *r = &rows[i];

		r->m = &v->members[i];
		r->leader = is_leader(v, r->m->name);
		r->standby = ha_is_standby_leader(v, r->m);
		r->lag_known = r->leader;
		r->lag = 0;
		if (!r->leader && have_ref && r->m->lsn > 0) {
			r->lag_known = true;
			r->lag = ref > r->m->lsn ? ref - r->m->lsn : 0;
		}
		r->sync = !r->leader && v->synchronous_mode && v->has_sync && strcmp(v->sync_leader, r->m->name) != 0 &&
		          ha_sync_allows(v, r->m->name);
		r->depth = 0;
		if (topology && !r->leader)
			r->depth = v->has_leader && strcmp(r->m->role, "replica") == 0 ? 1 : 2;
	}
	qsort(rows, v->n_members, sizeof(*rows), row_cmp);
	return v->n_members;
}

/* "Leader" for the holder of the key, "Sync Standby" for a replica the sync
 * key names; otherwise the published role with a capital letter
 * ("Replica", "Stopped", ...). */
static void table_role(const struct row *r, char *buf, size_t len)
{
	if (r->leader) {
		snprintf(buf, len, "%s", r->standby ? "Standby Leader" : "Leader");
		return;
	}
	if (r->sync && strcmp(r->m->role, "replica") == 0) {
		snprintf(buf, len, "Sync Standby");
		return;
	}
	snprintf(buf, len, "%s", r->m->role);
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] = (char)(buf[0] - 'a' + 'A');
}

/* The columns; list -e adds Scheduled restart before Tags (without -e,
 * Tags takes its place: fill_member_cells moves it). */
enum { COL_MEMBER, COL_HOST, COL_ROLE, COL_STATE, COL_TL, COL_LAG, COL_PENDING, COL_SCHED, COL_TAGS, N_MEMBER_COLS };

/* "at" of the member's scheduled_restart ("" when none). */
static void scheduled_restart_at(const struct ctl *x, const char *name, char *buf, size_t len)
{
	json_t *rec = member_record(x, name);
	const char *at = json_string_value(json_object_get(json_object_get(rec, "scheduled_restart"), "at"));

	snprintf(buf, len, "%s", at ? at : "");
	json_decref(rec);
}

/* Appends " word" to the tags cell (cut when the cell is full). */
static void tags_add(char *cell, size_t len, const char *word)
{
	size_t used = strlen(cell), n = strlen(word);

	if (used > 0 && used + 1 < len)
		cell[used++] = ' ';
	if (n > len - used - 1)
		n = len - used - 1; /* cut: the table cell is full */
	memcpy(cell + used, word, n);
	cell[used + n] = '\0';
}

/* The tags after nofailover/nosync/failover_priority: noloadbalance,
 * nostream, replicatefrom=NODE, then the custom ones as KEY=VALUE. */
static void more_tags(const struct ha_member *m, char *cell, size_t len)
{
	json_t *custom = m->custom_tags[0] ? json_loads(m->custom_tags, 0, NULL) : NULL;
	const char *key;
	json_t *value;
	char word[400];

	if (m->noloadbalance)
		tags_add(cell, len, "noloadbalance");
	if (m->nostream)
		tags_add(cell, len, "nostream");
	if (m->replicatefrom[0]) {
		snprintf(word, sizeof(word), "replicatefrom=%s", m->replicatefrom);
		tags_add(cell, len, word);
	}
	json_object_foreach(custom, key, value) {
		char *text = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);

		snprintf(word, sizeof(word), "%.63s=%.300s", key, text ? text : json_string_value(value));
		free(text);
		tags_add(cell, len, word);
	}
	json_decref(custom);
}

static void fill_member_cells(const struct ctl *x, const struct row *r, bool topology, bool extended, table_row cells)
{
	const char *indent = topology && r->depth == 1 ? "+ " : "";

	snprintf(cells[COL_MEMBER], TABLE_CELL, "%s%s", indent, r->m->name);
	if (strchr(r->m->host, ':'))
		snprintf(cells[COL_HOST], TABLE_CELL, "[%s]:%d", r->m->host, r->m->port);
	else
		snprintf(cells[COL_HOST], TABLE_CELL, "%s:%d", r->m->host, r->m->port);
	table_role(r, cells[COL_ROLE], TABLE_CELL);
	snprintf(cells[COL_STATE], TABLE_CELL, "%s", r->m->state);
	if (r->m->timeline > 0)
		snprintf(cells[COL_TL], TABLE_CELL, "%" PRIu32, r->m->timeline);
	if (r->leader)
		cells[COL_LAG][0] = '\0';
	else if (r->lag_known)
		snprintf(cells[COL_LAG], TABLE_CELL, "%.1f", (double)r->lag / (1024.0 * 1024.0));
	else
		snprintf(cells[COL_LAG], TABLE_CELL, "unknown");
	snprintf(cells[COL_PENDING], TABLE_CELL, "%s", r->m->pending_restart ? "*" : "");
	{
		char prio[32] = "";

		if (r->m->failover_priority != 1 && !r->m->nofailover)
			snprintf(prio, sizeof(prio), "failover_priority=%d", r->m->failover_priority);
		snprintf(cells[COL_TAGS], TABLE_CELL, "%s%s%s%s%s", r->m->nofailover ? "nofailover" : "",
		         r->m->nofailover && r->m->nosync ? " " : "", r->m->nosync ? "nosync" : "",
		         prio[0] && (r->m->nofailover || r->m->nosync) ? " " : "", prio);
		more_tags(r->m, cells[COL_TAGS], TABLE_CELL);
	}
	if (extended)
		scheduled_restart_at(x, r->m->name, cells[COL_SCHED], TABLE_CELL);
	else
		memcpy(cells[COL_SCHED], cells[COL_TAGS], TABLE_CELL);
}

/* "Standby cluster: ..." saying what the cluster does with its remote,
 * not only what its configuration asks: its leader follows it (a standby
 * leader whose WAL receiver streams), refuses it (its agent does not trust
 * the address and keeps its Postgres as it is: a primary stays the
 * primary), or runs as its replica without streaming from it; then the
 * other members that would refuse it if they led. The members publish
 * this in their keys (standby_trust, replication_state: loop_publish.c). */
static void print_standby_line(const struct ctl *x)
{
	const struct ha_member *l = x->view->has_leader ? ha_find_member(x->view, x->view->leader) : NULL;
	json_t *rec = l ? member_record(x, l->name) : NULL;
	const char *rs = json_string_value(json_object_get(rec, "replication_state"));
	const char *refuses = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "refuses"));
	const char *follows = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "follows"));
	/* Why it refuses, in its own words (escaped: it comes from etcd). */
	const char *why = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "why"));
	char why_esc[400] = "";
	/* The config key unreadable: the leader follows its last good
	 * settings; what batonctl parsed is its own bootstrap.dcs. */
	const bool by_follows = x->view->config_key != HA_CONFIG_VALID && follows;
	char hp[300], others[400] = "";
	size_t used = 0;

	if (why)
		log_escape(why, why_esc, sizeof(why_esc), false);

	site_hostport(x->view->standby_host, x->view->standby_port, hp, sizeof(hp));
	if (by_follows)
		snprintf(hp, sizeof(hp), "%s", follows);
	for (size_t i = 0; i < x->view->n_members; i++) {
		const struct ha_member *m = &x->view->members[i];
		json_t *r = l && m == l ? NULL : member_record(x, m->name);
		const char *no = json_string_value(json_object_get(json_object_get(r, "standby_trust"), "refuses"));

		if (no && strcmp(no, hp) == 0 && used < sizeof(others))
			used += (size_t)snprintf(others + used, sizeof(others) - used, "%s%s", used ? ", " : "",
			                         m->name);
		json_decref(r);
	}
	if (!l)
		printf("Standby cluster: %s, not followed (no leader now)", hp);
	else if (refuses && strcmp(refuses, hp) == 0 && why)
		printf("Standby cluster: refuses %s (%s: %s)", hp, l->name, why_esc);
	else if ((!by_follows &&
	          site_member_trust(rec, x->view->standby_host, x->view->standby_port) == SITE_UNTRUSTED) ||
	         (refuses && strcmp(refuses, hp) == 0))
		printf("Standby cluster: refuses %s (not trusted by %s: no Postgres TLS, not in its node file's "
		       "postgresql.standby_cluster_remotes)",
		       hp, l->name);
	else if (strcmp(l->role, "replica") != 0 || strcmp(l->state, "running") != 0)
		printf("Standby cluster: %s, not followed (%s is %s, %s)", hp, l->name, l->role, l->state);
	else if (rs && strcmp(rs, "streaming") != 0)
		printf("Standby cluster: %s, not streaming (%s replays no stream from it)", hp, l->name);
	else
		printf("Standby cluster: follows %s", hp);
	if (others[0])
		printf("; %s would refuse it (not trusted)", others);
	putchar('\n');
	json_decref(rec);
}

/* Does the leader say it streams from a standby_cluster remote? */
static bool leader_follows_remote(const struct ctl *x)
{
	json_t *rec = x->view->has_leader ? member_record(x, x->view->leader) : NULL;
	bool yes = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "follows")) != NULL;

	json_decref(rec);
	return yes;
}

/* The lines above the table: maintenance mode first and loud, the cluster,
 * a pending switchover. */
static void print_cluster_head(const struct ctl *x)
{
	const struct ha_cluster_view *v = x->view;

	if (v->paused)
		puts("Maintenance mode: on (paused) - no failover, agents leave Postgres alone");
	if (v->sysid)
		printf("Cluster: %s (%" PRIu64 ")\n", x->cfg.scope, v->sysid);
	else if (v->init_in_progress)
		printf("Cluster: %s (initializing)\n", x->cfg.scope);
	else
		printf("Cluster: %s (uninitialized)\n", x->cfg.scope);
	if (v->sysid && v->config_key != HA_CONFIG_VALID)
		printf("Config key: %s - every agent keeps the last good settings it read (the mode shown here "
		       "is the leader's own report where it gives one)\n",
		       v->config_key == HA_CONFIG_MISSING ? "missing" : "invalid (see the warning above)");
	if (v->standby_cluster || (v->config_key != HA_CONFIG_VALID && leader_follows_remote(x)))
		print_standby_line(x);
	if (v->has_switchover) {
		char what[200];

		dcs_switchover_describe(v, what, sizeof(what));
		printf("Switchover pending: %s\n", what);
	} else if (ctl_kv(x, x->keys.switchover)) {
		puts("Switchover pending: an unreadable request (batonctl switchover --cancel removes it)");
	}
	for (size_t i = 0; i < v->n_members; i++) {
		json_t *rec = member_record(x, v->members[i].name), *sr = json_object_get(rec, "scheduled_restart");
		const char *at = json_string_value(json_object_get(sr, "at"));

		const char *bad = json_string_value(json_object_get(rec, "config_error"));

		if (at)
			printf("Scheduled restart: %s at %s%s (batonctl restart --cancel withdraws it)\n",
			       v->members[i].name, at,
			       json_is_true(json_object_get(sr, "restart_pending")) ? " if a restart is pending" : "");
		/* The agent's word (loop_publish.c): a restart or a switchover
		 * would fail, and both are refused until it is fixed. */
		if (bad)
			printf("Config error: %s: Postgres refuses %.300s; restarts and switchovers are refused until "
			       "it is fixed (batonctl edit-config --pg NAME=)\n",
			       v->members[i].name, bad);
		json_decref(rec);
	}
}

/* A member as a JSON object (new reference; NULL when out of memory). */
static json_t *member_object(const struct row *r)
{
	return json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:o, s:b, s:I, s:s, s:b, s:b, s:b, s:o}", "name", r->m->name,
	                 "host", r->m->host, "port", r->m->port, "role",
	                 r->standby  ? "standby_leader"
	                 : r->leader ? "primary"
	                             : r->m->role,
	                 "state", r->m->state, "timeline", (json_int_t)r->m->timeline, "lag",
	                 r->lag_known ? json_integer((json_int_t)r->lag) : json_null(), "leader", (int)r->leader, "lsn",
	                 (json_int_t)r->m->lsn, "api_url", r->m->api_url, "nofailover", (int)r->m->nofailover,
	                 "pending_restart", (int)r->m->pending_restart, "sync_standby", (int)r->sync, "tags",
	                 dcs_member_tags(r->m));
}

/* One drawing of the members (x read): the table with the lines above it,
 * or the JSON/YAML document. JSON/YAML: list is a flat array; topology
 * nests each leader's replicas under "replicas". */
static int print_members(const struct ctl *x, const struct args *a, bool topology, struct row *rows, table_row *cells)
{
	static const char *const heads[N_MEMBER_COLS] = {
		"Member", "Host", "Role", "State", "TL", "Lag in MB", "Pending restart", "Scheduled restart", "Tags"
	};
	static const char *const heads_short[N_MEMBER_COLS - 1] = { "Member",          "Host", "Role",
		                                                    "State",           "TL",   "Lag in MB",
		                                                    "Pending restart", "Tags" };
	struct table t = { a->extended ? N_MEMBER_COLS : N_MEMBER_COLS - 1, a->extended ? heads : heads_short,
		           (1u << COL_TL) | (1u << COL_LAG), cells, 0 };
	static const char *const passed[] = { "scheduled_restart", "replication_state", "standby_trust",
		                              "config_error" };
	json_t *arr = NULL, *top = NULL;
	size_t n;
	int rc = EXIT_FAILED;

	n = build_rows(x->view, rows, topology);
	if (a->format == FMT_TABLE) {
		memset(cells, 0, HA_MAX_MEMBERS * sizeof(*cells));
		for (size_t i = 0; i < n; i++)
			fill_member_cells(x, &rows[i], topology, a->extended, cells[i]);
		t.n_rows = n;
		print_cluster_head(x);
		table_print(&t);
		return EXIT_DONE;
	}
	arr = json_array();
	if (!arr)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		json_t *o = member_object(&rows[i]), *rec;

		if (!o)
			goto oom;
		rec = member_record(x, rows[i].m->name);
		/* As the member published them (loop_publish.c): the standby
		 * line of the table comes from standby_trust and
		 * replication_state. */
		for (size_t k = 0; k < sizeof(passed) / sizeof(passed[0]); k++)
			if (json_object_get(rec, passed[k]))
				json_object_set(o, passed[k], json_object_get(rec, passed[k]));
		json_decref(rec);
		if (topology && rows[i].leader) {
			top = o;
			if (json_object_set_new(o, "replicas", json_array()) != 0)
				goto oom;
		}
		if (topology && rows[i].depth == 1 && top) {
			if (json_array_append_new(json_object_get(top, "replicas"), o) != 0)
				goto oom;
		} else if (json_array_append_new(arr, o) != 0) {
			goto oom;
		}
	}
	if (!print_value(arr, a->format, false))
		goto oom;
	rc = EXIT_DONE;
	goto cleanup;
oom:
	rc = failed("out of memory");
cleanup:
	json_decref(arr);
	return rc;
}

/* The line above each redraw of list -W: the screen cleared first on a
 * terminal (past the escaping stream: these are our own bytes), then the
 * time. */
static void watch_head(void)
{
	char when[32];

	dcs_format_utc(clk_wall(), when, sizeof(when));
	fflush(stdout);
	if (isatty(STDOUT_FILENO) && json_out) {
		fputs("\033[H\033[2J", json_out);
		fflush(json_out);
	}
	printf("%s\n", when);
}

/* list and topology: the same rows, in their order; with --watch, drawn
 * again every --interval seconds, --count times (or until Ctrl-C). */
static int show_members(const char *config_path, const struct args *a, bool topology)
{
	struct row *rows = NULL;
	table_row *cells = NULL;
	struct ctl x;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	rows = calloc(HA_MAX_MEMBERS, sizeof(*rows));
	cells = calloc(HA_MAX_MEMBERS, sizeof(*cells));
	if (!rows || !cells) {
		rc = failed("out of memory");
		goto cleanup;
	}
	for (long i = 0;; i++) {
		if (i > 0) {
			sleep_ms((long)(a->interval * 1000.0));
			/* etcd unreachable for a moment: say so, and go on watching */
			rc = ctl_read(&x, true);
		}
		if (a->watch)
			watch_head();
		if (rc == EXIT_DONE)
			rc = print_members(&x, a, topology, rows, cells);
		fflush(stdout);
		if (!a->watch || (a->count > 0 && i + 1 >= a->count))
			break;
	}
cleanup:
	free(cells);
	free(rows);
	ctl_close(&x);
	return rc;
}

int cmd_list(const char *config_path, const struct args *a)
{
	return show_members(config_path, a, false);
}

int cmd_topology(const char *config_path, const struct args *a)
{
	return show_members(config_path, a, true);
}
