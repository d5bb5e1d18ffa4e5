import Foundation

/// Writes the model as it is at this point of the pipeline, in the format the file
/// extension (or `format`) names. Several exports may appear, e.g. before and after quantisation.
public struct ExportStage: Stage {
    public static let kind = "export"
    public static let summary = "Write the model to <output_dir>/<path> (.onnx, .h5, .keras)"
    public static let options: [OptionSpec] = [
        OptionSpec("path", .string, required: true, help: "output file, relative to output_dir; its extension picks the format"),
        OptionSpec("format", .choice(["onnx", "keras-h5", "keras"]), help: "force a format instead of using the extension"),
        OptionSpec("sparse_initializers", .boolean, default: .bool(false), help: "ONNX only: store weights less than one third non-zero as sparse_initializer (smaller files after pruning; onnxruntime densifies them on load)"),
        OptionSpec("dequantize_weights", .boolean, default: .bool(false), help: "Keras only: write a weight-only quantised model with its dequantised float32 weights (fake quantisation; the file does not shrink)"),
    ]

    public let path: String
    public let format: String?
    public let sparseInitializers: Bool
    public let dequantizeWeights: Bool

    public init(options: StageOptions) throws {
        path = options.string("path") ?? ""
        format = options.string("format")
        sparseInitializers = options.bool("sparse_initializers") ?? false
        try Self.checkRelative(path, options: options)
        let isONNX = format.map { $0 == "onnx" } ?? ((path as NSString).pathExtension.lowercased() == "onnx")
        if sparseInitializers && !isONNX {
            throw options.error("sparse_initializers", "only ONNX files hold sparse initializers; '\(path)' is not written as ONNX")
        }
        dequantizeWeights = options.bool("dequantize_weights") ?? false
        if dequantizeWeights && isONNX {
            throw options.error("dequantize_weights", "applies to Keras exports only; ONNX files keep the quantised graph")
        }
    }

    /// The writer for this export; the runner's preflight calls it so a bad extension fails before any work.
    public func writer(formats: FormatRegistry, destination: URL) throws -> any ModelFormat {
        if let format {
            guard let named = formats.format(named: format) else {
                throw NNPipeError(.unsupported, "format '\(format)' is not built into this nnpipe (available: \(formats.names.joined(separator: ", ")))")
            }
            return named
        }
        do { return try formats.format(forOutput: destination) } catch let error as NNPipeError {
            throw NNPipeError(.invalidManifest, "cannot tell the format from '\(path)': \(error.message); use a known extension or set 'format'")
        }
    }

    /// Outputs stay inside output_dir: an absolute path or `..` could overwrite files elsewhere.
    static func checkRelative(_ path: String, options: StageOptions) throws {
        if path.hasPrefix("/") || path.hasPrefix("~") {
            throw options.error("path", "must be relative to output_dir, got the absolute path '\(path)'")
        }
        if path.split(separator: "/").contains("..") {
            throw options.error("path", "must stay inside output_dir, '..' is not allowed in '\(path)'")
        }
        if path.hasSuffix("/") || path.isEmpty {
            throw options.error("path", "must name a file, got '\(path)'")
        }
        // A NUL or newline would be percent-encoded into a name nobody asked for, or split the report's lines.
        if let control = path.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw options.error("path", "contains the control character U+\(String(format: "%04X", control.value))")
        }
    }

    public static func checkPlacement(_ invocation: StageInvocation, in pipeline: [StageInvocation]) -> [NNPipeError] {
        let mine = invocation.options.string("path")
        let earlier = pipeline.prefix(while: { $0.index < invocation.index })
        if let clash = earlier.first(where: { $0.kind == kind && $0.options.string("path") == mine }) {
            return [invocation.options.error("path", "'\(mine ?? "")' is already written by \(clash.path); each export needs its own file")]
        }
        return []
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let destination = context.outputDirectory.appendingPathComponent(path).standardizedFileURL
        let writer = try self.writer(formats: context.formats, destination: destination)
        context.progress.update("writing \(destination.lastPathComponent)")
        // The pipeline's model stays dense (the runtime and later stages read it); only the file is sparse.
        var (written, sparseCount) = sparseInitializers ? SparseInitializers.convert(model) : (model, 0)
        var warnings: [String] = []
        if writer.name != "onnx", FakeQuantization.findings(in: model.graph).isQuantized {
            guard dequantizeWeights else {
                throw NNPipeError(.unsupported, "the model is quantised and Keras files hold float layers only: export ONNX (.onnx), or for a weight-only model set \"dequantize_weights\": true to write its dequantised float weights", path: context.stagePath)
            }
            let folded: Int
            do { (written, folded) = try FakeQuantization.dequantizingWeights(model) } catch let error as NNPipeError {
                throw error.located(at: context.stagePath)
            }
            warnings.append("wrote \(folded) dequantised weights as float32 (fake quantisation): the Keras file is no smaller than the float model's")
        }
        do {
            try writer.write(written, to: destination)
        } catch let error as NNPipeError {
            throw error.located(at: destination.path)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: destination.path)[.size] as? Int) ?? 0
        var details: [(key: String, value: JSONValue)] = [("path", .string(destination.path)), ("format", .string(writer.name)), ("bytes", .number(Double(size)))]
        if sparseInitializers { details.append(("sparse_initializers", .number(Double(sparseCount)))) }
        return StageResult(
            summary: "wrote \(writer.name) \(ByteCountText.format(size)) to \(path)" + (sparseCount > 0 ? " (\(sparseCount) sparse initializers)" : ""),
            details: details,
            warnings: warnings,
            files: [destination.path])
    }
}

/// Human-readable sizes for tables: "1.2 MB".
public enum ByteCountText {
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
