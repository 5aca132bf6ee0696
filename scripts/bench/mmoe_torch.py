"""The notes' PyTorch MMoE (Part 3) next to ours: build it seeded, write its
state_dict as safetensors with the metadata common/ml/mmoe.h's loader needs (a
small pure-Python writer: Debian's torch 1.13 has no safetensors package),
read such a file back, and time inference. Used by
tests/interop/test_mmoe_parity.py and scripts/bench/mmoe_vs_torch.sh.

Usage: mmoe_torch.py write-model --out FILE [--input-dim 16] [--experts 4]
           [--expert-hidden 32] [--tower-hidden 16] [--tasks click,...] [--seed 1]
       mmoe_torch.py bench --model FILE [--candidates 300] [--iters 2000]
           [--warmup 100] [--threads 1] [--seed 1]
"""
import argparse
import json
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

DEFAULT_TASKS = "click,like,collect,share,watch_time,complete"


class MMoE(nn.Module):
    """The notes' module: experts Linear+ReLU, a softmax gate per task, towers
    Linear, ReLU, Linear, Sigmoid. forward() returns the list of sigmoid
    outputs as in the notes; logits() stops before the Sigmoid."""

    def __init__(self, input_dim, expert_num, expert_hidden_dim, task_num, task_hidden_dim):
        super().__init__()
        self.experts = nn.ModuleList([
            nn.Sequential(nn.Linear(input_dim, expert_hidden_dim), nn.ReLU())
            for _ in range(expert_num)])
        self.gates = nn.ModuleList([nn.Linear(input_dim, expert_num) for _ in range(task_num)])
        self.towers = nn.ModuleList([
            nn.Sequential(nn.Linear(expert_hidden_dim, task_hidden_dim), nn.ReLU(),
                          nn.Linear(task_hidden_dim, 1), nn.Sigmoid())
            for _ in range(task_num)])

    def _mixtures(self, x):
        expert_outputs = torch.stack([expert(x) for expert in self.experts], dim=1)
        for gate in self.gates:
            weights = torch.softmax(gate(x), dim=1)
            yield torch.einsum('be,beh->bh', weights, expert_outputs)

    def forward(self, x):
        return [tower(mix) for tower, mix in zip(self.towers, self._mixtures(x))]

    def logits(self, x):
        """[batch, task_num] tower outputs before the Sigmoid."""
        return torch.cat([tower[:3](mix) for tower, mix in zip(self.towers, self._mixtures(x))],
                         dim=1)


def task_kinds(tasks):
    """Kinds as common/ml/mmoe.h names them: the task called watch_time is the
    watch-time kind (served exp(z)), every other one binary (sigmoid(z))."""
    return ["watch_time" if t == "watch_time" else "binary" for t in tasks]


def build(input_dim=16, experts=4, expert_hidden=32, tower_hidden=16, tasks=DEFAULT_TASKS,
          seed=1):
    """A seeded float32 CPU MMoE (torch's default Linear initialisation)."""
    torch.manual_seed(seed)
    names = tasks.split(",")
    model = MMoE(input_dim, experts, expert_hidden, len(names), tower_hidden).float().eval()
    model.cascade_config = dict(input_dim=input_dim, n_experts=experts,
                                expert_hidden=expert_hidden, tower_hidden=tower_hidden,
                                tasks=names, seed=seed)
    return model


def metadata(cfg, version="torch"):
    """The __metadata__ keys cascade_mmoe_load requires (docs/mmoe.md)."""
    tasks = ",".join(f"{t}:{k}:1" for t, k in zip(cfg["tasks"], task_kinds(cfg["tasks"])))
    return {"format": "cascade-mmoe-1", "input_dim": str(cfg["input_dim"]),
            "n_experts": str(cfg["n_experts"]), "expert_hidden": str(cfg["expert_hidden"]),
            "tower_hidden": str(cfg["tower_hidden"]), "tasks": tasks, "expert_dropout": "0",
            "seed": str(cfg["seed"]), "version": version}


def write_safetensors(path, tensors, meta):
    """tensors: name -> float32 numpy array. Layout: u64 LE header length, the
    JSON header (dtype, shape, [begin, end) offsets into the data), the data."""
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """(name -> float32 numpy array, metadata) of an F32 safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, only F32 is read")
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return tensors, meta


def save(model, path):
    tensors = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    write_safetensors(path, tensors, metadata(model.cascade_config))


def load(path):
    """A torch MMoE with the weights and configuration of a cascade-mmoe-1 file."""
    tensors, meta = read_safetensors(path)
    tasks = [t.split(":")[0] for t in meta["tasks"].split(",")]
    model = build(int(meta["input_dim"]), int(meta["n_experts"]), int(meta["expert_hidden"]),
                  int(meta["tower_hidden"]), ",".join(tasks))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    return model


def served(model, x):
    """[batch, tasks] as common/ml/mmoe.h serves them: sigmoid(z), exp(z) for watch time."""
    z = model.logits(x)
    kinds = task_kinds(model.cascade_config["tasks"])
    return torch.stack([torch.exp(z[:, t]) if k == "watch_time" else torch.sigmoid(z[:, t])
                        for t, k in enumerate(kinds)], dim=1)


def bench(model, candidates, iters, warmup, threads, seed):
    """p50/p99/mean milliseconds of the notes' forward on one batch; a table row."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(candidates, model.cascade_config["input_dim"], generator=gen)
    lat = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            out = model(x)
            out = torch.cat(out, dim=1)
            if i >= warmup:
                lat.append((time.perf_counter() - t0) * 1e6)
    lat.sort()
    mean = sum(lat) / len(lat)
    pick = lambda p: lat[min(len(lat) - 1, len(lat) * p // 100)]
    return (f"| torch {torch.__version__} | {threads} | {candidates} | {pick(50):.1f} | "
            f"{pick(99):.1f} | {mean:.1f} | {1e6 * candidates / mean:.0f} |")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write-model")
    w.add_argument("--out", required=True)
    w.add_argument("--input-dim", type=int, default=16)
    w.add_argument("--experts", type=int, default=4)
    w.add_argument("--expert-hidden", type=int, default=32)
    w.add_argument("--tower-hidden", type=int, default=16)
    w.add_argument("--tasks", default=DEFAULT_TASKS)
    w.add_argument("--seed", type=int, default=1)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--candidates", type=int, default=300)
    b.add_argument("--iters", type=int, default=2000)
    b.add_argument("--warmup", type=int, default=100)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.cmd == "write-model":
        save(build(a.input_dim, a.experts, a.expert_hidden, a.tower_hidden, a.tasks, a.seed), a.out)
    else:
        print(bench(load(a.model), a.candidates, a.iters, a.warmup, a.threads, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
