import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

@Suite("ONNX TensorProto .pb files")
struct TensorProtoTests {
    static let types: [(name: String, type: DataType)] = [
        ("float", .float), ("double", .double), ("int32", .int32), ("int64", .int64), ("uint8", .uint8),
        ("int8", .int8), ("uint16", .uint16), ("int16", .int16), ("uint32", .uint32), ("uint64", .uint64),
        ("bool", .bool), ("float16", .float16),
    ]

    @Test("typed fields and raw_data decode to the same values", arguments: types)
    func decode(name: String, type: DataType) throws {
        for file in [name, name + "_raw"] {
            let url = DataFixtures.url("pb/typed/\(file).pb")
            let tensor = try TensorProtoDecoder.decode(Array(try Data(contentsOf: url)), location: url.path)
            #expect(tensor.name == name)
            #expect(tensor.dataType == type)
            #expect(tensor.shape == [2, 3])
            let expected = DataFixtures.pattern(samples: 0..<2, perSample: 3)
            #expect(tensor.floatValues() == (type == .bool ? expected.map { Float(Int($0) % 2) } : expected), "\(file)")
        }
    }

    @Test("a test_data_set folder feeds inputs in model order, outputs as labels")
    func folder() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("pb/test_data_set_0"), labels: "output_0"),
            expectedInputs: [
                DataFixtures.input("a", .float, [.batch, .fixed(2), .fixed(2)]),
                DataFixtures.input("b", .int64, [.batch, .fixed(4)]),
            ])
        #expect(reader.sampleCount == 3)
        let batches = try DataFixtures.readAll(reader, batchSize: 2)
        #expect(batches.count == 2)
        #expect(batches.flatMap { $0.inputs["a"]!.values(as: Float.self)! } == DataFixtures.pattern(samples: 0..<3, perSample: 4))
        #expect(batches.flatMap { $0.inputs["b"]!.values(as: Int64.self)! } == DataFixtures.pattern(samples: 0..<3, perSample: 4).map { Int64($0) })
        #expect(batches.flatMap { $0.labels!.values(as: Float.self)! } == DataFixtures.pattern(samples: 0..<3, perSample: 5))
    }

    @Test("broken folders and protos give one-line errors", arguments: [
        ("pb/corrupt", "TensorProto is truncated or corrupt"),
        ("pb/empty", "folder has no TensorProto .pb files"),
    ])
    func broken(folder: String, message: String) throws {
        let description = try #require(
            errorDescription {
                _ = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url(folder)),
                    expectedInputs: [DataFixtures.input("a", .float, nil)])
            })
        #expect(description.contains(message), "\(description)")
        #expect(description.contains(folder.split(separator: "/").last!), "\(description)")
    }

    @Test("hostile wire data is rejected", arguments: [
        [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],  // packed dims longer than the input
        [0x10, 0x01, 0x0B],  // group wire type
        [0x10, 0x63],  // unknown data_type 99
        [0x08, 0x03, 0x10, 0x01, 0x4A, 0x04, 0, 0, 0, 0],  // 4 raw bytes for 3 floats
        [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],  // overlong varint
    ] as [[UInt8]])
    func hostile(bytes: [UInt8]) {
        #expect(throws: NNPipeError.self) { _ = try TensorProtoDecoder.decode(bytes, location: "hostile.pb") }
    }
}
