"""Training throughput: images/s of `train` (P×K batches, batch-hard triplet + ID loss) for a few backbones and sizes.

Writes a small synthetic Market-1501-style set, runs `train` for 1 epoch of a few batches per setting and prints the
images/s of that epoch (data loading, forward, backward, optimizer step; no evaluation). On CUDA the runs use AMP and
channels-last (`TrainConfig` defaults); on CPU full float32.

Usage: python benchmarks/bench_train.py [--device auto|cpu|cuda] [--batches 8] [--p 16] [--k 4] [--workers 2]
                                        [--backbones efficientnet_b0 resnet18] [--sizes 128x64 256x128]
"""
import argparse, os, tempfile, time
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('MPLBACKEND', 'Agg')
from pathlib import Path
import torch
from reid_nb.data import make_synthetic_market
from reid_nb.train import TrainConfig, train

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='auto'); ap.add_argument('--batches', type=int, default=8)
    ap.add_argument('--p', type=int, default=16); ap.add_argument('--k', type=int, default=4)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--backbones', nargs='+', default=['efficientnet_b0', 'resnet18'])
    ap.add_argument('--sizes', nargs='+', default=['128x64', '256x128'])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    make_synthetic_market(tmp/'m', n_train_ids=max(a.p, 32), n_test_ids=4, seed=0)
    print(f"device={a.device} torch threads={torch.get_num_threads()} cuda={torch.cuda.is_available()} P×K={a.p}×{a.k}")
    print(f"{'backbone':18}{'size':>9}{'images/s':>10}{'s/epoch':>9}")
    for bb in a.backbones:
        for s in a.sizes:
            h, w = map(int, s.split('x'))
            cfg = TrainConfig(data=str(tmp/'m'), out=str(tmp/f'{bb}_{s}'), backbone=bb, pretrained='none', size=(h, w),
                              p=a.p, k=a.k, epochs=1, max_batches_per_epoch=a.batches, num_workers=a.workers,
                              device=a.device, deterministic=False, progress=False, eval_every=0)
            t0 = time.perf_counter()
            # eval_every=0 still evaluates after the last epoch: the printed images/s is the training epoch's alone
            r = train(cfg)
            print(f"{bb:18}{s:>9}{r['img_s']:10.1f}{r['time']:9.1f}   (whole call {time.perf_counter()-t0:.1f} s)", flush=True)

if __name__ == '__main__': main()
