"""Bad synthetic-data settings and node kinds fail with one ConfigError naming the field, value and range."""

from __future__ import annotations

from dataclasses import fields

import pytest

from federation.data.synthetic import NODE_KINDS, SynthSettings, generate_federation
from federation.errors import ConfigError


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"seed": -1}, "seed", "integer from 0"),
        ({"seed": 1.5}, "seed", "integer from 0"),
        ({"conversations_per_node": 0}, "conversations_per_node", "integer from 1"),
        ({"conversations_per_node": True}, "conversations_per_node", "integer from 1"),
        ({"size_skew": 0.0}, "size_skew", "number > 0"),
        ({"size_skew": float("inf")}, "size_skew", "number > 0"),
        ({"label_skew": -3}, "label_skew", "number > 0"),
        ({"label_skew": "3"}, "label_skew", "number > 0"),
        ({"test_conversations": -5}, "test_conversations", "integer from 0"),
        ({"min_messages": 1}, "min_messages", "integer from 2"),
        ({"min_messages": 20, "max_messages": 10}, "max_messages", "integer from 20"),
        ({"max_messages": 5000}, "max_messages", "to 1000"),
        ({"min_node_conversations": 300}, "min_node_conversations", "to 220"),
    ],
)
def test_bad_setting_names_field_value_and_allowed_range(changes, field, hint):
    with pytest.raises(ConfigError) as caught:
        SynthSettings(**changes)
    message = str(caught.value)
    assert field in message and repr(changes[field]) in message and hint in message
    assert "\n" not in message


def test_defaults_are_valid_plain_scalars():
    settings = SynthSettings()
    assert all(isinstance(getattr(settings, f.name), (int, float, str)) for f in fields(settings))
    assert settings.min_messages == 6 and settings.max_messages == 150


def test_from_mapping_builds_settings_and_rejects_unknown_keys():
    assert SynthSettings.from_mapping({"seed": 9, "size_skew": 2}) == SynthSettings(seed=9, size_skew=2)
    with pytest.raises(ConfigError, match=r"\['sede'\].*allowed keys: seed"):
        SynthSettings.from_mapping({"sede": 9})


def test_unknown_node_kind_lists_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError) as caught:
        generate_federation(SynthSettings(), node_kinds=["hotline", "school"], out_dir=tmp_path)
    message = str(caught.value)
    assert "'school'" in message and all(kind in message for kind in NODE_KINDS)
    assert not any(tmp_path.iterdir())  # nothing written


def test_empty_node_kinds_and_a_file_as_output_folder_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="node kinds are empty"):
        generate_federation(SynthSettings(), node_kinds=[], out_dir=tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="existing file"):
        generate_federation(SynthSettings(), node_kinds=["police"], out_dir=blocker)
