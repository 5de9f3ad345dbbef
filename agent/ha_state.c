/*
 * ha_state.c - what a member is, in the words baton uses everywhere (see
 * ha.h): the names of actions, roles and states and the enums behind them,
 * a member's role and state from what the loop observed, and whether a
 * replica's replay is healthy (ha_replay_check). Pure like ha.c; kept apart
 * so that the rules file holds the rules only.
 */
#include "agent/ha.h"
#include "agent/ha_internal.h"

#include <stdio.h>
#include <string.h>

const char *ha_action_name(enum ha_action_kind k)
{
	switch (k) {
	case HA_WAIT:
		return "wait";
	case HA_FATAL:
		return "fatal";
	case HA_RACE_INIT:
		return "race_init";
	case HA_BOOTSTRAP:
		return "bootstrap";
	case HA_CLONE:
		return "clone";
	case HA_REINIT:
		return "reinit";
	case HA_START_REPLICA:
		return "start_replica";
	case HA_START_PRIMARY:
		return "start_primary";
	case HA_FOLLOW:
		return "follow";
	case HA_ACQUIRE:
		return "acquire";
	case HA_PROMOTE:
		return "promote";
	case HA_LEAD:
		return "lead";
	case HA_DEMOTE:
		return "demote";
	case HA_REWIND:
		return "rewind";
	case HA_RELEASE:
		return "release";
	case HA_SWITCHOVER:
		return "switchover";
	case HA_RESTART:
		return "restart";
	case HA_REFUSE:
		return "refuse";
	case HA_CLEAR_SWITCHOVER:
		return "clear_switchover";
	case HA_STANDBY_LEAD:
		return "standby_lead";
	case HA_DEMOTE_CLUSTER:
		return "demote_cluster";
	case HA_SHUTDOWN:
		return "shutdown";
	}
	return "unknown";
}

static const char *const role_names[] = {
	[HA_ROLE_UNKNOWN] = "unknown", [HA_ROLE_PRIMARY] = "primary",
	[HA_ROLE_REPLICA] = "replica", [HA_ROLE_UNINITIALIZED] = "uninitialized",
	[HA_ROLE_STOPPED] = "stopped",
};

static const char *const state_names[] = {
	[HA_STATE_UNKNOWN] = "unknown",           [HA_STATE_RUNNING] = "running",
	[HA_STATE_STARTING] = "starting",         [HA_STATE_STOPPED] = "stopped",
	[HA_STATE_START_FAILED] = "start failed", [HA_STATE_BOOTSTRAPPING] = "bootstrapping",
	[HA_STATE_CLONING] = "cloning",           [HA_STATE_REWINDING] = "rewinding",
	[HA_STATE_PROMOTING] = "promoting",       [HA_STATE_REPLAY_PAUSED] = "replay paused",
	[HA_STATE_STUCK_REPLAY] = "stuck replay", [HA_STATE_NOT_STREAMING] = "not streaming",
};

const char *ha_role_name(enum ha_role r)
{
	return (size_t)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "unknown";
}

enum ha_role ha_role_from_name(const char *name)
{
	for (size_t i = 1; name && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(name, role_names[i]) == 0)
			return (enum ha_role)i;
	return HA_ROLE_UNKNOWN;
}

const char *ha_state_name(enum ha_state s)
{
	return (size_t)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

enum ha_state ha_state_from_name(const char *name)
{
	for (size_t i = 1; name && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (enum ha_state)i;
	return HA_STATE_UNKNOWN;
}

static enum ha_state replay_member_state(enum ha_replay r)
{
	switch (r) {
	case HA_REPLAY_OK:
		return HA_STATE_RUNNING;
	case HA_REPLAY_PAUSED:
		return HA_STATE_REPLAY_PAUSED;
	case HA_REPLAY_STUCK:
		return HA_STATE_STUCK_REPLAY;
	case HA_REPLAY_NOT_STREAMING:
		return HA_STATE_NOT_STREAMING;
	}
	return HA_STATE_RUNNING;
}

const char *ha_replay_state(enum ha_replay r)
{
	return ha_state_name(replay_member_state(r));
}

bool ha_replay_state_unhealthy(const char *state)
{
	enum ha_state s = ha_state_from_name(state);

	return s == HA_STATE_REPLAY_PAUSED || s == HA_STATE_STUCK_REPLAY || s == HA_STATE_NOT_STREAMING;
}

enum ha_role ha_role_of(bool pg_ready, bool pg_primary, enum ha_datadir datadir)
{
	if (pg_ready)
		return pg_primary ? HA_ROLE_PRIMARY : HA_ROLE_REPLICA;
	return datadir == HA_DATADIR_EMPTY ? HA_ROLE_UNINITIALIZED : HA_ROLE_STOPPED;
}

enum ha_state ha_state_of(enum ha_job running, bool promoting, bool postmaster_running, bool start_failed,
                          bool pg_ready, bool pg_primary, enum ha_replay replay)
{
	switch (running) {
	case HA_JOB_BOOTSTRAP:
		return HA_STATE_BOOTSTRAPPING;
	case HA_JOB_CLONE:
		return HA_STATE_CLONING;
	case HA_JOB_REWIND:
		return HA_STATE_REWINDING;
	case HA_JOB_NONE:
		break;
	}
	if (promoting)
		return HA_STATE_PROMOTING;
	if (!postmaster_running)
		return start_failed ? HA_STATE_START_FAILED : HA_STATE_STOPPED;
	if (pg_ready && !pg_primary)
		return replay_member_state(replay);
	return pg_ready ? HA_STATE_RUNNING : HA_STATE_STARTING;
}

/* The position a replica's health and lag count from: what it replayed. */
uint64_t ha_replayed(const struct ha_local_view *l)
{
	return l->pg_replay_lsn ? l->pg_replay_lsn : l->pg_lsn;
}

enum ha_replay ha_replay_check(const struct ha_cluster_view *c, const struct ha_local_view *l, double now, char *why,
                               size_t len)
{
	const double bound = ha_replay_bound(c);
	char dummy[8];

	if (!why) {
		why = dummy;
		len = sizeof(dummy);
	}
	why[0] = '\0';
	if (!l->pg_ready || l->pg_primary)
		return HA_REPLAY_OK;
	if (l->pg_replay_paused) {
		snprintf(why, len, "replay paused (pg_is_wal_replay_paused)%s%s", l->hs_below_primary ? ": " : "",
		         l->hs_below_primary ? l->hs_detail : "");
		return HA_REPLAY_PAUSED;
	}
	if (l->pg_receive_lsn > l->pg_replay_lsn && l->pg_replay_progress_at > 0 &&
	    now - l->pg_replay_progress_at >= bound) {
		snprintf(why, len, "replay stuck for %.0fs with %llu bytes received and not replayed",
		         now - l->pg_replay_progress_at, (unsigned long long)(l->pg_receive_lsn - l->pg_replay_lsn));
		return HA_REPLAY_STUCK;
	}
	/* A standby leader whose server says the other site's timeline and
	 * its own diverged (or that it is ahead of the other site) streams
	 * nothing until it is rewound: not a healthy replica, whatever the
	 * LSNs say. */
	if (l->remote_diverged && !l->pg_streaming) {
		snprintf(why, len, "not streaming from the standby_cluster remote %s: the timelines diverged",
		         l->following_remote[0] ? l->following_remote : "(unknown)");
		return HA_REPLAY_NOT_STREAMING;
	}
	/* (A nostream replica never streams: only its replay is judged.) */
	if (c->etcd_ok && c->has_leader && strcmp(c->leader, l->name) != 0 && !l->nostream && !l->pg_streaming &&
	    l->pg_not_streaming_since > 0 && now - l->pg_not_streaming_since >= bound &&
	    c->leader_lsn > ha_replayed(l)) {
		snprintf(why, len, "not streaming from %s for %.0fs, %llu bytes behind it", c->leader,
		         now - l->pg_not_streaming_since, (unsigned long long)(c->leader_lsn - ha_replayed(l)));
		return HA_REPLAY_NOT_STREAMING;
	}
	return HA_REPLAY_OK;
}
