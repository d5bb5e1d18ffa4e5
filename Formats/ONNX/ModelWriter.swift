import CProtobufC
import Foundation
import NNPipeCore
import ONNXProto

/// Writes a model as a ModelProto stream: the small parts are packed by protobuf-c, each graph
/// initializer's bytes are written straight from its buffer (or into `<model>.data` when the model
/// would pass `externalDataThreshold`), so writing never holds another copy of the weights.
struct ModelWriter {
    var externalDataThreshold: Int
    var externalTensorMinimumBytes: Int
    /// Offsets of tensors in the external data file are multiples of this, so runtimes can map them.
    static let externalAlignment = 4096
    static let graphField = 7, initializerField = 5, rawDataField = 9, trainingInfoField = 20, configurationField = 26

    private struct PackedInitializer {
        var header: [UInt8]
        /// Bytes written after the header as field 9, when the tensor is stored inline.
        var inlineBytes: TensorBuffer?
        var messageLength: Int {
            header.count + (inlineBytes.map { WireWriter.lengthHeaderSize(field: ModelWriter.rawDataField, length: $0.count) + $0.count } ?? 0)
        }
    }

    func write(_ model: Model, to url: URL) throws {
        let path = url.path
        let arena = CArena()
        let encoder = ProtoEncoder(arena: arena)
        let modelProto = encoder.modelWithoutGraph(model)
        let modelBytes = try ProtobufC.pack("model", size: onnx__model_proto__get_packed_size(modelProto)) {
            onnx__model_proto__pack(modelProto, $0)
        }
        let graphProto = encoder.graph(model.graph, includeInitializers: false)
        let graphBytes = try ProtobufC.pack("graph", size: onnx__graph_proto__get_packed_size(graphProto)) {
            onnx__graph_proto__pack(graphProto, $0)
        }

        let initializerBytes = model.graph.initializers.reduce(0) { $0 + $1.byteCount }
        let useExternal = modelBytes.count + graphBytes.count + initializerBytes > externalDataThreshold
        let dataURL = url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".data")
        var externalTensors: [(offset: Int, buffer: TensorBuffer)] = []
        var dataSize = 0
        var initializers: [PackedInitializer] = []
        for tensor in model.graph.initializers {
            var external: [MetadataEntry]?
            var inlineBytes: TensorBuffer?
            if let buffer = tensor.buffer {
                if useExternal && buffer.count >= max(externalTensorMinimumBytes, 1) {
                    let offset = (dataSize + Self.externalAlignment - 1) / Self.externalAlignment * Self.externalAlignment
                    externalTensors.append((offset, buffer))
                    dataSize = offset + buffer.count
                    external = [
                        MetadataEntry(key: "location", value: dataURL.lastPathComponent),
                        MetadataEntry(key: "offset", value: String(offset)),
                        MetadataEntry(key: "length", value: String(buffer.count)),
                    ]
                } else {
                    inlineBytes = buffer
                }
            }
            let proto = encoder.tensor(tensor, includeRawData: false, external: external)
            let header = try ProtobufC.pack("tensor '\(tensor.name)'", size: onnx__tensor_proto__get_packed_size(proto)) {
                onnx__tensor_proto__pack(proto, $0)
            }
            initializers.append(PackedInitializer(header: header, inlineBytes: inlineBytes))
        }
        let graphLength = graphBytes.count + initializers.reduce(0) {
            $0 + WireWriter.lengthHeaderSize(field: Self.initializerField, length: $1.messageLength) + $1.messageLength
        }
        guard graphLength < Int(Int32.max) else {
            throw NNPipeError(
                .unsupported, "graph would be \(graphLength) bytes inline; protobuf limits it to 2 GiB (lower the external-data threshold)",
                path: path)
        }

        try AtomicFile.write(to: url) { temporary in
            if !externalTensors.isEmpty {
                try AtomicFile.write(to: dataURL) { dataTemporary in
                    let data = try FileWriter(path: dataTemporary.path, reportedPath: dataURL.path)
                    for (offset, buffer) in externalTensors {
                        try data.writeZeros(offset - data.offset)
                        try data.write(buffer.bytes)
                    }
                    try data.finish()
                }
            }
            let file = try FileWriter(path: temporary.path, reportedPath: path)
            try file.write(modelBytes)
            var header = WireWriter()
            for info in model.opaqueTrainingInfo {
                info.withUnsafeBytes { header.appendLengthDelimited(field: Self.trainingInfoField, $0) }
            }
            for configuration in model.opaqueConfiguration {
                configuration.withUnsafeBytes { header.appendLengthDelimited(field: Self.configurationField, $0) }
            }
            header.appendLengthHeader(field: Self.graphField, length: graphLength)
            try file.write(header.bytes)
            try file.write(graphBytes)
            for initializer in initializers {
                var prefix = WireWriter()
                prefix.appendLengthHeader(field: Self.initializerField, length: initializer.messageLength)
                prefix.bytes += initializer.header
                if let inline = initializer.inlineBytes {
                    prefix.appendLengthHeader(field: Self.rawDataField, length: inline.count)
                    try file.write(prefix.bytes)
                    try file.write(inline.bytes)
                } else {
                    try file.write(prefix.bytes)
                }
            }
            try file.finish()
        }
        withExtendedLifetime(arena) {}
    }
}
