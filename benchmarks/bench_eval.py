"""Evaluation benchmark: `evaluate` (rank counting) against a full argsort, the per-query loop and torchreid;
`evaluate_features` at MSMT17 scale; `re_rank` against the previous implementation and torchreid's `re_ranking`.

Synthetic sets shaped like the real ones (fixed seeds): Market-1501 (3,368 queries x 15,913 gallery, 751 identities,
~20% distractors, 6 cameras) and MSMT17 (11,659 x 82,161, 3,060 identities, 15 cameras), 512-d L2-normalised
embeddings clustered by identity. Printed, all measured in this run:
- the yardstick: `np.argsort(distmat, axis=1)` on the Market matrix, then `evaluate` on the same matrix and
  `evaluate_features` from the embeddings, in the same process (best of --repeat runs each), the ratios, and
  `evaluate`'s peak extra memory (tracemalloc: NumPy allocations inside the call; the matrix itself is an input);
  for two embeddings side by side: a trained-like one (true matches near the top) and a random one (a fresh model),
  ending with one table of both;
- optionally `evaluate_loop` (the per-query reference) and torchreid's python `eval_market1501` (when torchreid is
  installed, benchmark-only), with whether they give the same numbers;
- `evaluate_features` on the MSMT17-size set (a fresh process: time, peak RSS above the RSS once the embeddings exist,
  equality with `evaluate` on the first queries);
- `re_rank` (k1=20, k2=6, lambda=0.3) on all 19,281 Market images: the previous implementation (kept below, only here)
  and the current one, each in a fresh process (time; peak RSS, and above the RSS once the 3 input matrices are loaded),
  the max |difference|; torchreid's `re_ranking` (dense, loops) on --tr-rerank images for time and agreement;
- `re_rank_features` (the same re-ranking from the 19,281 x 512 embeddings, no N x N array) in a fresh process that
  holds only the embeddings: time, total peak RSS (VmHWM: interpreter + reid_nb.metrics + embeddings + the call), the
  max |difference| from the dense `re_rank`; and, for the same end-to-end task, the dense path from the embeddings
  (3 `distance_matrix` calls, then `re_rank`) in another fresh process.

Usage: python benchmarks/bench_eval.py [--n-query 3368] [--n-gallery 15913] [--loop] [--no-torchreid]
       [--features-size 11659 82161 | --no-features] [--no-rerank] [--tr-rerank N_QUERY N_GALLERY]
       [--rerank-only]  (only the re-ranking section: previous, dense and features-based re_rank)
Peak RSS in the fresh processes is the kernel's VmHWM, reset (clear_refs) once the inputs exist; "above the inputs"
subtracts the RSS at that point (the interpreter with torch imported, plus the inputs).
"""
import argparse, importlib.util, os, resource, subprocess, sys, tempfile, time, tracemalloc, warnings
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np, scipy.sparse as sp, torch
from reid_nb.metrics import (distance_matrix, evaluate, evaluate_features, evaluate_loop, re_rank, re_rank_features,
                             _joint_at, _expand_ranges)

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

def best_time(f, repeat, *a, **kw):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); r = f(*a, **kw); ts.append(time.perf_counter() - t0); del r
    return min(ts)

rss_now = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**30

def reset_peak_rss() -> bool:
    "Restart the kernel's peak-RSS count (VmHWM) here, so set-up temporaries don't count (Linux >= 4.0)."
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False

def max_rss() -> float:
    "Peak RSS in GiB since the last reset_peak_rss (VmHWM), else since the start (ru_maxrss)."
    try: return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 2**20
    except (OSError, StopIteration): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def load_torchreid():
    "torchreid's rank.py and rerank.py, loaded by path (the package __init__ pulls in training dependencies)."
    spec = importlib.util.find_spec('torchreid')
    if spec is None: return None
    root, mods = spec.submodule_search_locations[0], {}
    for name, rels in (('rank', ('reid/metrics/rank.py', 'metrics/rank.py')), ('rerank', ('reid/utils/rerank.py', 'utils/rerank.py'))):
        path = next((os.path.join(root, r) for r in rels if os.path.exists(os.path.join(root, r))), None)
        if path is None: return None
        s = importlib.util.spec_from_file_location(f'_torchreid_{name}', path); m = importlib.util.module_from_spec(s)
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); s.loader.exec_module(m)
        mods[name] = m
    return mods

# ---- the previous re_rank (before issue #14), kept here only to measure against ----
def _joint_rows_old(q_g, q_q, g_g, a, b):
    "Rows a:b of the transposed joint matrix [[q_q, q_g], [q_g.T, g_g]].T (the published code's orientation)."
    nq, ng = q_g.shape
    out = np.empty((b - a, nq + ng), np.float32)
    qa, qb, ga, gb = min(a, nq), min(b, nq), max(a, nq) - nq, max(b, nq) - nq
    if qb > qa: out[:qb-qa, :nq], out[:qb-qa, nq:] = q_q[:, qa:qb].T, q_g[qa:qb]
    if gb > ga: out[qb-qa:, :nq], out[qb-qa:, nq:] = q_g[:, ga:gb].T, g_g[:, ga:gb].T
    return out

def re_rank_old(q_g, q_q, g_g,            # (nq, ng), (nq, nq), (ng, ng) distances (e.g. `distance_matrix(..., 'euclidean')`)
            k1:int=20, k2:int=6,       # k-reciprocal neighbourhood size; query-expansion size (1: none)
            lambda_value:float=0.3,    # weight of the original distance in the result
            chunk_size:int=1024,       # rows per block when finding neighbours
            max_pairs:int=2**24,       # bound on the (query, gallery, dimension) triples summed at once
           ) -> np.ndarray:
    "k-reciprocal re-ranking (Zhong et al. CVPR 2017): re-ranked `(nq, ng)` float32 query-gallery distances."
    q_g, q_q, g_g = (np.asarray(x, dtype=np.float32) for x in (q_g, q_q, g_g))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(f"re_rank: q_g {q_g.shape} needs q_q ({nq}, {nq}) and g_g ({ng}, {ng}), got {q_q.shape} and {g_g.shape}")
    N, K, kh = nq + ng, max(k1 + 1, k2), int(np.around(k1 / 2.)) + 1
    if K > N: raise ValueError(f"re_rank: k1={k1} needs more than {k1} images, got {N}")
    rowmax, knn = np.empty(N, np.float32), np.empty((N, K), np.int64)
    for a in range(0, N, chunk_size):                              # 1. squared, row-normalised; top K neighbours
        r = np.square(_joint_rows_old(q_g, q_q, g_g, a, min(a + chunk_size, N)))
        rowmax[a:a+len(r)] = r.max(1)
        r /= rowmax[a:a+len(r), None]
        knn[a:a+len(r)] = torch.topk(torch.from_numpy(r), K, dim=1, largest=False, sorted=True).indices.numpy()
    ar = np.arange(N)
    def reciprocal(k):                                             # k-reciprocal sets, -1 where not reciprocal
        f = knn[:, :k]
        return np.where((f[f] == ar[:, None, None]).any(-1), f, -1)
    R, H = reciprocal(k1 + 1), reciprocal(kh)
    H_size = (H >= 0).sum(1)
    rows, cols, vals = [], [], []
    for a in range(0, N, 2048):                                    # 2. expansion, 3. weights
        Ri = R[a:a+2048]
        Hc = np.where((Ri[..., None] >= 0) & (H[Ri] >= 0), H[Ri], -2)             # R(c, k1/2) of each candidate c
        inter = (Hc[..., None] == Ri[:, None, None, :]).any(-1).sum(-1)            # |R(c, k1/2) ∩ R(i, k1)|
        accept = (Ri >= 0) & (inter > 2. / 3 * H_size[Ri])
        E = np.concatenate([Ri, np.where(accept[..., None], Hc, -1).reshape(len(Ri), -1)], 1)
        E.sort(1); E[:, 1:][E[:, 1:] == E[:, :-1]] = -1                            # unique per row
        r, c = np.nonzero(E >= 0)
        i, j = r + a, E[r, c]
        w = np.exp(-(np.square(_joint_at(q_g, q_q, g_g, i, j)) / rowmax[i]))
        s = np.bincount(r, w, minlength=len(Ri)).astype(np.float32)
        rows.append(i); cols.append(j); vals.append((w / s[r]).astype(np.float32))
    V = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N, N), dtype=np.float32)
    if k2 != 1:                                                    # query expansion: mean of the k2 nearest rows
        A = sp.csr_matrix((np.ones(N * k2, np.float32), (np.repeat(ar, k2), knn[:, :k2].ravel())), shape=(N, N))
        V = sp.csr_matrix(A @ V / np.float32(k2), dtype=np.float32)
    Vq, Vg = V[:nq].tocsr(), V[nq:].tocsc()                        # 4. Σ min(V_q, V_g) through the gallery's columns
    q_nnz, g_colnnz = np.diff(Vq.indptr), np.diff(Vg.indptr)
    pairs = np.cumsum(np.bincount(np.repeat(np.arange(nq), q_nnz), g_colnnz[Vq.indices], minlength=nq))
    jac, a = np.empty((nq, ng), np.float32), 0
    while a < nq:
        b = max(a + 1, int(np.searchsorted(pairs, (pairs[a-1] if a else 0) + max_pairs, side='right')))
        lo, hi = Vq.indptr[a], Vq.indptr[b]
        dims = Vq.indices[lo:hi]
        offs, owner = _expand_ranges(Vg.indptr[dims], g_colnnz[dims])
        qi = np.repeat(np.arange(b - a), q_nnz[a:b])[owner]
        m = np.minimum(Vq.data[lo:hi][owner], Vg.data[offs])
        tmin = np.bincount(qi * ng + Vg.indices[offs], m, minlength=(b - a) * ng).reshape(b - a, ng).astype(np.float32)
        jac[a:b] = 1 - tmin / (2. - tmin)
        a = b
    return jac * (1 - lambda_value) + np.square(q_g) / rowmax[:nq, None] * lambda_value


def rerank_worker(d, which, out):
    "Fresh process: load the 3 matrices, run one re-ranking, report time and RSS (GiB) and save the result."
    qg, qq, gg = (np.load(os.path.join(d, f'{n}.npy')) for n in ('qg', 'qq', 'gg'))
    f = dict(new=re_rank, old=re_rank_old)[which] if which in ('new', 'old') else load_torchreid()['rerank'].re_ranking
    base = rss_now(); reset_peak_rss()
    t0 = time.perf_counter(); r = f(qg, qq, gg, k1=20, k2=6, lambda_value=0.3); dt = time.perf_counter() - t0
    np.save(out, r.astype(np.float32))
    print(f"RESULT {dt} {max_rss()} {base}")

def rerank_features_worker(d, which, out):
    "Fresh process holding only the embeddings: re_rank_features, or the dense path from them; time and RSS (GiB)."
    qf, gf = np.load(os.path.join(d, 'qf.npy')), np.load(os.path.join(d, 'gf.npy'))
    base = rss_now()
    reset_peak_rss()
    t0 = time.perf_counter()
    if which == 'features': r = re_rank_features(qf, gf, 'euclidean', k1=20, k2=6, lambda_value=0.3)
    else:
        mats = [distance_matrix(x, y, 'euclidean') for x, y in ((qf, gf), (qf, qf), (gf, gf))]
        r = re_rank(*mats, k1=20, k2=6, lambda_value=0.3)
    dt = time.perf_counter() - t0
    peak = max_rss()
    np.save(out, r)
    print(f"RESULT {dt} {peak} {base}")

def features_worker(nq, ng):
    "Fresh process: evaluate_features on an MSMT17-size synthetic set; time, peak RSS, and a check against evaluate."
    qf, gf, qp, gp, qc, gc = market_like(nq, ng, n_ids=3060, n_cams=15, seed=1)
    base = rss_now(); reset_peak_rss()
    t0 = time.perf_counter(); r = evaluate_features(qf, gf, qp, gp, qc, gc); dt = time.perf_counter() - t0
    peak = max_rss()
    k = min(nq, 2048)                                              # the first queries, through a full matrix
    r2 = evaluate(distance_matrix(qf[:k], gf, chunk_size=256), qp[:k], gp, qc[:k], gc)
    same = np.array_equal(np.nan_to_num(r['AP'][:k], nan=-1), np.nan_to_num(r2['AP'], nan=-1))
    print(f"RESULT {dt} {peak} {base} {r['rank1']} {r['mAP']} {r['mINP']} {r['num_valid_query']} {same}")

def run_worker(*args):
    p = subprocess.run([sys.executable, __file__, '--worker', *map(str, args)], capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    if p.returncode or not line: raise RuntimeError(f"worker {args} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
    return line[-1].split()[1:]

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n-query', type=int, default=3368); p.add_argument('--n-gallery', type=int, default=15913)
    p.add_argument('--repeat', type=int, default=3, help='timings are the best of this many runs')
    p.add_argument('--loop', action='store_true', help='also time evaluate_loop (the per-query reference)')
    p.add_argument('--no-torchreid', action='store_true')
    p.add_argument('--features-size', type=int, nargs=2, default=(11659, 82161), metavar=('NQ', 'NG'))
    p.add_argument('--no-features', action='store_true'); p.add_argument('--no-rerank', action='store_true')
    p.add_argument('--tr-rerank', type=int, nargs=2, default=(3368, 15913), metavar=('NQ', 'NG'),
                   help="queries, gallery for torchreid's dense re_ranking (full Market: minutes and ~8 GB)")
    p.add_argument('--rerank-only', action='store_true',
                   help='only the re-ranking section (previous, dense and features-based re_rank; torchreid skipped)')
    p.add_argument('--worker', nargs='+', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        if a.worker[0] == 'rerank': return rerank_worker(*a.worker[1:])
        if a.worker[0] == 'rerank_features': return rerank_features_worker(*a.worker[1:])
        return features_worker(*map(int, a.worker[1:]))
    if a.rerank_only: a.no_torchreid, a.no_features, a.no_rerank = True, True, False
    tr = None if a.no_torchreid else load_torchreid()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}; "
          f"torchreid: {'loaded (benchmark only)' if tr else 'not available, skipped'}")
    qf, gf, qp, gp, qc, gc = market_like(a.n_query, a.n_gallery)
    distmat = distance_matrix(qf, gf)
    if a.rerank_only: vec = evaluate(distmat, qp, gp, qc, gc)
    else:
        # the cost of a ranking method can depend on the embedding: a trained one (true matches near the top) and a
        # random one (a fresh model: true matches anywhere in the list), with the same ids
        g = torch.Generator().manual_seed(1)
        rq, rg = (torch.nn.functional.normalize(torch.randn(n, 512, generator=g), dim=1) for n in (len(qf), len(gf)))
        rows = [evaluate_section(a, tr, name, f, qp, gp, qc, gc)
                for name, f in (('trained', (qf, gf)), ('random', (rq, rg)))]
        print(f"\n== evaluate vs np.argsort(distmat, axis=1), {a.n_query} x {a.n_gallery}, both cases in this run "
              f"(best of {a.repeat})")
        print(f"{'embedding':10s} {'argsort s':>10s} {'evaluate s':>11s} {'ratio':>6s} {'eval_features s':>16s} "
              f"{'ratio':>6s} {'mAP':>8s}  same as loop")
        for r in rows:
            print(f"{r['case']:10s} {r['sort']:10.3f} {r['eval']:11.3f} {r['eval']/r['sort']:6.3f} {r['feat']:16.3f} "
                  f"{r['feat']/r['sort']:6.3f} {r['mAP']:8.4f}  {r['same']}")
    if not a.no_features: features_section(a)
    if not a.no_rerank: rerank_section(a, tr, qp, gp, qc, gc, vec if a.rerank_only else evaluate(distmat, qp, gp, qc, gc))
    print(f"\nthis process: max RSS {max_rss():.2f} GiB")

def evaluate_section(a, tr, case, feats, qp, gp, qc, gc) -> dict:
    "Time argsort, `evaluate` and `evaluate_features` on one embedding; optionally the loop and torchreid."
    distmat = distance_matrix(*feats)
    print(f"\n== evaluate, {case} embedding: {a.n_query} queries x {a.n_gallery} gallery "
          f"({distmat.nbytes/2**20:.0f} MiB float32), 751 ids, 6 cameras")
    t_sort = best_time(np.argsort, a.repeat, distmat, axis=1)
    t_eval = best_time(evaluate, a.repeat, distmat, qp, gp, qc, gc)
    t_feat = best_time(evaluate_features, a.repeat, *feats, qp, gp, qc, gc)
    vec, _, m_vec = timed(evaluate, distmat, qp, gp, qc, gc)
    print(f"np.argsort(distmat, axis=1)  {t_sort:7.3f} s   (yardstick, best of {a.repeat})")
    print(f"evaluate                     {t_eval:7.3f} s   ratio {t_eval/t_sort:.3f} of argsort   peak extra memory {m_vec/2**20:.1f} MiB")
    print(f"evaluate_features            {t_feat:7.3f} s   ratio {t_feat/t_sort:.3f} of argsort (distances included)")
    print(f"  rank-1 {vec['rank1']:.4f}  mAP {vec['mAP']:.6f}  mINP {vec['mINP']:.6f}  valid {vec['num_valid_query']}/{vec['num_query']}")
    sub = slice(0, 300)                                   # exactness on the first queries; --loop: all of them
    r0, r1 = evaluate_loop(distmat[sub], qp[sub], gp, qc[sub], gc), evaluate(distmat[sub], qp[sub], gp, qc[sub], gc)
    same = (f"{np.array_equal(np.isnan(r0['AP']), np.isnan(r1['AP'])) and np.nanmax(np.abs(r0['AP'] - r1['AP'])) < 1e-12}"
            f" (first 300 queries)")
    if a.loop:
        loop, t_loop, m_loop = timed(evaluate_loop, distmat, qp, gp, qc, gc)
        same = (all(loop[k] == vec[k] for k in ('num_valid_query', 'num_query', 'num_gallery'))
                and np.array_equal(np.isnan(loop['AP']), np.isnan(vec['AP']))
                and np.nanmax(np.abs(loop['AP'] - vec['AP'])) < 1e-12 and np.abs(loop['cmc'] - vec['cmc']).max() < 1e-6)
        print(f"evaluate_loop (per query)    {t_loop:7.3f} s   peak {m_loop/2**20:.0f} MiB (tracemalloc slows it)   same counts and skipped queries: {same}, "
              f"max |ΔCMC| {np.abs(loop['cmc'] - vec['cmc']).max():.1e} (the loop sums in float32), |ΔmAP| {abs(loop['mAP'] - vec['mAP']):.1e}, "
              f"|ΔmINP| {abs(loop['mINP'] - vec['mINP']):.1e}, max |ΔAP| {np.nanmax(np.abs(loop['AP'] - vec['AP'])):.1e}")
    if tr:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            t0 = time.perf_counter(); cmc, mAP = tr['rank'].eval_market1501(distmat, qp, gp, qc, gc, 50); t_tr = time.perf_counter() - t0
        print(f"torchreid eval_market1501    {t_tr:7.3f} s   ({t_tr/t_eval:.0f}x evaluate)   max |ΔCMC| {np.abs(cmc - vec['cmc']).max():.1e}, "
              f"|ΔmAP| {abs(mAP - vec['mAP']):.1e} (its argsort is not stable: equal float32 distances break differently)")
    return dict(case=case, sort=t_sort, eval=t_eval, feat=t_feat, mAP=vec['mAP'], same=same)

def features_section(a):
    nq, ng = a.features_size
    print(f"\n== evaluate_features: {nq} queries x {ng} gallery, 3060 ids, 15 cameras, 512-d "
          f"(a full float32 matrix would be {nq*ng*4/2**30:.2f} GiB); fresh process")
    dt, peak, base, r1, mAP, mINP, nv, same = run_worker('features', nq, ng)
    print(f"evaluate_features            {float(dt):7.2f} s   peak RSS {float(peak):.2f} GiB, {float(peak)-float(base):.2f} GiB above the RSS with "
          f"the embeddings loaded   rank-1 {float(r1):.4f} mAP {float(mAP):.4f} mINP {float(mINP):.4f} valid {nv}/{nq}   "
          f"same AP as evaluate(distance_matrix) on the first {min(nq, 2048)} queries: {same}")

def rerank_section(a, tr, qp, gp, qc, gc, vec):
    with tempfile.TemporaryDirectory() as d:
        def rerank_set(nq, ng):
            qf, gf, *ids = market_like(nq, ng)
            np.save(os.path.join(d, 'qf.npy'), qf.numpy())
            np.save(os.path.join(d, 'gf.npy'), gf.numpy())
            for n, (x, y) in dict(qg=(qf, gf), qq=(qf, qf), gg=(gf, gf)).items(): np.save(os.path.join(d, f'{n}.npy'), distance_matrix(x, y, 'euclidean'))
            return ids
        rerank_set(a.n_query, a.n_gallery)
        print(f"\n== re_rank (k1=20, k2=6, λ=0.3) on {a.n_query + a.n_gallery} images; each run in a fresh process; "
              f"inputs {sum(os.path.getsize(os.path.join(d, f'{n}.npy')) for n in ('qg', 'qq', 'gg'))/2**30:.2f} GiB")
        res = {}
        for which in ('old', 'new'):
            dt, peak, base = map(float, run_worker('rerank', d, which, os.path.join(d, f'{which}.npy')))
            res[which] = np.load(os.path.join(d, f'{which}.npy'))
            print(f"re_rank {which:3s}                {dt:7.2f} s   peak RSS {peak:.2f} GiB, {peak - base:.2f} GiB above the RSS with the inputs loaded ({base:.2f} GiB)")
        t_new = dt
        print(f"new vs old: max |Δ| {np.abs(res['new'] - res['old']).max():.1e}; same ranking in every row: "
              f"{np.array_equal(np.argsort(res['new'], 1, kind='stable'), np.argsort(res['old'], 1, kind='stable'))}")
        r2 = evaluate(res['new'], qp, gp, qc, gc)
        print(f"  rank-1 {vec['rank1']:.4f} -> {r2['rank1']:.4f}, mAP {vec['mAP']:.4f} -> {r2['mAP']:.4f} (cosine -> re-ranked euclidean)")
        print(f"\n-- from the embeddings ({a.n_query + a.n_gallery} x 512 float32, "
              f"{(a.n_query + a.n_gallery) * 512 * 4 / 2**20:.0f} MiB); each run in a fresh process holding only them")
        for which, label in (('dense', 'distance_matrix x3 + re_rank'), ('features', 're_rank_features')):
            dt, peak, base = map(float, run_worker('rerank_features', d, which, os.path.join(d, f'{which}.npy')))
            res[which] = np.load(os.path.join(d, f'{which}.npy'))
            print(f"{label:28s} {dt:7.2f} s   total peak RSS {peak:.2f} GiB ({base:.2f} GiB with the embeddings loaded)")
        diff = np.abs(res['features'] - res['new'])
        print(f"re_rank_features vs re_rank (dense inputs): max |Δ| {diff.max():.1e}; same ranking in every row: "
              f"{np.array_equal(np.argsort(res['features'], 1, kind='stable'), np.argsort(res['new'], 1, kind='stable'))}; "
              f"identical to the dense path from the same embeddings: {np.array_equal(res['features'], res['dense'])}, "
              f"max |Δ| {np.abs(res['features'] - res['dense']).max():.1e}")
        if tr:
            nq, ng = a.tr_rerank
            ids = rerank_set(nq, ng) if (nq, ng) != (a.n_query, a.n_gallery) else (qp, gp, qc, gc)
            for which in ('torchreid', 'new'):
                try: dt, peak, base = map(float, run_worker('rerank', d, which, os.path.join(d, f'{which}.npy')))
                except RuntimeError as e: print(f"torchreid re_ranking failed: {str(e)[:300]}"); break
                res[which] = np.load(os.path.join(d, f'{which}.npy'))
                print(f"{which + ' re_ranking' if which == 'torchreid' else 're_rank new':28s} {dt:7.2f} s   peak RSS {peak:.2f} GiB, "
                      f"{peak - base:.2f} GiB above the inputs   ({nq} x {ng})")
            else:
                diff = np.abs(res['new'] - res['torchreid'])
                e_new, e_tr = evaluate(res['new'], *ids), evaluate(res['torchreid'], *ids)
                print(f"re_rank vs torchreid re_ranking ({nq} x {ng}): max |Δ| {diff.max():.1e}, mean |Δ| {diff.mean():.1e}; "
                      f"same nearest gallery image in {np.mean(res['new'].argmin(1) == res['torchreid'].argmin(1)):.2%} of rows, whole rows ranked "
                      f"identically in {np.mean(np.all(np.argsort(res['new'], 1, kind='stable') == np.argsort(res['torchreid'], 1, kind='stable'), 1)):.2%}; "
                      f"mAP {e_new['mAP']:.6f} vs {e_tr['mAP']:.6f}, rank-1 {e_new['rank1']:.4f} vs {e_tr['rank1']:.4f}")

if __name__ == '__main__': main()
