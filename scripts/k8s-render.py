#!/usr/bin/python3
"""Render a kustomize directory (k8s/overlays/local, k8s/overlays/production)
into plain multi-document YAML, for `podman kube play` (scripts/k8s-smoke.sh)
and the static check (scripts/k8s-check.py) on machines without kubectl.

It implements the subset of kustomize the Cascade manifests use, with
kustomize's meaning: resources (files and directories), configMapGenerator and
secretGenerator (files, literals; generatorOptions.disableNameSuffixHash must
be true), patches with a path (strategic merge: maps merge, lists of named
items merge by name, other lists are replaced, null deletes), and images
(name -> newName/newTag). Anything else in a kustomization.yaml is refused, so
a feature the real kustomize would apply is never silently skipped.
`kubectl kustomize --load-restrictor LoadRestrictionsNone DIR` renders the same.

usage: k8s-render.py DIR [-o FILE]
"""
import argparse
import base64
import copy
import os
import sys

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator",
              "generatorOptions", "patches", "images"}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


class RenderError(Exception):
    pass


def load_docs(path):
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        raise RenderError("%s: %s" % (path, e))
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
            raise RenderError("%s: document %d has no kind or metadata.name" % (path, i + 1))
    return docs


def pod_spec(doc):
    """The pod spec inside a workload, or None."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    if kind in POD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def merge(base, patch):
    """Strategic merge of patch into base (returns the result)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        for k, v in patch.items():
            if v is None:
                base.pop(k, None)
            elif k in base:
                base[k] = merge(base[k], v)
            else:
                base[k] = copy.deepcopy(v)
        return base
    named = lambda xs: all(isinstance(x, dict) and "name" in x for x in xs)  # noqa: E731
    if isinstance(base, list) and isinstance(patch, list) and named(base) and named(patch):
        by_name = {x["name"]: x for x in base}
        for x in patch:
            if x["name"] in by_name:
                merge(by_name[x["name"]], x)
            else:
                base.append(copy.deepcopy(x))
        return base
    return copy.deepcopy(patch)


def split_kv(entry, what, where):
    if "=" not in entry:
        raise RenderError("%s: %s entry %r is not key=value" % (where, what, entry))
    return entry.split("=", 1)


def generator_data(gen, kdir, where):
    data = {}
    for entry in gen.get("literals") or []:
        k, v = split_kv(entry, "literals", where)
        data[k] = v
    for entry in gen.get("files") or []:
        key, rel = split_kv(entry, "files", where) if "=" in entry else (os.path.basename(entry),
                                                                          entry)
        path = os.path.normpath(os.path.join(kdir, rel))
        try:
            with open(path) as f:
                data[key] = f.read()
        except OSError as e:
            raise RenderError("%s: %s" % (where, e))
    return data


def render(kdir, seen=()):
    kpath = os.path.join(kdir, "kustomization.yaml")
    if kpath in seen:
        raise RenderError("%s: included twice (cycle)" % kpath)
    try:
        with open(kpath) as f:
            k = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RenderError("%s: %s" % (kpath, e))
    unknown = set(k) - KNOWN_KEYS
    if unknown:
        raise RenderError("%s: unsupported kustomize fields %s" % (kpath, sorted(unknown)))
    docs = []
    for res in k.get("resources") or []:
        path = os.path.normpath(os.path.join(kdir, res))
        if os.path.isdir(path):
            docs += render(path, seen + (kpath,))
        else:
            docs += load_docs(path)
    gens = (k.get("configMapGenerator") or []) + (k.get("secretGenerator") or [])
    if gens and not (k.get("generatorOptions") or {}).get("disableNameSuffixHash"):
        raise RenderError("%s: generators need generatorOptions.disableNameSuffixHash: true "
                          "(name hashes are not rendered here)" % kpath)
    for gen in k.get("configMapGenerator") or []:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": generator_data(gen, kdir, kpath)})
    for gen in k.get("secretGenerator") or []:
        data = generator_data(gen, kdir, kpath)
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]},
                     "type": gen.get("type", "Opaque"),
                     "data": {key: base64.b64encode(v.encode()).decode()
                              for key, v in data.items()}})
    for p in k.get("patches") or []:
        if set(p) != {"path"}:
            raise RenderError("%s: only patches with a path are supported" % kpath)
        for patch in load_docs(os.path.join(kdir, p["path"])):
            targets = [d for d in docs if d["kind"] == patch["kind"]
                       and d["metadata"]["name"] == patch["metadata"]["name"]]
            if not targets:
                raise RenderError("%s: patch for %s/%s matches nothing" % (
                    p["path"], patch["kind"], patch["metadata"]["name"]))
            for t in targets:
                merge(t, patch)
    for img in k.get("images") or []:
        for d in docs:
            spec = pod_spec(d)
            for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
                name, _, tag = c.get("image", "").partition(":")
                if name == img["name"]:
                    c["image"] = "%s:%s" % (img.get("newName", name), img.get("newTag", tag or
                                                                             "latest"))
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    try:
        docs = render(os.path.normpath(args.dir))
    except RenderError as e:
        print("k8s-render: %s" % e, file=sys.stderr)
        return 1
    text = yaml.safe_dump_all(docs, sort_keys=False)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
