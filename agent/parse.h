/*
 * parse.h - the agent's one parser per unit: counts, bytes, seconds, points
 * in time, base64, IP networks.
 *
 * Operators type the same kinds of values into the REST API, batonctl and
 * edit-config; each kind is read by one function here so that "16MB" or
 * "2026-11-25T20:00:00Z" means the same thing wherever it is typed, and the
 * edge cases (overflow, signs, units, garbage after the number) are decided
 * once and tested once (tests/check_parse.c). The config file is read by
 * libconfig, which has its own number syntax; these are for text.
 *
 * All functions take a NUL-terminated string (or bytes and a length), never
 * skip leading or trailing white space (callers trim what their protocol
 * allows), write *out only on success and return false on anything else.
 *
 * base64: etcd/ keeps its own codec (etcd_codec.c) and does not export it:
 * the layers forbid etcd/ to include agent/, its decoder has etcd's contract
 * (padding optional, canonical trailing bits, etcd_status errors), and the
 * agent's uses (HTTP basic auth, PEM bodies) want RFC 4648 with padding.
 * Exporting it would grow the etcd library's API for uses that are not
 * etcd's; the agent has exactly one decoder, this one.
 */
#ifndef BATON_PARSE_H
#define BATON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A whole number: decimal digits only (no sign, no unit), at most INT64_MAX. */
bool parse_count(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* A number of bytes: decimal digits, optionally spaces and a unit, case
 * ignored: b, k/kb/kib (2^10), m/mb/mib, g/gb/gib, t/tb/tib ("16MB",
 * "1 GiB", "4096"). Units are powers of 1024, as Postgres's memory units.
 * The result fits in int64; anything else (sign, fraction, unknown unit,
 * overflow) is false. */
bool parse_bytes(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* A duration in seconds: a finite decimal number >= 0 ("5", "2.5", "1e3";
 * not "-1", "0x10", "inf", "5s"). No unit: the keys that take one are all
 * in seconds, and "5m" would be ambiguous next to Postgres's minutes. */
bool parse_seconds(const char *s, double *out) __attribute__((warn_unused_result));

/* A point in time as Unix seconds: either all digits (at most 12: Unix
 * seconds) or ISO 8601 "YYYY-MM-DD[T ]HH:MM[:SS[.frac]]" followed by a zone,
 * "Z" or "+HH[:]MM"/"-HH[:]MM" (a time without a zone is ambiguous, so
 * refused). Fractions of a second are dropped; a leap second 60 counts as
 * 59; dates before 1970 and impossible dates (31 February) are refused. */
bool parse_time(const char *s, int64_t *out) __attribute__((warn_unused_result));

/* Standard base64 (RFC 4648 alphabet, padding required: n % 4 == 0, at most
 * two '=' only at the end) of n bytes into a malloc'd buffer, NUL-terminated
 * after *out_len bytes (caller frees; it may hold NUL bytes). n == 0 decodes
 * to "" (length 0). NULL on bad input or ENOMEM. */
char *parse_base64_decode(const char *s, size_t n, size_t *out_len) __attribute__((warn_unused_result));

/* Is s (n bytes) valid base64 as parse_base64_decode takes it? No allocation. */
bool parse_base64_valid(const char *s, size_t n);

/* An IP network: an address ("10.0.0.5", "::1") or address/prefix
 * ("10.0.0.0/8", "fd00::/8"), numeric only (no host names). IPv4 is held
 * as its IPv4-mapped IPv6 form, so "127.0.0.1" also matches a client seen
 * as "::ffff:127.0.0.1". Bits past the prefix must be zero ("10.0.0.1/8"
 * is refused: it is a typo for a host or a network). */
struct parse_net {
	unsigned char addr[16];
	unsigned prefix; /* 0..128 over the 16 bytes */
};
bool parse_net(const char *s, struct parse_net *out) __attribute__((warn_unused_result));

/* Does the numeric address addr ("127.0.0.2", "::ffff:127.0.0.2", "::1")
 * lie in net? False for anything that is not a numeric address. */
bool parse_net_contains(const struct parse_net *net, const char *addr);

/* Base64 with padding of n bytes, malloc'd and NUL-terminated (caller
 * frees); NULL on ENOMEM. */
char *parse_base64_encode(const void *data, size_t n) __attribute__((warn_unused_result));

#endif
