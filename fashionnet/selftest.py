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
CONFIDENT = 0.9  # Keras's top-1 probability: a runtime computing the verified function gets these right


def selftest_reference(
    artifacts: dict[str, Path], report: dict, reference: np.ndarray, images: np.ndarray, labels: np.ndarray
) -> dict:
    """The first SELFTEST_IMAGES test images (uint8 ``images``) on which Keras is confident and every artifact
    agrees with it on this machine, with Keras's probabilities and each artifact's tolerance."""
    from fashionnet.runtimes import open_runner, run_batched

    # a few candidates beyond the set's size: some artifacts run one image at a time (the microcontroller model)
    confident = np.flatnonzero(reference.max(axis=1) >= CONFIDENT)[: 4 * SELFTEST_IMAGES]
    floats = images[confident][..., None].astype(np.float32) / 255
    keep = np.ones(len(confident), dtype=bool)
    for path in artifacts.values():
        keep &= run_batched(open_runner(path, verify=False), floats, 256).argmax(1) == reference[confident].argmax(1)
    pick = confident[keep][:SELFTEST_IMAGES]
    entries = {}
    for name, entry in report["artifacts"].items():
        tolerance = entry.get("tolerance", {}).get("max_abs_diff") if entry.get("precision") == "fp32" else None
        entries[name] = {"precision": entry.get("precision"), "max_abs_diff_tolerance": tolerance}
    return {
        "format": SELFTEST_FORMAT,
        "source": f"Fashion-MNIST test images on which Keras's top-1 probability is >= {CONFIDENT} and every "
        "artifact agreed with Keras at export",
        "indices": pick.tolist(),
        "labels": np.asarray(labels)[pick].astype(int).tolist(),
        "images": base64.b64encode(np.ascontiguousarray(images[pick], dtype=np.uint8).tobytes()).decode("ascii"),
        "keras_probabilities": reference[pick].astype(np.float32).tolist(),
        "artifacts": entries,
    }
