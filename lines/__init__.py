"""Lines the kernel runs, each a package registered under the `serviceline.lines` entry points."""
