import Foundation
import NNPipeCore
import NNPipeRuntime
import NNPipeTestKit
import Testing

/// Models from `scripts/make_runtime_cases.py fixtures` (committed under Tests/Fixtures/runtime),
/// each with onnxruntime's outputs: the whole small CNN and op cases the node tests cover thinly.
@Suite struct ReferenceFixtureTests {
    static let cases = [
        "small_cnn", "conv_group_dilated_strided", "conv_depthwise_same_lower", "conv_transpose_strided_output_padding",
        "matmul_broadcast_batched", "resize_linear_half_pixel", "resize_nearest_sizes_asymmetric", "maxpool_ceil_dilated",
        "averagepool_ceil_include_pad", "softmax_opset11_flatten", "logsoftmax_opset13_axis", "quantize_linear_per_channel_int8",
        "quantize_linear_uint8_ties", "qlinear_conv_per_channel", "qlinear_matmul_int8", "pad_reflect_opset18_axes",
        "layer_normalization_axis_minus2",
    ]

    @Test(arguments: cases)
    func matchesOnnxRuntime(_ name: String) throws {
        let url = TestEnvironment.fixture("runtime/\(name).json")
        let testCase = try RuntimeCase(contentsOf: url)
        try #require(testCase.unreadable == nil)
        // Two threads exercise the split paths; the answer must not depend on it.
        for threads in [1, 2] {
            let difference = try testCase.mismatch(relativeTolerance: 1e-4, absoluteTolerance: 1e-5, threads: threads)
            #expect(difference == nil, "\(name) with \(threads) threads: \(difference ?? "")")
        }
    }

    @Test func wholeModelRunsAtAnotherBatchSize() throws {
        let testCase = try RuntimeCase(contentsOf: TestEnvironment.fixture("runtime/small_cnn.json"))
        let plan = try ExecutionPlan(model: testCase.model, threads: 2, batchSize: 1)
        let full = try #require(testCase.inputs["x"])
        // The first image alone must give the first row of the batch-2 answer.
        let first = RuntimeTensor(shape: [1, 3, 16, 16], floats: Array(full.floats.prefix(3 * 16 * 16)))
        let output = try plan.run(first)
        let expected = Array(try #require(testCase.expected.first).tensor.floats.prefix(10))
        #expect(output.shape == [1, 10])
        for (got, want) in zip(output.floats, expected) { #expect(abs(got - want) <= 1e-5 + 1e-4 * abs(want)) }
        #expect(plan.inputs.first?.type.tensorShape?.first == .fixed(1))
    }
}
