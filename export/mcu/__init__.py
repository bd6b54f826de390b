"""fashionnet's microcontroller kit: files `fashionnet export --formats ...,mcu` copies into RUN/export/mcu/
beside the generated model_data.h/.cc, model_ops.cmake and selftest_data.h/.cc (fashionnet/publish/mcu.py)."""

from pathlib import Path

KIT_DIR = Path(__file__).parent
KIT_FILES = (
    "README.md",
    "CMakeLists.txt",
    "fashionnet_classify.h",
    "fashionnet_classify.cc",
    "fashionnet_selftest.cc",
    "fashionnet_classify_raw.cc",
    # stand-ins for headers a trimmed TFLM snapshot or the tensorflow wheel lack (CMakeLists.txt)
    "shim/ruy/ruy/profiler/instrumentation.h",
    "shim/tflm/tensorflow/lite/portable_type_to_tflitetype.h",
    "shim/tflm/tensorflow/lite/context_util.h",
    "shim/tflm/signal/micro/kernels/irfft.h",
    "shim/tflm/signal/micro/kernels/rfft.h",
)
