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
