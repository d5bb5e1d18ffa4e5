import NNPipeCommands
import NNPipeCore
import RoundStage

// The full nnpipe command line, with the `round` stage built in next to the standard ones.
NNPipeCommand.main(stages: [StageDescriptor(RoundStage.self)])
