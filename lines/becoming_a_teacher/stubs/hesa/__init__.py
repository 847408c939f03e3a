"""HESA's ITT collection: owns trainees' ITT records, keyed by HUSID, served as census XML."""
