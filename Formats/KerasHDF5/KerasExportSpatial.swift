import NNPipeCore

/// Pad, Slice, Resize, Gather, Cast and PRelu back to ZeroPadding, Cropping, UpSampling, Embedding and PReLU.
extension KerasExporter {
    mutating func exportPad(_ node: Node) throws {
        let output = node.outputs[0]
        let source = try channelsLast(try input(node, 0), name: output)
        guard (node.attribute("mode")?.stringValue ?? "constant") == "constant" else { throw noEquivalent(node, "pads by reflection or edge") }
        if node.inputs.count > 2, !node.inputs[2].isEmpty, scalar(node.inputs[2]) != 0 { throw noEquivalent(node, "pads with a value other than 0") }
        if node.inputs.count > 3, !node.inputs[3].isEmpty { throw noEquivalent(node, "pads selected axes") }
        guard node.inputs.count > 1, let pads = constant(node.inputs[1])?.integerValues().map({ $0.map(Int.init) }) else {
            throw noEquivalent(node, "has computed pads")
        }
        let rank = source.rank
        guard pads.count == 2 * rank, pads[0] == 0, pads[1] == 0, pads[rank] == 0, pads[rank + 1] == 0, pads.allSatisfy({ $0 >= 0 }) else {
            throw noEquivalent(node, "pads the batch or channel axis")
        }
        guard pads.allSatisfy({ $0 <= 1 << 24 }) else {
            throw NNPipeError(.invalidModel, "node '\(node.displayName)' (Pad): pads \(pads) must be from 0 to \(1 << 24)")
        }
        let spatialRank = rank - 2
        guard spatialRank == 1 || spatialRank == 2 else { throw noEquivalent(node, "pads \(spatialRank)-D inputs") }
        let pairs = (0..<spatialRank).map { (pads[$0 + 2], pads[$0 + 2 + rank]) }
        let padded = try zeroPadded(source, pairs, name: output)
        layers[padded.layer].baseName = output
        values[output] = padded
    }

    mutating func exportSlice(_ node: Node) throws {
        let output = node.outputs[0]
        let source = try channelsLast(try input(node, 0), name: output)
        let rank = source.rank
        func list(_ position: Int) -> [Int64]? {
            position < node.inputs.count && !node.inputs[position].isEmpty ? constant(node.inputs[position])?.integerValues() : nil
        }
        guard let starts = list(1), let ends = list(2) else { throw noEquivalent(node, "has computed bounds") }
        let axes = list(3)?.map { Int($0 < 0 ? $0 + Int64(rank) : $0) } ?? Array(0..<starts.count)
        guard list(4)?.allSatisfy({ $0 == 1 }) ?? true else { throw noEquivalent(node, "steps by more than 1") }
        let spatialRank = rank - 2
        guard spatialRank == 1 || spatialRank == 2 else { throw noEquivalent(node, "crops \(spatialRank)-D inputs") }
        var crops = Array(repeating: (0, 0), count: spatialRank)
        for (position, axis) in axes.enumerated() {
            guard axis >= 2 else { throw noEquivalent(node, "slices the batch or channel axis") }
            let start = Int(starts[position]), end = ends[position]
            guard start >= 0 else { throw noEquivalent(node, "starts from the end") }
            let extent = source.spatial[axis - 2]
            let endCrop: Int
            if end < 0 { endCrop = Int(-end) } else if let extent, end >= Int64(extent) { endCrop = 0 } else if let extent {
                endCrop = extent - Int(end)
            } else if end >= Int64(Int32.max) { endCrop = 0 } else {
                throw noEquivalent(node, "ends at an index of an axis of unknown size")
            }
            crops[axis - 2] = (start, endCrop)
        }
        let cropping: JSONValue = spatialRank == 1 ? Self.numbers([crops[0].0, crops[0].1]) : .array(crops.map { Self.numbers([$0.0, $0.1]) })
        let spatial = zip(source.spatial, crops).map { extent, crop in extent.map { $0 - crop.0 - crop.1 } }
        addLayer("Cropping\(spatialRank)D", name: output, config: [("cropping", cropping)], inputs: [source], output: output,
                 relation: .channelsLast, shape: [source.shape[0]] + spatial + [source.channels])
    }

    mutating func exportResize(_ node: Node) throws {
        let output = node.outputs[0]
        let source = try channelsLast(try input(node, 0), name: output)
        guard source.rank == 4, node.inputs.count > 2, let scales = constant(node.inputs[2])?.floatValues(), scales.count == 4,
              scales[0] == 1, scales[1] == 1, scales[2] == scales[2].rounded(), scales[3] == scales[3].rounded(), scales[2] >= 1, scales[3] >= 1
        else { throw noEquivalent(node, "is not an integer upsampling of height and width") }
        let mode = node.attribute("mode")?.stringValue ?? "nearest"
        let transform = node.attribute("coordinate_transformation_mode")?.stringValue ?? "half_pixel"
        let interpolation: String
        switch (mode, transform) {
        case ("nearest", "asymmetric"): interpolation = "nearest"
        case ("linear", "half_pixel"), ("linear", "pytorch_half_pixel"): interpolation = "bilinear"
        default: throw noEquivalent(node, "uses \(mode) with \(transform) coordinates")
        }
        let size = [Int(scales[2]), Int(scales[3])]
        let spatial = zip(source.spatial, size).map { extent, factor in extent.map { $0 * factor } }
        addLayer("UpSampling2D", name: output, config: [("size", Self.numbers(size)), ("data_format", .string("channels_last")),
                                                       ("interpolation", .string(interpolation))],
                 inputs: [source], output: output, relation: .channelsLast, shape: [source.shape[0]] + spatial + [source.channels])
    }

    mutating func exportGather(_ node: Node) throws {
        guard (node.attribute("axis")?.intValue ?? 0) == 0, let table = constant(node.inputs[0]), table.shape.count == 2,
              let values = table.floatValues() else {
            throw noEquivalent(node, "is not a lookup in a constant 2-D table")
        }
        let indices = same(try input(node, 1), name: node.outputs[0])
        let output = node.outputs[0]
        addLayer("Embedding", name: output, config: [("input_dim", Self.number(table.shape[0])), ("output_dim", Self.number(table.shape[1]))],
                 inputs: [indices], weights: [("embeddings", Tensor(name: "embeddings", shape: table.shape, values: values))],
                 sharing: [node.inputs[0]], output: output, relation: .same, shape: indices.shape + [table.shape[1]])
    }

    /// A Cast that only feeds Gather indices is Keras's own cast inside Embedding; float-to-float casts are no-ops here.
    mutating func exportCast(_ node: Node) throws {
        let source = try input(node, 0)
        let target = DataType(rawValue: Int32(node.attribute("to")?.intValue ?? 0)) ?? .undefined
        let feedsIndices = (consumers[node.outputs[0]] ?? []).allSatisfy { graph.nodes[$0].opType == "Gather" && graph.nodes[$0].inputs[1] == node.outputs[0] }
        guard (target.isInteger && feedsIndices && !outputNames.contains(node.outputs[0])) || (target == .float && source.dataType.isFloatingPoint) else {
            throw noEquivalent(node, "casts to \(target)")
        }
        values[node.outputs[0]] = source
    }

    mutating func exportParametricRelu(_ node: Node) throws {
        let source = try input(node, 0)
        var slope = try floats(node, 1, "the slope")
        let rank = source.rank
        // Broadcast the slope to the per-sample rank (numpy rules: align on the right).
        var shape = slope.shape
        if shape.count == rank, shape.first == 1 { shape.removeFirst() }
        while shape.count < rank - 1 { shape.insert(1, at: 0) }
        guard shape.count == rank - 1 else { throw noEquivalent(node, "has a slope of shape \(slope.shape)") }
        if source.relation == .channelsLast {
            let permutation = Array(1..<(rank - 1)) + [0]
            slope.values = WeightLayout.permute(slope.values, shape: shape, permutation: permutation)
            shape = permutation.map { shape[$0] }
        } else if case .permutedFeatures = source.relation, slope.values.count > 1 {
            throw noEquivalent(node, "has per-feature slopes after a flatten")
        }
        let shared = shape.enumerated().filter { $0.element == 1 && source.shape[$0.offset + 1] != 1 }.map { $0.offset + 1 }
        let output = node.outputs[0]
        addLayer("PReLU", name: output, config: [("shared_axes", shared.isEmpty ? .null : Self.numbers(shared))], inputs: [source],
                 weights: [("alpha", Tensor(name: "alpha", shape: shape, values: slope.values))], sharing: [node.inputs[1], "\(source.relation)"], output: output,
                 relation: source.relation, shape: source.shape)
    }
}
