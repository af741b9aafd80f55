"""`torchrun --nproc_per_node=2 -m reid_nb.cli train` on CPU (gloo): both ranks end with identical parameters, and the loss
matches a single-process run on the same global batches.

Why they can match: `train` splits each global P×K batch over the ranks (`RankShare`) and, with `global_mining`,
mines over the all-gathered embeddings, so each step sees and optimises the single-process loss. What would still
differ per rank is BatchNorm's batch statistics (gloo has no SyncBatchNorm), so the run uses a GroupNorm backbone
(`test_efficientnet_gn`), no ID loss (the BNNeck's statistics would feed the classifier) and no augmentation.
Tolerances (see nbs/03_train.ipynb, "Distributed training"): the losses agree to rtol 1e-4 (float32 summation
order: ~1e-7 per step); parameters to atol 2*lr*steps (Adam moves a weight at most ~lr per step, and the embedding
bias has a true gradient of 0, so its steps follow rounding noise).
"""
import json, os, subprocess, sys
import pytest, torch
from reid_nb.data import make_synthetic_market

EPOCHS, STEPS, LR = 2, 3, 3.5e-4
ARGS = ['--size', '64', '32', '--backbone', 'test_efficientnet_gn', '--pretrained', 'none', '--emb_dim', '64',
        '--p', '4', '--k', '4', '--epochs', str(EPOCHS), '--max_batches_per_epoch', str(STEPS), '--num_workers', '0',
        '--lr', str(LR), '--no-progress', '--no-augment', '--no-id_loss', '--rank_hashes', '--seed', '1']
ENV = dict(os.environ, OMP_NUM_THREADS='1', NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    market = tmp/'market'
    make_synthetic_market(market, n_train_ids=8, n_test_ids=4, size=(64, 32), seed=0)
    common = ['--data', str(market), *ARGS]
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',   # = torchrun
                          '-m', 'reid_nb.cli', '--', 'train', *common, '--out', str(tmp/'ddp')], env=ENV, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-4000:]
    one = subprocess.run([sys.executable, '-m', 'reid_nb.cli', 'train', *common, '--out', str(tmp/'one')], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-4000:]
    return tmp, ddp

def log(path): return [json.loads(l) for l in path.read_text().splitlines()]

def test_ranks_end_with_identical_parameters(runs):
    tmp, _ = runs
    h0, h1 = [(tmp/'ddp'/f'weights_rank{r}.sha256').read_text().split() for r in (0, 1)]
    assert h0[0] == h1[0]                                    # parameters: bit-identical on both ranks
    assert not (tmp/'ddp'/'weights_rank2.sha256').exists()

def test_only_rank0_writes_and_logs(runs):
    tmp, ddp = runs
    assert sorted(p.name for p in (tmp/'ddp').iterdir()) == ['.lock', 'best.pth', 'curves.png', 'last.pth', 'metrics.jsonl',
                                                            'weights_rank0.sha256', 'weights_rank1.sha256']
    assert [r['epoch'] for r in log(tmp/'ddp'/'metrics.jsonl')] == list(range(1, EPOCHS + 1))
    assert ddp.stdout.count('epoch   1 ') == 1                # one progress line per epoch, from rank 0 only

def test_loss_and_weights_match_single_process(runs):
    tmp, _ = runs
    ddp, one = log(tmp/'ddp'/'metrics.jsonl'), log(tmp/'one'/'metrics.jsonl')
    for a, b in zip(ddp, one):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-4), (a, b)
        assert a['frac_active'] == pytest.approx(b['frac_active'], abs=1e-6)
    wd = torch.load(tmp/'ddp'/'last.pth', weights_only=True)['model']
    w1 = torch.load(tmp/'one'/'last.pth', weights_only=True)['model']
    params = [k for k in w1 if 'running_' not in k and 'num_batches' not in k]   # buffers: rank 0's local BN statistics
    worst = max((wd[k].float() - w1[k].float()).abs().max().item() for k in params)
    assert worst <= 2*LR*EPOCHS*STEPS, worst

def test_global_mining_matters(runs, tmp_path):
    "Mining on each rank's half-batch is a different loss: the comparison above would catch it."
    tmp, _ = runs
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'reid_nb.cli', '--', 'train',
                        '--data', str(tmp/'market'), *ARGS, '--epochs', '1', '--no-global_mining', '--out', str(tmp_path/'local')],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    local, one = log(tmp_path/'local'/'metrics.jsonl')[0], log(tmp/'one'/'metrics.jsonl')[0]
    assert local['loss'] != pytest.approx(one['loss'], rel=1e-3)
