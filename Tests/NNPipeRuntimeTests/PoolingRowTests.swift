import NNPipeCore
import NNPipeRuntime
import Testing

/// The 2-D pooling loops (MaxPool's whole plane in C where the CPU has AVX2, sixteen windows at a
/// time with AVX-512, else row by row) compute windows inside the row several at a time and the
/// edges one by one; every column must equal a direct window scan.
@Suite struct PoolingRowTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let kernel: Int
        let stride: Int
        let pad: Int
        var ceilMode = false
        let width: Int
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "3 wide, stride 2, 111 columns (SqueezeNet)", kernel: 3, stride: 2, pad: 0, width: 111),
        Case(label: "3 wide, stride 2, pad 1, 112 columns (ResNet)", kernel: 3, stride: 2, pad: 1, width: 112),
        Case(label: "3 wide, stride 2, ceil mode, 27 columns", kernel: 3, stride: 2, pad: 0, ceilMode: true, width: 27),
        Case(label: "3 wide, stride 1, pad 1, 13 columns", kernel: 3, stride: 1, pad: 1, width: 13),
        Case(label: "2 wide, stride 2, 9 columns", kernel: 2, stride: 2, pad: 0, width: 9),
        Case(label: "5 wide, stride 3, pad 2, 20 columns", kernel: 5, stride: 3, pad: 2, width: 20),
        Case(label: "3 wide, stride 2, 5 columns (edges only)", kernel: 3, stride: 2, pad: 1, width: 5),
        Case(label: "3 wide, stride 1, 41 columns (vector windows and a scalar tail)", kernel: 3, stride: 1, pad: 0, width: 41),
        Case(label: "4 wide, stride 2, pad 2, ceil mode, 38 columns", kernel: 4, stride: 2, pad: 2, ceilMode: true, width: 38),
        Case(label: "3 wide, stride 2, pad 1, 70 columns (two vectors of 16 and a tail)", kernel: 3, stride: 2, pad: 1, width: 70),
        Case(label: "2 wide, stride 1, pad 1, 35 columns", kernel: 2, stride: 1, pad: 1, width: 35),
        Case(label: "5 wide, stride 2, 40 columns", kernel: 5, stride: 2, pad: 0, width: 40),
    ]

    @Test(arguments: cases, ["MaxPool", "AveragePool"])
    func rowsMatchADirectScan(_ testCase: Case, op: String) throws {
        let (channels, height) = (3, 7)
        let shape = [2, channels, height, testCase.width]
        let pads = Int64(testCase.pad)
        let node = Node(opType: op, inputs: ["x"], outputs: ["y"], attributes: [
            .ints("kernel_shape", [Int64(testCase.kernel), Int64(testCase.kernel)]),
            .ints("strides", [Int64(testCase.stride), Int64(testCase.stride)]), .ints("pads", [pads, pads, pads, pads]),
            .int("ceil_mode", testCase.ceilMode ? 1 : 0)])
        let model = ExecutionPlanTests.model([node], inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })], outputs: ["y"])
        let input = try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 41))
        let output = try ExecutionPlan(model: model, threads: 1).run(input)
        func outputSize(_ size: Int) -> Int {
            let span = size + 2 * testCase.pad - testCase.kernel
            var count = (testCase.ceilMode ? (span + testCase.stride - 1) : span) / testCase.stride + 1
            if testCase.ceilMode, (count - 1) * testCase.stride >= size + testCase.pad { count -= 1 }
            return count
        }
        let (outputHeight, outputWidth) = (outputSize(height), outputSize(testCase.width))
        #expect(output.shape == [2, channels, outputHeight, outputWidth])
        let (x, y) = (input.floats, output.floats)
        var worst: Float = 0
        for plane in 0..<(2 * channels) {
            for row in 0..<outputHeight {
                for column in 0..<outputWidth {
                    var best = -Float.infinity, total: Float = 0, count = 0
                    for kh in 0..<testCase.kernel {
                        for kw in 0..<testCase.kernel {
                            let (ih, iw) = (row * testCase.stride - testCase.pad + kh, column * testCase.stride - testCase.pad + kw)
                            guard ih >= 0, ih < height, iw >= 0, iw < testCase.width else { continue }
                            let value = x[(plane * height + ih) * testCase.width + iw]
                            best = max(best, value)
                            total += value
                            count += 1
                        }
                    }
                    let expected = op == "MaxPool" ? best : total / Float(max(count, 1))
                    worst = max(worst, abs(y[(plane * outputHeight + row) * outputWidth + column] - expected))
                }
            }
        }
        #expect(worst < 1e-6)
    }
}
