// fashionnet's self-test on TensorFlow Lite Micro: the export's selftest.json images (selftest_data.cc) through
// fashionnet_classify(), against Keras's answers. Prints one line as `python fashionnet_edge.py MODEL --selftest`
// and exits 0 on PASS, 1 on FAIL: the same top-1 class as Keras on every image; the probabilities' largest
// difference is reported, not gated (an int8 model's gate is its accuracy, checked at export).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "fashionnet_classify.h"
#include "model_data.h"
#include "selftest_data.h"

#if defined(__linux__)
#include <sys/utsname.h>
#endif

namespace {

// The runtime, as the Python kit names its own (onnxruntime 1.x, LiteRT 1.x): TFLM has no version number.
#if defined(__clang__)
constexpr const char* kSelftestRuntime = "TensorFlow Lite Micro (reference kernels, " __VERSION__ ")";
#elif defined(__GNUC__)
constexpr const char* kSelftestRuntime = "TensorFlow Lite Micro (reference kernels, gcc " __VERSION__ ")";
#else
constexpr const char* kSelftestRuntime = "TensorFlow Lite Micro (reference kernels)";
#endif

// As fashionnet_edge.cpu_name(): /proc/cpuinfo's model name and the machine; a board names itself at build time.
void cpu_name(char* out, size_t size) {
#if defined(FASHIONNET_CPU)
  std::snprintf(out, size, "%s", FASHIONNET_CPU);
#else
  std::snprintf(out, size, "unknown CPU");
#endif
#if defined(__linux__)
  char line[256];
  std::FILE* info = std::fopen("/proc/cpuinfo", "r");
  if (info == nullptr) return;
  while (std::fgets(line, sizeof(line), info) != nullptr) {
    if (std::strncmp(line, "model name", 10) != 0) continue;
    const char* name = std::strchr(line, ':');
    if (name == nullptr) break;
    name += 1 + std::strspn(name + 1, " \t");
    line[std::strcspn(line, "\n")] = '\0';
    utsname machine;
    std::snprintf(out, size, "%s (%s)", name, uname(&machine) == 0 ? machine.machine : "?");
    break;
  }
  std::fclose(info);
#endif
}

}  // namespace

int main() {
  using namespace fashionnet;
  int agree = 0;
  double max_diff = 0.0;
  float probabilities[kClasses];
  for (int n = 0; n < kSelftestImages; ++n) {
    const int top1 = fashionnet_classify(kSelftestPixels[n], probabilities);
    if (top1 < 0) {
      std::printf("selftest %s: FAIL, the interpreter failed on image %d (arena %zu bytes)\n", kSelftestModel, n,
                  kTensorArenaSize);
      return 1;
    }
    int keras_top1 = 0;
    for (int c = 0; c < kClasses; ++c) {
      if (kSelftestKeras[n][c] > kSelftestKeras[n][keras_top1]) keras_top1 = c;
      const double diff = std::fabs(static_cast<double>(probabilities[c]) - kSelftestKeras[n][c]);
      if (diff > max_diff) max_diff = diff;
    }
    agree += top1 == keras_top1;
  }
  char cpu[200];
  cpu_name(cpu, sizeof(cpu));
  const bool passed = agree == kSelftestImages;
  std::printf("selftest %s: %s, top-1 as Keras on %d/%d images, max |\xce\x94p| %.1e not gated (int8), %s, %s\n",
              kSelftestModel, passed ? "PASS" : "FAIL", agree, kSelftestImages, max_diff, kSelftestRuntime, cpu);
  return passed ? 0 : 1;
}
