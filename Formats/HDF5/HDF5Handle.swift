import CHDF5

/// One libhdf5 identifier and the one object that closes it (house rule 5).
///
/// Every `hid_t` the wrapper opens is wrapped here the moment it is returned, so it is
/// closed exactly once: in `deinit`, with the close call that matches its kind.
final class HDF5Handle {
    enum Kind {
        case file, group, dataset, attribute, dataspace, datatype, propertyList, object
    }

    let id: hid_t
    let kind: Kind

    init(_ id: hid_t, kind: Kind) {
        self.id = id
        self.kind = kind
    }

    deinit {
        // A failed close has nobody left to report to; the error stack is cleared by the next check.
        switch kind {
        case .file: _ = H5Fclose(id)
        case .group: _ = H5Gclose(id)
        case .dataset: _ = H5Dclose(id)
        case .attribute: _ = H5Aclose(id)
        case .dataspace: _ = H5Sclose(id)
        case .datatype: _ = H5Tclose(id)
        case .propertyList: _ = H5Pclose(id)
        case .object: _ = H5Oclose(id)
        }
    }
}
