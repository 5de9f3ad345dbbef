# tests/lib/debian_root.sh - the Debian 12 roots and artefacts of
# 34_systemd_live and 35_container_image, made once and cached (sourced by
# both scenarios and by tests/run.sh, which starts debian_prepare in the
# background right after the build so that they are ready, or well under
# way, when the scenarios run).
#
#  - one minbase debootstrap of bookworm, kept as a tarball in
#    $BATON_DEBIAN_CACHE (default /var/tmp/baton-debian-cache), made under
#    one lock: podman imports it as debian:bookworm (35), and the nspawn root
#    of 34 is it plus systemd, Postgres and etcd installed with apt in a
#    chroot ($BATON_NSPAWN_CACHE, keyed by a hash of its recipe);
#  - the Debian package of a source tree (deb_build);
#  - the podman store of 35 ($BATON_PODMAN_CACHE): its base image and, from
#    the background, one build of the image, so that the scenario's own
#    build finds every layer cached.
# Every step takes its cache's lock with a bounded wait and marks its
# result complete only at the end: a scenario waiting on the lock either
# reuses the finished result or, if the step failed or was killed, redoes it
# and reports its own error. Functions return non-zero with a message on
# stderr; none exits.

DEBIAN_CACHE=${BATON_DEBIAN_CACHE:-/var/tmp/baton-debian-cache}
NSPAWN_CACHE=${BATON_NSPAWN_CACHE:-/var/tmp/baton-nspawn-cache}
PODMAN_CACHE=${BATON_PODMAN_CACHE:-/var/tmp/baton-podman-cache}
# How long a step waits for another one (the background preparation or a
# concurrent run) holding its lock: a cold debootstrap plus an apt install.
DEBIAN_LOCK_WAIT=${BATON_DEBIAN_LOCK_WAIT:-900}
# The minbase recipe: a new one makes a new tarball.
DEBIAN_MINBASE_KEY=bookworm-minbase-v1
# The packages the nspawn root adds to minbase (besides the package's own
# dependencies, which depend on the package: see debian_nspawn_root).
NSPAWN_ROOT_PKGS="systemd systemd-sysv dbus iproute2 procps postgresql-15 etcd-server etcd-client"
# podman's database remembers its runroot: one fixed path per store (so that
# runs with stores of their own do not share one).
PODMAN_RUNROOT=/run/baton-it-podman
[ "$PODMAN_CACHE" = /var/tmp/baton-podman-cache ] ||
	PODMAN_RUNROOT+=-$(printf '%s' "$PODMAN_CACHE" | sha256sum | cut -c1-8)

# debian_prep_boost: a scenario that is about to wait for tests/run.sh's
# background preparation (process group $BATON_PREP_PGID) raises it back to
# normal CPU and I/O priority: from then on nothing else is running that it
# should yield to.
debian_prep_boost() {
	[ -n "${BATON_PREP_PGID:-}" ] && kill -0 -- "-$BATON_PREP_PGID" 2>/dev/null || return 0
	renice -n 0 -g "$BATON_PREP_PGID" >/dev/null 2>&1
	local p
	for p in $(pgrep -g "$BATON_PREP_PGID"); do ionice -c2 -n4 -p "$p" 2>/dev/null; done
	return 0
}

debian_mirror() {
	local m
	m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
	echo "${m:-http://deb.debian.org/debian}"
}

# debian_rm_root DIR: removes a (partial) root, unmounting first whatever a
# killed debootstrap or chroot left mounted in it (never deletes through a
# mount: --one-file-system).
debian_rm_root() {
	local dir=$1 m
	[ -e "$dir" ] || return 0
	dir=$(realpath "$dir")
	for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" || echo "cannot unmount $m" >&2
	done
	rm -rf --one-file-system "$dir"
}

# debian_minbase_tar: prints the path of the minbase tarball, made by
# debootstrap if the cache lacks it (under $DEBIAN_CACHE/minbase.lock).
debian_minbase_tar() {
	local tar=$DEBIAN_CACHE/$DEBIAN_MINBASE_KEY.tar tmp=$DEBIAN_CACHE/$DEBIAN_MINBASE_KEY.tmp mirror t0
	mkdir -p "$DEBIAN_CACHE" || return 1
	(
		flock -w "$DEBIAN_LOCK_WAIT" 9 ||
			{ echo "cannot lock $DEBIAN_CACHE/minbase.lock within $DEBIAN_LOCK_WAIT s" >&2; exit 1; }
		[ -s "$tar" ] && exit 0
		mirror=$(debian_mirror)
		t0=$(date +%s)
		debian_rm_root "$tmp"
		echo "debootstrap --variant=minbase bookworm into $tmp from $mirror" >&2
		debootstrap --variant=minbase bookworm "$tmp" "$mirror" >&2 ||
			{ echo "debootstrap --variant=minbase bookworm $tmp $mirror failed" >&2; debian_rm_root "$tmp"; exit 1; }
		chroot "$tmp" apt-get clean >&2
		# Without apt's lists (49 MB that would stay in the image's base
		# layer): whoever installs runs apt-get update first, as the
		# Dockerfile and debian_nspawn_root do.
		tar -C "$tmp" --exclude='./var/lib/apt/lists/*_*' -cf "$tar.tmp" . ||
			{ echo "cannot write $tar.tmp" >&2; rm -f "$tar.tmp"; exit 1; }
		mv "$tar.tmp" "$tar"
		debian_rm_root "$tmp"
		# Tarballs of older recipes go.
		find "$DEBIAN_CACHE" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -name "$DEBIAN_MINBASE_KEY.tar" -delete
		echo "minbase tarball $tar made in $(($(date +%s) - t0)) s" >&2
	) 9>"$DEBIAN_CACHE/minbase.lock" || return 1
	echo "$tar"
}

# debian_deb_depends DEB: the package's dependencies that the nspawn root
# must hold before the package is installed there (the container has no
# network): one name a line, sorted.
debian_deb_depends() {
	dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/^ +//; s/ +$//' |
		grep -vx 'postgresql-15\|adduser\|libc6' | sort
}

# debian_nspawn_root DEB: prints the path of the root 34_systemd_live boots
# (an overlay of it): the minbase tarball unpacked, with $NSPAWN_ROOT_PKGS
# and DEB's dependencies installed by apt-get in a chroot, no service
# started and no default Postgres cluster. Cached by a hash of its recipe.
debian_nspawn_root() {
	local deb=$1 extra key base
	extra=$(debian_deb_depends "$deb" | tr '\n' ' ') || return 1
	key=$(printf '%s\n%s\n%s\n' "$DEBIAN_MINBASE_KEY" "$NSPAWN_ROOT_PKGS" "$extra" | sha256sum | cut -c1-16)
	base=$NSPAWN_CACHE/root-$key
	mkdir -p "$NSPAWN_CACHE" || return 1
	(
		flock -w "$DEBIAN_LOCK_WAIT" 9 ||
			{ echo "cannot lock $NSPAWN_CACHE/lock within $DEBIAN_LOCK_WAIT s" >&2; exit 1; }
		[ -f "$base/.complete" ] && exit 0
		t0=$(date +%s)
		tar=$(debian_minbase_tar) || exit 1
		debian_rm_root "$base.tmp"
		mkdir -p "$base.tmp" && tar -C "$base.tmp" -xf "$tar" || { echo "cannot unpack $tar into $base.tmp" >&2; exit 1; }
		# Installed with no service started (policy-rc.d) and no default
		# cluster (the test's Postgres are baton's).
		printf '#!/bin/sh\nexit 101\n' >"$base.tmp/usr/sbin/policy-rc.d"
		chmod 755 "$base.tmp/usr/sbin/policy-rc.d"
		mkdir -p "$base.tmp/etc/postgresql-common/createcluster.d"
		echo "create_main_cluster = false" >"$base.tmp/etc/postgresql-common/createcluster.d/baton-test.conf"
		cp /etc/resolv.conf "$base.tmp/etc/resolv.conf"
		mount -t proc proc "$base.tmp/proc" || { echo "cannot mount /proc in $base.tmp" >&2; exit 1; }
		echo "apt-get install in $base.tmp: $NSPAWN_ROOT_PKGS $extra" >&2
		# shellcheck disable=SC2086
		chroot "$base.tmp" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
			sh $NSPAWN_ROOT_PKGS $extra >&2
		rc=$?
		umount "$base.tmp/proc"
		[ "$rc" = 0 ] || { echo "apt-get install in the chroot $base.tmp failed (exit $rc)" >&2; debian_rm_root "$base.tmp"; exit 1; }
		rm -f "$base.tmp/usr/sbin/policy-rc.d"
		touch "$base.tmp/.complete"
		# Older roots of other recipes go.
		for old in "$NSPAWN_CACHE"/root-*; do
			[ "$old" = "$base.tmp" ] || debian_rm_root "$old"
		done
		mv "$base.tmp" "$base"
		echo "nspawn root $base made in $(($(date +%s) - t0)) s" >&2
	) 9>"$NSPAWN_CACHE/lock" || return 1
	echo "$base"
}

# deb_build SRC PKGDIR VERSION USER: builds the Debian package of the
# source tree SRC in PKGDIR/baton-VERSION (a copy, owned by USER, who runs
# dpkg-buildpackage -us -uc -b); the log is PKGDIR/dpkg-buildpackage.out.
# PKGDIR/.complete marks a finished build.
deb_build() {
	local src=$1 pkgdir=$2 version=$3 user=$4
	rm -rf "$pkgdir"
	mkdir -p "$pkgdir" && chown "$user:" "$pkgdir" || return 1
	src_copy "$src" "$pkgdir/baton-$version" "$user" || { echo "cannot copy $src to $pkgdir" >&2; return 1; }
	(cd "$pkgdir/baton-$version" && runuser -u "$user" -- env DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
		DEB_BUILD_PROFILES=nocheck dpkg-buildpackage -us -uc -b) >"$pkgdir/dpkg-buildpackage.out" 2>&1 || {
		tail -n 40 "$pkgdir/dpkg-buildpackage.out" >&2
		echo "dpkg-buildpackage -us -uc -b failed (log: $pkgdir/dpkg-buildpackage.out)" >&2
		return 1
	}
	touch "$pkgdir/.complete"
}

# podman_setup DIR: podman with the store in $PODMAN_CACHE (nothing of the
# machine's default one is touched) and the settings this kind of machine
# needs: runc, cgroupfs, no journald, limits the kernel accepts
# (containers.conf written to DIR). Then call pm instead of podman. The
# caller holds $PODMAN_CACHE/run.lock (one run at a time per store).
podman_setup() {
	mkdir -p "$PODMAN_CACHE" "$1" || return 1
	cat >"$1/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	export CONTAINERS_CONF=$1/containers.conf
}
pm() { podman --root "$PODMAN_CACHE/storage" --runroot "$PODMAN_RUNROOT" --storage-driver overlay "$@"; }

# podman_base: debian:bookworm in the store, imported from the minbase
# tarball if missing (under $PODMAN_CACHE/lock), and tagged as the
# Dockerfile's two FROMs (docker.io/library/debian:bookworm and -slim).
podman_base() {
	(
		flock -w "$DEBIAN_LOCK_WAIT" 7 ||
			{ echo "cannot lock $PODMAN_CACHE/lock within $DEBIAN_LOCK_WAIT s" >&2; exit 1; }
		pm image exists localhost/debian:bookworm && exit 0
		tar=$(debian_minbase_tar) || exit 1
		pm import - localhost/debian:bookworm <"$tar" >&2 || { echo "podman import of $tar failed" >&2; exit 1; }
	) 7>"$PODMAN_CACHE/lock" || return 1
	local tag
	for tag in docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim; do
		pm tag localhost/debian:bookworm "$tag" || { echo "cannot tag the base image as $tag" >&2; return 1; }
	done
}

# podman_build_image SRC CTX IMAGE LOG: podman build -f deploy/k8s/Dockerfile
# of a copy CTX of the source tree SRC (no build output in the context).
podman_build_image() {
	local src=$1 ctx=$2 image=$3 out=$4
	src_copy "$src" "$ctx" root || { echo "cannot copy $src to $ctx" >&2; return 1; }
	rm -f "$ctx/configure" # generated in place by autoreconf: the Dockerfile's build stage runs it
	pm build --network host --pull=never -f "$ctx/deploy/k8s/Dockerfile" -t "$image" "$ctx" >"$out" 2>&1 || {
		tail -n 40 "$out" >&2
		echo "podman build -f deploy/k8s/Dockerfile failed (log: $out)" >&2
		return 1
	}
}

# debian_prepare SRC WORK USER WHAT...: the background preparation of
# tests/run.sh, WHAT being "nspawn" (34_systemd_live: the package, built in
# WORK/prep/pkg, then the root) and/or "podman" (35_container_image: the
# base image and one image build, whose layers the scenario's build reuses).
# Each step logs its time; a failure only ends that step: the scenario redoes
# it and reports the error.
debian_prepare() {
	local src=$1 work=$2 user=$3 what pids=() version t0 p
	shift 3
	. "$src/tests/lib/packages.sh"
	version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$src/configure.ac")
	mkdir -p "$work/prep"
	for what in "$@"; do
		case $what in
		nspawn)
			(
				t0=$(date +%s)
				exec 6>"$work/prep/pkg.lock"
				flock 6
				deb_build "$src" "$work/prep/pkg" "$version" "$user" &&
					echo "prepare: package built in $(($(date +%s) - t0)) s" ||
					{ echo "prepare: package build failed"; exit 1; }
				flock -u 6
				debian_nspawn_root "$(ls "$work/prep/pkg"/baton_"$version"_*.deb)" >/dev/null &&
					echo "prepare: nspawn root ready after $(($(date +%s) - t0)) s" ||
					echo "prepare: nspawn root failed"
			) &
			pids+=($!)
			# The minbase debootstrap meanwhile (the network, not the CPU).
			(t0=$(date +%s); debian_minbase_tar >/dev/null &&
				echo "prepare: minbase ready after $(($(date +%s) - t0)) s") &
			pids+=($!)
			;;
		podman)
			(
				t0=$(date +%s)
				mkdir -p "$PODMAN_CACHE" && exec 8>"$PODMAN_CACHE/run.lock"
				flock -w "$DEBIAN_LOCK_WAIT" 8 || { echo "prepare: cannot lock $PODMAN_CACHE/run.lock"; exit 1; }
				podman_setup "$work/prep/podman" || exit 1
				pm info >/dev/null 2>&1 || { echo "prepare: podman does not run here"; exit 1; }
				podman_base && echo "prepare: podman base ready after $(($(date +%s) - t0)) s" ||
					{ echo "prepare: podman base failed"; exit 1; }
				# The tag the scenario builds too: its build then only retags.
				podman_build_image "$src" "$work/prep/podman/context" localhost/baton:it "$work/prep/podman/build.out" &&
					echo "prepare: image built after $(($(date +%s) - t0)) s" || echo "prepare: image build failed"
			) &
			pids+=($!)
			;;
		esac
	done
	for p in "${pids[@]}"; do wait "$p"; done
	echo "prepare: done"
}

# ---- shared by the two scenarios -------------------------------------------

# timing NAME START_MS: one line of the scenario's summary (TIMINGS).
timing() {
	TIMINGS+=("$1: $(awk -v ms=$(($(now_ms) - $2)) 'BEGIN { printf "%.1f s", ms / 1000 }')")
	log "took ${TIMINGS[-1]}"
}

# mkvar NAME: a variable of the build's Makefile, expanded by make itself
# (as in 19_install).
mkvar() {
	printf 'print-%%:\n\t@echo $($*)\ninclude Makefile\n' >"$T/printvar.mk"
	(cd "$BATON_BUILD" && as_baton make -s -f "$T/printvar.mk" "print-$1")
}
