"""Multi-crop views: counts and sizes, keyed determinism, the augmentation menu, errors,
and batches that carry views."""

from __future__ import annotations

import pickle

import pytest
import torch
from PIL import Image

from jepakit.config import convert
from jepakit.data.loader import Batch, collate
from jepakit.data.views import AUGMENTATIONS, MultiView, ViewGroup, check_views
from jepakit.errors import ConfigError

LEJEPA = [ViewGroup(size=24, count=2, crop_scale=(0.3, 1.0)),
          ViewGroup(size=10, count=6, crop_scale=(0.05, 0.3))]


def multiview(groups=LEJEPA, in_chans: int = 3) -> MultiView:
    return MultiView(groups, in_chans=in_chans, mean=[0.5] * in_chans, std=[0.25] * in_chans)


def pil_image(seed: int = 0, size=(40, 30)) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8)
    return Image.fromarray(pixels.numpy())


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("kind", ["pil", "uint8", "float"])
def test_counts_and_sizes_as_configured(kind, in_chans):
    image = {"pil": pil_image(), "uint8": torch.randint(0, 256, (in_chans, 30, 40),
                                                        dtype=torch.uint8),
             "float": torch.rand(in_chans, 30, 40)}[kind]
    views = multiview(in_chans=in_chans)(image, seed=0)
    assert [tuple(v.shape) for v in views] == [(in_chans, 24, 24)] * 2 + [(in_chans, 10, 10)] * 6
    assert all(type(v) is torch.Tensor and v.dtype == torch.float32 for v in views)
    assert multiview().num_views == 8


def test_same_seed_same_views_other_seed_other_views():
    mv, image = multiview(), pil_image()
    a, b, c = mv(image, seed=5), mv(image, seed=5), mv(image, seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(x, y) for x, y in zip(a, c))
    assert not torch.equal(a[0], a[1])  # the two global views are different crops


def test_a_seeded_call_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    multiview()(pil_image(), seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_survives_pickling_for_loader_workers():
    mv, image = multiview(), pil_image()
    clone = pickle.loads(pickle.dumps(mv))
    assert all(torch.equal(x, y) for x, y in zip(mv(image, seed=2), clone(image, seed=2)))


def whole(size: int, augment: list[str], **strengths) -> MultiView:
    """One view of the whole image at its own size (no crop), then ``augment``."""
    group = ViewGroup(size=size, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), augment=augment,
                      **strengths)
    return MultiView([group], in_chans=3, mean=[0.0] * 3, std=[1.0] * 3)


def test_no_augmentation_and_a_full_crop_give_the_image_back():
    image = torch.rand(3, 16, 16)
    torch.testing.assert_close(whole(16, [])(image, seed=0)[0], image)


@pytest.mark.parametrize(("name", "strengths", "expect"), [
    ("flip", {"flip_prob": 1.0}, lambda x: x.flip(-1)),
    ("solarize", {"solarize_prob": 1.0, "solarize_threshold": 0.5},
     lambda x: torch.where(x >= 0.5, 1 - x, x)),
    ("grayscale", {"grayscale_prob": 1.0},
     lambda x: (0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]).expand(3, -1, -1)),
])
def test_menu_entries_do_what_they_say(name, strengths, expect):
    image = torch.rand(3, 16, 16)
    torch.testing.assert_close(whole(16, [name], **strengths)(image, seed=0)[0], expect(image),
                               atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", ["color_jitter", "blur"])
def test_jitter_and_blur_change_the_pixels_only_when_on(name):
    image = torch.rand(3, 16, 16)
    prob = {"color_jitter": "jitter_prob", "blur": "blur_prob"}[name]
    assert not torch.allclose(whole(16, [name], **{prob: 1.0})(image, seed=0)[0], image)
    torch.testing.assert_close(whole(16, [name], **{prob: 0.0})(image, seed=0)[0], image)


def test_unknown_augment_name_is_a_one_line_config_error_naming_the_key():
    data = [{"size": 24, "count": 2}, {"size": 10, "augment": ["flip", "blurr"]}]
    with pytest.raises(ConfigError) as info:
        convert(data, list[ViewGroup], "views")
    message = str(info.value)
    assert "\n" not in message and message.startswith("views[1].augment: ")
    assert "'blurr'" in message and "did you mean 'blur'" in message
    assert all(name in message for name in AUGMENTATIONS)


def test_bad_crop_scale_and_empty_views_are_config_errors():
    with pytest.raises(ConfigError, match=r"views\[0\].crop_scale: need 0 < low <= high <= 1"):
        convert([{"size": 8, "crop_scale": [0.5, 0.2]}], list[ViewGroup], "views")
    with pytest.raises(ConfigError, match=r"views\[0\].jitter: need strengths >= 0"):
        convert([{"size": 8, "jitter": [0.4, -1, 0, 0]}], list[ViewGroup], "views")
    with pytest.raises(ConfigError, match="views: give at least one view group"):
        check_views([])
    with pytest.raises(ConfigError, match="1 mean and 1 std values for 3"):
        MultiView(LEJEPA, in_chans=3, mean=[0.5], std=[0.5])


def test_collate_stacks_each_view_and_images_is_the_first():
    mv = multiview()
    samples = [(mv(pil_image(i), seed=i), i) for i in range(4)]
    batch = collate(samples)
    assert batch.views is not None and len(batch.views) == 8
    assert [tuple(v.shape) for v in batch.views] == [(4, 3, 24, 24)] * 2 + [(4, 3, 10, 10)] * 6
    assert batch.images is batch.views[0] and batch.labels.tolist() == [0, 1, 2, 3]
    assert torch.equal(batch.views[3][2], samples[2][0][3])
    moved = batch.to(torch.device("cpu"))
    assert moved.views is not None and moved.images is moved.views[0]


def test_single_image_batches_are_unchanged():
    batch = collate([(torch.zeros(3, 4, 4), 1), (torch.ones(3, 4, 4), 2)])
    assert batch.views is None and batch.images.shape == (2, 3, 4, 4)
    assert Batch(images=batch.images, labels=None).to(torch.device("cpu")).views is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_separable_blur_equals_torchvisions_gaussian_blur(dtype):
    from torchvision.transforms import v2

    from jepakit.data.views import SeparableBlur

    image = torch.rand(3, 20, 27)
    if dtype == torch.uint8:
        image = (image * 255).to(torch.uint8)
    ours = SeparableBlur(1.0, (1.3, 1.3))(image)  # radius ceil(3 * 1.3) = 4
    reference = v2.GaussianBlur(9, (1.3, 1.3))(image)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours.float(), reference.float(), atol=1.0 if dtype == torch.uint8
                               else 1e-5, rtol=0)
    assert not torch.equal(ours, image)
