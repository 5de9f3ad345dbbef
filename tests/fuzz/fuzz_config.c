/*
 * fuzz_config.c - libFuzzer target over the node's config loader
 * (config_load in agent/config.c, which parses with libconfig and then
 * validates every option against its table).
 *
 * Each input is written as the whole config file to one temporary file
 * (created once per process, truncated for every input) and loaded; a
 * successful load is freed again, a failed one must leave a one-line error
 * (config.c escapes what it echoes: a value holding a newline once split
 * the line, found by this target).
 * The seeds are small valid and nearly-valid configs, so mutations explore
 * the validators (ranges, host:port splitting, paths, secrets) rather than
 * only libconfig's lexer.
 *
 * Built and run by tests/fuzz/run_etcd.sh with agent/config.c and
 * agent/log.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[64];

static void remove_file(void)
{
	if (g_path[0] != '\0')
		unlink(g_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct baton_config cfg;
	char err[512];
	FILE *f;

	if (g_path[0] == '\0') {
		int fd;

		snprintf(g_path, sizeof(g_path), "/tmp/fuzz_config.XXXXXX");
		fd = mkstemp(g_path);
		if (fd < 0)
			abort();
		close(fd);
		atexit(remove_file);
	}
	f = fopen(g_path, "w");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	err[0] = '\0';
	if (config_load(g_path, &cfg, err, sizeof(err)))
		config_free(&cfg);
	else if (err[0] == '\0' || strchr(err, '\n') != NULL)
		abort(); /* a failed load explains itself in one line */
	return 0;
}
