import CHDF5
import Foundation
import NNPipeCore

/// The one throwing check every libhdf5 return code goes through.
///
/// libhdf5 prints its error stack to stderr by default; that is switched off once, and on
/// failure the stack is read with `H5Ewalk2` and folded into a single `NNPipeError` line.
struct HDF5Check {
    /// The file the errors are about, and the code to report them with (a model reader wants
    /// `.invalidModel`, a dataset reader `.invalidData`).
    let path: String
    let errorCode: NNPipeError.Code

    /// Silences libhdf5's automatic stderr printing on the calling thread. The thread-safe build keeps
    /// one error stack per thread, so this runs (once per thread) before any call that can fail;
    /// the wrapper's `check` accessors call it, which Swift evaluates before the C call's arguments.
    static func quietThread() {
        let key = "nnpipe.hdf5.quiet"
        let thread = Thread.current.threadDictionary
        if thread[key] != nil { return }
        _ = H5open()
        _ = H5Eset_auto2(nnpipe_h5e_default(), nil, nil)
        thread[key] = true
    }

    init(path: String, errorCode: NNPipeError.Code) {
        Self.quietThread()
        self.path = path
        self.errorCode = errorCode
    }

    /// Returns `value` when it is non-negative; otherwise throws `what` plus the library's reason.
    @discardableResult
    func check<Value: BinaryInteger>(_ value: Value, _ what: @autoclosure () -> String) throws -> Value {
        if value >= 0 { return value }
        throw failure(what())
    }

    /// Wraps a freshly returned identifier in its owner, or throws.
    func handle(_ id: hid_t, _ kind: HDF5Handle.Kind, _ what: @autoclosure () -> String) throws -> HDF5Handle {
        guard id >= 0 else { throw failure(what()) }
        return HDF5Handle(id, kind: kind)
    }

    /// An error for `what` that says why, from the library's error stack (which it then clears).
    func failure(_ what: String) -> NNPipeError {
        let reason = Self.takeErrorStack()
        return NNPipeError(errorCode, reason.isEmpty ? what : "\(what): \(reason)", path: path)
    }

    /// A plain error with this file's path and code (for problems the library did not detect).
    func error(_ message: String) -> NNPipeError {
        NNPipeError(errorCode, message, path: path)
    }

    /// The error stack as one phrase: the most specific description, then the API call's, deduplicated.
    static func takeErrorStack() -> String {
        final class Collected { var descriptions: [String] = [] }
        let collected = Collected()
        let walker: H5E_walk2_t = { _, entry, context in
            guard let entry, let context else { return 0 }
            let box = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
            if let description = entry.pointee.desc {
                let text = String(cString: description).trimmingCharacters(in: .whitespaces)
                if !text.isEmpty { box.descriptions.append(text) }
            }
            return 0
        }
        let context = Unmanaged.passUnretained(collected).toOpaque()
        _ = H5Ewalk2(nnpipe_h5e_default(), H5E_WALK_UPWARD, walker, context)
        _ = H5Eclear2(nnpipe_h5e_default())
        var parts: [String] = []
        // Upward walk: innermost cause first. Keep it and the outermost (API-level) summary.
        if let innermost = collected.descriptions.first { parts.append(innermost) }
        if let outermost = collected.descriptions.last, outermost != parts.first { parts.insert(outermost, at: 0) }
        return parts.joined(separator: ": ")
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}

extension Set where Element == Character {
    fileprivate static var whitespaces: Set<Character> { [" ", "\t", "\n", "\r"] }
}
