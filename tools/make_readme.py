"""Write README.md from nbs/index.ipynb.

`nbdev_readme` needs Quarto, which cannot be installed on our machines, so this script does the
same job with the standard library: markdown cells are copied, code cells become ```python blocks
with their text outputs, and PNG outputs are written to nbs/images/readme_*.png and linked; markdown links to
images/ (beside the notebook) become nbs/images/.
Cells marked `#| hide` are left out; `#| echo: false` keeps only the output. Run by tools/run_tests.sh,
which fails when the README is out of step with the notebook."""
import base64, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NB, OUT, IMG = ROOT/'nbs'/'index.ipynb', ROOT/'README.md', ROOT/'nbs'/'images'
HEADER = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
def _directives(src): return {m.group(1): (m.group(2) or '').strip() for m in re.finditer(r'^#\|[ \t]*([\w-]+):?[ \t]*(.*)$', src, re.M)}
def _strip_directives(src): return '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith('#|')).strip('\n')
def _text(x): return ''.join(x) if isinstance(x, list) else x

def convert(nb):
    "Markdown for the notebook `nb` (a dict), and the images {name: bytes} it links."
    parts, images = [], {}
    for i, cell in enumerate(nb['cells']):
        src = _src(cell); d = _directives(src)
        if 'hide' in d or d.get('include') == 'false': continue
        if cell['cell_type'] == 'markdown': parts.append(src.strip('\n').replace('](images/', '](nbs/images/')); continue   # links from the repo root
        if cell['cell_type'] != 'code': continue
        body = _strip_directives(src)
        if body and d.get('echo') != 'false': parts.append(f'```python\n{body}\n```')
        for j, o in enumerate(cell.get('outputs', [])):
            data = o.get('data', {})
            if o.get('output_type') == 'stream' and o.get('name') == 'stdout': parts.append('    ' + _text(o['text']).rstrip('\n').replace('\n', '\n    '))
            elif 'image/png' in data:
                name = f'readme_{i}_{j}.png'
                images[name] = base64.b64decode(_text(data['image/png']))
                parts.append(f'![](nbs/images/{name})')
            elif 'text/markdown' in data: parts.append(_text(data['text/markdown']).strip('\n'))
            elif 'text/plain' in data and 'application/vnd.jupyter.widget-view+json' not in data:
                parts.append('    ' + _text(data['text/plain']).rstrip('\n').replace('\n', '\n    '))
    return HEADER + '\n\n'.join(parts) + '\n', images

def main():
    md, images = convert(json.loads(NB.read_text(encoding='utf-8')))
    IMG.mkdir(exist_ok=True)
    for old in IMG.glob('readme_*.png'):
        if old.name not in images: old.unlink()
    for name, b in images.items():
        p = IMG/name
        if not p.exists() or p.read_bytes() != b: p.write_bytes(b)
    if not OUT.exists() or OUT.read_text(encoding='utf-8') != md: OUT.write_text(md, encoding='utf-8')

if __name__ == '__main__': sys.exit(main())
