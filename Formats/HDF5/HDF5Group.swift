import CHDF5
import NNPipeCore

/// What a group member is.
public enum HDF5MemberKind: Sendable, Equatable {
    case group, dataset, other
}

/// An open group. Member paths may contain "/" (`model_weights/dense/dense`).
public final class HDF5Group {
    public let file: HDF5File
    /// Absolute path inside the file ("/" for the root).
    public let path: String
    let handle: HDF5Handle
    var check: HDF5Check { file.check }  // quiets this thread's error printing first
    var objectDescription: String { "group '\(path)'" }

    /// This group's attributes.
    public var attributes: HDF5Attributes {
        HDF5Attributes(owner: handle, file: file, objectID: handle.id, objectDescription: objectDescription)
    }

    init(opening name: String, in file: HDF5File, at location: hid_t, absolutePath: String? = nil) throws {
        self.file = file
        path = absolutePath ?? name
        handle = try file.check.handle(
            H5Gopen2(location, name, nnpipe_h5p_default()), .group, "cannot open group '\(absolutePath ?? name)'")
    }

    init(creating name: String, in file: HDF5File, at location: hid_t, absolutePath: String) throws {
        self.file = file
        path = absolutePath
        handle = try file.check.handle(
            H5Gcreate2(location, name, nnpipe_h5p_default(), nnpipe_h5p_default(), nnpipe_h5p_default()),
            .group, "cannot create group '\(absolutePath)'")
    }

    func childPath(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        return path == "/" ? "/" + name : path + "/" + name
    }

    /// Names of the direct members, in name order.
    public func memberNames() throws -> [String] {
        final class Names { var values: [String] = [] }
        let names = Names()
        let visit: H5L_iterate_t = { _, name, _, context in
            guard let name, let context else { return 0 }
            Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().values.append(String(cString: name))
            return 0
        }
        var index: hsize_t = 0
        try check.check(
            H5Literate(handle.id, H5_INDEX_NAME, H5_ITER_INC, &index, visit, Unmanaged.passUnretained(names).toOpaque()),
            "cannot list members of \(objectDescription)")
        return names.values
    }

    /// True when `name` (a relative path, possibly nested) exists here. Never throws.
    public func contains(_ name: String) -> Bool {
        HDF5Check.quietThread()
        var prefix = ""
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            guard H5Lexists(handle.id, prefix, nnpipe_h5p_default()) > 0 else {
                _ = H5Eclear2(nnpipe_h5e_default())
                return false
            }
        }
        return !prefix.isEmpty
    }

    /// What `name` is, or nil when it does not exist.
    public func memberKind(_ name: String) -> HDF5MemberKind? {
        guard contains(name) else { return nil }
        let id = H5Oopen(handle.id, name, nnpipe_h5p_default())
        guard id >= 0 else {
            _ = H5Eclear2(nnpipe_h5e_default())
            return nil
        }
        let object = HDF5Handle(id, kind: .object)
        switch H5Iget_type(object.id) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    public func group(_ name: String) throws -> HDF5Group {
        guard memberKind(name) == .group else {
            throw check.error("no group '\(childPath(name))'")
        }
        return try HDF5Group(opening: name, in: file, at: handle.id, absolutePath: childPath(name))
    }

    public func dataset(_ name: String) throws -> HDF5Dataset {
        guard memberKind(name) == .dataset else {
            throw check.error("no dataset '\(childPath(name))'")
        }
        return try HDF5Dataset(opening: name, in: file, at: handle.id, absolutePath: childPath(name))
    }

    /// Creates a direct child group (`name` without "/"), or the nested path, creating parents as needed.
    public func createGroup(_ name: String) throws -> HDF5Group {
        var current = self
        for component in name.split(separator: "/", omittingEmptySubsequences: true).map(String.init) {
            if current.memberKind(component) == .group {
                current = try current.group(component)
            } else {
                current = try HDF5Group(
                    creating: component, in: file, at: current.handle.id, absolutePath: current.childPath(component))
            }
        }
        return current
    }

    /// Writes `tensor` as a new dataset `name` (nested parents are created).
    @discardableResult
    public func createDataset(_ name: String, tensor: Tensor) throws -> HDF5Dataset {
        let parts = name.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let leaf = parts.last else { throw check.error("empty dataset name") }
        let parent = parts.count > 1 ? try createGroup(parts.dropLast().joined(separator: "/")) : self
        return try HDF5Dataset(creating: leaf, tensor: tensor, in: file, at: parent.handle.id,
                               absolutePath: parent.childPath(leaf))
    }
}
