"""Apply for teacher training: owns candidates and applications, copies Publish's courses."""
