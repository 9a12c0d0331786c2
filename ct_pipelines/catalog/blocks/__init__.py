"""One module per YAML block of a dataset file, named after the stage that reads it."""
