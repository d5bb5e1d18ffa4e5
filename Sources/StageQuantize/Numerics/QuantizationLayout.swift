/// How quantisation parameters map onto a tensor's elements.
public enum QuantizationLayout: Sendable, Hashable, CustomStringConvertible {
    /// One scale and zero point for the whole tensor.
    case perTensor
    /// One per index along `axis` (a weight's output channels).
    case perAxis(axis: Int)
    /// One per run of `blockSize` consecutive indices along `axis` (opset 21 blocked quantisation).
    case blocked(axis: Int, blockSize: Int)

    public var description: String {
        switch self {
        case .perTensor: "per-tensor"
        case .perAxis(let axis): "per-channel(axis \(axis))"
        case .blocked(let axis, let blockSize): "blocked(axis \(axis), block \(blockSize))"
        }
    }

    public var axis: Int? {
        switch self {
        case .perTensor: nil
        case .perAxis(let axis), .blocked(let axis, _): axis
        }
    }

    /// Shape of the scale / zero-point tensors for a tensor of `shape`.
    public func parameterShape(for shape: [Int]) -> [Int] {
        switch self {
        case .perTensor: return []
        case .perAxis(let axis): return [shape[axis]]
        case .blocked(let axis, let blockSize):
            var result = shape
            result[axis] = (shape[axis] + blockSize - 1) / blockSize
            return result
        }
    }

    /// The tensor seen as [outer, axisLength, inner] plus how many parameter slots an outer
    /// index spans: the shape every hot loop below walks.
    func geometry(for shape: [Int]) -> Geometry {
        guard let axis else {
            return Geometry(outer: 1, axisLength: 1, inner: shape.reduce(1, *), blockSize: 1, parametersPerOuter: 1, innerParameters: false)
        }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        switch self {
        case .blocked(_, let blockSize):
            let blocks = (shape[axis] + blockSize - 1) / blockSize
            return Geometry(outer: outer, axisLength: shape[axis], inner: inner, blockSize: blockSize, parametersPerOuter: blocks, innerParameters: true)
        default:
            // Per-axis parameters do not vary with the outer index: 0 parameters per outer step.
            return Geometry(outer: outer, axisLength: shape[axis], inner: inner, blockSize: 1, parametersPerOuter: 0, innerParameters: false)
        }
    }

    struct Geometry {
        var outer: Int
        var axisLength: Int
        var inner: Int
        var blockSize: Int
        var parametersPerOuter: Int
        /// Blocked parameters keep the inner dimensions (one per inner position); per-axis ones do not.
        var innerParameters: Bool

        /// Calls `body(firstParameter, parameterStride, elements)` for every contiguous run of
        /// elements: element `elements.lowerBound + k` uses parameter `firstParameter + k · parameterStride`.
        @inline(__always)
        func forEachRun(_ body: (Int, Int, Range<Int>) -> Void) {
            for outerIndex in 0..<outer {
                for axisIndex in 0..<axisLength {
                    let start = (outerIndex * axisLength + axisIndex) * inner
                    let slot = outerIndex * parametersPerOuter + axisIndex / blockSize
                    if innerParameters {
                        body(slot * inner, 1, start..<(start + inner))
                    } else {
                        body(slot, 0, start..<(start + inner))
                    }
                }
            }
        }
    }
}
