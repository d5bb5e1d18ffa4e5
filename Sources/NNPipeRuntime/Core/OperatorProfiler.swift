import Foundation

/// Time per op type over one run, for finding slow kernels (`NNPIPE_PROFILE=1`).
final class OperatorProfiler: @unchecked Sendable {
    private let lock = NSLock()
    private var totals: [String: (nanoseconds: UInt64, calls: Int)] = [:]

    func record(_ opType: String, nanoseconds: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        let current = totals[opType] ?? (0, 0)
        totals[opType] = (current.nanoseconds + nanoseconds, current.calls + 1)
    }

    func report() {
        lock.lock()
        let snapshot = totals
        totals = [:]
        lock.unlock()
        var text = "op profile (ms, calls):"
        for (op, total) in snapshot.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds }) {
            text += String(format: " %@ %.1f/%d", op, Double(total.nanoseconds) / 1e6, total.calls)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
