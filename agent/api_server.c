/*
 * api_server.c - the REST server's state: made from the options (checked,
 * TLS files read, the names the Host header may carry, the etcd client),
 * and the snapshot, metrics and requests it shares with the loop.
 *
 * The loop hands the server a snapshot of the node's state with
 * api_publish() (copied under a mutex, with the monotonic time it arrived,
 * which /liveness checks) and counters with api_publish_metrics(); handlers
 * read them with api_snapshot(). What POSTs ask of the node waits in
 * s->requests until the loop takes it with api_take_requests(). A server
 * made by api_server_new() listens nowhere: api_http.c starts listening
 * (api_start_opts) and stops it (api_stop, which frees it here).
 */
#include "agent/api.h"

#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/api_internal.h"
#include "agent/clock.h"
#include "agent/config.h"
#include "agent/dcs.h"
#include "agent/jsonf.h"
#include "pg/pg_query.h"

#define API_ETCD_TIMEOUT 1.5 /* seconds, per etcd request of the API's own client */
#define API_ETCD_CONNECT_TIMEOUT 0.5
#define API_PROBE_TIMEOUT 0.2 /* POST /failsafe: does etcd answer us now? */
#define API_PROBE_CONNECT_TIMEOUT 0.15
#define API_PEM_MAX (1024 * 1024) /* largest certificate or key file read */

/* ---- clocks and the snapshot ----------------------------------------------- */

/* The snapshot and when it came; false when none was published yet. */
bool api_snapshot(struct api_server *s, struct api_status *st, double *age, struct api_metrics *m)
{
	bool have;

	pthread_mutex_lock(&s->mu);
	have = s->have_status;
	*st = s->status;
	if (age)
		*age = clk_mono() - s->published_at;
	if (m)
		*m = s->metrics;
	pthread_mutex_unlock(&s->mu);
	return have;
}

/* ---- making the server ------------------------------------------------------ */

/* The whole of a PEM file (malloc'd, NUL-terminated); NULL + err naming it. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, n;

	if (!f) {
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(API_PEM_MAX + 1);
	if (!buf) {
		jsonf_set_err(err, errlen, "out of memory");
		goto fail;
	}
	while ((n = fread(buf + len, 1, API_PEM_MAX + 1 - len, f)) > 0)
		len += n;
	if (ferror(f)) {
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": %s", what, path, strerror(errno));
		goto fail;
	}
	if (len > API_PEM_MAX || len == 0 || memchr(buf, '\0', len) || !strstr(buf, "-----BEGIN ")) {
		buf[len > API_PEM_MAX ? API_PEM_MAX : len] = '\0';
		jsonf_set_err(err, errlen, "restapi.%s \"%s\": not a PEM file", what, path);
		goto fail;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
fail:
	if (buf) {
		explicit_bzero(buf, len < API_PEM_MAX ? len : API_PEM_MAX);
		free(buf);
	}
	fclose(f);
	return NULL;
}

static void free_secret(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

/* Frees everything but the daemon (stopped before) and the reaper (joined
 * before). */
void api_server_free(struct api_server *s)
{
	if (s->pg)
		pg_conn_free(s->pg);
	etcd_client_free(s->etcd);
	etcd_client_free(s->probe_etcd);
	free(s->pg_conninfo);
	free_secret(s->auth_expected);
	free(s->auth_user);
	free(s->allowlist);
	free(s->tls_cert);
	free_secret(s->tls_key);
	free(s->tls_trust);
	for (size_t i = 0; i < s->n_hosts; i++)
		free(s->hosts[i]);
	while (s->socks) {
		struct api_sock *k = s->socks;

		s->socks = k->next;
		free(k);
	}
	pthread_cond_destroy(&s->restart_cv);
	pthread_cond_destroy(&s->sock_cv);
	pthread_mutex_destroy(&s->sock_mu);
	pthread_mutex_destroy(&s->etcd_mu);
	pthread_mutex_destroy(&s->probe_mu);
	pthread_mutex_destroy(&s->pg_mu);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Adds a name (lower-cased, without brackets or port) to the Host list;
 * duplicates are skipped. false on ENOMEM or a full list. */
static bool add_host(struct api_server *s, const char *name, char *err, size_t errlen)
{
	char buf[256];
	size_t n;

	if (!name || !*name)
		return true;
	n = strlen(name);
	if (name[0] == '[' && n > 2 && name[n - 1] == ']')
		snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), name + 1);
	else
		snprintf(buf, sizeof(buf), "%s", name);
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	n = strlen(buf);
	if (n > 1 && buf[n - 1] == '.')
		buf[n - 1] = '\0';
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i], buf) == 0)
			return true;
	if (s->n_hosts >= API_HOSTS_MAX) {
		jsonf_set_err(err, errlen, "restapi.allowed_hosts: more than %d names in all", API_HOSTS_MAX);
		return false;
	}
	if (!(s->hosts[s->n_hosts] = strdup(buf))) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	s->n_hosts++;
	return true;
}

/* The host of a "host:port" option (NULL when absent), added to the list;
 * *wildcard when it is one of the listen wildcards. */
static bool add_host_of(struct api_server *s, const char *hostport, bool *wildcard, char *err, size_t errlen)
{
	char *host = NULL;
	int port = 0;
	bool ok;

	if (!hostport)
		return true;
	if (!config_split_hostport(hostport, &host, &port))
		return true; /* resolve_listen names a bad listen address */
	if (!host[0] || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
	    strcmp(host, "[::]") == 0)
		*wildcard = true;
	ok = add_host(s, host, err, errlen);
	free(host);
	return ok;
}

/* The names a Host header may carry: listen and connect_address hosts,
 * localhost and the loopback addresses, this machine's name (and its first
 * label), restapi.allowed_hosts, and, when listening on every address,
 * every address of this machine's interfaces. */
static bool build_hosts(struct api_server *s, const struct api_options *opts, char *err, size_t errlen)
{
	static const char *const fixed[] = { "localhost", "127.0.0.1", "::1", "localhost.localdomain" };
	char name[256];
	bool wildcard = false;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!add_host(s, fixed[i], err, errlen))
			return false;
	if (!add_host_of(s, opts->listen, &wildcard, err, errlen) ||
	    !add_host_of(s, opts->connect_address, &wildcard, err, errlen))
		return false;
	if (gethostname(name, sizeof(name)) == 0) {
		name[sizeof(name) - 1] = '\0';
		if (!add_host(s, name, err, errlen))
			return false;
		if (strchr(name, '.')) {
			*strchr(name, '.') = '\0';
			if (!add_host(s, name, err, errlen))
				return false;
		}
	}
	for (size_t i = 0; i < opts->n_allowed_hosts; i++)
		if (!add_host(s, opts->allowed_hosts[i], err, errlen))
			return false;
	if (wildcard) {
		struct ifaddrs *ifa = NULL;

		if (getifaddrs(&ifa) == 0) {
			for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
				char a[INET6_ADDRSTRLEN + 8];
				socklen_t len;

				if (!p->ifa_addr ||
				    (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6))
					continue;
				len = p->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
				                                         : sizeof(struct sockaddr_in);
				if (getnameinfo(p->ifa_addr, len, a, sizeof(a), NULL, 0, NI_NUMERICHOST) != 0)
					continue;
				if (strchr(a, '%'))
					continue; /* link-local with a zone: not in a Host header */
				if (!add_host(s, a, err, errlen)) {
					freeifaddrs(ifa);
					return false;
				}
			}
			freeifaddrs(ifa);
		}
	}
	return true;
}

struct api_server *api_server_new(const struct api_options *opts, char *err, size_t errlen)
{
	struct api_server *s;

	if (!opts) {
		jsonf_set_err(err, errlen, "no options");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		jsonf_set_err(err, errlen, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		jsonf_set_err(err, errlen, "cannot create a mutex");
		return NULL;
	}
	if (pthread_mutex_init(&s->pg_mu, NULL) != 0 || pthread_mutex_init(&s->etcd_mu, NULL) != 0 ||
	    pthread_mutex_init(&s->probe_mu, NULL) != 0 || pthread_mutex_init(&s->sock_mu, NULL) != 0 ||
	    pthread_cond_init(&s->sock_cv, NULL) != 0) {
		/* glibc's init of a default mutex or condition cannot fail */
		jsonf_set_err(err, errlen, "cannot create a mutex");
		abort();
	}
	{
		pthread_condattr_t ca;

		/* POST /restart waits on it against the monotonic clock. */
		if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
		    pthread_cond_init(&s->restart_cv, &ca) != 0) {
			jsonf_set_err(err, errlen, "cannot create a condition variable");
			abort();
		}
		pthread_condattr_destroy(&ca);
	}
	s->status.lag = -1;
	if (opts->pg_conninfo && !(s->pg_conninfo = strdup(opts->pg_conninfo))) {
		jsonf_set_err(err, errlen, "out of memory");
		goto fail;
	}
	if (opts->auth_username) {
		size_t n;

		if (!opts->auth_password) {
			jsonf_set_err(err, errlen, "restapi.authentication: a username needs a password");
			goto fail;
		}
		if (strchr(opts->auth_username, ':')) {
			jsonf_set_err(err, errlen, "restapi.authentication: the username cannot contain ':'");
			goto fail;
		}
		n = strlen(opts->auth_username) + 1 + strlen(opts->auth_password) + 1;
		s->auth_expected = malloc(n);
		s->auth_user = strdup(opts->auth_username);
		if (!s->auth_expected || !s->auth_user) {
			jsonf_set_err(err, errlen, "out of memory");
			goto fail;
		}
		snprintf(s->auth_expected, n, "%s:%s", opts->auth_username, opts->auth_password);
		s->auth_len = n - 1;
	}
	if ((opts->certfile == NULL) != (opts->keyfile == NULL)) {
		jsonf_set_err(err, errlen, "restapi: certfile and keyfile go together");
		goto fail;
	}
	if (opts->certfile) {
		s->tls_cert = read_pem("certfile", opts->certfile, err, errlen);
		if (!s->tls_cert)
			goto fail;
		s->tls_key = read_pem("keyfile", opts->keyfile, err, errlen);
		if (!s->tls_key)
			goto fail;
	}
	if (!opts->verify_client || strcmp(opts->verify_client, "none") == 0) {
		s->verify = VERIFY_NONE;
	} else if (strcmp(opts->verify_client, "optional") == 0 || strcmp(opts->verify_client, "required") == 0) {
		s->verify = opts->verify_client[0] == 'o' ? VERIFY_OPTIONAL : VERIFY_REQUIRED;
		if (!opts->certfile || !opts->cafile) {
			jsonf_set_err(err, errlen,
			              "restapi.verify_client = \"%s\" needs restapi.certfile and restapi.keyfile (HTTPS) "
			              "and restapi.cafile (the CA that signs the client certificates)%s%s",
			              opts->verify_client, !opts->certfile ? "; restapi.certfile is not set" : "",
			              !opts->cafile ? "; restapi.cafile is not set" : "");
			goto fail;
		}
		s->tls_trust = read_pem("cafile", opts->cafile, err, errlen);
		if (!s->tls_trust)
			goto fail;
	} else {
		jsonf_set_err(err, errlen,
		              "restapi.verify_client \"%s\": must be \"none\", \"optional\" or \"required\"",
		              opts->verify_client);
		goto fail;
	}
	s->allow_unauth = opts->allow_unauthenticated_writes;
	if (!build_hosts(s, opts, err, errlen))
		goto fail;
	if (opts->n_allowlist > 0) {
		s->allowlist = calloc(opts->n_allowlist, sizeof(*s->allowlist));
		if (!s->allowlist) {
			jsonf_set_err(err, errlen, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < opts->n_allowlist; i++)
			if (!parse_net(opts->allowlist[i], &s->allowlist[i])) {
				jsonf_set_err(err, errlen,
				              "restapi.allowlist: \"%.64s\" is not an IP address or network",
				              opts->allowlist[i]);
				goto fail;
			}
		s->n_allowlist = opts->n_allowlist;
	}
	if (opts->etcd) {
		struct etcd_config ec = *opts->etcd;
		struct etcd_error e;

		if (!opts->scope ||
		    !dcs_keys_init(&s->keys, opts->namespace_ ? opts->namespace_ : "/baton", opts->scope)) {
			jsonf_set_err(err, errlen, "restapi: invalid namespace or scope for etcd keys");
			goto fail;
		}
		snprintf(s->scope, sizeof(s->scope), "%s", opts->scope);
		/* A handler holds a worker thread while it waits for etcd:
		 * keep each request short. */
		if (ec.request_timeout <= 0 || ec.request_timeout > API_ETCD_TIMEOUT)
			ec.request_timeout = API_ETCD_TIMEOUT;
		if (ec.connect_timeout <= 0 || ec.connect_timeout > API_ETCD_CONNECT_TIMEOUT)
			ec.connect_timeout = API_ETCD_CONNECT_TIMEOUT;
		memset(&e, 0, sizeof(e));
		if (etcd_client_new(&ec, &s->etcd, &e) != ETCD_OK) {
			jsonf_set_err(err, errlen, "restapi: etcd client: %s", e.message);
			goto fail;
		}
		/* The failsafe probe answers within the leader's 0.5 s request. */
		ec.request_timeout = API_PROBE_TIMEOUT;
		ec.connect_timeout = API_PROBE_CONNECT_TIMEOUT;
		if (etcd_client_new(&ec, &s->probe_etcd, &e) != ETCD_OK) {
			jsonf_set_err(err, errlen, "restapi: etcd client: %s", e.message);
			goto fail;
		}
	}
	return s;
fail:
	api_server_free(s);
	return NULL;
}

/* ---- what the loop hands over and takes ----------------------------------- */

void api_publish(struct api_server *s, const struct api_status *st)
{
	double seen;

	if (!s || !st)
		return;
	pthread_mutex_lock(&s->mu);
	seen = s->status.dcs_last_seen;
	s->status = *st;
	if (st->dcs_last_seen <= 0)
		s->status.dcs_last_seen = seen;
	s->have_status = true;
	s->published_at = clk_mono();
	pthread_mutex_unlock(&s->mu);
}

void api_publish_metrics(struct api_server *s, const struct api_metrics *m)
{
	if (!s || !m)
		return;
	pthread_mutex_lock(&s->mu);
	s->metrics = *m;
	pthread_mutex_unlock(&s->mu);
}

void api_take_requests(struct api_server *s, struct api_requests *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	*out = s->requests;
	memset(&s->requests, 0, sizeof(s->requests));
	pthread_mutex_unlock(&s->mu);
}
