"""The server's public pretraining set: synthetic chats that share nothing with the nodes' data.

Public data is free to train on: the server may pretrain the head on it at no privacy cost
and the nodes fine-tune it with DP-SGD. But in a simulation the nodes' private data comes
from the same generator, so a public set drawn like it would hide the cost of privacy and
of federating. This set is kept apart on every source of text:

* its scripted lines come from the ``public`` half of every bank line's alternatives, the
  nodes' and the test file's from the ``private`` half (:func:`.bank.bank_half`: disjoint
  as texts);
* its real chit-chat comes from the corpus's ``public`` part, the nodes' from ``nodes`` and
  the test file's from ``test`` (:func:`federation.data.chitchat.background_pool`), and
  never from the reserved quarter.

A test checks both. What stays shared is what any generator of the same task shares: the
node kinds' profiles, the stages of grooming, the typing styles and the slot values (app,
game and place names).
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.checks import is_finite_number, is_integer
from federation.data.chitchat import background_pool
from federation.data.synthetic.bank import bank_half
from federation.data.synthetic.generator import NODE_KINDS, SynthSettings, generate_conversations, stream_rng
from federation.data.types import Conversation
from federation.errors import ConfigError

__all__ = ["PUBLIC_STREAM", "PublicSetSettings", "public_conversations"]

#: The public set's random stream, apart from the federation's (0-2, see the generator).
PUBLIC_STREAM = 7


@dataclass(frozen=True, slots=True)
class PublicSetSettings:
    """Size and make-up of the public pretraining set.

    Attributes
    ----------
    conversations
        How many conversations (10 or more: pretraining holds a fifth out); node kinds take turns.
    positive_rate
        Share of grooming conversations. Public data can be balanced at will (the nodes'
        prevalence is theirs); the threshold is still chosen on the nodes' validation data.
    seed
        Seed of every draw (the run's seed by default in a run).
    max_messages
        Longest conversation, as the nodes' data is clipped.
    """

    conversations: int = 3000
    positive_rate: float = 0.3
    seed: int = 0
    max_messages: int = 150

    def __post_init__(self) -> None:
        if not is_integer(self.conversations) or self.conversations < 10:
            raise ConfigError(f"pretrain.conversations must be an integer >= 10, got {self.conversations!r}")
        if not is_finite_number(self.positive_rate) or not 0 < self.positive_rate < 1:
            raise ConfigError(f"pretrain.positive_rate must be a number in (0, 1), got {self.positive_rate!r}")
        if not is_integer(self.seed):
            raise ConfigError(f"pretrain.seed must be an integer, got {self.seed!r}")
        if not is_integer(self.max_messages) or self.max_messages < 6:
            raise ConfigError(f"pretrain.max_messages must be an integer >= 6, got {self.max_messages!r}")


def public_conversations(settings: PublicSetSettings) -> list[Conversation]:
    """The public pretraining set: a pure function of ``settings`` (ids ``public-NNNNN``)."""
    rng = stream_rng(settings.seed, PUBLIC_STREAM)
    kinds = [NODE_KINDS[i % len(NODE_KINDS)] for i in range(settings.conversations)]
    return generate_conversations(
        kinds,
        positive_rate=settings.positive_rate,
        prefix="public",
        settings=SynthSettings(seed=settings.seed, max_messages=settings.max_messages),
        rng=rng,
        pool=background_pool("public"),
        banks=bank_half("public"),
    )
