"""Real photographs: what reid_nb's defaults do on a real data set in the Market-1501 layout, as a user runs them.

Three rows, each from the commands a user types (so the figures are the CLI's, not a private code path):
  * untrained: `reid_nb_eval --data DATA --backbone tf_efficientnet_lite0 --pretrained imagenet --size 128 64`
    (the ImageNet backbone and a seeded random embedding head: "before training");
  * trained:   `reid_nb_train --data DATA --out OUT/run --epochs E --size 128 64 --backbone tf_efficientnet_lite0
    --pretrained imagenet`, then `reid_nb_eval --ckpt OUT/run/last.pth` (the model at the end of training: best.pth is
    chosen on the test set itself, so it is not reported here);
  * demo (with `--demo_ckpt FILE`, e.g. reid_nb_demo/run/last.pth): the synthetic-trained demo model on the same test.
Prints one table (mAP, Rank-1, Rank-5, mINP, steps, seconds) and writes it as JSON (`--json`, default OUT/real_data.json).

The data set is the user's: this script never copies it anywhere. A --data folder that does not exist is skipped
with a message (exit code 0). Our development set is CUHK01 (research use only; see ../shared/data/README.md).

    python benchmarks/real_data.py --data ../shared/data/cuhk01                      # ~10 min on 2 CPU cores
    python benchmarks/real_data.py --data ../shared/data/cuhk01 --demo_ckpt reid_nb_demo/run/last.pth --seeds 0 1
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
for _k, _v in dict(NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg').items(): os.environ.setdefault(_k, _v)
from pathlib import Path

BACKBONE, SIZE = 'tf_efficientnet_lite0', ('128', '64')

def command(name:str) -> list:
    "The console script `name` of this interpreter's environment (or `python -m reid_nb.cli` when not installed)."
    exe = Path(sys.executable).parent/name
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'reid_nb.cli', name.split('_')[-1]]

def run(cmd:list, log:Path) -> float:
    "Run `cmd`, its output to `log`; seconds taken. Stops with the log's tail on failure."
    print('$', ' '.join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, 'w') as f: r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode: sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n" + log.read_text()[-3000:])
    return time.perf_counter() - t0

def evaluate(data:Path, out:Path, name:str, *how) -> dict:
    "`reid_nb_eval` on `data` with `how` (--ckpt F, or --backbone ...): its JSON, plus the seconds it took."
    js = out/f'{name}.json'
    dt = run(command('reid_nb_eval') + ['--data', str(data), *how, '--json', str(js)], out/f'{name}.log')
    return json.loads(js.read_text()) | dict(eval_seconds=round(dt, 1))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', required=True, help='a real data set in the Market-1501 layout')
    ap.add_argument('--epochs', type=int, default=4, help='reid_nb_train --epochs (a CPU budget: ~620 steps on CUHK01)')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0], help='one training run per seed')
    ap.add_argument('--demo_ckpt', default=None, help='also score this checkpoint (the reid_nb_demo model)')
    ap.add_argument('--extra', nargs=argparse.REMAINDER, default=[],
                    help='options added to reid_nb_train (an ablation; the table then is not the defaults)')
    ap.add_argument('--out', default=None, help='work folder (default: a new one under /tmp); a finished run is reused')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    data = Path(a.data).expanduser()
    if not (data/'query').is_dir() and not any(data.glob('*/query')):
        print(f"skipped: {data} not found or not in the Market-1501 layout (query/, bounding_box_test/)"); return
    from reid_nb.train import steps_done
    out = Path(a.out or tempfile.mkdtemp(prefix='reid_nb_real_')); out.mkdir(parents=True, exist_ok=True)
    rows = [dict(model='ImageNet Lite0, untrained', steps=0, train_seconds=0,
                 **evaluate(data, out, 'untrained', '--backbone', BACKBONE, '--pretrained', 'imagenet', '--size', *SIZE))]
    for seed in a.seeds:
        run_dir = out/f'run_s{seed}'
        train_cmd = command('reid_nb_train') + ['--data', str(data), '--out', str(run_dir), '--epochs', str(a.epochs),
                                                '--size', *SIZE, '--backbone', BACKBONE, '--pretrained', 'imagenet',
                                                '--seed', str(seed), '--no-progress', *a.extra]
        if (run_dir/'last.pth').exists() and (run_dir/'train_seconds').exists():
            dt = float((run_dir/'train_seconds').read_text())
        else:
            if run_dir.exists(): shutil.rmtree(run_dir)
            dt = run(train_cmd, out/f'train_s{seed}.log')
            (run_dir/'train_seconds').write_text(f'{dt:.1f}')
        steps = steps_done(run_dir/'last.pth')
        rows.append(dict(model=f"reid_nb_train defaults{' ' + ' '.join(a.extra) if a.extra else ''}, seed {seed}",
                         steps=steps, train_seconds=round(dt, 1), command=' '.join(train_cmd[1:]),
                         **evaluate(data, out, f'trained_s{seed}', '--ckpt', str(run_dir/'last.pth'))))
    if a.demo_ckpt:
        ck = Path(a.demo_ckpt).expanduser()
        steps = steps_done(ck)
        steps = '-' if steps is None else steps     # best.pth keeps weights, not the schedule
        rows.append(dict(model='reid_nb_demo model (synthetic people)', steps=steps, train_seconds=None,
                         **evaluate(data, out, 'demo', '--ckpt', str(ck))))
    import platform
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {__import__('torch').__version__}"
    print(f"\n{data.name}: {rows[0]['num_query']} queries, {rows[0]['num_gallery']} gallery images; "
          f"Market-1501 protocol, cosine; {machine}")
    print(f"{'model':52} {'mAP':>6} {'R1':>6} {'R5':>6} {'mINP':>6} {'steps':>6} {'train s':>8} {'eval s':>7}")
    for r in rows:
        ts = '-' if r['train_seconds'] is None else f"{r['train_seconds']:.0f}"
        print(f"{r['model'][:52]:52} {100*r['mAP']:6.1f} {100*r['rank1']:6.1f} {100*r['rank5']:6.1f} "
              f"{100*r['mINP']:6.1f} {r['steps']:>6} {ts:>8} {r['eval_seconds']:7.0f}")
    js = Path(a.json or out/'real_data.json')
    keep = ('model', 'steps', 'train_seconds', 'eval_seconds', 'command', 'rank1', 'rank5', 'rank10', 'mAP', 'mINP',
            'num_query', 'num_gallery', 'train_set', 'test_set', 'size')
    js.write_text(json.dumps(dict(data=str(data), machine=machine, epochs=a.epochs,
                                  rows=[{k: r[k] for k in keep if k in r} for r in rows]), indent=1))
    print(f"wrote {js}")

if __name__ == '__main__': main()
