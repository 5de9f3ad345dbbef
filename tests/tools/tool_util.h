/*
 * tool_util.h - what the test clients (writer, poller) share: clocks in
 * milliseconds, the stop flag set by SIGTERM/SIGINT, option numbers, and
 * the pacing of a run at a fixed interval.
 */
#ifndef BATON_TESTS_TOOLS_TOOL_UTIL_H
#define BATON_TESTS_TOOLS_TOOL_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Set (to 1) by SIGTERM or SIGINT once tool_install_signals ran. */
extern volatile sig_atomic_t tool_stop_requested;

/* SIGTERM and SIGINT set tool_stop_requested; SIGPIPE is ignored. */
void tool_install_signals(void);

int64_t tool_mono_ms(void); /* CLOCK_MONOTONIC */
int64_t tool_unix_ms(void); /* wall clock, for output lines */

/* A whole decimal number in [min, max]; false (out untouched) otherwise. */
bool tool_parse_int(const char *s, long min, long max, long *out);

/* Advances *next (a tool_mono_ms time) by interval ms and sleeps until then,
 * or until a stop is requested. A run that fell more than an interval
 * behind starts again from now instead of bursting to catch up. */
void tool_pace(int64_t *next, long interval);

#endif
