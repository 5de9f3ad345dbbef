/*
 * etcd_fake.c - the fake HTTP server of etcd_fake.h.
 *
 * One thread: poll on the listening socket and a stop pipe, accept, read a
 * request (headers up to the blank line, then Content-Length bytes), play
 * the next queued step, close. Writes use MSG_NOSIGNAL so a client that
 * hangs up mid-answer (as it should on a huge body) cannot kill the test.
 */
#include "tests/etcd_fake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 32
#define MAX_REQUESTS 64

struct fake_server {
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	pthread_mutex_t lock;
	char url[64];
	struct fake_step steps[MAX_STEPS];
	size_t n_steps, next_step;
	char *requests[MAX_REQUESTS];
	size_t n_requests;
};

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void step_free(struct fake_step *st)
{
	size_t i;

	free((char *)st->body);
	for (i = 0; i < FAKE_MAX_PIECES && st->pieces[i] != NULL; i++)
		free((char *)st->pieces[i]);
	memset(st, 0, sizeof(*st));
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Waits up to ms for fd to be readable or the stop pipe; false on stop. */
static int wait_readable(struct fake_server *fs, int fd, int ms)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { fs->stop_pipe[0], POLLIN, 0 } };
	int r = poll(p, 2, ms);

	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (p[1].revents != 0)
		return -1;
	return p[0].revents != 0 ? 1 : 0;
}

/* Reads one request; returns a malloc'd "PATH\nHEADERS\n\nBODY" or NULL. */
static char *read_request(struct fake_server *fs, int fd)
{
	size_t cap = 65536, len = 0, need = 0;
	char *buf = malloc(cap + 1), *hdr_end = NULL, *out = NULL;
	char method[16], path[512];

	if (buf == NULL)
		return NULL;
	for (;;) {
		ssize_t r;

		if (hdr_end != NULL && len >= need)
			break;
		if (len == cap || wait_readable(fs, fd, 5000) <= 0)
			goto fail;
		r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			goto fail;
		len += (size_t)r;
		buf[len] = '\0';
		if (hdr_end == NULL && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			size_t body_len = cl && cl < hdr_end ? strtoul(cl + 17, NULL, 10) : 0;

			need = (size_t)(hdr_end - buf) + 4 + body_len;
		}
	}
	if (sscanf(buf, "%15s %511s", method, path) != 2)
		goto fail;
	out = malloc(len + strlen(path) + 4);
	if (out != NULL) {
		*hdr_end = '\0';
		snprintf(out, len + strlen(path) + 4, "%s\n%s\n\n%s", path, strchr(buf, '\n') + 1, hdr_end + 4);
	}
fail:
	free(buf);
	return out;
}

static void play(struct fake_server *fs, int fd, const struct fake_step *st)
{
	char head[256];
	size_t i;

	switch (st->kind) {
	case FAKE_HTTP: {
		const char *body = st->body ? st->body : "";

		snprintf(head, sizeof(head),
		         "HTTP/1.1 %d Canned\r\nContent-Type: application/json\r\n"
		         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		         st->status, strlen(body));
		if (send_all(fd, head, strlen(head)))
			send_all(fd, body, strlen(body));
		break;
	}
	case FAKE_RAW:
		for (i = 0; i < FAKE_MAX_PIECES && st->pieces[i] != NULL; i++) {
			if (i > 0 && st->pause_ms > 0)
				sleep_ms(st->pause_ms);
			if (!send_all(fd, st->pieces[i], strlen(st->pieces[i])))
				break;
		}
		break;
	case FAKE_HUGE: {
		char block[65536];
		size_t sent = 0;

		memset(block, 'x', sizeof(block));
		snprintf(head, sizeof(head),
		         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		         "Connection: close\r\n\r\n");
		if (!send_all(fd, head, strlen(head)))
			break;
		while (sent < st->huge_len) {
			size_t n = st->huge_len - sent < sizeof(block) ? st->huge_len - sent : sizeof(block);
			if (!send_all(fd, block, n))
				break;
			sent += n;
		}
		break;
	}
	case FAKE_HANG:
		/* Until the client closes or the server stops. */
		for (;;) {
			char junk[256];
			int r = wait_readable(fs, fd, 1000);

			if (r < 0 || (r > 0 && recv(fd, junk, sizeof(junk), 0) <= 0))
				break;
		}
		break;
	}
}

static void *serve(void *arg)
{
	struct fake_server *fs = arg;

	for (;;) {
		struct fake_step st,
		        none = { .kind = FAKE_HTTP, .status = 500, .body = "{\"error\":\"no canned answer\"}" };
		bool have = false;
		char *req;
		int fd, r = wait_readable(fs, fs->listen_fd, 1000);

		if (r < 0)
			break;
		if (r == 0)
			continue;
		fd = accept(fs->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		req = read_request(fs, fd);
		pthread_mutex_lock(&fs->lock);
		if (req != NULL && fs->n_requests < MAX_REQUESTS)
			fs->requests[fs->n_requests++] = req;
		else
			free(req);
		if (fs->next_step < fs->n_steps) {
			st = fs->steps[fs->next_step++];
			have = true;
		}
		pthread_mutex_unlock(&fs->lock);
		play(fs, fd, have ? &st : &none);
		close(fd);
	}
	return NULL;
}

struct fake_server *fake_start(void)
{
	struct fake_server *fs = calloc(1, sizeof(*fs));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	if (fs == NULL)
		return NULL;
	fs->listen_fd = -1;
	fs->stop_pipe[0] = fs->stop_pipe[1] = -1;
	pthread_mutex_init(&fs->lock, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fs->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fs->listen_fd < 0 || bind(fs->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fs->listen_fd, 16) != 0 || getsockname(fs->listen_fd, (struct sockaddr *)&sa, &sl) != 0 ||
	    pipe(fs->stop_pipe) != 0)
		goto fail;
	snprintf(fs->url, sizeof(fs->url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	if (pthread_create(&fs->thread, NULL, serve, fs) != 0)
		goto fail;
	return fs;
fail:
	if (fs->listen_fd >= 0)
		close(fs->listen_fd);
	if (fs->stop_pipe[0] >= 0) {
		close(fs->stop_pipe[0]);
		close(fs->stop_pipe[1]);
	}
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return NULL;
}

void fake_stop(struct fake_server *fs)
{
	size_t i;

	if (fs == NULL)
		return;
	if (write(fs->stop_pipe[1], "x", 1) != 1)
		return; /* cannot stop the thread: leak rather than crash */
	pthread_join(fs->thread, NULL);
	close(fs->listen_fd);
	close(fs->stop_pipe[0]);
	close(fs->stop_pipe[1]);
	for (i = 0; i < fs->n_steps; i++)
		step_free(&fs->steps[i]);
	for (i = 0; i < fs->n_requests; i++)
		free(fs->requests[i]);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

const char *fake_url(const struct fake_server *fs)
{
	return fs->url;
}

void fake_push(struct fake_server *fs, const struct fake_step *step)
{
	struct fake_step copy = *step;
	size_t i;

	copy.body = xstrdup(step->body);
	for (i = 0; i < FAKE_MAX_PIECES && step->pieces[i] != NULL; i++)
		copy.pieces[i] = xstrdup(step->pieces[i]);
	pthread_mutex_lock(&fs->lock);
	if (fs->n_steps < MAX_STEPS)
		fs->steps[fs->n_steps++] = copy;
	else
		step_free(&copy);
	pthread_mutex_unlock(&fs->lock);
}

void fake_push_http(struct fake_server *fs, int status, const char *body)
{
	struct fake_step st = { .kind = FAKE_HTTP, .status = status, .body = body };

	fake_push(fs, &st);
}

size_t fake_n_requests(struct fake_server *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->lock);
	n = fs->n_requests;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

char *fake_request(struct fake_server *fs, size_t i)
{
	char *r = NULL;

	pthread_mutex_lock(&fs->lock);
	if (i < fs->n_requests)
		r = xstrdup(fs->requests[i]);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

char *fake_chunk(const char *s)
{
	size_t n = strlen(s) + 32;
	char *c = malloc(n);

	if (c != NULL)
		snprintf(c, n, "%zx\r\n%s\r\n", strlen(s), s);
	return c;
}
