/*
 * loop_pgfiles.c - the Postgres files the agent owns: postgresql.conf
 * (the parameters the agent forces, the defaults it sets, the config's,
 * the hot-standby floor), pg_hba.conf, the recovery settings with the
 * conninfo to the leader, standby.signal and the password file. Split
 * from loop.c: what Postgres reads at start, written in one place.
 */
#include "agent/loop_internal.h"

#include <strings.h>

/* May this node connect to host:port as the other site? Not a member of
 * this cluster; and proven by Postgres TLS, or named in the node file
 * (bootstrap.dcs.standby_cluster or postgresql.standby_cluster_remotes).
 * *member: the member at that address, when that is why not. */
static bool remote_trusted(struct loop *L, const char *host, int port, const struct ha_member **member)
{
	const struct baton_config *cfg = L->cfg;
	const struct dcs_settings *own = &cfg->bootstrap_dcs;
	bool usable;

	/* Whatever vouches for it: a member of this very cluster is never the
	 * other site (TLS proves a name, and our members hold certificates of
	 * it too), and a primary told to follow its own replica would demote
	 * the cluster onto itself. */
	*member = ha_member_at(&L->view, host, port);
	if (*member)
		return false;
	usable = ha_standby_remote_proven(cfg->postgresql.tls_cafile != NULL, own->standby_host, (int)own->standby_port,
	                                  host, port);
	/* Or the node file lists it (postgresql.standby_cluster_remotes): the
	 * way to allow a site switchover's remote without Postgres TLS, as
	 * bootstrap.dcs would also seed a new cluster as a standby. */
	for (size_t i = 0; !usable && i < cfg->postgresql.n_standby_remotes; i++) {
		char *h = NULL;
		int p = 0;

		if (config_split_hostport(cfg->postgresql.standby_remotes[i], &h, &p))
			usable = ha_standby_remote_proven(false, h, p, host, port);
		free(h);
	}
	return usable;
}

bool standby_remote_following_untrusted(struct loop *L)
{
	const struct ha_member *m;
	char host[300];
	const char *colon = strrchr(L->lm.following_remote, ':');
	size_t hl;
	long port;
	char *end;

	if (strcmp(L->lm.following, HA_REMOTE) != 0 || !colon)
		return false;
	hl = (size_t)(colon - L->lm.following_remote);
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, L->lm.following_remote, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return false;
	/* Or the last answer of the server there was that it is ours. */
	if (L->remote_probe.ours && strcmp(L->remote_probe.key, L->lm.following_remote) == 0)
		return true;
	return !remote_trusted(L, host, (int)port, &m);
}

/* How long an answer of the remote (remote_is_other_site) holds: one that
 * says it is another site's is asked again after a minute (a changed
 * standby_cluster is asked at once); no answer, for a standby leader (the
 * other site down: each try can hold the loop for the connect timeout),
 * after 30 s; any other after 5 s. */
#define REMOTE_PROBE_OK_FOR 60.0
#define REMOTE_PROBE_SILENT_FOR 30.0
#define REMOTE_PROBE_EVERY 5.0

/* namespace/scope: what baton.cluster says of this member's cluster. */
static void own_cluster_name(const struct baton_config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", cfg->namespace_, cfg->scope);
}

/*
 * The leader asks the remote who it is, over the replication connection it
 * would stream through, before a primary demotes onto it and while a
 * standby leader follows it: SHOW baton.cluster (the agent sets it to
 * namespace/scope) and SHOW cluster_name (the member name). The text of an
 * address cannot tell that LOCALHOST:5433 or a DNS name is one of our own
 * members, and with Postgres TLS any certified address passes
 * remote_trusted. The server's own baton.cluster decides first, whatever
 * the member keys in etcd say (an etcd writer can delete them); a server
 * without it (not baton's, or an older agent) is judged by its name against
 * the members. Two sites often name their members alike (node1, pod-0), so
 * the name alone is not enough when baton.cluster answers.
 * Returns true when it answered as another cluster's; L->remote_probe.ours
 * says whether it answered as one of ours. A refusal is logged once.
 */
static bool remote_is_other_site(struct loop *L, const char *key)
{
	double now = clk_mono();
	char conninfo[4096], full[4200], name[HA_NAME_MAX * 2], said[sizeof(L->standby_unusable_said)];
	char cluster[256] = "", own[256];
	struct pg_conn *c = NULL;
	struct pg_err err;
	bool built, named = false;

	double hold = L->remote_probe.ok                            ? REMOTE_PROBE_OK_FOR
	              : L->remote_probe.ours || L->local.pg_primary ? REMOTE_PROBE_EVERY
	                                                            : REMOTE_PROBE_SILENT_FOR;

	if (strcmp(L->remote_probe.key, key) == 0 && now - L->remote_probe.at < hold)
		return L->remote_probe.ok;
	snprintf(L->remote_probe.key, sizeof(L->remote_probe.key), "%s", key);
	own_cluster_name(L->cfg, own, sizeof(own));
	L->remote_probe.at = now;
	L->remote_probe.ok = L->remote_probe.ours = false;
	L->remote_probe.asking = true;
	built = leader_conninfo(L, HA_REMOTE, true, conninfo, sizeof(conninfo));
	L->remote_probe.asking = false;
	memset(&err, 0, sizeof(err));
	if (!built ||
	    snprintf(full, sizeof(full), "%s replication=true connect_timeout=2", conninfo) >= (int)sizeof(full)) {
		snprintf(err.msg, sizeof(err.msg), "cannot build a connection string for it");
	} else if (!(c = pg_conn_new(full, 2.0))) {
		snprintf(err.msg, sizeof(err.msg), "out of memory");
	} else if (pg_query_scalar(c, "SHOW cluster_name", name, sizeof(name), &err)) {
		/* An error here (no such setting) leaves the connection usable. */
		named = pg_query_scalar(c, "SHOW baton.cluster", cluster, sizeof(cluster), &err);
		if (named)
			L->remote_probe.ours = strcmp(cluster, own) == 0;
		else
			L->remote_probe.ours = ha_find_member(&L->view, name) != NULL;
		L->remote_probe.ok = !L->remote_probe.ours;
	}
	pg_conn_free(c);
	explicit_bzero(conninfo, sizeof(conninfo));
	explicit_bzero(full, sizeof(full));
	if (L->remote_probe.ok)
		return true;
	snprintf(said, sizeof(said), "probe %s", key);
	if (strcmp(said, L->standby_unusable_said) != 0) {
		if (L->remote_probe.ours)
			log_error("standby_cluster names %s, and the server there says it is %s, a member of this cluster "
			          "(%s): refusing it; %s (a standby cluster follows another cluster's primary)",
			          key, name, named ? own : "its cluster_name names one of our members",
			          L->local.pg_primary ? "this primary stays the primary" : "not streaming from it");
		else
			log_error("standby_cluster names %s, but this %s cannot ask it who it is (%s): %s; asking again "
			          "every %.0f s",
			          key, L->local.pg_primary ? "primary" : "standby leader", err.msg,
			          L->local.pg_primary ? "not demoting onto a remote that does not answer"
			                              : "going on as it is",
			          L->local.pg_primary ? REMOTE_PROBE_EVERY : REMOTE_PROBE_SILENT_FOR);
		snprintf(L->standby_unusable_said, sizeof(L->standby_unusable_said), "%s", said);
	}
	return false;
}

bool standby_remote_usable(struct loop *L)
{
	const struct ha_member *m;
	char key[sizeof(L->standby_unusable_said)];

	L->view.standby_unusable_why[0] = '\0';
	if (!L->view.standby_cluster || !L->view.standby_host[0]) {
		L->standby_unusable_said[0] = '\0';
		return false;
	}
	if (remote_trusted(L, L->view.standby_host, L->view.standby_port, &m)) {
		snprintf(key, sizeof(key), "%s:%d", L->view.standby_host, L->view.standby_port);
		/* The leader asks (the one that connects there): a running
		 * primary demotes only onto a remote that answers as another
		 * cluster's; a standby leader stops following one that answers
		 * as ours, and goes on while the other site does not answer. */
		if (is_leader(L) && L->local.pg_running && !L->remote_probe.asking && !remote_is_other_site(L, key) &&
		    (L->local.pg_primary || L->remote_probe.ours)) {
			snprintf(L->view.standby_unusable_why, sizeof(L->view.standby_unusable_why), "%s",
			         L->remote_probe.ours ? "the server there says it is a member of this cluster"
			                              : "it does not answer who it is");
			return false;
		}
		if (!L->remote_probe.asking)
			L->standby_unusable_said[0] = '\0';
		return true;
	}
	if (m) {
		snprintf(L->view.standby_unusable_why, sizeof(L->view.standby_unusable_why),
		         "the Postgres address of member %s", m->name);
		snprintf(key, sizeof(key), "member %s:%d", L->view.standby_host, L->view.standby_port);
		if (strcmp(key, L->standby_unusable_said) != 0) {
			log_error("standby_cluster names %s:%d, the Postgres address of %s, a member of this cluster "
			          "(members/%s): refusing it; a standby cluster follows another cluster's primary. No "
			          "primary_conninfo, base backup or pg_rewind goes there, and a primary stays the "
			          "primary",
			          L->view.standby_host, L->view.standby_port, m->name, m->name);
			snprintf(L->standby_unusable_said, sizeof(L->standby_unusable_said), "%s", key);
		}
		return false;
	}
	snprintf(key, sizeof(key), "%s:%d", L->view.standby_host, L->view.standby_port);
	if (strcmp(key, L->standby_unusable_said) != 0) {
		log_error("standby_cluster names %s, which this node will not connect to: without postgresql.tls "
		          "nothing proves that server is the other site's, and it would receive the replication "
		          "and superuser passwords. No primary_conninfo, base backup or pg_rewind goes there, and a "
		          "primary stays the primary. To use it, turn on postgresql.tls (verify-full, channel "
		          "binding) or list it in this node's file (postgresql.standby_cluster_remotes = "
		          "[\"%s\"])",
		          key, key);
		snprintf(L->standby_unusable_said, sizeof(L->standby_unusable_said), "%s", key);
	}
	return false;
}

/* This member's copy of the last good config key, in its data directory:
 * it goes wherever the data goes, and a copy that arrives with a base
 * backup or a rewind names another member, so it is ignored and replaced. */
#define LASTGOOD_FILE "baton.dcs.json"
#define LASTGOOD_MAX (2 * DCS_VALUE_MAX + 4096)

/* Records the copy at path as ours (what a later stat must still show:
 * a rewind or a clone that replaces it is noticed). */
static void lastgood_note_file(struct loop *L, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return;
	L->lastgood.saved = true;
	L->lastgood.ino = st.st_ino;
	L->lastgood.size = st.st_size;
	L->lastgood.mtime = st.st_mtim;
}

/* Reads data_dir/LASTGOOD_FILE (malloc'ed, NUL-terminated) into *out;
 * false with err set (errno ENOENT kept in *missing). */
static bool lastgood_read(const char *path, char **out, bool *missing, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;
	bool ok = false;

	*out = NULL;
	*missing = false;
	if (!f) {
		*missing = errno == ENOENT;
		snprintf(err, errlen, "%s", strerror(errno));
		return false;
	}
	if (!(buf = malloc(LASTGOOD_MAX + 1))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	n = fread(buf, 1, LASTGOOD_MAX + 1, f);
	if (ferror(f) || n > LASTGOOD_MAX) {
		snprintf(err, errlen, ferror(f) ? "read error" : "larger than %d bytes", LASTGOOD_MAX);
		goto cleanup;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	ok = true;
cleanup:
	free(buf);
	fclose(f);
	return ok;
}

void lastgood_load(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	struct dcs_settings s;
	char path[PATH_MAX], err[512], sum[400], *text = NULL, *raw = NULL;
	int64_t rev = 0;
	bool missing;

	memset(&s, 0, sizeof(s));
	if (snprintf(path, sizeof(path), "%s/%s", cfg->postgresql.data_dir, LASTGOOD_FILE) >= (int)sizeof(path))
		return;
	if (!lastgood_read(path, &text, &missing, err, sizeof(err))) {
		if (!missing)
			log_warn("cannot read %s (this member's last good copy of the config key): %s; using "
			         "bootstrap.dcs until etcd is read",
			         path, err);
		return;
	}
	if (!dcs_lastgood_parse(text, cfg->namespace_, cfg->scope, cfg->name, &rev, &raw, err, sizeof(err))) {
		log_info("%s ignored: %s; using bootstrap.dcs until etcd is read", path, err);
		goto cleanup;
	}
	if (!dcs_config_from_json(raw, &s, err, sizeof(err))) {
		log_warn("%s ignored: the config it holds (revision %lld) is invalid: %s", path, (long long)rev, err);
		goto cleanup;
	}
	(void)dcs_settings_drop_code_params(&s, cfg->postgresql.allow_from_dcs, cfg->postgresql.n_allow_from_dcs, NULL,
	                                    0);
	dcs_settings_summary(&s, sum, sizeof(sum));
	log_info("settings from this member's last good config key (revision %lld, %s) until etcd is read: %s",
	         (long long)rev, path, sum);
	dcs_settings_free(&L->settings);
	L->settings = s;
	free(L->lastgood.raw);
	L->lastgood.raw = raw;
	raw = NULL;
	L->lastgood.revision = rev;
	lastgood_note_file(L, path);
cleanup:
	free(text);
	free(raw);
}

/* Writes the last good key into the data directory unless the copy there
 * is the one we wrote. Never into a data directory that does not exist
 * yet (initdb and pg_basebackup want an empty one) or that a job is
 * writing (a clone, a rewind). */
static void lastgood_save(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	char path[PATH_MAX], version[PATH_MAX], *json;
	struct pg_err err;
	struct stat st;

	if (!L->lastgood.raw || L->job.pid != 0)
		return;
	if (snprintf(path, sizeof(path), "%s/%s", cfg->postgresql.data_dir, LASTGOOD_FILE) >= (int)sizeof(path) ||
	    snprintf(version, sizeof(version), "%s/PG_VERSION", cfg->postgresql.data_dir) >= (int)sizeof(version) ||
	    access(version, F_OK) != 0)
		return;
	if (L->lastgood.saved && stat(path, &st) == 0 && st.st_ino == L->lastgood.ino &&
	    st.st_size == L->lastgood.size && st.st_mtim.tv_sec == L->lastgood.mtime.tv_sec &&
	    st.st_mtim.tv_nsec == L->lastgood.mtime.tv_nsec)
		return;
	L->lastgood.saved = false;
	json = dcs_lastgood_json(cfg->namespace_, cfg->scope, cfg->name, L->lastgood.revision, L->lastgood.raw);
	if (!json || !pg_conf_write_file(cfg->postgresql.data_dir, LASTGOOD_FILE, json, strlen(json), &err)) {
		if (!L->lastgood.save_failed_said)
			log_warn("cannot save the last good config key in %s: %s (a restart while the key is invalid "
			         "or missing would start from bootstrap.dcs)",
			         path, json ? err.msg : "out of memory");
		L->lastgood.save_failed_said = true;
		free(json);
		return;
	}
	free(json);
	L->lastgood.save_failed_said = false;
	lastgood_note_file(L, path);
}

/* The leader puts a deleted config key back from the last good one. */
static void lastgood_restore(struct loop *L, const char *sum)
{
	struct etcd_compare absent = { .key = L->keys.config, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL };
	struct etcd_op put = { .kind = ETCD_OP_PUT, .key = L->keys.config, .value = L->lastgood.raw };
	bool won = false;

	if (!L->lastgood.raw) {
		if (!L->lastgood.said_known || L->lastgood.said != HA_CONFIG_MISSING)
			log_error("the config key %s is missing and this node has no last good copy of it: not writing "
			          "one from bootstrap.dcs (it could change the cluster's mode); keeping %s; write it "
			          "back (batonctl edit-config, or etcdctl put)",
			          L->keys.config, sum);
		return;
	}
	if (txn_simple(L, &absent, 1, &put, 1, &won, "restore the config key") && won)
		log_warn("the config key %s was missing: restored it from the last good settings (revision %lld): "
		         "%s",
		         L->keys.config, (long long)L->lastgood.revision, sum);
}

void lastgood_track(struct loop *L, const struct etcd_range_result *r)
{
	const struct ha_cluster_view *v = &L->view;
	const struct etcd_kv *kv = NULL;
	char sum[400], err[512];
	bool said = L->lastgood.said_known && L->lastgood.said == v->config_key &&
	            (v->config_key != HA_CONFIG_INVALID || L->lastgood.said_rev == v->config_revision);

	for (size_t i = 0; r && i < r->n_kvs; i++)
		if (r->kvs[i].key && strcmp(r->kvs[i].key, L->keys.config) == 0)
			kv = &r->kvs[i];
	dcs_settings_summary(&L->settings, sum, sizeof(sum));
	switch (v->config_key) {
	case HA_CONFIG_VALID:
		if (kv && kv->value &&
		    (!L->lastgood.raw || L->lastgood.revision != kv->mod_revision ||
		     strcmp(L->lastgood.raw, kv->value))) {
			char *copy = strdup(kv->value);

			if (copy) {
				free(L->lastgood.raw);
				L->lastgood.raw = copy;
				L->lastgood.revision = kv->mod_revision;
				L->lastgood.saved = false;
			}
		}
		if (L->lastgood.said_known && L->lastgood.said != HA_CONFIG_VALID)
			log_info("the config key %s is %s (revision %lld): %s", L->keys.config,
			         L->lastgood.said == HA_CONFIG_MISSING ? "there and valid" : "valid again",
			         (long long)v->config_revision, sum);
		lastgood_save(L);
		break;
	case HA_CONFIG_INVALID:
		if (said)
			break;
		err[0] = '\0';
		if (kv && kv->value) {
			struct dcs_settings tmp;

			if (dcs_config_from_json(kv->value, &tmp, err, sizeof(err)))
				dcs_settings_free(&tmp); /* cannot happen: the view refused it */
		}
		if (L->lastgood.raw)
			log_warn("the config key %s is invalid (%s); keeping the last good settings from revision %lld: "
			         "%s",
			         L->keys.config, err[0] ? err : "unreadable", (long long)L->lastgood.revision, sum);
		else
			log_warn("the config key %s is invalid (%s) and this node has no last good copy of it: keeping "
			         "bootstrap.dcs from %s: %s",
			         L->keys.config, err[0] ? err : "unreadable", L->cfg->path, sum);
		break;
	case HA_CONFIG_MISSING:
		/* Only in an initialized cluster: before that the bootstrapper
		 * writes it from bootstrap.dcs (loop_execute.c). */
		if (is_leader(L) && v->init_key_present && !v->init_in_progress) {
			lastgood_restore(L, sum);
		} else if (!said && v->init_key_present) {
			if (L->lastgood.raw)
				log_warn("the config key %s is missing; keeping the last good settings from revision %lld "
				         "(the leader restores it): %s",
				         L->keys.config, (long long)L->lastgood.revision, sum);
			else
				log_warn("the config key %s is missing and this node has no last good copy of it: keeping "
				         "bootstrap.dcs from %s: %s",
				         L->keys.config, L->cfg->path, sum);
		}
		break;
	}
	L->lastgood.said = v->config_key;
	L->lastgood.said_rev = v->config_revision;
	L->lastgood.said_known = true;
}

/* conninfo to reach `leader`'s Postgres: as the replication user (for
 * streaming and pg_basebackup) or as the superuser (for pg_rewind).
 * leader HA_REMOTE: the other site's primary of a standby cluster,
 * standby_cluster.host:port from the config key, reached with this
 * cluster's own credentials and TLS rules (both sites share the
 * replication role: the standby site is a copy of the other). */
bool leader_conninfo(struct loop *L, const char *leader, bool replication, char *buf, size_t len)
{
	const struct baton_config *cfg = L->cfg;
	const bool remote = strcmp(leader, HA_REMOTE) == 0;
	const struct ha_member *m = remote ? NULL : ha_find_member(&L->view, leader);
	char host[300], user[300], pass[PATH_MAX + 8], app[HA_NAME_MAX * 2 + 4], tls[3 * PATH_MAX + 120] = "";
	int n, port;

	if (remote) {
		if (!L->view.standby_cluster || !L->view.standby_host[0]) {
			log_warn("the cluster's config has no standby_cluster.host to replicate from");
			return false;
		}
		if (!L->remote_probe.asking && !standby_remote_usable(L))
			return false; /* standby_remote_usable said why */
		if (!pg_conninfo_quote(L->view.standby_host, host, sizeof(host)))
			return false;
		port = L->view.standby_port;
	} else {
		if (!m || !m->host[0] || m->port <= 0) {
			log_warn("leader %s has not published its address in etcd yet", leader);
			return false;
		}
		/* No password goes to an address the member itself has not
		 * confirmed through its REST API (agent/member_verify.h). */
		if (!mv_confirm(&L->mv, cfg, m, clk_mono(), true,
		                L->postmaster.pid && L->lm.following[0] ? "keeps streaming from its current upstream"
		                                                        : "keeps waiting and asks again"))
			return false;
		if (!pg_conninfo_quote(m->host, host, sizeof(host)))
			return false;
		port = m->port;
	}
	/* Not replication: pg_rewind's source, as the rewind role when set. */
	if (!pg_conninfo_quote(replication                       ? cfg->postgresql.replication_username
	                       : cfg->postgresql.rewind_username ? cfg->postgresql.rewind_username
	                                                         : cfg->postgresql.superuser_username,
	                       user, sizeof(user)) ||
	    !pg_conninfo_quote(cfg->postgresql.pgpass, pass, sizeof(pass)) ||
	    !pg_conninfo_quote(cfg->name, app, sizeof(app)))
		return false;
	/* With postgresql.tls.cafile, libpq verifies the member's certificate
	 * and host name before it sends anything, and refuses a password
	 * exchange without channel binding (cleartext, md5). The node's own
	 * certificate is named as the client certificate, so that libpq never
	 * reads ~/.postgresql/ (the agent's HOME may be anyone's). */
	if (cfg->postgresql.tls_cafile) {
		char ca[PATH_MAX + 8], crt[PATH_MAX + 8], key[PATH_MAX + 8];

		if (!pg_conninfo_quote(cfg->postgresql.tls_cafile, ca, sizeof(ca)) ||
		    !pg_conninfo_quote(cfg->postgresql.tls_certfile, crt, sizeof(crt)) ||
		    !pg_conninfo_quote(cfg->postgresql.tls_keyfile, key, sizeof(key)))
			return false;
		n = snprintf(tls, sizeof(tls),
		             " sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s channel_binding=require", ca,
		             crt, key);
		if (n < 0 || (size_t)n >= sizeof(tls))
			return false;
	}
	n = snprintf(buf, len, "host=%s port=%d user=%s passfile=%s application_name=%s%s connect_timeout=3%s", host,
	             port, user, pass, app, replication ? "" : " dbname=postgres", tls);
	return n > 0 && (size_t)n < len;
}

/* Parameters the agent needs whatever the config says. */
struct forced_param {
	const char *name;
	const char *why;
};

static const struct forced_param forced[] = {
	{ "listen_addresses", "set from postgresql.listen" },
	{ "port", "set from postgresql.listen" },
	{ "unix_socket_directories", "set from postgresql.socket_dir" },
	{ "wal_level", "replicas need at least 'replica'" },
	{ "hot_standby", "replicas answer read-only queries and health checks" },
	{ "wal_log_hints", "pg_rewind needs it" },
	{ "cluster_name", "set to the member name" },
	/* A custom (placeholder) setting: namespace/scope, for the probe of a
	 * standby_cluster remote (remote_is_other_site). */
	{ "baton.cluster", "names this member's cluster (namespace/scope)" },
};

/* Defaults the config may override: enough WAL kept for a replica to catch
 * up after a failover or a short outage without a re-clone. */
static const struct pg_param default_params[] = {
	{ "wal_keep_size", "128MB" },
	{ "max_wal_senders", "10" },
	{ "max_replication_slots", "10" },
	/* A replica gone this far behind is re-cloned rather than let its slot
	 * (or a permanent slot nobody uses) fill the primary's disk. */
	{ "max_slot_wal_keep_size", "8GB" },
};

/*
 * Raises each hot-standby parameter in params[0..*n) (a later entry of the
 * same name wins) to at least the primary's value as this data directory
 * replayed it, by appending an entry; vals holds the appended values'
 * text. Records in L->hs.written what the file will say; logs a change.
 */
static void hs_floor(struct loop *L, struct pg_param *params, size_t *n, char vals[][24])
{
	size_t n0 = *n;
	long eff[PG_HS_PARAMS], want[PG_HS_PARAMS];

	for (int i = 0; i < PG_HS_PARAMS; i++) {
		const struct pg_hs_param *hp = &pg_hot_standby_params[i];
		long wanted = hp->pg_default;
		bool parsed = true;

		for (size_t j = 0; j < n0; j++)
			if (strcmp(params[j].name, hp->name) == 0) {
				char *end;

				errno = 0;
				wanted = strtol(params[j].value, &end, 10);
				parsed = errno == 0 && end != params[j].value && *end == '\0';
			}
		eff[i] = want[i] = wanted;
		if (parsed && L->hs.primary_valid && L->hs.primary[i] > wanted) {
			eff[i] = L->hs.primary[i];
			snprintf(vals[i], sizeof(vals[0]), "%ld", eff[i]);
			params[(*n)++] = (struct pg_param){ hp->name, vals[i] };
		}
		if (eff[i] != wanted && L->boot_recovering &&
		    (!L->hs.written_valid || L->hs.written[i] != eff[i] || L->hs.wanted[i] != wanted))
			log_info("%s raised to %ld from %ld for the recovery of the restored backup: the source "
			         "cluster's value in its control file (a recovering server needs at least that); the "
			         "lower value applies at a restart after the promotion",
			         hp->name, eff[i], wanted);
		else if (eff[i] != wanted &&
		         (!L->hs.written_valid || L->hs.written[i] != eff[i] || L->hs.wanted[i] != wanted))
			log_info("%s raised to %ld from %ld: the primary's value as this replica replayed it "
			         "(pg_controldata); the lower value applies once the primary runs with it and this "
			         "replica has replayed that (then a restart of this replica applies it)",
			         hp->name, eff[i], wanted);
		else if (L->hs.written_valid && L->hs.written[i] > eff[i])
			log_info("%s may now drop to %ld (the primary's value as replayed is %ld): pending until this "
			         "replica restarts",
			         hp->name, eff[i], L->hs.primary_valid ? L->hs.primary[i] : -1L);
	}
	memcpy(L->hs.written, eff, sizeof(eff));
	memcpy(L->hs.wanted, want, sizeof(want));
	L->hs.written_valid = true;
}

/* Writes postgresql.conf, pg_hba.conf, the recovery file and standby.signal
 * for a start as primary (upstream NULL) or as a replica of upstream ("" = none). */
bool write_pg_files(struct loop *L, bool standby, const char *upstream)
{
	const struct baton_config *cfg = L->cfg;
	size_t n_user = L->settings.n_pg_params + cfg->postgresql.n_params;
	size_t n_forced = sizeof(forced) / sizeof(forced[0]);
	size_t n_defaults = sizeof(default_params) / sizeof(default_params[0]);
	struct pg_param *params = calloc(n_defaults + n_user + n_forced + 2 + PG_HS_PARAMS + 3, sizeof(*params));
	char hs_vals[PG_HS_PARAMS][24];
	char ssn[HA_SYNC_MAX * (HA_NAME_MAX + 4) + 32], slot[64];
	const char **hba = calloc(cfg->postgresql.n_pg_hba + 1, sizeof(*hba));
	char port[16], local_line[200], conninfo[2048] = "", own_cluster[256];
	const char *forced_values[sizeof(forced) / sizeof(forced[0])];
	struct pg_err err;
	size_t n = 0;
	bool ok = false;

	if (!params || !hba) {
		log_error("out of memory writing Postgres configuration");
		goto cleanup;
	}
	snprintf(port, sizeof(port), "%d", cfg->postgresql.listen_port);
	own_cluster_name(cfg, own_cluster, sizeof(own_cluster));
	forced_values[0] = cfg->postgresql.listen_host;
	forced_values[1] = port;
	forced_values[2] = cfg->postgresql.socket_dir;
	forced_values[3] = "replica";
	forced_values[4] = "on";
	forced_values[5] = "on";
	forced_values[6] = cfg->name;
	forced_values[7] = own_cluster;

	for (size_t i = 0; i < n_defaults; i++)
		params[n++] = default_params[i]; /* a later entry of the same name wins */
	for (size_t i = 0; i < L->settings.n_pg_params; i++) {
		bool skip = false;

		for (size_t k = 0; k < L->n_start_skip; k++)
			skip = skip || strcasecmp(L->start_skip[k], L->settings.pg_params[i].name) == 0;
		if (!skip)
			params[n++] = (struct pg_param){ L->settings.pg_params[i].name,
				                         L->settings.pg_params[i].value };
	}
	for (size_t i = 0; i < cfg->postgresql.n_params; i++)
		params[n++] = (struct pg_param){ cfg->postgresql.params[i].name, cfg->postgresql.params[i].value };
	/* The standby leader streams through standby_cluster.primary_slot_name
	 * (if set) and fetches from standby_cluster.restore_command where this
	 * node's file allows it (a command: DESIGN.md rule 9). */
	if (standby && upstream && strcmp(upstream, HA_REMOTE) == 0) {
		if (L->settings.standby_slot)
			params[n++] = (struct pg_param){ "primary_slot_name", L->settings.standby_slot };
		if (L->settings.standby_restore_command) {
			if (config_param_allowed_from_dcs("restore_command", cfg->postgresql.allow_from_dcs,
			                                  cfg->postgresql.n_allow_from_dcs))
				params[n++] = (struct pg_param){ "restore_command",
					                         L->settings.standby_restore_command };
			else if (!L->standby_restore_warned) {
				log_warn(
				        "standby_cluster.restore_command ignored: it runs a command, and this node's "
				        "postgresql.allow_from_dcs does not list restore_command (set it there, or put "
				        "restore_command in this node's postgresql.parameters)");
				L->standby_restore_warned = true;
			}
		}
	} else if (standby && upstream && upstream[0] && L->settings.use_slots &&
	           slots_member_slot(cfg->name, slot, sizeof(slot))) {
		/* A replica streams through its own slot on the primary (slots.h). */
		for (size_t i = 0; i < n; i++)
			if (strcmp(params[i].name, "primary_slot_name") == 0)
				log_warn("postgresql parameter primary_slot_name = '%s' ignored: each replica streams "
				         "through its own slot, %s",
				         params[i].value, slot);
		params[n++] = (struct pg_param){ "primary_slot_name", slot };
	}
	/* A replica replays only with hot-standby parameters at least the
	 * primary's (pg_controldata); lowering one in the config must not stop
	 * it. The lower value applies once pg_controldata shows it. A backup
	 * restored to bootstrap a cluster recovers too (hot_standby is on), with
	 * the source's values in its control file. */
	if (standby || L->boot_recovering)
		hs_floor(L, params, &n, hs_vals);
	else
		L->hs.written_valid = false;
	/* Synchronous mode: the agent owns synchronous_standby_names. */
	if (L->settings.synchronous_mode || L->sync_pg.n > 0 || L->sync_pg.star) {
		sync_pg_render(L, ssn, sizeof(ssn));
		for (size_t i = 0; i < n; i++)
			if (strcmp(params[i].name, "synchronous_standby_names") == 0 &&
			    strcmp(params[i].value, ssn) != 0)
				log_warn("postgresql parameter synchronous_standby_names = '%s' ignored: synchronous mode "
				         "manages it",
				         params[i].value);
		params[n++] = (struct pg_param){ "synchronous_standby_names", ssn };
	}
	for (size_t f = 0; f < n_forced; f++) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(params[i].name, forced[f].name) != 0 ||
			    strcmp(params[i].value, forced_values[f]) == 0)
				continue;
			if (strcmp(forced[f].name, "wal_level") == 0 && strcmp(params[i].value, "logical") == 0) {
				forced_values[f] = "logical"; /* stronger than needed: keep it */
				continue;
			}
			log_warn("postgresql parameter %s = '%s' overridden with '%s' (%s)", params[i].name,
			         params[i].value, forced_values[f], forced[f].why);
		}
		params[n++] = (struct pg_param){ forced[f].name, forced_values[f] };
	}
	/* postgresql.tls.*: Postgres serves TLS to the other members (last, so
	 * that no parameter from etcd or the file turns it off). */
	if (cfg->postgresql.tls_certfile) {
		params[n++] = (struct pg_param){ "ssl", "on" };
		params[n++] = (struct pg_param){ "ssl_cert_file", cfg->postgresql.tls_certfile };
		params[n++] = (struct pg_param){ "ssl_key_file", cfg->postgresql.tls_keyfile };
	}
	if (!pg_conf_write(cfg->postgresql.data_dir, params, n, &err))
		goto fail;

	/* The agent's own connections come over the unix socket as the superuser. */
	snprintf(local_line, sizeof(local_line), "local all %s scram-sha-256", cfg->postgresql.superuser_username);
	hba[0] = local_line;
	for (size_t i = 0; i < cfg->postgresql.n_pg_hba; i++)
		hba[i + 1] = cfg->postgresql.pg_hba[i];
	if (!pg_conf_write_hba(cfg->postgresql.data_dir, hba, cfg->postgresql.n_pg_hba + 1, &err))
		goto fail;
	/* As Patroni: no lines, initdb's (or the operator's) file stays. */
	if (cfg->postgresql.n_pg_ident > 0 &&
	    !pg_conf_write_ident(cfg->postgresql.data_dir, (const char *const *)cfg->postgresql.pg_ident,
	                         cfg->postgresql.n_pg_ident, &err))
		goto fail;

	/* A standby leader whose remote is not proven runs as a replica
	 * without primary_conninfo: no password leaves, nothing changes. */
	if (standby && upstream && upstream[0] && !(strcmp(upstream, HA_REMOTE) == 0 && !standby_remote_usable(L)) &&
	    !leader_conninfo(L, upstream, true, conninfo, sizeof(conninfo)))
		goto cleanup;
	if (!pg_conf_write_recovery(cfg->postgresql.data_dir, conninfo, &err) ||
	    !pg_conf_set_standby(cfg->postgresql.data_dir, standby, &err))
		goto fail;
	ok = true;
	goto cleanup;
fail:
	log_error("cannot write Postgres configuration: %s", err.msg);
cleanup:
	free(params);
	free(hba);
	return ok;
}

/* The parameter an error of postgres -C names ('invalid value for parameter
 * "x": ...', 'unrecognized configuration parameter "x" in file ...'). */
static bool refused_name(const char *msg, char *name, size_t len)
{
	const char *p = strstr(msg, "parameter \"");
	size_t n;

	if (!p)
		return false;
	p += strlen("parameter \"");
	n = strcspn(p, "\"");
	if (p[n] != '"' || n == 0 || n >= len)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	return true;
}

/*
 * A reload only logs a value Postgres refuses (it keeps the old one), and
 * an operator's restart is refused while one is there (judge_restart); but
 * a start after a crash or a reboot would fail on it, over and over, until
 * someone fixes the config key. So a start leaves out each parameter from
 * the cluster's config that postgres -C refuses, naming it; the node's own
 * file is the operator's word and stays (a start failure names it).
 */
bool write_pg_files_for_start(struct loop *L, bool standby, const char *upstream)
{
	char bad[600], name[64];
	bool ok;

	L->n_start_skip = 0;
	ok = write_pg_files(L, standby, upstream);
	while (ok && L->n_start_skip < sizeof(L->start_skip) / sizeof(L->start_skip[0]) &&
	       pg_config_errors(L, bad, sizeof(bad)) && bad[0] && refused_name(bad, name, sizeof(name))) {
		const struct config_param *shared = NULL;

		for (size_t i = 0; i < L->settings.n_pg_params && !shared; i++)
			if (strcasecmp(L->settings.pg_params[i].name, name) == 0)
				shared = &L->settings.pg_params[i];
		/* Not the shared value Postgres refuses when a later entry sets
		 * the same name: the node's file, or the agent itself. */
		for (size_t i = 0; shared && i < L->cfg->postgresql.n_params; i++)
			if (strcasecmp(L->cfg->postgresql.params[i].name, name) == 0)
				shared = NULL;
		for (size_t f = 0; shared && f < sizeof(forced) / sizeof(forced[0]); f++)
			if (strcasecmp(forced[f].name, name) == 0)
				shared = NULL;
		for (size_t k = 0; shared && k < L->n_start_skip; k++)
			if (strcasecmp(L->start_skip[k], name) == 0)
				shared = NULL; /* left out already, yet named: not ours to fix */
		if (!shared)
			break;
		log_error("starting Postgres without postgresql.parameters.%s = '%s' from the cluster's config: "
		          "Postgres refuses it (%s) and would not start; fix it with batonctl edit-config --pg %s=...",
		          shared->name, shared->value, bad, shared->name);
		snprintf(L->config_error, sizeof(L->config_error), "%.500s (left out at the last start)", bad);
		L->start_skip[L->n_start_skip++] = shared->name;
		ok = write_pg_files(L, standby, upstream);
	}
	L->n_start_skip = 0;
	return ok;
}

bool write_pgpass(const struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	const char *users[3] = { cfg->postgresql.superuser_username, cfg->postgresql.replication_username,
		                 cfg->postgresql.rewind_username };
	const char *pws[3] = { cfg->postgresql.superuser_password, cfg->postgresql.replication_password,
		               cfg->postgresql.rewind_password };
	struct pg_err err;

	if (!pg_conf_write_pgpass(cfg->postgresql.pgpass, users, pws, cfg->postgresql.rewind_username ? 3 : 2, &err)) {
		log_error("cannot write the password file: %s", err.msg);
		return false;
	}
	return true;
}

void tags_startup_note(const struct baton_config *cfg)
{
	bool restore = false;

	if (!cfg->tags.nostream)
		return;
	for (size_t i = 0; i < cfg->postgresql.n_params; i++)
		restore = restore || (strcmp(cfg->postgresql.params[i].name, "restore_command") == 0 &&
		                      cfg->postgresql.params[i].value[0]);
	if (!restore)
		log_warn("tags.nostream is set and postgresql.parameters has no restore_command: as a replica this "
		         "member never streams, so it replays nothing and never advances; set restore_command in "
		         "this node's file (it runs code, so etcd cannot set it)");
	else
		log_info("tags.nostream: as a replica this member does not stream; it replays what restore_command "
		         "fetches");
	if (cfg->tags.replicatefrom)
		log_warn("tags.replicatefrom = '%s' is ignored: tags.nostream is set, this member streams from nobody",
		         cfg->tags.replicatefrom);
}
