import Foundation
import NNPipeCore

/// Finds out-of-process plugins, asks them to describe themselves, and turns each into a
/// `StageDescriptor` the manifest validator and runner use like a built-in stage.
public enum PluginHost {
    /// Descriptors for the given plugin executables (a manifest's `plugins`).
    public static func descriptors(for executables: [URL]) throws -> [StageDescriptor] {
        try executables.map(descriptor(for:))
    }

    public static func descriptor(for executable: URL) throws -> StageDescriptor {
        let outcome = try PluginProcess.run(executable, arguments: ["describe"], timeout: PluginProtocol.describeTimeout)
        if outcome.timedOut {
            throw NNPipeError(.stageFailed, "plugin 'describe' did not answer within \(Int(PluginProtocol.describeTimeout)) s", path: executable.path)
        }
        guard outcome.status == 0, !outcome.terminatedBySignal else {
            throw NNPipeError(.stageFailed, "plugin 'describe' \(PluginFailure.exitText(outcome))\(PluginFailure.lastLine(outcome.standardError))", path: executable.path)
        }
        let description = try PluginDescription.parse(outcome.standardOutput, plugin: executable)
        return StageDescriptor(
            kind: description.kind, summary: description.summary, options: description.options,
            origin: executable.path,
            make: { options in ExternalStage(executable: executable, description: description, options: options) })
    }

    /// `nnpipe-stage-*` executables on `PATH`, first occurrence of each name wins.
    public static func executablesOnPath(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var seen = Set<String>()
        var found: [URL] = []
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: String(folder)) else { continue }
            for name in names.sorted() where name.hasPrefix(PluginProtocol.executablePrefix) && !seen.contains(name) {
                let path = "\(folder)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) {
                    seen.insert(name)
                    found.append(URL(fileURLWithPath: path))
                }
            }
        }
        return found
    }
}

enum PluginFailure {
    static func exitText(_ outcome: PluginProcess.Outcome) -> String {
        outcome.terminatedBySignal ? "crashed (signal \(outcome.status))" : "exited with status \(outcome.status)"
    }

    /// ": <last non-empty stderr line>" or "".
    static func lastLine(_ data: Data) -> String {
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { return "" }
        return ": " + String(line.prefix(300))
    }
}
