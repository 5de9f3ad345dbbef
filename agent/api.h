/*
 * api.h - the node's REST API (libmicrohttpd). The client that asks peers
 * for their state is peer.h.
 *
 * GET /status answers JSON about this node. Its LSN is fresh: the handler asks
 * the local Postgres (bounded by a short timeout) and falls back to the last
 * snapshot the loop published. Candidates use it during an election to learn
 * whether a peer is ahead (DESIGN.md rule 5).
 *
 * The other endpoints (issue "Operate it"):
 *   GET|HEAD|OPTIONS /primary, /replica[?lag=16MB], /read-only,
 *     /health, /liveness, /readiness: 200 or 503 with a small JSON body,
 *     from the last snapshot (/liveness: 503 once no snapshot came for
 *     max(3 * loop_wait, 3 s)); ?lag= that does not parse: 400.
 *   Patroni's paths and codes (issue 13): / = /master = /read-write =
 *     /primary; /leader (the leader key only); /standby-leader (always 503);
 *     /synchronous = /sync, /asynchronous = /async, /read-only-sync,
 *     /quorum; ?tag_KEY=VALUE and ?replication_state= on the replica
 *     checks; GET /patroni (Patroni's status document); PUT /config;
 *     DELETE /switchover; POST /reinitialize = /reinit.
 *   GET /cluster, /history, /config: the cluster's keys, read with the
 *     server's own etcd client (503 when etcd does not answer).
 *   PATCH /config (RFC 7386 merge patch), POST /switchover, /failover:
 *     through ops.h; refusals 409 (the cluster's state) or 400 (the request).
 *   POST /restart {"restart_pending", "postgres_version", "role", "schedule",
 *     "wait"} (all optional): 412 when role differs from the node's; a
 *     schedule is kept by the loop (409 when one is already kept; DELETE
 *     /restart drops it); otherwise the loop restarts Postgres if the
 *     conditions hold and the answer says how it went: 200 restarted, 200
 *     "restart not needed: ...", 503 failed, 202 still in progress after
 *     "wait" seconds. POST /reload (the agent's file and Postgres', as
 *     SIGHUP), /reinit (not on the leader): 202, and the loop takes them
 *     with api_take_requests().
 *   GET /metrics: Prometheus text format 0.0.4 from the last snapshot and
 *     api_publish_metrics().
 * Every answer that is not a success is JSON {"error": "..."}: 404 unknown
 * path, 405 wrong method (with Allow), 413 a body over 64 KiB, 400 malformed
 * JSON or a malformed request (HTTP/1.1 without Host, duplicate or
 * conflicting Content-Length), 421 a Host this node does not answer to.
 * Writes (every method but GET/HEAD/OPTIONS) are accepted only with
 * restapi.allow_unauthenticated_writes, or over TLS with the
 * restapi.authentication credentials or, when no credentials are set, a
 * client certificate verified against restapi.cafile (restapi.verify_client);
 * otherwise 401 (credentials configured but missing or wrong) or 403 with the
 * keys to set. A write also needs Content-Type: application/json (415) and
 * no foreign Origin (403). A refused request changes nothing; every write,
 * accepted or refused, is logged with the client's address and user.
 *
 * The server runs in a pool of libmicrohttpd threads (epoll), with a
 * deadline for a client's headers, a per-address connection limit and a
 * high total limit, so slow or idle clients cannot starve the health
 * checks. api_publish(), api_publish_metrics() and api_take_requests() are
 * the shared state (mutex-protected), called by the loop.
 */
#ifndef BATON_API_H
#define BATON_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd/etcd.h"

struct api_status {
	char name[64];
	char scope[64];
	char role[16]; /* "primary", "replica", "uninitialized", "stopped" */
	char state[32];
	char leader[64]; /* current leader per etcd ("" if none) */
	bool is_leader;  /* this node holds the leader key */
	bool pg_running;
	uint32_t timeline;
	uint64_t lsn; /* primary: current; replica: max(receive, replay) */
	uint64_t receive_lsn, replay_lsn;
	bool nofailover;
	double lease_ttl_left; /* seconds left on our leadership (leader only) */
	/* Added for the operator API (issue "Operate it"): */
	bool paused;                 /* cluster in maintenance mode */
	bool pending_restart;        /* a changed parameter needs a Postgres restart */
	int64_t lag;                 /* replica: bytes behind the leader's last known position (-1 unknown) */
	double loop_wait;            /* seconds, for /liveness */
	bool etcd_ok;                /* the loop's last read of etcd succeeded (POST /failsafe) */
	bool sync_standby;           /* synchronous mode: the sync key names this member */
	bool standby_leader;         /* holds the key of a standby cluster, its Postgres a replica of the other
				      * site (Patroni's role standby_leader) */
	double restart_scheduled_at; /* a scheduled restart is kept for this wall-clock time (0 = none) */
	/* This member's Postgres address as its own config publishes it
	 * (postgresql.connect_address), so that a peer can confirm the member
	 * key in etcd before it sends a password there (agent/member_verify.h). */
	char pg_host[128];
	int pg_port; /* 0: not said */
	/* Added for Patroni's endpoints (issue 13): */
	bool nosync;                 /* tags.nosync */
	int64_t failover_priority;   /* tags.failover_priority */
	bool noloadbalance;          /* tags.noloadbalance: the replica checks answer 503 */
	bool nostream;               /* tags.nostream */
	bool clonefrom;              /* tags.clonefrom */
	char replicatefrom[64];      /* tags.replicatefrom ("" = none) */
	char custom_tags[512];       /* the custom tags as a JSON object (config_tags_json; "" = none) */
	bool sync_quorum;            /* the cluster's synchronous mode is quorum commit */
	char replication_state[24];  /* replica: "streaming" when its WAL receiver streams, else "" */
	bool replay_paused;          /* replica: pg_is_wal_replay_paused() */
	char replayed_timestamp[48]; /* replica: pg_last_xact_replay_timestamp() ("" if none) */
	double dcs_last_seen;        /* wall clock, unix seconds: the loop's last good read of etcd (0 never) */
#define API_WALSENDERS_MAX 16
	int n_walsenders; /* primary: rows of pg_stat_replication (capped) */
	struct api_walsender {
		char usename[64], application_name[64], client_addr[64];
		char state[32], sync_state[16];
		int sync_priority;
	} walsenders[API_WALSENDERS_MAX];
	/* For Patroni's /metrics series (issue 13), all 0/false while Postgres
	 * does not run: */
	int server_version;      /* server_version_num, e.g. 150004 */
	double postmaster_start; /* pg_postmaster_start_time(), unix seconds */
	double replay_timestamp; /* replica: pg_last_xact_replay_timestamp(), unix seconds (0 if none) */
	bool archive_recovery;   /* replica: not streaming, with a restore_command to read WAL from */
	bool failsafe_active;    /* leader: every member confirmed it while etcd is down; replica: it
				  * confirmed such a leader within ttl */
};

/* Counters the loop publishes with each snapshot, for GET /metrics. */
struct api_metrics {
	uint64_t lease_renewals; /* keepalives that succeeded */
	uint64_t lease_renewal_failures;
	double since_last_renewal;    /* seconds since the last good keepalive was sent (-1 no lease) */
	double worst_renewal_latency; /* slowest keepalive round trip since start, seconds */
	double worst_renewal_gap;     /* longest time between two successful keepalives, seconds */
	uint64_t leader_changes;      /* times the leader key's holder changed, as seen by this agent */
	uint64_t loop_iterations;     /* HA loop passes since start (wakes by the watch, keeper, timer...) */
	uint64_t etcd_requests, etcd_failures;
	/* etcd request latency histogram (seconds), cumulative counts per upper bound */
#define API_LATENCY_BUCKETS 8
	uint64_t etcd_latency_le[API_LATENCY_BUCKETS]; /* le 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 */
	uint64_t etcd_latency_count;
	double etcd_latency_sum;
	/* Requests by kind (etcd_request_kind_name), the watch streams
	 * opened included: what an idle agent costs etcd, kind by kind. */
	uint64_t etcd_by_kind[ETCD_REQ_N];
};

/* What a POST asks the loop to do on this node; the loop takes them each
 * iteration (api_take_requests clears them). */
struct api_requests {
	bool restart;
	bool restart_pending_only; /* only if pending_restart */
	uint64_t restart_id;       /* the request's number (api_restart_report answers it) */
	int restart_min_version;   /* only if the running server_version_num is lower (0 = any) */
	double restart_arrived;    /* monotonic time the (latest) restart request arrived */
	double restart_at;         /* wall clock, unix seconds: a scheduled restart (0 = now) */
	char restart_role[16];     /* scheduled: only if the node then has this role ("" = any) */
	bool restart_cancel;       /* DELETE /restart: drop the scheduled restart */
	bool reload;
	bool reinit;
	double failsafe_seen_at; /* monotonic time we last confirmed the leader's failsafe heartbeat (0 none) */
};

struct api_options {
	const char *listen;      /* "host:port" */
	const char *pg_conninfo; /* local Postgres, for fresh LSNs (may be NULL) */
	/* etcd access for /cluster, /history, /config, PATCH /config, POST
	 * /switchover and /failover (the server keeps its own client). */
	const struct etcd_config *etcd;
	const char *namespace_, *scope;
	const char *auth_username, *auth_password; /* basic auth for write endpoints (NULL = none) */
	const char *certfile, *keyfile;            /* HTTPS when set */
	/* Issue 10: who may write, and which names the Host header may carry. */
	const char *connect_address;      /* "host:port" published to peers (NULL = listen) */
	const char *cafile;               /* PEM CA bundle verifying client certificates */
	const char *verify_client;        /* "none" (NULL), "optional" or "required" */
	const char *const *allowed_hosts; /* more Host names accepted */
	size_t n_allowed_hosts;
	bool allow_unauthenticated_writes; /* INSECURE: writes need no credentials */
	const char *const *allowlist;      /* restapi.allowlist: networks writes may come from (none: any) */
	size_t n_allowlist;
};

struct api_server;

/* Starts listening on "host:port". pg_conninfo (copied) is used by /status to
 * read a fresh LSN when the snapshot says Postgres runs. NULL + err on failure
 * (port in use, bad address). */
struct api_server *api_start(const char *listen, const char *pg_conninfo, char *err, size_t errlen);
/* The full form (issue "Operate it"); api_start(listen, conninfo) is the
 * same with only those two options. Everything is copied; the PEM files
 * are read now (NULL + err naming the file when one is missing, unreadable
 * or not PEM; certfile and keyfile go together; verify_client other than
 * "none" needs certfile and cafile), as are the etcd options (the server's
 * client gets short timeouts). Raises the process' RLIMIT_NOFILE soft limit
 * to its hard limit (the connection limit follows from it). Logs a WARN when
 * writes are open (allow_unauthenticated_writes) or refused to everyone
 * (nothing configured that could authorise one). */
struct api_server *api_start_opts(const struct api_options *opts, char *err, size_t errlen);
void api_publish(struct api_server *s, const struct api_status *st);
/* Metrics published with the snapshot (may be called less often). */
void api_publish_metrics(struct api_server *s, const struct api_metrics *m);
/* Takes and clears what POSTs asked of this node since the last call. */
void api_take_requests(struct api_server *s, struct api_requests *out);
/* failsafe_mode: a confirmation (POST /failsafe) promises not to take the
 * leader key within a ttl. The loop closes confirmations before it takes
 * the key, so none slips in between its check and its take, and reopens
 * them when it does not hold the key. api_failsafe_close returns the
 * confirmation not yet taken by api_take_requests (monotonic, 0 none). */
double api_failsafe_close(struct api_server *s);
void api_failsafe_reopen(struct api_server *s);

/* POST /restart answers once the restart is over (bounded by its "wait",
 * default API_RESTART_WAIT_S): the loop calls api_restart_attach() once
 * to say it reports outcomes, then api_restart_report() for each request
 * it finished (id from api_requests.restart_id; a later id also answers
 * the earlier requests merged into it). Without a loop attached POST
 * /restart answers 202 at once. */
#define API_RESTART_WAIT_S 30.0
#define API_RESTART_WAIT_MAX_S 60.0
enum api_restart_outcome {
	API_RESTART_DONE,       /* restarted (message says how it came back) */
	API_RESTART_NOT_NEEDED, /* a condition was false: nothing done */
	API_RESTART_FAILED,     /* refused or did not come back */
};
void api_restart_attach(struct api_server *s);
void api_restart_report(struct api_server *s, uint64_t id, enum api_restart_outcome outcome, const char *message);
void api_stop(struct api_server *s);

/* JSON of a status (malloc'd) and back; shared by server and client. */
char *api_status_json(const struct api_status *st);
bool api_status_from_json(const char *json, struct api_status *out, char *err, size_t errlen);

#endif
