/// One axis of a Slice: ONNX's clamping of start and end, and the element count, in arithmetic
/// that cannot overflow. Models (and onnx's own tests) use Int64.min and Int64.max for "from the
/// start" and "to the end", and a step may be either as well; `end - start + step - 1` on those
/// traps. Shared by the kernel and by shape inference so both agree on every edge.
struct SliceRange {
    /// The first index taken (clamped into the axis).
    let start: Int
    /// How many indices are taken.
    let count: Int

    init(start rawStart: Int, end rawEnd: Int, step: Int, length: Int) {
        precondition(step != 0, "a Slice step of 0 is refused before")
        func resolve(_ value: Int) -> Int { value < 0 ? value &+ length : value }
        // Distances are at most `length + 1`, and a step larger than that takes one element.
        let magnitude = step == Int.min ? Int.max : abs(step)
        if step > 0 {
            let start = min(max(resolve(rawStart), 0), length)
            let end = min(max(resolve(rawEnd), 0), length)
            self.start = start
            count = end > start ? (end - start - 1) / magnitude + 1 : 0
        } else {
            let start = min(max(resolve(rawStart), 0), length - 1)
            let end = min(max(resolve(rawEnd), -1), length - 1)
            self.start = start
            count = start > end ? (start - end - 1) / magnitude + 1 : 0
        }
    }
}
