"""Signing through the API with every key type, verified independently by the openssl CLI;
batches; idempotency; the advisory client context; key protection in the HSM."""

import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, HASH_LEN, SOFTHSM_MODULE, ServerTestCase,  # noqa: E402
                            ecdsa_raw_to_der, run, unb64)

RSA_KEYS = {"k-rsa2048": ("rsa2048", 256), "k-rsa3072": ("rsa3072", 384),
            "k-rsa4096": ("rsa4096", 512)}
EC_KEYS = {"k-ec-p256": ("ec-p256", 64), "k-ec-p384": ("ec-p384", 96)}


class SignTest(ServerTestCase):
    # A P-384 CA here (the other files use the default RSA-3072 CA).
    server_options = {"ca_key_type": "ec-p384"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.keys = {}
        for name, (ktype, _) in list(RSA_KEYS.items()) + list(EC_KEYS.items()):
            # rsa4096 generation is slow in SoftHSMv2: every key is made exactly once, here.
            cls.keys[name] = s.create_key(name, ktype)
            issued = s.issue_cert(name, "Signum test " + name, organization="Signum IT")
            cls.keys[name]["issued"] = issued
        cls.signer_key = s.create_user("signer1", "signer")
        cls.other_key = s.create_user("signer2", "signer")
        for name in cls.keys:
            s.grant(name, "signer1")
        s.grant("k-ec-p256", "signer2")
        cls.token = s.token_for(cls.signer_key)
        cls.token2 = s.token_for(cls.other_key)
        listing = s.call("GET", "/api/v1/keys", token=cls.token)["keys"]
        cls.listed = {k["name"]: k for k in listing}
        cls.pub = {}
        for name in cls.keys:
            cert_der = unb64(cls.listed[name]["certificate"])
            cls.pub[name] = s.openssl.pubkey_from_cert(cert_der)

    # -- helpers
    def message(self, tag=""):
        return os.urandom(200) + tag.encode()

    def assertVerifies(self, key, hash_name, msg, sig, pss_salt=None):
        ok, out = self.server.openssl.verify_digest_sig(self.pub[key], hash_name, msg, sig,
                                                        pss_salt)
        self.assertTrue(ok, "openssl rejected the %s/%s signature: %s" % (key, hash_name, out))

    def assertNotVerifies(self, key, hash_name, msg, sig, pss_salt=None):
        ok, out = self.server.openssl.verify_digest_sig(self.pub[key], hash_name, msg, sig,
                                                        pss_salt)
        self.assertFalse(ok, "openssl accepted a signature it must reject: %s" % out)

    def sign_one(self, key, mechanism, hash_name, msg, **extra):
        digest = HASHES[hash_name](msg).digest()
        r = self.server.sign(self.token, key, mechanism, hash_name, digest=digest, **extra)
        self.assertEqual(r["key"], key)
        self.assertEqual(r["mechanism"], mechanism)
        self.assertEqual(r["hash"], hash_name)
        self.assertIsInstance(r["audit_id"], int)
        self.assertNotIn("signatures", r)
        return unb64(r["signature"]), r

    # -- keys and certificates as the signer sees them
    def test_keys_listed_with_certificate_matching_public_key(self):
        self.assertEqual(set(self.listed), set(self.keys))
        ca_der = self.server.openssl("x509", "-in", self.server.ca_cert_path,
                                     "-outform", "DER").stdout
        for name, created in self.keys.items():
            k = self.listed[name]
            self.assertEqual(k["type"], created["type"])
            self.assertEqual(k["id"], created["id"])
            self.assertRegex(k["id"], r"^[0-9a-f]{32}$")
            self.assertFalse(k["disabled"])
            self.assertEqual(k["public_key"], created["public_key"])
            cert_der = unb64(k["certificate"])
            # The certificate holds the key's public key (compared as DER SPKI via openssl).
            self.assertEqual(self.server.openssl.spki_der_from_cert(cert_der),
                             unb64(k["public_key"]), name)
            self.assertEqual([unb64(c) for c in k["chain"]], [ca_der])
            self.assertGreater(k["certificate_not_after"], k["created_at"])

    # -- RSA PKCS#1 v1.5
    def test_rsa_pkcs1_all_hashes(self):
        for key, (_, sig_len) in RSA_KEYS.items():
            for h in HASHES:
                with self.subTest(key=key, hash=h):
                    msg = self.message(key + h)
                    sig, _ = self.sign_one(key, "rsa-pkcs1", h, msg)
                    self.assertEqual(len(sig), sig_len)
                    self.assertVerifies(key, h, msg, sig)
                    # The verifier itself must be able to say no.
                    self.assertNotVerifies(key, h, msg + b"x", sig)
                    # PKCS#1 v1.5 is deterministic.
                    sig2, _ = self.sign_one(key, "rsa-pkcs1", h, msg)
                    self.assertEqual(sig, sig2)

    def test_rsa_pkcs1_digestinfo_exact(self):
        # The server builds the DigestInfo from "hash": recover it from the signature with
        # the public key and compare it byte for byte with the RFC 8017 encoding.
        prefixes = {"sha256": "3031300d060960864801650304020105000420",
                    "sha384": "3041300d060960864801650304020205000430",
                    "sha512": "3051300d060960864801650304020305000440"}
        o = self.server.openssl
        pub = o.tmp(self.pub["k-rsa3072"], ".pem")
        for h, prefix in prefixes.items():
            with self.subTest(hash=h):
                msg = self.message("di" + h)
                sig, _ = self.sign_one("k-rsa3072", "rsa-pkcs1", h, msg)
                rec = o("pkeyutl", "-verifyrecover", "-pubin", "-inkey", pub,
                        "-in", o.tmp(sig)).stdout
                self.assertEqual(rec.hex(), prefix + HASHES[h](msg).hexdigest())
                self.assertNotVerifies("k-rsa3072", "sha512" if h != "sha512" else "sha256",
                                       msg, sig)

    # -- RSA-PSS
    def test_rsa_pss_default_salt_is_hash_length(self):
        for key, (_, sig_len) in RSA_KEYS.items():
            for h in HASHES:
                with self.subTest(key=key, hash=h):
                    msg = self.message("pss" + key + h)
                    sig, _ = self.sign_one(key, "rsa-pss", h, msg)
                    self.assertEqual(len(sig), sig_len)
                    self.assertVerifies(key, h, msg, sig, pss_salt=HASH_LEN[h])
                    self.assertNotVerifies(key, h, msg + b"!", sig, pss_salt=HASH_LEN[h])

    def test_rsa_pss_explicit_salt_lengths(self):
        key = "k-rsa2048"
        max_salt = 256 - 32 - 2
        for salt in (0, 20, max_salt):
            with self.subTest(salt=salt):
                msg = self.message("salt%d" % salt)
                sig, _ = self.sign_one(key, "rsa-pss", "sha256", msg, salt_length=salt)
                self.assertVerifies(key, "sha256", msg, sig, pss_salt=salt)
                # openssl checks the salt length exactly: the server really used this one.
                self.assertNotVerifies(key, "sha256", msg, sig, pss_salt=salt + 1)
        # PSS with a salt is randomised: two signatures of one digest differ.
        msg = self.message("random")
        a, _ = self.sign_one(key, "rsa-pss", "sha256", msg)
        b, _ = self.sign_one(key, "rsa-pss", "sha256", msg)
        self.assertNotEqual(a, b)
        self.assertVerifies(key, "sha256", msg, b, pss_salt=32)

    def test_rsa_pss_salt_over_maximum_refused(self):
        digest = HASHES["sha512"](b"x").digest()
        # rsa2048 with sha512: at most 256 - 64 - 2 = 190.
        ok = self.server.sign(self.token, "k-rsa2048", "rsa-pss", "sha512", digest=digest,
                              salt_length=190)
        self.assertEqual(len(unb64(ok["signature"])), 256)
        r = self.server.sign_request(self.token, "k-rsa2048", "rsa-pss", "sha512",
                                     digest=digest, salt_length=191)
        self.assertError(r, 400, "invalid_field")

    # -- ECDSA
    def test_ecdsa_raw_all_hashes(self):
        for key, (_, raw_len) in EC_KEYS.items():
            for h in HASHES:
                with self.subTest(key=key, hash=h):
                    msg = self.message("ec" + key + h)
                    sig, r = self.sign_one(key, "ecdsa", h, msg)
                    self.assertEqual(r.get("signature_format"), "raw")
                    self.assertEqual(len(sig), raw_len, "raw r||s must be %d bytes" % raw_len)
                    der = ecdsa_raw_to_der(sig)
                    self.assertVerifies(key, h, msg, der)
                    self.assertNotVerifies(key, h, msg + b"?", der)

    def test_ecdsa_der_format(self):
        for key, (_, raw_len) in EC_KEYS.items():
            for h in ("sha256", "sha384"):
                with self.subTest(key=key, hash=h):
                    msg = self.message("der" + key + h)
                    sig, r = self.sign_one(key, "ecdsa", h, msg, signature_format="der")
                    self.assertEqual(r["signature_format"], "der")
                    self.assertEqual(sig[0], 0x30, "not an ASN.1 SEQUENCE")
                    self.assertLessEqual(len(sig), raw_len + 9)
                    self.assertVerifies(key, h, msg, sig)
                    # And explicitly "raw" gives r||s.
                    raw, _ = self.sign_one(key, "ecdsa", h, msg, signature_format="raw")
                    self.assertEqual(len(raw), raw_len)
                    self.assertVerifies(key, h, msg, ecdsa_raw_to_der(raw))

    # -- batches
    def test_batch_of_ten_each_verified_in_order(self):
        cases = [("k-rsa3072", "rsa-pkcs1", "sha384", None),
                 ("k-rsa4096", "rsa-pss", "sha256", 32),
                 ("k-ec-p256", "ecdsa", "sha256", None),
                 ("k-ec-p384", "ecdsa", "sha512", None)]
        for key, mech, h, salt in cases:
            with self.subTest(key=key, mechanism=mech):
                msgs = [self.message("batch%d" % i) for i in range(10)]
                digests = [HASHES[h](m).digest() for m in msgs]
                r = self.server.sign(self.token, key, mech, h, digests=digests)
                self.assertNotIn("signature", r)
                sigs = [unb64(x) for x in r["signatures"]]
                self.assertEqual(len(sigs), 10)
                for i, (m, sig) in enumerate(zip(msgs, sigs)):
                    if mech == "ecdsa":
                        sig = ecdsa_raw_to_der(sig)
                    self.assertVerifies(key, h, m, sig, pss_salt=salt)
                # Order matters: signature 0 is not for message 1.
                first = sigs[0] if mech != "ecdsa" else ecdsa_raw_to_der(sigs[0])
                self.assertNotVerifies(key, h, msgs[1], first, pss_salt=salt)
                # One audit record covers the batch and lists every digest.
                rec = [x for x in self.server.audit_show(after=r["audit_id"] - 1)
                       if x["seq"] == r["audit_id"]][0]
                self.assertEqual(rec["action"], "sign")
                self.assertEqual(rec["outcome"], "allowed")
                self.assertEqual(rec["detail"]["digests"], [d.hex() for d in digests])
                self.assertEqual(rec["detail"]["signatures"], 10)

    def test_batch_of_sixty_four(self):
        msgs = [self.message("b64-%d" % i) for i in range(64)]
        digests = [HASHES["sha256"](m).digest() for m in msgs]
        r = self.server.sign(self.token, "k-ec-p256", "ecdsa", "sha256", digests=digests,
                             signature_format="der")
        self.assertEqual(len(r["signatures"]), 64)
        for i in (0, 31, 63):
            self.assertVerifies("k-ec-p256", "sha256", msgs[i], unb64(r["signatures"][i]))

    # -- the audit record of a signature
    def test_audit_record_names_signature(self):
        msg = self.message("audit")
        digest = HASHES["sha256"](msg).digest()
        r = self.server.sign(self.token, "k-rsa2048", "rsa-pkcs1", "sha256", digest=digest)
        recs = self.server.audit_show(after=r["audit_id"] - 1)
        self.assertEqual(recs[0]["seq"], r["audit_id"])
        rec = recs[0]
        self.assertEqual(rec["action"], "sign")
        self.assertEqual(rec["actor"], "user:signer1")
        self.assertEqual(rec["outcome"], "allowed")
        self.assertEqual(rec["detail"]["key"], "k-rsa2048")
        self.assertEqual(rec["detail"]["key_type"], "rsa2048")
        self.assertEqual(rec["detail"]["mechanism"], "rsa-pkcs1")
        self.assertEqual(rec["detail"]["hash"], "sha256")
        self.assertEqual(rec["detail"]["digests"], [digest.hex()])

    def test_client_context_recorded_in_audit(self):
        # API.md: "context: optional, advisory ... recorded in the audit log".
        ctx = {"application": "/usr/bin/osslsigncode", "command_line": "osslsigncode sign x",
               "host": "ci-3", "pid": 1234}
        digest = HASHES["sha256"](b"context").digest()
        for form in ("batch", "single"):
            with self.subTest(form=form):
                if form == "single":
                    r = self.server.sign(self.token, "k-ec-p256", "ecdsa", "sha256",
                                         digest=digest, context=ctx)
                else:
                    r = self.server.sign(self.token, "k-ec-p256", "ecdsa", "sha256",
                                         digests=[digest], context=ctx)
                rec = [x for x in self.server.audit_show(after=r["audit_id"] - 1)
                       if x["seq"] == r["audit_id"]][0]
                self.assertEqual(rec["detail"].get("client"), ctx,
                                 "%s sign: context missing from audit record %r"
                                 % (form, rec["detail"]))

    # -- idempotency
    def test_idempotent_retry_returns_stored_answer(self):
        s = self.server
        digest = HASHES["sha256"](b"idem").digest()
        rid = "build-42-file-7"
        first = s.sign(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                       request_id=rid)
        self.assertEqual(first["request_id"], rid)
        sigs_before = s.metrics()["signum_signatures_total"]
        second = s.sign(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                        request_id=rid)
        # ECDSA is randomised: an identical signature proves the answer was replayed.
        self.assertEqual(second["signature"], first["signature"])
        self.assertEqual(second["audit_id"], first["audit_id"])
        self.assertEqual(s.metrics()["signum_signatures_total"], sigs_before)
        # Exactly one sign record carries this request_id (for this user).
        recs = [x for x in s.audit_show() if x["action"] == "sign"
                and x["detail"].get("request_id") == rid and x["actor"] == "user:signer1"]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["seq"], first["audit_id"])
        self.assertEqual(recs[0]["outcome"], "allowed")
        # Same id, different digest: a conflict, and nothing handed out.
        other = HASHES["sha256"](b"idem-other").digest()
        r = s.sign_request(self.token, "k-ec-p256", "ecdsa", "sha256", digest=other,
                           request_id=rid)
        self.assertError(r, 409, "request_id_conflict")
        # Same id, same digest, different format: also different content.
        r = s.sign_request(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                           request_id=rid, signature_format="der")
        self.assertError(r, 409, "request_id_conflict")
        # The original still replays after the conflicts.
        third = s.sign(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                       request_id=rid)
        self.assertEqual(third["signature"], first["signature"])
        # Request ids are per user: another user's identical id is independent.
        mine = s.sign(self.token2, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                      request_id=rid)
        self.assertNotEqual(mine["audit_id"], first["audit_id"])
        self.assertNotEqual(mine["signature"], first["signature"])

    def test_idempotent_concurrent_twins(self):
        # Eight identical requests at once: one signature, one record, one answer for all.
        s = self.server
        digest = HASHES["sha256"](b"twins").digest()
        answers, errors = [], []
        barrier = threading.Barrier(8)

        def go():
            try:
                barrier.wait(20)
                r = s.sign_request(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                                   request_id="twin-1")
                answers.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])
        self.assertEqual([a.status for a in answers], [200] * 8, answers)
        self.assertEqual(len({a.json["signature"] for a in answers}), 1, answers)
        self.assertEqual(len({a.json["audit_id"] for a in answers}), 1)
        recs = [x for x in s.audit_show() if x["action"] == "sign"
                and x["detail"].get("request_id") == "twin-1"]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["seq"], answers[0].json["audit_id"])

    def test_idempotent_single_then_batch_with_same_id(self):
        # A one-digest batch under a request_id first used for a single digest: the caller
        # asked for a batch, so it must get either a conflict or a batch answer
        # ("signatures"), never a single-digest answer it cannot read.
        s = self.server
        digest = HASHES["sha256"](b"single-then-batch").digest()
        first = s.sign(self.token, "k-ec-p256", "ecdsa", "sha256", digest=digest,
                       request_id="shape-1")
        r = s.sign_request(self.token, "k-ec-p256", "ecdsa", "sha256", digests=[digest],
                           request_id="shape-1")
        if r.status == 409:
            self.assertError(r, 409, "request_id_conflict")
        else:
            self.assertEqual(r.status, 200, r)
            self.assertIn("signatures", r.json,
                          "a batch request got a single-digest answer: %r" % r.json)
            self.assertEqual(len(r.json["signatures"]), 1)
        self.assertIn("signature", first)

    def test_idempotent_batch(self):
        s = self.server
        digests = [HASHES["sha384"](b"ib%d" % i).digest() for i in range(3)]
        a = s.sign(self.token, "k-rsa2048", "rsa-pss", "sha384", digests=digests,
                   request_id="batch:1")
        b = s.sign(self.token, "k-rsa2048", "rsa-pss", "sha384", digests=digests,
                   request_id="batch:1")
        self.assertEqual(a, b)
        r = s.sign_request(self.token, "k-rsa2048", "rsa-pss", "sha384",
                           digests=list(reversed(digests)), request_id="batch:1")
        self.assertError(r, 409, "request_id_conflict")
        r = s.sign_request(self.token, "k-rsa2048", "rsa-pss", "sha384", digests=digests,
                           request_id="batch:1", salt_length=0)
        self.assertError(r, 409, "request_id_conflict")

    # -- the HSM keeps the private keys in
    def test_hsm_private_keys_sensitive_and_never_extractable(self):
        s = self.server
        out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "signum",
                   "--login", "--pin", s.user_pin(), "--list-objects", "--type", "privkey"],
                  env=s.hsm_env(), check=True).stdout.decode()
        objects = parse_pkcs11_objects(out)
        by_label = {o["label"]: o for o in objects}
        self.assertEqual(set(by_label), set(self.keys) | {"signum-ca", "signum-audit"}, out)
        self.assertEqual(len(objects), len(self.keys) + 2, out)
        for name, key in self.keys.items():
            with self.subTest(key=name):
                o = by_label[name]
                self.assertEqual(o["ID"], key["id"])
                self.assertIn(("RSA" if name.startswith("k-rsa") else "EC"), o["kind"])
                access = [a.strip() for a in o["Access"].split(",")]
                self.assertIn("sensitive", access)
                self.assertIn("always sensitive", access)
                self.assertIn("never extractable", access)
                self.assertNotIn("extractable", access)
                usage = [u.strip() for u in o["Usage"].split(",")]
                self.assertEqual(usage, ["sign"], "private key usage must be sign only")
        for internal in ("signum-ca", "signum-audit"):
            o = by_label[internal]
            self.assertIn("never extractable", o["Access"])
            self.assertNotIn("extractable", [a.strip() for a in o["Access"].split(",")])
        self.assertEqual([u.strip() for u in by_label["signum-audit"]["Usage"].split(",")],
                         ["sign"])

    def test_hsm_public_keys_verify_only(self):
        s = self.server
        out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "signum",
                   "--login", "--pin", s.user_pin(), "--list-objects", "--type", "pubkey"],
                  env=s.hsm_env(), check=True).stdout.decode()
        by_label = {o["label"]: o for o in parse_pkcs11_objects(out)}
        for name, key in self.keys.items():
            with self.subTest(key=name):
                self.assertEqual(by_label[name]["ID"], key["id"])
                usage = [u.strip() for u in by_label[name]["Usage"].split(",")]
                self.assertEqual(usage, ["verify"], "public key may not encrypt or wrap")


def parse_pkcs11_objects(text):
    """pkcs11-tool --list-objects output: 'X Key Object; TYPE' headers, then '  name: value'."""
    objects = []
    for line in text.splitlines():
        if re.match(r"^\S.*Key Object", line):
            objects.append({"kind": line.strip(), "label": None, "ID": None, "Usage": "",
                            "Access": ""})
        elif objects and re.match(r"^\s+\S[^:]*:", line):
            k, v = line.strip().split(":", 1)
            objects[-1][k.strip()] = v.strip()
    return objects


if __name__ == "__main__":
    unittest.main(verbosity=2)
