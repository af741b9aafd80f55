"""Structure figures for the notebooks: export-cell sizes, long lines, `;`-joined statements, imports against
notebook order. Prints a table; `--json` prints the same as JSON."""
import ast, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ['data', 'triplets', 'model', 'train', 'eval', 'search', 'cli']

def export_cells(nb_path):
    "Source of each `#| export` cell of one notebook."
    nb = json.loads(nb_path.read_text())
    return [''.join(c['source']) for c in nb['cells']
            if c['cell_type'] == 'code' and re.match(r'\s*#\|\s*export', ''.join(c['source']))]

def semicolon_lines(src):
    "Lines of `src` where `;` joins two statements (a `;` token, not one inside a string)."
    import io, tokenize
    rows = set()
    try:
        for t in tokenize.generate_tokens(io.StringIO(src).readline):
            if t.type == tokenize.OP and t.string == ';': rows.add(t.start[0])
    except (tokenize.TokenError, IndentationError): pass
    return len(rows)

def definitions(src):
    "Top-level defs/classes/assignments-to-names/@patch functions in one cell."
    try: tree = ast.parse(src)
    except SyntaxError: return 0
    return sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)

def backward_imports():
    "Imports in reid_nb/<module>.py from a module whose notebook comes later (also lazy ones inside functions)."
    found = []
    for mod in ORDER:
        tree = ast.parse((ROOT / 'reid_nb' / f'{mod}.py').read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split('.')
                other = parts[-1] if parts[0] in ('reid_nb', '') or node.level else None
                if other in ORDER and ORDER.index(other) > ORDER.index(mod):
                    found.append(f'{mod} <- {other}: ' + ', '.join(a.name for a in node.names))
    return found

def main():
    nbs = sorted(p for p in (ROOT / 'nbs').glob('[0-9]*.ipynb'))
    sizes, long_lines, semis, multi, per_nb = [], 0, 0, 0, {}
    for p in nbs:
        cells = export_cells(p)
        n = [len(c.strip().splitlines()) for c in cells]
        sizes += n
        ll = sum(len(line) > 120 for c in cells for line in c.splitlines())
        sc = sum(semicolon_lines(c) for c in cells)
        md = sum(definitions(c) > 1 for c in cells)
        long_lines += ll; semis += sc; multi += md
        per_nb[p.stem] = dict(export_cells=len(cells), median_lines=statistics.median(n) if n else 0,
                              max_lines=max(n, default=0), multi_def_cells=md, long_lines=ll, semicolon_lines=sc)
    out = dict(export_cells=len(sizes), median_lines=statistics.median(sizes), long_lines=long_lines,
               semicolon_lines=semis, multi_def_cells=multi, backward_imports=backward_imports(), notebooks=per_nb)
    if '--json' in sys.argv: print(json.dumps(out, indent=1)); return
    print(f"{'notebook':12} {'cells':>5} {'median':>6} {'max':>4} {'multi-def':>9} {'>120':>5} {'; lines':>7}")
    for k, v in per_nb.items():
        print(f"{k:12} {v['export_cells']:5} {v['median_lines']:6} {v['max_lines']:4} {v['multi_def_cells']:9} "
              f"{v['long_lines']:5} {v['semicolon_lines']:7}")
    print(f"{'all':12} {out['export_cells']:5} {out['median_lines']:6} {'':4} {multi:9} {long_lines:5} {semis:7}")
    print('imports against notebook order:', len(out['backward_imports']))
    for b in out['backward_imports']: print('  ', b)

if __name__ == '__main__': main()
