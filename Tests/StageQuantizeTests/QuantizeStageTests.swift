import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import StageQuantize
import StageCalibrate
import NNPipeRuntime
import NNPipeData
import Testing

@Suite struct QuantizeStageTests {
    struct PipelineCase: CustomTestStringConvertible, Sendable {
        var label: String
        var fixture: String
        var classes: Int
        var options: [String: JSONValue]
        var calibrate: Bool
        /// Least share of predictions equal to the float model's.
        var minimumAgreement: Double
        /// Whether nnpipe's runtime reproduces onnxruntime's default session value for value. Not for
        /// 4-bit weight-only MatMuls: onnxruntime turns DQ → MatMul into MatMulNBits, which by default
        /// quantises the activations to int8 per block (accuracy level 4); nnpipe computes them in float.
        var matchesDefaultSession = true
        var testDescription: String { label }
    }

    static let pipelineCases: [PipelineCase] = [
        PipelineCase(label: "CNN static int8/uint8 per-channel QDQ", fixture: "cnn", classes: 10,
                     options: ["weights": .string("int8"), "activations": .string("uint8"), "per_channel": .bool(true)], calibrate: true, minimumAgreement: 0.9),
        PipelineCase(label: "MLP static int8/uint8 per-tensor QDQ", fixture: "mlp", classes: 4,
                     options: ["weights": .string("int8"), "activations": .string("uint8")], calibrate: true, minimumAgreement: 0.9),
        PipelineCase(label: "CNN static int16 activations (opset 21)", fixture: "cnn", classes: 10,
                     options: ["weights": .string("int8"), "activations": .string("int16"), "per_channel": .bool(true)], calibrate: true, minimumAgreement: 0.9),
        PipelineCase(label: "CNN static QOperator (QLinearConv, MatMulInteger)", fixture: "cnn", classes: 10,
                     options: ["activations": .string("uint8"), "per_channel": .bool(true), "format": .string("qoperator")], calibrate: true, minimumAgreement: 0.9),
        PipelineCase(label: "MLP static QOperator (QLinearMatMul)", fixture: "mlp", classes: 4,
                     options: ["activations": .string("uint8"), "format": .string("qoperator")], calibrate: true, minimumAgreement: 0.9),
        PipelineCase(label: "CNN dynamic (ConvInteger, MatMulInteger)", fixture: "cnn", classes: 10,
                     options: ["mode": .string("dynamic"), "per_channel": .bool(true)], calibrate: false, minimumAgreement: 0.9),
        PipelineCase(label: "MLP dynamic uint8 weights", fixture: "mlp", classes: 4,
                     options: ["mode": .string("dynamic"), "weights": .string("uint8")], calibrate: false, minimumAgreement: 0.9),
        PipelineCase(label: "CNN weight-only int8 per-channel", fixture: "cnn", classes: 10,
                     options: ["weights": .string("int8"), "per_channel": .bool(true)], calibrate: false, minimumAgreement: 0.95),
        PipelineCase(label: "MLP weight-only int4 blocked 16", fixture: "mlp", classes: 4,
                     options: ["weights": .string("int4"), "block_size": .number(16)], calibrate: false, minimumAgreement: 0.8, matchesDefaultSession: false),
        PipelineCase(label: "MLP weight-only uint4 per-channel asymmetric", fixture: "mlp", classes: 4,
                     options: ["weights": .string("uint4"), "per_channel": .bool(true)], calibrate: false, minimumAgreement: 0.8, matchesDefaultSession: false),
        PipelineCase(label: "CNN weight-only int16", fixture: "cnn", classes: 10,
                     options: ["weights": .string("int16")], calibrate: false, minimumAgreement: 0.99),
        PipelineCase(label: "CNN fp16 weights", fixture: "cnn", classes: 10, options: ["weights": .string("fp16")], calibrate: false, minimumAgreement: 0.99),
        PipelineCase(label: "MLP bf16 weights", fixture: "mlp", classes: 4, options: ["weights": .string("bf16")], calibrate: false, minimumAgreement: 0.95),
    ]

    @Test("quantised model is valid, runs in onnxruntime and agrees with nnpipe's runtime", arguments: pipelineCases)
    func quantisedModelRunsEverywhere(_ example: PipelineCase) throws {
        let original = try QuantizeFixtures.model(example.fixture)
        var model = original
        if example.calibrate { _ = try QuantizeFixtures.calibrate(&model, fixture: example.fixture) }
        let result = try QuantizeFixtures.quantize(&model, example.options)
        try GraphCheck.validate(model)
        let floatOutput = try QuantizeFixtures.runtimeOutput(original, fixture: example.fixture)

        let ours = try QuantizeFixtures.runtimeOutput(model, fixture: example.fixture)
        let floatPredictions = QuantizeFixtures.predictions(floatOutput, classes: example.classes)
        let ourPredictions = QuantizeFixtures.predictions(ours, classes: example.classes)
        let agreement = QuantizeFixtures.agreement(floatPredictions, ourPredictions)
        #expect(agreement >= example.minimumAgreement, "\(example.label): \(agreement) of predictions match the float model")
        print("\(example.label): \(result.summary); float agreement \(agreement)")

        let unfused = try QuantizeFixtures.runtimeOutput(model, fixture: example.fixture, fused: false)
        guard let (reference, unoptimized, specification, facts) = try QuantizeFixtures.onnxruntimeOutput(model, fixture: example.fixture) else { return }
        try #require(reference.count == ours.count && unoptimized.count == ours.count && specification.count == ours.count)
        let spread = reference.map(abs).max() ?? 1
        // As written (nnpipe unfused), the graph is the spec's arithmetic: onnx's reference evaluator
        // and onnxruntime with optimisation off compute the same values.
        // (QOperator files hold QLinear ops, which nnpipe runs with onnxruntime's rounding, not the evaluator's.)
        let specificationDifference = zip(specification, unfused).map { abs($0 - $1) }.max() ?? 0
        if example.options["format"] != .string("qoperator") {
            #expect(specificationDifference <= 1e-4 * spread, "\(example.label): onnx reference evaluator differs by \(specificationDifference)")
        }
        let exactDifference = zip(unoptimized, unfused).map { abs($0 - $1) }.max() ?? 0
        #expect(exactDifference <= 1e-4 * spread, "\(example.label): unoptimised onnxruntime differs by \(exactDifference)")
        // Default session: onnxruntime fuses QDQ groups into integer kernels, and so does nnpipe's runtime.
        let fusedDisagreements = QuantizeFixtures.disagreements(QuantizeFixtures.predictions(reference, classes: example.classes), ourPredictions)
        let fusedDifference = zip(reference, ours).map { abs($0 - $1) }.max() ?? 0
        if example.matchesDefaultSession {
            #expect(fusedDisagreements == 0, "\(example.label): default onnxruntime disagrees on \(fusedDisagreements) of \(ourPredictions.count) predictions")
            #expect(fusedDifference <= 1e-4 * spread, "\(example.label): default onnxruntime differs by \(fusedDifference) (outputs up to \(spread))")
        } else {
            #expect(QuantizeFixtures.agreement(QuantizeFixtures.predictions(reference, classes: example.classes), ourPredictions) >= 0.97)
        }
        print("\(example.label): onnxruntime \(facts); reference evaluator difference \(specificationDifference), unoptimised onnxruntime \(exactDifference), default onnxruntime \(fusedDifference), disagreements \(fusedDisagreements) of \(ourPredictions.count)")
    }

    @Test func staticQDQPlacesPairsLikeOnnxruntime() throws {
        var model = try QuantizeFixtures.model("cnn")
        _ = try QuantizeFixtures.calibrate(&model, fixture: "cnn")
        _ = try QuantizeFixtures.quantize(&model, ["weights": .string("int8"), "activations": .string("uint8"), "per_channel": .bool(true)])
        let histogram = ModelStatistics(model).operatorHistogram
        // image, relu1 (Conv output with its Relu folded), relu2, flat (Gemm input), logits.
        #expect(histogram["QuantizeLinear"] == 5)
        #expect(histogram["DequantizeLinear"] == 11)
        #expect(histogram["Relu"] == nil)
        #expect(model.opsetVersion() == 13)
        let weight = try #require(model.graph.initializer(named: "conv2.weight_quantized"))
        #expect(weight.dataType == .int8)
        let bias = try #require(model.graph.initializer(named: "conv2.bias_quantized"))
        #expect(bias.dataType == .int32)
        #expect(model.graph.initializer(named: "conv2.weight") == nil)
    }

    @Test func smallModelIsNoLargerThanOnnxruntimeQDQ() throws {
        let folder = try TestEnvironment.temporaryFolder("quantize-size")
        defer { try? FileManager.default.removeItem(at: folder) }
        var model = try QuantizeFixtures.model("cnn")
        _ = try QuantizeFixtures.calibrate(&model, fixture: "cnn")
        _ = try QuantizeFixtures.quantize(&model, ["weights": .string("int8"), "activations": .string("uint8"), "per_channel": .bool(true)])
        let ours = folder.appendingPathComponent("ours.onnx")
        try ONNXFormat().write(model, to: ours)
        let reference = folder.appendingPathComponent("onnxruntime.onnx")
        guard let result = try runFixtureScript(["reference-qdq", TestEnvironment.fixture("quantize/cnn.onnx").path, QuantizeFixtures.inputs("cnn").path, reference.path, "per-channel"]) else { return }
        try #require(result.status == 0, "\(result.standardError.suffix(1000))")
        let ourSize = try #require(try FileManager.default.attributesOfItem(atPath: ours.path)[.size] as? Int)
        let referenceSize = try #require(try FileManager.default.attributesOfItem(atPath: reference.path)[.size] as? Int)
        let floatSize = try #require(try FileManager.default.attributesOfItem(atPath: TestEnvironment.fixture("quantize/cnn.onnx").path)[.size] as? Int)
        print("CNN sizes: float \(floatSize) B, nnpipe QDQ \(ourSize) B, onnxruntime QDQ \(referenceSize) B")
        #expect(ourSize <= referenceSize)
    }

    struct OptionCase: CustomTestStringConvertible, Sendable {
        var label: String
        var options: [String: JSONValue]
        var path: String
        var testDescription: String { label }
    }

    static let badOptions: [OptionCase] = [
        OptionCase(label: "static without activations", options: ["mode": .string("static")], path: "stages[1].activations"),
        OptionCase(label: "weight_only with activations", options: ["mode": .string("weight_only"), "activations": .string("uint8")], path: "stages[1].activations"),
        OptionCase(label: "block_size with static", options: ["activations": .string("uint8"), "block_size": .number(32)], path: "stages[1].block_size"),
        OptionCase(label: "dynamic int4", options: ["mode": .string("dynamic"), "weights": .string("int4")], path: "stages[1].weights"),
        OptionCase(label: "qoperator int16 activations", options: ["format": .string("qoperator"), "activations": .string("int16")], path: "stages[1].activations"),
        OptionCase(label: "fp16 static", options: ["weights": .string("fp16"), "activations": .string("uint8")], path: "stages[1].weights"),
        OptionCase(label: "unknown op type", options: ["op_types": .array([.string("Softmax")])], path: "stages[1].op_types"),
    ]

    @Test("contradictory options fail with the option's JSON path", arguments: badOptions)
    func contradictoryOptionsFail(_ example: OptionCase) {
        #expect { try QuantizeStage(options: QuantizeFixtures.options(example.options)) } throws: { error in
            (error as? NNPipeError)?.path == example.path && (error as? NNPipeError)?.code == .invalidManifest
        }
    }

    @Test func modeIsInferred() throws {
        #expect(try QuantizeStage(options: QuantizeFixtures.options(["activations": .string("uint8")])).configuration.mode == .staticQuantization)
        #expect(try QuantizeStage(options: QuantizeFixtures.options([:])).configuration.mode == .weightOnly)
        #expect(try QuantizeStage(options: QuantizeFixtures.options(["activations": .null])).configuration.mode == .weightOnly)
        #expect(try QuantizeStage(options: QuantizeFixtures.options(["weights": .string("uint8")])).configuration.weightsSymmetric == false)
    }

    @Test func staticQuantisationNeedsAnEarlierCalibrateStage() {
        let quantize = StageInvocation(kind: "quantize", options: QuantizeFixtures.options(["activations": .string("uint8")], path: "stages[1]"), index: 1)
        let calibrate = StageInvocation(kind: "calibrate", options: QuantizeFixtures.options(["dataset": .string("calib")], path: "stages[0]"), index: 0)
        let lateCalibrate = StageInvocation(kind: "calibrate", options: calibrate.options, index: 2)
        let problems = QuantizeStage.checkPlacement(quantize, in: [quantize, lateCalibrate])
        #expect(problems.count == 1)
        #expect(problems.first?.path == "stages[1]")
        #expect(QuantizeStage.checkPlacement(quantize, in: [calibrate, quantize]).isEmpty)
        let weightsOnly = StageInvocation(kind: "quantize", options: QuantizeFixtures.options([:]), index: 0)
        #expect(QuantizeStage.checkPlacement(weightsOnly, in: [weightsOnly]).isEmpty)
    }

    @Test func filtersAndSignalToNoiseKeepLayersInFloat() throws {
        var excluded = try QuantizeFixtures.model("cnn")
        let result = try QuantizeFixtures.quantize(&excluded, ["exclude": .array([.string("fc")]), "op_types": .array([.string("Conv"), .string("Gemm")])])
        #expect(excluded.graph.initializer(named: "fc.weight")?.dataType == .float)
        #expect(excluded.graph.initializer(named: "conv1.weight_quantized") != nil)
        #expect(result.summary.contains("2 layers"))

        // A threshold between the best and the worst layer's SQNR keeps the worst in float.
        var probe = try QuantizeFixtures.model("cnn")
        let probed = try QuantizeFixtures.quantize(&probe, ["weights": .string("int4")])
        let rows = try #require(probed.details.first { $0.key == "layers" }?.value.arrayValue)
        let decibels = rows.compactMap { $0.objectValue?.first { $0.key == "sqnr_db" }?.value.numberValue }.sorted()
        try #require(decibels.count == 3 && decibels[0] < decibels[2])
        var strict = try QuantizeFixtures.model("cnn")
        let kept = try QuantizeFixtures.quantize(&strict, ["weights": .string("int4"), "keep_float_below_sqnr": .number((decibels[0] + decibels[2]) / 2)])
        #expect(kept.summary.contains("kept in float"))
        #expect(strict.graph.initializers.contains { $0.dataType == .float && $0.name.hasSuffix("weight") })

        var none = try QuantizeFixtures.model("cnn")
        #expect(throws: NNPipeError.self) { try QuantizeFixtures.quantize(&none, ["keep_float_below_sqnr": .number(500)]) }
    }

    @Test func staticWithoutRangesFailsClearly() throws {
        var model = try QuantizeFixtures.model("cnn")
        #expect { try QuantizeFixtures.quantize(&model, ["activations": .string("uint8")]) } throws: { error in
            (error as? NNPipeError)?.message.contains("no calibration range") == true
        }
    }
}

/// The scikit-learn MLP exported by skl2onnx (Cast, ArgMax, ArrayFeatureExtractor, ai.onnx.ml):
/// onnxruntime's own quant_pre_process + quantize_static path fails on it; nnpipe's must not.
@Suite struct ScikitLearnQuantizeTests {
    @Test func skl2onnxMLPQuantisesStaticallyAndKeepsItsLabels() throws {
        let file = TestEnvironment.fixture("onnx/sklearn/mlp_digits.onnx")
        let inputs = TestEnvironment.fixture("onnx/sklearn/digits_x_first16.npy")
        let original = try ONNXFormat().read(from: file)
        var model = original
        var context = QuantizeFixtures.context(datasetFor: "cnn")
        context.datasets["calib"] = DatasetSpecification(name: "calib", path: inputs, batchSize: 16)
        _ = try CalibrateStage(options: QuantizeFixtures.options(["dataset": .string("calib")], path: "stages[0]")).run(&model, context: context)
        let result = try QuantizeStage(options: QuantizeFixtures.options(["activations": .string("uint8"), "per_channel": .bool(true)])).run(&model, context: context)
        #expect(result.summary.contains("2 layers"))

        func labels(_ model: Model, fused: Bool = true) throws -> [Int64] {
            let reader = try DatasetReader(source: DatasetSource(path: inputs), expectedInputs: model.graph.runtimeInputs.compactMap(ExpectedInput.init))
            let batch = try reader.batch(0..<reader.sampleCount)
            let plan = try ExecutionPlan(model: model, batchSize: reader.sampleCount, fuseQuantizedGroups: fused)
            let outputs = try plan.run(inputs: try batch.inputs.mapValues { try RuntimeTensor($0) })
            return try #require(outputs["label"]).integers
        }
        let floatLabels = try labels(original)
        let quantizedLabels = try labels(model)
        #expect(QuantizeFixtures.agreement(floatLabels.map { Int($0) }, quantizedLabels.map { Int($0) }) >= 0.9)

        let folder = try TestEnvironment.temporaryFolder("quantize-sklearn")
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = folder.appendingPathComponent("mlp_int8.onnx")
        try ONNXFormat().write(model, to: written)
        let output = folder.appendingPathComponent("label.f32")
        guard let check = try runFixtureScript(["check", written.path, inputs.path, output.path]) else { return }
        try #require(check.status == 0, "\(check.standardError.suffix(1500))")
        // The default session fuses QDQ groups into integer kernels, as nnpipe's runtime does: the same
        // labels. Optimisation off, onnxruntime computes the float graph as written, and so does nnpipe unfused.
        let optimizedLabels = try readArray(output, as: Float.self).map { Int64($0) }
        #expect(optimizedLabels == quantizedLabels)
        let unoptimizedLabels = try readArray(URL(fileURLWithPath: output.path + ".unoptimized"), as: Float.self).map { Int64($0) }
        #expect(unoptimizedLabels == (try labels(model, fused: false)))
        print("skl2onnx MLP: \(result.summary); labels agree with float on \(QuantizeFixtures.agreement(floatLabels.map { Int($0) }, quantizedLabels.map { Int($0) }))")
    }
}

@Suite struct QDQFusionTests {
    struct FusionCase: CustomTestStringConvertible, Sendable {
        var label: String
        var fixture: String
        var options: [String: JSONValue]
        /// Op counts after fusion, as in onnxruntime's optimised graph of the same file.
        var expected: [String: Int]
        var testDescription: String { label }
    }

    static let cases: [FusionCase] = [
        FusionCase(label: "CNN static QDQ: two QLinearConv and a QGemm", fixture: "cnn",
                   options: ["weights": .string("int8"), "activations": .string("uint8"), "per_channel": .bool(true)],
                   expected: ["QLinearConv": 2, "com.microsoft:QGemm": 1, "QuantizeLinear": 2, "DequantizeLinear": 2, "Flatten": 1]),
        FusionCase(label: "MLP static QDQ: two QLinearMatMul, float Add and Relu stay", fixture: "mlp",
                   options: ["weights": .string("int8"), "activations": .string("uint8")],
                   expected: ["QLinearMatMul": 2, "QuantizeLinear": 2, "DequantizeLinear": 2, "Add": 2, "Relu": 1]),
        FusionCase(label: "CNN int16 activations: not fused (onnxruntime fuses 8-bit only)", fixture: "cnn",
                   options: ["weights": .string("int8"), "activations": .string("int16"), "per_channel": .bool(true)],
                   expected: ["Conv": 2, "Gemm": 1, "QuantizeLinear": 5, "DequantizeLinear": 11, "Flatten": 1]),
    ]

    @Test("QDQ groups fuse as in onnxruntime's default session", arguments: cases)
    func fusesLikeOnnxruntime(_ example: FusionCase) throws {
        var model = try QuantizeFixtures.model(example.fixture)
        _ = try QuantizeFixtures.calibrate(&model, fixture: example.fixture)
        _ = try QuantizeFixtures.quantize(&model, example.options)
        let fused = QDQFusion.fuse(model)
        #expect(ModelStatistics(fused).operatorHistogram == example.expected)
        try GraphCheck.validate(fused)
    }

    /// A file quantised by onnxruntime's own quantize_static, not by nnpipe: the fusion must read
    /// its placement too (Relu kept before Q, its own names and zero points).
    @Test("onnxruntime's own QDQ file: nnpipe predicts what the default session predicts", arguments: ["per-tensor", "per-channel"])
    func onnxruntimeQuantisedFile(granularity: String) throws {
        let folder = try TestEnvironment.temporaryFolder("quantize-reference")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("onnxruntime.onnx")
        guard let made = try runFixtureScript(["reference-qdq", TestEnvironment.fixture("quantize/cnn.onnx").path, QuantizeFixtures.inputs("cnn").path, file.path, granularity]) else { return }
        try #require(made.status == 0, "\(made.standardError.suffix(1000))")
        let model = try ONNXFormat().read(from: file)
        let ours = try QuantizeFixtures.runtimeOutput(model, fixture: "cnn")
        guard let (reference, _, _, facts) = try QuantizeFixtures.onnxruntimeOutput(model, fixture: "cnn") else { return }
        let disagreements = QuantizeFixtures.disagreements(QuantizeFixtures.predictions(reference, classes: 10), QuantizeFixtures.predictions(ours, classes: 10))
        let difference = zip(reference, ours).map { abs($0 - $1) }.max() ?? 0
        print("onnxruntime-quantised CNN (\(granularity)): \(facts); default session difference \(difference), disagreements \(disagreements)")
        #expect(disagreements == 0)
        #expect(difference <= 1e-4 * (reference.map(abs).max() ?? 1))
    }
}
