#!/bin/bash
# 18_k8s_manifests: the Kubernetes deployment (deploy/k8s/), tested without
# a cluster, an image build or the network.
#  1. every manifest parses (python3-yaml) and carries what the deployment
#     relies on: 3 replicas, the headless service as serviceName, volume
#     claims, POD_NAME from metadata.name, probes on /liveness and
#     /readiness at the API port, Services selecting role=primary and
#     role=replica, the PDB, RBAC allowing patch on the pods, a non-root
#     securityContext matching the image's user, a grace period longer than
#     the agent's stop timeout, etcd endpoints and passwords from the
#     ConfigMap and the Secret; the REST API protected: HTTPS probes,
#     credentials from the Secret, certificate, key and CA from a Secret
#     volume, no BATON_INSECURE_OPEN_API;
#  2. the Dockerfile: COPY sources exist, the build stage has the -dev
#     package of every module configure requires, the runtime stage has the
#     package of every shared library this build's baton and batonctl link;
#  3. the entrypoint renders a file the real baton accepts (`baton -t`),
#     IPv4 and IPv6, quotes in passwords; without REST credentials and
#     certificate it refuses to start unless BATON_INSECURE_OPEN_API=true;
#     bad environments exit 2 with an error naming the variable, write
#     nothing and never echo a password;
#  4. role-label.sh against a fake HTTPS API server on loopback: method,
#     path, bearer token, merge-patch content type and body per action; a
#     403 fails at once with a clear message, a 500 is retried, a wrong CA
#     fails;
#  5. end to end on loopback: etcd and three agents started through the
#     entrypoint (as the pods would, user baton), their callbacks labelling
#     the "pods" on the fake API server: one role=primary (the leader), two
#     role=replica; after a graceful handover (SIGTERM on the leader) and
#     the old leader's restart, the labels follow.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init k8s_manifests

repo=$(cd "$(dirname "$0")/../.." && pwd)
K8S=$repo/deploy/k8s
PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing (tests/lib/packages.sh installs it)"
for f in Dockerfile entrypoint.sh role-label.sh kustomization.yaml statefulset.yaml; do
	[ -f "$K8S/$f" ] || fail "deploy/k8s/$f is missing"
done

# The scripts run as user baton, as in the pod; the checkout may not be
# readable by baton (a CI clone under /root), so they run from a copy.
mkdir -p "$T/bin" "$T/tmp"
cp "$K8S/entrypoint.sh" "$K8S/role-label.sh" "$T/bin/"
chmod 755 "$T/bin" "$T/bin/entrypoint.sh" "$T/bin/role-label.sh"
chown "$BATON_USER:" "$T/tmp"

# ---------------------------------------------------------------- 1. manifests
log "1. manifests"
cat >"$T/check_manifests.py" <<'PYEOF'
import glob, os, re, sys
import yaml

k8s, repo, out_dir = sys.argv[1:4]

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

def ok(msg):
    print("PASS: " + msg)

docs = {}   # (kind, name) -> doc
files = {}  # file -> [docs]
for path in sorted(glob.glob(os.path.join(k8s, "*.yaml"))):
    name = os.path.basename(path)
    try:
        with open(path) as f:
            ds = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        fail("%s does not parse: %s" % (name, e))
    if not ds:
        fail("%s holds no document" % name)
    files[name] = ds
    for d in ds:
        for k in ("apiVersion", "kind"):
            if k not in d:
                fail("%s: a document without %s" % (name, k))
        if d["kind"] == "Kustomization":
            continue
        if "metadata" not in d:
            fail("%s: a %s without metadata" % (name, d["kind"]))
        if "name" not in d["metadata"]:
            fail("%s: a %s without metadata.name" % (name, d["kind"]))
        if "namespace" in d["metadata"]:
            fail("%s: %s/%s names a namespace; the manifests must apply to any" % (name, d["kind"], d["metadata"]["name"]))
        docs[(d["kind"], d["metadata"]["name"])] = d
ok("%d YAML files parse (%s), no document names a namespace" % (len(files), ", ".join(sorted(files))))

def one(kind):
    found = [d for (k, _), d in docs.items() if k == kind]
    if len(found) != 1:
        fail("expected one %s, found %d" % (kind, len(found)))
    return found[0]

def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

# kustomization: lists every manifest but the Secret example, and only files that exist
kust = files.get("kustomization.yaml", [None])[0]
if kust is None:
    fail("kustomization.yaml is missing")
res = kust.get("resources", [])
for r in res:
    if not os.path.isfile(os.path.join(k8s, r)):
        fail("kustomization.yaml lists %s, which does not exist" % r)
for name in files:
    if name == "kustomization.yaml":
        continue
    if "example" in name:
        if name in res:
            fail("kustomization.yaml applies %s: `kubectl apply -k` would overwrite real passwords" % name)
    elif name not in res:
        fail("kustomization.yaml does not list %s" % name)
ok("kustomization.yaml lists %s, not the Secret example" % ", ".join(res))

sts = one("StatefulSet")
spec = sts["spec"]
if spec.get("replicas") != 3:
    fail("StatefulSet replicas: expected 3, got %r" % spec.get("replicas"))
tmpl = spec["template"]
labels = tmpl["metadata"]["labels"]
if not matches(spec["selector"]["matchLabels"], labels):
    fail("StatefulSet selector %r does not match the pod labels %r" % (spec["selector"]["matchLabels"], labels))
if "role" in labels:
    fail("the pod template sets the role label: only the callback may (a new pod must not claim primary)")
svc_name = spec.get("serviceName")
headless = docs.get(("Service", svc_name))
if headless is None or headless["spec"].get("clusterIP") != "None":
    fail("StatefulSet serviceName %r is not a headless Service (clusterIP: None)" % svc_name)
if headless["spec"].get("publishNotReadyAddresses") is not True:
    fail("headless Service %s: publishNotReadyAddresses must be true (members starting up must find each other)" % svc_name)
if not matches(headless["spec"]["selector"], labels):
    fail("headless Service selector does not match the pods")
ok("StatefulSet: 3 replicas, serviceName %s is headless and publishes not-ready pods" % svc_name)
if spec.get("podManagementPolicy") != "Parallel":
    fail("podManagementPolicy: expected Parallel (members must not wait for baton-0 to be ready), got %r" % spec.get("podManagementPolicy"))

pod = tmpl["spec"]
conts = pod["containers"]
if len(conts) != 1:
    fail("expected one container, found %d" % len(conts))
c = conts[0]
env = {e["name"]: e for e in c.get("env", [])}
def env_value(n):
    e = env.get(n)
    return None if e is None else e.get("value")

vcts = spec.get("volumeClaimTemplates") or []
if not vcts:
    fail("StatefulSet has no volumeClaimTemplates")
vct = vcts[0]
if "ReadWriteOnce" not in vct["spec"].get("accessModes", []) or "storage" not in vct["spec"]["resources"]["requests"]:
    fail("volume claim %s: expected ReadWriteOnce with a storage request" % vct["metadata"]["name"])
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
data_mount = mounts.get(vct["metadata"]["name"])
if data_mount is None:
    fail("the container does not mount the claim %s" % vct["metadata"]["name"])
pgdata = env_value("PGDATA")
if not pgdata or not pgdata.startswith(data_mount.rstrip("/") + "/"):
    fail("PGDATA=%r is not below the volume's mount %s" % (pgdata, data_mount))
ok("volume claim %s mounted at %s holds PGDATA=%s" % (vct["metadata"]["name"], data_mount, pgdata))

def field_ref(n, path):
    e = env.get(n)
    if not e or e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != path:
        fail("env %s must come from the downward API fieldRef %s, got %r" % (n, path, e))
field_ref("POD_NAME", "metadata.name")
field_ref("POD_IP", "status.podIP")
ok("POD_NAME from fieldRef metadata.name, POD_IP from status.podIP")

cms = {n: d for (k, n), d in docs.items() if k == "ConfigMap"}
def from_configmap(n, check=None):
    e = env.get(n)
    ref = (e or {}).get("valueFrom", {}).get("configMapKeyRef")
    if not ref:
        fail("env %s must come from a ConfigMap (configMapKeyRef), got %r" % (n, e))
    cm = cms.get(ref["name"])
    if cm is None or ref["key"] not in cm.get("data", {}):
        fail("env %s names ConfigMap %s key %s, which the manifests do not define" % (n, ref["name"], ref["key"]))
    v = cm["data"][ref["key"]]
    if check:
        check(v)
    return v
def check_hosts(v):
    for h in re.split(r"[,\s]+", v.strip()):
        if not re.fullmatch(r"(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}", h):
            fail("ConfigMap etcd endpoint %r is not host:port" % h)
hosts = from_configmap("BATON_ETCD_HOSTS", check_hosts)
scope = from_configmap("BATON_SCOPE")
ok("BATON_ETCD_HOSTS (%s) and BATON_SCOPE (%s) come from the ConfigMap" % (hosts, scope))

secrets = {}
for name, ds in files.items():
    for d in ds:
        if d["kind"] == "Secret":
            secrets[d["metadata"]["name"]] = d
for n in ("BATON_SUPERUSER_PASSWORD", "BATON_REPLICATION_PASSWORD"):
    ref = env.get(n, {}).get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        fail("env %s must come from a Secret (secretKeyRef)" % n)
    s = secrets.get(ref["name"])
    if s is None or ref["key"] not in s.get("stringData", s.get("data", {})):
        fail("env %s names Secret %s key %s, which secret.example.yaml does not show" % (n, ref["name"], ref["key"]))
ok("passwords come from Secret %s" % ref["name"])
for n in ("POD_NAME", "POD_IP", "BATON_SCOPE", "BATON_ETCD_HOSTS", "BATON_SUPERUSER_PASSWORD",
          "BATON_REPLICATION_PASSWORD", "PGDATA"):
    if n not in env:
        fail("env %s, which the entrypoint requires, is not set" % n)

ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
api_port = int(env_value("BATON_API_PORT") or 8008)
pg_port = int(env_value("BATON_PG_PORT") or 5432)
if ports.get("api") != api_port or ports.get("postgresql") != pg_port:
    fail("container ports %r do not match BATON_API_PORT=%d and BATON_PG_PORT=%d" % (ports, api_port, pg_port))
def probe(kind, path):
    p = c.get(kind)
    if not p or "httpGet" not in p:
        fail("%s: expected an httpGet probe" % kind)
    g = p["httpGet"]
    port = ports.get(g["port"], g["port"])
    if g.get("path") != path or port != api_port:
        fail("%s: expected GET %s on the API port %d, got %s on %r" % (kind, path, api_port, g.get("path"), g["port"]))
    if g.get("scheme", "HTTP") != "HTTPS":
        fail("%s: scheme %s, but the REST API serves HTTPS only (BATON_API_CERTFILE)" % (kind, g.get("scheme", "HTTP")))
probe("livenessProbe", "/liveness")
probe("readinessProbe", "/readiness")
if "startupProbe" in c:
    probe("startupProbe", "/liveness")
ok("probes: liveness GET /liveness, readiness GET /readiness over HTTPS on port %d" % api_port)

# The REST API ships protected: credentials from the Secret, the certificate,
# its key and the CA from a Secret volume that secret.example.yaml shows.
for n in ("BATON_API_USERNAME", "BATON_API_PASSWORD"):
    ref = env.get(n, {}).get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        fail("env %s must come from a Secret (secretKeyRef)" % n)
    s = secrets.get(ref["name"])
    if s is None or ref["key"] not in s.get("stringData", s.get("data", {})):
        fail("env %s names Secret %s key %s, which secret.example.yaml does not show" % (n, ref["name"], ref["key"]))
if "BATON_INSECURE_OPEN_API" in env:
    fail("the StatefulSet sets BATON_INSECURE_OPEN_API: the shipped manifests must run protected")
vols = {v["name"]: v for v in pod.get("volumes", [])}
for n in ("BATON_API_CERTFILE", "BATON_API_KEYFILE", "BATON_API_CAFILE"):
    v = env_value(n)
    if not v:
        fail("env %s is not set to a file" % n)
    vol = [name for name, m in mounts.items() if v.startswith(m.rstrip("/") + "/")]
    sec = vols.get(vol[0], {}).get("secret") if vol else None
    if not sec:
        fail("env %s=%s is not in a mounted Secret volume" % (n, v))
    s = secrets.get(sec["secretName"])
    key = os.path.basename(v)
    if s is None or key not in s.get("stringData", s.get("data", {})):
        fail("env %s: Secret %s key %s is not shown in secret.example.yaml" % (n, sec["secretName"], key))
    mode = sec.get("defaultMode", 0o644)
    if n == "BATON_API_KEYFILE" and mode & 0o007:
        fail("the Secret volume of %s is readable by others (defaultMode %o)" % (n, mode))
host = env_value("BATON_API_CONNECT_HOST") or ""
if ".%s." % svc_name not in host:
    fail("BATON_API_CONNECT_HOST=%r does not use the headless Service %s (the name the certificate covers)" % (host, svc_name))
ok("REST API: credentials from Secret %s, TLS files from Secret %s, api_url host %s" %
   (env["BATON_API_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"], sec["secretName"], host))

# Security: Postgres refuses root; the uid must be the image's postgres.
psc = pod.get("securityContext", {})
csc = c.get("securityContext", {})
uid = csc.get("runAsUser", psc.get("runAsUser"))
if psc.get("runAsNonRoot", csc.get("runAsNonRoot")) is not True or not uid:
    fail("securityContext: runAsNonRoot must be true with a non-zero runAsUser, got %r / %r" % (psc, csc))
with open(os.path.join(k8s, "Dockerfile")) as f:
    m = re.search(r"^USER\s+(\d+)", f.read(), re.M)
if not m or int(m.group(1)) != uid:
    fail("runAsUser %r is not the Dockerfile's USER %s" % (uid, m.group(1) if m else None))
if psc.get("fsGroup") is None:
    fail("securityContext.fsGroup is not set: the volume would not be writable by uid %d" % uid)
if csc.get("allowPrivilegeEscalation") is not False:
    fail("container securityContext.allowPrivilegeEscalation must be false")
if csc.get("readOnlyRootFilesystem"):
    cfg = env_value("BATON_CONFIG_FILE") or "/etc/baton/baton.conf"
    for need in (os.path.dirname(cfg), "/tmp"):
        if need not in mounts.values():
            fail("readOnlyRootFilesystem but %s (config or socket/temp dir) is not a mounted volume" % need)
ok("runs as uid %d (the image's USER), non-root, fsGroup %d" % (uid, psc["fsGroup"]))

# The grace period must outlast a primary's handover: the agent's fast stop
# timeout (agent/loop_internal.h STOP_TIMEOUT) plus the checkpoint and the key release.
with open(os.path.join(repo, "agent", "loop.c")) as f:
    m = re.search(r"#define\s+STOP_TIMEOUT\s+([0-9.]+)", f.read())
stop_timeout = float(m.group(1)) if m else 30.0
tgps = pod.get("terminationGracePeriodSeconds", 30)
if tgps < stop_timeout + 10:
    fail("terminationGracePeriodSeconds %s < STOP_TIMEOUT %.0f s + 10 s: the kubelet would SIGKILL a handover" % (tgps, stop_timeout))
ok("terminationGracePeriodSeconds %d >= stop timeout %.0f s + 10 s" % (tgps, stop_timeout))

# RBAC: the pods' service account may patch the pods.
sa_name = pod.get("serviceAccountName")
if ("ServiceAccount", sa_name) not in docs:
    fail("serviceAccountName %r is not defined" % sa_name)
if pod.get("automountServiceAccountToken") is False:
    fail("automountServiceAccountToken is false: the callback has no token")
granted = None
for (k, n), rb in docs.items():
    if k != "RoleBinding":
        continue
    if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name for s in rb.get("subjects", [])):
        continue
    role = docs.get((rb["roleRef"]["kind"], rb["roleRef"]["name"]))
    if role is None:
        fail("RoleBinding %s refers to %s %s, which is not defined" % (n, rb["roleRef"]["kind"], rb["roleRef"]["name"]))
    for rule in role.get("rules", []):
        if "" in rule.get("apiGroups", []) and "pods" in rule.get("resources", []) and "patch" in rule.get("verbs", []):
            names = rule.get("resourceNames")
            want = ["%s-%d" % (sts["metadata"]["name"], i) for i in range(spec["replicas"])]
            if names is not None and not all(w in names for w in want):
                fail("Role %s allows patch only on %r, not on every pod %r" % (role["metadata"]["name"], names, want))
            granted = role["metadata"]["name"]
if not granted:
    fail("no Role bound to service account %s allows patch on pods" % sa_name)
ok("service account %s may patch the pods (Role %s)" % (sa_name, granted))

# Services: primary selects role=primary, replicas role=replica, both the pods.
def role_service(role):
    found = []
    for (k, n), d in docs.items():
        if k == "Service" and d["spec"].get("selector", {}).get("role") == role:
            sel = dict(d["spec"]["selector"])
            del sel["role"]
            if not sel or not matches(sel, labels):
                fail("Service %s: its selector %r does not pick the StatefulSet's pods" % (n, d["spec"]["selector"]))
            for p in d["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                if ports.get(t, t) != pg_port:
                    fail("Service %s targets port %r, not Postgres's %d" % (n, t, pg_port))
            found.append(n)
    if len(found) != 1:
        fail("expected one Service selecting role=%s, found %r" % (role, found))
    return found[0]
ok("Service %s selects role=primary, %s role=replica" % (role_service("primary"), role_service("replica")))

pdb = one("PodDisruptionBudget")
if pdb["apiVersion"] != "policy/v1":
    fail("PodDisruptionBudget apiVersion %s: policy/v1 is the one current clusters serve" % pdb["apiVersion"])
if not matches(pdb["spec"]["selector"]["matchLabels"], labels):
    fail("the PodDisruptionBudget's selector does not match the pods")
mu, ma = pdb["spec"].get("maxUnavailable"), pdb["spec"].get("minAvailable")
if not (mu == 1 or (isinstance(ma, int) and ma == spec["replicas"] - 1)):
    fail("PodDisruptionBudget: expected maxUnavailable 1 or minAvailable %d (one member at a time, drains possible), got %r/%r"
         % (spec["replicas"] - 1, mu, ma))
ok("PodDisruptionBudget lets one member go at a time")

# The image the StatefulSet runs is the one kustomization.yaml overrides.
img = c["image"].split(":")[0]
if img not in [i["name"] for i in kust.get("images", [])]:
    fail("kustomization.yaml images does not name the container's image %s" % img)

# ---- the Dockerfile
lines, cur = [], ""
with open(os.path.join(k8s, "Dockerfile")) as f:
    for raw in f:
        s = raw.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
stages, copies, entry = [], [], None
for l in lines:
    w = l.split()
    if w[0].upper() == "FROM":
        stages.append({"from": w[1], "run": ""})
    elif w[0].upper() == "RUN":
        stages[-1]["run"] += " " + l[4:]
    elif w[0].upper() == "COPY" and not any(x.startswith("--from") for x in w):
        copies.append((w[1:-1], w[-1]))
    elif w[0].upper() == "ENTRYPOINT":
        entry = yaml.safe_load(l[len("ENTRYPOINT"):])
if len(stages) < 2 or stages[0]["from"] != "debian:bookworm" or stages[-1]["from"] != "debian:bookworm-slim":
    fail("Dockerfile: expected a debian:bookworm build stage and a debian:bookworm-slim runtime stage, got %r" % [s["from"] for s in stages])
for srcs, dest in copies:
    for s in srcs:
        if not os.path.exists(os.path.join(repo, s)):
            fail("Dockerfile: COPY %s: no such file in the repository" % s)
dests = {os.path.basename(s): d for srcs, d in copies for s in srcs}
if not entry or dests.get("entrypoint.sh") not in entry:
    fail("Dockerfile: ENTRYPOINT %r does not run the copied entrypoint.sh (%s)" % (entry, dests.get("entrypoint.sh")))
with open(os.path.join(k8s, "entrypoint.sh")) as f:
    m = re.search(r"BATON_ROLE_CHANGE_SCRIPT-([^}]+)\}", f.read())
if not m or dests.get("role-label.sh") != m.group(1):
    fail("the entrypoint's default callback %r is not where the Dockerfile puts role-label.sh (%r)" % (m and m.group(1), dests.get("role-label.sh")))
def packages(run):
    out = []
    for part in re.findall(r"apt-get install((?:\s+(?!&&)\S+)+)", run):
        out += [p for p in part.split() if not p.startswith("-")]
    return out
build_pkgs, run_pkgs = packages(stages[0]["run"]), packages(stages[-1]["run"])
if "postgresql-15" not in run_pkgs or "curl" not in run_pkgs:
    fail("runtime stage must install postgresql-15 and curl (for role-label.sh), got %r" % run_pkgs)
with open(os.path.join(out_dir, "build_pkgs"), "w") as f:
    f.write("\n".join(build_pkgs) + "\n")
with open(os.path.join(out_dir, "run_pkgs"), "w") as f:
    f.write("\n".join(run_pkgs) + "\n")
with open(os.path.join(out_dir, "configure_args"), "w") as f:
    f.write(stages[0]["run"] + "\n")
ok("Dockerfile: stages %s; COPY sources exist; ENTRYPOINT runs %s; callback at %s"
   % (" -> ".join(s["from"] for s in stages), dests["entrypoint.sh"], dests["role-label.sh"]))
PYEOF
$PY "$T/check_manifests.py" "$K8S" "$repo" "$T" || fail "manifest checks (above)"
grep -qF '\"labels\":{\"role\":' "$K8S/role-label.sh" || fail "role-label.sh does not set the label 'role' the Services select"

# ---------------------------------------------------------------- 2. image packages
log "2. the Dockerfile's packages against configure.ac and this build's binaries"
# pkg_of FILE: the Debian package holding FILE (usrmerge: /lib and /usr/lib).
pkg_of() {
	local f=$1 c p
	for c in "$f" "$(readlink -f "$f")" "/usr${f#/usr}" "${f#/usr}"; do
		p=$(dpkg -S "$c" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$p" ] && { echo "$p"; return 0; }
	done
	return 1
}
# Modules configure requires (two-argument PKG_CHECK_MODULES, no fallback).
mods=$(sed -n 's/^PKG_CHECK_MODULES(\[[A-Z_]*\], *\[\([a-z0-9_.-]*\)[^]]*\])$/\1/p' "$repo/configure.ac")
[ -n "$mods" ] || fail "found no PKG_CHECK_MODULES in configure.ac (test bug?)"
for m in $mods; do
	pc="$(pkg-config --variable=pcfiledir "$m" 2>/dev/null)/$m.pc"
	p=$(pkg_of "$pc") || fail "cannot tell which package provides pkg-config module $m ($pc)"
	grep -qx "$p" "$T/build_pkgs" || fail "configure requires $m (package $p), which the Dockerfile's build stage does not install"
done
pass "build stage installs the package of every module configure requires: ${mods//$'\n'/ }"
grep -q -- '--with-systemd=no' "$T/configure_args" && no_systemd=1 || no_systemd=0
for b in baton batonctl; do
	needed=$(readelf -d "$BATON_BUILD/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	[ -n "$needed" ] || fail "readelf found no shared library in $BATON_BUILD/$b"
	checked=
	for lib in $needed; do
		case $lib in
		# The sanitizer runtimes come from this build's CFLAGS, not the image's.
		libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*) continue ;;
		# The image configures --with-systemd=no: there is no systemd in a pod.
		libsystemd.so*) [ "$no_systemd" = 1 ] && continue ;;
		esac
		path=$(ldd "$BATON_BUILD/$b" | awk -v l="$lib" '$1 == l { print $3 }')
		[ -n "$path" ] || fail "$b: ldd does not resolve $lib"
		p=$(pkg_of "$path") || fail "$b: cannot tell which package provides $path"
		# libc6 is in every Debian image (the essential packages need it).
		checked+=" $lib ($p)"
		[ "$p" = libc6 ] && continue
		grep -qx "$p" "$T/run_pkgs" || fail "$b links $lib (package $p), which the Dockerfile's runtime stage does not install"
	done
	pass "runtime stage installs the package of every library $b links:$checked"
done

# ---------------------------------------------------------------- 3. entrypoint
log "3. the entrypoint renders what baton accepts"
mkdir -p "$T/render"
chown "$BATON_USER:" "$T/render"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$T/api.key" -out "$T/api.crt" 2>/dev/null ||
	fail "openssl could not make a test certificate"
chown "$BATON_USER:" "$T/api.key" "$T/api.crt"
CONF=$T/render/baton.conf
SU_PW='s"q\uote$x`y'
# good_env: the environment of pod baton-1 as statefulset.yaml gives it.
good_env() {
	printf '%s\n' PATH=/usr/sbin:/usr/bin:/sbin:/bin POD_NAME=baton-1 POD_IP=10.0.0.7 \
		BATON_SCOPE=demo "BATON_ETCD_HOSTS=etcd-0.etcd:2379, etcd-1.etcd:2379,[fd00::5]:2379" \
		"BATON_SUPERUSER_PASSWORD=$SU_PW" BATON_REPLICATION_PASSWORD=repl-pw \
		"PGDATA=$T/render/pgdata" "BATON_CONFIG_FILE=$CONF" \
		"BATON_ROLE_CHANGE_SCRIPT=$T/bin/role-label.sh" "BATON_PG_PARAMETERS=shared_buffers=64MB work_mem=8MB" \
		"BATON_PG_BIN_DIR=$PG_BIN" BATON_API_USERNAME=admin BATON_API_PASSWORD=api-pw \
		"BATON_API_CERTFILE=$T/api.crt" "BATON_API_KEYFILE=$T/api.key" "BATON_API_CAFILE=$T/api.crt"
}
# render [VAR=VALUE | -VAR]...: runs the entrypoint --render-only as baton
# with good_env changed as given (-VAR unsets VAR); sets RC, OUT, ERR.
render() {
	local -a envs=()
	local line a skip
	while IFS= read -r line; do
		skip=0
		for a in "$@"; do
			[ "${a#-}" = "${line%%=*}" ] || [ "${a%%=*}" = "${line%%=*}" ] && skip=1
		done
		[ "$skip" = 1 ] || envs+=("$line")
	done < <(good_env)
	for a in "$@"; do
		[ "${a#-}" != "$a" ] || envs+=("$a")
	done
	RC=0
	OUT=$(as_baton env -i "${envs[@]}" sh "$T/bin/entrypoint.sh" --render-only 2>"$T/render.err") || RC=$?
	ERR=$(cat "$T/render.err")
}
baton_test() { as_baton "$BATON_BUILD/baton" -t -c "$1" 2>&1; }

render
[ "$RC" = 0 ] || fail "the entrypoint refused a good environment (exit $RC): $ERR"
assert_eq "$CONF" "$OUT" "--render-only prints the file's path"
out=$(baton_test "$CONF") || fail "baton -t refused the rendered file: $out"$'\n'"$(cat "$CONF")"
pass "baton -t: $out"
assert_eq 600 "$(stat -c %a "$CONF")" "the rendered file (it holds passwords) has mode"
for want in 'name = "baton-1";' 'scope = "demo";' \
	'hosts = [ "etcd-0.etcd:2379", "etcd-1.etcd:2379", "[fd00::5]:2379" ];' \
	'listen = "0.0.0.0:8008";' 'connect_address = "10.0.0.7:8008";' 'connect_address = "10.0.0.7:5432";' \
	'password = "s\"q\\uote$x`y";' 'shared_buffers = "64MB";' "on_role_change = \"$T/bin/role-label.sh\";" \
	"data_dir = \"$T/render/pgdata\";" "certfile = \"$T/api.crt\";" "cafile = \"$T/api.crt\";" \
	'authentication = { username = "admin"; password = "api-pw"; };'; do
	grep -qF -- "$want" "$CONF" || fail "the rendered file lacks: $want"$'\n'"$(cat "$CONF")"
done
pass "the rendered file holds the pod's name, address, etcd hosts, an escaped password, parameters, the callback"

render POD_IP=fd00::7 BATON_API_CERTFILE="$T/api.crt" BATON_API_KEYFILE="$T/api.key" \
	BATON_ETCD_USERNAME=baton BATON_ETCD_PASSWORD=etcd-pw BATON_TTL=30 BATON_LOOP_WAIT=10 BATON_RETRY_TIMEOUT=10
[ "$RC" = 0 ] || fail "the entrypoint refused an IPv6 environment with TLS (exit $RC): $ERR"
out=$(baton_test "$CONF") || fail "baton -t refused the IPv6/TLS file: $out"$'\n'"$(cat "$CONF")"
for want in 'listen = "[::]:8008";' 'connect_address = "[fd00::7]:5432";' "certfile = \"$T/api.crt\";" 'ttl = 30;'; do
	grep -qF -- "$want" "$CONF" || fail "the IPv6/TLS file lacks: $want"$'\n'"$(cat "$CONF")"
done
pass "IPv6 pod address and REST TLS render a file baton accepts: $out"

render BATON_API_CONNECT_HOST=baton-1.baton.db.svc
[ "$RC" = 0 ] || fail "the entrypoint refused BATON_API_CONNECT_HOST (exit $RC): $ERR"
grep -qF 'connect_address = "baton-1.baton.db.svc:8008";' "$CONF" || fail "the api_url host is not BATON_API_CONNECT_HOST: $(cat "$CONF")"
grep -qF 'connect_address = "10.0.0.7:5432";' "$CONF" || fail "Postgres's connect address is not the pod IP: $(cat "$CONF")"
pass "BATON_API_CONNECT_HOST names the REST API's host; Postgres keeps the pod IP"

# Unprotected only on request, with a name that says so.
render -BATON_API_USERNAME -BATON_API_PASSWORD -BATON_API_CERTFILE -BATON_API_KEYFILE -BATON_API_CAFILE BATON_INSECURE_OPEN_API=true
[ "$RC" = 0 ] || fail "the entrypoint refused BATON_INSECURE_OPEN_API=true without credentials (exit $RC): $ERR"
grep -qF 'allow_unauthenticated_writes = true;' "$CONF" || fail "the insecure file does not open writes explicitly: $(cat "$CONF")"
out=$(baton_test "$CONF") || fail "baton -t refused the insecure file: $out"$'\n'"$(cat "$CONF")"
pass "BATON_INSECURE_OPEN_API=true renders an explicitly open API: $out"

# Bad environments: exit 2, the variable named, nothing written, no password echoed.
cases=(
	"-POD_NAME|POD_NAME"
	"POD_NAME=baton 1|POD_NAME"
	"-POD_IP|POD_IP"
	"POD_IP=pod-ip|POD_IP"
	"-BATON_SCOPE|BATON_SCOPE"
	"-BATON_ETCD_HOSTS|BATON_ETCD_HOSTS"
	"BATON_ETCD_HOSTS=etcd-0:2379,etcd-1|BATON_ETCD_HOSTS.*etcd-1.*port"
	"BATON_ETCD_HOSTS=http://etcd-0:2379|BATON_ETCD_HOSTS.*scheme"
	"BATON_ETCD_HOSTS=fd00::1:2379|BATON_ETCD_HOSTS.*brackets"
	"BATON_ETCD_HOSTS=etcd-0:70000|BATON_ETCD_HOSTS.*65535"
	"-BATON_SUPERUSER_PASSWORD|BATON_SUPERUSER_PASSWORD"
	"BATON_REPLICATION_PASSWORD=line1"$'\n'"line2-secret|BATON_REPLICATION_PASSWORD.*control"
	"-PGDATA|PGDATA"
	"PGDATA=data/pgdata|PGDATA.*absolute"
	"PGDATA=$T/no-such-volume/pgdata|PGDATA.*volume"
	"BATON_TTL=ten|BATON_TTL"
	"BATON_PG_PORT=0|BATON_PG_PORT"
	"BATON_API_PORT=5432|BATON_PG_PORT and BATON_API_PORT"
	"BATON_ETCD_CERT=$T/api.crt|BATON_ETCD_CERT.*BATON_ETCD_KEY"
	"BATON_ETCD_CACERT=$T/missing.pem|BATON_ETCD_CACERT.*readable"
	"-BATON_API_PASSWORD|BATON_API_PASSWORD.*credentials.*BATON_INSECURE_OPEN_API"
	"-BATON_API_USERNAME|BATON_API_USERNAME.*credentials"
	"-BATON_API_CERTFILE|BATON_API_CERTFILE.*TLS"
	"-BATON_API_KEYFILE|BATON_API_KEYFILE"
	"BATON_API_CAFILE=$T/missing.pem|BATON_API_CAFILE.*readable"
	"BATON_API_CONNECT_HOST=a/b|BATON_API_CONNECT_HOST"
	"BATON_INSECURE_OPEN_API=yes|BATON_INSECURE_OPEN_API.*true or false"
	"BATON_PG_PARAMETERS=shared-buffers=1GB|BATON_PG_PARAMETERS.*shared-buffers"
	"BATON_ALLOWED_CIDRS=10.0.0.0|BATON_ALLOWED_CIDRS.*prefix"
	"BATON_ROLE_CHANGE_SCRIPT=$T/bin/missing.sh|BATON_ROLE_CHANGE_SCRIPT.*executable"
	"BATON_LOG_LEVEL=loud|BATON_LOG_LEVEL"
	"BATON_CONFIG_FILE=$T/no-such-dir/baton.conf|BATON_CONFIG_FILE.*writable"
)
for c in "${cases[@]}"; do
	setting=${c%%|*}
	want=${c#*|}
	rm -f "$CONF"
	render "$setting"
	what=$(printf '%s' "$setting" | head -n1)
	[ "$RC" = 2 ] || fail "env '$what': exit $RC, expected 2 (stderr: $ERR)"
	grep -Eq -- "$want" <<<"$ERR" || fail "env '$what': the error does not match /$want/: $ERR"
	[ "$(wc -l <<<"$ERR")" = 1 ] || fail "env '$what': expected one error line, got: $ERR"
	[ ! -e "$CONF" ] || fail "env '$what': a config file was written anyway"
	ls "$T/render"/baton.conf.* >/dev/null 2>&1 && fail "env '$what': a temporary file was left behind"
	grep -qF -e 'line2-secret' -e 'repl-pw' -e 'uote$x' -e 'api-pw' <<<"$ERR" && fail "env '$what': the error echoes a password: $ERR"
	pass "env '$what' -> exit 2: $ERR"
done

# What only baton checks (the timing rule) stops the container too: the
# entrypoint execs baton, whose error names the file and the keys.
rc=0
mapfile -t envs < <(good_env | grep -v -e '^BATON_ETCD_HOSTS=' -e '^BATON_SUPERUSER_PASSWORD=')
err=$(as_baton env -i "${envs[@]}" \
	BATON_ETCD_HOSTS=127.0.0.1:1 BATON_SUPERUSER_PASSWORD=pw BATON_TTL=3 BATON_LOOP_WAIT=1 BATON_RETRY_TIMEOUT=2 \
	BATON_BIN="$BATON_BUILD/baton" timeout 20 sh "$T/bin/entrypoint.sh" 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "entrypoint + baton with ttl 3 / loop_wait 1 / retry_timeout 2: exit $rc, expected 2: $err"
grep -q "baton.conf.*ttl" <<<"$err" || fail "baton's error does not name the file and ttl: $err"
[ -e "$T/render/pgdata" ] && fail "a data directory was created although the configuration is invalid"
pass "the entrypoint execs baton, which refuses the timing rule: $(tail -n1 <<<"$err")"

# ---------------------------------------------------------------- 4. role-label.sh
log "4. role-label.sh against a fake API server"
cat >"$T/fake_api.py" <<'PYEOF'
# A stand-in for the Kubernetes API server: HTTPS on loopback. Records every
# request as one JSON line in LOG and answers with the status in the file
# MODE (200 by default; 403 and 500 carry a Status object like the real one).
import http.server, json, ssl, sys

port, cert, key, log_path, mode_path = sys.argv[1:6]

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        rec = {"method": self.command, "path": self.path,
               "authorization": self.headers.get("Authorization"),
               "content_type": self.headers.get("Content-Type"), "body": body}
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        try:
            with open(mode_path) as f:
                code = int(f.read().strip() or 200)
        except (OSError, ValueError):
            code = 200
        if code == 200:
            out = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": self.path.rsplit("/", 1)[-1]}}
        else:
            msg = ('pods "%s" is forbidden: User "system:serviceaccount:test:baton" cannot patch resource "pods"'
                   % self.path.rsplit("/", 1)[-1]) if code == 403 else "etcdserver: request timed out"
            out = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code}
        data = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = do_PUT = answer

    def log_message(self, fmt, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PYEOF
SA=$T/sa
mkdir -p "$SA" "$T/sa-wrong"
cp "$T/api.crt" "$SA/ca.crt"
echo "test-token-$$" >"$SA/token"
echo k8s-test >"$SA/namespace"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/sa-wrong/key.pem" -out "$T/sa-wrong/ca.crt" 2>/dev/null || fail "openssl failed"
cp "$SA/token" "$SA/namespace" "$T/sa-wrong/"
chown -R "$BATON_USER:" "$SA" "$T/sa-wrong"
REQ=$T/api-requests.jsonl
MODE=$T/api-mode
echo 200 >"$MODE"
pick_port FAKE_API_PORT
bg_start fake_api "$PY" "$T/fake_api.py" "$FAKE_API_PORT" "$T/api.crt" "$T/api.key" "$REQ" "$MODE"
fake_api_up() { curl -s -o /dev/null --max-time 2 --cacert "$SA/ca.crt" "https://127.0.0.1:$FAKE_API_PORT/healthz"; }
wait_for 20 "the fake API server answers on port $FAKE_API_PORT" fake_api_up
: >"$REQ"
API_URL=https://127.0.0.1:$FAKE_API_PORT

# label POD ARGS...: role-label.sh as baton, as a pod would run it; RC, OUT.
label() {
	local pod=$1
	shift
	RC=0
	OUT=$(as_baton env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin POD_NAME="$pod" TMPDIR="$T/tmp" \
		BATON_K8S_SA_DIR="${SA_DIR:-$SA}" BATON_K8S_API_URL="$API_URL" BATON_K8S_RETRY_DELAY=0 \
		"$T/bin/role-label.sh" "$@" 2>&1) || RC=$?
}
n_requests() { wc -l <"$REQ"; }
last_request() { tail -n1 "$REQ"; }

# check_patch ACTION ROLE WANT_LABEL_JSON
check_patch() {
	local before r
	before=$(n_requests)
	label baton-2 "$1" "$2" demo
	[ "$RC" = 0 ] || fail "role-label.sh $1 $2: exit $RC: $OUT"
	assert_eq $((before + 1)) "$(n_requests)" "role-label.sh $1 $2 sent one request"
	r=$(last_request)
	assert_eq PATCH "$(jq -r .method <<<"$r")" "$1 $2: method"
	assert_eq /api/v1/namespaces/k8s-test/pods/baton-2 "$(jq -r .path <<<"$r")" "$1 $2: path"
	assert_eq "Bearer test-token-$$" "$(jq -r .authorization <<<"$r")" "$1 $2: Authorization header"
	assert_eq application/merge-patch+json "$(jq -r .content_type <<<"$r")" "$1 $2: Content-Type"
	assert_eq "$3" "$(jq -c '.body | fromjson' <<<"$r")" "$1 $2: body"
}
check_patch on_role_change primary '{"metadata":{"labels":{"role":"primary"}}}'
check_patch on_start replica '{"metadata":{"labels":{"role":"replica"}}}'
check_patch on_role_change demoted '{"metadata":{"labels":{"role":null}}}'
check_patch on_stop primary '{"metadata":{"labels":{"role":null}}}'
before=$(n_requests)
label baton-2 on_reload primary demo
[ "$RC" = 0 ] && [ "$(n_requests)" = "$before" ] || fail "on_reload: expected exit 0 and no request, got exit $RC, $(($(n_requests) - before)) request(s): $OUT"
pass "on_reload sends nothing: $OUT"

echo 403 >"$MODE"
before=$(n_requests)
label baton-2 on_role_change primary demo
[ "$RC" != 0 ] || fail "a 403 answer: exit 0, expected a failure: $OUT"
grep -q 403 <<<"$OUT" && grep -q 'patch' <<<"$OUT" && grep -q 'rbac.yaml' <<<"$OUT" ||
	fail "a 403 answer: the message does not say 403, patch and rbac.yaml: $OUT"
assert_eq $((before + 1)) "$(n_requests)" "a 403 is not retried"
grep -q "test-token-$$" <<<"$OUT" && fail "the error message shows the token: $OUT"
pass "403 -> exit $RC: $OUT"

echo 500 >"$MODE"
before=$(n_requests)
label baton-2 on_role_change primary demo
[ "$RC" != 0 ] || fail "500 answers: exit 0, expected a failure: $OUT"
assert_eq $((before + 3)) "$(n_requests)" "a 500 is retried, 3 attempts in all"
pass "500 -> exit $RC after 3 attempts: $(tail -n1 <<<"$OUT")"
echo 200 >"$MODE"

before=$(n_requests)
SA_DIR=$T/sa-wrong label baton-2 on_role_change primary demo
[ "$RC" != 0 ] || fail "an API server whose certificate the CA did not sign: exit 0: $OUT"
assert_eq "$before" "$(n_requests)" "no request reaches a server the CA does not vouch for"
pass "wrong CA -> exit $RC: $(tail -n1 <<<"$OUT")"

before=$(n_requests)
label "" on_role_change primary demo
[ "$RC" != 0 ] && grep -q POD_NAME <<<"$OUT" || fail "without POD_NAME: expected a failure naming it, got exit $RC: $OUT"
assert_eq "$before" "$(n_requests)" "without POD_NAME nothing is sent"

# ---------------------------------------------------------------- 5. end to end
log "5. three agents started through the entrypoint, labels on the fake API server"
etcd_start
rest_make_certs
: >"$REQ"
# k8s_agent_start N: member baton-(N-1), started as its pod would be (the
# entrypoint execs baton, so the PID is the agent's); log agent-nodeN.log.
k8s_agent_start() {
	local n=$1 pod=baton-$(($1 - 1)) extra=()
	[ -n "${PG_PORT[$n]:-}" ] || pick_port "PG_PORT[$n]"
	[ -n "${API_PORT[$n]:-}" ] || pick_port "API_PORT[$n]"
	[ "$n" -le "$N_NODES" ] || N_NODES=$n
	mkdir -p "$T/cfg$n"
	chown "$BATON_USER:" "$T/cfg$n"
	[ -z "${ASAN_OPTIONS:-}" ] || extra+=("ASAN_OPTIONS=$ASAN_OPTIONS")
	[ -z "${UBSAN_OPTIONS:-}" ] || extra+=("UBSAN_OPTIONS=$UBSAN_OPTIONS")
	printf -- '----- start of %s (node%s) at %s\n' "$pod" "$n" "$(date +%T.%3N)" >>"$T/agent-node$n.log"
	chown "$BATON_USER:" "$T/agent-node$n.log"
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin "${extra[@]}" TMPDIR="$T/tmp" \
		POD_NAME="$pod" POD_IP=127.0.0.1 BATON_LISTEN_ADDRESS=127.0.0.1 \
		BATON_SCOPE="$SCOPE" BATON_NAMESPACE="$NAMESPACE" BATON_ETCD_HOSTS="127.0.0.1:$ETCD_PORT" \
		BATON_SUPERUSER_PASSWORD="$SU_PASSWORD" BATON_REPLICATION_PASSWORD="$REPL_PASSWORD" \
		PGDATA="$T/node$n" BATON_PG_PORT="${PG_PORT[$n]}" BATON_API_PORT="${API_PORT[$n]}" \
		BATON_SOCKET_DIR="$T" BATON_CONFIG_FILE="$T/cfg$n/baton.conf" BATON_PG_BIN_DIR="$PG_BIN" \
		BATON_TTL="$TTL" BATON_LOOP_WAIT="$LOOP_WAIT" BATON_RETRY_TIMEOUT="$RETRY_TIMEOUT" \
		BATON_PG_PARAMETERS="shared_buffers=32MB" BATON_ALLOWED_CIDRS=127.0.0.1/32 \
		BATON_ROLE_CHANGE_SCRIPT="$T/bin/role-label.sh" BATON_BIN="$BATON_BUILD/baton" \
		BATON_K8S_SA_DIR="$SA" BATON_K8S_API_URL="$API_URL" \
		BATON_API_USERNAME="$REST_USER" BATON_API_PASSWORD="$REST_PASSWORD" \
		BATON_API_CERTFILE="$REST_TLS_DIR/server.pem" BATON_API_KEYFILE="$REST_TLS_DIR/server-key.pem" \
		BATON_API_CAFILE="$REST_TLS_DIR/ca.pem" \
		sh "$T/bin/entrypoint.sh" >>"$T/agent-node$n.log" 2>&1 &
	AGENT_PID[$n]=$!
	log "started $pod (node$n, pid ${AGENT_PID[$n]}, pg ${PG_PORT[$n]}, api ${API_PORT[$n]})"
}
# pod_label POD: the role label of the last patch for POD ("null" if removed,
# "" if none yet).
pod_label() {
	jq -r --arg p "/api/v1/namespaces/k8s-test/pods/$1" \
		'select(.path == $p and .method == "PATCH") | .body | fromjson | .metadata.labels.role | tostring' "$REQ" |
		tail -n1
}
# labels_are LEADER PRIMARY_WANT OTHERS_WANT [SKIP]: the leader key names
# LEADER, its pod's label is PRIMARY_WANT, every other pod's (but SKIP's) OTHERS_WANT.
labels_are() {
	local leader=$1 i pod
	[ "$(leader_name)" = "$leader" ] || return 1
	for i in 0 1 2; do
		pod=baton-$i
		[ "$pod" = "${4:-}" ] && continue
		if [ "$pod" = "$leader" ]; then
			[ "$(pod_label "$pod")" = "$2" ] || return 1
		else
			[ "$(pod_label "$pod")" = "$3" ] || return 1
		fi
	done
}
labels_summary() { echo "baton-0=$(pod_label baton-0) baton-1=$(pod_label baton-1) baton-2=$(pod_label baton-2)"; }
has_leader() { [ -n "$(leader_name)" ]; }

for n in 1 2 3; do k8s_agent_start "$n"; done
wait_for 90 "a leader is elected" has_leader
leader=$(leader_name)
case $leader in baton-[012]) ;; *) fail "the leader key names '$leader', not a pod name" ;; esac
wait_for 90 "labels: $leader role=primary, the others role=replica" labels_are "$leader" primary replica
pass "after bootstrap: leader $leader; $(labels_summary)"
ln=$((${leader#baton-} + 1))
code=$(rest_code "$ln" /primary)
assert_eq 200 "$code" "the labelled primary answers /primary (what the Service's pod serves)"
grep -q 'rendered .*baton.conf for member' "$T/agent-node$ln.log" || fail "the entrypoint's start line is not in the agent's log"

log "graceful handover: SIGTERM to $leader's agent"
agent_stop "$ln"
assert_eq 0 "$AGENT_RC" "the leader's agent exits cleanly after SIGTERM"
new_leader() { local l; l=$(leader_name); [ -n "$l" ] && [ "$l" != "$leader" ]; }
wait_for 60 "another member takes the leader key" new_leader
leader2=$(leader_name)
wait_for 60 "labels: $leader2 role=primary, the remaining replica role=replica, $leader's removed" \
	labels_are "$leader2" primary replica "$leader"
# $leader's on_stop (label removed) may be killed as its agent exits (cb_free);
# its pod is terminating then, which takes it out of every Service anyway.
pass "after the handover: leader $leader2; $(labels_summary)"

log "restart $leader (as its pod would restart): it must come back role=replica"
k8s_agent_start "$ln"
wait_for 120 "labels: $leader2 role=primary, both others role=replica" labels_are "$leader2" primary replica
primaries=0
for i in 0 1 2; do [ "$(pod_label "baton-$i")" = primary ] && primaries=$((primaries + 1)); done
assert_eq 1 "$primaries" "pods labelled role=primary"
pass "after the rejoin: $(labels_summary)"
log "switchover back to $leader: $leader2 demotes in place (on_stop, on_start, on_role_change within a second)"
l2n=$((${leader2#baton-} + 1))
out=$(as_baton "$BATON_BUILD/batonctl" -c "$T/cfg$l2n/baton.conf" switchover --candidate "$leader" --force --wait 60 2>&1) ||
	fail "batonctl switchover --candidate $leader failed: $out"
log "batonctl: $out"
wait_for 60 "labels: $leader role=primary, both others role=replica" labels_are "$leader" primary replica
# Settled: no callback still running may change a label afterwards.
sleep 2
labels_are "$leader" primary replica || fail "the labels changed after settling: $(labels_summary)"
pass "after the switchover: $(labels_summary)"
grep -h 'callback.*role-label\|callback on_' "$T"/agent-node*.log | grep -i 'status [1-9]' &&
	fail "a callback failed (above)"
log "all callbacks exited 0; $(n_requests) requests reached the fake API server"

# Stop the agents while the fake API server still answers (the cleanup
# stops it first), as the kubelet would at a scale-down: clean exits.
for n in 1 2 3; do agent_signal "$n" TERM; done
for n in 1 2 3; do
	agent_wait_exit "$n" 40 || fail "baton-$((n - 1))'s agent still runs 40 s after SIGTERM"
	assert_eq 0 "$AGENT_RC" "baton-$((n - 1))'s agent exit status after SIGTERM"
done
