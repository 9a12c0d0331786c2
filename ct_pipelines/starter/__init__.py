"""Starter files for new datasets: what ingest sees in an extract (profile) and a YAML to fill in.

It sits above the stages because a trustworthy starter type is one that validation accepts: it uses the
ingest readers and the validate casts together."""
