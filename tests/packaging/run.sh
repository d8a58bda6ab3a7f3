#!/usr/bin/env bash
# The install test (issue 17), slow: `scripts/test.sh --packaging` runs it, or run it alone:
#   bash tests/packaging/run.sh [--keep] [--packages OUT]
# 1. builds the .debs (dpkg-buildpackage, then lintian) and the RPMs (rpmbuild) from this tree;
# 2. checks the RPMs' contents and dependencies (rpm -qpl, rpm -qpR, scriptlets);
# 3. makes a clean Debian bookworm root with mmdebstrap (from the Debian mirror) and, inside it
#    (chroot, own mount and PID namespaces; the server on 127.0.0.1), runs inside.sh: apt
#    installs the packages, the admin runs signum-server init and serve, logs in with
#    signum-util and creates a key and a signer, the signer logs in and signs with openssl
#    through p11-kit-proxy (which finds libsignumpkcs11.so through p11-kit, no module path),
#    the signature verifies, then both packages are purged;
# 4. compares the root before the install and after the purge: only the state the admin
#    created may be left (the list below), and the system user (Debian keeps it on purge);
# 5. boots a second clean bookworm root, with systemd, in systemd-nspawn (nspawn.sh): the
#    server's .deb installed there, init, `systemctl start signum-server`, /healthz, the
#    sandbox of the live process, `systemd-analyze security` on the live unit, a restart.
# Needs root (chroot, namespaces), scripts/install-deps.sh --packaging and systemd-nspawn
# (systemd-container). --keep leaves the work folder (packages, logs, the roots) for a look.
set -euo pipefail
keep=0
prebuilt=""
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1 ;;
    # --packages OUT: take the packages build-packages.sh put into OUT (while working on the
    # install steps) instead of building them again.
    --packages) prebuilt=$(cd "${2:?--packages OUT}" && pwd); shift ;;
    *) echo "run.sh: unknown argument $1 (known: --keep, --packages OUT)" >&2; exit 2 ;;
  esac
  shift
done
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^project(signum VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (mmdebstrap, chroot, namespaces)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/signum-packaging.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
passed=0
failed=0
check() { # check NAME COMMAND...: one counted check
  local name=$1
  shift
  if "$@"; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name" >&2
    failed=$((failed + 1))
  fi
}
t0=$(date +%s)
lap() { echo "-- $1: $(($(date +%s) - t0)) s"; }

if [ -n "$prebuilt" ]; then
  ln -s "$prebuilt" "$work/out"
else
  bash "$root/tests/packaging/build-packages.sh" "$work/out"
  passed=$((passed + 3)) # dpkg-buildpackage, lintian, rpmbuild (build-packages.sh stops at a failure)
  lap "packages built, lintian clean"
fi

echo "== rpm -qpl / -qpR"
rpms=$work/out/rpm/RPMS/$(uname -m)
srv_rpm=$rpms/signum-server-$version-1.$(uname -m).rpm
agent_rpm=$rpms/signum-agent-$version-1.$(uname -m).rpm
rpm -qpl "$srv_rpm" >"$work/srv.files"
rpm -qpl "$agent_rpm" >"$work/agent.files"
rpm -qpR "$srv_rpm" >"$work/srv.requires"
rpm -qpR "$agent_rpm" >"$work/agent.requires"
has_lines() { # has_lines FILE LINE...: every LINE is a whole line of FILE
  local f=$1 l
  shift
  for l in "$@"; do grep -qxF -- "$l" "$f" || { echo "  missing in $(basename "$f"): $l" >&2; return 1; }; done
}
check "signum-server.rpm files" has_lines "$work/srv.files" /usr/bin/signum-server \
  /usr/lib/systemd/system/signum-server.service /etc/signum/server.env /var/lib/signum \
  /usr/share/man/man1/signum-server.1
check "signum-agent.rpm files" has_lines "$work/agent.files" /usr/bin/signum-agent /usr/bin/signum-util \
  /usr/lib64/pkcs11/libsignumpkcs11.so /usr/share/p11-kit/modules/signum.module \
  /usr/lib/systemd/user/signum-agent.socket /usr/lib/systemd/user/signum-agent.service \
  /etc/signum/agent.conf
check "signum-server.rpm requires" has_lines "$work/srv.requires" softhsm shadow-utils \
  "libssl.so.3()(64bit)" "libevent-2.1.so.7()(64bit)" "libsqlite3.so.0()(64bit)" "libpq.so.5()(64bit)"
check "signum-agent.rpm requires" has_lines "$work/agent.requires" p11-kit "libcurl.so.4()(64bit)"
check "signum-server.rpm: /var/lib/signum is signum's, 0750" \
  grep -qx 'drwxr-x--- signum signum /var/lib/signum' \
  <(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$srv_rpm")
check "signum-server.rpm creates its user before install" \
  grep -q 'useradd -r -g signum -d /var/lib/signum' <(rpm -qp --scripts "$srv_rpm")
check "the RPMs' version is project()'s" test "$(rpm -qp --qf '%{VERSION}' "$srv_rpm")" = "$version"
check "no file of the module in the server RPM, none of the server in the agent RPM" \
  bash -c '! grep -q signum-server "$1" && ! grep -q pkcs11 "$2"' _ "$work/agent.files" "$work/srv.files"

echo "== a clean Debian bookworm root (mmdebstrap)"
# minbase plus the test's own tools: p11-kit (list-modules), p11-kit-modules (p11-kit-proxy.so),
# gnutls-bin (p11tool), openssl and the libp11 engine (signing through p11-kit-proxy).
chroot_dir=$work/root
mmdebstrap --variant=minbase --include=p11-kit,p11-kit-modules,gnutls-bin,openssl,libengine-pkcs11-openssl \
  bookworm "$chroot_dir" >"$work/mmdebstrap.log" 2>&1 || { tail -20 "$work/mmdebstrap.log"; exit 1; }
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$chroot_dir/etc/hosts"
lap "root made"

# Every path of the root with its type, mode, owner (numeric: the root's own accounts) and,
# for files, content hash; apt's and dpkg's own records, caches, logs and the scratch folders
# are left out.
snapshot() {
  python3 - "$chroot_dir" <<'PY'
import hashlib, os, stat, sys
top = sys.argv[1]
skip = {"proc", "sys", "dev", "tmp", "run", "var/cache", "var/log", "var/lib/apt", "var/lib/dpkg"}
out = []
for d, dirs, files in os.walk(top):
    rel = os.path.relpath(d, top)
    dirs[:] = sorted(x for x in dirs if os.path.normpath(os.path.join(rel, x)) not in skip)
    for name in dirs + sorted(files):
        p = os.path.join(d, name)
        st = os.lstat(p)
        meta = "%o %d:%d" % (st.st_mode, st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                meta += " " + hashlib.md5(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            meta += " -> " + os.readlink(p)
        out.append("./%s\t%s" % (os.path.normpath(os.path.join(rel, name)), meta))
print("\n".join(sorted(out)))
PY
}
snapshot >"$work/before.txt"
cp "$chroot_dir/etc/passwd" "$work/passwd.before"
cp "$chroot_dir/etc/group" "$work/group.before"

mkdir -p "$chroot_dir/tmp/signum-debs"
cp "$work/out/deb"/signum-server_"$version"_*.deb "$work/out/deb"/signum-agent_"$version"_*.deb \
  "$chroot_dir/tmp/signum-debs/"
cp "$root/tests/packaging/inside.sh" "$chroot_dir/tmp/inside.sh"
echo "== inside the root (tests/packaging/inside.sh)"
# Own mount namespace (proc mounted there only) and PID namespace: whatever the test started
# inside ends with it.
set +e
unshare --mount --pid --fork --mount-proc="$chroot_dir/proc" \
  chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  /bin/bash /tmp/inside.sh "$version" 2>&1 | tee "$work/inside.log"
inside_rc=${PIPESTATUS[0]}
set -e
ok_inside=$(grep -c '^ok: ' "$work/inside.log" || true)
passed=$((passed + ok_inside))
[ "$inside_rc" -eq 0 ] || failed=$((failed + 1))
rm -rf "$chroot_dir/tmp/signum-debs" "$chroot_dir/tmp/inside.sh"
lap "installed, used, purged"

echo "== what is left after the purge (root before the install vs after the purge)"
snapshot >"$work/after.txt"
# Left on purpose: what the admin made (signum-server init's state, the admin's key and agent
# cache, the CA copy for the agents) and the system user signum in the account files.
allowed='^\./(var/lib/signum(/.*)?|etc/signum|etc/signum/ca\.crt|root/admin\.key|root/\.cache(/signum(/.*)?)?|etc/(passwd|group|shadow|gshadow|subuid|subgid)-?)$'
diff "$work/before.txt" "$work/after.txt" | sed -n 's/^[<>] //p' | cut -f1 | sort -u >"$work/changed.txt" || true
unexpected=$(grep -Ev "$allowed" "$work/changed.txt" || true)
echo "changed paths: $(wc -l <"$work/changed.txt")"
echo "  $(grep -c '^\./var/lib/signum/server' "$work/changed.txt" || true) under ./var/lib/signum/server (signum-server init's state), and:"
grep -E "$allowed" "$work/changed.txt" | grep -v '^\./var/lib/signum/server' | sed 's/^/  /' || true
check "nothing left after the purge but the admin's state and the system user" test -z "$unexpected"
if [ -n "$unexpected" ]; then
  echo "unexpected:"
  echo "$unexpected" | head -40
fi
# The account files differ from before by the user and group signum alone.
added_accounts() { diff "$1" "$2" | sed -n 's/^> \([^:]*\):.*/\1/p' | tr '\n' ' '; }
removed_accounts() { diff "$1" "$2" | grep -c '^<' || true; }
check "the system user signum is kept, and nothing else changed in passwd and group (Debian keeps system users on purge)" \
  test "$(added_accounts "$work/passwd.before" "$chroot_dir/etc/passwd")$(removed_accounts "$work/passwd.before" "$chroot_dir/etc/passwd")" = "signum 0" -a \
  "$(added_accounts "$work/group.before" "$chroot_dir/etc/group")$(removed_accounts "$work/group.before" "$chroot_dir/etc/group")" = "signum 0"
check "signum-server init's state is still there" test -f "$chroot_dir/var/lib/signum/server/signum-server.conf"
lap "purge checked"

echo "== the server under systemd: a bookworm root with systemd, booted by systemd-nspawn"
sd_root=$work/sdroot
mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates \
  bookworm "$sd_root" >"$work/mmdebstrap-systemd.log" 2>&1 || { tail -20 "$work/mmdebstrap-systemd.log"; exit 1; }
lap "systemd root made"
set +e
bash "$root/tests/packaging/nspawn.sh" "$version" "$work/out/deb" "$sd_root" "$root/docs/packaging.md" 2>&1 |
  tee "$work/nspawn.log"
nspawn_rc=${PIPESTATUS[0]}
set -e
passed=$((passed + $(grep -c '^ok: ' "$work/nspawn.log" || true)))
[ "$nspawn_rc" -eq 0 ] || failed=$((failed + 1))
lap "done"
echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
