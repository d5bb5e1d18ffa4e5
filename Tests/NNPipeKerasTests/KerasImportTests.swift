import Foundation
import NNPipeCore
import NNPipeKeras
import NNPipeTestKit
import Testing

/// Every committed fixture model (Keras 2 and 3, .h5 and .keras).
enum KerasFixtures {
    static let names = ["sequential_cnn", "functional_residual", "separable", "mlp", "multi_input", "sequence", "embedding"]
    static let models: [String] = ["k3", "k2"].flatMap { prefix in names.map { "\(prefix)_\($0).h5" } }
        + ["k3_sequential_cnn.keras", "k3_functional_residual.keras", "k3_multi_input.keras"]

    static func read(_ file: String) throws -> Model {
        try registry.read(TestEnvironment.fixture("keras/\(file)"))
    }

    static let registry = FormatRegistry([KerasHDF5Format(), KerasArchiveFormat()])
}

@Suite("Keras import")
struct KerasImportTests {
    @Test("fixtures import into a valid opset-17 graph", arguments: KerasFixtures.models)
    func importsFixture(file: String) throws {
        let url = TestEnvironment.fixture("keras/\(file)")
        try #require(FileManager.default.fileExists(atPath: url.path), "missing fixture \(file): run scripts/make_keras_fixtures.py")
        let model = try KerasFixtures.read(file)
        #expect(GraphCheck.problems(in: model.graph).isEmpty)
        #expect(model.opsetVersion() == 17)
        #expect(!model.graph.nodes.isEmpty)
        #expect(model.graph.nodes.allSatisfy { !$0.name.isEmpty })
    }
}
