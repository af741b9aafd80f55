"""`benchmarks/colour_probe.py`: its colour descriptor ignores brightness but not colour, its camera-bias count is
right on a hand-made ranking, and the script runs end to end on a small synthetic set."""
import importlib.util, json, os, subprocess, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}

def _probe():
    spec = importlib.util.spec_from_file_location('colour_probe', ROOT/'benchmarks'/'colour_probe.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def _person(path, top, bottom, light=1.0):
    import cv2
    img = np.full((128, 64, 3), 120, np.float32)
    img[16:64, 12:52], img[64:120, 16:48] = top, bottom
    rgb = np.clip(img*light + np.random.default_rng(0).normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), rgb[..., ::-1])
    return path

def test_descriptor_divides_out_brightness_but_keeps_colour(tmp_path):
    cp = _probe()
    red_blue = cp.chroma_stripes(_person(tmp_path/'a.png', (200, 40, 40), (40, 40, 180)))
    darker = cp.chroma_stripes(_person(tmp_path/'b.png', (200, 40, 40), (40, 40, 180), light=0.5))
    swapped = cp.chroma_stripes(_person(tmp_path/'c.png', (40, 40, 180), (200, 40, 40)))
    assert red_blue.shape == (8*16*16,) and np.isclose(np.linalg.norm(red_blue), 1)
    assert red_blue @ darker > 0.9                       # the same clothes in half the light
    assert red_blue @ swapped < red_blue @ darker - 0.3  # the same colours on other body parts

def test_same_camera_share_counts_other_people_of_the_query_camera():
    cp = _probe()
    gp, gc = np.array([1, 2, 3, 4, 5]), np.array([0, 0, 1, 1, 1])
    D = np.array([[0.0, 0.1, 0.2, 0.3, 0.4],      # query: person 1, camera 0; its own same-camera image is left out
                  [0.4, 0.3, 0.2, 0.1, 0.0]])     # query: person 9, camera 1
    top, base = cp.same_camera_share(D, np.array([1, 9]), np.array([0, 1]), gp, gc, k=2)
    # query 1: left are 2 (c0), 3, 4, 5 (c1): top 2 = persons 2 (c0) and 3 (c1) -> 1/2; c0 others in gallery: 1/4
    # query 2: top 2 = persons 5, 4 (c1) -> 2/2; c1 in gallery: 3/5
    assert np.isclose(top, (0.5 + 1.0)/2) and np.isclose(base, (1/4 + 3/5)/2)

def test_runs_on_a_synthetic_set(tmp_path):
    from reid_nb.data import make_synthetic_market
    from reid_nb.model import ReIDNet, save_checkpoint
    import torch
    counts = make_synthetic_market(tmp_path/'market', n_train_ids=2, n_test_ids=6, seed=3, size=(64, 32))
    torch.manual_seed(0)
    save_checkpoint(tmp_path/'model.pth', ReIDNet(emb_dim=32), config={'size': [64, 32]})
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'colour_probe.py'), '--data', str(tmp_path/'market'),
                        '--ckpt', str(tmp_path/'model.pth'), '--json', str(tmp_path/'res.json')],
                       capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path/'res.json').read_text())
    assert (res['query'], res['gallery']) == (counts['query_images'], counts['gallery_images'])
    for k in ('model', 'colour', 'model+colour x0.5', 'model+colour x1', 'model+colour x2'):
        assert 0 <= res[k][0] <= 100 and 0 <= res[k][1] <= 100, (k, res[k])
    assert 0 <= res['same_camera_top10'] <= 100 and 0 < res['same_camera_gallery'] < 100
    # cartoon people wear flat colours: the colour descriptor alone finds them far better than an untrained model
    assert res['colour'][0] > res['model'][0] + 10, res
    assert 'same-camera share' in r.stdout and 'colour' in r.stdout
