"""Do `reid_nb_train`'s defaults hold on data they were not tuned on?

Writes synthetic Market-1501-style sets that no default was tuned on (the default generator with seed 3, the
camera-dominated `hard` variant with seed 11; 40 training ids, 30 test ids, as in issue 11), then for each backbone
runs the command a user would type, giving only --data --out --epochs --size --backbone --pretrained, and scores
the untrained and the trained model with the Market-1501 protocol. Prints one row per (data, backbone).

    python benchmarks/defaults_check.py --epochs 12        # ~30 min on 2 CPU cores
"""
import argparse, json, os, subprocess, sys, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=12); ap.add_argument('--size', type=int, nargs=2, default=(128, 64))
    ap.add_argument('--backbones', nargs='+', default=['tf_efficientnet_lite0:imagenet', 'resnet18:none'])
    ap.add_argument('--sets', nargs='+', default=['default:3', 'hard:11'])
    ap.add_argument('--out', default=None); ap.add_argument('--json', default=None)
    a = ap.parse_args()
    from reid_nb.data import make_synthetic_market, Market1501
    from reid_nb.model import ReIDNet
    from reid_nb.metrics import score
    root, rows = Path(a.out or tempfile.mkdtemp()), []
    bindir = Path(sys.executable).parent
    for spec in a.sets:
        kind, seed = spec.split(':'); data = root/f'{kind}_s{seed}'
        make_synthetic_market(data, n_train_ids=40, n_test_ids=30, seed=int(seed), hard=kind == 'hard')
        market = Market1501(data)
        for bb in a.backbones:
            backbone, pretrained = bb.split(':')
            untrained = ReIDNet(backbone, pretrained=None if pretrained == 'none' else pretrained)
            before = score(untrained, market.query, market.gallery, size=tuple(a.size), progress=False)
            out = root/f'{kind}_s{seed}_{backbone}'
            cmd = [str(bindir/'reid_nb_train'), '--data', str(data), '--out', str(out), '--epochs', str(a.epochs),
                   '--size', *map(str, a.size), '--backbone', backbone, '--pretrained', pretrained]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)   # the progress bars go to stderr
            dt = time.perf_counter() - t0
            if r.returncode: sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
            notes = [l for l in r.stdout.splitlines() if 'passes per epoch' in l or 'using p=' in l]
            after = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(dict(data=spec, backbone=bb, before=before, after=after, seconds=dt, notes=notes))
            print(f"{spec:10} {bb:32} mAP {before['mAP']:.3f} -> {after['mAP']:.3f}   R1 {before['rank1']:.3f} -> "
                  f"{after['rank1']:.3f}   {dt:.0f} s   {'; '.join(notes)}", flush=True)
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
