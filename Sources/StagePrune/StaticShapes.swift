import NNPipeCore

/// Static shape propagation over the ops pruning meets, enough to count MACs and to know the
/// spatial size behind a Flatten. Symbolic or unknown leading (batch) dimensions are taken as 1;
/// value_info fills in what the rules here do not cover.
public enum StaticShapes {
    /// Shapes of every value whose shape can be derived, by name.
    public static func infer(_ graph: Graph) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        func seed(_ info: ValueInfo, batchIsOne: Bool) {
            guard let dimensions = info.type.tensorShape else { return }
            var shape: [Int] = []
            for (axis, dimension) in dimensions.enumerated() {
                if let value = dimension.fixedValue { shape.append(value) } else if axis == 0 && batchIsOne { shape.append(1) } else { return }
            }
            shapes[info.name] = shape
        }
        for info in graph.valueInfo { seed(info, batchIsOne: true) }
        for info in graph.outputs { seed(info, batchIsOne: true) }
        for info in graph.inputs { seed(info, batchIsOne: true) }
        var constants: [String: Tensor] = [:]
        for tensor in graph.initializers {
            shapes[tensor.name] = tensor.shape
            constants[tensor.name] = tensor
        }
        for node in graph.nodes {
            if node.opType == "Constant", let value = node.attribute("value")?.tensorValue, let output = node.outputs.first {
                shapes[output] = value.shape
                constants[output] = value
                continue
            }
            let inputs = node.inputs.map { $0.isEmpty ? nil : shapes[$0] }
            if let derived = outputShapes(node, inputs: inputs, constants: constants) {
                for (name, shape) in zip(node.outputs, derived) where !name.isEmpty { shapes[name] = shape }
            }
        }
        return shapes
    }

    private static func ints(_ node: Node, _ name: String) -> [Int]? {
        node.attribute(name)?.intsValue?.map { Int($0) }
    }

    private static func outputShapes(_ node: Node, inputs: [[Int]?], constants: [String: Tensor]) -> [[Int]]? {
        guard node.domain.isEmpty else { return nil }
        let first = inputs.first ?? nil
        switch node.opType {
        case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
            "Softplus", "Softsign", "Gelu", "Mish", "PRelu", "Identity", "Dropout", "BatchNormalization",
            "Softmax", "LogSoftmax", "Neg", "Abs", "Exp", "Sqrt", "Erf", "Cast", "InstanceNormalization",
            "LRN", "LayerNormalization":
            return first.map { [$0] }
        case "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Pow", "Where":
            var result: [Int] = []
            for shape in inputs {
                guard let shape else { return nil }
                result = broadcast(result, shape)
            }
            return [result]
        case "Conv", "MaxPool", "AveragePool", "LpPool":
            guard let input = first, input.count >= 3 else { return nil }
            let spatial = input.count - 2
            var kernel = ints(node, "kernel_shape")
            var channels = input[1]
            if node.opType == "Conv" {
                guard let weight = inputs.count > 1 ? inputs[1] : nil else { return nil }
                kernel = kernel ?? Array(weight.dropFirst(2))
                channels = weight[0]
            }
            guard let kernel, kernel.count == spatial else { return nil }
            let strides = ints(node, "strides") ?? Array(repeating: 1, count: spatial)
            let dilations = ints(node, "dilations") ?? Array(repeating: 1, count: spatial)
            let pads = ints(node, "pads") ?? Array(repeating: 0, count: 2 * spatial)
            let autoPad = node.attribute("auto_pad")?.stringValue ?? "NOTSET"
            let ceilMode = (node.attribute("ceil_mode")?.intValue ?? 0) != 0
            var output = [input[0], channels]
            for axis in 0..<spatial {
                let size = input[axis + 2]
                let extent = dilations[axis] * (kernel[axis] - 1) + 1
                switch autoPad {
                case "SAME_UPPER", "SAME_LOWER":
                    output.append((size + strides[axis] - 1) / strides[axis])
                case "VALID":
                    output.append((size - extent) / strides[axis] + 1)
                default:
                    let padded = size + pads[axis] + pads[axis + spatial] - extent
                    let steps = ceilMode ? (padded + strides[axis] - 1) / strides[axis] : padded / strides[axis]
                    output.append(steps + 1)
                }
            }
            return [output]
        case "GlobalAveragePool", "GlobalMaxPool":
            guard let input = first else { return nil }
            return [Array(input.prefix(2)) + Array(repeating: 1, count: input.count - 2)]
        case "Gemm":
            guard let a = first, let b = inputs.count > 1 ? inputs[1] : nil, a.count == 2, b.count == 2 else { return nil }
            let rows = (node.attribute("transA")?.intValue ?? 0) != 0 ? a[1] : a[0]
            let columns = (node.attribute("transB")?.intValue ?? 0) != 0 ? b[0] : b[1]
            return [[rows, columns]]
        case "MatMul":
            guard let a = first, let b = inputs.count > 1 ? inputs[1] : nil, !a.isEmpty, !b.isEmpty else { return nil }
            if b.count == 1 { return [Array(a.dropLast())] }
            if a.count == 1 { return [Array(b.dropLast(2)) + [b[b.count - 1]]] }
            let batch = broadcast(Array(a.dropLast(2)), Array(b.dropLast(2)))
            return [batch + [a[a.count - 2], b[b.count - 1]]]
        case "Flatten":
            guard let input = first else { return nil }
            var axis = Int(node.attribute("axis")?.intValue ?? 1)
            if axis < 0 { axis += input.count }
            return [[input[..<axis].reduce(1, *), input[axis...].reduce(1, *)]]
        case "Reshape":
            guard let input = first, node.inputs.count > 1, let target = constants[node.inputs[1]]?.integerValues() else { return nil }
            var shape = target.enumerated().map { Int($0.element == 0 && $0.offset < input.count ? Int64(input[$0.offset]) : $0.element) }
            if let unknown = shape.firstIndex(of: -1) {
                let known = shape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
                shape[unknown] = known == 0 ? 0 : input.reduce(1, *) / known
            }
            return [shape]
        case "Transpose":
            guard let input = first else { return nil }
            let permutation = ints(node, "perm") ?? Array((0..<input.count).reversed())
            return [permutation.map { input[$0] }]
        case "Concat":
            guard var result = first, inputs.allSatisfy({ $0 != nil }) else { return nil }
            var axis = Int(node.attribute("axis")?.intValue ?? 0)
            if axis < 0 { axis += result.count }
            result[axis] = inputs.reduce(0) { $0 + $1![axis] }
            return [result]
        case "Split":
            guard let input = first else { return nil }
            var axis = Int(node.attribute("axis")?.intValue ?? 0)
            if axis < 0 { axis += input.count }
            var sizes = ints(node, "split")
            if sizes == nil, node.inputs.count > 1, let tensor = constants[node.inputs[1]] {
                sizes = tensor.integerValues()?.map { Int($0) }
            }
            let parts = node.outputs.count
            let split = sizes ?? Array(repeating: input[axis] / max(parts, 1), count: parts)
            return split.map { size in
                var shape = input
                shape[axis] = size
                return shape
            }
        case "Slice":
            guard let input = first, let slice = SliceParameters(node, constants: constants, rank: input.count) else { return nil }
            var shape = input
            for (axis, start, end, step) in slice.entries {
                shape[axis] = slice.length(dimension: input[axis], start: start, end: end, step: step)
            }
            return [shape]
        default:
            return nil
        }
    }

    static func broadcast(_ left: [Int], _ right: [Int]) -> [Int] {
        let rank = max(left.count, right.count)
        let a = Array(repeating: 1, count: rank - left.count) + left
        let b = Array(repeating: 1, count: rank - right.count) + right
        return zip(a, b).map { $0 == 1 ? $1 : $0 }
    }
}

/// The constant starts/ends/axes/steps of a Slice (opset 10+ inputs, or opset 1 attributes).
struct SliceParameters {
    var entries: [(axis: Int, start: Int, end: Int, step: Int)]

    init?(_ node: Node, constants: [String: Tensor], rank: Int) {
        func constant(_ position: Int) -> [Int]? {
            guard node.inputs.count > position, !node.inputs[position].isEmpty else { return nil }
            return constants[node.inputs[position]]?.integerValues()?.map { Int(clamping: $0) }
        }
        var starts: [Int]
        var ends: [Int]
        var axes: [Int]?
        var steps: [Int]?
        if node.inputs.count > 1 {
            guard let s = constant(1), let e = constant(2) else { return nil }
            starts = s
            ends = e
            if node.inputs.count > 3, !node.inputs[3].isEmpty { guard let a = constant(3) else { return nil }; axes = a }
            if node.inputs.count > 4, !node.inputs[4].isEmpty { guard let t = constant(4) else { return nil }; steps = t }
        } else {
            guard let s = node.attribute("starts")?.intsValue, let e = node.attribute("ends")?.intsValue else { return nil }
            starts = s.map { Int(clamping: $0) }
            ends = e.map { Int(clamping: $0) }
            axes = node.attribute("axes")?.intsValue?.map { Int($0) }
        }
        let axisList = (axes ?? Array(0..<starts.count)).map { $0 < 0 ? $0 + rank : $0 }
        let stepList = steps ?? Array(repeating: 1, count: starts.count)
        entries = (0..<starts.count).map { (axisList[$0], starts[$0], ends[$0], stepList[$0]) }
    }

    /// Clamped start index (as ONNX defines it) for a dimension of `dimension` elements.
    func resolvedStart(dimension: Int, start: Int, step: Int) -> Int {
        let value = start < 0 ? start + dimension : start
        return step > 0 ? min(max(value, 0), dimension) : min(max(value, -1), dimension - 1)
    }

    func resolvedEnd(dimension: Int, end: Int, step: Int) -> Int {
        let value = end < 0 ? end + dimension : end
        return step > 0 ? min(max(value, 0), dimension) : min(max(value, -1), dimension - 1)
    }

    func length(dimension: Int, start: Int, end: Int, step: Int) -> Int {
        let from = resolvedStart(dimension: dimension, start: start, step: step)
        let to = resolvedEnd(dimension: dimension, end: end, step: step)
        if step > 0 { return max(0, (to - from + step - 1) / step) }
        return max(0, (from - to - step - 1) / -step)
    }
}
