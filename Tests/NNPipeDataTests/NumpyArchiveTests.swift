import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

@Suite("NumPy .npz archives, zip and inflate")
struct NumpyArchiveTests {
    @Test("stored and deflated archives give the same arrays", arguments: ["stored", "compressed"])
    func storedAndCompressed(file: String) throws {
        let reader = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npz/\(file).npz"), inputs: .single(key: "x"), labels: "y"),
            expectedInputs: [DataFixtures.input("x", .float, [.batch, .fixed(4)])])
        #expect(reader.sampleCount == 10)
        #expect(reader.inputShapes == ["x": [10, 4]])
        #expect(reader.labelsShape == [10])
        #expect(reader.labelsElementType == .int64)
        let batches = try DataFixtures.readAll(reader, batchSize: 3)
        #expect(batches.map(\.range) == [0..<3, 3..<6, 6..<9, 9..<10])
        #expect(batches.flatMap { $0.inputs["x"]!.values(as: Float.self)! } == DataFixtures.pattern(samples: 0..<10, perSample: 4))
        #expect(batches.flatMap { $0.labels!.values(as: Int64.self)! } == (0..<10).map { Int64($0 % 3) })
    }

    @Test("deflate streams of every zlib level and block type", arguments: ["level0", "level1", "level6", "level9"])
    func levels(member: String) throws {
        let archive = try ZipArchive(url: DataFixtures.url("npz/levels.npz"))
        let entry = try #require(archive.entry(named: "\(member).npy"))
        #expect(entry.isCompressed)
        // In memory, and through a scratch file as members over the in-memory limit are.
        for limit in [ZipArchive.inMemoryLimit, 0] {
            let source = try archive.byteSource(for: entry, inMemoryLimit: limit)
            #expect((source is FileByteSource) == (limit == 0))
            let array = try ContiguousDatasetArray(numpy: source, file: "levels.npz", key: member)
            #expect(array.shape == [500, 10])
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 500 * 40, alignment: 16)
            defer { raw.deallocate() }
            try array.readContiguousRows(start: 0, count: 500, into: raw)
            let values = (0..<5000).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
            #expect(values == (0..<5000).map { Int32($0 / 3) })
        }
    }

    @Test("a stream longer than one output piece inflates across flushes")
    func longStream() throws {
        // 1.2 MB of a repeating 251-byte cycle: stored blocks of 65,535 bytes, past one 1 MiB flush.
        let original = (0..<1_200_000).map { UInt8($0 % 251) }
        var stream: [UInt8] = []
        var offset = 0
        while offset < original.count {
            let length = min(65_535, original.count - offset)
            let isLast: UInt8 = offset + length == original.count ? 1 : 0
            stream += [isLast, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            stream += original[offset..<(offset + length)]
            offset += length
        }
        #expect(try Inflate.decompress(stream, expectedCount: original.count) == original)
    }

    @Test("incompressible data (deflate stored blocks) inflates exactly")
    func noise() throws {
        let archive = try ZipArchive(url: DataFixtures.url("npz/compressed.npz"))
        let entry = try #require(archive.entry(named: "noise.npy"))
        let bytes = try archive.contents(of: entry)
        #expect(bytes.count == entry.uncompressedSize)
        #expect(CRC32.checksum(bytes) == entry.checksum)
    }

    @Test("one array is picked without a key; arrays named after model inputs feed them")
    func defaults() throws {
        let single = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npz/single.npz")),
            expectedInputs: [DataFixtures.input("anything", .float, nil)])
        #expect(single.sampleCount == 10)

        let named = try DatasetReader(
            source: DatasetSource(path: DataFixtures.url("npz/by_input_name.npz"), labels: "y"),
            expectedInputs: [
                DataFixtures.input("image", .float, [.batch, .fixed(4)]),
                DataFixtures.input("mask", .float, [.batch, .fixed(2)]),
            ])
        let batch = try DataFixtures.first(named, size: 10)
        #expect(batch.inputs["mask"]?.values(as: Float.self) == DataFixtures.pattern(samples: 0..<10, perSample: 2))
        #expect(Set(batch.inputs.keys) == ["image", "mask"])
    }

    static let broken: [(file: String, key: String?, message: String)] = [
        ("npz/truncated.npz", "x", "not a zip archive"),
        ("npz/garbage.npz", "x", "not a zip archive"),
        ("npz/corrupt_deflate.npz", "x", "[x.npy]: corrupt deflate data"),
        ("npz/understated.npz", "x", "[x.npy]: corrupt deflate data: inflates past the 100 bytes the archive declares"),
        ("npz/stored.npz", "z", "no array 'z' (has: x, y, onehot)"),
        ("npz/levels.npz", nil, "name the array for model input 'x' (has: level0, level1, level6, level9)"),
        ("npz/mismatched_count.npz", "x", "array 'x' has 10 samples but array 'y' has 9"),
    ]

    @Test("corrupt archives and wrong keys give one-line errors", arguments: broken)
    func brokenArchives(file: String, key: String?, message: String) throws {
        let description = try #require(
            errorDescription {
                let reader = try DatasetReader(
                    source: DatasetSource(path: DataFixtures.url(file), inputs: .single(key: key), labels: "y"),
                    expectedInputs: [DataFixtures.input("x", .float, nil)])
                _ = try DataFixtures.readAll(reader, batchSize: 4)
            })
        #expect(description.contains(message), "\(description)")
        #expect(description.contains(URL(fileURLWithPath: file).lastPathComponent), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("inflate rejects malformed streams without crashing", arguments: [
        [UInt8](), [0x07], [0x01, 0x05, 0x00, 0xFA, 0xFF], [0xFF, 0xFF, 0xFF, 0xFF], [0x03, 0x00, 0x00],
    ])
    func malformedDeflate(stream: [UInt8]) {
        #expect(throws: NNPipeError.self) { _ = try Inflate.decompress(stream, expectedCount: 3) }
    }

    @Test("numpy's savez_compressed of random data matches the same array saved uncompressed")
    func interopRandom() throws {
        guard TestEnvironment.python != nil else {
            if TestEnvironment.isCI { Issue.record("Python interop environment not found") }
            return
        }
        let folder = try TestEnvironment.temporaryFolder("npz-interop")
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = """
            import numpy as np, sys
            rng = np.random.default_rng(11)
            a = rng.standard_normal((300, 7, 9)).astype('<f4')
            b = rng.integers(-5, 5, size=(300, 40)).astype('<i2')
            np.savez_compressed(sys.argv[1] + '/packed.npz', a=a, b=b)
            np.savez(sys.argv[1] + '/plain.npz', a=a, b=b)
            """
        let result = try ProcessRunner.python(script, [folder.path])
        try #require(result.status == 0, "\(result.standardError)")
        let packed = try ZipArchive(url: folder.appendingPathComponent("packed.npz"))
        let plain = try ZipArchive(url: folder.appendingPathComponent("plain.npz"))
        for name in ["a.npy", "b.npy"] {
            let compressed = try #require(packed.entry(named: name))
            #expect(compressed.isCompressed)
            #expect(try packed.contents(of: compressed) == plain.contents(of: try #require(plain.entry(named: name))))
        }
    }

    @Test("CRC-32 check value")
    func checksum() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}

@Suite("Writing .npz outputs")
struct NumpyArchiveWriterTests {
    @Test("appended batches read back as one array per output")
    func roundTrip() throws {
        let folder = try TestEnvironment.temporaryFolder("npz-writer")
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("outputs.npz")
        let writer = NumpyArchiveWriter(url: url)
        try writer.append(Tensor(name: "logits", shape: [2, 3], values: [Float](repeating: 1, count: 6)), as: "logits")
        try writer.append(Tensor(name: "ids", shape: [2], values: [Int64(4), 5]), as: "ids")
        try writer.append(Tensor(name: "logits", shape: [1, 3], values: [Float(7), 8, 9]), as: "logits")
        try writer.append(Tensor(name: "ids", shape: [1], values: [Int64(6)]), as: "ids")
        try writer.finish()
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["outputs.npz"])

        let logits = try DatasetReader(
            source: DatasetSource(path: url, inputs: .single(key: "logits"), labels: "ids"),
            expectedInputs: [DataFixtures.input("logits", .float, [.batch, .fixed(3)])])
        let batch = try DataFixtures.first(logits, size: 10)
        #expect(batch.inputs["logits"]?.values(as: Float.self) == [1, 1, 1, 1, 1, 1, 7, 8, 9])
        #expect(batch.labels?.values(as: Int64.self) == [4, 5, 6])
        let archive = try ZipArchive(url: url)
        #expect(archive.entries.map(\.name) == ["logits.npy", "ids.npy"])
        for entry in archive.entries { _ = try archive.contents(of: entry) }  // CRC-32 checked

        if let python = TestEnvironment.python {
            let result = try ProcessRunner.run(
                python,
                ["-c", "import numpy as n, sys; d = n.load(sys.argv[1]); print(d['logits'].tolist(), d['ids'].tolist())", url.path])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [7.0, 8.0, 9.0]] [4, 5, 6]"))
        }
    }

    @Test("an output that changes shape between batches is an error and leaves no file")
    func shapeChange() throws {
        let folder = try TestEnvironment.temporaryFolder("npz-writer")
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = NumpyArchiveWriter(url: folder.appendingPathComponent("out.npz"))
        try writer.append(Tensor(name: "y", shape: [1, 2], values: [Float(1), 2]), as: "y")
        let description = try #require(
            errorDescription { try writer.append(Tensor(name: "y", shape: [1, 3], values: [Float(1), 2, 3]), as: "y") })
        #expect(description.contains("output 'y' changed from float32 [N,2] to float32 [1, 3]"))
    }
}
