"""Controlled training runs: the same loop, data and budget, one setting changed at a time.

Prints one row per run (and seed): mAP / Rank-1 of the untrained model and after training, steps and seconds.
On a synthetic Market-1501-style set that no default was tuned on (`--seed`, `--hard`), or on a real data set in the
Market-1501 layout (`--data DIR`; it is skipped with a message when DIR does not exist). Every run starts from the
CLI defaults with `--backbone`/`--pretrained` as given; a run name switches settings on or off:

    lite0                  the defaults (the backbone key first: lite0 = ImageNet tf_efficientnet_lite0)
    lite0-os16             output_stride 16 (last stage dilated)      lite0-gem      GeM pooling
    lite0-bblr0.1          backbone lr 0.1 x lr                        lite0-lr0.0003 peak lr
    lite0-bn               triplet on the BNNeck feature               lite0-euclidean / -cosine: triplet distance
    lite0-noid             no ID loss      lite0-ls0  no label smoothing      lite0-noaug   no augmentation
    lite0-p32-k2           P x K           lite0-h256  256x128 input          lite0-steps300  min_steps
    lite0-warm0.5          warm-up epochs  lite0-m0.5  triplet margin          lite0-jitter / -gray: colour aug.

    python benchmarks/train_ablation.py --hard --seed 7 --runs lite0-euclidean lite0-cosine
    python benchmarks/train_ablation.py --data ../shared/data/cuhk01 --epochs 4 --runs lite0 lite0-os16 --seeds 0 1
"""
import argparse, json, os, sys, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pathlib import Path

BACKBONES = {'lite0': ('tf_efficientnet_lite0', 'imagenet'), 'b0': ('efficientnet_b0', 'none'),
             'lite0s': ('tf_efficientnet_lite0', 'none'), 'r18': ('resnet18', 'none')}
FLAGS = dict(noid=('id_loss', False), bn=('triplet_feature', 'bn'), jitter=('color_jitter', 0.4), gray=('gray_p', 0.2),
             noaug=('augment', False), gem=('pool', 'gem'), os16=('output_stride', 16), os32=('output_stride', 32),
             euclidean=('triplet_metric', 'euclidean'), cosine=('triplet_metric', 'cosine'),
             h256=('size', (256, 128)), ls0=('label_smoothing', 0.))
NUMBERS = (('bblr', 'backbone_lr', float), ('lr', 'lr', float), ('steps', 'min_steps', int), ('warm', 'warmup_epochs', float),
           ('wd', 'weight_decay', float), ('m', 'margin', float), ('p', 'p', int), ('k', 'k', int))

def parse_run(name:str) -> dict:
    "'lite0-os16-bblr0.1' -> TrainConfig overrides: a backbone key, then any of the switches above."
    bb, *opts = name.split('-')
    backbone, pretrained = BACKBONES[bb]
    kw = dict(backbone=backbone, pretrained=pretrained)
    for o in opts:
        if o in FLAGS: kw[FLAGS[o][0]] = FLAGS[o][1]; continue
        for prefix, field, typ in NUMBERS:
            if o.startswith(prefix):
                try: kw[field] = typ(o[len(prefix):]); break
                except ValueError: pass
        else: raise SystemExit(f"unknown switch {o!r} in {name!r}")
    return kw

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', nargs='+', default=['lite0-euclidean', 'lite0-cosine'])
    ap.add_argument('--data', default=None, help='a real data set in the Market-1501 layout (default: synthetic)')
    ap.add_argument('--seed', type=int, default=7, help='seed of the synthetic set (the demo uses 0)')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0], help='training seeds: each run once per seed')
    ap.add_argument('--hard', action='store_true', help='the camera-dominated variant')
    ap.add_argument('--train_ids', type=int, default=40); ap.add_argument('--test_ids', type=int, default=30)
    ap.add_argument('--epochs', type=int, default=12); ap.add_argument('--size', type=int, nargs=2, default=(128, 64))
    ap.add_argument('--out', default=None, help='work folder; a finished run there is reused')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    from reid_nb.train import TrainConfig, train, read_metrics, steps_done
    root = Path(a.out or tempfile.mkdtemp())
    if a.data:
        data = Path(a.data).expanduser()
        if not data.is_dir():
            print(f"skipped: {data} not found (a real data set in the Market-1501 layout; see --data)"); return
        print(f"data: {data}; {a.epochs} epochs at {a.size[0]}x{a.size[1]}", flush=True)
    else:
        from reid_nb.data import make_synthetic_market
        data = root/f"data_s{a.seed}{'_hard' if a.hard else ''}"
        c = make_synthetic_market(data, n_train_ids=a.train_ids, n_test_ids=a.test_ids, seed=a.seed, hard=a.hard)
        print(f"data: seed {a.seed}{', hard' if a.hard else ''}: {c['train_ids']} ids / {c['train_images']} train "
              f"images, {c['query_images']} queries, {c['gallery_images']} gallery; {a.epochs} epochs at "
              f"{a.size[0]}x{a.size[1]}", flush=True)
    rows = []
    for name in a.runs:
        for seed in a.seeds:
            kw = dict(size=tuple(a.size)) | parse_run(name)
            out = root/f'{name}_s{seed}'
            cfg = TrainConfig(data=str(data), out=str(out), epochs=a.epochs, eval_at_start=True, eval_every=a.epochs,
                              progress=False, seed=seed, **kw)
            t0 = time.perf_counter()
            if not (out/'metrics.jsonl').exists() or len(read_metrics(out/'metrics.jsonl')) < 2: train(cfg)
            dt = time.perf_counter() - t0
            recs = read_metrics(out/'metrics.jsonl'); first, last = recs[0], recs[-1]
            steps = steps_done(out/'last.pth')
            rows.append(dict(run=name, seed=seed, map0=first['mAP'], r1_0=first['rank1'], map=last['mAP'],
                             r1=last['rank1'], r5=last['rank5'], loss=last['loss'], d_ap=last.get('d_ap'),
                             d_an=last.get('d_an'), active=last.get('frac_active'), steps=steps,
                             seconds=sum(r.get('time', 0) for r in recs)))
            r = rows[-1]
            print(f"{name:24} s{seed} mAP {r['map0']:.3f} -> {r['map']:.3f}   R1 {r['r1_0']:.3f} -> {r['r1']:.3f}   "
                  f"R5 {r['r5']:.3f}   active {r['active']:.2f}   {steps} steps  {r['seconds']:.0f} s", flush=True)
    print(f"\n{'run':24} {'seeds':>5} {'mAP':>6} {'R1':>6} {'R5':>6}")
    for name in a.runs:
        rs = [r for r in rows if r['run'] == name]
        mean = lambda k: sum(r[k] for r in rs) / len(rs)
        print(f"{name:24} {len(rs):5d} {100*mean('map'):6.1f} {100*mean('r1'):6.1f} {100*mean('r5'):6.1f}")
    if a.json: Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))

if __name__ == '__main__': main()
