import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// One-row products (a classifier at batch 1) go to OpenBLAS's matrix-vector product, split by
/// columns across threads: every transpose, alpha and beta against a Double reference.
@Suite struct MatrixVectorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let columns: Int
        let inner: Int
        var transposeA = false
        var transposeB = false
        var alpha: Float = 1
        var beta: Float = 0
        var threads = 2
        var testDescription: String { label }
    }

    @Test(arguments: [
        Case(label: "classifier weights [n, k] (transB), split across threads", columns: 1000, inner: 2048, transposeB: true),
        Case(label: "weights [k, n], split across threads", columns: 700, inner: 1600),
        Case(label: "A as a column (transA), alpha and beta", columns: 40, inner: 30, transposeA: true, transposeB: true, alpha: 0.5, beta: 2),
        Case(label: "one thread, beta 1", columns: 9, inner: 5, beta: 1, threads: 1),
    ])
    func oneRowMatchesDoubleReference(_ testCase: Case) {
        var generator = SeededGenerator(seed: UInt64(testCase.columns * 31 + testCase.inner))
        let (n, k) = (testCase.columns, testCase.inner)
        // transA stores A as k x 1 with a leading dimension of 3 (every third value is A's).
        let leadingA = testCase.transposeA ? 3 : k
        let a = (0..<(testCase.transposeA ? k * 3 : k)).map { _ in generator.nextUnit() - 0.5 }
        let b = (0..<(n * k)).map { _ in generator.nextUnit() - 0.5 }
        let start = (0..<n).map { _ in generator.nextUnit() - 0.5 }
        var c = start
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.multiply(rows: 1, columns: n, inner: k, a.baseAddress!, leadingA: leadingA, transposeA: testCase.transposeA,
                                  b.baseAddress!, leadingB: testCase.transposeB ? k : n, transposeB: testCase.transposeB,
                                  into: c.baseAddress!, leadingC: n, alpha: testCase.alpha, beta: testCase.beta, threads: testCase.threads)
                }
            }
        }
        var worst = 0.0
        for column in 0..<n {
            var sum = 0.0
            for index in 0..<k {
                let left = Double(a[testCase.transposeA ? index * 3 : index])
                let right = Double(testCase.transposeB ? b[column * k + index] : b[index * n + column])
                sum += left * right
            }
            let expected = Double(testCase.alpha) * sum + Double(testCase.beta) * Double(start[column])
            worst = max(worst, abs(Double(c[column]) - expected))
        }
        #expect(worst < 1e-4, "worst absolute error \(worst)")
    }
}
