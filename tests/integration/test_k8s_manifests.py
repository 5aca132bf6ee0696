"""The static check of the k8s manifests (scripts/k8s-check.py): it passes on
the repository's k8s/, and each kind of mistake it exists to catch, made on a
copy, makes it fail with a line naming the problem. Also checks what the
renderer (scripts/k8s-render.py) makes of the overlays."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE_DIR = os.environ.get(
    "CASCADE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
CHECK = os.path.join(SOURCE_DIR, "scripts", "k8s-check.py")
RENDER = os.path.join(SOURCE_DIR, "scripts", "k8s-render.py")


def run_check(k8s_dir):
    return subprocess.run([sys.executable, CHECK, "--k8s-dir", k8s_dir],
                          capture_output=True, text=True, timeout=120)


def render(overlay_dir):
    res = subprocess.run([sys.executable, RENDER, overlay_dir], capture_output=True, text=True,
                         timeout=120)
    if res.returncode != 0:
        raise AssertionError(res.stderr)
    return list(yaml.safe_load_all(res.stdout))


def find(docs, kind, name):
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


class K8sManifestTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cascade-k8s-check-")
        # k8s/ and config/ side by side, as the base's configMapGenerator expects.
        shutil.copytree(os.path.join(SOURCE_DIR, "k8s"), os.path.join(self.tmp, "k8s"))
        shutil.copytree(os.path.join(SOURCE_DIR, "config"), os.path.join(self.tmp, "config"))
        self.k8s = os.path.join(self.tmp, "k8s")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def edit(self, rel, old, new):
        path = os.path.join(self.k8s, rel)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text, "%s: the edit's anchor is gone" % rel)
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))

    def assert_fails(self, *needles):
        res = run_check(self.k8s)
        self.assertNotEqual(res.returncode, 0, res.stdout + res.stderr)
        for needle in needles:
            self.assertIn(needle, res.stderr)

    def test_repository_manifests_pass(self):
        res = run_check(os.path.join(SOURCE_DIR, "k8s"))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        for overlay in ("local", "production", "canary"):
            self.assertIn("k8s-check: %s:" % overlay, res.stdout)

    def test_endpoint_to_a_missing_port(self):
        self.edit("base/orchestrator.yaml", "cascade-rank:50054", "cascade-rank:50099")
        self.assert_fails("orchestrator endpoint rank", "Service cascade-rank has no port 50099")

    def test_endpoint_to_a_missing_service(self):
        self.edit("base/orchestrator.yaml", "cascade-filter:50052", "cascade-filters:50052")
        self.assert_fails("no Service named cascade-filters")

    def test_endpoint_left_on_loopback(self):
        # Without the --set override the orchestrator would call 127.0.0.1.
        self.edit("base/orchestrator.yaml",
                  '            - "--set"\n            - "orchestrator.endpoints.recall=cascade-recall:50051"\n',
                  "")
        self.assert_fails("orchestrator endpoint recall", "no Service named 127.0.0.1")

    def test_redis_address(self):
        self.edit("base/recall.yaml", '"cascade-redis:6379"', '"cascade-redis:6380"')
        self.assert_fails("CASCADE_REDIS", "Service cascade-redis has no port 6380")

    def test_missing_probe_resources_and_security(self):
        self.edit("base/filter.yaml", "          readinessProbe:", "          unusedProbe:")
        self.edit("base/rank.yaml", "cpu: \"1\", ", "")
        self.edit("base/rerank.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
        self.edit("base/prerank.yaml", "capabilities: {drop: [ALL]}", "capabilities: {drop: [NET_RAW]}")
        self.edit("base/recall.yaml", "          lifecycle:", "          unusedLifecycle:")
        self.assert_fails("Deployment/cascade-filter container filter: readinessProbe missing",
                          "Deployment/cascade-rank container rank: resources.requests.cpu missing",
                          "cascade-rerank container rerank: securityContext: readOnlyRootFilesystem",
                          "cascade-prerank container prerank: securityContext: capabilities.drop",
                          "cascade-recall container recall: lifecycle.preStop missing")

    def test_metrics_annotation_must_match_port(self):
        self.edit("base/recall.yaml", 'prometheus.io/port: "51051"', 'prometheus.io/port: "9090"')
        self.assert_fails("cascade-recall container recall: prometheus.io/scrape")

    def test_listen_must_be_the_grpc_port(self):
        self.edit("base/rerank.yaml", '"0.0.0.0:50055"', '"0.0.0.0:50056"')
        self.assert_fails("--listen 0.0.0.0:50056 is not the grpc container port")

    def test_deployment_without_a_service(self):
        self.edit("base/consumer.yaml", "  selector: {app: cascade, stage: consumer}\n",
                  "  selector: {app: cascade, stage: nothing}\n")
        self.assert_fails("Deployment/cascade-consumer: selected by no Service")

    def test_missing_volume_claim(self):
        self.edit("base/storage.yaml", "name: cascade-events", "name: cascade-event-log")
        self.assert_fails("PersistentVolumeClaim cascade-events does not exist")

    def test_unparsable_manifest(self):
        self.edit("base/redis.yaml", "kind: StatefulSet", "kind: [StatefulSet")
        self.assert_fails("redis.yaml")

    def test_overlays_render_as_kustomize_would(self):
        local = render(os.path.join(SOURCE_DIR, "k8s", "overlays", "local"))
        prod = render(os.path.join(SOURCE_DIR, "k8s", "overlays", "production"))
        self.assertEqual(find(local, "Deployment", "cascade-rank")["spec"]["replicas"], 1)
        self.assertEqual(find(prod, "Deployment", "cascade-rank")["spec"]["replicas"], 2)
        c = find(local, "Deployment", "cascade-rank")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["image"], "localhost/cascade:latest")
        # The patch merged into the container: resources changed, probes kept.
        self.assertEqual(c["resources"]["requests"]["cpu"], "100m")
        self.assertIn("readinessProbe", c)
        pc = find(prod, "Deployment", "cascade-rank")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(pc["image"], "registry.example.com/cascade:0.1.0")
        # The ConfigMap is the repository's config, byte for byte.
        with open(os.path.join(SOURCE_DIR, "config", "cascade.json")) as f:
            self.assertEqual(find(prod, "ConfigMap", "cascade-config")["data"]["cascade.json"],
                             f.read())
        # Only the local overlay carries a Redis password.
        self.assertEqual([d["metadata"]["name"] for d in local if d["kind"] == "Secret"],
                         ["cascade-redis-auth"])
        self.assertEqual([d for d in prod if d["kind"] == "Secret"], [])


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
