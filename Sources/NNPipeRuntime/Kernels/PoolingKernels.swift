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
                let geometry = try SpatialGeometry(inputShape: Array(input.shape[2...]), kernelShape: attributes.kernelShape!, attributes: attributes, pooling: true)
                let planes = input.shape[0] * input.shape[1]
                let shape = Array(input.shape[..<2]) + geometry.outputSpatialShape
                let result = RuntimeTensor(dataType: .float, shape: shape)
                let indices = wantsIndices ? RuntimeTensor(dataType: .int64, shape: shape) : nil
                let windows = (0..<3).map { axis in
                    AxisWindows(input: geometry.input[axis], output: geometry.output[axis], kernel: geometry.kernel[axis],
                                stride: geometry.strides[axis], dilation: geometry.dilations[axis],
                                padBegin: geometry.padBegin[axis], padEnd: geometry.padEnd[axis])
                }
                input.withUnsafeBuffer(of: Float.self) { source in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        let indexPointer = indices?.storage.bytes.baseAddress?.assumingMemoryBound(to: Int64.self)
                        let simple = indices == nil && geometry.input[0] == 1 && geometry.kernel[0] == 1 && geometry.dilations.allSatisfy { $0 == 1 }
                        // An AveragePool whose one window is the whole plane (ResNet's 7x7 on 7x7) is a
                        // global average: row by row it cost 0.21 ms on 2048 planes, onnxruntime 0.02.
                        if !maximum, indices == nil, geometry.outputSize == 1, geometry.kernel == geometry.input,
                           geometry.padBegin.allSatisfy({ $0 == 0 }), geometry.padEnd.allSatisfy({ $0 == 0 }) {
                            let size = geometry.inputSize
                            parallelChunks(planes, threads: planes * size >= parallelElementThreshold ? context.threads : 1,
                                           minimumChunk: max(1, parallelElementThreshold / max(size, 1))) { range in
                                for plane in range {
                                    output[plane] = reducePlane(source.baseAddress! + plane * size, count: size, maximum: false) / Float(size)
                                }
                            }
                            return
                        }
                        parallelChunks(planes, threads: planes * geometry.outputSize >= parallelElementThreshold / 4 ? context.threads : 1) { range in
                            if simple {
                                // Slack past the row: the stride-2 vector loop's last load reads one float beyond it.
                                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: geometry.input[2] + 8)
                                scratch.initialize(repeating: 0, count: geometry.input[2] + 8)
                                defer { scratch.deallocate() }
                                for plane in range {
                                    poolPlane2D(source.baseAddress! + plane * geometry.inputSize, output.baseAddress! + plane * geometry.outputSize,
                                                scratch: scratch, geometry: geometry, maximum: maximum, includePad: includePad)
                                }
                            }
                            for plane in range where !simple {
                                poolPlane(source.baseAddress! + plane * geometry.inputSize, output.baseAddress! + plane * geometry.outputSize,
                                          indexPointer.map { $0 + plane * geometry.outputSize }, planeOffset: plane * geometry.inputSize,
                                          windows: windows, geometry: geometry, maximum: maximum, includePad: includePad, columnMajor: columnMajor)
                            }
                        }
                    }
                }
                let converted = integral ? try makeTensor(original.dataType, shape: shape, doubles: result.floats.map(Double.init)) : result
                return [converted, indices]
            }
        }
    }

    /// Per axis and output index: the kernel taps that land inside the input (a contiguous range,
    /// since positions grow with the tap) and how many land inside input plus explicit pads.
    struct AxisWindows {
        var first: [Int] = []
        var last: [Int] = []
        var paddedCount: [Int] = []
        var start: [Int] = []

        init(input: Int, output: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int) {
            for index in 0..<output {
                let origin = index * stride - padBegin
                var low = kernel, high = 0, padded = 0
                for tap in 0..<kernel {
                    let position = origin + tap * dilation
                    if position >= 0 && position < input {
                        low = min(low, tap)
                        high = max(high, tap + 1)
                    }
                    if position >= -padBegin && position < input + padEnd { padded += 1 }
                }
                first.append(low < high ? low : 0)
                last.append(low < high ? high : 0)
                paddedCount.append(padded)
                start.append(origin)
            }
        }
    }

    /// The common case (2-D, no dilation, no Indices output), done separably: the window's rows are
    /// first combined into one row (`scratch`, `inputWidth` floats; a vectorisable pass), then each
    /// output takes its `kernelWidth` neighbours from that row. A 3x3 window costs about 3 + 3
    /// operations per output instead of 9 with per-tap bounds.
    static func poolPlane2D(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                            geometry g: SpatialGeometry, maximum: Bool, includePad: Bool) {
        let (inputHeight, inputWidth) = (g.input[1], g.input[2])
        let (outputHeight, outputWidth) = (g.output[1], g.output[2])
        let (kernelHeight, kernelWidth) = (g.kernel[1], g.kernel[2])
        let (strideH, strideW) = (g.strides[1], g.strides[2])
        let (padH, padW) = (g.padBegin[1], g.padBegin[2])
        let (padEndH, padEndW) = (g.padEnd[1], g.padEnd[2])
        // Outputs whose window lies inside the row, four at a time; the edges go through `edge` below.
        // Once per plane: its two integer divisions per row cost a fifth of a 3x3 MaxPool.
        if maximum, NativePooling.isAvailable {
            NativePooling.maximumPlane(input, size: (inputHeight, inputWidth), into: output, outputSize: (outputHeight, outputWidth),
                                       kernel: (kernelHeight, kernelWidth), stride: (strideH, strideW), padBegin: (padH, padW), scratch: scratch)
            return
        }
        let interior = interiorOutputs(inputWidth: inputWidth, outputWidth: outputWidth, kernel: kernelWidth, stride: strideW, pad: padW)
        let vectorEnd = interior.lowerBound + interior.count / 4 * 4
        for oh in 0..<outputHeight {
            let originH = oh * strideH - padH
            let (firstH, lastH) = (max(0, originH), min(inputHeight, originH + kernelHeight))
            let destination = output + oh * outputWidth
            guard firstH < lastH else {
                // A window entirely in the padding: MaxPool's identity, AveragePool's empty sum.
                destination.update(repeating: maximum ? -.infinity : 0, count: outputWidth)
                continue
            }
            scratch.update(from: input + firstH * inputWidth, count: inputWidth)
            for ih in (firstH + 1)..<lastH {
                let row = input + ih * inputWidth
                if NativePooling.isAvailable {
                    NativePooling.combine(scratch, with: row, count: inputWidth, maximum: maximum)
                } else if maximum {
                    for iw in 0..<inputWidth { scratch[iw] = max(scratch[iw], row[iw]) }
                } else {
                    for iw in 0..<inputWidth { scratch[iw] += row[iw] }
                }
            }
            let paddedH = min(originH + kernelHeight, inputHeight + padEndH) - max(originH, -padH)
            let divisor = Float(includePad ? paddedH * kernelWidth : (lastH - firstH) * kernelWidth)
            var ow = interior.lowerBound
            if NativePooling.isAvailable, interior.lowerBound * strideW - padW >= 0 {
                // The scratch row holds inputWidth floats and 8 of slack.
                let start = interior.lowerBound * strideW - padW
                ow += NativePooling.row(scratch + start, readable: inputWidth + 8 - start, into: destination + ow, count: interior.count,
                                        kernel: kernelWidth, stride: strideW, maximum: maximum, divisor: divisor)
            }
            // 3-wide windows 2 apart (SqueezeNet's and ResNet's MaxPool): the taps of four outputs are
            // the even, odd and next even lanes of two loads, instead of twelve single loads.
            while strideW == 2, kernelWidth == 3, ow < vectorEnd {
                let window = UnsafeRawPointer(scratch + (ow * 2 - padW))
                let (near, far) = (window.loadUnaligned(as: SIMD8<Float>.self), window.loadUnaligned(fromByteOffset: 8, as: SIMD8<Float>.self))
                var result = SIMD4<Float>(repeating: maximum ? -.infinity : 0)
                func combine(_ taps: SIMD4<Float>) {
                    if maximum { result.replace(with: taps, where: taps .>= result) } else { result += taps }
                }
                combine(near.evenHalf)
                combine(near.oddHalf)
                combine(far.evenHalf)
                if !maximum { result /= SIMD4(repeating: divisor) }
                UnsafeMutableRawPointer(destination + ow).storeBytes(of: result, as: SIMD4<Float>.self)
                ow += 4
            }
            while ow < vectorEnd {
                let window = UnsafePointer(scratch) + (ow * strideW - padW)
                var result = SIMD4<Float>(repeating: maximum ? -.infinity : 0)
                for tap in 0..<kernelWidth {
                    let taps = SIMD4<Float>(window[tap], window[tap + strideW], window[tap + 2 * strideW], window[tap + 3 * strideW])
                    // Lane by lane what `max(best, x)` and `total + x` do in the scalar loop.
                    if maximum { result.replace(with: taps, where: taps .>= result) } else { result += taps }
                }
                if !maximum { result /= SIMD4(repeating: divisor) }
                UnsafeMutableRawPointer(destination + ow).storeBytes(of: result, as: SIMD4<Float>.self)
                ow += 4
            }
            // A function, not a `where` filter on 0..<outputWidth: the compiler computed every
            // column's window before the filter, which cost more than the vector loop above.
            func edge(_ ow: Int) {
                let originW = ow * strideW - padW
                let (firstW, lastW) = (max(0, originW), min(inputWidth, originW + kernelWidth))
                if maximum {
                    var best = -Float.infinity
                    for iw in firstW..<max(firstW, lastW) { best = max(best, scratch[iw]) }
                    destination[ow] = best
                } else {
                    var total: Float = 0
                    for iw in firstW..<max(firstW, lastW) { total += scratch[iw] }
                    let count = includePad
                        ? paddedH * (min(originW + kernelWidth, inputWidth + padEndW) - max(originW, -padW))
                        : (lastH - firstH) * max(0, lastW - firstW)
                    destination[ow] = count > 0 ? total / Float(count) : 0
                }
            }
            for ow in 0..<interior.lowerBound { edge(ow) }
            for ow in vectorEnd..<outputWidth { edge(ow) }
        }
    }

    /// The output columns whose window starts at or after column 0 and ends inside the row.
    static func interiorOutputs(inputWidth: Int, outputWidth: Int, kernel: Int, stride: Int, pad: Int) -> Range<Int> {
        let first = min(outputWidth, (pad + stride - 1) / stride)
        guard inputWidth + pad >= kernel else { return first..<first }
        let end = min(outputWidth, (inputWidth + pad - kernel) / stride + 1)
        return first..<max(first, end)
    }

    static func poolPlane(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>?,
                          planeOffset: Int, windows: [AxisWindows], geometry g: SpatialGeometry, maximum: Bool, includePad: Bool,
                          columnMajor: Bool) {
        let depthWindows = windows[0], heightWindows = windows[1], widthWindows = windows[2]
        let inputHeight = g.input[1], inputWidth = g.input[2], inputDepth = g.input[0]
        let dilationD = g.dilations[0], dilationH = g.dilations[1], dilationW = g.dilations[2]
        let outputD = g.output[0], outputH = g.output[1], outputW = g.output[2]
        var position = 0
        for od in 0..<outputD {
            let dStart = depthWindows.start[od], dFirst = depthWindows.first[od], dLast = depthWindows.last[od]
            for oh in 0..<outputH {
                let hStart = heightWindows.start[oh], hFirst = heightWindows.first[oh], hLast = heightWindows.last[oh]
                for ow in 0..<outputW {
                    let wStart = widthWindows.start[ow], wFirst = widthWindows.first[ow], wLast = widthWindows.last[ow]
                    if maximum && indices == nil {
                        var best = -Float.infinity
                        for kd in dFirst..<dLast {
                            let id = dStart + kd * dilationD
                            for kh in hFirst..<hLast {
                                let row = (id * inputHeight + hStart + kh * dilationH) * inputWidth + wStart
                                for kw in wFirst..<wLast { best = max(best, input[row + kw * dilationW]) }
                            }
                        }
                        output[position] = best
                    } else if maximum {
                        var best = -Float.infinity
                        var bestIndex = -1
                        for kd in dFirst..<dLast {
                            let id = dStart + kd * dilationD
                            for kh in hFirst..<hLast {
                                let ih = hStart + kh * dilationH
                                let row = (id * inputHeight + ih) * inputWidth
                                for kw in wFirst..<wLast {
                                    let iw = wStart + kw * dilationW
                                    let value = input[row + iw]
                                    if value > best || bestIndex < 0 {
                                        best = value
                                        bestIndex = columnMajor ? (iw * inputHeight + ih) * inputDepth + id : row + iw
                                    }
                                }
                            }
                        }
                        output[position] = best
                        indices?[position] = Int64(planeOffset + max(bestIndex, 0))
                    } else {
                        var total: Float = 0
                        for kd in dFirst..<dLast {
                            let id = dStart + kd * dilationD
                            for kh in hFirst..<hLast {
                                let row = (id * inputHeight + hStart + kh * dilationH) * inputWidth + wStart
                                for kw in wFirst..<wLast { total += input[row + kw * dilationW] }
                            }
                        }
                        let count = includePad
                            ? depthWindows.paddedCount[od] * heightWindows.paddedCount[oh] * widthWindows.paddedCount[ow]
                            : (dLast - dFirst) * (hLast - hFirst) * (wLast - wFirst)
                        output[position] = count > 0 ? total / Float(count) : 0
                    }
                    position += 1
                }
            }
        }
    }

    static func global(maximum: Bool) -> OperatorRegistry.Factory {
        { _ in
            ClosureKernel { inputs, context in
                let input = try inputs.required(0)
                guard input.dataType == .float else { throw unsupportedType(input.dataType) }
                guard input.rank >= 3 else { throw KernelError("input \(input.shape) needs rank 3 or more") }
                let planes = input.shape[0] * input.shape[1]
                let size = input.shape[2...].reduce(1, *)
                let result = RuntimeTensor(dataType: .float, shape: Array(input.shape[..<2]) + [Int](repeating: 1, count: input.rank - 2))
                input.withUnsafeBuffer(of: Float.self) { source in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        let threads = source.count >= parallelElementThreshold ? context.threads : 1
                        parallelChunks(planes, threads: threads, minimumChunk: max(1, parallelElementThreshold / max(size, 1))) { range in
                            for plane in range {
                                let reduced = reducePlane(source.baseAddress! + plane * size, count: size, maximum: maximum)
                                output[plane] = maximum ? reduced : reduced / Float(size)
                            }
                        }
                    }
                }
                return [result]
            }
        }
    }

    /// Max or sum of `count` floats in eight running lanes (a strict left-to-right sum does not
    /// vectorise), the lanes combined at the end. Max keeps the scalar rule: a NaN is skipped.
    static func reducePlane(_ values: UnsafePointer<Float>, count: Int, maximum: Bool) -> Float {
        typealias Lanes = SIMD8<Float>
        let raw = UnsafeRawPointer(values)
        var lanes = Lanes(repeating: maximum ? -.infinity : 0)
        var index = 0
        while index + Lanes.scalarCount <= count {
            let next = raw.loadUnaligned(fromByteOffset: index * MemoryLayout<Float>.stride, as: Lanes.self)
            if maximum { lanes.replace(with: next, where: next .>= lanes) } else { lanes += next }
            index += Lanes.scalarCount
        }
        var accumulator: Float = maximum ? lanes.max() : lanes.sum()
        while index < count {
            accumulator = maximum ? max(accumulator, values[index]) : accumulator + values[index]
            index += 1
        }
        return accumulator
    }
}
