/// Size facts about a model, recorded before and after every stage.
public struct ModelStatistics: Sendable, Codable, Equatable {
    public var nodeCount: Int
    /// Elements in all initializers (dense and sparse, counting a sparse one by its dense size).
    public var parameterCount: Int
    /// Elements that are not zero.
    public var nonZeroCount: Int
    /// Bytes of initializer data by element type name ("float32": 1234).
    public var bytesByDataType: [String: Int]
    /// Node count by op type ("Conv": 3); ops outside the default domain are written domain:op.
    public var operatorHistogram: [String: Int]

    public var sparsity: Double {
        parameterCount == 0 ? 0 : 1 - Double(nonZeroCount) / Double(parameterCount)
    }
    public var totalBytes: Int { bytesByDataType.values.reduce(0, +) }

    /// - Complexity: O(total initializer bytes) to count non-zeros.
    public init(_ model: Model) {
        var parameters = 0
        var nonZeros = 0
        var bytes: [String: Int] = [:]
        var histogram: [String: Int] = [:]
        var nodes = 0
        func visit(_ graph: Graph) {
            for tensor in graph.initializers {
                parameters += tensor.elementCount
                nonZeros += Self.nonZeroCount(tensor)
                bytes[tensor.dataType.description, default: 0] += tensor.byteCount
            }
            for sparse in graph.sparseInitializers {
                parameters += sparse.shape.reduce(1, *)
                nonZeros += Self.nonZeroCount(sparse.values)
                bytes[sparse.values.dataType.description, default: 0] += sparse.values.byteCount + sparse.indices.byteCount
            }
            for node in graph.nodes {
                nodes += 1
                let key = node.domain.isEmpty ? node.opType : "\(node.domain):\(node.opType)"
                histogram[key, default: 0] += 1
                for attribute in node.attributes {
                    for subgraph in attribute.subgraphs { visit(subgraph) }
                }
            }
        }
        visit(model.graph)
        nodeCount = nodes
        parameterCount = parameters
        nonZeroCount = nonZeros
        bytesByDataType = bytes
        operatorHistogram = histogram
    }

    /// Non-zero elements; a value is zero when all its bits are zero or it is a float ±0.
    static func nonZeroCount(_ tensor: Tensor) -> Int {
        switch tensor.storage {
        case .strings(let values):
            return values.filter { !$0.isEmpty }.count
        case .bytes(let buffer):
            switch tensor.dataType {
            case .float:
                return buffer.bytes.withMemoryRebound(to: Float.self) { values in
                    values.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
                }
            case .double:
                return buffer.bytes.withMemoryRebound(to: Double.self) { values in
                    values.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
                }
            case .float16, .bfloat16:
                return buffer.bytes.withMemoryRebound(to: UInt16.self) { values in
                    values.reduce(0) { $0 + (($1 & 0x7FFF) != 0 ? 1 : 0) }
                }
            default:
                let width = tensor.dataType.bitWidth
                guard width >= 8 else {
                    // Packed sub-byte types: count non-zero fields.
                    var count = 0
                    let perByte = 8 / max(width, 1)
                    let mask = UInt8((1 << width) - 1)
                    for index in 0..<tensor.elementCount {
                        let byte = buffer.bytes[index / perByte]
                        if (byte >> UInt8((index % perByte) * width)) & mask != 0 { count += 1 }
                    }
                    return count
                }
                let stride = width / 8
                var count = 0
                var index = 0
                while index + stride <= buffer.count {
                    var any = false
                    for offset in 0..<stride where buffer.bytes[index + offset] != 0 { any = true }
                    if any { count += 1 }
                    index += stride
                }
                return count
            }
        }
    }
}
