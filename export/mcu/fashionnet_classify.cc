// fashionnet on a microcontroller: classify one 28 x 28 grey image with TensorFlow Lite Micro.
//
// Build it with your board's TensorFlow Lite Micro library (https://github.com/tensorflow/tflite-micro) and the
// generated model_data.h / model_data.cc beside this file, or with this folder's CMakeLists.txt (README.md).
// The model is int8 from input to output; its scales, zero points, operators and tensor arena size are in
// model_data.h, written by `fashionnet export`.
#include <cmath>
#include <cstdint>

#include "fashionnet_classify.h"
#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
// The arena the export measured (see model_data.h); optimized kernels (e.g. CMSIS-NN) may need more.
alignas(16) uint8_t tensor_arena[fashionnet::kTensorArenaSize];
tflite::MicroMutableOpResolver<fashionnet::kOpCount> resolver;
tflite::MicroInterpreter* interpreter = nullptr;
}  // namespace

// See fashionnet_classify.h.
int fashionnet_classify(const uint8_t pixels[fashionnet::kPixels], float probabilities[fashionnet::kClasses]) {
  if (interpreter == nullptr) {
    FASHIONNET_ADD_OPS(resolver);
    static tflite::MicroInterpreter instance(tflite::GetModel(fashionnet::kModel), resolver, tensor_arena,
                                             sizeof(tensor_arena));
    if (instance.AllocateTensors() != kTfLiteOk) return -1;
    interpreter = &instance;
  }
  int8_t* input = interpreter->input(0)->data.int8;
  for (int i = 0; i < fashionnet::kPixels; ++i) {
    // as the export's gate: float32 pixel / 255, then round half to even (the default rounding mode)
    const float q = std::nearbyint(pixels[i] / 255.0f / fashionnet::kInputScale + fashionnet::kInputZeroPoint);
    input[i] = static_cast<int8_t>(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
  }
  if (interpreter->Invoke() != kTfLiteOk) return -1;
  const int8_t* output = interpreter->output(0)->data.int8;
  int best = 0;
  for (int c = 0; c < fashionnet::kClasses; ++c) {
    probabilities[c] = fashionnet::kOutputScale * (output[c] - fashionnet::kOutputZeroPoint);
    if (output[c] > output[best]) best = c;  // the first of equals, as argmax
  }
  return best;  // fashionnet::kClassNames[best] names it
}
