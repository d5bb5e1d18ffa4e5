import Foundation
import NNPipeCore

/// Where commands write. A task-local so tests can run commands in-process and capture output.
public struct Console: Sendable {
    public var writeOutput: @Sendable (String) -> Void
    public var writeError: @Sendable (String) -> Void
    /// True when standard error is a terminal (live progress line instead of plain lines).
    public var errorIsTerminal: Bool

    public init(writeOutput: @escaping @Sendable (String) -> Void, writeError: @escaping @Sendable (String) -> Void, errorIsTerminal: Bool) {
        self.writeOutput = writeOutput
        self.writeError = writeError
        self.errorIsTerminal = errorIsTerminal
    }

    public static let standard = Console(
        writeOutput: { text in FileHandle.standardOutput.write(Data(text.utf8)) },
        writeError: { text in FileHandle.standardError.write(Data(text.utf8)) },
        errorIsTerminal: isatty(2) == 1)

    @TaskLocal public static var current: Console = .standard

    public func print(_ text: String) { writeOutput(text + "\n") }
    public func printError(_ text: String) { writeError(text + "\n") }
}

/// A progress reporter for the command line: a redrawn line with a bar on a terminal,
/// plain lines (one per new message, no bar spam) otherwise, nothing with --quiet.
final class TerminalProgress: @unchecked Sendable {
    private let console: Console
    private let lock = NSLock()
    private var lastMessage = ""
    private var lastKind = ""
    private var lastDraw = Date.distantPast
    private let started = Date()
    private var lineIsOpen = false

    init(console: Console) { self.console = console }

    func reporter(quiet: Bool) -> ProgressReporter {
        if quiet { return .silent }
        return ProgressReporter { [self] event in self.show(event) }
    }

    private func show(_ event: ProgressReporter.Event) {
        lock.lock()
        defer { lock.unlock() }
        let elapsed = String(format: "%6.1fs", Date().timeIntervalSince(started))
        if console.errorIsTerminal {
            // Redraw at most ~10 times a second.
            if event.message == lastMessage, Date().timeIntervalSince(lastDraw) < 0.1 { return }
            var line = "\(elapsed)  \(event.message)"
            if let fraction = event.fraction {
                let width = 24
                let filled = Int((fraction * Double(width)).rounded(.down))
                line += "  [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + String(format: "%3.0f%%", fraction * 100)
            }
            console.writeError("\r\u{1B}[2K" + line)
            lineIsOpen = true
            lastDraw = Date()
        } else {
            // Plain lines for logs: a new kind of message prints at once; the same message with
            // new numbers (step 7 of 430) prints at most every two seconds.
            let kind = event.message.filter { !$0.isNumber }
            guard kind != lastKind || Date().timeIntervalSince(lastDraw) >= 2 else { return }
            guard event.message != lastMessage else { return }
            console.writeError("\(elapsed)  \(event.message)\n")
            lastKind = kind
            lastDraw = Date()
        }
        lastMessage = event.message
    }

    /// Ends the live line so the next output starts on a fresh line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if lineIsOpen {
            console.writeError("\r\u{1B}[2K")
            lineIsOpen = false
        }
    }
}
