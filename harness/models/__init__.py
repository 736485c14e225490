"""Real-model stage backends: diffusers Stable Diffusion pipelines and the built-in tiny checkpoints.

* :mod:`~harness.models.diffusers_backends`: ``generate: sd``, ``generate: sd_img2img``,
  ``inpaint: sd_inpaint``, ``upscale: sd_upscale`` (registered in :mod:`harness.stages.catalog`),
  loaded by :mod:`~harness.models.diffusers_loading`, made batch-invariant by
  :mod:`~harness.models.invariance` and benchmarked by :mod:`~harness.run.bench`
  (``harness bench --models``);
* :mod:`~harness.models.gan`: ``generate: face_gan``, two trained DCGAN face generators
  whose weights ship in pip packages (``gan-face-generate``, ``generateme``; torch only);
* :mod:`~harness.models.tiny`: tiny randomly initialised checkpoints for CI, saved
  once under ``$HARNESS_MODELS_DIR`` and loaded like any user checkpoint;
* :mod:`~harness.models.tokenizer`: CLIP's real tokenizer files, rebuilt offline;
* :mod:`~harness.models.offline`: the switches that keep the Hub libraries offline.

Needs ``diffusers`` and ``transformers`` (CLIP's BPE file ships in ``clip/``).  Importing this package imports none of them, nor torch.
"""
