"""Find the operator whose kernel departs: run one photo through a ``.tflite`` file with two kernel
sets, keep every intermediate tensor, and name each operator whose inputs are bit-identical in
both runs but whose output is not (docs/platforms.md#reference-kernels).

The encoder runs on the photo; the decoder runs ``--steps`` greedy steps from the *same* state
and memory under both kernel sets (the first kernel set's encoder outputs and tokens), so that
a decoder operator is judged on identical inputs. XNNPACK (the ``default`` kernels) replaces
operators by one delegate node and keeps no intermediate tensors: compare ``builtin`` (the same
optimised kernels without it) against ``reference``.

Usage: python scripts/compare_kernels.py MODEL PHOTO [--kernels builtin reference] [--steps 2] [--all]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from edgecap.runtime import Captioner
from edgecap.runtime import metadata as md
from edgecap.runtime.ops import _schema

RESOLVERS = {"builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}


def operators_of(model, subgraph: int):
    """``(index, builtin name, input tensor ids, output tensor ids)`` of a subgraph, in order."""
    s = _schema()
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.Subgraphs(subgraph)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        yield i, name, [int(x) for x in op.InputsAsNumpy() if x >= 0], [int(x) for x in op.OutputsAsNumpy()]


BACKEND = "ai_edge_litert"


def run(flatbuffer: bytes, kernels: str, key: str, inputs: dict) -> tuple[dict, int, dict, dict]:
    """One signature call keeping every tensor: ``(outputs, subgraph, tensor details, values)``."""
    from edgecap.runtime.interpreter import _interpreter_module

    module = _interpreter_module(BACKEND)
    Interpreter, OpResolverType = module.Interpreter, module.OpResolverType
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging"
        it = Interpreter(
            model_content=flatbuffer,
            experimental_op_resolver_type=getattr(OpResolverType, RESOLVERS[kernels]),
            experimental_preserve_all_tensors=True,
            num_threads=1,
        )
    runner = it.get_signature_runner(key)
    out = runner(**inputs)
    sg = runner._subgraph_index
    if BACKEND != "tflite_runtime":
        details = {d["index"]: d for d in it.get_tensor_details(sg)}
    else:  # tflite-runtime 2.14 lists the tensors of subgraph 0 only: read them all by index
        graph = _schema().Model.GetRootAs(flatbuffer, 0).Subgraphs(sg)
        details = {
            i: {"index": i, "quantization": _quantization(graph.Tensors(i))} for i in range(graph.TensorsLength())
        }
    values = {}
    for i in details:
        try:
            values[i] = it.get_tensor(i, sg).copy()
        except ValueError:  # a tensor without data (e.g. an optional input)
            pass
    return out, sg, details, values


def _quantization(tensor) -> tuple[float, int]:
    q = tensor.Quantization()
    if q is None or not q.ScaleLength():
        return 0.0, 0
    return float(q.Scale(0)), int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0


def compare(
    model, flatbuffer: bytes, kernels: tuple[str, str], key: str, inputs: dict, show_all: bool
) -> tuple[dict, dict]:
    """Print the operators that depart (or every differing one); return the first run's outputs."""
    (out_a, sg, details, a), (out_b, _, _, b) = (run(flatbuffer, k, key, inputs) for k in kernels)
    for i, name, ins, outs in operators_of(model, sg):
        same_inputs = all(np.array_equal(a[j], b[j]) for j in ins if j in a and j in b)
        for o in outs:
            if o not in a or o not in b:
                continue
            diff = np.abs(a[o].astype(np.float64) - b[o].astype(np.float64))
            departs = same_inputs and diff.max() > 0
            if departs or (show_all and diff.max() > 0):
                scale = details[o]["quantization"][0]
                unit = f"steps of {scale:.3g}" if scale else "float"
                print(
                    f"{key} op {i:3d} {name:18s} {str(a[o].dtype):7s} {str(a[o].shape):15s} "
                    f"max |Δ| {diff.max():8.3g} ({unit}), {np.mean(diff > 0):6.1%} of values differ"
                    + ("  <- DEPARTS on identical inputs" if departs else "")
                )
    return out_a, out_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("photo")
    parser.add_argument("--kernels", nargs=2, default=("builtin", "reference"), choices=sorted(RESOLVERS))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="every differing operator, not only those that depart")
    parser.add_argument("--backend", default="ai_edge_litert", choices=["ai_edge_litert", "tflite_runtime"])
    args = parser.parse_args()
    global BACKEND
    BACKEND = args.backend
    data = open(args.model, "rb").read()
    flatbuffer = md.flatbuffer(data)
    model = _schema().Model.GetRootAs(flatbuffer, 0)
    captioner = Captioner.from_file(args.model)
    encoded, _ = compare(
        model, flatbuffer, args.kernels, "encode", {"image": captioner.preprocess(args.photo)}, args.all
    )
    c = captioner.contract
    memory = {n: encoded[n] for n in c.memory_names}
    state = {n: encoded[n] for n in c.state_names}
    token = captioner.metadata.start_id
    for _ in range(args.steps):
        out, other = compare(
            model,
            flatbuffer,
            args.kernels,
            "decode_step",
            {**memory, **state, "tokens": np.array([token], np.int32)},
            args.all,
        )
        gap = np.abs(out["log_probs"] - other["log_probs"]).max()
        print(f"decode_step from the same state: log-probabilities differ by up to {gap:.4g} nats")
        state = {n: out[n] for n in c.state_names}
        token = int(np.argmax(out["log_probs"][0]))


if __name__ == "__main__":
    main()
