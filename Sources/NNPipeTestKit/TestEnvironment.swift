import Foundation

/// Where tests find the repository, its fixtures and the Python interpreter used for
/// interop checks (onnx.checker, onnxruntime, Keras).
public enum TestEnvironment {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `Tests/Fixtures/<relative>`.
    public static func fixture(_ relative: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative)
    }

    /// True when running under CI (`CI=true`), where missing interop tools are a failure, not a skip.
    public static var isCI: Bool {
        ProcessInfo.processInfo.environment["CI"].map { $0 == "true" || $0 == "1" } ?? false
    }

    /// The interpreter for interop checks: `$NNPIPE_PYTHON`, else `<repo>/.venv/bin/python3`
    /// (made by `scripts/setup-python.sh`). Nil when neither exists.
    public static var python: URL? {
        if let explicit = ProcessInfo.processInfo.environment["NNPIPE_PYTHON"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit)
        }
        let venv = repositoryRoot.appendingPathComponent(".venv/bin/python3")
        return FileManager.default.isExecutableFile(atPath: venv.path) ? venv : nil
    }

    /// A fresh temporary folder, removed by the caller when done.
    public static func temporaryFolder(_ label: String = "nnpipe-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs a process and collects its output; used for Python interop checks and CLI tests.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
}

public enum ProcessRunner {
    public static func run(_ executable: URL, _ arguments: [String], currentDirectory: URL? = nil,
                           environment: [String: String]? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let errorData = LockedData()
        let reader = Thread { errorData.set(error.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errorData.isSet { usleep(1000) }
        return ProcessResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData.value, as: UTF8.self))
    }

    /// Runs `code` with the interop Python; throws a readable error if Python is missing or fails.
    public static func python(_ code: String, _ arguments: [String] = []) throws -> ProcessResult {
        guard let python = TestEnvironment.python else {
            throw InteropUnavailable()
        }
        return try run(python, ["-c", code] + arguments)
    }
}

/// Thrown when the interop Python is absent; tests skip with a message outside CI and fail in CI.
public struct InteropUnavailable: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "Python interop environment not found: run scripts/setup-python.sh or set NNPIPE_PYTHON"
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ value: Data) {
        lock.lock()
        data = value
        done = true
        lock.unlock()
    }
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return done
    }
    var value: Data {
        lock.lock()
        defer { lock.unlock() }
        return data
    }
}
