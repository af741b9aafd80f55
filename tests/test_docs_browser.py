"""The docs pages in a real browser, with no Python kernel and no internet.

`tools/build_html.py` builds the site (nbdev's docs preprocessing, then one nbconvert HTML page per
notebook, widgets rendered from saved state by a local copy of the Jupyter widget manager). Here it is
served on 127.0.0.1 and driven with headless Chromium (Debian's /usr/bin/chromium, or the browser named
by $REID_NB_CHROMIUM) through Playwright:
- every page loads with no JavaScript error, no failed request and no request outside the site;
- saved widgets render (no "Error displaying widget");
- on the TripletExplorer (01_triplets) and RetrievalExplorer (04_eval) pages, moving the slider really
  changes the panel shown (the visible images' bytes and the widget's pixels), and moving it back
  restores it. Screenshots go to test-artifacts/.
A tiny project with a jslink'ed Stack checks the same pipeline without depending on the explorers.
"""
import functools, hashlib, http.server, json, os, shutil, subprocess, sys, threading, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('REID_NB_CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = ROOT/'test-artifacts'
ASSETS = ROOT/'tools'/'widget_manager'/'node_modules'/'@jupyter-widgets'/'html-manager'/'dist'/'embed-amd.js'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
                 '--no-first-run', '--disable-component-update', '--disable-sync']
EXPLORERS = {'01_triplets.html': 'triplet_explorer', '04_eval.html': 'retrieval_explorer'}
ENV = {**os.environ, 'NO_ALBUMENTATIONS_UPDATE': '1', 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}

pytestmark = [pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f'no browser at {CHROMIUM}: run `bash tools/install_browser.sh` (as root)'),
              pytest.mark.skipif(not ASSETS.exists(),
                                 reason=f'no {ASSETS.relative_to(ROOT)}: run `bash tools/install_browser.sh`')]
playwright = pytest.importorskip('playwright.sync_api', reason='Python playwright is not installed')

def _build(out, root=ROOT):
    "Run tools/build_html.py (a subprocess: nbdev executes notebook cells while processing)."
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_html.py'), '--out', str(out), '--root', str(root)],
                       capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, f'build_html failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    print(r.stdout)
    return json.loads((out/'pages.json').read_text())

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def serve():
    "serve(folder) -> base URL of a server on 127.0.0.1 for that folder; all are stopped at the end."
    servers = []
    def _serve(folder):
        srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f'http://127.0.0.1:{srv.server_port}/'
    yield _serve
    for s in servers: s.shutdown(); s.server_close()

@pytest.fixture(scope='module')
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    return out, _build(out)

def open_page(browser, url):
    """Load `url`; returns (page, problems): JS errors, console errors, failed or non-local requests.
    Waits until the widget manager has rendered every saved widget view on the page."""
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    problems, base = [], url.split('/', 3)[:3]
    base = '/'.join(base) + '/'
    page.on('pageerror', lambda e: problems.append(f'JS error: {e}'))
    page.on('console', lambda m: problems.append(f'console.{m.type}: {m.text}') if m.type == 'error' else None)
    page.on('requestfailed', lambda r: problems.append(f'request failed: {r.url} ({r.failure})'))
    page.on('response', lambda r: problems.append(f'HTTP {r.status}: {r.url}') if r.status >= 400 else None)
    page.on('request', lambda r: None if r.url.startswith((base, 'data:', 'blob:'))
            else problems.append(f'request outside the site: {r.url}'))
    page.goto(url, wait_until='load')
    # the manager replaces each <script type="application/vnd.jupyter.widget-view+json"> by the widget's view
    try: page.wait_for_function("""() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
            .every(s => s.parentElement.querySelector('.jupyter-widgets, .widget-error, .jupyter-widgets-view'))""", timeout=30_000)
    except playwright.TimeoutError: problems.append('saved widget views were not rendered within 30 s')
    page.wait_for_timeout(300)   # let MathJax and late console messages arrive
    return page, problems

def widget_errors(page):
    return page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output, .jupyter-widgets')]"
                         ".map(e => e.innerText).filter(t => t.includes('Error displaying widget'))")

def find_explorer(page):
    "The output holding a slider and a Stack of panels (the explorers' static mode)."
    outs = page.locator('.jp-OutputArea-output').filter(has=page.locator('.widget-slider')).filter(
        has=page.locator('.widget-stack, .jupyter-widgets.widget-container'))
    assert outs.count() >= 1, 'no widget output with a slider and a Stack on the page (saved widget state missing?)'
    return outs.first

def panel_signature(out):
    "Hashes of the bytes of every visible image in the explorer, plus its visible text."
    return out.evaluate("""async el => {
        const imgs = [...el.querySelectorAll('img')].filter(i => i.offsetParent !== null && i.getBoundingClientRect().width > 0);
        const hashes = [];
        for (const i of imgs) {
            const buf = await (await fetch(i.src)).arrayBuffer();
            const h = await crypto.subtle.digest('SHA-256', buf);
            hashes.push([...new Uint8Array(h)].map(b => b.toString(16).padStart(2, '0')).join('').slice(0, 16));
        }
        const stack = el.querySelector('.widget-stack');
        return {images: hashes, text: stack ? stack.innerText : ''};
    }""")

def slider_value(out):
    return out.locator('.widget-slider .widget-readout').first.inner_text().strip()

def move_slider(page, out, key):
    out.locator('.widget-slider .noUi-handle').first.focus()
    page.keyboard.press(key)
    page.wait_for_timeout(400)

def check_explorer(page, name):
    "Move the explorer's slider right and back; the panel must change and come back. Saves screenshots."
    out = find_explorer(page)
    out.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    v0, sig0, shot0 = slider_value(out), panel_signature(out), out.screenshot(path=str(ARTIFACTS/f'{name}.png'))
    assert sig0['images'], f'{name}: no visible panel image'
    move_slider(page, out, 'ArrowRight')
    v1, sig1, shot1 = slider_value(out), panel_signature(out), out.screenshot(path=str(ARTIFACTS/f'{name}_moved.png'))
    assert v1 != v0, f'{name}: the slider did not move (readout {v0!r} -> {v1!r})'
    assert sig1['images'] and sig1 != sig0, f'{name}: slider moved {v0} -> {v1} but the shown panel did not change'
    assert shot1 != shot0, f'{name}: slider moved but the widget looks the same'
    move_slider(page, out, 'ArrowLeft')
    assert slider_value(out) == v0 and panel_signature(out) == sig0, f'{name}: moving back did not restore the panel'
    page.screenshot(path=str(ARTIFACTS/f'{name}_page.png'), full_page=False)
    return dict(before=v0, after=v1, panel_before=sig0['images'], panel_after=sig1['images'])

# -- the pipeline on a tiny project: a slider jslink'ed to a Stack of images, as the explorers do it

def _tiny_project(root):
    "An nbdev project with one notebook whose saved widget state has a jslink (LinkModel has a `source` key)."
    import nbformat, numpy as np, ipywidgets as widgets, io
    from PIL import Image
    (root/'nbs').mkdir(parents=True)
    shutil.copy(ROOT/'settings.ini', root/'settings.ini')
    (root/'reid_nb').mkdir(); (root/'reid_nb'/'__init__.py').write_text('')
    def png(c):
        b = io.BytesIO(); Image.fromarray(np.full((48, 24, 3), c, np.uint8)).save(b, 'png'); return b.getvalue()
    widgets.Widget.close_all()
    panels = [widgets.Image(value=png(c), format='png') for c in [(255, 0, 0), (0, 160, 0), (0, 0, 255)]]
    stack = widgets.Stack(panels, selected_index=0)
    slider = widgets.IntSlider(0, 0, 2, description='panel')
    widgets.jslink((slider, 'value'), (stack, 'selected_index'))
    box = widgets.VBox([slider, stack])
    state = widgets.Widget.get_manager_state(drop_defaults=True)
    view = {'application/vnd.jupyter.widget-view+json': {'version_major': 2, 'version_minor': 0, 'model_id': box.model_id},
            'text/plain': ['VBox(...)']}
    widgets.Widget.close_all()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell('# Linked stack\n\n> A slider jslink\'ed to a Stack, and $d(a,p) < d(a,n)$.'),
                nbformat.v4.new_code_cell('box', outputs=[nbformat.v4.new_output('execute_result', view, execution_count=1)])]
    nb.metadata['widgets'] = {'application/vnd.jupyter.widget-state+json': state}
    nbformat.write(nb, root/'nbs'/'linked_stack.ipynb')
    assert any(v['model_name'] == 'LinkModel' and 'source' in v['state'] for v in state['state'].values())

def test_linked_stack_pipeline(tmp_path, browser, serve):
    _tiny_project(tmp_path/'proj')
    pages = _build(tmp_path/'site', root=tmp_path/'proj')
    assert [p['html'] for p in pages] == ['linked_stack.html'] and pages[0]['widget_views'] == 1
    page, problems = open_page(browser, serve(tmp_path/'site') + 'linked_stack.html')
    assert not problems, '\n'.join(problems)
    assert not widget_errors(page)
    assert page.locator('mjx-container, .MathJax_CHTML, .mjx-chtml').count() > 0, 'MathJax did not typeset the summary'
    res = check_explorer(page, 'linked_stack')
    assert len(set(res['panel_before'] + res['panel_after'])) == 2
    page.close()

# -- the project's own pages

def test_every_page_loads_without_errors(site, browser, serve):
    out, pages = site
    names = {p['html'] for p in pages}
    nbs = ROOT/'nbs'
    expected = {p.relative_to(nbs).with_suffix('.html').as_posix() for p in nbs.rglob('*.ipynb')
                if not any(q.startswith(('.', '_')) for q in p.relative_to(nbs).parts)}
    assert names == expected, f'one page per notebook: missing {expected - names}, extra {names - expected}'
    base, bad = serve(out), {}
    for p in pages:
        page, problems = open_page(browser, base + p['html'])
        problems += [f'widget error: {t[:200]}' for t in widget_errors(page)]
        if problems: bad[p['html']] = problems
        page.close()
    assert not bad, 'pages with errors:\n' + json.dumps(bad, indent=1)

@pytest.mark.parametrize('html', sorted(EXPLORERS))
def test_explorer_slider_changes_panel(site, browser, serve, html):
    out, pages = site
    assert (out/html).exists(), f'{html} was not built (is nbs/{html[:-5]}.ipynb there?)'
    page, problems = open_page(browser, serve(out) + html)
    assert not problems, '\n'.join(problems)
    res = check_explorer(page, EXPLORERS[html])
    print(html, res)
    page.close()
