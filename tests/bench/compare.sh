#!/bin/bash
# tests/bench/compare.sh - baton beside Patroni (Debian's 3.0.2), same
# scenarios, same etcd, same Postgres 15 binaries, same client, in one run.
# Figures, not assertions; not run in CI.
#
#   tests/bench/compare.sh [--runs N | --quick] [--idle SECONDS] [--out DIR]
#                          [--img-dir DIR] [--only patroni|baton] [--keep]
#
# Installs what it needs when missing (Debian's patroni, python3-psycopg2,
# gnuplot-nox, plus tests/lib/packages.sh's list). Builds one etcd, then, one
# cluster after the other (never two at once), three Patroni nodes and three
# baton nodes on loopback, each cluster bootstrapped anew per timing setting
# (ttl/loop_wait/retry_timeout):
#   "defaults"   Patroni 30/10/10, baton 5/1/2 (each tool's defaults);
#   "aggressive" Patroni 5/1/2,    baton 3/1/1 (the fastest each accepts:
#                Patroni's etcd3 election gives up with retry_timeout 1).
# A writer (tests/tools/writer, one INSERT per 50 ms through a multi-host
# conninfo with target_session_attrs=read-write) and a poller (tests/tools/
# poller, pg_is_in_recovery on every node every 50 ms) run against each
# cluster. Each fault starts at a random moment of the agents' loop (after a
# random fraction of loop_wait) and is repeated N times (--runs, default 3;
# --quick: 1 and 15 s of idle measurement):
#   node loss      SIGKILL of the primary's agent (with baton's fence process)
#                  and postmaster at once, at
#                  both settings; write unavailability = the longest gap
#                  between two acknowledged writes from the last ack before
#                  the kill to the first ack after it;
#   switchover     patronictl switchover --leader/--candidate --force, or
#                  batonctl switchover --candidate --force (defaults);
#                  last ack on the old primary -> first ack on the new one;
#   Postgres crash SIGKILL of the primary's postmaster only (defaults);
#   agent SIGKILL  the primary's agent alone (defaults): the poller's samples
#                  with two writable primaries, the longest write gap, and
#                  the acknowledged writes missing once the old node rejoined,
#                  observed until another node is a writable primary plus 5 s;
# and, with the writer and poller stopped, each agent's resident memory (Rss
# and Pss from /proc/PID/smaps_rollup; Patroni's python process) and CPU time
# (utime+stime) over --idle seconds (default 60), at the defaults.
# After every round the old node is restarted (when it was killed) and the
# cluster must have one primary and two streaming replicas before the next.
# Prints a table (median, min-max per tool, ratio Patroni/baton), writes it
# with the raw figures to --out (default /var/tmp/baton-compare), and draws a
# timeline of the first node loss at the defaults of each tool with gnuplot
# to --img-dir (default docs/img of this tree): failover-timeline-{baton,
# patroni}.png. Runs as root; BATON_BUILD names the build (default
# /var/tmp/baton-ci/build, made by tests/run.sh). A full run (--runs 3) takes
# 13 minutes here on a busy 2-core machine; --quick about 6.
set -uo pipefail

RUNS=3
IDLE=
OUT=/var/tmp/baton-compare
here=$(cd "$(dirname "$0")" && pwd)
IMG_DIR=$here/../../docs/img
ONLY=
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift ;;
	--quick) RUNS=1; IDLE=${IDLE:-15} ;;
	--idle) IDLE=$2; shift ;;
	--out) OUT=$2; shift ;;
	--img-dir) IMG_DIR=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--keep) export KEEP=1 ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
IDLE=${IDLE:-60}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --runs needs a positive number, not '$RUNS'" >&2; exit 2; }
[[ "$IDLE" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --idle needs a positive number of seconds, not '$IDLE'" >&2; exit 2; }
case $ONLY in "" | patroni | baton) ;; *) echo "compare.sh: --only takes patroni or baton, not '$ONLY'" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (the clusters run as user baton)" >&2; exit 2; }

. "$here/../lib/packages.sh"
pkg_ensure patroni python3-psycopg2 gnuplot-nox || { echo "compare.sh: cannot install the packages it needs" >&2; exit 1; }
user_ensure baton || exit 1

. "$here/../lib/cluster.sh"
. "$here/patroni.sh"
. "$here/compare_lib.sh"
PATRONI_VERSION=$(patroni_check) || { echo "compare.sh: $PATRONI_VERSION" >&2; exit 1; }

mkdir -p "$OUT" "$IMG_DIR" || { echo "compare.sh: cannot create $OUT or $IMG_DIR" >&2; exit 1; }
OUT=$(cd "$OUT" && pwd)
IMG_DIR=$(cd "$IMG_DIR" && pwd)
cluster_init compare
RESULTS=$OUT/results.txt
: >"$RESULTS"
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "results to $RESULTS, plots to $IMG_DIR, $RUNS run(s) per scenario, $PATRONI_VERSION"

# Timing per tool and setting: ttl/loop_wait/retry_timeout.
declare -A SETTING=(
	[patroni.defaults]=30/10/10 [patroni.aggressive]=5/1/2
	[baton.defaults]=5/1/2 [baton.aggressive]=3/1/1
)

etcd_start
TOOLS="patroni baton"
[ -z "$ONLY" ] || TOOLS=$ONLY
for TOOL in $TOOLS; do
	phase_start defaults
	for i in $(seq 1 "$RUNS"); do round_node_loss "$i"; done
	for i in $(seq 1 "$RUNS"); do round_pg_crash "$i"; done
	for i in $(seq 1 "$RUNS"); do round_agent_kill "$i"; done
	for i in $(seq 1 "$RUNS"); do round_switchover "$i"; done
	measure_idle
	phase_end
	phase_start aggressive
	for i in $(seq 1 "$RUNS"); do round_node_loss "$i"; done
	phase_end
done

print_table | tee "$OUT/table.md"
plot_timelines
log "done: $OUT/table.md, $OUT/results.txt, $IMG_DIR/failover-timeline-*.png"
