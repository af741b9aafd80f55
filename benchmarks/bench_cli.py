"""How long each command takes to answer `--help`, against what the old entry points paid before parsing anything.

The commands live in `reid_nb.cli`, which imports only the standard library until the arguments are known to be good.
Until this change each console script imported its notebook's module (torch, timm, albumentations, OpenCV) first;
`python -c "import reid_nb.<module>"` is that cost, measured here in the same run as the yardstick.

Each figure is the median of `--repeat` fresh processes (wall clock, from `subprocess.run` start to exit).

Usage: python benchmarks/bench_cli.py [--repeat 5]
"""
import argparse, os, shutil, statistics, subprocess, sys, time

ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
OLD_MODULE = dict(reid_nb_data='reid_nb.data', reid_nb_train='reid_nb.train', reid_nb_demo='reid_nb.train',
                  reid_nb_eval='reid_nb.eval', reid_nb_search='reid_nb.search')


def wall(cmd, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        ts.append(time.perf_counter() - t0)
        if r.returncode != 0: raise SystemExit(f"{cmd} failed: {r.stderr[-2000:]}")
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=5)
    a = ap.parse_args()
    bindir = os.path.dirname(sys.executable)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.2f}; median of {a.repeat} runs")
    print(f"{'command':16} {'--help (s)':>11} {'old: import module first (s)':>30} {'ratio':>7}")
    worst = 0.
    for prog, mod in OLD_MODULE.items():
        exe = shutil.which(prog, path=bindir) or shutil.which(prog)
        new = wall([exe, '--help'] if exe else [sys.executable, '-c', f'from reid_nb.cli import {prog}; {prog}(["--help"])'], a.repeat)
        old = wall([sys.executable, '-c', f'import {mod}'], a.repeat)
        worst = max(worst, new)
        print(f"{prog:16} {new:11.3f} {old:30.3f} {old / new:6.0f}x")
    print(f"slowest --help: {worst:.3f} s (target: under 1.5 s)")


if __name__ == '__main__': main()
