/*
 * etcd_proc.h - starts and stops a real single-member etcd for tests.
 *
 * The server listens on free loopback ports, keeps its data in a directory
 * the caller names, gives auth tokens a 1 s TTL (so a test that enables
 * auth sees them expire), and is started with PR_SET_PDEATHSIG(SIGKILL) so it
 * cannot outlive the test process that forked it, whatever happens to that
 * process (a failed assertion, Check's timeout kill, a crash).
 */
#ifndef BATON_TESTS_ETCD_PROC_H
#define BATON_TESTS_ETCD_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct etcd_proc {
	pid_t pid; /* 0 when not running */
	int client_port, peer_port;
	char data_dir[512];
	char log_path[512];
	char url[64]; /* http://127.0.0.1:client_port (https with tls_dir) */
	/* Optional, set before starting. name: the member's name ("default"
	 * when empty); initial_cluster: etcd's --initial-cluster (this member
	 * alone when empty). */
	char name[32];
	char initial_cluster[512];
	/* A directory made by etcd_proc_make_certs: the member then serves
	 * https with server.pem, requires client certificates signed by ca.pem,
	 * and the helpers here present client.pem themselves. */
	char tls_dir[512];
};

/* Writes a test CA (ca.pem, ca-key.pem), a server certificate for
 * 127.0.0.1/localhost (server.pem, server-key.pem), a client certificate
 * (client.pem, client-key.pem, without a CN: etcd's
 * gateway refuses a client certificate with one once auth is on) and a second, unrelated CA
 * (other-ca.pem) into dir with openssl (its output in dir/openssl.log).
 * false on failure. */
bool etcd_proc_make_certs(const char *dir);

/* Starts n members (n <= 7) as one cluster, member i with its data under
 * dir/m<i>, and waits until each answers /health (at most ~20 s). On
 * failure nothing is left running. */
bool etcd_proc_start_cluster(struct etcd_proc *members, size_t n, const char *dir);

/* The etcd binary the tests start: $ETCD_BIN (as for tests/lib/cluster.sh),
 * default /usr/bin/etcd. */
const char *etcd_proc_bin(void);

/* A TCP port on 127.0.0.1 that was free a moment ago; -1 on error. */
int etcd_proc_free_port(void);

/* Picks ports (unless already set), starts etcd with its data under dir
 * and waits (at most ~15 s) until it answers. false (with the log's tail
 * on stderr) when it does not come up; nothing is left running then. */
bool etcd_proc_start(struct etcd_proc *p, const char *dir);

/* Sends sig (SIGTERM for a clean stop), waits up to 10 s, then SIGKILLs;
 * reaps the process. Keeps ports and data for a restart. */
void etcd_proc_stop(struct etcd_proc *p, int sig);

/* Restarts a stopped etcd on the same ports and data directory. */
bool etcd_proc_restart(struct etcd_proc *p);

/* POSTs body to path with plain libcurl (no auth); true on HTTP 200. For
 * set-up steps such as enabling auth, independent of the library tested. */
bool etcd_proc_post(const struct etcd_proc *p, const char *path, const char *body);

/* rm -rf path (best effort). */
void etcd_proc_rmtree(const char *path);

#endif
