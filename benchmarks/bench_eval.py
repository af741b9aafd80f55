"""Market-1501-scale evaluation benchmark: the per-query loop vs the vectorised `evaluate`, and re-ranking.

Builds 3,368 queries x 15,913 gallery images (751 identities + distractors, 6 cameras, fixed seed) with 512-d
embeddings clustered by identity, then prints the time and peak memory of
- `evaluate_loop` (torchreid-style, one query at a time) and `evaluate` (vectorised, blocks of queries),
  checking they give the same numbers;
- `re_rank` (k-reciprocal, k1=20, k2=6, lambda=0.3) on the full query+gallery set.
Note: tracemalloc slows the Python loop (many small allocations), so its time is an upper bound.
Peak memory: tracemalloc's peak of NumPy allocations inside each call (the distance matrix itself is an input),
and the process's max RSS at the end.

Usage: python benchmarks/bench_eval.py [--n-query 3368] [--n-gallery 15913] [--no-loop] [--no-rerank]
"""
import argparse, os, resource, sys, time, tracemalloc
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np, torch
from reid_nb.eval import distance_matrix, evaluate, evaluate_loop, re_rank

def market_like(nq, ng, n_ids=751, n_cams=6, dim=512, noise=2.3, seed=0):
    "Embeddings, pids and camids shaped like Market-1501's test split (gallery: ~20% distractors, pid 0)."
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids + 1, dim)).astype(np.float32)
    q_pids = rng.integers(1, n_ids + 1, nq)
    g_pids = np.where(rng.random(ng) < 0.2, 0, rng.integers(1, n_ids + 1, ng))
    q_cam, g_cam = rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)
    qf = centres[q_pids] + noise * rng.normal(size=(nq, dim)).astype(np.float32)
    gf = np.where((g_pids == 0)[:, None], rng.normal(size=(ng, dim)).astype(np.float32) * 1.5, centres[g_pids] + noise * rng.normal(size=(ng, dim)).astype(np.float32))
    norm = lambda x: torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(x, np.float32)), dim=1)  # like ReIDNet's output
    return norm(qf), norm(gf), q_pids, g_pids, q_cam, g_cam

def timed(f, *a, **kw):
    tracemalloc.start(); tracemalloc.reset_peak()
    t0 = time.perf_counter(); r = f(*a, **kw); dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return r, dt, peak

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n-query', type=int, default=3368); p.add_argument('--n-gallery', type=int, default=15913)
    p.add_argument('--no-loop', action='store_true'); p.add_argument('--no-rerank', action='store_true')
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    qf, gf, qp, gp, qc, gc = market_like(a.n_query, a.n_gallery)
    t0 = time.perf_counter(); distmat = distance_matrix(qf, gf); t_dist = time.perf_counter() - t0
    print(f"{a.n_query} queries x {a.n_gallery} gallery, 751 ids, 6 cameras; distance_matrix {t_dist:.2f}s ({distmat.nbytes/2**20:.0f} MiB)")
    vec, t_vec, m_vec = timed(evaluate, distmat, qp, gp, qc, gc)
    print(f"evaluate (vectorised): {t_vec:7.2f}s  peak {m_vec/2**20:7.0f} MiB   rank-1 {vec['rank1']:.4f}  mAP {vec['mAP']:.4f}  "
          f"mINP {vec['mINP']:.4f}  valid {vec['num_valid_query']}/{vec['num_query']}")
    if not a.no_loop:
        loop, t_loop, m_loop = timed(evaluate_loop, distmat, qp, gp, qc, gc)
        same = (np.allclose(loop['cmc'], vec['cmc'], atol=1e-6) and abs(loop['mAP'] - vec['mAP']) < 1e-9
                and abs(loop['mINP'] - vec['mINP']) < 1e-9 and loop['num_valid_query'] == vec['num_valid_query'])
        print(f"evaluate_loop (per query): {t_loop:7.2f}s  peak {m_loop/2**20:7.0f} MiB   same numbers: {same}")
        print(f"speed-up: {t_loop/t_vec:.1f}x, memory ratio {m_loop/max(m_vec,1):.1f}x")
    if not a.no_rerank:
        t0 = time.perf_counter()
        qq, gg = distance_matrix(qf, qf, 'euclidean'), distance_matrix(gf, gf, 'euclidean')
        qg = distance_matrix(qf, gf, 'euclidean')
        t_d = time.perf_counter() - t0
        rr, t_rr, m_rr = timed(re_rank, qg, qq, gg)
        r2 = evaluate(rr, qp, gp, qc, gc)
        print(f"re_rank (k1=20, k2=6, λ=0.3) on {a.n_query + a.n_gallery} images: {t_rr:.2f}s  peak {m_rr/2**20:.0f} MiB "
              f"(+ {t_d:.2f}s for the 3 distance matrices, g_g {gg.nbytes/2**20:.0f} MiB)   "
              f"rank-1 {vec['rank1']:.4f} -> {r2['rank1']:.4f}, mAP {vec['mAP']:.4f} -> {r2['mAP']:.4f}")
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20:.2f} GiB")

if __name__ == '__main__': main()
