/*
 * check_parse.c - unit tests of agent/parse.c (one parser per unit) and
 * agent/clock.c (the agent's clock readers).
 *
 * The parsers are tables of (input -> accepted?, value), with the edges each
 * must decide: overflow at INT64_MAX and at each unit's shift, signs,
 * fractions, units in any case, spaces, garbage after the number, impossible
 * dates, zones, padding. The clock tests check what callers rely on: the
 * monotonic readers agree and never go back, the "after" helpers give
 * normalised absolute times, a sleep sleeps.
 */
#include "agent/clock.h"
#include "agent/parse.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- counts and bytes ---- */

static const struct int_case {
	const char *in;
	bool ok;
	int64_t want;
} count_cases[] = {
	{ "0", true, 0 },
	{ "1", true, 1 },
	{ "007", true, 7 },
	{ "9223372036854775807", true, INT64_MAX },
	{ "9223372036854775808", false, 0 }, /* INT64_MAX + 1 */
	{ "99999999999999999999", false, 0 },
	{ "", false, 0 },
	{ "-1", false, 0 },
	{ "+1", false, 0 },
	{ " 1", false, 0 },
	{ "1 ", false, 0 },
	{ "1.0", false, 0 },
	{ "1k", false, 0 },
	{ "0x10", false, 0 },
	{ "abc", false, 0 },
};

START_TEST(test_count)
{
	const struct int_case *c = &count_cases[_i];
	int64_t v = -42;

	ck_assert_msg(parse_count(c->in, &v) == c->ok, "parse_count(\"%s\")", c->in);
	if (c->ok)
		ck_assert_int_eq(v, c->want);
	else
		ck_assert_int_eq(v, -42); /* untouched on failure */
}
END_TEST

static const struct int_case bytes_cases[] = {
	{ "0", true, 0 },
	{ "4096", true, 4096 },
	{ "1b", true, 1 },
	{ "1B", true, 1 },
	{ "16MB", true, 16 << 20 },
	{ "16mb", true, 16 << 20 },
	{ "16 MB", true, 16 << 20 },
	{ "16   MiB", true, 16 << 20 },
	{ "1k", true, 1024 },
	{ "1kB", true, 1024 },
	{ "1KiB", true, 1024 },
	{ "3g", true, 3LL << 30 },
	{ "2GB", true, 2LL << 30 },
	{ "1TiB", true, 1LL << 40 },
	{ "9223372036854775807", true, INT64_MAX },
	{ "9223372036854775807b", true, INT64_MAX },
	{ "9223372036854775808", false, 0 },
	{ "8388607T", true, 8388607LL << 40 }, /* the largest that fits */
	{ "8388608T", false, 0 },              /* 2^63: one over */
	{ "9007199254740991k", true, 9007199254740991LL << 10 },
	{ "9007199254740992k", false, 0 },
	{ "", false, 0 },
	{ "MB", false, 0 },
	{ "-1", false, 0 },
	{ "-1MB", false, 0 },
	{ "+1", false, 0 },
	{ "1.5MB", false, 0 },
	{ "1 ", false, 0 }, /* a space but no unit */
	{ " 1", false, 0 },
	{ "1MB ", false, 0 },
	{ "1PB", false, 0 }, /* no such unit here */
	{ "1mbb", false, 0 },
	{ "1kibi", false, 0 },
	{ "1M B", false, 0 },
	{ "0x10", false, 0 },
	{ "12abc", false, 0 },
};

START_TEST(test_bytes)
{
	const struct int_case *c = &bytes_cases[_i];
	int64_t v = -42;

	ck_assert_msg(parse_bytes(c->in, &v) == c->ok, "parse_bytes(\"%s\")", c->in);
	if (c->ok)
		ck_assert_int_eq(v, c->want);
	else
		ck_assert_int_eq(v, -42);
}
END_TEST

/* ---- seconds ---- */

static const struct sec_case {
	const char *in;
	bool ok;
	double want;
} seconds_cases[] = {
	{ "0", true, 0 },         { "5", true, 5 },      { "2.5", true, 2.5 },  { ".5", true, 0.5 },
	{ "1e3", true, 1000 },    { "1E-1", true, 0.1 }, { "+3", true, 3 },     { "-0", true, 0 },
	{ "1e308", true, 1e308 }, { "1e309", false, 0 }, /* overflows to inf */
	{ "-1", false, 0 },       { "-0.5", false, 0 },  { "", false, 0 },      { "inf", false, 0 },
	{ "nan", false, 0 },      { "0x10", false, 0 },  { "5s", false, 0 },    { "5m", false, 0 },
	{ " 5", false, 0 },       { "5 ", false, 0 },    { "1.2.3", false, 0 }, { "e", false, 0 },
	{ "--1", false, 0 },
};

START_TEST(test_seconds)
{
	const struct sec_case *c = &seconds_cases[_i];
	double v = -42;

	ck_assert_msg(parse_seconds(c->in, &v) == c->ok, "parse_seconds(\"%s\")", c->in);
	if (c->ok) {
		ck_assert_double_eq(v, c->want);
		ck_assert(!signbit(v));
	} else {
		ck_assert_double_eq(v, -42);
	}
}
END_TEST

/* ---- points in time ---- */

static const struct int_case time_cases[] = {
	{ "0", true, 0 },
	{ "1764000000", true, 1764000000 },
	{ "999999999999", true, 999999999999LL },
	{ "1000000000000", false, 0 }, /* 13 digits */
	{ "2025-11-25T20:00:00Z", true, 1764100800 },
	{ "2025-11-25t20:00:00z", true, 1764100800 },
	{ "2025-11-25 20:00:00Z", true, 1764100800 },
	{ "2025-11-25T20:00Z", true, 1764100800 },
	{ "2025-11-25T20:00:00.999Z", true, 1764100800 }, /* fractions dropped */
	{ "2025-11-25T20:00:00,5Z", true, 1764100800 },
	{ "2025-11-25T21:00:00+01:00", true, 1764100800 },
	{ "2025-11-25T21:00:00+0100", true, 1764100800 },
	{ "2025-11-25T18:30:00-01:30", true, 1764100800 },
	{ "2025-11-25T19:59:60Z", true, 1764100799 }, /* a leap second counts as :59 */
	{ "1970-01-01T00:00:00Z", true, 0 },
	{ "1970-01-01T00:30:00+01:00", true, -1800 },
	{ "2024-02-29T00:00:00Z", true, 1709164800 }, /* a leap day */
	{ "2026-02-29T00:00:00Z", false, 0 },
	{ "2026-02-31T00:00:00Z", false, 0 },
	{ "2026-04-31T00:00:00Z", false, 0 },
	{ "2026-13-01T00:00:00Z", false, 0 },
	{ "2026-00-01T00:00:00Z", false, 0 },
	{ "2026-01-00T00:00:00Z", false, 0 },
	{ "2026-01-01T24:00:00Z", false, 0 },
	{ "2026-01-01T23:60:00Z", false, 0 },
	{ "2026-01-01T23:59:61Z", false, 0 },
	{ "1969-12-31T23:59:59Z", false, 0 },
	{ "2025-11-25T20:00:00", false, 0 }, /* no zone */
	{ "2025-11-25T20:00:00+1", false, 0 },
	{ "2025-11-25T20:00:00+24:00", false, 0 },
	{ "2025-11-25T20:00:00+01:60", false, 0 },
	{ "2025-11-25T20:00:00Zjunk", false, 0 },
	{ "2025-11-25T20:00:00.Z", false, 0 },
	{ "2025-11-25", false, 0 },
	{ "26-11-25T20:00:00Z", false, 0 },
	{ "2026/11/25T20:00:00Z", false, 0 },
	{ "", false, 0 },
	{ "-1", false, 0 },
	{ "now", false, 0 },
	{ " 2025-11-25T20:00:00Z", false, 0 },
};

START_TEST(test_time)
{
	const struct int_case *c = &time_cases[_i];
	int64_t v = -42;

	ck_assert_msg(parse_time(c->in, &v) == c->ok, "parse_time(\"%s\")", c->in);
	if (c->ok)
		ck_assert_int_eq(v, c->want);
	else
		ck_assert_int_eq(v, -42);
}
END_TEST

START_TEST(test_null_inputs)
{
	int64_t i = 0;
	double d = 0;
	size_t n = 0;

	ck_assert(!parse_count(NULL, &i));
	ck_assert(!parse_bytes(NULL, &i));
	ck_assert(!parse_seconds(NULL, &d));
	ck_assert(!parse_time(NULL, &i));
	ck_assert_ptr_null(parse_base64_decode(NULL, 0, &n));
	ck_assert(!parse_base64_valid(NULL, 0));
}
END_TEST

/* ---- base64 ---- */

static const struct b64_case {
	const char *in;
	const char *out; /* NULL: refused */
	size_t out_len;
} b64_cases[] = {
	{ "", "", 0 },
	{ "Zg==", "f", 1 },
	{ "Zm8=", "fo", 2 },
	{ "Zm9v", "foo", 3 },
	{ "Zm9vYg==", "foob", 4 },
	{ "Zm9vYmE=", "fooba", 5 },
	{ "Zm9vYmFy", "foobar", 6 },
	{ "dXNlcjpwYXNz", "user:pass", 9 },
	{ "AAE=", "\0\1", 2 },         /* NUL bytes inside */
	{ "+/+/", "\xfb\xff\xbf", 3 }, /* the last two letters of the alphabet */
	{ "Zg", NULL, 0 },             /* padding is required */
	{ "Zm8", NULL, 0 },
	{ "Zg=", NULL, 0 },
	{ "Z===", NULL, 0 },
	{ "====", NULL, 0 },
	{ "Zg==Zg==", NULL, 0 }, /* padding only at the very end */
	{ "Z=g=", NULL, 0 },
	{ "Zm9v\n", NULL, 0 },
	{ "Zm9 ", NULL, 0 },
	{ "Zm-_", NULL, 0 }, /* the URL alphabet is not this one */
	{ "Zm9v!", NULL, 0 },
};

START_TEST(test_base64_decode)
{
	const struct b64_case *c = &b64_cases[_i];
	size_t len = 12345;
	char *out = parse_base64_decode(c->in, strlen(c->in), &len);

	ck_assert_int_eq(parse_base64_valid(c->in, strlen(c->in)), c->out != NULL);
	if (c->out == NULL) {
		ck_assert_msg(out == NULL, "\"%s\" decoded", c->in);
		ck_assert_uint_eq(len, 12345);
		return;
	}
	ck_assert_msg(out != NULL, "\"%s\" refused", c->in);
	ck_assert_uint_eq(len, c->out_len);
	ck_assert(memcmp(out, c->out, len) == 0);
	ck_assert_int_eq(out[len], '\0');
	free(out);
}
END_TEST

/* Only the n bytes given are read: a longer string is cut where n says. */
START_TEST(test_base64_length_bounds)
{
	size_t len = 0;
	char *out = parse_base64_decode("Zm9vYmFy!!!!", 8, &len);

	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "foobar");
	free(out);
	ck_assert_ptr_null(parse_base64_decode("Zm9vYmFy", 7, &len));
}
END_TEST

START_TEST(test_base64_round_trip)
{
	unsigned char data[300];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(data); n++) {
		char *enc = parse_base64_encode(data, n), *dec;
		size_t len = 0;

		ck_assert_ptr_nonnull(enc);
		ck_assert_uint_eq(strlen(enc), (n + 2) / 3 * 4);
		dec = parse_base64_decode(enc, strlen(enc), &len);
		ck_assert_ptr_nonnull(dec);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(dec, data, n) == 0);
		free(enc);
		free(dec);
	}
	{
		char *e = parse_base64_encode("foobar", 6);

		ck_assert_str_eq(e, "Zm9vYmFy");
		free(e);
		e = parse_base64_encode("fooba", 5);
		ck_assert_str_eq(e, "Zm9vYmE=");
		free(e);
		e = parse_base64_encode("f", 1);
		ck_assert_str_eq(e, "Zg==");
		free(e);
	}
}
END_TEST

/* ---- clock ---- */

START_TEST(test_clock_monotonic)
{
	double a = clk_mono(), b;
	int64_t ms = clk_mono_ms(), ns = clk_mono_ns();
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* the readers read the same clock */
	ck_assert(fabs(a - ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9)) < 1.0);
	ck_assert(llabs(ms - clk_mono_ns() / 1000000) < 1000);
	ck_assert(fabs((double)ns / 1e9 - a) < 1.0);
	for (int i = 0; i < 1000; i++) {
		b = clk_mono();
		ck_assert(b >= a);
		a = b;
	}
}
END_TEST

START_TEST(test_clock_wall)
{
	time_t t = time(NULL);
	struct timespec ts;

	ck_assert(llabs((long long)clk_wall_s() - (long long)t) <= 1);
	ck_assert(fabs(clk_wall() - (double)t) < 2.0);
	clk_wall_ts(&ts);
	ck_assert(llabs((long long)ts.tv_sec - (long long)t) <= 1);
	ck_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
}
END_TEST

static double ts_seconds(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

START_TEST(test_clock_after)
{
	static const double waits[] = { 0, 0.0000001, 0.5, 0.999999999, 1, 1.5, 2.25, 1e9, -1, NAN, INFINITY };
	struct timespec abs;

	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		double before = clk_mono(), want = isfinite(waits[i]) && waits[i] > 0 ? waits[i] : 0, after;

		if (want > 366.0 * 86400 || (isinf(waits[i]) && waits[i] > 0))
			want = 366.0 * 86400; /* capped */
		clk_mono_after(waits[i], &abs);
		after = clk_mono();
		ck_assert(abs.tv_nsec >= 0 && abs.tv_nsec < 1000000000L);
		ck_assert_msg(ts_seconds(&abs) >= before + want - 1e-6 && ts_seconds(&abs) <= after + want + 1e-6,
		              "wait %g", waits[i]);
	}
	clk_wall_after(2, &abs);
	ck_assert(abs.tv_nsec >= 0 && abs.tv_nsec < 1000000000L);
	ck_assert(fabs(ts_seconds(&abs) - clk_wall() - 2) < 0.5);
}
END_TEST

START_TEST(test_clock_sleep)
{
	double t0 = clk_mono();

	clk_sleep(0.05);
	ck_assert(clk_mono() - t0 >= 0.05);
	t0 = clk_mono();
	clk_sleep(-1);
	clk_sleep(NAN);
	clk_sleep(0);
	ck_assert(clk_mono() - t0 < 0.05);
}
END_TEST

/* IP networks for restapi.allowlist: each net against addresses in and out. */
static const struct net_case {
	const char *net;
	bool ok;
	const char *in, *out; /* NULL: not checked */
} net_cases[] = {
	{ "127.0.0.1", true, "127.0.0.1", "127.0.0.2" },
	{ "127.0.0.1", true, "::ffff:127.0.0.1", "::1" },
	{ "10.0.0.0/8", true, "10.255.1.2", "11.0.0.1" },
	{ "10.1.2.0/24", true, "10.1.2.254", "10.1.3.0" },
	{ "0.0.0.0/0", true, "192.0.2.1", "::1" },
	{ "::1", true, "::1", "::2" },
	{ "fd00::/8", true, "fd12:3456::1", "fe80::1" },
	{ "::/0", true, "2001:db8::1", "unknown" },
	{ "10.0.0.1/8", false, NULL, NULL }, /* host bits set */
	{ "10.0.0.0/33", false, NULL, NULL },
	{ "10.0.0.0/", false, NULL, NULL },
	{ "10.0.0.0/-1", false, NULL, NULL },
	{ "10.0.0.0/08", true, "10.0.0.9", "9.0.0.0" },
	{ "::1/129", false, NULL, NULL },
	{ "db1.example.com", false, NULL, NULL },
	{ "", false, NULL, NULL },
	{ "/8", false, NULL, NULL },
	{ "10.0.0", false, NULL, NULL },
	{ " 10.0.0.1", false, NULL, NULL },
};

START_TEST(test_net)
{
	const struct net_case *c = &net_cases[_i];
	struct parse_net n;

	ck_assert_msg(parse_net(c->net, &n) == c->ok, "%s", c->net);
	if (!c->ok)
		return;
	if (c->in)
		ck_assert_msg(parse_net_contains(&n, c->in), "%s not in %s", c->in, c->net);
	if (c->out)
		ck_assert_msg(!parse_net_contains(&n, c->out), "%s in %s", c->out, c->net);
	ck_assert(!parse_net_contains(&n, NULL));
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tp = tcase_create("parse");
	TCase *tc = tcase_create("clock");

	tcase_add_loop_test(tp, test_count, 0, (int)(sizeof(count_cases) / sizeof(count_cases[0])));
	tcase_add_loop_test(tp, test_net, 0, (int)(sizeof(net_cases) / sizeof(net_cases[0])));
	tcase_add_loop_test(tp, test_bytes, 0, (int)(sizeof(bytes_cases) / sizeof(bytes_cases[0])));
	tcase_add_loop_test(tp, test_seconds, 0, (int)(sizeof(seconds_cases) / sizeof(seconds_cases[0])));
	tcase_add_loop_test(tp, test_time, 0, (int)(sizeof(time_cases) / sizeof(time_cases[0])));
	tcase_add_test(tp, test_null_inputs);
	tcase_add_loop_test(tp, test_base64_decode, 0, (int)(sizeof(b64_cases) / sizeof(b64_cases[0])));
	tcase_add_test(tp, test_base64_length_bounds);
	tcase_add_test(tp, test_base64_round_trip);
	suite_add_tcase(s, tp);

	tcase_add_test(tc, test_clock_monotonic);
	tcase_add_test(tc, test_clock_wall);
	tcase_add_test(tc, test_clock_after);
	tcase_add_test(tc, test_clock_sleep);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(parse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
