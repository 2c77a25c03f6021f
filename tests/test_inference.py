import numpy as np
import pytest

from stl_denoise.data import sample_images
from stl_denoise.inference import denoise_image, denoise_rgb, dihedral, tile_spans, undo_dihedral


def photo(height, width):
    return sample_images()["astronaut"][:height, :width].astype(np.float32)


def single_pass(model, image):
    """Reflect-pad bottom/right to multiples of 16, one model call, crop back."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, -height % 16), (0, -width % 16), (0, 0)), mode="reflect")
    return np.asarray(model(padded[None]))[0][:height, :width]


@pytest.mark.parametrize("length, tile, margin", [(16, 64, 16), (400, 128, 32), (512, 160, 64), (1040, 1024, 64)])
def test_tile_spans_cover_contiguously_with_margins(length, tile, margin):
    spans = tile_spans(length, tile, margin)
    assert spans[0][1] == 0 and spans[-1][2] == length
    for (start, keep_start, keep_end), following in zip(spans, spans[1:] + [None]):
        assert start % 16 == 0 and start + min(tile, length) <= length
        assert keep_start < keep_end
        if following:
            assert following[1] == keep_end
        assert keep_start == 0 or keep_start - start >= margin
        assert keep_end == length or start + tile - keep_end >= margin


@pytest.mark.parametrize("height, width", [(37, 53), (101, 67), (48, 80)])
def test_padding_preserves_shape_and_matches_a_single_pass(random_denoiser, height, width):
    image = photo(height, width)
    out = denoise_rgb(random_denoiser, image)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, single_pass(random_denoiser, image), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("height, width", [(203, 317), (331, 129)])
def test_tiling_matches_a_single_pass(random_denoiser, height, width):
    image = photo(height, width)
    whole = single_pass(random_denoiser, image)
    tiled = denoise_rgb(random_denoiser, image, tile=128, margin=48)
    assert np.abs(whole - image).max() > 10  # the untrained net changes the image a lot
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-2)
    # With too thin a margin the seams show: the comparison above can fail.
    thin = denoise_rgb(random_denoiser, image, tile=64, margin=16)
    assert np.abs(thin - whole).max() > 0.1


def test_dihedral_transforms_are_the_8_distinct_ones_and_invert():
    image = photo(5, 7)
    seen = set()
    for index in range(8):
        moved = dihedral(image, index)
        seen.add(moved.tobytes() + bytes(moved.shape))
        np.testing.assert_array_equal(undo_dihedral(moved, index), image)
    assert len(seen) == 8


@pytest.mark.parametrize("height, width", [(37, 53), (48, 80)])
def test_self_ensemble_is_the_mean_over_flips_and_rotations(random_denoiser, height, width):
    image = photo(height, width)
    by_hand = np.mean([undo_dihedral(single_pass(random_denoiser, np.ascontiguousarray(dihedral(image, index))), index)
                       for index in range(8)], axis=0)
    ensembled = denoise_rgb(random_denoiser, image, self_ensemble=True)
    assert ensembled.shape == image.shape
    np.testing.assert_allclose(ensembled, by_hand, rtol=1e-5, atol=1e-3)
    # The untrained net is not flip-invariant, so the ensemble really differs from one pass.
    assert np.abs(ensembled - denoise_rgb(random_denoiser, image)).max() > 1.0


def test_layouts_and_types_are_kept(random_denoiser):
    rgb = photo(40, 56).astype(np.uint8)
    grey = rgb[..., 0]
    alpha = np.random.default_rng(0).integers(0, 256, grey.shape, dtype=np.uint8)
    out_grey = denoise_image(random_denoiser, grey)
    assert out_grey.shape == grey.shape and out_grey.dtype == np.uint8
    rgba = np.dstack([rgb, alpha])
    out_rgba = denoise_image(random_denoiser, rgba)
    assert out_rgba.shape == rgba.shape
    np.testing.assert_array_equal(out_rgba[..., 3], alpha)
    np.testing.assert_array_equal(out_rgba[..., :3], denoise_image(random_denoiser, rgb))
    grey16 = grey.astype(np.uint16) * 257
    out16 = denoise_image(random_denoiser, grey16)
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - out_grey).max() <= 1.0
    out_float = denoise_image(random_denoiser, rgb.astype(np.float32))
    assert out_float.dtype == np.float32 and 0 <= out_float.min() and out_float.max() <= 255


@pytest.mark.parametrize("image, message", [
    (np.zeros((1, 1, 3), np.uint8), "1x1"),
    (np.zeros((32, 32, 5), np.uint8), "shape"),
    (np.zeros((32, 32, 3), np.int64), "pixel type"),
])
def test_bad_arrays(random_denoiser, image, message):
    with pytest.raises(ValueError, match=message):
        denoise_image(random_denoiser, image)
