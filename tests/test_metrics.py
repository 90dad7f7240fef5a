"""End-point error, mask scores and the per-frame video scores against hand-computed numbers."""

import math

import pytest
import torch

from seg2vid.metrics import (
    PSNR_CAP_DB,
    SSIM_SETTINGS,
    best_index,
    best_of_n,
    diversity,
    end_point_error,
    frame_end_point_error,
    frame_mask_iou,
    mask_confusion,
    mask_iou,
    mask_precision,
    mask_recall,
    mask_scores,
    mean_of_n,
    psnr,
    ssim,
    summarize,
    video_scores,
)


def test_epe_of_a_known_shift():
    true = torch.randn(2, 2, 6, 7)
    pred = true.clone()
    pred[:, 0] += 3.0
    pred[:, 1] -= 4.0
    epe = end_point_error(pred, true)
    assert epe.dim() == 0
    torch.testing.assert_close(epe, torch.tensor(5.0))
    assert end_point_error(true, true) == 0


def test_epe_mask_selects_pixels_and_broadcasts():
    true = torch.zeros(1, 3, 2, 4, 4)  # a (B, T, 2, H, W) sequence
    pred = true.clone()
    pred[..., 0, :, :2] = 1.0  # 1 px off on the left half
    mask = torch.zeros(1, 1, 1, 4, 4)
    mask[..., :2] = 1.0  # one mask for every frame
    assert end_point_error(pred, true, mask).item() == 1.0
    assert end_point_error(pred, true, 1 - mask).item() == 0.0
    assert end_point_error(pred, true).item() == 0.5
    assert math.isnan(end_point_error(pred, true, torch.zeros(1, 1, 1, 4, 4)).item())


def test_epe_rejects_bad_shapes():
    with pytest.raises(ValueError):
        end_point_error(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError):
        end_point_error(torch.zeros(1, 3, 3, 3), torch.zeros(1, 3, 3, 3))


def test_mask_scores_count_pixels():
    pred = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 3)
    true = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 3)
    assert mask_confusion(pred, true) == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}
    assert mask_precision(pred, true) == pytest.approx(2 / 3)
    assert mask_recall(pred, true) == pytest.approx(2 / 3)
    assert mask_iou(pred, true) == pytest.approx(2 / 4)
    assert mask_scores(pred, true) == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "iou": pytest.approx(0.5),
    }
    # Soft masks are read as binary at 0.5.
    assert mask_confusion(pred * 0.9, true * 0.6) == mask_confusion(pred, true)


def test_mask_scores_are_nan_when_undefined():
    empty = torch.zeros(1, 1, 3, 3)
    assert math.isnan(mask_precision(empty, torch.ones_like(empty)))
    assert mask_recall(empty, torch.ones_like(empty)) == 0.0
    assert math.isnan(mask_recall(torch.ones_like(empty), empty))
    assert math.isnan(mask_iou(empty, empty))
    with pytest.raises(ValueError):
        mask_confusion(empty, torch.zeros(1, 1, 3, 4))


# ----------------------------------------------------------------------------- per-frame scores


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the module-scoped fixture of conftest.py)."""


def _video(b=2, t=3, c=3, h=16, w=16, seed=0):
    return torch.rand(b, t, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_identical_videos_score_perfectly():
    frames = _video()
    flow = torch.randn(2, 2, 2, 16, 16)
    visible = (torch.rand(2, 2, 1, 16, 16) > 0.3).float()
    scores = video_scores(frames, frames, flow, flow, visible, visible)
    assert set(scores) == {"psnr", "ssim", "epe", "mask_iou", "occluded_iou"}
    assert scores["psnr"].shape == scores["ssim"].shape == (2, 3)
    assert torch.isinf(scores["psnr"]).all() and (scores["psnr"] > 0).all()
    torch.testing.assert_close(scores["ssim"], torch.ones(2, 3))
    assert scores["epe"].shape == (2, 2) and (scores["epe"] == 0).all()
    assert (scores["mask_iou"] == 1).all() and (scores["occluded_iou"] == 1).all()


def test_psnr_of_a_known_constant_error_per_frame():
    true = torch.full((1, 3, 3, 8, 8), 0.25)
    errors = torch.tensor([0.5, -0.125, 2.0**-10])  # exact in binary: the MSE is exactly e^2
    pred = true + errors.view(1, 3, 1, 1, 1)
    expected = 20 * torch.log10(1 / errors.abs().double())
    torch.testing.assert_close(psnr(pred, true).double(), expected.view(1, 3), rtol=1e-6, atol=0)
    # data_range scales the peak: range 2 adds 20 log10(2) dB.
    wider = (expected + 20 * math.log10(2)).view(1, 3)
    torch.testing.assert_close(psnr(pred, true, data_range=2.0).double(), wider, rtol=1e-6, atol=0)


def test_images_give_one_score_per_image():
    images = torch.rand(4, 3, 12, 12)
    noisy = (images + 0.1 * torch.randn_like(images)).clamp(0, 1)
    assert psnr(noisy, images).shape == (4,)
    assert ssim(noisy, images).shape == (4,)


def _skimage_ssim(pred: torch.Tensor, true: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(
        pred.double().numpy(), true.double().numpy(), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=0,
    )


def test_ssim_is_wang_et_al_as_in_skimage_and_drops_with_noise():
    assert SSIM_SETTINGS["kernel_size"] == 11 and SSIM_SETTINGS["sigma"] == 1.5
    assert SSIM_SETTINGS["border_crop"] == 5 and SSIM_SETTINGS["covariance"] == "population"
    g = torch.Generator().manual_seed(1)
    true = torch.rand(3, 3, 24, 31, generator=g)
    pred = torch.rand(3, 3, 24, 31, generator=g)
    noise = torch.randn(3, 3, 24, 31, generator=g)
    mild = ssim((true + 0.05 * noise).clamp(0, 1), true)
    strong = ssim((true + 0.3 * noise).clamp(0, 1), true)
    assert (strong < mild).all() and (mild < 1).all()
    for a in (pred, (true + 0.05 * noise).clamp(0, 1)):
        ours = ssim(a, true)
        for i in range(3):
            assert abs(ours[i].item() - _skimage_ssim(a[i], true[i])) < 1e-4


def test_ssim_matches_skimage_on_a_real_frame_pair():
    # two frames of a synthetic street clip, 128x256, and their 1-frame copy baseline
    from seg2vid.data.synthetic import SceneConfig, render_clip

    clip = render_clip(SceneConfig(height=128, width=256, frames=2), seed=3)["frames"]  # (T+1, 3, H, W)
    a, b = clip[0], clip[2]
    ours = ssim(a[None], b[None]).item()
    assert abs(ours - _skimage_ssim(a, b)) < 1e-4
    assert 0 < ours < 1
    assert ssim(b[None], b[None]).item() == pytest.approx(1.0, abs=1e-6)


def test_pixel_scores_reject_bad_shapes_clearly():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 2, 3, 16, 16), torch.rand(1, 3, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        ssim(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="11-pixel window"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(TypeError, match="float"):
        psnr(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="flow_true"):
        video_scores(_video(), _video(), flow_pred=torch.zeros(2, 2, 2, 16, 16))
    with pytest.raises(ValueError, match="visible_true"):
        video_scores(_video(), _video(), visible_pred=torch.zeros(2, 2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        video_scores(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))


def test_epe_per_frame_of_a_known_shift_and_valid_mask():
    true = torch.randn(2, 3, 2, 6, 7)
    pred = true.clone()
    pred[:, :, 0] += 3.0
    pred[:, :, 1] -= 4.0
    pred[:, 2, :, :, :3] = true[:, 2, :, :, :3]  # frame 2: left 3 columns exact
    valid = torch.ones(2, 3, 1, 6, 7)
    valid[:, 1] = 0  # frame 1: nothing valid
    epe = frame_end_point_error(pred, true, valid)
    assert epe.shape == (2, 3)
    torch.testing.assert_close(epe[:, 0], torch.full((2,), 5.0))
    assert torch.isnan(epe[:, 1]).all()
    torch.testing.assert_close(epe[:, 2], torch.full((2,), 5.0 * 4 / 7))
    scores = video_scores(_video(), _video(seed=1), pred, true, valid=valid)
    torch.testing.assert_close(scores["epe"], epe, equal_nan=True)
    with pytest.raises(ValueError, match="broadcast"):
        frame_end_point_error(pred, true, torch.ones(2, 3, 1, 5, 7))


def test_frame_mask_iou_counts_each_frame():
    pred = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 2, 2)
    true = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 2, 2)
    iou = frame_mask_iou(pred, true)
    assert iou[0, 0].item() == pytest.approx(1 / 3)
    assert math.isnan(iou[0, 1].item())  # both empty
    frames = torch.rand(1, 2, 3, 11, 11)
    scores = video_scores(frames, frames, visible_pred=1 - pred, visible_true=1 - true)
    assert scores["occluded_iou"][0, 0].item() == pytest.approx(1 / 3)
    assert scores["mask_iou"][0, 1].item() == 1.0


def test_occluded_iou_scores_the_occluded_pixels_not_the_visible_ones():
    # Asymmetric masks, where the two IoUs differ: 4 of 16 pixels truly occluded (a 2x2 block);
    # the prediction finds 2 of them and wrongly marks 2 visible pixels occluded.
    visible_true = torch.ones(1, 1, 1, 4, 4)
    visible_true[..., :2, :2] = 0
    visible_pred = torch.ones(1, 1, 1, 4, 4)
    visible_pred[..., 0, :2] = 0  # found: 2 of the 4 occluded pixels
    visible_pred[..., 3, 2:] = 0  # false alarms: 2 visible pixels
    frames = torch.rand(1, 1, 3, 11, 11)
    scores = video_scores(frames, frames, visible_pred=visible_pred,
                          visible_true=visible_true)
    # occluded: tp 2, fp 2, fn 2 -> 2 / 6; visible: 12 predicted, 12 true, 10 shared -> 10 / 14
    assert scores["occluded_iou"][0, 0].item() == pytest.approx(2 / 6)
    assert scores["mask_iou"][0, 0].item() == pytest.approx(10 / 14)


def test_best_of_n_picks_per_input_by_the_frame_average():
    # 3 samples, 2 inputs, 2 frames.
    scores = torch.tensor(
        [
            [[10.0, 30.0], [5.0, 5.0]],  # sample 0: input 0 mean 20, input 1 mean 5
            [[25.0, 10.0], [9.0, 1.0]],  # sample 1: input 0 mean 17.5 (best frame 0), input 1 mean 5
            [[12.0, 12.0], [4.0, 8.0]],  # sample 2: input 0 mean 12, input 1 mean 6
        ]
    )
    assert best_index(scores).tolist() == [0, 2]
    torch.testing.assert_close(best_of_n(scores), torch.tensor([[10.0, 30.0], [4.0, 8.0]]))
    # Errors: lower is better.
    assert best_index(scores, higher_is_better=False).tolist() == [2, 0]
    lowest = torch.tensor([[12.0, 12.0], [5.0, 5.0]])
    torch.testing.assert_close(best_of_n(scores, higher_is_better=False), lowest)
    # An exact sample (inf PSNR) wins; a sample without any defined score never does.
    psnrs = torch.tensor([[math.inf, 30.0], [math.nan, math.nan], [40.0, 40.0]]).unsqueeze(2)  # (3, 2, 1)
    assert best_index(psnrs).tolist() == [0, 2]
    # (N, B) per-input scores and the mean over samples.
    per_input = scores.mean(dim=2)
    torch.testing.assert_close(best_of_n(per_input), torch.tensor([20.0, 6.0]))
    torch.testing.assert_close(mean_of_n(scores), scores.mean(dim=0))
    with pytest.raises(ValueError, match=r"\(N, B, T\)"):
        best_of_n(torch.zeros(4))


def test_diversity_is_the_mean_pairwise_l1_distance():
    same = _video(b=2, t=2, h=4, w=4).unsqueeze(0).expand(3, -1, -1, -1, -1, -1)
    assert diversity(same).tolist() == [0.0, 0.0]
    d = 0.25
    two = torch.stack([torch.full((2, 2, 3, 4, 4), 0.5), torch.full((2, 2, 3, 4, 4), 0.5 + d)])
    torch.testing.assert_close(diversity(two), torch.full((2,), d))
    three = torch.stack([torch.full((1, 2, 3, 4, 4), v) for v in (0.0, d, 2 * d)])
    torch.testing.assert_close(diversity(three), torch.tensor([4 * d / 3]))  # pairs: d, 2d, d
    with pytest.raises(ValueError, match="N >= 2"):
        diversity(torch.zeros(1, 2, 2, 3, 4, 4))


def test_summarize_caps_inf_psnr_ignores_nan_and_gives_per_frame_means():
    per_frame = {
        "psnr": torch.tensor([[math.inf, 20.0], [30.0, 40.0]]),
        "epe": torch.tensor([[1.0, math.nan], [3.0, 5.0]]),
        "lpips": torch.tensor([0.2, 0.4]),
    }
    summary = summarize(per_frame)
    psnr_summary = summary["psnr"]
    assert psnr_summary["per_frame"] == [pytest.approx((PSNR_CAP_DB + 30) / 2), 30.0]
    assert psnr_summary["mean"] == pytest.approx(((PSNR_CAP_DB + 20) / 2 + 35) / 2)
    assert psnr_summary["std"] == pytest.approx(torch.tensor([(PSNR_CAP_DB + 20) / 2, 35.0]).std().item())
    assert psnr_summary["n"] == 2
    assert psnr_summary["sem"] == pytest.approx(psnr_summary["std"] / math.sqrt(2))  # standard error
    assert summary["epe"]["mean"] == pytest.approx((1.0 + 4.0) / 2)
    assert summary["epe"]["per_frame"] == [2.0, 5.0]
    assert summary["lpips"]["mean"] == pytest.approx(0.3)
    assert summary["lpips"]["per_frame"] == [pytest.approx(0.3)]
    single = summarize({"ssim": torch.tensor([[0.5, 0.7]])})["ssim"]
    assert single["mean"] == pytest.approx(0.6) and math.isnan(single["std"]) and math.isnan(single["sem"])
    with pytest.raises(ValueError, match="psnr"):
        summarize({"psnr": torch.zeros(1, 2, 3)})


def test_psnr_per_clip_pools_the_frames_squared_errors():
    true = torch.zeros(2, 2, 3, 4, 4)
    pred = true.clone()
    pred[0, 0] = 0.1  # clip 0: an error of 0.1 in frame 0, none in frame 1 -> MSE 0.01 / 2
    pred[1] = 0.01  # clip 1: 0.01 everywhere -> 40 dB
    scores = psnr(pred, true, reduce="clip")
    assert scores.shape == (2,) and scores.dtype == torch.float32
    assert scores.tolist() == pytest.approx([20 + 10 * math.log10(2), 40.0], abs=1e-4)
    # not the mean of the frames' PSNRs (frame 1 of clip 0 is exact: +inf)
    assert torch.isinf(psnr(pred, true)[0, 1])
    with pytest.raises(ValueError, match="videos"):
        psnr(pred[:, 0], true[:, 0], reduce="clip")
    with pytest.raises(ValueError, match="reduce"):
        psnr(pred, true, reduce="pixel")


def test_psnr_cap_bounds_an_exact_match_only():
    true = torch.rand(1, 2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    pred = true.clone()
    pred[0, 1] += 0.1
    capped = psnr(pred, true, cap_db=PSNR_CAP_DB)
    assert capped[0, 0].item() == PSNR_CAP_DB and capped[0, 1].item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(true, true, reduce="clip", cap_db=PSNR_CAP_DB).item() == PSNR_CAP_DB


def test_masked_psnr_counts_only_the_masked_pixels():
    true = torch.zeros(1, 2, 3, 4, 4)
    pred = true.clone()
    pred[..., :2, :] = 0.1  # an error of 0.1 on the top half only
    mask = torch.zeros(1, 2, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, :, :2, :] = True  # frame 0: the top half; frame 1: nothing
    scores = psnr(pred, true, mask=mask, cap_db=PSNR_CAP_DB)
    assert scores[0, 0].item() == pytest.approx(20.0)  # 20 log10(1 / 0.1)
    assert math.isnan(scores[0, 1].item())  # no masked pixel: undefined, not capped
    # per clip: frame 0's masked pixels alone
    assert psnr(pred, true, mask=mask, reduce="clip").item() == pytest.approx(20.0)
    # a float mask is read at 0.5, like the other mask scores
    assert psnr(pred, true, mask=mask.float() * 0.9)[0, 0].item() == pytest.approx(20.0)
