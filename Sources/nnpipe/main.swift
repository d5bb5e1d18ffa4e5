import NNPipeCommands

NNPipeCommand.main(stages: [])
