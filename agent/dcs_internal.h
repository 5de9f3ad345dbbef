/*
 * dcs_internal.h - what the files of the dcs module (dcs.c, dcs_settings.c,
 * dcs_view.c, dcs_read.c) share, and nothing else includes. dcs.h stays
 * the public interface.
 */
#ifndef BATON_DCS_INTERNAL_H
#define BATON_DCS_INTERNAL_H

#include "agent/dcs.h"

#include <jansson.h>

/* The dynamic settings when the config key is absent or leaves them out
 * (dcs_settings.c): the one place their defaults are written. */
void dcs_settings_default(struct dcs_settings *d);

/* Appends one line to the warning buffer (see dcs.c). */
void __attribute__((format(printf, 3, 4))) dcs_warn_add(char *warn, size_t warnlen, const char *fmt, ...);

/* Parses text that must be a JSON object; NULL + reason otherwise. */
json_t *dcs_load_object(const char *text, char *err, size_t errlen);

/* Serializes and releases root; NULL when either step fails. */
char *dcs_dump_and_free(json_t *root);

/* A number as JSON: an integer when it is one, else a real. */
json_t *dcs_json_num(double d);

#endif
