/*
 * common.c - what more than one batonctl command needs: reporting errors
 * (one line on stderr, an exit status), printing JSON and tables past the
 * escaping stream, the one way to the cluster (ctl_open loads the config
 * file, connects to etcd and reads every key of the cluster in one range
 * request, parsed with the agent's own dcs_parse_cluster), asking the
 * operator for confirmation, and reaching a member's REST API through
 * peer.c, the HTTP client the agent uses too. Also what the patronictl
 * habits share: the cluster name taken off the arguments (scope_take),
 * Patroni's role names (role_matches, pick_member), and a small YAML
 * emitter (yaml_dump) for --format yaml: block style, plain scalars where
 * YAML reads them back as the same string, double quotes with escapes
 * otherwise, pure ASCII out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/batonctl/common.h"
#include "agent/clock.h"
#include "agent/parse.h"
#include "agent/log.h"
#include "agent/ops.h"
#include "agent/peer.h"

/* ---- reporting and printing -------------------------------------------------- */

int usage_error(const char *fmt, ...)
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
int failed(const char *fmt, ...)
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

void sleep_ms(long ms)
{
	clk_sleep((double)ms / 1000.0);
}

/* The real stdout, under the escaping stream main() puts in its place:
 * JSON goes there, escaped as JSON rather than as \xNN (which would make it
 * invalid). NULL: stdout itself. */
FILE *json_out;

/* Prints a JSON value on stdout (pretty or compact); false when out of
 * memory. No control character leaves raw: jansson escapes those below 0x20
 * and, with JSON_ENSURE_ASCII, every non-ASCII character (the C1 controls
 * among them) as \uXXXX; DEL is escaped here (it can only be in a string). */
bool print_json_value(const json_t *v, bool pretty)
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

/* ---- config, etcd and the cluster: one helper for every command -------------- */

void ctl_close(struct ctl *x)
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
int ctl_read(struct ctl *x, bool quiet)
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
int ctl_open(struct ctl *x, const char *config_path, bool read)
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
const struct etcd_kv *ctl_kv(const struct ctl *x, const char *key)
{
	for (size_t i = 0; i < x->res.n_kvs; i++)
		if (strcmp(x->res.kvs[i].key, key) == 0)
			return &x->res.kvs[i];
	return NULL;
}

bool is_leader(const struct ha_cluster_view *v, const char *name)
{
	return v->has_leader && strcmp(v->leader, name) == 0;
}

/* ---- tables ------------------------------------------------------------------ */

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

void table_print(const struct table *t)
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

/* ---- confirmations and times ------------------------------------------------- */

/* "y" or "yes" on the terminal. */
bool confirm(const char *question)
{
	char answer[16] = "";

	printf("%s [y/N] ", question);
	fflush(stdout);
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	return strcmp(answer, "y\n") == 0 || strcmp(answer, "yes\n") == 0;
}

/* "now" (0) or a time parse_time takes (ISO 8601 with a zone, or Unix
 * seconds). */
bool parse_when(const char *s, time_t *out)
{
	int64_t t;

	if (strcmp(s, "now") == 0) {
		*out = 0;
		return true;
	}
	if (!parse_time(s, &t))
		return false;
	*out = (time_t)t;
	return true;
}

/* ---- members and their REST API ---------------------------------------------- */

/* Sends method with body to <m->api_url><path> through peer.c (the
 * member's URL as its key publishes it, nothing else); true on a 2xx answer.
 * The reason (the answer's "error"/"message" when JSON, else its text;
 * escaped) goes into why. restart waits for the member's answer, which comes
 * once Postgres is back: its timeout_s is longer than API_TIMEOUT_S. */
bool post_member(const struct ctl *x, const struct ha_member *m, const char *method, const char *path, const char *body,
                 double timeout_s, char *why, size_t len)
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
	if (!peer_request(&po, m->api_url, method, path, body ? body : "{}", timeout_s, &ans, why, len))
		return false;
	peer_answer_reason(&po, m->api_url, &ans, why, len);
	ok = ans.code >= 200 && ans.code < 300;
	peer_answer_free(&ans);
	return ok;
}

/* The members named (all when none), filtered by role (role_matches).
 * false + reported on an unknown name. */
bool select_members(const struct ctl *x, const struct args *a, const struct ha_member **out, size_t *n)
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
		bool named = a->n_pos == 0;

		for (size_t j = 0; j < a->n_pos; j++)
			named = named || strcmp(a->pos[j], m->name) == 0;
		if (!named)
			continue;
		if (!role_matches(v, m, a->role))
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
bool confirmed(const struct args *a, const char *command, const char *what)
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
void name_list(const struct ha_member *const *sel, size_t n, char *buf, size_t len)
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

/* The member's own record (raw JSON of its key; NULL when absent or not an
 * object). New reference. */
json_t *member_record(const struct ctl *x, const char *name)
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
long answer_code(const char *why, const char **msg)
{
	long code = 0;
	const char *colon;

	if (sscanf(why, "HTTP %ld", &code) != 1)
		code = 0;
	colon = code ? strstr(why, ": ") : NULL;
	*msg = colon ? colon + 2 : why;
	return code;
}

/* ---- roles, and the member dsn and query talk to ------------------------------- */

/* Patroni's names: leader = the holder of the leader key; primary = that
 * holder when it runs as a primary (not the leader of a standby cluster);
 * standby-leader = the holder in a standby cluster (config standby_cluster;
 * or one that publishes role standby_leader, as Patroni's members do);
 * replica and standby = the others that stream. */
bool role_matches(const struct ha_cluster_view *v, const struct ha_member *m, const char *role)
{
	bool leader = is_leader(v, m->name);

	if (!role || strcmp(role, "any") == 0)
		return true;
	if (strcmp(role, "leader") == 0)
		return leader;
	if (strcmp(role, "primary") == 0)
		return leader && !ha_is_standby_leader(v, m);
	if (strcmp(role, "standby-leader") == 0)
		return ha_is_standby_leader(v, m);
	if (strcmp(role, "replica") == 0 || strcmp(role, "standby") == 0)
		return !leader && strcmp(m->role, "replica") == 0;
	return false;
}

const struct ha_member *pick_member(const struct ctl *x, const struct args *a)
{
	const struct ha_cluster_view *v = x->view;
	const char *role = a->role ? a->role : (a->member ? "any" : "leader");
	const struct ha_member *best = NULL;

	if (a->member) {
		best = ha_find_member(v, a->member);
		if (!best)
			failed("'%s' is not a member of the cluster %s", a->member, x->cfg.scope);
		else if (!role_matches(v, best, role)) {
			failed("'%s' is not a %s (--role %s)", a->member, role, role);
			best = NULL;
		}
		return best;
	}
	for (size_t i = 0; i < v->n_members; i++)
		if (role_matches(v, &v->members[i], role) && (!best || strcmp(v->members[i].name, best->name) < 0))
			best = &v->members[i];
	if (!best)
		failed("no member of the cluster %s is a %s now (see batonctl list)", x->cfg.scope, role);
	return best;
}

/* ---- the cluster name as the first positional argument ------------------------- */

int scope_take(const char *scope, char ***pos, size_t *n_pos, size_t min_pos, size_t max_pos, bool *given, char *err,
               size_t len)
{
	err[0] = '\0';
	*given = false;
	if (*n_pos > 0 && strcmp((*pos)[0], scope) == 0) {
		(*pos)++;
		(*n_pos)--;
		*given = true;
	} else if (*n_pos > max_pos) {
		snprintf(err, len,
		         "cluster '%s' is not this configuration's cluster '%s' (batonctl talks to the one cluster "
		         "its -c FILE names)",
		         (*pos)[0], scope);
		return EXIT_USAGE;
	}
	if (*n_pos > max_pos) {
		snprintf(err, len, "unexpected argument '%s'", (*pos)[max_pos]);
		return EXIT_USAGE;
	}
	if (*n_pos < min_pos) {
		snprintf(err, len, "missing argument");
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

/* ---- YAML ---------------------------------------------------------------------- */

/* A growing string; ok turns false for good when an allocation fails. */
struct ybuf {
	char *s;
	size_t len, cap;
	bool ok;
};

static void yb_add(struct ybuf *b, const char *text, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (b->len + n + 1 > cap)
			cap *= 2;
		grown = realloc(b->s, cap);
		if (!grown) {
			b->ok = false;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, text, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void yb_str(struct ybuf *b, const char *text)
{
	yb_add(b, text, strlen(text));
}

static void yb_indent(struct ybuf *b, int n)
{
	for (int i = 0; i < n; i++)
		yb_add(b, " ", 1);
}

/* Would YAML 1.1 or 1.2 read s, unquoted, as anything but this string?
 * Empty, a null/bool/number look-alike, an indicator at the start, ": " or
 * " #" inside, a leading or trailing space, or any control or non-ASCII
 * character (those are escaped in double quotes instead). */
static bool yaml_needs_quotes(const char *s)
{
	static const char *const words[] = { "null",  "Null",  "NULL",  "~",   "true", "True", "TRUE",
		                             "false", "False", "FALSE", "yes", "Yes",  "YES",  "no",
		                             "No",    "NO",    "on",    "On",  "ON",   "off",  "Off",
		                             "OFF",   "y",     "Y",     "n",   "N",    "<<",   "=" };
	size_t len = strlen(s);
	char *end;

	if (len == 0 || s[0] == ' ' || s[len - 1] == ' ')
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	if (strcasecmp(s + (s[0] == '+' || s[0] == '-'), ".inf") == 0 ||
	    strcasecmp(s + (s[0] == '+' || s[0] == '-'), ".nan") == 0)
		return true;
	if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) || strncmp(s, "...", 3) == 0)
		return true;
	if (strstr(s, ": ") || strstr(s, " #") || s[len - 1] == ':')
		return true;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c >= 0x7f)
			return true;
	/* numbers in any form YAML knows (5, 1e3, 0x1f, 0o7, 1_000, 12:30
	 * sexagesimal) and timestamps (2026-12-03, 2026-12-03T10:00:00Z,
	 * 2026-12-03 10:00:00.5 +01:00); more is quoted than needs it */
	(void)strtod(s, &end);
	if (*end == '\0')
		return true;
	if (strspn(s, "0123456789_:.+- eExXoOabcdefABCDEFTtZz") == len && strpbrk(s, "0123456789"))
		return true;
	return false;
}

/* The next code point of the valid UTF-8 at *p (jansson's strings are). */
static unsigned long utf8_next(const unsigned char **p)
{
	const unsigned char *c = *p;
	unsigned long cp;
	int more;

	if (c[0] < 0x80) {
		*p = c + 1;
		return c[0];
	}
	if ((c[0] & 0xe0) == 0xc0) {
		cp = c[0] & 0x1f;
		more = 1;
	} else if ((c[0] & 0xf0) == 0xe0) {
		cp = c[0] & 0x0f;
		more = 2;
	} else {
		cp = c[0] & 0x07;
		more = 3;
	}
	c++;
	for (int i = 0; i < more && (*c & 0xc0) == 0x80; i++, c++)
		cp = (cp << 6) | (*c & 0x3f);
	*p = c;
	return cp;
}

/* A string scalar: as is when YAML reads it back unchanged, else in double
 * quotes with \", \\, \n, \t, \xNN for the other controls and \uXXXX /
 * \UXXXXXXXX beyond ASCII, so the output is plain ASCII. */
static void yaml_scalar_string(struct ybuf *b, const char *s)
{
	if (!yaml_needs_quotes(s)) {
		yb_str(b, s);
		return;
	}
	yb_add(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c;) {
		char esc[24];

		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			yb_add(b, esc, 2);
			c++;
		} else if (*c == '\n') {
			yb_str(b, "\\n");
			c++;
		} else if (*c == '\t') {
			yb_str(b, "\\t");
			c++;
		} else if (*c < 0x20 || *c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *c);
			yb_str(b, esc);
			c++;
		} else if (*c < 0x80) {
			yb_add(b, (const char *)c, 1);
			c++;
		} else {
			unsigned long cp = utf8_next(&c);

			if (cp > 0xffff)
				snprintf(esc, sizeof(esc), "\\U%08lx", cp);
			else
				snprintf(esc, sizeof(esc), "\\u%04lx", cp);
			yb_str(b, esc);
		}
	}
	yb_add(b, "\"", 1);
}

static void yaml_scalar(struct ybuf *b, const json_t *v)
{
	char num[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		yaml_scalar_string(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		yb_str(b, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		if (!strpbrk(num, ".eE")) /* 2.0 stays a float */
			snprintf(num + strlen(num), sizeof(num) - strlen(num), ".0");
		yb_str(b, num);
		break;
	case JSON_TRUE:
		yb_str(b, "true");
		break;
	case JSON_FALSE:
		yb_str(b, "false");
		break;
	case JSON_OBJECT:
		yb_str(b, "{}"); /* only reached when empty */
		break;
	case JSON_ARRAY:
		yb_str(b, "[]");
		break;
	default:
		yb_str(b, "null");
	}
}

static bool yaml_is_block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) || (json_is_array(v) && json_array_size(v) > 0);
}

/* v at indent; first_inline: the first line's indent is already written
 * (after "- "). */
static void yaml_node(struct ybuf *b, const json_t *v, int indent, bool first_inline)
{
	bool first = true;

	if (json_is_object(v)) {
		const char *key;
		json_t *e;

		json_object_foreach((json_t *)v, key, e) {
			if (!(first && first_inline))
				yb_indent(b, indent);
			first = false;
			yaml_scalar_string(b, key);
			if (yaml_is_block(e)) {
				yb_str(b, ":\n");
				yaml_node(b, e, json_is_array(e) ? indent : indent + 2, false);
			} else {
				yb_str(b, ": ");
				yaml_scalar(b, e);
				yb_str(b, "\n");
			}
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;

		json_array_foreach(v, i, e) {
			if (!(first && first_inline))
				yb_indent(b, indent);
			first = false;
			yb_str(b, "- ");
			if (yaml_is_block(e)) {
				yaml_node(b, e, indent + 2, true);
			} else {
				yaml_scalar(b, e);
				yb_str(b, "\n");
			}
		}
	}
}

char *yaml_dump(const json_t *v)
{
	struct ybuf b = { NULL, 0, 0, true };

	if (yaml_is_block(v)) {
		yaml_node(&b, v, 0, false);
	} else {
		yaml_scalar(&b, v);
		yb_str(&b, "\n");
	}
	if (!b.ok) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

bool print_value(const json_t *v, enum ctl_format fmt, bool pretty)
{
	FILE *out = json_out ? json_out : stdout;
	char *text;

	if (fmt != FMT_YAML)
		return print_json_value(v, pretty);
	text = yaml_dump(v);
	if (!text)
		return false;
	/* Plain ASCII without control characters (yaml_dump escapes them): it
	 * goes past the escaping stream, whose \xNN would change the values. */
	fflush(stdout);
	fputs(text, out);
	fflush(out);
	free(text);
	return true;
}
