import ArgumentParser

public struct NNPipeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "nnpipe")
    public init() {}
}
