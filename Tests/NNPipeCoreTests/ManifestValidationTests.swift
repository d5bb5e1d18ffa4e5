import Foundation
import NNPipeCore
import Testing

/// One malformed manifest and the problem the validator must name.
struct BadManifest: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    /// JSON path the message must start with (after the file location).
    let path: String
    let fragment: String
    var testDescription: String { name }
}

private func manifest(_ stages: String, extra: String = "") -> String {
    """
    {"version": 1, "model": "model.toy", \(extra)
     "datasets": {"calib": {"path": "data.h5", "inputs": "x"}, "test": {"path": "data.h5", "inputs": "x", "labels": "y"}},
     "stages": [\(stages)]}
    """
}

let badManifests: [BadManifest] = [
    BadManifest(name: "not JSON", text: "{\"version\": 1,", path: "", fragment: "not valid JSON"),
    BadManifest(name: "trailing comma", text: "{\"version\": 1, \"model\": \"m\", \"stages\": [],}", path: "", fragment: "expected a quoted key"),
    BadManifest(name: "duplicate key", text: "{\"version\": 1, \"version\": 1}", path: "", fragment: "duplicate key 'version'"),
    BadManifest(name: "top level array", text: "[]", path: "$", fragment: "must be a JSON object"),
    BadManifest(name: "missing version", text: "{\"model\": \"m.toy\", \"stages\": []}", path: "version", fragment: "is required"),
    BadManifest(name: "version 2", text: "{\"version\": 2, \"model\": \"m.toy\", \"stages\": []}", path: "version", fragment: "unsupported manifest version 2"),
    BadManifest(name: "version as string", text: "{\"version\": \"1\", \"model\": \"m.toy\", \"stages\": []}", path: "version", fragment: "expected an integer, got a string"),
    BadManifest(name: "unknown top-level key", text: manifest("", extra: "\"stagse\": [],"), path: "stagse", fragment: "did you mean 'stages'?"),
    BadManifest(name: "missing model", text: "{\"version\": 1, \"stages\": []}", path: "model", fragment: "is required"),
    BadManifest(name: "model as number", text: "{\"version\": 1, \"model\": 3, \"stages\": []}", path: "model", fragment: "expected a path string or an object, got an integer"),
    BadManifest(name: "unknown model format", text: "{\"version\": 1, \"model\": {\"path\": \"m\", \"format\": \"onxx\"}, \"stages\": []}", path: "model.format", fragment: "did you mean 'onnx'?"),
    BadManifest(name: "missing stages", text: "{\"version\": 1, \"model\": \"m.toy\"}", path: "stages", fragment: "is required"),
    BadManifest(name: "stages not array", text: "{\"version\": 1, \"model\": \"m.toy\", \"stages\": {}}", path: "stages", fragment: "expected an array, got an object"),
    BadManifest(name: "stage not object", text: manifest("\"prune\""), path: "stages[0]", fragment: "expected an object"),
    BadManifest(name: "stage kind missing", text: manifest("{\"factor\": 2}"), path: "stages[0].stage", fragment: "is required"),
    BadManifest(name: "unknown stage kind", text: manifest("{\"stage\": \"scael\"}"), path: "stages[0].stage", fragment: "unknown stage kind 'scael' (did you mean 'scale'?)"),
    BadManifest(name: "unknown option", text: manifest("{\"stage\": \"scale\", \"facter\": 2}"), path: "stages[0].facter", fragment: "did you mean 'factor'?"),
    BadManifest(name: "wrong option type", text: manifest("{\"stage\": \"scale\", \"factor\": \"two\"}"), path: "stages[0].factor", fragment: "expected a number, got a string"),
    BadManifest(name: "number above maximum", text: manifest("{\"stage\": \"scale\", \"factor\": 1000}"), path: "stages[0].factor", fragment: "must be in (0, 100], got 1000"),
    BadManifest(name: "exclusive maximum", text: manifest("{\"stage\": \"scale\", \"sparsity\": 1}"), path: "stages[0].sparsity", fragment: "must be in [0, 1), got 1"),
    BadManifest(name: "negative fraction", text: manifest("{\"stage\": \"scale\", \"sparsity\": -0.1}"), path: "stages[0].sparsity", fragment: "must be in [0, 1), got -0.1"),
    BadManifest(name: "integer expected", text: manifest("{\"stage\": \"scale\", \"steps\": 2.5}"), path: "stages[0].steps", fragment: "expected an integer, got 2.5"),
    BadManifest(name: "choice misspelt", text: manifest("{\"stage\": \"scale\", \"method\": \"entropi\"}"), path: "stages[0].method", fragment: "did you mean 'entropy'?"),
    BadManifest(name: "undefined dataset", text: manifest("{\"stage\": \"scale\", \"dataset\": \"calib2\"}"), path: "stages[0].dataset", fragment: "dataset 'calib2' is not defined in 'datasets' (did you mean 'calib'?)"),
    BadManifest(name: "list of strings expected", text: manifest("{\"stage\": \"scale\", \"exclude\": [1, 2]}"), path: "stages[0].exclude", fragment: "expected an array of strings"),
    BadManifest(name: "boolean expected", text: manifest("{\"stage\": \"scale\", \"verbose\": \"yes\"}"), path: "stages[0].verbose", fragment: "expected true or false, got a string"),
    BadManifest(name: "null not allowed", text: manifest("{\"stage\": \"scale\", \"method\": null}"), path: "stages[0].method", fragment: "must not be null"),
    BadManifest(name: "nested required", text: manifest("{\"stage\": \"scale\", \"distill\": {\"alpha\": 0.2}}"), path: "stages[0].distill.temperature", fragment: "is required"),
    BadManifest(name: "nested out of range", text: manifest("{\"stage\": \"scale\", \"distill\": {\"temperature\": 2, \"alpha\": 3}}"), path: "stages[0].distill.alpha", fragment: "must be in [0, 1], got 3"),
    BadManifest(name: "either kind", text: manifest("{\"stage\": \"scale\", \"size\": \"big\"}"), path: "stages[0].size", fragment: "'big' is not one of auto"),
    BadManifest(name: "option combination", text: manifest("{\"stage\": \"scale\", \"method\": \"percentile\", \"steps\": 3}"), path: "stages[0].steps", fragment: "cannot be combined"),
    BadManifest(name: "impossible order", text: manifest("{\"stage\": \"needs-scale\"}, {\"stage\": \"scale\"}"), path: "stages[0]", fragment: "needs a 'scale' stage before it"),
    BadManifest(name: "export outside output_dir", text: manifest("{\"stage\": \"export\", \"path\": \"../../etc/model.toy\"}"), path: "stages[0].path", fragment: "'..' is not allowed"),
    BadManifest(name: "export absolute path", text: manifest("{\"stage\": \"export\", \"path\": \"/tmp/model.toy\"}"), path: "stages[0].path", fragment: "absolute path"),
    BadManifest(name: "sparse initializers in a Keras file", text: manifest("{\"stage\": \"export\", \"path\": \"model.h5\", \"sparse_initializers\": true}"), path: "stages[0].sparse_initializers", fragment: "only ONNX files hold sparse initializers"),
    BadManifest(name: "export path with a NUL", text: manifest("{\"stage\": \"export\", \"path\": \"a\\u0000b.toy\"}"), path: "stages[0].path", fragment: "control character U+0000"),
    BadManifest(name: "output_dir with a newline", text: manifest("", extra: "\"output_dir\": \"o\\nut\","), path: "output_dir", fragment: "control character U+000A"),
    BadManifest(name: "export to a folder", text: manifest("{\"stage\": \"export\", \"path\": \"models/\"}"), path: "stages[0].path", fragment: "must name a file"),
    BadManifest(name: "two exports to one file", text: manifest("{\"stage\": \"export\", \"path\": \"a.toy\", \"format\": \"onnx\"}, {\"stage\": \"export\", \"path\": \"a.toy\", \"format\": \"onnx\"}"), path: "stages[1].path", fragment: "already written by stages[0]"),
    BadManifest(name: "dataset without path", text: manifest("", extra: "\"evaluate\": {\"dataset\": \"test\"},").replacingOccurrences(of: "\"test\": {\"path\": \"data.h5\",", with: "\"test\": {"), path: "datasets.test.path", fragment: "is required"),
    BadManifest(name: "dataset limit zero", text: manifest("").replacingOccurrences(of: "\"inputs\": \"x\"}", with: "\"inputs\": \"x\", \"limit\": 0}"), path: "datasets.calib.limit", fragment: "must be at least 1"),
    BadManifest(name: "evaluate unknown dataset", text: manifest("", extra: "\"evaluate\": {\"dataset\": \"tset\"},"), path: "evaluate.dataset", fragment: "did you mean 'test'?"),
    BadManifest(name: "evaluate unknown metric", text: manifest("", extra: "\"evaluate\": {\"dataset\": \"test\", \"metrics\": [\"acuracy\"]},"), path: "evaluate.metrics[0]", fragment: "did you mean 'accuracy'?"),
    BadManifest(name: "plugins not array", text: manifest("", extra: "\"plugins\": \"x\","), path: "plugins", fragment: "expected an array"),
    BadManifest(name: "plugin missing", text: manifest("", extra: "\"plugins\": [\"./bin/nnpipe-stage-nothing\"],"), path: "plugins[0]", fragment: "no executable plugin"),
]

@Suite("Manifest validation")
struct ManifestValidationTests {
    @Test("rejects a malformed manifest with its JSON path", arguments: badManifests)
    func rejects(_ bad: BadManifest) throws {
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        let file = URL(fileURLWithPath: "/tmp/nnpipe-tests/pipeline.json")
        do {
            _ = try decoder.decode(Array(bad.text.utf8), file: file)
            Issue.record("accepted a bad manifest: \(bad.name)")
        } catch let problems as ManifestProblems {
            let first = try #require(problems.problems.first)
            #expect(first.code == .invalidManifest)
            #expect(first.path == file.path)
            let line = first.description
            #expect(line.contains(bad.fragment), "\(line)")
            if !bad.path.isEmpty {
                #expect(first.message.hasPrefix(bad.path + ":"), "\(line)")
            }
            #expect(!line.contains("\n"))
        }
    }

    @Test func reportsLineAndColumn() throws {
        let text = "{\n  \"version\": 1,\n  \"model\": \"m.toy\",\n  \"stages\": [\n    {\"stage\": \"scale\", \"factor\": -1}\n  ]\n}"
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        let error = try #require(throws: ManifestProblems.self) { try decoder.decode(Array(text.utf8), file: nil) }
        let problem = try #require(error.problems.first)
        #expect(problem.line == 5)
        #expect(problem.column == 34)
    }

    @Test func collectsEveryProblem() throws {
        let text = manifest("{\"stage\": \"scale\", \"factor\": -1}, {\"stage\": \"nope\"}", extra: "\"extra\": 1,")
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        let error = try #require(throws: ManifestProblems.self) { try decoder.decode(Array(text.utf8), file: nil) }
        #expect(error.problems.count == 3)
    }

    @Test func acceptsAGoodManifestAndFillsDefaults() throws {
        let text = manifest("{\"stage\": \"scale\", \"dataset\": \"calib\", \"activations\": null}, {\"stage\": \"needs-scale\"}, {\"stage\": \"export\", \"path\": \"out.toy\", \"format\": \"onnx\"}",
                            extra: "\"evaluate\": {\"dataset\": \"test\", \"metrics\": [\"accuracy\", \"mse\"]}, \"output_dir\": \"results\",")
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        let file = URL(fileURLWithPath: "/data/project/pipeline.json")
        let decoded = try decoder.decode(Array(text.utf8), file: file)
        #expect(decoded.stages.map(\.kind) == ["scale", "needs-scale", "export"])
        #expect(decoded.stages[0].options.double("factor") == 2)
        #expect(decoded.stages[0].options.string("method") == "minmax")
        #expect(decoded.stages[0].options.has("activations") == false)
        #expect(decoded.model.path.path == "/data/project/model.toy")
        #expect(decoded.outputDirectory.path == "/data/project/results")
        #expect(decoded.datasets["calib"]?.path.path == "/data/project/data.h5")
        #expect(decoded.datasets["calib"]?.inputs == .single("x"))
        #expect(decoded.evaluation?.metrics == ["accuracy", "mse"])
    }
}

@Suite("Did you mean")
struct SuggestionTests {
    @Test(arguments: [
        ("sparsty", ["sparsity", "scope"], "sparsity"),
        ("quantise", ["quantize", "prune"], "quantize"),
        ("xyz", ["sparsity", "scope"], nil),
        ("Export", ["export"], "export"),
    ] as [(String, [String], String?)])
    func suggests(word: String, candidates: [String], expected: String?) {
        #expect(Suggestion.closest(to: word, among: candidates) == expected)
    }
}
