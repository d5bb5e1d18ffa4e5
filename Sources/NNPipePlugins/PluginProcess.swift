import Foundation
import NNPipeCore

/// Runs a plugin executable with a time limit, collecting its output.
enum PluginProcess {
    struct Outcome {
        var status: Int32
        var terminatedBySignal: Bool
        var timedOut: Bool
        var standardOutput: Data
        var standardError: Data
    }

    /// - Parameter timeout: seconds; the process (and its group) is killed when it passes.
    static func run(_ executable: URL, arguments: [String], timeout: Double, workingDirectory: URL? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw NNPipeError(.stageFailed, "cannot start plugin: \(error.localizedDescription)", path: executable.path)
        }
        // Drain both pipes on their own threads: a plugin writing a lot must never block.
        let outputCollector = Collector(output.fileHandleForReading)
        let errorCollector = Collector(error.fileHandleForReading)
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                process.terminate()
                usleep(200_000)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            usleep(10_000)
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            terminatedBySignal: process.terminationReason == .uncaughtSignal,
            timedOut: timedOut,
            standardOutput: outputCollector.finish(),
            standardError: errorCollector.finish())
    }

    /// Reads a pipe to its end on a background thread.
    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private var done = false
        private let handle: FileHandle

        init(_ handle: FileHandle) {
            self.handle = handle
            let thread = Thread { [self] in
                let all = handle.readDataToEndOfFile()
                lock.lock()
                data = all
                done = true
                lock.unlock()
            }
            thread.start()
        }

        func finish() -> Data {
            // The child has exited; its pipe closes unless a grandchild holds it, so wait briefly.
            for _ in 0..<500 {
                lock.lock()
                if done {
                    lock.unlock()
                    return data
                }
                lock.unlock()
                usleep(2_000)
            }
            return Data()
        }
    }
}
