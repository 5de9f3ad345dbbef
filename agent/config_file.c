/*
 * config_file.c - the configuration file and the files it names, as files.
 *
 * Two jobs that need the file system rather than the option values:
 *
 *   - config_read_text() reads the node's file for libconfig, refusing what
 *     is not a configuration file and rewriting what libconfig would get
 *     wrong (see its comment): the loader (config_load.c) never hands
 *     libconfig a path;
 *   - the hygiene checks run at start and by `baton -t`: a file holding
 *     passwords that others may read (config_file_exposed), and TLS files
 *     that are not the PEM they should be (config_check_files).
 */
#include "agent/config.h"
#include "agent/config_internal.h"

#include "agent/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A growable buffer for the text handed to libconfig. */
struct text {
	char *data;
	size_t len, cap;
	bool failed;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *p;

		while (cap < t->len + n + 1)
			cap *= 2;
		p = realloc(t->data, cap);
		if (p == NULL) {
			t->failed = true;
			return;
		}
		t->data = p;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

#define CONFIG_FILE_MAX ((size_t)16 << 20) /* a node's file is a few KB */
#define STRING_PIECE 4096                  /* bytes of a string literal libconfig lexes at once */

/* What a path that is not a regular file is, for the error. */
static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/*
 * Reads path for libconfig, refusing at once what is not a configuration
 * file: a FIFO or a device (opened without blocking, so nothing hangs), more
 * than CONFIG_FILE_MAX bytes, a NUL byte (libconfig's lexer reads on past it;
 * found by fuzz_config). On the way it checks what libconfig would get wrong:
 *  - "@include" is refused: one file per node is the product's rule, and
 *    libconfig 1.5's lexer exit()s the whole process when an included path
 *    cannot be read (found by fuzz_config). libconfig takes a directive
 *    only at the start of a line;
 *  - a number that does not fit (libconfig silently saturates
 *    99999999999999999999L and makes 1e999 infinite) is refused, naming it;
 *  - a long string literal is cut into adjacent literals of STRING_PIECE
 *    bytes, which libconfig joins as C does: its lexer rescans a token from
 *    its start at every buffer refill, so one literal of n bytes costs n^2
 *    (8 s for 2 MB), pieces cost n. Lines stay where they were.
 * Returns the malloc'd text (caller frees) or NULL with err set.
 */
char *config_read_text(const char *path, char *err, size_t errlen)
{
	static const char directive[] = "@include";
	struct text out = { 0 };
	struct stat st;
	char *in = NULL;
	size_t n = 0, i = 0;
	int fd, line = 1;
	bool bol = true, ok = false;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		config_set_err(err, errlen, "%s: cannot read the file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		config_set_err(err, errlen, "%s: %s, not a configuration file", path,
		               fstat(fd, &st) != 0 ? strerror(errno) : file_kind(st.st_mode));
		close(fd);
		return NULL;
	}
	if ((size_t)st.st_size > CONFIG_FILE_MAX) {
		config_set_err(err, errlen, "%s: %lld bytes, more than a configuration file has (at most %zu)", path,
		               (long long)st.st_size, CONFIG_FILE_MAX);
		close(fd);
		return NULL;
	}
	in = malloc((size_t)st.st_size + 1);
	if (in == NULL) {
		config_set_err(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, in + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank meanwhile: take what there is */
		n += (size_t)r;
	}
	close(fd);
	in[n] = '\0';

	for (size_t j = 0; j < n; j++) {
		if (in[j] == '\0') {
			config_set_err(err, errlen, "%s:%d: a NUL byte: not a text configuration file", path, line);
			goto cleanup;
		}
		if (in[j] == '\n')
			line++;
	}
	line = 1;
	while (i < n) {
		char c = in[i];

		if (c == '\n') {
			line++;
			bol = true;
			text_add(&out, in + i++, 1);
			continue;
		}
		if (bol && (c == ' ' || c == '\t')) {
			text_add(&out, in + i++, 1);
			continue;
		}
		if (bol && n - i >= sizeof(directive) - 1 && memcmp(in + i, directive, sizeof(directive) - 1) == 0) {
			config_set_err(err, errlen,
			               "%s:%d: @include is not supported: keep the whole configuration in one file",
			               path, line);
			goto cleanup;
		}
		bol = false;
		if (c == '#' || (c == '/' && i + 1 < n && in[i + 1] == '/')) {
			size_t e = i;

			while (e < n && in[e] != '\n')
				e++;
			text_add(&out, in + i, e - i);
			i = e;
		} else if (c == '/' && i + 1 < n && in[i + 1] == '*') {
			size_t e = i + 2;

			while (e < n && !(in[e] == '*' && e + 1 < n && in[e + 1] == '/'))
				line += in[e++] == '\n';
			e = e < n ? e + 2 : n;
			text_add(&out, in + i, e - i);
			i = e;
		} else if (c == '"') {
			size_t run = 0;

			text_add(&out, in + i++, 1);
			while (i < n && in[i] != '"') {
				size_t step = in[i] == '\\' && i + 1 < n ? (in[i + 1] == 'x' ? 4 : 2) : 1;

				if (step > n - i)
					step = n - i;
				if (run >= STRING_PIECE) {
					text_add(&out, "\" \"", 3);
					run = 0;
				}
				for (size_t e = 0; e < step; e++)
					line += in[i + e] == '\n';
				text_add(&out, in + i, step);
				i += step;
				run += step;
			}
			if (i < n)
				text_add(&out, in + i++, 1);
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*') {
			size_t e = i;

			while (e < n &&
			       ((in[e] >= 'A' && in[e] <= 'Z') || (in[e] >= 'a' && in[e] <= 'z') ||
			        (in[e] >= '0' && in[e] <= '9') || in[e] == '_' || in[e] == '-' || in[e] == '*'))
				e++;
			text_add(&out, in + i, e - i);
			i = e;
		} else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
			/* A number token: digits, letters (hex, e, L), '.', and a
			 * sign at the start or after an exponent's e. */
			char tok[64];
			size_t e = i + 1, len;

			while (e < n && ((in[e] >= '0' && in[e] <= '9') || (in[e] >= 'a' && in[e] <= 'z') ||
			                 (in[e] >= 'A' && in[e] <= 'Z') || in[e] == '.' ||
			                 ((in[e] == '-' || in[e] == '+') && (in[e - 1] == 'e' || in[e - 1] == 'E'))))
				e++;
			len = e - i;
			if (len >= sizeof(tok)) {
				config_set_err(err, errlen, "%s:%d: the number %.20s... is too long", path, line,
				               in + i);
				goto cleanup;
			}
			memcpy(tok, in + i, len);
			tok[len] = '\0';
			{
				const char *digits = tok + (tok[0] == '-' || tok[0] == '+');
				bool hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
				size_t dl = strlen(digits);
				char *endp;

				while (dl > 0 && (digits[dl - 1] == 'L' || digits[dl - 1] == 'l') && !hex)
					dl--;
				errno = 0;
				if (hex) {
					(void)strtoull(digits, &endp, 16);
				} else if (strpbrk(tok, ".eE") != NULL) {
					double d = strtod(tok, &endp);

					if (errno == 0 && !isfinite(d))
						errno = ERANGE;
					if (errno == ERANGE && d == 0)
						errno = 0; /* underflow to 0 is harmless */
				} else if (dl > 0 && strspn(digits, "0123456789") == dl) {
					char num[64];

					snprintf(num, sizeof(num), "%.*s%.*s", tok[0] == '-' ? 1 : 0, "-", (int)dl,
					         digits);
					(void)strtoll(num, &endp, 10);
				}
				if (errno == ERANGE) {
					config_set_err(err, errlen,
					               "%s:%d: the number %s is out of range (integers fit in 64 "
					               "bits, reals are finite)",
					               path, line, tok);
					goto cleanup;
				}
			}
			text_add(&out, in + i, len);
			i = e;
		} else {
			text_add(&out, in + i++, 1);
		}
	}
	if (out.failed || out.data == NULL) {
		if (out.failed) {
			config_set_err(err, errlen, "%s: out of memory", path);
			goto cleanup;
		}
		text_add(&out, "", 0); /* an empty file: libconfig gets "" */
		if (out.failed || out.data == NULL) {
			config_set_err(err, errlen, "%s: out of memory", path);
			goto cleanup;
		}
	}
	ok = true;
cleanup:
	free(in);
	if (!ok) {
		free(out.data);
		return NULL;
	}
	return out.data;
}

/* ---- checks beyond the file's syntax ---- */

bool config_file_exposed(const struct baton_config *cfg, char *why, size_t len)
{
	char names[256] = "";
	struct stat st;

	if (cfg == NULL || cfg->path == NULL || stat(cfg->path, &st) != 0 || (st.st_mode & 077) == 0)
		return false;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		size_t used = strlen(names);

		if ((config_options[i].flags & OPT_SECRET) && config_options[i].type == OPT_STRING &&
		    *(char *const *)opt_cfield(cfg, config_options[i].off) != NULL)
			snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", config_options[i].path);
	}
	if (names[0] == '\0')
		return false;
	config_set_err(why, len,
	               "%s holds passwords (%s) and is readable or writable by %s (mode %04o): chmod go-rwx %s",
	               cfg->path, names,
	               (st.st_mode & 070) && (st.st_mode & 07) ? "its group and others"
	               : (st.st_mode & 070)                    ? "its group"
	                                                       : "others",
	               (unsigned)(st.st_mode & 07777), cfg->path);
	return true;
}

/*
 * A PEM file: at least one block "-----BEGIN L-----" ... "-----END L-----"
 * whose label L ends with want ("CERTIFICATE", "PRIVATE KEY": "RSA PRIVATE
 * KEY", "ENCRYPTED PRIVATE KEY" count), and every block well formed: its END
 * matches, its body is base64 (after optional "Name: value" header lines).
 * This is what a TLS library would read first; whether the key fits the
 * certificate is left to it.
 */
static bool pem_check(const char *path, const char *want, char *why, size_t len)
{
	FILE *f;
	char line[512], label[80] = "";
	char *body = NULL;
	size_t body_len = 0, body_cap = 0;
	int lineno = 0, begin_line = 0, found = 0;
	bool in_block = false, ok = false, headers_done = false;

	f = fopen(path, "re");
	if (f == NULL) {
		config_set_err(why, len, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		lineno++;
		if (line[n] == '\0' && !feof(f)) {
			config_set_err(why, len, "%s:%d: a line longer than %zu bytes: not PEM", path, lineno,
			               sizeof(line) - 2);
			goto cleanup;
		}
		line[n] = '\0';
		if (!in_block) {
			if (strncmp(line, "-----BEGIN ", 11) == 0) {
				size_t l = strlen(line + 11);

				if (l < 6 || strcmp(line + 11 + l - 5, "-----") != 0 || l - 5 >= sizeof(label)) {
					config_set_err(why, len, "%s:%d: a malformed BEGIN line", path, lineno);
					goto cleanup;
				}
				memcpy(label, line + 11, l - 5);
				label[l - 5] = '\0';
				in_block = true;
				headers_done = false;
				begin_line = lineno;
				body_len = 0;
			}
			continue; /* text around the blocks is allowed (openssl x509 -text) */
		}
		if (strncmp(line, "-----END ", 9) == 0) {
			size_t ll = strlen(label);

			if (strncmp(line + 9, label, ll) != 0 || strcmp(line + 9 + ll, "-----") != 0) {
				config_set_err(why, len, "%s:%d: the END line does not match \"BEGIN %s\" of line %d",
				               path, lineno, label, begin_line);
				goto cleanup;
			}
			if (body_len == 0 || !parse_base64_valid(body, body_len)) {
				config_set_err(why, len, "%s:%d: the %s block is not valid base64", path, begin_line,
				               label);
				goto cleanup;
			}
			if (strlen(label) >= strlen(want) && strcmp(label + strlen(label) - strlen(want), want) == 0)
				found++;
			in_block = false;
			continue;
		}
		if (!headers_done && body_len == 0 && strchr(line, ':') != NULL)
			continue; /* "Proc-Type: 4,ENCRYPTED" and the like */
		if (line[0] == '\0' && body_len == 0) {
			headers_done = true;
			continue;
		}
		headers_done = true;
		for (char *p = line; *p; p++) {
			if (*p == ' ' || *p == '\t')
				continue;
			if (body_len + 2 > body_cap) {
				size_t cap = body_cap ? body_cap * 2 : 4096;
				char *nb = realloc(body, cap);

				if (nb == NULL) {
					config_set_err(why, len, "out of memory");
					goto cleanup;
				}
				body = nb;
				body_cap = cap;
			}
			body[body_len++] = *p;
		}
	}
	if (in_block) {
		config_set_err(why, len, "%s:%d: \"BEGIN %s\" has no END line", path, begin_line, label);
		goto cleanup;
	}
	if (found == 0) {
		config_set_err(why, len, "%s: no PEM \"%s\" block (-----BEGIN %s-----)", path, want, want);
		goto cleanup;
	}
	ok = true;
cleanup:
	free(body);
	fclose(f);
	return ok;
}

bool config_check_files(const struct baton_config *cfg, char *err, size_t errlen)
{
	const struct {
		const char *key, *file, *want;
	} files[] = {
		{ "restapi.certfile", cfg->restapi.certfile, "CERTIFICATE" },
		{ "restapi.keyfile", cfg->restapi.keyfile, "PRIVATE KEY" },
		{ "restapi.cafile", cfg->restapi.cafile, "CERTIFICATE" },
		{ "restapi.client_certfile", cfg->restapi.client_certfile, "CERTIFICATE" },
		{ "restapi.client_keyfile", cfg->restapi.client_keyfile, "PRIVATE KEY" },
		{ "postgresql.tls.certfile", cfg->postgresql.tls_certfile, "CERTIFICATE" },
		{ "postgresql.tls.keyfile", cfg->postgresql.tls_keyfile, "PRIVATE KEY" },
		{ "postgresql.tls.cafile", cfg->postgresql.tls_cafile, "CERTIFICATE" },
		{ "etcd.cacert", cfg->etcd.cacert, "CERTIFICATE" },
		{ "etcd.cert", cfg->etcd.cert, "CERTIFICATE" },
		{ "etcd.key", cfg->etcd.key, "PRIVATE KEY" },
	};
	char why[400];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].file == NULL)
			continue;
		if (!pem_check(files[i].file, files[i].want, why, sizeof(why))) {
			config_set_err(err, errlen, "%s: %s: %s", cfg->path, files[i].key, why);
			return false;
		}
	}
	return true;
}
