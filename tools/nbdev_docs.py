"""`nbdev_docs` (the Quarto site, into _docs/) with the widget-state fix from tools/docs_fix.py.

Plain `nbdev_docs` crashes on notebooks whose saved widget state has a jslink (the explorers); see
docs_fix.py. Run from the repository root: `python tools/nbdev_docs.py`. Needs Quarto on PATH
(.github/workflows/deploy.yaml installs it); without it nbdev would try to download Quarto itself."""
import shutil, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_fix

if __name__ == '__main__':
    if not shutil.which('quarto'): sys.exit('nbdev_docs.py: Quarto is not on PATH (https://quarto.org/docs/get-started/); '
                                            'for a local check without Quarto run `python tools/build_html.py`.')
    docs_fix.patch()
    from nbdev.quarto import nbdev_docs
    nbdev_docs.__wrapped__(n_workers=0)   # in this process, where the fix applies
