/// Where a serialized ModelProto keeps the bytes we do not hand to protobuf-c: protobuf-c's unpack
/// copies every bytes field, so the big `raw_data` of graph initializers is located here and viewed
/// in place, and only the small rest (the skeleton) is unpacked.
/// - Complexity: O(number of top-level and graph fields); tensor payloads are skipped, not read.
struct ModelLayout {
    /// The model with graph initializers, training_info (20) and configuration (26) removed.
    var skeleton: [UInt8]
    /// Each top-level graph initializer's TensorProto payload, in file order.
    var initializers: [Range<Int>]
    var trainingInfo: [Range<Int>]
    var configuration: [Range<Int>]

    enum ModelField {
        static let irVersion = 1, modelVersion = 5, graph = 7, trainingInfo = 20, configuration = 26
        static let varintFields: Set<Int> = [irVersion, modelVersion]
        static let lengthFields: Set<Int> = [2, 3, 4, 6, 7, 8, 14, 20, 25, 26]
    }
    static let graphInitializerField = 5

    static func scan(_ bytes: UnsafeRawBufferPointer) throws(WireReader.Malformed) -> ModelLayout {
        var layout = ModelLayout(skeleton: [], initializers: [], trainingInfo: [], configuration: [])
        var graphSkeleton: [UInt8] = []
        var sawGraph = false
        var reader = WireReader(bytes)
        var top = WireWriter()
        while let field = try reader.next() {
            try checkModelField(field)
            switch field.number {
            case ModelField.graph:
                sawGraph = true
                // Repeated occurrences of a message field merge, so concatenating their fields is equivalent.
                var graphReader = WireReader(bytes, range: field.payload)
                while let graphField = try graphReader.next() {
                    if graphField.number == graphInitializerField && graphField.wireType == .lengthDelimited {
                        layout.initializers.append(graphField.payload)
                    } else {
                        graphSkeleton.append(contentsOf: bytes[graphField.span])
                    }
                }
            case ModelField.trainingInfo: layout.trainingInfo.append(field.payload)
            case ModelField.configuration: layout.configuration.append(field.payload)
            default: top.bytes.append(contentsOf: bytes[field.span])
            }
        }
        guard sawGraph else { throw WireReader.Malformed(reason: "no graph (ModelProto field 7)") }
        top.appendLengthHeader(field: ModelField.graph, length: graphSkeleton.count)
        top.bytes.append(contentsOf: graphSkeleton)
        layout.skeleton = top.bytes
        let nestingProblem: WireReader.Malformed? = layout.skeleton.withUnsafeBytes { skeleton in
            do throws(WireReader.Malformed) {
                try checkNesting(skeleton, range: 0..<skeleton.count, depth: 0)
                return nil
            } catch { return error }
        }
        if let nestingProblem { throw nestingProblem }
        return layout
    }

    /// Messages may nest at most this deep (a model with 30 levels of If-in-Loop bodies uses ~100).
    static let maximumNesting = 160

    /// protobuf-c unpacks recursively with no depth limit, so a hostile file of nested TypeProtos
    /// overflows the stack. Refuse it first: descend into every length-delimited payload that
    /// itself parses as fields (strings almost never do) and count the levels.
    /// - Complexity: O(bytes × depth reached).
    static func checkNesting(_ bytes: UnsafeRawBufferPointer, range: Range<Int>, depth: Int) throws(WireReader.Malformed) {
        guard depth <= maximumNesting else {
            throw WireReader.Malformed(reason: "messages nest deeper than \(maximumNesting) levels")
        }
        var reader = WireReader(bytes, range: range)
        var children: [Range<Int>] = []
        do {
            while let field = try reader.next() {
                if field.wireType == .lengthDelimited && field.payload.count >= 2 { children.append(field.payload) }
            }
        } catch { return }  // not a message: a string or packed numbers
        for child in children { try checkNesting(bytes, range: child, depth: depth + 1) }
    }

    /// A top-level field must be a ModelProto field with the wire type the schema gives it.
    static func checkModelField(_ field: WireField) throws(WireReader.Malformed) {
        guard field.number <= 26 else {
            throw WireReader.Malformed(reason: "field \(field.number) is not a ModelProto field")
        }
        if ModelField.varintFields.contains(field.number) && field.wireType != .varint
            || ModelField.lengthFields.contains(field.number) && field.wireType != .lengthDelimited
        {
            throw WireReader.Malformed(reason: "ModelProto field \(field.number) has the wrong wire type")
        }
    }

    /// Cheap content check for sniffing: leading fields look like ModelProto and a graph exists.
    /// Skips over payloads, so it costs microseconds even on a multi-gigabyte file.
    static func looksLikeModel(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var reader = WireReader(bytes)
        var sawGraph = false
        var sawVersion = false
        do {
            while let field = try reader.next() {
                try checkModelField(field)
                if field.number == ModelField.graph { sawGraph = true }
                if field.number == ModelField.irVersion { sawVersion = true }
            }
        } catch { return false }
        return sawGraph && sawVersion
    }
}

/// A TensorProto split into its small fields (to unpack) and the location of its `raw_data` (to view).
struct TensorLayout {
    var skeleton: [UInt8]
    var rawData: Range<Int>?
    static let rawDataField = 9

    static func scan(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(WireReader.Malformed) -> TensorLayout {
        var layout = TensorLayout(skeleton: [], rawData: nil)
        var reader = WireReader(bytes, range: range)
        while let field = try reader.next() {
            if field.number == rawDataField && field.wireType == .lengthDelimited {
                layout.rawData = field.payload  // the last occurrence wins, as for any singular field
            } else {
                layout.skeleton.append(contentsOf: bytes[field.span])
            }
        }
        return layout
    }
}
