import NNPipeCore

/// MaxPool (the gradient goes to each window's first largest input) and AveragePool
/// (spread evenly over the window, counting pads when `count_include_pad`).
final class PoolingOperator: DifferentiableOperator {
    enum Kind { case maximum, average }
    let kind: Kind
    let node: Node
    let countIncludesPad: Bool
    /// Flat input index each max-pool output took its value from.
    private var winners: [Int] = []

    init(node: Node, kind: Kind) {
        self.node = node
        self.kind = kind
        countIncludesPad = node.integer("count_include_pad", default: 0) != 0
    }

    private func geometry(_ x: TrainingTensor) throws -> WindowGeometry {
        guard x.rank == 3 || x.rank == 4, let kernel = node.integers("kernel_shape") else {
            throw NNPipeError(.unsupported, "\(node.opType) training supports 1-D and 2-D pooling with kernel_shape, got input \(x.shape)")
        }
        return try WindowGeometry(node: node, spatial: Array(x.shape[2...]), kernel: kernel,
                                  ceilMode: node.integer("ceil_mode", default: 0) != 0)
    }

    /// Calls `body(outputIndex, [inputIndex])` per output of one plane.
    private func windows(_ geometry: WindowGeometry, _ body: (Int, Int, [Int]) -> Void) {
        // One tap list reused for every window: allocating one per output dominated training profiles.
        var taps: [Int] = []
        taps.reserveCapacity(geometry.kernelHeight * geometry.kernelWidth)
        for outputRow in 0..<geometry.outputHeight {
            for outputColumn in 0..<geometry.outputWidth {
                taps.removeAll(keepingCapacity: true)
                var total = 0
                for kernelRow in 0..<geometry.kernelHeight {
                    let row = outputRow * geometry.strideHeight - geometry.padTop + kernelRow * geometry.dilationHeight
                    for kernelColumn in 0..<geometry.kernelWidth {
                        let column = outputColumn * geometry.strideWidth - geometry.padLeft + kernelColumn * geometry.dilationWidth
                        // Pads count toward the divisor only up to the padded input's edge (ceil_mode windows spill past it).
                        let padded = row < geometry.inputHeight + geometry.padTop && column < geometry.inputWidth + geometry.padLeft
                        if row >= 0, row < geometry.inputHeight, column >= 0, column < geometry.inputWidth {
                            taps.append(row * geometry.inputWidth + column)
                            total += 1
                        } else if padded { total += 1 }
                    }
                }
                body(outputRow * geometry.outputWidth + outputColumn, countIncludesPad ? total : taps.count, taps)
            }
        }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let x = try required(inputs, 0, "X")
        let geometry = try geometry(x)
        let planes = x.shape[0] * x.shape[1]
        var output = [Float](repeating: 0, count: planes * geometry.outputSpatial)
        // A local copy, stored once at the end: writing the class's property per element pays an exclusivity check each time.
        var winners = kind == .maximum ? [Int](repeating: -1, count: output.count) : []
        defer { self.winners = winners }
        for plane in 0..<planes {
            let inputBase = plane * geometry.inputSpatial
            let outputBase = plane * geometry.outputSpatial
            windows(geometry) { position, divisor, taps in
                switch kind {
                case .maximum:
                    var best = -Float.infinity
                    var winner = -1
                    for tap in taps where winner < 0 || x.values[inputBase + tap] > best {
                        best = x.values[inputBase + tap]
                        winner = inputBase + tap
                    }
                    output[outputBase + position] = best
                    winners[outputBase + position] = winner
                case .average:
                    var sum: Float = 0
                    for tap in taps { sum += x.values[inputBase + tap] }
                    output[outputBase + position] = divisor > 0 ? sum / Float(divisor) : 0
                }
            }
        }
        let spatial = x.rank == 4 ? [geometry.outputHeight, geometry.outputWidth] : [geometry.outputWidth]
        return [TrainingTensor(shape: Array(x.shape[..<2]) + spatial, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let x = try required(inputs, 0, "X")
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var result = [Float](repeating: 0, count: x.elementCount)
        switch kind {
        case .maximum:
            for (position, winner) in winners.enumerated() where winner >= 0 { result[winner] += upstream.values[position] }
        case .average:
            let geometry = try geometry(x)
            for plane in 0..<(x.shape[0] * x.shape[1]) {
                let inputBase = plane * geometry.inputSpatial
                let outputBase = plane * geometry.outputSpatial
                windows(geometry) { position, divisor, taps in
                    guard divisor > 0 else { return }
                    let share = upstream.values[outputBase + position] / Float(divisor)
                    for tap in taps { result[inputBase + tap] += share }
                }
            }
        }
        return [TrainingTensor(shape: x.shape, values: result)]
    }
}

/// GlobalAveragePool: the mean of every plane, spatial axes kept as 1.
final class GlobalAveragePoolOperator: DifferentiableOperator {
    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let x = try required(inputs, 0, "X")
        guard x.rank >= 3 else { throw NNPipeError(.invalidModel, "GlobalAveragePool needs rank ≥ 3, got \(x.shape)") }
        let spatial = x.shape[2...].reduce(1, *)
        let planes = x.shape[0] * x.shape[1]
        var output = [Float](repeating: 0, count: planes)
        for plane in 0..<planes {
            var sum: Float = 0
            for position in 0..<spatial { sum += x.values[plane * spatial + position] }
            output[plane] = sum / Float(spatial)
        }
        return [TrainingTensor(shape: Array(x.shape[..<2]) + Array(repeating: 1, count: x.rank - 2), values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let x = try required(inputs, 0, "X")
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        let spatial = x.shape[2...].reduce(1, *)
        var result = [Float](repeating: 0, count: x.elementCount)
        for plane in 0..<upstream.elementCount {
            let share = upstream.values[plane] / Float(spatial)
            for position in 0..<spatial { result[plane * spatial + position] = share }
        }
        return [TrainingTensor(shape: x.shape, values: result)]
    }
}
