import Foundation
import NNPipeCore

/// How sparsity grows during fine-tuning: the `schedule` option, handed to the fine-tune stage
/// through `Model.annotations.pruningSchedule`.
///
/// Polynomial decay as Zhu & Gupta (2017) define it and tfmot implements it:
/// `p = clamp((step − begin) / (end − begin), 0, 1)`,
/// `s = final + (initial − final) · (1 − p)^power`; masks are updated when
/// `begin ≤ step ≤ end` and `(step − begin) mod frequency == 0`.
public struct PruningSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case constant
        case polynomial
    }

    public var kind: Kind
    public var initialSparsity: Double
    public var finalSparsity: Double
    public var beginStep: Int
    public var endStep: Int
    public var frequency: Int
    public var power: Double

    public init(
        kind: Kind, initialSparsity: Double = 0, finalSparsity: Double, beginStep: Int = 0,
        endStep: Int = 0, frequency: Int = 100, power: Double = 3
    ) {
        self.kind = kind
        self.initialSparsity = initialSparsity
        self.finalSparsity = finalSparsity
        self.beginStep = beginStep
        self.endStep = endStep
        self.frequency = frequency
        self.power = power
    }

    /// A schedule that holds `sparsity` from the first step (what a one-shot prune means).
    public static func constant(_ sparsity: Double) -> PruningSchedule {
        PruningSchedule(kind: .constant, initialSparsity: sparsity, finalSparsity: sparsity)
    }

    /// The target sparsity at training step `step`.
    public func sparsity(at step: Int) -> Double {
        switch kind {
        case .constant:
            return finalSparsity
        case .polynomial:
            let span = Double(max(endStep - beginStep, 1))
            let progress = min(max(Double(step - beginStep) / span, 0), 1)
            // Exact ends: final + (initial − final) can differ from initial in the last bit.
            if progress == 0 { return initialSparsity }
            if progress == 1 { return finalSparsity }
            return finalSparsity + (initialSparsity - finalSparsity) * pow(1 - progress, power)
        }
    }

    /// Whether fine-tuning recomputes the masks at `step`.
    public func updatesMasks(at step: Int) -> Bool {
        switch kind {
        case .constant:
            return step == beginStep
        case .polynomial:
            return step >= beginStep && step <= endStep && (step - beginStep) % max(frequency, 1) == 0
        }
    }

    /// The manifest's `schedule` object, with every field written out.
    public var json: JSONValue {
        .object([
            ("kind", .string(kind.rawValue)),
            ("initial_sparsity", .number(initialSparsity)),
            ("final_sparsity", .number(finalSparsity)),
            ("begin_step", .number(Double(beginStep))),
            ("end_step", .number(Double(endStep))),
            ("frequency", .number(Double(frequency))),
            ("power", .number(power)),
        ])
    }

    /// Reads a schedule written by `json` (or by a user in the manifest); missing fields take defaults.
    public init?(json: JSONValue, defaultFinalSparsity: Double? = nil) {
        guard json.objectValue != nil else { return nil }
        let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)) ?? .polynomial
        guard let final = json["final_sparsity"]?.numberValue ?? defaultFinalSparsity else { return nil }
        self.init(
            kind: kind,
            initialSparsity: json["initial_sparsity"]?.numberValue ?? (kind == .constant ? final : 0),
            finalSparsity: final,
            beginStep: json["begin_step"]?.integerValue ?? 0,
            endStep: json["end_step"]?.integerValue ?? 0,
            frequency: json["frequency"]?.integerValue ?? 100,
            power: json["power"]?.numberValue ?? 3)
    }
}

