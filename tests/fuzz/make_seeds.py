#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: tests/fuzz/corpus/<target>/ (committed) from public
formats built here, and with --certs DIR fresh certificate chains for the chain fuzzer
(scripts/fuzz.sh adds them at run time). Certificates come from the openssl command line; their
private keys live in a temporary directory that is deleted: no key is ever written out.

Usage: make_seeds.py [--out DIR]      all committed seeds (default: corpus/ next to this file)
       make_seeds.py --certs DIR      only certificate-chain seeds, into DIR
"""
import base64
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def sign_request_seeds(d):
    d32, d48, d64 = bytes(range(32)), bytes(range(48)), bytes(range(64))
    bodies = {
        "rsa_pkcs1": {"key": "release", "mechanism": "rsa-pkcs1", "hash": "sha256",
                      "digest": b64(d32)},
        "pss_salt": {"key": "release", "mechanism": "rsa-pss", "hash": "sha384",
                     "digest": b64(d48), "salt_length": 48, "request_id": "ci-42:build.7"},
        "ecdsa_der": {"key": "ec-key", "mechanism": "ecdsa", "hash": "sha512",
                      "digest": b64(d64), "signature_format": "der"},
        "batch": {"key": "release", "mechanism": "rsa-pkcs1", "hash": "sha256",
                  "digests": [b64(d32), b64(d32[::-1]), b64(bytes(32))]},
        "context": {"key": "release", "mechanism": "ecdsa", "hash": "sha256", "digest": b64(d32),
                    "context": {"application": "osslsigncode", "command_line": "osslsigncode sign",
                                "host": "build-1", "pid": 4242, "uid": 1000,
                                "agent": "0.1.0"}},
        "unknown_field": {"key": "k", "mechanism": "ecdsa", "hash": "sha256", "digest": "",
                          "extra": True},
        "wrong_types": {"key": 5, "mechanism": None, "hash": ["sha256"], "digest": {},
                        "salt_length": 1.5},
    }
    for name, body in bodies.items():
        write(d, name, json.dumps(body, separators=(",", ":")))
    write(d, "duplicate", '{"key":"a","key":"b","mechanism":"ecdsa","hash":"sha256"}')
    write(d, "escapes", '{"key":"r\\u00e9l","mechanism":"ecdsa\\u0000","hash":"\\ud83d\\ude00"}')
    write(d, "nested", "{" + '"a":[' * 40 + "]" * 40 + "}")
    write(d, "not_object", "[1,2,3]")


def b64_seeds(d):
    cases = [b"", b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", bytes(range(256))[:40]]
    for i, raw in enumerate(cases):
        write(d, "std%d" % i, bytes([0x40]) + b64(raw).encode())
        write(d, "url%d" % i, bytes([0x40]) + b64url(raw).encode())
    write(d, "noncanonical", b"\x10QR==")
    write(d, "overcap", b"\x01" + b64(bytes(32)).encode())
    write(d, "padding_inside", b"\x10QQ==QQ==")


def jwt_seeds(d):
    header = {"alg": "ES256", "typ": "JWT", "kid": "sa-1"}
    claims = {"iss": "ci-release", "sub": "ci-release", "aud": "https://signum.example",
              "iat": 1700000000, "exp": 1700000300, "jti": "5f2b7c1e"}
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":")).encode())
    es = enc(header) + "." + enc(claims) + "." + b64url(bytes(64))
    rs = (enc({"alg": "RS256", "kid": "oidc"}) + "." +
          enc(dict(claims, aud=["x", "https://signum.example"], nbf=1699999990)) + "." +
          b64url(bytes(256)))
    write(d, "es256", b"\x00" + es.encode())
    write(d, "es256_resigned", b"\x01" + es.encode())
    write(d, "rs256_resigned", b"\x03" + rs.encode())
    write(d, "none", b"\x00" + (enc({"alg": "none"}) + "." + enc(claims) + ".").encode())
    write(d, "crit", b"\x01" + (enc({"alg": "ES256", "crit": ["b64"]}) + "." + enc(claims) +
                                ".x").encode())
    write(d, "float_times", b"\x01" + (enc(header) + "." +
                                       enc(dict(claims, exp=1.7e9 + 0.5, iat=-1)) + ".x").encode())


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_chain(tmp, key_alg):
    """root -> intermediate -> leaf, as PEM text (leaf first) and the leaf as DER."""
    gen = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_alg == "ec"
           else ["-newkey", "rsa:2048"])
    ext = os.path.join(tmp, "ca.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("req", "-x509", *gen, "-nodes", "-keyout", "root.key", "-out", "root.crt",
            "-subj", "/CN=Fuzz Root", "-days", "30", cwd=tmp)
    openssl("req", "-new", *gen, "-nodes", "-keyout", "int.key", "-out", "int.csr",
            "-subj", "/CN=Fuzz Intermediate", cwd=tmp)
    openssl("x509", "-req", "-in", "int.csr", "-CA", "root.crt", "-CAkey", "root.key",
            "-set_serial", "2", "-days", "30", "-extfile", ext, "-out", "int.crt", cwd=tmp)
    openssl("req", "-new", *gen, "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", "/CN=Fuzz Code Signing/O=Signum", cwd=tmp)
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "int.crt", "-CAkey", "int.key",
            "-set_serial", "3", "-days", "30", "-out", "leaf.crt", cwd=tmp)
    openssl("x509", "-in", "leaf.crt", "-outform", "DER", "-out", "leaf.cer", cwd=tmp)
    read = lambda n: open(os.path.join(tmp, n), "rb").read()
    return read("leaf.crt"), read("int.crt"), read("root.crt"), read("leaf.cer")


def chain_seeds(d):
    for alg in ("ec", "rsa"):
        with tempfile.TemporaryDirectory() as tmp:
            leaf, inter, root, der = make_chain(tmp, alg)
        write(d, alg + "_chain", b"\x01" + leaf + inter + root)
        write(d, alg + "_leaf_only", b"\x01" + leaf)
        write(d, alg + "_wrong_order", b"\x01" + leaf + root + inter)
        write(d, alg + "_bag_attributes", b"\x01" + b"Bag Attributes\r\nsubject=/CN=x\r\n" +
              leaf.replace(b"\n", b"\r\n") + b"\n\n" + inter)
        write(d, alg + "_der", b"\x02" + der)
    write(d, "public_key_block", b"\x01-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    write(d, "no_end", b"\x00-----BEGIN CERTIFICATE-----\nMIIB\n")


IPC_TAGS = dict(code=1, message=2, version=3, pid=4, key=10, key_id=11, key_type=12,
                public_key=13, cert=14, chain=15, key_entry=16, mech=20, hash=21, digest=22,
                salt=23, signature=25, request_id=26, secret=30, identity=31, server=32,
                expires=33, application=40, count=42, method=50, path=51, body=52)


def field(tag, value):
    return struct.pack(">HI", IPC_TAGS[tag], len(value)) + value


def frame(mtype, payload, fid=1):
    return struct.pack(">IHHII", 0x53474E31, 1, mtype, fid, len(payload)) + payload


def ipc_seeds(d):
    u32 = lambda v: struct.pack(">I", v)
    write(d, "hello", frame(1, field("version", b"0.1.0") + field("pid", u32(4242)) +
                            field("application", b"libsignumpkcs11")))
    write(d, "sign", frame(4, field("key", b"release") + field("mech", b"rsa-pss") +
                           field("hash", b"sha256") + field("salt", u32(32)) +
                           field("digest", bytes(32)) + field("digest", bytes(range(32))) +
                           field("request_id", b"r-1")))
    entry = (field("key", b"release") + field("key_id", b"\x01\x02") +
             field("key_type", b"rsa2048") + field("public_key", bytes(300)) +
             field("cert", bytes(500)) + field("chain", bytes(400)))
    write(d, "list_reply", frame(0x8003, field("key_entry", entry) +
                                 field("key_entry", entry.replace(b"release", b"ec-key1")) +
                                 field("count", u32(2))))
    write(d, "error", frame(0xFFFF, field("code", u32(4)) + field("message", b"denied")))
    write(d, "status_reply", frame(0x8002, field("identity", b"user:alice") +
                                   field("server", b"https://127.0.0.1:8443") +
                                   field("expires", struct.pack(">Q", 1700000000))))
    write(d, "api", frame(8, field("method", b"GET") + field("path", b"policies") +
                          field("body", b"{}")))
    write(d, "short_header", frame(1, b"")[:10])
    write(d, "length_past_end", frame(1, field("key", b"x"))[:-1])


def pkcs11_seeds(d):
    # Programs for fuzz_pkcs11.c's interpreter: first byte picks the agent's listing answer and
    # the C_Initialize arguments; then one op byte per call and its argument bytes.
    init = b"\x00"
    open_rw = b"\x00\x01"
    find_all = b"\x04\x00\x00" + b"\x05\x00\x08" + b"\x06\x00"
    getattr_ = (b"\x07\x00\x00\x03" + b"\x00\x00\x00" + b"\x04\x40\x03" + bytes(64) +
                b"\x04\x10\x08" + bytes(16))
    sign = lambda obj, mech: (b"\x09\x00" + bytes([obj]) + bytes([mech, 0]) +
                              b"\x0a\x00\x10" + bytes(range(16)) + b"\x04")
    for obj in range(6):
        write(d, "rsa_sign_obj%d" % obj, init + open_rw + find_all + getattr_ + sign(obj, 1))
        write(d, "ec_sign_obj%d" % obj, init + open_rw + find_all + sign(obj, 9))
    pss = (b"\x09\x00\x00\x05\x01\x00\x00\x20" + b"\x0a\x00\x20" + bytes(32) + b"\x02\x00")
    write(d, "pss", init + open_rw + find_all + pss)
    multi = (b"\x09\x00\x00\x01\x00" + b"\x0c\x00\x05hello" + b"\x0c\x00\x03abc" + b"\x0e\x00\x01\x00")
    write(d, "multipart", init + open_rw + find_all + multi)
    digest = b"\x10\x00\x0c\x00" + b"\x0b\x00\x05hello" + b"\x04"
    write(d, "digest", init + open_rw + digest)
    write(d, "login", b"\x01" + open_rw + b"\x02\x00\x01\x08sk_12345" + find_all)
    write(d, "no_agent", b"\x02" + open_rw + find_all + b"\x11\x00\x00\x12\x00\x00\x00")
    write(d, "app_locks", b"\x20" + open_rw + find_all + b"\x14\x00" + b"\x13\x00\x00")


def tsa_req_seeds(d):
    """TimeStampReqs (RFC 3161) as openssl ts -query makes them, one per hash, with and
    without nonce, certReq and policy."""
    def der(tag, body):
        n = len(body)
        head = bytes([tag, n]) if n < 0x80 else bytes([tag, 0x81, n]) if n < 0x100 else \
            bytes([tag, 0x82]) + n.to_bytes(2, "big")
        return head + body
    algs = {"sha256": ("608648016503040201", 32), "sha384": ("608648016503040202", 48),
            "sha512": ("608648016503040203", 64), "sha1": ("2b0e03021a", 20)}
    for name, (oid, n) in algs.items():
        alg = der(0x30, der(0x06, bytes.fromhex(oid)) + b"\x05\x00")
        imprint = der(0x30, alg + der(0x04, bytes(range(n))))
        write(d, name, der(0x30, b"\x02\x01\x01" + imprint))
        write(d, name + "_full", der(0x30, b"\x02\x01\x01" + imprint +
                                     der(0x06, bytes.fromhex("2b06010401868d1f01")) +
                                     der(0x02, bytes.fromhex("00c0ffee0123456789")) +
                                     b"\x01\x01\xff"))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--certs":
        chain_seeds(sys.argv[2])
        return
    out = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--out" else os.path.join(HERE, "corpus")
    for name, fn in (("sign_request", sign_request_seeds), ("b64", b64_seeds), ("jwt", jwt_seeds),
                     ("chain", chain_seeds), ("ipc", ipc_seeds), ("pkcs11", pkcs11_seeds),
                     ("tsa_req", tsa_req_seeds)):
        fn(os.path.join(out, name))


if __name__ == "__main__":
    main()
