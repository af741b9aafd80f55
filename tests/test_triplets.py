"End-to-end checks of reid_nb.triplets: losses against brute force, safe distances, offline triplets, the static explorer."
import itertools, math, warnings
import numpy as np
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from reid_nb.data import Sample, BadItem, make_synthetic_market, Market1501, test_tfms
from reid_nb.triplets import TripletDataset, triplet_collate, pairwise_distances, TripletLoss, TripletExplorer

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp('syn')
    make_synthetic_market(root, n_train_ids=6, n_test_ids=2, seed=1, size=(64, 32))
    return Market1501(root)

# ---------------------------------------------------------------- distances
@pytest.mark.parametrize('metric', ['euclidean', 'sqeuclidean', 'cosine'])
def test_distances_match_reference(metric):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = {'euclidean': torch.cdist(x, y), 'sqeuclidean': torch.cdist(x, y)**2,
           'cosine': 1 - F.cosine_similarity(x[:, None], y[None], dim=-1)}[metric]
    torch.testing.assert_close(pairwise_distances(x, y, metric), ref, atol=1e-9, rtol=1e-7)
    d = pairwise_distances(x, metric=metric)
    assert d.shape == (7, 7) and (d >= 0).all()

def test_no_negative_squared_distances_from_roundoff():
    # large, nearly equal rows: |x|^2 + |y|^2 - 2 x.y cancels catastrophically in float32
    x = 1e3 + 1e-4 * torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    for metric in ('sqeuclidean', 'euclidean'):
        d = pairwise_distances(x, x.clone(), metric)
        assert torch.isfinite(d).all() and (d >= 0).all(), metric

@pytest.mark.parametrize('metric', ['euclidean', 'sqeuclidean', 'cosine'])
def test_gradients_finite_at_zero_distance(metric):
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, x[:2], x[:1]]).requires_grad_()          # duplicate rows: exact zero distances off the diagonal
    (g,) = torch.autograd.grad(pairwise_distances(x, metric=metric).sum(), x)
    assert torch.isfinite(g).all()
    xs, ys = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    gx, gy = torch.autograd.grad(pairwise_distances(xs, ys, metric).sum(), (xs, ys))
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()

def test_gradient_matches_autograd_away_from_zero():
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distances(a, b, 'euclidean'), (x, y))

def test_distances_bad_input():
    with pytest.raises(ValueError, match='metric'): pairwise_distances(torch.randn(3, 2), metric='manhattan')
    with pytest.raises(ValueError): pairwise_distances(torch.randn(3, 2), torch.randn(3, 4))

# ---------------------------------------------------------------- losses
def _brute_force(emb, pids, margin, mining, soft, metric):
    "Every (a, p, n) in plain Python: the definition of batch-hard and batch-all."
    d = pairwise_distances(emb.double(), metric=metric).tolist(); n = len(pids); pids = pids.tolist()
    hinge = (lambda v: math.log1p(math.exp(v))) if soft else (lambda v: max(0., v + margin))
    if mining == 'batch_all':
        ls = [hinge(d[a][p] - d[a][q]) for a, p, q in itertools.product(range(n), repeat=3)
              if a != p and pids[a] == pids[p] and pids[a] != pids[q]]
        act = ls if soft else [l for l in ls if l > 0]
        return sum(act) / len(act) if act else 0.
    ls = []
    for a in range(n):
        ps = [d[a][p] for p in range(n) if p != a and pids[p] == pids[a]]
        ns = [d[a][q] for q in range(n) if pids[q] != pids[a]]
        if ps and ns: ls.append(hinge(max(ps) - min(ns)))
    return sum(ls) / len(ls)

@pytest.mark.parametrize('mining,soft,metric', [(m, s, d) for m in ('batch_hard', 'batch_all') for s in (False, True)
                                                 for d in ('euclidean', 'sqeuclidean', 'cosine')])
def test_mined_losses_equal_brute_force(mining, soft, metric):
    g = torch.Generator().manual_seed(hash((mining, soft, metric)) % 2**31)
    for trial in range(3):
        pids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 5])      # uneven K, and a singleton (pid 5)
        emb = torch.randn(len(pids), 6, generator=g, dtype=torch.float64)
        for margin in (0.05, 0.3, 2.0):
            got = TripletLoss(margin, mining, soft=soft, metric=metric)(emb, pids)[0].item()
            assert got == pytest.approx(_brute_force(emb, pids, margin, mining, soft, metric), rel=1e-9, abs=1e-12)

def test_none_equals_torch_triplet_margin_loss():
    g = torch.Generator().manual_seed(0)
    A, P, N = torch.randn(3, 64, 32, generator=g).unbind(0)
    P[:4] = A[:4]                                                  # zero anchor-positive distances too
    for m in (0.05, 0.3, 1.0, 5.0):
        (got, _), ref = TripletLoss(m, mining='none')(A, positives=P, negatives=N), nn.TripletMarginLoss(margin=m)(A, P, N)
        assert abs(got.item() - ref.item()) < 1e-6
    a2, p2, n2 = (t.clone().requires_grad_() for t in (A, P, N))
    TripletLoss(0.3, mining='none')(a2, positives=p2, negatives=n2)[0].backward()
    a3, p3, n3 = (t.clone().requires_grad_() for t in (A, P, N))
    nn.TripletMarginLoss(margin=0.3)(a3, p3, n3).backward()
    for u, v in ((a2, a3), (p2, p3), (n2, n3)): torch.testing.assert_close(u.grad, v.grad, atol=1e-6, rtol=1e-5)

def test_none_positional_call_shape_of_torch():
    "loss(anchor, positive, negative), as nn.TripletMarginLoss is called: same value and gradients as by keyword."
    g = torch.Generator().manual_seed(5)
    A, P, N = torch.randn(3, 20, 12, generator=g).unbind(0)
    for metric in ('euclidean', 'cosine'):
        loss = TripletLoss(0.3, mining='none', metric=metric)
        a1, p1, n1 = (t.clone().requires_grad_() for t in (A, P, N))
        a2, p2, n2 = (t.clone().requires_grad_() for t in (A, P, N))
        got, stats = loss(a1, p1, n1)
        ref, ref_stats = loss(a2, positives=p2, negatives=n2)
        assert got.item() == ref.item() and stats == ref_stats
        got.backward(); ref.backward()
        for u, v in ((a1, a2), (p1, p2), (n1, n2)): torch.testing.assert_close(u.grad, v.grad)
    assert TripletLoss(0.3, mining='none')(A, P, N)[0].item() == pytest.approx(nn.TripletMarginLoss(0.3)(A, P, N).item(), abs=1e-6)
    assert TripletLoss(0.3, mining='none')(A, N, P)[0].item() != TripletLoss(0.3, mining='none')(A, P, N)[0].item()
    with pytest.raises(ValueError, match='got 4 tensors'): TripletLoss(mining='none')(A, P, N, negatives=N)
    with pytest.raises(ValueError, match=r'positives must be \(B, D\)'): TripletLoss(mining='none')(A, torch.arange(20), N)
    # the mining modes keep (embeddings, pids)
    emb, pids = torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3)
    assert TripletLoss(0.3, 'batch_hard')(emb, pids)[0].item() == TripletLoss(0.3, 'batch_hard')(emb, pids=pids)[0].item()

def test_none_soft_margin():
    g = torch.Generator().manual_seed(3)
    A, P, N = torch.randn(3, 16, 8, generator=g).unbind(0)
    ref = F.softplus(F.pairwise_distance(A, P, eps=1e-6) - F.pairwise_distance(A, N, eps=1e-6)).mean()
    torch.testing.assert_close(TripletLoss(mining='none', soft=True)(A, positives=P, negatives=N)[0], ref)

def test_stats():
    g = torch.Generator().manual_seed(4)
    pids = torch.arange(4).repeat_interleave(4)
    emb = torch.randn(16, 8, generator=g)
    d = torch.cdist(emb, emb); same = pids[:, None] == pids[None]; eye = torch.eye(16, dtype=torch.bool)
    dap = d.masked_fill(~same | eye, -1).max(1).values; dan = d.masked_fill(same, 1e9).min(1).values
    _, stats = TripletLoss(0.3, 'batch_hard')(emb, pids)
    assert set(stats) >= {'frac_active', 'd_ap', 'd_an'} and all(isinstance(v, float) for v in stats.values())
    assert stats['d_ap'] == pytest.approx(dap.mean().item(), rel=1e-5)
    assert stats['d_an'] == pytest.approx(dan.mean().item(), rel=1e-5)
    assert stats['frac_active'] == pytest.approx((dap - dan + 0.3 > 0).float().mean().item())
    _, stats = TripletLoss(0.3, 'batch_all')(emb, pids)
    mask = (same & ~eye)[:, :, None] & ~same[:, None, :]
    gap = (d[:, :, None] - d[:, None, :])[mask]
    assert stats['frac_active'] == pytest.approx((gap + 0.3 > 0).float().mean().item(), rel=1e-6)
    # well separated clusters: nothing active, zero loss that still backpropagates
    emb = (torch.eye(4).repeat_interleave(4, 0) * 100 + 0.01 * torch.randn(16, 4, generator=g)).requires_grad_()
    for mining in ('batch_hard', 'batch_all'):
        loss, stats = TripletLoss(0.3, mining)(emb, pids)
        assert loss.item() == 0 and stats['frac_active'] == 0 and stats['d_an'] > 100
        loss.backward()

@pytest.mark.parametrize('mining', ['batch_hard', 'batch_all'])
def test_no_valid_triplet_raises(mining):
    loss = TripletLoss(0.3, mining)
    with pytest.raises(ValueError, match='positive'): loss(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))  # one id
    with pytest.raises(ValueError, match='positive'): loss(torch.randn(4, 8), torch.arange(4))                  # singletons
    with pytest.raises(ValueError): loss(torch.randn(4, 8), torch.arange(3))                                    # wrong length

def test_bad_arguments():
    with pytest.raises(ValueError, match='mining'): TripletLoss(mining='semi_hard')
    with pytest.raises(ValueError): TripletLoss(mining='none')(torch.randn(4, 8), positives=torch.randn(4, 8))

@pytest.mark.parametrize('mining', ['batch_hard', 'batch_all'])
def test_mined_gradients_finite_with_duplicates(mining):
    e = torch.randn(8, 8, generator=torch.Generator().manual_seed(5)); e[1] = e[0]; e[3] = e[2]
    e.requires_grad_()
    TripletLoss(0.3, mining)(e, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))[0].backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0

def test_batch_hard_training_separates_clusters():
    "A linear embedding trained with batch-hard drives the loss down on separable data."
    g = torch.Generator().manual_seed(6)
    centers = torch.randn(8, 16, generator=g)
    pids = torch.arange(8).repeat_interleave(4)
    x = centers[pids] + 0.8 * torch.randn(32, 16, generator=g)
    torch.manual_seed(0)
    net = nn.Linear(16, 8); opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = TripletLoss(0.3, 'batch_hard')
    first, stats0 = loss_fn(net(x), pids)
    for _ in range(100):
        opt.zero_grad()
        loss, _ = loss_fn(net(x), pids)
        loss.backward()
        opt.step()
    last, stats = loss_fn(net(x), pids)
    assert last.item() < 0.5 * first.item()
    assert stats['frac_active'] < stats0['frac_active']

# ---------------------------------------------------------------- offline triplets
def test_triplet_dataset_rules():
    toy = [Sample('a.jpg', 0, 0), Sample('b.jpg', 0, 1), Sample('b2.jpg', 0, 1),   # pid 0: two cameras
           Sample('c.jpg', 1, 2), Sample('d.jpg', 1, 2),                          # pid 1: one camera -> fallback
           Sample('e.jpg', 2, 3)]                                                 # pid 2: single image -> never an anchor
    ds = TripletDataset(toy, seed=0)
    assert len(ds) == 5 and ds.n_fallback == 2
    for epoch in range(20):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            a, p, n = ds.triplet(i)
            assert a != 5 and a != p and toy[a].pid == toy[p].pid and toy[n].pid != toy[a].pid
            if toy[a].pid == 0: assert toy[p].camid != toy[a].camid          # other camera whenever there is one
    with pytest.raises(ValueError): TripletDataset([Sample('a.jpg', 0, 0), Sample('b.jpg', 1, 0)])  # no positives
    with pytest.raises(ValueError): TripletDataset([Sample('a.jpg', 0, 0), Sample('b.jpg', 0, 1)])  # no negatives

def test_triplet_dataset_reproducible(market):
    draw = lambda ds: [ds.triplet(i) for i in range(len(ds))]
    ds = TripletDataset(market.train, seed=3)
    e0 = draw(ds); ds.set_epoch(1); e1 = draw(ds); ds.set_epoch(0)
    assert draw(ds) == e0 and e1 != e0
    assert draw(TripletDataset(market.train, seed=3)) == e0
    assert draw(TripletDataset(market.train, seed=4)) != e0
    # negatives cover many identities, not just one
    assert len({market.train[n].pid for _, _, n in e0}) >= 4

def test_triplet_dataset_loader_and_loss(market):
    ds = TripletDataset(market.train, test_tfms((64, 32)), seed=0)
    assert ds.n_fallback == 0                          # every synthetic person walks past >= 2 cameras
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False, collate_fn=triplet_collate)
    b = next(iter(dl))
    for k in ('anchor', 'positive', 'negative'): assert b[k].shape == (8, 3, 64, 32) and b[k].dtype == torch.float32
    assert (b['pid'] != b['neg_pid']).all() and (b['camid'] != b['pos_camid']).all()
    emb = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 32, 16))
    loss, _ = TripletLoss(0.3, mining='none')(emb(b['anchor']), positives=emb(b['positive']), negatives=emb(b['negative']))
    loss.backward()
    assert torch.isfinite(loss)

def test_triplet_dataset_bad_image(tmp_path, market):
    bad = tmp_path/'0001_c1s1_000001_00.jpg'; bad.write_bytes(b'not a jpeg')
    samples = [Sample(str(bad), 0, 0), Sample(market.train[0].path, 0, 1), Sample(market.train[-1].path, 1, 2)]
    with pytest.raises(OSError, match='0001_c1s1_000001_00.jpg'): TripletDataset(samples)[0]
    ds = TripletDataset(samples, skip_bad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        assert isinstance(ds[0], BadItem) and ds[0].path == str(bad)
    assert str(bad) in ds.bad_paths and any('0001_c1s1_000001_00.jpg' in str(x.message) for x in w)
    assert triplet_collate([ds[0], ds[0]]) is None

# ---------------------------------------------------------------- explorer
def _feats(samples, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(max(s.pid for s in samples) + 1, 8, generator=g)
    return F.normalize(centers[[s.pid for s in samples]] + 0.7 * torch.randn(len(samples), 8, generator=g), dim=1)

def test_explorer_distances_and_order(market):
    feats = _feats(market.train)
    ex = TripletExplorer(market.train, feats=feats, margin=0.3)
    for i in range(len(ex)):
        a, p, n = ex.trips[i]
        assert ex.d_ap[i] == pytest.approx((feats[a] - feats[p]).norm().item(), abs=1e-5)
        assert ex.d_an[i] == pytest.approx((feats[a] - feats[n]).norm().item(), abs=1e-5)
    order = ex.order(hardest_first=True)
    gap = ex.d_ap - ex.d_an
    assert sorted(order) == list(range(len(ex))) and all(gap[order[i]] >= gap[order[i + 1]] for i in range(len(ex) - 1))
    i = order[0]; cap = ex.caption(i)
    assert f"{ex.d_ap[i]:.3f}" in cap and f"{ex.d_an[i]:.3f}" in cap
    assert ('ACTIVE' in cap) == bool(gap[i] + 0.3 > 0)
    with pytest.raises(ValueError): TripletExplorer(market.train, feats=feats[:-1])

def test_static_explorer_works_without_kernel(market):
    import ipywidgets as W
    from ipywidgets.embed import embed_data
    ex = TripletExplorer(market.train, feats=_feats(market.train), margin=0.3)
    w = ex.static(n=5)
    sliders = [c for c in w.children[0].children if isinstance(c, W.IntSlider)]
    assert sliders and sliders[0].max == 4
    stacks = [c for c in w.children[1:] if isinstance(c, W.Stack)]
    assert stacks
    inner = list(stacks[0].children) if isinstance(stacks[0].children[0], W.Stack) else stacks
    # the saved state a static page needs: the slider drives every Stack through a browser-side link
    state = embed_data(views=[w])['manager_state']['state']
    assert {'LinkModel', 'StackModel', 'IntSliderModel', 'ImageModel'} <= {v['model_name'] for v in state.values()}
    linked = {(l['state']['source'][0], l['state']['source'][1], l['state']['target'][0], l['state']['target'][1])
              for l in state.values() if l['model_name'] == 'LinkModel'}
    for st in inner:
        assert ('IPY_MODEL_' + sliders[0].model_id, 'value', 'IPY_MODEL_' + st.model_id, 'selected_index') in linked
        pngs = [next(c for c in page.children if isinstance(c, W.Image)).value for page in st.children]
        assert len(pngs) == 5 and all(p[:8] == b'\x89PNG\r\n\x1a\n' for p in pngs)
        assert len(set(pngs)) == 5                       # each position of the slider shows a different panel
        assert st.model_id in state and state[st.model_id]['state']['selected_index'] == 0
