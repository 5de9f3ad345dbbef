/*
 * keeper.c - the lease keeper thread (see keeper.h).
 *
 * One mutex guards the shared fields; the etcd call itself runs without it,
 * so the loop never waits on the network to read the lease state. The
 * thread sleeps on a condition variable bound to CLOCK_MONOTONIC, so wall
 * clock steps cannot stretch or shrink the renewal interval.
 */
#include "agent/keeper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/ha.h"
#include "agent/log.h"
#include "pg/pg_ctl.h"

struct keeper {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct etcd_client *etcd;
	int wake_fd;

	/* guarded by mu */
	bool stop;
	int64_t lease_id;
	double last_ok_sent;
	double interval, ttl;
	pid_t fence_pid;
	double failsafe_at;
	double worst_latency;
	uint64_t n_ok, n_failed;
	double failing_since;  /* first failure of the current streak, 0 = none */
	double last_fail_log;
};

static void wake(int fd)
{
	char b = 'k';
	ssize_t n = write(fd, &b, 1);
	(void)n; /* a full pipe already means "wake up" */
}

static void wait_for(struct keeper *k, double seconds)
{
	struct timespec ts;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

/* Called with mu held: stop a writable postmaster whose deadline passed. */
static void fence_if_due(struct keeper *k, double now)
{
	double deadline;

	if (k->fence_pid <= 0)
		return;
	deadline = k->last_ok_sent > 0 ? k->last_ok_sent + k->ttl - ha_lease_margin(k->ttl) : 0;
	if (k->lease_id != 0 && now < deadline)
		return;
	if (k->failsafe_at > 0 && now < k->failsafe_at + k->ttl - ha_lease_margin(k->ttl))
		return;
	log_error("lease deadline passed (last renewal sent %.1fs ago) while Postgres may accept writes and the "
		  "loop has not stopped it: sending SIGQUIT to postmaster %d",
		  k->last_ok_sent > 0 ? now - k->last_ok_sent : -1.0, (int)k->fence_pid);
	kill(k->fence_pid, SIGQUIT);
	k->fence_pid = 0;
	wake(k->wake_fd);
}

static void *keeper_main(void *arg)
{
	struct keeper *k = arg;

	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		int64_t id = k->lease_id;
		double t0, t1, next = k->interval;
		struct etcd_error err;
		enum etcd_status st;

		fence_if_due(k, pg_now());
		if (id == 0) {
			wait_for(k, 0.1);
			continue;
		}
		/* While Postgres may write, a keepalive may not outlast the
		 * deadline: the fencing check after it must come in time. */
		if (k->fence_pid > 0 && k->last_ok_sent > 0) {
			double left = k->last_ok_sent + k->ttl - ha_lease_margin(k->ttl) - pg_now();
			double t = left - 0.05 < k->interval ? left - 0.05 : k->interval;
			etcd_client_set_timeout(k->etcd, t < 0.1 ? 0.1 : t);
		} else {
			etcd_client_set_timeout(k->etcd, k->interval);
		}
		pthread_mutex_unlock(&k->mu);
		t0 = pg_now();
		st = etcd_lease_keepalive(k->etcd, id, NULL, &err);
		t1 = pg_now();
		pthread_mutex_lock(&k->mu);
		if (k->stop)
			break;
		if (id == k->lease_id) {
			if (st == ETCD_OK) {
				k->n_ok++;
				k->last_ok_sent = t0;
				if (t1 - t0 > k->worst_latency)
					k->worst_latency = t1 - t0;
				if (k->failing_since > 0)
					log_info("lease keepalive works again after %.1fs of failures", t1 - k->failing_since);
				else if (t1 - t0 > k->interval / 2)
					log_warn("slow lease keepalive: %.0f ms", (t1 - t0) * 1000);
				k->failing_since = 0;
			} else if (st == ETCD_E_LEASE_NOT_FOUND) {
				log_warn("our lease %llx is gone in etcd (expired or revoked); the loop will take a new one",
					 (unsigned long long)id);
				k->lease_id = 0;
				k->failing_since = 0;
				wake(k->wake_fd);
			} else if (st != ETCD_E_CANCELED) {
				k->n_failed++;
				if (k->failing_since == 0)
					k->failing_since = t0;
				if (t1 - k->last_fail_log >= 1.0) {
					double left = k->last_ok_sent + k->ttl - ha_lease_margin(k->ttl) - t1;
					log_warn("lease keepalive failed for %.1fs (%s); leader deadline in %.1fs",
						 t1 - k->failing_since, err.message, left);
					k->last_fail_log = t1;
				}
				next = k->interval / 4 < 0.25 ? k->interval / 4 : 0.25;
			}
		}
		fence_if_due(k, pg_now());
		if (!k->stop)
			wait_for(k, next);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

struct keeper *keeper_start(const struct etcd_config *ecfg, double interval, double ttl, int wake_fd, char *err,
			    size_t errlen)
{
	struct keeper *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	struct etcd_error e;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (etcd_client_new(ecfg, &k->etcd, &e) != ETCD_OK) {
		snprintf(err, errlen, "lease keeper: %s", e.message);
		free(k);
		return NULL;
	}
	/* A keepalive must finish well within one interval. */
	etcd_client_set_timeout(k->etcd, interval);
	k->interval = interval;
	k->ttl = ttl;
	k->wake_fd = wake_fd;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		snprintf(err, errlen, "lease keeper: cannot start thread: %s", strerror(errno));
		etcd_client_free(k->etcd);
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
		free(k);
		return NULL;
	}
	return k;
}

void keeper_set_lease(struct keeper *k, int64_t lease_id, double sent)
{
	pthread_mutex_lock(&k->mu);
	k->lease_id = lease_id;
	k->last_ok_sent = sent;
	k->failing_since = 0;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

void keeper_get(struct keeper *k, int64_t *lease_id, double *last_ok_sent)
{
	pthread_mutex_lock(&k->mu);
	*lease_id = k->lease_id;
	*last_ok_sent = k->last_ok_sent;
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_timing(struct keeper *k, double interval, double ttl)
{
	pthread_mutex_lock(&k->mu);
	k->interval = interval;
	k->ttl = ttl;
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_failsafe(struct keeper *k, double confirmed_at)
{
	pthread_mutex_lock(&k->mu);
	k->failsafe_at = confirmed_at;
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_fence(struct keeper *k, pid_t postmaster)
{
	pthread_mutex_lock(&k->mu);
	k->fence_pid = postmaster;
	pthread_mutex_unlock(&k->mu);
}

void keeper_counts(struct keeper *k, uint64_t *ok, uint64_t *failed)
{
	pthread_mutex_lock(&k->mu);
	*ok = k->n_ok;
	*failed = k->n_failed;
	pthread_mutex_unlock(&k->mu);
}

void keeper_etcd_stats(struct keeper *k, struct etcd_stats *out)
{
	etcd_client_get_stats(k->etcd, out);
}

double keeper_worst_latency(struct keeper *k)
{
	double w;

	pthread_mutex_lock(&k->mu);
	w = k->worst_latency;
	pthread_mutex_unlock(&k->mu);
	return w;
}

void keeper_stop(struct keeper *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	etcd_client_cancel(k->etcd);
	pthread_join(k->thread, NULL);
	etcd_client_free(k->etcd);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}
