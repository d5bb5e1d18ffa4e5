import NNPipeCore

/// Data-movement kernels only move elements, so they are generic over the element's width
/// (UInt8/16/32/64 stand in for every type of that size).
protocol ElementWidthVisitor {
    associatedtype Result
    func visit<Element>(_ type: Element.Type) throws -> Result
}

func visitElementWidth<Visitor: ElementWidthVisitor>(_ type: DataType, _ visitor: Visitor) throws -> Visitor.Result {
    guard RuntimeTensor.isSupported(type) else { throw unsupportedType(type) }
    switch RuntimeTensor.elementSize(of: type) {
    case 1: return try visitor.visit(UInt8.self)
    case 2: return try visitor.visit(UInt16.self)
    case 4: return try visitor.visit(UInt32.self)
    default: return try visitor.visit(UInt64.self)
    }
}

/// Copies `count` elements of `size` bytes between raw buffers.
@inline(__always)
func copyElements(from source: RuntimeTensor, at sourceIndex: Int, to destination: RuntimeTensor, at destinationIndex: Int,
                  count: Int) {
    guard count > 0 else { return }
    let size = RuntimeTensor.elementSize(of: source.dataType)
    (destination.storage.bytes.baseAddress! + destinationIndex * size)
        .copyMemory(from: source.storage.bytes.baseAddress! + sourceIndex * size, byteCount: count * size)
}

/// Gathers `source` through per-output-element offsets computed axis by axis: output element at
/// multi-index i reads source offset sum(offsets[axis][i[axis]]), or `fill` where any offset is nil.
/// The shared engine of Transpose, Slice, Expand, Pad and Resize (nearest).
struct AxisGather: ElementWidthVisitor {
    let source: RuntimeTensor
    let outputShape: [Int]
    /// Per output axis, per index along it: the source offset contribution (nil = padding).
    let offsets: [[Int?]]
    let fill: RuntimeTensor?

    func visit<Element>(_ type: Element.Type) throws -> RuntimeTensor {
        let result = RuntimeTensor(dataType: source.dataType, shape: outputShape)
        let rank = outputShape.count
        let count = result.elementCount
        guard count > 0 else { return result }
        let fillValue: Element? = fill.map { tensor in tensor.withUnsafeBuffer(of: Element.self) { $0[0] } }
        source.withUnsafeBuffer(of: Element.self) { input in
            result.withUnsafeMutableBuffer(of: Element.self) { output in
                if rank == 0 {
                    output[0] = input[0]
                    return
                }
                let inner = outputShape[rank - 1]
                let innerOffsets = offsets[rank - 1]
                var index = [Int](repeating: 0, count: rank)
                var position = 0
                while position < count {
                    var base = 0
                    var padded = false
                    for axis in 0..<(rank - 1) {
                        if let offset = offsets[axis][index[axis]] { base += offset } else { padded = true }
                    }
                    for column in 0..<inner {
                        if !padded, let offset = innerOffsets[column] {
                            output[position + column] = input[base + offset]
                        } else {
                            output[position + column] = fillValue!
                        }
                    }
                    position += inner
                    var axis = rank - 2
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < outputShape[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
        return result
    }

    static func run(_ source: RuntimeTensor, outputShape: [Int], offsets: [[Int?]], fill: RuntimeTensor? = nil) throws -> RuntimeTensor {
        try visitElementWidth(source.dataType, AxisGather(source: source, outputShape: outputShape, offsets: offsets, fill: fill))
    }
}
