import Foundation
import NNPipeCore

/// An HDF5 file: arrays by dataset path (`train/x`), read as hyperslabs of rows.
final class HDF5DatasetFile: DatasetContainer {
    let url: URL
    var path: String { url.path }
    var keys: [String] { [] }

    init(url: URL) throws {
        self.url = url
        throw NNPipeError(.unsupported, "HDF5 data sets are not readable yet", path: url.path)
    }

    func array(key: String) throws -> DatasetArray { throw missing(key) }

    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String? { nil }
}
