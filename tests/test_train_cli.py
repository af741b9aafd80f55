"The console scripts `reid_nb_train` and `reid_nb_demo`, run as a user would."
import json, os, shutil, subprocess, sys
from dataclasses import fields
from pathlib import Path
import pytest, torch
from reid_nb.data import make_synthetic_market
from reid_nb.train import TrainConfig

ENV = dict(os.environ, OMP_NUM_THREADS='1', NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
BIN = Path(sys.executable).parent

def script(name): return str(BIN/name) if (BIN/name).exists() else shutil.which(name)

def test_train_help_lists_every_config_field():
    r = subprocess.run([script('reid_nb_train'), '--help'], env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    missing = [f.name for f in fields(TrainConfig) if f'--{f.name}' not in r.stdout]
    assert not missing
    assert '--size H W' in r.stdout and '--resume' in r.stdout

def test_train_cli_runs_and_writes_outputs(tmp_path):
    make_synthetic_market(tmp_path/'m', n_train_ids=8, n_test_ids=4, size=(64, 32))
    r = subprocess.run([script('reid_nb_train'), '--data', str(tmp_path/'m'), '--out', str(tmp_path/'run'), '--size', '64', '32',
                        '--backbone', 'test_efficientnet', '--pretrained', 'none', '--p', '4', '--k', '4', '--epochs', '2',
                        '--max_batches_per_epoch', '2', '--num_workers', '1', '--schedule', 'step', '--milestones', '1',
                        '--no-progress'], env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {'last.pth', 'best.pth', 'metrics.jsonl', 'curves.png'} <= {p.name for p in (tmp_path/'run').iterdir()}
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final['epoch'] == 2 and 0 <= final['mAP'] <= 1
    ck = torch.load(tmp_path/'run'/'last.pth', weights_only=True)
    assert ck['config']['size'] == (64, 32) and ck['config']['milestones'] == (1,) and ck['config']['schedule'] == 'step'

def test_train_cli_bad_folder_fails_before_training(tmp_path):
    (tmp_path/'empty').mkdir()
    r = subprocess.run([script('reid_nb_train'), '--data', str(tmp_path/'empty'), '--out', str(tmp_path/'run'), '--pretrained', 'none'],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith('reid_nb_train: error: ') and 'bounding_box_train' in r.stderr
    assert not (tmp_path/'run').exists()

def test_demo_cli_short(tmp_path):
    "One short epoch (24 people; the full demo is the `#| slow` cell of 03_train): the command's outputs are all there."
    r = subprocess.run([script('reid_nb_demo'), '--out', str(tmp_path/'demo'), '--epochs', '1', '--min_steps', '4',
                        '--n_train_ids', '24'], env=ENV,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'before training' in r.stdout and 'after training' in r.stdout and 'Rank-1' in r.stdout
    assert 'tf_efficientnet_lite0 (imagenet weights)' in r.stdout and 'triplet (cosine)' in r.stdout   # the seed's model family
    assert 'data: 24 training ids' in r.stdout
    cfg = torch.load(tmp_path/'demo'/'run'/'last.pth', weights_only=False)['config']
    assert (cfg['freeze_blocks'], cfg['freeze_bn']) == (4, False)     # the demo keeps ImageNet's early blocks as they are
    assert json.loads((tmp_path/'demo'/'data'/'synthetic.json').read_text())['args']['style'] == 'photo'
    for f in ('run/curves.png', 'ranked.png', 'run/best.pth', 'run/metrics.jsonl', 'data/query'):
        assert (tmp_path/'demo'/f).exists(), f

def test_train_cli_several_sources_and_another_test_set(tmp_path):
    "`--data A --data B`: one run on both training sets (ids made disjoint), evaluated on a third layout (`--eval_data`)."
    from reid_nb.data import make_synthetic_msmt17, make_synthetic_cuhk03, load_dataset
    make_synthetic_market(tmp_path/'m', n_train_ids=6, n_test_ids=4, size=(64, 32), seed=1)
    make_synthetic_msmt17(tmp_path/'msmt', n_train_ids=5, n_test_ids=4, seed=2)
    make_synthetic_cuhk03(tmp_path/'cuhk', n_train_ids=4, n_test_ids=4, seed=3)
    n_ids = sum(load_dataset(tmp_path/d).num_train_pids for d in ('m', 'msmt'))
    r = subprocess.run([script('reid_nb_train'), '--data', str(tmp_path/'m'), '--data', str(tmp_path/'msmt'),
                        '--eval_data', str(tmp_path/'cuhk'), '--out', str(tmp_path/'run'), '--size', '64', '32',
                        '--backbone', 'test_efficientnet', '--pretrained', 'none', '--p', '4', '--k', '2', '--epochs', '1',
                        '--max_batches_per_epoch', '2', '--num_workers', '0', '--no-progress'],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = torch.load(tmp_path/'run'/'best.pth', weights_only=True)
    assert ck['config']['data'] == [str(tmp_path/'m'), str(tmp_path/'msmt')]
    assert ck['model']['classifier.weight'].shape[0] == n_ids == 11          # 6 + 5 identities, disjoint
    assert ck['datasets']['test'].startswith('CUHK03-NP') and 'MSMT17' in ck['datasets']['train']
    assert 0 <= json.loads(r.stdout.strip().splitlines()[-1])['mAP'] <= 1
