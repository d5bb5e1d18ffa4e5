/// SplitMix64 (Steele, Lea and Flood 2014): a tiny generator whose output is fixed by its seed,
/// unlike `SystemRandomNumberGenerator`, so seeded shuffles, dropout masks and benchmark inputs
/// are reproducible on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    /// Uniform in `0 ..< bound` by rejection, so the result does not depend on the standard library's algorithm.
    public mutating func next(below bound: UInt64) -> UInt64 {
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let value = next()
            if value < limit { return value % bound }
        }
    }

    /// Uniform in [0, 1) from the top 24 bits.
    public mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
