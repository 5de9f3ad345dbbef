/*
 * clock.c - the agent's clock readers (see clock.h for which clock is for
 * what).
 */
#include "agent/clock.h"

#include <errno.h>
#include <math.h>

#define NS_PER_S 1000000000LL

static struct timespec read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts;
}

double clk_mono(void)
{
	struct timespec ts = read_clock(CLOCK_MONOTONIC);

	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t clk_mono_ms(void)
{
	struct timespec ts = read_clock(CLOCK_MONOTONIC);

	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clk_mono_ns(void)
{
	struct timespec ts = read_clock(CLOCK_MONOTONIC);

	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

double clk_wall(void)
{
	struct timespec ts = read_clock(CLOCK_REALTIME);

	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

time_t clk_wall_s(void)
{
	return read_clock(CLOCK_REALTIME).tv_sec;
}

void clk_wall_ts(struct timespec *ts)
{
	*ts = read_clock(CLOCK_REALTIME);
}

/* now + seconds, with the seconds split in whole and ns so that no
 * precision is lost on large monotonic values; a huge wait is capped at a
 * year (a timespec cannot overflow). */
static void after(clockid_t id, double seconds, struct timespec *abs)
{
	struct timespec now = read_clock(id);
	double whole;
	long ns;

	if (!(seconds > 0))
		seconds = 0; /* also NaN */
	if (seconds > 366.0 * 86400)
		seconds = 366.0 * 86400;
	whole = floor(seconds);
	ns = (long)((seconds - whole) * 1e9);
	abs->tv_sec = now.tv_sec + (time_t)whole;
	abs->tv_nsec = now.tv_nsec + ns;
	if (abs->tv_nsec >= NS_PER_S) {
		abs->tv_sec++;
		abs->tv_nsec -= NS_PER_S;
	}
}

void clk_mono_after(double seconds, struct timespec *abs)
{
	after(CLOCK_MONOTONIC, seconds, abs);
}

void clk_wall_after(double seconds, struct timespec *abs)
{
	after(CLOCK_REALTIME, seconds, abs);
}

void clk_sleep(double seconds)
{
	struct timespec until;

	if (!(seconds > 0))
		return;
	clk_mono_after(seconds, &until);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}
