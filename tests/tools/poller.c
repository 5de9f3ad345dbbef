/*
 * poller.c - watches every node of a cluster for two writable primaries.
 *
 * Safety rule 1 of baton ("one writer") is checked from outside: every
 * --interval milliseconds (default 50) this tool asks each node
 * `SELECT pg_is_in_recovery()` and prints one line per sample
 *
 *   sample <unix_ms> node1=P node2=R node3=-
 *
 * (P: answered false, a primary; R: answered true, a replica; -: no answer
 * within --timeout). A sample in which more than one node answered P is a
 * split-brain sample. At exit (SIGTERM, SIGINT or after --duration seconds)
 * it prints "samples N" and "split_brain_samples N" and exits 0; the tests
 * assert the latter is 0.
 *
 * All nodes are asked at once: each node has a connection kept open between
 * samples and a small state machine (disconnected -> connecting -> querying
 * -> idle), driven by one poll() over all sockets with a per-sample deadline.
 * Connections use libpq's non-blocking API (PQconnectStart/PQconnectPoll,
 * PQsendQuery); a node that misses the deadline or fails is dropped and
 * connected again on the next sample, so a dead or hung node never delays
 * the others by more than the timeout.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "tests/tools/tool_util.h"

#define MAX_NODES 16
#define MAX_NAME 64

enum node_state { NODE_DOWN, NODE_CONNECTING, NODE_QUERYING, NODE_IDLE };

struct node {
	const char *conninfo;
	char name[MAX_NAME];
	PGconn *conn;
	enum node_state state;
	PostgresPollingStatusType poll_st; /* while connecting */
	bool flushing;                     /* while querying: output not yet sent */
	char answer;                       /* this sample: 'P', 'R' or '-' */
};

static void node_drop(struct node *n)
{
	if (n->conn != NULL)
		PQfinish(n->conn);
	n->conn = NULL;
	n->state = NODE_DOWN;
}

/* Sends the question on an open connection; drops the node on failure. */
static void node_send(struct node *n)
{
	int rc;

	if (!PQsendQuery(n->conn, "SELECT pg_is_in_recovery()")) {
		node_drop(n);
		return;
	}
	rc = PQflush(n->conn);
	if (rc < 0) {
		node_drop(n);
		return;
	}
	n->flushing = rc == 1;
	n->state = NODE_QUERYING;
}

/* Starts this sample's work for one node. */
static void node_begin(struct node *n)
{
	n->answer = '-';
	if (n->state == NODE_IDLE) {
		node_send(n);
		return;
	}
	if (n->state != NODE_DOWN)
		return;
	n->conn = PQconnectStart(n->conninfo);
	if (n->conn == NULL || PQstatus(n->conn) == CONNECTION_BAD) {
		node_drop(n);
		return;
	}
	n->poll_st = PGRES_POLLING_WRITING;
	n->state = NODE_CONNECTING;
}

/* Reads the answer once the connection has input; drops it on any error. */
static void node_read(struct node *n)
{
	PGresult *res;

	if (!PQconsumeInput(n->conn)) {
		node_drop(n);
		return;
	}
	/* n->answer collects the result; it counts only once the whole answer
	 * (up to the final NULL result) arrived before the deadline. */
	while (!PQisBusy(n->conn)) {
		res = PQgetResult(n->conn);
		if (res == NULL) {
			if (n->answer == '-')
				node_drop(n);
			else
				n->state = NODE_IDLE;
			return;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			n->answer = strcmp(PQgetvalue(res, 0, 0), "f") == 0 ? 'P' : 'R';
		PQclear(res);
	}
}

/* Advances a node after poll() said its socket is ready (or may be). */
static void node_step(struct node *n, short revents)
{
	if (n->state == NODE_CONNECTING) {
		n->poll_st = PQconnectPoll(n->conn);
		if (n->poll_st == PGRES_POLLING_FAILED) {
			node_drop(n);
		} else if (n->poll_st == PGRES_POLLING_OK) {
			if (PQsetnonblocking(n->conn, 1) != 0)
				node_drop(n);
			else
				node_send(n);
		}
		return;
	}
	if (n->state != NODE_QUERYING)
		return;
	if (n->flushing && (revents & POLLOUT)) {
		int rc = PQflush(n->conn);

		if (rc < 0) {
			node_drop(n);
			return;
		}
		n->flushing = rc == 1;
	}
	if (revents & (POLLIN | POLLERR | POLLHUP))
		node_read(n);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: poller [--interval MS] [--timeout MS] [--duration S] [--names a,b,..] CONNINFO...\n"
	             "  asks every node SELECT pg_is_in_recovery() every MS ms (default 50), each\n"
	             "  answer bounded by --timeout MS (default 500); prints one \"sample\" line per\n"
	             "  round and, at exit, \"split_brain_samples N\" (rounds with two P answers).\n");
}

/* Splits the comma-separated names into the nodes; missing ones are nodeN. */
static bool set_names(struct node *nodes, size_t n, const char *names)
{
	const char *p = names;

	for (size_t i = 0; i < n; i++) {
		const char *comma;
		size_t len;
		int w;

		if (p == NULL || *p == '\0') {
			w = snprintf(nodes[i].name, sizeof(nodes[i].name), "node%zu", i + 1);
			if (w < 0 || (size_t)w >= sizeof(nodes[i].name))
				return false;
			continue;
		}
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(nodes[i].name))
			return false;
		memcpy(nodes[i].name, p, len);
		nodes[i].name[len] = '\0';
		p = comma ? comma + 1 : NULL;
	}
	return true;
}

int main(int argc, char **argv)
{
	long interval = 50, timeout = 500, duration = 0;
	const char *names = NULL;
	struct node nodes[MAX_NODES];
	size_t n_nodes = 0;
	long long samples = 0, split = 0;
	int64_t end, next;

	memset(nodes, 0, sizeof(nodes));
	for (int i = 1; i < argc; i++) {
		long *target = NULL, min = 1;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--interval") == 0) {
			target = &interval;
		} else if (strcmp(argv[i], "--timeout") == 0) {
			target = &timeout;
		} else if (strcmp(argv[i], "--duration") == 0) {
			target = &duration;
			min = 0;
		} else if (strcmp(argv[i], "--names") == 0 && i + 1 < argc) {
			names = argv[++i];
			continue;
		} else if (argv[i][0] != '-') {
			if (n_nodes == MAX_NODES) {
				fprintf(stderr, "poller: at most %d nodes\n", MAX_NODES);
				return 2;
			}
			nodes[n_nodes].conninfo = argv[i];
			nodes[n_nodes].state = NODE_DOWN;
			n_nodes++;
			continue;
		} else {
			usage(stderr);
			return 2;
		}
		if (i + 1 >= argc || !tool_parse_int(argv[i + 1], min, 86400000, target)) {
			fprintf(stderr, "poller: %s needs a number\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (n_nodes == 0) {
		usage(stderr);
		return 2;
	}
	if (!set_names(nodes, n_nodes, names)) {
		fprintf(stderr, "poller: bad --names\n");
		return 2;
	}

	tool_install_signals();
	setvbuf(stdout, NULL, _IOFBF, 0);

	next = tool_mono_ms();
	end = duration > 0 ? next + duration * 1000 : INT64_MAX;
	while (!tool_stop_requested && tool_mono_ms() < end) {
		int64_t stamp = tool_unix_ms(), deadline = tool_mono_ms() + timeout;
		int primaries = 0;

		for (size_t i = 0; i < n_nodes; i++)
			node_begin(&nodes[i]);

		for (;;) {
			struct pollfd pfds[MAX_NODES];
			size_t idx[MAX_NODES], n_pfds = 0;
			int64_t left = deadline - tool_mono_ms();
			int rc;

			for (size_t i = 0; i < n_nodes; i++) {
				struct node *nd = &nodes[i];
				short ev;

				if (nd->state == NODE_CONNECTING)
					ev = nd->poll_st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
				else if (nd->state == NODE_QUERYING)
					ev = (short)(POLLIN | (nd->flushing ? POLLOUT : 0));
				else
					continue;
				pfds[n_pfds].fd = PQsocket(nd->conn);
				pfds[n_pfds].events = ev;
				pfds[n_pfds].revents = 0;
				idx[n_pfds] = i;
				n_pfds++;
			}
			if (n_pfds == 0 || left <= 0)
				break;
			rc = poll(pfds, n_pfds, left > INT_MAX ? INT_MAX : (int)left);
			if (rc < 0 && errno != EINTR)
				break;
			if (rc <= 0)
				continue;
			for (size_t k = 0; k < n_pfds; k++) {
				if (pfds[k].revents != 0)
					node_step(&nodes[idx[k]], pfds[k].revents);
			}
		}

		printf("sample %lld", (long long)stamp);
		for (size_t i = 0; i < n_nodes; i++) {
			struct node *nd = &nodes[i];

			/* Whatever is still pending missed the deadline. */
			if (nd->state == NODE_CONNECTING || nd->state == NODE_QUERYING) {
				node_drop(nd);
				nd->answer = '-';
			}
			if (nd->answer == 'P')
				primaries++;
			printf(" %s=%c", nd->name, nd->answer);
		}
		printf("\n");
		samples++;
		if (primaries > 1) {
			split++;
			fprintf(stderr, "poller: split brain at %lld: %d nodes answered as primary\n", (long long)stamp,
			        primaries);
		}
		fflush(stdout);

		tool_pace(&next, interval);
	}
	for (size_t i = 0; i < n_nodes; i++)
		node_drop(&nodes[i]);
	printf("samples %lld\nsplit_brain_samples %lld\n", samples, split);
	fflush(stdout);
	return 0;
}
