import Foundation
import NNPipeCore

/// Checked sizes of the shapes a model asks for. Shapes come from the model's own constants and
/// from data (a Reshape target, ConstantOfShape's input, Resize's scales), so a hostile or broken
/// file can ask for a negative dimension or for more elements than an Int holds; unchecked, the
/// product traps or the allocation aborts the process. Every shape a kernel or shape inference
/// makes from values goes through `check` first and fails as one line naming the node instead.
public enum TensorSize {
    /// The most bytes one tensor may take: the machine's physical memory. A tensor larger than
    /// that cannot be computed here, and asking for it is better refused than swapped to death.
    public static let byteLimit: Int = {
        let memory = ProcessInfo.processInfo.physicalMemory
        return memory > UInt64(Int.max) ? Int.max : Int(memory)
    }()

    /// The element count of `shape`, or nil where a dimension is negative or the count overflows.
    public static func elements(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Throws unless `shape` has no negative dimension and a `dataType` tensor of it fits in memory.
    static func check(_ shape: [Int], _ dataType: DataType?, what: String = "shape") throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw KernelError("\(what) \(shape) has a negative dimension") }
        let elementSize = dataType.map(RuntimeTensor.elementSize(of:)) ?? 1
        guard let count = elements(shape), case (let bytes, false) = count.multipliedReportingOverflow(by: elementSize),
              bytes <= byteLimit
        else {
            throw KernelError("\(what) \(shape) needs more memory than this machine's \(byteLimit / (1 << 30)) GiB", code: .invalidModel)
        }
    }
}
