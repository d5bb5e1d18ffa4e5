import Foundation

/// What a path names, following symbolic links. A model or data path that names a pipe blocks
/// the first read forever (no writer ever comes), and a device such as /dev/zero or /dev/urandom
/// never ends: both are refused up front, before anything opens them.
public enum FileKind: Equatable, Sendable {
    case missing
    case folder
    case regular
    /// A pipe, socket or device.
    case special

    public init(_ url: URL) {
        var information = stat()
        guard stat(url.path, &information) == 0 else {
            self = .missing
            return
        }
        switch information.st_mode & S_IFMT {
        case S_IFDIR: self = .folder
        case S_IFREG: self = .regular
        default: self = .special
        }
    }

    /// The one-line reason a `special` path is refused.
    public static let specialMessage = "is a pipe, socket or device, expected a regular file"
}
