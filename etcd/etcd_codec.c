/*
 * etcd_codec.c - etcd's JSON shapes to C and back.
 *
 * The v3 gateway sends keys and values as base64, every int64 as a decimal
 * JSON string (lease IDs exceed 2^53, so a double would corrupt them), and
 * omits every field that holds its default value. Everything here treats the
 * answer as untrusted: each type is checked, each number parsed with strtoll
 * and range-checked, and a wrong shape becomes ETCD_E_PROTOCOL with a short
 * reason, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_internal.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	size_t out_len = 4 * ((len + 2) / 3);
	char *out = malloc(out_len + 1);
	size_t i, o = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

enum etcd_status etcd_b64_decode(const char *in, size_t in_len, char **out, size_t *out_len)
{
	size_t n = in_len, i, o = 0;
	uint32_t acc = 0;
	int bits = 0;
	char *buf;

	*out = NULL;
	*out_len = 0;
	/* Up to two '=' of padding, only at the end, only to a multiple of 4. */
	if (n > 0 && in[n - 1] == '=') {
		if (in_len % 4 != 0)
			return ETCD_E_PROTOCOL;
		n--;
		if (n > 0 && in[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1)
		return ETCD_E_PROTOCOL;
	buf = malloc(n / 4 * 3 + 3);
	if (buf == NULL)
		return ETCD_E_NOMEM;
	for (i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0) {
			free(buf);
			return ETCD_E_PROTOCOL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)(acc >> bits & 0xff);
		}
	}
	/* Leftover bits must be zero in canonical base64. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(buf);
		return ETCD_E_PROTOCOL;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return ETCD_OK;
}

bool etcd_json_i64(const json_t *obj, const char *name, int64_t *out, char *why, size_t why_len)
{
	const json_t *v = json_object_get(obj, name);
	const char *s, *p;
	char *end;
	long long x;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return true;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (!json_is_string(v)) {
		snprintf(why, why_len, "\"%s\" is not an integer string", name);
		return false;
	}
	s = json_string_value(v);
	/* strtoll skips leading blanks and accepts "+": etcd sends neither. */
	p = s[0] == '-' ? s + 1 : s;
	if (*p < '0' || *p > '9' || json_string_length(v) != strlen(s)) {
		snprintf(why, why_len, "\"%s\" is not an integer string", name);
		return false;
	}
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		snprintf(why, why_len, "\"%s\" is not a 64-bit integer", name);
		return false;
	}
	*out = (int64_t)x;
	return true;
}

bool etcd_json_header_revision(const json_t *obj, int64_t *out, char *why, size_t why_len)
{
	const json_t *h = json_object_get(obj, "header");

	*out = 0;
	if (h == NULL)
		return true;
	if (!json_is_object(h)) {
		snprintf(why, why_len, "\"header\" is not an object");
		return false;
	}
	return etcd_json_i64(h, "revision", out, why, why_len);
}

json_t *etcd_json_b64(const char *s, size_t len)
{
	char *b = etcd_b64_encode(s, len);
	json_t *j;

	if (b == NULL)
		return NULL;
	j = json_string(b);
	free(b);
	return j;
}

json_t *etcd_json_i64str(int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_string(buf);
}

void etcd_kv_clear(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* Decodes the base64 string obj[name] (missing = empty) into *out. */
static enum etcd_status decode_field(const json_t *obj, const char *name, char **out, size_t *len, char *why,
                                     size_t why_len)
{
	const json_t *v = json_object_get(obj, name);
	enum etcd_status st;

	if (v == NULL || json_is_null(v))
		return etcd_b64_decode("", 0, out, len);
	if (!json_is_string(v)) {
		snprintf(why, why_len, "\"%s\" is not a string", name);
		return ETCD_E_PROTOCOL;
	}
	st = etcd_b64_decode(json_string_value(v), json_string_length(v), out, len);
	if (st == ETCD_E_PROTOCOL)
		snprintf(why, why_len, "\"%s\" is not base64", name);
	return st;
}

enum etcd_status etcd_parse_kv(const json_t *j, struct etcd_kv *kv, char *why, size_t why_len)
{
	enum etcd_status st;
	size_t key_len;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j)) {
		snprintf(why, why_len, "a key-value is not an object");
		return ETCD_E_PROTOCOL;
	}
	st = decode_field(j, "key", &kv->key, &key_len, why, why_len);
	if (st != ETCD_OK)
		goto fail;
	kv->key_len = key_len;
	st = decode_field(j, "value", &kv->value, &kv->value_len, why, why_len);
	if (st != ETCD_OK)
		goto fail;
	st = ETCD_E_PROTOCOL;
	if (!etcd_json_i64(j, "create_revision", &kv->create_revision, why, why_len) ||
	    !etcd_json_i64(j, "mod_revision", &kv->mod_revision, why, why_len) ||
	    !etcd_json_i64(j, "version", &kv->version, why, why_len) ||
	    !etcd_json_i64(j, "lease", &kv->lease, why, why_len))
		goto fail;
	return ETCD_OK;
fail:
	etcd_kv_clear(kv);
	return st;
}

enum etcd_status etcd_parse_range(const json_t *j, struct etcd_range_result *out, char *why, size_t why_len)
{
	const json_t *kvs;
	size_t i, n;
	enum etcd_status st;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j)) {
		snprintf(why, why_len, "the range answer is not an object");
		return ETCD_E_PROTOCOL;
	}
	if (!etcd_json_header_revision(j, &out->revision, why, why_len))
		return ETCD_E_PROTOCOL;
	if (json_object_get(j, "more") != NULL && !json_is_boolean(json_object_get(j, "more"))) {
		snprintf(why, why_len, "\"more\" is not a boolean");
		return ETCD_E_PROTOCOL;
	}
	out->more = json_is_true(json_object_get(j, "more"));
	kvs = json_object_get(j, "kvs");
	if (kvs == NULL || json_is_null(kvs))
		return ETCD_OK;
	if (!json_is_array(kvs)) {
		snprintf(why, why_len, "\"kvs\" is not an array");
		return ETCD_E_PROTOCOL;
	}
	n = json_array_size(kvs);
	if (n == 0)
		return ETCD_OK;
	out->kvs = calloc(n, sizeof(*out->kvs));
	if (out->kvs == NULL)
		return ETCD_E_NOMEM;
	for (i = 0; i < n; i++) {
		st = etcd_parse_kv(json_array_get(kvs, i), &out->kvs[i], why, why_len);
		if (st != ETCD_OK)
			return st; /* the kvs parsed so far are freed with out */
		out->n_kvs = i + 1;
	}
	return ETCD_OK;
}

char *etcd_prefix_end(const char *prefix, size_t prefix_len, size_t *len)
{
	char *end = malloc(prefix_len + 1);
	size_t n = prefix_len;

	if (end == NULL)
		return NULL;
	memcpy(end, prefix, prefix_len);
	while (n > 0) {
		unsigned char last = (unsigned char)end[n - 1];
		if (last < 0xff) {
			end[n - 1] = (char)(last + 1);
			end[n] = '\0';
			*len = n;
			return end;
		}
		n--; /* 0xff cannot be incremented: drop it and carry */
	}
	end[0] = '\0';
	*len = 1;
	return end;
}

void etcd_range_result_free(struct etcd_range_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_kvs; i++)
		etcd_kv_clear(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

void etcd_member_list_free(char **client_urls, size_t n)
{
	size_t i;

	for (i = 0; client_urls != NULL && i < n; i++)
		free(client_urls[i]);
	free(client_urls);
}

/* Appends a copy of url to *urls unless it is there already. */
static enum etcd_status add_url(char ***urls, size_t *n, const char *url)
{
	char **grown;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*urls)[i], url) == 0)
			return ETCD_OK;
	grown = realloc(*urls, (*n + 1) * sizeof(**urls));
	if (grown == NULL)
		return ETCD_E_NOMEM;
	*urls = grown;
	grown[*n] = strdup(url);
	if (grown[*n] == NULL)
		return ETCD_E_NOMEM;
	(*n)++;
	return ETCD_OK;
}

enum etcd_status etcd_parse_member_list(const json_t *j, char ***client_urls, size_t *n, char *why, size_t why_len)
{
	const json_t *members, *m;
	enum etcd_status st = ETCD_E_PROTOCOL;
	size_t i, k;

	*client_urls = NULL;
	*n = 0;
	members = json_object_get(j, "members");
	if (!json_is_object(j) || (members != NULL && !json_is_array(members))) {
		snprintf(why, why_len, "\"members\" is not an array");
		return ETCD_E_PROTOCOL;
	}
	json_array_foreach(members, i, m) {
		const json_t *urls = json_object_get(m, "clientURLs");
		const json_t *learner = json_object_get(m, "isLearner");
		const json_t *u;

		if (!json_is_object(m) || (urls != NULL && !json_is_array(urls)) ||
		    (learner != NULL && !json_is_boolean(learner))) {
			snprintf(why, why_len, "member %zu has fields of the wrong type", i);
			goto fail;
		}
		if (json_is_true(learner))
			continue; /* a learner serves no client requests */
		json_array_foreach(urls, k, u) {
			const char *s = json_string_value(u);

			/* Only plain http(s) base URLs of a sane length. */
			if (s == NULL || json_string_length(u) != strlen(s) || strlen(s) > 200 ||
			    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) ||
			    strpbrk(s, " \t\r\n\"") != NULL) {
				snprintf(why, why_len, "member %zu has an unusable client URL", i);
				goto fail;
			}
			st = add_url(client_urls, n, s);
			if (st != ETCD_OK)
				goto fail;
			st = ETCD_E_PROTOCOL;
		}
	}
	return ETCD_OK;
fail:
	etcd_member_list_free(*client_urls, *n);
	*client_urls = NULL;
	*n = 0;
	return st;
}
