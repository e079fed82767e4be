"""Benchmarks: commands that write their figures (JSON + PNG) and print a table.

Import `llmrec_stream.bench.cli.bench_group` to mount the commands; nothing heavy is imported
until a command runs. Benchmarks are not timed tests: the test suite only checks that each one
runs on a tiny input and writes well-formed output.
"""
