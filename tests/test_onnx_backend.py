"The ONNX Runtime backend of `extract_features`, `embed_images` and `Gallery`: same embeddings as PyTorch, its caches, its errors."
import os, shutil, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch

from reid_nb.data import make_synthetic_market, Market1501, ReIDDataset, test_tfms, ImageReadError
from reid_nb import model as M
from reid_nb.model import ReIDNet, extract_features, ort_session, onnx_cache_dir
from reid_nb.search import Gallery, embed_images, model_fingerprint

SIZE = (64, 32)
pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('onnx_backend')
    make_synthetic_market(tmp/'market', n_train_ids=2, n_test_ids=4, seed=0)
    mk = Market1501(tmp/'market')
    crops = tmp/'crops'; crops.mkdir()
    for s in mk.gallery: shutil.copy(s.path, crops)
    torch.manual_seed(0)
    model = ReIDNet('test_efficientnet', emb_dim=16).eval()
    for m in model.modules():                              # BN statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d): m.running_mean.normal_(0, 0.2); m.running_var.uniform_(0.5, 2)
    return tmp, mk, crops, model


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    "Every test exports into its own cache folder, with no session kept from an earlier test."
    monkeypatch.setenv('REID_NB_CACHE', str(tmp_path/'cache'))
    M._ORT_SESSIONS.clear()
    yield
    M._ORT_SESSIONS.clear()


def test_fingerprint_is_search_s(setup):
    "The fingerprint naming cached files is the one galleries store: one function, `reid_nb.model.model_fingerprint`."
    *_, model = setup
    assert M.model_fingerprint is model_fingerprint
    assert M.model_fingerprint(ReIDNet('test_efficientnet', emb_dim=16)) != model_fingerprint(model)


@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('workers', [0, 2])
def test_same_features_as_torch(setup, flip, workers):
    tmp, mk, crops, model = setup
    kw = dict(batch_size=7, size=SIZE, progress=False, flip=flip)
    ft = extract_features(model, mk.gallery, **kw)
    fo = extract_features(model, mk.gallery, backend='onnxruntime', num_workers=workers, **kw)
    assert (fo.feats - ft.feats).abs().max() < 1e-4
    assert torch.allclose(fo.feats.norm(dim=1), torch.ones(len(fo.feats)), atol=1e-5)
    assert (fo.pids == ft.pids).all() and (fo.camids == ft.camids).all() and fo.paths == ft.paths
    assert model.training is False and sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 0  # untouched


def test_cache_file_and_session(setup):
    tmp, mk, crops, model = setup
    s1 = ort_session(model, SIZE)
    path = onnx_cache_dir()/f'{model_fingerprint(model)}_{SIZE[0]}x{SIZE[1]}.onnx'
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]   # no temp file left
    assert ort_session(model, SIZE) is s1                                               # kept in the process
    mtime = path.stat().st_mtime_ns
    M._ORT_SESSIONS.clear()
    ort_session(model, SIZE); assert path.stat().st_mtime_ns == mtime                   # read back, not exported again
    ort_session(model, (32, 16)); assert len(list(path.parent.iterdir())) == 2          # one file per size


def test_damaged_or_stale_cache_is_exported_again(setup):
    tmp, mk, crops, model = setup
    ref = extract_features(model, mk.query, size=SIZE, progress=False).feats
    path = onnx_cache_dir()/f'{model_fingerprint(model)}_{SIZE[0]}x{SIZE[1]}.onnx'
    path.parent.mkdir(parents=True); path.write_bytes(b'\x08\x07 half an onnx file')
    assert (extract_features(model, mk.query, size=SIZE, progress=False, backend='onnxruntime').feats - ref).abs().max() < 1e-4
    M._ORT_SESSIONS.clear()                                # a file with this name but another model in it (stale)
    M.export_onnx(ReIDNet('test_efficientnet', emb_dim=16).eval(), path, SIZE)
    assert (extract_features(model, mk.query, size=SIZE, progress=False, backend='onnxruntime').feats - ref).abs().max() < 1e-4


def test_unreadable_images(setup):
    tmp, mk, crops, model = setup
    bad = tmp/'bad.jpg'; bad.write_bytes(b'not a jpeg')
    samples = mk.query[:3] + [mk.query[0]._replace(path=bad)] + mk.query[3:6]
    with pytest.raises(ImageReadError):
        extract_features(model, samples, size=SIZE, progress=False, backend='onnxruntime', batch_size=2)
    with warnings.catch_warnings(record=True) as w:          # raised in a decoding thread, summed up at the end
        warnings.simplefilter('always')
        fo = extract_features(model, ReIDDataset(samples, test_tfms(SIZE), skip_bad=True), progress=False,
                              backend='onnxruntime', batch_size=2)
    assert [str(x.message)[:18] for x in w] == ['skipping bad image', 'extract_features: ']
    assert len(fo.feats) == 6 and '3' not in fo.paths


def test_embed_images_and_gallery(setup):
    tmp, mk, crops, model = setup
    paths = sorted(crops.iterdir())
    arr = np.zeros((40, 20, 3), np.uint8)
    ft, kt = embed_images(model, paths[:5] + [arr], SIZE, batch_size=4)
    fo, ko = embed_images(model, paths[:5] + [arr], SIZE, batch_size=4, backend='onnxruntime')
    assert ko == kt == list(range(6)) and (fo - ft).abs().max() < 1e-4
    bad = tmp/'bad2.jpg'; bad.write_bytes(b'')
    with pytest.warns(UserWarning, match='skipping unreadable image'):
        fo, ko = embed_images(model, [paths[0], bad, paths[1]], SIZE, skip_bad=True, backend='onnxruntime')
    assert ko == [0, 2] and fo.shape == (2, 16)
    with pytest.warns(UserWarning):
        fo, ko = embed_images(model, [bad], SIZE, skip_bad=True, backend='onnxruntime')
    assert ko == [] and fo.shape == (0, 16)
    assert embed_images(model, [], SIZE, backend='onnxruntime')[0].shape == (0, 16)

    gt = Gallery.from_folder(crops, model, size=SIZE)
    go = Gallery.from_folder(crops, model, size=SIZE, backend='onnxruntime')
    assert go.paths == gt.paths and go.fingerprint == gt.fingerprint and (go.feats - gt.feats).abs().max() < 1e-4
    go.add(paths[:2]); gt.add(paths[:2], backend='onnxruntime')                    # the gallery's backend / given one
    assert len(go) == len(gt) and (go.feats - gt.feats).abs().max() < 1e-4
    f = go.save(tmp/'g.pt')
    gl = Gallery.load(f, model=model, size=SIZE, backend='onnxruntime')
    assert gl.backend == 'onnxruntime' and len(gl.add(paths[:1])) == len(go) + 1
    assert (gl.feats[-1] - gt.feats[0]).abs().max() < 1e-4


def test_bad_backend_and_device(setup):
    tmp, mk, crops, model = setup
    with pytest.raises(ValueError, match="'torch' or 'onnxruntime'"):
        extract_features(model, mk.query, size=SIZE, progress=False, backend='onnx')
    with pytest.raises(ValueError, match='runs on the CPU'):
        extract_features(model, mk.query, size=SIZE, progress=False, backend='onnxruntime', device='cuda')


@pytest.mark.parametrize('missing', ['onnxruntime', 'onnx'])
def test_missing_package_says_what_to_install(setup, missing):
    "Without onnxruntime (or onnx, which the export needs): a one-sentence ImportError naming the pip command."
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            "from reid_nb.model import ReIDNet, extract_features\n"
            "import reid_nb.search\n"                      # importing the library needs neither
            "try: extract_features(ReIDNet('test_efficientnet', emb_dim=8), [], backend='onnxruntime')\n"
            "except ImportError as e: print(repr(str(e)))\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, 'PYTHONPATH': str(Path(M.__file__).parents[1])})
    msg = eval(r.stdout.strip().splitlines()[-1])
    assert msg == (f"backend='onnxruntime' needs the onnxruntime and onnx packages ({missing} is missing): "
                   "pip install onnxruntime onnx"), (msg, r.stderr[-2000:])
