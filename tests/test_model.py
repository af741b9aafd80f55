"End-to-end checks of reid_nb.model beyond the notebook: hub failure modes, other backbones, workers, bad images, wrappers."
import json, os, subprocess, sys, textwrap, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from reid_nb.data import Market1501, ReIDDataset, make_synthetic_market, test_tfms
from reid_nb.model import (CheckpointError, PretrainedWeightsError, ReIDNet, extract_features, load_checkpoint,
                           load_pretrained, save_checkpoint)

ROOT = Path(__file__).resolve().parents[1]
SIZE = (64, 32)


def run_py(code, env_extra, drop=(), timeout=300):
    "Run `code` in a fresh interpreter (hub settings are read at import), return (rc, stdout, stderr)."
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra)
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    p = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


IMAGENET = '''
    import time, json
    from reid_nb.model import ReIDNet, PretrainedWeightsError
    t0 = time.time()
    try: ReIDNet(pretrained='imagenet'); print(json.dumps({'ok': True}))
    except PretrainedWeightsError as e: print(json.dumps({'ok': False, 'secs': time.time() - t0, 'msg': str(e)}))
'''


@pytest.mark.parametrize('mode', ['HF_HUB_OFFLINE=1', 'hub unreachable'])
def test_imagenet_fails_fast_without_network(tmp_path, mode):
    # An empty cache; either the offline flag, or an endpoint where nothing listens (the hub client alone would
    # retry for ~45 s there). The call must give up within seconds and say how to pass a local file.
    env = {'HF_HOME': str(tmp_path/'hf'), 'TORCH_HOME': str(tmp_path/'torch')}
    if mode == 'HF_HUB_OFFLINE=1': env['HF_HUB_OFFLINE'] = '1'
    else: env['HF_ENDPOINT'] = 'http://127.0.0.1:9'
    rc, out, err = run_py(IMAGENET, env, drop=() if mode == 'HF_HUB_OFFLINE=1' else ('HF_HUB_OFFLINE',))
    assert rc == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    assert r['ok'] is False
    assert r['secs'] < 15, f"took {r['secs']:.1f} s to fail"
    assert "pretrained='weights/model.safetensors'" in r['msg'] and 'timm/efficientnet_b0' in r['msg']
    assert ('HF_HUB_OFFLINE is set' if mode == 'HF_HUB_OFFLINE=1' else 'cannot be reached') in r['msg']
    assert 'Retry' not in err


def test_imagenet_from_hub_cache_offline(tmp_path):
    # Weights already in the Hugging Face cache load with no network at all.
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(3)
    ref = timm.create_model('efficientnet_b0')
    repo = timm.create_model('efficientnet_b0', pretrained=False).pretrained_cfg['hf_hub_id']
    d = tmp_path/'hf'/'hub'/f"models--{repo.replace('/', '--')}"
    rev = 'a' * 40
    (d/'refs').mkdir(parents=True); (d/'refs'/'main').write_text(rev)
    (d/'snapshots'/rev).mkdir(parents=True)
    save_file(ref.state_dict(), str(d/'snapshots'/rev/'model.safetensors'))
    torch.save(ref.state_dict(), tmp_path/'ref.pth')
    rc, out, err = run_py(f'''
        import torch
        from reid_nb.model import ReIDNet
        m = ReIDNet(pretrained='imagenet')
        ref = torch.load({str(tmp_path/'ref.pth')!r}, weights_only=True)
        print(all(torch.equal(v, ref[k]) for k, v in m.backbone.state_dict().items()))
    ''', {'HF_HOME': str(tmp_path/'hf'), 'HF_HUB_OFFLINE': '1'})
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == 'True'


@pytest.mark.parametrize('backbone,kwargs', [('resnet18', {}), ('mobilenetv3_small_050', {}),   # conv head after the pool
                                             ('vit_tiny_patch16_224', {'img_size': SIZE}),      # (B, N, C) tokens
                                             ('swin_tiny_patch4_window7_224', {'img_size': SIZE, 'window_size': 2})])  # NHWC maps
def test_other_backbones(backbone, kwargs):
    # CNN feature maps, ViT token sequences and Swin's channels-last maps all pool to one vector.
    m = ReIDNet(backbone, emb_dim=32, num_classes=3, pool='gem', backbone_kwargs=kwargs)
    x = torch.randn(2, 3, *SIZE)
    feat, logits = m.train()(x)
    assert feat.shape == (2, 32) and logits.shape == (2, 3)
    e = m.eval()(x)
    assert e.shape == (2, 32) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)


def test_load_pretrained_from_reidnet_checkpoint_and_wrong_arch(tmp_path):
    torch.manual_seed(0)
    src = ReIDNet(num_classes=4)
    p = save_checkpoint(tmp_path/'ck.pth', src, epoch=1)
    dst = ReIDNet()
    r = load_pretrained(dst, p)                       # only the backbone part of a whole ReIDNet checkpoint
    assert not (r.missing or r.unexpected or r.mismatched)
    assert all(torch.equal(v, src.backbone.state_dict()[k]) for k, v in dst.backbone.state_dict().items())
    with pytest.raises(PretrainedWeightsError, match='ck.pth'):
        load_pretrained(ReIDNet('resnet18'), p)      # nothing matches another architecture


@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp('market')
    make_synthetic_market(root, n_train_ids=3, n_test_ids=4, seed=1)
    return Market1501(root)


def test_extract_features_workers_and_bad_images(market, tmp_path):
    samples = list(market.gallery[:12])
    bad = tmp_path/'0001_c1s1_000001_00.jpg'
    bad.write_bytes(open(samples[0].path, 'rb').read()[:100])    # truncated JPEG
    samples.insert(5, samples[0]._replace(path=str(bad)))
    torch.manual_seed(0)
    model = ReIDNet().eval()
    ds = ReIDDataset(samples, test_tfms(SIZE), skip_bad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        f2 = extract_features(model, ds, batch_size=4, num_workers=2, progress=False)
    assert any(str(bad) in str(x.message) and 'left out' in str(x.message) for x in w)
    good = [s for s in samples if s.path != str(bad)]
    assert f2.paths == [str(s.path) for s in good]
    assert f2.pids.tolist() == [s.pid for s in good] and f2.camids.tolist() == [s.camid for s in good]
    f0 = extract_features(model, good, batch_size=5, size=SIZE, progress=False)
    assert torch.allclose(f0.feats, f2.feats, atol=1e-5)
    assert f0.pids.dtype == np.int64 and f0.feats.dtype == torch.float32


def test_checkpoint_of_wrapped_model_and_errors(tmp_path):
    torch.manual_seed(0)
    model = ReIDNet(emb_dim=64)
    p = save_checkpoint(tmp_path/'w.pth', nn.DataParallel(model), config={'size': SIZE})   # wrapper is unwrapped
    ck = load_checkpoint(p)
    assert not any(k.startswith('module.') for k in ck['model']) and ck['config'] == {'size': SIZE}
    m2 = ReIDNet.from_checkpoint(p)
    x = torch.randn(2, 3, *SIZE)
    assert torch.allclose(m2(x), model.eval()(x), atol=1e-6)
    with pytest.raises(FileNotFoundError, match='missing.pth'): load_checkpoint(tmp_path/'missing.pth')
    bare = save_checkpoint(tmp_path/'bare.pth', nn.Linear(2, 2))                     # no model_args
    with pytest.raises(CheckpointError, match='model_args'): ReIDNet.from_checkpoint(bare)
    with pytest.raises(ValueError, match='clash'): save_checkpoint(tmp_path/'c.pth', model, model_args={})
    (tmp_path/'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match='empty.pth'): load_checkpoint(tmp_path/'empty.pth')


def test_bench_extract_runs():
    rc, out, err = run_py(f'''
        import sys, runpy
        sys.argv = ['bench_extract.py', '--n', '6', '--batch-size', '3', '--size', '64', '32', '--repeats', '1', '--workers', '1', '--ids', '2']
        runpy.run_path({str(ROOT/'benchmarks'/'bench_extract.py')!r}, run_name='__main__')
    ''', {})
    assert rc == 0, err
    assert 'speed-up of extract_features over the naive loop' in out and 'GFLOP per image' in out
