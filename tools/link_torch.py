"""Hard-link torch, torchvision and their CUDA libraries from one venv's site-packages into another's.

`.ci/run` checks the built wheel in a second fresh venv. A second `pip install torch` there costs about 5.5 GB
of disk (a CUDA build) and a minute; the same files, hard-linked from the first venv, cost neither. Only these
distributions are linked (files listed in each one's RECORD, inside site-packages); pip then installs the wheel
and everything else it needs into the new venv as a user's `pip install` would, torch's small dependencies
(sympy, numpy, ...) included. A file that cannot be hard-linked (another file system) is copied.

Usage: python tools/link_torch.py FROM_SITE_PACKAGES TO_SITE_PACKAGES
"""
import os, re, shutil, sys
from importlib.metadata import distributions
from pathlib import Path

BIG = re.compile(r'^(torch|torchvision|triton|nvidia-.+|cuda-.+)$')

def main(src, dst):
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not (src/'torch').is_dir(): sys.exit(f'link_torch: no torch in {src}')
    names, nfiles, copied = [], 0, 0
    for d in distributions(path=[str(src)]):
        name = re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()
        if not BIG.match(name) or not d.files: continue
        names.append(name)
        for f in d.files:
            p = Path(d.locate_file(f)).resolve()
            if src not in p.parents or not p.is_file(): continue   # console scripts in bin/, missing .pyc
            q = dst/p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            if q.exists(): continue
            try: os.link(p, q)
            except OSError: shutil.copy2(p, q); copied += 1
            nfiles += 1
    print(f'link_torch: {len(names)} distributions ({", ".join(sorted(names)[:4])}, ...), {nfiles} files '
          f'({copied} copied) from {src} to {dst}')

if __name__ == '__main__':
    if len(sys.argv) != 3: sys.exit(__doc__)
    main(*sys.argv[1:])
