// StageFineTune: see issue 8.
