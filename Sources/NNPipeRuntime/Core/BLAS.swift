import CBLAS

/// The one place the runtime calls OpenBLAS. CBLAS returns no status, so the checks are
/// preconditions on the leading dimensions (a wrong one reads out of bounds silently).
public enum BLAS {
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major.
    public static func multiply(
        rows m: Int, columns n: Int, inner k: Int,
        _ a: UnsafePointer<Float>, leadingA: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Float>, leadingB: Int, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Float>, leadingC: Int, alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        precondition(leadingA >= max(1, transposeA ? m : k) && leadingB >= max(1, transposeB ? k : n) && leadingC >= n,
                     "BLAS leading dimensions do not fit the matrix shapes")
        if k == 0 {
            for row in 0..<m { for column in 0..<n { c[row * leadingC + column] *= beta } }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(leadingA), b, Int32(leadingB), beta, c, Int32(leadingC))
    }

    public static func multiply(
        rows m: Int, columns n: Int, inner k: Int,
        _ a: UnsafePointer<Double>, leadingA: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Double>, leadingB: Int, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Double>, leadingC: Int, alpha: Double = 1, beta: Double = 0
    ) {
        guard m > 0, n > 0 else { return }
        precondition(leadingA >= max(1, transposeA ? m : k) && leadingB >= max(1, transposeB ? k : n) && leadingC >= n,
                     "BLAS leading dimensions do not fit the matrix shapes")
        if k == 0 {
            for row in 0..<m { for column in 0..<n { c[row * leadingC + column] *= beta } }
            return
        }
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(leadingA), b, Int32(leadingB), beta, c, Int32(leadingC))
    }
}

/// Element types with a BLAS GEMM, so convolution code can be written once for both.
protocol BLASElement: BinaryFloatingPoint {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Self>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Self>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Self>, leadingC: Int)
}

extension Float: BLASElement {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Float>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Float>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Float>, leadingC: Int) {
        BLAS.multiply(rows: m, columns: n, inner: k, a, leadingA: leadingA, transposeA: transposeA, b, leadingB: leadingB,
                      transposeB: transposeB, into: c, leadingC: leadingC)
    }
}

extension Double: BLASElement {
    static func multiply(rows m: Int, columns n: Int, inner k: Int, _ a: UnsafePointer<Double>, leadingA: Int, transposeA: Bool,
                         _ b: UnsafePointer<Double>, leadingB: Int, transposeB: Bool, into c: UnsafeMutablePointer<Double>, leadingC: Int) {
        BLAS.multiply(rows: m, columns: n, inner: k, a, leadingA: leadingA, transposeA: transposeA, b, leadingB: leadingB,
                      transposeB: transposeB, into: c, leadingC: leadingC)
    }
}
