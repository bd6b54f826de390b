// fashionnet's stand-in for TFLM's signal/micro/kernels/rfft.h, used only when TFLM_DIR lacks signal/ (a trimmed
// source snapshot; CMakeLists.txt): micro_mutable_op_resolver.h declares AddRfft() with these, which the
// kit never calls, so they are declared and never defined.
#ifndef SIGNAL_MICRO_KERNELS_RFFT_H_
#define SIGNAL_MICRO_KERNELS_RFFT_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {
namespace tflm_signal {

TFLMRegistration* Register_RFFT();
TFLMRegistration* Register_RFFT_FLOAT();
TFLMRegistration* Register_RFFT_INT16();
TFLMRegistration* Register_RFFT_INT32();

}  // namespace tflm_signal
}  // namespace tflite

#endif  // SIGNAL_MICRO_KERNELS_RFFT_H_
