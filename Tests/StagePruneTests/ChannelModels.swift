import NNPipeCore
@testable import StagePrune

/// Graphs with the channel couplings that broke Torch-Pruning and NNI's ModelSpeedup.
enum ChannelModels {
    /// stem -> two residual blocks (conv-BN-relu-conv-BN + skip) -> GAP -> Flatten -> Gemm.
    static func residualChain() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 8, 8])
        var x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 8)
        x = builder.batchNorm("stem_bn", x, channels: 8)
        x = builder.node("Relu", "stem_relu", [x])
        for block in 1...2 {
            var y = builder.conv("block\(block)a", x, inputChannels: 8, outputChannels: 12)
            y = builder.batchNorm("block\(block)a_bn", y, channels: 12)
            y = builder.node("Relu", "block\(block)a_relu", [y])
            y = builder.conv("block\(block)b", y, inputChannels: 12, outputChannels: 8)
            y = builder.batchNorm("block\(block)b_bn", y, channels: 8)
            x = builder.node("Add", "block\(block)_add", [x, y])
            x = builder.node("Relu", "block\(block)_relu", [x])
        }
        x = builder.node("GlobalAveragePool", "pool", [x])
        x = builder.node("Flatten", "flatten", [x])
        x = builder.gemm("head", x, inputFeatures: 8, outputFeatures: 10)
        return builder.model(output: x)
    }

    /// conv -> Concat(x, x) -> conv: the same tensor twice.
    static func concatSameTensorTwice() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 6, 6])
        var x = builder.conv("producer", "input", inputChannels: 3, outputChannels: 8)
        x = builder.node("Relu", "relu", [x])
        x = builder.node("Concat", "concat", [x, x], attributes: [.int("axis", 1)])
        x = builder.conv("consumer", x, inputChannels: 16, outputChannels: 4)
        return builder.model(output: x)
    }

    /// Concat of two convs of different widths and of the graph input itself.
    static func concatMixedSources() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 6, 6])
        let a = builder.conv("left", "input", inputChannels: 3, outputChannels: 8)
        var b = builder.conv("right", "input", inputChannels: 3, outputChannels: 4, kernel: 1)
        b = builder.batchNorm("right_bn", b, channels: 4)
        var x = builder.node("Concat", "concat", [a, "input", b], attributes: [.int("axis", 1)])
        x = builder.node("Relu", "relu", [x])
        x = builder.conv("consumer", x, inputChannels: 15, outputChannels: 4)
        return builder.model(output: x)
    }

    /// conv-BN-relu -> depthwise 3x3 (multiplier 2) -BN-relu -> pointwise -> head.
    static func depthwise() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 8, 8])
        var x = builder.conv("expand", "input", inputChannels: 3, outputChannels: 8)
        x = builder.batchNorm("expand_bn", x, channels: 8)
        x = builder.node("Relu", "expand_relu", [x])
        x = builder.conv("depthwise", x, inputChannels: 8, outputChannels: 16, group: 8)
        x = builder.batchNorm("depthwise_bn", x, channels: 16)
        x = builder.node("Clip", "relu6", [x], attributes: [])
        x = builder.conv("pointwise", x, inputChannels: 16, outputChannels: 12, kernel: 1)
        x = builder.node("Relu", "pointwise_relu", [x])
        x = builder.conv("head", x, inputChannels: 12, outputChannels: 4, kernel: 1)
        return builder.model(output: x)
    }

    /// conv (4x4 feature map) -> Flatten or Reshape [1, C·16] -> Dense -> Dense.
    static func flattenToDense(reshape: Bool) -> Model {
        var builder = ModelBuilder(shape: [1, 3, 4, 4])
        var x = builder.conv("features", "input", inputChannels: 3, outputChannels: 8)
        x = builder.node("Relu", "relu", [x])
        if reshape {
            builder.graph.initializers.append(Tensor(name: "flat_shape", shape: [2], values: [Int64(1), 128]))
            x = builder.node("Reshape", "flatten", [x, "flat_shape"])
        } else {
            x = builder.node("Flatten", "flatten", [x])
        }
        x = builder.gemm("dense", x, inputFeatures: 128, outputFeatures: 16, transposed: false)
        x = builder.node("Relu", "dense_relu", [x])
        x = builder.matMul("classifier", x, inputFeatures: 16, outputFeatures: 10)
        return builder.model(output: x)
    }

    /// conv -> Split [4, 4] -> two convs -> Concat -> conv, plus a channel Slice branch added in.
    static func splitAndSlice() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 6, 6])
        let x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 8)
        builder.node("Split", "split", [x], outputs: ["part0", "part1"], attributes: [.int("axis", 1)])
        let left = builder.conv("left", "part0", inputChannels: 4, outputChannels: 6)
        let right = builder.conv("right", "part1", inputChannels: 4, outputChannels: 6)
        builder.graph.initializers += [
            Tensor(name: "slice_starts", shape: [1], values: [Int64(2)]), Tensor(name: "slice_ends", shape: [1], values: [Int64(8)]),
            Tensor(name: "slice_axes", shape: [1], values: [Int64(1)]),
        ]
        let sliced = builder.node("Slice", "slice", [x, "slice_starts", "slice_ends", "slice_axes"])
        let side = builder.conv("side", sliced, inputChannels: 6, outputChannels: 6, kernel: 1)
        var y = builder.node("Concat", "concat", [left, right], attributes: [.int("axis", 1)])
        y = builder.conv("merge", y, inputChannels: 12, outputChannels: 6, kernel: 1)
        y = builder.node("Add", "add", [y, side])
        y = builder.conv("head", y, inputChannels: 6, outputChannels: 2, kernel: 1)
        return builder.model(output: y)
    }
}
