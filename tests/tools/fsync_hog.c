/*
 * fsync_hog.c - an fsync-heavy disk load for tests/chaos/stability.sh.
 *
 * Appends --block KiB (default 256) to a file in DIR and calls fdatasync()
 * after every write, the way a write-ahead log does, until SIGTERM/SIGINT
 * or --duration seconds. Each append grows the file, so every fdatasync
 * also has to commit the file system's journal (block allocation and size),
 * which is what competes with etcd's own WAL fsyncs on the same disk. When
 * the file reaches --file-mb MiB (default 64) it is truncated and filled
 * again. The file is unlinked right after it is opened, so nothing is left
 * behind even if the process is killed.
 *
 * Every --report seconds (default 10) it prints
 *
 *   interval <unix_ms> fsyncs <n> mib_s <x> max_ms <y>
 *
 * and at exit the totals: "fsyncs N", "mib N", "seconds S", "fsync_avg_ms",
 * "fsync_p99_ms" (to the 0.1 ms below 100 ms, to 10 ms above) and
 * "fsync_max_ms". Exit status 0 after a stop, 1 on an I/O error (named on
 * stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/tools/tool_util.h"

/* Latency histogram: 0.1 ms buckets below 100 ms, 10 ms buckets up to 10 s,
 * then one overflow bucket. */
#define FINE_BUCKETS 1000
#define COARSE_BUCKETS 990
#define N_BUCKETS (FINE_BUCKETS + COARSE_BUCKETS + 1)

struct hist {
	uint64_t count[N_BUCKETS];
	uint64_t n;
	double sum_ms, max_ms;
};

static void hist_add(struct hist *h, double ms)
{
	size_t i;

	if (ms < 100.0)
		i = (size_t)(ms * 10.0);
	else if (ms < 10000.0)
		i = FINE_BUCKETS + (size_t)((ms - 100.0) / 10.0);
	else
		i = N_BUCKETS - 1;
	if (i >= N_BUCKETS)
		i = N_BUCKETS - 1;
	h->count[i]++;
	h->n++;
	h->sum_ms += ms;
	if (ms > h->max_ms)
		h->max_ms = ms;
}

/* The upper bound (ms) of the bucket holding quantile q; the maximum for
 * the overflow bucket. */
static double hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)((double)h->n * q);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < N_BUCKETS; i++) {
		seen += h->count[i];
		if (seen < want)
			continue;
		if (i < FINE_BUCKETS)
			return (double)(i + 1) / 10.0;
		if (i < N_BUCKETS - 1)
			return 100.0 + (double)(i - FINE_BUCKETS + 1) * 10.0;
		return h->max_ms;
	}
	return h->max_ms;
}

static double mono_s(void)
{
	return (double)tool_mono_ms() / 1000.0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fsync_hog [--block KIB] [--file-mb MIB] [--duration S] [--report S] DIR\n"
	             "  appends KIB (default 256) to a file in DIR and fdatasync()s after every\n"
	             "  write until SIGTERM or S seconds; truncates the file at MIB (default 64).\n"
	             "  Prints \"interval\" lines every --report S (default 10) and totals at exit.\n");
}

int main(int argc, char **argv)
{
	long block_kib = 256, file_mb = 64, duration = 0, report = 10;
	const char *dir = NULL;
	char path[4096];
	char *buf = NULL;
	struct hist *total = NULL;
	uint64_t iv_n = 0, iv_bytes = 0, all_bytes = 0;
	double iv_max = 0, t_start, t_iv, t_end;
	off_t off = 0;
	int fd = -1, rc = 1, w;

	for (int i = 1; i < argc; i++) {
		long *target = NULL, min = 1, max = 1024;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--block") == 0) {
			target = &block_kib;
			max = 16384;
		} else if (strcmp(argv[i], "--file-mb") == 0) {
			target = &file_mb;
			max = 65536;
		} else if (strcmp(argv[i], "--duration") == 0) {
			target = &duration;
			min = 0;
			max = 86400;
		} else if (strcmp(argv[i], "--report") == 0) {
			target = &report;
			max = 3600;
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
			continue;
		} else {
			usage(stderr);
			return 2;
		}
		if (i + 1 >= argc || !tool_parse_int(argv[i + 1], min, max, target)) {
			fprintf(stderr, "fsync_hog: %s needs a whole number in [%ld, %ld]\n", argv[i], min, max);
			return 2;
		}
		i++;
	}
	if (dir == NULL) {
		usage(stderr);
		return 2;
	}
	if (file_mb * 1024 < block_kib) {
		fprintf(stderr, "fsync_hog: --file-mb %ld is smaller than one --block of %ld KiB\n", file_mb,
		        block_kib);
		return 2;
	}
	w = snprintf(path, sizeof(path), "%s/fsync_hog.%ld.dat", dir, (long)getpid());
	if (w < 0 || (size_t)w >= sizeof(path)) {
		fprintf(stderr, "fsync_hog: directory name too long: %s\n", dir);
		return 2;
	}

	tool_install_signals();
	buf = malloc((size_t)block_kib * 1024);
	total = calloc(1, sizeof(*total));
	if (buf == NULL || total == NULL) {
		fprintf(stderr, "fsync_hog: out of memory\n");
		goto cleanup;
	}
	/* Not zeros, so no layer below can treat the blocks as holes. */
	for (size_t i = 0; i < (size_t)block_kib * 1024; i++)
		buf[i] = (char)(i * 131u + 7u);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fsync_hog: cannot create %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	if (unlink(path) != 0) {
		fprintf(stderr, "fsync_hog: cannot unlink %s: %s\n", path, strerror(errno));
		goto cleanup;
	}

	t_start = t_iv = mono_s();
	t_end = duration > 0 ? t_start + (double)duration : 0;
	while (!tool_stop_requested && (t_end == 0 || mono_s() < t_end)) {
		size_t len = (size_t)block_kib * 1024, done = 0;
		double t0, ms, now;

		if (off + (off_t)len > (off_t)file_mb * 1024 * 1024) {
			if (ftruncate(fd, 0) != 0) {
				fprintf(stderr, "fsync_hog: cannot truncate %s: %s\n", path, strerror(errno));
				goto cleanup;
			}
			off = 0;
		}
		while (done < len) {
			ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "fsync_hog: write to %s failed: %s\n", path,
				        n < 0 ? strerror(errno) : "wrote nothing");
				goto cleanup;
			}
			done += (size_t)n;
		}
		off += (off_t)len;
		t0 = mono_s();
		if (fdatasync(fd) != 0) {
			fprintf(stderr, "fsync_hog: fdatasync of %s failed: %s\n", path, strerror(errno));
			goto cleanup;
		}
		now = mono_s();
		ms = (now - t0) * 1000.0;
		hist_add(total, ms);
		all_bytes += len;
		iv_n++;
		iv_bytes += len;
		if (ms > iv_max)
			iv_max = ms;
		if (now - t_iv >= (double)report) {
			printf("interval %lld fsyncs %llu mib_s %.1f max_ms %.1f\n", (long long)tool_unix_ms(),
			       (unsigned long long)iv_n, (double)iv_bytes / 1048576.0 / (now - t_iv), iv_max);
			fflush(stdout);
			t_iv = now;
			iv_n = iv_bytes = 0;
			iv_max = 0;
		}
	}
	printf("fsyncs %llu\nmib %.1f\nseconds %.1f\nfsync_avg_ms %.2f\nfsync_p99_ms %.1f\nfsync_max_ms %.1f\n",
	       (unsigned long long)total->n, (double)all_bytes / 1048576.0, mono_s() - t_start,
	       total->n ? total->sum_ms / (double)total->n : 0.0, hist_quantile(total, 0.99), total->max_ms);
	fflush(stdout);
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(total);
	return rc;
}
