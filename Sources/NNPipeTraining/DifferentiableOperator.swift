import NNPipeRuntime
import NNPipeCore

/// Whether a forward pass trains (batch statistics, dropout, moving-average updates) or only infers.
public enum TrainingPhase: Sendable {
    case training
    case inference
}

/// One node the training graph can run forward and differentiate.
///
/// Contract: `forward` computes the outputs and may cache what `backward` needs (a max-pool's
/// winners, a dropout mask), so `backward` must follow the `forward` of the same batch.
/// `backward` receives the gradient of the loss for each output (nil: the output does not
/// reach the loss) and returns one gradient per input, nil where the input is not
/// differentiable (shape arguments, omitted inputs) or gets no gradient.
public protocol DifferentiableOperator: AnyObject {
    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor]
    func backward(
        _ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]
    ) throws -> [TrainingTensor?]
}

extension Node {
    func integer(_ name: String, default value: Int) -> Int {
        attribute(name)?.intValue.map { Int($0) } ?? value
    }
    func float(_ name: String, default value: Float) -> Float {
        attribute(name)?.floatValue ?? value
    }
    func integers(_ name: String) -> [Int]? {
        attribute(name)?.intsValue?.map { Int($0) }
    }
    func text(_ name: String, default value: String) -> String {
        attribute(name)?.stringValue ?? value
    }
}

/// Input `index` of a forward call, which the graph guarantees for required inputs.
func required(_ inputs: [TrainingTensor?], _ index: Int, _ role: String) throws -> TrainingTensor {
    guard index < inputs.count, let tensor = inputs[index] else {
        throw NNPipeError(.invalidModel, "missing input \(index) (\(role))")
    }
    return tensor
}

/// The gradient of output `index`, zeros of the output's shape when it does not reach the loss.
func gradient(_ gradients: [TrainingTensor?], _ index: Int, like output: TrainingTensor) -> TrainingTensor {
    if index < gradients.count, let gradient = gradients[index] { return gradient }
    return TrainingTensor(zeros: output.shape)
}

/// Row-major single-precision GEMM on packed matrices: C = alpha·op(A)·op(B) + beta·C,
/// through the runtime's one OpenBLAS wrapper.
func multiply(
    rows m: Int, columns n: Int, inner k: Int,
    _ a: UnsafePointer<Float>, transposeA: Bool = false,
    _ b: UnsafePointer<Float>, transposeB: Bool = false,
    into c: UnsafeMutablePointer<Float>, alpha: Float = 1, beta: Float = 0
) {
    BLAS.multiply(
        rows: m, columns: n, inner: k, a, leadingA: max(1, transposeA ? m : k), transposeA: transposeA,
        b, leadingB: max(1, transposeB ? k : n), transposeB: transposeB, into: c, leadingC: n, alpha: alpha, beta: beta)
}
