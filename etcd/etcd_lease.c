/*
 * etcd_lease.c - lease grant, keepalive and revoke.
 *
 * The gateway's keepalive is a stream endpoint, but one POST carries one
 * keepalive: {"ID":"N"} in, {"result":{"ID":"N","TTL":"T"}} out. A lease
 * that expired or never existed is not an HTTP error there: the answer is a
 * 200 whose result has no TTL (etcd omits the zero), which we report as
 * ETCD_E_LEASE_NOT_FOUND so the caller knows its keys are gone.
 */
#include <stdio.h>
#include <string.h>

#include "etcd/etcd_internal.h"

#define PATH_GRANT "/v3/lease/grant"
#define PATH_KEEPALIVE "/v3/lease/keepalive"
#define PATH_REVOKE "/v3/lease/revoke"

/* etcd's gRPC code for "requested lease not found". */
#define GRPC_NOT_FOUND 5

/* {"ID":"<id>"} plus, when ttl >= 0, "TTL". NULL on ENOMEM. */
static json_t *lease_request(int64_t id, int64_t ttl)
{
	json_t *req = json_object();
	json_t *jid = etcd_json_i64str(id);
	json_t *jttl = ttl >= 0 ? etcd_json_i64str(ttl) : NULL;

	if (req == NULL || jid == NULL || (ttl >= 0 && jttl == NULL) || json_object_set(req, "ID", jid) != 0 ||
	    (jttl && json_object_set(req, "TTL", jttl) != 0)) {
		json_decref(req);
		req = NULL;
	}
	json_decref(jid);
	json_decref(jttl);
	return req;
}

static bool lease_gone(int grpc_code, const char *message)
{
	return grpc_code == GRPC_NOT_FOUND || strstr(message, "lease not found") != NULL;
}

enum etcd_status etcd_lease_grant(struct etcd_client *c, int64_t ttl, int64_t *id_out, int64_t *granted_ttl_out,
                                  struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	enum etcd_status st;
	int64_t id = 0, granted = 0;
	const char *emsg;
	char why[200];

	if (err == NULL)
		err = &scratch;
	if (id_out != NULL)
		*id_out = 0;
	if (granted_ttl_out != NULL)
		*granted_ttl_out = 0;
	if (ttl <= 0 || id_out == NULL)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_lease_grant: bad TTL or no output");
	req = lease_request(0, ttl);
	if (req == NULL)
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	st = etcd_call(c, PATH_GRANT, req, &resp, NULL, err);
	if (st != ETCD_OK)
		goto cleanup;
	emsg = json_string_value(json_object_get(resp, "error"));
	if (emsg != NULL && emsg[0] != '\0') {
		st = etcd_error_set(err, ETCD_E_HTTP, "%s: lease grant refused: %.200s", etcd_client_endpoint(c), emsg);
		goto cleanup;
	}
	if (!etcd_json_i64(resp, "ID", &id, why, sizeof(why)) ||
	    !etcd_json_i64(resp, "TTL", &granted, why, sizeof(why))) {
		st = etcd_protocol_error(c, err, PATH_GRANT, why);
		goto cleanup;
	}
	if (id <= 0 || granted <= 0) {
		st = etcd_protocol_error(c, err, PATH_GRANT, "no lease ID or TTL");
		goto cleanup;
	}
	*id_out = id;
	if (granted_ttl_out != NULL)
		*granted_ttl_out = granted;
cleanup:
	json_decref(req);
	json_decref(resp);
	return st;
}

/*
 * Reads a keepalive answer: ETCD_OK with *ttl (0 or less when the lease is
 * gone); ETCD_E_HTTP when the stream carried an error object (*code and
 * *message, borrowed from resp, filled); ETCD_E_PROTOCOL (why filled).
 */
static enum etcd_status parse_keepalive(const json_t *resp, int64_t *ttl, int *code, const char **message, char *why,
                                        size_t why_len)
{
	const json_t *result = json_object_get(resp, "result");

	*ttl = 0;
	*message = NULL;
	if (!json_is_object(result)) {
		const json_t *e = json_object_get(resp, "error");

		if (json_is_object(e)) {
			*code = (int)json_integer_value(json_object_get(e, "grpc_code"));
			*message = json_string_value(json_object_get(e, "message"));
			return ETCD_E_HTTP;
		}
		snprintf(why, why_len, "no \"result\" object");
		return ETCD_E_PROTOCOL;
	}
	if (!etcd_json_i64(result, "TTL", ttl, why, why_len))
		return ETCD_E_PROTOCOL;
	return ETCD_OK;
}

enum etcd_status etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl_out, struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	const char *m = NULL;
	enum etcd_status st;
	int64_t ttl = 0;
	int code = -1;
	char why[200];

	if (err == NULL)
		err = &scratch;
	if (ttl_out != NULL)
		*ttl_out = 0;
	if (id <= 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_lease_keepalive: bad lease ID");
	req = lease_request(id, -1);
	if (req == NULL)
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	st = etcd_call(c, PATH_KEEPALIVE, req, &resp, &code, err);
	if (st != ETCD_OK)
		goto cleanup;
	st = parse_keepalive(resp, &ttl, &code, &m, why, sizeof(why));
	if (st == ETCD_E_HTTP) {
		st = etcd_error_set(err, ETCD_E_HTTP, "%s: keepalive refused: %.200s", etcd_client_endpoint(c),
		                    m ? m : "(no message)");
		if (lease_gone(code, m ? m : ""))
			err->status = st = ETCD_E_LEASE_NOT_FOUND;
		goto cleanup;
	}
	if (st != ETCD_OK) {
		st = etcd_protocol_error(c, err, PATH_KEEPALIVE, why);
		goto cleanup;
	}
	if (ttl <= 0) {
		st = etcd_error_set(err, ETCD_E_LEASE_NOT_FOUND, "%s: lease %lld not found (expired or revoked)",
		                    etcd_client_endpoint(c), (long long)id);
		goto cleanup;
	}
	if (ttl_out != NULL)
		*ttl_out = ttl;
cleanup:
	json_decref(req);
	json_decref(resp);
	return st;
}

enum etcd_status etcd_lease_revoke(struct etcd_client *c, int64_t id, struct etcd_error *err)
{
	struct etcd_error scratch;
	json_t *req = NULL, *resp = NULL;
	enum etcd_status st;
	int code = -1;

	if (err == NULL)
		err = &scratch;
	if (id <= 0)
		return etcd_error_set(err, ETCD_E_INVALID, "etcd_lease_revoke: bad lease ID");
	req = lease_request(id, -1);
	if (req == NULL)
		return etcd_error_set(err, ETCD_E_NOMEM, "etcd: out of memory");
	st = etcd_call(c, PATH_REVOKE, req, &resp, &code, err);
	if (st == ETCD_E_LEASE_NOT_FOUND || (st == ETCD_E_HTTP && lease_gone(code, err->message)))
		st = ETCD_OK; /* already gone: what the caller wanted */
	json_decref(req);
	json_decref(resp);
	return st;
}
