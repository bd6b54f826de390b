// A photo -> the 28 x 28 input the model sees: fashionnet_edge.load_image (the Python edge kit), step for step.
//
// The Python kit is the reference; every step here reproduces its arithmetic (Pillow's integer grey conversion,
// NumPy's float32 operations, Pillow's fixed-point LANCZOS resampling), so both kits give the same pixels
// (tests/web checks it on generated photos, docs/web.md states the measured difference).

export const IMAGE_SIDE = 28;
// Pillow refuses images above 2 x its MAX_IMAGE_PIXELS (178,956,970) as decompression bombs; stop far sooner.
export const MAX_IMAGE_PIXELS = 40_000_000;
const GARMENT_THRESHOLD = Math.fround(0.1); // NumPy compares a float32 array with float32(0.1)
const PRECISION_BITS = 22; // Pillow's Resample.c: 32 - 8 - 2
const LANCZOS_SUPPORT = 3.0;

export class InputError extends Error {}

/** A File or Blob -> {width, height, rgba}: decoded by the browser, EXIF orientation applied, over white. */
export async function decodeImage(blob, name = blob.name || "image") {
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

/** RGBA pixels -> Uint8Array(28 * 28): grey, inverted if the background is light, cropped, resized, centred. */
export function toModelInput({ width, height, rgba }, name = "image") {
  const f32 = Math.fround;
  const count = width * height;
  if (count === 0) throw new InputError(`${name}: empty image`);
  const grey = new Float32Array(count); // float32 throughout, as NumPy computes it
  for (let i = 0; i < count; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    grey[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255; // Pillow's ITU-R 601-2 luma, L24
  }
  let background = borderMedian(grey, width, height);
  if (background > 0.5) {
    // dark garment on a light background: invert to Fashion-MNIST's light-on-black
    for (let i = 0; i < count; i++) grey[i] = 1 - grey[i];
    background = 1.0 - background;
  }
  if (background < 1.0) {
    const level = f32(background), range = f32(1.0 - background);
    for (let i = 0; i < count; i++) grey[i] = Math.min(1, Math.max(0, f32(f32(grey[i] - level) / range)));
  }
  const box = garmentBox(grey, width, height);
  if (!box) throw new InputError(`${name}: no garment found: the image is uniform (expected an object on a plain background)`);
  const cropW = box.right - box.left, cropH = box.bottom - box.top;
  const crop = new Uint8Array(cropW * cropH);
  for (let y = 0; y < cropH; y++) {
    for (let x = 0; x < cropW; x++) {
      crop[y * cropW + x] = roundHalfEven(f32(grey[(y + box.top) * width + x + box.left] * 255));
    }
  }
  const scale = IMAGE_SIDE / Math.max(cropW, cropH);
  const newW = Math.max(1, roundHalfEven(cropW * scale)), newH = Math.max(1, roundHalfEven(cropH * scale));
  const small = resizeLanczos(crop, cropW, cropH, newW, newH);
  const out = new Uint8Array(IMAGE_SIDE * IMAGE_SIDE);
  const top = Math.floor((IMAGE_SIDE - newH) / 2), left = Math.floor((IMAGE_SIDE - newW) / 2);
  for (let y = 0; y < newH; y++) out.set(small.subarray(y * newW, (y + 1) * newW), (top + y) * IMAGE_SIDE + left);
  return out;
}

/** numpy.median of the border (rows 0 and -1, then columns 0 and -1): the mean of the two middle values. */
function borderMedian(grey, width, height) {
  const border = new Float32Array(2 * width + 2 * height);
  let n = 0;
  for (let x = 0; x < width; x++) border[n++] = grey[x];
  for (let x = 0; x < width; x++) border[n++] = grey[(height - 1) * width + x];
  for (let y = 0; y < height; y++) border[n++] = grey[y * width];
  for (let y = 0; y < height; y++) border[n++] = grey[y * width + width - 1];
  border.sort();
  const half = border.length / 2; // always even
  return Math.fround(Math.fround(border[half - 1] + border[half]) / 2);
}

/** The bounding box of pixels above GARMENT_THRESHOLD, or null when there are none. */
function garmentBox(grey, width, height) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (grey[y * width + x] > GARMENT_THRESHOLD) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  return bottom < 0 ? null : { top, bottom: bottom + 1, left, right: right + 1 };
}

/** Python's round() and numpy.round: halves go to the even neighbour. */
function roundHalfEven(value) {
  const floor = Math.floor(value), diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function lanczos(x) {
  const sinc = (v) => (v === 0.0 ? 1.0 : Math.sin(v * Math.PI) / (v * Math.PI));
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, its first input pixel and int weights. */
function lanczosCoefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = LANCZOS_SUPPORT * filterScale;
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
      w[i] = lanczos((i + first - center + 0.5) * inverse);
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

/** Pillow's Image.resize(..., LANCZOS) of an 8-bit grey image, including its choice of which pass runs first. */
export function resizeLanczos(src, inW, inH, outW, outH) {
  const needHorizontal = outW !== inW, needVertical = outH !== inH;
  const horizontalFirst = !(inH - outH > 0 && inH - outH > (inW - outW) * 2);
  let image = src, width = inW, height = inH;
  const horizontal = () => {
    image = resamplePass(image, height, width, 1, lanczosCoefficients(width, outW), outW, outW, 1);
    width = outW;
  };
  const vertical = () => {
    image = resamplePass(image, width, 1, width, lanczosCoefficients(height, outH), outH, 1, width);
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
