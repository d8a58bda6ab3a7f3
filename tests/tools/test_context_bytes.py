"""A tool whose path and command line are not UTF-8 signs through libsignumpkcs11.so -> agent ->
server. What the kernel says about a process is bytes (here Latin-1 0xE9 in the tool's own
directory and in its file names); the agent escapes them losslessly (an invalid byte as the
text \\xNN, a backslash as \\\\: agent-core/README.md), so the server's JSON parser takes the
request and the audit record holds the escaped command line, which unescapes to the exact
bytes. A command line longer than the server's cap is cut on a character boundary, never inside
an escape."""

import os
import re
import shutil
import unittest

from tools_harness import MODULE, ToolTestCase

CMDLINE_MAX = 4096  # the server's cap on context.command_line (server/src/api/sign.c)


def unescape(text):
    """The agent's escaping reversed: \\\\ -> backslash, \\xNN -> byte NN."""
    out, i, raw = bytearray(), 0, text.encode("utf-8")
    while i < len(raw):
        if raw[i:i + 1] == b"\\":
            if raw[i + 1:i + 2] == b"\\":
                out += b"\\"
                i += 2
                continue
            m = re.match(rb"x([0-9a-f]{2})", raw[i + 1:i + 4])
            if not m:
                raise ValueError("a backslash that is no escape at %d in %r" % (i, text[:80]))
            out.append(int(m.group(1), 16))
            i += 4
            continue
        out.append(raw[i])
        i += 1
    return bytes(out)


class ContextBytes(ToolTestCase):
    KEYS = (("rel-ec", "ec-p256"),)

    @classmethod
    def prepare(cls):
        # A copy of pkcs11-tool in a directory whose name is Latin-1, not UTF-8.
        cls.bindir = os.path.join(os.fsencode(cls.dir), b"bin-caf\xe9")
        os.mkdir(cls.bindir)
        cls.tool_path = os.path.join(cls.bindir, b"pkcs11-tool")
        shutil.copy2(shutil.which("pkcs11-tool"), cls.tool_path)

    def sign(self, out_name, extra=()):
        """Signs msg-\\xe9.txt with the copied tool; returns (argv, output file, audit record)."""
        msg = os.path.join(os.fsencode(self.dir), b"msg-caf\xe9.txt")
        with open(msg, "wb") as f:
            f.write(b"signed by a tool with a Latin-1 name\n")
        out = os.path.join(os.fsencode(self.dir), out_name)
        argv = [self.tool_path, b"--module", os.fsencode(MODULE), b"--sign", b"-m",
                b"ECDSA-SHA256", b"--signature-format", b"openssl", b"--id",
                self.key_id("rel-ec").encode(), b"-i", msg, b"-o", out] + list(extra)
        before = self.server.audit_last_seq()
        proc = self.tool(argv)
        self.assertEqual(proc.returncode, 0, "the tool could not sign:\n" + proc.out)
        self.openssl_verify("rel-ec", os.fsdecode(msg), os.fsdecode(out))
        signs = self.audit_signs(before)
        self.assertEqual(len(signs), 1, signs)
        return argv, signs[0]["detail"]["client"]

    def test_latin1_path_and_arguments(self):
        # The output name also holds a backslash and the text "\x41", which must stay apart
        # from an escaped byte.
        argv, client = self.sign(b"sig-\\x41-\xe9.der")
        self.assertIn("bin-caf\\xe9/pkcs11-tool", client["application"])
        self.assertEqual(unescape(client["application"]), os.path.realpath(self.tool_path))
        self.assertIn("msg-caf\\xe9.txt", client["command_line"])
        self.assertIn("sig-\\\\x41-\\xe9.der", client["command_line"])
        self.assertEqual(unescape(client["command_line"]), b" ".join(argv))

    def test_long_command_line_is_cut_on_a_boundary(self):
        # 900 Latin-1 bytes escape to 3,600 characters, and 600 euro signs (3 bytes each) stay
        # as they are: over the server's cap, so the agent cuts inside the euro signs, on a
        # character boundary.
        filler = [b"--application-label", b"\xe9" * 900 + "\u20ac".encode() * 600]
        argv, client = self.sign(b"long.der", filler)
        line = client["command_line"]
        self.assertLessEqual(len(line.encode("utf-8")), CMDLINE_MAX)
        self.assertGreater(len(line.encode("utf-8")), CMDLINE_MAX - 3)
        self.assertTrue(line.endswith("\u20ac"), line[-20:])
        whole = b" ".join(argv)
        cut = unescape(line)  # raises if an escape was cut
        self.assertTrue(whole.startswith(cut), "not a prefix of the real command line")


if __name__ == "__main__":
    unittest.main(verbosity=2)
