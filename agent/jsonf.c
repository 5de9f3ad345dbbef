/*
 * jsonf.c - typed reads of one field of a JSON object, with a reason.
 *
 * dcs.c (records in etcd) and api_health.c (peers' /status answers) both read
 * JSON from other machines field by field; this is the one copy of those
 * checks, so a field is judged, and a failure worded, the same way
 * wherever it comes from. See jsonf.h for the contract.
 */
#include "agent/jsonf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void jsonf_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A set of jansson types, for field(). */
#define TYPE(t) (1u << (unsigned)(t))

/*
 * The field key of obj when it is present and of one of the types in
 * types. NULL otherwise, with *ok saying what that means: true for an
 * absent optional field; false, with the reason in err, for an absent
 * required field or one of another type ("<key>: expected <expected>").
 */
static const json_t *field(const json_t *obj, const char *key, enum jsonf_need need, unsigned types,
                           const char *expected, bool *ok, char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, key);

	*ok = false;
	if (!v) {
		if (need == JSONF_REQUIRED)
			jsonf_set_err(err, errlen, "%s: missing", key);
		else
			*ok = true;
		return NULL;
	}
	if (!(TYPE(json_typeof(v)) & types)) {
		jsonf_set_err(err, errlen, "%s: expected %s", key, expected);
		return NULL;
	}
	return v;
}

bool jsonf_string(const json_t *obj, const char *key, enum jsonf_need need, char *buf, size_t len, char *err,
                  size_t errlen)
{
	bool ok;
	const json_t *v = field(obj, key, need, TYPE(JSON_STRING), "a string", &ok, err, errlen);
	size_t n;

	if (!v)
		return ok;
	n = json_string_length(v);
	if (n != strlen(json_string_value(v))) {
		jsonf_set_err(err, errlen, "%s: contains a NUL character", key);
		return false;
	}
	if (n >= len) {
		jsonf_set_err(err, errlen, "%s: longer than %zu characters", key, len ? len - 1 : 0);
		return false;
	}
	memcpy(buf, json_string_value(v), n + 1);
	return true;
}

bool jsonf_int(const json_t *obj, const char *key, enum jsonf_need need, json_int_t min, json_int_t max,
               json_int_t *out, char *err, size_t errlen)
{
	bool ok;
	const json_t *v = field(obj, key, need, TYPE(JSON_INTEGER), "an integer", &ok, err, errlen);
	json_int_t i;

	if (!v)
		return ok;
	i = json_integer_value(v);
	if (i < min || i > max) {
		jsonf_set_err(err, errlen,
		              "%s: %" JSON_INTEGER_FORMAT " out of range [%" JSON_INTEGER_FORMAT
		              ", %" JSON_INTEGER_FORMAT "]",
		              key, i, min, max);
		return false;
	}
	*out = i;
	return true;
}

bool jsonf_bool(const json_t *obj, const char *key, enum jsonf_need need, bool *out, char *err, size_t errlen)
{
	bool ok;
	const json_t *v = field(obj, key, need, TYPE(JSON_TRUE) | TYPE(JSON_FALSE), "true or false", &ok, err, errlen);

	if (!v)
		return ok;
	*out = json_is_true(v);
	return true;
}

bool jsonf_number(const json_t *obj, const char *key, enum jsonf_need need, double min, double max, bool min_exclusive,
                  double *out, char *err, size_t errlen)
{
	bool ok;
	const json_t *v = field(obj, key, need, TYPE(JSON_INTEGER) | TYPE(JSON_REAL), "a number", &ok, err, errlen);
	double d;

	if (!v)
		return ok;
	d = json_number_value(v);
	if (!isfinite(d) || d < min || (min_exclusive && d <= min) || d > max) {
		jsonf_set_err(err, errlen, "%s: %g out of range %s%g, %g]", key, d, min_exclusive ? "(" : "[", min,
		              max);
		return false;
	}
	*out = d;
	return true;
}
