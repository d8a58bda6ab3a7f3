"""The RFC 3161 time-stamping authority at POST /tsa: real clients (openssl ts with curl,
osslsigncode, jarsigner) get tokens that their own verifiers accept; replayed, forged and
tampered queries get the PKIFailureInfo RFC 3161 names; a clock that went back is refused with
timeNotAvailable; serial numbers are never reused, not even across a restart; every token and
refusal is audited; the TSA key is sensitive and never extractable in the HSM."""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, SOFTHSM_MODULE, ServerTestCase, run  # noqa: E402

QUERY = "application/timestamp-query"
REPLY = "application/timestamp-reply"
TOOL_TIMEOUT = 120.0

# PKIFailureInfo bits (RFC 3161 section 2.4.2)
BAD_ALG, BAD_REQUEST, BAD_DATA_FORMAT = 0, 2, 5
TIME_NOT_AVAILABLE, UNACCEPTED_POLICY, UNACCEPTED_EXTENSION = 14, 15, 16


# ---- a little DER, enough to read a TimeStampResp and to forge queries --------------------------

def der_read(data, pos=0):
    """(tag, content, next position) of the element at pos."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def der_items(content):
    pos, out = 0, []
    while pos < len(content):
        tag, value, pos = der_read(content, pos)
        out.append((tag, value))
    return out


def der(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(b)]) + b
    return head + content


def seq(*parts):
    return der(0x30, b"".join(parts))


SHA256_ALG = seq(bytes.fromhex("0609608648016503040201"))
INT_ONE = bytes.fromhex("020101")


def ts_query(imprint, alg=SHA256_ALG, version=INT_ONE, extra=b""):
    return seq(version, seq(alg, der(0x04, imprint)), extra)


def parse_response(body):
    """(status, set of failInfo bits, status text, token DER or None)."""
    tag, resp, end = der_read(body)
    assert tag == 0x30 and end == len(body), body[:40]
    items = der_items(resp)
    info = der_items(items[0][1])
    status = int.from_bytes(info[0][1], "big")
    bits, text = set(), ""
    for t, v in info[1:]:
        if t == 0x30:
            text = "".join(s.decode() for _, s in der_items(v))
        elif t == 0x03:
            for i, byte in enumerate(v[1:]):
                for b in range(8):
                    if byte & (0x80 >> b):
                        bits.add(8 * i + b)
    token = None
    if len(items) > 1:
        token = der(items[1][0], items[1][1])
    return status, bits, text, token


class TsaTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"tsa": "open", "tsa_accuracy_ms": "500"}}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.url = "https://localhost:%d/tsa" % s.port
        cls.tsa_cert = os.path.join(s.state, "tsa", "tsa.crt")
        cls.work = os.path.join(s.root, "work")
        os.mkdir(cls.work)
        cls.data = cls.path("data.txt")
        with open(cls.data, "w") as f:
            f.write("what is timestamped\n")

    @classmethod
    def path(cls, name):
        return os.path.join(cls.work, name)

    def tool(self, args, check=True, cwd=None, env=None):
        proc = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=TOOL_TIMEOUT)
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        if check and proc.returncode != 0:
            self.fail("%s exited %d:\n%s" % (" ".join(args), proc.returncode, out))
        return proc.returncode, out

    def post(self, body, content_type=QUERY):
        r = self.server.request("POST", "/tsa", raw=body,
                                headers={"Content-Type": content_type})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), REPLY)
        return parse_response(r.body)

    def openssl_query(self, name, *opts):
        q = self.path(name)
        self.tool(["openssl", "ts", "-query", "-data", self.data, "-out", q] + list(opts))
        with open(q, "rb") as f:
            return q, f.read()

    def reply_text(self, resp_path):
        return self.tool(["openssl", "ts", "-reply", "-in", resp_path, "-text"])[1]

    def curl(self, query_path, out_path):
        rc, out = self.tool(["curl", "-sS", "--fail", "--cacert", self.server.ca_cert_path,
                             "-H", "Content-Type: " + QUERY, "--data-binary", "@" + query_path,
                             "-o", out_path, "-w", "%{content_type}", self.url])
        return out

    def assertRefused(self, result, bit):
        status, bits, text, token = result
        self.assertEqual(status, 2, "rejection: %r" % (result,))
        self.assertEqual(bits, {bit}, text)
        self.assertIsNone(token)
        return text

    # -- openssl ts | curl | openssl ts -verify
    def test_openssl_query_curl_verify(self):
        for alg in ("sha256", "sha384", "sha512"):
            with self.subTest(alg=alg):
                q, _ = self.openssl_query("q-%s.tsq" % alg, "-" + alg, "-cert")
                r = self.path("r-%s.tsr" % alg)
                self.assertEqual(self.curl(q, r), REPLY)
                text = self.reply_text(r)
                self.assertIn("Status: Granted.", text)
                self.assertIn("Policy OID: 2.25.330552714153707047874252638116543826072", text)
                self.assertIn("Hash Algorithm: %s" % alg, text)
                self.assertIn("Accuracy: unspecified seconds, 0x01F4 millis", text)
                self.assertIn("TSA: DirName:/CN=Signum Time-Stamping Authority", text)
                # certReq: the token carries the TSA certificate, the CA alone suffices.
                self.tool(["openssl", "ts", "-verify", "-in", r, "-queryfile", q, "-CAfile",
                           self.server.ca_cert_path])
                self.tool(["openssl", "ts", "-verify", "-in", r, "-data", self.data, "-CAfile",
                           self.server.ca_cert_path, "-untrusted", self.tsa_cert])

    def test_cert_req_false_leaves_the_certificate_out(self):
        q, query = self.openssl_query("nocert.tsq", "-sha256")
        status, _, _, token = self.post(query)
        self.assertEqual(status, 0)
        with_cert = self.post(self.openssl_query("cert.tsq", "-sha256", "-cert")[1])[3]
        with open(self.tsa_cert) as f:
            pem = f.read()
        cert_der = run(["openssl", "x509", "-outform", "DER"], input=pem.encode()).stdout
        self.assertNotIn(cert_der, token)
        self.assertIn(cert_der, with_cert)
        r = self.path("nocert.tsr")
        with open(r, "wb") as f:
            f.write(seq(seq(bytes.fromhex("020100")), token))
        rc, out = self.tool(["openssl", "ts", "-verify", "-in", r, "-queryfile", q, "-CAfile",
                             self.server.ca_cert_path], check=False)
        self.assertNotEqual(rc, 0, "without the certificate the signer is unknown: " + out)
        self.tool(["openssl", "ts", "-verify", "-in", r, "-queryfile", q, "-CAfile",
                   self.server.ca_cert_path, "-untrusted", self.tsa_cert])

    # -- replay: a fresh token each time, nonce echoed, serials differ and grow
    def test_replayed_query_gets_a_new_serial_and_the_same_nonce(self):
        q, _ = self.openssl_query("replay.tsq", "-sha256", "-cert")
        texts = []
        for i in range(2):
            r = self.path("replay%d.tsr" % i)
            self.curl(q, r)
            texts.append(self.reply_text(r))
            self.tool(["openssl", "ts", "-verify", "-in", r, "-queryfile", q, "-CAfile",
                       self.server.ca_cert_path])
        query_nonce = re.search(r"Nonce: (0x[0-9A-F]+)",
                                self.tool(["openssl", "ts", "-query", "-in", q, "-text"])[1])
        nonces = [re.search(r"Nonce: (0x[0-9A-F]+)", t).group(1) for t in texts]
        serials = [int(re.search(r"Serial number: (0x[0-9A-F]+)", t).group(1), 16)
                   for t in texts]
        self.assertEqual(nonces, [query_nonce.group(1)] * 2)
        self.assertGreater(serials[1], serials[0])
        # Both are audited, each with its serial.
        recs = [r for r in self.server.audit_show() if r["action"] == "tsa.timestamp" and
                r["outcome"] == "ok"]
        audited = {r["detail"]["serial"] for r in recs}
        self.assertTrue(set(serials) <= audited, (serials, audited))
        rec = [r for r in recs if r["detail"]["serial"] == serials[1]][0]
        self.assertEqual(rec["actor"], "anonymous")
        self.assertEqual(rec["detail"]["nonce"], query_nonce.group(1)[2:])
        self.assertEqual(rec["detail"]["hash"], "sha256")
        with open(self.data, "rb") as f:
            digest = HASHES["sha256"](f.read()).hexdigest()
        self.assertEqual(rec["detail"]["imprint"], digest)

    # -- forged queries
    def test_forged_queries_get_the_right_failure(self):
        digest = HASHES["sha256"](b"x").digest()
        cases = [
            ("not DER", b"this is not a TimeStampReq", BAD_DATA_FORMAT),
            ("truncated", ts_query(digest)[:-7], BAD_DATA_FORMAT),
            ("trailing bytes", ts_query(digest) + b"\x00", BAD_DATA_FORMAT),
            ("empty", b"", BAD_DATA_FORMAT),
            ("sha256 imprint of 20 bytes", ts_query(digest[:20]), BAD_DATA_FORMAT),
            ("unknown hash", ts_query(digest, alg=seq(bytes.fromhex("06032a0304"))), BAD_ALG),
            ("version 2", ts_query(digest, version=bytes.fromhex("020102")), BAD_REQUEST),
            # extensions [0] IMPLICIT SEQUENCE OF Extension
            ("extension", ts_query(digest, extra=der(0xA0, seq(
                bytes.fromhex("06032a0304"), der(0x04, b"x")))), UNACCEPTED_EXTENSION),
            ("over 16 KiB", ts_query(digest) + b"\x00" * (16 * 1024), BAD_DATA_FORMAT),
            ("long nonce", ts_query(digest, extra=der(0x02, b"\x01" * 65)), BAD_DATA_FORMAT),
        ]
        for name, body, bit in cases:
            with self.subTest(name):
                self.assertRefused(self.post(body), bit)
        # SHA-1 and a foreign policy, as openssl asks for them.
        text = self.assertRefused(self.post(self.openssl_query("sha1.tsq", "-sha1")[1]), BAD_ALG)
        self.assertIn("SHA-1", text)
        text = self.assertRefused(
            self.post(self.openssl_query("pol.tsq", "-sha256", "-tspolicy", "1.2.3.4")[1]),
            UNACCEPTED_POLICY)
        self.assertIn("policy 1.2.3.4", text)
        # The configured policy asked for explicitly is fine.
        ok = self.post(self.openssl_query("pol-ok.tsq", "-sha256", "-tspolicy",
                                          "2.25.330552714153707047874252638116543826072")[1])
        self.assertEqual(ok[0], 0)
        # Wrong content type: refused the RFC 3161 way too.
        good = self.openssl_query("ct.tsq", "-sha256")[1]
        self.assertRefused(self.post(good, content_type="application/octet-stream"),
                           BAD_DATA_FORMAT)
        # openssl reads these refusals as refusals.
        r = self.path("refused.tsr")
        self.curl(self.path("sha1.tsq"), r)
        self.assertIn("Status: Rejected.", self.reply_text(r))
        # Each refusal is audited as a denial naming the failure.
        codes = {r["detail"].get("code") for r in self.server.audit_show()
                 if r["action"] == "tsa.timestamp" and r["outcome"] == "denied"}
        for code in ("tsa_badDataFormat", "tsa_badAlg", "tsa_badRequest",
                     "tsa_unacceptedPolicy", "tsa_unacceptedExtension"):
            self.assertIn(code, codes)

    def test_tampered_token_fails_verification(self):
        q, query = self.openssl_query("tamper.tsq", "-sha256", "-cert")
        status, _, _, token = self.post(query)
        self.assertEqual(status, 0)
        # Change one digit of genTime inside the signed TSTInfo.
        m = re.search(rb"\x18[\x0f-\x13](\d{14})", token)
        self.assertIsNotNone(m)
        bad = bytearray(token)
        i = m.start(1) + 13  # the last digit of the seconds
        bad[i] = ord("0") if bad[i] != ord("0") else ord("1")
        for name, tok, ok in (("good", token, True), ("bad", bytes(bad), False)):
            r = self.path("tamper-%s.tsr" % name)
            with open(r, "wb") as f:
                f.write(seq(seq(bytes.fromhex("020100")), tok))
            rc, out = self.tool(["openssl", "ts", "-verify", "-in", r, "-queryfile", q,
                                 "-CAfile", self.server.ca_cert_path], check=False)
            self.assertEqual(rc == 0, ok, out)

    # -- the clock
    def test_clock_gone_back_is_refused_then_recovers(self):
        s = self.server
        query = self.openssl_query("clock.tsq", "-sha256")[1]
        first = self.post(query)
        self.assertEqual(first[0], 0)
        future = int(time.time() * 1000) + 3600 * 1000
        with s.db() as db:
            key_id = db.execute("SELECT max(id) FROM tsa_keys").fetchone()[0]
            db.execute("INSERT INTO tsa_tokens(key_id, gen_time_ms, hash_alg, imprint, purpose,"
                       " actor) VALUES(?, ?, 'sha256', ?, 'request', 'test')",
                       (key_id, future, b"\x00" * 32))
            planted = db.execute("SELECT max(serial) FROM tsa_tokens").fetchone()[0]
        text = self.assertRefused(self.post(query), TIME_NOT_AVAILABLE)
        self.assertIn("clock is not trusted", text)
        denied = [r for r in s.audit_show() if r["action"] == "tsa.timestamp" and
                  r["detail"].get("code") == "tsa_timeNotAvailable"]
        self.assertEqual(len(denied), 1)
        self.assertEqual(denied[0]["outcome"], "denied")
        with s.db() as db:
            db.execute("DELETE FROM tsa_tokens WHERE serial = ?", (planted,))
        status, _, _, token = self.post(query)
        self.assertEqual(status, 0)
        r = self.path("clock.tsr")
        with open(r, "wb") as f:
            f.write(seq(seq(bytes.fromhex("020100")), token))
        serial = int(re.search(r"Serial number: (0x[0-9A-F]+)", self.reply_text(r)).group(1), 16)
        self.assertGreater(serial, planted, "a deleted serial is never handed out again")

    # -- the key
    def test_tsa_key_is_sensitive_and_never_extractable(self):
        s = self.server
        rc, out = self.tool(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label",
                             "signum", "--login", "--pin", s.user_pin(), "-O"], env=s.hsm_env())
        # pkcs11-tool -O: one block per object, each starting at an unindented line.
        priv = [b for b in re.split(r"\n(?=\S)", out)
                if b.startswith("Private Key Object") and "label:      signum-tsa" in b]
        self.assertEqual(len(priv), 1, out)
        self.assertIn("Access:     sensitive, always sensitive, never extractable, local", priv[0])
        self.assertRegex(priv[0], r"Usage:\s+sign\n")
        # The certificate: issued by the CA, the one critical EKU timeStamping.
        text = self.tool(["openssl", "x509", "-in", self.tsa_cert, "-noout", "-text"])[1]
        self.assertRegex(text, r"X509v3 Extended Key Usage: critical\s+Time Stamping\n")
        self.tool(["openssl", "verify", "-CAfile", s.ca_cert_path, "-purpose", "timestampsign",
                   self.tsa_cert])
        info = s.call("GET", "/api/v1/tsa")
        self.assertEqual(info["policy"], "2.25.330552714153707047874252638116543826072")
        self.assertEqual(info["key_type"], "ec-p256")
        self.assertEqual(info["access"], "open")
        with open(self.tsa_cert) as f:
            self.assertEqual(info["certificate_pem"], f.read())

    # -- real signing tools
    def test_osslsigncode_sign_with_timestamp_then_verify(self):
        src, exe = self.path("hello.c"), self.path("hello.exe")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        self.tool(["x86_64-w64-mingw32-gcc", "-O2", "-s", "-o", exe, src])
        key, cert = self.path("cs.key"), self.path("cs.crt")
        self.tool(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                   "30", "-subj", "/CN=Signum TSA test signer", "-addext",
                   "extendedKeyUsage=codeSigning", "-addext", "keyUsage=digitalSignature"])
        signed = self.path("signed.exe")
        self.tool(["osslsigncode", "sign", "-certs", cert, "-key", key, "-h", "sha256",
                   "-ts", self.url, "-HTTPS-CAfile", self.server.ca_cert_path,
                   "-in", exe, "-out", signed])
        rc, out = self.tool(["osslsigncode", "verify", "-CAfile", cert, "-TSA-CAfile",
                             self.server.ca_cert_path, "-in", signed])
        self.assertIn("Timestamp Server Signature verification: ok", out)
        self.assertIn("Subject: /CN=Signum Time-Stamping Authority", out)
        # The timestamp must chain to our CA: against another CA it does not verify (osslsigncode
        # 2.9 still exits 0 then, as the code signature itself is good, but says so).
        rc, out = self.tool(["osslsigncode", "verify", "-CAfile", cert, "-TSA-CAfile", cert,
                             "-in", signed], check=False)
        self.assertIn("Timestamp Server Signature verification: failed", out)

    def test_jarsigner_tsa_then_verify(self):
        s = self.server
        txt, jar = self.path("a.txt"), self.path("hello.jar")
        with open(txt, "w") as f:
            f.write("hello\n")
        self.tool(["jar", "cf", jar, "a.txt"], cwd=self.work)
        ks, trust = self.path("ks.p12"), self.path("trust.p12")
        for path in (ks, trust):
            if os.path.exists(path):
                os.unlink(path)
        self.tool(["keytool", "-genkeypair", "-alias", "signer", "-keyalg", "EC", "-groupname",
                   "secp256r1", "-dname", "CN=Signum TSA jar signer", "-validity", "30",
                   "-keystore", ks, "-storetype", "PKCS12", "-storepass", "changeit"])
        for store in (ks, trust):
            self.tool(["keytool", "-importcert", "-noprompt", "-alias", "signum-ca", "-file",
                       s.ca_cert_path, "-keystore", store, "-storetype", "PKCS12",
                       "-storepass", "changeit"])
        signed = self.path("signed.jar")
        rc, out = self.tool(["jarsigner", "-J-Djavax.net.ssl.trustStore=" + trust,
                             "-J-Djavax.net.ssl.trustStorePassword=changeit", "-keystore", ks,
                             "-storepass", "changeit", "-tsa", self.url, "-signedjar", signed,
                             jar, "signer"])
        self.assertIn("jar signed.", out)
        self.assertNotIn("TSA certificate chain is invalid", out)
        rc, out = self.tool(["jarsigner", "-verify", "-verbose", "-certs", "-keystore", trust,
                             "-storepass", "changeit", signed])
        self.assertIn("jar verified.", out)
        self.assertIn('Timestamped by "CN=Signum Time-Stamping Authority"', out)
        self.assertIn("Timestamp signature algorithm: SHA256withECDSA", out)
        self.assertNotIn("TSA certificate chain is invalid", out)


class TsaRestartTest(ServerTestCase):
    """Serial numbers continue across a restart; the same TSA key is used again. An RSA-3072 TSA
    key here (sha256WithRSAEncryption), where TsaTest has EC P-256."""

    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"tsa": "open", "tsa_key_type": "rsa3072"}}

    def serial(self, body):
        status, _, _, token = parse_response(
            self.server.request("POST", "/tsa", raw=body,
                                headers={"Content-Type": QUERY}).body)
        self.assertEqual(status, 0)
        path = os.path.join(self.server.root, "t.tsr")
        with open(path, "wb") as f:
            f.write(seq(seq(bytes.fromhex("020100")), token))
        out = run(["openssl", "ts", "-reply", "-in", path, "-text"], check=True).stdout.decode()
        vfy = run(["openssl", "ts", "-verify", "-in", path, "-digest",
                   HASHES["sha256"](b"r").hexdigest(), "-CAfile", self.server.ca_cert_path,
                   "-untrusted", os.path.join(self.server.state, "tsa", "tsa.crt")])
        self.assertEqual(vfy.returncode, 0, vfy.stdout + vfy.stderr)
        return int(re.search(r"Serial number: (0x[0-9A-F]+)", out).group(1), 16)

    def test_serials_never_reused_across_restart(self):
        s = self.server
        body = ts_query(HASHES["sha256"](b"r").digest())
        before = [self.serial(body) for _ in range(3)]
        with open(os.path.join(s.state, "tsa", "tsa.crt")) as f:
            cert = f.read()
        s.stop()
        s.start()
        after = self.serial(body)
        self.assertEqual(before, sorted(set(before)))
        self.assertGreater(after, max(before))
        with open(os.path.join(s.state, "tsa", "tsa.crt")) as f:
            self.assertEqual(f.read(), cert, "the TSA key and certificate are kept")
        with s.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM tsa_keys").fetchone()[0], 1)
        created = [r for r in s.audit_show() if r["action"] == "tsa.key.create"]
        self.assertEqual(len(created), 1)
        self.assertEqual(created[0]["detail"]["key_type"], "rsa3072")


class TsaHsmOutageTest(ServerTestCase):
    """The HSM away (SoftHSMv2's token directory moved, as faults.hsm_outage does): the TSA
    answers a TimeStampResp with systemFailure, never an HTTP error, audits it, and issues
    tokens again once the HSM is back, without a restart."""

    server_options = {"ca_key_type": "ec-p256", "conf": {"tsa": "open"}}

    def post(self, body):
        r = self.server.request("POST", "/tsa", raw=body, headers={"Content-Type": QUERY})
        self.assertEqual(r.status, 200, r)
        return parse_response(r.body)

    def test_hsm_outage_is_a_system_failure_then_recovers(self):
        s = self.server
        body = ts_query(HASHES["sha256"](b"hsm").digest())
        self.assertEqual(self.post(body)[0], 0)
        tokens = os.path.join(s.state, "hsm", "tokens")
        os.rename(tokens, tokens + ".away")
        try:
            status, bits, text, token = self.post(body)
        finally:
            os.rename(tokens + ".away", tokens)
        self.assertEqual((status, bits, token), (2, {25}, None), text)
        errors = [r for r in s.audit_show() if r["action"] == "tsa.timestamp" and
                  r["outcome"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["detail"]["code"], "tsa_systemFailure")
        # Back: the HSM layer recovers with its back-off (at most 5 s between attempts).
        deadline = time.monotonic() + 20
        while True:
            status = self.post(body)[0]
            if status == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status, 0, "the TSA issues tokens again once the HSM is back")


class TsaRateTest(ServerTestCase):
    """An open TSA signs and audits every token for anyone who reaches it: one address gets
    tokens at a bounded rate (tsa_rate_per_address: 2 a second, a bucket of 4), the rest are
    refused with systemFailure and aggregated like other anonymous denials; a caller with a
    token (tsa = token) is not bounded by it."""

    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"tsa": "open", "tsa_rate_per_address": "2"}}

    def test_one_address_is_bounded(self):
        s = self.server
        body = ts_query(HASHES["sha256"](b"rate").digest())
        statuses = []
        start = time.monotonic()
        for _ in range(12):
            r = s.request("POST", "/tsa", raw=body, headers={"Content-Type": QUERY})
            self.assertEqual(r.status, 200, r)
            statuses.append(parse_response(r.body))
        elapsed = time.monotonic() - start
        granted = [x for x in statuses if x[0] == 0]
        refused = [x for x in statuses if x[0] != 0]
        # A full bucket (4), plus what 2 a second refilled while the requests ran.
        self.assertLessEqual(len(granted), 4 + int(2 * elapsed) + 1, (elapsed, len(granted)))
        self.assertGreaterEqual(len(granted), 4)
        self.assertTrue(refused, "12 requests in %.2f s were all granted" % elapsed)
        for status, bits, text, token in refused:
            self.assertEqual((status, bits, token), (2, {25}, None), text)
            self.assertIn("too many requests from this address", text)
        # Refusals are denials of an anonymous caller: individually recorded up to the
        # aggregator's burst, never one synced record each without bound.
        recs = [x for x in s.audit_show() if x["action"] == "tsa.timestamp"]
        self.assertEqual(len([x for x in recs if x["outcome"] == "ok"]), len(granted))
        self.assertLessEqual(len([x for x in recs if x["outcome"] == "denied"]), len(refused))


class TsaTokenModeTest(ServerTestCase):
    """tsa = token: only callers with an access token get timestamps; the audit names them."""

    server_options = {"ca_key_type": "ec-p256", "conf": {"tsa": "token"}}

    def test_needs_a_token(self):
        s = self.server
        body = ts_query(HASHES["sha256"](b"t").digest())
        r = s.request("POST", "/tsa", raw=body, headers={"Content-Type": QUERY})
        self.assertEqual(r.status, 401, r)
        tok = s.token_for(s.create_user("tsa-user", "signer"))
        r = s.request("POST", "/tsa", raw=body, token=tok, headers={"Content-Type": QUERY})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(parse_response(r.body)[0], 0)
        recs = [x for x in s.audit_show() if x["action"] == "tsa.timestamp" and
                x["outcome"] == "ok"]
        self.assertEqual([x["actor"] for x in recs], ["user:tsa-user"])


class TsaOffTest(ServerTestCase):
    """tsa = off (the default): no route, no key."""

    server_options = {"ca_key_type": "ec-p256"}

    def test_off_by_default(self):
        s = self.server
        r = s.request("POST", "/tsa", raw=ts_query(HASHES["sha256"](b"o").digest()),
                      headers={"Content-Type": QUERY})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.error_code, "not_found")
        self.assertFalse(os.path.exists(os.path.join(s.state, "tsa")))


if __name__ == "__main__":
    if not shutil.which("osslsigncode") or not shutil.which("jarsigner"):
        sys.exit("osslsigncode and jarsigner are needed (scripts/install-deps.sh)")
    unittest.main(verbosity=2)
