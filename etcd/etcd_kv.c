/*
 * etcd_kv.c - KV range/put/delete and txn over the v3 gateway.
 *
 * Each call builds its request with jansson (keys and values base64, int64s
 * as strings), sends it through etcd_call (fail-over, auth, timeouts) and
 * checks the answer's shape before filling the caller's result. A wrong
 * shape is ETCD_E_PROTOCOL naming the endpoint; partial results are freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_internal.h"

#define PATH_RANGE "/v3/kv/range"
#define PATH_PUT "/v3/kv/put"
#define PATH_DELETE "/v3/kv/deleterange"
#define PATH_TXN "/v3/kv/txn"

/* Sets obj[name] = base64(s), stealing nothing from the caller. */
static bool set_b64(json_t *obj, const char *name, const char *s, size_t len)
{
	json_t *v = etcd_json_b64(s, len);

	return v != NULL && json_object_set_new(obj, name, v) == 0;
}

static bool set_i64(json_t *obj, const char *name, int64_t v)
{
	json_t *j = etcd_json_i64str(v);

	return j != NULL && json_object_set_new(obj, name, j) == 0;
}

/* {"key":..} or, for a prefix, {"key":..,"range_end":..}. NULL on ENOMEM. */
static json_t *range_request(const char *key, bool prefix)
{
	json_t *req = json_object();
	char *end = NULL;
	size_t end_len = 0;
	size_t len = strlen(key);

	if (req == NULL)
		return NULL;
	if (prefix && len == 0) {
		/* Every key: from "\0" to "\0". */
		if (!set_b64(req, "key", "", 1) || !set_b64(req, "range_end", "", 1))
			goto fail;
		return req;
	}
	if (!set_b64(req, "key", key, len))
		goto fail;
	if (prefix) {
		end = etcd_prefix_end(key, len, &end_len);
		if (end == NULL || !set_b64(req, "range_end", end, end_len))
			goto fail;
		free(end);
	}
	return req;
fail:
	free(end);
	json_decref(req);
	return NULL;
}

/* Sends a built range request and parses the answer into out; more than
 * max_kvs key-values (0: no bound) is a protocol error. On failure out is
 * freed and err says why. Does not take req. */
static enum etcd_status range_call(struct etcd_client *c, json_t *req, struct etcd_range_result *out, size_t max_kvs,
                                   struct etcd_error *err)
{
	json_t *resp = NULL;
	enum etcd_status st;
	char why[200];

	st = etcd_call(c, PATH_RANGE, req, &resp, NULL, err);
	if (st != ETCD_OK)
		return st;
	st = etcd_parse_range(resp, out, why, sizeof(why));
	if (st == ETCD_OK && max_kvs > 0 && out->n_kvs > max_kvs) {
		snprintf(why, sizeof(why), "%zu key-values where at most %zu may come", out->n_kvs, max_kvs);
		st = ETCD_E_PROTOCOL;
	}
	if (st == ETCD_E_PROTOCOL)
		etcd_protocol_error(c, err, PATH_RANGE, why);
	else if (st == ETCD_E_NOMEM)
		etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	if (st != ETCD_OK)
		etcd_range_result_free(out);
	json_decref(resp);
	return st;
}

static enum etcd_status do_range(struct etcd_client *c, const char *key, bool prefix, struct etcd_range_result *out,
                                 struct etcd_error *err)
{
	json_t *req = NULL;
	enum etcd_status st;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: NULL key");
	if (!prefix && key[0] == '\0')
		return etcd_error_set(err, ETCD_E_INVALID, "etcd: empty key");
	req = range_request(key, prefix);
	if (req == NULL)
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	st = range_call(c, req, out, prefix ? 0 : 1, err);
	json_decref(req);
	return st;
}

enum etcd_status etcd_range(struct etcd_client *c, const struct etcd_range_req *rq, struct etcd_range_result *out,
                            struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL;
	enum etcd_status st;
	size_t key_len;

	if (err == NULL)
		err = &scratch;
	memset(out, 0, sizeof(*out));
	if (rq == NULL || rq->key == NULL || rq->limit < 0 || rq->revision < 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_range: missing key or negative limit/revision");
	key_len = rq->key_len ? rq->key_len : strlen(rq->key);
	if (rq->prefix) {
		char *copy = strndup(rq->key, key_len);

		/* range_request() works on C strings: a prefix has no NUL. */
		if (copy == NULL)
			return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
		if (strlen(copy) != key_len) {
			free(copy);
			return etcd_error_set(err, ETCD_E_INVALID, "etcd_range: a prefix with a NUL byte");
		}
		req = range_request(copy, true);
		free(copy);
	} else {
		if (key_len == 0)
			return etcd_error_set(err, ETCD_E_INVALID, "etcd: empty key");
		req = json_object();
		if (req != NULL && (!set_b64(req, "key", rq->key, key_len) ||
		                    (rq->range_end != NULL &&
		                     !set_b64(req, "range_end", rq->range_end,
		                              rq->range_end_len ? rq->range_end_len : strlen(rq->range_end))))) {
			json_decref(req);
			req = NULL;
		}
	}
	if (req == NULL || (rq->limit > 0 && !set_i64(req, "limit", rq->limit)) ||
	    (rq->revision > 0 && !set_i64(req, "revision", rq->revision)) ||
	    (rq->keys_only && json_object_set_new(req, "keys_only", json_true()) != 0)) {
		json_decref(req);
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	}
	st = range_call(c, req, out, rq->limit > 0 ? (size_t)rq->limit : 0, err);
	json_decref(req);
	return st;
}

bool etcd_error_too_big(const struct etcd_error *err)
{
	if (err == NULL)
		return false;
	/* Our own cap (etcd_http.c), or the gateway's gRPC limit, which comes
	 * back as a 5xx naming ResourceExhausted / "larger than max". */
	return (err->status == ETCD_E_PROTOCOL && strstr(err->message, "answer larger than") != NULL) ||
	       (err->status == ETCD_E_HTTP &&
	        (strstr(err->message, "larger than max") != NULL || strstr(err->message, "ResourceExhausted") != NULL));
}

enum etcd_status etcd_get(struct etcd_client *c, const char *key, struct etcd_range_result *out, struct etcd_error *err)
{
	struct etcd_error scratch;

	return do_range(c, key, false, out, err ? err : &scratch);
}

enum etcd_status etcd_get_prefix(struct etcd_client *c, const char *prefix, struct etcd_range_result *out,
                                 struct etcd_error *err)
{
	struct etcd_error scratch;

	return do_range(c, prefix, true, out, err ? err : &scratch);
}

enum etcd_status etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                          int64_t *revision_out, struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	enum etcd_status st;
	int64_t rev = 0;
	char why[200];

	if (err == NULL)
		err = &scratch;
	if (revision_out != NULL)
		*revision_out = 0;
	if (key == NULL || key[0] == '\0' || value == NULL || lease < 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_put: missing key or value");
	req = json_object();
	if (req == NULL || !set_b64(req, "key", key, strlen(key)) || !set_b64(req, "value", value, strlen(value)) ||
	    (lease != 0 && !set_i64(req, "lease", lease))) {
		st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
		goto cleanup;
	}
	st = etcd_call(c, PATH_PUT, req, &resp, NULL, err);
	if (st != ETCD_OK)
		goto cleanup;
	if (!etcd_json_header_revision(resp, &rev, why, sizeof(why))) {
		st = etcd_protocol_error(c, err, PATH_PUT, why);
		goto cleanup;
	}
	if (revision_out != NULL)
		*revision_out = rev;
cleanup:
	json_decref(req);
	json_decref(resp);
	return st;
}

enum etcd_status etcd_delete(struct etcd_client *c, const char *key, int64_t *deleted_out, struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	enum etcd_status st;
	int64_t deleted = 0;
	char why[200];

	if (err == NULL)
		err = &scratch;
	if (deleted_out != NULL)
		*deleted_out = 0;
	if (key == NULL || key[0] == '\0')
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_delete: missing key");
	req = range_request(key, false);
	if (req == NULL) {
		st = etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
		goto cleanup;
	}
	st = etcd_call(c, PATH_DELETE, req, &resp, NULL, err);
	if (st != ETCD_OK)
		goto cleanup;
	if (!etcd_json_i64(resp, "deleted", &deleted, why, sizeof(why))) {
		st = etcd_protocol_error(c, err, PATH_DELETE, why);
		goto cleanup;
	}
	if (deleted_out != NULL)
		*deleted_out = deleted;
cleanup:
	json_decref(req);
	json_decref(resp);
	return st;
}

/* ---- Txn --------------------------------------------------------------- */

static const char *const cmp_targets[] = {
	[ETCD_CMP_CREATE] = "CREATE", [ETCD_CMP_MOD] = "MOD",     [ETCD_CMP_VERSION] = "VERSION",
	[ETCD_CMP_VALUE] = "VALUE",   [ETCD_CMP_LEASE] = "LEASE",
};
static const char *const cmp_fields[] = {
	[ETCD_CMP_CREATE] = "create_revision",
	[ETCD_CMP_MOD] = "mod_revision",
	[ETCD_CMP_VERSION] = "version",
	[ETCD_CMP_VALUE] = "value",
	[ETCD_CMP_LEASE] = "lease",
};
static const char *const cmp_results[] = {
	[ETCD_CMP_EQUAL] = "EQUAL",
	[ETCD_CMP_NOT_EQUAL] = "NOT_EQUAL",
	[ETCD_CMP_GREATER] = "GREATER",
	[ETCD_CMP_LESS] = "LESS",
};

/* Appends one compare to arr. ETCD_E_INVALID for a bad compare. */
static enum etcd_status add_compare(json_t *arr, const struct etcd_compare *cmp)
{
	json_t *o;
	bool ok;

	if (cmp->key == NULL || cmp->key[0] == '\0' || (unsigned)cmp->target > ETCD_CMP_LEASE ||
	    (unsigned)cmp->result > ETCD_CMP_LESS || (cmp->target == ETCD_CMP_VALUE && cmp->value == NULL))
		return ETCD_E_INVALID;
	o = json_object();
	if (o == NULL)
		return ETCD_E_NOMEM;
	ok = set_b64(o, "key", cmp->key, strlen(cmp->key)) &&
	     json_object_set_new(o, "target", json_string(cmp_targets[cmp->target])) == 0 &&
	     json_object_set_new(o, "result", json_string(cmp_results[cmp->result])) == 0 &&
	     (cmp->target == ETCD_CMP_VALUE ? set_b64(o, "value", cmp->value, strlen(cmp->value))
	                                    : set_i64(o, cmp_fields[cmp->target], cmp->number));
	if (!ok) {
		json_decref(o);
		return ETCD_E_NOMEM;
	}
	/* json_array_append_new takes o even when it fails. */
	return json_array_append_new(arr, o) == 0 ? ETCD_OK : ETCD_E_NOMEM;
}

/* Appends one request_op to arr. ETCD_E_INVALID for a bad op. */
static enum etcd_status add_op(json_t *arr, const struct etcd_op *op)
{
	json_t *inner = NULL, *o = NULL;
	const char *kind;

	if (op->key == NULL || op->key[0] == '\0' || (op->kind == ETCD_OP_PUT && op->value == NULL) || op->lease < 0 ||
	    op->limit < 0)
		return ETCD_E_INVALID;
	switch (op->kind) {
	case ETCD_OP_PUT:
		kind = "request_put";
		break;
	case ETCD_OP_DELETE:
		kind = "request_delete_range";
		break;
	case ETCD_OP_GET:
		kind = "request_range";
		break;
	default:
		return ETCD_E_INVALID;
	}
	inner = json_object();
	o = json_object();
	if (inner == NULL || o == NULL || !set_b64(inner, "key", op->key, strlen(op->key)))
		goto nomem;
	if (op->kind == ETCD_OP_PUT && (!set_b64(inner, "value", op->value, strlen(op->value)) ||
	                                (op->lease != 0 && !set_i64(inner, "lease", op->lease))))
		goto nomem;
	if (op->kind == ETCD_OP_GET && op->prefix) {
		size_t end_len = 0;
		char *end = etcd_prefix_end(op->key, strlen(op->key), &end_len);
		bool set = end != NULL && set_b64(inner, "range_end", end, end_len);

		free(end);
		if (!set)
			goto nomem;
	}
	if (op->kind == ETCD_OP_GET && ((op->limit > 0 && !set_i64(inner, "limit", op->limit)) ||
	                                (op->keys_only && json_object_set_new(inner, "keys_only", json_true()) != 0)))
		goto nomem;
	if (json_object_set_new(o, kind, inner) != 0) {
		inner = NULL;
		goto nomem;
	}
	return json_array_append_new(arr, o) == 0 ? ETCD_OK : ETCD_E_NOMEM;
nomem:
	json_decref(inner);
	json_decref(o);
	return ETCD_E_NOMEM;
}

static void txn_result_zero(struct etcd_txn_result *r)
{
	memset(r, 0, sizeof(*r));
}

void etcd_txn_result_free(struct etcd_txn_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_ranges; i++)
		etcd_range_result_free(&r->ranges[i]);
	free(r->ranges);
	txn_result_zero(r);
}

/* Fills out from a TxnResponse; ops = the branch that ran. */
static enum etcd_status parse_txn(const json_t *resp, const struct etcd_op *ops, size_t n_ops,
                                  struct etcd_txn_result *out, char *why, size_t why_len)
{
	const json_t *succ = json_object_get(resp, "succeeded");
	const json_t *responses = json_object_get(resp, "responses");
	size_t i, n_get = 0;
	enum etcd_status st;

	if (succ != NULL && !json_is_boolean(succ)) {
		snprintf(why, why_len, "\"succeeded\" is not a boolean");
		return ETCD_E_PROTOCOL;
	}
	out->succeeded = json_is_true(succ);
	if (!etcd_json_header_revision(resp, &out->revision, why, why_len))
		return ETCD_E_PROTOCOL;
	if (responses != NULL && !json_is_array(responses)) {
		snprintf(why, why_len, "\"responses\" is not an array");
		return ETCD_E_PROTOCOL;
	}
	/* Only the branch that ran is known now: count its GETs. */
	for (i = 0; i < n_ops; i++)
		if (ops[i].kind == ETCD_OP_GET)
			n_get++;
	if (n_get == 0)
		return ETCD_OK;
	if (json_array_size(responses) != n_ops) {
		snprintf(why, why_len, "%zu responses for %zu operations", json_array_size(responses), n_ops);
		return ETCD_E_PROTOCOL;
	}
	out->ranges = calloc(n_get, sizeof(*out->ranges));
	if (out->ranges == NULL)
		return ETCD_E_NOMEM;
	for (i = 0; i < n_ops; i++) {
		const json_t *r;

		if (ops[i].kind != ETCD_OP_GET)
			continue;
		r = json_object_get(json_array_get(responses, i), "response_range");
		if (!json_is_object(r)) {
			snprintf(why, why_len, "response %zu has no \"response_range\"", i);
			return ETCD_E_PROTOCOL;
		}
		st = etcd_parse_range(r, &out->ranges[out->n_ranges], why, why_len);
		out->n_ranges++; /* counted even on failure, so it is freed */
		if (st != ETCD_OK)
			return st;
		if (out->ranges[out->n_ranges - 1].revision == 0)
			out->ranges[out->n_ranges - 1].revision = out->revision;
	}
	return ETCD_OK;
}

enum etcd_status etcd_txn(struct etcd_client *c, const struct etcd_compare *cmp, size_t n_cmp,
                          const struct etcd_op *success, size_t n_success, const struct etcd_op *failure,
                          size_t n_failure, struct etcd_txn_result *out, struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL, *jc = NULL, *js = NULL, *jf = NULL;
	enum etcd_status st = ETCD_OK;
	char why[200];
	size_t i;

	if (err == NULL)
		err = &scratch;
	if (out == NULL)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_txn: no result");
	txn_result_zero(out);
	if ((n_cmp > 0 && cmp == NULL) || (n_success > 0 && success == NULL) || (n_failure > 0 && failure == NULL))
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_txn: missing array");
	req = json_object();
	jc = json_array();
	js = json_array();
	jf = json_array();
	if (req == NULL || jc == NULL || js == NULL || jf == NULL) {
		st = ETCD_E_NOMEM;
		goto built;
	}
	for (i = 0; i < n_cmp && st == ETCD_OK; i++)
		st = add_compare(jc, &cmp[i]);
	for (i = 0; i < n_success && st == ETCD_OK; i++)
		st = add_op(js, &success[i]);
	for (i = 0; i < n_failure && st == ETCD_OK; i++)
		st = add_op(jf, &failure[i]);
built:
	if (st == ETCD_OK && (json_object_set(req, "compare", jc) != 0 || json_object_set(req, "success", js) != 0 ||
	                      json_object_set(req, "failure", jf) != 0))
		st = ETCD_E_NOMEM;
	if (st == ETCD_E_INVALID) {
		etcd_error_set(err, st, "etcd_txn: a compare or an operation lacks its key or value");
		goto cleanup;
	}
	if (st != ETCD_OK) {
		etcd_error_set(err, st, "etcd: out of memory");
		goto cleanup;
	}
	st = etcd_call(c, PATH_TXN, req, &resp, NULL, err);
	if (st != ETCD_OK)
		goto cleanup;
	{
		/* Which branch ran is only known from the answer. */
		const json_t *succ = json_object_get(resp, "succeeded");
		bool ran_success = json_is_true(succ);

		st = parse_txn(resp, ran_success ? success : failure, ran_success ? n_success : n_failure, out, why,
		               sizeof(why));
	}
	if (st == ETCD_E_PROTOCOL)
		etcd_protocol_error(c, err, PATH_TXN, why);
	else if (st == ETCD_E_NOMEM)
		etcd_error_set(err, st, "etcd: out of memory");
	if (st != ETCD_OK)
		etcd_txn_result_free(out);
cleanup:
	json_decref(jc);
	json_decref(js);
	json_decref(jf);
	json_decref(req);
	json_decref(resp);
	return st;
}
