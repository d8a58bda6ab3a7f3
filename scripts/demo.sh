#!/usr/bin/env bash
# The main job, end to end on this machine: install dependencies, build, create a server
# state directory (SoftHSMv2 token, database, CA, TLS certificate, admin key), start the
# server on 127.0.0.1; the administrator (signum-util admin, through their own agent) creates
# a key and a code-signing certificate in the HSM and a signer identity with a grant; the
# signer signs a file's digest (verified with openssl) and a Windows PE with osslsigncode
# through libsignumpkcs11.so (module -> signum-agent -> server), verified; then the key's audit
# trail and usage; the agents and the server stop. With --console the server keeps running
# at the end for the web console (its URL and login are printed) until Ctrl-C.
set -euo pipefail
keep_console=0
for arg in "$@"; do
  case $arg in
    --console) keep_console=1 ;;
    -h | --help)
      echo "Usage: bash scripts/demo.sh [--console]"
      echo "  --console  leave the server running for the web console until Ctrl-C"
      exit 0 ;;
    *) echo "demo.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
bash scripts/build.sh
server="$root/build/server/signum-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/signum-demo.XXXXXX")
pid=""
module="$root/build/linux-pkcs11/libsignumpkcs11.so"
util="$root/build/agent-core/signum-util"
# Two people, each with their own signum-agent (runtime and cache directories, credentials
# from the environment, as in CI): the administrator and a signer. Administration and signing
# are different identities; an admin cannot sign.
as_id() {
  local who=$1
  shift
  env XDG_RUNTIME_DIR="$work/run-$who" XDG_CACHE_HOME="$work/cache-$who" \
    XDG_CONFIG_HOME="$work/config-$who" SIGNUM_SERVER="$url" SIGNUM_CA_FILE="$ca" \
    SIGNUM_API_KEY="$(cat "$work/$who.key")" SIGNUM_AGENT="$root/build/agent-core/signum-agent" "$@"
}
as_admin() { as_id admin "$@"; }
as_signer() { as_id signer "$@"; }
cleanup() {
  for who in admin signer; do
    if [ -S "$work/run-$who/signum/agent.sock" ]; then
      as_id "$who" "$util" agent stop >/dev/null 2>&1 || true
    fi
  done
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
mkdir -m 700 "$work/run-admin" "$work/run-signer"
touch "$work/signer.key" && chmod 600 "$work/signer.key"

step "Initialising a server state directory"
"$server" init --state "$work/state" --admin-key-file "$work/admin.key" --port 0 | grep -v 'API key'
echo "(admin API key written to a 0600 file; it is never printed in logs)"

step "Starting signum-server on 127.0.0.1"
"$server" serve --state "$work/state" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/state/run.json" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "server exited" >&2; exit 1; }
  sleep 0.1
done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/state/run.json")
url="https://localhost:$port"
ca="$work/state/ca/ca.crt"
echo "listening at $url (TLS verified against the server's own CA)"

curl -sS --cacert "$ca" "$url/healthz"; echo

step "The administrator creates a project and, in it, an RSA-2048 key inside the HSM with a code-signing certificate"
as_admin "$util" admin projects create demo --description "the demo's release keys"
as_admin "$util" admin keys create release --type rsa2048 --project demo
as_admin "$util" admin keys issue-cert release --cn "Demo Release Signing" > "$work/release.crt"
openssl x509 -in "$work/release.crt" -noout -subject -issuer -ext extendedKeyUsage,crlDistributionPoints
openssl verify -purpose any -CAfile "$ca" "$work/release.crt"

step "The administrator creates a signer identity and makes it a signer of the project"
as_admin "$util" admin users create release-bot --role signer --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])' > "$work/signer.key"
echo "(release-bot's API key written to a 0600 file; it is never printed)"
as_admin "$util" admin projects add demo signer --user release-bot --reason "release automation"
as_admin "$util" admin projects show demo
echo "an admin cannot sign, neither by a grant nor by a project role: separation of duties"
if as_admin "$util" admin keys grant release admin 2>&1 ||
  as_admin "$util" admin projects add demo signer --user admin --reason "try" 2>&1; then
  echo "an admin was given signing rights" >&2
  exit 1
fi

step "The signer signs a file: only its SHA-256 digest goes to the server"
printf 'Signum demo release artefact, %s\n' "$(date -u +%FT%TZ)" > "$work/artefact.txt"
digest=$(openssl dgst -sha256 -binary "$work/artefact.txt" | base64 -w0)
as_signer "$util" sign --key release --hash sha256 --mechanism rsa-pkcs1 --digest "$digest" \
  | base64 -d > "$work/artefact.sig"
echo "signature: $(stat -c %s "$work/artefact.sig") bytes"

step "Verifying the signature with openssl against the certificate's public key"
openssl x509 -in "$work/release.crt" -pubkey -noout > "$work/release.pub"
openssl dgst -sha256 -verify "$work/release.pub" -signature "$work/artefact.sig" "$work/artefact.txt"

step "Signing a Windows PE with osslsigncode through the PKCS#11 module (libsignumpkcs11.so)"
printf '#include <stdio.h>\nint main(void) { puts("signed by Signum"); return 0; }\n' > "$work/hello.c"
x86_64-w64-mingw32-gcc -O2 -s -o "$work/hello.exe" "$work/hello.c"
echo "the module talks to release-bot's agent; the token it shows:"
as_signer pkcs11-tool --module "$module" -L | grep -E 'token (label|flags)'
uri="pkcs11:token=Signum%20release-bot;object=release"
as_signer osslsigncode sign -pkcs11module "$module" -pkcs11cert "$uri;type=cert" -key "$uri;type=private" \
  -h sha256 -n "Signum demo" -in "$work/hello.exe" -out "$work/hello-signed.exe" | grep -v '^Engine'
echo "osslsigncode hashed the PE locally; only its digest went to the server"

step "Verifying the Authenticode signature with osslsigncode against the server's CA"
osslsigncode verify -CAfile "$ca" -in "$work/hello-signed.exe" | grep -E 'Subject:|Signature verification|Succeeded'

step "The audit trail of the key, as the administrator sees it (signum-util admin audit)"
as_admin "$util" admin audit --project demo | cut -c1-150
"$server" audit verify --state "$work/state"

step "Usage of the project's keys today"
as_admin "$util" admin usage --project demo

if [ "$keep_console" = 1 ]; then
  step "The web console"
  echo "open $url/console/ in a browser on this machine (the certificate is issued by $ca;"
  echo "trust that CA or accept the warning for localhost)"
  echo "log in as the administrator with the API key in $work/admin.key"
  echo "  (first login: scan the QR code with an authenticator app, then give its code),"
  echo "or as the signer release-bot with the API key in $work/signer.key (no code needed)"
  echo "Ctrl-C stops the server and removes $work"
  wait "$pid" || true
  exit 0
fi
echo "(bash scripts/demo.sh --console keeps the server running for the web console)"

step "Stopping the agents and the server"
as_signer "$util" agent stop
as_admin "$util" agent stop
kill -TERM "$pid"
wait "$pid"
pid=""
echo "stopped cleanly"
