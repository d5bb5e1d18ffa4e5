import Foundation
import Logging
import NNPipeCore
import NNPipeData
import NNPipeONNX
import NNPipeTestKit
import NNPipeTraining
import Testing
@testable import StagePrune

/// criterion taylor: first-order change of the loss measured on a labelled dataset.
struct TaylorTests {
    /// x [samples, features] uniform in [-1, 1) and class ids in 0..<classes, written as .npz.
    static func dataset(
        samples: Int, inputShape: [Int], classes: Int, seed: UInt64, in folder: URL
    ) throws -> DatasetSpecification {
        var generator = SeededGenerator(seed: seed)
        let count = samples * inputShape.reduce(1, *)
        let x = Tensor(name: "x", shape: [samples] + inputShape, values: (0..<count).map { _ in generator.nextFloat() })
        let y = Tensor(name: "y", shape: [samples], values: (0..<samples).map { _ in Int64(generator.next() % UInt64(classes)) })
        let url = folder.appendingPathComponent("train.npz")
        try NumpyArchiveWriter.write([("x", x), ("y", y)], to: url)
        return DatasetSpecification(name: "train", path: url, inputs: .single("x"), labels: "y", batchSize: 16)
    }

    static func context(_ dataset: DatasetSpecification) -> StageContext {
        var context = testContext
        context.datasets = [dataset.name: dataset]
        return context
    }

    /// input -> hidden Gemm (4 channels) -> Relu -> head Gemm (3 classes). Hidden channel 2 has
    /// the largest filter but the head ignores it (zero column): removing it leaves the loss as is.
    static func ignoredChannelModel() -> Model {
        var builder = ModelBuilder(shape: [1, 4])
        var x = builder.gemm("hidden", "input", inputFeatures: 4, outputFeatures: 4)
        var hidden = builder.graph.initializers[0].floatValues()!
        for column in 0..<4 { hidden[2 * 4 + column] = 3 }
        builder.graph.initializers[0] = Tensor(name: "hidden.weight", shape: [4, 4], values: hidden)
        x = builder.node("Relu", "relu", [x])
        x = builder.gemm("head", x, inputFeatures: 4, outputFeatures: 3)
        let headIndex = builder.graph.initializers.firstIndex { $0.name == "head.weight" }!
        var head = builder.graph.initializers[headIndex].floatValues()!
        for row in 0..<3 { head[row * 4 + 2] = 0 }
        builder.graph.initializers[headIndex] = Tensor(name: "head.weight", shape: [3, 4], values: head)
        return builder.model(output: x, shape: [1, 3])
    }

    @Test func aChannelTheLossIgnoresRanksLowest() throws {
        let folder = try TestEnvironment.temporaryFolder("prune-taylor")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try Self.dataset(samples: 64, inputShape: [4], classes: 3, seed: 3, in: folder)
        let model = Self.ignoredChannelModel()

        let taylor = try ChannelPruning.plan(model, ratio: 0.25, criterion: .taylor, dataset: data, batches: 4)
        #expect(taylor.removed["hidden.out"] == [2])
        // Magnitude alone keeps it: its filter is the largest.
        let l1 = try ChannelPruning.plan(model, ratio: 0.25, criterion: .l1)
        #expect(l1.removed["hidden.out"] != [2])
    }

    @Test func contributionsEqualWeightTimesGradientSums() throws {
        // Σ w·g over a filter and its bias is Σ z·∂L/∂z over the channel's output.
        let value = TrainingTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let gradient = TrainingTensor(shape: [2, 3], values: [1, 0, -1, 0.5, 0.5, 0.5])
        var rows = [Float](repeating: 0, count: 2)
        TaylorImportance.accumulateProducts(value, gradient, axis: 0, into: &rows)
        #expect(rows == [-2, 7.5])
        var columns = [Float](repeating: 0, count: 3)
        TaylorImportance.accumulateProducts(value, gradient, axis: 1, into: &columns)
        #expect(columns == [3, 2.5, 0])
    }

    /// Scales slice `index` of `tensor` along `axis` by `factor`.
    static func scaled(_ tensor: Tensor, axis: Int, index: Int, by factor: Float) -> Tensor {
        var values = tensor.floatValues()!
        let outer = tensor.shape[..<axis].reduce(1, *)
        let length = tensor.shape[axis]
        let inner = tensor.shape[(axis + 1)...].reduce(1, *)
        for block in 0..<outer {
            for offset in 0..<inner { values[(block * length + index) * inner + offset] *= factor }
        }
        return Tensor(name: tensor.name, shape: tensor.shape, values: values)
    }

    /// The recorded contribution of a residual channel (coupled through Add, Concat, depthwise and
    /// BN) is the loss's derivative along "scale this channel where it is consumed": checked
    /// against a central finite difference on the same batch.
    @Test(arguments: [("residual.out", 3), ("residual.out", 40), ("block_a_bn.out", 7)])
    func contributionIsTheLossDerivative(_ space: String, _ channel: Int) throws {
        let folder = try TestEnvironment.temporaryFolder("prune-taylor")
        defer { try? FileManager.default.removeItem(at: folder) }
        // One batch holding the whole set, so sample order does not matter.
        var data = try Self.dataset(samples: 16, inputShape: [3, 8, 8], classes: 10, seed: 8, in: folder)
        data.batchSize = 16
        let model = InteropTests.wideModel()
        var dependencies = ChannelDependencies(graph: model.graph, exclude: [])
        let contributions = try TaylorImportance.measure(
            model, dependencies: dependencies, dataset: data, batches: 1, path: "stages[0]", progress: .silent)
        let root = dependencies.root(try #require(dependencies.spaces[space]).base + channel)
        var atoms: [(space: String, index: Int)] = []
        for candidate in dependencies.spaces.values {
            for index in 0..<candidate.count where dependencies.root(candidate.base + index) == root {
                atoms.append((candidate.value, index))
            }
        }
        let predicted = atoms.reduce(0.0) { $0 + Double(contributions.consumed[0][$1.space]?[$1.index] ?? 0) }

        let target = try LossTarget(model: model, path: "stages[0]")
        let reader = try DatasetReader(
            source: DatasetSource(path: data.path, inputs: .single(key: "x"), labels: "y"),
            expectedInputs: model.graph.runtimeInputs.compactMap(ExpectedInput.init))
        let batch = try reader.batch(0..<16)
        let slices = TaylorImportance.consumerSlices(model.graph, dependencies: dependencies)
        func loss(_ factor: Float) throws -> Double {
            var copy = model
            for slice in slices {
                for atom in atoms where atom.space == slice.space {
                    let position = copy.graph.initializers.firstIndex { $0.name == slice.tensor }!
                    copy.graph.initializers[position] = Self.scaled(copy.graph.initializers[position], axis: slice.axis, index: atom.index, by: factor)
                }
            }
            let graph = try TrainingGraph(model: copy, target: target.value)
            let output = try graph.forward(["input": TrainingTensor(batch.inputs["input"]!)!], phase: .inference)[graph.target]!
            return try target.loss(output, labels: batch.labels!, samples: 16, path: "stages[0]").value
        }
        let step: Float = 0.05
        // d/dε L(w·(1 + ε)) at 0 is Σ w·∂L/∂w over the scaled slices.
        let measured = (try loss(1 + step) - loss(1 - step)) / Double(2 * step)
        #expect(atoms.count > 1, "\(atoms)")
        #expect(abs(measured) > 1e-4, "the check needs a loss that moves: \(measured)")
        #expect(abs(predicted - measured) <= 0.02 * abs(measured) + 1e-4, "predicted \(predicted), finite difference \(measured)")
    }

    @Test func stageOnAResidualConcatDepthwiseModelMatchesTheMaskedModel() throws {
        let folder = try TestEnvironment.temporaryFolder("prune-taylor")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try Self.dataset(samples: 48, inputShape: [3, 8, 8], classes: 10, seed: 5, in: folder)
        var model = InteropTests.wideModel()
        let stage = try makeStage([
            "granularity": .string("channel"), "channel_ratio": .number(0.5), "criterion": .string("taylor"),
            "dataset": .string("train"), "batches": .number(3),
        ])
        let result = try stage.run(&model, context: Self.context(data))
        try GraphCheck.validate(model)
        #expect(result.detail("criterion")?.stringValue == "taylor")
        let proof = try #require(result.detail("equivalence_max_difference")?.numberValue, "\(result.warnings)")
        #expect(proof <= 1e-4)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= 0.5 * before)
        guard case .object(let taylor)? = result.detail("taylor")?.kind else {
            Issue.record("no taylor facts in \(result.details.map(\.key))")
            return
        }
        #expect(taylor.first { $0.key == "batches" }?.value.numberValue == 3)
    }

    @Test func labelsAreRequired() throws {
        let folder = try TestEnvironment.temporaryFolder("prune-taylor")
        defer { try? FileManager.default.removeItem(at: folder) }
        var data = try Self.dataset(samples: 16, inputShape: [4], classes: 3, seed: 3, in: folder)
        data.labels = nil
        var model = Self.ignoredChannelModel()
        let stage = try makeStage([
            "granularity": .string("channel"), "channel_ratio": .number(0.25), "criterion": .string("taylor"), "dataset": .string("train"),
        ])
        let error = try #require(throws: NNPipeError.self) { try stage.run(&model, context: Self.context(data)) }
        #expect(error.path == "stages[0].dataset")
        #expect(error.message.contains("labels"))
    }
}
