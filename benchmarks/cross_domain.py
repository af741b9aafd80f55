"""How well does a model trained on one synthetic data set transfer to others?

Writes test sets from generators and seeds no default was tuned on (Market-1501 layout: the default generator with
seed 21 and the camera-dominated `hard` variant with seed 22; the MSMT17 layout with seed 23; the CUHK03-NP layout
with seed 24; 30 test ids each) and two training sets (the default Market generator with seed 20 and the hard variant
with seed 25; 40 training ids each). Trains with the command a user would type, `reid_nb_train`'s defaults plus
--epochs --size --backbone --pretrained: (a) on the default set alone, (b) on default + hard together
(`--data A --data B`, evaluated during training on A). Then runs `reid_nb_eval --json` with each best.pth, and with the
untrained ImageNet model as a baseline, on every test set. Prints one row per model, mAP / Rank-1 per test set, and
the train_set / test_set names each JSON records.

    python benchmarks/cross_domain.py --epochs 12          # ~20 min on 2 loaded CPU cores
    python benchmarks/cross_domain.py --no-joint            # skip (b)
"""
import argparse, json, os, subprocess, sys, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pathlib import Path

TESTS = {   # column name: (generator, seed, extra arguments)
    'Market default s21': ('market', 21, {}),
    'Market hard s22':    ('market', 22, {'hard': True}),
    'MSMT17 s23':         ('msmt17', 23, {'version': 'V1'}),
    'CUHK03-NP s24':      ('cuhk03', 24, {'labeled': False}),
}
TRAINS = {'default_s20': 20, 'hard_s25': 25}   # Market layout; `hard_*` uses the hard variant

def make(kind:str, root:Path, n_train:int, n_test:int, seed:int, **kw) -> dict:
    from reid_nb.data import make_synthetic_market, make_synthetic_msmt17, make_synthetic_cuhk03
    fn = dict(market=make_synthetic_market, msmt17=make_synthetic_msmt17, cuhk03=make_synthetic_cuhk03)[kind]
    if root.exists(): return {}
    return fn(root, n_train_ids=n_train, n_test_ids=n_test, seed=seed, **kw)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=12); ap.add_argument('--size', type=int, nargs=2, default=(128, 64))
    ap.add_argument('--backbone', default='tf_efficientnet_lite0'); ap.add_argument('--pretrained', default='imagenet')
    ap.add_argument('--test_ids', type=int, default=30); ap.add_argument('--train_ids', type=int, default=40)
    ap.add_argument('--joint', action=argparse.BooleanOptionalAction, default=True,
                    help='also train (b) on default + hard together')
    ap.add_argument('--out', default=None, help='work folder (data, runs, JSON); kept, and a finished run is reused')
    ap.add_argument('--json', default=None, help='write all rows here')
    a = ap.parse_args()
    root = Path(a.out or tempfile.mkdtemp(prefix='cross_domain_')); root.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    print(f"work folder: {root}", flush=True)

    tests = {}
    for col, (kind, seed, kw) in TESTS.items():
        d = root/'data'/f'test_{kind}{"_hard" if kw.get("hard") else ""}_s{seed}'
        info = make(kind, d, 1, a.test_ids, seed, **kw)    # 1 training id: the generators want one; unused here
        if info: print(f"{col:20} {info['query_images']} query, {info['gallery_images']} gallery images", flush=True)
        tests[col] = d
    trains = {}
    for name, seed in TRAINS.items():
        d = root/'data'/f'train_market_{name}'
        info = make('market', d, a.train_ids, a.test_ids, seed, hard=name.startswith('hard'))
        if info: print(f"train {name:14} {info['train_images']} training images of {info['train_ids']} ids", flush=True)
        trains[name] = d

    models = {}   # row name: checkpoint
    untrained = root/'runs'/'untrained.pth'
    if not untrained.exists():
        from reid_nb.model import ReIDNet, save_checkpoint
        untrained.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(untrained, ReIDNet(a.backbone, pretrained=None if a.pretrained == 'none' else a.pretrained),
                        config={'size': list(a.size)})
    models[f'untrained {a.backbone} ({a.pretrained})'] = untrained
    runs = {'trained on default s20': [trains['default_s20']]}
    if a.joint: runs['trained on default s20 + hard s25'] = [trains['default_s20'], trains['hard_s25']]
    timings = {}
    for row, data in runs.items():
        out = root/'runs'/('_'.join(p.name.removeprefix('train_market_') for p in data))
        secs = root/'runs'/f'{out.name}.seconds'
        if not (out/'best.pth').exists():
            cmd = [str(bindir/'reid_nb_train'), *sum((['--data', str(p)] for p in data), []), '--out', str(out),
                   '--epochs', str(a.epochs), '--size', *map(str, a.size), '--backbone', a.backbone,
                   '--pretrained', a.pretrained]
            print(' '.join(cmd), flush=True)
            t0 = time.perf_counter()
            with open(root/'runs'/f'{out.name}.log', 'w') as log:   # progress bars go to stderr
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
            timings[row] = time.perf_counter() - t0; secs.write_text(f'{timings[row]:.1f}')
            if r.returncode: sys.exit(f"{' '.join(cmd)} failed: see {root/'runs'/(out.name + '.log')}")
            last = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{row}: {timings[row]:.0f} s; in-domain (eval_data {data[0].name}) mAP {last['mAP']:.3f} "
                  f"R1 {last['rank1']:.3f}", flush=True)
        elif secs.exists(): timings[row] = float(secs.read_text())
        models[row] = out/'best.pth'

    rows = []
    for row, ck in models.items():
        for col, d in tests.items():
            js = root/'eval'/f"{ck.parent.name if ck.name == 'best.pth' else ck.stem}__{d.name}.json"
            js.parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(bindir/'reid_nb_eval'), '--data', str(d), '--ckpt', str(ck), '--json', str(js)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
            res = json.loads(js.read_text())
            rows.append(dict(model=row, test=col, mAP=res['mAP'], rank1=res['rank1'], train_set=res['train_set'],
                             test_set=res['test_set'], ckpt=str(ck), data=str(d), seconds=timings.get(row)))

    w = max(map(len, models)) + 2
    print('\n' + ' ' * w + ''.join(f"{c:>22}" for c in tests))
    print(' ' * w + ''.join(f"{'mAP / R1':>22}" for _ in tests))
    for row in models:
        cells = {r['test']: r for r in rows if r['model'] == row}
        print(f"{row:{w}}" + ''.join(f"{100*cells[c]['mAP']:>13.1f} / {100*cells[c]['rank1']:4.1f}" for c in tests))
    print('\nnames recorded in the JSON (train_set -> test_set):')
    for row in models:
        r = [r for r in rows if r['model'] == row]
        print(f"  {row}: train_set={r[0]['train_set']!r}; test_set " +
              ', '.join(f"{x['test_set']!r} ({Path(x['data']).name})" for x in r))
    for row, s in timings.items(): print(f"training {row}: {s:.0f} s")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
