"""Checks the exports of Benchmarks/prune/run.sh and prints the Done-when figures as markdown."""
import gzip, json, os, sys

os.environ.setdefault("KERAS_BACKEND", "numpy")
import h5py
import numpy as np
import onnx
import onnxruntime as ort

work, digits = sys.argv[1], sys.argv[2]
with h5py.File(digits, "r") as handle:
    data = {"x": handle["test/x"][:], "images": handle["test/images"][:]}
    labels = handle["test/y"][:]


def stage_entry(name):
    report = json.load(open(os.path.join(work, name, "report.json")))
    for stage in report["stages"]:
        if stage.get("stage", stage.get("kind")) == "prune":
            return report, stage
    raise SystemExit(f"{name}: no prune stage in report.json")


def nnpipe_outputs(path):
    saved = np.load(path.rsplit(".", 1)[0] + "." + path.rsplit(".", 1)[1] + ".nnpipe.npz")
    return {key: saved[key] for key in saved.files}


def closest(reference, outputs):
    """nnpipe's output array that matches the reference's shape (probabilities), max |diff|."""
    best = None
    for value in outputs.values():
        if value.shape == reference.shape and value.dtype.kind == "f":
            diff = float(np.max(np.abs(value.astype(np.float64) - reference)))
            best = diff if best is None else min(best, diff)
    return best


rows = []
for name, inputs in (("mlp-90", "x"), ("cnn-90", "images"), ("residual-l1", "images"), ("residual-taylor", "images")):
    report, stage = stage_entry(name)
    details = stage.get("details", stage)
    folder = os.path.join(work, name)
    dense_path, pruned_path = os.path.join(folder, "dense.onnx"), os.path.join(folder, "pruned.onnx")
    onnx.checker.check_model(onnx.load(pruned_path), full_check=True)
    dense_bytes, pruned_bytes = open(dense_path, "rb").read(), open(pruned_path, "rb").read()
    dense_gzip, pruned_gzip = len(gzip.compress(dense_bytes, 9)), len(gzip.compress(pruned_bytes, 9))
    session = ort.InferenceSession(pruned_path, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    ort_outputs = session.run(None, {feed: data[inputs]})
    probabilities = next(o for o in ort_outputs if o.dtype == np.float32 and o.ndim == 2)
    row = {
        "case": name,
        "summary": stage.get("summary"),
        "achieved_sparsity": details.get("achieved_sparsity"),
        "macs": (details["macs_before"], details["macs_after"]),
        "parameters": (details["parameters_before"], details["parameters_after"]),
        "report_onnx_bytes": (details.get("onnx_bytes_before"), details.get("onnx_bytes_after")),
        "report_gzip": (details.get("gzip_bytes_before"), details.get("gzip_bytes_after")),
        "latency_ms": (details.get("latency_ms_before"), details.get("latency_ms_after")),
        "exported_onnx_bytes": (len(dense_bytes), len(pruned_bytes)),
        "exported_gzip": (dense_gzip, pruned_gzip),
        "gzip_ratio": pruned_gzip / dense_gzip,
        "ort_accuracy": float(np.mean(np.argmax(probabilities, 1) == labels)),
        "ort_vs_nnpipe_max_abs": closest(probabilities, nnpipe_outputs(pruned_path)),
        "equivalence_max_difference": details.get("equivalence_max_difference"),
    }
    h5_path = os.path.join(folder, "pruned.h5")
    if os.path.exists(h5_path):
        import keras
        model = keras.models.load_model(h5_path, compile=False)
        predicted = np.asarray(model.predict(data[inputs], verbose=0))
        row["keras_layers"] = sorted({layer.__class__.__name__ for layer in model.layers})
        row["keras_vs_ort_max_abs"] = float(np.max(np.abs(predicted - probabilities)))
        row["keras_vs_nnpipe_max_abs"] = closest(predicted.astype(np.float64), nnpipe_outputs(h5_path))
        row["keras_accuracy"] = float(np.mean(np.argmax(predicted, 1) == labels))
    row["accuracy_input"] = report.get("input_evaluation", {}).get("accuracy")
    row["accuracy_after_prune"] = stage.get("evaluation", {}).get("accuracy")
    row["warnings"] = stage.get("warnings", [])
    rows.append(row)
print(json.dumps(rows, indent=1, default=str))
