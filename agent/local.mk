# agent/: the daemon baton, the CLI batonctl, and libagent.a (everything but
# the two mains) which the tests link too.
noinst_LIBRARIES += agent/libagent.a
agent_libagent_a_SOURCES = \
	agent/log.c agent/log.h \
	agent/config.c agent/config.h agent/config_internal.h \
	agent/config_load.c agent/config_file.c agent/config_print.c agent/config_reload.c \
	agent/clock.c agent/clock.h agent/parse.c agent/parse.h \
	agent/ha.c agent/ha_rank.c agent/ha_state.c agent/ha_time.c agent/ha_sync.c agent/ha_upstream.c agent/ha.h agent/ha_internal.h \
	agent/dcs.c agent/dcs_settings.c agent/dcs_view.c agent/dcs_read.c agent/dcs.h agent/dcs_internal.h \
	agent/api.c agent/api.h \
	agent/api_health.c agent/api_metrics.c agent/api_cluster.c \
	agent/api_server.c agent/api_http.c \
	agent/peer.c agent/peer.h \
	agent/member_verify.c agent/member_verify.h \
	agent/jsonf.c agent/jsonf.h \
	agent/ops.c agent/ops.h \
	agent/callbacks.c agent/callbacks.h \
	agent/sdnotify.c agent/sdnotify.h

# the fence process and the watchdog device (used by the keeper; in the
# library so that tests/check_fence links them)
agent_libagent_a_SOURCES += agent/fence.c agent/fence.h agent/watchdog.c agent/watchdog.h

BATON_LIBS = agent/libagent.a pg/libpg.a etcd/libetcd.a \
	$(CURL_LIBS) $(JANSSON_LIBS) $(LIBPQ_LIBS) $(LIBCONFIG_LIBS) $(MHD_LIBS) $(GNUTLS_LIBS) -lpthread -lm

bin_PROGRAMS += baton batonctl
baton_SOURCES = agent/baton.c
baton_LDADD = $(BATON_LIBS)
# batonctl: one file per command or small family of commands (see main.c)
batonctl_SOURCES = agent/batonctl/main.c agent/batonctl/common.c agent/batonctl/common.h \
	agent/batonctl/members.c agent/batonctl/history.c agent/batonctl/cluster_config.c \
	agent/batonctl/pause.c agent/batonctl/switchover.c agent/batonctl/node_actions.c \
	agent/batonctl/import_patroni.c agent/batonctl/remove.c agent/batonctl/flush.c agent/batonctl/query.c
batonctl_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS)
batonctl_LDADD = $(BATON_LIBS) $(YAML_LIBS)

# replica creation methods and the clonefrom source (pure, part of the core)
agent_libagent_a_SOURCES += agent/ha_clone.c agent/ha_clone.h

# replication slots (used by the loop; in the library for tests/check_slots)
agent_libagent_a_SOURCES += agent/slots.c agent/slots.h

# PgBouncer pause/resume around switchovers (in the library for tests/check_pooler)
agent_libagent_a_SOURCES += agent/pooler.c agent/pooler.h

# the main loop, one file per concern (loop_internal.h), with the keeper
# thread and the leader watch it runs: in the library so that unit tests
# link the loop's parts
agent_libagent_a_SOURCES += agent/loop.c agent/loop.h agent/loop_internal.h \
	agent/loop_view.c agent/loop_execute.c agent/loop_switchover.c agent/loop_sync.c \
	agent/loop_lease.c agent/loop_publish.c agent/loop_reload.c agent/loop_pgfiles.c \
	agent/loop_restart.c agent/local_view.c agent/local_view.h agent/keeper.c agent/keeper.h agent/watch.c agent/watch.h
