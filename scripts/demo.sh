#!/usr/bin/env bash
# The main job, end to end on this machine: install dependencies, build, create a server
# state directory (SoftHSMv2 token, database, CA, TLS certificate, admin key), start the
# server on 127.0.0.1, create a key and a code-signing certificate in the HSM, sign a file's
# digest over HTTPS, verify the signature with openssl, sign a Windows PE with osslsigncode
# through libsignumpkcs11.so (module -> signum-agent -> server) and verify it, show the audit
# trail, stop the agent and the server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
bash scripts/build.sh
server="$root/build/server/signum-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/signum-demo.XXXXXX")
pid=""
module="$root/build/linux-pkcs11/libsignumpkcs11.so"
# The environment of a user whose signum-agent the module starts on demand (its own runtime
# and cache directories; credentials from the environment, as in CI).
as_user() {
  env XDG_RUNTIME_DIR="$work/run" XDG_CACHE_HOME="$work/cache" XDG_CONFIG_HOME="$work/config" \
    SIGNUM_SERVER="$url" SIGNUM_CA_FILE="$ca" SIGNUM_API_KEY="$(cat "$work/admin.key")" \
    SIGNUM_AGENT="$root/build/agent-core/signum-agent" "$@"
}
cleanup() {
  if [ -S "$work/run/signum/agent.sock" ]; then
    as_user "$root/build/agent-core/signum-util" agent stop >/dev/null 2>&1 || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

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

# JSON over HTTPS with the server's CA; exits non-zero on any HTTP error.
api() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sS --fail-with-body --cacert "$ca" -X "$method" -H "Authorization: Bearer ${token:-}")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  curl "${args[@]}" "$url$path"
}
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

curl -sS --cacert "$ca" "$url/healthz"; echo

step "Logging in with the admin API key"
token=$(api POST /api/v1/auth/token "{\"grant_type\":\"api_key\",\"api_key\":\"$(cat "$work/admin.key")\"}" | json 'd["access_token"]')
echo "got a short-lived access token"

step "Creating an RSA-2048 key inside the HSM and a code-signing certificate from the built-in CA"
api POST /api/v1/admin/keys '{"name":"release","type":"rsa2048"}' | json '"key %s (%s), CKA_ID %s" % (d["name"], d["type"], d["id"])'
api POST /api/v1/admin/keys/release/certificate '{"common_name":"Demo Release Signing"}' | json 'd["certificate_pem"]' > "$work/release.crt"
openssl x509 -in "$work/release.crt" -noout -subject -issuer -ext extendedKeyUsage
openssl verify -purpose any -CAfile "$ca" "$work/release.crt"

step "Granting the admin the right to sign (admins cannot sign without a grant)"
api POST /api/v1/admin/keys/release/grants '{"user":"admin"}' >/dev/null && echo "granted"

step "Signing a file: only its SHA-256 digest goes to the server"
printf 'Signum demo release artefact, %s\n' "$(date -u +%FT%TZ)" > "$work/artefact.txt"
digest=$(openssl dgst -sha256 -binary "$work/artefact.txt" | base64 -w0)
api POST /api/v1/sign "{\"key\":\"release\",\"mechanism\":\"rsa-pkcs1\",\"hash\":\"sha256\",\"digest\":\"$digest\",\"request_id\":\"demo-1\",\"context\":{\"application\":\"demo.sh\"}}" \
  | json 'd["signature"]' | base64 -d > "$work/artefact.sig"
echo "signature: $(stat -c %s "$work/artefact.sig") bytes"

step "Verifying the signature with openssl against the certificate's public key"
openssl x509 -in "$work/release.crt" -pubkey -noout > "$work/release.pub"
openssl dgst -sha256 -verify "$work/release.pub" -signature "$work/artefact.sig" "$work/artefact.txt"

step "Signing a Windows PE with osslsigncode through the PKCS#11 module (libsignumpkcs11.so)"
printf '#include <stdio.h>\nint main(void) { puts("signed by Signum"); return 0; }\n' > "$work/hello.c"
x86_64-w64-mingw32-gcc -O2 -s -o "$work/hello.exe" "$work/hello.c"
mkdir -m 700 "$work/run"
echo "the module starts the agent on demand; the token it shows:"
as_user pkcs11-tool --module "$module" -L | grep -E 'token (label|flags)'
uri="pkcs11:token=Signum%20admin;object=release"
as_user osslsigncode sign -pkcs11module "$module" -pkcs11cert "$uri;type=cert" -key "$uri;type=private" \
  -h sha256 -n "Signum demo" -in "$work/hello.exe" -out "$work/hello-signed.exe" | grep -v '^Engine'
echo "osslsigncode hashed the PE locally; only its digest went to the server"

step "Verifying the Authenticode signature with osslsigncode against the server's CA"
osslsigncode verify -CAfile "$ca" -in "$work/hello-signed.exe" | grep -E 'Subject:|Signature verification|Succeeded'

step "The audit trail (read from the live database; the server keeps running)"
"$server" audit show --state "$work/state" | cut -c1-160
"$server" audit verify --state "$work/state"

step "Stopping the agent and the server"
as_user "$root/build/agent-core/signum-util" agent stop
kill -TERM "$pid"
wait "$pid"
pid=""
echo "stopped cleanly"
