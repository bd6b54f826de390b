"""fashionnet's browser kit: static files that `fashionnet export` copies into RUN/export/web/
(fashionnet/publish/web.py)."""

from pathlib import Path

KIT_DIR = Path(__file__).parent
# What a user's kit holds (this file is only the wheel's way of shipping them).
KIT_FILES = (
    "index.html",
    "app.js",
    "classifier.js",
    "preprocess.js",
    "style.css",
    "package.json",
    "package-lock.json",
    "README.md",
)
