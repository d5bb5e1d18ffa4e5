import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// A fuzz-style sweep that always runs: seeded mutations of real models fed to the reader, which
/// must either return a model that passes `GraphCheck` or throw an `NNPipeError` (never crash).
/// The libFuzzer target (scripts/fuzz-onnx.sh) explores further.
@Suite struct ONNXMutationTests {
    /// SplitMix64: reproducible across platforms, unlike the system generator.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }

    static let seeds = [
        "node/test_if/model.onnx", "node/test_loop11/model.onnx", "node/test_scan9_sum/model.onnx",
        "node/test_cast_FLOAT_to_FLOAT8E4M3FN/model.onnx", "structures/sparse_initializer.onnx",
        "structures/local_function.onnx", "sklearn/logistic_digits.onnx", "light/light_squeezenet.onnx",
        "dtypes/string.typed.onnx", "dtypes/int4.typed.onnx",
    ]

    @Test("2,000 seeded mutations never crash the reader")
    func mutations() throws {
        var generator = SeededGenerator(state: 20_261_130)
        let originals = try Self.seeds.map { try [UInt8](Data(contentsOf: ONNXFixtures.url($0))) }
        var accepted = 0
        for _ in 0..<2000 {
            var bytes = originals.randomElement(using: &generator)!
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                Self.mutate(&bytes, using: &generator)
            }
            do {
                _ = try bytes.withUnsafeBytes { try ONNXFormat().read(serialized: $0) }
                accepted += 1
            } catch is NNPipeError {
            } catch {
                Issue.record("non-NNPipeError thrown: \(error)")
            }
        }
        print("mutations: \(accepted) of 2000 still read as valid models")
    }

    static func mutate(_ bytes: inout [UInt8], using generator: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        let position = Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: bytes[position] = UInt8.random(in: 0...255, using: &generator)
        case 1: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 2: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...16, using: &generator)))
        case 3: bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: position)
        case 4: bytes[position] = [0x00, 0x7F, 0x80, 0xFF][Int.random(in: 0..<4, using: &generator)]
        default: bytes.removeSubrange(position...)
        }
    }
}
