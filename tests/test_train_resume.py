"A training process killed with SIGKILL and resumed ends with the same weights as an uninterrupted run (CPU)."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from reid_nb.data import make_synthetic_market

EPOCHS = 4
ARGS = ['--size', '64', '32', '--backbone', 'test_efficientnet', '--pretrained', 'none', '--emb_dim', '64',
        '--p', '4', '--k', '4', '--epochs', str(EPOCHS), '--max_batches_per_epoch', '3', '--num_workers', '0',
        '--no-progress', '--seed', '3']
ENV = dict(os.environ, OMP_NUM_THREADS='1', NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')

@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp('market')
    make_synthetic_market(root, n_train_ids=8, n_test_ids=4, size=(64, 32), seed=0)
    return root

def cmd(market, out, *extra): return [sys.executable, '-m', 'reid_nb.cli', 'train', '--data', str(market), '--out', str(out), *ARGS, *extra]

def n_lines(path): return len(path.read_text().splitlines()) if path.exists() else 0

def kill_after(market, out, n_epochs, *extra, timeout=300):
    "Start a run, SIGKILL it as soon as `n_epochs` metrics lines exist (so mid-checkpoint or early in the next epoch)."
    p = subprocess.Popen(cmd(market, out, *extra), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while n_lines(out/'metrics.jsonl') < n_epochs:
        if p.poll() is not None: pytest.fail(f"training exited early ({p.returncode}): {p.stderr.read().decode()[-2000:]}")
        if time.time() - t0 > timeout: p.kill(); pytest.fail("training too slow")
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait(); p.stderr.close()
    assert p.returncode == -signal.SIGKILL

def weights(out): return torch.load(out/'last.pth', weights_only=True)

def test_sigkill_and_resume_give_the_uninterrupted_weights(market, tmp_path):
    full = tmp_path/'full'
    subprocess.run(cmd(market, full), env=ENV, check=True, capture_output=True)
    ref = weights(full)
    assert ref['epoch'] == EPOCHS

    run = tmp_path/'killed'
    kill_after(market, run, 1)                              # killed once right after epoch 1 is logged ...
    assert (run/'metrics.jsonl').exists()
    kill_after(market, run, 3, '--resume')                  # ... and again, resumed, once epoch 3 is logged
    # what a kill in the middle of writing leaves behind: a checkpoint temp file and a torn log line
    (run/'.last.pth.dead0001.tmp').write_bytes(b'\x80\x02partial')
    with open(run/'metrics.jsonl', 'a') as f: f.write('{"epoch": 9, "lo')
    r = subprocess.run(cmd(market, run, '--resume'), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from' in r.stdout

    got = weights(run)
    assert got['epoch'] == EPOCHS
    assert got['model'].keys() == ref['model'].keys()
    diff = [k for k in ref['model'] if not torch.equal(ref['model'][k], got['model'][k])]
    assert not diff, f"weights differ after kill+resume: {diff[:5]}"
    for key in ('exp_avg', 'exp_avg_sq'):                    # the optimizer state too
        for i, st in ref['optimizer']['state'].items(): assert torch.equal(st[key], got['optimizer']['state'][i][key])
    log_ref = [json.loads(l) for l in (full/'metrics.jsonl').read_text().splitlines()]
    log_got = [json.loads(l) for l in (run/'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in log_got] == list(range(1, EPOCHS + 1))   # no duplicated or torn lines
    assert [r['loss'] for r in log_got] == [r['loss'] for r in log_ref]
    assert [r['mAP'] for r in log_got] == [r['mAP'] for r in log_ref]
    assert not list(run.glob('.*.tmp'))

def test_resume_without_checkpoint_starts_from_scratch(market, tmp_path):
    r = subprocess.run(cmd(market, tmp_path/'fresh', '--resume', '--epochs', '1'), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'starting from scratch' in r.stdout
    assert torch.load(tmp_path/'fresh'/'last.pth', weights_only=True)['epoch'] == 1
