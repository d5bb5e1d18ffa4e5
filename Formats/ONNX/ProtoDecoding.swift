import CProtobufC
import NNPipeCore
import ONNXProto

/// Converts unpacked ModelProto parts (graphs, nodes, attributes, types, functions) into the IR.
struct ProtoDecoder {
    let tensors: TensorDecoder
    /// Nesting limit for subgraphs and types, so hostile input cannot exhaust the stack here.
    static let maximumDepth = 64

    var path: String { tensors.path }

    func failure(_ problem: String) -> NNPipeError {
        NNPipeError(.invalidModel, problem, path: path)
    }

    func graph(_ proto: Onnx__GraphProto, initializers topLevel: [Tensor]? = nil, depth: Int = 0) throws -> Graph {
        guard depth < Self.maximumDepth else { throw failure("subgraphs nest deeper than \(Self.maximumDepth) levels") }
        var graph = Graph(name: cString(proto.name), docString: cString(proto.doc_string),
                          metadata: entries(proto.metadata_props, proto.n_metadata_props))
        graph.nodes = try (0..<proto.n_node).map { try node(proto.node[$0]!.pointee, depth: depth) }
        graph.inputs = try (0..<proto.n_input).map { try valueInfo(proto.input[$0]!.pointee) }
        graph.outputs = try (0..<proto.n_output).map { try valueInfo(proto.output[$0]!.pointee) }
        graph.valueInfo = try (0..<proto.n_value_info).map { try valueInfo(proto.value_info[$0]!.pointee) }
        graph.initializers = try topLevel ?? (0..<proto.n_initializer).map { try tensors.tensor(proto.initializer[$0]!.pointee) }
        graph.sparseInitializers = try (0..<proto.n_sparse_initializer).map {
            try sparseTensor(proto.sparse_initializer[$0]!.pointee)
        }
        graph.quantizationAnnotations = (0..<proto.n_quantization_annotation).map {
            let annotation = proto.quantization_annotation[$0]!.pointee
            return TensorAnnotation(
                tensorName: cString(annotation.tensor_name),
                quantizationParameterTensorNames: entries(annotation.quant_parameter_tensor_names, annotation.n_quant_parameter_tensor_names))
        }
        return graph
    }

    func node(_ proto: Onnx__NodeProto, depth: Int) throws -> Node {
        var node = Node(
            name: cString(proto.name), opType: cString(proto.op_type), domain: Self.normalizedDomain(cString(proto.domain)),
            overload: cString(proto.overload),
            inputs: (0..<proto.n_input).map { cString(proto.input[$0]) },
            outputs: (0..<proto.n_output).map { cString(proto.output[$0]) },
            docString: cString(proto.doc_string), metadata: entries(proto.metadata_props, proto.n_metadata_props))
        node.attributes = try (0..<proto.n_attribute).map { try attribute(proto.attribute[$0]!.pointee, node: node, depth: depth) }
        return node
    }

    /// "ai.onnx" is another spelling of the default domain "".
    static func normalizedDomain(_ domain: String) -> String {
        domain == "ai.onnx" ? "" : domain
    }

    func attribute(_ proto: Onnx__AttributeProto, node: Node, depth: Int) throws -> Attribute {
        let name = cString(proto.name)
        let kind = try attributeKind(proto, name: name, node: node)
        let value: Attribute.Value
        if let reference = proto.ref_attr_name, reference.pointee != 0 {
            value = .reference(name: String(cString: reference), kind: kind)
        } else {
            value = try attributeValue(proto, kind: kind, name: name, node: node, depth: depth)
        }
        return Attribute(name: name, value: value, docString: cString(proto.doc_string))
    }

    /// The declared type, or for files from before `type` was required, the field that is set.
    private func attributeKind(_ proto: Onnx__AttributeProto, name: String, node: Node) throws -> Attribute.Kind {
        if proto.has_type != 0 {
            guard let kind = Attribute.Kind(rawValue: Int32(proto.type.rawValue)), kind != .undefined else {
                throw failure("node \(node.displayName): attribute '\(name)' has unknown type \(proto.type.rawValue)")
            }
            return kind
        }
        if proto.has_f != 0 { return .float }
        if proto.has_i != 0 { return .int }
        if proto.has_s != 0 { return .string }
        if proto.t != nil { return .tensor }
        if proto.g != nil { return .graph }
        if proto.sparse_tensor != nil { return .sparseTensor }
        if proto.tp != nil { return .type }
        if proto.n_floats > 0 { return .floats }
        if proto.n_ints > 0 { return .ints }
        if proto.n_strings > 0 { return .strings }
        if proto.n_tensors > 0 { return .tensors }
        if proto.n_graphs > 0 { return .graphs }
        if proto.n_sparse_tensors > 0 { return .sparseTensors }
        if proto.n_type_protos > 0 { return .types }
        throw failure("node \(node.displayName): attribute '\(name)' has no type and no value")
    }

    private func attributeValue(
        _ proto: Onnx__AttributeProto, kind: Attribute.Kind, name: String, node: Node, depth: Int
    ) throws -> Attribute.Value {
        func missing() -> NNPipeError {
            failure("node \(node.displayName): attribute '\(name)' of type \(kind) has no value")
        }
        switch kind {
        case .float: return .float(proto.f)
        case .int: return .int(proto.i)
        case .string: return .string(bytes(proto.s))
        case .tensor:
            guard let tensor = proto.t else { throw missing() }
            return .tensor(try tensors.tensor(tensor.pointee))
        case .graph:
            guard let subgraph = proto.g else { throw missing() }
            return .graph(try graph(subgraph.pointee, depth: depth + 1))
        case .sparseTensor:
            guard let sparse = proto.sparse_tensor else { throw missing() }
            return .sparseTensor(try sparseTensor(sparse.pointee))
        case .type:
            guard let type = proto.tp else { throw missing() }
            return .type(try valueType(type.pointee, depth: 0))
        case .floats: return .floats(array(proto.floats, proto.n_floats))
        case .ints: return .ints(array(proto.ints, proto.n_ints))
        case .strings: return .strings((0..<proto.n_strings).map { bytes(proto.strings[$0]) })
        case .tensors: return .tensors(try (0..<proto.n_tensors).map { try tensors.tensor(proto.tensors[$0]!.pointee) })
        case .graphs: return .graphs(try (0..<proto.n_graphs).map { try graph(proto.graphs[$0]!.pointee, depth: depth + 1) })
        case .sparseTensors:
            return .sparseTensors(try (0..<proto.n_sparse_tensors).map { try sparseTensor(proto.sparse_tensors[$0]!.pointee) })
        case .types: return .types(try (0..<proto.n_type_protos).map { try valueType(proto.type_protos[$0]!.pointee, depth: 0) })
        case .undefined: throw missing()
        }
    }

    func sparseTensor(_ proto: Onnx__SparseTensorProto) throws -> SparseTensor {
        guard let values = proto.values, let indices = proto.indices else {
            throw failure("a sparse tensor lacks its values or indices")
        }
        let shape = try array(proto.dims, proto.n_dims).map { dimension in
            guard dimension >= 0 else { throw failure("sparse tensor has negative dimension \(dimension)") }
            return Int(dimension)
        }
        return SparseTensor(values: try tensors.tensor(values.pointee), indices: try tensors.tensor(indices.pointee), shape: shape)
    }

    func valueInfo(_ proto: Onnx__ValueInfoProto) throws -> ValueInfo {
        let type = try proto.type.map { try valueType($0.pointee, depth: 0) } ?? .unspecified
        return ValueInfo(
            name: cString(proto.name), type: type, denotation: cString(proto.type?.pointee.denotation),
            docString: cString(proto.doc_string), metadata: entries(proto.metadata_props, proto.n_metadata_props))
    }

    private func elementType(_ raw: Int32) throws -> DataType {
        guard let type = DataType(rawValue: raw) else { throw failure("a value type has unknown element type \(raw)") }
        return type
    }

    func valueType(_ proto: Onnx__TypeProto, depth: Int) throws -> ValueType {
        guard depth < Self.maximumDepth else { throw failure("value types nest deeper than \(Self.maximumDepth) levels") }
        func nested(_ type: UnsafeMutablePointer<Onnx__TypeProto>?) throws -> ValueType {
            try type.map { try valueType($0.pointee, depth: depth + 1) } ?? .unspecified
        }
        switch proto.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            let tensor = proto.tensor_type.pointee
            return .tensor(elementType: try elementType(tensor.elem_type), shape: shape(tensor.shape))
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
            let tensor = proto.sparse_tensor_type.pointee
            return .sparseTensor(elementType: try elementType(tensor.elem_type), shape: shape(tensor.shape))
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
            return .sequence(try nested(proto.sequence_type.pointee.elem_type))
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
            return .optional(try nested(proto.optional_type.pointee.elem_type))
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
            let map = proto.map_type.pointee
            return .map(key: try elementType(map.key_type), value: try nested(map.value_type))
        default:
            return .unspecified
        }
    }

    private func shape(_ proto: UnsafeMutablePointer<Onnx__TensorShapeProto>?) -> [Dimension]? {
        guard let shape = proto?.pointee else { return nil }
        return (0..<shape.n_dim).map { index in
            let dimension = shape.dim[index]!.pointee
            switch dimension.value_case {
            // Some exporters write -1 for "unknown"; onnxruntime reads any negative size as unknown, and so do we.
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return dimension.dim_value < 0 ? .unknown : .fixed(Int(dimension.dim_value))
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .symbolic(cString(dimension.dim_param))
            default: return .unknown
            }
        }
    }

    func opsetImports(_ list: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__OperatorSetIdProto>?>?, _ count: Int) -> [OperatorSetID] {
        (0..<count).map { index in
            let opset = list![index]!.pointee
            return OperatorSetID(domain: cString(opset.domain), version: opset.version)
        }
    }

    func function(_ proto: Onnx__FunctionProto) throws -> Function {
        let placeholder = Node(name: "function \(cString(proto.name))", opType: "", inputs: [], outputs: [])
        return Function(
            name: cString(proto.name), domain: cString(proto.domain), overload: cString(proto.overload),
            inputs: (0..<proto.n_input).map { cString(proto.input[$0]) },
            outputs: (0..<proto.n_output).map { cString(proto.output[$0]) },
            attributeNames: (0..<proto.n_attribute).map { cString(proto.attribute[$0]) },
            attributeDefaults: try (0..<proto.n_attribute_proto).map {
                try attribute(proto.attribute_proto[$0]!.pointee, node: placeholder, depth: 0)
            },
            nodes: try (0..<proto.n_node).map { try node(proto.node[$0]!.pointee, depth: 0) },
            opsetImports: opsetImports(proto.opset_import, proto.n_opset_import),
            valueInfo: try (0..<proto.n_value_info).map { try valueInfo(proto.value_info[$0]!.pointee) },
            docString: cString(proto.doc_string), metadata: entries(proto.metadata_props, proto.n_metadata_props))
    }
}
