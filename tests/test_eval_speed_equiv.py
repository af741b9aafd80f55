"The counting `evaluate`, `evaluate_features` and `re_rank` against their slow references on many small random cases."
import numpy as np, pytest, torch
from reid_nb.metrics import distance_matrix, evaluate, evaluate_features, evaluate_loop, re_rank, re_rank_features

def random_case(rng, ties):
    nq, ng, n_ids, n_cams = rng.integers(1, 40), rng.integers(1, 80), rng.integers(2, 15), rng.integers(1, 5)
    d = rng.integers(-3, 5, (nq, ng)).astype(np.float32) if ties else rng.normal(size=(nq, ng)).astype(np.float32)
    q_pids = np.where(rng.random(nq) < .1, -1, rng.integers(1, n_ids, nq))            # a few junk queries: skipped
    g_pids = np.where(rng.random(ng) < .15, -1, rng.integers(0, n_ids, ng))           # junk and distractors (0)
    return d, q_pids, g_pids, rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)

def results(f, *a, **kw):
    try: return f(*a, **kw)
    except ValueError as e: return str(e)

def assert_same(a, b):
    if isinstance(a, str) or isinstance(b, str): assert a == b; return
    np.testing.assert_allclose(b['cmc'], a['cmc'], atol=1e-6, rtol=0)            # the loop sums the CMC in float32
    for k in ('rank1', 'rank5', 'rank10'): assert b[k] == pytest.approx(a[k], abs=1e-6, nan_ok=True)   # read off the CMC
    for k in ('mAP', 'mINP'): assert b[k] == pytest.approx(a[k], abs=1e-12)
    for k in ('num_valid_query', 'num_query', 'num_gallery'): assert a[k] == b[k]
    np.testing.assert_allclose(b['AP'], a['AP'], atol=1e-12, rtol=0)               # NaN (skipped) in the same places

@pytest.mark.parametrize('seed', range(40))
def test_evaluate_equals_loop(seed):
    rng = np.random.default_rng(seed)
    d, *ids = random_case(rng, ties=seed % 2 == 0)
    if seed % 4 == 0: d[d == 0] = -0.0                                                 # -0.0 ties with 0.0
    max_rank = int(rng.integers(1, 100))                                               # often more than the gallery
    for dist in (d, d.astype(np.float64)):                                             # float32 keys; float64 lexsort
        ref = results(evaluate_loop, dist, *ids, max_rank=max_rank)
        for chunk in (None, 1, 5): assert_same(ref, results(evaluate, dist, *ids, max_rank=max_rank, chunk_size=chunk))

def test_evaluate_features_equals_evaluate():
    rng = np.random.default_rng(0)
    qf, gf = torch.randn(90, 16), torch.randn(300, 16)
    ids = rng.integers(1, 20, 90), rng.integers(0, 20, 300), rng.integers(0, 3, 90), rng.integers(0, 3, 300)
    for metric, block in (('cosine', 32), ('euclidean', 7), ('sqeuclidean', 1000)):
        a = evaluate(distance_matrix(qf, gf, metric, chunk_size=block), *ids)
        b = evaluate_features(qf, gf, *ids, metric=metric, block=block)
        np.testing.assert_array_equal(a['cmc'], b['cmc']); np.testing.assert_array_equal(a['AP'], b['AP'])
        assert (a['mAP'], a['mINP']) == (b['mAP'], b['mINP'])

def test_nonfinite_refused():
    d = np.random.default_rng(0).random((50, 20), dtype=np.float32)
    d[[3, 8], [0, 5]] = np.nan, -np.inf
    ids = np.ones(50, int), np.ones(20, int), np.zeros(50, int), np.ones(20, int)
    with pytest.raises(ValueError, match=r'distmat: 2 of 50 query rows hold NaN/inf distances \(first: row 3\)'): evaluate(d, *ids)
    qf, gf = torch.randn(50, 4), torch.randn(20, 4)
    qf[10, 1] = float('inf')
    with pytest.raises(ValueError, match=r'qf: 1 of 50 query rows hold NaN/inf values \(first: row 10\)'): evaluate_features(qf, gf, *ids)
    big = torch.full((20, 4), 3e38)                                                    # finite, but the distance overflows
    with pytest.raises(ValueError, match='overflows'): evaluate_features(-big[:1].expand(50, 4), big, *ids, metric='euclidean')

def _re_rank_dense(q_g, q_q, g_g, k1, k2, lam):
    "A compact dense transcription of the published re_ranking (stable argsort), for small cases."
    nq, N = len(q_g), sum(q_g.shape)
    d = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    d = (d / d.max(0)).T
    rank = np.argsort(d, kind='stable')
    V = np.zeros_like(d)
    def recip(i, k):
        f = rank[i, :k + 1]
        return f[(rank[f, :k + 1] == i).any(1)]
    for i in range(N):
        R = recip(i, k1)
        E = R
        for c in R:
            Rc = recip(c, int(np.around(k1 / 2.)))
            if len(np.intersect1d(Rc, R)) > 2. / 3 * len(Rc): E = np.append(E, Rc)
        E = np.unique(E)
        w = np.exp(-d[i, E]); V[i, E] = w / w.sum()
    if k2 != 1: V = np.stack([V[rank[i, :k2]].mean(0) for i in range(N)])
    tmin = np.minimum(V[:nq, None, :], V[None, nq:, :]).sum(-1)
    return ((1 - tmin / (2. - tmin)) * (1 - lam) + d[:nq, nq:] * lam).astype(np.float32)

@pytest.mark.parametrize('nq,ng,k1,k2,lam', [(20, 60, 20, 6, 0.3), (15, 50, 7, 3, 0.6), (10, 30, 4, 1, 0.)])
def test_re_rank_equals_dense(nq, ng, k1, k2, lam):
    rng = np.random.default_rng(nq)
    x = rng.normal(size=(8, 12))[rng.integers(0, 8, nq + ng)] + 0.7 * rng.normal(size=(nq + ng, 12))
    qg, qq, gg = (distance_matrix(a, b, 'euclidean') for a, b in ((x[:nq], x[nq:]), (x[:nq], x[:nq]), (x[nq:], x[nq:])))
    np.testing.assert_allclose(re_rank(qg, qq, gg, k1, k2, lam, chunk_size=9, max_pairs=300), _re_rank_dense(qg, qq, gg, k1, k2, lam), atol=1e-5, rtol=0)

@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
@pytest.mark.parametrize('nq,ng,k1,k2,lam,chunk', [(20, 60, 20, 6, 0.3, 1024), (15, 50, 7, 3, 0.6, 9), (10, 30, 4, 1, 0., 4)])
def test_re_rank_features_equals_dense(metric, nq, ng, k1, k2, lam, chunk):
    rng = np.random.default_rng(nq)
    x = (rng.normal(size=(8, 12))[rng.integers(0, 8, nq + ng)] + 0.7 * rng.normal(size=(nq + ng, 12))).astype(np.float32)
    qf, gf = x[:nq], x[nq:]
    dense = re_rank(*(distance_matrix(a, b, metric) for a, b in ((qf, gf), (qf, qf), (gf, gf))), k1, k2, lam)
    feats = re_rank_features(torch.from_numpy(qf), gf, metric, k1, k2, lam, chunk_size=chunk, max_pairs=300)
    assert feats.shape == (nq, ng) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, dense, atol=1e-5, rtol=0)
