import Foundation
import NNPipeCommands
import NNPipeCore
import NNPipeData
import NNPipeTestKit
import Testing

/// The "done when" for other converters' CNNs: digits CNNs trained in tf_keras and converted
/// by tf2onnx (NHWC, so Transposes around the convolutions; `_unoptimized` keeps all of them), with
/// onnxruntime's outputs on the digits test split committed beside them by
/// scripts/make_tf2onnx_fixtures.py. `nnpipe eval` must score the same samples right.
@Suite("tf2onnx CNNs: nnpipe eval against onnxruntime")
struct ConvertedCNNEvaluationTests {
    static let models = [
        "plain_cnn_opset13", "plain_cnn_opset17", "plain_cnn_opset13_unoptimized",
        "branchy_cnn_opset13", "branchy_cnn_opset17", "branchy_cnn_opset13_unoptimized",
        "layout_cnn_opset13", "layout_cnn_opset17", "layout_cnn_opset13_unoptimized",
    ]

    /// One whole array of an `.npz`, through the same reader `nnpipe eval` uses.
    static func array(_ url: URL, _ key: String, as type: DataType) throws -> Tensor {
        let reader = try DatasetReader(
            source: DatasetSource(path: url, inputs: .single(key: key)),
            expectedInputs: [ExpectedInput(name: key, elementType: type, shape: nil)])
        return try #require(try reader.batch(0..<reader.sampleCount).inputs[key])
    }

    static func argmax(_ values: [Float], columns: Int) -> [Int] {
        stride(from: 0, to: values.count, by: columns).map { start in
            let row = values[start..<start + columns]
            return row.indices.max(by: { row[$0] < row[$1] })! - start
        }
    }

    @Test(arguments: models)
    func sameAccuracyAsOnnxruntime(_ name: String) throws {
        let model = TestEnvironment.fixture("tf2onnx/\(name).onnx")
        let reference = TestEnvironment.fixture("tf2onnx/\(name).npz")
        let folder = try TestEnvironment.temporaryFolder("tf2onnx-eval")
        defer { try? FileManager.default.removeItem(at: folder) }
        let saved = folder.appendingPathComponent("outputs.npz")
        // Batch 32 leaves a last batch of 2, so the symbolic batch dimension is exercised too.
        let run = CapturedRun([
            "eval", "-q", model.path, "--data", Example.data.path, "--inputs", "test/images", "--labels", "test/y",
            "--json", "--save-outputs", saved.path,
        ])
        try #require(run.status == 0, "\(run.error)")
        let report = try JSONParser.parse(run.output)
        let output = try #require(report["output"]?.stringValue)
        let accuracy = try #require(report["accuracy"]?.numberValue)

        let labels = try Self.array(reference, "labels", as: .int64).values(as: Int64.self)!.map(Int.init)
        let expected = try Self.array(reference, output, as: .float)
        let ours = try Self.array(saved, output, as: .float)
        try #require(ours.shape == expected.shape && expected.shape == [labels.count, 10], "\(ours.shape) vs \(expected.shape)")
        let ourValues = ours.values(as: Float.self)!, expectedValues = expected.values(as: Float.self)!
        let ourClasses = Self.argmax(ourValues, columns: 10), expectedClasses = Self.argmax(expectedValues, columns: 10)

        let correct = zip(expectedClasses, labels).filter { $0 == $1 }.count
        let onnxruntimeAccuracy = (Double(correct) / Double(labels.count) * 1e6).rounded() / 1e6
        #expect(accuracy == onnxruntimeAccuracy, "nnpipe \(accuracy), onnxruntime \(onnxruntimeAccuracy) (\(correct)/\(labels.count))")
        let disagreements = zip(ourClasses, expectedClasses).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(disagreements.isEmpty, "argmax differs on samples \(disagreements.prefix(10))")
        let worst = zip(ourValues, expectedValues).map { abs($0 - $1) - 1e-4 * abs($1) }.max() ?? 0
        #expect(worst <= 1e-5, "outputs differ beyond rtol 1e-4 / atol 1e-5 (excess \(worst))")
    }

    /// The data fits the model's declared input ([N, features] is symbolic), but not its weights:
    /// shape inference reports the MatMul before the first batch, with both shapes and the node.
    @Test func evalReportsAShapeMismatchInsideTheModelBeforeRunning() throws {
        let folder = try TestEnvironment.temporaryFolder("eval-shape")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("narrow.onnx")
        let model = Model(
            opsetImports: [OperatorSetID(domain: "", version: 13)],
            graph: Graph(
                nodes: [Node(name: "classifier", opType: "MatMul", inputs: ["x", "w"], outputs: ["scores"])],
                inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .symbolic("features")]))],
                outputs: [ValueInfo(name: "scores", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(10)]))],
                initializers: [Tensor(name: "w", shape: [32, 10], values: [Float](repeating: 0.1, count: 320))]))
        try Toolkit.standard.formats.write(model, to: path)
        let run = CapturedRun(["eval", "-q", path.path, "--data", Example.data.path, "--inputs", "test/x", "--labels", "test/y"])
        #expect(run.status != 0)
        #expect(run.error.hasPrefix("error: \(path.path): node 'classifier' (op 'MatMul'"), "names the model file: \(run.error)")
        #expect(run.error.contains("[32, 64] × [32, 10]"), "\(run.error)")
        // The same model as a reference is reported at its own file.
        let asReference = CapturedRun(["eval", "-q", Example.model.path, "--data", Example.data.path, "--inputs", "test/x", "--reference", path.path])
        #expect(asReference.status != 0)
        #expect(asReference.error.hasPrefix("error: \(path.path): "), "\(asReference.error)")
    }
}
