import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Fixture models under Tests/Fixtures/onnx (made by scripts/make_onnx_fixtures.py).
enum ONNXFixtures {
    static let root = TestEnvironment.fixture("onnx")

    /// Folders of models that must read, round-trip and pass onnx.checker + onnxruntime.
    static let modelFolders = ["node", "light", "simple", "pytorch-converted", "pytorch-operator", "sklearn", "structures", "dtypes"]

    /// Every `.onnx` file under `folder`, sorted, as paths relative to the fixture root.
    static func models(in folder: String) -> [String] {
        let base = root.appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".onnx") }.sorted().map { "\(folder)/\($0)" }
    }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
}

/// Runs `body` with a fresh temporary folder that is removed afterwards.
func withTemporaryFolder<Result>(_ body: (URL) throws -> Result) throws -> Result {
    let folder = try TestEnvironment.temporaryFolder("nnpipe-onnx")
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
}

/// The bytes of a tensor, for byte-identity checks.
func tensorBytes(_ tensor: Tensor) -> [UInt8] {
    switch tensor.storage {
    case .bytes(let buffer): Array(buffer.bytes)
    case .strings(let values): Array(values.joined(separator: [0x0A]))
    }
}

/// Asserts two models hold the same tensors (byte-identical), nodes, opsets, inputs and outputs.
func expectSameContent(_ original: Model, _ copy: Model, _ label: String) {
    #expect(copy.irVersion == original.irVersion, "\(label): ir_version")
    #expect(copy.opsetImports == original.opsetImports, "\(label): opset imports")
    #expect(copy.metadata == original.metadata, "\(label): metadata")
    #expect(copy.docString == original.docString, "\(label): doc string")
    #expect(copy.opaqueTrainingInfo == original.opaqueTrainingInfo, "\(label): training info")
    #expect(copy.functions.count == original.functions.count, "\(label): functions")
    expectSameGraph(original.graph, copy.graph, label)
}

func expectSameGraph(_ original: Graph, _ copy: Graph, _ label: String) {
    #expect(copy.name == original.name, "\(label): graph name")
    #expect(copy.inputs == original.inputs, "\(label): inputs")
    #expect(copy.outputs == original.outputs, "\(label): outputs")
    #expect(copy.valueInfo == original.valueInfo, "\(label): value_info")
    #expect(copy.initializers.count == original.initializers.count, "\(label): initializer count")
    for (before, after) in zip(original.initializers, copy.initializers) {
        #expect(after.name == before.name && after.dataType == before.dataType && after.shape == before.shape,
                "\(label): initializer '\(before.name)' header")
        #expect(tensorBytes(after) == tensorBytes(before), "\(label): initializer '\(before.name)' bytes")
    }
    #expect(copy.sparseInitializers.count == original.sparseInitializers.count, "\(label): sparse initializers")
    #expect(copy.nodes.count == original.nodes.count, "\(label): node count")
    for (before, after) in zip(original.nodes, copy.nodes) {
        #expect(after.opType == before.opType && after.domain == before.domain && after.inputs == before.inputs
                && after.outputs == before.outputs && after.name == before.name, "\(label): node \(before.displayName)")
        #expect(after.attributes.map(\.name) == before.attributes.map(\.name), "\(label): attributes of \(before.displayName)")
        for (attributeBefore, attributeAfter) in zip(before.attributes, after.attributes) {
            #expect(attributeAfter.kind == attributeBefore.kind, "\(label): attribute kind \(attributeBefore.name)")
            if let tensorBefore = attributeBefore.tensorValue, let tensorAfter = attributeAfter.tensorValue {
                #expect(tensorBytes(tensorAfter) == tensorBytes(tensorBefore), "\(label): attribute tensor \(attributeBefore.name)")
            }
            for (graphBefore, graphAfter) in zip(attributeBefore.subgraphs, attributeAfter.subgraphs) {
                expectSameGraph(graphBefore, graphAfter, "\(label) / \(before.displayName).\(attributeBefore.name)")
            }
        }
    }
}

/// Runs Python interop `code`, or skips visibly when the interop environment is missing outside CI.
/// Returns nil when skipped.
func runInteropPython(_ code: String, _ arguments: [String]) throws -> ProcessResult? {
    do { return try ProcessRunner.python(code, arguments) } catch let missing as InteropUnavailable {
        if TestEnvironment.isCI { throw missing }
        print("SKIPPED interop check: \(missing)")
        return nil
    }
}
