import CBLAS
import Foundation

/// The one place the runtime calls OpenBLAS. CBLAS returns no status, so the checks are
/// preconditions on the leading dimensions (a wrong one reads out of bounds silently).
///
/// OpenBLAS itself runs single-threaded; `multiply` splits a large product into column (or row)
/// blocks and runs them on the runtime's own workers. OpenBLAS's pthread workers busy-wait for a
/// while after every call, so between GEMMs they took a core from the im2col and elementwise
/// passes that run on the same cores (SqueezeNet batch 1 on 2 threads ran 2x slower than on 1).
/// One pool for all work is also what onnxruntime does.
public enum BLAS {
    /// The worker count `multiply` uses when the caller does not say: the last `ExecutionPlan`'s
    /// `threads` (a process-wide setting, as OpenBLAS's own thread count was), else `NNPIPE_THREADS`
    /// or the core count.
    public static var threads: Int {
        get { settings.threads }
        set { settings.threads = max(1, newValue) }
    }

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major.
    public static func multiply(
        rows m: Int, columns n: Int, inner k: Int,
        _ a: UnsafePointer<Float>, leadingA: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Float>, leadingB: Int, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Float>, leadingC: Int, alpha: Float = 1, beta: Float = 0, threads: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        // An empty inner dimension (a Gemm of [m, 0] by [0, n]) is a legal product: beta · C.
        if k == 0 {
            for row in 0..<m { for column in 0..<n { c[row * leadingC + column] = beta == 0 ? 0 : c[row * leadingC + column] * beta } }
            return
        }
        precondition(leadingA >= max(1, transposeA ? m : k) && leadingB >= max(1, transposeB ? k : n) && leadingC >= n,
                     "BLAS leading dimensions do not fit the matrix shapes")
        settings.ensureSingleThreadedLibrary()
        let a = UncheckedSendable(value: a), b = UncheckedSendable(value: b), c = UncheckedSendable(value: c)
        if m == 1 {
            // One row (a classifier at batch 1): a matrix-vector product. OpenBLAS's sgemm packs the
            // whole of B first, which for ResNet-50's 2048 x 1000 classifier took 0.97 ms against
            // onnxruntime's 0.29.
            let step = transposeA ? leadingA : 1
            split(rows: 1, columns: n, inner: k, threads: threads ?? self.threads) { _, columns in
                if transposeB {
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(columns.count), Int32(k), alpha, b.value + columns.lowerBound * leadingB,
                                Int32(leadingB), a.value, Int32(step), beta, c.value + columns.lowerBound, 1)
                } else {
                    cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(columns.count), alpha, b.value + columns.lowerBound,
                                Int32(leadingB), a.value, Int32(step), beta, c.value + columns.lowerBound, 1)
                }
            }
            return
        }
        split(rows: m, columns: n, inner: k, threads: threads ?? self.threads) { rows, columns in
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(rows.count), Int32(columns.count), Int32(k), alpha,
                        a.value + (transposeA ? rows.lowerBound : rows.lowerBound * leadingA), Int32(leadingA),
                        b.value + (transposeB ? columns.lowerBound * leadingB : columns.lowerBound), Int32(leadingB),
                        beta, c.value + rows.lowerBound * leadingC + columns.lowerBound, Int32(leadingC))
        }
    }

    public static func multiply(
        rows m: Int, columns n: Int, inner k: Int,
        _ a: UnsafePointer<Double>, leadingA: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Double>, leadingB: Int, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Double>, leadingC: Int, alpha: Double = 1, beta: Double = 0, threads: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        // An empty inner dimension (a Gemm of [m, 0] by [0, n]) is a legal product: beta · C.
        if k == 0 {
            for row in 0..<m { for column in 0..<n { c[row * leadingC + column] = beta == 0 ? 0 : c[row * leadingC + column] * beta } }
            return
        }
        precondition(leadingA >= max(1, transposeA ? m : k) && leadingB >= max(1, transposeB ? k : n) && leadingC >= n,
                     "BLAS leading dimensions do not fit the matrix shapes")
        settings.ensureSingleThreadedLibrary()
        let a = UncheckedSendable(value: a), b = UncheckedSendable(value: b), c = UncheckedSendable(value: c)
        split(rows: m, columns: n, inner: k, threads: threads ?? self.threads) { rows, columns in
            cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(rows.count), Int32(columns.count), Int32(k), alpha,
                        a.value + (transposeA ? rows.lowerBound : rows.lowerBound * leadingA), Int32(leadingA),
                        b.value + (transposeB ? columns.lowerBound * leadingB : columns.lowerBound), Int32(leadingB),
                        beta, c.value + rows.lowerBound * leadingC + columns.lowerBound, Int32(leadingC))
        }
    }

    /// Cuts C into blocks along its longer side, a few per thread so a paused worker's blocks go to
    /// the others. Blocks keep at least 64 columns (or 16 rows): below that OpenBLAS spends more
    /// on packing the other operand than on arithmetic. Products under about a million
    /// multiply-adds run as one call.
    /// - Complexity: the other operand is packed once per block, O(blocks · k · (m or n)) extra.
    static func split(rows m: Int, columns n: Int, inner k: Int, threads: Int, _ block: (Range<Int>, Range<Int>) -> Void) {
        let work = m * n * k
        guard threads > 1, work >= 1 << 20 else {
            block(0..<m, 0..<n)
            return
        }
        let alongColumns = n >= m
        let length = alongColumns ? n : m
        let smallest = alongColumns ? 64 : 16
        let blocks = max(1, min(threads * 4, length / smallest))
        // Round the block up to a multiple of 16 so every block but the last fills OpenBLAS's micro-tiles.
        let size = ((length + blocks - 1) / blocks + 15) / 16 * 16
        let count = (length + size - 1) / size
        parallelTasks(count, threads: threads) { _, index in
            let range = (index * size)..<min(length, (index + 1) * size)
            if alongColumns { block(0..<m, range) } else { block(range, 0..<n) }
        }
    }

    private static let settings = Settings()

    private final class Settings: @unchecked Sendable {
        private let lock = NSLock()
        private var value = RuntimeThreads.fromEnvironment
        /// Runs once, before the first product: every later OpenBLAS call runs on its caller's thread.
        private lazy var singleThreaded: Void = openblas_set_num_threads(1)

        var threads: Int {
            get { lock.withLock { value } }
            set { lock.withLock { value = newValue } }
        }

        func ensureSingleThreadedLibrary() {
            lock.withLock { _ = singleThreaded }
        }
    }
}

/// Element types with a BLAS GEMM, so convolution code can be written once for both.
protocol BLASElement: BinaryFloatingPoint {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Self>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Self>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Self>, leadingC: Int,
                         beta: Self, threads: Int)
}

extension Float: BLASElement {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Float>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Float>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Float>, leadingC: Int,
                         beta: Float, threads: Int) {
        BLAS.multiply(rows: m, columns: n, inner: k, a, leadingA: leadingA, transposeA: transposeA, b, leadingB: leadingB,
                      transposeB: transposeB, into: c, leadingC: leadingC, beta: beta, threads: threads)
    }
}

extension Double: BLASElement {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Double>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Double>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Double>, leadingC: Int,
                         beta: Double, threads: Int) {
        BLAS.multiply(rows: m, columns: n, inner: k, a, leadingA: leadingA, transposeA: transposeA, b, leadingB: leadingB,
                      transposeB: transposeB, into: c, leadingC: leadingC, beta: beta, threads: threads)
    }
}
