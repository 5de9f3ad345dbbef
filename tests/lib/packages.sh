# tests/lib/packages.sh - shared by tests/run.sh and deploy/demo.sh (sourced).
#
# Installs the Debian 12 packages baton needs to build and run its tests,
# but only when one of them is missing (checked with dpkg-query), so a re-run
# on a prepared machine touches neither the network nor apt's lists. Also
# creates the unprivileged user that runs Postgres and the agents, and copies
# a source tree into a work area that user owns (a CI clone may live under
# /root, which that user cannot read).

BATON_PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libcurl4-openssl-dev libjansson-dev libpq-dev libconfig-dev check libmicrohttpd-dev libgnutls28-dev
	etcd-server etcd-client postgresql-15
	iproute2 procps jq util-linux tar curl haproxy
	# batonctl import-patroni reads Patroni's YAML
	libyaml-dev
	# the REST API fuzz target (tests/fuzz/run.sh: libFuzzer) and check_api's TLS test
	clang libclang-rt-14-dev llvm-14 openssl
	# tests/format.sh --check (the tree as .clang-format writes it)
	clang-format
	# tests/chaos: network partitions by packet DROP inside the nodes' namespaces
	iptables
	# tests/chaos/stability.sh: its sampler reads the agents' /metrics over https
	libio-socket-ssl-perl
	# tests/integration/18_k8s_manifests.sh: parses deploy/k8s/*.yaml, fake Kubernetes API server
	python3-yaml
	# sd_notify (agent/sdnotify.c), 19_install: rendering the man pages, systemd-analyze verify of the unit
	libsystemd-dev groff-base systemd man-db
	# 32_systemd_unit: the unit under a booted systemd (systemd-nspawn)
	systemd-container
)

# Prints the packages of the list that are not installed.
pkg_missing() {
	local p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || echo "$p"
	done
}

# pkg_ensure [PKG...]: installs the missing ones of BATON_PACKAGES plus PKGs.
pkg_ensure() {
	local missing
	missing=$(pkg_missing "${BATON_PACKAGES[@]}" "$@")
	if [ -z "$missing" ]; then
		echo "packages: all present"
		return 0
	fi
	echo "packages: installing:" $missing
	export DEBIAN_FRONTEND=noninteractive
	# Another apt (a second run, unattended-upgrades) may hold the lock: wait for it.
	apt-get update -q -o DPkg::Lock::Timeout=300 || return 1
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 $missing || return 1
}

# user_ensure NAME: creates the unprivileged system user if missing.
user_ensure() {
	local u=$1
	if id -u "$u" >/dev/null 2>&1; then
		return 0
	fi
	echo "creating user $u"
	useradd --system --create-home --shell /bin/bash "$u"
}

# src_copy SRC DEST OWNER: copies the source tree SRC (without build output,
# generated autotools files or .git) into DEST (replaced), owned by OWNER.
# Uses git's file list when SRC is a git checkout and git is installed
# (tracked plus untracked-but-not-ignored files), else tar with excludes.
# Modification times are kept, so a rebuild in an existing build dir stays
# incremental.
src_copy() {
	local src=$1 dest=$2 owner=$3
	rm -rf "$dest"
	mkdir -p "$dest"
	if command -v git >/dev/null 2>&1 && git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$src" && git ls-files -z --cached --others --exclude-standard |
			xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
			tar --null -T - -cf -) | tar -C "$dest" -xf - || return 1
	else
		tar -C "$src" -cf - \
			--exclude=.git --exclude=autom4te.cache --exclude='./build*' --exclude=./.demo \
			--exclude=./Makefile --exclude=./Makefile.in --exclude=./configure \
			--exclude=./config.status --exclude=./config.log --exclude=./aclocal.m4 \
			--exclude='*.o' --exclude='*.a' --exclude=.deps --exclude=.dirstamp \
			--exclude='*.log' --exclude='*.trs' --exclude='*~' --exclude=./baton --exclude=./batonctl \
			. | tar -C "$dest" -xf - || return 1
	fi
	chown -R "$owner:" "$dest"
}

# as_user USER CMD...: runs CMD as USER (no PID needed, so runuser is fine).
as_user() {
	local u=$1
	shift
	runuser -u "$u" -- "$@"
}

# build_tree SRC BUILD USER [CFLAGS]: configures (once) and builds SRC in the
# out-of-tree BUILD dir as USER. CFLAGS/LDFLAGS both get the extra flags.
build_tree() {
	local src=$1 build=$2 u=$3 flags=${4:-}
	mkdir -p "$build"
	chown "$u:" "$build"
	if [ ! -x "$src/configure" ]; then
		as_user "$u" sh -c "cd '$src' && autoreconf -fi" || return 1
	fi
	if [ ! -f "$build/Makefile" ]; then
		if [ -n "$flags" ]; then
			as_user "$u" sh -c "cd '$build' && '$src/configure' -q CFLAGS='$flags' LDFLAGS='$flags'" || return 1
		else
			as_user "$u" sh -c "cd '$build' && '$src/configure' -q" || return 1
		fi
	fi
	as_user "$u" make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" || return 1
}
