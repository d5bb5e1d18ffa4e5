import Foundation
import NNPipeCore
import NNPipeONNX

/// libFuzzer entry: any bytes must either read as a model or throw an `NNPipeError`; a crash,
/// a trap or a sanitizer report is a bug. Built by scripts/fuzz-onnx.sh with -sanitize=fuzzer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    do {
        let model = try ONNXFormat().read(serialized: bytes)
        // What was read must also write: exercise the encoder on every accepted input.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-fuzz-\(getpid()).onnx")
        try ONNXFormat().write(model, to: url)
        try? FileManager.default.removeItem(at: url)
    } catch is NNPipeError {
    } catch {
        fatalError("reader threw a non-NNPipeError: \(error)")
    }
    return 0
}

#if FUZZING
    /// SwiftPM links executables with `main` renamed to `<product>_main`; hand control to libFuzzer's driver.
    @_extern(c, "LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

    @_cdecl("onnx_fuzz_main")
    public func onnxFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return runFuzzerDriver(&count, &arguments) { fuzzONNXReader($0, $1) }
    }
#else
    /// Without libFuzzer (a plain `swift build`), replays the files named on the command line.
    @main enum ONNXFuzzReplay {
        static func main() {
            for path in CommandLine.arguments.dropFirst() {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                data.withUnsafeBytes { _ = fuzzONNXReader($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
            }
            print("replayed \(CommandLine.arguments.count - 1) inputs without a crash")
        }
    }
#endif
