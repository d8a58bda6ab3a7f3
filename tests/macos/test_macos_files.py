"""macos.files: the macOS token's property lists, entitlements and packaging scripts, checked on
Linux. Every .plist and .entitlements under macos-ctk/ parses (python3 plistlib) and says what
the code and the scripts around it assume: bundle ids, the extension point and class id, the
sandbox, the app group (the agent's socket) and keychain access group, the LaunchAgents' labels
and programs; shellcheck passes over macos-ctk/packaging/*.sh and scripts/postinstall. What
it does not show: that macOS accepts them (macos-ctk/README.md, the checklist)."""

import glob
import os
import plistlib
import re
import shutil
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CTK = os.path.join(ROOT, "macos-ctk")
PKG = os.path.join(CTK, "packaging")


def load(*parts):
    with open(os.path.join(CTK, *parts), "rb") as f:
        return plistlib.load(f)


def text(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


class PropertyLists(unittest.TestCase):

    def test_every_plist_and_entitlements_parses(self):
        files = sorted(glob.glob(os.path.join(CTK, "**", "*.plist"), recursive=True) +
                       glob.glob(os.path.join(CTK, "**", "*.entitlements"), recursive=True))
        self.assertEqual(len(files), 6, files)
        for f in files:
            with open(f, "rb") as fh:
                self.assertIsInstance(plistlib.load(fh), dict, f)

    def test_host_app(self):
        app = load("app", "Info.plist")
        self.assertEqual(app["CFBundleIdentifier"], "com.signum.Signum")
        self.assertEqual(app["CFBundlePackageType"], "APPL")
        self.assertIs(app["LSUIElement"], True)
        # signum-util keychain and the sync LaunchAgent run this executable.
        exe = "/Applications/Signum.app/Contents/MacOS/" + app["CFBundleExecutable"]
        self.assertIn('#define HOST_APP "%s"' % exe, text("agent-core/src/util/keychain_macos.c"))
        sync = load("packaging", "com.signum.keychain-sync.plist")
        self.assertEqual(sync["ProgramArguments"], [exe, "--sync"])
        self.assertIs(sync["RunAtLoad"], True)

    def test_token_extension(self):
        app = load("app", "Info.plist")
        tok = load("token", "Info.plist")
        # An extension's bundle id extends its app's.
        self.assertTrue(tok["CFBundleIdentifier"].startswith(app["CFBundleIdentifier"] + "."))
        self.assertEqual(tok["CFBundlePackageType"], "XPC!")
        ext = tok["NSExtension"]
        self.assertEqual(ext["NSExtensionPointIdentifier"], "com.apple.ctk-tokens")
        principal = ext["NSExtensionPrincipalClass"]
        self.assertIn("@implementation %s" % principal, text("macos-ctk/token/SignumTokenDriver.m"))
        attrs = ext["NSExtensionAttributes"]
        self.assertNotIn("com.apple.ctk.token-type", attrs)  # persistent, not a smart card
        self.assertIn('#define SIGNUM_TOKEN_CLASS_ID    @"%s"' % attrs["com.apple.ctk.class-id"],
                      text("macos-ctk/app/SignumHost.h"))
        for plist in (app, tok):  # build-app.sh fills in the version
            self.assertEqual(plist["CFBundleVersion"], "@VERSION@")
            self.assertEqual(plist["CFBundleShortVersionString"], "@VERSION@")
            self.assertEqual(plist["LSMinimumSystemVersion"], "11.0")

    def test_entitlements(self):
        app = load("app", "Signum.entitlements")
        tok = load("token", "SignumToken.entitlements")
        want = {"com.apple.security.app-sandbox": True,
                "com.apple.security.application-groups": ["@TEAM_ID@.com.signum"],
                "keychain-access-groups": ["@TEAM_ID@.com.signum"]}
        self.assertEqual(app, want)
        self.assertEqual(tok, want)
        # The app group is where the agent's socket is: build-app.sh gives the agent the same
        # group, and the default in posix_macos.c has the same shape.
        build_app = text("macos-ctk/packaging/build-app.sh")
        self.assertIn('-DSIGNUM_MACOS_APP_GROUP="$TEAM_ID.com.signum"', build_app)
        self.assertIn('#define SIGNUM_APP_GROUP "SIGNUMTEAM.com.signum"',
                      text("agent-core/src/common/posix_macos.c"))
        for f in ("token/SignumToken.entitlements", "app/Signum.entitlements",
                  "token/Info.plist", "app/Info.plist"):
            self.assertIn("macos-ctk/%s >" % f, build_app.replace('"', ""))

    def test_launch_agents(self):
        agent = load("packaging", "com.signum.agent.plist")
        self.assertEqual(agent["ProgramArguments"],
                         ["/usr/local/signum/bin/signum-agent", "--foreground"])
        self.assertIn("-DCMAKE_INSTALL_PREFIX=/usr/local/signum",
                      text("macos-ctk/packaging/build-app.sh"))
        # launchd keeps the agent; the sandboxed token never starts one.
        self.assertIs(agent["KeepAlive"], True)
        self.assertIs(agent["RunAtLoad"], True)
        self.assertEqual(agent["EnvironmentVariables"], {"SIGNUM_IDLE_TIMEOUT": "0"})
        postinstall = text("macos-ctk/packaging/scripts/postinstall")
        build_pkg = text("macos-ctk/packaging/build-pkg.sh")
        jobs = re.search(r"^for job in (.*); do$", postinstall, re.M).group(1).split()
        self.assertEqual(sorted(jobs), ["com.signum.agent", "com.signum.keychain-sync"])
        for job in jobs:
            self.assertEqual(load("packaging", job + ".plist")["Label"], job)
            self.assertIn("macos-ctk/packaging/%s.plist" % job, build_pkg)


class Scripts(unittest.TestCase):

    def test_shellcheck(self):
        sc = shutil.which("shellcheck")
        self.assertIsNotNone(sc, "shellcheck is missing (scripts/install-deps.sh installs it)")
        files = sorted(glob.glob(os.path.join(PKG, "*.sh"))) + [
            os.path.join(PKG, "scripts", "postinstall")]
        self.assertEqual(len(files), 3, files)
        p = subprocess.run([sc] + files, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
