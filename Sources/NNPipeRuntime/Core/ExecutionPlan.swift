import Foundation
import NNPipeCore

/// A model compiled for the CPU: every node has a kernel chosen and its attributes checked,
/// constants are folded, and the schedule knows when each intermediate dies.
///
/// Make it once, then call `run` for every batch; `run` may be called from several threads.
public final class ExecutionPlan: @unchecked Sendable {
    /// The highest default-domain opset whose semantics the kernels follow.
    public static let newestOpset = 27
    public static let oldestOpset = 7

    public let model: Model
    public let threads: Int
    /// The user-fed inputs with symbolic batch dimensions fixed to `batchSize` when given.
    public let inputs: [ValueInfo]
    public let outputNames: [String]

    struct Step {
        let node: Node
        let kernel: any Kernel
    }

    private let steps: [Step]

    /// Chains run as one kernel (Conv with folded BatchNormalization, residual Add and Relu; see
    /// `PlanFusion`), by head step, unless a run observes or asks for a value inside them.
    let chains: [Int: FusedChain]
    /// Concats whose Convs write into their output (`ConcatInPlace`), by Concat step, and the
    /// Convs (or chain heads) that do, by step.
    let concatsInPlace: [Int: ConcatInPlace]
    private let placedProducers: [Int: ConcatInPlace.Producer]
    private let concatGrowth: [Int: ConcatGrowth]
    private let constants: [String: RuntimeTensor]
    /// Initializers of element types the runtime does not hold, with the reason, for run-time errors.
    private let unavailableConstants: [String: NNPipeError]
    /// Which step produces each value.
    private let producer: [String: Int]
    private let context: ExecutionContext
    private let scheduleLock = NSLock()
    /// Per-op timings printed to standard error after each run when `NNPIPE_PROFILE` is set.
    private let profiler = OperatorProfiler.fromEnvironment()
    private var schedules: [[String]: Schedule] = [:]

    /// Plans `model`. Throws `.unsupported` naming the op, node and opset for anything outside
    /// the operator set, and `.invalidModel` for a graph that does not hold together.
    ///   - fuseQuantizedGroups: run QDQ groups as onnxruntime's CPU provider does (integer kernels,
    ///     see `QDQFusion`); false runs the float ops between Q and DQ as written.
    public init(model: Model, threads: Int? = nil, batchSize: Int? = nil, fuseQuantizedGroups: Bool = true) throws {
        try GraphCheck.validate(model)
        self.model = model
        let model = fuseQuantizedGroups ? QDQFusion.fuse(model) : model
        self.threads = max(1, threads ?? RuntimeThreads.fromEnvironment)
        context = ExecutionContext(threads: self.threads)
        BLAS.threads = self.threads

        let graph = model.graph
        var constants: [String: RuntimeTensor] = [:]
        var unavailable: [String: NNPipeError] = [:]
        for initializer in graph.initializers {
            do { constants[initializer.name] = try RuntimeTensor(initializer) } catch let error as NNPipeError {
                // A tensor type the kernels cannot hold (string class labels) is fine until a kernel needs it.
                if error.code != .unsupported { throw error }
                unavailable[initializer.name] = error
            }
        }
        // Sparse initializers run dense, as onnxruntime does: kernels read them like any weight.
        for sparse in graph.sparseInitializers {
            constants[sparse.name] = try RuntimeTensor(SparseInitializers.dense(sparse))
        }

        var opsets: [String: Int] = [:]
        for entry in model.opsetImports {
            opsets[entry.domain == "ai.onnx" ? "" : entry.domain] = Int(entry.version)
        }
        var steps: [Step] = []
        var producer: [String: Int] = [:]
        for node in graph.nodes {
            let domain = node.domain == "ai.onnx" ? "" : node.domain
            guard let opset = opsets[domain] else {
                throw NNPipeError(.invalidModel, "node '\(node.displayName)' uses domain '\(domain)', which the model does not import")
            }
            let kernel = try OperatorRegistry.kernel(for: node, domain: domain, opset: opset)
            // Fold nodes whose inputs are all constants (Constant, shape arithmetic on weights).
            let present = node.inputs.filter { !$0.isEmpty }
            if present.allSatisfy({ constants[$0] != nil }), !OperatorRegistry.isNondeterministic(node.opType) {
                let values = node.inputs.map { $0.isEmpty ? nil : constants[$0] }
                let results = try ExecutionPlan.execute(kernel, node: node, inputs: values, context: context)
                for (name, value) in zip(node.outputs, results) where !name.isEmpty {
                    if let value { constants[name] = value }
                }
                continue
            }
            for output in node.outputs where !output.isEmpty { producer[output] = steps.count }
            steps.append(Step(node: node, kernel: kernel))
        }
        chains = try PlanFusion.chains(steps: steps, constants: &constants, producer: producer,
                                       graphOutputs: Set(graph.outputs.map(\.name)), opset: opsets[""] ?? 0)
        (concatsInPlace, placedProducers) = ConcatInPlace.find(steps: steps, chains: chains, constants: constants, producer: producer,
                                                               graphOutputs: Set(graph.outputs.map(\.name)))
        concatGrowth = ConcatGrowth.find(steps: steps, producer: producer, inPlace: Set(concatsInPlace.keys))
        self.steps = steps
        for constant in constants.values { constant.storage.isPlanConstant = true }
        self.constants = constants
        self.unavailableConstants = unavailable
        self.producer = producer
        self.outputNames = graph.outputs.map(\.name)
        self.inputs = graph.runtimeInputs.map { input in
            guard let batchSize, case .tensor(let type, let shape?) = input.type, let first = shape.first,
                first.fixedValue == nil
            else { return input }
            var fixed = input
            fixed.type = .tensor(elementType: type, shape: [.fixed(batchSize)] + shape.dropFirst())
            return fixed
        }
        // With every input shape known, shape problems are raised now rather than midway through a run.
        if let batchSize {
            let shapes = ShapeInference.declaredShapes(of: model, batchSize: batchSize)
            if shapes.count == inputs.count { _ = try ShapeInference.infer(model, inputShapes: shapes) }
        }
    }

    /// Runs the model on `inputs` (by graph input name).
    /// - Parameters:
    ///   - outputs: the values to return, graph outputs by default; any intermediate name works.
    ///   - observe: called with every value as it is computed (graph inputs first), e.g. for calibration.
    public func run(
        inputs feeds: [String: RuntimeTensor], outputs wanted: [String]? = nil,
        observe: ((String, RuntimeTensor) -> Void)? = nil
    ) throws -> [String: RuntimeTensor] {
        let wanted = wanted ?? outputNames
        let schedule = try self.schedule(for: wanted)
        var values: [String: RuntimeTensor] = [:]
        for input in inputs {
            guard let value = feeds[input.name] else {
                if constants[input.name] != nil { continue }
                throw NNPipeError(.invalidData, "missing input '\(input.name)'")
            }
            try check(value, against: input)
            values[input.name] = value
            observe?(input.name, value)
        }
        for name in feeds.keys where values[name] == nil && !inputs.contains(where: { $0.name == name }) {
            if constants[name] == nil {
                throw NNPipeError(.invalidData, "'\(name)' is not an input of the model (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
            }
            values[name] = feeds[name]  // overriding an initializer that is also a graph input
        }

        let wantedNames = Set(wanted)
        var fusedAway = Set<Int>()
        // In-place Concats of this run: their outputs by Concat step, and the inputs written into them.
        var channelBuffers: [Int: ChannelBuffer] = [:]
        var placed = Set<String>()
        for stepIndex in schedule.steps {
            if fusedAway.contains(stepIndex) {
                for name in schedule.released[stepIndex] ?? [] { values[name] = nil }
                continue
            }
            var step = steps[stepIndex]
            var chain: FusedChain? = nil
            if observe == nil, let candidate = chains[stepIndex], candidate.steps.allSatisfy(schedule.stepSet.contains),
               !candidate.intermediates.contains(where: wantedNames.contains) {
                chain = candidate
                step = Step(node: candidate.node, kernel: candidate.kernel)
            }
            if let concat = concatsInPlace[stepIndex], let buffer = channelBuffers[stepIndex], buffer.tensor != nil {
                let started = profiler == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                let result: RuntimeTensor
                do {
                    result = try concat.finish(buffer, placed: placed, values: values)
                } catch let error as KernelError {
                    throw NNPipeError(error.code, "op 'Concat' (node '\(step.node.displayName)'): \(error.message)")
                }
                profiler?.record("Concat (in place)" + (profiler!.perNode ? " '\(step.node.displayName)' -> \(result.shape)" : ""),
                                 nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
                values[step.node.outputs[0]] = result
                for name in schedule.released[stepIndex] ?? [] { values[name] = nil }
                continue
            }
            // A Conv whose output only a Concat takes writes into the Concat's output (see `ConcatInPlace`).
            var stepContext = context
            if observe == nil, let producer = placedProducers[stepIndex], let concat = concatsInPlace[producer.concatStep],
               schedule.stepSet.contains(producer.concatStep), step.node.outputs == [concat.inputs[producer.input]],
               !wantedNames.contains(concat.inputs[producer.input]) {
                let buffer = channelBuffers[producer.concatStep] ?? ChannelBuffer(totalChannels: concat.totalChannels)
                channelBuffers[producer.concatStep] = buffer
                stepContext.destination = ChannelDestination(buffer: buffer, channelOffset: concat.channelOffset(of: producer.input),
                                                             channels: concat.channels[producer.input])
            }
            if observe == nil, chain == nil { stepContext.concatGrowth = concatGrowth[stepIndex] }
            let arguments = step.node.inputs.map { name -> RuntimeTensor? in
                name.isEmpty ? nil : (values[name] ?? constants[name])
            }
            for (name, argument) in zip(step.node.inputs, arguments) where !name.isEmpty && argument == nil {
                if let reason = unavailableConstants[name] {
                    throw NNPipeError(.unsupported, "node '\(step.node.displayName)' (op '\(step.node.opType)') needs \(reason.message)")
                }
                throw NNPipeError(.invalidData, "node '\(step.node.displayName)' needs '\(name)', which was not fed")
            }
            let started = profiler == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let results: [RuntimeTensor?]
            do {
                results = try ExecutionPlan.execute(step.kernel, node: step.node, inputs: arguments, context: stepContext)
                if stepContext.destination != nil, results.first.map({ $0 == nil }) ?? false { placed.insert(step.node.outputs[0]) }
            } catch is FusionDeclined {
                // The chain's inputs do not fit its fused form (a broadcasting residual): run its nodes one by one.
                step = steps[stepIndex]
                chain = nil
                let arguments = step.node.inputs.map { name -> RuntimeTensor? in name.isEmpty ? nil : (values[name] ?? constants[name]) }
                results = try ExecutionPlan.execute(step.kernel, node: step.node, inputs: arguments, context: context)
            }
            if let profiler {
                var key = chain.map { $0.steps.map { steps[$0].node.opType }.joined(separator: "+") } ?? step.node.opType
                if profiler.perNode {
                    key += " '\(step.node.displayName)' -> \(results.first??.shape.description ?? "-")"
                }
                profiler.record(key, nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
            }
            if let chain { fusedAway.formUnion(chain.steps.dropFirst()) }
            for (name, result) in zip(step.node.outputs, results) where !name.isEmpty {
                guard let result else { continue }
                values[name] = result
                observe?(name, result)
            }
            // Drop what no later step reads, so peak memory follows the live set.
            for name in schedule.released[stepIndex] ?? [] { values[name] = nil }
        }

        profiler?.report()
        var results: [String: RuntimeTensor] = [:]
        for name in wanted {
            guard let value = values[name] ?? constants[name] ?? feeds[name] else {
                throw NNPipeError(.invalidModel, "output '\(name)' was not produced")
            }
            results[name] = value
        }
        return results
    }

    /// Runs with one float input and returns the first graph output's floats: the common case.
    public func run(_ input: RuntimeTensor) throws -> RuntimeTensor {
        guard let first = inputs.first, let output = outputNames.first else {
            throw NNPipeError(.invalidModel, "the model has no inputs or no outputs")
        }
        return try run(inputs: [first.name: input], outputs: [output])[output]!
    }

    // MARK: Scheduling

    struct Schedule {
        /// Step indices to run, in order.
        let steps: [Int]
        /// Values to release after each step (their last reader).
        let released: [Int: [String]]
        let stepSet: Set<Int>
    }

    private func schedule(for wanted: [String]) throws -> Schedule {
        scheduleLock.lock()
        defer { scheduleLock.unlock() }
        if let cached = schedules[wanted] { return cached }
        var needed = Set<Int>()
        var pending: [String] = wanted
        let inputNames = Set(inputs.map(\.name))
        while let name = pending.popLast() {
            guard let index = producer[name] else {
                if constants[name] == nil && unavailableConstants[name] == nil && !inputNames.contains(name) {
                    throw NNPipeError(.invalidData, "'\(name)' is not a value of the model")
                }
                continue
            }
            if needed.insert(index).inserted { pending += steps[index].node.inputs.filter { !$0.isEmpty } }
        }
        let order = needed.sorted()
        var lastUse: [String: Int] = [:]
        for index in order {
            for name in steps[index].node.inputs where !name.isEmpty { lastUse[name] = index }
            // An output nobody reads dies right after its producer.
            for name in steps[index].node.outputs where !name.isEmpty && lastUse[name] == nil { lastUse[name] = index }
        }
        let kept = Set(wanted)
        var released: [Int: [String]] = [:]
        for (name, index) in lastUse where !kept.contains(name) && constants[name] == nil {
            released[index, default: []].append(name)
        }
        let schedule = Schedule(steps: order, released: released, stepSet: Set(order))
        schedules[wanted] = schedule
        return schedule
    }

    private func check(_ value: RuntimeTensor, against input: ValueInfo) throws {
        guard case .tensor(let type, let shape) = input.type else { return }
        if type != value.dataType {
            throw NNPipeError(.invalidData, "input '\(input.name)' expects \(type), got \(value.dataType)")
        }
        guard let shape else { return }
        let matches = shape.count == value.shape.count
            && zip(shape, value.shape).allSatisfy { dimension, size in dimension.fixedValue.map { $0 == size } ?? true }
        if !matches {
            let expected = "[" + shape.map(\.description).joined(separator: ", ") + "]"
            throw NNPipeError(.invalidData, "input '\(input.name)' expects shape \(expected), got \(value.shape)")
        }
    }

    static func execute(_ kernel: any Kernel, node: Node, inputs: [RuntimeTensor?], context: ExecutionContext) throws
        -> [RuntimeTensor?]
    {
        do {
            let results = try kernel.run(inputs, context)
            return results
        } catch let error as KernelError {
            let shapes = inputs.map { $0.map(\.description) ?? "-" }.joined(separator: ", ")
            throw NNPipeError(error.code, "op '\(node.opType)' (node '\(node.displayName)') with inputs (\(shapes)): \(error.message)")
        }
    }
}

extension ExecutionPlan {
    /// Every op the runtime runs: default-domain names, then `ai.onnx.ml.<name>`.
    public static var supportedOperators: [String] { OperatorRegistry.supportedOperators }
}

extension ExecutionPlan {
    /// Returns the runtime's idle tensor memory (kept for reuse between runs, at most 2 GiB) to the system.
    public static func releaseCachedMemory() { StoragePool.shared.drain() }
}
