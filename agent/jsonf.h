/*
 * jsonf.h - typed reads of one field of a JSON object, with a reason.
 *
 * The agent reads JSON that other machines wrote (etcd records, peers'
 * /status answers) and trusts none of it. These helpers read one field of
 * a jansson object, check its type, range, length and (for strings) that
 * it carries no NUL, and on failure write a reason that starts with the
 * field's name ("port: 0 out of range [1, 65535]") into err. They never
 * print, allocate or take references.
 *
 * Common contract of the field readers: obj is a JSON object (borrowed);
 * err may be NULL or errlen 0 (the reason is then dropped). A field that is
 * absent is an error ("<key>: missing") when need is JSONF_REQUIRED, and
 * leaves *out / buf untouched when it is JSONF_OPTIONAL. On failure the
 * output is untouched too.
 */
#ifndef BATON_JSONF_H
#define BATON_JSONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum jsonf_need { JSONF_OPTIONAL, JSONF_REQUIRED };

/* snprintf into err, tolerating err == NULL or errlen == 0 (then a no-op). */
void jsonf_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* String field copied into buf (len bytes, NUL-terminated). Rejects other
 * types, strings with an embedded NUL, and strings of len bytes or more. */
bool jsonf_string(const json_t *obj, const char *key, enum jsonf_need need, char *buf, size_t len, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* Integer field in [min, max]; a real (even 5.0) is not an integer. */
bool jsonf_int(const json_t *obj, const char *key, enum jsonf_need need, json_int_t min, json_int_t max,
               json_int_t *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* true or false; no other type stands for a boolean. */
bool jsonf_bool(const json_t *obj, const char *key, enum jsonf_need need, bool *out, char *err, size_t errlen)
        __attribute__((warn_unused_result));

/* A number (integer or real), finite, in [min, max], or in (min, max] when
 * min_exclusive. */
bool jsonf_number(const json_t *obj, const char *key, enum jsonf_need need, double min, double max, bool min_exclusive,
                  double *out, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
