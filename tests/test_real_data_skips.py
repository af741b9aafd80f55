"Whatever reads a real data set (../shared/data, research use only) skips cleanly when the folder is not there."
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}

@pytest.mark.parametrize('script, args', [
    ('real_data.py', ['--data', '{missing}']),
    ('peer_torchreid.py', ['--data', '{missing}', '--out', '{tmp}/peer']),
    ('train_ablation.py', ['--data', '{missing}', '--runs', 'lite0', '--out', '{tmp}/abl']),
    ('colour_probe.py', ['--data', '{missing}', '--ckpt', '{tmp}/none.pth']),
])
def test_benchmark_skips_missing_real_data(script, args, tmp_path):
    missing = tmp_path/'no'/'such'/'cuhk01'
    argv = [a.format(missing=missing, tmp=tmp_path) for a in args]
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/script), *argv], capture_output=True, text=True,
                       env=ENV, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'skipped' in r.stdout and str(missing) in r.stdout, r.stdout[-2000:]
    assert not (tmp_path/'peer'/'torchreid_lr0.0003').exists()          # nothing was trained

def test_eval_command_names_a_missing_real_folder(tmp_path):
    "The user's own command on a missing folder: one line naming it, exit code 2, no traceback."
    r = subprocess.run([sys.executable, '-m', 'reid_nb.cli', 'eval', '--data', str(tmp_path/'cuhk01'),
                        '--backbone', 'tf_efficientnet_lite0'], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert 'cuhk01' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
