#!/bin/bash
# 13_etcd_tls_auth: etcd over https with client certificates
# (--client-cert-auth, a test CA made with openssl) and authentication on
# (a root user, and a user baton whose role may read and write the prefix
# /baton/ only), with auth tokens that live 2 s. Three agents configured with
# protocol "https", cacert/cert/key and username/password bootstrap the
# cluster over it and keep it healthy across many token expiries. Then an
# agent with the wrong CA logs a TLS error naming the CA file, an agent with
# a wrong password logs an authentication error, and no log of any agent
# contains a password.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init etcd_tls_auth

BATON_ETCD_PASSWORD=baton-etcd-pw-$$-$RANDOM
WRONG_PASSWORD=not-the-password-$$-$RANDOM
ETCD_AUTH_TOKEN_TTL=2 # read by etcd_member_start (cluster.sh)
etcd_make_certs
etcd_members_start 1
etcd_use_members
etcd_enable_auth "root-pw-$$-$RANDOM" baton "$BATON_ETCD_PASSWORD"
# The role really is limited to the prefix.
if ETCD_ROOT_PASSWORD='' etcdctl_m --user "baton:$BATON_ETCD_PASSWORD" put /elsewhere x >/dev/null 2>&1; then
	fail "user baton may write outside $NAMESPACE/"
fi
pass "user baton is refused outside $NAMESPACE/"

creds="username = \"baton\"; password = \"$BATON_ETCD_PASSWORD\";"
for n in 1 2 3; do
	node_config "$n"
	node_config_etcd "$n" "$creds"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
p=$PRIMARY
leader=$LEADER
pass "the cluster bootstrapped over https with client certificates and auth (primary node$p)"

# Tokens expire every 2 s: 5 x TTL later, still the same healthy cluster.
sleep $((TTL * 5))
wait_healthy 20
assert_eq "$p" "$PRIMARY" "the same primary after $((TTL * 5)) s of 2 s tokens"
assert_eq "$leader" "$(leader_name)" "the leader key is unchanged"
pm_ok=$(postmaster_pid "$p") || fail "node$p lost its postmaster"

# An agent whose CA did not sign etcd's certificate: a clear TLS error.
node_config 4
node_config_etcd 4 "$creds"
sed -i "s|cacert = \"$ETCD_TLS_DIR/ca.pem\"|cacert = \"$ETCD_TLS_DIR/other-ca.pem\"|" "$T/node4.conf"
grep -q "other-ca.pem" "$T/node4.conf" || fail "could not render node4's wrong CA"
agent_start 4
tls_logged() { grep -q "TLS: server certificate not trusted by CA $ETCD_TLS_DIR/other-ca.pem" "$(agent_log 4)"; }
wait_for 30 "node4 logs the untrusted server certificate, naming its CA file" tls_logged
grep -m1 "TLS: server certificate not trusted" "$(agent_log 4)" | sed 's/^/  node4: /'
agent_stop 4

# A wrong password: a clear authentication error, the password not shown.
node_config 5
node_config_etcd 5 "username = \"baton\"; password = \"$WRONG_PASSWORD\";"
agent_start 5
auth_logged() { grep -q -i "authentication failed" "$(agent_log 5)"; }
wait_for 30 "node5 logs the failed authentication" auth_logged
grep -m1 -i "authentication failed" "$(agent_log 5)" | sed 's/^/  node5: /'
agent_stop 5

for n in 1 2 3 4 5; do
	if grep -q -F -e "$BATON_ETCD_PASSWORD" -e "$WRONG_PASSWORD" "$(agent_log "$n")"; then
		fail "node$n's log contains an etcd password"
	fi
done
pass "no agent log contains an etcd password"
wait_healthy 20 "4 5"
assert_eq "$p" "$PRIMARY" "the primary is untouched by the misconfigured agents"
assert_eq "$pm_ok" "$(postmaster_pid "$p")" "node$p's postmaster never restarted"
