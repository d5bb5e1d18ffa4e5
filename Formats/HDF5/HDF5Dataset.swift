import CHDF5
import NNPipeCore

/// An open dataset: its shape and element type, whole or row-range reads into IR tensors, writes.
public final class HDF5Dataset {
    public let file: HDF5File
    /// Absolute path inside the file.
    public let path: String
    /// Extent per axis (empty for a scalar dataset).
    public let shape: [Int]
    /// The IR element type, or nil when the stored type is not one the wrapper reads
    /// (strings, compounds, ...); reading such a dataset throws.
    public let dataType: DataType?
    let handle: HDF5Handle
    var check: HDF5Check { file.check }  // quiets this thread's error printing first
    var objectDescription: String { "dataset '\(path)'" }

    public var attributes: HDF5Attributes {
        HDF5Attributes(owner: handle, file: file, objectID: handle.id, objectDescription: objectDescription)
    }

    init(opening name: String, in file: HDF5File, at location: hid_t, absolutePath: String) throws {
        self.file = file
        path = absolutePath
        let what = "cannot open dataset '\(absolutePath)'"
        handle = try file.check.handle(H5Dopen2(location, name, nnpipe_h5p_default()), .dataset, what)
        let type = try file.check.handle(H5Dget_type(handle.id), .datatype, what)
        dataType = HDF5ElementType.dataType(of: type.id)
        shape = try Self.readShape(of: handle, check: file.check, what: what)
    }

    init(creating name: String, tensor: Tensor, in file: HDF5File, at location: hid_t, absolutePath: String) throws {
        self.file = file
        path = absolutePath
        shape = tensor.shape
        dataType = tensor.dataType
        let check = file.check
        let what = "cannot write dataset '\(absolutePath)'"
        guard case .bytes(let buffer) = tensor.storage else {
            throw check.error("\(what): string tensors are not written")
        }
        let fileType = try HDF5ElementType.fileType(for: tensor.dataType, check: check)
        let memoryType = try HDF5ElementType.memoryType(for: tensor.dataType, check: check)
        var dimensions = tensor.shape.map { hsize_t($0) }
        let space = try check.handle(
            dimensions.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dimensions.count), &dimensions, nil),
            .dataspace, what)
        handle = try check.handle(
            H5Dcreate2(location, name, fileType.id, space.id, nnpipe_h5p_default(), nnpipe_h5p_default(), nnpipe_h5p_default()),
            .dataset, what)
        if tensor.elementCount > 0 {
            precondition(buffer.count == tensor.dataType.byteCount(elements: tensor.elementCount), "tensor bytes do not match its shape")
            try check.check(
                H5Dwrite(handle.id, memoryType.id, nnpipe_h5s_all(), nnpipe_h5s_all(), nnpipe_h5p_default(), buffer.bytes.baseAddress),
                what)
        }
    }

    private static func readShape(of dataset: HDF5Handle, check: HDF5Check, what: String) throws -> [Int] {
        let space = try check.handle(H5Dget_space(dataset.id), .dataspace, what)
        let rank = Int(try check.check(H5Sget_simple_extent_ndims(space.id), what))
        var dimensions = [hsize_t](repeating: 0, count: rank)
        try check.check(H5Sget_simple_extent_dims(space.id, &dimensions, nil), what)
        return dimensions.map { Int($0) }
    }

    /// Number of rows (extent of axis 0; 1 for a scalar).
    public var rowCount: Int { shape.first ?? 1 }

    /// Reads the whole dataset, or the rows `rows` along axis 0, in its stored element type.
    /// - Complexity: O(elements read); only the selected rows are read from disk.
    public func readTensor(name: String? = nil, rows: Range<Int>? = nil) throws -> Tensor {
        let what = "cannot read \(objectDescription)"
        guard let dataType else { throw check.error("\(what): unsupported element type") }
        let memoryType = try HDF5ElementType.memoryType(for: dataType, check: check)
        let (outputShape, fileSpace, memorySpace) = try selection(rows: rows, what: what)
        let elements = outputShape.reduce(1, *)
        let buffer = try TensorBuffer(byteCount: dataType.byteCount(elements: elements)) { destination in
            guard elements > 0 else { return }
            try check.check(
                H5Dread(handle.id, memoryType.id, memorySpace?.id ?? nnpipe_h5s_all(), fileSpace?.id ?? nnpipe_h5s_all(),
                        nnpipe_h5p_default(), destination.baseAddress),
                what)
        }
        return Tensor(name: name ?? path, dataType: dataType, shape: outputShape, storage: .bytes(buffer))
    }

    /// Reads values converted to Float (float16/64 and integers included), whole or a row range.
    public func readFloats(rows: Range<Int>? = nil) throws -> [Float] {
        let tensor = try readTensor(rows: rows)
        guard let values = tensor.floatValues() else {
            throw check.error("cannot read \(objectDescription) as float values")
        }
        return values
    }

    /// File and memory dataspaces selecting `rows` along axis 0 (nil spaces mean "all").
    private func selection(rows: Range<Int>?, what: String) throws -> ([Int], HDF5Handle?, HDF5Handle?) {
        guard let rows, !shape.isEmpty else { return (shape, nil, nil) }
        guard rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
            throw check.error("\(what): rows \(rows.lowerBound)..<\(rows.upperBound) outside 0..<\(shape[0])")
        }
        var outputShape = shape
        outputShape[0] = rows.count
        let fileSpace = try check.handle(H5Dget_space(handle.id), .dataspace, what)
        var start = [hsize_t](repeating: 0, count: shape.count)
        start[0] = hsize_t(rows.lowerBound)
        var count = outputShape.map { hsize_t($0) }
        if rows.isEmpty { return (outputShape, nil, nil) }
        try check.check(H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, &start, nil, &count, nil), what)
        let memorySpace = try check.handle(H5Screate_simple(Int32(count.count), &count, nil), .dataspace, what)
        return (outputShape, fileSpace, memorySpace)
    }
}
