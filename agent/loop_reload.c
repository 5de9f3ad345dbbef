/*
 * loop_reload.c - configuration changes at run time: the Postgres
 * parameters from the config key and the primary's hot-standby values
 * applied by rewriting the files and reloading Postgres, the pending
 * restart flag, and SIGHUP (reload_config: the agent's own file again).
 * Split from loop.c: everything that reloads, in one place.
 */
#include "agent/loop_internal.h"

/* Rewrites the configuration files for the role Postgres has now and asks
 * it to re-read them. */
void reload_postgres(struct loop *L, const char *why)
{
	struct pg_err err;
	bool replica = L->postmaster.pid && !(L->local.pg_ready && L->local.pg_primary) && !L->lm.pg_started_primary;

	if (L->postmaster.pid == 0)
		return;
	if (!write_pg_files(L, replica, replica ? L->lm.following : NULL))
		return;
	if (!pg_postmaster_reload(&L->postmaster, &err)) {
		log_error("reload failed: %s", err.msg);
		return;
	}
	log_info("reloaded Postgres configuration: %s", why);
	{
		char bad[600];

		if (pg_config_errors(L, bad, sizeof(bad)) && bad[0])
			log_error("Postgres refuses part of its configuration and keeps the old values for it: %s; "
				  "a restart would fail, so restarts are refused until it is fixed",
				  bad);
	}
	cb_fire(L->callbacks, CB_ON_RELOAD, L->last_role[0] ? L->last_role : "unknown");
	/* Look again in about a second: the postmaster and our backend take
	 * the SIGHUP asynchronously, so a look in this very loop reads the
	 * old pending_restart and the next would come 10 s later. */
	L->pending_checked_at = pg_now() - 9.0;
	L->pg_reloaded_at = pg_now();
}

/* The shared parameters (config key) changed: apply them. */
void apply_shared_params(struct loop *L)
{
	size_t len = 1;
	char *sig;

	for (size_t i = 0; i < L->settings.n_pg_params; i++)
		len += strlen(L->settings.pg_params[i].name) + strlen(L->settings.pg_params[i].value) + 2;
	sig = malloc(len);
	if (!sig)
		return;
	sig[0] = '\0';
	for (size_t i = 0; i < L->settings.n_pg_params; i++) {
		size_t used = strlen(sig);
		snprintf(sig + used, len - used, "%s=%s\n", L->settings.pg_params[i].name, L->settings.pg_params[i].value);
	}
	if (L->applied_params && strcmp(sig, L->applied_params) != 0 && L->local.pg_ready)
		reload_postgres(L, "the cluster's postgresql.parameters changed");
	free(L->applied_params);
	L->applied_params = sig;
}

/* pending_restart, asked of Postgres every few seconds (and soon after a reload). */
void check_pending_restart(struct loop *L, double now)
{
	struct pg_err err;
	bool pending;

	if (!L->local.pg_ready) {
		L->pending_restart = false;
		return;
	}
	if (now - L->pending_checked_at < 10.0 && L->pending_checked_at > 0)
		return;
	L->pending_checked_at = now;
	if (pg_query_pending_restart(L->pg, &pending, &err)) {
		if (pending && !L->pending_restart)
			log_info("a changed parameter needs a restart of Postgres (pending restart)");
		L->pending_restart = pending;
	}
}

/*
 * A running replica: reads pg_controldata again every so often (it is made
 * to be read while the server runs), since replay changes the primary's
 * hot-standby values it holds. When what the files should say changed (the
 * primary lowered a value and we replayed that; or raised one), rewrites
 * them and reloads, so that pending_restart shows it and a restart applies it.
 */
void check_hot_standby(struct loop *L, double now)
{
	struct pg_controldata cd;
	struct pg_err err;
	bool differs = false;

	if (!L->local.pg_ready || L->local.pg_primary || L->lm.pg_started_primary || L->lm.promote_requested)
		return;
	/* Every few seconds; every loop while replay is paused (it may be for
	 * a parameter the primary raised: ha_decide restarts us with it). */
	if (L->hs.checked_at > 0 &&
	    now - L->hs.checked_at < (L->local.pg_replay_paused ? 1.0 : fmax(5.0, L->settings.loop_wait)))
		return;
	L->hs.checked_at = now;
	if (!pg_controldata_read(L->cfg->postgresql.bin_dir, L->cfg->postgresql.data_dir, &cd, &err)) {
		log_warn("cannot read the hot-standby parameters in pg_control: %s", err.msg);
		return;
	}
	if (!cd.hs_valid)
		return;
	for (int i = 0; i < PG_HS_PARAMS; i++)
		if (!L->hs.primary_valid || cd.hs[i] != L->hs.primary[i]) {
			if (L->hs.primary_valid)
				log_info("the primary's %s as replayed is now %ld (was %ld)", pg_hot_standby_params[i].name,
					 cd.hs[i], L->hs.primary[i]);
			differs = true;
		}
	if (!differs)
		return;
	memcpy(L->hs.primary, cd.hs, sizeof(L->hs.primary));
	L->hs.primary_valid = true;
	reload_postgres(L, "the primary's hot-standby parameters changed");
}

static bool str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool strlist_same(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_same(a[i], b[i]))
			return false;
	return true;
}

static bool params_same(const struct config_param *a, size_t na, const struct config_param *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_same(a[i].name, b[i].name) || !str_same(a[i].value, b[i].value))
			return false;
	return true;
}

#define SWAP_FIELD(a, b)                                                                                      \
	do {                                                                                                  \
		__typeof__(a) tmp_ = (a);                                                                     \
		(a) = (b);                                                                                    \
		(b) = tmp_;                                                                                   \
	} while (0)

/*
 * Re-reads the file the agent started with. What only this loop reads
 * changes now: log level, tags, Postgres parameters and pg_hba (Postgres is
 * reloaded), passwords (the password file, and the roles on the primary),
 * rewind policy, callbacks. What other threads or etcd's client hold
 * (names, etcd, REST API, data directory, addresses, watchdog) needs a
 * restart: each such change is reported, and the running value kept. A
 * file that does not load changes nothing.
 */
void reload_config(struct loop *L)
{
	struct baton_config *cur = (struct baton_config *)L->cfg; /* the agent's own copy (baton.c) */
	struct baton_config fresh;
	char err[1024], restart[600] = "";
	bool pg_files = false, passwords = false, callbacks = false;
	enum log_level lvl;
	size_t used = 0;

	if (!config_load(cur->path, &fresh, err, sizeof(err))) {
		log_error("SIGHUP: %s; keeping the running configuration", err);
		return;
	}
#define NEEDS_RESTART(cond, key)                                                                              \
	do {                                                                                                  \
		if (!(cond) && used < sizeof(restart)) {                                                      \
			int k_ = snprintf(restart + used, sizeof(restart) - used, "%s%s", used ? ", " : "", key); \
			used += k_ > 0 ? (size_t)k_ : 0;                                                      \
		}                                                                                             \
	} while (0)
	NEEDS_RESTART(str_same(cur->scope, fresh.scope), "scope");
	NEEDS_RESTART(str_same(cur->name, fresh.name), "name");
	NEEDS_RESTART(str_same(cur->namespace_, fresh.namespace_), "namespace");
	NEEDS_RESTART(strlist_same(cur->etcd.hosts, cur->etcd.n_hosts, fresh.etcd.hosts, fresh.etcd.n_hosts) &&
			      str_same(cur->etcd.protocol, fresh.etcd.protocol) &&
			      str_same(cur->etcd.cacert, fresh.etcd.cacert) && str_same(cur->etcd.cert, fresh.etcd.cert) &&
			      str_same(cur->etcd.key, fresh.etcd.key) &&
			      str_same(cur->etcd.username, fresh.etcd.username) &&
			      str_same(cur->etcd.password, fresh.etcd.password),
		      "etcd");
	NEEDS_RESTART(str_same(cur->restapi.listen, fresh.restapi.listen) &&
			      str_same(cur->restapi.connect_address, fresh.restapi.connect_address) &&
			      str_same(cur->restapi.auth_username, fresh.restapi.auth_username) &&
			      str_same(cur->restapi.auth_password, fresh.restapi.auth_password) &&
			      str_same(cur->restapi.certfile, fresh.restapi.certfile) &&
			      str_same(cur->restapi.keyfile, fresh.restapi.keyfile) &&
			      str_same(cur->restapi.cafile, fresh.restapi.cafile) &&
			      str_same(cur->restapi.verify_client, fresh.restapi.verify_client) &&
			      strlist_same(cur->restapi.allowed_hosts, cur->restapi.n_allowed_hosts,
					   fresh.restapi.allowed_hosts, fresh.restapi.n_allowed_hosts) &&
			      cur->restapi.allow_unauthenticated_writes == fresh.restapi.allow_unauthenticated_writes,
		      "restapi");
	NEEDS_RESTART(str_same(cur->postgresql.bin_dir, fresh.postgresql.bin_dir), "postgresql.bin_dir");
	NEEDS_RESTART(str_same(cur->postgresql.data_dir, fresh.postgresql.data_dir), "postgresql.data_dir");
	NEEDS_RESTART(str_same(cur->postgresql.listen, fresh.postgresql.listen), "postgresql.listen");
	NEEDS_RESTART(str_same(cur->postgresql.connect_address, fresh.postgresql.connect_address),
		      "postgresql.connect_address");
	NEEDS_RESTART(str_same(cur->postgresql.socket_dir, fresh.postgresql.socket_dir), "postgresql.socket_dir");
	NEEDS_RESTART(str_same(cur->postgresql.pgpass, fresh.postgresql.pgpass), "postgresql.pgpass");
	NEEDS_RESTART(str_same(cur->postgresql.log_file, fresh.postgresql.log_file), "postgresql.log_file");
	NEEDS_RESTART(str_same(cur->postgresql.superuser_username, fresh.postgresql.superuser_username),
		      "postgresql.authentication.superuser.username");
	NEEDS_RESTART(str_same(cur->postgresql.replication_username, fresh.postgresql.replication_username),
		      "postgresql.authentication.replication.username");
	NEEDS_RESTART(str_same(cur->watchdog.mode, fresh.watchdog.mode) &&
			      str_same(cur->watchdog.device, fresh.watchdog.device) &&
			      cur->watchdog.safety_margin == fresh.watchdog.safety_margin,
		      "watchdog");
#undef NEEDS_RESTART

	/* Applied now: swap each value into the running config (fresh then
	 * holds the old ones and is freed). */
	if (!str_same(cur->log_level, fresh.log_level) && log_level_parse(fresh.log_level, &lvl)) {
		log_set_level(lvl);
		log_info("SIGHUP: log.level is now %s", fresh.log_level);
		SWAP_FIELD(cur->log_level, fresh.log_level);
	}
	if (!params_same(cur->postgresql.params, cur->postgresql.n_params, fresh.postgresql.params,
			 fresh.postgresql.n_params) ||
	    !strlist_same(cur->postgresql.pg_hba, cur->postgresql.n_pg_hba, fresh.postgresql.pg_hba,
			  fresh.postgresql.n_pg_hba)) {
		SWAP_FIELD(cur->postgresql.params, fresh.postgresql.params);
		SWAP_FIELD(cur->postgresql.n_params, fresh.postgresql.n_params);
		SWAP_FIELD(cur->postgresql.pg_hba, fresh.postgresql.pg_hba);
		SWAP_FIELD(cur->postgresql.n_pg_hba, fresh.postgresql.n_pg_hba);
		pg_files = true;
	}
	if (!str_same(cur->postgresql.superuser_password, fresh.postgresql.superuser_password) ||
	    !str_same(cur->postgresql.replication_password, fresh.postgresql.replication_password)) {
		SWAP_FIELD(cur->postgresql.superuser_password, fresh.postgresql.superuser_password);
		SWAP_FIELD(cur->postgresql.replication_password, fresh.postgresql.replication_password);
		passwords = true;
	}
	if (!str_same(cur->postgresql.callbacks.on_start, fresh.postgresql.callbacks.on_start) ||
	    !str_same(cur->postgresql.callbacks.on_stop, fresh.postgresql.callbacks.on_stop) ||
	    !str_same(cur->postgresql.callbacks.on_role_change, fresh.postgresql.callbacks.on_role_change) ||
	    !str_same(cur->postgresql.callbacks.on_reload, fresh.postgresql.callbacks.on_reload) ||
	    cur->postgresql.callbacks.timeout != fresh.postgresql.callbacks.timeout) {
		struct cb_runner *r = cb_new(&fresh.postgresql.callbacks, cur->scope, fresh.postgresql.callbacks.timeout);

		if (r) {
			cb_free(L->callbacks); /* a script still running is stopped */
			L->callbacks = r;
			SWAP_FIELD(cur->postgresql.callbacks, fresh.postgresql.callbacks);
			callbacks = true;
		} else {
			log_error("SIGHUP: out of memory for the new callbacks; keeping the old ones");
		}
	}
	SWAP_FIELD(cur->postgresql.use_pg_rewind, fresh.postgresql.use_pg_rewind);
	SWAP_FIELD(cur->postgresql.remove_data_directory_on_rewind_failure,
		   fresh.postgresql.remove_data_directory_on_rewind_failure);
	SWAP_FIELD(cur->tags, fresh.tags);
	/* bootstrap.dcs only matters until the config key exists. */
	SWAP_FIELD(cur->bootstrap_dcs, fresh.bootstrap_dcs);
	config_free(&fresh);

	log_info("SIGHUP: reloaded %s%s%s%s", cur->path, pg_files ? "; Postgres parameters/pg_hba changed" : "",
		 passwords ? "; passwords changed" : "", callbacks ? "; callbacks changed" : "");
	if (restart[0])
		log_warn("SIGHUP: changed but only applied by a restart of the agent, keeping the running values: %s",
			 restart);
	if (passwords) {
		if (write_pgpass(L))
			log_info("SIGHUP: password file rewritten");
		if (L->local.pg_ready && L->local.pg_primary)
			(void)ensure_roles(L);
		pg_files = true; /* primary_conninfo names the password file, not the password; a reload is cheap */
	}
	if (pg_files && L->local.pg_ready)
		reload_postgres(L, "local configuration file reloaded (SIGHUP)");
}
