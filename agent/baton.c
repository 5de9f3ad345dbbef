/*
 * baton.c - the agent daemon's entry point: arguments, refusing root,
 * loading the config, signal handlers, then the loop (loop.c).
 *
 * Exit status: 0 after a clean shutdown, 1 on a fatal condition at run time
 * (etcd unreachable at start-up, data directory of another cluster, ...),
 * 2 on a usage or configuration error.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/ops.h"
#include "pg/pg_err.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: baton -c FILE\n"
	             "\n"
	             "Runs the baton high-availability agent for one PostgreSQL node, configured by\n"
	             "FILE (libconfig). It runs in the foreground and logs to standard error.\n"
	             "\n"
	             "Options:\n"
	             "  -c, --config FILE   the node's configuration file (required)\n"
	             "  -t, --test-config   check the configuration file and exit\n"
	             "  -V, --version       print the version and exit\n"
	             "  -h, --help          print this help and exit\n"
	             "\n"
	             "Signals: SIGTERM/SIGINT hand over leadership and stop Postgres.\n");
}

static void on_term(int sig)
{
	(void)sig;
	loop_request_shutdown();
}

static void on_hup(int sig)
{
	(void)sig;
	loop_request_reload();
}

static void on_chld(int sig)
{
	(void)sig;
	loop_wake_from_signal();
}

/* The pg library's log lines go through ours. */
static void pg_hook(enum pg_log_level level, const char *msg)
{
	switch (level) {
	case PG_LOG_DEBUG:
		log_debug("%s", msg);
		break;
	case PG_LOG_INFO:
		log_info("%s", msg);
		break;
	case PG_LOG_WARNING:
		log_warn("%s", msg);
		break;
	case PG_LOG_ERROR:
		log_error("%s", msg);
		break;
	}
}

/* libpq reads these from the environment, and Postgres's children (the WAL
 * receiver, pg_basebackup, pg_rewind) inherit them: a PGPASSWORD left in an
 * operator's shell would override the passfile the agent writes. The
 * agent's connections are fully described by its config, so drop them. */
static void scrub_libpq_environment(void)
{
	static const char *const vars[] = {
		"PGPASSWORD",        "PGPASSFILE", "PGUSER",        "PGHOST",    "PGHOSTADDR", "PGPORT",
		"PGDATABASE",        "PGSERVICE",  "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME",  "PGTARGETSESSIONATTRS",
		"PGCONNECT_TIMEOUT", "PGDATA",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *name = vars[i];

		if (name && getenv(name)) {
			log_info("ignoring %s from the environment", name);
			unsetenv(name);
		}
	}
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool test_only = false;
	struct baton_config cfg;
	char err[1024];
	enum log_level lvl;
	int c, status;

	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			printf("baton %s\n", BATON_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "baton: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!path) {
		fprintf(stderr, "baton: no configuration file given (-c FILE)\n");
		usage(stderr);
		return 2;
	}
	if (geteuid() == 0) {
		fprintf(stderr, "baton: refusing to run as root: Postgres cannot run as root; run baton as the "
		                "operating-system user that owns the data directory (e.g. postgres)\n");
		return 2;
	}
	if (!config_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		return 2;
	}
	if (!config_check_files(&cfg, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (test_only) {
		if (config_file_exposed(&cfg, err, sizeof(err)))
			fprintf(stderr, "baton: warning: %s\n", err);
		printf("%s: configuration is valid\n", path);
		config_free(&cfg);
		return 0;
	}
	if (log_level_parse(cfg.log_level, &lvl))
		log_set_level(lvl);
	log_set_prefix(cfg.name);
	pg_set_log_hook(pg_hook);
	scrub_libpq_environment();
	install_handlers();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		config_free(&cfg);
		return 1;
	}
	log_info("baton %s starting: member %s of cluster %s, config %s", BATON_VERSION, cfg.name, cfg.scope, path);
	if (config_file_exposed(&cfg, err, sizeof(err)))
		log_warn("%s", err);
	/* The REST API's PATCH /config may set what this file allows, no more. */
	if (!ops_set_allow_from_dcs(cfg.postgresql.allow_from_dcs, cfg.postgresql.n_allow_from_dcs)) {
		log_error("out of memory");
		curl_global_cleanup();
		config_free(&cfg);
		return 1;
	}
	status = loop_run(&cfg);
	curl_global_cleanup();
	config_free(&cfg);
	return status;
}
