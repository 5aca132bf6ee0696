#!/usr/bin/python3
"""Turn rendered manifests (scripts/k8s-render.py) into what `podman kube play`
(podman 4.3, Debian bookworm) runs, for scripts/k8s-smoke.sh:

- a Deployment or StatefulSet becomes one Pod named after the Service that
  selects it, so aardvark-dns answers the Service name (cascade-recall:50051)
  on the podman network; a StatefulSet's volumeClaimTemplates become PVCs;
- a Job becomes a Pod named after the Job (written to --jobs FILE, played once
  the services are up);
- ConfigMaps and PVCs stay; Secrets become ConfigMaps of the decoded data, and
  secret volumes and secretKeyRefs their ConfigMap equivalents: podman 4.3's
  kube play dereferences a nil pointer on secret volumes and reads
  secretKeyRef only from its own secret store;
- Services, HPAs, PDBs, NetworkPolicies and CronJobs have no podman
  equivalent and are left out (the static check covers them).

Everything else (commands, args, env, probes, securityContext, resources,
mounts) is passed through unchanged.

usage: k8s-podman.py RENDERED.yaml --pods FILE --jobs FILE
"""
import argparse
import base64
import copy
import sys

import yaml

DROPPED = {"Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
           "CronJob"}


def selects(service, labels):
    sel = (service.get("spec") or {}).get("selector") or {}
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def secrets_to_configmaps(spec):
    for vol in spec.get("volumes") or []:
        if "secret" in vol:
            src = vol.pop("secret")
            vol["configMap"] = {"name": src["secretName"]}
            if "defaultMode" in src:
                vol["configMap"]["defaultMode"] = src["defaultMode"]
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).pop("secretKeyRef", None)
            if ref is not None:
                env["valueFrom"]["configMapKeyRef"] = ref


def as_pod(name, template):
    meta = copy.deepcopy(template.get("metadata") or {})
    meta["name"] = name
    spec = copy.deepcopy(template["spec"])
    secrets_to_configmaps(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def convert(docs):
    services = [d for d in docs if d["kind"] == "Service"]
    pods, jobs, keep = [], [], []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in DROPPED:
            continue
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            data.update(d.get("stringData") or {})
            keep.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                         "data": data})
        elif kind in ("ConfigMap", "PersistentVolumeClaim"):
            keep.append(d)
        elif kind in ("Deployment", "StatefulSet"):
            template = d["spec"]["template"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            matching = [s["metadata"]["name"] for s in services if selects(s, labels)]
            if len(matching) != 1:
                raise SystemExit("k8s-podman: %s/%s is selected by %d Services (%s); "
                                 "podman needs exactly one to name its pod"
                                 % (kind, name, len(matching), matching))
            pod = as_pod(matching[0], template)
            for tmpl in d["spec"].get("volumeClaimTemplates") or []:
                claim = "%s-%s-0" % (tmpl["metadata"]["name"], name)
                keep.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": {"name": claim}, "spec": tmpl["spec"]})
                pod["spec"].setdefault("volumes", []).append(
                    {"name": tmpl["metadata"]["name"],
                     "persistentVolumeClaim": {"claimName": claim}})
            pods.append(pod)
        elif kind == "Job":
            jobs.append(as_pod(name, d["spec"]["template"]))
        else:
            raise SystemExit("k8s-podman: no podman equivalent for %s/%s" % (kind, name))
    return keep, pods, jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rendered")
    ap.add_argument("--pods", required=True, help="ConfigMaps, PVCs and service pods")
    ap.add_argument("--jobs", required=True, help="the Jobs' pods")
    args = ap.parse_args()
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    keep, pods, jobs = convert(docs)
    with open(args.pods, "w") as f:
        yaml.safe_dump_all(keep + pods, f, sort_keys=False)
    with open(args.jobs, "w") as f:
        # The job pods' ConfigMaps again: podman resolves references per play.
        yaml.safe_dump_all([d for d in keep if d["kind"] == "ConfigMap"] + jobs, f,
                           sort_keys=False)
    print(" ".join(p["metadata"]["name"] for p in pods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
