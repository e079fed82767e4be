"""``python -m llmrec_stream.bench``: the bench commands without the main CLI."""

from llmrec_stream.bench.cli import bench_group

if __name__ == "__main__":
    bench_group(prog_name="python -m llmrec_stream.bench")
