import ArgumentParser
import Foundation
import NNPipeCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline manifest: import the model, run its stages, export, write report.json.")

    @Argument(help: "The pipeline manifest (JSON).")
    var manifest: String

    @Flag(help: "Validate, resolve every path, check input files exist and print the plan; do no work.")
    var dryRun = false

    @Flag(name: .shortAndLong, help: "No progress output on standard error.")
    var quiet = false

    @Flag(help: "Print report.json to standard output instead of the summary table.")
    var json = false

    func run() throws {
        let console = Console.current
        let loaded = try ManifestLoading.load(manifest, toolkit: Toolkit.current)
        let toolkit = try ManifestLoading.toolkit(Toolkit.current, with: loaded)
        let progress = TerminalProgress(console: console)
        let runner = ManifestLoading.runner(toolkit: toolkit, progress: progress.reporter(quiet: quiet), quiet: quiet)
        if dryRun {
            try runner.preflight(loaded)
            console.print("plan for \(loaded.name) (dry run, nothing written):")
            for line in runner.plan(loaded) { console.print("  " + line) }
            return
        }
        InterruptSignal.install(runner.interruption)
        let report: PipelineReport
        do {
            defer { InterruptSignal.restore() }
            report = try runner.run(loaded)
        }
        progress.finish()
        if json {
            console.print(JSONWriter.write(report.json))
        } else {
            console.print(report.table)
            console.print("report: \(loaded.outputDirectory.appendingPathComponent("report.json").path)")
        }
        if let error = report.error {
            console.printError("error: \(error)")
            // 130 (128 + SIGINT), as shells report a command stopped by Ctrl-C.
            throw CommandFailure(status: report.interrupted ? 130 : 1)
        }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest and the files it names without running it (exit 2 when invalid).")

    @Argument(help: "The pipeline manifest (JSON).")
    var manifest: String

    func run() throws {
        let loaded = try ManifestLoading.load(manifest, toolkit: Toolkit.current)
        let toolkit = try ManifestLoading.toolkit(Toolkit.current, with: loaded)
        try ManifestLoading.runner(toolkit: toolkit, progress: .silent).preflight(loaded)
        Console.current.print("\(manifest): valid (\(loaded.stages.count) stages: \(loaded.stages.map(\.kind).joined(separator: ", ")))")
    }
}
