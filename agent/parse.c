/*
 * parse.c - one parser per unit (see parse.h for each one's contract).
 *
 * The functions are small and strict on purpose: an operator who types
 * "16 MB" or "2026-11-25T20:00Z" gets what they meant, and anything that
 * could mean two things ("5m", a time without a zone, "0x10") is refused
 * rather than guessed.
 */
#include "agent/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool parse_count(const char *s, int64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || !isdigit((unsigned char)*s))
		return false;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = (int64_t)v;
	return true;
}

bool parse_bytes(const char *s, int64_t *out)
{
	static const struct {
		const char *name;
		int shift;
	} units[] = {
		{ "", 0 },     { "b", 0 },  { "k", 10 },  { "kb", 10 },  { "kib", 10 }, { "m", 20 },  { "mb", 20 },
		{ "mib", 20 }, { "g", 30 }, { "gb", 30 }, { "gib", 30 }, { "t", 40 },   { "tb", 40 }, { "tib", 40 },
	};
	uint64_t v = 0;
	const char *p = s;
	char unit[4];
	size_t n = 0;

	if (s == NULL || !isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
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

bool parse_seconds(const char *s, double *out)
{
	char *end;
	double d;

	/* strtod alone would take "inf", "nan", "0x10" and leading spaces. */
	if (s == NULL || !*s || strspn(s, "0123456789.+-eE") != strlen(s))
		return false;
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(d) || d < 0)
		return false;
	*out = d == 0 ? 0 : d; /* "-0" is 0 */
	return true;
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

bool parse_time(const char *s, int64_t *out)
{
	int year, mon, day, hour, min, sec = 0, off_h = 0, off_m = 0, sign = 0;
	const char *p = s;
	struct tm tm, back;
	time_t t;

	if (s == NULL || !*s)
		return false;
	/* Unix seconds (12 digits reach the year 33658). */
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
	if (*p || year < 1970 || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60 || off_h > 23 ||
	    off_m > 59)
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

/* ---- base64 ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes into out (room for n / 4 * 3 bytes) when out is not NULL, the
 * decoded length in *len; false on bad input. */
static bool b64_run(const char *s, size_t n, unsigned char *out, size_t *len)
{
	size_t j = 0;

	if (n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i += 4) {
		unsigned int v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			int d;

			/* '=' only in the last quartet's last one or two places */
			if (c == '=' && i + 4 == n && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				pad++;
				v <<= 6;
				continue;
			}
			d = b64_value(c);
			if (d < 0 || pad)
				return false;
			v = (v << 6) | (unsigned int)d;
		}
		if (out != NULL) {
			out[j] = (unsigned char)(v >> 16);
			if (pad < 2)
				out[j + 1] = (unsigned char)(v >> 8);
			if (pad < 1)
				out[j + 2] = (unsigned char)v;
		}
		j += (size_t)(3 - pad);
	}
	*len = j;
	return true;
}

char *parse_base64_decode(const char *s, size_t n, size_t *out_len)
{
	unsigned char *out;
	size_t len;

	if (s == NULL || out_len == NULL || n % 4 != 0)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	if (!b64_run(s, n, out, &len)) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	*out_len = len;
	return (char *)out;
}

bool parse_base64_valid(const char *s, size_t n)
{
	size_t len;

	return s != NULL && b64_run(s, n, NULL, &len);
}

char *parse_base64_encode(const void *data, size_t n)
{
	const unsigned char *in = data;
	char *out;
	size_t o = 0, i = 0;

	if (n > ((size_t)-1) / 4 * 3 - 3)
		return NULL;
	out = malloc((n + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

/* A numeric address into its 16-byte form (IPv4 as ::ffff:a.b.c.d); the
 * number of significant bits (32 or 128) into *bits. */
static bool net_addr(const char *s, unsigned char out[16], unsigned *bits)
{
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = 0xff;
		out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		*bits = 32;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*bits = 128;
		return true;
	}
	return false;
}

bool parse_net(const char *s, struct parse_net *out)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits, prefix;
	struct parse_net r;

	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!net_addr(host, r.addr, &bits))
		return false;
	prefix = bits;
	if (slash) {
		int64_t p;

		if (!parse_count(slash + 1, &p) || p > bits || strlen(slash + 1) > 3)
			return false;
		prefix = (unsigned)p;
	}
	r.prefix = prefix + (128 - bits);
	for (unsigned i = r.prefix; i < 128; i++)
		if (r.addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	*out = r;
	return true;
}

bool parse_net_contains(const struct parse_net *net, const char *addr)
{
	unsigned char a[16];
	unsigned bits;

	if (addr == NULL || !net_addr(addr, a, &bits))
		return false;
	for (unsigned i = 0; i < net->prefix; i++)
		if ((a[i / 8] ^ net->addr[i / 8]) & (0x80u >> (i % 8)))
			return false;
	return true;
}
