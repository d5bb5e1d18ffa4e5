import NNPipeCore
@testable import StagePrune

/// Small graphs with deterministic pseudo-random weights, written in Swift for the tests.
struct ModelBuilder {
    var graph = Graph(name: "test")
    var generator = SeededGenerator(seed: 7)

    init(input: String = "input", shape: [Int]) {
        graph.inputs = [ValueInfo(name: input, type: .tensor(elementType: .float, shape: shape.map { .fixed($0) }))]
    }

    mutating func randomValues(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in generator.nextFloat() * scale }
    }

    mutating func addInitializer(_ name: String, shape: [Int], values: [Float]? = nil) {
        let data = values ?? randomValues(shape.reduce(1, *))
        graph.initializers.append(Tensor(name: name, shape: shape, values: data))
    }

    @discardableResult
    mutating func conv(_ name: String, _ input: String, inputChannels: Int, outputChannels: Int, kernel: Int = 3, group: Int = 1, bias: Bool = true, stride: Int = 1) -> String {
        let weight = "\(name).weight"
        // He-style scale keeps activations near 1, so float tolerances mean the same in every test.
        let fanIn = inputChannels / group * kernel * kernel
        addInitializer(weight, shape: [outputChannels, inputChannels / group, kernel, kernel],
                       values: randomValues(outputChannels * fanIn, scale: (3 / Float(fanIn)).squareRoot()))
        var inputs = [input, weight]
        if bias {
            addInitializer("\(name).bias", shape: [outputChannels])
            inputs.append("\(name).bias")
        }
        let pad = Int64(kernel / 2)
        graph.nodes.append(Node(name: name, opType: "Conv", inputs: inputs, outputs: ["\(name).out"], attributes: [
            .ints("kernel_shape", [Int64(kernel), Int64(kernel)]), .ints("pads", [pad, pad, pad, pad]),
            .ints("strides", [Int64(stride), Int64(stride)]), .int("group", Int64(group)),
        ]))
        return "\(name).out"
    }

    @discardableResult
    mutating func batchNorm(_ name: String, _ input: String, channels: Int) -> String {
        addInitializer("\(name).scale", shape: [channels], values: randomValues(channels).map { abs($0) + 0.1 })
        addInitializer("\(name).shift", shape: [channels])
        addInitializer("\(name).mean", shape: [channels], values: randomValues(channels, scale: 0.1))
        addInitializer("\(name).variance", shape: [channels], values: randomValues(channels).map { abs($0) + 0.5 })
        graph.nodes.append(Node(name: name, opType: "BatchNormalization",
                                inputs: [input, "\(name).scale", "\(name).shift", "\(name).mean", "\(name).variance"],
                                outputs: ["\(name).out"], attributes: [.float("epsilon", 1e-5)]))
        return "\(name).out"
    }

    @discardableResult
    mutating func node(_ opType: String, _ name: String, _ inputs: [String], outputs: [String]? = nil, attributes: [Attribute] = []) -> String {
        let outputNames = outputs ?? ["\(name).out"]
        graph.nodes.append(Node(name: name, opType: opType, inputs: inputs, outputs: outputNames, attributes: attributes))
        return outputNames[0]
    }

    @discardableResult
    mutating func gemm(_ name: String, _ input: String, inputFeatures: Int, outputFeatures: Int, transposed: Bool = true) -> String {
        addInitializer("\(name).weight", shape: transposed ? [outputFeatures, inputFeatures] : [inputFeatures, outputFeatures],
                       values: randomValues(inputFeatures * outputFeatures, scale: (3 / Float(inputFeatures)).squareRoot()))
        addInitializer("\(name).bias", shape: [outputFeatures])
        graph.nodes.append(Node(name: name, opType: "Gemm", inputs: [input, "\(name).weight", "\(name).bias"],
                                outputs: ["\(name).out"], attributes: [.int("transB", transposed ? 1 : 0)]))
        return "\(name).out"
    }

    @discardableResult
    mutating func matMul(_ name: String, _ input: String, inputFeatures: Int, outputFeatures: Int) -> String {
        addInitializer("\(name).weight", shape: [inputFeatures, outputFeatures],
                       values: randomValues(inputFeatures * outputFeatures, scale: (3 / Float(inputFeatures)).squareRoot()))
        graph.nodes.append(Node(name: name, opType: "MatMul", inputs: [input, "\(name).weight"], outputs: ["\(name).out"]))
        return "\(name).out"
    }

    func model(output: String, shape: [Int]? = nil) -> Model {
        var graph = graph
        graph.outputs = [ValueInfo(name: output, type: .tensor(elementType: .float, shape: shape?.map { .fixed($0) }))]
        return Model(graph: graph)
    }
}

/// xorshift64*: reproducible weights without Foundation's random sources.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
    /// Uniform in [-1, 1).
    mutating func nextFloat() -> Float {
        Float(next() >> 40) / Float(1 << 24) * 2 - 1
    }
}

extension Model {
    func weights(_ name: String) -> [Float] {
        graph.initializer(named: name)?.floatValues() ?? []
    }
}

func zeroCount(_ values: [Float]) -> Int { values.filter { $0 == 0 }.count }

/// A stage made from manifest-like options, as the decoder would hand them over.
func makeStage(_ options: [String: JSONValue]) throws -> PruneStage {
    try PruneStage(options: StageOptions(values: options, path: "stages[0]"))
}

func runStage(_ options: [String: JSONValue], on model: inout Model) throws -> StageResult {
    let stage = try makeStage(options)
    return try stage.run(&model, context: testContext)
}

import Foundation
import Logging
import NNPipeONNX

/// With the ONNX format registered, so the report's file and gzip sizes are measured.
let testContext = StageContext(
    manifestDirectory: URL(fileURLWithPath: "/tmp"), outputDirectory: URL(fileURLWithPath: "/tmp"),
    datasets: [:], formats: FormatRegistry([ONNXFormat()]), logger: Logger(label: "test"), progress: .silent,
    stagePath: "stages[0]")

extension StageResult {
    func detail(_ key: String) -> JSONValue? { details.first { $0.key == key }?.value }
}
