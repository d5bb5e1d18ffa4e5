"""Writes ONNX models and tensors as JSON the runtime tests read without an ONNX reader.

A model: {"opsets": {domain: version}, "inputs"/"outputs": [value info], "initializers": [tensor],
"nodes": [{"name", "op", "domain", "inputs", "outputs", "attributes": [{"name", "type", "value"}]}]}.
A tensor: {"name", "dtype" (TensorProto wire value), "shape", "data" (base64 little-endian raw bytes)}.
"""
import base64
import math

import numpy as np
from onnx import AttributeProto, TensorProto, helper, numpy_helper


def tensor_json(array, name=""):
    array = np.asarray(array)
    if array.dtype.kind in ("U", "S", "O"):
        return {"name": name, "dtype": TensorProto.STRING, "shape": list(array.shape),
                "strings": [str(value) for value in array.reshape(-1)]}
    dtype = helper.np_dtype_to_tensor_dtype(array.dtype)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"name": name, "dtype": int(dtype), "shape": list(array.shape),
            "data": base64.b64encode(data).decode("ascii")}


def proto_tensor_json(proto):
    try:
        array = numpy_helper.to_array(proto)
    except Exception as error:  # float8/int4 etc.: keep the raw type, the runtime will refuse it
        return {"name": proto.name, "dtype": proto.data_type, "shape": list(proto.dims), "unreadable": str(error)}
    if proto.data_type in (TensorProto.INT4, TensorProto.UINT4):
        # ONNX raw layout: two per byte, first element in the low nibble.
        nibbles = np.asarray(array).astype(np.int8).reshape(-1).view(np.uint8) & 0x0F
        if nibbles.size % 2:
            nibbles = np.concatenate([nibbles, np.zeros(1, np.uint8)])
        packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)
        return {"name": proto.name, "dtype": proto.data_type, "shape": list(proto.dims),
                "data": base64.b64encode(packed.tobytes()).decode("ascii")}
    if proto.data_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        data = array.view(np.uint16) if array.dtype != np.uint16 else array
        return {"name": proto.name, "dtype": proto.data_type, "shape": list(proto.dims),
                "data": base64.b64encode(np.ascontiguousarray(data).tobytes()).decode("ascii")}
    result = tensor_json(array, proto.name)
    result["dtype"] = proto.data_type
    return result


def float_json(value):
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def attribute_json(attribute):
    kind = attribute.type
    result = {"name": attribute.name}
    if kind == AttributeProto.FLOAT:
        result.update(type="float", value=float_json(attribute.f))
    elif kind == AttributeProto.INT:
        result.update(type="int", value=attribute.i)
    elif kind == AttributeProto.STRING:
        result.update(type="string", value=attribute.s.decode("utf-8", "replace"))
    elif kind == AttributeProto.FLOATS:
        result.update(type="floats", value=[float_json(v) for v in attribute.floats])
    elif kind == AttributeProto.INTS:
        result.update(type="ints", value=list(attribute.ints))
    elif kind == AttributeProto.STRINGS:
        result.update(type="strings", value=[s.decode("utf-8", "replace") for s in attribute.strings])
    elif kind == AttributeProto.TENSOR:
        result.update(type="tensor", value=proto_tensor_json(attribute.t))
    else:
        result.update(type="unsupported", value=AttributeProto.AttributeType.Name(kind))
    return result


def value_info_json(info):
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": info.name, "kind": kind or "none"}
    tensor = info.type.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = []
        for dimension in tensor.shape.dim:
            if dimension.HasField("dim_value"):
                shape.append(dimension.dim_value)
            elif dimension.HasField("dim_param"):
                shape.append(dimension.dim_param)
            else:
                shape.append(None)
    return {"name": info.name, "kind": "tensor", "dtype": tensor.elem_type, "shape": shape}


def model_json(model, weights=None):
    """`weights`, a binary file opened for writing, receives initializer bytes (then referenced by
    offset and length) so large models stay out of the JSON."""
    graph = model.graph

    def initializer_json(proto):
        entry = proto_tensor_json(proto)
        if weights is not None and "data" in entry:
            raw = base64.b64decode(entry.pop("data"))
            entry["offset"] = weights.tell()
            entry["length"] = len(raw)
            weights.write(raw)
        return entry

    return {
        "opsets": {entry.domain: entry.version for entry in model.opset_import},
        "inputs": [value_info_json(v) for v in graph.input],
        "outputs": [value_info_json(v) for v in graph.output],
        "initializers": [initializer_json(t) for t in graph.initializer],
        "nodes": [{
            "name": node.name, "op": node.op_type, "domain": node.domain,
            "inputs": list(node.input), "outputs": list(node.output),
            "attributes": [attribute_json(a) for a in node.attribute],
        } for node in graph.node],
        "functions": len(model.functions),
    }
