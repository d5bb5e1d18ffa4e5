import Foundation
import NNPipeTestKit
import StageQuantize
import Testing

/// onnxruntime's results for QuantizeLinear / DequantizeLinear / compute_scale_zp, made once per
/// test run into a temporary folder (hundreds of MB: never committed).
final class OnnxruntimeNumerics: Sendable {
    let folder: URL?
    let manifest: [String: any Sendable]
    let failure: String?

    static let shared = OnnxruntimeNumerics()

    /// Values per type and layout; `NNPIPE_QUANTIZE_COUNT` overrides (the issue asks for >= 10^7).
    static var count: Int {
        ProcessInfo.processInfo.environment["NNPIPE_QUANTIZE_COUNT"].flatMap(Int.init) ?? 10_000_000
    }

    private init() {
        let made = Self.make()
        folder = made.folder
        manifest = made.manifest
        failure = made.failure
    }

    private static func make() -> (folder: URL?, manifest: [String: any Sendable], failure: String?) {
        do {
            let folder = try TestEnvironment.temporaryFolder("quantize-numerics")
            guard let result = try runFixtureScript(["numerics", folder.path, String(count)]) else { return (nil, [:], nil) }
            guard result.status == 0 else { return (nil, [:], "fixture script failed: \(result.standardError)") }
            let data = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            return (folder, object.mapValues { $0 as! any Sendable }, nil)
        } catch {
            return (nil, [:], "\(error)")
        }
    }

    /// The folder, or nil after recording why there is none (a skip prints, a failure records).
    func ready() -> URL? {
        if let failure { Issue.record(Comment(rawValue: failure)) }
        return folder
    }

    func cases(_ key: String) -> [[String: Any]] { manifest[key] as? [[String: Any]] ?? [] }
}

@Suite(.serialized) struct NumericsBitExactTests {
    static let caseNames: [String] = QuantizedType.allCases.flatMap { type in
        ["per_tensor", "per_axis", "blocked"].map { "\(type.rawValue)_\($0)" }
    }

    @Test("QuantizeLinear and DequantizeLinear match onnxruntime bit for bit", arguments: caseNames)
    func quantizeMatchesOnnxruntime(stem: String) throws {
        let numerics = OnnxruntimeNumerics.shared
        guard let folder = numerics.ready() else { return }
        let entry = try #require(numerics.cases("cases").first { $0["stem"] as? String == stem })
        let type = try #require(QuantizedType(rawValue: entry["type"] as! String))
        let shape = entry["shape"] as! [Int]
        let layout: QuantizationLayout
        switch entry["layout"] as! String {
        case "per_tensor": layout = .perTensor
        case "per_axis": layout = .perAxis(axis: entry["axis"] as! Int)
        default: layout = .blocked(axis: entry["axis"] as! Int, blockSize: entry["block_size"] as! Int)
        }
        let values = try readArray(folder.appendingPathComponent(stem + "_x.f32"), as: Float.self)
        let scales = try readArray(folder.appendingPathComponent(stem + "_scale.f32"), as: Float.self)
        let zeroPoints = try readArray(folder.appendingPathComponent(stem + "_zp.i32"), as: Int32.self)
        let parameters = zip(scales, zeroPoints).map { QuantizationParameters(scale: $0, zeroPoint: $1) }

        let ours = LinearQuantizer.quantize(values, shape: shape, layout: layout, parameters: parameters, range: type.fullRange)
        let expected = try readArray(folder.appendingPathComponent(stem + "_q.i32"), as: Int32.self)
        try #require(expected.count == ours.count)
        let (mismatches, firstMismatch) = countMismatches(ours, expected)
        let detail = firstMismatch.map { "first at \($0): x=\(values[$0]) ours=\(ours[$0]) onnxruntime=\(expected[$0])" } ?? ""
        #expect(mismatches == 0, "\(stem): \(mismatches) of \(ours.count) differ; \(detail)")

        // Packing round trip: stored 4-bit nibbles read back as the same integers.
        let packedPrefix = Array(ours.prefix(4097))
        let packed = PackedIntegers.tensor(name: "q", shape: [packedPrefix.count], values: packedPrefix, as: type)
        #expect(PackedIntegers.values(of: packed) == packedPrefix)

        let expectedDequantized = try readArray(folder.appendingPathComponent(stem + "_dq.f32"), as: Float.self)
        let dequantized = LinearQuantizer.dequantize(expected, shape: shape, layout: layout, parameters: parameters)
        let dequantizeMismatches = countMismatches(Array(dequantized.prefix(expectedDequantized.count)).map(\.bitPattern), expectedDequantized.map(\.bitPattern)).count
        #expect(dequantizeMismatches == 0, "\(stem): DequantizeLinear differs on \(dequantizeMismatches) of \(expectedDequantized.count)")
        print("bit-exact \(stem): \(mismatches) mismatches in \(ours.count) QuantizeLinear values, \(dequantizeMismatches) in \(expectedDequantized.count) DequantizeLinear values")
    }

    @Test("scale and zero point match onnxruntime's compute_scale_zp")
    func parametersMatchOnnxruntime() throws {
        let numerics = OnnxruntimeNumerics.shared
        guard let folder = numerics.ready() else { return }
        let lower = try readArray(folder.appendingPathComponent("parameters_rmin.f32"), as: Float.self)
        let upper = try readArray(folder.appendingPathComponent("parameters_rmax.f32"), as: Float.self)
        let entries = numerics.cases("parameters")
        try #require(entries.count == QuantizedType.allCases.count * 4)
        for entry in entries {
            let type = try #require(QuantizedType(rawValue: entry["type"] as! String))
            let symmetric = entry["symmetric"] as! Bool
            let reduceRange = entry["reduce_range"] as! Bool
            let stem = entry["stem"] as! String
            let range = type.range(symmetric: symmetric, reduceRange: reduceRange)
            #expect(range.minimum == Int32(entry["qmin"] as! Int) && range.maximum == Int32(entry["qmax"] as! Int), "\(stem) range")
            let scales = try readArray(folder.appendingPathComponent(stem + "_scale.f32"), as: Float.self)
            let zeroPoints = try readArray(folder.appendingPathComponent(stem + "_zp.i32"), as: Int32.self)
            var mismatches: [String] = []
            for index in lower.indices {
                let ours = QuantizationParameters(lower: lower[index], upper: upper[index], range: range, symmetric: symmetric)
                if ours.scale.bitPattern != scales[index].bitPattern || ours.zeroPoint != zeroPoints[index] {
                    mismatches.append("[\(lower[index]), \(upper[index])] ours \(ours.scale)/\(ours.zeroPoint) onnxruntime \(scales[index])/\(zeroPoints[index])")
                }
            }
            #expect(mismatches.isEmpty, "\(stem): \(mismatches.count) of \(lower.count) differ, e.g. \(mismatches.prefix(3))")
        }
    }

    @Test("bias to int32 matches onnxruntime's quantize_bias_static_impl")
    func biasMatchesOnnxruntime() throws {
        let numerics = OnnxruntimeNumerics.shared
        guard let folder = numerics.ready() else { return }
        let bias = try readArray(folder.appendingPathComponent("bias_b.f32"), as: Float.self)
        let inputScales = try readArray(folder.appendingPathComponent("bias_sx.f32"), as: Float.self)
        let weightScales = try readArray(folder.appendingPathComponent("bias_sw.f32"), as: Float.self)
        let expected = try readArray(folder.appendingPathComponent("bias_q.i32"), as: Int32.self)
        var mismatches = 0
        for index in bias.indices {
            let scale = BiasQuantizer.scale(input: inputScales[index], weight: weightScales[index])
            if BiasQuantizer.quantize(bias[index], biasScale: scale) != expected[index] { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) of \(bias.count) biases differ")
    }
}

@Suite struct NumericsRuleTests {
    struct ParameterCase: CustomTestStringConvertible, Sendable {
        var label: String
        var type: QuantizedType
        var symmetric: Bool
        var reduceRange: Bool
        var lower: Float
        var upper: Float
        var scale: Float
        var zeroPoint: Int32
        var testDescription: String { label }
    }

    static let parameterCases: [ParameterCase] = [
        ParameterCase(label: "uint8 asymmetric [0, 2.55]", type: .uint8, symmetric: false, reduceRange: false, lower: 0, upper: 2.55, scale: Float(Double(Float(2.55)) / 255), zeroPoint: 0),
        ParameterCase(label: "positive range widened to include 0", type: .uint8, symmetric: false, reduceRange: false, lower: 1, upper: 2.55, scale: Float(Double(Float(2.55)) / 255), zeroPoint: 0),
        ParameterCase(label: "int8 symmetric zero point 0", type: .int8, symmetric: true, reduceRange: false, lower: -1, upper: 0.5, scale: Float(2.0 / 254.0), zeroPoint: 0),
        ParameterCase(label: "uint8 symmetric zero point 128", type: .uint8, symmetric: true, reduceRange: false, lower: -1, upper: 0.5, scale: Float(2.0 / 255.0), zeroPoint: 128),
        ParameterCase(label: "uint16 symmetric zero point 32768", type: .uint16, symmetric: true, reduceRange: false, lower: -1, upper: 1, scale: Float(2.0 / 65535.0), zeroPoint: 32768),
        ParameterCase(label: "tiny range gives scale 1", type: .int8, symmetric: false, reduceRange: false, lower: 0, upper: 1e-40, scale: 1, zeroPoint: 0),
        ParameterCase(label: "reduce_range int8 [-64, 64]", type: .int8, symmetric: true, reduceRange: true, lower: -6.4, upper: 6.4, scale: Float(Double(Float(6.4)) * 2 / 128.0), zeroPoint: 0),
    ]

    @Test("scale and zero point rules", arguments: parameterCases)
    func parameterRules(_ example: ParameterCase) {
        let range = example.type.range(symmetric: example.symmetric, reduceRange: example.reduceRange)
        let parameters = QuantizationParameters(lower: example.lower, upper: example.upper, range: range, symmetric: example.symmetric)
        #expect(parameters.scale == example.scale)
        #expect(parameters.zeroPoint == example.zeroPoint)
    }

    struct QuantizeCase: CustomTestStringConvertible, Sendable {
        var label: String
        var value: Float
        var expected: Int32
        var testDescription: String { label }
    }

    static let quantizeCases: [QuantizeCase] = [
        QuantizeCase(label: "0.5 rounds to even 0", value: 0.5, expected: 10),
        QuantizeCase(label: "1.5 rounds to even 2", value: 1.5, expected: 12),
        QuantizeCase(label: "-2.5 rounds to even -2", value: -2.5, expected: 8),
        QuantizeCase(label: "-0.0 is the zero point", value: -0.0, expected: 10),
        QuantizeCase(label: "+infinity saturates high", value: .infinity, expected: 127),
        QuantizeCase(label: "-infinity saturates low", value: -.infinity, expected: -128),
    ]

    @Test("QuantizeLinear rounding and saturation (int8, scale 1, zero point 10)", arguments: quantizeCases)
    func quantizeRules(_ example: QuantizeCase) {
        let value = LinearQuantizer.quantize(example.value, scale: 1, zeroPoint: 10, range: QuantizedType.int8.fullRange)
        #expect(value == example.expected)
    }

    @Test func int4PacksLowNibbleFirst() throws {
        let tensor = PackedIntegers.tensor(name: "w", shape: [3], values: [-1, 2, 7], as: .int4)
        let bytes = try #require(tensor.buffer).bytes
        #expect(Array(bytes) == [0x2F, 0x07])
        #expect(PackedIntegers.values(of: tensor) == [-1, 2, 7])
    }

    @Test func blockedParametersCoverPartialLastBlock() {
        let layout = QuantizationLayout.blocked(axis: 1, blockSize: 4)
        #expect(layout.parameterShape(for: [2, 10, 3]) == [2, 3, 3])
        let values: [Float] = (0..<10).map { Float($0) }
        let parameters = LinearQuantizer.parameters(for: values, shape: [1, 10], layout: layout, range: QuantizedType.int4.range(), symmetric: true)
        #expect(parameters.count == 3)
        #expect(parameters[2].scale == Float(Double(9) * 2 / 15))
    }
}

/// Mismatch count and first mismatching index, walking raw pointers (debug builds are slow otherwise).
func countMismatches<Element: Equatable>(_ left: [Element], _ right: [Element]) -> (count: Int, first: Int?) {
    precondition(left.count == right.count)
    var count = 0
    var first: Int?
    left.withUnsafeBufferPointer { left in
        right.withUnsafeBufferPointer { right in
            let a = left.baseAddress!, b = right.baseAddress!
            var index = 0
            while index < left.count {
                if a[index] != b[index] {
                    count += 1
                    if first == nil { first = index }
                }
                index += 1
            }
        }
    }
    return (count, first)
}
