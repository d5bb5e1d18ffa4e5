/// The one public error type: what went wrong, where (file or JSON path), and why underneath.
///
/// Its `description` is the single line the command line prints, e.g.
/// `model.onnx: tensor 'fc.weight' raw_data has 12 bytes, expected 16 (invalid model)`.
public struct NNPipeError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Codable {
        /// The manifest or a command-line argument is wrong: exit code 2.
        case invalidManifest = "invalid manifest"
        case usage = "usage"
        /// A model file cannot be read or is inconsistent.
        case invalidModel = "invalid model"
        /// A dataset file cannot be read or does not fit the model.
        case invalidData = "invalid data"
        /// Something valid that nnpipe does not do (yet): an op, a layer, a format.
        case unsupported = "unsupported"
        /// The file system refused (missing file, permission, disk full).
        case io = "i/o"
        /// A stage could not do what it was asked.
        case stageFailed = "stage failed"
        /// A violated internal invariant: a bug in nnpipe.
        case internalError = "internal error"
    }

    public var code: Code
    public var message: String
    /// File path or JSON path (`stages[2].sparsity`) the error is about.
    public var path: String?
    /// 1-based line and column inside `path`, when known.
    public var line: Int?
    public var column: Int?
    public var cause: (any Error & Sendable)?

    public init(
        _ code: Code, _ message: String, path: String? = nil, line: Int? = nil, column: Int? = nil,
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.cause = cause
    }

    public var description: String {
        var text = ""
        if let path {
            text += path
            if let line {
                text += ":\(line)"
                if let column { text += ":\(column)" }
            }
            text += ": "
        }
        text += message
        if let cause { text += ": \(cause)" }
        return text
    }

    /// Process exit status for this error: 2 for bad usage or manifest, 1 otherwise.
    public var exitCode: Int32 {
        switch code {
        case .invalidManifest, .usage: 2
        default: 1
        }
    }

    /// The same error with `path` set when it had none (adds the file name to a format error).
    public func located(at path: String) -> NNPipeError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
