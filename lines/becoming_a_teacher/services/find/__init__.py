"""Find postgraduate teacher training: owns nothing, searches its copies of Publish's courses."""
