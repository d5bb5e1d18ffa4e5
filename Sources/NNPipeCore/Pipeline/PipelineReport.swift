import Foundation

/// What a pipeline run did: written to `<output_dir>/report.json` and summarised on stdout.
public struct PipelineReport: Sendable {
    public struct StageEntry: Sendable {
        public var index: Int
        public var kind: String
        public var succeeded: Bool
        public var seconds: Double
        public var summary: String
        public var before: ModelStatistics
        public var after: ModelStatistics?
        public var details: [(key: String, value: JSONValue)]
        public var warnings: [String]
        public var files: [String]
        public var evaluation: [(key: String, value: JSONValue)]?
        public var error: String?
    }

    public var name: String
    public var manifestPath: String?
    public var modelPath: String
    public var modelFormat: String
    public var input: ModelStatistics
    public var inputEvaluation: [(key: String, value: JSONValue)]?
    public var stages: [StageEntry] = []
    public var totalSeconds: Double = 0
    public var error: String?
    /// Stopped by Ctrl-C: the stages after the interrupted one (exports included) did not run.
    public var interrupted = false
    public var succeeded: Bool { error == nil }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("nnpipe_version", .string(NNPipeVersion.current)),
            ("name", .string(name)),
            ("status", .string(interrupted ? "interrupted" : succeeded ? "ok" : "failed")),
        ]
        if let manifestPath { members.append(("manifest", .string(manifestPath))) }
        members.append(("model", .object([
            ("path", .string(modelPath)), ("format", .string(modelFormat)), ("statistics", input.json),
        ])))
        if let inputEvaluation { members.append(("input_evaluation", .object(inputEvaluation.map { ($0.key, $0.value) }))) }
        members.append(("stages", .array(stages.map(\.json))))
        members.append(("total_seconds", .number(Self.rounded(totalSeconds))))
        if let error { members.append(("error", .string(error))) }
        return .object(members)
    }

    static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    /// The compact table printed at the end of `nnpipe run`.
    public var table: String {
        // The evaluated metric trajectory gets its own column when the manifest has `evaluate`.
        let metric = inputEvaluation.flatMap { members in
            ["accuracy", "mse"].first { key in members.contains { $0.key == key } }
        }
        func metricText(_ members: [(key: String, value: JSONValue)]?) -> String {
            guard let metric, let value = members?.first(where: { $0.key == metric })?.value.numberValue else { return "" }
            return metric == "accuracy" ? String(format: "%.2f%%", value * 100) : String(format: "%.4g", value)
        }
        var rows: [[String]] = [["#", "stage", "status", "seconds", "params", "non-zero", "bytes"] + (metric.map { [$0] } ?? []) + ["summary"]]
        rows.append(["-", "input", "", "", String(input.parameterCount), String(input.nonZeroCount), ByteCountText.format(input.totalBytes)]
            + (metric == nil ? [] : [metricText(inputEvaluation)]) + [modelFormat])
        for stage in stages {
            let stats = stage.after ?? stage.before
            rows.append([
                String(stage.index), stage.kind, stage.succeeded ? "ok" : "FAILED", String(format: "%.2f", stage.seconds),
                String(stats.parameterCount), String(stats.nonZeroCount), ByteCountText.format(stats.totalBytes),
            ] + (metric == nil ? [] : [metricText(stage.evaluation)]) + [stage.succeeded ? stage.summary : (stage.error ?? "")])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).enumerated().map { index, pair in
                index == row.count - 1 ? pair.0 : pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension PipelineReport.StageEntry {
    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("index", .number(Double(index))), ("stage", .string(kind)),
            ("status", .string(succeeded ? "ok" : "failed")),
            ("seconds", .number(PipelineReport.rounded(seconds))),
            ("summary", .string(summary)),
            ("statistics_before", before.json),
        ]
        if let after { members.append(("statistics_after", after.json)) }
        if !details.isEmpty { members.append(("details", .object(details.map { ($0.key, $0.value) }))) }
        if !warnings.isEmpty { members.append(("warnings", .array(warnings.map { .string($0) }))) }
        if !files.isEmpty { members.append(("files", .array(files.map { .string($0) }))) }
        if let evaluation { members.append(("evaluation", .object(evaluation.map { ($0.key, $0.value) }))) }
        if let error { members.append(("error", .string(error))) }
        return .object(members)
    }
}

extension ModelStatistics {
    public var json: JSONValue {
        .object([
            ("nodes", .number(Double(nodeCount))),
            ("parameters", .number(Double(parameterCount))),
            ("non_zero", .number(Double(nonZeroCount))),
            ("sparsity", .number((sparsity * 1e6).rounded() / 1e6)),
            ("bytes", .number(Double(totalBytes))),
            ("bytes_by_dtype", .object(bytesByDataType.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
            ("operators", .object(operatorHistogram.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
        ])
    }
}
