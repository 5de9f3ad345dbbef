/*
 * pg_err.h - the error convention of the pg/ library.
 *
 * Every pg_* function that can fail returns bool (true = success) and, on
 * failure, fills a caller-provided struct pg_err with one line that names
 * the operation and the cause (file, command, SQLSTATE...). The library
 * never prints to stdout, never exits. It may report progress through an
 * optional log hook (pg_set_log_hook), e.g. the command lines it runs.
 */
#ifndef BATON_PG_ERR_H
#define BATON_PG_ERR_H

#include <stdarg.h>
#include <stdbool.h>

#define PG_WUR __attribute__((warn_unused_result))

struct pg_err {
	char msg[512];
};

enum pg_log_level { PG_LOG_DEBUG, PG_LOG_INFO, PG_LOG_WARNING, PG_LOG_ERROR };

typedef void (*pg_log_hook)(enum pg_log_level level, const char *msg);

/* Install a hook that receives the library's log lines (NULL = silent).
 * Set once at start-up, before threads start. */
void pg_set_log_hook(pg_log_hook hook);

/* Library-internal: format into err (always NUL-terminated). */
void pg_err_set(struct pg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Library-internal: send a line to the hook, if any. */
void pg_log(enum pg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
