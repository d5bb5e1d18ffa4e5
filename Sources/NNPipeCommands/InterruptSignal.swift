import Foundation
import NNPipeCore

/// Ctrl-C during `nnpipe run`: the first SIGINT raises the runner's `Interruption` (a training
/// stage stops after its current step and keeps its best checkpoint; no later stage or export
/// runs); the handler is one-shot, so a second SIGINT has the default effect and ends the
/// process at once.
enum InterruptSignal {
    // Read by the C signal handler, which cannot capture context; set before the handler is installed.
    nonisolated(unsafe) private static var target: Interruption?
    private static let notice: StaticString = "\nnnpipe: stopping after the current step (Ctrl-C again to quit at once)\n"

    /// Routes SIGINT to `interruption` until `restore()`.
    static func install(_ interruption: Interruption) {
        target = interruption
        let handler: @convention(c) (Int32) -> Void = { _ in
            InterruptSignal.target?.request()
            // write(2) is async-signal-safe; print and the console's lock are not.
            _ = write(STDERR_FILENO, InterruptSignal.notice.utf8Start, InterruptSignal.notice.utf8CodeUnitCount)
        }
        var action = sigaction()
        #if os(Linux)
        action.__sigaction_handler.sa_handler = handler
        #else
        action.__sigaction_u.__sa_handler = handler
        #endif
        // SA_RESETHAND: the handler runs once, then SIGINT is back to terminating the process.
        action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)  // 0x80000000 on Linux: the sign bit
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        // A parent may hand its blocked-signal mask down (test runners and some supervisors
        // block SIGINT); unblocked on this thread, Ctrl-C reaches the handler.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
    }

    /// Back to the default SIGINT (terminate).
    static func restore() {
        signal(SIGINT, SIG_DFL)
        target = nil
    }
}
