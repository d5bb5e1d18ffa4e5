import Foundation

/// How uint8 × int8 products are summed, chosen to match onnxruntime's CPU kernels (MLAS) on the
/// machine at hand, so nnpipe's evaluation of a quantised model predicts what onnxruntime will.
///
/// MLAS's x86 AVX2 and AVX-512 (without VNNI) kernels multiply with `vpmaddubsw`, which adds each
/// pair of adjacent uint8 × int8 products into a saturating Int16 before widening; with VNNI
/// (`vpdpbusd`), on ARM, and for uint8 × uint8 the sums are exact. onnxruntime documents the
/// saturation and suggests `reduce_range` (7-bit weights) to avoid it.
public enum IntegerAccumulation: String, Sendable, CaseIterable {
    case exact
    case pairwiseSaturating = "pairwise-saturating"

    /// The host's behaviour; NNPIPE_INTEGER_ACCUMULATION (exact | pairwise-saturating) overrides it.
    public static let host: IntegerAccumulation = {
        if let forced = ProcessInfo.processInfo.environment["NNPIPE_INTEGER_ACCUMULATION"],
           let value = IntegerAccumulation(rawValue: forced) { return value }
        #if arch(x86_64) && os(Linux)
        guard let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpu.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .exact }
        let flags = Set(flagsLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        let hasVNNI = flags.contains("avx512_vnni") || flags.contains("avx_vnni")
        return flags.contains("avx2") && !hasVNNI ? .pairwiseSaturating : .exact
        #else
        return .exact
        #endif
    }()
}
