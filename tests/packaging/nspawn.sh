#!/usr/bin/env bash
# The packaged server under a real systemd (run.sh, after the chroot test): boots a clean Debian
# bookworm root that has systemd (made by run.sh with mmdebstrap) with `systemd-nspawn -b`,
# installs signum-server's .deb there with apt, runs `signum-server init` as the admin would,
# `systemctl start signum-server`, and checks the running unit: /healthz answers ok, the
# sandbox is applied to the live process (no capabilities, no new privileges, a read-only
# /usr, no /home), `systemd-analyze security signum-server` on the live unit gives the score
# docs/packaging.md records, and Restart=on-failure brings a killed server back.
#   nspawn.sh VERSION DEB_DIR ROOT DOC
# Prints "ok: ..." per check (run.sh counts them); exits 1 at the first failure. Needs root and
# systemd-nspawn (Debian's systemd-container). The container shares the host's network (apt
# from the mirror; the server listens on a free port of 127.0.0.1).
set -euo pipefail
version=$1
deb_dir=$2
root=$3
doc=$4
ok() { echo "ok: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
command -v systemd-nspawn >/dev/null ||
  fail "no systemd-nspawn: apt-get install systemd-container (scripts/install-deps.sh --packaging)"
machine=signum-pkgtest-$$
echo "$machine" >"$root/etc/hostname"
deb=$(cd "$deb_dir" && echo signum-server_"$version"_*.deb)
[ -f "$deb_dir/$deb" ] || fail "no $deb in $deb_dir"
cp "$deb_dir/$deb" "$root/root/"
logs=$(mktemp -d "${TMPDIR:-/tmp}/signum-nspawn.XXXXXX")
boot=$logs/boot.log
log=$logs/cmd.log

# No systemd on this host: --register=no (no machined) and --keep-unit (no scope of our own).
systemd-nspawn -D "$root" -b --register=no --keep-unit --console=pipe -M "$machine" >"$boot" 2>&1 &
nspawn_pid=$!
init_pid=""
shutdown() {
  if [ -n "$init_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    nsenter -t "$init_pid" -a /bin/systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 300); do
      kill -0 "$nspawn_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  kill -KILL "$nspawn_pid" 2>/dev/null || true
  wait "$nspawn_pid" 2>/dev/null || true
  rm -rf "$logs"
}
trap shutdown EXIT

# The container's init: the child of systemd-nspawn (pid 1 inside).
for _ in $(seq 1 300); do
  init_pid=$(pgrep -P "$nspawn_pid" -x systemd || true)
  [ -n "$init_pid" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$boot"; fail "systemd-nspawn -b exited"; }
  sleep 0.1
done
[ -n "$init_pid" ] || { cat "$boot"; fail "no systemd in the container within 30 s"; }
inside() { nsenter -t "$init_pid" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
state=""
for _ in $(seq 1 600); do
  state=$(inside systemctl is-system-running 2>/dev/null || true)
  case $state in running | degraded) break ;; esac
  sleep 0.1
done
[ "$state" = running ] || { inside systemctl --failed --no-pager || true; fail "the container's systemd is '$state', not running"; }
ok "systemd-nspawn -b: the root boots systemd $(inside systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'), state running"

inside apt-get update -q >/dev/null 2>&1 || fail "apt-get update in the container"
inside env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/root/$deb" \
  >"$log" 2>&1 || { cat "$log"; fail "apt-get install signum-server"; }
[ "$(inside systemctl is-enabled signum-server)" = enabled ] || fail "signum-server.service is not enabled"
# Enabled, but skipped until the admin ran init (ConditionPathExists=).
inside systemctl start signum-server
[ "$(inside systemctl show -P ConditionResult signum-server)" = no ] ||
  fail "the unit started before init: $(inside systemctl status signum-server --no-pager)"
ok "signum-server installed under systemd: enabled, and skipped until init (ConditionPathExists=)"

inside runuser -u signum -- signum-server init --state /var/lib/signum/server \
  --admin-key-file /var/lib/signum/admin.key --port 0 --ca-key-type ec-p256 >"$log" 2>&1 ||
  { cat "$log"; fail "signum-server init"; }
inside systemctl start signum-server
port=""
for _ in $(seq 1 300); do
  port=$(inside sed -n 's/.*"port":\([0-9]*\).*/\1/p' /var/lib/signum/server/run.json 2>/dev/null || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { inside systemctl status signum-server --no-pager || true; fail "no run.json within 30 s"; }
health=$(inside curl -sS --max-time 10 --cacert /var/lib/signum/server/ca/ca.crt "https://localhost:$port/healthz")
case $health in '{"status":"ok",'*) ;; *) fail "/healthz: $health" ;; esac
ok "systemctl start signum-server: active, /healthz on port $port answers status ok"

# The sandbox on the live process (pid as the container sees it; nsenter from inside).
main_pid=$(inside systemctl show -P MainPID signum-server)
status=$(inside cat "/proc/$main_pid/status")
grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$status" || fail "NoNewPrivs is not 1"
grep -q '^CapEff:[[:space:]]*0000000000000000$' <<<"$status" || fail "the server has capabilities"
grep -q '^CapBnd:[[:space:]]*0000000000000000$' <<<"$status" || fail "capability bounding set not empty"
[ "$(inside stat -c %U "/proc/$main_pid")" = signum ] ||
  fail "the server does not run as signum"
if inside nsenter -t "$main_pid" -m -- touch /usr/signum-probe 2>/dev/null; then
  fail "/usr is writable in the service's mounts"
fi
inside mkdir -p /home/someone
if inside nsenter -t "$main_pid" -m -- ls -A /home/ 2>/dev/null | grep -q someone; then
  fail "/home is visible in the service's mounts"
fi
inside nsenter -t "$main_pid" -m -- touch /var/lib/signum/server/.probe || fail "/var/lib/signum not writable"
inside rm -f /var/lib/signum/server/.probe
ok "the live sandbox: user signum, NoNewPrivs 1, no capabilities, /usr read-only, /home hidden, /var/lib/signum writable"

want=$(sed -n 's/^overall exposure level \([0-9.]*\) .*/\1/p' "$doc")
live=$(inside systemd-analyze security signum-server --no-pager 2>&1 |
  sed -n 's/.*Overall exposure level for signum-server.service: \([0-9.]*\) .*/\1/p')
[ -n "$want" ] || fail "no score in $doc"
[ "$live" = "$want" ] || fail "systemd-analyze security on the live unit: $live, $doc says $want"
ok "systemd-analyze security signum-server (the live unit): $live, as $doc records"

inside systemctl kill --kill-whom=main --signal=KILL signum-server
new_pid=""
for _ in $(seq 1 200); do
  new_pid=$(inside systemctl show -P MainPID signum-server)
  [ "$new_pid" != 0 ] && [ "$new_pid" != "$main_pid" ] &&
    [ "$(inside systemctl is-active signum-server)" = active ] && break
  new_pid=""
  sleep 0.1
done
[ -n "$new_pid" ] || fail "a killed server was not restarted within 20 s (Restart=on-failure)"
ok "Restart=on-failure: the server killed with SIGKILL is running again (pid $main_pid -> $new_pid)"

inside systemctl stop signum-server
[ "$(inside systemctl is-active signum-server || true)" = inactive ] || fail "systemctl stop"
ok "systemctl stop signum-server: inactive"
