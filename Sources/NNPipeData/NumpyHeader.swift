import NNPipeCore

/// The header of a `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// See numpy's `numpy/lib/format.py`: magic `\x93NUMPY`, major and minor version, a little-endian
/// header length (2 bytes in v1, 4 in v2/v3), then a Python dict literal padded to 64 bytes.
struct NumpyHeader: Equatable {
    var dataType: DataType
    var shape: [Int]
    /// Byte offset of the first element.
    var dataOffset: Int

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Reads and checks the header at the start of `source`.
    static func read(from source: ByteSource) throws -> NumpyHeader {
        let location = source.location
        guard source.count >= 10 else {
            throw NNPipeError(.invalidData, "not a .npy file (only \(source.count) bytes)", path: location)
        }
        let prefix = try source.bytes(at: 0, count: min(12, source.count))
        guard Array(prefix[0..<6]) == magic else {
            throw NNPipeError(.invalidData, "not a .npy file (no \\x93NUMPY magic)", path: location)
        }
        let major = prefix[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
            headerStart = 10
        case 2, 3:
            guard prefix.count >= 12 else {
                throw NNPipeError(.invalidData, "truncated .npy header", path: location)
            }
            headerLength =
                Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24
            headerStart = 12
        default:
            throw NNPipeError(
                .unsupported, ".npy format version \(major).\(prefix[7]) (known: 1.0, 2.0, 3.0)",
                path: location)
        }
        guard headerStart + headerLength <= source.count else {
            throw NNPipeError(
                .invalidData, "truncated .npy header (declares \(headerLength) bytes)", path: location)
        }
        let text = String(decoding: try source.bytes(at: headerStart, count: headerLength), as: UTF8.self)
        var header = try parse(dictionary: text, location: location)
        header.dataOffset = headerStart + headerLength
        let needed = header.dataType.byteCount(elements: header.shape.reduce(1, *))
        guard header.dataOffset + needed <= source.count else {
            throw NNPipeError(
                .invalidData,
                "truncated: shape \(header.shape) of \(header.dataType) needs \(needed) data bytes, file has \(source.count - header.dataOffset)",
                path: location)
        }
        return header
    }

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
    static func parse(dictionary text: String, location: String) throws -> NumpyHeader {
        func value(of key: String) throws -> Substring {
            guard let keyRange = text.range(of: "'\(key)'") ?? text.range(of: "\"\(key)\"") else {
                throw NNPipeError(.invalidData, ".npy header has no '\(key)': \(text.trimmed)", path: location)
            }
            var rest = text[keyRange.upperBound...].drop { $0 == " " }
            guard rest.first == ":" else {
                throw NNPipeError(.invalidData, ".npy header is malformed: \(text.trimmed)", path: location)
            }
            rest = rest.dropFirst().drop { $0 == " " }
            return rest
        }
        // descr: a quoted type string; a list means a structured dtype, which no model input takes.
        let descrText = try value(of: "descr")
        guard let quote = descrText.first, quote == "'" || quote == "\"",
            let end = descrText.dropFirst().firstIndex(of: quote)
        else {
            throw NNPipeError(
                .unsupported, "structured .npy arrays (descr \(descrText.printable(limit: 40))) are not supported",
                path: location)
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
        let dataType = try dataType(descr: descr, location: location)

        let orderText = try value(of: "fortran_order")
        if orderText.hasPrefix("True") {
            throw NNPipeError(
                .unsupported,
                "Fortran-order .npy arrays are not supported: save with np.save(path, np.ascontiguousarray(a))",
                path: location)
        }
        guard orderText.hasPrefix("False") else {
            throw NNPipeError(.invalidData, ".npy header fortran_order is not True/False", path: location)
        }

        let shapeText = try value(of: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw NNPipeError(.invalidData, ".npy header shape is not a tuple", path: location)
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let digits = part.trimmingCharacters(in: " L")
            if digits.isEmpty { continue }
            guard let dimension = Int(digits), dimension >= 0 else {
                throw NNPipeError(.invalidData, ".npy header shape has '\(digits.printable(limit: 20))'", path: location)
            }
            shape.append(dimension)
        }
        let (elements, overflow) = shape.reduce((1, false)) { partial, next in
            let product = partial.0.multipliedReportingOverflow(by: next)
            return (product.partialValue, partial.1 || product.overflow)
        }
        guard !overflow, elements <= Int.max >> 8 else {
            throw NNPipeError(.invalidData, ".npy shape \(shape) is too large", path: location)
        }
        return NumpyHeader(dataType: dataType, shape: shape, dataOffset: 0)
    }

    /// Maps a numpy type string (`<f4`, `|u1`, `<i8`, ...) to the IR element type.
    static func dataType(descr: String, location: String) throws -> DataType {
        guard descr.count >= 3 else {
            throw NNPipeError(.unsupported, ".npy dtype '\(descr.printable(limit: 20))' is not supported", path: location)
        }
        let order = descr.first!
        let code = String(descr.dropFirst())
        if order == ">" && !["i1", "u1", "b1"].contains(code) {
            throw NNPipeError(
                .unsupported,
                "big-endian .npy dtype '\(descr.printable(limit: 20))': save with a.astype(a.dtype.newbyteorder('<'))",
                path: location)
        }
        guard "<|=>".contains(order) else {
            throw NNPipeError(.unsupported, ".npy dtype '\(descr.printable(limit: 20))' is not supported", path: location)
        }
        switch code {
        case "f2": return .float16
        case "f4": return .float
        case "f8": return .double
        case "i1": return .int8
        case "i2": return .int16
        case "i4": return .int32
        case "i8": return .int64
        case "u1": return .uint8
        case "u2": return .uint16
        case "u4": return .uint32
        case "u8": return .uint64
        case "b1": return .bool
        default:
            throw NNPipeError(
                .unsupported,
                ".npy dtype '\(descr.printable(limit: 20))' is not supported (numeric: f2 f4 f8 i1-i8 u1-u8 b1)",
                path: location)
        }
    }

    /// The numpy type string for `dataType`, for writing.
    static func descr(for dataType: DataType) -> String? {
        switch dataType {
        case .float16: "<f2"
        case .float: "<f4"
        case .double: "<f8"
        case .int8: "|i1"
        case .int16: "<i2"
        case .int32: "<i4"
        case .int64: "<i8"
        case .uint8: "|u1"
        case .uint16: "<u2"
        case .uint32: "<u4"
        case .uint64: "<u8"
        case .bool: "|b1"
        default: nil
        }
    }

    /// A version 1.0 header (2.0 when the dict would not fit in 65,535 bytes), padded to 64 bytes.
    static func encode(dataType: DataType, shape: [Int]) -> [UInt8]? {
        guard let descr = descr(for: dataType) else { return nil }
        let shapeText =
            shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dictionary = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let isVersion1 = dictionary.utf8.count + 11 < 65_536
        let prefixLength = isVersion1 ? 10 : 12
        let total = (prefixLength + dictionary.utf8.count + 1 + 63) / 64 * 64
        dictionary += String(repeating: " ", count: total - prefixLength - dictionary.utf8.count - 1) + "\n"
        let length = dictionary.utf8.count
        var bytes = magic + [isVersion1 ? 1 : 2, 0]
        bytes += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF)]
        if !isVersion1 { bytes += [UInt8((length >> 16) & 0xFF), UInt8((length >> 24) & 0xFF)] }
        return bytes + Array(dictionary.utf8)
    }
}

extension String {
    /// The header text for a one-line message: control characters shown as '?', at most 100 characters.
    fileprivate var trimmed: String {
        trimmingCharacters(in: " \n").printable()
    }
    fileprivate func trimmingCharacters(in characters: String) -> String {
        String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        String(self).trimmingCharacters(in: characters)
    }
}
