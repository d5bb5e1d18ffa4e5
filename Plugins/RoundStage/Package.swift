// swift-tools-version: 6.0
// An in-process nnpipe stage in a package of its own: it depends on nnpipe by path, adds a
// `round` stage, and ships its own `nnpipe-round` binary with the stage built in.
import PackageDescription

let package = Package(
    name: "RoundStage",
    platforms: [.macOS(.v13)],
    dependencies: [
        // `nnpipe-source` is a link to the repository root; a user would write the path or URL of nnpipe.
        .package(path: "nnpipe-source")
    ],
    targets: [
        .target(name: "RoundStage", dependencies: [.product(name: "NNPipeCore", package: "nnpipe-source")]),
        .executableTarget(
            name: "nnpipe-round",
            dependencies: ["RoundStage", .product(name: "NNPipeCommands", package: "nnpipe-source")]),
        .testTarget(
            name: "RoundStageTests",
            dependencies: ["RoundStage", .product(name: "NNPipeTestKit", package: "nnpipe-source"),
                           .product(name: "NNPipeCore", package: "nnpipe-source")]),
    ]
)
