// The page: choose a model, classify the bundled test images or a photo. window.fashionnet is its API for
// scripts (the tests and `python -m fashionnet.web_bench` drive the page through it).
import { Classifier, CLASS_COUNT, IMAGE_PIXELS, ORT_VERSION, loadRuntime } from "./classifier.js";
import { decodeImage, InputError, toModelInput } from "./preprocess.js";

const $ = (id) => document.getElementById(id);
const classifiers = new Map(); // model key -> Promise<Classifier>
let kit = null;
let manifest = null; // Promise of the export's manifest.json (null when there is none)

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

/** A photo's error, shown under the drop zone where the photo went (the page's message line is far above). */
function showPhotoError(text) {
  $("photo-error").textContent = text;
  $("photo-error").hidden = !text;
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function modelEntry(key) {
  const entry = kit.models.find((m) => m.key === key);
  if (!entry) throw new Error(`no model "${key}" in kit.json (found ${kit.models.map((m) => m.key).join(", ")})`);
  return entry;
}

/** The Classifier for a model key, loaded once; a failed load is reported and retried on the next call. */
function classifier(key) {
  if (!classifiers.has(key)) {
    const url = new URL(modelEntry(key).file, document.baseURI).href;
    const loading = manifest.then((m) => Classifier.load(url, m?.files?.[fileName(key)]?.sha256 ?? null));
    loading.catch(() => classifiers.delete(key));
    classifiers.set(key, loading);
  }
  return classifiers.get(key);
}

function fileName(key) {
  return modelEntry(key).file.split("/").pop();
}

function selectedModel() {
  return document.querySelector('input[name="model"]:checked').value;
}

function drawGrey(canvas, greyLevels) {
  const image = new ImageData(28, 28);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    image.data.set([greyLevels[i], greyLevels[i], greyLevels[i], 255], 4 * i);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

function ranked(probabilities) {
  return Array.from(probabilities, (p, index) => ({ index, label: kit.class_names[index], probability: p })).sort(
    (a, b) => b.probability - a.probability || a.index - b.index,
  );
}

function showBars(list, probabilities, count = 5) {
  list.replaceChildren(
    ...ranked(probabilities)
      .slice(0, count)
      .map(({ label, probability }) => {
        const item = document.createElement("li");
        item.innerHTML = '<span class="label"></span><span class="bar"><span></span></span><span class="p"></span>';
        item.querySelector(".label").textContent = label;
        item.querySelector(".bar span").style.width = `${(100 * probability).toFixed(1)}%`;
        item.querySelector(".p").textContent = `${(100 * probability).toFixed(2)} %`;
        return item;
      }),
  );
}

/** Python's "{:.0f}" of 100 p: whole percent, halves to even. */
function percent(p) {
  const value = 100 * p, floor = Math.floor(value), diff = value - floor;
  return diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

/** The Python kit's "not sure" (fashionnet_edge.format_predictions) in whole percent: sure at or above kit.json's
 * not_sure_below, else "not sure: A p %, B p %" naming the two most likely classes. */
function verdict(probabilities) {
  const [first, second] = ranked(probabilities);
  const sure = first.probability >= kit.not_sure_below;
  const text = sure ? "" : `not sure: ${first.label} ${percent(first.probability)} %, ${second.label} ${percent(second.probability)} %`;
  return { sure, text };
}

/** Run `work`, timing it; errors become the page's message, never an uncaught error. */
async function guarded(work) {
  try {
    showMessage("");
    return await work();
  } catch (error) {
    showMessage(error.message);
    return undefined;
  }
}

async function classifyPhoto(file) {
  showPhotoError("");
  await guarded(async () => {
    $("photo-result").hidden = true;
    let pixels;
    try {
      pixels = toModelInput(await decodeImage(file), file.name);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      showPhotoError(error.message);
      return;
    }
    const model = await classifier(selectedModel());
    const started = performance.now();
    const probabilities = await model.predict(pixels, 1);
    const elapsed = performance.now() - started;
    const original = $("photo-original");
    if (original.src) URL.revokeObjectURL(original.src);
    original.src = URL.createObjectURL(file);
    drawGrey($("photo-input"), pixels);
    const { sure, text } = verdict(probabilities);
    $("photo-verdict").textContent = text;
    $("photo-verdict").hidden = sure;
    $("photo-result").classList.toggle("not-sure", !sure);
    showBars($("photo-bars"), probabilities);
    $("photo-latency").textContent = `${selectedModel()} model: ${elapsed.toFixed(2)} ms for this image`;
    $("photo-result").hidden = false;
  });
}

async function classifySamples() {
  await guarded(async () => {
    const { labels } = kit.samples;
    const pixels = fromBase64(kit.samples.pixels);
    const model = await classifier(selectedModel());
    const figures = $("samples").children;
    let correct = 0, total = 0;
    for (let i = 0; i < labels.length; i++) {
      const started = performance.now();
      const probabilities = await model.predict(pixels.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), 1);
      total += performance.now() - started;
      const best = ranked(probabilities)[0];
      correct += best.index === labels[i];
      const caption = figures[i].querySelector(".prediction");
      caption.textContent = `${best.label} ${(100 * best.probability).toFixed(0)} %`;
      caption.className = `prediction ${best.index === labels[i] ? "right" : "wrong"}`;
    }
    $("samples-summary").textContent =
      `${selectedModel()} model: ${correct} of ${labels.length} right, ` +
      `${(total / labels.length).toFixed(2)} ms per image (batch 1, including the page's work)`;
  });
}

/** Python's "{:.Ne}" format (7.2e-07), so the page's self-test line reads like the Python kit's. */
function pythonExp(value, digits) {
  const [mantissa, exponent] = value.toExponential(digits).split("e");
  const power = Number(exponent);
  return `${mantissa}e${power < 0 ? "-" : "+"}${String(Math.abs(power)).padStart(2, "0")}`;
}

/** The Python kit's --selftest in the page: the model on this browser against the export's selftest.json. */
async function selftest(key) {
  const response = await fetch("../selftest.json");
  if (!response.ok) throw new Error(`selftest.json: cannot fetch it (HTTP ${response.status}); it is written by fashionnet export`);
  const reference = await response.json();
  const file = fileName(key);
  const entry = reference.artifacts[file];
  if (!entry) throw new Error(`selftest.json: no entry for ${file}`);
  const pixels = fromBase64(reference.images);
  const n = pixels.length / IMAGE_PIXELS;
  const probabilities = await (await classifier(key)).predict(pixels, n);
  let agree = 0, diff = 0;
  for (let i = 0; i < n; i++) {
    const keras = reference.keras_probabilities[i];
    const row = probabilities.subarray(i * CLASS_COUNT, (i + 1) * CLASS_COUNT);
    agree += ranked(row)[0].index === ranked(keras)[0].index;
    for (let j = 0; j < CLASS_COUNT; j++) diff = Math.max(diff, Math.abs(row[j] - keras[j]));
  }
  const tolerance = entry.max_abs_diff_tolerance;
  const passed = agree === n && (tolerance == null || diff <= tolerance);
  const gate = tolerance == null ? "not gated (int8)" : `${diff <= tolerance ? "<=" : ">"} ${pythonExp(tolerance, 0)}`;
  const line =
    `selftest ${file}: ${passed ? "PASS" : "FAIL"}, top-1 as Keras on ${agree}/${n} images, ` +
    `max |\u0394p| ${pythonExp(diff, 1)} ${gate}, onnxruntime-web ${ORT_VERSION}, ` +
    `${navigator.platform}, ${navigator.hardwareConcurrency} logical CPUs`;
  return { passed, line };
}

async function showSelftest() {
  await guarded(async () => {
    $("selftest-result").textContent = "running…";
    const { passed, line } = await selftest(selectedModel());
    $("selftest-result").textContent = line;
    $("selftest-result").className = passed ? "right" : "wrong";
  });
}

function buildPage() {
  $("models").replaceChildren(
    ...kit.models.map((m, i) => {
      const label = document.createElement("label");
      const mb = (m.bytes / 1e6).toFixed(2);
      const accuracy = m.test_accuracy == null ? "" : `, ${(100 * m.test_accuracy).toFixed(2)} % on the test set`;
      label.innerHTML = `<input type="radio" name="model"> <span></span>`;
      label.querySelector("input").value = m.key;
      label.querySelector("input").checked = i === 0;
      label.querySelector("span").textContent = `${m.key} (${m.file.split("/").pop()}, ${mb} MB${accuracy})`;
      return label;
    }),
  );
  const pixels = fromBase64(kit.samples.pixels);
  $("sample-count").textContent = String(kit.samples.labels.length);
  $("samples").replaceChildren(
    ...kit.samples.labels.map((label, i) => {
      const figure = document.createElement("figure");
      figure.innerHTML = '<canvas width="28" height="28"></canvas><figcaption></figcaption><div class="prediction"></div>';
      drawGrey(figure.querySelector("canvas"), pixels.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS));
      figure.querySelector("figcaption").textContent = kit.class_names[label];
      return figure;
    }),
  );
  $("photo").addEventListener("change", (event) => event.target.files[0] && classifyPhoto(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) classifyPhoto(event.dataTransfer.files[0]);
  });
  $("classify-samples").addEventListener("click", classifySamples);
  $("run-selftest").addEventListener("click", showSelftest);
  $("models").addEventListener("change", () => loadSelected());
}

async function loadSelected() {
  const key = selectedModel();
  $("model-status").textContent = `loading ${key}…`;
  $("classify-samples").disabled = $("run-selftest").disabled = true;
  const loaded = await guarded(() => classifier(key));
  const check = loaded && loaded.verified ? " (SHA-256 as in manifest.json)" : "";
  $("model-status").textContent = loaded ? `${key} model ready${check}` : `${key} model failed to load`;
  $("classify-samples").disabled = $("run-selftest").disabled = !loaded;
  return Boolean(loaded);
}

async function start() {
  const response = await fetch("kit.json");
  if (!response.ok) throw new Error(`kit.json: cannot fetch it (HTTP ${response.status}); serve the export folder`);
  kit = await response.json();
  manifest = fetch("../manifest.json").then((r) => (r.ok ? r.json() : null), () => null);
  buildPage();
  loadRuntime().then(
    (version) => ($("ort-version").textContent = version),
    () => ($("ort-version").textContent = "(not installed)"), // the model status and the message say why
  );
  return loadSelected();
}

// The API for scripts: grey levels and file bytes travel as base64 strings, probabilities as plain arrays.
window.fashionnet = {
  /** onnxruntime-web's version, once loaded (null before, or when it is missing). */
  get ortVersion() {
    return ORT_VERSION;
  },
  /** kit.json's threshold: a photo whose top probability is below it is shown as "not sure". */
  get notSureBelow() {
    return kit ? kit.not_sure_below : null;
  },
  /** {sure, text}: what the page says of these 10 probabilities ("not sure: A p %, B p %" below notSureBelow). */
  verdict: (probabilities) => verdict(probabilities),
  ready: start().catch((error) => {
    showMessage(error.message);
    return false;
  }),
  /** n images of 784 grey levels (base64) -> n * 10 probabilities, `batch` images per inference. */
  async classify(modelKey, pixelsBase64, n, batch = 64) {
    const model = await classifier(modelKey);
    return Array.from(await model.predict(fromBase64(pixelsBase64), n, batch));
  },
  /** A photo's bytes (base64) -> its 784 grey levels, or {error} with the message the page would show. */
  async preprocess(fileBase64, name) {
    try {
      return Array.from(toModelInput(await decodeImage(new Blob([fromBase64(fileBase64)]), name), name));
    } catch (error) {
      return { error: error.message };
    }
  },
  /** {passed, line}: the self-test of a model, as the page's button runs it. */
  selftest: (modelKey) => selftest(modelKey),
  /** Milliseconds per inference of `batch` images: the mean of each of `blocks` blocks of `perBlock` runs, after
   * `warmup` untimed runs (blocks, because the page's clock is coarsened to 0.1 ms without cross-origin isolation). */
  async benchmark(modelKey, batch, blocks, perBlock, warmup = 20) {
    const model = await classifier(modelKey);
    const pixels = new Float32Array(batch * IMAGE_PIXELS).fill(0.5);
    for (let i = 0; i < warmup; i++) await model.run(pixels, batch);
    const times = [];
    for (let block = 0; block < blocks; block++) {
      const started = performance.now();
      for (let i = 0; i < perBlock; i++) await model.run(pixels, batch);
      times.push((performance.now() - started) / perBlock);
    }
    return times;
  },
  classCount: CLASS_COUNT,
};
