import NNPipeCore

/// A structured sparsity pattern on a weight seen as a matrix whose rows run along the output
/// axis and whose columns run along the input (reduction) axis; other axes (kernel positions)
/// are independent. "1x4" is one output row by four consecutive inputs, "4x1" four outputs by
/// one input, "2:4" keeps at most two non-zeros in every four consecutive inputs.
public enum SparsityPattern: Sendable, Hashable, CustomStringConvertible {
    case block(rows: Int, columns: Int)
    case nOfM(kept: Int, groupSize: Int)

    public static let names = ["1x4", "4x1", "2:4", "4:8"]

    public init?(_ text: String) {
        switch text {
        case "1x4": self = .block(rows: 1, columns: 4)
        case "4x1": self = .block(rows: 4, columns: 1)
        case "2:4": self = .nOfM(kept: 2, groupSize: 4)
        case "4:8": self = .nOfM(kept: 4, groupSize: 8)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .block(let rows, let columns): "\(rows)x\(columns)"
        case .nOfM(let kept, let groupSize): "\(kept):\(groupSize)"
        }
    }

    /// Extent of one group along the output axis and along the input axis.
    var extent: (rows: Int, columns: Int) {
        switch self {
        case .block(let rows, let columns): (rows, columns)
        case .nOfM(_, let groupSize): (1, groupSize)
        }
    }

    /// The sparsity an N:M pattern fixes (nil for blocks, which take any sparsity).
    public var impliedSparsity: Double? {
        if case .nOfM(let kept, let groupSize) = self { return 1 - Double(kept) / Double(groupSize) }
        return nil
    }
}

/// Which group of a pattern every element of a weight belongs to.
struct PatternLayout {
    /// Group number per flat element index.
    var groupOfElement: [Int]
    var groupCount: Int
    var groupSize: Int

    /// The output axis paired with `inputAxis`: the other axis of a matrix, else axis 0 (Conv filters).
    static func outputAxis(shape: [Int], inputAxis: Int) -> Int {
        shape.count == 2 ? 1 - inputAxis : (inputAxis == 0 ? 1 : 0)
    }

    /// Nil with a reason when the pattern does not tile the shape.
    static func make(shape: [Int], pattern: SparsityPattern, inputAxis: Int) -> Result<PatternLayout, PatternMismatch> {
        guard shape.count >= 2, inputAxis >= 0, inputAxis < shape.count else {
            return .failure(PatternMismatch(message: "needs a weight of rank 2 or more with input axis in range, got shape \(shape) and axis \(inputAxis)"))
        }
        let rowAxis = outputAxis(shape: shape, inputAxis: inputAxis)
        let (rows, columns) = pattern.extent
        if shape[inputAxis] % columns != 0 {
            return .failure(PatternMismatch(message: "pattern \(pattern) needs the input axis (\(inputAxis)) to be a multiple of \(columns), but the weight's shape is \(shape)"))
        }
        if shape[rowAxis] % rows != 0 {
            return .failure(PatternMismatch(message: "pattern \(pattern) needs the output axis (\(rowAxis)) to be a multiple of \(rows), but the weight's shape is \(shape)"))
        }
        var groupShape = shape
        groupShape[inputAxis] /= columns
        groupShape[rowAxis] /= rows
        let count = shape.reduce(1, *)
        var groups = [Int](repeating: 0, count: count)
        var coordinates = [Int](repeating: 0, count: shape.count)
        for element in 0..<count {
            var group = 0
            for axis in 0..<shape.count {
                let divisor = axis == inputAxis ? columns : (axis == rowAxis ? rows : 1)
                group = group * groupShape[axis] + coordinates[axis] / divisor
            }
            groups[element] = group
            // Advance the row-major coordinates.
            var axis = shape.count - 1
            while axis >= 0 {
                coordinates[axis] += 1
                if coordinates[axis] < shape[axis] { break }
                coordinates[axis] = 0
                axis -= 1
            }
        }
        return .success(PatternLayout(groupOfElement: groups, groupCount: groupShape.reduce(1, *), groupSize: rows * columns))
    }

    /// Sum of |w| per group (the block score; all groups have the same size).
    func groupScores(_ magnitudes: [Float]) -> [Float] {
        var scores = [Float](repeating: 0, count: groupCount)
        for (element, group) in groupOfElement.enumerated() { scores[group] += magnitudes[element] }
        return scores
    }

    /// Keep mask for an N:M pattern: the smallest (groupSize − kept) of each group pruned,
    /// ties by lower flat index.
    func nOfMKeepMask(_ magnitudes: [Float], kept: Int) -> [Bool] {
        var members = [[Int]](repeating: [], count: groupCount)
        for (element, group) in groupOfElement.enumerated() { members[group].append(element) }
        var keep = [Bool](repeating: true, count: magnitudes.count)
        for group in members {
            let scores = group.map { magnitudes[$0] }
            for position in MagnitudeRanking.lowest(scores, count: group.count - kept) {
                keep[group[position]] = false
            }
        }
        return keep
    }

    /// Expands pruned groups to an element keep mask.
    func keepMask(prunedGroups: [Int]) -> [Bool] {
        var prunedGroup = [Bool](repeating: false, count: groupCount)
        for group in prunedGroups { prunedGroup[group] = true }
        return groupOfElement.map { !prunedGroup[$0] }
    }
}

struct PatternMismatch: Error {
    var message: String
}

/// What `PatternValidator.check` found on one weight.
public struct PatternReport: Sendable, Equatable {
    public var groupCount: Int
    /// Groups whose every element is zero.
    public var zeroGroupCount: Int
    /// Groups that break the pattern: partly zero blocks, or N:M groups with more than N non-zeros.
    public var violatingGroupCount: Int
    /// Zero elements over all elements.
    public var sparsity: Double

    public var holds: Bool { violatingGroupCount == 0 }
}

/// Checks that a weight, e.g. one read back from an exported file, follows a sparsity pattern.
public enum PatternValidator {
    /// - Parameters:
    ///   - axis: the input (reduction) axis the pattern runs along: 1 for Conv weights,
    ///     0 for MatMul and Gemm with transB = 0, 1 for Gemm with transB = 1.
    /// - Throws: `NNPipeError(.invalidModel)` when the pattern does not tile the shape or the
    ///   tensor is not floating point.
    public static func check(tensor: Tensor, pattern: SparsityPattern, axis: Int) throws -> PatternReport {
        let layout: PatternLayout
        switch PatternLayout.make(shape: tensor.shape, pattern: pattern, inputAxis: axis) {
        case .success(let made): layout = made
        case .failure(let mismatch): throw NNPipeError(.invalidModel, "weight '\(tensor.name)': \(mismatch.message)")
        }
        guard let values = tensor.floatValues(), tensor.dataType.isFloatingPoint else {
            throw NNPipeError(.invalidModel, "weight '\(tensor.name)' is \(tensor.dataType), not floating point")
        }
        var nonZeros = [Int](repeating: 0, count: layout.groupCount)
        var zeros = 0
        for (element, group) in layout.groupOfElement.enumerated() {
            if values[element] != 0 { nonZeros[group] += 1 } else { zeros += 1 }
        }
        var violating = 0
        switch pattern {
        case .block:
            violating = nonZeros.filter { $0 != 0 && $0 != layout.groupSize }.count
        case .nOfM(let kept, _):
            violating = nonZeros.filter { $0 > kept }.count
        }
        return PatternReport(
            groupCount: layout.groupCount, zeroGroupCount: nonZeros.filter { $0 == 0 }.count,
            violatingGroupCount: violating,
            sparsity: values.isEmpty ? 0 : Double(zeros) / Double(values.count))
    }
}
