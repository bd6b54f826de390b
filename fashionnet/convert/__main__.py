"""The conversion child: python -m fashionnet.convert MODEL OUT_DIR ... (see fashionnet/convert/process.py)."""

import sys

from fashionnet.convert.process import main

sys.exit(main())
