import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

/// Seeded byte mutations of valid fixtures: every outcome must be data or an `NNPipeError`,
/// never a crash, a hang or another error type.
@Suite("Mutated data files")
struct MutationTests {
    @Test("mutated files read or fail cleanly", arguments: [
        "npy/dtype_f4.npy", "npy/version_2.npy", "npz/stored.npz", "npz/small_compressed.npz",
        "pb/test_data_set_0/input_0.pb", "pb/typed/float16.pb",
    ])
    func mutate(fixture: String) throws {
        let original = [UInt8](try Data(contentsOf: DataFixtures.url(fixture)))
        let folder = try TestEnvironment.temporaryFolder("mutations")
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = SeededGenerator(seed: UInt64(fixture.utf8.count))
        let isFolder = fixture.hasPrefix("pb/")
        var outcomes = (read: 0, refused: 0)
        for round in 0..<80 {
            var bytes = original
            // Mostly a few flipped bytes; sometimes a truncation or an overwritten run.
            switch generator.next(below: 4) {
            case 0: bytes.removeLast(Int(generator.next(below: UInt64(bytes.count))))
            case 1:
                let start = Int(generator.next(below: UInt64(bytes.count)))
                for index in start..<min(bytes.count, start + 8) { bytes[index] = 0xFF }
            default:
                for _ in 0..<(1 + Int(generator.next(below: 4))) {
                    bytes[Int(generator.next(below: UInt64(bytes.count)))] ^= UInt8(1 + generator.next(below: 255))
                }
            }
            let url: URL
            if isFolder {
                let setFolder = folder.appendingPathComponent("set\(round)")
                try FileManager.default.createDirectory(at: setFolder, withIntermediateDirectories: true)
                url = setFolder
                try Data(bytes).write(to: setFolder.appendingPathComponent("input_0.pb"))
            } else {
                url = folder.appendingPathComponent("\(round).\(URL(fileURLWithPath: fixture).pathExtension)")
                try Data(bytes).write(to: url)
            }
            do {
                let key: String? = fixture.hasPrefix("npz") ? "x" : nil
                let reader = try DatasetReader(
                    source: DatasetSource(path: url, inputs: .single(key: key)),
                    expectedInputs: [ExpectedInput(name: "x", elementType: .float, shape: nil)])
                _ = try DataFixtures.readAll(reader, batchSize: 4)
                outcomes.read += 1
            } catch let error as NNPipeError {
                #expect(!error.description.contains("\n"))
                outcomes.refused += 1
            }
        }
        #expect(outcomes.refused > 0, "no mutation of \(fixture) was caught")
    }
}
