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
        return table
    }

    static var extraMachineLearning: [String: Entry] {
        var table: [String: Entry] = [:]
        table["ArrayFeatureExtractor"] = Entry(since: 1, factory: MovementKernels.arrayFeatureExtractor)
        return table
    }
}
