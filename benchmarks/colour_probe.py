"""What a model's mistakes on real photographs look like: camera bias, and a fixed colour descriptor beside it.

A probe, not a method of the library. For a checkpoint and a real data set in the Market-1501 layout it prints, on the
query/gallery split (or, with `--split train`, on the training split used as both query and gallery, so that the
test people stay unseen):

- the checkpoint's mAP / Rank-1 with cosine distance, as `reid_nb_eval` scores it;
- the same-camera share of each query's top 10 (other people only), against that camera's share of the gallery:
  a model blind to the camera ranks other people of the query's camera no more often than they occur;
- a fixed descriptor, no learning: soft histograms (16 x 16 bins) of rg-chromaticity, each pixel's colour with its
  brightness divided out, in 8 horizontal stripes of the crop's central columns, square-rooted and L2-normalised;
  its mAP alone;
- the two distances added, each divided by its spread over the whole distance matrix (labels unused), and with the
  colour distance at half and twice that weight.

    python benchmarks/colour_probe.py --data ../shared/data/cuhk01 --ckpt reid_nb_demo/run/best.pth [--split train]

A missing data folder is skipped with a message (real sets are never shipped with the project).
"""
import argparse, json, os
for _k, _v in dict(NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg').items(): os.environ.setdefault(_k, _v)
from pathlib import Path
import numpy as np

def chroma_stripes(path, stripes:int=8, bins:int=16) -> np.ndarray:
    "Soft rg-chromaticity histograms of `stripes` horizontal bands (central 3/4 of the width), square-rooted, unit length."
    from reid_nb.data import read_image
    import cv2
    im = cv2.resize(read_image(path), (32, 8*stripes), interpolation=cv2.INTER_AREA).astype(np.float32) + 1
    rg = (im/im.sum(2, keepdims=True))[..., :2]
    F = []
    for y in range(0, 8*stripes, 8):
        x = rg[y:y+8, 4:28].reshape(-1, 2)*bins - 0.5        # each pixel shared between its 4 nearest bins
        i0 = np.floor(x).astype(int)
        f = x - i0
        h = np.zeros((bins, bins))
        for dx in (0, 1):
            for dy in (0, 1):
                w = (f[:, 0] if dx else 1 - f[:, 0])*(f[:, 1] if dy else 1 - f[:, 1])
                np.add.at(h, (np.clip(i0[:, 0] + dx, 0, bins - 1), np.clip(i0[:, 1] + dy, 0, bins - 1)), w)
        F.append(h.ravel())
    f = np.sqrt(np.concatenate(F))
    return f/np.linalg.norm(f)

def same_camera_share(D, qp, qc, gp, gc, k:int=10) -> tuple:
    "Mean share of the query's camera in its top `k` (same person and camera excluded), and in the gallery."
    top, base = [], []
    for i in range(len(qp)):
        keep = ~((gp == qp[i]) & (gc == qc[i]))
        order = np.argsort(D[i][keep], kind='stable')[:k]
        top.append((gc[keep][order] == qc[i]).mean())
        base.append(((gc[keep] == qc[i]) & (gp[keep] != qp[i])).mean())
    return float(np.mean(top)), float(np.mean(base))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', required=True, help='a real data set in the Market-1501 layout')
    ap.add_argument('--ckpt', required=True, help='a reid_nb checkpoint (e.g. reid_nb_demo/run/best.pth)')
    ap.add_argument('--split', default='test', choices=['test', 'train'],
                    help="'test': query vs gallery; 'train': the training split as query and gallery")
    ap.add_argument('--json', default=None, help='also write the figures here')
    a = ap.parse_args()
    if not Path(a.data).expanduser().is_dir():
        print(f"skipped: no data set at {a.data} (real sets are not shipped; give --data a Market-1501-layout folder)")
        return
    from reid_nb.data import load_dataset
    from reid_nb.eval import load_model
    from reid_nb.model import extract_features
    from reid_nb.metrics import distance_matrix, evaluate
    ds = load_dataset(a.data, splits=('train',) if a.split == 'train' else ('query', 'gallery'))
    query, gallery = (ds.train, ds.train) if a.split == 'train' else (ds.query, ds.gallery)
    model, size = load_model(a.ckpt)
    emb = lambda items: extract_features(model, items, size=size, batch_size=64, progress=False)
    qf = emb(query)
    gf = qf if gallery is query else emb(gallery)
    D = distance_matrix(qf.feats, gf.feats, 'cosine')
    ids = lambda items: (np.array([s.pid for s in items]), np.array([s.camid for s in items]))
    (qp, qc), (gp, gc) = ids(query), ids(gallery)
    qh = np.stack([chroma_stripes(s.path) for s in query])
    gh = qh if gallery is query else np.stack([chroma_stripes(s.path) for s in gallery])
    Dc = 1 - qh @ gh.T
    res = dict(data=str(a.data), ckpt=str(a.ckpt), split=a.split, query=len(query), gallery=len(gallery))
    def put(name, M):
        r = evaluate(M, qp, gp, qc, gc)
        res[name] = [round(100*r['mAP'], 1), round(100*r['rank1'], 1)]
    put('model', D)
    top, base = same_camera_share(D, qp, qc, gp, gc)
    res['same_camera_top10'], res['same_camera_gallery'] = round(100*top, 1), round(100*base, 1)
    put('colour', Dc)
    for w in (0.5, 1.0, 2.0):
        put(f'model+colour x{w:g}', D/D.std() + w*Dc/Dc.std())
    print(f"{a.ckpt} on {a.data} ({a.split}: {len(query)} query, {len(gallery)} gallery images), mAP / Rank-1 %:")
    for k in ('model', 'colour', 'model+colour x0.5', 'model+colour x1', 'model+colour x2'):
        print(f"  {k:24s} {res[k][0]:5.1f} / {res[k][1]:5.1f}")
    print(f"  same-camera share of the top 10: {res['same_camera_top10']:.1f}% (of the gallery: "
          f"{res['same_camera_gallery']:.1f}%)")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))

if __name__ == '__main__':
    main()
