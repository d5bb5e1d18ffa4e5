// StageCalibrate: see its issue.
