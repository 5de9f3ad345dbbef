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

		if (pg_config_errors(L, bad, sizeof(bad))) {
			if (bad[0])
				log_error("Postgres refuses part of its configuration and keeps the old values for it: "
				          "%s; a restart would fail, so restarts are refused until it is fixed",
				          bad);
			/* In our member key: batonctl list shows it. */
			snprintf(L->config_error, sizeof(L->config_error), "%s", bad);
		}
	}
	cb_fire(L->callbacks, CB_ON_RELOAD, L->last_role[0] ? L->last_role : "unknown");
	/* Look again in about a second: the postmaster and our backend take
	 * the SIGHUP asynchronously, so a look in this very loop reads the
	 * old pending_restart and the next would come 10 s later. */
	L->pending_checked_at = clk_mono() - 9.0;
	L->pg_reloaded_at = clk_mono();
}

/* The shared parameters (config key) changed: apply them. */
void apply_shared_params(struct loop *L)
{
	size_t len = 1 + sizeof("use_slots=off\n");
	char *sig;

	for (size_t i = 0; i < L->settings.n_pg_params; i++)
		len += strlen(L->settings.pg_params[i].name) + strlen(L->settings.pg_params[i].value) + 2;
	sig = malloc(len);
	if (!sig)
		return;
	sig[0] = '\0';
	for (size_t i = 0; i < L->settings.n_pg_params; i++) {
		size_t used = strlen(sig);
		snprintf(sig + used, len - used, "%s=%s\n", L->settings.pg_params[i].name,
		         L->settings.pg_params[i].value);
	}
	/* use_slots decides whether replicas write primary_slot_name */
	if (!L->settings.use_slots)
		snprintf(sig + strlen(sig), len - strlen(sig), "use_slots=off\n");
	if (L->applied_params && strcmp(sig, L->applied_params) != 0) {
		if (L->local.pg_ready) {
			reload_postgres(L, "the cluster's postgresql.parameters or use_slots changed");
		} else if (L->postmaster.pid) {
			/* Running but not answering (starting, restarting): applied on
			 * a later loop, not recorded as done (a start writes the
			 * files anyway when no postmaster runs). */
			free(sig);
			return;
		}
	}
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
				log_info("the primary's %s as replayed is now %ld (was %ld)",
				         pg_hot_standby_params[i].name, cd.hs[i], L->hs.primary[i]);
			differs = true;
		}
	if (!differs)
		return;
	memcpy(L->hs.primary, cd.hs, sizeof(L->hs.primary));
	L->hs.primary_valid = true;
	reload_postgres(L, "the primary's hot-standby parameters changed");
}

/*
 * Re-reads the file the agent started with. config_reload_diff tags each
 * changed key with its row's outcome in the option table (config.c's reload
 * column); what this loop owns is moved into the running config and acted
 * on: the log level, the callbacks, Postgres's files (parameters, pg_hba:
 * Postgres is reloaded), the passwords (the password file, the role on the
 * primary), tags and rewind policy (read where used), bootstrap settings.
 * What other threads or etcd's client hold (names, etcd, REST API, data
 * directory, addresses, watchdog) needs a restart: each such key is named
 * in a warning and keeps its running value. A file that does not load
 * changes nothing.
 */
void reload_config(struct loop *L)
{
	struct baton_config *cur = (struct baton_config *)L->cfg; /* the agent's own copy (baton.c) */
	struct baton_config fresh;
	struct config_reload_report rep;
	struct cb_runner *runner = NULL;
	char err[1024], keys[1500];
	unsigned mask = ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_RESTART);
	bool pg_files, passwords;
	enum log_level lvl = LOG_LVL_INFO;

	if (!config_load(cur->path, &fresh, err, sizeof(err))) {
		log_error("SIGHUP: %s; keeping the running configuration", err);
		return;
	}
	config_reload_diff(cur, &fresh, &rep);
	if ((rep.effects & CONFIG_RELOAD_BIT(CONFIG_RELOAD_LOG)) && !log_level_parse(fresh.log_level, &lvl))
		mask &= ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_LOG); /* the loader checked it: cannot happen */
	if (rep.effects & CONFIG_RELOAD_BIT(CONFIG_RELOAD_CALLBACKS)) {
		runner = cb_new(&fresh.postgresql.callbacks, cur->scope, fresh.postgresql.callbacks.timeout);
		if (runner == NULL) {
			log_error("SIGHUP: out of memory for the new callbacks; keeping the old ones");
			mask &= ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_CALLBACKS);
		}
	}
	/* cur takes the new values; fresh then holds the old ones and is freed. */
	(void)config_reload_apply(cur, &fresh, &rep, mask);
	config_free(&fresh);
	if (mask & rep.effects & CONFIG_RELOAD_BIT(CONFIG_RELOAD_LOG)) {
		log_set_level(lvl);
		log_info("SIGHUP: log.level is now %s", cur->log_level);
	}
	if (runner != NULL) {
		cb_free(L->callbacks); /* a script still running is stopped */
		L->callbacks = runner;
	}
	pg_files = (rep.effects & CONFIG_RELOAD_BIT(CONFIG_RELOAD_POSTGRES)) != 0;
	passwords = (rep.effects & CONFIG_RELOAD_BIT(CONFIG_RELOAD_PASSWORDS)) != 0;

	if (config_reload_keys(&rep, mask, true, keys, sizeof(keys)) > 0)
		log_info("SIGHUP: changed: %s", keys);
	log_info("SIGHUP: reloaded %s%s%s%s", cur->path, pg_files ? "; Postgres parameters/pg_hba changed" : "",
	         passwords ? "; passwords changed" : "", runner != NULL ? "; callbacks changed" : "");
	if (config_reload_keys(&rep, CONFIG_RELOAD_BIT(CONFIG_RELOAD_RESTART), false, keys, sizeof(keys)) > 0)
		log_warn("SIGHUP: changed but only applied by a restart of the agent, keeping the running values: %s",
		         keys);
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
