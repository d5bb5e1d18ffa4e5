import CHDF5
import NNPipeCore

/// A decoded attribute value: text (fixed- or variable-length strings) or numbers.
public enum HDF5AttributeValue: Sendable, Equatable {
    case strings([String])
    case numbers([Double])
    case integers([Int64])
}

/// The attributes of one group or dataset.
///
/// Reads accept what h5py and Keras write: scalar or array strings, fixed-length (NUL- or
/// space-padded) or variable-length, and lists split over `name0`, `name1`, ... when they
/// exceed the 64 KiB object-header limit.
public struct HDF5Attributes {
    /// Attribute data larger than this must be split (HDF5's compact object header limit, as Keras uses).
    public static let objectHeaderLimit = 64_512

    let owner: HDF5Handle
    let file: HDF5File
    let objectID: hid_t
    let objectDescription: String
    var check: HDF5Check { file.check }  // quiets this thread's error printing first

    /// Attribute names in creation order where tracked, else name order.
    public func names() throws -> [String] {
        final class Names { var values: [String] = [] }
        let names = Names()
        let visit: H5A_operator2_t = { _, name, _, context in
            guard let name, let context else { return 0 }
            Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().values.append(String(cString: name))
            return 0
        }
        var index: hsize_t = 0
        try check.check(
            H5Aiterate2(objectID, H5_INDEX_NAME, H5_ITER_INC, &index, visit, Unmanaged.passUnretained(names).toOpaque()),
            "cannot list attributes of \(objectDescription)")
        return names.values
    }

    public func contains(_ name: String) -> Bool {
        HDF5Check.quietThread()
        let found = H5Aexists(objectID, name)
        if found < 0 { _ = H5Eclear2(nnpipe_h5e_default()) }
        return found > 0
    }

    /// The attribute's value, or nil when it does not exist.
    public func value(_ name: String) throws -> HDF5AttributeValue? {
        guard contains(name) else { return nil }
        let what = "cannot read attribute '\(name)' of \(objectDescription)"
        let attribute = try check.handle(H5Aopen(objectID, name, nnpipe_h5p_default()), .attribute, what)
        let type = try check.handle(H5Aget_type(attribute.id), .datatype, what)
        let space = try check.handle(H5Aget_space(attribute.id), .dataspace, what)
        let count = Int(try check.check(H5Sget_simple_extent_npoints(space.id), what))
        switch H5Tget_class(type.id) {
        case H5T_STRING:
            return .strings(try readStrings(attribute: attribute, type: type, space: space, count: count, what: what))
        case H5T_INTEGER, H5T_ENUM:
            var values = [Int64](repeating: 0, count: count)
            try check.check(H5Aread(attribute.id, nnpipe_h5t_native_int64(), &values), what)
            return .integers(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            try check.check(H5Aread(attribute.id, nnpipe_h5t_native_double(), &values), what)
            return .numbers(values)
        default:
            throw check.error("\(what): unsupported attribute type")
        }
    }

    private func readStrings(
        attribute: HDF5Handle, type: HDF5Handle, space: HDF5Handle, count: Int, what: String
    ) throws -> [String] {
        guard count > 0 else { return [] }
        if try check.check(H5Tis_variable_str(type.id), what) > 0 {
            let memoryType = try check.handle(H5Tcopy(nnpipe_h5t_c_s1()), .datatype, what)
            try check.check(H5Tset_size(memoryType.id, nnpipe_h5t_variable()), what)
            try check.check(H5Tset_cset(memoryType.id, H5Tget_cset(type.id)), what)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try check.check(H5Aread(attribute.id, memoryType.id, &pointers), what)
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            _ = H5Dvlen_reclaim(memoryType.id, space.id, nnpipe_h5p_default(), &pointers)
            return strings
        }
        let size = H5Tget_size(type.id)
        guard size > 0 else { throw check.error("\(what): zero-length string type") }
        var bytes = [UInt8](repeating: 0, count: size * count)
        try check.check(H5Aread(attribute.id, type.id, &bytes), what)
        let spacePadded = H5Tget_strpad(type.id) == H5T_STR_SPACEPAD
        return (0..<count).map { index in
            var slice = bytes[(index * size)..<((index + 1) * size)]
            if let end = slice.firstIndex(of: 0) { slice = slice[..<end] }
            if spacePadded { while slice.last == 0x20 { slice = slice.dropLast() } }
            return String(decoding: slice, as: UTF8.self)
        }
    }

    /// A string attribute's single value (the first element of a string array), or nil when absent.
    public func string(_ name: String) throws -> String? {
        guard let value = try value(name) else { return nil }
        guard case .strings(let strings) = value else {
            throw check.error("attribute '\(name)' of \(objectDescription) is not text")
        }
        return strings.first ?? ""
    }

    /// A list of strings, joining Keras-style splits (`name0`, `name1`, ...); nil when absent.
    public func stringList(_ name: String) throws -> [String]? {
        if let value = try value(name) {
            switch value {
            case .strings(let strings): return strings
            // h5py writes an empty list as an empty float64 array (Keras's weight_names of a weightless layer).
            case .numbers([]), .integers([]): return []
            default: throw check.error("attribute '\(name)' of \(objectDescription) is not text")
            }
        }
        var joined: [String] = []
        var chunk = 0
        while contains("\(name)\(chunk)") {
            guard case .strings(let strings)? = try value("\(name)\(chunk)") else {
                throw check.error("attribute '\(name)\(chunk)' of \(objectDescription) is not text")
            }
            joined += strings
            chunk += 1
        }
        return chunk == 0 ? nil : joined
    }

    /// Numeric attribute values converted to Double (integers included); nil when absent.
    public func numbers(_ name: String) throws -> [Double]? {
        switch try value(name) {
        case nil: return nil
        case .numbers(let values): return values
        case .integers(let values): return values.map(Double.init)
        case .strings: throw check.error("attribute '\(name)' of \(objectDescription) is not numeric")
        }
    }

    // MARK: Writing

    /// Writes a scalar fixed-length UTF-8 string (as h5py stores Python `bytes`).
    public func set(_ name: String, string: String) throws {
        try writeStrings(name, [string], scalar: true)
    }

    /// Writes a 1-D fixed-length string array (as h5py stores a numpy `S` array).
    public func set(_ name: String, strings: [String]) throws {
        try writeStrings(name, strings, scalar: false)
    }

    /// Writes a string list, split over `name0`, `name1`, ... when it exceeds the header limit (as Keras does).
    public func set(_ name: String, splitStrings strings: [String]) throws {
        let width = max(strings.map(\.utf8.count).max() ?? 1, 1)
        guard width * strings.count > Self.objectHeaderLimit else {
            try set(name, strings: strings)
            return
        }
        let perChunk = max(Self.objectHeaderLimit / width, 1)
        var chunk = 0
        for start in stride(from: 0, to: strings.count, by: perChunk) {
            try set("\(name)\(chunk)", strings: Array(strings[start..<min(start + perChunk, strings.count)]))
            chunk += 1
        }
    }

    public func set(_ name: String, integers: [Int64], scalar: Bool = false) throws {
        try writeNumbers(name, integers, fileType: nnpipe_h5t_std_i64le(), memoryType: nnpipe_h5t_native_int64(), scalar: scalar)
    }

    public func set(_ name: String, numbers: [Double], scalar: Bool = false) throws {
        try writeNumbers(name, numbers, fileType: nnpipe_h5t_ieee_f64le(), memoryType: nnpipe_h5t_native_double(), scalar: scalar)
    }

    private func writeNumbers<Value>(_ name: String, _ values: [Value], fileType: hid_t, memoryType: hid_t, scalar: Bool) throws {
        let what = "cannot write attribute '\(name)' of \(objectDescription)"
        precondition(!scalar || values.count == 1, "a scalar attribute holds one value")
        let space = try makeSpace(count: values.count, scalar: scalar, what: what)
        try removeIfPresent(name, what: what)
        let attribute = try check.handle(
            H5Acreate2(objectID, name, fileType, space.id, nnpipe_h5p_default(), nnpipe_h5p_default()), .attribute, what)
        try values.withUnsafeBytes { bytes in
            _ = try check.check(H5Awrite(attribute.id, memoryType, bytes.baseAddress), what)
        }
    }

    private func writeStrings(_ name: String, _ strings: [String], scalar: Bool) throws {
        let what = "cannot write attribute '\(name)' of \(objectDescription)"
        let width = max(strings.map(\.utf8.count).max() ?? 1, 1)
        let type = try check.handle(H5Tcopy(nnpipe_h5t_c_s1()), .datatype, what)
        try check.check(H5Tset_size(type.id, width), what)
        try check.check(H5Tset_strpad(type.id, H5T_STR_NULLPAD), what)
        var bytes = [UInt8](repeating: 0, count: width * strings.count)
        for (index, string) in strings.enumerated() {
            for (offset, byte) in string.utf8.enumerated() { bytes[index * width + offset] = byte }
        }
        let space = try makeSpace(count: strings.count, scalar: scalar, what: what)
        try removeIfPresent(name, what: what)
        let attribute = try check.handle(
            H5Acreate2(objectID, name, type.id, space.id, nnpipe_h5p_default(), nnpipe_h5p_default()), .attribute, what)
        try check.check(H5Awrite(attribute.id, type.id, bytes), what)
    }

    private func makeSpace(count: Int, scalar: Bool, what: String) throws -> HDF5Handle {
        if scalar { return try check.handle(H5Screate(H5S_SCALAR), .dataspace, what) }
        var dimensions = [hsize_t(count)]
        return try check.handle(H5Screate_simple(1, &dimensions, nil), .dataspace, what)
    }

    private func removeIfPresent(_ name: String, what: String) throws {
        if contains(name) { try check.check(H5Adelete(objectID, name), what) }
    }
}
