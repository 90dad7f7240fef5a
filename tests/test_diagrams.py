"""The method's figures: shapes read from a real forward pass, figures that draw."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure

from seg2vid.diagrams import BLOCKS, pipeline_figure, stage2_figure, stage2_shapes
from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return Seg2Vid(
        Seg2VidConfig(
            height=32, width=48, frames=2, widths=(4, 8, 8, 8), motion_widths=(4, 4, 4, 4),
            refine_widths=(4, 4, 4), latent_dim=3,
        )
    )


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_stage2_shapes_follow_the_model(small_model):
    s = stage2_shapes(small_model, batch_size=2)
    assert set(s) == {*BLOCKS, "clip"}
    assert s["clip"]["frames"] == (2, 3, 3, 32, 48) and s["clip"]["labels"] == (2, 20, 32, 48)
    assert s["image_encoder"]["inputs"][0] == (2, 23, 32, 48)  # RGB + one-hot
    assert s["image_encoder"]["output"] == [(2, 4, 16, 24), (2, 8, 8, 12), (2, 8, 4, 6), (2, 8, 2, 3)]
    assert s["background_encoder"]["output"] == [(2, 3), (2, 3)]
    assert s["decoder"]["output"][0] == (2, 2, 2, 32, 48) and s["decoder"]["output"][2] == (2, 2, 1, 32, 48)
    assert s["refiner"]["output"] == (4, 3, 32, 48)  # B * T frames
    assert s["clip"]["z"] == (2, 6)


def test_stage2_shapes_leave_the_global_rng_and_mode_alone(small_model):
    small_model.train()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    stage2_shapes(small_model)
    assert torch.equal(torch.rand(3), expected)
    assert small_model.training


def test_figures_draw_with_the_shapes(small_model):
    fig = stage2_figure(small_model)
    text = _texts(fig)
    assert "(1, 2, 2, 32, 48)" in text and "(1, 6)" in text and "in (1, 23, 32, 48)" in text
    pipeline = pipeline_figure(height=32, width=48, frames=2)
    assert "(2, 3, 32, 48)" in _texts(pipeline)
    for figure in (fig, pipeline):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")
