"""The Signum Agent end to end: signum-util -> client library -> signum-agent (started on demand)
-> HTTPS -> a real signum-server with SoftHSMv2. Signatures are verified by openssl; what the
server saw is read from its audit log."""

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

from agent_harness import (Agent, UTIL_BIN, field, frame, read_frame, MSG_ERROR, MSG_HELLO,
                           MSG_STATUS, TAG_CODE, TAG_MESSAGE, TAG_VERSION, SG_ERR_DENIED,
                           SG_ERR_PROTOCOL)
from signum_harness import ServerTestCase, Server, b64, ecdsa_raw_to_der, run


def dead_port():
    """A port on 127.0.0.1 where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def process_running(pid):
    """True while the process exists and is not a zombie (a daemon is reparented to an init
    that may not reap it at once)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class AgentCase(ServerTestCase):
    """A server with a signer (alice), an RSA and an EC key with certificates, granted."""

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.alice_key = s.create_user("alice")
        for name, kind in (("rel-rsa", "rsa2048"), ("rel-ec", "ec-p256")):
            s.create_key(name, kind)
            s.issue_cert(name, name)
            s.grant(name, "alice")

    def url(self):
        return "https://localhost:%d" % self.server.port

    def new_agent(self, api_key=None, urls=None, extra_env=None):
        a = Agent(urls or [self.url()], self.server.ca_cert_path,
                  api_key=self.alice_key if api_key is None else api_key, extra_env=extra_env,
                  name=type(self).__name__)
        self.addCleanup(a.cleanup)
        return a

    def auth_records(self, user="alice", after=0):
        return [r for r in self.server.audit_show(after=after)
                if r["action"] == "auth.token" and r["actor"] == "user:" + user]

    def pubkey(self, agent, key):
        pem = agent.util_ok("cert", key).stdout
        return self.server.openssl.tmp(
            self.server.openssl("x509", "-pubkey", "-noout", input=pem).stdout, ".pem")


class SigningThroughTheAgent(AgentCase):

    def test_status_and_keys(self):
        a = self.new_agent()
        keys = json.loads(a.util_ok("keys", "--json").stdout)
        self.assertEqual(sorted(k["name"] for k in keys), ["rel-ec", "rel-rsa"])
        self.assertTrue(all(k["certificate"] and k["chain_length"] == 1 for k in keys))
        status = a.util_ok("status").stdout.decode()
        self.assertIn("logged in:  yes", status)
        self.assertIn("identity:   alice", status)

    def test_sign_files_and_verify(self):
        a = self.new_agent()
        o = self.server.openssl
        files = [o.tmp(("artefact %d" % i).encode(), ".bin") for i in range(5)]
        a.util_ok("sign", "--key", "rel-rsa", *files)
        pub = self.pubkey(a, "rel-rsa")
        for f in files:
            r = o("dgst", "-sha256", "-verify", pub, "-signature", f + ".sig", f, check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A different file must not verify against the first signature: the check is real.
        r = o("dgst", "-sha256", "-verify", pub, "-signature", files[0] + ".sig", files[1],
              check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_batches_and_mechanisms(self):
        a = self.new_agent()
        o = self.server.openssl
        msgs = [("m%d" % i).encode() for i in range(70)]  # more than one 64-digest batch
        digests = [hashlib.sha384(m).hexdigest() for m in msgs]
        args = ["sign", "--key", "rel-rsa", "--hash", "sha384", "--mechanism", "rsa-pss"]
        for d in digests:
            args += ["--digest", d]
        sigs = a.util_ok(*args).stdout.decode().split()
        self.assertEqual(len(sigs), 70)
        pub = self.pubkey(a, "rel-rsa")
        for m, s in zip(msgs[::13], sigs[::13]):
            r = o("dgst", "-sha384", "-verify", pub, "-sigopt", "rsa_padding_mode:pss",
                  "-sigopt", "rsa_pss_saltlen:48", "-signature", o.tmp(base64.b64decode(s)),
                  o.tmp(m), check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # ECDSA: raw r||s by default, DER on request; both verify.
        msg = b"ecdsa message"
        d = hashlib.sha256(msg).hexdigest()
        raw = base64.b64decode(a.util_ok("sign", "--key", "rel-ec", "--digest", d).stdout)
        self.assertEqual(len(raw), 64)
        der = base64.b64decode(a.util_ok("sign", "--key", "rel-ec", "--format", "der",
                                         "--digest", d).stdout)
        ecpub = self.pubkey(a, "rel-ec")
        for sig in (ecdsa_raw_to_der(raw), der):
            r = o("dgst", "-sha256", "-verify", ecpub, "-signature", o.tmp(sig), o.tmp(msg),
                  check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_caller_identity_reaches_the_audit_log(self):
        a = self.new_agent()
        before = self.server.audit_last_seq()
        a.util_ok("sign", "--key", "rel-ec", "--digest", "00" * 32)
        recs = [r for r in self.server.audit_show(after=before) if r["action"] == "sign"]
        self.assertEqual(len(recs), 1)
        client = recs[0]["detail"]["client"]
        # Read by the agent from /proc of the calling process, not claimed by the caller.
        self.assertEqual(client["application"], os.path.realpath(UTIL_BIN))
        self.assertIn("sign --key rel-ec", client["command_line"])
        self.assertIsInstance(client["pid"], int)
        self.assertEqual(recs[0]["actor"], "user:alice")

    def test_server_denial_is_reported(self):
        s = self.server
        s.create_key("short-lived", "ec-p256")
        s.grant("short-lived", "alice")
        a = self.new_agent()
        a.util_ok("keys")  # the agent now caches a listing that includes the key
        s.disable("short-lived")
        proc = a.util("sign", "--key", "short-lived", "--digest", "11" * 32)
        self.assertEqual(proc.returncode, 5, proc.stderr)
        self.assertIn("key_disabled", proc.stderr.decode())
        self.assertIn("next:", proc.stderr.decode())

    def test_refused_api_key(self):
        a = self.new_agent(api_key="sgk_000000000000_" + "A" * 43)
        proc = a.util("keys")
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("refused the API key", proc.stderr.decode())

    def test_login_and_logout(self):
        a = self.new_agent(api_key="")
        proc = a.util("keys")
        self.assertEqual(proc.returncode, 4)
        self.assertIn("signum-util login", proc.stderr.decode())
        key_file = os.path.join(a.root, "key")
        with open(key_file, "w") as f:
            f.write(self.alice_key + "\n")
        self.assertIn(b"logged in as alice", a.util_ok("login", "--api-key-file", key_file).stdout)
        a.util_ok("keys")
        a.util_ok("logout")
        self.assertFalse(os.path.exists(a.session_file))
        self.assertEqual(a.util("keys").returncode, 4)

    def test_session_sharing(self):
        """Many tool processes, one login and a handful of TLS handshakes."""
        a = self.new_agent()
        before = self.server.audit_last_seq()
        hs0 = self.server.metrics()["signum_tls_handshakes_total"]
        deadline = time.monotonic() + 120
        for i in range(200):
            self.assertLess(time.monotonic(), deadline, "200 sequential signs took > 120 s")
            a.util_ok("sign", "--key", "rel-ec", "--digest", "%064x" % i)

        def one(i):
            return a.util("sign", "--key", "rel-ec", "--digest", "%064x" % (1000 + i)).returncode

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(64)))
        self.assertEqual(codes, [0] * 64)
        hs = self.server.metrics()["signum_tls_handshakes_total"] - hs0
        self.assertEqual(len(self.auth_records(after=before)), 1)
        signs = [r for r in self.server.audit_show(after=before) if r["action"] == "sign"]
        self.assertEqual(len(signs), 264)
        # One connection per concurrently busy agent thread at most; +1 for the metrics call.
        self.assertLessEqual(hs, 8 + 1, "TLS handshakes: %d" % hs)
        print("\n264 signatures by 264 processes: %d login, %d TLS handshakes" % (
            len(self.auth_records(after=before)), hs), file=sys.stderr)

    def test_reauthenticates_once_after_revocation(self):
        a = self.new_agent()
        a.util_ok("sign", "--key", "rel-ec", "--digest", "22" * 32)
        before = self.server.audit_last_seq()
        with self.server.db() as db:  # revoke alice's tokens behind the agent's back
            db.execute("UPDATE access_tokens SET revoked = 1 WHERE user_id ="
                       " (SELECT id FROM users WHERE name = 'alice')")
        a.util_ok("sign", "--key", "rel-ec", "--digest", "33" * 32)
        recs = self.server.audit_show(after=before)
        denials = [r for r in recs if r["outcome"] == "denied"]
        self.assertEqual([r["detail"]["code"] for r in denials], ["token_invalid"])
        self.assertEqual(len([r for r in recs if r["action"] == "auth.token"]), 1)
        self.assertEqual(len([r for r in recs if r["action"] == "sign"
                              and r["outcome"] == "allowed"]), 1)
        self.assertIn("re-authenticating once", a.log())


class TokenRefresh(AgentCase):
    server_options = {"conf": {"token_ttl": "10"}, "ca_key_type": "ec-p256"}

    def test_refreshes_before_expiry(self):
        a = self.new_agent()
        before = self.server.audit_last_seq()
        a.util_ok("sign", "--key", "rel-ec", "--digest", "44" * 32)
        time.sleep(6)  # 4 s of life left: under the 5 s margin, so refresh first
        a.util_ok("sign", "--key", "rel-ec", "--digest", "55" * 32)
        recs = self.server.audit_show(after=before)
        self.assertEqual(len([r for r in recs if r["action"] == "auth.token"]), 2)
        self.assertEqual([r for r in recs if r["outcome"] == "denied"], [],
                         "the refresh must happen before the server refuses the old token")


class Failover(AgentCase):
    server_options = {"ca_key_type": "ec-p256"}

    def test_fails_over_to_second_server(self):
        down = "https://localhost:%d" % dead_port()
        a = self.new_agent(urls=[down, self.url()])
        msg = b"failover"
        sig = base64.b64decode(a.util_ok("sign", "--key", "rel-ec", "--format", "der",
                                         "--digest", hashlib.sha256(msg).hexdigest()).stdout)
        o = self.server.openssl
        r = o("dgst", "-sha256", "-verify", self.pubkey(a, "rel-ec"), "-signature", o.tmp(sig),
              o.tmp(msg), check=False)
        self.assertEqual(r.returncode, 0)
        self.assertIn("failed over to " + self.url(), a.log())

    def test_all_servers_down_is_a_clear_error(self):
        urls = ["https://localhost:%d" % dead_port() for _ in range(2)]
        a = self.new_agent(urls=urls, extra_env={"SIGNUM_RETRIES": "1"})
        t0 = time.monotonic()
        proc = a.util("keys")
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        err = proc.stderr.decode()
        self.assertIn("no server reachable (2 tried", err)
        self.assertIn("signum-util doctor", err)


class AgentLifecycleAndIpc(AgentCase):
    server_options = {"ca_key_type": "ec-p256"}

    def test_no_autostart_and_explicit_control(self):
        a = self.new_agent()
        proc = a.util("keys", env={"SIGNUM_NO_AUTOSTART": "1"})
        self.assertEqual(proc.returncode, 3)
        self.assertIn("agent start", proc.stderr.decode())
        self.assertIn(b"agent running", a.util_ok("agent", "start").stdout)
        st = os.stat(os.path.dirname(a.socket_path))
        self.assertEqual(st.st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(a.socket_path).st_mode & 0o777, 0o600)
        a.util_ok("keys", env={"SIGNUM_NO_AUTOSTART": "1"})
        a.stop()
        self.assertFalse(a.running())

    def test_idle_exit(self):
        a = self.new_agent(extra_env={"SIGNUM_IDLE_TIMEOUT": "2"})
        a.util_ok("agent", "start")
        pid = a.pid()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and a.running():
            time.sleep(0.2)
        self.assertFalse(a.running(), "agent still running after 10 s with a 2 s idle timeout")
        while time.monotonic() < deadline and process_running(pid):
            time.sleep(0.1)
        self.assertFalse(process_running(pid), "agent process still alive")
        a.assert_clean_log()

    def test_peer_of_another_uid_is_refused(self):
        self.assertEqual(os.getuid(), 0, "this test switches to another uid; run it as root")
        a = self.new_agent()
        a.util_ok("agent", "start")
        # uid 65534 keeps CAP_DAC_OVERRIDE so it can reach the 0700 socket at all: the refusal
        # must then come from the agent's own SO_PEERCRED check.
        code = ("import socket,struct,sys\n"
                "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                "try: s.sendall(struct.pack('>IHHII',0x53474E31,1,1,1,0))\n"
                "except BrokenPipeError: pass  # refused before it read anything\n"
                "h=s.recv(16); sys.stdout.write(h.hex()); b=s.recv(4096); sys.stdout.write(' '+b.hex())\n")
        proc = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "--inh-caps=+dac_override", "--ambient-caps=+dac_override", sys.executable,
                    "-c", code, a.socket_path])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        head, body = proc.stdout.decode().split(" ")
        self.assertEqual(struct.unpack(">IHHII", bytes.fromhex(head))[2], MSG_ERROR)
        self.assertEqual(bytes.fromhex(body)[6:10], struct.pack(">I", SG_ERR_DENIED))
        self.assertIn("refused a connection from uid 65534", a.log())
        a.util_ok("keys")  # and the agent still serves its own user

    def test_malformed_and_oversized_frames(self):
        a = self.new_agent()
        a.util_ok("agent", "start")
        cases = {
            "oversized": frame(MSG_HELLO, length=0x7FFFFFFF),
            "bad magic": frame(MSG_HELLO, magic=0x12345678),
            "bad version": frame(MSG_HELLO, version=9),
            "unknown tag": frame(MSG_HELLO, field(999, b"x")),
            "field past end": frame(MSG_HELLO, struct.pack(">HI", TAG_MESSAGE, 100) + b"x"),
            "text with NUL": frame(MSG_HELLO, field(TAG_MESSAGE, b"a\0b")),
        }
        for label, data in cases.items():
            with self.subTest(case=label):
                s = a.connect()
                s.sendall(data)
                reply = read_frame(s)
                self.assertIsNotNone(reply)
                self.assertEqual(reply[0], MSG_ERROR)
                self.assertEqual(struct.unpack(">I", reply[1][TAG_CODE][0])[0], SG_ERR_PROTOCOL)
                self.assertIsNone(read_frame(s), "the agent must drop a connection it "
                                                 "cannot trust the framing of")
                s.close()
        # A well-formed HELLO still works, and so does a tool.
        s = a.connect()
        s.sendall(frame(MSG_HELLO))
        reply = read_frame(s)
        self.assertEqual(reply[0], MSG_HELLO | 0x8000)
        self.assertTrue(reply[1][TAG_VERSION][0])
        s.close()
        a.util_ok("keys")

    def test_stalled_client_does_not_stall_others(self):
        a = self.new_agent()
        a.util_ok("agent", "start")
        stalled = [a.connect() for _ in range(20)]
        for s in stalled[:10]:
            s.sendall(frame(MSG_STATUS)[:7])  # half a header, then silence
        t0 = time.monotonic()
        a.util_ok("sign", "--key", "rel-ec", "--digest", "66" * 32)
        self.assertLess(time.monotonic() - t0, 3.0)
        # A begun frame must complete within 5 s, or the agent drops the connection.
        stalled[0].settimeout(10)
        t0 = time.monotonic()
        self.assertEqual(stalled[0].recv(16), b"")
        self.assertLess(time.monotonic() - t0, 8.0)
        for s in stalled:
            s.close()
        a.util_ok("status")


class SystemdUnits(AgentCase):
    server_options = {"ca_key_type": "ec-p256"}
    UNITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "installer",
                         "systemd")

    def test_units_verify(self):
        """systemd's own checker accepts the user units (ExecStart pointed at this build)."""
        from agent_harness import AGENT_BIN
        tmp = self.server.openssl.path("units")
        os.makedirs(tmp, exist_ok=True)
        for name in ("signum-agent.socket", "signum-agent.service"):
            with open(os.path.join(self.UNITS, name)) as f:
                text = f.read().replace("/usr/bin/signum-agent", AGENT_BIN)
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        proc = run(["systemd-analyze", "verify", "--man=no",
                    os.path.join(tmp, "signum-agent.socket"),
                    os.path.join(tmp, "signum-agent.service")])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_socket_activation(self):
        """The agent takes its listening socket from systemd (LISTEN_FDS), as the units do."""
        from agent_harness import AGENT_BIN
        a = self.new_agent()
        os.makedirs(os.path.dirname(a.socket_path), mode=0o700)
        log = open(os.path.join(a.root, "activated.log"), "wb")
        env = dict(a.env)
        args = ["systemd-socket-activate", "-l", a.socket_path]
        for k in ("SIGNUM_SERVER", "SIGNUM_CA_FILE", "SIGNUM_API_KEY", "XDG_RUNTIME_DIR",
                  "XDG_CACHE_HOME", "HOME"):
            args += ["-E", "%s=%s" % (k, env[k])]
        proc = subprocess.Popen(args + [AGENT_BIN, "--foreground", "--socket", a.socket_path],
                                stdout=log, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(a.socket_path) and time.monotonic() < deadline:
                time.sleep(0.05)
            # No autostart: the only way to an agent is through the activated socket.
            a.util_ok("sign", "--key", "rel-ec", "--digest", "88" * 32,
                      env={"SIGNUM_NO_AUTOSTART": "1"})
            a.util_ok("agent", "stop", env={"SIGNUM_NO_AUTOSTART": "1"})
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            log.close()
        with open(os.path.join(a.root, "activated.log")) as f:
            text = f.read()
        self.assertIn("listening on " + a.socket_path, text)
        self.assertEqual(proc.returncode, 0, text)
        # The socket file is systemd's: the agent leaves it; removing it is the manager's job.
        self.assertTrue(os.path.exists(a.socket_path))
        os.unlink(a.socket_path)


class PersistedCacheSafety(AgentCase):
    server_options = {"ca_key_type": "ec-p256"}

    def restart_and_count_logins(self, a, tamper):
        """Stops the agent, tampers with the cache, signs once more; returns new logins."""
        a.stop()
        tamper(a.session_file)
        before = self.server.audit_last_seq()
        a.util_ok("sign", "--key", "rel-ec", "--digest", "77" * 32)
        return len([r for r in self.server.audit_show(after=before)
                    if r["action"] == "auth.token"])

    def primed_agent(self):
        a = self.new_agent()
        a.util_ok("keys")
        st = os.stat(a.session_file)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(a.session_file)).st_mode & 0o777, 0o700)
        with open(a.session_file) as f:
            self.assertNotIn(self.alice_key, f.read(), "the API key must not be persisted")
        return a

    def test_valid_cache_survives_a_restart(self):
        a = self.primed_agent()
        self.assertEqual(self.restart_and_count_logins(a, lambda p: None), 0)

    def test_ignored_and_replaced(self):
        def loose_mode(p):
            os.chmod(p, 0o644)

        def truncated(p):
            with open(p, "r+") as f:
                f.truncate(40)

        def foreign_owner(p):
            os.chown(p, 65534, 65534)

        def expired(p):
            with open(p) as f:
                doc = json.load(f)
            doc["expires_at"] = int(time.time()) - 5
            with open(p, "w") as f:
                json.dump(doc, f)
            os.chmod(p, 0o600)

        def symlink(p):
            real = p + ".real"
            os.rename(p, real)
            os.symlink(real, p)

        def garbage(p):
            with open(p, "wb") as f:
                f.write(b"\x00\xff not json")

        for tamper in (loose_mode, truncated, foreign_owner, expired, symlink, garbage):
            with self.subTest(case=tamper.__name__):
                a = self.primed_agent()
                self.assertEqual(self.restart_and_count_logins(a, tamper), 1,
                                 "a %s cache file must be ignored" % tamper.__name__)
                st = os.lstat(a.session_file)
                self.assertEqual(st.st_mode & 0o777, 0o600, "and replaced by a private file")
                self.assertEqual(st.st_uid, os.getuid())


if __name__ == "__main__":
    unittest.main(verbosity=2)
