/*
 * loop_pgfiles.c - the Postgres files the agent owns: postgresql.conf
 * (the parameters the agent forces, the defaults it sets, the config's,
 * the hot-standby floor), pg_hba.conf, the recovery settings with the
 * conninfo to the leader, standby.signal and the password file. Split
 * from loop.c: what Postgres reads at start, written in one place.
 */
#include "agent/loop_internal.h"

bool standby_remote_usable(struct loop *L)
{
	const struct baton_config *cfg = L->cfg;
	const struct dcs_settings *own = &cfg->bootstrap_dcs;
	char key[sizeof(L->standby_unusable_said)];
	bool usable;

	if (!L->view.standby_cluster || !L->view.standby_host[0]) {
		L->standby_unusable_said[0] = '\0';
		return false;
	}
	usable = ha_standby_remote_proven(cfg->postgresql.tls_cafile != NULL, own->standby_host, (int)own->standby_port,
	                                  L->view.standby_host, L->view.standby_port);
	/* Or the node file lists it (postgresql.standby_cluster_remotes): the
	 * way to allow a site switchover's remote without Postgres TLS, as
	 * bootstrap.dcs would also seed a new cluster as a standby. */
	for (size_t i = 0; !usable && i < cfg->postgresql.n_standby_remotes; i++) {
		char *host = NULL;
		int port = 0;

		if (config_split_hostport(cfg->postgresql.standby_remotes[i], &host, &port))
			usable = ha_standby_remote_proven(false, host, port, L->view.standby_host,
			                                  L->view.standby_port);
		free(host);
	}
	if (usable) {
		L->standby_unusable_said[0] = '\0';
		return true;
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
		if (!standby_remote_usable(L))
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
		if (eff[i] != wanted &&
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
	char port[16], local_line[200], conninfo[2048] = "";
	const char *forced_values[sizeof(forced) / sizeof(forced[0])];
	struct pg_err err;
	size_t n = 0;
	bool ok = false;

	if (!params || !hba) {
		log_error("out of memory writing Postgres configuration");
		goto cleanup;
	}
	snprintf(port, sizeof(port), "%d", cfg->postgresql.listen_port);
	forced_values[0] = cfg->postgresql.listen_host;
	forced_values[1] = port;
	forced_values[2] = cfg->postgresql.socket_dir;
	forced_values[3] = "replica";
	forced_values[4] = "on";
	forced_values[5] = "on";
	forced_values[6] = cfg->name;

	for (size_t i = 0; i < n_defaults; i++)
		params[n++] = default_params[i]; /* a later entry of the same name wins */
	for (size_t i = 0; i < L->settings.n_pg_params; i++)
		params[n++] = (struct pg_param){ L->settings.pg_params[i].name, L->settings.pg_params[i].value };
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
