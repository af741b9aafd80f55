"""Feature extraction speed on the CPU: the ONNX Runtime backend of `extract_features` against PyTorch.

Variants, each timed `--repeats` times, interleaved, on the same images (best run kept; the machine may be shared):

- `naive loop`: one image read + transformed at a time in the main process, batch stacked, NCHW, `no_grad`;
- `torch extract_features`: today's PyTorch path (`inference_mode`, BatchNorm folded, channels-last), with
  `--workers` DataLoader workers and with none (the default); the faster of the two is the baseline;
- `onnxruntime model only`: the ONNX Runtime session `extract_features` uses, run on tensors transformed beforehand
  (no reading, no resizing), in its slices of ~8 images and in whole batches; the faster is the ceiling;
- `onnxruntime extract_features`: `extract_features(..., backend='onnxruntime')`, end to end: reading JPEGs,
  transforming them in threads while the model runs.

Targets (issue #14): end to end >= 0.9x the model-only ceiling and >= 2x the PyTorch baseline. Also prints CPU ms
per image (this process, its threads and workers), the FLOPs per image and the GFLOP/s achieved.

    python benchmarks/bench_extract.py                    # 320 synthetic Market-1501 crops, EfficientNet-B0, 256x128
    python benchmarks/bench_extract.py --data DIR --n 2000
"""
import os
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
import argparse, platform, resource, tempfile, time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from reid_nb.data import Market1501, make_synthetic_market, read_image, test_tfms
from reid_nb.model import ReIDNet, extract_features, input_norm, ort_session, _ort_embed


def naive_extract(model, samples, batch_size, size):
    "The obvious loop: one image read + transformed at a time, batch stacked, NCHW, no_grad, no workers."
    tfms, out = test_tfms(size, *input_norm(model)), []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            x = torch.stack([tfms(image=read_image(s.path))['image'] for s in samples[i:i + batch_size]])
            out.append(model(x))
    return torch.cat(out)


def cpu_seconds():
    "CPU time of this process (all its threads) and its reaped children (DataLoader workers)."
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def flops_per_image(model, size):
    model.eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model(torch.randn(1, 3, *size))
    return fc.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=320, help='number of images to embed per run')
    ap.add_argument('--data', type=str, default=None, help='a Market-1501 folder (default: a synthetic one in a temp dir)')
    ap.add_argument('--ids', type=int, default=32, help='test identities of the synthetic set (its gallery is repeated to reach --n)')
    ap.add_argument('--backbone', default='efficientnet_b0')
    ap.add_argument('--size', type=int, nargs=2, default=(256, 128), metavar=('H', 'W'))
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--workers', type=int, default=2, help='DataLoader workers of the second torch variant')
    ap.add_argument('--repeats', type=int, default=2, help='timed runs per variant (best kept)')
    ap.add_argument('--threads', type=int, default=None, help='torch and onnxruntime intra-op threads (default: torch default)')
    ap.add_argument('--no-naive', action='store_true', help='skip the naive loop')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    size, bs = tuple(a.size), a.batch_size

    if a.data: samples = Market1501(a.data).gallery
    else:
        root = Path(tempfile.gettempdir())/f'reid_nb_bench_market_{a.ids}'
        make_synthetic_market(root, n_train_ids=2, n_test_ids=a.ids, seed=0)
        samples = Market1501(root).gallery
    if len(samples) < a.n: samples = (samples * (a.n // len(samples) + 1))
    samples = samples[:a.n]

    torch.manual_seed(0)
    model = ReIDNet(a.backbone).eval()
    flops = flops_per_image(model, size)
    print(f"{a.backbone} at {size[0]}x{size[1]}: {flops/1e9:.3f} GFLOP per image (FlopCounterMode; 1 multiply-add = 2 FLOPs)")
    import onnxruntime
    print(f"{len(samples)} images, batch {bs}, CPU, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"load average {os.getloadavg()[0]:.1f}")

    t0 = time.perf_counter(); sess = ort_session(model, size, a.threads)
    print(f"ONNX export + session + check: {time.perf_counter() - t0:.1f} s (once per model and size; cached on disk after)")
    tfms = test_tfms(size, *input_norm(model))
    X = np.stack([tfms(image=read_image(s.path))['image'].numpy() for s in samples])     # pre-transformed, for model only

    def ort_model_only(sliced):
        run = (lambda x: _ort_embed(sess, x)) if sliced else (lambda x: sess.run(None, {'images': x})[0])
        return torch.from_numpy(np.concatenate([run(X[i:i + bs]) for i in range(0, len(X), bs)]))
    ef = dict(batch_size=bs, size=size, progress=False)
    variants = {}
    if not a.no_naive: variants['naive loop'] = lambda: naive_extract(model, samples, bs, size)
    variants.update({
        'torch extract_features': lambda: extract_features(model, samples, **ef).feats,
        f'torch extract_features, {a.workers} workers': lambda: extract_features(model, samples, num_workers=a.workers, **ef).feats,
        'onnxruntime model only': lambda: ort_model_only(True),
        f'onnxruntime model only, {bs} per run': lambda: ort_model_only(False),
        'onnxruntime extract_features': lambda: extract_features(model, samples, backend='onnxruntime', threads=a.threads, **ef).feats})
    warm = samples[:bs]                          # allocator, oneDNN primitive caches, page cache
    naive_extract(model, warm, bs, size); extract_features(model, warm, **ef); ort_model_only(True)
    extract_features(model, warm, backend='onnxruntime', threads=a.threads, **ef)
    best, outs = {k: (float('inf'), float('inf')) for k in variants}, {}
    for _ in range(a.repeats):
        for k, fn in variants.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            outs[k] = fn()
            dt, dc = time.perf_counter() - t0, cpu_seconds() - c0
            best[k] = (min(best[k][0], dt), min(best[k][1], dc))
    c0 = cpu_seconds()
    for s in samples: tfms(image=read_image(s.path))
    decode_ms = 1000 * (cpu_seconds() - c0) / len(samples)

    n = len(samples)
    ips = {k: n / dt for k, (dt, dc) in best.items()}
    print(f"\n{'variant':40s} {'images/s':>9s} {'ms/image':>9s} {'CPU ms/image':>13s} {'GFLOP/s':>8s}")
    for k, (dt, dc) in best.items():
        print(f"{k:40s} {ips[k]:9.1f} {1000*dt/n:9.1f} {1000*dc/n:13.1f} {ips[k]*flops/1e9:8.1f}")
    torch_k = max((k for k in ips if k.startswith('torch')), key=ips.get)
    ceil_k = max((k for k in ips if k.startswith('onnxruntime model only')), key=ips.get)
    e2e = ips['onnxruntime extract_features']
    print(f"\nonnxruntime extract_features (end to end):  {e2e:7.1f} images/s")
    print(f"onnxruntime model only (best: {ceil_k[len('onnxruntime model only'):].strip(', ') or 'slices'}): {ips[ceil_k]:7.1f} images/s"
          f"  -> end to end / model only = {e2e/ips[ceil_k]:.2f}  (target >= 0.9)")
    print(f"torch extract_features (best: {torch_k}): {ips[torch_k]:7.1f} images/s  -> onnxruntime / torch = "
          f"{e2e/ips[torch_k]:.2f}  (target >= 2)")
    if 'naive loop' in ips:
        (tn, cn), (tf, cf) = best['naive loop'], best['torch extract_features']
        print(f"speed-up of extract_features over the naive loop: {tn/tf:.2f}x wall clock, {cn/cf:.2f}x CPU time per image "
              f"(torch); {e2e/ips['naive loop']:.2f}x wall clock (onnxruntime)")
    ref = outs['torch extract_features']
    for k in ('onnxruntime extract_features', f'torch extract_features, {a.workers} workers') + (('naive loop',) if 'naive loop' in outs else ()):
        print(f"max |difference| to torch extract_features: {k}: {(outs[k] - ref).abs().max().item():.1e}")
    print(f"reading + transforming one image alone: {decode_ms:.2f} CPU ms")


if __name__ == '__main__': main()
