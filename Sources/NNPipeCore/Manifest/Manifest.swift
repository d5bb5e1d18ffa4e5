import Foundation

/// A validated pipeline manifest (version 1), paths resolved to absolute URLs.
public struct Manifest: Sendable {
    public var version: Int
    public var name: String
    public var model: ModelReference
    public var outputDirectory: URL
    public var datasets: [String: DatasetSpecification]
    /// Dataset names in the order the manifest defines them.
    public var datasetOrder: [String]
    public var evaluation: EvaluationSpecification?
    public var plugins: [URL]
    public var stages: [StageInvocation]
    /// The manifest file (nil when synthesised, e.g. by `nnpipe convert`).
    public var file: URL?
    public var directory: URL

    public init(
        version: Int = 1, name: String, model: ModelReference, outputDirectory: URL,
        datasets: [String: DatasetSpecification] = [:], datasetOrder: [String] = [],
        evaluation: EvaluationSpecification? = nil, plugins: [URL] = [], stages: [StageInvocation],
        file: URL? = nil, directory: URL
    ) {
        self.version = version
        self.name = name
        self.model = model
        self.outputDirectory = outputDirectory
        self.datasets = datasets
        self.datasetOrder = datasetOrder.isEmpty ? datasets.keys.sorted() : datasetOrder
        self.evaluation = evaluation
        self.plugins = plugins
        self.stages = stages
        self.file = file
        self.directory = directory
    }
}

/// The model a pipeline starts from.
public struct ModelReference: Sendable {
    public var path: URL
    /// "onnx", "keras-h5", "keras"; nil means sniff the file's content.
    public var format: String?

    public init(path: URL, format: String? = nil) {
        self.path = path
        self.format = format
    }
}

/// A named data set from the manifest's `datasets`.
public struct DatasetSpecification: Sendable {
    public enum Inputs: Sendable, Equatable {
        /// The only model input reads this key (nil: the file holds one array, e.g. `.npy`).
        case single(String?)
        /// Model input name -> key in the file.
        case named([String: String])
    }

    public var name: String
    public var path: URL
    public var inputs: Inputs
    public var labels: String?
    public var limit: Int?
    public var batchSize: Int
    public var shuffle: Bool
    public var seed: UInt64

    public init(
        name: String, path: URL, inputs: Inputs = .single(nil), labels: String? = nil, limit: Int? = nil,
        batchSize: Int = 32, shuffle: Bool = false, seed: UInt64 = 0
    ) {
        self.name = name
        self.path = path
        self.inputs = inputs
        self.labels = labels
        self.limit = limit
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
    }
}

/// The manifest's `evaluate` block: measured on the input model and after every stage.
public struct EvaluationSpecification: Sendable {
    public var dataset: String
    public var metrics: [String]
    public var topK: Int
    /// The scored model output; nil picks the first float output of rank 2.
    public var output: String?

    public init(dataset: String, metrics: [String], topK: Int = 5, output: String? = nil) {
        self.dataset = dataset
        self.metrics = metrics
        self.topK = topK
        self.output = output
    }

    public static let knownMetrics = ["accuracy", "top_k_accuracy", "mse", "fidelity"]
}

/// Every problem found in a manifest; each is one line with its JSON path.
public struct ManifestProblems: Error, CustomStringConvertible, Sendable {
    public var problems: [NNPipeError]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
