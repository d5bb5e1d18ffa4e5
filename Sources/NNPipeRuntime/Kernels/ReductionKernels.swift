import Foundation
import NNPipeCore

/// Softmax, LogSoftmax, ReduceMean/Sum/Max/Min and ArgMax/ArgMin.
enum ReductionKernels {
    /// Softmax before opset 13 flattens to 2-D at `axis` (default 1); from 13 it works along `axis` (default -1).
    static func softmax(logarithm: Bool) -> OperatorRegistry.Factory {
        { spec in
            let flattens = spec.opset < 13
            let axis = spec.int("axis", flattens ? 1 : -1)
            return ClosureKernel { inputs, context in
                let input = try inputs.required(0)
                guard input.dataType == .float else { throw unsupportedType(input.dataType) }
                let dimension = input.rank == 0 ? 0 : try normalizedAxis(axis, rank: input.rank)
                let outer = input.shape[..<dimension].reduce(1, *)
                let length = flattens ? input.shape[dimension...].reduce(1, *) : (input.rank == 0 ? 1 : input.shape[dimension])
                let inner = flattens ? 1 : input.shape[(dimension + 1)...].reduce(1, *)
                let result = RuntimeTensor(dataType: .float, shape: input.shape)
                input.withUnsafeBuffer(of: Float.self) { source in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        let lanes = outer * inner
                        parallelChunks(lanes, threads: source.count >= parallelElementThreshold ? context.threads : 1) { range in
                            for lane in range {
                                let base = (lane / inner) * length * inner + lane % inner
                                var maximum = -Float.infinity
                                for index in 0..<length { maximum = max(maximum, source[base + index * inner]) }
                                var total: Float = 0
                                for index in 0..<length {
                                    let value = expf(source[base + index * inner] - maximum)
                                    output[base + index * inner] = value
                                    total += value
                                }
                                if logarithm {
                                    let logTotal = logf(total)
                                    for index in 0..<length { output[base + index * inner] = source[base + index * inner] - maximum - logTotal }
                                } else {
                                    let scale = 1 / total
                                    for index in 0..<length { output[base + index * inner] *= scale }
                                }
                            }
                        }
                    }
                }
                return [result]
            }
        }
    }

    enum Reduction: Sendable { case sum, mean, maximum, minimum, sumSquare, product, l1, l2, logSumExp }

    /// Reduce ops take `axes` as an attribute before `inputOpset` (13 for ReduceSum, 18 for the others).
    static func reduce(_ reduction: Reduction, inputOpset: Int) -> OperatorRegistry.Factory {
        { spec in
            let keepDimensions = spec.int("keepdims", 1) == 1
            let noopWithEmptyAxes = spec.int("noop_with_empty_axes", 0) == 1
            let attributeAxes = spec.opset < inputOpset ? spec.ints("axes") : nil
            let fromInput = spec.opset >= inputOpset
            return ClosureKernel { inputs, _ in
                let input = try inputs.required(0)
                let requested = fromInput ? inputs.optional(1)?.integers.map { Int($0) } : attributeAxes
                if (requested ?? []).isEmpty && noopWithEmptyAxes { return [input] }
                let axes = try Set((requested?.isEmpty == false ? requested! : Array(0..<input.rank)).map { try normalizedAxis($0, rank: input.rank) })
                return [try reduceAxes(input, axes: axes, keepDimensions: keepDimensions, reduction)]
            }
        }
    }

    struct Reducer: NumericVisitor {
        let input: RuntimeTensor
        let axes: Set<Int>
        let keepDimensions: Bool
        let reduction: Reduction

        func visit<Element: NumericElement>(_ type: Element.Type) throws -> RuntimeTensor {
            let keptShape = input.shape.indices.map { axes.contains($0) ? 1 : input.shape[$0] }
            let outputShape = keepDimensions ? keptShape : input.shape.indices.filter { !axes.contains($0) }.map { input.shape[$0] }
            let outputCount = keptShape.reduce(1, *)
            let reducedCount = input.shape.indices.filter { axes.contains($0) }.map { input.shape[$0] }.reduce(1, *)
            let initial: Double = switch reduction {
            case .maximum: Element.lowest.doubleValue
            case .minimum: Element.highest.doubleValue
            case .product: 1
            case .logSumExp: 0
            default: 0
            }
            var accumulators = [Double](repeating: initial, count: outputCount)
            // For logSumExp, subtract each output's maximum first for stability.
            var maxima = [Double](repeating: -.infinity, count: outputCount)
            let outputStrides = contiguousStrides(keptShape).enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
            let rank = input.rank
            input.withUnsafeBuffer(of: Element.self) { source in
                func walk(_ body: (Int, Double) -> Void) {
                    if rank == 0 {
                        if source.count > 0 { body(0, source[0].doubleValue) }
                        return
                    }
                    guard source.count > 0 else { return }
                    var index = [Int](repeating: 0, count: rank)
                    var outputOffset = 0
                    for position in 0..<source.count {
                        body(outputOffset, source[position].doubleValue)
                        var axis = rank - 1
                        while axis >= 0 {
                            index[axis] += 1
                            outputOffset += outputStrides[axis]
                            if index[axis] < input.shape[axis] { break }
                            outputOffset -= outputStrides[axis] * input.shape[axis]
                            index[axis] = 0
                            axis -= 1
                        }
                    }
                }
                if reduction == .logSumExp { walk { maxima[$0] = max(maxima[$0], $1) } }
                walk { slot, value in
                    switch reduction {
                    case .sum, .mean: accumulators[slot] += value
                    case .maximum: if value > accumulators[slot] || value.isNaN { accumulators[slot] = value }
                    case .minimum: if value < accumulators[slot] || value.isNaN { accumulators[slot] = value }
                    case .sumSquare, .l2: accumulators[slot] += value * value
                    case .l1: accumulators[slot] += abs(value)
                    case .product: accumulators[slot] *= value
                    case .logSumExp: accumulators[slot] += exp(value - maxima[slot])
                    }
                }
            }
            switch reduction {
            case .mean: accumulators = accumulators.map { $0 / Double(reducedCount) }
            case .l2: accumulators = accumulators.map { $0.squareRoot() }
            case .logSumExp: accumulators = zip(accumulators, maxima).map { reducedCount == 0 ? -.infinity : log($0) + $1 }
            default: break
            }
            return RuntimeTensor(shape: outputShape, values: accumulators.map { Element(converting: $0) })
        }
    }

    static func reduceAxes(_ input: RuntimeTensor, axes: Set<Int>, keepDimensions: Bool, _ reduction: Reduction) throws -> RuntimeTensor {
        try visitNumeric(input.dataType, Reducer(input: input, axes: axes, keepDimensions: keepDimensions, reduction: reduction))
    }

    static func argument(maximum: Bool) -> OperatorRegistry.Factory {
        { spec in
            let axis = spec.int("axis", 0)
            let keepDimensions = spec.int("keepdims", 1) == 1
            let selectLast = spec.int("select_last_index", 0) == 1
            return ClosureKernel { inputs, _ in
                let input = try inputs.required(0)
                let dimension = try normalizedAxis(axis, rank: input.rank)
                let values = try doubleValues(input)
                let outer = input.shape[..<dimension].reduce(1, *)
                let length = input.shape[dimension]
                let inner = input.shape[(dimension + 1)...].reduce(1, *)
                var result = [Int64](repeating: 0, count: outer * inner)
                for lane in 0..<(outer * inner) {
                    let base = (lane / inner) * length * inner + lane % inner
                    var best = 0
                    for index in 1..<max(length, 1) {
                        let value = values[base + index * inner]
                        let current = values[base + best * inner]
                        let better = maximum ? (selectLast ? value >= current : value > current) : (selectLast ? value <= current : value < current)
                        if better { best = index }
                    }
                    result[lane] = Int64(best)
                }
                var shape = input.shape
                if keepDimensions { shape[dimension] = 1 } else { shape.remove(at: dimension) }
                return [RuntimeTensor(shape: shape, values: result)]
            }
        }
    }
}
