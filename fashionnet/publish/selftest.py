"""RUN/export/selftest.json: the reference a device checks its own runtime against (``fashionnet_edge --selftest``).

The edge kit owns the format's reading and the check (``fashionnet_edge.selftest``); the export stage writes it
here, after the parity gate, from the Keras probabilities the gate used.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from fashionnet_edge import SELFTEST_FORMAT

SELFTEST_IMAGES = 64
CANDIDATES = 4 * SELFTEST_IMAGES  # some artifacts run one image at a time (the microcontroller model)
# Keras's top-1 probability ahead of the runner-up by at least this: no int8 rounding on another CPU flips it
MIN_MARGIN = 0.5


def _top_and_margin(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the top probability, and how far it is ahead of the runner-up."""
    ranked = np.sort(probabilities, axis=1)
    return ranked[:, -1], ranked[:, -1] - ranked[:, -2]


def selftest_candidates(reference: np.ndarray) -> np.ndarray:
    """CANDIDATES test indices, in test order: the least saturated of the images whose top-1 is MIN_MARGIN ahead.

    A saturated softmax hides errors (at p = 1 - 1e-9 a 5 % error in a convolution's weights moves the
    probabilities by ~1e-8, far inside the fp32 tolerance); near p = 0.7 a 0.1 % error moves them by ~1e-3
    (docs/export.md). A model with too few such images (a 1-epoch model may be sure of nothing) gets the images
    with the largest margins instead, so a runtime computing the verified function still agrees with Keras."""
    top, margin = _top_and_margin(reference)
    robust = np.flatnonzero(margin >= MIN_MARGIN)
    if len(robust) >= CANDIDATES:
        chosen = robust[np.argsort(top[robust], kind="stable")[:CANDIDATES]]
    else:
        chosen = np.argsort(-margin, kind="stable")[:CANDIDATES]
    return np.sort(chosen)


def selftest_reference(
    artifacts: dict[str, Path], report: dict, reference: np.ndarray, images: np.ndarray, labels: np.ndarray
) -> dict:
    """SELFTEST_IMAGES test images (uint8 ``images``, in test order) among ``selftest_candidates``, on which every
    artifact agrees with Keras on this machine, with Keras's probabilities and each artifact's tolerance."""
    from fashionnet.parity.runtimes import open_runner, run_batched

    candidates = selftest_candidates(reference)
    floats = images[candidates][..., None].astype(np.float32) / 255
    keep = np.ones(len(candidates), dtype=bool)
    for path in artifacts.values():
        keep &= run_batched(open_runner(path, verify=False), floats, 256).argmax(1) == reference[candidates].argmax(1)
    pick = candidates[keep][:SELFTEST_IMAGES]
    top, margin = _top_and_margin(reference[pick])
    entries = {}
    for name, entry in report["artifacts"].items():
        tolerance = entry.get("tolerance", {}).get("max_abs_diff") if entry.get("precision") == "fp32" else None
        entries[name] = {"precision": entry.get("precision"), "max_abs_diff_tolerance": tolerance}
    return {
        "format": SELFTEST_FORMAT,
        "source": f"Fashion-MNIST test images among the {CANDIDATES} least saturated of those whose top-1 Keras "
        f"puts >= {MIN_MARGIN} ahead of the runner-up, on which every artifact agreed with Keras at export",
        "min_keras_probability": float(top.min()) if len(pick) else None,
        "max_keras_probability": float(top.max()) if len(pick) else None,
        "min_keras_margin": float(margin.min()) if len(pick) else None,
        "indices": pick.tolist(),
        "labels": np.asarray(labels)[pick].astype(int).tolist(),
        "images": base64.b64encode(np.ascontiguousarray(images[pick], dtype=np.uint8).tobytes()).decode("ascii"),
        "keras_probabilities": reference[pick].astype(np.float32).tolist(),
        "artifacts": entries,
    }
