import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Every tensor element type, in raw_data and in the typed field the spec assigns it.
@Suite struct ONNXDataTypeTests {
    static let typeNames = DataType.allCases.filter { $0 != .undefined }.map { type in
        // Fixture files use onnx's enum names in lower case.
        switch type {
        case .float: "float"
        case .double: "double"
        default: type.description
        }
    }
    static let storages = ["raw", "typed"]

    @Test("every dtype decodes to its raw layout", arguments: typeNames, storages)
    func decodes(typeName: String, storage: String) throws {
        if typeName == "string" && storage == "raw" { return }  // strings only live in string_data
        let url = ONNXFixtures.url("dtypes/\(typeName).\(storage).onnx")
        let model = try ONNXFormat().read(from: url)
        let tensor = try #require(model.graph.initializers.first)
        #expect(tensor.shape == [2, 3])
        let expected = try [UInt8](Data(contentsOf: ONNXFixtures.url("dtypes/\(typeName).expected")))
        #expect(tensorBytes(tensor) == expected, "\(typeName) from \(storage)")
    }

    @Test("every dtype survives a write and a read unchanged", arguments: typeNames, storages)
    func roundTrips(typeName: String, storage: String) throws {
        if typeName == "string" && storage == "raw" { return }
        let model = try ONNXFormat().read(from: ONNXFixtures.url("dtypes/\(typeName).\(storage).onnx"))
        try withTemporaryFolder { folder in
            let output = folder.appendingPathComponent("copy.onnx")
            try ONNXFormat().write(model, to: output)
            let copy = try ONNXFormat().read(from: output)
            expectSameContent(model, copy, "\(typeName).\(storage)")
        }
    }

    @Test("int32_data bit patterns narrow to the element width")
    func narrowing() throws {
        let model = try ONNXFormat().read(from: ONNXFixtures.url("dtypes/float16.typed.onnx"))
        let tensor = try #require(model.graph.initializers.first)
        let values = try #require(tensor.floatValues())
        #expect(values == [0.5, -1.25, 65504, -0, 7, 0.000_100_016_594])
    }
}
