#!/bin/bash
# Runs inside the clean Debian root (run.sh: chroot in its own mount and PID namespaces, as
# root with an empty environment). Installs the .debs from /tmp/signum-debs with apt, acts as
# the administrator and as a signer, then purges the packages. Each check prints "ok: ..." or
# stops the script with "FAIL: ...".
#   inside.sh VERSION
set -euo pipefail
version=$1
export DEBIAN_FRONTEND=noninteractive
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
server_pid=""
stop_all() {
  runuser -u alice -- signum-util agent stop >/dev/null 2>&1 || true
  signum-util agent stop >/dev/null 2>&1 || true
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" || true
    server_pid=""
  fi
}
trap stop_all EXIT

installed_packages() { dpkg-query -W -f='${Status} ${Package}\n' | awk '$3 == "installed" {print $4}' | sort; }
installed_packages >/tmp/packages-before.txt

step "apt-get install ./signum-server ./signum-agent (dependencies from the Debian mirror)"
apt-get update -q >/dev/null
apt-get install -y -q /tmp/signum-debs/signum-server_"$version"_*.deb \
  /tmp/signum-debs/signum-agent_"$version"_*.deb >/tmp/apt-install.log 2>&1 ||
  { cat /tmp/apt-install.log; fail "apt-get install"; }
ok "installed: $(dpkg-query -W -f='${Package} ${Version}, ' signum-server signum-agent)"

step "what the packages set up"
[ "$(signum-server --version)" = "signum-server $version" ] || fail "signum-server --version: $(signum-server --version)"
[ "$(signum-util --version)" = "signum-util $version" ] || fail "signum-util --version: $(signum-util --version)"
ok "signum-server --version and signum-util --version say $version"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd signum) || fail "no user signum"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/signum ] && [ "$shell" = /usr/sbin/nologin ] ||
  fail "user signum: uid $uid, home $home, shell $shell"
ok "system user signum (uid $uid, home $home, shell $shell)"
[ "$(stat -c '%U:%G %a' /var/lib/signum)" = "signum:signum 750" ] || fail "/var/lib/signum: $(stat -c '%U:%G %a' /var/lib/signum)"
ok "/var/lib/signum is signum:signum 0750, and empty: $(ls -A /var/lib/signum | wc -l) entries"
[ -f /etc/signum/server.env ] && [ -f /etc/signum/agent.conf ] || fail "/etc/signum files"
ok "/etc/signum holds server.env and agent.conf (conffiles)"
unit=/lib/systemd/system/signum-server.service
[ -f "$unit" ] || fail "$unit"
[ -f /usr/lib/systemd/user/signum-agent.socket ] && [ -f /usr/lib/systemd/user/signum-agent.service ] ||
  fail "agent user units"
ok "units: $unit, /usr/lib/systemd/user/signum-agent.{socket,service}"
# Enabled as Debian enables services (deb-systemd-helper; no systemd runs in this root): the
# server's unit waits for init (ConditionPathExists=), the agent's socket is every user's.
[ -L /etc/systemd/system/multi-user.target.wants/signum-server.service ] || fail "server unit not enabled"
[ -L /etc/systemd/user/sockets.target.wants/signum-agent.socket ] || fail "agent socket not enabled"
ok "signum-server.service enabled (multi-user.target), signum-agent.socket enabled for every user"
p11-kit list-modules >/tmp/modules.txt 2>&1 || true
grep -q '^signum: libsignumpkcs11.so$' /tmp/modules.txt || { cat /tmp/modules.txt; fail "p11-kit list-modules does not show signum"; }
ok "p11-kit list-modules shows 'signum: libsignumpkcs11.so' (from /usr/share/p11-kit/modules/signum.module)"
# Listing the token started root's agent on demand, before any agent.conf named a server; the
# agent reads its settings when it starts, so this one goes.
signum-util agent stop >/dev/null

step "the administrator: signum-server init as the service's user, then serve (the unit's ExecStart)"
runuser -u signum -- signum-server init --state /var/lib/signum/server --admin-key-file /tmp/admin.key \
  --port 0 --ca-key-type ec-p256 2>/tmp/init.log | grep -v 'API key'
install -m 0600 /tmp/admin.key /root/admin.key && rm -f /tmp/admin.key
# The command line of the packaged unit, with the variables of its EnvironmentFile.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
env_file=$(sed -n 's/^EnvironmentFile=-//p' "$unit")
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
# shellcheck disable=SC2086
runuser -u "$user" -- $(eval echo "$exec_start") 2>/tmp/server.log &
server_pid=$!
for _ in $(seq 1 200); do
  [ -s /var/lib/signum/server/run.json ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat /tmp/server.log; fail "signum-server serve exited"; }
  sleep 0.1
done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' /var/lib/signum/server/run.json)
[ -n "$port" ] || fail "no run.json"
ok "serve ($exec_start) as $user listens on port $port"

# The agent's system-wide settings: the server and its CA, kept by the administrator.
install -m 0644 /var/lib/signum/server/ca/ca.crt /etc/signum/ca.crt
printf 'server = https://localhost:%s\nca_file = /etc/signum/ca.crt\n' "$port" >/etc/signum/agent.conf
signum-util login --api-key-file /root/admin.key
signum-util admin projects create packaged --description "the package test" >/dev/null
signum-util admin keys create release --type rsa2048 --project packaged >/dev/null
signum-util admin keys issue-cert release --cn "Packaged Release Signing" >/tmp/release.crt
openssl verify -CAfile /etc/signum/ca.crt /tmp/release.crt >/dev/null || fail "certificate chain"
ok "admin logged in with signum-util; key 'release' and its certificate (verified against the CA)"
useradd -m -s /bin/bash alice
signum-util admin users create alice --role signer |
  sed -n 's/^API key (shown once; store it now): //p' >/home/alice/signer.key
chown alice: /home/alice/signer.key && chmod 0600 /home/alice/signer.key
[ -s /home/alice/signer.key ] || fail "no API key for alice"
signum-util admin projects add packaged signer --user alice --reason "package test" >/dev/null
ok "signer alice created and made a signer of the project"

step "the signer: log in with signum-util, sign through the module p11-kit finds"
as_alice() { runuser -u alice -- env HOME=/home/alice "$@"; }
as_alice signum-util login --api-key-file /home/alice/signer.key
ok "alice logged in (agent started on demand from /usr/bin/signum-agent)"
as_alice p11tool --list-tokens >/tmp/tokens.txt 2>&1 || true
grep -q 'Label: Signum alice' /tmp/tokens.txt || { cat /tmp/tokens.txt; fail "p11tool --list-tokens"; }
ok "p11tool --list-tokens (GnuTLS loads p11-kit's modules) shows the token 'Signum alice'"
printf 'an artefact signed through the packaged module\n' >/tmp/artefact.txt
chmod 0644 /tmp/artefact.txt
uri="pkcs11:token=Signum%20alice;object=release;type=private"
# No module path anywhere: the libp11 engine loads p11-kit-proxy.so, which loads the modules
# p11-kit lists, ours among them.
as_alice env -u PKCS11_MODULE_PATH openssl dgst -engine pkcs11 -keyform engine -sign "$uri" -sha256 \
  -out /tmp/artefact.sig /tmp/artefact.txt 2>/tmp/openssl.log ||
  { cat /tmp/openssl.log; fail "openssl sign through p11-kit-proxy"; }
openssl x509 -in /tmp/release.crt -pubkey -noout >/tmp/release.pub
openssl dgst -sha256 -verify /tmp/release.pub -signature /tmp/artefact.sig /tmp/artefact.txt ||
  fail "signature does not verify"
ok "openssl signed via p11-kit-proxy -> libsignumpkcs11.so -> agent -> server; the signature verifies"
runuser -u signum -- signum-server audit verify --state /var/lib/signum/server >/dev/null ||
  fail "audit verify"
ok "signum-server audit verify: the audit chain is intact"

step "stop, then purge both packages"
stop_all
apt-get purge -y -q signum-server signum-agent >/tmp/apt-purge.log 2>&1 || { cat /tmp/apt-purge.log; fail "purge"; }
grep -i "warning" /tmp/apt-purge.log || true
# Then every package apt brought in for them (apt's autoremove would keep the ones only
# recommended, ca-certificates for libcurl4): the root's packages are the ones before.
pulled_in=$(installed_packages | comm -13 /tmp/packages-before.txt -)
# shellcheck disable=SC2086
[ -z "$pulled_in" ] || apt-get purge -y -q $pulled_in >>/tmp/apt-purge.log 2>&1 ||
  { cat /tmp/apt-purge.log; fail "purge of the dependencies"; }
[ "$(installed_packages)" = "$(cat /tmp/packages-before.txt)" ] || fail "packages differ from before"
! dpkg-query -W -f='${Package}\n' signum-server signum-agent 2>/dev/null | grep -q . || fail "still known to dpkg"
ok "purged, and the $(echo "$pulled_in" | wc -w) packages apt pulled in for them: $(echo $pulled_in)"
userdel -r alice || fail "userdel alice"
