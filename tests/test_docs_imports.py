"""The docs build's import rule, checked without a browser.

nbdev's docs step executes every code cell that contains an import (in notebooks with exported code).
A cell that mixes an import with other code is then run in a bare kernel at docs-build time and can fail
there (the CI of stop 23 failed on `import subprocess, sys` placed above a test in 00_data). The browser
test builds the site and would catch it too, but only where Chromium is installed; this check needs nbdev only.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_html

def test_no_cell_mixes_imports_with_code():
    mixed = build_html.mixed_import_cells(ROOT/'nbs')
    assert mixed == [], ('these cells mix imports with other code; move the imports to the imports cell: '
                         + '; '.join(f'{f} cell {i}: {line}' for f, i, line in mixed))

def test_the_check_finds_a_mixed_cell(tmp_path):
    "The checker itself: a notebook with exported code and a mixed cell is reported, an import-only cell is not."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('#| export\ndef f(): return 1'),
                nbformat.v4.new_code_cell('import json'),
                nbformat.v4.new_code_cell('import os\nx = os.sep')]
    nbformat.write(nb, tmp_path/'a.ipynb')
    assert [(f, line) for f, _, line in build_html.mixed_import_cells(tmp_path)] == [('a.ipynb', 'import os')]
