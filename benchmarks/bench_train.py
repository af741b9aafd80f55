"""Training throughput: train-step images/s in NCHW and channels-last, and images/s + data wait of short `train` runs.

1. Train steps alone (no data loading): a `ReIDNet` with an ID classifier on a fixed random P×K batch, batch-hard
   triplet + ID loss, backward, AdamW step; NCHW and channels-last models timed side by side (interleaved, best of
   `--repeats` blocks of `--steps` steps) for each backbone and size.
2. Short real runs: writes a small synthetic Market-1501-style set and runs `train` for 1 epoch of `--batches` batches
   per setting (`--workers` DataLoader workers), printing that epoch's images/s and `data_wait`, the fraction of the
   epoch spent blocked waiting for the next batch (data loading, forward, backward, optimizer step; no evaluation).

On CUDA the runs use AMP (`TrainConfig` defaults); on CPU full float32.

Usage: python benchmarks/bench_train.py [--device auto|cpu|cuda] [--batches 8] [--p 16] [--k 4] [--workers 2]
                                        [--backbones efficientnet_b0 resnet18] [--sizes 128x64 256x128]
                                        [--steps 3] [--repeats 2] [--no-steps] [--no-runs]
"""
import argparse, os, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('MPLBACKEND', 'Agg')
from pathlib import Path
import torch
from reid_nb.data import make_synthetic_market
from reid_nb.model import ReIDNet
from reid_nb.triplets import TripletLoss
from reid_nb.train import TrainConfig, train, ReIDLoss, forward_batch


def step_bench(backbone, size, p, k, steps, repeats, device):
    "Best images/s of `steps` train steps, NCHW and channels-last, timed in alternation `repeats` times."
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    y = torch.arange(p, device=device).repeat_interleave(k)
    x = torch.randn(p * k, 3, *size, device=device)
    loss_fn, runs = ReIDLoss(TripletLoss(0.3, 'batch_hard'), global_mining=False), {}
    for layout, fmt in (('NCHW', torch.contiguous_format), ('channels-last', torch.channels_last)):
        torch.manual_seed(0)
        model = ReIDNet(backbone, num_classes=p).to(device, memory_format=fmt).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        batch = [x.contiguous(memory_format=fmt), y]
        def step(model=model, opt=opt, batch=batch):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
                loss, _ = loss_fn(*forward_batch(model, batch, 'pk'))
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        step(); sync()                                           # warm-up (allocator, oneDNN/cuDNN primitives)
        runs[layout] = step
    best = {k: 0.0 for k in runs}
    for _ in range(repeats):
        for layout, step in runs.items():
            t0 = time.perf_counter()
            for _ in range(steps): step()
            sync()
            best[layout] = max(best[layout], steps * p * k / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='auto'); ap.add_argument('--batches', type=int, default=8)
    ap.add_argument('--p', type=int, default=16); ap.add_argument('--k', type=int, default=4)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--backbones', nargs='+', default=['efficientnet_b0', 'resnet18'])
    ap.add_argument('--sizes', nargs='+', default=['128x64', '256x128'])
    ap.add_argument('--steps', type=int, default=3, help='train steps per timed block (part 1)')
    ap.add_argument('--repeats', type=int, default=2, help='timed blocks per layout, best kept (part 1)')
    ap.add_argument('--no-steps', action='store_true', help='skip part 1 (train steps, NCHW vs channels-last)')
    ap.add_argument('--no-runs', action='store_true', help='skip part 2 (short train runs with data loading)')
    a = ap.parse_args()
    device = torch.device(('cuda' if torch.cuda.is_available() else 'cpu') if a.device == 'auto' else a.device)
    sizes = [tuple(map(int, s.split('x'))) for s in a.sizes]
    print(f"device={device} torch {torch.__version__} threads={torch.get_num_threads()} CPUs={os.cpu_count()} "
          f"load average {os.getloadavg()[0]:.1f}  P×K={a.p}×{a.k}")
    if not a.no_steps:
        print(f"\n1. train steps alone (fixed random batch, triplet + ID loss, AdamW), best of {a.repeats}×{a.steps} steps")
        print(f"{'backbone':18}{'size':>9}{'NCHW img/s':>12}{'NHWC img/s':>12}{'NHWC/NCHW':>11}")
        for bb in a.backbones:
            for h, w in sizes:
                r = step_bench(bb, (h, w), a.p, a.k, a.steps, a.repeats, device)
                print(f"{bb:18}{f'{h}x{w}':>9}{r['NCHW']:12.1f}{r['channels-last']:12.1f}{r['channels-last']/r['NCHW']:11.2f}", flush=True)
    if not a.no_runs:
        tmp = Path(tempfile.mkdtemp())
        make_synthetic_market(tmp/'m', n_train_ids=max(a.p, 32), n_test_ids=4, seed=0)
        print(f"\n2. `train`, 1 epoch of {a.batches} batches, {a.workers} DataLoader workers (TrainConfig defaults otherwise)")
        print(f"{'backbone':18}{'size':>9}{'images/s':>10}{'s/epoch':>9}{'data_wait':>11}")
        for bb in a.backbones:
            for h, w in sizes:
                cfg = TrainConfig(data=str(tmp/'m'), out=str(tmp/f'{bb}_{h}x{w}'), backbone=bb, pretrained='none', size=(h, w),
                                  p=a.p, k=a.k, epochs=1, max_batches_per_epoch=a.batches, num_workers=a.workers,
                                  device=a.device, deterministic=False, progress=False, eval_every=0)
                t0 = time.perf_counter()
                # eval_every=0 still evaluates after the last epoch: the printed images/s is the training epoch's alone
                r = train(cfg)
                print(f"{bb:18}{f'{h}x{w}':>9}{r['img_s']:10.1f}{r['time']:9.1f}{r['data_wait']:11.1%}"
                      f"   (whole call {time.perf_counter()-t0:.1f} s)", flush=True)

if __name__ == '__main__': main()
