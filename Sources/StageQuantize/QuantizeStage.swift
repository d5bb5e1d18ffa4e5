import NNPipeCore

/// Post-training quantisation of weights (and, after a calibrate stage, activations) into
/// QDQ or QOperator ONNX graphs with onnxruntime's numerics.
public struct QuantizeStage: Stage {
    public static let kind = "quantize"
    public static let summary = "Quantise weights (int8/uint8/int4/uint4/int16/fp16/bf16) and activations into QDQ or QOperator form"
    public static let options: [OptionSpec] = [
        OptionSpec("weights", .choice(["int8", "uint8", "int4", "uint4", "int16", "fp16", "bf16"]), default: .string("int8"), help: "weight type"),
        OptionSpec("activations", .choice(["uint8", "int8", "uint16", "int16"]), allowsNull: true, help: "activation type; absent or null quantises weights only"),
        OptionSpec("mode", .choice(["static", "dynamic", "weight_only"]), help: "static (needs a calibrate stage before), dynamic (activations at run time), weight_only; inferred from 'activations' when absent"),
        OptionSpec("per_channel", .boolean, default: .bool(false), help: "one scale per output channel (Conv axis 0, ConvTranspose 1, MatMul 1, Gemm 0 if transB else 1)"),
        OptionSpec("symmetric", .boolean, allowsNull: true, help: "symmetric weights (zero point 0, or 128 for uint8); default true for signed weight types; also makes signed activations symmetric"),
        OptionSpec("reduce_range", .boolean, default: .bool(false), help: "7-bit weight range (uint8 [0,127], int8 [-64,64]) for CPUs without VNNI"),
        OptionSpec("block_size", .integer, minimum: 2, help: "weight_only: one scale per block of this many weights along the input axis (opset 21)"),
        OptionSpec("format", .choice(["qdq", "qoperator"]), default: .string("qdq"), help: "QuantizeLinear/DequantizeLinear pairs, or QLinearConv/QLinearMatMul/ConvInteger/MatMulInteger"),
        OptionSpec("exclude", .stringList, help: "node names to leave in float"),
        OptionSpec("op_types", .stringList, help: "op types to quantise (default Conv, ConvTranspose, Gemm, MatMul)"),
        OptionSpec("keep_float_below_sqnr", .number, allowsNull: true, help: "leave a layer in float when its weight SQNR is below this many dB"),
    ]

    public let configuration: QuantizeConfiguration

    public init(options: StageOptions) throws {
        do {
            configuration = try QuantizeConfiguration(
                weights: QuantizeConfiguration.WeightFormat(options.string("weights") ?? "int8") ?? .integer(.int8),
                activations: options.string("activations").flatMap(QuantizedType.init(rawValue:)),
                mode: options.string("mode").flatMap(QuantizeConfiguration.Mode.init(rawValue:)),
                perChannel: options.bool("per_channel") ?? false,
                symmetric: options.bool("symmetric"),
                reduceRange: options.bool("reduce_range") ?? false,
                blockSize: options.integer("block_size"),
                format: options.string("format").flatMap(QuantizeConfiguration.Format.init(rawValue:)) ?? .qdq,
                excludedNodes: Set(options.strings("exclude") ?? []),
                operatorTypes: Set(options.strings("op_types") ?? QuantizeConfiguration.defaultOperatorTypes),
                keepFloatBelowSignalToNoise: options.double("keep_float_below_sqnr"))
        } catch let error as NNPipeError {
            throw options.error(error.path ?? "mode", error.message)
        }
        if let unknown = options.strings("op_types")?.first(where: { !QuantizableOperator.supported.contains($0) }) {
            throw options.error("op_types", "'\(unknown)' cannot be quantised by nnpipe (supported: \(QuantizableOperator.supported.joined(separator: ", ")))")
        }
    }

    /// Static quantisation reads ranges a calibrate stage recorded, so one must come first.
    public static func checkPlacement(_ invocation: StageInvocation, in pipeline: [StageInvocation]) -> [NNPipeError] {
        let options = invocation.options
        let mode = options.string("mode") ?? (options.has("activations") ? "static" : "weight_only")
        guard mode == "static" else { return [] }
        let calibrated = pipeline.contains { $0.kind == "calibrate" && $0.index < invocation.index }
        if calibrated { return [] }
        return [NNPipeError(
            .invalidManifest,
            "static quantisation of activations needs a calibrate stage before it (add {\"stage\": \"calibrate\", \"dataset\": ...} earlier, or drop 'activations' for weights only)",
            path: invocation.path)]
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let before = ModelStatistics(model)
        var rewriter = QuantizationRewriter(configuration: configuration, stagePath: context.stagePath)
        let layers = try rewriter.rewrite(&model)
        let after = ModelStatistics(model)
        return QuantizationReport(configuration: configuration, layers: layers, bytesBefore: before.totalBytes, bytesAfter: after.totalBytes, notes: rewriter.notes).result()
    }
}
