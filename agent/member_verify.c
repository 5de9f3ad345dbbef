/*
 * member_verify.c - confirm a member's Postgres address through its own
 * REST API before any credential is sent there (see member_verify.h).
 *
 * The judgement and the cache are pure and unit-tested (tests/check_peer.c);
 * mv_confirm adds the one request and the log line. Everything shown comes
 * from etcd or from a peer, so it is escaped (log_escape) before it is
 * logged or put into a reason.
 */
#include "agent/member_verify.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agent/log.h"
#include "agent/peer.h"

static bool is_https(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0;
}

enum mv_verdict mv_judge(const struct ha_member *m, bool self_tls, const struct api_status *st, bool answer_tls,
                         const char *err, char *why, size_t len)
{
	char name[HA_NAME_MAX * 4], host[128 * 4], url[160 * 4];

	log_escape(m->name, name, sizeof(name), false);
	log_escape(m->host, host, sizeof(host), false);
	log_escape(m->api_url, url, sizeof(url), false);
	if (self_tls && !is_https(m->api_url)) {
		snprintf(why, len,
		         "member %s publishes Postgres at %s:%d and a REST API at %s, which is not https while this "
		         "node runs TLS: its address cannot be confirmed",
		         name, host, m->port, url);
		return MV_INSECURE;
	}
	if (!st) {
		char e[600];

		log_escape(err ? err : "no answer", e, sizeof(e), false);
		snprintf(why, len, "member %s publishes Postgres at %s:%d; its REST API gave no confirmation: %s", name,
		         host, m->port, e);
		return MV_UNREACHABLE;
	}
	if (self_tls && !answer_tls) {
		snprintf(why, len, "member %s publishes Postgres at %s:%d; %s answered without verified TLS", name,
		         host, m->port, url);
		return MV_INSECURE;
	}
	if (strcmp(st->name, m->name) == 0 && !st->pg_host[0]) {
		/* An agent from before /status named its Postgres address
		 * (a rolling upgrade): no confirmation, but no contradiction. */
		snprintf(why, len,
		         "member %s publishes Postgres at %s:%d; its REST API %s does not say where its Postgres "
		         "listens (an older baton?)",
		         name, host, m->port, url);
		return MV_UNREACHABLE;
	}
	if (strcmp(st->name, m->name) != 0 || strcasecmp(st->pg_host, m->host) != 0 || st->pg_port != m->port) {
		char sname[sizeof(st->name) * 4], shost[sizeof(st->pg_host) * 4];

		log_escape(st->name, sname, sizeof(sname), false);
		log_escape(st->pg_host[0] ? st->pg_host : "(none)", shost, sizeof(shost), false);
		snprintf(why, len,
		         "member %s publishes Postgres at %s:%d, but its REST API %s answers as member %s with "
		         "Postgres at %s:%d",
		         name, host, m->port, url, sname, shost, st->pg_port);
		return MV_MISMATCH;
	}
	snprintf(why, len, "member %s: Postgres at %s:%d confirmed by %s", name, host, m->port, url);
	return MV_CONFIRMED;
}

static bool same_pair(const struct mv_entry *e, const struct ha_member *m)
{
	return e->name[0] && strcmp(e->name, m->name) == 0 && strcmp(e->api_url, m->api_url) == 0 &&
	       strcmp(e->host, m->host) == 0 && e->port == m->port;
}

static struct mv_entry *find_pair(const struct mv_cache *c, const struct ha_member *m)
{
	for (size_t i = 0; i < MV_CACHE_N; i++)
		if (same_pair(&c->e[i], m))
			return (struct mv_entry *)&c->e[i];
	return NULL;
}

/* Seconds a refusal is remembered after n in a row. */
static double retry_after(int n)
{
	double t = MV_RETRY;

	for (int i = 1; i < n && t < MV_RETRY_MAX; i++)
		t *= 2;
	return t < MV_RETRY_MAX ? t : MV_RETRY_MAX;
}

const struct mv_entry *mv_cache_find(const struct mv_cache *c, const struct ha_member *m, double now)
{
	const struct mv_entry *e = find_pair(c, m);

	if (!e || now < e->at)
		return NULL;
	if (e->ok)
		return now - e->at < MV_CONFIRM_TTL ? e : NULL;
	return now - e->at < retry_after(e->refusals) ? e : NULL;
}

struct mv_entry *mv_cache_put(struct mv_cache *c, const struct ha_member *m, bool ok, double now)
{
	struct mv_entry *e = find_pair(c, m);

	if (!e) {
		/* An empty slot, else the oldest refusal, else the oldest. */
		e = &c->e[0];
		for (size_t i = 0; i < MV_CACHE_N && e->name[0]; i++) {
			struct mv_entry *x = &c->e[i];

			if (!x->name[0] || (x->ok == e->ok && x->at < e->at) || (!x->ok && e->ok))
				e = x;
		}
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", m->name);
		snprintf(e->api_url, sizeof(e->api_url), "%s", m->api_url);
		snprintf(e->host, sizeof(e->host), "%s", m->host);
		e->port = m->port;
	}
	e->refusals = ok ? 0 : e->refusals + 1;
	e->ok = ok;
	e->at = now;
	return e;
}

bool mv_confirmed(const struct mv_cache *c, const struct ha_member *m, double now)
{
	const struct mv_entry *e = mv_cache_find(c, m, now);

	return e && e->ok;
}

bool mv_confirm(struct mv_cache *c, const struct baton_config *cfg, const struct ha_member *m, double now,
                bool pg_tls_fallback, const char *next)
{
	const struct mv_entry *fresh = mv_cache_find(c, m, now);
	bool self_tls = cfg->restapi.certfile != NULL;
	struct peer_opts po;
	struct api_status st;
	struct mv_entry *e;
	enum mv_verdict v;
	char err[512] = "", why[sizeof(c->e[0].why)];
	bool tls = false, got = false;

	if (fresh && fresh->ok)
		return true;
	if (fresh) {
		/* Refused a moment ago: not asked again, but said again when
		 * the agent now does something else for want of it. */
		e = (struct mv_entry *)fresh;
		snprintf(why, sizeof(why), "%s", e->why);
	} else {
		peer_opts_from_config(cfg, &po);
		/* Over plain http with TLS on here, nothing is asked at all. */
		if (!self_tls || is_https(m->api_url))
			got = peer_get_status(&po, m->api_url, MV_TIMEOUT, &st, &tls, err, sizeof(err));
		v = mv_judge(m, self_tls, got ? &st : NULL, tls, err, why, sizeof(why));
		e = mv_cache_put(c, m, v == MV_CONFIRMED, now);
		e->verdict = v;
		if (v == MV_CONFIRMED) {
			if (e->logged_at > 0)
				log_info("%s", why);
			e->logged_at = 0;
			e->why[0] = e->next[0] = '\0';
			return true;
		}
	}
	/* With Postgres TLS, libpq proves the server against
	 * postgresql.tls.cafile before any password: a member that merely
	 * cannot confirm (its REST API does not answer, or an older agent
	 * answers without an address) may be followed; one whose REST API
	 * contradicts its key, or is plain http on a TLS node, may not. */
	if (pg_tls_fallback && cfg->postgresql.tls_cafile && e->verdict == MV_UNREACHABLE)
		next = "connecting anyway, since Postgres TLS (sslmode=verify-full against postgresql.tls.cafile) "
		       "proves the server before any password is sent";
	else
		pg_tls_fallback = false;
	if (strcmp(e->why, why) != 0 || strcmp(e->next, next) != 0 || e->logged_at <= 0 ||
	    now - e->logged_at >= MV_RELOG) {
		if (pg_tls_fallback)
			log_warn("%s; %s", why, next);
		else
			log_warn("%s; not connecting to its Postgres with any credential: %s", why, next);
		e->logged_at = now;
		snprintf(e->why, sizeof(e->why), "%s", why);
		snprintf(e->next, sizeof(e->next), "%s", next);
	}
	return pg_tls_fallback;
}

void mv_startup_note(const struct baton_config *cfg)
{
	if (cfg->restapi.certfile)
		return;
	log_warn("the REST API runs without TLS (restapi.certfile unset): before sending a password to a member's "
	         "Postgres, this node confirms the member's address through the member's REST API, and over plain "
	         "http that answer proves little (anyone on the path, or whoever can write etcd and run a listener, "
	         "can forge it); set restapi.certfile, restapi.keyfile and restapi.cafile on every node");
}
