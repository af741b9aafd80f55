"""Controlled training runs: the same loop, data and budget, one setting changed at a time.

Prints one row per run: mAP / Rank-1 of the untrained model and after training, on a synthetic
Market-1501-style set that no default was tuned on (`--seed`, `--hard`). Used for the root-cause
experiment of 03_train ("Why the triplet loss measures cosine distance") and the augmentation ablation.

    python benchmarks/train_ablation.py --hard --seed 7 --runs lite0-euclidean lite0-cosine
"""
import argparse, json, os, sys, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pathlib import Path

BACKBONES = {'lite0': ('tf_efficientnet_lite0', 'imagenet'), 'b0': ('efficientnet_b0', 'none'),
             'lite0s': ('tf_efficientnet_lite0', 'none'), 'r18': ('resnet18', 'none')}

def parse_run(name:str) -> dict:
    "'lite0-euclidean-jitter' -> TrainConfig overrides: a backbone key, then any of the switches below."
    bb, *opts = name.split('-')
    backbone, pretrained = BACKBONES[bb]
    kw = dict(backbone=backbone, pretrained=pretrained)
    for o in opts:
        if o in ('euclidean', 'cosine'): kw['triplet_metric'] = o
        elif o == 'noid': kw['id_loss'] = False
        elif o == 'bn': kw['triplet_feature'] = 'bn'
        elif o == 'jitter': kw['color_jitter'] = 0.4
        elif o == 'gray': kw['gray_p'] = 0.2
        elif o == 'noaug': kw['augment'] = False
        elif o.startswith('lr'): kw['lr'] = float(o[2:])
        elif o.startswith('m'): kw['margin'] = float(o[1:])
        elif o.startswith('steps'): kw['min_steps'] = int(o[5:])
        elif o.startswith('p'): kw['p'] = int(o[1:])
        else: raise SystemExit(f"unknown switch {o!r} in {name!r}")
    return kw

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', nargs='+', default=['lite0-euclidean', 'lite0-cosine'])
    ap.add_argument('--seed', type=int, default=7, help='seed of the synthetic set (the demo uses 0)')
    ap.add_argument('--hard', action='store_true', help='the camera-dominated variant')
    ap.add_argument('--train_ids', type=int, default=40); ap.add_argument('--test_ids', type=int, default=30)
    ap.add_argument('--epochs', type=int, default=12); ap.add_argument('--size', type=int, nargs=2, default=(128, 64))
    ap.add_argument('--out', default=None); ap.add_argument('--json', default=None)
    a = ap.parse_args()
    from reid_nb.data import make_synthetic_market
    from reid_nb.train import TrainConfig, train, read_metrics
    root = Path(a.out or tempfile.mkdtemp())
    data = root/f"data_s{a.seed}{'_hard' if a.hard else ''}"
    c = make_synthetic_market(data, n_train_ids=a.train_ids, n_test_ids=a.test_ids, seed=a.seed, hard=a.hard)
    print(f"data: seed {a.seed}{', hard' if a.hard else ''}: {c['train_ids']} ids / {c['train_images']} train images, "
          f"{c['query_images']} queries, {c['gallery_images']} gallery; {a.epochs} epochs at {a.size[0]}x{a.size[1]}", flush=True)
    rows = []
    for name in a.runs:
        kw = parse_run(name)
        cfg = TrainConfig(data=str(data), out=str(root/name), epochs=a.epochs, size=tuple(a.size), eval_at_start=True,
                          eval_every=a.epochs, num_workers=1, progress=False, **kw)
        t0 = time.perf_counter(); train(cfg); dt = time.perf_counter() - t0
        recs = read_metrics(root/name/'metrics.jsonl'); first, last = recs[0], recs[-1]
        rows.append(dict(run=name, map0=first['mAP'], r1_0=first['rank1'], map=last['mAP'], r1=last['rank1'],
                         loss=last['loss'], d_ap=last.get('d_ap'), d_an=last.get('d_an'), active=last.get('frac_active'),
                         seconds=dt))
        r = rows[-1]
        print(f"{name:28} mAP {r['map0']:.3f} -> {r['map']:.3f}   R1 {r['r1_0']:.3f} -> {r['r1']:.3f}   "
              f"d_ap {r['d_ap']:.3f} d_an {r['d_an']:.3f} active {r['active']:.2f}   {dt:.0f} s", flush=True)
    if a.json: Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))

if __name__ == '__main__': main()
