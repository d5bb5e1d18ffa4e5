import Foundation
import NNPipeTestKit
import Testing

/// Runs the fixture script with the interop Python, or returns nil (skipping visibly) when the
/// interop environment is missing outside CI; in CI a missing environment is a failure.
func runFixtureScript(_ arguments: [String]) throws -> ProcessResult? {
    guard let python = TestEnvironment.python else {
        let message = "Python interop environment not found: run scripts/setup-python.sh or set NNPIPE_PYTHON"
        if TestEnvironment.isCI { Issue.record(Comment(rawValue: message)) }
        print("SKIPPED interop check: \(message)")
        return nil
    }
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/make_quantize_fixtures.py").path
    return try ProcessRunner.run(python, [script] + arguments)
}

/// A flat little-endian binary file as an array of `Element`.
func readArray<Element>(_ url: URL, as type: Element.Type) throws -> [Element] {
    let data = try Data(contentsOf: url)
    let count = data.count / MemoryLayout<Element>.stride
    return [Element](unsafeUninitializedCapacity: count) { destination, initialized in
        data.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(count * MemoryLayout<Element>.stride)]))
        }
        initialized = count
    }
}
