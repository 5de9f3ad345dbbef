/*
 * cluster_config.c - batonctl show-config and edit-config: the cluster-wide
 * configuration (the config key in etcd, not this node's file). show-config
 * prints it validated and canonical, as "key: value" lines or JSON;
 * edit-config changes it with --set/--pg through ops.c (the code the REST
 * API uses, which validates and writes with a compare on the key's
 * revision), or, on a terminal, in $EDITOR, showing the difference before it
 * writes over the revision that was shown. promote-cluster and
 * demote-cluster remove and set its standby_cluster, the same way.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/ops.h"
#include "agent/peer.h"
#include "pg/pg_data.h"

/* A scalar as text ("5", "2.5", "true", "on", a string as is). */
static void scalar_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(buf, len, "null");
}

/* An array as one line's value, as YAML's flow style writes it: "[]",
 * "[site_a, site_b]" (elements that are not scalars as compact JSON). */
static void array_text(const json_t *arr, char *buf, size_t len)
{
	size_t i, off = 1;
	const json_t *e;

	snprintf(buf, len, "[");
	json_array_foreach(arr, i, e) {
		char item[256];
		char *dumped = json_is_object(e) || json_is_array(e) ? json_dumps(e, JSON_COMPACT) : NULL;

		if (dumped)
			snprintf(item, sizeof(item), "%s", dumped);
		else
			scalar_text(e, item, sizeof(item));
		free(dumped);
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", item);
	}
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

/* Flattens doc into "path: value" lines appended to lines (a JSON array of
 * strings): postgresql.parameters.work_mem: 8MB. An empty object or array
 * is one line, as YAML shows it ("slots: []", "postgresql.parameters: {}"). */
static bool flatten(const json_t *doc, const char *prefix, json_t *lines)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)doc, key, v) {
		char path[256], text[512];

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(v) && json_object_size(v) > 0) {
			if (!flatten(v, path, lines))
				return false;
			continue;
		}
		if (json_is_object(v))
			snprintf(text, sizeof(text), "{}");
		else if (json_is_array(v))
			array_text(v, text, sizeof(text));
		else
			scalar_text(v, text, sizeof(text));
		if (json_array_append_new(lines, json_sprintf("%s: %s", path, text)) != 0)
			return false;
	}
	return true;
}

/* Prints the config document: pretty JSON, YAML, or "key: value" lines. */
static bool print_config(const json_t *doc, enum ctl_format fmt)
{
	json_t *lines, *l;
	size_t i;

	if (fmt != FMT_TABLE)
		return print_value(doc, fmt, true);
	lines = json_array();
	if (!lines || !flatten(doc, "", lines)) {
		json_decref(lines);
		return false;
	}
	json_array_foreach(lines, i, l) {
		const char *line = json_string_value(l);
		size_t cap = 4 * strlen(line) + 1;
		char *esc = malloc(cap);

		if (!esc) {
			json_decref(lines);
			return false;
		}
		log_escape(line, esc, cap, false); /* a value's newline stays in its line */
		puts(esc);
		free(esc);
	}
	json_decref(lines);
	return true;
}

/* The config key of the last read as a validated, canonical JSON document
 * (new reference). NULL with the reason reported. */
static json_t *current_config(const struct ctl *x)
{
	const struct etcd_kv *kv = ctl_kv(x, x->keys.config);
	struct dcs_settings d;
	char err[512], *canon;
	json_t *doc;

	if (!kv) {
		failed("%s is absent: the cluster is not bootstrapped yet", x->keys.config);
		return NULL;
	}
	if (!dcs_config_from_json(kv->value, &d, err, sizeof(err))) {
		failed("%s is invalid: %s", x->keys.config, err);
		return NULL;
	}
	canon = dcs_config_json(&d);
	dcs_settings_free(&d);
	doc = canon ? json_loads(canon, 0, NULL) : NULL;
	free(canon);
	if (!doc)
		failed("out of memory");
	return doc;
}

int cmd_show_config(const char *config_path, const struct args *a)
{
	json_t *doc = NULL;
	struct ctl x;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc == EXIT_DONE) {
		doc = current_config(&x);
		if (!doc)
			rc = EXIT_FAILED;
		else if (!print_config(doc, a->format))
			rc = failed("out of memory");
	}
	json_decref(doc);
	ctl_close(&x);
	return rc;
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL on error (errno). */
static char *read_file(const char *path)
{
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (1u << 20) || !(grown = realloc(buf, cap))) {
				free(buf);
				fclose(f);
				errno = EFBIG;
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Runs $EDITOR (default vi) on path and waits for it; true when it exited 0. */
static bool run_editor(const char *path)
{
	const char *editor = getenv("EDITOR");
	int status;
	pid_t pid;

	if (!editor || !*editor)
		editor = "vi";
	if (setenv("BATONCTL_EDITOR", editor, 1) != 0)
		return false;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		/* Through the shell, so EDITOR may carry arguments ("code -w"). */
		execl("/bin/sh", "sh", "-c", "exec $BATONCTL_EDITOR \"$1\"", "sh", path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Prints the lines that differ: "- key: old" / "+ key: new". Returns how
 * many differ (-1 when out of memory). */
static int print_diff(const json_t *before, const json_t *after)
{
	json_t *a = json_array(), *b = json_array(), *l, *m;
	size_t i, j;
	int changed = -1;

	if (!a || !b || !flatten(before, "", a) || !flatten(after, "", b))
		goto cleanup;
	changed = 0;
	json_array_foreach(a, i, l) {
		bool kept = false;

		json_array_foreach(b, j, m)
			kept = kept || json_equal(l, m);
		if (!kept) {
			printf("- %s\n", json_string_value(l));
			changed++;
		}
	}
	json_array_foreach(b, i, l) {
		bool old = false;

		json_array_foreach(a, j, m)
			old = old || json_equal(l, m);
		if (!old) {
			printf("+ %s\n", json_string_value(l));
			changed++;
		}
	}
cleanup:
	json_decref(a);
	json_decref(b);
	return changed;
}

/* The interactive edit: the current config in $EDITOR, then validate and
 * write it over the revision that was shown. */
static int edit_interactively(struct ctl *x, const struct args *a)
{
	const struct etcd_kv *kv = ctl_kv(x, x->keys.config);
	int64_t rev = kv ? kv->mod_revision : 0;
	char path[] = "/tmp/batonctl-config.XXXXXX.json", err[1024];
	char *shown = NULL, *edited = NULL;
	json_t *before = NULL, *after = NULL;
	json_error_t jerr;
	int fd = -1, rc = EXIT_FAILED, n;

	before = current_config(x);
	if (!before)
		return EXIT_FAILED;
	shown = json_dumps(before, JSON_INDENT(2));
	fd = mkstemps(path, 5);
	if (!shown || fd < 0) {
		rc = failed("cannot create a temporary file: %s", strerror(errno));
		path[0] = '\0';
		goto cleanup;
	}
	if (write(fd, shown, strlen(shown)) != (ssize_t)strlen(shown) || write(fd, "\n", 1) != 1 || close(fd) != 0) {
		fd = -1;
		rc = failed("%s: %s", path, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (!run_editor(path)) {
		rc = failed("the editor failed; nothing changed");
		goto cleanup;
	}
	edited = read_file(path);
	if (!edited) {
		rc = failed("%s: %s", path, strerror(errno));
		goto cleanup;
	}
	after = json_loads(edited, 0, &jerr);
	if (!after) {
		rc = failed("invalid JSON at line %d column %d: %s; nothing changed", jerr.line, jerr.column,
		            jerr.text);
		goto cleanup;
	}
	n = print_diff(before, after);
	if (n < 0) {
		rc = failed("out of memory");
		goto cleanup;
	}
	if (n == 0 && json_equal(before, after)) {
		puts("No changes.");
		rc = EXIT_DONE;
		goto cleanup;
	}
	if (!a->force && !confirm("Apply these changes?")) {
		rc = failed("not confirmed; nothing changed");
		goto cleanup;
	}
	if (!ops_replace_config_at(x->client, &x->keys, edited, rev, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	puts("Configuration changed.");
	rc = EXIT_DONE;
cleanup:
	if (fd >= 0)
		close(fd);
	if (path[0])
		unlink(path);
	free(shown);
	free(edited);
	json_decref(before);
	json_decref(after);
	return rc;
}

/* Patroni's dotted form: "postgresql.parameters.NAME=VALUE" -> "NAME=VALUE"
 * (what --pg takes); NULL for any other assignment. Pure. */
const char *edit_set_pg_param(const char *assignment)
{
	static const char prefix[] = "postgresql.parameters.";
	const char *eq = strchr(assignment, '=');

	if (strncmp(assignment, prefix, sizeof(prefix) - 1) != 0 || !eq || eq < assignment + sizeof(prefix))
		return NULL;
	return assignment + sizeof(prefix) - 1;
}

int cmd_edit_config(const char *config_path, const struct args *a)
{
	struct dcs_settings result;
	json_t *doc = NULL;
	char err[1024], *text = NULL;
	const char **set = NULL, **pg = NULL;
	char *owned[64];
	size_t n_set = 0, n_pg = 0, n_owned = 0;
	struct ctl x;
	int rc;

	if (a->n_set == 0 && a->n_pg == 0 && !isatty(STDIN_FILENO))
		return usage_error("edit-config: nothing to change: give --set/--pg, or run it on a terminal to edit "
		                   "with $EDITOR");
	/* Like switchover and restart: a change of every node's configuration
	 * is confirmed on a terminal, and a script must say --force. */
	if (a->n_set > 0 || a->n_pg > 0) {
		char what[1024];
		size_t off = (size_t)snprintf(what, sizeof(what), "change the cluster's configuration:");

		for (size_t i = 0; i < a->n_set + a->n_pg && off < sizeof(what); i++)
			off += (size_t)snprintf(what + off, sizeof(what) - off, " %s %s",
			                        i < a->n_set ? "--set" : "--pg",
			                        i < a->n_set ? a->set[i] : a->pg[i - a->n_set]);
		if (!confirmed(a, "edit-config", what))
			return EXIT_FAILED;
	}
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (a->n_set == 0 && a->n_pg == 0) {
		rc = edit_interactively(&x, a);
		goto cleanup;
	}
	/* --set postgresql.parameters.x=y is --pg x=y (Patroni's dotted
	 * names); every other --set key goes to ops.c as it is */
	set = calloc(a->n_set + 1, sizeof(*set));
	pg = calloc(a->n_set + a->n_pg + 1, sizeof(*pg));
	if (!set || !pg) {
		rc = failed("out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < a->n_set; i++) {
		const char *param = edit_set_pg_param(a->set[i]);
		const char *eq = param ? strchr(param, '=') : NULL;

		if (eq && strcmp(eq + 1, "null") == 0) {
			/* Patroni's way to remove a parameter ("x=null", YAML's
			 * null): --pg x= here, never the string "null". */
			char *rm = strndup(param, (size_t)(eq - param) + 1);

			if (!rm || n_owned >= sizeof(owned) / sizeof(owned[0])) {
				free(rm);
				rc = failed("edit-config: too many parameters to remove at once");
				goto cleanup;
			}
			owned[n_owned++] = rm;
			pg[n_pg++] = rm;
		} else if (param) {
			pg[n_pg++] = param;
		} else {
			set[n_set++] = a->set[i];
		}
	}
	for (size_t i = 0; i < a->n_pg; i++)
		pg[n_pg++] = a->pg[i];
	memset(&result, 0, sizeof(result));
	if (!ops_edit_config(x.client, &x.keys, set, n_set, pg, n_pg, &result, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	text = dcs_config_json(&result);
	dcs_settings_free(&result);
	doc = text ? json_loads(text, 0, NULL) : NULL;
	rc = doc && print_config(doc, a->format) ? EXIT_DONE : failed("out of memory");
cleanup:
	for (size_t i = 0; i < n_owned; i++)
		free(owned[i]);
	free(set);
	free(pg);
	free(text);
	json_decref(doc);
	ctl_close(&x);
	return rc;
}

/*
 * Writes doc (the config as read, with standby_cluster changed) over the
 * revision that was read, validated as PATCH /config validates: a
 * concurrent change makes it fail rather than be lost.
 */
static int write_config_doc(struct ctl *x, json_t *doc)
{
	const struct etcd_kv *kv = ctl_kv(x, x->keys.config);
	char err[1024], *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = EXIT_DONE;

	if (!text)
		return failed("out of memory");
	if (!ops_replace_config_at(x->client, &x->keys, text, kv ? kv->mod_revision : 0, err, sizeof(err)))
		rc = failed("%s", err);
	free(text);
	return rc;
}

int cmd_promote_cluster(const char *config_path, const struct args *a)
{
	json_t *doc = NULL;
	char what[512];
	struct ctl x;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	doc = current_config(&x);
	if (!doc) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	if (!x.view->standby_cluster) {
		rc = failed("promote-cluster: cluster '%s' is not a standby cluster (no standby_cluster in its "
		            "configuration)",
		            x.cfg.scope);
		goto cleanup;
	}
	snprintf(what, sizeof(what),
	         "promote standby cluster '%s' (following %s:%d) to a primary cluster; its standby leader %s "
	         "promotes",
	         x.cfg.scope, x.view->standby_host, x.view->standby_port,
	         x.view->has_leader ? x.view->leader : "(none now)");
	/* A standby leader that still streams: the other site's primary is
	 * up. Promoting now is a failover that makes two writable sites until
	 * that one is demoted, and the writes it takes meanwhile are lost at
	 * the failback; said before the confirmation. */
	if (x.view->has_leader) {
		json_t *rec = member_record(&x, x.view->leader);
		const char *rs = json_string_value(json_object_get(rec, "replication_state"));

		if (rs && strcmp(rs, "streaming") == 0)
			fprintf(stderr,
			        "warning: %s still streams from %s:%d: the other site's primary is up. Promoting now "
			        "makes two writable sites until it is demoted (demote-cluster there), and what it "
			        "acknowledges meanwhile is lost when it follows this one; a planned move is "
			        "site-switchover, which loses no write\n",
			        x.view->leader, x.view->standby_host, x.view->standby_port);
		json_decref(rec);
	}
	if (!confirmed(a, "promote-cluster", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	json_object_del(doc, "standby_cluster");
	rc = write_config_doc(&x, doc);
	if (rc == EXIT_DONE)
		printf("Cluster %s is no longer a standby cluster: %s promotes\n", x.cfg.scope,
		       x.view->has_leader ? x.view->leader : "the next leader");
cleanup:
	json_decref(doc);
	ctl_close(&x);
	return rc;
}

void site_hostport(const char *host, int port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(host, ':') && host[0] != '[' ? "[%s]:%d" : "%s:%d", host, port);
}

enum site_trust site_member_trust(const json_t *rec, const char *host, int port)
{
	const json_t *t = json_object_get(rec, "standby_trust"), *remotes, *v;
	size_t i;

	if (!json_is_object(t))
		return SITE_TRUST_UNKNOWN;
	if (json_is_true(json_object_get(t, "tls")))
		return SITE_TRUSTED;
	remotes = json_object_get(t, "remotes");
	json_array_foreach(remotes, i, v) {
		char *h = NULL;
		int p = 0;
		bool ok = json_is_string(v) && config_split_hostport(json_string_value(v), &h, &p) &&
		          ha_standby_remote_proven(false, h, p, host, port);

		free(h);
		if (ok)
			return SITE_TRUSTED;
	}
	return SITE_UNTRUSTED;
}

/*
 * Before demote-cluster or site-switchover changes anything: will every
 * member of x follow host:port as its standby_cluster remote? A member
 * that would not (no Postgres TLS, its file does not name it) refuses the
 * remote by itself; its primary stays the primary and the command would
 * wait for nothing. Every member counts, not only the leader: any of them
 * may become the standby leader. EXIT_DONE, or EXIT_FAILED with the
 * members and the node-file line to add (on stderr). A member that does
 * not publish its trust (an older agent) is named in a warning only.
 */
static int site_check_trust(const struct ctl *x, const char *cmd, const char *host, int port)
{
	char refusing[512] = "", unknown[512] = "", hp[300];
	size_t n_refusing = 0;

	site_hostport(host, port, hp, sizeof(hp));
	for (size_t i = 0; i < x->view->n_members; i++) {
		const struct ha_member *m = &x->view->members[i];
		json_t *rec = member_record(x, m->name);
		enum site_trust t = site_member_trust(rec, host, port);
		char *list = t == SITE_UNTRUSTED ? refusing : t == SITE_TRUST_UNKNOWN ? unknown : NULL;
		size_t used = list ? strlen(list) : 0;

		json_decref(rec);
		if (t == SITE_UNTRUSTED)
			n_refusing++;
		if (list && used < sizeof(refusing))
			snprintf(list + used, sizeof(refusing) - used, "%s%s", used ? ", " : "", m->name);
	}
	if (unknown[0])
		fprintf(stderr,
		        "warning: %s: cannot tell whether %s of cluster '%s' will follow %s: their member keys do "
		        "not say which remotes they trust (an older agent?)\n",
		        cmd, unknown, x->cfg.scope, hp);
	if (!refusing[0])
		return EXIT_DONE;
	return failed("%s: refused, nothing changed: %s of cluster '%s' will not follow %s (no Postgres TLS, and "
	              "%s not name it). Add this line to the postgresql section of %s (or the address to the "
	              "list there), then reload (SIGHUP or batonctl reload): standby_cluster_remotes = [ \"%s\" ]; "
	              "list the other site's other members too, so that a failover there needs no edit here",
	              cmd, refusing, x->cfg.scope, hp, n_refusing > 1 ? "their node files do" : "its node file does",
	              n_refusing > 1 ? "each one's node file" : "its node file", hp);
}

/* What member m of x does about the remote hp (host:port), in a few words,
 * for the progress lines and the timeout messages. */
static void site_member_doing(const struct ctl *x, const struct ha_member *m, const char *hp, char *buf, size_t len)
{
	json_t *rec = member_record(x, m->name);
	const char *refuses = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "refuses"));
	const char *rs = json_string_value(json_object_get(rec, "replication_state"));

	if (refuses && strcmp(refuses, hp) == 0)
		snprintf(buf, len, "%s refuses %s (not trusted), %s %s", m->name, hp,
		         strcmp(m->role, "primary") == 0 ? "still a primary," : m->role, m->state);
	else if (strcmp(m->role, "primary") == 0)
		snprintf(buf, len, "%s still a primary (%s)", m->name, m->state);
	else if (strcmp(m->role, "replica") == 0 && strcmp(m->state, "running") == 0 && is_leader(x->view, m->name))
		snprintf(buf, len, "%s standby leader, %s %s", m->name,
		         !rs                            ? "following"
		         : strcmp(rs, "streaming") == 0 ? "streaming from"
		                                        : "not streaming from",
		         hp);
	else
		snprintf(buf, len, "%s %s (%s)", m->name, m->role, m->state);
	json_decref(rec);
}

/* What member m of x says of itself on its REST API (GET /status): member
 * keys are what anyone who can write etcd can write, so a step that loses
 * writes if it is wrong (a promotion, "done") is taken on the agent's own
 * word. It must answer as m of x's cluster (a forged api_url may point at
 * another member's API). false + why (escaped) when it does not. */
static bool site_status(const struct ctl *x, const struct ha_member *m, struct api_status *st, char *why, size_t len)
{
	static bool plain_said;
	struct peer_opts po;
	char err[512], name[200], scope[200];
	bool tls = false;

	if (!m->api_url[0]) {
		snprintf(why, len, "%s publishes no REST API address", m->name);
		return false;
	}
	peer_opts_from_config(&x->cfg, &po);
	if (!peer_get_status(&po, m->api_url, 3.0, st, &tls, err, sizeof(err))) {
		snprintf(why, len, "%s's REST API does not answer: %s", m->name, err);
		return false;
	}
	/* The address comes from the member key: over plain http anyone who
	 * can write etcd can answer for the agent (a server of theirs). With
	 * TLS on this cluster's REST APIs only a certified server can, and the
	 * name check below catches another member's. */
	if (!tls && (x->cfg.restapi.certfile || x->cfg.restapi.cafile)) {
		snprintf(why, len,
		         "the REST API in %s's member key is not https, while this cluster's are: not taking its "
		         "answer",
		         m->name);
		return false;
	}
	if (!tls && !plain_said) {
		plain_said = true;
		fprintf(stderr,
		        "warning: %s's REST API is plain http: batonctl cannot tell its answers from those of any "
		        "server a member key names (anyone who can write etcd can write one); set restapi.certfile, "
		        "keyfile and cafile\n",
		        m->name);
	}
	if (strcmp(st->name, m->name) != 0 || strcmp(st->scope, x->cfg.scope) != 0) {
		log_escape(st->name, name, sizeof(name), false);
		log_escape(st->scope, scope, sizeof(scope), false);
		snprintf(why, len, "the REST API in %s's member key answers as %s of cluster '%s'", m->name, name,
		         scope);
		return false;
	}
	return true;
}

/* demote-cluster --wait: until x's leader runs as the standby leader of
 * hp (a running replica that does not refuse it and streams from it),
 * printing a line each time what it does changes. EXIT_DONE, or EXIT_FAILED (reported) when
 * a member refuses hp, the leader key goes, or after wait seconds. */
static int demote_wait(struct ctl *x, const char *hp, double wait)
{
	double deadline = clk_mono() + wait, ok_since = 0;
	char last[1024] = "", doing[1024] = "no leader";
	uint64_t replay0 = 0;

	for (;;) {
		const struct ha_member *l = NULL;
		int rc = ctl_read(x, true);

		if (rc == EXIT_DONE) {
			json_t *rec;
			const char *refuses, *rs;
			bool streams;

			l = x->view->has_leader ? ha_find_member(x->view, x->view->leader) : NULL;
			if (l)
				site_member_doing(x, l, hp, doing, sizeof(doing));
			else
				snprintf(doing, sizeof(doing), "no leader now");
			rec = l ? member_record(x, l->name) : NULL;
			refuses = json_string_value(json_object_get(json_object_get(rec, "standby_trust"), "refuses"));
			if (refuses && strcmp(refuses, hp) == 0) {
				json_decref(rec);
				return failed(
				        "demote-cluster: %s: cluster '%s' names %s as its standby_cluster, but its leader "
				        "does not follow it (see its agent's log); undo with batonctl promote-cluster",
				        doing, x->cfg.scope, hp);
			}
			/* Done once it streams from there (an older agent does not
			 * publish replication_state): a standby leader that runs but
			 * streams nothing follows nothing. */
			rs = json_string_value(json_object_get(rec, "replication_state"));
			streams = !json_object_get(rec, "replication_state") || (rs && strcmp(rs, "streaming") == 0);
			json_decref(rec);
			if (l && strcmp(l->role, "replica") == 0 && strcmp(l->state, "running") == 0 && streams) {
				struct api_status st;
				char why[700] = "";
				bool said = site_status(x, l, &st, why, sizeof(why));

				/* Its agent's word too, not only its key's. */
				if (said && st.pg_running && st.is_leader && strcmp(st.role, "replica") == 0) {
					/* Streaming is not following: WAL it cannot replay
					 * (the two sites promoted from the same record)
					 * streams too. Done once it replayed something new,
					 * or all it received, after a confirmation window
					 * long enough for the stream to run ahead of a stuck
					 * replay. */
					double now = clk_mono(), window = 2.0 * x->view->loop_wait;

					if (window < 2.0)
						window = 2.0;
					if (ok_since == 0) {
						ok_since = now;
						replay0 = st.replay_lsn;
					}
					if (now - ok_since >= window &&
					    (st.replay_lsn > replay0 || st.replay_lsn >= st.receive_lsn)) {
						printf("%s: %s\n", x->cfg.scope, doing);
						return EXIT_DONE;
					}
					if (now - ok_since >= window)
						snprintf(doing, sizeof(doing),
						         "%s: streams from %s, but replays nothing of it (%" PRIu64
						         " bytes received and not replayed)",
						         l->name, hp, st.receive_lsn - st.replay_lsn);
					else
						snprintf(doing + strlen(doing), sizeof(doing) - strlen(doing),
						         "; confirming that it replays");
				} else {
					ok_since = 0;
					if (said)
						snprintf(why, sizeof(why), "its REST API says %s, %s",
						         st.pg_running ? st.role : "not running",
						         st.is_leader ? "the leader" : "not the leader");
					snprintf(doing, sizeof(doing), "%s: its member key says standby leader, but %s",
					         l->name, why);
				}
			} else {
				ok_since = 0;
			}
			if (strcmp(doing, last) != 0) {
				printf("%s: waiting for its leader to run as the standby leader: %s\n", x->cfg.scope,
				       doing);
				fflush(stdout);
				snprintf(last, sizeof(last), "%s", doing);
			}
		}
		if (clk_mono() >= deadline)
			return failed(
			        "demote-cluster: timed out after %g s: cluster '%s' is a standby cluster of %s in its "
			        "configuration, but its leader does not run as its standby leader streaming from it "
			        "yet (%s; see its agent's log)",
			        wait, x->cfg.scope, hp, doing);
		sleep_ms(POLL_MS);
	}
}

int cmd_demote_cluster(const char *config_path, const struct args *a)
{
	json_t *doc = NULL, *sc = NULL;
	char what[512], hp[300], *end = NULL;
	bool was_standby;
	long port = 5432;
	struct ctl x;
	int rc;

	if (!a->standby_host)
		return usage_error("demote-cluster: --host HOST is required (the other site's Postgres)");
	if (a->standby_port) {
		errno = 0;
		port = strtol(a->standby_port, &end, 10);
		if (errno || end == a->standby_port || *end || port < 1 || port > 65535)
			return usage_error("demote-cluster: --port needs a port 1..65535, not '%s'", a->standby_port);
	}
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	doc = current_config(&x);
	if (!doc) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	sc = json_pack("{s:s, s:I}", "host", a->standby_host, "port", (json_int_t)port);
	if (!sc || (a->standby_slot && json_object_set_new(sc, "primary_slot_name", json_string(a->standby_slot))) ||
	    json_object_set(doc, "standby_cluster", sc) != 0) {
		rc = failed("out of memory");
		goto cleanup;
	}
	/* Its members must follow the new remote, or it stays what it is
	 * whatever the config key says (loop_pgfiles.c, standby_remote_usable). */
	rc = site_check_trust(&x, "demote-cluster", a->standby_host, (int)port);
	if (rc != EXIT_DONE)
		goto cleanup;
	/* Paused, the agents leave Postgres alone: its primary would not
	 * demote, and --wait would wait on nothing. */
	if (x.view->paused && !x.view->standby_cluster) {
		rc = failed("demote-cluster: cluster '%s' is paused (maintenance mode): its primary would not "
		            "demote; batonctl resume first; nothing changed",
		            x.cfg.scope);
		goto cleanup;
	}
	was_standby = x.view->standby_cluster;
	/* Already a standby cluster: nothing stops, its standby leader
	 * re-points (ha.c rule 11). */
	if (x.view->standby_cluster)
		snprintf(what, sizeof(what),
		         "re-point standby cluster '%s' (following %s:%d) to %s:%ld; its standby leader %s re-points "
		         "to %s:%ld",
		         x.cfg.scope, x.view->standby_host, x.view->standby_port, a->standby_host, port,
		         x.view->has_leader ? x.view->leader : "(none now)", a->standby_host, port);
	else
		snprintf(what, sizeof(what),
		         "demote cluster '%s' to a standby cluster of %s:%ld; its primary %s stops and follows it, "
		         "read-only",
		         x.cfg.scope, a->standby_host, port, x.view->has_leader ? x.view->leader : "(none now)");
	if (!confirmed(a, "demote-cluster", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	rc = write_config_doc(&x, doc);
	if (rc != EXIT_DONE)
		goto cleanup;
	site_hostport(a->standby_host, (int)port, hp, sizeof(hp));
	printf("Cluster %s is now a standby cluster of %s in its configuration\n", x.cfg.scope, hp);
	/* A re-pointed standby leader runs as a replica before and after:
	 * nothing here tells the two apart, so only a demotion is waited for. */
	if (!was_standby && a->wait > 0)
		rc = demote_wait(&x, hp, a->wait);
cleanup:
	json_decref(sc);
	json_decref(doc);
	ctl_close(&x);
	return rc;
}

bool site_same_cluster(const struct baton_config *x, const struct baton_config *y)
{
	if (strcmp(x->scope, y->scope) != 0 || strcmp(x->namespace_, y->namespace_) != 0)
		return false;
	for (size_t i = 0; i < x->etcd.n_hosts; i++)
		for (size_t j = 0; j < y->etcd.n_hosts; j++)
			if (strcasecmp(x->etcd.hosts[i], y->etcd.hosts[j]) == 0)
				return true;
	return false;
}

/* The physical permanent slots of a config document ("slots": baton's
 * array of names, or Patroni's object form), comma-separated into buf
 * ("" when none). */
static void config_physical_slots(const json_t *doc, char *buf, size_t len)
{
	const json_t *slots = json_object_get(doc, "slots");
	size_t off = 0;

	buf[0] = '\0';
	if (json_is_array(slots)) {
		size_t i;
		const json_t *v;

		json_array_foreach(slots, i, v)
			if (json_is_string(v) && off < len)
				off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
				                        json_string_value(v));
	} else if (json_is_object(slots)) {
		const char *k;
		const json_t *v;

		json_object_foreach((json_t *)slots, k, v) {
			const json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;

			if ((!t || (json_is_string(t) && strcmp(json_string_value(t), "physical") == 0)) && off < len)
				off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", k);
		}
	}
}

/* The member that holds x's leader key, as x last read it (NULL: none). */
static const struct ha_member *site_leader(const struct ctl *x)
{
	return x->view->has_leader ? ha_find_member(x->view, x->view->leader) : NULL;
}

/* site-switchover's wait, per node: what this site's leader la and the
 * other site's standby leader lb still lack (a_end: la's last WAL, 0 while
 * unknown; steady: it has not moved for more than a loop). LSNs only where
 * they are known: a primary's WAL has no end yet. */
static void site_wait_line(const struct ctl *x, const struct ha_member *la, const struct ctl *y,
                           const struct ha_member *lb, const char *b_hp, uint64_t a_end, bool steady, char *buf,
                           size_t len)
{
	char a_doing[512], a_lsn[32];

	pg_lsn_format(a_end, a_lsn, sizeof(a_lsn));
	if (strcmp(la->role, "replica") != 0 || strcmp(la->state, "running") != 0) {
		site_member_doing(x, la, b_hp, a_doing, sizeof(a_doing));
		snprintf(buf, len,
		         "%s: %s to run as a replica of %s (now: %s); %s: %s to receive %s's last WAL, once it ends",
		         x->cfg.scope, la->name, b_hp, a_doing, y->cfg.scope, lb->name, la->name);
	} else if (!steady || a_end == 0) {
		snprintf(buf, len,
		         "%s: %s to finish replaying its own WAL (its end not steady yet); %s: %s to receive %s's "
		         "last WAL",
		         x->cfg.scope, la->name, y->cfg.scope, lb->name, la->name);
	} else {
		snprintf(buf, len, "%s: nothing (%s's WAL ends at %s); %s: %s to receive up to %s", x->cfg.scope,
		         la->name, a_lsn, y->cfg.scope, lb->name, a_lsn);
	}
}

/*
 * The planned site switchover (README, "Standby cluster and site
 * switchover"): demote this site, wait until the other site's standby
 * leader has every byte of this site's WAL, promote the other site. The
 * wait is what keeps acknowledged writes: a write this site acknowledged is
 * in its leader's WAL (whatever synchronous mode promised about its own
 * standbys), and that WAL ends at the shutdown checkpoint of the demotion,
 * which the demoted leader reports as its position once it runs as a
 * replica. The other site's standby leader publishes max(received,
 * replayed): a promotion replays all it received before it takes writes.
 */
int cmd_site_switchover(const char *config_path, const struct args *a)
{
	struct ctl x, y;
	json_t *doc = NULL, *sc = NULL;
	const struct ha_member *la, *lb;
	char a_name[HA_NAME_MAX], b_name[HA_NAME_MAX], what[700], b_hp[300], waiting[1400], last[1400] = "";
	char unconfirmed[700] = "";
	uint64_t a_end = 0, b_have = 0;
	double t0, deadline, t_demoted = 0, t_caught = 0, a_since = 0;
	int rc, rc2;

	memset(&y, 0, sizeof(y));
	if (!a->to_config)
		return usage_error("site-switchover: --to-config FILE is required (a node file of the other site)");
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	rc = ctl_open(&y, a->to_config, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	la = site_leader(&x);
	lb = site_leader(&y);
	if (site_same_cluster(&x.cfg, &y.cfg)) {
		rc = failed("site-switchover: %s and %s name the same cluster '%s' (same namespace, same etcd)",
		            config_path, a->to_config, x.cfg.scope);
		goto cleanup;
	}
	/* Two sites under one name (each in its own etcd) would make every
	 * line below name both: refused, they need names of their own. */
	if (strcmp(x.cfg.scope, y.cfg.scope) == 0) {
		rc = failed("site-switchover: %s and %s both name their cluster '%s': the two sites must have "
		            "different scope names (which one was demoted or promoted would be ambiguous); nothing "
		            "changed",
		            config_path, a->to_config, x.cfg.scope);
		goto cleanup;
	}
	if (x.view->standby_cluster || !la || strcmp(la->role, "primary") != 0) {
		rc = failed("site-switchover: cluster '%s' (%s) is not a primary site with a running primary (%s); "
		            "nothing changed",
		            x.cfg.scope, config_path,
		            x.view->standby_cluster ? "it is a standby cluster" : "no primary leads it");
		goto cleanup;
	}
	/* Paused, the agents leave Postgres alone: nothing would demote or
	 * promote, and a step would wait on what no agent does. */
	if (x.view->paused || y.view->paused) {
		rc = failed("site-switchover: cluster '%s' is paused (maintenance mode): its agents would neither "
		            "demote nor promote; batonctl resume first; nothing changed",
		            x.view->paused ? x.cfg.scope : y.cfg.scope);
		goto cleanup;
	}
	if (!y.view->standby_cluster) {
		rc = failed("site-switchover: cluster '%s' (%s) is not a standby cluster (no standby_cluster in its "
		            "configuration): there is nothing to switch over to; nothing changed",
		            y.cfg.scope, a->to_config);
		goto cleanup;
	}
	if (!lb || strcmp(lb->role, "replica") != 0 || !lb->host[0] || lb->port <= 0) {
		rc = failed("site-switchover: standby cluster '%s' (%s) has no running standby leader (%s); nothing "
		            "changed",
		            y.cfg.scope, a->to_config, lb ? lb->name : "no leader");
		goto cleanup;
	}
	/* This site's members must follow the other site's standby leader
	 * once demoted, or its primary stays the primary (loop_pgfiles.c). */
	rc = site_check_trust(&x, "site-switchover", lb->host, lb->port);
	if (rc != EXIT_DONE)
		goto cleanup;
	site_hostport(lb->host, lb->port, b_hp, sizeof(b_hp));
	snprintf(a_name, sizeof(a_name), "%s", la->name);
	snprintf(b_name, sizeof(b_name), "%s", lb->name);
	snprintf(what, sizeof(what),
	         "switch the primary site from cluster '%s' (primary %s) to cluster '%s' (standby leader %s at "
	         "%s:%d); '%s' stops taking writes now",
	         x.cfg.scope, a_name, y.cfg.scope, b_name, lb->host, lb->port, x.cfg.scope);
	doc = current_config(&x);
	if (!doc) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	/* A permanent slot this site kept for the other one stays on its
	 * standby leader too (slots.c), unconsumed once the direction flips:
	 * said before the confirmation, so that the operator can stop. */
	if (!a->standby_slot) {
		char names[512];

		config_physical_slots(doc, names, sizeof(names));
		if (names[0])
			fprintf(stderr,
			        "warning: cluster '%s' keeps the permanent slot(s) %s (its config key's slots); as a "
			        "standby site its standby leader keeps them too, and a slot nothing streams through "
			        "holds WAL there: drop or re-point it (edit-config), or give --slot\n",
			        x.cfg.scope, names);
	}
	if (!confirmed(a, "site-switchover", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	t0 = clk_mono();
	/* 1. demote this site, following the other site's standby leader
	 * (through --slot on it, if given) */
	sc = json_pack("{s:s, s:I}", "host", lb->host, "port", (json_int_t)lb->port);
	if (!doc || !sc ||
	    (a->standby_slot && json_object_set_new(sc, "primary_slot_name", json_string(a->standby_slot))) ||
	    json_object_set(doc, "standby_cluster", sc) != 0) {
		rc = doc ? failed("out of memory") : EXIT_FAILED;
		goto cleanup;
	}
	rc = write_config_doc(&x, doc);
	if (rc != EXIT_DONE)
		goto cleanup;
	printf("%s: demoted to a standby cluster of %s:%d; waiting for %s to run as its standby leader\n", x.cfg.scope,
	       lb->host, lb->port, a_name);
	/* 2. wait: this leader a running replica (its WAL ends at the
	 * demotion's shutdown checkpoint), the other site past that point */
	deadline = clk_mono() + a->wait;
	for (;;) {
		rc = ctl_read(&x, true);
		rc2 = ctl_read(&y, true);
		if (rc == EXIT_DONE && rc2 == EXIT_DONE) {
			la = site_leader(&x);
			lb = site_leader(&y);
			if (!la || strcmp(la->name, a_name) != 0 || !lb || strcmp(lb->name, b_name) != 0) {
				rc = failed("site-switchover: the leader changed during the switchover (%s: %s, %s: %s); "
				            "nothing promoted: check both sites, then promote by hand",
				            x.cfg.scope, la ? la->name : "none", y.cfg.scope, lb ? lb->name : "none");
				goto cleanup;
			}
			{
				json_t *rec = member_record(&x, a_name);
				const char *refuses = json_string_value(
				        json_object_get(json_object_get(rec, "standby_trust"), "refuses"));
				bool refused = refuses && strcmp(refuses, b_hp) == 0;

				json_decref(rec);
				if (refused) {
					site_member_doing(&x, la, b_hp, waiting, sizeof(waiting));
					rc = failed(
					        "site-switchover: %s: nothing promoted; cluster '%s' names %s as its "
					        "standby_cluster but its primary does not follow it (see its agent's log): "
					        "undo with batonctl promote-cluster",
					        waiting, x.cfg.scope, b_hp);
					goto cleanup;
				}
			}
			/* (role replica: its Postgres answers as a replica) The
			 * positions come from the two agents themselves (GET
			 * /status), not from their member keys: a forged key must not
			 * make a promotion look safe. */
			unconfirmed[0] = '\0';
			if (strcmp(la->role, "replica") == 0) {
				struct api_status sa, sb;

				if (t_demoted == 0)
					t_demoted = clk_mono();
				if (!site_status(&x, la, &sa, unconfirmed, sizeof(unconfirmed))) {
					/* said why */
				} else if (!sa.pg_running || strcmp(sa.role, "replica") != 0) {
					snprintf(unconfirmed, sizeof(unconfirmed),
					         "%s's member key says replica, but its REST API says %s", a_name,
					         sa.pg_running ? sa.role : "not running");
				} else {
					/* The same end for longer than a loop of its agent:
					 * its replay of its own WAL is done. */
					if (sa.lsn != a_end || a_since == 0) {
						a_end = sa.lsn;
						a_since = clk_mono();
					}
					if (clk_mono() - a_since > 1.5 * x.view->loop_wait && a_end > 0 &&
					    site_status(&y, lb, &sb, unconfirmed, sizeof(unconfirmed))) {
						b_have = sb.lsn;
						if (sb.pg_running && strcmp(sb.role, "replica") == 0 &&
						    sb.lsn >= a_end) {
							t_caught = clk_mono();
							break;
						}
					}
				}
			}
			/* One line each time what a node waits for changes (its
			 * phase, not every LSN it passes). */
			if (unconfirmed[0])
				snprintf(waiting, sizeof(waiting), "confirming with the agents: %s", unconfirmed);
			else
				site_wait_line(&x, la, &y, lb, b_hp, a_end,
				               clk_mono() - a_since > 1.5 * x.view->loop_wait, waiting,
				               sizeof(waiting));
			if (strcmp(waiting, last) != 0) {
				printf("waiting: %s\n", waiting);
				fflush(stdout);
				snprintf(last, sizeof(last), "%s", waiting);
			}
		}
		if (clk_mono() >= deadline) {
			char b_lsn[32];

			pg_lsn_format(b_have, b_lsn, sizeof(b_lsn));
			rc = failed("site-switchover: timed out after %g s, nothing promoted: cluster '%s' is a standby "
			            "cluster now, '%s' still one too. Waiting for: %s (%s has %s)",
			            a->wait, x.cfg.scope, y.cfg.scope,
			            last[0] ? last : "etcd (cannot read the clusters)", b_name,
			            b_have ? b_lsn : "nothing known");
			goto cleanup;
		}
		sleep_ms(POLL_MS);
	}
	{
		char a_lsn[32], b_lsn[32];

		pg_lsn_format(a_end, a_lsn, sizeof(a_lsn));
		pg_lsn_format(b_have, b_lsn, sizeof(b_lsn));
		printf("%s: its WAL ends at %s; %s has it (%s), as their agents say\n", x.cfg.scope, a_lsn, b_name,
		       b_lsn);
	}
	/* 3. promote the other site */
	json_decref(doc);
	doc = current_config(&y);
	if (!doc) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	json_object_del(doc, "standby_cluster");
	rc = write_config_doc(&y, doc);
	if (rc != EXIT_DONE)
		goto cleanup;
	deadline = clk_mono() + a->wait;
	for (;;) {
		struct api_status sb;

		rc = ctl_read(&y, true);
		lb = rc == EXIT_DONE ? site_leader(&y) : NULL;
		unconfirmed[0] = '\0';
		/* Its agent's word too, not only its key's. */
		if (lb && strcmp(lb->role, "primary") == 0 &&
		    site_status(&y, lb, &sb, unconfirmed, sizeof(unconfirmed)) && sb.pg_running &&
		    strcmp(sb.role, "primary") == 0)
			break;
		if (clk_mono() >= deadline) {
			rc = failed("site-switchover: cluster '%s' is no longer a standby cluster, but %s is not a "
			            "primary after %g s (see its agent's log)%s%s",
			            y.cfg.scope, b_name, a->wait, unconfirmed[0] ? ": " : "", unconfirmed);
			goto cleanup;
		}
		sleep_ms(POLL_MS);
	}
	printf("%s: %s is the primary; %s follows it (demoted in %.1f s, caught up in %.1f s, promoted in %.1f "
	       "s)\n",
	       y.cfg.scope, lb->name, x.cfg.scope, t_demoted - t0, t_caught - t_demoted, clk_mono() - t_caught);
	rc = EXIT_DONE;
cleanup:
	json_decref(sc);
	json_decref(doc);
	ctl_close(&y);
	ctl_close(&x);
	return rc;
}
