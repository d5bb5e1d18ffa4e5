import CHDF5
import NNPipeCore

/// How IR element types map onto HDF5 types: little-endian standard types in files,
/// native types in memory, and float16 as h5py writes it (an IEEE half built from a float type).
enum HDF5ElementType {
    /// The IR type of an HDF5 datatype, or nil when the wrapper does not read it.
    static func dataType(of type: hid_t) -> DataType? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            switch size {
            case 2: return .float16
            case 4: return .float
            case 8: return .double
            default: return nil
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch size {
            case 1: return signed ? .int8 : .uint8
            case 2: return signed ? .int16 : .uint16
            case 4: return signed ? .int32 : .uint32
            case 8: return signed ? .int64 : .uint64
            default: return nil
            }
        case H5T_ENUM:
            // h5py stores numpy bool as an int8 enum {FALSE, TRUE}.
            return size == 1 ? .bool : nil
        default:
            return nil
        }
    }

    /// The in-memory type to read or write `dataType` with; float16 and bool get a type the caller must close.
    static func memoryType(for dataType: DataType, check: HDF5Check) throws -> (id: hid_t, owner: HDF5Handle?) {
        switch dataType {
        case .float: return (nnpipe_h5t_native_float(), nil)
        case .double: return (nnpipe_h5t_native_double(), nil)
        case .int8: return (nnpipe_h5t_native_int8(), nil)
        case .uint8, .bool: return (nnpipe_h5t_native_uint8(), nil)
        case .int16: return (nnpipe_h5t_native_int16(), nil)
        case .uint16: return (nnpipe_h5t_native_uint16(), nil)
        case .int32: return (nnpipe_h5t_native_int32(), nil)
        case .uint32: return (nnpipe_h5t_native_uint32(), nil)
        case .int64: return (nnpipe_h5t_native_int64(), nil)
        case .uint64: return (nnpipe_h5t_native_uint64(), nil)
        case .float16:
            let half = try halfType(check: check)
            return (half.id, half)
        default:
            throw check.error("HDF5 cannot hold \(dataType) tensors")
        }
    }

    /// The type a dataset of `dataType` is stored as in the file.
    static func fileType(for dataType: DataType, check: HDF5Check) throws -> (id: hid_t, owner: HDF5Handle?) {
        switch dataType {
        case .float: return (nnpipe_h5t_ieee_f32le(), nil)
        case .double: return (nnpipe_h5t_ieee_f64le(), nil)
        case .int8: return (nnpipe_h5t_std_i8le(), nil)
        case .uint8, .bool: return (nnpipe_h5t_std_u8le(), nil)
        case .int16: return (nnpipe_h5t_std_i16le(), nil)
        case .uint16: return (nnpipe_h5t_std_u16le(), nil)
        case .int32: return (nnpipe_h5t_std_i32le(), nil)
        case .uint32: return (nnpipe_h5t_std_u32le(), nil)
        case .int64: return (nnpipe_h5t_std_i64le(), nil)
        case .uint64: return (nnpipe_h5t_std_u64le(), nil)
        case .float16:
            let half = try halfType(check: check)
            return (half.id, half)
        default:
            throw check.error("HDF5 cannot hold \(dataType) tensors")
        }
    }

    /// IEEE binary16, little-endian, exactly as h5py defines numpy's float16.
    static func halfType(check: HDF5Check) throws -> HDF5Handle {
        let type = try check.handle(H5Tcopy(nnpipe_h5t_ieee_f32le()), .datatype, "cannot create a float16 type")
        try check.check(H5Tset_fields(type.id, 15, 10, 5, 0, 10), "cannot create a float16 type")
        try check.check(H5Tset_size(type.id, 2), "cannot create a float16 type")
        try check.check(H5Tset_ebias(type.id, 15), "cannot create a float16 type")
        return type
    }
}
