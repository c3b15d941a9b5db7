"""One library call per command: each runs a whole job, writes its files and returns a result object.

The house rule: a stage computes a frozen result; `ecglens.report` renders it; a module here runs it as one
job (one module per command group); `ecglens.cli` parses options, calls one ``run_*`` here and prints the
result's ``lines()``. An analysis that trains models is a slice of `ecglens.studies`. Nothing here parses
arguments or prints. `ecglens.commands.data` and `ecglens.commands.models` load neither torch nor matplotlib
(an import-linter contract and a start-up test keep it so).
"""
