#!/bin/bash
# 40_patroni_config: the Patroni config keys an operator reaches for (issue
# 13), on one short 3-node cluster whose files use them:
#   - bootstrap.initdb in Patroni's list form, with an option with a value
#     ({ wal_segsize = 32; }) and one without ("data-checksums"): the
#     cluster has 32 MB WAL segments and data checksums;
#   - postgresql.pg_ident: the lines are pg_ident.conf's, as Postgres reads
#     them (pg_ident_file_mappings), on every node;
#   - bootstrap.dcs.postgresql.use_slots = false: no slot anywhere, the
#     replicas stream without primary_slot_name;
#   - ignore_slots (PATCH /config): with use_slots false a member's slot is
#     dropped as soon as it is inactive; the one an ignore_slots matcher
#     names is kept;
#   - restapi.allowlist = [ "127.0.0.1" ]: a write from 127.0.0.2 gets 403
#     naming the list, whatever its credentials; the same write from
#     127.0.0.1 passes, and reads from 127.0.0.2 stay open;
#   - bootstrap.post_bootstrap: run once, by the bootstrapping node only,
#     with a superuser URL that connects (it creates a table the replicas
#     then have);
#   - postgresql.authentication.rewind: the primary made the role with the
#     grants pg_rewind needs (it lists and reads the data directory as it);
#   - PATCH /config turns use_slots on with a permanent logical slot in
#     Patroni's object form (synchronous_mode "quorum" in the same patch):
#     the replicas then stream through their slots and the logical slot
#     exists on the primary with its plugin and database.
# A file with a Patroni key baton lacks exits 2 naming file, line and key.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init patroni_config

etcd_start
# post_bootstrap: records its argument and uses it to connect.
cat >"$T/post_bootstrap.sh" <<EOF
#!/bin/sh
echo "\$1" >>"$T/post_bootstrap.out"
exec "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "\$1" -c "CREATE TABLE made_by_post_bootstrap (v int)"
EOF
chmod 755 "$T/post_bootstrap.sh"
chown "$BATON_USER:" "$T/post_bootstrap.sh"
for n in 1 2 3; do
	node_config "$n"
	f=$T/node$n.conf
	sed -i 's/^bootstrap = {$/bootstrap = {\n  initdb = ( { encoding = "UTF8"; }, "data-checksums", { wal_segsize = 32; } );/' "$f"
	sed -i "s|^bootstrap = {\$|bootstrap = {\n  post_bootstrap = \"$T/post_bootstrap.sh\";|" "$f"
	sed -i 's/^    maximum_lag_on_failover = .*/&\n    postgresql = { use_slots = false; };/' "$f"
	sed -i 's/^  parameters = { shared_buffers = "32MB"; };/  parameters = { shared_buffers = "32MB"; wal_level = "logical"; };\n  pg_ident = [ "opsmap baton postgres", "opsmap root postgres" ];/' "$f"
	sed -i 's/^restapi = { /restapi = { allowlist = [ "127.0.0.1" ]; /' "$f"
	sed -i 's/^    replication = { username = "replicator";.*/&\n    rewind = { username = "rewinder"; password = "rw-'"$$"'"; };/' "$f"
	grep -q 'wal_segsize = 32' "$f" && grep -q 'use_slots = false' "$f" && grep -q 'pg_ident' "$f" &&
		grep -q 'post_bootstrap = ' "$f" && grep -q 'username = "rewinder"' "$f" &&
		grep -q 'allowlist' "$f" || fail "could not render node$n's Patroni keys (harness template changed?)"
done

# A Patroni key baton does not support: exit 2, file:line, key and hint.
cp "$T/node1.conf" "$T/bad.conf"
printf 'kubernetes = { namespace = "default"; };\n' >>"$T/bad.conf"
chown "$BATON_USER:" "$T/bad.conf"
rc=0
out=$(as_baton "$BATON_BUILD/baton" -c "$T/bad.conf" -t 2>&1) || rc=$?
assert_eq 2 "$rc" "baton -t on a file with kubernetes exits 2"
line=$(wc -l <"$T/bad.conf")
[[ "$out" == *"$T/bad.conf:$line: kubernetes: kubernetes is a Patroni key baton does not support: the only DCS is etcd (v3): use etcd.hosts"* ]] ||
	fail "unexpected error for kubernetes: $out"
pass "a Patroni key baton lacks: exit 2 with file:line, key and what to use"

for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
p=$PRIMARY
r1= r2=
for n in 1 2 3; do
	[ "$n" = "$p" ] && continue
	if [ -z "$r1" ]; then r1=$n; else r2=$n; fi
done

# post_bootstrap ran once, with a URL that connected as the superuser.
assert_eq 1 "$(wc -l <"$T/post_bootstrap.out")" "post_bootstrap runs"
url=$(cat "$T/post_bootstrap.out")
[[ "$url" == "postgresql://postgres@/postgres?host=$T&port=${PG_PORT[$p]}" ]] ||
	fail "post_bootstrap's URL '$url' is not node$p's superuser URL"
assert_eq 1 "$(run_sql "$p" "SELECT count(*) FROM pg_tables WHERE tablename = 'made_by_post_bootstrap'")" \
	"the table post_bootstrap made, on the primary"
wait_for 20 "the table post_bootstrap made, on node$r1" \
	eval '[ "$(run_sql "$r1" "SELECT count(*) FROM pg_tables WHERE tablename = '\''made_by_post_bootstrap'\''")" = 1 ]'
grep -q "post_bootstrap finished" "$(agent_log "$p")" || fail "node$p's log does not say post_bootstrap finished"
pass "bootstrap.post_bootstrap ran once on node$p, before the replicas cloned"

# initdb's list form reached initdb.
assert_eq 32MB "$(run_sql "$p" "SHOW wal_segment_size")" "wal_segment_size (initdb { wal_segsize = 32; })"
assert_eq on "$(run_sql "$p" "SHOW data_checksums")" "data_checksums (initdb \"data-checksums\")"
assert_eq 32MB "$(run_sql "$r1" "SHOW wal_segment_size")" "wal_segment_size on the replica node$r1"
pass "bootstrap.initdb's list form: 32 MB WAL segments and data checksums"

# pg_ident lines, as Postgres parses them, on the primary and a replica.
for n in "$p" "$r1"; do
	assert_eq "opsmap|baton|postgres,opsmap|root|postgres" \
		"$(run_sql "$n" "SELECT string_agg(map_name || '|' || sys_name || '|' || pg_username, ',' ORDER BY line_number) FROM pg_ident_file_mappings WHERE error IS NULL")" \
		"pg_ident.conf on node$n"
done
pass "postgresql.pg_ident: pg_ident.conf holds the two mappings"

# The rewind role: not a superuser, and what pg_rewind does works as it.
assert_eq "1|0" "$(run_sql "$p" "SELECT rolcanlogin::int || '|' || rolsuper::int FROM pg_roles WHERE rolname = 'rewinder'")" \
	"rewinder on node$p: login, not superuser"
printf '*:*:*:rewinder:rw-%s\n' "$$" >"$T/rewinder.pgpass"
chown "$BATON_USER:" "$T/rewinder.pgpass"
chmod 600 "$T/rewinder.pgpass"
rw=$(cd "$T" && as_baton env PGPASSFILE="$T/rewinder.pgpass" "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
	-h 127.0.0.1 -p "${PG_PORT[$p]}" -U rewinder -d postgres \
	-c "SELECT count(*) > 0 FROM pg_ls_dir('global', true, false)" \
	-c "SELECT (pg_stat_file('global/pg_control', true)).size > 0" \
	-c "SELECT length(pg_read_binary_file('global/pg_control', 0, 8, true)) = 8" 2>&1 | tr '\n' ' ')
assert_eq "t t t " "$rw" "pg_rewind's functions as rewinder on node$p"
grep -q "rewinder" "$(data_dir "$r1").pgpass" || fail "node$r1's password file has no line for rewinder"
pass "postgresql.authentication.rewind: role with pg_rewind's grants, in the password file"

# use_slots = false: replicas stream without slots.
assert_eq 0 "$(run_sql "$p" "SELECT count(*) FROM pg_replication_slots")" "slots on the primary with use_slots false"
for n in "$r1" "$r2"; do
	assert_eq "" "$(run_sql "$n" "SHOW primary_slot_name")" "primary_slot_name on node$n with use_slots false"
done
pass "use_slots = false: no slots, no primary_slot_name, $(run_sql "$p" "SELECT count(*) FROM pg_stat_replication") replicas streaming"

# restapi.allowlist: the same authorised write from 127.0.0.2 and 127.0.0.1.
ALLOWED_PATCH='{"ignore_slots": [{"name": "node'"$r1"'", "type": "physical"}]}'
patch_from() {
	local src=$1 body=$2
	REST_CODE=$(rest_curl "$p" -s -m 5 --interface "$src" -o "$T/rest.body" -w '%{http_code}' -X PATCH \
		-u "$REST_USER:$REST_PASSWORD" -H 'Content-Type: application/json' --data-binary "$body" \
		"$(rest_url "$p")/config" 2>/dev/null) || true
	REST_BODY=$(cat "$T/rest.body" 2>/dev/null)
}
patch_from 127.0.0.2 "$ALLOWED_PATCH"
assert_eq 403 "$REST_CODE" "PATCH /config from 127.0.0.2 (not in restapi.allowlist)"
[[ "$REST_BODY" == *"writes from 127.0.0.2 are refused: not in restapi.allowlist"* ]] || fail "403 body: $REST_BODY"
[[ "$(config_json)" != *ignore_slots* ]] || fail "the refused PATCH changed the config key: $(config_json)"
code=$(rest_curl "$p" -s -m 5 --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$(rest_url "$p")/primary") || true
assert_eq 200 "$code" "GET /primary from 127.0.0.2 (reads are not restricted)"
patch_from 127.0.0.1 "$ALLOWED_PATCH"
assert_eq 200 "$REST_CODE" "PATCH /config from 127.0.0.1 ($REST_BODY)"
[[ "$(config_json)" == *'"ignore_slots"'* ]] || fail "ignore_slots missing from the config key: $(config_json)"
pass "restapi.allowlist: 403 from 127.0.0.2, 200 from 127.0.0.1, reads open"

# ignore_slots with use_slots false: members' slots made by hand on the
# primary; node$r2's (not ignored) goes, node$r1's (ignored) stays.
run_sql "$p" "SELECT pg_create_physical_replication_slot('node$r1'), pg_create_physical_replication_slot('node$r2')" >/dev/null ||
	fail "cannot create the slots by hand on node$p"
slot_count() { run_sql "$p" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1'"; }
wait_for 30 "node$p to drop node$r2's unused slot (use_slots false)" eval '[ "$(slot_count node$r2)" = 0 ]'
sleep "$((LOOP_WAIT * 3))"
assert_eq 1 "$(slot_count "node$r1")" "node$r1's slot, named by ignore_slots, after the other was dropped"
pass "ignore_slots: the ignored member slot is kept, the other dropped"

# use_slots back on with a permanent logical slot (Patroni's object form),
# and synchronous_mode as Patroni 4 writes it.
patch_from 127.0.0.1 '{"ignore_slots": null, "postgresql": {"use_slots": true}, "synchronous_mode": "quorum",
  "slots": {"cdc": {"type": "logical", "database": "postgres", "plugin": "test_decoding"}}}'
assert_eq 200 "$REST_CODE" "PATCH /config with use_slots, a logical slot and synchronous_mode quorum ($REST_BODY)"
logical() { run_sql "$p" "SELECT slot_type || '|' || plugin || '|' || database FROM pg_replication_slots WHERE slot_name = 'cdc'"; }
wait_for 30 "the permanent logical slot cdc on node$p" eval '[ "$(logical)" = "logical|test_decoding|postgres" ]'
slot_active() { [ "$(run_sql "$p" "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]; }
for n in "$r1" "$r2"; do
	wait_for 30 "node$n streaming through its slot on node$p" slot_active "node$n"
	assert_eq "node$n" "$(run_sql "$n" "SHOW primary_slot_name")" "primary_slot_name on node$n"
done
run_sql "$p" "CREATE TABLE cdc_probe (v int); INSERT INTO cdc_probe VALUES (1)" >/dev/null || fail "cannot write on node$p"
changes=$(run_sql "$p" "SELECT count(*) FROM pg_logical_slot_peek_changes('cdc', NULL, NULL) WHERE data LIKE '%cdc_probe%'")
[ "${changes:-0}" -ge 1 ] || fail "the logical slot cdc decoded nothing of the insert (got '$changes')"
q=$(config_json | jq -r '[.synchronous_mode, .synchronous_quorum] | map(tostring) | join(",")')
[[ "$q" == "quorum,"* || "$q" == "true,true" ]] || fail "synchronous_mode quorum not kept in the config key: $q"
pass "use_slots on: replicas stream through their slots; logical slot cdc decodes on node$p; synchronous_mode \"quorum\" accepted"
