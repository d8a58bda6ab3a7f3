#!/usr/bin/env bash
# macos.syntax: the C that libsignumpkcs11.dylib, signum-agent and signum-util are built from on
# macOS, checked by clang on Linux: the macOS-only files against glibc plus the Darwin
# declarations in include/, and the POSIX files shared with macOS without _GNU_SOURCE (so a
# GNU-only call such as secure_getenv, accept4 or pipe2 there fails this check). A check of
# syntax and types, not a macOS build: Darwin's own headers may still disagree (README).
# Usage: syntax.sh CLANG SOURCE_DIR
set -euo pipefail
clang=$1
src=$2
here=$(cd "$(dirname "$0")" && pwd)
files=(
  agent-core/src/common/posix_macos.c agent-core/src/agent/caller_macos.c
  agent-core/src/util/keychain_macos.c
  agent-core/src/client/client.c agent-core/src/client/client_posix.c agent-core/src/client/crypto.c
  agent-core/src/common/ipc.c agent-core/src/common/ipc_io_posix.c
  agent-core/src/agent/main.c agent-core/src/agent/config.c agent-core/src/agent/cache_posix.c
  agent-core/src/agent/ipcserver.c agent-core/src/agent/ipcserver_posix.c
  agent-core/src/agent/session.c agent-core/src/agent/credentials.c
  agent-core/src/util/main.c agent-core/src/util/os_posix.c agent-core/src/util/doctor_posix.c
  "$src"/linux-pkcs11/src/*.c
  "$src"/macos-ctk/shim/*.c
)
for f in "${files[@]}"; do
  f=${f#"$src"/}
  "$clang" -fsyntax-only -std=c11 -D__APPLE__ -D_DEFAULT_SOURCE \
    -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wimplicit-fallthrough -Wformat=2 \
    -include "$here/include/darwin.h" -I"$here/include" \
    -I"$src/agent-core/include" -I"$src/agent-core/src" -I"$src/agent-core/src/agent" \
    -I"$src/agent-core/src/util" -I"$src/common/include" -I"$src/linux-pkcs11/src" \
    -I"$src/macos-ctk/shim" $(pkg-config --cflags p11-kit-1 libcjson) \
    -DSIGNUM_VERSION='"0"' -DSIGNUM_VERSION_MAJOR=0 -DSIGNUM_VERSION_MINOR=1 "$src/$f"
  echo "ok $f"
done
