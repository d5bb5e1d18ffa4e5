import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

@Suite("NumPy .npy files")
struct NumpyReadingTests {
    static let dtypes: [(file: String, type: DataType)] = [
        ("f2", .float16), ("f4", .float), ("f8", .double), ("i1", .int8), ("i2", .int16), ("i4", .int32),
        ("i8", .int64), ("u1", .uint8), ("u2", .uint16), ("u4", .uint32), ("u8", .uint64), ("b1", .bool),
    ]

    @Test("every dtype reads with its element type and converts to float32", arguments: dtypes)
    func dtype(file: String, type: DataType) throws {
        let source = try FileByteSource(url: DataFixtures.url("npy/dtype_\(file).npy"))
        let header = try NumpyHeader.read(from: source)
        #expect(header.dataType == type)
        #expect(header.shape == [6, 2, 3])

        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/dtype_\(file).npy")),
            expectedInputs: [DataFixtures.input("x", .float, [.batch, .fixed(2), .fixed(3)])])
        let batches = try DataFixtures.readAll(reader, batchSize: 4)
        #expect(batches.map(\.range) == [0..<4, 4..<6])
        let values = try #require(batches.flatMap { $0.inputs["x"]?.values(as: Float.self) ?? [] })
        let expected = DataFixtures.pattern(samples: 0..<6, perSample: 6)
        #expect(values == (type == .bool ? expected.map { Float(Int($0) % 2) } : expected))
    }

    @Test("every dtype converts to the model's int64 input", arguments: dtypes.filter { $0.type != .bool })
    func toInt64(file: String, type: DataType) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/dtype_\(file).npy")),
            expectedInputs: [DataFixtures.input("ids", .int64, [.batch, .fixed(2), .fixed(3)])])
        let batch = try DataFixtures.first(reader, size: 6)
        let values = try #require(batch.inputs["ids"]?.values(as: Int64.self))
        #expect(values == DataFixtures.pattern(samples: 0..<6, perSample: 6).map { Int64($0) })
    }

    @Test("header versions", arguments: [1, 2, 3])
    func versions(major: Int) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/version_\(major).npy")),
            expectedInputs: [DataFixtures.input("x", .float, [.batch, .fixed(4)])])
        #expect(reader.sampleCount == 5)
        let batch = try DataFixtures.first(reader, size: 8)
        #expect(batch.inputs["x"]?.shape == [5, 4])
        #expect(batch.inputs["x"]?.values(as: Float.self) == DataFixtures.pattern(samples: 0..<5, perSample: 4))
    }

    @Test("float64 data feeds float16 and bfloat16 inputs")
    func halfPrecisionTargets() throws {
        for type in [DataType.float16, .bfloat16] {
            let reader = try DatasetReader(
                source: DatasetSource(path: DataFixtures.url("npy/dtype_f8.npy")),
                expectedInputs: [DataFixtures.input("x", type, nil)])
            let batch = try DataFixtures.first(reader, size: 6)
            #expect(batch.inputs["x"]?.floatValues() == DataFixtures.pattern(samples: 0..<6, perSample: 6))
        }
    }

    @Test("labels in a sibling .npy")
    func siblingLabels() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/dtype_f4.npy"), labels: "labels"),
            expectedInputs: [DataFixtures.input("x", .float, nil)])
        let batch = try DataFixtures.first(reader, size: 6)
        #expect(batch.labels?.values(as: Int64.self) == [0, 1, 2, 0, 1, 2])
        #expect(batch.labels?.dataType == .int64)
    }

    @Test("a scalar array is one unbatched sample")
    func scalar() throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npy/scalar.npy")),
            expectedInputs: [DataFixtures.input("x", .double, [])])
        #expect(reader.sampleCount == 1)
        let batch = try DataFixtures.first(reader, size: 4)
        #expect(batch.inputs["x"]?.shape == [Int]())
        #expect(batch.inputs["x"]?.values(as: Double.self) == [3.5])
    }

    static let refused: [(file: String, message: String)] = [
        ("npy/fortran.npy", "Fortran-order .npy arrays are not supported"),
        ("npy/big_endian.npy", "big-endian .npy dtype '>f4'"),
        ("npy/structured.npy", "structured .npy arrays"),
        ("npy/complex.npy", ".npy dtype '<c8' is not supported"),
        ("npy/truncated.npy", "truncated: shape [6, 2, 3] of float32 needs 144 data bytes, file has 134"),
        ("npy/truncated_header.npy", "truncated .npy header"),
        ("npy/bad_magic.npy", "not a data set"),
        ("npy/bad_version.npy", ".npy format version 9.0"),
        ("npy/empty.npy", "array has no samples"),
        ("npy/fractions.npy", "fractions.npy: array, sample 0, for input 'x': value 0.5 is not a whole number"),
        ("npy/large_values.npy", "array, sample 0, for input 'x': value 300 does not fit int8"),
        ("not_data.bin", "not a data set"),
        ("npy/missing.npy", "data set not found"),
    ]

    @Test("refused and corrupt files give one-line errors naming the file", arguments: refused)
    func refusedFiles(file: String, message: String) throws {
        let description = try #require(
            errorDescription {
                let type: DataType = file.contains("large_values") ? .int8 : (file.contains("fractions") ? .int32 : .float)
                let reader = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url(file)),
                    expectedInputs: [DataFixtures.input("x", type, nil)])
                _ = try DataFixtures.readAll(reader, batchSize: 2)
            })
        #expect(description.contains(message), "\(description)")
        #expect(description.contains(URL(fileURLWithPath: file).lastPathComponent), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("header encoding round-trips through the parser", arguments: [[3], [2, 3], [], [0, 5]])
    func encodeHeader(shape: [Int]) throws {
        let bytes = try #require(NumpyHeader.encode(dataType: .float, shape: shape))
        #expect(bytes.count % 64 == 0)
        let padded = bytes + [UInt8](repeating: 0, count: 4 * shape.reduce(1, *))
        let header = try NumpyHeader.read(from: MemoryByteSource(padded, location: "memory"))
        #expect(header == NumpyHeader(dataType: .float, shape: shape, dataOffset: bytes.count))
    }
}
