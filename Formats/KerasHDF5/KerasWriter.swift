import Foundation
import NNPipeCore

enum KerasWriter {
    static func write(_ model: Model, to url: URL) throws {
        throw NNPipeError(.unsupported, "Keras export is not written yet", path: url.path)
    }
}
