"""Gallery search speed and memory: exact torch (chunked) vs faiss, on random 512-d embeddings.

    python benchmarks/bench_search.py                      # 10k, 100k, 1M gallery embeddings
    python benchmarks/bench_search.py --sizes 10000 100000 --queries 200

For each gallery size N it prints, per method, queries/s for a batch of `--queries` queries, queries/s one
query at a time, the index build time, the extra peak memory (resident set, above what the gallery itself
takes) and recall@k against exact search. Gallery and queries are random unit vectors (fixed seed):
the worst case for approximate indexes, since they have no cluster structure to exploit. Real re-ID
embeddings cluster by person, so the IVF index is also measured on clustered data (`--clustered`,
on by default): N/20 "persons" of 20 embeddings each, within-person cosine similarity about 0.7, and
queries that are new embeddings of gallery persons.
Memory: the process's peak resident set (VmHWM) is reset before each step and read after it (Linux).
"""
import os, sys, time, argparse, gc
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
import numpy as np
import torch
from reid_nb.search import Gallery, topk_search, recall_at_k


def _status(key):
    "A /proc/self/status field in MiB (Linux), else nan"
    try:
        for line in open('/proc/self/status'):
            if line.startswith(key + ':'): return int(line.split()[1]) / 1024
    except OSError: pass
    return float('nan')


class PeakMemory:
    "Extra peak resident memory (MiB) of the block, over the resident set at its start"
    def __enter__(self):
        gc.collect()
        try:
            with open('/proc/self/clear_refs', 'w') as f: f.write('5')   # reset VmHWM to the current VmRSS
        except OSError: pass
        self.start = _status('VmRSS')
        return self
    def __exit__(self, *exc): self.extra = _status('VmHWM') - self.start


def random_unit(n, dim, seed, chunk=100_000):
    "(n, dim) float32 random unit vectors, generated in chunks (no float64 / double-size temporaries)"
    gen, out = torch.Generator().manual_seed(seed), torch.empty(n, dim)
    for s in range(0, n, chunk):
        x = torch.randn(min(chunk, n - s), dim, generator=gen)
        out[s:s+chunk] = x / x.norm(dim=1, keepdim=True)
    return out


def clustered_unit(n, dim, seed, per_id=20, sigma=0.6, n_queries=100):
    "(gallery (n, dim), queries (n_queries, dim)): unit vectors around n // per_id random centres"
    gen = torch.Generator().manual_seed(seed)
    centres = random_unit(max(1, n // per_id), dim, seed + 7)
    def around(ids):
        x = centres[ids] + sigma / dim ** 0.5 * torch.randn(len(ids), dim, generator=gen)
        return x / x.norm(dim=1, keepdim=True)
    g = torch.empty(n, dim)
    for s in range(0, n, 100_000): g[s:s+100_000] = around(torch.arange(s, min(n, s + 100_000)) // per_id % len(centres))
    return g, around(torch.randint(0, len(centres), (n_queries,), generator=gen))


def timed_search(gallery, q, k, backend, singles):
    "→ (batched queries/s, single-query queries/s, indices of the batched search, extra MiB)"
    gallery.search(q[:1], k=k, backend=backend)                       # warm-up (and lazy faiss flat index)
    with PeakMemory() as mem:
        t = time.perf_counter(); res = gallery.search(q, k=k, backend=backend); t = time.perf_counter() - t
    t1 = time.perf_counter()
    for i in range(singles): gallery.search(q[i:i+1], k=k, backend=backend)
    t1 = time.perf_counter() - t1
    return len(q) / t, singles / t1, res.indices, mem.extra


def bench_ivf(gallery, q, exact, nlist, a, row, label):
    "Build an IVF index of `nlist` cells, then one `row` per nprobe: speed, memory and recall against `exact`."
    with PeakMemory() as mem:
        t = time.perf_counter(); index = gallery.build_index('ivf', nlist=nlist); build = time.perf_counter() - t
    for nprobe in a.nprobe:
        index.nprobe = min(nprobe, nlist)
        qps, qps1, idx, smem = timed_search(gallery, q, a.k, 'faiss', a.singles)
        row(f'{label} nprobe {index.nprobe}', build, qps, qps1, max(mem.extra, smem), recall_at_k(idx, exact))
    gallery.index = None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[10_000, 100_000, 1_000_000])
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--queries', type=int, default=100, help='queries per batched search')
    p.add_argument('--singles', type=int, default=10, help='queries searched one at a time')
    p.add_argument('--k', type=int, default=10)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--nprobe', type=int, nargs='+', default=[8, 32, 128], help='IVF cells visited per query')
    p.add_argument('--no-faiss', action='store_true', help='torch only')
    p.add_argument('--no-clustered', action='store_true', help='skip the IVF recall on clustered data')
    a = p.parse_args()
    try:
        import faiss
        have_faiss = not a.no_faiss
    except ImportError:
        have_faiss = False
        print('faiss not installed: torch only (pip install "reid_nb[faiss]")')
    print(f'torch {torch.__version__} ({torch.get_num_threads()} threads)'
          + (f', faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)' if have_faiss else '')
          + f'; {a.dim}-d float32, cosine, k={a.k}, {a.queries} queries batched + {a.singles} one at a time, seed {a.seed}')
    print(f"{'N':>9} {'method':<22} {'build s':>8} {'q/s batch':>10} {'q/s single':>10} {'extra MiB':>10} {'recall@k':>9}")
    t_all = time.perf_counter()
    for n in a.sizes:
        feats = random_unit(n, a.dim, a.seed)
        q = random_unit(a.queries, a.dim, a.seed + 1)
        g = Gallery.from_embeddings(feats)
        del feats
        row = lambda meth, build, qps, qps1, mem, rec: print(
            f'{n:>9,} {meth:<22} {build:>8.2f} {qps:>10.1f} {qps1:>10.1f} {mem:>10.0f} {rec:>9.3f}', flush=True)
        qps, qps1, exact, mem = timed_search(g, q, a.k, 'torch', a.singles)
        row('torch exact (chunked)', 0, qps, qps1, mem, 1.0)
        if have_faiss:
            with PeakMemory() as mem:
                t = time.perf_counter(); g.build_index('flat'); build = time.perf_counter() - t
            qps, qps1, idx, smem = timed_search(g, q, a.k, 'faiss', a.singles)
            row('faiss flat (exact)', build, qps, qps1, max(mem.extra, smem), recall_at_k(idx, exact))
            g.index = None; gc.collect()
            nlist = max(1, int(n ** 0.5))
            bench_ivf(g, q, exact, nlist, a, row, f'faiss ivf{nlist}')
        del g; gc.collect()
        if have_faiss and not a.no_clustered:
            feats, q = clustered_unit(n, a.dim, a.seed, n_queries=a.queries)
            g = Gallery.from_embeddings(feats); del feats
            exact = g.search(q, k=a.k).indices
            bench_ivf(g, q, exact, nlist, a, row, 'clustered ivf')
            del g; gc.collect()
    print(f'total {time.perf_counter() - t_all:.0f} s; gallery itself: {a.dim * 4 / 2**20 * 1e6:.0f} MiB per million')


if __name__ == '__main__': main()
