/*
 * config_internal.h - what the files of the config module share, and
 * nothing outside them may use.
 *
 * The module is one table and the code that walks it, in one file per
 * concern: config.c (the option table, its validators and the small public
 * helpers), config_load.c (libconfig tree -> struct baton_config, with
 * "FILE:LINE: KEY: problem" errors), config_file.c (reading the file safely
 * for libconfig, and the hygiene checks of the files it names),
 * config_print.c (show-config) and config_reload.c (what SIGHUP may change,
 * walked from the table's reload column).
 */
#ifndef BATON_CONFIG_INTERNAL_H
#define BATON_CONFIG_INTERNAL_H

#include "agent/config.h"

#include <stdbool.h>
#include <stddef.h>

enum opt_type {
	OPT_STRING,   /* char *; a string in the file */
	OPT_SECONDS,  /* double; int, int64 or float in the file */
	OPT_INT64,    /* int64_t; int or int64 (L suffix) in the file */
	OPT_BOOL,     /* bool; true/false in the file */
	OPT_HOSTLIST, /* char ** + size_t; a list or array of "host:port" strings */
	OPT_STRLIST,  /* char ** + size_t; a list or array of strings */
	OPT_PARAMS,   /* struct config_param * + size_t; a group of Postgres GUCs */
	OPT_TAGS,     /* struct config_param * + size_t; the group's keys no other row has (custom
		       * tags), values as JSON text; its path is the group's own ("tags") */
};

enum {
	OPT_REQUIRED = 1u << 0,  /* no default: the file must set it */
	OPT_SECRET = 1u << 1,    /* never printed or echoed in errors */
	OPT_MIN_EXCL = 1u << 2,  /* numbers: the minimum itself is not allowed */
	OPT_NONEMPTY = 1u << 3,  /* lists: at least one element */
	OPT_SYNC_MODE = 1u << 4, /* bool that also takes Patroni's strings "on", "off" and "quorum" */
};

/* A string validator: false with a short reason ("must be absolute"). */
typedef bool (*opt_check_fn)(const char *value, char *why, size_t whylen);

struct opt {
	const char *path;
	enum opt_type type;
	size_t off;             /* the value in struct baton_config */
	size_t count_off;       /* list types: the size_t element count */
	const char *def;        /* default as text: "5", "true", "/tmp"; NULL = none */
	const char *def_from;   /* default: this earlier option's value ... */
	const char *def_suffix; /* ... followed by this */
	double min, max;        /* numbers */
	unsigned flags;
	opt_check_fn check;        /* strings and list elements */
	const char *with;          /* set only together with this option (both or neither) */
	enum config_reload reload; /* what SIGHUP does with a change (never CONFIG_RELOAD_UNSET) */
	const char *doc;
};

/* The table (config.c), in the order show-config prints it. */
extern const struct opt config_options[];
extern const size_t config_n_options;
#define N_OPTIONS config_n_options

static inline void *opt_field(struct baton_config *cfg, size_t off)
{
	return (char *)cfg + off;
}

static inline const void *opt_cfield(const struct baton_config *cfg, size_t off)
{
	return (const char *)cfg + off;
}

/* snprintf into err (nothing when err is NULL or errlen 0). */
void config_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The option whose dotted path is path, or NULL. */
const struct opt *config_find_option(const char *path);

/* Renders a double so that reading it back gives the same value. */
void config_format_number(double v, char *buf, size_t len);

/* The validator of values that become one line of a file (also used for
 * Postgres parameter values, which have no row of their own). */
bool config_check_one_line(const char *v, char *why, size_t len);

/* The file's text for libconfig (config_file.c): malloc'd, caller frees;
 * NULL with "FILE[:LINE]: problem" in err. */
char *config_read_text(const char *path, char *err, size_t errlen);

#endif
