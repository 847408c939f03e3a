"""Running a whole line: native processes, supervision, compose, and driving it over HTTP."""
