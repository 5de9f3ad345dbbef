#!/bin/bash
# 07_batonctl: every batonctl command against a real three-node cluster:
# list (table and JSON), topology, history (the bootstrap entry), show-config,
# edit-config (--set, --pg, $EDITOR on a terminal, and refusals that leave
# the config key untouched), pause/resume as seen by list, restart of a
# replica through its REST API, and a switchover to a named candidate.
#
# Two checks depend on the agents' side of the operator issue: the restart
# (the REST API's POST /restart and the loop acting on it) and the
# switchover (the leader acting on the switchover key). While an agent does
# not support them yet, they print SKIP with the reason instead of failing.
. "$(dirname "$0")/../lib/cluster.sh"
# loop_wait = 2 below must keep the timing rule: 2 + 2 * 2 <= ttl.
TTL=6
cluster_init batonctl

skip() { printf 'SKIP: %s\n' "$*"; }

cluster_start 3
wait_healthy 90
p=$PRIMARY
replicas=()
for n in 1 2 3; do [ "$n" = "$p" ] || replicas+=("$n"); done

ctl() { as_baton "$BATON_BUILD/batonctl" -c "$T/node1.conf" "$@"; }
config_key() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/config"; }

# ---- list, topology, history

out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"
for n in 1 2 3; do grep -q "| node$n " <<<"$out" || fail "list does not show node$n"; done
grep -q "| node$p .*| Leader " <<<"$out" || fail "list does not mark node$p as the leader"
grep -q 'Pending restart' <<<"$out" && grep -q 'Tags' <<<"$out" || fail "list lacks the Pending restart / Tags columns"
grep -q 'Maintenance mode' <<<"$out" && fail "list shows maintenance mode before any pause"
pass "list: three members, the leader marked, pending restart and tags columns"

json=$(ctl list --format json) || fail "list --format json failed"
assert_eq array "$(jq -r type <<<"$json")" "list JSON is an array"
assert_eq 3 "$(jq length <<<"$json")" "list JSON has three members"
assert_eq true "$(jq '[.[] | has("pending_restart") and (.tags | type == "object")] | all' <<<"$json")" \
	"list JSON: pending_restart and tags on every member"
assert_eq "node$p" "$(jq -r '.[] | select(.leader) | .name' <<<"$json")" "list JSON: the leader flag"

out=$(ctl topology) || fail "batonctl topology failed"
printf '%s\n' "$out"
assert_eq "node$p" "$(sed -n 5p <<<"$out" | awk -F'|' '{gsub(/ /, "", $2); print $2}')" "topology: the leader first"
assert_eq 2 "$(grep -c '| + node' <<<"$out")" "topology: two replicas indented under it"
json=$(ctl topology --format json) || fail "topology --format json failed"
assert_eq 2 "$(jq ".[] | select(.name == \"node$p\") | .replicas | length" <<<"$json")" \
	"topology JSON: the replicas nested under the leader"

out=$(ctl history) || fail "batonctl history failed"
printf '%s\n' "$out"
grep -q "| bootstrap .*| node$p " <<<"$out" || fail "history does not show the bootstrap by node$p"
json=$(ctl history --format json) || fail "history --format json failed"
assert_eq "bootstrap node$p" "$(jq -r '.[0] | "\(.reason) \(.leader)"' <<<"$json")" "history JSON: the bootstrap entry"

# ---- show-config, edit-config

out=$(ctl show-config) || fail "batonctl show-config failed"
printf '%s\n' "$out"
grep -qx 'ttl: 6' <<<"$out" || fail "show-config does not show ttl: 6"
assert_eq 6 "$(ctl show-config --format json | jq .ttl)" "show-config JSON: ttl"

out=$(ctl edit-config --set loop_wait=2 --force 2>&1) || fail "edit-config --set loop_wait=2 failed: $out"
grep -qx 'loop_wait: 2' <<<"$(ctl show-config)" || fail "show-config does not show loop_wait: 2"
assert_eq 2 "$(config_key | jq .loop_wait)" "edit-config --set loop_wait=2 reached the config key"

out=$(ctl edit-config --pg work_mem=8MB --force 2>&1) || fail "edit-config --pg work_mem=8MB failed: $out"
grep -qx 'postgresql.parameters.work_mem: 8MB' <<<"$(ctl show-config)" || fail "show-config lacks work_mem"
pass "edit-config --pg work_mem=8MB shows in show-config"

# A list (slots) as YAML shows it, never "null": empty, set with --set
# slots=a,b, and emptied again with --set slots=
out=$(ctl show-config) || fail "batonctl show-config failed"
grep -qx 'slots: \[\]' <<<"$out" || fail "show-config does not show 'slots: []': $out"
grep -q ': null$' <<<"$out" && fail "show-config prints a null: $out"
assert_eq "slots: []" "$(ctl show-config --format yaml | grep '^slots:')" "show-config YAML: slots"
out=$(ctl edit-config --set slots=s_keep_a,s_keep_b --force 2>&1) || fail "edit-config --set slots=s_keep_a,s_keep_b failed: $out"
grep -qx 'slots: \[s_keep_a, s_keep_b\]' <<<"$(ctl show-config)" || fail "show-config does not list the slots: $(ctl show-config)"
assert_eq '["s_keep_a","s_keep_b"]' "$(ctl show-config --format json | jq -c .slots)" "show-config JSON: slots"
out=$(ctl edit-config --set slots= --force 2>&1) || fail "edit-config --set slots= failed: $out"
grep -qx 'slots: \[\]' <<<"$(ctl show-config)" || fail "edit-config --set slots= did not empty the slots: $(ctl show-config)"
ctl edit-config --help 2>&1 | grep -q -- '--set slots=site_b,site_c' || fail "edit-config --help does not show the slots syntax"
pass "show-config prints slots as a list (not null), as --set slots=a,b sets it and --set slots= empties it"

# Refusals: exit 1 with the reason, the key byte for byte unchanged.
before=$(config_key)
refused() {
	local want=$1 expect=$2
	shift 2
	local err rc
	err=$(ctl "$@" 2>&1 >/dev/null)
	rc=$?
	assert_eq "$want" "$rc" "batonctl $* exits $want"
	grep -q -- "$expect" <<<"$err" || fail "batonctl $*: reason '$err' lacks '$expect'"
	[ "$(wc -l <<<"$err")" -le 2 ] || fail "batonctl $*: more than a short reason: $err"
	assert_eq "$before" "$(config_key)" "batonctl $* left the config key unchanged"
}
refused 1 'loop_wait + 2 \* retry_timeout' edit-config --set loop_wait=5 --force
refused 1 "ttl: expected a number of seconds, got 'abc'" edit-config --set ttl=abc --force
refused 1 "unknown key 'loop_wiat'" edit-config --set loop_wiat=1 --force
refused 2 'nothing to change' edit-config </dev/null
# Like switchover and restart: a script must say --force.
refused 1 'stdin is not a terminal; add --force' edit-config --set loop_wait=3 </dev/null

# $EDITOR on a terminal (script(1) provides one): the change is shown and applied.
cat >"$T/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/"maximum_lag_on_failover": [0-9]*/"maximum_lag_on_failover": 2097152/' "$1"
EOF
chmod 755 "$T/editor.sh"
out=$(as_baton env EDITOR="$T/editor.sh" BATONCTL_CONFIG="$T/node1.conf" \
	script -qec "$BATON_BUILD/batonctl edit-config --force" /dev/null 2>&1) || fail "edit-config with \$EDITOR failed: $out"
grep -q '+ maximum_lag_on_failover: 2097152' <<<"$out" || fail "edit-config with \$EDITOR did not show the change: $out"
assert_eq 2097152 "$(config_key | jq .maximum_lag_on_failover)" "edit-config with \$EDITOR wrote the change"

# ---- pause / resume

out=$(ctl pause) || fail "batonctl pause failed"
assert_eq "Maintenance mode on" "$out" "pause"
assert_eq "Maintenance mode: on (paused)" "$(ctl list | head -n1 | cut -c1-29)" "list shows maintenance mode first"
assert_eq array "$(ctl list --format json | jq -r type)" "list JSON stays an array while paused"
out=$(ctl resume) || fail "batonctl resume failed"
assert_eq "Maintenance mode off" "$out" "resume"
ctl list | grep -q 'Maintenance mode' && fail "list still shows maintenance mode after resume"
pass "list no longer shows maintenance mode"
wait_healthy 30

# ---- refusals that need no agent support

err=$(ctl switchover --candidate ghost --force 2>&1)
assert_eq 1 "$?" "switchover to an unknown member is refused"
grep -q "'ghost' is not a member" <<<"$err" || fail "switchover refusal lacks the reason: $err"
err=$(ctl reinit "node$p" --force 2>&1)
assert_eq 1 "$?" "reinit of the leader is refused"
grep -q "is the leader" <<<"$err" || fail "reinit refusal lacks the reason: $err"
assert_eq "" "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/switchover")" "no switchover key after refusals"

# ---- restart of a replica (needs POST /restart in the agent)

r=${replicas[0]}
pid0=$(postmaster_pid "$r") || fail "node$r has no postmaster"
restarted() {
	local pid
	pid=$(postmaster_pid "$r") || return 1
	[ "$pid" != "$pid0" ] && [ "$(in_recovery "$r")" = t ]
}
if out=$(ctl restart "node$r" --force 2>&1); then
	grep -Eq "^node$r: restarted in [0-9.]+ s, streaming from node$p\$" <<<"$out" ||
		fail "batonctl restart node$r: expected 'node$r: restarted in N s, streaming from node$p', got '$out'"
	pass "batonctl restart node$r answered once it was back: $out"
	if poll_until 30 restarted; then
		pass "node$r's Postgres restarted (postmaster $pid0 -> $(postmaster_pid "$r")) and is a replica again"
		wait_healthy 60
	else
		skip "restart: node$r's agent accepted the request but did not restart Postgres within 30 s (loop support pending)"
	fi
else
	skip "restart: node$r's REST API refused it: $out"
fi

# ---- reinit of a replica: never "healthy" while its Postgres is down

# The agent stops Postgres and removes the data directory inside its loop
# before cloning: from before the stop on, the member key must not say
# "running" nor GET /replica answer 200. A sample counts only when the
# postmaster is down both before and after the two reads.
r=${replicas[0]}
pid0=$(postmaster_pid "$r") || fail "node$r has no postmaster before the reinit"
bg_start reinit setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
	env HOME="$BATON_HOME" "$BATON_BUILD/batonctl" -c "$T/node1.conf" reinit "node$r" --force
reinit_pid=$BG_PID
down=0 bad=
t_end=$(($(now_ms) + 120000))
while [ "$(now_ms)" -lt "$t_end" ]; do
	if postmaster_pid "$r" >/dev/null; then
		pid=$(postmaster_pid "$r")
		[ "$down" -gt 0 ] && [ -n "$pid" ] && [ "$pid" != "$pid0" ] && break
		sleep 0.05
		continue
	fi
	code=$(rest_code "$r" /replica)
	state=$(member_json "node$r" | jq -r '.state // ""' 2>/dev/null)
	postmaster_pid "$r" >/dev/null && continue
	down=$((down + 1))
	if [ "$code" = 200 ] || [ "$state" = running ]; then
		bad+="${bad:+; }GET /replica $code, member state '$state'"
	fi
done
poll_until 30 bg_gone "$reinit_pid" || fail "batonctl reinit node$r did not return within 30 s"
wait "$reinit_pid" || fail "batonctl reinit node$r failed: $(cat "$T/reinit.out" "$T/reinit.err")"
[ "$down" -gt 0 ] || fail "reinit: never saw node$r's Postgres down (is the reinit run?)"
postmaster_pid "$r" >/dev/null || fail "reinit: node$r's Postgres did not come back within 120 s"
[ -z "$bad" ] || fail "reinit: node$r looked healthy while its Postgres was down: $bad"
pass "reinit node$r: $down samples with Postgres down, none with GET /replica 200 or state running"
wait_healthy 90

# ---- a switchover the leader refuses: batonctl quotes its reason at once
# The candidate's agent is frozen: its member key still says a running
# replica (batonctl's own check passes), but its REST API does not answer
# the leader, which refuses and says why in its member key. Frozen for a
# few seconds only (ttl 6): its lease and member key outlive the freeze.
c=${replicas[1]}
agent_signal "$c" STOP
t0=$(now_ms)
out=$(ctl switchover --candidate "node$c" --force --wait 40 2>&1)
rc=$?
took=$(($(now_ms) - t0))
agent_signal "$c" CONT
printf '%s\n' "$out"
[ "$rc" != 0 ] || fail "a switchover to frozen node$c succeeded: $out"
grep -q "node$p refused the switchover (its member key says): node$c does not answer" <<<"$out" ||
	fail "batonctl does not quote the leader's refusal: $out (node$p's member key: $(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/members/node$p"))"
# Without the quote batonctl waits ttl + 2 loops (10 s) after the key is gone.
[ "$took" -lt 9000 ] || fail "batonctl took $took ms to report the refusal"
assert_eq "node$p" "$(leader_name)" "the leader stays after a refused switchover"
assert_eq "" "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/switchover")" "the refused request is cleared"
pass "a refused switchover: batonctl quotes the leader's reason after $took ms"
wait_healthy 60

# ---- switchover to a named candidate (needs the leader to act on the key)

t0=$(now_ms)
out=$(ctl switchover --candidate "node$c" --force --wait 40 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" = 0 ]; then
	grep -q "switched over from node$p to node$c in " <<<"$out" || fail "switchover outcome line: $out"
	assert_eq "node$c" "$(leader_name)" "the leader key names the candidate"
	wait_healthy 60
	assert_eq "$c" "$PRIMARY" "node$c is the primary, the others stream from it"
	log "switchover took $(($(now_ms) - t0)) ms as seen by batonctl"
	json=$(ctl history --format json) || fail "history --format json failed"
	assert_eq "2 node$c" "$(jq -r '.[-1] | "\(.timeline) \(.leader)"' <<<"$json")" \
		"history: the switchover's entry, timeline 2, new leader node$c"
	out=$(ctl list) || fail "batonctl list failed"
	grep -q "| node$c .*| Leader " <<<"$out" || fail "list does not mark node$c as the leader: $out"
	pass "list marks node$c as the leader"
elif grep -q 'the request is still pending' <<<"$out"; then
	skip "switchover: no agent acted on the switchover key within 40 s (agent support pending)"
	ctl switchover --cancel || fail "switchover --cancel failed"
	assert_eq "" "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/switchover")" "switchover --cancel removed the key"
else
	fail "batonctl switchover --candidate node$c: $out"
fi
