#!/usr/bin/env bash
# Builds the packages from this working tree (tracked and new files, not ignored ones) into
# OUT: the .debs with dpkg-buildpackage (debian/), checked by lintian, and the RPMs with
# rpmbuild (the spec CMake makes from installer/rpm/signum.spec.in). Used by run.sh.
#   tests/packaging/build-packages.sh OUT [--deb-only|--rpm-only]
# Needs: scripts/install-deps.sh --packaging (debhelper, lintian, rpm).
set -euo pipefail
out=${1:?usage: build-packages.sh OUT [--deb-only|--rpm-only]}
what=${2:-all}
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^project(signum VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
mkdir -p "$out"
out=$(cd "$out" && pwd)

# A copy of the tree as git would commit it: the build never writes into the work tree.
copy_tree() {
  local dest=$1
  mkdir -p "$dest"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      # Deleted but not yet committed files, and symbolic links to outside build trees, stay out.
      [ -f "$f" ] && [ ! -L "$f" ] && printf '%s\0' "$f"
    done | tar --null -T - -cf -) | tar -C "$dest" -xf -
}

if [ "$what" != --rpm-only ]; then
  echo "== dpkg-buildpackage (signum $version)"
  rm -rf "$out/deb" && mkdir -p "$out/deb"
  copy_tree "$out/deb/signum-$version"
  (cd "$out/deb/signum-$version" && nice dpkg-buildpackage -b -us -uc >"$out/deb/build.log" 2>&1) ||
    { tail -40 "$out/deb/build.log"; echo "dpkg-buildpackage failed (log: $out/deb/build.log)" >&2; exit 1; }
  rm -rf "$out/deb/signum-$version"
  ls "$out/deb"/*.deb
  echo "== lintian (errors, warnings and pedantic tags fail; overrides: debian/*.lintian-overrides)"
  # --fail-on info: also info tags fail, so an override is the only way past one.
  lintian --fail-on error,warning,info,pedantic --pedantic --display-info --info \
    "$out/deb/signum_${version}_$(dpkg --print-architecture).changes"
  echo "lintian: clean"
fi

if [ "$what" != --deb-only ]; then
  echo "== rpmbuild (signum $version)"
  rm -rf "$out/rpm" && mkdir -p "$out/rpm/SOURCES"
  copy_tree "$out/rpm/src/signum-$version"
  tar -C "$out/rpm/src" -czf "$out/rpm/SOURCES/signum-$version.tar.gz" "signum-$version"
  # The spec with the version filled in, as CMake writes it (configure_file @ONLY).
  sed "s/@PROJECT_VERSION@/$version/g" "$root/installer/rpm/signum.spec.in" >"$out/rpm/signum.spec"
  # --nodeps: Debian's rpm has no RPM database of the build dependencies, which are installed
  # as Debian packages (scripts/install-deps.sh).
  nice rpmbuild -bb --nodeps --define "_topdir $out/rpm" --define "debug_package %{nil}" \
    "$out/rpm/signum.spec" >"$out/rpm/build.log" 2>&1 ||
    { tail -40 "$out/rpm/build.log"; echo "rpmbuild failed (log: $out/rpm/build.log)" >&2; exit 1; }
  rm -rf "$out/rpm/src" "$out/rpm/BUILD"
  ls "$out/rpm/RPMS"/*/*.rpm
fi
