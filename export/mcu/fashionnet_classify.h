// fashionnet on a microcontroller: the kit's classify function (fashionnet_classify.cc).
#ifndef FASHIONNET_CLASSIFY_H_
#define FASHIONNET_CLASSIFY_H_

#include <cstdint>

#include "model_data.h"

// pixels: 784 grey levels, row by row, a light garment on black (the Fashion-MNIST format; photos need the
// edge kit's preprocessing first). Writes 10 probabilities and returns the most likely class, or -1 on error.
int fashionnet_classify(const uint8_t pixels[fashionnet::kPixels], float probabilities[fashionnet::kClasses]);

#endif  // FASHIONNET_CLASSIFY_H_
