/*
 * pg_err.c - the error struct and the optional log hook of the pg/ library.
 *
 * The library never prints: failures travel back in a struct pg_err, and
 * progress (command lines, SQL at debug level) goes to a hook the program
 * installs once at start-up. Without a hook the library is silent.
 */
#include "pg/pg_err.h"

#include <stdio.h>

static pg_log_hook log_hook;

void pg_set_log_hook(pg_log_hook hook)
{
	log_hook = hook;
}

void pg_err_set(struct pg_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	/* Truncation is acceptable for a message; vsnprintf always terminates. */
	if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) < 0)
		err->msg[0] = '\0';
	va_end(ap);
}

void pg_log(enum pg_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (log_hook == NULL)
		return;
	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	log_hook(level, line);
}
