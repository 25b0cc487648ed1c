"""TFLite interpreter selection and a low-overhead signature call (no TensorFlow needed).

Backends, in order of preference: ``ai-edge-litert`` (LiteRT), ``tflite-runtime``,
``tensorflow.lite``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import sys
import time
import types
from collections.abc import Iterator, Sequence

import numpy as np

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
#: The kernel sets an interpreter can run (:func:`make_interpreter`).
KERNELS = ("default", "builtin", "reference")
#: 32-bit ARM, where tflite-runtime 2.14's optimised int8 kernels crash (:func:`kernels_for`).
ARM32 = ("armv7l", "armv6l", "armv8l")


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_kernels(kernels: str) -> None:
    """Raises ValueError for a name not in :data:`KERNELS`."""
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose from {KERNELS}")


def kernels_for(backend: str, kernels: str, machine: str | None = None) -> str:
    """The kernel set that runs: ``kernels``, except with ``tflite-runtime`` on 32-bit ARM, where
    it is always ``"reference"``. There its optimised int8 ``FULLY_CONNECTED`` (gemmlowp, with the
    per-channel weight scales our files have) dereferences a null pointer and kills the process,
    with or without XNNPACK (docs/platforms.md#32-bit-raspberry-pi-os); the reference kernels run,
    their integer operators as on x86."""
    machine = platform.machine() if machine is None else machine
    return "reference" if backend == "tflite_runtime" and machine in ARM32 else kernels


class NoInterpreterError(ImportError):
    """No TFLite interpreter package is installed."""


def _interpreter_module(backend: str):
    """The module holding ``Interpreter`` and ``OpResolverType`` for ``backend``."""
    if backend == "ai_edge_litert":
        return importlib.import_module("ai_edge_litert.interpreter")
    if backend == "tflite_runtime":
        return importlib.import_module("tflite_runtime.interpreter")
    if backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return types.SimpleNamespace(
            Interpreter=tf.lite.Interpreter, OpResolverType=tf.lite.experimental.OpResolverType
        )
    raise ValueError(f"unknown interpreter backend {backend!r}; choose from {BACKENDS}")


def make_interpreter(
    model_content: bytes,
    num_threads: int | None = None,
    backends: Sequence[str] = BACKENDS,
    kernels: str = "default",
):
    """Build an interpreter from the first importable backend.

    Args:
        model_content: the ``.tflite`` file's bytes.
        num_threads: CPU threads for the kernels (None: the backend's default).
        backends: names to try, in order.
        kernels: which kernels run the operators (:data:`KERNELS`):

            - ``"default"``: the optimised builtin kernels with the XNNPACK delegate
              (``OpResolverType.AUTO``), the fastest; their int8 rounding differs between x86
              and aarch64, and between XNNPACK versions.
            - ``"builtin"``: the optimised builtin kernels without XNNPACK
              (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``): nearly the same outputs from
              ``tflite-runtime`` 2.14 and LiteRT on one CPU; still CPU-specific.
            - ``"reference"``: TFLite's reference kernels (``BUILTIN_REF``): slower, but the same
              integer arithmetic on every CPU; float32 operators (an int8 file's stem) still
              differ in their last bits between x86 and ARM. Their int8 ``SUM`` is wrong
              (docs/platforms.md#reference-kernels); files exported since ``portable_ops`` have
              none.

            With ``tflite-runtime`` on 32-bit ARM every choice runs the reference kernels
            (:func:`kernels_for`).

    Returns:
        ``(interpreter, backend_name)``.

    Raises:
        NoInterpreterError: none of ``backends`` is installed.
        ValueError: the backend refuses the model (corrupt file, unsupported ops), or an
            unknown ``kernels``.
    """
    check_kernels(kernels)
    errors = []
    for backend in backends:
        try:
            module = _interpreter_module(backend)
        except ImportError as e:
            errors.append(f"{backend}: {e}")
            continue
        resolver = {
            "default": module.OpResolverType.AUTO,
            "builtin": module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "reference": module.OpResolverType.BUILTIN_REF,
        }[kernels_for(backend, kernels)]
        return module.Interpreter(
            model_content=model_content, num_threads=num_threads, experimental_op_resolver_type=resolver
        ), backend
    raise NoInterpreterError(
        "no TFLite interpreter found; pip install ai-edge-litert (or tflite-runtime). Tried: " + "; ".join(errors)
    )


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """Silence what the interpreter's C++ code prints on file descriptor 2 (e.g. ``INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU.``), which Python's ``sys.stderr`` cannot catch.
    Python exceptions are unaffected."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Signature:
    """One signature of an interpreter, called with little Python work per call.

    Unlike the stock ``SignatureRunner``, inputs are resized (and tensors re-allocated) only
    when their shape changes, an input may be left out of a call to keep the value it was
    last given (e.g. an image's memory during decoding), and only the outputs asked for are
    read back.

    Args:
        interpreter: a TFLite ``Interpreter``.
        key: the signature key, e.g. ``"decode_step"``.

    Raises:
        ValueError: the model has no such signature.
    """

    def __init__(self, interpreter, key: str):
        runner = interpreter.get_signature_runner(key)  # raises ValueError for an unknown key
        self.key = key
        self.runner = runner
        self.input_details = runner.get_input_details()
        self.output_details = runner.get_output_details()
        self._inputs = {name: d["index"] for name, d in self.input_details.items()}
        self._outputs = {name: d["index"] for name, d in self.output_details.items()}
        self._shapes: dict[str, tuple] = {}  # input shapes the interpreter is allocated for
        self._allocated = False
        self.invoke_seconds = 0.0  #: total time inside the interpreter's Invoke (for the benchmark)
        self._wrapper = getattr(runner, "_interpreter_wrapper", None)
        self._subgraph = getattr(runner, "_subgraph_index", None)
        if self._wrapper is None or self._subgraph is None:  # pragma: no cover - other backends
            self._wrapper = None

    def tensor_shape(self, index: int) -> list[int]:
        """The allocated shape of tensor ``index`` of this signature's subgraph.

        Raises:
            NotImplementedError: the backend does not expose it.
        """
        if self._wrapper is None:  # pragma: no cover
            raise NotImplementedError("this interpreter backend does not expose subgraph tensor shapes")
        return [int(d) for d in self._wrapper.TensorSize(index, self._subgraph)]

    @property
    def input_shapes(self) -> dict[str, list[int]]:
        """Input name → shape signature (-1 for a dynamic dimension)."""
        return {n: [int(x) for x in d.get("shape_signature", d["shape"])] for n, d in self.input_details.items()}

    @property
    def output_shapes(self) -> dict[str, list[int]]:
        """Output name → shape signature (-1 for a dynamic dimension)."""
        return {n: [int(x) for x in d.get("shape_signature", d["shape"])] for n, d in self.output_details.items()}

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Every output; see :meth:`run`."""
        return self.run(inputs)

    def run(self, inputs: dict[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Set ``inputs``, invoke, and read back ``outputs`` (default: all).

        Raises:
            ValueError: an input left out right after a shape change (it must be set again).
        """
        if self._wrapper is None:  # pragma: no cover
            t0 = time.perf_counter()
            out = self.runner(**inputs)
            self.invoke_seconds += time.perf_counter() - t0
            return out if outputs is None else {n: out[n] for n in outputs}
        w, sg = self._wrapper, self._subgraph
        resized = False
        for name, value in inputs.items():
            if self._shapes.get(name) != value.shape:
                w.ResizeInputTensor(self._inputs[name], np.array(value.shape, np.int32), False, sg)
                self._shapes[name] = value.shape
                resized = True
        if resized or not self._allocated:
            w.AllocateTensors(sg)
            self._allocated = True
            missing = set(self._inputs) - set(inputs)
            if missing:
                raise ValueError(f"signature {self.key!r}: inputs {sorted(missing)} must be given after a shape change")
        for name, value in inputs.items():
            w.SetTensor(self._inputs[name], value, sg)
        t0 = time.perf_counter()
        w.Invoke(sg)
        self.invoke_seconds += time.perf_counter() - t0
        wanted = self._outputs if outputs is None else {n: self._outputs[n] for n in outputs}
        return {name: w.GetTensor(index, sg) for name, index in wanted.items()}
