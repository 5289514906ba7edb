#!/usr/bin/env python3
"""PyTorch reference of towerps's two-tower model (issue 5), run by `bench/run.sh train`.

Reads a dataset prepared by `towerps prepare` directly (meta.txt, the *.tpr record files;
formats in docs/data.md) and a towerps model config (docs/model_config.md), trains the
same model with the same split, batch size, epochs and learning-rate schedule, evaluates
the test split the way `towerps evaluate` does (exact ranking over every item, excluding
each user's train + valid positives but never the held-out item) and prints one JSON
object on stdout.

Model (models/tower.h, models/loss.h): per tower x0 = [pooled sparse features in config
order, normalised dense area]; an MLP branch (Linear + activation per hidden width, then a
Linear back to D) summed with a DCN-v2 cross network x_{l+1} = x0 * (x_l W + b) + x_l;
projection; L2 normalisation. Loss: in-batch softmax over the B positives plus N uniformly
drawn catalog items, logits u.v / temperature - log q, duplicates of a row's positive masked.
Optimizers: dense Adam (torch.optim.Adam); embedding tables with sparse gradients
(F.embedding_bag(sparse=True)) updated by exact row-wise Adagrad (one accumulator per row,
a += mean(g^2), w -= lr g / (sqrt(a) + eps)), the towerps `rowwise_adagrad` rule, written
with torch sparse ops because torch.optim has no row-wise variant; a config table with
optimizer=adagrad uses torch.optim.Adagrad on the sparse gradient instead. Learning rates:
linear warmup then cosine to min_lr_ratio (worker/embedded_trainer.cc LrScaleOptions).

Timing: examples/s counts only the training steps; every batch (index lists, sampled
negatives) is assembled before the clock starts, a free data loader for the reference.
Only kind=softmax losses are supported (the bundled configs use it).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="directory made by towerps prepare")
    p.add_argument("--config", required=True, help="towerps model config file")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--blas_threads", type=int, default=1,
                   help="OpenBLAS threads (OPENBLAS_NUM_THREADS); torch calls BLAS from one thread")
    p.add_argument("--omp_spincount", default="1000",
                   help="GOMP_SPINCOUNT for torch's OpenMP threads unless the environment sets "
                        "it: libgomp's default busy-wait makes 2 threads on a loaded 2-core "
                        "machine 10-30x slower than 1")
    p.add_argument("--seed", type=int, default=None, help="default: the config's train seed")
    p.add_argument("--max_steps", type=int, default=0, help="stop after this many steps (0: all)")
    return p.parse_args()


ARGS = parse_args()
# OpenBLAS reads its thread count when it is loaded, i.e. when torch is imported.
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads)
os.environ.setdefault("GOMP_SPINCOUNT", ARGS.omp_spincount)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---------------------------------------------------------------------------- config


def parse_config(path):
    """The subset of docs/model_config.md the reference needs, with towerps's defaults."""
    c = {"tables": {}, "features": [], "dense": {"user": True, "item": True},
         "tower": {s: {"mlp": [256, 128], "cross": 4, "out": 128, "activation": "relu"}
                   for s in ("user", "item")},
         "loss": {"kind": "softmax", "temperature": 0.05, "logq": True, "extra_negatives": 0,
                  "mask_duplicates": True},
         "dense_optimizer": {"kind": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
                             "eps": 1e-8, "wd": 0.0, "clip": 0.0, "momentum": 0.0},
         "schedule": {"warmup": 100, "min_lr_ratio": 0.05},
         "train": {"batch": 256, "epochs": 1, "seed": 1}}
    onoff = {"on": True, "off": False}
    with open(path) as f:
        for raw in f:
            t = raw.split("#", 1)[0].split()
            if not t:
                continue
            d = t[0]
            kv = dict(x.split("=", 1) for x in t[1:] if "=" in x)
            if d == "table":
                init = kv.get("init", "uniform:0.01").split(":")
                c["tables"][t[1]] = {"dim": int(kv.get("dim", 64)), "init": init[0],
                                     "scale": float(init[1]) if len(init) > 1 else 0.0,
                                     "optimizer": kv.get("optimizer", "rowwise_adagrad"),
                                     "eps": float(kv.get("eps", 1e-8)),
                                     "init_acc": float(kv.get("init_acc", 0.0)),
                                     "lr": float(kv.get("lr", 0.05))}
            elif d == "feature":
                c["features"].append({"side": t[1], "name": t[2], "table": kv["table"],
                                      "pooling": kv.get("pooling", "mean")})
            elif d == "dense":
                c["dense"][t[1]] = onoff[t[2]]
            elif d == "tower":
                tw = c["tower"][t[1]]
                if "mlp" in kv:
                    tw["mlp"] = [int(x) for x in kv["mlp"].split(",") if x]
                tw["cross"] = int(kv.get("cross", tw["cross"]))
                tw["out"] = int(kv.get("out", tw["out"]))
                tw["activation"] = kv.get("activation", tw["activation"])
            elif d in ("loss", "dense_optimizer", "schedule", "train"):
                for k, v in kv.items():
                    old = c[d].get(k)
                    c[d][k] = (onoff[v] if isinstance(old, bool) else
                               v if isinstance(old, str) or old is None else type(old)(float(v)))
            else:
                sys.exit(f"{path}: unknown directive '{d}'")
    if c["loss"]["kind"] != "softmax":
        sys.exit("torch_two_tower.py: only loss kind=softmax is implemented")
    return c

# ---------------------------------------------------------------------------- dataset


def parse_meta(dataset):
    meta = {"user": {"sparse": [], "dense": []}, "item": {"sparse": [], "dense": []},
            "shards": {"train": [], "valid": [], "test": []}}
    with open(os.path.join(dataset, "meta.txt")) as f:
        for line in f:
            t = line.split()
            if not t:
                continue
            if t[0] == "sparse":
                meta[t[1]]["sparse"].append(t[2])
            elif t[0] == "dense":
                kv = dict(x.split("=", 1) for x in t[3:])
                meta[t[1]]["dense"].append(
                    (t[2], int(kv["dim"]), [float(x) for x in kv["mean"].split(",")],
                     [float(x) for x in kv["std"].split(",")]))
            elif t[0] == "shard":
                meta["shards"][t[1]].append(t[2])
    for side in ("user", "item"):
        meta[side]["dense_dim"] = sum(d[1] for d in meta[side]["dense"])
    return meta


def records(path):
    """Payloads of a record file (data/record_io.h); checksums are the C++ reader's job."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"TPSRECRD":
        sys.exit(f"{path}: not a towerps record file")
    (count,) = struct.unpack_from("<Q", buf, 16)
    pos = 32
    for _ in range(count):
        (length,) = struct.unpack_from("<I", buf, pos)
        yield buf, pos + 8, length
        pos += 8 + length


class SideColumns:
    """One side's features for n entities: per sparse slot a CSR of raw 64-bit keys."""

    def __init__(self, side_meta):
        self.num_sparse = len(side_meta["sparse"])
        self.dense_dim = side_meta["dense_dim"]
        self.lengths = [[] for _ in range(self.num_sparse)]
        self.keys = [[] for _ in range(self.num_sparse)]
        self.dense = []

    def append(self, buf, pos):
        """Decodes SideFeatures at buf[pos:] and returns the position after it."""
        counts = struct.unpack_from(f"<{self.num_sparse}I", buf, pos)
        pos += 4 * self.num_sparse
        for s, n in enumerate(counts):
            self.lengths[s].append(n)
            if n:
                self.keys[s].append(np.frombuffer(buf, "<u8", n, pos))
            pos += 8 * n
        if self.dense_dim:
            self.dense.append(np.frombuffer(buf, "<f4", self.dense_dim, pos))
        return pos + 4 * self.dense_dim

    def finish(self):
        self.offsets = [np.concatenate([[0], np.cumsum(l, dtype=np.int64)]) for l in self.lengths]
        self.keys = [np.concatenate(k) if k else np.zeros(0, np.uint64) for k in self.keys]
        n = len(self.lengths[0]) if self.num_sparse else len(self.dense)
        self.dense = (np.stack(self.dense).astype(np.float32) if self.dense_dim
                      else np.zeros((n, 0), np.float32))
        del self.lengths
        return self


def read_examples(dataset, meta, split):
    user, item, ids = SideColumns(meta["user"]), SideColumns(meta["item"]), []
    for shard in meta["shards"][split]:
        for buf, pos, _ in records(os.path.join(dataset, shard)):
            ids.append(struct.unpack_from("<QQqff", buf, pos))
            pos = user.append(buf, pos + 32)
            item.append(buf, pos)
    weights = np.array([w for *_, w in ids], np.float32)
    ids = np.array([(u, i) for u, i, *_ in ids], dtype=np.uint64).reshape(-1, 2)
    return {"user_id": ids[:, 0], "item_id": ids[:, 1], "weight": weights,
            "user": user.finish(), "item": item.finish()}


def read_items(dataset, meta):
    cols, keys, counts = SideColumns(meta["item"]), [], []
    for buf, pos, _ in records(os.path.join(dataset, "items.tpr")):
        key, count = struct.unpack_from("<QQ", buf, pos)
        pos += 16
        for _ in range(2):  # raw id, title
            (n,) = struct.unpack_from("<I", buf, pos)
            pos += 4 + n
        cols.append(buf, pos)
        keys.append(key)
        counts.append(count)
    return {"keys": np.array(keys, np.uint64), "counts": np.array(counts, np.float64),
            "cols": cols.finish()}

# ---------------------------------------------------------------------------- model


class Bound:
    """The config bound to the dataset: per side the (slot, table) of each feature."""

    def __init__(self, config, meta, splits, catalog):
        self.sides = {}
        for side in ("user", "item"):
            feats = []
            for f in config["features"]:
                if f["side"] != side:
                    continue
                if f["name"] not in meta[side]["sparse"]:
                    sys.exit(f"feature {f['name']} is not a {side} feature of the dataset")
                feats.append((meta[side]["sparse"].index(f["name"]), f["table"], f["pooling"]))
            dense = meta[side]["dense_dim"] if config["dense"][side] else 0
            mean = np.concatenate([d[2] for d in meta[side]["dense"]] or [np.zeros(0)])
            std = np.concatenate([d[3] for d in meta[side]["dense"]] or [np.zeros(0)])
            self.sides[side] = {"features": feats, "dense": dense,
                                "mean": mean.astype(np.float32),
                                "inv_std": (1.0 / np.maximum(std, 1e-6)).astype(np.float32)}
        # Every key a table can see, so each key gets one row (towerps creates rows lazily).
        seen = {t: [] for t in config["tables"]}
        for cols_by_side in [(s["user"], s["item"]) for s in splits] + [(None, catalog["cols"])]:
            for side, cols in zip(("user", "item"), cols_by_side):
                if cols is not None:
                    for slot, table, _ in self.sides[side]["features"]:
                        seen[table].append(cols.keys[slot])
        self.vocab = {t: np.unique(np.concatenate(k)) if k else np.zeros(0, np.uint64)
                      for t, k in seen.items()}

    def rows(self, table, keys):
        return np.searchsorted(self.vocab[table], keys).astype(np.int64)

    def input_dim(self, side, config):
        s = self.sides[side]
        return sum(config["tables"][t]["dim"] for _, t, _ in s["features"]) + s["dense"]


class Encoded:
    """One side's columns as table rows, ready to cut into batches (CSR per feature)."""

    def __init__(self, bound, side, cols):
        s = bound.sides[side]
        self.feats = [(cols.offsets[slot], bound.rows(table, cols.keys[slot]), table, pooling)
                      for slot, table, pooling in s["features"]]
        self.dense = ((cols.dense[:, :s["dense"]] - s["mean"]) * s["inv_std"]
                      if s["dense"] else None)

    def gather(self, idx):
        """Batch of entities idx: per feature (rows, offsets) and the dense matrix."""
        out = []
        for off, rows, table, pooling in self.feats:
            starts, ends = off[idx], off[idx + 1]
            lens = ends - starts
            boff = np.concatenate([[0], np.cumsum(lens)])
            pos = np.repeat(starts - boff[:-1], lens) + np.arange(boff[-1])
            out.append((rows[pos], boff[:-1]))
        return out, (self.dense[idx] if self.dense is not None else None)


def concat_batches(a, b):
    feats = []
    for (ra, oa), (rb, ob) in zip(a[0], b[0]):
        feats.append((np.concatenate([ra, rb]), np.concatenate([oa, ob + len(ra)])))
    dense = np.concatenate([a[1], b[1]]) if a[1] is not None else None
    return feats, dense


def to_torch(batch):
    feats = [(torch.from_numpy(r), torch.from_numpy(o)) for r, o in batch[0]]
    return feats, (torch.from_numpy(np.ascontiguousarray(batch[1])) if batch[1] is not None
                   else None)


class Tower(torch.nn.Module):
    def __init__(self, d, shape):
        super().__init__()
        act = {"relu": torch.nn.ReLU, "silu": torch.nn.SiLU, "identity": torch.nn.Identity}
        layers, prev = [], d
        for h in shape["mlp"]:
            layers += [torch.nn.Linear(prev, h), act[shape["activation"]]()]
            prev = h
        if shape["mlp"] and prev != d:
            layers.append(torch.nn.Linear(prev, d))
        self.mlp = torch.nn.Sequential(*layers) if layers else None
        bound = 0.5 * math.sqrt(6.0 / (2.0 * d))  # CrossLayer::Init, w_scale 0.5
        self.cross_w = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))
             for _ in range(shape["cross"])])
        self.cross_b = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.zeros(d)) for _ in range(shape["cross"])])
        self.proj = torch.nn.Linear(d, shape["out"])
        for m in self.modules():
            if isinstance(m, torch.nn.Linear):  # Linear::Init: Glorot-uniform W, zero b
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)

    def forward(self, x0):
        branches = []
        if self.mlp is not None:
            branches.append(self.mlp(x0))
        if len(self.cross_w):
            xl = x0
            for w, b in zip(self.cross_w, self.cross_b):
                xl = torch.addmm(b, xl, w) * x0 + xl
            branches.append(xl)
        s = sum(branches) if branches else x0
        y = self.proj(s)
        return y * torch.rsqrt((y * y).sum(1, keepdim=True) + 1e-12)


class TwoTower(torch.nn.Module):
    def __init__(self, config, bound):
        super().__init__()
        self.bound = bound
        self.tables = torch.nn.ParameterDict()
        for name, t in config["tables"].items():
            w = torch.zeros(len(bound.vocab[name]), t["dim"])
            if t["init"] == "uniform":
                w.uniform_(-t["scale"], t["scale"])
            elif t["init"] == "normal":
                w.normal_(0.0, t["scale"])
            self.tables[name] = torch.nn.Parameter(w)
        self.towers = torch.nn.ModuleDict(
            {s: Tower(bound.input_dim(s, config), config["tower"][s]) for s in ("user", "item")})

    def embed(self, side, batch):
        feats, dense = batch
        blocks = [F.embedding_bag(rows, self.tables[table], offsets, mode=pooling, sparse=True)
                  for (rows, offsets), (_, table, pooling)
                  in zip(feats, self.bound.sides[side]["features"])]
        if dense is not None:
            blocks.append(dense)
        return self.towers[side](torch.cat(blocks, 1) if len(blocks) > 1 else blocks[0])


class RowwiseAdagrad:
    """towerps rowwise_adagrad on a table's sparse gradient: a_r += mean(g_r^2),
    w_r -= lr g_r / (sqrt(a_r) + eps), for every row r the batch touched."""

    def __init__(self, param, lr, eps, init_acc):
        self.param, self.lr, self.eps = param, lr, eps
        self.acc = torch.full((param.shape[0],), init_acc)
        self.param_groups = [{"lr": lr}]

    def zero_grad(self, set_to_none=True):
        self.param.grad = None

    def step(self):
        g = self.param.grad.coalesce()
        rows, vals = g.indices()[0], g.values()
        acc = self.acc.index_add_(0, rows, vals.pow(2).mean(1)).index_select(0, rows)
        scale = self.param_groups[0]["lr"] / (acc.sqrt_() + self.eps)
        self.param.data.index_add_(0, rows, vals * scale.neg_().unsqueeze(1))


def make_optimizers(config, model):
    opts = []  # (optimizer, base lr)
    for name, t in config["tables"].items():
        p = model.tables[name]
        if t["optimizer"] == "rowwise_adagrad":
            opts.append((RowwiseAdagrad(p, t["lr"], t["eps"], t["init_acc"]), t["lr"]))
        elif t["optimizer"] == "adagrad":
            opts.append((torch.optim.Adagrad([p], lr=t["lr"], eps=t["eps"],
                                             initial_accumulator_value=t["init_acc"]), t["lr"]))
        elif t["optimizer"] == "sgd":
            opts.append((torch.optim.SGD([p], lr=t["lr"]), t["lr"]))
        else:
            sys.exit(f"table {name}: optimizer {t['optimizer']} is not in the reference")
    o = config["dense_optimizer"]
    dense = list(model.towers.parameters())
    if o["kind"] == "adam":
        opt = (torch.optim.AdamW(dense, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                 weight_decay=o["wd"]) if o["wd"] > 0 else
               torch.optim.Adam(dense, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"]))
    else:
        opt = torch.optim.SGD(dense, lr=o["lr"], momentum=o["momentum"], weight_decay=o["wd"])
    return opts + [(opt, o["lr"])], dense


def lr_scale(config, step, total):
    """models/lr_schedule.cc with worker/embedded_trainer.cc's LrScaleOptions."""
    warmup = min(int(config["schedule"]["warmup"]), total // 2)
    decay = max(1, total - warmup)
    floor = config["schedule"]["min_lr_ratio"]
    if step < warmup:
        return (step + 1) / warmup
    t = step - warmup
    if t >= decay:
        return floor
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t / decay))

# ---------------------------------------------------------------------------- train, evaluate


def train(config, model, train_set, catalog_enc, catalog, rng):
    b, epochs = int(config["train"]["batch"]), int(config["train"]["epochs"])
    n = len(train_set["item_id"])
    total = max(1, ((n + b - 1) // b) * epochs)
    if ARGS.max_steps:
        total = min(total, ARGS.max_steps)
    m = len(catalog["keys"])
    log_q_all = np.log((catalog["counts"] + 0.5) / (catalog["counts"].sum() + 0.5 * m + 1.0))
    key_rank = np.argsort(catalog["keys"])
    num_extra = int(config["loss"]["extra_negatives"]) if m else 0
    use_logq = config["loss"]["logq"]
    # Assemble every batch before the clock starts.
    batches = []
    for epoch in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, b):
            idx = order[s:s + b]
            if len(idx) < 2 or len(batches) >= total:
                continue
            user = train_set["user_enc"].gather(idx)
            item = train_set["item_enc"].gather(idx)
            ids = train_set["item_id"][idx]
            rows = key_rank[np.searchsorted(catalog["keys"], ids, sorter=key_rank)]
            found = catalog["keys"][np.minimum(rows, m - 1)] == ids
            log_q = np.where(found, log_q_all[rows], math.log(0.5 / (catalog["counts"].sum()
                                                                     + 0.5 * m + 1.0)))
            extra = rng.integers(0, m, num_extra) if num_extra else np.zeros(0, np.int64)
            if num_extra:
                item = concat_batches(item, catalog_enc.gather(extra))
                log_q = np.concatenate([log_q, np.full(num_extra, -math.log(m))])
            all_ids = np.concatenate([ids, catalog["keys"][extra]]).view(np.int64)
            batches.append((to_torch(user), to_torch(item), torch.from_numpy(all_ids),
                            torch.from_numpy(log_q.astype(np.float32) if use_logq
                                             else np.zeros(len(log_q), np.float32)),
                            torch.from_numpy(train_set["weight"][idx])))
    optimizers, dense_params = make_optimizers(config, model)
    inv_temp = 1.0 / config["loss"]["temperature"]
    mask_dups = config["loss"]["mask_duplicates"]
    clip = config["dense_optimizer"]["clip"]
    losses, examples = [], 0
    start = time.perf_counter()
    for step, (user, item, all_ids, log_q, weight) in enumerate(batches):
        scale = lr_scale(config, step, total)
        for opt, base in optimizers:
            for g in opt.param_groups:
                g["lr"] = base * scale
        u = model.embed("user", user)
        v = model.embed("item", item)
        bsz = u.shape[0]
        logits = torch.mm(u, v.t()) * inv_temp - log_q
        if mask_dups:
            mask = all_ids[:bsz].unsqueeze(1) == all_ids.unsqueeze(0)
            mask[:, :bsz].fill_diagonal_(False)
            logits = logits.masked_fill(mask, float("-inf"))
        loss = (weight * (torch.logsumexp(logits, 1) - logits.diagonal())).sum() / bsz
        for opt, _ in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(dense_params, clip)
        for opt, _ in optimizers:
            opt.step()
        losses.append(loss.item())
        examples += bsz
    seconds = time.perf_counter() - start
    tail = max(1, len(losses) // 10)
    return {"steps": len(batches), "examples": examples, "seconds": seconds,
            "final_loss": sum(losses[-tail:]) / tail}


def evaluate(model, sets, catalog_enc, catalog, ks=(10, 50, 100)):
    """index/evaluation.cc: one query per test example whose item is in the catalog."""
    m = len(catalog["keys"])
    row_of = {int(k): r for r, k in enumerate(catalog["keys"])}
    seen = {}
    for split in ("train", "valid"):
        for u, i in zip(sets[split]["user_id"].tolist(), sets[split]["item_id"].tolist()):
            if i in row_of:
                seen.setdefault(u, []).append(row_of[i])
    test = sets["test"]
    q_idx = [q for q, i in enumerate(test["item_id"].tolist()) if i in row_of]
    target = np.array([row_of[int(test["item_id"][q])] for q in q_idx], np.int64)
    kmax = min(max(ks), m)
    with torch.no_grad():
        blocks = [np.arange(s, min(m, s + 2048)) for s in range(0, m, 2048)]
        items = torch.cat([model.embed("item", to_torch(catalog_enc.gather(b))) for b in blocks])
        ranks = []  # 0-based rank of the held-out item within top kmax, or kmax
        pop_ranks = []
        counts = torch.from_numpy(catalog["counts"]).float()
        for s in range(0, len(q_idx), 1024):
            qs = np.array(q_idx[s:s + 1024])
            users = model.embed("user", to_torch(test["user_enc"].gather(qs)))
            scores = users @ items.t()
            pop = counts.expand(len(qs), m).clone()
            r_list, c_list = [], []
            for j, q in enumerate(qs):
                excl = [c for c in seen.get(int(test["user_id"][q]), []) if c != target[s + j]]
                r_list += [j] * len(excl)
                c_list += excl
            for mat in (scores, pop):
                mat[r_list, c_list] = float("-inf")
            tgt = torch.from_numpy(target[s:s + len(qs)]).unsqueeze(1)
            for mat, out in ((scores, ranks), (pop, pop_ranks)):
                top = torch.topk(mat, kmax, dim=1).indices
                hit = top == tgt
                out.append(torch.where(hit.any(1), hit.float().argmax(1),
                                       torch.full((len(qs),), kmax)))
    result = {}
    for prefix, r in (("", torch.cat(ranks)), ("popularity_", torch.cat(pop_ranks))):
        for k in ks:
            result[f"{prefix}recall@{k}"] = (r < k).float().mean().item()
        result[f"{prefix}ndcg@10"] = torch.where(
            r < 10, 1.0 / torch.log2(r.double() + 2), torch.zeros(())).mean().item()
    result["queries"] = len(q_idx)
    return result


def blas_in_use():
    """The BLAS/LAPACK shared objects this process has mapped (after a matmul)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in os.path.basename(path).lower() or "lapack" in path.lower():
                libs.add(os.path.realpath(path))
    return sorted(libs)


def main():
    torch.set_num_threads(ARGS.threads)
    config = parse_config(ARGS.config)
    seed = ARGS.seed if ARGS.seed is not None else int(config["train"]["seed"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    meta = parse_meta(ARGS.dataset)
    t0 = time.perf_counter()
    sets = {s: read_examples(ARGS.dataset, meta, s) for s in ("train", "valid", "test")}
    catalog = read_items(ARGS.dataset, meta)
    bound = Bound(config, meta, [sets["train"], sets["valid"], sets["test"]], catalog)
    for s in ("train", "test"):
        sets[s]["user_enc"] = Encoded(bound, "user", sets[s]["user"])
        sets[s]["item_enc"] = Encoded(bound, "item", sets[s]["item"])
    catalog_enc = Encoded(bound, "item", catalog["cols"])
    load_seconds = time.perf_counter() - t0
    model = TwoTower(config, bound)
    blas = blas_in_use()
    print(f"torch_two_tower: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"BLAS {', '.join(blas) or 'none mapped'}", file=sys.stderr)
    t1 = time.perf_counter()
    stats = train(config, model, sets["train"], catalog_enc, catalog, rng)
    prep_seconds = time.perf_counter() - t1 - stats["seconds"]
    print(f"trained {stats['steps']} steps ({stats['examples']} examples) in "
          f"{stats['seconds']:.1f} s, {stats['examples'] / stats['seconds']:.0f} examples/s, "
          f"final loss {stats['final_loss']:.4f}", file=sys.stderr)
    t2 = time.perf_counter()
    metrics = evaluate(model, sets, catalog_enc, catalog)
    out = {"examples_per_s": stats["examples"] / stats["seconds"], **stats, **metrics,
           "load_seconds": load_seconds, "batch_assembly_seconds": prep_seconds,
           "eval_seconds": time.perf_counter() - t2, "threads": torch.get_num_threads(),
           "blas_threads": ARGS.blas_threads, "blas": blas, "torch": torch.__version__}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
