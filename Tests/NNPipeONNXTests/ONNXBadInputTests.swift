import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Bad input ends in one `NNPipeError` line naming the file and the problem; never a crash.
@Suite struct ONNXBadInputTests {
    @Test("invalid models are refused", arguments: [
        ("raw_data_too_short.onnx", "raw_data has 12 bytes"),
        ("negative_dimension.onnx", "negative dimension -2"),
        ("overflowing_dimensions.onnx", "overflow"),
        ("unknown_data_type.onnx", "unknown data_type 99"),
        ("data_in_wrong_field.onnx", "has no data"),
        ("dangling_input.onnx", "'nothing', which nothing produces"),
        ("tensor_not_model.onnx", "not an ONNX model"),
        ("model_without_graph.onnx", "no graph"),
    ])
    func refuses(file: String, problem: String) throws {
        let url = ONNXFixtures.url("bad/\(file)")
        let error = try #require(throws: NNPipeError.self) { try ONNXFormat().read(from: url) }
        #expect(error.path == url.path)
        #expect(error.description.contains(problem), "\(error)")
        #expect(!error.description.contains("\n"))
    }

    @Test("garbage bytes are refused", arguments: [
        ("empty", [UInt8]()),
        ("zeros", [UInt8](repeating: 0, count: 64)),
        ("text", Array("hello, this is not a model\n".utf8)),
        ("random", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }),
        ("huge length", [0x08, 0x08, 0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ])
    func garbage(label: String, bytes: [UInt8]) throws {
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("\(label).onnx")
            try Data(bytes).write(to: url)
            let error = try #require(throws: NNPipeError.self) { try ONNXFormat().read(from: url) }
            #expect(error.path == url.path, "\(error)")
            #expect(!ONNXFormat().recognizes(fileAt: url, header: bytes))
        }
    }

    @Test("every truncation of a real model is refused or read, never a crash")
    func truncations() throws {
        let bytes = try [UInt8](Data(contentsOf: ONNXFixtures.url("node/test_if/model.onnx")))
        var refused = 0
        for length in stride(from: 0, to: bytes.count, by: 1) {
            do { _ = try bytes[0..<length].withUnsafeBytes { try ONNXFormat().read(serialized: $0) } } catch is NNPipeError {
                refused += 1
            }
        }
        #expect(refused > bytes.count / 2)
    }

    /// protobuf-c recurses without a limit: 5,000 nested sequence types would overflow its stack.
    @Test func deepNestingIsRefused() throws {
        func lengthDelimited(_ field: UInt8, _ length: Int) -> [UInt8] {
            var bytes: [UInt8] = [field << 3 | 2]
            var rest = length
            while rest >= 0x80 {
                bytes.append(UInt8(rest & 0x7F) | 0x80)
                rest >>= 7
            }
            return bytes + [UInt8(rest)]
        }
        // Built inside out: TypeProto{sequence_type: Sequence{elem_type: TypeProto{...}}}.
        var prefixes: [[UInt8]] = []
        let innermost: [UInt8] = [0x0A, 0x02, 0x08, 0x01]
        var size = innermost.count
        for _ in 0..<5000 {
            let inner = lengthDelimited(1, size)
            let outer = lengthDelimited(4, inner.count + size)
            prefixes.append(outer + inner)
            size += outer.count + inner.count
        }
        let type = prefixes.reversed().flatMap { $0 } + innermost
        let valueInfo = lengthDelimited(1, 1) + [0x78] + lengthDelimited(2, type.count) + type
        let graph = lengthDelimited(11, valueInfo.count) + valueInfo
        let model: [UInt8] = [0x08, 0x08] + lengthDelimited(7, graph.count) + graph
        let error = try #require(throws: NNPipeError.self) {
            try model.withUnsafeBytes { try ONNXFormat().read(serialized: $0) }
        }
        #expect(error.description.contains("nest deeper"), "\(error)")
    }

    @Test func missingFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/model.onnx")
        let error = try #require(throws: NNPipeError.self) { try ONNXFormat().read(from: url) }
        #expect(error.path == url.path && error.code == .io)
    }

    @Test("sniffing recognises models by content", arguments: [
        ("light/light_resnet50.onnx", true),
        ("sklearn/mlp_digits.onnx", true),
        ("node/test_if/model.onnx", true),
        ("node/test_if/test_data_set_0/input_0.pb", false),
        ("bad/tensor_not_model.onnx", false),
        ("bad/model_without_graph.onnx", false),
        ("sklearn/digits_x_first16.npy", false),
    ])
    func sniffing(path: String, expected: Bool) throws {
        let url = ONNXFixtures.url(path)
        let header = try [UInt8](Data(contentsOf: url).prefix(4096))
        #expect(ONNXFormat().recognizes(fileAt: url, header: header) == expected)
    }

    @Test func failedWriteLeavesNothing() throws {
        let model = try ONNXFormat().read(from: ONNXFixtures.url("light/light_resnet50.onnx"))
        try withTemporaryFolder { folder in
            let blocker = folder.appendingPathComponent("blocked")
            try Data().write(to: blocker)
            let url = blocker.appendingPathComponent("out.onnx")  // parent is a file: must fail
            #expect(throws: NNPipeError.self) { try ONNXFormat().write(model, to: url) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["blocked"])
        }
    }
}
