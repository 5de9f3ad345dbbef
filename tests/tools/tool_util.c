/*
 * tool_util.c - the shared parts of the test clients (see tool_util.h).
 */
#include "tests/tools/tool_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t tool_stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	tool_stop_requested = 1;
}

void tool_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int64_t tool_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tool_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tool_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

void tool_pace(int64_t *next, long interval)
{
	*next += interval;
	for (;;) {
		int64_t now = tool_mono_ms(), left = *next - now;
		struct timespec ts;

		if (left <= 0) {
			if (left < -interval)
				*next = now; /* fell behind: do not burst to catch up */
			break;
		}
		if (tool_stop_requested)
			break;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
}
