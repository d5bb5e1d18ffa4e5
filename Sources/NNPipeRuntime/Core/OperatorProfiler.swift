import Foundation

/// Time per op type over one run, for finding slow kernels (`NNPIPE_PROFILE=1`), or per node with
/// its output shape (`NNPIPE_PROFILE=nodes`), to tell which layer of a type costs.
final class OperatorProfiler: @unchecked Sendable {
    /// Keys timings by node rather than by op type.
    let perNode: Bool
    private let lock = NSLock()
    private var totals: [String: (nanoseconds: UInt64, calls: Int)] = [:]

    /// nil unless `NNPIPE_PROFILE` is set.
    static func fromEnvironment() -> OperatorProfiler? {
        guard let setting = ProcessInfo.processInfo.environment["NNPIPE_PROFILE"] else { return nil }
        return OperatorProfiler(perNode: setting == "nodes")
    }

    init(perNode: Bool) {
        self.perNode = perNode
    }

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
        let sorted = snapshot.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds })
        var text = "op profile (ms, calls):"
        for (op, total) in sorted {
            // One line per node: there are hundreds.
            text += String(format: perNode ? "\n  %@ %.2f" : " %@ %.1f/%d", op, Double(total.nanoseconds) / 1e6, total.calls)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
