#!/usr/bin/env python3
"""Makes the small data-set fixtures under Tests/Fixtures/data (NNPipeDataTests read them).

Run from the repository root with the interop venv: `.venv/bin/python3 scripts/make_data_fixtures.py`.
Needs numpy, h5py and onnx. Output is deterministic; the files are committed so tests need no Python.
Values are small whole numbers so every dtype (uint8 .. float64) holds them exactly: the Swift
tests recompute them as `(sample * 7 + element) % 11` and compare exactly.
"""
import io
import os
import shutil
import zipfile

import h5py
import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "data")


def pattern(shape, dtype):
    """(sample * 7 + element) % 11, sample = index along axis 0, element = index within the sample."""
    samples = shape[0]
    per_sample = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    values = [(s * 7 + e) % 11 for s in range(samples) for e in range(per_sample)]
    return np.array(values).reshape(shape).astype(dtype)


def path(*parts):
    full = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)

    # One .npy per dtype, shape (6, 2, 3).
    for name, dtype in [("f2", "<f2"), ("f4", "<f4"), ("f8", "<f8"), ("i1", "|i1"), ("i2", "<i2"),
                        ("i4", "<i4"), ("i8", "<i8"), ("u1", "|u1"), ("u2", "<u2"), ("u4", "<u4"),
                        ("u8", "<u8"), ("b1", "|b1")]:
        data = pattern((6, 2, 3), np.dtype(dtype)) if name != "b1" else (pattern((6, 2, 3), "i8") % 2 == 1)
        np.save(path("npy", f"dtype_{name}.npy"), data)

    # Header versions 1.0, 2.0, 3.0 of the same array.
    for major in (1, 2, 3):
        with open(path("npy", f"version_{major}.npy"), "wb") as file:
            np.lib.format.write_array(file, pattern((5, 4), "<f4"), version=(major, 0))

    # Labels beside the data, and a scalar.
    np.save(path("npy", "labels.npy"), np.arange(6, dtype="<i8") % 3)
    np.save(path("npy", "scalar.npy"), np.array(3.5, dtype="<f4"))
    np.save(path("npy", "empty.npy"), np.zeros((0, 2, 3), dtype="<f4"))

    # Refused variants.
    np.save(path("npy", "fortran.npy"), np.asfortranarray(pattern((4, 3), "<f4")))
    np.save(path("npy", "big_endian.npy"), pattern((4, 3), ">f4"))
    np.save(path("npy", "structured.npy"), np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    np.save(path("npy", "complex.npy"), np.zeros((2, 2), dtype="<c8"))
    np.save(path("npy", "fractions.npy"), np.array([[0.5, 1.0], [2.0, 3.0]], dtype="<f4"))
    np.save(path("npy", "large_values.npy"), np.array([[1, 300], [2, 3]], dtype="<i4"))
    with open(path("npy", "dtype_f4.npy"), "rb") as file:
        whole = file.read()
    with open(path("npy", "truncated.npy"), "wb") as file:
        file.write(whole[:-10])
    with open(path("npy", "truncated_header.npy"), "wb") as file:
        file.write(whole[:40])
    with open(path("npy", "bad_magic.npy"), "wb") as file:
        file.write(b"\x93NUMPZ" + whole[6:])
    with open(path("npy", "bad_version.npy"), "wb") as file:
        file.write(whole[:6] + b"\x09\x00" + whole[8:])
    with open(path("not_data.bin"), "wb") as file:
        file.write(b"this is not a data set\n" * 4)

    # .npz, stored and deflated, same arrays plus ones that make zlib emit every block type.
    x = pattern((10, 4), "<f4")
    y = np.arange(10, dtype="<i8") % 3
    onehot = np.eye(3, dtype="<f4")[y]
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, size=(20000,), dtype=np.uint8)  # incompressible: stored blocks
    ramp = (np.arange(5000, dtype="<i4") // 3).reshape(500, 10)  # repetitive: dynamic Huffman
    np.savez(path("npz", "stored.npz"), x=x, y=y, onehot=onehot)
    np.savez_compressed(path("npz", "compressed.npz"), x=x, y=y, onehot=onehot, noise=noise, ramp=ramp)
    np.savez(path("npz", "single.npz"), only=x)
    np.savez(path("npz", "by_input_name.npz"), image=x, mask=pattern((10, 2), "|u1"), y=y)
    np.savez(path("npz", "mismatched_count.npz"), x=x, y=np.arange(9, dtype="<i8"))
    # Deflate members of every compression level zlib has.
    with zipfile.ZipFile(path("npz", "levels.npz"), "w") as archive:

        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, ramp)
        for level in (0, 1, 6, 9):
            archive.writestr(zipfile.ZipInfo(f"level{level}.npy"), buffer.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)
    np.savez_compressed(path("npz", "small_compressed.npz"), x=x, y=y)
    with open(path("npz", "small_compressed.npz"), "rb") as file:
        compressed = bytearray(file.read())
    with open(path("npz", "truncated.npz"), "wb") as file:
        file.write(compressed[: len(compressed) // 2])
    # Corrupt the deflate stream of the first member (x) without touching the directory.
    corrupt = bytearray(compressed)
    header_end = 30 + int.from_bytes(corrupt[26:28], "little") + int.from_bytes(corrupt[28:30], "little")
    for offset in range(header_end + 5, header_end + 30):
        corrupt[offset] ^= 0x5A
    with open(path("npz", "corrupt_deflate.npz"), "wb") as file:
        file.write(corrupt)
    # The directory understates the first member's size (a zip bomb's trick): inflating must stop.
    understated = bytearray(compressed)
    central = understated.find(b"PK\x01\x02")
    understated[central + 24:central + 28] = (100).to_bytes(4, "little")
    with open(path("npz", "understated.npz"), "wb") as file:
        file.write(understated)
    with open(path("npz", "garbage.npz"), "wb") as file:
        file.write(b"PK\x03\x04" + b"\x00" * 60)

    # HDF5: groups, a chunked gzip dataset, labels, and refused kinds.
    with h5py.File(path("h5", "digits.h5"), "w") as file:
        file.create_dataset("train/x", data=pattern((20, 1, 4, 4), "<f4"))
        file.create_dataset("train/y", data=np.arange(20, dtype="<i8") % 10)
        file.create_dataset("train/x_gzip", data=pattern((20, 1, 4, 4), "<f4"), chunks=(3, 1, 4, 4),
                            compression="gzip")
        file.create_dataset("train/x_u8", data=pattern((20, 1, 4, 4), "|u1"))
        file.create_dataset("train/x_f8", data=pattern((20, 1, 4, 4), "<f8"))
        file.create_dataset("train/x_f2", data=pattern((20, 1, 4, 4), "<f2"))
        file.create_dataset("train/x_i1", data=pattern((20, 1, 4, 4), "|i1"))
        file.create_dataset("train/mask", data=pattern((20, 1, 4, 4), "<i8") % 2 == 1)
        file.create_dataset("test/x", data=pattern((8, 1, 4, 4), "<f4"))
        file.create_dataset("test/y", data=np.arange(8, dtype="<i8") % 10)
        file.create_dataset("names", data=np.array([b"a", b"b"]))
        file.create_dataset("scalar", data=np.float32(2.0))
    with open(path("h5", "digits.h5"), "rb") as file:
        whole = file.read()
    with open(path("h5", "truncated.h5"), "wb") as file:
        file.write(whole[:1000])

    # ONNX test_data_set folders: raw_data and the typed repeated fields.
    def save(tensor, *parts):
        with open(path(*parts), "wb") as file:
            file.write(tensor.SerializeToString())

    inputs_a = pattern((3, 2, 2), "<f4")
    inputs_b = pattern((3, 4), "<i8")
    save(numpy_helper.from_array(inputs_a, "a"), "pb", "test_data_set_0", "input_0.pb")
    save(helper.make_tensor("b", onnx.TensorProto.INT64, [3, 4], inputs_b.flatten().tolist()),
         "pb", "test_data_set_0", "input_1.pb")
    save(numpy_helper.from_array(pattern((3, 5), "<f4"), "out"), "pb", "test_data_set_0", "output_0.pb")

    typed = path("pb", "typed")
    os.makedirs(os.path.dirname(typed + "/"), exist_ok=True)
    values = pattern((2, 3), "<f8")
    for name, data_type in [("float", onnx.TensorProto.FLOAT), ("double", onnx.TensorProto.DOUBLE),
                            ("int32", onnx.TensorProto.INT32), ("int64", onnx.TensorProto.INT64),
                            ("uint8", onnx.TensorProto.UINT8), ("int8", onnx.TensorProto.INT8),
                            ("uint16", onnx.TensorProto.UINT16), ("int16", onnx.TensorProto.INT16),
                            ("uint32", onnx.TensorProto.UINT32), ("uint64", onnx.TensorProto.UINT64),
                            ("bool", onnx.TensorProto.BOOL), ("float16", onnx.TensorProto.FLOAT16)]:
        numpy_type = helper.tensor_dtype_to_np_dtype(data_type)
        converted = (values % 2 == 1) if name == "bool" else values.astype(numpy_type)
        save(helper.make_tensor(name, data_type, [2, 3], converted.flatten().tolist()),
             "pb", "typed", f"{name}.pb")
        save(numpy_helper.from_array(converted, name), "pb", "typed", f"{name}_raw.pb")

    with open(path("pb", "test_data_set_0", "input_0.pb"), "rb") as file:
        whole = file.read()
    os.makedirs(path("pb", "corrupt", "x"), exist_ok=True)
    os.rmdir(path("pb", "corrupt", "x"))
    with open(path("pb", "corrupt", "input_0.pb"), "wb") as file:
        file.write(whole[: len(whole) - 7])
    os.makedirs(path("pb", "empty", "x"), exist_ok=True)
    with open(path("pb", "empty", "README.txt"), "w") as file:
        file.write("no .pb files here\n")
    os.rmdir(path("pb", "empty", "x"))


if __name__ == "__main__":
    main()
