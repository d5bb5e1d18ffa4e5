import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

@Suite("DatasetReader: shapes, batching, shuffle, limit")
struct DatasetReaderTests {
    static let mismatches: [(file: String, key: String?, shape: [NNPipeCore.Dimension], message: String)] = [
        ("npy/dtype_f4.npy", nil, [.batch, .fixed(1), .fixed(2), .fixed(3)],
         "dtype_f4.npy: array: data shape [6,2,3] does not match model input 'x' shape [batch,1,2,3]"),
        ("npy/dtype_f4.npy", nil, [.batch, .fixed(2), .fixed(4)],
         "data shape [6,2,3] does not match model input 'x' shape [batch,2,4]"),
        ("h5/digits.h5", "train/x", [.symbolic("N"), .fixed(4), .fixed(4), .fixed(1)],
         "digits.h5: array 'train/x': data shape [20,1,4,4] does not match model input 'x' shape [N,4,4,1]"),
        ("npz/stored.npz", "x", [.batch], "array 'x': data shape [10,4] does not match model input 'x' shape [batch]"),
    ]

    @Test("shape mismatches quote both shapes, the file and the key", arguments: mismatches)
    func shapeMismatch(file: String, key: String?, shape: [NNPipeCore.Dimension], message: String) throws {
        let description = try #require(
            errorDescription {
                _ = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url(file), inputs: .single(key: key)),
                    expectedInputs: [DataFixtures.input("x", .float, shape)])
            })
        #expect(description.contains(message), "\(description)")
    }

    @Test("symbolic, unknown and fixed batch dimensions all accept the data", arguments: [
        [NNPipeCore.Dimension.symbolic("n"), .unknown, .fixed(3)], [.fixed(1), .fixed(2), .symbolic("w")],
        [.unknown, .unknown, .unknown],
    ])
    func flexibleDimensions(shape: [NNPipeCore.Dimension]) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/dtype_f4.npy")),
            expectedInputs: [DataFixtures.input("x", .float, shape)])
        #expect(reader.sampleCount == 6)
    }

    @Test("shuffle is a seeded permutation: same seed same order, limit takes its prefix", arguments: [0, 1, 42] as [UInt64])
    func shuffle(seed: UInt64) throws {
        let order = DatasetReader.shuffledOrder(count: 10, seed: seed)
        #expect(order.sorted() == Array(0..<10))
        #expect(order == DatasetReader.shuffledOrder(count: 10, seed: seed))
        #expect(order != DatasetReader.shuffledOrder(count: 10, seed: seed + 100))

        let reader = try DatasetReader(
            source: DatasetSource(
                path: DataFixtures.url("npz/stored.npz"), inputs: .single(key: "x"), labels: "y", limit: 7,
                shuffle: true, seed: seed),
            expectedInputs: [DataFixtures.input("x", .float, [.batch, .fixed(4)])])
        #expect(reader.sampleCount == 7)
        let batches = try DataFixtures.readAll(reader, batchSize: 3)
        #expect(batches.map(\.range) == [0..<3, 3..<6, 6..<7])
        let expectedOrder = Array(order.prefix(7))
        #expect(batches.flatMap { $0.inputs["x"]!.values(as: Float.self)! } == DataFixtures.pattern(samples: expectedOrder, perSample: 4))
        #expect(batches.flatMap { $0.labels!.values(as: Int64.self)! } == expectedOrder.map { Int64($0 % 3) })
    }

    @Test("the shuffle order is pinned, so data sets shuffle the same on every machine and release")
    func pinnedOrder() {
        var generator = SeededGenerator(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)  // the published SplitMix64 reference value
        #expect(DatasetReader.shuffledOrder(count: 8, seed: 42) == [3, 1, 6, 2, 4, 0, 7, 5])
    }

    @Test("limit without shuffle takes the first samples", arguments: [1, 5, 10, 1000])
    func limit(limit: Int) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npz/stored.npz"), inputs: .single(key: "x"), limit: limit),
            expectedInputs: [DataFixtures.input("x", .float, nil)])
        #expect(reader.sampleCount == min(limit, 10))
        let values = try DataFixtures.readAll(reader, batchSize: 4).flatMap { $0.inputs["x"]!.values(as: Float.self)! }
        #expect(values == DataFixtures.pattern(samples: 0..<min(limit, 10), perSample: 4))
    }

    static let usageErrors: [(label: String, inputs: DatasetSource.InputSelection, limit: Int?, message: String)] = [
        ("zero limit", .single(key: "x"), 0, "limit must be at least 1, got 0"),
        ("one key, two inputs", .single(key: "image"), nil, "the model has 2 inputs (image, mask)"),
        ("unknown input name", .named(["image": "image", "masq": "mask"]), nil, "'masq' is not a model input (inputs: image, mask)"),
        ("unmapped input", .named(["image": "image"]), nil, "no array given for model input 'mask'"),
    ]

    @Test("selection errors name what is wrong", arguments: usageErrors)
    func usage(label: String, inputs: DatasetSource.InputSelection, limit: Int?, message: String) throws {
        let description = try #require(
            errorDescription {
                _ = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url("npz/by_input_name.npz"), inputs: inputs, limit: limit),
                    expectedInputs: [DataFixtures.input("image", .float, nil), DataFixtures.input("mask", .float, nil)])
            })
        #expect(description.contains(message), "\(label): \(description)")
    }

    @Test("row gathering: any order, repeats, gaps read through or skipped by row size", arguments: [
        (rowLength: 1, indices: [5, 0, 3, 3, 9, 1]),
        (rowLength: 20_000, indices: [5, 0, 3, 3, 9, 1]),  // 80 KB rows: gaps are too big to read through
        (rowLength: 3, indices: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
        (rowLength: 3, indices: [2]),
    ])
    func gather(rowLength: Int, indices: [Int]) throws {
        let values = (0..<(10 * rowLength)).map { Float($0) }
        let bytes = values.withUnsafeBytes { Array($0) }
        let array = ContiguousDatasetArray(
            source: MemoryByteSource(bytes, location: "memory"), dataOffset: 0, elementType: .float,
            shape: [10, rowLength], file: "memory", key: "rows")
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: indices.count * rowLength * 4, alignment: 16)
        defer { destination.deallocate() }
        try array.readRows(indices, into: destination)
        let read = (0..<(indices.count * rowLength)).map { destination.load(fromByteOffset: $0 * 4, as: Float.self) }
        #expect(read == indices.flatMap { row in values[(row * rowLength)..<((row + 1) * rowLength)] })
    }

    @Test("named inputs map model inputs to arrays")
    func named() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npz/by_input_name.npz"), inputs: .named(["first": "mask", "second": "image"])),
            expectedInputs: [DataFixtures.input("first", .uint8, [.batch, .fixed(2)]), DataFixtures.input("second", .double, nil)])
        let batch = try DataFixtures.first(reader, size: 2)
        #expect(batch.inputs["first"]?.dataType == .uint8)
        #expect(batch.inputs["first"]?.shape == [2, 2])
        #expect(batch.inputs["second"]?.values(as: Double.self) == DataFixtures.pattern(samples: 0..<2, perSample: 4).map(Double.init))
    }

    @Test("batch size below 1 is a usage error")
    func batchSize() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/dtype_f4.npy")),
            expectedInputs: [DataFixtures.input("x", .float, nil)])
        #expect(throws: NNPipeError.self) { _ = try reader.batches(size: 0) }
    }

    @Test("string model inputs are refused up front")
    func stringInput() throws {
        let description = try #require(
            errorDescription {
                _ = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url("npy/dtype_f4.npy")),
                    expectedInputs: [DataFixtures.input("text", .string, nil)])
            })
        #expect(description.contains("model input 'text' takes string"))
    }
}
