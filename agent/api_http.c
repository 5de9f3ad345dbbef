/*
 * api_http.c - the REST API's libmicrohttpd glue: listening, TLS, worker
 * threads, and the limits that keep slow or idle clients from starving the
 * health checks.
 *
 * It reads one request into a struct api_request (the raw query string,
 * the headers that matter, the client's address and verified certificate,
 * the body capped at API_REQUEST_BODY_MAX), calls api_handle() (api.c) and
 * sends its reply. A framing that a proxy could read otherwise than we do,
 * or a declared body over the cap, is answered before the body is read.
 *
 * Threads and slow clients (issue 10). The server runs in a pool of
 * API_THREADS libmicrohttpd threads, each with its own epoll set (no
 * FD_SETSIZE limit), so one handler waiting on etcd or Postgres does not
 * stop the others from answering. The total connection limit follows the
 * file descriptor limit (raised to its hard limit at start), and one
 * client address may hold only a quarter of it, so one host cannot take
 * every slot from the load balancer's probes. libmicrohttpd's own timeout
 * is an inactivity timeout that every trickled byte resets; so the server
 * tracks each connection (MHD_OPTION_NOTIFY_CONNECTION) and a reaper
 * thread shuts down the socket of one whose headers are not complete
 * API_HEADER_DEADLINE seconds after it was accepted (or after its previous
 * request ended), or whose body is not complete API_REQUEST_DEADLINE
 * seconds after that; libmicrohttpd then closes it as a dead peer.
 *
 * HTTPS uses GnuTLS through libmicrohttpd (TLS 1.2 and 1.3, forward-secret
 * AEAD suites only); with restapi.cafile it asks for a client certificate,
 * which the dispatch judges (restapi.verify_client). The fuzzer drives the
 * same glue without a listening socket (api_external_*).
 */
#include "agent/api.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "agent/api_internal.h"
#include "agent/clock.h"
#include "agent/config.h"
#include "agent/jsonf.h"
#include "agent/log.h"

#define API_CONNECTION_TIMEOUT 5  /* seconds an idle client may hold a connection */
#define API_HEADER_DEADLINE 5.0   /* seconds from accept (or the previous answer) to complete headers */
#define API_REQUEST_DEADLINE 15.0 /* seconds from the same point to a complete body */
#define API_REAP_INTERVAL 0.25    /* seconds between two passes of the deadline reaper */
#define API_THREADS 8             /* libmicrohttpd worker threads */
#define API_CONNECTION_MAX 16384  /* total connections, at most (also bounded by RLIMIT_NOFILE) */
#define API_FD_RESERVE 256        /* descriptors left for the agent's other work */

/* GnuTLS priorities of the HTTPS server: TLS 1.2 and 1.3 only; in TLS 1.2
 * only forward-secret ECDHE key exchange with AEAD ciphers (no CBC, no RSA
 * key transport, no SHA-1 MACs). */
#define API_TLS_PRIORITIES                                                                                     \
	"SECURE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM:" \
	"+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:%SAFE_RENEGOTIATION"

/* libmicrohttpd changed the handler's return type to enum MHD_Result in 0.9.71. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result api_mhd_result;
#else
typedef int api_mhd_result;
#endif

/* ---- libmicrohttpd glue ---------------------------------------------------- */

/* What one request accumulates between the handler's calls. */
struct api_conn {
	char *query; /* raw query string (NULL = none) */
	char *body;
	size_t body_len;
	bool started; /* the handler saw the headers */
	bool too_large;
	bool answered; /* a reply was queued early (413) */
};

/* ---- connections and the header deadline ---------------------------------- */

/* MHD_OPTION_NOTIFY_CONNECTION: links a new connection into the list the
 * reaper walks, and unlinks it when MHD closes it. MHD calls the CLOSED
 * notification before it closes the socket, so under sock_mu the reaper
 * never shuts down a descriptor that was reused. */
static void api_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                  enum MHD_ConnectionNotificationCode toe)
{
	struct api_server *s = cls;
	struct api_sock *k = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (k || !ci)
			return;
		k = calloc(1, sizeof(*k));
		if (!k)
			return; /* untracked: MHD's inactivity timeout still applies */
		k->fd = ci->connect_fd;
		k->since = clk_mono();
		pthread_mutex_lock(&s->sock_mu);
		k->next = s->socks;
		if (s->socks)
			s->socks->prev = k;
		s->socks = k;
		pthread_mutex_unlock(&s->sock_mu);
		*socket_context = k;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	if (k->prev)
		k->prev->next = k->next;
	else
		s->socks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&s->sock_mu);
	free(k);
	*socket_context = NULL;
}

/* The handler saw a request's headers (answered false) or queued its
 * reply (answered true). */
static void sock_mark(struct api_server *s, struct MHD_Connection *conn, bool answered)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct api_sock *k = ci ? ci->socket_context : NULL;

	if (!k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	k->have_headers = true;
	if (answered)
		k->answered = true;
	pthread_mutex_unlock(&s->sock_mu);
}

/* A request ended: the next one's headers get a fresh deadline. */
static void sock_request_done(struct api_server *s, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct api_sock *k = ci ? ci->socket_context : NULL;

	if (!k)
		return;
	pthread_mutex_lock(&s->sock_mu);
	k->have_headers = false;
	k->answered = false;
	k->since = clk_mono();
	pthread_mutex_unlock(&s->sock_mu);
}

/* Shuts down the sockets of connections past their deadline; their
 * worker thread then sees end-of-file and closes them. */
static void *api_reaper(void *arg)
{
	struct api_server *s = arg;
	double last_report = clk_mono();
	uint64_t reported = 0;

	pthread_mutex_lock(&s->sock_mu);
	while (!s->reaper_stop) {
		struct timespec until;
		double now = clk_mono();

		for (struct api_sock *k = s->socks; k; k = k->next) {
			double limit = k->have_headers ? API_REQUEST_DEADLINE : API_HEADER_DEADLINE;

			if (k->reaped || k->answered || now - k->since <= limit)
				continue;
			shutdown(k->fd, SHUT_RDWR);
			k->reaped = true;
			s->reaped++;
		}
		/* Once a minute at most, so an attack does not flood the log. */
		if (s->reaped != reported && now - last_report >= 60.0) {
			log_info("REST API: closed %" PRIu64 " connection(s) that did not send a request within %.0f s "
			         "(headers) or %.0f s (body)",
			         s->reaped - reported, API_HEADER_DEADLINE, API_REQUEST_DEADLINE);
			reported = s->reaped;
			last_report = now;
		}
		clk_wall_after(API_REAP_INTERVAL, &until);
		pthread_cond_timedwait(&s->sock_cv, &s->sock_mu, &until);
	}
	pthread_mutex_unlock(&s->sock_mu);
	return NULL;
}

/* MHD's error messages: captured into start_err while the daemon starts (so
 * the caller learns why a bind failed), otherwise debug lines. */
static void api_mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct api_server *s = cls;
	char line[256];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	pthread_mutex_lock(&s->mu);
	if (s->starting) {
		if (!s->start_err[0])
			snprintf(s->start_err, sizeof(s->start_err), "%s", line);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	log_debug("REST API: %s", line);
}

/* Called with the raw request URI before it is parsed: keeps the query
 * string exactly as sent (MHD would hand it over decoded and split). Its
 * return value becomes the request's context. */
static void *api_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct api_conn *cc = calloc(1, sizeof(*cc));
	const char *q = uri ? strchr(uri, '?') : NULL;

	(void)cls;
	(void)conn;
	if (cc && q) {
		cc->query = strdup(q + 1);
		if (!cc->query) {
			free(cc);
			return NULL;
		}
	}
	return cc;
}

static void api_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
	struct api_conn *cc = *con_cls;

	(void)toe;
	sock_request_done(cls, conn);
	if (!cc)
		return;
	free(cc->query);
	free(cc->body);
	free(cc);
	*con_cls = NULL;
}

/* Sends a reply; MHD_NO (the connection is closed) when it cannot. */
static api_mhd_result send_reply(struct MHD_Connection *conn, struct api_reply *r)
{
	struct MHD_Response *resp;
	api_mhd_result ret;

	if (!r->body)
		return MHD_NO; /* out of memory */
	resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	r->body = NULL; /* MHD frees it now */
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (r->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) != MHD_YES) ||
	    (r->authenticate && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	                                                "Basic realm=\"baton\", charset=\"UTF-8\"") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, r->code, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Counts the headers that must appear at most once. */
struct header_count {
	unsigned int host, content_length, transfer_encoding;
	bool te_other; /* a Transfer-Encoding other than exactly "chunked" */
};

static api_mhd_result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_count *c = cls;

	(void)kind;
	if (!key)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		c->host++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		c->content_length++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		c->transfer_encoding++;
		/* "gzip, chunked" and the like: a proxy may frame it otherwise */
		c->te_other |= !value || strcasecmp(value, "chunked") != 0;
	}
	return MHD_YES;
}

/* What makes a request ambiguous to a proxy in front of us (request
 * smuggling) or to us; NULL when none. */
static const char *framing_error(struct MHD_Connection *conn)
{
	struct header_count c = { 0, 0, 0, false };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &c);
	if (c.host > 1)
		return "more than one Host header";
	if (c.content_length > 1)
		return "more than one Content-Length header";
	if (c.content_length && c.transfer_encoding)
		return "both Content-Length and Transfer-Encoding";
	if (c.transfer_encoding > 1)
		return "more than one Transfer-Encoding header";
	if (c.te_other)
		return "a Transfer-Encoding other than exactly \"chunked\"";
	return NULL;
}

/* The client's address as text ("unknown" when MHD has none). */
static void client_address(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t salen;

	snprintf(out, len, "unknown");
	if (!sa)
		return;
	salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, salen, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, len, "unknown");
}

/* TLS: whether the client presented a certificate that verifies against
 * the trust MHD was given (restapi.cafile), and its subject DN (control
 * characters replaced) into subject. */
static bool client_cert(struct MHD_Connection *conn, char *subject, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { NULL, 0 };
	unsigned int status = 0, n = 0;

	subject[0] = '\0';
	if (!session || gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
		return false;
	if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0)
		return false;
	certs = gnutls_certificate_get_peers(session, &n);
	if (!certs || n == 0)
		return false;
	if (gnutls_x509_crt_init(&crt) == GNUTLS_E_SUCCESS) {
		if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
		    gnutls_x509_crt_get_dn2(crt, &dn) == GNUTLS_E_SUCCESS) {
			snprintf(subject, len, "%.*s", (int)dn.size, (const char *)dn.data);
			gnutls_free(dn.data);
		}
		gnutls_x509_crt_deinit(crt);
	}
	for (char *c = subject; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (!subject[0])
		snprintf(subject, len, "(certificate without a subject)");
	return true;
}

static api_mhd_result handle_and_send(struct api_server *s, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, struct api_conn *cc)
{
	struct api_request rq;
	struct api_reply r;
	api_mhd_result ret;
	char client[64], subject[256];

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = url;
	rq.query = cc->query;
	rq.version = version;
	rq.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	rq.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	rq.origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	rq.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	rq.framing_error = framing_error(conn);
	client_address(conn, client, sizeof(client));
	rq.client = client;
	rq.tls = s->tls_cert != NULL;
	if (rq.tls && s->tls_trust) {
		rq.client_cert_verified = client_cert(conn, subject, sizeof(subject));
		if (rq.client_cert_verified)
			rq.client_subject = subject;
	}
	rq.body = cc->body;
	rq.body_len = cc->body_len;
	rq.body_too_large = cc->too_large;
	api_handle(s, &rq, &r);
	ret = send_reply(conn, &r);
	api_reply_free(&r);
	return ret;
}

/* A Content-Length above the cap: no need to read the body to refuse it. */
static bool declared_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end = NULL;
	unsigned long long v;

	if (!cl)
		return false;
	errno = 0;
	v = strtoull(cl, &end, 10);
	return errno == ERANGE || (end != cl && v > API_REQUEST_BODY_MAX);
}

static api_mhd_result api_mhd_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
	struct api_server *s = cls;
	struct api_conn *cc = *con_cls;

	if (!cc) {
		/* the URI callback ran out of memory */
		cc = calloc(1, sizeof(*cc));
		if (!cc)
			return MHD_NO;
		*con_cls = cc;
	}
	if (!cc->started) {
		/* Headers only: the header deadline is met. Refuse a declared
		 * oversized body or an ambiguous framing before reading the body
		 * (MHD then neither sends 100 Continue nor reads on). */
		cc->started = true;
		sock_mark(s, conn, false);
		if (framing_error(conn)) {
			cc->answered = true;
			return handle_and_send(s, conn, url, method, version, cc);
		}
		if (declared_too_large(conn)) {
			cc->too_large = true;
			cc->answered = true;
			return handle_and_send(s, conn, url, method, version, cc);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (cc->answered || cc->too_large)
			return MHD_YES; /* drop what comes after the cap */
		if (n > API_REQUEST_BODY_MAX - cc->body_len) {
			/* A chunked body that grew past the cap: forget it. */
			cc->too_large = true;
			free(cc->body);
			cc->body = NULL;
			cc->body_len = 0;
			return MHD_YES;
		}
		{
			char *p = realloc(cc->body, cc->body_len + n + 1);

			if (!p)
				return MHD_NO;
			cc->body = p;
			memcpy(cc->body + cc->body_len, upload_data, n);
			cc->body_len += n;
			cc->body[cc->body_len] = '\0';
		}
		return MHD_YES;
	}
	if (cc->answered)
		return MHD_YES;
	cc->answered = true;
	sock_mark(s, conn, true);
	return handle_and_send(s, conn, url, method, version, cc);
}

/* ---- starting and stopping ------------------------------------------------ */

/* Resolves "host:port" into addr (the first address getaddrinfo gives). */
static bool resolve_listen(const char *listen, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
                           size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char portbuf[16];
	char *host = NULL;
	int port = 0, rc;

	if (!listen || !config_split_hostport(listen, &host, &port) || port < 0 || port > 65535) {
		jsonf_set_err(err, errlen, "listen address \"%s\": expected host:port", listen ? listen : "");
		free(host);
		return false;
	}
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* "*" and "" mean every IPv4 address, as in Patroni's listen. */
	rc = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, portbuf, &hints, &res);
	if (rc != 0 || !res) {
		jsonf_set_err(err, errlen, "listen address \"%s\": %s", listen, rc ? gai_strerror(rc) : "no address");
		free(host);
		if (res)
			freeaddrinfo(res);
		return false;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	free(host);
	return true;
}

/* Raises the soft limit on open files to the hard one; returns the soft
 * limit in force. */
static rlim_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("REST API: raised the open files limit from %lu to %lu", (unsigned long)old,
			          (unsigned long)rl.rlim_cur);
		else if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return 1024;
	}
	return rl.rlim_cur;
}

/* Logs, at every start, what this node's write rules amount to when they
 * are not the safe default. */
static void warn_write_rules(const struct api_server *s)
{
	if (s->allow_unauth) {
		log_warn("REST API: INSECURE: restapi.allow_unauthenticated_writes = true: anyone who reaches this "
		         "port can change the cluster (PATCH /config, switchover, failover, restart, reinit)");
		return;
	}
	if (!s->tls_cert)
		log_warn("REST API: writes are refused: this node serves plain HTTP (no restapi.certfile), over "
		         "which no credentials authorise a write; %s",
		         WRITE_CREDENTIALS_HINT);
	else if (!s->auth_expected && s->verify == VERIFY_NONE)
		log_warn("REST API: writes are refused: neither restapi.authentication nor restapi.verify_client "
		         "is set; %s",
		         WRITE_CREDENTIALS_HINT);
}

struct api_server *api_start_opts(const struct api_options *opts, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = 0;
	struct api_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	unsigned int limit, per_ip;
	rlim_t nofile;
	struct MHD_OptionItem tls_opts[5];
	size_t n_tls = 0;

	if (!opts || !resolve_listen(opts->listen, &addr, &addrlen, err, errlen))
		return NULL;
	s = api_server_new(opts, err, errlen);
	if (!s)
		return NULL;
	/* epoll where it exists (Linux), poll elsewhere: no FD_SETSIZE cap. */
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (s->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			jsonf_set_err(err, errlen, "restapi.certfile: this libmicrohttpd has no TLS support");
			api_stop(s);
			return NULL;
		}
		flags |= MHD_USE_TLS;
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert };
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key };
		tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
			                                     (void *)API_TLS_PRIORITIES };
		/* A trust list makes MHD ask for (not require) a client
		 * certificate; the handler checks it. */
		if (s->tls_trust)
			tls_opts[n_tls++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_trust };
	}
	tls_opts[n_tls] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	/* Two descriptors per connection at worst (its socket, and the epoll
	 * registrations are free); keep a reserve for the agent. */
	nofile = raise_nofile();
	limit = nofile > API_FD_RESERVE + 64 ? (unsigned int)(nofile - API_FD_RESERVE) : 64;
	if (limit > API_CONNECTION_MAX)
		limit = API_CONNECTION_MAX;
	per_ip = limit / 4 > 16 ? limit / 4 : 16;
	s->starting = true; /* no MHD thread yet: no lock needed */
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, api_mhd_handler, s, MHD_OPTION_SOCK_ADDR,
	                             (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)API_THREADS,
	                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT,
	                             MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
	                             MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_logger,
	                             s, MHD_OPTION_URI_LOG_CALLBACK, api_uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED,
	                             api_completed_cb, s, MHD_OPTION_NOTIFY_CONNECTION, api_notify_connection, s,
	                             MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
	pthread_mutex_lock(&s->mu);
	s->starting = false;
	pthread_mutex_unlock(&s->mu);
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "cannot listen on %s: %s", opts->listen,
		              s->start_err[0] ? s->start_err : "libmicrohttpd refused to start");
		api_stop(s);
		return NULL;
	}
	if (pthread_create(&s->reaper, NULL, api_reaper, s) != 0) {
		jsonf_set_err(err, errlen, "cannot start the REST API's connection reaper thread");
		api_stop(s);
		return NULL;
	}
	s->reaper_running = true;
	log_info("REST API: %u worker threads, at most %u connections (%u per client address), headers due "
	         "within %.0f s%s",
	         (unsigned int)API_THREADS, limit, per_ip, API_HEADER_DEADLINE,
	         s->tls_cert ? (s->verify == VERIFY_REQUIRED   ? ", TLS 1.2+ with client certificates required"
	                        : s->verify == VERIFY_OPTIONAL ? ", TLS 1.2+ with client certificates verified"
	                                                       : ", TLS 1.2+")
	                     : "");
	warn_write_rules(s);
	return s;
}

struct api_server *api_start(const char *listen, const char *pg_conninfo, char *err, size_t errlen)
{
	struct api_options o;

	memset(&o, 0, sizeof(o));
	o.listen = listen;
	o.pg_conninfo = pg_conninfo;
	return api_start_opts(&o, err, errlen);
}

/* ---- driving the glue without a listening socket (the HTTP fuzzer) ---------- */

bool api_external_start(struct api_server *s, char *err, size_t errlen)
{
	if (!s || s->daemon) {
		jsonf_set_err(err, errlen, "no server, or one already running");
		return false;
	}
	s->starting = true;
	s->daemon = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, api_mhd_handler, s,
	                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT,
	                             MHD_OPTION_EXTERNAL_LOGGER, api_mhd_logger, s, MHD_OPTION_URI_LOG_CALLBACK,
	                             api_uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED, api_completed_cb, s,
	                             MHD_OPTION_NOTIFY_CONNECTION, api_notify_connection, s, MHD_OPTION_END);
	s->starting = false;
	if (!s->daemon) {
		jsonf_set_err(err, errlen, "libmicrohttpd: %s", s->start_err[0] ? s->start_err : "refused to start");
		return false;
	}
	return true;
}

bool api_external_add(struct api_server *s, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	return s && s->daemon && MHD_add_connection(s->daemon, fd, addr, addrlen) == MHD_YES;
}

unsigned int api_external_run(struct api_server *s)
{
	const union MHD_DaemonInfo *di;

	if (!s || !s->daemon)
		return 0;
	(void)MHD_run(s->daemon);
	di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di ? di->num_connections : 0;
}

void api_stop(struct api_server *s)
{
	if (!s)
		return;
	/* A POST /restart waiting for the loop's report answers now. */
	pthread_mutex_lock(&s->mu);
	s->restart_stopping = true;
	pthread_cond_broadcast(&s->restart_cv);
	pthread_mutex_unlock(&s->mu);
	/* Stopping joins the MHD threads, so nothing uses s->pg or s->etcd
	 * afterwards; the reaper goes first, so it never touches a socket MHD
	 * is closing on its way out. */
	if (s->reaper_running) {
		pthread_mutex_lock(&s->sock_mu);
		s->reaper_stop = true;
		pthread_cond_signal(&s->sock_cv);
		pthread_mutex_unlock(&s->sock_mu);
		pthread_join(s->reaper, NULL);
	}
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	api_server_free(s);
}
