/// A user's request to stop early (Ctrl-C). The command line raises it from a signal handler;
/// long stages poll it between steps and end with what they have; the runner then starts no
/// further stage and writes no export.
public final class Interruption: @unchecked Sendable {
    // One word stored from a signal handler and read by polling code, as C's `volatile
    // sig_atomic_t`: a lock or an allocation would not be async-signal-safe, and
    // Synchronization's Atomic needs a newer macOS than the package supports.
    private let flag: UnsafeMutablePointer<Int32>

    public init() {
        flag = .allocate(capacity: 1)
        flag.initialize(to: 0)
    }

    deinit { flag.deallocate() }

    public var isRequested: Bool { flag.pointee != 0 }

    /// Safe to call from a signal handler.
    public func request() { flag.pointee = 1 }
}
