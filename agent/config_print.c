/*
 * config_print.c - show-config: the effective configuration as libconfig
 * text.
 *
 * The option table (config.c) is printed back in its own order, grouped as
 * the file is ("postgresql = { ... };"), each option preceded by its doc
 * line as a comment, defaults included, secrets as "***". The text loads
 * back (with the secrets filled in) to the same configuration
 * (tests/check_config checks it).
 */
#include "agent/config.h"
#include "agent/config_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- show-config ---- */

static void print_indent(FILE *f, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", f);
}

/* Writes s as a libconfig string literal. */
static void print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void print_option(const struct baton_config *cfg, const struct opt *o, const char *name, int depth, FILE *f)
{
	const void *v = opt_cfield(cfg, o->off);
	char num[32];

	print_indent(f, depth);
	fprintf(f, "# %s\n", o->doc);
	print_indent(f, depth);
	switch (o->type) {
	case OPT_STRING: {
		const char *s = *(char *const *)v;

		if (s == NULL) {
			fprintf(f, "# %s is not set\n", name);
			return;
		}
		fprintf(f, "%s = ", name);
		print_string(f, (o->flags & OPT_SECRET) ? "***" : s);
		break;
	}
	case OPT_SECONDS:
		config_format_number(*(const double *)v, num, sizeof(num));
		fprintf(f, "%s = %s", name, num);
		break;
	case OPT_INT64: {
		long long n = *(const int64_t *)v;

		fprintf(f, "%s = %lld%s", name, n, (n > 2147483647LL || n < -2147483647LL) ? "L" : "");
		break;
	}
	case OPT_BOOL:
		fprintf(f, "%s = %s", name, *(const bool *)v ? "true" : "false");
		break;
	case OPT_HOSTLIST:
	case OPT_STRLIST: {
		char *const *l = *(char **const *)v;
		size_t n = *(const size_t *)opt_cfield(cfg, o->count_off);

		fprintf(f, "%s = [", name);
		for (size_t i = 0; i < n; i++) {
			fputs(i > 0 ? ", " : " ", f);
			print_string(f, (o->flags & OPT_SECRET) ? "***" : l[i]);
		}
		fputs(n > 0 ? " ]" : "]", f);
		break;
	}
	case OPT_PARAMS: {
		const struct config_param *p = *(struct config_param *const *)v;
		size_t n = *(const size_t *)opt_cfield(cfg, o->count_off);

		fprintf(f, "%s = {\n", name);
		for (size_t i = 0; i < n; i++) {
			print_indent(f, depth + 1);
			fprintf(f, "%s = ", p[i].name);
			print_string(f, p[i].value);
			fputs(";\n", f);
		}
		print_indent(f, depth);
		fputs("}", f);
		break;
	}
	case OPT_TAGS: {
		/* Inside the group the row names (print_group): its entries
		 * only, their values as JSON text, which libconfig reads back. */
		const struct config_param *p = *(struct config_param *const *)v;
		size_t n = *(const size_t *)opt_cfield(cfg, o->count_off);

		if (n == 0) {
			fputs("# no custom tags\n", f);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			const char *val = p[i].value;
			char *end;
			long long k;

			if (i > 0)
				print_indent(f, depth);
			/* An integer beyond 32 bits needs libconfig's L to read back. */
			k = strtoll(val, &end, 10);
			fprintf(f, "%s = %s%s;\n", p[i].name, val,
			        *val != '"' && *end == '\0' && (k > 2147483647LL || k < -2147483647LL) ? "L" : "");
		}
		return;
	}
	}
	fputs(";\n", f);
}

/* Prints the options and groups directly under prefix ("" = the top), in
 * the table's order of first appearance. */
static void print_group(const struct baton_config *cfg, const char *prefix, int depth, FILE *f)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *p = config_options[i].path;
		const char *child, *dot;
		char name[64], sub[256];
		size_t clen;
		bool seen = false;

		if (plen > 0 && (strncmp(p, prefix, plen) != 0 || p[plen] != '.'))
			continue;
		child = plen > 0 ? p + plen + 1 : p;
		dot = strchr(child, '.');
		if (dot == NULL && config_options[i].type == OPT_TAGS)
			continue; /* printed inside its group, below */
		if (dot == NULL) {
			print_option(cfg, &config_options[i], child, depth, f);
			continue;
		}
		clen = (size_t)(dot - child);
		if (clen >= sizeof(name))
			continue;
		memcpy(name, child, clen);
		name[clen] = '\0';
		/* a group is printed once, at its first option */
		for (size_t j = 0; j < i && !seen; j++) {
			const char *q = config_options[j].path;
			const char *qc;

			if (plen > 0 && (strncmp(q, prefix, plen) != 0 || q[plen] != '.'))
				continue;
			qc = plen > 0 ? q + plen + 1 : q;
			seen = strncmp(qc, name, clen) == 0 && qc[clen] == '.';
		}
		if (seen)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", prefix, plen > 0 ? "." : "", name);
		print_indent(f, depth);
		fprintf(f, "%s = {\n", name);
		print_group(cfg, sub, depth + 1, f);
		print_indent(f, depth);
		fputs("};\n", f);
	}
	/* A group that is also a row of its own (tags): its free-form keys. */
	for (size_t i = 0; plen > 0 && i < N_OPTIONS; i++)
		if (config_options[i].type == OPT_TAGS && strcmp(config_options[i].path, prefix) == 0)
			print_option(cfg, &config_options[i], prefix, depth, f);
}

void config_print(const struct baton_config *cfg, FILE *out)
{
	if (cfg == NULL || out == NULL)
		return;
	if (cfg->path != NULL)
		fprintf(out, "# effective configuration of %s\n", cfg->path);
	print_group(cfg, "", 0, out);
}
