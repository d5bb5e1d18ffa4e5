import Foundation
import NNPipeCore
import NNPipeRuntime

/// Runs models on nnpipe's CPU runtime with a seeded input: the masked-vs-removed proof of
/// structured pruning and the latency figures in the report. Models the runtime cannot run
/// (unsupported ops, non-float or dynamic inputs) give nil, and the report says so.
enum RuntimeProbe {
    /// Pseudo-random inputs in [-1, 1) for every float input, symbolic dimensions taken as 1.
    static func inputs(for model: Model, seed: UInt64 = 0x5EED) -> [String: RuntimeTensor]? {
        var state = seed
        var feeds: [String: RuntimeTensor] = [:]
        for input in model.graph.runtimeInputs {
            guard case .tensor(.float, let dimensions?) = input.type else { return nil }
            let shape = dimensions.enumerated().map { $0.element.fixedValue ?? 1 }
            guard shape.reduce(1, *) <= 1 << 24 else { return nil }
            let values = (0..<shape.reduce(1, *)).map { _ -> Float in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(state >> 40) / Float(1 << 24) * 2 - 1
            }
            feeds[input.name] = RuntimeTensor(shape: shape, floats: values)
        }
        return feeds
    }

    static func plan(_ model: Model) -> ExecutionPlan? {
        try? ExecutionPlan(model: model, batchSize: 1)
    }

    /// Largest |a − b| over all outputs, and the largest |a| (for a relative bound).
    static func difference(_ first: Model, _ second: Model, feeds: [String: RuntimeTensor]) throws -> (difference: Float, magnitude: Float)? {
        guard let a = plan(first), let b = plan(second) else { return nil }
        let left = try a.run(inputs: feeds)
        let right = try b.run(inputs: feeds)
        var difference: Float = 0
        var magnitude: Float = 0
        var compared = 0
        // Float outputs carry the evidence; labels and indices derived from them are skipped.
        for (name, value) in left where value.dataType == .float {
            guard let other = right[name], value.shape == other.shape else { return (.infinity, 0) }
            for (x, y) in zip(value.floats, other.floats) {
                difference = max(difference, abs(x - y))
                magnitude = max(magnitude, abs(x))
            }
            compared += 1
        }
        return compared == 0 ? nil : (difference, magnitude)
    }

    /// Median wall times in milliseconds of two models on the same input, their runs interleaved
    /// (first, second, first, ...) so both see the same machine: at least `runs` runs each and
    /// `span` of them (up to 1000 each), after `span` of interleaved untimed runs. Timed one after
    /// the other, the first model took the cost of worker threads waking from the ONNX writing
    /// before: the digits MLP read 0.28 ms before pruning and 0.17 ms after, for the same arithmetic.
    static func latencies(_ first: Model, _ second: Model, feeds: [String: RuntimeTensor], runs: Int = 5,
                          span: Duration = .milliseconds(50)) -> (first: Double, second: Double)? {
        guard let firstPlan = plan(first), let secondPlan = plan(second) else { return nil }
        let plans = [firstPlan, secondPlan]
        let clock = ContinuousClock()
        let warmUpStart = clock.now
        repeat {
            for plan in plans { guard (try? plan.run(inputs: feeds)) != nil else { return nil } }
        } while clock.now - warmUpStart < span
        var times: [[Double]] = [[], []]
        let start = clock.now
        while times[0].count < runs || (clock.now - start < span * 2 && times[0].count < 1000) {
            for (index, plan) in plans.enumerated() {
                let elapsed = clock.measure { _ = try? plan.run(inputs: feeds) }
                times[index].append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            }
        }
        let medians = times.map { $0.sorted()[$0.count / 2] }
        return (medians[0], medians[1])
    }
}
