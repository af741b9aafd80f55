"""Feature extraction speed: `reid_nb.model.extract_features` against the naive loop.

The naive loop reads and transforms one image at a time in the main process, stacks a batch and runs the
model in NCHW under `torch.no_grad()`. `extract_features` adds `torch.inference_mode`, BatchNorm folded
into the convolutions, channels-last layout and DataLoader workers. Each variant is timed `--repeats`
times, interleaved, on the same images and the best run is kept (the machine may be shared); CPU seconds
per image (this process and its workers) are printed too, being less sensitive to other load than wall time.
Also prints the model's FLOPs per image (torch.utils.flop_counter) and the GFLOP/s achieved.

    python benchmarks/bench_extract.py --n 128            # synthetic Market-1501 crops, EfficientNet-B0, 256x128
    python benchmarks/bench_extract.py --data DIR --n 2000 --device cuda
"""
import os
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
import argparse, platform, resource, tempfile, time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from reid_nb.data import Market1501, make_synthetic_market, read_image, test_tfms
from reid_nb.model import ReIDNet, extract_features


def naive_extract(model, samples, batch_size, size, device):
    "The obvious loop: one image read + transformed at a time, batch stacked, NCHW, no_grad, no workers."
    tfms, out = test_tfms(size), []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            x = torch.stack([tfms(image=read_image(s.path))['image'] for s in samples[i:i + batch_size]]).to(device)
            out.append(model(x).cpu())
    return torch.cat(out)


def cpu_seconds():
    "CPU time of this process and its reaped children (DataLoader workers)."
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def flops_per_image(model, size, device):
    model.eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model(torch.randn(1, 3, *size, device=device))
    return fc.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=128, help='number of images to embed per run')
    ap.add_argument('--data', type=str, default=None, help='a Market-1501 folder (default: a synthetic one in a temp dir)')
    ap.add_argument('--ids', type=int, default=32, help='test identities of the synthetic set (its gallery is repeated to reach --n)')
    ap.add_argument('--backbone', default='efficientnet_b0')
    ap.add_argument('--size', type=int, nargs=2, default=(256, 128), metavar=('H', 'W'))
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--workers', type=int, default=2, help='DataLoader workers for extract_features')
    ap.add_argument('--repeats', type=int, default=2, help='timed runs per variant (best kept)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch default)')
    ap.add_argument('--ablation', action='store_true', help='also time extract_features with one optimisation off at a time')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    size, device = tuple(a.size), torch.device(a.device)

    if a.data: samples = Market1501(a.data).gallery
    else:
        root = Path(tempfile.gettempdir())/f'reid_nb_bench_market_{a.ids}'
        make_synthetic_market(root, n_train_ids=2, n_test_ids=a.ids, seed=0)
        samples = Market1501(root).gallery
    if len(samples) < a.n: samples = (samples * (a.n // len(samples) + 1))
    samples = samples[:a.n]

    torch.manual_seed(0)
    model = ReIDNet(a.backbone).to(device).eval()
    flops = flops_per_image(model, size, device)
    print(f"{a.backbone} at {size[0]}x{size[1]}: {flops/1e9:.3f} GFLOP per image (FlopCounterMode; 1 multiply-add = 2 FLOPs)")
    print(f"{len(samples)} images, batch {a.batch_size}, device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.1f}")

    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' else (lambda: None)
    variants = {'naive loop': lambda: naive_extract(model, samples, a.batch_size, size, device),
                'extract_features': lambda: extract_features(model, samples, a.batch_size, device, num_workers=a.workers,
                                                             size=size, progress=False).feats}
    if a.ablation:
        variants.update({
            '  without workers': lambda: extract_features(model, samples, a.batch_size, device, size=size, progress=False).feats,
            '  without BN folding': lambda: extract_features(model, samples, a.batch_size, device, num_workers=a.workers, size=size,
                                                            progress=False, fuse_bn=False).feats,
            '  without channels-last': lambda: extract_features(model, samples, a.batch_size, device, num_workers=a.workers,
                                                               size=size, progress=False, channels_last=False).feats})
    # warm-up (allocator, oneDNN primitive caches, page cache) on one batch each
    warm = samples[:a.batch_size]
    naive_extract(model, warm, a.batch_size, size, device)
    extract_features(model, warm, a.batch_size, device, size=size, progress=False)
    best, outs = {k: (float('inf'), float('inf')) for k in variants}, {}
    for _ in range(a.repeats):
        for k, fn in variants.items():
            sync(); c0, t0 = cpu_seconds(), time.perf_counter()
            outs[k] = fn(); sync()
            dt, dc = time.perf_counter() - t0, cpu_seconds() - c0
            best[k] = (min(best[k][0], dt), min(best[k][1], dc))
    # Same embeddings either way (float rounding aside); the naive loop was not handed a modified model.
    diff = (outs['naive loop'] - outs['extract_features']).abs().max().item()
    tfms, c0 = test_tfms(size), cpu_seconds()
    for s in samples: tfms(image=read_image(s.path))
    decode_ms = 1000 * (cpu_seconds() - c0) / len(samples)

    print(f"\n{'variant':26s} {'images/s':>9s} {'ms/image':>9s} {'CPU ms/image':>13s} {'GFLOP/s':>8s}")
    for k, (dt, dc) in best.items():
        ips = len(samples) / dt
        print(f"{k:26s} {ips:9.1f} {1000*dt/len(samples):9.1f} {1000*dc/len(samples):13.1f} {ips*flops/1e9:8.1f}")
    (tn, cn), (tf, cf) = best['naive loop'], best['extract_features']
    print(f"\nspeed-up of extract_features over the naive loop: {tn/tf:.2f}x wall clock, {cn/cf:.2f}x CPU time per image")
    print(f"max |difference| between their embeddings: {diff:.1e}")
    print(f"reading + transforming one image alone: {decode_ms:.2f} CPU ms (what the workers take off the main process)")


if __name__ == '__main__': main()
