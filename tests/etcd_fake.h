/*
 * etcd_fake.h - a tiny fake HTTP server for the etcd client's unit tests.
 *
 * It listens on a free loopback port in its own thread and answers each
 * connection with the next canned step a test queued: a plain HTTP answer,
 * raw bytes written in pieces with pauses (to split a watch stream across
 * chunks), a huge body, or silence until the client gives up. It records
 * every request (path, headers, body) so a test can check what the client
 * sent. One request per connection ("Connection: close").
 */
#ifndef BATON_TESTS_ETCD_FAKE_H
#define BATON_TESTS_ETCD_FAKE_H

#include <stddef.h>

enum fake_kind {
	FAKE_HTTP, /* status + body, with Content-Length */
	FAKE_RAW,  /* pieces written as given, pause_ms between them, then close */
	FAKE_HUGE, /* 200 with a body of huge_len bytes, no Content-Length */
	FAKE_HANG, /* read the request, never answer (until the client leaves) */
};

#define FAKE_MAX_PIECES 16

struct fake_step {
	enum fake_kind kind;
	int status;                          /* FAKE_HTTP */
	const char *body;                    /* FAKE_HTTP */
	const char *pieces[FAKE_MAX_PIECES]; /* FAKE_RAW, NULL-terminated */
	int pause_ms;                        /* FAKE_RAW */
	size_t huge_len;                     /* FAKE_HUGE */
};

struct fake_server;

/* Starts a server on 127.0.0.1:<free port>; NULL on failure. */
struct fake_server *fake_start(void);
/* Stops the thread, closes everything, frees fs (NULL is fine). */
void fake_stop(struct fake_server *fs);
/* "http://127.0.0.1:PORT" (owned by fs). */
const char *fake_url(const struct fake_server *fs);
/* Queues a step (copied; strings are copied too). */
void fake_push(struct fake_server *fs, const struct fake_step *step);
/* Shortcut for FAKE_HTTP. */
void fake_push_http(struct fake_server *fs, int status, const char *body);
/* How many requests arrived so far. */
size_t fake_n_requests(struct fake_server *fs);
/* A malloc'd copy of request i (0-based): "PATH\nHEADERS\n\nBODY", or NULL. */
char *fake_request(struct fake_server *fs, size_t i);

/* A chunk of chunked transfer encoding holding s: malloc'd "len\r\ns\r\n". */
char *fake_chunk(const char *s);

#endif
