import ArgumentParser
import Foundation
import NNPipeCore
import NNPipeRuntime

/// `nnpipe`: compress and convert neural-network models from a JSON pipeline manifest.
public struct NNPipeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "nnpipe",
        abstract: "Compress and convert neural-network models (ONNX, Keras HDF5) from a JSON pipeline manifest.",
        discussion: """
            Exit status: 0 success, 1 a stage or model operation failed, 2 bad usage or an invalid manifest,
            130 stopped by Ctrl-C (a fine-tune keeps its best checkpoint; no later stage or export runs).
            Errors are printed as one line on standard error.
            """,
        version: NNPipeVersion.current,
        subcommands: [
            RunCommand.self, ValidateCommand.self, StagesCommand.self, InspectCommand.self,
            ConvertCommand.self, EvalCommand.self, BenchCommand.self, SchemaCommand.self,
        ])

    public init() {}

    /// Entry point of the `nnpipe` binary; `stages` adds in-process stages of the caller's own.
    public static func main(stages: [StageDescriptor]) -> Never {
        var toolkit = Toolkit.standard
        for descriptor in stages { toolkit.stages.register(descriptor) }
        let status = execute(Array(CommandLine.arguments.dropFirst()), toolkit: toolkit)
        Foundation.exit(status)
    }

    /// Parses and runs one command line in-process, returning the exit status.
    /// Output goes to `Console.current`; nothing here calls `exit`.
    public static func execute(_ arguments: [String], toolkit: Toolkit = .standard, console: Console = Console.current) -> Int32 {
        Toolkit.$current.withValue(toolkit) {
            Console.$current.withValue(console) {
                do {
                    var command = try parseAsRoot(arguments)
                    if let problem = RuntimeThreads.environmentProblem { console.printError("warning: \(problem)") }
                    try command.run()
                    return 0
                } catch let failure as CommandFailure {
                    return failure.status
                } catch let error as NNPipeError {
                    console.printError("error: \(error.description)")
                    return error.exitCode
                } catch let problems as ManifestProblems {
                    for problem in problems.problems { console.printError("error: \(problem.description)") }
                    return 2
                } catch {
                    // ArgumentParser's help, version and usage errors.
                    let code = exitCode(for: error)
                    let message = fullMessage(for: error)
                    if code == .success {
                        if !message.isEmpty { console.print(message) }
                        return 0
                    }
                    let firstLine = message.split(separator: "\n").first.map(String.init) ?? "\(error)"
                    console.printError(firstLine.hasPrefix("Error: ") ? "error: " + firstLine.dropFirst(7) : "error: \(firstLine)")
                    console.printError("(see 'nnpipe help' for usage)")
                    return 2
                }
            }
        }
    }
}

/// Thrown by a command that already printed its problem and only needs to set the exit status.
struct CommandFailure: Error {
    var status: Int32
}
