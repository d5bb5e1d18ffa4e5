import Foundation
import NNPipeCore
import NNPipeKeras
import NNPipeTestKit
import Testing

/// `.h5 -> IR -> .h5` through nnpipe, then Keras 3 itself loads the result and predicts on the
/// fixture's saved batch: this checks the reader and the writer against real Keras numerics.
@Suite("Keras round trip through Keras 3")
struct KerasRoundTripTests {
    static let tolerance = 1e-5

    /// Loads `model` with Keras 3 (numpy backend), predicts on `io`'s inputs, prints the max abs difference.
    static let predictScript = """
        import os, sys, json
        os.environ["KERAS_BACKEND"] = "numpy"
        import numpy as np, h5py, keras
        model = keras.models.load_model(sys.argv[1], compile=False)
        with h5py.File(sys.argv[2], "r") as io:
            feeds = [io["inputs"][t.name.split(":")[0]][()] for t in model.inputs]
            expected = [io["outputs"][str(i)][()] for i in range(len(io["outputs"]))]
        got = model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
        got = got if isinstance(got, (list, tuple)) else [got]
        assert len(got) == len(expected), f"{len(got)} outputs, expected {len(expected)}"
        diffs = [float(np.max(np.abs(np.asarray(g, dtype=np.float64) - e))) for g, e in zip(got, expected)]
        for g, e in zip(got, expected):
            assert np.asarray(g).shape == e.shape, f"shape {np.asarray(g).shape} vs {e.shape}"
        print(json.dumps({"max_abs_diff": max(diffs), "layers": [l.__class__.__name__ for l in model.layers]}))
        """

    static let cases: [String] = KerasFixtures.models

    @Test("nnpipe's .h5 loads in Keras 3 and predicts like the original", arguments: cases)
    func roundTrip(file: String) throws {
        let folder = try TestEnvironment.temporaryFolder("nnpipe-keras")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try KerasFixtures.read(file)
        let output = folder.appendingPathComponent("roundtrip.h5")
        try KerasHDF5Format().write(model, to: output)
        let stem = file.replacingOccurrences(of: ".keras", with: "").replacingOccurrences(of: ".h5", with: "")
        let io = TestEnvironment.fixture("keras/\(stem).io.h5")
        let result: ProcessResult
        do {
            result = try ProcessRunner.python(Self.predictScript, [output.path, io.path])
        } catch is InteropUnavailable {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return
        }
        try #require(result.status == 0, "Keras 3 failed on \(file): \(result.standardError.suffix(1500))")
        let line = try #require(result.standardOutput.split(separator: "\n").last)
        let parsed = try JSONParser.parse(String(line))
        let difference = try #require(parsed["max_abs_diff"]?.numberValue)
        print("keras-roundtrip \(file): max abs diff \(difference) layers \(parsed["layers"]!)")
        #expect(difference <= Self.tolerance, "\(file): max abs diff \(difference)")
    }
}

@Suite("tf_keras files Keras 3 cannot load")
struct KerasTwoToThreeTests {
    /// Keras 3 rejects tf_keras DepthwiseConv2D / SeparableConv2D configs (they carry `groups`);
    /// reading them with nnpipe and writing a Keras 3 file is the fix users get.
    @Test("Keras 3 refuses the tf_keras file, loads nnpipe's conversion", arguments: ["k2_functional_residual", "k2_separable"])
    func convertsForKeras3(stem: String) throws {
        let original = TestEnvironment.fixture("keras/\(stem).h5")
        let probe = """
            import os, sys
            os.environ["KERAS_BACKEND"] = "numpy"
            import keras
            try:
                keras.models.load_model(sys.argv[1], compile=False)
                print("loaded")
            except Exception as error:
                print("refused")
            """
        let direct: ProcessResult
        do { direct = try ProcessRunner.python(probe, [original.path]) } catch is InteropUnavailable {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return
        }
        #expect(direct.standardOutput.contains("refused"), "Keras 3 now loads \(stem).h5 itself; this test can go")
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let converted = folder.appendingPathComponent("converted.h5")
        try KerasHDF5Format().write(try KerasFixtures.read("\(stem).h5"), to: converted)
        let result = try ProcessRunner.python(KerasRoundTripTests.predictScript, [converted.path, TestEnvironment.fixture("keras/\(stem).io.h5").path])
        try #require(result.status == 0, "\(result.standardError.suffix(1500))")
        let difference = try #require(try JSONParser.parse(String(result.standardOutput.split(separator: "\n").last ?? ""))["max_abs_diff"]?.numberValue)
        #expect(difference <= KerasRoundTripTests.tolerance)
    }
}
