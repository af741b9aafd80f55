"""`reid_nb_eval` end to end on a small synthetic Market-1501 set, and its one-line errors on bad input."""
import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path
import pytest

ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
KEYS = {'rank1', 'rank5', 'rank10', 'mAP', 'mINP', 'num_query', 'num_gallery', 'num_valid_query'}

SCRIPT = Path(tempfile.mkdtemp(prefix='reid_nb_eval_cli_'))/'reid_nb_eval'

def run_cli(*args, timeout=300):
    "Run `reid_nb_eval ARGS` in a fresh interpreter, through a script shaped like the console-script wrapper."
    if not SCRIPT.exists():   # as pip's wrapper; fastcore's call_parse reads sys.argv only when called from __main__
        SCRIPT.write_text('import sys\nfrom reid_nb.cli import reid_nb_eval\nsys.exit(reid_nb_eval())\n')
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from reid_nb.data import make_synthetic_market
    from reid_nb.model import ReIDNet, save_checkpoint
    import torch
    root = tmp_path_factory.mktemp('eval')
    counts = make_synthetic_market(root/'market', n_train_ids=1, n_test_ids=6, seed=3, size=(64, 32))
    torch.manual_seed(0)
    save_checkpoint(root/'model.pth', ReIDNet(emb_dim=32), config={'size': [64, 32]})
    return root, counts

def test_end_to_end(setup):
    root, counts = setup
    r = run_cli('--data', root/'market', '--ckpt', root/'model.pth', '--json', root/'out'/'res.json',
                '--plot', root/'cmc.png', '--flip', '--batch_size', 16, '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((root/'out'/'res.json').read_text())
    assert KEYS <= set(res)
    assert res['num_query'] == counts['query_images'] and res['num_gallery'] == counts['gallery_images']
    assert 0 < res['num_valid_query'] <= res['num_query']
    for k in ('rank1', 'rank5', 'rank10', 'mAP', 'mINP'): assert 0 <= res[k] <= 1, (k, res[k])
    assert res['rank1'] <= res['rank5'] <= res['rank10']
    assert res['size'] == [64, 32] and res['flip'] is True and res['rerank'] is False
    assert 'Rank-1' in r.stdout and 'mAP' in r.stdout and f"{100*res['mAP']:.1f}%" in r.stdout
    assert (root/'cmc.png').read_bytes()[:4] == b'\x89PNG'

def test_rerank_euclidean_matches_python_api(setup, capsys):
    "Called from Python with arguments, the command runs in-process; its numbers are `eval_checkpoint`'s."
    from reid_nb.eval import eval_checkpoint
    from reid_nb.cli import reid_nb_eval
    root, _ = setup
    reid_nb_eval(['--data', str(root/'market'), '--ckpt', str(root/'model.pth'), '--json', str(root/'rr.json'), '--rerank',
                  '--metric', 'euclidean', '--device', 'cpu'])
    res = json.loads((root/'rr.json').read_text())
    ref = eval_checkpoint(root/'market', root/'model.pth', metric='euclidean', rerank=True, device='cpu')
    assert res['rerank'] is True and res['metric'] == 'euclidean'
    for k in ('rank1', 'mAP', 'mINP', 'num_valid_query'): assert res[k] == pytest.approx(ref[k], abs=1e-6)

def test_onnxruntime_backend_gives_the_same_numbers(setup, tmp_path, monkeypatch):
    "--backend onnxruntime: the same metrics as torch (embeddings agree within 1e-4)."
    from reid_nb.cli import reid_nb_eval
    root, _ = setup
    monkeypatch.setenv('REID_NB_CACHE', str(tmp_path/'cache'))
    for b in ('torch', 'onnxruntime'):
        reid_nb_eval(['--data', str(root/'market'), '--ckpt', str(root/'model.pth'), '--json', str(tmp_path/f'{b}.json'), '--backend', b])
    t, o = (json.loads((tmp_path/f'{b}.json').read_text()) for b in ('torch', 'onnxruntime'))
    for k in ('rank1', 'rank5', 'mAP', 'mINP'): assert o[k] == pytest.approx(t[k], abs=1e-6), k

def _one_line_error(r, *words):
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('reid_nb_eval: error:'), r.stderr
    for w in words: assert w in lines[0], (w, lines[0])

class _Result:
    def __init__(self, code, err): self.returncode, self.stderr = code, err

def run_inproc(capsys, **kw):
    "The command's function in this process (same error handling as the console script, no interpreter start-up)."
    from reid_nb.cli import reid_nb_eval
    capsys.readouterr()
    argv = [a for k, v in kw.items() for a in ((f'--{k}',) if v is True else (f'--{k}', str(v)))]   # True: a flag
    with pytest.raises(SystemExit) as e: reid_nb_eval(argv)
    return _Result(e.value.code, capsys.readouterr().err)

def test_bad_inputs(setup, tmp_path, capsys):
    root, _ = setup
    data, ckpt = root/'market', root/'model.pth'
    _one_line_error(run_cli('--data', data, '--ckpt', tmp_path/'nope.pth'), 'nope.pth', 'no such file')   # the real command
    (tmp_path/'notes.pth').write_text('not a checkpoint')
    _one_line_error(run_inproc(capsys, data=data, ckpt=tmp_path/'notes.pth'), 'notes.pth')
    import torch
    torch.save({'state_dict': {'w': torch.zeros(1)}}, tmp_path/'foreign.pth')
    _one_line_error(run_inproc(capsys, data=data, ckpt=tmp_path/'foreign.pth'), 'foreign.pth', 'not a reid_nb checkpoint')
    (tmp_path/'empty').mkdir()
    _one_line_error(run_inproc(capsys, data=tmp_path/'empty', ckpt=ckpt), 'empty', 'holds no known data set')
    _one_line_error(run_inproc(capsys, data=data), '--ckpt')
    _one_line_error(run_inproc(capsys, data=data, ckpt=ckpt, backbone='resnet18'), 'not both')
    _one_line_error(run_inproc(capsys, data=data, ckpt=ckpt, metric='hamming'), 'hamming')

def test_zero_valid_queries(setup, tmp_path):
    "A gallery holding only distractors: no query can be matched -> clear error, non-zero exit."
    root, _ = setup
    src, dst = root/'market', tmp_path/'nomatch'
    shutil.copytree(src/'query', dst/'query')   # no bounding_box_train/: evaluation does not need it
    (dst/'bounding_box_test').mkdir()
    for f in sorted((src/'bounding_box_test').glob('*.jpg')):
        if not f.name.startswith('-1'): shutil.copy(f, dst/'bounding_box_test'/('0000' + f.name[f.name.index('_'):]))
    _one_line_error(run_cli('--data', dst, '--ckpt', root/'model.pth'), 'none of the', 'queries has a true match')

def test_cross_domain_json_names_both_sets(setup, tmp_path):
    "A checkpoint trained on one data set, evaluated on a folder in another layout: the JSON names both sets."
    from reid_nb.data import make_synthetic_cuhk03
    from reid_nb.model import ReIDNet, save_checkpoint
    root, _ = setup
    make_synthetic_cuhk03(tmp_path/'cuhk', n_train_ids=2, n_test_ids=5, seed=4)
    save_checkpoint(tmp_path/'m.pth', ReIDNet(emb_dim=32), config={'size': [64, 32], 'data': str(root/'market')},
                    datasets={'train': 'Market1501', 'test': 'Market1501'})
    r = run_cli('--data', tmp_path/'cuhk', '--ckpt', tmp_path/'m.pth', '--json', tmp_path/'x.json', '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path/'x.json').read_text())
    assert (res['train_set'], res['test_set']) == ('Market1501', 'CUHK03-NP (detected)')
    assert 'trained on Market1501, tested on CUHK03-NP (detected)' in r.stdout and 0 <= res['mAP'] <= 1
    save_checkpoint(tmp_path/'old.pth', ReIDNet(emb_dim=32), config={'size': [64, 32], 'data': '/data/market'})
    r = run_cli('--data', tmp_path/'cuhk', '--ckpt', tmp_path/'old.pth', '--json', tmp_path/'y.json', '--device', 'cpu')
    assert json.loads((tmp_path/'y.json').read_text())['train_set'] == '/data/market'   # older checkpoints: the folder

def test_untrained_backbone_without_checkpoint(setup, tmp_path):
    "`--backbone NAME --pretrained imagenet`, no --ckpt: 'before training' is one command, seeded and repeatable."
    root, counts = setup
    args = ('--data', root/'market', '--backbone', 'tf_efficientnet_lite0', '--pretrained', 'imagenet',
            '--size', 64, 32, '--device', 'cpu')
    r1, r2 = run_cli(*args, '--json', tmp_path/'a.json'), run_cli(*args, '--json', tmp_path/'b.json')
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr[-2000:], r2.stderr[-2000:])
    a, b = (json.loads((tmp_path/f).read_text()) for f in ('a.json', 'b.json'))
    assert a['mAP'] == b['mAP'] and a['cmc'] == b['cmc']                # the head is drawn with --seed
    assert a['ckpt'] is None and a['train_set'] == 'untrained (tf_efficientnet_lite0, imagenet)'
    assert a['num_query'] == counts['query_images'] and 0 < a['mAP'] <= 1

def test_adapt_bn(setup, tmp_path, capsys):
    "--adapt_bn: BatchNorm statistics re-estimated on the named images before scoring; the JSON says on how many."
    from reid_nb.data import Market1501
    root, counts = setup
    before = (root/'model.pth').read_bytes()
    r = run_cli('--data', root/'market', '--ckpt', root/'model.pth', '--adapt_bn', 'train', '--json', tmp_path/'a.json',
                '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path/'a.json').read_text())
    assert (res['adapt_bn'], res['adapted_images']) == ('train', len(Market1501(root/'market').train))
    assert f"BatchNorm adapted on {res['adapted_images']} images (train)" in r.stdout
    assert (root/'model.pth').read_bytes() == before                       # the checkpoint is not changed
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', adapt_bn=str(tmp_path/'none')),
                    'none', "expected 'train', 'test' or a folder")
    # --per_camera: one set of statistics per camera, here from the test images (every test camera has 2 or more)
    test = Market1501(root/'market')
    r = run_cli('--data', root/'market', '--ckpt', root/'model.pth', '--adapt_bn', 'test', '--per_camera',
                '--json', tmp_path/'c.json', '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    cam = json.loads((tmp_path/'c.json').read_text())
    assert (cam['per_camera'], cam['adapted_images'], res['per_camera']) == (True, len(test.query + test.gallery), False)
    assert f"BatchNorm adapted per camera on {cam['adapted_images']} images (test)" in r.stdout
    assert cam['cmc'] != res['cmc'] or cam['mAP'] != res['mAP']
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', per_camera=True),
                    'per_camera', 'needs --adapt_bn')
    # the one training person was seen by 2 cameras: the others have no statistics, and the error names them
    train_cams = {s.camid for s in test.train}
    missing = sorted({s.camid for s in test.query + test.gallery} - train_cams)
    assert missing
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', adapt_bn='train', per_camera=True),
                    'no statistics for camera(s) ' + ', '.join(f'c{c + 1}' for c in missing))

def test_centre(setup, tmp_path, capsys):
    "--centre: each camera's mean embedding taken out before the distances; the JSON and the table say from what."
    from reid_nb.data import Market1501
    from reid_nb.eval import load_model
    from reid_nb.model import extract_features
    from reid_nb.metrics import camera_means, centre_cameras, evaluate_features
    import numpy as np, torch
    root, counts = setup
    test = Market1501(root/'market')
    r = run_cli('--data', root/'market', '--ckpt', root/'model.pth', '--centre', 'test', '--json', tmp_path/'c.json',
                '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path/'c.json').read_text())
    n = len(test.query + test.gallery)
    assert (res['centre'], res['centred_images'], res['adapt_bn']) == ('test', n, None)
    assert f"centred per camera on {n} images (test)" in r.stdout
    # the same by hand: embed, subtract each camera's mean over the query and gallery, renormalise, evaluate
    model, size = load_model(root/'model.pth')
    qf, gf = (extract_features(model, x, size=size, progress=False, device='cpu') for x in (test.query, test.gallery))
    means = camera_means(torch.cat([qf.feats, gf.feats]), np.concatenate([qf.camids, gf.camids]))
    ref = evaluate_features(centre_cameras(qf.feats, qf.camids, means), centre_cameras(gf.feats, gf.camids, means),
                            qf.pids, gf.pids, qf.camids, gf.camids)
    assert res['mAP'] == pytest.approx(ref['mAP'], abs=1e-6) and res['rank1'] == pytest.approx(ref['rank1'], abs=1e-6)
    # no --centre: the JSON says so
    reid_nb_eval_json = tmp_path/'plain.json'
    assert run_cli('--data', root/'market', '--ckpt', root/'model.pth', '--json', reid_nb_eval_json).returncode == 0
    plain = json.loads(reid_nb_eval_json.read_text())
    assert (plain['centre'], plain['centred_images']) == (None, 0)
    # bad input: a missing folder, and training images that cover only the one training person's 2 cameras
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', centre=str(tmp_path/'none')),
                    '--centre', 'none', "expected 'train', 'test' or a folder")
    missing = sorted({s.camid for s in test.query + test.gallery} - {s.camid for s in test.train})
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', centre='train'),
                    "--centre 'train'", 'no mean for camera(s) ' + ', '.join(f'c{c + 1}' for c in missing))
    odd = tmp_path/'odd'; odd.mkdir()
    for i, s in enumerate(test.gallery[:3]): shutil.copy(s.path, odd/f'snap{i}.jpg')   # names that do not say the camera
    _one_line_error(run_inproc(capsys, data=root/'market', ckpt=root/'model.pth', centre=str(odd)),
                    "--centre reads each image's camera from its name", 'snap')
