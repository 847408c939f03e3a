"""What stops a scenario: a step that cannot be done, or a run that cannot start."""


class StepError(RuntimeError):
    """A step could not do what it says: the story cannot go on."""


class RunError(RuntimeError):
    """The scenario cannot run as asked."""
