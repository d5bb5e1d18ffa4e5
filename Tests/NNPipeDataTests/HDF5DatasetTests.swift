import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

@Suite("HDF5 data sets")
struct HDF5DatasetTests {
    @Test("datasets by path, contiguous, chunked+gzip and other dtypes", arguments: [
        "train/x", "/train/x", "train/x_gzip", "train/x_u8", "train/x_f8", "train/x_f2", "train/x_i1",
    ])
    func byPath(key: String) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("h5/digits.h5"), inputs: .single(key: key), labels: "train/y"),
            expectedInputs: [DataFixtures.input("image", .float, [.batch, .fixed(1), .fixed(4), .fixed(4)])])
        #expect(reader.sampleCount == 20)
        let batches = try DataFixtures.readAll(reader, batchSize: 8)
        #expect(batches.map(\.range) == [0..<8, 8..<16, 16..<20])
        #expect(batches.flatMap { $0.inputs["image"]!.values(as: Float.self)! } == DataFixtures.pattern(samples: 0..<20, perSample: 16))
        #expect(batches.flatMap { $0.labels!.values(as: Int64.self)! } == (0..<20).map { Int64($0 % 10) })
    }

    @Test("shuffled reads gather rows in sorted runs and return them in shuffled order")
    func shuffled() throws {
        let reader = try DatasetReader(
            source: DatasetSource(
                path: DataFixtures.url("h5/digits.h5"), inputs: .single(key: "train/x_gzip"), labels: "train/y",
                limit: 12, shuffle: true, seed: 5),
            expectedInputs: [DataFixtures.input("image", .float, [.batch, .fixed(1), .fixed(4), .fixed(4)])])
        let order = Array(DatasetReader.shuffledOrder(count: 20, seed: 5).prefix(12))
        let batches = try DataFixtures.readAll(reader, batchSize: 5)
        #expect(batches.flatMap { $0.inputs["image"]!.values(as: Float.self)! } == DataFixtures.pattern(samples: order, perSample: 16))
        #expect(batches.flatMap { $0.labels!.values(as: Int64.self)! } == order.map { Int64($0 % 10) })
    }

    @Test("h5py bool datasets read as 0/1")
    func bool() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("h5/digits.h5"), inputs: .single(key: "train/mask")),
            expectedInputs: [DataFixtures.input("mask", .bool, [.batch, .fixed(1), .fixed(4), .fixed(4)])])
        let batch = try DataFixtures.first(reader, size: 20)
        #expect(batch.inputs["mask"]?.floatValues() == DataFixtures.pattern(samples: 0..<20, perSample: 16).map { Float(Int($0) % 2) })
    }

    static let broken: [(file: String, key: String?, message: String)] = [
        ("h5/digits.h5", "train/z", "no array 'train/z' (has: names, scalar, test/x, test/y, train/mask, train/x"),
        ("h5/digits.h5", nil, "name the array for model input 'image'"),
        ("h5/digits.h5", "names", "array 'names' has an element type that cannot feed a model"),
        ("h5/digits.h5", "test/x", "array 'test/x' has 8 samples but array 'train/y' has 20"),
        ("h5/digits.h5", "train", "no array 'train'"),
        ("h5/truncated.h5", "train/x", "not a readable HDF5 file"),
    ]

    @Test("missing, refused and corrupt HDF5 data give one-line errors", arguments: broken)
    func brokenFiles(file: String, key: String?, message: String) throws {
        let description = try #require(
            errorDescription {
                let reader = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url(file), inputs: .single(key: key), labels: "train/y"),
                    expectedInputs: [DataFixtures.input("image", .float, nil)])
                _ = try DataFixtures.readAll(reader, batchSize: 4)
            })
        #expect(description.contains(message), "\(description)")
        #expect(description.contains(URL(fileURLWithPath: file).lastPathComponent), "\(description)")
        #expect(!description.contains("\n"))
    }
}
