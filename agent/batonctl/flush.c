/*
 * flush.c - batonctl flush [CLUSTER] [MEMBER...] restart|switchover, as
 * patronictl has it: withdraws what is scheduled. `restart` sends DELETE
 * /restart to each member named (or every member that keeps a scheduled
 * restart; restart_cancel in node_actions.c, which restart --cancel uses
 * too). `switchover` sends DELETE /switchover to the leader's REST API, which
 * deletes the switchover key; when no leader answers, the key is deleted
 * through ops.c (as switchover --cancel does), with a compare on its
 * revision.
 */
#include <stdio.h>
#include <string.h>

#include "agent/batonctl/common.h"
#include "agent/ops.h"

static int flush_switchover(struct ctl *x, const struct args *a)
{
	const struct ha_member *leader = x->view->has_leader ? ha_find_member(x->view, x->view->leader) : NULL;
	char why[1200], err[1024];

	if (!ctl_kv(x, x->keys.switchover))
		return failed("flush switchover: no switchover is pending");
	if (!confirmed(a, "flush", "withdraw the pending switchover"))
		return EXIT_FAILED;
	if (leader && post_member(x, leader, "DELETE", "/switchover", NULL, API_TIMEOUT_S, why, sizeof(why))) {
		printf("Pending switchover cancelled (by %s).\n", leader->name);
		return EXIT_DONE;
	}
	if (leader)
		fprintf(stderr, "batonctl: %s: DELETE /switchover failed: %s; deleting the key instead\n", leader->name,
		        why);
	if (!ops_switchover_cancel(x->client, &x->keys, err, sizeof(err)))
		return failed("%s", err);
	puts("Pending switchover cancelled.");
	return EXIT_DONE;
}

int cmd_flush(const char *config_path, const struct args *a)
{
	const struct ha_member *sel[HA_MAX_MEMBERS];
	const char *target = a->pos[a->n_pos - 1];
	struct args members = *a;
	char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 100];
	struct ctl x;
	size_t n = 0;
	int rc;

	members.n_pos = a->n_pos - 1; /* the member names before the target */
	if (strcmp(target, "restart") != 0 && strcmp(target, "switchover") != 0)
		return usage_error("flush: the last argument must be restart or switchover, not '%s'", target);
	if (strcmp(target, "switchover") == 0 && (members.n_pos > 0 || a->role))
		return usage_error("flush switchover takes no member names nor --role (is '%s' a cluster name? this "
		                   "configuration's cluster is the one its -c FILE names)",
		                   members.n_pos ? a->pos[0] : a->role);
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (strcmp(target, "switchover") == 0) {
		rc = flush_switchover(&x, a);
		goto cleanup;
	}
	if (!select_members(&x, &members, sel, &n)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (n == 0) {
		rc = failed("no member matches");
		goto cleanup;
	}
	name_list(sel, n, names, sizeof(names));
	snprintf(what, sizeof(what), "withdraw the scheduled restarts of %s", members.n_pos ? names : "every member");
	if (!confirmed(a, "flush", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	rc = restart_cancel(&x, members.n_pos > 0, sel, n);
cleanup:
	ctl_close(&x);
	return rc;
}
