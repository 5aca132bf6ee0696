"""The ReRank service serves the published two-tower item vectors to its
similarity terms (issue 11): a real stack, a generated world with a trained
two-tower model, and ReRank calls whose candidates carry no embedding.

From the published item index (read here with NumPy from the safetensors
file) the test picks an anchor item A, the item B most similar to it and an
item C least similar to it. Ranked A, B, C (rank scores 1, 0.5, 0) with
distinct categories and authors, DPP at a θ computed from the kernel's
formula must take C second: B's relevance cannot pay for its similarity to
A, which only the loaded vectors can show. With the embedding weight at 0 the same request keeps the ranked
order, and so does an experiment with item vectors unknown to the index."""
import json
import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402


def read_index(path):
    """ids (uint64) and vectors (float32, n × d) of a cascade_vindex file."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]

    def tensor(name):
        t = header[name]
        lo, hi = t["data_offsets"]
        return np.frombuffer(data[lo:hi], dtype=np.float32).reshape(t["shape"])

    ids = np.ascontiguousarray(tensor("ids")).view(np.uint64).reshape(-1)
    return ids, tensor("vectors")


class ReRankVectorsTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-rrv-"
    CONFIG = {"experiments": None}
    # reload_ms 0: the first request after training loads the index.
    STACK = {"sets": ["rerank.item_vectors.reload_ms=0"]}

    @classmethod
    def set_up_class(cls):
        cls.rerank = cls.channel("rerank").unary_unary(
            "/cascade.v1.ReRank/ReRank",
            request_serializer=cls.pb.rerank.ReRankRequest.SerializeToString,
            response_deserializer=cls.pb.rerank.ReRankResponse.FromString)

    def call(self, ids, params):
        req = self.pb.rerank.ReRankRequest(count=2)
        req.user.user_id = "rrv-user"
        for k, item in enumerate(ids):
            c = req.candidates.add(item_id=int(item), rank_score=1.0 - 0.5 * k)
            c.attrs.category = 1 + k
            c.attrs.author_id = 11 + k
        layer = req.experiments.layers.add(layer="rerank", experiment="rrv")
        for key, value in params.items():
            layer.params[key] = value
        resp = self.rerank(req, timeout=30)
        return [c.item_id for c in resp.candidates]

    def test_published_vectors_change_the_selection(self):
        with open(os.path.join(self.stack.model_dir, "two-tower.latest")) as f:
            version = f.read().strip()
        ids, vecs = read_index(os.path.join(self.stack.model_dir,
                                            version + ".items.safetensors"))
        unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        sims = (unit @ unit.T).astype(np.float64)
        np.fill_diagonal(sims, -2)
        near = sims.argmax(axis=1)
        np.fill_diagonal(sims, 2)
        far = sims.argmin(axis=1)
        rows = np.arange(len(ids))
        a = int(np.argmax(sims[rows, near] - sims[rows, far]))
        b, c = int(near[a]), int(far[a])
        a_id, b_id, c_id = int(ids[a]), int(ids[b]), int(ids[c])
        # The kernel of docs/stages.md with weights 0.7 / 0.3 / 100 and no
        # shared category or author: S_ij = 100·cos / 101. C beats B second
        # iff θ·0.5 < (1−θ)·D, D = log(1 − S_AC²) − log(1 − S_AB²); take θ at
        # half that threshold.
        s_ab, s_ac = 100 * sims[a, b] / 101, 100 * sims[a, c] / 101
        d = np.log(1 - s_ac ** 2) - np.log(1 - s_ab ** 2)
        self.assertGreater(d, 0.05, "the trained vectors are too uniform to test with")
        theta = 0.5 * d / (0.5 + d)
        dpp = {"rerank.method": "dpp", "rerank.dpp.theta": "%.4f" % theta,
               "rerank.sim.embedding": "100"}
        self.assertEqual(self.call([a_id, b_id, c_id], dpp), [a_id, c_id])
        self.assertIn("item vectors: serving " + version, self.stack.log_tail("rerank", 200))
        # The same request without the embedding term: S = I, relevance order.
        self.assertEqual(self.call([a_id, b_id, c_id], dict(dpp, **{"rerank.sim.embedding": "0"})),
                         [a_id, b_id])
        # MMR at λ = 0.5 sees the same similarity: B scores 0.25 − 50·cos_AB,
        # C −50·cos_AC.
        self.assertGreater(sims[a, b] - sims[a, c], 0.01)
        mmr = {"rerank.method": "mmr", "rerank.lambda": "0.5", "rerank.sim.embedding": "100"}
        self.assertEqual(self.call([a_id, b_id, c_id], mmr), [a_id, c_id])
        # Ids the index does not hold have no embedding: relevance order.
        unknown = [10 ** 12 + 1, 10 ** 12 + 2, 10 ** 12 + 3]
        self.assertEqual(self.call(unknown, dpp), unknown[:2])


if __name__ == "__main__":
    unittest.main(verbosity=2)
