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

# ---- MSMT17, CUHK03-NP, load_dataset, several sources (issue #16)
from reid_nb.data import (MSMT17, CUHK03, load_dataset, combine_datasets, MultiSource, make_synthetic_msmt17,
                          make_synthetic_cuhk03)

KEYS = ('train_ids', 'train_images', 'query_ids', 'query_images', 'gallery_ids', 'gallery_images')

@pytest.mark.parametrize('version', ['V1', 'V2'])
def test_msmt17_reads_back_generated_counts(tmp_path, version):
    c = make_synthetic_msmt17(tmp_path, n_train_ids=5, n_test_ids=4, seed=2, version=version, size=(32, 16))
    ds = load_dataset(tmp_path)
    assert isinstance(ds, MSMT17) and ds.version == version and ds.root.name == f'MSMT17_{version}'
    assert {k: ds.counts()[k] for k in KEYS} == {k: c[k] for k in KEYS}
    assert ds.num_train_pids == 5 and sorted({s.pid for s in ds.train}) == list(range(5))
    assert all(0 <= s.camid < 15 for s in ds.train + ds.query + ds.gallery)
    assert len(MSMT17(tmp_path, with_val=False).train) == c['train_images'] - c['val_images']

def test_msmt17_broken_lists_name_file_and_line(tmp_path):
    make_synthetic_msmt17(tmp_path, n_train_ids=3, n_test_ids=3, seed=0, size=(32, 16))
    top = tmp_path/'MSMT17_V1'
    lines = (top/'list_query.txt').read_text().splitlines()
    (top/'list_query.txt').write_text('\n'.join(lines[:2] + ['just_a_path.jpg'] + lines[2:]) + '\n')
    with pytest.raises(ValueError, match=r'list_query.txt, line 3'): MSMT17(tmp_path)
    (top/'list_query.txt').write_text('\n'.join(lines) + '\n')
    Path(top/'test'/lines[0].split()[0]).unlink()
    with pytest.raises(FileNotFoundError, match='line 1: ' + lines[0].split()[0]): MSMT17(tmp_path)
    assert len(MSMT17(tmp_path, splits=('train',)).train) > 0      # training reads no test list
    (top/'list_val.txt').unlink()
    with pytest.raises(FileNotFoundError, match='list_val.txt'): MSMT17(tmp_path, splits=('train',))

@pytest.mark.parametrize('labeled', [False, True])
def test_cuhk03_reads_back_generated_counts(tmp_path, labeled):
    c = make_synthetic_cuhk03(tmp_path, n_train_ids=4, n_test_ids=3, seed=1, labeled=labeled, size=(32, 16))
    for root in (tmp_path, tmp_path/'cuhk03-np', tmp_path/'cuhk03-np'/('labeled' if labeled else 'detected')):
        ds = load_dataset(root, labeled=labeled)
        assert isinstance(ds, CUHK03) and ds.labeled == labeled
        assert {k: ds.counts()[k] for k in KEYS} == {k: c[k] for k in KEYS} and ds.num_cams == 2

def test_cuhk03_bad_name_reported(tmp_path):
    make_synthetic_cuhk03(tmp_path, n_train_ids=3, n_test_ids=3, seed=1, size=(32, 16))
    gal = tmp_path/'cuhk03-np'/'detected'/'bounding_box_test'
    shutil.copy(next(gal.glob('*.png')), gal/'0001_c3.png')
    with pytest.warns(UserWarning, match='0001_c3.png'): ds = CUHK03(tmp_path)
    assert [Path(b).name for b in ds.bad_names] == ['0001_c3.png']
    with pytest.raises(ValueError, match='0001_c3.png'): CUHK03(tmp_path, strict=True)

def test_load_dataset_unknown_folder_one_line(tmp_path):
    (tmp_path/'train').mkdir()
    with pytest.raises(ValueError) as e: load_dataset(tmp_path)
    msg = str(e.value)
    assert '\n' not in msg and str(tmp_path) in msg
    assert all(w in msg for w in ('Market-1501', 'MSMT17', 'CUHK03-NP', 'list_query.txt', 'detected/'))

def test_combine_datasets_keeps_sources_apart(tmp_path):
    cm = make_synthetic_market(tmp_path/'m', 4, 3, seed=0, size=(32, 16))
    make_synthetic_msmt17(tmp_path/'s', 3, 3, seed=0, size=(32, 16))
    make_synthetic_cuhk03(tmp_path/'c', 2, 3, seed=0, size=(32, 16))
    srcs = [load_dataset(tmp_path/d) for d in 'msc']
    both = combine_datasets([tmp_path/d for d in 'msc'], target=2)
    assert both.num_train_pids == sum(s.num_train_pids for s in srcs) == 9
    assert sorted({s.pid for s in both.train}) == list(range(9))
    parts, i = [], 0
    for s, (p0, c0) in zip(srcs, both.offsets.values()):
        part = both.train[i:i + len(s.train)]
        assert [(x.path, x.pid - p0, x.camid - c0) for x in part] == [tuple(x) for x in s.train]
        parts.append(part)
        i += len(s.train)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not {x.pid for x in parts[a]} & {x.pid for x in parts[b]}
            assert not {x.camid for x in parts[a]} & {x.camid for x in parts[b]}
    assert [(q.pid, q.camid - both.offsets['CUHK03-NP (detected)'][1]) for q in both.query] == \
           [(q.pid, q.camid) for q in srcs[2].query]
    assert len(MultiSource(srcs[:2]).query) == 0 and cm['train_ids'] == 4
