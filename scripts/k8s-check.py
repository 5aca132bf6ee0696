#!/usr/bin/python3
"""Static check of the k8s manifests (docs/deploy.md, "Static check"), run by
the test suite (tests/integration/test_k8s_manifests.py):

- every YAML file under k8s/ parses, and every document has a kind and a name;
- every overlay (k8s/overlays/*) renders (scripts/k8s-render.py);
- in each rendered overlay:
  - every endpoint in the config the orchestrator gets (the cascade-config
    ConfigMap's cascade.json with the orchestrator's --set flags applied:
    orchestrator.endpoints, every channel's and stage's endpoint) and every
    Redis address (CASCADE_REDIS, --redis) names a Service and one of its
    ports, and that Service selects a pod whose container has that port;
  - every service's --listen port is its container's "grpc" port;
  - every Deployment has readiness and liveness probes, a preStop hook, CPU
    and memory requests, a memory limit, a named "metrics" port with matching
    Prometheus annotations, and a securityContext with runAsNonRoot,
    readOnlyRootFilesystem, allowPrivilegeEscalation false and every
    capability dropped (StatefulSets the same but preStop and metrics; Jobs
    and CronJobs resources and securityContext);
  - every ConfigMap, Secret and PVC a pod uses exists (Secrets listed in
    EXTERNAL_SECRETS are created out of band), and every HPA and PDB targets
    something that exists.

usage: k8s-check.py [--k8s-dir DIR]   (exit 0 = clean; else one line per problem)
"""
import argparse
import glob
import importlib.util
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# Secrets an overlay expects to be created by hand (docs/deploy.md).
EXTERNAL_SECRETS = {"production": {"cascade-redis-auth"}, "canary": {"cascade-redis-auth"}}
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


def load_renderer():
    spec = importlib.util.spec_from_file_location("k8s_render", os.path.join(HERE, "k8s-render.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


render_mod = load_renderer()


def template_of(doc):
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return spec.get("template") or {}


def containers(doc):
    spec = template_of(doc).get("spec") or {}
    return spec.get("containers") or []


def flag_values(args, flag):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def set_path(cfg, path, value):
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    try:
        node[keys[-1]] = json.loads(value)
    except ValueError:
        node[keys[-1]] = value


class Checker:
    def __init__(self, overlay, docs):
        self.overlay = overlay
        self.docs = docs
        self.problems = []
        self.by_kind = {}
        for d in docs:
            self.by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    def bad(self, what, msg):
        self.problems.append("%s: %s: %s" % (self.overlay, what, msg))

    def pods_selected_by(self, service):
        sel = (service.get("spec") or {}).get("selector") or {}
        out = []
        for kind in ("Deployment", "StatefulSet"):
            for d in self.by_kind.get(kind, {}).values():
                labels = (template_of(d).get("metadata") or {}).get("labels") or {}
                if sel and all(labels.get(k) == v for k, v in sel.items()):
                    out.append(d)
        return out

    def check_address(self, where, addr):
        """addr must be <Service>:<port> with a pod behind that port."""
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            return self.bad(where, "%r is not host:port" % addr)
        svc = self.by_kind.get("Service", {}).get(host)
        if svc is None:
            return self.bad(where, "%r: no Service named %s" % (addr, host))
        ports = [p for p in svc["spec"].get("ports") or [] if p.get("port") == int(port)]
        if not ports:
            return self.bad(where, "%r: Service %s has no port %s" % (addr, host, port))
        target = ports[0].get("targetPort", int(port))
        pods = self.pods_selected_by(svc)
        if not pods:
            return self.bad(where, "%r: Service %s selects no pod" % (addr, host))
        for d in pods:
            cports = [p for c in containers(d) for p in c.get("ports") or []]
            if not any(p.get("name") == target or p.get("containerPort") == target
                       for p in cports):
                self.bad(where, "%r: %s/%s has no container port %s" % (
                    addr, d["kind"], d["metadata"]["name"], target))

    def check_orchestrator_config(self):
        orch = self.by_kind.get("Deployment", {}).get("cascade-orchestrator")
        cm = self.by_kind.get("ConfigMap", {}).get("cascade-config")
        if orch is None or cm is None:
            return self.bad("orchestrator", "no cascade-orchestrator Deployment or "
                            "cascade-config ConfigMap")
        try:
            cfg = json.loads((cm.get("data") or {})["cascade.json"])
        except (KeyError, ValueError) as e:
            return self.bad("ConfigMap/cascade-config", "cascade.json: %s" % e)
        args = containers(orch)[0].get("args") or []
        for assignment in flag_values(args, "--set"):
            path, _, value = assignment.partition("=")
            set_path(cfg, path, value)
        o = cfg.get("orchestrator") or {}
        endpoints = o.get("endpoints") or {}
        for name, addr in endpoints.items():
            self.check_address("orchestrator endpoint %s" % name, addr)

        def resolve(where, value):
            if value in endpoints:
                return
            if ":" in str(value):
                self.check_address(where, value)
            else:
                self.bad(where, "endpoint %r is neither host:port nor in "
                         "orchestrator.endpoints" % value)
        for ch in o.get("channels") or []:
            resolve("channel %s" % ch.get("name"), ch.get("endpoint", "recall"))
        for stage, sc in (o.get("stages") or {}).items():
            resolve("stage %s" % stage, (sc or {}).get("endpoint", stage))

    def check_workload(self, d):
        kind, name = d["kind"], d["metadata"]["name"]
        where = "%s/%s" % (kind, name)
        tmpl = template_of(d)
        pod_sc = (tmpl.get("spec") or {}).get("securityContext") or {}
        annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
        for c in containers(d):
            cw = "%s container %s" % (where, c.get("name"))
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                self.bad(cw, "securityContext: runAsNonRoot is not true")
            if sc.get("readOnlyRootFilesystem") is not True:
                self.bad(cw, "securityContext: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                self.bad(cw, "securityContext: allowPrivilegeEscalation is not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                self.bad(cw, "securityContext: capabilities.drop does not contain ALL")
            res = c.get("resources") or {}
            for r in ("cpu", "memory"):
                if not (res.get("requests") or {}).get(r):
                    self.bad(cw, "resources.requests.%s missing" % r)
            if not (res.get("limits") or {}).get("memory"):
                self.bad(cw, "resources.limits.memory missing")
            if kind in ("Deployment", "StatefulSet"):
                for probe in ("readinessProbe", "livenessProbe"):
                    if not c.get(probe):
                        self.bad(cw, "%s missing" % probe)
            if kind == "Deployment":
                if not ((c.get("lifecycle") or {}).get("preStop")):
                    self.bad(cw, "lifecycle.preStop missing (drain before SIGTERM)")
                metrics = [p for p in c.get("ports") or [] if p.get("name") == "metrics"]
                if not metrics:
                    self.bad(cw, "no container port named metrics")
                elif (annotations.get("prometheus.io/scrape") != "true" or
                      annotations.get("prometheus.io/port") != str(metrics[0]["containerPort"])):
                    self.bad(cw, "prometheus.io/scrape and prometheus.io/port annotations do "
                             "not point at the metrics port %s" % metrics[0]["containerPort"])
                args = c.get("args") or []
                grpc = [p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "grpc"]
                for listen in flag_values(args, "--listen"):
                    if [int(listen.rpartition(":")[2])] != grpc:
                        self.bad(cw, "--listen %s is not the grpc container port %s"
                                 % (listen, grpc))
            for env in c.get("env") or []:
                if env.get("name") == "CASCADE_REDIS":
                    self.check_address(cw + " env CASCADE_REDIS", env.get("value", ""))
            cmd = " ".join((c.get("command") or []) + (c.get("args") or []))
            words = cmd.split()
            for i, w in enumerate(words[:-1]):
                if w == "--redis":
                    self.check_address(cw + " --redis", words[i + 1])
        self.check_references(where, tmpl.get("spec") or {})

    def check_references(self, where, spec):
        externals = EXTERNAL_SECRETS.get(self.overlay, set())
        for vol in spec.get("volumes") or []:
            if "configMap" in vol and vol["configMap"]["name"] not in self.by_kind.get(
                    "ConfigMap", {}):
                self.bad(where, "ConfigMap %s does not exist" % vol["configMap"]["name"])
            if "secret" in vol:
                name = vol["secret"]["secretName"]
                if name not in self.by_kind.get("Secret", {}) and name not in externals:
                    self.bad(where, "Secret %s does not exist" % name)
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                if claim not in self.by_kind.get("PersistentVolumeClaim", {}):
                    self.bad(where, "PersistentVolumeClaim %s does not exist" % claim)
        for c in spec.get("containers") or []:
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] not in self.by_kind.get("Secret", {}) \
                        and ref["name"] not in externals:
                    self.bad(where, "Secret %s (env %s) does not exist" % (ref["name"],
                                                                          env["name"]))

    def check_targets(self):
        for hpa in self.by_kind.get("HorizontalPodAutoscaler", {}).values():
            ref = hpa["spec"]["scaleTargetRef"]
            if ref["name"] not in self.by_kind.get(ref["kind"], {}):
                self.bad("HorizontalPodAutoscaler/" + hpa["metadata"]["name"],
                         "target %s/%s does not exist" % (ref["kind"], ref["name"]))
        for pdb in self.by_kind.get("PodDisruptionBudget", {}).values():
            svc_like = {"spec": {"selector": pdb["spec"]["selector"].get("matchLabels")}}
            if not self.pods_selected_by(svc_like):
                self.bad("PodDisruptionBudget/" + pdb["metadata"]["name"], "selects no pod")
        for name, svc in self.by_kind.get("Service", {}).items():
            if not self.pods_selected_by(svc):
                self.bad("Service/" + name, "selects no pod")
        # Every Deployment is behind a Service: it names the pod's ports, and
        # podman's kube play (scripts/k8s-podman.py) names the pod after it.
        selected = {d["metadata"]["name"] for svc in self.by_kind.get("Service", {}).values()
                    for d in self.pods_selected_by(svc)}
        for name in self.by_kind.get("Deployment", {}):
            if name not in selected:
                self.bad("Deployment/" + name, "selected by no Service")

    def run(self):
        seen = set()
        for d in self.docs:
            key = (d["kind"], d["metadata"]["name"])
            if key in seen:
                self.bad("%s/%s" % key, "defined twice")
            seen.add(key)
        if not self.by_kind.get("Deployment"):
            self.bad("overlay", "renders no Deployment")
        for kind in WORKLOADS:
            for d in self.by_kind.get(kind, {}).values():
                self.check_workload(d)
        self.check_orchestrator_config()
        self.check_targets()
        return self.problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k8s-dir", default=os.path.join(HERE, "..", "k8s"))
    args = ap.parse_args()
    problems = []
    for path in sorted(glob.glob(os.path.join(args.k8s_dir, "**", "*.yaml"), recursive=True)):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        try:
            render_mod.load_docs(path)
        except render_mod.RenderError as e:
            problems.append(str(e))
    overlays = sorted(glob.glob(os.path.join(args.k8s_dir, "overlays", "*", "kustomization.yaml")))
    if not overlays:
        problems.append("%s: no overlays" % args.k8s_dir)
    for k in overlays:
        name = os.path.basename(os.path.dirname(k))
        try:
            docs = render_mod.render(os.path.dirname(k))
        except render_mod.RenderError as e:
            problems.append("%s: %s" % (name, e))
            continue
        problems += Checker(name, docs).run()
        print("k8s-check: %s: %d objects checked" % (name, len(docs)))
    for p in problems:
        print("k8s-check: " + p, file=sys.stderr)
    if problems:
        print("k8s-check: %d problem(s)" % len(problems), file=sys.stderr)
        return 1
    print("k8s-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
