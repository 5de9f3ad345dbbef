/*
 * common.h - what the files of batonctl share: the parsed arguments, the
 * command table's row, the connection to the cluster (struct ctl), tables,
 * and the helpers every command uses to report, confirm and reach members.
 *
 * batonctl is one program split into one file per command (or small family
 * of commands): main.c parses the options and dispatches through the
 * command table, common.c holds what more than one command needs, and
 * members.c, history.c, cluster_config.c, pause.c, switchover.c,
 * node_actions.c, flush.c, query.c and remove.c hold the commands. Nothing here is part of libagent: this
 * header is for batonctl's files only.
 *
 * Error convention: a command returns its exit status (EXIT_*); helpers that
 * report return the status to pass on (failed(), usage_error(), ctl_open()),
 * or bool with the reason already printed on stderr, as their comment says.
 */
#ifndef BATON_BATONCTL_COMMON_H
#define BATON_BATONCTL_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/ha.h"
#include "etcd/etcd.h"

#define EXIT_DONE 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define API_TIMEOUT_S 5.0
#define WAIT_DEFAULT_S 60.0
#define POLL_MS 100

/* ---- the arguments of every command ------------------------------------------ */

/* --format: table (default), json, yaml (list, topology, history,
 * show-config, query), tsv (query) */
enum ctl_format { FMT_TABLE, FMT_JSON, FMT_YAML, FMT_TSV };

struct args {
	bool json; /* format == FMT_JSON */
	enum ctl_format format;
	bool format_given;
	const char *leader, *candidate, *scheduled, *role, *pg_version;
	bool force, pending, cancel;
	double wait;
	bool extended, watch;                               /* list/topology -e, -W */
	double interval;                                    /* -w/--interval seconds between redraws (default 2) */
	long count;                                         /* --count: redraws at most (0 = until Ctrl-C) */
	const char *member;                                 /* dsn, query: --member */
	const char *sql, *file, *user, *dbname, *delimiter; /* query */
	bool scope_given;                                   /* the cluster name came as the first positional argument */
	const char **set, **pg;                             /* --set, --pg values (argv strings) */
	const char *output;                                 /* import-patroni --output */
	const char *standby_host, *standby_port, *standby_slot; /* demote-cluster --host, --port, --slot */
	const char *to_config;                                  /* site-switchover --to-config */
	size_t n_set, n_pg;
	char **pos; /* positional arguments */
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

/* What a command takes beyond its row (main.c's habits[] table, by name,
 * so that rows keep their shape): getopt's short options and CMD_* flags.
 * A command without an entry takes no short option and none of these. */
struct command_habits {
	const char *name;
	const char *shortopts;
	unsigned flags;
};
#define CMD_SCOPE 1u /* takes the cluster name (scope) as an optional first positional argument */
#define CMD_YAML 2u  /* --format yaml */
#define CMD_TSV 4u   /* --format tsv */

/*
 * The cluster name as patronictl takes it: when the first of the n_pos
 * positional arguments (*pos) equals scope it is taken off (*pos, *n_pos
 * move past it, *given set). What is left must number at most max_pos
 * (the command's own arguments, e.g. member names); more, or with max_pos 0
 * any argument left, means the first was meant as a cluster name that is
 * not this configuration's. EXIT_DONE, or EXIT_USAGE with the reason in err.
 * Pure: no I/O.
 */
int scope_take(const char *scope, char ***pos, size_t *n_pos, size_t min_pos, size_t max_pos, bool *given, char *err,
               size_t len) __attribute__((warn_unused_result));

/* ---- YAML ---------------------------------------------------------------------- */

/* v as a YAML document (block style, two-space indent, strings quoted where
 * YAML would read them as something else, control and non-ASCII characters
 * escaped in double quotes), ending in a newline; malloc'd, NULL when out
 * of memory. Pure. */
char *yaml_dump(const json_t *v) __attribute__((warn_unused_result));
/* Prints v on stdout as JSON (pretty or compact) or YAML, as fmt says;
 * false when out of memory. */
bool print_value(const json_t *v, enum ctl_format fmt, bool pretty) __attribute__((warn_unused_result));

/* ---- config, etcd and the cluster: one helper for every command --------------- */

struct ctl {
	struct baton_config cfg;
	bool have_cfg;
	char **endpoints;
	char where[1024]; /* the endpoints, for messages */
	struct etcd_client *client;
	struct dcs_keys keys;
	struct etcd_range_result res; /* the last read */
	struct ha_cluster_view *view; /* parsed from it */
};

/* Loads the config file, connects to etcd and (when read) reads the
 * cluster. EXIT_DONE, or the exit status (reported); ctl_close either way. */
int ctl_open(struct ctl *x, const char *config_path, bool read) __attribute__((warn_unused_result));
/* Reads every key of the cluster into x->res and x->view again. Warnings (a
 * member record unreadable...) go to stderr unless quiet. EXIT_DONE or the
 * exit status (reported). */
int ctl_read(struct ctl *x, bool quiet) __attribute__((warn_unused_result));
/* Frees what ctl_open made; safe on a zeroed or half-opened ctl. */
void ctl_close(struct ctl *x);
/* The key of the last read (NULL when absent); points into x->res. */
const struct etcd_kv *ctl_kv(const struct ctl *x, const char *key);
/* The member's own record (raw JSON of its key; NULL when absent or not an
 * object). New reference. */
json_t *member_record(const struct ctl *x, const char *name);
bool is_leader(const struct ha_cluster_view *v, const char *name);

/* ---- reporting and confirming ------------------------------------------------- */

/* "batonctl: ..." and the hint to --help on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line on stderr, "batonctl: ..." (newlines in the message flattened),
 * and EXIT_FAILED. */
int failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The real stdout, under the escaping stream main() puts in its place (NULL:
 * stdout itself); only print_json_value writes to it. */
extern FILE *json_out;
/* Prints a JSON value on stdout (pretty or compact); false when out of
 * memory. */
bool print_json_value(const json_t *v, bool pretty) __attribute__((warn_unused_result));
/* "y" or "yes" on the terminal to question (with " [y/N] " added). */
bool confirm(const char *question) __attribute__((warn_unused_result));
/* The confirmation of a change an operator could regret (see common.c);
 * false + reported when not confirmed. */
bool confirmed(const struct args *a, const char *command, const char *what) __attribute__((warn_unused_result));
void sleep_ms(long ms);
/* ISO 8601 with a zone, or "now" (0). */
bool parse_when(const char *s, time_t *out) __attribute__((warn_unused_result));
/* ---- tables ------------------------------------------------------------------ */

#define TABLE_MAX_COLS 10
#define TABLE_CELL 192

typedef char table_row[TABLE_MAX_COLS][TABLE_CELL];

struct table {
	size_t n_cols;
	const char *const *heads;
	unsigned right; /* bit c: column c is right-aligned (numbers) */
	table_row *rows;
	size_t n_rows;
};

/* Prints t with its cells escaped (they come from etcd) and its columns as
 * wide as their widest cell. Escapes the cells in place. */
void table_print(const struct table *t);

/* ---- members and their REST API ------------------------------------------------ */

/* Does member m play role (leader, primary, standby-leader, replica,
 * standby, any; NULL = any) in view v? */
bool role_matches(const struct ha_cluster_view *v, const struct ha_member *m, const char *role);
/* The one member dsn and query talk to: --member NAME (which must also
 * play --role when given), else the first member (by name) that plays
 * --role (default leader). NULL + reported when none. */
const struct ha_member *pick_member(const struct ctl *x, const struct args *a);
/* The members named (all when none), filtered by --role; false + reported
 * on an unknown name. out has room for HA_MAX_MEMBERS. */
bool select_members(const struct ctl *x, const struct args *a, const struct ha_member **out, size_t *n)
        __attribute__((warn_unused_result));
/* "node1, node2" of the members selected (n of them). */
void name_list(const struct ha_member *const *sel, size_t n, char *buf, size_t len);
/* Sends method (POST, DELETE) with body to <m->api_url><path> through
 * peer.c, waiting at most timeout_s; true on a 2xx answer. The reason goes
 * into why (escaped). */
bool post_member(const struct ctl *x, const struct ha_member *m, const char *method, const char *path, const char *body,
                 double timeout_s, char *why, size_t len) __attribute__((warn_unused_result));
/* "HTTP 200: message" (post_member's reason) -> code and message. */
long answer_code(const char *why, const char **msg);

/* ---- the commands (one row each in main.c's table) ----------------------------- */

int cmd_list(const char *config_path, const struct args *a);
int cmd_topology(const char *config_path, const struct args *a);
int cmd_history(const char *config_path, const struct args *a);
int cmd_show_config(const char *config_path, const struct args *a);
int cmd_edit_config(const char *config_path, const struct args *a);
int cmd_promote_cluster(const char *config_path, const struct args *a);
int cmd_demote_cluster(const char *config_path, const struct args *a);
int cmd_site_switchover(const char *config_path, const struct args *a);
int cmd_pause(const char *config_path, const struct args *a);
int cmd_resume(const char *config_path, const struct args *a);
int cmd_switchover(const char *config_path, const struct args *a);
int cmd_failover(const char *config_path, const struct args *a);
int cmd_restart(const char *config_path, const struct args *a);
int cmd_reload(const char *config_path, const struct args *a);
int cmd_reinit(const char *config_path, const struct args *a);
int cmd_import_patroni(const char *config_path, const struct args *a);
int cmd_remove(const char *config_path, const struct args *a);
int cmd_flush(const char *config_path, const struct args *a);
int cmd_dsn(const char *config_path, const struct args *a);
int cmd_query(const char *config_path, const struct args *a);

/* edit-config: "postgresql.parameters.NAME=VALUE" -> "NAME=VALUE" (what
 * --pg takes); NULL for any other assignment. Pure. */
const char *edit_set_pg_param(const char *assignment);

/* site-switchover: do two node files name the same cluster? Only when
 * both scope and namespace match and their etcd endpoints share a
 * host:port (two sites may use one scope, each with its own etcd). Pure. */
bool site_same_cluster(const struct baton_config *x, const struct baton_config *y);

/* site-switchover, demote-cluster and list: what a member's record (the
 * raw JSON of its member key, member_record) says of HOST:PORT as a
 * standby_cluster remote. Its agent publishes "standby_trust": {"tls",
 * "remotes"} (loop_publish.c): trusted when Postgres TLS proves any
 * remote, or when HOST:PORT is one of the remotes its file names (the
 * agent's own rule, ha_standby_remote_proven). UNKNOWN: no such field (an
 * older agent, a Patroni record). Pure. */
enum site_trust { SITE_TRUST_UNKNOWN, SITE_TRUSTED, SITE_UNTRUSTED };
enum site_trust site_member_trust(const json_t *rec, const char *host, int port);
/* "host:port", "[v6]:port" for an IPv6 address. */
void site_hostport(const char *host, int port, char *buf, size_t len);

/* restart --cancel and flush restart: DELETE /restart on the members sel[]
 * that keep a scheduled restart (every one of them when named is true). */
int restart_cancel(struct ctl *x, bool named, const struct ha_member *const *sel, size_t n);

/* ---- remove: the typed confirmations (remove.c) ---------------------------------- */

#define REMOVE_PHRASE "Yes I am aware"

/* The answers remove asks for, in order: the cluster name, the phrase, and
 * (when the cluster has a leader) the leader's name. */
enum remove_step { REMOVE_ASK_CLUSTER, REMOVE_ASK_PHRASE, REMOVE_ASK_LEADER, REMOVE_CONFIRMED };
/* The step after answer (its trailing newline ignored) was given at step;
 * -1 when the answer is wrong (nothing may be deleted). leader: the
 * leader's name, NULL or "" when there is none. Pure. */
int remove_next(enum remove_step step, const char *answer, const char *scope, const char *leader);

#endif
