import CProtobufC
import NNPipeCore
import ONNXProto

/// Reads a serialized ModelProto into the IR: the skeleton goes through protobuf-c, initializer
/// bytes are viewed where they lie (see `ModelLayout`), and the result must pass `GraphCheck`.
enum ModelReader {
    /// IR versions this reader understands (onnx 1.2 .. 1.23).
    static let supportedIRVersions: ClosedRange<Int64> = 3...14

    static func read(_ file: MappedFile, folder: String?) throws -> Model {
        let path = file.path
        let bytes = file.bytes
        guard !bytes.isEmpty else { throw NNPipeError(.invalidModel, "file is empty, not an ONNX model", path: path) }
        let layout: ModelLayout
        do { layout = try ModelLayout.scan(bytes) } catch {
            throw NNPipeError(.invalidModel, "not an ONNX model: \(error.reason)", path: path)
        }
        let unpacked = try layout.skeleton.withUnsafeBytes { try ONNXMessages.model($0) }
        let proto = unpacked.message
        guard proto.has_ir_version != 0 else { throw NNPipeError(.invalidModel, "ModelProto has no ir_version", path: path) }
        guard supportedIRVersions.contains(proto.ir_version) else {
            throw NNPipeError(
                .unsupported,
                "IR version \(proto.ir_version) is outside what nnpipe reads (\(supportedIRVersions.lowerBound)...\(supportedIRVersions.upperBound))",
                path: path)
        }
        guard let graphProto = proto.graph else { throw NNPipeError(.invalidModel, "ModelProto has no graph", path: path) }

        let tensorDecoder = TensorDecoder(path: path, externalFiles: ExternalDataFiles(modelPath: path, folder: folder))
        let decoder = ProtoDecoder(tensors: tensorDecoder)
        let initializers = try layout.initializers.map { range in
            let tensorLayout: TensorLayout
            do { tensorLayout = try TensorLayout.scan(bytes, range: range) } catch let malformed as WireReader.Malformed {
                throw NNPipeError(.invalidModel, "graph initializer is corrupt: \(malformed.reason)", path: path)
            }
            let tensor = try tensorLayout.skeleton.withUnsafeBytes { try ONNXMessages.tensor($0) }
            return try tensorDecoder.tensor(tensor.message, rawView: tensorLayout.rawData.map { (file, $0) })
        }

        let model = Model(
            irVersion: proto.ir_version,
            opsetImports: decoder.opsetImports(proto.opset_import, proto.n_opset_import),
            producerName: cString(proto.producer_name), producerVersion: cString(proto.producer_version),
            domain: cString(proto.domain), modelVersion: proto.model_version, docString: cString(proto.doc_string),
            graph: try decoder.graph(graphProto.pointee, initializers: initializers),
            metadata: entries(proto.metadata_props, proto.n_metadata_props),
            functions: try (0..<proto.n_functions).map { try decoder.function(proto.functions[$0]!.pointee) },
            opaqueTrainingInfo: layout.trainingInfo.map { Array(bytes[$0]) },
            opaqueConfiguration: layout.configuration.map { Array(bytes[$0]) })
        try GraphCheck.validate(model, path: path)
        return model
    }
}
