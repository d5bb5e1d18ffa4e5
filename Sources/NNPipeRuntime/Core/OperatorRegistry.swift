import NNPipeCore

/// Which ops the runtime runs, from which opset, and the factory that compiles each node.
enum OperatorRegistry {
    typealias Factory = @Sendable (inout NodeSpec) throws -> any Kernel

    struct Entry: Sendable {
        /// The first opset of the op's domain in which the op exists.
        let since: Int
        let factory: Factory
    }

    static let machineLearningDomain = "ai.onnx.ml"

    static func kernel(for node: Node, domain: String, opset: Int) throws -> any Kernel {
        var spec = NodeSpec(node: node, opset: opset)
        let table = domain == "" ? defaultDomain : domain == machineLearningDomain ? machineLearning
            : domain == QDQFusion.microsoftDomain ? microsoft : [:]
        guard let entry = table[node.opType] else {
            let domainText = domain.isEmpty ? "" : " of domain '\(domain)'"
            throw spec.unsupported("the runtime has no kernel for op '\(node.opType)'\(domainText)")
        }
        let unchanged = opset < ExecutionPlan.oldestOpset && definedOnlyInOpsetOne.contains(node.opType)
        if domain == "" && !unchanged && (opset < ExecutionPlan.oldestOpset || opset > ExecutionPlan.newestOpset) {
            throw spec.unsupported("opset \(opset) is outside the supported range \(ExecutionPlan.oldestOpset)...\(ExecutionPlan.newestOpset)")
        }
        if opset < entry.since {
            throw spec.invalid("the op does not exist before opset \(entry.since)")
        }
        let kernel = try entry.factory(&spec)
        for attribute in node.attributes where !spec.readAttributes.contains(attribute.name) {
            throw spec.unsupported("attribute '\(attribute.name)' is not supported")
        }
        return kernel
    }

    /// Ops onnx has defined once, in opset 1: a model importing opset 1 to 6 means today's semantics
    /// (onnx's own `Not` tests import opset 1).
    static let definedOnlyInOpsetOne: Set<String> = ["Not"]

    /// Ops whose output must not be computed at plan time (none of the supported ones yet).
    static func isNondeterministic(_ opType: String) -> Bool {
        opType.hasPrefix("Random") || opType == "Bernoulli"
    }

    /// Names of every supported op, default domain first, for documentation and tests.
    static var supportedOperators: [String] {
        defaultDomain.keys.sorted() + machineLearning.keys.sorted().map { "\(machineLearningDomain).\($0)" }
    }

    static let defaultDomain: [String: Entry] = {
        var table: [String: Entry] = [:]
        func add(_ name: String, since: Int = 1, _ factory: @escaping Factory) { table[name] = Entry(since: since, factory: factory) }
        for (name, factory) in ActivationKernels.table { add(name, factory) }
        table["HardSwish"] = Entry(since: 14, factory: ActivationKernels.table["HardSwish"]!)
        table["Gelu"] = Entry(since: 20, factory: ActivationKernels.table["Gelu"]!)
        add("Add", ArithmeticKernels.binary(.add))
        add("Sub", ArithmeticKernels.binary(.subtract))
        add("Mul", ArithmeticKernels.binary(.multiply))
        add("Div", ArithmeticKernels.binary(.divide))
        add("Pow", ArithmeticKernels.power)
        add("Max", ArithmeticKernels.variadic(.maximum))
        add("Min", ArithmeticKernels.variadic(.minimum))
        add("Sum", ArithmeticKernels.variadic(.add))
        add("Mean", ArithmeticKernels.variadic(.add, mean: true))
        add("Equal", ArithmeticKernels.compare(.equal))
        add("Greater", ArithmeticKernels.compare(.greater))
        add("Less", ArithmeticKernels.compare(.less))
        add("GreaterOrEqual", since: 12, ArithmeticKernels.compare(.greaterOrEqual))
        add("LessOrEqual", since: 12, ArithmeticKernels.compare(.lessOrEqual))
        add("Where", since: 9, ArithmeticKernels.select)
        add("Clip", ArithmeticKernels.clip)
        add("PRelu", ArithmeticKernels.parametricRelu)
        for (name, entry) in extraDefaultDomain { table[name] = entry }
        return table
    }()

    static let machineLearning: [String: Entry] = extraMachineLearning

    /// The com.microsoft ops QDQ fusion produces (onnxruntime's contrib names).
    static let microsoft: [String: Entry] = ["QGemm": Entry(since: 1, factory: IntegerKernels.quantizedGemm)]
}
