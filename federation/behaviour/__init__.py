"""Behavioural tests any model can be run against (CheckList, Ribeiro et al., ACL 2020).

Templated cases kept as package data (``cases/*.yaml``, written apart from the synthetic
generator's phrase banks) test three capabilities: minimum functionality, invariance and
directional expectations (:mod:`.build`). :func:`run_suite` scores them through the
analysts' scoring path; :func:`run_behaviour_suite` does it for a head at the end of a run.
``cesagram evaluate --model DIR --behaviour`` is the command.
"""

from federation.behaviour.build import CAPABILITIES, Case, build_cases, real_subset
from federation.behaviour.reuse import Normaliser, Reuse, find_reuse, generator_phrases
from federation.behaviour.suite import (
    DECISION,
    CaseResult,
    Outcome,
    SuiteResult,
    installed_real_negatives,
    run_behaviour_suite,
    run_suite,
)
from federation.behaviour.templates import Templates, load_templates

__all__ = [
    "CAPABILITIES",
    "DECISION",
    "Case",
    "CaseResult",
    "Normaliser",
    "Outcome",
    "Reuse",
    "SuiteResult",
    "Templates",
    "build_cases",
    "find_reuse",
    "generator_phrases",
    "installed_real_negatives",
    "load_templates",
    "real_subset",
    "run_behaviour_suite",
    "run_suite",
]
