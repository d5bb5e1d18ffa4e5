import NNPipeCore

/// The shape rules with arithmetic of their own: products, windows, and the layout ops whose
/// result depends on a small constant input (Reshape targets, Slice bounds, Pad amounts).
extension ShapeInference.Rule {
    func matrixProduct(_ left: Int, _ right: Int) throws -> [Int]? {
        guard let leftShape = shape(left), let rightShape = shape(right) else { return nil }
        guard !leftShape.isEmpty, !rightShape.isEmpty else { throw fail("MatMul needs operands of rank 1 or more, got \(leftShape) × \(rightShape)") }
        let a = leftShape.count == 1 ? [1] + leftShape : leftShape
        let b = rightShape.count == 1 ? rightShape + [1] : rightShape
        guard a[a.count - 1] == b[b.count - 2] else {
            throw fail("inner dimensions differ: \(leftShape) × \(rightShape) (\(a[a.count - 1]) vs \(b[b.count - 2]))")
        }
        var output = try broadcast([Array(a.dropLast(2)), Array(b.dropLast(2))]) + [a[a.count - 2], b[b.count - 1]]
        if rightShape.count == 1 { output.removeLast() }
        if leftShape.count == 1 { output.remove(at: output.count - (rightShape.count == 1 ? 1 : 2)) }
        return output
    }

    func gemm() throws -> [Int]? {
        guard let a = shape(0), let b = shape(1) else { return nil }
        guard a.count == 2, b.count == 2 else { throw fail("Gemm needs 2-D operands, got \(a) and \(b)") }
        let transposeA = attributeInt("transA", 0) == 1, transposeB = attributeInt("transB", 0) == 1
        let (rows, inner) = transposeA ? (a[1], a[0]) : (a[0], a[1])
        let (innerB, columns) = transposeB ? (b[1], b[0]) : (b[0], b[1])
        guard inner == innerB else {
            throw fail("inner dimensions differ: A \(a)\(transposeA ? "ᵀ" : "") × B \(b)\(transposeB ? "ᵀ" : "") (\(inner) vs \(innerB))")
        }
        if has(2), let bias = shape(2), try broadcast([[rows, columns], bias]) != [rows, columns] {
            throw fail("C \(bias) does not broadcast to the product's shape \([rows, columns])")
        }
        return [rows, columns]
    }

    func windowAttributes() throws -> SpatialGeometry.Attributes {
        var spec = NodeSpec(node: node, opset: opset)
        return try SpatialGeometry.Attributes(&spec, ceilMode: attributeInt("ceil_mode", 0) == 1)
    }

    func convolution(data: Int, weights: Int, bias: Int?) throws -> [Int]? {
        guard let input = shape(data), let kernel = shape(weights) else { return nil }
        guard input.count >= 3, kernel.count == input.count else {
            throw fail("input \(input) and weights \(kernel) need the same rank, 3 or more")
        }
        let groups = attributeInt("group", 1)
        guard groups > 0, input[1] == kernel[1] * groups, kernel[0] % groups == 0 else {
            throw fail("input \(input) has \(input[1]) channels but weights \(kernel) with group \(groups) expect \(kernel[1] * groups)")
        }
        if let bias, has(bias), let biasShape = shape(bias), biasShape != [kernel[0]] {
            throw fail("bias \(biasShape) does not match the \(kernel[0]) output channels of weights \(kernel)")
        }
        let kernelShape = attributeInts("kernel_shape") ?? Array(kernel.dropFirst(2))
        return [input[0], kernel[0]] + (try window(Array(input.dropFirst(2)), kernelShape: kernelShape, what: "input \(input), weights \(kernel)"))
    }

    func transposedConvolution() throws -> [Int]? {
        guard let input = shape(0), let kernel = shape(1) else { return nil }
        guard input.count >= 3, kernel.count == input.count else {
            throw fail("input \(input) and weights \(kernel) need the same rank, 3 or more")
        }
        let groups = attributeInt("group", 1)
        guard groups > 0, input[1] == kernel[0] else {
            throw fail("input \(input) has \(input[1]) channels but weights \(kernel) expect \(kernel[0])")
        }
        let spatial = Array(input.dropFirst(2))
        let kernelShape = attributeInts("kernel_shape") ?? Array(kernel.dropFirst(2))
        var outputShape = attributeInts("output_shape")
        if let given = outputShape, given.count == spatial.count + 2 { outputShape = Array(given.dropFirst(2)) }
        do {
            let geometry = try SpatialGeometry(transposedInput: spatial, kernelShape: kernelShape, attributes: try windowAttributes(),
                                               outputPadding: attributeInts("output_padding"), outputShape: outputShape)
            return [input[0], kernel[1] * groups] + geometry.outputSpatialShape
        } catch let error as KernelError {
            throw fail("\(error.message) (input \(input), weights \(kernel))")
        }
    }

    func pool() throws -> [Int]? {
        guard let input = shape(0) else { return nil }
        guard input.count >= 3 else { throw fail("input \(input) needs rank 3 or more") }
        guard let kernelShape = attributeInts("kernel_shape") else { throw fail("kernel_shape is required") }
        return Array(input.prefix(2)) + (try window(Array(input.dropFirst(2)), kernelShape: kernelShape, what: "input \(input)", pooling: true))
    }

    private func window(_ spatial: [Int], kernelShape: [Int], what: String, pooling: Bool = false) throws -> [Int] {
        do {
            return try SpatialGeometry(inputShape: spatial, kernelShape: kernelShape, attributes: try windowAttributes(), pooling: pooling).outputSpatialShape
        } catch let error as KernelError {
            throw NNPipeError(error.code == .unsupported ? .unsupported : .invalidModel,
                              fail("\(error.message) (\(what), kernel \(kernelShape))").message)
        }
    }

    func reshape() throws -> [Int]? {
        guard let input = shape(0), let target = opset < 5 ? attributeInts("shape") : integers(1) else { return nil }
        let allowZero = attributeInt("allowzero", 0) == 1
        var output = target
        var inferred: Int?
        for (index, size) in target.enumerated() {
            if size == 0 && !allowZero {
                guard index < input.count else { throw fail("target \(target) copies dimension \(index), which input \(input) lacks") }
                output[index] = input[index]
            } else if size == -1 {
                guard inferred == nil else { throw fail("target \(target) has more than one -1") }
                inferred = index
            } else if size < 0 {
                throw fail("target \(target) has a negative size")
            }
        }
        let total = input.reduce(1, *)
        if let inferred {
            let known = TensorSize.elements(output.enumerated().filter { $0.offset != inferred }.map(\.element)) ?? 0
            guard known > 0, total % known == 0 else {
                throw fail("cannot reshape \(input) (\(total) elements) to \(target)")
            }
            output[inferred] = total / known
        }
        guard let count = TensorSize.elements(output), count == total else {
            let elements = TensorSize.elements(output).map(String.init) ?? "too many"
            throw fail("cannot reshape \(input) (\(total) elements) to \(target) (\(elements) elements)")
        }
        return output
    }

    func axesInput(_ index: Int, attributeBefore: Int) -> (known: Bool, axes: [Int]?) {
        if opset < attributeBefore { return (true, attributeInts("axes")) }
        guard has(index) else { return (true, nil) }
        return (integers(index) != nil, integers(index))
    }

    func squeeze() throws -> [Int]? {
        guard let input = shape(0) else { return nil }
        let (known, axes) = axesInput(1, attributeBefore: 13)
        guard known else { return nil }
        guard let axes, !axes.isEmpty else { return input.filter { $0 != 1 } }
        let normalized = try Set(axes.map { try axis($0, rank: input.count) })
        for index in normalized where input[index] != 1 {
            throw fail("cannot squeeze axis \(index) of \(input): its size is \(input[index]), not 1")
        }
        return input.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
    }

    func unsqueeze() throws -> [Int]? {
        guard let input = shape(0) else { return nil }
        let (known, axes) = axesInput(1, attributeBefore: 13)
        guard known, let axes else { return nil }
        let rank = input.count + axes.count
        let normalized = try Set(axes.map { try axis($0, rank: rank) })
        guard normalized.count == axes.count else { throw fail("axes \(axes) repeat an axis") }
        var remaining = input[...]
        return (0..<rank).map { normalized.contains($0) ? 1 : remaining.popFirst()! }
    }

    func concat() throws -> [Int]? {
        var shapes: [[Int]] = []
        for index in node.inputs.indices where has(index) {
            guard let shape = shape(index) else { return nil }
            shapes.append(shape)
        }
        guard let first = shapes.first else { return nil }
        let joined = try axis(attributeInt("axis", opset < 4 ? 1 : 0), rank: first.count)
        var output = first
        for other in shapes.dropFirst() {
            let fits = other.count == first.count && other.indices.allSatisfy { $0 == joined || other[$0] == first[$0] }
            guard fits else { throw fail("inputs \(first) and \(other) differ outside axis \(joined)") }
            output[joined] += other[joined]
        }
        return output
    }

    func split() throws -> [[Int]?] {
        let count = node.outputs.count
        guard let input = shape(0) else { return [[Int]?](repeating: nil, count: count) }
        let splitAxis = try axis(attributeInt("axis", 0), rank: input.count)
        let length = input[splitAxis]
        var sizes: [Int]
        if opset >= 13 && has(1) {
            guard let given = integers(1) else { return [[Int]?](repeating: nil, count: count) }
            sizes = given
        } else if opset < 13, let given = attributeInts("split") {
            sizes = given
        } else if let parts = node.attribute("num_outputs")?.intValue.map({ Int($0) }), parts > 0 {
            let chunk = (length + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, max(length - $0 * chunk, 0)) }
        } else {
            guard count > 0, length % count == 0 else { throw fail("axis \(splitAxis) of \(input) does not split into \(count) equal parts") }
            sizes = [Int](repeating: length / count, count: count)
        }
        guard sizes.allSatisfy({ $0 >= 0 }) else { throw fail("split \(sizes) has a negative size") }
        guard sizes.reduce(0, &+) == length else { throw fail("split \(sizes) does not add up to axis \(splitAxis) of \(input)") }
        return sizes.map { size in
            var output = input
            output[splitAxis] = size
            return output
        }
    }

    func slice() throws -> [Int]? {
        guard let input = shape(0) else { return nil }
        let starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if opset < 10 {
            guard let given = attributeInts("starts"), let last = attributeInts("ends") else { return nil }
            (starts, ends, axes, steps) = (given, last, attributeInts("axes"), nil)
        } else {
            guard let given = integers(1), let last = integers(2) else { return nil }
            if (has(3) && integers(3) == nil) || (has(4) && integers(4) == nil) { return nil }
            (starts, ends) = (given, last)
            axes = has(3) ? integers(3) : nil
            steps = has(4) ? integers(4) : nil
        }
        let sliced = try (axes ?? Array(starts.indices)).map { try axis($0, rank: input.count) }
        guard ends.count == starts.count, sliced.count == starts.count, (steps?.count ?? starts.count) == starts.count else {
            throw fail("starts \(starts), ends \(ends), axes \(axes ?? []) and steps \(steps ?? []) differ in length")
        }
        guard Set(sliced).count == sliced.count else { throw fail("axes \(axes ?? []) repeat an axis") }
        var output = input
        for (position, index) in sliced.enumerated() {
            let step = steps?[position] ?? 1
            guard step != 0 else { throw fail("a step of 0") }
            output[index] = SliceRange(start: starts[position], end: ends[position], step: step, length: input[index]).count
        }
        return output
    }

    func pad() throws -> [Int]? {
        guard let input = shape(0) else { return nil }
        let amounts: [Int]
        if opset < 11 {
            guard let given = attributeInts("pads") ?? attributeInts("paddings") else { return nil }
            amounts = given
        } else {
            guard let given = integers(1) else { return nil }
            amounts = given
        }
        var padded: [Int] = Array(input.indices)
        if opset >= 18 && has(3) {
            guard let axes = integers(3) else { return nil }
            padded = try axes.map { try axis($0, rank: input.count) }
        }
        guard amounts.count == 2 * padded.count else { throw fail("pads \(amounts) do not fit \(padded.count) axes of \(input)") }
        var output = input
        for (position, index) in padded.enumerated() {
            let (change, first) = amounts[position].addingReportingOverflow(amounts[position + padded.count])
            let (size, second) = output[index].addingReportingOverflow(change)
            guard !first, !second else { throw fail("pads \(amounts) are too large") }
            output[index] = size
            guard output[index] >= 0 else { throw fail("pads \(amounts) remove more than axis \(index) of \(input) holds") }
        }
        return output
    }
}
