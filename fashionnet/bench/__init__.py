"""``fashionnet bench``: training and inference speed, memory and artifact sizes on this machine, in one run.

What is measured (docs/benchmarks.md explains every number):

* training images/second per Keras backend, steady state: the first epoch (tracing/compilation, warm-up) is
  excluded; the rate is training images per epoch / the median time between the ends of consecutive later epochs
  (so it includes validation and every callback, e.g. fashionnet's per-epoch backup). Two recipes per backend,
  run in one child process per backend (``KERAS_BACKEND`` set; keras cannot switch backend in-process):
  ``plain`` = the assignment's own build/compile/``fit(x, y, validation_split, batch_size)`` on numpy arrays, and
  ``fashionnet`` = ``fashionnet.training.trainer.train`` into a temporary run folder; the ratio is
  fashionnet / plain.
* peak RSS (``ru_maxrss`` of the child) of each training process and of the edge predictor
  (``python export/fashionnet_edge.py model.onnx t10k-images-idx3-ubyte.gz``).
* inference: batch-1 latency (median and p99) and batch-256 throughput for Keras (``predict_on_batch``) per
  backend, onnxruntime fp32/int8 and TFLite fp32/int8 (ai_edge_litert), with 1 and 2 threads.
* file size and test accuracy of every artifact (RUN/export/parity.json).
* achieved FLOP/s against an assumed peak of this CPU (the assumption is written into the report).

Modules: ``machine`` (CPU facts, installed backends), ``run`` (``run_benchmark``: the parent, which starts the
children), ``workers`` (what runs in the children: ``python -m fashionnet.bench --worker ...``), ``targets`` and
``markdown`` (bench.md). Importing this package imports neither keras nor its submodules.
"""
