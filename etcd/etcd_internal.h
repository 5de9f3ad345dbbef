/*
 * etcd_internal.h - what the etcd library's files share, and nothing else
 * should use.
 *
 * The library is layered: etcd_codec.c turns etcd's JSON shapes into C
 * (base64, int64-as-string, key-values) and back; etcd_http.c owns libcurl:
 * one POST to one endpoint, failing over across the endpoint list, the auth
 * token, cancellation and the size cap; etcd_kv.c, etcd_lease.c and
 * etcd_watch.c are thin typed wrappers over those two. The HTTP layer is the
 * transport seam: the unit tests point a client at a tiny fake HTTP server
 * on loopback, so every byte the library parses can be chosen by a test.
 */
#ifndef BATON_ETCD_INTERNAL_H
#define BATON_ETCD_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd/etcd.h"

/* The most we accept in one answer (or one line of a watch stream). */
#define ETCD_MAX_BODY ((size_t)8 << 20)

struct etcd_client {
	char **endpoints; /* normalised base URLs, no trailing '/' */
	size_t n_endpoints;
	size_t n_configured; /* the first n_configured came from the config */
	long watch_idle_ms;  /* etcd_config.watch_idle_timeout; 0 = off */
	size_t current;      /* index of the endpoint that answered last */
	long request_timeout_ms;
	long connect_timeout_ms;
	char *cacert, *cert, *key;
	char *username, *password;
	char *token;          /* auth token, NULL until authenticated */
	atomic_bool canceled; /* sticky: set by etcd_client_cancel() */
	/* Request statistics (etcd_client_get_stats); atomics so that another
	 * thread may read them. Latency in microseconds. */
	atomic_uint_fast64_t st_requests, st_failures, st_latency_us;
	atomic_uint_fast64_t st_endpoint_failovers; /* etcd_stats.endpoint_failovers */
	atomic_uint_fast64_t st_le[ETCD_STATS_BUCKETS];
	atomic_uint_fast64_t st_kind[ETCD_REQ_N];
	CURLM *multi; /* owns the connection cache */
	CURL *easy;   /* reused for every transfer */
};

/* Fills err (which may be NULL) and returns st. */
enum etcd_status etcd_error_set(struct etcd_error *err, enum etcd_status st, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The library's monotonic clock (CLOCK_MONOTONIC, as the agent's
 * clk_mono): microseconds and milliseconds, one reader in etcd_client.c. */
int64_t etcd_now_us(void);
int64_t etcd_now_ms(void);

/* Sleeps up to ms, in short steps; returns false early if the client was
 * cancelled. */
bool etcd_sleep_ms(struct etcd_client *c, long ms);

/* Counts one unary request that took us microseconds and ended with st. */
void etcd_stats_record(struct etcd_client *c, const char *path, int64_t us, enum etcd_status st);
/* One more request of kind k (etcd_stats.by_kind). */
void etcd_stats_count(struct etcd_client *c, enum etcd_request_kind k);

/* ---- etcd_codec.c ------------------------------------------------------ */

/* Standard base64 (with padding) of len bytes; malloc'd, NULL on ENOMEM. */
char *etcd_b64_encode(const void *data, size_t len);

/* Decodes standard base64 (padding optional). On success *out is a malloc'd
 * NUL-terminated buffer of *out_len bytes (plus the NUL). Returns ETCD_OK,
 * ETCD_E_PROTOCOL for text that is not base64, or ETCD_E_NOMEM. */
enum etcd_status etcd_b64_decode(const char *in, size_t in_len, char **out, size_t *out_len);

/* Reads obj[name] as an int64 sent as a decimal JSON string (or, leniently,
 * a JSON integer). A missing field reads as 0 (etcd omits default values).
 * Returns false, with why filled, for any other type or text. */
bool etcd_json_i64(const json_t *obj, const char *name, int64_t *out, char *why, size_t why_len);

/* The header revision of an answer (0 when absent). */
bool etcd_json_header_revision(const json_t *obj, int64_t *out, char *why, size_t why_len);

/* A new JSON string holding base64(s[0..len)); NULL on ENOMEM. */
json_t *etcd_json_b64(const char *s, size_t len);

/* A new JSON string holding the decimal text of v; NULL on ENOMEM. */
json_t *etcd_json_i64str(int64_t v);

/* Parses one mvccpb.KeyValue object into kv (zeroed first; the caller frees
 * with etcd_kv_clear). Returns ETCD_OK, ETCD_E_PROTOCOL (why filled) or
 * ETCD_E_NOMEM. */
enum etcd_status etcd_parse_kv(const json_t *j, struct etcd_kv *kv, char *why, size_t why_len);
void etcd_kv_clear(struct etcd_kv *kv);

/* Parses a RangeResponse (header, kvs) into out (zeroed first; freed by
 * etcd_range_result_free even on failure). */
enum etcd_status etcd_parse_range(const json_t *j, struct etcd_range_result *out, char *why, size_t why_len);

/* Parses a MemberListResponse into the voting members' client URLs (see
 * etcd_member_list). On failure nothing is left allocated. */
enum etcd_status etcd_parse_member_list(const json_t *j, char ***client_urls, size_t *n, char *why, size_t why_len);

/* The smallest key greater than every key starting with prefix (etcd's
 * "range_end" for a prefix), malloc'd with its length in *len. An empty
 * prefix, or one of only 0xff bytes, gives "\0" (= no upper bound). */
char *etcd_prefix_end(const char *prefix, size_t prefix_len, size_t *len);

/* ---- etcd_http.c ------------------------------------------------------- */

/*
 * One unary request: POSTs req (JSON, borrowed) to path on the preferred
 * endpoint, moving on to the next endpoint on a connect error, a timeout or
 * a 5xx answer, and re-authenticating once when etcd refuses the token. On
 * ETCD_OK *out is the parsed JSON object of the 200 answer (caller
 * decrefs). etcd's "requested lease not found" becomes ETCD_E_LEASE_NOT_FOUND
 * and a refused token ETCD_E_AUTH. On ETCD_E_HTTP, *grpc_code (may be NULL) receives etcd's error
 * code (-1 if none). Errors name the endpoint and the cause.
 */
enum etcd_status etcd_call(struct etcd_client *c, const char *path, json_t *req, json_t **out, int *grpc_code,
                           struct etcd_error *err);

/* Formats a "the answer was not what we expected" error naming the endpoint
 * that sent it and the request path. Returns ETCD_E_PROTOCOL. */
enum etcd_status etcd_protocol_error(struct etcd_client *c, struct etcd_error *err, const char *path, const char *why);

/*
 * A streaming request (the watch). on_line is called with each complete
 * '\n'-terminated line of a 200 answer, without the '\n' (len may be 0);
 * returning false ends the transfer. Until the stream sets `established`,
 * the answer must start within connect + request timeout; after that the
 * transfer has no total timeout.
 */
struct etcd_stream {
	bool (*on_line)(void *ctx, const char *line, size_t len);
	void *ctx;
	bool established;
	/* Once established: end the transfer with ETCD_E_TIMEOUT when no
	 * byte arrived for this long (0 = never). */
	long idle_timeout_ms;
	bool stopped;     /* out: on_line returned false */
	int grpc_code;    /* out: etcd's code on ETCD_E_HTTP, -1 if none */
	long http_status; /* out */
};

/*
 * Runs one streaming POST on endpoint number ep until the server ends it,
 * on_line stops it, the client is cancelled, or the transport fails.
 * Returns ETCD_OK when the stream ended (cleanly or by on_line); otherwise
 * the transport or HTTP error, naming the endpoint.
 */
enum etcd_status etcd_stream_once(struct etcd_client *c, size_t ep, const char *path, const char *body,
                                  struct etcd_stream *s, struct etcd_error *err);

/* True when a failed request (HTTP status, etcd code, message) means our
 * auth token is missing, invalid or stale and a fresh one may help. */
bool etcd_token_refused(const struct etcd_client *c, long http_status, int grpc_code, const char *message);

/* Drops the token and authenticates again (no-op without credentials). */
enum etcd_status etcd_reauthenticate(struct etcd_client *c, struct etcd_error *err);

#endif
