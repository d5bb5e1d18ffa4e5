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
}

/// Splits `0..<count` into at most `threads` contiguous chunks and runs them concurrently;
/// small jobs (under `minimumChunk` items per chunk) stay on the calling thread.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = max(1, min(threads, count / max(minimumChunk, 1)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    let size = (count + chunks - 1) / chunks
    withoutActuallyEscaping(body) { escapable in
        // The chunks touch disjoint ranges; the caller owns the memory for the whole call.
        let shared = UncheckedSendable(value: escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = chunk * size
            let end = min(count, start + size)
            if start < end { shared.value(start..<end) }
        }
    }
}

/// Carries a value into concurrent closures whose safety the caller arranges (disjoint writes).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
