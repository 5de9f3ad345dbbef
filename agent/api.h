/*
 * api.h - the node's REST API (libmicrohttpd) and the client the loop uses
 * to ask peers for their state.
 *
 * GET /status answers JSON about this node. Its LSN is fresh: the handler asks
 * the local Postgres (bounded by a short timeout) and falls back to the last
 * snapshot the loop published. Candidates use it during an election to learn
 * whether a peer is ahead (DESIGN.md rule 5).
 *
 * The server runs in libmicrohttpd's own thread; api_publish() is called by
 * the loop every iteration and is the only shared state (mutex-protected).
 */
#ifndef BATON_API_H
#define BATON_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_status {
	char name[64];
	char scope[64];
	char role[16];       /* "primary", "replica", "uninitialized", "stopped" */
	char state[32];
	char leader[64];     /* current leader per etcd ("" if none) */
	bool is_leader;      /* this node holds the leader key */
	bool pg_running;
	uint32_t timeline;
	uint64_t lsn;        /* primary: current; replica: max(receive, replay) */
	uint64_t receive_lsn, replay_lsn;
	bool nofailover;
	double lease_ttl_left; /* seconds left on our leadership (leader only) */
};

struct api_server;

/* Starts listening on "host:port". pg_conninfo (copied) is used by /status to
 * read a fresh LSN when the snapshot says Postgres runs. NULL + err on failure
 * (port in use, bad address). */
struct api_server *api_start(const char *listen, const char *pg_conninfo, char *err, size_t errlen);
void api_publish(struct api_server *s, const struct api_status *st);
void api_stop(struct api_server *s);

/* GET <api_url>/status with a total timeout in seconds. false + err when the
 * peer does not answer 200 with the JSON expected. */
bool api_get_status(const char *api_url, double timeout, struct api_status *out, char *err, size_t errlen);

/* JSON of a status (malloc'd) and back; shared by server and client. */
char *api_status_json(const struct api_status *st);
bool api_status_from_json(const char *json, struct api_status *out, char *err, size_t errlen);

#endif
