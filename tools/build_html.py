"""Build the docs as plain HTML pages that work offline, without Quarto: `python tools/build_html.py`.

The published site is rendered by Quarto (`nbdev_docs`, in .github/workflows/deploy.yaml); Quarto
cannot be installed on every machine, so this script checks everything before it:
1. nbdev's docs preprocessing (`proc_nbs`, what `nbdev_proc_nbs`/`nbdev_docs` run; the CLI would try
   to download Quarto first) writes the processed notebooks to `_proc/`;
2. nbconvert's `HTMLExporter` turns each processed notebook (tutorials included) into one page under
   `site/` (`site/01_triplets.html`, `site/tutorials/....html`);
3. saved widget state is rendered by the Jupyter widget HTML manager, from a local copy: the pages
   need no Python kernel and make no request outside the site (require.js, MathJax and the widget
   bundle are copied into `site/_static/`).

The JavaScript files come from npm (`tools/widget_manager/package.json`); `bash tools/install_browser.sh`
installs them (or `npm ci --prefix tools/widget_manager`). Serve the result with
`python -m http.server -d site` and open http://127.0.0.1:8000/.
"""
import argparse, json, os, re, shutil, sys, time
from pathlib import Path

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT/'tools'/'widget_manager'/'node_modules'
# (source under node_modules, destination under site/_static). MathJax is 2.x because the widgets
# typeset labels with MathJax 2's API (`MathJax.Hub.Queue`); with MathJax 3 every page with a widget
# throws "Cannot read properties of undefined (reading 'Queue')". Only the parts the
# TeX-AMS_CHTML-full config loads are copied.
_MJ = ['MathJax.js', 'config/TeX-AMS_CHTML-full.js', 'config/Safe.js', 'config/local', 'extensions',
       'jax/input/TeX', 'jax/output/CommonHTML', 'jax/output/PreviewHTML', 'jax/element',
       'fonts/HTML-CSS/TeX/woff', 'localization/en']
ASSETS = ([('@jupyter-widgets/html-manager/dist', 'html-manager'), ('requirejs/require.js', 'require.js')]
          + [(f'mathjax/{o}', f'mathjax/{o}') for o in _MJ])
MATHJAX = 'mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe'
_SKIP_ASSETS = shutil.ignore_patterns('*.map', 'embed.js')

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{#- Everything a page loads comes from site/_static (resources.static is the relative path to it):
     the exporter's require_js_url, mathjax_url and widget_renderer_url point there; mermaid is dropped. -#}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<link rel="icon" href="data:,">{#- no /favicon.ico request (a 404 is a console error) -#}
<style>
  nav.reid-nav { font-family: system-ui, sans-serif; font-size: 14px; padding: 8px 16px; border-bottom: 1px solid #ddd; }
  nav.reid-nav a { margin-right: 14px; text-decoration: none; }
  nav.reid-nav a.current { font-weight: bold; }
  header.reid-title { padding: 8px 16px 0 16px; font-family: system-ui, sans-serif; }
  header.reid-title p { color: #555; font-size: 1.1em; }
</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="reid-nav">{% for p in resources.nav %}<a href="{{ p.href }}"{% if p.current %} class="current"{% endif %}>{{ p.title }}</a>{% endfor %}</nav>
{%- if resources.page_title %}
<header class="reid-title"><h1>{{ resources.page_title | escape }}</h1>
{%- if resources.page_description %}<p>{{ resources.page_description | escape }}</p>{% endif %}</header>
{%- endif %}
{%- endblock body_header -%}
"""

def check_assets():
    "Fail with what to run when the npm packages are missing."
    missing = [src for src, _ in ASSETS if not (NODE/src).exists()]
    if missing: sys.exit(f"build_html: missing {', '.join(str(NODE/m) for m in missing)}.\n"
                         "Install them with `bash tools/install_browser.sh` or `npm ci --prefix tools/widget_manager`.")

def copy_assets(static):
    "Copy the widget manager, require.js and MathJax into `static`."
    for src, dst in ASSETS:
        s, d = NODE/src, static/dst
        if d.exists(): shutil.rmtree(d) if d.is_dir() else d.unlink()
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir(): shutil.copytree(s, d, ignore=_SKIP_ASSETS)
        else: shutil.copy2(s, d)

def mixed_import_cells(nbs):
    """Cells nbdev's docs step runs because they contain an import, although they also hold other code.
    In a notebook with exported code, nbdev executes the exported cells and every cell with an import
    (and nothing else): such a cell fails when it uses a name from a cell that is not run."""
    import ast, warnings
    from nbdev.process import NBProcessor
    from nbdev.processors import _do_eval
    res = []
    for f in sorted(Path(nbs).rglob('*.ipynb')):
        if any(p.startswith(('.', '_')) for p in f.relative_to(nbs).parts): continue
        cells, has_export = [], []
        def chk(cell):
            if cell.cell_type != 'code': return
            d = cell.directives_.keys()
            if d & {'export', 'exports', 'exporti'}: has_export.append(1); return
            if d & {'exec_doc'}: return
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                if not _do_eval(cell): return
            if any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in (cell.parsed_() or [])): cells.append(cell)
        NBProcessor(f, procs=[chk]).process()
        if has_export: res += [(f.relative_to(nbs).as_posix(), c.idx_, c.source.splitlines()[0]) for c in cells]
    return res

def process_notebooks(nbs, force=False):
    "Run nbdev's docs preprocessing on `nbs`; returns the `_proc` folder."
    sys.path.insert(0, str(ROOT/'tools'))
    import docs_fix; docs_fix.patch()   # nbdev/execnb crash on saved jslink state otherwise; see docs_fix.py
    from nbdev.serve import proc_nbs
    try: return Path(proc_nbs(str(nbs), n_workers=0, force=force))
    except Exception:
        mixed = mixed_import_cells(nbs)
        if mixed:
            print("\nbuild_html: nbdev's docs step failed. It executes every cell that contains an import in notebooks with\n"
                  "exported code; these cells mix imports with other code (move the imports to the imports cell):", file=sys.stderr)
            for f, i, first in mixed: print(f'  {f} cell {i}: {first[:80]}', file=sys.stderr)
        raise

def _frontmatter(nb):
    "title/description from the raw YAML cell nbdev's FrontmatterProc puts first (removed from `nb`)."
    import yaml
    c = nb.cells[0] if nb.cells else None
    if c is None or c.cell_type != 'raw' or not c.source.lstrip().startswith('---'): return {}
    try: fm = yaml.safe_load(c.source.strip().strip('-')) or {}
    except yaml.YAMLError: return {}
    nb.cells.pop(0)
    return fm

_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_PANDOC_ATTRS = re.compile(r'(\]\([^)]*\))\{[^}\n]*\}')   # [source](url){target="_blank" ...}

def apply_cell_options(nb):
    """Do what Quarto does with the `#|` options nbdev leaves in processed notebooks: `include: false`
    drops the cell, `echo: false` its code, `output: false` its outputs; the `#|` lines are not shown.
    Pandoc link attributes in markdown outputs (show_doc's `[source](...){target=...}`) are dropped."""
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            lines = c.source.splitlines()
            opts = dict(m.groups() for m in map(_DIRECTIVE.match, lines) if m)
            if opts.get('include') == 'false': continue
            c.source = '\n'.join(l for l in lines if not _DIRECTIVE.match(l)).strip('\n')
            if opts.get('echo') == 'false' or not c.source: c.metadata.setdefault('transient', {})['remove_source'] = True
            if opts.get('output') == 'false': c.outputs = []
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = _PANDOC_ATTRS.sub(r'\1', md if isinstance(md, str) else ''.join(md))
        cells.append(c)
    nb.cells = cells
    return nb

def page_order(proc, nbs):
    "Processed notebooks in sidebar order (index first), then any others."
    found = sorted(p.relative_to(proc) for p in proc.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    order = []
    sb = nbs/'sidebar.yml'
    if sb.exists(): order = re.findall(r'^\s*-\s+([\w./-]+\.ipynb)\s*$', sb.read_text(), re.M)
    rank = {Path(o): i for i, o in enumerate(order)}
    key = lambda p: (0 if p.stem == 'index' and p.parent == Path('.') else 1, rank.get(p, len(rank)), str(p))
    return sorted(found, key=key)

def _rel(frm, to):
    "Relative URL from page `frm` (path under site/) to `to`."
    return Path(os.path.relpath(to, Path(frm).parent)).as_posix()

def build(out=ROOT/'site', root=ROOT, force=False, quiet=False):
    "Build the offline HTML site of the nbdev project at `root` into `out`; returns the pages (dicts) it wrote."
    import nbformat, jinja2
    from nbconvert import HTMLExporter
    from nbdev.config import get_config
    t0 = time.time()
    check_assets()
    out = Path(out).resolve()
    os.chdir(root)   # nbdev finds settings.ini (and puts _proc/) from the working directory
    nbs = get_config().nbs_path
    proc = process_notebooks(nbs, force=force)
    static = out/'_static'
    static.mkdir(parents=True, exist_ok=True)
    copy_assets(static)
    if (nbs/'images').is_dir():   # pictures the notebooks' markdown links to (`![](images/...)`), as Quarto copies them
        shutil.copytree(nbs/'images', out/'images', dirs_exist_ok=True)
    rels = page_order(proc, nbs)
    nbs_, pages = {}, []
    for r in rels:
        nb = nbformat.read(proc/r, as_version=4)
        fm = _frontmatter(nb)
        apply_cell_options(nb)
        nbs_[r] = (nb, fm)
        pages.append(dict(src=str(r), html=r.with_suffix('.html').as_posix(), title=str(fm.get('title') or r.stem),
                          description=str(fm.get('description') or ''),
                          widget_views=sum('application/vnd.jupyter.widget-view+json' in o.get('data', {})
                                           for c in nb.cells for o in c.get('outputs', []))))
    for p in pages:
        nb, fm = nbs_[Path(p['src'])]
        static_rel = _rel(p['html'], '_static')
        ex = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True, extra_loaders=[jinja2.DictLoader({'reid_nb.html.j2': TEMPLATE})], template_file='reid_nb.html.j2',
                          require_js_url=f'{static_rel}/require.js',
                          widget_renderer_url=f'{static_rel}/html-manager/embed-amd.js',
                          mathjax_url=f'{static_rel}/{MATHJAX}')
        nb.metadata['title'] = p['title']
        nav = [dict(href=_rel(p['html'], q['html']), title=q['title'], current=q is p) for q in pages]
        html, _ = ex.from_notebook_node(nb, resources=dict(static=static_rel, nav=nav, page_title=p['title'],
                                                          page_description=p['description']))
        # links between notebooks point at .ipynb in the source; the pages are .html
        html = re.sub(r'href="(?!https?:)([^"#]*?)\.ipynb(#[^"]*)?"', lambda m: f'href="{m[1]}.html{m[2] or ""}"', html)
        dst = out/p['html']; dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(html, encoding='utf-8')
        views = f"  ({p['widget_views']} widget views)" if p['widget_views'] else ''
        if not quiet: print(f"  {p['html']:<40} {len(html)/1e3:8.0f} kB{views}")
    (out/'pages.json').write_text(json.dumps(pages, indent=1))
    if not quiet: print(f'build_html: {len(pages)} pages in {out} ({time.time()-t0:.0f} s)')
    return pages

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT/'site'), help='output folder (default: site/)')
    ap.add_argument('--root', default=str(ROOT), help='the nbdev project (default: this repository)')
    ap.add_argument('--force', action='store_true', help='re-process every notebook, ignoring the _proc/ cache')
    a = ap.parse_args()
    build(a.out, a.root, a.force)

if __name__ == '__main__': main()
