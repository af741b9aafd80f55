"""Every command, run as a user runs it, on every kind of bad input we know of: one line `PROG: error: ...` naming the
option or file, exit code 2, no traceback, and nothing the user had is changed (hashes of their files before and after).

One table per command; each row is (name, arguments, words the message must hold). `{D}` is a small synthetic data
set, `{RUN}` a finished training run, `{CKPT}` its best.pth, `{T}` a fresh folder for the row."""
import errno, hashlib, os, resource, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
import torch

ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'OMP_WAIT_POLICY': 'PASSIVE'}
ENV.pop('REID_NB_DEBUG', None)
MODEL = ['--backbone', 'test_efficientnet', '--pretrained', 'none', '--size', '64', '32', '--p', '2', '--k', '2', '--emb_dim', '16']
QUICK = ['--min_steps', '0', '--num_workers', '0', '--no-progress']
TINY = MODEL + ['--epochs', '1', '--max_batches_per_epoch', '1'] + QUICK


def command(prog):
    "The console script next to this interpreter (what pip installed), else the same entry point through `python -c`."
    exe = Path(sys.executable).parent/prog
    return [str(exe)] if exe.exists() else [sys.executable, '-c', f'from reid_nb.cli import {prog}; {prog}()']


def run(prog, args, timeout=300, **kw):
    return subprocess.run(command(prog) + [str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=timeout, **kw)


def hashes(*roots) -> dict:
    "SHA-256 of every file under `roots` (what must not change)."
    out = {}
    for r in map(Path, roots):
        for f in ([r] if r.is_file() else sorted(r.rglob('*')) if r.exists() else []):
            if f.is_file() and f.name != '.lock': out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def assert_one_line(r, prog, words):
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert 'Traceback' not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), r.stderr
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    from reid_nb.data import make_synthetic_market
    from reid_nb.train import TrainConfig, train
    root = tmp_path_factory.mktemp('bad_input')
    make_synthetic_market(root/'market', n_train_ids=4, n_test_ids=3, seed=0, size=(64, 32))
    train(TrainConfig(data=str(root/'market'), out=str(root/'run'), backbone='test_efficientnet', pretrained='none', size=(64, 32),
                      p=2, k=2, emb_dim=16, epochs=1, max_batches_per_epoch=1, min_steps=0, num_workers=0, progress=False))
    (root/'notes.txt').write_text('my notes, not weights')
    (root/'model.onnx').write_bytes(b'\x08\x07\x12\x07pytorch\x1a\x032.1:\x00onnx')
    (root/'a_file').write_text('in the way')
    from reid_nb.search import Gallery
    from reid_nb.model import ReIDNet
    model = ReIDNet.from_checkpoint(root/'run'/'best.pth')
    g = Gallery.from_folder(root/'market'/'bounding_box_test', model, size=(64, 32))
    g.save(root/'gallery.pth')
    state = torch.load(root/'gallery.pth', weights_only=True)
    state['feats'][2, 0] = float('nan'); torch.save(state, root/'nan_gallery.pth')
    del state['feats']; torch.save(state, root/'nofeats_gallery.pth')
    return root


def fill(args, env, t):
    subst = {'{D}': str(env/'market'), '{RUN}': str(env/'run'), '{CKPT}': str(env/'run'/'best.pth'), '{T}': str(t), '{E}': str(env)}
    out = []
    for a in args:
        a = str(a)
        for k, v in subst.items(): a = a.replace(k, v)
        out.append(a)
    return out


def check_rows(prog, rows, env, tmp_path):
    before = hashes(env)
    for i, (name, args, words) in enumerate(rows):
        t = tmp_path/f'row{i}'; t.mkdir()
        r = run(prog, fill(args, env, t))
        line = assert_one_line(r, prog, fill(words, env, t))
        print(f'{name}: {line}')
    assert hashes(env) == before, 'a user file changed'


DATA = [
    ('no identities', ['--out', '{T}/m', '--n_train_ids', '0'], ['--n_train_ids', 'at least 2']),
    ('negative count', ['--out', '{T}/m', '--n-test-ids', '-3'], ['--n_test_ids', 'at least 1']),
    ('data set already there', ['--out', '{D}', '--n_train_ids', '4'], ['{D}']),
    ('out is a file', ['--out', '{E}/a_file'], ['a_file']),
    ('unknown option', ['--out', '{T}/m', '--n_ids', '3'], ['unrecognized arguments: --n_ids']),
]

TRAIN = [
    ('offline ImageNet weights (the defaults)', ['--data', '{D}', '--out', '{T}/run', '--size', '64', '32', '--epochs', '1'],
     ['efficientnet_b0', 'HF_HUB_OFFLINE', '--pretrained none']),
    ('missing data folder', ['--data', '{T}/nope', '--out', '{T}/run', *TINY], ['nope', 'does not exist']),
    ('out is a file', ['--data', '{D}', '--out', '{E}/a_file', *TINY], ['a_file', 'is a file, not a folder (--out)']),
    ('P of 1', ['--data', '{D}', '--out', '{T}/run', *TINY, '--p', '1'], ['p=1 (--p)']),
    ('K of 0', ['--data', '{D}', '--out', '{T}/run', *TINY, '--k', '0'], ['k=0 (--k)']),
    ('zero epochs', ['--data', '{D}', '--out', '{T}/run', *TINY, '--epochs', '0'], ['epochs=0 (--epochs)', 'at least 1']),
    ('size 0 0', ['--data', '{D}', '--out', '{T}/run', *TINY, '--size', '0', '0'], ['size=(0, 0) (--size)']),
    ('emb_dim 0', ['--data', '{D}', '--out', '{T}/run', *TINY, '--emb_dim', '0'], ['emb_dim=0 (--emb_dim)']),
    ('unknown backbone', ['--data', '{D}', '--out', '{T}/run', *TINY, '--backbone', 'efficientnet_b99'], ["efficientnet_b99", 'not a timm model']),
    ('missing weights file', ['--data', '{D}', '--out', '{T}/run', *TINY, '--pretrained', '{T}/w.pth'], ['w.pth', 'no such file']),
    ('weights file is text', ['--data', '{D}', '--out', '{T}/run', *TINY, '--pretrained', '{E}/notes.txt'], ['notes.txt', 'is a text file']),
    ('weights file is ONNX', ['--data', '{D}', '--out', '{T}/run', *TINY, '--pretrained', '{E}/model.onnx'], ['model.onnx', 'is an ONNX model']),
    ('a run is there already', ['--data', '{D}', '--out', '{RUN}', *TINY], ['{RUN}', 'holds a run', '--resume', '--overwrite']),
    ('resume with another emb_dim', ['--data', '{D}', '--out', '{RUN}', *TINY, '--emb_dim', '32', '--resume'],
     ['--emb_dim', 'emb_dim=16', 'now 32']),
    ('resume with another backbone', ['--data', '{D}', '--out', '{RUN}', *TINY, '--backbone', 'resnet18', '--resume'],
     ['--backbone', "'test_efficientnet'", "'resnet18'"]),
    ('bad choice', ['--data', '{D}', '--out', '{T}/run', *TINY, '--mode', 'online'], ["--mode", "invalid choice: 'online'"]),
]

EVAL = [
    ('no --ckpt', ['--data', '{D}'], ['required', '--ckpt']),
    ('missing checkpoint', ['--data', '{D}', '--ckpt', '{T}/nope.pth'], ['nope.pth', 'no such file']),
    ('checkpoint is text', ['--data', '{D}', '--ckpt', '{E}/notes.txt'], ['notes.txt', 'is a text file, not a reid_nb checkpoint']),
    ('no query folder', ['--data', '{T}', '--ckpt', '{CKPT}'], ['{T}', 'holds no known data set', 'query/']),
    ('unknown metric', ['--data', '{D}', '--ckpt', '{CKPT}', '--metric', 'hamming'], ["invalid choice: 'hamming'"]),
    ('size 0 0', ['--data', '{D}', '--ckpt', '{CKPT}', '--size', '0', '0'], ['--size', 'at least 1']),
    ('json onto a folder path with a file in the way', ['--data', '{D}', '--ckpt', '{CKPT}', '--json', '{E}/a_file/r.json'], ['a_file: is a file, not a folder']),
]

SEARCH = [
    ('k of 0', ['--ckpt', '{CKPT}', '--gallery', '{E}/gallery.pth', '--query', '{D}/query/x.jpg', '--k', '0'], ['--k', 'at least 1']),
    ('k of -1', ['--ckpt', '{CKPT}', '--gallery', '{E}/gallery.pth', '--query', '{D}/query/x.jpg', '--k', '-1'], ['--k', 'at least 1']),
    ('gallery with NaN features', ['--ckpt', '{CKPT}', '--gallery', '{E}/nan_gallery.pth', '--query', '{Q}'],
     ['nan_gallery.pth', 'hold NaN or inf (first: row 2']),
    ('gallery file without feats', ['--ckpt', '{CKPT}', '--gallery', '{E}/nofeats_gallery.pth', '--query', '{Q}'],
     ['nofeats_gallery.pth', 'without feats']),
    ('missing gallery', ['--ckpt', '{CKPT}', '--gallery', '{T}/nope', '--query', '{Q}'], ['nope', '--gallery']),
    ('missing query image', ['--ckpt', '{CKPT}', '--gallery', '{E}/gallery.pth', '--query', '{T}/me.jpg'], ['me.jpg']),
    ('query is text', ['--ckpt', '{CKPT}', '--gallery', '{E}/gallery.pth', '--query', '{E}/notes.txt'], ['notes.txt']),
    ('checkpoint is ONNX', ['--ckpt', '{E}/model.onnx', '--gallery', '{E}/gallery.pth', '--query', '{Q}'], ['model.onnx', 'is an ONNX model, not a reid_nb checkpoint']),
    ('no --query', ['--ckpt', '{CKPT}', '--gallery', '{E}/gallery.pth'], ['required', '--query']),
]

DEMO = [
    ('zero epochs', ['--out', '{T}/demo', '--epochs', '0'], ['--epochs', 'at least 1']),
    ('out is a file', ['--out', '{E}/a_file'], ['a_file', 'is a file, not a folder (--out)']),
    ('out holds files', ['--out', '{E}', '--epochs', '1'], ['holds files already', '--overwrite']),
    ('unknown option', ['--out', '{T}/demo', '--epoch', '1'], ['unrecognized arguments: --epoch']),
]


def test_reid_nb_data(env, tmp_path): check_rows('reid_nb_data', DATA, env, tmp_path)
def test_reid_nb_train(env, tmp_path): check_rows('reid_nb_train', TRAIN, env, tmp_path)
def test_reid_nb_eval(env, tmp_path): check_rows('reid_nb_eval', EVAL, env, tmp_path)
def test_reid_nb_demo(env, tmp_path): check_rows('reid_nb_demo', DEMO, env, tmp_path)


def test_reid_nb_search(env, tmp_path):
    q = str(sorted((env/'market'/'query').glob('*.jpg'))[0])
    check_rows('reid_nb_search', [(n, [a.replace('{Q}', q) for a in args], w) for n, args, w in SEARCH], env, tmp_path)


def test_resume_with_fewer_epochs_than_done(env, tmp_path):
    "The run did 1 epoch; asking for fewer on --resume is refused (the lr alone would be a change that takes effect)."
    from reid_nb.train import TrainConfig, train
    run_dir = tmp_path/'r'
    train(TrainConfig(data=str(env/'market'), out=str(run_dir), backbone='test_efficientnet', pretrained='none', size=(64, 32),
                      p=2, k=2, emb_dim=16, epochs=2, max_batches_per_epoch=1, min_steps=0, num_workers=0, progress=False))
    before = hashes(run_dir)
    r = run('reid_nb_train', ['--data', env/'market', '--out', run_dir, *TINY, '--resume'])
    assert_one_line(r, 'reid_nb_train', ['--epochs 1', 'already done 2 epochs'])
    assert hashes(run_dir) == before


def test_debug_shows_the_traceback(env, tmp_path):
    r = run('reid_nb_eval', ['--data', env/'market', '--ckpt', tmp_path/'nope.pth', '--debug'])
    assert r.returncode != 0 and 'Traceback' in r.stderr and 'nope.pth' in r.stderr
    r = subprocess.run(command('reid_nb_eval') + ['--data', str(env/'market'), '--ckpt', str(tmp_path/'nope.pth')],
                       capture_output=True, text=True, env={**ENV, 'REID_NB_DEBUG': '1'})
    assert r.returncode != 0 and 'Traceback' in r.stderr


def test_concurrent_run_is_refused_with_the_holders_pid(env, tmp_path):
    "A run holds the folder's lock; a second one into the same --out refuses and names the first one's pid."
    from reid_nb.train import RunLock
    out = tmp_path/'busy'
    with RunLock(out):
        r = run('reid_nb_train', ['--data', env/'market', '--out', out, *TINY])
        assert_one_line(r, 'reid_nb_train', [str(out), f'in use by another training run (pid {os.getpid()})'])
        assert [p.name for p in out.iterdir()] == ['.lock']    # the refused run wrote nothing


def test_two_runs_at_once_end_with_one_consistent_run(env, tmp_path):
    "Started together into one --out: one trains, the other refuses; the folder holds one run's files, not a mix."
    out = tmp_path/'race'
    args = ['--data', env/'market', '--out', out, *MODEL, '--epochs', '2', '--max_batches_per_epoch', '2', *QUICK]
    procs = [subprocess.Popen(command('reid_nb_train') + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for _ in range(2)]
    res = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _, _ in res)
    assert codes == [0, 2], res             # the second finds the lock held, or (started late) a finished run
    loser = next(e for c, _, e in res if c == 2)
    assert 'in use by another training run' in loser or 'holds a run' in loser, loser
    import json
    epochs = [json.loads(l)['epoch'] for l in (out/'metrics.jsonl').read_text().splitlines()]
    assert epochs == [1, 2], epochs


def test_overwrite_moves_the_old_run_aside(env, tmp_path):
    out = tmp_path/'run'
    shutil.copytree(env/'run', out)
    before = hashes(out)
    r = run('reid_nb_train', ['--data', env/'market', '--out', out, *TINY, '--overwrite'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'moved the previous run in {out} to {out}.1' in r.stdout
    assert {k.replace(f'{out}.1', str(out)): v for k, v in hashes(tmp_path/'run.1').items()} == before   # every old file, intact


def _small_disk(tmp_path):
    "A 3 MB tmpfs when we may mount one; else None."
    mnt = tmp_path/'small'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(mnt)], capture_output=True)
    return mnt if r.returncode == 0 else None


def _file_size_limit(limit):
    "For subprocess: writes past `limit` bytes fail with EFBIG, as a full disk fails with ENOSPC."
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_disk_full_names_the_file_and_keeps_the_last_checkpoint(env, tmp_path):
    mnt = _small_disk(tmp_path)
    try:
        out = (mnt or tmp_path)/'run'
        shutil.copytree(env/'run', out)
        filler = None
        if mnt is not None:                                     # leave less room than one checkpoint takes
            room = shutil.disk_usage(mnt).free - (out/'last.pth').stat().st_size // 2
            filler = mnt/'filler'; filler.write_bytes(b'\0' * max(room, 0))
        before = hashes(out)
        args = ['--data', env/'market', '--out', out, *MODEL, '--epochs', '2', '--max_batches_per_epoch', '1', *QUICK, '--resume']
        limit = {} if mnt else dict(preexec_fn=_file_size_limit((out/'last.pth').stat().st_size // 2))
        r = run('reid_nb_train', args, **limit)
        line = assert_one_line(r, 'reid_nb_train', [str(out)])
        assert ('No space left on device' if mnt else 'File too large') in line, line
        assert '.pth' in line, line
        assert hashes(out)[str(out/'last.pth')] == before[str(out/'last.pth')]      # the previous checkpoint is intact
        if filler: filler.unlink()
        # a gallery saved onto the full disk: the same
        if mnt is not None:
            (mnt/'g.pth').write_bytes(b'old gallery'); filler = mnt/'filler'
            filler.write_bytes(b'\0' * max(shutil.disk_usage(mnt).free - 1000, 0))
            r = run('reid_nb_search', ['--ckpt', env/'run'/'best.pth', '--gallery', env/'market'/'bounding_box_test',
                                       '--query', sorted((env/'market'/'query').glob('*.jpg'))[0], '--save_gallery', mnt/'g.pth'])
            line = assert_one_line(r, 'reid_nb_search', [str(mnt/'g.pth'), 'No space left on device'])
            assert (mnt/'g.pth').read_bytes() == b'old gallery'
            print(line)
    finally:
        if mnt is not None: subprocess.run(['umount', str(mnt)])
