"""The module exports the PKCS#11 entry points and nothing else (nm -D shows nothing of mbedTLS
or the client library), and links no OpenSSL, no libcurl and no cJSON (ldd), so it cannot
re-enter itself through a host's OpenSSL provider or clash with a host's own copy."""

import os
import re
import subprocess
import sys
import unittest

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "linux-pkcs11",
    "libsignumpkcs11.so")

# PKCS#11 2.40 (68 functions) and the 24 that 3.0 added.
EXPECTED_COUNT = 68 + 24


def output(args):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
                          timeout=30).stdout.decode()


class ModuleFile(unittest.TestCase):

    def test_exports_only_entry_points(self):
        lines = output(["nm", "-D", "--defined-only", MODULE]).splitlines()
        names = [line.split()[-1] for line in lines if line.strip()]
        others = [n for n in names if not n.startswith("C_")]
        self.assertEqual(others, [], "exported beyond the C_* entry points")
        self.assertEqual(len(names), EXPECTED_COUNT, sorted(names))
        for fn in ("C_GetFunctionList", "C_GetInterfaceList", "C_GetInterface", "C_Sign",
                   "C_SignUpdate", "C_LoginUser", "C_SessionCancel"):
            self.assertIn(fn, names)
        self.assertFalse([n for n in names if re.search(r"mbedtls|sg_|cJSON|curl", n)])

    def test_links_no_openssl_curl_or_cjson(self):
        deps = output(["ldd", MODULE])
        for lib in ("libssl", "libcrypto", "libcurl", "libcjson", "libmbed", "libp11"):
            self.assertNotIn(lib, deps, "the module must not link %s:\n%s" % (lib, deps))
        allowed = ("linux-vdso", "libc.so", "ld-linux", "libasan", "libubsan", "libstdc++",
                   "libm.so", "libgcc_s", "libpthread", "libdl")
        for line in deps.splitlines():
            name = line.strip().split()[0] if line.strip() else ""
            self.assertTrue(not name or name.startswith(allowed) or name.startswith("/lib64"),
                            "unexpected dependency: %s" % line)

    def test_no_text_relocations_and_bind_now(self):
        dyn = output(["readelf", "-d", MODULE])
        self.assertNotIn("TEXTREL", dyn)
        self.assertIn("BIND_NOW", dyn)


if __name__ == "__main__":
    unittest.main(verbosity=2)
