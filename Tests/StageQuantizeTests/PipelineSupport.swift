import Foundation
import Logging
import NNPipeCore
import NNPipeData
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import StageCalibrate
import StageQuantize
import Testing

/// Shared steps of the quantisation tests: load a fixture, run stages, run the runtime, ask onnxruntime.
enum QuantizeFixtures {
    static func model(_ name: String) throws -> Model {
        try ONNXFormat().read(from: TestEnvironment.fixture("quantize/\(name).onnx"))
    }

    static func inputs(_ name: String) -> URL { TestEnvironment.fixture("quantize/\(name)_inputs.npy") }

    static func context(datasetFor name: String, limit: Int? = nil) -> StageContext {
        let dataset = DatasetSpecification(name: "calib", path: inputs(name), limit: limit, batchSize: 32)
        return StageContext(
            manifestDirectory: TestEnvironment.repositoryRoot, outputDirectory: FileManager.default.temporaryDirectory,
            datasets: ["calib": dataset], formats: FormatRegistry([ONNXFormat()]), logger: Logger(label: "test"),
            progress: .silent, stagePath: "stages[1]")
    }

    static func options(_ values: [String: JSONValue], path: String = "stages[1]") -> StageOptions {
        StageOptions(values: values, path: path)
    }

    static func calibrate(_ model: inout Model, fixture: String, method: String = "minmax") throws -> StageResult {
        let stage = try CalibrateStage(options: options(["dataset": .string("calib"), "method": .string(method)], path: "stages[0]"))
        return try stage.run(&model, context: context(datasetFor: fixture))
    }

    static func quantize(_ model: inout Model, _ values: [String: JSONValue]) throws -> StageResult {
        try QuantizeStage(options: options(values)).run(&model, context: context(datasetFor: "cnn"))
    }

    /// The first output of `model` on the fixture inputs, through nnpipe's runtime; `fused` runs QDQ
    /// groups as integer kernels the way onnxruntime's default session does, unfused as written.
    static func runtimeOutput(_ model: Model, fixture: String, fused: Bool = true) throws -> [Float] {
        let reader = try DatasetReader(
            source: DatasetSource(path: inputs(fixture)), expectedInputs: model.graph.runtimeInputs.compactMap(ExpectedInput.init))
        let batch = try reader.batch(0..<reader.sampleCount)
        let plan = try ExecutionPlan(model: model, batchSize: reader.sampleCount, fuseQuantizedGroups: fused)
        let feeds = try batch.inputs.mapValues { try RuntimeTensor($0) }
        let outputs = try plan.run(inputs: feeds)
        return try #require(outputs[plan.outputNames[0]]).floats
    }

    /// Writes `model`, checks it with onnx.checker and runs it in onnxruntime; nil when interop is skipped.
    static func onnxruntimeOutput(_ model: Model, fixture: String) throws -> (output: [Float], unoptimized: [Float], reference: [Float], facts: [String: Any])? {
        let folder = try TestEnvironment.temporaryFolder("quantize-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("model.onnx")
        try ONNXFormat().write(model, to: file)
        let outputFile = folder.appendingPathComponent("output.f32")
        guard let result = try runFixtureScript(["check", file.path, inputs(fixture).path, outputFile.path]) else { return nil }
        try #require(result.status == 0, "onnx.checker / onnxruntime rejected the model: \(result.standardError.suffix(1500))")
        if let keep = ProcessInfo.processInfo.environment["NNPIPE_QUANTIZE_KEEP"] {
            try? FileManager.default.copyItem(at: file, to: URL(fileURLWithPath: keep).appendingPathComponent("\(fixture)-\(UUID().uuidString.prefix(8)).onnx"))
        }
        let facts = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any] ?? [:]
        let unoptimized = URL(fileURLWithPath: outputFile.path + ".unoptimized")
        let reference = URL(fileURLWithPath: outputFile.path + ".reference")
        return (try readArray(outputFile, as: Float.self), try readArray(unoptimized, as: Float.self), try readArray(reference, as: Float.self), facts)
    }

    /// Row-wise argmax over `classes` columns.
    static func predictions(_ values: [Float], classes: Int) -> [Int] {
        stride(from: 0, to: values.count, by: classes).map { start in
            (start..<(start + classes)).max { values[$0] < values[$1] }! - start
        }
    }

    static func disagreements(_ left: [Int], _ right: [Int]) -> Int {
        zip(left, right).filter { $0 != $1 }.count + abs(left.count - right.count)
    }

    static func agreement(_ left: [Int], _ right: [Int]) -> Double {
        Double(zip(left, right).filter { $0 == $1 }.count) / Double(max(left.count, 1))
    }
}
