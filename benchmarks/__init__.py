"""Research and profiling scripts behind docs/: run from a checkout (`python -m benchmarks.NAME`), never shipped in
the wheel; they use fashionnet's public API only. `fashionnet bench`, the product's benchmark, stays in the package."""
