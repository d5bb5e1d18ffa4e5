import NNPipeCore
import NNPipeKeras
import NNPipeONNX
import StageCalibrate
import StageEvaluate
import StagePrune
import StageQuantize

extension Toolkit {
    /// Everything built into this binary, in the order `nnpipe stages` lists it.
    public static var standard: Toolkit {
        let formats = FormatRegistry([ONNXFormat(), KerasHDF5Format(), KerasArchiveFormat()])
        var stages = StageRegistry()
        stages.register(PruneStage.self)
        stages.register(CalibrateStage.self)
        stages.register(QuantizeStage.self)
        stages.register(EvaluateStage.self)
        stages.register(ExportStage.self)
        return Toolkit(formats: formats, stages: stages, evaluator: RuntimeEvaluator())
    }
}
