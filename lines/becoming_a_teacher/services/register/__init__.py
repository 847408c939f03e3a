"""Register trainee teachers: owns trainees, from recruitment to the award of QTS."""
