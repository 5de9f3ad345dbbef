/*
 * fuzz_etcd_range.c - libFuzzer target over the parsers of etcd's unary
 * answers that live in etcd_codec.c: a RangeResponse (header, kvs with
 * base64 keys and values, int64s as strings) and a MemberListResponse.
 *
 * The input is the body of one answer; the first byte picks the parser
 * (even: range, odd: member list), the rest is handed to jansson exactly as
 * etcd_http.c does with a 200 answer. Whatever the bytes, a parser must
 * return ETCD_OK, ETCD_E_PROTOCOL (with a reason) or ETCD_E_NOMEM, and leave
 * nothing allocated once its result is freed.
 *
 * Built and run by tests/fuzz/run_etcd.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j;
	char why[200];
	enum etcd_status st;

	if (size < 1)
		return 0;
	j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (j == NULL)
		return 0;
	why[0] = '\0';
	if ((data[0] & 1) == 0) {
		struct etcd_range_result r;
		size_t i;

		st = etcd_parse_range(j, &r, why, sizeof(why));
		if (st == ETCD_OK)
			for (i = 0; i < r.n_kvs; i++)
				if (r.kvs[i].key == NULL || r.kvs[i].value == NULL ||
				    r.kvs[i].value[r.kvs[i].value_len] != '\0')
					abort();
		if (st != ETCD_OK && st != ETCD_E_PROTOCOL && st != ETCD_E_NOMEM)
			abort();
		if (st == ETCD_E_PROTOCOL && why[0] == '\0')
			abort();
		etcd_range_result_free(&r);
	} else {
		char **urls = NULL;
		size_t n = 0, i;

		st = etcd_parse_member_list(j, &urls, &n, why, sizeof(why));
		if (st == ETCD_OK) {
			for (i = 0; i < n; i++)
				if (strncmp(urls[i], "http", 4) != 0)
					abort();
		} else if (urls != NULL || n != 0 || (st == ETCD_E_PROTOCOL && why[0] == '\0')) {
			abort();
		}
		etcd_member_list_free(urls, n);
	}
	json_decref(j);
	return 0;
}
