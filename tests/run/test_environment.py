"""Thread counts: set_threads records the configured count, every library runs with it, and
the fingerprint records what was applied."""

import numpy as np
import pytest

from harness.run import environment
from harness.threads import configured_threads, set_threads
from harness.run.environment import fingerprint
from harness import threads


@pytest.fixture()
def two_threads():
    set_threads(2)
    yield 2
    set_threads(1)  # what every other test (and the committed baselines) assume


def test_default_is_one_thread():
    assert configured_threads() == 1
    cv2 = threads.cv2_module()
    assert cv2.getNumThreads() == 1


def test_cv2_module_keeps_the_configured_count(two_threads, monkeypatch):
    cv2 = threads.cv2_module()
    assert cv2.getNumThreads() == 2 and configured_threads() == 2
    monkeypatch.setattr(threads, "_CV2", None)  # OpenCV first imported after set_threads
    cv2.setNumThreads(5)
    assert threads.cv2_module().getNumThreads() == 2


def test_rapidocr_session_uses_the_configured_count(two_threads):
    from harness.stages import detect

    sess = detect._session(configured_threads())
    opts = sess.get_session_options()
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
    assert detect._session(1).get_session_options().intra_op_num_threads == 1


def test_rapidocr_detects_with_the_session_of_the_configured_count(two_threads, monkeypatch):
    from harness.stages import StageContext, build_backend, detect, run_stage

    asked, real = [], detect._session
    monkeypatch.setattr(detect, "_session", lambda n=1: asked.append(n) or real(n))
    img = np.full((64, 96, 3), 255, np.uint8)
    run_stage(build_backend("detect", "rapidocr", {"limit_side_len": 64}), img, StageContext(seed=1))
    assert asked == [2]


def test_ncnn_and_torch_follow_the_configured_count(two_threads):
    from harness.stages import build_backend
    from harness.stages.sr import REALESRGAN_MODELS, load_net

    sr = build_backend("upscale", "realesrgan", {})
    assert sr.num_threads() == 2
    assert load_net(REALESRGAN_MODELS[("animavideov3", 2)], sr.num_threads()).opt.num_threads == 2
    assert build_backend("upscale", "realesrgan", {"threads": 3}).num_threads() == 3  # an explicit parameter wins

    torch = pytest.importorskip("torch")
    torch.set_num_threads(4)
    assert threads.apply_torch_threads() == 2 and torch.get_num_threads() == 2
    assert threads.apply_torch_threads(3) == 3 and torch.get_num_threads() == 3
    threads.apply_torch_threads()


def test_fingerprint_records_what_was_applied(two_threads):
    pytest.importorskip("torch")
    threads.apply_torch_threads()
    threads.cv2_module()
    fp = fingerprint(2)
    assert fp["threads"] == 2
    assert fp["threads_applied"] == {"opencv": 2, "torch": 2, "onnxruntime": 2, "ncnn": 2}


def test_set_threads_one_restores_every_library():
    set_threads(3)
    set_threads(1)
    fp = fingerprint(1)
    assert set(fp["threads_applied"].values()) == {1}
    with pytest.raises(ValueError, match="thread count must be >= 1"):
        set_threads(0)
    assert configured_threads() == 1


def test_fingerprint_device_is_where_the_run_s_backends_run(monkeypatch):
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from harness.run.environment import stage_devices

    def case(*stages):
        return SimpleNamespace(pipeline=SimpleNamespace(stages=[SimpleNamespace(stage=s, backend=b, params=p)
                                                                for s, b, p in stages]))

    cases = [case(("generate", "sd", {}), ("upscale", "edge_aware", {"scale": 2})),
             case(("denoise", "nlmeans", {}), ("upscale", "edge_aware", {"scale": 9}))]  # a bad config: left out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert stage_devices(cases) == ["cpu"]
    assert fingerprint(1, devices=stage_devices(cases))["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert stage_devices(cases) == ["cpu", "cuda"]
    assert fingerprint(1, devices=stage_devices(cases))["device"] == "cpu+cuda"
    assert fingerprint(1)["device"] == "cpu"
    assert torch.get_num_threads() == configured_threads()  # torch, imported to resolve "auto", runs with it
