import Foundation
import NNPipeCore

/// Byte-level edits on weight tensors that work for every byte-aligned element type,
/// so float16/bfloat16/float64 weights are pruned without a round trip through Float.
enum TensorEditing {
    /// |w| per element as Float; nil for types that are not floating point or not byte aligned.
    static func magnitudes(of tensor: Tensor) -> [Float]? {
        guard tensor.dataType.isFloatingPoint, tensor.dataType.bitWidth >= 16,
            let values = tensor.floatValues()
        else { return nil }
        return values.map { abs($0) }
    }

    /// A copy of `tensor` with the elements where `keep` is false set to +0.
    /// - Complexity: O(element count).
    static func zeroing(_ tensor: Tensor, keep: [Bool]) -> Tensor {
        precondition(keep.count == tensor.elementCount, "mask size does not match the tensor")
        guard let source = tensor.buffer else { return tensor }
        let width = tensor.dataType.bitWidth / 8
        precondition(width >= 1 && source.count == width * keep.count, "tensor is not byte aligned")
        let buffer = TensorBuffer(byteCount: source.count) { destination in
            destination.copyMemory(from: source.bytes)
            keep.withUnsafeBufferPointer { keep in
                for index in 0..<keep.count where !keep[index] {
                    for offset in 0..<width { destination[index * width + offset] = 0 }
                }
            }
        }
        var result = tensor
        result.storage = .bytes(buffer)
        return result
    }

    /// A copy of `tensor` keeping only `indices` (ascending) along `axis`.
    /// - Complexity: O(element count).
    static func keeping(_ tensor: Tensor, axis: Int, indices: [Int]) -> Tensor {
        precondition(axis >= 0 && axis < tensor.shape.count, "axis out of range")
        guard let source = tensor.buffer else { return tensor }
        let width = tensor.dataType.bitWidth / 8
        precondition(width >= 1, "tensor is not byte aligned")
        let outer = tensor.shape[..<axis].reduce(1, *)
        let inner = tensor.shape[(axis + 1)...].reduce(1, *) * width
        let length = tensor.shape[axis]
        var shape = tensor.shape
        shape[axis] = indices.count
        let buffer = TensorBuffer(byteCount: outer * indices.count * inner) { destination in
            guard inner > 0, let from = source.bytes.baseAddress, let to = destination.baseAddress else { return }
            var written = 0
            for block in 0..<outer {
                for index in indices {
                    precondition(index >= 0 && index < length, "channel index out of range")
                    (to + written).copyMemory(from: from + (block * length + index) * inner, byteCount: inner)
                    written += inner
                }
            }
        }
        var result = tensor
        result.shape = shape
        result.storage = .bytes(buffer)
        return result
    }

    /// A copy of `tensor` with the slices `indices` along `axis` set to zero.
    static func zeroing(_ tensor: Tensor, axis: Int, indices: Set<Int>) -> Tensor {
        guard !indices.isEmpty else { return tensor }
        let outer = tensor.shape[..<axis].reduce(1, *)
        let inner = tensor.shape[(axis + 1)...].reduce(1, *)
        let length = tensor.shape[axis]
        var keep = [Bool](repeating: true, count: tensor.elementCount)
        for block in 0..<outer {
            for index in indices where index < length {
                let start = (block * length + index) * inner
                for offset in 0..<inner { keep[start + offset] = false }
            }
        }
        return zeroing(tensor, keep: keep)
    }

    /// The uint8 keep mask (1 = kept) stored in `Model.annotations.pruningMasks`.
    static func maskTensor(name: String, shape: [Int], keep: [Bool]) -> Tensor {
        Tensor(name: name, shape: shape, values: keep.map { UInt8($0 ? 1 : 0) })
    }

    /// Non-zero elements (a float ±0 counts as zero).
    static func nonZeroCount(_ tensor: Tensor) -> Int {
        guard let values = tensor.floatValues() else { return tensor.elementCount }
        return values.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    }
}

/// `*` wildcard matching for `exclude` patterns ("conv*", "*/fc", "block?": no `?`, only `*`).
enum WildcardPattern {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 { return pattern == text }
        var remainder = Substring(text)
        guard remainder.hasPrefix(parts[0]) else { return false }
        remainder = remainder.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = remainder.range(of: part) else { return false }
            remainder = remainder[range.upperBound...]
        }
        let last = parts[parts.count - 1]
        return remainder.count >= last.count && remainder.hasSuffix(last)
    }
}
