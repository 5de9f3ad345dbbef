/*
 * batonctl.c - the command-line tool for a baton cluster.
 *
 *   batonctl [-c FILE] list [--format table|json]
 *
 * It reads the same libconfig file as the agent (-c, or $BATONCTL_CONFIG)
 * for the scope and the etcd endpoints, reads every key of the cluster in
 * one etcd range request, and builds the cluster view with the agent's own
 * parser (dcs_parse_cluster), so what it shows is exactly what the agents
 * see. It never writes to etcd for `list`.
 *
 * Exit status: 0 done, 1 failed (etcd unreachable, ...), 2 usage or
 * configuration error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/ha.h"
#include "etcd/etcd.h"

#define EXIT_DONE 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: batonctl [-c FILE] COMMAND [OPTIONS]\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   the node's configuration file (default: $BATONCTL_CONFIG)\n"
	"  -h, --help          show this help and exit\n"
	"  -V, --version       show the version and exit\n"
	"\n"
	"Commands:\n"
	"  list [--format table|json]   the members of the cluster, their role, state and lag\n"
	"\n"
	"Exit status: 0 done, 1 failed, 2 usage or configuration error.\n";

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

/* One row of the list, in the order shown. */
struct row {
	const struct ha_member *m;
	bool leader;
	bool lag_known;
	uint64_t lag; /* bytes behind the leader */
};

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->m->name, ((const struct row *)b)->m->name);
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

/* Fills rows (sorted by name) from the view; returns how many. */
static size_t build_rows(const struct ha_cluster_view *v, struct row *rows)
{
	uint64_t ref = 0;
	bool have_ref = reference_lsn(v, &ref);

	for (size_t i = 0; i < v->n_members; i++) {
		struct row *r = &rows[i];

		r->m = &v->members[i];
		r->leader = v->has_leader && strcmp(v->leader, r->m->name) == 0;
		r->lag_known = false;
		r->lag = 0;
		if (r->leader) {
			r->lag_known = true;
		} else if (have_ref && r->m->lsn > 0) {
			r->lag_known = true;
			r->lag = ref > r->m->lsn ? ref - r->m->lsn : 0;
		}
	}
	qsort(rows, v->n_members, sizeof(*rows), row_cmp);
	return v->n_members;
}

/* "Leader" for the holder of the key; otherwise the published role with a
 * capital letter ("Replica", "Stopped", ...). */
static void table_role(const struct row *r, char *buf, size_t len)
{
	if (r->leader) {
		snprintf(buf, len, "Leader");
		return;
	}
	snprintf(buf, len, "%s", r->m->role);
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] = (char)(buf[0] - 'a' + 'A');
}

enum { COL_MEMBER, COL_HOST, COL_ROLE, COL_STATE, COL_TL, COL_LAG, N_COLS };

static void print_rule(const size_t *w)
{
	for (int c = 0; c < N_COLS; c++) {
		fputc('+', stdout);
		for (size_t i = 0; i < w[c] + 2; i++)
			fputc('-', stdout);
	}
	fputs("+\n", stdout);
}

static void print_cells(const size_t *w, char cells[N_COLS][192])
{
	for (int c = 0; c < N_COLS; c++) {
		/* Numbers to the right, text to the left. */
		if (c == COL_TL || c == COL_LAG)
			printf("| %*s ", (int)w[c], cells[c]);
		else
			printf("| %-*s ", (int)w[c], cells[c]);
	}
	fputs("|\n", stdout);
}

static void fill_cells(const struct row *r, char cells[N_COLS][192])
{
	snprintf(cells[COL_MEMBER], 192, "%s", r->m->name);
	if (strchr(r->m->host, ':'))
		snprintf(cells[COL_HOST], 192, "[%s]:%d", r->m->host, r->m->port);
	else
		snprintf(cells[COL_HOST], 192, "%s:%d", r->m->host, r->m->port);
	table_role(r, cells[COL_ROLE], 192);
	snprintf(cells[COL_STATE], 192, "%s", r->m->state);
	if (r->m->timeline > 0)
		snprintf(cells[COL_TL], 192, "%" PRIu32, r->m->timeline);
	else
		cells[COL_TL][0] = '\0';
	if (r->leader)
		cells[COL_LAG][0] = '\0';
	else if (r->lag_known)
		snprintf(cells[COL_LAG], 192, "%.1f", (double)r->lag / (1024.0 * 1024.0));
	else
		snprintf(cells[COL_LAG], 192, "unknown");
}

static void print_cluster_line(const char *scope, const struct ha_cluster_view *v)
{
	if (v->sysid)
		printf("Cluster: %s (%" PRIu64 ")\n", scope, v->sysid);
	else if (v->init_in_progress)
		printf("Cluster: %s (initializing)\n", scope);
	else
		printf("Cluster: %s (uninitialized)\n", scope);
}

static void print_table(const char *scope, const struct ha_cluster_view *v, const struct row *rows, size_t n)
{
	static const char *const heads[N_COLS] = { "Member", "Host", "Role", "State", "TL", "Lag in MB" };
	char cells[N_COLS][192];
	size_t w[N_COLS];

	for (int c = 0; c < N_COLS; c++)
		w[c] = strlen(heads[c]);
	for (size_t i = 0; i < n; i++) {
		fill_cells(&rows[i], cells);
		for (int c = 0; c < N_COLS; c++)
			if (strlen(cells[c]) > w[c])
				w[c] = strlen(cells[c]);
	}
	print_cluster_line(scope, v);
	print_rule(w);
	for (int c = 0; c < N_COLS; c++)
		snprintf(cells[c], sizeof(cells[c]), "%s", heads[c]);
	for (int c = 0; c < N_COLS; c++)
		printf("| %-*s ", (int)w[c], cells[c]);
	fputs("|\n", stdout);
	print_rule(w);
	for (size_t i = 0; i < n; i++) {
		fill_cells(&rows[i], cells);
		print_cells(w, cells);
	}
	print_rule(w);
}

/* The JSON array; false when out of memory. */
static bool print_json(const struct row *rows, size_t n)
{
	json_t *arr = json_array();
	char *text = NULL;
	bool ok = false;

	if (!arr)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:o, s:b, s:I, s:s, s:b}", "name", r->m->name,
				      "host", r->m->host, "port", r->m->port, "role",
				      r->leader ? "primary" : r->m->role, "state", r->m->state, "timeline",
				      (json_int_t)r->m->timeline, "lag",
				      r->lag_known ? json_integer((json_int_t)r->lag) : json_null(), "leader",
				      (int)r->leader, "lsn", (json_int_t)r->m->lsn, "api_url", r->m->api_url,
				      "nofailover", (int)r->m->nofailover);

		if (!o || json_array_append_new(arr, o) != 0)
			goto cleanup;
	}
	text = json_dumps(arr, JSON_COMPACT);
	if (!text)
		goto cleanup;
	puts(text);
	ok = true;
cleanup:
	free(text);
	json_decref(arr);
	return ok;
}

/* Puts one line of etcd's message on stderr (no embedded newlines). */
static void print_one_line(const char *prefix, const char *msg)
{
	fputs(prefix, stderr);
	for (const char *c = msg; *c; c++)
		fputc(*c == '\n' || *c == '\r' ? ' ' : *c, stderr);
	fputc('\n', stderr);
}

/* One line: what failed and why. etcd's messages name the endpoint; when
 * one does not, the configured endpoints are added so the operator knows
 * where batonctl looked. */
static void print_etcd_error(const char *what, const char *where, const struct baton_config *cfg,
			     const struct etcd_error *eerr)
{
	char prefix[1600];
	bool named = false;

	for (size_t i = 0; i < cfg->etcd.n_hosts; i++)
		named = named || strstr(eerr->message, cfg->etcd.hosts[i]) != NULL;
	if (named)
		snprintf(prefix, sizeof(prefix), "batonctl: %s: ", what);
	else
		snprintf(prefix, sizeof(prefix), "batonctl: %s at %s: ", what, where);
	print_one_line(prefix, eerr->message[0] ? eerr->message : etcd_status_name(eerr->status));
}

static int cmd_list(const struct baton_config *cfg, bool json)
{
	struct etcd_range_result res = { 0 };
	struct etcd_client *client = NULL;
	struct etcd_error eerr = { 0 };
	struct ha_cluster_view *view = NULL;
	struct etcd_config ec;
	struct dcs_keys keys;
	struct row *rows = NULL;
	char **endpoints = NULL;
	char warn[4096], where[1024];
	size_t n, used = 0;
	int rc = EXIT_FAILED;

	if (!dcs_keys_init(&keys, cfg->namespace_, cfg->scope)) {
		fprintf(stderr, "batonctl: %s: namespace or scope too long\n", cfg->path);
		return EXIT_USAGE;
	}
	endpoints = calloc(cfg->etcd.n_hosts ? cfg->etcd.n_hosts : 1, sizeof(*endpoints));
	view = calloc(1, sizeof(*view));
	rows = calloc(HA_MAX_MEMBERS, sizeof(*rows));
	if (!endpoints || !view || !rows) {
		fprintf(stderr, "batonctl: out of memory\n");
		goto cleanup;
	}
	where[0] = '\0';
	for (size_t i = 0; i < cfg->etcd.n_hosts; i++) {
		size_t len = strlen(cfg->etcd.protocol) + strlen(cfg->etcd.hosts[i]) + 4;
		int w;

		endpoints[i] = malloc(len);
		if (!endpoints[i]) {
			fprintf(stderr, "batonctl: out of memory\n");
			goto cleanup;
		}
		snprintf(endpoints[i], len, "%s://%s", cfg->etcd.protocol, cfg->etcd.hosts[i]);
		w = snprintf(where + used, sizeof(where) - used, "%s%s", i ? ", " : "", endpoints[i]);
		if (w > 0 && (size_t)w < sizeof(where) - used)
			used += (size_t)w;
	}
	memset(&ec, 0, sizeof(ec));
	ec.endpoints = (const char *const *)endpoints;
	ec.n_endpoints = cfg->etcd.n_hosts;
	ec.request_timeout = 3;
	ec.connect_timeout = 1;
	ec.cacert = cfg->etcd.cacert;
	ec.cert = cfg->etcd.cert;
	ec.key = cfg->etcd.key;
	ec.username = cfg->etcd.username;
	ec.password = cfg->etcd.password;
	if (etcd_client_new(&ec, &client, &eerr) != ETCD_OK) {
		print_etcd_error("cannot use etcd", where, cfg, &eerr);
		goto cleanup;
	}
	if (etcd_get_prefix(client, keys.prefix, &res, &eerr) != ETCD_OK) {
		char what[320];

		snprintf(what, sizeof(what), "cannot read %s from etcd", keys.prefix);
		print_etcd_error(what, where, cfg, &eerr);
		goto cleanup;
	}
	dcs_parse_cluster(&keys, &res, &cfg->bootstrap_dcs, view, NULL, warn, sizeof(warn));
	if (warn[0]) {
		char *save = NULL;

		for (char *line = strtok_r(warn, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "batonctl: warning: %s\n", line);
	}
	n = build_rows(view, rows);
	if (json) {
		if (!print_json(rows, n)) {
			fprintf(stderr, "batonctl: out of memory\n");
			goto cleanup;
		}
	} else {
		print_table(cfg->scope, view, rows, n);
	}
	if (fflush(stdout) != 0) {
		perror("batonctl: stdout");
		goto cleanup;
	}
	rc = EXIT_DONE;
cleanup:
	etcd_range_result_free(&res);
	etcd_client_free(client);
	for (size_t i = 0; endpoints && i < cfg->etcd.n_hosts; i++)
		free(endpoints[i]);
	free(endpoints);
	free(rows);
	free(view);
	return rc;
}

/* `list [--format table|json]`; argv[0] is "list". */
static int run_list(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct baton_config cfg;
	char err[1024];
	bool json = false;
	int c, rc;

	optind = 0; /* glibc: start a fresh scan of this argument vector */
	while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "json") == 0)
				json = true;
			else if (strcmp(optarg, "table") == 0 || strcmp(optarg, "pretty") == 0)
				json = false;
			else
				return usage_error("list: unknown format '%s' (table or json)", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_DONE;
		default:
			return usage_error("list: invalid option");
		}
	}
	if (optind < argc)
		return usage_error("list: unexpected argument '%s'", argv[optind]);
	if (!config_path || !*config_path)
		return usage_error("no configuration file: use -c FILE or set BATONCTL_CONFIG");

	if (!config_load(config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "batonctl: %s\n", err);
		return EXIT_USAGE;
	}
	rc = cmd_list(&cfg, json);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = getenv("BATONCTL_CONFIG");
	int c, rc;

	/* "+": stop at the command, whose options are parsed separately. */
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
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
	if (strcmp(argv[optind], "list") != 0)
		return usage_error("unknown command '%s'", argv[optind]);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "batonctl: cannot initialise libcurl\n");
		return EXIT_FAILED;
	}
	rc = run_list(config_path, argc - optind, argv + optind);
	curl_global_cleanup();
	return rc;
}
