import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Reads and writes every fixture model, checks tensors are byte-identical in Swift, then checks
/// the written files with onnx.checker (full_check) and onnxruntime in one Python process per folder.
@Suite struct ONNXRoundTripTests {
    @Test("fixture models round-trip and pass onnx.checker + onnxruntime", arguments: ONNXFixtures.modelFolders)
    func roundTrip(folder: String) throws {
        let models = ONNXFixtures.models(in: folder)
        try #require(!models.isEmpty, "no fixtures in \(folder): run scripts/make_onnx_fixtures.py")
        try withTemporaryFolder { output in
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
            guard let result = try runInteropPython(Self.interopCheck, [list.path]) else { return }
            #expect(result.status == 0, "\(folder): interop check failed:\n\(result.standardOutput)\n\(result.standardError)")
            print("\(folder): \(models.count) models, \(result.standardOutput.split(separator: "\n").last ?? "")")
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
        tensor = onnx.TensorProto(); tensor.ParseFromString(open(path, "rb").read())
        feeds[info.name] = numpy_helper.to_array(tensor)
    try:
        return sess.run(None, feeds)
    except Exception:
        return None

for original, copy in pairs:
    a, b = onnx.load(original, load_external_data=False), onnx.load(copy, load_external_data=False)
    if tensors((a, original)) != tensors((b, copy)):
        failures.append(f"{original}: initializers differ after round trip")
    if len(a.graph.node) != len(b.graph.node) or [n.op_type for n in a.graph.node] != [n.op_type for n in b.graph.node]:
        failures.append(f"{original}: nodes differ after round trip")
    original_error, copy_error = check(original), check(copy)
    if original_error is None and copy_error is not None:
        failures.append(f"{copy}: onnx.checker: {copy_error}")
    checked += copy_error is None
    original_session, _ = session(original)
    copy_session, copy_session_error = session(copy)
    if original_session is not None and copy_session is None:
        failures.append(f"{copy}: onnxruntime: {copy_session_error}")
    expected = run(original_session, os.path.dirname(original))
    if expected is not None:
        actual = run(copy_session, os.path.dirname(original))
        same = actual is not None and len(actual) == len(expected) and all(
            np.array_equal(np.asarray(x), np.asarray(y), equal_nan=np.asarray(x).dtype.kind in "fc") for x, y in zip(expected, actual))
        if not same:
            failures.append(f"{copy}: onnxruntime outputs differ from the original's")
        ran += 1
for failure in failures:
    print(failure)
print(f"{len(pairs)} round-tripped, {checked} pass onnx.checker(full_check), {ran} run in onnxruntime with identical outputs, {len(failures)} failures")
sys.exit(1 if failures else 0)
"""#
}
