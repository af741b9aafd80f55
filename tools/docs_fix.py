"""Make nbdev's docs preprocessing (`proc_nbs`, used by `nbdev_proc_nbs` and `nbdev_docs`) work on
notebooks that carry saved widget state with a `jslink`.

The bug (nbdev 2.4.14 with execnb 0.1.x; open upstream as AnswerDotAI/nbdev#1443): when nbdev writes
the processed notebook to `_proc/`, `execnb.nbio.nb2dict` treats *every* key named `source` as cell
source and calls `.splitlines()` on it. A `jslink`/`jsdlink` saves a `LinkModel` whose state has
`"source": [model_id, trait]` (a list), so writing crashes with
`AttributeError: 'list' object has no attribute 'splitlines'`. The explorers in 01_triplets and
04_eval use exactly such a link (slider -> `Stack.selected_index`).

`patch()` replaces `nb2dict` with a version that only splits strings, and makes each notebook start
from an empty widget registry (nbdev merges `Widget.get_manager_state()` into every processed
notebook, so with in-process processing widgets from one notebook would leak into the next).
The patch only takes effect in this process, so callers run `proc_nbs`/`nbdev_docs` with
`n_workers=0` (nbdev otherwise spawns fresh worker processes without it).
"""
import execnb.nbio, nbdev.serve_drv

_orig_nb2dict = execnb.nbio.nb2dict
_orig_main = nbdev.serve_drv.main

def nb2dict(d, k=None):
    "Convert a parsed notebook to a `dict`; like execnb's, but a non-string `source` is left as it is."
    if k == 'source' and isinstance(d, str): return d.splitlines(keepends=True)
    if isinstance(d, list): return [nb2dict(o) for o in d]
    if not isinstance(d, dict): return d
    return {k: nb2dict(v, k) for k, v in d.items() if k[-1] != '_'}

def _proc_one(o):
    "nbdev's per-file docs processor, run with no widgets left over from the previous notebook."
    try: from ipywidgets import Widget
    except ImportError: pass
    else: Widget.close_all()
    return _orig_main(o)

def patch():
    "Apply the fixes to this process (idempotent)."
    execnb.nbio.nb2dict = nb2dict
    nbdev.serve_drv.main = _proc_one
