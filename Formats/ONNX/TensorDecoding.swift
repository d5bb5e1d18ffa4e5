import CProtobufC
import NNPipeCore
import ONNXProto

/// Converts TensorProto messages into IR tensors in raw layout, whichever storage field holds the data.
struct TensorDecoder {
    let path: String
    let externalFiles: ExternalDataFiles

    func failure(_ name: String, _ problem: String) -> NNPipeError {
        NNPipeError(.invalidModel, "tensor '\(name)': \(problem)", path: path)
    }

    /// `rawView` is where the tensor's `raw_data` sits in a mapped file, when the caller located it
    /// there instead of letting protobuf-c copy it.
    func tensor(_ proto: Onnx__TensorProto, rawView: (file: MappedFile, range: Range<Int>)? = nil) throws -> Tensor {
        let name = cString(proto.name)
        guard proto.has_data_type != 0, proto.data_type != 0 else {
            throw failure(name, "has no data_type")
        }
        guard let dataType = DataType(rawValue: proto.data_type) else {
            throw failure(name, "has unknown data_type \(proto.data_type)")
        }
        let shape = try self.shape(proto, name: name)
        let count = shape.reduce(1, *)
        let (expectedBytes, overflow) = count.multipliedReportingOverflow(by: max(dataType.bitWidth, 1))
        guard !overflow, expectedBytes / 8 < Int(Int32.max) * 64 else {
            throw failure(name, "shape \(shape) has too many elements")
        }
        let metadata = entries(proto.metadata_props, proto.n_metadata_props)
        func make(_ storage: Tensor.Storage) -> Tensor {
            Tensor(name: name, dataType: dataType, shape: shape, storage: storage,
                   docString: cString(proto.doc_string), metadata: metadata)
        }
        if dataType == .string {
            guard proto.has_raw_data == 0, rawView == nil, proto.has_data_location == 0 || proto.data_location == 0 else {
                throw failure(name, "string tensors must keep their values in string_data")
            }
            guard proto.n_string_data == count else {
                throw failure(name, "has \(proto.n_string_data) values in string_data, its shape \(shape) needs \(count)")
            }
            let strings = (0..<count).map { index in
                let value = proto.string_data[index]
                return value.len == 0 ? [] : Array(UnsafeBufferPointer(start: value.data, count: value.len))
            }
            return make(.strings(strings))
        }
        let byteCount = dataType.byteCount(elements: count)
        let alignment = max(1, min(dataType.bitWidth / 8, 16))
        if proto.has_data_location != 0 && proto.data_location == 1 {
            let buffer = try externalFiles.bytes(
                tensorName: name, entries: entries(proto.external_data, proto.n_external_data),
                expectedCount: byteCount, alignment: alignment)
            return make(.bytes(buffer))
        }
        if let rawView {
            guard rawView.range.count == byteCount else {
                throw failure(name, "raw_data has \(rawView.range.count) bytes, its shape \(shape) of \(dataType) needs \(byteCount)")
            }
            return make(.bytes(TensorBytes.buffer(from: rawView.file, range: rawView.range, alignment: alignment)))
        }
        if proto.has_raw_data != 0 {
            guard proto.raw_data.len == byteCount else {
                throw failure(name, "raw_data has \(proto.raw_data.len) bytes, its shape \(shape) of \(dataType) needs \(byteCount)")
            }
            return make(.bytes(TensorBuffer(copying: UnsafeRawBufferPointer(start: proto.raw_data.data, count: byteCount))))
        }
        return make(.bytes(try typedFieldBytes(proto, dataType: dataType, count: count, name: name, shape: shape)))
    }

    private func shape(_ proto: Onnx__TensorProto, name: String) throws -> [Int] {
        var shape: [Int] = []
        shape.reserveCapacity(proto.n_dims)
        var count = 1
        for index in 0..<proto.n_dims {
            let dimension = proto.dims[index]
            guard dimension >= 0 else { throw failure(name, "has negative dimension \(dimension)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(dimension))
            guard !overflow else { throw failure(name, "dimensions overflow the element count") }
            count = product
            shape.append(Int(dimension))
        }
        return shape
    }

    /// Raw bytes from the typed repeated fields (float_data, int32_data, ...), as the spec assigns them:
    /// 8- and 16-bit types, floats of 16 bits or fewer and packed 4-/2-bit bytes live in int32_data.
    private func typedFieldBytes(
        _ proto: Onnx__TensorProto, dataType: DataType, count: Int, name: String, shape: [Int]
    ) throws -> TensorBuffer {
        func check(_ field: String, _ have: Int, _ need: Int) throws {
            guard have == need else {
                if have == 0 {
                    throw failure(name, "has no data (shape \(shape) of \(dataType) needs \(need) values in \(field))")
                }
                throw failure(name, "has \(have) values in \(field), its shape \(shape) of \(dataType) needs \(need)")
            }
        }
        /// Copies a field whose element layout already equals the raw layout.
        func same<Element>(_ field: String, _ values: UnsafeMutablePointer<Element>?, _ have: Int, _ need: Int) throws -> TensorBuffer {
            try check(field, have, need)
            return TensorBuffer(copying: UnsafeRawBufferPointer(start: values, count: need * MemoryLayout<Element>.stride))
        }
        /// Narrows each field element to `Narrow` (bit patterns, little-endian).
        func narrowed<Element, Narrow: FixedWidthInteger>(
            _ field: String, _ values: UnsafeMutablePointer<Element>?, _ have: Int, _ need: Int,
            to: Narrow.Type, _ convert: (Element) -> Narrow
        ) throws -> TensorBuffer {
            try check(field, have, need)
            return TensorBuffer(byteCount: need * MemoryLayout<Narrow>.size) { output in
                let typed = output.bindMemory(to: Narrow.self)
                for index in 0..<need { typed[index] = convert(values![index]).littleEndian }
            }
        }
        switch dataType {
        case .float: return try same("float_data", proto.float_data, proto.n_float_data, count)
        case .complex64: return try same("float_data", proto.float_data, proto.n_float_data, count * 2)
        case .double: return try same("double_data", proto.double_data, proto.n_double_data, count)
        case .complex128: return try same("double_data", proto.double_data, proto.n_double_data, count * 2)
        case .int64: return try same("int64_data", proto.int64_data, proto.n_int64_data, count)
        case .uint64: return try same("uint64_data", proto.uint64_data, proto.n_uint64_data, count)
        case .int32: return try same("int32_data", proto.int32_data, proto.n_int32_data, count)
        case .uint32:
            return try narrowed("uint64_data", proto.uint64_data, proto.n_uint64_data, count, to: UInt32.self) {
                UInt32(truncatingIfNeeded: $0)
            }
        case .int16, .uint16, .float16, .bfloat16:
            return try narrowed("int32_data", proto.int32_data, proto.n_int32_data, count, to: UInt16.self) {
                UInt16(truncatingIfNeeded: $0)
            }
        case .bool:
            return try narrowed("int32_data", proto.int32_data, proto.n_int32_data, count, to: UInt8.self) {
                $0 != 0 ? 1 : 0
            }
        case .int8, .uint8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            return try narrowed("int32_data", proto.int32_data, proto.n_int32_data, count, to: UInt8.self) {
                UInt8(truncatingIfNeeded: $0)
            }
        case .int4, .uint4, .float4e2m1, .int2, .uint2:
            // Already packed: each int32 holds one byte of two (or four) elements, low bits first.
            return try narrowed(
                "int32_data", proto.int32_data, proto.n_int32_data, dataType.byteCount(elements: count), to: UInt8.self
            ) { UInt8(truncatingIfNeeded: $0) }
        case .string, .undefined:
            throw failure(name, "has no numeric storage for \(dataType)")
        }
    }
}

/// A C string from protobuf-c (NULL when the field is absent) as a Swift string.
func cString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

/// Key/value entries from a repeated StringStringEntryProto field.
func entries(_ list: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?, _ count: Int) -> [MetadataEntry] {
    (0..<count).compactMap { index in
        guard let entry = list?[index]?.pointee else { return nil }
        return MetadataEntry(key: cString(entry.key), value: cString(entry.value))
    }
}

/// Elements of a repeated scalar field as a Swift array.
func array<Element>(_ pointer: UnsafeMutablePointer<Element>?, _ count: Int) -> [Element] {
    guard let pointer, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: count))
}

/// Bytes of a protobuf-c bytes field.
func bytes(_ value: ProtobufCBinaryData) -> [UInt8] {
    guard value.len > 0, let data = value.data else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: value.len))
}
