/// Moves mostly-zero weights into `sparse_initializer`s (values + int64 flat indices).
///
/// A sparse entry costs 12 bytes per non-zero float32 (4 for the value, 8 for its index)
/// against 4 bytes per element dense, so it pays off below one third density; denser
/// tensors stay as they are. onnxruntime densifies sparse initializers when it loads a model.
public enum SparseInitializers {
    /// The model with every qualifying initializer made sparse, and how many were.
    /// - Complexity: O(total initializer bytes).
    public static func convert(_ model: Model, maximumDensity: Double = 1.0 / 3.0) -> (model: Model, converted: Int) {
        var result = model
        var kept: [Tensor] = []
        var converted = 0
        for tensor in model.graph.initializers {
            guard let sparse = sparse(tensor, maximumDensity: maximumDensity) else {
                kept.append(tensor)
                continue
            }
            result.graph.sparseInitializers.append(sparse)
            converted += 1
        }
        result.graph.initializers = kept
        return (result, converted)
    }

    /// The dense tensor a sparse initializer stands for (flat or coordinate indices, as ONNX allows).
    public static func dense(_ sparse: SparseTensor) throws -> Tensor {
        let values = sparse.values
        guard case .bytes(let valueBuffer) = values.storage, values.dataType.bitWidth >= 8,
            let indices = sparse.indices.integerValues()
        else {
            throw NNPipeError(.unsupported, "sparse initializer '\(sparse.name)' of \(values.dataType) cannot be made dense")
        }
        let width = values.dataType.bitWidth / 8
        let count = sparse.shape.reduce(1, *)
        let nonZeros = values.elementCount
        let rank = sparse.shape.count
        // Indices are [nnz] flat positions or [nnz, rank] coordinates.
        let coordinates = sparse.indices.shape.count == 2 && rank > 1
        guard indices.count == (coordinates ? nonZeros * rank : nonZeros) else {
            throw NNPipeError(.invalidModel, "sparse initializer '\(sparse.name)': \(indices.count) indices for \(nonZeros) values")
        }
        let buffer = try TensorBuffer(byteCount: count * width) { destination in
            for element in 0..<nonZeros {
                var flat = 0
                if coordinates {
                    for axis in 0..<rank { flat = flat * sparse.shape[axis] + Int(indices[element * rank + axis]) }
                } else {
                    flat = Int(indices[element])
                }
                guard flat >= 0 && flat < count else {
                    throw NNPipeError(.invalidModel, "sparse initializer '\(sparse.name)': index \(flat) outside its \(count) elements")
                }
                UnsafeMutableRawBufferPointer(rebasing: destination[(flat * width)..<(flat * width + width)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: valueBuffer.bytes[(element * width)..<(element * width + width)]))
            }
        }
        return Tensor(name: sparse.name, dataType: values.dataType, shape: sparse.shape, storage: .bytes(buffer))
    }

    static func sparse(_ tensor: Tensor, maximumDensity: Double) -> SparseTensor? {
        guard case .bytes(let buffer) = tensor.storage, tensor.dataType.bitWidth >= 8,
            tensor.dataType != .bool, tensor.elementCount >= 16, !tensor.shape.isEmpty
        else { return nil }
        let width = tensor.dataType.bitWidth / 8
        var indices: [Int64] = []
        buffer.bytes.withUnsafeBytes { bytes in
            for element in 0..<tensor.elementCount {
                let start = element * width
                var isZero = true
                for offset in 0..<width where bytes[start + offset] != 0 {
                    isZero = false
                    break
                }
                // A float -0.0 has only its sign bit set: it is a zero that must stay -0.0, so keep it as a value.
                if !isZero { indices.append(Int64(element)) }
            }
        }
        guard Double(indices.count) < maximumDensity * Double(tensor.elementCount) else { return nil }
        let values = TensorBuffer(byteCount: indices.count * width) { destination in
            for (position, index) in indices.enumerated() {
                let source = UnsafeRawBufferPointer(rebasing: buffer.bytes[(Int(index) * width)..<(Int(index) * width + width)])
                UnsafeMutableRawBufferPointer(rebasing: destination[(position * width)..<(position * width + width)]).copyMemory(from: source)
            }
        }
        return SparseTensor(
            values: Tensor(name: tensor.name, dataType: tensor.dataType, shape: [indices.count], storage: .bytes(values)),
            indices: Tensor(name: "", shape: [indices.count], values: indices),
            shape: tensor.shape)
    }
}
