import NNPipeCommands

NNPipeCommand.main()
