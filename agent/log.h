/*
 * log.h - the agent's one logging API.
 *
 * Lines go to stderr (journald / the test's log file) as
 *   2026-11-25 18:07:28.123 INFO  node1: lost leader lease renewal for 4.1s, demoting [loop.c:212]
 * (local wall-clock time in ms, level, the prefix if set, the message, the
 * source file's base name and line). One call is one line: each is written
 * whole under a mutex, and newlines inside the message become spaces.
 * Other control characters (bytes below 0x20, 0x7f, and the C1 controls
 * U+0080..U+009F in UTF-8) are written as \xNN, so a value read from etcd
 * or a peer (a member name, a state, an error text) can never move the
 * cursor, rewrite a terminal's title or forge a second line.
 * log_write preserves errno; the default level is info.
 * Formats are checked as printf formats. Never log passwords, tokens or whole
 * connection strings; log_scrub() masks password=... in a conninfo.
 */
#ifndef BATON_LOG_H
#define BATON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
/* "debug", "info", "warning"/"warn", "error" -> level; false if unknown. */
bool log_level_parse(const char *name, enum log_level *out);
/* Prefix added after the level on every line (e.g. the member name). */
void log_set_prefix(const char *prefix);
void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
bool log_enabled(enum log_level lvl);

/* Does each line start with a journal priority "<N>" (stderr is systemd's
 * journal stream)? For a process that writes its own lines (the fence). */
bool log_journal_prefix(void);
/* Copies conninfo into buf with the value of password=... replaced by ***. */
void log_scrub(const char *conninfo, char *buf, size_t len);

/* Copies in into out (always terminated, cut to fit) with every control
 * character escaped as \xNN: bytes below 0x20 (newlines too unless
 * keep_newline), 0x7f, the UTF-8 encodings of U+0080..U+009F (C2 80..C2
 * 9F, written \xc2\xNN), and of the invisible format characters: bidi
 * controls U+202A..U+202E and U+2066..U+2069, zero-width and other format
 * characters (U+00AD, U+061C, U+180E, U+200B..U+200F, U+2028..U+2029,
 * U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB, U+E0000..U+E007F), each byte
 * written \xNN. Returns the length written. */
size_t log_escape(const char *in, char *out, size_t outlen, bool keep_newline);

/* A stdio stream that writes to under with log_escape's rules, newlines
 * kept (for a CLI's stdout/stderr: whatever is printed, a terminal gets no
 * control sequence from it). Closing it flushes and leaves under open.
 * NULL when the stream cannot be made. */
FILE *log_escaping_stream(FILE *under);

#define log_debug(...) log_write(LOG_LVL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_write(LOG_LVL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LVL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_write(LOG_LVL_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
