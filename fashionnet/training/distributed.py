"""Data-parallel training on Keras 3's own distribution engine: ``keras.distribution`` on the jax backend.

``fashionnet train --distribute`` splits every global batch (``--batch-size``) evenly over all devices: the local
ones (GPUs, TPUs, or N CPU devices) and, in a multi-process job, those of every process. A multi-process job is
described by Keras's ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / ``_NUM_PROCESSES`` / ``_PROCESS_ID`` variables (what
``fashionnet launch`` sets), or detected by jax from a cluster launcher (SLURM, Open MPI). Each process feeds only
its shard of each global batch (``batches.ShuffledBatches``); process 0 alone writes the run folder.

The only backend-specific module of training besides ``jax_ops``: Keras implements ``keras.distribution`` for jax
only (on tensorflow ``DataParallel`` silently trains on one device; on torch it does not exist), so any other
backend is refused here rather than trained undistributed. Usage and measurements: docs/distributed.md.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from fashionnet.errors import ConfigError, DistributedError

ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# Cluster launchers jax.distributed recognizes by itself (its SLURM and Open MPI cluster detection).
CLUSTER_SIZE_VARIABLES = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


@dataclass(frozen=True)
class Topology:
    """Where this process stands: process ``process_index`` of ``process_count``, ``devices`` devices in all."""

    process_index: int = 0
    process_count: int = 1
    devices: int = 1
    distributed: bool = False

    @property
    def is_chief(self) -> bool:
        """Process 0: the only one that writes the run folder and prints progress."""
        return self.process_index == 0

    def describe(self) -> dict:
        return {"processes": self.process_count, "devices": self.devices}


SINGLE = Topology()


def _int_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, found {text!r}") from None


def requested_processes() -> tuple[int | None, int | None]:
    """(number of processes, this process's id) from Keras's variables; (None, None) when they are not set.

    ConfigError for values that cannot describe one job (a count below 1, an id outside [0, count), a list of
    addresses of another length)."""
    count, index = _int_env(ENV_PROCESSES), _int_env(ENV_PROCESS_ID)
    addresses = os.environ.get(ENV_ADDRESSES, "")
    if count is None and index is None and not addresses:
        return None, None
    if count is None or index is None or not addresses:
        missing = [
            n
            for n, v in ((ENV_ADDRESSES, addresses), (ENV_PROCESSES, count), (ENV_PROCESS_ID, index))
            if v in (None, "")
        ]
        raise ConfigError(
            f"a multi-process job needs {ENV_ADDRESSES}, {ENV_PROCESSES} and {ENV_PROCESS_ID}; "
            f"missing: {', '.join(missing)}"
        )
    if count < 1:
        raise ConfigError(f"{ENV_PROCESSES} must be >= 1, found {count}")
    if not 0 <= index < count:
        raise ConfigError(f"{ENV_PROCESS_ID} must be in [0, {count}) for {count} processes, found {index}")
    listed = [a for a in addresses.split(",") if a.strip()]
    if len(listed) > 1 and len(listed) != count:
        raise ConfigError(f"{ENV_ADDRESSES} lists {len(listed)} addresses for {ENV_PROCESSES}={count}")
    return count, index


def _cluster_size() -> int | None:
    for name in CLUSTER_SIZE_VARIABLES:
        size = _int_env(name)
        if size is not None and size > 1:
            return size
    return None


def setup(global_batch: int, log=None) -> Topology:
    """Join the job (multi-process) and make ``DataParallel`` over every device the global distribution.

    Call before any jax computation. ConfigError (exit 2) for a backend other than jax, a job description that
    does not hold together, or a global batch the devices cannot split evenly; DistributedError when the
    processes do not meet."""
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise ConfigError(
            f"--distribute needs the jax backend: Keras's distribution engine (keras.distribution) is not "
            f"implemented for the {backend} backend; set KERAS_BACKEND=jax"
        )
    import jax

    count, index = requested_processes()
    if count is None:
        count = _cluster_size()  # jax reads the rest of the job from the launcher's own variables
    if count is not None and count > 1:
        try:
            keras.distribution.initialize()
        except Exception as exc:  # noqa: BLE001 - jax raises RuntimeError/ValueError/XlaRuntimeError here
            raise DistributedError(
                f"process {index if index is not None else '?'} of {count} could not join the job at "
                f"{os.environ.get(ENV_ADDRESSES) or 'the cluster coordinator'}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        if jax.process_count() != count:
            raise ConfigError(f"the job was started for {count} processes, jax found {jax.process_count()}")
    devices = keras.distribution.list_devices()
    if global_batch % len(devices):
        raise ConfigError(
            f"--batch-size {global_batch} (the global batch) does not split evenly over {len(devices)} devices "
            f"of {jax.process_count()} process(es); choose a multiple of {len(devices)}"
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    topology = Topology(jax.process_index(), jax.process_count(), len(devices), distributed=True)
    if log is not None and topology.is_chief:
        log(
            f"distribute: data parallel over {topology.devices} {jax.devices()[0].platform.upper()} devices in "
            f"{topology.process_count} process(es); global batch {global_batch}, "
            f"{global_batch // topology.devices} per device"
        )
    return topology


def barrier(topology: Topology, name: str) -> None:
    """Every process waits here until all have arrived (e.g. until process 0 has prepared the run folder)."""
    if topology.process_count > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def end(topology: Topology) -> None:
    """Leave the job: back to a single-process Keras without a distribution (process 0 evaluates and exports
    alone, and no process waits at exit for the others)."""
    if not topology.distributed:
        return
    import keras

    keras.distribution.set_distribution(None)
    if topology.process_count > 1:
        import jax

        jax.distributed.shutdown()


def weights_fingerprint(weights) -> str:
    """A short SHA-256 of the weights' bytes: equal on every process of a lock-step job."""
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


# What jax/gloo say when a peer process of the job has died (a collective's connection, the coordinator's heartbeat).
_PEER_FAILURE_MARKS = ("Gloo", "gloo", "Connection reset", "Connection refused", "heartbeat", "coordination service",
                       "UNAVAILABLE", "DEADLINE_EXCEEDED")  # fmt: skip


def is_peer_failure(exc: BaseException) -> bool:
    return any(mark in str(exc) for mark in _PEER_FAILURE_MARKS)


def peer_failure(exc: BaseException, topology: Topology, done: int, epochs: int) -> DistributedError:
    """The one-line error of a process whose job lost a process: what happened and how to resume."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    error = DistributedError(
        f"process {topology.process_index} of {topology.process_count}: another process of the job failed "
        f"({first[:160]}); {done} of {epochs} epochs are saved: rerun the same job to resume from epoch {done + 1}"
    )
    error.hard_exit = True  # jax's exit would wait ~100 s for the dead process's heartbeat, then abort
    return error


def launched_as_chief() -> bool:
    """Whether this process is process 0 of its job, from the launcher's variables alone (no jax started)."""
    for name in (ENV_PROCESS_ID, "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        index = _int_env(name)
        if index is not None:
            return index == 0
    return True
