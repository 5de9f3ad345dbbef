/*
 * fleet_load.c - replays the etcd request pattern of many idle baton agents
 * against an etcd cluster, and reports the keepalive latency they would see.
 * Built and run by tests/bench/fleet_load.sh (cc fleet_load.c -lcurl); not
 * part of the agent.
 *
 *   fleet_load --endpoints URL[,URL...] --agents N --seconds S
 *              --pattern old|new [--ttl 5] [--loop-wait 1] [--retry 2]
 *              [--prefix /fleet] [--check 30]
 *
 * Each simulated agent has its own lease and its own scope
 * (<prefix>/c<i>/: leader and members/<name> on its lease, config), and
 * talks to endpoint i % n. Patterns:
 *   old  one watch stream on its leader key; a keepalive every
 *        min(loop_wait, ttl / 4) s; every loop_wait s the full read
 *        (the txn of dcs_read_cluster's one-request path: a keys-only
 *        listing of the scope, the seven fixed keys, the members' values);
 *   new  one watch stream on the whole scope; a keepalive every
 *        max(min(loop_wait, ttl / 4), ttl - margin - retry_timeout) s
 *        (ha_keepalive_interval without a watchdog); the full read every
 *        --check s (VIEW_CHECK_INTERVAL).
 * The agents start at random phases. All requests go through one libcurl
 * multi handle (HTTP/1.1, one connection per handle: a keepalive handle, a
 * read handle and a watch handle per agent). Prints one line of figures:
 * requests sent per second, keepalive latency p50/p99/max (ms) and count,
 * failed requests (no answer in time, or not HTTP 200) and expired leases
 * (a keepalive answered without a TTL: that agent would have demoted).
 * The set-up runs each step for all agents at once and renews every lease
 * just before the run, so no lease expires before its first keepalive.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct agent;

enum op { OP_KEEPALIVE, OP_READ, OP_WATCH };

struct req {
	CURL *h;
	struct agent *a;
	enum op op;
	bool busy;
	double started;
	char *body;
	char resp[512];
	size_t resp_len;
};

struct agent {
	int id;
	const char *ep;
	char lease[32];
	double next_ka, next_read;
	struct req ka, rd, wt;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void b64(const char *s, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
}

/* "key":"..." (and "range_end" for a prefix) of s into buf. */
static void keyjson(char *buf, size_t len, const char *s, bool prefix)
{
	char k[360], e[360], end[256];
	size_t n = strlen(s);

	b64(s, n, k);
	if (!prefix) {
		snprintf(buf, len, "\"key\":\"%s\"", k);
		return;
	}
	memcpy(end, s, n + 1);
	end[n - 1]++;
	b64(end, n, e);
	snprintf(buf, len, "\"key\":\"%s\",\"range_end\":\"%s\"", k, e);
}

static size_t on_data(char *p, size_t sz, size_t nm, void *ctx)
{
	struct req *r = ctx;
	size_t n = sz * nm, room = sizeof(r->resp) - 1 - r->resp_len;

	if (n < room)
		room = n;
	memcpy(r->resp + r->resp_len, p, room);
	r->resp_len += room;
	r->resp[r->resp_len] = '\0';
	return n;
}

static size_t discard(char *p, size_t sz, size_t nm, void *ctx)
{
	(void)p;
	(void)ctx;
	return sz * nm;
}

static struct curl_slist *g_hdr;

static void req_setup(struct req *r, struct agent *a, enum op op, const char *path, char *body, double timeout)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", a->ep, path);
	if (!r->h)
		r->h = curl_easy_init();
	curl_easy_reset(r->h);
	r->a = a;
	r->op = op;
	free(r->body);
	r->body = body;
	r->resp_len = 0;
	r->resp[0] = '\0';
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, g_hdr);
	curl_easy_setopt(r->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, op == OP_WATCH ? discard : on_data);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	if (timeout > 0)
		curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dupf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* One set-up step for every agent at once: make(a) prepares the agent's
 * request in slot(a) (req_setup), at most `width` run at a time through
 * the multi handle. Returns how many did not answer 200; a sequential
 * set-up of 1000 agents takes longer than a ttl, and the first leases
 * would expire before the run. */
static size_t batch(CURLM *m, struct agent *ag, int n, struct req *(*slot)(struct agent *),
                    void (*make)(struct agent *), int width)
{
	int next = 0, running = 0, in_flight = 0, left;
	size_t bad = 0;
	CURLMsg *msg;

	while (next < n || in_flight > 0) {
		while (next < n && in_flight < width) {
			make(&ag[next]);
			curl_multi_add_handle(m, slot(&ag[next])->h);
			next++;
			in_flight++;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(m, msg->easy_handle);
			in_flight--;
			if (msg->data.result != CURLE_OK || code != 200)
				bad++;
		}
		if (in_flight > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	return bad;
}

static struct req *slot_ka(struct agent *a)
{
	return &a->ka;
}
static struct req *slot_rd(struct agent *a)
{
	return &a->rd;
}

static const char *g_prefix;
static int g_ttl;
static double g_loop_wait, g_retry;

static void put_value(struct agent *a, const char *name, const char *val, bool leased)
{
	char k[800], key[256], v64[900];

	snprintf(key, sizeof(key), "%s/c%d/%s", g_prefix, a->id, name);
	keyjson(k, sizeof(k), key, false);
	b64(val, strlen(val), v64);
	if (leased)
		req_setup(&a->rd, a, OP_READ, "/v3/kv/put",
		          dupf("{%s,\"value\":\"%s\",\"lease\":\"%s\"}", k, v64, a->lease), 10);
	else
		req_setup(&a->rd, a, OP_READ, "/v3/kv/put", dupf("{%s,\"value\":\"%s\"}", k, v64), 10);
}

static void make_config(struct agent *a)
{
	char val[160];

	snprintf(val, sizeof(val), "{\"ttl\":%d,\"loop_wait\":%g,\"retry_timeout\":%g}", g_ttl, g_loop_wait, g_retry);
	put_value(a, "config", val, false);
}

static void make_grant(struct agent *a)
{
	req_setup(&a->ka, a, OP_READ, "/v3/lease/grant", dupf("{\"TTL\":\"%d\"}", g_ttl), 10);
}

static void make_leader(struct agent *a)
{
	put_value(a, "leader", "a1", true);
}

static void make_member(struct agent *a)
{
	char val[600];

	snprintf(val, sizeof(val),
	         "{\"role\":\"primary\",\"state\":\"running\",\"conn_url\":\"postgres://10.0.0.%d:5432/postgres\","
	         "\"api_url\":\"https://10.0.0.%d:8008/patroni\",\"timeline\":1,\"lsn\":50331648,\"tags\":{}}",
	         a->id % 250, a->id % 250);
	put_value(a, "members/a1", val, true);
}

static void make_renew(struct agent *a)
{
	req_setup(&a->ka, a, OP_READ, "/v3/lease/keepalive", dupf("{\"ID\":\"%s\"}", a->lease), 10);
}

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
	const char *endpoints = NULL, *pattern = "new", *prefix = "/fleet";
	int n_agents = 1000, ttl = 5;
	double seconds = 60, loop_wait = 1, retry = 2, check = 30, ka_every, read_every;
	char *eps[8];
	int n_eps = 0;
	struct agent *ag;
	CURLM *m;
	double *lat;
	size_t n_lat = 0, cap_lat;
	uint64_t sent = 0, failed = 0, expired = 0;
	double t_end, t0, t_grant;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--endpoints"))
			endpoints = argv[i + 1];
		else if (!strcmp(argv[i], "--agents"))
			n_agents = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--pattern"))
			pattern = argv[i + 1];
		else if (!strcmp(argv[i], "--ttl"))
			ttl = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--loop-wait"))
			loop_wait = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--retry"))
			retry = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--prefix"))
			prefix = argv[i + 1];
		else if (!strcmp(argv[i], "--check"))
			check = atof(argv[i + 1]);
		else {
			fprintf(stderr, "fleet_load: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (!endpoints || n_agents < 1 || seconds <= 0 || (strcmp(pattern, "old") && strcmp(pattern, "new"))) {
		fprintf(stderr, "usage: fleet_load --endpoints URL[,URL] --agents N --seconds S --pattern old|new\n");
		return 2;
	}
	for (char *s = strdup(endpoints), *tok = strtok(s, ","); tok && n_eps < 8; tok = strtok(NULL, ","))
		eps[n_eps++] = tok;
	{
		double margin = ttl * 0.25 > 1 ? 1 : ttl * 0.25;
		double base = loop_wait < ttl / 4.0 ? loop_wait : ttl / 4.0;
		double relaxed = ttl - margin - retry;

		if (!strcmp(pattern, "old")) {
			ka_every = base;
			read_every = loop_wait;
		} else {
			ka_every = relaxed > base ? relaxed : base;
			read_every = check;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_hdr = curl_slist_append(NULL, "Content-Type: application/json");
	ag = calloc((size_t)n_agents, sizeof(*ag));
	cap_lat = (size_t)(n_agents * (seconds / ka_every + 2));
	lat = malloc(cap_lat * sizeof(*lat));
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)(3 * n_agents + 16));
	srand(42);

	/* Set-up, each step for all agents at once (at most 200 requests in
	 * flight): the config keys, then the leases, the keys on them, and one
	 * keepalive of every lease just before the run, so that no lease
	 * expires between its grant and the agent's first keepalive. */
	g_prefix = prefix;
	g_ttl = ttl;
	g_loop_wait = loop_wait;
	g_retry = retry;
	t0 = now_s();
	for (int i = 0; i < n_agents; i++) {
		ag[i].id = i;
		ag[i].ep = eps[i % n_eps];
	}
	if (batch(m, ag, n_agents, slot_rd, make_config, 200) > 0) {
		fprintf(stderr, "fleet_load: cannot write the config keys\n");
		return 1;
	}
	t_grant = now_s();
	if (batch(m, ag, n_agents, slot_ka, make_grant, 200) > 0) {
		fprintf(stderr, "fleet_load: cannot grant the leases\n");
		return 1;
	}
	for (int i = 0; i < n_agents; i++) {
		const char *id = strstr(ag[i].ka.resp, "\"ID\":\"");

		if (!id) {
			fprintf(stderr, "fleet_load: no lease for agent %d: %s\n", i, ag[i].ka.resp);
			return 1;
		}
		snprintf(ag[i].lease, sizeof(ag[i].lease), "%.*s", (int)strcspn(id + 6, "\""), id + 6);
	}
	if (batch(m, ag, n_agents, slot_rd, make_leader, 200) > 0 ||
	    batch(m, ag, n_agents, slot_rd, make_member, 200) > 0) {
		fprintf(stderr, "fleet_load: cannot write the leader and member keys\n");
		return 1;
	}
	if (batch(m, ag, n_agents, slot_ka, make_renew, 200) > 0) {
		fprintf(stderr, "fleet_load: cannot renew the leases before the run\n");
		return 1;
	}
	for (int i = 0; i < n_agents; i++)
		if (!strstr(ag[i].ka.resp, "\"TTL\"")) {
			fprintf(stderr,
			        "fleet_load: agent %d's lease expired during the set-up (%.1f s from the first grant to "
			        "the last renewal, ttl %d)\n",
			        i, now_s() - t_grant, ttl);
			return 1;
		}
	fprintf(stderr,
	        "fleet_load: %d agents set up in %.1f s (leases granted to renewed %.1f s); pattern %s: keepalive "
	        "every %.2f s, full read every %.2f s\n",
	        n_agents, now_s() - t0, now_s() - t_grant, pattern, ka_every, read_every);

	/* The watches, and random phases. */
	t0 = now_s();
	for (int i = 0; i < n_agents; i++) {
		struct agent *a = &ag[i];
		char k[800], key[256];
		bool prefix_watch = strcmp(pattern, "new") == 0;

		snprintf(key, sizeof(key), prefix_watch ? "%s/c%d/" : "%s/c%d/leader", prefix, i);
		keyjson(k, sizeof(k), key, prefix_watch);
		req_setup(&a->wt, a, OP_WATCH, "/v3/watch", dupf("{\"create_request\":{%s}}", k), 0);
		curl_multi_add_handle(m, a->wt.h);
		a->wt.busy = true;
		sent++;
		a->next_ka = t0 + ka_every * rand() / RAND_MAX;
		a->next_read = t0 + read_every * rand() / RAND_MAX;
	}
	t_end = t0 + seconds;
	for (;;) {
		double t = now_s(), next = t_end;
		int running, left;
		CURLMsg *msg;

		if (t >= t_end)
			break;
		for (int i = 0; i < n_agents; i++) {
			struct agent *a = &ag[i];

			if (!a->ka.busy && t >= a->next_ka) {
				req_setup(&a->ka, a, OP_KEEPALIVE, "/v3/lease/keepalive",
				          dupf("{\"ID\":\"%s\"}", a->lease), ka_every);
				a->ka.started = t;
				a->ka.busy = true;
				curl_multi_add_handle(m, a->ka.h);
				sent++;
				a->next_ka += ka_every;
			}
			if (!a->rd.busy && t >= a->next_read) {
				char k0[800], kf[8][800], km[800], key[256];
				static const char *fixed[] = { "leader",     "initialize", "config", "status",
					                       "switchover", "sync",       "history" };

				snprintf(key, sizeof(key), "%s/c%d/", prefix, i);
				keyjson(k0, sizeof(k0), key, true);
				for (int f = 0; f < 7; f++) {
					snprintf(key, sizeof(key), "%s/c%d/%s", prefix, i, fixed[f]);
					keyjson(kf[f], sizeof(kf[f]), key, false);
				}
				snprintf(key, sizeof(key), "%s/c%d/members/", prefix, i);
				keyjson(km, sizeof(km), key, true);
				req_setup(
				        &a->rd, a, OP_READ, "/v3/kv/txn",
				        dupf("{\"success\":[{\"request_range\":{%s,\"keys_only\":true,\"limit\":\"500\"}},"
				             "{\"request_range\":{%s}},{\"request_range\":{%s}},{\"request_range\":{%s}},"
				             "{\"request_range\":{%s}},{\"request_range\":{%s}},{\"request_range\":{%s}},"
				             "{\"request_range\":{%s}},{\"request_range\":{%s,\"limit\":\"64\"}}]}",
				             k0, kf[0], kf[1], kf[2], kf[3], kf[4], kf[5], kf[6], km),
				        loop_wait * 2);
				a->rd.started = t;
				a->rd.busy = true;
				curl_multi_add_handle(m, a->rd.h);
				sent++;
				a->next_read += read_every;
			}
			/* A request still running is sent again when it ends (the
			 * poll wakes on its socket): its due time must not make
			 * this loop spin. */
			if (!a->ka.busy && a->next_ka < next)
				next = a->next_ka;
			if (!a->rd.busy && a->next_read < next)
				next = a->next_read;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct req *r;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(m, msg->easy_handle);
			r->busy = false;
			if (msg->data.result != CURLE_OK || code != 200) {
				failed++;
				continue;
			}
			/* 200 without a TTL: the lease had expired (a real agent
			 * would have lost its keys and demoted). */
			if (r->op == OP_KEEPALIVE && !strstr(r->resp, "\"TTL\"")) {
				expired++;
				continue;
			}
			if (r->op == OP_KEEPALIVE && n_lat < cap_lat)
				lat[n_lat++] = now_s() - r->started;
		}
		t = now_s();
		if (next > t) {
			int ms = (int)((next - t) * 1000) + 1;

			curl_multi_poll(m, NULL, 0, ms > 100 ? 100 : ms, NULL);
		}
		/* A late agent keeps its cadence from now, not from the past. */
		for (int i = 0; i < n_agents; i++) {
			if (ag[i].ka.busy && ag[i].next_ka < t - ka_every)
				ag[i].next_ka = t;
			if (ag[i].rd.busy && ag[i].next_read < t - read_every)
				ag[i].next_read = t;
		}
	}
	qsort(lat, n_lat, sizeof(*lat), cmp_d);
	printf("pattern=%s agents=%d seconds=%.0f requests_per_s=%.1f per_agent=%.3f keepalive_p50_ms=%.2f "
	       "keepalive_p99_ms=%.2f keepalive_max_ms=%.2f keepalives=%zu failed=%llu expired=%llu\n",
	       pattern, n_agents, seconds, sent / seconds, sent / seconds / n_agents,
	       n_lat ? lat[n_lat / 2] * 1000 : -1, n_lat ? lat[(size_t)(n_lat * 0.99)] * 1000 : -1,
	       n_lat ? lat[n_lat - 1] * 1000 : -1, n_lat, (unsigned long long)failed, (unsigned long long)expired);
	return 0;
}
