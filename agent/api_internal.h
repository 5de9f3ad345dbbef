/*
 * api_internal.h - the REST API's request handling without sockets, for
 * tests and the fuzzers (tests/fuzz/fuzz_api.c, fuzz_http.c), and what the
 * API's files (agent/api*.c) share. Not for the agent's other modules: they
 * use api.h.
 *
 * The API is two layers. api_handle() (api.c) is the whole of the API's
 * logic: it takes one request already read off the wire (method, decoded
 * path, raw query string, the headers that matter, what the transport
 * knows of the client: address, TLS, verified certificate; body bytes) and
 * the server's state, and fills one reply (status code, content type,
 * body). Every refusal (framing, Host, Origin, credentials, content type)
 * is decided there, so tests and the fuzzer reach it. The libmicrohttpd
 * glue (api_http.c) only reads requests into a struct api_request, caps the
 * body, and sends the reply. A server made with api_server_new() has the
 * state and the etcd client but listens nowhere, so a test or a fuzzer can
 * call api_handle() directly, or hand libmicrohttpd raw connections
 * (api_external_*).
 */
#ifndef BATON_API_INTERNAL_H
#define BATON_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/dcs.h"
#include "agent/parse.h"

/* The largest request body read; a larger one is answered 413 unread. */
#define API_REQUEST_BODY_MAX (64 * 1024)

struct api_request {
	const char *method;         /* as sent, e.g. "GET" (case-sensitive, as HTTP says) */
	const char *path;           /* percent-decoded path without the query, e.g. "/replica" */
	const char *query;          /* raw query string after '?' (NULL or "" = none) */
	const char *authorization;  /* the Authorization header's value (NULL = absent) */
	const char *version;        /* "HTTP/1.1", "HTTP/1.0" (NULL = unknown: not checked) */
	const char *host;           /* the Host header (NULL = absent) */
	const char *origin;         /* the Origin header (NULL = absent) */
	const char *content_type;   /* the Content-Type header (NULL = absent) */
	const char *framing_error;  /* the transport saw a malformed request (duplicate Host or
				    * Content-Length, Content-Length with Transfer-Encoding): 400 with it */
	const char *client;         /* the peer's address, for the write log (NULL = "unknown") */
	bool tls;                   /* the request came over TLS */
	bool client_cert_verified;  /* TLS: the client's certificate verified against restapi.cafile */
	const char *client_subject; /* its subject DN (NULL = none) */
	const char *body;           /* body_len bytes, not NUL-terminated, may hold NULs (NULL if none) */
	size_t body_len;
	bool body_too_large; /* the transport stopped reading past API_REQUEST_BODY_MAX */
};

struct api_reply {
	unsigned int code;
	const char *content_type; /* static string */
	char *body;               /* malloc'd, NUL-terminated (NULL only when out of memory) */
	size_t body_len;
	const char *allow; /* static: the Allow header (405 answers), else NULL */
	bool authenticate; /* add WWW-Authenticate: Basic (401 answers) */
};

/* A server with the state of api_start_opts (options checked, TLS files
 * read, etcd client made, the names the Host header may carry) that
 * listens nowhere; opts->listen only contributes its host to those names.
 * Free with api_stop(). NULL + err on failure. */
struct api_server *api_server_new(const struct api_options *opts, char *err, size_t errlen);

/* Answers one request; out is overwritten (free it with api_reply_free).
 * Never fails: out of memory gives a reply with body NULL. Safe to call
 * from several threads at once (libmicrohttpd's pool does): the Postgres
 * connection and the etcd client each have their own mutex, which the
 * health checks never take. */
void api_handle(struct api_server *s, const struct api_request *rq, struct api_reply *out);
void api_reply_free(struct api_reply *r);

/* The HTTP-path fuzzer's way in: the server's libmicrohttpd daemon with the
 * same callbacks as api_start_opts (URI, handler, completion, connection
 * notifications) but no listening socket and no thread. The caller hands it
 * connected sockets (api_external_add; MHD owns and closes fd, even on
 * failure) and drives it with api_external_run(), which does one
 * non-blocking pass and returns how many connections remain. api_stop()
 * stops it. Single-threaded use only. */
bool api_external_start(struct api_server *s, char *err, size_t errlen);
bool api_external_add(struct api_server *s, int fd, const struct sockaddr *addr, socklen_t addrlen);
unsigned int api_external_run(struct api_server *s);

/* ---- shared by the API's files (agent/api*.c) --------------------------- */

#define JSON_TYPE "application/json"
#define API_HOSTS_MAX 64 /* names kept for the Host check */

#define WRITE_CREDENTIALS_HINT                                                                               \
	"set restapi.authentication with restapi.certfile/keyfile, or restapi.verify_client, or (INSECURE) " \
	"restapi.allow_unauthenticated_writes"

enum api_verify { VERIFY_NONE, VERIFY_OPTIONAL, VERIFY_REQUIRED };

/* One accepted connection, for the header deadline (socket context of
 * MHD_OPTION_NOTIFY_CONNECTION; linked in the server's list under sock_mu). */
struct api_sock {
	struct api_sock *prev, *next;
	int fd;
	double since;      /* monotonic: accepted, or the previous request ended */
	bool have_headers; /* the handler saw this request's headers */
	bool answered;     /* a reply was queued: no deadline until the next request */
	bool reaped;       /* shut down by the reaper */
};

struct api_server {
	struct MHD_Daemon *daemon;

	pthread_mutex_t mu; /* guards everything below up to the marker */
	struct api_status status;
	bool have_status;
	double published_at; /* monotonic time of the last api_publish */
	struct api_metrics metrics;
	struct api_requests requests;
	bool starting; /* MHD messages go to start_err while true */
	char start_err[256];
	/* POST /restart waits for the loop's report (api_restart_report) */
	bool restart_attached;    /* a loop reports restart outcomes */
	bool restart_stopping;    /* api_stop: no report will come, stop waiting */
	uint64_t restart_seq;     /* the last request id handed out */
	uint64_t restart_done_id; /* the last request the loop finished */
	enum api_restart_outcome restart_done_outcome;
	char restart_done_msg[512];
	/* failsafe_mode: closed while the loop takes the leader key, so no
	 * confirmation slips in between its check and its take */
	bool failsafe_closed;
	/* end of mutex-guarded fields */
	pthread_cond_t restart_cv; /* signalled on each report (CLOCK_MONOTONIC) */

	/* Set at creation, read-only afterwards (any handler thread). */
	char *pg_conninfo;        /* NULL: never refresh from Postgres */
	struct etcd_client *etcd; /* NULL: no etcd access configured; used under etcd_mu */
	struct dcs_keys keys;
	char scope[64];
	char *auth_expected; /* "user:password" (NULL = no auth) */
	size_t auth_len;
	char *auth_user;          /* its user, for the write log */
	char *tls_cert, *tls_key; /* PEM text (NULL = plain HTTP) */
	char *tls_trust;          /* PEM CA bundle for client certificates (NULL = none asked) */
	enum api_verify verify;
	bool allow_unauth;          /* restapi.allow_unauthenticated_writes */
	char *hosts[API_HOSTS_MAX]; /* names the Host header may carry (lower case) */
	size_t n_hosts;
	struct parse_net *allowlist; /* restapi.allowlist (NULL: writes from anywhere) */
	size_t n_allowlist;

	pthread_mutex_t pg_mu; /* guards pg (tried, never waited for) */
	struct pg_conn *pg;
	pthread_mutex_t etcd_mu; /* one etcd request of the API at a time */
	/* POST /failsafe asks etcd itself, with timeouts short enough for the
	 * leader's request (its own client, so no other request delays it) */
	struct etcd_client *probe_etcd; /* NULL: no etcd access configured */
	pthread_mutex_t probe_mu;       /* one probe at a time; guards probe_at, probe_ok */
	double probe_at;                /* monotonic end of the last probe (0 none) */
	bool probe_ok;                  /* its answer */

	/* Connections and the deadline reaper. */
	pthread_mutex_t sock_mu; /* guards socks, reaper_stop, reaped */
	pthread_cond_t sock_cv;
	struct api_sock *socks;
	bool reaper_stop, reaper_running;
	pthread_t reaper;
	uint64_t reaped; /* connections shut down for a missed deadline */
};

/* The snapshot the loop last published (and its age in seconds, and the
 * metrics, when asked for); false when none was published yet. */
bool api_snapshot(struct api_server *s, struct api_status *st, double *age, struct api_metrics *m);

/* Frees everything but the daemon (stopped before) and the reaper (joined
 * before): api_stop's last step. */
void api_server_free(struct api_server *s);

/* Replies: root is taken (a new reference, may be NULL on ENOMEM); an
 * error is JSON {"error": "..."}. */
void api_reply_json(struct api_reply *out, unsigned int code, json_t *root);
void api_reply_error(struct api_reply *out, unsigned int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A route's handler (api.c's table): body is the parsed JSON body of a
 * POST, PATCH or PUT (NULL when none), out is zeroed and must be filled. */
typedef void (*api_handler_fn)(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out);
#define API_HANDLER(fn) void fn(struct api_server *s, const struct api_request *rq, json_t *body, struct api_reply *out)
/* api_health.c */
API_HANDLER(api_h_status);
API_HANDLER(api_h_primary);
API_HANDLER(api_h_replica);
API_HANDLER(api_h_read_only);
API_HANDLER(api_h_health);
API_HANDLER(api_h_liveness);
API_HANDLER(api_h_readiness);
API_HANDLER(api_h_sync);
API_HANDLER(api_h_async);
API_HANDLER(api_h_leader);
API_HANDLER(api_h_standby_leader);
API_HANDLER(api_h_read_only_sync);
API_HANDLER(api_h_quorum);
API_HANDLER(api_h_patroni);
/* api_metrics.c */
API_HANDLER(api_h_metrics);
/* api_cluster.c: under the etcd client's mutex */
API_HANDLER(api_h_cluster);
API_HANDLER(api_h_history);
API_HANDLER(api_h_config_get);
API_HANDLER(api_h_config_patch);
API_HANDLER(api_h_config_put);
API_HANDLER(api_h_switchover);
API_HANDLER(api_h_switchover_cancel);
API_HANDLER(api_h_failover);
/* api_cluster.c: requests for the loop */
API_HANDLER(api_h_restart);
API_HANDLER(api_h_restart_cancel);
API_HANDLER(api_h_reload);
API_HANDLER(api_h_reinit);
API_HANDLER(api_h_failsafe);
#undef API_HANDLER

#endif
