# agent/: the daemon baton, the CLI batonctl, and libagent.a (everything but
# the two mains) which the tests link too.
noinst_LIBRARIES += agent/libagent.a
agent_libagent_a_SOURCES = \
	agent/log.c agent/log.h \
	agent/config.c agent/config.h \
	agent/ha.c agent/ha.h \
	agent/dcs.c agent/dcs.h \
	agent/api.c agent/api.h \
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
baton_SOURCES = agent/baton.c agent/loop.c agent/loop.h agent/keeper.c agent/keeper.h \
	agent/watch.c agent/watch.h
baton_LDADD = $(BATON_LIBS)
batonctl_SOURCES = agent/batonctl.c
batonctl_LDADD = $(BATON_LIBS)

# replication slots (used by the loop; in the library for tests/check_slots)
agent_libagent_a_SOURCES += agent/slots.c agent/slots.h
