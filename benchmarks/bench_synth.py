"""Synthetic Market-1501 generator: speed on one core, and (optionally) how learnable the people are.

    python benchmarks/bench_synth.py [--n_train_ids 32] [--n_test_ids 32] [--repeats 3] [--learn 120]

Speed: images written per second (rendering, JPEG encoding and disk writes included), single-threaded; both per
wall-clock second and per CPU-second (the latter is what one free core would do on a busy machine).
--learn S: trains a tiny 4-layer CNN with batch-hard triplet loss on P x K batches for S seconds on one
CPU thread and prints cross-camera rank-1 / mAP on query vs gallery, before and after, next to a
hand-made colour-histogram matcher -- a check that identity is learnable but not trivial.
"""
import os, sys, time, tempfile, argparse
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
os.environ.setdefault('OMP_NUM_THREADS', '1')
import numpy as np
import cv2
cv2.setNumThreads(1)                      # one core, as the design asks
from reid_nb.data import (make_synthetic_market, Market1501, read_image, ReIDDataset, PKSampler, reid_collate,
                          train_tfms, test_tfms)

def rank1_map(D, qp, qc, gp, gc):
    "Cross-camera rank-1 and mAP from a (num_query, num_gallery) distance matrix (same id + same camera ignored)."
    r1, aps = [], []
    for i in range(len(qp)):
        keep = ~((gp == qp[i]) & (gc == qc[i]))
        match = gp[keep][np.argsort(D[i][keep], kind='stable')] == qp[i]
        hits = np.where(match)[0]
        if not len(hits): continue
        r1.append(match[0]); aps.append(np.mean((np.arange(len(hits)) + 1)/(hits + 1)))
    return float(np.mean(r1)), float(np.mean(aps))

def learnability(root, seconds):
    import torch, torch.nn as nn, torch.nn.functional as F
    torch.set_num_threads(1); torch.manual_seed(0)
    mk, size = Market1501(root), (64, 32)
    ids = lambda ss: (np.array([s.pid for s in ss]), np.array([s.camid for s in ss]))
    (qp, qc), (gp, gc) = ids(mk.query), ids(mk.gallery)
    def hist(s):
        hsv = cv2.cvtColor(read_image(s.path), cv2.COLOR_RGB2HSV)
        f = np.concatenate([cv2.calcHist([hsv[a:b]], [0, 1], None, [16, 4], [0, 180, 0, 256]).ravel() for a, b in ((20, 65), (65, 120))])
        return f/np.linalg.norm(f)
    Q, G = np.stack([hist(s) for s in mk.query]), np.stack([hist(s) for s in mk.gallery])
    print(f"random ranking      rank-1 {rank1_map(np.random.default_rng(0).random((len(Q), len(G))), qp, qc, gp, gc)[0]:.3f}")
    print("colour histogram    rank-1 %.3f  mAP %.3f" % rank1_map(-Q@G.T, qp, qc, gp, gc))
    chans = [(3, 32), (32, 64), (64, 96), (96, 128)]
    net = nn.Sequential(*[m for i, (a, b) in enumerate(chans) for m in (nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                          nn.MaxPool2d(2) if i < 3 else nn.Identity())], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 128))
    def feats(ss):
        net.eval(); dl = torch.utils.data.DataLoader(ReIDDataset(ss, test_tfms(size)), batch_size=64)
        with torch.no_grad(): return torch.cat([F.normalize(net(b[0]), dim=1) for b in dl])
    def score(): return rank1_map((-feats(mk.query)@feats(mk.gallery).T).numpy(), qp, qc, gp, gc)
    print("untrained tiny CNN  rank-1 %.3f  mAP %.3f" % score())
    sampler, ds = PKSampler(mk.train, p=8, k=4), ReIDDataset(mk.train, train_tfms(size))
    opt, t0, epoch = torch.optim.Adam(net.parameters(), 1e-3), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        sampler.set_epoch(epoch); net.train(); epoch += 1
        for b in sampler:
            x, p, _, _ = reid_collate([ds[j] for j in b]); e = net(x)
            d, same = torch.cdist(e, e), p[:, None] == p[None]
            loss = F.relu((d*same).max(1).values - (d + 1e5*same).min(1).values + 0.3).mean()   # batch-hard triplet
            opt.zero_grad(); loss.backward(); opt.step()
    print(f"trained tiny CNN    rank-1 %.3f  mAP %.3f  ({epoch} epochs, {time.perf_counter()-t0:.0f} s, 1 thread)" % score())

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n_train_ids', type=int, default=32)
    ap.add_argument('--n_test_ids', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--learn', type=float, default=0, help='seconds of tiny-CNN training for the learnability check (0: skip)')
    a = ap.parse_args()
    best = 0.
    for r in range(a.repeats):
        with tempfile.TemporaryDirectory() as d:
            t0, c0 = time.perf_counter(), time.process_time()
            c = make_synthetic_market(d, n_train_ids=a.n_train_ids, n_test_ids=a.n_test_ids, seed=r)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            n = c['train_images'] + c['query_images'] + c['gallery_images'] + c['junk']
            best = max(best, n/dc)
            print(f"seed {r}: {n} images in {dt:.2f} s wall = {n/dt:.0f} images/s; {dc:.2f} s CPU = {n/dc:.0f} images per CPU-second")
            if r == 0:
                print(c); print(Market1501(d).stats())
                if a.learn: learnability(d, a.learn)
    print(f"best: {best:.0f} images per CPU-second, single-threaded (target >= 500 images/s on one core; "
          f"wall-clock figures above drop when other processes share the core)")

if __name__ == '__main__': main()
