/*
 * batonctl.c - the command-line tool for a baton cluster.
 *
 *   batonctl [-c FILE] COMMAND [OPTIONS]   (batonctl --help lists the commands,
 *                                          batonctl help COMMAND explains one)
 *
 * It reads the same libconfig file as the agent (-c, or $BATONCTL_CONFIG)
 * for the scope and the etcd endpoints, reads every key of the cluster in
 * one etcd range request, and builds the cluster view with the agent's own
 * parser (dcs_parse_cluster), so what it shows is exactly what the agents
 * see. Changes to the cluster's keys (switchover, pause, config edits) go
 * through ops.c, the code the REST API uses too, which validates them and
 * writes with a compare on the key's revision. Actions on one node
 * (restart, reload, reinit) are POSTs to that node's REST API, whose address
 * each member publishes in its key, sent through peer.c like the agent's own
 * requests: http/https only, the server verified against restapi.cafile,
 * the client certificate and credentials of the config file, and the
 * password never in clear text.
 *
 * Everything batonctl prints goes through an escaping stream
 * (log_escaping_stream): names, states, URLs and config values come from
 * etcd, which must not be able to send a terminal control sequences.
 *
 * Every command is one row of the command table: its name, its options
 * (one getopt table per command, one parser for all), and its function.
 * Every function that needs the cluster starts with ctl_open(), the one
 * place that loads the config, connects to etcd and reads the keys.
 *
 * Exit status: 0 done, 1 refused or failed (one line on stderr says why),
 * 2 usage or configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/ha.h"
#include "agent/log.h"
#include "agent/ops.h"
#include "agent/peer.h"
#include "etcd/etcd.h"
#include "pg/pg_ctl.h"
#include "pg/pg_data.h"

#define EXIT_DONE 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define API_TIMEOUT_S 5.0
#define WAIT_DEFAULT_S 60.0
#define POLL_MS 100

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("batonctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'batonctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* One line on stderr, "batonctl: ..." (newlines in the message flattened),
 * and EXIT_FAILED. */
static int __attribute__((format(printf, 1, 2))) failed(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	fprintf(stderr, "batonctl: %s\n", msg);
	return EXIT_FAILED;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The real stdout, under the escaping stream main() puts in its place:
 * JSON goes there, escaped as JSON rather than as \xNN (which would make it
 * invalid). NULL: stdout itself. */
static FILE *json_out;

/* Prints a JSON value on stdout (pretty or compact); false when out of
 * memory. No control character leaves raw: jansson escapes those below 0x20
 * and, with JSON_ENSURE_ASCII, every non-ASCII character (the C1 controls
 * among them) as \uXXXX; DEL is escaped here (it can only be in a string). */
static bool print_json_value(const json_t *v, bool pretty)
{
	char *text = json_dumps(v, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_ENSURE_ASCII);
	FILE *out = json_out ? json_out : stdout;

	if (!text)
		return false;
	fflush(stdout); /* what was printed before comes first */
	for (const char *c = text; *c; c++) {
		if (*c == 0x7f)
			fputs("\\u007f", out);
		else
			fputc(*c, out);
	}
	fputc('\n', out);
	fflush(out);
	free(text);
	return true;
}

/* ---- the arguments of every command ------------------------------------------ */

struct args {
	bool json;
	const char *leader, *candidate, *scheduled, *role, *pg_version;
	bool force, pending, cancel;
	double wait;
	const char **set, **pg; /* --set, --pg values (argv strings) */
	size_t n_set, n_pg;
	char **pos;             /* positional arguments */
	size_t n_pos;
};

struct command {
	const char *name;
	int (*run)(const char *config_path, const struct args *a);
	const struct option *opts;
	size_t min_pos, max_pos;
	const char *synopsis; /* after "batonctl [-c FILE] " */
	const char *help;     /* what it does, and its options */
};

static const char common_help[] =
	"  -c, --config FILE   the node's configuration file (default: $BATONCTL_CONFIG)\n"
	"\n"
	"Exit status: 0 done, 1 refused or failed, 2 usage or configuration error.\n";

static void print_command_help(const struct command *cmd)
{
	printf("Usage: batonctl [-c FILE] %s\n\n%s\n%s", cmd->synopsis, cmd->help, common_help);
}

/* --wait SECONDS: a number >= 0. */
static bool parse_seconds(const char *s, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(d) || d < 0 || d > 86400)
		return false;
	*out = d;
	return true;
}

/*
 * Parses argv (argv[0] is the command's name) with the command's option
 * table into a (whose arrays it allocates; free with args_free). Returns -1
 * to go on, or an exit status: EXIT_DONE after --help, EXIT_USAGE on an
 * error (reported).
 */
static int args_parse(const struct command *cmd, int argc, char **argv, struct args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->wait = WAIT_DEFAULT_S;
	a->set = calloc((size_t)argc, sizeof(*a->set));
	a->pg = calloc((size_t)argc, sizeof(*a->pg));
	if (!a->set || !a->pg) {
		fputs("batonctl: out of memory\n", stderr);
		return EXIT_FAILED;
	}
	optind = 0; /* glibc: start a fresh scan of this argument vector */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", cmd->opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_command_help(cmd);
			return EXIT_DONE;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				a->json = true;
			else if (strcmp(optarg, "table") == 0 || strcmp(optarg, "pretty") == 0)
				a->json = false;
			else
				return usage_error("%s: unknown format '%s' (table or json)", cmd->name, optarg);
			break;
		case 'L':
			a->leader = optarg;
			break;
		case 'C':
			a->candidate = optarg;
			break;
		case 'S':
			a->scheduled = optarg;
			break;
		case 'R':
			if (strcmp(optarg, "primary") != 0 && strcmp(optarg, "replica") != 0 && strcmp(optarg, "any") != 0)
				return usage_error("%s: --role must be primary, replica or any, not '%s'", cmd->name,
						   optarg);
			a->role = optarg;
			break;
		case 'F':
			a->force = true;
			break;
		case 'G':
			a->pg_version = optarg;
			break;
		case 'P':
			a->pending = true;
			break;
		case 'X':
			a->cancel = true;
			break;
		case 'W':
			if (!parse_seconds(optarg, &a->wait))
				return usage_error("%s: --wait needs a number of seconds >= 0, not '%s'", cmd->name,
						   optarg);
			break;
		case 's':
			a->set[a->n_set++] = optarg;
			break;
		case 'p':
			a->pg[a->n_pg++] = optarg;
			break;
		case ':':
			return usage_error("%s: option '%s' needs a value", cmd->name, argv[optind - 1]);
		default:
			return usage_error("%s: invalid option '%s'", cmd->name, argv[optind - 1]);
		}
	}
	a->pos = argv + optind;
	a->n_pos = (size_t)(argc - optind);
	if (a->n_pos < cmd->min_pos)
		return usage_error("%s: missing argument (usage: batonctl %s)", cmd->name, cmd->synopsis);
	if (a->n_pos > cmd->max_pos)
		return usage_error("%s: unexpected argument '%s'", cmd->name, a->pos[cmd->max_pos]);
	return -1;
}

static void args_free(struct args *a)
{
	free(a->set);
	free(a->pg);
}

/* ---- config, etcd and the cluster: one helper for every command --------------- */

struct ctl {
	struct baton_config cfg;
	bool have_cfg;
	char **endpoints;
	char where[1024];              /* the endpoints, for messages */
	struct etcd_client *client;
	struct dcs_keys keys;
	struct etcd_range_result res;  /* the last read */
	struct ha_cluster_view *view;  /* parsed from it */
};

static void ctl_close(struct ctl *x)
{
	etcd_range_result_free(&x->res);
	etcd_client_free(x->client);
	for (size_t i = 0; x->endpoints && i < x->cfg.etcd.n_hosts; i++)
		free(x->endpoints[i]);
	free(x->endpoints);
	free(x->view);
	if (x->have_cfg)
		config_free(&x->cfg);
	memset(x, 0, sizeof(*x));
}

/* One line: what failed and why. etcd's messages name the endpoint; when
 * one does not, the configured endpoints are added so the operator knows
 * where batonctl looked. */
static int etcd_failed(const struct ctl *x, const char *what, const struct etcd_error *eerr)
{
	bool named = false;

	for (size_t i = 0; i < x->cfg.etcd.n_hosts; i++)
		named = named || strstr(eerr->message, x->cfg.etcd.hosts[i]) != NULL;
	return failed("%s%s%s: %s", what, named ? "" : " at ", named ? "" : x->where,
		      eerr->message[0] ? eerr->message : etcd_status_name(eerr->status));
}

/* Reads every key of the cluster into x->res and x->view. Warnings (a
 * member record unreadable...) go to stderr unless quiet. */
static int ctl_read(struct ctl *x, bool quiet)
{
	struct etcd_error eerr = { 0 };
	char warn[4096];

	etcd_range_result_free(&x->res);
	if (dcs_read_cluster(x->client, &x->keys, NULL, &x->res, NULL, 0, &eerr) != ETCD_OK) {
		char what[320];

		snprintf(what, sizeof(what), "cannot read %s from etcd", x->keys.prefix);
		return etcd_failed(x, what, &eerr);
	}
	dcs_parse_cluster(&x->keys, &x->res, &x->cfg.bootstrap_dcs, x->view, NULL, warn, sizeof(warn));
	if (warn[0] && !quiet) {
		char *save = NULL;

		for (char *line = strtok_r(warn, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "batonctl: warning: %s\n", line);
	}
	return EXIT_DONE;
}

/* Loads the config file, connects to etcd and (when read) reads the
 * cluster. EXIT_DONE, or the exit status (reported); ctl_close either way. */
static int ctl_open(struct ctl *x, const char *config_path, bool read)
{
	struct etcd_error eerr = { 0 };
	struct etcd_config ec;
	char err[1024];
	size_t used = 0;

	memset(x, 0, sizeof(*x));
	if (!config_path || !*config_path)
		return usage_error("no configuration file: use -c FILE or set BATONCTL_CONFIG");
	if (!config_load(config_path, &x->cfg, err, sizeof(err))) {
		fprintf(stderr, "batonctl: %s\n", err);
		return EXIT_USAGE;
	}
	x->have_cfg = true;
	/* edit-config may set what this node's own file allows, no more. */
	if (!ops_set_allow_from_dcs(x->cfg.postgresql.allow_from_dcs, x->cfg.postgresql.n_allow_from_dcs))
		return failed("out of memory");
	if (!dcs_keys_init(&x->keys, x->cfg.namespace_, x->cfg.scope)) {
		fprintf(stderr, "batonctl: %s: namespace or scope too long\n", x->cfg.path);
		return EXIT_USAGE;
	}
	x->endpoints = calloc(x->cfg.etcd.n_hosts ? x->cfg.etcd.n_hosts : 1, sizeof(*x->endpoints));
	x->view = calloc(1, sizeof(*x->view));
	if (!x->endpoints || !x->view)
		return failed("out of memory");
	for (size_t i = 0; i < x->cfg.etcd.n_hosts; i++) {
		size_t len = strlen(x->cfg.etcd.protocol) + strlen(x->cfg.etcd.hosts[i]) + 4;
		int w;

		x->endpoints[i] = malloc(len);
		if (!x->endpoints[i])
			return failed("out of memory");
		snprintf(x->endpoints[i], len, "%s://%s", x->cfg.etcd.protocol, x->cfg.etcd.hosts[i]);
		w = snprintf(x->where + used, sizeof(x->where) - used, "%s%s", i ? ", " : "", x->endpoints[i]);
		if (w > 0 && (size_t)w < sizeof(x->where) - used)
			used += (size_t)w;
	}
	memset(&ec, 0, sizeof(ec));
	ec.endpoints = (const char *const *)x->endpoints;
	ec.n_endpoints = x->cfg.etcd.n_hosts;
	ec.request_timeout = 3;
	ec.connect_timeout = 1;
	ec.cacert = x->cfg.etcd.cacert;
	ec.cert = x->cfg.etcd.cert;
	ec.key = x->cfg.etcd.key;
	ec.username = x->cfg.etcd.username;
	ec.password = x->cfg.etcd.password;
	if (etcd_client_new(&ec, &x->client, &eerr) != ETCD_OK)
		return etcd_failed(x, "cannot use etcd", &eerr);
	return read ? ctl_read(x, false) : EXIT_DONE;
}

/* The key of the last read (NULL when absent). */
static const struct etcd_kv *ctl_kv(const struct ctl *x, const char *key)
{
	for (size_t i = 0; i < x->res.n_kvs; i++)
		if (strcmp(x->res.kvs[i].key, key) == 0)
			return &x->res.kvs[i];
	return NULL;
}

static bool is_leader(const struct ha_cluster_view *v, const char *name)
{
	return v->has_leader && strcmp(v->leader, name) == 0;
}

static json_t *member_record(const struct ctl *x, const char *name);
static bool confirmed(const struct args *a, const char *command, const char *what);

/* ---- tables ------------------------------------------------------------------ */

#define TABLE_MAX_COLS 8
#define TABLE_CELL 192

typedef char table_row[TABLE_MAX_COLS][TABLE_CELL];

struct table {
	size_t n_cols;
	const char *const *heads;
	unsigned right;  /* bit c: column c is right-aligned (numbers) */
	table_row *rows;
	size_t n_rows;
};

static void table_rule(const struct table *t, const size_t *w)
{
	for (size_t c = 0; c < t->n_cols; c++) {
		fputc('+', stdout);
		for (size_t i = 0; i < w[c] + 2; i++)
			fputc('-', stdout);
	}
	fputs("+\n", stdout);
}

static void table_line(const struct table *t, const size_t *w, const char *const *cells, bool head)
{
	for (size_t c = 0; c < t->n_cols; c++) {
		if (!head && (t->right & (1u << c)))
			printf("| %*s ", (int)w[c], cells[c]);
		else
			printf("| %-*s ", (int)w[c], cells[c]);
	}
	fputs("|\n", stdout);
}

static void table_print(const struct table *t)
{
	size_t w[TABLE_MAX_COLS];

	/* Cells come from etcd: one line each, no control characters. */
	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t c = 0; c < t->n_cols; c++) {
			char esc[TABLE_CELL];

			log_escape(t->rows[r][c], esc, sizeof(esc), false);
			memcpy(t->rows[r][c], esc, sizeof(esc));
		}
	for (size_t c = 0; c < t->n_cols; c++) {
		w[c] = strlen(t->heads[c]);
		for (size_t r = 0; r < t->n_rows; r++)
			if (strlen(t->rows[r][c]) > w[c])
				w[c] = strlen(t->rows[r][c]);
	}
	table_rule(t, w);
	table_line(t, w, t->heads, true);
	table_rule(t, w);
	for (size_t r = 0; r < t->n_rows; r++) {
		const char *cells[TABLE_MAX_COLS];

		for (size_t c = 0; c < t->n_cols; c++)
			cells[c] = t->rows[r][c];
		table_line(t, w, cells, false);
	}
	table_rule(t, w);
}

/* ---- members: list and topology ---------------------------------------------- */

/* One member as shown. */
struct row {
	const struct ha_member *m;
	bool leader;
	bool lag_known;
	uint64_t lag;   /* bytes behind the leader */
	int depth;      /* topology: 0 = top, 1 = streams from the leader */
	bool sync;      /* synchronous mode: the sync key names this replica */
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
		r->lag_known = r->leader;
		r->lag = 0;
		if (!r->leader && have_ref && r->m->lsn > 0) {
			r->lag_known = true;
			r->lag = ref > r->m->lsn ? ref - r->m->lsn : 0;
		}
		r->sync = !r->leader && v->synchronous_mode && v->has_sync &&
			  strcmp(v->sync_leader, r->m->name) != 0 && ha_sync_allows(v, r->m->name);
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
		snprintf(buf, len, "Leader");
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

enum { COL_MEMBER, COL_HOST, COL_ROLE, COL_STATE, COL_TL, COL_LAG, COL_PENDING, COL_TAGS, N_MEMBER_COLS };

static void fill_member_cells(const struct row *r, bool topology, table_row cells)
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
	}
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

		if (at)
			printf("Scheduled restart: %s at %s%s (batonctl restart --cancel withdraws it)\n",
			       v->members[i].name, at,
			       json_is_true(json_object_get(sr, "restart_pending")) ? " if a restart is pending" : "");
		json_decref(rec);
	}
}

/* A member as a JSON object (new reference; NULL when out of memory). */
static json_t *member_object(const struct row *r)
{
	return json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:o, s:b, s:I, s:s, s:b, s:b, s:b, s:{s:b, s:b, s:i}}", "name",
			 r->m->name,
			 "host", r->m->host, "port", r->m->port, "role", r->leader ? "primary" : r->m->role, "state",
			 r->m->state, "timeline", (json_int_t)r->m->timeline, "lag",
			 r->lag_known ? json_integer((json_int_t)r->lag) : json_null(), "leader", (int)r->leader,
			 "lsn", (json_int_t)r->m->lsn, "api_url", r->m->api_url, "nofailover", (int)r->m->nofailover,
			 "pending_restart", (int)r->m->pending_restart, "sync_standby", (int)r->sync, "tags", "nofailover",
			 (int)r->m->nofailover, "nosync", (int)r->m->nosync, "failover_priority", r->m->failover_priority);
}

/* list and topology: the same rows, in their order. JSON: list is a flat
 * array; topology nests each leader's replicas under "replicas". */
static int show_members(const char *config_path, const struct args *a, bool topology)
{
	static const char *const heads[N_MEMBER_COLS] = { "Member", "Host", "Role", "State", "TL", "Lag in MB",
							  "Pending restart", "Tags" };
	struct table t = { N_MEMBER_COLS, heads, (1u << COL_TL) | (1u << COL_LAG), NULL, 0 };
	struct row *rows = NULL;
	json_t *arr = NULL, *top = NULL;
	struct ctl x;
	size_t n;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	rc = EXIT_FAILED;
	rows = calloc(HA_MAX_MEMBERS, sizeof(*rows));
	t.rows = calloc(HA_MAX_MEMBERS, sizeof(*t.rows));
	if (!rows || !t.rows) {
		rc = failed("out of memory");
		goto cleanup;
	}
	n = build_rows(x.view, rows, topology);
	if (!a->json) {
		for (size_t i = 0; i < n; i++)
			fill_member_cells(&rows[i], topology, t.rows[i]);
		t.n_rows = n;
		print_cluster_head(&x);
		table_print(&t);
	} else {
		arr = json_array();
		if (!arr)
			goto oom;
		for (size_t i = 0; i < n; i++) {
			json_t *o = member_object(&rows[i]), *rec;

			if (!o)
				goto oom;
			rec = member_record(&x, rows[i].m->name);
			if (json_object_get(rec, "scheduled_restart"))
				json_object_set(o, "scheduled_restart", json_object_get(rec, "scheduled_restart"));
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
		if (!print_json_value(arr, false))
			goto oom;
	}
	rc = EXIT_DONE;
	goto cleanup;
oom:
	rc = failed("out of memory");
cleanup:
	json_decref(arr);
	free(t.rows);
	free(rows);
	ctl_close(&x);
	return rc;
}

static int cmd_list(const char *config_path, const struct args *a)
{
	return show_members(config_path, a, false);
}

static int cmd_topology(const char *config_path, const struct args *a)
{
	return show_members(config_path, a, true);
}

/* ---- history ------------------------------------------------------------------- */

static int cmd_history(const char *config_path, const struct args *a)
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
	if (a->json) {
		rc = print_json_value(arr, false) ? EXIT_DONE : failed("out of memory");
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

/* ---- configuration ------------------------------------------------------------- */

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

/* Flattens doc into "path: value" lines appended to lines (a JSON array of
 * strings): postgresql.parameters.work_mem: 8MB. */
static bool flatten(const json_t *doc, const char *prefix, json_t *lines)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)doc, key, v) {
		char path[256], text[512];

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(v)) {
			if (!flatten(v, path, lines))
				return false;
			continue;
		}
		scalar_text(v, text, sizeof(text));
		if (json_array_append_new(lines, json_sprintf("%s: %s", path, text)) != 0)
			return false;
	}
	return true;
}

/* Prints the config document: pretty JSON, or "key: value" lines. */
static bool print_config(const json_t *doc, bool json)
{
	json_t *lines, *l;
	size_t i;

	if (json)
		return print_json_value(doc, true);
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

static int cmd_show_config(const char *config_path, const struct args *a)
{
	json_t *doc = NULL;
	struct ctl x;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc == EXIT_DONE) {
		doc = current_config(&x);
		if (!doc)
			rc = EXIT_FAILED;
		else if (!print_config(doc, a->json))
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

/* "y" or "yes" on the terminal. */
static bool confirm(const char *question)
{
	char answer[16] = "";

	printf("%s [y/N] ", question);
	fflush(stdout);
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	return strcmp(answer, "y\n") == 0 || strcmp(answer, "yes\n") == 0;
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
		rc = failed("invalid JSON at line %d column %d: %s; nothing changed", jerr.line, jerr.column, jerr.text);
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

static int cmd_edit_config(const char *config_path, const struct args *a)
{
	struct dcs_settings result;
	json_t *doc = NULL;
	char err[1024], *text = NULL;
	struct ctl x;
	int rc;

	if (a->n_set == 0 && a->n_pg == 0 && !isatty(STDIN_FILENO))
		return usage_error("edit-config: nothing to change: give --set/--pg, or run it on a terminal to edit "
				   "with $EDITOR");
	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	if (a->n_set == 0 && a->n_pg == 0) {
		rc = edit_interactively(&x, a);
		goto cleanup;
	}
	memset(&result, 0, sizeof(result));
	if (!ops_edit_config(x.client, &x.keys, a->set, a->n_set, a->pg, a->n_pg, &result, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	text = dcs_config_json(&result);
	dcs_settings_free(&result);
	doc = text ? json_loads(text, 0, NULL) : NULL;
	rc = doc && print_config(doc, a->json) ? EXIT_DONE : failed("out of memory");
cleanup:
	free(text);
	json_decref(doc);
	ctl_close(&x);
	return rc;
}

/* ---- pause / resume ---------------------------------------------------------- */

static int set_pause(const char *config_path, const struct args *a, bool pause)
{
	char err[1024];
	struct ctl x;
	bool was;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	was = x.view->paused;
	if (!ops_set_pause(x.client, &x.keys, pause, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	if (a->json)
		printf("{\"paused\":%s,\"was_paused\":%s}\n", pause ? "true" : "false", was ? "true" : "false");
	else
		printf("Maintenance mode %s%s\n", pause ? "on" : "off", was == pause ? " (it already was)" : "");
cleanup:
	ctl_close(&x);
	return rc;
}

static int cmd_pause(const char *config_path, const struct args *a)
{
	return set_pause(config_path, a, true);
}

static int cmd_resume(const char *config_path, const struct args *a)
{
	return set_pause(config_path, a, false);
}

/* ---- switchover / failover ------------------------------------------------- */

/* ISO 8601 with a zone ("2026-11-25T20:00:00Z", "...+01:00", "...+0100"),
 * or "now" (0). */
static bool parse_when(const char *s, time_t *out)
{
	struct tm tm;
	const char *rest;
	long off = 0;

	if (strcmp(s, "now") == 0) {
		*out = 0;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (!rest)
		return false;
	if (*rest == ':') {
		rest = strptime(rest, ":%S", &tm);
		if (!rest)
			return false;
	}
	if (strcmp(rest, "Z") == 0 || strcmp(rest, "z") == 0) {
		off = 0;
	} else if ((rest[0] == '+' || rest[0] == '-') && strlen(rest) >= 5) {
		int hh, mm;

		if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2 && strlen(rest) == 6)
			off = hh * 3600L + mm * 60L;
		else if (sscanf(rest + 1, "%2d%2d", &hh, &mm) == 2 && strlen(rest) == 5)
			off = hh * 3600L + mm * 60L;
		else
			return false;
		if (rest[0] == '-')
			off = -off;
	} else {
		return false;
	}
	*out = timegm(&tm) - off;
	return true;
}

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

/* Waits (at most a->wait seconds) for the switchover to happen; prints the
 * outcome. */
static int wait_switchover(struct ctl *x, const struct args *a, const char *from, bool failover)
{
	double t0 = mono_now(), deadline = t0 + a->wait, gone_since = 0;
	int rc;

	for (;;) {
		rc = ctl_read(x, true);
		if (rc == EXIT_DONE && handed_over(x->view, from)) {
			double took = mono_now() - t0;

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
		/* The key gone and the leader unchanged for a whole TTL and
		 * two loops: the leader dropped the request. */
		if (rc == EXIT_DONE && !ctl_kv(x, x->keys.switchover)) {
			if (gone_since == 0)
				gone_since = mono_now();
			else if (mono_now() - gone_since > x->view->ttl + 2 * x->view->loop_wait)
				return failed("the request was withdrawn, but %s still leads (see the agents' logs)",
					      x->view->has_leader ? x->view->leader : "nobody");
		} else {
			gone_since = 0;
		}
		if (mono_now() >= deadline)
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
	if (!ops_switchover(x.client, &x.keys, &req, err, sizeof(err))) {
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
		rc = wait_switchover(&x, a, from, failover);
	}
cleanup:
	ctl_close(&x);
	return rc;
}

static int cmd_switchover(const char *config_path, const struct args *a)
{
	return request_switchover(config_path, a, false);
}

static int cmd_failover(const char *config_path, const struct args *a)
{
	return request_switchover(config_path, a, true);
}

/* ---- restart / reload / reinit: POSTs to the members' REST API ------------- */

/* POSTs body to <m->api_url><path> through peer.c (the member's URL as its
 * key publishes it, nothing else); true on a 2xx answer. The reason
 * (the answer's "error"/"message" when JSON, else its text; escaped) goes
 * into why. */
/* post_member's method (NULL = POST; DELETE cancels) and total timeout:
 * restart waits for the member's answer, which comes once Postgres is back. */
static const char *post_method;
static long post_timeout_s = (long)API_TIMEOUT_S;

static bool post_member(const struct ctl *x, const struct ha_member *m, const char *path, const char *body,
			char *why, size_t len)
{
	struct peer_opts po;
	struct peer_answer ans;
	bool ok;

	why[0] = '\0';
	if (!m->api_url[0]) {
		snprintf(why, len, "it publishes no REST API address");
		return false;
	}
	peer_opts_from_config(&x->cfg, &po);
	if (!peer_request(&po, m->api_url, post_method ? post_method : "POST", path, body ? body : "{}",
			  (double)post_timeout_s, &ans, why, len))
		return false;
	peer_answer_reason(&po, m->api_url, &ans, why, len);
	ok = ans.code >= 200 && ans.code < 300;
	peer_answer_free(&ans);
	return ok;
}

/* The members named (all when none), filtered by role ("primary" = the
 * leader, "replica" = the others' replicas). false + reported on an
 * unknown name. */
static bool select_members(const struct ctl *x, const struct args *a, const struct ha_member **out, size_t *n)
{
	const struct ha_cluster_view *v = x->view;

	*n = 0;
	for (size_t i = 0; i < a->n_pos; i++)
		if (!ha_find_member(v, a->pos[i])) {
			failed("'%s' is not a member of the cluster", a->pos[i]);
			return false;
		}
	for (size_t i = 0; i < v->n_members; i++) {
		const struct ha_member *m = &v->members[i];
		bool named = a->n_pos == 0, leader = is_leader(v, m->name);

		for (size_t j = 0; j < a->n_pos; j++)
			named = named || strcmp(a->pos[j], m->name) == 0;
		if (!named)
			continue;
		if (a->role && strcmp(a->role, "primary") == 0 && !leader)
			continue;
		if (a->role && strcmp(a->role, "replica") == 0 && (leader || strcmp(m->role, "replica") != 0))
			continue;
		out[(*n)++] = m;
	}
	return true;
}

/*
 * The confirmation of a change an operator could regret: on a terminal,
 * what will happen and y/N; --force skips it; without a terminal and
 * without --force it is refused (a script must say --force).
 */
static bool confirmed(const struct args *a, const char *command, const char *what)
{
	char question[1200];

	if (a->force)
		return true;
	if (!isatty(STDIN_FILENO)) {
		failed("%s: not confirmed: stdin is not a terminal; add --force to %s", command, what);
		return false;
	}
	snprintf(question, sizeof(question), "%s?", what);
	if (question[0] >= 'a' && question[0] <= 'z')
		question[0] = (char)(question[0] - 'a' + 'A');
	if (!confirm(question)) {
		failed("%s: not confirmed; nothing done", command);
		return false;
	}
	return true;
}

/* "node1, node2" of the members selected (n of them). */
static void name_list(const struct ha_member *const *sel, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", sel[i]->name);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Sends one action to each member selected; one line per member. */
static int member_action(const char *config_path, const struct args *a, const char *path, const char *body,
			 const char *done, bool replicas_only, bool ask)
{
	const struct ha_member *sel[HA_MAX_MEMBERS];
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
	if (ask) {
		char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 100];

		name_list(sel, n, names, sizeof(names));
		snprintf(what, sizeof(what), "%s %s", path + 1, names);
		if (!confirmed(a, path + 1, what)) {
			rc = EXIT_FAILED;
			goto cleanup;
		}
	} else if (!a->force && isatty(STDIN_FILENO)) {
		/* An operator at a terminal confirms; scripts (and --force) do not. */
		char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 100];

		name_list(sel, n, names, sizeof(names));
		snprintf(what, sizeof(what), "%s %s?", path + 1, names);
		if (!confirm(what)) {
			rc = failed("not confirmed; nothing done");
			goto cleanup;
		}
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char why[1200];
		bool ok = post_member(&x, sel[i], path, body, why, sizeof(why));

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

/* The member's own record (raw JSON of its key; NULL when absent or not an
 * object). New reference. */
static json_t *member_record(const struct ctl *x, const char *name)
{
	char key[600];
	const struct etcd_kv *kv;
	json_t *j;

	if (!dcs_member_key(&x->keys, name, key, sizeof(key)))
		return NULL;
	kv = ctl_kv(x, key);
	j = kv && kv->value ? json_loads(kv->value, 0, NULL) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* "HTTP 200: message" (post_member's reason) -> code and message. */
static long answer_code(const char *why, const char **msg)
{
	long code = 0;
	const char *colon;

	if (sscanf(why, "HTTP %ld", &code) != 1)
		code = 0;
	colon = code ? strstr(why, ": ") : NULL;
	*msg = colon ? colon + 2 : why;
	return code;
}

/* restart --cancel: DELETE /restart on the members that keep a scheduled
 * restart (of those named, or all). */
static int restart_cancel(struct ctl *x, const struct args *a, const struct ha_member *const *sel, size_t n)
{
	size_t n_done = 0, n_failed = 0;

	post_method = "DELETE";
	for (size_t i = 0; i < n; i++) {
		json_t *rec = member_record(x, sel[i]->name);
		bool kept = json_is_object(json_object_get(rec, "scheduled_restart"));
		char why[1200];

		json_decref(rec);
		if (!kept && a->n_pos == 0)
			continue;
		if (post_member(x, sel[i], "/restart", NULL, why, sizeof(why))) {
			printf("%s: scheduled restart cancelled\n", sel[i]->name);
			n_done++;
		} else {
			fprintf(stderr, "batonctl: %s: cancel failed: %s\n", sel[i]->name, why);
			n_failed++;
		}
	}
	post_method = NULL;
	if (n_done == 0 && n_failed == 0)
		return failed("restart --cancel: no member keeps a scheduled restart");
	return n_failed ? EXIT_FAILED : EXIT_DONE;
}

/*
 * restart: the members selected, one at a time, replicas first and the
 * leader last (without members named this is a rolling restart of the
 * cluster). Each POST /restart answers once that member's Postgres is back
 * (a replica: streaming again), so the next one starts only then; a member
 * that fails or does not come back within the wait stops the sequence.
 * --scheduled asks every member selected to restart at that time instead.
 */
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
			if (sscanf(p, " %ld -> %ld", &before, &after) == 2 && after < before)
				return true;
		}
	}
	return false;
}

static int cmd_restart(const char *config_path, const struct args *a)
{
	const struct ha_member *sel[HA_MAX_MEMBERS], *order[HA_MAX_MEMBERS];
	char names[HA_MAX_MEMBERS * (HA_NAME_MAX + 2)], what[sizeof(names) + 200], when_text[32] = "";
	json_t *body = NULL, *arr = NULL;
	char *text = NULL;
	time_t when = 0;
	struct ctl x;
	size_t n = 0, k = 0, n_failed = 0;
	bool lowered_leader = false;
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
		rc = restart_cancel(&x, a, sel, n);
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
		snprintf(what, sizeof(what), "restart Postgres on %s%s%s", names, n > 1 ? ", one at a time in this order" : "",
			 a->pending ? " (where a restart is pending)" : "");
	}
	if (!confirmed(a, "restart", what)) {
		rc = EXIT_FAILED;
		goto cleanup;
	}
	body = json_object();
	if (!body || json_object_set_new(body, "restart_pending", json_boolean(a->pending)) != 0 ||
	    (a->pg_version && json_object_set_new(body, "postgres_version", json_string(a->pg_version)) != 0) ||
	    (a->role && strcmp(a->role, "any") != 0 &&
	     json_object_set_new(body, "role", json_string(a->role)) != 0) ||
	    (when && json_object_set_new(body, "schedule", json_string(when_text)) != 0) ||
	    json_object_set_new(body, "wait", json_real(a->wait > 60 ? 60.0 : a->wait)) != 0 ||
	    !(text = json_dumps(body, JSON_COMPACT))) {
		rc = failed("out of memory");
		goto cleanup;
	}
	post_timeout_s = API_TIMEOUT_S + (long)ceil(a->wait > 60 ? 60.0 : a->wait);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct ha_member *m = order[i];
		char why[1200];
		const char *msg;
		bool ok = post_member(&x, m, "/restart", text, why, sizeof(why));
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
			fprintf(stderr, "batonctl: %s: restart still in progress after %g s (see batonctl list and the agent's log)\n",
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
	 * primary: the replicas become pending once they replayed it; restart
	 * them then (bounded), so that one command applies the change. */
	if (a->pending && !when && a->wait > 0 && n_failed == 0 && lowered_leader) {
		bool waiting[HA_MAX_MEMBERS];
		char wanted[HA_MAX_MEMBERS][HA_NAME_MAX];
		size_t n_wanted = 0, left;
		double until = pg_now() + 30.0;

		for (size_t i = 0; i < n; i++)
			if (!is_leader(x.view, order[i]->name)) {
				snprintf(wanted[n_wanted], sizeof(wanted[n_wanted]), "%s", order[i]->name);
				waiting[n_wanted++] = true;
			}
		left = n_wanted;
		if (left && !a->json)
			printf("waiting (at most 30 s) for the replicas to replay the primary's lower value\n");
		while (left && pg_now() < until && n_failed == 0) {
			struct timespec ts = { 1, 0 };

			nanosleep(&ts, NULL);
			if (ctl_read(&x, true) != EXIT_DONE)
				continue;
			for (size_t j = 0; j < n_wanted; j++) {
				const struct ha_member *m = waiting[j] ? ha_find_member(x.view, wanted[j]) : NULL;
				char why[1200];
				const char *msg;
				long code;
				bool ok;

				if (!m || !m->pending_restart)
					continue;
				waiting[j] = false;
				left--;
				ok = post_member(&x, m, "/restart", text, why, sizeof(why));
				code = answer_code(why, &msg);
				if (a->json)
					json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s}", "member", m->name, "ok",
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
			}
		}
		if (left && n_failed == 0 && !a->json)
			printf("%zu replica(s) not yet pending after 30 s: run batonctl restart --pending again once "
			       "batonctl list shows them pending\n",
			       left);
	}
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

static int cmd_reload(const char *config_path, const struct args *a)
{
	return member_action(config_path, a, "/reload", "{}",
			     "reload requested (the agent re-reads its file and reloads Postgres, as on SIGHUP)", false,
			     false);
}

static int cmd_reinit(const char *config_path, const struct args *a)
{
	return member_action(config_path, a, "/reinit", "{}", "reinit requested (wipe and re-clone)", true, true);
}

/* ---- the command table -------------------------------------------------------- */

#define OPT_FORMAT { "format", required_argument, NULL, 'f' }
#define OPT_HELP { "help", no_argument, NULL, 'h' }
#define OPT_END { NULL, 0, NULL, 0 }

static const struct option opts_show[] = { OPT_FORMAT, OPT_HELP, OPT_END };
static const struct option opts_switchover[] = {
	{ "leader", required_argument, NULL, 'L' }, { "candidate", required_argument, NULL, 'C' },
	{ "scheduled", required_argument, NULL, 'S' }, { "force", no_argument, NULL, 'F' },
	{ "wait", required_argument, NULL, 'W' }, { "cancel", no_argument, NULL, 'X' },
	OPT_FORMAT, OPT_HELP, OPT_END,
};
static const struct option opts_failover[] = {
	{ "candidate", required_argument, NULL, 'C' }, { "force", no_argument, NULL, 'F' },
	{ "wait", required_argument, NULL, 'W' }, OPT_FORMAT, OPT_HELP, OPT_END,
};
static const struct option opts_restart[] = {
	{ "role", required_argument, NULL, 'R' },      { "pending", no_argument, NULL, 'P' },
	{ "pg-version", required_argument, NULL, 'G' }, { "scheduled", required_argument, NULL, 'S' },
	{ "cancel", no_argument, NULL, 'X' },          { "wait", required_argument, NULL, 'W' },
	{ "force", no_argument, NULL, 'F' },           OPT_FORMAT,
	OPT_HELP,                                      OPT_END,
};
static const struct option opts_reload[] = {
	{ "role", required_argument, NULL, 'R' }, { "force", no_argument, NULL, 'F' }, OPT_FORMAT, OPT_HELP, OPT_END,
};
static const struct option opts_reinit[] = { { "force", no_argument, NULL, 'F' }, OPT_FORMAT, OPT_HELP, OPT_END };
static const struct option opts_edit[] = {
	{ "set", required_argument, NULL, 's' }, { "pg", required_argument, NULL, 'p' },
	{ "force", no_argument, NULL, 'F' }, OPT_FORMAT, OPT_HELP, OPT_END,
};

static const struct command commands[] = {
	{ "list", cmd_list, opts_show, 0, 0, "list [--format table|json]",
	  "The members: host, role, state, timeline, lag behind the leader in MB, pending restart, tags.\n"
	  "The leader is marked; maintenance mode and a pending switchover are shown above the table.\n"
	  "  --format FORMAT    table (default) or json" },
	{ "topology", cmd_topology, opts_show, 0, 0, "topology [--format table|json]",
	  "The members as a tree: the leader, then the replicas that stream from it (+ name).\n"
	  "  --format FORMAT    table (default) or json" },
	{ "history", cmd_history, opts_show, 0, 0, "history [--format table|json]",
	  "The leader changes: timeline, LSN where it began, reason, time, new leader.\n"
	  "  --format FORMAT    table (default) or json" },
	{ "switchover", cmd_switchover, opts_switchover, 0, 0,
	  "switchover [--leader NAME] [--candidate NAME] [--scheduled TIME] [--force] [--wait SECONDS] [--cancel]",
	  "Hands the leadership over, planned: the leader checkpoints, stops, waits until the candidate\n"
	  "has its last WAL, and releases the key to it.\n"
	  "  --leader NAME      refuse unless NAME is the leader\n"
	  "  --candidate NAME   the new leader (default: the best healthy replica)\n"
	  "  --scheduled TIME   ISO 8601 with a zone (2026-11-25T20:00:00Z), or 'now'\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal), and\n"
	  "                     skip the health checks of the candidate\n"
	  "  --wait SECONDS     wait this long for the new leader (default 60; 0 = do not wait)\n"
	  "  --cancel           withdraw a pending (e.g. scheduled) switchover\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "failover", cmd_failover, opts_failover, 0, 0, "failover --candidate NAME [--force] [--wait SECONDS]",
	  "Makes NAME the leader, also when the leader is gone (a manual failover).\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal), and\n"
	  "                     skip the health checks of the candidate\n"
	  "  --wait SECONDS     wait this long for the new leader (default 60; 0 = do not wait)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "restart", cmd_restart, opts_restart, 0, HA_MAX_MEMBERS,
	  "restart [MEMBER...] [--role primary|replica|any] [--pending] [--pg-version VERSION] [--scheduled TIME] "
	  "[--cancel] [--wait SECONDS] [--force]",
	  "Restarts Postgres on the members named, through their REST API, one at a time: the replicas\n"
	  "first, each back to streaming before the next, then the primary in place (it keeps the leader\n"
	  "key). Without members: every member (a rolling restart). Prints per member what happened;\n"
	  "stops at the first member that fails or is not back in time.\n"
	  "  --role ROLE        only the primary, or only the replicas\n"
	  "  --pending          only where a changed parameter waits for a restart (judged by each agent\n"
	  "                     on the configuration as it is now, also right after edit-config)\n"
	  "  --pg-version VER   only where the running Postgres is older than VER (e.g. 15.4)\n"
	  "  --scheduled TIME   restart at TIME (ISO 8601 with a zone) instead; batonctl list shows it\n"
	  "  --cancel           withdraw the scheduled restarts (of the members named, or all)\n"
	  "  --wait SECONDS     wait this long per member (default 60, at most 60; 0 = ask all, wait for none)\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "reload", cmd_reload, opts_reload, 0, HA_MAX_MEMBERS,
	  "reload [MEMBER...] [--role primary|replica|any] [--force]",
	  "Makes the members named (default: all) do what SIGHUP does: the agent re-reads its own\n"
	  "configuration file (tags, log level, Postgres parameters, pg_hba, ...; see baton(8)) and\n"
	  "Postgres reloads its configuration, through their REST API.\n"
	  "  --role ROLE        only the primary, or only the replicas\n"
	  "  --force            do not ask for confirmation (never asked when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "reinit", cmd_reinit, opts_reinit, 1, 1, "reinit MEMBER [--force]",
	  "Wipes MEMBER's data directory and clones it again from the leader (replicas only).\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "pause", cmd_pause, opts_show, 0, 0, "pause [--format table|json]",
	  "Maintenance mode: the agents keep their keys alive but touch no Postgres and never fail over.\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "resume", cmd_resume, opts_show, 0, 0, "resume [--format table|json]",
	  "Ends maintenance mode.\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "show-config", cmd_show_config, opts_show, 0, 0, "show-config [--format table|json]",
	  "The cluster-wide configuration (the config key in etcd, not this node's file):\n"
	  "`key: value` lines, or JSON.\n"
	  "  --format FORMAT    table (default) or json" },
	{ "edit-config", cmd_edit_config, opts_edit, 0, 0,
	  "edit-config [--set key=value ...] [--pg name=value ...] [--force] [--format table|json]",
	  "Changes the cluster-wide configuration, validated before it is written.\n"
	  "  --set key=value    ttl, loop_wait, retry_timeout, maximum_lag_on_failover, pause,\n"
	  "                     failsafe_mode, synchronous_mode, synchronous_mode_strict,\n"
	  "                     synchronous_node_count, synchronous_quorum, slots (a comma-separated list)\n"
	  "  --pg name=value    a Postgres parameter (name= removes it)\n"
	  "  --force            apply an $EDITOR edit without asking\n"
	  "  --format FORMAT    table (default) or json, for the new configuration printed\n"
	  "Without --set/--pg, on a terminal: opens the configuration in $EDITOR (default vi)." },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static void print_usage(void)
{
	fputs("Usage: batonctl [-c FILE] COMMAND [OPTIONS]\n"
	      "       batonctl COMMAND --help\n"
	      "       batonctl help [COMMAND]\n\nCommands:\n",
	      stdout);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %s\n", commands[i].synopsis);
	fputs("\nOptions:\n"
	      "  -h, --help          show this help and exit\n"
	      "  -V, --version       show the version and exit\n",
	      stdout);
	fputs(common_help, stdout);
}

static int ctl_main(int argc, char **argv, const char *config_path);

int main(int argc, char **argv)
{
	const char *config_path = getenv("BATONCTL_CONFIG");
	FILE *real_out = stdout, *real_err = stderr;
	int rc;

	/* Whatever a command prints, a terminal gets no control sequence from
	 * it (values come from etcd); JSON output is already escaped. */
	stdout = log_escaping_stream(real_out);
	stderr = log_escaping_stream(real_err);
	if (!stdout || !stderr) {
		if (stdout)
			fclose(stdout);
		stdout = real_out;
		stderr = real_err;
		fputs("batonctl: cannot set up the output\n", stderr);
		return EXIT_FAILED;
	}
	setvbuf(stdout, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	json_out = real_out;
	rc = ctl_main(argc, argv, config_path);
	json_out = NULL;
	if (fclose(stdout) != 0 && rc == EXIT_DONE)
		rc = EXIT_FAILED;
	fclose(stderr);
	stdout = real_out;
	stderr = real_err;
	return rc;
}

static int ctl_main(int argc, char **argv, const char *config_path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = NULL;
	struct args a;
	int c, rc;

	/* "+": stop at the command, whose options are parsed separately. */
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			print_usage();
			return EXIT_DONE;
		case 'V':
			printf("batonctl %s\n", BATON_VERSION);
			return EXIT_DONE;
		default:
			fputs("Try 'batonctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	/* batonctl help [COMMAND]: the same texts as --help */
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 == argc) {
			print_usage();
			return EXIT_DONE;
		}
		if (optind + 2 < argc)
			return usage_error("help: one command at most (usage: batonctl help [COMMAND])");
		cmd = find_command(argv[optind + 1]);
		if (!cmd)
			return usage_error("help: unknown command '%s'", argv[optind + 1]);
		print_command_help(cmd);
		return EXIT_DONE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);

	rc = args_parse(cmd, argc - optind, argv + optind, &a);
	if (rc < 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			rc = failed("cannot initialise libcurl");
		} else {
			rc = cmd->run(config_path, &a);
			curl_global_cleanup();
		}
	}
	args_free(&a);
	if (fflush(stdout) != 0 && rc == EXIT_DONE) {
		perror("batonctl: stdout");
		rc = EXIT_FAILED;
	}
	return rc;
}
