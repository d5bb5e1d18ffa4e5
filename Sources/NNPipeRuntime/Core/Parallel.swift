import Dispatch
import Foundation

/// How many threads the runtime uses: `NNPIPE_THREADS` when set, else the machine's cores.
public enum RuntimeThreads {
    public static var fromEnvironment: Int {
        if let text = ProcessInfo.processInfo.environment["NNPIPE_THREADS"], let value = Int(text), value > 0 {
            return value
        }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    /// The line to warn with when NNPIPE_THREADS is set but is not a positive integer (the core
    /// count is used instead); nil when it is unset or valid.
    public static var environmentProblem: String? {
        guard let text = ProcessInfo.processInfo.environment["NNPIPE_THREADS"] else { return nil }
        if let value = Int(text), value > 0 { return nil }
        return "NNPIPE_THREADS='\(text)' is not a positive integer; using the \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}

/// Runs `body(worker, task)` for every task in `0..<count` on at most `threads` workers that take
/// tasks in turn from a shared counter. Tasks are not pinned to workers: on a shared machine the OS
/// pauses threads at will, and a paused worker's share is then taken by the others instead of
/// holding the whole step up (a static split waits for its slowest thread). `worker` is in
/// `0..<min(threads, count)`, for per-worker scratch memory.
func parallelTasks(_ count: Int, threads: Int, _ body: (_ worker: Int, _ task: Int) -> Void) {
    guard count > 0 else { return }
    let workers = min(max(threads, 1), count)
    if workers == 1 {
        for task in 0..<count { body(0, task) }
        return
    }
    if WorkerPool.run(count, workers: workers, body) { return }
    // The pool is off or busy (another thread's step, or a task of its own calling back in).
    let next = TaskCounter()
    withoutActuallyEscaping(body) { escapable in
        // Tasks touch disjoint memory; the caller owns it for the whole call.
        let shared = UncheckedSendable(value: escapable)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                let task = next.take()
                if task >= count { break }
                shared.value(worker, task)
            }
        }
    }
}

/// Splits `0..<count` into contiguous chunks (a few per thread, at least `minimumChunk` items each)
/// and runs them on at most `threads` workers; small jobs stay on the calling thread.
func parallelChunks(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    // Four chunks per thread: enough for a worker the OS paused to be covered by the others.
    let chunks = max(1, min(threads > 1 ? threads * 4 : 1, count / max(minimumChunk, 1)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    let size = (count + chunks - 1) / chunks
    parallelTasks((count + size - 1) / size, threads: threads) { _, chunk in
        body((chunk * size)..<min(count, (chunk + 1) * size))
    }
}

/// The next task number, shared by the workers of one `parallelTasks` call. A lock, not an atomic:
/// `Synchronization.Atomic` needs macOS 15, and tasks are large enough that the lock never shows.
private final class TaskCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        return next - 1
    }
}

/// Carries a value into concurrent closures whose safety the caller arranges (disjoint writes).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
