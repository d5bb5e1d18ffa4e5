import Foundation
import NNPipeCore
import NNPipeRuntime
import NNPipeTestKit
import Testing

/// Runs onnx's own node tests (shipped with the onnx 1.22.0 Python package) for every op the
/// runtime supports, and prints a per-operator pass table. Cases are converted to JSON once per
/// run by `scripts/make_runtime_cases.py node-tests`, so this needs no ONNX reader.
@Suite struct NodeTestRunnerTests {
    /// Cases that cannot pass, each with its reason (the issue's "every miss is listed").
    static let knownMisses: [String: String] = [
        "test_batchnorm_epsilon_training_mode": "training-mode BatchNormalization is not an inference op",
        "test_batchnorm_example_training_mode": "training-mode BatchNormalization is not an inference op",
        "test_resize_downsample_scales_cubic_antialias": "antialias=1 is not supported (the issue asks for nearest/linear)",
        "test_resize_downsample_scales_linear_antialias": "antialias=1 is not supported (the issue asks for nearest/linear)",
        "test_resize_downsample_sizes_cubic_antialias": "antialias=1 is not supported (the issue asks for nearest/linear)",
        "test_resize_downsample_sizes_linear_antialias": "antialias=1 is not supported (the issue asks for nearest/linear)",
        "test_not_2d": "model imports opset 1; the runtime supports opsets 7 and later",
        "test_not_3d": "model imports opset 1; the runtime supports opsets 7 and later",
        "test_not_4d": "model imports opset 1; the runtime supports opsets 7 and later",
        "test_training_dropout": "training-mode Dropout draws random masks (numpy's RNG); not an inference op",
        "test_training_dropout_default": "training-mode Dropout draws random masks (numpy's RNG); not an inference op",
        "test_training_dropout_default_mask": "training-mode Dropout draws random masks (numpy's RNG); not an inference op",
        "test_training_dropout_mask": "training-mode Dropout draws random masks (numpy's RNG); not an inference op",
    ]

    /// Cases whose expected values onnx wrote by hand to 4 decimals, so they need a looser tolerance.
    static let relativeTolerance: [String: Double] = [
        "test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-3,
    ]

    struct Outcome {
        var passed = 0
        var failed: [String] = []
        var skipped: [String] = []
    }

    @Test func onnxNodeTestsPassForSupportedOps() throws {
        guard let python = TestEnvironment.python else {
            if TestEnvironment.isCI { Issue.record("Python interop environment not found: run scripts/setup-python.sh") }
            return
        }
        let folder = try TestEnvironment.temporaryFolder("node-tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let operators = ExecutionPlan.supportedOperators.map { $0.replacingOccurrences(of: "ai.onnx.ml.", with: "") }
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/make_runtime_cases.py").path
        let conversion = try ProcessRunner.run(python, [script, "node-tests", folder.path] + operators)
        try #require(conversion.status == 0, "node-test conversion failed: \(conversion.standardError)")
        let indexData = try Data(contentsOf: folder.appendingPathComponent("index.json"))
        let index = try #require(try JSONSerialization.jsonObject(with: indexData) as? [[String: Any]])
        let only = ProcessInfo.processInfo.environment["NNPIPE_NODE_TEST"]

        var outcomes: [String: Outcome] = [:]
        var unexpected: [String] = []
        for entry in index {
            let name = entry["case"] as? String ?? "?"
            let op = entry["op"] as? String ?? "?"
            if let only, !name.contains(only) { continue }
            if let skip = entry["skip"] as? String {
                outcomes[op, default: Outcome()].skipped.append("\(name): \(skip)")
                continue
            }
            let verdict: String?
            var typeSkip = false
            do {
                let testCase = try RuntimeCase(contentsOf: folder.appendingPathComponent(name + ".json"))
                if let reason = testCase.unreadable {
                    verdict = reason
                    typeSkip = true
                } else {
                    verdict = try testCase.mismatch(relativeTolerance: Self.relativeTolerance[name] ?? 1e-4)
                }
            } catch let error as NNPipeError where error.code == .unsupported {
                verdict = "\(error)"
                // Expanded cases may use helper ops outside the set; those are not the op under test.
                typeSkip = error.message.contains("element type") || error.message.contains("the runtime does not compute with")
                    || (name.contains("_expanded") && error.message.contains("has no kernel"))
            } catch {
                verdict = "\(error)"
            }
            guard let verdict else {
                outcomes[op, default: Outcome()].passed += 1
                continue
            }
            if typeSkip {
                outcomes[op, default: Outcome()].skipped.append("\(name): \(verdict)")
            } else {
                outcomes[op, default: Outcome()].failed.append("\(name): \(verdict)")
                if Self.knownMisses[name] == nil { unexpected.append("\(name) [\(op)]: \(verdict)") }
            }
        }
        var table = "ONNX node tests per operator (passed / failed / skipped for unsupported element types)\n"
        var totals = (0, 0, 0)
        for op in outcomes.keys.sorted() {
            let outcome = outcomes[op]!
            table += "  \(op.padding(toLength: 28, withPad: " ", startingAt: 0)) \(outcome.passed) / \(outcome.failed.count) / \(outcome.skipped.count)\n"
            totals.0 += outcome.passed
            totals.1 += outcome.failed.count
            totals.2 += outcome.skipped.count
            for failure in outcome.failed { table += "      fail: \(failure.prefix(300))\n" }
            if ProcessInfo.processInfo.environment["NNPIPE_SHOW_SKIPS"] != nil {
                for skip in outcome.skipped { table += "      skip: \(skip.prefix(200))\n" }
            }
        }
        table += "  total: \(totals.0) passed, \(totals.1) failed, \(totals.2) skipped\n"
        print(table)
        let untested = Set(operators).subtracting(outcomes.keys).sorted()
        if !untested.isEmpty { print("  ops without node tests: \(untested.joined(separator: ", "))") }
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected node-test failures:\n\(unexpected.joined(separator: "\n"))")
    }
}
