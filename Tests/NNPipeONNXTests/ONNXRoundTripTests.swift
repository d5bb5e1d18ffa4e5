import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Reads and writes every fixture model, checks tensors are byte-identical in Swift, then checks
/// the written files with onnx.checker (full_check) and onnxruntime in one Python process per folder.
@Suite struct ONNXRoundTripTests {
    /// Folders, with the node tests split in two so both halves run in parallel.
    static let batches = ONNXFixtures.modelFolders.flatMap { $0 == "node" ? ["node:0", "node:1"] : [$0] }

    @Test("fixture models round-trip and pass onnx.checker + onnxruntime", arguments: batches)
    func roundTrip(batch: String) throws {
        let parts = batch.split(separator: ":")
        let folder = String(parts[0])
        var models = ONNXFixtures.models(in: folder)
        if parts.count == 2, let half = Int(parts[1]) {
            models = models.enumerated().filter { $0.offset % 2 == half }.map(\.element)
        }
        try #require(!models.isEmpty, "no fixtures in \(folder): run scripts/make_onnx_fixtures.py")
        try withTemporaryFolder { output in
            let clock = ContinuousClock()
            let start = clock.now
            var pairs: [String] = []
            for relative in models {
                let source = ONNXFixtures.url(relative)
                let model: Model
                do { model = try ONNXFormat().read(from: source) } catch {
                    Issue.record("\(relative): \(error)")
                    continue
                }
                let destination = output.appendingPathComponent(relative)
                try ONNXFormat().write(model, to: destination)
                let copy = try ONNXFormat().read(from: destination)
                expectSameContent(model, copy, relative)
                pairs.append("\(source.path)\t\(destination.path)")
            }
            let list = output.appendingPathComponent("pairs.tsv")
            try pairs.joined(separator: "\n").write(to: list, atomically: true, encoding: .utf8)
            let swiftDone = clock.now
            guard let result = try runInteropPython(Self.interopCheck, [list.path]) else { return }
            let timing = "Swift read+write \(swiftDone - start), Python checks \(clock.now - swiftDone)"
            #expect(result.status == 0, "\(batch): interop check failed:\n\(result.standardOutput)\n\(result.standardError)")
            print("\(batch): \(models.count) models, \(result.standardOutput.split(separator: "\n").last ?? "") (\(timing))")
        }
    }

    /// For each (original, copy): initializers equal as arrays and bytes; whatever of checker,
    /// session creation and a run on test_data_set_0 the original passes, the copy must pass too.
    static let interopCheck = #"""
import os, sys, warnings
import numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper
warnings.filterwarnings("ignore")
ort.set_default_logger_severity(4)
pairs = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
failures, checked, ran = [], 0, 0

def tensors(model):
    return {t.name: (t.data_type, list(t.dims), numpy_helper.to_array(t, base_dir=os.path.dirname(model[1])).tobytes() if t.data_type != 8 else list(t.string_data)) for t in model[0].graph.initializer}

def check(path):
    try:
        onnx.checker.check_model(path, full_check=True)
        return None
    except Exception as error:
        return str(error).splitlines()[0][:200]

def session(path):
    try:
        options = ort.SessionOptions(); options.intra_op_num_threads = 1
        # No constant folding: the light/ models would materialise hundreds of MB of weights.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]), None
    except Exception as error:
        return None, str(error).splitlines()[0][:200]

def run(sess, folder):
    data = os.path.join(folder, "test_data_set_0")
    if sess is None or not os.path.isdir(data):
        return None
    feeds = {}
    for index, info in enumerate(sess.get_inputs()):
        path = os.path.join(data, f"input_{index}.pb")
        if not os.path.exists(path):
            return None
        try:  # sequence and optional inputs are other messages: those cases are not run
            tensor = onnx.TensorProto(); tensor.ParseFromString(open(path, "rb").read())
            feeds[info.name] = numpy_helper.to_array(tensor)
        except Exception:
            return None
    try:
        return sess.run(None, feeds)
    except Exception:
        return None

def references(folder, count):
    outputs = []
    for index in range(count):
        path = os.path.join(folder, "test_data_set_0", f"output_{index}.pb")
        try:
            tensor = onnx.TensorProto(); tensor.ParseFromString(open(path, "rb").read())
            outputs.append(numpy_helper.to_array(tensor))
        except Exception:
            return None
    return outputs

def close(x, y):
    try:
        return all(a.shape == np.asarray(b).shape and np.allclose(a, b, rtol=1e-3, atol=1e-5, equal_nan=True) for a, b in zip(x, y))
    except Exception:
        return False

def same(x, y):
    if isinstance(x, (list, tuple)) or isinstance(y, (list, tuple)):
        return isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(same, x, y))
    if x is None or y is None:
        return x is None and y is None
    x, y = np.asarray(x), np.asarray(y)
    return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")

for original, copy in pairs:
    a, b = onnx.load(original, load_external_data=False), onnx.load(copy, load_external_data=False)
    if tensors((a, original)) != tensors((b, copy)):
        failures.append(f"{original}: initializers differ after round trip")
    if len(a.graph.node) != len(b.graph.node) or [n.op_type for n in a.graph.node] != [n.op_type for n in b.graph.node]:
        failures.append(f"{original}: nodes differ after round trip")
    # The original is only examined when the copy fails, so a clean run costs one check per model.
    copy_error = check(copy)
    if copy_error is not None and check(original) is None:
        failures.append(f"{copy}: onnx.checker: {copy_error}")
    checked += copy_error is None
    copy_session, copy_session_error = session(copy)
    if copy_session is None:
        if session(original)[0] is not None:
            failures.append(f"{copy}: onnxruntime: {copy_session_error}")
        continue
    actual = run(copy_session, os.path.dirname(original))
    if actual is None:
        continue
    reference = references(os.path.dirname(original), len(actual))
    if reference is not None and close(reference, actual):
        ran += 1
        continue
    expected = run(session(original)[0], os.path.dirname(original))
    if expected is not None:
        if not same(expected, actual):
            failures.append(f"{copy}: onnxruntime outputs differ from the original's")
        ran += 1
for failure in failures:
    print(failure)
print(f"{len(pairs)} round-tripped, {checked} pass onnx.checker(full_check), {ran} run in onnxruntime matching the reference or the original, {len(failures)} failures")
sys.exit(1 if failures else 0)
"""#
}
