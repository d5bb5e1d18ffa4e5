import CProtobufC
import NNPipeCore
import ONNXProto

/// Builds protobuf-c message structs from the IR inside a `CArena`; the inverse of `ProtoDecoder`.
struct ProtoEncoder {
    let arena: CArena

    func entries(_ values: [MetadataEntry]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?) {
        let messages = values.map { entry in
            arena.message { (pointer: UnsafeMutablePointer<Onnx__StringStringEntryProto>) in
                onnx__string_string_entry_proto__init(pointer)
                pointer.pointee.key = arena.string(entry.key)
                pointer.pointee.value = arena.string(entry.value)
            }
        }
        return (messages.count, arena.pointers(messages))
    }

    /// A TensorProto; `includeRawData` false leaves numeric bytes out (the writer streams them itself),
    /// `external` replaces them with external-data entries.
    func tensor(_ tensor: Tensor, includeRawData: Bool = true, external: [MetadataEntry]? = nil) -> UnsafeMutablePointer<Onnx__TensorProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__TensorProto>) in
            onnx__tensor_proto__init(pointer)
            pointer.pointee.n_dims = tensor.shape.count
            pointer.pointee.dims = arena.copy(tensor.shape.map(Int64.init))
            pointer.pointee.has_data_type = 1
            pointer.pointee.data_type = tensor.dataType.rawValue
            pointer.pointee.name = arena.optionalString(tensor.name)
            pointer.pointee.doc_string = arena.optionalString(tensor.docString)
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(tensor.metadata)
            switch tensor.storage {
            case .strings(let values):
                pointer.pointee.n_string_data = values.count
                pointer.pointee.string_data = arena.copy(values.map { arena.binary($0) })
            case .bytes(let buffer):
                if let external {
                    (pointer.pointee.n_external_data, pointer.pointee.external_data) = entries(external)
                    pointer.pointee.has_data_location = 1
                    pointer.pointee.data_location = 1
                } else if includeRawData {
                    pointer.pointee.has_raw_data = 1
                    pointer.pointee.raw_data = arena.binary(referencing: buffer.bytes)
                }
            }
        }
    }

    func sparseTensor(_ sparse: SparseTensor) -> UnsafeMutablePointer<Onnx__SparseTensorProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__SparseTensorProto>) in
            onnx__sparse_tensor_proto__init(pointer)
            pointer.pointee.values = tensor(sparse.values)
            pointer.pointee.indices = tensor(sparse.indices)
            pointer.pointee.n_dims = sparse.shape.count
            pointer.pointee.dims = arena.copy(sparse.shape.map(Int64.init))
        }
    }

    /// A GraphProto; `includeInitializers` false leaves them for the streaming writer.
    func graph(_ graph: Graph, includeInitializers: Bool = true) -> UnsafeMutablePointer<Onnx__GraphProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__GraphProto>) in
            onnx__graph_proto__init(pointer)
            pointer.pointee.name = arena.optionalString(graph.name)
            pointer.pointee.doc_string = arena.optionalString(graph.docString)
            pointer.pointee.n_node = graph.nodes.count
            pointer.pointee.node = arena.pointers(graph.nodes.map(node))
            pointer.pointee.n_input = graph.inputs.count
            pointer.pointee.input = arena.pointers(graph.inputs.map(valueInfo))
            pointer.pointee.n_output = graph.outputs.count
            pointer.pointee.output = arena.pointers(graph.outputs.map(valueInfo))
            pointer.pointee.n_value_info = graph.valueInfo.count
            pointer.pointee.value_info = arena.pointers(graph.valueInfo.map(valueInfo))
            if includeInitializers {
                pointer.pointee.n_initializer = graph.initializers.count
                pointer.pointee.initializer = arena.pointers(graph.initializers.map { tensor($0) })
            }
            pointer.pointee.n_sparse_initializer = graph.sparseInitializers.count
            pointer.pointee.sparse_initializer = arena.pointers(graph.sparseInitializers.map(sparseTensor))
            pointer.pointee.n_quantization_annotation = graph.quantizationAnnotations.count
            pointer.pointee.quantization_annotation = arena.pointers(graph.quantizationAnnotations.map { annotation in
                arena.message { (annotationPointer: UnsafeMutablePointer<Onnx__TensorAnnotation>) in
                    onnx__tensor_annotation__init(annotationPointer)
                    annotationPointer.pointee.tensor_name = arena.optionalString(annotation.tensorName)
                    (annotationPointer.pointee.n_quant_parameter_tensor_names,
                     annotationPointer.pointee.quant_parameter_tensor_names) = entries(annotation.quantizationParameterTensorNames)
                }
            })
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(graph.metadata)
        }
    }

    func node(_ node: Node) -> UnsafeMutablePointer<Onnx__NodeProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__NodeProto>) in
            onnx__node_proto__init(pointer)
            pointer.pointee.n_input = node.inputs.count
            pointer.pointee.input = arena.strings(node.inputs)
            pointer.pointee.n_output = node.outputs.count
            pointer.pointee.output = arena.strings(node.outputs)
            pointer.pointee.name = arena.optionalString(node.name)
            pointer.pointee.op_type = arena.string(node.opType)
            pointer.pointee.domain = arena.optionalString(node.domain)
            pointer.pointee.overload = arena.optionalString(node.overload)
            pointer.pointee.n_attribute = node.attributes.count
            pointer.pointee.attribute = arena.pointers(node.attributes.map(attribute))
            pointer.pointee.doc_string = arena.optionalString(node.docString)
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(node.metadata)
        }
    }

    func attribute(_ attribute: Attribute) -> UnsafeMutablePointer<Onnx__AttributeProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__AttributeProto>) in
            onnx__attribute_proto__init(pointer)
            pointer.pointee.name = arena.string(attribute.name)
            pointer.pointee.doc_string = arena.optionalString(attribute.docString)
            pointer.pointee.has_type = 1
            pointer.pointee.type = Onnx__AttributeProto__AttributeType(rawValue: numericCast(attribute.kind.rawValue))
            switch attribute.value {
            case .float(let value):
                pointer.pointee.has_f = 1
                pointer.pointee.f = value
            case .int(let value):
                pointer.pointee.has_i = 1
                pointer.pointee.i = value
            case .string(let value):
                pointer.pointee.has_s = 1
                pointer.pointee.s = arena.binary(value)
            case .tensor(let value): pointer.pointee.t = tensor(value)
            case .graph(let value): pointer.pointee.g = graph(value)
            case .sparseTensor(let value): pointer.pointee.sparse_tensor = sparseTensor(value)
            case .type(let value): pointer.pointee.tp = valueType(value, denotation: "")
            case .floats(let values):
                pointer.pointee.n_floats = values.count
                pointer.pointee.floats = arena.copy(values)
            case .ints(let values):
                pointer.pointee.n_ints = values.count
                pointer.pointee.ints = arena.copy(values)
            case .strings(let values):
                pointer.pointee.n_strings = values.count
                pointer.pointee.strings = arena.copy(values.map { arena.binary($0) })
            case .tensors(let values):
                pointer.pointee.n_tensors = values.count
                pointer.pointee.tensors = arena.pointers(values.map { tensor($0) })
            case .graphs(let values):
                pointer.pointee.n_graphs = values.count
                pointer.pointee.graphs = arena.pointers(values.map { graph($0) })
            case .sparseTensors(let values):
                pointer.pointee.n_sparse_tensors = values.count
                pointer.pointee.sparse_tensors = arena.pointers(values.map(sparseTensor))
            case .types(let values):
                pointer.pointee.n_type_protos = values.count
                pointer.pointee.type_protos = arena.pointers(values.map { valueType($0, denotation: "") })
            case .reference(let name, _):
                pointer.pointee.ref_attr_name = arena.string(name)
            }
        }
    }

    func valueInfo(_ info: ValueInfo) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__ValueInfoProto>) in
            onnx__value_info_proto__init(pointer)
            pointer.pointee.name = arena.string(info.name)
            if info.type != .unspecified || !info.denotation.isEmpty {
                pointer.pointee.type = valueType(info.type, denotation: info.denotation)
            }
            pointer.pointee.doc_string = arena.optionalString(info.docString)
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(info.metadata)
        }
    }

    func valueType(_ type: ValueType, denotation: String) -> UnsafeMutablePointer<Onnx__TypeProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__TypeProto>) in
            onnx__type_proto__init(pointer)
            pointer.pointee.denotation = arena.optionalString(denotation)
            switch type {
            case .tensor(let elementType, let shape):
                pointer.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
                pointer.pointee.tensor_type = arena.message { (tensor: UnsafeMutablePointer<Onnx__TypeProto__Tensor>) in
                    onnx__type_proto__tensor__init(tensor)
                    tensor.pointee.has_elem_type = 1
                    tensor.pointee.elem_type = elementType.rawValue
                    tensor.pointee.shape = shape.map(self.shape)
                }
            case .sparseTensor(let elementType, let shape):
                pointer.pointee.value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE
                pointer.pointee.sparse_tensor_type = arena.message { (tensor: UnsafeMutablePointer<Onnx__TypeProto__SparseTensor>) in
                    onnx__type_proto__sparse_tensor__init(tensor)
                    tensor.pointee.has_elem_type = 1
                    tensor.pointee.elem_type = elementType.rawValue
                    tensor.pointee.shape = shape.map(self.shape)
                }
            case .sequence(let element):
                pointer.pointee.value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE
                pointer.pointee.sequence_type = arena.message { (sequence: UnsafeMutablePointer<Onnx__TypeProto__Sequence>) in
                    onnx__type_proto__sequence__init(sequence)
                    sequence.pointee.elem_type = nestedType(element)
                }
            case .optional(let element):
                pointer.pointee.value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE
                pointer.pointee.optional_type = arena.message { (optional: UnsafeMutablePointer<Onnx__TypeProto__Optional>) in
                    onnx__type_proto__optional__init(optional)
                    optional.pointee.elem_type = nestedType(element)
                }
            case .map(let key, let value):
                pointer.pointee.value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE
                pointer.pointee.map_type = arena.message { (map: UnsafeMutablePointer<Onnx__TypeProto__Map>) in
                    onnx__type_proto__map__init(map)
                    map.pointee.has_key_type = 1
                    map.pointee.key_type = key.rawValue
                    map.pointee.value_type = nestedType(value)
                }
            case .unspecified:
                break
            }
        }
    }

    private func nestedType(_ type: ValueType) -> UnsafeMutablePointer<Onnx__TypeProto> {
        valueType(type, denotation: "")
    }

    private func shape(_ dimensions: [Dimension]) -> UnsafeMutablePointer<Onnx__TensorShapeProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__TensorShapeProto>) in
            onnx__tensor_shape_proto__init(pointer)
            pointer.pointee.n_dim = dimensions.count
            pointer.pointee.dim = arena.pointers(dimensions.map { dimension in
                arena.message { (dim: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>) in
                    onnx__tensor_shape_proto__dimension__init(dim)
                    switch dimension {
                    case .fixed(let value):
                        dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                        dim.pointee.dim_value = Int64(value)
                    case .symbolic(let name):
                        dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                        dim.pointee.dim_param = arena.string(name)
                    case .unknown:
                        break
                    }
                }
            })
        }
    }

    func opsetImports(_ opsets: [OperatorSetID]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__OperatorSetIdProto>?>?) {
        let messages = opsets.map { opset in
            arena.message { (pointer: UnsafeMutablePointer<Onnx__OperatorSetIdProto>) in
                onnx__operator_set_id_proto__init(pointer)
                // The default domain is written as "" explicitly: onnx's checker expects the field present.
                pointer.pointee.domain = arena.string(opset.domain)
                pointer.pointee.has_version = 1
                pointer.pointee.version = opset.version
            }
        }
        return (messages.count, arena.pointers(messages))
    }

    func function(_ function: Function) -> UnsafeMutablePointer<Onnx__FunctionProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__FunctionProto>) in
            onnx__function_proto__init(pointer)
            pointer.pointee.name = arena.optionalString(function.name)
            pointer.pointee.domain = arena.optionalString(function.domain)
            pointer.pointee.overload = arena.optionalString(function.overload)
            pointer.pointee.n_input = function.inputs.count
            pointer.pointee.input = arena.strings(function.inputs)
            pointer.pointee.n_output = function.outputs.count
            pointer.pointee.output = arena.strings(function.outputs)
            pointer.pointee.n_attribute = function.attributeNames.count
            pointer.pointee.attribute = arena.strings(function.attributeNames)
            pointer.pointee.n_attribute_proto = function.attributeDefaults.count
            pointer.pointee.attribute_proto = arena.pointers(function.attributeDefaults.map(attribute))
            pointer.pointee.n_node = function.nodes.count
            pointer.pointee.node = arena.pointers(function.nodes.map(node))
            (pointer.pointee.n_opset_import, pointer.pointee.opset_import) = opsetImports(function.opsetImports)
            pointer.pointee.n_value_info = function.valueInfo.count
            pointer.pointee.value_info = arena.pointers(function.valueInfo.map(valueInfo))
            pointer.pointee.doc_string = arena.optionalString(function.docString)
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(function.metadata)
        }
    }

    /// The ModelProto without its graph, training_info and configuration (the writer streams those).
    func modelWithoutGraph(_ model: Model) -> UnsafeMutablePointer<Onnx__ModelProto> {
        arena.message { (pointer: UnsafeMutablePointer<Onnx__ModelProto>) in
            onnx__model_proto__init(pointer)
            pointer.pointee.has_ir_version = 1
            pointer.pointee.ir_version = model.irVersion
            (pointer.pointee.n_opset_import, pointer.pointee.opset_import) = opsetImports(model.opsetImports)
            pointer.pointee.producer_name = arena.optionalString(model.producerName)
            pointer.pointee.producer_version = arena.optionalString(model.producerVersion)
            pointer.pointee.domain = arena.optionalString(model.domain)
            if model.modelVersion != 0 {
                pointer.pointee.has_model_version = 1
                pointer.pointee.model_version = model.modelVersion
            }
            pointer.pointee.doc_string = arena.optionalString(model.docString)
            (pointer.pointee.n_metadata_props, pointer.pointee.metadata_props) = entries(model.metadata)
            pointer.pointee.n_functions = model.functions.count
            pointer.pointee.functions = arena.pointers(model.functions.map(function))
        }
    }
}
