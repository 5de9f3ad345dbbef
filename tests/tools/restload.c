/*
 * restload.c - holds idle and slow-header connections open against a REST
 * API and measures how fast it still answers a health probe.
 *
 *   restload --url http://127.0.0.1:8008/health [--idle 1000] [--slow 100]
 *            [--duration 30] [--interval 200] [--trickle 1000] [--warmup 2]
 *            [--cacert FILE] [--cert FILE --key FILE] [--max-latency MS]
 *
 * The attack side is raw TCP from this one address (the worst case for a
 * per-address limit): --idle connections that never send a byte, and
 * --slow connections that send the start of a request and then one more
 * header byte every --trickle milliseconds, never finishing. A connection
 * the server closes is opened again at once, so the pressure stays; the
 * reconnections are counted (a server with a header deadline closes the
 * slow ones, one with an idle timeout the idle ones).
 *
 * The probe side asks --url every --interval milliseconds over a fresh
 * connection (libcurl, 5 s timeout; https verified against --cacert, with a
 * client certificate when given), after --warmup seconds of attack. Each
 * probe prints one line
 *
 *   probe <unix_ms> <http_code> <seconds>
 *
 * and at the end (after --duration seconds, or SIGTERM/SIGINT):
 *
 *   held idle=N slow=N reconnects idle=N slow=N refused=N
 *   probes N ok N failed N
 *   latency p50 S p99 S max S
 *
 * Exit 0 when every probe answered 200 (and within --max-latency when
 * given), 1 otherwise, 2 on bad usage. Raises its own open-files limit to
 * the hard limit; loopback targets only (it is a test tool).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/tools/tool_util.h"

#define MAX_CONNS 20000
#define MAX_PROBES 100000

struct conn {
	int fd; /* -1 = not connected */
	bool slow;
	bool connected;  /* the non-blocking connect finished */
	int64_t next_ms; /* slow: when the next byte goes */
};

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static uint64_t g_reconnects[2], g_refused;
static int64_t g_trickle = 1000; /* ms between two bytes of a slow connection */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* host and port of an http(s) URL into g_addr (numeric loopback hosts or
 * names resolving to loopback). */
static bool target_of(const char *url)
{
	char host[256], port[8] = "80";
	const char *p = strstr(url, "://"), *end;
	struct addrinfo hints, *res = NULL;
	size_t n;

	if (!p)
		return false;
	if (strncmp(url, "https", 5) == 0)
		snprintf(port, sizeof(port), "443");
	p += 3;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return false;
		n = (size_t)(end - p - 1);
		if (n >= sizeof(host))
			return false;
		memcpy(host, p + 1, n);
		end++;
	} else {
		end = p + strcspn(p, ":/");
		n = (size_t)(end - p);
		if (n >= sizeof(host))
			return false;
		memcpy(host, p, n);
	}
	host[n] = '\0';
	if (*end == ':') {
		n = strspn(end + 1, "0123456789");
		if (n == 0 || n >= sizeof(port))
			return false;
		memcpy(port, end + 1, n);
		port[n] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return false;
	memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
	g_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (g_addr.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&g_addr)->sin_addr.s_addr) >> 24) == 127;
	return g_addr.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&g_addr)->sin6_addr);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connected = false;
}

/* Starts a non-blocking connect. */
static void conn_open(struct conn *c, int64_t now)
{
	c->fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->connected = false;
	c->next_ms = now;
	if (c->fd < 0)
		return;
	if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) == 0)
		c->connected = true;
	else if (errno != EINPROGRESS)
		conn_close(c);
}

/* The first bytes of a slow request (the header never ends). */
static const char slow_start[] = "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

/* One pass over every connection: finish connects, notice closes, send the
 * slow ones' next byte; reopen what is gone. */
static void attack_step(struct conn *cs, size_t n, struct pollfd *pfd)
{
	int64_t now = tool_mono_ms();

	for (size_t i = 0; i < n; i++) {
		pfd[i].fd = cs[i].fd;
		pfd[i].events = cs[i].connected ? POLLIN : POLLOUT;
		pfd[i].revents = 0;
	}
	if (poll(pfd, n, 0) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct conn *c = &cs[i];

		if (c->fd < 0) {
			conn_open(c, now);
			continue;
		}
		if (!c->connected) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (!(pfd[i].revents & (POLLOUT | POLLERR | POLLHUP)))
				continue;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
				g_refused++;
				conn_close(c);
				continue;
			}
			c->connected = true;
			if (c->slow && send(c->fd, slow_start, sizeof(slow_start) - 1, MSG_NOSIGNAL) < 0) {
				conn_close(c);
				continue;
			}
			c->next_ms = now + g_trickle;
			continue;
		}
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* closed, or an answer (an error page): start over */
			g_reconnects[c->slow]++;
			conn_close(c);
			conn_open(c, now);
			continue;
		}
		if (c->slow && now >= c->next_ms) {
			if (send(c->fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
				g_reconnects[1]++;
				conn_close(c);
				conn_open(c, now);
				continue;
			}
			c->next_ms = now + g_trickle;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: restload --url URL [--idle N] [--slow N] [--duration S] [--interval MS] "
	                "[--trickle MS] [--warmup S] [--cacert FILE] [--cert FILE --key FILE] [--max-latency MS]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },         { "idle", required_argument, NULL, 'i' },
		{ "slow", required_argument, NULL, 's' },        { "duration", required_argument, NULL, 'd' },
		{ "interval", required_argument, NULL, 'n' },    { "trickle", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },      { "cacert", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' },        { "key", required_argument, NULL, 'K' },
		{ "max-latency", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *cacert = NULL, *cert = NULL, *key = NULL;
	long idle = 1000, slow = 100, duration = 30, interval = 200, trickle = 1000, warmup = 2, max_lat = 0;
	struct conn *cs = NULL;
	struct pollfd *pfd = NULL;
	double *lat = NULL;
	size_t n, n_probes = 0, ok = 0, held[2];
	int64_t start, end, next_probe;
	struct rlimit rl;
	CURL *curl = NULL;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		bool good = true;

		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'i':
			good = tool_parse_int(optarg, 0, MAX_CONNS / 2, &idle);
			break;
		case 's':
			good = tool_parse_int(optarg, 0, MAX_CONNS / 2, &slow);
			break;
		case 'd':
			good = tool_parse_int(optarg, 1, 86400, &duration);
			break;
		case 'n':
			good = tool_parse_int(optarg, 10, 60000, &interval);
			break;
		case 't':
			good = tool_parse_int(optarg, 10, 60000, &trickle);
			break;
		case 'w':
			good = tool_parse_int(optarg, 0, 3600, &warmup);
			break;
		case 'c':
			cacert = optarg;
			break;
		case 'C':
			cert = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		case 'm':
			good = tool_parse_int(optarg, 1, 600000, &max_lat);
			break;
		default:
			good = false;
		}
		if (!good) {
			usage();
			return 2;
		}
	}
	if (!url || optind != argc || (cert == NULL) != (key == NULL)) {
		usage();
		return 2;
	}
	if (!target_of(url)) {
		fprintf(stderr, "restload: %s: not an http(s) URL of a loopback address\n", url);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(idle + slow + 64)) {
		fprintf(stderr, "restload: the open files limit %lu is too low for %ld connections\n",
		        (unsigned long)rl.rlim_cur, idle + slow);
		return 2;
	}
	g_trickle = trickle;
	tool_install_signals();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	n = (size_t)(idle + slow);
	cs = calloc(n ? n : 1, sizeof(*cs));
	pfd = calloc(n ? n : 1, sizeof(*pfd));
	lat = calloc(MAX_PROBES, sizeof(*lat));
	curl = curl_easy_init();
	if (!cs || !pfd || !lat || !curl) {
		fprintf(stderr, "restload: out of memory\n");
		goto cleanup;
	}
	start = tool_mono_ms();
	for (size_t i = 0; i < n; i++) {
		cs[i].slow = i >= (size_t)idle;
		conn_open(&cs[i], start);
	}
	next_probe = start + warmup * 1000;
	end = next_probe + duration * 1000;
	while (!tool_stop_requested && tool_mono_ms() < end) {
		int64_t now;

		attack_step(cs, n, pfd);
		now = tool_mono_ms();
		if (now >= next_probe && n_probes < MAX_PROBES) {
			long code = 0;
			CURLcode cc;
			double t0 = (double)tool_mono_ms(), took;

			curl_easy_reset(curl);
			curl_easy_setopt(curl, CURLOPT_URL, url);
			curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
			curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
			curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
			curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
			curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
			if (cacert)
				curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
			if (cert) {
				curl_easy_setopt(curl, CURLOPT_SSLCERT, cert);
				curl_easy_setopt(curl, CURLOPT_SSLKEY, key);
			}
			cc = curl_easy_perform(curl);
			if (cc == CURLE_OK)
				curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
			took = ((double)tool_mono_ms() - t0) / 1000.0;
			lat[n_probes++] = cc == CURLE_OK ? took : 5.0;
			if (code == 200 && (max_lat == 0 || took * 1000.0 <= (double)max_lat))
				ok++;
			printf("probe %lld %ld %.3f%s%s\n", (long long)tool_unix_ms(), code, took,
			       cc == CURLE_OK ? "" : " ", cc == CURLE_OK ? "" : curl_easy_strerror(cc));
			fflush(stdout);
			next_probe = tool_mono_ms() + interval;
		}
		usleep(20000);
	}
	held[0] = held[1] = 0;
	for (size_t i = 0; i < n; i++)
		if (cs[i].fd >= 0 && cs[i].connected)
			held[cs[i].slow]++;
	printf("held idle=%zu slow=%zu reconnects idle=%llu slow=%llu refused=%llu\n", held[0], held[1],
	       (unsigned long long)g_reconnects[0], (unsigned long long)g_reconnects[1], (unsigned long long)g_refused);
	printf("probes %zu ok %zu failed %zu\n", n_probes, ok, n_probes - ok);
	if (n_probes) {
		qsort(lat, n_probes, sizeof(*lat), cmp_double);
		printf("latency p50 %.3f p99 %.3f max %.3f\n", lat[(n_probes - 1) / 2],
		       lat[(size_t)((double)(n_probes - 1) * 0.99)], lat[n_probes - 1]);
	}
	rc = n_probes > 0 && ok == n_probes ? 0 : 1;
cleanup:
	for (size_t i = 0; cs && i < n; i++)
		conn_close(&cs[i]);
	if (curl)
		curl_easy_cleanup(curl);
	curl_global_cleanup();
	free(cs);
	free(pfd);
	free(lat);
	return rc;
}
