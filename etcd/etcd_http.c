/*
 * etcd_http.c - the transport: POSTs to the etcd gateway through libcurl.
 *
 * Every transfer runs on the client's own multi handle, driven by a loop
 * that polls at most 50 ms at a time and checks the cancel flag between
 * polls: this is what lets etcd_client_cancel(), from another thread, end
 * even an idle watch stream within ~50 ms. Unary requests have a connect
 * timeout and a total timeout; a stream has the connect timeout and a
 * deadline for its first answer, then no total timeout.
 *
 * Endpoint fail-over: a request starts on the endpoint that answered last.
 * A connect error, a timeout or a 5xx answer moves it to the next endpoint,
 * once per endpoint; any other answer that reached etcd (200 or 4xx) is
 * final and makes that endpoint the preferred one. When every endpoint
 * failed, the error lists each one with its cause.
 *
 * Auth: with a username, the client gets a token from /v3/auth/authenticate
 * before its first request and sends it as the raw Authorization header.
 * When etcd refuses the token (expired, invalid, auth store moved on), the
 * request is retried once with a fresh one.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd/etcd_internal.h"

/* One transfer's receive state. */
struct xfer {
	struct etcd_client *c;
	struct etcd_stream *stream; /* NULL for a unary request */
	char *buf;
	size_t len, cap;
	long status;        /* HTTP status, known once headers arrived */
	int64_t last_rx_ms; /* when the last byte arrived (etcd_now_ms) */
	bool too_big;
	bool nomem;
};

/* Feeds complete lines of a 200 stream to on_line and keeps the rest. */
static bool split_lines(struct xfer *x)
{
	size_t start = 0;
	char *nl;

	while ((nl = memchr(x->buf + start, '\n', x->len - start)) != NULL) {
		size_t end = (size_t)(nl - x->buf);
		size_t line_len = end - start;

		x->buf[end] = '\0';
		if (line_len > 0 && x->buf[end - 1] == '\r') {
			x->buf[end - 1] = '\0';
			line_len--;
		}
		if (!x->stream->on_line(x->stream->ctx, x->buf + start, line_len)) {
			x->stream->stopped = true;
			return false;
		}
		start = end + 1;
	}
	memmove(x->buf, x->buf + start, x->len - start);
	x->len -= start;
	x->buf[x->len] = '\0';
	return true;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	x->last_rx_ms = etcd_now_ms();
	if (x->status == 0)
		curl_easy_getinfo(x->c->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (n > ETCD_MAX_BODY || x->len > ETCD_MAX_BODY - n) {
		x->too_big = true;
		return 0;
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *nb;

		while (cap < x->len + n + 1)
			cap *= 2;
		nb = realloc(x->buf, cap);
		if (nb == NULL) {
			x->nomem = true;
			return 0;
		}
		x->buf = nb;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->buf[x->len] = '\0';
	if (x->stream != NULL && x->status == 200 && !split_lines(x))
		return 0;
	return n;
}

/* Appends "Name: value" to a header list; false on ENOMEM. */
static bool add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (n == NULL)
		return false;
	*list = n;
	return true;
}

static bool is_tls_error(CURLcode rc, const char *errbuf)
{
	/* With TLS 1.3 a server refusing our client certificate is only heard
	 * after the handshake, as an alert on the first read. */
	if ((rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) && strstr(errbuf, "SSL") != NULL)
		return true;
	return rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR ||
	       rc == CURLE_SSL_CRL_BADFILE || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

/* A TLS failure as an operator can act on it: which file, and why. The
 * endpoint is unusable (ETCD_E_UNAVAILABLE), so the request moves on. */
static enum etcd_status tls_error(const struct etcd_client *c, const char *base, CURLcode rc, const char *errbuf,
                                  struct etcd_error *err)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	const char *ca = c->cacert != NULL ? c->cacert : "(the system's default CAs)";

	switch (rc) {
	case CURLE_SSL_CACERT_BADFILE:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: TLS: cannot load CA file %s (%s)", base, ca, why);
	case CURLE_SSL_CERTPROBLEM:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE,
		                      "%s: TLS: cannot use client certificate %s with key %s (%s)", base,
		                      c->cert != NULL ? c->cert : "(none)",
		                      c->key != NULL ? c->key : "(in the certificate file)", why);
	case CURLE_PEER_FAILED_VERIFICATION:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: TLS: server certificate not trusted by CA %s (%s)",
		                      base, ca, why);
	case CURLE_SSL_CONNECT_ERROR:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: TLS: handshake failed (%s)%s", base, why,
		                      c->cert == NULL ? "; no client certificate is configured" : "");
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: TLS: the server refused the connection (%s)%s",
		                      base, why, c->cert == NULL ? "; no client certificate is configured" : "");
	default:
		return etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: TLS: %s", base, why);
	}
}

/*
 * Runs one POST of body to path on endpoint ep. Returns ETCD_OK when an HTTP
 * answer arrived (x->status tells which; a stream stopped by on_line also
 * returns ETCD_OK), or the transport failure: ETCD_E_UNAVAILABLE,
 * ETCD_E_TIMEOUT, ETCD_E_CANCELED, ETCD_E_PROTOCOL (answer too big) or
 * ETCD_E_NOMEM, with err naming the endpoint.
 */
static enum etcd_status perform(struct etcd_client *c, size_t ep, const char *path, const char *body, bool send_token,
                                struct xfer *x, struct etcd_error *err)
{
	const char *base = c->endpoints[ep];
	CURL *e = c->easy;
	struct curl_slist *headers = NULL;
	char url[1024], errbuf[CURL_ERROR_SIZE], *auth = NULL;
	enum etcd_status st = ETCD_OK;
	bool canceled = false, first_timeout = false, idle_timeout = false, done = false;
	bool added = false;
	CURLcode rc = CURLE_OK;
	CURLMcode mc = CURLM_OK;
	long oserr = 0;
	int64_t start = etcd_now_ms();
	int64_t first_deadline = start + c->connect_timeout_ms + c->request_timeout_ms;
	long idle_ms = x->stream != NULL ? x->stream->idle_timeout_ms : 0;
	CURLMsg *msg;
	int queued;

	if (snprintf(url, sizeof(url), "%s%s", base, path) >= (int)sizeof(url))
		return etcd_error_set(err, ETCD_E_INVALID, "%s: URL too long", base);
	if (!add_header(&headers, "Content-Type: application/json") || !add_header(&headers, "Expect:"))
		goto nomem;
	if (send_token && c->token != NULL) {
		size_t n = strlen(c->token) + sizeof("Authorization: ");

		auth = malloc(n);
		if (auth == NULL)
			goto nomem;
		snprintf(auth, n, "Authorization: %s", c->token);
		if (!add_header(&headers, auth))
			goto nomem;
	}

	errbuf[0] = '\0';
	x->last_rx_ms = start;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 deprecated the bitmask form */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->stream != NULL ? 0L : c->request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	if (x->stream == NULL)
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ETCD_MAX_BODY);
	if (x->stream != NULL) {
		/* A silently dead peer is noticed by keepalive probes. */
		curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
		curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
	}
	if (c->cacert != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
	if (c->cert != NULL)
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
	if (c->key != NULL)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);

	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: cannot start a transfer", base);
		goto cleanup;
	}
	added = true;
	for (;;) {
		int running = 0;

		if (atomic_load(&c->canceled)) {
			canceled = true;
			break;
		}
		mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK || running == 0)
			break;
		if (x->stream != NULL && !x->stream->established && etcd_now_ms() > first_deadline) {
			first_timeout = true;
			break;
		}
		if (x->stream != NULL && x->stream->established && idle_ms > 0 &&
		    etcd_now_ms() - x->last_rx_ms > idle_ms) {
			idle_timeout = true;
			break;
		}
		mc = curl_multi_poll(c->multi, NULL, 0, 50, NULL);
		if (mc != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) {
			rc = msg->data.result;
			done = true;
		}
	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
	if (x->status == 0)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);

	if (canceled)
		st = etcd_error_set(err, ETCD_E_CANCELED, "%s: canceled", base);
	else if (first_timeout)
		st = etcd_error_set(err, ETCD_E_TIMEOUT, "%s: no answer within %ld ms", base,
		                    (long)(etcd_now_ms() - start));
	else if (idle_timeout)
		st = etcd_error_set(err, ETCD_E_TIMEOUT, "%s: watch stream silent for %ld ms", base,
		                    (long)(etcd_now_ms() - x->last_rx_ms));
	else if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		st = etcd_error_set(err, ETCD_E_PROTOCOL, "%s: answer larger than %zu bytes", base, ETCD_MAX_BODY);
	else if (x->nomem)
		st = etcd_error_set(err, ETCD_E_NOMEM, "%s: out of memory reading the answer", base);
	else if (x->stream != NULL && x->stream->stopped)
		st = ETCD_OK;
	else if (mc != CURLM_OK)
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: %s", base, curl_multi_strerror(mc));
	else if (!done)
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: transfer did not complete", base);
	else if (rc == CURLE_OK)
		st = ETCD_OK;
	else if (rc == CURLE_COULDNT_CONNECT && oserr != 0)
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: connect failed: %s", base, strerror((int)oserr));
	else if (is_tls_error(rc, errbuf))
		st = tls_error(c, base, rc, errbuf, err);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		st = etcd_error_set(err, ETCD_E_TIMEOUT, "%s: timed out after %ld ms (%s)", base,
		                    (long)(etcd_now_ms() - start), errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else if (strncmp(base, "https:", 6) == 0 && c->cert == NULL && rc != CURLE_COULDNT_CONNECT)
		/* The connection was dropped in or right after the handshake:
		 * the likeliest reason is a server that wants a client cert. */
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE,
		                    "%s: TLS: connection dropped (%s); no client certificate is "
		                    "configured",
		                    base, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		st = etcd_error_set(err, ETCD_E_UNAVAILABLE, "%s: %s", base,
		                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	goto cleanup;
nomem:
	st = etcd_error_set(err, ETCD_E_NOMEM, "%s: out of memory", base);
cleanup:
	if (added)
		curl_multi_remove_handle(c->multi, e);
	/* The easy handle must not keep pointers to what we free here. */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(headers);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return st;
}

/* A printable excerpt of an error body, and etcd's code if it sent one. */
static void describe_http_error(const struct xfer *x, char *out, size_t out_len, int *grpc_code)
{
	json_t *j = NULL;
	const char *m = NULL;
	size_t i, o = 0;

	*grpc_code = -1;
	out[0] = '\0';
	if (x->buf != NULL)
		j = json_loadb(x->buf, x->len, 0, NULL);
	if (json_is_object(j)) {
		json_t *code = json_object_get(j, "code");
		json_t *inner = json_object_get(j, "error");

		/* A stream reports errors as {"error":{"grpc_code":..,"message":..}}. */
		if (json_is_object(inner)) {
			code = json_object_get(inner, "grpc_code");
			m = json_string_value(json_object_get(inner, "message"));
		}
		if (json_is_integer(code))
			*grpc_code = (int)json_integer_value(code);
		if (m == NULL)
			m = json_string_value(json_object_get(j, "message"));
		if (m == NULL)
			m = json_string_value(inner);
	}
	if (m == NULL)
		m = x->buf != NULL ? x->buf : "";
	for (i = 0; m[i] != '\0' && o + 1 < out_len && i < 200; i++)
		out[o++] = isprint((unsigned char)m[i]) ? m[i] : ' ';
	out[o] = '\0';
	json_decref(j);
}

enum etcd_status etcd_protocol_error(struct etcd_client *c, struct etcd_error *err, const char *path, const char *why)
{
	return etcd_error_set(err, ETCD_E_PROTOCOL, "%s: unexpected answer to %s: %s", c->endpoints[c->current], path,
	                      why);
}

/* Appends "; msg" (or msg) to all, truncating quietly. */
static void append_msg(char *all, size_t all_len, const char *msg)
{
	size_t used = strlen(all);

	if (used + 3 >= all_len)
		return;
	if (snprintf(all + used, all_len - used, "%s%s", used ? "; " : "", msg) < 0)
		all[used] = '\0';
}

/*
 * The endpoint loop behind etcd_call and authentication: see the file
 * comment. On ETCD_OK *out holds the 200 answer's JSON object. On
 * ETCD_E_HTTP, *http_status and *grpc_code describe the refusal.
 */
static enum etcd_status call_endpoints(struct etcd_client *c, const char *path, const char *body, bool send_token,
                                       json_t **out, long *http_status, int *grpc_code, struct etcd_error *err)
{
	char all[sizeof(err->message)] = "";
	enum etcd_status last = ETCD_E_UNAVAILABLE;
	size_t i, first = c->current;

	*out = NULL;
	*http_status = 0;
	*grpc_code = -1;
	for (i = 0; i < c->n_endpoints; i++) {
		size_t ep = (first + i) % c->n_endpoints;
		struct xfer x = { .c = c };
		struct etcd_error one;
		enum etcd_status st = perform(c, ep, path, body, send_token, &x, &one);

		if (st == ETCD_OK && x.status == 200) {
			json_error_t jerr;
			json_t *j = json_loadb(x.buf ? x.buf : "", x.len, 0, &jerr);

			c->current = ep;
			free(x.buf);
			if (!json_is_object(j)) {
				char why[300];

				snprintf(why, sizeof(why), "%s", j ? "not a JSON object" : jerr.text);
				json_decref(j);
				return etcd_protocol_error(c, err, path, why);
			}
			*out = j;
			return ETCD_OK;
		}
		if (st == ETCD_OK) {
			char excerpt[256];

			describe_http_error(&x, excerpt, sizeof(excerpt), grpc_code);
			free(x.buf);
			*http_status = x.status;
			etcd_error_set(&one, ETCD_E_HTTP, "%s: HTTP %ld: %s%s", c->endpoints[ep], x.status, excerpt,
			               strstr(excerpt, "CommonName of client") != NULL
			                       ? " (with auth on, etcd's JSON gateway takes only client "
			                         "certificates without a Common Name)"
			                       : "");
			if (x.status < 500) {
				c->current = ep;
				*err = one;
				return ETCD_E_HTTP;
			}
			st = ETCD_E_HTTP; /* 5xx: this member is unwell, try another */
		} else {
			free(x.buf);
		}
		if (st != ETCD_E_UNAVAILABLE && st != ETCD_E_TIMEOUT && st != ETCD_E_HTTP) {
			*err = one;
			return st;
		}
		append_msg(all, sizeof(all), one.message);
		last = st;
		if (i + 1 < c->n_endpoints)
			atomic_fetch_add(&c->st_endpoint_failovers, 1);
	}
	return etcd_error_set(err, last, "%s", all);
}

bool etcd_token_refused(const struct etcd_client *c, long http_status, int grpc_code, const char *message)
{
	if (c->username == NULL)
		return false;
	return http_status == 401 || grpc_code == 16 /* Unauthenticated */ || strstr(message, "auth token") != NULL ||
	       strstr(message, "revision of auth store is old") != NULL ||
	       strstr(message, "user name is empty") != NULL;
}

static enum etcd_status authenticate(struct etcd_client *c, struct etcd_error *err)
{
	json_t *req = NULL, *resp = NULL;
	char *body = NULL;
	const char *token;
	enum etcd_status st;
	long http_status;
	int code;

	req = json_pack("{s:s, s:s}", "name", c->username, "password", c->password);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (body == NULL) {
		st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
		goto cleanup;
	}
	st = call_endpoints(c, "/v3/auth/authenticate", body, false, &resp, &http_status, &code, err);
	if (st == ETCD_E_HTTP) {
		err->status = st = ETCD_E_AUTH;
		goto cleanup;
	}
	if (st != ETCD_OK)
		goto cleanup;
	token = json_string_value(json_object_get(resp, "token"));
	if (token == NULL || token[0] == '\0' || strpbrk(token, "\r\n") != NULL) {
		st = etcd_protocol_error(c, err, "/v3/auth/authenticate", "no usable \"token\"");
		goto cleanup;
	}
	free(c->token);
	c->token = strdup(token);
	if (c->token == NULL)
		st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
cleanup:
	if (body != NULL) {
		explicit_bzero(body, strlen(body));
		free(body);
	}
	json_decref(req);
	json_decref(resp);
	return st;
}

enum etcd_status etcd_reauthenticate(struct etcd_client *c, struct etcd_error *err)
{
	if (c->username == NULL)
		return ETCD_OK;
	if (c->token != NULL) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
		c->token = NULL;
	}
	return authenticate(c, err);
}

static enum etcd_status ensure_token(struct etcd_client *c, struct etcd_error *err)
{
	if (c->username == NULL || c->token != NULL)
		return ETCD_OK;
	return authenticate(c, err);
}

enum etcd_status etcd_call(struct etcd_client *c, const char *path, json_t *req, json_t **out, int *grpc_code,
                           struct etcd_error *err)
{
	char *body = NULL;
	enum etcd_status st;
	long http_status = 0;
	int code = -1;
	int attempt;
	int64_t t0;

	*out = NULL;
	t0 = etcd_now_us();
	if (atomic_load(&c->canceled)) {
		st = etcd_error_set(err, ETCD_E_CANCELED, "%s: canceled", c->endpoints[c->current]);
		goto cleanup;
	}
	body = json_dumps(req, JSON_COMPACT);
	if (body == NULL) {
		st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
		goto cleanup;
	}
	st = ensure_token(c, err);
	if (st != ETCD_OK)
		goto cleanup;
	for (attempt = 0;; attempt++) {
		st = call_endpoints(c, path, body, true, out, &http_status, &code, err);
		if (st != ETCD_E_HTTP || !etcd_token_refused(c, http_status, code, err->message))
			break;
		if (attempt > 0) {
			err->status = st = ETCD_E_AUTH;
			break;
		}
		st = etcd_reauthenticate(c, err);
		if (st != ETCD_OK)
			break;
	}
	if (st == ETCD_E_HTTP &&
	    (code == 16 || code == 7 || http_status == 401 || strstr(err->message, "user name is empty") != NULL))
		err->status = st = ETCD_E_AUTH;
	/* A put or txn naming a lease that expired: the caller lost its lease. */
	if (st == ETCD_E_HTTP && code == 5 && strstr(err->message, "lease not found") != NULL)
		err->status = st = ETCD_E_LEASE_NOT_FOUND;
cleanup:
	etcd_stats_record(c, path, etcd_now_us() - t0, st);
	if (grpc_code != NULL)
		*grpc_code = code;
	free(body);
	return st;
}

enum etcd_status etcd_stream_once(struct etcd_client *c, size_t ep, const char *path, const char *body,
                                  struct etcd_stream *s, struct etcd_error *err)
{
	struct xfer x = { .c = c, .stream = s };
	enum etcd_status st;

	s->stopped = false;
	s->established = false;
	s->grpc_code = -1;
	s->http_status = 0;
	if (atomic_load(&c->canceled))
		return etcd_error_set(err, ETCD_E_CANCELED, "%s: canceled", c->endpoints[ep]);
	st = ensure_token(c, err);
	if (st != ETCD_OK)
		return st;
	st = perform(c, ep, path, body, true, &x, err);
	s->http_status = x.status;
	if (st == ETCD_OK && !s->stopped && x.status != 200) {
		char excerpt[256];

		describe_http_error(&x, excerpt, sizeof(excerpt), &s->grpc_code);
		st = etcd_error_set(err, ETCD_E_HTTP, "%s: HTTP %ld: %s", c->endpoints[ep], x.status, excerpt);
	}
	free(x.buf);
	return st;
}
