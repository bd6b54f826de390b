// An exported fashionnet ONNX model (fp32 or int8) on onnxruntime-web's WebAssembly backend.

// Where `npm ci` puts onnxruntime-web. Imported on first use, not statically: a missing runtime then becomes a
// message on the page instead of a page stuck at "loading…".
const RUNTIME_DIR = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
const RUNTIME_MODULE = `${RUNTIME_DIR}ort.wasm.min.mjs`;
export const RUNTIME_MISSING =
  'onnxruntime-web is missing (node_modules/onnxruntime-web/dist/ not found): run "npm ci" in this folder (see README.md)';

let ort = null;
let runtime = null; // Promise of onnxruntime-web's version, once the import is under way
export let ORT_VERSION = null; // onnxruntime-web's version once it is loaded

export const IMAGE_PIXELS = 28 * 28;
export const CLASS_COUNT = 10;

export class ModelError extends Error {}

/** Import onnxruntime-web once; its version, or a ModelError saying it is missing and how to install it. */
export function loadRuntime() {
  runtime ??= import(RUNTIME_MODULE).then(
    (module) => {
      ort = module;
      // A relative wasmPaths makes onnxruntime-web report "no available backend": it must be an absolute URL.
      ort.env.wasm.wasmPaths = RUNTIME_DIR;
      // Threads need SharedArrayBuffer, which a plain static server (no COOP/COEP headers) does not give.
      ort.env.wasm.numThreads = 1;
      ort.env.logLevel = "error";
      ORT_VERSION = ort.env.versions.web;
      return ORT_VERSION;
    },
    async (error) => {
      // The import's error does not say why (a 404, a wrong MIME type, a syntax error): ask the server.
      const found = await fetch(RUNTIME_MODULE, { method: "HEAD" }).then((r) => r.ok, () => false);
      throw new ModelError(found ? `${RUNTIME_MODULE}: onnxruntime-web does not load (${firstLine(error)})` : RUNTIME_MISSING);
    },
  );
  return runtime;
}

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
    await loadRuntime();
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
