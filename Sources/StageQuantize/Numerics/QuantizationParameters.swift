/// A scale and zero point: real = scale · (quantised − zeroPoint).
public struct QuantizationParameters: Sendable, Hashable {
    public var scale: Float
    public var zeroPoint: Int32

    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// onnxruntime's `compute_scale_zp`, step for step, so our scales match its bit for bit:
    /// the range is widened to include 0, made symmetric on request, and the scale is computed
    /// in float64 before it is stored as float32.
    public init(lower: Float, upper: Float, range: QuantizedRange, symmetric: Bool) {
        var lower = Swift.min(lower, 0)
        var upper = Swift.max(upper, 0)
        if symmetric {
            let largest = Swift.max(abs(lower), abs(upper))
            lower = -largest
            upper = largest
        }
        let minimum = Double(range.minimum)
        let maximum = Double(range.maximum)
        let scale = (Double(upper) - Double(lower)) / (maximum - minimum)
        // onnxruntime compares the float64 scale with float32's smallest normal, before rounding it.
        guard scale >= Double(Float.leastNormalMagnitude) else {
            self.init(scale: 1, zeroPoint: 0)
            return
        }
        let zeroPoint: Double
        if symmetric {
            // (qmin + qmax) / 2 rounded half to even: 0 for signed types, 128 for uint8, 32768 for uint16.
            zeroPoint = ((minimum + maximum) / 2).rounded(.toNearestOrEven)
        } else {
            zeroPoint = (minimum - Double(lower) / scale).rounded(.toNearestOrEven)
        }
        // Infinite ranges (rejected earlier by the stage) must not trap here.
        let clamped = zeroPoint.isNaN ? 0 : Swift.min(Swift.max(zeroPoint, minimum), maximum)
        self.init(scale: Float(scale), zeroPoint: Int32(clamped))
    }
}
