"""``python -m fashionnet.bench --worker train|keras-infer|edge-infer|tiny-run ...``: one benchmark child."""

import sys

from fashionnet.bench.workers import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
