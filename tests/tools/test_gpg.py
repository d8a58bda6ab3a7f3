"""OpenPGP through libsignumpkcs11.so: gpg with gnupg-pkcs11-scd as its smart-card daemon
(RSA), and what signs through gpg: rpmsign (checked with rpmkeys --checksig) and git commit -S
(checked with git verify-commit). The OpenPGP key is made here around the token's RSA key."""

import os
import re
import unittest

from tools_harness import MODULE, ToolTestCase

SPEC = """Name: signum-test
Version: 1
Release: 1
Summary: a package signed through Signum
License: MIT
BuildArch: noarch
%description
A package signed through Signum.
%files
"""


class Gpg(ToolTestCase):

    @classmethod
    def prepare(cls):
        home = cls.gnupg = cls.path("gnupg")
        os.mkdir(home, 0o700)
        with open(os.path.join(home, "gpg-agent.conf"), "w") as f:
            f.write("scdaemon-program /usr/bin/gnupg-pkcs11-scd\nallow-loopback-pinentry\n")
        with open(os.path.join(home, "gnupg-pkcs11-scd.conf"), "w") as f:
            f.write("providers p1\nprovider-p1-library %s\n" % MODULE)
        cls.addClassCleanup(lambda: cls.tool(["gpgconf", "--kill", "all"]))
        learn = cls.gpg_ok(["gpg-connect-agent", "SCD LEARN --force", "/bye"])
        ckaid = cls.key_id("rel-rsa").upper()
        grips = re.findall(r"KEYPAIRINFO ([0-9A-F]{40}) \S*/%s" % ckaid, learn)
        assert grips, "no keypair for rel-rsa in:\n" + learn
        cls.gpg_ok(["gpg-connect-agent", "learn --force", "/bye"])  # the agent's key stub
        batch = cls.write("keygen", "Key-Type: RSA\nKey-Grip: %s\nKey-Usage: sign\n"
                          "Name-Real: Signum Release\nName-Email: release@example.invalid\n"
                          "Expire-Date: 0\n%%commit\n" % grips[0])
        cls.gpg_ok(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "1234",
                    "--gen-key", batch])
        listing = cls.gpg_ok(["gpg", "--with-colons", "--list-keys", "release@example.invalid"])
        cls.fpr = re.search(r"^fpr:+([0-9A-F]{40}):", listing, re.M).group(1)
        cls.pub = cls.write("release.asc", cls.gpg_ok(["gpg", "--armor", "--export", cls.fpr]))

    @classmethod
    def env(cls, extra=None):
        e = super().env(extra)
        e["GNUPGHOME"] = cls.gnupg
        return e

    @classmethod
    def gpg_ok(cls, args):
        proc = cls.tool(args)
        assert proc.returncode == 0, "%s: %s" % (" ".join(args), proc.out)
        return proc.stdout.decode(errors="replace")

    def test_detach_sign_and_verify(self):
        f = self.write("release.tar", b"a release artefact\n" * 50)
        before = self.server.audit_last_seq()
        self.tool_ok(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "1234",
                      "-u", self.fpr, "--detach-sign", "--armor", f])
        proc = self.tool_ok(["gpg", "--verify", f + ".asc", f])
        self.assertIn('Good signature from "Signum Release <release@example.invalid>"', proc.out)
        signs = self.audit_signs(before)
        self.assertEqual(len(signs), 1)
        self.assertTrue(signs[0]["detail"]["client"]["application"].endswith("gnupg-pkcs11-scd"))
        with open(f, "ab") as fh:
            fh.write(b"tampered")
        self.assertNotEqual(self.tool(["gpg", "--verify", f + ".asc", f]).returncode, 0)

    def test_rpmsign(self):
        top = self.path("rpm")
        spec = self.write("signum-test.spec", SPEC)
        self.tool_ok(["rpmbuild", "-bb", "--nodeps", "--define", "_topdir " + top, spec])
        rpm = os.path.join(top, "RPMS", "noarch", "signum-test-1-1.noarch.rpm")
        self.tool_ok(["rpmsign", "--define", "__gpg /usr/bin/gpg", "--define",
                      "_gpg_name " + self.fpr, "--define",
                      "_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback --passphrase 1234",
                      "--addsign", rpm])
        db = self.path("rpmdb")
        os.mkdir(db)
        self.tool_ok(["rpmkeys", "--dbpath", db, "--import", self.pub])
        proc = self.tool_ok(["rpmkeys", "--dbpath", db, "--checksig", "-v", rpm])
        self.assertRegex(proc.out, r"Header V4 RSA/SHA(256|512) Signature, key ID [0-9a-f]+: OK")
        # Without the key imported, the same check fails: the signature is what was checked.
        empty = self.path("rpmdb-empty")
        os.mkdir(empty)
        proc = self.tool(["rpmkeys", "--dbpath", empty, "--checksig", "-v", rpm])
        self.assertNotEqual(proc.returncode, 0, proc.out)

    def test_git_commit_signing(self):
        repo = self.path("repo")
        os.mkdir(repo)
        git = ["git", "-C", repo, "-c", "user.name=Signum Release", "-c",
               "user.email=release@example.invalid", "-c", "gpg.program=gpg", "-c",
               "user.signingkey=" + self.fpr]
        self.tool_ok(["git", "init", "-q", repo])
        self.write("repo/README", "signed history\n")
        self.tool_ok(git + ["add", "README"])
        self.tool_ok(git + ["commit", "-q", "-S", "-m", "signed through Signum"],
                     extra_env={"GPG_TTY": ""})
        proc = self.tool_ok(git + ["verify-commit", "-v", "HEAD"])
        self.assertIn('Good signature from "Signum Release <release@example.invalid>"', proc.out)
        log = self.tool_ok(git + ["log", "--format=%G?", "-1"]).stdout.decode().strip()
        self.assertEqual(log, "G")


if __name__ == "__main__":
    unittest.main(verbosity=2)
