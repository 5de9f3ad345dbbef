/*
 * etcd_proc.c - a real etcd for the integration tests (see etcd_proc.h).
 *
 * Readiness is asked with a plain libcurl GET of /health, independent of
 * the library under test, polled every 50 ms with a bounded number of
 * tries. A cluster is started by spawning every member first and only
 * then waiting for each: a member reports healthy only once a quorum is up.
 * Certificates for TLS tests come from openssl run by /bin/sh.
 */
#include "tests/etcd_proc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *etcd_proc_bin(void)
{
	const char *bin = getenv("ETCD_BIN");

	return bin && *bin ? bin : "/usr/bin/etcd";
}

int etcd_proc_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

/* With TLS, present the test's client certificate and trust its CA. */
static void tls_opts(CURL *e, const struct etcd_proc *p)
{
	char ca[600], cert[600], key[600];

	if (p->tls_dir[0] == '\0')
		return;
	snprintf(ca, sizeof(ca), "%s/ca.pem", p->tls_dir);
	snprintf(cert, sizeof(cert), "%s/client.pem", p->tls_dir);
	snprintf(key, sizeof(key), "%s/client-key.pem", p->tls_dir);
	/* libcurl copies option strings. */
	curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(e, CURLOPT_SSLKEY, key);
}

static bool healthy(const struct etcd_proc *p)
{
	char u[128];
	CURL *e = curl_easy_init();
	long code = 0;
	CURLcode rc;

	if (e == NULL)
		return false;
	snprintf(u, sizeof(u), "%s/health", p->url);
	tls_opts(e, p);
	curl_easy_setopt(e, CURLOPT_URL, u);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 500L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	return rc == CURLE_OK && code == 200;
}

static void print_log_tail(const struct etcd_proc *p)
{
	char buf[4096];
	FILE *f = fopen(p->log_path, "r");
	size_t n;

	if (f == NULL)
		return;
	if (fseek(f, -(long)sizeof(buf) + 1, SEEK_END) != 0)
		rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- etcd log tail (%s) ---\n%s\n", p->log_path, buf);
}

/* Forks and execs etcd for p; does not wait for it to answer. */
static bool spawn_only(struct etcd_proc *p)
{
	char client[64], peer[64], cluster[96], certs[3][600];
	const char *name = p->name[0] ? p->name : "default";
	const char *argv[40];
	pid_t parent = getpid(), pid;
	int a = 0;

	snprintf(client, sizeof(client), "%s://127.0.0.1:%d", p->tls_dir[0] ? "https" : "http", p->client_port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", p->peer_port);
	snprintf(cluster, sizeof(cluster), "%s=%s", name, peer);
	snprintf(certs[0], sizeof(certs[0]), "%s/server.pem", p->tls_dir);
	snprintf(certs[1], sizeof(certs[1]), "%s/server-key.pem", p->tls_dir);
	snprintf(certs[2], sizeof(certs[2]), "%s/ca.pem", p->tls_dir);
	argv[a++] = etcd_proc_bin();
	argv[a++] = "--name";
	argv[a++] = name;
	argv[a++] = "--data-dir";
	argv[a++] = p->data_dir;
	argv[a++] = "--listen-client-urls";
	argv[a++] = client;
	argv[a++] = "--advertise-client-urls";
	argv[a++] = client;
	argv[a++] = "--listen-peer-urls";
	argv[a++] = peer;
	argv[a++] = "--initial-advertise-peer-urls";
	argv[a++] = peer;
	argv[a++] = "--initial-cluster";
	argv[a++] = p->initial_cluster[0] ? p->initial_cluster : cluster;
	argv[a++] = "--auth-token-ttl";
	argv[a++] = "1";
	if (p->tls_dir[0]) {
		argv[a++] = "--cert-file";
		argv[a++] = certs[0];
		argv[a++] = "--key-file";
		argv[a++] = certs[1];
		argv[a++] = "--trusted-ca-file";
		argv[a++] = certs[2];
		argv[a++] = "--client-cert-auth";
	}
	argv[a] = NULL;
	snprintf(p->url, sizeof(p->url), "%s", client);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	return true;
}

/* Waits (at most tries * 50 ms) until p answers /health. */
static bool wait_healthy(struct etcd_proc *p, int tries)
{
	int i;

	for (i = 0; i < tries; i++) {
		int status;

		if (healthy(p))
			return true;
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return false;
		}
		sleep_ms(50);
	}
	return false;
}

static bool spawn(struct etcd_proc *p)
{
	if (!spawn_only(p))
		return false;
	if (wait_healthy(p, 300))
		return true;
	print_log_tail(p);
	etcd_proc_stop(p, SIGKILL);
	return false;
}

/* Ports and paths of p, under dir. */
static bool prepare(struct etcd_proc *p, const char *dir)
{
	p->pid = 0;
	if (p->client_port <= 0)
		p->client_port = etcd_proc_free_port();
	if (p->peer_port <= 0) {
		do
			p->peer_port = etcd_proc_free_port();
		while (p->peer_port == p->client_port);
	}
	if (p->client_port <= 0 || p->peer_port <= 0)
		return false;
	if (snprintf(p->data_dir, sizeof(p->data_dir), "%s/data", dir) >= (int)sizeof(p->data_dir) ||
	    snprintf(p->log_path, sizeof(p->log_path), "%s/etcd.log", dir) >= (int)sizeof(p->log_path))
		return false;
	return true;
}

bool etcd_proc_start_cluster(struct etcd_proc *members, size_t n, const char *dir)
{
	char cluster[512] = "", sub[512];
	size_t i, used = 0;
	bool ok = n > 0 && n <= 7;

	for (i = 0; ok && i < n; i++) {
		struct etcd_proc *p = &members[i];
		int w;

		snprintf(p->name, sizeof(p->name), "m%zu", i);
		w = snprintf(sub, sizeof(sub), "%s/m%zu", dir, i);
		ok = w > 0 && w < (int)sizeof(sub) && (mkdir(sub, 0700) == 0 || errno == EEXIST) && prepare(p, sub);
		/* Ports picked one by one may collide: keep them distinct. */
		for (size_t j = 0; ok && j < i; j++)
			if (members[j].client_port == p->client_port || members[j].peer_port == p->client_port ||
			    members[j].client_port == p->peer_port || members[j].peer_port == p->peer_port)
				ok = false;
		w = ok ? snprintf(cluster + used, sizeof(cluster) - used, "%s%s=http://127.0.0.1:%d", i ? "," : "",
		                  p->name, p->peer_port)
		       : -1;
		ok = ok && w > 0 && (size_t)w < sizeof(cluster) - used;
		if (ok)
			used += (size_t)w;
	}
	for (i = 0; ok && i < n; i++) {
		snprintf(members[i].initial_cluster, sizeof(members[i].initial_cluster), "%s", cluster);
		ok = spawn_only(&members[i]);
	}
	for (i = 0; ok && i < n; i++)
		ok = wait_healthy(&members[i], 400);
	if (!ok)
		for (i = 0; i < n; i++) {
			if (members[i].pid > 0)
				print_log_tail(&members[i]);
			etcd_proc_stop(&members[i], SIGKILL);
		}
	return ok;
}

bool etcd_proc_make_certs(const char *dir)
{
	static const char script[] =
	        "set -e; cd \"$1\"; "
	        "k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
	        "openssl req -x509 $k -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=baton-test-ca; "
	        "openssl req -x509 $k -keyout other-ca-key.pem -out other-ca.pem -days 2 "
	        "-subj /CN=unrelated-ca; "
	        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
	        "extendedKeyUsage=serverAuth,clientAuth\\n' >server.ext; "
	        "printf 'extendedKeyUsage=clientAuth\\n' >client.ext; "
	        "openssl req $k -keyout server-key.pem -out server.csr -subj /CN=server; "
	        "openssl req $k -keyout client-key.pem -out client.csr -subj /O=baton-test-client; "
	        "for n in server client; do "
	        "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
	        "-out $n.pem -days 2 -extfile $n.ext; done";
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return false;
	if (pid == 0) {
		char log[600];
		int fd;

		/* openssl chatters even when it succeeds: into dir/openssl.log. */
		snprintf(log, sizeof(log), "%s/openssl.log", dir);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl("/bin/sh", "sh", "-c", script, "sh", dir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "openssl failed: see %s/openssl.log\n", dir);
		return false;
	}
	return true;
}

bool etcd_proc_start(struct etcd_proc *p, const char *dir)
{
	if (!prepare(p, dir))
		return false;
	return spawn(p);
}

bool etcd_proc_restart(struct etcd_proc *p)
{
	if (p->pid != 0)
		etcd_proc_stop(p, SIGTERM);
	return spawn(p);
}

void etcd_proc_stop(struct etcd_proc *p, int sig)
{
	int i, status;

	if (p->pid <= 0)
		return;
	kill(p->pid, sig);
	for (i = 0; i < 200; i++) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return;
		}
		sleep_ms(50);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	p->pid = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void etcd_proc_rmtree(const char *path)
{
	if (path != NULL && path[0] != '\0')
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool etcd_proc_post(const struct etcd_proc *p, const char *path, const char *body)
{
	char u[256];
	CURL *e = curl_easy_init();
	long code = 0;
	CURLcode rc;

	if (e == NULL)
		return false;
	snprintf(u, sizeof(u), "%s%s", p->url, path);
	tls_opts(e, p);
	curl_easy_setopt(e, CURLOPT_URL, u);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	return rc == CURLE_OK && code == 200;
}
