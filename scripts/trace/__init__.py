"""Reading traces (docs/trace-format.md): the schema check, live merging, `explain`."""
