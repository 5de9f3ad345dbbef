# Unit tests (Check). Each block belongs to one module; integration and fault
# tests are shell scripts under tests/integration, run by tests/run.sh.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -Wno-unused-parameter -DPG_BINDIR=\"$(PG_BINDIR)\"
TEST_LIBS = $(BATON_LIBS) $(CHECK_LIBS)
# Tests of one library link only that library, so each can be built alone.
ETCD_TEST_LIBS = etcd/libetcd.a $(CURL_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS) -lpthread -lm
PG_TEST_LIBS = pg/libpg.a $(LIBPQ_LIBS) $(CHECK_LIBS) -lpthread -lm
# Programs that need etcd or Postgres skip those tests (exit 77) without them.
EXTRA_DIST += tests/skip.h

# clang-format with .clang-format: `make format FILES="a.c b.c"` rewrites
# (all C files without FILES), `make format-check` only reports.
EXTRA_DIST += .clang-format tests/format.sh
.PHONY: format format-check
format:
	$(SHELL) $(top_srcdir)/tests/format.sh $(FILES)
format-check:
	$(SHELL) $(top_srcdir)/tests/format.sh --check $(FILES)

# BEGIN ha
check_PROGRAMS += tests/check_ha
tests_check_ha_SOURCES = tests/check_ha.c
tests_check_ha_CFLAGS = $(TEST_CFLAGS)
tests_check_ha_LDADD = $(TEST_LIBS)
# END ha

# BEGIN clone
# Replica creation methods (issue 14): the core's order, rule 8, the command lines.
check_PROGRAMS += tests/check_clone
tests_check_clone_SOURCES = tests/check_clone.c
tests_check_clone_CFLAGS = $(TEST_CFLAGS)
tests_check_clone_LDADD = $(TEST_LIBS)
# END clone

# BEGIN sim
# The deterministic simulation of the HA decision core (see the top of check_sim.c).
check_PROGRAMS += tests/check_sim
tests_check_sim_SOURCES = tests/check_sim.c tests/sim.h tests/sim_etcd.c tests/sim_world.c
tests_check_sim_CFLAGS = $(TEST_CFLAGS)
tests_check_sim_LDADD = $(TEST_LIBS)
# END sim

# BEGIN config
check_PROGRAMS += tests/check_config
tests_check_config_SOURCES = tests/check_config.c
tests_check_config_CFLAGS = $(TEST_CFLAGS) -DTEST_SRCDIR=\"$(abs_top_srcdir)\"
tests_check_config_LDADD = $(TEST_LIBS)
# the files check_config reads
EXTRA_DIST += tests/configs deploy/examples
# END config

# BEGIN parse
# agent/parse.c (one parser per unit) and agent/clock.c.
check_PROGRAMS += tests/check_parse
tests_check_parse_SOURCES = tests/check_parse.c
tests_check_parse_CFLAGS = $(TEST_CFLAGS)
tests_check_parse_LDADD = $(TEST_LIBS)
# END parse

# BEGIN callbacks
check_PROGRAMS += tests/check_callbacks
tests_check_callbacks_SOURCES = tests/check_callbacks.c
tests_check_callbacks_CFLAGS = $(TEST_CFLAGS) -DTEST_SRCDIR=\"$(abs_top_srcdir)\"
tests_check_callbacks_LDADD = $(TEST_LIBS)
# END callbacks

# BEGIN dcs
check_PROGRAMS += tests/check_dcs
tests_check_dcs_SOURCES = tests/check_dcs.c tests/etcd_fake.c tests/etcd_fake.h
tests_check_dcs_CFLAGS = $(TEST_CFLAGS)
tests_check_dcs_LDADD = $(TEST_LIBS)
# END dcs

# BEGIN etcd
check_PROGRAMS += tests/check_etcd
tests_check_etcd_SOURCES = tests/check_etcd.c tests/etcd_fake.c tests/etcd_fake.h \
	tests/etcd_proc.c tests/etcd_proc.h tests/etcd_fixture.c tests/etcd_fixture.h
tests_check_etcd_CFLAGS = $(TEST_CFLAGS)
tests_check_etcd_LDADD = $(ETCD_TEST_LIBS)
# END etcd

# BEGIN pg
check_PROGRAMS += tests/check_pg
tests_check_pg_SOURCES = tests/check_pg.c
tests_check_pg_CFLAGS = $(TEST_CFLAGS)
tests_check_pg_LDADD = $(PG_TEST_LIBS)
# END pg

# BEGIN ops
check_PROGRAMS += tests/check_ops
tests_check_ops_SOURCES = tests/check_ops.c tests/etcd_proc.c tests/etcd_proc.h \
	tests/etcd_fixture.c tests/etcd_fixture.h
tests_check_ops_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_LDADD = $(TEST_LIBS)
# END ops

# BEGIN api
check_PROGRAMS += tests/check_api
tests_check_api_SOURCES = tests/check_api.c tests/etcd_proc.c tests/etcd_proc.h \
	tests/etcd_fixture.c tests/etcd_fixture.h
tests_check_api_CFLAGS = $(TEST_CFLAGS)
tests_check_api_LDADD = $(TEST_LIBS)
# the fuzz target, its seeds and runner (tests/fuzz/run.sh builds it with clang)
EXTRA_DIST += tests/fuzz
# END api

# BEGIN peer
check_PROGRAMS += tests/check_peer
tests_check_peer_SOURCES = tests/check_peer.c
tests_check_peer_CFLAGS = $(TEST_CFLAGS)
tests_check_peer_LDADD = $(TEST_LIBS)
# END peer

TESTS += $(check_PROGRAMS)

# BEGIN tools
# Test clients used by tests/integration and tests/bench (not installed).
noinst_PROGRAMS = tests/tools/writer tests/tools/poller
tests_tools_writer_SOURCES = tests/tools/writer.c tests/tools/tool_util.c tests/tools/tool_util.h
tests_tools_writer_CFLAGS = $(AM_CFLAGS)
tests_tools_writer_LDADD = $(LIBPQ_LIBS)
tests_tools_poller_SOURCES = tests/tools/poller.c tests/tools/tool_util.c tests/tools/tool_util.h
tests_tools_poller_CFLAGS = $(AM_CFLAGS)
tests_tools_poller_LDADD = $(LIBPQ_LIBS)
# idle and slow-header connections against the REST API (tests/bench/rest.sh, 25_rest_security)
noinst_PROGRAMS += tests/tools/restload
tests_tools_restload_SOURCES = tests/tools/restload.c tests/tools/tool_util.c tests/tools/tool_util.h
tests_tools_restload_CFLAGS = $(AM_CFLAGS)
tests_tools_restload_LDADD = $(CURL_LIBS)
# END tools

# BEGIN stability
# The fsync-heavy disk load of tests/chaos/stability.sh (not installed).
noinst_PROGRAMS += tests/tools/fsync_hog
tests_tools_fsync_hog_SOURCES = tests/tools/fsync_hog.c tests/tools/tool_util.c tests/tools/tool_util.h
tests_tools_fsync_hog_CFLAGS = $(AM_CFLAGS)
# END stability

# BEGIN sdnotify
check_PROGRAMS += tests/check_sdnotify
tests_check_sdnotify_SOURCES = tests/check_sdnotify.c
tests_check_sdnotify_CFLAGS = $(TEST_CFLAGS)
tests_check_sdnotify_LDADD = agent/libagent.a $(CHECK_LIBS)
if HAVE_LIBSYSTEMD
# the built-in sender too, which the agent uses when built without libsystemd
check_PROGRAMS += tests/check_sdnotify_builtin
tests_check_sdnotify_builtin_SOURCES = tests/check_sdnotify.c agent/sdnotify.c agent/sdnotify.h
tests_check_sdnotify_builtin_CFLAGS = $(TEST_CFLAGS) -DSDNOTIFY_BUILTIN
tests_check_sdnotify_builtin_LDADD = $(CHECK_LIBS)
endif
# END sdnotify

# BEGIN fence
check_PROGRAMS += tests/check_fence
tests_check_fence_SOURCES = tests/check_fence.c
tests_check_fence_CFLAGS = $(TEST_CFLAGS)
tests_check_fence_LDADD = $(TEST_LIBS)
# END fence

# BEGIN slots
check_PROGRAMS += tests/check_slots
tests_check_slots_SOURCES = tests/check_slots.c
tests_check_slots_CFLAGS = $(TEST_CFLAGS)
tests_check_slots_LDADD = $(TEST_LIBS)
# END slots

# BEGIN pooler
check_PROGRAMS += tests/check_pooler
tests_check_pooler_SOURCES = tests/check_pooler.c
tests_check_pooler_CFLAGS = $(TEST_CFLAGS)
tests_check_pooler_LDADD = $(TEST_LIBS)
# END pooler

# BEGIN batonctl
# batonctl's pure helpers (YAML, the cluster name argument, remove's
# confirmations, dotted edit-config keys): its files but main.c
check_PROGRAMS += tests/check_batonctl
tests_check_batonctl_SOURCES = tests/check_batonctl.c agent/batonctl/common.c agent/batonctl/common.h \
	agent/batonctl/members.c agent/batonctl/history.c agent/batonctl/cluster_config.c \
	agent/batonctl/pause.c agent/batonctl/switchover.c agent/batonctl/node_actions.c \
	agent/batonctl/remove.c agent/batonctl/flush.c agent/batonctl/query.c
tests_check_batonctl_CFLAGS = $(TEST_CFLAGS)
tests_check_batonctl_LDADD = $(TEST_LIBS)
# END batonctl
