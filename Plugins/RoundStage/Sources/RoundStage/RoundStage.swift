import NNPipeCore

/// Rounds float32 weights to `bits` mantissa bits (round to nearest even). Fewer distinct
/// bit patterns make the file compress much better with the accuracy of a bf16-like format,
/// while the model stays plain float32 that every runtime reads.
public struct RoundStage: Stage {
    public static let kind = "round"
    public static let summary = "Round float32 weights to fewer mantissa bits so the model compresses better"
    public static let options: [OptionSpec] = [
        OptionSpec("bits", .integer, default: .number(7), minimum: 1, maximum: 22, help: "mantissa bits to keep (float32 has 23)"),
        OptionSpec("op_types", .stringList, default: .array([.string("Conv"), .string("Gemm"), .string("MatMul")]), help: "operators whose weights are rounded"),
    ]

    let bits: Int
    let opTypes: Set<String>

    public init(options: StageOptions) throws {
        bits = options.integer("bits") ?? 7
        opTypes = Set(options.strings("op_types") ?? [])
        if opTypes.isEmpty { throw options.error("op_types", "must name at least one operator") }
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let weights = Set(model.graph.nodes.filter { opTypes.contains($0.opType) && $0.inputs.count > 1 }.map { $0.inputs[1] })
        var changed = 0
        var tensors = 0
        for index in model.graph.initializers.indices where weights.contains(model.graph.initializers[index].name) {
            let tensor = model.graph.initializers[index]
            guard let values: [Float] = tensor.values() else { continue }
            let rounded = values.map { Self.round($0, bits: bits) }
            changed += zip(values, rounded).filter { $0.bitPattern != $1.bitPattern }.count
            model.graph.initializers[index] = Tensor(name: tensor.name, shape: tensor.shape, values: rounded)
            tensors += 1
        }
        guard tensors > 0 else {
            throw NNPipeError(.stageFailed, "no float32 \(opTypes.sorted().joined(separator: "/")) weights to round", path: context.stagePath)
        }
        return StageResult(
            summary: "rounded \(changed) weights in \(tensors) tensors to \(bits) mantissa bits",
            details: [("tensors", .number(Double(tensors))), ("changed", .number(Double(changed)))])
    }

    /// Round-to-nearest-even on the dropped mantissa bits; infinities and NaN pass through.
    static func round(_ value: Float, bits: Int) -> Float {
        guard value.isFinite else { return value }
        let drop = UInt32(23 - bits)
        let pattern = value.bitPattern
        let half = UInt32(1) << (drop - 1)
        let remainder = pattern & ((1 << drop) - 1)
        var kept = pattern >> drop
        if remainder > half || (remainder == half && kept & 1 == 1) { kept += 1 }
        return Float(bitPattern: kept << drop)
    }
}
