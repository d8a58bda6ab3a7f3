#!/usr/bin/env python3
"""The packaging files, checked in seconds without building a package (ctest packaging.static;
the slow install test is tests/packaging/run.sh, `scripts/test.sh --packaging`).

- One version: project() in CMakeLists.txt (this build's CMakeCache), debian/changelog, the
  RPM spec CMake made, and what `signum-server --version` / `signum-util --version` print.
- signum-server.service: `systemd-analyze verify` accepts it, and
  `systemd-analyze security --offline` scores it exactly as docs/packaging.md records.
- `cmake --install` of this build installs exactly the files debian/*.install hand out, and
  the RPM spec's %files (rpmspec -P) name the same files per package as debian/ does.
- The maintainer scripts parse (sh -n); each lintian override has a comment saying why.
- Every pkg-config module the product's CMakeLists.txt require is a Build-Depends of
  debian/control (the Debian package owning its .pc file) and a BuildRequires of the spec, so a
  clean package build (sbuild, mock) finds what configure needs.

  check_static.py BUILD_DIR   (env SIGNUM_SERVER, SIGNUM_UTIL: the binaries of that build)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(ROOT, "build")
PACKAGES = ("signum-server", "signum-agent")


def read(*parts):
    with open(os.path.join(*parts)) as f:
        return f.read()


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, **kw)


def cmake_version():
    m = re.search(r"^CMAKE_PROJECT_VERSION:STATIC=(.*)$", read(BUILD, "CMakeCache.txt"), re.M)
    return m.group(1)


def deb_install_lines(pkg):
    """The paths (globs) debian/PKG.install and PKG.dirs hand to PKG."""
    out = []
    for ext in ("install", "dirs"):
        path = os.path.join(ROOT, "debian", pkg + "." + ext)
        if os.path.exists(path):
            out += [l.split()[0] for l in read(path).splitlines() if l.strip() and l[0] != "#"]
    return out


def rpm_files(spec_text, pkg):
    """The paths in the `%files PKG-SUFFIX` section of the spec (`rpmspec -P`: macros expanded)."""
    section = re.search(r"^%%files %s\n(.*?)(?=^%%(?:files|changelog|package|pre|post|preun|"
                        r"postun|description)\b|\Z)" % pkg.split("-", 1)[1], spec_text,
                        re.M | re.S).group(1)
    paths = []
    for line in section.splitlines():
        line = re.sub(r"%(doc|dir|config\(noreplace\)|attr\([^)]*\))\s*", "", line).strip()
        if line and not line.startswith("#"):
            paths.append(line)
    return paths


def basename(path):
    return os.path.basename(path.rstrip("*").rstrip("/")).replace(".gz", "")


class Version(unittest.TestCase):
    def test_one_version(self):
        version = cmake_version()
        changelog = re.match(r"signum \(([^)]+)\)", read(ROOT, "debian", "changelog")).group(1)
        self.assertEqual(changelog, version, "debian/changelog's first entry vs project()")
        spec = re.search(r"^Version:\s*(\S+)", read(BUILD, "signum.spec"), re.M).group(1)
        self.assertEqual(spec, version, "the spec CMake made vs project()")
        for env, name in (("SIGNUM_SERVER", "signum-server"), ("SIGNUM_UTIL", "signum-util")):
            proc = run([os.environ[env], "--version"])
            self.assertEqual((proc.returncode, proc.stdout), (0, "%s %s\n" % (name, version)))


class ServerUnit(unittest.TestCase):
    UNIT = os.path.join(ROOT, "installer", "systemd", "signum-server.service")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="signum-unit-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.copy = os.path.join(self.tmp, "signum-server.service")
        with open(self.copy, "w") as f:
            f.write(read(self.UNIT).replace("/usr/bin/signum-server", os.environ["SIGNUM_SERVER"]))

    def test_verify(self):
        proc = run(["systemd-analyze", "verify", "--man=no", self.copy])
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(proc.stdout, "")

    def test_security_score_as_documented(self):
        proc = run(["systemd-analyze", "security", "--offline=true", self.copy])
        self.assertEqual(proc.returncode, 0, proc.stdout)
        score = re.search(r"Overall exposure level for signum-server.service: (\d+\.\d)",
                          proc.stdout).group(1)
        doc = read(ROOT, "docs", "packaging.md")
        recorded = re.search(r"exposure level (\d+\.\d)", doc).group(1)
        self.assertEqual(score, recorded, "docs/packaging.md records another score:\n" +
                         proc.stdout)


# pkg-config modules the product links, under the name an RPM spec asks for them by
# (Fedora's openssl-devel provides libcrypto through pkgconfig(openssl), libevent-devel
# its libevent_* modules through pkgconfig(libevent), cjson-devel libcjson as cjson).
RPM_PKGCONFIG = {"libcrypto": "openssl", "libevent_openssl": "libevent",
                 "libevent_pthreads": "libevent", "libcjson": "cjson"}
PRODUCT_CMAKE = ("server", "agent-core", "linux-pkcs11", "common")


def product_pkgconfig_modules():
    mods = set()
    for comp in PRODUCT_CMAKE:
        path = os.path.join(ROOT, comp, "CMakeLists.txt")
        for call in re.findall(r"pkg_check_modules\(([^)]*)\)", read(path)):
            for word in call.split()[1:]:
                if word not in ("REQUIRED", "IMPORTED_TARGET", "QUIET"):
                    mods.add(re.split(r"[<>=]", word)[0])
    return mods


class BuildDependencies(unittest.TestCase):
    def test_every_pkgconfig_module_is_declared(self):
        mods = product_pkgconfig_modules()
        self.assertIn("libpq", mods)  # the check reads what it should
        control = read(ROOT, "debian", "control")
        build_deps = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
        declared = {re.split(r"[\s(,]", d.strip())[0] for d in build_deps.split(",") if d.strip()}
        spec = read(BUILD, "signum.spec")
        wanted = set(re.findall(r"pkgconfig\(([^)]+)\)",
                                " ".join(re.findall(r"^BuildRequires:(.*)$", spec, re.M))))
        for mod in sorted(mods):
            pcdir = run(["pkg-config", "--variable=pcfiledir", mod]).stdout.strip()
            owner = run(["dpkg", "-S", os.path.join(pcdir, mod + ".pc")])
            self.assertEqual(owner.returncode, 0, mod + ": " + owner.stdout)
            deb = owner.stdout.split(":")[0]
            self.assertIn(deb, declared, "debian/control Build-Depends lacks %s (%s.pc)" %
                          (deb, mod))
            self.assertIn(RPM_PKGCONFIG.get(mod, mod), wanted,
                          "signum.spec BuildRequires lacks pkgconfig(%s)" %
                          RPM_PKGCONFIG.get(mod, mod))


class Contents(unittest.TestCase):
    def test_cmake_install_matches_debian_install(self):
        """dh_missing fails a package build on a file no package takes; this sees it sooner."""
        with tempfile.TemporaryDirectory(prefix="signum-install-") as dest:
            proc = run(["cmake", "--install", BUILD, "--prefix", "/usr"],
                       env=dict(os.environ, DESTDIR=dest))
            self.assertEqual(proc.returncode, 0, proc.stdout)
            installed = set()
            for d, _, files in os.walk(dest):
                installed |= set(files)
        claimed = {basename(p) for pkg in PACKAGES for p in deb_install_lines(pkg)}
        claimed.discard("signum")  # var/lib/signum (PKG.dirs)
        self.assertEqual(installed, claimed)

    def test_rpm_files_match_debian(self):
        proc = run(["rpmspec", "-P", os.path.join(BUILD, "signum.spec")])
        self.assertEqual(proc.returncode, 0, proc.stdout)
        spec = proc.stdout
        for pkg in PACKAGES:
            deb = {basename(p) for p in deb_install_lines(pkg)}
            if pkg == "signum-agent":
                deb.add("README.md")  # debian/signum-agent.docs
            rpm = {basename(p) for p in rpm_files(spec, pkg)}
            rpm.discard("signum")  # %dir /etc/signum; debian/ has it through the files in it
            deb.discard("signum")  # var/lib/signum, /etc/signum
            self.assertEqual(rpm, deb, pkg)

    def test_maintainer_scripts_parse(self):
        for name in sorted(os.listdir(os.path.join(ROOT, "debian"))):
            if re.search(r"\.(postinst|postrm|preinst|prerm)$", name):
                proc = run(["sh", "-n", os.path.join(ROOT, "debian", name)])
                self.assertEqual(proc.returncode, 0, name + ": " + proc.stdout)

    def test_lintian_overrides_say_why(self):
        for name in sorted(os.listdir(os.path.join(ROOT, "debian"))):
            if name.endswith("lintian-overrides"):
                previous = ""
                for line in read(ROOT, "debian", name).splitlines():
                    if line and not line.startswith("#"):
                        self.assertTrue(previous.startswith("#"),
                                        "%s: no comment before %s" % (name, line))
                    previous = line


if __name__ == "__main__":
    unittest.main(verbosity=2)
