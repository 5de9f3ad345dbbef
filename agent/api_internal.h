/*
 * api_internal.h - the REST API's request handling without sockets, for
 * tests and the fuzzers (tests/fuzz/fuzz_api.c, fuzz_http.c). Not for the
 * agent's other modules: they use api.h.
 *
 * api.c is two layers. api_handle() is the whole of the API's logic: it
 * takes one request already read off the wire (method, decoded path, raw
 * query string, the headers that matter, what the transport knows of the
 * client: address, TLS, verified certificate; body bytes) and the server's
 * state, and fills one reply (status code, content type, body). Every
 * refusal (framing, Host, Origin, credentials, content type) is decided
 * there, so tests and the fuzzer reach it. The libmicrohttpd glue in api.c
 * only reads requests into a struct api_request, caps the body, and sends
 * the reply. A server made with api_server_new() has the state and the etcd
 * client but listens nowhere, so a test or a fuzzer can call api_handle()
 * directly, or hand libmicrohttpd raw connections (api_external_*).
 */
#ifndef BATON_API_INTERNAL_H
#define BATON_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "agent/api.h"

/* The largest request body read; a larger one is answered 413 unread. */
#define API_REQUEST_BODY_MAX (64 * 1024)

struct api_request {
	const char *method;        /* as sent, e.g. "GET" (case-sensitive, as HTTP says) */
	const char *path;          /* percent-decoded path without the query, e.g. "/replica" */
	const char *query;         /* raw query string after '?' (NULL or "" = none) */
	const char *authorization; /* the Authorization header's value (NULL = absent) */
	const char *version;       /* "HTTP/1.1", "HTTP/1.0" (NULL = unknown: not checked) */
	const char *host;          /* the Host header (NULL = absent) */
	const char *origin;        /* the Origin header (NULL = absent) */
	const char *content_type;  /* the Content-Type header (NULL = absent) */
	const char *framing_error; /* the transport saw a malformed request (duplicate Host or
				    * Content-Length, Content-Length with Transfer-Encoding): 400 with it */
	const char *client;        /* the peer's address, for the write log (NULL = "unknown") */
	bool tls;                  /* the request came over TLS */
	bool client_cert_verified; /* TLS: the client's certificate verified against restapi.cafile */
	const char *client_subject; /* its subject DN (NULL = none) */
	const char *body;          /* body_len bytes, not NUL-terminated, may hold NULs (NULL if none) */
	size_t body_len;
	bool body_too_large;       /* the transport stopped reading past API_REQUEST_BODY_MAX */
};

struct api_reply {
	unsigned int code;
	const char *content_type;  /* static string */
	char *body;                /* malloc'd, NUL-terminated (NULL only when out of memory) */
	size_t body_len;
	const char *allow;         /* static: the Allow header (405 answers), else NULL */
	bool authenticate;         /* add WWW-Authenticate: Basic (401 answers) */
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

/* A byte count for ?lag=: digits, optional spaces, an optional unit
 * B, kB/KB/k/KiB, MB/M/MiB, GB/G/GiB, TB/T/TiB (powers of 1024, any case).
 * false on anything else, a negative number or an overflow. */
bool api_parse_bytes(const char *s, int64_t *out);

/* A time for scheduled_at: ISO 8601 "YYYY-MM-DDTHH:MM[:SS[.frac]]" with "Z"
 * or a "+HH:MM"/"-HH:MM" offset (a space may stand for the 'T'), or unix
 * seconds in decimal. false on anything else or a date that does not exist. */
bool api_parse_time(const char *s, int64_t *out);

#endif
