/*
 * peer.h - the one HTTP client for members' REST APIs, used by the agent
 * (peer /status checks during an election, the failsafe POST, the
 * switchover's catch-up check) and by batonctl (restart, reload, reinit).
 *
 * Rules every request follows (issue 10):
 *  - only http:// and https:// URLs; any other scheme (file://, dict://,
 *    gopher://...) is refused before a connection is made, with an error
 *    naming the scheme; redirects are never followed;
 *  - https: TLS 1.2 or newer, the server's certificate and host name are
 *    verified against restapi.cafile (the system CAs when unset), and
 *    restapi.client_certfile/keyfile are presented when set;
 *  - basic-auth credentials (restapi.authentication) go over https only:
 *    over http none are sent, and a 401/403 answer then says so;
 *  - every request is bounded by a total timeout, and an answer by
 *    PEER_BODY_MAX bytes; no proxy from the environment is used.
 *
 * Error convention: bool with the reason (naming the URL) in err.
 * Programs call curl_global_init() once in main(); this module never does.
 */
#ifndef BATON_PEER_H
#define BATON_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/api.h"
#include "agent/config.h"

#define PEER_WUR __attribute__((warn_unused_result))
#define PEER_BODY_MAX (64 * 1024) /* largest answer accepted */

/* How to reach peers: borrowed pointers (NULL = unset), valid during a call. */
struct peer_opts {
	const char *cafile;                           /* CA bundle the server must chain to (NULL: system CAs) */
	const char *client_certfile, *client_keyfile; /* presented on https when both set */
	const char *username, *password;              /* basic auth, sent over https only */
};

/* One answer. body: NUL-terminated, malloc'd (caller frees with
 * peer_answer_free); tls: the request went over https with the server's
 * certificate verified. */
struct peer_answer {
	long code;
	char *body;
	size_t len;
	bool tls;
};

/* The client side of cfg->restapi: cafile, client cert and key,
 * authentication. Pointers borrowed from cfg. */
void peer_opts_from_config(const struct baton_config *cfg, struct peer_opts *out);

/* true when url starts with http:// or https:// (any case) and has a host;
 * false + err naming the scheme otherwise. No I/O. */
bool peer_url_allowed(const char *url, char *err, size_t errlen) PEER_WUR;

/* method (GET, POST or DELETE) <api_url><path>; body (JSON, may be NULL) is sent
 * with Content-Type: application/json. Credentials are attached only for
 * POSTs over https. true when an HTTP answer arrived (any code) within
 * timeout seconds: out holds it (free it with peer_answer_free). false +
 * err on a refused URL, a connection or TLS failure (e.g. "SSL peer
 * certificate or SSH remote key was not OK"), a timeout, an answer larger
 * than PEER_BODY_MAX or one holding a NUL byte. */
bool peer_request(const struct peer_opts *o, const char *api_url, const char *method, const char *path,
                  const char *body, double timeout, struct peer_answer *out, char *err, size_t errlen) PEER_WUR;
void peer_answer_free(struct peer_answer *a);

/* Why a non-2xx answer was refused, for messages: "HTTP 403: <its error
 * field or text>", plus a note when credentials were withheld because the
 * URL is plain http. Control characters are escaped. */
void peer_answer_reason(const struct peer_opts *o, const char *api_url, const struct peer_answer *a, char *buf,
                        size_t len);

/* GET <api_url>/status, checked field by field (api_status_from_json).
 * *tls (may be NULL) tells whether it went over verified https. */
bool peer_get_status(const struct peer_opts *o, const char *api_url, double timeout, struct api_status *out, bool *tls,
                     char *err, size_t errlen) PEER_WUR;

/* failsafe_mode: POST <api_url>/failsafe {"leader": NAME}. true when the
 * member confirmed us (HTTP 200). */
bool peer_post_failsafe(const struct peer_opts *o, const char *api_url, const char *leader, double timeout, char *err,
                        size_t errlen) PEER_WUR;

#endif
