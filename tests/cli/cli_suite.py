"""The one-case classical suite that CLI tests write (caption_portrait, ground truth, shape mask, telea)."""


def classical_suite(name: str, denoise: float | None = None) -> str:
    """Its TOML: suite ``name``, seed 1, and an nlmeans denoise of ``denoise`` strength when given."""
    text = f'''
name = "{name}"
seeds = [1]
vectors = ["caption_portrait"]

[pipelines.p]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea" }}
'''
    return text if denoise is None else text + f'denoise = {{ backend = "nlmeans", strength = {denoise} }}\n'
