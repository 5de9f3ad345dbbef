/*
 * peer.c - the one HTTP client for members' REST APIs (see peer.h for the
 * rules every request follows).
 *
 * Why one module: the agent asks peers for their state in the middle of an
 * election and posts failsafe confirmations; batonctl posts restart, reload
 * and reinit. An api_url comes from a member key in etcd, so whoever can
 * write etcd chooses it: before this module each caller had its own libcurl
 * set-up, and batonctl sent the REST password to whatever URL a key held,
 * over any scheme libcurl knows (file:// read a local file), in clear text
 * to an https port. Here the URL's scheme is checked before libcurl sees
 * it, libcurl is limited to http and https (redirects too, and none are
 * followed), https verifies the server against restapi.cafile with TLS 1.2
 * at least, and the password travels only inside TLS.
 *
 * Answers are bounded (PEER_BODY_MAX, a total timeout) and never trusted:
 * peer_get_status checks every field (api_status_from_json), and messages
 * built from an answer are escaped (log_escape) before anyone prints them.
 */
#include "agent/peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/jsonf.h"
#include "agent/log.h"

#define PEER_TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

void peer_opts_from_config(const struct baton_config *cfg, struct peer_opts *out)
{
	memset(out, 0, sizeof(*out));
	out->cafile = cfg->restapi.cafile;
	out->client_certfile = cfg->restapi.client_certfile;
	out->client_keyfile = cfg->restapi.client_keyfile;
	out->username = cfg->restapi.auth_username;
	out->password = cfg->restapi.auth_password;
}

/* "https" when url is https://..., "http" for http://..., NULL otherwise. */
static const char *url_scheme(const char *url)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return "https";
	if (strncasecmp(url, "http://", 7) == 0)
		return "http";
	return NULL;
}

bool peer_url_allowed(const char *url, char *err, size_t errlen)
{
	const char *scheme, *colon, *host;
	char shown[64];

	if (!url || !*url) {
		jsonf_set_err(err, errlen, "no REST API URL");
		return false;
	}
	scheme = url_scheme(url);
	if (!scheme) {
		colon = strstr(url, "://");
		if (colon && colon - url < 32) {
			char sch[40];

			snprintf(sch, sizeof(sch), "%.*s", (int)(colon - url), url);
			log_escape(sch, shown, sizeof(shown), false);
			jsonf_set_err(err, errlen, "refused REST API URL scheme '%s' (only http and https are allowed)",
			              shown);
		} else {
			jsonf_set_err(err, errlen, "refused REST API URL without http:// or https:// scheme");
		}
		return false;
	}
	host = url + strlen(scheme) + 3;
	if (!*host || *host == '/' || *host == '?' || *host == '#' || strchr(host, '@')) {
		/* "@": user info in a key's URL would choose whom we authenticate as. */
		jsonf_set_err(err, errlen, "refused REST API URL without a plain host: %.64s", url);
		return false;
	}
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
			jsonf_set_err(err, errlen, "refused REST API URL with a control character or space");
			return false;
		}
	/* scheme://host[:port][/] and nothing more: a path, query or fragment
	 * would let a key aim our fixed paths (/status, /failsafe) at another
	 * endpoint of a real member, e.g. "https://member/config?" + "/status"
	 * answering with whatever JSON was stored in etcd. */
	{
		const char *rest = host + strcspn(host, "/?#\\");

		if (*rest && (*rest != '/' || rest[1] != '\0')) {
			log_escape(url, shown, sizeof(shown), false);
			jsonf_set_err(err, errlen,
			              "refused REST API URL with a path, query or fragment: %s "
			              "(a member's api_url is scheme://host:port)",
			              shown);
			return false;
		}
	}
	return true;
}

struct body {
	char *data;
	size_t len;
	bool too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (n > PEER_BODY_MAX - b->len) {
		b->too_big = true;
		return 0; /* makes libcurl fail with CURLE_WRITE_ERROR */
	}
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	b->data = p;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

void peer_answer_free(struct peer_answer *a)
{
	if (!a)
		return;
	free(a->body);
	a->body = NULL;
	a->len = 0;
}

/* The libcurl options every request gets; false when one is refused. */
static bool setup(CURL *curl, const struct peer_opts *o, const char *url, bool https, long ms, struct body *b)
{
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
#endif
	    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    /* Peers are on the cluster's network: a proxy from the environment
	     * would only add a hop (and its own failures) to an election. */
	    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b) != CURLE_OK)
		return false;
	if (!https)
		return true;
	/* TLS 1.3's suites are all modern; for 1.2, forward-secret AEAD only. */
	if (curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_CIPHER_LIST, PEER_TLS12_CIPHERS) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (o->cafile && curl_easy_setopt(curl, CURLOPT_CAINFO, o->cafile) != CURLE_OK))
		return false;
	if (o->client_certfile && o->client_keyfile &&
	    (curl_easy_setopt(curl, CURLOPT_SSLCERT, o->client_certfile) != CURLE_OK ||
	     curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK ||
	     curl_easy_setopt(curl, CURLOPT_SSLKEY, o->client_keyfile) != CURLE_OK ||
	     curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK))
		return false;
	return true;
}

bool peer_request(const struct peer_opts *o, const char *api_url, const char *method, const char *path,
                  const char *body, double timeout, struct peer_answer *out, char *err, size_t errlen)
{
	static const struct peer_opts none;
	struct body b = { NULL, 0, false };
	struct curl_slist *hdr = NULL;
	CURL *curl = NULL;
	char url[512], shown[600];
	bool https, post, ok = false;
	CURLcode rc;
	size_t ulen;
	long ms;
	int n;

	memset(out, 0, sizeof(*out));
	if (!o)
		o = &none;
	if (!peer_url_allowed(api_url, err, errlen))
		return false;
	/* A write: POST, or DELETE (cancelling a scheduled restart). */
	post = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
	if (!post && strcmp(method, "GET") != 0) {
		jsonf_set_err(err, errlen, "unsupported method %s", method);
		return false;
	}
	if (timeout <= 0) {
		jsonf_set_err(err, errlen, "invalid timeout");
		return false;
	}
	https = strcmp(url_scheme(api_url), "https") == 0;
	ulen = strlen(api_url);
	while (ulen > 0 && api_url[ulen - 1] == '/')
		ulen--;
	n = snprintf(url, sizeof(url), "%.*s%s", (int)ulen, api_url, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		jsonf_set_err(err, errlen, "REST API URL too long");
		return false;
	}
	log_escape(url, shown, sizeof(shown), false);
	ms = (long)(timeout * 1000.0);
	if (ms < 1)
		ms = 1;
	curl = curl_easy_init();
	if (!curl) {
		jsonf_set_err(err, errlen, "%s: cannot create a libcurl handle", shown);
		return false;
	}
	if (!setup(curl, o, url, https, ms, &b)) {
		jsonf_set_err(err, errlen, "%s: cannot set up the request", shown);
		goto cleanup;
	}
	if (post) {
		hdr = curl_slist_append(NULL, "Content-Type: application/json");
		if (!hdr || curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
		    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "{}") != CURLE_OK ||
		    (strcmp(method, "DELETE") == 0 &&
		     curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE") != CURLE_OK)) {
			jsonf_set_err(err, errlen, "%s: cannot set up the request", shown);
			goto cleanup;
		}
		/* The password only inside TLS: over http anyone on the path
		 * reads it, and a forged key could point us at a listener of
		 * its own. */
		if (https && o->username &&
		    (curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
		     curl_easy_setopt(curl, CURLOPT_USERNAME, o->username) != CURLE_OK ||
		     curl_easy_setopt(curl, CURLOPT_PASSWORD, o->password ? o->password : "") != CURLE_OK)) {
			jsonf_set_err(err, errlen, "%s: cannot set up the request", shown);
			goto cleanup;
		}
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		if (b.too_big)
			jsonf_set_err(err, errlen, "%s: answer larger than %d bytes", shown, PEER_BODY_MAX);
		else
			jsonf_set_err(err, errlen, "%s: %s", shown, curl_easy_strerror(rc));
		goto cleanup;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->code);
	if (b.data && strlen(b.data) != b.len) {
		jsonf_set_err(err, errlen, "%s: answer contains a NUL byte", shown);
		goto cleanup;
	}
	out->body = b.data ? b.data : strdup("");
	b.data = NULL;
	if (!out->body) {
		jsonf_set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	out->len = b.len;
	out->tls = https; /* verified: libcurl fails the request otherwise */
	ok = true;
cleanup:
	free(b.data);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	return ok;
}

void peer_answer_reason(const struct peer_opts *o, const char *api_url, const struct peer_answer *a, char *buf,
                        size_t len)
{
	json_t *j = a->body ? json_loads(a->body, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "error"));
	char raw[600], esc[1200];

	if (!msg)
		msg = json_string_value(json_object_get(j, "message"));
	snprintf(raw, sizeof(raw), "%s", msg ? msg : a->body ? a->body : "");
	log_escape(raw, esc, sizeof(esc), false);
	if ((a->code == 401 || a->code == 403) && o && o->username && api_url && url_scheme(api_url) &&
	    strcmp(url_scheme(api_url), "http") == 0)
		snprintf(buf, len,
		         "HTTP %ld%s%s (credentials were not sent: the member's REST API is plain http; "
		         "set restapi.certfile/keyfile on it so that it publishes https)",
		         a->code, esc[0] ? ": " : "", esc);
	else
		snprintf(buf, len, "HTTP %ld%s%s", a->code, esc[0] ? ": " : "", esc);
	json_decref(j);
}

bool peer_get_status(const struct peer_opts *o, const char *api_url, double timeout, struct api_status *out, bool *tls,
                     char *err, size_t errlen)
{
	struct peer_answer a;
	char why[256], shown[300];
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (tls)
		*tls = false;
	if (!peer_request(o, api_url, "GET", "/status", NULL, timeout, &a, err, errlen))
		return false;
	log_escape(api_url, shown, sizeof(shown), false);
	if (a.code != 200) {
		jsonf_set_err(err, errlen, "%s/status: HTTP %ld", shown, a.code);
		goto cleanup;
	}
	if (!api_status_from_json(a.body, out, why, sizeof(why))) {
		char esc[600];

		log_escape(why, esc, sizeof(esc), false);
		jsonf_set_err(err, errlen, "%s/status: unexpected answer: %s", shown, esc);
		goto cleanup;
	}
	if (tls)
		*tls = a.tls;
	ok = true;
cleanup:
	peer_answer_free(&a);
	return ok;
}

bool peer_post_failsafe(const struct peer_opts *o, const char *api_url, const char *leader, double timeout, char *err,
                        size_t errlen)
{
	struct peer_answer a;
	json_t *obj = json_pack("{s:s}", "leader", leader);
	char *req = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	char shown[300], why[700];
	bool ok = false;

	json_decref(obj);
	if (!req) {
		jsonf_set_err(err, errlen, "out of memory");
		return false;
	}
	if (!peer_request(o, api_url, "POST", "/failsafe", req, timeout, &a, err, errlen))
		goto cleanup_req;
	if (a.code != 200) {
		log_escape(api_url, shown, sizeof(shown), false);
		peer_answer_reason(o, api_url, &a, why, sizeof(why));
		jsonf_set_err(err, errlen, "%s/failsafe: %s", shown, why);
		goto cleanup;
	}
	ok = true;
cleanup:
	peer_answer_free(&a);
cleanup_req:
	free(req);
	return ok;
}
