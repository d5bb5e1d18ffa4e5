import NNPipeCore

/// MaxPool (with Indices), AveragePool, GlobalAveragePool, GlobalMaxPool.
enum PoolingKernels {
    static func pool(maximum: Bool) -> OperatorRegistry.Factory {
        { spec in
            let ceilMode = spec.int("ceil_mode", 0) == 1
            let attributes = try SpatialGeometry.Attributes(&spec, ceilMode: ceilMode)
            guard attributes.kernelShape != nil else { throw spec.invalid("kernel_shape is required") }
            let includePad = spec.int("count_include_pad", 0) == 1
            let columnMajor = spec.int("storage_order", 0) == 1
            let wantsIndices = spec.hasOutput(1)
            return ClosureKernel { inputs, context in
                let original = try inputs.required(0)
                let integral = original.dataType == .uint8 || original.dataType == .int8
                guard original.dataType == .float || (maximum && integral) else { throw unsupportedType(original.dataType) }
                let input = integral ? RuntimeTensor(shape: original.shape, floats: original.floats) : original
                guard input.rank >= 3 else { throw KernelError("pooling needs N, C and spatial axes") }
                let geometry = try SpatialGeometry(inputShape: Array(input.shape[2...]), kernelShape: attributes.kernelShape!, attributes: attributes)
                let planes = input.shape[0] * input.shape[1]
                let shape = Array(input.shape[..<2]) + geometry.outputSpatialShape
                let result = RuntimeTensor(dataType: .float, shape: shape)
                let indices = wantsIndices ? RuntimeTensor(dataType: .int64, shape: shape) : nil
                input.withUnsafeBuffer(of: Float.self) { source in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        let indexPointer = indices?.storage.bytes.baseAddress?.assumingMemoryBound(to: Int64.self)
                        parallelChunks(planes, threads: planes * geometry.outputSize >= parallelElementThreshold / 4 ? context.threads : 1) { range in
                            for plane in range {
                                poolPlane(source.baseAddress! + plane * geometry.inputSize, output.baseAddress! + plane * geometry.outputSize,
                                          indexPointer.map { $0 + plane * geometry.outputSize }, planeOffset: plane * geometry.inputSize,
                                          geometry: geometry, maximum: maximum, includePad: includePad, columnMajor: columnMajor)
                            }
                        }
                    }
                }
                let converted = integral ? try makeTensor(original.dataType, shape: shape, doubles: result.floats.map(Double.init)) : result
                return [converted, indices]
            }
        }
    }

    static func poolPlane(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>?,
                          planeOffset: Int, geometry g: SpatialGeometry, maximum: Bool, includePad: Bool, columnMajor: Bool) {
        var position = 0
        for od in 0..<g.output[0] {
            for oh in 0..<g.output[1] {
                for ow in 0..<g.output[2] {
                    var best = -Float.infinity
                    var bestIndex = -1
                    var total: Float = 0
                    var count = 0
                    for kd in 0..<g.kernel[0] {
                        let id = od * g.strides[0] - g.padBegin[0] + kd * g.dilations[0]
                        let depthInside = id >= 0 && id < g.input[0]
                        let depthPadded = id >= -g.padBegin[0] && id < g.input[0] + g.padEnd[0]
                        for kh in 0..<g.kernel[1] {
                            let ih = oh * g.strides[1] - g.padBegin[1] + kh * g.dilations[1]
                            let heightInside = ih >= 0 && ih < g.input[1]
                            let heightPadded = ih >= -g.padBegin[1] && ih < g.input[1] + g.padEnd[1]
                            for kw in 0..<g.kernel[2] {
                                let iw = ow * g.strides[2] - g.padBegin[2] + kw * g.dilations[2]
                                if depthInside && heightInside && iw >= 0 && iw < g.input[2] {
                                    let index = (id * g.input[1] + ih) * g.input[2] + iw
                                    let value = input[index]
                                    if maximum {
                                        if value > best || bestIndex < 0 {
                                            best = value
                                            bestIndex = columnMajor ? (iw * g.input[1] + ih) * g.input[0] + id : index
                                        }
                                    } else {
                                        total += value
                                        count += 1
                                    }
                                } else if includePad && depthPadded && heightPadded
                                            && iw >= -g.padBegin[2] && iw < g.input[2] + g.padEnd[2] {
                                    count += 1
                                }
                            }
                        }
                    }
                    if maximum {
                        output[position] = best
                        indices?[position] = Int64(planeOffset + max(bestIndex, 0))
                    } else {
                        output[position] = count > 0 ? total / Float(count) : 0
                    }
                    position += 1
                }
            }
        }
    }

    static func global(maximum: Bool) -> OperatorRegistry.Factory {
        { _ in
            ClosureKernel { inputs, _ in
                let input = try inputs.required(0)
                guard input.dataType == .float, input.rank >= 3 else { throw unsupportedType(input.dataType) }
                let planes = input.shape[0] * input.shape[1]
                let size = input.shape[2...].reduce(1, *)
                let result = RuntimeTensor(dataType: .float, shape: Array(input.shape[..<2]) + [Int](repeating: 1, count: input.rank - 2))
                input.withUnsafeBuffer(of: Float.self) { source in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        for plane in 0..<planes {
                            var accumulator: Float = maximum ? -.infinity : 0
                            for index in (plane * size)..<((plane + 1) * size) {
                                accumulator = maximum ? max(accumulator, source[index]) : accumulator + source[index]
                            }
                            output[plane] = maximum ? accumulator : accumulator / Float(size)
                        }
                    }
                }
                return [result]
            }
        }
    }
}
