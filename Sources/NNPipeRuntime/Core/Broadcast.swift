/// Numpy-style broadcasting of several shapes onto one output shape, with adjacent dimensions
/// merged where every input broadcasts them alike, so the inner loop runs over long rows.
struct BroadcastPlan {
    let outputShape: [Int]
    let outputCount: Int
    /// Length of the innermost (merged) dimension.
    let innerCount: Int
    /// Per input: element stride along the inner dimension (0 when broadcast, else 1).
    let innerStrides: [Int]
    /// Outer (merged) dimensions and, per input, their strides.
    private let outerShape: [Int]
    private let outerStrides: [[Int]]
    var rowCount: Int { innerCount == 0 ? 0 : outputCount / innerCount }

    static func shape(_ shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var result = [Int](repeating: 1, count: rank)
        for shape in shapes {
            for (offset, size) in shape.enumerated() {
                let axis = rank - shape.count + offset
                if result[axis] == 1 {
                    result[axis] = size
                } else if size != 1 && size != result[axis] {
                    throw KernelError("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) do not broadcast")
                }
            }
        }
        try TensorSize.check(result, nil)  // Expand's shape input is the model's to choose
        return result
    }

    init(inputs: [[Int]], output: [Int]? = nil) throws {
        let output = try output ?? BroadcastPlan.shape(inputs)
        outputShape = output
        outputCount = output.reduce(1, *)
        let rank = output.count
        // Per input, per axis: is the axis broadcast (size 1 while output is not)?
        var padded: [[Int]] = []
        for shape in inputs {
            guard shape.count <= rank else { throw KernelError("shape \(shape) does not broadcast to \(output)") }
            let full = [Int](repeating: 1, count: rank - shape.count) + shape
            for axis in 0..<rank where full[axis] != output[axis] && full[axis] != 1 {
                throw KernelError("shape \(shape) does not broadcast to \(output)")
            }
            padded.append(full)
        }
        // Merge axes from the right while all inputs agree on broadcast-ness.
        var mergedSizes: [Int] = []
        var mergedKinds: [[Bool]] = []  // true = input varies along it
        for axis in 0..<rank where output[axis] != 1 {
            let kinds = padded.map { $0[axis] != 1 }
            if let last = mergedKinds.last, last == kinds {
                mergedSizes[mergedSizes.count - 1] *= output[axis]
            } else {
                mergedSizes.append(output[axis])
                mergedKinds.append(kinds)
            }
        }
        if mergedSizes.isEmpty {
            mergedSizes = [1]
            mergedKinds = [padded.map { _ in false }]
        }
        innerCount = mergedSizes.last!
        innerStrides = mergedKinds.last!.map { $0 ? 1 : 0 }
        outerShape = Array(mergedSizes.dropLast())
        var strides: [[Int]] = []
        for input in 0..<inputs.count {
            var running = mergedKinds.last![input] ? innerCount : 1
            var perAxis = [Int](repeating: 0, count: outerShape.count)
            for axis in stride(from: outerShape.count - 1, through: 0, by: -1) {
                if mergedKinds[axis][input] {
                    perAxis[axis] = running
                    running *= outerShape[axis]
                }
            }
            strides.append(perAxis)
        }
        outerStrides = strides
    }

    /// Start offset of `row` in input `input`.
    @inline(__always)
    func start(row: Int, input: Int) -> Int {
        var remainder = row
        var offset = 0
        let strides = outerStrides[input]
        for axis in stride(from: outerShape.count - 1, through: 0, by: -1) {
            let size = outerShape[axis]
            offset += (remainder % size) * strides[axis]
            remainder /= size
        }
        return offset
    }
}

/// Strides of a row-major shape.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}
