"""``python -m fashionnet.bench.photo_bench RUN``: how the kits do on photos, per condition, against the upper bound.

Makes the benchmark's photos from the Fashion-MNIST test set (fashionnet/bench/photos.py), then for each: the
Python kit's input (``fashionnet_edge.load_image``) and answer with the export's fp32 ONNX model, the browser
page's input and answer in headless Chromium (unless ``--no-browser``), and the model's answer on the same test
image as the data set gives it (the upper bound). Also how "not sure" (``NOT_SURE_BELOW``) separates wrong
answers from right ones at a range of thresholds. Writes photo_bench.json, photo_bench.md and the photos.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from fashionnet.bench.photos import CONDITIONS, make_benchmark

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def export_folder(path: Path) -> Path:
    """A run folder (its export/) or an export folder itself: the one holding model.onnx."""
    for folder in (path / "export", path):
        if (folder / "model.onnx").is_file():
            return folder
    raise SystemExit(f"photo_bench: error: {path}: no model.onnx here or in export/ (run `fashionnet export` first)")


def load_kit(path: Path | None):
    """The Python kit to measure: the installed fashionnet_edge, or another version of its file (before/after)."""
    if path is None:
        import fashionnet_edge

        return fashionnet_edge
    spec = importlib.util.spec_from_file_location("fashionnet_edge_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kit_inputs(kit, photos, folder: Path) -> tuple[np.ndarray, list[str | None]]:
    """(N, 28, 28) uint8 inputs the kit makes of the photos (zeros where it refused one) and its errors."""
    pixels = np.zeros((len(photos), 28, 28), np.uint8)
    errors: list[str | None] = []
    for i, photo in enumerate(photos):
        try:
            pixels[i] = np.round(kit.load_image(folder / photo.name) * 255)
            errors.append(None)
        except kit.EdgeInputError as exc:
            errors.append(str(exc))
    return pixels, errors


def page_inputs(export_dir: Path, photos) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """The browser page's inputs, errors and fp32 probabilities for the photos (headless Chromium)."""
    from fashionnet.publish.browser import BrowserError, install_runtime, open_kit
    from fashionnet.publish.web import WEB_DIR_NAME

    install_runtime(export_dir / WEB_DIR_NAME)  # `npm ci` in the kit, as its README says, unless done already
    pixels = np.zeros((len(photos), 28, 28), np.uint8)
    errors: list[str | None] = []
    with open_kit(export_dir) as page:
        if not page.open():
            raise BrowserError(f"the web kit did not load: {page.message()}")
        for i, photo in enumerate(photos):
            result = page.preprocess(photo.data, photo.name)
            if isinstance(result, str):
                errors.append(result)
            else:
                pixels[i] = result
                errors.append(None)
        probs = page.classify("fp32", pixels)
    return pixels, errors, probs


def not_sure_table(probs: np.ndarray, right: np.ndarray) -> list[dict]:
    """For each threshold: how many answers it flags, and how well the flag picks out the wrong ones."""
    top = probs.max(axis=1)
    wrong = ~right
    rows = []
    for threshold in THRESHOLDS:
        flagged = top < threshold
        caught = int((flagged & wrong).sum())
        rows.append(
            {
                "threshold": threshold,
                "flagged": int(flagged.sum()),
                "precision": caught / max(1, int(flagged.sum())),  # flagged answers that were wrong
                "recall": caught / max(1, int(wrong.sum())),  # wrong answers that were flagged
                "sure_accuracy": float(right[~flagged].mean()) if (~flagged).any() else None,
            }
        )
    return rows


def condition_rows(photos, given_right, kit_right, kit_probs, errors, threshold, page) -> list[dict]:
    """One row per condition: the upper bound, the kit (and the page, when measured) on its photos."""
    rows = []
    for condition in CONDITIONS:
        pick = np.array([p.condition == condition for p in photos])
        row = {
            "condition": condition,
            "what": CONDITIONS[condition],
            "photos": int(pick.sum()),
            "given_accuracy": float(given_right[pick].mean()),
            "kit_accuracy": float(kit_right[pick].mean()),
            "kit_errors": sum(1 for e, k in zip(errors, pick, strict=True) if k and e),
            "not_sure": int((kit_probs[pick].max(1) < threshold).sum()) if threshold else None,
        }
        if page is not None:
            row["page_accuracy"] = float(page["right"][pick].mean())
            row["page_pixels_equal"] = int(page["same"][pick].sum())
        rows.append(row)
    return rows


def run(args) -> dict:
    from fashionnet.core.data import load_data
    from fashionnet_edge import open_classifier

    started = time.perf_counter()
    kit = load_kit(args.kit)
    export_dir = export_folder(args.run)
    (_, _), (images, labels) = load_data(args.data_dir)
    photos = make_benchmark(images, labels, args.per_condition, seed=args.seed)
    folder = args.out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        (folder / photo.name).write_bytes(photo.data)
    print(f"photo_bench: {len(photos)} photos in {folder}", flush=True)

    classifier = open_classifier(export_dir / "model.onnx")
    truth = np.array([p.label for p in photos])
    everything = classifier.predict(images[..., None].astype(np.float32) / 255)  # the whole test set as given
    given = everything[[p.index for p in photos]]
    pixels, errors = kit_inputs(kit, photos, folder)
    kit_probs = classifier.predict(pixels[..., None].astype(np.float32) / 255)
    kit_right = (kit_probs.argmax(1) == truth) & np.array([e is None for e in errors])
    given_right = given.argmax(1) == truth
    page = None
    if not args.no_browser:
        page_pixels, page_errors, page_probs = page_inputs(export_dir, photos)
        same = [
            (a is None and b is None and np.array_equal(x, y)) or (a is not None and a == b)
            for x, y, a, b in zip(pixels, page_pixels, errors, page_errors, strict=True)
        ]
        page = {
            "right": (page_probs.argmax(1) == truth) & np.array([e is None for e in page_errors]),
            "same": np.array(same),
        }
    threshold = getattr(kit, "NOT_SURE_BELOW", None)
    conditions = condition_rows(photos, given_right, kit_right, kit_probs, errors, threshold, page)
    photos_only = np.array([p.condition != "drawn silhouette" for p in photos])
    result = {
        "command": "python -m fashionnet.bench.photo_bench " + " ".join(args.argv),
        "model": str(export_dir / "model.onnx"),
        "kit": str(args.kit or "fashionnet_edge (installed)"),
        "photos": len(photos),
        "per_condition": args.per_condition,
        "seed": args.seed,
        "given_accuracy": float(given_right.mean()),
        "kit_accuracy": float(kit_right.mean()),
        "kit_over_given": float(kit_right.mean() / max(1e-9, given_right.mean())),
        "photos_kit_over_given": float(kit_right[photos_only].mean() / max(1e-9, given_right[photos_only].mean())),
        "conditions": conditions,
        "not_sure_below": threshold,
        "not_sure": not_sure_table(kit_probs, kit_right),
        "not_sure_test_set": not_sure_table(everything, everything.argmax(1) == labels),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if page is not None:
        result["page_accuracy"] = float(page["right"].mean())
        result["page_pixels_equal"] = int(page["same"].sum())
    return result


def markdown(result: dict) -> str:
    page = "page_accuracy" in result
    head = "| condition | photos | as given | Python kit | kit / given |" + (
        " page | page = kit pixels |" if page else ""
    )
    lines = [
        f"`{result['command']}` ({result['photos']} photos, seed {result['seed']}, model `{result['model']}`)",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for row in result["conditions"]:
        ratio = row["kit_accuracy"] / max(1e-9, row["given_accuracy"])
        line = (
            f"| {row['condition']} | {row['photos']} | {row['given_accuracy']:.3f} | {row['kit_accuracy']:.3f} "
            f"| {ratio:.2f} |"
        )
        if page:
            line += f" {row['page_accuracy']:.3f} | {row['page_pixels_equal']}/{row['photos']} |"
        lines.append(line)
    total = (
        f"| **all** | {result['photos']} | {result['given_accuracy']:.3f} | {result['kit_accuracy']:.3f} "
        f"| {result['kit_over_given']:.2f} |"
    )
    if page:
        total += f" {result['page_accuracy']:.3f} | {result['page_pixels_equal']}/{result['photos']} |"
    lines += [total, "", f"Photos only (no drawings): kit / given = {result['photos_kit_over_given']:.2f}.", ""]
    lines += [
        "| not sure below | photos flagged | flagged that were wrong (precision) | wrong that were flagged (recall) "
        "| accuracy of the rest | test images flagged | precision | recall | accuracy of the rest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row, test in zip(result["not_sure"], result["not_sure_test_set"], strict=True):
        mark = " (the kits')" if row["threshold"] == result["not_sure_below"] else ""
        cells = []
        for r in (row, test):
            rest = "-" if r["sure_accuracy"] is None else f"{r['sure_accuracy']:.3f}"
            cells.append(f"{r['flagged']} | {r['precision']:.2f} | {r['recall']:.2f} | {rest}")
        lines.append(f"| {row['threshold']:.2f}{mark} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m fashionnet.bench.photo_bench", description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its export/) or an export folder with model.onnx")
    parser.add_argument("--per-condition", type=int, default=24, help="photos per condition (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("photo-bench"), help="output folder (default photo-bench)")
    parser.add_argument("--data-dir", default=None, help="the Fashion-MNIST folder (default: the usual look-up)")
    parser.add_argument("--no-browser", action="store_true", help="measure the Python kit only")
    parser.add_argument("--kit", type=Path, default=None, help="another fashionnet_edge.py to measure (before/after)")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.per_condition < 1:
        parser.error("--per-condition must be at least 1")
    from fashionnet.publish.browser import BrowserError

    try:
        result = run(args)
    except BrowserError as exc:
        print(f"photo_bench: error: {exc} (--no-browser measures the Python kit alone)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "photo_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "photo_bench.md").write_text(text)
    print(text)
    print(f"written: {args.out / 'photo_bench.json'}, {args.out / 'photo_bench.md'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
