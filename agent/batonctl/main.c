/*
 * main.c - batonctl, the command-line tool for a baton cluster: its options,
 * its command table, its help, and main().
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
 * Every command is one row of the command table below: its name, its
 * options (one getopt table per command, one parser for all), and its
 * function, which lives in the file of its family (members.c: list and
 * topology; history.c; cluster_config.c: show-config and edit-config;
 * pause.c: pause and resume; switchover.c: switchover and failover;
 * node_actions.c: restart, reload, reinit; flush.c; query.c: dsn and query;
 * remove.c). Every function that needs the
 * cluster starts with ctl_open() (common.c), the one place that loads the
 * config, connects to etcd and reads the keys.
 *
 * patronictl's habits: every command with CMD_SCOPE in the habits[] table
 * takes the cluster's name as an optional first argument (scope_resolve
 * checks it against the config's scope and takes it off), and the short
 * options patronictl users type (-f, -e, -W, -w, -s, -p, -r, -m, -c, -U,
 * -d) are listed there per command.
 *
 * Exit status: 0 done, 1 refused or failed (one line on stderr says why),
 * 2 usage or configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/batonctl/common.h"
#include "agent/config.h"
#include "agent/log.h"
#include "agent/parse.h"

/* ---- the arguments of every command ------------------------------------------ */

static const struct command_habits *habits_of(const struct command *cmd);

/* getopt codes of the long options without a short one (above any char) */
enum { OPT_WAIT = 256, OPT_COUNT, OPT_FILE, OPT_DELIMITER, OPT_SB_HOST, OPT_SB_PORT, OPT_SB_SLOT, OPT_TO_CONFIG };

static const char common_help[] = "  -c, --config FILE   the node's configuration file (default: $BATONCTL_CONFIG)\n"
                                  "\n"
                                  "Exit status: 0 done, 1 refused or failed, 2 usage or configuration error.\n";

static void print_command_help(const struct command *cmd)
{
	printf("Usage: batonctl [-c FILE] %s\n\n%s\n%s", cmd->synopsis, cmd->help, common_help);
}

/*
 * Parses argv (argv[0] is the command's name) with the command's option
 * table into a (whose arrays it allocates; free with args_free). Returns -1
 * to go on, or an exit status: EXIT_DONE after --help, EXIT_USAGE on an
 * error (reported).
 */
static int args_parse(const struct command *cmd, int argc, char **argv, struct args *a)
{
	const struct command_habits *h = habits_of(cmd);
	char shortopts[64];
	int c;

	memset(a, 0, sizeof(*a));
	a->wait = WAIT_DEFAULT_S;
	a->interval = 2.0;
	a->set = calloc((size_t)argc, sizeof(*a->set));
	a->pg = calloc((size_t)argc, sizeof(*a->pg));
	if (!a->set || !a->pg) {
		fputs("batonctl: out of memory\n", stderr);
		return EXIT_FAILED;
	}
	snprintf(shortopts, sizeof(shortopts), ":h%s", h->shortopts ? h->shortopts : "");
	optind = 0; /* glibc: start a fresh scan of this argument vector */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, cmd->opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_command_help(cmd);
			return EXIT_DONE;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				a->format = FMT_JSON;
			else if (strcmp(optarg, "table") == 0 || strcmp(optarg, "pretty") == 0)
				a->format = FMT_TABLE;
			else if (strcmp(optarg, "yaml") == 0 && (h->flags & CMD_YAML))
				a->format = FMT_YAML;
			else if (strcmp(optarg, "tsv") == 0 && (h->flags & CMD_TSV))
				a->format = FMT_TSV;
			else
				return usage_error("%s: unknown format '%s' (table or json%s%s)", cmd->name, optarg,
				                   h->flags & CMD_YAML ? ", yaml" : "",
				                   h->flags & CMD_TSV ? ", tsv" : "");
			a->json = a->format == FMT_JSON;
			a->format_given = true;
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
		case 'r':
			if (strcmp(optarg, "leader") != 0 && strcmp(optarg, "primary") != 0 &&
			    strcmp(optarg, "standby-leader") != 0 && strcmp(optarg, "replica") != 0 &&
			    strcmp(optarg, "standby") != 0 && strcmp(optarg, "any") != 0)
				return usage_error(
				        "%s: --role must be leader, primary, standby-leader, replica, standby or "
				        "any, not '%s'",
				        cmd->name, optarg);
			a->role = optarg;
			break;
		case 'm':
			a->member = optarg;
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
		case OPT_WAIT:
			if (!parse_seconds(optarg, &a->wait) || a->wait > 86400)
				return usage_error("%s: --wait needs a number of seconds >= 0, not '%s'", cmd->name,
				                   optarg);
			break;
		case 'e':
			a->extended = true;
			break;
		case 'W':
			a->watch = true;
			break;
		case 'w':
			if (!parse_seconds(optarg, &a->interval) || a->interval < 0.1 || a->interval > 3600)
				return usage_error("%s: --interval needs seconds from 0.1 to 3600, not '%s'", cmd->name,
				                   optarg);
			a->watch = true;
			break;
		case OPT_COUNT: {
			char *end;

			errno = 0;
			a->count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || a->count < 1 || a->count > 1000000)
				return usage_error("%s: --count needs a whole number >= 1, not '%s'", cmd->name,
				                   optarg);
			a->watch = true;
			break;
		}
		case 'c':
			a->sql = optarg;
			break;
		case OPT_FILE:
			a->file = optarg;
			break;
		case 'U':
			a->user = optarg;
			break;
		case 'd':
			a->dbname = optarg;
			break;
		case OPT_DELIMITER:
			a->delimiter = optarg;
			break;
		case OPT_SB_HOST:
			a->standby_host = optarg;
			break;
		case OPT_SB_PORT:
			a->standby_port = optarg;
			break;
		case OPT_SB_SLOT:
			a->standby_slot = optarg;
			break;
		case OPT_TO_CONFIG:
			a->to_config = optarg;
			break;
		case 's':
			a->set[a->n_set++] = optarg;
			break;
		case 'p':
			a->pg[a->n_pg++] = optarg;
			break;
		case 'o':
			a->output = optarg;
			break;
		case ':':
			return usage_error("%s: option '%s' needs a value", cmd->name, argv[optind - 1]);
		default:
			return usage_error("%s: invalid option '%s'", cmd->name, argv[optind - 1]);
		}
	}
	a->pos = argv + optind;
	a->n_pos = (size_t)(argc - optind);
	/* the cluster name may come first: scope_resolve checks it */
	if (!(h->flags & CMD_SCOPE) && a->n_pos < cmd->min_pos)
		return usage_error("%s: missing argument (usage: batonctl %s)", cmd->name, cmd->synopsis);
	if (a->n_pos > cmd->max_pos + ((h->flags & CMD_SCOPE) ? 1 : 0))
		return usage_error("%s: unexpected argument '%s'", cmd->name,
		                   a->pos[cmd->max_pos + ((h->flags & CMD_SCOPE) ? 1 : 0)]);
	return -1;
}

/*
 * The cluster name as the first positional argument (patronictl's habit:
 * `batonctl list main`, `batonctl switchover main --candidate node2`):
 * batonctl talks to the one cluster its config file names, so a name given
 * must be that file's scope (exit 2 otherwise), and is then taken off the
 * arguments. The file is loaded here only for its scope; ctl_open loads it
 * again for the command (a small file, read twice).
 */
static int scope_resolve(const struct command *cmd, const char *config_path, struct args *a)
{
	const struct command_habits *h = habits_of(cmd);
	struct baton_config cfg;
	char err[1024];
	int rc;

	if (!(h->flags & CMD_SCOPE) || a->n_pos == 0) {
		if (a->n_pos < cmd->min_pos)
			return usage_error("%s: missing argument (usage: batonctl %s)", cmd->name, cmd->synopsis);
		return -1;
	}
	if (!config_path || !*config_path)
		return usage_error("no configuration file: use -c FILE or set BATONCTL_CONFIG");
	if (!config_load(config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "batonctl: %s\n", err);
		return EXIT_USAGE;
	}
	rc = scope_take(cfg.scope, &a->pos, &a->n_pos, cmd->min_pos, cmd->max_pos, &a->scope_given, err, sizeof(err));
	config_free(&cfg);
	if (rc != EXIT_DONE)
		return usage_error("%s: %s (usage: batonctl %s)", cmd->name, err, cmd->synopsis);
	return -1;
}

static void args_free(struct args *a)
{
	free(a->set);
	free(a->pg);
}

/* ---- the command table -------------------------------------------------------- */

/* (clang-format would take these braced macro bodies for blocks) */
/* clang-format off */
#define OPT_FORMAT { "format", required_argument, NULL, 'f' }
#define OPT_HELP { "help", no_argument, NULL, 'h' }
#define OPT_END { NULL, 0, NULL, 0 }
#define OPT_WAIT_ROW { "wait", required_argument, NULL, OPT_WAIT }
#define OPT_ROLE { "role", required_argument, NULL, 'r' }
/* clang-format on */

static const struct option opts_show[] = { OPT_FORMAT, OPT_HELP, OPT_END };
static const struct option opts_list[] = {
	OPT_FORMAT,
	{ "extended", no_argument, NULL, 'e' },
	{ "watch", no_argument, NULL, 'W' },
	{ "interval", required_argument, NULL, 'w' },
	{ "count", required_argument, NULL, OPT_COUNT },
	OPT_HELP,
	OPT_END,
};
static const struct option opts_remove[] = { OPT_HELP, OPT_END };
static const struct option opts_promote_cluster[] = { { "force", no_argument, NULL, 'F' }, OPT_HELP, OPT_END };
static const struct option opts_site_switchover[] = {
	{ "to-config", required_argument, NULL, OPT_TO_CONFIG },
	{ "slot", required_argument, NULL, OPT_SB_SLOT },
	{ "force", no_argument, NULL, 'F' },
	OPT_WAIT_ROW,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_demote_cluster[] = {
	{ "host", required_argument, NULL, OPT_SB_HOST },
	{ "port", required_argument, NULL, OPT_SB_PORT },
	{ "slot", required_argument, NULL, OPT_SB_SLOT },
	{ "force", no_argument, NULL, 'F' },
	OPT_WAIT_ROW,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_flush[] = { OPT_ROLE, { "force", no_argument, NULL, 'F' }, OPT_HELP, OPT_END };
static const struct option opts_dsn[] = { OPT_ROLE, { "member", required_argument, NULL, 'm' }, OPT_HELP, OPT_END };
static const struct option opts_query[] = {
	OPT_ROLE,
	{ "member", required_argument, NULL, 'm' },
	{ "command", required_argument, NULL, 'c' },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "username", required_argument, NULL, 'U' },
	{ "dbname", required_argument, NULL, 'd' },
	{ "delimiter", required_argument, NULL, OPT_DELIMITER },
	OPT_FORMAT,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_switchover[] = {
	{ "leader", required_argument, NULL, 'L' },
	{ "candidate", required_argument, NULL, 'C' },
	{ "scheduled", required_argument, NULL, 'S' },
	{ "force", no_argument, NULL, 'F' },
	OPT_WAIT_ROW,
	{ "cancel", no_argument, NULL, 'X' },
	OPT_FORMAT,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_failover[] = {
	{ "candidate", required_argument, NULL, 'C' },
	{ "force", no_argument, NULL, 'F' },
	OPT_WAIT_ROW,
	OPT_FORMAT,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_restart[] = {
	OPT_ROLE,
	{ "pending", no_argument, NULL, 'P' },
	{ "pg-version", required_argument, NULL, 'G' },
	{ "scheduled", required_argument, NULL, 'S' },
	{ "cancel", no_argument, NULL, 'X' },
	OPT_WAIT_ROW,
	{ "force", no_argument, NULL, 'F' },
	OPT_FORMAT,
	OPT_HELP,
	OPT_END,
};
static const struct option opts_reload[] = {
	OPT_ROLE, { "force", no_argument, NULL, 'F' }, OPT_FORMAT, OPT_HELP, OPT_END,
};
static const struct option opts_reinit[] = { { "force", no_argument, NULL, 'F' }, OPT_FORMAT, OPT_HELP, OPT_END };
static const struct option opts_edit[] = {
	{ "set", required_argument, NULL, 's' },
	{ "pg", required_argument, NULL, 'p' },
	{ "force", no_argument, NULL, 'F' },
	OPT_FORMAT,
	OPT_HELP,
	OPT_END,
};

static const struct option opts_import[] = { { "output", required_argument, NULL, 'o' }, OPT_HELP, OPT_END };

static const struct command commands[] = {
	{ "list", cmd_list, opts_list, 0, 0,
	  "list [CLUSTER] [--format table|json|yaml] [-e] [-W] [-w SECONDS] [--count N]",
	  "The members: host, role, state, timeline, lag behind the leader in MB, pending restart, tags.\n"
	  "The leader is marked; maintenance mode and a pending switchover are shown above the table.\n"
	  "  -f, --format FORMAT    table (default), json or yaml\n"
	  "  -e, --extended         also a Scheduled restart column (Pending restart and Tags are always shown)\n"
	  "  -W, --watch            redraw every 2 seconds until Ctrl-C (or --count)\n"
	  "  -w, --interval SECONDS redraw every SECONDS (implies --watch)\n"
	  "      --count N          redraw N times at most, then exit (implies --watch)" },
	{ "topology", cmd_topology, opts_list, 0, 0,
	  "topology [CLUSTER] [--format table|json|yaml] [-e] [-W] [-w SECONDS] [--count N]",
	  "The members as a tree: the leader, then the replicas that stream from it (+ name).\n"
	  "  -f, --format FORMAT    table (default), json or yaml\n"
	  "  -e, --extended         also a Scheduled restart column\n"
	  "  -W, --watch            redraw every 2 seconds until Ctrl-C (or --count)\n"
	  "  -w, --interval SECONDS redraw every SECONDS (implies --watch)\n"
	  "      --count N          redraw N times at most, then exit (implies --watch)" },
	{ "history", cmd_history, opts_show, 0, 0, "history [CLUSTER] [--format table|json|yaml]",
	  "The leader changes: timeline, LSN where it began, reason, time, new leader.\n"
	  "  -f, --format FORMAT    table (default), json or yaml" },
	{ "switchover", cmd_switchover, opts_switchover, 0, 0,
	  "switchover [CLUSTER] [--leader NAME] [--candidate NAME] [--scheduled TIME] [--force] [--wait SECONDS] "
	  "[--cancel]",
	  "Hands the leadership over, planned: the leader checkpoints, stops, waits until the candidate\n"
	  "has its last WAL, and releases the key to it.\n"
	  "  --leader NAME      refuse unless NAME is the leader\n"
	  "  --candidate NAME   the new leader (default: the best healthy replica)\n"
	  "  --scheduled TIME   ISO 8601 with a zone (2026-11-25T20:00:00Z), or 'now'\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal), and\n"
	  "                     skip the health checks of the candidate\n"
	  "  --wait SECONDS     wait this long for the new leader (default 60; 0 = do not wait)\n"
	  "  --cancel           withdraw a pending (e.g. scheduled) switchover (as flush switchover)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "failover", cmd_failover, opts_failover, 0, 0,
	  "failover [CLUSTER] --candidate NAME [--force] [--wait SECONDS]",
	  "Makes NAME the leader, also when the leader is gone (a manual failover).\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal), and\n"
	  "                     skip the health checks of the candidate\n"
	  "  --wait SECONDS     wait this long for the new leader (default 60; 0 = do not wait)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "restart", cmd_restart, opts_restart, 0, HA_MAX_MEMBERS,
	  "restart [CLUSTER] [MEMBER...] [--role ROLE] [--pending] [--pg-version VERSION] [--scheduled TIME] "
	  "[--cancel] [--wait SECONDS] [--force]",
	  "Restarts Postgres on the members named, through their REST API, one at a time: the replicas\n"
	  "first, each back to streaming before the next, then the primary in place (it keeps the leader\n"
	  "key). Without members: every member (a rolling restart). Prints per member what happened;\n"
	  "stops at the first member that fails or is not back in time.\n"
	  "  --role ROLE        only the leader (leader, primary), or only the replicas (replica, standby)\n"
	  "  --pending          only where a changed parameter waits for a restart (judged by each agent\n"
	  "                     on the configuration as it is now, also right after edit-config)\n"
	  "  --pg-version VER   only where the running Postgres is older than VER (e.g. 15.4)\n"
	  "  --scheduled TIME   restart at TIME (ISO 8601 with a zone) instead; batonctl list shows it\n"
	  "  --cancel           withdraw the scheduled restarts (of the members named, or all; as flush restart)\n"
	  "  --wait SECONDS     wait this long per member (default 60, at most 60; 0 = ask all, wait for none),\n"
	  "                     and as long at the end until every member restarted runs again, the\n"
	  "                     replicas streaming\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "reload", cmd_reload, opts_reload, 0, HA_MAX_MEMBERS, "reload [CLUSTER] [MEMBER...] [--role ROLE] [--force]",
	  "Makes the members named (default: all) do what SIGHUP does: the agent re-reads its own\n"
	  "configuration file (tags, log level, Postgres parameters, pg_hba, ...; see baton(8)) and\n"
	  "Postgres reloads its configuration, through their REST API.\n"
	  "  --role ROLE        only the leader (leader, primary), or only the replicas (replica, standby)\n"
	  "  --force            do not ask for confirmation (never asked when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "reinit", cmd_reinit, opts_reinit, 1, 1, "reinit [CLUSTER] MEMBER [--force]",
	  "Wipes MEMBER's data directory and clones it again from the leader (replicas only).\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "pause", cmd_pause, opts_show, 0, 0, "pause [CLUSTER] [--format table|json]",
	  "Maintenance mode: the agents keep their keys alive but touch no Postgres and never fail over.\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "resume", cmd_resume, opts_show, 0, 0, "resume [CLUSTER] [--format table|json]",
	  "Ends maintenance mode.\n"
	  "  --format FORMAT    table (default) or json, for what is printed" },
	{ "show-config", cmd_show_config, opts_show, 0, 0, "show-config [CLUSTER] [--format table|json|yaml]",
	  "The cluster-wide configuration (the config key in etcd, not this node's file):\n"
	  "`key: value` lines, or JSON, or YAML (nested, as Patroni prints it).\n"
	  "  -f, --format FORMAT    table (default), json or yaml" },
	{ "edit-config", cmd_edit_config, opts_edit, 0, 0,
	  "edit-config [CLUSTER] [-s key=value ...] [-p name=value ...] [--force] [--format table|json]",
	  "Changes the cluster-wide configuration, validated before it is written.\n"
	  "  -s, --set key=value    ttl, loop_wait, retry_timeout, maximum_lag_on_failover, pause,\n"
	  "                         failsafe_mode, synchronous_mode, synchronous_mode_strict,\n"
	  "                         synchronous_node_count, synchronous_quorum, slots; Patroni's dotted\n"
	  "                         names too: postgresql.parameters.NAME=VALUE is --pg NAME=VALUE\n"
	  "                         slots: the permanent physical slots, names separated by commas, no\n"
	  "                         spaces (--set slots=site_b,site_c); --set slots= removes them all\n"
	  "  -p, --pg name=value    a Postgres parameter (name= removes it)\n"
	  "  --force                do not ask for confirmation (needed when stdin is not a terminal)\n"
	  "  --format FORMAT        table (default) or json, for the new configuration printed\n"
	  "Without --set/--pg, on a terminal: opens the configuration in $EDITOR (default vi)." },
	{ "promote-cluster", cmd_promote_cluster, opts_promote_cluster, 0, 0, "promote-cluster [CLUSTER] [--force]",
	  "Turns a standby cluster into a primary one: removes standby_cluster from the cluster-wide\n"
	  "configuration; the standby leader promotes (a new timeline) and its replicas keep following it.\n"
	  "In a site switchover, run it only once this site has replayed the other site's last WAL (see\n"
	  "README, \"Standby cluster and site switchover\").\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)" },
	{ "demote-cluster", cmd_demote_cluster, opts_demote_cluster, 0, 0,
	  "demote-cluster [CLUSTER] --host HOST [--port PORT] [--slot SLOT] [--wait SECONDS] [--force]",
	  "Turns this cluster into a standby cluster of the Postgres at HOST:PORT (the other site's\n"
	  "primary or standby leader): sets standby_cluster in the cluster-wide configuration; the primary\n"
	  "stops (fast, its replicas receive its last WAL) and starts again as the standby leader,\n"
	  "replicating from HOST:PORT (rewound first if its timeline diverged). Nothing is promoted.\n"
	  "Refused, nothing changed, when a member would not follow HOST:PORT (no Postgres TLS and its\n"
	  "node file does not list it in postgresql.standby_cluster_remotes): the line to add is printed.\n"
	  "  --host HOST        host name or address of the other site's Postgres (required)\n"
	  "  --port PORT        its port (default 5432)\n"
	  "  --slot SLOT        the replication slot on it to stream through (default: none)\n"
	  "  --wait SECONDS     wait this long for the leader to run as the standby leader (default 60;\n"
	  "                     0 = do not wait; a standby cluster re-pointed is not waited for)\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)" },
	{ "site-switchover", cmd_site_switchover, opts_site_switchover, 0, 0,
	  "site-switchover [CLUSTER] --to-config FILE [--slot SLOT] [--wait SECONDS] [--force]",
	  "A planned site switchover with no acknowledged write lost: this cluster (-c, the primary site)\n"
	  "becomes a standby cluster of the cluster FILE names (a standby cluster of this one, on another\n"
	  "site), and that one becomes the primary site. Steps: demote-cluster here, pointing at the other\n"
	  "site's standby leader; wait until this site's leader runs as a replica, its position steady\n"
	  "for more than a loop, and the other site's standby leader has received all of its WAL;\n"
	  "then promote-cluster there. Stops before the promotion when a step does not finish in time or\n"
	  "this site's leader changes: nothing is promoted then (finish by hand, see the README).\n"
	  "Refused, nothing changed, when the two clusters have the same scope name, when FILE's cluster\n"
	  "is not a standby cluster, or when a member of this cluster would not follow the other site's\n"
	  "standby leader (no Postgres TLS, not in postgresql.standby_cluster_remotes of its node file).\n"
	  "While it waits, a line says what each node still waits for.\n"
	  "  --to-config FILE   a node configuration file of the other site's cluster (required)\n"
	  "  --slot SLOT        the slot on the other site's standby leader this site streams through\n"
	  "                     afterwards (standby_cluster.primary_slot_name; without it, a warning names\n"
	  "                     this site's permanent slots, which keep WAL once the direction flips)\n"
	  "  --wait SECONDS     the bound of each wait (default 60)\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)" },
	{ "import-patroni", cmd_import_patroni, opts_import, 1, 1, "import-patroni PATRONI.yml [-o|--output FILE]",
	  "Writes the baton configuration equivalent to a Patroni node's YAML file (to FILE, mode 0600,\n"
	  "or stdout), checked as the agent loads it, and lists on stderr every key it could not carry\n"
	  "and why. Exit 0 when written, also with keys not carried; 2 when the YAML is invalid.\n"
	  "  -o, --output FILE  write FILE (replaced atomically) instead of stdout" },
	{ "flush", cmd_flush, opts_flush, 1, HA_MAX_MEMBERS + 1,
	  "flush [CLUSTER] [MEMBER...] restart|switchover [--role ROLE] [--force]",
	  "Cancels what is scheduled: `restart` withdraws the scheduled restarts of the members named\n"
	  "(default: every member that keeps one), each through the member's REST API (DELETE /restart);\n"
	  "`switchover` withdraws the pending switchover (DELETE /switchover on the leader's REST API,\n"
	  "or the key itself when no leader answers).\n"
	  "  --role ROLE        restart: only the leader (leader, primary) or the replicas (replica, standby)\n"
	  "  --force            do not ask for confirmation (needed when stdin is not a terminal)" },
	{ "dsn", cmd_dsn, opts_dsn, 0, 0, "dsn [CLUSTER] [--role ROLE] [--member NAME]",
	  "Prints a libpq connection string (host and port, never a password) of one member: the\n"
	  "leader by default.\n"
	  "  -r, --role ROLE        leader (default), primary, standby-leader, replica, standby or any\n"
	  "  -m, --member NAME      that member" },
	{ "query", cmd_query, opts_query, 0, 0,
	  "query [CLUSTER] [--role ROLE] [--member NAME] (-c SQL | --file FILE) [-U USER] [-d DBNAME] "
	  "[--format tsv|table|json|yaml] [--delimiter D]",
	  "Runs SQL on one member (the leader by default) with libpq and prints the rows, their column\n"
	  "names first. The password comes from libpq's own sources (PGPASSWORD, ~/.pgpass, PGPASSFILE);\n"
	  "only when they have none and -U names the superuser of postgresql.authentication is the\n"
	  "superuser password of the configuration file used, and batonctl says so on stderr. With\n"
	  "postgresql.tls.cafile set, the server is verified against it (sslmode=verify-full).\n"
	  "  -r, --role ROLE        leader (default), primary, standby-leader, replica, standby or any\n"
	  "  -m, --member NAME      that member\n"
	  "  -c, --command SQL      the SQL to run (a -c before the command is the config file)\n"
	  "      --file FILE        the SQL to run, read from FILE (- = stdin)\n"
	  "  -U, --username USER    the role to connect as (default: libpq's, PGUSER or the OS user)\n"
	  "  -d, --dbname DBNAME    the database (default postgres)\n"
	  "  -f, --format FORMAT    tsv (default), table, json or yaml\n"
	  "      --delimiter D      tsv: the column separator (default a tab)" },
	{ "remove", cmd_remove, opts_remove, 0, 0, "remove CLUSTER",
	  "Deletes every key of the cluster in etcd (its leader, members, config, history, initialize...):\n"
	  "the cluster is gone for baton, its data directories stay. Asks on stdin, terminal or not, for\n"
	  "the cluster name, then the phrase \"Yes I am aware\", then (when it has a leader) the leader's\n"
	  "name, and deletes nothing unless all three are typed exactly; there is no --force.\n"
	  "Refused while a member key exists (an agent is running, or died less than a TTL ago): stop\n"
	  "every agent first (patronictl only warns): a running agent would find its cluster gone and\n"
	  "could bootstrap a new one over it." },
};

/* Short options and flags per command (struct command_habits). */
static const struct command_habits habits[] = {
	{ "list", "f:eWw:", CMD_SCOPE | CMD_YAML },
	{ "topology", "f:eWw:", CMD_SCOPE | CMD_YAML },
	{ "history", "f:", CMD_SCOPE | CMD_YAML },
	{ "switchover", NULL, CMD_SCOPE },
	{ "failover", NULL, CMD_SCOPE },
	{ "restart", NULL, CMD_SCOPE },
	{ "reload", NULL, CMD_SCOPE },
	{ "reinit", NULL, CMD_SCOPE },
	{ "pause", NULL, CMD_SCOPE },
	{ "resume", NULL, CMD_SCOPE },
	{ "show-config", "f:", CMD_SCOPE | CMD_YAML },
	{ "edit-config", "s:p:", CMD_SCOPE },
	{ "flush", "r:", CMD_SCOPE },
	{ "dsn", "r:m:", CMD_SCOPE },
	{ "query", "r:m:c:U:d:f:", CMD_SCOPE | CMD_YAML | CMD_TSV },
	{ "remove", NULL, CMD_SCOPE },
	{ "promote-cluster", NULL, CMD_SCOPE },
	{ "demote-cluster", NULL, CMD_SCOPE },
	{ "site-switchover", NULL, CMD_SCOPE },
	{ "import-patroni", "o:", 0 },
};

static const struct command_habits *habits_of(const struct command *cmd)
{
	static const struct command_habits none = { NULL, NULL, 0 };

	for (size_t i = 0; i < sizeof(habits) / sizeof(habits[0]); i++)
		if (strcmp(habits[i].name, cmd->name) == 0)
			return &habits[i];
	return &none;
}

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
	if (rc < 0)
		rc = scope_resolve(cmd, config_path, &a);
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
