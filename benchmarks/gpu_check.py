"""The GPU check: on a machine with an NVIDIA GPU, Assay's runtimes on ``--device cuda`` give the
CPU's predictions within a stated tolerance, and Assay's ONNX pass keeps pace with a bare
onnxruntime CUDA loop. Run it where a GPU is lent (``--device cpu`` runs the same code on the CPU,
which the test suite does so that the script keeps working):

    pip install -e '.[gpu]' torch && python benchmarks/gpu_check.py --device cuda

The model is a small CNN (three convolutions, 3x224x224 input, 10 classes) built with torch and
exported to ONNX and TorchScript; the items are random images (latency depends on shapes, not
values). Equality: max |Δscore| between the device and the CPU, per runtime (tolerance 1e-3:
cuDNN picks other convolution algorithms, TF32 included). Throughput: Assay's runtime ``predict``
on batches of 64, against the bare loop a performance engineer would write (one
``InferenceSession`` on the CUDA provider, ``session.run`` per batch), alternating, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TOLERANCE = 1e-3
SIZE = 224


def build(folder: Path) -> tuple[Path, Path]:
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1),
    ).eval()  # fmt: skip
    x = torch.zeros(2, 3, SIZE, SIZE)
    onnx, pt = folder / "cnn.onnx", folder / "cnn.pt"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, x), str(pt))
        torch.onnx.export(
            model, (x,), str(onnx), input_names=["input"], output_names=["probabilities"],
            dynamic_axes={"input": {0: "n"}, "probabilities": {0: "n"}}, opset_version=17,
            dynamo=False,
        )  # fmt: skip
    return onnx, pt


def timed(call: Callable[[np.ndarray], None], batches: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    for b in batches:
        call(b)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import onnxruntime as ort

    from assay.core.ports import ModelBatch
    from assay.core.spec import parse_model_spec
    from assay.runtimes import load_model

    spec = parse_model_spec(
        {
            "labels": [f"c{k}" for k in range(10)],
            "input": {"kind": "image", "size": [SIZE, SIZE], "color": "rgb"},
        }
    )
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 3, SIZE, SIZE), dtype=np.float32)
    batches = [x[s : s + args.batch] for s in range(0, len(x), args.batch)]
    report: dict[str, object] = {"device": args.device, "images": args.images}
    with tempfile.TemporaryDirectory() as tmp:
        onnx, pt = build(Path(tmp))
        for name, path in (("onnx", onnx), ("torchscript", pt)):
            cpu = load_model(path, spec)
            dev = load_model(path, spec, device=args.device)
            probe = ModelBatch.of(x[:256])
            gap = float(
                np.abs(np.asarray(dev.predict(probe)) - np.asarray(cpu.predict(probe))).max()
            )
            report[f"{name}_max_abs_diff_vs_cpu"] = gap
            report[f"{name}_within_tolerance"] = gap <= TOLERANCE
            cpu.close()
            if name != "onnx":
                dev.close()
                continue
            provider = (
                "CUDAExecutionProvider"
                if args.device.startswith("cuda")
                else "CPUExecutionProvider"
            )
            index = int(args.device.split(":")[1]) if ":" in args.device else 0
            options = [{"device_id": index}] if provider.startswith("CUDA") else [{}]
            bare = ort.InferenceSession(str(onnx), providers=[provider], provider_options=options)

            def bare_call(b: np.ndarray, session: ort.InferenceSession = bare) -> None:
                session.run(["probabilities"], {"input": b})

            def assay_call(b: np.ndarray, runtime: object = dev) -> None:
                runtime.predict(ModelBatch.of(b))  # type: ignore[attr-defined]

            timed(bare_call, batches), timed(assay_call, batches)  # warm-up: kernels, memory
            bare_s, ours_s = [], []
            for _ in range(args.repeats):
                bare_s.append(timed(bare_call, batches))
                ours_s.append(timed(assay_call, batches))
            report["bare_images_per_s"] = args.images / statistics.median(bare_s)
            report["assay_images_per_s"] = args.images / statistics.median(ours_s)
            report["ratio_bare_time_over_assay_time"] = statistics.median(
                bare_s
            ) / statistics.median(ours_s)
            report["providers"] = dev.signature.extra.get("providers")
            dev.close()
    report["onnxruntime"] = ort.__version__
    print(json.dumps(report, indent=2))
    for key in ("onnx", "torchscript"):
        print(
            f"{key}: max |Δ| vs CPU {report[f'{key}_max_abs_diff_vs_cpu']:.2e} (tolerance {TOLERANCE:g})"
        )
    print(
        f"ONNX on {args.device}: assay {report['assay_images_per_s']:,.0f} images/s, bare loop "
        f"{report['bare_images_per_s']:,.0f} images/s, ratio {report['ratio_bare_time_over_assay_time']:.2f}"
    )


if __name__ == "__main__":
    main()
