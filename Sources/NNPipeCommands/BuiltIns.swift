import NNPipeCore
import NNPipeKeras
import NNPipeONNX
import StageEvaluate

extension Toolkit {
    /// Everything built into this binary.
    public static var standard: Toolkit {
        let formats = FormatRegistry([ONNXFormat(), KerasHDF5Format(), KerasArchiveFormat()])
        var stages = StageRegistry()
        stages.register(EvaluateStage.self)
        stages.register(ExportStage.self)
        return Toolkit(formats: formats, stages: stages, evaluator: RuntimeEvaluator())
    }
}
