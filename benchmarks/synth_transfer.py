"""Do synthetic people teach real ones? Trains the demo's model on synthetic variants and scores it on real photographs.

For each variant: `reid_nb_demo --out OUT/VARIANT [options]` (the main job, as a user runs it), then `reid_nb_eval` of
the checkpoint the demo hands the user (`run/best.pth`) on (a) the demo's own synthetic test set, (b) one fixed
synthetic test set of the cartoon generator (seed 21; no variant trains on it) and (c) the real data set `--real`
(Market-1501 layout; skipped with a message when absent), as it is, after `--adapt_bn train` (BatchNorm statistics
re-estimated on the real set's training images, labels unused), after `--adapt_bn train --per_camera` (one set of
statistics per camera) and after `--centre train` (each camera's mean embedding over the training images taken out).
A variant is a style, then options joined by '-' (what
it does not name keeps the demo's default):

    photo                      the demo's defaults           cartoon          cartoon people
    photo-ids48                48 training identities        photo-hard       the camera-dominated variant
    photo-fr0                  the whole backbone trains     photo-fbn        BatchNorms keep ImageNet's statistics
    photo-e8                   8 epochs                      photo-steps1000  at least 1000 optimizer steps
    photo-os16                 output stride 16

    python benchmarks/synth_transfer.py --real ../shared/data/cuhk01 --variants photo photo-fr0 photo-fbn-os16
"""
import argparse, json, os, re, sys, tempfile
for _k, _v in dict(NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg').items(): os.environ.setdefault(_k, _v)
from pathlib import Path
from real_data import command, run   # this folder's real_data.py: the commands, run as a user would

def demo_args(variant:str) -> list:
    "'photo-ids300-fr0' -> ['--style', 'photo', '--n_train_ids', '300', '--freeze_blocks', '0']."
    style, *opts = variant.split('-')
    args = ['--style', style]
    for o in opts:
        if o == 'hard': args.append('--hard')
        elif o == 'fbn': args.append('--freeze_bn')
        elif m := re.fullmatch(r'ids(\d+)', o): args += ['--n_train_ids', m.group(1)]
        elif m := re.fullmatch(r'steps(\d+)', o): args += ['--min_steps', m.group(1)]
        elif m := re.fullmatch(r'fr(\d+)', o): args += ['--freeze_blocks', m.group(1)]
        elif m := re.fullmatch(r'e(\d+)', o): args += ['--epochs', m.group(1)]
        elif m := re.fullmatch(r'os(\d+)', o): args += ['--output_stride', m.group(1)]
        else: sys.exit(f"unknown option {o!r} in {variant!r}")
    return args

def score(data:Path, ckpt:Path, js:Path, *extra) -> dict:
    if not js.exists(): run(command('reid_nb_eval') + ['--data', str(data), '--ckpt', str(ckpt), '--json', str(js),
                                                       *extra], js.with_suffix('.log'))
    return json.loads(js.read_text())

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--variants', nargs='+', default=['photo', 'photo-fr0', 'cartoon-fr0'])
    ap.add_argument('--real', default=None, help='a real data set in the Market-1501 layout')
    ap.add_argument('--seed', type=int, default=0, help='reid_nb_demo --seed')
    ap.add_argument('--out', default=None, help='work folder; finished demos there are reused')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix='reid_nb_transfer_')); out.mkdir(parents=True, exist_ok=True)
    real = Path(a.real).expanduser() if a.real else None
    if real is not None and not real.is_dir():
        print(f"skipped: {real} not found: the real-photograph column will be empty"); real = None
    from reid_nb.data import make_synthetic_market
    fixed = out/'cartoon_test_s21'
    make_synthetic_market(fixed, n_train_ids=2, n_test_ids=30, seed=21)
    rows = []
    for v in a.variants:
        d = out/v
        if not (d/'run'/'best.pth').exists():
            dt = run(command('reid_nb_demo') + ['--out', str(d), '--seed', str(a.seed), *demo_args(v)], out/f'{v}.log')
            (out/f'{v}.seconds').write_text(f'{dt:.1f}')
        ckpt = d/'run'/'best.pth'
        row = dict(variant=v, demo_seconds=float((out/f'{v}.seconds').read_text()),
                   own=score(d/'data', ckpt, out/f'{v}_own.json'), cartoon_s21=score(fixed, ckpt, out/f'{v}_fixed.json'))
        if real is not None:
            row['real'] = score(real, ckpt, out/f'{v}_real.json')
            if (real/'bounding_box_train').is_dir():
                row['real_adapted'] = score(real, ckpt, out/f'{v}_real_adapted.json', '--adapt_bn', 'train')
                row['real_per_camera'] = score(real, ckpt, out/f'{v}_real_per_camera.json', '--adapt_bn', 'train',
                                               '--per_camera')
                row['real_centred'] = score(real, ckpt, out/f'{v}_real_centred.json', '--centre', 'train')
        rows.append(row)
        f = lambda k: f"{100*row[k]['mAP']:5.1f}/{100*row[k]['rank1']:5.1f}" if k in row else '    -/    -'
        print(f"{v:20} own {f('own')}  cartoon s21 {f('cartoon_s21')}  real {f('real')}  real, BN adapted "
              f"{f('real_adapted')}  per camera {f('real_per_camera')}  centred {f('real_centred')}  "
              f"{row['demo_seconds']:.0f} s", flush=True)
    print(f"\nmAP / Rank-1 (%) of the demo's model (run/best.pth), by training data"
          + (f"; real: {real}" if real else ''))
    print(f"{'variant':20} {'own test':>12} {'cartoon s21':>12} {'real':>12} {'real adapted':>12} "
          f"{'per camera':>12} {'centred':>12} {'demo s':>7}")
    for r in rows:
        f = lambda k: f"{100*r[k]['mAP']:5.1f}/{100*r[k]['rank1']:5.1f}" if k in r else '-'
        print(f"{r['variant']:20} {f('own'):>12} {f('cartoon_s21'):>12} {f('real'):>12} {f('real_adapted'):>12} "
              f"{f('real_per_camera'):>12} {f('real_centred'):>12} {r['demo_seconds']:7.0f}")
    keep = ('mAP', 'rank1', 'rank5', 'mINP')
    Path(a.json or out/'synth_transfer.json').write_text(json.dumps(
        [{k: ({m: r[k][m] for m in keep} if isinstance(r[k], dict) else r[k]) for k in r} for r in rows], indent=1))

if __name__ == '__main__': main()
