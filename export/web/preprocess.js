// A photo -> the 28 x 28 input the model sees: fashionnet_edge.load_image (the Python edge kit), step for step.
//
// The Python kit is the reference. Each function below ports the Python function its comment names, with the same
// arithmetic: integers where Python uses integers, float64 expressions in NumPy's order and parenthesization,
// half-to-even rounding where NumPy/Python round, and Pillow's fixed-point BOX and LANCZOS resampling. So both
// kits give the same pixels (tests/test_web.py checks it on the photo benchmark). A change to the Python steps
// needs the same change here.

export const IMAGE_SIDE = 28;
// Pillow refuses images above 2 x its MAX_IMAGE_PIXELS (178,956,970) as decompression bombs; stop far sooner.
export const MAX_IMAGE_PIXELS = 40_000_000;
// fashionnet_edge's constants, same names and values.
export const WORK_SIDE = 256; // the garment is found on the photo shrunk to at most this many pixels a side
const BORDER_DEPTH = 2; // rows/columns at each edge that sample the background
const MIN_CONTRAST = 16; // grey levels: a smoothed difference from the background at or below this is background
const KEEP_DIVISOR = 4; // parts at least 1/4 of the largest part's area belong to the garment too

const PRECISION_BITS = 22; // Pillow's Resample.c: 32 - 8 - 2

export class InputError extends Error {}

/** fashionnet_edge.NoGarmentError: the photo holds nothing that stands out (message without the file name). */
export class NoGarmentError extends Error {}

/** A File or Blob -> {width, height, rgba}: decoded by the browser, EXIF orientation applied, over white. */
export async function decodeImage(blob, name = blob.name || "image") {
  if (blob.size === 0) throw new InputError(`${name}: empty file (0 bytes)`); // the Python kit's words
  const header = headerDimensions(new Uint8Array(await blob.slice(0, 64 * 1024).arrayBuffer()));
  if (header && header.width * header.height > MAX_IMAGE_PIXELS) {
    // before decoding: a few bytes can claim dimensions whose pixels would not fit in memory
    throw new InputError(`${name}: image too large: ${header.width} x ${header.height} pixels, at most ${MAX_IMAGE_PIXELS} allowed`);
  }
  let bitmap;
  try {
    // Pillow's convert("L") ignores ICC profiles, so the browser must not apply them either.
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch {
    throw new InputError(`${name}: not a readable image (expected a PNG, JPEG, GIF, WebP or BMP file)`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_IMAGE_PIXELS) {
    bitmap.close();
    throw new InputError(`${name}: image too large: ${width} x ${height} pixels, at most ${MAX_IMAGE_PIXELS} allowed`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.fillStyle = "#ffffff"; // transparent -> white background, as the Python kit composites it
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { width, height, rgba: context.getImageData(0, 0, width, height).data };
}

/** The width and height a PNG, GIF, BMP or JPEG header declares (null for other formats or no header). */
export function headerDimensions(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const starts = (...magic) => magic.every((b, i) => bytes[i] === b);
  if (bytes.length >= 24 && starts(0x89, 0x50, 0x4e, 0x47)) return { width: view.getUint32(16), height: view.getUint32(20) };
  if (bytes.length >= 10 && starts(0x47, 0x49, 0x46)) return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
  if (bytes.length >= 26 && starts(0x42, 0x4d)) return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  if (bytes.length >= 4 && starts(0xff, 0xd8)) {
    for (let i = 2; i + 9 < bytes.length; ) {
      if (bytes[i] !== 0xff) return null;
      const marker = bytes[i + 1];
      if (marker === 0xff) { i += 1; continue; } // fill byte
      // SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC)
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { width: view.getUint16(i + 7), height: view.getUint16(i + 5) };
      }
      i += 2 + view.getUint16(i + 2);
    }
  }
  return null;
}

/** load_image after decoding: RGBA pixels (over white) -> Uint8Array(28 * 28), garmentInput of their RGB. */
export function toModelInput({ width, height, rgba }, name = "image") {
  const count = width * height;
  if (count === 0) throw new InputError(`${name}: empty image (0 pixels)`);
  const channels = [0, 1, 2].map((c) => {
    const plane = new Uint8Array(count);
    for (let i = 0; i < count; i++) plane[i] = rgba[4 * i + c];
    return plane;
  });
  try {
    return garmentInput({ channels, width, height });
  } catch (error) {
    if (error instanceof NoGarmentError) throw new InputError(`${name}: ${error.message}`);
    throw error;
  }
}

// ----------------------------------------------------------------------------------------------------------------
// fashionnet_edge.garment_input and its helpers. A photo is {channels: [R, G, B] planes (or one grey plane),
// width, height}, row-major Uint8Arrays; masks are Uint8Array of 0/1; NumPy's int64 arrays are Int32Array here
// (every value fits: at most 255 x 256 x 256).
// ----------------------------------------------------------------------------------------------------------------

/** garment_input: RGB (or grey) photo -> Uint8Array(28 * 28), the garment light on black, filling the frame. */
export function garmentInput(photo) {
  const channels = photo.channels.length === 1 ? [0, 1, 2].map(() => photo.channels[0]) : photo.channels;
  const work = shrink({ channels, width: photo.width, height: photo.height });
  const { width, height } = work;
  const n = width * height;
  // each pixel's distance from the background: the largest channel difference
  const distance = new Int32Array(n);
  for (const pixels of work.channels) {
    const background = backgroundLevels(pixels, width, height);
    for (let i = 0; i < n; i++) distance[i] = Math.max(distance[i], roundHalfEven(Math.abs(pixels[i] - background[i])));
  }
  const strength = boxMean(distance, width, height, 2);
  if (maximum(strength) <= MIN_CONTRAST) {
    throw new NoGarmentError("no garment found: the image is uniform (expected an object on a plain background)");
  }
  let mask = hysteresis(strength, width, height);
  const close = Math.max(1, Math.floor(Math.max(height, width) / 64));
  mask = erode(dilate(mask, width, height, close), width, height, close);
  mask = fillHoles(largestParts(mask, width, height), width, height);
  if (!mask.includes(1)) throw new NoGarmentError("no garment found: nothing stands out from the background but specks");
  const near = dilate(mask, width, height, 1);
  const level = mapped(Int32Array, distance, (d, i) => (near[i] ? d : 0));
  const reference = percentile99(level.filter((_, i) => mask[i]));
  if (reference === 0) {
    throw new NoGarmentError("no garment found: the object found is no darker or lighter than its background");
  }
  // the box: what a viewer sees of the garment (level * 8 > reference), not the edge's JPEG ringing
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (level[y * width + x] * 8 > reference) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
    }
  }
  const cropW = right - left + 1, cropH = bottom - top + 1;
  const crop = new Uint8Array(cropW * cropH);
  for (let y = 0; y < cropH; y++) {
    for (let x = 0; x < cropW; x++) {
      crop[y * cropW + x] = stretch(level[(y + top) * width + x + left], reference);
    }
  }
  const scale = IMAGE_SIDE / Math.max(cropH, cropW);
  const newW = Math.max(1, roundHalfEven(cropW * scale)), newH = Math.max(1, roundHalfEven(cropH * scale));
  const small = resize(crop, cropW, cropH, newW, newH, LANCZOS);
  const out = new Uint8Array(IMAGE_SIDE * IMAGE_SIDE);
  const outTop = Math.floor((IMAGE_SIDE - newH) / 2), outLeft = Math.floor((IMAGE_SIDE - newW) / 2);
  for (let y = 0; y < newH; y++) out.set(small.subarray(y * newW, (y + 1) * newW), (outTop + y) * IMAGE_SIDE + outLeft);
  const peak = maximum(out);
  if (peak === 0) throw new NoGarmentError("no garment found: the object found is too faint");
  return mapped(Uint8Array, out, (v) => stretch(v, peak));
}

/** _percentile99: the sorted value at int(0.99 * (n - 1)) of integer levels (a typed array, sorted in place). */
function percentile99(values) {
  const ranked = values.sort();
  return ranked[Math.trunc(0.99 * (ranked.length - 1))];
}

/** _stretch, per value: min(255, (value * 510 + reference) // (2 * reference)), value * 255 / reference. */
function stretch(value, reference) {
  return Math.min(255, Math.floor((value * 510 + reference) / (2 * reference)));
}

function maximum(values) {
  let best = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > best) best = values[i];
  return best;
}

/** A new `Type` array of fn(value, index) for each value (typed arrays' from() and map() are slow here). */
function mapped(Type, values, fn) {
  const out = new Type(values.length);
  for (let i = 0; i < values.length; i++) out[i] = fn(values[i], i);
  return out;
}

/** _shrink: the photo at most WORK_SIDE pixels a side, Pillow's BOX filter (an RGB image's channels are
 * resampled alike and apart, so one plane at a time gives Pillow's pixels). */
function shrink(photo) {
  const { channels, width, height } = photo;
  if (Math.max(height, width) <= WORK_SIDE) return photo;
  const scale = WORK_SIDE / Math.max(height, width);
  const newW = Math.max(1, roundHalfEven(width * scale)), newH = Math.max(1, roundHalfEven(height * scale));
  return { channels: channels.map((c) => resize(c, width, height, newW, newH, BOX)), width: newW, height: newH };
}

/** _running_median: (depth rows of n values) -> Float64Array(n), the median of columns i - half .. i + half
 * (cut at the ends) of every i; numpy.median: an even count's median is the mean of the two middle values. */
function runningMedian(strip, half) {
  const n = strip[0].length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const start = Math.max(0, i - half), end = Math.min(n, i + half + 1);
    const values = new Int32Array(strip.length * (end - start));
    let k = 0;
    for (const row of strip) for (let j = start; j < end; j++) values[k++] = row[j];
    values.sort();
    const middle = values.length >> 1;
    out[i] = values.length % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
  }
  return out;
}

/** _background: one channel's background level at every pixel, a Coons patch through running medians of the edges. */
function backgroundLevels(pixels, width, height) {
  const depth = Math.min(BORDER_DEPTH, height, width);
  const row = (y) => pixels.subarray(y * width, (y + 1) * width);
  const column = (x) => Int32Array.from({ length: height }, (_, y) => pixels[y * width + x]);
  const range = (start, count) => Array.from({ length: count }, (_, i) => start + i);
  const top = runningMedian(range(0, depth).map(row), Math.max(1, Math.floor(width / 16)));
  const bottom = runningMedian(range(height - depth, depth).map(row), Math.max(1, Math.floor(width / 16)));
  const left = runningMedian(range(0, depth).map(column), Math.max(1, Math.floor(height / 16)));
  const right = runningMedian(range(width - depth, depth).map(column), Math.max(1, Math.floor(height / 16)));
  const u = Float64Array.from({ length: width }, (_, x) => x / Math.max(1, width - 1));
  const v = Float64Array.from({ length: height }, (_, y) => y / Math.max(1, height - 1));
  const c00 = (top[0] + left[0]) / 2, c10 = (top[width - 1] + right[0]) / 2;
  const c01 = (bottom[0] + left[height - 1]) / 2, c11 = (bottom[width - 1] + right[height - 1]) / 2;
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const across = (1 - v[y]) * top[x] + v[y] * bottom[x];
      const down = (1 - u[x]) * left[y] + u[x] * right[y];
      const corners =
        (1 - u[x]) * (1 - v[y]) * c00 + u[x] * (1 - v[y]) * c10 + (1 - u[x]) * v[y] * c01 + u[x] * v[y] * c11;
      out[y * width + x] = across + down - corners;
    }
  }
  return out;
}

/** _box_sum: the sum over each pixel's (2r + 1)^2 window, zero outside the image (integers: exact). */
function boxSum(values, width, height, radius) {
  const stride = width + 1;
  const table = new Float64Array((height + 1) * stride); // summed-area table: exact below 2^53
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      table[(y + 1) * stride + x + 1] =
        values[y * width + x] + table[y * stride + x + 1] + table[(y + 1) * stride + x] - table[y * stride + x];
    }
  }
  const out = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    const y0 = Math.max(0, y - radius), y1 = Math.min(height, y + radius + 1);
    for (let x = 0; x < width; x++) {
      const x0 = Math.max(0, x - radius), x1 = Math.min(width, x + radius + 1);
      out[y * width + x] = table[y1 * stride + x1] - table[y0 * stride + x1] - table[y1 * stride + x0] + table[y0 * stride + x0];
    }
  }
  return out;
}

/** _box_mean: the window's mean, rounded half up (integer division, as Python's //). */
function boxMean(values, width, height, radius) {
  const total = boxSum(values, width, height, radius);
  const count = boxSum(new Int32Array(width * height).fill(1), width, height, radius);
  return mapped(Int32Array, total, (t, i) => Math.floor((2 * t + count[i]) / (2 * count[i])));
}

/** _dilate */
function dilate(mask, width, height, radius) {
  return mapped(Uint8Array, boxSum(mask, width, height, radius), (s) => (s > 0 ? 1 : 0));
}

/** _erode */
function erode(mask, width, height, radius) {
  const full = (2 * radius + 1) ** 2;
  return mapped(Uint8Array, boxSum(mask, width, height, radius), (s) => (s === full ? 1 : 0));
}

/** _hysteresis: pixels above Otsu's level, grown into every connected pixel above the border's own level. */
function hysteresis(strength, width, height) {
  const high = Math.max(otsu(strength), MIN_CONTRAST);
  const band = BORDER_DEPTH;
  // numpy's strength[:band], strength[-band:], strength[:, :band], strength[:, -band:] (overlaps counted twice)
  const edge = [];
  const rows = (start, end) => { for (let y = start; y < end; y++) for (let x = 0; x < width; x++) edge.push(strength[y * width + x]); };
  const columns = (start, end) => { for (let y = 0; y < height; y++) for (let x = start; x < end; x++) edge.push(strength[y * width + x]); };
  rows(0, Math.min(band, height));
  rows(Math.max(0, height - band), height);
  columns(0, Math.min(band, width));
  columns(Math.max(0, width - band), width);
  const low = Math.min(high, Math.max(MIN_CONTRAST, percentile99(Int32Array.from(edge)) + Math.floor(MIN_CONTRAST / 2)));
  const { labels } = label(mapped(Uint8Array, strength, (s) => (s > low ? 1 : 0)), width, height, true);
  const seeded = new Uint8Array(maximum(labels) + 1);
  for (let i = 0; i < labels.length; i++) if (strength[i] > high) seeded[labels[i]] = 1;
  seeded[0] = 0;
  return mapped(Uint8Array, labels, (l) => seeded[l]);
}

/** _otsu: the level t of integer levels 0..255 that best splits them into <= t and > t (float64, NumPy's order). */
function otsu(values) {
  const hist = new Float64Array(256);
  for (let i = 0; i < values.length; i++) hist[values[i]] += 1;
  const w0 = new Float64Array(256), s0 = new Float64Array(256);
  let w = 0, s = 0;
  for (let t = 0; t < 256; t++) {
    w += hist[t];
    s += hist[t] * t;
    w0[t] = w;
    s0[t] = s;
  }
  let best = 0, bestBetween = -Infinity;
  for (let t = 0; t < 256; t++) {
    const w1 = w0[255] - w0[t], s1 = s0[255] - s0[t];
    const gap = s0[t] / w0[t] - s1 / w1;
    const between = w0[t] === 0 || w1 === 0 ? -1.0 : w0[t] * w1 * (gap * gap);
    if (between > bestBetween) { // numpy.argmax: the first of equal maxima
      best = t;
      bestBetween = between;
    }
  }
  return best;
}

/** _label: connected parts of a mask (8-connected if `diagonal`, else 4): {labels, areas}, runs joined by
 * union-find, each part labelled 1 + its first run's index as Python numbers them. */
function label(mask, width, height, diagonal) {
  const parent = [];
  const root = (a) => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const reach = diagonal ? 1 : 0;
  const runs = []; // [y, start, end, label]
  let previous = [];
  for (let y = 0; y < height; y++) {
    const current = [];
    for (let x = 0; x < width; ) {
      if (!mask[y * width + x]) { x++; continue; }
      const start = x;
      while (x < width && mask[y * width + x]) x++;
      const end = x;
      const run = parent.length;
      parent.push(run);
      for (const [pStart, pEnd, pLabel] of previous) {
        if (pStart < end + reach && pEnd + reach > start) {
          const a = root(run), b = root(pLabel);
          parent[Math.max(a, b)] = Math.min(a, b);
        }
      }
      current.push([start, end, run]);
      runs.push([y, start, end, run]);
    }
    previous = current;
  }
  const labels = new Int32Array(width * height);
  const roots = parent.map((_, i) => root(i));
  for (const [y, start, end, run] of runs) labels.fill(roots[run] + 1, y * width + start, y * width + end);
  const areas = new Float64Array(parent.length + 1);
  for (let i = 0; i < labels.length; i++) areas[labels[i]] += 1;
  return { labels, areas };
}

/** _largest_parts: the largest part and every part at least 1/KEEP_DIVISOR of its area. */
function largestParts(mask, width, height) {
  const { labels, areas } = label(mask, width, height, true);
  areas[0] = 0;
  const largest = maximum(areas);
  if (largest === 0) return mask;
  const keep = mapped(Uint8Array, areas, (a) => (a * KEEP_DIVISOR >= largest ? 1 : 0));
  keep[0] = 0;
  return mapped(Uint8Array, labels, (l) => keep[l]);
}

/** _fill_holes: the mask with every background region that does not reach the image's edge filled (4-connected). */
function fillHoles(mask, width, height) {
  const { labels } = label(mapped(Uint8Array, mask, (m) => 1 - m), width, height, false);
  const outside = new Set();
  for (let x = 0; x < width; x++) outside.add(labels[x]).add(labels[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) outside.add(labels[y * width]).add(labels[y * width + width - 1]);
  return mapped(Uint8Array, mask, (m, i) => (m || !outside.has(labels[i]) ? 1 : 0));
}

/** Python's round() and numpy.rint: halves go to the even neighbour. */
function roundHalfEven(value) {
  const floor = Math.floor(value), diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// ----------------------------------------------------------------------------------------------------------------
// Pillow's Image.resize of an 8-bit grey image (libImaging/Resample.c): float64 coefficients normalised to 22-bit
// fixed point, two passes, the vertical one first when it shrinks more.
// ----------------------------------------------------------------------------------------------------------------

/** Resample.c's box_filter, support 0.5. */
export const BOX = {
  support: 0.5,
  filter: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0),
};

/** Resample.c's lanczos_filter (a truncated sinc), support 3. */
export const LANCZOS = {
  support: 3.0,
  filter: (x) => {
    const sinc = (v) => (v === 0.0 ? 1.0 : Math.sin(v * Math.PI) / (v * Math.PI));
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
  },
};

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, its first input pixel and int weights. */
function filterCoefficients(inSize, outSize, { filter, support: filterSupport }) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = filterSupport * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(outSize), counts = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  const inverse = 1.0 / filterScale;
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - first;
    const w = new Float64Array(count);
    let total = 0.0;
    for (let i = 0; i < count; i++) {
      w[i] = filter((i + first - center + 0.5) * inverse);
      total += w[i];
    }
    for (let i = 0; i < count; i++) {
      const k = total !== 0.0 ? w[i] / total : w[i];
      weights[out * taps + i] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    starts[out] = first;
    counts[out] = count;
  }
  return { starts, counts, weights, taps };
}

/** One 8-bit pass of Pillow's resampling along rows (stride 1) or columns (stride = width). */
function resamplePass(src, lines, lineStride, pixelStride, coeffs, outLength, dstLineStride, dstPixelStride) {
  const { starts, counts, weights, taps } = coeffs;
  const dst = new Uint8Array(lines * outLength);
  for (let line = 0; line < lines; line++) {
    for (let out = 0; out < outLength; out++) {
      let sum = 1 << (PRECISION_BITS - 1);
      const base = line * lineStride + starts[out] * pixelStride;
      for (let i = 0; i < counts[out]; i++) sum += src[base + i * pixelStride] * weights[out * taps + i];
      dst[line * dstLineStride + out * dstPixelStride] = Math.min(255, Math.max(0, Math.floor(sum / (1 << PRECISION_BITS))));
    }
  }
  return dst;
}

/** Pillow's Image.resize(..., BOX or LANCZOS) of an 8-bit grey image, including its choice of which pass runs first. */
export function resize(src, inW, inH, outW, outH, filter) {
  const needHorizontal = outW !== inW, needVertical = outH !== inH;
  const horizontalFirst = !(inH - outH > 0 && inH - outH > (inW - outW) * 2);
  let image = src, width = inW, height = inH;
  const horizontal = () => {
    image = resamplePass(image, height, width, 1, filterCoefficients(width, outW, filter), outW, outW, 1);
    width = outW;
  };
  const vertical = () => {
    image = resamplePass(image, width, 1, width, filterCoefficients(height, outH, filter), outH, 1, width);
    height = outH;
  };
  if (horizontalFirst) {
    if (needHorizontal) horizontal();
    if (needVertical) vertical();
  } else {
    if (needVertical) vertical();
    if (needHorizontal) horizontal();
  }
  return image;
}
