// An exported fashionnet ONNX model (fp32 or int8) on onnxruntime-web's WebAssembly backend.
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

// A relative wasmPaths makes onnxruntime-web report "no available backend": it must be an absolute URL.
ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
// Threads need SharedArrayBuffer, which a plain static server (no COOP/COEP headers) does not give.
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

export const ORT_VERSION = ort.env.versions.web;
export const IMAGE_PIXELS = 28 * 28;
export const CLASS_COUNT = 10;

export class ModelError extends Error {}

export class Classifier {
  constructor(session, url) {
    this.session = session;
    this.url = url;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
  }

  /** Fetch and load a model; a missing or unloadable file, another network's model, or bytes whose SHA-256 is
   * not `expectedSha256` (from the export's manifest.json) is a ModelError. */
  static async load(url, expectedSha256 = null) {
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new ModelError(`${url}: cannot fetch the model (${error.message})`);
    }
    if (!response.ok) throw new ModelError(`${url}: cannot fetch the model (HTTP ${response.status})`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let verified = false;
    if (expectedSha256 && globalThis.crypto && crypto.subtle) {
      // crypto.subtle exists only in secure contexts (https, localhost, 127.0.0.1): elsewhere the check is skipped
      const actual = await sha256Hex(bytes);
      if (actual !== expectedSha256) {
        throw new ModelError(
          `${url}: does not match manifest.json: sha256 ${actual} (${bytes.length} bytes), the manifest records ${expectedSha256}: a modified or truncated copy`,
        );
      }
      verified = true;
    }
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    } catch (error) {
      throw new ModelError(`${url}: not a loadable ONNX model (${firstLine(error)})`);
    }
    const classifier = new Classifier(session, url);
    classifier.verified = verified;
    classifier.checkContract();
    try {
      await classifier.run(new Float32Array(IMAGE_PIXELS), 1); // the first run allocates: keep it out of timings
    } catch (error) {
      throw new ModelError(`${url}: the model loads but does not run (${firstLine(error)})`);
    }
    return classifier;
  }

  /** The model contract of the Python kit: input (N, 28, 28, 1) float32, output (N, 10). */
  checkContract() {
    const { inputNames, outputNames, inputMetadata, outputMetadata } = this.session;
    const shape = (meta) => (meta && meta[0] && meta[0].shape ? meta[0].shape.slice(1).join(",") : "?");
    if (inputNames.length !== 1 || outputNames.length !== 1 || shape(inputMetadata) !== "28,28,1" || shape(outputMetadata) !== "10") {
      throw new ModelError(
        `${this.url}: not a Fashion-MNIST classifier: expected input (N, 28, 28, 1) and output (N, 10), ` +
          `found ${inputNames.length} input(s) [${shape(inputMetadata)}] and ${outputNames.length} output(s) [${shape(outputMetadata)}]`,
      );
    }
  }

  /** Float32Array of n * 784 pixels in [0, 1] -> Float32Array of n * 10 probabilities, one inference. */
  async run(pixels, n) {
    const input = new ort.Tensor("float32", pixels, [n, 28, 28, 1]);
    const results = await this.session.run({ [this.inputName]: input });
    return results[this.outputName].data;
  }

  /** Uint8Array of n * 784 grey levels -> Float32Array of n * 10 probabilities, `batch` images per inference. */
  async predict(greyLevels, n, batch = 64) {
    const out = new Float32Array(n * CLASS_COUNT);
    for (let start = 0; start < n; start += batch) {
      const count = Math.min(batch, n - start);
      const slice = greyLevels.subarray(start * IMAGE_PIXELS, (start + count) * IMAGE_PIXELS);
      out.set(await this.run(toUnitFloats(slice), count), start * CLASS_COUNT);
    }
    return out;
  }
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** uint8 grey levels -> float32 in [0, 1], the same values as numpy's astype(float32) / 255. */
export function toUnitFloats(greyLevels) {
  const out = new Float32Array(greyLevels.length);
  for (let i = 0; i < greyLevels.length; i++) out[i] = greyLevels[i] / 255;
  return out;
}

function firstLine(error) {
  return String(error && error.message ? error.message : error).split("\n")[0];
}
