/*
 * fuzz_etcd_watch.c - libFuzzer target over the watch stream: the framing
 * that cuts a chunked 200 answer into lines (on_write/split_lines in
 * etcd_http.c) and the per-line parser behind etcd_watch (on_line and
 * deliver in etcd_watch.c). Both are static, so this file includes the two
 * .c files and drives them the way libcurl would, without a socket.
 *
 * Input: <piece byte><stream bytes>. The stream is handed to the write
 * callback in pieces of (piece byte % 61) + 1 bytes, so lines and JSON
 * objects are split at every possible place across "chunks". The callback
 * that receives events checks what the library promises (a kv with a key
 * and a NUL-terminated value) and stops the watch after 50 batches.
 *
 * Built and run by tests/fuzz/run_etcd.sh (which leaves etcd_http.c and
 * etcd_watch.c out of the link, since they are compiled here).
 */
#include "etcd/etcd_http.c"
#include "etcd/etcd_watch.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct etcd_client *g_client;
static int g_batches;

static bool check_events(void *ctx, const struct etcd_event *events, size_t n, int64_t revision)
{
	size_t i;

	(void)ctx;
	(void)revision;
	for (i = 0; i < n; i++) {
		if (events[i].kv == NULL || events[i].kv->key == NULL || events[i].kv->value == NULL ||
		    events[i].kv->value[events[i].kv->value_len] != '\0' ||
		    (events[i].type != ETCD_EVENT_PUT && events[i].type != ETCD_EVENT_DELETE))
			abort();
	}
	return ++g_batches < 50;
}

static void on_connected_cb(void *ctx)
{
	(void)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etcd_stream stream = { 0 };
	struct watch_run w = { 0 };
	struct xfer x = { 0 };
	size_t piece, off;

	if (g_client == NULL) {
		static const char *const eps[] = { "http://127.0.0.1:1" };
		struct etcd_config cfg = { .endpoints = eps, .n_endpoints = 1 };
		struct etcd_error err;

		if (etcd_client_new(&cfg, &g_client, &err) != ETCD_OK)
			abort();
	}
	if (size < 1)
		return 0;
	piece = (size_t)(data[0] % 61) + 1;
	g_batches = 0;
	w.c = g_client;
	w.stream = &stream;
	w.cb = check_events;
	w.on_connected = on_connected_cb;
	stream.on_line = on_line;
	stream.ctx = &w;
	stream.grpc_code = -1;
	x.c = g_client;
	x.stream = &stream;
	x.status = 200; /* as if the headers said so: no curl_easy_getinfo */
	for (off = 1; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		if (on_write((char *)data + off, 1, n, &x) != n)
			break;
		if (w.fatal != ETCD_OK || w.user_stop)
			break;
	}
	if (w.fatal == ETCD_E_PROTOCOL && w.why[0] == '\0')
		abort();
	if (w.last_rev < 0 && w.next_rev != 0)
		abort();
	free(x.buf);
	return 0;
}
