/*
 * fuzz_etcd_lease.c - libFuzzer target over the lease answers: the
 * keepalive parser (parse_keepalive in etcd_lease.c, static, hence the
 * include) and the int64-as-string reader every answer goes through
 * (etcd_json_i64: "ID" and "TTL" of a grant).
 *
 * Input: the JSON body of one answer. A keepalive answer must give a TTL,
 * an etcd error (code and message borrowed from the document) or a
 * protocol error with a reason; never a crash, whatever the types.
 *
 * Built and run by tests/fuzz/run_etcd.sh (which leaves etcd_lease.c out of
 * the link, since it is compiled here).
 */
#include "etcd/etcd_lease.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	const char *msg = NULL;
	int64_t ttl = -1, id = -1;
	int code = -1;
	char why[200];
	enum etcd_status st;

	if (j == NULL)
		return 0;
	why[0] = '\0';
	st = parse_keepalive(j, &ttl, &code, &msg, why, sizeof(why));
	if (st != ETCD_OK && st != ETCD_E_HTTP && st != ETCD_E_PROTOCOL)
		abort();
	if (st == ETCD_E_PROTOCOL && why[0] == '\0')
		abort();
	if (msg != NULL)
		(void)lease_gone(code, msg);
	/* A grant answer: both fields, through the same reader. */
	if (etcd_json_i64(j, "ID", &id, why, sizeof(why)))
		(void)etcd_json_i64(j, "TTL", &ttl, why, sizeof(why));
	json_decref(j);
	return 0;
}
