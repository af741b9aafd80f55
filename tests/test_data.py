"End-to-end checks of reid_nb.data: the data CLI, read-back counts, corrupt files met mid-epoch."
import json, os, subprocess, sys, shutil, warnings
from pathlib import Path
import numpy as np
import pytest, torch
from reid_nb.data import (Market1501, make_synthetic_market, read_image, ImageReadError, ReIDDataset, reid_collate,
                          PKSampler, test_tfms, Sample)

ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'MPLBACKEND': 'Agg'}

def _cli(*args):
    exe = shutil.which('reid_nb_data')
    cmd = [exe] if exe else [sys.executable, '-c', 'from reid_nb.cli import reid_nb_data; reid_nb_data()']
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=ENV, timeout=300)

def test_cli_writes_market_layout(tmp_path):
    out = tmp_path/'syn'
    r = _cli('--out', str(out), '--n_train_ids', '6', '--n_test_ids', '5', '--seed', '3')
    assert r.returncode == 0, r.stderr
    for d in ('bounding_box_train', 'query', 'bounding_box_test'): assert (out/d).is_dir()
    assert (out/'sample_grid.png').stat().st_size > 1000
    png = (out/'sample_grid.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    # the stats table is printed, and its numbers are what Market1501 reads back
    assert '# ids | # images | # cameras' in r.stdout
    counts = json.loads((out/'synthetic.json').read_text())['counts']
    mk = Market1501(out)
    assert f"  train    | {6:5d} | {counts['train_images']:8d} |" in r.stdout
    assert len(mk.train) == counts['train_images'] and mk.num_train_pids == 6
    assert len(mk.query) == counts['query_images'] and len({s.pid for s in mk.query}) == 5
    assert len(mk.gallery) == counts['gallery_images']
    assert len(list((out/'bounding_box_test').glob('-1_*.jpg'))) == counts['junk'] > 0
    # running it again is a no-op; different arguments on a full folder need --overwrite
    r2 = _cli('--out', str(out), '--n_train_ids', '6', '--n_test_ids', '5', '--seed', '3')
    assert r2.returncode == 0, r2.stderr
    r3 = _cli('--out', str(out), '--n_train_ids', '7', '--n_test_ids', '5')
    assert r3.returncode != 0 and 'overwrite' in r3.stderr
    r4 = _cli('--out', str(out), '--n_train_ids', '7', '--n_test_ids', '5', '--overwrite')
    assert r4.returncode == 0, r4.stderr
    assert Market1501(out).num_train_pids == 7

def test_default_synthetic_counts_read_back(tmp_path):
    c = make_synthetic_market(tmp_path)
    mk = Market1501(tmp_path)
    got = mk.counts()
    for k in ('train_ids', 'train_images', 'query_ids', 'query_images', 'gallery_ids', 'gallery_images'):
        assert got[k] == c[k], k
    assert mk.num_cams == c['cameras'] == 6
    assert sum(s.pid == 0 for s in mk.gallery) == c['distractors']
    # every query has a true match in another camera (the protocol would skip it otherwise)
    gal = {(s.pid, s.camid) for s in mk.gallery}
    assert all(any(p == q.pid and cam != q.camid for p, cam in gal) for q in mk.query)

def test_missing_root_names_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as e: Market1501(tmp_path/'nowhere')
    assert 'nowhere' in str(e.value) and 'bounding_box_test/' in str(e.value)

@pytest.mark.parametrize('kind', ['truncated', 'empty', 'garbage', 'missing'])
def test_corrupt_image_in_training_loop(tmp_path, kind):
    make_synthetic_market(tmp_path/'m', 4, 3, seed=0)
    mk = Market1501(tmp_path/'m')
    victim = Path(mk.train[5].path)
    data = victim.read_bytes()
    if kind == 'truncated': victim.write_bytes(data[:len(data)*2//3])
    elif kind == 'empty': victim.write_bytes(b'')
    elif kind == 'garbage': victim.write_bytes(os.urandom(500))
    else: victim.unlink()
    with pytest.raises(ImageReadError) as e: read_image(victim)
    assert victim.name in str(e.value)
    # without skip_bad the loop dies naming the file; with it, the epoch goes on and the path is reported
    dl = torch.utils.data.DataLoader(ReIDDataset(mk.train, test_tfms((32, 16))), batch_size=8, collate_fn=reid_collate)
    with pytest.raises(ImageReadError, match=victim.name): list(dl)
    ds = ReIDDataset(mk.train, test_tfms((32, 16)), skip_bad=True)
    dl = torch.utils.data.DataLoader(ds, batch_sampler=PKSampler(mk.train, p=2, k=4, seed=1), collate_fn=reid_collate)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        n = sum(len(b[3]) for b in dl if b is not None)
    assert ds.bad_paths and set(ds.bad_paths) == {str(victim)}
    assert any(victim.name in str(x.message) for x in w)
    assert n == len(PKSampler(mk.train, p=2, k=4)) * 8 - len(ds.bad_paths)

def test_corrupt_image_in_worker_process(tmp_path):
    make_synthetic_market(tmp_path/'m', 3, 3, seed=0)
    mk = Market1501(tmp_path/'m')
    victim = Path(mk.train[2].path); victim.write_bytes(victim.read_bytes()[:100])
    dl = torch.utils.data.DataLoader(ReIDDataset(mk.train, test_tfms((32, 16))), batch_size=4, num_workers=1,
                                     collate_fn=reid_collate)
    with pytest.raises(ImageReadError, match=victim.name): list(dl)
