// fashionnet's stand-in for TFLM's tensorflow/lite/context_util.h, used only when TFLM_DIR lacks it (a trimmed
// source snapshot; CMakeLists.txt). tensorflow/lite/kernels/kernel_util.cc includes it but uses it only in code
// that TF_LITE_STATIC_MEMORY (every TFLM build) leaves out.
#ifndef TENSORFLOW_LITE_CONTEXT_UTIL_H_
#define TENSORFLOW_LITE_CONTEXT_UTIL_H_

#ifndef TF_LITE_STATIC_MEMORY
#error "this stand-in is for TF_LITE_STATIC_MEMORY builds: use a full tflite-micro checkout"
#endif

#endif  // TENSORFLOW_LITE_CONTEXT_UTIL_H_
