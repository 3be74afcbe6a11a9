"""SecAgg+ rounds without processes: each node's outcome is paired with the message that trained it."""

from __future__ import annotations

from flwr.app import Error, Message, RecordDict

from server.secagg import SecAggTrainStep, TappedGrid
from tests.server.test_round_loop import FewNodesGrid, train_message


def test_secagg_outcome_pairs_each_node_with_its_training_message() -> None:
    setup = [train_message(n) for n in (5, 6, 7)]
    trained = [train_message(n) for n in (5, 6)]  # node 7 dropped during key sharing
    replies = [Message(RecordDict(), reply_to=trained[0]), Message(Error(code=4001, reason="node-6: declined"), reply_to=trained[1])]
    tapped = TappedGrid(FewNodesGrid([5, 6, 7]))  # type: ignore[arg-type]
    tapped.calls = [(setup, [Message(RecordDict(), reply_to=m) for m in setup]), (setup[:2], []), (trained, replies)]
    outcome = SecAggTrainStep._outcome(tapped)
    assert [m.metadata.dst_node_id for m in outcome.sent] == [5, 6, 7]
    assert outcome.sent[0] is trained[0] and outcome.sent[2] is setup[2]
    assert outcome.replies == replies  # node 7: no reply, so the recorder marks it as having missed the round
