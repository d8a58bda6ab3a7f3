#!/usr/bin/env bash
# On a Mac, after build-app.sh: the signed, notarized installer Signum-VERSION.pkg with
# /usr/local/signum (agent, util, module), /Applications/Signum.app and the two LaunchAgents
# (macos-ctk/README.md, step 2).
#   INSTALLER_IDENTITY="Developer ID Installer: Example (ABCDE12345)" \
#   NOTARY_PROFILE=signum-notary bash macos-ctk/packaging/build-pkg.sh [BUILD_DIR]
# NOTARY_PROFILE: made once with `xcrun notarytool store-credentials signum-notary`.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${INSTALLER_IDENTITY:?set INSTALLER_IDENTITY (a Developer ID Installer identity)}"
: "${NOTARY_PROFILE:?set NOTARY_PROFILE (xcrun notarytool store-credentials)}"
build=${1:-build-macos}
version=$(sed -n 's/^project(signum VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
stage="$build/pkg"
rm -rf "$stage"
mkdir -p "$stage/tools/usr/local/signum" "$stage/tools/Library/LaunchAgents" \
         "$stage/app/Applications" "$stage/out"

# The tools: what cmake installs (already signed by build-app.sh), and the LaunchAgents.
DESTDIR="$PWD/$stage/tools" cmake --install "$build" --prefix /usr/local/signum
cp macos-ctk/packaging/com.signum.agent.plist macos-ctk/packaging/com.signum.keychain-sync.plist \
   "$stage/tools/Library/LaunchAgents/"
pkgbuild --root "$stage/tools" --install-location / --identifier com.signum.tools \
  --version "$version" "$stage/out/signum-tools.pkg"

# The app, never relocated to another copy of it found elsewhere on the disk; installed after
# the tools, its postinstall starts both LaunchAgents and registers the extension.
ditto "$build/Signum.app" "$stage/app/Applications/Signum.app"
pkgbuild --analyze --root "$stage/app" "$stage/app-component.plist"
plutil -replace 0.BundleIsRelocatable -bool NO "$stage/app-component.plist"
pkgbuild --root "$stage/app" --install-location / --component-plist "$stage/app-component.plist" \
  --identifier com.signum.app --version "$version" --scripts macos-ctk/packaging/scripts \
  "$stage/out/signum-app.pkg"

productbuild --synthesize --package "$stage/out/signum-tools.pkg" \
  --package "$stage/out/signum-app.pkg" "$stage/distribution.xml"
productbuild --distribution "$stage/distribution.xml" --package-path "$stage/out" \
  --version "$version" "$stage/Signum-unsigned.pkg"
productsign --sign "$INSTALLER_IDENTITY" --timestamp "$stage/Signum-unsigned.pkg" \
  "$build/Signum-$version.pkg"
pkgutil --check-signature "$build/Signum-$version.pkg"
xcrun notarytool submit "$build/Signum-$version.pkg" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$build/Signum-$version.pkg"
echo "built $build/Signum-$version.pkg"
