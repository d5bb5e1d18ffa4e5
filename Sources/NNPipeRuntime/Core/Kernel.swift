import NNPipeCore

/// One node's compiled computation. Made once per plan; `run` may be called concurrently.
protocol Kernel: Sendable {
    /// `inputs` follows the node's inputs (nil for an omitted optional one); the result follows
    /// its outputs (nil where an optional output is not produced).
    func run(_ inputs: [RuntimeTensor?], _ context: ExecutionContext) throws -> [RuntimeTensor?]
}

/// A kernel written as a closure, for the many ops whose state is a few attribute values.
struct ClosureKernel: Kernel {
    let body: @Sendable ([RuntimeTensor?], ExecutionContext) throws -> [RuntimeTensor?]
    func run(_ inputs: [RuntimeTensor?], _ context: ExecutionContext) throws -> [RuntimeTensor?] {
        try body(inputs, context)
    }
}

/// What a kernel may know about the run: thread count for splitting work, and where a Conv may
/// write its output instead of a tensor of its own (see `ConcatInPlace`).
struct ExecutionContext: Sendable {
    let threads: Int
    var destination: ChannelDestination? = nil
    /// A Concat in a chain that grows one storage (see `ConcatGrowth`).
    var concatGrowth: ConcatGrowth? = nil
}

/// A node as a kernel factory sees it: attribute reads are recorded so that an attribute
/// no factory read is reported as unsupported instead of silently ignored.
struct NodeSpec {
    let node: Node
    let opset: Int
    private(set) var readAttributes: Set<String> = []

    init(node: Node, opset: Int) {
        self.node = node
        self.opset = opset
    }

    var opType: String { node.opType }
    var inputCount: Int { node.inputs.count }
    func hasInput(_ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }
    func hasOutput(_ index: Int) -> Bool { index < node.outputs.count && !node.outputs[index].isEmpty }

    mutating func attribute(_ name: String) -> Attribute? {
        readAttributes.insert(name)
        return node.attribute(name)
    }
    mutating func int(_ name: String, _ fallback: Int) -> Int {
        attribute(name)?.intValue.map { Int($0) } ?? fallback
    }
    mutating func float(_ name: String, _ fallback: Float) -> Float {
        attribute(name)?.floatValue ?? fallback
    }
    mutating func string(_ name: String, _ fallback: String) -> String {
        attribute(name)?.stringValue ?? fallback
    }
    mutating func ints(_ name: String) -> [Int]? {
        attribute(name)?.intsValue?.map { Int($0) }
    }
    mutating func floats(_ name: String) -> [Float]? {
        attribute(name)?.floatsValue
    }
    /// Marks attributes that carry no meaning at inference (e.g. Dropout's seed) as understood.
    mutating func ignore(_ names: String...) {
        readAttributes.formUnion(names)
    }

    /// The error for something valid this runtime does not do, naming op, node and opset.
    func unsupported(_ what: String) -> NNPipeError {
        NNPipeError(.unsupported, "\(what) in op '\(node.opType)' (node '\(node.displayName)', opset \(opset))")
    }
    func invalid(_ what: String) -> NNPipeError {
        NNPipeError(.invalidModel, "\(what) in op '\(node.opType)' (node '\(node.displayName)', opset \(opset))")
    }
}

/// Thrown by a fused kernel (see `PlanFusion`) whose inputs turn out not to fit the fusion, e.g. a
/// residual that broadcasts; the plan then runs the original nodes one by one.
struct FusionDeclined: Error {}

/// Errors kernels raise while running, with the node named by the executor.
struct KernelError: Error {
    let message: String
    let code: NNPipeError.Code
    init(_ message: String, code: NNPipeError.Code = .invalidData) {
        self.message = message
        self.code = code
    }
}

extension Array where Element == RuntimeTensor? {
    /// The input at `index`, which the op requires.
    func required(_ index: Int) throws -> RuntimeTensor {
        guard index < count, let tensor = self[index] else { throw KernelError("input \(index) is missing") }
        return tensor
    }
    func optional(_ index: Int) -> RuntimeTensor? {
        index < count ? self[index] : nil
    }
}

/// Normalises a possibly negative axis against `rank`.
func normalizedAxis(_ axis: Int, rank: Int) throws -> Int {
    let result = axis < 0 ? axis + rank : axis
    guard result >= 0, result < max(rank, 1) else { throw KernelError("axis \(axis) is out of range for rank \(rank)") }
    return result
}

/// Element types a kernel was asked to compute with but does not.
func unsupportedType(_ type: DataType) -> KernelError {
    KernelError("element type \(type) is not supported", code: .unsupported)
}
