import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@testable import NNPipeData

/// Fixtures made by `scripts/make_data_fixtures.py`.
enum DataFixtures {
    static func url(_ relative: String) -> URL { TestEnvironment.fixture("data/\(relative)") }

    /// The generator's `(sample * 7 + element) % 11` pattern for rows `samples` of `perSample` elements.
    static func pattern(samples: some Sequence<Int>, perSample: Int) -> [Float] {
        samples.flatMap { sample in (0..<perSample).map { Float((sample * 7 + $0) % 11) } }
    }

    static func input(_ name: String = "x", _ type: DataType = .float, _ shape: [NNPipeCore.Dimension]?)
        -> ExpectedInput
    {
        ExpectedInput(name: name, elementType: type, shape: shape)
    }

    /// The first batch of `size`.
    static func first(_ reader: DatasetReader, size: Int) throws -> Batch {
        var iterator = try reader.batches(size: size)
        return try #require(try iterator.next())
    }

    /// Reads every batch and returns them.
    static func readAll(_ reader: DatasetReader, batchSize: Int) throws -> [Batch] {
        var batches: [Batch] = []
        try reader.forEachBatch(size: batchSize) { batches.append($0) }
        return batches
    }
}

/// Runs `body`, requires an `NNPipeError`, and returns its one-line description.
func errorDescription(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as NNPipeError {
        return error.description
    } catch {
        return "not an NNPipeError: \(error)"
    }
}

extension NNPipeCore.Dimension {
    static let batch = NNPipeCore.Dimension.symbolic("batch")
}
