/*
 * api_parse.c - the units a REST request may carry: a byte count (?lag= of
 * the replica checks) and a time (scheduled_at, schedule). Their contracts
 * are in api_internal.h; tests/check_api.c tests them by tables.
 *
 * Why a file of their own: the agent is to have one parser per unit (the
 * config's sizes and durations included). Until it does, the API's two live
 * here, whole, so that one change can point their callers at that module.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "agent/api_internal.h"

bool api_parse_bytes(const char *s, int64_t *out)
{
	static const struct {
		const char *name;
		int shift;
	} units[] = {
		{ "", 0 },     { "b", 0 },     { "k", 10 },  { "kb", 10 }, { "kib", 10 }, { "m", 20 },
		{ "mb", 20 },  { "mib", 20 },  { "g", 30 },  { "gb", 30 }, { "gib", 30 }, { "t", 40 },
		{ "tb", 40 },  { "tib", 40 },
	};
	uint64_t v = 0;
	const char *p = s;
	char unit[4];
	size_t n = 0;

	if (!s || !isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (uint64_t)INT64_MAX / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > (uint64_t)INT64_MAX)
			return false;
	}
	/* spaces only between the number and a unit */
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (!isalpha((unsigned char)*p))
			return false;
	}
	for (; *p && isalpha((unsigned char)*p); p++) {
		if (n >= sizeof(unit) - 1)
			return false;
		unit[n++] = (char)tolower((unsigned char)*p);
	}
	unit[n] = '\0';
	if (*p)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		if (units[i].shift && v > ((uint64_t)INT64_MAX >> units[i].shift))
			return false;
		*out = (int64_t)(v << units[i].shift);
		return true;
	}
	return false;
}

/* n decimal digits at *p (advanced), as an int. */
static bool take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool api_parse_time(const char *s, int64_t *out)
{
	int year, mon, day, hour, min, sec = 0, off_h = 0, off_m = 0, sign = 0;
	const char *p = s;
	struct tm tm, back;
	time_t t;

	if (!s || !*s)
		return false;
	/* Unix seconds. */
	if (strspn(s, "0123456789") == strlen(s)) {
		int64_t v = 0;

		if (strlen(s) > 12)
			return false;
		for (; *p; p++)
			v = v * 10 + (*p - '0');
		*out = v;
		return true;
	}
	if (!take_digits(&p, 4, &year) || *p++ != '-' || !take_digits(&p, 2, &mon) || *p++ != '-' ||
	    !take_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if (!take_digits(&p, 2, &hour) || *p++ != ':' || !take_digits(&p, 2, &min))
		return false;
	if (*p == ':') {
		p++;
		if (!take_digits(&p, 2, &sec))
			return false;
		if (*p == '.' || *p == ',') {
			p++;
			if (!isdigit((unsigned char)*p))
				return false;
			while (isdigit((unsigned char)*p))
				p++; /* fractions of a second: dropped */
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!take_digits(&p, 2, &off_h))
			return false;
		if (*p == ':')
			p++;
		if (!take_digits(&p, 2, &off_m))
			return false;
	} else {
		return false; /* a time without a zone is ambiguous */
	}
	if (*p || year < 1970 || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60 ||
	    off_h > 23 || off_m > 59)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	/* timegm normalises 31 February into March: refuse what it moved. */
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != day || back.tm_mon != mon - 1)
		return false;
	*out = (int64_t)t - (int64_t)sign * (off_h * 3600 + off_m * 60);
	return true;
}
