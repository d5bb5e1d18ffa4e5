import NNPipeCore

/// One value's element type and shape as shape inference knows them; nil where it cannot tell
/// (an op without a rule, or a shape that depends on data only a run produces).
public struct InferredTensor: Sendable, Hashable, CustomStringConvertible {
    public var dataType: DataType?
    public var shape: [Int]?

    public init(dataType: DataType?, shape: [Int]?) {
        self.dataType = dataType
        self.shape = shape
    }

    public var description: String {
        "\(dataType.map { "\($0)" } ?? "?")\(shape.map { "\($0)" } ?? "[?]")"
    }
}

/// Plan-time shape inference over the runtime's operator set: given concrete input shapes (symbolic
/// dimensions bound by the batch size), every value's element type and shape, so a model that
/// cannot run on data of that shape fails before the first batch, naming the node, the op and the
/// shapes that disagree. Shape arithmetic on constants (Shape -> Gather -> Concat -> Reshape, as
/// converters emit) is folded with the runtime's own kernels, so Reshape and Slice targets are known.
public enum ShapeInference {
    /// Tensors up to this many elements are folded to values when all their inputs are known:
    /// enough for shape tensors, small enough that inference stays cheap next to a run.
    static let foldLimit = 4096

    /// - Parameters:
    ///   - inputShapes: the shape of every graph input that has no initializer.
    ///   - inputValues: graph inputs whose values are known before a run (shape arguments fed as
    ///     inputs, as onnx's node tests do), so the shapes they decide can be inferred.
    /// - Throws: `NNPipeError(.invalidModel)` naming the node, op and shapes on the first incompatibility.
    public static func infer(_ model: Model, inputShapes: [String: [Int]], inputValues: [String: RuntimeTensor] = [:]) throws
        -> [String: InferredTensor]
    {
        let graph = model.graph
        var opsets: [String: Int] = [:]
        for entry in model.opsetImports { opsets[entry.domain == "ai.onnx" ? "" : entry.domain] = Int(entry.version) }
        var state = State()
        for initializer in graph.initializers {
            state.types[initializer.name] = InferredTensor(dataType: initializer.dataType, shape: initializer.shape)
            if initializer.shape.reduce(1, *) <= foldLimit, let value = try? RuntimeTensor(initializer) {
                state.values[initializer.name] = value
            }
        }
        for sparse in graph.sparseInitializers {
            state.types[sparse.name] = InferredTensor(dataType: sparse.values.dataType, shape: sparse.shape)
        }
        for input in graph.runtimeInputs {
            guard case .tensor(let type, let declared) = input.type else { continue }
            guard let shape = inputShapes[input.name] else {
                state.types[input.name] = InferredTensor(dataType: type, shape: declared.flatMap(fixedShape))
                continue
            }
            if let declared {
                let fits = declared.count == shape.count
                    && zip(declared, shape).allSatisfy { dimension, size in dimension.fixedValue.map { $0 == size } ?? true }
                if !fits {
                    let expected = "[" + declared.map(\.description).joined(separator: ", ") + "]"
                    throw NNPipeError(.invalidData, "input '\(input.name)' expects shape \(expected), got \(shape)")
                }
            }
            state.types[input.name] = InferredTensor(dataType: type, shape: shape)
            if let value = inputValues[input.name], value.shape == shape, value.elementCount <= foldLimit { state.values[input.name] = value }
        }
        for node in graph.nodes {
            let domain = node.domain == "ai.onnx" ? "" : node.domain
            let opset = opsets[domain] ?? 0
            try state.infer(node, domain: domain, opset: opset)
        }
        return state.types
    }

    static func fixedShape(_ dimensions: [Dimension]) -> [Int]? {
        let sizes = dimensions.compactMap(\.fixedValue)
        return sizes.count == dimensions.count ? sizes : nil
    }

    struct State {
        var types: [String: InferredTensor] = [:]
        /// Values of small tensors known before any run (constants and shape arithmetic).
        var values: [String: RuntimeTensor] = [:]

        mutating func infer(_ node: Node, domain: String, opset: Int) throws {
            let inputs = node.inputs.map { $0.isEmpty ? nil : types[$0] }
            var rule = Rule(node: node, opset: opset, inputs: inputs, values: node.inputs.map { $0.isEmpty ? nil : values[$0] })
            let results = try domain == OperatorRegistry.machineLearningDomain ? rule.machineLearning() : rule.defaultDomain()
            for result in results {
                guard let shape = result.shape else { continue }
                do { try TensorSize.check(shape, result.dataType, what: "output shape") } catch let error as KernelError { throw rule.fail(error.message) }
            }
            // Folds only what stays small: a ConstantOfShape of a weight's shape (onnx's light models)
            // is the plan's to materialise, not inference's.
            let small = results.allSatisfy { $0.shape.map { TensorSize.elements($0)! <= ShapeInference.foldLimit } ?? true }
            if small, try fold(node, domain: domain, opset: opset) { return }
            for (index, name) in node.outputs.enumerated() where !name.isEmpty {
                types[name] = index < results.count ? results[index] : InferredTensor(dataType: nil, shape: nil)
            }
            // A Shape of a known shape is a value, though its input is not: what Reshape targets are made of.
            if domain.isEmpty, node.opType == "Shape" || node.opType == "Size", let shape = inputs.first??.shape, let output = node.outputs.first {
                if node.opType == "Size" {
                    values[output] = RuntimeTensor(shape: [], values: [Int64(shape.reduce(1, *))])
                } else {
                    let range = Rule.shapeRange(node, rank: shape.count)
                    values[output] = RuntimeTensor(shape: [range.count], values: shape[range].map(Int64.init))
                }
            }
        }

        /// Computes the node with the runtime's kernel when every input value is known and small.
        mutating func fold(_ node: Node, domain: String, opset: Int) throws -> Bool {
            let present = node.inputs.filter { !$0.isEmpty }
            guard present.allSatisfy({ values[$0] != nil }), !OperatorRegistry.isNondeterministic(node.opType),
                  present.allSatisfy({ values[$0]!.elementCount <= ShapeInference.foldLimit }),
                  let kernel = try? OperatorRegistry.kernel(for: node, domain: domain, opset: opset),
                  let results = try? ExecutionPlan.execute(kernel, node: node, inputs: node.inputs.map { $0.isEmpty ? nil : values[$0] },
                                                           context: ExecutionContext(threads: 1))
            else { return false }
            for (name, result) in zip(node.outputs, results) where !name.isEmpty {
                guard let result else { continue }
                types[name] = InferredTensor(dataType: result.dataType, shape: result.shape)
                if result.elementCount <= ShapeInference.foldLimit { values[name] = result }
            }
            return true
        }
    }
}

extension ExecutionPlan {
    /// Every value's element type and shape for inputs of these shapes (graph input name -> shape).
    /// Throws, naming node, op and shapes, where the model cannot run on such inputs.
    public func inferShapes(inputShapes: [String: [Int]]) throws -> [String: InferredTensor] {
        try ShapeInference.infer(model, inputShapes: inputShapes)
    }

    /// Inference with each input's declared shape, its symbolic leading dimension set to `batchSize`.
    public func inferShapes(batchSize: Int) throws -> [String: InferredTensor] {
        try ShapeInference.infer(model, inputShapes: ShapeInference.declaredShapes(of: model, batchSize: batchSize))
    }
}

extension ShapeInference {
    /// Declared input shapes with a symbolic first dimension bound to `batchSize`; inputs with other
    /// unknown dimensions are left out (their shapes come from data).
    public static func declaredShapes(of model: Model, batchSize: Int) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for input in model.graph.runtimeInputs {
            guard case .tensor(_, let declared?) = input.type else { continue }
            var dimensions = declared
            if let first = dimensions.first, first.fixedValue == nil { dimensions[0] = .fixed(batchSize) }
            if let shape = fixedShape(dimensions) { shapes[input.name] = shape }
        }
        return shapes
    }
}
