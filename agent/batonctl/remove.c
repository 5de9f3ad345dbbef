/*
 * remove.c - batonctl remove CLUSTER: deletes every key of the cluster in
 * etcd (everything under <namespace>/<scope>/), as patronictl remove does,
 * after three typed confirmations read from stdin: the cluster name, the
 * phrase "Yes I am aware", and, when the cluster has a leader, the
 * leader's name. The answers themselves are the proof of intent, so they
 * are read whether stdin is a terminal or not (a script pipes them, on
 * purpose), and there is no --force to skip them.
 *
 * Unlike patronictl, which only warns, remove refuses while any member key
 * exists: member keys carry their agent's lease, so one exists while that
 * agent runs (or for less than a TTL after it died). A running agent that
 * finds its cluster's keys gone could bootstrap a new cluster or take the
 * leader key over a data directory the operator meant to retire.
 *
 * The deletion is one etcd transaction per 100 keys, each guarded by the
 * keys' revisions as read before the questions: a key written meanwhile
 * (an agent started) makes it delete nothing, and batonctl says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/batonctl/common.h"

#define REMOVE_BATCH 100

/* The answer (its trailing newline ignored) given at step: the next step,
 * or -1 when it is wrong. */
int remove_next(enum remove_step step, const char *answer, const char *scope, const char *leader)
{
	size_t len = strlen(answer);
	bool has_leader = leader && *leader;
	const char *want;

	if (len > 0 && answer[len - 1] == '\n')
		len--;
	if (len > 0 && answer[len - 1] == '\r')
		len--;
	switch (step) {
	case REMOVE_ASK_CLUSTER:
		want = scope;
		break;
	case REMOVE_ASK_PHRASE:
		want = REMOVE_PHRASE;
		break;
	case REMOVE_ASK_LEADER:
		if (!has_leader)
			return -1;
		want = leader;
		break;
	default:
		return -1;
	}
	if (strlen(want) != len || strncmp(answer, want, len) != 0)
		return -1;
	if (step == REMOVE_ASK_PHRASE && !has_leader)
		return REMOVE_CONFIRMED;
	return (int)step + 1;
}

/* One line from stdin into buf (truncated lines are wrong answers, not a
 * second answer); false at end of input. */
static bool read_answer(char *buf, size_t len)
{
	size_t n;

	if (!fgets(buf, (int)len, stdin))
		return false;
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n') {
		int c;

		while ((c = getchar()) != EOF && c != '\n')
			;
		buf[0] = '\x01'; /* matches no name */
		buf[1] = '\0';
	}
	return true;
}

/* Deletes kvs[0..n) if none changed since it was read. true when deleted. */
static bool delete_batch(struct ctl *x, const struct etcd_kv *kvs, size_t n, bool *changed)
{
	struct etcd_compare cmp[REMOVE_BATCH];
	struct etcd_op ops[REMOVE_BATCH];
	struct etcd_txn_result tr = { 0 };
	struct etcd_error eerr = { 0 };
	enum etcd_status st;

	for (size_t i = 0; i < n; i++) {
		cmp[i] = (struct etcd_compare){ .key = kvs[i].key,
			                        .target = ETCD_CMP_MOD,
			                        .result = ETCD_CMP_EQUAL,
			                        .number = kvs[i].mod_revision };
		ops[i] = (struct etcd_op){ .kind = ETCD_OP_DELETE, .key = kvs[i].key };
	}
	st = etcd_txn(x->client, cmp, n, ops, n, NULL, 0, &tr, &eerr);
	*changed = st == ETCD_OK && !tr.succeeded;
	etcd_txn_result_free(&tr);
	if (st != ETCD_OK) {
		failed("cannot delete the keys under %s: %s", x->keys.prefix,
		       eerr.message[0] ? eerr.message : etcd_status_name(st));
		return false;
	}
	return !*changed;
}

int cmd_remove(const char *config_path, const struct args *a)
{
	struct etcd_range_req req = { 0 };
	struct etcd_range_result keys = { 0 };
	struct etcd_error eerr = { 0 };
	char leader[HA_NAME_MAX] = "", answer[512], live[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)] = "";
	size_t n_live = 0, used = 0, deleted = 0;
	enum remove_step step = REMOVE_ASK_CLUSTER;
	struct ctl x;
	int rc;

	if (!a->scope_given)
		return usage_error("remove: give the cluster's name (usage: batonctl remove CLUSTER)");
	rc = ctl_open(&x, config_path, false);
	if (rc != EXIT_DONE)
		goto cleanup;
	req.key = x.keys.prefix;
	req.prefix = true;
	req.keys_only = false;
	if (etcd_range(x.client, &req, &keys, &eerr) != ETCD_OK) {
		rc = failed("cannot read %s from etcd: %s", x.keys.prefix, eerr.message);
		goto cleanup;
	}
	if (keys.n_kvs == 0) {
		printf("No key under %s: nothing to remove.\n", x.keys.prefix);
		goto cleanup;
	}
	for (size_t i = 0; i < keys.n_kvs; i++) {
		const struct etcd_kv *kv = &keys.kvs[i];
		size_t plen = strlen(x.keys.members);

		if (strlen(kv->key) != kv->key_len) {
			rc = failed("a key under %s holds a NUL byte: remove it with etcdctl first", x.keys.prefix);
			goto cleanup;
		}
		if (strcmp(kv->key, x.keys.leader) == 0)
			snprintf(leader, sizeof(leader), "%s", kv->value);
		if (strncmp(kv->key, x.keys.members, plen) == 0) {
			int w = snprintf(live + used, sizeof(live) - used, "%s%s", n_live ? ", " : "", kv->key + plen);

			if (w > 0 && (size_t)w < sizeof(live) - used)
				used += (size_t)w;
			n_live++;
		}
	}
	if (n_live) {
		rc = failed("remove: refused: %zu member(s) still registered (%s): stop every agent of cluster %s "
		            "first (a member key lives until its agent stopped and its TTL ran out)",
		            n_live, live, x.cfg.scope);
		goto cleanup;
	}

	printf("Please confirm the cluster name to remove: ");
	fflush(stdout);
	while (step != REMOVE_CONFIRMED) {
		int next;

		if (!read_answer(answer, sizeof(answer))) {
			rc = failed("remove: no answer (end of input); nothing removed");
			goto cleanup;
		}
		next = remove_next(step, answer, x.cfg.scope, leader);
		if (next < 0) {
			rc = failed("remove: the answer does not match; nothing removed");
			goto cleanup;
		}
		step = (enum remove_step)next;
		if (step == REMOVE_ASK_PHRASE)
			printf("You are about to remove all information in etcd for cluster %s (%zu keys under %s), "
			       "please type \"%s\": ",
			       x.cfg.scope, keys.n_kvs, x.keys.prefix, REMOVE_PHRASE);
		else if (step == REMOVE_ASK_LEADER)
			printf("The leader key still names a leader. Please type its name to continue: ");
		fflush(stdout);
	}
	putchar('\n');

	for (size_t i = 0; i < keys.n_kvs; i += REMOVE_BATCH) {
		size_t n = keys.n_kvs - i < REMOVE_BATCH ? keys.n_kvs - i : REMOVE_BATCH;
		bool changed = false;

		if (!delete_batch(&x, keys.kvs + i, n, &changed)) {
			if (changed)
				rc = failed("remove: a key under %s changed while you confirmed (an agent running?); "
				            "%zu of %zu keys removed, run remove again",
				            x.keys.prefix, deleted, keys.n_kvs);
			else
				rc = EXIT_FAILED;
			goto cleanup;
		}
		deleted += n;
	}
	printf("Removed %zu keys under %s: cluster %s is gone from etcd (its data directories are left as they "
	       "are).\n",
	       deleted, x.keys.prefix, x.cfg.scope);
cleanup:
	etcd_range_result_free(&keys);
	ctl_close(&x);
	return rc;
}
