import Foundation
import NNPipeCore
import NNPipeHDF5
import NNPipeTestKit
import Testing

@Suite("HDF5 wrapper")
struct HDF5WrapperTests {
    static let tensors: [(String, Tensor)] = [
        ("float32", Tensor(name: "a", shape: [3, 2], values: [Float](arrayLiteral: 1, 2, 3, 4, 5, -6))),
        ("float64", Tensor(name: "a", shape: [2], values: [Double](arrayLiteral: 0.5, -1e300))),
        ("int8", Tensor(name: "a", shape: [4], values: [Int8](arrayLiteral: -128, 0, 1, 127))),
        ("uint8", Tensor(name: "a", shape: [2, 2], values: [UInt8](arrayLiteral: 0, 1, 2, 255))),
        ("int32", Tensor(name: "a", shape: [1], values: [Int32](arrayLiteral: -7))),
        ("int64", Tensor(name: "a", shape: [3], values: [Int64](arrayLiteral: .min, 0, .max))),
        ("uint16", Tensor(name: "a", shape: [2], values: [UInt16](arrayLiteral: 0, 65535))),
        ("float16", Tensor(name: "a", dataType: .float16, shape: [3],
                           storage: .bytes([UInt16](arrayLiteral: 0x3C00, 0xC000, 0x7BFF).withUnsafeBytes { TensorBuffer(copying: $0) }))),
    ]

    @Test("datasets round-trip through a file", arguments: tensors)
    func datasetRoundTrip(label: String, tensor: Tensor) throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("t.h5")
        do {
            let file = try HDF5File(creating: url)
            try file.rootGroup().createDataset("deep/er/data", tensor: tensor)
        }
        let file = try HDF5File(reading: url)
        let dataset = try file.rootGroup().dataset("deep/er/data")
        #expect(dataset.shape == tensor.shape)
        #expect(dataset.dataType == tensor.dataType)
        let read = try dataset.readTensor()
        let expected = tensor.withUnsafeBytes { Array($0) }
        #expect(read.withUnsafeBytes { Array($0) } == expected)
        #expect(read.name == "/deep/er/data")
    }

    @Test("row ranges read only the selected rows")
    func rowRanges() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("rows.h5")
        let values = (0..<24).map(Float.init)
        do {
            try HDF5File(creating: url).rootGroup().createDataset("x", tensor: Tensor(name: "x", shape: [6, 2, 2], values: values))
        }
        let dataset = try HDF5File(reading: url).rootGroup().dataset("x")
        #expect(dataset.rowCount == 6)
        let middle = try dataset.readTensor(rows: 2..<4)
        #expect(middle.shape == [2, 2, 2])
        #expect(middle.values(as: Float.self) == Array(values[8..<16]))
        #expect(try dataset.readFloats(rows: 5..<6) == Array(values[20..<24]))
        #expect(try dataset.readTensor(rows: 3..<3).shape == [0, 2, 2])
        let error = try #require(throws: NNPipeError.self) { try dataset.readTensor(rows: 4..<7) }
        #expect(error.message.contains("outside 0..<6"))
    }

    @Test("attributes: strings, lists, splits, numbers")
    func attributes() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("attributes.h5")
        let many = (0..<9000).map { "layer_with_a_long_name_\($0)" }
        do {
            let root = try HDF5File(creating: url).rootGroup()
            try root.attributes.set("config", string: "{\"a\": 1}")
            try root.attributes.set("empty", string: "")
            try root.attributes.set("names", strings: ["dense", "conv2d_1", ""])
            try root.attributes.set("layer_names", splitStrings: many)
            try root.attributes.set("count", integers: [3], scalar: true)
            try root.attributes.set("scales", numbers: [0.5, 2])
            try root.createGroup("a/b").attributes.set("inner", string: "yes")
        }
        let root = try HDF5File(reading: url).rootGroup()
        #expect(try root.attributes.string("config") == "{\"a\": 1}")
        #expect(try root.attributes.string("empty") == "")
        #expect(try root.attributes.stringList("names") == ["dense", "conv2d_1", ""])
        #expect(root.attributes.contains("layer_names0"))
        #expect(!root.attributes.contains("layer_names"))
        #expect(try root.attributes.stringList("layer_names") == many)
        #expect(try root.attributes.numbers("count") == [3])
        #expect(try root.attributes.numbers("scales") == [0.5, 2])
        #expect(try root.attributes.string("missing") == nil)
        #expect(try root.memberNames() == ["a"])
        #expect(root.memberKind("a/b") == .group)
        #expect(root.memberKind("a/c/d") == nil)
        #expect(try root.group("a/b").attributes.string("inner") == "yes")
        #expect(try root.attributes.names().contains("config"))
    }

    @Test("truncated and foreign files fail with one clear line")
    func badFiles() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("good.h5")
        do {
            try HDF5File(creating: url).rootGroup().createDataset(
                "x", tensor: Tensor(name: "x", shape: [512], values: [Float](repeating: 1, count: 512)))
        }
        let bytes = try Data(contentsOf: url)
        let truncated = folder.appendingPathComponent("truncated.h5")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        let text = folder.appendingPathComponent("text.h5")
        try Data("hello".utf8).write(to: text)
        for broken in [truncated, text] {
            let error = try #require(throws: NNPipeError.self) { try HDF5File(reading: broken, errorCode: .invalidModel) }
            #expect(error.code == .invalidModel)
            #expect(error.path == broken.path)
            #expect(!error.description.contains("\n"))
            #expect(error.message.hasPrefix("not a readable HDF5 file"))
        }
        let missing = try #require(throws: NNPipeError.self) { try HDF5File(reading: folder.appendingPathComponent("nope.h5")) }
        #expect(missing.code == .io)
        let root = try HDF5File(reading: url).rootGroup()
        let noDataset = try #require(throws: NNPipeError.self) { try root.dataset("y") }
        #expect(noDataset.message == "no dataset '/y'")
        #expect(HDF5File.hasSignature(Array(bytes.prefix(16))))
        #expect(!HDF5File.hasSignature(Array("hello".utf8)))
    }
}
