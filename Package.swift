// swift-tools-version: 6.0
// nnpipe: compress and convert neural-network models (ONNX <-> Keras HDF5).
import PackageDescription

let package = Package(
    name: "nnpipe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "nnpipe", targets: ["nnpipe"]),
        .executable(name: "nnpipe-stage-cluster", targets: ["nnpipe-stage-cluster"]),
        .library(name: "NNPipeTestKit", targets: ["NNPipeTestKit"]),
        .library(name: "NNPipeCore", targets: ["NNPipeCore"]),
        .library(name: "NNPipeCommands", targets: ["NNPipeCommands"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // MARK: C libraries, each behind one system-library module (house rule 5).
        .systemLibrary(
            name: "CProtobufC", path: "Formats/CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(
            name: "CHDF5", path: "Formats/CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CBLAS", path: "Formats/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Formats/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        // MARK: Core: IR, stages, manifest, runner. No C imports.
        .target(
            name: "NNPipeCore",
            dependencies: [.product(name: "Logging", package: "swift-log")]),

        // MARK: Formats
        .target(
            name: "ONNXProto", dependencies: ["CProtobufC"], path: "Formats/ONNXProto",
            exclude: ["onnx.proto", "generate.sh"]),
        .target(
            name: "NNPipeONNX", dependencies: ["NNPipeCore", "ONNXProto", "CProtobufC"],
            path: "Formats/ONNX"),
        .target(name: "NNPipeHDF5", dependencies: ["NNPipeCore", "CHDF5"], path: "Formats/HDF5"),
        .target(
            name: "NNPipeKeras", dependencies: ["NNPipeCore", "NNPipeHDF5", "NNPipeData"],
            path: "Formats/KerasHDF5"),

        // MARK: Execution and data
        .target(name: "NNPipeRuntime", dependencies: ["NNPipeCore", "CBLAS", "CNNPipeKernels"], exclude: ["README.md"]),
        // The runtime's own kernels (conv product, pooling rows; AVX2 + FMA, checked at run
        // time); NNPipeRuntime's NativeKernels.swift is their one wrapper. Always -O2: intrinsics
        // code at a debug build's -O0 runs 50x slower than OpenBLAS, and the tests (debug) run
        // models through it. (Unsafe flags keep this target out of packages that depend on
        // nnpipe by version; NNPipeCore, what a plugin would use, does not include it.)
        .target(name: "CNNPipeKernels", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "NNPipeData", dependencies: ["NNPipeCore", "NNPipeHDF5"]),

        // MARK: Stages (one module per kind; never depend on each other)
        .target(
            name: "StageEvaluate", dependencies: ["NNPipeCore", "NNPipeRuntime", "NNPipeData"]),
        .target(
            name: "StagePrune",
            dependencies: ["NNPipeCore", "NNPipeRuntime", "NNPipeTraining", "NNPipeData", "CZlib"]),
        .target(name: "StageQuantize", dependencies: ["NNPipeCore"]),
        .target(name: "NNPipeTraining", dependencies: ["NNPipeCore", "NNPipeRuntime"]),
        .target(
            name: "StageFineTune",
            dependencies: ["NNPipeCore", "NNPipeRuntime", "NNPipeTraining", "NNPipeData"]),
        .target(
            name: "StageCalibrate", dependencies: ["NNPipeCore", "NNPipeRuntime", "NNPipeData"]),

        // MARK: Out-of-process stage plugins
        .target(name: "NNPipePlugins", dependencies: ["NNPipeCore"]),

        // MARK: Command line
        .target(
            name: "NNPipeCommands",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                "NNPipeCore", "NNPipePlugins", "NNPipeONNX", "NNPipeKeras", "NNPipeRuntime", "NNPipeData",
                "StageEvaluate", "StagePrune", "StageQuantize", "StageCalibrate", "StageFineTune",
            ]),
        .executableTarget(name: "nnpipe", dependencies: ["NNPipeCommands"]),
        // An out-of-process plugin written in Swift (Plugins/SwiftCluster, see PLUGINS.md).
        .executableTarget(
            name: "nnpipe-stage-cluster", dependencies: ["NNPipeCore", "NNPipeONNX"],
            path: "Plugins/SwiftCluster"),

        // MARK: ONNX fuzzing and benchmark (scripts/fuzz-onnx.sh, Benchmarks/onnx-io/run.sh)
        .executableTarget(
            name: "onnx-fuzz", dependencies: ["NNPipeCore", "NNPipeONNX"], path: "Tests/Fuzz/ONNXFuzz"),
        .executableTarget(
            name: "onnx-roundtrip", dependencies: ["NNPipeCore", "NNPipeONNX"],
            path: "Benchmarks/onnx-io/onnx-roundtrip"),
        .executableTarget(
            name: "RuntimeBenchmark", dependencies: ["NNPipeCore", "NNPipeRuntime"],
            path: "Benchmarks/runtime/Sources/RuntimeBenchmark"),

        // MARK: Tests
        .target(name: "NNPipeTestKit", dependencies: ["NNPipeCore"]),
        .testTarget(name: "NNPipeCoreTests", dependencies: ["NNPipeTestKit", "NNPipeCore"]),
        .testTarget(
            name: "NNPipeONNXTests", dependencies: ["NNPipeTestKit", "NNPipeCore", "NNPipeONNX"]),
        .testTarget(
            name: "NNPipeKerasTests", dependencies: ["NNPipeTestKit", "NNPipeCore", "NNPipeKeras", "NNPipeHDF5"]),
        .testTarget(
            name: "NNPipeRuntimeTests",
            dependencies: ["NNPipeTestKit", "NNPipeCore", "NNPipeRuntime", "NNPipeONNX", "NNPipeData"]),
        .testTarget(
            name: "StagePruneTests",
            dependencies: [
                "NNPipeTestKit", "NNPipeCore", "StagePrune", "NNPipeRuntime", "NNPipeONNX", "NNPipeKeras", "NNPipeData", "NNPipeTraining",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "StageQuantizeTests",
            dependencies: [
                "NNPipeTestKit", "NNPipeCore", "StageQuantize", "StageCalibrate", "NNPipeRuntime", "NNPipeONNX", "NNPipeKeras",
                "NNPipeData", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "NNPipeDataTests", dependencies: ["NNPipeTestKit", "NNPipeData", "NNPipeCore"]),
        .testTarget(
            name: "StageEvaluateTests",
            dependencies: ["NNPipeTestKit", "StageEvaluate", "NNPipeData", "NNPipeCore"]),
        .testTarget(
            name: "StageFineTuneTests",
            dependencies: [
                "NNPipeTestKit", "NNPipeCore", "NNPipeRuntime", "NNPipeTraining", "StageFineTune", "NNPipeData", "NNPipeONNX",
            ]),
        .testTarget(name: "NNPipeCommandsTests", dependencies: ["NNPipeTestKit", "NNPipeCommands", "NNPipeCore", "NNPipeData"]),
    ]
)
