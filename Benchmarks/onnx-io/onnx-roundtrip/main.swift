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
    let views = model.graph.initializers.filter { $0.buffer?.isView == true }
    let viewedBytes = views.reduce(0) { $0 + $1.byteCount }
    let totalBytes = model.graph.initializers.reduce(0) { $0 + $1.byteCount }
    print("after read: resident \(residentMegabytes()) MB; \(views.count) of \(model.graph.initializers.count) initializers (\(viewedBytes >> 20) of \(totalBytes >> 20) MB) view the mapped file")
    try ONNXFormat().write(model, to: URL(fileURLWithPath: arguments[2]))
    let done = Date()
    print(String(format: "read %.3f s, write %.3f s", read.timeIntervalSince(start), done.timeIntervalSince(read)))
} catch let error as NNPipeError {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(error.exitCode)
}

/// Current resident set size from /proc (Linux), for the benchmark's memory breakdown.
func residentMegabytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return -1 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1) / 1024
}
