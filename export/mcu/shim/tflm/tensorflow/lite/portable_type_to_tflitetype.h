// fashionnet's stand-in for TFLM's tensorflow/lite/portable_type_to_tflitetype.h, used only when TFLM_DIR lacks it
// (a trimmed source snapshot; CMakeLists.txt). micro_interpreter.h needs the declaration of typeToTfLiteType<T>()
// for its typed_input_tensor/typed_output_tensor helpers, which the kit does not call.
#ifndef TENSORFLOW_LITE_PORTABLE_TYPE_TO_TFLITETYPE_H_
#define TENSORFLOW_LITE_PORTABLE_TYPE_TO_TFLITETYPE_H_

#include <cstdint>
#include <type_traits>

#include "tensorflow/lite/core/c/common.h"

namespace tflite {

// The TfLiteType of a C++ scalar type (const or not), kTfLiteNoType for any other.
template <typename T>
constexpr TfLiteType typeToTfLiteType() {
  using U = typename std::remove_const<T>::type;
  return std::is_same<U, float>::value      ? kTfLiteFloat32
         : std::is_same<U, double>::value   ? kTfLiteFloat64
         : std::is_same<U, int8_t>::value   ? kTfLiteInt8
         : std::is_same<U, uint8_t>::value  ? kTfLiteUInt8
         : std::is_same<U, int16_t>::value  ? kTfLiteInt16
         : std::is_same<U, uint16_t>::value ? kTfLiteUInt16
         : std::is_same<U, int32_t>::value  ? kTfLiteInt32
         : std::is_same<U, uint32_t>::value ? kTfLiteUInt32
         : std::is_same<U, int64_t>::value  ? kTfLiteInt64
         : std::is_same<U, uint64_t>::value ? kTfLiteUInt64
         : std::is_same<U, bool>::value     ? kTfLiteBool
                                            : kTfLiteNoType;
}

}  // namespace tflite

#endif  // TENSORFLOW_LITE_PORTABLE_TYPE_TO_TFLITETYPE_H_
