#!/usr/bin/env bash
# Builds the third-party libraries of the Windows (mingw-w64) build from Debian's source
# packages: mbedTLS (client library crypto, the agent's ES256 assertions), cJSON (the agent)
# and CMocka (unit tests). Sources are fetched with apt through a private deb-src list and
# private state directories, so the system's apt configuration is untouched; nothing lands in
# the repository. The result is cached: a rerun with the same versions does nothing.
#   MINGW_HOST  the target (default x86_64-w64-mingw32; i686-w64-mingw32 for 32-bit Windows)
#   DEPS_DIR    where to build and install (default: build-mingw-deps, build-mingw32-deps for
#               i686: one directory per architecture)
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${MINGW_HOST:-x86_64-w64-mingw32}
case $HOST in
  x86_64-*) default_dir=build-mingw-deps ;;
  i686-*) default_dir=build-mingw32-deps ;;
  *) echo "build-mingw-deps: unknown MINGW_HOST $HOST" >&2; exit 2 ;;
esac
DEPS_DIR=$(realpath -m "${DEPS_DIR:-$default_dir}")
PREFIX=$DEPS_DIR/prefix
PACKAGES=(mbedtls cjson cmocka)
STAMP=$PREFIX/.stamp
WANT="v1 ${PACKAGES[*]} $(command -v $HOST-gcc) $($HOST-gcc -dumpversion)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "build-mingw-deps: cached in $PREFIX"
  exit 0
fi

APT=$DEPS_DIR/apt
SRC=$DEPS_DIR/src
rm -rf "$PREFIX" "$SRC"
mkdir -p "$APT/sources.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$SRC" "$PREFIX"
cat >"$APT/sources.d/signum-deb-src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_opts=(-o "Dir::Etc::SourceParts=$APT/sources.d" -o Dir::Etc::SourceList=/dev/null
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
          -o APT::Sandbox::User=root -q)
echo "build-mingw-deps: fetching Debian sources: ${PACKAGES[*]}"
apt-get "${apt_opts[@]}" update >"$DEPS_DIR/apt-update.log" 2>&1 ||
  { cat "$DEPS_DIR/apt-update.log" >&2; exit 1; }
(cd "$SRC" && apt-get "${apt_opts[@]}" source --download-only "${PACKAGES[@]}" >"$DEPS_DIR/apt-source.log" 2>&1) ||
  { cat "$DEPS_DIR/apt-source.log" >&2; exit 1; }
for dsc in "$SRC"/*.dsc; do
  name=$(basename "$dsc" .dsc)
  (cd "$SRC" && dpkg-source --no-check -x "$(basename "$dsc")" "${name%%_*}" >/dev/null)
done

cross=(-DCMAKE_SYSTEM_NAME=Windows -DCMAKE_C_COMPILER=$HOST-gcc -DCMAKE_RC_COMPILER=$HOST-windres
       -DCMAKE_FIND_ROOT_PATH=/usr/$HOST -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_BUILD_TYPE=Release)

echo "build-mingw-deps: mbedtls"
cmake -S "$SRC/mbedtls" -B "$DEPS_DIR/b-mbedtls" "${cross[@]}" -DENABLE_TESTING=OFF \
  -DENABLE_PROGRAMS=OFF -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
  -DMBEDTLS_FATAL_WARNINGS=OFF >"$DEPS_DIR/mbedtls.log" 2>&1
cmake --build "$DEPS_DIR/b-mbedtls" -j"$(nproc)" --target install >>"$DEPS_DIR/mbedtls.log" 2>&1 ||
  { tail -40 "$DEPS_DIR/mbedtls.log" >&2; exit 1; }

echo "build-mingw-deps: cjson"
mkdir -p "$PREFIX/include/cjson" "$PREFIX/lib" "$DEPS_DIR/b-cjson"
$HOST-gcc -O2 -std=c89 -c "$SRC/cjson/cJSON.c" -o "$DEPS_DIR/b-cjson/cJSON.o"
$HOST-ar rcs "$PREFIX/lib/libcjson.a" "$DEPS_DIR/b-cjson/cJSON.o"
cp "$SRC/cjson/cJSON.h" "$PREFIX/include/cjson/"

echo "build-mingw-deps: cmocka"
cmake -S "$SRC/cmocka" -B "$DEPS_DIR/b-cmocka" "${cross[@]}" -DWITH_EXAMPLES=OFF \
  -DUNIT_TESTING=OFF -DWITH_STATIC_LIB=ON -DPICKY_DEVELOPER=OFF >"$DEPS_DIR/cmocka.log" 2>&1
cmake --build "$DEPS_DIR/b-cmocka" -j"$(nproc)" --target install >>"$DEPS_DIR/cmocka.log" 2>&1 ||
  { tail -40 "$DEPS_DIR/cmocka.log" >&2; exit 1; }

echo "$WANT" >"$STAMP"
echo "build-mingw-deps: installed into $PREFIX"
