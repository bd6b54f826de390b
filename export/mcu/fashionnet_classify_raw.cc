// Classify one raw 28 x 28 grey image on the host, as a board would: a file of exactly 784 bytes, row by row,
// a light garment on black (Fashion-MNIST's format). Prints the class and its probability; exit 0, or 2 on error.
#include <cstdint>
#include <cstdio>

#include "fashionnet_classify.h"
#include "model_data.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGE.raw  (784 bytes: 28 x 28 grey levels, row by row)\n", argv[0]);
    return 2;
  }
  std::FILE* file = std::fopen(argv[1], "rb");
  if (file == nullptr) {
    std::fprintf(stderr, "%s: cannot open\n", argv[1]);
    return 2;
  }
  uint8_t pixels[fashionnet::kPixels + 1];  // one more: a longer file is an error, not a crop
  const size_t read = std::fread(pixels, 1, sizeof(pixels), file);
  std::fclose(file);
  if (read > static_cast<size_t>(fashionnet::kPixels)) {
    std::fprintf(stderr, "%s: expected %d bytes (28 x 28 grey levels), found more\n", argv[1], fashionnet::kPixels);
    return 2;
  }
  if (read < static_cast<size_t>(fashionnet::kPixels)) {
    std::fprintf(stderr, "%s: expected %d bytes (28 x 28 grey levels), found %zu\n", argv[1], fashionnet::kPixels,
                 read);
    return 2;
  }
  float probabilities[fashionnet::kClasses];
  const int best = fashionnet_classify(pixels, probabilities);
  if (best < 0) {
    std::fprintf(stderr, "the interpreter failed (arena %zu bytes)\n", fashionnet::kTensorArenaSize);
    return 2;
  }
  std::printf("%s: %s %.3f\n", argv[1], fashionnet::kClassNames[best], probabilities[best]);
  return 0;
}
