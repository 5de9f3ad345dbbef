/*
 * log.c - the agent's one logging API.
 *
 * Every line goes to stderr, where systemd's journal or a test harness picks
 * it up, in the form
 *
 *   2026-11-25 18:07:28.123 INFO  node1: promoted to primary [loop.c:212]
 *
 * i.e. wall-clock time with milliseconds, the level padded to five columns,
 * the optional prefix (the member name, set once at start-up) and the
 * message, followed by the source location (under systemd, with stderr
 * connected to the journal, preceded by the syslog priority "<N>", see
 * log_journal_detect). Each line is formatted into a
 * local buffer first and written with a single fwrite() under a mutex, so
 * lines from the loop thread and the REST API thread never interleave.
 *
 * Messages carry values read from etcd and from peers, which anyone who can
 * write a key controls: the final message is escaped (log_escape), so no
 * control character or terminal escape reaches the journal or a terminal.
 * log_escaping_stream() applies the same rule to a whole stream, for
 * batonctl's output.
 *
 * log_scrub() exists because connection strings are the one place a secret
 * is likely to reach a log line by accident: it copies a libpq conninfo
 * (keyword/value or URI form) with every password replaced by "***".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* fopencookie; the build defines it (AC_USE_SYSTEM_EXTENSIONS), a fuzz build may not */
#endif
#include "agent/log.h"

#include "agent/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_PREFIX_MAX 128

static atomic_int log_min_level = LOG_LVL_INFO;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char log_prefix[LOG_PREFIX_MAX]; /* guarded by log_mutex */

static const char *const level_names[] = {
	[LOG_LVL_DEBUG] = "DEBUG",
	[LOG_LVL_INFO] = "INFO",
	[LOG_LVL_WARN] = "WARN",
	[LOG_LVL_ERROR] = "ERROR",
};

/* syslog(3) priorities of the levels, for the journal's "<N>" line prefix. */
static const int level_syslog[] = {
	[LOG_LVL_DEBUG] = 7,
	[LOG_LVL_INFO] = 6,
	[LOG_LVL_WARN] = 4,
	[LOG_LVL_ERROR] = 3,
};

static pthread_once_t log_journal_once = PTHREAD_ONCE_INIT;
static bool log_to_journal;

/* Under systemd, stderr connected to the journal is announced by
 * JOURNAL_STREAM=DEV:INODE (systemd.exec(5)); when it names our stderr, each
 * line starts with "<N>", which journald turns into the entry's priority
 * (SyslogLevelPrefix=, on by default) and strips. Anywhere else (a terminal,
 * a test's log file, a pipe to another program) lines stay as they are. */
static void log_journal_detect(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return;
	if (fstat(STDERR_FILENO, &st) != 0)
		return;
	log_to_journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_journal_prefix(void)
{
	pthread_once(&log_journal_once, log_journal_detect);
	return log_to_journal;
}

void log_set_level(enum log_level lvl)
{
	if (lvl < LOG_LVL_DEBUG)
		lvl = LOG_LVL_DEBUG;
	if (lvl > LOG_LVL_ERROR)
		lvl = LOG_LVL_ERROR;
	atomic_store(&log_min_level, (int)lvl);
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl >= atomic_load(&log_min_level);
}

bool log_level_parse(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} names[] = {
		{ "debug", LOG_LVL_DEBUG }, { "info", LOG_LVL_INFO },   { "warning", LOG_LVL_WARN },
		{ "warn", LOG_LVL_WARN },   { "error", LOG_LVL_ERROR },
	};

	if (name == NULL)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			if (out != NULL)
				*out = names[i].lvl;
			return true;
		}
	}
	return false;
}

void log_set_prefix(const char *prefix)
{
	pthread_mutex_lock(&log_mutex);
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix != NULL ? prefix : "");
	pthread_mutex_unlock(&log_mutex);
}

/* __FILE__ may be a long relative or absolute path in an out-of-tree build;
 * the base name is enough to find the line. */
static const char *base_name(const char *file)
{
	const char *slash;

	if (file == NULL)
		return "?";
	slash = strrchr(file, '/');
	return slash != NULL ? slash + 1 : file;
}

/* Appends with snprintf semantics; *pos never passes cap - 1. */
static void append(char *buf, size_t cap, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= cap - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos += (size_t)n;
	if (*pos > cap - 1)
		*pos = cap - 1;
}

/* Invisible format characters a terminal would act on or hide: bidi
 * embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069),
 * which reorder what follows them (a member name could make a table lie),
 * and the other zero-width or invisible ones (soft hyphen, Arabic letter
 * mark, Mongolian vowel separator, U+200B..U+200F, line and paragraph
 * separators, U+2060..U+206F, the byte order mark, interlinear
 * annotations, tag characters U+E0000..U+E007F). Given the bytes at p
 * (NUL-terminated), returns how many the character takes, 0 when it is
 * none of them. Only well-formed UTF-8 sequences match. */
static size_t invisible_len(const unsigned char *p)
{
	if (p[0] == 0xc2 && p[1] == 0xad)
		return 2; /* U+00AD soft hyphen */
	if (p[0] == 0xd8 && p[1] == 0x9c)
		return 2; /* U+061C Arabic letter mark */
	if (p[0] == 0xe1 && p[1] == 0xa0 && p[2] == 0x8e)
		return 3; /* U+180E */
	if (p[0] == 0xe2 && p[1] == 0x80 && ((p[2] >= 0x8b && p[2] <= 0x8f) || (p[2] >= 0xa8 && p[2] <= 0xae)))
		return 3; /* U+200B..U+200F, U+2028..U+202E */
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa0 && p[2] <= 0xaf)
		return 3; /* U+2060..U+206F */
	if (p[0] == 0xef && ((p[1] == 0xbb && p[2] == 0xbf) || (p[1] == 0xbf && p[2] >= 0xb9 && p[2] <= 0xbb)))
		return 3; /* U+FEFF, U+FFF9..U+FFFB */
	if (p[0] == 0xf3 && p[1] == 0xa0 && (p[2] == 0x80 || p[2] == 0x81) && p[3] >= 0x80 && p[3] <= 0xbf)
		return 4; /* U+E0000..U+E007F */
	return 0;
}

/* Is the character at p (NUL-terminated) one to escape? Sets *n to the
 * bytes it takes (1, 2 for a C1 control, up to 4 for a format character). */
static bool is_control(const unsigned char *p, size_t *n)
{
	*n = 1;
	if (p[0] < 0x20 || p[0] == 0x7f)
		return true;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		*n = 2;
		return true;
	}
	*n = invisible_len(p);
	if (*n > 0)
		return true;
	*n = 1;
	return false;
}

size_t log_escape(const char *in, char *out, size_t outlen, bool keep_newline)
{
	static const char hex[] = "0123456789abcdef";
	size_t pos = 0;

	if (out == NULL || outlen == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)(in != NULL ? in : ""); *p != '\0'; p++) {
		size_t n;

		if (!is_control(p, &n) || (keep_newline && *p == '\n')) {
			if (pos + 1 >= outlen)
				break;
			out[pos++] = (char)*p;
			continue;
		}
		if (pos + 4 * n >= outlen)
			break;
		for (size_t i = 0; i < n; i++) {
			out[pos++] = '\\';
			out[pos++] = 'x';
			out[pos++] = hex[p[i] >> 4];
			out[pos++] = hex[p[i] & 0xf];
		}
		p += n - 1;
	}
	out[pos] = '\0';
	return pos;
}

/* Writes one line. errno is preserved, so a caller may log and then still
 * report strerror(errno). Over-long messages are cut and marked with "...". */
void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	char msg[LOG_LINE_MAX];
	char stamp[32];
	size_t pos = 0;
	size_t msg_len, room;
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int saved_errno = errno;
	int n;

	if (!log_enabled(lvl))
		return;
	if (lvl < LOG_LVL_DEBUG || lvl > LOG_LVL_ERROR)
		lvl = LOG_LVL_ERROR;

	clk_wall_ts(&ts);
	localtime_r(&ts.tv_sec, &tm);
	if (strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		stamp[0] = '\0';

	errno = saved_errno; /* for %m */
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	msg_len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	/* Messages end at the line: drop trailing newlines and flatten inner ones,
	 * so one call is one line in the journal; every other control
	 * character is escaped below. */
	while (msg_len > 0 && (msg[msg_len - 1] == '\n' || msg[msg_len - 1] == '\r'))
		msg_len--;
	msg[msg_len] = '\0';
	for (size_t i = 0; i < msg_len; i++)
		if (msg[i] == '\n' || msg[i] == '\r')
			msg[i] = ' ';

	pthread_once(&log_journal_once, log_journal_detect);
	pthread_mutex_lock(&log_mutex);
	if (log_to_journal)
		append(buf, sizeof(buf), &pos, "<%d>", level_syslog[lvl]);
	append(buf, sizeof(buf), &pos, "%s.%03ld %-5s ", stamp, ts.tv_nsec / 1000000L, level_names[lvl]);
	if (log_prefix[0] != '\0')
		append(buf, sizeof(buf), &pos, "%s: ", log_prefix);

	/* Leave room for the location; a message cut here (too long, or grown
	 * by its escapes) ends with "...". */
	room = sizeof(buf) - pos - 96;
	if (log_escape(msg, buf + pos, room, false) + 5 >= room || (size_t)n >= sizeof(msg)) {
		size_t end = pos + strlen(buf + pos);

		if (end > pos + 3 && end + 3 < sizeof(buf)) {
			memcpy(buf + end, "...", 3);
			end += 3;
		}
		buf[end] = '\0';
	}
	pos += strlen(buf + pos);
	append(buf, sizeof(buf), &pos, " [%s:%d]\n", base_name(file), line);
	if (pos == sizeof(buf) - 1)
		buf[pos - 1] = '\n';

	fwrite(buf, 1, pos, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mutex);
	errno = saved_errno;
}

/* ---- an escaping stream ---------------------------------------------------- */

struct esc_stream {
	FILE *under;
	unsigned char held[4]; /* the start of a multibyte character a later write completes */
	size_t n_held;
};

static void esc_put_hex(FILE *f, unsigned char c)
{
	fprintf(f, "\\x%02x", c);
}

/* How many bytes a character starting with lead takes when it may be one
 * that is_control escapes as a sequence (1 when it cannot be). */
static size_t esc_seq_len(unsigned char lead)
{
	switch (lead) {
	case 0xc2:
	case 0xd8:
		return 2;
	case 0xe1:
	case 0xe2:
	case 0xef:
		return 3;
	case 0xf3:
		return 4;
	default:
		return 1;
	}
}

/* Writes out what is held, as far as it is decided; with all, the rest too
 * (end of the stream). Newlines pass. */
static void esc_drain(struct esc_stream *e, bool all)
{
	while (e->n_held > 0) {
		unsigned char tmp[5] = { 0 };
		size_t want = esc_seq_len(e->held[0]), n = 1;
		bool partial = false;

		for (size_t i = 1; i < e->n_held && i < want; i++)
			partial |= (e->held[i] & 0xc0) != 0x80;
		/* A sequence still arriving: wait for its next byte. */
		if (!all && !partial && e->n_held < want)
			return;
		memcpy(tmp, e->held, e->n_held);
		if (e->held[0] != '\n' && is_control(tmp, &n)) {
			for (size_t i = 0; i < n; i++)
				esc_put_hex(e->under, e->held[i]);
		} else {
			n = 1;
			fputc(e->held[0], e->under);
		}
		memmove(e->held, e->held + n, e->n_held - n);
		e->n_held -= n;
	}
}

static ssize_t esc_write(void *cookie, const char *data, size_t size)
{
	struct esc_stream *e = cookie;

	for (size_t i = 0; i < size; i++) {
		e->held[e->n_held++] = (unsigned char)data[i];
		esc_drain(e, false);
	}
	/* The stream's own buffer decides when bytes leave; none wait here
	 * but the start of a character the next write completes. */
	if (fflush(e->under) != 0 || ferror(e->under))
		return -1;
	return (ssize_t)size;
}

static int esc_close(void *cookie)
{
	struct esc_stream *e = cookie;
	int rc;

	esc_drain(e, true);
	rc = fflush(e->under);
	free(e);
	return rc == 0 ? 0 : -1;
}

FILE *log_escaping_stream(FILE *under)
{
	cookie_io_functions_t io = { .read = NULL, .write = esc_write, .seek = NULL, .close = esc_close };
	struct esc_stream *e = calloc(1, sizeof(*e));
	FILE *f;

	if (e == NULL)
		return NULL;
	e->under = under;
	f = fopencookie(e, "w", io);
	if (f == NULL)
		free(e);
	return f;
}

/* A bounded writer for log_scrub: never overruns, always terminated. */
struct scrub_out {
	char *buf;
	size_t len, pos;
};

static void out_char(struct scrub_out *o, char ch)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos++] = ch;
	o->buf[o->pos] = '\0';
}

static void out_str(struct scrub_out *o, const char *s)
{
	for (; *s != '\0'; s++)
		out_char(o, *s);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool is_keyword_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* URI form: postgresql://user:secret@host/db?password=secret&sslmode=x */
static void scrub_uri(const char *s, struct scrub_out *o)
{
	const char *p = strstr(s, "://");
	const char *auth_end, *colon, *q;

	p += 3;
	for (const char *c = s; c < p; c++)
		out_char(o, *c);

	/* userinfo ends at the last '@' before the path or query */
	auth_end = NULL;
	for (q = p; *q != '\0' && *q != '/' && *q != '?'; q++)
		if (*q == '@')
			auth_end = q;
	if (auth_end != NULL) {
		colon = memchr(p, ':', (size_t)(auth_end - p));
		for (q = p; q < auth_end; q++) {
			out_char(o, *q);
			if (q == colon) {
				out_str(o, "***");
				q = auth_end - 1;
			}
		}
		p = auth_end;
	}
	/* the rest; mask the value of a password= query parameter */
	while (*p != '\0') {
		bool at_param = (p[-1] == '?' || p[-1] == '&');

		if (at_param && strncasecmp(p, "password=", 9) == 0) {
			for (int i = 0; i < 9; i++)
				out_char(o, p[i]);
			out_str(o, "***");
			p += 9;
			while (*p != '\0' && *p != '&')
				p++;
			continue;
		}
		out_char(o, *p++);
	}
}

/* The characters of a keyword/value value from p, a backslash keeping the
 * next one, up to the end or the closing quote (quoted) or white space (not
 * quoted), which is not consumed; copied unless secret. Returns where it
 * stopped. */
static const char *scrub_value(const char *p, bool quoted, bool secret, struct scrub_out *o)
{
	while (*p != '\0' && (quoted ? *p != '\'' : !is_space(*p))) {
		if (*p == '\\' && p[1] != '\0') {
			if (!secret)
				out_char(o, *p);
			p++;
		}
		if (!secret)
			out_char(o, *p);
		p++;
	}
	return p;
}

/* Keyword/value form: host=a password='it''s \' x' user=b */
static void scrub_keyvalue(const char *s, struct scrub_out *o)
{
	const char *p = s;

	while (*p != '\0') {
		const char *kw, *q;
		size_t kwlen;
		bool secret;

		if (!is_keyword_char(*p)) {
			out_char(o, *p++);
			continue;
		}
		kw = p;
		while (is_keyword_char(*p))
			p++;
		kwlen = (size_t)(p - kw);
		for (q = kw; q < p; q++)
			out_char(o, *q);
		secret = kwlen == 8 && strncasecmp(kw, "password", 8) == 0;

		q = p;
		while (is_space(*q))
			q++;
		if (*q != '=')
			continue; /* not a keyword after all (e.g. inside a value) */
		for (; p <= q; p++)
			out_char(o, *p);
		while (is_space(*p))
			out_char(o, *p++);

		/* the value: quoted with backslash escapes, or up to white space */
		if (*p == '\'') {
			if (!secret)
				out_char(o, *p);
			p = scrub_value(p + 1, true, secret, o);
			if (*p == '\'') {
				if (!secret)
					out_char(o, *p);
				p++;
			}
		} else {
			p = scrub_value(p, false, secret, o);
		}
		if (secret)
			out_str(o, "***");
	}
}

void log_scrub(const char *conninfo, char *buf, size_t len)
{
	struct scrub_out o = { buf, len, 0 };

	if (buf == NULL || len == 0)
		return;
	buf[0] = '\0';
	if (conninfo == NULL)
		return;
	if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0)
		scrub_uri(conninfo, &o);
	else
		scrub_keyvalue(conninfo, &o);
}
