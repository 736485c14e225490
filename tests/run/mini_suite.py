"""The 2-case classical "mini" suite that the end-to-end run tests write (test_runner, test_store_run)."""

MINI_SUITE = '''
name = "mini"
seeds = [1]
vectors = ["microprint_dilation", "caption_portrait"]

[pipelines.base]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = {dilate}, protect_anchors = {protect} }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "{denoise}" {denoise_params} }}
upscale = {{ backend = "lanczos", scale = 2 }}
'''


def mini_suite_text(dilate=2, protect="true", denoise="nlmeans", denoise_params=", strength = 0.45", seeds=None) -> str:
    """The suite's TOML; ``seeds`` (a list) replaces ``[1]``."""
    text = MINI_SUITE.format(dilate=dilate, protect=protect, denoise=denoise, denoise_params=denoise_params)
    return text.replace("seeds = [1]", f"seeds = {seeds}") if seeds else text
