/*
 * baton.c - the agent daemon's entry point: arguments, refusing root,
 * loading the config, signal handlers, then the loop (loop.c).
 *
 * Exit status: 0 after a clean shutdown, 1 on a fatal condition at run time
 * (etcd unreachable at start-up, data directory of another cluster, ...),
 * 2 on a usage or configuration error.
 *
 * One internal mode: `baton --revoke-lease ID --postmaster PID --since NS
 * --agent PID -c FILE` is what the fence process (fence.h) execs once the agent died
 * while it held the leader key and its postmaster is certainly gone. It
 * revokes that one lease in etcd, logs one line and exits: it touches no
 * Postgres and no key, and never becomes an agent. Its pre-started form,
 * `baton --revoker -c FILE`, is what the fence keeps running while the
 * agent holds the leader key: it opens its etcd connection at once, keeps
 * it warm, and revokes only the lease the fence names on its pipe
 * (FENCE_REVOKER_FD), once it has checked the claim itself.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/fence.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/ops.h"
#include "etcd/etcd.h"
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

/* Seconds the revoke-only mode may take in all: the lease the revoke saves
 * waiting for lasts ttl (at least 2 s) after the agent's last renewal, so
 * beyond a few seconds revoking gains nothing. */
#define REVOKE_BUDGET 4.0

/* The revoke-only mode's arguments (all or none). */
struct revoke_args {
	bool set;
	int64_t lease;
	long long postmaster;
	long long agent;  /* the dead agent's pid (--agent) */
	int64_t since_ns; /* CLOCK_MONOTONIC, when the fence saw the agent die */
};

/* "N" in base 10 or 16 into *out, the whole string, within [lo, hi]. */
static bool parse_ll(const char *s, int base, long long lo, long long hi, long long *out)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, base);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Is pid gone: kill() says ESRCH, or /proc shows a zombie (it runs no code;
 * an init that reaps late leaves the agent or its postmaster so). */
static bool pid_gone(long long pid)
{
	char p[64], buf[512], *rp;
	FILE *f;
	size_t n;

	if (pid <= 1 || pid > INT32_MAX)
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return true;
	snprintf(p, sizeof(p), "/proc/%lld/stat", pid);
	f = fopen(p, "r");
	if (!f)
		return errno == ENOENT;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* An etcd client for the revoker modes: every configured host once (no
 * member discovery: one request, not a member list first), each request
 * bounded so that trying them all, plus authentication where it is on
 * (etcd's bcrypt check alone took over 1 s on a loaded 2-core machine),
 * fits in budget seconds. */
static enum etcd_status revoke_client_new(const struct baton_config *cfg, double budget, struct etcd_client **out,
                                          struct etcd_error *e)
{
	const size_t n = cfg->etcd.n_hosts;
	char **urls = calloc(n ? n : 1, sizeof(char *));
	struct etcd_config ec;
	enum etcd_status st = ETCD_E_NOMEM;
	double per;

	*out = NULL;
	memset(&ec, 0, sizeof(ec));
	snprintf(e->message, sizeof(e->message), "out of memory");
	if (!urls)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(cfg->etcd.protocol) + strlen(cfg->etcd.hosts[i]) + 4;

		urls[i] = malloc(len);
		if (!urls[i])
			goto cleanup;
		snprintf(urls[i], len, "%s://%s", cfg->etcd.protocol, cfg->etcd.hosts[i]);
	}
	per = budget / (double)(n ? n : 1) / (cfg->etcd.username ? 2.0 : 1.0);
	ec.endpoints = (const char *const *)urls;
	ec.n_endpoints = n;
	ec.request_timeout = fmax(0.2, per);
	ec.connect_timeout = fmin(0.5, ec.request_timeout);
	ec.cacert = cfg->etcd.cacert;
	ec.cert = cfg->etcd.cert;
	ec.key = cfg->etcd.key;
	ec.username = cfg->etcd.username;
	ec.password = cfg->etcd.password;
	ec.discover_members = false;
	st = etcd_client_new(&ec, out, e); /* copies what it keeps */
cleanup:
	for (size_t i = 0; urls && i < n; i++)
		free(urls[i]);
	free(urls);
	return st;
}

/* The pid in data_dir/postmaster.pid (its first line), or 0 when there is
 * no such file or it says nothing usable. */
static long long datadir_postmaster(const char *data_dir)
{
	char path[4096], line[32] = "";
	long long pid = 0;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/postmaster.pid", data_dir) >= (int)sizeof(path))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!parse_ll(line, 10, 2, INT32_MAX, &pid))
			pid = 0;
	}
	fclose(f);
	return pid;
}

/* Why the leader key (read on c) says lease must not be revoked by member
 * name, or NULL when it may: the key is gone (the lease may have expired;
 * a revoke is idempotent) or names this member under this very lease. A
 * lease named by mistake, or by a same-user process writing to the
 * revoker's pipe, must never end another member's leadership. why holds
 * the reason (len bytes). */
static const char *revoke_leader_refusal(struct etcd_client *c, const char *key, const char *name, int64_t lease,
                                         char *why, size_t len)
{
	struct etcd_range_result r;
	struct etcd_error e;
	const char *out = NULL;

	memset(&r, 0, sizeof(r));
	if (etcd_get(c, key, &r, &e) != ETCD_OK) {
		snprintf(why, len, "cannot read the leader key %s to check who holds it: %.200s", key, e.message);
		return why;
	}
	if (r.n_kvs == 1 && strcmp(r.kvs[0].value, name) != 0) {
		snprintf(why, len, "the leader key %s names %.100s, not this member %s", key, r.kvs[0].value, name);
		out = why;
	} else if (r.n_kvs == 1 && r.kvs[0].lease != lease) {
		snprintf(why, len, "the leader key %s is held under lease %" PRIx64 ", not %" PRIx64, key,
		         (uint64_t)r.kvs[0].lease, (uint64_t)lease);
		out = why;
	}
	etcd_range_result_free(&r);
	return out;
}

/* One LeaseRevoke of ra's lease on c, once the leader key shows that it is
 * this member's (revoke_leader_refusal), and the one line that says how it
 * went. Returns the exit status: 0 revoked (or already gone), 1 not. */
static int revoke_now(struct etcd_client *c, enum etcd_status st, struct etcd_error *e, const struct revoke_args *ra,
                      const struct baton_config *cfg, const char *by)
{
	int64_t t0 = clk_mono_ns();
	struct dcs_keys keys;
	const char *refused = NULL;
	char why[1024];
	long long running = datadir_postmaster(cfg->postgresql.data_dir);

	/* Whatever pids the request names: the data directory's own postmaster
	 * must be gone too (a live leader's is not). */
	if (running > 0 && !pid_gone(running)) {
		snprintf(why, sizeof(why), "the postmaster of %s (pid %lld, postmaster.pid) still runs",
		         cfg->postgresql.data_dir, running);
		refused = why;
	} else if (st == ETCD_OK && !dcs_keys_init(&keys, cfg->namespace_, cfg->scope)) {
		refused = "the namespace or scope does not make a key";
	} else if (st == ETCD_OK) {
		refused = revoke_leader_refusal(c, keys.leader, cfg->name, ra->lease, why, sizeof(why));
	}
	if (refused) {
		log_warn("the agent died and its postmaster %lld has exited, but leader lease %" PRIx64
		         " is not revoked: %s; a lease of this member's expires by itself within ttl",
		         ra->postmaster, (uint64_t)ra->lease, refused);
		return 1;
	}
	if (st == ETCD_OK)
		st = etcd_lease_revoke(c, ra->lease, e);
	if (st == ETCD_OK) {
		log_info("the agent died and its postmaster %lld has exited: revoked leader lease %" PRIx64
		         " so a replica can take over now (took %.0f ms, the request %.0f ms, by the %s revoker)",
		         ra->postmaster, (uint64_t)ra->lease, (double)(clk_mono_ns() - ra->since_ns) / 1e6,
		         (double)(clk_mono_ns() - t0) / 1e6, by);
		return 0;
	}
	log_error("the agent died and its postmaster %lld has exited, but revoking leader lease %" PRIx64
	          " failed: %s; the lease will expire by itself within ttl",
	          ra->postmaster, (uint64_t)ra->lease, e->message);
	return 1;
}

/*
 * The revoke-only mode (see the file comment and fence.h): one LeaseRevoke
 * of the given lease, trying each configured etcd host once, all within
 * REVOKE_BUDGET. Returns the exit status: 0 revoked (or already gone), 1 not.
 */
static int revoke_mode(const struct baton_config *cfg, const struct revoke_args *ra)
{
	struct etcd_client *c = NULL;
	struct etcd_error e;
	enum etcd_status st;
	int status;

	/* The fence checked both before it exec'd this; anyone else who runs
	 * it by hand is told no unless it holds too. */
	if (!pid_gone(ra->postmaster) || !pid_gone(ra->agent)) {
		log_warn("not revoking leader lease %" PRIx64 ": the %s %lld still runs (this mode is for the fence "
		         "process of a dead agent)",
		         (uint64_t)ra->lease, pid_gone(ra->postmaster) ? "agent" : "postmaster",
		         pid_gone(ra->postmaster) ? ra->agent : ra->postmaster);
		return 1;
	}
	st = revoke_client_new(cfg, REVOKE_BUDGET, &c, &e);
	status = revoke_now(c, st, &e, ra, cfg, "freshly started");

	etcd_client_free(c);
	return status;
}

/* Reads the leader key: opens (or re-opens) the connection, does the TLS
 * handshake and, with auth, obtains (or keeps fresh) the token, so that the
 * revoke later is one request. Says so once per streak of failures. */
static void revoker_warm(struct etcd_client *c, const char *key, bool *failing)
{
	struct etcd_range_result r;
	struct etcd_error e;

	memset(&r, 0, sizeof(r));
	if (etcd_get(c, key, &r, &e) == ETCD_OK) {
		if (*failing)
			log_info("lease revoker: etcd answers again");
		*failing = false;
	} else if (!*failing) {
		log_warn("lease revoker: cannot reach etcd to keep its connection warm: %s (it tries again in %.0f s; "
		         "a revoke would still be tried)",
		         e.message, FENCE_REVOKER_WARM);
		*failing = true;
	}
	etcd_range_result_free(&r);
}

/* "revoke <lease hex> <postmaster> <since ns>" into ra. */
static bool revoker_parse(char *line, struct revoke_args *ra)
{
	char *save = NULL, *w = strtok_r(line, " ", &save), *hex, *pm, *ns;
	long long v;

	if (!w || strcmp(w, "revoke") != 0)
		return false;
	hex = strtok_r(NULL, " ", &save);
	pm = strtok_r(NULL, " ", &save);
	ns = strtok_r(NULL, " ", &save);
	if (!hex || !pm || !ns || strtok_r(NULL, " ", &save))
		return false;
	if (!parse_ll(hex, 16, 1, INT64_MAX, &v))
		return false;
	ra->lease = v;
	if (!parse_ll(pm, 10, 1, INT32_MAX, &v))
		return false;
	ra->postmaster = v;
	if (!parse_ll(ns, 10, 0, INT64_MAX, &v))
		return false;
	ra->since_ns = v;
	ra->set = true;
	return true;
}

/* Checks the line's claim (fence_revoker_refusal) against what this
 * process sees; true when it holds, else a WARN saying why and what next. */
static bool revoker_claim_holds(const struct revoke_args *ra, const struct revoke_args *mine, pid_t fence)
{
	struct fence_revoker_claim cl = {
		.lease = ra->lease,
		.expected_lease = mine->lease,
		.postmaster = ra->postmaster,
		.postmaster_gone = pid_gone(ra->postmaster),
		.agent_gone = pid_gone(mine->postmaster),
		.fence_parent = getppid() == fence,
	};
	const char *why = fence_revoker_refusal(&cl);

	if (!why)
		return true;
	log_warn("lease revoker: refusing a request to revoke lease %" PRIx64 " for postmaster %lld: %s (agent %lld, "
	         "lease %" PRIx64 "); not revoking, it goes on waiting for the fence",
	         (uint64_t)ra->lease, ra->postmaster, why, mine->postmaster, (uint64_t)mine->lease);
	return false;
}

/*
 * The pre-started revoker (fence.h), run by the fence process with a pipe
 * as FENCE_REVOKER_FD and mine = the agent's pid (in .postmaster) and the
 * leader lease it was started for: opens its etcd connection, keeps it
 * warm, and waits for the line the fence writes once the agent died and
 * its postmaster is certainly gone; checks that claim itself
 * (revoker_claim_holds: anyone of this user can write to the pipe), then
 * revokes that lease (bounded by FENCE_REVOKER_BUDGET) and exits. A false
 * claim or a malformed line is logged and ignored. End of file before a
 * good line: exits 0 without a request. Returns the exit status: 0
 * revoked (or nothing asked), 1 not.
 */
static int revoker_mode(const struct baton_config *cfg, const struct revoke_args *mine)
{
	const pid_t fence = getppid();
	struct etcd_client *c = NULL;
	struct etcd_error e;
	enum etcd_status st = revoke_client_new(cfg, FENCE_REVOKER_BUDGET, &c, &e);
	char key[512], line[128];
	size_t len = 0;
	bool failing = false;
	struct revoke_args ra = { .set = false };
	struct dcs_keys keys;
	bool refused = false;
	int status = 0;

	if (dcs_keys_init(&keys, cfg->namespace_, cfg->scope))
		snprintf(key, sizeof(key), "%s", keys.leader);
	else
		snprintf(key, sizeof(key), "%s/%s/leader", cfg->namespace_, cfg->scope);
	if (st == ETCD_OK)
		revoker_warm(c, key, &failing);
	else
		log_warn("lease revoker: %s (an agent crash would revoke through a new process)", e.message);
	if (fcntl(FENCE_REVOKER_FD, F_GETFD) < 0) {
		log_error("lease revoker: no pipe from the fence process on fd %d: %s (an agent crash would revoke "
		          "through a new process)",
		          FENCE_REVOKER_FD, strerror(errno));
		etcd_client_free(c);
		return 1;
	}
	for (;;) {
		struct pollfd p = { .fd = FENCE_REVOKER_FD, .events = POLLIN };
		char *nl;
		int r = poll(&p, 1, (int)(FENCE_REVOKER_WARM * 1000));
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("lease revoker: poll: %s", strerror(errno));
			status = 1;
			break;
		}
		if (r == 0) {
			if (st == ETCD_OK)
				revoker_warm(c, key, &failing);
			continue;
		}
		n = read(FENCE_REVOKER_FD, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The fence said goodbye or is gone: nothing to do, unless
			 * a request came and was refused: the fence that waits for
			 * this exit must not take it for a revoke, and falls back
			 * to a fresh revoker, which checks again. */
			status = refused ? 1 : 0;
			break;
		}
		len += (size_t)n;
		line[len] = '\0';
		/* Each line on its own (a write under PIPE_BUF is atomic, so
		 * another writer's lines do not split the fence's). */
		while ((nl = strchr(line, '\n')) != NULL || len == sizeof(line) - 1) {
			size_t used = nl ? (size_t)(nl - line) + 1 : len;
			bool ok;

			if (nl)
				*nl = '\0';
			ok = nl && revoker_parse(line, &ra);
			if (!ok)
				log_warn("lease revoker: ignoring a malformed request on its pipe: '%.60s'", line);
			refused = true;
			if (ok && revoker_claim_holds(&ra, mine, fence)) {
				status = revoke_now(c, st, &e, &ra, cfg, "pre-started");
				goto done;
			}
			memmove(line, line + used, len - used);
			len -= used;
			line[len] = '\0';
		}
	}
done:
	etcd_client_free(c);
	return status;
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
		/* internal: run by the fence process only (fence.h) */
		{ "revoke-lease", required_argument, NULL, 'R' },
		{ "postmaster", required_argument, NULL, 'P' },
		{ "since", required_argument, NULL, 'S' },
		{ "revoker", no_argument, NULL, 'W' },
		{ "agent", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	struct revoke_args ra = { .set = false };
	int n_revoke = 0;
	bool revoker = false;
	long long agent = 0;
	long long v;
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
		case 'R':
			if (!parse_ll(optarg, 16, 1, INT64_MAX, &v)) {
				fprintf(stderr, "baton: --revoke-lease: expected a lease ID in hex, got '%s'\n",
				        optarg);
				return 2;
			}
			ra.lease = v;
			n_revoke++;
			break;
		case 'P':
			if (!parse_ll(optarg, 10, 1, INT32_MAX, &v)) {
				fprintf(stderr, "baton: --postmaster: expected a PID, got '%s'\n", optarg);
				return 2;
			}
			ra.postmaster = v;
			n_revoke++;
			break;
		case 'S':
			if (!parse_ll(optarg, 10, 0, INT64_MAX, &v)) {
				fprintf(stderr, "baton: --since: expected monotonic nanoseconds, got '%s'\n", optarg);
				return 2;
			}
			ra.since_ns = v;
			n_revoke++;
			break;
		case 'W':
			revoker = true;
			break;
		case 'A':
			if (!parse_ll(optarg, 10, 2, INT32_MAX, &agent)) {
				fprintf(stderr, "baton: --agent: expected a PID, got '%s'\n", optarg);
				return 2;
			}
			break;
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
	if (revoker) {
		/* --revoker --agent PID --revoke-lease HEX -c FILE: the agent's pid
		 * rides in ra.postmaster (revoker_mode) */
		if (n_revoke != 1 || ra.lease <= 0 || agent == 0 || test_only) {
			fprintf(stderr, "baton: --revoker goes with --agent, --revoke-lease and -c only (the fence "
			                "process passes them)\n");
			return 2;
		}
		ra.postmaster = agent;
	} else if (n_revoke != 0 && (n_revoke != 3 || agent == 0)) {
		fprintf(stderr, "baton: --revoke-lease, --postmaster, --since and --agent go together (the fence "
		                "process passes them)\n");
		return 2;
	} else if (agent != 0 && n_revoke == 0) {
		fprintf(stderr, "baton: --agent goes with --revoker or --revoke-lease (the fence process passes "
		                "them)\n");
		return 2;
	} else {
		ra.set = n_revoke == 3;
		ra.agent = agent;
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
	if (ra.set || revoker) {
		/* Nothing else: no config file checks, no handlers, no Postgres. */
		if (log_level_parse(cfg.log_level, &lvl))
			log_set_level(lvl);
		log_set_prefix(cfg.name);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_error("revoking leader lease %" PRIx64
			          ": cannot initialise libcurl; the lease will expire by "
			          "itself within ttl",
			          (uint64_t)ra.lease);
			config_free(&cfg);
			return 1;
		}
		status = revoker ? revoker_mode(&cfg, &ra) : revoke_mode(&cfg, &ra);
		curl_global_cleanup();
		config_free(&cfg);
		return status;
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
	/* The fence revokes the leader lease through this binary if the agent
	 * dies (fence.h); without it, a dead leader's lease just expires. */
	if (!fence_set_revoker(NULL, path, err, sizeof(err)))
		log_warn("%s: after an agent crash the leader lease will expire by itself (no early revoke)", err);
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
