/*
 * keeper.c - the lease keeper thread (see keeper.h).
 *
 * One mutex guards the shared fields; the etcd call itself runs without it,
 * so the loop never waits on the network to read the lease state. The
 * thread sleeps on a condition variable bound to CLOCK_MONOTONIC, so wall
 * clock steps cannot stretch or shrink the renewal interval.
 *
 * Three fencing lines enforce the same deadline (deadline_of()):
 *   1. this thread (fence_if_due), which a frozen agent freezes too;
 *   2. the fence process (fence.h), forked before the thread starts and told
 *      the postmaster and the deadline whenever either changes (fence_sync);
 *      it is checked every round and restarted if it died;
 *   3. the watchdog device (watchdog.h), armed while a postmaster may write
 *      and fed only while a reset would still come before the lease can
 *      expire (watchdog_tend), for when the fence process is frozen too.
 * The loop says what may write through keeper_set_fence() alone; the
 * postmaster's pidfd is opened there, by the thread that reaps the
 * postmaster, so it always names the right process.
 */
#include "agent/keeper.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/fence.h"
#include "agent/ha.h"
#include "agent/log.h"
#include "agent/watchdog.h"

/* The loop passed within this many seconds of a fence firing: it was alive
 * (one pass may wait out an etcd request of up to retry_timeout). */
#define FENCE_LOOP_ALIVE 3.0

struct keeper {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct etcd_client *etcd;
	int wake_fd;

	/* guarded by mu */
	bool stop;
	char endpoint[256]; /* the member that answered the last good keepalive ("" none yet) */
	int64_t lease_id;
	double last_ok_sent;
	double interval, ttl;
	pid_t fence_pid;
	int64_t fence_lease; /* the leader lease, revoked by the fence if the agent dies (0 = none) */
	double failsafe_at;
	double worst_latency;
	double worst_gap; /* longest time between two successful keepalives' send times, same lease */
	uint64_t n_ok, n_failed;
	double failing_since;        /* first failure of the current streak, 0 = none */
	double loop_seen_at;         /* the loop's last keeper_set_fence (once per pass) */
	double stall_from, stall_to; /* the last gap between passes over FENCE_LOOP_ALIVE */
	double last_fail_log;

	int fence_pidfd;       /* pidfd of fence_pid (-1: none, or no pidfds here) */
	bool fence_fired;      /* this thread sent fence_pid SIGQUIT already */
	struct fence *fence;   /* the fence process; NULL while it is being restarted */
	double fence_retry_at; /* when to try starting it again */
	bool fence_send_failed;

	struct watchdog *wd; /* NULL: watchdog.mode = "off" */
	enum watchdog_mode wd_mode;
	double wd_margin;
	bool wd_ok;            /* the device can be armed (last probe or arm worked) */
	bool wd_unusable_said; /* "cannot use it" logged (automatic: once; required: on change, then each minute) */
	double wd_said_at;
	double wd_last_probe;
	double wd_arm_retry_at; /* after a failed arm, not before this */
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

	clk_mono_after(seconds, &ts);
	pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

/* Called with mu held: when the renewal that the deadline counts from was
 * sent (the lease's last good keepalive, or a failsafe round that every
 * member confirmed, whichever is later); 0 = none. */
static double renewal_base(const struct keeper *k)
{
	double b = k->lease_id != 0 && k->last_ok_sent > 0 ? k->last_ok_sent : 0;

	return k->failsafe_at > b ? k->failsafe_at : b;
}

/* Called with mu held: the leader's deadline (DESIGN.md rule 2), by the
 * core's one formula (ha_deadline; failsafe_at is cleared once etcd answers
 * a keepalive again); 0 = none, i.e. a registered postmaster is fenced at
 * once. */
static double deadline_of(const struct keeper *k)
{
	return ha_deadline(k->lease_id, k->last_ok_sent, k->ttl, k->failsafe_at);
}

/* Called with mu held: stop a writable postmaster whose deadline passed. The
 * registration stays (the fence process keeps it too, to escalate to SIGKILL
 * if needed) until the loop reaps the postmaster and calls
 * keeper_set_fence(0). */
static void fence_if_due(struct keeper *k, double now)
{
	if (k->fence_pid <= 0 || k->fence_fired || now < deadline_of(k))
		return;
	log_error("lease deadline passed (last renewal sent %.1fs ago) while Postgres may accept writes and the "
	          "loop has not stopped it: sending SIGQUIT to postmaster %d",
	          k->last_ok_sent > 0 ? now - k->last_ok_sent : -1.0, (int)k->fence_pid);
	if (k->fence_pidfd >= 0)
		(void)fence_pidfd_signal(k->fence_pidfd, SIGQUIT);
	else
		(void)kill(k->fence_pid, SIGQUIT);
	k->fence_fired = true;
	wake(k->wake_fd);
}

/* Called with mu held: tell the fence process the current postmaster,
 * deadline and leader lease (only a change is sent). The lease goes only
 * while it is still the one this thread renews: a lost lease is not ours
 * to revoke. */
static void fence_sync(struct keeper *k)
{
	char err[256];
	int64_t lease = k->fence_pid > 0 && k->fence_lease != 0 && k->fence_lease == k->lease_id ? k->fence_lease : 0;

	if (!k->fence)
		return;
	if (fence_update(k->fence, k->fence_pid, k->fence_pidfd, k->fence_pid > 0 ? deadline_of(k) : 0, lease, err,
	                 sizeof(err))) {
		k->fence_send_failed = false;
	} else if (!k->fence_send_failed) {
		/* Said once per streak; fence_tend notices a dead fence. */
		log_error("%s; this thread still fences at the deadline, and the state is sent again next round", err);
		k->fence_send_failed = true;
	}
}

/* Why the fence fired, for the operator: an agent whose loop passed a
 * moment before was alive (the lease went unrenewed and the deadline fell
 * between two of its passes); one whose loop had not passed for longer was
 * frozen or starved. A frozen agent reads the report only once thawed,
 * after its loop passed again: the last stall tells. Called with mu held. */
static void fired_why(const struct keeper *k, double fired_at, char *out, size_t len)
{
	double age = -1;

	if (k->stall_from > 0 && k->stall_from <= fired_at && fired_at <= k->stall_to)
		age = fired_at - k->stall_from;
	else if (k->loop_seen_at > 0 && k->loop_seen_at <= fired_at)
		age = fired_at - k->loop_seen_at;
	else if (k->loop_seen_at > 0)
		age = 0; /* it passed since, each pass within FENCE_LOOP_ALIVE of the last */
	if (age >= 0 && age < FENCE_LOOP_ALIVE)
		snprintf(out, len,
		         "the agent was running (its loop passing every few seconds at most) but the lease went "
		         "unrenewed%s and the deadline came before its loop stopped Postgres",
		         k->failing_since > 0 ? " (keepalives failing)" : "");
	else if (age >= 0)
		snprintf(out, len,
		         "the agent did not stop it in time: its loop had not passed for %.1fs (frozen or "
		         "starved?)",
		         age);
	else
		snprintf(out, len, "the agent did not stop it in time (was it frozen or starved?)");
}

/* Called with mu held: read what the fence process did, and start a new
 * one if it died. */
static void fence_tend(struct keeper *k, double now)
{
	struct fence_report r;
	char why[160], err[256], fired[256];

	if (k->fence) {
		while (fence_next_report(k->fence, &r)) {
			/* Already signalled: this thread need not send its own SIGQUIT. */
			if (r.pid == k->fence_pid)
				k->fence_fired = true;
			switch (r.kind) {
			case FENCE_FIRED:
				fired_why(k, r.at, fired, sizeof(fired));
				log_error("the fence process sent SIGQUIT to postmaster %d %.2fs after the lease deadline: "
				          "%s",
				          (int)r.pid, r.late, fired);
				wake(k->wake_fd);
				break;
			case FENCE_KILLED:
				log_error("the fence process sent SIGKILL to postmaster %d and its process group: it was "
				          "still alive %.1fs after SIGQUIT",
				          (int)r.pid, FENCE_KILL_AFTER);
				wake(k->wake_fd);
				break;
			case FENCE_EXITED:
				log_info("the fence process saw postmaster %d exit", (int)r.pid);
				break;
			case FENCE_GONE:
				log_info("the fence process found postmaster %d already gone at the deadline",
				         (int)r.pid);
				break;
			}
		}
		pid_t fp = fence_pid(k->fence);

		if (fence_check(k->fence, why, sizeof(why)))
			return;
		log_error("the fence process %d %s: starting a new one", (int)fp, why);
		fence_stop(k->fence);
		k->fence = NULL;
	}
	if (now < k->fence_retry_at)
		return;
	k->fence = fence_start(err, sizeof(err));
	if (!k->fence) {
		log_error("%s; trying again in 1 s (this thread still fences at the deadline)", err);
		k->fence_retry_at = now + 1.0;
		return;
	}
	log_info("fence process %d started", (int)fence_pid(k->fence));
	fence_sync(k);
}

/* Called with mu held, mode automatic or required: the device cannot be
 * used. Logged once in automatic mode; in required mode when it becomes
 * unusable and then once a minute while it stays so. */
static void watchdog_unusable(struct keeper *k, const char *why, double now)
{
	bool news = k->wd_ok || !k->wd_unusable_said;

	k->wd_ok = false;
	if (k->wd_mode == WATCHDOG_REQUIRED) {
		if (!news && now - k->wd_said_at < 60)
			return;
		log_error("watchdog: %s; watchdog.mode is \"required\": this node will not become or stay primary "
		          "until the watchdog can be armed",
		          why);
	} else if (!k->wd_unusable_said) {
		log_warn("watchdog: %s; going on without it (watchdog.mode = \"automatic\"; said once)", why);
	}
	k->wd_unusable_said = true;
	k->wd_said_at = now;
}

/* Called with mu held: the last moment a feed (or arming, which starts the
 * timer) keeps the reset before the lease can expire; 0 = no time to feed. */
static double watchdog_until(const struct keeper *k, int timeout)
{
	double b = renewal_base(k);

	return b > 0 ? watchdog_feed_until(b, k->ttl, k->wd_margin, timeout) : 0;
}

/* Called with mu held: arm and feed the watchdog while a postmaster may
 * write and there is time to, disarm it when nothing may write; in
 * required mode, probe a device that failed again every 10 s. */
static void watchdog_tend(struct keeper *k, double now)
{
	char err[512];
	int t;

	if (!k->wd)
		return;
	if (k->fence_pid <= 0) {
		if (watchdog_armed(k->wd)) {
			if (watchdog_disarm(k->wd, err, sizeof(err)))
				log_info("watchdog %s disarmed: nothing may write", watchdog_device(k->wd));
			else
				log_error("watchdog: %s", err);
		}
		if (k->wd_mode == WATCHDOG_REQUIRED && !k->wd_ok && now - k->wd_last_probe >= 10) {
			k->wd_last_probe = now;
			if (!watchdog_timeout_for(k->ttl, k->interval, k->wd_margin, &t, err, sizeof(err)) ||
			    !watchdog_probe(k->wd, t, err, sizeof(err))) {
				watchdog_unusable(k, err, now);
			} else {
				log_info("watchdog %s can be armed again (%d s timeout)", watchdog_device(k->wd), t);
				k->wd_ok = true;
			}
		}
		return;
	}
	if (!watchdog_timeout_for(k->ttl, k->interval, k->wd_margin, &t, err, sizeof(err))) {
		if (watchdog_armed(k->wd) && !watchdog_disarm(k->wd, err + strlen(err), sizeof(err) - strlen(err)))
			log_error("watchdog: %s", err);
		watchdog_unusable(k, err, now);
		return;
	}
	/* Past this moment a reset could come after the lease's expiry: stop
	 * feeding; the deadline (before the reset) stops Postgres and disarms. */
	if (now > watchdog_until(k, t))
		return;
	if (watchdog_armed(k->wd) && watchdog_timeout(k->wd) <= t) {
		if (!watchdog_feed(k->wd, err, sizeof(err)))
			log_error("watchdog: %s; it resets the machine unless a later feed works", err);
		return;
	}
	if (now < k->wd_arm_retry_at)
		return;
	if (!watchdog_arm(k->wd, t, err, sizeof(err))) {
		watchdog_unusable(k, err, now);
		k->wd_arm_retry_at = now + 5;
		return;
	}
	k->wd_ok = true;
	log_info("watchdog %s armed with a %d s timeout while Postgres may write (it resets this machine if the "
	         "agent stops renewing the lease)",
	         watchdog_device(k->wd), watchdog_timeout(k->wd));
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

		t0 = clk_mono();
		fence_tend(k, t0);
		fence_if_due(k, t0);
		fence_sync(k);
		watchdog_tend(k, t0);
		if (id == 0) {
			wait_for(k, 0.1);
			continue;
		}
		/* While Postgres may write, a keepalive may not outlast the
		 * deadline: the fencing check after it must come in time; nor the
		 * watchdog's feeding window, so that a feed after it still counts.
		 * Within that it may take up to two intervals, split over the
		 * endpoints it may have to try: an etcd that stalls on its disk
		 * (1.0 s measured on a shared machine) answers the keepalive it
		 * holds once it catches up, and that one renews from its send
		 * time; aborting it at one interval and sending another only
		 * queues the new one behind the same stall (at ttl 2 that cost a
		 * demotion). */
		if (k->fence_pid > 0 && k->last_ok_sent > 0) {
			double left = deadline_of(k) - t0;
			size_t n_ep = etcd_client_n_endpoints(k->etcd);
			double t = 2 * k->interval / (double)(n_ep > 0 ? n_ep : 1);

			if (t < k->interval)
				t = k->interval;
			if (left - 0.05 < t)
				t = left - 0.05;

			if (k->wd && watchdog_armed(k->wd)) {
				double feed_left = watchdog_until(k, watchdog_timeout(k->wd)) - t0 - 0.02;
				if (feed_left >= 0.1 && feed_left < t)
					t = feed_left;
			}
			etcd_client_set_timeout(k->etcd, t < 0.1 ? 0.1 : t);
		} else {
			etcd_client_set_timeout(k->etcd, k->interval);
		}
		pthread_mutex_unlock(&k->mu);
		t0 = clk_mono();
		st = etcd_lease_keepalive(k->etcd, id, NULL, &err);
		t1 = clk_mono();
		pthread_mutex_lock(&k->mu);
		if (k->stop)
			break;
		if (id == k->lease_id) {
			/* etcd answers again: a failsafe round no longer stands in
			 * for a renewal (ha_deadline). */
			if (st == ETCD_OK || st == ETCD_E_LEASE_NOT_FOUND)
				k->failsafe_at = 0;
			if (st == ETCD_OK) {
				k->n_ok++;
				snprintf(k->endpoint, sizeof(k->endpoint), "%s", etcd_client_endpoint(k->etcd));
				/* the deadline budget used: sent-to-sent on one lease */
				if (k->last_ok_sent > 0 && t0 - k->last_ok_sent > k->worst_gap)
					k->worst_gap = t0 - k->last_ok_sent;
				k->last_ok_sent = t0;
				if (t1 - t0 > k->worst_latency)
					k->worst_latency = t1 - t0;
				if (k->failing_since > 0)
					log_info("lease keepalive works again after %.1fs of failures",
					         t1 - k->failing_since);
				else if (t1 - t0 > k->interval / 2)
					log_warn("slow lease keepalive: %.0f ms", (t1 - t0) * 1000);
				k->failing_since = 0;
				/* the next one an interval after this one was sent, so
				 * that a slow answer does not stretch the cadence */
				next = k->interval - (t1 - t0);
				if (next < 0.05)
					next = 0.05;
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
					double left = deadline_of(k) - t1;
					log_warn("lease keepalive failed for %.1fs (%s); leader deadline in %.1fs",
					         t1 - k->failing_since, err.message, left);
					k->last_fail_log = t1;
				}
				next = k->interval / 4 < 0.25 ? k->interval / 4 : 0.25;
			}
		}
		t1 = clk_mono();
		fence_if_due(k, t1);
		fence_sync(k);
		watchdog_tend(k, t1);
		/* Wake for the last feed of this renewal's window too. */
		if (k->wd && watchdog_armed(k->wd) && k->fence_pid > 0) {
			double w = watchdog_until(k, watchdog_timeout(k->wd)) - t1 - 0.02;
			if (w > 0 && w < next)
				next = w;
		}
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
	k->fence_pidfd = -1;
	/* Forked before this module's thread exists: the child makes system
	 * calls only anyway (fence.c). */
	k->fence = fence_start(err, errlen);
	if (!k->fence) {
		etcd_client_free(k->etcd);
		free(k);
		return NULL;
	}
	log_info("fence process %d started: it stops a writable Postgres at the lease deadline even if this agent "
	         "is frozen",
	         (int)fence_pid(k->fence));
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		snprintf(err, errlen, "lease keeper: cannot start thread: %s", strerror(errno));
		fence_stop(k->fence);
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
	fence_sync(k);
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
	fence_sync(k);
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_failsafe(struct keeper *k, double confirmed_at)
{
	pthread_mutex_lock(&k->mu);
	k->failsafe_at = confirmed_at;
	fence_sync(k);
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_fence(struct keeper *k, pid_t postmaster)
{
	double now = clk_mono();

	pthread_mutex_lock(&k->mu);
	if (k->loop_seen_at > 0 && now - k->loop_seen_at > FENCE_LOOP_ALIVE) {
		k->stall_from = k->loop_seen_at;
		k->stall_to = now;
	}
	k->loop_seen_at = now;
	if (postmaster != k->fence_pid) {
		if (k->fence_pidfd >= 0)
			close(k->fence_pidfd);
		k->fence_pidfd = -1;
		k->fence_fired = false;
		/* The caller reaps the postmaster, so it is ours (maybe a zombie)
		 * right now: the pidfd names exactly it, whatever comes later. */
		if (postmaster > 0) {
			k->fence_pidfd = fence_pidfd_open(postmaster);
			if (k->fence_pidfd < 0 && errno != ENOSYS)
				log_warn("pidfd_open(%d): %s; fencing falls back to kill() by PID", (int)postmaster,
				         strerror(errno));
		}
		k->fence_pid = postmaster;
		fence_sync(k);
		watchdog_tend(k, clk_mono());
		/* Fence at once if the deadline has already passed. */
		pthread_cond_signal(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
}

void keeper_set_fence_lease(struct keeper *k, int64_t leader_lease)
{
	pthread_mutex_lock(&k->mu);
	if (leader_lease != k->fence_lease) {
		k->fence_lease = leader_lease;
		fence_sync(k);
	}
	pthread_mutex_unlock(&k->mu);
}

bool keeper_set_watchdog(struct keeper *k, const char *mode, const char *device, double safety_margin, char *err,
                         size_t errlen)
{
	enum watchdog_mode m;
	int t = 0;
	bool ok = true;

	if (!watchdog_mode_parse(mode, &m)) {
		snprintf(err, errlen, "watchdog.mode: expected \"off\", \"automatic\" or \"required\", got \"%s\"",
		         mode);
		return false;
	}
	pthread_mutex_lock(&k->mu);
	k->wd_mode = m;
	k->wd_margin = safety_margin;
	if (m == WATCHDOG_OFF || k->wd)
		goto out;
	if (!watchdog_timeout_for(k->ttl, k->interval, safety_margin, &t, err, errlen)) {
		if (m == WATCHDOG_REQUIRED) {
			ok = false;
			goto out;
		}
		log_warn("%s; going on without the watchdog (watchdog.mode = \"automatic\")", err);
		k->wd_unusable_said = true;
		/* Keep the device: a later ttl (from etcd) may leave room. */
	}
	k->wd = watchdog_new(device, NULL);
	if (!k->wd) {
		snprintf(err, errlen, "watchdog: out of memory");
		ok = false;
		goto out;
	}
	if (safety_margin >= ha_lease_margin(k->ttl))
		log_warn("watchdog.safety_margin = %g s is not below the leader's own margin of %g s (ttl %g s): a "
		         "primary that cannot reach etcd will be reset by the watchdog before it demotes itself",
		         safety_margin, ha_lease_margin(k->ttl), k->ttl);
	if (!k->wd_unusable_said) {
		char why[512];

		k->wd_last_probe = clk_mono();
		if (watchdog_probe(k->wd, t, why, sizeof(why))) {
			k->wd_ok = true;
			log_info("watchdog %s can be armed (%d s timeout with ttl %g s, safety_margin %g s); it is armed "
			         "only while Postgres may write",
			         device, t, k->ttl, safety_margin);
		} else {
			watchdog_unusable(k, why, k->wd_last_probe);
		}
	}
out:
	pthread_mutex_unlock(&k->mu);
	return ok;
}

void keeper_watchdog_state(struct keeper *k, bool *required, bool *ok)
{
	pthread_mutex_lock(&k->mu);
	*required = k->wd_mode == WATCHDOG_REQUIRED;
	*ok = k->wd && k->wd_ok;
	pthread_mutex_unlock(&k->mu);
}

bool keeper_fence_running(struct keeper *k)
{
	bool r;

	pthread_mutex_lock(&k->mu);
	r = k->fence != NULL;
	pthread_mutex_unlock(&k->mu);
	return r;
}

void keeper_counts(struct keeper *k, uint64_t *ok, uint64_t *failed)
{
	pthread_mutex_lock(&k->mu);
	*ok = k->n_ok;
	*failed = k->n_failed;
	pthread_mutex_unlock(&k->mu);
}

bool keeper_endpoint(struct keeper *k, char *buf, size_t len)
{
	bool known;

	pthread_mutex_lock(&k->mu);
	known = k->endpoint[0] != '\0';
	snprintf(buf, len, "%s", k->endpoint);
	pthread_mutex_unlock(&k->mu);
	return known;
}

void keeper_etcd_stats(struct keeper *k, struct etcd_stats *out)
{
	etcd_client_get_stats(k->etcd, out);
}

double keeper_worst_gap(struct keeper *k)
{
	double w;

	pthread_mutex_lock(&k->mu);
	w = k->worst_gap;
	pthread_mutex_unlock(&k->mu);
	return w;
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
	if (k->wd) {
		char err[512];

		if (!watchdog_disarm(k->wd, err, sizeof(err)))
			log_error("watchdog at exit: %s", err);
		watchdog_free(k->wd);
	}
	/* Goodbye first: the fence exits without signalling, the loop stops
	 * Postgres itself. */
	fence_stop(k->fence);
	if (k->fence_pidfd >= 0)
		close(k->fence_pidfd);
	etcd_client_free(k->etcd);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}
