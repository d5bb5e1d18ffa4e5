import NNPipeCore

/// Integer matrix products formed the way onnxruntime's MLAS forms them: raw products summed in
/// wrapping Int32 (pairwise through a saturating Int16 where the host's kernel does that, see
/// `IntegerAccumulation`), zero points taken out afterwards with row and column sums.
enum IntegerMatrixProduct {
    /// C[i][j] = Σ_k (A[i][k] − aZero)(B[k][j] − bZero[j]) for row-major A [rows, depth] and B [depth, columns].
    /// With `saturating`, products of adjacent k (pairs restart at every `pairBlock` boundary, padded
    /// with zero) are clamped to Int16 before they are added, as `vpmaddubsw` does.
    /// - Complexity: O(rows · depth · columns).
    static func multiply(_ a: UnsafeBufferPointer<Int32>, rows: Int, depth: Int, _ b: UnsafeBufferPointer<Int32>, columns: Int,
                         aZero: Int32, bZeros: [Int32], saturating: Bool, pairBlock: Int) -> [Int32] {
        precondition(a.count >= rows * depth && b.count >= depth * columns, "integer product operands are smaller than their shapes")
        precondition(bZeros.count == 1 || bZeros.count == columns, "B zero points must be one or one per column")
        var output = [Int32](repeating: 0, count: rows * columns)
        guard rows > 0, columns > 0 else { return output }
        var columnSums = [Int32](repeating: 0, count: columns)
        for k in 0..<depth { for j in 0..<columns { columnSums[j] &+= b[k * columns + j] } }
        let block = max(pairBlock, 1)
        output.withUnsafeMutableBufferPointer { output in
            let bBase = b.baseAddress!
            for i in 0..<rows {
                let row = a.baseAddress! + i * depth
                let target = output.baseAddress! + i * columns
                var rowSum: Int32 = 0
                for k in 0..<depth { rowSum &+= row[k] }
                if saturating {
                    var blockStart = 0
                    while blockStart < depth {
                        let blockEnd = min(blockStart + block, depth)
                        var k = blockStart
                        while k < blockEnd {
                            let hasSecond = k + 1 < blockEnd
                            let first = row[k]
                            let second = hasSecond ? row[k + 1] : 0
                            if first != 0 || second != 0 {
                                let firstRow = bBase + k * columns
                                let secondRow = hasSecond ? firstRow + columns : firstRow
                                for j in 0..<columns {
                                    let pair = first &* firstRow[j] &+ second &* secondRow[j]
                                    target[j] &+= min(max(pair, -32768), 32767)
                                }
                            }
                            k += 2
                        }
                        blockStart = blockEnd
                    }
                } else {
                    for k in 0..<depth {
                        let value = row[k]
                        if value == 0 { continue }
                        let bRow = bBase + k * columns
                        for j in 0..<columns { target[j] &+= value &* bRow[j] }
                    }
                }
                for j in 0..<columns {
                    let bZero = bZeros.count == 1 ? bZeros[0] : bZeros[j]
                    target[j] = target[j] &- bZero &* rowSum &- aZero &* columnSums[j] &+ Int32(depth) &* aZero &* bZero
                }
            }
        }
        return output
    }

    /// Whether MLAS would saturate this operand pair on the host: uint8 activations times int8 weights.
    static func saturates(a: DataType, b: DataType) -> Bool {
        IntegerAccumulation.host == .pairwiseSaturating && a == .uint8 && b == .int8
    }

    /// One image's patches as rows [output positions, kernel positions · channels], kernel position
    /// outer and channel inner (the NHWC order of onnxruntime's QLinearConv); padding reads `padValue`.
    static func patches(_ image: UnsafePointer<Int32>, channels: Int, geometry: SpatialGeometry, padValue: Int32) -> [Int32] {
        let kernelPositions = geometry.kernelSize
        let depth = kernelPositions * channels
        var rows = [Int32](repeating: padValue, count: geometry.outputSize * depth)
        let input = geometry.input, kernel = geometry.kernel, output = geometry.output
        let planeSize = geometry.inputSize
        rows.withUnsafeMutableBufferPointer { rows in
            var position = 0
            for od in 0..<output[0] { for oh in 0..<output[1] { for ow in 0..<output[2] {
                var column = position * depth
                for kd in 0..<kernel[0] { for kh in 0..<kernel[1] { for kw in 0..<kernel[2] {
                    let d = od * geometry.strides[0] - geometry.padBegin[0] + kd * geometry.dilations[0]
                    let h = oh * geometry.strides[1] - geometry.padBegin[1] + kh * geometry.dilations[1]
                    let w = ow * geometry.strides[2] - geometry.padBegin[2] + kw * geometry.dilations[2]
                    if d >= 0, d < input[0], h >= 0, h < input[1], w >= 0, w < input[2] {
                        let offset = (d * input[1] + h) * input[2] + w
                        for c in 0..<channels { rows[column + c] = image[c * planeSize + offset] }
                    }
                    column += channels
                } } }
                position += 1
            } } }
        }
        return rows
    }
}
