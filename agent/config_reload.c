/*
 * config_reload.c - what a SIGHUP may change, walked from the option
 * table's reload column.
 *
 * On SIGHUP the agent loads its file again (config_load) and hands both
 * configurations here. config_reload_diff() compares them key by key, in the
 * table's order, and tags each changed key with its row's outcome (config.h,
 * enum config_reload); it decides nothing else and does no I/O, so the
 * decision "what does a change of this key do" lives in the table alone and
 * a unit test can check it for every key. config_reload_apply() then moves
 * the new values of the keys whose outcome the caller carries out into the
 * running configuration - never those needing a restart: they belong to
 * other threads (REST API, keeper, watch) or to etcd's client, which copied
 * them at start, so the running value is kept and the caller warns.
 *
 * The caller (the loop's reload_config) acts on the outcomes: the log level,
 * the callback runner, Postgres's files and a reload, the password file.
 */
#include "agent/config.h"
#include "agent/config_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const reload_names[CONFIG_RELOAD_N] = {
	[CONFIG_RELOAD_UNSET] = "unset",
	[CONFIG_RELOAD_LIVE] = "live",
	[CONFIG_RELOAD_LOG] = "log level",
	[CONFIG_RELOAD_CALLBACKS] = "callbacks",
	[CONFIG_RELOAD_POSTGRES] = "Postgres reload",
	[CONFIG_RELOAD_PASSWORDS] = "passwords",
	[CONFIG_RELOAD_BOOTSTRAP] = "bootstrap",
	[CONFIG_RELOAD_RESTART] = "restart",
};

const char *config_reload_name(enum config_reload how)
{
	if ((unsigned)how >= CONFIG_RELOAD_N)
		return "?";
	return reload_names[how];
}

static bool str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Do old and fresh hold the same value for option o? Lists and parameter
 * groups compare in order: a reordered list is a change (pg_hba lines and
 * etcd hosts are tried in order). */
static bool option_same(const struct opt *o, const struct baton_config *old, const struct baton_config *fresh)
{
	const void *a = opt_cfield(old, o->off), *b = opt_cfield(fresh, o->off);

	switch (o->type) {
	case OPT_STRING:
		return str_same(*(char *const *)a, *(char *const *)b);
	case OPT_SECONDS:
		return *(const double *)a == *(const double *)b;
	case OPT_INT64:
		return *(const int64_t *)a == *(const int64_t *)b;
	case OPT_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case OPT_HOSTLIST:
	case OPT_STRLIST: {
		char *const *la = *(char **const *)a, *const *lb = *(char **const *)b;
		size_t na = *(const size_t *)opt_cfield(old, o->count_off);
		size_t nb = *(const size_t *)opt_cfield(fresh, o->count_off);

		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (!str_same(la[i], lb[i]))
				return false;
		return true;
	}
	case OPT_PARAMS:
	case OPT_TAGS: {
		const struct config_param *pa = *(struct config_param *const *)a;
		const struct config_param *pb = *(struct config_param *const *)b;
		size_t na = *(const size_t *)opt_cfield(old, o->count_off);
		size_t nb = *(const size_t *)opt_cfield(fresh, o->count_off);

		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (!str_same(pa[i].name, pb[i].name) || !str_same(pa[i].value, pb[i].value))
				return false;
		return true;
	}
	}
	return false;
}

void config_reload_diff(const struct baton_config *old, const struct baton_config *fresh,
                        struct config_reload_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &config_options[i];

		if (option_same(o, old, fresh))
			continue;
		/* A row without an entry (tests/check_config refuses it) is
		 * treated as needing a restart: never applied unasked. */
		rep->changed[rep->n_changed].key = o->path;
		rep->changed[rep->n_changed].how = o->reload != CONFIG_RELOAD_UNSET ? o->reload : CONFIG_RELOAD_RESTART;
		rep->effects |= CONFIG_RELOAD_BIT(rep->changed[rep->n_changed].how);
		rep->n_changed++;
	}
}

/* Swaps n bytes at a and b. */
static void swap_bytes(void *a, void *b, size_t n)
{
	unsigned char tmp[sizeof(double) > sizeof(void *) ? sizeof(double) : sizeof(void *)];

	memcpy(tmp, a, n);
	memcpy(a, b, n);
	memcpy(b, tmp, n);
}

static size_t value_size(enum opt_type t)
{
	switch (t) {
	case OPT_STRING:
		return sizeof(char *);
	case OPT_SECONDS:
		return sizeof(double);
	case OPT_INT64:
		return sizeof(int64_t);
	case OPT_BOOL:
		return sizeof(bool);
	case OPT_HOSTLIST:
	case OPT_STRLIST:
		return sizeof(char **);
	case OPT_PARAMS:
	case OPT_TAGS:
		return sizeof(struct config_param *);
	}
	return 0;
}

size_t config_reload_apply(struct baton_config *cur, struct baton_config *fresh, const struct config_reload_report *rep,
                           unsigned mask)
{
	size_t moved = 0;

	mask &= ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_RESTART) & ~CONFIG_RELOAD_BIT(CONFIG_RELOAD_UNSET);
	for (size_t i = 0; i < rep->n_changed; i++) {
		const struct opt *o;

		if (!(mask & CONFIG_RELOAD_BIT(rep->changed[i].how)))
			continue;
		o = config_find_option(rep->changed[i].key);
		if (o == NULL || o->reload != rep->changed[i].how)
			continue; /* not a report of this table */
		swap_bytes(opt_field(cur, o->off), opt_field(fresh, o->off), value_size(o->type));
		if (o->type == OPT_HOSTLIST || o->type == OPT_STRLIST || o->type == OPT_PARAMS || o->type == OPT_TAGS)
			swap_bytes(opt_field(cur, o->count_off), opt_field(fresh, o->count_off), sizeof(size_t));
		moved++;
	}
	return moved;
}

size_t config_reload_keys(const struct config_reload_report *rep, unsigned mask, bool with_how, char *buf, size_t len)
{
	size_t used = 0, n = 0;

	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < rep->n_changed; i++) {
		int k;

		if (!(mask & CONFIG_RELOAD_BIT(rep->changed[i].how)))
			continue;
		if (used >= len)
			break;
		if (with_how)
			k = snprintf(buf + used, len - used, "%s%s (%s)", n ? ", " : "", rep->changed[i].key,
			             config_reload_name(rep->changed[i].how));
		else
			k = snprintf(buf + used, len - used, "%s%s", n ? ", " : "", rep->changed[i].key);
		if (k < 0)
			break;
		used += (size_t)k < len - used ? (size_t)k : len - used;
		n++;
	}
	return n;
}
