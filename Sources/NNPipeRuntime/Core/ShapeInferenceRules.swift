import NNPipeCore

extension ShapeInference {
    /// One node's output types from its input types (and the values of small constant inputs).
    /// A rule returns fewer outputs, or nil shapes, where it cannot tell; it throws only on a
    /// certain incompatibility, so a model that runs is never refused.
    struct Rule {
        let node: Node
        let opset: Int
        let inputs: [InferredTensor?]
        let values: [RuntimeTensor?]

        func shape(_ index: Int) -> [Int]? { index < inputs.count ? inputs[index]?.shape : nil }
        func type(_ index: Int) -> DataType? { index < inputs.count ? inputs[index]?.dataType : nil }
        func has(_ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }
        func integers(_ index: Int) -> [Int]? {
            index < values.count ? values[index].map { $0.integers.map { Int($0) } } : nil
        }
        func attributeInt(_ name: String, _ fallback: Int) -> Int { node.attribute(name)?.intValue.map { Int($0) } ?? fallback }
        func attributeInts(_ name: String) -> [Int]? { node.attribute(name)?.intsValue?.map { Int($0) } }

        func fail(_ what: String) -> NNPipeError {
            NNPipeError(.invalidModel, "node '\(node.displayName)' (op '\(node.opType)', opset \(opset)): \(what)")
        }
        func same(_ index: Int = 0, as type: DataType? = nil) -> InferredTensor {
            InferredTensor(dataType: type ?? self.type(index), shape: shape(index))
        }
        func tensor(_ type: DataType?, _ shape: [Int]?) -> InferredTensor { InferredTensor(dataType: type, shape: shape) }

        func axis(_ value: Int, rank: Int) throws -> Int {
            let result = value < 0 ? value + rank : value
            guard result >= 0, result < max(rank, 1) else { throw fail("axis \(value) is out of range for rank \(rank)") }
            return result
        }

        func broadcast(_ indices: [Int]) throws -> [Int]? {
            var shapes: [[Int]] = []
            for index in indices where has(index) {
                guard let shape = shape(index) else { return nil }
                shapes.append(shape)
            }
            return try broadcast(shapes)
        }

        // The kernels' broadcast rule, with its message re-issued under this node's name.
        func broadcast(_ shapes: [[Int]]) throws -> [Int] {
            do { return try BroadcastPlan.shape(shapes) } catch let error as KernelError { throw fail(error.message) }
        }

        static func shapeRange(_ node: Node, rank: Int) -> Range<Int> {
            func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
            let start = clamp(node.attribute("start")?.intValue.map { Int($0) } ?? 0)
            let end = clamp(node.attribute("end")?.intValue.map { Int($0) } ?? rank)
            return start..<max(start, end)
        }

        mutating func machineLearning() throws -> [InferredTensor] {
            switch node.opType {
            case "ZipMap": return [same(0, as: .float)]
            case "ArrayFeatureExtractor":
                guard let data = shape(0), let indices = shape(1) else { return [tensor(type(0), nil)] }
                let count = indices.reduce(1, *)
                return [tensor(type(0), data.count <= 1 ? [1, count] : Array(data.dropLast()) + [count])]
            default: return []
            }
        }

        mutating func defaultDomain() throws -> [InferredTensor] {
            let op = node.opType
            if ActivationKernels.table[op] != nil { return [same()] }
            switch op {
            case "Identity", "Clip", "Softmax", "LogSoftmax", "LRN", "InstanceNormalization", "Not", "BatchNormalization":
                return [same()]
            case "Dropout": return [same(), same(0, as: opset < 10 ? type(0) : .bool)]  // opsets 7 to 9: the mask has the input's type
            case "LayerNormalization":
                guard let input = shape(0) else { return [same()] }
                let start = try axis(attributeInt("axis", -1), rank: input.count)
                let statistics = Array(input[..<start]) + [Int](repeating: 1, count: input.count - start)
                return [same(), tensor(.float, statistics), tensor(.float, statistics)]
            case "Cast": return [same(0, as: DataType(rawValue: Int32(attributeInt("to", 0))))]
            case "CastLike": return [same(0, as: type(1))]
            case "Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Max", "Min", "Sum", "Mean":
                if opset < 7 && node.attribute("broadcast") != nil { return [] }
                return [tensor(type(0), try broadcast(Array(node.inputs.indices)))]
            case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor":
                if opset < 7 && node.attribute("broadcast") != nil { return [] }
                return [tensor(.bool, try broadcast([0, 1]))]
            case "Where": return [tensor(type(1), try broadcast([0, 1, 2]))]
            case "MatMul": return [tensor(type(0), try matrixProduct(0, 1))]
            case "MatMulInteger": return [tensor(.int32, try matrixProduct(0, 1))]
            case "QLinearMatMul": return [tensor(type(7), try matrixProduct(0, 3))]
            case "Gemm": return [tensor(type(0), try gemm())]
            case "Conv": return [tensor(type(0), try convolution(data: 0, weights: 1, bias: 2))]
            case "ConvInteger": return [tensor(.int32, try convolution(data: 0, weights: 1, bias: nil))]
            case "QLinearConv": return [tensor(type(7), try convolution(data: 0, weights: 3, bias: 8))]
            case "ConvTranspose": return [tensor(type(0), try transposedConvolution())]
            case "MaxPool":
                let output = try pool()
                return [tensor(type(0), output), tensor(.int64, output)]
            case "AveragePool": return [tensor(type(0), try pool())]
            case "GlobalAveragePool", "GlobalMaxPool":
                return [tensor(type(0), shape(0).map { Array($0.prefix(2)) + [Int](repeating: 1, count: max($0.count - 2, 0)) })]
            case "QuantizeLinear":
                let declared = attributeInt("output_dtype", 0)
                let output = has(2) ? type(2) : declared != 0 ? DataType(rawValue: Int32(declared)) : .uint8
                return [same(0, as: output)]
            case "DequantizeLinear":
                let declared = attributeInt("output_dtype", 0)
                return [same(0, as: declared != 0 ? DataType(rawValue: Int32(declared)) : type(1))]
            case "DynamicQuantizeLinear": return [same(0, as: .uint8), tensor(.float, []), tensor(.uint8, [])]
            default: return try movement(op)
            }
        }

        mutating func movement(_ op: String) throws -> [InferredTensor] {
            switch op {
            case "Flatten":
                guard let input = shape(0) else { return [same()] }
                var split = attributeInt("axis", 1)
                if split < 0 { split += input.count }
                guard split >= 0, split <= input.count else { throw fail("axis \(attributeInt("axis", 1)) is out of range for rank \(input.count)") }
                return [tensor(type(0), [input[..<split].reduce(1, *), input[split...].reduce(1, *)])]
            case "Reshape": return [tensor(type(0), try reshape())]
            case "Transpose":
                guard let input = shape(0) else { return [same()] }
                let permutation = attributeInts("perm") ?? Array((0..<input.count).reversed())
                guard permutation.sorted() == Array(0..<input.count) else {
                    throw fail("perm \(permutation) is not a permutation of the axes of \(input)")
                }
                return [tensor(type(0), permutation.map { input[$0] })]
            case "Squeeze": return [tensor(type(0), try squeeze())]
            case "Unsqueeze": return [tensor(type(0), try unsqueeze())]
            case "Concat": return [tensor(type(0), try concat())]
            case "Split": return try split().map { tensor(type(0), $0) }
            case "Slice": return [tensor(type(0), try slice())]
            case "Gather":
                guard let data = shape(0), let indices = shape(1) else { return [same()] }
                let gathered = try axis(attributeInt("axis", 0), rank: data.count)
                return [tensor(type(0), Array(data[..<gathered]) + indices + Array(data[(gathered + 1)...]))]
            case "Pad": return [tensor(type(0), try pad())]
            case "Shape": return [tensor(.int64, shape(0).map { [Self.shapeRange(node, rank: $0.count).count] })]
            case "Size": return [tensor(.int64, [])]
            case "ConstantOfShape":
                let type = node.attribute("value")?.tensorValue?.dataType ?? .float
                return [tensor(type, integers(0))]
            case "Constant":
                if let value = node.attribute("value")?.tensorValue { return [tensor(value.dataType, value.shape)] }
                if node.attribute("value_float") != nil { return [tensor(.float, [])] }
                if let floats = node.attribute("value_floats")?.floatsValue { return [tensor(.float, [floats.count])] }
                if node.attribute("value_int") != nil { return [tensor(.int64, [])] }
                if let ints = node.attribute("value_ints")?.intsValue { return [tensor(.int64, [ints.count])] }
                return []
            case "Expand":
                guard let input = shape(0), let target = integers(1) else { return [same(0, as: type(0)).withShape(nil)] }
                return [tensor(type(0), try broadcast([input, target]))]
            case "Tile":
                guard let input = shape(0), let repeats = integers(1) else { return [same().withShape(nil)] }
                guard repeats.count == input.count else { throw fail("repeats \(repeats) do not fit input \(input)") }
                return [tensor(type(0), try zip(input, repeats).map { size, count in
                    let (product, overflow) = size.multipliedReportingOverflow(by: count)
                    guard count >= 0, !overflow else { throw fail("repeats \(repeats) are negative or too large for \(input)") }
                    return product
                })]
            case "ArgMax", "ArgMin":
                guard let input = shape(0) else { return [tensor(.int64, nil)] }
                let reduced = try axis(attributeInt("axis", 0), rank: input.count)
                return [tensor(.int64, try reduce(input, axes: [reduced]))]
            case "Resize":
                guard let input = shape(0) else { return [same()] }
                var spec = NodeSpec(node: node, opset: opset)
                let settings = try ResizeKernel.settings(&spec)
                let needed = opset < 11 ? [1] : [1, 2, 3]
                if needed.contains(where: { has($0) && integersOrFloatsUnknown($0) }) { return [same().withShape(nil)] }
                do {
                    return [tensor(type(0), try ResizeKernel.geometry(inputShape: input, values, settings).outputShape)]
                } catch let error as KernelError {
                    throw fail("\(error.message) (input \(input))")
                }
            default:
                if op.hasPrefix("Reduce") {
                    guard let input = shape(0) else { return [same()] }
                    let axesFromInput = op == "ReduceSum" ? opset >= 13 : opset >= 18
                    if axesFromInput && has(1) && integers(1) == nil { return [same().withShape(nil)] }
                    let axes = axesFromInput ? integers(1) : attributeInts("axes")
                    if (axes ?? []).isEmpty && attributeInt("noop_with_empty_axes", 0) == 1 { return [same()] }
                    let normalized = try (axes?.isEmpty == false ? axes! : Array(input.indices)).map { try axis($0, rank: input.count) }
                    return [tensor(type(0), try reduce(input, axes: normalized))]
                }
                return []
            }
        }

        func integersOrFloatsUnknown(_ index: Int) -> Bool { index >= values.count || values[index] == nil }

        func reduce(_ input: [Int], axes: [Int]) throws -> [Int] {
            let keep = attributeInt("keepdims", 1) == 1
            var output: [Int] = []
            for (index, size) in input.enumerated() {
                if axes.contains(index) {
                    if keep { output.append(1) }
                } else {
                    output.append(size)
                }
            }
            return output
        }
    }
}

extension InferredTensor {
    func withShape(_ shape: [Int]?) -> InferredTensor { InferredTensor(dataType: dataType, shape: shape) }
}
