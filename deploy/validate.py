#!/usr/bin/env python3
"""Checks the deployment files under deploy/ with what Debian packages offer (ctest
deploy.validate). Nothing here runs Docker or Kubernetes; see docs/deploy.md for what that
leaves unchecked.

  - yamllint on every YAML file (deploy/.yamllint);
  - the Kubernetes objects, read with python3-yaml: every document has apiVersion, kind and a
    name; selectors of the Deployment, Service and PodDisruptionBudget match the pod labels;
    probes are HTTPS on /healthz/live and /healthz/ready on a declared port; pods run as a
    non-root user without privilege escalation; every mounted volume exists and every
    ConfigMap or Secret a pod uses is in the kustomization or in secrets.example.yaml; no
    environment variable carries a secret literal and the database URL carries no password;
    terminationGracePeriodSeconds covers the preStop pause plus drain_timeout plus 5 s; the
    PodDisruptionBudget leaves at least one node up;
  - signum-server.conf in the ConfigMap: only keys server/src/config.c knows;
  - the Dockerfile: a builder stage and a Debian bookworm runtime stage, a numeric non-root
    USER, --no-install-recommends, no -dev package or compiler at run time, a builder package
    for every pkg-config module the CMake files require, and (with --server BINARY) a runtime
    package for every library the binary links;
  - shellcheck on the container entrypoint; `haproxy -c` on the HAProxy example, whose backend
    must check /healthz/ready.

Usage: deploy/validate.py [--root REPO] [--server path/to/signum-server]
Exit status 0 if every check passes, 1 otherwise (each failure is printed).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - reported as a failure below
    yaml = None

# Keys other branches of issue 16 add to server/src/config.c; accepted until they are merged.
PENDING_CONFIG_KEYS = {"drain_timeout"}
# Libraries every Debian image has (Essential: yes or their dependencies).
BASE_PACKAGES = {"libc6", "libgcc-s1", "zlib1g"}
GRACE_MARGIN = 5  # seconds after the drain for the last checkpoint and the HSM logout
TOOL_TIMEOUT = 60



def depends_closure(pkgs):
    """pkgs and every package they depend on (Depends and Pre-Depends, as this host's dpkg
    knows them): what apt installs for the runtime stage's list."""
    seen, todo = set(), list(pkgs)
    while todo:
        batch = [p for p in todo if p not in seen]
        todo = []
        if not batch:
            break
        seen.update(batch)
        q = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}, ${Pre-Depends}\n"] + batch,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=TOOL_TIMEOUT)
        for line in q.stdout.decode().splitlines():
            for alt in line.split(","):
                for dep in alt.split("|"):
                    name = dep.strip().split(" ")[0].split(":")[0]
                    if name and name not in seen:
                        todo.append(name)
    return seen

class Checker:
    def __init__(self, root, server=None):
        self.root = root
        self.deploy = os.path.join(root, "deploy")
        self.server = server
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
        return ok

    def path(self, *parts):
        return os.path.join(self.deploy, *parts)

    def tool(self, name, args, what):
        exe = shutil.which(name)
        if not self.check(exe is not None, "%s is not installed (scripts/install-deps.sh)" % name):
            return None
        proc = subprocess.run([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TOOL_TIMEOUT)
        out = proc.stdout.decode(errors="replace").strip()
        self.check(proc.returncode == 0, "%s: %s exited %d\n%s" % (what, name, proc.returncode,
                                                                  out))
        return proc

    # -- YAML ------------------------------------------------------------------------------

    def yaml_files(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.deploy):
            dirnames.sort()
            out += [os.path.join(dirpath, f) for f in sorted(filenames)
                    if f.endswith((".yaml", ".yml"))]
        return out

    def load_all(self):
        """{relative path: [documents]} of every YAML file."""
        docs = {}
        for p in self.yaml_files():
            rel = os.path.relpath(p, self.deploy)
            try:
                with open(p) as f:
                    docs[rel] = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                self.check(False, "%s does not parse: %s" % (rel, e))
        return docs

    def check_yamllint(self):
        files = self.yaml_files()
        self.check(files, "no YAML file under deploy/")
        self.tool("yamllint", ["--strict", "-c", self.path(".yamllint")] + files, "yamllint")

    # -- Kubernetes ------------------------------------------------------------------------

    def check_kubernetes(self, docs):
        kdir = "kubernetes"
        objects = {}
        for rel, items in docs.items():
            if not rel.startswith(kdir + os.sep):
                continue
            for d in items:
                ok = isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                if not self.check(ok, "%s: a document without apiVersion and kind" % rel):
                    continue
                if d["kind"] == "Kustomization":
                    continue
                name = (d.get("metadata") or {}).get("name")
                if self.check(name, "%s: a %s without metadata.name" % (rel, d["kind"])):
                    objects.setdefault(rel, []).append(d)
        kust = docs.get(os.path.join(kdir, "kustomization.yaml"), [{}])[0] or {}
        resources = kust.get("resources") or []
        self.check(resources, "kubernetes/kustomization.yaml lists no resources")
        for r in resources:
            self.check(os.path.exists(self.path(kdir, r)),
                       "kustomization resource %s does not exist" % r)
        self.check("secrets.example.yaml" not in resources,
                   "secrets.example.yaml (placeholders) must not be in the kustomization")
        listed = [d for r in resources for d in objects.get(os.path.join(kdir, r), [])]
        examples = objects.get(os.path.join(kdir, "secrets.example.yaml"), [])
        by_kind = {}
        for d in listed:
            by_kind.setdefault(d["kind"], []).append(d)
        deps = by_kind.get("Deployment", [])
        if not self.check(len(deps) == 1, "expected one Deployment, found %d" % len(deps)):
            return
        dep = deps[0]
        spec = dep.get("spec") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        pod = tmpl.get("spec") or {}

        def matches(selector, what):
            self.check(selector and all(labels.get(k) == v for k, v in selector.items()),
                       "%s selector %r does not match the pod labels %r" % (what, selector,
                                                                              labels))

        matches((spec.get("selector") or {}).get("matchLabels"), "Deployment")
        replicas = spec.get("replicas", 1)
        self.check(isinstance(replicas, int) and replicas >= 2,
                   "replicas must be at least 2 for HA, is %r" % replicas)

        containers = pod.get("containers") or []
        sidecars = pod.get("initContainers") or []
        server = [c for c in containers if c.get("name") == "signum-server"]
        if not self.check(len(server) == 1, "no container named signum-server"):
            return
        srv = server[0]
        ports = {p.get("name"): p.get("containerPort") for p in srv.get("ports") or []}

        for svc in by_kind.get("Service", []):
            matches((svc.get("spec") or {}).get("selector"), "Service %s" % svc["metadata"]["name"])
            for p in (svc.get("spec") or {}).get("ports") or []:
                t = p.get("targetPort")
                self.check(t in ports or t in ports.values(),
                           "Service port %r targets %r, not a signum-server port" % (p, t))
        pdbs = by_kind.get("PodDisruptionBudget", [])
        if self.check(len(pdbs) == 1, "expected one PodDisruptionBudget, found %d" % len(pdbs)):
            pspec = pdbs[0].get("spec") or {}
            matches((pspec.get("selector") or {}).get("matchLabels"), "PodDisruptionBudget")
            if "maxUnavailable" in pspec:
                ok = isinstance(pspec["maxUnavailable"], int) and \
                    0 < pspec["maxUnavailable"] < replicas
            else:
                ok = isinstance(pspec.get("minAvailable"), int) and \
                    0 < pspec["minAvailable"] < replicas
            self.check(ok, "the PodDisruptionBudget must allow one disruption and keep a node "
                       "up: %r with %r replicas" % (pspec, replicas))

        for kind, path in (("livenessProbe", "/healthz/live"),
                           ("readinessProbe", "/healthz/ready"),
                           ("startupProbe", "/healthz/live")):
            probe = (srv.get(kind) or {}).get("httpGet") or {}
            self.check(probe.get("path") == path and probe.get("scheme") == "HTTPS" and
                       (probe.get("port") in ports or probe.get("port") in ports.values()),
                       "%s must be an HTTPS GET of %s on a declared port, is %r"
                       % (kind, path, probe))

        psc = pod.get("securityContext") or {}
        self.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
                   "the pod must run as a non-root user: %r" % psc)
        for c in containers + sidecars:
            csc = c.get("securityContext") or {}
            self.check(csc.get("allowPrivilegeEscalation") is False and
                       csc.get("runAsUser", 1) != 0 and not csc.get("privileged"),
                       "container %s: no privilege escalation, not root" % c.get("name"))
            for e in c.get("env") or []:
                secretish = re.search(r"PASS|SECRET|TOKEN|PIN|PRIVATE|CREDENTIAL", e.get("name", ""),
                                      re.I)
                self.check(not (secretish and "value" in e),
                           "container %s: %s is a literal; secrets come from a Secret"
                           % (c.get("name"), e.get("name")))
            vols = {v.get("name") for v in pod.get("volumes") or []}
            for m in c.get("volumeMounts") or []:
                self.check(m.get("name") in vols, "container %s mounts unknown volume %s"
                           % (c.get("name"), m.get("name")))

        have = {(d["kind"], d["metadata"]["name"]) for d in listed + examples}
        for v in pod.get("volumes") or []:
            refs = []
            if "configMap" in v:
                refs.append(("ConfigMap", v["configMap"].get("name")))
            if "secret" in v:
                refs.append(("Secret", v["secret"].get("secretName")))
            for src in (v.get("projected") or {}).get("sources") or []:
                if "secret" in src:
                    refs.append(("Secret", src["secret"].get("name")))
                if "configMap" in src:
                    refs.append(("ConfigMap", src["configMap"].get("name")))
            for ref in refs:
                self.check(ref in have, "volume %s uses %s %s, which is neither in the "
                           "kustomization nor in secrets.example.yaml" % (v.get("name"), *ref))

        conf = None
        for cm in by_kind.get("ConfigMap", []):
            if "signum-server.conf" in (cm.get("data") or {}):
                conf = cm["data"]["signum-server.conf"]
        if not self.check(conf is not None, "no ConfigMap with signum-server.conf"):
            return
        settings = self.check_conf(conf)
        drain = int(settings.get("drain_timeout", "10"))
        pause = 0
        exe = (((srv.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {})
        cmd = exe.get("command") or []
        if len(cmd) == 2 and cmd[0].endswith("sleep") and cmd[1].isdigit():
            pause = int(cmd[1])
        grace = pod.get("terminationGracePeriodSeconds", 30)
        self.check(isinstance(grace, int) and grace >= pause + drain + GRACE_MARGIN,
                   "terminationGracePeriodSeconds %r < preStop %d s + drain_timeout %d s + %d s"
                   % (grace, pause, drain, GRACE_MARGIN))
        module = settings.get("hsm_module", "")
        if module.endswith("p11-kit-client.so"):
            env = {e.get("name"): e.get("value") for e in srv.get("env") or []}
            self.check(str(env.get("P11_KIT_SERVER_ADDRESS", "")).startswith("unix:path="),
                       "hsm_module is p11-kit-client.so but P11_KIT_SERVER_ADDRESS is unset")
            self.check("p11-kit-modules" in self.runtime_packages(),
                       "hsm_module is p11-kit-client.so but the image lacks p11-kit-modules")

    def known_config_keys(self):
        with open(os.path.join(self.root, "server", "src", "config.c")) as f:
            text = f.read()
        keys = set(re.findall(r'\b(?:INT|PATH|TEXT|OPTIONAL_PATH)\("([a-z_]+)"', text))
        keys |= set(re.findall(r'strcmp\(key, "([a-z_]+)"\)', text))
        return keys | PENDING_CONFIG_KEYS

    def check_conf(self, text):
        known = self.known_config_keys()
        settings = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not self.check("=" in line, "signum-server.conf line %d has no '='" % n):
                continue
            key, value = (s.strip() for s in line.split("=", 1))
            self.check(key in known, "signum-server.conf: unknown key %r (server/src/config.c)"
                       % key)
            settings[key] = value
        db = settings.get("database", "")
        self.check(not re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", db) and
                   "password=" not in db,
                   "the database URL carries a password; use passfile= and a Secret")
        return settings

    # -- container -------------------------------------------------------------------------

    def dockerfile(self):
        with open(self.path("container", "Dockerfile")) as f:
            return f.read()

    def stages(self):
        """[(FROM line, body)] of the Dockerfile, continuation lines joined."""
        text = re.sub(r"\\\n", " ", self.dockerfile())
        out = []
        for line in text.splitlines():
            s = line.strip()
            if s.upper().startswith("FROM "):
                out.append([s, []])
            elif out and s and not s.startswith("#"):
                out[-1][1].append(s)
        return out

    def stage_packages(self, index):
        stages = self.stages()
        if not stages:
            return set()
        pkgs = set()
        for line in stages[index][1]:
            m = re.search(r"apt-get install ([^&;]*)", line)
            if m:
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
        return pkgs

    def runtime_packages(self):
        return self.stage_packages(-1)

    def check_build_packages(self):
        """Every pkg-config module the CMake files outside tests/ require (the image builds
        with SIGNUM_BUILD_TESTS=OFF) comes from a package the builder stage installs."""
        modules = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "build")) and
                           not (rel == "." and d in ("tests", "deploy"))]
            for f in filenames:
                if f != "CMakeLists.txt":
                    continue
                with open(os.path.join(dirpath, f)) as fh:
                    for m in re.finditer(r"pkg_check_modules\(\s*\w+((?:\s+[^)\s]+)*)\s*\)",
                                         fh.read()):
                        for w in m.group(1).split():
                            if w not in ("REQUIRED", "QUIET", "IMPORTED_TARGET", "GLOBAL"):
                                modules.add(re.split(r"[<>=]", w)[0])
        if not self.check(modules, "no pkg_check_modules found in the CMake files"):
            return
        builder = self.stage_packages(0)
        pcs = {}
        for mod in sorted(modules):
            q = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
            if self.check(q.returncode == 0, "pkg-config does not know %s here" % mod):
                pcs[mod] = os.path.join(q.stdout.decode().strip(), mod + ".pc")
        if not pcs:
            return
        d = subprocess.run(["dpkg", "-S"] + sorted(pcs.values()), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
        owners = {}
        for line in d.stdout.decode().splitlines():
            pkg, _, path = line.partition(": ")
            owners[path.strip()] = pkg.split(":")[0].strip()
        for mod, pc in sorted(pcs.items()):
            owner = owners.get(pc)
            if self.check(owner, "no Debian package owns %s" % pc):
                self.check(owner in builder, "CMake needs pkg-config module %s from %s, which "
                           "the builder stage does not install" % (mod, owner))

    def check_container(self):
        text = self.dockerfile()
        stages = self.stages()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
        if not self.check(len(stages) >= 2, "the Dockerfile needs a builder and a runtime stage"):
            return
        for frm, body in stages:
            image = frm.split()[1]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
            self.check(image.startswith("debian:bookworm"),
                       "%s: the base must be Debian bookworm" % frm)
        self.check(re.search(r"\bAS\s+\w+", stages[0][0], re.I),
                   "the first stage must be a named builder stage")
        run_body = stages[-1][1]
        users = [line.split(None, 1)[1] for line in run_body if line.upper().startswith("USER ")]
        self.check(users and re.match(r"^[1-9][0-9]*(:[1-9][0-9]*)?$", users[-1]),
                   "the runtime stage must end as a numeric non-root USER, has %r" % users)
        self.check(any(line.startswith("COPY --from=") for line in run_body),
                   "the runtime stage must copy the build result from the builder")
        for frm, body in stages:
            for line in body:
                if "apt-get install" in line:
                    self.check("--no-install-recommends" in line,
                               "%s: apt-get install without --no-install-recommends" % frm)
                    self.check("rm -rf /var/lib/apt/lists" in line,
                               "%s: apt lists left in the image" % frm)
                self.check(not re.match(r"ADD\s+https?://", line, re.I),
                           "%s: ADD from a URL" % frm)
        pkgs = self.runtime_packages()
        bad = sorted(p for p in pkgs if p.endswith("-dev") or
                     p in ("build-essential", "cmake", "gcc", "make", "pkg-config"))
        self.check(not bad, "build packages in the runtime stage: %s" % ", ".join(bad))
        entry = re.search(r'^ENTRYPOINT \["([^"]+)"', text, re.M)
        self.check(entry and "entrypoint.sh" in entry.group(1) and
                   os.path.exists(self.path("container", "entrypoint.sh")),
                   "ENTRYPOINT must be deploy/container/entrypoint.sh")
        self.tool("shellcheck", ["-s", "sh", self.path("container", "entrypoint.sh")],
                  "entrypoint.sh")
        self.check_build_packages()
        if self.server:
            self.check_linked_packages(pkgs)

    def check_linked_packages(self, pkgs):
        """Every library the server binary links belongs to a package the image installs."""
        proc = subprocess.run(["ldd", self.server], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TOOL_TIMEOUT)
        if not self.check(proc.returncode == 0, "ldd %s failed" % self.server):
            return
        libs = []
        for line in proc.stdout.decode().splitlines():
            m = re.search(r"=>\s+(/\S+)", line)
            if m:
                real = os.path.realpath(m.group(1))
                libs.append((real, {m.group(1), real, re.sub(r"^/lib/", "/usr/lib/", real),
                                    re.sub(r"^/usr/lib/", "/lib/", real)}))
        self.check(libs, "ldd %s listed no library" % self.server)
        # One dpkg query for every candidate path (merged /usr: either spelling may be known).
        q = subprocess.run(["dpkg", "-S"] + sorted(set().union(*[c for _, c in libs])),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
        owners = {}
        for line in q.stdout.decode().splitlines():
            pkg, _, path = line.partition(": ")
            owners[path.strip()] = pkg.split(":")[0].strip()
        installed = depends_closure(set(pkgs))
        for real, cands in libs:
            owner = next((owners[c] for c in sorted(cands) if c in owners), None)
            if not self.check(owner is not None, "no Debian package owns %s" % real):
                continue
            self.check(owner in installed or owner in BASE_PACKAGES,
                       "signum-server links %s from %s, which the runtime stage does not "
                       "install" % (os.path.basename(real), owner))

    # -- HAProxy ---------------------------------------------------------------------------

    def check_haproxy(self):
        with open(self.path("haproxy", "haproxy.cfg")) as f:
            text = f.read()
        self.check(re.search(r"^\s*option httpchk\b", text, re.M),
                   "haproxy.cfg: the backend needs option httpchk")
        self.check(re.search(r"^\s*http-check send meth GET uri /healthz/ready\b", text, re.M),
                   "haproxy.cfg: the health check must be GET /healthz/ready")
        self.check(re.search(r"^\s*http-check expect status 200\b", text, re.M),
                   "haproxy.cfg: the health check must expect 200")
        self.check(re.search(r"^\s*default-server\b.*\bcheck\b.*\bcheck-ssl\b", text, re.M),
                   "haproxy.cfg: servers must be checked over TLS (default-server check "
                   "check-ssl)")
        self.check(len(re.findall(r"^\s*server\s+\S+", text, re.M)) >= 3,
                   "haproxy.cfg: three nodes expected")
        # The CA file the example names does not exist here: any PEM bundle stands in.
        bundle = next((p for p in ("/etc/ssl/certs/ca-certificates.crt",) if os.path.exists(p)),
                      None)
        with tempfile.TemporaryDirectory(prefix="signum-haproxy-") as tmp:
            cfg = os.path.join(tmp, "haproxy.cfg")
            ca = os.path.join(tmp, "signum-ca.crt")
            if bundle:
                shutil.copyfile(bundle, ca)
            with open(cfg, "w") as f:
                f.write(text.replace("/etc/haproxy/signum-ca.crt", ca))
            self.tool("haproxy", ["-c", "-q", "-f", cfg], "haproxy.cfg")

    def run(self):
        if not self.check(yaml is not None, "python3-yaml is not installed"):
            return 1
        self.check_yamllint()
        docs = self.load_all()
        self.check_kubernetes(docs)
        self.check_container()
        self.check_haproxy()
        for f in self.failures:
            print("FAIL: %s" % f)
        print("%d checks passed, %d failed" % (self.passed, len(self.failures)))
        return 1 if self.failures else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(here), help="repository root")
    ap.add_argument("--server", help="signum-server binary whose libraries must be installed")
    a = ap.parse_args()
    return Checker(os.path.abspath(a.root), a.server).run()


if __name__ == "__main__":
    sys.exit(main())
