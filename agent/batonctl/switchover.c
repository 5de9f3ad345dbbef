/*
 * switchover.c - batonctl switchover and failover: writes the request (now
 * or scheduled) through ops.c, which validates it against the cluster view,
 * then waits, reading the keys, until the leader key names another member
 * whose record says primary, or the request was dropped, or the wait ends.
 * --cancel withdraws a pending request.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "agent/ops.h"

/* The new leader, once the leader key names another member than from and
 * that member's record says primary. */
static bool handed_over(const struct ha_cluster_view *v, const char *from)
{
	const struct ha_member *m;

	if (!v->has_leader || !v->leader[0] || strcmp(v->leader, from) == 0)
		return false;
	m = ha_find_member(v, v->leader);
	return m && strcmp(m->role, "primary") == 0;
}

/* Why member `name` refused or aborted the request whose key was created
 * at revision `request` ("switchover_refused" in its member key,
 * loop_publish.c), into why; false when it says nothing of that request. */
static bool refusal_of(const struct ctl *x, const char *name, int64_t request, char *why, size_t len)
{
	const struct etcd_kv *kv;
	json_t *doc, *r;
	char key[400];
	bool found = false;

	if (request <= 0 || !dcs_member_key(&x->keys, name, key, sizeof(key)) || !(kv = ctl_kv(x, key)))
		return false;
	doc = json_loads(kv->value, 0, NULL);
	r = json_object_get(doc, "switchover_refused");
	if (json_is_integer(json_object_get(r, "request")) &&
	    json_integer_value(json_object_get(r, "request")) == request && json_is_string(json_object_get(r, "why"))) {
		snprintf(why, len, "%s", json_string_value(json_object_get(r, "why")));
		/* Written by whoever can write to etcd: no control characters
		 * reach the terminal. */
		for (char *p = why; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		found = true;
	}
	json_decref(doc);
	return found;
}

/* Waits (at most a->wait seconds) for the switchover to happen; prints the
 * outcome. request: the revision that created the switchover key. */
static int wait_switchover(struct ctl *x, const struct args *a, const char *from, bool failover, int64_t request)
{
	double t0 = clk_mono(), deadline = t0 + a->wait, gone_since = 0;
	int rc;

	for (;;) {
		rc = ctl_read(x, true);
		if (rc == EXIT_DONE && handed_over(x->view, from)) {
			double took = clk_mono() - t0;

			if (a->json)
				printf("{\"kind\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"seconds\":%.3f}\n",
				       failover ? "failover" : "switchover", from, x->view->leader, took);
			else if (from[0])
				printf("%s from %s to %s in %.1f s\n", failover ? "failed over" : "switched over", from,
				       x->view->leader, took);
			else
				printf("failed over to %s in %.1f s\n", x->view->leader, took);
			return EXIT_DONE;
		}
		/* The key gone and the leader says it refused this request. */
		if (rc == EXIT_DONE && !ctl_kv(x, x->keys.switchover) && from[0]) {
			char why[400];

			if (refusal_of(x, from, request, why, sizeof(why)))
				/* Quoted as its key's words: whoever can write etcd can
				 * write them too. */
				return failed("%s refused the %s (its member key says): %s", from,
				              failover ? "failover" : "switchover", why);
		}
		/* The key gone and the leader unchanged for a whole TTL and
		 * two loops: the leader dropped the request. */
		if (rc == EXIT_DONE && !ctl_kv(x, x->keys.switchover)) {
			if (gone_since == 0)
				gone_since = clk_mono();
			else if (clk_mono() - gone_since > x->view->ttl + 2 * x->view->loop_wait)
				return failed("the request was withdrawn, but %s still leads (see the agents' logs)",
				              x->view->has_leader ? x->view->leader : "nobody");
		} else {
			gone_since = 0;
		}
		if (clk_mono() >= deadline)
			break;
		sleep_ms(POLL_MS);
	}
	if (rc != EXIT_DONE)
		return rc;
	if (ctl_kv(x, x->keys.switchover))
		return failed("timed out after %g s: the request is still pending, no agent has acted on it "
		              "(batonctl switchover --cancel withdraws it)",
		              a->wait);
	return failed("timed out after %g s: %s still leads", a->wait,
	              x->view->has_leader ? x->view->leader : "nobody");
}

static int request_switchover(const char *config_path, const struct args *a, bool failover)
{
	struct ops_switchover_req req = { 0 };
	int64_t request = 0;
	char from[HA_NAME_MAX] = "", err[1024];
	struct ctl x;
	int rc;

	req.leader = a->leader;
	req.candidate = a->candidate;
	req.failover = failover;
	req.force = a->force;
	if (a->scheduled && !parse_when(a->scheduled, &req.scheduled_at))
		return usage_error("switchover: --scheduled needs an ISO 8601 time with a zone "
		                   "(2026-11-25T20:00:00Z) or 'now', not '%s'",
		                   a->scheduled);
	if (failover && !a->candidate)
		return usage_error("failover: --candidate NAME is required");
	rc = ctl_open(&x, config_path, !a->cancel);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (a->cancel) {
		if (!ops_switchover_cancel(x.client, &x.keys, err, sizeof(err)))
			rc = failed("%s", err);
		else
			puts("Pending switchover cancelled.");
		goto cleanup;
	}
	if (x.view->has_leader)
		snprintf(from, sizeof(from), "%s", x.view->leader);
	{
		char what[400], t[32] = "now";

		if (req.scheduled_at)
			dcs_format_utc((double)req.scheduled_at, t, sizeof(t));
		snprintf(what, sizeof(what), "%s from %s to %s %s%s", failover ? "fail over" : "switch over",
		         from[0] ? from : "(no leader)", a->candidate ? a->candidate : "the best candidate",
		         req.scheduled_at ? "at " : "", t);
		if (!confirmed(a, failover ? "failover" : "switchover", what)) {
			rc = EXIT_FAILED;
			goto cleanup;
		}
	}
	if (!ops_switchover(x.client, &x.keys, &req, &request, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	if (req.scheduled_at) {
		char t[32];

		dcs_format_utc((double)req.scheduled_at, t, sizeof(t));
		printf("%s from %s to %s scheduled at %s\n", failover ? "failover" : "switchover", from,
		       a->candidate ? a->candidate : "the best candidate", t);
	} else if (a->wait <= 0) {
		printf("%s requested\n", failover ? "failover" : "switchover");
	} else {
		rc = wait_switchover(&x, a, from, failover, request);
	}
cleanup:
	ctl_close(&x);
	return rc;
}

int cmd_switchover(const char *config_path, const struct args *a)
{
	return request_switchover(config_path, a, false);
}

int cmd_failover(const char *config_path, const struct args *a)
{
	return request_switchover(config_path, a, true);
}
