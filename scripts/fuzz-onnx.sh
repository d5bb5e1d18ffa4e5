#!/bin/sh
# Fuzzes the ONNX reader with libFuzzer for a bounded number of runs over a seed corpus of
# fixture models. Usage: scripts/fuzz-onnx.sh [RUNS] (default 20000). Crashes land in .build-fuzz/crashes.
set -eu
cd "$(dirname "$0")/.."
runs="${1:-20000}"
build=.build-fuzz
swift build -c release --product onnx-fuzz --build-path "$build" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library \
    -Xswiftc -enable-experimental-feature -Xswiftc Extern
corpus="$build/corpus"
mkdir -p "$corpus" "$build/crashes"
# Seeds: small models of every kind (subgraphs, functions, sparse, every dtype).
for model in Tests/Fixtures/onnx/dtypes/*.onnx Tests/Fixtures/onnx/structures/*.onnx \
    Tests/Fixtures/onnx/node/test_if/model.onnx Tests/Fixtures/onnx/node/test_loop11/model.onnx \
    Tests/Fixtures/onnx/node/test_scan9_sum/model.onnx Tests/Fixtures/onnx/node/test_conv_with_strides_padding/model.onnx \
    Tests/Fixtures/onnx/sklearn/logistic_digits.onnx Tests/Fixtures/onnx/bad/*.onnx; do
    cp "$model" "$corpus/$(echo "$model" | tr / _)"
done
"$build/release/onnx-fuzz" "$corpus" -runs="$runs" -max_len=65536 -artifact_prefix="$build/crashes/" -print_final_stats=1
