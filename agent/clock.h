/*
 * clock.h - the agent's one place that reads the clocks.
 *
 * Two clocks matter to an HA agent and they must never be mixed up:
 *   - the monotonic clock (CLOCK_MONOTONIC) for every interval, timeout and
 *     deadline (the lease deadline above all): it never jumps when an
 *     operator or NTP sets the time;
 *   - the wall clock (CLOCK_REALTIME) only for what people and other hosts
 *     read: log stamps, history records, scheduled switchovers.
 * Every reader in agent/ goes through here, so that a question such as
 * "which clock does the keeper's deadline use" has one answer. etcd/ and
 * pg/ may not include agent/ (the layers), so each keeps one internal reader
 * of its own: etcd_now_ms() and pg_now(), the same CLOCK_MONOTONIC, so their
 * values compare with clk_mono()'s (pg_now() == clk_mono() to the ns).
 * All functions are thread-safe and never fail (clock_gettime cannot fail
 * for these clocks on Linux).
 */
#ifndef BATON_CLOCK_H
#define BATON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic seconds (fractional) since an arbitrary point: intervals only. */
double clk_mono(void);
int64_t clk_mono_ms(void);
int64_t clk_mono_ns(void);

/* Wall-clock Unix time in seconds (fractional), and whole seconds. */
double clk_wall(void);
time_t clk_wall_s(void);
/* The wall clock as a timespec (log stamps with milliseconds). */
void clk_wall_ts(struct timespec *ts);

/* The absolute time `seconds` from now on the monotonic (resp. wall) clock,
 * normalised (0 <= tv_nsec < 1e9), for pthread_cond_timedwait on a condition
 * variable set to that clock. seconds <= 0 gives now; NaN counts as 0. */
void clk_mono_after(double seconds, struct timespec *abs);
void clk_wall_after(double seconds, struct timespec *abs);

/* Sleeps for seconds (monotonic), going back to sleep after a signal;
 * seconds <= 0 or NaN returns at once. */
void clk_sleep(double seconds);

#endif
