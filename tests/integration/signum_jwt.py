"""JWTs, key pairs and JWKS for the authentication tests, made with the openssl CLI.

Keys are generated at test time; ES256 signatures come from `openssl dgst -sha256 -sign` (DER)
converted to raw r||s as RFC 7518 wants; RS256 signatures are openssl's raw PKCS#1 v1.5 output.
Standard library only.
"""

import base64
import hashlib
import json
import time

from signum_harness import b64


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _der_read(buf, pos, tag):
    """Reads one DER TLV of the given tag at pos; returns (value, next position)."""
    assert buf[pos] == tag, "DER tag %#x where %#x was expected" % (buf[pos], tag)
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return buf[pos:pos + n], pos + n


def ecdsa_der_to_raw(der, half=32):
    """ASN.1 ECDSA-Sig-Value to r||s, each half bytes (JWS ES256 format)."""
    seq, _ = _der_read(der, 0, 0x30)
    r, pos = _der_read(seq, 0, 0x02)
    s, _ = _der_read(seq, pos, 0x02)
    return (int.from_bytes(r, "big").to_bytes(half, "big") +
            int.from_bytes(s, "big").to_bytes(half, "big"))


class EcKey:
    """A P-256 (or other curve) key pair in the scratch directory."""

    def __init__(self, openssl, name, curve="P-256"):
        self.o = openssl
        self.pem_path = openssl.path(name + ".key.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve,
                "-out", self.pem_path)
        self.spki = openssl("pkey", "-in", self.pem_path, "-pubout", "-outform", "DER").stdout
        # A P-256 SPKI ends with the uncompressed point 04 || x || y.
        self.x, self.y = self.spki[-64:-32], self.spki[-32:]

    @property
    def spki_b64(self):
        return b64(self.spki)

    @property
    def kid(self):
        """What the server names an enrolled key: hex of the first 16 bytes of SHA-256(SPKI)."""
        return hashlib.sha256(self.spki).digest()[:16].hex()

    def sign(self, data):
        der = self.o("dgst", "-sha256", "-sign", self.pem_path, input=data).stdout
        return ecdsa_der_to_raw(der)

    def jwk(self, kid, **extra):
        d = {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64url(self.x), "y": b64url(self.y)}
        d.update(extra)
        return d

    def csr(self, subject="/CN=anything"):
        return _csr(self, subject)


def _csr(key, subject):
    """A PEM PKCS#10 request signed by the key."""
    return key.o("req", "-new", "-key", key.pem_path, "-subj", subject).stdout.decode()


class RsaKey:
    def __init__(self, openssl, name, bits=2048):
        self.o = openssl
        self.pem_path = openssl.path(name + ".key.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                "-out", self.pem_path)
        out = openssl("rsa", "-in", self.pem_path, "-noout", "-modulus").stdout.decode()
        self.n = int(out.strip().split("=", 1)[1], 16)
        self.e = 65537  # openssl genpkey's default public exponent
        self.spki = openssl("pkey", "-in", self.pem_path, "-pubout", "-outform", "DER").stdout

    def sign(self, data):
        return self.o("dgst", "-sha256", "-sign", self.pem_path, input=data).stdout

    def csr(self, subject="/CN=anything"):
        return _csr(self, subject)

    def jwk(self, kid, **extra):
        n = self.n.to_bytes((self.n.bit_length() + 7) // 8, "big")
        e = self.e.to_bytes((self.e.bit_length() + 7) // 8, "big")
        d = {"kty": "RSA", "kid": kid, "n": b64url(n), "e": b64url(e), "use": "sig"}
        d.update(extra)
        return d


def make_jwt(header, claims, key=None, signature=None):
    """Compact JWT; signed by key unless signature (bytes, or "" for none) is given."""
    h = b64url(json.dumps(header, separators=(",", ":")))
    p = b64url(json.dumps(claims, separators=(",", ":")))
    signing_input = (h + "." + p).encode()
    if signature is None:
        signature = key.sign(signing_input)
    return h + "." + p + "." + (b64url(signature) if signature else "")


def now():
    return int(time.time())
