import Foundation
import NNPipeCore

/// The prune stage's sparsity schedule (Zhu & Gupta 2017, as tfmot): constant, or polynomial decay
/// from `initialSparsity` to `finalSparsity` between `beginStep` and `endStep`, applied every `frequency` steps.
public struct SparsitySchedule: Sendable, Equatable {
    public enum Kind: String, Sendable { case constant, polynomial }

    public var kind: Kind
    public var initialSparsity: Double
    public var finalSparsity: Double
    public var beginStep: Int
    public var endStep: Int
    public var frequency: Int
    public var power: Double

    public init(kind: Kind, initialSparsity: Double = 0, finalSparsity: Double, beginStep: Int = 0, endStep: Int = 0,
                frequency: Int = 100, power: Double = 3) {
        self.kind = kind
        self.initialSparsity = initialSparsity
        self.finalSparsity = finalSparsity
        self.beginStep = beginStep
        self.endStep = endStep
        self.frequency = max(frequency, 1)
        self.power = power
    }

    /// Reads the prune stage's `schedule` object; `path` locates errors.
    public init(json: JSONValue, path: String) throws {
        func number(_ key: String) -> Double? { json[key]?.numberValue }
        guard json.objectValue != nil else { throw NNPipeError(.invalidManifest, "a sparsity schedule must be an object", path: path) }
        let kindName = json["kind"]?.stringValue ?? "polynomial"
        guard let kind = Kind(rawValue: kindName) else {
            throw NNPipeError(.invalidManifest, "schedule kind must be constant or polynomial, got '\(kindName)'", path: "\(path).kind")
        }
        guard let final = number("final_sparsity") ?? number("sparsity"), (0..<1).contains(final) else {
            throw NNPipeError(.invalidManifest, "the schedule needs final_sparsity in [0, 1)", path: "\(path).final_sparsity")
        }
        self.init(kind: kind, initialSparsity: number("initial_sparsity") ?? 0, finalSparsity: final,
                  beginStep: Int(number("begin_step") ?? 0), endStep: Int(number("end_step") ?? 0),
                  frequency: Int(number("frequency") ?? 100), power: number("power") ?? 3)
        guard kind == .constant || endStep > beginStep else {
            throw NNPipeError(.invalidManifest, "end_step \(endStep) must come after begin_step \(beginStep)", path: "\(path).end_step")
        }
    }

    /// Target sparsity at `step`: s = final + (initial − final)·(1 − p)^power, p = clamp((step − begin)/(end − begin), 0, 1).
    public func sparsity(at step: Int) -> Double {
        guard kind == .polynomial else { return finalSparsity }
        let progress = min(max(Double(step - beginStep) / Double(endStep - beginStep), 0), 1)
        return finalSparsity + (initialSparsity - finalSparsity) * pow(1 - progress, power)
    }

    /// Whether masks are recomputed at `step`.
    public func prunes(at step: Int) -> Bool {
        guard kind == .polynomial else { return false }
        return step >= beginStep && step <= endStep && (step - beginStep) % frequency == 0
    }
}

/// Magnitude masks: keep the largest weights, prune exactly round_half_even(sparsity·n) of them.
public enum MagnitudeMask {
    /// 0/1 mask pruning the `sparsity` fraction of smallest |w|; among equal magnitudes the lower index is pruned first.
    public static func mask(for weights: [Float], sparsity: Double) -> [Float] {
        let count = Int((sparsity * Double(weights.count)).rounded(.toNearestOrEven))
        var mask = [Float](repeating: 1, count: weights.count)
        guard count > 0 else { return mask }
        let order = weights.indices.sorted { left, right in
            let a = abs(weights[left])
            let b = abs(weights[right])
            return a != b ? a < b : left < right
        }
        for index in order.prefix(count) { mask[index] = 0 }
        return mask
    }
}
