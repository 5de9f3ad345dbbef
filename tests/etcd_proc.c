/*
 * etcd_proc.c - a real etcd for the integration tests (see etcd_proc.h).
 *
 * Readiness is asked with a plain libcurl GET of /health, independent of
 * the library under test, polled every 50 ms with a bounded number of
 * tries.
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

#define ETCD_BIN "/usr/bin/etcd"

int etcd_proc_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
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

static bool healthy(const char *url)
{
	char u[128];
	CURL *e = curl_easy_init();
	long code = 0;
	CURLcode rc;

	if (e == NULL)
		return false;
	snprintf(u, sizeof(u), "%s/health", url);
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

static bool spawn(struct etcd_proc *p)
{
	char client[64], peer[64], cluster[96];
	pid_t parent = getpid(), pid;
	int i;

	snprintf(client, sizeof(client), "http://127.0.0.1:%d", p->client_port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", p->peer_port);
	snprintf(cluster, sizeof(cluster), "default=%s", peer);
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
		execl(ETCD_BIN, ETCD_BIN, "--name", "default", "--data-dir", p->data_dir,
		      "--listen-client-urls", client, "--advertise-client-urls", client,
		      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		      "--initial-cluster", cluster, "--auth-token-ttl", "1", (char *)NULL);
		_exit(127);
	}
	p->pid = pid;
	for (i = 0; i < 300; i++) {
		int status;

		if (healthy(p->url))
			return true;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			p->pid = 0;
			break;
		}
		sleep_ms(50);
	}
	print_log_tail(p);
	etcd_proc_stop(p, SIGKILL);
	return false;
}

bool etcd_proc_start(struct etcd_proc *p, const char *dir)
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
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->client_port);
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
