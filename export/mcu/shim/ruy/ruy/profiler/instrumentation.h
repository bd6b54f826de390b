// fashionnet's stand-in for ruy's profiler header, used when no ruy headers are found (the tensorflow wheels ship
// only ruy's LICENSE). TFLM's reference kernels include it; with ruy's profiler off a label does nothing, as here.
#ifndef FASHIONNET_SHIM_RUY_PROFILER_INSTRUMENTATION_H_
#define FASHIONNET_SHIM_RUY_PROFILER_INSTRUMENTATION_H_

namespace ruy {
namespace profiler {

class ScopeLabel {
 public:
  template <typename... Args>
  explicit ScopeLabel(Args...) {}
};

}  // namespace profiler
}  // namespace ruy

#endif  // FASHIONNET_SHIM_RUY_PROFILER_INSTRUMENTATION_H_
