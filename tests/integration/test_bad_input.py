"""Bad input: every refusal has the exact HTTP status and error code of API.md, and nothing
changes except exactly one new denial record in the audit log (no user, key, grant, token,
certificate or stored sign request appears; every table other than the audit log is compared
row by row before and after)."""

import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64  # noqa: E402

D256 = HASHES["sha256"](b"bad input").digest()

# Every refusal asserted below is recorded here; with $SIGNUM_BADINPUT_TABLE set, the rows
# are written there at exit, and scripts/security-table.py turns them into the bad-input
# table of docs/security.md (ctest docs.security_table checks that the two agree).
TABLE_ROWS = []


def record_refusal(test, request, status, code):
    """Notes one asserted refusal: the test, its sub-case, the request line, status and code."""
    sub = getattr(test, "_subtest", None)
    case = sub.params.get("case") if sub is not None else None
    TABLE_ROWS.append({"test": test._testMethodName, "case": case, "request": request,
                       "status": status, "code": code})


def write_table():
    path = os.environ.get("SIGNUM_BADINPUT_TABLE")
    if path:
        with open(path, "w") as f:
            json.dump(TABLE_ROWS, f, indent=1)


def sign_body(**over):
    body = {"key": "bi-ec", "mechanism": "ecdsa", "hash": "sha256", "digest": b64(D256)}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


class Raw:
    """A response read off a raw TLS socket (all bytes until the server closed)."""

    def __init__(self, data):
        self.raw = data
        text = data.decode("latin-1")
        status_line, _, rest = text.partition("\r\n")
        self.status = int(status_line.split()[1]) if status_line else 0
        hdrs, _, body = rest.partition("\r\n\r\n")
        self.headers = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip()
                        for h in hdrs.split("\r\n") if ":" in h}
        self.body = body.encode("latin-1")
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    @property
    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return "<raw %d %r>" % (self.status, self.body[:200])


class BadInputTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        for name, ktype in (("bi-ec", "ec-p256"), ("bi-rsa", "rsa2048"), ("bi-dis", "ec-p256"),
                            ("bi-nogrant", "ec-p256")):
            s.create_key(name, ktype)
        cls.signer_key = s.create_user("sig", "signer")
        for k in ("bi-ec", "bi-rsa", "bi-dis"):
            s.grant(k, "sig")
        s.disable("bi-dis")
        cls.token = s.token_for(cls.signer_key)
        s.admin_token()

    # -- the one check every case goes through
    def denied(self, fn, status, code, bare=False, front=False):
        """fn() is refused with status and code; exactly one new audit record (outcome
        denied, naming the code), or none at all for a bare transport-level refusal; every
        other table unchanged. front: a JSON refusal by the HTTPS front end (framing), which
        the API never sees: no audit record either."""
        s = self.server
        snap = s.db_snapshot()
        last = s.audit_last_seq()
        r = fn()
        request = s.last_request
        if bare:
            self.assertEqual(r.status, status, r)
            self.assertIsNone(r.error_code, "expected a bare %d, got %r" % (status, r))
        else:
            self.assertError(r, status, code)
            self.assertEqual(r.headers.get("content-type"), "application/json")
            if status == 401:
                self.assertIn("Bearer", r.headers.get("www-authenticate", ""))
        new = s.audit_show(after=last)
        if bare or front:
            self.assertEqual(new, [], "a transport-level refusal reached the API")
        else:
            self.assertEqual(len(new), 1, "expected exactly one denial record: %r" % new)
            rec = new[0]
            self.assertEqual(rec["outcome"], "denied")
            self.assertEqual(rec["detail"]["code"], code)
            self.assertEqual(rec["detail"]["message"], r.json["error"]["message"])
            self.assertEqual(rec["detail"]["peer"], "127.0.0.1")
        self.assertEqual(s.db_snapshot(), snap, "state changed on a refused request")
        record_refusal(self, request, status, code)
        return r

    def sign_raw(self, raw, token=True, headers=None):
        return self.server.request("POST", "/api/v1/sign", raw=raw,
                                   token=self.token if token else None, headers=headers)

    def sign_json(self, body, token=None):
        return self.server.request("POST", "/api/v1/sign", body, token=token or self.token)

    # -- sanity: the baseline request is fine, so every refusal below is about its defect
    def test_baseline_accepted(self):
        r = self.sign_json(sign_body())
        self.assertEqual(r.status, 200, r)
        r = self.sign_raw(json.dumps(sign_body()).encode(),
                          headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 200, r)

    # -- JSON syntax
    def test_malformed_json(self):
        good = json.dumps(sign_body()).encode()
        cases = {
            "truncated": good[:-5],
            "syntax error": b'{"key": "bi-ec", "mechanism": ecdsa}',
            "trailing garbage": good + b"x",
            "two objects": good + good,
            "trailing comma object": good[:-1] + b",}",
            "NUL byte": good[:-1] + b',"x":"\x00"}',
            "empty body": b"",
            "array": b"[" + good + b"]",
            "string": b'"hello"',
            "single quotes": b"{'key': 'bi-ec'}",
            "nested 5000 deep": b'{"context":' + b"[" * 5000 + b"]" * 5000 + b"}",
        }
        for label, raw in cases.items():
            with self.subTest(case=label):
                self.denied(lambda: self.sign_raw(raw), 400, "malformed_json")

    def test_trailing_whitespace_is_fine(self):
        r = self.sign_raw(json.dumps(sign_body()).encode() + b" \r\n\t\n")
        self.assertEqual(r.status, 200, r)

    def test_body_over_call_cap(self):
        body = sign_body(context={"command_line": "x" * 4000})
        raw = json.dumps(body).encode()
        raw = raw[:-1] + b" " * (65 * 1024 - len(raw)) + b"}"
        self.assertGreater(len(raw), 64 * 1024)
        self.denied(lambda: self.sign_raw(raw), 413, "body_too_large")
        # The same on a route with a body of its own.
        self.denied(lambda: self.server.request(
            "POST", "/api/v1/admin/users", raw=b'{"name":"big","role":"signer"' +
            b" " * (70 * 1024) + b"}", token=self.server.admin_token()), 413, "body_too_large")

    def test_body_over_transport_cap_is_bare_413(self):
        s = self.server
        head = ("POST /api/v1/sign HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n" % self.token)

        over = 1024 * 1024 + 1
        # Declared length over the cap: refused before the body is read.
        r = self.denied(lambda: Raw(s.raw_exchange(
            (head + "Content-Length: %d\r\n\r\n" % over).encode() + b"{" + b" " * 4096)),
            413, None, bare=True)
        self.assertNotIn("application/json", r.headers.get("content-type", ""))
        # Chunked, the first chunk alone over the cap.
        self.denied(lambda: Raw(s.raw_exchange(
            (head + "Transfer-Encoding: chunked\r\n\r\n%x\r\n" % over).encode() +
            b" " * 4096)), 413, None, bare=True)
        # The server is fine afterwards.
        self.assertEqual(self.sign_json(sign_body()).status, 200)

    # -- HTTP framing: a request must have one reading, or it is refused in JSON and the
    # connection closed (nothing after the refusal is read as another request)
    def framing_refused(self, data, message_part):
        s = self.server
        r = self.denied(lambda: Raw(s.raw_exchange(data)), 400, "bad_framing", front=True)
        self.assertIn(message_part, r.json["error"]["message"])
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(r.raw.count(b"HTTP/1.1 "), 1, "more than one response: %r" % r.raw)
        return r

    def test_framing_content_length(self):
        tail = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        head = (b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\n")
        # Two different lengths: read with the first, the rest would be a second request.
        self.framing_refused(head + b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}"
                             % len(tail) + tail, "more than one Content-Length")
        # The same length twice is refused too: one header, one reading.
        self.framing_refused(head + b"Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}",
                             "more than one Content-Length")
        for value in (b"+2", b"0x2", b"2 2", b"-2", b"2.0", b"", b"99999999999999999999"):
            with self.subTest(content_length=value):
                self.framing_refused(head + b"Content-Length: " + value + b"\r\n\r\n{}",
                                     "Content-Length must be a plain decimal number")

    def test_framing_transfer_encoding(self):
        head = (b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\n")
        chunked = b"2\r\n{}\r\n0\r\n\r\n"
        self.framing_refused(head + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                             "Content-Length together with Transfer-Encoding")
        self.framing_refused(head + b"Transfer-Encoding: chunked\r\nContent-Length: 11\r\n\r\n"
                             + chunked, "Content-Length together with Transfer-Encoding")
        self.framing_refused(head + b"Transfer-Encoding: chunked\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
                             "more than one Transfer-Encoding")
        self.framing_refused(head + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked,
                             "Transfer-Encoding must be exactly chunked")

    def test_framing_header_lines(self):
        head = (b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\n")
        self.framing_refused(head + b"Content-Length : 2\r\n\r\n{}", "malformed header line")
        self.framing_refused(head + b"X-A: 1\r\n Content-Length: 2\r\n\r\n{}",
                             "folded header lines")
        # Bare LF line ends are split like evhttp splits them.
        self.framing_refused(head.replace(b"\r\n", b"\n") +
                             b"Content-Length: 2\nContent-Length: 3\n\n{}",
                             "more than one Content-Length")

    def test_framing_dripped(self):
        # The check follows the stream however it is cut: one TLS record per byte.
        s = self.server
        data = (b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}")
        sock = socket.create_connection(("127.0.0.1", s.port), 10)
        tls = s.ssl_context().wrap_socket(sock, server_hostname="localhost")
        got = b""
        try:
            for i in range(len(data)):
                tls.sendall(data[i:i + 1])
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        finally:
            tls.close()
        r = Raw(got)
        self.assertError(r, 400, "bad_framing")
        self.assertEqual(r.headers.get("connection"), "close")

    def test_framing_after_a_good_request(self):
        # A good request with a bad one pipelined behind it on the same connection: exactly one
        # response, and the smuggled request in the bad one's body is never answered. Either
        # the bad one arrives while the good one is still being read (the whole batch is
        # refused in JSON) or while it is handled (its reply closes the connection).
        tail = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        data = (tail + b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}" % len(tail) + tail)
        got = self.server.raw_exchange(data)
        self.assertEqual(got.count(b"HTTP/1.1 "), 1, got)
        r = Raw(got)
        self.assertEqual(r.headers.get("connection"), "close")
        if r.status != 200:
            self.assertError(r, 400, "bad_framing")

    def test_path_with_encoded_control_byte(self):
        s = self.server
        for path in ("/healthz%00foo", "/healthz%00", "/api/v1/keys%0a", "/healthz%7f",
                     "/healthz%1b[0m"):
            with self.subTest(path=path):
                r = self.denied(lambda: s.request("GET", path), 400, "bad_request", front=True)
                self.assertIn("control character", r.json["error"]["message"])
                self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(s.request("GET", "/healthz").status, 200)

    # -- members
    def test_unknown_field(self):
        self.denied(lambda: self.sign_json(sign_body(priority="high")), 400, "unknown_field")
        self.denied(lambda: self.server.request(
            "POST", "/api/v1/admin/users", {"name": "eve", "role": "signer", "admin": True},
            token=self.server.admin_token()), 400, "unknown_field")
        self.denied(lambda: self.server.request(
            "POST", "/api/v1/auth/token",
            {"grant_type": "api_key", "api_key": self.signer_key, "scope": "all"}),
            400, "unknown_field")

    def test_unknown_field_in_context(self):
        # context is checked member by member like the body (application, command_line, host,
        # pid), whether one digest or a batch is signed.
        ctx = {"application": "x", "colour": "blue"}
        self.denied(lambda: self.sign_json(sign_body(digest=None, digests=[b64(D256)],
                                                     context=ctx)), 400, "unknown_field")
        self.denied(lambda: self.sign_json(sign_body(context=ctx)), 400, "unknown_field")
        self.denied(lambda: self.sign_json(sign_body(context={"pid": "many"})),
                    400, "invalid_field")
        self.denied(lambda: self.sign_json(sign_body(context="ci")), 400, "invalid_field")

    def test_invalid_fields(self):
        cases = {
            "duplicate member": None,
            "missing key": sign_body(key=None),
            "key not a string": sign_body(key=7),
            "bad key name": sign_body(key="bi ec"),
            "unknown mechanism": sign_body(mechanism="rsa"),
            "unknown hash": sign_body(hash="md5"),
            "hash wrong type": sign_body(hash=256),
            "no digest": sign_body(digest=None),
            "digest and digests": sign_body(digests=[b64(D256)]),
            "digests empty": sign_body(digest=None, digests=[]),
            "digests not array": sign_body(digest=None, digests=b64(D256)),
            "digests 65": sign_body(digest=None, digests=[b64(D256)] * 65),
            "digest not string": sign_body(digest=12),
            "request_id bad char": sign_body(request_id="a b"),
            "request_id empty": sign_body(request_id=""),
            "request_id too long": sign_body(request_id="r" * 129),
            "salt_length on ecdsa": sign_body(salt_length=32),
            "salt_length negative": sign_body(key="bi-rsa", mechanism="rsa-pss", salt_length=-1),
            "salt_length fraction": sign_body(key="bi-rsa", mechanism="rsa-pss",
                                              salt_length=1.5),
            "salt_length over max": sign_body(key="bi-rsa", mechanism="rsa-pss",
                                              salt_length=256 - 32 - 1),
            "signature_format on rsa": sign_body(key="bi-rsa", mechanism="rsa-pkcs1",
                                                 signature_format="der"),
            "signature_format unknown": sign_body(signature_format="pem"),
        }
        for label, body in cases.items():
            with self.subTest(case=label):
                if body is None:
                    raw = b'{"key":"bi-ec","key":"bi-rsa","mechanism":"ecdsa","hash":"sha256",' \
                          b'"digest":"%s"}' % b64(D256).encode()
                    self.denied(lambda: self.sign_raw(raw), 400, "invalid_field")
                else:
                    self.denied(lambda: self.sign_json(body), 400, "invalid_field")
        # The limits themselves are allowed.
        self.assertEqual(self.sign_json(sign_body(request_id="r" * 128)).status, 200)

    def test_body_on_a_call_without_body(self):
        s = self.server
        self.denied(lambda: s.request("POST", "/api/v1/admin/users/sig/api-keys",
                                      {"really": True}, token=s.admin_token()),
                    400, "invalid_field")

    # -- content type
    def test_wrong_content_type(self):
        raw = json.dumps(sign_body()).encode()
        for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                   None):
            with self.subTest(content_type=ct):
                self.denied(lambda: self.sign_raw(raw, headers={"Content-Type": ct}),
                            415, "unsupported_content_type")

    # -- base64
    def test_bad_base64(self):
        good = b64(D256)
        self.assertTrue(good.endswith("="))
        # Non-canonical: set a trailing bit that the '=' padding says must be zero. A lax
        # decoder reads the same 32 bytes from it.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(good[-2])
        self.assertEqual(last & 3, 0)
        noncanon = good[:-2] + alphabet[last | 1] + "="
        self.assertEqual(base64.b64decode(noncanon), D256)
        cases = {
            "bad char": "!" + good[1:],
            "missing padding": good.rstrip("="),
            "extra padding": good + "==",
            "padding in the middle": good[:8] + "=" + good[9:],
            "non-canonical trailing bits": noncanon,
            "embedded newline": good[:20] + "\n" + good[20:-1],
            "base64url alphabet": b64(b"\xfb\xff" * 16).replace("+", "-").replace("/", "_"),
        }
        for label, text in cases.items():
            with self.subTest(case=label):
                self.denied(lambda: self.sign_json(sign_body(digest=text)), 400, "bad_base64")
        with self.subTest(case="inside a batch"):
            self.denied(lambda: self.sign_json(sign_body(digest=None,
                                                         digests=[good, noncanon])),
                        400, "bad_base64")

    def test_bad_base64_message_intact(self):
        # The message names the member once and keeps the decoder's reason whole.
        cases = {"!" + b64(D256)[1:]: "invalid base64 character",
                 b64(D256).rstrip("="): "not a multiple of 4"}
        for text, reason in cases.items():
            with self.subTest(reason=reason):
                r = self.denied(lambda: self.sign_json(sign_body(digest=text)),
                                400, "bad_base64")
                msg = r.json["error"]["message"]
                self.assertEqual(msg.count("digest:"), 1, msg)
                self.assertIn(reason, msg)

    def test_digest_length_mismatch(self):
        cases = {
            "31 bytes for sha256": sign_body(digest=b64(D256[:31])),
            "33 bytes for sha256": sign_body(digest=b64(D256 + b"\0")),
            "sha256 digest as sha384": sign_body(hash="sha384"),
            "sha512 with 48 bytes": sign_body(key="bi-rsa", mechanism="rsa-pkcs1",
                                              hash="sha512", digest=b64(b"\1" * 48)),
            "empty digest": sign_body(digest=""),
            "one bad in a batch": sign_body(digest=None, digests=[b64(D256), b64(D256[:20])]),
        }
        for label, body in cases.items():
            with self.subTest(case=label):
                self.denied(lambda: self.sign_json(body), 400, "digest_length_mismatch")

    def test_digest_longer_than_any_hash(self):
        # Canonical base64 of 100 bytes is not a base64 error: its length does not match.
        self.denied(lambda: self.sign_json(sign_body(digest=b64(b"\7" * 100))),
                    400, "digest_length_mismatch")

    def test_mechanism_not_supported(self):
        self.denied(lambda: self.sign_json(sign_body(key="bi-rsa", mechanism="ecdsa")),
                    400, "mechanism_not_supported")
        self.denied(lambda: self.sign_json(sign_body(mechanism="rsa-pss")),
                    400, "mechanism_not_supported")
        self.denied(lambda: self.sign_json(sign_body(mechanism="rsa-pkcs1")),
                    400, "mechanism_not_supported")

    # -- keys
    def test_unknown_disabled_and_ungranted_keys(self):
        self.denied(lambda: self.sign_json(sign_body(key="no-such-key")), 404, "key_not_found")
        self.denied(lambda: self.sign_json(sign_body(key="bi-dis")), 403, "key_disabled")
        self.denied(lambda: self.sign_json(sign_body(key="bi-nogrant")), 403, "key_not_granted")

    # -- authentication
    def test_missing_and_bad_tokens(self):
        body = sign_body()
        s = self.server
        self.denied(lambda: s.request("POST", "/api/v1/sign", body), 401, "unauthenticated")
        self.denied(lambda: s.request("GET", "/api/v1/keys"), 401, "unauthenticated")
        self.denied(lambda: s.request("POST", "/api/v1/sign", body,
                                      headers={"Authorization": ""}), 401, "unauthenticated")
        bad = {
            "garbage": "Bearer garbage",
            "no scheme": self.token,
            "basic scheme": "Basic " + base64.b64encode(b"sig:pw").decode(),
            "truncated": "Bearer " + self.token[:-1],
            "unknown token": "Bearer sgt_" + "A" * 43,
            "api key as token": "Bearer " + self.signer_key,
        }
        for label, header in bad.items():
            with self.subTest(case=label):
                self.denied(lambda: s.request("POST", "/api/v1/sign", body,
                                              headers={"Authorization": header}),
                            401, "token_invalid")

    def test_expired_token(self):
        s = self.server
        token = s.token_for(self.signer_key)
        self.assertEqual(self.sign_json(sign_body(), token=token).status, 200)
        digest = hashlib.sha256(token.encode()).digest()
        with s.db() as db:  # WAL: a second writer while the server runs
            cur = db.execute("UPDATE access_tokens SET expires_at = ? WHERE hash = ?",
                             (int(time.time()) - 60, digest))
            self.assertEqual(cur.rowcount, 1, "token row not found by its SHA-256")
        self.denied(lambda: self.sign_json(sign_body(), token=token), 401, "token_expired")
        self.denied(lambda: s.request("GET", "/api/v1/keys", token=token), 401, "token_expired")
        # Other tokens of the same user are unaffected.
        self.assertEqual(self.sign_json(sign_body()).status, 200)

    def test_bad_api_keys(self):
        s = self.server
        prefix, secret = self.signer_key[4:16], self.signer_key[17:]
        flipped = ("B" if secret[0] != "B" else "C") + secret[1:]
        cases = {
            "wrong secret": "sgk_%s_%s" % (prefix, flipped),
            "unknown prefix": "sgk_%s_%s" % ("0" * 12 if prefix != "0" * 12 else "1" * 12,
                                             secret),
            "malformed": "not-an-api-key",
            "token instead of key": self.token,
            "truncated": self.signer_key[:-1],
        }
        for label, key in cases.items():
            with self.subTest(case=label):
                self.denied(lambda: s.request("POST", "/api/v1/auth/token",
                                              {"grant_type": "api_key", "api_key": key}),
                            401, "bad_credentials")
        self.denied(lambda: s.request("POST", "/api/v1/auth/token",
                                      {"grant_type": "password", "api_key": self.signer_key}),
                    400, "invalid_field")
        self.denied(lambda: s.request("POST", "/api/v1/auth/token", {"grant_type": "api_key"}),
                    400, "invalid_field")

    def test_signer_calling_admin(self):
        s = self.server
        self.denied(lambda: s.request("POST", "/api/v1/admin/users",
                                      {"name": "sneaky", "role": "admin"}, token=self.token),
                    403, "forbidden")
        self.denied(lambda: s.request("POST", "/api/v1/admin/keys",
                                      {"name": "sneaky", "type": "ec-p256"}, token=self.token),
                    403, "forbidden")

    # -- routing
    def test_wrong_method(self):
        s = self.server
        cases = [("GET", "/api/v1/sign", None), ("PUT", "/api/v1/sign", sign_body()),
                 ("DELETE", "/api/v1/admin/users", None), ("POST", "/api/v1/keys", {}),
                 ("GET", "/api/v1/auth/token", None), ("DELETE", "/api/v1/admin/keys/bi-ec",
                                                       None)]
        for method, path, body in cases:
            with self.subTest(call=method + " " + path):
                self.denied(lambda: s.request(method, path, body, token=self.token),
                            405, "method_not_allowed")

    def test_wrong_method_patch(self):
        # PATCH is as much "another method" as DELETE: 405 method_not_allowed, as JSON, with
        # its denial record.
        s = self.server
        self.denied(lambda: s.request("PATCH", "/api/v1/sign", sign_body(), token=self.token),
                    405, "method_not_allowed")

    def test_unknown_path(self):
        s = self.server
        for path in ("/api/v1/nope", "/api/v2/sign", "/api/v1/admin/keys/bi-ec/extra/deep",
                     "/api/v1/sign/", "/"):
            with self.subTest(path=path):
                self.denied(lambda: s.request("GET", path, token=self.token), 404, "not_found")

    def test_invalid_name_in_path(self):
        s = self.server
        self.denied(lambda: s.request("GET", "/api/v1/admin/keys/bad%20name",
                                      token=s.admin_token()), 400, "invalid_field")
        self.denied(lambda: s.request("GET", "/api/v1/admin/keys/" + "k" * 65,
                                      token=s.admin_token()), 400, "invalid_field")


class BadEncodingTest(ServerTestCase):
    """Strings the JSON text encodes legally but a C string cannot hold (an escaped NUL), and
    bytes that are not UTF-8. Its own server: a record that is not valid JSON text must not
    spoil the other tests' audit reads."""

    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("be-ec", "ec-p256")
        key = s.create_user("be-signer")
        s.grant("be-ec", "be-signer")
        cls.signer_token = s.token_for(key)
        s.admin_token()

    def refused(self, raw, path="/api/v1/sign", codes=("invalid_field", "malformed_json")):
        s = self.server
        snap = s.db_snapshot()
        last = s.audit_last_seq()
        token = self.signer_token if path == "/api/v1/sign" else s.admin_token()
        r = s.request("POST", path, raw=raw, token=token)
        request = s.last_request
        self.assertEqual(r.status, 400, "expected a 400 refusal, got %r" % r)
        self.assertIn(r.error_code, codes, r)
        self.assertEqual(s.db_snapshot(), snap, "state changed on a refused request")
        with s.db() as db:
            n = db.execute("SELECT count(*) FROM audit WHERE seq > ?", (last,)).fetchone()[0]
        self.assertEqual(n, 1, "expected exactly one denial record")
        record_refusal(self, request, 400, r.error_code)
        return r

    def test_escaped_nul_in_user_name(self):
        # "ab\u0000cd" is not a valid name; it must not become the user "ab".
        self.refused(b'{"name":"ab\\u0000cd","role":"signer"}', path="/api/v1/admin/users")
        users = [u["name"] for u in self.server.call("GET", "/api/v1/admin/users",
                                                     token=self.server.admin_token())["users"]]
        self.assertNotIn("ab", users)

    def test_escaped_nul_in_key_name(self):
        # "be-ec\u0000evil" names no key; it must not sign with "be-ec".
        body = ('{"key":"be-ec\\u0000evil","mechanism":"ecdsa","hash":"sha256","digest":"%s"}'
                % b64(D256)).encode()
        s = self.server
        snap = s.db_snapshot()
        r = s.request("POST", "/api/v1/sign", raw=body, token=self.signer_token)
        self.assertNotIn("signature", r.json or {}, "signed with a key named by a prefix")
        self.assertIn(r.status, (400, 404), r)
        self.assertIn(r.error_code, ("invalid_field", "malformed_json", "key_not_found"), r)
        self.assertEqual(s.db_snapshot(), snap)

    def test_escaped_nul_in_request_id(self):
        body = ('{"key":"be-ec","mechanism":"ecdsa","hash":"sha256","digest":"%s",'
                '"request_id":"r1\\u0000x"}' % b64(D256)).encode()
        self.refused(body)

    def test_invalid_utf8_never_reaches_the_audit_log_as_such(self):
        # Bytes that are not UTF-8 in a string: refused, and the audit log stays valid JSON
        # text (UTF-8, RFC 8259) through the API and `audit show --json` alike.
        s = self.server
        self.refused(b'{"key":"\xff\xfebe-ec","mechanism":"ecdsa","hash":"sha256",'
                     b'"digest":"AAAA"}')
        self.refused(b'{"name":"\xc3\x28x","role":"signer"}', path="/api/v1/admin/users")
        r = s.request("GET", "/api/v1/admin/audit?after=0&limit=1000", token=s.admin_token())
        self.assertEqual(r.status, 200)
        try:
            json.loads(r.body.decode("utf-8"))
        except ValueError as e:
            self.fail("GET /api/v1/admin/audit is not valid JSON text: %s" % e)
        proc = s.cli("audit", "show", "--json")
        self.assertEqual(proc.returncode, 0)
        for line in proc.stdout.splitlines():
            try:
                json.loads(line.decode("utf-8"))
            except ValueError as e:
                self.fail("audit show --json line is not valid JSON text: %s: %r" % (e, line))
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        write_table()
