#!/bin/sh
# Regenerates the committed protobuf-c code from onnx.proto (needs protoc-c 1.4+;
# Debian: protobuf-c-compiler). The package build uses the committed output only.
set -eu
cd "$(dirname "$0")"
protoc-c --c_out=. onnx.proto
mkdir -p include
mv onnx.pb-c.h include/onnx.pb-c.h
# The generated .c includes "onnx.pb-c.h"; SwiftPM puts include/ on the search path.
