import Foundation

/// Parameter update rules. State (velocities, moments) is kept per parameter name.
public struct Optimizer: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case sgd, adam, adamw
    }

    public var kind: Kind
    public var momentum: Float
    public var nesterov: Bool
    /// L2 penalty added to the gradient (sgd, adam) or decoupled decay (adamw).
    public var weightDecay: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    private var firstMoments: [String: [Float]] = [:]
    private var secondMoments: [String: [Float]] = [:]
    private var stepCount = 0

    public init(kind: Kind, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.kind = kind
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    /// Counts one optimiser step; call once per batch before the per-parameter updates.
    public mutating func beginStep() { stepCount += 1 }

    /// Updates `parameter` in place from `gradient` with learning rate `rate`.
    public mutating func update(_ name: String, parameter: inout [Float], gradient: [Float], rate: Float) {
        precondition(parameter.count == gradient.count, "gradient of '\(name)' does not match the parameter")
        switch kind {
        case .sgd:
            var velocity = firstMoments[name] ?? [Float](repeating: 0, count: parameter.count)
            for index in 0..<parameter.count {
                let g = gradient[index] + weightDecay * parameter[index]
                if momentum > 0 {
                    velocity[index] = momentum * velocity[index] + g
                    parameter[index] -= rate * (nesterov ? g + momentum * velocity[index] : velocity[index])
                } else {
                    parameter[index] -= rate * g
                }
            }
            if momentum > 0 { firstMoments[name] = velocity }
        case .adam, .adamw:
            var first = firstMoments[name] ?? [Float](repeating: 0, count: parameter.count)
            var second = secondMoments[name] ?? [Float](repeating: 0, count: parameter.count)
            let step = Float(max(stepCount, 1))
            let correction1 = 1 - pow(beta1, step)
            let correction2 = 1 - pow(beta2, step)
            let coupled = kind == .adam ? weightDecay : 0
            for index in 0..<parameter.count {
                let g = gradient[index] + coupled * parameter[index]
                first[index] = beta1 * first[index] + (1 - beta1) * g
                second[index] = beta2 * second[index] + (1 - beta2) * g * g
                let update = (first[index] / correction1) / ((second[index] / correction2).squareRoot() + epsilon)
                if kind == .adamw { parameter[index] -= rate * weightDecay * parameter[index] }
                parameter[index] -= rate * update
            }
            firstMoments[name] = first
            secondMoments[name] = second
        }
    }
}

/// Learning rate per optimiser step: linear warm-up, then constant, step decay or cosine decay to 0.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case constant, step, cosine
    }

    public var kind: Kind
    public var baseRate: Double
    public var warmupSteps: Int
    /// Steps between decays (step schedule).
    public var stepSize: Int
    public var gamma: Double
    public var totalSteps: Int

    public init(kind: Kind, baseRate: Double, warmupSteps: Int = 0, stepSize: Int = 1, gamma: Double = 0.1, totalSteps: Int) {
        self.kind = kind
        self.baseRate = baseRate
        self.warmupSteps = warmupSteps
        self.stepSize = max(stepSize, 1)
        self.gamma = gamma
        self.totalSteps = totalSteps
    }

    /// The rate for 0-based optimiser step `step`.
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return baseRate * Double(step + 1) / Double(warmupSteps) }
        let after = step - warmupSteps
        switch kind {
        case .constant: return baseRate
        case .step: return baseRate * pow(gamma, Double(after / stepSize))
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = min(Double(after) / Double(span), 1)
            return baseRate * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
