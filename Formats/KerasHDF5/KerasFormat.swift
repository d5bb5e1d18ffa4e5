import Foundation
import NNPipeCore
import NNPipeHDF5

/// Keras legacy HDF5 models (`.h5`, Keras 2 and 3): read and write.
public struct KerasHDF5Format: ModelFormat {
    public init() {}
    public var name: String { "keras-h5" }
    public var fileExtensions: [String] { ["h5", "hdf5"] }

    /// The HDF5 signature plus a Keras `model_config` attribute, or a weights-only Keras layout
    /// (Keras 2 `layer_names`, Keras 3 `layers/` + `vars/`) so that reading it can say what is
    /// missing instead of "not a model".
    public func recognizes(fileAt url: URL, header: [UInt8]) -> Bool {
        guard HDF5File.hasSignature(header), let root = try? HDF5File(reading: url).rootGroup() else { return false }
        return root.attributes.contains("model_config") || root.attributes.contains("layer_names")
            || root.attributes.contains("layer_names0") || root.memberKind("model_weights") == .group
            || (root.memberKind("layers") == .group && root.memberKind("vars") == .group)
    }

    public func read(from url: URL) throws -> Model {
        let file = try HDF5File(reading: url, errorCode: .invalidModel)
        let root = try file.rootGroup()
        guard let text = try root.attributes.string("model_config") else {
            if root.attributes.contains("layer_names") || root.attributes.contains("layer_names0")
                || root.memberKind("model_weights") == .group || root.memberKind("layers") == .group {
                throw NNPipeError(.invalidModel, "this file holds Keras weights but no architecture (no model_config); save the whole model with model.save()", path: url.path)
            }
            throw NNPipeError(.invalidModel, "HDF5 file is not a Keras model (no model_config attribute)", path: url.path)
        }
        let version = try root.attributes.string("keras_version") ?? "unknown"
        let backend = try root.attributes.string("backend") ?? "unknown"
        do {
            let config = try KerasModelConfig.parse(text)
            return try KerasModelImport.model(config: config, weights: KerasLegacyWeights(file: file), kerasVersion: version, backend: backend)
        } catch let error as NNPipeError {
            throw error.located(at: url.path)
        }
    }

    public func write(_ model: Model, to url: URL) throws {
        try KerasWriter.write(model, to: url)
    }
}

/// Keras 3 `.keras` archives: read (stored zip of config.json + model.weights.h5).
public struct KerasArchiveFormat: ModelFormat {
    public init() {}
    public var name: String { "keras" }
    public var fileExtensions: [String] { ["keras"] }

    public func recognizes(fileAt url: URL, header: [UInt8]) -> Bool {
        guard KerasZipArchive.looksLikeZip(header), let archive = try? KerasZipArchive(url: url) else { return false }
        return archive.entries["config.json"] != nil
    }

    public func read(from url: URL) throws -> Model {
        let archive = try KerasZipArchive(url: url)
        do {
            let config = try KerasModelConfig.parse(String(decoding: try archive.contents(of: "config.json"), as: UTF8.self))
            var version = "3"
            if let metadata = try? archive.contents(of: "metadata.json"),
               let parsed = try? JSONParser.parse(String(decoding: metadata, as: UTF8.self)),
               let found = parsed["keras_version"]?.stringValue {
                version = found
            }
            // libhdf5 reads files, not memory: the weights go to a private temporary file for the read.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nnpipe-keras-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let weightsURL = folder.appendingPathComponent("model.weights.h5")
            try archive.contents(of: "model.weights.h5").write(to: weightsURL)
            let file = try HDF5File(reading: weightsURL, errorCode: .invalidModel)
            return try KerasModelImport.model(config: config, weights: KerasArchiveWeights(file: file, config: config),
                                              kerasVersion: version, backend: "unknown")
        } catch var error as NNPipeError {
            error.path = url.path
            throw error
        }
    }

    public func write(_ model: Model, to url: URL) throws {
        throw NNPipeError(.unsupported, "nnpipe writes Keras models as legacy .h5 files; use a .h5 output path", path: url.path)
    }
}

enum KerasModelImport {
    static func model(config: KerasModelConfig, weights: any KerasWeightSource, kerasVersion: String, backend: String) throws -> Model {
        var importer = KerasImporter(config: config, weights: weights)
        let graph = try importer.importGraph()
        let model = Model(
            irVersion: 8, opsetImports: [OperatorSetID(domain: "", version: KerasImporter.opsetVersion)],
            docString: "Imported from Keras \(kerasVersion) (\(backend) backend) by nnpipe", graph: graph,
            metadata: [MetadataEntry(key: "source_format", value: "keras"), MetadataEntry(key: "keras_version", value: kerasVersion)])
        try GraphCheck.validate(model)
        return model
    }
}
