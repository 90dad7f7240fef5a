"""FVD / FID / LPIPS machinery with small random networks: no pretrained weights, no download."""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from seg2vid.evaluation.features import (
    FeatureWeightsMissing,
    available_feature_metrics,
    extract_features,
    frechet_distance,
    gaussian_stats,
)
from seg2vid.evaluation.fid import INCEPTION_PROTOCOL, fid, load_fid_extractor
from seg2vid.evaluation.fvd import I3D_PROTOCOL, I3DConfig, I3DFeatures, fvd, load_fvd_extractor
from seg2vid.evaluation.lpips import (
    LPIPS,
    LPIPS_BACKBONES,
    load_lpips,
    load_lpips_backbone,
    load_lpips_linear,
    lpips_distance,
)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the module-scoped fixture of conftest.py)."""


# ----------------------------------------------------------------------------- Frechet distance


def test_frechet_distance_of_identical_stats_is_zero():
    features = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    mu, sigma = gaussian_stats(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    # Singular covariances (fewer samples than dimensions, the usual case for FVD) are fine too.
    mu, sigma = gaussian_stats(torch.randn(5, 20, generator=torch.Generator().manual_seed(1)))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([3.0, 1.0, 2.0])
    var1, var2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    # |mu1 - mu2|^2 + sum_i (sqrt(v1_i) - sqrt(v2_i))^2 = 25 + (4 + 1 + 0) = 30
    assert frechet_distance(mu1, torch.diag(var1), mu2, torch.diag(var2)) == pytest.approx(30.0, abs=1e-9)
    # numpy arrays work too, and the distance is symmetric.
    assert frechet_distance(
        mu2.numpy(), np.diag(var2.numpy()), mu1.numpy(), np.diag(var1.numpy())
    ) == pytest.approx(30.0, abs=1e-9)


def test_frechet_distance_matches_the_sqrtm_formula_on_full_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(2)
    a = torch.randn(40, 8, generator=g, dtype=torch.float64)
    mixing = torch.randn(8, 8, generator=g, dtype=torch.float64)
    b = torch.randn(40, 8, generator=g, dtype=torch.float64) @ mixing
    (mu1, s1), (mu2, s2) = gaussian_stats(a), gaussian_stats(b + 0.5)
    covmean = linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)


def test_gaussian_stats_is_the_unbiased_mean_and_covariance():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(3))
    mu, sigma = gaussian_stats(x)
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(mu.numpy(), x.double().numpy().mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-10)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        gaussian_stats(torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(D, D\)"):
        frechet_distance(mu, sigma, mu[:3], sigma)


# ----------------------------------------------------------------------------- FVD / FID


class TinyVideoNet(nn.Module):
    """A random 3-D conv feature extractor taking (n, 3, T, H, W) and the I3D call keywords."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, kernel_size=3, stride=2)

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ):
        features = torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
        flags = torch.tensor([[float(rescale), float(resize), float(return_features)]]).expand(x.shape[0], 3)
        return torch.cat([features, flags], dim=1)


def _clips(n=12, t=10, h=16, w=16, seed=0):
    return torch.rand(n, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _tiny_i3d():
    torch.manual_seed(0)
    return I3DFeatures(TinyVideoNet(), I3DConfig(size=16))


def test_fvd_is_zero_for_a_set_with_itself_and_grows_with_a_shift():
    extractor = _tiny_i3d()
    real = _clips()
    same = fvd(real, real, extractor, batch_size=5)
    assert abs(same["score"]) < 1e-6
    assert (same["n_real"], same["n_fake"], same["feature_dim"]) == (12, 12, 11)
    assert "MODIFIED" in same["protocol"]  # size 16, not the standard 224
    small = fvd(real, (real + 0.1).clamp(0, 1), extractor)["score"]
    large = fvd(real, (real + 0.3).clamp(0, 1), extractor)["score"]
    assert 0 < small < large
    # An iterable of batches gives the same number as one tensor.
    assert fvd(iter([real[:7], real[7:]]), real + 0.1, extractor)["score"] == pytest.approx(
        fvd(real, real + 0.1, extractor)["score"], rel=1e-9
    )


def test_i3d_preprocessing_is_explicit():
    extractor = I3DFeatures(TinyVideoNet())
    assert extractor.protocol == I3D_PROTOCOL
    x = extractor.preprocess(_clips(n=2, h=20, w=36))
    assert x.shape == (2, 3, 10, 224, 224)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    # The call keywords reach the detector: rescale=False, resize=False, return_features=True.
    out = _tiny_i3d()(_clips(n=2))
    assert out[:, -3:].tolist() == [[0.0, 0.0, 1.0]] * 2
    with pytest.raises(ValueError, match="at least 10 frames"):
        extractor(_clips(n=2, t=8))
    with pytest.raises(ValueError, match=r"\(N, T, 3, H, W\)"):
        fvd(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16), extractor)


def test_fvd_extractor_loads_a_local_torchscript_file(tmp_path):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still the format
        scripted = torch.jit.script(TinyVideoNet())
        torch.jit.save(scripted, str(tmp_path / "i3d_torchscript.pt"))
    extractor = load_fvd_extractor(tmp_path / "i3d_torchscript.pt", I3DConfig(size=16))
    real = _clips(n=4)
    torch.testing.assert_close(extractor(real), _tiny_i3d()(real))
    assert abs(fvd(real, real, extractor)["score"]) < 1e-6
    (tmp_path / "junk.pt").write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="TorchScript"):
        load_fvd_extractor(tmp_path / "junk.pt")


def test_fid_is_zero_for_a_set_with_itself_and_grows_with_a_shift():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = torch.rand(20, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    same = fid(images, images, net, batch_size=6)
    assert abs(same["score"]) < 1e-6
    assert same["n_real"] == 20 and "custom extractor" in same["protocol"]
    small = fid(images, (images + 0.1).clamp(0, 1), net)["score"]
    assert 0 < small < fid(images, (images + 0.3).clamp(0, 1), net)["score"]
    # Videos: their frames are pooled as images.
    videos = images.view(5, 4, 3, 16, 16)
    result = fid(videos, videos.flip(0), net)
    assert result["n_real"] == 20 and abs(result["score"]) < 1e-6


def test_extract_features_runs_without_gradients_and_checks_the_output():
    net = nn.Linear(4, 3)
    features = extract_features(torch.rand(7, 4), net, batch_size=3)
    assert features.shape == (7, 3) and features.dtype == torch.float64 and not features.requires_grad
    with pytest.raises(ValueError, match=r"\(n, D\)"):
        extract_features(torch.rand(5, 4), lambda x: x.sum(dim=1))
    with pytest.raises(ValueError, match="empty"):
        extract_features(torch.rand(0, 4), net)


def test_inception_loader_accepts_a_torchvision_state_dict(tmp_path):
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(reference.state_dict(), tmp_path / "inception.pth")
    extractor = load_fid_extractor(tmp_path / "inception.pth")
    assert extractor.protocol == INCEPTION_PROTOCOL
    assert "NOT comparable" in INCEPTION_PROTOCOL
    loaded, saved = extractor.net.Mixed_7c.branch1x1.conv.weight, reference.Mixed_7c.branch1x1.conv.weight
    torch.testing.assert_close(loaded, saved)
    extractor.train()
    assert not extractor.net.training
    features = extractor(torch.rand(1, 3, 40, 50))  # resized to 299 inside
    assert features.shape == (1, 2048) and torch.isfinite(features).all()
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "foo": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"missing keys .*unexpected keys \['foo'\]"):
        load_fid_extractor(tmp_path / "wrong.pth")


# ----------------------------------------------------------------------------- LPIPS


def _tiny_lpips(seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    features = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU()
    )
    linear = [torch.rand(1, 4, 1, 1, generator=g), torch.rand(1, 6, 1, 1, generator=g)]
    return LPIPS(features, (2, 4), linear, "tiny random")


def test_lpips_is_zero_for_identical_inputs_symmetric_and_positive_otherwise():
    model = _tiny_lpips()
    x, y = _clips(n=2, t=3, h=12, w=12), _clips(n=2, t=3, h=12, w=12, seed=1)
    assert (model(x, x) == 0).all()
    distance = model(x, y)
    assert distance.shape == (2, 3) and (distance > 0).all()
    torch.testing.assert_close(model(y, x), distance)
    result = lpips_distance(x, y, model, batch_size=4)
    torch.testing.assert_close(result["score"], distance)
    assert "tiny random" in result["protocol"]
    assert model(x[:, 0], y[:, 0]).shape == (2,)


def test_lpips_scaling_layer_and_weights_give_a_hand_computed_distance():
    # Identity "backbone", one tap: pixels (x - mean) / std of ImageNet (= the LPIPS scaling layer
    # on 2x - 1) are unit-normalised over channels, then squared differences are weighted.
    weight = torch.tensor([0.5, 2.0, 7.0]).view(1, 3, 1, 1)
    model = LPIPS(nn.Sequential(nn.Identity()), (1,), [weight])
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = (mean + std * torch.tensor([1.0, 0.0, 0.0])).view(1, 3, 1, 1).expand(1, 3, 4, 4)  # scaled: (1, 0, 0)
    y = (mean + std * torch.tensor([0.0, 3.0, 0.0])).view(1, 3, 1, 1).expand(1, 3, 4, 4)  # scaled: (0, 3, 0)
    assert model(x, y).item() == pytest.approx(0.5 + 2.0, rel=1e-5)


def test_lpips_rejects_bad_weights_and_shapes():
    features = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    with pytest.raises(ValueError, match="non-negative"):
        LPIPS(features, (2,), [-torch.ones(1, 4, 1, 1)])
    with pytest.raises(ValueError, match="one linear weight per tap"):
        LPIPS(features, (1, 2), [torch.ones(1, 4, 1, 1)])
    with pytest.raises(ValueError, match="expects 5"):
        LPIPS(features, (2,), [torch.ones(1, 5, 1, 1)])(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        _tiny_lpips()(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))


def _lpips_file(channels, dropout_layout=True):
    index = 1 if dropout_layout else 0
    g = torch.Generator().manual_seed(5)
    return {
        f"lin{k}.model.{index}.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(channels)
    }


def test_lpips_linear_loader_round_trips_the_lpips_project_format(tmp_path):
    channels = LPIPS_BACKBONES["alex"][1]
    assert channels == (64, 192, 384, 256, 256)
    state = _lpips_file(channels)
    torch.save(state, tmp_path / "alex.pth")
    weights = load_lpips_linear(tmp_path / "alex.pth", channels)
    for k, weight in enumerate(weights):
        torch.testing.assert_close(weight, state[f"lin{k}.model.1.weight"])
    assert len(load_lpips_linear(tmp_path / "alex.pth")) == 5  # channels as found
    torch.save(_lpips_file(channels, dropout_layout=False), tmp_path / "nodrop.pth")
    assert len(load_lpips_linear(tmp_path / "nodrop.pth", channels)) == 5
    del state["lin4.model.1.weight"]
    torch.save({**state, "extra": torch.zeros(1)}, tmp_path / "broken.pth")
    keys = r"missing keys \['lin4.model.1.weight'\].*unexpected keys \['extra'\]"
    with pytest.raises(ValueError, match=keys):
        load_lpips_linear(tmp_path / "broken.pth", channels)
    with pytest.raises(ValueError, match=r"lin0 has shape \(1, 64, 1, 1\), expected \(1, 3, 1, 1\)"):
        load_lpips_linear(tmp_path / "alex.pth", (3, 192, 384, 256, 256))


def test_load_lpips_builds_alexnet_from_two_local_files(tmp_path):
    with torch.device("meta"):
        features = torchvision.models.alexnet(weights=None).features
    features = features.to_empty(device="cpu")
    g = torch.Generator().manual_seed(6)
    state = {
        f"features.{k}": torch.randn(v.shape, generator=g) * 0.05 for k, v in features.state_dict().items()
    }
    state["classifier.1.weight"] = torch.zeros(2, 2)  # the classifier is ignored
    torch.save(state, tmp_path / "alexnet.pth")
    torch.save(_lpips_file(LPIPS_BACKBONES["alex"][1]), tmp_path / "alex.pth")
    model = load_lpips(tmp_path / "alexnet.pth", tmp_path / "alex.pth", net="alex")
    torch.testing.assert_close(model.features[3].weight, state["features.3.weight"])
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert (model(x, x) == 0).all() and (model(x, y) > 0).all()
    assert "alexnet.pth" in model.protocol
    torch.save({"0.weight": torch.zeros(1), "bogus": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"missing keys \['0.bias'.*unexpected keys \['bogus'\]"):
        load_lpips_backbone(tmp_path / "wrong.pth", "alex")


# ----------------------------------------------------------------------------- availability


def test_loaders_never_download_and_name_what_is_missing(tmp_path):
    with pytest.raises(FeatureWeightsMissing, match="i3d_torchscript.pt"):
        load_fvd_extractor(None)
    with pytest.raises(FeatureWeightsMissing, match="Inception-v3"):
        load_fid_extractor(None)
    with pytest.raises(FeatureWeightsMissing, match="linear_path"):
        load_lpips(tmp_path / "alexnet.pth", None)
    absent = tmp_path / "absent.pt"
    for load in (load_fvd_extractor, load_fid_extractor, load_lpips_linear, load_lpips_backbone):
        with pytest.raises(FileNotFoundError, match="absent.pt"):
            load(absent)
    reasons = available_feature_metrics()
    assert set(reasons) == {"fvd", "fid", "lpips"}
    assert "i3d_path" in reasons["fvd"] and "inception_path" in reasons["fid"]
    assert "lpips_backbone_path" in reasons["lpips"]
    (tmp_path / "present.pt").write_bytes(b"")
    assert available_feature_metrics(i3d_path=tmp_path / "present.pt", inception_path=absent)["fvd"] is None
    assert "not a file" in available_feature_metrics(inception_path=absent)["fid"]


def test_protocols_state_their_settings():
    for fact in ("224", "[-1, 1]", "return_features=True", "10 frames"):
        assert fact in I3D_PROTOCOL
    for fact in ("299", "2048", "torchvision", "ImageNet"):
        assert fact in INCEPTION_PROTOCOL
