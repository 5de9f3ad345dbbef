#!/bin/bash
# 35_container_image: deploy/k8s/Dockerfile builds with podman, and the
# image runs a cluster the way the StatefulSet runs it.
#
#  1. the base: `debian:bookworm` (and `debian:bookworm-slim`, the runtime
#     stage's FROM) is imported from the minbase debootstrap tarball shared
#     with 34_systemd_live (tests/lib/debian_root.sh) when the store lacks
#     it — no registry needed; the podman store is cached under
#     $BATON_PODMAN_CACHE (default /var/tmp/baton-podman-cache), so a second
#     run only rebuilds the layers the source changed;
#  2. `podman build -f deploy/k8s/Dockerfile` from a copy of this source
#     tree (once per run; tests/run.sh builds it once in the background
#     beforehand, so that this build finds its layers cached); the image
#     size is reported;
#  3. an etcd container (the host's static etcd binary in the base image)
#     and three baton containers on the host network (loopback ports), each
#     as the StatefulSet runs it: uid/gid 999, a read-only root file system,
#     tmpfs /tmp, a volume for /var/lib/baton and one for /etc/baton, the
#     REST API over TLS with credentials from files mounted read-only;
#  4. checks: every agent runs as uid 999 and cannot write its root file
#     system; node1 bootstraps, node2 and node3 clone and stream; `podman
#     stop` of the leader hands over (a new leader within the ttl), and the
#     old leader's container, started again, rejoins as a replica; `podman
#     kill` of the new leader (agent and Postgres at once) fails over, and
#     that container too rejoins as a replica.
# Skips (77) when podman cannot run a container here.
. "$(dirname "$0")/../lib/cluster.sh"
. "$(dirname "$0")/../lib/debian_root.sh"
cluster_init container_image
debian_prep_boost # the slow steps below may wait for it

for b in podman runc debootstrap flock openssl curl; do
	command -v "$b" >/dev/null 2>&1 || fail "$b is missing (Debian packages podman, runc, debootstrap, util-linux, openssl, curl)"
done

TIMINGS=()

src=$(mkvar abs_top_srcdir)
version=$(mkvar PACKAGE_VERSION)
[ -n "$src" ] && [ -f "$src/deploy/k8s/Dockerfile" ] || fail "no deploy/k8s/Dockerfile in the source dir '$src' of $BATON_BUILD"

# ---- podman, with its own store and settings (tests/lib/debian_root.sh:
# podman_setup, pm). One run at a time per store (a lock held until this
# scenario exits; tests/run.sh's background preparation holds it while it
# builds the image).
mkdir -p "$PODMAN_CACHE"
exec 8>"$PODMAN_CACHE/run.lock"
flock -w 900 8 || fail "another run holds $PODMAN_CACHE/run.lock for more than 900 s"
# The store keeps every build's layers, so that the next build reuses the
# unchanged ones (the apt-get steps); past 4 GB it starts afresh.
if [ -d "$PODMAN_CACHE/storage" ] && [ "$(du -sm "$PODMAN_CACHE/storage" | cut -f1)" -gt 4096 ]; then
	log "the podman store $PODMAN_CACHE/storage exceeds 4 GB: starting afresh"
	rm -rf "$PODMAN_CACHE/storage"
fi
podman_setup "$T" || fail "cannot set podman up in $T"
# A store podman cannot open (e.g. made with another runroot) starts afresh.
if ! pm info >"$T/podman-info.out" 2>&1; then
	log "the podman store $PODMAN_CACHE/storage is unusable ($(tail -n1 "$T/podman-info.out")): starting afresh"
	rm -rf "$PODMAN_CACHE/storage"
	pm info >"$T/podman-info.out" 2>&1 || { cat "$T/podman-info.out"; skip "podman does not run here"; }
fi
CONTAINERS=()
podman_cleanup() {
	if [ "${#CONTAINERS[@]}" -gt 0 ]; then
		pm rm -f -i -t 5 "${CONTAINERS[@]}" >/dev/null 2>&1 || echo "WARNING: cannot remove the containers ${CONTAINERS[*]}"
	fi
	rm -rf "$PODMAN_RUNROOT"
	return 0
}
trap 'rc=$?; podman_cleanup; (exit "$rc"); cluster_cleanup' EXIT

# ---- 1. the base image
t0=$(now_ms)
podman_base 2>"$T/base.out" || { tail -n 30 "$T/base.out"; fail "cannot make the base image debian:bookworm (log: $T/base.out)"; }
timing "base image (debootstrap and import, or the store)" "$t0"
out=$(pm run --rm --network host localhost/debian:bookworm true 2>&1) ||
	skip "podman cannot run a container here: $(tail -n 2 <<<"$out" | tr '\n' ' ')"

# ---- 2. the image, from a copy of the source (no build output in the context)
t0=$(now_ms)
. "$src/tests/lib/packages.sh"
IMAGE=localhost/baton:it
podman_build_image "$src" "$T/context" "$IMAGE" "$T/build.out" || fail "podman build -f deploy/k8s/Dockerfile failed"
timing "image build" "$t0"
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
log "image $IMAGE: $(awk -v s="$size" 'BEGIN { printf "%.0f MB", s / 1e6 }') ($size bytes)"
TIMINGS+=("image size: $(awk -v s="$size" 'BEGIN { printf "%.0f MB", s / 1e6 }')")
assert_eq "999:999" "$(pm image inspect --format '{{.Config.User}}' "$IMAGE")" "the image's USER"
got=$(pm run --rm --network host --entrypoint /usr/local/bin/baton "$IMAGE" --version 2>&1)
grep -qF "$version" <<<"$got" || fail "baton --version in the image: '$got' (expected $version)"

# ---- 3. etcd and three nodes, as the StatefulSet runs them
pick_port ETCD_PORT
pick_port ETCD_PEER_PORT
CONTAINERS+=(it-etcd-$$)
pm run -d --name "it-etcd-$$" --network host -v /usr/bin/etcd:/usr/local/bin/etcd:ro \
	localhost/debian:bookworm /usr/local/bin/etcd --name it --data-dir /tmp/etcd \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "it=http://127.0.0.1:$ETCD_PEER_PORT" >/dev/null || fail "cannot start the etcd container"
etcd_up() { etcdctl_ endpoint health >/dev/null 2>&1; }
wait_for 30 "etcd in its container" etcd_up

rest_make_certs
tls=$T/tls
mkdir -p "$tls"
cp "$REST_TLS_DIR/server.pem" "$tls/tls.crt"
cp "$REST_TLS_DIR/server-key.pem" "$tls/tls.key"
cp "$REST_TLS_DIR/ca.pem" "$tls/ca.crt"
chown -R 999:999 "$tls"
chmod 755 "$tls"
for n in 1 2 3; do
	pick_port "PG_PORT[$n]"
	pick_port "API_PORT[$n]"
	mkdir -p "$T/vol$n/data" "$T/vol$n/etc"
	chown -R 999:999 "$T/vol$n"
	chmod 700 "$T/vol$n/data" "$T/vol$n/etc"
done
node_run() { # node_run N: (re)creates nodeN's container on its volumes
	pm rm -f "it-node$1-$$" >/dev/null 2>&1
	pm run -d --name "it-node$1-$$" --network host --read-only --tmpfs /tmp:rw,mode=1777 \
		--user 999:999 --stop-timeout 60 \
		-v "$T/vol$1/data:/var/lib/baton" -v "$T/vol$1/etc:/etc/baton" -v "$tls:/etc/baton-tls:ro" \
		-e POD_NAME="node$1" -e POD_IP=127.0.0.1 -e BATON_SCOPE="$SCOPE" \
		-e BATON_ETCD_HOSTS="127.0.0.1:$ETCD_PORT" \
		-e BATON_PG_PORT="${PG_PORT[$1]}" -e BATON_API_PORT="${API_PORT[$1]}" \
		-e BATON_LISTEN_ADDRESS=127.0.0.1 -e BATON_API_CONNECT_HOST=127.0.0.1 \
		-e BATON_SUPERUSER_PASSWORD="$SU_PASSWORD" -e BATON_REPLICATION_PASSWORD="$REPL_PASSWORD" \
		-e BATON_API_USERNAME="$REST_USER" -e BATON_API_PASSWORD="$REST_PASSWORD" \
		-e BATON_API_CERTFILE=/etc/baton-tls/tls.crt -e BATON_API_KEYFILE=/etc/baton-tls/tls.key \
		-e BATON_API_CAFILE=/etc/baton-tls/ca.crt \
		-e BATON_ALLOWED_CIDRS=127.0.0.1/32 -e BATON_ROLE_CHANGE_SCRIPT= \
		-e BATON_TTL="$TTL" -e BATON_LOOP_WAIT="$LOOP_WAIT" -e BATON_RETRY_TIMEOUT="$RETRY_TIMEOUT" \
		-e BATON_PG_PARAMETERS="shared_buffers=16MB" \
		"$IMAGE" >/dev/null || fail "cannot start node$1's container"
}
for n in 1 2 3; do CONTAINERS+=("it-node$n-$$"); done
N_NODES=3

# node_role N ENDPOINT: the HTTP code of nodeN's health endpoint (/primary, /replica)
node_role() { curl -s --max-time 2 --cacert "$REST_TLS_DIR/ca.pem" "https://127.0.0.1:${API_PORT[$1]}/$2" -o /dev/null -w '%{http_code}'; }
is_primary() { [ "$(node_role "$1" primary)" = 200 ]; }
is_replica() { [ "$(node_role "$1" replica)" = 200 ]; }
t0=$(now_ms)
node_run 1
wait_for 90 "node1 leads" is_primary 1
for n in 2 3; do node_run "$n"; done
for n in 2 3; do wait_for 120 "node$n is a replica" is_replica "$n"; done
timing "three nodes in containers up" "$t0"
streaming() { [ "$(run_sql 1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 2 ]; }
wait_for 30 "node2 and node3 stream from node1" streaming
pass "three containers of the image: node1 bootstrapped, node2 and node3 cloned it and stream"

# ---- 4a. non-root, read-only root file system
for n in 1 2 3; do
	assert_eq "999 999" "$(pm exec "it-node$n-$$" sh -c 'echo $(id -u) $(id -g)')" "node$n runs as uid/gid 999"
	out=$(pm exec "it-node$n-$$" sh -c 'touch /usr/local/bin/it-probe 2>&1; touch /it-probe 2>&1' || true)
	grep -q 'Read-only file system' <<<"$out" || fail "node$n's root file system is writable: '$out'"
done
pass "every node runs as uid 999 on a read-only root file system"

# ---- 4b. stop of the leader: a new leader, and the old one rejoins
run_sql 1 "CREATE TABLE it_c (x int); INSERT INTO it_c VALUES (1)" >/dev/null || fail "cannot write on node1"
t0=$(now_ms)
pm stop -t 60 "it-node1-$$" >/dev/null || fail "podman stop of node1's container failed"
stop_ms=$(($(now_ms) - t0))
new=
someone_leads() { local n; for n in 2 3; do is_primary "$n" && { new=$n; return 0; }; done; return 1; }
wait_for 30 "node2 or node3 leads after node1's container stopped" someone_leads
took=$(($(now_ms) - t0))
log "podman stop took $stop_ms ms; node$new leads $took ms after the stop began"
TIMINGS+=("container stop of the leader: $stop_ms ms; new leader after $took ms")
assert_eq 0 "$(pm inspect --format '{{.State.ExitCode}}' "it-node1-$$")" "node1's agent exited 0 on podman stop (SIGTERM through tini)"
run_sql "$new" "INSERT INTO it_c VALUES (2)" >/dev/null || fail "cannot write on the new leader node$new"
pm start "it-node1-$$" >/dev/null || fail "podman start of node1's container failed"
wait_for 120 "node1 rejoins as a replica" is_replica 1
rows() { [ "$(run_sql 1 "SELECT count(*) FROM it_c")" = 2 ]; }
wait_for 30 "node1 has the row written on node$new" rows
pass "podman stop of the leader: node$new took over; node1's container, started again, rejoined as a replica"

# ---- 4c. podman kill of the leader (SIGKILL, agent and Postgres at once): a failover
old=$new
t0=$(now_ms)
pm kill "it-node$old-$$" >/dev/null || fail "podman kill of node$old's container failed"
new=
someone_else_leads() { local n; for n in 1 2 3; do [ "$n" != "$old" ] && is_primary "$n" && { new=$n; return 0; }; done; return 1; }
wait_for 60 "a new leader after node$old's container was killed" someone_else_leads
took=$(($(now_ms) - t0))
log "podman kill of node$old: node$new leads after $took ms"
TIMINGS+=("failover after podman kill of the leader: $took ms")
run_sql "$new" "INSERT INTO it_c VALUES (3)" >/dev/null || fail "cannot write on the new leader node$new"
pm start "it-node$old-$$" >/dev/null || fail "podman start of node$old's container failed"
wait_for 120 "node$old rejoins as a replica" is_replica "$old"
rows3() { [ "$(run_sql "$old" "SELECT count(*) FROM it_c")" = 3 ]; }
wait_for 30 "node$old has the row written on node$new" rows3
pass "podman kill of the leader: node$new took over after $took ms; node$old's container, started again, rejoined as a replica"

log "timings:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
echo "35_container_image: all checks passed"
