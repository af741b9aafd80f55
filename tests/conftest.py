"Shared pytest setup: offline, headless, quiet."
import os
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')  # albumentations asks PyPI for updates at import otherwise
os.environ.setdefault('HF_HUB_OFFLINE', '1')            # timm's hub would retry for ~45 s with no network
os.environ.setdefault('MPLBACKEND', 'Agg')              # no display
