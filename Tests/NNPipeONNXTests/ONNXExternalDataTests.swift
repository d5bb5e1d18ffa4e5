import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// External data: reading, the traversal attempts (onnx CVE-2022-25882 class), and writing.
@Suite struct ONNXExternalDataTests {
    @Test func readsExternalTensor() throws {
        let model = try ONNXFormat().read(from: ONNXFixtures.url("external/valid.onnx"))
        let weight = try #require(model.graph.initializer(named: "w"))
        #expect(weight.values(as: Float.self) == (0..<64).map(Float.init))
    }

    @Test("hostile or broken external data is refused with one line naming the file", arguments: [
        ("absolute_path.onnx", "is an absolute path"),
        ("dot_dot.onnx", "uses '..'"),
        ("dot_dot_nested.onnx", "uses '..'"),
        ("missing_file.onnx", "'missing.bin' is missing"),
        ("past_end.onnx", "too short for offset 200"),
        ("wrong_length.onnx", "length 12 does not match"),
    ])
    func refuses(file: String, problem: String) throws {
        let url = ONNXFixtures.url("external/\(file)")
        let error = try #require(throws: NNPipeError.self) { try ONNXFormat().read(from: url) }
        #expect(error.path == url.path)
        #expect(error.description.contains(problem), "\(error)")
        #expect(!error.description.contains("\n"))
    }

    @Test func refusesSymbolicLinkLeavingTheFolder() throws {
        try withTemporaryFolder { folder in
            let inside = folder.appendingPathComponent("model")
            try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
            let outside = folder.appendingPathComponent("secret.bin")
            try Data(count: 16 + 256).write(to: outside)
            try FileManager.default.createSymbolicLink(
                atPath: inside.appendingPathComponent("weights.bin").path, withDestinationPath: outside.path)
            let model = inside.appendingPathComponent("valid.onnx")
            try FileManager.default.copyItem(at: ONNXFixtures.url("external/valid.onnx"), to: model)
            let error = try #require(throws: NNPipeError.self) { try ONNXFormat().read(from: model) }
            #expect(error.description.contains("leads outside the model's folder"), "\(error)")
        }
    }

    @Test func writesExternalDataPastTheThreshold() throws {
        let original = try ONNXFormat().read(from: ONNXFixtures.url("sklearn/mlp_digits.onnx"))
        try withTemporaryFolder { folder in
            let output = folder.appendingPathComponent("mlp.onnx")
            let format = ONNXFormat(externalDataThreshold: 4096)
            try format.write(original, to: output)
            let data = folder.appendingPathComponent("mlp.onnx.data")
            #expect(FileManager.default.fileExists(atPath: data.path))
            let contents = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            #expect(contents.sorted() == ["mlp.onnx", "mlp.onnx.data"], "no temporary files left behind")
            let copy = try ONNXFormat().read(from: output)
            expectSameContent(original, copy, "external write")
            guard let result = try runInteropPython(Self.checkOffsets, [output.path]) else { return }
            #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        }
    }

    @Test func smallModelsStayInline() throws {
        let original = try ONNXFormat().read(from: ONNXFixtures.url("external/valid.onnx"))
        try withTemporaryFolder { folder in
            let output = folder.appendingPathComponent("inline.onnx")
            try ONNXFormat().write(original, to: output)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["inline.onnx"])
        }
    }

    /// The written external model passes onnx.checker, loads in onnxruntime, and uses 4096-aligned offsets.
    static let checkOffsets = #"""
import sys, onnx, onnxruntime as ort
model = onnx.load(sys.argv[1], load_external_data=False)
offsets = [int(e.value) for t in model.graph.initializer for e in t.external_data if e.key == "offset"]
assert offsets and all(o % 4096 == 0 for o in offsets), offsets
onnx.checker.check_model(sys.argv[1], full_check=True)
ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(len(offsets), "external tensors")
"""#
}
