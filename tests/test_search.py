"End to end: `reid_nb_search` on a small synthetic set with a freshly initialised checkpoint, and its bad inputs."
import os, sys, shutil, subprocess
from pathlib import Path
import numpy as np
import pytest
import torch

from reid_nb.data import make_synthetic_market, Market1501
from reid_nb.model import ReIDNet, save_checkpoint
from reid_nb.eval import distance_matrix
from reid_nb.search import Gallery, GalleryError, topk_search, recall_at_k, import_faiss
from reid_nb.cli import reid_nb_search

SIZE = (64, 32)


def cli(*args, timeout=300):
    "Run the installed console script (or the module's entry point if it is not on PATH)"
    exe = Path(sys.executable).parent / 'reid_nb_search'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-c', 'from reid_nb.cli import reid_nb_search; reid_nb_search()']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def run_inproc(capsys, *args):
    "Run the command in this process → (exit status, stdout, stderr)"
    rc = 0
    try: reid_nb_search([str(a) for a in args])
    except SystemExit as e: rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('search')
    make_synthetic_market(tmp/'market', n_train_ids=2, n_test_ids=5, seed=0)
    mk = Market1501(tmp/'market')
    crops = tmp/'crops'; crops.mkdir()
    for s in mk.gallery: shutil.copy(s.path, crops)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp/'tiny.pth', ReIDNet(emb_dim=32), config={'size': list(SIZE)})
    torch.manual_seed(1)
    other = save_checkpoint(tmp/'other.pth', ReIDNet(emb_dim=32), config={'size': list(SIZE)})
    bad = tmp/'broken.jpg'; bad.write_bytes(b'\xff\xd8 not really a jpeg')
    return dict(tmp=tmp, mk=mk, crops=crops, ckpt=ckpt, other=other, bad=bad)


def test_cli_end_to_end(setup):
    s, tmp = setup, setup['tmp']
    queries = [q.path for q in s['mk'].query[:2]]
    p = cli('--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *queries, '--k', 5,
            '--out', tmp/'ranked.png', '--save-gallery', tmp/'g.pth')
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"gallery of {len(s['mk'].gallery)} images saved to")
    blocks = [i for i, l in enumerate(lines) if l.startswith('query ')]
    assert len(blocks) == 2 and queries[0] in lines[blocks[0]]
    ranks = [l.split() for l in lines[blocks[0] + 2:blocks[1]]]
    assert [int(r[0]) for r in ranks] == [1, 2, 3, 4, 5]
    d = [float(r[1]) for r in ranks]
    assert d == sorted(d)
    assert all(Path(r[-1]).parent == s['crops'] for r in ranks)
    png = (tmp/'ranked.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000

    # the saved gallery: same entries, same ranking when searched again from the file
    g = Gallery.load(tmp/'g.pth')
    assert len(g) == len(s['mk'].gallery) and g.size == SIZE
    assert sorted(Path(p).name for p in g.paths) == sorted(Path(x.path).name for x in s['mk'].gallery)
    p2 = cli('--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', *queries, '--k', 5)
    assert p2.returncode == 0, p2.stderr
    assert p2.stdout.splitlines() == lines[1:-1]          # minus "saved" and "picture written"

    # a gallery crop as query finds itself first, at distance ~0
    p3 = cli('--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', g.paths[3], '--k', 2, '--metric', 'euclidean')
    first = p3.stdout.splitlines()[2].split()
    assert p3.returncode == 0 and first[-1] == g.paths[3] and float(first[1]) < 1e-3


@pytest.mark.parametrize('case', ['unreadable query', 'missing query', 'empty gallery', 'other model', 'other size',
                                  'not a gallery', 'missing gallery', 'no ckpt', 'missing ckpt', 'bad ckpt', 'bad metric',
                                  'rerank too small'])
def test_cli_bad_input(setup, capsys, case):
    "Each bad input: exit status 2 and one line on stderr naming what is wrong, no traceback"
    s, tmp = setup, setup['tmp']
    q = s['mk'].query[0].path
    if not (tmp/'g.pth').exists(): Gallery.from_folder(s['crops'], ReIDNet.from_checkpoint(s['ckpt']), size=SIZE).save(tmp/'g.pth')
    (tmp/'empty').mkdir(exist_ok=True)
    if not (tmp/'tiny_gallery').exists():
        (tmp/'tiny_gallery').mkdir()
        for p in sorted(s['crops'].iterdir())[:5]: shutil.copy(p, tmp/'tiny_gallery')
    args, expect = {
        'unreadable query': (['--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', s['bad']], 'broken.jpg'),
        'missing query':    (['--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', tmp/'nobody.jpg'], 'nobody.jpg'),
        'empty gallery':    (['--ckpt', s['ckpt'], '--gallery', tmp/'empty', '--query', q], 'no images'),
        'other model':      (['--ckpt', s['other'], '--gallery', tmp/'g.pth', '--query', q], 'another model'),
        'other size':       (['--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', q, '--size', 96, 48], 'image size'),
        'not a gallery':    (['--ckpt', s['ckpt'], '--gallery', s['ckpt'], '--query', q], 'model checkpoint'),
        'missing gallery':  (['--ckpt', s['ckpt'], '--gallery', tmp/'nowhere', '--query', q], 'nowhere'),
        'no ckpt':          (['--gallery', tmp/'g.pth', '--query', q], 'the following arguments are required: --ckpt'),
        'missing ckpt':     (['--ckpt', tmp/'none.pth', '--gallery', tmp/'g.pth', '--query', q], 'none.pth'),
        'bad ckpt':         (['--ckpt', s['bad'], '--gallery', tmp/'g.pth', '--query', q], 'broken.jpg'),
        'bad metric':       (['--ckpt', s['ckpt'], '--gallery', tmp/'g.pth', '--query', q, '--metric', 'cos'], 'metric'),
        'rerank too small': (['--ckpt', s['ckpt'], '--gallery', tmp/'tiny_gallery', '--query', q, '--rerank'], 'k1=20'),
    }[case]
    rc, out, err = run_inproc(capsys, *args)
    assert rc == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith('reid_nb_search: error:'), err
    assert expect in err and 'Traceback' not in err


def test_cli_rerank_and_faiss(setup, capsys):
    "--rerank, --index faiss and --backend onnxruntime run end to end; faiss's exact index and ONNX Runtime give the torch ranking"
    s, q = setup, [x.path for x in setup['mk'].query[:2]]
    base = ['--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 5]
    rc, torch_out, err = run_inproc(capsys, *base)
    assert rc == 0, err
    rc, rr_out, err = run_inproc(capsys, *base, '--rerank')
    assert rc == 0, err
    assert len(rr_out.splitlines()) == len(torch_out.splitlines())
    if pytest.importorskip('faiss'):
        rc, faiss_out, err = run_inproc(capsys, *base, '--index', 'faiss')
        assert rc == 0, err
        ranks = lambda out: [l.split()[-1] for l in out.splitlines() if l.split()[0].isdigit()]
        assert ranks(faiss_out) == ranks(torch_out)
        rc, ort_out, err = run_inproc(capsys, *base, '--backend', 'onnxruntime')
        assert rc == 0, err
        assert ranks(ort_out) == ranks(torch_out)


def test_cli_bad_input_subprocess(setup):
    "The installed command: exit status 2 and a single stderr line, no traceback"
    p = cli('--ckpt', setup['ckpt'], '--gallery', setup['crops'], '--query', setup['bad'])
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and 'broken.jpg' in p.stderr and 'Traceback' not in p.stderr


def test_gallery_mixing_refused(setup):
    s = setup
    m1, m2 = ReIDNet.from_checkpoint(s['ckpt']), ReIDNet.from_checkpoint(s['other'])
    paths = sorted(s['crops'].iterdir())[:4]
    g = Gallery.from_folder(s['crops'], m1, size=SIZE)
    with pytest.raises(GalleryError, match='model fingerprint'): g.add(Gallery.from_embeddings(torch.randn(2, 32), model=m2))
    with pytest.raises(GalleryError, match='size'):
        g.add(Gallery.from_embeddings(torch.randn(2, 32), model=m1, size=(96, 48)))
    n = len(g); g.add(paths[:2]); assert len(g) == n + 2
    g.add(Gallery.from_embeddings(torch.randn(3, 32), model=m1, size=SIZE)); assert len(g) == n + 5
    with pytest.raises(GalleryError, match='empty'): Gallery().search(torch.randn(1, 32))


def test_atomic_save_leaves_old_file_on_failure(setup, monkeypatch):
    tmp = setup['tmp']
    g = Gallery.from_embeddings(torch.randn(10, 8))
    f = g.save(tmp/'atomic.pth')
    before = f.read_bytes()
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(OSError): Gallery.from_embeddings(torch.randn(20, 8)).save(f)
    assert f.read_bytes() == before and not [p for p in tmp.iterdir() if p.name.endswith('.tmp')]


def test_exact_search_matches_brute_force():
    torch.manual_seed(0)
    g, q = torch.randn(50_000, 64), torch.randn(40, 64)
    for metric in ('cosine', 'euclidean'):
        d, i = topk_search(q, g, k=10, metric=metric, chunk_size=4096)
        full = distance_matrix(q, g, metric=metric)
        ref = np.argsort(full, axis=1, kind='stable')[:, :10]
        np.testing.assert_array_equal(i.numpy(), ref)
        np.testing.assert_allclose(d.numpy(), np.take_along_axis(full, ref, 1), atol=1e-4)


def test_faiss_flat_equals_torch_and_approx_recall():
    pytest.importorskip('faiss')
    torch.manual_seed(0)
    centres = torch.randn(500, 128)
    gal = Gallery.from_embeddings(centres.repeat_interleave(40, 0) + 0.6 * torch.randn(20_000, 128))
    q = centres[torch.randint(0, 500, (100,))] + 0.6 * torch.randn(100, 128)
    for metric in ('cosine', 'euclidean'):
        exact = gal.search(q, k=10, metric=metric)
        gal.build_index('flat', metric=metric)
        flat = gal.search(q, k=10, metric=metric, backend='faiss')
        np.testing.assert_array_equal(flat.indices, exact.indices)
        np.testing.assert_allclose(flat.distances, exact.distances, atol=1e-4)
        assert flat.paths == exact.paths
    exact = gal.search(q, k=10).indices
    gal.build_index('ivf', nlist=128, nprobe=16)
    rec_ivf = recall_at_k(gal.search(q, k=10, backend='faiss').indices, exact)
    gal.build_index('hnsw', M=16, ef_search=64)
    rec_hnsw = recall_at_k(gal.search(q, k=10, backend='faiss').indices, exact)
    print(f'recall@10 ivf128/nprobe16 {rec_ivf:.3f}, hnsw M16 ef64 {rec_hnsw:.3f}')
    assert rec_ivf > 0.9 and rec_hnsw > 0.9


def test_faiss_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'faiss', None)          # `import faiss` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'reid_nb\[faiss\]'"): import_faiss()
    with pytest.raises(ImportError, match='faiss'):
        Gallery.from_embeddings(torch.randn(5, 4)).search(torch.randn(1, 4), backend='faiss')


def _vm(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'): return int(line.split()[1]) / 1024


def test_search_memory_is_bounded():
    "200 queries x 500k gallery: the full distance matrix would be 400 MB; the chunked search stays far below"
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
    except OSError: pytest.skip('needs Linux /proc/self/clear_refs to reset the peak resident set')
    g = Gallery.from_embeddings(torch.randn(500_000, 64))
    q = torch.randn(200, 64)
    g.search(q[:1])                                           # norms cached, warm
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')
    start = _vm('VmRSS')
    res = g.search(q, k=10)
    extra = _vm('VmHWM') - start
    print(f'extra peak memory {extra:.0f} MiB (full distance matrix: {200 * 500_000 * 4 / 2**20:.0f} MiB)')
    assert res.indices.shape == (200, 10) and extra < 250


def test_cli_adapt_bn(setup, capsys):
    "--adapt_bn gallery: BatchNorm statistics from the gallery crops first; a gallery saved so is searched the same way."
    s, tmp = setup, setup['tmp']
    q = [x.path for x in s['mk'].query[:2]]
    rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 3,
                              '--adapt_bn', 'gallery', '--save_gallery', tmp/'adapted.pth')
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"BatchNorm adapted on {len(s['mk'].gallery)} images of {s['crops']}", lines[0]
    rc, plain, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 3)
    assert rc == 0, err
    assert plain.splitlines() != lines[2:]                # other statistics: other distances
    # the saved gallery, searched with the same adaptation: the same results; without it: a clear refusal
    rc, again, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', tmp/'adapted.pth', '--query', *q, '--k', 3,
                                '--adapt_bn', s['crops'])
    assert rc == 0, err
    assert again.splitlines()[1:] == lines[2:]
    for args, expect in (([], 'needs the same adaptation'), (['--adapt_bn', 'gallery'], 'needs --gallery to be a folder'),
                         (['--adapt_bn', tmp/'nowhere'], "expected 'gallery' or a folder")):
        rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', tmp/'adapted.pth', '--query', *q, *args)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and expect in err, err


def test_cli_per_camera(setup, capsys):
    "--adapt_bn gallery --per_camera: every crop and query embedded with its camera's statistics, as `CameraBatchNorm`."
    from reid_nb.model import load_model, CameraBatchNorm
    from reid_nb.data import list_images, Sample, parse_market_name
    s, tmp = setup, setup['tmp']
    q = [x.path for x in s['mk'].query[:2]]
    rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 3,
                              '--adapt_bn', 'gallery', '--per_camera')
    assert rc == 0, err
    lines = out.splitlines()
    model, size = load_model(s['ckpt'])                   # the same by hand
    cbn = CameraBatchNorm(model, list_images(s['crops']), size=size, batch_size=32, progress=False)
    assert len(cbn.used) >= 2
    assert lines[0] == (f"BatchNorm adapted per camera on {sum(cbn.used.values())} images of {s['crops']} ("
                        + ', '.join(f'c{c + 1}: {n}' for c, n in cbn.used.items()) + ')'), lines[0]
    named = lambda ps: [Sample(str(p), *parse_market_name(p)) for p in ps]
    gf = cbn.features(named(list_images(s['crops'])), size=size, progress=False)
    qf = cbn.features(named(q), size=size, progress=False)
    blocks = [i for i, l in enumerate(lines) if l.startswith('query ')]
    assert len(blocks) == 2 and q[0] in lines[blocks[0]]
    for b, row in zip(blocks, distance_matrix(qf.feats, gf.feats, metric='cosine')):
        assert [l.split()[-1] for l in lines[b + 2:b + 5]] == [gf.paths[j] for j in np.argsort(row, kind='stable')[:3]]
    rc, single, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 3,
                                 '--adapt_bn', 'gallery')
    assert rc == 0 and single.splitlines()[1:] != lines[1:]   # one set of statistics: other distances
    odd = tmp/'snapshot.jpg'; shutil.copy(q[0], odd)      # a name that does not say the camera
    for args, expect in ((['--per_camera'], 'needs --adapt_bn'),
                         (['--adapt_bn', 'gallery', '--per_camera', '--save_gallery', tmp/'pc.pth'], 'not saved'),
                         (['--adapt_bn', 'gallery', '--per_camera', '--query', odd], "each query's camera from its name")):
        qa = [] if '--query' in args else ['--query', *q]
        rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], *qa, *args)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    assert not (tmp/'pc.pth').exists()


def test_cli_centre(setup, capsys):
    "--centre: the gallery's per-camera means taken out of its crops and of each query (camera from its name)."
    from reid_nb.metrics import camera_means, centre_cameras
    from reid_nb.model import load_model
    from reid_nb.data import parse_market_name
    from reid_nb.search import embed_images
    s, tmp = setup, setup['tmp']
    q = [x.path for x in s['mk'].query[:2]]
    rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', s['crops'], '--query', *q, '--k', 3,
                              '--centre', '--save_gallery', tmp/'raw.pth')
    assert rc == 0, err
    lines = out.splitlines()
    model, size = load_model(s['ckpt'])                   # the same by hand
    g = Gallery.from_folder(s['crops'], model, size=size, progress=False)
    cams, counts = np.unique(g.camids, return_counts=True)
    assert len(cams) >= 2
    assert lines[1] == ("centred per camera on the gallery's " f"{len(g)} crops ("
                        + ', '.join(f'c{c + 1}: {n}' for c, n in zip(cams, counts)) + ')'), lines[1]
    means = camera_means(g.feats, g.camids)
    gc = centre_cameras(g.feats, g.camids, means)
    qf, _ = embed_images(model, q, size)
    qc = centre_cameras(qf, [parse_market_name(p)[1] for p in q], means)
    blocks = [i for i, l in enumerate(lines) if l.startswith('query ')]
    assert len(blocks) == 2 and q[0] in lines[blocks[0]]
    for b, row in zip(blocks, distance_matrix(qc, gc, metric='cosine')):
        assert [l.split()[-1] for l in lines[b + 2:b + 5]] == [g.paths[j] for j in np.argsort(row, kind='stable')[:3]]
    # the saved gallery holds the embeddings as they were, and is centred again: the same results
    assert torch.allclose(Gallery.load(tmp/'raw.pth').feats, g.feats, atol=1e-6)
    rc, again, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', tmp/'raw.pth', '--query', *q, '--k', 3, '--centre')
    assert rc == 0 and again.splitlines() == lines[1:], err
    rc, plain, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', tmp/'raw.pth', '--query', *q, '--k', 3)
    assert rc == 0 and plain.splitlines() != lines[2:]    # without centring: other distances
    # a query whose name does not say its camera, and one from a camera the gallery has no crops of
    odd = tmp/'me.jpg'; shutil.copy(q[0], odd)
    unseen = tmp/f'0001_c{int(cams.max()) + 2}s1_000001_00.jpg'; shutil.copy(q[0], unseen)
    for query, expect in ((odd, "--centre reads each query's camera from its name"),
                          (unseen, f"--centre: the gallery has no crops from camera(s) c{int(cams.max()) + 2} of the queries")):
        rc, out, err = run_inproc(capsys, '--ckpt', s['ckpt'], '--gallery', tmp/'raw.pth', '--query', query, '--centre')
        assert rc == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
