#!/usr/bin/env bash
# On a Mac: builds the agent, signum-util, libsignumpkcs11.dylib and Signum.app with its token
# extension, and signs every binary with the hardened runtime (macos-ctk/README.md, step 1).
# Needs Xcode's command line tools and Homebrew's cmake pkg-config openssl@3 curl cjson mbedtls
# p11-kit.
#   TEAM_ID=ABCDE12345 APP_IDENTITY="Developer ID Application: Example (ABCDE12345)" \
#     bash macos-ctk/packaging/build-app.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TEAM_ID:?set TEAM_ID (the Apple team id)}"
: "${APP_IDENTITY:?set APP_IDENTITY (a Developer ID Application identity)}"
build=${1:-build-macos}
version=$(sed -n 's/^project(signum VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
brew=$(brew --prefix)
export PKG_CONFIG_PATH="$brew/opt/openssl@3/lib/pkgconfig:$brew/opt/curl/lib/pkgconfig:${PKG_CONFIG_PATH:-}"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_OSX_DEPLOYMENT_TARGET=11.0 \
  -DCMAKE_INSTALL_PREFIX=/usr/local/signum -DSIGNUM_MACOS_APP_GROUP="$TEAM_ID.com.signum" \
  -DCMAKE_PREFIX_PATH="$brew"
cmake --build "$build" -j"$(sysctl -n hw.ncpu)"

# The Objective-C over the shim and the client library (static; mbedTLS inside, hidden).
libs=("$build/macos-ctk/libsignum-ctk-shim.a" "$build/agent-core/libsignum-client.a"
      "$build/common/libsignum_common.a" "$brew/opt/mbedtls/lib/libmbedx509.a"
      "$brew/opt/mbedtls/lib/libmbedcrypto.a")
objc=(clang -fobjc-arc -mmacosx-version-min=11.0 -O2 -g -Wall -Wextra -Werror
      -Imacos-ctk/shim -Imacos-ctk/token -Imacos-ctk/app -Iagent-core/include)
frameworks=(-framework Foundation -framework CryptoTokenKit -framework Security)
app="$build/Signum.app"
appex="$app/Contents/PlugIns/SignumToken.appex"
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$appex/Contents/MacOS"
"${objc[@]}" -fapplication-extension macos-ctk/token/SignumTokenDriver.m \
  macos-ctk/token/SignumToken.m macos-ctk/token/SignumTokenSession.m "${libs[@]}" \
  "${frameworks[@]}" -Xlinker -e -Xlinker _NSExtensionMain -o "$appex/Contents/MacOS/SignumToken"
"${objc[@]}" macos-ctk/app/SignumHost.m macos-ctk/app/main.m "${libs[@]}" "${frameworks[@]}" \
  -o "$app/Contents/MacOS/Signum"
sed "s/@VERSION@/$version/g" macos-ctk/token/Info.plist > "$appex/Contents/Info.plist"
sed "s/@VERSION@/$version/g" macos-ctk/app/Info.plist > "$app/Contents/Info.plist"
sed "s/@TEAM_ID@/$TEAM_ID/g" macos-ctk/token/SignumToken.entitlements > "$build/SignumToken.entitlements"
sed "s/@TEAM_ID@/$TEAM_ID/g" macos-ctk/app/Signum.entitlements > "$build/Signum.entitlements"

# Inside out: the extension, then the app; the command-line tools and the module on their own.
codesign --force --options runtime --timestamp --entitlements "$build/SignumToken.entitlements" \
  --sign "$APP_IDENTITY" "$appex"
codesign --force --options runtime --timestamp --entitlements "$build/Signum.entitlements" \
  --sign "$APP_IDENTITY" "$app"
for f in agent-core/signum-agent agent-core/signum-util linux-pkcs11/libsignumpkcs11.dylib; do
  codesign --force --options runtime --timestamp --sign "$APP_IDENTITY" "$build/$f"
done
codesign --verify --strict --deep --verbose=2 "$app"
echo "built $app and the tools in $build"
