/*
 * history.c - batonctl history: the leader changes the agents recorded in
 * the history key (timeline, the LSN where it began, reason, time, new
 * leader), as a table or as the key's JSON array (or that array in YAML).
 */
#include <stdio.h>
#include <stdlib.h>

#include "agent/batonctl/common.h"

int cmd_history(const char *config_path, const struct args *a)
{
	static const char *const heads[] = { "TL", "LSN", "Reason", "Time", "New leader" };
	struct table t = { 5, heads, 1u, NULL, 0 };
	const struct etcd_kv *kv;
	json_t *arr = NULL, *e;
	struct ctl x;
	size_t i;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	kv = ctl_kv(&x, x.keys.history);
	arr = kv ? json_loads(kv->value, 0, NULL) : json_array();
	if (!json_is_array(arr)) {
		rc = failed("%s: not a JSON array", x.keys.history);
		goto cleanup;
	}
	/* Patroni's entries (a cluster moved from it) in baton's shape */
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *own = dcs_history_entry(json_array_get(arr, i));

		if (!own || json_array_set_new(arr, i, own) != 0) {
			rc = failed("%s: entry %zu is neither baton's object nor Patroni's list", x.keys.history, i);
			goto cleanup;
		}
	}
	if (a->format != FMT_TABLE) {
		rc = print_value(arr, a->format, false) ? EXIT_DONE : failed("out of memory");
		goto cleanup;
	}
	t.rows = calloc(json_array_size(arr) + 1, sizeof(*t.rows));
	if (!t.rows) {
		rc = failed("out of memory");
		goto cleanup;
	}
	json_array_foreach(arr, i, e) {
		json_int_t tl = json_integer_value(json_object_get(e, "timeline"));
		uint64_t lsn = (uint64_t)json_integer_value(json_object_get(e, "lsn"));
		const char *reason = json_string_value(json_object_get(e, "reason"));
		const char *when = json_string_value(json_object_get(e, "time"));
		const char *who = json_string_value(json_object_get(e, "leader"));

		snprintf(t.rows[i][0], TABLE_CELL, "%" JSON_INTEGER_FORMAT, tl);
		snprintf(t.rows[i][1], TABLE_CELL, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
		snprintf(t.rows[i][2], TABLE_CELL, "%s", reason ? reason : "");
		snprintf(t.rows[i][3], TABLE_CELL, "%s", when ? when : "");
		snprintf(t.rows[i][4], TABLE_CELL, "%s", who ? who : "");
	}
	t.n_rows = json_array_size(arr);
	table_print(&t);
	rc = EXIT_DONE;
cleanup:
	free(t.rows);
	json_decref(arr);
	ctl_close(&x);
	return rc;
}
