"""Experiment of 2026-12-02 (issue 9): the default federation without the hard negatives that narrate a groomer's words.

Usage: ``python docs/experiments/no_narrating_negatives.py OUT`` then
``cesagram simulate mode=centralized privacy=none data=jsonl data.dir=OUT``.
Counsellor, peer-report, parent-warning and moderator chats are left out of every node
kind's scenarios (the other scenarios' weights are renormalised by the generator's draw).
"""

import dataclasses
import sys
from pathlib import Path

from federation.data.synthetic import generator

NARRATING = {"counsellor", "peer_report", "parent_warning", "moderator"}

for kind, profile in list(generator.KIND_PROFILES.items()):
    kept = tuple((scenario, weight) for scenario, weight in profile.scenarios if scenario not in NARRATING)
    generator.KIND_PROFILES[kind] = dataclasses.replace(profile, scenarios=kept)
settings = generator.SynthSettings.from_mapping({"seed": 0, "conversations_per_node": 2000, "test_conversations": 1000})
generator.generate_federation(settings, node_kinds=["hotline", "hotline", "police", "police", "platform"], out_dir=Path(sys.argv[1]))
