/*
 * etcd.h - a small etcd v3 client over the HTTP/JSON gateway (libcurl + jansson).
 *
 * This library knows nothing of Postgres or of baton's key layout: it speaks
 * etcd's v3 JSON API (KV range/put/delete, txn, lease grant/keepalive/revoke,
 * streaming watch) to a list of endpoints, moving to the next endpoint when
 * one fails or times out.
 *
 * Error convention: every call returns an `enum etcd_status` (ETCD_OK == 0)
 * and, when it fails, fills the caller's `struct etcd_error` with a message
 * that names the endpoint and the cause. The library never prints, never
 * exits and never aborts on anything the network sends.
 *
 * Threads: an etcd_client is used by one thread at a time. Create one client
 * per thread (the agent has one for its loop, one for lease keepalives and one
 * for its watch). etcd_client_cancel() is the only call that may be made from
 * another thread.
 *
 * Ownership: results filled by the library (`struct etcd_range_result`) are
 * owned by the caller and released with their _free function. Strings passed
 * in are copied when kept.
 */
#ifndef BATON_ETCD_H
#define BATON_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_WUR __attribute__((warn_unused_result))

enum etcd_status {
	ETCD_OK = 0,
	ETCD_E_UNAVAILABLE,     /* no endpoint answered (connect refused, DNS, reset...) */
	ETCD_E_TIMEOUT,         /* an endpoint did not answer within the request timeout */
	ETCD_E_HTTP,            /* an HTTP status other than 200 (message has status + body excerpt) */
	ETCD_E_PROTOCOL,        /* the answer was not the JSON expected */
	ETCD_E_LEASE_NOT_FOUND, /* lease expired or unknown (keepalive without TTL, or etcd error) */
	ETCD_E_COMPACTED,       /* watch start revision was compacted; re-read, then watch again */
	ETCD_E_CANCELED,        /* etcd_client_cancel() was called */
	ETCD_E_AUTH,            /* authentication failed or was refused */
	ETCD_E_INVALID,         /* bad argument from the caller */
	ETCD_E_NOMEM,
};

struct etcd_error {
	enum etcd_status status;
	char message[512];
};

/* Name of a status code, e.g. "unavailable". Never NULL. */
const char *etcd_status_name(enum etcd_status st);

struct etcd_config {
	/* Base URLs, e.g. "http://127.0.0.1:2379" (a bare "host:port" gets
	 * "http://" prepended). At least one. */
	const char *const *endpoints;
	size_t n_endpoints;
	double request_timeout; /* seconds for one unary request to one endpoint (default 2 if <= 0) */
	double connect_timeout; /* seconds to connect to one endpoint (default 1 if <= 0) */
	/* Optional (may be NULL): TLS and auth, see issue "etcd in production". */
	const char *cacert, *cert, *key;
	const char *username, *password;
	/* When true, etcd_client_new asks the cluster for its members
	 * (etcd_member_list) and appends every client URL not configured yet
	 * to the endpoint list; the configured endpoints always stay, first.
	 * Best effort: a failed discovery leaves the configured list. */
	bool discover_members;
	/* Seconds without any message on an established watch stream after
	 * which etcd_watch drops it and reconnects (to the next endpoint, from
	 * the revision after the last one delivered); 0 = off. The watch asks
	 * etcd for progress notifications, but etcd sends those only every
	 * few minutes: at idle this costs one reconnect per timeout. */
	double watch_idle_timeout;
};

struct etcd_client;

/* Creates a client; copies everything it keeps from cfg. */
enum etcd_status etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out,
                                 struct etcd_error *err) ETCD_WUR;
void etcd_client_free(struct etcd_client *c);
/* The endpoint the client currently prefers (the last one that answered). */
const char *etcd_client_endpoint(const struct etcd_client *c);
/* Change the timeout for unary requests (seconds). */
void etcd_client_set_timeout(struct etcd_client *c, double request_timeout);
/* Thread-safe: makes the call in progress (and the next one) on this client
 * return ETCD_E_CANCELED promptly (within ~100 ms). The flag is sticky: every
 * later call on the client also returns ETCD_E_CANCELED, until
 * etcd_client_free(). Cancel a client only to stop the thread that uses it. */
void etcd_client_cancel(struct etcd_client *c);

/* ---- Statistics -------------------------------------------------------- */

/* Unary requests made by one client (etcd_call: KV, txn, lease; not the
 * watch stream), each counted once however many endpoints it tried. A
 * request that returned anything but ETCD_OK is a failure. Latency is the
 * whole call, in seconds; le[i] counts the requests that took at most
 * ETCD_STATS_BOUNDS[i] seconds (cumulative, as in a Prometheus histogram). */
#define ETCD_STATS_BUCKETS 8
#define ETCD_STATS_BOUNDS                                     \
	{                                                     \
		0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0 \
	}

/* What a request was, by its gateway path (etcd_stats.by_kind). Watch
 * counts the watch streams opened (each reconnect is one), which the other
 * counters leave out. */
enum etcd_request_kind {
	ETCD_REQ_RANGE,
	ETCD_REQ_PUT,
	ETCD_REQ_DELETE,
	ETCD_REQ_TXN,
	ETCD_REQ_LEASE_GRANT,
	ETCD_REQ_KEEPALIVE,
	ETCD_REQ_LEASE_REVOKE,
	ETCD_REQ_WATCH,
	ETCD_REQ_OTHER, /* authentication, member list */
	ETCD_REQ_N
};
/* "range", "put", "delete", "txn", "lease_grant", "keepalive",
 * "lease_revoke", "watch", "other"; never NULL. */
const char *etcd_request_kind_name(enum etcd_request_kind k);

struct etcd_stats {
	uint64_t requests;
	uint64_t failures;
	double latency_sum;
	uint64_t le[ETCD_STATS_BUCKETS];
	uint64_t by_kind[ETCD_REQ_N];
	/* Endpoints that failed a request (unreachable, timed out, 5xx) which
	 * then went on to the next one: a member in trouble even when the
	 * request itself succeeded elsewhere. */
	uint64_t endpoint_failovers;
};

/* A copy of the client's counters since etcd_client_new. Safe to call from
 * any thread while another uses the client (the counters are atomics; the
 * copy may mix two consecutive requests, never tear a number). */
void etcd_client_get_stats(const struct etcd_client *c, struct etcd_stats *out);

/* ---- Cluster ----------------------------------------------------------- */

/*
 * The client URLs of the cluster's voting members (learners and members
 * that have not started yet are left out), in etcd's order, duplicates
 * removed. On ETCD_OK *client_urls is a malloc'd array of *n malloc'd
 * strings, freed with etcd_member_list_free.
 */
enum etcd_status etcd_member_list(struct etcd_client *c, char ***client_urls, size_t *n,
                                  struct etcd_error *err) ETCD_WUR;
void etcd_member_list_free(char **client_urls, size_t n);

/* How many endpoints the client has (configured plus discovered) and the
 * i-th one (normalised base URL), for logs and tests. */
size_t etcd_client_n_endpoints(const struct etcd_client *c);
const char *etcd_client_endpoint_at(const struct etcd_client *c, size_t i);
/* The index of the endpoint the client prefers (etcd_client_endpoint). */
size_t etcd_client_current(const struct etcd_client *c);
/* Makes endpoint number i the one the next request or watch tries first
 * (a watch started on a client just made should start where another
 * client last got answers, not on the first endpoint, which may be a
 * dead or partitioned member). False when i is out of range. */
bool etcd_client_prefer(struct etcd_client *c, size_t i) ETCD_WUR;

/* ---- KV ---------------------------------------------------------------- */

struct etcd_kv {
	char *key;   /* NUL-terminated (key_len bytes before it; a key may hold a NUL) */
	char *value; /* NUL-terminated copy; value_len excludes the NUL */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0 when the key has no lease */
	size_t key_len;
};

struct etcd_range_result {
	int64_t revision; /* header revision of the read */
	bool more;        /* etcd_range with a limit: more keys are in the range */
	size_t n_kvs;
	struct etcd_kv *kvs;
};

/* Frees what the result holds (not the struct itself) and zeroes it. */
void etcd_range_result_free(struct etcd_range_result *r);

/* One key (n_kvs is 0 or 1). */
enum etcd_status etcd_get(struct etcd_client *c, const char *key, struct etcd_range_result *out,
                          struct etcd_error *err) ETCD_WUR;
/* Every key starting with prefix, sorted by key. */
enum etcd_status etcd_get_prefix(struct etcd_client *c, const char *prefix, struct etcd_range_result *out,
                                 struct etcd_error *err) ETCD_WUR;
/*
 * The general range read, for reads that must stay bounded (one answer is
 * at most ETCD_MAX_BODY bytes; a bigger one fails, see etcd_error_too_big):
 * from key (key_len bytes; 0 = strlen) up to range_end (exclusive;
 * range_end_len bytes, 0 = strlen; NULL = key alone; prefix = true: every
 * key starting with key, range_end ignored), at most limit keys (0 = all;
 * out->more says whether the range holds more), at revision (0 = latest),
 * without values when keys_only (value "" then). Sorted by key.
 */
struct etcd_range_req {
	const char *key;
	size_t key_len;
	const char *range_end;
	size_t range_end_len;
	bool prefix;
	int64_t limit;
	int64_t revision;
	bool keys_only;
};
enum etcd_status etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_range_result *out,
                            struct etcd_error *err) ETCD_WUR;
/* True when err says the answer was larger than the client takes (or than
 * etcd's gateway passes on): the same read in smaller pieces may work. */
bool etcd_error_too_big(const struct etcd_error *err);

/* lease 0 = no lease. revision_out may be NULL. */
enum etcd_status etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                          int64_t *revision_out, struct etcd_error *err) ETCD_WUR;
/* deleted_out (may be NULL) receives how many keys were deleted. */
enum etcd_status etcd_delete(struct etcd_client *c, const char *key, int64_t *deleted_out,
                             struct etcd_error *err) ETCD_WUR;

/* ---- Txn --------------------------------------------------------------- */

enum etcd_cmp_target { ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VERSION, ETCD_CMP_VALUE, ETCD_CMP_LEASE };
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS };

struct etcd_compare {
	const char *key;
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	int64_t number;    /* for CREATE, MOD, VERSION, LEASE */
	const char *value; /* for VALUE */
};

enum etcd_op_kind { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_GET };

struct etcd_op {
	enum etcd_op_kind kind;
	const char *key;
	const char *value; /* PUT */
	int64_t lease;     /* PUT; 0 = none */
	/* GET: every key starting with key (prefix), at most limit of them
	 * (0 = all; the range result's `more` says if there are more), without
	 * values (keys_only). */
	bool prefix;
	bool keys_only;
	int64_t limit;
};

struct etcd_txn_result {
	bool succeeded;
	int64_t revision;
	/* One entry per GET op of the branch that ran, in order (others empty). */
	size_t n_ranges;
	struct etcd_range_result *ranges;
};

void etcd_txn_result_free(struct etcd_txn_result *r);

enum etcd_status etcd_txn(struct etcd_client *c, const struct etcd_compare *cmp, size_t n_cmp,
                          const struct etcd_op *success, size_t n_success, const struct etcd_op *failure,
                          size_t n_failure, struct etcd_txn_result *out, struct etcd_error *err) ETCD_WUR;

/* ---- Lease ------------------------------------------------------------- */

/* ttl in whole seconds (etcd raises short TTLs to its minimum). */
enum etcd_status etcd_lease_grant(struct etcd_client *c, int64_t ttl, int64_t *id_out, int64_t *granted_ttl_out,
                                  struct etcd_error *err) ETCD_WUR;
/* One keepalive. ETCD_E_LEASE_NOT_FOUND when the lease is gone.
 * ttl_out (may be NULL) receives the refreshed TTL. */
enum etcd_status etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl_out,
                                      struct etcd_error *err) ETCD_WUR;
/* Revoking deletes every key attached to the lease. A lease already gone is OK. */
enum etcd_status etcd_lease_revoke(struct etcd_client *c, int64_t id, struct etcd_error *err) ETCD_WUR;

/* ---- Watch ------------------------------------------------------------- */

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	const struct etcd_kv *kv; /* valid only during the callback; value empty on DELETE */
};

/* Called for every batch of events. revision = the batch's header revision.
 * Return false to end the watch (etcd_watch then returns ETCD_OK). The
 * callbacks run inside etcd_watch and must not use the same client. */
typedef bool (*etcd_watch_cb)(void *ctx, const struct etcd_event *events, size_t n_events, int64_t revision);

/*
 * Watches key (or every key under it when prefix is true) starting at
 * start_revision (0 = from now). Blocks for as long as the watch runs; on a
 * dropped connection it reconnects (to the next endpoint when one fails),
 * resuming from the revision after the last one delivered, with a short
 * bounded backoff, until the callback returns false (ETCD_OK), the client
 * is cancelled (ETCD_E_CANCELED), the start revision was compacted
 * (ETCD_E_COMPACTED; *last_revision tells where it stood), or
 * max_reconnect_seconds pass without any endpoint accepting the watch
 * (the last connection error; <= 0 means retry until cancelled).
 * on_connected (may be NULL) is called each time a watch stream is
 * established, so the caller can re-read state it may have missed; the
 * client's etcd_client_endpoint then names the member serving the stream.
 * The first stream goes to the client's preferred endpoint.
 */
enum etcd_status etcd_watch(struct etcd_client *c, const char *key, bool prefix, int64_t start_revision,
                            etcd_watch_cb cb, void *ctx, void (*on_connected)(void *ctx), double max_reconnect_seconds,
                            int64_t *last_revision, struct etcd_error *err) ETCD_WUR;

#endif
