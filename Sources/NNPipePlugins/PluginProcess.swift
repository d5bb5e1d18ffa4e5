import Foundation
import NNPipeCore

/// Runs a plugin executable with a time limit, collecting its output.
///
/// The plugin gets its own process group so a timeout stops everything it started
/// (a shell script's `sleep`, a Python worker), not only the first process.
enum PluginProcess {
    struct Outcome {
        var status: Int32
        var terminatedBySignal: Bool
        var timedOut: Bool
        var standardOutput: Data
        var standardError: Data
    }

    /// - Parameter timeout: seconds; the whole process group is killed when it passes.
    static func run(_ executable: URL, arguments: [String], timeout: Double) throws -> Outcome {
        var outputPipe: [Int32] = [0, 0]
        var errorPipe: [Int32] = [0, 0]
        guard pipe(&outputPipe) == 0, pipe(&errorPipe) == 0 else {
            throw NNPipeError(.io, "cannot create pipes for the plugin", path: executable.path)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        for descriptor in outputPipe + errorPipe { posix_spawn_file_actions_addclose(&actions, descriptor) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var processID: pid_t = 0
        let spawned = posix_spawn(&processID, executable.path, &actions, &attributes, argv, environ)
        close(outputPipe[1])
        close(errorPipe[1])
        guard spawned == 0 else {
            close(outputPipe[0])
            close(errorPipe[0])
            throw NNPipeError(.stageFailed, "cannot start plugin: \(String(cString: strerror(spawned)))", path: executable.path)
        }
        // Drain both pipes on their own threads: a plugin writing a lot must never block.
        // Both are bounded: a plugin printing without end must not grow nnpipe's memory with it.
        // Standard output carries `describe`'s JSON (small); of standard error only the last line is shown.
        let outputCollector = Collector(outputPipe[0], keep: .first(16 << 20))
        let errorCollector = Collector(errorPipe[0], keep: .last(64 << 10))

        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        var status: Int32 = 0
        while true {
            let finished = waitpid(processID, &status, WNOHANG)
            if finished == processID || finished < 0 { break }
            if Date() > deadline {
                timedOut = true
                kill(-processID, SIGKILL)
                waitpid(processID, &status, 0)
                break
            }
            usleep(5_000)
        }
        // Anything the plugin left running in its group goes too, so the pipes close.
        kill(-processID, SIGKILL)
        let signaled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
        return Outcome(
            status: signaled ? status & 0x7F : (status >> 8) & 0xFF,
            terminatedBySignal: signaled && !timedOut,
            timedOut: timedOut,
            standardOutput: outputCollector.finish(),
            standardError: errorCollector.finish())
    }

    /// Reads a file descriptor to its end on a background thread, then closes it, keeping at most
    /// a bounded part of what was written.
    final class Collector: @unchecked Sendable {
        enum Keep {
            /// The first this many bytes.
            case first(Int)
            /// The last this many bytes (from the end of what was written).
            case last(Int)
        }

        private let lock = NSLock()
        private var data = Data()
        private var done = false

        init(_ descriptor: Int32, keep: Keep) {
            let thread = Thread { [self] in
                var collected = Data()
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count > 0 {
                        switch keep {
                        case .first(let limit):
                            if collected.count < limit { collected.append(contentsOf: buffer[0..<min(count, limit - collected.count)]) }
                        case .last(let limit):
                            collected.append(contentsOf: buffer[0..<count])
                            if collected.count > 2 * limit { collected = Data(collected.suffix(limit)) }
                        }
                    } else if count == 0 || errno != EINTR {
                        break
                    }
                }
                if case .last(let limit) = keep, collected.count > limit { collected = Data(collected.suffix(limit)) }
                close(descriptor)
                lock.lock()
                data = collected
                done = true
                lock.unlock()
            }
            thread.start()
        }

        func finish() -> Data {
            while true {
                lock.lock()
                if done {
                    lock.unlock()
                    return data
                }
                lock.unlock()
                usleep(1_000)
            }
        }
    }
}
