/*
 * fuzz_etcd_txn.c - libFuzzer target over the TxnResponse parser
 * (parse_txn in etcd_kv.c, reached by including that file: it is static).
 *
 * Input: <ops byte><JSON body>. The low 4 bits of the first byte say how
 * many operations the branch that ran had (0-15) and the upper bits which
 * of them were GETs (op i is a GET when bit (i % 4) + 4 is set), because
 * parse_txn matches etcd's "responses" against the caller's operations.
 * The parser must answer ETCD_OK with exactly one range per GET, or an
 * error, and free everything with etcd_txn_result_free.
 *
 * Built and run by tests/fuzz/run_etcd.sh (which leaves etcd_kv.c out of
 * the link, since it is compiled here).
 */
#include "etcd/etcd_kv.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etcd_op ops[15];
	struct etcd_txn_result out;
	size_t n_ops, i, n_get = 0;
	json_t *j;
	char why[200];
	enum etcd_status st;

	if (size < 1)
		return 0;
	n_ops = data[0] & 15;
	for (i = 0; i < n_ops; i++) {
		ops[i].kind = (data[0] >> (4 + i % 4)) & 1 ? ETCD_OP_GET : ETCD_OP_PUT;
		ops[i].key = "k";
		ops[i].value = "v";
		ops[i].lease = 0;
		n_get += ops[i].kind == ETCD_OP_GET;
	}
	j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (j == NULL)
		return 0;
	memset(&out, 0, sizeof(out));
	why[0] = '\0';
	st = parse_txn(j, ops, n_ops, &out, why, sizeof(why));
	if (st == ETCD_OK && out.n_ranges != n_get && n_get > 0)
		abort();
	if (st != ETCD_OK && st != ETCD_E_PROTOCOL && st != ETCD_E_NOMEM)
		abort();
	if (st == ETCD_E_PROTOCOL && why[0] == '\0')
		abort();
	etcd_txn_result_free(&out);
	json_decref(j);
	return 0;
}
