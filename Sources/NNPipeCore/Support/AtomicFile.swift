import Foundation

/// Writes a file beside its destination and renames it into place, so a failure never
/// leaves a half-written output and never touches an existing file until the new one is complete.
public enum AtomicFile {
    /// Calls `body` with a temporary path in the destination's folder; on success renames it to `url`.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if !manager.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            do {
                try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw NNPipeError(.io, "cannot create folder", path: folder.path)
            }
        } else if !isDirectory.boolValue {
            throw NNPipeError(.io, "is not a folder", path: folder.path)
        }
        let temporary = folder.appendingPathComponent(
            ".\(url.lastPathComponent).nnpipe-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try body(temporary)
        } catch {
            try? manager.removeItem(at: temporary)
            throw error
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? manager.removeItem(at: temporary)
            throw NNPipeError(.io, "cannot move finished file into place: \(reason)", path: url.path)
        }
    }

    /// Writes `data` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { temporary in
            do { try data.write(to: temporary) } catch {
                throw NNPipeError(.io, "cannot write file", path: url.path)
            }
        }
    }
}
