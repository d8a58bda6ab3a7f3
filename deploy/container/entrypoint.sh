#!/bin/sh
# Container entry point for signum-server.
#
# Assembles the state directory ($SIGNUM_STATE) from read-only mounts, then execs the server
# (PID 1 gets SIGTERM and drains). Mounted secrets are root-owned or group-readable, which
# signum-server and libpq refuse for PIN and password files: they are copied to files of this
# user with mode 0600.
#
#   /etc/signum/config/signum-server.conf  the configuration (ConfigMap)
#   /etc/signum/tls/tls.crt, tls.key       the HTTPS certificate chain and key (Secret)
#   /etc/signum/ca/ca.crt                  the built-in CA's certificate (ConfigMap or Secret)
#   /etc/signum/secrets/hsm-user.pin       the HSM partition's user PIN (Secret)
#   /etc/signum/secrets/pgpass             libpq password file line (Secret, optional),
#                                          copied to /run/signum/pgpass
# (SIGNUM_CONFIG_DIR, SIGNUM_RUN_DIR and SIGNUM_SERVER_BIN move /etc/signum, /run/signum and
# the binary, for tests/deploy/test_entrypoint.py.)
#
# A state directory that already holds signum-server.conf (a volume made by
# `signum-server init`, the single-node case) is used as it is.
set -eu

state=${SIGNUM_STATE:-/var/lib/signum/state}
cfg=${SIGNUM_CONFIG_DIR:-/etc/signum}
run=${SIGNUM_RUN_DIR:-/run/signum}
server=${SIGNUM_SERVER_BIN:-/usr/bin/signum-server}
umask 077

copy() { # copy SRC DST MODE: only if SRC exists
    if [ -e "$1" ]; then
        mkdir -p "$(dirname "$2")"
        cp "$1" "$2.tmp" && chmod "$3" "$2.tmp" && mv -f "$2.tmp" "$2"
    fi
}

if [ "${1:-serve}" != serve ]; then
    # Any other subcommand (init, audit verify, ...) as given, e.g.
    #   docker run -v signum:/var/lib/signum IMAGE init --state /var/lib/signum/state
    exec "$server" "$@"
fi
[ "$#" -gt 0 ] && shift

if [ -f "$cfg/config/signum-server.conf" ]; then
    mkdir -p "$state"
    copy "$cfg/config/signum-server.conf" "$state/signum-server.conf" 0600
    copy "$cfg/tls/tls.crt" "$state/tls/server.crt" 0644
    copy "$cfg/tls/tls.key" "$state/tls/server.key" 0600
    copy "$cfg/ca/ca.crt" "$state/ca/ca.crt" 0644
    copy "$cfg/secrets/hsm-user.pin" "$state/hsm/user.pin" 0600
    copy "$cfg/secrets/pgpass" "$run/pgpass" 0600
elif [ ! -f "$state/signum-server.conf" ]; then
    echo "signum entrypoint: no $cfg/config/signum-server.conf and no $state/signum-server.conf;" \
         "run 'signum-server init --state $state' first (docs/deploy.md)" >&2
    exit 2
fi
exec "$server" serve --state "$state" "$@"
