import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Sparse initializers, functions, subgraphs, IR 3 inputs, domains, metadata.
@Suite struct ONNXStructureTests {
    func read(_ relative: String) throws -> Model {
        try ONNXFormat().read(from: ONNXFixtures.url(relative))
    }

    @Test func sparseInitializer() throws {
        let model = try read("structures/sparse_initializer.onnx")
        let sparse = try #require(model.graph.sparseInitializers.first)
        #expect(sparse.shape == [3, 4])
        #expect(sparse.values.values(as: Float.self) == [1.5, -2, 4])
        #expect(sparse.indices.values(as: Int64.self) == [1, 6, 11])
    }

    @Test func localFunctionAndMetadata() throws {
        let model = try read("structures/local_function.onnx")
        let function = try #require(model.functions.first)
        #expect(function.name == "ScaledRelu" && function.domain == "custom")
        #expect(function.nodes.map(\.opType) == ["Relu", "Constant", "Mul"])
        #expect(function.attributeNames == ["unused"])
        #expect(model.metadata.contains(MetadataEntry(key: "author", value: "nnpipe tests")))
        #expect(model.docString == "model doc" && model.graph.docString == "graph doc")
        #expect(model.graph.inputs.first?.type == .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(4)]))
    }

    @Test func initializersListedAsInputsAndAiOnnxDomain() throws {
        let model = try read("structures/ir3_initializer_inputs.onnx")
        #expect(model.irVersion == 3)
        #expect(model.graph.inputs.map(\.name) == ["x", "w"])
        #expect(model.graph.runtimeInputs.map(\.name) == ["x"])
        #expect(model.graph.nodes.first?.domain == "", "ai.onnx is normalised to the default domain")
    }

    @Test("subgraph bodies are kept", arguments: [
        ("node/test_if/model.onnx", "If", 2),
        ("node/test_loop11/model.onnx", "Loop", 1),
        ("node/test_scan9_sum/model.onnx", "Scan", 1),
    ])
    func subgraphs(path: String, opType: String, bodies: Int) throws {
        let model = try read(path)
        let node = try #require(model.graph.nodes.first { $0.opType == opType })
        let subgraphs = node.attributes.flatMap(\.subgraphs)
        #expect(subgraphs.count == bodies)
        #expect(subgraphs.allSatisfy { !$0.nodes.isEmpty })
    }

    /// Some exporters write dim_value -1 for an unknown size; onnxruntime reads any negative size
    /// as unknown, and so does the reader (a -5 used to reach the runtime and fail as a negative shape).
    @Test func negativeDimensionsReadAsUnknown() throws {
        let folder = try TestEnvironment.temporaryFolder("negative-dimension")
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("negative.onnx")
        let model = Model(opsetImports: [OperatorSetID(domain: "", version: 17)],
                          graph: Graph(name: "negative", nodes: [Node(opType: "Relu", inputs: ["x"], outputs: ["y"])],
                                       inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.fixed(-1), .fixed(-5), .fixed(3)]))],
                                       outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: [.fixed(-1), .fixed(3)]))]))
        try ONNXFormat().write(model, to: url)
        let read = try ONNXFormat().read(from: url)
        #expect(read.graph.inputs[0].type == .tensor(elementType: .float, shape: [.unknown, .unknown, .fixed(3)]))
        #expect(read.graph.outputs[0].type == .tensor(elementType: .float, shape: [.unknown, .fixed(3)]))
        try GraphCheck.validate(read)
    }

    @Test func sequenceAndOptionalTypes() throws {
        let model = try read("node/test_if_opt/model.onnx")
        let output = try #require(model.graph.outputs.first)
        guard case .optional(.sequence(.tensor(.float, _))) = output.type else {
            Issue.record("unexpected type \(output.type)")
            return
        }
    }
}

/// training_info is carried through as the exact bytes that were read.
@Suite struct ONNXOpaquePartsTests {
    @Test func trainingInfoIsKeptByteForByte() throws {
        let url = ONNXFixtures.url("structures/training_info.onnx")
        let model = try ONNXFormat().read(from: url)
        try #require(model.opaqueTrainingInfo.count == 1)
        try withTemporaryFolder { folder in
            let output = folder.appendingPathComponent("copy.onnx")
            try ONNXFormat().write(model, to: output)
            let copy = try ONNXFormat().read(from: output)
            #expect(copy.opaqueTrainingInfo == model.opaqueTrainingInfo)
        }
    }
}
