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


def selftest_reference(
    artifacts: dict[str, Path], report: dict, reference: np.ndarray, images: np.ndarray, labels: np.ndarray
) -> dict:
    """SELFTEST_IMAGES test images (uint8 ``images``, in test order) among those Keras is most sure of, on which
    every artifact agrees with Keras on this machine, with Keras's probabilities and each artifact's tolerance.

    The most confident images, not a fixed threshold: a runtime computing the verified function gets them right
    however weak the model (a 1-epoch model may be 90 % sure of no image at all)."""
    from fashionnet.parity.runtimes import open_runner, run_batched

    confident = np.sort(np.argsort(-reference.max(axis=1), kind="stable")[:CANDIDATES])
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
        "source": f"Fashion-MNIST test images among the {CANDIDATES} Keras is most sure of, on which every "
        "artifact agreed with Keras at export",
        "min_keras_probability": float(reference[pick].max(axis=1).min()) if len(pick) else None,
        "indices": pick.tolist(),
        "labels": np.asarray(labels)[pick].astype(int).tolist(),
        "images": base64.b64encode(np.ascontiguousarray(images[pick], dtype=np.uint8).tobytes()).decode("ascii"),
        "keras_probabilities": reference[pick].astype(np.float32).tolist(),
        "artifacts": entries,
    }
