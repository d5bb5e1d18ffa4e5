import Foundation
import NNPipeCore
import NNPipeRuntime
import NNPipeTestKit
import Testing

/// Runs onnx's own node tests (shipped with the onnx 1.22.0 Python package) for every op the
/// runtime supports, and prints a per-operator pass table. Cases are converted to JSON once per
/// run by `scripts/make_runtime_cases.py node-tests`, so this needs no ONNX reader.
@Suite struct NodeTestRunnerTests {
    /// Cases outside the issue's operator set, each with its reason (the issue's "every miss is listed"):
    /// it asks for BatchNormalization and Dropout at inference only.
    static let knownMisses: [String: String] = [
        "test_batchnorm_epsilon_training_mode": "out of scope: training-mode BatchNormalization (the issue lists inference only)",
        "test_batchnorm_example_training_mode": "out of scope: training-mode BatchNormalization (the issue lists inference only)",
        "test_training_dropout": "out of scope: training-mode Dropout draws random masks (the issue lists inference: identity)",
        "test_training_dropout_default": "out of scope: training-mode Dropout draws random masks (the issue lists inference: identity)",
        "test_training_dropout_default_mask": "out of scope: training-mode Dropout draws random masks (the issue lists inference: identity)",
        "test_training_dropout_mask": "out of scope: training-mode Dropout draws random masks (the issue lists inference: identity)",
    ]

    /// Cases whose expected values onnx wrote by hand to 4 decimals, so they need a looser tolerance.
    static let relativeTolerance: [String: Double] = [
        "test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-3,
    ]

    struct Outcome {
        var passed = 0
        var failed: [String] = []
        /// Known misses with their reason: not failures of a listed op, but not passes either.
        var missed: [String] = []
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
        var shapes = (checked: 0, mismatches: [String](), unknown: [String]())
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
                // Plan-time shape inference must agree with every value the run produced.
                do {
                    let testCase = try RuntimeCase(contentsOf: folder.appendingPathComponent(name + ".json"))
                    let check = try testCase.shapeInferenceCheck()
                    shapes.checked += check.checked
                    shapes.unknown += check.unknown.map { "\(name): \($0)" }
                    shapes.mismatches += check.mismatches.map { "\(name) [\(op)]: \($0)" }
                } catch {
                    shapes.mismatches.append("\(name) [\(op)]: inference threw \(error)")
                }
                continue
            }
            if typeSkip {
                outcomes[op, default: Outcome()].skipped.append("\(name): \(verdict)")
            } else if let reason = Self.knownMisses[name] {
                outcomes[op, default: Outcome()].missed.append("\(name): \(reason)")
            } else {
                outcomes[op, default: Outcome()].failed.append("\(name): \(verdict)")
                unexpected.append("\(name) [\(op)]: \(verdict)")
            }
        }
        var table = "ONNX node tests per operator (passed / failed / missed, out of scope / skipped for unsupported element types)\n"
        var totals = (0, 0, 0, 0)
        for op in outcomes.keys.sorted() {
            let outcome = outcomes[op]!
            table += "  \(op.padding(toLength: 28, withPad: " ", startingAt: 0)) \(outcome.passed) / \(outcome.failed.count) / \(outcome.missed.count) / \(outcome.skipped.count)\n"
            totals.0 += outcome.passed
            totals.1 += outcome.failed.count
            totals.2 += outcome.missed.count
            totals.3 += outcome.skipped.count
            for failure in outcome.failed { table += "      fail: \(failure.prefix(300))\n" }
            for miss in outcome.missed { table += "      miss: \(miss)\n" }
            if ProcessInfo.processInfo.environment["NNPIPE_SHOW_SKIPS"] != nil {
                for skip in outcome.skipped { table += "      skip: \(skip.prefix(200))\n" }
            }
        }
        table += "  total: \(totals.0) passed, \(totals.1) failed, \(totals.2) missed (out of scope), \(totals.3) skipped\n"
        print(table)
        let untested = Set(operators).subtracting(outcomes.keys).sorted()
        if !untested.isEmpty { print("  ops without node tests: \(untested.joined(separator: ", "))") }
        print("  shape inference on passing cases: \(shapes.checked) values, \(shapes.mismatches.count) mismatched, \(shapes.unknown.count) not inferred")
        for mismatch in shapes.mismatches { print("      shape mismatch: \(mismatch.prefix(300))") }
        if ProcessInfo.processInfo.environment["NNPIPE_SHOW_SKIPS"] != nil {
            for name in shapes.unknown { print("      not inferred: \(name)") }
        }
        #expect(shapes.mismatches.isEmpty, "\(shapes.mismatches.count) values where shape inference disagrees with the run")
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected node-test failures:\n\(unexpected.joined(separator: "\n"))")
    }
}
