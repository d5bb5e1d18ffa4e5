import Foundation
import NNPipeCore

/// What to read from a data set: a manifest `datasets` entry or `nnpipe eval --data/--inputs/--labels`.
public struct DatasetSource: Sendable, Hashable {
    /// Which arrays feed the model's inputs. Keys are HDF5 dataset paths (`train/x`), `.npz`
    /// array names, `.pb` file stems (`input_0`), or for a `.npy` the name of a `.npy` beside it.
    public enum InputSelection: Sendable, Hashable {
        /// One array for a single-input model; `key` nil picks the obvious one (a `.npy` file,
        /// the only array of a `.npz`, arrays named after the model inputs, `input_N.pb`).
        case single(key: String?)
        /// Model input name -> array key, for models with several inputs.
        case named([String: String])
    }

    /// A `.h5`/`.hdf5`, `.npy` or `.npz` file, or a folder of ONNX TensorProto `.pb` files.
    public var path: URL
    public var inputs: InputSelection
    /// Key of the labels (or reference outputs) array: an HDF5 path, a `.npz` name, a `.pb` file
    /// stem such as `output_0`, or a `.npy` file beside `path`.
    public var labels: String?
    /// Reads at most this many samples (after shuffling, so a shuffled limit is a random subset).
    public var limit: Int?
    public var shuffle: Bool
    /// Seed of the shuffle; the order depends only on the seed and the sample count.
    public var seed: UInt64

    public init(
        path: URL, inputs: InputSelection = .single(key: nil), labels: String? = nil,
        limit: Int? = nil, shuffle: Bool = false, seed: UInt64 = 0
    ) {
        self.path = path
        self.inputs = inputs
        self.labels = labels
        self.limit = limit
        self.shuffle = shuffle
        self.seed = seed
    }
}

/// A model input as a data set must feed it: the element type to convert to and the shape to check.
public struct ExpectedInput: Sendable, Hashable {
    public var name: String
    public var elementType: DataType
    /// Nil when the model does not declare the rank; then any shape is accepted.
    public var shape: [NNPipeCore.Dimension]?

    public init(name: String, elementType: DataType, shape: [NNPipeCore.Dimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    /// The expectation for a graph input; nil unless it is a tensor.
    public init?(_ valueInfo: ValueInfo) {
        guard case .tensor(let elementType, let shape) = valueInfo.type else { return nil }
        self.init(name: valueInfo.name, elementType: elementType, shape: shape)
    }
}

/// One batch: every model input and the labels for the same samples, sample axis first.
public struct Batch: Sendable {
    /// Model input name -> tensor in the model's element type, named after the input.
    public var inputs: [String: Tensor]
    /// Labels in the file's own element type (class ids or one-hot rows), if the source names them.
    public var labels: Tensor?
    /// Positions of these samples in the reader's order (0-based, after shuffle and limit).
    public var range: Range<Int>

    public init(inputs: [String: Tensor], labels: Tensor?, range: Range<Int>) {
        self.inputs = inputs
        self.labels = labels
        self.range = range
    }

    public var sampleCount: Int { range.count }
}
