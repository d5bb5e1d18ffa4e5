import Foundation
import NNPipeCore
import NNPipeONNX

// Reads an ONNX model and writes it back: the ONNX part of `nnpipe convert in.onnx out.onnx`,
// timed by Benchmarks/onnx-io/run.sh. Usage: onnx-roundtrip IN.onnx OUT.onnx
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: onnx-roundtrip IN.onnx OUT.onnx\n".utf8))
    exit(2)
}
do {
    let start = Date()
    let model = try ONNXFormat().read(from: URL(fileURLWithPath: arguments[1]))
    let read = Date()
    try ONNXFormat().write(model, to: URL(fileURLWithPath: arguments[2]))
    let done = Date()
    print(String(format: "read %.3f s, write %.3f s", read.timeIntervalSince(start), done.timeIntervalSince(read)))
} catch let error as NNPipeError {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(error.exitCode)
}
