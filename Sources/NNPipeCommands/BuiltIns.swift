import NNPipeCore
import NNPipeONNX

extension Toolkit {
    /// Everything built into this binary.
    public static var standard: Toolkit {
        let formats = FormatRegistry([ONNXFormat()])
        var stages = StageRegistry()
        stages.register(ExportStage.self)
        return Toolkit(formats: formats, stages: stages, evaluator: nil)
    }
}
