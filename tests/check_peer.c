/*
 * check_peer.c - unit tests of agent/peer.c (the HTTP client for members'
 * REST APIs) and of the control-character escaping in agent/log.c.
 *
 * The peer tests play the member's part with a tiny HTTP listener on
 * 127.0.0.1 (a thread that accepts one connection at a time, records the
 * bytes it received and answers a canned reply), so they can check what
 * the client actually sent: no Authorization header over http, nothing at
 * all for a refused scheme, no redirect followed. Certificate verification
 * against a CA is covered by tests/integration/26_rest_tls.sh, which has
 * openssl and a real agent.
 */
#include "agent/log.h"
#include "agent/member_verify.h"
#include "agent/peer.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- log_escape / log_escaping_stream / log_write ---------------------------- */

START_TEST(test_log_escape)
{
	char out[128];

	ck_assert_uint_eq(log_escape("plain text", out, sizeof(out), false), 10);
	ck_assert_str_eq(out, "plain text");
	log_escape("a\x1b[31mred\x07", out, sizeof(out), false);
	ck_assert_str_eq(out, "a\\x1b[31mred\\x07");
	log_escape("l1\nl2\r\t\x7f", out, sizeof(out), false);
	ck_assert_str_eq(out, "l1\\x0al2\\x0d\\x09\\x7f");
	log_escape("l1\nl2", out, sizeof(out), true);
	ck_assert_str_eq(out, "l1\nl2");
	/* UTF-8 text stays; the C1 control CSI (U+009B) does not */
	log_escape("caf\xc3\xa9 \xc2\x9b"
	           "2J",
	           out, sizeof(out), false);
	ck_assert_str_eq(out, "caf\xc3\xa9 \\xc2\\x9b2J");
	/* cut to fit, never in the middle of an escape, always terminated */
	log_escape("ab\x1b", out, 6, false);
	ck_assert_str_eq(out, "ab");
	log_escape("abcdef", out, 4, false);
	ck_assert_str_eq(out, "abc");
	log_escape(NULL, out, sizeof(out), false);
	ck_assert_str_eq(out, "");
}
END_TEST

/* F6: bidi controls and other invisible format characters from etcd are
 * escaped like control characters; the letters around them are not. */
static const struct {
	const char *in, *out;
} escape_cases[] = {
	{ "a\xe2\x80\xae"
	  "b",
	  "a\\xe2\\x80\\xaeb" },                              /* U+202E RLO */
	{ "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", /* U+202A..U+202D */
	  "\\xe2\\x80\\xaa\\xe2\\x80\\xab\\xe2\\x80\\xac\\xe2\\x80\\xad" },
	{ "x\xe2\x81\xa6y\xe2\x81\xa9", "x\\xe2\\x81\\xa6y\\xe2\\x81\\xa9" }, /* U+2066 LRI, U+2069 PDI */
	{ "\xe2\x81\xa7\xe2\x81\xa8", "\\xe2\\x81\\xa7\\xe2\\x81\\xa8" },     /* U+2067, U+2068 */
	{ "zw\xe2\x80\x8bsp", "zw\\xe2\\x80\\x8bsp" },                        /* U+200B zero width space */
	{ "\xe2\x80\x8f", "\\xe2\\x80\\x8f" },                                /* U+200F RLM */
	{ "\xef\xbb\xbf"
	  "bom",
	  "\\xef\\xbb\\xbfbom" },                         /* U+FEFF */
	{ "s\xc2\xadh", "s\\xc2\\xadh" },                 /* U+00AD soft hyphen */
	{ "\xd8\x9c", "\\xd8\\x9c" },                     /* U+061C */
	{ "t\xf3\xa0\x80\x81", "t\\xf3\\xa0\\x80\\x81" }, /* U+E0001 language tag */
	{ "\xe2\x80\xa8", "\\xe2\\x80\\xa8" },            /* U+2028 line separator */
	/* neighbours that are visible text stay as they are */
	{ "\xe2\x80\x94 \xe2\x80\xaf \xe2\x81\x9f \xe2\x82\xac",
	  "\xe2\x80\x94 \xe2\x80\xaf \xe2\x81\x9f \xe2\x82\xac" },
	{ "\xc2\xa9 \xd8\xa8 \xef\xbb\xbe \xf3\xa0\x82\x80", "\xc2\xa9 \xd8\xa8 \xef\xbb\xbe \xf3\xa0\x82\x80" },
	/* a sequence cut at the end of the string is not read past */
	{ "end\xe2\x80", "end\xe2\x80" },
	{ "end\xf3\xa0\x80", "end\xf3\xa0\x80" },
};

START_TEST(test_log_escape_invisible)
{
	char out[128], *buf = NULL;
	size_t len = 0;
	FILE *mem, *f;

	for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
		log_escape(escape_cases[i].in, out, sizeof(out), false);
		ck_assert_msg(strcmp(out, escape_cases[i].out) == 0, "case %zu: got \"%s\", want \"%s\"", i, out,
		              escape_cases[i].out);
	}
	/* room for the whole escape or none of it */
	log_escape("ab\xe2\x80\xae", out, 8, false);
	ck_assert_str_eq(out, "ab");

	/* the stream: byte by byte, and across writes */
	mem = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(mem);
	f = log_escaping_stream(mem);
	ck_assert_ptr_nonnull(f);
	setvbuf(f, NULL, _IONBF, 0);
	for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]) - 2; i++) {
		fputs(escape_cases[i].in, f);
		fputc('\n', f);
	}
	fputs("cut \xe2", f);
	fputs("\x80", f);
	fputs("\xae at the end \xe2\x80", f);
	ck_assert_int_eq(fclose(f), 0);
	fclose(mem);
	{
		char want[2048];
		size_t pos = 0;

		want[0] = '\0';
		for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]) - 2; i++)
			pos += (size_t)snprintf(want + pos, sizeof(want) - pos, "%s\n", escape_cases[i].out);
		snprintf(want + pos, sizeof(want) - pos, "cut \\xe2\\x80\\xae at the end \xe2\x80");
		ck_assert_str_eq(buf, want);
	}
	free(buf);
}
END_TEST

START_TEST(test_escaping_stream)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	FILE *f;

	ck_assert_ptr_nonnull(mem);
	f = log_escaping_stream(mem);
	ck_assert_ptr_nonnull(f);
	setvbuf(f, NULL, _IONBF, 0); /* every byte its own write: the C1 check spans writes */
	fprintf(f, "| %s | %s |\n", "node\x1b]0;owned\x07", "running");
	fputc(0xc2, f);
	fputc(0x9b, f);
	fputs("x \xc2", f);
	fputs("\xa9 end\n", f);
	ck_assert_int_eq(fclose(f), 0);
	fclose(mem);
	ck_assert_str_eq(buf, "| node\\x1b]0;owned\\x07 | running |\n\\xc2\\x9bx \xc2\xa9 end\n");
	free(buf);
}
END_TEST

START_TEST(test_log_write_escapes)
{
	FILE *tmp = tmpfile();
	char line[1024] = "";
	int saved;

	ck_assert_ptr_nonnull(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
	log_info("member %s state %s", "evil\x1b[2J\x1b]0;t\x07", "run\nning\x7f");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), tmp));
	fclose(tmp);
	ck_assert_msg(strstr(line, "member evil\\x1b[2J\\x1b]0;t\\x07 state run ning\\x7f [check_peer.c:") != NULL,
	              "%s", line);
	for (const char *c = line; *c && *c != '\n'; c++)
		ck_assert_msg((unsigned char)*c >= 0x20 && *c != 0x7f, "raw control byte 0x%02x in %s",
		              (unsigned char)*c, line);
}
END_TEST

/* ---- a recording HTTP listener --------------------------------------------- */

struct listener {
	int fd;
	int port;
	const char *reply; /* sent after the request's headers (and body); NULL: never answer */
	char got[8192];    /* everything received on the last connection */
	size_t got_len;
	int accepted;
	pthread_t thread;
	bool running;
};

static void *listener_main(void *arg)
{
	struct listener *l = arg;
	int c = accept(l->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	l->accepted++;
	for (;;) {
		struct pollfd p = { c, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 2000) <= 0)
			break;
		n = read(c, l->got + l->got_len, sizeof(l->got) - 1 - l->got_len);
		if (n <= 0)
			break;
		l->got_len += (size_t)n;
		l->got[l->got_len] = '\0';
		/* headers complete, and the body of a POST (our clients send small
		 * ones); without a reply, hold the connection until the client
		 * gives up */
		if (l->reply && strstr(l->got, "\r\n\r\n") &&
		    (strncmp(l->got, "POST", 4) != 0 || strstr(l->got, "\r\n\r\n")[4] != '\0'))
			break;
	}
	if (l->reply) {
		ssize_t w = write(c, l->reply, strlen(l->reply));

		(void)w; /* a client that went away has nothing more to show */
	}
	close(c);
	return NULL;
}

static void listener_start(struct listener *l, const char *reply)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(l, 0, sizeof(*l));
	l->reply = reply;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(l->fd, 0);
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l->fd, 4), 0);
	ck_assert_int_eq(getsockname(l->fd, (struct sockaddr *)&sa, &sl), 0);
	l->port = ntohs(sa.sin_port);
}

static void listener_serve_one(struct listener *l)
{
	ck_assert_int_eq(pthread_create(&l->thread, NULL, listener_main, l), 0);
	l->running = true;
}

/* Stops the listener; returns how many connections it accepted (one that
 * is still queued counts too). */
static int listener_stop(struct listener *l)
{
	struct pollfd p = { l->fd, POLLIN, 0 };
	int queued = poll(&p, 1, 0) > 0 ? 1 : 0;

	if (l->running) {
		shutdown(l->fd, SHUT_RDWR);
		pthread_join(l->thread, NULL);
	}
	close(l->fd);
	return l->accepted + (l->running ? 0 : queued);
}

static const struct peer_opts creds = { .username = "admin", .password = "s3cret" };

START_TEST(test_url_allowed)
{
	char err[256];

	ck_assert(peer_url_allowed("http://127.0.0.1:8008", err, sizeof(err)));
	ck_assert(peer_url_allowed("HTTPS://db1.example:8008/", err, sizeof(err)));
	ck_assert(!peer_url_allowed("file:///etc/passwd", err, sizeof(err)));
	ck_assert_msg(strstr(err, "scheme 'file'") != NULL, "%s", err);
	ck_assert(!peer_url_allowed("dict://127.0.0.1:11211", err, sizeof(err)));
	ck_assert_msg(strstr(err, "scheme 'dict'") != NULL, "%s", err);
	ck_assert(!peer_url_allowed("gopher\x1b://x", err, sizeof(err)));
	ck_assert_msg(strstr(err, "\\x1b") != NULL && !strchr(err, 0x1b), "%s", err);
	ck_assert(!peer_url_allowed("127.0.0.1:8008", err, sizeof(err)));
	ck_assert(!peer_url_allowed("http://", err, sizeof(err)));
	ck_assert(!peer_url_allowed("http://user:pw@127.0.0.1:1", err, sizeof(err)));
	ck_assert(!peer_url_allowed("http://127.0.0.1:1/\r\nX: y", err, sizeof(err)));
	ck_assert(!peer_url_allowed("", err, sizeof(err)));
	ck_assert(!peer_url_allowed(NULL, err, sizeof(err)));
	/* no path, query or fragment: "/config?" + "/status" would read the
	 * config key a writer of etcd filled in as a member's status */
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008/config?", err, sizeof(err)));
	ck_assert_msg(strstr(err, "with a path, query or fragment") != NULL, "%s", err);
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008/config", err, sizeof(err)));
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008?x", err, sizeof(err)));
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008#x", err, sizeof(err)));
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008//", err, sizeof(err)));
	ck_assert(!peer_url_allowed("https://127.0.0.1:8008\\x", err, sizeof(err)));
	ck_assert(peer_url_allowed("https://[::1]:8008", err, sizeof(err)));
}
END_TEST

/* A refused scheme never reaches the network: a dict:// URL at a live
 * listener makes no connection. */
START_TEST(test_refused_scheme_connects_nowhere)
{
	struct listener l;
	struct peer_answer a;
	char url[64], err[256];

	listener_start(&l, NULL);
	snprintf(url, sizeof(url), "dict://127.0.0.1:%d", l.port);
	ck_assert(!peer_request(&creds, url, "POST", "/restart", "{}", 2.0, &a, err, sizeof(err)));
	ck_assert_msg(strstr(err, "'dict'") != NULL, "%s", err);
	ck_assert_int_eq(listener_stop(&l), 0);
}
END_TEST

/* Over http no credentials are sent, and the refusal says why. */
START_TEST(test_no_credentials_over_http)
{
	static const char reply[] = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
	                            "Connection: close\r\n\r\n{\"error\":\"credentials needed\"}\n";
	struct listener l;
	struct peer_answer a;
	char url[64], err[256], why[512];

	listener_start(&l, reply);
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", l.port);
	ck_assert_msg(peer_request(&creds, url, "POST", "/restart", "{}", 3.0, &a, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(a.code, 401);
	ck_assert(!a.tls);
	peer_answer_reason(&creds, url, &a, why, sizeof(why));
	peer_answer_free(&a);
	ck_assert_int_eq(listener_stop(&l), 1);
	ck_assert_msg(strncmp(l.got, "POST /restart HTTP/1.1\r\n", 24) == 0, "%s", l.got);
	ck_assert_msg(strcasestr(l.got, "\r\nAuthorization:") == NULL, "credentials sent over http: %s", l.got);
	ck_assert_msg(strcasestr(l.got, "\r\nContent-Type: application/json\r\n") != NULL, "%s", l.got);
	ck_assert_msg(strstr(why, "HTTP 401: credentials needed") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "credentials were not sent") != NULL, "%s", why);
}
END_TEST

/* https to a port that speaks plain HTTP: the TLS handshake fails, and what
 * reached the port is a ClientHello, not a request with a password. */
START_TEST(test_https_to_plain_port_fails)
{
	struct listener l;
	struct peer_answer a;
	char url[64], err[256];

	listener_start(&l, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", l.port);
	ck_assert(!peer_request(&creds, url, "POST", "/restart", "{}", 3.0, &a, err, sizeof(err)));
	ck_assert_int_eq(listener_stop(&l), 1);
	ck_assert_msg(l.got_len > 0 && (unsigned char)l.got[0] == 0x16, "no TLS handshake record (%zu bytes)",
	              l.got_len);
	ck_assert(memmem(l.got, l.got_len, "s3cret", 6) == NULL);
	ck_assert(memmem(l.got, l.got_len, "YWRtaW46czNjcmV0", 16) == NULL); /* base64 of admin:s3cret */
}
END_TEST

/* A redirect is answered, never followed (here to file:///etc/passwd). */
START_TEST(test_redirect_not_followed)
{
	static const char reply[] = "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n"
	                            "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct listener l;
	struct peer_answer a;
	char url[64], err[256];

	listener_start(&l, reply);
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", l.port);
	ck_assert_msg(peer_request(NULL, url, "GET", "/status", NULL, 3.0, &a, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(a.code, 302);
	ck_assert(strstr(a.body, "root:") == NULL);
	peer_answer_free(&a);
	ck_assert_int_eq(listener_stop(&l), 1);
}
END_TEST

/* An answer over PEER_BODY_MAX is refused; a silent peer costs the timeout. */
START_TEST(test_bounds)
{
	size_t big = PEER_BODY_MAX + 4096;
	char *reply = malloc(big + 128);
	struct listener l;
	struct peer_answer a;
	struct api_status st;
	char url[64], err[256];
	int n;

	ck_assert_ptr_nonnull(reply);
	n = snprintf(reply, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", big);
	memset(reply + n, 'x', big);
	reply[n + (int)big] = '\0';
	listener_start(&l, reply);
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", l.port);
	ck_assert(!peer_request(NULL, url, "GET", "/status", NULL, 3.0, &a, err, sizeof(err)));
	ck_assert_msg(strstr(err, "answer larger than") != NULL, "%s", err);
	listener_stop(&l);
	free(reply);

	listener_start(&l, NULL); /* accepts, never answers */
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", l.port);
	ck_assert(!peer_get_status(NULL, url, 0.3, &st, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "imeout") != NULL || strstr(err, "timed out") != NULL, "%s", err);
	listener_stop(&l);
}
END_TEST

/* peer_get_status checks the answer and escapes what it quotes. */
START_TEST(test_get_status_checks_answer)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                            "Connection: close\r\n\r\n{\"name\":\"a\x1b[2Jb\"}   ";
	struct listener l;
	struct api_status st;
	char url[64], err[512];
	bool tls = true;

	listener_start(&l, reply);
	listener_serve_one(&l);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", l.port);
	ck_assert(!peer_get_status(NULL, url, 3.0, &st, &tls, err, sizeof(err)));
	ck_assert(!tls);
	ck_assert_msg(strstr(err, "unexpected answer") != NULL, "%s", err);
	ck_assert_msg(strchr(err, 0x1b) == NULL, "%s", err);
	ck_assert_int_eq(listener_stop(&l), 1);
	ck_assert_msg(strncmp(l.got, "GET /status HTTP/1.1\r\n", 22) == 0, "%s", l.got);
}
END_TEST

/* ---- TLS against the agent's own server ---------------------------------------- */

/* A CA, an unrelated CA and a server certificate for IP:127.0.0.1 signed by
 * the first, made with openssl in dir; false when openssl is missing. */
static bool make_certs(const char *dir)
{
	char cmd[2048];

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		return false;
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && (K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
	         "openssl req -x509 $K -keyout ca-key.pem -out ca.pem -days 1 -subj /CN=check-peer-ca && "
	         "openssl req -x509 $K -keyout other-key.pem -out other.pem -days 1 -subj /CN=other-ca && "
	         "printf 'subjectAltName=IP:127.0.0.1\\n' >ext && "
	         "openssl req $K -keyout key.pem -out req.csr -subj /CN=server && "
	         "openssl x509 -req -in req.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem "
	         "-days 1 -extfile ext) >openssl.log 2>&1",
	         dir);
	ck_assert_msg(system(cmd) == 0, "openssl failed in %s", dir);
	return true;
}

/* peer_get_status over https: verified against the right CA (and says it
 * went over TLS); refused with a verification error against the system CAs
 * or an unrelated CA; plain http to the TLS port gets no status either. */
START_TEST(test_tls_verification)
{
	char dir[] = "/tmp/check_peer_tls.XXXXXX", cert[300], key[300], ca[300], other[300], cmd[400];
	char listen_at[64], url[96], err[512] = "";
	struct api_options ao;
	struct api_status st, back;
	struct api_server *srv;
	struct peer_opts po;
	struct listener probe;
	bool tls = false;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	if (!make_certs(dir)) {
		fprintf(stderr, "test_tls_verification: SKIPPED: openssl is not installed\n");
		rmdir(dir);
		return;
	}
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(other, sizeof(other), "%s/other.pem", dir);
	listener_start(&probe, NULL); /* a free port */
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", probe.port);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", probe.port);
	listener_stop(&probe);

	memset(&ao, 0, sizeof(ao));
	ao.listen = listen_at;
	ao.certfile = cert;
	ao.keyfile = key;
	srv = api_start_opts(&ao, err, sizeof(err));
	ck_assert_msg(srv != NULL, "%s", err);
	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node2");
	snprintf(st.scope, sizeof(st.scope), "main");
	snprintf(st.role, sizeof(st.role), "replica");
	snprintf(st.state, sizeof(st.state), "running");
	st.timeline = 3;
	st.lsn = 0x3000000ULL;
	api_publish(srv, &st);

	memset(&po, 0, sizeof(po));
	po.cafile = ca;
	ck_assert_msg(peer_get_status(&po, url, 3.0, &back, &tls, err, sizeof(err)), "%s", err);
	ck_assert(tls);
	ck_assert_str_eq(back.name, "node2");
	ck_assert_uint_eq(back.lsn, 0x3000000ULL);

	po.cafile = other;
	ck_assert(!peer_get_status(&po, url, 3.0, &back, &tls, err, sizeof(err)));
	ck_assert(!tls);
	ck_assert_msg(strstr(err, "certificate") != NULL || strstr(err, "SSL") != NULL, "%s", err);

	ck_assert(!peer_get_status(NULL, url, 3.0, &back, NULL, err, sizeof(err))); /* system CAs */
	ck_assert_msg(strstr(err, "certificate") != NULL || strstr(err, "SSL") != NULL, "%s", err);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", probe.port);
	ck_assert(!peer_get_status(&po, url, 3.0, &back, NULL, err, sizeof(err)));

	api_stop(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- member_verify: the judgement and the cache (pure) --------------------- */

static struct ha_member mv_member(const char *name, const char *url, const char *host, int port)
{
	struct ha_member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.api_url, sizeof(m.api_url), "%s", url);
	snprintf(m.host, sizeof(m.host), "%s", host);
	m.port = port;
	return m;
}

static struct api_status mv_status(const char *name, const char *host, int port)
{
	struct api_status st;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	snprintf(st.pg_host, sizeof(st.pg_host), "%s", host);
	st.pg_port = port;
	return st;
}

START_TEST(test_mv_judge)
{
	struct ha_member m = mv_member("node1", "https://127.0.0.1:8008", "127.0.0.1", 5432);
	struct api_status st = mv_status("node1", "127.0.0.1", 5432);
	char why[600];

	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_CONFIRMED);
	ck_assert_int_eq(mv_judge(&m, false, &st, false, NULL, why, sizeof(why)), MV_CONFIRMED);
	st = mv_status("node1", "LOCALHOST", 5432);
	m = mv_member("node1", "https://127.0.0.1:8008", "localhost", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_CONFIRMED);

	/* the key points Postgres elsewhere than the member says */
	m = mv_member("node1", "https://127.0.0.1:8008", "127.0.0.1", 6666);
	st = mv_status("node1", "127.0.0.1", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_MISMATCH);
	ck_assert_str_eq(why, "member node1 publishes Postgres at 127.0.0.1:6666, but its REST API "
	                      "https://127.0.0.1:8008 answers as member node1 with Postgres at 127.0.0.1:5432");
	m = mv_member("node1", "https://127.0.0.1:8008", "10.0.0.9", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_MISMATCH);
	/* another member's REST API answers */
	m = mv_member("node1", "https://127.0.0.1:8009", "127.0.0.1", 5432);
	st = mv_status("node2", "127.0.0.1", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_MISMATCH);
	ck_assert_msg(strstr(why, "answers as member node2") != NULL, "%s", why);
	/* an older agent that does not say its address confirms nothing, and
	 * contradicts nothing (with Postgres TLS it may still be followed) */
	st = mv_status("node1", "", 0);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_UNREACHABLE);
	ck_assert_msg(strstr(why, "does not say where its Postgres listens") != NULL, "%s", why);
	st = mv_status("node2", "", 0);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_MISMATCH);
	ck_assert_msg(strstr(why, "Postgres at (none):0") != NULL, "%s", why);

	/* TLS here: a plain http api_url is not even asked */
	m = mv_member("node1", "http://127.0.0.1:8008", "127.0.0.1", 5432);
	st = mv_status("node1", "127.0.0.1", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, false, NULL, why, sizeof(why)), MV_INSECURE);
	ck_assert_msg(strstr(why, "which is not https while this node runs TLS") != NULL, "%s", why);
	m = mv_member("node1", "HTTPS://127.0.0.1:8008", "127.0.0.1", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, false, NULL, why, sizeof(why)), MV_INSECURE);
	ck_assert_int_eq(mv_judge(&m, true, NULL, false, "connection refused", why, sizeof(why)), MV_UNREACHABLE);
	ck_assert_msg(strstr(why, "no confirmation: connection refused") != NULL, "%s", why);

	/* what comes from etcd or the peer is escaped */
	m = mv_member("no\xe2\x80\xae"
	              "de1",
	              "https://127.0.0.1:8008", "127.0.0.1", 5432);
	st = mv_status("x\x1b[2J", "127.0.0.1", 5432);
	ck_assert_int_eq(mv_judge(&m, true, &st, true, NULL, why, sizeof(why)), MV_MISMATCH);
	ck_assert_msg(strstr(why, "member no\\xe2\\x80\\xaede1 publishes") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "as member x\\x1b[2J") != NULL, "%s", why);
}
END_TEST

/* /status carries the node's Postgres address, which peers compare with
 * its member key; a port out of range is refused. */
START_TEST(test_status_pg_address)
{
	struct api_status st, back;
	char err[256], *json;

	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "node1");
	snprintf(st.role, sizeof(st.role), "primary");
	snprintf(st.state, sizeof(st.state), "running");
	snprintf(st.pg_host, sizeof(st.pg_host), "10.0.0.1");
	st.pg_port = 5441;
	json = api_status_json(&st);
	ck_assert_ptr_nonnull(json);
	ck_assert_msg(strstr(json, "\"pg_host\":\"10.0.0.1\"") && strstr(json, "\"pg_port\":5441"), "%s", json);
	ck_assert_msg(api_status_from_json(json, &back, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(back.pg_host, "10.0.0.1");
	ck_assert_int_eq(back.pg_port, 5441);
	free(json);
	st.pg_host[0] = '\0'; /* unknown: not said at all */
	json = api_status_json(&st);
	ck_assert_ptr_null(strstr(json, "pg_host"));
	free(json);
	ck_assert(
	        !api_status_from_json("{\"name\":\"n\",\"role\":\"primary\",\"state\":\"running\",\"pg_running\":true,"
	                              "\"is_leader\":true,\"timeline\":1,\"lsn\":1,\"pg_port\":70000}",
	                              &back, err, sizeof(err)));
	ck_assert_msg(strstr(err, "pg_port") != NULL, "%s", err);
}
END_TEST

START_TEST(test_mv_cache)
{
	struct mv_cache c;
	struct ha_member a = mv_member("node1", "https://127.0.0.1:8008", "127.0.0.1", 5432);
	struct ha_member moved = mv_member("node1", "https://127.0.0.1:8008", "127.0.0.1", 6666);
	struct ha_member fake = mv_member("ghost", "https://127.0.0.1:9", "127.0.0.1", 9);
	const struct mv_entry *e;

	memset(&c, 0, sizeof(c));
	ck_assert_ptr_null(mv_cache_find(&c, &a, 10));
	mv_cache_put(&c, &a, true, 10);
	e = mv_cache_find(&c, &a, 10 + MV_CONFIRM_TTL - 1);
	ck_assert_ptr_nonnull(e);
	ck_assert(e->ok);
	ck_assert(mv_confirmed(&c, &a, 11));
	ck_assert_ptr_null(mv_cache_find(&c, &a, 10 + MV_CONFIRM_TTL)); /* bounded */
	/* the same member at another address is another pair */
	ck_assert_ptr_null(mv_cache_find(&c, &moved, 11));
	ck_assert(!mv_confirmed(&c, &moved, 11));

	/* refusals: remembered MV_RETRY, doubled in a row, up to MV_RETRY_MAX */
	mv_cache_put(&c, &fake, false, 100);
	ck_assert_ptr_nonnull(mv_cache_find(&c, &fake, 100 + MV_RETRY - 0.1));
	ck_assert_ptr_null(mv_cache_find(&c, &fake, 100 + MV_RETRY));
	mv_cache_put(&c, &fake, false, 200);
	ck_assert_ptr_nonnull(mv_cache_find(&c, &fake, 200 + 2 * MV_RETRY - 0.1));
	ck_assert_ptr_null(mv_cache_find(&c, &fake, 200 + 2 * MV_RETRY));
	for (int i = 0; i < 10; i++)
		mv_cache_put(&c, &fake, false, 300);
	ck_assert_ptr_nonnull(mv_cache_find(&c, &fake, 300 + MV_RETRY_MAX - 0.1));
	ck_assert_ptr_null(mv_cache_find(&c, &fake, 300 + MV_RETRY_MAX));
	ck_assert(!mv_confirmed(&c, &fake, 301));
	/* a confirmation ends the run of refusals */
	mv_cache_put(&c, &fake, true, 400);
	mv_cache_put(&c, &fake, false, 500);
	ck_assert_ptr_null(mv_cache_find(&c, &fake, 500 + MV_RETRY));

	/* full: refusals make room before confirmations */
	memset(&c, 0, sizeof(c));
	mv_cache_put(&c, &a, true, 1000);
	for (int i = 0; i < 3 * MV_CACHE_N; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fake%d", i);
		fake = mv_member(name, "https://127.0.0.1:9", "127.0.0.1", 9);
		mv_cache_put(&c, &fake, false, 1000 + i);
		ck_assert_ptr_nonnull(mv_cache_find(&c, &fake, 1000 + i));
	}
	ck_assert(mv_confirmed(&c, &a, 1000 + 3 * MV_CACHE_N));
}
END_TEST

static Suite *peer_suite(void)
{
	Suite *s = suite_create("peer");
	TCase *tc = tcase_create("escape");

	tcase_add_test(tc, test_log_escape);
	tcase_add_test(tc, test_log_escape_invisible);
	tcase_add_test(tc, test_escaping_stream);
	tcase_add_test(tc, test_log_write_escapes);
	suite_add_tcase(s, tc);

	tc = tcase_create("member_verify");
	tcase_add_test(tc, test_mv_judge);
	tcase_add_test(tc, test_mv_cache);
	tcase_add_test(tc, test_status_pg_address);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_url_allowed);
	tcase_add_test(tc, test_refused_scheme_connects_nowhere);
	tcase_add_test(tc, test_no_credentials_over_http);
	tcase_add_test(tc, test_https_to_plain_port_fails);
	tcase_add_test(tc, test_redirect_not_followed);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_get_status_checks_answer);
	tcase_add_test(tc, test_tls_verification);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	sr = srunner_create(peer_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
