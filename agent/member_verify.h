/*
 * member_verify.h - confirm a member's Postgres address through its own
 * REST API before any credential is sent there.
 *
 * A member key in etcd says where a member's Postgres listens (host, port)
 * and where its REST API answers (api_url). Whoever can write etcd can
 * rewrite both: pointed at a listener of theirs, a replica would send it
 * the replication password (primary_conninfo, pg_basebackup) or the
 * superuser's (pg_rewind), and libpq answers a cleartext password request.
 * So before the agent connects to a member's Postgres, it asks the member
 * itself: GET <api_url>/status must answer, over https verified against
 * restapi.cafile (agent/peer.h) when this node runs its REST API with TLS,
 * with the member's name and the same Postgres host:port as the key. An
 * attacker who can write etcd but holds no certificate of the cluster's CA
 * cannot answer that.
 *
 * A confirmation is cached per (member, api_url, host, port) for
 * MV_CONFIRM_TTL seconds; any change of the four asks again. A refusal is
 * remembered for MV_RETRY seconds, doubled for each refusal in a row up to
 * MV_RETRY_MAX, so a forged key costs one bounded request now and then
 * (and a genuine member still gets its turn), and its WARN is logged once per change of reason
 * or of what the agent does instead (and again every MV_RELOG seconds
 * while it lasts), also when the refusal comes from the cache.
 *
 * Without TLS on the REST API (restapi.certfile unset) the answer travels
 * in clear and anyone on the path can forge it: the name and address must
 * still match, but mv_startup_note() says at start that it proves little.
 *
 *     mv_judge()          pure: does an answer confirm the key?
 *     mv_cache_*()        pure: the bounded cache
 *     mv_confirm()        asks the member (I/O), using the cache, logs
 *
 * Error convention: bool (true = confirmed); the reason goes to the log
 * (mv_confirm) or into why (mv_judge).
 */
#ifndef BATON_MEMBER_VERIFY_H
#define BATON_MEMBER_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/api.h"
#include "agent/config.h"
#include "agent/ha.h"

#define MV_WUR __attribute__((warn_unused_result))

#define MV_CONFIRM_TTL 60.0 /* seconds a confirmation is trusted */
#define MV_RETRY 2.0        /* seconds before a refused member is asked again, */
#define MV_RETRY_MAX 30.0   /* doubled after each refusal in a row up to this */
#define MV_RELOG 60.0       /* seconds between repeats of the same WARN */
#define MV_TIMEOUT 1.0      /* seconds a /status request may take */
#define MV_CACHE_N 16       /* (member, address) pairs remembered */

enum mv_verdict {
	MV_CONFIRMED,   /* the member answered with the key's name and address */
	MV_INSECURE,    /* TLS is on here but api_url is not https (or the answer came in clear) */
	MV_UNREACHABLE, /* no valid answer (connection, TLS or HTTP failure) */
	MV_MISMATCH,    /* it answered with another name or another address */
};

/* The verdict on member m's key given the answer st of its api_url (NULL
 * when none arrived; then err says why), answer_tls (it came over verified
 * https) and self_tls (this node runs its REST API with TLS). Names compare
 * exactly, hosts ignoring case. why gets a line for the operator, naming
 * the published and the confirmed address. Pure. */
enum mv_verdict mv_judge(const struct ha_member *m, bool self_tls, const struct api_status *st, bool answer_tls,
                         const char *err, char *why, size_t len);

/* One remembered verdict. */
struct mv_entry {
	char name[HA_NAME_MAX];
	char api_url[160];
	char host[128];
	int port;
	bool ok;          /* confirmed (else refused) */
	int refusals;     /* refused this many times in a row */
	double at;        /* monotonic: when it was asked */
	double logged_at; /* monotonic: when its WARN was last logged (0 never) */
	char why[600];    /* refused: the reason last logged */
	char next[160];   /* ... and what the agent did instead */
	int verdict;      /* enum mv_verdict of the last answer */
};

/* Zero it to start; no resources. */
struct mv_cache {
	struct mv_entry e[MV_CACHE_N];
};

/* The entry of m's (name, api_url, host, port), fresh at now (a
 * confirmation younger than MV_CONFIRM_TTL, a refusal younger than its
 * retry interval), or NULL. Pure. */
const struct mv_entry *mv_cache_find(const struct mv_cache *c, const struct ha_member *m, double now);

/* Records a verdict for m's pair (replacing an older one of the same pair,
 * else an empty slot, else the oldest refusal, else the oldest entry) and
 * returns its entry. Pure. */
struct mv_entry *mv_cache_put(struct mv_cache *c, const struct ha_member *m, bool ok, double now);

/* With pg_tls_fallback and postgresql.tls.cafile set, a member that could
 * not be confirmed (no answer, or no address in it: MV_UNREACHABLE) is still
 * allowed (true, with a WARN), as libpq then verifies its certificate
 * before sending any password; a member whose answer contradicts its key
 * (MV_MISMATCH) or that is plain http on a TLS node (MV_INSECURE) never
 * is. Slots pass false: TLS does not stop a forged
 * member from holding WAL. */
/* Is member m's Postgres address (its key in etcd) confirmed by m itself?
 * Uses the cache; else asks GET <api_url>/status with cfg->restapi's
 * client options (bounded by MV_TIMEOUT). On a refusal logs a WARN naming
 * the member, the published and the confirmed address, and next (what the
 * agent does instead, e.g. "keeps waiting"). */
bool mv_confirm(struct mv_cache *c, const struct baton_config *cfg, const struct ha_member *m, double now,
                bool pg_tls_fallback, const char *next) MV_WUR;

/* Is m confirmed in the cache right now (no I/O)? */
bool mv_confirmed(const struct mv_cache *c, const struct ha_member *m, double now);

/* At start: one WARN when the REST API runs without TLS, saying that the
 * confirmation then proves little and what to set. */
void mv_startup_note(const struct baton_config *cfg);

#endif
