/*
 * node_actions.c - batonctl restart, reload and reinit: actions on single
 * members, sent as requests to each member's REST API (post_member, through
 * peer.c), never written into etcd by batonctl. restart goes one member at a
 * time, replicas first and the leader last, each waited for; reload and
 * reinit are one request per member selected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"

/* Sends one action to each member selected; one line per member. */
static int member_action(const char *config_path, const struct args *a, const char *path, const char *body,
                         const char *done, bool replicas_only, bool ask)
{
	const struct ha_member *sel[HA_MAX_MEMBERS];
	char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 100];
	json_t *arr = NULL;
	struct ctl x;
	size_t n = 0, n_failed = 0;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (!select_members(&x, a, sel, &n)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (replicas_only && n == 1 && is_leader(x.view, sel[0]->name)) {
		rc = failed("'%s' is the leader: %s applies to replicas only (switch over first)", sel[0]->name,
		            path + 1);
		goto cleanup;
	}
	if (n == 0) {
		rc = failed("no member matches");
		goto cleanup;
	}
	name_list(sel, n, names, sizeof(names));
	if (ask) {
		snprintf(what, sizeof(what), "%s %s", path + 1, names);
		if (!confirmed(a, path + 1, what)) {
			rc = EXIT_FAILED;
			goto cleanup;
		}
	} else if (!a->force && isatty(STDIN_FILENO)) {
		/* An operator at a terminal confirms; scripts (and --force) do not. */
		snprintf(what, sizeof(what), "%s %s?", path + 1, names);
		if (!confirm(what)) {
			rc = failed("not confirmed; nothing done");
			goto cleanup;
		}
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char why[1200];
		bool ok = post_member(&x, sel[i], "POST", path, body, API_TIMEOUT_S, why, sizeof(why));

		if (!ok)
			n_failed++;
		if (a->json)
			json_array_append_new(arr, json_pack("{s:s, s:b, s:s}", "member", sel[i]->name, "ok", (int)ok,
			                                     "message", why));
		else if (ok)
			printf("%s: %s\n", sel[i]->name, done);
		else
			fprintf(stderr, "batonctl: %s: %s failed: %s\n", sel[i]->name, path + 1, why);
	}
	if (a->json && (!arr || !print_json_value(arr, false)))
		n_failed++;
	rc = n_failed ? EXIT_FAILED : EXIT_DONE;
cleanup:
	json_decref(arr);
	ctl_close(&x);
	return rc;
}

/* restart --cancel and flush restart: DELETE /restart on the members that
 * keep a scheduled restart (of those named, or all). */
int restart_cancel(struct ctl *x, bool named, const struct ha_member *const *sel, size_t n)
{
	size_t n_done = 0, n_failed = 0;

	for (size_t i = 0; i < n; i++) {
		json_t *rec = member_record(x, sel[i]->name);
		bool kept = json_is_object(json_object_get(rec, "scheduled_restart"));
		char why[1200];

		json_decref(rec);
		if (!kept && !named)
			continue;
		if (post_member(x, sel[i], "DELETE", "/restart", NULL, API_TIMEOUT_S, why, sizeof(why))) {
			printf("%s: scheduled restart cancelled\n", sel[i]->name);
			n_done++;
		} else {
			fprintf(stderr, "batonctl: %s: cancel failed: %s\n", sel[i]->name, why);
			n_failed++;
		}
	}
	if (n_done == 0 && n_failed == 0)
		return failed("no member keeps a scheduled restart");
	return n_failed ? EXIT_FAILED : EXIT_DONE;
}

/*
 * Did a primary's restart report ("restarted (max_connections 150 -> 100,
 * work_mem ...) in 0.2 s, primary") lower a hot-standby parameter? Then the
 * replicas, which keep at least the primary's values as they replayed them
 * (pg_controldata), can take the lower value only after they replayed the
 * primary's restart: a few seconds later.
 */
static bool lowered_hot_standby(const char *msg)
{
	for (size_t i = 0; i < PG_HS_PARAMS; i++) {
		const char *name = pg_hot_standby_params[i].name, *p = msg;
		size_t len = strlen(name);

		while ((p = strstr(p, name)) != NULL) {
			long before, after;

			p += len;
			/* "max_connections 200 -> 150", or "-> default 100" when
			 * the parameter was taken out (loop_restart.c). */
			if ((sscanf(p, " %ld -> %ld", &before, &after) == 2 ||
			     sscanf(p, " %ld -> default %ld", &before, &after) == 2) &&
			    after < before)
				return true;
		}
	}
	return false;
}

/*
 * After restart --pending lowered a hot-standby parameter on the primary:
 * its replicas become pending once they replayed the primary's restart;
 * restart each of them (order[0..n), the leader among them skipped) then,
 * waiting at most 30 s, so that one command applies the change. Reports
 * each (JSON rows appended to arr) and adds the names of those restarted to
 * restarted[*n_restarted] (room for HA_MAX_MEMBERS); returns how many failed.
 */
static size_t restart_replicas_once_pending(struct ctl *x, const struct args *a, const struct ha_member *const *order,
                                            size_t n, const char *text, double timeout_s, json_t *arr,
                                            char (*restarted)[HA_NAME_MAX], size_t *n_restarted)
{
	bool waiting[HA_MAX_MEMBERS];
	char wanted[HA_MAX_MEMBERS][HA_NAME_MAX];
	size_t n_wanted = 0, left, n_failed = 0;
	double until = clk_mono() + 30.0;

	for (size_t i = 0; i < n; i++)
		if (!is_leader(x->view, order[i]->name)) {
			snprintf(wanted[n_wanted], sizeof(wanted[n_wanted]), "%s", order[i]->name);
			waiting[n_wanted++] = true;
		}
	left = n_wanted;
	if (left && !a->json)
		printf("waiting (at most 30 s) for the replicas to replay the primary's lower value\n");
	while (left && clk_mono() < until && n_failed == 0) {
		sleep_ms(1000);
		if (ctl_read(x, true) != EXIT_DONE)
			continue;
		for (size_t j = 0; j < n_wanted; j++) {
			const struct ha_member *m = waiting[j] ? ha_find_member(x->view, wanted[j]) : NULL;
			char why[1200];
			const char *msg;
			long code;
			bool ok;

			if (!m || !m->pending_restart)
				continue;
			waiting[j] = false;
			left--;
			ok = post_member(x, m, "POST", "/restart", text, timeout_s, why, sizeof(why));
			code = answer_code(why, &msg);
			if (a->json)
				json_array_append_new(arr,
				                      json_pack("{s:s, s:b, s:s, s:s}", "member", m->name, "ok",
				                                (int)(ok && code != 202), "outcome",
				                                ok ? (code != 202 ? "done" : "in progress") : "failed",
				                                "message", msg));
			else if (ok && code != 202)
				printf("%s: %s\n", m->name, msg);
			else
				fprintf(stderr, "batonctl: %s: restart %s: %s\n", m->name,
				        ok ? "still in progress" : "failed", why);
			if (!ok || code == 202)
				n_failed++;
			else if (strncmp(msg, "restarted", 9) == 0) {
				size_t k = 0;

				while (k < *n_restarted && strcmp(restarted[k], m->name) != 0)
					k++;
				if (k == *n_restarted && k < HA_MAX_MEMBERS)
					snprintf(restarted[(*n_restarted)++], HA_NAME_MAX, "%s", m->name);
			}
		}
	}
	if (left && n_failed == 0 && !a->json)
		printf("%zu replica(s) not yet pending after 30 s: run batonctl restart --pending again once "
		       "batonctl list shows them pending\n",
		       left);
	return n_failed;
}

/* Is member m of x's view back after its restart: running, the leader
 * as a primary (or a standby leader), a replica streaming again (its
 * member key's replication_state; a nostream one replays from the archive
 * and only runs)? what: a few words for the lines printed. */
static bool restart_back(const struct ctl *x, const struct ha_member *m, char *what, size_t len)
{
	json_t *rec = member_record(x, m->name);
	const char *rs = json_string_value(json_object_get(rec, "replication_state"));
	bool back = false;

	if (strcmp(m->state, "running") != 0 || (strcmp(m->role, "primary") != 0 && strcmp(m->role, "replica") != 0)) {
		snprintf(what, len, "%s, %s", m->role, m->state);
	} else if (strcmp(m->role, "primary") == 0) {
		snprintf(what, len, "primary");
		back = true;
	} else if (m->nostream || !rs) {
		/* nostream, or an agent that does not publish it: running is all */
		snprintf(what, len, "replica%s", m->nostream ? ", nostream" : "");
		back = true;
	} else {
		snprintf(what, len, "replica, %s", rs);
		back = strcmp(rs, "streaming") == 0;
	}
	json_decref(rec);
	return back;
}

/*
 * After the restarts (names[0..n)): a replica's restart answers once it
 * streams, but a later restart (its primary's, last) breaks that stream
 * again. Waits until every restarted member is back (restart_back), at
 * most wait seconds, then prints where each is (unless json). Returns how
 * many are not back (reported on stderr).
 */
static size_t restart_wait_back(struct ctl *x, const struct args *a, char (*names)[HA_NAME_MAX], size_t n)
{
	double deadline = clk_mono() + a->wait;
	char line[HA_MAX_MEMBERS * (HA_NAME_MAX + 64)];
	size_t missing = n;

	if (n == 0)
		return 0;
	for (;;) {
		if (ctl_read(x, true) == EXIT_DONE) {
			size_t off = 0;

			missing = 0;
			line[0] = '\0';
			for (size_t i = 0; i < n; i++) {
				const struct ha_member *m = ha_find_member(x->view, names[i]);
				char what[96];
				bool back = m && restart_back(x, m, what, sizeof(what));

				if (!m)
					snprintf(what, sizeof(what), "no member key");
				if (!back)
					missing++;
				if (off < sizeof(line))
					off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s (%s)",
					                        i ? ", " : "", names[i], what);
			}
			if (missing == 0) {
				if (!a->json)
					printf("back: %s\n", line);
				return 0;
			}
		}
		if (clk_mono() >= deadline)
			break;
		sleep_ms(POLL_MS * 5);
	}
	fprintf(stderr, "batonctl: restart: after %g s, %zu restarted member(s) not back to running/streaming: %s\n",
	        a->wait, missing, line[0] ? line : "(cannot read the cluster)");
	return missing;
}

/*
 * restart: the members selected, one at a time, replicas first and the
 * leader last (without members named this is a rolling restart of the
 * cluster). Each POST /restart answers once that member's Postgres is back
 * (a replica: streaming again), so the next one starts only then; a member
 * that fails or does not come back within the wait stops the sequence.
 * --scheduled asks every member selected to restart at that time instead.
 */
int cmd_restart(const char *config_path, const struct args *a)
{
	const struct ha_member *sel[HA_MAX_MEMBERS], *order[HA_MAX_MEMBERS];
	char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 200], when_text[32] = "";
	json_t *body = NULL, *arr = NULL;
	char *text = NULL;
	time_t when = 0;
	struct ctl x;
	size_t n = 0, k = 0, n_failed = 0, n_restarted = 0;
	char restarted[HA_MAX_MEMBERS][HA_NAME_MAX];
	bool lowered_leader = false;
	double timeout_s;
	int rc;

	if (a->scheduled && (!parse_when(a->scheduled, &when)))
		return usage_error("restart: --scheduled needs an ISO 8601 time with a zone (2026-11-25T20:00:00Z) or "
		                   "'now', not '%s'",
		                   a->scheduled);
	if (a->cancel && (a->scheduled || a->pending || a->pg_version))
		return usage_error("restart: --cancel takes no --scheduled, --pending or --pg-version");
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (!select_members(&x, a, sel, &n)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (n == 0) {
		rc = failed("no member matches");
		goto cleanup;
	}
	if (a->cancel) {
		rc = restart_cancel(&x, a->n_pos > 0, sel, n);
		goto cleanup;
	}
	/* Replicas first (by name), the leader last. */
	for (size_t i = 0; i < n; i++)
		if (!is_leader(x.view, sel[i]->name))
			order[k++] = sel[i];
	for (size_t i = 0; i < n; i++)
		if (is_leader(x.view, sel[i]->name))
			order[k++] = sel[i];
	name_list(order, n, names, sizeof(names));
	if (when) {
		dcs_format_utc((double)when, when_text, sizeof(when_text));
		snprintf(what, sizeof(what), "schedule a restart of Postgres on %s at %s%s", names, when_text,
		         a->pending ? " (where a restart is pending then)" : "");
	} else {
		snprintf(what, sizeof(what), "restart Postgres on %s%s%s", names,
		         n > 1 ? ", one at a time in this order" : "",
		         a->pending ? " (where a restart is pending)" : "");
	}
	if (!confirmed(a, "restart", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	body = json_object();
	if (!body || json_object_set_new(body, "restart_pending", json_boolean(a->pending)) != 0 ||
	    (a->pg_version && json_object_set_new(body, "postgres_version", json_string(a->pg_version)) != 0) ||
	    (a->role && strcmp(a->role, "any") != 0 && json_object_set_new(body, "role", json_string(a->role)) != 0) ||
	    (when && json_object_set_new(body, "schedule", json_string(when_text)) != 0) ||
	    json_object_set_new(body, "wait", json_real(a->wait > 60 ? 60.0 : a->wait)) != 0 ||
	    !(text = json_dumps(body, JSON_COMPACT))) {
		rc = failed("out of memory");
		goto cleanup;
	}
	timeout_s = API_TIMEOUT_S + ceil(a->wait > 60 ? 60.0 : a->wait);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct ha_member *m = order[i];
		char why[1200];
		const char *msg;
		bool ok = post_member(&x, m, "POST", "/restart", text, timeout_s, why, sizeof(why));
		long code = answer_code(why, &msg);
		/* --wait 0: asked, not waited for (nor one at a time). */
		bool queued = ok && code == 202 && (when || a->wait <= 0);
		const char *outcome = "in progress";

		if (!ok)
			outcome = "failed";
		else if (code != 202)
			outcome = "done";
		else if (when)
			outcome = "scheduled";
		else if (queued)
			outcome = "requested";

		if (ok && code != 202 && is_leader(x.view, m->name) && lowered_hot_standby(msg))
			lowered_leader = true;
		if (ok && code != 202 && strncmp(msg, "restarted", 9) == 0)
			snprintf(restarted[n_restarted++], sizeof(restarted[0]), "%s", m->name);
		if (a->json) {
			json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s}", "member", m->name, "ok",
			                                     (int)(ok && (code != 202 || queued)), "outcome", outcome,
			                                     "message", msg));
		} else if (ok && when) {
			printf("%s: restart scheduled at %s\n", m->name, when_text);
		} else if (queued) {
			printf("%s: restart requested (not waiting for it: --wait 0)\n", m->name);
		} else if (ok && code != 202) {
			printf("%s: %s\n", m->name, msg);
		} else if (ok) {
			fprintf(stderr,
			        "batonctl: %s: restart still in progress after %g s (see batonctl list and the agent's log)\n",
			        m->name, a->wait);
		} else {
			fprintf(stderr, "batonctl: %s: restart failed: %s\n", m->name, why);
		}
		if (!ok || (code == 202 && !queued)) {
			n_failed++;
			if (!when && i + 1 < n) {
				name_list(order + i + 1, n - i - 1, names, sizeof(names));
				if (!a->json)
					fprintf(stderr, "batonctl: stopping here: not restarting %s\n", names);
				break;
			}
		}
	}
	/* restart --pending that lowered a hot-standby parameter on the
	 * primary: its replicas must follow. */
	if (a->pending && !when && a->wait > 0 && n_failed == 0 && lowered_leader)
		n_failed += restart_replicas_once_pending(&x, a, order, n, text, timeout_s, arr, restarted,
		                                          &n_restarted);
	/* Done means back: every member restarted here runs again, a replica
	 * streaming (its primary's restart, last, broke its stream). */
	if (!when && a->wait > 0 && n_failed == 0)
		n_failed += restart_wait_back(&x, a, restarted, n_restarted);
	if (a->json && (!arr || !print_json_value(arr, false)))
		n_failed++;
	rc = n_failed ? EXIT_FAILED : EXIT_DONE;
cleanup:
	free(text);
	json_decref(body);
	json_decref(arr);
	ctl_close(&x);
	return rc;
}

int cmd_reload(const char *config_path, const struct args *a)
{
	return member_action(config_path, a, "/reload", "{}",
	                     "reload requested (the agent re-reads its file and reloads Postgres, as on SIGHUP)", false,
	                     false);
}

int cmd_reinit(const char *config_path, const struct args *a)
{
	return member_action(config_path, a, "/reinit", "{}", "reinit requested (wipe and re-clone)", true, true);
}
