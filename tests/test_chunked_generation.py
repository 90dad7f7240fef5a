"""generate() samples in chunks: memory flat in the number of videos, results reproducible."""

import numpy as np
import pytest
import torch

from seg2vid import cli
from seg2vid.generation.pipeline import DEFAULT_CHUNK, Pipeline


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_shipped(device="cpu")


def run(pipeline, n, chunk, seed=0):
    labels = np.zeros((64, 64), np.int64)
    labels[40:] = 1  # sidewalk below the road
    return pipeline.generate(labels, n_samples=n, generator=torch.Generator().manual_seed(seed),
                             chunk_size=chunk)


def test_one_chunk_is_the_unchunked_batch(pipeline):
    assert torch.equal(run(pipeline, 4, 4), run(pipeline, 4, 100))


def test_chunks_are_reproducible_and_start_like_one_batch(pipeline, monkeypatch):
    sizes = []
    sample = pipeline.stage2.sample

    def spy(*args, n_samples, **kwargs):
        sizes.append(n_samples)
        return sample(*args, n_samples=n_samples, **kwargs)

    monkeypatch.setattr(pipeline.stage2, "sample", spy)
    chunked = run(pipeline, 5, 2)
    assert sizes == [2, 2, 1], "never more than chunk_size futures in one batch"
    assert chunked.shape == (5, pipeline.frames + 1, 3, 64, 64)
    assert torch.equal(chunked, run(pipeline, 5, 2)), "same seed, same chunk size: same videos"
    assert torch.equal(chunked[:2], run(pipeline, 2, 2)), "the first chunk is generate(n=chunk)"
    assert torch.equal(chunked[:, 0], chunked[:1, 0].expand_as(chunked[:, 0])), "one first frame"
    assert not torch.equal(chunked[0], chunked[2]), "later chunks are new samples, not copies"


def test_the_cli_default_is_the_pipeline_default_and_zero_is_refused(capsys):
    assert cli.DEFAULT_CHUNK_SIZE == DEFAULT_CHUNK
    with pytest.raises(SystemExit):
        cli.main(["generate", "--labels", "x.png", "--chunk-size", "0"])
    assert "--chunk-size" in capsys.readouterr().err
