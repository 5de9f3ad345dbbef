#!/bin/sh
# vip.sh - a baton callback that keeps a virtual IP on the primary, and only
# there. Set it for the three actions that change where Postgres runs:
#
#   postgresql = { callbacks = { on_start = "/etc/baton/vip.sh";
#                                on_role_change = "/etc/baton/vip.sh";
#                                on_stop = "/etc/baton/vip.sh"; }; };
#
# and the address in the agent's environment (the callback inherits it):
#
#   BATON_VIP=10.0.0.100/24   the address with its prefix length (IPv4 or IPv6)
#   BATON_VIP_DEV=eth0        the interface that carries it
#
# baton runs it as `vip.sh ACTION ROLE SCOPE` (see baton.conf(5)):
#   on_start/on_role_change/on_reload primary  -> add the address (idempotent),
#       then tell the neighbours with a gratuitous ARP (arping, iputils) if
#       it is installed and BATON_VIP_ARPING is not "no";
#   on_start/on_role_change/on_reload, any other role ("replica", ...)
#       -> remove it if present;
#   on_stop, whatever the role -> remove it if present: a stopped Postgres,
#       or one about to be demoted, must not keep receiving the clients.
# Exit status 0 when the interface ends as the role requires, 1 when `ip`
# failed (its message is logged by the agent), 2 on a usage error.
#
# What it does not cover: an agent killed with SIGKILL, or a machine that
# loses power, runs no callback, so its address stays until someone removes
# it; the new primary adds it too and its gratuitous ARP moves the traffic,
# but the old node still answers to it while it lives. Where that matters,
# use a VIP manager that watches the leader key itself (vip-manager reads
# <namespace>/<scope>/leader), or fence the old node.
#
# systemd: the shipped baton@.service grants no capability, so `ip addr`
# fails there with "Operation not permitted". Give the unit CAP_NET_ADMIN
# in a drop-in (`systemctl edit baton@NODE`), which widens it for the agent
# and Postgres too, so do it only on nodes that carry the address:
#
#   [Service]
#   CapabilityBoundingSet=CAP_NET_ADMIN
#   AmbientCapabilities=CAP_NET_ADMIN
#   Environment=BATON_VIP=10.0.0.100/24 BATON_VIP_DEV=eth0
#
# AF_NETLINK, which `ip` needs, is already among the unit's
# RestrictAddressFamilies=, and /usr/sbin/ip is on the service's PATH. For
# arping also add CAP_NET_RAW to both lines and
#   RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
# tests/integration/31_vip_callback.sh runs this script in a network
# namespace, on its own and from a real agent.
set -eu

usage() {
	echo "usage: $0 ACTION ROLE SCOPE (baton runs callbacks so)" >&2
	exit 2
}
[ $# -eq 3 ] || usage
action=$1 role=$2 scope=$3
vip=${BATON_VIP:-}
dev=${BATON_VIP_DEV:-}
if [ -z "$vip" ] || [ -z "$dev" ]; then
	echo "$scope: BATON_VIP (address/prefix) and BATON_VIP_DEV (interface) must be set in the agent's environment" >&2
	exit 2
fi
case $vip in
*/*) ;;
*)
	echo "$scope: BATON_VIP=$vip needs a prefix length, e.g. $vip/24" >&2
	exit 2
	;;
esac
addr=${vip%/*}
if ! command -v ip >/dev/null 2>&1; then
	echo "$scope: ip (Debian package iproute2) is not on PATH ($PATH)" >&2
	exit 1
fi

# has_vip: true when BATON_VIP_DEV carries the address (any prefix length),
# false when it does not; when `ip` itself fails the script exits 1: an
# address nobody could look at is neither there nor gone.
has_vip() {
	if ! out=$(ip -o addr show dev "$dev" 2>&1); then
		echo "$scope: cannot list the addresses of $dev: $out" >&2
		exit 1
	fi
	printf '%s\n' "$out" | awk -v a="$addr" '
		{ for (i = 1; i < NF; i++) if ($i == "inet" || $i == "inet6") { split($(i + 1), p, "/"); if (p[1] == a) found = 1 } }
		END { exit !found }'
}

hint="(the agent needs CAP_NET_ADMIN: see the header of $0)"

add_vip() {
	if has_vip; then
		echo "$scope: $vip already on $dev"
		return 0
	fi
	# A call for another action may run at the same time (baton runs one
	# per action): what counts is whether the address is there afterwards.
	if ! ip addr add "$vip" dev "$dev" && ! has_vip; then
		echo "$scope: could not add $vip to $dev $hint" >&2
		exit 1
	fi
	if [ "${BATON_VIP_ARPING:-yes}" != no ] && [ "$addr" = "${addr#*:}" ] &&
		command -v arping >/dev/null 2>&1; then
		arping -q -U -c 3 -I "$dev" "$addr" || echo "$scope: arping on $dev failed (neighbours learn the address later)"
	fi
	echo "$scope: $vip added to $dev"
}

del_vip() {
	if ! has_vip; then
		echo "$scope: $vip not on $dev, nothing to remove"
		return 0
	fi
	if ! ip addr del "$vip" dev "$dev" && has_vip; then
		echo "$scope: could not remove $vip from $dev $hint" >&2
		exit 1
	fi
	echo "$scope: $vip removed from $dev"
}

# The interface must exist: a typo in BATON_VIP_DEV must not pass silently.
if ! out=$(ip link show dev "$dev" 2>&1); then
	echo "$scope: interface $dev (BATON_VIP_DEV): ${out:-ip failed without a message}" >&2
	exit 1
fi

case $action in
on_stop) del_vip ;;
on_start | on_role_change | on_reload)
	if [ "$role" = primary ]; then add_vip; else del_vip; fi
	;;
*)
	echo "$scope: $action: nothing to do"
	;;
esac
