/// The ops of kernel files other than activations and arithmetic, by name and first opset.
extension OperatorRegistry {
    static var extraDefaultDomain: [String: Entry] {
        var table: [String: Entry] = [:]
        func add(_ name: String, since: Int = 1, _ factory: @escaping Factory) { table[name] = Entry(since: since, factory: factory) }
        add("Constant", ShapeKernels.constant)
        add("ConstantOfShape", since: 9, ShapeKernels.constantOfShape)
        add("Identity", ShapeKernels.identity)
        add("Dropout", ShapeKernels.dropout)
        add("Flatten", ShapeKernels.flatten)
        add("Reshape", since: 5, ShapeKernels.reshape)
        add("Squeeze", ShapeKernels.squeeze)
        add("Unsqueeze", ShapeKernels.unsqueeze)
        add("Shape", ShapeKernels.shape)
        add("Size", ShapeKernels.size)
        add("Expand", since: 8, ShapeKernels.expand)
        add("Cast", ShapeKernels.cast)
        add("CastLike", since: 15, ShapeKernels.castLike)
        add("Transpose", MovementKernels.transpose)
        add("Concat", MovementKernels.concat)
        add("Split", MovementKernels.split)
        add("Slice", MovementKernels.slice)
        add("Gather", MovementKernels.gather)
        add("Pad", MovementKernels.pad)
        add("Tile", since: 6, MovementKernels.tile)
        add("Softmax", ReductionKernels.softmax(logarithm: false))
        add("LogSoftmax", ReductionKernels.softmax(logarithm: true))
        add("ReduceSum", ReductionKernels.reduce(.sum, inputOpset: 13))
        add("ReduceMean", ReductionKernels.reduce(.mean, inputOpset: 18))
        add("ReduceMax", ReductionKernels.reduce(.maximum, inputOpset: 18))
        add("ReduceMin", ReductionKernels.reduce(.minimum, inputOpset: 18))
        add("ReduceProd", ReductionKernels.reduce(.product, inputOpset: 18))
        add("ReduceSumSquare", ReductionKernels.reduce(.sumSquare, inputOpset: 18))
        add("ReduceL1", ReductionKernels.reduce(.l1, inputOpset: 18))
        add("ReduceL2", ReductionKernels.reduce(.l2, inputOpset: 18))
        add("ReduceLogSumExp", ReductionKernels.reduce(.logSumExp, inputOpset: 18))
        add("ArgMax", ReductionKernels.argument(maximum: true))
        add("ArgMin", ReductionKernels.argument(maximum: false))
        add("BatchNormalization", NormalizationKernels.batchNormalization)
        add("InstanceNormalization", since: 6, NormalizationKernels.instanceNormalization)
        add("LayerNormalization", since: 17, NormalizationKernels.layerNormalization)
        add("LRN", NormalizationKernels.localResponseNormalization)
        add("Gemm", MatrixKernels.gemm)
        add("MatMul", MatrixKernels.matMul)
        add("Conv", ConvolutionKernels.convolution)
        add("ConvTranspose", ConvolutionKernels.transposed)
        add("MaxPool", PoolingKernels.pool(maximum: true))
        add("AveragePool", PoolingKernels.pool(maximum: false))
        add("GlobalAveragePool", PoolingKernels.global(maximum: false))
        add("GlobalMaxPool", PoolingKernels.global(maximum: true))
        add("Resize", since: 10, ResizeKernel.resize)
        add("QuantizeLinear", since: 10, QuantizationKernels.quantize)
        add("DequantizeLinear", since: 10, QuantizationKernels.dequantize)
        add("DynamicQuantizeLinear", since: 11, QuantizationKernels.dynamicQuantize)
        add("QLinearConv", since: 10, IntegerKernels.qLinearConvolution)
        add("QLinearMatMul", since: 10, IntegerKernels.qLinearMatMul)
        add("ConvInteger", since: 10, IntegerKernels.convolutionInteger)
        add("MatMulInteger", since: 10, IntegerKernels.matMulInteger)
        return table
    }

    static var extraMachineLearning: [String: Entry] {
        var table: [String: Entry] = [:]
        table["ArrayFeatureExtractor"] = Entry(since: 1, factory: MovementKernels.arrayFeatureExtractor)
        return table
    }
}
