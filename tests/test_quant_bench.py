"""python -m benchmarks.quant_bench --profile: onnxruntime's own profile of the exported models, per op and layer."""

from __future__ import annotations

import pytest

from fashionnet.core.data import preprocess_images


@pytest.mark.export
def test_the_profile_names_the_kernels_onnxruntime_ran_for_each_layer(exported, dataset):
    from benchmarks.quant_bench import format_profile, op_profile

    export_dir, _ = exported
    images = preprocess_images(dataset[1][0][:64])
    fp32 = op_profile(str(export_dir / "model.onnx"), images, batch=64, runs=3)
    int8 = op_profile(str(export_dir / "model.int8.onnx"), images, batch=64, runs=3)
    # the fp32 graph runs float convolutions; the QDQ graph's DequantizeLinear -> Conv -> QuantizeLinear are fused
    assert {"Conv (conv1)", "Conv (conv2)"} <= set(fp32["ops"])
    assert {"QLinearConv (conv1)", "QLinearConv (conv2)"} <= set(int8["ops"])
    assert not any(op.startswith("Conv ") for op in int8["ops"])
    for profile in (fp32, int8):
        assert all(ms > 0 for ms in profile["ops"].values())
        assert sum(profile["ops"].values()) <= profile["ms_per_batch"]  # kernels run inside the timed calls
    assert max(fp32["ops"], key=fp32["ops"].get).endswith("(conv2)")  # 88 % of the multiply-adds
    # not so in int8 on every CPU: without VNNI conv1's int8 kernel is slow enough to tie with conv2 (docs)
    table = format_profile("int8", int8)
    assert table.splitlines()[0].startswith("int8: ") and "per batch of 64" in table
    assert max(int8["ops"], key=int8["ops"].get) in table.splitlines()[1]  # largest first
