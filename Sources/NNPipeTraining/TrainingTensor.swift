import NNPipeCore

/// A dense float32 tensor for training: shape plus row-major values.
///
/// Training works on float32 only; integer constants a node reads (Reshape's shape, Pad's pads)
/// travel as floats too, which is exact for every value below 2^24.
public struct TrainingTensor: Sendable, Equatable, CustomStringConvertible {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        self.shape = shape
        self.values = values
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        values = Array(repeating: 0, count: shape.reduce(1, *))
    }

    /// The float view of an IR tensor of any numeric type; nil for strings and unsupported types.
    public init?(_ tensor: Tensor) {
        guard let values = tensor.floatValues(), values.count == tensor.elementCount else { return nil }
        self.init(shape: tensor.shape, values: values)
    }

    public var elementCount: Int { values.count }
    public var rank: Int { shape.count }
    public var description: String { "float32\(shape)" }

    /// Values as integers (shape arguments, axes, pads).
    public var integers: [Int] { values.map { Int($0) } }

    /// The IR tensor holding these values as float32.
    public func tensor(named name: String) -> Tensor {
        Tensor(name: name, shape: shape, values: values)
    }

    /// The same values under another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> TrainingTensor {
        TrainingTensor(shape: newShape, values: values)
    }

    /// Adds `other` elementwise (same shape), e.g. to accumulate gradients from two consumers.
    public mutating func add(_ other: TrainingTensor) {
        precondition(other.values.count == values.count, "adding \(other.shape) to \(shape)")
        values.withUnsafeMutableBufferPointer { target in
            other.values.withUnsafeBufferPointer { source in
                for index in 0..<target.count { target[index] += source[index] }
            }
        }
    }
}

/// Row-major strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = Array(repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}

/// A negative ONNX axis counts from the end.
func normalizedAxis(_ axis: Int, rank: Int) throws -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < max(rank, 1) else {
        throw NNPipeError(.invalidModel, "axis \(axis) is outside a tensor of rank \(rank)")
    }
    return resolved
}
