// fashionnet's stand-in for TFLM's signal/micro/kernels/irfft.h, used only when TFLM_DIR lacks signal/ (a trimmed
// source snapshot; CMakeLists.txt): micro_mutable_op_resolver.h declares AddIrfft() with these, which the
// kit never calls, so they are declared and never defined.
#ifndef SIGNAL_MICRO_KERNELS_IRFFT_H_
#define SIGNAL_MICRO_KERNELS_IRFFT_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {
namespace tflm_signal {

TFLMRegistration* Register_IRFFT();
TFLMRegistration* Register_IRFFT_FLOAT();
TFLMRegistration* Register_IRFFT_INT16();
TFLMRegistration* Register_IRFFT_INT32();

}  // namespace tflm_signal
}  // namespace tflite

#endif  // SIGNAL_MICRO_KERNELS_IRFFT_H_
